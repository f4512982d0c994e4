/*  peers.h: the shard's connections to the other shards of its ring.

    One DEALER socket per peer shard, found by its index in the ring served
    now (never by name per record; a ring change maps them by name and
    keeps the unchanged ones), connected on first use, and one outbox
    per kind of two-phase message. The server pushes what it drains from the
    output queue and flushes each record once the group commit that
    justifies it is synced. See peers.c for the invariants and limits.
*/
#ifndef RL_PEERS_H
#define RL_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "auth.h"
#include "outq.h"
#include "ring.h"

typedef struct peers_t peers_t;

//  on_reply is registered with the loop for every peer socket (replies to
//  our PREPARE, DECIDE and OUTCOME_QUERY). NULL when memory ran out.
//  auth: CURVE for the connections to peers (borrowed; common/auth.h).
peers_t *peers_new (zloop_t *loop, zloop_reader_fn *on_reply, void *arg, rl_auth_t *auth);
void peers_destroy (peers_t **self_p);

//  Queues one PREPARE, DECIDE or QUERY for the peer at msg->peer in `ring`.
//  false when it was dropped (no such peer in the ring, or no memory or
//  socket for it): the protocol's timeout, resend or query covers it.
bool peers_push (peers_t *self, const ring_t *ring, const outq_msg_t *msg);
//  Are messages of this kind queued for any peer?
bool peers_queued (const peers_t *self, outq_kind_t kind);
//  Sends every queued record that synced_seq covers, at most a batch per
//  message, and keeps the others, in order, for a later flush (the group
//  commit is pipelined: server.c). Adds the records sent per kind to sent;
//  returns the records dropped (a peer's queue full, no memory).
size_t peers_flush (peers_t *self, uint64_t synced_seq, size_t sent[OUTQ_REPLY]);
//  Is a record of this kind queued that synced_seq covers?
bool peers_ready (const peers_t *self, outq_kind_t kind, uint64_t synced_seq);
//  A failed turn: every queued record is forgotten (nothing unjustified leaves).
void peers_discard (peers_t *self);

//  The ring changed to `ring` (the one served from now on; NULL: none, at
//  destruction): a connected peer whose name, endpoint and key are the same
//  in it keeps its connection and queued output under its new index; the
//  others keep what they hold until the next flush, then
//  peers_close_retired closes them; new messages connect afresh.
void peers_retire (peers_t *self, const ring_t *ring);
void peers_close_retired (peers_t *self);

//  The connected peers of the ring served now, for reading their replies.
size_t peers_count (const peers_t *self);
zsock_t *peers_socket (const peers_t *self, size_t i);
//  The ring index (in the ring served now) of the shard peers_socket(i)
//  leads to: its replies come from that shard (CURVE pins its key).
uint32_t peers_index (const peers_t *self, size_t i);

#endif
