/*  test_idfilter_paths.c: every path that brings transfer ids into a shard
    feeds its id filter before the shard answers (journal.c, invariant 8).

    A false "absent" from the filter would skip the idempotency read and
    apply a retried transfer a second time. So test_retries_by_path runs
    the code a shard runs (ledger_open on a RocksDB store on disk, no
    process) and retries, with the same records, the ids brought in by
    each path, expecting `exists` with the original timestamp (or the
    business failure that burned the id) and balances unchanged:
      - checkpoint: ids ingested into tx_index by background checkpoints
        and a forced one, retried while the shard runs and after it reopens
        (the scan of tx_index at open);
      - recovery: ids after the last checkpoint, replayed from the WAL at
        open;
      - migration import: transfer records put as a migration's chunk puts
        them (imported_put, ledger_note_imported_id), whose debit accounts
        exist here, so that a missed id would be applied again; retried
        while running and after the reopen (the 'I' keys scanned at open);
      - restore: a RocksDB checkpoint of the store (the cut a backup takes
        and restores) opened as a new shard's store.
    Every check ends with the balances against a model of the first
    answers, and conservation (debits == credits).

    test_growth: a journal whose filter starts at 1,024 ids takes more;
    the next checkpoint builds a bigger filter from tx_index while the loop
    appends, the thaw swaps it in with the ids appended meanwhile, and no id
    is lost; an id imported while a growth runs makes the thaw keep the old
    filter (the scan may have missed it), and the following checkpoint
    grows it. Seeded: the seed is printed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "accounts.h"
#include "checkpoint.h"
#include "codec.h"
#include "harness.h"
#include "idfilter.h"
#include "imported.h"
#include "journal.h"
#include "ledger.h"
#include "outq.h"
#include "ring.h"
#include "rl_rand.h"
#include "store.h"
#include "testkit.h"

#define LEDGER      77
#define ACCOUNTS    16
#define TAG         0x1df1
#define SENT_MAX    8000
#define BATCH       500
#define INTERVAL    1000 //  transfers between checkpoints
#define ORIGIN      0x5eed
#define GHOST_DEBIT (ACCOUNTS + 5) //  an account that does not exist: burns the id

typedef struct {
    harness_t *h;
    char *dir; //  the shard's store
    char *cut; //  the restored copy
    store_t *store;
    outq_t *outq;
    ring_t *ring;
    ledger_t *ledger;
    uint64_t rng;
    uint64_t next_id;
    rl_transfer_t sent[SENT_MAX];
    rl_result_rec_t first[SENT_MAX]; //  the first answer of each
    bool imported[SENT_MAX];         //  brought by the migration, never applied here
    size_t count;
    uint64_t debits[ACCOUNTS + 1], credits[ACCOUNTS + 1]; //  the model
} s_ctx_t;

static void
s_open (s_ctx_t *ctx, const char *dir)
{
    char err[256] = "";
    ctx->store = store_open (dir, RL_DURABILITY_SYNC, err, sizeof (err));
    if (!ctx->store) {
        fail_msg ("store_open: %s", err);
    }
    ctx->outq = outq_new ();
    assert_non_null (ctx->outq);
    ctx->ledger = ledger_open (ctx->store, ctx->outq, "s1", ctx->ring, rl_rand_next (&ctx->rng),
                               now_read (), err, sizeof (err));
    if (!ctx->ledger) {
        fail_msg ("ledger_open: %s", err);
    }
    ledger_set_checkpoint_transfers (ctx->ledger, INTERVAL);
}

static void
s_close (s_ctx_t *ctx)
{
    ledger_destroy (&ctx->ledger);
    outq_destroy (&ctx->outq);
    store_close (&ctx->store);
}

//  A group commit (written and synced), as a shard's turn ends.
static void
s_commit (s_ctx_t *ctx)
{
    ledger_before_commit (ctx->ledger);
    assert_int_equal (store_commit (ctx->store), 0);
    assert_int_equal (ledger_after_commit (ctx->ledger), 0);
}

static rl_result_rec_t s_results[BATCH];

static void
s_create (s_ctx_t *ctx, const rl_transfer_t *batch, size_t n)
{
    rl_header_t header = codec_request_header (RL_OP_CREATE_TRANSFERS, 1, (uint32_t) n);
    assert_int_equal (
        ledger_create_transfers (ctx->ledger, batch, n, now_read (), NULL, &header, s_results),
        LEDGER_REPLY_NOW);
    s_commit (ctx);
}

//  Sends `count` new transfers in requests of BATCH; one in 16 names a
//  debit account that does not exist (its id is burned).
static void
s_send (s_ctx_t *ctx, size_t count)
{
    assert_true (ctx->count + count <= SENT_MAX);
    while (count > 0) {
        size_t n = count < BATCH ? count : BATCH;
        rl_transfer_t *batch = &ctx->sent[ctx->count];
        for (size_t i = 0; i < n; i++) {
            uint64_t dr = 1 + rl_rand_next (&ctx->rng) % ACCOUNTS;
            uint64_t cr = 1 + (dr + rl_rand_next (&ctx->rng) % (ACCOUNTS - 1)) % ACCOUNTS;
            if (rl_rand_next (&ctx->rng) % 16 == 0) {
                dr = GHOST_DEBIT;
            }
            batch[i] = tk_transfer (tk_id (++ctx->next_id, TAG), tk_id (dr, TAG), tk_id (cr, TAG),
                                    1 + rl_rand_next (&ctx->rng) % 1000, LEDGER);
        }
        s_create (ctx, batch, n);
        for (size_t i = 0; i < n; i++) {
            rl_result_rec_t r = s_results[i];
            assert_true (r.result == RL_OK || r.result == RL_DEBIT_ACCOUNT_NOT_FOUND);
            ctx->first[ctx->count + i] = r;
            if (r.result == RL_OK) {
                ctx->debits[batch[i].debit_account_id.lo] += batch[i].amount;
                ctx->credits[batch[i].credit_account_id.lo] += batch[i].amount;
            }
        }
        ctx->count += n;
        count -= n;
    }
}

//  Imports `count` transfer records as a migration's chunk does: their
//  debit accounts exist here, so a retry the filter missed would apply.
static void
s_import (s_ctx_t *ctx, size_t count)
{
    assert_true (ctx->count + count <= SENT_MAX);
    for (size_t i = 0; i < count; i++) {
        uint64_t dr = 1 + rl_rand_next (&ctx->rng) % ACCOUNTS;
        uint64_t cr = 1 + dr % ACCOUNTS;
        chunk_entry_t e = {.kind = RL_CHUNK_TRANSFER, .origin = ORIGIN};
        e.transfer = tk_transfer (tk_id (++ctx->next_id, TAG), tk_id (dr, TAG), tk_id (cr, TAG), 5,
                                  LEDGER);
        e.transfer.timestamp = 1000 + ctx->next_id; //  the origin's timestamp
        e.transfer.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
        //  The whole ring but the point 0: every account of this shard.
        imported_put (ctx->store, 0, UINT64_MAX, &e);
        ledger_note_imported_id (ctx->ledger, e.transfer.id);
        size_t k = ctx->count++;
        ctx->sent[k] = e.transfer;
        ctx->sent[k].timestamp = 0;
        ctx->sent[k].reserved = 0;
        ctx->first[k] = (rl_result_rec_t){.result = RL_OK, .timestamp = e.transfer.timestamp};
        ctx->imported[k] = true;
    }
    ledger_set_imported (ctx->ledger);
    s_commit (ctx);
}

//  Balances equal the model; debits equal credits.
static void
s_check_balances (s_ctx_t *ctx)
{
    uint64_t debits = 0, credits = 0;
    for (uint64_t n = 1; n <= ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, TAG);
        rl_account_t a;
        ledger_lookup_accounts (ctx->ledger, &id, 1, &a);
        assert_int_equal (a.debits_posted, ctx->debits[n]);
        assert_int_equal (a.credits_posted, ctx->credits[n]);
        debits += a.debits_posted;
        credits += a.credits_posted;
    }
    assert_int_equal (debits, credits);
}

//  Retries every transfer sent or imported, in requests of BATCH: each
//  gets its original outcome, and nothing moves.
static void
s_retry_all (s_ctx_t *ctx, const char *when)
{
    size_t exists = 0, burned = 0, imported = 0;
    for (size_t from = 0; from < ctx->count; from += BATCH) {
        size_t n = ctx->count - from < BATCH ? ctx->count - from : BATCH;
        s_create (ctx, &ctx->sent[from], n);
        for (size_t i = 0; i < n; i++) {
            const rl_result_rec_t *f = &ctx->first[from + i];
            const rl_result_rec_t *r = &s_results[i];
            if (f->result == RL_OK) {
                if (r->result != RL_EXISTS || r->timestamp != f->timestamp) {
                    fail_msg ("%s: transfer %zu (%s) answered %u ts %lu, first ok ts %lu", when,
                              from + i, ctx->imported[from + i] ? "imported" : "sent here",
                              r->result, (unsigned long) r->timestamp,
                              (unsigned long) f->timestamp);
                }
                exists++;
                imported += ctx->imported[from + i];
            } else {
                assert_int_equal (r->result, f->result); //  the id stays burned
                burned++;
            }
        }
    }
    s_check_balances (ctx);
    print_message ("%s: %zu retries exist (%zu imported), %zu stay burned\n", when, exists,
                   imported, burned);
    assert_int_equal (exists + burned, ctx->count);
}

static void
test_retries_by_path (void **state)
{
    (void) state;
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    uint64_t seed = (uint64_t) time (NULL);
    print_message ("test_idfilter_paths: seed %lu\n", (unsigned long) seed);
    ctx->rng = seed | 1;
    ctx->h = harness_new ("test_idfilter_paths");
    assert_non_null (ctx->h);
    ctx->dir = harness_path (ctx->h, "s1");
    ctx->cut = harness_path (ctx->h, "restored");
    ctx->ring = ring_new (1);
    assert_non_null (ctx->ring);
    assert_int_equal (ring_add_shard (ctx->ring, "s1", "tcp://127.0.0.1:1", 1.0), RING_OK);
    s_open (ctx, ctx->dir);
    rl_account_t accounts[ACCOUNTS];
    rl_result_rec_t results[ACCOUNTS];
    for (uint64_t n = 1; n <= ACCOUNTS; n++) {
        accounts[n - 1] = tk_account (n, TAG, LEDGER, 0);
    }
    ledger_create_accounts (ctx->ledger, accounts, ACCOUNTS, now_read (), results);
    for (size_t i = 0; i < ACCOUNTS; i++) {
        assert_int_equal (results[i].result, RL_OK);
    }
    s_commit (ctx);
    //  Checkpoint: three intervals, checkpointed in the background, then
    //  the rest by a forced one.
    s_send (ctx, 3 * INTERVAL + BATCH);
    assert_int_equal (ledger_checkpoint (ctx->ledger), 0);
    assert_true (ledger_checkpoint_count (ctx->ledger) >= 2);
    //  Recovery: after the last checkpoint, in the WAL only.
    s_send (ctx, 2 * BATCH);
    //  Migration import.
    s_import (ctx, 2 * BATCH);
    s_retry_all (ctx, "running");
    //  The retries stored nothing: what follows is the open's work.
    s_close (ctx);
    s_open (ctx, ctx->dir);
    s_retry_all (ctx, "reopened");
    //  Restore: the store's cut opened as a new shard's.
    char err[256] = "";
    if (store_checkpoint (ctx->store, ctx->cut, 0, err, sizeof (err)) != 0) {
        fail_msg ("store_checkpoint: %s", err);
    }
    s_close (ctx);
    s_open (ctx, ctx->cut);
    s_retry_all (ctx, "restored");
    //  A new id is still new: the filter does not answer "maybe" to all.
    rl_transfer_t fresh = tk_transfer (tk_id (++ctx->next_id, TAG), tk_id (1, TAG), tk_id (2, TAG),
                                       3, LEDGER);
    s_create (ctx, &fresh, 1);
    assert_int_equal (s_results[0].result, RL_OK);
    ctx->debits[1] += 3;
    ctx->credits[2] += 3;
    s_check_balances (ctx);
    s_close (ctx);
    ring_destroy (&ctx->ring);
    free (ctx->dir);
    free (ctx->cut);
    harness_destroy (&ctx->h);
    free (ctx);
}

//  The filter's growth, on a journal -------------------------------------------

typedef struct {
    store_env_t *env;
    store_t *store;
    accounts_t *accounts;
    journal_t *journal;
    checkpoint_t *checkpoint;
    uint64_t appended; //  ids 1..appended
} s_jctx_t;

static void
s_jappend (s_jctx_t *ctx, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        rl_transfer_t t = tk_transfer (tk_id (++ctx->appended, TAG), tk_id (1, TAG), tk_id (2, TAG),
                                       1, LEDGER);
        t.timestamp = journal_next_ts (ctx->journal, 1000);
        t.reserved = JOURNAL_STORED (RL_DEBIT_ACCOUNT_NOT_FOUND, JOURNAL_LEG_BOTH);
        assert_int_equal (journal_append (ctx->journal, &t), 0);
    }
    journal_before_commit (ctx->journal);
    assert_int_equal (store_commit (ctx->store), 0);
}

//  Every id appended is found, and the filter holds it.
static void
s_jall_found (s_jctx_t *ctx)
{
    for (uint64_t lo = 1; lo <= ctx->appended; lo++) {
        rl_transfer_t t;
        assert_true (journal_may_hold (ctx->journal, tk_id (lo, TAG)));
        assert_int_equal (journal_find (ctx->journal, tk_id (lo, TAG), &t), 1);
    }
}

//  An id a migration imports (its 'I' key), committed.
static void
s_jimport (s_jctx_t *ctx, uint64_t lo)
{
    chunk_entry_t e = {.kind = RL_CHUNK_TRANSFER, .origin = ORIGIN};
    e.transfer = tk_transfer (tk_id (lo, TAG), tk_id (1, TAG), tk_id (2, TAG), 1, LEDGER);
    e.transfer.timestamp = 77;
    e.transfer.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
    imported_put (ctx->store, 0, UINT64_MAX, &e);
    journal_note_id (ctx->journal, e.transfer.id);
    assert_int_equal (store_commit (ctx->store), 0);
}

//  One checkpoint of everything appended, as the ledger runs it: with
//  `during` appends (and an import when asked) while it runs, and a
//  growth when the journal asks for one. Returns the filter's capacity
//  after the thaw.
static size_t
s_jcheckpoint (s_jctx_t *ctx, uint64_t during, uint64_t import_lo)
{
    uint64_t ts = journal_freeze (ctx->journal);
    size_t count = 0;
    const rl_transfer_t *frozen = journal_frozen (ctx->journal, &count);
    size_t extra = 0;
    bool grow = journal_filter_growth (ctx->journal, &extra);
    if (grow) {
        checkpoint_grow_filter (ctx->checkpoint, extra);
    }
    checkpoint_start (ctx->checkpoint, frozen, count, 0, ts);
    s_jappend (ctx, during);
    if (import_lo) {
        s_jimport (ctx, import_lo);
    }
    assert_int_equal (checkpoint_wait (ctx->checkpoint), 0);
    idfilter_t *filter = checkpoint_take_filter (ctx->checkpoint);
    assert_true (grow || !filter);
    journal_thaw (ctx->journal);
    if (grow) {
        journal_filter_swap (ctx->journal, &filter);
    }
    assert_null (filter);
    s_jall_found (ctx);
    size_t held = 0, capacity = 0;
    uint64_t filtered = 0, read = 0;
    journal_filter_stats (ctx->journal, &held, &capacity, &filtered, &read);
    return capacity;
}

static void
test_growth (void **state)
{
    (void) state;
    s_jctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    char err[256];
    ctx->env = store_env_new_mem ();
    ctx->store = store_open_env ("/grow", RL_DURABILITY_SYNC, ctx->env, err, sizeof (err));
    assert_non_null (ctx->store);
    ctx->accounts = accounts_new (ctx->store);
    ctx->journal = journal_new (ctx->store);
    ctx->checkpoint = checkpoint_new (ctx->store);
    assert_non_null (ctx->accounts);
    assert_non_null (ctx->journal);
    assert_non_null (ctx->checkpoint);
    //  The smallest filter, and new ones with no room beyond what they hold.
    journal_set_filter_sizing (ctx->journal, IDFILTER_KEYS_FLOOR, 0);
    assert_int_equal (journal_open (ctx->journal, ctx->accounts, err, sizeof (err)), 0);
    size_t held = 0, capacity = 0;
    uint64_t filtered = 0, read = 0;
    journal_filter_stats (ctx->journal, &held, &capacity, &filtered, &read);
    assert_int_equal (capacity, IDFILTER_KEYS_FLOOR);
    //  Within its capacity: no growth.
    s_jappend (ctx, 1000);
    assert_int_equal (s_jcheckpoint (ctx, 0, 0), IDFILTER_KEYS_FLOOR);
    //  Past it: the checkpoint builds a bigger one from tx_index, with room
    //  for at least the full one's capacity beyond the ids it finds (so at
    //  least twice as large: 8,192), and the thaw adds the 500 appended
    //  meanwhile.
    s_jappend (ctx, 1000);
    assert_int_equal (s_jcheckpoint (ctx, 500, 0), 8 * IDFILTER_KEYS_FLOOR);
    journal_filter_stats (ctx->journal, &held, &capacity, &filtered, &read);
    assert_int_equal (held, 2500);
    //  Past it again, with an import while the growth runs: the thaw keeps
    //  the filter it has (the scan may have missed the import).
    s_jappend (ctx, 6000);
    uint64_t imported_lo = 999999;
    assert_int_equal (s_jcheckpoint (ctx, 100, imported_lo), 8 * IDFILTER_KEYS_FLOOR);
    assert_true (journal_may_hold (ctx->journal, tk_id (imported_lo, TAG)));
    //  The next checkpoint grows it, with the imported id (its 'I' key).
    size_t grown = s_jcheckpoint (ctx, 100, 0);
    assert_true (grown > 8 * IDFILTER_KEYS_FLOOR);
    assert_true (journal_may_hold (ctx->journal, tk_id (imported_lo, TAG)));
    journal_filter_stats (ctx->journal, &held, &capacity, &filtered, &read);
    print_message ("filter grew to %zu ids, holding %zu\n", capacity, held);
    //  A reopen builds it from the store alone: the same ids.
    journal_destroy (&ctx->journal);
    ctx->journal = journal_new (ctx->store);
    assert_non_null (ctx->journal);
    accounts_destroy (&ctx->accounts);
    ctx->accounts = accounts_new (ctx->store);
    journal_set_filter_sizing (ctx->journal, IDFILTER_KEYS_FLOOR, 0);
    assert_int_equal (journal_open (ctx->journal, ctx->accounts, err, sizeof (err)), 0);
    s_jall_found (ctx);
    assert_true (journal_may_hold (ctx->journal, tk_id (imported_lo, TAG)));
    //  Probes of ids never stored are answered by the filter, most without a read.
    rl_transfer_t probe[BATCH];
    uint64_t ts[BATCH];
    for (size_t i = 0; i < BATCH; i++) {
        probe[i].id = tk_id (2000000 + i, TAG);
    }
    assert_int_equal (journal_probe (ctx->journal, probe, BATCH, ts), 0);
    size_t none = 0;
    for (size_t i = 0; i < BATCH; i++) {
        assert_true (ts[i] == 0 || ts[i] == JOURNAL_PROBE_NONE);
        none += ts[i] == JOURNAL_PROBE_NONE;
    }
    journal_filter_stats (ctx->journal, &held, &capacity, &filtered, &read);
    print_message ("%zu of %d new ids answered by the filter alone\n", none, BATCH);
    assert_true (none >= BATCH * 9 / 10);
    assert_int_equal (filtered, none);
    journal_destroy (&ctx->journal);
    accounts_destroy (&ctx->accounts);
    checkpoint_destroy (&ctx->checkpoint);
    store_close (&ctx->store);
    store_env_destroy (&ctx->env);
    free (ctx);
}

//  Credit legs in the filter (invariant 8) -------------------------------------

#define LEGS_LO 5000000 //  ids of the credit legs, apart from the appended transfers'

//  count credit legs (ids LEGS_LO + lo.., debit account 1), committed.
static void
s_jlegs (s_jctx_t *ctx, uint64_t lo, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        rl_transfer_t t = tk_transfer (tk_id (LEGS_LO + lo + i, TAG), tk_id (1, TAG),
                                       tk_id (2, TAG), 1, LEDGER);
        t.timestamp = journal_next_ts (ctx->journal, 1000);
        t.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_CREDIT);
        assert_int_equal (journal_append (ctx->journal, &t), 0);
    }
    journal_before_commit (ctx->journal);
    assert_int_equal (store_commit (ctx->store), 0);
}

//  Legs lo.. lo+count-1 (with debit account `debit`): the batched check
//  answers `want` for each, the single check too. Returns the checks the
//  filter answered alone.
static uint64_t
s_jlegs_check (s_jctx_t *ctx, uint64_t lo, uint64_t count, uint64_t debit, int want)
{
    static rl_prepare_rec_t recs[BATCH];
    static int8_t applied[BATCH];
    assert_true (count <= BATCH);
    uint64_t before = journal_legs_filtered (ctx->journal);
    for (uint64_t i = 0; i < count; i++) {
        recs[i].transfer.id = tk_id (LEGS_LO + lo + i, TAG);
        recs[i].transfer.debit_account_id = tk_id (debit, TAG);
    }
    journal_legs_probe (ctx->journal, recs, count, applied);
    for (uint64_t i = 0; i < count; i++) {
        if (applied[i] != want) {
            fail_msg ("leg %" PRIu64 " (debit %" PRIu64 "): %d, expected %d", lo + i, debit,
                      applied[i], want);
        }
        assert_int_equal (journal_leg_applied (ctx->journal, recs[i].transfer.id,
                                               recs[i].transfer.debit_account_id),
                          want);
    }
    return journal_legs_filtered (ctx->journal) - before;
}

//  A leg's filter entry is what lets the leg check of a PREPARE skip the
//  read of `legs`: every applied leg must be found however it got there
//  (in memory, ingested by a checkpoint, scanned at open, carried over a
//  growth), or a duplicate PREPARE of an applied transfer would be
//  prepared again and its credit applied twice.
static void
test_legs (void **state)
{
    (void) state;
    s_jctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    char err[256];
    ctx->env = store_env_new_mem ();
    ctx->store = store_open_env ("/legs", RL_DURABILITY_SYNC, ctx->env, err, sizeof (err));
    assert_non_null (ctx->store);
    ctx->accounts = accounts_new (ctx->store);
    ctx->journal = journal_new (ctx->store);
    ctx->checkpoint = checkpoint_new (ctx->store);
    assert_non_null (ctx->accounts);
    assert_non_null (ctx->journal);
    assert_non_null (ctx->checkpoint);
    journal_set_filter_sizing (ctx->journal, IDFILTER_KEYS_FLOOR, 0);
    assert_int_equal (journal_open (ctx->journal, ctx->accounts, err, sizeof (err)), 0);
    //  In memory (the live generation).
    s_jlegs (ctx, 0, 400);
    s_jlegs_check (ctx, 0, 400, 1, 1);
    //  Ingested by a checkpoint: memory no longer has them.
    s_jcheckpoint (ctx, 0, 0);
    s_jlegs_check (ctx, 0, 400, 1, 1);
    //  Never applied: the same ids with another debit account, and new ids;
    //  the filter answers most of them without a read.
    uint64_t alone = s_jlegs_check (ctx, 0, 400, 3, 0);
    alone += s_jlegs_check (ctx, 1000, 400, 1, 0);
    print_message ("%" PRIu64 " of 800 legs never applied answered by the filter alone\n", alone);
    assert_true (alone >= 800 * 9 / 10);
    //  Past the filter's capacity: the checkpoint grows it from the store
    //  (tx_index, imported, legs) while legs are appended, and the thaw adds
    //  those; a later checkpoint ingests them (no growth then).
    s_jappend (ctx, 1200);
    s_jlegs (ctx, 400, 400);
    size_t capacity = s_jcheckpoint (ctx, 0, 0);
    s_jlegs (ctx, 800, 100);
    assert_true (s_jcheckpoint (ctx, 0, 0) == capacity);
    s_jlegs (ctx, 900, 100);
    size_t held_now = 0, capacity_now = 0;
    uint64_t filtered_now = 0, read_now = 0;
    journal_filter_stats (ctx->journal, &held_now, &capacity_now, &filtered_now, &read_now);
    assert_true (held_now <= capacity_now);
    s_jappend (ctx,
               capacity_now - held_now + 1); //  past the grown filter's capacity: it grows again
    uint64_t ts = journal_freeze (ctx->journal);
    size_t count = 0;
    const rl_transfer_t *frozen = journal_frozen (ctx->journal, &count);
    size_t extra = 0;
    assert_true (journal_filter_growth (ctx->journal, &extra));
    checkpoint_grow_filter (ctx->checkpoint, extra);
    checkpoint_start (ctx->checkpoint, frozen, count, 0, ts);
    s_jlegs (ctx, 1500, 200); //  while the bigger filter is built from the store
    assert_int_equal (checkpoint_wait (ctx->checkpoint), 0);
    idfilter_t *filter = checkpoint_take_filter (ctx->checkpoint);
    assert_non_null (filter);
    journal_thaw (ctx->journal);
    journal_filter_swap (ctx->journal, &filter);
    assert_null (filter);
    size_t held = 0, grown = 0;
    uint64_t filtered = 0, read = 0;
    journal_filter_stats (ctx->journal, &held, &grown, &filtered, &read);
    assert_true (grown > capacity);
    s_jcheckpoint (ctx, 0, 0); //  the legs appended during the growth, ingested
    print_message ("filter of %zu ids (was %zu), holding %zu\n", grown, capacity, held);
    for (uint64_t lo = 0; lo < 1000; lo += 250) {
        s_jlegs_check (ctx, lo, 250, 1, 1);
    }
    s_jlegs_check (ctx, 1500, 200, 1, 1);
    //  A reopen builds the filter from the store alone: every leg is found.
    journal_destroy (&ctx->journal);
    ctx->journal = journal_new (ctx->store);
    assert_non_null (ctx->journal);
    accounts_destroy (&ctx->accounts);
    ctx->accounts = accounts_new (ctx->store);
    journal_set_filter_sizing (ctx->journal, IDFILTER_KEYS_FLOOR, 0);
    assert_int_equal (journal_open (ctx->journal, ctx->accounts, err, sizeof (err)), 0);
    for (uint64_t lo = 0; lo < 1000; lo += 250) {
        s_jlegs_check (ctx, lo, 250, 1, 1);
    }
    s_jlegs_check (ctx, 1500, 200, 1, 1);
    s_jlegs_check (ctx, 0, 400, 3, 0);
    journal_destroy (&ctx->journal);
    accounts_destroy (&ctx->accounts);
    checkpoint_destroy (&ctx->checkpoint);
    store_close (&ctx->store);
    store_env_destroy (&ctx->env);
    free (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_retries_by_path),
        cmocka_unit_test (test_growth),
        cmocka_unit_test (test_legs),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
