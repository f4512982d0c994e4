/*  test_rebalance_failover.c: `rebalance apply` completes a change after a
    fail-over of one of its shards (`rlctl promote SHARD STANDBY`) in the
    middle of it (docs/rebalance.md, docs/replication.md), each case a real
    cluster under the test kit's load: shards s1..s4 (rbk_cluster_start:
    R0 = s1..s3 at epoch 1, R1 = R0 + s4 at epoch 2), one router that
    learns newer rings from the shards, and a semi-synchronous standby
    (--durability sync) of the shard that is failed over, started before
    its primary (--standby-of / --standby). The tool runs as a process,
    killed by its failpoints.

    Every case: load, then `apply R0 R1` killed by a failpoint (crash@k) in
    step k, chosen from the plan (written first by an apply stopped at
    rebalance.persisted) so that the shard failed over takes part in step
    k; the state file says where the kill landed (checked). Then the
    shard's primary is SIGKILLed and `rlctl --connect S2 promote SHARD
    STANDBY` run: exit 0, the standby serves as the shard's primary. A
    little load (one short attempt a batch: an arc may be frozen), then
    apply run again (same state directory, same ring files, no failpoint)
    must exit 0; then `rebalance check` is clean (exit 0), no shard holds a
    plan's lease, every shard (the failed-over one at the standby's
    endpoint) and the router serve one ring: R1's content with that shard
    at the standby's endpoint, at an epoch above the plan's last (E + n:
    the promotion took one); then more load and the kit's closing checks:
    exactly once, a replay of every id, the strong conservation check.

    apply runs with --timeout-ms 2000 (S_APPLY_TIMEOUT): its rerun first
    asks every shard at the plan's endpoints, and the dead primary's old
    endpoint costs one timeout.

    The cases, s1 (a SOURCE of the grow) failed over, the kill in s1's
    first step:
    - test_s1_begun: at rebalance.begun (copying).
    - test_s1_frozen: at rebalance.frozen (the arc frozen on s1).
    - test_s1_shipped: at rebalance.shipped (s1 shipped its final chunk:
      frozen for good until the handover; the state says handover).
    - test_s1_target_ring: at rebalance.target_ring (the target holds the
      step's ring and its commit, s1 neither: the handover half done; the
      promotion's ring is made from the step's ring, the target's).
    - test_s1_between_steps: at rebalance.step_done of the step before
      s1's (s1's step then begins at the standby's endpoint), or of s1's
      step when it is the first.
    s4 (the TARGET of every step) failed over:
    - test_s4_target_ring: at rebalance.target_ring of step 2: s4 holds
      step 1's arc, step 2's staged copy, ring and commit, and so does its
      standby; s1..s3 serve step 1's ring. rlctl makes the promotion's
      ring from the promoted s4's own (step 2's ring), one epoch above it,
      so that every shard serves one ring (it used to load step 1's ring
      with s4 moved, at step 2's epoch, which s4 refused).
    - test_s1_mixed_rings: as test_s1_target_ring, but s4 is stopped
      (SIGSTOP) while rlctl promote s1 reads the rings: its base is step
      1's ring, and s4, continued, holds step 2's at the promotion's epoch
      (exit 1, INCOMPLETE). Run again, promote makes its ring from s4's:
      exit 0, one ring; apply completes.
    - test_not_a_failover: rings that only look like a fail-over's (ring 0
      of the plan with s2, alive and without a standby, at an endpoint
      where nothing listens, then at s3's endpoint, loaded by hand into
      s3): apply exits 6 and its state file holds no fail-over; every
      shard then gets ring 0 back at a newer epoch and the load's closing
      checks pass.
    - test_s1_lost_directory: as test_s1_shipped, and the state directory
      deleted after the promotion: `rebalance recover` into a new one
      follows the fail-over (its state file says so; the ring files are
      the derived rings) and apply with it completes the change.
    And with no failpoint that kills the tool:
    - test_s1_dies_in_copy: apply pauses right after s1's migrate_begin
      (rebalance.begun=delay); meanwhile s1's primary is SIGKILLed and its
      standby promoted. apply, running (--timeout-ms 1000,
      --failover-wait-s 60), goes on: its calls to s1's old endpoint
      fail, it follows the fail-over and finishes by itself (exit 0).
    - test_s1_promoted_late: the same, but the standby is promoted only
      once apply's calls to s1 have failed and apply says it waits for s1
      or its fail-over: it follows the promotion and finishes (exit 0).
    - test_s1_restarted: no fail-over. apply A waits for the dead s1; an
      impostor (a shard named s1 started empty at s1's endpoint) answers,
      and A stops (exit 3: it holds no lease of the plan) without touching
      it; apply B, waiting 2 s, stops (exit 3); apply C waits, s1's
      primary is started again on its own data, and C resumes and
      finishes (exit 0): the plan's last ring, s1 at its own endpoint.
    - test_s1_promoted_in_handover: the same without --failover-wait-s
      (a promotion later than the pause may find apply stopped, exit 3:
      then run again it must finish), apply paused at
      rebalance.shipped (the final chunk exported, nothing of the
      handover sent): the promotion's ring is at the step's epoch, so the
      target answers the step's ring epoch_not_newer and refuses the
      commit; apply follows, sends both again, and finishes by itself.

    RL_CASE=PATTERN runs the matching cases only.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "replkit.h"
#include "ring.h"
#include "routerkit.h"
#include "test_rebalance_kit.h"
#include "testkit.h"

#define S_TAG             0x464f5652ull //  "FOVR"
#define S_LEDGER          64
#define S_ACCOUNTS        300
#define S_TRANSFERS       6000 //  at most, per case
#define S_TOOL_MAX_MS     60000
#define S_LOAD_ROUNDS     6    //  load batches before and after the change
#define S_SHORT_ROUNDS    2    //  load batches between the promotion and apply's rerun
#define S_SHORT_CALL_MS   1000 //  their one attempt each
#define S_STEPS_MAX       64
#define S_APPLY_TIMEOUT   "2000" //  apply --timeout-ms
#define S_RUNNING_TIMEOUT "1000" //  the same, of the apply running at the kill (dies_in_copy)
#define S_REPL_TIMEOUT    "400"  //  --repl-timeout-ms of the replicated primary
#define S_CATCH_UP_MS     10000  //  the router serves the shards' final ring within this
#define S_COPY_DELAY_MS   4000   //  test_s1_dies_in_copy: apply's pause after s1's begin
#define S_FAILOVER_WAIT_S "60"   //  --failover-wait-s of the apply running at the kill

typedef struct {
    char state[32], source[32], target[32];
} s_step_t;

typedef struct {
    size_t victim;               //  the shard failed over (0: s1, 3: s4)
    tk_shard_t standby;          //  its standby
    rbk_cluster_t c;             //  s1..s4, R0 and R1, the router
    rbk_load_t load;             //  through the router
    char dir[600];               //  the state directory
    s_step_t steps[S_STEPS_MAX]; //  the plan
    size_t step_count;
    uint64_t base_epoch; //  E: the plan's step k has epoch E + k
    bool promoted;       //  the victim's standby was promoted (s_promote)
} s_ctx_t;

static int64_t s_t0; //  the case's start (s_setup), for the phases' times

//  A phase of the case ended: its time since the case began, on stderr.
static void
s_mark (const char *what)
{
    fprintf (stderr, "  %6.1f s  %s\n", (double) (zclock_mono () - s_t0) / 1000.0, what);
}

static char *
s_path (s_ctx_t *ctx, const char *name, char *out, size_t size)
{
    return rbk_path (ctx->c.h, name, out, size);
}

//  Tools ----------------------------------------------------------------------

//  Spawns `rebalance` with args (NULL-terminated), RL_FAILPOINTS=failpoints
//  (NULL: none) and RL_FAILPOINT_FILE (the points that acted, s_acted), its
//  log "rebalance".
static pid_t
s_spawn (s_ctx_t *ctx, const char *failpoints, const char *const *args)
{
    char env_file[700], acted[600];
    snprintf (env_file, sizeof env_file, "RL_FAILPOINT_FILE=%s",
              s_path (ctx, "failpoints-acted", acted, sizeof acted));
    return rbk_tool_spawn_env (ctx->c.h, failpoints, env_file, args);
}

//  Has failpoint `name` acted in a tool of this case?
static bool
s_acted (s_ctx_t *ctx, const char *name)
{
    char path[600], key[128];
    char *text = harness_read_file (s_path (ctx, "failpoints-acted", path, sizeof path), NULL);
    snprintf (key, sizeof key, "%s ", name);
    bool acted = false;
    for (const char *p = text; p && !acted && (p = strstr (p, key)); p += strlen (key)) {
        acted = p == text || p[-1] == '\n';
    }
    free (text);
    return acted;
}

//  Its exit code, -signal when killed; the log dumped when it hangs.
static int
s_wait (s_ctx_t *ctx, const char *name, pid_t pid)
{
    return rbk_tool_wait (ctx->c.h, name, pid, S_TOOL_MAX_MS);
}

//  `apply R0 R1` with --timeout-ms timeout_ms and, when not NULL,
//  --failover-wait-s wait_s.
static pid_t
s_apply_spawn (s_ctx_t *ctx, const char *failpoints, const char *timeout_ms, const char *wait_s)
{
    const char *args[] = {
        "apply",  ctx->c.r0,   ctx->c.r1,      "--state",  ctx->dir,
        "--cert", ctx->c.cert, "--timeout-ms", timeout_ms, wait_s ? "--failover-wait-s" : NULL,
        wait_s,   NULL};
    return s_spawn (ctx, failpoints, args);
}

static int
s_apply (s_ctx_t *ctx, const char *failpoints)
{
    return s_wait (ctx, "rebalance", s_apply_spawn (ctx, failpoints, S_APPLY_TIMEOUT, NULL));
}

static int
s_cmd (s_ctx_t *ctx, const char *cmd)
{
    const char *args[] = {cmd, "--state", ctx->dir, "--cert", ctx->c.cert, NULL};
    return s_wait (ctx, "rebalance", s_spawn (ctx, NULL, args));
}

//  Fails with the tool's log when `got` is not `want`.
static void
s_expect_tool (s_ctx_t *ctx, const char *what, int got, int want)
{
    if (got != want) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("%s: exit %d, want %d (the rebalance log above)", what, got, want);
    }
}

//  The plan -------------------------------------------------------------------

//  The steps of the plan in the state file (their states as they are now).
static size_t
s_read_steps (s_ctx_t *ctx, s_step_t *steps)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", ctx->dir);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    size_t n = 0;
    for (char *line = strstr (text, "\nstep "); line && n < S_STEPS_MAX;
         line = strstr (line + 1, "\nstep ")) {
        size_t k = 0;
        uint64_t id = 0;
        int got = sscanf (line + 1, "step %zu %31s id %" SCNx64 " source %31s target %31s", &k,
                          steps[n].state, &id, steps[n].source, steps[n].target);
        assert_int_equal (got, 5);
        assert_int_equal (k, n + 1);
        n++;
    }
    free (text);
    return n;
}

//  The plan alone (the tool stops once every ring and the state file are
//  written), its steps, and E.
static void
s_plan (s_ctx_t *ctx)
{
    s_expect_tool (ctx, "apply stopped at rebalance.persisted",
                   s_apply (ctx, "rebalance.persisted=error"), 3);
    ctx->step_count = s_read_steps (ctx, ctx->steps);
    assert_true (ctx->step_count >= 2);
    char path[700], err[256];
    snprintf (path, sizeof path, "%s/ring.0", ctx->dir);
    ring_t *ring = ring_load_file (path, err, sizeof err);
    if (!ring) {
        fail_msg ("%s: %s", path, err);
    }
    ctx->base_epoch = ring_epoch (ring);
    ring_destroy (&ring);
    fprintf (stderr, "plan: %zu steps from epoch %" PRIu64 ":", ctx->step_count, ctx->base_epoch);
    for (size_t k = 0; k < ctx->step_count; k++) {
        fprintf (stderr, " %zu %s->%s", k + 1, ctx->steps[k].source, ctx->steps[k].target);
    }
    fprintf (stderr, "\n");
}

//  The first step (1-based) whose source is `name`; 0 if none.
static size_t
s_step_from (s_ctx_t *ctx, const char *name)
{
    for (size_t k = 1; k <= ctx->step_count; k++) {
        if (strcmp (ctx->steps[k - 1].source, name) == 0) {
            return k;
        }
    }
    return 0;
}

//  Step k is in state `want`, every step before it done.
static void
s_assert_step (s_ctx_t *ctx, size_t k, const char *want)
{
    s_step_t steps[S_STEPS_MAX];
    size_t n = s_read_steps (ctx, steps);
    assert_true (k >= 1 && k <= n);
    if (strcmp (steps[k - 1].state, want) != 0) {
        fail_msg ("%s: step %zu is %s, want %s", ctx->dir, k, steps[k - 1].state, want);
    }
    for (size_t i = 1; i < k; i++) {
        if (strcmp (steps[i - 1].state, "done") != 0) {
            fail_msg ("%s: step %zu is %s before step %zu", ctx->dir, i, steps[i - 1].state, k);
        }
    }
}

//  The cluster ----------------------------------------------------------------

//  The ring the shard at endpoint serves (asserted).
static ring_t *
s_ring_of (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    assert_non_null (c);
    uint8_t *blob = NULL;
    size_t size = 0;
    int rc = rl_client_get_ring (c, &blob, &size, TK_TIMEOUT_MS);
    rl_client_destroy (&c);
    if (rc != 0) {
        fail_msg ("get_ring of %s: %d", endpoint, rc);
    }
    char err[256];
    ring_t *ring = ring_decode (blob, size, err, sizeof err);
    free (blob);
    if (!ring) {
        fail_msg ("the ring of %s: %s", endpoint, err);
    }
    return ring;
}

static uint64_t
s_epoch_of (const char *endpoint)
{
    return rk_status (endpoint).epoch;
}

//  The endpoint of shard i now: its standby's once it was failed over.
static const char *
s_endpoint (s_ctx_t *ctx, size_t i)
{
    return i == ctx->victim && ctx->c.shards[i].pid <= 0 ? ctx->standby.endpoint
                                                         : ctx->c.shards[i].endpoint;
}

//  Waits until the router serves `epoch`.
static void
s_router_at (s_ctx_t *ctx, uint64_t epoch)
{
    int64_t deadline = zclock_mono () + S_CATCH_UP_MS;
    uint64_t seen = 0;
    while ((seen = s_epoch_of (ctx->c.router.endpoint)) < epoch && zclock_mono () < deadline) {
        zclock_sleep (50);
    }
    if (seen != epoch) {
        fail_msg ("the router serves epoch %" PRIu64 ", the shards %" PRIu64 " (after %d ms)", seen,
                  epoch, S_CATCH_UP_MS);
    }
}

static void
s_load (s_ctx_t *ctx, size_t rounds)
{
    for (size_t i = 0; i < rounds; i++) {
        rbk_load_once (&ctx->load);
    }
}

//  A few batches while an arc may be frozen (until apply resumes): one
//  short attempt each; what stays open is sent again later.
static void
s_load_short (s_ctx_t *ctx)
{
    ctx->load.call_ms = S_SHORT_CALL_MS;
    ctx->load.attempts = 1;
    s_load (ctx, S_SHORT_ROUNDS);
    ctx->load.call_ms = RBK_CALL_MS;
    ctx->load.attempts = RBK_ATTEMPTS;
}

//  The victim's primary is SIGKILLed (its standby holds every acknowledged
//  write).
static void
s_kill_primary (s_ctx_t *ctx)
{
    assert_true (tk_shard_stop (ctx->c.h, &ctx->c.shards[ctx->victim], SIGKILL) != -1);
}

//  `rlctl promote` of the victim's standby: exit 0, serving, and every
//  shard serves the promotion's ring.
static void
s_promote (s_ctx_t *ctx)
{
    const char *name = ctx->c.shards[ctx->victim].name;
    char *out = NULL;
    int64_t t0 = zclock_mono ();
    int rc = rbk_rlctl_promote (&ctx->c, 1, name, ctx->standby.endpoint, &out);
    if (rc != 0 || !strstr (out, "done:")) {
        fail_msg ("rlctl promote %s %s: exit %d; said:\n%s", name, ctx->standby.endpoint, rc, out);
    }
    free (out);
    ctx->promoted = true;
    rk_wait_serving (ctx->standby.endpoint);
    //  One ring everywhere: the promotion's is newer than any served, the
    //  promoted shard's own included (a target that took a step's ring).
    char *first = NULL;
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        ring_t *served = s_ring_of (s_endpoint (ctx, i));
        char *text = ring_to_text (served);
        assert_non_null (text);
        ring_destroy (&served);
        if (first && strcmp (first, text) != 0) {
            fail_msg ("after the promotion %s serves:\n%s\nand %s:\n%s", ctx->c.shards[0].name,
                      first, ctx->c.shards[i].name, text);
        }
        if (first) {
            free (text);
        } else {
            first = text;
        }
    }
    free (first);
    fprintf (stderr, "promoted %s at %s in %ld ms: epoch %" PRIu64 "\n", name,
             ctx->standby.endpoint, (long) (zclock_mono () - t0),
             s_epoch_of (ctx->standby.endpoint));
}

//  After the change: check is clean, no lease is left, every shard and the
//  router serve R1 with the victim at its standby's endpoint, at one epoch
//  above E + n; then more load and the kit's closing checks.
static void
s_completed (s_ctx_t *ctx, const char *name)
{
    s_expect_tool (ctx, "rebalance check", s_cmd (ctx, "check"), 0);
    char err[256];
    ring_t *want = ring_load_file (ctx->c.r1, err, sizeof err);
    assert_non_null (want);
    if (ctx->promoted) {
        assert_int_equal (
            ring_set_endpoint (want, ctx->c.shards[ctx->victim].name, ctx->standby.endpoint),
            RING_OK);
    }
    uint64_t epoch = 0;
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        const char *endpoint = s_endpoint (ctx, i);
        ring_t *served = s_ring_of (endpoint);
        if (i == 0) {
            epoch = ring_epoch (served);
        }
        ring_set_epoch (want, ring_epoch (served));
        char *a = ring_to_text (served);
        char *b = ring_to_text (want);
        assert_true (a && b);
        if (ring_epoch (served) != epoch || strcmp (a, b) != 0) {
            fail_msg ("%s (%s) serves epoch %" PRIu64 " (s1: %" PRIu64 "):\n%s\nwant:\n%s",
                      ctx->c.shards[i].name, endpoint, ring_epoch (served), epoch, a, b);
        }
        free (a);
        free (b);
        ring_destroy (&served);
        rl_client_t *c = rl_client_new (endpoint);
        assert_non_null (c);
        rl_migrate_rec_t stored;
        uint64_t holder = 0;
        assert_int_equal (
            rl_client_migrate_lease (c, 0, RL_MIGRATE_LEASE_READ, &stored, &holder, TK_TIMEOUT_MS),
            0);
        rl_client_destroy (&c);
        if (holder != 0) {
            fail_msg ("%s still holds the lease of plan %" PRIx64, ctx->c.shards[i].name, holder);
        }
    }
    ring_destroy (&want);
    uint64_t last = ctx->base_epoch + ctx->step_count;
    if (ctx->promoted ? epoch <= last || epoch < 3 : epoch != last) {
        fail_msg ("the cluster serves epoch %" PRIu64 ", the plan's last is %" PRIu64 "%s", epoch,
                  last, ctx->promoted ? " and the promotion took one more" : "");
    }
    s_router_at (ctx, epoch);
    fprintf (stderr,
             "%s: every shard and the router serve epoch %" PRIu64 " (the plan's: %" PRIu64
             "..%" PRIu64 ")\n",
             name, epoch, ctx->base_epoch, last);
    s_load (ctx, S_LOAD_ROUNDS);
    rbk_check_all (&ctx->load, name, NULL, 0, 1);
}

//  Setup ----------------------------------------------------------------------

//  The victim's standby, started before its primary, which gets --standby.
static void
s_hook (rbk_cluster_t *cluster, size_t index, void *arg)
{
    s_ctx_t *ctx = arg;
    if (index == ctx->victim) {
        rbk_standby_start (cluster, index, &ctx->standby, S_REPL_TIMEOUT);
    }
}

static int
s_setup (void **state)
{
    s_t0 = zclock_mono ();
    size_t victim = *(size_t *) *state;
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    ctx->victim = victim;
    rbk_cluster_start_with (&ctx->c, "test_rebalance_failover", "nosync", s_hook, ctx);
    rbk_wait_streaming (ctx->c.shards[ctx->victim].endpoint);
    s_path (ctx, "plan", ctx->dir, sizeof ctx->dir);
    rbk_load_init (&ctx->load, ctx->c.client, S_TAG, S_LEDGER, S_ACCOUNTS, S_TRANSFERS, 11);
    rbk_create_accounts (&ctx->load);
    rbk_load_ring_file (&ctx->load, ctx->c.r0);
    s_mark ("cluster up, accounts made");
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    if (ctx->standby.pid > 0) {
        tk_shard_stop (ctx->c.h, &ctx->standby, SIGTERM);
    }
    rbk_load_destroy (&ctx->load);
    rbk_cluster_stop (&ctx->c);
    free (ctx);
    s_mark ("stopped");
    return 0;
}

//  Cases ----------------------------------------------------------------------

//  apply killed at failpoint `point` in step k (its state then `landed`),
//  the victim failed over, apply run again to its end.
static void
s_case (s_ctx_t *ctx, const char *name, const char *point, size_t k, const char *landed)
{
    s_load (ctx, S_LOAD_ROUNDS);
    char fp[128];
    snprintf (fp, sizeof fp, "%s=crash@%zu", point, k);
    fprintf (stderr, "%s: %s, step %zu (%s -> %s)\n", name, fp, k, ctx->steps[k - 1].source,
             ctx->steps[k - 1].target);
    s_expect_tool (ctx, fp, s_apply (ctx, fp), -SIGKILL);
    s_assert_step (ctx, k, landed);
    s_mark ("apply killed");
    s_kill_primary (ctx);
    s_promote (ctx);
    s_mark ("promoted");
    s_load_short (ctx);
    s_expect_tool (ctx, "apply after the promotion", s_apply (ctx, NULL), 0);
    s_mark ("apply after the promotion: exit 0");
    s_completed (ctx, name);
    s_mark ("checked");
}

//  Killed at `point` in s1's first step.
static void
s_s1_case (void **state, const char *name, const char *point, const char *landed)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    size_t k = s_step_from (ctx, "s1");
    assert_true (k > 0);
    s_case (ctx, name, point, k, landed);
}

static void
test_s1_begun (void **state)
{
    s_s1_case (state, "s1 begun", "rebalance.begun", "copying");
}

static void
test_s1_frozen (void **state)
{
    s_s1_case (state, "s1 frozen", "rebalance.frozen", "frozen");
}

static void
test_s1_shipped (void **state)
{
    s_s1_case (state, "s1 shipped", "rebalance.shipped", "handover");
}

static void
test_s1_target_ring (void **state)
{
    s_s1_case (state, "s1 target_ring", "rebalance.target_ring", "handover");
}

//  Between two steps: after the step before s1's (s1's step then begins
//  at the standby's endpoint), or after s1's own when it is step 1.
static void
test_s1_between_steps (void **state)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    size_t k = s_step_from (ctx, "s1");
    assert_true (k > 0);
    s_case (ctx, "s1 between steps", "rebalance.step_done", k > 1 ? k - 1 : k, "done");
}

//  s4, the target, failed over once it took step 2's ring and commit (its
//  standby holds them; s1..s3 serve step 1's ring).
static void
test_s4_target_ring (void **state)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    assert_string_equal (ctx->steps[1].target, "s4");
    s_case (ctx, "s4 target_ring", "rebalance.target_ring", 2, "handover");
}

//  What happens to s1 while apply runs (s_running_case).
typedef enum {
    S_PROMOTED,        //  killed and promoted within apply's pause (--failover-wait-s 60)
    S_PROMOTED_NOWAIT, //  the same, apply without --failover-wait-s
    S_PROMOTED_LATE    //  killed; promoted once apply waits for it (--failover-wait-s 60)
} s_fate_t;

//  The size of apply's log now: what a later run says is after it.
static size_t
s_log_size (s_ctx_t *ctx)
{
    char path[600];
    struct stat st;
    return stat (s_path (ctx, "rebalance.log", path, sizeof path), &st) == 0 ? (size_t) st.st_size
                                                                             : 0;
}

//  apply's log holds `text` after offset `from`.
static bool
s_apply_said (s_ctx_t *ctx, size_t from, const char *text)
{
    char path[600];
    size_t size = 0;
    char *log = harness_read_file (s_path (ctx, "rebalance.log", path, sizeof path), &size);
    bool said = log && from <= size && strstr (log + from, text);
    free (log);
    return said;
}

//  The same, or the test fails (`what`), apply's log dumped.
static void
s_assert_said (s_ctx_t *ctx, size_t from, const char *text, const char *what)
{
    if (!s_apply_said (ctx, from, text)) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("%s: apply did not say '%s'", what, text);
    }
}

//  Waits until the apply `pid` (its log from `from`) says `text`; fails if
//  it exits first or within S_TOOL_MAX_MS.
static void
s_until_said (s_ctx_t *ctx, pid_t pid, size_t from, const char *text)
{
    int64_t deadline = zclock_mono () + S_TOOL_MAX_MS;
    while (!s_apply_said (ctx, from, text)) {
        int ws = 0;
        if (harness_wait_exit (ctx->c.h, pid, 0, &ws) == 0 || zclock_mono () > deadline) {
            harness_dump_log (ctx->c.h, "rebalance");
            fail_msg ("apply never said '%s'", text);
        }
        zclock_sleep (20);
    }
}

#define S_WAITING "does not answer: waiting up to "

//  apply (--failover-wait-s wait_s, NULL: none) started and paused
//  (`point`=delay) in s1's step k, whose state is then `landed`; s1's
//  primary SIGKILLed during the pause. Its pid.
static pid_t
s_pause_and_kill (s_ctx_t *ctx, const char *name, const char *point, size_t k, const char *landed,
                  const char *wait_s)
{
    char fp[128];
    snprintf (fp, sizeof fp, "%s=delay:%d@%zu", point, S_COPY_DELAY_MS, k);
    pid_t pid = s_apply_spawn (ctx, fp, S_RUNNING_TIMEOUT, wait_s);
    int64_t deadline = zclock_mono () + S_TOOL_MAX_MS;
    while (!s_acted (ctx, point)) {
        int ws = 0;
        if (harness_wait_exit (ctx->c.h, pid, 0, &ws) == 0 || zclock_mono () > deadline) {
            harness_dump_log (ctx->c.h, "rebalance");
            fail_msg ("apply never paused in step %zu (%s)", k, fp);
        }
        zclock_sleep (5);
    }
    s_assert_step (ctx, k, landed);
    s_kill_primary (ctx);
    fprintf (stderr, "%s: killed in step %zu (%s -> %s), apply paused\n", name, k,
             ctx->steps[k - 1].source, ctx->steps[k - 1].target);
    return pid;
}

//  apply paused (`point`=delay) in s1's step k, whose state is `landed`;
//  meanwhile s1's primary is SIGKILLed and, by `fate`, its standby
//  promoted during the pause, or once apply's calls to it failed and
//  apply said it waits (--failover-wait-s). apply goes on, follows the
//  fail-over and finishes by itself: exit 0. Without --failover-wait-s
//  (S_PROMOTED_NOWAIT), a promotion later than the pause (a loaded
//  machine) may find it stopped (exit 3), and then run again it must
//  finish.
static void
s_running_case (s_ctx_t *ctx, const char *name, const char *point, const char *landed,
                s_fate_t fate)
{
    s_plan (ctx);
    size_t k = s_step_from (ctx, "s1");
    assert_true (k > 0);
    s_load (ctx, S_LOAD_ROUNDS);
    size_t from = s_log_size (ctx);
    bool wait = fate != S_PROMOTED_NOWAIT;
    int64_t paused = zclock_mono ();
    pid_t pid = s_pause_and_kill (ctx, name, point, k, landed, wait ? S_FAILOVER_WAIT_S : NULL);
    if (fate == S_PROMOTED_LATE) {
        s_until_said (ctx, pid, from, S_WAITING S_FAILOVER_WAIT_S " s");
        s_mark ("apply waits for s1");
    }
    s_promote (ctx);
    s_mark ("promoted");
    bool in_time = zclock_mono () - paused < S_COPY_DELAY_MS;
    s_load_short (ctx);
    int rc = s_wait (ctx, "rebalance", pid);
    fprintf (stderr, "%s: the apply running at the kill exited %d%s\n", name, rc,
             in_time ? "" : " (promoted after its pause)");
    s_mark ("the apply running at the kill exited");
    bool strict = wait || in_time;
    if (rc < 0 || (strict && rc != 0)) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("the apply running at the kill: exit %d", rc);
    }
    if (fate == S_PROMOTED_LATE) {
        s_assert_said (ctx, from, "after the fail-over", name);
    }
    if (rc != 0) {
        s_expect_tool (ctx, "apply after the promotion", s_apply (ctx, NULL), 0);
        s_mark ("apply after the promotion: exit 0");
    }
    s_completed (ctx, name);
    s_mark ("checked");
}

//  Paused right after s1's begin: its next calls go to s1's dead endpoint.
static void
test_s1_dies_in_copy (void **state)
{
    s_running_case (*state, "s1 dies in copy", "rebalance.begun", "copying", S_PROMOTED);
}

//  The same, promoted only once apply's calls to s1 failed and it waits.
static void
test_s1_promoted_late (void **state)
{
    s_running_case (*state, "s1 promoted late", "rebalance.begun", "copying", S_PROMOTED_LATE);
}

//  s1 comes back without a fail-over. apply A (--failover-wait-s 60)
//  paused in s1's step, s1's primary SIGKILLed: A waits. An impostor, a
//  shard named s1 started empty at s1's endpoint (its key, its own data
//  directory, no standby), answers: A must not resume onto it (it holds
//  no lease of the plan) and stops, exit 3; the impostor still serves the
//  ring it started with. It is stopped. apply B (--failover-wait-s 2)
//  waits 2 s for the dead s1 and stops, exit 3. apply C (60) waits; s1's
//  primary is started again on its own data: C resumes and finishes, exit
//  0, and the cluster ends on the plan's last ring, s1 at its endpoint.
static void
test_s1_restarted (void **state)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    size_t k = s_step_from (ctx, "s1");
    assert_true (k > 0);
    s_load (ctx, S_LOAD_ROUNDS);
    tk_shard_t *s1 = &ctx->c.shards[ctx->victim];
    size_t from = s_log_size (ctx);
    pid_t pid = s_pause_and_kill (ctx, "s1 restarted", "rebalance.begun", k, "copying",
                                  S_FAILOVER_WAIT_S);
    s_until_said (ctx, pid, from, S_WAITING S_FAILOVER_WAIT_S " s");
    s_mark ("apply A waits for s1");
    tk_shard_t impostor = *s1;
    snprintf (impostor.data_dir, sizeof impostor.data_dir, "%s/s1-impostor",
              harness_dir (ctx->c.h));
    memset (impostor.args, 0, sizeof impostor.args); //  no --standby
    assert_true (tk_shard_start (ctx->c.h, &impostor) > 0);
    rk_wait_serving (impostor.endpoint);
    s_expect_tool (ctx, "apply A beside the impostor", s_wait (ctx, "rebalance", pid), 3);
    s_assert_said (ctx, from, "answers again, but without this plan's lease: not resumed",
                   "apply A");
    assert_int_equal (s_epoch_of (impostor.endpoint), ctx->base_epoch);
    assert_true (tk_shard_stop (ctx->c.h, &impostor, SIGTERM) != -1);
    s_mark ("apply A refused the impostor");
    from = s_log_size (ctx);
    s_expect_tool (ctx, "apply B, 2 s for s1",
                   s_wait (ctx, "rebalance", s_apply_spawn (ctx, NULL, S_RUNNING_TIMEOUT, "2")), 3);
    s_assert_said (ctx, from, S_WAITING "2 s", "apply B");
    s_assert_said (ctx, from, "no answer nor fail-over within 2 s", "apply B");
    s_mark ("apply B waited 2 s");
    from = s_log_size (ctx);
    pid = s_apply_spawn (ctx, NULL, S_RUNNING_TIMEOUT, S_FAILOVER_WAIT_S);
    s_until_said (ctx, pid, from, S_WAITING S_FAILOVER_WAIT_S " s");
    assert_true (tk_shard_start (ctx->c.h, s1) > 0);
    rk_wait_serving (s1->endpoint);
    s_mark ("s1 restarted");
    s_load_short (ctx);
    s_expect_tool (ctx, "apply C, s1 restarted", s_wait (ctx, "rebalance", pid), 0);
    s_assert_said (ctx, from, "every shard of the change answers again", "apply C");
    s_completed (ctx, "s1 restarted");
    s_mark ("checked");
}

//  Paused with s1's final chunk exported, before the handover: the
//  promotion's ring (the ring before the step, s1 moved) is at the step's
//  epoch, so the target answers the step's ring epoch_not_newer and
//  refuses the commit sent with it; apply follows the fail-over, sends the
//  step's ring at its new epoch and the commit again, and goes on.
static void
test_s1_promoted_in_handover (void **state)
{
    s_running_case (*state, "s1 promoted in handover", "rebalance.shipped", "handover",
                    S_PROMOTED_NOWAIT);
}

//  Ring 0 of the plan with s2 at `endpoint`, at `epoch`, loaded by hand
//  into the shards `into` (a bitmask of indexes): what apply must not take
//  for a fail-over when nothing answers there as s2.
static void
s_load_by_hand (s_ctx_t *ctx, const char *endpoint, uint64_t epoch, unsigned into)
{
    char path[700], err[256];
    snprintf (path, sizeof path, "%s/ring.0", ctx->dir);
    ring_t *ring = ring_load_file (path, err, sizeof err);
    assert_non_null (ring);
    assert_int_equal (ring_set_endpoint (ring, "s2", endpoint), RING_OK);
    ring_set_epoch (ring, epoch);
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    ring_encode (ring, blob, size);
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        if (into & (1u << i)) {
            rl_client_t *c = rl_client_new (ctx->c.shards[i].endpoint);
            assert_non_null (c);
            assert_int_equal (rl_client_load_ring (c, blob, size, TK_TIMEOUT_MS), 0);
            rl_client_destroy (&c);
        }
    }
    free (blob);
    ring_destroy (&ring);
}

//  The state file holds no fail-over.
static void
s_assert_no_failover (s_ctx_t *ctx)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", ctx->dir);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    if (strstr (text, "failover_shift") || strstr (text, "\nendpoint ")) {
        fail_msg ("%s follows a fail-over:\n%s", path, text);
    }
    free (text);
}

//  A ring that only looks like a fail-over's (ring 0 of the plan with s2,
//  which is alive and has no standby, at another endpoint, one epoch up,
//  loaded by hand into s3) is not followed: apply exits 6, and its state
//  file does not change. First an endpoint where nothing listens, then s3's
//  own (two shards at one endpoint). Then every shard gets ring 0 back at
//  a newer epoch, and the load's closing checks pass.
static void
test_not_a_failover (void **state)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    s_load (ctx, S_LOAD_ROUNDS);
    char nowhere[64];
    snprintf (nowhere, sizeof nowhere, "tcp://127.0.0.1:%d", harness_free_port ());
    s_load_by_hand (ctx, nowhere, ctx->base_epoch + 1, 1u << 2);
    s_expect_tool (ctx, "apply beside a ring that moves s2 to nothing", s_apply (ctx, NULL), 6);
    s_assert_no_failover (ctx);
    s_load_by_hand (ctx, ctx->c.shards[2].endpoint, ctx->base_epoch + 2, 1u << 2);
    s_expect_tool (ctx, "apply beside a ring that moves s2 to s3's endpoint", s_apply (ctx, NULL),
                   6);
    s_assert_no_failover (ctx);
    s_mark ("apply refused both");
    s_load_by_hand (ctx, ctx->c.shards[1].endpoint, ctx->base_epoch + 3, 0xfu);
    s_router_at (ctx, ctx->base_epoch + 3);
    s_load (ctx, S_LOAD_ROUNDS);
    rbk_check_all (&ctx->load, "not a fail-over", NULL, 0, 1);
    s_mark ("checked");
}

//  The promotion meets mixed rings: apply killed in s1's step once s4 (the
//  target) took the step's ring and commit; s1's primary killed; s4 stopped
//  (SIGSTOP) while rlctl promote reads the rings, so its base is the ring
//  before the step: exit 1, s4 not reached. s4 continued, the same promote
//  run again finds s4's ring at the promotion's epoch and makes a newer one
//  from it: exit 0, one ring everywhere; apply completes the change.
static void
test_s1_mixed_rings (void **state)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    size_t k = s_step_from (ctx, "s1");
    assert_true (k > 0);
    assert_string_equal (ctx->steps[k - 1].target, "s4");
    s_load (ctx, S_LOAD_ROUNDS);
    char fp[128];
    snprintf (fp, sizeof fp, "rebalance.target_ring=crash@%zu", k);
    s_expect_tool (ctx, fp, s_apply (ctx, fp), -SIGKILL);
    s_assert_step (ctx, k, "handover");
    s_kill_primary (ctx);
    assert_int_equal (harness_kill (ctx->c.h, ctx->c.shards[3].pid, SIGSTOP), 0);
    char *out = NULL;
    int rc = rbk_rlctl_promote (&ctx->c, 1, "s1", ctx->standby.endpoint, &out);
    assert_int_equal (harness_kill (ctx->c.h, ctx->c.shards[3].pid, SIGCONT), 0);
    if (rc != 1 || !strstr (out, "INCOMPLETE")) {
        fail_msg ("rlctl promote with s4 stopped: exit %d, want 1 (INCOMPLETE); said:\n%s", rc,
                  out);
    }
    free (out);
    s_mark ("promoted, s4 not reached");
    s_promote (ctx);
    s_mark ("promoted again: one ring");
    s_load_short (ctx);
    s_expect_tool (ctx, "apply after the promotion", s_apply (ctx, NULL), 0);
    s_completed (ctx, "s1 mixed rings");
    s_mark ("checked");
}

//  The state directory lost as well: apply killed with s1's final chunk
//  shipped (the step in its handover), s1's primary killed and its standby
//  promoted, then the directory deleted. `rebalance recover` into a new one
//  follows the fail-over (exit 0; its state file says failover_shift and
//  s1's new endpoint; the ring files stay as derived), and apply with it
//  completes the change.
static void
test_s1_lost_directory (void **state)
{
    s_ctx_t *ctx = *state;
    s_plan (ctx);
    size_t k = s_step_from (ctx, "s1");
    assert_true (k > 0);
    s_load (ctx, S_LOAD_ROUNDS);
    char fp[128];
    snprintf (fp, sizeof fp, "rebalance.shipped=crash@%zu", k);
    s_expect_tool (ctx, fp, s_apply (ctx, fp), -SIGKILL);
    s_assert_step (ctx, k, "handover");
    char ring0[700];
    snprintf (ring0, sizeof ring0, "%s/ring.0", ctx->dir);
    char *derived0 = harness_read_file (ring0, NULL);
    assert_non_null (derived0);
    s_kill_primary (ctx);
    s_promote (ctx);
    s_mark ("promoted");
    char command[1600];
    snprintf (command, sizeof command, "rm -rf '%s'", ctx->dir);
    assert_int_equal (system (command), 0);
    const char *argv[] = {"recover",   "--from",       ctx->c.r0,       "--to",
                          ctx->c.r1,   "--state",      ctx->dir,        "--cert",
                          ctx->c.cert, "--timeout-ms", S_APPLY_TIMEOUT, NULL};
    s_expect_tool (ctx, "recover after the promotion",
                   s_wait (ctx, "rebalance", s_spawn (ctx, NULL, argv)), 0);
    s_mark ("recovered");
    char path[700];
    snprintf (path, sizeof path, "%s/state", ctx->dir);
    char *text = harness_read_file (path, NULL);
    char want[300];
    snprintf (want, sizeof want, "\nendpoint s1 %s\n", ctx->standby.endpoint);
    if (!text || !strstr (text, "\nfailover_shift ") || !strstr (text, want)) {
        fail_msg ("%s does not follow the fail-over:\n%s", path, text ? text : "(none)");
    }
    free (text);
    char *recovered0 = harness_read_file (ring0, NULL);
    assert_non_null (recovered0);
    assert_string_equal (recovered0, derived0); //  the ring files as derived
    free (recovered0);
    free (derived0);
    s_assert_step (ctx, k, "frozen"); //  recover resumes a shipped arc from its freeze
    s_load_short (ctx);
    s_expect_tool (ctx, "apply with the recovered directory", s_apply (ctx, NULL), 0);
    s_mark ("apply with the recovered directory: exit 0");
    s_completed (ctx, "s1 lost directory");
    s_mark ("checked");
}

static size_t s_s1 = 0, s_s4 = 3;

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown (test_s1_begun, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_frozen, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_shipped, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_target_ring, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_between_steps, s_setup, s_teardown,
                                                  &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s4_target_ring, s_setup, s_teardown, &s_s4),
        cmocka_unit_test_prestate_setup_teardown (test_s1_dies_in_copy, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_promoted_in_handover, s_setup, s_teardown,
                                                  &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_promoted_late, s_setup, s_teardown,
                                                  &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_restarted, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_mixed_rings, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_not_a_failover, s_setup, s_teardown, &s_s1),
        cmocka_unit_test_prestate_setup_teardown (test_s1_lost_directory, s_setup, s_teardown,
                                                  &s_s1),
    };
    //  RL_CASE=PATTERN: only the cases whose names match (cmocka's filter).
    if (getenv ("RL_CASE") && *getenv ("RL_CASE")) {
        cmocka_set_test_filter (getenv ("RL_CASE"));
    }
    return cmocka_run_group_tests (tests, NULL, NULL);
}
