/*  checkpoint.c: a shard's checkpoint, off the loop thread.

    DESIGN
    A checkpoint used to stop the loop for as long as it took to sort the
    index entries of 262,144 transfers, write them as SST files, ingest
    them and write the dirty accounts (hundreds of ms: the shard's whole
    tail latency). Now the loop only takes a consistent snapshot, in O(1)
    for the transfers and O(dirty accounts) for the accounts, and hands it
    to a thread started for this one checkpoint. The snapshot is the
    journal's frozen generation (the transfers up to checkpoint_ts, which
    nobody writes any more: journal.c, GENERATIONS) and a copy of every
    account record changed since the last checkpoint, taken right after a
    group commit, so that the copy is exactly the stored accounts plus the
    replay of the frozen transfers. The thread sorts and ingests the
    indexes, then writes the copied accounts (in pieces: PIECES) and
    checkpoint_ts in a synced batch of its own; meanwhile the loop appends
    new transfers to the journal's other generation, and every lookup
    consults the live generation, then the frozen one, then the store, so
    that no id is ever missing in between. The loop drops the frozen
    generation (journal_thaw) only after it has seen the batch committed.
    A crash at any point leaves either the old checkpoint_ts (the replay
    rebuilds both generations from the WAL; index entries already ingested
    are re-ingested identically later; the accounts of the pieces written
    are named by the piece key) or the new one with the accounts of the
    same instant.

    STATES (the background's progress; `state` under `lock`)

        IDLE --checkpoint_start (loop)--> WRITING --indexes ingested--> INGESTED
          ^                                  |                              |
          |                                  +--a step fails--> FAILED <----+
          |                                                       |         |
          +------------- checkpoint_wait (loop joins) ------------+    batch synced
          +------------- checkpoint_wait (loop joins) <------ COMMITTED <---+

      WRITING    the thread sorts the entries of tx_index, legs and
                 history, writes each as an SST and ingests it
                 (store_ingest_sorted: failpoints store.ingest.staged and
                 store.ingest.done around the ingest).
      INGESTED   the thread writes the accounts and checkpoint_ts: in one
                 batch, or in pieces and then the batch (PIECES; failpoint
                 checkpoint.ingested just before, checkpoint.piece after
                 each piece but the last).
      COMMITTED  synced (failpoint checkpoint.committed just after); the
                 loop joins at its next turn and thaws the journal.
      FAILED     an SST write, an ingest or the batch failed (or a
                 failpoint said error); the loop joins and the shard enters
                 its FAILED state, as a failed checkpoint always did.

    THREAD HAND-OFF
    The loop owns everything here but `state`. checkpoint_start fills the
    job (transfers, accounts, checkpoint_ts) and then creates the thread:
    from then until checkpoint_wait has joined it, the job and `batch`
    belong to the thread, and the loop neither writes them nor the frozen
    generation they point into. pthread_create and pthread_join order the
    two sides' accesses; `state` is the only field both touch while the
    thread runs, under `lock`. The thread writes to RocksDB only through
    store calls that are safe beside the loop's (store.h).

    THE SORT
    Each index is written as an SST, so its entries (fixed size, the key
    first: tx_index 16 + 8 bytes, history 24, legs 32 + 8) are sorted by
    their key bytes, as memcmp orders them. checkpoint_sort is an LSD radix
    sort over those bytes: one read of the entries counts every byte
    position's values, then one stable pass per byte position, from the
    last to the first, moves the entries by that byte into a scratch array
    and back; a position where every entry holds the same byte (the high
    bytes of small account ids, of timestamps) is skipped. That is
    O(entries x varying key bytes) moves and no comparison, where qsort's
    merge sort made about 18 memcmp calls and copies per entry at 2^18
    entries (17% of a shard's CPU at full batches). Being stable, it gives
    exactly qsort's order (itself a stable merge sort), even for equal
    keys; the stores require the keys strictly increasing anyway, and the
    sort asserts its result is in order.

    INVARIANTS
    1. At most one checkpoint is handed over at a time: checkpoint_start
       requires IDLE, and only checkpoint_wait returns to IDLE.
    2. The snapshot is consistent: the transfers are all those with a
       timestamp up to checkpoint_ts not yet checkpointed, and the accounts
       are the memory of the same instant (taken after a group commit,
       before any later transfer).
    3. The checkpoint batch writes checkpoint_ts only after every index
       entry up to it is ingested, and the loop forgets the frozen
       generation only after that batch is synced: an id is always in the
       live generation, the frozen one or the store.
    4. A state only moves forward along the diagram; COMMITTED and FAILED
       are left only by checkpoint_wait.
    5. The background thread blocks every signal: signals reach the loop.

    PIECES
    The accounts used to go in the one synced batch with checkpoint_ts. The
    store's write lock is held while RocksDB writes a batch, and a loop's
    group write waits for it: 10,000 accounts held it 20-74 ms, the open
    loop's longest waits (a piece of 256 rarely holds it 3 ms: figures in
    docs/storage.md). So the accounts go in pieces of piece_accounts
    (CHECKPOINT_PIECE_ACCOUNTS), each a write of its own, not synced,
    between which the loop's writes pass. The pieces are in key order, and
    each also puts the meta key checkpoint_piece: this checkpoint_ts and
    the last account key written. The last piece goes into the synced batch
    that writes checkpoint_ts and deletes checkpoint_piece. After a crash
    in between, the stored accounts up to that key are as of this
    checkpoint_ts (every account there was written by a piece, or has not
    changed since the last checkpoint), the others as of the old one, so
    the replay posts to the former only the transfers after this
    checkpoint_ts (journal.c, invariant 4). It honours one key: a
    checkpoint that finds checkpoint_piece on disk (an earlier one stopped
    half way) goes whole, in one batch, and deletes it. So does one with
    writes of the loop in its batch (a migration's adopted accounts: the
    staged copies and these accounts change together) or few accounts.
    The WAL keeps batches in order, so the synced batch makes every piece
    durable, and a crash keeps a prefix of the pieces.

    THE ID FILTER'S GROWTH
    When the journal's id filter holds more ids than it was sized for, the
    loop asks the checkpoint it starts for a bigger one
    (checkpoint_grow_filter). Once the batch is committed, the thread
    scans tx_index, which now holds the frozen generation too, and the
    imported ids into a new filter (journal_filter_scan; seconds for tens
    of millions of ids), before it reports COMMITTED; the loop takes it
    after the join (checkpoint_take_filter) and the journal swaps it in
    with the ids that came since the freeze. A failed scan costs nothing
    but the growth: the old filter, which holds every id, stays.

    LIMITS
    One checkpoint in the background. Backpressure is the caller's
    (ledger.c): when the next generation fills up before this checkpoint
    ends, the loop waits for it, so nothing is dropped and memory stays at
    two generations. Sorting and SST buffers: about 72 bytes per transfer,
    plus the sort's scratch (48 bytes per transfer at most, one index at a
    time), allocated by the thread for the length of one checkpoint. Sort
    keys are at most CHECKPOINT_SORT_KEY_MAX bytes (the histograms, 32 KB,
    are on the stack). When no thread can be created the checkpoint runs
    on the loop, as it used to.
*/
#include "checkpoint.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "failpoint.h"
#include "idfilter.h"
#include "journal.h"
#include "log.h"

#define S_ORDER_ENTRY (RL_ID_SIZE + 4) //  an account's key, then its index in the snapshot

struct checkpoint_t {
    store_t *store;
    pthread_mutex_t lock;     //  guards state
    checkpoint_state_t state; //  both threads, under lock
    //  The loop's alone:
    bool busy;              //  handed over and not yet waited for
    bool thread_live;       //  a thread to join
    pthread_t thread;       //  with thread_live
    rl_account_t *accounts; //  the accounts snapshot (the thread's while busy)
    size_t accounts_cap;    //  records
    //  The job, the thread's while busy:
    const rl_transfer_t *transfers; //  the frozen generation, ts order
    size_t transfer_count;
    size_t account_count;   //  records in accounts
    uint64_t checkpoint_ts; //  the end of the frozen generation (ns)
    store_batch_t *batch;   //  the checkpoint batch
    bool filter_wanted;     //  build a bigger id filter after the batch
    size_t filter_extra;    //  ... with room for this many ids beyond those stored
    idfilter_t *filter;     //  ... built (the thread's while busy), or NULL
    uint64_t duration_ms;   //  of the last checkpoint, in the background
    size_t piece_accounts;  //  accounts a piece writes (PIECES)
    size_t pieces;          //  the last checkpoint's pieces before its batch
};

checkpoint_t *
checkpoint_new (store_t *store)
{
    assert (store);
    checkpoint_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->batch = store_batch_new ();
    if (!self->batch) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    self->piece_accounts = CHECKPOINT_PIECE_ACCOUNTS;
    assert (self->state == CHECKPOINT_IDLE && !self->busy);
    return self;
}

void
checkpoint_set_piece_accounts (checkpoint_t *self, size_t accounts)
{
    assert (self && !self->busy && accounts > 0);
    self->piece_accounts = accounts;
}

void
checkpoint_destroy (checkpoint_t **self_p)
{
    assert (self_p);
    checkpoint_t *self = *self_p;
    if (!self) {
        return;
    }
    if (self->busy) {
        checkpoint_wait (self); //  the thread reads memory its owners are about to free
    }
    assert (!self->busy && !self->thread_live);
    store_batch_destroy (&self->batch);
    idfilter_destroy (&self->filter);
    pthread_mutex_destroy (&self->lock);
    free (self->accounts);
    free (self);
    *self_p = NULL;
}

store_batch_t *
checkpoint_batch (checkpoint_t *self)
{
    assert (self && !self->busy);
    return self->batch;
}

rl_account_t *
checkpoint_accounts (checkpoint_t *self, size_t count)
{
    assert (self && !self->busy);
    if (count > self->accounts_cap) {
        size_t cap = self->accounts_cap ? self->accounts_cap : 1024;
        while (cap < count) {
            cap *= 2;
        }
        rl_account_t *accounts = realloc (self->accounts, cap * sizeof (*accounts));
        if (!accounts) {
            return NULL;
        }
        self->accounts = accounts;
        self->accounts_cap = cap;
    }
    assert (count <= self->accounts_cap);
    return self->accounts; //  NULL only when nothing was ever asked for
}

static void
s_set_state (checkpoint_t *self, checkpoint_state_t state)
{
    assert (self && state != CHECKPOINT_IDLE); //  only checkpoint_wait goes back to IDLE
    pthread_mutex_lock (&self->lock);
    //  Invariant 4: forward only.
    assert ((self->state == CHECKPOINT_IDLE && state == CHECKPOINT_WRITING)
            || (self->state == CHECKPOINT_WRITING
                && (state == CHECKPOINT_INGESTED || state == CHECKPOINT_FAILED))
            || (self->state == CHECKPOINT_INGESTED
                && (state == CHECKPOINT_COMMITTED || state == CHECKPOINT_FAILED)));
    self->state = state;
    pthread_mutex_unlock (&self->lock);
}

checkpoint_state_t
checkpoint_state (checkpoint_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    checkpoint_state_t state = self->state;
    pthread_mutex_unlock (&self->lock);
    assert (state <= CHECKPOINT_FAILED);
    return state;
}

bool
checkpoint_busy (checkpoint_t *self)
{
    assert (self);
    assert (self->busy || checkpoint_state (self) == CHECKPOINT_IDLE);
    return self->busy;
}

const rl_account_t *
checkpoint_snapshot (const checkpoint_t *self, size_t *count_p)
{
    assert (self && count_p);
    *count_p = self->busy ? self->account_count : 0;
    return self->busy ? self->accounts : NULL;
}

//  The sorted indexes (background) ----------------------------------------------

//  One stable pass of the radix sort: the entries of src, in order, go to
//  dst by their byte `digit`, each to the next free slot of its bucket.
static inline void
s_radix_pass (const uint8_t *src, uint8_t *dst, size_t count, size_t entry_size, size_t digit,
              const uint32_t *bucket_count)
{
    size_t next[256];
    size_t at = 0;
    for (size_t b = 0; b < 256; b++) {
        next[b] = at;
        at += bucket_count[b];
    }
    assert (at == count);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *entry = src + i * entry_size;
        memcpy (dst + next[entry[digit]]++ * entry_size, entry, entry_size);
    }
}

int
checkpoint_sort (uint8_t *entries, size_t count, size_t entry_size, size_t key_size)
{
    assert (entries || count == 0);
    assert (key_size > 0 && key_size <= CHECKPOINT_SORT_KEY_MAX && key_size <= entry_size);
    assert (count <= UINT32_MAX);
    if (count < 2) {
        return 0;
    }
    //  Every digit's histogram in one read of the entries.
    static_assert (CHECKPOINT_SORT_KEY_MAX <= 32, "the histograms live on the stack");
    uint32_t histogram[CHECKPOINT_SORT_KEY_MAX][256];
    memset (histogram, 0, key_size * sizeof (histogram[0]));
    for (size_t i = 0; i < count; i++) {
        const uint8_t *entry = entries + i * entry_size;
        for (size_t d = 0; d < key_size; d++) {
            histogram[d][entry[d]]++;
        }
    }
    uint8_t *scratch = NULL;
    uint8_t *src = entries;
    for (size_t d = key_size; d-- > 0;) {
        if (histogram[d][entries[d]] == count) {
            continue; //  one value in this byte: the pass would move nothing
        }
        if (!scratch) {
            scratch = malloc (count * entry_size);
            if (!scratch) {
                rl_error ("checkpoint: no memory to sort %zu entries", count);
                return -1;
            }
        }
        uint8_t *dst = src == entries ? scratch : entries;
        //  Constant sizes let the compiler inline the copy of an entry.
        if (entry_size == 24) {
            s_radix_pass (src, dst, count, 24, d, histogram[d]);
        } else if (entry_size == 40) {
            s_radix_pass (src, dst, count, 40, d, histogram[d]);
        } else {
            s_radix_pass (src, dst, count, entry_size, d, histogram[d]);
        }
        src = dst;
    }
    if (src != entries) {
        memcpy (entries, src, count * entry_size);
    }
    free (scratch);
    for (size_t i = 1; i < count; i++) {
        assert (memcmp (entries + (i - 1) * entry_size, entries + i * entry_size, key_size) <= 0);
    }
    return 0;
}

//  The credit legs applied here: (id, debit) -> ts.
static int
s_ingest_legs (checkpoint_t *self)
{
    enum { LEG_ENTRY = 2 * RL_ID_SIZE + 8 };
    assert (self->transfers || self->transfer_count == 0);
    size_t count = 0;
    for (size_t i = 0; i < self->transfer_count; i++) {
        count += JOURNAL_LEG (self->transfers[i].reserved) == JOURNAL_LEG_CREDIT;
    }
    if (count == 0) {
        return 0;
    }
    uint8_t *legs = malloc (count * LEG_ENTRY);
    if (!legs) {
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < self->transfer_count && n < count; i++) {
        const rl_transfer_t *t = &self->transfers[i];
        if (JOURNAL_LEG (t->reserved) == JOURNAL_LEG_CREDIT) {
            uint8_t *entry = legs + n++ * LEG_ENTRY;
            codec_encode_id (t->id, entry);
            codec_encode_id (t->debit_account_id, entry + RL_ID_SIZE);
            codec_put_u64 (entry + 2 * RL_ID_SIZE, t->timestamp);
        }
    }
    assert (n == count);
    int rc = checkpoint_sort (legs, n, LEG_ENTRY, 2 * RL_ID_SIZE);
    if (rc == 0) {
        rc = store_ingest_sorted (self->store, STORE_CF_LEGS, legs, LEG_ENTRY, 2 * RL_ID_SIZE, n);
    }
    free (legs);
    return rc;
}

//  Sorts and ingests the tx_index and history entries of every transfer,
//  then the legs.
static int
s_ingest (checkpoint_t *self)
{
    enum { ID_ENTRY = RL_ID_SIZE + 8, HISTORY_ENTRY = RL_ID_SIZE + 8 };
    size_t count = self->transfer_count;
    assert (count > 0 && self->transfers);
    uint8_t *ids = malloc (count * ID_ENTRY);
    uint8_t *history = malloc (count * 2 * HISTORY_ENTRY);
    if (!ids || !history) {
        free (ids);
        free (history);
        return -1;
    }
    size_t history_count = 0, id_count = 0;
    for (size_t i = 0; i < count; i++) {
        const rl_transfer_t *t = &self->transfers[i];
        assert (t->timestamp <= self->checkpoint_ts);
        uint32_t leg = JOURNAL_LEG (t->reserved);
        if (leg != JOURNAL_LEG_CREDIT) {
            codec_encode_id (t->id, ids + id_count * ID_ENTRY);
            codec_put_u64 (ids + id_count * ID_ENTRY + RL_ID_SIZE, t->timestamp);
            id_count++;
        }
        if (JOURNAL_RESULT (t->reserved) == RL_OK) {
            uint8_t *entry = NULL;
            if (leg != JOURNAL_LEG_CREDIT) {
                entry = history + history_count++ * HISTORY_ENTRY;
                codec_encode_id (t->debit_account_id, entry);
                codec_put_u64_be (entry + RL_ID_SIZE, t->timestamp);
            }
            if (leg != JOURNAL_LEG_DEBIT) {
                entry = history + history_count++ * HISTORY_ENTRY;
                codec_encode_id (t->credit_account_id, entry);
                codec_put_u64_be (entry + RL_ID_SIZE, t->timestamp);
            }
        }
    }
    assert (id_count <= count && history_count <= 2 * count);
    int rc = checkpoint_sort (ids, id_count, ID_ENTRY, RL_ID_SIZE);
    if (rc == 0) {
        rc = checkpoint_sort (history, history_count, HISTORY_ENTRY, HISTORY_ENTRY);
    }
    if (rc == 0) {
        rc = store_ingest_sorted (self->store, STORE_CF_TX_INDEX, ids, ID_ENTRY, RL_ID_SIZE,
                                  id_count);
    }
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

static void
s_put_account (checkpoint_t *self, const rl_account_t *account)
{
    uint8_t key[RL_ID_SIZE];
    uint8_t value[RL_ACCOUNT_SIZE];
    codec_encode_id (account->id, key);
    codec_encode_account (account, value);
    store_batch_put_into (self->store, self->batch, STORE_CF_ACCOUNTS, key, sizeof (key), value,
                          sizeof (value));
}

static void
s_put_all (checkpoint_t *self)
{
    for (size_t i = 0; i < self->account_count; i++) {
        s_put_account (self, &self->accounts[i]);
    }
}

//  May the accounts go in pieces? Not when the loop put writes into the
//  batch (they must be atomic with these accounts: ledger.c, "ADOPTED
//  ACCOUNTS"), nor when one piece holds them all, nor when an earlier
//  checkpoint's piece key is still on disk (it stopped half way): the
//  replay can honour one key only (journal.c, invariant 4), so the
//  checkpoint after it goes whole and deletes it. 1 yes, 0 no, -1 a read
//  failed.
static int
s_in_pieces (checkpoint_t *self)
{
    if (store_batch_entries (self->batch) > 0 || self->account_count <= self->piece_accounts) {
        return 0;
    }
    uint8_t value[JOURNAL_PIECE_SIZE];
    size_t size = 0;
    const char *name = JOURNAL_META_CHECKPOINT_PIECE;
    int found = store_get (self->store, STORE_CF_META, name, strlen (name), value, sizeof (value),
                           &size);
    return found < 0 ? -1 : !found;
}

//  Every account but the last piece's, in pieces in key order, each
//  written (not synced) with the piece key: this checkpoint_ts and the
//  last key written. The last piece goes into the batch for s_commit.
//  0, or -1 when a write failed (or a failpoint said error). Without
//  memory for the order, all of them go into the batch.
static int
s_write_pieces (checkpoint_t *self)
{
    size_t count = self->account_count;
    uint8_t *order = malloc (count * S_ORDER_ENTRY);
    for (size_t i = 0; order && i < count; i++) {
        codec_encode_id (self->accounts[i].id, order + i * S_ORDER_ENTRY);
        codec_put_u32 (order + i * S_ORDER_ENTRY + RL_ID_SIZE, (uint32_t) i);
    }
    if (!order || checkpoint_sort (order, count, S_ORDER_ENTRY, RL_ID_SIZE) != 0) {
        //  Unsorted, the piece key would not bound what was written.
        rl_warn ("checkpoint: no memory to order %zu accounts: one batch", count);
        s_put_all (self);
        free (order);
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count;) {
        size_t end = i + self->piece_accounts < count ? i + self->piece_accounts : count;
        for (; i < end; i++) {
            uint32_t index = codec_get_u32 (order + i * S_ORDER_ENTRY + RL_ID_SIZE);
            assert (index < count);
            s_put_account (self, &self->accounts[index]);
        }
        if (end == count) {
            break; //  the last piece commits with checkpoint_ts
        }
        uint8_t piece[JOURNAL_PIECE_SIZE];
        codec_put_u64 (piece, self->checkpoint_ts);
        memcpy (piece + 8, order + (end - 1) * S_ORDER_ENTRY, RL_ID_SIZE);
        store_batch_put_into (self->store, self->batch, STORE_CF_META,
                              JOURNAL_META_CHECKPOINT_PIECE, strlen (JOURNAL_META_CHECKPOINT_PIECE),
                              piece, sizeof (piece));
        rc = store_batch_write (self->store, self->batch);
        if (rc == 0) {
            self->pieces++;
            rc = RL_FAILPOINT (CHECKPOINT_PIECE);
        }
    }
    free (order);
    return rc;
}

//  The checkpoint batch: what the loop put there (checkpoint_batch), the
//  accounts snapshot (its last piece) and checkpoint_ts, synced.
static int
s_commit (checkpoint_t *self)
{
    assert (self->busy && checkpoint_state (self) == CHECKPOINT_INGESTED);
    assert (self->account_count <= self->accounts_cap);
    int in_pieces = s_in_pieces (self);
    if (in_pieces < 0) {
        return -1;
    }
    self->pieces = 0;
    if (in_pieces) {
        if (s_write_pieces (self) != 0) {
            return -1;
        }
    } else {
        s_put_all (self);
    }
    uint8_t ts[8];
    codec_put_u64 (ts, self->checkpoint_ts);
    store_batch_put_into (self->store, self->batch, STORE_CF_META, JOURNAL_META_CHECKPOINT_TS,
                          strlen (JOURNAL_META_CHECKPOINT_TS), ts, sizeof (ts));
    store_batch_delete_into (self->store, self->batch, STORE_CF_META, JOURNAL_META_CHECKPOINT_PIECE,
                             strlen (JOURNAL_META_CHECKPOINT_PIECE));
    return store_batch_commit (self->store, self->batch);
}

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

//  The bigger id filter, after the batch (its failure fails only the growth).
static void
s_grow_filter (checkpoint_t *self)
{
    assert (self->filter_wanted && !self->filter);
    uint64_t started_ms = s_now_ms ();
    char err[256] = "";
    self->filter = journal_filter_scan (self->store, 0, self->filter_extra, err, sizeof (err));
    if (!self->filter) {
        rl_error ("checkpoint: the id filter could not grow: %s", err);
        return;
    }
    rl_info ("checkpoint: a filter of %zu ids built in %" PRIu64 " ms",
             idfilter_count (self->filter), s_now_ms () - started_ms);
}

//  The whole checkpoint, on the background thread (or the loop, when no
//  thread could be made).
static void
s_run (checkpoint_t *self)
{
    assert (self->busy && checkpoint_state (self) == CHECKPOINT_WRITING);
    assert (self->transfers || self->transfer_count == 0);
    uint64_t started_ms = s_now_ms ();
    int rc = RL_FAILPOINT (CHECKPOINT_STARTED);
    if (rc == 0 && self->transfer_count > 0) {
        rc = s_ingest (self);
    }
    if (rc == 0) {
        s_set_state (self, CHECKPOINT_INGESTED);
        rc = RL_FAILPOINT (CHECKPOINT_INGESTED);
    }
    if (rc == 0) {
        rc = s_commit (self);
    }
    if (rc == 0) {
        RL_FAILPOINT (CHECKPOINT_COMMITTED);
        if (self->filter_wanted) {
            s_grow_filter (self);
        }
    } else {
        rl_error ("checkpoint at ts %" PRIu64 " failed: %s", self->checkpoint_ts,
                  store_error (self->store));
    }
    self->duration_ms = s_now_ms () - started_ms;
    s_set_state (self, rc == 0 ? CHECKPOINT_COMMITTED : CHECKPOINT_FAILED);
}

static void *
s_thread (void *arg)
{
    checkpoint_t *self = arg;
    assert (self && self->busy);
    s_run (self);
    return NULL;
}

void
checkpoint_start (checkpoint_t *self, const rl_transfer_t *transfers, size_t count,
                  size_t account_count, uint64_t checkpoint_ts)
{
    assert (self && !self->busy && !self->thread_live); //  invariant 1
    assert (transfers || count == 0);
    assert (account_count <= self->accounts_cap);
    assert (count == 0 || transfers[count - 1].timestamp <= checkpoint_ts);
    self->transfers = transfers;
    self->transfer_count = count;
    self->account_count = account_count;
    self->checkpoint_ts = checkpoint_ts;
    self->busy = true;
    s_set_state (self, CHECKPOINT_WRITING);
    //  Invariant 5: the thread inherits a mask that blocks every signal.
    sigset_t all, old;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    self->thread_live = pthread_create (&self->thread, NULL, s_thread, self) == 0;
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (!self->thread_live) {
        rl_warn ("checkpoint: no thread: it runs on the loop");
        s_run (self);
    }
}

void
checkpoint_grow_filter (checkpoint_t *self, size_t extra_keys)
{
    assert (self && !self->busy && !self->filter);
    self->filter_wanted = true;
    self->filter_extra = extra_keys;
}

idfilter_t *
checkpoint_take_filter (checkpoint_t *self)
{
    assert (self && !self->busy);
    idfilter_t *filter = self->filter;
    self->filter = NULL;
    self->filter_wanted = false;
    return filter;
}

int
checkpoint_wait (checkpoint_t *self)
{
    assert (self && self->busy);
    if (self->thread_live) {
        int rc = pthread_join (self->thread, NULL);
        assert (rc == 0);
        self->thread_live = false;
    }
    pthread_mutex_lock (&self->lock);
    checkpoint_state_t state = self->state;
    assert (state == CHECKPOINT_COMMITTED || state == CHECKPOINT_FAILED);
    self->state = CHECKPOINT_IDLE;
    pthread_mutex_unlock (&self->lock);
    rl_debug ("checkpoint at ts %" PRIu64 ": %zu transfers, %zu accounts (%zu pieces before its "
              "batch), %" PRIu64 " ms in the background%s",
              self->checkpoint_ts, self->transfer_count, self->account_count, self->pieces,
              self->duration_ms, state == CHECKPOINT_FAILED ? " (failed)" : "");
    self->busy = false;
    self->transfers = NULL;
    self->transfer_count = self->account_count = 0;
    return state == CHECKPOINT_COMMITTED ? 0 : -1;
}
