/*  test_router_routing.c: real shard processes behind a real router, in
    the good case: how the router splits and routes.

    Covers: splitting and merging (results in the client's order, lookups,
    history, lookup_transfers by broadcast), duplicate ids, the router's own
    status and ring, wrong_shard and the ring refresh (also when the shard
    whose reply showed the newer epoch takes nothing), and the client
    library's retry helper and pipelined window.

    Cross-shard transfers must be answered ok like same-shard ones; the
    tests update the model for every ok. The cluster comes from routerkit.h; the
    faults are in test_router_faults.c, bad input in test_router_input.c.
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

//  Splitting and merging -------------------------------------------------------

static void
test_routing (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, 0, 0);
    rk_create_accounts (ctx);
    //  Each shard holds exactly the accounts the ring gives it.
    size_t owned[RK_SHARDS_MAX] = {0};
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        owned[rk_owner (ctx->ring, tk_id (n, RK_TAG))]++;
    }
    for (size_t s = 0; s < 3; s++) {
        assert_true (owned[s] > 0);
        assert_int_equal (rk_status_of (ctx->shards[s].endpoint).accounts, owned[s]);
    }
    rl_result_rec_t results[64];
    assert_int_equal (
        rl_client_create_accounts (ctx->client, ctx->accounts, RK_ACCOUNTS, results, TK_TIMEOUT_MS),
        0);
    for (size_t i = 0; i < RK_ACCOUNTS; i++) {
        assert_int_equal (results[i].result, RL_EXISTS);
        assert_int_equal (results[i].index, i);
    }

    //  A mixed batch: a business failure first, same-shard transfers, and
    //  cross-shard ones (two-phase, answered ok all the same).
    rl_transfer_t batch[64];
    uint32_t expect[64];
    bool is_cross[64] = {false};
    size_t count = 0;
    uint64_t poor = 5; //  may not go negative, has received nothing
    batch[count] = tk_transfer (tk_id (1900, RK_TAG), tk_id (poor, RK_TAG),
                                tk_id (rk_partner (ctx->ring, poor, true), RK_TAG), 1000000,
                                RK_LEDGER);
    expect[count++] = RL_EXCEEDS_CREDITS;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        if (rk_account_flags (n) != 0) {
            continue;
        }
        uint64_t same = rk_partner (ctx->ring, n, true);
        batch[count] = tk_transfer (tk_id (1000 + n, RK_TAG), tk_id (n, RK_TAG),
                                    tk_id (same, RK_TAG), n * 3, RK_LEDGER);
        expect[count++] = RL_OK;
        if (n % 4 == 1) {
            uint64_t other = rk_partner (ctx->ring, n, false);
            batch[count] = tk_transfer (tk_id (1100 + n, RK_TAG), tk_id (n, RK_TAG),
                                        tk_id (other, RK_TAG), n * 5, RK_LEDGER);
            is_cross[count] = true;
            expect[count++] = RL_OK;
        }
    }
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    bool applied[64] = {false};
    size_t cross = 0;
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].index, i);
        uint32_t r = results[i].result;
        cross += is_cross[i];
        if (r != expect[i]) {
            fail_msg ("%s transfer %zu: %s, want %s", is_cross[i] ? "cross-shard" : "same-shard", i,
                      rl_result_name (r), rl_result_name (expect[i]));
        }
        if (r == RL_OK) {
            assert_true (results[i].timestamp > 0);
            tk_model_apply (&ctx->model, &batch[i]);
            applied[i] = true;
        }
    }
    assert_true (cross > 0);

    //  lookup_accounts: in the client's order, across shards, with a miss.
    //  (Once the cross-shard credits have landed: until then they show as
    //  reserved on the credit side.)
    assert_true (tk_wait_cluster_quiet (ctx->client, 20000));
    rl_id_t ids[RK_ACCOUNTS + 1];
    rl_account_t accounts[RK_ACCOUNTS + 1];
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        ids[RK_ACCOUNTS - n] = tk_id (n, RK_TAG); //  reversed
    }
    ids[RK_ACCOUNTS] = tk_id (999, RK_TAG);
    assert_int_equal (
        rl_client_lookup_accounts (ctx->client, ids, RK_ACCOUNTS + 1, accounts, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < RK_ACCOUNTS; i++) {
        uint64_t n = RK_ACCOUNTS - i;
        assert_true (rl_id_eq (accounts[i].id, tk_id (n, RK_TAG)));
        assert_true (accounts[i].timestamp > 0);
        assert_int_equal (accounts[i].debits_posted, ctx->model.debits[n]);
        assert_int_equal (accounts[i].credits_posted, ctx->model.credits[n]);
    }
    assert_true (rl_id_eq (accounts[RK_ACCOUNTS].id, tk_id (999, RK_TAG)));
    assert_int_equal (accounts[RK_ACCOUNTS].timestamp, 0);

    //  lookup_transfers by id alone: a broadcast, merged. Only the debit
    //  shard finds a transfer by its id (a credit shard keeps the credit leg
    //  of a cross-shard one under (id, debit account), not under the id), so
    //  the answer is the transfer's own record with the timestamp the client
    //  was given, whichever shard answers first (asked a few times).
    rl_id_t tids[65];
    static rl_transfer_t found[65];
    for (size_t i = 0; i < count; i++) {
        tids[i] = batch[i].id;
    }
    tids[count] = tk_id (77777, RK_TAG);
    for (int round = 0; round < 3; round++) {
        assert_int_equal (
            rl_client_lookup_transfers (ctx->client, tids, count + 1, found, TK_TIMEOUT_MS), 0);
        for (size_t i = 0; i < count; i++) {
            if (applied[i] && found[i].timestamp != results[i].timestamp) {
                fail_msg ("lookup round %d: %s transfer %zu has timestamp %lu, want %lu", round,
                          is_cross[i] ? "cross-shard" : "same-shard", i,
                          (unsigned long) found[i].timestamp, (unsigned long) results[i].timestamp);
            }
        }
    }
    for (size_t i = 0; i <= count; i++) {
        assert_true (rl_id_eq (found[i].id, tids[i]));
        if (i < count && applied[i]) {
            assert_int_equal (found[i].timestamp, results[i].timestamp);
            assert_int_equal (found[i].amount, batch[i].amount);
            assert_true (rl_id_eq (found[i].debit_account_id, batch[i].debit_account_id));
            assert_true (rl_id_eq (found[i].credit_account_id, batch[i].credit_account_id));
        } else {
            assert_int_equal (found[i].timestamp, 0);
            assert_int_equal (found[i].amount, 0);
        }
    }

    //  History goes to the account's shard.
    uint64_t n = 1;
    size_t touching = 0;
    for (size_t i = 0; i < count; i++) {
        touching += applied[i]
                    && (batch[i].debit_account_id.lo == n || batch[i].credit_account_id.lo == n);
    }
    rl_filter_t filter = {.account_id = tk_id (n, RK_TAG),
                          .limit = 64,
                          .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
    size_t history = 0;
    assert_int_equal (
        rl_client_get_account_transfers (ctx->client, &filter, found, &history, TK_TIMEOUT_MS), 0);
    assert_true (touching > 0);
    assert_int_equal (history, touching);
    filter.limit = 0;
    assert_int_equal (
        rl_client_get_account_transfers (ctx->client, &filter, found, &history, TK_TIMEOUT_MS),
        RL_STATUS_BAD_FILTER);

    //  An id twice in one batch: refused as a whole, nothing applied.
    uint64_t a = 1, b = 2;
    rl_transfer_t dup[3] = {
        tk_transfer (tk_id (5001, RK_TAG), tk_id (a, RK_TAG),
                     tk_id (rk_partner (ctx->ring, a, true), RK_TAG), 1, RK_LEDGER),
        tk_transfer (tk_id (5002, RK_TAG), tk_id (b, RK_TAG),
                     tk_id (rk_partner (ctx->ring, b, true), RK_TAG), 1, RK_LEDGER),
        tk_transfer (tk_id (5001, RK_TAG), tk_id (b, RK_TAG),
                     tk_id (rk_partner (ctx->ring, b, true), RK_TAG), 2, RK_LEDGER),
    };
    assert_int_equal (rl_client_create_transfers (ctx->client, dup, 3, results, TK_TIMEOUT_MS),
                      RL_STATUS_DUPLICATE_ID);
    rl_id_t dup_ids[2] = {tk_id (5001, RK_TAG), tk_id (5002, RK_TAG)};
    assert_int_equal (rl_client_lookup_transfers (ctx->client, dup_ids, 2, found, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (found[0].timestamp, 0);
    assert_int_equal (found[1].timestamp, 0);
    rl_account_t dup_accounts[2] = {tk_account (500, RK_TAG, RK_LEDGER, 0),
                                    tk_account (500, RK_TAG, RK_LEDGER, 0)};
    assert_int_equal (
        rl_client_create_accounts (ctx->client, dup_accounts, 2, results, TK_TIMEOUT_MS),
        RL_STATUS_DUPLICATE_ID);
    rl_id_t id500 = tk_id (500, RK_TAG);
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &id500, 1, accounts, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (accounts[0].timestamp, 0);
    //  Empty batches cost a round trip and nothing else.
    assert_int_equal (rl_client_create_transfers (ctx->client, batch, 0, results, TK_TIMEOUT_MS),
                      0);

    //  The router's own status and ring; load_ring is for the shards.
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->client, &status, TK_TIMEOUT_MS), 0);
    assert_string_equal (status.name, "r1");
    assert_int_equal (status.epoch, 1);
    assert_int_equal (status.ring_shards, 3);
    assert_int_equal (status.durability, 0);
    assert_true (status.requests >= 8);
    uint8_t *blob = NULL;
    size_t blob_size = 0;
    assert_int_equal (rl_client_get_ring (ctx->client, &blob, &blob_size, TK_TIMEOUT_MS), 0);
    char err[256];
    ring_t *ring = ring_decode (blob, blob_size, err, sizeof (err));
    assert_non_null (ring);
    assert_int_equal (ring_epoch (ring), 1);
    assert_int_equal (ring_shard_count (ring), 3);
    assert_int_equal (rl_client_load_ring (ctx->client, blob, blob_size, TK_TIMEOUT_MS),
                      RL_STATUS_UNKNOWN_OPERATION);
    ring_destroy (&ring);
    free (blob);

    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
    rk_routers_stop (ctx);
}

//  wrong_shard and the ring refresh ---------------------------------------------------

//  Loads ring into the first `count` shards directly (admin path).
static void
s_load_ring_into (rk_ctx_t *ctx, const ring_t *ring, size_t count)
{
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    for (size_t s = 0; s < count; s++) {
        rl_client_t *admin = rl_client_new (ctx->shards[s].endpoint);
        assert_int_equal (rl_client_load_ring (admin, blob, size, TK_TIMEOUT_MS), 0);
        rl_client_destroy (&admin);
    }
    free (blob);
}

static void
test_wrong_shard_refresh (void **state)
{
    rk_ctx_t *ctx = *state;
    //  Ring epoch 1 names s1 and s2. No periodic refresh during the test:
    //  only a wrong_shard answer can teach the router the new ring.
    rk_cluster_start (ctx, 2, 2, 0, 600000);

    //  Epoch 2 adds s3, which starts with it: its first ring, so its arcs
    //  count as received (it joins before any account exists). Load it
    //  into s1 and s2 directly (admin path): they only lose arcs.
    tk_shard_t *s3 = &ctx->shards[2];
    tk_shard_init (ctx->h, s3, "s3");
    ctx->shard_count = 3;
    ring_t *ring2 = ring_dup (ctx->ring);
    assert_non_null (ring2);
    assert_int_equal (ring_add_shard (ring2, "s3", s3->endpoint, 1.0), RING_OK);
    ring_set_epoch (ring2, 2);
    snprintf (s3->ring_file, sizeof (s3->ring_file), "%s/epoch2.ring", harness_dir (ctx->h));
    assert_int_equal (ring_save_file (ring2, s3->ring_file), RING_OK);
    assert_true (tk_shard_start (ctx->h, s3) > 0);
    s_load_ring_into (ctx, ring2, 2);
    ring_destroy (&ctx->ring);
    ctx->ring = ring2;
    size_t moved = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        moved += rk_owner (ctx->ring, tk_id (n, RK_TAG)) == 2;
    }
    assert_true (moved > 0);

    //  The router still routes by epoch 1: the moved accounts come back
    //  wrong_shard, the router fetches epoch 2 and sends them to s3.
    rk_create_accounts (ctx);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->client, &status, TK_TIMEOUT_MS), 0);
    assert_int_equal (status.epoch, 2);
    assert_int_equal (status.ring_shards, 3);
    assert_true (status.wrong_shard >= moved);
    assert_int_equal (rk_status_of (ctx->shards[2].endpoint).accounts, moved);

    rl_transfer_t batch[RK_ACCOUNTS];
    rl_result_rec_t results[RK_ACCOUNTS];
    size_t count = rk_same_shard_batch (ctx->ring, 6000, batch);
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].result, RL_OK);
        tk_model_apply (&ctx->model, &batch[i]);
    }
    tk_check_conservation (ctx->client, &ctx->model, count);
    rk_routers_stop (ctx);
}

//  A router's epoch (asserted).
static uint64_t
s_router_epoch (rl_client_t *client)
{
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (client, &status, TK_TIMEOUT_MS), 0);
    return status.epoch;
}

//  The shard whose reply shows a newer epoch takes no get_ring (as when it
//  died right after its reply: its connection never comes back): the
//  router asks the other shards instead of waiting for it for ever.
static void
test_refresh_wanted_unreachable (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 600000);
    rk_create_accounts (ctx);
    uint64_t n = 1;
    while (rk_owner (ctx->ring, tk_id (n, RK_TAG)) != 0) {
        n++;
    }
    assert_true (n <= RK_ACCOUNTS);

    //  Both shards serve epoch 2 (the same shards), loaded by hand; the
    //  ring file says epoch 1.
    ring_t *ring2 = ring_dup (ctx->ring);
    assert_non_null (ring2);
    ring_set_epoch (ring2, 2);
    s_load_ring_into (ctx, ring2, 2);
    ring_destroy (&ring2);

    //  Router r2 starts on the ring file (epoch 1), with no periodic
    //  refresh: only a reply showing a newer epoch starts one. Its first
    //  answers from s1 or s2 (its own polls, the lookup) show epoch 2; the
    //  shard that answered first takes no get_ring, the other one does.
    rk_router_t *r2 = &ctx->routers[1];
    rk_router_init (r2, "r2");
    snprintf (r2->ring_file, sizeof r2->ring_file, "%s", ctx->ring_file);
    r2->refresh_ms = 600000;
    snprintf (r2->failpoints, sizeof r2->failpoints, "router.refresh_wanted=error");
    assert_true (rk_router_start (ctx->h, r2) > 0);
    rl_client_t *client = rl_client_new (r2->endpoint);
    assert_non_null (client);
    rl_id_t id = tk_id (n, RK_TAG);
    rl_account_t out;
    assert_int_equal (rl_client_lookup_accounts (client, &id, 1, &out, TK_TIMEOUT_MS), 0);
    int64_t deadline = zclock_mono () + 5000;
    uint64_t epoch = 0;
    while ((epoch = s_router_epoch (client)) < 2 && zclock_mono () < deadline) {
        zclock_sleep (20);
    }
    assert_int_equal (epoch, 2);
    rl_client_destroy (&client);
    rk_routers_stop (ctx);
}

//  The client library: retry helper and window ------------------------------------------

static void
test_client_retry_and_window (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, RK_DEADLINE_MS, 0);
    rk_create_accounts (ctx);
    rl_transfer_t batch[RK_ACCOUNTS];
    rl_result_rec_t results[RK_ACCOUNTS];
    size_t count = rk_same_shard_batch (ctx->ring, 8000, batch);

    //  One attempt while a shard is stopped: incomplete, its records open.
    tk_shard_t *stopped = &ctx->shards[0];
    assert_int_equal (harness_kill (ctx->h, stopped->pid, SIGSTOP), 0);
    assert_int_equal (
        rl_client_create_transfers_retry (ctx->client, batch, count, results, TK_TIMEOUT_MS, 1),
        RL_CLIENT_INCOMPLETE);
    size_t open = 0;
    for (size_t i = 0; i < count; i++) {
        bool on_stopped = rk_shard_of_transfer (ctx->ring, &batch[i]) == 0;
        assert_int_equal (results[i].index, i);
        assert_int_equal (results[i].result, on_stopped ? RL_OUTCOME_UNKNOWN : RL_OK);
        open += on_stopped;
    }
    assert_true (open > 0);
    assert_int_equal (harness_kill (ctx->h, stopped->pid, SIGCONT), 0);
    //  Again, same ids: definite, each applied once (ok now, or exists).
    assert_int_equal (rl_client_create_transfers_retry (ctx->client, batch, count, results,
                                                        TK_TIMEOUT_MS, RK_RETRY_ATTEMPTS),
                      0);
    for (size_t i = 0; i < count; i++) {
        bool on_stopped = rk_shard_of_transfer (ctx->ring, &batch[i]) == 0;
        assert_int_equal (results[i].result, on_stopped ? results[i].result : RL_EXISTS);
        assert_true (results[i].result == RL_OK || results[i].result == RL_EXISTS);
        tk_model_apply (&ctx->model, &batch[i]);
    }
    //  A request the router refuses as a whole is not retried.
    rl_transfer_t dup[2] = {batch[0], batch[0]};
    assert_int_equal (rl_client_create_transfers_retry (ctx->client, dup, 2, results, TK_TIMEOUT_MS,
                                                        RK_RETRY_ATTEMPTS),
                      RL_STATUS_DUPLICATE_ID);
    assert_int_equal (
        rl_client_create_transfers_retry (ctx->client, dup, 2, results, TK_TIMEOUT_MS, 0),
        RL_CLIENT_ERR_ARGS);

    //  The window: full at 4, drained in any order, mixed with blocking calls.
    assert_int_equal (rl_client_set_window (ctx->client, 0), RL_CLIENT_ERR_ARGS);
    assert_int_equal (rl_client_set_window (ctx->client, RL_CLIENT_WINDOW_MAX + 1),
                      RL_CLIENT_ERR_ARGS);
    assert_int_equal (rl_client_set_window (ctx->client, 4), 0);
    uint64_t sent[5];
    uint8_t id_bytes[RL_ID_SIZE];
    codec_encode_id (tk_id (1, RK_TAG), id_bytes);
    for (int i = 0; i < 4; i++) {
        assert_int_equal (rl_client_send (ctx->client, RL_OP_LOOKUP_ACCOUNTS, id_bytes,
                                          sizeof (id_bytes), 1, &sent[i]),
                          0);
    }
    assert_int_equal (rl_client_send (ctx->client, RL_OP_STATUS, NULL, 0, 0, &sent[4]),
                      RL_CLIENT_ERR_WINDOW);
    assert_int_equal (rl_client_inflight (ctx->client), 4);
    //  A blocking call in between keeps the pipelined replies for recv.
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->client, &status, TK_TIMEOUT_MS), 0);
    assert_int_equal (rl_client_cancel (ctx->client, sent[3]), 0);
    assert_int_equal (rl_client_cancel (ctx->client, sent[3]), RL_CLIENT_ERR_ARGS);
    bool seen[3] = {false};
    for (int k = 0; k < 3; k++) {
        rl_header_t h;
        uint8_t *body = NULL;
        size_t size = 0;
        assert_int_equal (rl_client_recv (ctx->client, TK_TIMEOUT_MS, &h, &body, &size), 0);
        assert_int_equal (h.operation, RL_OP_LOOKUP_ACCOUNTS);
        assert_int_equal (size, RL_ACCOUNT_SIZE);
        rl_account_t account;
        codec_decode_account (body, &account);
        assert_true (rl_id_eq (account.id, tk_id (1, RK_TAG)));
        free (body);
        bool matched = false;
        for (int i = 0; i < 3; i++) {
            if (h.request_id == sent[i] && !seen[i]) {
                seen[i] = matched = true;
            }
        }
        assert_true (matched);
    }
    rl_header_t h;
    uint8_t *body = NULL;
    size_t size = 0;
    assert_int_equal (rl_client_recv (ctx->client, 10, &h, &body, &size), RL_CLIENT_ERR_ARGS);
    assert_int_equal (rl_client_inflight (ctx->client), 0);
    assert_string_equal (rl_client_strerror (RL_CLIENT_ERR_WINDOW),
                         "window full: receive a reply first");
    tk_check_conservation (ctx->client, &ctx->model, count);
    rk_routers_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_routing, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_wrong_shard_refresh, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_refresh_wanted_unreachable, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_client_retry_and_window, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
