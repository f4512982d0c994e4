/*  routerkit.c: see routerkit.h. */
#include "routerkit.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "keys.h"

//  A router process ------------------------------------------------------------

void
rk_router_init (rk_router_t *r, const char *name)
{
    memset (r, 0, sizeof (*r));
    snprintf (r->name, sizeof (r->name), "%s", name);
    r->port = harness_free_port ();
    assert_true (r->port > 0);
    snprintf (r->endpoint, sizeof (r->endpoint), "tcp://127.0.0.1:%d", r->port);
    r->pid = -1;
}

static bool
s_router_ready (harness_t *h, rk_router_t *r)
{
    rl_client_t *client = rl_client_new (r->endpoint);
    assert_non_null (client);
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    bool ready = false;
    while (!ready && zclock_mono () < deadline) {
        if (harness_wait_exit (h, r->pid, 0, NULL) == 0) {
            r->pid = -1;
            break;
        }
        rl_status_rec_t status;
        ready = rl_client_status (client, &status, 200) == 0 && strcmp (status.name, r->name) == 0;
    }
    rl_client_destroy (&client);
    return ready;
}

pid_t
rk_router_start (harness_t *h, rk_router_t *r)
{
    char path[1024], deadline[32], shard_deadline[32], refresh[32];
    snprintf (path, sizeof (path), "%s/router/router", harness_bin_dir ());
    snprintf (deadline, sizeof (deadline), "%ld", r->deadline_ms);
    snprintf (shard_deadline, sizeof (shard_deadline), "%ld", r->shard_deadline_ms);
    snprintf (refresh, sizeof (refresh), "%ld", r->refresh_ms);
    for (int attempt = 0; attempt < TK_START_ATTEMPTS; attempt++) {
        char *argv[28];
        int n = 0;
        argv[n++] = path;
        argv[n++] = "--name";
        argv[n++] = r->name;
        argv[n++] = "--bind";
        argv[n++] = r->endpoint;
        argv[n++] = "--keys";
        argv[n++] = (char *) tk_keys_dir (h);
        assert_int_equal (rl_client_add_server_key (r->endpoint, tk_key (h, "router", r->name)), 0);
        if (r->ring_file[0]) {
            argv[n++] = "--ring";
            argv[n++] = r->ring_file;
        } else {
            argv[n++] = "--shard";
            argv[n++] = r->shards;
            static char shard_key[RL_KEY_TEXT_SIZE];
            snprintf (shard_key, sizeof shard_key, "%s", tk_key (h, "shard", r->shard_key_name));
            argv[n++] = "--shard-key";
            argv[n++] = shard_key;
        }
        if (r->deadline_ms > 0) {
            argv[n++] = "--deadline-ms";
            argv[n++] = deadline;
        }
        if (r->shard_deadline_ms > 0) {
            argv[n++] = "--shard-deadline-ms";
            argv[n++] = shard_deadline;
        }
        if (r->refresh_ms > 0) {
            argv[n++] = "--ring-refresh-ms";
            argv[n++] = refresh;
        }
        for (int k = 0; k < 8 && r->args[k]; k++) {
            argv[n++] = r->args[k];
        }
        argv[n] = NULL;
        char fp_env[sizeof (r->failpoints) + 16];
        snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=%s", r->failpoints);
        char *env[6];
        int e = 0;
        if (r->failpoints[0]) {
            env[e++] = fp_env;
        }
        for (int k = 0; k < 4 && r->env[k]; k++) {
            env[e++] = r->env[k];
        }
        env[e] = NULL;
        r->pid = harness_spawn (h, r->name, argv, e > 0 ? env : NULL);
        if (r->pid < 0) {
            return -1;
        }
        if (s_router_ready (h, r)) {
            return r->pid;
        }
        if (r->pid > 0) {
            break; //  alive but not answering: a real failure
        }
        r->port = harness_free_port ();
        snprintf (r->endpoint, sizeof (r->endpoint), "tcp://127.0.0.1:%d", r->port);
    }
    harness_dump_log (h, r->name);
    return -1;
}

//  SIGTERM: the router answers what is open and exits 0 (with sanitizers,
//  a leak or an error report would make the exit status non-zero).
void
rk_router_stop (harness_t *h, rk_router_t *r)
{
    if (r->pid <= 0) {
        return;
    }
    int wstatus = 0;
    assert_int_equal (harness_kill (h, r->pid, SIGTERM), 0);
    assert_int_equal (harness_wait_exit (h, r->pid, 20000, &wstatus), 0);
    if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != 0) {
        harness_dump_log (h, r->name);
        fail_msg ("router %s did not exit cleanly (status 0x%x)", r->name, wstatus);
    }
    r->pid = -1;
}

//  A cluster: shards with one ring file, and routers -----------------------------

int
rk_setup (void **state)
{
    rk_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->h = harness_new ("router");
    *state = ctx;
    return ctx->h ? 0 : -1;
}

int
rk_teardown (void **state)
{
    rk_ctx_t *ctx = *state;
    if (ctx) {
        rl_client_destroy (&ctx->client);
        ring_destroy (&ctx->ring);
        harness_destroy (&ctx->h);
        free (ctx);
    }
    return 0;
}

//  Writes a ring of the first `count` shards at `epoch` to `path`.
ring_t *
rk_ring_write (rk_ctx_t *ctx, size_t count, uint64_t epoch, const char *path)
{
    ring_t *ring = ring_new (epoch);
    assert_non_null (ring);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (ring_add_shard (ring, ctx->shards[i].name, ctx->shards[i].endpoint, 1.0),
                          RING_OK);
    }
    assert_int_equal (ring_save_file (ring, path), RING_OK);
    return ring;
}

//  Starts `shards` shards serving a ring (epoch 1) of the first `ring_shards`
//  of them, and router 0 on that ring file.
void
rk_cluster_start (rk_ctx_t *ctx, size_t shards, size_t ring_shards, long deadline_ms,
                  long refresh_ms)
{
    static const char *names[RK_SHARDS_MAX] = {"s1", "s2", "s3"};
    ctx->shard_count = shards;
    for (size_t i = 0; i < shards; i++) {
        tk_shard_init (ctx->h, &ctx->shards[i], names[i]);
    }
    snprintf (ctx->ring_file, sizeof (ctx->ring_file), "%s/cluster.ring", harness_dir (ctx->h));
    ctx->ring = rk_ring_write (ctx, ring_shards, 1, ctx->ring_file);
    for (size_t i = 0; i < shards; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof (ctx->shards[i].ring_file), "%s",
                  ctx->ring_file);
        if (deadline_ms > 0) {
            //  A short router deadline: shorter shard timers to keep the order.
            ctx->shards[i].args[0] = "--prepare-timeout-ms";
            ctx->shards[i].args[1] = RK_PREPARE_MS;
            ctx->shards[i].args[2] = "--deadline-ms";
            ctx->shards[i].args[3] = RK_SHARD_DEADLINE_TEXT;
            ctx->shards[i].args[4] = NULL;
        }
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    }
    rk_router_t *r = &ctx->routers[0];
    rk_router_init (r, "r1");
    snprintf (r->ring_file, sizeof (r->ring_file), "%s", ctx->ring_file);
    r->deadline_ms = deadline_ms;
    r->shard_deadline_ms = deadline_ms > 0 ? RK_SHARD_DEADLINE_MS : 0;
    r->refresh_ms = refresh_ms;
    assert_true (rk_router_start (ctx->h, r) > 0);
    ctx->client = rl_client_new (r->endpoint);
    assert_non_null (ctx->client);
    tk_model_init (&ctx->model, RK_TAG, RK_ACCOUNTS);
}

void
rk_routers_stop (rk_ctx_t *ctx)
{
    for (size_t i = 0; i < RK_ROUTERS_MAX; i++) {
        rk_router_stop (ctx->h, &ctx->routers[i]);
    }
}

int
rk_owner (const ring_t *ring, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    return ring_lookup_id (ring, bytes);
}

//  Account n (1-based): every fifth one may not go negative; the others may
//  (operators), so that transfers from them always succeed.
uint16_t
rk_account_flags (uint64_t n)
{
    return n % 5 == 0 ? RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS : 0;
}

void
rk_create_accounts (rk_ctx_t *ctx)
{
    rl_result_rec_t results[RK_ACCOUNTS];
    for (uint64_t i = 0; i < RK_ACCOUNTS; i++) {
        ctx->accounts[i] = tk_account (i + 1, RK_TAG, RK_LEDGER, rk_account_flags (i + 1));
    }
    assert_int_equal (
        rl_client_create_accounts (ctx->client, ctx->accounts, RK_ACCOUNTS, results, TK_TIMEOUT_MS),
        0);
    for (size_t i = 0; i < RK_ACCOUNTS; i++) {
        if (results[i].result != RL_OK || results[i].index != i) {
            fail_msg ("account %zu: %s at index %u", i + 1, rl_result_name (results[i].result),
                      results[i].index);
        }
    }
}

//  An account other than n on the same shard as n (in `ring`), or 0.
uint64_t
rk_partner (const ring_t *ring, uint64_t n, bool same_shard)
{
    int owner = rk_owner (ring, tk_id (n, RK_TAG));
    for (uint64_t k = 1; k < RK_ACCOUNTS; k++) {
        uint64_t m = (n - 1 + k) % RK_ACCOUNTS + 1;
        if ((rk_owner (ring, tk_id (m, RK_TAG)) == owner) == same_shard) {
            return m;
        }
    }
    return 0;
}

//  One same-shard transfer from every operator account: ids base + n.
size_t
rk_same_shard_batch (const ring_t *ring, uint64_t base, rl_transfer_t *out)
{
    size_t count = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        uint64_t c = rk_partner (ring, n, true);
        if (rk_account_flags (n) == 0 && c != 0) {
            out[count++] = tk_transfer (tk_id (base + n, RK_TAG), tk_id (n, RK_TAG),
                                        tk_id (c, RK_TAG), n * 10 + base % 7, RK_LEDGER);
        }
    }
    assert_true (count > 0);
    return count;
}

int
rk_shard_of_transfer (const ring_t *ring, const rl_transfer_t *t)
{
    return rk_owner (ring, t->debit_account_id);
}

rl_status_rec_t
rk_status_of (const char *endpoint)
{
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (client, &status, TK_TIMEOUT_MS), 0);
    rl_client_destroy (&client);
    return status;
}

int
rk_rlctl (rk_ctx_t *ctx, size_t router, const char *log, char **out_p, ...)
{
    va_list args;
    va_start (args, out_p);
    int rc = rk_rlctl_v (ctx, router, log, out_p, args);
    va_end (args);
    return rc;
}

int
rk_rlctl_v (rk_ctx_t *ctx, size_t router, const char *log, char **out_p, va_list args)
{
    assert_true (router < RK_ROUTERS_MAX);
    char rlctl[512], cert[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/tester.key_secret", tk_keys_dir (ctx->h));
    snprintf (key, sizeof key, "%s", tk_key (ctx->h, "router", ctx->routers[router].name));
    char *argv[40] = {rlctl,
                      "--connect",
                      ctx->routers[router].endpoint,
                      "--cert",
                      cert,
                      "--server-key",
                      key,
                      "--json",
                      "--timeout-ms",
                      RK_RLCTL_TIMEOUT};
    size_t argc = 10;
    const char *arg;
    while ((arg = va_arg (args, const char *)) && argc < 39) {
        argv[argc++] = (char *) arg;
    }
    argv[argc] = NULL;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (ctx->h), log);
    unlink (path);
    pid_t pid = harness_spawn (ctx->h, log, argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (ctx->h, pid, RK_RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    *out_p = harness_read_file (path, NULL);
    assert_non_null (*out_p);
    return WEXITSTATUS (wstatus);
}

//  Retries `batch` (same ids) until every record is definite, and applies
//  to the model each record of `apply` (a flag per record) that is ok or
//  exists.
void
rk_settle (rk_ctx_t *ctx, rl_client_t *client, const rl_transfer_t *batch, size_t count,
           const bool *apply)
{
    rl_result_rec_t *results = calloc (count, sizeof (*results));
    assert_non_null (results);
    int rc = rl_client_create_transfers_retry (client, batch, count, results, TK_TIMEOUT_MS,
                                               RK_RETRY_ATTEMPTS);
    if (rc != 0) {
        fail_msg ("retry: %s", rl_client_strerror (rc));
    }
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].index, i);
        if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
            fail_msg ("transfer %zu: %s after retries", i, rl_result_name (results[i].result));
        }
        if (apply[i]) {
            tk_model_apply (&ctx->model, &batch[i]);
        }
    }
    free (results);
}
