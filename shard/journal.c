/*  journal.c: the durable record of every transfer, and the transfers since
    the last checkpoint.

    DESIGN
    The durable truth is the `transfers` column family, where every
    transfer that took effect or burned its id is one record keyed by its
    shard timestamp. Timestamps only grow, so these inserts land at the end
    of the memtable skiplist, which costs a fraction of a random-key insert:
    one such put per transfer is the whole write cost of a group commit
    (plus one small meta put).

    Everything else is derived, and caught up at checkpoints:
      - tx_index (id -> timestamp), legs ((id, debit account) -> timestamp)
        and history (account, timestamp): kept in memory for the transfers
        since the last checkpoint ("recent"), then sorted and ingested as
        SST files, bypassing the memtable;
      - the accounts (accounts.c), written by the checkpoint (in pieces,
        then its batch with checkpoint_ts: checkpoint.c, "PIECES").
    Recovery replays every transfer after checkpoint_ts onto the loaded
    accounts and rebuilds "recent". A crash between the ingest and the
    checkpoint batch only re-ingests identical index entries; one between
    two pieces of its accounts leaves the piece key, which the replay
    honours (invariant 4).

    GENERATIONS
    The transfers since the checkpoint are held in two generations, each
    with its id index and its credit-leg index. The loop appends to the
    live one ("recent"). A checkpoint freezes it (journal_freeze): it
    becomes the frozen generation, read-only, which the background
    checkpoint (checkpoint.c) sorts and ingests while the loop appends to
    the other, emptied generation. Lookups consult the live generation,
    then the frozen one, then the ingested indexes. Once the checkpoint's
    batch is committed, journal_thaw moves checkpoint_ts up to the frozen
    generation's end and empties it for the next freeze.

    INVARIANTS
    1. A transfer id has at most one record (credit legs aside, whose ids
       belong to the coordinator's id space and are indexed with the debit
       account): recent's index is consulted before tx_index.
    2. Timestamps strictly increase: ts = max(now, last + 1); last is
       persisted in the batch of every group commit that assigns one.
    3. frozen + live hold exactly the records with checkpoint_ts < ts <=
       last_ts, in timestamp order (asserted on append); every frozen
       record is older than every live one, and frozen_ts (the frozen
       generation's end) lies between them.
    4. accounts CF + replay of transfers after checkpoint_ts == memory.
       Recovery takes last_ts >= checkpoint_ts, so that no new timestamp
       falls at or below a checkpoint (the background batch writes
       checkpoint_ts alone: a last_ts there could move the stored one back).
       While a checkpoint's accounts are written in pieces (meta
       checkpoint_piece: its ts and the last account key written), the
       accounts at or below that key hold the balances as of that ts, and
       the replay posts to them only the transfers after it.
    6. The frozen generation is never written while frozen: the background
       checkpoint reads it without a lock.

    5. The leg index holds every credit leg in recent, keyed by the full
       32 bytes of (transfer id, debit account): two different pairs never
       share an entry, whatever their ids (see "The credit-leg index").
    7. tx_index gains ids only from the background checkpoint's ingest, and
       those ids stay in the frozen generation until journal_thaw, which
       runs between turns. So within a turn, an id absent from memory is in
       tx_index exactly when it was there at any earlier moment of the turn:
       journal_probe's answers (one batched read for a whole request) stand
       in for the per-id get of journal_find until the next thaw.
    8. The id filter (idfilter.c) holds every id this shard stores or a
       migration brought here (the 'I' keys of `imported`), before any
       lookup may need it: the ids of tx_index and of `imported` are read
       into it at open, before the replay, and every id appended or
       replayed (s_recent_append) or imported (journal_note_id) is added
       at once. So "absent" from the filter means absent from memory, from
       tx_index and from `imported`, and the reads of both are skipped.
       It never loses an id: a fuller filter only answers "maybe" more often.
       The same filter holds every credit leg (transfer id, debit account)
       in the leg index (`legs`) or in memory, under a hash of its own
       (idfilter_hash_leg): the ingested legs are read into it at open,
       and every leg appended or replayed is added at once (s_recent_append),
       before the checkpoint ingests it. So "absent" for a leg means not in
       memory and not in `legs`, and the leg check of a PREPARE skips that
       read (legs a migration imported are in `imported`, which is still
       read whenever the shard holds imported records).

    THE ID FILTER
    Built at open from a scan of the keys of tx_index, the 'I' keys of
    `imported` and the keys of `legs` (so a restored backup, a crash or a
    migration's import are all covered by the one scan), sized for twice what it holds plus two
    checkpoint intervals, then fed by every append. Nothing of it is
    persisted. When it holds more ids than it was sized for, a bigger one
    is built (journal_filter_grow) from a scan of the same keys, by the
    background checkpoint, and swapped in at the thaw with the live
    generation's ids added (LIMITS in idfilter.h).

    A STANDBY'S WARM STATE (journal_warm_*, replica_standby.c): the three
    reads of journal_open that grow with the shard, the accounts family,
    the filter's scan and the transfers after checkpoint_ts, built once
    from a standby's copy and kept current from the writes it applies,
    then handed to the promoted primary's journal_open (journal_set_warm),
    which takes them instead of reading them once they agree with the
    disk's checkpoint_ts and the ends of its transfers after it. Its filter
    holds what the scan would (the ids of tx_index, legs and imported, each
    added from the writes that put them, unless the filter already answers
    "maybe" for it); the replay adds the transfers after the checkpoint, as
    always. Its accounts are a table (accounts.c, "a standby's mirror")
    holding what accounts_load would read from the family now: every
    record put (a new account's, a checkpoint's, a migration's) goes in as
    stored, reserved and pending amounts zeroed as a load zeroes them; a
    delete takes the record out (a range delete, which the shard never
    writes into accounts, drops the state); the newest
    timestamp is kept (looked for again when that account is written over
    or deleted). The promoted recovery takes the table over
    (accounts_take: no copy; the holes of deleted accounts closed) and
    replays onto it. Nothing checks the
    accounts against the disk at the promotion but journal.warm.verify
    (tests): the mirror is right because it sees every write of the family,
    in order (the stream carries every WriteBatch; the shard ingests no
    accounts). Its builds (the first, and a bigger filter when it fills
    up) run in a thread (journal_warm_start, journal_warm_settle): the loop
    reads checkpoint_ts and the newest transfer record, the thread scans
    the ids, reads the transfers up to that record and reads the accounts
    family, and the writes applied meanwhile go into a side record (filter
    hashes; transfer records, checkpoint_ts moves and account records in
    order), replayed onto the result when the loop takes it. Bounded
    (JOURNAL_WARM_SIDE_MAX): past it the build is abandoned and begun again
    later. Memory: the filter (16 bits an id), the transfers (128 bytes
    each, at most two checkpoint intervals), and per account slot 133
    bytes of table (the record, its dirty mark and list entry) and 48 of
    index (24-byte entries, at most half full), each doubling as it fills:
    181 to 362 bytes an account (about 190 MB at a million), as the
    primary's own table; at most RL_SHARD_ACCOUNTS_MAX slots, a deleted
    account's slot a hole until the promotion, which closes the holes
    (accounts_take).

    LIMITS: RL_SHARD_CHECKPOINT_TRANSFERS between checkpoints (plus at most
    one loop turn) per generation, two generations; recent and the leg
    index grow by doubling.
*/
#include "journal.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "failpoint.h"
#include "idfilter.h"
#include "idmap.h"
#include "imported.h"
#include "log.h"
#include "rl_limits.h"

#define JOURNAL_LEGS_SLOTS_MIN 1024  //  first size of the leg index (a power of two)
#define S_FILTER_AHEAD         8     //  ids between a filter block's prefetch and its read
#define S_CANCEL_EVERY         65536 //  a build's thread looks at its cancel flag this often

//  One generation of transfers since the checkpoint, with its indexes.
typedef struct {
    rl_transfer_t *recent; //  transfers, ts order; reserved = stored
    size_t recent_count;
    size_t recent_cap;
    idmap_t *recent_ids; //  id -> index in recent (credit legs are not indexed)
    uint64_t *legs;      //  the credit-leg index: hash tag << 32 | index in recent + 1; 0: empty
    size_t legs_cap;     //  slots, a power of two
    size_t legs_count;   //  credit legs in recent
} s_gen_t;

struct journal_t {
    store_t *store;
    journal_adopt_fn *adopt; //  recovery's step before the replay (journal_set_adopt), or NULL
    void *adopt_arg;
    s_gen_t gens[2];
    s_gen_t *live;          //  appended to by the loop ("recent")
    s_gen_t *frozen;        //  being checkpointed in the background, or NULL
    uint64_t frozen_ts;     //  with frozen: the checkpoint_ts it ends at
    uint64_t last_ts;       //  last timestamp assigned (ns)
    uint64_t checkpoint_ts; //  transfers up to here are in accounts + indexes
    uint64_t transfers_ok;  //  ok transfers since open (status)
    bool imported;          //  a migration brought records here (imported.h): consult them
    bool ids_full_logged;   //  the filter's "past its capacity" said once
    size_t ids_keys_min;    //  the smallest filter built at open (IDFILTER_KEYS_MIN)
    size_t ids_extra;       //  room a new filter has beyond the ids it is built with
    bool ids_growing;       //  a bigger filter is being built (journal_filter_growth)
    bool ids_imported;      //  ... and an id was imported since it began: it misses that id
    uint64_t ids_answered;  //  ids journal_probe answered from the filter alone
    uint64_t ids_read;      //  ids it read from tx_index (the filter said "maybe")
    uint64_t legs_answered; //  legs journal_legs_probe answered from the filter alone
    idfilter_t *ids;        //  every id stored here or imported (invariant 8); NULL before open
    journal_warm_t *warm;   //  a standby's state, taken by journal_open (journal_set_warm)
    bool opened_warm;       //  journal_open took it
    uint64_t *probe_hash;   //  journal_probe's: the filter hash of each id
    //  journal_probe's buffers, RL_BATCH_RECORDS_MAX entries each:
    uint8_t *probe_keys;   //  ids, encoded
    uint8_t *probe_values; //  timestamps, as tx_index stores them
    uint8_t *probe_found;
    //  journal_legs_probe's, as many: (id, debit account) pairs, encoded,
    //  and the index in the batch of each (journal_probe's too: of each id read)
    uint8_t *legs_keys;
    uint32_t *legs_which;
    //  Recovery: a checkpoint whose accounts stopped half way (invariant 4),
    //  its ts (0: none) and the last account key its pieces wrote.
    uint64_t piece_ts;
    uint8_t piece_key[RL_ID_SIZE];
};

//  The room a bigger filter gets beyond the ids its scan finds: at least
//  the capacity of the full one, so that it is at least twice as large.
//  The filter counts every id added, an id imported twice (a chunk sent
//  again) or one in memory and on disk twice, so a scan can find fewer ids
//  than the full filter counted: with the fixed room alone, a filter of
//  2^24 ids was rebuilt as 2^24 three times in 30 s (10 s of CPU each)
//  while a migration imported millions of records.
static size_t
s_growth_extra (const idfilter_t *full, size_t extra)
{
    size_t capacity = idfilter_capacity (full);
    return capacity > extra ? capacity : extra;
}

journal_t *
journal_new (store_t *store)
{
    assert (store);
    journal_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->ids_keys_min = IDFILTER_KEYS_MIN;
    self->ids_extra = 2 * (size_t) RL_SHARD_CHECKPOINT_TRANSFERS; //  two intervals
    bool ok = true;
    for (size_t i = 0; i < 2; i++) {
        s_gen_t *gen = &self->gens[i];
        gen->recent_ids = idmap_new (RL_SHARD_CHECKPOINT_TRANSFERS * 2);
        gen->legs_cap = JOURNAL_LEGS_SLOTS_MIN;
        gen->legs = calloc (gen->legs_cap, sizeof (*gen->legs));
        ok = ok && gen->recent_ids && gen->legs;
    }
    self->live = &self->gens[0];
    self->probe_keys = malloc (RL_BATCH_RECORDS_MAX * RL_ID_SIZE);
    self->probe_values = malloc (RL_BATCH_RECORDS_MAX * 8);
    self->probe_found = malloc (RL_BATCH_RECORDS_MAX);
    self->probe_hash = malloc (RL_BATCH_RECORDS_MAX * sizeof (uint64_t));
    self->legs_keys = malloc (RL_BATCH_RECORDS_MAX * 2 * RL_ID_SIZE);
    self->legs_which = malloc (RL_BATCH_RECORDS_MAX * sizeof (uint32_t));
    ok = ok && self->probe_keys && self->probe_values && self->probe_found && self->probe_hash
         && self->legs_keys && self->legs_which;
    if (!ok) {
        journal_destroy (&self);
    }
    return self;
}

void
journal_destroy (journal_t **self_p)
{
    assert (self_p);
    journal_t *self = *self_p;
    if (!self) {
        return;
    }
    journal_warm_destroy (&self->warm);
    for (size_t i = 0; i < 2; i++) {
        idmap_destroy (&self->gens[i].recent_ids);
        free (self->gens[i].legs);
        free (self->gens[i].recent);
    }
    free (self->probe_keys);
    free (self->probe_values);
    free (self->probe_found);
    free (self->probe_hash);
    idfilter_destroy (&self->ids);
    free (self->legs_keys);
    free (self->legs_which);
    free (self);
    *self_p = NULL;
}

//  Storage form of a transfer: the wire record, with the result in `reserved`.
static void
s_put_transfer (journal_t *self, const rl_transfer_t *transfer)
{
    uint8_t key[8];
    uint8_t value[RL_TRANSFER_SIZE];
    codec_put_u64_be (key, transfer->timestamp);
    codec_encode_transfer (transfer, value);
    store_batch_put (self->store, STORE_CF_TRANSFERS, key, sizeof (key), value, sizeof (value));
}

static void
s_put_meta_u64 (journal_t *self, const char *name, uint64_t value)
{
    uint8_t bytes[8];
    codec_put_u64 (bytes, value);
    store_batch_put (self->store, STORE_CF_META, name, strlen (name), bytes, sizeof (bytes));
}

static int
s_store_meta_u64 (store_t *store, const char *name, uint64_t *value_p)
{
    uint8_t bytes[8];
    size_t size = 0;
    int rc = store_get (store, STORE_CF_META, name, strlen (name), bytes, sizeof (bytes), &size);
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

static int
s_get_meta_u64 (journal_t *self, const char *name, uint64_t *value_p)
{
    return s_store_meta_u64 (self->store, name, value_p);
}

uint64_t
journal_next_ts (journal_t *self, uint64_t wall_ns)
{
    self->last_ts = wall_ns > self->last_ts ? wall_ns : self->last_ts + 1;
    return self->last_ts;
}

//  The in-memory key of a credit leg: both ids mixed into 128 bits. A hit is
//  confirmed against the record, so a collision can only hide a leg from
//  the memory index, never invent one.
//  The credit-leg index ----------------------------------------------------
//
//  (transfer id, debit account) -> index in recent, for the credit legs
//  applied here since the checkpoint. Open addressing with linear probing
//  over a power-of-two table of recent indexes (+ 1; 0 is empty), each
//  with 32 bits of its pair's hash as a tag, kept at most half full. A probe compares the pair
//  stored in recent itself, so the key is the full 32 bytes: two pairs may share a hash, never an
//  entry. (The index used to key an idmap by a 128-bit mix of the two ids; two chosen pairs
//  collided, one hid the other, and a duplicate PREPARE plus a resent COMMIT then credited that leg
//  twice.) O(1) expected; clearing is O(slots), once a checkpoint.

static uint64_t
s_mix64 (uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t
s_leg_hash (rl_id_t id, rl_id_t debit)
{
    return s_mix64 (id.lo ^ s_mix64 (id.hi ^ s_mix64 (debit.lo ^ s_mix64 (debit.hi))));
}

static bool
s_leg_is (const rl_transfer_t *t, rl_id_t id, rl_id_t debit)
{
    return rl_id_eq (t->id, id) && rl_id_eq (t->debit_account_id, debit);
}

//  A slot: the recent index + 1 in its low 32 bits (0: empty), and the
//  high 32 bits of the pair's hash above them, so that a probe reads the
//  record in recent (128 bytes somewhere in up to 32 MB: a cache miss)
//  only when the tags match. Almost every probe is for a leg not applied
//  (every PREPARE asks), and its probe run ends without touching recent.
static uint64_t
s_leg_slot (uint64_t hash, size_t index)
{
    assert (index < UINT32_MAX);
    return (hash & 0xffffffff00000000ull) | ((uint64_t) index + 1);
}

static size_t
s_leg_index (uint64_t slot)
{
    assert ((uint32_t) slot != 0);
    return (size_t) (uint32_t) slot - 1;
}

//  The recent index of the credit leg (id, debit), or -1.
static long
s_legs_find (const s_gen_t *self, rl_id_t id, rl_id_t debit)
{
    assert (self->legs_cap > 0 && (self->legs_cap & (self->legs_cap - 1)) == 0);
    uint64_t hash = s_leg_hash (id, debit);
    uint64_t tag = hash & 0xffffffff00000000ull;
    for (size_t i = (size_t) hash & (self->legs_cap - 1), n = 0; n < self->legs_cap;
         i = (i + 1) & (self->legs_cap - 1), n++) {
        uint64_t slot = self->legs[i];
        if (slot == 0) {
            return -1;
        }
        if ((slot & 0xffffffff00000000ull) == tag) {
            size_t index = s_leg_index (slot);
            assert (index < self->recent_count);
            if (s_leg_is (&self->recent[index], id, debit)) {
                return (long) index;
            }
        }
    }
    assert (false && "the leg index is never full");
    return -1;
}

//  A hint: the slot where the probe of (id, debit) starts, into the cache
//  (a batch's loop calls it a few pairs ahead, so that the misses overlap).
#define S_LEGS_PREFETCH_AHEAD 8
static void
s_legs_prefetch (const s_gen_t *self, rl_id_t id, rl_id_t debit)
{
    __builtin_prefetch (&self->legs[(size_t) s_leg_hash (id, debit) & (self->legs_cap - 1)]);
}

//  Places recent[index] (a credit leg) into a table of cap slots.
static void
s_legs_place (const s_gen_t *self, uint64_t *legs, size_t cap, size_t index)
{
    const rl_transfer_t *t = &self->recent[index];
    uint64_t hash = s_leg_hash (t->id, t->debit_account_id);
    uint64_t slot = s_leg_slot (hash, index);
    size_t i = (size_t) hash & (cap - 1);
    while (legs[i] != 0) {
        //  Invariant 5: never indexed twice (checked only where the tags match).
        assert ((legs[i] >> 32) != (slot >> 32)
                || !s_leg_is (&self->recent[s_leg_index (legs[i])], t->id, t->debit_account_id));
        i = (i + 1) & (cap - 1);
    }
    legs[i] = slot;
}

//  Indexes recent[index], a credit leg not indexed yet. 0, or -1 when
//  memory ran out (nothing changed).
static int
s_legs_add (s_gen_t *self, size_t index)
{
    assert (index < UINT32_MAX && index < self->recent_count + 1);
    if (2 * (self->legs_count + 1) > self->legs_cap) {
        size_t cap = self->legs_cap * 2;
        uint64_t *legs = calloc (cap, sizeof (*legs));
        if (!legs) {
            return -1;
        }
        for (size_t i = 0; i < self->legs_cap; i++) {
            if (self->legs[i] != 0) {
                s_legs_place (self, legs, cap, s_leg_index (self->legs[i]));
            }
        }
        free (self->legs);
        self->legs = legs;
        self->legs_cap = cap;
    }
    s_legs_place (self, self->legs, self->legs_cap, index);
    self->legs_count++;
    assert (2 * self->legs_count <= self->legs_cap);
    return 0;
}

//  Empties a generation for reuse (its buffers are kept).
static void
s_gen_clear (s_gen_t *self)
{
    assert (self && self->recent_ids && self->legs);
    memset (self->legs, 0, self->legs_cap * sizeof (*self->legs));
    self->legs_count = 0;
    self->recent_count = 0;
    idmap_clear (self->recent_ids);
    assert (idmap_size (self->recent_ids) == 0);
}

int
journal_leg_applied (journal_t *self, rl_id_t id, rl_id_t debit_account_id)
{
    if (RL_FAILPOINT (JOURNAL_LEG_LOOKUP) != 0) {
        return -1; //  a test's storage error
    }
    //  The filter first: "absent" there is absent from memory and from
    //  `legs` too (invariant 8), the answer for almost every pair.
    bool maybe = !self->ids
                 || idfilter_may_hold (self->ids, idfilter_hash_leg (id, debit_account_id));
    if (maybe
        && (s_legs_find (self->live, id, debit_account_id) >= 0
            || (self->frozen && s_legs_find (self->frozen, id, debit_account_id) >= 0))) {
        return 1;
    }
    int rc = 0; //  not in `legs` (the filter says so, invariant 8) until read
    if (maybe) {
        uint8_t key[2 * RL_ID_SIZE];
        uint8_t ts[8];
        size_t size = 0;
        codec_encode_id (id, key);
        codec_encode_id (debit_account_id, key + RL_ID_SIZE);
        rc = store_get (self->store, STORE_CF_LEGS, key, sizeof (key), ts, sizeof (ts), &size);
    }
    if (rc == 0 && self->imported) {
        //  A leg applied by a previous owner of the credit account.
        return imported_leg_applied (self->store, id, debit_account_id);
    }
    return rc;
}

void
journal_legs_probe (journal_t *self, const rl_prepare_rec_t *recs, size_t count, int8_t *applied)
{
    assert (self && (count == 0 || (recs && applied)));
    if (count > 0 && RL_FAILPOINT (JOURNAL_LEG_LOOKUP) != 0) {
        memset (applied, -1, count); //  a test's storage error
        return;
    }
    for (size_t from = 0; from < count; from += RL_BATCH_RECORDS_MAX) {
        size_t end = count - from > RL_BATCH_RECORDS_MAX ? from + RL_BATCH_RECORDS_MAX : count;
        size_t n = 0; //  pairs not in memory, to read from the ingested index
        for (size_t i = from; i < end; i++) {
            if (i + S_LEGS_PREFETCH_AHEAD < end) {
                const rl_transfer_t *ahead = &recs[i + S_LEGS_PREFETCH_AHEAD].transfer;
                if (self->ids) {
                    idfilter_prefetch (self->ids,
                                       idfilter_hash_leg (ahead->id, ahead->debit_account_id));
                } else {
                    s_legs_prefetch (self->live, ahead->id, ahead->debit_account_id);
                }
            }
            rl_id_t id = recs[i].transfer.id, debit = recs[i].transfer.debit_account_id;
            if (self->ids && !idfilter_may_hold (self->ids, idfilter_hash_leg (id, debit))) {
                //  Neither in memory nor in `legs` (invariant 8): the leg
                //  index in memory is not probed at all (its probes missed
                //  the cache, about 1.5% of a credit shard's samples); only
                //  `imported` is left.
                self->legs_answered++;
                applied[i] = self->imported ? (int8_t) imported_leg_applied (self->store, id, debit)
                                            : 0;
                continue;
            }
            applied[i] = s_legs_find (self->live, id, debit) >= 0
                         || (self->frozen && s_legs_find (self->frozen, id, debit) >= 0);
            if (!applied[i]) {
                codec_encode_id (id, self->legs_keys + n * 2 * RL_ID_SIZE);
                codec_encode_id (debit, self->legs_keys + n * 2 * RL_ID_SIZE + RL_ID_SIZE);
                self->legs_which[n++] = (uint32_t) i;
            }
        }
        assert (n <= RL_BATCH_RECORDS_MAX);
        int rc = store_multi_get (self->store, STORE_CF_LEGS, self->legs_keys, 2 * RL_ID_SIZE, n,
                                  self->probe_values, 8, self->probe_found);
        for (size_t k = 0; k < n; k++) {
            size_t i = self->legs_which[k];
            if (rc != 0) {
                applied[i] = -1;
            } else if (self->probe_found[k]) {
                applied[i] = 1;
            } else if (self->imported) {
                //  A leg applied by a previous owner of the credit account.
                applied[i] = (int8_t) imported_leg_applied (self->store, recs[i].transfer.id,
                                                            recs[i].transfer.debit_account_id);
            }
        }
    }
}

void
journal_set_imported (journal_t *self)
{
    assert (self);
    self->imported = true;
}

//  Appends a stored transfer to a generation (ts order) and, unless it is a
//  credit leg (whose id belongs to the coordinator's id space), indexes its id.
static int
s_gen_append (s_gen_t *self, const rl_transfer_t *transfer)
{
    bool index_id = JOURNAL_LEG (transfer->reserved) != JOURNAL_LEG_CREDIT;
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
    self->recent[self->recent_count] = *transfer;
    if (!index_id && s_legs_add (self, self->recent_count) != 0) {
        return -1;
    }
    self->recent_count++;
    return 0;
}

//  Adds an id's or a leg's hash to the filter (invariant 8).
static void
s_filter_add (journal_t *self, uint64_t hash)
{
    assert (self->ids);
    idfilter_add (self->ids, hash);
    if (idfilter_full (self->ids) && !self->ids_full_logged) {
        self->ids_full_logged = true;
        rl_info ("journal: the id filter holds %zu ids, sized for %zu: a bigger one is built at "
                 "the next checkpoint",
                 idfilter_count (self->ids), idfilter_capacity (self->ids));
    }
}

//  Appends a stored transfer to the live generation.
static int
s_recent_append (journal_t *self, const rl_transfer_t *transfer)
{
    assert (!self->frozen || self->frozen_ts < transfer->timestamp); //  invariant 3
    if (s_gen_append (self->live, transfer) != 0) {
        return -1;
    }
    //  Invariant 8: an id, or a credit leg under its own hash.
    if (JOURNAL_LEG (transfer->reserved) != JOURNAL_LEG_CREDIT) {
        s_filter_add (self, idfilter_hash (transfer->id));
    } else {
        s_filter_add (self, idfilter_hash_leg (transfer->id, transfer->debit_account_id));
    }
    return 0;
}

int
journal_append (journal_t *self, const rl_transfer_t *record)
{
    assert (self && record);
    assert (record->timestamp == self->last_ts); //  from journal_next_ts, just now
    if (s_recent_append (self, record) != 0) {
        return -1;
    }
    s_put_transfer (self, record);
    if (JOURNAL_RESULT (record->reserved) == RL_OK
        && JOURNAL_LEG (record->reserved) != JOURNAL_LEG_CREDIT) {
        self->transfers_ok++;
    }
    return 0;
}

size_t
journal_mark (const journal_t *self)
{
    assert (self);
    return self->live->recent_count;
}

void
journal_rollback (journal_t *self, size_t mark)
{
    assert (self && mark <= self->live->recent_count);
    s_gen_t *gen = self->live;
    //  The batch's writes are the caller's to take back (store save point);
    //  last_ts stays (timestamps only grow), and so do the filter's ids (a
    //  fuller filter answers "maybe" more often: invariant 8 holds).
    while (gen->recent_count > mark) {
        const rl_transfer_t *t = &gen->recent[gen->recent_count - 1];
        assert (JOURNAL_LEG (t->reserved) != JOURNAL_LEG_CREDIT); //  chains are same-shard
        bool removed = idmap_remove (gen->recent_ids, t->id);
        assert (removed);
        (void) removed;
        if (JOURNAL_RESULT (t->reserved) == RL_OK) {
            assert (self->transfers_ok > 0);
            self->transfers_ok--;
        }
        gen->recent_count--;
    }
}

//  Does the stored record of account id already hold the transfer at ts?
//  Only when a checkpoint written in pieces wrote it (invariant 4): the
//  accounts at or below its last key are as of its timestamp.
static bool
s_replay_covered (const journal_t *self, rl_id_t id, uint64_t ts)
{
    if (ts > self->piece_ts) {
        return false; //  also: no checkpoint in pieces (piece_ts 0)
    }
    uint8_t key[RL_ID_SIZE];
    codec_encode_id (id, key);
    return memcmp (key, self->piece_key, RL_ID_SIZE) <= 0;
}

//  Re-applies a stored ok transfer (or leg) to the accounts held here.
static int
s_replay_one (journal_t *self, accounts_t *accounts, const rl_transfer_t *t)
{
    //  A pending transfer and a void post nothing: pending amounts are
    //  rebuilt from the transfers still pending (pending.c); a post posts
    //  the amount its record stores.
    if (t->flags & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER)) {
        return 0;
    }
    uint32_t leg = JOURNAL_LEG (t->reserved);
    if (leg != JOURNAL_LEG_CREDIT && !s_replay_covered (self, t->debit_account_id, t->timestamp)
        && accounts_post (accounts, t->debit_account_id, true, t->amount) != 0) {
        return -1;
    }
    if (leg != JOURNAL_LEG_DEBIT && !s_replay_covered (self, t->credit_account_id, t->timestamp)
        && accounts_post (accounts, t->credit_account_id, false, t->amount) != 0) {
        return -1;
    }
    return 0;
}

//  Replays one stored transfer after checkpoint_ts: onto the accounts when
//  it is ok, into the live generation, into last_ts.
static int
s_replay_record (journal_t *self, accounts_t *accounts, const rl_transfer_t *transfer, char *err,
                 size_t err_size)
{
    if (JOURNAL_RESULT (transfer->reserved) == RL_OK
        && s_replay_one (self, accounts, transfer) != 0) {
        snprintf (err, err_size, "transfer at ts %" PRIu64 " names a missing account",
                  transfer->timestamp);
        return -1;
    }
    if (s_recent_append (self, transfer) != 0) {
        snprintf (err, err_size, "out of memory replaying transfers");
        return -1;
    }
    if (transfer->timestamp > self->last_ts) {
        self->last_ts = transfer->timestamp;
    }
    return 0;
}

//  Replays transfers after checkpoint_ts onto the loaded accounts.
static int
s_replay (journal_t *self, accounts_t *accounts, char *err, size_t err_size)
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
        if (s_replay_record (self, accounts, &transfer, err, err_size) != 0) {
            rc = -1;
            break;
        }
    }
    store_iter_destroy (&it);
    return rc;
}

//  Finds a stored transfer by id in a generation.
static bool
s_gen_find (const s_gen_t *self, rl_id_t id, rl_transfer_t *out)
{
    uint64_t index = 0;
    if (!idmap_get (self->recent_ids, id, &index)) {
        return false;
    }
    assert (index < self->recent_count);
    *out = self->recent[index];
    assert (rl_id_eq (out->id, id));
    return true;
}

//  The stored transfer at ts, which tx_index named: 1, or -1 when it is
//  missing (a storage error).
static int
s_find_at (journal_t *self, uint64_t ts, rl_transfer_t *out)
{
    uint8_t ts_key[8];
    uint8_t value[RL_TRANSFER_SIZE];
    size_t size = 0;
    codec_put_u64_be (ts_key, ts);
    int rc = store_get (self->store, STORE_CF_TRANSFERS, ts_key, sizeof (ts_key), value,
                        sizeof (value), &size);
    if (rc != 1 || size != RL_TRANSFER_SIZE) {
        rl_error ("journal: tx_index names ts %" PRIu64 " with no transfer record", ts);
        return -1;
    }
    codec_decode_transfer (value, out);
    return 1;
}

//  Finds a stored transfer by id: recent first, then the frozen generation,
//  then the ingested index. 1 found, 0 not found, -1 storage error.
int
journal_find (journal_t *self, rl_id_t id, rl_transfer_t *out)
{
    assert (self && out);
    if (s_gen_find (self->live, id, out) || (self->frozen && s_gen_find (self->frozen, id, out))) {
        return 1;
    }
    if (!journal_may_hold (self, id)) {
        return 0; //  invariant 8
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
    return s_find_at (self, codec_get_u64 (ts_bytes), out);
}

int
journal_probe (journal_t *self, const rl_transfer_t *transfers, size_t count, uint64_t *ts)
{
    assert (self && (count == 0 || (transfers && ts)));
    if (count == 0) {
        return 0;
    }
    assert (count <= RL_BATCH_RECORDS_MAX);
    assert (self->ids); //  journal_open built it
    //  The filter first (invariant 8): only the ids it may hold are read,
    //  in one batched read. The hashes are computed ahead of the lookups so
    //  that each block is prefetched a few ids before it is read.
    for (size_t i = 0; i < count; i++) {
        self->probe_hash[i] = idfilter_hash (transfers[i].id);
        if (i >= S_FILTER_AHEAD) {
            idfilter_prefetch (self->ids, self->probe_hash[i - S_FILTER_AHEAD]);
        }
    }
    size_t n = 0; //  ids to read
    for (size_t i = 0; i < count; i++) {
        if (i + S_FILTER_AHEAD < count) {
            idfilter_prefetch (self->ids, self->probe_hash[i + S_FILTER_AHEAD]);
        }
        if (!idfilter_may_hold (self->ids, self->probe_hash[i])) {
            ts[i] = JOURNAL_PROBE_NONE;
            continue;
        }
        ts[i] = 0;
        codec_encode_id (transfers[i].id, self->probe_keys + n * RL_ID_SIZE);
        self->legs_which[n++] = (uint32_t) i;
    }
    self->ids_answered += count - n;
    self->ids_read += n;
    if (n == 0) {
        return 0;
    }
    if (store_multi_get (self->store, STORE_CF_TX_INDEX, self->probe_keys, RL_ID_SIZE, n,
                         self->probe_values, 8, self->probe_found)
        != 0) {
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = self->legs_which[k];
        ts[i] = self->probe_found[k] ? codec_get_u64 (self->probe_values + k * 8) : 0;
        //  Timestamps are never 0 (0 answers "absent") nor a mark.
        if (self->probe_found[k]
            && (ts[i] == 0 || ts[i] == JOURNAL_PROBE_UNKNOWN || ts[i] == JOURNAL_PROBE_NONE)) {
            rl_error ("journal: tx_index holds the timestamp %" PRIu64, ts[i]);
            return -1;
        }
    }
    return 0;
}

void
journal_prefetch_probed (const journal_t *self, const rl_transfer_t *transfers, size_t i)
{
    assert (self && transfers && self->ids);
    idfilter_prefetch (self->ids, self->probe_hash[i]);
    idmap_prefetch (self->live->recent_ids, transfers[i].id);
    if (self->frozen) {
        idmap_prefetch (self->frozen->recent_ids, transfers[i].id);
    }
}

void
journal_prefetch_append (const journal_t *self, rl_id_t id, rl_id_t debit_account_id,
                         bool credit_leg)
{
    assert (self);
    if (credit_leg) {
        if (self->ids) {
            idfilter_prefetch (self->ids, idfilter_hash_leg (id, debit_account_id));
        }
        s_legs_prefetch (self->live, id, debit_account_id);
    } else {
        if (self->ids) {
            idfilter_prefetch (self->ids, idfilter_hash (id));
        }
        idmap_prefetch (self->live->recent_ids, id);
    }
}

int
journal_find_probed (journal_t *self, rl_id_t id, uint64_t ts, rl_transfer_t *out)
{
    assert (self && out);
    if (s_gen_find (self->live, id, out) || (self->frozen && s_gen_find (self->frozen, id, out))) {
        return 1;
    }
    if (ts == JOURNAL_PROBE_UNKNOWN) {
        return journal_find (self, id, out);
    }
    //  Invariant 7: what the probe saw of the ingested index still holds.
    return ts == 0 || ts == JOURNAL_PROBE_NONE ? 0 : s_find_at (self, ts, out);
}

//  The id filter ------------------------------------------------------------

//  Appends the filter hash of every id of the keys of `cf` that start with
//  `prefix` (prefix_size bytes, then the 16-byte id) to *hashes_p. 0, or -1
//  with a message in err (out of memory, a key of another size, or the scan
//  stopped on an error: a filter missing an id would re-execute it).
static int
s_scan_ids (store_t *store, store_cf_t cf, const uint8_t *prefix, size_t prefix_size,
            uint64_t **hashes_p, size_t *count_p, size_t *cap_p, const atomic_bool *cancel,
            char *err, size_t err_size)
{
    bool legs = cf == STORE_CF_LEGS; //  keys (id, debit), filed as legs
    assert (!legs || prefix_size == 0);
    store_iter_t *it = store_iter_new (store, cf);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    if (prefix_size > 0) {
        store_iter_seek (it, prefix, prefix_size);
    } else {
        store_iter_seek_first (it);
    }
    for (; store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        if (prefix_size > 0 && (key_size < prefix_size || memcmp (key, prefix, prefix_size) != 0)) {
            break;
        }
        if (cancel && *count_p % S_CANCEL_EVERY == 0
            && atomic_load_explicit (cancel, memory_order_relaxed)) {
            snprintf (err, err_size, "cancelled");
            rc = -1;
            break;
        }
        //  An imported key is 'I' id, or 'I' id debit (imported.c): the id
        //  first. A leg index key is id debit, filed as a leg.
        if (legs ? key_size != 2 * RL_ID_SIZE
                 : key_size != prefix_size + RL_ID_SIZE
                       && !(prefix_size > 0 && key_size == prefix_size + 2 * RL_ID_SIZE)) {
            snprintf (err, err_size, "an id key of %zu bytes", key_size);
            rc = -1;
            break;
        }
        if (*count_p == *cap_p) {
            size_t cap = *cap_p ? *cap_p * 2 : 1u << 16;
            uint64_t *hashes = realloc (*hashes_p, cap * sizeof (*hashes));
            if (!hashes) {
                snprintf (err, err_size, "out of memory for %zu id hashes", cap);
                rc = -1;
                break;
            }
            *hashes_p = hashes;
            *cap_p = cap;
        }
        (*hashes_p)[(*count_p)++] = legs ? idfilter_hash_leg (codec_decode_id (key),
                                                              codec_decode_id (key + RL_ID_SIZE))
                                         : idfilter_hash (codec_decode_id (key + prefix_size));
    }
    if (rc == 0 && store_iter_error (it, err, err_size) != 0) {
        rc = -1;
    }
    store_iter_destroy (&it);
    return rc;
}

void
journal_set_filter_sizing (journal_t *self, size_t keys_min, size_t extra_keys)
{
    assert (self && !self->ids);
    self->ids_keys_min = keys_min;
    self->ids_extra = extra_keys;
}

//  journal_filter_scan, ended early ("cancelled") once *cancel (unless NULL).
static idfilter_t *
s_filter_scan (store_t *store, size_t keys_min, size_t extra_keys, const atomic_bool *cancel,
               char *err, size_t err_size)
{
    assert (store);
    uint64_t *hashes = NULL;
    size_t count = 0, cap = 0;
    const uint8_t by_id = IMPORTED_BY_ID;
    idfilter_t *filter = NULL;
    if (s_scan_ids (store, STORE_CF_TX_INDEX, NULL, 0, &hashes, &count, &cap, cancel, err, err_size)
            == 0
        && s_scan_ids (store, STORE_CF_IMPORTED, &by_id, 1, &hashes, &count, &cap, cancel, err,
                       err_size)
               == 0
        && s_scan_ids (store, STORE_CF_LEGS, NULL, 0, &hashes, &count, &cap, cancel, err, err_size)
               == 0) {
        size_t keys = count + extra_keys;
        keys = keys > SIZE_MAX / 2 ? SIZE_MAX : 2 * keys;
        filter = idfilter_new (keys > keys_min ? keys : keys_min);
        if (!filter) {
            snprintf (err, err_size, "out of memory for the id filter of %zu ids", count);
        }
    }
    for (size_t i = 0; filter && i < count; i++) {
        if (i % S_CANCEL_EVERY == 0 && cancel
            && atomic_load_explicit (cancel, memory_order_relaxed)) {
            snprintf (err, err_size, "cancelled");
            idfilter_destroy (&filter); //  a join waits for no more than a stride
            break;
        }
        if (i + S_FILTER_AHEAD < count) {
            idfilter_prefetch (filter, hashes[i + S_FILTER_AHEAD]);
        }
        idfilter_add (filter, hashes[i]);
    }
    free (hashes);
    return filter;
}

idfilter_t *
journal_filter_scan (store_t *store, size_t keys_min, size_t extra_keys, char *err, size_t err_size)
{
    return s_filter_scan (store, keys_min, extra_keys, NULL, err, err_size);
}

bool
journal_may_hold (const journal_t *self, rl_id_t id)
{
    assert (self);
    return !self->ids || idfilter_may_hold (self->ids, idfilter_hash (id));
}

void
journal_note_id (journal_t *self, rl_id_t id)
{
    assert (self && self->ids);
    s_filter_add (self, idfilter_hash (id));
    self->ids_imported = self->ids_imported || self->ids_growing;
}

bool
journal_filter_growth (journal_t *self, size_t *extra_keys_p)
{
    assert (self && self->ids && !self->ids_growing && extra_keys_p);
    if (!idfilter_full (self->ids)) {
        return false;
    }
    self->ids_growing = true;
    self->ids_imported = false;
    *extra_keys_p = s_growth_extra (self->ids, self->ids_extra);
    return true;
}

void
journal_filter_swap (journal_t *self, idfilter_t **filter_p)
{
    assert (self && filter_p && self->ids_growing);
    assert (!self->frozen); //  after the thaw: the frozen ids are in tx_index, so in the scan
    idfilter_t *filter = *filter_p;
    *filter_p = NULL;
    self->ids_growing = false;
    if (!filter || self->ids_imported) {
        //  No bigger filter (the scan failed, or ids were imported while it
        //  ran, which it may have missed): keep the one that holds them all.
        idfilter_destroy (&filter);
        return;
    }
    //  The live generation came after the scan began (journal_freeze).
    const s_gen_t *live = self->live;
    for (size_t i = 0; i < live->recent_count; i++) {
        const rl_transfer_t *t = &live->recent[i];
        idfilter_add (filter, JOURNAL_LEG (t->reserved) != JOURNAL_LEG_CREDIT
                                  ? idfilter_hash (t->id)
                                  : idfilter_hash_leg (t->id, t->debit_account_id));
    }
    rl_info ("journal: the id filter grew to %zu ids (%zu MB), holding %zu",
             idfilter_capacity (filter), idfilter_bytes (filter) >> 20, idfilter_count (filter));
    idfilter_destroy (&self->ids);
    self->ids = filter;
    self->ids_full_logged = false;
}

void
journal_filter_stats (const journal_t *self, size_t *count_p, size_t *capacity_p,
                      uint64_t *filtered_p, uint64_t *read_p)
{
    assert (self && count_p && capacity_p && filtered_p && read_p);
    *count_p = self->ids ? idfilter_count (self->ids) : 0;
    *capacity_p = self->ids ? idfilter_capacity (self->ids) : 0;
    *filtered_p = self->ids_answered;
    *read_p = self->ids_read;
}

uint64_t
journal_legs_filtered (const journal_t *self)
{
    assert (self);
    return self->legs_answered;
}

static uint64_t
s_clock_ms (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

//  A standby's warm state -----------------------------------------------------

//  A write the state follows record by record (a transfer record, a
//  checkpoint_ts, an account record), in the order of the writes: applied
//  to a ready state, or kept in a first build's side record, which replays
//  them in order.
typedef enum {
    S_OP_TRANSFER = 1,   //  the transfer t was put
    S_OP_CHECKPOINT,     //  checkpoint_ts moved to ts
    S_OP_ACCOUNT_PUT,    //  the account record a was put
    S_OP_ACCOUNT_DELETE, //  the account record of a.id was deleted
} s_op_kind_t;

typedef struct {
    s_op_kind_t kind;
    uint64_t ts; //  S_OP_CHECKPOINT
    union {
        rl_transfer_t t; //  S_OP_TRANSFER
        rl_account_t a;  //  S_OP_ACCOUNT_PUT, S_OP_ACCOUNT_DELETE (its id)
    };
} s_warm_op_t;

//  A build of the state (or of a bigger filter) in a thread of its own, and
//  the side record of what the loop applied since it began.
typedef struct {
    bool active;  //  begun, not yet taken or abandoned (loop)
    bool running; //  its thread is to be joined (loop)
    bool growth;  //  a bigger filter for a ready state; else the first build
    pthread_t thread;
    atomic_bool cancel; //  loop -> thread: end early
    atomic_bool done;   //  thread -> loop: its results are written
    uint64_t started_ms;
    //  Read by the loop at the start, read-only while the thread runs:
    uint64_t checkpoint_ts, last_put_ts; //  the first build's: the copy's then
    size_t keys_min, extra_keys;
    //  The thread's results, the loop's once done:
    idfilter_t *filter;
    rl_transfer_t *recent; //  the transfers in (checkpoint_ts, last_put_ts]
    size_t count, cap;
    accounts_t *accounts;     //  a first build's: the accounts family as its read saw it
    uint64_t accounts_ts_max; //  their newest timestamp
    int rc;
    char err[256];
    //  The side record (loop): the filter hashes written since the start;
    //  for a first build, the transfer records, checkpoint_ts moves and
    //  account records too.
    uint64_t *hashes;
    size_t hashes_count, hashes_cap;
    s_warm_op_t *ops;
    size_t ops_count, ops_cap;
    bool over; //  past side_max bytes, or out of memory: to be abandoned
} s_warm_build_t;

struct journal_warm_t {
    store_t *store;
    idfilter_t *ids;       //  as journal_open's scan: every id of tx_index, legs, imported
    rl_transfer_t *recent; //  the transfers after checkpoint_ts, ts order
    size_t count;
    size_t cap;
    accounts_t *accounts;     //  as accounts_load reads the accounts family (a mirror)
    uint64_t accounts_ts_max; //  their newest timestamp, unless stale
    bool accounts_ts_stale;   //  the newest was deleted or written over: look again
    uint64_t checkpoint_ts;   //  as the copy's meta says
    uint64_t last_put_ts;     //  the newest transfer record of the copy
    size_t keys_min;          //  the filter's sizing (journal_filter_scan)
    size_t extra_keys;
    bool ready;  //  built: ids, recent and the two timestamps follow the copy
    bool lost;   //  a write it does not follow: to be dropped
    bool halted; //  journal_warm_stop: no build begins any more
    char why[160];
    s_warm_build_t build;
    size_t side_max;     //  bytes the side record may take
    uint64_t retry_ms;   //  no build begins before (monotonic ms)
    uint64_t abandoned;  //  builds abandoned (side record over side_max)
    uint64_t side_taken; //  entries of side records replayed into a build
};

static void
s_warm_lose (journal_warm_t *self, const char *why)
{
    if (!self->lost) {
        self->lost = true;
        snprintf (self->why, sizeof self->why, "%s", why);
    }
}

//  Grows a side record's array by one entry; false (the build to be
//  abandoned) past side_max bytes or out of memory.
static bool
s_side_room (journal_warm_t *self, void **array_p, size_t count, size_t *cap_p, size_t entry_size)
{
    s_warm_build_t *b = &self->build;
    if (count < *cap_p) {
        return true;
    }
    size_t cap = *cap_p ? *cap_p * 2 : 1024;
    size_t bytes = b->hashes_cap * sizeof (*b->hashes) + b->ops_cap * sizeof (*b->ops)
                   + (cap - *cap_p) * entry_size;
    void *array = bytes <= self->side_max ? realloc (*array_p, cap * entry_size) : NULL;
    if (!array) {
        b->over = true;
        return false;
    }
    *array_p = array;
    *cap_p = cap;
    return true;
}

//  Adds the hash of an index entry (tx_index, legs) or an imported id,
//  unless the filter already answers "maybe" for it (an entry ingested
//  again after a crash, an id imported twice): its count then grows as the
//  scan's would. While a build runs, the side record keeps it for the
//  build's filter, which the scan may have missed it from.
static void
s_warm_add_new (journal_warm_t *self, uint64_t hash)
{
    if (self->ready && !idfilter_may_hold (self->ids, hash)) {
        idfilter_add (self->ids, hash);
    }
    s_warm_build_t *b = &self->build;
    if (b->active && !b->over
        && s_side_room (self, (void **) &b->hashes, b->hashes_count, &b->hashes_cap,
                        sizeof (*b->hashes))) {
        b->hashes[b->hashes_count++] = hash;
    }
}

//  The filter hash of an index key: tx_index's id, or legs' (id, debit).
static uint64_t
s_entry_hash (bool legs, const uint8_t *key)
{
    return legs ? idfilter_hash_leg (codec_decode_id (key), codec_decode_id (key + RL_ID_SIZE))
                : idfilter_hash (codec_decode_id (key));
}

static void
s_warm_transfer (journal_warm_t *self, const rl_transfer_t *t)
{
    if (self->lost) {
        return;
    }
    //  Its id joins the filter with the index entry the checkpoint ingests
    //  (journal_warm_ingest); until then journal_open's replay adds it.
    if (t->timestamp <= self->checkpoint_ts) {
        return; //  checkpointed: not replayed
    }
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : RL_SHARD_CHECKPOINT_TRANSFERS;
        rl_transfer_t *recent = realloc (self->recent, cap * sizeof (*recent));
        if (!recent) {
            s_warm_lose (self, "out of memory for the transfers after the checkpoint");
            return;
        }
        self->recent = recent;
        self->cap = cap;
    }
    self->recent[self->count++] = *t;
}

//  A transfer record put, after the newest one: into a ready state.
static void
s_warm_put (journal_warm_t *self, const rl_transfer_t *t)
{
    if (t->timestamp <= self->last_put_ts) {
        s_warm_lose (self, "a transfer record not after the newest one");
        return;
    }
    self->last_put_ts = t->timestamp;
    s_warm_transfer (self, t);
}

//  checkpoint_ts moved up to ts: the transfers up to it are checkpointed.
static void
s_warm_checkpoint (journal_warm_t *self, uint64_t ts)
{
    if (ts < self->checkpoint_ts) {
        s_warm_lose (self, "checkpoint_ts moved back");
        return;
    }
    self->checkpoint_ts = ts;
    size_t keep = 0;
    while (keep < self->count && self->recent[keep].timestamp <= ts) {
        keep++;
    }
    if (keep > 0 && keep < self->count) { //  none held yet: recent may be NULL
        memmove (self->recent, self->recent + keep, (self->count - keep) * sizeof (*self->recent));
    }
    self->count -= keep;
}

//  An account record deleted: out of the mirror (its newest timestamp is
//  looked for again if it was that one).
static void
s_warm_account_delete (journal_warm_t *self, rl_id_t id)
{
    const rl_account_t *held = accounts_get (self->accounts, id);
    if (held && held->timestamp == self->accounts_ts_max) {
        self->accounts_ts_stale = true;
    }
    accounts_mirror_delete (self->accounts, id);
}

//  An account record put or deleted: into the mirror of a ready state.
static void
s_warm_account (journal_warm_t *self, const s_warm_op_t *op)
{
    assert (self->ready && self->accounts);
    if (self->lost) {
        return;
    }
    if (op->kind == S_OP_ACCOUNT_PUT) {
        uint64_t old_ts = 0;
        if (accounts_mirror_put (self->accounts, &op->a, &old_ts) != 0) {
            s_warm_lose (self, "the accounts table is full, or memory ran out");
            return;
        }
        if (old_ts == self->accounts_ts_max && op->a.timestamp < old_ts) {
            self->accounts_ts_stale = true; //  the newest written over with an older one
        }
        if (op->a.timestamp > self->accounts_ts_max) {
            self->accounts_ts_max = op->a.timestamp;
        }
    } else {
        assert (op->kind == S_OP_ACCOUNT_DELETE);
        s_warm_account_delete (self, op->a.id);
    }
}

//  A write followed record by record: into a ready state, or the side
//  record of a first build (which replays it once built).
static void
s_warm_op (journal_warm_t *self, const s_warm_op_t *op)
{
    s_warm_build_t *b = &self->build;
    if (self->ready) {
        if (op->kind == S_OP_CHECKPOINT) {
            s_warm_checkpoint (self, op->ts);
        } else if (op->kind == S_OP_TRANSFER) {
            s_warm_put (self, &op->t);
        } else {
            s_warm_account (self, op);
        }
    } else if (b->active && !b->growth && !b->over
               && s_side_room (self, (void **) &b->ops, b->ops_count, &b->ops_cap,
                               sizeof (*b->ops))) {
        b->ops[b->ops_count++] = *op;
    }
}

//  An account record as accounts_load reads it (sizes checked), under the
//  key of its own id (a mirror follows a delete by its key), not of id
//  zero (the table holds none). false with the reason in *why.
static bool
s_account_record (const uint8_t *key, size_t key_size, const uint8_t *value, size_t value_size,
                  rl_account_t *out, const char **why)
{
    if (key_size != RL_ID_SIZE || value_size != RL_ACCOUNT_SIZE) {
        *why = "an account record of another size"; //  a cold recovery fails on it
        return false;
    }
    codec_decode_account (value, out);
    uint8_t own[RL_ID_SIZE];
    codec_encode_id (out->id, own);
    if (rl_id_is_zero (out->id) || memcmp (own, key, RL_ID_SIZE) != 0) {
        *why = rl_id_is_zero (out->id) ? "an account record of id zero"
                                       : "an account record under another id's key";
        return false;
    }
    return true;
}

//  A first build's read of the accounts family into its mirror, as
//  accounts_load reads it. 0, or -1 with the reason in b->err.
static int
s_warm_accounts_read (store_t *store, s_warm_build_t *b)
{
    store_iter_t *it = store_iter_new (store, STORE_CF_ACCOUNTS);
    if (!it) {
        snprintf (b->err, sizeof b->err, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t n = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        if (n++ % S_CANCEL_EVERY == 0 && atomic_load (&b->cancel)) {
            snprintf (b->err, sizeof b->err, "cancelled");
            rc = -1;
            break;
        }
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        rl_account_t account;
        const char *why = NULL;
        if (!s_account_record (key, key_size, value, value_size, &account, &why)) {
            snprintf (b->err, sizeof b->err, "%s", why);
            rc = -1;
            break;
        }
        uint64_t old_ts = 0;
        if (accounts_mirror_put (b->accounts, &account, &old_ts) != 0) {
            snprintf (b->err, sizeof b->err,
                      "cannot hold %zu accounts: the table is full, or memory ran out", n);
            rc = -1;
            break;
        }
        assert (old_ts == 0); //  one key an id: never an account held

        if (account.timestamp > b->accounts_ts_max) {
            b->accounts_ts_max = account.timestamp;
        }
    }
    if (rc == 0 && store_iter_error (it, b->err, sizeof b->err) != 0) {
        rc = -1;
    }
    store_iter_destroy (&it);
    return rc;
}

//  The build's thread: the scan of every stored id, and for a first build
//  the transfers in (checkpoint_ts, last_put_ts], all of them on the disk
//  before the build began (timestamps only grow; a record deleted since
//  drops the state), and the accounts family. No snapshot is needed: an id
//  stored after the start is in the side record, one stored before is seen
//  by the scan. An account record written after the start is in the side
//  record, whether the read saw it or not (its iterator is made after the
//  start): replayed in order onto what the read saw, each record ends as
//  the last write to its key left it, and one no write touched since the
//  start is as the read saw it.
static void *
s_warm_build_run (void *arg)
{
    journal_warm_t *self = arg;
    s_warm_build_t *b = &self->build;
    if (RL_FAILPOINT (JOURNAL_WARM_BUILD_SLOW) != 0) {
        for (int i = 0; i < 500 && !atomic_load (&b->cancel); i++) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            nanosleep (&pause, NULL);
        }
    }
    b->filter = s_filter_scan (self->store, b->keys_min, b->extra_keys, &b->cancel, b->err,
                               sizeof b->err);
    b->rc = b->filter ? 0 : -1;
    store_iter_t *it = b->rc == 0 && !b->growth ? store_iter_new (self->store, STORE_CF_TRANSFERS)
                                                : NULL;
    if (b->rc == 0 && !b->growth && !it) {
        snprintf (b->err, sizeof b->err, "out of memory");
        b->rc = -1;
    }
    uint8_t from[8];
    codec_put_u64_be (from, b->checkpoint_ts + 1);
    for (it ? store_iter_seek (it, from, sizeof (from)) : (void) 0; it && store_iter_valid (it);
         store_iter_next (it)) {
        if (b->count % S_CANCEL_EVERY == 0 && atomic_load (&b->cancel)) {
            snprintf (b->err, sizeof b->err, "cancelled");
            b->rc = -1;
            break;
        }
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != 8 || value_size != RL_TRANSFER_SIZE) {
            snprintf (b->err, sizeof b->err, "a corrupt transfer record");
            b->rc = -1;
            break;
        }
        rl_transfer_t t;
        codec_decode_transfer (value, &t);
        if (t.timestamp != codec_get_u64_be (key)) {
            snprintf (b->err, sizeof b->err, "a transfer record under another timestamp");
            b->rc = -1;
            break;
        }
        if (t.timestamp > b->last_put_ts) {
            break; //  put after the start: in the side record
        }
        if (b->count == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : RL_SHARD_CHECKPOINT_TRANSFERS;
            rl_transfer_t *recent = realloc (b->recent, cap * sizeof (*recent));
            if (!recent) {
                snprintf (b->err, sizeof b->err,
                          "out of memory for the transfers after the checkpoint");
                b->rc = -1;
                break;
            }
            b->recent = recent;
            b->cap = cap;
        }
        b->recent[b->count++] = t;
    }
    if (it && b->rc == 0 && store_iter_error (it, b->err, sizeof b->err) != 0) {
        b->rc = -1;
    }
    store_iter_destroy (&it);
    if (b->rc == 0 && !b->growth) {
        b->rc = s_warm_accounts_read (self->store, b);
    }
    atomic_store (&b->done, true);
    return NULL;
}

//  Ends the build (cancelled if it runs, joined) and frees what it holds.
static void
s_warm_build_end (journal_warm_t *self)
{
    s_warm_build_t *b = &self->build;
    if (b->running) {
        atomic_store (&b->cancel, true);
        pthread_join (b->thread, NULL);
    }
    idfilter_destroy (&b->filter);
    free (b->recent);
    accounts_destroy (&b->accounts);
    free (b->hashes);
    free (b->ops);
    memset (b, 0, sizeof (*b));
}

//  Begins a build (loop): the first one, or a bigger filter (growth).
static int
s_warm_build_begin (journal_warm_t *self, bool growth, char *err, size_t err_size)
{
    s_warm_build_t *b = &self->build;
    assert (!b->active && !b->running);
    memset (b, 0, sizeof (*b));
    b->growth = growth;
    b->keys_min = self->keys_min;
    b->extra_keys = growth ? s_growth_extra (self->ids, self->extra_keys) : self->extra_keys;
    b->started_ms = s_clock_ms (CLOCK_MONOTONIC);
    if (!growth) {
        //  Two small reads in the loop: where the copy stands now.
        if (s_store_meta_u64 (self->store, JOURNAL_META_CHECKPOINT_TS, &b->checkpoint_ts) != 0) {
            snprintf (err, err_size, "cannot read checkpoint_ts: %s", store_error (self->store));
            return -1;
        }
        store_iter_t *it = store_iter_new (self->store, STORE_CF_TRANSFERS);
        if (!it) {
            snprintf (err, err_size, "out of memory");
            return -1;
        }
        store_iter_seek_last (it);
        if (store_iter_valid (it)) {
            size_t key_size = 0;
            const uint8_t *key = store_iter_key (it, &key_size);
            b->last_put_ts = key_size == 8 ? codec_get_u64_be (key) : UINT64_MAX;
        }
        store_iter_destroy (&it);
        b->accounts = accounts_new (self->store); //  read into by the thread
        if (!b->accounts) {
            snprintf (err, err_size, "out of memory");
            return -1;
        }
    }
    atomic_init (&b->cancel, false);
    atomic_init (&b->done, false);
    b->active = true;
    if (pthread_create (&b->thread, NULL, s_warm_build_run, self) != 0) {
        snprintf (err, err_size, "cannot start the build's thread");
        b->active = false;
        accounts_destroy (&b->accounts);
        return -1;
    }
    b->running = true;
    return 0;
}

//  A build done (loop): its result, with the side record replayed, becomes
//  the state (a first build) or its filter (a growth).
static int
s_warm_build_take (journal_warm_t *self, char *err, size_t err_size)
{
    s_warm_build_t *b = &self->build;
    journal_warm_wait (self);
    uint64_t ms = s_clock_ms (CLOCK_MONOTONIC) - b->started_ms;
    if (b->rc != 0) {
        snprintf (err, err_size, "%s%s",
                  b->growth ? "the bigger id filter could not be built: " : "", b->err);
        s_warm_lose (self, err);
        s_warm_build_end (self);
        return -1;
    }
    size_t side = b->hashes_count + b->ops_count;
    self->side_taken += side;
    idfilter_destroy (&self->ids);
    self->ids = b->filter;
    b->filter = NULL;
    if (!b->growth) {
        free (self->recent);
        self->recent = b->recent;
        self->count = b->count;
        self->cap = b->cap;
        b->recent = NULL;
        self->checkpoint_ts = b->checkpoint_ts;
        self->last_put_ts = b->last_put_ts;
        accounts_destroy (&self->accounts);
        self->accounts = b->accounts;
        b->accounts = NULL;
        self->accounts_ts_max = b->accounts_ts_max;
        self->accounts_ts_stale = false;
    }
    self->ready = true;
    b->active = false; //  what follows is applied, not recorded
    for (size_t i = 0; i < b->hashes_count; i++) {
        s_warm_add_new (self, b->hashes[i]);
    }
    for (size_t i = 0; i < b->ops_count && !self->lost; i++) {
        s_warm_op (self, &b->ops[i]);
    }
    bool growth = b->growth;
    s_warm_build_end (self);
    if (self->lost) {
        snprintf (err, err_size, "%s", self->why);
        return -1;
    }
    if (growth) {
        rl_info ("journal: the standby's id filter grew to %zu ids in %" PRIu64
                 " ms in the background, holding %zu (%zu ids written meanwhile added)",
                 idfilter_capacity (self->ids), ms, idfilter_count (self->ids), side);
    } else {
        rl_info ("journal: the standby's %zu accounts, id filter (%zu ids) and %zu transfers "
                 "after the checkpoint in memory, built in %" PRIu64
                 " ms in the background (%zu writes applied meanwhile added)",
                 accounts_live_count (self->accounts), idfilter_count (self->ids), self->count, ms,
                 side);
    }
    return 0;
}

journal_warm_t *
journal_warm_start (store_t *store, size_t keys_min, size_t extra_keys, char *err, size_t err_size)
{
    assert (store);
    journal_warm_t *self = calloc (1, sizeof (*self));
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->store = store;
    self->keys_min = keys_min;
    self->extra_keys = extra_keys;
    self->side_max = JOURNAL_WARM_SIDE_MAX;
    if (s_warm_build_begin (self, false, err, err_size) != 0) {
        journal_warm_destroy (&self);
    }
    return self;
}

journal_warm_t *
journal_warm_new (store_t *store, size_t keys_min, size_t extra_keys, char *err, size_t err_size)
{
    journal_warm_t *self = journal_warm_start (store, keys_min, extra_keys, err, err_size);
    if (self) {
        journal_warm_wait (self);
        if (s_warm_build_take (self, err, err_size) != 0) {
            journal_warm_destroy (&self);
        }
    }
    return self;
}

void
journal_warm_set_side_max (journal_warm_t *self, size_t bytes)
{
    assert (self);
    self->side_max = bytes;
}

bool
journal_warm_ready (const journal_warm_t *self)
{
    assert (self);
    return self->ready && !self->lost;
}

bool
journal_warm_building (const journal_warm_t *self)
{
    assert (self);
    return self->build.active;
}

void
journal_warm_wait (journal_warm_t *self)
{
    assert (self);
    s_warm_build_t *b = &self->build;
    if (b->running) {
        pthread_join (b->thread, NULL);
        b->running = false;
        assert (atomic_load (&b->done));
    }
}

bool
journal_warm_stop (journal_warm_t *self)
{
    assert (self);
    if (self->build.active && !atomic_load (&self->build.done)) {
        rl_info ("journal: the standby's %s ended before it was done",
                 self->build.growth ? "bigger id filter's build" : "ledger state's build");
    }
    s_warm_build_end (self);
    //  A fence or a seed's beginning: none begins again (journal_warm_settle),
    //  which would scan a copy that takes no more events or is replaced.
    self->halted = true;
    return journal_warm_ready (self);
}

void
journal_warm_destroy (journal_warm_t **self_p)
{
    assert (self_p);
    journal_warm_t *self = *self_p;
    if (!self) {
        return;
    }
    s_warm_build_end (self); //  before what the thread reads and writes
    idfilter_destroy (&self->ids);
    free (self->recent);
    accounts_destroy (&self->accounts);
    free (self);
    *self_p = NULL;
}

//  Does the range delete [begin, end) cover key (bytewise order, the store's)?
static bool
s_in_range (const uint8_t *key, size_t key_size, const uint8_t *begin, size_t begin_size,
            const uint8_t *end, size_t end_size)
{
    int lo = memcmp (key, begin, key_size < begin_size ? key_size : begin_size);
    int hi = memcmp (key, end, key_size < end_size ? key_size : end_size);
    bool after_begin = lo > 0 || (lo == 0 && key_size >= begin_size);
    bool before_end = hi < 0 || (hi == 0 && key_size < end_size);
    return after_begin && before_end;
}

//  A write of the accounts family: a record put (as accounts_load reads
//  it, or the state is dropped) or deleted. A range delete drops the
//  state: the shard writes none into accounts (a migration's cleanup
//  deletes each moved record), and following one costs a look at every
//  account held, which a stream of them would turn into minutes of the
//  standby's loop.
static void
s_warm_account_write (journal_warm_t *self, const uint8_t *key, size_t key_size,
                      const uint8_t *value, size_t value_size, bool range)
{
    s_warm_op_t op = {.kind = S_OP_ACCOUNT_PUT};
    if (range) {
        s_warm_lose (self, "a range delete of the accounts family");
        return;
    } else if (!value) {
        if (key_size != RL_ID_SIZE) {
            return; //  no such key is held: a put of one dropped the state
        }
        op.kind = S_OP_ACCOUNT_DELETE;
        op.a.id = codec_decode_id (key);
    } else {
        const char *why = NULL;
        if (!s_account_record (key, key_size, value, value_size, &op.a, &why)) {
            s_warm_lose (self, why);
            return;
        }
    }
    s_warm_op (self, &op);
}

void
journal_warm_write (journal_warm_t *self, store_cf_t cf, const uint8_t *key, size_t key_size,
                    const uint8_t *value, size_t value_size, bool range)
{
    assert (self && key);
    if (self->lost) {
        return;
    }
    bool put = value && !range;
    switch (cf) {
        case STORE_CF_TRANSFERS: {
            if (!put) {
                s_warm_lose (self, "a transfer record deleted");
                return;
            }
            if (key_size != 8 || value_size != RL_TRANSFER_SIZE) {
                s_warm_lose (self, "a transfer record of another size");
                return;
            }
            s_warm_op_t op = {.kind = S_OP_TRANSFER};
            codec_decode_transfer (value, &op.t);
            if (op.t.timestamp != codec_get_u64_be (key)) {
                s_warm_lose (self, "a transfer record under another timestamp");
                return;
            }
            s_warm_op (self, &op);
            return;
        }
        case STORE_CF_META: {
            const char *name = JOURNAL_META_CHECKPOINT_TS;
            size_t name_size = strlen (name);
            bool named = key_size == name_size && memcmp (key, name, name_size) == 0;
            if (range
                && s_in_range ((const uint8_t *) name, name_size, key, key_size, value,
                               value_size)) {
                s_warm_lose (self, "checkpoint_ts deleted");
            } else if (named && !put) {
                s_warm_lose (self, "checkpoint_ts deleted");
            } else if (named && value_size != 8) {
                s_warm_lose (self, "a checkpoint_ts of another size");
            } else if (named) {
                s_warm_op_t op = {.kind = S_OP_CHECKPOINT, .ts = codec_get_u64 (value)};
                s_warm_op (self, &op);
            }
            return;
        }
        //  An index key of a size the scan does not file makes the scan
        //  fail (a cold recovery of this disk does not open): so does the state.
        case STORE_CF_TX_INDEX:
            if (put && key_size != RL_ID_SIZE) {
                s_warm_lose (self, "a tx_index key of another size");
            } else if (put) {
                s_warm_add_new (self, s_entry_hash (false, key));
            }
            return;
        case STORE_CF_LEGS:
            if (put && key_size != 2 * RL_ID_SIZE) {
                s_warm_lose (self, "a legs key of another size");
            } else if (put) {
                s_warm_add_new (self, s_entry_hash (true, key));
            }
            return;
        case STORE_CF_IMPORTED:
            //  'I' id or 'I' id debit: the id, as the scan files it; other
            //  'I' keys make the scan fail.
            if (!put || key_size < 1 || key[0] != IMPORTED_BY_ID) {
                return;
            }
            if (key_size != 1 + RL_ID_SIZE && key_size != 1 + 2 * RL_ID_SIZE) {
                s_warm_lose (self, "an imported id key of another size");
            } else {
                s_warm_add_new (self, idfilter_hash (codec_decode_id (key + 1)));
            }
            return;
        case STORE_CF_ACCOUNTS:
            s_warm_account_write (self, key, key_size, value, value_size, range);
            return;
        default:
            return; //  nothing else is read by journal_open's scan, replay or accounts
    }
}

void
journal_warm_ingest (journal_warm_t *self, store_cf_t cf, const uint8_t *entries, size_t entry_size,
                     size_t key_size, size_t count)
{
    assert (self && (entries || count == 0));
    bool legs = cf == STORE_CF_LEGS;
    if (cf == STORE_CF_ACCOUNTS) {
        //  The shard ingests no accounts (a standby refuses such an event:
        //  replica_ingest_valid); the mirror does not follow one.
        s_warm_lose (self, "an ingest into the accounts family");
        return;
    }
    if (cf != STORE_CF_TX_INDEX && !legs) {
        return; //  history: not read by the scan
    }
    if (key_size != (legs ? 2u : 1u) * RL_ID_SIZE) {
        s_warm_lose (self, legs ? "a legs key of another size" : "a tx_index key of another size");
        return;
    }
    if (self->lost) {
        return;
    }
    //  One filter block a few entries ahead into the cache, so that the
    //  misses of a checkpoint's entries (random ids) overlap.
    for (size_t i = 0; i < count; i++) {
        if (self->ready && i + S_FILTER_AHEAD < count) {
            idfilter_prefetch (self->ids,
                               s_entry_hash (legs, entries + (i + S_FILTER_AHEAD) * entry_size));
        }
        s_warm_add_new (self, s_entry_hash (legs, entries + i * entry_size));
    }
}

int
journal_warm_settle (journal_warm_t *self, char *err, size_t err_size)
{
    assert (self);
    if (self->lost) {
        snprintf (err, err_size, "%s", self->why);
        return -1;
    }
    s_warm_build_t *b = &self->build;
    uint64_t now = s_clock_ms (CLOCK_MONOTONIC);
    if (b->active && b->over) {
        //  The loop wrote more than the side record may hold while the scan
        //  ran: another build later (a growth keeps the full old filter).
        bool growth = b->growth;
        s_warm_build_end (self);
        self->abandoned++;
        self->retry_ms = now + JOURNAL_WARM_RETRY_MS;
        rl_warn ("journal: the standby's %s abandoned: the writes applied while it ran passed "
                 "%zu bytes; another begins in %d ms",
                 growth ? "bigger id filter's build" : "ledger state's build", self->side_max,
                 JOURNAL_WARM_RETRY_MS);
        return 0;
    }
    if (b->active && atomic_load (&b->done)) {
        return s_warm_build_take (self, err, err_size);
    }
    if (b->active || self->halted || now < self->retry_ms) {
        return 0;
    }
    //  As the primary's checkpoint grows its filter (journal_filter_grow),
    //  in a thread: the old filter keeps answering (a "maybe" more often).
    bool growth = self->ready && idfilter_full (self->ids);
    if ((growth || !self->ready) && s_warm_build_begin (self, growth, err, err_size) != 0) {
        self->retry_ms = now + JOURNAL_WARM_RETRY_MS;
        rl_warn ("journal: the standby's %s could not begin (%s): tried again in %d ms",
                 growth ? "bigger id filter's build" : "ledger state's build", err,
                 JOURNAL_WARM_RETRY_MS);
    }
    return 0;
}

void
journal_warm_stats (const journal_warm_t *self, size_t *ids_p, size_t *transfers_p)
{
    assert (self && ids_p && transfers_p);
    *ids_p = self->ready ? idfilter_count (self->ids) : 0;
    *transfers_p = self->count;
}

size_t
journal_warm_accounts (const journal_warm_t *self)
{
    assert (self);
    return self->ready && self->accounts ? accounts_live_count (self->accounts) : 0;
}

void
journal_warm_side_stats (const journal_warm_t *self, uint64_t *taken_p, uint64_t *abandoned_p)
{
    assert (self && taken_p && abandoned_p);
    *taken_p = self->side_taken;
    *abandoned_p = self->abandoned;
}

void
journal_set_warm (journal_t *self, journal_warm_t **warm_p)
{
    assert (self && warm_p && !self->ids);
    journal_warm_destroy (&self->warm);
    self->warm = *warm_p;
    *warm_p = NULL;
}

//  Does the warm state follow this disk? Its checkpoint_ts is the disk's,
//  and its first and last transfers after it are the disk's (two seeks).
static bool
s_warm_matches (journal_t *self, const journal_warm_t *warm, char *why, size_t why_size)
{
    if (warm->lost) {
        snprintf (why, why_size, "%s", warm->why);
        return false;
    }
    if (!warm->ready || warm->build.active) {
        snprintf (why, why_size, "it was still being built");
        return false;
    }
    if (warm->checkpoint_ts != self->checkpoint_ts) {
        snprintf (why, why_size, "checkpoint_ts %" PRIu64 ", the disk's %" PRIu64,
                  warm->checkpoint_ts, self->checkpoint_ts);
        return false;
    }
    store_iter_t *it = store_iter_new (self->store, STORE_CF_TRANSFERS);
    if (!it) {
        snprintf (why, why_size, "out of memory");
        return false;
    }
    uint8_t from[8];
    codec_put_u64_be (from, self->checkpoint_ts + 1);
    uint64_t first = 0, last = 0;
    size_t key_size = 0;
    store_iter_seek (it, from, sizeof (from));
    if (store_iter_valid (it)) {
        const uint8_t *key = store_iter_key (it, &key_size);
        first = key_size == 8 ? codec_get_u64_be (key) : UINT64_MAX;
    }
    store_iter_seek_last (it);
    if (store_iter_valid (it)) {
        const uint8_t *key = store_iter_key (it, &key_size);
        last = key_size == 8 ? codec_get_u64_be (key) : UINT64_MAX;
    }
    store_iter_destroy (&it);
    uint64_t want_first = warm->count ? warm->recent[0].timestamp : 0;
    bool ok = first == want_first
              && (warm->count ? last == warm->recent[warm->count - 1].timestamp
                              : last <= self->checkpoint_ts);
    if (!ok) {
        snprintf (why, why_size,
                  "its transfers after the checkpoint run from %" PRIu64 " to %" PRIu64
                  " (%zu), the disk's from %" PRIu64 " to %" PRIu64,
                  want_first, warm->count ? warm->recent[warm->count - 1].timestamp : 0,
                  warm->count, first, last);
    }
    return ok;
}

//  The first field in which two accounts' records differ (as encoded).
static const char *
s_account_diff (const rl_account_t *a, const rl_account_t *b)
{
    if (a->debits_posted != b->debits_posted) {
        return "debits_posted";
    }
    if (a->credits_posted != b->credits_posted) {
        return "credits_posted";
    }
    if (a->timestamp != b->timestamp) {
        return "timestamp";
    }
    if (a->ledger != b->ledger || a->code != b->code || a->flags != b->flags) {
        return "ledger, code or flags";
    }
    return "user data, pending, reserved or padding";
}

//  journal.warm.verify (tests), before the replay: the accounts taken from
//  the warm state (and their newest timestamp, ts_max) against what
//  accounts_load reads from the disk: as many, each one's every field as
//  encoded. 0, or -1 with err.
static int
s_warm_verify_accounts (journal_t *self, const accounts_t *taken, uint64_t ts_max, char *err,
                        size_t err_size)
{
    accounts_t *disk = accounts_new (self->store);
    if (!disk) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    uint64_t disk_ts = 0;
    int rc = accounts_load (disk, &disk_ts, err, err_size);
    if (rc == 0 && accounts_live_count (disk) != accounts_live_count (taken)) {
        snprintf (err, err_size, "the warm state holds %zu accounts, the disk %zu",
                  accounts_live_count (taken), accounts_live_count (disk));
        rc = -1;
    }
    for (size_t slot = 0; rc == 0 && slot < accounts_count (disk); slot++) {
        const rl_account_t *a = accounts_at (disk, slot);
        const rl_account_t *mine = accounts_get (taken, a->id);
        uint8_t x[RL_ACCOUNT_SIZE], y[RL_ACCOUNT_SIZE];
        codec_encode_account (a, x);
        if (mine) {
            codec_encode_account (mine, y);
        }
        if (!mine || memcmp (x, y, sizeof x) != 0) {
            snprintf (err, err_size,
                      "the warm state's account %016" PRIx64 "%016" PRIx64 " differs from the "
                      "disk's: %s",
                      a->id.hi, a->id.lo, mine ? s_account_diff (mine, a) : "not held");
            rc = -1;
        }
    }
    if (rc == 0 && disk_ts != ts_max) {
        snprintf (err, err_size,
                  "the warm state's newest account timestamp is %" PRIu64 ", the disk's %" PRIu64,
                  ts_max, disk_ts);
        rc = -1;
    }
    if (rc == 0) {
        rl_info ("journal: the warm state's %zu accounts match the disk",
                 accounts_live_count (disk));
    }
    accounts_destroy (&disk);
    return rc;
}

//  The newest timestamp of the warm state's accounts (accounts_load's
//  *last_ts_p), looked for again when the newest was deleted or written over.
static uint64_t
s_warm_accounts_ts (journal_warm_t *warm)
{
    if (warm->accounts_ts_stale) {
        warm->accounts_ts_max = 0;
        for (size_t slot = 0; slot < accounts_count (warm->accounts); slot++) {
            uint64_t ts = accounts_at (warm->accounts, slot)->timestamp;
            warm->accounts_ts_max = ts > warm->accounts_ts_max ? ts : warm->accounts_ts_max;
        }
        warm->accounts_ts_stale = false;
    }
    return warm->accounts_ts_max;
}

//  journal.warm.verify (tests): what journal_open took from the warm state
//  against what it would have read: the transfers after the checkpoint,
//  record by record, and every id of the filter's scan. 0, or -1 with err.
static int
s_warm_verify (journal_t *self, char *err, size_t err_size)
{
    store_iter_t *it = store_iter_new (self->store, STORE_CF_TRANSFERS);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    uint8_t from[8];
    codec_put_u64_be (from, self->checkpoint_ts + 1);
    size_t n = 0;
    int rc = 0;
    const s_gen_t *gen = self->live;
    for (store_iter_seek (it, from, sizeof (from)); store_iter_valid (it); store_iter_next (it)) {
        size_t value_size = 0;
        const uint8_t *value = store_iter_value (it, &value_size);
        uint8_t mine[RL_TRANSFER_SIZE];
        if (n < gen->recent_count) {
            codec_encode_transfer (&gen->recent[n], mine);
        }
        if (n >= gen->recent_count || value_size != RL_TRANSFER_SIZE
            || memcmp (value, mine, RL_TRANSFER_SIZE) != 0) {
            snprintf (err, err_size, "the warm state differs from the disk at transfer %zu", n);
            rc = -1;
            break;
        }
        n++;
    }
    store_iter_destroy (&it);
    if (rc == 0 && n != gen->recent_count) {
        snprintf (err, err_size,
                  "the warm state holds %zu transfers after the checkpoint, the disk %zu",
                  gen->recent_count, n);
        rc = -1;
    }
    uint64_t *hashes = NULL;
    size_t count = 0, cap = 0;
    const uint8_t by_id = IMPORTED_BY_ID;
    if (rc == 0
        && (s_scan_ids (self->store, STORE_CF_TX_INDEX, NULL, 0, &hashes, &count, &cap, NULL, err,
                        err_size)
                != 0
            || s_scan_ids (self->store, STORE_CF_IMPORTED, &by_id, 1, &hashes, &count, &cap, NULL,
                           err, err_size)
                   != 0
            || s_scan_ids (self->store, STORE_CF_LEGS, NULL, 0, &hashes, &count, &cap, NULL, err,
                           err_size)
                   != 0)) {
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (!idfilter_may_hold (self->ids, hashes[i])) {
            snprintf (err, err_size, "the warm id filter misses a stored id (%zu of %zu)", i,
                      count);
            rc = -1;
        }
    }
    free (hashes);
    if (rc == 0) {
        rl_info ("journal: the warm state matches the disk: %zu transfers after the checkpoint, "
                 "%zu stored ids in the filter",
                 n, count);
    }
    return rc;
}

//  A checkpoint whose accounts were being written in pieces when the shard
//  stopped (invariant 4): its ts and last key, for the replay. One at or
//  below checkpoint_ts was finished (its batch deletes the key): ignored.
static int
s_piece_read (journal_t *self, char *err, size_t err_size)
{
    self->piece_ts = 0;
    uint8_t value[JOURNAL_PIECE_SIZE];
    size_t size = 0;
    const char *name = JOURNAL_META_CHECKPOINT_PIECE;
    int found = store_get (self->store, STORE_CF_META, name, strlen (name), value, sizeof (value),
                           &size);
    if (found < 0) {
        snprintf (err, err_size, "cannot read metadata: %s", store_error (self->store));
        return -1;
    }
    if (found == 0) {
        return 0;
    }
    if (size != JOURNAL_PIECE_SIZE) {
        snprintf (err, err_size, "corrupt %s (%zu bytes)", name, size);
        return -1;
    }
    uint64_t ts = codec_get_u64 (value);
    if (ts > self->checkpoint_ts) {
        self->piece_ts = ts;
        memcpy (self->piece_key, value + 8, RL_ID_SIZE);
        if (self->last_ts < ts) {
            self->last_ts = ts; //  invariant 4: no new timestamp at or below it
        }
        rl_info ("journal: the checkpoint at ts %" PRIu64 " wrote part of its accounts; the "
                 "replay skips what they hold",
                 ts);
    }
    return 0;
}

void
journal_set_adopt (journal_t *self, journal_adopt_fn *fn, void *arg)
{
    assert (self && fn);
    self->adopt = fn;
    self->adopt_arg = arg;
}

int
journal_open (journal_t *self, accounts_t *accounts, char *err, size_t err_size)
{
    assert (self && accounts);
    assert (self->live->recent_count == 0 && !self->frozen && self->last_ts == 0);
    if (s_get_meta_u64 (self, JOURNAL_META_LAST_TS, &self->last_ts) != 0
        || s_get_meta_u64 (self, JOURNAL_META_CHECKPOINT_TS, &self->checkpoint_ts) != 0) {
        snprintf (err, err_size, "cannot read metadata: %s", store_error (self->store));
        return -1;
    }
    if (self->last_ts < self->checkpoint_ts) {
        self->last_ts = self->checkpoint_ts; //  invariant 4
    }
    if (s_piece_read (self, err, err_size) != 0) {
        return -1;
    }
    uint64_t accounts_ms = s_clock_ms (CLOCK_MONOTONIC);
    uint64_t accounts_cpu_ms = s_clock_ms (CLOCK_THREAD_CPUTIME_ID);
    //  A promoted standby's warm state stands in for the read of the
    //  accounts, the scan and the replay's read when it follows this disk
    //  (journal_set_warm).
    journal_warm_t *warm = self->warm;
    self->warm = NULL;
    if (warm) {
        journal_warm_stop (warm); //  a build that runs ends: a first one leaves no state
    }
    char why[256];
    if (warm && !s_warm_matches (self, warm, why, sizeof why)) {
        rl_warn ("journal: the standby's state does not follow its disk (%s): recovering from "
                 "the disk",
                 why);
        journal_warm_destroy (&warm);
    }
    bool verify = warm && RL_FAILPOINT (JOURNAL_WARM_VERIFY) != 0;
    if (warm) {
        uint64_t ts_max = s_warm_accounts_ts (warm);
        accounts_take (accounts, &warm->accounts);
        if (ts_max > self->last_ts) {
            self->last_ts = ts_max; //  as accounts_load raises it
        }
        if (verify && s_warm_verify_accounts (self, accounts, ts_max, err, err_size) != 0) {
            journal_warm_destroy (&warm);
            return -1;
        }
    } else if (accounts_load (accounts, &self->last_ts, err, err_size) != 0) {
        return -1;
    }
    if (self->adopt
        && self->adopt (self->adopt_arg, accounts, &self->last_ts, err, err_size) != 0) {
        journal_warm_destroy (&warm);
        return -1;
    }
    uint64_t started_ms = s_clock_ms (CLOCK_MONOTONIC);
    uint64_t started_cpu_ms = s_clock_ms (CLOCK_THREAD_CPUTIME_ID);
    accounts_ms = started_ms - accounts_ms;
    accounts_cpu_ms = started_cpu_ms - accounts_cpu_ms;
    //  Invariant 8: every id stored or imported is in the filter before the
    //  replay adds the ones after the checkpoint, and before anything is served.
    assert (!self->ids);
    if (warm) {
        self->ids = warm->ids;
        warm->ids = NULL;
    } else {
        self->ids = journal_filter_scan (self->store, self->ids_keys_min, self->ids_extra, err,
                                         err_size);
    }
    if (!self->ids) {
        journal_warm_destroy (&warm);
        return -1;
    }
    size_t scanned = idfilter_count (self->ids);
    int rc = 0;
    if (warm) {
        for (size_t i = 0; rc == 0 && i < warm->count; i++) {
            rc = s_replay_record (self, accounts, &warm->recent[i], err, err_size);
        }
        if (rc == 0 && verify) {
            rc = s_warm_verify (self, err, err_size);
        }
    } else {
        rc = s_replay (self, accounts, err, err_size);
    }
    if (rc != 0) {
        journal_warm_destroy (&warm);
        return -1;
    }
    rl_info ("journal: id filter of %zu ids (%zu MB) %s in %" PRIu64 " ms (%" PRIu64
             " ms of CPU), %zu from %s; %zu accounts %s in %" PRIu64 " ms (%" PRIu64 " ms of CPU)",
             idfilter_count (self->ids), idfilter_bytes (self->ids) >> 20,
             warm ? "taken from the standby's memory with its transfers" : "built",
             s_clock_ms (CLOCK_MONOTONIC) - started_ms,
             s_clock_ms (CLOCK_THREAD_CPUTIME_ID) - started_cpu_ms, scanned,
             warm ? "it" : "the ingested and imported indexes", accounts_live_count (accounts),
             warm ? "taken over from it" : "loaded", accounts_ms, accounts_cpu_ms);
    self->opened_warm = warm != NULL;
    self->piece_ts = 0; //  the replay is done; the next checkpoint deletes the key
    journal_warm_destroy (&warm);
    return 0;
}

bool
journal_opened_warm (const journal_t *self)
{
    assert (self);
    return self->opened_warm;
}

const rl_transfer_t *
journal_recent (const journal_t *self, size_t *count_p)
{
    assert (self && count_p);
    *count_p = self->live->recent_count;
    return self->live->recent;
}

const rl_transfer_t *
journal_frozen (const journal_t *self, size_t *count_p)
{
    assert (self && count_p);
    *count_p = self->frozen ? self->frozen->recent_count : 0;
    return self->frozen ? self->frozen->recent : NULL;
}

uint64_t
journal_checkpoint_ts (const journal_t *self)
{
    assert (self);
    return self->checkpoint_ts;
}

uint64_t
journal_last_ts (const journal_t *self)
{
    assert (self);
    return self->last_ts;
}

uint64_t
journal_transfers_ok (const journal_t *self)
{
    assert (self);
    return self->transfers_ok;
}

void
journal_before_commit (journal_t *self)
{
    assert (self);
    if (store_batch_count (self->store) > 0) {
        s_put_meta_u64 (self, JOURNAL_META_LAST_TS, self->last_ts);
    }
}

uint64_t
journal_freeze (journal_t *self)
{
    assert (self && !self->frozen);
    assert (store_batch_count (self->store) == 0); //  everything appended is committed
    self->frozen = self->live;
    self->frozen_ts = self->last_ts;
    self->live = self->frozen == &self->gens[0] ? &self->gens[1] : &self->gens[0];
    assert (self->live->recent_count == 0 && idmap_size (self->live->recent_ids) == 0);
    return self->frozen_ts;
}

void
journal_thaw (journal_t *self)
{
    assert (self && self->frozen);
    assert (self->checkpoint_ts <= self->frozen_ts && self->frozen_ts <= self->last_ts);
    self->checkpoint_ts = self->frozen_ts;
    rl_debug ("journal: id filter: %zu ids, sized for %zu; %" PRIu64
              " probes answered by it, %" PRIu64 " read; %" PRIu64 " leg checks answered by it",
              idfilter_count (self->ids), idfilter_capacity (self->ids), self->ids_answered,
              self->ids_read, self->legs_answered);
    s_gen_clear (self->frozen);
    self->frozen = NULL;
}
