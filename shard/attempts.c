/*  attempts.c: the slab tables of the two-phase protocol.

    DESIGN
    A fixed array of entries, a free list threaded through `next`, and an
    id -> first slot index (idmap); entries of the same transfer id (older
    attempts, or the same id from several coordinators) form a chain
    through `next`. Lookups are O(1) plus the chain (almost always one
    entry); a scan visits the slots below the high-water mark.

    INVARIANTS
    1. count <= cap; an entry is in exactly one of: the free list (state
       ATTEMPT_FREE), or the chain of its tp.id.
    2. heads maps exactly the ids that have entries (an id whose last entry
       goes is removed from the map).
    3. The slots in use are all below attempts_span(); a slot never moves,
       so an index names an entry until it is removed.

    LIMITS: `cap` entries, fixed at init (the owner picks it from
    rl_limits.h); a full table refuses the add (the caller answers busy).
    attempts_span is O(free list).
*/
#include "attempts.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int
attempts_init (attempts_t *self, size_t cap)
{
    assert (self && cap > 0 && cap <= INT32_MAX);
    memset (self, 0, sizeof (*self));
    self->free_head = -1;
    self->slots = calloc (cap, sizeof (attempt_t));
    self->heads = idmap_new (cap);
    if (!self->slots || !self->heads) {
        return -1;
    }
    self->cap = cap;
    return 0;
}

void
attempts_free (attempts_t *self)
{
    assert (self);
    free (self->slots);
    self->slots = NULL;
    idmap_destroy (&self->heads);
    self->cap = self->count = 0;
}

int32_t
attempts_head (const attempts_t *self, rl_id_t id)
{
    assert (self);
    uint64_t v = 0;
    if (!idmap_get (self->heads, id, &v)) {
        return -1;
    }
    assert (v >= 1 && v <= self->cap); //  slot + 1, invariant 2
    return (int32_t) v - 1;
}

int32_t
attempts_find (const attempts_t *self, rl_id_t id, const char *coordinator)
{
    assert (self);
    for (int32_t i = attempts_head (self, id); i >= 0; i = self->slots[i].next) {
        assert (self->slots[i].state != ATTEMPT_FREE);
        if (!coordinator || strcmp (self->slots[i].tp.coordinator, coordinator) == 0) {
            return i;
        }
    }
    return -1;
}

int32_t
attempts_add (attempts_t *self, rl_id_t id)
{
    assert (self && !rl_id_is_zero (id));
    int32_t i = self->free_head;
    if (i < 0) {
        if (self->count >= self->cap) {
            return -1;
        }
        //  slots below `count` are all in use when the free list is empty
        i = (int32_t) self->count;
    }
    int32_t head = attempts_head (self, id);
    if (idmap_put (self->heads, id, (uint64_t) i + 1) != 0) {
        return -1;
    }
    if (i == self->free_head) {
        self->free_head = self->slots[i].next;
    }
    memset (&self->slots[i], 0, sizeof (attempt_t));
    self->slots[i].next = head;
    self->slots[i].peer_index = -1;
    self->slots[i].request = -1;
    self->count++;
    assert (self->count <= self->cap);
    return i;
}

void
attempts_remove (attempts_t *self, int32_t i)
{
    assert (self);
    assert (i >= 0 && (size_t) i < self->cap && self->slots[i].state != ATTEMPT_FREE);
    assert (self->count > 0);
    rl_id_t id = self->slots[i].tp.id;
    int32_t head = attempts_head (self, id);
    assert (head >= 0); //  invariant 1: the entry is in its id's chain
    if (head == i) {
        if (self->slots[i].next < 0) {
            idmap_remove (self->heads, id); //  the map keeps only ids with entries
        } else {
            idmap_put (self->heads, id, (uint64_t) (self->slots[i].next + 1));
        }
    } else {
        for (int32_t k = head; k >= 0; k = self->slots[k].next) {
            if (self->slots[k].next == i) {
                self->slots[k].next = self->slots[i].next;
                break;
            }
        }
    }
    self->slots[i].state = ATTEMPT_FREE;
    self->slots[i].next = self->free_head;
    self->free_head = i;
    self->count--;
}

size_t
attempts_span (const attempts_t *self)
{
    assert (self);
    size_t span = self->count;
    for (int32_t i = self->free_head; i >= 0; i = self->slots[i].next) {
        span++;
    }
    assert (span <= self->cap);
    return span;
}

attempt_t *
attempts_at (attempts_t *self, int32_t i)
{
    assert (self && i >= 0 && (size_t) i < self->cap);
    return &self->slots[i];
}

void
attempt_in_doubt (const attempt_t *e, rl_in_doubt_rec_t *r)
{
    assert (e && r);
    assert (e->state == ATTEMPT_LIVE || e->state == ATTEMPT_DECIDED
            || e->state == ATTEMPT_PREPARED);
    memset (r, 0, sizeof (*r));
    r->prepare.transfer = e->transfer;
    r->prepare.tp = e->tp;
    if (e->state == ATTEMPT_LIVE) {
        r->prepare.tp.state = RL_TP_PENDING;
    }
    r->prepare.reserved[0] = e->created_ns;
    r->prepare.reserved[1] = e->state == ATTEMPT_PREPARED ? RL_ROLE_PARTICIPANT
                                                          : RL_ROLE_COORDINATOR;
    const char *peer = e->state == ATTEMPT_PREPARED ? e->tp.coordinator : e->peer;
    size_t n = strnlen (peer, sizeof (r->peer) - 1);
    memcpy (r->peer, peer, n);
    r->peer[n] = '\0';
}

bool
attempt_eq (rl_attempt_t a, rl_attempt_t b)
{
    return a.counter == b.counter && a.nonce == b.nonce && a.seq == b.seq;
}

bool
attempt_older (rl_attempt_t a, rl_attempt_t b)
{
    return a.counter < b.counter || (a.counter == b.counter && a.seq < b.seq);
}
