/*  test_ring_guard.c: rings from mistaken or hostile senders, against real
    shards and a router with CURVE on (docs/security.md, "Rings").

    - The ring freeze: a ring at epoch 2^64 - 1 (and one just beyond
      --max-epoch-jump) from an admin key is refused epoch_too_far and
      counted; nothing changes, on disk neither: the next ring is still
      accepted, also after a restart, and the frozen ring is refused again
      there; restarted without --ring, a shard keeps the cluster's ring it
      stored (not a ring of itself alone). A router refuses a fetched ring that jumps as far (a
   shard with a larger bound accepted it), counts it and keeps its ring.
    - The ring hijack: a load_ring that points peer s2 at another socket,
      sent with no key and with an unknown key (the handshake fails,
      counted, no reply), and with a client, a router and a shard key
      (unauthorized, counted). The ring and every balance are unchanged,
      and cross-shard transfers still reach the real s2.
    Each case ends with the conservation check.
*/
#include <limits.h>
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
#include "keys.h"
#include "routerkit.h"
#include "testkit.h"

#define S_NO_REPLY_MS 700 //  how long a refused connection is given to answer
#define S_REFRESH_MS  100 //  the router's --ring-refresh-ms here
#define S_WAIT_MS     10000

//  Rings -------------------------------------------------------------------------

//  The blob of the cluster's ring at `epoch` (malloc'd); s2 at `s2_endpoint`
//  when not NULL.
static uint8_t *
s_ring_blob (const rk_ctx_t *ctx, uint64_t epoch, const char *s2_endpoint, size_t *size_p)
{
    ring_t *ring = ring_dup (ctx->ring);
    assert_non_null (ring);
    ring_set_epoch (ring, epoch);
    if (s2_endpoint) {
        assert_int_equal (ring_set_endpoint (ring, "s2", s2_endpoint), RING_OK);
    }
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    ring_destroy (&ring);
    *size_p = size;
    return blob;
}

//  load_ring of the cluster's ring at `epoch` into a shard, with the test's
//  admin key: the call's result (0, or the refusal's status).
static int
s_load (const char *endpoint, const rk_ctx_t *ctx, uint64_t epoch)
{
    size_t size = 0;
    uint8_t *blob = s_ring_blob (ctx, epoch, NULL, &size);
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    int rc = rl_client_load_ring (client, blob, size, TK_TIMEOUT_MS);
    rl_client_destroy (&client);
    free (blob);
    return rc;
}

//  The s2 endpoint of the ring a shard serves now.
static void
s_served_s2 (const char *endpoint, char *out, size_t out_size)
{
    ring_t *ring = tk_ring_of (endpoint, TK_TIMEOUT_MS);
    int s2 = ring_shard_find (ring, "s2");
    assert_true (s2 >= 0);
    snprintf (out, out_size, "%s", ring_shard_endpoint (ring, (size_t) s2));
    ring_destroy (&ring);
}

//  Money ---------------------------------------------------------------------------

//  One transfer from every operator account to an account on the other
//  shard (two-phase through s1 and s2), ids base + n; settled, modelled.
static void
s_cross_transfers (rk_ctx_t *ctx, uint64_t base)
{
    rl_transfer_t batch[RK_ACCOUNTS];
    bool apply[RK_ACCOUNTS];
    size_t count = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        uint64_t c = rk_partner (ctx->ring, n, false);
        if (rk_account_flags (n) == 0 && c != 0) {
            apply[count] = true;
            batch[count++] = tk_transfer (tk_id (base + n, RK_TAG), tk_id (n, RK_TAG),
                                          tk_id (c, RK_TAG), n + 1, RK_LEDGER);
        }
    }
    assert_true (count > 0);
    rk_settle (ctx, ctx->client, batch, count, apply);
}

//  Every account, once no decision is on its way (a credit is reserved
//  until its decision arrives).
static void
s_balances (rk_ctx_t *ctx, rl_account_t *out)
{
    assert_true (tk_wait_cluster_quiet (ctx->client, TK_QUIET_TIMEOUT_MS));
    rl_id_t ids[RK_ACCOUNTS];
    for (uint64_t i = 0; i < RK_ACCOUNTS; i++) {
        ids[i] = tk_id (i + 1, RK_TAG);
    }
    assert_int_equal (rl_client_lookup_accounts (ctx->client, ids, RK_ACCOUNTS, out, TK_TIMEOUT_MS),
                      0);
}

static void
s_cluster (rk_ctx_t *ctx)
{
    rk_cluster_start (ctx, 2, 2, 0, S_REFRESH_MS);
    rk_create_accounts (ctx);
    s_cross_transfers (ctx, 1000);
}

//  The freeze ----------------------------------------------------------------------

typedef struct {
    const char *endpoint;
    uint64_t epoch;
} s_epoch_wait_t;

static bool
s_router_at (void *arg)
{
    s_epoch_wait_t *w = arg;
    return rk_status_of (w->endpoint).epoch == w->epoch;
}

static bool
s_router_refused (void *arg)
{
    return rk_status_of (arg).epoch_jumps_refused > 0;
}

static void
test_ring_freeze (void **state)
{
    rk_ctx_t *ctx = *state;
    s_cluster (ctx);
    tk_shard_t *s1 = &ctx->shards[0];
    tk_shard_t *s2 = &ctx->shards[1];

    //  Restarted without --ring, it keeps the cluster's ring (stored, epoch
    //  1), not a ring of itself alone (epoch 1 too), which would own every
    //  account.
    assert_int_equal (tk_shard_stop (ctx->h, s1, SIGTERM), 0);
    char ring_file[sizeof s1->ring_file];
    memcpy (ring_file, s1->ring_file, sizeof ring_file);
    s1->ring_file[0] = '\0';
    assert_true (tk_shard_start (ctx->h, s1) > 0);
    rl_status_rec_t alone = rk_status_of (s1->endpoint);
    assert_int_equal (alone.epoch, 1);
    assert_int_equal (alone.ring_shards, 2);
    assert_int_equal (tk_shard_stop (ctx->h, s1, SIGTERM), 0);
    memcpy (s1->ring_file, ring_file, sizeof ring_file);
    assert_true (tk_shard_start (ctx->h, s1) > 0);

    //  From the admin key: refused, counted, nothing changed.
    assert_int_equal (s_load (s1->endpoint, ctx, UINT64_MAX), RL_STATUS_EPOCH_TOO_FAR);
    assert_int_equal (s_load (s1->endpoint, ctx, 1 + RL_RING_EPOCH_JUMP_DEFAULT + 1),
                      RL_STATUS_EPOCH_TOO_FAR);
    rl_status_rec_t status = rk_status_of (s1->endpoint);
    assert_int_equal (status.epoch, 1);
    assert_int_equal (status.epoch_jumps_refused, 2);
    //  The next ring is accepted by both shards.
    assert_int_equal (s_load (s1->endpoint, ctx, 2), 0);
    assert_int_equal (s_load (s2->endpoint, ctx, 2), 0);

    //  After a restart: the ring stored is epoch 2 (the file's is 1), the
    //  frozen ring is refused again, the next one accepted.
    assert_int_equal (tk_shard_stop (ctx->h, s1, SIGTERM), 0);
    assert_true (tk_shard_start (ctx->h, s1) > 0);
    assert_int_equal (rk_status_of (s1->endpoint).epoch, 2);
    assert_int_equal (s_load (s1->endpoint, ctx, UINT64_MAX), RL_STATUS_EPOCH_TOO_FAR);
    assert_int_equal (s_load (s1->endpoint, ctx, 3), 0);
    assert_int_equal (s_load (s2->endpoint, ctx, 3), 0);
    s_epoch_wait_t at3 = {ctx->routers[0].endpoint, 3};
    assert_true (harness_wait_until (s_router_at, &at3, S_WAIT_MS));

    //  A shard with a larger bound accepts a far ring; the router, whose
    //  bound is the default, refuses it when it fetches it, and keeps its ring.
    assert_int_equal (tk_shard_stop (ctx->h, s2, SIGTERM), 0);
    s2->args[0] = "--max-epoch-jump";
    s2->args[1] = "1000000";
    s2->args[2] = NULL;
    assert_true (tk_shard_start (ctx->h, s2) > 0);
    uint64_t far = 3 + RL_RING_EPOCH_JUMP_DEFAULT + 5;
    assert_int_equal (s_load (s2->endpoint, ctx, far), 0);
    assert_true (harness_wait_until (s_router_refused, ctx->routers[0].endpoint, S_WAIT_MS));
    assert_int_equal (rk_status_of (ctx->routers[0].endpoint).epoch, 3);

    //  Money still moves between the shards, and adds up.
    s_cross_transfers (ctx, 2000);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
    rk_routers_stop (ctx);
}

//  The hijack ----------------------------------------------------------------------

//  A DEALER to endpoint speaking CURVE as secret certificate `cert_path`
//  (NULL: plain TCP), pinning server_key.
static zsock_t *
s_dealer (const char *endpoint, const char *cert_path, const char *server_key)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    if (cert_path) {
        char err[512];
        zcert_t *cert = rl_cert_load (cert_path, err, sizeof err);
        if (!cert) {
            fail_msg ("%s", err);
        }
        zcert_apply (cert, dealer);
        zcert_destroy (&cert);
        zsock_set_curve_serverkey (dealer, server_key);
    }
    assert_int_equal (zsock_connect (dealer, "%s", endpoint), 0);
    return dealer;
}

//  Sends a frame; the reply's status, or UINT32_MAX when none came in time.
static uint32_t
s_call (zsock_t *dealer, const uint8_t *frame, size_t size, int timeout_ms)
{
    zframe_t *out = zframe_new (frame, size);
    assert_int_equal (zframe_send (&out, dealer, 0), 0);
    zsock_set_rcvtimeo (dealer, timeout_ms);
    zframe_t *in = zframe_recv (dealer);
    if (!in) {
        return UINT32_MAX;
    }
    rl_header_t h;
    assert_true (zframe_size (in) >= RL_HEADER_SIZE);
    codec_decode_header (zframe_data (in), &h);
    zframe_destroy (&in);
    return h.status;
}

static const char *
s_secret (harness_t *h, const char *name)
{
    static char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/private/%s.key_secret", tk_keys_dir (h), name);
    return path;
}

static void
test_ring_hijack (void **state)
{
    rk_ctx_t *ctx = *state;
    (void) tk_key (ctx->h, "client", "app");
    s_cluster (ctx);
    tk_shard_t *s1 = &ctx->shards[0];
    char s1_key[RL_KEY_TEXT_SIZE];
    snprintf (s1_key, sizeof s1_key, "%s", tk_key (ctx->h, "shard", "s1"));
    rl_account_t before[RK_ACCOUNTS];
    s_balances (ctx, before);
    rl_status_rec_t was = rk_status_of (s1->endpoint);

    //  The hijack: the next epoch, with s2 at a socket nobody serves.
    char elsewhere[64];
    snprintf (elsewhere, sizeof elsewhere, "tcp://127.0.0.1:%d", harness_free_port ());
    size_t blob_size = 0;
    uint8_t *blob = s_ring_blob (ctx, 2, elsewhere, &blob_size);
    size_t size = RL_HEADER_SIZE + blob_size;
    uint8_t *frame = malloc (size);
    assert_non_null (frame);
    tk_request_header (frame, RL_OP_LOAD_RING, 7, 1);
    memcpy (frame + RL_HEADER_SIZE, blob, blob_size);
    free (blob);

    //  No key, and a key in no role: the handshake fails, no reply.
    zsock_t *plain = s_dealer (s1->endpoint, NULL, NULL);
    assert_int_equal (s_call (plain, frame, size, S_NO_REPLY_MS), UINT32_MAX);
    zsock_destroy (&plain);
    char stranger_dir[PATH_MAX];
    snprintf (stranger_dir, sizeof stranger_dir, "%s/elsewhere", harness_dir (ctx->h));
    char err[512];
    assert_int_equal (rl_keygen (stranger_dir, "admin", "mallory", NULL, err, sizeof err), 0);
    char stranger[PATH_MAX + 64];
    snprintf (stranger, sizeof stranger, "%s/private/mallory.key_secret", stranger_dir);
    zsock_t *unknown = s_dealer (s1->endpoint, stranger, s1_key);
    assert_int_equal (s_call (unknown, frame, size, S_NO_REPLY_MS), UINT32_MAX);
    zsock_destroy (&unknown);
    //  A client, a router and a shard key: unauthorized.
    static const char *holders[] = {"app", "r1", "s2"};
    for (size_t i = 0; i < 3; i++) {
        zsock_t *dealer = s_dealer (s1->endpoint, s_secret (ctx->h, holders[i]), s1_key);
        uint32_t status = s_call (dealer, frame, size, TK_TIMEOUT_MS);
        if (status != RL_STATUS_UNAUTHORIZED) {
            fail_msg ("load_ring from %s: answered %s", holders[i],
                      status == UINT32_MAX ? "nothing" : rl_status_name (status));
        }
        zsock_destroy (&dealer);
    }
    free (frame);

    //  Counted; the ring, s2's endpoint and every balance unchanged.
    rl_status_rec_t now = rk_status_of (s1->endpoint);
    assert_true (now.handshakes_refused >= was.handshakes_refused + 2);
    assert_int_equal (now.unauthorized, was.unauthorized + 3);
    assert_int_equal (now.epoch, 1);
    assert_int_equal (now.transfers, was.transfers);
    char s2_endpoint[RL_ENDPOINT_SIZE_MAX];
    s_served_s2 (s1->endpoint, s2_endpoint, sizeof s2_endpoint);
    assert_string_equal (s2_endpoint, ctx->shards[1].endpoint);
    rl_account_t after[RK_ACCOUNTS];
    s_balances (ctx, after);
    assert_memory_equal (before, after, sizeof before);

    //  Cross-shard transfers still reach the real s2, and add up.
    s_cross_transfers (ctx, 3000);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
    rk_routers_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_ring_freeze, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_ring_hijack, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
