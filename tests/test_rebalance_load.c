/*  test_rebalance_load.c: `rebalance apply` under load with a nemesis
    (docs/rebalance.md, docs/testing.md): the reweight run and the nemesis
    run of the live rebalancing (the grow and the shrink under load, with
    the tool killed at each of its steps, are test_rebalance.c).

    The cluster, for each case: shards s1..s3 serve ring R0 (epoch 1,
    security on), s4 runs with R0 too (not named there, it owns nothing),
    one router learns every newer ring from the shards. The test process
    is the load (test_rebalance_kit.h): same-shard and cross-shard pairs,
    accounts with limit flags, open outcomes sent again with their ids.

    test_reweight: s2's weight goes from 1 to 0.5 (R0 -> R1, what `plan
    --reweight s2=0.5` writes): its arcs move to s1 and s3 under load,
    one `apply` to its end.

    test_nemesis: the cluster grows to s4 (R0 + s4) under load while a
    nemesis, for L_NEMESIS_MS of wall time (a bound by time, not by
    count), every 1.5-3.5 s SIGKILLs one of s1..s4, the router or the
    `rebalance apply` tool (the kind drawn from a bag of the three
    shuffled every three kills, the shard at random), and brings it
    back: a shard
    or the router restarted L_RESTART_MS later (the shard with its first
    ring file: its stored ring is newer), the tool run again with the same
    arguments at once (it must resume the same plan: its plan id never
    changes). An apply that stops by itself
    with exit 3 (a shard it needed was down) is run again too. Each kill
    is logged with the phase it hit, read from the tool's state file at
    that instant: `copy` (the step's state `copying`), `freeze`
    (`frozen`: the source answers frozen in the arc, the drain and the
    final round), `handover` (the step's ring being published, commits,
    cleanup), or `between` steps. The run fails unless kills landed in the
    copy, the freeze and the handover, and the migration completed (apply
    exits 0, check is clean, every shard serves the last ring with every
    arc received): a run that only rolled back would prove nothing.

    The knob: a step of this cluster takes a few tens of milliseconds, so
    kills every few seconds would nearly always land between steps. The
    tool runs with three of its own failpoints set to delay:
    `rebalance.chunk` (each chunk copied), `rebalance.frozen` (after the
    freeze is answered) and `rebalance.target_ring` (the step's ring in the
    target, before its commit), so that each phase lasts hundreds of
    milliseconds; its --freeze-max-ms is raised to match. The shards and
    the router run unchanged. When the instant drawn for a kill falls in a
    phase that was already hit while one was not, the nemesis waits up to
    L_AIM_MS more for a missing phase (still one kill every few seconds).
    While a phase has not been hit, the nemesis goes on past L_NEMESIS_MS
    (bounded by L_APPLY_MAX_MS), with the knob on.

    Both cases end with the closing checks of every run (rbk_check_all):
    open outcomes settled, exactly once over every id, a replay of every
    id answering its original outcome, and the conservation check with
    nothing pending or reserved.
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

#include "rl_rand.h"
#include "routerkit.h"
#include "test_rebalance_kit.h"
#include "testkit.h"

#define L_TAG           0x524c4f41ull //  "RLOA"
#define L_LEDGER        62
#define L_ACCOUNTS      240
#define L_SENT_MAX      100000
#define L_LOAD_PAUSE_MS 3     //  between two batches of the load
#define L_APPLY_MAX_MS  90000 //  one change, from the first apply to its end
#define L_CMD_MAX_MS    20000 //  a status or check
#define L_ENTRIES       "16"  //  entries a chunk: several chunks an arc
//  The nemesis.
#define L_NEMESIS_MS    20000 //  kills during this long (wall time)
#define L_KILL_MIN_MS   1500  //  between two kills: 1.5-3.5 s
#define L_KILL_SPAN_MS  2000
#define L_AIM_MS        4000 //  a kill waits at most this long for a phase not hit yet
#define L_RESTART_MS    300  //  a killed shard or router comes back after this
#define L_FREEZE_MAX_MS "5000"
#define L_KNOB          "rebalance.chunk=delay:15,rebalance.frozen=delay:500,rebalance.target_ring=delay:500"

typedef struct {
    rbk_cluster_t c; //  s1..s4, R0 and R1 (the grow), the router
    rbk_load_t load;
    uint64_t rng;
} l_ctx_t;

static char *
l_path (l_ctx_t *ctx, const char *name, char *out, size_t size)
{
    return rbk_path (ctx->c.h, name, out, size);
}

//  Setup -----------------------------------------------------------------------

static int
l_setup (void **state)
{
    l_ctx_t *ctx = calloc (1, sizeof (l_ctx_t));
    assert_non_null (ctx);
    rbk_cluster_start (&ctx->c, "test_rebalance_load", "nosync");
    ctx->rng = 0x6e656d65;
    rbk_load_init (&ctx->load, ctx->c.client, L_TAG, L_LEDGER, L_ACCOUNTS, L_SENT_MAX, 0x10ad);
    rbk_create_accounts (&ctx->load);
    rbk_load_ring_file (&ctx->load, ctx->c.r0);
    for (int i = 0; i < 50; i++) {
        rbk_load_once (&ctx->load); //  some history before the change
    }
    *state = ctx;
    return 0;
}

static int
l_teardown (void **state)
{
    l_ctx_t *ctx = *state;
    rbk_cluster_stop (&ctx->c);
    rbk_load_destroy (&ctx->load);
    free (ctx);
    return 0;
}

//  The tool ---------------------------------------------------------------------

//  apply R0 -> `to` with state `dir` (failpoints: NULL or the knob).
static pid_t
l_apply_spawn (l_ctx_t *ctx, const char *to, const char *dir, const char *failpoints)
{
    const char *args[] = {"apply",
                          ctx->c.r0,
                          to,
                          "--state",
                          dir,
                          "--cert",
                          ctx->c.cert,
                          "--entries",
                          L_ENTRIES,
                          "--freeze-max-ms",
                          L_FREEZE_MAX_MS,
                          "--timeout-ms",
                          "1000",
                          "--max-retries",
                          "100",
                          NULL};
    return rbk_tool_spawn (ctx->c.h, failpoints, args);
}

//  A command to its end (no load): its exit code.
static int
l_cmd (l_ctx_t *ctx, const char *cmd, const char *dir)
{
    const char *args[] = {cmd, "--state", dir, "--cert", ctx->c.cert, NULL};
    pid_t pid = rbk_tool_spawn (ctx->c.h, NULL, args);
    int ws = 0;
    if (harness_wait_exit (ctx->c.h, pid, L_CMD_MAX_MS, &ws) != 0) {
        harness_kill (ctx->c.h, pid, SIGKILL);
        (void) harness_wait_exit (ctx->c.h, pid, L_CMD_MAX_MS, NULL);
        fail_msg ("rebalance %s did not end", cmd);
    }
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

//  The ring of `path` with `change` applied, at epoch 2, saved to `out`.
typedef enum { L_GROW, L_REWEIGHT } l_change_t;

static void
l_plan (l_ctx_t *ctx, l_change_t change, char *out, size_t size)
{
    if (change == L_GROW) {
        snprintf (out, size, "%s", ctx->c.r1); //  R0 + s4 at epoch 2
        return;
    }
    char err[256];
    ring_t *ring = ring_load_file (ctx->c.r0, err, sizeof err);
    assert_non_null (ring);
    assert_int_equal (ring_reweight_shard (ring, "s2", 0.5), RING_OK);
    ring_set_epoch (ring, 2);
    l_path (ctx, "rw.ring", out, size);
    assert_int_equal (ring_save_file (ring, out), RING_OK);
    ring_destroy (&ring);
}

//  Every shard of the last ring serves it, every arc received; s4 holds
//  accounts after a grow.
static void
l_check_landed (l_ctx_t *ctx, const char *last, bool s4_holds)
{
    char err[256];
    ring_t *ring = ring_load_file (last, err, sizeof err);
    assert_non_null (ring);
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        if (ring_shard_find (ring, ctx->c.shards[i].name) < 0) {
            continue;
        }
        rl_client_t *c = rl_client_new (ctx->c.shards[i].endpoint);
        assert_non_null (c);
        rl_status_rec_t st;
        assert_int_equal (rl_client_status (c, &st, TK_TIMEOUT_MS), 0);
        rl_client_destroy (&c);
        assert_int_equal (st.epoch, ring_epoch (ring));
        assert_int_equal (st.arcs_unreceived, 0);
        if (i == 3 && s4_holds) {
            assert_true (st.accounts > 0);
        }
    }
    ring_destroy (&ring);
}

//  The plan id in the state file of `dir` (malloc'd), or NULL while none.
static char *
l_plan_id (const char *dir)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir);
    char *text = harness_read_file (path, NULL);
    char *at = text ? strstr (text, "\nplan_id ") : NULL;
    char *id = NULL;
    if (at) {
        size_t len = strcspn (at + 9, "\n");
        id = strndup (at + 9, len);
        assert_non_null (id);
    }
    free (text);
    return id;
}

//  The step count of the plan in `dir` and, into `last`, its last ring.
static size_t
l_plan_steps (const char *dir, char *last, size_t size)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    const char *at = strstr (text, "\nsteps ");
    assert_non_null (at);
    size_t steps = (size_t) strtoul (at + 7, NULL, 10);
    free (text);
    snprintf (path, sizeof path, "%s/ring.%zu", dir, steps);
    snprintf (last, size, "%s", path);
    return steps;
}

//  Cases ------------------------------------------------------------------------

static void
test_reweight (void **state)
{
    l_ctx_t *ctx = *state;
    char to[600], dir[600];
    l_plan (ctx, L_REWEIGHT, to, sizeof to);
    l_path (ctx, "reweight", dir, sizeof dir);
    int64_t t0 = zclock_mono ();
    pid_t pid = l_apply_spawn (ctx, to, dir, NULL);
    int ws = 0;
    while (harness_wait_exit (ctx->c.h, pid, 0, &ws) != 0) {
        if (zclock_mono () - t0 > L_APPLY_MAX_MS) {
            harness_dump_log (ctx->c.h, "rebalance");
            fail_msg ("the reweight did not end within %d ms", L_APPLY_MAX_MS);
        }
        rbk_load_once (&ctx->load);
        zclock_sleep (L_LOAD_PAUSE_MS);
    }
    if (!WIFEXITED (ws) || WEXITSTATUS (ws) != 0) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("the reweight's apply: wait status %d", ws);
    }
    char last[700];
    size_t steps = l_plan_steps (dir, last, sizeof last);
    assert_true (steps > 0);
    fprintf (stderr, "reweight: s2 1 -> 0.5 in %zu steps, %.1f s under load\n", steps,
             (double) (zclock_mono () - t0) / 1000.0);
    assert_int_equal (l_cmd (ctx, "check", dir), 0);
    l_check_landed (ctx, last, false);
    rbk_check_all (&ctx->load, "reweight", NULL, 0, 500);
}

//  The nemesis -------------------------------------------------------------------

typedef enum { L_COPY, L_FREEZE, L_HANDOVER, L_BETWEEN, L_PHASES } l_phase_t;
static const char *l_phase_names[] = {"copy", "freeze", "handover", "between steps"};

//  The phase the tool's state file says now, and the step (1-based; 0: none).
static l_phase_t
l_phase (const char *dir, size_t *step_p)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir);
    char *text = harness_read_file (path, NULL);
    l_phase_t phase = L_BETWEEN;
    *step_p = 0;
    for (char *line = text ? strstr (text, "\nstep ") : NULL; line;
         line = strstr (line + 1, "\nstep ")) {
        size_t k = 0;
        char name[32] = "";
        if (sscanf (line + 1, "step %zu %31s", &k, name) != 2) {
            continue;
        }
        if (strcmp (name, "done") == 0 || strcmp (name, "pending") == 0) {
            continue;
        }
        *step_p = k;
        if (strcmp (name, "copying") == 0) {
            phase = L_COPY;
        } else if (strcmp (name, "frozen") == 0) {
            phase = L_FREEZE;
        } else if (strcmp (name, "handover") == 0) {
            phase = L_HANDOVER;
        } else {
            fail_msg ("%s: step %zu is %s", path, k, name);
        }
        break;
    }
    free (text);
    return phase;
}

typedef struct {
    l_ctx_t *ctx;
    const char *to, *dir;
    pid_t tool; //  the apply running, or -1
    bool done;  //  an apply exited 0
    size_t applies;
    size_t kills[L_PHASES];
    size_t kills_total;
    int64_t last_kill_ms; //  monotonic time of the last kill
    size_t victims[3];    //  kills of a shard, the router, the tool
    int bag[3];           //  the kinds of victim in the order of this round
    size_t bag_left;
    int restart;        //  victim to restart (0..3 shards, 4 the router), or -1
    int64_t restart_at; //  when
    bool knob;          //  the tool runs with the knob
} l_nemesis_t;

#define L_VICTIM_ROUTER 4
#define L_VICTIM_TOOL   5

//  The tool ended: done, or run again (exit 3, or killed by the nemesis).
static void
l_tool_ended (l_nemesis_t *n, int ws, bool killed)
{
    n->tool = -1;
    if (killed) {
        return;
    }
    if (WIFEXITED (ws) && WEXITSTATUS (ws) == 0) {
        n->done = true;
        return;
    }
    if (!WIFEXITED (ws) || WEXITSTATUS (ws) != 3) {
        harness_dump_log (n->ctx->c.h, "rebalance");
        fail_msg ("apply ended with wait status %d (only exit 3, the cluster, may be retried)", ws);
    }
}

static void
l_tool_start (l_nemesis_t *n)
{
    n->tool = l_apply_spawn (n->ctx, n->to, n->dir, n->knob ? L_KNOB : NULL);
    n->applies++;
}

static void
l_restart (l_nemesis_t *n)
{
    l_ctx_t *ctx = n->ctx;
    if (n->restart == L_VICTIM_ROUTER) {
        assert_true (rk_router_start (ctx->c.h, &ctx->c.router) > 0);
    } else {
        assert_true (tk_shard_start (ctx->c.h, &ctx->c.shards[n->restart]) > 0);
    }
    n->restart = -1;
}

static void
l_kill (l_nemesis_t *n, int64_t t0)
{
    l_ctx_t *ctx = n->ctx;
    size_t step = 0;
    l_phase_t phase = l_phase (n->dir, &step);
    //  The kind of victim from a bag shuffled every three kills (a shard,
    //  the router, the tool), so that each kind is killed; the shard at
    //  random.
    if (n->bag_left == 0) {
        int kinds[3] = {0, L_VICTIM_ROUTER, L_VICTIM_TOOL};
        for (int i = 2; i > 0; i--) {
            int j = (int) (rl_rand_next (&ctx->rng) % (uint64_t) (i + 1));
            int t = kinds[i];
            kinds[i] = kinds[j];
            kinds[j] = t;
        }
        memcpy (n->bag, kinds, sizeof kinds);
        n->bag_left = 3;
    }
    int victim = n->bag[--n->bag_left];
    if (victim == 0) {
        victim = (int) (rl_rand_next (&ctx->rng) % RBK_SHARDS);
    }
    n->victims[victim == L_VICTIM_TOOL ? 2 : victim == L_VICTIM_ROUTER ? 1 : 0]++;
    const char *name = victim == L_VICTIM_TOOL     ? "rebalance apply"
                       : victim == L_VICTIM_ROUTER ? "the router"
                                                   : ctx->c.shards[victim].name;
    fprintf (stderr, "nemesis: %5.1f s: SIGKILL %s during the %s (step %zu)\n",
             (double) (zclock_mono () - t0) / 1000.0, name, l_phase_names[phase], step);
    if (victim == L_VICTIM_TOOL) {
        if (n->tool < 0) {
            l_tool_start (n); //  between two runs: kill the next one at once
        }
        harness_kill (ctx->c.h, n->tool, SIGKILL);
        int ws = 0;
        assert_int_equal (harness_wait_exit (ctx->c.h, n->tool, 20000, &ws), 0);
        l_tool_ended (n, ws, WIFSIGNALED (ws) && WTERMSIG (ws) == SIGKILL);
        if (!n->done) {
            l_tool_start (n); //  run again at once: it must resume
        }
    } else if (victim == L_VICTIM_ROUTER) {
        rk_router_t *r = &ctx->c.router;
        harness_kill (ctx->c.h, r->pid, SIGKILL);
        assert_int_equal (harness_wait_exit (ctx->c.h, r->pid, 20000, NULL), 0);
        r->pid = -1;
        n->restart = victim;
    } else {
        assert_true (tk_shard_stop (ctx->c.h, &ctx->c.shards[victim], SIGKILL) >= 0);
        n->restart = victim;
    }
    n->restart_at = zclock_mono () + L_RESTART_MS;
    n->kills[phase]++;
    n->kills_total++;
    n->last_kill_ms = zclock_mono ();
}

static bool
l_all_hit (const l_nemesis_t *n)
{
    return n->kills[L_COPY] && n->kills[L_FREEZE] && n->kills[L_HANDOVER];
}

static void
test_nemesis (void **state)
{
    l_ctx_t *ctx = *state;
    char to[600], dir[600];
    l_plan (ctx, L_GROW, to, sizeof to);
    l_path (ctx, "nemesis", dir, sizeof dir);
    //  Short attempts: a batch that meets a killed process leaves its open
    //  records for later batches instead of holding the nemesis up.
    ctx->load.call_ms = 500;
    ctx->load.attempts = 2;
    l_nemesis_t n = {.ctx = ctx, .to = to, .dir = dir, .tool = -1, .restart = -1, .knob = true};
    int64_t t0 = zclock_mono ();
    int64_t nemesis_end = t0 + L_NEMESIS_MS;
    int64_t next_kill = t0 + L_KILL_MIN_MS + (int64_t) (rl_rand_next (&ctx->rng) % L_KILL_SPAN_MS);
    l_tool_start (&n);
    char *first_plan = NULL;
    while (!first_plan) {
        first_plan = l_plan_id (dir);
        rbk_load_once (&ctx->load);
    }
    while (!n.done || n.restart >= 0) {
        int64_t now = zclock_mono ();
        if (now - t0 > L_APPLY_MAX_MS) {
            harness_dump_log (ctx->c.h, "rebalance");
            fail_msg ("the grow did not end within %d ms", L_APPLY_MAX_MS);
        }
        int ws = 0;
        if (n.tool > 0 && harness_wait_exit (ctx->c.h, n.tool, 0, &ws) == 0) {
            l_tool_ended (&n, ws, false);
        }
        if (n.restart >= 0 && now >= n.restart_at) {
            l_restart (&n);
        }
        //  The nemesis lasts L_NEMESIS_MS, and longer while a phase has not
        //  been hit (a fast machine passes a freeze in a blink): the grow
        //  then goes on at the knob's pace until the aim lands.
        bool nemesis_on = now < nemesis_end || !l_all_hit (&n);
        if (!nemesis_on && n.knob) {
            n.knob = false; //  the nemesis is over: the next run goes at full speed
        }
        if (!n.done && n.tool < 0 && n.restart < 0) {
            l_tool_start (&n); //  it stopped with exit 3: run it again
        }
        if (!n.done && nemesis_on && now >= next_kill && n.restart < 0) {
            size_t step = 0;
            l_phase_t phase = l_phase (dir, &step);
            bool aim = !l_all_hit (&n) && (phase == L_BETWEEN || n.kills[phase] > 0)
                       && now < next_kill + L_AIM_MS;
            if (!aim) {
                l_kill (&n, t0);
                next_kill = zclock_mono () + L_KILL_MIN_MS
                            + (int64_t) (rl_rand_next (&ctx->rng) % L_KILL_SPAN_MS);
            }
        }
        rbk_load_once (&ctx->load);
        zclock_sleep (L_LOAD_PAUSE_MS);
    }
    char last[700];
    size_t steps = l_plan_steps (dir, last, sizeof last);
    char *plan_id = l_plan_id (dir);
    assert_string_equal (plan_id, first_plan); //  every run resumed the first plan
    free (plan_id);
    free (first_plan);
    fprintf (
        stderr,
        "nemesis: %zu kills in the first %.1f s (copy %zu, freeze %zu, handover %zu, between steps "
        "%zu; %zu of shards, %zu of the router, %zu of the tool), %zu runs of apply, the "
        "grow's %zu steps done in %.1f s\n",
        n.kills_total, (double) (n.last_kill_ms - t0) / 1000.0, n.kills[L_COPY], n.kills[L_FREEZE],
        n.kills[L_HANDOVER], n.kills[L_BETWEEN], n.victims[0], n.victims[1], n.victims[2],
        n.applies, steps, (double) (zclock_mono () - t0) / 1000.0);
    if (!l_all_hit (&n)) {
        fail_msg ("the nemesis did not kill during the copy, the freeze and the handover");
    }
    assert_int_equal (l_cmd (ctx, "check", dir), 0);
    l_check_landed (ctx, last, true);
    rbk_check_all (&ctx->load, "nemesis", NULL, 0, 500);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_reweight, l_setup, l_teardown),
        cmocka_unit_test_setup_teardown (test_nemesis, l_setup, l_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
