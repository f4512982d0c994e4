/*  test_router_faults.c: real shard processes behind real routers, with
    faults: shards stopped or killed, routers killed.

    Covers: deadlines with a stopped or killed shard (outcome_unknown or
    busy on that shard's records, definite results elsewhere, reads
    timeout/unavailable) and exactly-once retries, the per-shard in-flight
    bound (busy), a router killed mid-load with the batches retried through
    another router, a router killed in the middle of a two-phase transfer,
    and both routers down at once while the client keeps retrying. Every
    scenario ends with the strong conservation check.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "ring.h"
#include "routerkit.h"
#include "testkit.h"

#define DEADLINE_SLACK_MS 2500 //  a loaded machine (sanitizers, parallel tests)

//  Deadlines -----------------------------------------------------------------------

static void
test_deadline_stopped_and_killed_shard (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, RK_DEADLINE_MS, 0);
    rk_create_accounts (ctx);
    rl_transfer_t batch[RK_ACCOUNTS];
    rl_result_rec_t results[RK_ACCOUNTS];
    bool apply[RK_ACCOUNTS];

    //  A stopped shard: its records are outcome_unknown at the deadline.
    tk_shard_t *stopped = &ctx->shards[1];
    assert_int_equal (harness_kill (ctx->h, stopped->pid, SIGSTOP), 0);
    size_t count = rk_same_shard_batch (ctx->ring, 2000, batch);
    int64_t started = zclock_mono ();
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    int64_t elapsed = zclock_mono () - started;
    assert_true (elapsed >= RK_DEADLINE_MS - RL_ROUTER_TICK_MS);
    assert_true (elapsed < RK_DEADLINE_MS + DEADLINE_SLACK_MS);
    size_t unknown = 0;
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].index, i);
        bool on_stopped = rk_shard_of_transfer (ctx->ring, &batch[i]) == 1;
        assert_int_equal (results[i].result, on_stopped ? RL_OUTCOME_UNKNOWN : RL_OK);
        unknown += on_stopped;
        if (!on_stopped) {
            tk_model_apply (&ctx->model, &batch[i]);
        }
        apply[i] = on_stopped;
    }
    assert_true (unknown > 0);
    //  Reads: timeout when they need the stopped shard, served otherwise.
    rl_id_t on_stopped = {0}, elsewhere = {0};
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        *(rk_owner (ctx->ring, tk_id (n, RK_TAG)) == 1 ? &on_stopped : &elsewhere) = tk_id (n,
                                                                                            RK_TAG);
    }
    rl_account_t account;
    assert_int_equal (
        rl_client_lookup_accounts (ctx->client, &on_stopped, 1, &account, TK_TIMEOUT_MS),
        RL_STATUS_TIMEOUT);
    assert_int_equal (
        rl_client_lookup_accounts (ctx->client, &elsewhere, 1, &account, TK_TIMEOUT_MS), 0);
    rl_transfer_t transfer;
    assert_int_equal (
        rl_client_lookup_transfers (ctx->client, &batch[0].id, 1, &transfer, TK_TIMEOUT_MS),
        RL_STATUS_TIMEOUT);

    //  The per-shard in-flight bound: pipelined single-record creates for the
    //  stopped shard; the ones past the bound are refused busy at once.
    enum { PIPELINED = RL_ROUTER_INFLIGHT_PER_SHARD_MAX + 16 };
    static rl_transfer_t piped[PIPELINED];
    bool piped_apply[PIPELINED];
    uint64_t from = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        if (rk_owner (ctx->ring, tk_id (n, RK_TAG)) == 1 && rk_account_flags (n) == 0) {
            from = n;
        }
    }
    uint64_t to = rk_partner (ctx->ring, from, true);
    assert_true (to != 0);
    assert_int_equal (rl_client_set_window (ctx->client, PIPELINED), 0);
    for (size_t i = 0; i < PIPELINED; i++) {
        piped[i] = tk_transfer (tk_id (3000 + i, RK_TAG), tk_id (from, RK_TAG), tk_id (to, RK_TAG),
                                1, RK_LEDGER);
        piped_apply[i] = true;
        uint64_t request_id;
        assert_int_equal (rl_client_send_transfers (ctx->client, &piped[i], 1, &request_id), 0);
    }
    size_t busy = 0, piped_unknown = 0;
    for (size_t i = 0; i < PIPELINED; i++) {
        rl_header_t h;
        uint8_t *body = NULL;
        size_t size = 0;
        int rc = rl_client_recv (ctx->client, TK_TIMEOUT_MS, &h, &body, &size);
        if (rc == RL_STATUS_BUSY) {
            busy++;
        } else {
            assert_int_equal (rc, 0);
            rl_result_rec_t r;
            rl_client_decode_results (body, 1, &r);
            assert_int_equal (r.result, RL_OUTCOME_UNKNOWN);
            piped_unknown++;
        }
        free (body);
    }
    assert_int_equal (rl_client_inflight (ctx->client), 0);
    assert_true (busy >= PIPELINED - RL_ROUTER_INFLIGHT_PER_SHARD_MAX);
    assert_true (piped_unknown > 0);

    //  Back again: retries with the same ids apply each transfer exactly once.
    assert_int_equal (harness_kill (ctx->h, stopped->pid, SIGCONT), 0);
    rk_settle (ctx, ctx->client, batch, count, apply);
    rk_settle (ctx, ctx->client, piped, PIPELINED, piped_apply);

    //  A killed shard: nothing can be sent to it (busy), or what was sent
    //  before the router noticed is outcome_unknown. Reads: unavailable or
    //  timeout.
    tk_shard_t *killed = &ctx->shards[2];
    char endpoint[64];
    snprintf (endpoint, sizeof (endpoint), "%s", killed->endpoint);
    assert_true (tk_shard_stop (ctx->h, killed, SIGKILL) >= 0);
    count = rk_same_shard_batch (ctx->ring, 4000, batch);
    started = zclock_mono ();
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    assert_true (zclock_mono () - started < RK_DEADLINE_MS + DEADLINE_SLACK_MS);
    for (size_t i = 0; i < count; i++) {
        bool on_killed = rk_shard_of_transfer (ctx->ring, &batch[i]) == 2;
        uint32_t r = results[i].result;
        if (on_killed) {
            assert_true (r == RL_BUSY || r == RL_OUTCOME_UNKNOWN);
        } else {
            assert_int_equal (r, RL_OK);
            tk_model_apply (&ctx->model, &batch[i]);
        }
        apply[i] = on_killed;
    }
    rl_id_t on_killed = {0};
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        if (rk_owner (ctx->ring, tk_id (n, RK_TAG)) == 2) {
            on_killed = tk_id (n, RK_TAG);
        }
    }
    int rc = rl_client_lookup_accounts (ctx->client, &on_killed, 1, &account, TK_TIMEOUT_MS);
    assert_true (rc == RL_STATUS_UNAVAILABLE || rc == RL_STATUS_TIMEOUT);
    assert_true (tk_shard_start (ctx->h, killed) > 0);
    assert_string_equal (killed->endpoint, endpoint); //  the ring still names it
    rk_settle (ctx, ctx->client, batch, count, apply);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
    rk_routers_stop (ctx);
}

//  Statelessness: a router killed mid-load --------------------------------------------

enum { LOAD_BATCHES = 12 };

//  Exactly once, after the retries: every id of the batches is found, the
//  three shards together applied `total` transfers (each counts those it
//  coordinated), and the strong conservation check passes.
#define S_BATCHES_MAX 16
static void
s_expect_exactly_once (rk_ctx_t *ctx, rl_client_t *client, rl_transfer_t (*batches)[RK_ACCOUNTS],
                       const size_t *counts, size_t batch_count, size_t total)
{
    assert_true (batch_count <= S_BATCHES_MAX);
    static rl_id_t ids[S_BATCHES_MAX * RK_ACCOUNTS];
    static rl_transfer_t found[S_BATCHES_MAX * RK_ACCOUNTS];
    size_t n = 0;
    for (size_t b = 0; b < batch_count; b++) {
        for (size_t i = 0; i < counts[b]; i++) {
            ids[n++] = batches[b][i].id;
        }
    }
    assert_int_equal (n, total);
    assert_int_equal (rl_client_lookup_transfers (client, ids, n, found, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true (found[i].timestamp > 0);
    }
    uint64_t applied = 0;
    for (size_t s = 0; s < 3; s++) {
        applied += rk_status_of (ctx->shards[s].endpoint).transfers;
    }
    assert_int_equal (applied, total);
    tk_check_conservation (client, &ctx->model, total);
}

static void
test_router_killed_mid_load (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, 0, 0);
    rk_router_t *r2 = &ctx->routers[1];
    rk_router_init (r2, "r2");
    //  The second router learns the ring from the shards.
    snprintf (r2->shards, sizeof (r2->shards), "%s,%s,%s", ctx->shards[0].endpoint,
              ctx->shards[1].endpoint, ctx->shards[2].endpoint);
    snprintf (r2->shard_key_name, sizeof (r2->shard_key_name), "%s", ctx->shards[0].name);
    assert_true (rk_router_start (ctx->h, r2) > 0);
    rk_create_accounts (ctx);

    static rl_transfer_t batches[LOAD_BATCHES][RK_ACCOUNTS];
    size_t counts[LOAD_BATCHES];
    uint64_t request_ids[LOAD_BATCHES];
    for (size_t b = 0; b < LOAD_BATCHES; b++) {
        counts[b] = rk_same_shard_batch (ctx->ring, 10000 + b * 100, batches[b]);
        assert_int_equal (
            rl_client_send_transfers (ctx->client, batches[b], counts[b], &request_ids[b]), 0);
    }
    //  Some answers arrive; then the router dies with the rest in flight.
    bool answered[LOAD_BATCHES] = {false};
    for (int k = 0; k < 2; k++) {
        rl_header_t h;
        uint8_t *body = NULL;
        size_t size = 0;
        assert_int_equal (rl_client_recv (ctx->client, TK_TIMEOUT_MS, &h, &body, &size), 0);
        for (size_t b = 0; b < LOAD_BATCHES; b++) {
            if (request_ids[b] == h.request_id) {
                rl_result_rec_t results[RK_ACCOUNTS];
                rl_client_decode_results (body, counts[b], results);
                for (size_t i = 0; i < counts[b]; i++) {
                    assert_int_equal (results[i].result, RL_OK);
                }
                answered[b] = true;
            }
        }
        free (body);
    }
    assert_int_equal (harness_kill (ctx->h, ctx->routers[0].pid, SIGKILL), 0);
    assert_int_equal (harness_wait_exit (ctx->h, ctx->routers[0].pid, 20000, NULL), 0);
    ctx->routers[0].pid = -1;

    //  Every batch again, same ids, through the other router.
    rl_client_t *client = rl_client_new (r2->endpoint);
    assert_non_null (client);
    size_t total = 0;
    for (size_t b = 0; b < LOAD_BATCHES; b++) {
        bool apply[RK_ACCOUNTS];
        for (size_t i = 0; i < counts[b]; i++) {
            apply[i] = true;
        }
        rl_result_rec_t results[RK_ACCOUNTS];
        assert_int_equal (rl_client_create_transfers_retry (client, batches[b], counts[b], results,
                                                            TK_TIMEOUT_MS, RK_RETRY_ATTEMPTS),
                          0);
        for (size_t i = 0; i < counts[b]; i++) {
            if (answered[b]) {
                assert_int_equal (results[i].result, RL_EXISTS);
            }
        }
        rk_settle (ctx, client, batches[b], counts[b], apply);
        total += counts[b];
    }
    s_expect_exactly_once (ctx, client, batches, counts, LOAD_BATCHES, total);
    rl_client_destroy (&client);
    rk_routers_stop (ctx);
}

//  A router killed in the middle of a two-phase transfer: the client retries
//  through another router before the decision. The debit shard keeps one
//  live attempt per id, so the retry gets in_progress, never a second
//  attempt; once decided, retries settle to exactly one application.
static void
test_router_killed_mid_twophase (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    rk_router_t *r2 = &ctx->routers[1];
    rk_router_init (r2, "r2");
    snprintf (r2->ring_file, sizeof (r2->ring_file), "%s", ctx->ring_file);
    assert_true (rk_router_start (ctx->h, r2) > 0);
    rl_client_t *second = rl_client_new (r2->endpoint);
    assert_non_null (second);
    //  An operator account whose partner lives on the other shard.
    uint64_t n = 1, c = 0;
    for (;
         n <= RK_ACCOUNTS && !(rk_account_flags (n) == 0 && (c = rk_partner (ctx->ring, n, false)));
         n++) {
    }
    assert_true (n <= RK_ACCOUNTS && c != 0);
    rl_transfer_t t = tk_transfer (tk_id (900000 + n, RK_TAG), tk_id (n, RK_TAG), tk_id (c, RK_TAG),
                                   77, RK_LEDGER);
    int credit_shard = rk_owner (ctx->ring, t.credit_account_id);
    assert_int_equal (harness_kill (ctx->h, ctx->shards[credit_shard].pid, SIGSTOP), 0);
    //  Through r1, without waiting for the answer; then r1 dies.
    uint8_t body[RL_TRANSFER_SIZE], *reply = NULL;
    size_t reply_size = 0;
    rl_header_t rh;
    codec_encode_transfer (&t, body);
    assert_int_equal (rl_client_call (ctx->client, RL_OP_CREATE_TRANSFERS, body, sizeof (body), 1,
                                      50, &rh, &reply, &reply_size),
                      RL_CLIENT_TIMEOUT);
    assert_int_equal (harness_kill (ctx->h, ctx->routers[0].pid, SIGKILL), 0);
    assert_int_equal (harness_wait_exit (ctx->h, ctx->routers[0].pid, 20000, NULL), 0);
    ctx->routers[0].pid = -1;
    //  The same id through r2, before the decision: the attempt is live.
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (second, &t, 1, &r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_IN_PROGRESS);
    assert_int_equal (harness_kill (ctx->h, ctx->shards[credit_shard].pid, SIGCONT), 0);
    //  Retry until definite: committed (ok, then exists) or aborted then executed.
    uint32_t result = RL_IN_PROGRESS;
    for (int attempt = 0; attempt < RK_RETRY_ATTEMPTS; attempt++) {
        assert_int_equal (rl_client_create_transfers (second, &t, 1, &r, TK_TIMEOUT_MS), 0);
        result = r.result;
        if (result == RL_OK || result == RL_EXISTS) {
            break;
        }
        assert_true (result == RL_IN_PROGRESS || result == RL_ABORTED);
        zclock_sleep (20); //  backoff between client retries
    }
    assert_true (result == RL_OK || result == RL_EXISTS);
    assert_int_equal (rl_client_create_transfers (second, &t, 1, &r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_EXISTS);
    tk_model_apply (&ctx->model, &t);
    rl_client_t *shards[2] = {rl_client_new (ctx->shards[0].endpoint),
                              rl_client_new (ctx->shards[1].endpoint)};
    assert_true (tk_wait_quiet (shards, 2, 15000));
    rl_client_destroy (&shards[0]);
    rl_client_destroy (&shards[1]);
    tk_check_conservation (second, &ctx->model, 1);
    rl_client_destroy (&second);
    rk_routers_stop (ctx);
}

//  Both routers down at once -------------------------------------------------------

enum { DOWN_BATCHES = 8 };

//  One cross-shard transfer from every operator account to a partner on
//  another shard: ids base + n. Operators have no limit, so each is ok.
static size_t
s_cross_shard_batch (const ring_t *ring, uint64_t base, rl_transfer_t *out)
{
    size_t count = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        uint64_t c = rk_account_flags (n) == 0 ? rk_partner (ring, n, false) : 0;
        if (c != 0) {
            out[count++] = tk_transfer (tk_id (base + n, RK_TAG), tk_id (n, RK_TAG),
                                        tk_id (c, RK_TAG), 1 + n, RK_LEDGER);
        }
    }
    return count;
}

//  Both routers die with batches in flight; the client keeps retrying while
//  none is up (no answer, nothing applied twice), then both come back on
//  their endpoints and the same ids settle: every transfer exactly once.
static void
test_both_routers_down (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, 0, 0);
    rk_router_t *r2 = &ctx->routers[1];
    rk_router_init (r2, "r2");
    snprintf (r2->ring_file, sizeof (r2->ring_file), "%s", ctx->ring_file);
    assert_true (rk_router_start (ctx->h, r2) > 0);
    rk_create_accounts (ctx);
    char endpoints[160];
    snprintf (endpoints, sizeof (endpoints), "%s,%s", ctx->routers[0].endpoint, r2->endpoint);
    rl_client_t *client = rl_client_new (endpoints);
    assert_non_null (client);

    static rl_transfer_t batches[DOWN_BATCHES][RK_ACCOUNTS];
    size_t counts[DOWN_BATCHES];
    uint64_t request_ids[DOWN_BATCHES];
    size_t total = 0, cross = 0;
    for (size_t b = 0; b < DOWN_BATCHES; b++) {
        uint64_t base = 20000 + b * 100;
        counts[b] = b % 2 == 0 ? rk_same_shard_batch (ctx->ring, base, batches[b])
                               : s_cross_shard_batch (ctx->ring, base, batches[b]);
        assert_true (counts[b] > 0);
        cross += b % 2 == 1 ? counts[b] : 0;
        total += counts[b];
        assert_int_equal (rl_client_send_transfers (client, batches[b], counts[b], &request_ids[b]),
                          0);
    }
    assert_true (cross > 0);
    for (size_t i = 0; i < RK_ROUTERS_MAX; i++) {
        assert_int_equal (harness_kill (ctx->h, ctx->routers[i].pid, SIGKILL), 0);
    }
    for (size_t i = 0; i < RK_ROUTERS_MAX; i++) {
        assert_int_equal (harness_wait_exit (ctx->h, ctx->routers[i].pid, 20000, NULL), 0);
        ctx->routers[i].pid = -1;
    }
    //  No router: every retry ends without an answer, never with a result.
    for (size_t b = 0; b < DOWN_BATCHES; b++) {
        rl_result_rec_t results[RK_ACCOUNTS];
        int rc = rl_client_create_transfers (client, batches[b], counts[b], results, 100);
        assert_true (rc == RL_CLIENT_TIMEOUT || rc == RL_CLIENT_ERR_SEND);
    }
    //  Both return on their endpoints; the same ids settle exactly once.
    for (size_t i = 0; i < RK_ROUTERS_MAX; i++) {
        int port = ctx->routers[i].port;
        assert_true (rk_router_start (ctx->h, &ctx->routers[i]) > 0);
        assert_int_equal (ctx->routers[i].port, port);
    }
    for (size_t b = 0; b < DOWN_BATCHES; b++) {
        bool apply[RK_ACCOUNTS];
        for (size_t i = 0; i < counts[b]; i++) {
            apply[i] = true;
        }
        rk_settle (ctx, client, batches[b], counts[b], apply);
    }
    s_expect_exactly_once (ctx, client, batches, counts, DOWN_BATCHES, total);
    rl_client_destroy (&client);
    rk_routers_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_deadline_stopped_and_killed_shard, rk_setup,
                                         rk_teardown),
        cmocka_unit_test_setup_teardown (test_router_killed_mid_load, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_router_killed_mid_twophase, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_both_routers_down, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
