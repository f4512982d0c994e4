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
#include "ring.h"
#include "routerkit.h"
#include "testkit.h"

#define S_TAG         0x52455052ull //  "REPR"
#define S_LEDGER      62
#define S_ACCOUNTS    400
#define S_SHARDS      4
#define S_TOOL_MAX_MS 40000
#define S_STEPS_MAX   64

typedef struct {
    harness_t *h;
    tk_shard_t shards[S_SHARDS];
    rk_router_t router;
    rl_client_t *client;
    char r0[512], r1[512];
    char cert[512];
    tk_model_t model;
} s_ctx_t;

typedef struct {
    char source[32], target[32];
    uint64_t start, end;
} s_step_t;

static char *
s_path (s_ctx_t *ctx, const char *name, char *out, size_t size)
{
    char *p = harness_path (ctx->h, name);
    assert_non_null (p);
    snprintf (out, size, "%s", p);
    free (p);
    return out;
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
    pid_t pid = harness_spawn (ctx->h, "rebalance", argv, env);
    assert_true (pid > 0);
    int ws = 0;
    if (harness_wait_exit (ctx->h, pid, S_TOOL_MAX_MS, &ws) != 0) {
        harness_dump_log (ctx->h, "rebalance");
        fail_msg ("rebalance did not end within %d ms", S_TOOL_MAX_MS);
    }
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

static int
s_apply (s_ctx_t *ctx, const char *dir, const char *failpoints)
{
    const char *args[] = {"apply", ctx->r0, ctx->r1, "--state", dir, "--cert", ctx->cert, NULL};
    return s_tool (ctx, failpoints, args);
}

static int
s_cmd (s_ctx_t *ctx, const char *cmd, const char *dir)
{
    const char *args[] = {cmd, "--state", dir, "--cert", ctx->cert, NULL};
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

static uint32_t
s_transfer (s_ctx_t *ctx, rl_client_t *client, const rl_transfer_t *t, uint64_t *ts)
{
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers_retry (client, t, 1, &r, TK_TIMEOUT_MS, 5), 0);
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
    ctx->h = harness_new ("test_rebalance_repair");
    assert_non_null (ctx->h);
    snprintf (ctx->cert, sizeof ctx->cert, "%s/private/tester.key_secret", tk_keys_dir (ctx->h));
    tk_model_init (&ctx->model, S_TAG, S_ACCOUNTS);
    ring_t *ring = ring_new (1);
    assert_non_null (ring);
    const char *names[S_SHARDS] = {"s1", "s2", "s3", "s4"};
    for (size_t i = 0; i < S_SHARDS; i++) {
        tk_shard_init (ctx->h, &ctx->shards[i], names[i]);
        ctx->shards[i].durability = "nosync";
        if (i < 3) {
            assert_int_equal (ring_add_shard (ring, names[i], ctx->shards[i].endpoint, 1.0),
                              RING_OK);
            assert_int_equal (ring_set_key (ring, names[i], tk_key (ctx->h, "shard", names[i])),
                              RING_OK);
        }
    }
    s_path (ctx, "r0.ring", ctx->r0, sizeof ctx->r0);
    assert_int_equal (ring_save_file (ring, ctx->r0), RING_OK);
    assert_int_equal (ring_add_shard (ring, "s4", ctx->shards[3].endpoint, 1.0), RING_OK);
    assert_int_equal (ring_set_key (ring, "s4", tk_key (ctx->h, "shard", "s4")), RING_OK);
    ring_set_epoch (ring, 2);
    s_path (ctx, "r1.ring", ctx->r1, sizeof ctx->r1);
    assert_int_equal (ring_save_file (ring, ctx->r1), RING_OK);
    ring_destroy (&ring);
    for (size_t i = 0; i < S_SHARDS; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof ctx->shards[i].ring_file, "%s", ctx->r0);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    }
    rk_router_init (&ctx->router, "router1");
    snprintf (ctx->router.ring_file, sizeof ctx->router.ring_file, "%s", ctx->r0);
    ctx->router.refresh_ms = 200;
    assert_true (rk_router_start (ctx->h, &ctx->router) > 0);
    ctx->client = rl_client_new (ctx->router.endpoint);
    assert_non_null (ctx->client);
    rl_account_t accounts[S_ACCOUNTS];
    rl_result_rec_t results[S_ACCOUNTS];
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        accounts[n - 1] = tk_account (n, S_TAG, S_LEDGER, 0);
    }
    assert_int_equal (rl_client_create_accounts_retry (ctx->client, accounts, S_ACCOUNTS, results,
                                                       TK_TIMEOUT_MS, 5),
                      0);
    for (size_t i = 0; i < S_ACCOUNTS; i++) {
        assert_int_equal (results[i].result, RL_OK);
    }
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rl_client_destroy (&ctx->client);
    if (ctx->router.pid > 0) {
        rk_router_stop (ctx->h, &ctx->router);
    }
    for (size_t i = 0; i < S_SHARDS; i++) {
        if (ctx->shards[i].pid > 0) {
            tk_shard_stop (ctx->h, &ctx->shards[i], SIGTERM);
        }
    }
    harness_destroy (&ctx->h);
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
    assert_int_equal (s_transfer (ctx, ctx->client, &t1, &ts1), RL_OK);
    assert_int_equal (s_transfer (ctx, ctx->client, &t3, &ts3), RL_OK); //  another shard
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
    assert_int_equal (s_transfer (ctx, ctx->client, &t1, &ts), RL_EXISTS);
    assert_int_equal (ts, ts1);
    assert_int_equal (s_transfer (ctx, ctx->client, &t3, &ts), RL_EXISTS);
    assert_int_equal (ts, ts3);
    //  X from another account of d1's arc (now on s4, beside d1's record).
    rl_transfer_t t5 = tk_transfer (x, tk_id (c, S_TAG), tk_id (d1, S_TAG), 5, S_LEDGER);
    assert_int_equal (s_transfer (ctx, ctx->client, &t5, NULL),
                      RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID);
    //  A retry of X from d1 with another amount: the same record answers.
    rl_transfer_t t6 = t1;
    t6.amount = 101;
    assert_int_equal (s_transfer (ctx, ctx->client, &t6, NULL), RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    //  The change completes afterwards, and the retries still answer.
    assert_int_equal (s_apply (ctx, dir, NULL), 0);
    assert_int_equal (s_transfer (ctx, ctx->client, &t1, &ts), RL_EXISTS);
    assert_int_equal (ts, ts1);
    assert_int_equal (s_transfer (ctx, ctx->client, &t3, &ts), RL_EXISTS);
    assert_int_equal (ts, ts3);
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    assert_true (tk_wait_cluster_quiet (ctx->client, 10000));
    tk_check_conservation (ctx->client, &ctx->model, 2);
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
    assert_int_equal (rl_client_lookup_accounts (ctx->client, ids, S_ACCOUNTS, out, TK_TIMEOUT_MS),
                      0);
    for (size_t i = 0; i < S_ACCOUNTS; i++) {
        assert_true (out[i].timestamp != 0);
    }
}

static void
test_fix_shipped (void **state)
{
    s_ctx_t *ctx = *state;
    char dir[600];
    s_path (ctx, "shipped", dir, sizeof dir);
    rl_transfer_t t = tk_transfer (tk_id (1, S_TAG + 1), tk_id (1, S_TAG), tk_id (2, S_TAG), 9,
                                   S_LEDGER);
    assert_int_equal (s_transfer (ctx, ctx->client, &t, NULL), RL_OK);
    tk_model_apply (&ctx->model, &t);
    //  The tool dies right after the final chunk is in the target: the
    //  source shipped (frozen for good), the state file says frozen.
    assert_int_equal (s_apply (ctx, dir, "rebalance.chunk=crash@2"), -SIGKILL);
    assert_int_equal (s_cmd (ctx, "check", dir), 4);
    assert_int_equal (s_cmd (ctx, "fix", dir), 0); //  rolls the step forward
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    s_all_served (ctx);
    const char *status[] = {"status", "--state", dir, "--json", NULL};
    assert_int_equal (s_tool (ctx, NULL, status), 0);
    char log_path[600];
    char *log = harness_read_file (s_path (ctx, "rebalance.log", log_path, sizeof log_path), NULL);
    assert_non_null (log);
    assert_non_null (strstr (log, "\"steps_done\":\t1"));
    free (log);
    //  A fix with nothing to do changes nothing; a state dir with no plan
    //  is refused.
    assert_int_equal (s_cmd (ctx, "fix", dir), 0);
    char empty[600];
    assert_int_equal (s_cmd (ctx, "fix", s_path (ctx, "nothing", empty, sizeof empty)), 2);
    assert_int_equal (s_apply (ctx, dir, NULL), 0);
    assert_int_equal (s_cmd (ctx, "check", dir), 0);
    assert_int_equal (s_transfer (ctx, ctx->client, &t, NULL), RL_EXISTS);
    assert_true (tk_wait_cluster_quiet (ctx->client, 10000));
    tk_check_conservation (ctx->client, &ctx->model, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_reused_id_abort, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fix_shipped, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
