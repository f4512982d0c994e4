/*  xlog.c: the coordinator log (the `xlog` column family).

    DESIGN
    Entries are keyed by a sequence that only grows (8 bytes, big-endian),
    like the transfers: a new entry lands at the end of the memtable
    skiplist and its delete, soon after, near it, which costs a fraction of
    a random key. The entry remembers its key; the index by transfer id is
    in memory (an attempts table) and rebuilt at start by a scan: the
    column family holds only decisions not yet acknowledged.

    The value holds what the entry needs and nothing else (format 2, see
    "Values" below; about 130 bytes against the 288 of the in-doubt record
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

#define S_KEY_SIZE 8

//  Values ------------------------------------------------------------------
//
//  Format 2, little-endian like the wire codec:
//     0  u8   format (2)          1  u8   decision (RL_TP_COMMIT, RL_TP_ABORT)
//     2  u8   coordinator bytes c 3  u8   participant bytes p
//     4  id   transfer id        20  id   debit account    36  id   credit account
//    52  u64  amount             60  id   user_data_128    76  u64  user_data_64
//    84  u32  user_data_32       88  u32  ledger           92  u16  code
//    94  u64  attempt counter   102  u64  attempt nonce   110  u64  attempt seq
//   118  u64  created (ns, wall clock)
//   126  c bytes of the coordinator's name, then p bytes of the participant's
//  The transfer's other fields (pending id, timeout, flags, timestamp,
//  reserved) are zero in every transfer that reaches the log, and so are
//  the two-phase record's result and timestamp.
#define S_FORMAT     2
#define S_FIXED_SIZE 126
#define S_VALUE_MAX  (S_FIXED_SIZE + 2 * (RL_SHARD_NAME_SIZE_MAX - 1))
#define S_OLD_SIZE   RL_IN_DOUBT_SIZE //  format 1: an in-doubt record

//  Encodes e; returns the value's size.
static size_t
s_encode (const attempt_t *e, uint8_t *out)
{
    const rl_transfer_t *t = &e->transfer;
    size_t c = strnlen (e->tp.coordinator, RL_SHARD_NAME_SIZE_MAX - 1);
    size_t p = strnlen (e->peer, RL_SHARD_NAME_SIZE_MAX - 1);
    out[0] = S_FORMAT;
    out[1] = (uint8_t) e->tp.state;
    out[2] = (uint8_t) c;
    out[3] = (uint8_t) p;
    codec_encode_id (t->id, out + 4);
    codec_encode_id (t->debit_account_id, out + 20);
    codec_encode_id (t->credit_account_id, out + 36);
    codec_put_u64 (out + 52, t->amount);
    codec_encode_id (t->user_data_128, out + 60);
    codec_put_u64 (out + 76, t->user_data_64);
    codec_put_u32 (out + 84, t->user_data_32);
    codec_put_u32 (out + 88, t->ledger);
    codec_put_u16 (out + 92, t->code);
    codec_put_u64 (out + 94, e->tp.attempt.counter);
    codec_put_u64 (out + 102, e->tp.attempt.nonce);
    codec_put_u64 (out + 110, e->tp.attempt.seq);
    codec_put_u64 (out + 118, e->created_ns);
    memcpy (out + S_FIXED_SIZE, e->tp.coordinator, c);
    memcpy (out + S_FIXED_SIZE + c, e->peer, p);
    assert (S_FIXED_SIZE + c + p <= S_VALUE_MAX);
    return S_FIXED_SIZE + c + p;
}

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
    if (size < S_FIXED_SIZE || in[0] != S_FORMAT || in[2] >= RL_SHARD_NAME_SIZE_MAX
        || in[3] >= RL_SHARD_NAME_SIZE_MAX || size != S_FIXED_SIZE + (size_t) in[2] + in[3]) {
        return -1;
    }
    size_t c = in[2], p = in[3];
    rl_transfer_t *t = &e->transfer;
    memset (t, 0, sizeof (*t));
    t->id = codec_decode_id (in + 4);
    t->debit_account_id = codec_decode_id (in + 20);
    t->credit_account_id = codec_decode_id (in + 36);
    t->amount = codec_get_u64 (in + 52);
    t->user_data_128 = codec_decode_id (in + 60);
    t->user_data_64 = codec_get_u64 (in + 76);
    t->user_data_32 = codec_get_u32 (in + 84);
    t->ledger = codec_get_u32 (in + 88);
    t->code = codec_get_u16 (in + 92);
    memset (&e->tp, 0, sizeof (e->tp));
    e->tp.id = t->id;
    e->tp.state = in[1];
    e->tp.amount = t->amount;
    e->tp.debit_account_id = t->debit_account_id;
    e->tp.attempt.counter = codec_get_u64 (in + 94);
    e->tp.attempt.nonce = codec_get_u64 (in + 102);
    e->tp.attempt.seq = codec_get_u64 (in + 110);
    e->created_ns = codec_get_u64 (in + 118);
    memcpy (e->tp.coordinator, in + S_FIXED_SIZE, c);
    e->tp.coordinator[c] = '\0';
    memset (e->peer, 0, sizeof (e->peer));
    memcpy (e->peer, in + S_FIXED_SIZE + c, p);
    return 0;
}

struct xlog_t {
    store_t *store;
    attempts_t entries; //  ATTEMPT_DECIDED
    uint64_t key_seq;   //  last key used
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
    if (attempts_init (&self->entries, cap) != 0) {
        xlog_destroy (&self);
    }
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

static void
s_put (xlog_t *self, const attempt_t *e)
{
    assert (e->state == ATTEMPT_DECIDED);
    assert (e->tp.state == RL_TP_COMMIT || e->tp.state == RL_TP_ABORT);
    uint8_t key[S_KEY_SIZE];
    uint8_t value[S_VALUE_MAX];
    codec_put_u64_be (key, e->key_seq);
    size_t size = s_encode (e, value);
    store_batch_put (self->store, STORE_CF_XLOG, key, sizeof (key), value, size);
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
        e->key_seq = codec_get_u64_be (key);
        if (e->key_seq > self->key_seq) {
            self->key_seq = e->key_seq;
        }
        memcpy (e->peer, loaded.peer, sizeof (e->peer));
        e->next_ns = mono_ns; //  timers are never stored: due at once
        e->backoff_ms = retry_ms;
        e->write_seq = 0; //  durable already
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
    e->state = ATTEMPT_DECIDED;
    e->tp.state = decision;
    e->request = -1;
    e->key_seq = ++self->key_seq;
    e->write_seq = write_seq;
    s_put (self, e);
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
    uint8_t key[S_KEY_SIZE];
    codec_put_u64_be (key, e->key_seq);
    store_batch_delete (self->store, STORE_CF_XLOG, key, sizeof (key));
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
