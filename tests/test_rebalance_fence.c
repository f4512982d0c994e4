/*  test_rebalance_fence.c: the cluster-side fence of `rebalance`
    (docs/rebalance.md, "The plan's lease" and "A lost state directory"),
    each case a real cluster under the test kit's load: shards s1..s3
    serve ring R0 (epoch 1, security on), s4 runs with R0 too (it owns
    nothing), one router learns newer rings from the shards. The tool runs
    as a process, killed by its failpoints.

    test_two_plans: plan A (R0 -> R0 + s4) is killed while step 1's arc is
    SHIPPED (frozen until its handover). Plan B (R0 -> R0 + s4 at weight
    2), from another state directory, must not move anything: its apply
    exits 6 (A holds the lease on every shard), every shard still serves
    R0, and a migrate_begin of B's first step sent by hand is answered
    lease_held, and so are B's acquire, release and takeover. A second run
    of A itself from another directory exits 6 too (the lease names A's
    run). A resumes and completes; B then exits 6 again (the rings
    are not its own) and leaves no lease behind; B's check says its
    directory is stale, and its fix exits 6 and changes nothing (it used
    to promise that fix resolves the problems, and report them again
    after every fix). Then two plans from A's
    last ring (reweights of s1 and of s3) run at once, each with its own
    directory: exactly one completes, the other exits 6, and check is
    clean for the winner. (Before the lease, B took the arcs A had not
    touched and loaded its rings, and A's shipped arc stayed frozen.)

    test_lost_state: a grow is killed while step 1's arc is SHIPPED and its
    state directory deleted; recover rebuilds it from the two rings and the
    shards (the step frozen); apply with it is killed again in step 3's
    handover (after the target's commit) and that directory deleted too;
    recover rebuilds it (steps 1-2 done, step 3 in its handover); apply
    completes the change and check is clean. recover refuses a directory
    that holds a plan (2) and a plan the cluster does not serve (6).

    Every case ends with the kit's checks: exactly once, a replay of every
    id, and the conservation check.
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
#include "test_rebalance_kit.h"
#include "testkit.h"

#define S_TAG         0x46454e43ull //  "FENC"
#define S_LEDGER      63
#define S_ACCOUNTS    300
#define S_TRANSFERS   6000 //  at most, per case
#define S_TOOL_MAX_MS 60000
#define S_LOAD_ROUNDS 8 //  load batches between two tool runs

typedef struct {
    rbk_cluster_t c; //  s1..s4, R0 and R1, the router
    char r2[512];    //  R0 + s4 with weight 2, epoch 2
    rbk_load_t load;
} s_ctx_t;

static char *
s_path (s_ctx_t *ctx, const char *name, char *out, size_t size)
{
    return rbk_path (ctx->c.h, name, out, size);
}

//  Spawns `rebalance` with args (NULL-terminated), its log `name`.
static pid_t
s_spawn (s_ctx_t *ctx, const char *name, const char *failpoints, const char *const *args)
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
    pid_t pid = harness_spawn (ctx->c.h, name, argv, env);
    assert_true (pid > 0);
    return pid;
}

//  Its exit code, -signal when killed.
static int
s_wait (s_ctx_t *ctx, const char *name, pid_t pid)
{
    return rbk_tool_wait (ctx->c.h, name, pid, S_TOOL_MAX_MS);
}

static int
s_tool (s_ctx_t *ctx, const char *failpoints, const char *const *args)
{
    return s_wait (ctx, "rebalance", s_spawn (ctx, "rebalance", failpoints, args));
}

static int
s_apply (s_ctx_t *ctx, const char *from, const char *to, const char *dir, const char *failpoints)
{
    const char *args[] = {"apply", from, to, "--state", dir, "--cert", ctx->c.cert, NULL};
    return s_tool (ctx, failpoints, args);
}

static int
s_cmd (s_ctx_t *ctx, const char *cmd, const char *dir)
{
    const char *args[] = {cmd, "--state", dir, "--cert", ctx->c.cert, NULL};
    return s_tool (ctx, NULL, args);
}

static int
s_recover (s_ctx_t *ctx, const char *from, const char *to, const char *dir)
{
    const char *args[] = {"recover", "--from", from,     "--to",      to,
                          "--state", dir,      "--cert", ctx->c.cert, NULL};
    return s_tool (ctx, NULL, args);
}

//  The line of step k (1-based) of DIR/state: its state name in out.
static void
s_step_state (const char *dir, size_t k, char *out, size_t size)
{
    char path[700], key[32];
    snprintf (path, sizeof path, "%s/state", dir);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    snprintf (key, sizeof key, "\nstep %zu ", k);
    const char *line = strstr (text, key);
    assert_non_null (line);
    char state[32] = "";
    assert_int_equal (sscanf (line + strlen (key), "%31s", state), 1);
    snprintf (out, size, "%s", state);
    free (text);
}

static void
s_assert_step (const char *dir, size_t k, const char *want)
{
    char state[32];
    s_step_state (dir, k, state, sizeof state);
    if (strcmp (state, want) != 0) {
        fail_msg ("%s: step %zu is %s, want %s", dir, k, state, want);
    }
}

//  The epoch shard i serves.
static uint64_t
s_epoch_of (s_ctx_t *ctx, size_t i)
{
    rl_client_t *c = rl_client_new (ctx->c.shards[i].endpoint);
    assert_non_null (c);
    uint8_t *blob = NULL;
    size_t size = 0;
    assert_int_equal (rl_client_get_ring (c, &blob, &size, TK_TIMEOUT_MS), 0);
    char err[256];
    ring_t *ring = ring_decode (blob, size, err, sizeof err);
    assert_non_null (ring);
    uint64_t epoch = ring_epoch (ring);
    ring_destroy (&ring);
    free (blob);
    rl_client_destroy (&c);
    return epoch;
}

//  The plan holding shard i's lease (0: none), and its stored migration.
static uint64_t
s_lease_of (s_ctx_t *ctx, size_t i, rl_migrate_rec_t *stored)
{
    rl_client_t *c = rl_client_new (ctx->c.shards[i].endpoint);
    assert_non_null (c);
    uint64_t holder = 0;
    assert_int_equal (
        rl_client_migrate_lease (c, 0, RL_MIGRATE_LEASE_READ, stored, &holder, TK_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    return holder;
}

//  Asserts that the log of the tool run `name` says `text`.
static void
s_log_has (s_ctx_t *ctx, const char *name, const char *text)
{
    if (!tk_log_contains (ctx->c.h, name, text)) {
        harness_dump_log (ctx->c.h, name);
        fail_msg ("the log of %s does not say \"%s\"", name, text);
    }
}

static void
s_load (s_ctx_t *ctx, size_t rounds)
{
    for (size_t i = 0; i < rounds; i++) {
        rbk_load_once (&ctx->load);
    }
}

//  A ring file: `base` with shard `name` reweighted (or added, at
//  `endpoint` with its key) to `weight`, at base's epoch + 1.
static void
s_ring_variant (s_ctx_t *ctx, const char *base, const char *name, const char *endpoint,
                double weight, const char *out)
{
    char err[256];
    ring_t *ring = ring_load_file (base, err, sizeof err);
    assert_non_null (ring);
    if (endpoint) {
        assert_int_equal (ring_add_shard (ring, name, endpoint, weight), RING_OK);
        assert_int_equal (ring_set_key (ring, name, tk_key (ctx->c.h, "shard", name)), RING_OK);
    } else {
        assert_int_equal (ring_reweight_shard (ring, name, weight), RING_OK);
    }
    ring_set_epoch (ring, ring_epoch (ring) + 1);
    assert_int_equal (ring_save_file (ring, out), RING_OK);
    ring_destroy (&ring);
}

//  Setup -----------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    rbk_cluster_start (&ctx->c, "test_rebalance_fence", "nosync");
    s_path (ctx, "r2.ring", ctx->r2, sizeof ctx->r2);
    s_ring_variant (ctx, ctx->c.r0, "s4", ctx->c.shards[3].endpoint, 2.0, ctx->r2);
    rbk_load_init (&ctx->load, ctx->c.client, S_TAG, S_LEDGER, S_ACCOUNTS, S_TRANSFERS, 7);
    rbk_create_accounts (&ctx->load);
    rbk_load_ring_file (&ctx->load, ctx->c.r0);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rbk_load_destroy (&ctx->load);
    rbk_cluster_stop (&ctx->c);
    free (ctx);
    return 0;
}

//  Cases ---------------------------------------------------------------------

//  The migration id of step k of the plan in DIR.
static uint64_t
s_step_id (const char *dir, size_t k)
{
    char path[700], key[32];
    snprintf (path, sizeof path, "%s/state", dir);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    snprintf (key, sizeof key, "\nstep %zu ", k);
    const char *line = strstr (text, key);
    assert_non_null (line);
    const char *id = strstr (line, " id ");
    assert_non_null (id);
    uint64_t v = strtoull (id + 4, NULL, 16);
    free (text);
    return v;
}

static void
test_two_plans (void **state)
{
    s_ctx_t *ctx = *state;
    char dir_a[600], dir_b[600];
    s_path (ctx, "plan-a", dir_a, sizeof dir_a);
    s_path (ctx, "plan-b", dir_b, sizeof dir_b);
    s_load (ctx, S_LOAD_ROUNDS);
    //  A dies with step 1 shipped: its arc is frozen until the handover.
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, dir_a, "rebalance.shipped=crash"),
                      -SIGKILL);
    s_assert_step (dir_a, 1, "handover");
    s_load (ctx, S_LOAD_ROUNDS);
    //  B, from another directory: fenced, nothing moves.
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->r2, dir_b, NULL), 6);
    s_assert_step (dir_b, 1, "pending");
    uint64_t plan_a = s_step_id (dir_a, 1) & RL_MIGRATE_PLAN_MASK;
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        rl_migrate_rec_t stored;
        assert_int_equal (s_epoch_of (ctx, i), 1);
        assert_int_equal (s_lease_of (ctx, i, &stored) & RL_MIGRATE_PLAN_MASK, plan_a);
    }
    //  A second run of plan A itself, from another directory: fenced too
    //  (the lease names A's run), nothing moves.
    char dir_a2[600];
    s_path (ctx, "plan-a2", dir_a2, sizeof dir_a2);
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, dir_a2, NULL), 6);
    s_assert_step (dir_a2, 1, "pending");
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        assert_int_equal (s_epoch_of (ctx, i), 1);
    }
    //  A begin of B's first step by hand: refused by the lease, nothing changes.
    {
        char path[700];
        snprintf (path, sizeof path, "%s/state", dir_b);
        char *text = harness_read_file (path, NULL);
        assert_non_null (text);
        const char *line = strstr (text, "\nstep 1 ");
        assert_non_null (line);
        char source[32], target[32];
        uint64_t id = 0, start = 0, end = 0;
        assert_int_equal (sscanf (line + 1,
                                  "step 1 %*s id %" SCNx64 " source %31s target %31s start %" SCNx64
                                  " end %" SCNx64,
                                  &id, source, target, &start, &end),
                          5);
        free (text);
        size_t src = (size_t) (source[1] - '1');
        assert_true (src < RBK_SHARDS);
        rl_migrate_rec_t req = {.migration_id = id,
                                .arc_start = start,
                                .arc_end = end,
                                .role = RL_MIGRATE_SOURCE},
                         out, before, after;
        snprintf (req.source, sizeof req.source, "%s", source);
        snprintf (req.target, sizeof req.target, "%s", target);
        s_lease_of (ctx, src, &before);
        rl_client_t *c = rl_client_new (ctx->c.shards[src].endpoint);
        assert_non_null (c);
        assert_int_equal (rl_client_migrate (c, RL_OP_MIGRATE_BEGIN, &req, &out, TK_TIMEOUT_MS),
                          RL_STATUS_LEASE_HELD);
        //  Nor may B take or clear A's lease.
        uint64_t holder = 0;
        uint64_t plan_b = id & RL_MIGRATE_PLAN_MASK;
        assert_int_equal (rl_client_migrate_lease (c, plan_b, RL_MIGRATE_LEASE_ACQUIRE, &out,
                                                   &holder, TK_TIMEOUT_MS),
                          RL_STATUS_LEASE_HELD);
        assert_int_equal (rl_client_migrate_lease (c, plan_b, RL_MIGRATE_LEASE_RELEASE, &out,
                                                   &holder, TK_TIMEOUT_MS),
                          RL_STATUS_LEASE_HELD);
        assert_int_equal (rl_client_migrate_lease (c, plan_b | 5, RL_MIGRATE_LEASE_TAKEOVER, &out,
                                                   &holder, TK_TIMEOUT_MS),
                          RL_STATUS_LEASE_HELD);
        //  A holder of no plan, or an unknown action, is malformed.
        assert_int_equal (
            rl_client_migrate_lease (c, 5, RL_MIGRATE_LEASE_ACQUIRE, &out, &holder, TK_TIMEOUT_MS),
            RL_STATUS_MALFORMED);
        assert_int_equal (rl_client_migrate_lease (c, plan_b, 7, &out, &holder, TK_TIMEOUT_MS),
                          RL_STATUS_MALFORMED);
        rl_client_destroy (&c);
        assert_int_equal (s_lease_of (ctx, src, &after) & RL_MIGRATE_PLAN_MASK, plan_a);
        assert_memory_equal (&before, &after, sizeof before);
    }
    //  A finishes; B is still fenced (not its rings) and leaves no lease.
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, dir_a, NULL), 0);
    assert_int_equal (s_cmd (ctx, "check", dir_a), 0);
    s_load (ctx, S_LOAD_ROUNDS);
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->r2, dir_b, NULL), 6);
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        rl_migrate_rec_t stored;
        assert_int_equal (s_lease_of (ctx, i, &stored), 0);
    }
    //  B's directory is stale: check says so (not "fix resolves them"),
    //  and fix loads no ring and exits 6 (nothing of B is in progress, so
    //  nothing changes), where it used to report the same problems after
    //  every run.
    {
        uint64_t epochs[RBK_SHARDS];
        for (size_t i = 0; i < RBK_SHARDS; i++) {
            epochs[i] = s_epoch_of (ctx, i);
        }
        const char *check_b[] = {"check", "--state", dir_b, "--cert", ctx->c.cert, NULL};
        const char *fix_b[] = {"fix", "--state", dir_b, "--cert", ctx->c.cert, NULL};
        assert_int_equal (s_wait (ctx, "check-b", s_spawn (ctx, "check-b", NULL, check_b)), 4);
        s_log_has (ctx, "check-b", "none of this plan's rings");
        s_log_has (ctx, "check-b", "this state directory is stale and 'rebalance fix' cannot");
        assert_int_equal (s_wait (ctx, "fix-b", s_spawn (ctx, "fix-b", NULL, fix_b)), 6);
        s_log_has (ctx, "fix-b", "this state directory is stale, and fix loaded no ring");
        for (size_t i = 0; i < RBK_SHARDS; i++) {
            assert_int_equal (s_epoch_of (ctx, i), epochs[i]);
        }
        //  A's own directory stays clean.
        assert_int_equal (s_cmd (ctx, "check", dir_a), 0);
    }
    //  Two plans at once from A's last ring, each its own directory.
    char last[700], rc_ring[600], rd_ring[600], dir_c[600], dir_d[600];
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir_a);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    const char *steps = strstr (text, "\nsteps ");
    assert_non_null (steps);
    size_t n = strtoul (steps + 7, NULL, 10);
    free (text);
    snprintf (last, sizeof last, "%s/ring.%zu", dir_a, n);
    s_path (ctx, "rc.ring", rc_ring, sizeof rc_ring);
    s_path (ctx, "rd.ring", rd_ring, sizeof rd_ring);
    s_ring_variant (ctx, last, "s1", NULL, 1.5, rc_ring);
    s_ring_variant (ctx, last, "s3", NULL, 1.5, rd_ring);
    s_path (ctx, "plan-c", dir_c, sizeof dir_c);
    s_path (ctx, "plan-d", dir_d, sizeof dir_d);
    const char *args_c[] = {"apply", last, rc_ring, "--state", dir_c, "--cert", ctx->c.cert, NULL};
    const char *args_d[] = {"apply", last, rd_ring, "--state", dir_d, "--cert", ctx->c.cert, NULL};
    pid_t pc = s_spawn (ctx, "rebalance-c", NULL, args_c);
    pid_t pd = s_spawn (ctx, "rebalance-d", NULL, args_d);
    s_load (ctx, S_LOAD_ROUNDS);
    int rc_c = s_wait (ctx, "rebalance-c", pc);
    int rc_d = s_wait (ctx, "rebalance-d", pd);
    fprintf (stderr, "two plans at once: c exit %d, d exit %d\n", rc_c, rc_d);
    assert_true ((rc_c == 0 && rc_d == 6) || (rc_c == 6 && rc_d == 0));
    assert_int_equal (s_cmd (ctx, "check", rc_c == 0 ? dir_c : dir_d), 0);
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        rl_migrate_rec_t stored;
        assert_int_equal (s_lease_of (ctx, i, &stored), 0);
    }
    s_load (ctx, S_LOAD_ROUNDS);
    rbk_check_all (&ctx->load, "two plans", NULL, 0, 1);
}

static void
test_lost_state (void **state)
{
    s_ctx_t *ctx = *state;
    char dir1[600], dir2[600], dir3[600], cmd[2048];
    s_path (ctx, "lost-1", dir1, sizeof dir1);
    s_path (ctx, "lost-2", dir2, sizeof dir2);
    s_path (ctx, "lost-3", dir3, sizeof dir3);
    s_load (ctx, S_LOAD_ROUNDS);
    //  Killed with step 1's arc shipped, then the directory is lost.
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, dir1, "rebalance.shipped=crash"),
                      -SIGKILL);
    s_assert_step (dir1, 1, "handover");
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir1);
    assert_int_equal (system (cmd), 0);
    s_load (ctx, S_LOAD_ROUNDS);
    //  A plan the cluster does not serve is refused, and so is a directory
    //  that holds a plan.
    assert_int_equal (s_recover (ctx, ctx->c.r0, ctx->r2, dir2), 6);
    assert_int_equal (s_recover (ctx, ctx->c.r0, ctx->c.r1, dir2), 0);
    s_assert_step (dir2, 1, "frozen");
    assert_int_equal (s_recover (ctx, ctx->c.r0, ctx->c.r1, dir2), 2);
    //  Resumed, then killed in step 3's handover and lost again.
    assert_int_equal (
        s_apply (ctx, ctx->c.r0, ctx->c.r1, dir2, "rebalance.target_committed=crash@3"), -SIGKILL);
    s_assert_step (dir2, 2, "done");
    s_assert_step (dir2, 3, "handover");
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir2);
    assert_int_equal (system (cmd), 0);
    s_load (ctx, S_LOAD_ROUNDS);
    assert_int_equal (s_recover (ctx, ctx->c.r0, ctx->c.r1, dir3), 0);
    s_assert_step (dir3, 1, "done");
    s_assert_step (dir3, 2, "done");
    s_assert_step (dir3, 3, "handover");
    s_assert_step (dir3, 4, "pending");
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, dir3, NULL), 0);
    assert_int_equal (s_cmd (ctx, "check", dir3), 0);
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        rl_migrate_rec_t stored;
        assert_int_equal (s_lease_of (ctx, i, &stored), 0);
    }
    s_load (ctx, S_LOAD_ROUNDS);
    rbk_check_all (&ctx->load, "lost state", NULL, 0, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_two_plans, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lost_state, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
