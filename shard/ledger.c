/*  ledger.c: accounts and transfers of one shard.

    DESIGN
    Balances live in memory; the durable truth is the `transfers` column
    family, where every transfer that took effect or burned its id is one
    record keyed by its shard timestamp. Timestamps only grow, so these
    inserts land at the end of the memtable skiplist, which costs a fraction
    of a random-key insert: one such put per transfer is the whole write
    cost of a group commit (plus one small meta put).

    Everything else is derived, and caught up at checkpoints:
      - accounts: written in full (the dirty ones) at each checkpoint;
      - tx_index (id -> timestamp) and history (account, timestamp): kept in
        memory for the transfers since the last checkpoint ("recent"), then
        sorted and ingested as SST files, bypassing the memtable.
    A checkpoint writes the dirty accounts and meta.checkpoint_ts in one
    synced batch, after the indexes are ingested. Recovery loads the
    accounts and replays every transfer after checkpoint_ts: it re-applies
    the balances of the ok ones and rebuilds "recent". A crash between the
    ingest and the batch only re-ingests identical index entries.

    INVARIANTS
    1. Every account's balances equal the sum of its ok transfers (history).
    2. A transfer id has at most one record: the idempotency check consults
       recent, then tx_index, before anything else is decided.
    3. Timestamps strictly increase: ts = max(now, last + 1); last is
       persisted in the batch of every group commit that assigns one.
    4. Limits count posted + pending + reserved (reserved: cross-shard escrow).
    5. accounts CF + replay of transfers after checkpoint_ts == memory.

    RESULTS (docs/protocol.md): id validation, ownership, idempotency, field
    validation, account lookups, ledger, balances. Field validation depends
    on the record alone and is not stored; lookups, ledger and balance
    failures are stored (they burn the id) so that a retry gets the same
    answer forever.

    LIMITS: RL_SHARD_ACCOUNTS_MAX accounts; RL_SHARD_CHECKPOINT_TRANSFERS
    between checkpoints (plus at most one loop turn). A history query scans
    the recent transfers linearly for the account: O(recent), at most one
    checkpoint interval.
*/
#include "ledger.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "idmap.h"
#include "ledger_internal.h"
#include "rl_limits.h"
#include "log.h"

#define META_LAST_TS       "last_ts"
#define META_CHECKPOINT_TS "checkpoint_ts"

//  Storage form of a transfer: the wire record, with the result in `reserved`.
static void
s_put_transfer (ledger_t *self, const rl_transfer_t *transfer)
{
    uint8_t key[8];
    uint8_t value[RL_TRANSFER_SIZE];
    codec_put_u64_be (key, transfer->timestamp);
    codec_encode_transfer (transfer, value);
    store_batch_put (self->store, STORE_CF_TRANSFERS, key, sizeof (key), value, sizeof (value));
}

static void
s_put_meta_u64 (ledger_t *self, const char *name, uint64_t value)
{
    uint8_t bytes[8];
    codec_put_u64 (bytes, value);
    store_batch_put (self->store, STORE_CF_META, name, strlen (name), bytes, sizeof (bytes));
}

static int
s_get_meta_u64 (ledger_t *self, const char *name, uint64_t *value_p)
{
    uint8_t bytes[8];
    size_t size = 0;
    int rc = store_get (self->store, STORE_CF_META, name, strlen (name), bytes, sizeof (bytes),
                        &size);
    if (rc == 1 && size == sizeof (bytes)) {
        *value_p = codec_get_u64 (bytes);
        return 0;
    }
    if (rc == 0) {
        *value_p = 0;
        return 0;
    }
    return -1;
}

uint64_t
ledger_i_next_ts (ledger_t *self, uint64_t now_ns)
{
    self->last_ts = now_ns > self->last_ts ? now_ns : self->last_ts + 1;
    return self->last_ts;
}

//  The in-memory key of a credit leg: both ids mixed into 128 bits. A hit is
//  confirmed against the record, so a collision can only hide a leg from
//  the memory index, never invent one.
static rl_id_t
s_leg_key (rl_id_t id, rl_id_t debit)
{
    rl_id_t key = {id.lo ^ (debit.lo * 0x9E3779B97F4A7C15ull ^ debit.hi),
                   id.hi ^ (debit.hi * 0xC2B2AE3D27D4EB4Full ^ debit.lo)};
    return rl_id_is_zero (key) ? (rl_id_t){1, 0} : key;
}

int
ledger_i_leg_applied (ledger_t *self, rl_id_t id, rl_id_t debit_account_id)
{
    uint64_t index = 0;
    if (idmap_get (self->recent_legs, s_leg_key (id, debit_account_id), &index)) {
        const rl_transfer_t *t = &self->recent[index];
        if (rl_id_eq (t->id, id) && rl_id_eq (t->debit_account_id, debit_account_id)) {
            return 1;
        }
    }
    uint8_t key[2 * RL_ID_SIZE];
    uint8_t ts[8];
    size_t size = 0;
    codec_encode_id (id, key);
    codec_encode_id (debit_account_id, key + RL_ID_SIZE);
    return store_get (self->store, STORE_CF_LEGS, key, sizeof (key), ts, sizeof (ts), &size);
}

//  Appends a stored transfer to recent (ts order) and, unless it is a credit
//  leg (whose id belongs to the coordinator's id space), indexes its id.
static int
s_recent_append (ledger_t *self, const rl_transfer_t *transfer)
{
    bool index_id = LEDGER_LEG (transfer->reserved) != LEDGER_LEG_CREDIT;
    if (self->recent_count == self->recent_cap) {
        size_t cap = self->recent_cap ? self->recent_cap * 2 : RL_SHARD_CHECKPOINT_TRANSFERS;
        rl_transfer_t *recent = realloc (self->recent, cap * sizeof (*recent));
        if (!recent) {
            return -1;
        }
        self->recent = recent;
        self->recent_cap = cap;
    }
    assert (self->recent_count == 0
            || self->recent[self->recent_count - 1].timestamp < transfer->timestamp);
    if (index_id && idmap_put (self->recent_ids, transfer->id, self->recent_count) != 0) {
        return -1;
    }
    if (!index_id
        && idmap_put (self->recent_legs, s_leg_key (transfer->id, transfer->debit_account_id),
                      self->recent_count)
               != 0) {
        return -1;
    }
    self->recent[self->recent_count++] = *transfer;
    return 0;
}

int
ledger_i_store_transfer (ledger_t *self, const rl_transfer_t *record, bool index_id)
{
    assert (index_id == (LEDGER_LEG (record->reserved) != LEDGER_LEG_CREDIT));
    if (s_recent_append (self, record) != 0) {
        return -1;
    }
    s_put_transfer (self, record);
    return 0;
}

bool
ledger_i_owns (ledger_t *self, rl_id_t account_id)
{
    const char *owner = self->owner (self->owner_ctx, account_id);
    return owner && strcmp (owner, self->name) == 0;
}

//  Re-applies a stored ok transfer (or leg) to the accounts held here.
static int
s_replay_one (ledger_t *self, const rl_transfer_t *t)
{
    uint32_t leg = LEDGER_LEG (t->reserved);
    if (leg != LEDGER_LEG_CREDIT
        && accounts_post (self->accounts, t->debit_account_id, true, t->amount) != 0) {
        return -1;
    }
    if (leg != LEDGER_LEG_DEBIT
        && accounts_post (self->accounts, t->credit_account_id, false, t->amount) != 0) {
        return -1;
    }
    return 0;
}

//  Replays transfers after checkpoint_ts onto the loaded accounts.
static int
s_replay (ledger_t *self, char *err, size_t err_size)
{
    store_iter_t *it = store_iter_new (self->store, STORE_CF_TRANSFERS);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    uint8_t from[8];
    codec_put_u64_be (from, self->checkpoint_ts + 1);
    int rc = 0;
    for (store_iter_seek (it, from, sizeof (from)); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != 8 || value_size != RL_TRANSFER_SIZE) {
            snprintf (err, err_size, "corrupt transfer record (key %zu, value %zu bytes)", key_size,
                      value_size);
            rc = -1;
            break;
        }
        rl_transfer_t transfer;
        codec_decode_transfer (value, &transfer);
        assert (transfer.timestamp == codec_get_u64_be (key));
        if (LEDGER_RESULT (transfer.reserved) == RL_OK && s_replay_one (self, &transfer) != 0) {
            snprintf (err, err_size, "transfer at ts %" PRIu64 " names a missing account",
                      transfer.timestamp);
            rc = -1;
            break;
        }
        if (s_recent_append (self, &transfer) != 0) {
            snprintf (err, err_size, "out of memory replaying transfers");
            rc = -1;
            break;
        }
        if (transfer.timestamp > self->last_ts) {
            self->last_ts = transfer.timestamp;
        }
    }
    store_iter_destroy (&it);
    return rc;
}

ledger_t *
ledger_open (store_t *store, const char *name, ledger_owner_fn *owner, void *owner_ctx,
             const ledger_io_t *io, void *io_ctx, uint64_t nonce, uint64_t now_ns, char *err,
             size_t err_size)
{
    assert (store && name && owner && io);
    assert (strlen (name) < RL_SHARD_NAME_SIZE_MAX);
    ledger_t *self = calloc (1, sizeof (*self));
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->store = store;
    self->checkpoint_transfers = RL_SHARD_CHECKPOINT_TRANSFERS;
    self->owner = owner;
    self->owner_ctx = owner_ctx;
    snprintf (self->name, sizeof (self->name), "%s", name);
    self->accounts = accounts_new (store);
    self->recent_ids = idmap_new (RL_SHARD_CHECKPOINT_TRANSFERS * 2);
    self->recent_legs = idmap_new (RL_SHARD_CHECKPOINT_TRANSFERS);
    self->tp = twophase_new (self);
    if (!self->accounts || !self->recent_ids || !self->recent_legs || !self->tp) {
        snprintf (err, err_size, "out of memory");
        ledger_destroy (&self);
        return NULL;
    }
    twophase_set_io (self->tp, io, io_ctx);
    uint64_t last_ts = 0;
    if (s_get_meta_u64 (self, META_LAST_TS, &last_ts) != 0
        || s_get_meta_u64 (self, META_CHECKPOINT_TS, &self->checkpoint_ts) != 0) {
        snprintf (err, err_size, "cannot read metadata: %s", store_error (store));
        ledger_destroy (&self);
        return NULL;
    }
    self->last_ts = last_ts;
    if (accounts_load (self->accounts, &self->last_ts, err, err_size) != 0
        || s_replay (self, err, err_size) != 0
        || twophase_open (self->tp, nonce, now_ns, err, err_size) != 0) {
        ledger_destroy (&self);
        return NULL;
    }
    rl_info ("ledger: %zu accounts, %zu transfers replayed after checkpoint %" PRIu64
             ", last ts %" PRIu64,
             accounts_count (self->accounts), self->recent_count, self->checkpoint_ts,
             self->last_ts);
    return self;
}

void
ledger_destroy (ledger_t **self_p)
{
    assert (self_p);
    ledger_t *self = *self_p;
    if (!self) {
        return;
    }
    twophase_destroy (&self->tp);
    accounts_destroy (&self->accounts);
    idmap_destroy (&self->recent_ids);
    idmap_destroy (&self->recent_legs);
    free (self->recent);
    free (self);
    *self_p = NULL;
}

//  Accounts -----------------------------------------------------------------

static rl_result_rec_t
s_create_account (ledger_t *self, const rl_account_t *a, uint64_t now_ns)
{
    rl_result_rec_t r = {0};
    if (rl_id_is_zero (a->id)) {
        r.result = RL_ID_MUST_NOT_BE_ZERO;
        return r;
    }
    if (rl_id_is_max (a->id)) {
        r.result = RL_ID_MUST_NOT_BE_INT_MAX;
        return r;
    }
    if (!ledger_i_owns (self, a->id)) {
        r.result = RL_WRONG_SHARD;
        return r;
    }
    r.result = accounts_check_new (self->accounts, a, &r.timestamp);
    if (r.result != RL_OK) {
        return r;
    }
    rl_account_t account = *a;
    account.timestamp = ledger_i_next_ts (self, now_ns);
    if (accounts_insert (self->accounts, &account) != 0) {
        rl_error ("ledger: account table full (%zu accounts)", accounts_count (self->accounts));
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    r.timestamp = account.timestamp;
    return r;
}

void
ledger_create_accounts (ledger_t *self, const rl_account_t *accounts, size_t count, uint64_t now_ns,
                        rl_result_rec_t *results)
{
    assert (self);
    assert (count == 0 || (accounts && results));
    for (size_t i = 0; i < count; i++) {
        results[i] = s_create_account (self, &accounts[i], now_ns);
        results[i].index = (uint32_t) i;
    }
}

//  Transfers ----------------------------------------------------------------

static uint32_t
s_transfer_exists (const rl_transfer_t *t, const rl_transfer_t *stored)
{
    if (t->flags != stored->flags) {
        return RL_EXISTS_WITH_DIFFERENT_FLAGS;
    }
    if (!rl_id_eq (t->debit_account_id, stored->debit_account_id)) {
        return RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID;
    }
    if (!rl_id_eq (t->credit_account_id, stored->credit_account_id)) {
        return RL_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID;
    }
    if (t->amount != stored->amount) {
        return RL_EXISTS_WITH_DIFFERENT_AMOUNT;
    }
    if (!rl_id_eq (t->pending_id, stored->pending_id)) {
        return RL_EXISTS_WITH_DIFFERENT_PENDING_ID;
    }
    if (!rl_id_eq (t->user_data_128, stored->user_data_128)) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_128;
    }
    if (t->user_data_64 != stored->user_data_64) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_64;
    }
    if (t->user_data_32 != stored->user_data_32) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_32;
    }
    if (t->timeout != stored->timeout) {
        return RL_EXISTS_WITH_DIFFERENT_TIMEOUT;
    }
    if (t->ledger != stored->ledger) {
        return RL_EXISTS_WITH_DIFFERENT_LEDGER;
    }
    if (t->code != stored->code) {
        return RL_EXISTS_WITH_DIFFERENT_CODE;
    }
    //  Same record: the original outcome, ok or the failure that burned it.
    uint32_t result = LEDGER_RESULT (stored->reserved);
    return result == RL_OK ? RL_EXISTS : result;
}

static uint32_t
s_transfer_validate (const rl_transfer_t *t)
{
    if (t->timestamp != 0) {
        return RL_TIMESTAMP_MUST_BE_ZERO;
    }
    if (t->reserved != 0) {
        return RL_RESERVED_FIELD;
    }
    if (t->flags & ~RL_TRANSFER_FLAGS_KNOWN) {
        return RL_RESERVED_FLAG;
    }
    if (t->flags != 0) {
        return RL_NOT_SUPPORTED; //  linked, pending, post, void, balancing: not yet served
    }
    if (rl_id_is_zero (t->debit_account_id)) {
        return RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
    }
    if (rl_id_is_max (t->debit_account_id)) {
        return RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
    }
    if (rl_id_is_zero (t->credit_account_id)) {
        return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
    }
    if (rl_id_is_max (t->credit_account_id)) {
        return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
    }
    if (rl_id_eq (t->debit_account_id, t->credit_account_id)) {
        return RL_ACCOUNTS_MUST_BE_DIFFERENT;
    }
    if (!rl_id_is_zero (t->pending_id)) {
        return RL_PENDING_ID_MUST_BE_ZERO;
    }
    if (t->timeout != 0) {
        return RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER;
    }
    if (t->amount == 0) {
        return RL_AMOUNT_MUST_NOT_BE_ZERO;
    }
    if (t->ledger == 0) {
        return RL_LEDGER_MUST_NOT_BE_ZERO;
    }
    if (t->code == 0) {
        return RL_CODE_MUST_NOT_BE_ZERO;
    }
    return RL_OK;
}

//  Finds a stored transfer by id: recent first, then the ingested index.
//  1 found, 0 not found, -1 storage error.
int
ledger_i_transfer_find (ledger_t *self, rl_id_t id, rl_transfer_t *out)
{
    uint64_t index = 0;
    if (idmap_get (self->recent_ids, id, &index)) {
        assert (index < self->recent_count);
        *out = self->recent[index];
        return 1;
    }
    uint8_t key[RL_ID_SIZE];
    uint8_t ts_bytes[8];
    size_t size = 0;
    codec_encode_id (id, key);
    int rc = store_get (self->store, STORE_CF_TX_INDEX, key, sizeof (key), ts_bytes,
                        sizeof (ts_bytes), &size);
    if (rc != 1) {
        return rc;
    }
    uint8_t ts_key[8];
    uint8_t value[RL_TRANSFER_SIZE];
    codec_put_u64_be (ts_key, codec_get_u64 (ts_bytes));
    rc = store_get (self->store, STORE_CF_TRANSFERS, ts_key, sizeof (ts_key), value, sizeof (value),
                    &size);
    if (rc != 1 || size != RL_TRANSFER_SIZE) {
        rl_error ("ledger: tx_index names ts %" PRIu64 " with no transfer record",
                  codec_get_u64 (ts_bytes));
        return -1;
    }
    codec_decode_transfer (value, out);
    return 1;
}

static rl_result_rec_t
s_create_transfer (ledger_t *self, const rl_transfer_t *t, uint64_t now_ns, uint64_t tag,
                   uint32_t index)
{
    rl_result_rec_t r = {0};
    if (rl_id_is_zero (t->id)) {
        r.result = RL_ID_MUST_NOT_BE_ZERO;
        return r;
    }
    if (rl_id_is_max (t->id)) {
        r.result = RL_ID_MUST_NOT_BE_INT_MAX;
        return r;
    }
    //  The debit account's shard keeps the id (an invalid debit id is named
    //  by field validation below, on whichever shard the record reached).
    if (!rl_id_is_zero (t->debit_account_id) && !rl_id_is_max (t->debit_account_id)
        && !ledger_i_owns (self, t->debit_account_id)) {
        r.result = RL_WRONG_SHARD;
        return r;
    }
    rl_transfer_t stored;
    int found = ledger_i_transfer_find (self, t->id, &stored);
    if (found < 0) {
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (found) {
        r.result = s_transfer_exists (t, &stored);
        r.timestamp = stored.timestamp;
        return r;
    }
    if (twophase_is_live (self->tp, t->id)) {
        r.result = RL_IN_PROGRESS; //  one live attempt per id: wait for its decision
        return r;
    }
    r.result = s_transfer_validate (t);
    if (r.result != RL_OK) {
        return r;
    }
    const char *credit_owner = self->owner (self->owner_ctx, t->credit_account_id);
    if (!credit_owner) {
        r.result = RL_ABORTED; //  no shard owns it in this ring: nothing done, retry
        return r;
    }
    if (strcmp (credit_owner, self->name) != 0) {
        return twophase_begin (self->tp, t, credit_owner, now_ns, tag, index);
    }
    accounts_pair_t pair = {0};
    r.result = accounts_transfer_check (self->accounts, t, &pair);
    //  From here the outcome is final for this id: store it (ok or burned).
    rl_transfer_t record = *t;
    record.timestamp = ledger_i_next_ts (self, now_ns);
    record.reserved = LEDGER_STORED (r.result, LEDGER_LEG_BOTH);
    if (ledger_i_store_transfer (self, &record, true) != 0) {
        rl_error ("ledger: out of memory for the recent index");
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (r.result == RL_OK) {
        accounts_transfer_post (self->accounts, &pair, t->amount);
        self->transfers_ok++;
    }
    r.timestamp = record.timestamp;
    return r;
}

void
ledger_create_transfers (ledger_t *self, const rl_transfer_t *transfers, size_t count,
                         uint64_t now_ns, uint64_t tag, rl_result_rec_t *results)
{
    assert (self);
    assert (count == 0 || (transfers && results));
    for (size_t i = 0; i < count; i++) {
        results[i] = s_create_transfer (self, &transfers[i], now_ns, tag, (uint32_t) i);
        if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
            results[i].timestamp = 0; //  only a transfer that exists has a timestamp
        }
        results[i].index = (uint32_t) i;
    }
}

//  Lookups ------------------------------------------------------------------

void
ledger_lookup_accounts (ledger_t *self, const rl_id_t *ids, size_t count, rl_account_t *out)
{
    assert (self);
    for (size_t i = 0; i < count; i++) {
        const rl_account_t *account = accounts_get (self->accounts, ids[i]);
        if (account) {
            out[i] = *account;
        } else {
            memset (&out[i], 0, sizeof (out[i]));
            out[i].id = ids[i];
        }
    }
}

int
ledger_lookup_transfers (ledger_t *self, const rl_id_t *ids, size_t count, rl_transfer_t *out)
{
    assert (self);
    for (size_t i = 0; i < count; i++) {
        int found = ledger_i_transfer_find (self, ids[i], &out[i]);
        if (found < 0) {
            return -1;
        }
        //  Only transfers that took effect are visible; a burned id is not a transfer.
        if (!found || LEDGER_RESULT (out[i].reserved) != RL_OK) {
            memset (&out[i], 0, sizeof (out[i]));
            out[i].id = ids[i];
        }
        out[i].reserved = 0;
    }
    return 0;
}

//  History ------------------------------------------------------------------

typedef struct {
    const rl_filter_t *filter;
    uint64_t ts_min; //  inclusive
    uint64_t ts_max; //  inclusive
    rl_transfer_t *out;
    size_t count;
} s_history_t;

static bool
s_history_full (const s_history_t *h)
{
    return h->count >= h->filter->limit;
}

//  Appends t when it is on the asked side of the account and in range.
static void
s_history_offer (s_history_t *h, const rl_transfer_t *t)
{
    const rl_filter_t *f = h->filter;
    bool debit = (f->flags & RL_FILTER_DEBITS) && rl_id_eq (t->debit_account_id, f->account_id);
    bool credit = (f->flags & RL_FILTER_CREDITS) && rl_id_eq (t->credit_account_id, f->account_id);
    if ((debit || credit) && t->timestamp >= h->ts_min && t->timestamp <= h->ts_max
        && !s_history_full (h)) {
        h->out[h->count] = *t;
        h->out[h->count].reserved = 0;
        h->count++;
    }
}

static void
s_history_recent (ledger_t *self, s_history_t *h, bool reversed)
{
    for (size_t k = 0; k < self->recent_count && !s_history_full (h); k++) {
        const rl_transfer_t *t = &self->recent[reversed ? self->recent_count - 1 - k : k];
        if (LEDGER_RESULT (t->reserved) == RL_OK) {
            s_history_offer (h, t);
        }
    }
}

//  The ingested part: history keys (account, ts) for ts <= checkpoint_ts.
static int
s_history_stored (ledger_t *self, s_history_t *h, bool reversed)
{
    uint64_t hi = h->ts_max < self->checkpoint_ts ? h->ts_max : self->checkpoint_ts;
    if (h->ts_min > hi) {
        return 0;
    }
    store_iter_t *it = store_iter_new (self->store, STORE_CF_HISTORY);
    if (!it) {
        return -1;
    }
    uint8_t key[RL_ID_SIZE + 8];
    codec_encode_id (h->filter->account_id, key);
    codec_put_u64_be (key + RL_ID_SIZE, reversed ? hi : h->ts_min);
    if (reversed) {
        store_iter_seek_for_prev (it, key, sizeof (key));
    } else {
        store_iter_seek (it, key, sizeof (key));
    }
    int rc = 0;
    for (; store_iter_valid (it) && !s_history_full (h);
         reversed ? store_iter_prev (it) : store_iter_next (it)) {
        size_t size = 0;
        const uint8_t *k = store_iter_key (it, &size);
        if (size != sizeof (key) || memcmp (k, key, RL_ID_SIZE) != 0) {
            break;
        }
        uint64_t ts = codec_get_u64_be (k + RL_ID_SIZE);
        if (ts < h->ts_min || ts > hi) {
            break;
        }
        uint8_t value[RL_TRANSFER_SIZE];
        size_t value_size = 0;
        if (store_get (self->store, STORE_CF_TRANSFERS, k + RL_ID_SIZE, 8, value, sizeof (value),
                       &value_size)
                != 1
            || value_size != RL_TRANSFER_SIZE) {
            rc = -1;
            break;
        }
        rl_transfer_t t;
        codec_decode_transfer (value, &t);
        s_history_offer (h, &t);
    }
    store_iter_destroy (&it);
    return rc;
}

rl_status_t
ledger_account_transfers (ledger_t *self, const rl_filter_t *filter, rl_transfer_t *out,
                          size_t *count_p)
{
    assert (self && filter && out && count_p);
    *count_p = 0;
    if (rl_id_is_zero (filter->account_id) || rl_id_is_max (filter->account_id)
        || filter->limit == 0 || filter->limit > RL_HISTORY_LIMIT_MAX
        || (filter->flags & ~RL_FILTER_FLAGS_KNOWN)
        || !(filter->flags & (RL_FILTER_DEBITS | RL_FILTER_CREDITS)) || filter->reserved[0]
        || filter->reserved[1] || filter->reserved[2]
        || (filter->timestamp_max != 0 && filter->timestamp_min > filter->timestamp_max)) {
        return RL_STATUS_BAD_FILTER;
    }
    s_history_t h = {
        .filter = filter,
        .ts_min = filter->timestamp_min,
        .ts_max = filter->timestamp_max ? filter->timestamp_max : UINT64_MAX,
        .out = out,
    };
    bool reversed = (filter->flags & RL_FILTER_REVERSED) != 0;
    int rc = 0;
    if (reversed) {
        s_history_recent (self, &h, true);
        rc = s_history_stored (self, &h, true);
    } else {
        rc = s_history_stored (self, &h, false);
        s_history_recent (self, &h, false);
    }
    *count_p = h.count;
    return rc == 0 ? RL_STATUS_OK : RL_STATUS_STORAGE_ERROR;
}

//  Commit and checkpoint -------------------------------------------------------

void
ledger_before_commit (ledger_t *self)
{
    assert (self);
    if (store_batch_count (self->store) > 0) {
        s_put_meta_u64 (self, META_LAST_TS, self->last_ts);
    }
}

int
ledger_after_commit (ledger_t *self)
{
    assert (self);
    if (self->recent_count >= self->checkpoint_transfers) {
        return ledger_checkpoint (self);
    }
    return 0;
}

void
ledger_set_checkpoint_transfers (ledger_t *self, size_t transfers)
{
    assert (self);
    assert (transfers >= 1 && transfers <= RL_SHARD_CHECKPOINT_TRANSFERS);
    self->checkpoint_transfers = transfers;
}

static int
s_cmp_id_entry (const void *a, const void *b)
{
    return memcmp (a, b, RL_ID_SIZE);
}

static int
s_cmp_history_entry (const void *a, const void *b)
{
    return memcmp (a, b, RL_ID_SIZE + 8);
}

static int
s_cmp_leg_entry (const void *a, const void *b)
{
    return memcmp (a, b, 2 * RL_ID_SIZE);
}

//  The credit legs applied here since the checkpoint: (id, debit) -> ts.
static int
s_ingest_legs (ledger_t *self)
{
    enum { LEG_ENTRY = 2 * RL_ID_SIZE + 8 };
    size_t count = 0;
    for (size_t i = 0; i < self->recent_count; i++) {
        count += LEDGER_LEG (self->recent[i].reserved) == LEDGER_LEG_CREDIT;
    }
    if (count == 0) {
        return 0;
    }
    uint8_t *legs = malloc (count * LEG_ENTRY);
    if (!legs) {
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < self->recent_count && n < count; i++) {
        const rl_transfer_t *t = &self->recent[i];
        if (LEDGER_LEG (t->reserved) == LEDGER_LEG_CREDIT) {
            uint8_t *entry = legs + n++ * LEG_ENTRY;
            codec_encode_id (t->id, entry);
            codec_encode_id (t->debit_account_id, entry + RL_ID_SIZE);
            codec_put_u64 (entry + 2 * RL_ID_SIZE, t->timestamp);
        }
    }
    qsort (legs, n, LEG_ENTRY, s_cmp_leg_entry);
    int rc = store_ingest_sorted (self->store, STORE_CF_LEGS, legs, LEG_ENTRY, 2 * RL_ID_SIZE, n);
    free (legs);
    return rc;
}

//  Sorts and ingests tx_index and history entries for every recent transfer.
static int
s_ingest_recent (ledger_t *self)
{
    enum { ID_ENTRY = RL_ID_SIZE + 8, HISTORY_ENTRY = RL_ID_SIZE + 8 };
    uint8_t *ids = malloc (self->recent_count * ID_ENTRY);
    uint8_t *history = malloc (self->recent_count * 2 * HISTORY_ENTRY);
    if (!ids || !history) {
        free (ids);
        free (history);
        return -1;
    }
    size_t history_count = 0, id_count = 0;
    for (size_t i = 0; i < self->recent_count; i++) {
        const rl_transfer_t *t = &self->recent[i];
        uint32_t leg = LEDGER_LEG (t->reserved);
        if (leg != LEDGER_LEG_CREDIT) {
            codec_encode_id (t->id, ids + id_count * ID_ENTRY);
            codec_put_u64 (ids + id_count * ID_ENTRY + RL_ID_SIZE, t->timestamp);
            id_count++;
        }
        if (LEDGER_RESULT (t->reserved) == RL_OK) {
            uint8_t *entry = NULL;
            if (leg != LEDGER_LEG_CREDIT) {
                entry = history + history_count++ * HISTORY_ENTRY;
                codec_encode_id (t->debit_account_id, entry);
                codec_put_u64_be (entry + RL_ID_SIZE, t->timestamp);
            }
            if (leg != LEDGER_LEG_DEBIT) {
                entry = history + history_count++ * HISTORY_ENTRY;
                codec_encode_id (t->credit_account_id, entry);
                codec_put_u64_be (entry + RL_ID_SIZE, t->timestamp);
            }
        }
    }
    qsort (ids, id_count, ID_ENTRY, s_cmp_id_entry);
    qsort (history, history_count, HISTORY_ENTRY, s_cmp_history_entry);
    int rc = store_ingest_sorted (self->store, STORE_CF_TX_INDEX, ids, ID_ENTRY, RL_ID_SIZE,
                                  id_count);
    if (rc == 0) {
        rc = s_ingest_legs (self);
    }
    if (rc == 0) {
        rc = store_ingest_sorted (self->store, STORE_CF_HISTORY, history, HISTORY_ENTRY,
                                  HISTORY_ENTRY, history_count);
    }
    free (ids);
    free (history);
    return rc;
}

int
ledger_checkpoint (ledger_t *self)
{
    assert (self);
    assert (store_batch_count (self->store) == 0);
    if (store_failed (self->store)) {
        return -1;
    }
    if (self->recent_count == 0 && accounts_dirty_count (self->accounts) == 0) {
        return 0;
    }
    if (s_ingest_recent (self) != 0) {
        rl_error ("ledger: checkpoint ingest failed: %s", store_error (self->store));
        return -1;
    }
    size_t dirty = accounts_put_dirty (self->accounts);
    s_put_meta_u64 (self, META_CHECKPOINT_TS, self->last_ts);
    s_put_meta_u64 (self, META_LAST_TS, self->last_ts);
    if (store_commit (self->store) != 0) {
        return -1;
    }
    rl_debug ("ledger: checkpoint at ts %" PRIu64 ": %zu transfers, %zu accounts", self->last_ts,
              self->recent_count, dirty);
    self->checkpoint_ts = self->last_ts;
    self->checkpoints++;
    self->recent_count = 0;
    idmap_clear (self->recent_ids);
    idmap_clear (self->recent_legs);
    return 0;
}

void
ledger_sums (const ledger_t *self, uint32_t ledger_id, uint64_t *debits_posted,
             uint64_t *credits_posted, uint64_t *debits_reserved, uint64_t *credits_reserved)
{
    assert (self);
    accounts_sums (self->accounts, ledger_id, debits_posted, credits_posted, debits_reserved,
                   credits_reserved);
}

uint64_t
ledger_account_count (const ledger_t *self)
{
    assert (self);
    return accounts_count (self->accounts);
}

uint64_t
ledger_transfer_count (const ledger_t *self)
{
    assert (self);
    return self->transfers_ok;
}

uint64_t
ledger_last_timestamp (const ledger_t *self)
{
    assert (self);
    return self->last_ts;
}

uint64_t
ledger_checkpoint_count (const ledger_t *self)
{
    assert (self);
    return self->checkpoints;
}
