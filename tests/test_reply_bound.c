/*  test_reply_bound.c: a client that never reads its replies cannot make a
    shard hold more reply bytes than its --reply-queue-bytes
    (docs/security.md, "Reply queues"; common/replyq.h).

    One real shard with CURVE, a bound of S_BOUND bytes. A hostile client,
    whose own socket takes almost nothing (receive high-water mark 1, a
    4 KiB kernel buffer), sends S_FLOOD lookups of 8,190 ids (each reply
    1 MiB) and never reads. Meanwhile a normal client on another
    connection keeps being served. Then:

    1. the shard's peak resident memory (VmHWM, reset before the flood)
       grew by at most the bound, plus the requests it was sent (they wait
       in its receive queue), plus a margin for the allocator and
       ZeroMQ's own buffers; without the bound it would hold every reply;
    2. the drops are counted (status dropped);
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
#include "testkit.h"

#define TAG         0x5245504c59ull //  "REPLY"
#define LEDGER      717
#define S_FLOOD     160         //  lookups the hostile client sends
#define S_BOUND     (24L << 20) //  the shard's --reply-queue-bytes
#define S_BOUND_TXT "25165824"  //  the same
#define S_MARGIN    (24L << 20) //  allocator, ZeroMQ, kernel-side slack
#define S_REPLY     (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_ACCOUNT_SIZE)
#define S_REQUEST   (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_ID_SIZE)
#define S_WAIT_MS   30000

typedef struct {
    rl_client_t *client;
    uint64_t dropped_min;
    uint64_t served; //  normal lookups answered while waiting
} s_watch_t;

//  The normal client is served, and the shard has dropped enough replies.
static bool
s_dropped_enough (void *arg)
{
    s_watch_t *w = arg;
    rl_id_t ids[2] = {tk_id (1, TAG), tk_id (2, TAG)};
    rl_account_t out[2];
    assert_int_equal (rl_client_lookup_accounts (w->client, ids, 2, out, TK_TIMEOUT_MS), 0);
    assert_true (rl_id_eq (out[0].id, ids[0]) && rl_id_eq (out[1].id, ids[1]));
    w->served++;
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (w->client, &status, TK_TIMEOUT_MS), 0);
    return status.dropped >= w->dropped_min;
}

static void
test_reply_bound (void **state)
{
    (void) state;
    harness_t *h = harness_new ("reply_bound");
    assert_non_null (h);
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    shard.args[0] = "--reply-queue-bytes";
    shard.args[1] = S_BOUND_TXT;
    shard.args[2] = NULL;
    //  Sanitizer builds: freed replies must be reused, not held in
    //  quarantine (ignored by normal builds).
    shard.env[0] = "ASAN_OPTIONS=quarantine_size_mb=0";
    shard.env[1] = NULL;
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    assert_non_null (client);
    rl_account_t accounts[2] = {tk_account (1, TAG, LEDGER, 0), tk_account (2, TAG, LEDGER, 0)};
    rl_result_rec_t results[2];
    assert_int_equal (rl_client_create_accounts (client, accounts, 2, results, TK_TIMEOUT_MS), 0);
    assert_int_equal (results[0].result, RL_OK);
    assert_int_equal (results[1].result, RL_OK);

    //  One full lookup first, so that the shard's scratch buffers are
    //  touched before the baseline is read.
    static uint8_t frame[S_REQUEST];
    tk_lookup_all_frame (frame, 1, TAG);
    zsock_t *warm = zsock_new (ZMQ_DEALER);
    assert_non_null (warm);
    zsock_set_linger (warm, 0);
    tk_connect (warm, shard.endpoint);
    zframe_t *out = zframe_new (frame, sizeof frame);
    assert_int_equal (zframe_send (&out, warm, 0), 0);
    zsock_set_rcvtimeo (warm, TK_TIMEOUT_MS);
    zframe_t *in = zframe_recv (warm);
    assert_non_null (in);
    assert_int_equal (zframe_size (in), S_REPLY);
    zframe_destroy (&in);
    zsock_destroy (&warm);

    rl_status_rec_t before;
    assert_int_equal (rl_client_status (client, &before, TK_TIMEOUT_MS), 0);
    tk_proc_reset_peak (shard.pid);
    long rss_before = tk_proc_status_bytes (shard.pid, "VmRSS:");

    //  The hostile client: takes (almost) nothing in, sends and never reads.
    zsock_t *hostile = zsock_new (ZMQ_DEALER);
    assert_non_null (hostile);
    zsock_set_linger (hostile, 0);
    zsock_set_rcvhwm (hostile, 1);
    zsock_set_rcvbuf (hostile, 4096);
    zsock_set_sndhwm (hostile, S_FLOOD + 1);
    tk_connect (hostile, shard.endpoint);
    for (uint64_t k = 0; k < S_FLOOD; k++) {
        tk_lookup_all_frame (frame, 100 + k, TAG);
        out = zframe_new (frame, sizeof frame);
        assert_int_equal (zframe_send (&out, hostile, 0), 0);
    }
    //  Most of its replies cannot be queued: dropped, counted, while the
    //  normal client is served.
    s_watch_t watch = {client, before.dropped + S_FLOOD / 2, 0};
    if (!harness_wait_until (s_dropped_enough, &watch, S_WAIT_MS)) {
        rl_status_rec_t now;
        assert_int_equal (rl_client_status (client, &now, TK_TIMEOUT_MS), 0);
        fail_msg ("%" PRIu64 " replies dropped, want at least %" PRIu64,
                  now.dropped - before.dropped, (uint64_t) S_FLOOD / 2);
    }
    assert_true (watch.served > 0);
    long peak = tk_proc_status_bytes (shard.pid, "VmHWM:");
    long grown = peak - rss_before;
    long allowed = S_BOUND + (long) S_FLOOD * S_REQUEST + S_MARGIN;
    printf ("shard peak grew by %.1f MiB (bound %.0f MiB, requests %.1f MiB, margin %.0f MiB; "
            "all replies would be %.0f MiB); %d normal lookups served meanwhile\n",
            grown / 1048576.0, S_BOUND / 1048576.0, (double) S_FLOOD * S_REQUEST / 1048576.0,
            S_MARGIN / 1048576.0, (double) S_FLOOD * S_REPLY / 1048576.0, (int) watch.served);
    if (grown > allowed) {
        fail_msg ("the shard's peak grew by %ld bytes, more than %ld", grown, allowed);
    }
    zsock_destroy (&hostile);

    //  Still serving: a transfer, and everything adds up.
    tk_model_t *model = calloc (1, sizeof (*model));
    assert_non_null (model);
    tk_model_init (model, TAG, 2);
    rl_transfer_t t = tk_transfer (tk_id (9, TAG), tk_id (1, TAG), tk_id (2, TAG), 500, LEDGER);
    assert_int_equal (rl_client_create_transfers (client, &t, 1, results, TK_TIMEOUT_MS), 0);
    assert_int_equal (results[0].result, RL_OK);
    tk_model_apply (model, &t);
    tk_check_conservation (client, model, 1);
    free (model);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_reply_bound),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
