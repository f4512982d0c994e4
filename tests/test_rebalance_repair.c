/*  test_rebalance_repair.c: `rebalance` after the failures that used to
    leave a change stuck or a retry re-executed (docs/rebalance.md), each a
    real cluster: shards s1..s3 serve ring R0 (epoch 1, security on), s4
    runs with R0 too (it owns nothing), one router learns newer rings from
    the shards. The tool runs as a process, killed by its failpoints.

    test_reused_id_abort: a client pays from d1 with id X and another
    reuses X from d3 on another shard (allowed: protocol.md, idempotency).
    A grow moves d1's arc to s4 (one step), then copies d3's arc to s4 and
    is aborted there. The abort deletes what it imported for d3's arc and
    nothing of d1's: a retry of X from d1 on s4 answers exists with its
    original timestamp (it used to execute again), a retry from d3 exists
    on its owner, a new debit account with X on s4 answers
    exists_with_different_debit_account_id; conservation holds.

    test_fix_shipped: the tool dies right after the final chunk is in the
    target (the source shipped: frozen until the handover; the state file
    says frozen). check finds it, and fix rolls the step forward (it used
    to leave the arc frozen and rewrite the step as copying): check is
    clean, every account answers, the change completes, conservation.

    test_handover_fails: the target runs out of memory halfway through its
    first handover and fails; apply stops (exit 3), and run again once the
    target is restarted, it completes the change.

    test_stale_handover: the source of the plan's first step holds a
    migration handed over and never cleaned up (written into its store:
    what a tool from before the cleanup left); it refuses the begin, apply
    stops while no single other shard serves the arc whole (exit 3); once
    one does, apply cleans it up and completes.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "migrate.h"
#include "ring.h"
#include "routerkit.h"
#include "store.h"
#include "test_rebalance_kit.h"
#include "testkit.h"

#define S_TAG         0x52455052ull //  "REPR"
#define S_LEDGER      62
#define S_ACCOUNTS    400
#define S_TOOL_MAX_MS 40000
#define S_STEPS_MAX   64

typedef struct {
    rbk_cluster_t c; //  s1..s4, R0 and R1, the router
    tk_model_t model;
} s_ctx_t;

typedef struct {
    char source[32], target[32];
    uint64_t start, end;
} s_step_t;

static char *
s_path (s_ctx_t *ctx, const char *name, char *out, size_t size)
{
    return rbk_path (ctx->c.h, name, out, size);
}

//  `rebalance` with args (NULL-terminated) and failpoints (NULL: none);
//  its exit code, -signal when killed.
static int
s_tool (s_ctx_t *ctx, const char *failpoints, const char *const *args)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/tools/rebalance", harness_bin_dir ());
    char *argv[32];
    size_t n = 0;
    argv[n++] = path;
    for (size_t i = 0; args[i]; i++) {
        assert_true (n < 30);
        argv[n++] = (char *) args[i];
    }
    argv[n] = NULL;
    char env_fp[512];
    snprintf (env_fp, sizeof env_fp, "RL_FAILPOINTS=%s", failpoints ? failpoints : "");
    char *env[] = {env_fp, NULL};
    pid_t pid = harness_spawn (ctx->c.h, "rebalance", argv, env);
    assert_true (pid > 0);
    int ws = 0;
    if (harness_wait_exit (ctx->c.h, pid, S_TOOL_MAX_MS, &ws) != 0) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("rebalance did not end within %d ms", S_TOOL_MAX_MS);
    }
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

static int
s_apply (s_ctx_t *ctx, const char *dir, const char *failpoints)
{
    const char *args[] = {"apply", ctx->c.r0, ctx->c.r1,   "--state",
                          dir,     "--cert",  ctx->c.cert, NULL};
    return s_tool (ctx, failpoints, args);
}

static int
s_cmd (s_ctx_t *ctx, const char *cmd, const char *dir)
{
    const char *args[] = {cmd, "--state", dir, "--cert", ctx->c.cert, NULL};
    return s_tool (ctx, NULL, args);
}

//  The steps of the plan in DIR/state.
static size_t
s_steps (const char *dir, s_step_t *steps)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    size_t n = 0;
    for (char *line = strstr (text, "\nstep "); line && n < S_STEPS_MAX;
         line = strstr (line + 1, "\nstep ")) {
        size_t k = 0;
        char state[32], source[32], target[32];
        uint64_t id = 0, start = 0, end = 0;
        int got = sscanf (line + 1,
                          "step %zu %31s id %" SCNx64 " source %31s target %31s start %" SCNx64
                          " end %" SCNx64,
                          &k, state, &id, source, target, &start, &end);
        assert_int_equal (got, 7);
        assert_int_equal (k, n + 1);
        snprintf (steps[n].source, sizeof steps[n].source, "%s", source);
        snprintf (steps[n].target, sizeof steps[n].target, "%s", target);
        steps[n].start = start;
        steps[n].end = end;
        n++;
    }
    free (text);
    return n;
}

static bool
s_in_arc (const s_step_t *step, uint64_t n)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (tk_id (n, S_TAG), bytes);
    uint64_t p = ring_point_of_id (bytes);
    return step->start < step->end ? (p > step->start && p <= step->end)
                                   : (p > step->start || p <= step->end);
}

//  The first account of the arc (other than `not`), 0 if none.
static uint64_t
s_account_in (const s_step_t *step, uint64_t not )
{
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        if (n != not &&s_in_arc (step, n)) {
            return n;
        }
    }
    return 0;
}

//  Attempts of one transfer. A shard restarted by the test is served again
//  once the router's next reconnect reaches it, up to
//  RL_ROUTER_RECONNECT_MS_MAX later; until then the router answers
//  `unavailable` at once. The helper's pauses after such answers (10 ms
//  doubling to 1 s) add up to over 5 s in 12 attempts.
#define S_TRANSFER_ATTEMPTS 12

static uint32_t
s_transfer (s_ctx_t *ctx, rl_client_t *client, const rl_transfer_t *t, uint64_t *ts)
{
    rl_result_rec_t r;
    assert_int_equal (
        rl_client_create_transfers_retry (client, t, 1, &r, TK_TIMEOUT_MS, S_TRANSFER_ATTEMPTS), 0);
    (void) ctx;
    if (ts) {
        *ts = r.timestamp;
    }
    return r.result;
}

//  Setup -----------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    rbk_cluster_start (&ctx->c, "test_rebalance_repair", "nosync");
    tk_model_init (&ctx->model, S_TAG, S_ACCOUNTS);
    rbk_create_plain_accounts (ctx->c.client, S_TAG, S_LEDGER, S_ACCOUNTS);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rbk_cluster_stop (&ctx->c);
    free (ctx);
    return 0;
}

//  Cases ---------------------------------------------------------------------

static void
test_reused_id_abort (void **state)
{
    s_ctx_t *ctx = *state;
    char dir[600];
    s_path (ctx, "reused", dir, sizeof dir);
    //  The plan alone (the tool stops after writing it).
    assert_int_equal (s_apply (ctx, dir, "rebalance.persisted=error"), 3);
    s_step_t steps[S_STEPS_MAX];
    size_t count = s_steps (dir, steps);
    assert_true (count >= 2);
    //  Step i moves d1's arc (and c's); a later step j, of another
    //  source, d3's.
    size_t i = 0, j = 0;
    uint64_t d1 = 0, c = 0, d3 = 0;
    for (; i < count && !d3; i++) {
        d1 = s_account_in (&steps[i], 0);
        c = d1 ? s_account_in (&steps[i], d1) : 0;
        for (j = i + 1; c && j < count && !d3; j++) {
            d3 = strcmp (steps[j].source, steps[i].source) != 0 ? s_account_in (&steps[j], 0) : 0;
        }
    }
    assert_true (d1 && c && d3);
    j--; //  the indexes of the steps found
    i--;
    assert_true (i < j);
    rl_id_t x = tk_id (0xABCDEF, S_TAG + 1);
    rl_transfer_t t1 = tk_transfer (x, tk_id (d1, S_TAG), tk_id (c, S_TAG), 100, S_LEDGER);
    rl_transfer_t t3 = tk_transfer (x, tk_id (d3, S_TAG), tk_id (c, S_TAG), 7, S_LEDGER);
    uint64_t ts1 = 0, ts3 = 0, ts = 0;
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t1, &ts1), RL_OK);
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t3, &ts3), RL_OK); //  another shard
    tk_model_apply (&ctx->model, &t1);
    tk_model_apply (&ctx->model, &t3);
    //  Steps up to i done, the tool killed after step j's freeze (its copy is in
    //  s4), then the change aborted.
    char fp[64];
    snprintf (fp, sizeof fp, "rebalance.frozen=crash@%zu", j + 1);
    assert_int_equal (s_apply (ctx, dir, fp), -SIGKILL);
    assert_int_equal (s_cmd (ctx, "abort", dir), 0);
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    //  Retries of both (through the router, each to its debit account's owner).
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t1, &ts), RL_EXISTS);
    assert_int_equal (ts, ts1);
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t3, &ts), RL_EXISTS);
    assert_int_equal (ts, ts3);
    //  X from another account of d1's arc (now on s4, beside d1's record).
    rl_transfer_t t5 = tk_transfer (x, tk_id (c, S_TAG), tk_id (d1, S_TAG), 5, S_LEDGER);
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t5, NULL),
                      RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID);
    //  A retry of X from d1 with another amount: the same record answers.
    rl_transfer_t t6 = t1;
    t6.amount = 101;
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t6, NULL), RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    //  The change completes afterwards, and the retries still answer.
    assert_int_equal (s_apply (ctx, dir, NULL), 0);
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t1, &ts), RL_EXISTS);
    assert_int_equal (ts, ts1);
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t3, &ts), RL_EXISTS);
    assert_int_equal (ts, ts3);
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    assert_true (tk_wait_cluster_quiet (ctx->c.client, 10000));
    tk_check_conservation (ctx->c.client, &ctx->model, 2);
}

//  Every account answers a balance through the router (none frozen).
static void
s_all_served (s_ctx_t *ctx)
{
    rl_id_t ids[S_ACCOUNTS];
    rl_account_t out[S_ACCOUNTS];
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        ids[n - 1] = tk_id (n, S_TAG);
    }
    assert_int_equal (
        rl_client_lookup_accounts (ctx->c.client, ids, S_ACCOUNTS, out, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < S_ACCOUNTS; i++) {
        assert_true (out[i].timestamp != 0);
    }
}

//  Transfer 1 of tag S_TAG + n between accounts debit and credit, made (ok)
//  before the change.
static rl_transfer_t
s_transfer_before (s_ctx_t *ctx, uint64_t n, uint64_t debit, uint64_t credit, uint64_t amount)
{
    rl_transfer_t t = tk_transfer (tk_id (1, S_TAG + n), tk_id (debit, S_TAG),
                                   tk_id (credit, S_TAG), amount, S_LEDGER);
    assert_int_equal (s_transfer (ctx, ctx->c.client, &t, NULL), RL_OK);
    tk_model_apply (&ctx->model, &t);
    return t;
}

//  The change ran to its end: check is clean, every account is served, the
//  transfer made before answers exists, and the conservation check passes.
static void
s_completed (s_ctx_t *ctx, const char *dir, const rl_transfer_t *before)
{
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    s_all_served (ctx);
    assert_int_equal (s_transfer (ctx, ctx->c.client, before, NULL), RL_EXISTS);
    assert_true (tk_wait_cluster_quiet (ctx->c.client, 10000));
    tk_check_conservation (ctx->c.client, &ctx->model, 1);
}

//  The tool's output (every run's, appended) holds `text`.
static void
s_tool_log_has (s_ctx_t *ctx, const char *text)
{
    char log_path[600];
    char *log = harness_read_file (s_path (ctx, "rebalance.log", log_path, sizeof log_path), NULL);
    assert_non_null (log);
    if (!strstr (log, text)) {
        fail_msg ("the tool never said: %s", text);
    }
    free (log);
}

//  Puts a migrate record into the stopped shard's store, restarts it.
static void
s_put_migration (s_ctx_t *ctx, tk_shard_t *shard, const rl_migrate_rec_t *rec)
{
    assert_int_equal (tk_shard_stop (ctx->c.h, shard, SIGTERM), 0);
    uint8_t value[RL_MIGRATE_SIZE];
    codec_encode_migrate (rec, value);
    char err[256] = "";
    store_t *store = store_open (shard->data_dir, RL_DURABILITY_SYNC, err, sizeof err);
    assert_non_null (store);
    store_batch_put (store, STORE_CF_META, MIGRATE_META_KEY, strlen (MIGRATE_META_KEY), value,
                     sizeof value);
    assert_int_equal (store_commit (store), 0);
    store_close (&store);
    assert_true (tk_shard_start (ctx->c.h, shard) > 0);
}

static tk_shard_t *
s_shard_named (s_ctx_t *ctx, const char *name)
{
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        if (strcmp (ctx->c.shards[i].name, name) == 0) {
            return &ctx->c.shards[i];
        }
    }
    fail_msg ("no shard %s", name);
    return NULL;
}

//  A migration of an older plan handed over from a shard and never
//  cleaned up (an older tool did not clean up), put into the stopped
//  source of the plan's first step, for hash space of the ring that it no
//  longer owns. That shard refuses the step's begin. While no single other
//  shard serves the whole arc (it spans two owners), apply cleans nothing
//  up and stops (exit 3); for an arc one shard serves whole, apply cleans
//  the old migration up (named by migrate_cleanup with id 0, then by its
//  id) and completes.
static void
test_stale_handover (void **state)
{
    s_ctx_t *ctx = *state;
    char dir[600];
    s_path (ctx, "stale", dir, sizeof dir);
    assert_int_equal (s_apply (ctx, dir, "rebalance.persisted=error"), 3); //  the plan alone
    s_step_t steps[S_STEPS_MAX];
    assert_true (s_steps (dir, steps) > 0);
    tk_shard_t *source = s_shard_named (ctx, steps[0].source);
    char err[256] = "";
    ring_t *r0 = ring_load_file (ctx->c.r0, err, sizeof err);
    assert_non_null (r0);
    int me = ring_shard_find (r0, source->name);
    rl_migrate_rec_t old = {.migration_id = (7ull << RL_MIGRATE_STEP_BITS) | 5,
                            .role = RL_MIGRATE_SOURCE,
                            .state = RL_MIGRATE_HANDED_OVER};
    //  Two ring arcs in a row that are not the source's (two owners).
    size_t points = ring_point_count (r0), p = 0;
    while (p < points
           && ((int) ring_point_owner (r0, p) == me
               || (int) ring_point_owner (r0, (p + 1) % points) == me)) {
        p++;
    }
    assert_true (p < points);
    old.arc_start = ring_point_position (r0, (p + points - 1) % points);
    old.arc_end = ring_point_position (r0, (p + 1) % points);
    snprintf (old.source, sizeof old.source, "%s", source->name);
    snprintf (old.target, sizeof old.target, "%s", ring_shard_name (r0, ring_point_owner (r0, p)));
    //  Over both: no one other shard is known to hold all of it, so
    //  nothing is cleaned up and apply stops (the refusal stands).
    s_put_migration (ctx, source, &old);
    rl_transfer_t t = s_transfer_before (ctx, 3, 5, 6, 13);
    assert_int_equal (s_apply (ctx, dir, NULL), 3);
    s_tool_log_has (ctx, "no other shard is known to hold its arc: not cleaned up");
    s_all_served (ctx);
    //  Over the first alone, which its owner serves whole: cleaned up.
    old.arc_end = ring_point_position (r0, p);
    ring_destroy (&r0);
    s_put_migration (ctx, source, &old);
    assert_int_equal (s_apply (ctx, dir, NULL), 0);
    s_tool_log_has (ctx, "migration 7340037 was handed over from there and not cleaned up (");
    s_completed (ctx, dir, &t);
}

static void
test_fix_shipped (void **state)
{
    s_ctx_t *ctx = *state;
    char dir[600];
    s_path (ctx, "shipped", dir, sizeof dir);
    rl_transfer_t t = s_transfer_before (ctx, 1, 1, 2, 9);
    //  The tool dies right after the final chunk is in the target: the
    //  source shipped (frozen for good), the state file says frozen.
    assert_int_equal (s_apply (ctx, dir, "rebalance.chunk=crash@2"), -SIGKILL);
    assert_int_equal (s_cmd (ctx, "check", dir), 4);
    assert_int_equal (s_cmd (ctx, "fix", dir), 0); //  rolls the step forward
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    s_all_served (ctx);
    const char *status[] = {"status", "--state", dir, "--json", NULL};
    assert_int_equal (s_tool (ctx, NULL, status), 0);
    s_tool_log_has (ctx, "\"steps_done\":\t1");
    //  A fix with nothing to do changes nothing; a state dir with no plan
    //  is refused.
    assert_int_equal (s_cmd (ctx, "fix", dir), 0);
    char empty[600];
    assert_int_equal (s_cmd (ctx, "fix", s_path (ctx, "nothing", empty, sizeof empty)), 2);
    assert_int_equal (s_apply (ctx, dir, NULL), 0);
    s_completed (ctx, dir, &t);
}

//  The target runs out of memory halfway through its first handover
//  (migrate.handover_alloc): it fails rather than keep half an arc, and
//  apply stops (exit 3). Restarted, the target is as before that turn, and
//  apply run again resumes the step (the final chunk again, the commit)
//  and completes the change: check clean, every account served, the
//  transfer made before answers exists, conservation.
static void
test_handover_fails (void **state)
{
    s_ctx_t *ctx = *state;
    char dir[600];
    s_path (ctx, "failed", dir, sizeof dir);
    rl_transfer_t t = s_transfer_before (ctx, 2, 3, 4, 11);
    static char fp[] = "RL_FAILPOINTS=migrate.handover_alloc=error@1";
    tk_shard_t *s4 = &ctx->c.shards[3];
    assert_int_equal (tk_shard_stop (ctx->c.h, s4, SIGTERM), 0);
    s4->env[0] = fp;
    assert_true (tk_shard_start (ctx->c.h, s4) > 0);
    assert_int_equal (s_apply (ctx, dir, NULL), 3);
    assert_true (tk_shard_stop (ctx->c.h, s4, SIGKILL) >= 0); //  FAILED: restarted by hand
    s4->env[0] = NULL;
    assert_true (tk_shard_start (ctx->c.h, s4) > 0);
    assert_int_equal (s_apply (ctx, dir, NULL), 0);
    s_completed (ctx, dir, &t);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_reused_id_abort, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fix_shipped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stale_handover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_handover_fails, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
