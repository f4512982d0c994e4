/*  test_replication_warm.c: a promoted standby serves from the ledger state
    it kept in memory while it streamed, and that state is exactly the one a
    recovery of the same disk builds (docs/replication.md, "The standby's
    ledger").

    A cluster of shard s1, a semi-synchronous primary checkpointing every
    40 transfers (so the stream carries checkpoints: index ingests and
    checkpoint batches), and s2, every process with --durability
    manual-wal. The test sends each transfer to the shard of its debit
    account: s1 coordinates cross-shard transfers to s2 and takes part in
    those from s2 (credit legs), and both hold user-level pending
    transfers, posts and voids.

    1. The standby, started with journal.warm.verify=error (its promoted
       recovery, having taken the id filter and the transfers after the
       checkpoint from memory, also reads them from the disk and fails the
       open if they differ) and repl.standby.warm.small=error (its filter
       holds 1,024 ids at first, so that it grows, in the background,
       while the load's events are applied), is seeded; a load runs.
    2. The standby is SIGKILLed and restarted in the middle of the load:
       it rebuilds its state from its disk (in the background, while it
       catches up); the load goes on. Its log says the state was built
       twice and its filter grew: ids of failed transfers (an account
       of s1 that does not exist) are stored among the rounds.
    3. The primary is SIGKILLed with a batch in flight on each shard, the
       standby promoted and a ring of the next epoch naming it loaded into
       it and s2. Its log says the state was taken from memory, and the
       failpoint's record says the check against the disk ran (the open
       would have failed otherwise).
    4. Once the two-phase records end, every account of s1 and every
       transfer whose debit account is on s1 is read (snapshot A); the
       promoted shard is SIGKILLed and restarted, so that it recovers from
       its disk; read again (snapshot B): A and B are the same records,
       byte for byte.
    5. Exactly-once over every id: every acknowledged transfer is on its
       debit shard with the timestamp its first answer gave, every retry
       with the same id gets `exists` with that timestamp (or its original
       failure), unknown outcomes are settled; pending amounts are those
       of the pending transfers still pending; then every pending transfer
       is posted or voided and the strong conservation check runs, with
       the audit and no two-phase alarm on either shard.
    test_promote_while_building: the same cluster and load, the standby
    started with journal.warm.build.slow=error (its first build, after
    the seed, waits up to 5 s unless it is ended); the primary is
    SIGKILLed with a batch in flight and the standby promoted at once:
    the build is ended, the promoted recovery reads the disk (its log
    says so, and nothing was taken from memory), and step 5 runs.
    test_promote_between_pieces: the same cluster and load (every
    checkpoint writes its accounts one a piece), the primary's checkpoint
    held 8 s after its second piece (checkpoint.piece=delay) while a round
    is answered, so that the standby holds the pieces; then the primary is
    SIGKILLed with a batch in flight and the standby promoted from memory:
    its recovery finds the piece key (its log says so), and steps 4 and 5
    run.
    RL_SEED=<n> replays a run. The cluster, the load's records and the
    checks of step 5 are tests/replxkit.h's (with its timestamps on).
*/
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "replkit.h"
#include "replxkit.h"
#include "testkit.h"

#define LEDGER       744
#define LOAD_WAIT_MS 2000 //  a batch's answer in the load (then its outcome is unknown)
#define CHECKPOINT   40
#define ROUNDS       30 //  before and after the standby's restart

//  One round: a batch to each shard at once (cross-shard and own
//  transfers, a post or a void, every other round a new pending
//  transfer). kill_primary: the primary is SIGKILLed with both in flight.
static void
s_round (rx_t *ctx, unsigned round, bool kill_primary)
{
    rx_round (ctx, round, -1, kill_primary ? &ctx->primary : NULL,
              kill_primary ? 300 : LOAD_WAIT_MS);
}

//  Spawns shard (armed: with the test's failpoints) and waits until it serves.
static void
s_spawn (rx_t *ctx, tk_shard_t *shard, bool armed)
{
    if (rx_spawn (ctx, shard, armed) != -1) {
        harness_keep (ctx->h);
        fail_msg ("%s (%s) died at its start", shard->name, shard->data_dir);
    }
}

//  What s1 holds, as its clients read it: its accounts, and every record
//  whose debit account is on s1 (encoded, in the order of the log).
typedef struct {
    uint8_t accounts[4][RL_ACCOUNT_SIZE];
    uint8_t *transfers; //  RL_TRANSFER_SIZE per record of the log
    size_t count;
} s_snapshot_t;

static void
s_snapshot (rx_t *ctx, s_snapshot_t *snap)
{
    for (uint64_t n = 1; n <= 4; n++) {
        rl_id_t id = tk_id (n, ctx->tag);
        rl_account_t a;
        assert_int_equal (rl_client_lookup_accounts (ctx->c1, &id, 1, &a, RX_CALL_TIMEOUT_MS), 0);
        assert_true (a.timestamp != 0);
        codec_encode_account (&a, snap->accounts[n - 1]);
    }
    snap->count = ctx->count;
    snap->transfers = calloc (ctx->count, RL_TRANSFER_SIZE);
    assert_non_null (snap->transfers);
    for (size_t i = 0; i < ctx->count; i++) {
        const rx_rec_t *r = &ctx->recs[i];
        if (rx_owner (ctx, r->t.debit_account_id) != 0) {
            continue;
        }
        rl_transfer_t found;
        assert_int_equal (
            rl_client_lookup_transfers (ctx->c1, &r->t.id, 1, &found, RX_CALL_TIMEOUT_MS), 0);
        codec_encode_transfer (&found, snap->transfers + i * RL_TRANSFER_SIZE);
    }
}

//  Occurrences of `what` in s1's log (the primary, the standby and the
//  promoted shard write to it).
static size_t
s_log_count (rx_t *ctx, const char *what)
{
    return tk_log_count (ctx->h, "s1", what);
}

//  Transfers from an account of s1 that does not exist: each fails and
//  stores its id (so the standby's filter fills up and grows), moving no
//  money; the model does not follow them.
static void
s_burn (rx_t *ctx, size_t count)
{
    uint64_t ghost = 100;
    while (rx_owner (ctx, tk_id (ghost, ctx->tag)) != 0) {
        ghost++;
    }
    enum { N = 500 };
    static uint64_t next = 1000000; //  ids of their own, never sent twice
    static rl_transfer_t ts[N];
    static rl_result_rec_t rs[N];
    for (size_t sent = 0; sent < count; sent += N) {
        for (size_t i = 0; i < N; i++) {
            ts[i] = tk_transfer (tk_id (next++, ctx->tag ^ 0xb0b), tk_id (ghost, ctx->tag),
                                 tk_id (1, ctx->tag), 1, ctx->ledger);
        }
        assert_int_equal (
            rl_client_create_transfers_retry (ctx->c1, ts, N, rs, RX_CALL_TIMEOUT_MS, 10), 0);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal (rs[i].result, RL_DEBIT_ACCOUNT_NOT_FOUND);
        }
    }
}

//  The cluster, a load, and s1's standby seeded while the primary serves
//  (started with the failpoints `failpoints`); the primary restarted as
//  its semi-synchronous primary, with the failpoints `primary_fp` (NULL:
//  none; they record their hits in primary-fp.log, the standby's stay in
//  warm-fp.log).
static void
s_begin (rx_t *ctx, const char *failpoints, const char *primary_fp)
{
    harness_t *h = ctx->h;
    ctx->timestamps = true;
    rx_arm (ctx, failpoints, "warm-fp.log");
    rx_start (ctx, "test_replication_warm", LEDGER, 0x5741524d000ull, CHECKPOINT);
    //  Transfers before the standby: its seed carries them (and checkpoints).
    for (unsigned round = 0; round < ROUNDS / 2; round++) {
        s_round (ctx, round, false);
    }
    //  1. The standby, seeded while the primary serves.
    rx_standby_init (ctx, "s1-standby");
    s_spawn (ctx, &ctx->standby, true);
    assert_int_equal (tk_shard_stop (h, &ctx->primary, SIGTERM), 0);
    if (primary_fp) {
        char standby_file[sizeof ctx->fp_file];
        snprintf (standby_file, sizeof standby_file, "%s", ctx->fp_file);
        rx_arm (ctx, primary_fp, "primary-fp.log");
        s_spawn (ctx, &ctx->primary, true);
        snprintf (ctx->fp_file, sizeof ctx->fp_file, "%s", standby_file);
    } else {
        s_spawn (ctx, &ctx->primary, false);
    }
    rl_client_destroy (&ctx->c1);
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
    //  Seeded and streaming: the standby applied an event after its seed
    //  (its position, status' commits).
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    for (unsigned round = 0;
         rk_status (ctx->standby.endpoint).commits == 0 && zclock_mono () < deadline; round++) {
        s_round (ctx, round, false);
    }
    assert_true (rk_status (ctx->standby.endpoint).commits > 0);
}

//  The primary killed with a batch in flight, the standby promoted and a
//  ring of the next epoch naming it loaded into it and s2.
static void
s_promote (rx_t *ctx, unsigned round)
{
    rl_client_set_send_timeout (ctx->c1, 200);
    s_round (ctx, round, true);
    rk_promote (ctx->standby.endpoint);
    rx_fail_over (ctx);
}

//  Step 5: exactly-once (with the timestamps), pending amounts,
//  conservation; the shards stopped.
static void
s_finish (rx_t *ctx)
{
    rl_client_set_send_timeout (ctx->c1, RX_CALL_TIMEOUT_MS);
    rx_settle (ctx);
    rx_quiet (ctx);
    rx_check_pending (ctx, 0);
    rx_finish (ctx, 0);
    tk_shard_t *all[] = {&ctx->primary, &ctx->s2};
    for (size_t i = 0; i < 2; i++) {
        if (all[i]->pid > 0) {
            tk_shard_stop (ctx->h, all[i], SIGTERM);
        }
    }
}

//  A promotion from memory: the primary killed with a batch in flight, the
//  standby promoted; its log says its state was taken from memory, and the
//  check of that state against its disk ran.
static void
s_promote_warm (rx_t *ctx, unsigned round)
{
    size_t taken = s_log_count (ctx, "taken from the standby's memory");
    s_promote (ctx, round);
    assert_int_equal (s_log_count (ctx, "taken from the standby's memory"), taken + 1);
    char *hits = harness_read_file (ctx->fp_file, NULL);
    if (!hits || !strstr (hits, "journal.warm.verify")) {
        harness_keep (ctx->h);
        fail_msg ("the check of the warm state against the disk did not run");
    }
    free (hits);
}

//  Step 4: what the promoted shard serves (snapshot A) is what a recovery
//  of its disk serves (SIGKILLed, restarted: snapshot B), byte for byte.
static void
s_recovered_same (rx_t *ctx, unsigned round)
{
    harness_t *h = ctx->h;
    rx_quiet (ctx);
    s_snapshot_t a, b;
    s_snapshot (ctx, &a);
    tk_shard_stop (h, &ctx->primary, SIGKILL);
    s_spawn (ctx, &ctx->primary, false);
    rx_wait_state (ctx->primary.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    rl_client_destroy (&ctx->c1);
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
    rx_quiet (ctx);
    s_snapshot (ctx, &b);
    assert_int_equal (a.count, b.count);
    for (size_t n = 0; n < 4; n++) {
        if (memcmp (a.accounts[n], b.accounts[n], RL_ACCOUNT_SIZE) != 0) {
            harness_keep (h);
            fail_msg ("account %zu: promoted from memory and recovered from disk differ", n + 1);
        }
    }
    size_t compared = 0;
    for (size_t i = 0; i < a.count; i++) {
        if (memcmp (a.transfers + i * RL_TRANSFER_SIZE, b.transfers + i * RL_TRANSFER_SIZE,
                    RL_TRANSFER_SIZE)
            != 0) {
            harness_keep (h);
            fail_msg ("record %zu: promoted from memory and recovered from disk differ", i);
        }
        compared += rx_owner (ctx, ctx->recs[i].t.debit_account_id) == 0;
    }
    free (a.transfers);
    free (b.transfers);
    printf ("  %u rounds; the promoted state and the recovered one agree on 4 accounts and %zu "
            "transfers\n",
            round, compared);
}

static void
test_warm_promote (void **state)
{
    rx_t *ctx = *state;
    harness_t *h = ctx->h;
    s_begin (ctx, "journal.warm.verify=error,repl.standby.warm.small=error", NULL);
    unsigned round = 0;
    for (; round < ROUNDS; round++) {
        s_round (ctx, round, false);
    }
    //  2. The standby restarted: its state rebuilt from its disk.
    size_t built = s_log_count (ctx, "standby: the copy's id filter");
    assert_true (built >= 1);
    tk_shard_stop (h, &ctx->standby, SIGKILL);
    s_spawn (ctx, &ctx->standby, true);
    assert_int_equal (s_log_count (ctx, "standby: the copy's id filter"), built + 1);
    rx_wait_state (ctx->primary.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    for (; round < 2 * ROUNDS; round++) {
        s_round (ctx, round, false);
        if (round % 10 == 0) {
            s_burn (ctx, 1000);
        }
    }
    assert_int_equal (s_log_count (ctx, "the copy's ledger state in memory dropped"), 0);
    //  Its filter of 1,024 ids grew in the background while it applied the
    //  load's events, and the build after its restart was taken.
    if (s_log_count (ctx, "standby's id filter grew to") == 0
        || s_log_count (ctx, "after the checkpoint in memory, built in") < 2) {
        harness_keep (h);
        fail_msg ("the standby's state was not built, or its filter did not grow, in the "
                  "background");
    }
    //  3. The primary killed with a batch in flight, the standby promoted.
    s_promote_warm (ctx, round++);
    //  4. The state it serves is the one a recovery of its disk builds.
    s_recovered_same (ctx, round);
    //  5. Exactly-once, pending amounts, conservation.
    s_finish (ctx);
}

//  The primary stopped between two pieces of a checkpoint's accounts (its
//  second piece holds it 8 s), the pieces shipped (a round answered after
//  them: the standby acknowledged every event before its batch), then
//  killed with a batch in flight and the standby promoted from memory. The
//  promoted recovery finds the piece key (its log says so) and its replay
//  of the transfers after the older checkpoint skips what those pieces
//  hold: a replay that posted them again fails step 4's model, step 5's
//  conservation.
static void
test_promote_between_pieces (void **state)
{
    rx_t *ctx = *state;
    s_begin (ctx, "journal.warm.verify=error", "checkpoint.piece=delay:8000@2");
    char path[700];
    snprintf (path, sizeof path, "%s/primary-fp.log", harness_dir (ctx->h));
    unsigned round = 0;
    char *hits = NULL;
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    while (!(hits = harness_read_file (path, NULL)) && zclock_mono () < deadline) {
        s_round (ctx, round++, false);
    }
    if (!hits || !strstr (hits, "checkpoint.piece")) {
        harness_keep (ctx->h);
        fail_msg ("the primary's checkpoint did not stop between two pieces");
    }
    free (hits);
    s_round (ctx, round++, false);
    size_t found = s_log_count (ctx, "wrote part of its accounts");
    s_promote_warm (ctx, round++);
    if (s_log_count (ctx, "wrote part of its accounts") != found + 1) {
        harness_keep (ctx->h);
        fail_msg ("the promoted standby found no checkpoint's pieces");
    }
    s_recovered_same (ctx, round);
    s_finish (ctx);
}

//  A promotion while the standby's first build runs (journal.warm.build.slow
//  holds it up to 5 s unless it is ended): the build is ended at once, the
//  promoted recovery reads the disk, and nothing is lost or doubled.
static void
test_promote_while_building (void **state)
{
    rx_t *ctx = *state;
    s_begin (ctx, "journal.warm.build.slow=error", NULL);
    size_t unbuilt = s_log_count (ctx, "was not built yet: recovery reads the disk");
    int64_t started = zclock_mono ();
    s_promote (ctx, 0);
    int64_t took = zclock_mono () - started;
    if (s_log_count (ctx, "was not built yet: recovery reads the disk") != unbuilt + 1
        || s_log_count (ctx, "taken from the standby's memory") != 0) {
        harness_keep (ctx->h);
        fail_msg ("the promotion did not end the standby's build and read the disk");
    }
    printf ("  the build ended, the standby promoted and serving in %" PRId64 " ms\n", took);
    rx_quiet (ctx);
    s_finish (ctx);
}

static int
s_setup (void **state)
{
    *state = rx_new ("replication_warm");
    return *state ? 0 : -1;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_warm_promote, s_setup, rx_teardown),
        cmocka_unit_test_setup_teardown (test_promote_while_building, s_setup, rx_teardown),
        cmocka_unit_test_setup_teardown (test_promote_between_pieces, s_setup, rx_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
