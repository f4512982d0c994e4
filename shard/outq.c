/*  outq.c: the output queue of the shard's state machines.

    INVARIANTS
    1. synced_seq < batch_seq: the batch being built is never durable yet;
       outq_batch_synced advances both by one.
    2. A message's needs_seq <= batch_seq when pushed (nothing can depend on
       a write not yet made); the server sends it only when needs_seq <=
       synced_seq (asserted by the server, which owns the send).
    3. A REPLY message owns its results array until it is popped.

    LIMITS: the queue grows by doubling and keeps its memory across turns,
    so a steady load allocates nothing; it holds what one call produced
    (the server drains after each call).
*/
#include "outq.h"

#include <assert.h>
#include <stdlib.h>

struct outq_t {
    outq_msg_t *msgs;
    size_t count;
    size_t cap;
    uint64_t batch_seq;  //  the group commit being built
    uint64_t synced_seq; //  the last group commit made durable
};

outq_t *
outq_new (void)
{
    outq_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->batch_seq = 1;
    self->synced_seq = 0;
    assert (self->synced_seq < self->batch_seq); //  invariant 1
    return self;
}

void
outq_destroy (outq_t **self_p)
{
    assert (self_p);
    outq_t *self = *self_p;
    if (!self) {
        return;
    }
    for (size_t i = 0; i < self->count; i++) {
        if (self->msgs[i].kind == OUTQ_REPLY) {
            free (self->msgs[i].reply.results);
        }
    }
    free (self->msgs);
    free (self);
    *self_p = NULL;
}

int
outq_push (outq_t *self, const outq_msg_t *msg)
{
    assert (self && msg && msg->kind < OUTQ_KINDS);
    assert (msg->needs_seq <= self->batch_seq); //  invariant 2
    assert (msg->kind == OUTQ_REPLY || msg->peer >= -1);
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        outq_msg_t *msgs = realloc (self->msgs, cap * sizeof (*msgs));
        if (!msgs) {
            return -1;
        }
        self->msgs = msgs;
        self->cap = cap;
    }
    self->msgs[self->count++] = *msg;
    assert (self->count <= self->cap);
    return 0;
}

size_t
outq_count (const outq_t *self)
{
    assert (self);
    return self->count;
}

outq_msg_t *
outq_at (outq_t *self, size_t i)
{
    assert (self && i < self->count);
    return &self->msgs[i];
}

void
outq_clear (outq_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->count; i++) {
        //  Invariant 3: whoever popped a REPLY took its results (and set NULL).
        assert (self->msgs[i].kind != OUTQ_REPLY || !self->msgs[i].reply.results);
    }
    self->count = 0;
}

uint64_t
outq_batch_seq (const outq_t *self)
{
    assert (self && self->synced_seq < self->batch_seq);
    return self->batch_seq;
}

uint64_t
outq_synced_seq (const outq_t *self)
{
    assert (self && self->synced_seq < self->batch_seq);
    return self->synced_seq;
}

void
outq_batch_synced (outq_t *self)
{
    assert (self && self->synced_seq + 1 == self->batch_seq);
    self->synced_seq = self->batch_seq;
    self->batch_seq++;
    assert (self->synced_seq < self->batch_seq);
}
