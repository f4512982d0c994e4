/*  outq.h: what the ledger and the two-phase modules ask the server to
    send, and the sequence of the group commit that justifies each message.

    Data flows one way: the server calls the ledger, the coordinator or the
    participant; they push messages here; the server drains the queue after
    each call and sends each message only once the group commit named by
    its needs_seq is synced. See outq.c for the invariants.

    The group commit is pipelined (server.c): a turn WRITES its batch and
    goes on; a thread of its own syncs what was written, so a batch moves
    from built (batch_seq) to written (written_seq) to synced (synced_seq),
    and several may be written and not yet synced.
*/
#ifndef RL_OUTQ_H
#define RL_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef enum {
    OUTQ_PREPARE = 0, //  coordinator -> participant
    OUTQ_DECIDE,      //  coordinator -> participant (and resends)
    OUTQ_QUERY,       //  participant -> coordinator (outcome query)
    OUTQ_REPLY,       //  a client request whose cross-shard records are all decided
    OUTQ_KINDS
} outq_kind_t;

typedef struct {
    outq_kind_t kind;
    int32_t peer;       //  PREPARE, DECIDE, QUERY: the ring shard index, or -1 (not in the ring)
    uint64_t needs_seq; //  the group commit that must be synced first (0: none)
    union {
        rl_prepare_rec_t prepare; //  PREPARE
        rl_tp_rec_t tp;           //  DECIDE, QUERY
        struct {
            void *ctx;                //  the server's handle of the request (its envelope)
            rl_header_t header;       //  the request's header
            rl_result_rec_t *results; //  owned by the message: whoever pops it frees it
            uint32_t count;
        } reply; //  REPLY
    };
} outq_msg_t;

typedef struct outq_t outq_t;

//  An empty queue; the first group commit is sequence 1. NULL when memory
//  ran out.
outq_t *outq_new (void);
//  Frees the queue and the results of REPLY messages still in it (their
//  ctx is the server's).
void outq_destroy (outq_t **self_p);
//  Queues a copy of msg. 0, or -1 when memory ran out (nothing queued: the
//  caller's timers resend, or the caller keeps the request).
int outq_push (outq_t *self, const outq_msg_t *msg);
size_t outq_count (const outq_t *self);
//  The message at i (i < outq_count); valid until the next push or clear.
outq_msg_t *outq_at (outq_t *self, size_t i);
//  Forgets every queued message (REPLY results must have been taken).
void outq_clear (outq_t *self);

//  The group commit being built: stamp a write made now with this.
uint64_t outq_batch_seq (const outq_t *self);
//  The last group commit written (durable or not yet).
uint64_t outq_written_seq (const outq_t *self);
//  The last group commit made durable.
uint64_t outq_synced_seq (const outq_t *self);
//  The batch being built is written and synced at once (nothing written
//  before it waits for a sync): synced = written = batch, and the next
//  batch begins.
void outq_batch_synced (outq_t *self);
//  The batch being built is written, not synced: the next batch begins.
//  needs_sync: it holds a write that a message may depend on (false: it is
//  empty, or its writes need no sync, docs/two-phase.md "Writes without a
//  sync"). Such a batch counts as synced as soon as every batch before it
//  that needs a sync is. urgent: its turn wants a sync at once (false: a
//  turn of deferred applies, whose sync waits for the next urgent batch or
//  the tick, server.c "DEFERRED APPLIES").
void outq_batch_written (outq_t *self, bool needs_sync, bool urgent);
//  Is a written batch waiting for a sync?
bool outq_sync_due (const outq_t *self);
//  Is a sync due and wanted now (an urgent batch written since the last
//  sync)? A sync started covers every batch written, deferred ones too.
bool outq_sync_wanted (const outq_t *self);
//  A sync that began once `seq` was written has ended: every batch up to
//  seq is durable (and the later ones too if none of them needs a sync).
void outq_synced_to (outq_t *self, uint64_t seq);
//  Replication (replica.h): the last group commit the standbys hold
//  (semi-synchronous mode; UINT64_MAX, the default, when nothing waits
//  for a standby). Only grows.
void outq_replicated_to (outq_t *self, uint64_t seq);
//  What may be sent: min (synced, replicated), the "sent <= release" of
//  every send (docs/replication.md).
uint64_t outq_release_seq (const outq_t *self);
//  The group commit a message reporting on memory as it is now needs: its
//  own needs_seq, or the last batch written if later (a state written by
//  an earlier turn may not be synced yet).
uint64_t outq_justified (const outq_t *self, uint64_t needs_seq);

#endif
