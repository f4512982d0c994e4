/*  xlog.c: the coordinator log (the `xlog` column family).

    DESIGN
    Entries are keyed by a sequence that only grows (8 bytes, big-endian),
    like the transfers: a new entry lands at the end of the memtable
    skiplist and its delete, soon after, near it, which costs a fraction of
    a random key. The entry remembers its key; the index by transfer id is
    in memory (an attempts table) and rebuilt at start by a scan: the
    column family holds only decisions not yet acknowledged.

    The value holds what the entry needs and nothing else (format 2,
    attempts.c draws it; about 130 bytes against the 288 of the in-doubt record
    it used to be, which was written on every cross-shard transfer): the
    transfer's fields that may be non-zero, the attempt, the decision, the
    creation date (wall clock: stored only to be shown) and the names of
    the coordinator and the participant. An entry of the old format (a
    whole in-doubt record, 288 bytes) still loads. No timer is stored: a
    loaded entry is due for resending at once (monotonic time of the load).

    INVARIANTS
    1. An entry is in the table exactly when its key is in the column
       family (or in the batch being built): xlog_append puts, xlog_remove
       deletes, both in the batch of the same group commit as the change.
    2. Keys strictly increase: key_seq is the largest key loaded or used.
    3. Every entry is ATTEMPT_DECIDED; one appended here has tp.state
       COMMIT or ABORT (a loaded one has what the disk says).

    LIMITS: `cap` entries (RL_TP_LOG_ENTRIES_MAX in the coordinator): the
    coordinator only decides an attempt it holds live, and it begins one
    only while live attempts + entries stay within its log capacity, at
    most `cap` (coordinator.c invariant 7), so xlog_append always has
    room (it asserts it).
*/
#include "xlog.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define S_KEY_SIZE ATTEMPTS_KEY_SIZE

//  Values: format ATTEMPT_VALUE_LOG (attempts.c draws the layout), or an
//  in-doubt record (288 bytes), as earlier builds wrote.
#define S_OLD_SIZE RL_IN_DOUBT_SIZE //  format 1: an in-doubt record

//  Decodes a value of either format into the persistent fields of e (the
//  transfer, tp, created_ns, peer). 0, or -1 when the bytes are not a value.
static int
s_decode (const uint8_t *in, size_t size, attempt_t *e)
{
    if (size == S_OLD_SIZE) {
        rl_in_doubt_rec_t logged;
        codec_decode_in_doubt (in, &logged);
        e->transfer = logged.prepare.transfer;
        e->tp = logged.prepare.tp;
        e->created_ns = logged.prepare.reserved[0];
        memcpy (e->peer, logged.peer, sizeof (e->peer));
        e->peer[sizeof (e->peer) - 1] = '\0';
        return 0;
    }
    return attempt_value_decode (in, size, e) == ATTEMPT_VALUE_LOG ? 0 : -1;
}

struct xlog_t {
    store_t *store;
    attempts_t entries; //  ATTEMPT_DECIDED; keys in STORE_CF_XLOG
};

xlog_t *
xlog_new (store_t *store, size_t cap)
{
    assert (store && cap > 0);
    xlog_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    //  Room for the entries no longer needed that a restart may load again
    //  (attempts.h, "Keys": at most the window and one step of them).
    if (attempts_init (&self->entries, cap + ATTEMPTS_KEYS_WINDOW + ATTEMPTS_KEYS_STEP) != 0) {
        xlog_destroy (&self);
        return NULL;
    }
    attempts_keys_init (&self->entries, store, STORE_CF_XLOG);
    return self;
}

void
xlog_destroy (xlog_t **self_p)
{
    assert (self_p);
    xlog_t *self = *self_p;
    if (self) {
        attempts_free (&self->entries);
        free (self);
        *self_p = NULL;
    }
}

int
xlog_load (xlog_t *self, uint64_t mono_ns, uint64_t retry_ms, char *err, size_t err_size)
{
    assert (self && self->entries.count == 0);
    store_iter_t *it = store_iter_new (self->store, STORE_CF_XLOG);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t size = 0, key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &size);
        attempt_t loaded = {0};
        if (key_size != S_KEY_SIZE || s_decode (value, size, &loaded) != 0) {
            snprintf (err, err_size, "corrupt coordinator log entry");
            rc = -1;
            break;
        }
        if (rl_id_is_zero (loaded.tp.id)) {
            snprintf (err, err_size, "corrupt coordinator log entry (no id)");
            rc = -1;
            break;
        }
        int32_t i = attempts_add (&self->entries, loaded.tp.id);
        if (i < 0) {
            snprintf (err, err_size, "coordinator log larger than its table");
            rc = -1;
            break;
        }
        attempt_t *e = attempts_at (&self->entries, i);
        e->state = ATTEMPT_DECIDED;
        e->transfer = loaded.transfer;
        e->tp = loaded.tp;
        e->created_ns = loaded.created_ns; //  a date (wall clock), shown by in_doubt
        attempts_key_loaded (&self->entries, i, codec_get_u64_be (key)); //  in key order
        memcpy (e->peer, loaded.peer, sizeof (e->peer));
        e->next_ns = mono_ns; //  timers are never stored: due at once
        e->backoff_ms = retry_ms;
        e->write_seq = 0; //  durable already
        e->request = -1;  //  no client waits for it (coordinator.c, debit legs)
    }
    store_iter_destroy (&it);
    return rc;
}

int32_t
xlog_append (xlog_t *self, const attempt_t *live, uint32_t decision, uint64_t write_seq)
{
    assert (self && live && live->state == ATTEMPT_LIVE);
    assert (decision == RL_TP_COMMIT || decision == RL_TP_ABORT);
    int32_t x = attempts_add (&self->entries, live->tp.id);
    assert (x >= 0); //  the coordinator keeps live + logged within the table (LIMITS)
    attempt_t *e = attempts_at (&self->entries, x);
    int32_t next = e->next;
    *e = *live;
    e->next = next;
    e->keyed = false; //  a live attempt holds no key
    e->key_prev = e->key_next = -1;
    e->state = ATTEMPT_DECIDED;
    e->tp.state = decision;
    e->request = -1;
    e->write_seq = write_seq;
    attempts_key_assign (&self->entries, x);
    assert (e->tp.state == RL_TP_COMMIT || e->tp.state == RL_TP_ABORT);
    attempts_key_put (&self->entries, x);
    return x;
}

int32_t
xlog_find (xlog_t *self, rl_id_t id, rl_attempt_t attempt)
{
    assert (self);
    for (int32_t i = attempts_head (&self->entries, id); i >= 0;
         i = attempts_at (&self->entries, i)->next) {
        if (attempt_eq (attempts_at (&self->entries, i)->tp.attempt, attempt)) {
            assert (attempts_at (&self->entries, i)->state == ATTEMPT_DECIDED); //  invariant 3
            return i;
        }
    }
    return -1;
}

void
xlog_remove (xlog_t *self, int32_t i)
{
    assert (self);
    attempt_t *e = attempts_at (&self->entries, i);
    assert (e->state == ATTEMPT_DECIDED);
    attempts_key_drop (&self->entries, i); //  deleted by range later (attempts.c, "Keys")
    size_t count = self->entries.count;
    attempts_remove (&self->entries, i);
    assert (self->entries.count + 1 == count); //  invariant 1: table and column family agree
}

attempts_t *
xlog_entries (xlog_t *self)
{
    assert (self);
    return &self->entries;
}

size_t
xlog_count (const xlog_t *self)
{
    assert (self);
    return self->entries.count;
}
