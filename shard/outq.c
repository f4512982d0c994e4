/*  outq.c: the output queue of the shard's state machines.

    INVARIANTS
    1. synced_seq <= written_seq < batch_seq: the batch being built is
       never written yet; nothing is synced before it is written.
    2. wal_seq <= written_seq: wal_seq is the last written batch that needs
       a sync; once synced_seq reaches it, every later written batch is
       synced too (they hold no write anything depends on), so
       wal_seq <= synced_seq implies synced_seq == written_seq.
    5. urgent_seq <= written_seq: the last written batch whose turn wants
       a sync at once. A batch that needs a sync but is not urgent (a
       turn that only applied DECIDEs, server.c "DEFERRED APPLIES") waits
       for the next urgent batch or the tick: a sync is wanted when
       urgent_seq > synced_seq and one is due.
    3. A message's needs_seq <= batch_seq when pushed (nothing can depend on
       a write not yet made); the server sends it only when needs_seq <=
       min (synced_seq, replicated_seq) (asserted by the server, which owns
       the send; replicated_seq is UINT64_MAX unless a semi-synchronous
       standby is configured). A message
       other than a PREPARE needs at least the last batch written when it
       was pushed (outq_justified): it reports on memory, which may hold
       writes of earlier turns not yet synced. A PREPARE needs nothing
       durable (docs/two-phase.md).
    4. A REPLY message owns its results array until it is popped.

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
    uint64_t batch_seq;      //  the group commit being built
    uint64_t written_seq;    //  the last group commit written
    uint64_t wal_seq;        //  the last written one that needs a sync
    uint64_t synced_seq;     //  the last group commit made durable
    uint64_t urgent_seq;     //  the last written one that wants its sync at once
    uint64_t replicated_seq; //  the last group commit the standbys hold (UINT64_MAX: no wait)
};

static bool
s_valid (const outq_t *self)
{
    return self->synced_seq <= self->written_seq && self->written_seq < self->batch_seq
           && self->wal_seq <= self->written_seq && self->urgent_seq <= self->written_seq
           && (self->wal_seq > self->synced_seq || self->synced_seq == self->written_seq);
}

outq_t *
outq_new (void)
{
    outq_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->batch_seq = 1;
    self->replicated_seq = UINT64_MAX;
    assert (s_valid (self)); //  invariants 1 and 2
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
    assert (msg->needs_seq <= self->batch_seq); //  invariant 3
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
    self->msgs[self->count] = *msg;
    if (msg->kind != OUTQ_PREPARE) {
        self->msgs[self->count].needs_seq = outq_justified (self, msg->needs_seq);
    }
    self->count++;
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
        //  Invariant 4: whoever popped a REPLY took its results (and set NULL).
        assert (self->msgs[i].kind != OUTQ_REPLY || !self->msgs[i].reply.results);
    }
    self->count = 0;
}

uint64_t
outq_batch_seq (const outq_t *self)
{
    assert (self && s_valid (self));
    return self->batch_seq;
}

uint64_t
outq_written_seq (const outq_t *self)
{
    assert (self && s_valid (self));
    return self->written_seq;
}

uint64_t
outq_synced_seq (const outq_t *self)
{
    assert (self && s_valid (self));
    return self->synced_seq;
}

void
outq_batch_synced (outq_t *self)
{
    assert (self && self->synced_seq == self->written_seq); //  nothing waits for a sync
    self->synced_seq = self->written_seq = self->wal_seq = self->urgent_seq = self->batch_seq;
    self->batch_seq++;
    assert (s_valid (self));
}

void
outq_batch_written (outq_t *self, bool needs_sync, bool urgent)
{
    assert (self && s_valid (self));
    self->written_seq = self->batch_seq;
    if (needs_sync) {
        self->wal_seq = self->batch_seq;
    }
    if (urgent) {
        self->urgent_seq = self->batch_seq; //  invariant 5
    }
    self->batch_seq++;
    if (self->wal_seq <= self->synced_seq) {
        self->synced_seq = self->written_seq; //  invariant 2: nothing to wait for
    }
    assert (s_valid (self));
}

bool
outq_sync_due (const outq_t *self)
{
    assert (self && s_valid (self));
    return self->wal_seq > self->synced_seq;
}

bool
outq_sync_wanted (const outq_t *self)
{
    assert (self && s_valid (self));
    return self->wal_seq > self->synced_seq && self->urgent_seq > self->synced_seq;
}

void
outq_synced_to (outq_t *self, uint64_t seq)
{
    assert (self && s_valid (self));
    assert (seq <= self->written_seq);
    if (seq > self->synced_seq) {
        self->synced_seq = seq;
    }
    if (self->wal_seq <= self->synced_seq) {
        self->synced_seq = self->written_seq; //  invariant 2
    }
    assert (s_valid (self));
}

uint64_t
outq_justified (const outq_t *self, uint64_t needs_seq)
{
    assert (self && s_valid (self) && needs_seq <= self->batch_seq);
    return needs_seq > self->written_seq ? needs_seq : self->written_seq;
}

void
outq_replicated_to (outq_t *self, uint64_t seq)
{
    assert (self);
    assert (seq >= self->replicated_seq || self->replicated_seq == UINT64_MAX);
    self->replicated_seq = seq;
}

uint64_t
outq_release_seq (const outq_t *self)
{
    assert (self && s_valid (self));
    return self->synced_seq < self->replicated_seq ? self->synced_seq : self->replicated_seq;
}
