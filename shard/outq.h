/*  outq.h: what the ledger and the two-phase modules ask the server to
    send, and the sequence of the group commit that justifies each message.

    Data flows one way: the server calls the ledger, the coordinator or the
    participant; they push messages here; the server drains the queue after
    each call and sends each message only once the group commit named by
    its needs_seq is synced. See outq.c for the invariants.
*/
#ifndef RL_OUTQ_H
#define RL_OUTQ_H

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
//  The last group commit made durable.
uint64_t outq_synced_seq (const outq_t *self);
//  The batch being built is durable (or was empty): synced = batch, and
//  the next batch begins.
void outq_batch_synced (outq_t *self);

#endif
