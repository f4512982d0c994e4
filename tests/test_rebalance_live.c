/*  test_rebalance_live.c: `rebalance plan --live` and `rebalance suggest`
    against a real cluster under a skewed load, and against hostile
    servers (docs/rebalance.md, "Planning from live load").

    The cluster: shards s1..s3 (security on, keys in the ring) behind one
    router; S_ACCOUNTS accounts. The test process is the load: batches of
    transfers through the router for S_LOAD_MS, each record settled (sent
    again with its id until definite) and counted by the shard of its
    debit account, which is what the shards' counters count too.

    test_hot_arc: a quarter of the transfers debit the accounts of one arc
        of s1 (the arc of s1 holding the most accounts). plan --live (no
        change) must find each shard's share of the load that the test
        counted itself, and the skew; suggest must propose changes whose
        ring it predicts within the target (asked for 1.08); plan --live
        --to that ring must confirm it within 1.10 (the planner, from the
        shards' counters again); the human table says the same. Then
        `rebalance apply` of that ring while the same load goes on (the
        test keeps sending until apply ends): it must complete, `check`
        be clean, and the conservation check pass (every account asked of
        its owner in the new ring, every balance equal to the model).
    test_hot_account: 20 of 32 transfers debit one account. plan --live
        finds its shard hot; suggest cannot meet the target (exit 5) and
        names the account as one no placement of arcs can balance, in the
        JSON and in the table. Then the conservation check.
    test_bad_input: hostile or broken servers (one thread of the test
        serves get_ring, arc_load and hot_accounts as told): replies of the
        wrong size, too many records, arcs the ring does not give the
        shard, arcs out of order or twice, inconsistent counters, too many
        hot accounts, a hot account the shard does not own, an error
        status, no reply, a ring that does not decode; a router that is
        not there; and bad options. Each ends with its exit code and a
        message, and writes no --out file.
*/
#include <inttypes.h>
#include <pthread.h>
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
#include "jsonkit.h"
#include "ring.h"
#include "rl_rand.h"
#include "routerkit.h"
#include "testkit.h"

#define S_TAG           0x4c495645ull //  "LIVE"
#define S_LEDGER        62
#define S_ACCOUNTS      2000
#define S_SHARDS        3
#define S_BATCH         32
#define S_LOAD_MS       3000 //  the load runs this long (bounded by time, not count)
#define S_APPLY_LOAD_MS 300  //  a load between two looks at whether apply ended
#define S_SENT_MAX      200000
#define S_TOOL_MS       30000 //  one run of the tool
#define S_CALL_MS       2000
#define S_TARGET        1.10
//  suggest aims a little lower than the target the planner confirms: the
//  planner measures again, a moment later, and the window of the counters
//  may have moved by a second (a load of 3 s, the tools run after it).
#define S_SUGGEST_TARGET "1.08"
#define S_SHARE_TOL      0.05 //  a shard's measured share against the test's own count

typedef struct {
    harness_t *h;
    tk_shard_t shards[S_SHARDS];
    rk_router_t router;
    rl_client_t *client;
    ring_t *ring;
    char cert[512];
    char router_key[128];
    tk_model_t model;
    uint64_t next_id;
    uint64_t rng;
    uint64_t debits[S_SHARDS]; //  definite transfers sent, by the shard of their debit
    uint64_t debits_of_7;      //  definite transfers sent debiting account 7
    int tool_runs;
} s_ctx_t;

//  The tool --------------------------------------------------------------------

//  Runs rebalance with args (NULL-terminated); its exit code, its output
//  (stdout and stderr, malloc'd) into *out_p when out_p is not NULL.
static int
s_tool (s_ctx_t *ctx, char **out_p, const char *const *args)
{
    char path[1024], log[32];
    snprintf (path, sizeof path, "%s/tools/rebalance", harness_bin_dir ());
    snprintf (log, sizeof log, "tool-%d", ++ctx->tool_runs);
    char *argv[40];
    size_t n = 0;
    argv[n++] = path;
    for (size_t i = 0; args[i]; i++) {
        assert_true (n < 38);
        argv[n++] = (char *) args[i];
    }
    argv[n] = NULL;
    pid_t pid = harness_spawn (ctx->h, log, argv, NULL);
    assert_true (pid > 0);
    int ws = 0;
    if (harness_wait_exit (ctx->h, pid, S_TOOL_MS, &ws) != 0) {
        harness_dump_log (ctx->h, log);
        fail_msg ("rebalance did not end within %d ms", S_TOOL_MS);
    }
    char name[64];
    snprintf (name, sizeof name, "%s.log", log);
    char *file = harness_path (ctx->h, name);
    char *text = file ? harness_read_file (file, NULL) : NULL;
    free (file);
    if (!text) {
        text = strdup ("");
    }
    assert_non_null (text);
    if (out_p) {
        *out_p = text;
    } else {
        free (text);
    }
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

//  The tool's JSON output, parsed (fails the test unless it is one object).
static cJSON *
s_json (const char *text)
{
    cJSON *tree = cJSON_Parse (text);
    if (!tree || !cJSON_IsObject (tree)) {
        fail_msg ("not one JSON object:\n%s", text);
    }
    return tree;
}

static const cJSON *
s_shard_json (const cJSON *tree, const char *name)
{
    const cJSON *shards = jsonkit_get (tree, "shards");
    const cJSON *shard = NULL;
    cJSON_ArrayForEach (shard, shards)
    {
        if (strcmp (jsonkit_text (shard, "name"), name) == 0) {
            return shard;
        }
    }
    fail_msg ("no shard %s in the JSON", name);
    return NULL;
}

//  The cluster -------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    ctx->h = harness_new ("test_rebalance_live");
    assert_non_null (ctx->h);
    const char *keys = tk_keys_dir (ctx->h);
    snprintf (ctx->cert, sizeof ctx->cert, "%s/private/tester.key_secret", keys);
    ctx->rng = 0x11fe;
    ctx->next_id = 1;
    *state = ctx;
    return 0;
}

static void
s_cluster_start (s_ctx_t *ctx)
{
    ctx->ring = ring_new (1);
    assert_non_null (ctx->ring);
    const char *names[S_SHARDS] = {"s1", "s2", "s3"};
    for (size_t i = 0; i < S_SHARDS; i++) {
        tk_shard_init (ctx->h, &ctx->shards[i], names[i]);
        ctx->shards[i].durability = "nosync";
        assert_int_equal (ring_add_shard (ctx->ring, names[i], ctx->shards[i].endpoint, 1.0),
                          RING_OK);
        assert_int_equal (ring_set_key (ctx->ring, names[i], tk_key (ctx->h, "shard", names[i])),
                          RING_OK);
    }
    char *ring_path = harness_path (ctx->h, "r0.ring");
    assert_int_equal (ring_save_file (ctx->ring, ring_path), RING_OK);
    for (size_t i = 0; i < S_SHARDS; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof ctx->shards[i].ring_file, "%s", ring_path);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    }
    rk_router_init (&ctx->router, "r1");
    snprintf (ctx->router.ring_file, sizeof ctx->router.ring_file, "%s", ring_path);
    free (ring_path);
    assert_true (rk_router_start (ctx->h, &ctx->router) > 0);
    snprintf (ctx->router_key, sizeof ctx->router_key, "%s", tk_key (ctx->h, "router", "r1"));
    ctx->client = rl_client_new (ctx->router.endpoint);
    assert_non_null (ctx->client);
    tk_model_init (&ctx->model, S_TAG, S_ACCOUNTS);
    static rl_account_t accounts[S_ACCOUNTS];
    static rl_result_rec_t results[S_ACCOUNTS];
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        accounts[n - 1] = tk_account (n, S_TAG, S_LEDGER, 0); //  may go negative
    }
    for (size_t base = 0; base < S_ACCOUNTS; base += 500) {
        assert_int_equal (rl_client_create_accounts_retry (ctx->client, accounts + base, 500,
                                                           results + base, TK_TIMEOUT_MS, 20),
                          0);
        for (size_t k = 0; k < 500; k++) {
            assert_int_equal (results[base + k].result, RL_OK);
        }
    }
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rl_client_destroy (&ctx->client);
    rk_router_stop (ctx->h, &ctx->router);
    for (size_t i = 0; i < S_SHARDS; i++) {
        if (ctx->shards[i].pid > 0) {
            assert_true (tk_shard_stop (ctx->h, &ctx->shards[i], SIGTERM) >= 0);
        }
    }
    ring_destroy (&ctx->ring);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

static size_t
s_owner (const s_ctx_t *ctx, uint64_t n)
{
    int owner = rk_owner (ctx->ring, tk_id (n, S_TAG));
    assert_true (owner >= 0 && owner < S_SHARDS);
    return (size_t) owner;
}

//  The load: for S_LOAD_MS, batches whose debit accounts `pick` chooses
//  (credits: any other account). Every record is settled and counted.
typedef uint64_t (s_pick_fn) (s_ctx_t *ctx, size_t k, void *arg);

static void
s_load (s_ctx_t *ctx, s_pick_fn *pick, void *arg, int64_t duration_ms)
{
    int64_t end = zclock_mono () + duration_ms;
    rl_transfer_t batch[S_BATCH];
    rl_result_rec_t results[S_BATCH];
    while (zclock_mono () < end && ctx->next_id < S_SENT_MAX) {
        for (size_t k = 0; k < S_BATCH; k++) {
            uint64_t debit = pick (ctx, k, arg);
            uint64_t credit = 1 + rl_rand_next (&ctx->rng) % (S_ACCOUNTS - 1);
            credit += credit >= debit;
            batch[k] = tk_transfer (tk_id (ctx->next_id++, S_TAG + 1), tk_id (debit, S_TAG),
                                    tk_id (credit, S_TAG), 1 + rl_rand_next (&ctx->rng) % 9,
                                    S_LEDGER);
        }
        bool open = true;
        for (int attempt = 0; open && attempt < 20; attempt++) {
            int rc = rl_client_create_transfers_retry (ctx->client, batch, S_BATCH, results,
                                                       S_CALL_MS, 3);
            assert_true (rc == 0 || rc == RL_CLIENT_INCOMPLETE);
            open = false;
            for (size_t k = 0; k < S_BATCH; k++) {
                uint32_t r = results[k].result;
                assert_false (tk_result_is_business (r) && r != RL_EXISTS);
                open = open || (r != RL_OK && r != RL_EXISTS);
            }
        }
        assert_false (open);
        for (size_t k = 0; k < S_BATCH; k++) {
            tk_model_apply (&ctx->model, &batch[k]);
            ctx->debits[s_owner (ctx, batch[k].debit_account_id.lo)]++;
            ctx->debits_of_7 += batch[k].debit_account_id.lo == 7;
        }
    }
}

//  The shares the test counted, and its own imbalance.
static double
s_counted_share (const s_ctx_t *ctx, size_t x)
{
    uint64_t total = 0;
    for (size_t i = 0; i < S_SHARDS; i++) {
        total += ctx->debits[i];
    }
    return (double) ctx->debits[x] / (double) total;
}

static void
s_check_measured (const s_ctx_t *ctx, const cJSON *tree)
{
    double worst = 0;
    for (size_t x = 0; x < S_SHARDS; x++) {
        const cJSON *shard = s_shard_json (tree, ctx->shards[x].name);
        double measured = jsonkit_double (shard, "load_share_before");
        double counted = s_counted_share (ctx, x);
        print_message ("%s: %.3f of the load measured, %.3f counted by the test\n",
                       ctx->shards[x].name, measured, counted);
        assert_true (measured > counted - S_SHARE_TOL && measured < counted + S_SHARE_TOL);
        worst = counted > worst ? counted : worst;
    }
    double imbalance = jsonkit_double (tree, "imbalance_before");
    assert_true (imbalance > worst * S_SHARDS - 0.15 && imbalance < worst * S_SHARDS + 0.15);
}

static void
s_conservation (s_ctx_t *ctx)
{
    assert_true (tk_wait_cluster_quiet (ctx->client, TK_QUIET_TIMEOUT_MS));
    tk_check_conservation (ctx->client, &ctx->model, 1000);
}

//  A hot arc ----------------------------------------------------------------------

typedef struct {
    uint64_t hot[S_ACCOUNTS];
    size_t hot_count;
} s_arc_pick_t;

static uint64_t
s_pick_arc (s_ctx_t *ctx, size_t k, void *arg)
{
    s_arc_pick_t *p = arg;
    if (k % 4 == 0) {
        return p->hot[rl_rand_next (&ctx->rng) % p->hot_count];
    }
    return 1 + rl_rand_next (&ctx->rng) % S_ACCOUNTS;
}

//  `rebalance apply` from the ring the cluster serves to `proposed`, run
//  while the test keeps loading (S_APPLY_LOAD_MS at a time, until apply
//  ends); then `rebalance check` (clean).
static void
s_apply_loaded (s_ctx_t *ctx, const char *proposed, s_arc_pick_t *pick)
{
    char *current = harness_path (ctx->h, "r0.ring");
    char *dir = harness_path (ctx->h, "apply-state");
    char path[1024], log[32];
    snprintf (path, sizeof path, "%s/tools/rebalance", harness_bin_dir ());
    snprintf (log, sizeof log, "tool-%d", ++ctx->tool_runs);
    char *argv[] = {path,     "apply",   current, (char *) proposed, "--state", dir,
                    "--cert", ctx->cert, NULL};
    uint64_t sent_before = ctx->next_id;
    pid_t pid = harness_spawn (ctx->h, log, argv, NULL);
    assert_true (pid > 0);
    int64_t deadline = zclock_mono () + S_TOOL_MS;
    int ws = 0, loads = 0;
    do {
        s_load (ctx, s_pick_arc, pick, S_APPLY_LOAD_MS);
        loads++;
        if (zclock_mono () > deadline) {
            harness_dump_log (ctx->h, log);
            fail_msg ("rebalance apply did not end within %d ms", S_TOOL_MS);
        }
    } while (harness_wait_exit (ctx->h, pid, 0, &ws) != 0);
    char name[64];
    snprintf (name, sizeof name, "%s.log", log);
    char *file = harness_path (ctx->h, name);
    char *text = harness_read_file (file, NULL);
    print_message ("apply under load (%d loads, %" PRIu64 " transfers meanwhile):\n", loads,
                   ctx->next_id - sent_before);
    for (char *line = text ? strtok (text, "\n") : NULL; line; line = strtok (NULL, "\n")) {
        print_message ("  %s\n", line);
    }
    if (!WIFEXITED (ws) || WEXITSTATUS (ws) != 0) {
        fail_msg ("rebalance apply of the suggested ring failed (status %d)", ws);
    }
    free (text);
    text = harness_read_file (file, NULL);
    assert_non_null (text);
    assert_non_null (strstr (text, "done: every shard serves epoch"));
    free (text);
    free (file);
    const char *check[] = {"check", "--state", dir, "--cert", ctx->cert, NULL};
    char *out = NULL;
    int rc = s_tool (ctx, &out, check);
    if (rc != 0) {
        fail_msg ("rebalance check after apply: exit %d\n%s", rc, out);
    }
    free (out);
    free (dir);
    free (current);
}

static void
test_hot_arc (void **state)
{
    s_ctx_t *ctx = *state;
    s_cluster_start (ctx);
    //  The arc of s1 that holds the most accounts.
    size_t points = ring_point_count (ctx->ring);
    size_t *held = calloc (points, sizeof (size_t));
    assert_non_null (held);
    size_t best = SIZE_MAX;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (tk_id (n, S_TAG), bytes);
        uint64_t point = ring_point_of_id (bytes);
        size_t p = 0;
        while (p < points && ring_point_position (ctx->ring, p) < point) {
            p++;
        }
        p = p == points ? 0 : p;
        held[p]++;
        if (ring_point_owner (ctx->ring, p) == 0 && (best == SIZE_MAX || held[p] > held[best])) {
            best = p;
        }
    }
    static s_arc_pick_t pick;
    pick.hot_count = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (tk_id (n, S_TAG), bytes);
        uint64_t point = ring_point_of_id (bytes);
        uint64_t start = ring_point_position (ctx->ring, (best + points - 1) % points);
        uint64_t end = ring_point_position (ctx->ring, best);
        bool in = start < end ? point > start && point <= end : point > start || point <= end;
        if (in) {
            pick.hot[pick.hot_count++] = n;
        }
    }
    free (held);
    print_message ("hot arc: %zu accounts of s1\n", pick.hot_count);
    assert_true (pick.hot_count >= 4);
    s_load (ctx, s_pick_arc, &pick, S_LOAD_MS);

    //  suggest: changes whose ring it predicts within the target.
    char *out = NULL;
    char *proposed = harness_path (ctx->h, "suggested.ring");
    const char *suggest[] = {"suggest", "--live",       ctx->router.endpoint, "--cert",
                             ctx->cert, "--server-key", ctx->router_key,      "--out",
                             proposed,  "--target",     S_SUGGEST_TARGET,     "--json",
                             NULL};
    assert_int_equal (s_tool (ctx, &out, suggest), 0);
    cJSON *tree = s_json (out);
    free (out);
    double suggested = jsonkit_double (tree, "imbalance_after");
    print_message ("suggest: %.4f -> %.4f, %d changes\n", jsonkit_double (tree, "imbalance_before"),
                   suggested, cJSON_GetArraySize (jsonkit_get (tree, "changes")));
    assert_true (jsonkit_true (tree, "target_met"));
    assert_true (suggested <= 1.08);
    assert_true (cJSON_GetArraySize (jsonkit_get (tree, "changes")) >= 1);
    assert_int_equal (jsonkit_u64 (tree, "epoch_after"), 2);
    cJSON_Delete (tree);

    //  The planner confirms it, from the shards' counters again.
    const char *confirm[] = {"plan",          "--live",  ctx->router.endpoint,
                             "--cert",        ctx->cert, "--server-key",
                             ctx->router_key, "--to",    proposed,
                             "--json",        NULL};
    assert_int_equal (s_tool (ctx, &out, confirm), 0);
    tree = s_json (out);
    free (out);
    print_message ("plan --live --to: %.4f\n", jsonkit_double (tree, "imbalance_after"));
    assert_true (jsonkit_double (tree, "imbalance_after") <= S_TARGET);
    double moved = jsonkit_double (jsonkit_get (tree, "moved"), "load_share");
    assert_true (moved > 0 && moved < 1);
    cJSON_Delete (tree);

    //  plan --live without a change: the skew as the test counted it.
    const char *plan[] = {"plan",          "--live",  ctx->router.endpoint,
                          "--cert",        ctx->cert, "--server-key",
                          ctx->router_key, "--json",  NULL};
    assert_int_equal (s_tool (ctx, &out, plan), 0);
    tree = s_json (out);
    free (out);
    s_check_measured (ctx, tree);
    assert_true (jsonkit_double (tree, "imbalance_before") > 1.3);
    assert_true (jsonkit_double (tree, "load") > 100);
    assert_int_equal (jsonkit_u64 (tree, "accounts"), S_ACCOUNTS);
    assert_true (jsonkit_u64 (tree, "bytes") >= S_ACCOUNTS * RL_ACCOUNT_SIZE);
    cJSON_Delete (tree);

    //  The table says the same.
    const char *table[] = {"plan",
                           "--live",
                           ctx->router.endpoint,
                           "--cert",
                           ctx->cert,
                           "--server-key",
                           ctx->router_key,
                           "--to",
                           proposed,
                           NULL};
    assert_int_equal (s_tool (ctx, &out, table), 0);
    assert_non_null (strstr (out, "imbalance (max/mean load by capacity)"));
    assert_non_null (strstr (out, "s1 "));
    assert_non_null (strstr (out, "moves: "));
    free (out);

    //  The suggested ring applied while the same load goes on: apply must
    //  complete, check must be clean, and the conservation check pass.
    s_apply_loaded (ctx, proposed, &pick);
    free (proposed);
    s_conservation (ctx);
}

//  A hot account -------------------------------------------------------------------

static uint64_t
s_pick_account (s_ctx_t *ctx, size_t k, void *arg)
{
    (void) arg;
    if (k % 5 < 3) {
        return 7; //  20 of 32 transfers
    }
    return 1 + rl_rand_next (&ctx->rng) % S_ACCOUNTS;
}

static void
test_hot_account (void **state)
{
    s_ctx_t *ctx = *state;
    s_cluster_start (ctx);
    s_load (ctx, s_pick_account, NULL, S_LOAD_MS);
    const char *owner = ctx->shards[s_owner (ctx, 7)].name;
    char id[64];
    snprintf (id, sizeof id, "0x%016" PRIx64 "%016" PRIx64, (uint64_t) S_TAG, (uint64_t) 7);

    char *out = NULL;
    const char *plan[] = {"plan",          "--live",  ctx->router.endpoint,
                          "--cert",        ctx->cert, "--server-key",
                          ctx->router_key, "--json",  NULL};
    assert_int_equal (s_tool (ctx, &out, plan), 0);
    cJSON *tree = s_json (out);
    free (out);
    s_check_measured (ctx, tree);
    assert_true (jsonkit_double (s_shard_json (tree, owner), "load_share_before") > 0.6);
    cJSON_Delete (tree);

    const char *suggest[] = {"suggest",       "--live",  ctx->router.endpoint,
                             "--cert",        ctx->cert, "--server-key",
                             ctx->router_key, "--json",  NULL};
    assert_int_equal (s_tool (ctx, &out, suggest), 5);
    tree = s_json (out);
    free (out);
    assert_false (jsonkit_true (tree, "target_met"));
    assert_true (jsonkit_double (tree, "imbalance_after") > S_TARGET);
    const cJSON *hot = NULL;
    const cJSON *named = NULL;
    cJSON_ArrayForEach (hot, jsonkit_get (tree, "hot_accounts"))
    {
        bool alone = jsonkit_true (hot, "unbalanceable");
        if (strcmp (jsonkit_text (hot, "id"), id) == 0) {
            named = hot;
        } else {
            assert_false (alone); //  no other account is that hot
        }
    }
    assert_non_null (named);
    assert_true (jsonkit_true (named, "unbalanceable"));
    assert_string_equal (jsonkit_text (named, "shard_before"), owner);
    double share = jsonkit_double (named, "load_share");
    print_message ("account 7 on %s: %.3f of the load (at least), %.1f..%.1f/s of %.1f/s\n", owner,
                   share, jsonkit_double (named, "load"), jsonkit_double (named, "load_max"),
                   jsonkit_double (tree, "load"));
    //  The shard reports a lower bound: at most what the test counted
    //  (a retried record counts again on both sides of the ratio).
    uint64_t total = ctx->debits[0] + ctx->debits[1] + ctx->debits[2];
    double counted = (double) ctx->debits_of_7 / (double) total;
    assert_true (share > counted - S_SHARE_TOL && share < counted + 0.005);
    cJSON_Delete (tree);

    const char *table[] = {"suggest", "--live",       ctx->router.endpoint, "--cert",
                           ctx->cert, "--server-key", ctx->router_key,      NULL};
    assert_int_equal (s_tool (ctx, &out, table), 5);
    char *line = strstr (out, id);
    assert_non_null (line);
    assert_non_null (strstr (line, "too hot alone"));
    assert_non_null (strstr (out, "the target is not met"));
    free (out);
    s_conservation (ctx);
}

//  Hostile servers -----------------------------------------------------------------

typedef enum {
    S_FAKE_GOOD = 0,
    S_FAKE_SHORT_RECORD, //  63-byte arc records
    S_FAKE_EXTRA_ARC,    //  one arc more than the ring gives
    S_FAKE_FOREIGN_ARC,  //  an arc of the other shard
    S_FAKE_WRONG_START,  //  an arc whose start is not its ring predecessor
    S_FAKE_TWICE,        //  the same arc twice (and one missing)
    S_FAKE_COUNTERS,     //  transfers_window above transfers_total
    S_FAKE_HUGE,         //  accounts beyond any believable count
    S_FAKE_WINDOW,       //  window_ms 0
    S_FAKE_HOT_MANY,     //  33 hot accounts
    S_FAKE_HOT_FOREIGN,  //  a hot account of the other shard
    S_FAKE_HOT_ERROR,    //  error above the count
    S_FAKE_BUSY,         //  arc_load answered busy
    S_FAKE_SILENT,       //  arc_load never answered
    S_FAKE_BAD_RING,     //  get_ring answers bytes that are no ring
    S_FAKE_CASES
} s_fake_case_t;

typedef struct {
    ring_t *ring; //  two shards f1, f2, served by the two sockets
    zsock_t *socks[2];
    volatile int mode;
    volatile bool stop;
    pthread_t thread;
} s_fake_t;

static uint64_t
s_fake_hot_id (const ring_t *ring, size_t owner)
{
    for (uint64_t n = 1;; n++) {
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (tk_id (n, S_TAG), bytes);
        if (ring_lookup_id (ring, bytes) == (int) owner) {
            return n;
        }
    }
}

//  The reply of shard x to one request, as the mode says (NULL: none).
static zframe_t *
s_fake_reply (s_fake_t *fake, size_t x, const rl_header_t *req)
{
    const ring_t *ring = fake->ring;
    int mode = fake->mode;
    size_t points = ring_point_count (ring);
    uint8_t *body = NULL;
    size_t count = 0, size = 0;
    uint32_t status = RL_STATUS_OK;
    if (req->operation == RL_OP_GET_RING) {
        count = 1;
        size = ring_encoded_size (ring);
        body = malloc (size);
        assert_non_null (body);
        assert_int_equal (ring_encode (ring, body, size), size);
        if (mode == S_FAKE_BAD_RING) {
            memset (body + 8, 0xee, size - 8);
        }
    } else if (req->operation == RL_OP_ARC_LOAD) {
        if (mode == S_FAKE_SILENT) {
            return NULL;
        }
        status = mode == S_FAKE_BUSY ? RL_STATUS_BUSY : RL_STATUS_OK;
        size_t record = mode == S_FAKE_SHORT_RECORD ? RL_ARC_LOAD_SIZE - 1 : RL_ARC_LOAD_SIZE;
        body = calloc (points + 1, RL_ARC_LOAD_SIZE);
        assert_non_null (body);
        size_t last = SIZE_MAX;
        for (size_t p = 0; p < points; p++) {
            size_t owner = ring_point_owner (ring, p);
            bool foreign = mode == S_FAKE_FOREIGN_ARC && count == 2 && owner != x;
            if (owner != x && !foreign) {
                continue;
            }
            if (foreign) {
                count--; //  instead of one of its own
            }
            size_t at = mode == S_FAKE_TWICE && count == 3 ? last : p;
            rl_arc_load_rec_t rec = {
                .arc_start = ring_point_position (ring, (at + points - 1) % points),
                .arc_end = ring_point_position (ring, at),
                .accounts = mode == S_FAKE_HUGE ? UINT64_MAX / 256 : 3,
                .transfers_window = 50,
                .window_ms = mode == S_FAKE_WINDOW ? 0 : 10000,
                .transfers_total = mode == S_FAKE_COUNTERS ? 10 : 80,
                .record_bytes = 999,
            };
            rec.account_bytes = rec.accounts * RL_ACCOUNT_SIZE;
            rec.transfers_per_s = rec.window_ms ? (uint32_t) (50 * 1000 / rec.window_ms) : 0;
            if (mode == S_FAKE_WRONG_START && count == 1) {
                rec.arc_start++;
            }
            codec_encode_arc_load (&rec, body + count * record);
            count++;
            last = p;
        }
        if (mode == S_FAKE_EXTRA_ARC) {
            memcpy (body + count * record, body, record);
            count++;
        }
        size = count * record;
    } else if (req->operation == RL_OP_HOT_ACCOUNTS) {
        count = mode == S_FAKE_HOT_MANY ? RL_HOT_ACCOUNTS_MAX + 1 : 1;
        body = calloc (count, RL_HOT_ACCOUNTS_SIZE);
        assert_non_null (body);
        for (size_t k = 0; k < count; k++) {
            size_t owner = mode == S_FAKE_HOT_FOREIGN ? 1 - x : x;
            uint64_t n = s_fake_hot_id (ring, owner) + (k > 0 ? 1000 * k : 0);
            rl_hot_account_rec_t rec = {
                .id = tk_id (n, S_TAG),
                .transfers_window = 40,
                .error = mode == S_FAKE_HOT_ERROR ? 41 : 1,
                .others_max = 2,
                .window_ms = 10000,
                .counted = 1000,
            };
            codec_encode_hot_account (&rec, body + k * RL_HOT_ACCOUNTS_SIZE);
        }
        size = count * RL_HOT_ACCOUNTS_SIZE;
    } else {
        status = RL_STATUS_UNKNOWN_OPERATION;
    }
    if (status != RL_STATUS_OK) {
        count = size = 0;
    }
    rl_header_t h = codec_reply_header (req, status, (uint32_t) count, ring_epoch (ring));
    zframe_t *frame = zframe_new (NULL, codec_frame_size (size));
    assert_non_null (frame);
    codec_encode_frame (&h, body, size, zframe_data (frame));
    free (body);
    return frame;
}

static void *
s_fake_run (void *arg)
{
    s_fake_t *fake = arg;
    zpoller_t *poller = zpoller_new (fake->socks[0], fake->socks[1], NULL);
    while (!fake->stop) {
        zsock_t *which = zpoller_wait (poller, 50);
        if (!which) {
            continue;
        }
        size_t x = which == fake->socks[0] ? 0 : 1;
        zmsg_t *msg = zmsg_recv (which);
        if (!msg || zmsg_size (msg) != 2) {
            zmsg_destroy (&msg);
            continue;
        }
        zframe_t *route = zmsg_pop (msg);
        zframe_t *payload = zmsg_pop (msg);
        rl_header_t req;
        if (zframe_size (payload) >= RL_HEADER_SIZE) {
            codec_decode_header (zframe_data (payload), &req);
            zframe_t *reply = s_fake_reply (fake, x, &req);
            if (reply) {
                zmsg_t *out = zmsg_new ();
                zmsg_append (out, &route);
                zmsg_append (out, &reply);
                zmsg_send (&out, which);
            }
        }
        zframe_destroy (&route);
        zframe_destroy (&payload);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return NULL;
}

static void
s_fake_start (s_fake_t *fake)
{
    memset (fake, 0, sizeof *fake);
    fake->ring = ring_new (5);
    assert_non_null (fake->ring);
    for (size_t x = 0; x < 2; x++) {
        char endpoint[64], name[8];
        int port = harness_free_port ();
        assert_true (port > 0);
        snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
        snprintf (name, sizeof name, "f%zu", x + 1);
        fake->socks[x] = zsock_new (ZMQ_ROUTER);
        assert_non_null (fake->socks[x]);
        assert_true (zsock_bind (fake->socks[x], "%s", endpoint) >= 0);
        assert_int_equal (ring_add_shard (fake->ring, name, endpoint, 1.0), RING_OK);
    }
    assert_int_equal (pthread_create (&fake->thread, NULL, s_fake_run, fake), 0);
}

static void
s_fake_stop (s_fake_t *fake)
{
    fake->stop = true;
    assert_int_equal (pthread_join (fake->thread, NULL), 0);
    for (size_t x = 0; x < 2; x++) {
        zsock_destroy (&fake->socks[x]);
    }
    ring_destroy (&fake->ring);
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0;
}

//  Runs the tool, expects `code` and `message` in its output, and no --out file.
static void
s_expect (s_ctx_t *ctx, const char *const *args, int code, const char *message,
          const char *out_path)
{
    char *out = NULL;
    int rc = s_tool (ctx, &out, args);
    if (rc != code || !strstr (out, message)) {
        fail_msg ("exit %d (want %d), output without '%s':\n%s", rc, code, message, out);
    }
    free (out);
    if (out_path) {
        assert_false (s_exists (out_path));
    }
}

static void
test_bad_input (void **state)
{
    s_ctx_t *ctx = *state;
    static s_fake_t fake;
    s_fake_start (&fake);
    const char *live = ring_shard_endpoint (fake.ring, 0); //  get_ring: a shard answers it
    char *out_path = harness_path (ctx->h, "never.ring");
    //  The fake serves well first: the tool works against it.
    const char *good[] = {
        "plan",         "--live", live,     "--insecure", "--add", "f3=tcp://127.0.0.1:1",
        "--timeout-ms", "2000",   "--json", NULL};
    char *out = NULL;
    assert_int_equal (s_tool (ctx, &out, good), 0);
    cJSON *tree = s_json (out);
    free (out);
    assert_int_equal (jsonkit_u64 (tree, "accounts"), 3 * ring_point_count (fake.ring));
    assert_int_equal (cJSON_GetArraySize (jsonkit_get (tree, "hot_accounts")), 2);
    cJSON_Delete (tree);
    static const struct {
        int mode;
        const char *message;
    } cases[] = {
        {S_FAKE_SHORT_RECORD, "arc_load"},
        {S_FAKE_EXTRA_ARC, "arc_load answered"},
        {S_FAKE_FOREIGN_ARC, "is not one of its arcs"},
        {S_FAKE_WRONG_START, "is not one of its arcs"},
        {S_FAKE_TWICE, "out of ring order"},
        {S_FAKE_COUNTERS, "inconsistent counters"},
        {S_FAKE_HUGE, "inconsistent counters"},
        {S_FAKE_WINDOW, "inconsistent counters"},
        {S_FAKE_HOT_MANY, "hot_accounts: 33 records"},
        {S_FAKE_HOT_FOREIGN, "an account it does not own"},
        {S_FAKE_HOT_ERROR, "inconsistent counters"},
        {S_FAKE_BUSY, "busy"},
        {S_FAKE_SILENT, "arc_load"},
        {S_FAKE_BAD_RING, "does not decode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake.mode = cases[i].mode;
        print_message ("hostile case %d: %s\n", cases[i].mode, cases[i].message);
        const char *plan[] = {"plan", "--live", live,     "--insecure", "--timeout-ms",
                              "1000", "--out",  out_path, NULL};
        s_expect (ctx, plan, 3, cases[i].message, out_path);
        const char *suggest[] = {"suggest", "--live", live,     "--insecure", "--timeout-ms",
                                 "1000",    "--out",  out_path, "--json",     NULL};
        s_expect (ctx, suggest, 3, cases[i].message, out_path);
    }
    fake.mode = S_FAKE_GOOD;
    //  Nobody there.
    char nobody[64];
    snprintf (nobody, sizeof nobody, "tcp://127.0.0.1:%d", harness_free_port ());
    const char *down[] = {"plan", "--live", nobody,   "--insecure", "--timeout-ms",
                          "300",  "--out",  out_path, NULL};
    s_expect (ctx, down, 3, "no ring from", out_path);
    const char *down2[] = {"suggest",
                           "--live",
                           nobody,
                           "--cert",
                           ctx->cert,
                           "--server-key",
                           tk_key (ctx->h, "router", "r1"),
                           "--timeout-ms",
                           "300",
                           NULL};
    s_expect (ctx, down2, 3, "no ring from", NULL);
    //  Bad options: nothing is asked.
    char *ring_path = harness_path (ctx->h, "fake.ring");
    assert_int_equal (ring_save_file (fake.ring, ring_path), RING_OK);
    char *junk_path = harness_path (ctx->h, "junk.ring");
    FILE *junk = fopen (junk_path, "w");
    assert_non_null (junk);
    fputs ("not a ring\n", junk);
    fclose (junk);
    const struct {
        const char *args[12];
        int code;
        const char *message;
    } bad[] = {
        {{"suggest", "--insecure", NULL}, 2, "needs --live ROUTER"},
        {{"plan", "--live", live, "--insecure", "--bogus", "1", NULL}, 2, "unknown option"},
        {{"suggest", "--live", live, "--insecure", "--to", ring_path, NULL}, 2, "unknown option"},
        {{"plan", "--live", live, "--insecure", "--spare", "x=y", NULL}, 2, "unknown option"},
        {{"suggest", "--live", live, "--insecure", "--target", "0.9", NULL}, 2, "--target"},
        {{"suggest", "--live", live, "--insecure", "--target", "abc", NULL}, 2, "--target"},
        {{"suggest", "--live", live, "--insecure", "--target", "1e300", NULL}, 2, "--target"},
        {{"suggest", "--live", live, "--insecure", "--max-steps", "0", NULL}, 2, "--max-steps"},
        {{"suggest", "--live", live, "--insecure", "--max-steps", "-3", NULL}, 2, "--max-steps"},
        {{"suggest", "--live", live, "--insecure", "--spare", "noendpoint", NULL}, 2, "--spare"},
        {{"suggest", "--live", live, "--insecure", "--spare", "x=tcp://h:1@0", NULL}, 2, "--spare"},
        {{"suggest", "--live", live, "--insecure", "--spare", "f1=tcp://h:1", NULL},
         2,
         "has that shard already"},
        {{"plan", "--live", live, "--insecure", "--timeout-ms", "0", NULL}, 2, "--timeout-ms"},
        {{"plan", "--live", live, "--insecure", "--cert", ctx->cert, NULL}, 2, "--insecure takes"},
        {{"plan", "--live", live, NULL}, 2, "give --cert FILE"},
        {{"plan", "--live", live, "--cert", junk_path, NULL}, 2, "--cert"},
        {{"plan", "--live", live, "--insecure", "--to", ring_path, "--add", "a=tcp://h:1", NULL},
         2,
         "--to takes the new ring whole"},
        {{"plan", "--live", live, "--insecure", "--reweight", "nobody=2", NULL}, 2, "nobody"},
        {{"plan", "--live", live, "--insecure", "--reweight", "f1=-1", NULL}, 2, "f1"},
        {{"plan", "--live", live, "--insecure", "--remove", "f1", "--remove", "f2", NULL},
         2,
         "a ring needs a shard"},
        {{"plan", "--live", live, "--insecure", "--to", junk_path, NULL}, 1, "bad ring file"},
        {{"plan", "--live", live, "--insecure", "--out", "/nonexistent/dir/x.ring", NULL},
         1,
         "cannot write"},
        {{"plan", "--live", "no-endpoint", "--insecure", NULL}, 2, "not an endpoint"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_expect (ctx, bad[i].args, bad[i].code, bad[i].message, out_path);
    }
    free (ring_path);
    free (junk_path);
    free (out_path);
    s_fake_stop (&fake);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_hot_arc, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hot_account, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_input, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
