/*  test_roles.c: authentication and roles against a real shard and router
    (docs/security.md, docs/protocol.md "Security").

    - Every operation from every role: a key of one role gets unauthorized
      for exactly the operations RL_OP_ROLES_TABLE does not give that role,
      and the shard's unauthorized counter counts them (ack is a reply
      only: unknown_operation as a request, whoever sends it).
    - The forged money of an earlier review (a PREPARE naming a coordinator
      that does not exist, then a DECIDE commit): with no key, or a key in
      no role, the handshake fails (counted, no reply); with a client key,
      unauthorized. Nothing changes: no transfer, no prepared record.
    - A key removed from its role folder loses its role on a connection
      already open.
    - The router checks its clients' roles too.
*/
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "auth.h"
#include "codec.h"
#include "keys.h"
#include "routerkit.h"
#include "testkit.h"

#define S_NO_REPLY_MS 700 //  how long a refused connection is given to answer

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

//  Sends a frame; returns the reply's header, or status UINT32_MAX when no
//  reply came within timeout_ms.
static rl_header_t
s_call (zsock_t *dealer, const uint8_t *frame, size_t size, int timeout_ms)
{
    zframe_t *out = zframe_new (frame, size);
    assert_int_equal (zframe_send (&out, dealer, 0), 0);
    rl_header_t h = {.status = UINT32_MAX};
    zsock_set_rcvtimeo (dealer, timeout_ms);
    zframe_t *in = zframe_recv (dealer);
    if (in) {
        assert_true (zframe_size (in) >= RL_HEADER_SIZE);
        codec_decode_header (zframe_data (in), &h);
        zframe_destroy (&in);
    }
    return h;
}

static rl_header_t
s_call_op (zsock_t *dealer, uint16_t op, uint64_t request_id, int timeout_ms)
{
    uint8_t frame[RL_HEADER_SIZE];
    size_t size = tk_request_header (frame, op, request_id, 0);
    return s_call (dealer, frame, size, timeout_ms);
}

static char *
s_secret (harness_t *h, const char *name)
{
    static char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/private/%s.key_secret", tk_keys_dir (h), name);
    return path;
}

static rl_status_rec_t
s_status (const char *endpoint)
{
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (client, &status, TK_TIMEOUT_MS), 0);
    rl_client_destroy (&client);
    return status;
}

static const uint16_t s_ops[] = {
#define S_OP_(id, value, name) id,
    RL_OP_TABLE (S_OP_)
#undef S_OP_
};
#define S_OPS (sizeof s_ops / sizeof s_ops[0])

//  Every operation from every role ----------------------------------------------

static void
test_every_operation_from_every_role (void **state)
{
    (void) state;
    harness_t *h = harness_new ("roles");
    assert_non_null (h);
    static const char *roles[] = {"client", "router", "shard", "admin"};
    char keys[4][RL_KEY_TEXT_SIZE];
    for (size_t r = 0; r < 4; r++) {
        char name[32];
        snprintf (name, sizeof name, "only-%s", roles[r]);
        snprintf (keys[r], sizeof keys[r], "%s", tk_key (h, roles[r], name));
    }
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    assert_true (tk_shard_start (h, &shard) > 0);
    char shard_key[RL_KEY_TEXT_SIZE];
    snprintf (shard_key, sizeof shard_key, "%s", tk_key (h, "shard", "s1"));
    uint64_t refused = 0;
    for (size_t r = 0; r < 4; r++) {
        unsigned role = rl_role_parse (roles[r]);
        char name[32];
        snprintf (name, sizeof name, "only-%s", roles[r]);
        zsock_t *dealer = s_dealer (shard.endpoint, s_secret (h, name), shard_key);
        for (size_t k = 0; k < S_OPS; k++) {
            rl_header_t reply = s_call_op (dealer, s_ops[k], 100 + k, TK_TIMEOUT_MS);
            bool allowed = (rl_op_roles (s_ops[k]) & role) != 0;
            if (reply.status == UINT32_MAX) {
                fail_msg ("%s from %s: no reply", rl_op_name (s_ops[k]), roles[r]);
            }
            if (s_ops[k] == RL_OP_ACK) {
                //  Only ever a reply (to decide): no server takes it as a request.
                assert_int_equal (reply.status, RL_STATUS_UNKNOWN_OPERATION);
                continue;
            }
            if (allowed == (reply.status == RL_STATUS_UNAUTHORIZED)) {
                fail_msg ("%s from %s: answered %s", rl_op_name (s_ops[k]), roles[r],
                          rl_status_name (reply.status));
            }
            refused += !allowed;
        }
        zsock_destroy (&dealer);
    }
    rl_status_rec_t status = s_status (shard.endpoint);
    assert_int_equal (status.unauthorized, refused);
    assert_int_equal (status.insecure, 0);
    assert_int_equal (status.transfers, 0);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    harness_destroy (&h);
}

//  Forged money, three ways -------------------------------------------------------

//  The forgery: a PREPARE from "mallory" (no such shard) crediting account
//  `credit` with 1,000,000, then the DECIDE commit of that attempt.
static size_t
s_forged_prepare (uint8_t *frame, rl_id_t credit, uint64_t request_id)
{
    size_t size = tk_request_header (frame, RL_OP_PREPARE, request_id, 1);
    rl_prepare_rec_t p = {0};
    p.transfer = tk_transfer (tk_id (0xbad, 0x66), tk_id (1, 0x77), credit, 1000000, 1);
    p.tp.id = p.transfer.id;
    p.tp.attempt.counter = 1;
    p.tp.attempt.seq = 1;
    snprintf (p.tp.coordinator, sizeof p.tp.coordinator, "mallory");
    codec_encode_prepare (&p, frame + size);
    return size + RL_PREPARE_SIZE;
}

static size_t
s_forged_decide (uint8_t *frame, uint64_t request_id)
{
    size_t size = tk_request_header (frame, RL_OP_DECIDE, request_id, 1);
    rl_tp_rec_t d = {0};
    d.id = tk_id (0xbad, 0x66);
    d.attempt.counter = 1;
    d.attempt.seq = 1;
    d.state = RL_TP_COMMIT;
    snprintf (d.coordinator, sizeof d.coordinator, "mallory");
    codec_encode_tp (&d, frame + size);
    return size + RL_TP_SIZE;
}

static void
test_forged_money (void **state)
{
    (void) state;
    harness_t *h = harness_new ("roles_forgery");
    assert_non_null (h);
    (void) tk_key (h, "client", "app");
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    assert_true (tk_shard_start (h, &shard) > 0);
    char shard_key[RL_KEY_TEXT_SIZE];
    snprintf (shard_key, sizeof shard_key, "%s", tk_key (h, "shard", "s1"));
    //  The victim account, on this shard (a ring of one).
    rl_client_t *client = rl_client_new (shard.endpoint);
    assert_non_null (client);
    rl_account_t account = tk_account (2, 0x77, 1, 0);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_accounts (client, &account, 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (result.result, RL_OK);
    rl_status_rec_t before = s_status (shard.endpoint);

    static uint8_t prepare[RL_HEADER_SIZE + RL_PREPARE_SIZE];
    static uint8_t decide[RL_HEADER_SIZE + RL_TP_SIZE];
    size_t prepare_size = s_forged_prepare (prepare, account.id, 1);
    size_t decide_size = s_forged_decide (decide, 2);

    //  1. No key at all (plain TCP): no reply, the handshake fails.
    zsock_t *plain = s_dealer (shard.endpoint, NULL, NULL);
    assert_int_equal (s_call (plain, prepare, prepare_size, S_NO_REPLY_MS).status, UINT32_MAX);
    zsock_destroy (&plain);
    //  2. A key in no role (made in a folder of its own): likewise.
    char stranger_dir[PATH_MAX];
    snprintf (stranger_dir, sizeof stranger_dir, "%s/elsewhere", harness_dir (h));
    char err[512];
    assert_int_equal (rl_keygen (stranger_dir, "admin", "mallory", NULL, err, sizeof err), 0);
    char stranger[PATH_MAX + 64];
    snprintf (stranger, sizeof stranger, "%s/private/mallory.key_secret", stranger_dir);
    zsock_t *unknown = s_dealer (shard.endpoint, stranger, shard_key);
    assert_int_equal (s_call (unknown, prepare, prepare_size, S_NO_REPLY_MS).status, UINT32_MAX);
    zsock_destroy (&unknown);
    //  3. A client key: unauthorized, both of them.
    zsock_t *app = s_dealer (shard.endpoint, s_secret (h, "app"), shard_key);
    assert_int_equal (s_call (app, prepare, prepare_size, TK_TIMEOUT_MS).status,
                      RL_STATUS_UNAUTHORIZED);
    assert_int_equal (s_call (app, decide, decide_size, TK_TIMEOUT_MS).status,
                      RL_STATUS_UNAUTHORIZED);
    zsock_destroy (&app);

    //  Nothing changed; both refusals counted.
    rl_status_rec_t after = s_status (shard.endpoint);
    assert_true (after.handshakes_refused >= before.handshakes_refused + 2);
    assert_int_equal (after.unauthorized, before.unauthorized + 2);
    assert_int_equal (after.transfers, before.transfers);
    assert_int_equal (after.in_doubt, 0);
    rl_account_t seen;
    assert_int_equal (rl_client_lookup_accounts (client, &account.id, 1, &seen, TK_TIMEOUT_MS), 0);
    assert_int_equal (seen.credits_posted, 0);
    assert_int_equal (seen.credits_reserved, 0);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    harness_destroy (&h);
}

//  Removing a key takes effect on an open connection ------------------------------

static bool
s_refused_now (void *arg)
{
    zsock_t *dealer = arg;
    static uint64_t request_id = 1000;
    return s_call_op (dealer, RL_OP_LOOKUP_ACCOUNTS, request_id++, TK_TIMEOUT_MS).status
           == RL_STATUS_UNAUTHORIZED;
}

static void
test_key_removed_on_open_connection (void **state)
{
    (void) state;
    harness_t *h = harness_new ("roles_removal");
    assert_non_null (h);
    (void) tk_key (h, "client", "leaving");
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    assert_true (tk_shard_start (h, &shard) > 0);
    char shard_key[RL_KEY_TEXT_SIZE];
    snprintf (shard_key, sizeof shard_key, "%s", tk_key (h, "shard", "s1"));
    zsock_t *dealer = s_dealer (shard.endpoint, s_secret (h, "leaving"), shard_key);
    assert_int_equal (s_call_op (dealer, RL_OP_LOOKUP_ACCOUNTS, 1, TK_TIMEOUT_MS).status,
                      RL_STATUS_OK);
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/client/leaving.key", tk_keys_dir (h));
    assert_int_equal (unlink (path), 0);
    //  The same connection, still open: refused once the shard re-reads its
    //  key sets (RL_AUTH_REFRESH_MS).
    assert_true (harness_wait_until (s_refused_now, dealer, 10 * RL_AUTH_REFRESH_MS));
    zsock_destroy (&dealer);
    //  And a new connection with it fails at the handshake.
    zsock_t *again = s_dealer (shard.endpoint, s_secret (h, "leaving"), shard_key);
    assert_int_equal (s_call_op (again, RL_OP_LOOKUP_ACCOUNTS, 2, S_NO_REPLY_MS).status,
                      UINT32_MAX);
    zsock_destroy (&again);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    harness_destroy (&h);
}

//  The router checks its clients' roles -------------------------------------------

static void
test_router_roles (void **state)
{
    rk_ctx_t *ctx = *state;
    (void) tk_key (ctx->h, "shard", "peer-only");
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_router_t *r = &ctx->routers[0];
    char router_key[RL_KEY_TEXT_SIZE];
    snprintf (router_key, sizeof router_key, "%s", tk_key (ctx->h, "router", r->name));
    //  A shard's key may not create money through the router either.
    zsock_t *dealer = s_dealer (r->endpoint, s_secret (ctx->h, "peer-only"), router_key);
    for (size_t k = 0; k < S_OPS; k++) {
        rl_header_t reply = s_call_op (dealer, s_ops[k], 200 + k, TK_TIMEOUT_MS);
        assert_true (reply.status != UINT32_MAX);
        bool served = s_ops[k] >= RL_OP_CREATE_ACCOUNTS && s_ops[k] <= RL_OP_GET_RING
                      && s_ops[k] != RL_OP_LOAD_RING;
        uint32_t want = !served                                    ? RL_STATUS_UNKNOWN_OPERATION
                        : (rl_op_roles (s_ops[k]) & RL_ROLE_SHARD) ? reply.status
                                                                   : RL_STATUS_UNAUTHORIZED;
        if (reply.status != want) {
            fail_msg ("router: %s from a shard key: answered %s", rl_op_name (s_ops[k]),
                      rl_status_name (reply.status));
        }
    }
    zsock_destroy (&dealer);
    rl_status_rec_t status = s_status (r->endpoint);
    assert_int_equal (status.unauthorized, 6); //  creates, lookups, history, status
    rk_routers_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_operation_from_every_role),
        cmocka_unit_test (test_forged_money),
        cmocka_unit_test (test_key_removed_on_open_connection),
        cmocka_unit_test_setup_teardown (test_router_roles, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
