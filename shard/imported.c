/*  imported.c: the imported key space.

    WHY
    A migration copies an account's transfer records to a shard that did
    not assign their timestamps. Two shards can pick the same timestamp,
    and recovery replays every record of the `transfers` family after the
    checkpoint into balances, so imported records cannot go there: they
    would collide, and a restart would apply them a second time. They live
    in a column family of their own, keyed by (origin shard, timestamp,
    transfer id), which recovery never reads.

    KEYS (column family `imported`; integers big-endian so that keys sort
    by number; ids as their 16 wire bytes)
        'T' origin(8) ts(8) id(16)        -> transfer record (128, wire form,
                                             reserved = stored result | leg << 32)
        'I' id(16) debit(16)              -> origin(8) ts(8): the record of a
                                             transfer whose debit account is in
                                             the arc (idempotency, lookup_transfers);
                                             keyed by the debit account too, like
                                             'L': two shards may each hold a record
                                             of one id (a client reused it with
                                             another debit account), and both can
                                             move to one shard. (A store written
                                             before holds 'I' id(16): still read.)
        'L' id(16) debit(16)              -> origin(8) ts(8): a credit leg applied
                                             by the origin (a resent decision or
                                             PREPARE is recognised)
        'H' account(16) ts(8) origin(8) id(16) -> (empty): history, ok records,
                                             one key per side of the arc
        'A' id(16)                        -> account snapshot (128): staged; the
                                             handover makes it the live account
        'P' id(16) debit(16) side(1)      -> a transfer still pending (128, as the
                                             source's pending table holds it, its
                                             side there in `reserved`): staged by
                                             the final round; the handover puts it
                                             into the pending table (migrate.c).
                                             Every round's first chunk deletes the
                                             staged ones first, so that only the
                                             last round's stand.
    `origin` is the XXH3 of the name of the shard that assigned the
    timestamp (migrate.c), kept when a record moves again.

    INVARIANTS
    1. Every key is a function of the entry alone: importing an entry
       twice writes the same keys with the same values (resumed copies
       never duplicate anything).
    2. An 'I', 'L' or 'H' key exists only beside the 'T' key it names.
    3. Only entries of the arc are written (imported_entry_fits, asserted).
*/
#include "imported.h"

#include <assert.h>
#include <string.h>

#include "codec.h"
#include "journal.h"
#include "ring.h"

#define S_REF_SIZE     16 //  origin(8) ts(8)
#define S_HISTORY_SIZE (1 + RL_ID_SIZE + 8 + 8 + RL_ID_SIZE)

bool
imported_in_arc (uint64_t start, uint64_t end, rl_id_t account)
{
    assert (start != end);
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (account, bytes);
    uint64_t p = ring_point_of_id (bytes);
    return start < end ? (p > start && p <= end) : (p > start || p <= end);
}

//  The sides of a transfer record this shard applied: its leg.
static void
s_sides (const rl_transfer_t *t, bool *debit_p, bool *credit_p)
{
    uint32_t leg = JOURNAL_LEG (t->reserved);
    *debit_p = leg != JOURNAL_LEG_CREDIT;
    *credit_p = leg != JOURNAL_LEG_DEBIT;
}

bool
imported_entry_fits (uint64_t start, uint64_t end, const chunk_entry_t *e)
{
    assert (e);
    if (e->kind == RL_CHUNK_ACCOUNT) {
        return imported_in_arc (start, end, e->account.id);
    }
    if (e->kind == RL_CHUNK_PENDING) {
        return imported_pending_side (start, end, &e->transfer) >= 0;
    }
    bool debit, credit;
    s_sides (&e->transfer, &debit, &credit);
    return (debit && imported_in_arc (start, end, e->transfer.debit_account_id))
           || (credit && imported_in_arc (start, end, e->transfer.credit_account_id));
}

static void
s_ref (uint8_t *out, uint64_t origin, uint64_t ts)
{
    codec_put_u64_be (out, origin);
    codec_put_u64_be (out + 8, ts);
}

static void
s_history_key (uint8_t *k, rl_id_t account, uint64_t ts, uint64_t origin, rl_id_t id)
{
    k[0] = IMPORTED_HISTORY;
    codec_encode_id (account, k + 1);
    codec_put_u64_be (k + 1 + RL_ID_SIZE, ts);
    codec_put_u64_be (k + 1 + RL_ID_SIZE + 8, origin);
    codec_encode_id (id, k + 1 + RL_ID_SIZE + 16);
}

int
imported_pending_side (uint64_t start, uint64_t end, const rl_transfer_t *t)
{
    assert (t);
    uint32_t side = (uint32_t) (t->reserved >> 8) & 0xff; //  pending.h: 0 both, 1 debit, 2 credit
    bool debit = side != 2 && imported_in_arc (start, end, t->debit_account_id);
    bool credit = side != 1 && imported_in_arc (start, end, t->credit_account_id);
    if (side > 2 || (!debit && !credit)) {
        return -1;
    }
    return debit && credit ? 0 : debit ? 1 : 2;
}

void
imported_pending_key (const rl_transfer_t *t, uint8_t *key)
{
    key[0] = IMPORTED_PENDING;
    codec_encode_id (t->id, key + 1);
    codec_encode_id (t->debit_account_id, key + 1 + RL_ID_SIZE);
    key[1 + 2 * RL_ID_SIZE] = (uint8_t) (t->reserved >> 8);
}

void
imported_put (store_t *store, uint64_t start, uint64_t end, const chunk_entry_t *e)
{
    assert (store && e && imported_entry_fits (start, end, e));
    if (e->kind == RL_CHUNK_PENDING) {
        uint8_t key[IMPORTED_PENDING_KEY_SIZE], value[RL_TRANSFER_SIZE];
        imported_pending_key (&e->transfer, key);
        codec_encode_transfer (&e->transfer, value);
        store_batch_put (store, STORE_CF_IMPORTED, key, sizeof (key), value, sizeof (value));
        return;
    }
    if (e->kind == RL_CHUNK_ACCOUNT) {
        uint8_t key[1 + RL_ID_SIZE], value[RL_ACCOUNT_SIZE];
        key[0] = IMPORTED_ACCOUNT;
        codec_encode_id (e->account.id, key + 1);
        codec_encode_account (&e->account, value);
        store_batch_put (store, STORE_CF_IMPORTED, key, sizeof (key), value, sizeof (value));
        return;
    }
    const rl_transfer_t *t = &e->transfer;
    uint8_t key[IMPORTED_TRANSFER_KEY_SIZE], value[RL_TRANSFER_SIZE], ref[S_REF_SIZE];
    key[0] = IMPORTED_TRANSFER;
    s_ref (key + 1, e->origin, t->timestamp);
    codec_encode_id (t->id, key + 17);
    codec_encode_transfer (t, value);
    store_batch_put (store, STORE_CF_IMPORTED, key, sizeof (key), value, sizeof (value));
    s_ref (ref, e->origin, t->timestamp);
    bool debit, credit;
    s_sides (t, &debit, &credit);
    bool debit_here = debit && imported_in_arc (start, end, t->debit_account_id);
    bool credit_here = credit && imported_in_arc (start, end, t->credit_account_id);
    if (debit_here) {
        uint8_t k[1 + 2 * RL_ID_SIZE];
        k[0] = IMPORTED_BY_ID;
        codec_encode_id (t->id, k + 1);
        codec_encode_id (t->debit_account_id, k + 1 + RL_ID_SIZE);
        store_batch_put (store, STORE_CF_IMPORTED, k, sizeof (k), ref, sizeof (ref));
    }
    if (credit_here && JOURNAL_LEG (t->reserved) == JOURNAL_LEG_CREDIT) {
        uint8_t k[1 + 2 * RL_ID_SIZE];
        k[0] = IMPORTED_LEG;
        codec_encode_id (t->id, k + 1);
        codec_encode_id (t->debit_account_id, k + 1 + RL_ID_SIZE);
        store_batch_put (store, STORE_CF_IMPORTED, k, sizeof (k), ref, sizeof (ref));
    }
    if (JOURNAL_RESULT (t->reserved) != RL_OK) {
        return; //  a burned id is not a transfer: no history
    }
    uint8_t h[S_HISTORY_SIZE];
    if (debit_here) {
        s_history_key (h, t->debit_account_id, t->timestamp, e->origin, t->id);
        store_batch_put (store, STORE_CF_IMPORTED, h, sizeof (h), "", 0);
    }
    if (credit_here) {
        s_history_key (h, t->credit_account_id, t->timestamp, e->origin, t->id);
        store_batch_put (store, STORE_CF_IMPORTED, h, sizeof (h), "", 0);
    }
}

static int s_record (store_t *store, const uint8_t *ref, rl_id_t id, rl_transfer_t *out);

//  Does the key exist with the value `ref` (when ref is not NULL)? 1, 0, -1.
static int
s_names (store_t *store, const uint8_t *key, size_t key_size, const uint8_t *ref)
{
    uint8_t value[S_REF_SIZE];
    size_t size = 0;
    int rc = store_get (store, STORE_CF_IMPORTED, key, key_size, value, sizeof (value), &size);
    if (rc != 1) {
        return rc;
    }
    return !ref || (size == S_REF_SIZE && memcmp (value, ref, S_REF_SIZE) == 0);
}

//  A record of the arc: does a key of an account outside the arc name it?
static int
s_record_named_outside (store_t *store, uint64_t start, uint64_t end, const rl_transfer_t *t,
                        uint64_t origin)
{
    uint8_t ref[S_REF_SIZE];
    s_ref (ref, origin, t->timestamp);
    bool debit, credit;
    s_sides (t, &debit, &credit);
    bool debit_out = debit && !imported_in_arc (start, end, t->debit_account_id);
    bool credit_out = credit && !imported_in_arc (start, end, t->credit_account_id);
    int rc = 0;
    uint8_t k[S_HISTORY_SIZE];
    if (debit_out) {
        k[0] = IMPORTED_BY_ID;
        codec_encode_id (t->id, k + 1);
        codec_encode_id (t->debit_account_id, k + 1 + RL_ID_SIZE);
        rc = s_names (store, k, 1 + 2 * RL_ID_SIZE, ref);
        if (rc == 0) {
            rc = s_names (store, k, 1 + RL_ID_SIZE, ref); //  the key of an older store
        }
        if (rc == 0) {
            s_history_key (k, t->debit_account_id, t->timestamp, origin, t->id);
            rc = s_names (store, k, S_HISTORY_SIZE, NULL);
        }
    }
    if (rc == 0 && credit_out) {
        k[0] = IMPORTED_LEG;
        codec_encode_id (t->id, k + 1);
        codec_encode_id (t->debit_account_id, k + 1 + RL_ID_SIZE);
        rc = s_names (store, k, 1 + 2 * RL_ID_SIZE, ref);
        if (rc == 0) {
            s_history_key (k, t->credit_account_id, t->timestamp, origin, t->id);
            rc = s_names (store, k, S_HISTORY_SIZE, NULL);
        }
    }
    return rc;
}

int
imported_abort_verdict (store_t *store, uint64_t start, uint64_t end, const uint8_t *key,
                        size_t key_size, const uint8_t *value, size_t value_size)
{
    assert (store && key && start != end);
    if (key_size == 0) {
        return -1;
    }
    switch (key[0]) {
        case IMPORTED_ACCOUNT:
        case IMPORTED_HISTORY:
            if (key_size != (key[0] == IMPORTED_ACCOUNT ? 1 + RL_ID_SIZE : S_HISTORY_SIZE)) {
                return -1;
            }
            return imported_in_arc (start, end, codec_decode_id (key + 1));
        case IMPORTED_BY_ID:
        case IMPORTED_LEG: {
            //  Written for the arc when its debit (I) or credit (L) account is
            //  in it: read the record it names.
            //  ('I' id alone: the key of an older store.)
            bool sized = key_size == 1 + 2 * RL_ID_SIZE
                         || (key[0] == IMPORTED_BY_ID && key_size == 1 + RL_ID_SIZE);
            if (!sized || value_size != S_REF_SIZE) {
                return -1;
            }
            rl_transfer_t t;
            if (s_record (store, value, codec_decode_id (key + 1), &t) != 1) {
                return -1;
            }
            rl_id_t account = key[0] == IMPORTED_BY_ID ? t.debit_account_id : t.credit_account_id;
            return imported_in_arc (start, end, account);
        }
        case IMPORTED_PENDING: {
            if (key_size != IMPORTED_PENDING_KEY_SIZE || value_size != RL_TRANSFER_SIZE) {
                return -1;
            }
            rl_transfer_t t;
            codec_decode_transfer (value, &t);
            return imported_pending_side (start, end, &t) >= 0;
        }
        case IMPORTED_TRANSFER: {
            if (key_size != IMPORTED_TRANSFER_KEY_SIZE || value_size != RL_TRANSFER_SIZE) {
                return -1;
            }
            chunk_entry_t e = {.kind = RL_CHUNK_TRANSFER, .origin = codec_get_u64_be (key + 1)};
            codec_decode_transfer (value, &e.transfer);
            if (!imported_entry_fits (start, end, &e)) {
                return 0; //  another arc's record
            }
            int named = s_record_named_outside (store, start, end, &e.transfer, e.origin);
            return named < 0 ? -1 : !named;
        }
        default:
            return -1;
    }
}

bool
imported_any (store_t *store)
{
    store_iter_t *it = store_iter_new (store, STORE_CF_IMPORTED);
    if (!it) {
        return true; //  cannot tell: consult it (a lookup then reports the error)
    }
    store_iter_seek_first (it);
    bool any = store_iter_valid (it);
    store_iter_destroy (&it);
    return any;
}

//  The transfer record named by a reference (origin, ts) and id.
static int
s_record (store_t *store, const uint8_t *ref, rl_id_t id, rl_transfer_t *out)
{
    uint8_t key[IMPORTED_TRANSFER_KEY_SIZE], value[RL_TRANSFER_SIZE];
    key[0] = IMPORTED_TRANSFER;
    memcpy (key + 1, ref, S_REF_SIZE);
    codec_encode_id (id, key + 17);
    size_t size = 0;
    int rc = store_get (store, STORE_CF_IMPORTED, key, sizeof (key), value, sizeof (value), &size);
    if (rc != 1 || size != RL_TRANSFER_SIZE) {
        return -1; //  invariant 2: a reference without its record is damage
    }
    codec_decode_transfer (value, out);
    return 1;
}

//  The first record of the id whose 'I' key (either size) satisfies
//  debit (NULL: any), from the keys that begin with 'I' id.
static int
s_find_by_id (store_t *store, rl_id_t id, const rl_id_t *debit, rl_transfer_t *out)
{
    store_iter_t *it = store_iter_new (store, STORE_CF_IMPORTED);
    if (!it) {
        return -1;
    }
    uint8_t prefix[1 + RL_ID_SIZE];
    prefix[0] = IMPORTED_BY_ID;
    codec_encode_id (id, prefix + 1);
    int rc = 0;
    for (store_iter_seek (it, prefix, sizeof (prefix)); rc == 0 && store_iter_valid (it);
         store_iter_next (it)) {
        size_t key_size = 0, size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        if (key_size < sizeof (prefix) || memcmp (key, prefix, sizeof (prefix)) != 0) {
            break;
        }
        const uint8_t *ref = store_iter_value (it, &size);
        if ((key_size != sizeof (prefix) && key_size != sizeof (prefix) + RL_ID_SIZE)
            || size != S_REF_SIZE || s_record (store, ref, id, out) != 1) {
            rc = -1;
        } else if (!debit || rl_id_eq (out->debit_account_id, *debit)) {
            rc = 1;
        }
    }
    store_iter_destroy (&it);
    return rc;
}

int
imported_find (store_t *store, rl_id_t id, rl_transfer_t *out)
{
    assert (store && out);
    return s_find_by_id (store, id, NULL, out);
}

int
imported_find_debit (store_t *store, rl_id_t id, rl_id_t debit_account_id, rl_transfer_t *out)
{
    assert (store && out);
    uint8_t key[1 + 2 * RL_ID_SIZE], ref[S_REF_SIZE];
    key[0] = IMPORTED_BY_ID;
    codec_encode_id (id, key + 1);
    codec_encode_id (debit_account_id, key + 1 + RL_ID_SIZE);
    size_t size = 0;
    int rc = store_get (store, STORE_CF_IMPORTED, key, sizeof (key), ref, sizeof (ref), &size);
    if (rc == 1) {
        return size == S_REF_SIZE ? s_record (store, ref, id, out) : -1;
    }
    return rc < 0 ? rc : s_find_by_id (store, id, &debit_account_id, out);
}

int
imported_leg_applied (store_t *store, rl_id_t id, rl_id_t debit_account_id)
{
    assert (store);
    uint8_t key[1 + 2 * RL_ID_SIZE], ref[S_REF_SIZE];
    key[0] = IMPORTED_LEG;
    codec_encode_id (id, key + 1);
    codec_encode_id (debit_account_id, key + 1 + RL_ID_SIZE);
    size_t size = 0;
    return store_get (store, STORE_CF_IMPORTED, key, sizeof (key), ref, sizeof (ref), &size);
}

bool
imported_history_side (const rl_transfer_t *t, rl_id_t account_id, uint32_t filter_flags)
{
    assert (t);
    uint32_t leg = JOURNAL_LEG (t->reserved);
    bool debit = (filter_flags & RL_FILTER_DEBITS) && leg != JOURNAL_LEG_CREDIT
                 && rl_id_eq (t->debit_account_id, account_id);
    bool credit = (filter_flags & RL_FILTER_CREDITS) && leg != JOURNAL_LEG_DEBIT
                  && rl_id_eq (t->credit_account_id, account_id);
    return debit || credit;
}

int
imported_history (store_t *store, rl_id_t account_id, uint64_t ts_min, uint64_t ts_max,
                  uint32_t filter_flags, bool reversed, rl_transfer_t *out, size_t cap,
                  size_t *count_p)
{
    assert (store && count_p && (out || cap == 0));
    *count_p = 0;
    if (cap == 0 || ts_min > ts_max) {
        return 0;
    }
    store_iter_t *it = store_iter_new (store, STORE_CF_IMPORTED);
    if (!it) {
        return -1;
    }
    uint8_t seek[S_HISTORY_SIZE];
    seek[0] = IMPORTED_HISTORY;
    codec_encode_id (account_id, seek + 1);
    if (reversed) {
        codec_put_u64_be (seek + 1 + RL_ID_SIZE, ts_max);
        memset (seek + 1 + RL_ID_SIZE + 8, 0xff, 8 + RL_ID_SIZE);
        store_iter_seek_for_prev (it, seek, sizeof (seek));
    } else {
        codec_put_u64_be (seek + 1 + RL_ID_SIZE, ts_min);
        memset (seek + 1 + RL_ID_SIZE + 8, 0, 8 + RL_ID_SIZE);
        store_iter_seek (it, seek, sizeof (seek));
    }
    int rc = 0;
    for (; store_iter_valid (it) && *count_p < cap;
         reversed ? store_iter_prev (it) : store_iter_next (it)) {
        size_t size = 0;
        const uint8_t *k = store_iter_key (it, &size);
        if (size != S_HISTORY_SIZE || memcmp (k, seek, 1 + RL_ID_SIZE) != 0) {
            break;
        }
        uint64_t ts = codec_get_u64_be (k + 1 + RL_ID_SIZE);
        if (ts < ts_min || ts > ts_max) {
            break;
        }
        uint8_t ref[S_REF_SIZE];
        codec_put_u64_be (ref, codec_get_u64_be (k + 1 + RL_ID_SIZE + 8));
        codec_put_u64_be (ref + 8, ts);
        rl_id_t id = codec_decode_id (k + 1 + RL_ID_SIZE + 16);
        if (s_record (store, ref, id, &out[*count_p]) != 1) {
            rc = -1;
            break;
        }
        if (imported_history_side (&out[*count_p], account_id, filter_flags)) {
            (*count_p)++;
        }
    }
    store_iter_destroy (&it);
    return rc;
}

int
imported_account (store_t *store, rl_id_t id, rl_account_t *out)
{
    assert (store && out);
    uint8_t key[1 + RL_ID_SIZE], value[RL_ACCOUNT_SIZE];
    key[0] = IMPORTED_ACCOUNT;
    codec_encode_id (id, key + 1);
    size_t size = 0;
    int rc = store_get (store, STORE_CF_IMPORTED, key, sizeof (key), value, sizeof (value), &size);
    if (rc <= 0) {
        return rc;
    }
    if (size != RL_ACCOUNT_SIZE) {
        return -1;
    }
    codec_decode_account (value, out);
    return 1;
}
