/*  events.h: the shard's change stream of committed transfers
    (docs/events.md).

    A consumer reads a shard's stored transfer records in commit order with
    events_read (op 65), from a position it keeps (the serving shard's
    incarnation, its nonce and a record's timestamp), and learns that there
    is more from an optional ZeroMQ PUB socket (--events-bind), which
    announces the shard's durable head after every group commit that moved
    it, and once a second otherwise. See events.c for the design, the
    invariants and the limits.
*/
#ifndef RL_EVENTS_H
#define RL_EVENTS_H

#include <stdint.h>

#include <czmq.h>

#include "proto.h"

typedef struct events_t events_t;
typedef struct server_t server_t;

//  The notification of the PUB socket: one frame of EVENTS_NOTE_SIZE bytes
//  (docs/events.md, "Notifications").
#define EVENTS_NOTE_MAGIC     0x76656c72u //  bytes "rlev" read as a little-endian u32
#define EVENTS_NOTE_VERSION   1
#define EVENTS_NOTE_SIZE      64
#define EVENTS_NOTE_COMMITTED 1 //  the durable head moved
#define EVENTS_NOTE_HEARTBEAT 2 //  it did not, for EVENTS_HEARTBEAT_MS

#define EVENTS_HEARTBEAT_MS        1000 //  a notification at least this often
#define EVENTS_PUB_SNDHWM_MESSAGES 1000 //  per subscriber; a slow one loses notes, never blocks
#define EVENTS_INCARNATIONS_MAX    4096 //  incarnations remembered (older positions: resync)

//  At start, before anything is served: remembers this incarnation (synced)
//  and binds --events-bind if given (CURVE like the shard's socket). 0, or
//  -1 (logged): storage, a corrupt table, or a socket that cannot be bound.
int events_start (server_t *self);
void events_stop (server_t *self);
//  events_read: the reply (NULL: out of memory), taking envelope.
zmsg_t *events_handle (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body);
//  After a group commit is synced (or a turn wrote nothing): head, the last
//  timestamp every synced write covers, may have moved; announces it.
void events_synced (server_t *self, uint64_t head);

//  What the stream served since start (the shard's /metrics, docs/metrics.md).
typedef struct {
    uint64_t reads;         //  events_read requests answered ok
    uint64_t events;        //  events in those replies
    uint64_t bad_positions; //  events_read refused bad_position
    uint64_t resyncs;       //  events_read refused resync
    uint64_t notes;         //  notifications sent on --events-bind: the head moved
    uint64_t heartbeats;    //  notifications sent on --events-bind: it did not
} events_stats_t;

//  All zero before events_start.
void events_stats (const server_t *self, events_stats_t *out);

//  Does the incarnation table of store (every start of its history, the
//  oldest beyond EVENTS_INCARNATIONS_MAX forgotten) hold incarnation
//  (counter, nonce)? 1 yes; 0 no (another nonce, or a history that
//  remembers starts before counter and not it); 2 cannot tell (the table
//  is empty, or begins after counter); -1 a read failed.
typedef struct store_t store_t;
int events_history_has (store_t *store, uint64_t counter, uint64_t nonce);
//  Where the history of store ends incarnation counter: the timestamp the
//  next incarnation it remembers began after (the last one stored when
//  that start came), or UINT64_MAX when none follows (the current one).
//  0, or -1 a read failed. A primary whose data was rolled back (restored
//  from a snapshot or a backup taken during an incarnation, then started)
//  ends that incarnation before what it acknowledged in it.
int events_history_end (store_t *store, uint64_t counter, uint64_t *end_p);

#endif
