/*  test_router_input.c: a router in front of real shards, fed bad input of
    every kind through raw frames (the test kit's table of hostile frames,
    a multi-frame envelope, and a frame over RL_FRAME_SIZE_MAX, whose
    connection is dropped): each answered or dropped as the protocol
    says, never a crash, never a change to the ledgers. And bad options:
    deadlines that break the order of timeouts are refused at start-up,
    and a shard whose reported deadline breaks it is counted and logged at
    run time.
    And failed allocations (failpoint router.alloc) of a create, a history
    read and a ring answer: the request is answered busy and the router
    keeps serving. And memory: the bound on what pending requests hold
    counts their envelopes (test_envelope_bytes), and a shard's reply
    over RL_FRAME_SIZE_MAX drops its connection before it is held
    (test_shard_oversize). And a shard a newer ring dropped, answering a
    request still in flight with a higher epoch: the router asks it for no
    ring (test_retired_reply).
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
#include "keys.h"
#include "ring.h"
#include "routerkit.h"
#include "testkit.h"

#define S_ENVELOPE_DEADLINE_MS 60000 //  test_envelope_bytes' router deadline

//  Bad input ------------------------------------------------------------------------

static void
test_bad_input (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, 0, 0);
    rk_create_accounts (ctx);
    rl_transfer_t batch[RK_ACCOUNTS];
    rl_result_rec_t results[RK_ACCOUNTS];
    size_t count = rk_same_shard_batch (ctx->ring, 7000, batch);
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].result, RL_OK);
        tk_model_apply (&ctx->model, &batch[i]);
    }
    rl_id_t ids[RK_ACCOUNTS];
    static rl_account_t before[RK_ACCOUNTS], after[RK_ACCOUNTS];
    for (size_t i = 0; i < RK_ACCOUNTS; i++) {
        ids[i] = tk_id (i + 1, RK_TAG);
    }
    assert_int_equal (
        rl_client_lookup_accounts (ctx->client, ids, RK_ACCOUNTS, before, TK_TIMEOUT_MS), 0);

    //  The router's answer to each hostile frame of the shared table: it
    //  checks what a shard checks, plus duplicate ids within a batch, and it
    //  serves neither shard-to-shard nor admin operations. Every error reply
    //  carries the ring's epoch.
    rl_transfer_t t = tk_transfer (tk_id (7777, RK_TAG), tk_id (1, RK_TAG), tk_id (2, RK_TAG), 9,
                                   RK_LEDGER);
    tk_bad_want_t want = {.status =
                              {
                                  [TK_BAD_EMPTY_FRAME] = TK_BAD_DROPPED,
                                  [TK_BAD_SHORT_FRAME] = TK_BAD_DROPPED,
                                  [TK_BAD_WRONG_MAGIC] = RL_STATUS_BAD_MAGIC,
                                  [TK_BAD_WRONG_VERSION] = RL_STATUS_BAD_VERSION,
                                  [TK_BAD_UNKNOWN_OPERATION] = RL_STATUS_UNKNOWN_OPERATION,
                                  [TK_BAD_RESERVED_ACK] = RL_STATUS_UNKNOWN_OPERATION,
                                  [TK_BAD_RESERVED_PREPARE] = RL_STATUS_UNKNOWN_OPERATION,
                                  [TK_BAD_COUNT_OVER_BODY] = RL_STATUS_MALFORMED,
                                  [TK_BAD_COUNT_UNDER_BODY] = RL_STATUS_MALFORMED,
                                  [TK_BAD_OVERSIZE_BATCH] = RL_STATUS_TOO_MANY_RECORDS,
                                  [TK_BAD_REQUEST_STATUS] = RL_STATUS_MALFORMED,
                                  [TK_BAD_REQUEST_EPOCH] = RL_STATUS_MALFORMED,
                                  [TK_BAD_GARBAGE] = RL_STATUS_BAD_MAGIC,
                                  [TK_BAD_DUPLICATE_ID] = RL_STATUS_DUPLICATE_ID,
                                  [TK_BAD_LOAD_RING] = RL_STATUS_UNKNOWN_OPERATION,
                              },
                          .epoch_checked = true,
                          .epoch = 1};
    tk_bad_counts_t counts = tk_bad_input_run (ctx->routers[0].endpoint, &t, &want);

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    tk_connect (dealer, ctx->routers[0].endpoint);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    uint8_t buf[RL_HEADER_SIZE];
    //  A multi-frame envelope (REQ-style delimiter) is echoed back.
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "");
    size_t size = tk_request_header (buf, RL_OP_STATUS, 4242, 0);
    zmsg_addmem (msg, buf, size);
    assert_int_equal (zmsg_send (&msg, dealer), 0);
    msg = zmsg_recv (dealer);
    assert_non_null (msg);
    assert_int_equal (zmsg_size (msg), 2);
    zframe_t *payload = zmsg_last (msg);
    rl_header_t h;
    assert_int_equal (codec_check_reply (zframe_data (payload), zframe_size (payload), &h),
                      RL_STATUS_OK);
    assert_int_equal (h.request_id, 4242);
    zmsg_destroy (&msg);
    zsock_destroy (&dealer);
    //  A frame over RL_FRAME_SIZE_MAX: the connection is dropped before the
    //  router holds it (it used to take any size, and keep it as the
    //  envelope of the request behind it).
    assert_true (tk_oversize_dropped (ctx->routers[0].endpoint));

    //  Still alive, nothing changed.
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->client, &status, TK_TIMEOUT_MS), 0);
    assert_int_equal (status.dropped, counts.dropped);
    assert_true (status.malformed >= counts.answered);
    assert_int_equal (
        rl_client_lookup_accounts (ctx->client, ids, RK_ACCOUNTS, after, TK_TIMEOUT_MS), 0);
    assert_memory_equal (before, after, sizeof (before));
    tk_check_conservation (ctx->client, &ctx->model, count);
    rk_routers_stop (ctx);
}

//  Bad options: the order of timeouts ------------------------------------------------

//  Runs the router with `extra` options; returns its exit status and
//  whether its log contains `needle`.
static int
s_router_refused (harness_t *h, const char *log_name, char **extra, const char *needle, bool *said)
{
    char path[1024];
    snprintf (path, sizeof (path), "%s/router/router", harness_bin_dir ());
    char *argv[16] = {path, "--bind", "tcp://127.0.0.1:1", "--ring", "/nonexistent.ring"};
    int n = 5;
    for (; *extra && n < 15; extra++) {
        argv[n++] = *extra;
    }
    argv[n] = NULL;
    pid_t pid = harness_spawn (h, log_name, argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, pid, 10000, &wstatus), 0);
    char file[64];
    snprintf (file, sizeof (file), "%s.log", log_name);
    char *log_path = harness_path (h, file);
    char *text = harness_read_file (log_path, NULL);
    *said = text && strstr (text, needle);
    free (text);
    free (log_path);
    return WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : -1;
}

static void
test_timeout_order (void **state)
{
    rk_ctx_t *ctx = *state;
    bool said = false;
    //  Below the shards' default deadline (2000 ms): refused, with the reason.
    char *low[] = {"--deadline-ms", "10", NULL};
    assert_int_equal (
        s_router_refused (ctx->h, "low", low, "must exceed the shards' deadline", &said), 2);
    assert_true (said);
    char *equal[] = {"--deadline-ms", "500", "--shard-deadline-ms", "500", NULL};
    assert_int_equal (s_router_refused (ctx->h, "equal", equal, "must exceed", &said), 2);
    assert_true (said);
    char *bad[] = {"--shard-deadline-ms", "0", NULL};
    assert_int_equal (s_router_refused (ctx->h, "bad", bad, "--shard-deadline-ms must be", &said),
                      2);
    assert_true (said);
    //  A consistent short configuration passes the options (and then fails
    //  on the missing ring file, exit 1).
    char *ok[] = {"--deadline-ms", "400", "--shard-deadline-ms", "300", "--insecure", NULL};
    assert_int_equal (s_router_refused (ctx->h, "ok", ok, "must exceed", &said), 1);
    assert_false (said);
}

//  The order of timeouts at run time: a router polls every shard's status
//  and counts (and logs) a shard whose deadline exceeds --shard-deadline-ms.
static bool
s_deadline_error_seen (void *arg)
{
    const char *endpoint = arg;
    rl_client_t *client = rl_client_new (endpoint);
    rl_status_rec_t status = {0};
    bool seen = client && rl_client_status (client, &status, TK_TIMEOUT_MS) == 0
                && status.deadline_errors > 0;
    rl_client_destroy (&client);
    return seen;
}

static void
test_shard_deadline_check (void **state)
{
    rk_ctx_t *ctx = *state;
    //  The shards answer within RK_SHARD_DEADLINE_MS, as router 0 expects.
    rk_cluster_start (ctx, 2, 2, RK_DEADLINE_MS, 0);
    rl_status_rec_t shard = rk_status_of (ctx->shards[0].endpoint);
    assert_int_equal (shard.deadline_ms, RK_SHARD_DEADLINE_MS);
    assert_int_equal (shard.prepare_timeout_ms, atoi (RK_PREPARE_MS));
    //  Router 1 expects the shards to answer within less than that. Its
    //  ring (the same shards with their keys, so that rlctl reaches them,
    //  at epoch 2, which no shard serves) is one no shard was given.
    rk_router_t *r = &ctx->routers[1];
    rk_router_init (r, "short");
    snprintf (r->ring_file, sizeof (r->ring_file), "%s/keyed.ring", harness_dir (ctx->h));
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal (ring_set_key (ctx->ring, ctx->shards[i].name,
                                        tk_key (ctx->h, "shard", ctx->shards[i].name)),
                          RING_OK);
    }
    ring_set_epoch (ctx->ring, 2);
    assert_int_equal (ring_save_file (ctx->ring, r->ring_file), RING_OK);
    ring_set_epoch (ctx->ring, 1);
    r->deadline_ms = RK_DEADLINE_MS;
    r->shard_deadline_ms = RK_SHARD_DEADLINE_MS - 100;
    assert_true (rk_router_start (ctx->h, r) > 0);
    assert_true (harness_wait_until (s_deadline_error_seen, r->endpoint, TK_TIMEOUT_MS));
    rl_status_rec_t status = rk_status_of (r->endpoint);
    assert_int_equal (status.deadline_ms, RK_DEADLINE_MS);
    char *log_path = harness_path (ctx->h, "short.log");
    char *text = harness_read_file (log_path, NULL);
    assert_non_null (text);
    assert_non_null (strstr (text, "above this router's --shard-deadline-ms"));
    free (text);
    free (log_path);
    //  Router 0, in order, has polled both shards and counted nothing.
    assert_int_equal (rk_status_of (ctx->routers[0].endpoint).deadline_errors, 0);
    //  rlctl status through router 1 exits 1 and says why, though every
    //  shard answered: no shard serves the ring's epoch. The order errors,
    //  counted since the router started, are in its record, not in
    //  "attention": nothing but a restart would clear them.
    char *out = NULL;
    assert_int_equal (rk_rlctl (ctx, 1, "rlctl-status", &out, "status", NULL), 1);
    assert_non_null (strstr (out, "\"down\":\t0"));
    assert_non_null (strstr (out, "\"attention\":\t[\"s1 serves ring epoch 1, not 2\", \"s2 serves "
                                  "ring epoch 1, not 2\"]"));
    assert_null (strstr (out, "\"deadline_errors\":\t0"));
    free (out);
    rk_routers_stop (ctx);
}

//  The bound on what pending requests hold counts their envelopes: with
//  both shards stopped, requests that each come behind a frame of almost
//  RL_FRAME_SIZE_MAX are answered busy once RL_ROUTER_PENDING_BYTES_MAX is
//  held, long before the per-shard limits (64 a shard) would refuse them.
//  The router used to count the payload alone: 4 MiB held for 176 bytes
//  counted, up to the 1,024 requests it admits.
static void
test_envelope_bytes (void **state)
{
    rk_ctx_t *ctx = *state;
    //  A deadline far beyond the test: nothing admitted is answered (and
    //  its bytes freed) before every request is in, however slow the
    //  sending of 480 MB under the sanitizers.
    rk_cluster_start (ctx, 2, 2, S_ENVELOPE_DEADLINE_MS, 0);
    for (size_t i = 0; i < 2; i++) {
        harness_kill (ctx->h, ctx->shards[i].pid, SIGSTOP);
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, 0);
    zsock_set_rcvhwm (dealer, 0);
    tk_connect (dealer, ctx->routers[0].endpoint);
    size_t frame = RL_FRAME_SIZE_MAX - 64;
    size_t held_max = RL_ROUTER_PENDING_BYTES_MAX / frame;  //  64
    size_t sent = 2 * RL_ROUTER_INFLIGHT_PER_SHARD_MAX - 8; //  within the shards' limits
    uint64_t n = 1;
    for (size_t i = 0; i < sent; i++) {
        rl_id_t id;
        do { //  alternately an account of s1 and of s2
            id = tk_id (n++, RK_TAG);
        } while (rk_owner (ctx->ring, id) != (int) (i % 2));
        uint8_t buf[RL_HEADER_SIZE + RL_ID_SIZE];
        size_t size = tk_request_header (buf, RL_OP_LOOKUP_ACCOUNTS, 9000 + i, 1);
        codec_encode_id (id, buf + size);
        zframe_t *big = zframe_new (NULL, frame);
        assert_non_null (big);
        memset (zframe_data (big), 0, frame);
        zmsg_t *msg = zmsg_new ();
        assert_int_equal (zmsg_append (msg, &big), 0);
        assert_int_equal (zmsg_addmem (msg, buf, size + RL_ID_SIZE), 0);
        assert_int_equal (zmsg_send (&msg, dealer), 0);
    }
    //  What is answered before the shards continue is busy (the rest
    //  waits for them): counted until 3 s pass without a reply.
    size_t busy = 0;
    zsock_set_rcvtimeo (dealer, 3000);
    for (zmsg_t *reply; (reply = zmsg_recv (dealer)); zmsg_destroy (&reply)) {
        zframe_t *last = zmsg_last (reply);
        rl_header_t h;
        assert_int_equal (codec_check_reply (zframe_data (last), zframe_size (last), &h),
                          RL_STATUS_OK);
        assert_int_equal (h.status, RL_STATUS_BUSY);
        busy++;
    }
    printf ("test_envelope_bytes: %zu of %zu requests behind %zu-byte frames answered busy\n", busy,
            sent, frame);
    assert_true (busy >= sent - held_max);
    zsock_destroy (&dealer);
    for (size_t i = 0; i < 2; i++) {
        harness_kill (ctx->h, ctx->shards[i].pid, SIGCONT);
    }
    rk_routers_stop (ctx);
}

//  A shard's reply larger than RL_FRAME_SIZE_MAX drops the connection
//  before the router holds it, as a client's does: the test serves s2's
//  endpoint with s2's key and answers a lookup there with such a frame.
//  The router used to take it whole (any size) and only then drop it as a
//  reply that does not decode.
//  s2 stopped, and a socket in its place (its endpoint, its key) that the
//  test answers from.
static zsock_t *
s_fake_s2 (rk_ctx_t *ctx)
{
    tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM);
    zsock_t *fake = zsock_new (ZMQ_ROUTER);
    assert_non_null (fake);
    zsock_set_linger (fake, 0);
    zsock_set_rcvtimeo (fake, TK_TIMEOUT_MS);
    char path[600], err[768];
    snprintf (path, sizeof path, "%s/private/s2.key_secret", tk_keys_dir (ctx->h));
    zcert_t *cert = rl_cert_load (path, err, sizeof err);
    assert_non_null (cert);
    zcert_apply (cert, fake);
    zcert_destroy (&cert);
    zsock_set_curve_server (fake, 1);
    assert_true (zsock_bind (fake, "%s", ctx->shards[1].endpoint) >= 0);
    return fake;
}

//  The next request of operation op that reaches fake (within its receive
//  timeout; others are dropped): its route (the caller's), *h its header.
static zframe_t *
s_fake_recv (zsock_t *fake, uint16_t op, rl_header_t *h)
{
    zmsg_t *msg = NULL;
    h->operation = 0;
    while (h->operation != op) { //  status polls and ring fetches may come first
        zmsg_destroy (&msg);
        msg = zmsg_recv (fake);
        if (!msg) {
            return NULL;
        }
        zframe_t *request = zmsg_last (msg);
        const uint8_t *body = NULL;
        size_t body_size = 0;
        assert_int_equal (codec_parse_request (zframe_data (request), zframe_size (request), h,
                                               &body, &body_size),
                          RL_STATUS_OK);
    }
    zframe_t *route = zmsg_pop (msg);
    zmsg_destroy (&msg);
    return route;
}

//  A lookup of an account of s2, sent to router 0 from a socket of its own
//  (returned): it reaches the fake s2, which holds it (*route_p, *h).
static zsock_t *
s_lookup_at_fake (rk_ctx_t *ctx, zsock_t *fake, zframe_t **route_p, rl_header_t *h)
{
    uint64_t n = 1;
    while (rk_owner (ctx->ring, tk_id (n, RK_TAG)) != 1) {
        n++;
    }
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert_non_null (client);
    zsock_set_linger (client, 0);
    tk_connect (client, ctx->routers[0].endpoint);
    uint8_t buf[RL_HEADER_SIZE + RL_ID_SIZE];
    size_t size = tk_request_header (buf, RL_OP_LOOKUP_ACCOUNTS, 5151, 1);
    codec_encode_id (tk_id (n, RK_TAG), buf + size);
    assert_int_equal (zsock_send (client, "b", buf, size + RL_ID_SIZE), 0);
    *route_p = s_fake_recv (fake, RL_OP_LOOKUP_ACCOUNTS, h);
    assert_non_null (*route_p);
    return client;
}

static void
test_shard_oversize (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    zsock_t *fake = s_fake_s2 (ctx);
    zframe_t *route = NULL;
    rl_header_t h;
    zsock_t *client = s_lookup_at_fake (ctx, fake, &route, &h);
    size_t big = (size_t) RL_FRAME_SIZE_MAX + 1;
    zframe_t *junk = zframe_new (NULL, big);
    assert_non_null (junk);
    memset (zframe_data (junk), 0, big);
    zmsg_t *msg = zmsg_new ();
    assert_int_equal (zmsg_append (msg, &route), 0);
    assert_int_equal (zmsg_append (msg, &junk), 0);
    assert_int_equal (zmsg_send (&msg, fake), 0);
    zclock_sleep (1000);
    assert_false (tk_log_contains (ctx->h, ctx->routers[0].name, "that does not decode"));
    //  The router serves on.
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->client, &status, TK_TIMEOUT_MS), 0);
    zsock_destroy (&client);
    zsock_destroy (&fake);
    rk_routers_stop (ctx);
}

//  s2 holds a lookup while a ring of epoch 2 without it reaches the router
//  (loaded into s1, fetched by the refresh): s2 is retired, its socket
//  open while the lookup is in flight. It answers with epoch 3: the router
//  asks it for no ring. (It did: a ring fetch sent to a retired shard
//  outlived its socket, closed once drained, a use after free.)
static void
test_retired_reply (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, S_ENVELOPE_DEADLINE_MS, 200);
    rk_create_accounts (ctx);
    zsock_t *fake = s_fake_s2 (ctx);
    zframe_t *route = NULL;
    rl_header_t h;
    zsock_t *client = s_lookup_at_fake (ctx, fake, &route, &h);
    ring_t *ring = tk_ring_of (ctx->shards[0].endpoint, TK_TIMEOUT_MS);
    assert_int_equal (ring_remove_shard (ring, "s2"), RING_OK);
    ring_set_epoch (ring, 2);
    assert_int_equal (tk_ring_load (ctx->shards[0].endpoint, ring, TK_TIMEOUT_MS), RL_STATUS_OK);
    ring_destroy (&ring);
    int64_t deadline = zclock_mono () + 10000;
    while (rk_status_of (ctx->routers[0].endpoint).epoch != 2) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    //  What reached s2 while it was in the ring (status polls, its turn of
    //  the refresh) is dropped: from here on it is retired.
    zsock_set_rcvtimeo (fake, 300);
    zmsg_t *msg = NULL;
    while ((msg = zmsg_recv (fake))) {
        zmsg_destroy (&msg);
    }
    uint8_t raw[RL_HEADER_SIZE];
    rl_header_t reply = codec_reply_header (&h, RL_STATUS_BUSY, 0, 3);
    codec_encode_header (&reply, raw);
    msg = zmsg_new ();
    assert_int_equal (zmsg_append (msg, &route), 0);
    assert_int_equal (zmsg_addmem (msg, raw, sizeof raw), 0);
    assert_int_equal (zmsg_send (&msg, fake), 0);
    //  No ring fetch reaches s2 (the router's refreshes go to s1 alone).
    zsock_set_rcvtimeo (fake, 1500);
    rl_header_t asked;
    zframe_t *fetch = s_fake_recv (fake, RL_OP_GET_RING, &asked);
    assert_null (fetch);
    //  The router serves on, and stops cleanly (no sanitizer report).
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->client, &status, TK_TIMEOUT_MS), 0);
    zsock_destroy (&client);
    zsock_destroy (&fake);
    rk_routers_stop (ctx);
}

//  Out of memory ---------------------------------------------------------------

//  A router whose Nth request allocation fails answers that request busy
//  (nothing applied), and serves the same request afterwards. For a
//  one-record create on a one-shard ring the allocations are, in order: the
//  request's record states (1), its send counts (2), its results (3), the
//  positions to send (4) and the sub-request's positions (5).
static void
test_alloc_failure (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 1, 1, 0, 0);
    for (int hit = 1; hit <= 5; hit++) {
        rk_router_t *r = &ctx->routers[1];
        rk_router_init (r, "oom");
        snprintf (r->ring_file, sizeof (r->ring_file), "%s", ctx->ring_file);
        snprintf (r->failpoints, sizeof (r->failpoints), "router.alloc=error@%d", hit);
        assert_true (rk_router_start (ctx->h, r) > 0);
        rl_client_t *client = rl_client_new (r->endpoint);
        assert_non_null (client);
        rl_account_t account = tk_account (100 + (uint64_t) hit, RK_TAG, RK_LEDGER, 0);
        rl_result_rec_t result = {0};
        int rc = rl_client_create_accounts (client, &account, 1, &result, TK_TIMEOUT_MS);
        if (hit <= 3) {
            assert_int_equal (rc, RL_STATUS_BUSY); //  refused as a whole
        } else {
            assert_int_equal (rc, 0);
            assert_int_equal (result.result, RL_BUSY); //  the record was not sent
        }
        //  The next try goes through: nothing was applied the first time.
        assert_int_equal (rl_client_create_accounts (client, &account, 1, &result, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (result.result, RL_OK);
        rl_status_rec_t status = rk_status_of (r->endpoint);
        assert_string_equal (status.name, r->name);
        rl_client_destroy (&client);
        rk_router_stop (ctx->h, r); //  exits 0: no crash, no sanitizer report
    }
    //  Reads: the copy of a history reply (allocation 5 of get_account_
    //  transfers: states, send counts, positions, sub-request positions,
    //  the copy) and a ring answer (its only allocation) fail busy.
    rk_create_accounts (ctx);
    rl_transfer_t batch[RK_ACCOUNTS];
    rl_result_rec_t results[RK_ACCOUNTS];
    size_t count = rk_same_shard_batch (ctx->ring, 9000, batch);
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    rl_filter_t filter = {.account_id = batch[0].debit_account_id,
                          .limit = 8,
                          .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
    static const char *const specs[] = {"router.alloc=error@5", "router.alloc=error@1"};
    for (size_t k = 0; k < 2; k++) {
        rk_router_t *r = &ctx->routers[1];
        rk_router_init (r, "oom");
        snprintf (r->ring_file, sizeof (r->ring_file), "%s", ctx->ring_file);
        snprintf (r->failpoints, sizeof (r->failpoints), "%s", specs[k]);
        assert_true (rk_router_start (ctx->h, r) > 0);
        rl_client_t *client = rl_client_new (r->endpoint);
        assert_non_null (client);
        rl_transfer_t found[8];
        size_t history = 0;
        uint8_t *blob = NULL;
        size_t size = 0;
        if (k == 0) {
            assert_int_equal (
                rl_client_get_account_transfers (client, &filter, found, &history, TK_TIMEOUT_MS),
                RL_STATUS_BUSY);
            assert_int_equal (
                rl_client_get_account_transfers (client, &filter, found, &history, TK_TIMEOUT_MS),
                0);
            assert_true (history >= 1);
        } else {
            assert_int_equal (rl_client_get_ring (client, &blob, &size, TK_TIMEOUT_MS),
                              RL_STATUS_BUSY);
            assert_int_equal (rl_client_get_ring (client, &blob, &size, TK_TIMEOUT_MS), 0);
            assert_true (size > 0);
            free (blob);
        }
        rl_client_destroy (&client);
        rk_router_stop (ctx->h, r);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_bad_input, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_timeout_order, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_shard_deadline_check, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_envelope_bytes, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_shard_oversize, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_retired_reply, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_alloc_failure, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
