/*  test_router_reply_bound.c: a client that never reads its replies cannot
    make a router hold more reply bytes than its --reply-queue-bytes
    (docs/security.md, "Reply queues"; common/replyq.h). The shard's side
    is test_reply_bound.c.

    One shard behind a router started with the smallest bound allowed
    (RL_REPLY_QUEUE_BYTES_MIN). A hostile client with a client key, whose
    own socket takes almost nothing (receive high-water mark 1, a 4 KiB
    kernel buffer), sends R_FLOOD lookups of 8,190 ids (each reply 1 MiB)
    R_PACE_MS apart, so that the router's in-flight limits do not simply
    answer them busy, and never reads. Meanwhile a normal client on
    another connection keeps being served. Then:

    1. the router's peak resident memory (VmHWM, reset before the flood)
       grew by at most the bound, plus the requests it was sent (they may
       wait in its receive queue or in progress), plus a margin for the
       allocator and ZeroMQ's own buffers; without the bound it would hold
       every reply (R_FLOOD MiB);
    2. the drops are counted (the router's status dropped);
    3. the normal client's lookups and a transfer are served throughout,
       and the conservation check passes.
*/
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "routerkit.h"

#define R_FLOOD   120         //  lookups the hostile client sends
#define R_PACE_MS 15          //  between two of them
#define R_MARGIN  (24L << 20) //  allocator, ZeroMQ, kernel-side slack
#define R_REPLY   (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_ACCOUNT_SIZE)
#define R_REQUEST (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_ID_SIZE)
#define R_WAIT_MS 30000

typedef struct {
    rl_client_t *client;
    uint64_t dropped_min;
    uint64_t served; //  normal lookups answered while waiting
} s_watch_t;

//  The normal client is served, and the router has dropped enough replies.
static bool
s_dropped_enough (void *arg)
{
    s_watch_t *w = arg;
    rl_id_t ids[2] = {tk_id (1, RK_TAG), tk_id (2, RK_TAG)};
    rl_account_t out[2];
    assert_int_equal (rl_client_lookup_accounts (w->client, ids, 2, out, TK_TIMEOUT_MS), 0);
    assert_true (rl_id_eq (out[0].id, ids[0]) && rl_id_eq (out[1].id, ids[1]));
    w->served++;
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (w->client, &status, TK_TIMEOUT_MS), 0);
    return status.dropped >= w->dropped_min;
}

static void
test_router_reply_bound (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 1, 1, 0, 0);
    rk_create_accounts (ctx);
    rk_router_t *r = &ctx->routers[1];
    rk_router_init (r, "bounded");
    snprintf (r->ring_file, sizeof (r->ring_file), "%s", ctx->ring_file);
    char bound_text[32];
    snprintf (bound_text, sizeof bound_text, "%ld", (long) RL_REPLY_QUEUE_BYTES_MIN);
    r->args[0] = "--reply-queue-bytes";
    r->args[1] = bound_text;
    r->args[2] = NULL;
    //  Sanitizer builds: freed replies must be reused, not held in
    //  quarantine (ignored by normal builds).
    r->env[0] = "ASAN_OPTIONS=quarantine_size_mb=0";
    r->env[1] = NULL;
    assert_true (rk_router_start (ctx->h, r) > 0);
    rl_client_t *client = rl_client_new (r->endpoint);
    assert_non_null (client);

    //  One full lookup first, so that the router's buffers are touched
    //  before the baseline is read.
    static uint8_t frame[R_REQUEST];
    tk_lookup_all_frame (frame, 1, RK_TAG);
    zsock_t *warm = zsock_new (ZMQ_DEALER);
    assert_non_null (warm);
    zsock_set_linger (warm, 0);
    tk_connect (warm, r->endpoint);
    zframe_t *out = zframe_new (frame, sizeof frame);
    assert_int_equal (zframe_send (&out, warm, 0), 0);
    zsock_set_rcvtimeo (warm, TK_TIMEOUT_MS);
    zframe_t *in = zframe_recv (warm);
    assert_non_null (in);
    assert_int_equal (zframe_size (in), R_REPLY);
    zframe_destroy (&in);
    zsock_destroy (&warm);

    rl_status_rec_t before;
    assert_int_equal (rl_client_status (client, &before, TK_TIMEOUT_MS), 0);
    assert_string_equal (before.name, r->name);
    tk_proc_reset_peak (r->pid);
    long rss_before = tk_proc_status_bytes (r->pid, "VmRSS:");

    //  The hostile client: takes (almost) nothing in, sends and never reads.
    zsock_t *hostile = zsock_new (ZMQ_DEALER);
    assert_non_null (hostile);
    zsock_set_linger (hostile, 0);
    zsock_set_rcvhwm (hostile, 1);
    zsock_set_rcvbuf (hostile, 4096);
    zsock_set_sndhwm (hostile, R_FLOOD + 1);
    tk_connect (hostile, r->endpoint);
    s_watch_t watch = {client, before.dropped + R_FLOOD / 2, 0};
    for (uint64_t k = 0; k < R_FLOOD; k++) {
        tk_lookup_all_frame (frame, 100 + k, RK_TAG);
        out = zframe_new (frame, sizeof frame);
        assert_int_equal (zframe_send (&out, hostile, 0), 0);
        if (k % 10 == 9) {
            (void) s_dropped_enough (&watch); //  the normal client, during the flood
        }
        zclock_sleep (R_PACE_MS);
    }
    //  Most of its replies cannot be queued: dropped, counted, while the
    //  normal client is served.
    if (!harness_wait_until (s_dropped_enough, &watch, R_WAIT_MS)) {
        rl_status_rec_t now;
        assert_int_equal (rl_client_status (client, &now, TK_TIMEOUT_MS), 0);
        fail_msg ("%" PRIu64 " replies dropped, want at least %" PRIu64
                  " (the router's peak grew by %.1f MiB)",
                  now.dropped - before.dropped, (uint64_t) R_FLOOD / 2,
                  (tk_proc_status_bytes (r->pid, "VmHWM:") - rss_before) / 1048576.0);
    }
    assert_true (watch.served > R_FLOOD / 10);
    long peak = tk_proc_status_bytes (r->pid, "VmHWM:");
    long grown = peak - rss_before;
    long allowed = RL_REPLY_QUEUE_BYTES_MIN + (long) R_FLOOD * R_REQUEST + R_MARGIN;
    printf ("router peak grew by %.1f MiB (bound %.0f MiB, requests %.1f MiB, margin %.0f MiB; "
            "all replies would be %.0f MiB); %d normal lookups served meanwhile\n",
            grown / 1048576.0, RL_REPLY_QUEUE_BYTES_MIN / 1048576.0,
            (double) R_FLOOD * R_REQUEST / 1048576.0, R_MARGIN / 1048576.0,
            (double) R_FLOOD * R_REPLY / 1048576.0, (int) watch.served);
    if (grown > allowed) {
        fail_msg ("the router's peak grew by %ld bytes, more than %ld", grown, allowed);
    }
    zsock_destroy (&hostile);

    //  Still serving: a transfer, and everything adds up.
    uint64_t partner = rk_partner (ctx->ring, 1, true);
    assert_true (partner > 0);
    rl_transfer_t t = tk_transfer (tk_id (9, RK_TAG), tk_id (1, RK_TAG), tk_id (partner, RK_TAG),
                                   500, RK_LEDGER);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_transfers (client, &t, 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (result.result, RL_OK);
    tk_model_apply (&ctx->model, &t);
    tk_check_conservation (client, &ctx->model, 1);
    rl_client_destroy (&client);
    rk_routers_stop (ctx); //  each exits 0: no sanitizer report
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_router_reply_bound, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
