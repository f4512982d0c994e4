/*  test_migrate_pending.c: pending transfers move with their accounts
    (docs/rebalance.md, "Pending transfers move"). A real cluster: shards
    s1..s3 serve ring R0 (epoch 1, security on), s4 runs with R0 too (it
    owns nothing), one router; `rebalance apply` grows it to four shards,
    one step per arc that moves to s4. Before the change, transfers still
    pending are made between random accounts (RL_SEED=N replays the
    choices; the seed is printed), so
    that every shape moves: a same-shard one whose two accounts move
    together, one of which only the debit or only the credit account
    moves (it becomes cross-shard), a cross-shard one whose debit or
    credit side moves, and a cross-shard one whose two accounts both end
    on s4 (its sides become two entries of one shard); two of each shape
    are drawn first. Some have no timeout, some a long one, and some a timeout of
    1..4 s, which falls before, during (the tool holds each freeze for
    300 ms: some fall due while their arc is frozen) or after the change.

    test_grow_with_pending: some are posted (in full or in part) and some
    voided before the change, some while it runs (racing the freezes and
    handovers: frozen and aborted are retried, each ends ok); then every
    short one has
    expired (a post of it answers expired; its amounts are released on
    both sides, wherever they are now), and every other one is posted,
    posted in part or voided on its new owner (those whose sides the
    change joined on s4, in a linked chain with a fee to an account of
    s4 or of another shard, after the same chain failed on a fee to an
    account never created: nothing applied, nothing burned). Exactly once over every
    id (a retry of each pending transfer, post and void answers exists
    with its original timestamp), nothing pending anywhere, and the strong
    conservation check.

    test_crash_with_pending: the same, with the shards in manual-wal mode
    and four of them armed: a source at migrate.shipped and another at
    migrate.commit_source (the batch before its commit is lost), the
    target at migrate.import and at migrate.commit_target_synced (its
    reply lost). Each dies by SIGKILL at its point (checked), the tool
    stops, the shard restarts (a frozen source holds its arc's pending
    transfers from expiring during its recovery) and the tool is run
    again, until the change completes; then the checks above.

    test_failover_with_pending: the same pending transfers, s1 started with
    a semi-synchronous standby (--standby, rbk_standby_start) and armed at
    migrate.shipped: its primary dies by SIGKILL once it has shipped the
    final round of its first step (the arc frozen for good, its pending
    transfers held, no handover yet). The standby is promoted (`rlctl
    promote s1 STANDBY`: exit 0), apply is run again and must complete
    (exit 0), then `rebalance check`, the audit and the checks above.
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
#include "replkit.h"
#include "ring.h"
#include "routerkit.h"
#include "test_rebalance_kit.h"
#include "testkit.h"

#define S_TAG          0x504d4947ull //  "PMIG"
#define S_LEDGER       64
#define S_ACCOUNTS     300
#define S_PENDING      200 //  pending transfers made before the change
#define S_TOOL_MAX_MS  60000
#define S_SHORT_S_MAX  4     //  the short timeouts: 1..S_SHORT_S_MAX s
#define S_WAIT_MS      20000 //  expiries are released within this
#define S_KILLS        4
#define S_REPL_TIMEOUT "400" //  --repl-timeout-ms of s1's primary (test_failover_with_pending)

typedef struct {
    rbk_cluster_t c; //  s1..s4, R0 and R1, the router
    tk_model_t model;
    uint64_t rng;
    tk_shard_t standby; //  s1's (test_failover_with_pending), pid 0: none
} s_ctx_t;

//  One pending transfer the test made, and what became of it.
typedef struct {
    rl_transfer_t p;
    uint64_t ts;           //  its timestamp
    bool short_timeout;    //  expires during the test
    rl_transfer_t resolve; //  its post or void (flags 0: none yet)
    uint64_t resolve_ts;
    int shape; //  of its move (s_shape), -1: none of its accounts moves
} s_pending_t;

static char *
s_path (s_ctx_t *ctx, const char *name, char *out, size_t size)
{
    return rbk_path (ctx->c.h, name, out, size);
}

static uint64_t
s_rand (s_ctx_t *ctx)
{
    ctx->rng = ctx->rng * 6364136223846793005ull + 1442695040888963407ull;
    return ctx->rng >> 33;
}

//  `rebalance apply` (failpoints NULL: none), started; s_apply_wait ends it.
static pid_t
s_apply_start (s_ctx_t *ctx, const char *dir, const char *failpoints, const char *timeout_ms)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/tools/rebalance", harness_bin_dir ());
    char *argv[] = {path,         "apply",  ctx->c.r0,   ctx->c.r1,      "--state",
                    (char *) dir, "--cert", ctx->c.cert, "--timeout-ms", (char *) timeout_ms,
                    NULL};
    char env_fp[512];
    snprintf (env_fp, sizeof env_fp, "RL_FAILPOINTS=%s", failpoints ? failpoints : "");
    char *env[] = {env_fp, NULL};
    pid_t pid = harness_spawn (ctx->c.h, "rebalance", argv, env);
    assert_true (pid > 0);
    return pid;
}

//  Its exit code, -signal when killed.
static int
s_apply_wait (s_ctx_t *ctx, pid_t pid)
{
    int ws = 0;
    if (harness_wait_exit (ctx->c.h, pid, S_TOOL_MAX_MS, &ws) != 0) {
        harness_dump_log (ctx->c.h, "rebalance");
        fail_msg ("rebalance did not end within %d ms", S_TOOL_MAX_MS);
    }
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

static int
s_check (s_ctx_t *ctx, const char *dir)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/tools/rebalance", harness_bin_dir ());
    char *argv[] = {path, "check", "--state", (char *) dir, "--cert", ctx->c.cert, NULL};
    pid_t pid = harness_spawn (ctx->c.h, "rebalance", argv, NULL);
    assert_true (pid > 0);
    int ws = 0;
    assert_int_equal (harness_wait_exit (ctx->c.h, pid, S_TOOL_MAX_MS, &ws), 0);
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -1;
}

//  Every shard's audit, through the router (`rlctl audit`): its accounts'
//  reservations equal what is pending, and each transfer still pending has
//  its keys in the index by account that the next migration reads.
static void
s_audit (s_ctx_t *ctx)
{
    char rlctl[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (key, sizeof key, "%s", tk_key (ctx->c.h, "router", ctx->c.router.name));
    char *argv[] = {rlctl,    "--connect", ctx->c.router.endpoint,
                    "--cert", ctx->c.cert, "--server-key",
                    key,      "audit",     NULL};
    pid_t pid = harness_spawn (ctx->c.h, "rlctl-audit", argv, NULL);
    assert_true (pid > 0);
    int ws = 0;
    assert_int_equal (harness_wait_exit (ctx->c.h, pid, S_TOOL_MAX_MS, &ws), 0);
    if (!WIFEXITED (ws) || WEXITSTATUS (ws) != 0) {
        harness_dump_log (ctx->c.h, "rlctl-audit");
        fail_msg ("rlctl audit failed");
    }
}

//  Setup -----------------------------------------------------------------------

//  s1's standby, started before s1, whose primary dies by SIGKILL once it
//  has shipped its first final round (migrate.shipped).
static void
s_standby_hook (rbk_cluster_t *cluster, size_t index, void *arg)
{
    s_ctx_t *ctx = arg;
    if (index == 0) {
        rbk_standby_start (cluster, index, &ctx->standby, S_REPL_TIMEOUT);
        cluster->shards[index].env[0] = "RL_FAILPOINTS=migrate.shipped=crash@1";
    }
}

static int
s_setup_with (void **state, const char *durability, rbk_shard_hook_fn *hook)
{
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    rbk_cluster_start_with (&ctx->c, "test_migrate_pending", durability, hook, ctx);
    if (hook) {
        rbk_wait_streaming (ctx->c.shards[0].endpoint);
    }
    tk_model_init (&ctx->model, S_TAG, S_ACCOUNTS);
    rbk_create_plain_accounts (ctx->c.client, S_TAG, S_LEDGER, S_ACCOUNTS);
    const char *seed = getenv ("RL_SEED");
    ctx->rng = seed ? strtoull (seed, NULL, 10) : (uint64_t) zclock_time ();
    fprintf (stderr, "test_migrate_pending: RL_SEED=%" PRIu64 "\n", ctx->rng);
    *state = ctx;
    return 0;
}

static int
s_setup (void **state)
{
    return s_setup_with (state, "nosync", NULL);
}

static int
s_setup_crash (void **state)
{
    return s_setup_with (state, "manual-wal", NULL);
}

static int
s_setup_failover (void **state)
{
    return s_setup_with (state, "nosync", s_standby_hook);
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    if (ctx->standby.pid > 0) {
        tk_shard_stop (ctx->c.h, &ctx->standby, SIGTERM);
    }
    rbk_cluster_stop (&ctx->c);
    free (ctx);
    return 0;
}

//  Pending transfers -------------------------------------------------------------

static uint32_t
s_one (s_ctx_t *ctx, const rl_transfer_t *t, uint64_t *ts)
{
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers_retry (ctx->c.client, t, 1, &r, TK_TIMEOUT_MS, 10),
                      0);
    if (ts) {
        *ts = r.timestamp;
    }
    return r.result;
}

static int
s_owner (const ring_t *ring, uint64_t n)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (tk_id (n, S_TAG), bytes);
    return ring_lookup (ring, ring_point_of_id (bytes));
}

enum { BOTH_MOVE, DEBIT_MOVES, CREDIT_MOVES, X_DEBIT, X_CREDIT, JOINED, SHAPES };

//  The shape of the move of a pending transfer from account a to b, from
//  R0 to R1 (-1: none of its accounts moves).
static int
s_shape (const ring_t *r0, const ring_t *r1, uint64_t a, uint64_t b)
{
    int d0 = s_owner (r0, a), c0 = s_owner (r0, b), d1 = s_owner (r1, a), c1 = s_owner (r1, b);
    bool dm = d0 != d1, cm = c0 != c1;
    if (d0 == c0) {
        return dm && cm ? BOTH_MOVE : dm ? DEBIT_MOVES : cm ? CREDIT_MOVES : -1;
    }
    return d1 == c1 ? JOINED : dm && !cm ? X_DEBIT : !dm && cm ? X_CREDIT : -1;
}

//  Makes S_PENDING pending transfers between random accounts: two of each
//  shape of move first (drawn until one fits), then any; a fifth with a
//  short timeout.
static void
s_make_pending (s_ctx_t *ctx, s_pending_t *list)
{
    char err[256];
    ring_t *r0 = ring_load_file (ctx->c.r0, err, sizeof err);
    ring_t *r1 = ring_load_file (ctx->c.r1, err, sizeof err);
    assert_true (r0 && r1);
    size_t shapes[SHAPES] = {0};
    for (size_t k = 0; k < S_PENDING; k++) {
        uint64_t a = 0, b = 0;
        for (int draw = 0;; draw++) {
            assert_true (draw < 1000000);
            a = 1 + s_rand (ctx) % S_ACCOUNTS;
            b = 1 + s_rand (ctx) % S_ACCOUNTS;
            if (a != b && (k >= 2 * SHAPES || s_shape (r0, r1, a, b) == (int) (k % SHAPES))) {
                break;
            }
        }
        s_pending_t *e = &list[k];
        memset (e, 0, sizeof (*e));
        e->p = tk_transfer (tk_id (100000 + k, S_TAG + 1), tk_id (a, S_TAG), tk_id (b, S_TAG),
                            10 + k, S_LEDGER);
        e->p.flags = RL_TRANSFER_PENDING;
        e->p.timeout = k % 5 == 1 ? 3600 : 0;
        if (k % 5 == 2) {
            e->p.timeout = 1 + (uint32_t) (k / 5) % S_SHORT_S_MAX;
            e->short_timeout = true;
        }
        assert_int_equal (s_one (ctx, &e->p, &e->ts), RL_OK);
        int shape = s_shape (r0, r1, a, b);
        e->shape = shape;
        shapes[shape < 0 ? 0 : shape] += shape >= 0;
    }
    fprintf (stderr,
             "test_migrate_pending: %d pending; same-shard: both move %zu, debit moves %zu, "
             "credit moves %zu; cross-shard: debit moves %zu, credit moves %zu, joined %zu\n",
             S_PENDING, shapes[BOTH_MOVE], shapes[DEBIT_MOVES], shapes[CREDIT_MOVES],
             shapes[X_DEBIT], shapes[X_CREDIT], shapes[JOINED]);
    for (size_t i = 0; i < SHAPES; i++) {
        assert_true (shapes[i] >= 2);
    }
    ring_destroy (&r0);
    ring_destroy (&r1);
}

//  Posts (in full or in part) or voids list[k] on whichever shard owns its
//  debit account now; the model takes what is posted.
static void
s_resolve_fill (s_pending_t *e, size_t k)
{
    uint16_t flags = k % 3 == 2 ? RL_TRANSFER_VOID_PENDING_TRANSFER
                                : RL_TRANSFER_POST_PENDING_TRANSFER;
    uint64_t amount = k % 3 == 1 ? e->p.amount / 2 : 0; //  0: all of it
    e->resolve = (rl_transfer_t){.id = tk_id (200000 + k, S_TAG + 1),
                                 .debit_account_id = e->p.debit_account_id,
                                 .pending_id = e->p.id,
                                 .amount = amount,
                                 .flags = flags};
}

static void
s_resolve_model (s_ctx_t *ctx, const s_pending_t *e)
{
    if (e->resolve.flags & RL_TRANSFER_POST_PENDING_TRANSFER) {
        rl_transfer_t posted = e->p;
        posted.amount = e->resolve.amount ? e->resolve.amount : e->p.amount;
        tk_model_apply (&ctx->model, &posted);
    }
}

static void
s_resolve (s_ctx_t *ctx, s_pending_t *e, size_t k)
{
    s_resolve_fill (e, k);
    assert_int_equal (s_one (ctx, &e->resolve, &e->resolve_ts), RL_OK);
    s_resolve_model (ctx, e);
}

//  Nothing pending on any account (each asked of its owner, through the router).
static bool
s_none_pending (void *arg)
{
    s_ctx_t *ctx = arg;
    rl_id_t ids[S_ACCOUNTS];
    rl_account_t out[S_ACCOUNTS];
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        ids[n - 1] = tk_id (n, S_TAG);
    }
    if (rl_client_lookup_accounts (ctx->c.client, ids, S_ACCOUNTS, out, TK_TIMEOUT_MS) != 0) {
        return false;
    }
    for (size_t i = 0; i < S_ACCOUNTS; i++) {
        if (out[i].debits_pending || out[i].credits_pending) {
            return false;
        }
    }
    return true;
}

//  Resolves list[k], whose two sides the change joined on one shard (two
//  entries there), in a linked chain with a fee of 1 from its debit
//  account to `fee_to`: of the same shard (a chain of one shard) or of
//  another (a chain across). The model takes what is posted and the fee.
static void
s_resolve_chained (s_ctx_t *ctx, s_pending_t *e, size_t k, uint64_t fee_to, uint64_t missing)
{
    s_resolve_fill (e, k);
    rl_transfer_t chain[2] = {e->resolve,
                              tk_transfer (tk_id (400000 + k, S_TAG + 1), e->p.debit_account_id,
                                           tk_id (missing, S_TAG), 1, S_LEDGER)};
    chain[0].flags |= RL_TRANSFER_LINKED;
    rl_result_rec_t r[2];
    //  First to an account that does not exist (on the fee's shard): the
    //  chain fails, both sides are released, nothing is burned.
    assert_int_equal (
        rl_client_create_transfers_retry (ctx->c.client, chain, 2, r, TK_TIMEOUT_MS, 10), 0);
    if (r[0].result != RL_LINKED_EVENT_FAILED || r[1].result != RL_CREDIT_ACCOUNT_NOT_FOUND) {
        fail_msg ("pending transfer %zu resolved in a failing chain: %s, %s", k,
                  rl_result_name (r[0].result), rl_result_name (r[1].result));
    }
    chain[1].credit_account_id = tk_id (fee_to, S_TAG);
    assert_int_equal (
        rl_client_create_transfers_retry (ctx->c.client, chain, 2, r, TK_TIMEOUT_MS, 10), 0);
    if (r[0].result != RL_OK || r[1].result != RL_OK) {
        fail_msg ("pending transfer %zu resolved in a chain: %s, %s", k,
                  rl_result_name (r[0].result), rl_result_name (r[1].result));
    }
    e->resolve_ts = r[0].timestamp;
    s_resolve_model (ctx, e);
    tk_model_apply (&ctx->model, &chain[1]);
}

//  After the change: the short ones expired (never posted), every other
//  one resolved on its new owner (some whose sides the change joined, in
//  a chain with a fee: both sides held and applied at its commit),
//  exactly once over every id, nothing pending, conservation.
static void
s_after (s_ctx_t *ctx, s_pending_t *list, int64_t made_ms)
{
    char err[256];
    ring_t *r1 = ring_load_file (ctx->c.r1, err, sizeof err);
    assert_non_null (r1);
    size_t chained = 0;
    //  Every short timeout has passed (on the shards' clocks too: a margin).
    int64_t due = made_ms + (S_SHORT_S_MAX + 1) * 1000;
    if (zclock_mono () < due) {
        zclock_sleep ((int) (due - zclock_mono ()));
    }
    for (size_t k = 0; k < S_PENDING; k++) {
        s_pending_t *e = &list[k];
        if (e->short_timeout && !e->resolve.flags) {
            rl_transfer_t late = {.id = tk_id (300000 + k, S_TAG + 1),
                                  .debit_account_id = e->p.debit_account_id,
                                  .pending_id = e->p.id,
                                  .flags = RL_TRANSFER_POST_PENDING_TRANSFER};
            assert_int_equal (s_one (ctx, &late, NULL), RL_PENDING_TRANSFER_EXPIRED);
        } else if (!e->resolve.flags && e->shape == JOINED) {
            //  A fee to an account of the same shard, or of another.
            uint64_t debit = 0, fee_to = 0;
            for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
                debit = tk_id (n, S_TAG).lo == e->p.debit_account_id.lo ? n : debit;
            }
            int owner = s_owner (r1, debit);
            bool here = chained % 2 == 0;
            for (uint64_t n = 1; n <= S_ACCOUNTS && fee_to == 0; n++) {
                fee_to = n != debit && (s_owner (r1, n) == owner) == here ? n : 0;
            }
            uint64_t missing = S_ACCOUNTS + 1; //  never created
            while ((s_owner (r1, missing) == owner) != here) {
                missing++;
            }
            assert_true (debit != 0 && fee_to != 0);
            s_resolve_chained (ctx, e, k, fee_to, missing);
            chained++;
        } else if (!e->resolve.flags) {
            s_resolve (ctx, e, k);
        }
    }
    fprintf (stderr, "test_migrate_pending: %zu joined ones resolved in a chain with a fee\n",
             chained);
    assert_true (chained > 0);
    ring_destroy (&r1);
    if (!harness_wait_until (s_none_pending, ctx, S_WAIT_MS)) {
        fail_msg ("amounts still pending %d s after every pending transfer ended",
                  S_WAIT_MS / 1000);
    }
    //  Exactly once: every id answers its original outcome.
    for (size_t k = 0; k < S_PENDING; k++) {
        uint64_t ts = 0;
        assert_int_equal (s_one (ctx, &list[k].p, &ts), RL_EXISTS);
        assert_int_equal (ts, list[k].ts);
        if (list[k].resolve.flags) {
            assert_int_equal (s_one (ctx, &list[k].resolve, &ts), RL_EXISTS);
            assert_int_equal (ts, list[k].resolve_ts);
        }
    }
    assert_true (tk_wait_cluster_quiet (ctx->c.client, 15000));
    tk_check_conservation (ctx->c.client, &ctx->model, ctx->model.ok);
}

//  Cases ---------------------------------------------------------------------

//  The pending transfers of a case, some resolved before the change (their
//  states and records move too); the time they were made.
static int64_t
s_before (s_ctx_t *ctx, s_pending_t *list)
{
    s_make_pending (ctx, list);
    int64_t made_ms = zclock_mono ();
    for (size_t k = 0; k < S_PENDING; k += 7) {
        if (!list[k].short_timeout) {
            s_resolve (ctx, &list[k], k);
        }
    }
    return made_ms;
}

static void
test_grow_with_pending (void **state)
{
    s_ctx_t *ctx = *state;
    static s_pending_t list[S_PENDING];
    int64_t made_ms = s_before (ctx, list);
    char dir[600];
    s_path (ctx, "grow", dir, sizeof dir);
    //  Each freeze lasts 300 ms at least, so that short timeouts fall due
    //  while their arc is frozen (held, then expired by its next owner).
    pid_t tool = s_apply_start (ctx, dir, "rebalance.frozen=delay:300", "5000");
    //  Meanwhile posts and voids race the freezes and handovers (frozen and
    //  aborted are retried: each ends ok, wherever its pending transfer is).
    size_t racing = 0;
    for (size_t k = 3; k < S_PENDING; k += 4) {
        int ws = 0;
        if (harness_wait_exit (ctx->c.h, tool, 0, &ws) == 0) {
            break; //  the change is over
        }
        if (!list[k].short_timeout && !list[k].resolve.flags) {
            s_resolve (ctx, &list[k], k);
            racing++;
            zclock_sleep (100);
        }
    }
    fprintf (stderr, "test_migrate_pending: %zu posts and voids during the change\n", racing);
    assert_int_equal (s_apply_wait (ctx, tool), 0);
    assert_int_equal (s_check (ctx, dir), 0);
    s_audit (ctx);
    s_after (ctx, list, made_ms);
}

//  Restarts shard i with RL_FAILPOINTS=fp (NULL: none).
static void
s_restart (s_ctx_t *ctx, size_t i, const char *fp, char *env_buf, size_t env_size)
{
    tk_shard_t *shard = &ctx->c.shards[i];
    if (shard->pid > 0) {
        assert_true (tk_shard_stop (ctx->c.h, shard, SIGTERM) >= 0);
    }
    shard->env[0] = NULL;
    if (fp) {
        snprintf (env_buf, env_size, "RL_FAILPOINTS=%s", fp);
        shard->env[0] = env_buf;
    }
    assert_true (tk_shard_start (ctx->c.h, shard) > 0);
}

static void
test_crash_with_pending (void **state)
{
    s_ctx_t *ctx = *state;
    static s_pending_t list[S_PENDING];
    static char env[RBK_SHARDS][128];
    s_make_pending (ctx, list);
    int64_t made_ms = zclock_mono ();
    //  Two sources and the target armed (s4 gains every arc).
    const char *armed[RBK_SHARDS] = {"migrate.shipped=crash@2", "migrate.commit_source=crash@2",
                                     NULL, "migrate.import=crash@6"};
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        if (armed[i]) {
            s_restart (ctx, i, armed[i], env[i], sizeof env[i]);
        }
    }
    char dir[600];
    s_path (ctx, "crash", dir, sizeof dir);
    size_t kills = 0;
    bool target_again = false;
    for (int run = 0;; run++) {
        assert_true (run < 16);
        //  The tool runs until the change is done, or until an armed shard
        //  dies: then it is killed too (it resumes from its state), rather
        //  than left to time out on the dead shard.
        pid_t tool = s_apply_start (ctx, dir, NULL, "2000");
        size_t dead = 0;
        int ws = 0;
        while (harness_wait_exit (ctx->c.h, tool, 0, &ws) != 0 && dead == 0) {
            zclock_sleep (20);
            for (size_t i = 0; i < RBK_SHARDS; i++) {
                int shard_ws = 0;
                if (ctx->c.shards[i].pid > 0
                    && harness_wait_exit (ctx->c.h, ctx->c.shards[i].pid, 0, &shard_ws) == 0) {
                    //  By SIGKILL at its failpoint.
                    assert_true (WIFSIGNALED (shard_ws) && WTERMSIG (shard_ws) == SIGKILL);
                    fprintf (stderr, "test_migrate_pending: %s killed at its failpoint\n",
                             ctx->c.shards[i].name);
                    ctx->c.shards[i].pid = 0;
                    //  The target's second arming: its reply lost after the handover's sync.
                    const char *next = i == 3 && !target_again
                                           ? "migrate.commit_target_synced=crash@2"
                                           : NULL;
                    target_again |= i == 3;
                    s_restart (ctx, i, next, env[i], sizeof env[i]);
                    dead++;
                }
            }
        }
        if (dead > 0) {
            harness_kill (ctx->c.h, tool, SIGKILL);
        }
        int rc = s_apply_wait (ctx, tool);
        kills += dead;
        if (dead == 0 && rc == 0) {
            break;
        }
        //  Killed by the test, or ended 3 (a shard did not answer in time).
        assert_true (dead > 0 ? (rc == -SIGKILL || rc == 3 || rc == 0) : rc == 3);
    }
    assert_int_equal (kills, S_KILLS);
    assert_int_equal (s_check (ctx, dir), 0);
    s_audit (ctx);
    s_after (ctx, list, made_ms);
}

//  s1, a source of some of the change's steps, fails over in the middle of
//  its first one: its primary dies by SIGKILL once the final round is shipped (the
//  arc frozen for good, its pending transfers held, the handover not yet
//  made); its standby, which holds every write the primary acknowledged,
//  is promoted (`rlctl promote s1 STANDBY`); apply, run again, follows the
//  fail-over and completes the change; then the same checks as above.
static void
test_failover_with_pending (void **state)
{
    s_ctx_t *ctx = *state;
    static s_pending_t list[S_PENDING];
    int64_t made_ms = s_before (ctx, list);
    char dir[600];
    s_path (ctx, "failover", dir, sizeof dir);
    pid_t tool = s_apply_start (ctx, dir, NULL, "2000");
    tk_shard_t *s1 = &ctx->c.shards[0];
    int ws = 0;
    while (harness_wait_exit (ctx->c.h, s1->pid, 0, &ws) != 0) {
        int tool_ws = 0;
        if (harness_wait_exit (ctx->c.h, tool, 0, &tool_ws) == 0) {
            fail_msg ("apply ended (status %d) and s1 never reached migrate.shipped", tool_ws);
        }
        zclock_sleep (20);
    }
    assert_true (WIFSIGNALED (ws) && WTERMSIG (ws) == SIGKILL);
    s1->pid = 0;
    harness_kill (ctx->c.h, tool, SIGKILL);
    (void) s_apply_wait (ctx, tool);
    fprintf (stderr, "test_migrate_pending: s1's primary killed at migrate.shipped\n");
    char *out = NULL;
    int rc = rbk_rlctl_promote (&ctx->c, 1, "s1", ctx->standby.endpoint, &out);
    if (rc != 0 || !strstr (out, "done:")) {
        fail_msg ("rlctl promote s1 %s: exit %d; said:\n%s", ctx->standby.endpoint, rc, out);
    }
    free (out);
    rk_wait_serving (ctx->standby.endpoint);
    assert_int_equal (s_apply_wait (ctx, s_apply_start (ctx, dir, NULL, "2000")), 0);
    assert_int_equal (s_check (ctx, dir), 0);
    s_audit (ctx);
    s_after (ctx, list, made_ms);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_grow_with_pending, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_with_pending, s_setup_crash, s_teardown),
        cmocka_unit_test_setup_teardown (test_failover_with_pending, s_setup_failover, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
