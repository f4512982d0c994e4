/*  test_rebalance.c: `rebalance apply` moving live arcs between real
    shards under load (docs/rebalance.md, "Live migration" and the
    runbook), with the tool killed at every step, and its status, check,
    fix and abort.

    The cluster: shards s1..s3 serve ring R0 (epoch 1, security on); s4
    runs with R0 too (it is not named there, so it owns nothing); one
    router, started with R0, learns every newer ring from the shards. The
    test process is the load (test_rebalance_kit.h): batches of transfers
    through the router, same-shard and cross-shard pairs, some accounts
    with limit flags (so that burned failures happen), each batch sent
    again with the same ids while the outcome of a record is open; a
    record still open after the retries is sent again, with its id, in a
    later batch, until it is definite.

    test_grow: plans R0 + s4 (`rebalance plan`), then runs `rebalance
    apply` under that load, killed by a failpoint at each of its steps in
    turn (the crash matrix below) and run again each time, until a run
    ends by itself. Along the way: check reports a handover a killed apply
    left and fix finishes one, check finds a source left frozen by a killed
    apply and fix undoes it; abort undoes a step on both shards
    (migrate_abort) and apply runs it afresh. At the end: check is
    clean, then the closing checks of every run (rbk_check_all): every id
    applied exactly once with its original timestamp (lookup through the
    router) and no failed one, a replay of every id answering its original
    outcome, and the conservation check (balances equal the model, nothing
    pending or reserved, histories complete); and check finds a state file
    that disagrees with the shards; audit and status count the same
    accounts on every shard (the sources' accounts that left are holes in
    their tables, counted by neither). Hostile state files and options are refused
    with their exit code and change nothing. Then test_grow shrinks the
    cluster back to three shards the same way (removing s4: it leaves the
    ring at the handover of its last arc, once nothing two-phase is left on
    it), under load, with s2 killed (SIGKILL) and restarted in the middle,
    with the same checks, whose quiet wait covers the removed s4 too; before that, one arc goes back
   to the shard it left in the grow (possible because the grow's cleanup deleted its accounts there)
   and back again with the target's commit refused (a failpoint of the tool), which rolls the step
   back.
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

#include "codec.h"
#include "ring.h"
#include "rl_rand.h"
#include "routerkit.h"
#include "test_rebalance_kit.h"
#include "testkit.h"

#define S_TAG           0x5245424cull //  "REBL"
#define S_LEDGER        61
#define S_ACCOUNTS      240
#define S_SENT_MAX      60000
#define S_LOAD_PAUSE_MS 3     //  between two batches of the load
#define S_TOOL_MAX_MS   40000 //  one run of the tool, under load
#define S_ENTRIES       "16"  //  entries a chunk: several chunks an arc
#define S_STATE_X_SIZE  (1u << 20)

typedef struct {
    rbk_cluster_t c; //  s1..s4, R0 and R1, the router
    char r2[512];
    rbk_load_t load;
    int64_t kill_at, restart_at; //  s2's SIGKILL and restart during a run (mono ms; 0: none)
    char kill_after[700];        //  a state file: kill once its step 1 is done ("": never)
} s_ctx_t;

static char *
s_path (s_ctx_t *ctx, const char *name, char *out, size_t size)
{
    return rbk_path (ctx->c.h, name, out, size);
}

//  Load ----------------------------------------------------------------------

static void
s_load_once (s_ctx_t *ctx)
{
    rbk_load_once (&ctx->load);
}

//  The tool -------------------------------------------------------------------

static pid_t
s_tool_spawn (s_ctx_t *ctx, const char *failpoints, const char *const *args)
{
    return rbk_tool_spawn (ctx->c.h, failpoints, args);
}

//  Waits for the tool, with the load running meanwhile when `load`; its
//  wait status.
static int
s_tool_wait (s_ctx_t *ctx, pid_t pid, bool load)
{
    int64_t deadline = zclock_mono () + S_TOOL_MAX_MS;
    int ws = 0;
    while (harness_wait_exit (ctx->c.h, pid, load ? 0 : 100, &ws) != 0) {
        if (zclock_mono () > deadline) {
            harness_dump_log (ctx->c.h, "rebalance");
            fail_msg ("rebalance did not end within %d ms", S_TOOL_MAX_MS);
        }
        int64_t now = zclock_mono ();
        if (ctx->kill_after[0] && !ctx->kill_at) {
            char *text = harness_read_file (ctx->kill_after, NULL);
            if (text && strstr (text, "\nstep 1 done ")) {
                ctx->kill_at = now; //  in the middle of the change
                ctx->kill_after[0] = 0;
            }
            free (text);
        }
        if (ctx->kill_at && now >= ctx->kill_at) {
            assert_true (tk_shard_stop (ctx->c.h, &ctx->c.shards[1], SIGKILL) >= 0);
            ctx->kill_at = 0;
            ctx->restart_at = now + 1000;
        }
        if (ctx->restart_at && now >= ctx->restart_at) {
            assert_true (tk_shard_start (ctx->c.h, &ctx->c.shards[1]) > 0);
            ctx->restart_at = 0;
        }
        if (load) {
            s_load_once (ctx);
            zclock_sleep (S_LOAD_PAUSE_MS); //  a steady load, not all the machine has
        }
    }
    return ws;
}

//  Runs rebalance to its end (no load); its exit code (-signal if killed).
static int
s_tool (s_ctx_t *ctx, const char *failpoints, const char *const *args)
{
    int ws = s_tool_wait (ctx, s_tool_spawn (ctx, failpoints, args), false);
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

//  `rebalance CMD --state DIR --cert CERT [more]` to its end.
static int
s_cmd (s_ctx_t *ctx, const char *cmd, const char *dir, const char *more)
{
    const char *args[] = {cmd, "--state", dir, "--cert", ctx->c.cert, more, NULL};
    return s_tool (ctx, NULL, args);
}

//  apply of `from` -> `to` with state `dir` under load, with failpoints
//  (NULL: none) and --freeze-max-ms; its exit code (-signal if killed).
static int
s_apply (s_ctx_t *ctx, const char *from, const char *to, const char *dir, const char *failpoints,
         const char *freeze_ms)
{
    //  Several chunks in the final round too (apply's default asks for
    //  one): the crash matrix resumes a handover from the middle of it.
    const char *args[] = {
        "apply",     from,        to,        "--state",          dir,       "--cert",
        ctx->c.cert, "--entries", S_ENTRIES, "--freeze-entries", S_ENTRIES, "--freeze-max-ms",
        freeze_ms,   NULL};
    int ws = s_tool_wait (ctx, s_tool_spawn (ctx, failpoints, args), true);
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

static char *
s_read (const char *path, size_t *size)
{
    char *text = harness_read_file (path, size);
    assert_non_null (text);
    return text;
}

static void
s_write (const char *path, const char *text, size_t size)
{
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    assert_int_equal (fwrite (text, 1, size, f), size);
    assert_int_equal (fclose (f), 0);
}

//  Setup -----------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    rbk_cluster_start (&ctx->c, "test_rebalance", "nosync");
    rbk_load_init (&ctx->load, ctx->c.client, S_TAG, S_LEDGER, S_ACCOUNTS, S_SENT_MAX, 0x5eed);
    rbk_create_accounts (&ctx->load);
    rbk_load_ring_file (&ctx->load, ctx->c.r0);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rbk_cluster_stop (&ctx->c);
    rbk_load_destroy (&ctx->load);
    free (ctx);
    return 0;
}

//  Cases ---------------------------------------------------------------------

//  The crash matrix: each run of apply is killed at its point (the last
//  argument: --freeze-max-ms of that run), then run again.
typedef struct {
    const char *failpoints;
    const char *freeze_ms;
} s_crash_t;

static const s_crash_t s_crashes[] = {
    {"rebalance.persisted=crash", "1000"},
    {"rebalance.begun=crash", "1000"},
    {"rebalance.chunk=crash@2", "1000"},
    {"rebalance.frozen=crash", "60000"}, //  then check finds the freeze, fix undoes it
    //  The source's freeze limit passes before the round after it is sent:
    //  the tool undoes the freeze and is killed there.
    {"rebalance.freeze_sent=delay:300,rebalance.unfrozen=crash", "50"},
    {"rebalance.shipped=crash", "1000"},
    {"rebalance.target_ring=crash", "1000"}, //  then check reports the handover
    {"rebalance.target_committed=crash", "1000"},
    {"rebalance.source_committed=crash", "1000"},
    {"rebalance.published=crash", "1000"},
    {"rebalance.cleaned=crash", "1000"}, //  the source forgot the migration: its commit again
    {"rebalance.step_done=crash", "1000"},
    {"rebalance.state_write=crash@2", "1000"},
    {"rebalance.begun=crash", "1000"}, //  then abort, and apply resumes
};

//  Hostile state files and options: each refused with its code, the state
//  file unchanged.
static void
s_hostile (s_ctx_t *ctx, const char *dir)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir);
    size_t size = 0;
    char *good = s_read (path, &size);
    char *bad = malloc (size + 256);
    assert_non_null (bad);
    const char *extras[] = {
        "\nsteps 3\n", "\nbogus line\n", "\nstep 99 done\n", "\nrebalance-state 2\n",
        //  fail-overs followed (rb_plan_failover): malformed
        "\nfailover_shift 0\n", "\nfailover_shift -1\n", "\nfailover_shift 1\nfailover_shift 1\n",
        "\nfailover_shift 99999999999999999999\n", "\nendpoint s1\n",
        "\nendpoint s9 tcp://127.0.0.1:1\n", "\nendpoint s1 tcp://a\"b\n",
        "\nendpoint s1 tcp://127.0.0.1:1\nendpoint s1 tcp://127.0.0.1:2\n"};
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        memcpy (bad, good, size);
        memcpy (bad + size, extras[i], strlen (extras[i]));
        s_write (path, bad, size + strlen (extras[i]));
        assert_int_equal (s_cmd (ctx, "status", dir, NULL), 1);
        assert_int_equal (s_cmd (ctx, "check", dir, NULL), 1);
        assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, dir, NULL, "1000"), 1);
        size_t after_size = 0;
        char *after = s_read (path, &after_size);
        assert_int_equal (after_size, size + strlen (extras[i]));
        free (after);
    }
    //  Truncated, a state name unknown, a step of another plan's id.
    s_write (path, good, size / 2);
    assert_int_equal (s_cmd (ctx, "status", dir, NULL), 1);
    memcpy (bad, good, size);
    char *at = strstr (bad, " done ");
    assert_non_null (at);
    memcpy (at, " dune ", 6);
    s_write (path, bad, size);
    assert_int_equal (s_cmd (ctx, "check", dir, NULL), 1);
    memcpy (bad, good, size);
    at = strstr (bad, " id ");
    assert_non_null (at);
    at[4] = at[4] == '1' ? '2' : '1';
    s_write (path, bad, size);
    assert_int_equal (s_cmd (ctx, "status", dir, NULL), 1);
    s_write (path, good, size);
    assert_int_equal (s_cmd (ctx, "status", dir, NULL), 0);
    //  A ring file of the plan damaged or of another epoch.
    char ring_path[700];
    snprintf (ring_path, sizeof ring_path, "%s/ring.1", dir);
    size_t ring_size = 0;
    char *ring_text = s_read (ring_path, &ring_size);
    s_write (ring_path, ring_text, ring_size / 2);
    assert_int_equal (s_cmd (ctx, "status", dir, NULL), 1);
    char *epoch = strstr (ring_text, "epoch 2\n");
    assert_non_null (epoch);
    epoch[6] = '3';
    s_write (ring_path, ring_text, ring_size);
    assert_int_equal (s_cmd (ctx, "check", dir, NULL), 1);
    epoch[6] = '2';
    s_write (ring_path, ring_text, ring_size);
    free (ring_text);
    assert_int_equal (s_cmd (ctx, "status", dir, NULL), 0);
    //  Options.
    const char *opts[][12] = {
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--freeze-max-ms",
         "0", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--freeze-max-ms",
         "600001", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--entries", "9000",
         NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--copy-share", "0",
         NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--copy-share",
         "101", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--copy-share", "5x",
         NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--freeze-entries",
         "0", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--freeze-entries",
         "8191", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--failover-wait-s",
         "86401", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--failover-wait-s",
         "-1", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, "--failover-wait-s",
         NULL},
        {"check", "--state", dir, "--cert", ctx->c.cert, "--failover-wait-s", "5", NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--cert", ctx->c.cert, NULL},
        {"apply", ctx->c.r0, "--state", dir, "--cert", ctx->c.cert, NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, NULL},
        {"apply", ctx->c.r0, ctx->c.r1, "--state", dir, "--insecure", "--cert", ctx->c.cert, NULL},
        {"check", "--state", dir, "--cert", ctx->c.cert, "--bogus", "1", NULL},
        {"status", "--state", dir, "--freeze-max-ms", "5", NULL},
        {"check", "--state", dir, "--cert", ctx->c.cert, "--heuristics-reconciled", NULL},
        {"fix", "--state", dir, NULL},
        {"fix", "--state", dir, "--cert", ctx->c.cert, "--json", NULL},
        {"apply", ctx->c.r1, ctx->c.r1, "--state", dir, "--cert", ctx->c.cert, NULL},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        assert_int_equal (s_tool (ctx, NULL, opts[i]), 2);
    }
    const char *missing[] = {"apply",  "/nonexistent.ring", ctx->c.r1, "--state", dir,
                             "--cert", ctx->c.cert,         NULL};
    assert_int_equal (s_tool (ctx, NULL, missing), 1);
    char empty[600];
    s_path (ctx, "empty-state", empty, sizeof empty);
    assert_int_equal (s_cmd (ctx, "status", empty, NULL), 2);
    size_t after_size = 0;
    char *after = s_read (path, &after_size);
    assert_int_equal (after_size, size);
    assert_memory_equal (after, good, size);
    free (after);
    free (bad);
    free (good);
}

//  check must find a state file that says one step fewer than the shards.
static void
s_check_finds_lag (s_ctx_t *ctx, const char *dir)
{
    char path[700];
    snprintf (path, sizeof path, "%s/state", dir);
    size_t size = 0;
    char *good = s_read (path, &size);
    char *bad = malloc (size + 1);
    assert_non_null (bad);
    memcpy (bad, good, size + 1);
    char *last = NULL;
    for (char *at = strstr (bad, " done "); at; at = strstr (at + 1, " done ")) {
        last = at;
    }
    assert_non_null (last);
    size_t off = (size_t) (last - bad);
    char *out = malloc (size + 8);
    assert_non_null (out);
    memcpy (out, good, off);
    memcpy (out + off, " pending ", 9);
    memcpy (out + off + 9, good + off + 6, size - off - 6);
    s_write (path, out, size + 3);
    assert_int_equal (s_cmd (ctx, "check", dir, NULL), 4);
    s_write (path, good, size);
    assert_int_equal (s_cmd (ctx, "check", dir, NULL), 0);
    free (out);
    free (bad);
    free (good);
}

//  `to`: the ring at `from` (the grown ring) with the first point of s4
//  whose arc holds an account that s4 took from another shard in the
//  grow given back to that shard, at the next epoch.
static void
s_move_back_ring (s_ctx_t *ctx, const char *from, const char *to)
{
    char err[256];
    ring_t *grown = ring_load_file (from, err, sizeof err);
    ring_t *first = ring_load_file (ctx->c.r0, err, sizeof err);
    assert_true (grown && first);
    size_t points = ring_point_count (grown);
    int s4 = ring_shard_find (grown, "s4");
    for (size_t p = 0; p < points; p++) {
        if ((int) ring_point_owner (grown, p) != s4) {
            continue;
        }
        uint64_t end = ring_point_position (grown, p);
        uint64_t start = ring_point_position (grown, (p + points - 1) % points);
        const char *was = ring_shard_name (first, (size_t) ring_lookup (first, end));
        bool held = false;
        for (uint64_t n = 1; n <= S_ACCOUNTS && !held; n++) {
            uint8_t bytes[RL_ID_SIZE];
            codec_encode_id (tk_id (n, S_TAG), bytes);
            uint64_t h = ring_point_of_id (bytes);
            bool in = start < end ? (h > start && h <= end) : (h > start || h <= end);
            held = in
                   && strcmp (ring_shard_name (first, (size_t) ring_lookup (first, h)), was) == 0;
        }
        if (!held) {
            continue;
        }
        char *text = ring_to_text (grown);
        assert_non_null (text);
        char line[96];
        snprintf (line, sizeof line, "point %016" PRIx64 " s4\n", end);
        char *at = strstr (text, line);
        assert_non_null (at);
        size_t size = strlen (text);
        char *out = malloc (size + 64);
        assert_non_null (out);
        size_t off = (size_t) (at - text);
        memcpy (out, text, off);
        int n = snprintf (out + off, 64, "point %016" PRIx64 " %s\n", end, was);
        memcpy (out + off + n, at + strlen (line), size - off - strlen (line) + 1);
        ring_t *back = ring_from_text (out, err, sizeof err);
        assert_non_null (back);
        ring_set_epoch (back, ring_epoch (grown) + 1);
        assert_int_equal (ring_save_file (back, to), RING_OK);
        ring_destroy (&back);
        free (out);
        free (text);
        ring_destroy (&grown);
        ring_destroy (&first);
        return;
    }
    fail_msg ("no arc of s4 holds an account it took in the grow");
}

static void
test_grow (void **state)
{
    s_ctx_t *ctx = *state;
    for (int i = 0; i < 50; i++) {
        s_load_once (ctx); //  some history before the change
    }
    char dir[600];
    s_path (ctx, "grow", dir, sizeof dir);
    int64_t t0 = zclock_mono ();
    for (size_t i = 0; i < sizeof s_crashes / sizeof s_crashes[0]; i++) {
        const s_crash_t *c = &s_crashes[i];
        int rc = s_apply (ctx, ctx->c.r0, ctx->c.r1, dir, c->failpoints, c->freeze_ms);
        if (rc != -SIGKILL) {
            harness_dump_log (ctx->c.h, "rebalance");
            fail_msg ("apply with %s: exit %d, not killed", c->failpoints, rc);
        }
        if (strcmp (c->failpoints, "rebalance.frozen=crash") == 0) {
            assert_int_equal (s_cmd (ctx, "check", dir, NULL), 4);
            assert_int_equal (s_cmd (ctx, "fix", dir, NULL), 0);
            assert_int_equal (s_cmd (ctx, "check", dir, "--json"), 0);
        }
        if (strcmp (c->failpoints, "rebalance.target_committed=crash") == 0) {
            //  A backup now would miss a target that serves the arc at an
            //  epoch no other shard serves yet: the source refuses its hold.
            char backups[600], *out = NULL;
            s_path (ctx, "backups", backups, sizeof backups);
            assert_int_equal (mkdir (backups, 0700), 0);
            assert_int_equal (
                rbk_rlctl (&ctx->c, 0, "rlctl-backup", &out, "backup", backups, "--cluster", NULL),
                1);
            if (!strstr (out, "in its handover")) {
                fail_msg ("backup during a handover: %s", out);
            }
            free (out);
            //  fix finishes the handover the killed apply began.
            assert_int_equal (s_cmd (ctx, "fix", dir, NULL), 0);
            assert_int_equal (s_cmd (ctx, "check", dir, NULL), 0);
            //  Then the backup takes every shard of the ring served, s4 too.
            assert_int_equal (
                rbk_rlctl (&ctx->c, 0, "rlctl-backup", &out, "backup", backups, "--cluster", NULL),
                0);
            if (!strstr (out, "\ns4 ")) {
                fail_msg ("backup after the handover: %s", out);
            }
            free (out);
        }
        if (strcmp (c->failpoints, "rebalance.target_ring=crash") == 0) {
            //  An interrupted handover: the shards are where the state says,
            //  but the arc is frozen until the handover ends.
            assert_int_equal (s_cmd (ctx, "check", dir, NULL), 4);
            assert_int_equal (s_cmd (ctx, "abort", dir, NULL), 2); //  handed over: forward only
        }
        if (i + 1 == sizeof s_crashes / sizeof s_crashes[0]) {
            assert_int_equal (s_cmd (ctx, "abort", dir, NULL), 0);
            assert_int_equal (s_cmd (ctx, "status", dir, "--json"), 0);
            char log_path[600];
            char *log = s_read (s_path (ctx, "rebalance.log", log_path, sizeof log_path), NULL);
            assert_non_null (strstr (log, "\"aborted\":\ttrue"));
            assert_non_null (strstr (log, "\"in_progress\":\tnull")); //  the step starts afresh
            free (log);
            assert_int_equal (s_cmd (ctx, "check", dir, NULL), 0);
            assert_int_equal (s_cmd (ctx, "abort", dir, NULL), 0); //  again: nothing to undo
        }
    }
    int rc = s_apply (ctx, ctx->c.r0, ctx->c.r1, dir, NULL, "1000");
    if (rc != 0) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("the last apply: exit %d", rc);
    }
    fprintf (stderr, "grow: %zu crashes and the last run in %.1f s, %zu transfers sent\n",
             sizeof s_crashes / sizeof s_crashes[0], (double) (zclock_mono () - t0) / 1000.0,
             ctx->load.count);
    assert_int_equal (s_cmd (ctx, "check", dir, NULL), 0);
    rbk_check_all (&ctx->load, "grow", NULL, 0, 100);
    s_check_finds_lag (ctx, dir);
    //  A change planned from a ring the cluster no longer serves moves nothing.
    char stale[600];
    s_path (ctx, "stale", stale, sizeof stale);
    assert_int_equal (s_apply (ctx, ctx->c.r0, ctx->c.r1, stale, NULL, "1000"), 6); //  fenced
    s_hostile (ctx, dir);
    //  Every shard serves the planned ring; s4 holds accounts now.
    rl_status_rec_t st;
    rl_client_t *s4 = rl_client_new (ctx->c.shards[3].endpoint);
    assert_non_null (s4);
    assert_int_equal (rl_client_status (s4, &st, TK_TIMEOUT_MS), 0);
    assert_true (st.accounts > 0);
    assert_int_equal (st.arcs_unreceived, 0);
    uint64_t grown_epoch = st.epoch;
    rl_client_destroy (&s4);
    //  audit and status count the same accounts: the sources' accounts
    //  that left (holes in their tables) are counted by neither.
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        rl_client_t *c = rl_client_new (ctx->c.shards[i].endpoint);
        assert_non_null (c);
        rl_audit_rec_t audit;
        assert_int_equal (rl_client_status (c, &st, TK_TIMEOUT_MS), 0);
        assert_int_equal (rl_client_audit (c, &audit, TK_TIMEOUT_MS), 0);
        assert_true (audit.ok);
        if (audit.accounts != st.accounts) {
            fail_msg ("shard %zu: audit counts %" PRIu64 " accounts, status %" PRIu64, i + 1,
                      audit.accounts, st.accounts);
        }
        rl_client_destroy (&c);
    }

    //  An arc given back to the shard it left in the grow: it held the
    //  arc's accounts until the grow's cleanup deleted them, so its commit
    //  goes through.
    char grown_ring[700];
    snprintf (grown_ring, sizeof grown_ring, "%s/ring.%" PRIu64, dir, grown_epoch - 1);
    char back_ring[600], back_dir[600], again_ring[600], again_dir[600];
    s_path (ctx, "back.ring", back_ring, sizeof back_ring);
    s_path (ctx, "back", back_dir, sizeof back_dir);
    s_move_back_ring (ctx, grown_ring, back_ring);
    rbk_load_ring_file (&ctx->load, grown_ring); //  pairs by the ring the cluster serves now
    const char *back_args[] = {
        "apply",  grown_ring,  back_ring,   "--state", back_dir,
        "--cert", ctx->c.cert, "--entries", S_ENTRIES, "--heuristics-reconciled",
        NULL}; //  (none here: the shards accept the word)
    int back_ws = s_tool_wait (ctx, s_tool_spawn (ctx, NULL, back_args), true);
    assert_true (WIFEXITED (back_ws) && WEXITSTATUS (back_ws) == 0);
    assert_int_equal (s_cmd (ctx, "check", back_dir, NULL), 0);
    //  And back to s4, with its target's commit refused (a failpoint of the
    //  tool): the step is rolled back (killed once in the middle), and the
    //  change ends at rollback.ring.
    char err[256];
    ring_t *ring = ring_load_file (grown_ring, err, sizeof err);
    assert_non_null (ring);
    ring_set_epoch (ring, grown_epoch + 1);
    s_path (ctx, "again.ring", again_ring, sizeof again_ring);
    s_path (ctx, "again", again_dir, sizeof again_dir);
    assert_int_equal (ring_save_file (ring, again_ring), RING_OK);
    ring_destroy (&ring);
    assert_int_equal (s_apply (ctx, back_ring, again_ring, again_dir,
                               "rebalance.commit_refused=error,rebalance.rolled_back=crash",
                               "1000"),
                      -SIGKILL);
    assert_int_equal (s_cmd (ctx, "check", again_dir, NULL), 4); //  not all at the rollback ring
    assert_int_equal (s_apply (ctx, back_ring, again_ring, again_dir, NULL, "1000"), 3);
    assert_int_equal (s_cmd (ctx, "check", again_dir, NULL), 0);
    assert_int_equal (s_cmd (ctx, "fix", again_dir, NULL), 0); //  nothing left to do
    assert_int_equal (s_cmd (ctx, "abort", again_dir, NULL), 2);
    assert_int_equal (s_cmd (ctx, "status", again_dir, "--json"), 0);
    char log_path2[600];
    char *log2 = s_read (s_path (ctx, "rebalance.log", log_path2, sizeof log_path2), NULL);
    assert_non_null (strstr (log2, "\"rolled_back\":\ttrue"));
    free (log2);
    uint64_t back_epoch = grown_epoch + 3; //  back.ring at +1, the step at +2, the rollback at +3

    //  Shrink: s4 leaves again, from the ring the rollback left.
    char last_ring[700];
    snprintf (last_ring, sizeof last_ring, "%s/rollback.ring", again_dir);
    ring = ring_load_file (last_ring, err, sizeof err);
    assert_non_null (ring);
    assert_int_equal (ring_epoch (ring), back_epoch);
    assert_int_equal (ring_remove_shard (ring, "s4"), RING_OK);
    ring_set_epoch (ring, back_epoch + 1);
    s_path (ctx, "r2.ring", ctx->r2, sizeof ctx->r2);
    assert_int_equal (ring_save_file (ring, ctx->r2), RING_OK);
    ring_destroy (&ring);
    char dir2[600];
    s_path (ctx, "shrink", dir2, sizeof dir2);
    t0 = zclock_mono ();
    //  While an apply runs (held at its start by a delay), status says so,
    //  and a second apply, fix and abort refuse to run beside it.
    const char *shrink_args[] = {"apply",   last_ring,      ctx->r2,     "--state",
                                 dir2,      "--cert",       ctx->c.cert, "--entries",
                                 S_ENTRIES, "--timeout-ms", "1000",      NULL};
    pid_t running = s_tool_spawn (ctx, "rebalance.persisted=delay:3000", shrink_args);
    char state_path[700];
    snprintf (state_path, sizeof state_path, "%s/state", dir2);
    while (access (state_path, F_OK) != 0) {
        s_load_once (ctx);
        zclock_sleep (S_LOAD_PAUSE_MS);
    }
    assert_int_equal (s_tool (ctx, NULL, shrink_args), 2);
    assert_int_equal (s_cmd (ctx, "abort", dir2, NULL), 2);
    assert_int_equal (s_cmd (ctx, "fix", dir2, NULL), 2);
    assert_int_equal (s_cmd (ctx, "status", dir2, "--json"), 0);
    char log_path[600];
    char *log = s_read (s_path (ctx, "rebalance.log", log_path, sizeof log_path), NULL);
    assert_non_null (strstr (log, "\"running\":\ttrue"));
    free (log);
    //  s2 is killed (SIGKILL) once step 1 is done and restarted a second
    //  later: apply rides through it or stops with exit 3 and is run again.
    snprintf (ctx->kill_after, sizeof ctx->kill_after, "%s", state_path);
    int ws = s_tool_wait (ctx, running, true);
    rc = WIFEXITED (ws) ? WEXITSTATUS (ws) : -1;
    for (int again = 0; again < 3 && rc == 3; again++) {
        rc = s_apply (ctx, last_ring, ctx->r2, dir2, NULL, "1000");
    }
    assert_int_equal (ctx->kill_after[0], 0); //  s2 was killed
    assert_int_equal (ctx->kill_at, 0);
    assert_int_equal (ctx->restart_at, 0);
    if (rc != 0) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("shrink: exit %d", rc);
    }
    fprintf (stderr, "shrink: %.1f s, %zu transfers sent in all\n",
             (double) (zclock_mono () - t0) / 1000.0, ctx->load.count);
    assert_int_equal (s_cmd (ctx, "check", dir2, NULL), 0);
    const char *removed[] = {ctx->c.shards[3].endpoint};
    rbk_check_all (&ctx->load, "shrink", removed, 1, 200);
    //  s4 is out of the ring the others serve.
    uint8_t *blob = NULL;
    size_t size = 0;
    assert_int_equal (rl_client_get_ring (ctx->c.client, &blob, &size, TK_TIMEOUT_MS), 0);
    ring = ring_decode (blob, size, err, sizeof err);
    free (blob);
    assert_non_null (ring);
    assert_int_equal (ring_shard_find (ring, "s4"), -1);
    assert_int_equal (ring_shard_count (ring), 3);
    ring_destroy (&ring);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_grow, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
