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
    attempts_span is O(1): the high-water mark is kept (it used to be
    counted by walking the free list, which the timers' scans paid on
    every tick: 1.6% of a cross-shard transfer's CPU, profiled).
*/
#include "attempts.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

//  Stored values ---------------------------------------------------------------
//
//  Little-endian like the wire codec:
//     0  u8   format (ATTEMPT_VALUE_*)  1  u8   state (tp.state: the decision, or the record's)
//     2  u8   coordinator bytes c 3  u8   participant bytes p
//     4  id   transfer id        20  id   debit account    36  id   credit account
//    52  u64  amount             60  id   user_data_128    76  u64  user_data_64
//    84  u32  user_data_32       88  u32  ledger           92  u16  code
//    94  u64  attempt counter   102  u64  attempt nonce   110  u64  attempt seq
//   118  u64  created (ns, wall clock)
//   126  c bytes of the coordinator's name, then p bytes of the participant's
//   then, when the format byte has ATTEMPT_VALUE_TAIL (a cross-shard
//   pending transfer, post or void: docs/payments.md), 22 bytes:
//     +0 u16 flags  +2 u32 timeout  +6 id pending id
//  The transfer's other fields (timestamp, reserved) are zero in every
//  transfer of a two-phase attempt, and so are the two-phase record's
//  result and timestamp; without the tail, so are flags, timeout and
//  pending id (a plain transfer: the records written before the tail). A participant's record names
//  no peer (p = 0): its coordinator is the other shard.
#define S_FIXED_SIZE ATTEMPT_VALUE_FIXED_SIZE

size_t
attempt_value_encode (const attempt_t *e, uint8_t format, uint8_t *out)
{
    assert (e && out);
    assert (format == ATTEMPT_VALUE_LOG || format == ATTEMPT_VALUE_RECORD
            || format == ATTEMPT_VALUE_HEURISTIC);
    const rl_transfer_t *t = &e->transfer;
    size_t c = strnlen (e->tp.coordinator, RL_SHARD_NAME_SIZE_MAX - 1);
    size_t p = strnlen (e->peer, RL_SHARD_NAME_SIZE_MAX - 1);
    out[0] = format;
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
    size_t size = S_FIXED_SIZE + c + p;
    if (t->flags != 0 || t->timeout != 0 || !rl_id_is_zero (t->pending_id)) {
        out[0] |= ATTEMPT_VALUE_TAIL;
        codec_put_u16 (out + size, t->flags);
        codec_put_u32 (out + size + 2, t->timeout);
        codec_encode_id (t->pending_id, out + size + 6);
        size += ATTEMPT_VALUE_TAIL_SIZE;
    }
    assert (size <= ATTEMPT_VALUE_SIZE_MAX);
    return size;
}

int
attempt_value_decode (const uint8_t *in, size_t size, attempt_t *e)
{
    assert (in && e);
    uint8_t format = size > 0 ? (uint8_t) (in[0] & ~ATTEMPT_VALUE_TAIL) : 0;
    size_t tail = size > 0 && (in[0] & ATTEMPT_VALUE_TAIL) ? ATTEMPT_VALUE_TAIL_SIZE : 0;
    if (size < S_FIXED_SIZE
        || (format != ATTEMPT_VALUE_LOG && format != ATTEMPT_VALUE_RECORD
            && format != ATTEMPT_VALUE_HEURISTIC)
        || in[2] >= RL_SHARD_NAME_SIZE_MAX || in[3] >= RL_SHARD_NAME_SIZE_MAX
        || size != S_FIXED_SIZE + (size_t) in[2] + in[3] + tail) {
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
    if (tail) {
        const uint8_t *x = in + S_FIXED_SIZE + c + p;
        t->flags = codec_get_u16 (x);
        t->timeout = codec_get_u32 (x + 2);
        t->pending_id = codec_decode_id (x + 6);
    }
    return format;
}

int
attempts_init (attempts_t *self, size_t cap)
{
    assert (self && cap > 0 && cap <= INT32_MAX);
    memset (self, 0, sizeof (*self));
    self->free_head = -1;
    self->keys.first = self->keys.last = -1;
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

void
attempts_prefetch (const attempts_t *self, rl_id_t id)
{
    assert (self);
    idmap_prefetch (self->heads, id);
}

void
attempts_prefetch_entry (const attempts_t *self, rl_id_t id)
{
    int32_t i = attempts_head (self, id);
    if (i >= 0) {
        __builtin_prefetch (&self->slots[i]);
        __builtin_prefetch ((const char *) &self->slots[i] + 64);
    }
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
    self->slots[i].key_prev = self->slots[i].key_next = -1;
    self->slots[i].peer_index = -1;
    self->slots[i].request = -1;
    self->count++;
    if ((size_t) i >= self->span) {
        self->span = (size_t) i + 1;
    }
    assert (self->count <= self->cap);
    return i;
}

void
attempts_remove (attempts_t *self, int32_t i)
{
    assert (self);
    assert (i >= 0 && (size_t) i < self->cap && self->slots[i].state != ATTEMPT_FREE);
    assert (self->count > 0);
    assert (!self->slots[i].keyed); //  attempts_key_drop first: the key order holds no free slot
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
    assert (self->count <= self->span && self->span <= self->cap); //  invariant 3
    return self->span;
}

attempt_t *
attempts_at (attempts_t *self, int32_t i)
{
    assert (self && i >= 0 && (size_t) i < self->cap);
    return &self->slots[i];
}

//  Keys ----------------------------------------------------------------------
//
//  BACKGROUND: a record of the `xlog` or `prepared` column family is
//  needed from its put until its transfer is settled (the decision
//  acknowledged, the credit applied, the tombstone expired); it used to be
//  deleted then, one delete per record, two more RocksDB entries on every
//  cross-shard transfer.
//
//  BEHAVIOR: the keyed entries are kept in the order of their keys (a
//  doubly linked list through key_prev/key_next: a new key is the highest,
//  so it goes last; a drop unlinks in O(1)). The lowest key still needed,
//  the bound, is the first entry's. Every key below it is a record no
//  longer needed, so once the bound has moved ATTEMPTS_KEYS_STEP keys
//  past range_low, or when no key is needed any more, [range_low, bound)
//  is deleted by one range tombstone in the batch of the turn that moved
//  it. A needed record is never below the bound: deleting one would lose a
//  decision whose participant has not acknowledged it, so the
//  participant's next query would be answered with a presumed abort of a
//  committed transfer (test_twophase's test_keys_bound checks it).
//
//  A record not needed but above the bound stays on disk until the bound
//  passes it: after a crash it loads again. Its owner treats it as it
//  treats a delete lost in a crash: a logged decision is sent again (the
//  participant acknowledges it again: invariant 1 of participant.c), a
//  prepared record whose credit leg was applied is dropped at load
//  (participant.c), an expired tombstone becomes a tombstone again.
//
//  LIMITS (attempts.h): one entry that stays needed (a participant away,
//  a heuristic record, kept for ever) would hold the bound back for ever.
//  So a record dropped ATTEMPTS_KEYS_WINDOW keys or more above the bound
//  is deleted at once (as before), and the first entry, once it lags the
//  newest key by more than half the window, is put again under a new key
//  (one such move per drop): the column family holds at most
//  ATTEMPTS_KEYS_WINDOW + ATTEMPTS_KEYS_STEP records that are not needed.

void
attempts_keys_init (attempts_t *self, store_t *store, store_cf_t cf)
{
    assert (self && store && self->count == 0);
    self->keys = (attempts_keys_t){.store = store, .cf = cf, .first = -1, .last = -1};
}

//  Links entry i last in the key order (its key is the highest).
static void
s_key_link (attempts_t *self, int32_t i)
{
    attempt_t *e = &self->slots[i];
    assert (!e->keyed && e->key_seq > 0);
    assert (self->keys.last < 0 || self->slots[self->keys.last].key_seq < e->key_seq);
    e->keyed = true;
    e->key_prev = self->keys.last;
    e->key_next = -1;
    if (self->keys.last >= 0) {
        self->slots[self->keys.last].key_next = i;
    } else {
        self->keys.first = i;
    }
    self->keys.last = i;
}

static void
s_key_unlink (attempts_t *self, int32_t i)
{
    attempt_t *e = &self->slots[i];
    assert (e->keyed);
    if (e->key_prev >= 0) {
        self->slots[e->key_prev].key_next = e->key_next;
    } else {
        self->keys.first = e->key_next;
    }
    if (e->key_next >= 0) {
        self->slots[e->key_next].key_prev = e->key_prev;
    } else {
        self->keys.last = e->key_prev;
    }
    e->keyed = false;
    e->key_prev = e->key_next = -1;
}

void
attempts_key_assign (attempts_t *self, int32_t i)
{
    assert (self && self->keys.store && i >= 0 && (size_t) i < self->cap);
    self->slots[i].key_seq = ++self->keys.key_seq;
    s_key_link (self, i);
}

void
attempts_key_loaded (attempts_t *self, int32_t i, uint64_t key)
{
    assert (self && self->keys.store && i >= 0 && (size_t) i < self->cap);
    assert (key > 0);
    self->slots[i].key_seq = key;
    s_key_link (self, i); //  asserts the increasing order of the scan
    if (key > self->keys.key_seq) {
        self->keys.key_seq = key;
    }
}

void
attempts_key_put (attempts_t *self, int32_t i)
{
    assert (self && self->keys.store && i >= 0 && (size_t) i < self->cap);
    const attempt_t *e = &self->slots[i];
    assert (e->keyed && e->key_seq > 0);
    uint8_t format = e->state == ATTEMPT_DECIDED     ? ATTEMPT_VALUE_LOG
                     : e->state == ATTEMPT_HEURISTIC ? ATTEMPT_VALUE_HEURISTIC
                                                     : ATTEMPT_VALUE_RECORD;
    uint8_t key[ATTEMPTS_KEY_SIZE];
    uint8_t value[ATTEMPT_VALUE_SIZE_MAX];
    codec_put_u64_be (key, e->key_seq);
    size_t size = attempt_value_encode (e, format, value);
    store_batch_put (self->keys.store, self->keys.cf, key, sizeof (key), value, size);
}

uint64_t
attempts_key_low (const attempts_t *self)
{
    assert (self);
    return self->keys.first >= 0 ? self->slots[self->keys.first].key_seq : self->keys.key_seq + 1;
}

static void
s_key_delete (attempts_t *self, uint64_t key_seq)
{
    uint8_t key[ATTEMPTS_KEY_SIZE];
    codec_put_u64_be (key, key_seq);
    store_batch_delete (self->keys.store, self->keys.cf, key, sizeof (key));
}

//  The first entry holds the bound back by more than half the window: it
//  moves to a new key (put there, deleted from the old one, in one batch).
static void
s_key_move_first (attempts_t *self)
{
    int32_t i = self->keys.first;
    if (i < 0 || self->keys.key_seq - self->slots[i].key_seq <= ATTEMPTS_KEYS_WINDOW / 2) {
        return;
    }
    uint64_t old = self->slots[i].key_seq;
    s_key_unlink (self, i);
    attempts_key_assign (self, i);
    attempts_key_put (self, i);
    s_key_delete (self, old);
    self->keys.moves++;
    assert (self->slots[i].key_seq > old && self->keys.last == i);
}

void
attempts_key_drop (attempts_t *self, int32_t i)
{
    assert (self && self->keys.store && i >= 0 && (size_t) i < self->cap);
    uint64_t key = self->slots[i].key_seq;
    s_key_unlink (self, i);
    if (key >= attempts_key_low (self) + ATTEMPTS_KEYS_WINDOW) {
        s_key_delete (self, key); //  far above the bound: now, or it could stay for long
        self->keys.point_drops++;
    }
    s_key_move_first (self);
    uint64_t low = attempts_key_low (self);
    assert (low >= self->keys.range_low); //  the bound never moves back
    //  A step of keys, or nothing needed any more (so that a shard stopped
    //  when its traffic has settled loads nothing again; at one transfer in
    //  flight this is one range delete per transfer, as many entries as the
    //  deletes it replaces).
    bool settled = self->keys.first < 0 && low > self->keys.range_low;
    if (low - self->keys.range_low >= ATTEMPTS_KEYS_STEP || settled) {
        uint8_t begin[ATTEMPTS_KEY_SIZE], end[ATTEMPTS_KEY_SIZE];
        codec_put_u64_be (begin, self->keys.range_low);
        codec_put_u64_be (end, low);
        store_batch_delete_range (self->keys.store, self->keys.cf, begin, sizeof (begin), end,
                                  sizeof (end));
        self->keys.range_low = low;
        self->keys.range_drops++;
    }
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
