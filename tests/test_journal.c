/*  test_journal.c: the journal's credit-leg index (shard/journal.c).

    A participant asks journal_leg_applied whether the credit leg of
    (transfer id, debit account) was applied here, to acknowledge a resent
    COMMIT and to refuse a duplicate PREPARE of an applied transfer. The
    index used to be an idmap keyed by a 128-bit mix of the two ids; two
    chosen pairs collided, the second hid the first, and a duplicate
    PREPARE plus a resent COMMIT credited the hidden leg twice. These tests
    build such pairs (and many more random ones) and check that every leg
    is found, by its full 32 bytes, before and after a checkpoint.

    The checkpoint runs in the background (shard/checkpoint.c) while new
    transfers go into a fresh generation: test_find_across_generations
    holds the background at each state with delay failpoints and checks
    that every id, old or new, is found in every state, never missed, also
    with the ingested index's answers of one batched probe made before the
    ingest (journal_probe: they hold until the thaw);
    test_failed_checkpoint makes a step fail and checks that the failure
    comes back to the loop and that nothing is lost from memory.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accounts.h"
#include "checkpoint.h"
#include "failpoint.h"
#include "journal.h"
#include "rl_rand.h"
#include "store.h"

#define LEDGER 31
#define LEGS   5000 //  enough to make the index grow several times
#define FROZEN 3000 //  transfers frozen for the background checkpoint
#define LIVE   1000 //  transfers appended while it runs

//  The old key: a collision under it is what hid legs.
static rl_id_t
s_old_mix (rl_id_t id, rl_id_t debit)
{
    rl_id_t key = {id.lo ^ (debit.lo * 0x9E3779B97F4A7C15ull ^ debit.hi),
                   id.hi ^ (debit.hi * 0xC2B2AE3D27D4EB4Full ^ debit.lo)};
    return key;
}

//  A second pair (id, debit) whose old key equals that of (id_a, debit_a).
static rl_id_t
s_colliding_id (rl_id_t id_a, rl_id_t debit_a, rl_id_t debit_b)
{
    rl_id_t key = s_old_mix (id_a, debit_a);
    rl_id_t fb = s_old_mix ((rl_id_t){0, 0}, debit_b);
    return (rl_id_t){key.lo ^ fb.lo, key.hi ^ fb.hi};
}

typedef struct {
    store_env_t *env;
    store_t *store;
    accounts_t *accounts;
    journal_t *journal;
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    char err[256];
    ctx->env = store_env_new_mem ();
    ctx->store = store_open_env ("/journal", RL_DURABILITY_SYNC, ctx->env, err, sizeof (err));
    assert_non_null (ctx->store);
    ctx->accounts = accounts_new (ctx->store);
    ctx->journal = journal_new (ctx->store);
    assert_non_null (ctx->accounts);
    assert_non_null (ctx->journal);
    assert_int_equal (journal_open (ctx->journal, ctx->accounts, err, sizeof (err)), 0);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    journal_destroy (&ctx->journal);
    accounts_destroy (&ctx->accounts);
    store_close (&ctx->store);
    store_env_destroy (&ctx->env);
    free (ctx);
    return 0;
}

//  Appends the credit leg (id, debit -> credit 1) and commits it.
static void
s_append_leg (s_ctx_t *ctx, rl_id_t id, rl_id_t debit)
{
    rl_transfer_t t = {.id = id,
                       .debit_account_id = debit,
                       .credit_account_id = {1, 0},
                       .amount = 1,
                       .ledger = LEDGER,
                       .code = 1};
    t.timestamp = journal_next_ts (ctx->journal, 1000);
    t.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_CREDIT);
    assert_int_equal (journal_append (ctx->journal, &t), 0);
    journal_before_commit (ctx->journal);
    assert_int_equal (store_commit (ctx->store), 0);
}

static void
test_colliding_pairs (void **state)
{
    s_ctx_t *ctx = *state;
    rl_id_t id_a = {0x1111, 0x2222}, debit_a = {0x3333, 0x4444};
    rl_id_t debit_b = {0x5555, 0x6666};
    rl_id_t id_b = s_colliding_id (id_a, debit_a, debit_b);
    //  They really collided under the old key, and are different pairs.
    rl_id_t ka = s_old_mix (id_a, debit_a), kb = s_old_mix (id_b, debit_b);
    assert_true (rl_id_eq (ka, kb));
    assert_false (rl_id_eq (id_a, id_b));
    s_append_leg (ctx, id_a, debit_a);
    s_append_leg (ctx, id_b, debit_b);
    assert_int_equal (journal_leg_applied (ctx->journal, id_a, debit_a), 1);
    assert_int_equal (journal_leg_applied (ctx->journal, id_b, debit_b), 1);
    //  Neither pair answers for another: the same id with the other debit.
    assert_int_equal (journal_leg_applied (ctx->journal, id_a, debit_b), 0);
    assert_int_equal (journal_leg_applied (ctx->journal, id_b, debit_a), 0);
}

static void
test_many_legs_and_checkpoint (void **state)
{
    s_ctx_t *ctx = *state;
    static rl_id_t ids[LEGS], debits[LEGS];
    uint64_t rng = 0x1e65;
    for (size_t i = 0; i < LEGS; i++) {
        debits[i] = (rl_id_t){1 + rl_rand_next (&rng) % 64, 7};
        //  Every other leg collides with the previous one under the old key.
        ids[i] = i % 2 == 1 ? s_colliding_id (ids[i - 1], debits[i - 1], debits[i])
                            : (rl_id_t){rl_rand_next (&rng) | 1, rl_rand_next (&rng)};
        if (i % 2 == 1 && rl_id_eq (debits[i], debits[i - 1])) {
            debits[i].hi++; //  a different pair, with its own colliding id
            ids[i] = s_colliding_id (ids[i - 1], debits[i - 1], debits[i]);
        }
        s_append_leg (ctx, ids[i], debits[i]);
    }
    for (size_t i = 0; i < LEGS; i++) {
        assert_int_equal (journal_leg_applied (ctx->journal, ids[i], debits[i]), 1);
    }
    //  Frozen for a checkpoint, the legs are found in the frozen generation;
    //  while it runs in the background and after it, in the ingested index.
    assert_int_equal (store_commit (ctx->store), 0);
    uint64_t checkpoint_ts = journal_freeze (ctx->journal);
    size_t count = 0;
    const rl_transfer_t *frozen = journal_frozen (ctx->journal, &count);
    assert_int_equal (count, LEGS);
    for (size_t i = 0; i < LEGS; i++) {
        assert_int_equal (journal_leg_applied (ctx->journal, ids[i], debits[i]), 1);
    }
    checkpoint_t *checkpoint = checkpoint_new (ctx->store);
    assert_non_null (checkpoint);
    checkpoint_start (checkpoint, frozen, count, 0, checkpoint_ts);
    for (size_t i = 0; i < LEGS; i++) {
        assert_int_equal (journal_leg_applied (ctx->journal, ids[i], debits[i]), 1);
    }
    assert_int_equal (checkpoint_wait (checkpoint), 0);
    journal_thaw (ctx->journal);
    checkpoint_destroy (&checkpoint);
    assert_int_equal (journal_checkpoint_ts (ctx->journal), checkpoint_ts);
    for (size_t i = 0; i < LEGS; i++) {
        assert_int_equal (journal_leg_applied (ctx->journal, ids[i], debits[i]), 1);
    }
    rl_id_t absent = {0xdead, 0xbeef};
    assert_int_equal (journal_leg_applied (ctx->journal, absent, debits[0]), 0);
}

//  Appends an ok same-shard transfer with id (lo, 9) and commits it.
static void
s_append_transfer (s_ctx_t *ctx, uint64_t lo)
{
    rl_transfer_t t = {.id = {lo, 9},
                       .debit_account_id = {1, 0},
                       .credit_account_id = {2, 0},
                       .amount = 1,
                       .ledger = LEDGER,
                       .code = 1};
    t.timestamp = journal_next_ts (ctx->journal, 1000);
    t.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
    assert_int_equal (journal_append (ctx->journal, &t), 0);
    journal_before_commit (ctx->journal);
    assert_int_equal (store_commit (ctx->store), 0);
}

//  Every id in [1, count] is found, with its own record.
static void
s_all_found (s_ctx_t *ctx, uint64_t count)
{
    for (uint64_t lo = 1; lo <= count; lo++) {
        rl_transfer_t t;
        assert_int_equal (journal_find (ctx->journal, (rl_id_t){lo, 9}, &t), 1);
        assert_int_equal (t.id.lo, lo);
    }
    rl_transfer_t t;
    assert_int_equal (journal_find (ctx->journal, (rl_id_t){count + 1, 9}, &t), 0);
}

//  Probes ids [1, count + 1] (journal_probe, one batched read) into ts.
static void
s_probe (s_ctx_t *ctx, uint64_t count, uint64_t *ts)
{
    rl_transfer_t *ts_of = calloc (count + 1, sizeof (*ts_of));
    assert_non_null (ts_of);
    for (uint64_t lo = 1; lo <= count + 1; lo++) {
        ts_of[lo - 1].id = (rl_id_t){lo, 9};
    }
    assert_int_equal (journal_probe (ctx->journal, ts_of, count + 1, ts), 0);
    free (ts_of);
}

//  As s_all_found, with the ingested index's answers of an earlier probe:
//  they hold until the next thaw, whatever was ingested since.
static void
s_all_found_probed (s_ctx_t *ctx, uint64_t count, const uint64_t *ts)
{
    for (uint64_t lo = 1; lo <= count; lo++) {
        rl_transfer_t t;
        assert_int_equal (journal_find_probed (ctx->journal, (rl_id_t){lo, 9}, ts[lo - 1], &t), 1);
        assert_int_equal (t.id.lo, lo);
    }
    rl_transfer_t t;
    assert_int_equal (journal_find_probed (ctx->journal, (rl_id_t){count + 1, 9}, ts[count], &t),
                      0);
    assert_int_equal (
        journal_find_probed (ctx->journal, (rl_id_t){count + 1, 9}, JOURNAL_PROBE_UNKNOWN, &t), 0);
}

static void
s_arm (const char *spec)
{
    char err[256];
    if (spec) {
        assert_int_equal (setenv ("RL_FAILPOINTS", spec, 1), 0);
    } else {
        unsetenv ("RL_FAILPOINTS");
    }
    assert_int_equal (failpoint_init (err, sizeof (err)), 0);
}

static void
test_find_across_generations (void **state)
{
    s_ctx_t *ctx = *state;
    for (uint64_t lo = 1; lo <= FROZEN; lo++) {
        s_append_transfer (ctx, lo);
    }
    //  The background stalls at its start and before its batch, so that
    //  the loop appends and looks up in WRITING and in INGESTED.
    s_arm ("checkpoint.started=delay:150,checkpoint.ingested=delay:150");
    uint64_t checkpoint_ts = journal_freeze (ctx->journal);
    size_t count = 0;
    const rl_transfer_t *frozen = journal_frozen (ctx->journal, &count);
    assert_int_equal (count, FROZEN);
    checkpoint_t *checkpoint = checkpoint_new (ctx->store);
    assert_non_null (checkpoint);
    //  A probe made before the ingest: nothing is in tx_index yet.
    uint64_t *early = calloc (FROZEN + LIVE + 1, sizeof (*early));
    uint64_t *frozen_ts = calloc (FROZEN, sizeof (*frozen_ts));
    assert_non_null (early);
    assert_non_null (frozen_ts);
    for (size_t i = 0; i < FROZEN; i++) {
        frozen_ts[i] = frozen[i].timestamp;
    }
    s_probe (ctx, FROZEN + LIVE, early);
    for (uint64_t i = 0; i <= FROZEN + LIVE; i++) {
        //  Absent: read and not found (an id the filter holds), or never
        //  seen by the id filter (the ids not appended yet).
        assert_true (early[i] == 0 || early[i] == JOURNAL_PROBE_NONE);
        assert_true (i >= FROZEN || early[i] == 0);
    }
    checkpoint_start (checkpoint, frozen, count, 0, checkpoint_ts);
    bool seen[CHECKPOINT_FAILED + 1] = {false};
    uint64_t appended = FROZEN;
    for (checkpoint_state_t st = checkpoint_state (checkpoint); st != CHECKPOINT_COMMITTED;
         st = checkpoint_state (checkpoint)) {
        assert_int_not_equal (st, CHECKPOINT_FAILED);
        seen[st] = true;
        if (appended < FROZEN + LIVE) {
            s_append_transfer (ctx, ++appended);
        }
        s_all_found (ctx, appended);
        s_all_found_probed (ctx, appended, early);
    }
    assert_true (seen[CHECKPOINT_WRITING] && seen[CHECKPOINT_INGESTED]);
    s_all_found (ctx, appended); //  COMMITTED, not yet thawed
    s_all_found_probed (ctx, appended, early);
    assert_int_equal (journal_checkpoint_ts (ctx->journal), 0);
    assert_int_equal (checkpoint_wait (checkpoint), 0);
    journal_thaw (ctx->journal);
    assert_int_equal (journal_checkpoint_ts (ctx->journal), checkpoint_ts);
    s_all_found (ctx, appended); //  the frozen ones from the store now
    //  A probe after the thaw names the ingested ids' timestamps, and no other.
    uint64_t *late = calloc (appended + 1, sizeof (*late));
    assert_non_null (late);
    s_probe (ctx, appended, late);
    for (uint64_t lo = 1; lo <= appended + 1; lo++) {
        //  (the id after the last was never appended: the filter answers it)
        assert_true (lo <= FROZEN     ? late[lo - 1] == frozen_ts[lo - 1]
                     : lo <= appended ? late[lo - 1] == 0
                                      : late[lo - 1] == 0 || late[lo - 1] == JOURNAL_PROBE_NONE);
    }
    s_all_found_probed (ctx, appended, late);
    free (frozen_ts);
    free (early);
    free (late);
    journal_recent (ctx->journal, &count);
    assert_int_equal (count, appended - FROZEN);
    checkpoint_destroy (&checkpoint);
    s_arm (NULL);
}

static void
test_failed_checkpoint (void **state)
{
    s_ctx_t *ctx = *state;
    for (uint64_t lo = 1; lo <= 100; lo++) {
        s_append_transfer (ctx, lo);
    }
    s_arm ("checkpoint.ingested=error");
    uint64_t checkpoint_ts = journal_freeze (ctx->journal);
    size_t count = 0;
    const rl_transfer_t *frozen = journal_frozen (ctx->journal, &count);
    checkpoint_t *checkpoint = checkpoint_new (ctx->store);
    assert_non_null (checkpoint);
    checkpoint_start (checkpoint, frozen, count, 0, checkpoint_ts);
    assert_true (checkpoint_busy (checkpoint));
    assert_int_equal (checkpoint_wait (checkpoint), -1);
    assert_false (checkpoint_busy (checkpoint));
    assert_int_equal (checkpoint_state (checkpoint), CHECKPOINT_IDLE);
    //  Not thawed: the frozen generation still answers.
    s_all_found (ctx, 100);
    assert_int_equal (journal_checkpoint_ts (ctx->journal), 0);
    checkpoint_destroy (&checkpoint);
    s_arm (NULL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_colliding_pairs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_many_legs_and_checkpoint, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_find_across_generations, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_checkpoint, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
