/*  test_journal_warm.c: a standby's warm state (journal.h: the accounts,
    the id filter and the transfers after the checkpoint, kept current from
    the writes it applies) against the disk it follows, on the code a shard
    runs (a ledger on a RocksDB store, no process; docs/replication.md,
    "The standby's ledger").

    test_follows_stream: a primary's store with a tap (the replication
    stream: every WriteBatch and ingest, store_set_tap) takes accounts,
    transfers (one in 16 burns its id), checkpoints every 300 transfers
    (which write the changed accounts), an accounts phase (12 accounts
    created, 2 installed with balances as a migration's handover installs
    them, transfers to 4 of them, 8 deleted as a migration's cleanup
    deletes them, with range deletes of their history and imported
    records, in two batches), imported records
    (the 'I' keys a migration puts), a forced checkpoint, transfers and 2
    accounts after it. A second store, empty, applies each event as a standby
    does (store_apply_batch, store_ingest_sorted) and feeds it to a warm
    state built on it at the start with a filter of 1,024 ids, so that it
    fills and is built again bigger several times (journal_warm_settle).
    Then a ledger opened on the copy with that state (ledger_open_warm),
    with journal.warm.verify=error (the open reads from the disk what it
    took from memory and fails if anything differs), holds the 24 accounts
    left (the 8 deleted gone) with balances equal to the primary's and to
    a model of the ok transfers, debits equal to credits (conservation),
    and answers every transfer sent or imported `exists` with the original
    timestamp, or its original failure; a state built from the copy's disk
    at the end holds as many transfers after the checkpoint and as many
    accounts. A third state, `acct`, begins to be built at the first event
    of the accounts phase and is taken after its last: every account write
    of the phase goes through its side record, and it passes
    journal.warm.verify too. Halfway through the stream two more states begin to
    be built in the background (journal_warm_start) and are fed the
    events without being settled for 8 of them: `late` then takes its side
    record (the writes applied while it was built; more than zero) and
    passes journal.warm.verify in a journal opened with it; `tiny`, whose
    side record may hold 1 KB, abandons its build, begins another once
    JOURNAL_WARM_RETRY_MS passed, and holds as many transfers.

    test_hostile_writes: writes a shard never makes each drop the state
    with a reason (journal_warm_settle -1): a transfer record deleted, a
    transfer record not after the newest, one of another size, one whose
    key is not its timestamp, checkpoint_ts moving back, deleted, of
    another size, or under a range delete of meta; an account record of
    another size, under a key of another size or of another id, of id
    zero, an ingest into accounts, a range delete of accounts (even one
    that covers none: the shard writes none); a range delete of meta that
    does not cover it, a delete of an accounts key of another size change
    nothing. A state that no longer agrees
    with the disk (a transfer it holds that the disk does not) is refused
    by journal_open, which reads the disk instead (journal_opened_warm
    false) and recovers the same transfers as a plain open. Index keys of
    a size the scan fails on (tx_index, legs, an 'I' key of imported; an
    ingest of them) drop it too. A state still being built (held by
    journal.warm.build.slow) when the journal opens is ended within 2 s
    and the disk is read (a promotion during a build).

    test_take_closes_holes: the promotion's take of a mirror with the holes
    of 2,100 deleted accounts holds the 900 live ones only, unchanged,
    and takes a new account in the next slot.

    test_accounts_verify: journal.warm.verify fails the open of a journal
    given a mirror broken by one write the disk never took: an account's
    credits_posted changed, an account deleted, one added, one replaced by
    another; without the failpoint the altered balance is what the open
    serves (nothing else checks the accounts at a promotion). The newest
    account deleted on the disk and in the mirror passes (its newest
    timestamp looked for again).
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>

#include "accounts.h"
#include "codec.h"
#include "failpoint.h"
#include "harness.h"
#include "idfilter.h"
#include "imported.h"
#include "journal.h"
#include "ledger.h"
#include "outq.h"
#include "replica.h"
#include "ring.h"
#include "rl_rand.h"
#include "store.h"
#include "testkit.h"

#define LEDGER      78
#define ACCOUNTS    16
#define TAG         0x3a4d
#define SENT_MAX    6000
#define BATCH       250
#define INTERVAL    300
#define ORIGIN      0x5eed
#define GHOST_DEBIT (ACCOUNTS + 5)
#define EVENTS_MAX  4096
#define HELD        8    //  events applied before a build in the background is taken
#define EXTRA       12   //  accounts created later (ids 0xf0 + k): eight deleted
#define INSTALLED   0xe0 //  two accounts installed as a migration's handover installs them
#define LATE_NEW    0xd0 //  two accounts created after the last checkpoint
#define MODEL_MAX   32

//  One event of the stream, copied.
typedef struct {
    store_tap_kind_t kind;
    uint8_t *data;
    size_t size;
    store_cf_t cf;
    size_t entry_size, key_size, count;
} s_event_t;

typedef struct {
    harness_t *h;
    ring_t *ring;
    uint64_t rng;
    store_t *store; //  the primary's
    outq_t *outq;
    ledger_t *ledger;
    pthread_mutex_t lock; //  the tap runs on the checkpoint's thread too
    s_event_t events[EVENTS_MAX];
    size_t event_count;
    rl_transfer_t sent[SENT_MAX];
    rl_result_rec_t first[SENT_MAX];
    bool imported[SENT_MAX]; //  a migration's record: never posted to the balances here
    size_t count;
    uint64_t next_id;
} s_ctx_t;

//  The accounts of test_follows_stream that hold balances: 1..ACCOUNTS,
//  the extras that stay (0xf8 + k), the installed and the late ones.
static rl_id_t
s_model_id (size_t i)
{
    if (i < ACCOUNTS) {
        return tk_id (i + 1, TAG);
    }
    i -= ACCOUNTS;
    if (i < 4) {
        return tk_id (0xf8 + i, TAG);
    }
    i -= 4;
    return tk_id (i < 2 ? INSTALLED + i : LATE_NEW + i - 2, TAG);
}
#define MODEL_COUNT (ACCOUNTS + 4 + 2 + 2)

static int
s_model_index (rl_id_t id)
{
    for (size_t i = 0; i < MODEL_COUNT; i++) {
        if (rl_id_eq (s_model_id (i), id)) {
            return (int) i;
        }
    }
    return -1;
}

static void
s_tap (void *arg, const store_tap_event_t *e)
{
    s_ctx_t *ctx = arg;
    pthread_mutex_lock (&ctx->lock);
    assert (ctx->event_count < EVENTS_MAX);
    s_event_t *copy = &ctx->events[ctx->event_count++];
    *copy = (s_event_t){.kind = e->kind,
                        .size = e->size,
                        .cf = e->cf,
                        .entry_size = e->entry_size,
                        .key_size = e->key_size,
                        .count = e->count};
    copy->data = malloc (e->size);
    assert (copy->data);
    memcpy (copy->data, e->data, e->size);
    pthread_mutex_unlock (&ctx->lock);
}

static void
s_commit (s_ctx_t *ctx)
{
    ledger_before_commit (ctx->ledger);
    assert_int_equal (store_commit (ctx->store), 0);
    assert_int_equal (ledger_after_commit (ctx->ledger), 0);
}

static rl_result_rec_t s_results[BATCH];

static void
s_create (ledger_t *ledger, store_t *store, const rl_transfer_t *batch, size_t n)
{
    rl_header_t header = codec_request_header (RL_OP_CREATE_TRANSFERS, 1, (uint32_t) n);
    assert_int_equal (
        ledger_create_transfers (ledger, batch, n, now_read (), NULL, &header, s_results),
        LEDGER_REPLY_NOW);
    ledger_before_commit (ledger);
    assert_int_equal (store_commit (store), 0);
    assert_int_equal (ledger_after_commit (ledger), 0);
}

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
        s_create (ctx->ledger, ctx->store, batch, n);
        for (size_t i = 0; i < n; i++) {
            assert_true (s_results[i].result == RL_OK
                         || s_results[i].result == RL_DEBIT_ACCOUNT_NOT_FOUND);
            ctx->first[ctx->count + i] = s_results[i];
        }
        ctx->count += n;
        count -= n;
    }
}

//  Imported records as a migration's chunk puts them (test_idfilter_paths).
static void
s_import (s_ctx_t *ctx, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t dr = 1 + rl_rand_next (&ctx->rng) % ACCOUNTS;
        chunk_entry_t e = {.kind = RL_CHUNK_TRANSFER, .origin = ORIGIN};
        e.transfer = tk_transfer (tk_id (++ctx->next_id, TAG), tk_id (dr, TAG),
                                  tk_id (1 + dr % ACCOUNTS, TAG), 5, LEDGER);
        e.transfer.timestamp = 1000 + ctx->next_id;
        e.transfer.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
        imported_put (ctx->store, 0, UINT64_MAX, &e);
        ledger_note_imported_id (ctx->ledger, e.transfer.id);
        size_t k = ctx->count++;
        ctx->imported[k] = true;
        ctx->sent[k] = e.transfer;
        ctx->sent[k].timestamp = 0;
        ctx->sent[k].reserved = 0;
        ctx->first[k] = (rl_result_rec_t){.result = RL_OK, .timestamp = e.transfer.timestamp};
    }
    ledger_set_imported (ctx->ledger);
    s_commit (ctx);
}

static void
s_warm_op (void *arg, const replica_op_t *op)
{
    journal_warm_write (arg, op->cf, op->key, op->key_size, op->value, op->value_size,
                        op->kind == REPLICA_OP_DELETE_RANGE);
}

//  Transfers between the extras that stay (0xf8 + k) and accounts 1..ACCOUNTS.
static void
s_send_extras (s_ctx_t *ctx, size_t n)
{
    assert_true (ctx->count + n <= SENT_MAX && n <= BATCH);
    rl_transfer_t *batch = &ctx->sent[ctx->count];
    for (size_t i = 0; i < n; i++) {
        rl_id_t extra = tk_id (0xf8 + rl_rand_next (&ctx->rng) % 4, TAG);
        rl_id_t other = tk_id (1 + rl_rand_next (&ctx->rng) % ACCOUNTS, TAG);
        bool out = i % 2 == 0;
        batch[i] = tk_transfer (tk_id (++ctx->next_id, TAG), out ? extra : other,
                                out ? other : extra, 1 + rl_rand_next (&ctx->rng) % 50, LEDGER);
    }
    s_create (ctx->ledger, ctx->store, batch, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (s_results[i].result, RL_OK);
        ctx->first[ctx->count + i] = s_results[i];
    }
    ctx->count += n;
}

//  The accounts phase of the stream: accounts created; two installed with
//  balances (as a migration's handover, into the batch); transfers that
//  make the extras that stay dirty (checkpoints write them); eight extras
//  deleted as a migration's cleanup deletes a moved account (its record,
//  with range deletes of its history and imported records), four in one
//  batch, four in the next. The deleted ones never changed since created,
//  so no checkpoint writes them back; their slots are holes in the mirror,
//  which the promotion closes (accounts_take).
static void
s_accounts_phase (s_ctx_t *ctx)
{
    rl_account_t accounts[EXTRA];
    rl_result_rec_t results[EXTRA];
    for (size_t k = 0; k < EXTRA; k++) {
        accounts[k] = tk_account (0xf0 + k, TAG, LEDGER, 0);
    }
    ledger_create_accounts (ctx->ledger, accounts, EXTRA, now_read (), results);
    for (size_t k = 0; k < EXTRA; k++) {
        assert_int_equal (results[k].result, RL_OK);
    }
    s_commit (ctx);
    rl_account_t one;
    rl_id_t id1 = tk_id (1, TAG);
    ledger_lookup_accounts (ctx->ledger, &id1, 1, &one);
    for (size_t k = 0; k < 2; k++) {
        rl_account_t a = tk_account (INSTALLED + k, TAG, LEDGER, 0);
        a.timestamp = one.timestamp + 5 + k;
        a.debits_posted = k == 0 ? 500 : 0;
        a.credits_posted = k == 0 ? 0 : 500;
        assert_int_equal (ledger_install_account (ctx->ledger, &a), 0);
    }
    s_commit (ctx);
    s_send_extras (ctx, 40);
    for (size_t k = 0; k < 8; k++) {
        if (k == 4) {
            s_commit (ctx);
        }
        uint8_t key[RL_ID_SIZE], to[RL_ID_SIZE], from[1 + RL_ID_SIZE], to_i[1 + RL_ID_SIZE];
        codec_encode_id (tk_id (0xf0 + k, TAG), key);
        memcpy (to, key, RL_ID_SIZE);
        to[RL_ID_SIZE - 1]++; //  TAG's last byte is not 0xff: [key, to) is the id's prefix
        store_batch_delete (ctx->store, STORE_CF_ACCOUNTS, key, RL_ID_SIZE);
        store_batch_delete_range (ctx->store, STORE_CF_HISTORY, key, RL_ID_SIZE, to, RL_ID_SIZE);
        from[0] = IMPORTED_HISTORY;
        memcpy (from + 1, key, RL_ID_SIZE);
        memcpy (to_i, from, sizeof from);
        to_i[RL_ID_SIZE]++;
        store_batch_delete_range (ctx->store, STORE_CF_IMPORTED, from, sizeof from, to_i,
                                  sizeof to_i);
    }
    s_commit (ctx);
}

static store_t *
s_store (const char *dir)
{
    char err[256] = "";
    store_t *store = store_open (dir, RL_DURABILITY_SYNC, err, sizeof err);
    if (!store) {
        fail_msg ("store_open %s: %s", dir, err);
    }
    return store;
}

static void
s_setup_ring (s_ctx_t *ctx)
{
    ctx->ring = ring_new (1);
    assert_non_null (ctx->ring);
    assert_int_equal (ring_add_shard (ctx->ring, "s1", "tcp://127.0.0.1:1", 1.0), RING_OK);
}

static void
test_follows_stream (void **state)
{
    (void) state;
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    uint64_t seed = (uint64_t) time (NULL);
    print_message ("test_journal_warm: seed %lu\n", (unsigned long) seed);
    ctx->rng = seed | 1;
    ctx->h = harness_new ("test_journal_warm");
    assert_non_null (ctx->h);
    pthread_mutex_init (&ctx->lock, NULL);
    s_setup_ring (ctx);
    char *primary_dir = harness_path (ctx->h, "primary");
    char *copy_dir = harness_path (ctx->h, "copy");
    //  The copy and its warm state at position 0: an empty database, with
    //  a filter of 1,024 ids (it grows several times on the way).
    store_t *copy = s_store (copy_dir);
    char err[256] = "";
    journal_warm_t *warm = journal_warm_new (copy, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    assert_non_null (warm);
    //  The primary, its every write tapped from its open on.
    ctx->store = s_store (primary_dir);
    store_set_tap (ctx->store, s_tap, ctx);
    ctx->outq = outq_new ();
    ctx->ledger = ledger_open (ctx->store, ctx->outq, "s1", ctx->ring, 7, now_read (), err,
                               sizeof err);
    if (!ctx->ledger) {
        fail_msg ("ledger_open: %s", err);
    }
    ledger_set_checkpoint_transfers (ctx->ledger, INTERVAL);
    rl_account_t accounts[ACCOUNTS];
    rl_result_rec_t results[ACCOUNTS];
    for (uint64_t n = 1; n <= ACCOUNTS; n++) {
        accounts[n - 1] = tk_account (n, TAG, LEDGER, 0);
    }
    ledger_create_accounts (ctx->ledger, accounts, ACCOUNTS, now_read (), results);
    s_commit (ctx);
    s_send (ctx, 1500);
    pthread_mutex_lock (&ctx->lock);
    size_t accounts_from = ctx->event_count; //  `acct` begins to be built here
    pthread_mutex_unlock (&ctx->lock);
    s_accounts_phase (ctx);
    s_import (ctx, 200);
    s_send (ctx, 1500);
    pthread_mutex_lock (&ctx->lock);
    size_t accounts_to = ctx->event_count; //  and is taken here
    pthread_mutex_unlock (&ctx->lock);
    assert_int_equal (ledger_checkpoint (ctx->ledger), 0);
    ledger_set_checkpoint_transfers (ctx->ledger, 100000); //  no checkpoint in the background now
    s_send (ctx, 700); //  after the last checkpoint: replayed from memory
    ledger_create_accounts (ctx->ledger,
                            (rl_account_t[]){tk_account (LATE_NEW, TAG, LEDGER, 0),
                                             tk_account (LATE_NEW + 1, TAG, LEDGER, 0)},
                            2, now_read (), results);
    s_commit (ctx);
    store_set_tap (ctx->store, NULL, NULL);
    //  The standby's apply, event by event.
    //  Halfway, two more states begin to be built in the background while
    //  the events go on, left unsettled for HELD events (their side records
    //  hold them): `late`, and `tiny`, which may keep a side record of 1 KB
    //  only (abandoned, built again later).
    //  A third, `acct`, begins at the first event of the accounts phase and
    //  is taken after its last: every account write of the phase goes
    //  through its side record.
    uint64_t position = 0;
    size_t batches = 0, ingests = 0, held = 0;
    journal_warm_t *late = NULL, *tiny = NULL, *acct = NULL;
    for (size_t i = 0; i < ctx->event_count; i++) {
        s_event_t *e = &ctx->events[i];
        if (i == accounts_from) {
            acct = journal_warm_start (copy, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
            assert_non_null (acct);
        }
        if (i == ctx->event_count / 2) {
            late = journal_warm_start (copy, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
            tiny = journal_warm_start (copy, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
            assert_true (late && tiny && !journal_warm_ready (late));
            journal_warm_set_side_max (tiny, 1024);
        }
        uint8_t value[16];
        codec_put_u64 (value, 1);
        codec_put_u64 (value + 8, ++position);
        if (e->kind == STORE_TAP_BATCH) {
            assert_true (replica_batch_valid (e->data, e->size));
            assert_int_equal (store_apply_batch (copy, e->data, e->size, REPLICA_META_POSITION,
                                                 strlen (REPLICA_META_POSITION), value,
                                                 sizeof value),
                              0);
            assert_true (replica_batch_each (e->data, e->size, s_warm_op, warm));
            for (journal_warm_t **w = (journal_warm_t *[]){late, tiny, acct}, **end = w + 3;
                 w < end; w++) {
                if (*w) {
                    assert_true (replica_batch_each (e->data, e->size, s_warm_op, *w));
                }
            }
            batches++;
        } else {
            assert_int_equal (
                store_ingest_sorted (copy, e->cf, e->data, e->entry_size, e->key_size, e->count),
                0);
            journal_warm_ingest (warm, e->cf, e->data, e->entry_size, e->key_size, e->count);
            for (journal_warm_t **w = (journal_warm_t *[]){late, tiny, acct}, **end = w + 3;
                 w < end; w++) {
                if (*w) {
                    journal_warm_ingest (*w, e->cf, e->data, e->entry_size, e->key_size, e->count);
                }
            }
            ingests++;
        }
        if (journal_warm_settle (warm, err, sizeof err) != 0) {
            fail_msg ("event %zu: the warm state was dropped: %s", i, err);
        }
        if (late && ++held == HELD) {
            journal_warm_wait (late); //  its thread is done; the side record is not taken yet
        }
        if (late && held >= HELD && journal_warm_settle (late, err, sizeof err) != 0) {
            fail_msg ("event %zu: the state built in the background was dropped: %s", i, err);
        }
        if (tiny && held >= HELD && journal_warm_settle (tiny, err, sizeof err) != 0) {
            fail_msg ("event %zu: the state with a small side record was dropped: %s", i, err);
        }
        if (i == accounts_from) {
            journal_warm_wait (acct); //  its read is done: the phase goes into its side record
        }
        if (acct && i + 1 >= accounts_to && journal_warm_settle (acct, err, sizeof err) != 0) {
            fail_msg ("event %zu: the state built over the accounts phase was dropped: %s", i, err);
        }
        free (e->data);
    }
    size_t ids = 0, transfers = 0;
    journal_warm_stats (warm, &ids, &transfers);
    print_message ("%zu batches, %zu ingests; warm: %zu ids, %zu transfers after the checkpoint\n",
                   batches, ingests, ids, transfers);
    assert_true (ingests > 0);
    assert_true (transfers >= 700 && ids > IDFILTER_KEYS_FLOOR);
    //  Its accounts: 16, 12 extras less the 8 deleted, 2 installed, 2 late.
    size_t live = ACCOUNTS + EXTRA - 8 + 2 + 2;
    assert_int_equal (journal_warm_accounts (warm), live);
    //  A state built from the copy's disk holds as many transfers and accounts.
    journal_warm_t *fresh = journal_warm_new (copy, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    assert_non_null (fresh);
    size_t fresh_ids = 0, fresh_transfers = 0;
    journal_warm_stats (fresh, &fresh_ids, &fresh_transfers);
    assert_int_equal (fresh_transfers, transfers);
    assert_int_equal (journal_warm_accounts (fresh), live);
    journal_warm_destroy (&fresh);
    //  `late` took the events applied while it was built from its side
    //  record; `tiny` abandoned its build (its side record full) and, built
    //  again once JOURNAL_WARM_RETRY_MS passed, holds the same.
    uint64_t side = 0, abandoned = 0;
    journal_warm_side_stats (late, &side, &abandoned);
    print_message ("built in the background: %lu writes taken from its side record\n",
                   (unsigned long) side);
    assert_true (journal_warm_ready (late) && side > 0 && abandoned == 0);
    journal_warm_side_stats (tiny, &side, &abandoned);
    assert_true (abandoned >= 1);
    journal_warm_set_side_max (tiny, JOURNAL_WARM_SIDE_MAX);
    for (int tries = 0; !journal_warm_ready (tiny) && tries < 300; tries++) {
        zclock_sleep (10);
        assert_int_equal (journal_warm_settle (tiny, err, sizeof err), 0);
    }
    assert_true (journal_warm_ready (tiny));
    journal_warm_stats (tiny, &fresh_ids, &fresh_transfers);
    assert_int_equal (fresh_transfers, transfers);
    journal_warm_destroy (&tiny);
    //  The copy opened with each, checked against its disk: `late` by a
    //  journal alone (it writes nothing), `warm` by the ledger.
    assert_int_equal (setenv ("RL_FAILPOINTS", "journal.warm.verify=error", 1), 0);
    assert_int_equal (failpoint_init (err, sizeof err), 0);
    accounts_t *late_accounts = accounts_new (copy);
    journal_t *late_journal = journal_new (copy);
    journal_set_warm (late_journal, &late);
    if (journal_open (late_journal, late_accounts, err, sizeof err) != 0) {
        fail_msg ("journal_open with the state built in the background: %s", err);
    }
    assert_true (journal_opened_warm (late_journal));
    journal_destroy (&late_journal);
    accounts_destroy (&late_accounts);
    //  `acct` took the accounts phase from its side record.
    journal_warm_side_stats (acct, &side, &abandoned);
    print_message ("built over the accounts phase: %lu writes taken from its side record\n",
                   (unsigned long) side);
    assert_true (journal_warm_ready (acct) && side > 0 && abandoned == 0);
    assert_int_equal (journal_warm_accounts (acct), live);
    accounts_t *acct_accounts = accounts_new (copy);
    journal_t *acct_journal = journal_new (copy);
    journal_set_warm (acct_journal, &acct);
    if (journal_open (acct_journal, acct_accounts, err, sizeof err) != 0) {
        fail_msg ("journal_open with the state built over the accounts phase: %s", err);
    }
    assert_true (journal_opened_warm (acct_journal));
    assert_int_equal (accounts_live_count (acct_accounts), live);
    journal_destroy (&acct_journal);
    accounts_destroy (&acct_accounts);
    outq_t *copy_outq = outq_new ();
    ledger_t *promoted = ledger_open_warm (copy, copy_outq, "s1", ctx->ring, 8, now_read (), &warm,
                                           err, sizeof err);
    unsetenv ("RL_FAILPOINTS");
    assert_int_equal (failpoint_init (err, sizeof err), 0);
    if (!promoted) {
        fail_msg ("ledger_open_warm: %s", err);
    }
    assert_null (warm);
    //  Balances as the primary's and as a model of the ok transfers (and
    //  the installed balances); the deleted accounts are gone.
    uint64_t model_dr[MODEL_COUNT] = {0}, model_cr[MODEL_COUNT] = {0};
    model_dr[ACCOUNTS + 4] = 500; //  installed
    model_cr[ACCOUNTS + 5] = 500;
    size_t ok = 0;
    for (size_t i = 0; i < ctx->count; i++) {
        if (ctx->first[i].result == RL_OK && !ctx->imported[i]) {
            int dr = s_model_index (ctx->sent[i].debit_account_id);
            int cr = s_model_index (ctx->sent[i].credit_account_id);
            assert_true (dr >= 0 && cr >= 0);
            model_dr[dr] += ctx->sent[i].amount;
            model_cr[cr] += ctx->sent[i].amount;
            ok++;
        }
    }
    for (size_t i = 0; i < MODEL_COUNT; i++) {
        rl_id_t id = s_model_id (i);
        rl_account_t a, b;
        ledger_lookup_accounts (ctx->ledger, &id, 1, &a);
        ledger_lookup_accounts (promoted, &id, 1, &b);
        assert_true (b.timestamp != 0);
        assert_int_equal (a.debits_posted, b.debits_posted);
        assert_int_equal (a.credits_posted, b.credits_posted);
        assert_int_equal (a.timestamp, b.timestamp);
        if (b.debits_posted != model_dr[i] || b.credits_posted != model_cr[i]) {
            fail_msg ("account %zu: %lu/%lu posted, the model %lu/%lu", i,
                      (unsigned long) b.debits_posted, (unsigned long) b.credits_posted,
                      (unsigned long) model_dr[i], (unsigned long) model_cr[i]);
        }
    }
    for (size_t k = 0; k < 8; k++) {
        rl_id_t id = tk_id (0xf0 + k, TAG);
        rl_account_t b;
        ledger_lookup_accounts (promoted, &id, 1, &b);
        assert_int_equal (b.timestamp, 0); //  deleted
    }
    uint64_t dp = 0, cp = 0, dr = 0, cr = 0;
    ledger_sums (promoted, LEDGER, &dp, &cp, &dr, &cr);
    print_message ("conservation: %zu ok transfers, %lu posted on each side\n", ok,
                   (unsigned long) dp);
    assert_true (ok >= 2000 && dp > 0);
    assert_int_equal (dp, cp);
    assert_int_equal (dr + cr, 0);
    size_t exists = 0;
    for (size_t from = 0; from < ctx->count; from += BATCH) {
        size_t n = ctx->count - from < BATCH ? ctx->count - from : BATCH;
        s_create (promoted, copy, &ctx->sent[from], n);
        for (size_t i = 0; i < n; i++) {
            const rl_result_rec_t *f = &ctx->first[from + i];
            if (f->result == RL_OK) {
                if (s_results[i].result != RL_EXISTS || s_results[i].timestamp != f->timestamp) {
                    fail_msg ("transfer %zu: answered %u ts %lu, first ok ts %lu", from + i,
                              s_results[i].result, (unsigned long) s_results[i].timestamp,
                              (unsigned long) f->timestamp);
                }
                exists++;
            } else {
                assert_int_equal (s_results[i].result, f->result);
            }
        }
    }
    print_message ("%zu of %zu retries exist on the promoted copy\n", exists, ctx->count);
    ledger_destroy (&promoted);
    outq_destroy (&copy_outq);
    store_close (&copy);
    ledger_destroy (&ctx->ledger);
    outq_destroy (&ctx->outq);
    store_close (&ctx->store);
    ring_destroy (&ctx->ring);
    pthread_mutex_destroy (&ctx->lock);
    free (primary_dir);
    free (copy_dir);
    harness_destroy (&ctx->h);
    free (ctx);
}

typedef struct {
    const char *what;
    store_cf_t cf;
    const void *key;
    size_t key_size;
    const void *value;
    size_t value_size;
    bool range;
} s_case_t;

//  A warm state of store, fed one write, then settled: 0 or -1.
static int
s_one_write (store_t *store, store_cf_t cf, const void *key, size_t key_size, const void *value,
             size_t value_size, bool range, char *why, size_t why_size)
{
    char err[256];
    journal_warm_t *warm = journal_warm_new (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    assert_non_null (warm);
    journal_warm_write (warm, cf, key, key_size, value, value_size, range);
    int rc = journal_warm_settle (warm, why, why_size);
    journal_warm_destroy (&warm);
    return rc;
}

//  One shard's store and a ledger on it, in a harness directory of its
//  own: the set-up of the cases that write a disk and open it again.
typedef struct {
    harness_t *h;
    ring_t *ring;
    char *dir;
    store_t *store;
    outq_t *outq;
} s_shard_t;

static ledger_t *
s_shard_open (s_shard_t *fx, const char *name)
{
    fx->h = harness_new (name);
    assert_non_null (fx->h);
    fx->ring = ring_new (1);
    assert_int_equal (ring_add_shard (fx->ring, "s1", "tcp://127.0.0.1:1", 1.0), RING_OK);
    fx->dir = harness_path (fx->h, "s1");
    fx->store = s_store (fx->dir);
    fx->outq = outq_new ();
    char err[256] = "";
    ledger_t *ledger = ledger_open (fx->store, fx->outq, "s1", fx->ring, 7, now_read (), err,
                                    sizeof err);
    if (!ledger) {
        fail_msg ("ledger_open: %s", err);
    }
    return ledger;
}

//  After the case destroyed its ledger.
static void
s_shard_close (s_shard_t *fx)
{
    outq_destroy (&fx->outq);
    store_close (&fx->store);
    ring_destroy (&fx->ring);
    free (fx->dir);
    harness_destroy (&fx->h);
}

static void
test_hostile_writes (void **state)
{
    (void) state;
    s_shard_t fx;
    ledger_t *ledger = s_shard_open (&fx, "test_journal_warm_hostile");
    store_t *store = fx.store;
    char err[256] = "";
    ledger_set_checkpoint_transfers (ledger, 50);
    rl_account_t accounts[2] = {tk_account (1, TAG, LEDGER, 0), tk_account (2, TAG, LEDGER, 0)};
    rl_result_rec_t results[2];
    ledger_create_accounts (ledger, accounts, 2, now_read (), results);
    ledger_before_commit (ledger);
    assert_int_equal (store_commit (store), 0);
    assert_int_equal (ledger_after_commit (ledger), 0);
    rl_transfer_t ts[80];
    for (size_t i = 0; i < 80; i++) {
        ts[i] = tk_transfer (tk_id (100 + i, TAG), tk_id (1, TAG), tk_id (2, TAG), 1, LEDGER);
    }
    s_create (ledger, store, ts, 80);
    assert_int_equal (ledger_checkpoint (ledger), 0);
    s_create (ledger, store, ts, 0 + 1); //  exists: nothing stored
    rl_transfer_t more[5];
    for (size_t i = 0; i < 5; i++) {
        more[i] = tk_transfer (tk_id (300 + i, TAG), tk_id (1, TAG), tk_id (2, TAG), 1, LEDGER);
    }
    s_create (ledger, store, more, 5);
    ledger_destroy (&ledger);
    //  The newest transfer record, and checkpoint_ts, as stored.
    store_iter_t *it = store_iter_new (store, STORE_CF_TRANSFERS);
    store_iter_seek_last (it);
    assert_true (store_iter_valid (it));
    size_t size = 0;
    uint8_t key[8], value[RL_TRANSFER_SIZE];
    memcpy (key, store_iter_key (it, &size), 8);
    memcpy (value, store_iter_value (it, &size), RL_TRANSFER_SIZE);
    store_iter_destroy (&it);
    rl_transfer_t newest;
    codec_decode_transfer (value, &newest);
    uint8_t cp[8];
    assert_int_equal (store_get (store, STORE_CF_META, JOURNAL_META_CHECKPOINT_TS,
                                 strlen (JOURNAL_META_CHECKPOINT_TS), cp, sizeof cp, &size),
                      1);
    uint64_t checkpoint_ts = codec_get_u64 (cp);
    assert_true (checkpoint_ts > 0 && checkpoint_ts < newest.timestamp);
    const char *ck = JOURNAL_META_CHECKPOINT_TS;
    size_t ck_size = strlen (ck);
    char why[256];
    //  Each drops the state, with its reason.
    s_case_t cases[24];
    size_t n = 0;
    cases[n++] = (s_case_t){"a transfer deleted", STORE_CF_TRANSFERS, key, 8, NULL, 0, false};
    cases[n++] = (s_case_t){"transfers range-deleted",
                            STORE_CF_TRANSFERS,
                            key,
                            8,
                            "\xff\xff\xff\xff\xff\xff\xff\xff",
                            8,
                            true};
    cases[n++] = (s_case_t){"the newest transfer put again",
                            STORE_CF_TRANSFERS,
                            key,
                            8,
                            value,
                            RL_TRANSFER_SIZE,
                            false};
    cases[n++] = (s_case_t){"a transfer of 10 bytes", STORE_CF_TRANSFERS, key, 8, value, 10, false};
    uint8_t later_key[8], later[RL_TRANSFER_SIZE];
    codec_put_u64_be (later_key, newest.timestamp + 10);
    rl_transfer_t t = newest;
    t.timestamp = newest.timestamp + 11; //  not its key
    codec_encode_transfer (&t, later);
    cases[n++] = (s_case_t){"a transfer under another key",
                            STORE_CF_TRANSFERS,
                            later_key,
                            8,
                            later,
                            RL_TRANSFER_SIZE,
                            false};
    uint8_t back[8];
    codec_put_u64 (back, checkpoint_ts - 1);
    cases[n++] = (s_case_t){"checkpoint_ts back", STORE_CF_META, ck, ck_size, back, 8, false};
    cases[n++] = (s_case_t){"checkpoint_ts deleted", STORE_CF_META, ck, ck_size, NULL, 0, false};
    cases[n++] = (s_case_t){"checkpoint_ts of 4 bytes", STORE_CF_META, ck, ck_size, back, 4, false};
    cases[n++] = (s_case_t){"meta range-deleted over it", STORE_CF_META, "a", 1, "z", 1, true};
    //  Index keys of a size the scan fails on (a cold recovery would not open).
    uint8_t id_key[1 + 2 * RL_ID_SIZE] = {'I'};
    cases[n++] = (s_case_t){
        "a tx_index key of 15 bytes", STORE_CF_TX_INDEX, id_key, 15, "", 0, false};
    cases[n++] = (s_case_t){"a legs key of 16 bytes", STORE_CF_LEGS, id_key, 16, "", 0, false};
    cases[n++] = (s_case_t){
        "an imported 'I' key of 10 bytes", STORE_CF_IMPORTED, id_key, 10, "", 0, false};
    //  Account records a recovery's load fails on, or that a mirror cannot
    //  follow a delete of (not under their own id's key).
    uint8_t acct_key[RL_ID_SIZE], acct[RL_ACCOUNT_SIZE], zero_key[RL_ID_SIZE] = {0};
    uint8_t zero_acct[RL_ACCOUNT_SIZE];
    rl_account_t a1 = tk_account (1, TAG, LEDGER, 0);
    a1.timestamp = 5;
    codec_encode_id (a1.id, acct_key);
    codec_encode_account (&a1, acct);
    rl_account_t a0 = a1;
    a0.id = (rl_id_t){0};
    codec_encode_account (&a0, zero_acct);
    cases[n++] = (s_case_t){
        "an account record of 100 bytes", STORE_CF_ACCOUNTS, acct_key, 16, acct, 100, false};
    cases[n++] = (s_case_t){"an account key of 15 bytes",
                            STORE_CF_ACCOUNTS,
                            acct_key,
                            15,
                            acct,
                            RL_ACCOUNT_SIZE,
                            false};
    cases[n++] = (s_case_t){"an account under another id's key",
                            STORE_CF_ACCOUNTS,
                            id_key + 1,
                            16,
                            acct,
                            RL_ACCOUNT_SIZE,
                            false};
    cases[n++] = (s_case_t){"an account of id zero",
                            STORE_CF_ACCOUNTS,
                            zero_key,
                            16,
                            zero_acct,
                            RL_ACCOUNT_SIZE,
                            false};
    assert_true (n <= sizeof cases / sizeof cases[0]);
    for (size_t i = 0; i < n; i++) {
        why[0] = '\0';
        if (s_one_write (store, cases[i].cf, cases[i].key, cases[i].key_size, cases[i].value,
                         cases[i].value_size, cases[i].range, why, sizeof why)
            != -1) {
            fail_msg ("%s: the state was kept", cases[i].what);
        }
        assert_true (why[0] != '\0');
        print_message ("%s: dropped (%s)\n", cases[i].what, why);
    }
    //  An ingest of index keys of another size drops it too.
    {
        journal_warm_t *w = journal_warm_new (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
        assert_non_null (w);
        uint8_t entries[2 * 24] = {0};
        journal_warm_ingest (w, STORE_CF_TX_INDEX, entries, 24, 8, 2);
        assert_int_equal (journal_warm_settle (w, why, sizeof why), -1);
        print_message ("an ingest of 8-byte tx_index keys: dropped (%s)\n", why);
        journal_warm_destroy (&w);
        //  An ingest into accounts (the shard makes none, a standby refuses one).
        w = journal_warm_new (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
        assert_non_null (w);
        uint8_t rows[RL_ID_SIZE + RL_ACCOUNT_SIZE];
        memcpy (rows, acct_key, RL_ID_SIZE);
        memcpy (rows + RL_ID_SIZE, acct, RL_ACCOUNT_SIZE);
        journal_warm_ingest (w, STORE_CF_ACCOUNTS, rows, sizeof rows, RL_ID_SIZE, 1);
        assert_int_equal (journal_warm_settle (w, why, sizeof why), -1);
        print_message ("an ingest into accounts: dropped (%s)\n", why);
        journal_warm_destroy (&w);
    }
    //  A delete of an accounts key no record can have: kept. A range delete
    //  of accounts, even one that covers none (the shard writes none;
    //  following one looks at every account held): dropped.
    assert_int_equal (
        s_one_write (store, STORE_CF_ACCOUNTS, acct_key, 15, NULL, 0, false, why, sizeof why), 0);
    assert_int_equal (
        s_one_write (store, STORE_CF_ACCOUNTS, "\xff", 1, "\xff\xff", 2, true, why, sizeof why),
        -1);
    print_message ("a range delete of accounts: dropped (%s)\n", why);
    //  An imported key of another kind (not 'I'), a delete of an index
    //  entry (the filter answers "maybe" a little more often): kept.
    assert_int_equal (s_one_write (store, STORE_CF_IMPORTED, "P", 1, "", 0, false, why, sizeof why),
                      0);
    assert_int_equal (
        s_one_write (store, STORE_CF_TX_INDEX, id_key, RL_ID_SIZE, NULL, 0, false, why, sizeof why),
        0);
    //  Not covering checkpoint_ts, or not of interest: kept.
    assert_int_equal (s_one_write (store, STORE_CF_META, "x", 1, "y", 1, true, why, sizeof why), 0);
    assert_int_equal (
        s_one_write (store, STORE_CF_HISTORY, key, 8, NULL, 0, false, why, sizeof why), 0);
    assert_int_equal (
        s_one_write (store, STORE_CF_META, ck, ck_size - 1, back, 8, false, why, sizeof why), 0);
    //  A state ahead of the disk (a transfer the disk does not hold) is
    //  refused at open: the disk is read, as a plain open reads it.
    journal_warm_t *warm = journal_warm_new (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    assert_non_null (warm);
    t = newest;
    t.timestamp = newest.timestamp + 10;
    codec_encode_transfer (&t, later);
    journal_warm_write (warm, STORE_CF_TRANSFERS, later_key, 8, later, RL_TRANSFER_SIZE, false);
    assert_int_equal (journal_warm_settle (warm, err, sizeof err), 0);
    accounts_t *acc = accounts_new (store);
    journal_t *journal = journal_new (store);
    journal_set_warm (journal, &warm);
    assert_null (warm);
    assert_int_equal (journal_open (journal, acc, err, sizeof err), 0);
    assert_false (journal_opened_warm (journal));
    size_t recent = 0;
    journal_recent (journal, &recent);
    assert_int_equal (recent, 5); //  those after the forced checkpoint
    journal_destroy (&journal);
    accounts_destroy (&acc);
    //  A plain open recovers as many.
    acc = accounts_new (store);
    journal = journal_new (store);
    assert_int_equal (journal_open (journal, acc, err, sizeof err), 0);
    size_t plain = 0;
    journal_recent (journal, &plain);
    assert_int_equal (plain, recent);
    journal_destroy (&journal);
    accounts_destroy (&acc);
    //  A state still being built when the journal opens (a promotion
    //  meanwhile): its build is ended and the disk is read.
    assert_int_equal (setenv ("RL_FAILPOINTS", "journal.warm.build.slow=error", 1), 0);
    assert_int_equal (failpoint_init (err, sizeof err), 0);
    warm = journal_warm_start (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    assert_non_null (warm);
    assert_true (journal_warm_building (warm) && !journal_warm_ready (warm));
    assert_int_equal (journal_warm_settle (warm, err, sizeof err), 0); //  not done: waits 5 s
    assert_false (journal_warm_ready (warm));
    int64_t before = zclock_mono ();
    acc = accounts_new (store);
    journal = journal_new (store);
    journal_set_warm (journal, &warm);
    assert_int_equal (journal_open (journal, acc, err, sizeof err), 0);
    assert_false (journal_opened_warm (journal));
    assert_true (zclock_mono () - before < 2000); //  the build was cancelled, not waited for
    size_t cold = 0;
    journal_recent (journal, &cold);
    assert_int_equal (cold, plain);
    journal_destroy (&journal);
    accounts_destroy (&acc);
    unsetenv ("RL_FAILPOINTS");
    assert_int_equal (failpoint_init (err, sizeof err), 0);
    //  And a state that agrees is taken.
    warm = journal_warm_new (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    acc = accounts_new (store);
    journal = journal_new (store);
    journal_set_warm (journal, &warm);
    assert_int_equal (journal_open (journal, acc, err, sizeof err), 0);
    assert_true (journal_opened_warm (journal));
    size_t taken = 0;
    journal_recent (journal, &taken);
    assert_int_equal (taken, plain);
    journal_destroy (&journal);
    accounts_destroy (&acc);
    s_shard_close (&fx);
}

//  A broken mirror: one write the disk never took, then a journal opened
//  with it. 0 the open took it; -1 it failed (the reason in why).
typedef enum { S_ALTER, S_DROP, S_EXTRA, S_SWAP, S_NEWEST_GONE } s_break_t;

static int
s_open_broken (store_t *store, s_break_t how, bool verify, char *why, size_t why_size,
               uint64_t *credits_p)
{
    char err[256];
    journal_warm_t *warm = journal_warm_new (store, IDFILTER_KEYS_FLOOR, 0, err, sizeof err);
    assert_non_null (warm);
    uint8_t key[RL_ID_SIZE], value[RL_ACCOUNT_SIZE];
    size_t size = 0;
    //  Account 1 as stored, or the newest (account 5, created last, no transfers).
    codec_encode_id (tk_id (how == S_NEWEST_GONE ? 5 : 1, TAG), key);
    assert_int_equal (
        store_get (store, STORE_CF_ACCOUNTS, key, sizeof key, value, sizeof value, &size), 1);
    rl_account_t a;
    codec_decode_account (value, &a);
    if (how == S_ALTER) {
        a.credits_posted += 7;
        codec_encode_account (&a, value);
        journal_warm_write (warm, STORE_CF_ACCOUNTS, key, sizeof key, value, sizeof value, false);
    } else if (how == S_NEWEST_GONE) {
        //  Deleted on the disk too: followed, not broken.
        store_batch_delete (store, STORE_CF_ACCOUNTS, key, sizeof key);
        assert_int_equal (store_commit (store), 0);
        journal_warm_write (warm, STORE_CF_ACCOUNTS, key, sizeof key, NULL, 0, false);
    } else if (how == S_DROP || how == S_SWAP) {
        journal_warm_write (warm, STORE_CF_ACCOUNTS, key, sizeof key, NULL, 0, false);
    }
    if (how == S_EXTRA || how == S_SWAP) {
        a = tk_account (99, TAG, LEDGER, 0);
        a.timestamp = 1;
        codec_encode_id (a.id, key);
    }
    if (how == S_EXTRA || how == S_SWAP) {
        codec_encode_account (&a, value);
        journal_warm_write (warm, STORE_CF_ACCOUNTS, key, sizeof key, value, sizeof value, false);
    }
    assert_int_equal (journal_warm_settle (warm, err, sizeof err), 0); //  writes it follows
    if (verify) {
        assert_int_equal (setenv ("RL_FAILPOINTS", "journal.warm.verify=error", 1), 0);
        assert_int_equal (failpoint_init (err, sizeof err), 0);
    }
    accounts_t *acc = accounts_new (store);
    journal_t *journal = journal_new (store);
    journal_set_warm (journal, &warm);
    why[0] = '\0';
    int rc = journal_open (journal, acc, why, why_size);
    if (rc == 0) {
        assert_true (journal_opened_warm (journal));
        const rl_account_t *one = accounts_get (acc, tk_id (1, TAG));
        *credits_p = one ? one->credits_posted : 0;
    }
    journal_destroy (&journal);
    accounts_destroy (&acc);
    unsetenv ("RL_FAILPOINTS");
    assert_int_equal (failpoint_init (err, sizeof err), 0);
    return rc;
}

//  journal.warm.verify catches a mirror that differs from the disk in any
//  way (a balance, an account missing, one too many, another id): the
//  promoted recovery fails instead of serving it. Without it the broken
//  mirror is taken (nothing else reads the accounts family at a
//  promotion). The newest account deleted, on the disk as in the mirror,
//  is followed (the newest timestamp looked for again): it passes.
static void
test_accounts_verify (void **state)
{
    (void) state;
    s_shard_t fx;
    ledger_t *ledger = s_shard_open (&fx, "test_journal_warm_verify");
    store_t *store = fx.store;
    rl_account_t accounts[5];
    rl_result_rec_t results[5];
    for (size_t i = 0; i < 5; i++) {
        accounts[i] = tk_account (i + 1, TAG, LEDGER, 0);
        ledger_create_accounts (ledger, &accounts[i], 1, now_read (), results); //  5 newest
        assert_int_equal (results[0].result, RL_OK);
    }
    ledger_before_commit (ledger);
    assert_int_equal (store_commit (store), 0);
    assert_int_equal (ledger_after_commit (ledger), 0);
    rl_transfer_t ts[40];
    for (size_t i = 0; i < 40; i++) {
        ts[i] = tk_transfer (tk_id (500 + i, TAG), tk_id (1 + i % 4, TAG),
                             tk_id (1 + (i + 1) % 4, TAG), 10 + i, LEDGER);
    }
    s_create (ledger, store, ts, 30);
    assert_int_equal (ledger_checkpoint (ledger), 0); //  the accounts written with balances
    s_create (ledger, store, ts + 30, 10);            //  replayed onto them
    uint64_t dp = 0, cp = 0, dr = 0, cr = 0;
    ledger_sums (ledger, LEDGER, &dp, &cp, &dr, &cr);
    assert_true (dp > 0 && dp == cp);
    rl_account_t one;
    rl_id_t id1 = tk_id (1, TAG);
    ledger_lookup_accounts (ledger, &id1, 1, &one);
    ledger_destroy (&ledger);
    char why[256];
    uint64_t credits = 0;
    struct {
        s_break_t how;
        const char *what, *expect;
    } cases[] = {
        {S_ALTER, "account 1's credits_posted + 7", "credits_posted"},
        {S_DROP, "account 1 deleted", "holds 4 accounts, the disk 5"},
        {S_EXTRA, "an account the disk does not hold", "holds 6 accounts, the disk 5"},
        {S_SWAP, "account 1 deleted, another put", "not held"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (s_open_broken (store, cases[i].how, true, why, sizeof why, &credits) != -1) {
            fail_msg ("%s: journal.warm.verify let it pass", cases[i].what);
        }
        print_message ("%s: %s\n", cases[i].what, why);
        assert_non_null (strstr (why, cases[i].expect));
    }
    //  Not verified, the broken mirror is what the recovery serves.
    assert_int_equal (s_open_broken (store, S_ALTER, false, why, sizeof why, &credits), 0);
    assert_int_equal (credits, one.credits_posted + 7);
    //  The newest account deleted on the disk and in the mirror: it passes.
    if (s_open_broken (store, S_NEWEST_GONE, true, why, sizeof why, &credits) != 0) {
        fail_msg ("the newest account deleted, followed: %s", why);
    }
    assert_int_equal (credits, one.credits_posted);
    s_shard_close (&fx);
}

//  accounts_take closes the holes a mirror's deletes leave (a standby that
//  followed many migrations' cleanups): the promoted table holds the live
//  accounts only, each as the mirror held it, the deleted ones gone, and
//  takes a new account in the next slot.
static void
test_take_closes_holes (void **state)
{
    (void) state;
    harness_t *h = harness_new ("test_journal_warm_holes");
    assert_non_null (h);
    char *dir = harness_path (h, "s1");
    store_t *store = s_store (dir);
    accounts_t *mirror = accounts_new (store);
    assert_non_null (mirror);
    const size_t n = 3000;
    for (size_t i = 0; i < n; i++) {
        rl_account_t a = tk_account (i + 1, TAG, LEDGER, 0);
        a.timestamp = 1000 + i;
        a.credits_posted = 7 * i;
        uint64_t old_ts = 1;
        assert_int_equal (accounts_mirror_put (mirror, &a, &old_ts), 0);
        assert_int_equal (old_ts, 0);
    }
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = i % 3 == 0 && i < 2700;
        if (keep) {
            live++;
        } else {
            assert_true (accounts_mirror_delete (mirror, tk_id (i + 1, TAG)));
        }
    }
    assert_false (accounts_mirror_delete (mirror, tk_id (2, TAG))); //  already a hole
    assert_int_equal (accounts_count (mirror), n);
    assert_int_equal (accounts_live_count (mirror), live);
    accounts_t *table = accounts_new (store);
    assert_non_null (table);
    accounts_take (table, &mirror);
    assert_null (mirror);
    assert_int_equal (accounts_count (table), live);
    assert_int_equal (accounts_live_count (table), live);
    for (size_t i = 0; i < n; i++) {
        const rl_account_t *a = accounts_get (table, tk_id (i + 1, TAG));
        if (i % 3 == 0 && i < 2700) {
            assert_non_null (a);
            assert_int_equal (a->timestamp, 1000 + i);
            assert_int_equal (a->credits_posted, 7 * i);
        } else {
            assert_null (a);
        }
    }
    for (size_t slot = 0; slot < live; slot++) {
        assert_false (rl_id_is_zero (accounts_at (table, slot)->id)); //  no hole left
    }
    rl_account_t fresh = tk_account (n + 1, TAG, LEDGER, 0);
    fresh.timestamp = 9000;
    assert_int_equal (accounts_insert (table, &fresh), 0);
    assert_int_equal (accounts_count (table), live + 1);
    assert_int_equal (accounts_get (table, fresh.id)->timestamp, 9000);
    accounts_destroy (&table);
    store_close (&store);
    free (dir);
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_follows_stream),
        cmocka_unit_test (test_hostile_writes),
        cmocka_unit_test (test_accounts_verify),
        cmocka_unit_test (test_take_closes_holes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
