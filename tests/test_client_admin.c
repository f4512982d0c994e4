/*  test_client_admin.c: the client library's admin calls and fan-outs,
    against real shard processes on 127.0.0.1.

    Covers: rl_client_status_all over two live shards, one endpoint where
    nothing listens (timeout, within one deadline for the whole fan-out) and
    one that is not an endpoint (not sent); a shard given another shard's
    key (handshake failed, not a timeout) and a client key no shard accepts
    (refused); the raw fan-out of get_ring;
    rl_client_load_ring_all (a newer epoch everywhere, then epoch_not_newer);
    rl_client_in_doubt and rl_client_in_doubt_all while a cross-shard
    transfer waits for a stopped credit shard (the coordinator lists the live
    attempt, the stopped shard times out), then nothing in doubt once it
    resumes; rl_client_audit and rl_client_audit_all before, during and
    after; rl_client_resolve's refusals (not forced, coordinator not fenced,
    no such prepared record, not a decision). And out of memory (failpoint
    client.alloc, armed in this process): each allocation of a call fails
    with RL_CLIENT_ERR_NOMEM, and the next call works. The pipelined calls
    without copies: a request filled in its frame, the window, replies lent
    in place, one wait over two clients, a reply kept by a blocking call.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "failpoint.h"
#include "ring.h"
#include "testkit.h"

#define TAG           0x41444d494eull //  "ADMIN"
#define LEDGER        840
#define ACCOUNTS      16
#define SHARDS        2
#define FANOUT_MS     1000 //  the fan-out deadline of the timing check
#define SLACK_MS      2500 //  a loaded machine (sanitizers, parallel tests)
#define LIVE_WAIT_MS  5000 //  for the live attempt to show, and to clear
#define STOPPED_PROBE 300  //  ms: a fan-out that includes the stopped shard

typedef struct {
    harness_t *h;
    tk_shard_t shards[SHARDS];
    ring_t *ring;
    const char *endpoints[SHARDS];
    rl_client_t *clients[SHARDS]; //  one per shard, direct
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->h = harness_new ("client_admin");
    *state = ctx;
    return ctx->h ? 0 : -1;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    if (ctx) {
        for (size_t i = 0; i < SHARDS; i++) {
            rl_client_destroy (&ctx->clients[i]);
        }
        ring_destroy (&ctx->ring);
        harness_destroy (&ctx->h);
        free (ctx);
    }
    return 0;
}

//  A ring of both shards at `epoch`, saved to `path` when path is not NULL.
static ring_t *
s_ring (s_ctx_t *ctx, uint64_t epoch, const char *path)
{
    ring_t *ring = ring_new (epoch);
    assert_non_null (ring);
    for (size_t i = 0; i < SHARDS; i++) {
        assert_int_equal (ring_add_shard (ring, ctx->shards[i].name, ctx->shards[i].endpoint, 1.0),
                          RING_OK);
    }
    if (path) {
        assert_int_equal (ring_save_file (ring, path), RING_OK);
    }
    return ring;
}

static void
s_cluster_start (s_ctx_t *ctx)
{
    static const char *names[SHARDS] = {"s1", "s2"};
    for (size_t i = 0; i < SHARDS; i++) {
        tk_shard_init (ctx->h, &ctx->shards[i], names[i]);
    }
    char path[512];
    snprintf (path, sizeof (path), "%s/cluster.ring", harness_dir (ctx->h));
    ctx->ring = s_ring (ctx, 1, path);
    for (size_t i = 0; i < SHARDS; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof (ctx->shards[i].ring_file), "%s", path);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
        ctx->endpoints[i] = ctx->shards[i].endpoint;
        ctx->clients[i] = rl_client_new (ctx->shards[i].endpoint);
        assert_non_null (ctx->clients[i]);
    }
}

static int
s_owner (const ring_t *ring, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    int owner = ring_lookup_id (ring, bytes);
    assert_true (owner >= 0 && owner < SHARDS);
    return owner;
}

//  Status, get_ring and load_ring, asked of every shard at once --------------

static void
test_fanout_status_and_ring (void **state)
{
    s_ctx_t *ctx = *state;
    s_cluster_start (ctx);
    char dead[64];
    snprintf (dead, sizeof (dead), "tcp://127.0.0.1:%d", harness_free_port ());
    const char *endpoints[] = {ctx->endpoints[0], ctx->endpoints[1], dead, "not-an-endpoint"};
    rl_status_rec_t status[4];
    int rcs[4];
    //  With security on, an endpoint whose key is unknown is never contacted.
    assert_int_equal (rl_client_status_all (&endpoints[2], 1, FANOUT_MS, status, rcs), 1);
    assert_int_equal (rcs[0], RL_CLIENT_ERR_SEND);
    assert_int_equal (rl_client_add_server_key (dead, tk_key (ctx->h, "shard", "dead")), 0);
    int64_t started = zclock_mono ();
    size_t failed = rl_client_status_all (endpoints, 4, FANOUT_MS, status, rcs);
    int64_t elapsed = zclock_mono () - started;
    assert_int_equal (failed, 2);
    for (size_t i = 0; i < SHARDS; i++) {
        assert_int_equal (rcs[i], 0);
        assert_string_equal (status[i].name, ctx->shards[i].name);
        assert_true (status[i].epoch == 1);
        assert_int_equal (status[i].ring_shards, SHARDS);
    }
    assert_int_equal (rcs[2], RL_CLIENT_TIMEOUT);
    assert_int_equal (rcs[3], RL_CLIENT_ERR_SEND);
    assert_string_equal (status[2].name, "");
    //  One deadline for the whole fan-out, not one per shard.
    assert_true (elapsed >= FANOUT_MS - 50 && elapsed < FANOUT_MS + SLACK_MS);
    assert_int_equal (rl_client_status_all (endpoints, 0, FANOUT_MS, status, rcs), 0);

    //  A wrong key is told from a shard that is down: shard 0 pinned with
    //  shard 1's key closes every handshake.
    char right[41];
    snprintf (right, sizeof right, "%s", tk_key (ctx->h, "shard", ctx->shards[0].name));
    assert_int_equal (
        rl_client_add_server_key (ctx->endpoints[0], tk_key (ctx->h, "shard", ctx->shards[1].name)),
        0);
    assert_int_equal (rl_client_status_all (ctx->endpoints, SHARDS, FANOUT_MS, status, rcs), 1);
    assert_int_equal (rcs[0], RL_CLIENT_ERR_HANDSHAKE);
    assert_int_equal (rcs[1], 0);
    assert_non_null (strstr (rl_client_strerror (rcs[0]), "not the server's key"));
    assert_int_equal (rl_client_add_server_key (ctx->endpoints[0], right), 0);
    //  And a client key no shard accepts is refused by name.
    zcert_t *stranger = zcert_new ();
    assert_non_null (stranger);
    rl_client_set_curve (stranger, NULL);
    assert_int_equal (rl_client_status_all (ctx->endpoints, SHARDS, FANOUT_MS, status, rcs),
                      SHARDS);
    for (size_t i = 0; i < SHARDS; i++) {
        assert_int_equal (rcs[i], RL_CLIENT_ERR_REFUSED);
    }
    tk_curve_restore ();
    zcert_destroy (&stranger);
    assert_int_equal (rl_client_status_all (ctx->endpoints, SHARDS, FANOUT_MS, status, rcs), 0);

    //  The raw fan-out: every shard's ring, as a blob.
    rl_client_reply_t replies[SHARDS];
    assert_int_equal (rl_client_fanout (ctx->endpoints, SHARDS, RL_OP_GET_RING, NULL, 0, 0,
                                        TK_TIMEOUT_MS, replies),
                      0);
    for (size_t i = 0; i < SHARDS; i++) {
        assert_int_equal (replies[i].rc, 0);
        assert_int_equal (replies[i].header.operation, RL_OP_GET_RING);
        char err[256];
        ring_t *ring = ring_decode (replies[i].body, replies[i].body_size, err, sizeof (err));
        assert_non_null (ring);
        assert_true (ring_epoch (ring) == 1);
        ring_destroy (&ring);
    }
    rl_client_replies_free (replies, SHARDS);
    assert_null (replies[0].body);

    //  A newer ring everywhere, then the same one again: epoch_not_newer.
    ring_t *newer = s_ring (ctx, 2, NULL);
    size_t size = ring_encoded_size (newer);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (newer, blob, size), size);
    assert_int_equal (
        rl_client_load_ring_all (ctx->endpoints, SHARDS, blob, size, TK_TIMEOUT_MS, rcs), 0);
    assert_int_equal (
        rl_client_load_ring_all (ctx->endpoints, SHARDS, blob, size, TK_TIMEOUT_MS, rcs), SHARDS);
    for (size_t i = 0; i < SHARDS; i++) {
        assert_int_equal (rcs[i], RL_STATUS_EPOCH_NOT_NEWER);
    }
    assert_int_equal (rl_client_status_all (ctx->endpoints, SHARDS, TK_TIMEOUT_MS, status, rcs), 0);
    for (size_t i = 0; i < SHARDS; i++) {
        assert_true (status[i].epoch == 2);
    }
    free (blob);
    ring_destroy (&newer);
}

//  In-doubt, audit and resolve -------------------------------------------------

//  True when no shard has anything in doubt (every shard answered).
static bool
s_nothing_in_doubt (void *arg)
{
    s_ctx_t *ctx = arg;
    rl_in_doubt_rec_t *records[SHARDS];
    size_t counts[SHARDS];
    int rcs[SHARDS];
    size_t failed = rl_client_in_doubt_all (ctx->endpoints, SHARDS, TK_TIMEOUT_MS, records, counts,
                                            rcs);
    size_t total = 0;
    for (size_t i = 0; i < SHARDS; i++) {
        total += counts[i];
        free (records[i]);
    }
    return failed == 0 && total == 0;
}

static void
s_assert_audits_ok (s_ctx_t *ctx)
{
    rl_audit_rec_t audits[SHARDS];
    int rcs[SHARDS];
    assert_int_equal (rl_client_audit_all (ctx->endpoints, SHARDS, TK_TIMEOUT_MS, audits, rcs), 0);
    for (size_t i = 0; i < SHARDS; i++) {
        if (!audits[i].ok) {
            fail_msg ("audit of %s: %s", ctx->shards[i].name, audits[i].message);
        }
        assert_true (audits[i].live == 0 && audits[i].prepared == 0);
    }
}

static void
test_in_doubt_audit_resolve (void **state)
{
    s_ctx_t *ctx = *state;
    s_cluster_start (ctx);

    //  Accounts, each created on its owner; a debit on s1, a credit on s2.
    rl_account_t accounts[ACCOUNTS];
    int owners[ACCOUNTS];
    int debit = -1, credit = -1;
    for (size_t i = 0; i < ACCOUNTS; i++) {
        accounts[i] = tk_account (i + 1, TAG, LEDGER, 0);
        owners[i] = s_owner (ctx->ring, accounts[i].id);
        rl_result_rec_t result;
        assert_int_equal (rl_client_create_accounts (ctx->clients[owners[i]], &accounts[i], 1,
                                                     &result, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (result.result, RL_OK);
        debit = debit < 0 && owners[i] == 0 ? (int) i : debit;
        credit = credit < 0 && owners[i] == 1 ? (int) i : credit;
    }
    assert_true (debit >= 0 && credit >= 0);

    //  A quiet cluster: nothing in doubt, every reservation accounted for.
    rl_in_doubt_rec_t *records = NULL;
    size_t count = 99;
    assert_int_equal (rl_client_in_doubt (ctx->clients[0], &records, &count, TK_TIMEOUT_MS), 0);
    assert_int_equal (count, 0);
    assert_null (records);
    assert_true (s_nothing_in_doubt (ctx));
    s_assert_audits_ok (ctx);

    //  The credit shard stops: the cross-shard transfer's attempt stays live
    //  on its coordinator, which lists it; the stopped shard times out.
    assert_int_equal (harness_kill (ctx->h, ctx->shards[1].pid, SIGSTOP), 0);
    rl_transfer_t transfer = tk_transfer (tk_id (1000, TAG), accounts[debit].id,
                                          accounts[credit].id, 25, LEDGER);
    uint64_t request_id = 0;
    assert_int_equal (rl_client_send_transfers (ctx->clients[0], &transfer, 1, &request_id), 0);
    int64_t deadline = zclock_mono () + LIVE_WAIT_MS;
    count = 0;
    while (count == 0 && zclock_mono () < deadline) {
        assert_int_equal (rl_client_in_doubt (ctx->clients[0], &records, &count, TK_TIMEOUT_MS), 0);
        if (count == 0) {
            zclock_sleep (5);
        }
    }
    assert_int_equal (count, 1);
    const rl_in_doubt_rec_t *live = &records[0];
    assert_true (rl_id_eq (live->prepare.tp.id, transfer.id));
    assert_true (live->prepare.reserved[1] == RL_ROLE_COORDINATOR);
    assert_string_equal (live->peer, "s2");
    assert_int_equal (live->prepare.tp.state, RL_TP_PENDING);
    assert_true (live->prepare.tp.amount == 25);
    free (records);

    rl_audit_rec_t audit;
    assert_int_equal (rl_client_audit (ctx->clients[0], &audit, TK_TIMEOUT_MS), 0);
    assert_true (audit.ok);

    rl_in_doubt_rec_t *all[SHARDS];
    size_t counts[SHARDS];
    int rcs[SHARDS];
    assert_int_equal (
        rl_client_in_doubt_all (ctx->endpoints, SHARDS, STOPPED_PROBE, all, counts, rcs), 1);
    assert_int_equal (rcs[1], RL_CLIENT_TIMEOUT);
    assert_null (all[1]);
    assert_int_equal (rcs[0], 0);
    free (all[0]);

    //  The credit shard resumes: the transfer is decided (ok, or aborted if
    //  the prepare timed out meanwhile), and nothing stays in doubt.
    assert_int_equal (harness_kill (ctx->h, ctx->shards[1].pid, SIGCONT), 0);
    rl_header_t header;
    uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal (rl_client_recv (ctx->clients[0], TK_TIMEOUT_MS, &header, &body, &body_size),
                      0);
    rl_result_rec_t result;
    assert_int_equal (body_size, RL_RESULT_SIZE);
    rl_client_decode_results (body, 1, &result);
    free (body);
    assert_true (result.result == RL_OK || result.result == RL_ABORTED);
    assert_true (harness_wait_until (s_nothing_in_doubt, ctx, LIVE_WAIT_MS));
    s_assert_audits_ok (ctx);

    //  Resolve refuses, with the reason as data.
    rl_tp_rec_t request = {.id = transfer.id, .state = RL_TP_COMMIT};
    request.attempt.counter = 1;
    request.attempt.seq = 1;
    snprintf (request.coordinator, sizeof (request.coordinator), "%s", "gone");
    static const struct {
        const char *coordinator;
        uint32_t state;
        uint32_t force;
        uint32_t reason;
    } cases[] = {
        {"gone", RL_TP_COMMIT, 0, RL_RESOLVE_NOT_FORCED},
        {"s1", RL_TP_COMMIT, RL_RESOLVE_FORCE, RL_RESOLVE_NOT_FENCED},
        {"gone", RL_TP_ABORT, RL_RESOLVE_FORCE, RL_RESOLVE_NOT_FOUND},
        {"gone", RL_TP_PENDING, RL_RESOLVE_FORCE, RL_RESOLVE_BAD_DECISION},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        snprintf (request.coordinator, sizeof (request.coordinator), "%s", cases[i].coordinator);
        request.state = cases[i].state;
        request.result = cases[i].force;
        rl_tp_rec_t answer;
        assert_int_equal (rl_client_resolve (ctx->clients[1], &request, &answer, TK_TIMEOUT_MS), 0);
        assert_int_equal (answer.state, RL_TP_REFUSED);
        assert_int_equal (answer.result, cases[i].reason);
        assert_true (strlen (rl_resolve_reason (answer.result)) > 10);
    }
    assert_string_equal (rl_resolve_reason (0), "");
    s_assert_audits_ok (ctx);
}

//  Out of memory -------------------------------------------------------------------

//  Arms `spec` in this process only (children started later do not see it).
static void
s_arm (const char *spec)
{
    char err[256];
    assert_int_equal (setenv ("RL_FAILPOINTS", spec, 1), 0);
    int rc = failpoint_init (err, sizeof (err));
    unsetenv ("RL_FAILPOINTS");
    if (rc != 0) {
        fail_msg ("RL_FAILPOINTS=%s: %s", spec, err);
    }
}

static void
test_alloc_failure (void **state)
{
    s_ctx_t *ctx = *state;
    s_cluster_start (ctx);
    rl_client_t *client = ctx->clients[0];
    rl_status_rec_t status;
    //  A call without records: its request frame (1), its reply body (2).
    for (int hit = 1; hit <= 2; hit++) {
        char spec[64];
        snprintf (spec, sizeof (spec), "client.alloc=error@%d", hit);
        s_arm (spec);
        assert_int_equal (rl_client_status (client, &status, TK_TIMEOUT_MS), RL_CLIENT_ERR_NOMEM);
        assert_int_equal (rl_client_status (client, &status, TK_TIMEOUT_MS), 0);
        assert_string_equal (status.name, ctx->shards[0].name);
    }
    //  With records: the encoded body (1), the frame (2), the reply (3).
    uint64_t n = 1;
    while (s_owner (ctx->ring, tk_id (n, TAG)) != 0) {
        n++; //  an account of the shard the client talks to
    }
    rl_id_t ids[1] = {tk_id (n, TAG)};
    rl_account_t found[1];
    for (int hit = 1; hit <= 3; hit++) {
        char spec[64];
        snprintf (spec, sizeof (spec), "client.alloc=error@%d", hit);
        s_arm (spec);
        assert_int_equal (rl_client_lookup_accounts (client, ids, 1, found, TK_TIMEOUT_MS),
                          RL_CLIENT_ERR_NOMEM);
        assert_int_equal (rl_client_lookup_accounts (client, ids, 1, found, TK_TIMEOUT_MS), 0);
    }
    //  The retry helper stops at once: nothing sent, every record open.
    rl_account_t account = tk_account (n, TAG, LEDGER, 0);
    rl_result_rec_t result = {0};
    s_arm ("client.alloc=error@1");
    assert_int_equal (rl_client_create_accounts_retry (client, &account, 1, &result, TK_TIMEOUT_MS,
                                                       RL_CLIENT_ATTEMPTS_MAX),
                      RL_CLIENT_ERR_NOMEM);
    assert_int_equal (result.result, RL_OUTCOME_UNKNOWN);
    //  A pipelined send: nothing in flight.
    rl_transfer_t transfer = {.id = tk_id (9, TAG)};
    uint64_t request_id = 0;
    s_arm ("client.alloc=error@1");
    assert_int_equal (rl_client_send_transfers (client, &transfer, 1, &request_id),
                      RL_CLIENT_ERR_NOMEM);
    assert_int_equal (rl_client_inflight (client), 0);
    //  Fan-outs: the replies (1), the sockets' tables (2, 3), a request frame
    //  (6, after the poll items and slots).
    rl_status_rec_t statuses[SHARDS];
    int rcs[SHARDS];
    for (int hit = 1; hit <= 3; hit++) {
        char spec[64];
        snprintf (spec, sizeof (spec), "client.alloc=error@%d", hit);
        s_arm (spec);
        assert_int_equal (
            rl_client_status_all (ctx->endpoints, SHARDS, TK_TIMEOUT_MS, statuses, rcs), SHARDS);
        assert_int_equal (rcs[0], RL_CLIENT_ERR_NOMEM);
        assert_int_equal (rcs[1], RL_CLIENT_ERR_NOMEM);
    }
    s_arm ("client.alloc=error@6");
    assert_int_equal (rl_client_status_all (ctx->endpoints, SHARDS, TK_TIMEOUT_MS, statuses, rcs),
                      1);
    assert_int_equal (rcs[0], RL_CLIENT_ERR_NOMEM);
    assert_int_equal (rcs[1], 0);
    //  Disarmed: everything works again.
    s_arm ("");
    assert_int_equal (rl_client_create_accounts_retry (client, &account, 1, &result, TK_TIMEOUT_MS,
                                                       RL_CLIENT_ATTEMPTS_MAX),
                      0);
    assert_int_equal (rl_client_status_all (ctx->endpoints, SHARDS, TK_TIMEOUT_MS, statuses, rcs),
                      0);
    assert_string_equal (rl_client_strerror (RL_CLIENT_ERR_NOMEM),
                         "out of memory in the client: nothing sent, or the reply lost (outcome "
                         "unknown); retry with the same ids");
}

//  Sends one account create on `client`, filled in place; returns its id.
static uint64_t
s_send_account_in_place (rl_client_t *client, uint64_t i)
{
    uint8_t *body = NULL;
    assert_int_equal (rl_client_send_begin (client, RL_ACCOUNT_SIZE, &body), 0);
    assert_non_null (body);
    rl_account_t account = tk_account (i, TAG, LEDGER, 0);
    codec_encode_account (&account, body);
    uint64_t request_id = 0;
    assert_int_equal (rl_client_send_end (client, RL_OP_CREATE_ACCOUNTS, 1, &request_id), 0);
    return request_id;
}

//  Waits for a reply on any of the clients and lends it; returns which client.
static size_t
s_borrow_any (s_ctx_t *ctx, rl_header_t *h, const uint8_t **body, size_t *size)
{
    bool ready[SHARDS];
    int64_t deadline = zclock_mono () + TK_TIMEOUT_MS;
    while (zclock_mono () < deadline) {
        if (rl_client_wait_any (ctx->clients, SHARDS, 100, ready) > 0) {
            for (size_t i = 0; i < SHARDS; i++) {
                if (ready[i] && rl_client_recv_borrow (ctx->clients[i], 0, h, body, size) >= 0) {
                    return i;
                }
            }
        }
    }
    fail_msg ("no reply within %d ms", TK_TIMEOUT_MS);
    return SHARDS;
}

static void
test_pipelined_without_copies (void **state)
{
    s_ctx_t *ctx = *state;
    s_cluster_start (ctx);
    rl_client_t *client = ctx->clients[0];
    uint64_t request_id = 0;
    uint8_t *body = NULL;
    assert_int_equal (rl_client_send_end (client, RL_OP_STATUS, 0, &request_id),
                      RL_CLIENT_ERR_ARGS); //  nothing begun
    assert_int_equal (rl_client_send_begin (client, RL_MESSAGE_SIZE_MAX + 1, &body),
                      RL_CLIENT_ERR_ARGS);
    assert_null (body);

    //  A window of 2: two creates go out, a third is refused before it is made.
    assert_int_equal (rl_client_set_window (client, 2), 0);
    uint64_t sent[2] = {s_send_account_in_place (client, 1), s_send_account_in_place (client, 2)};
    assert_true (sent[0] != sent[1]);
    assert_int_equal (rl_client_send_begin (client, RL_ACCOUNT_SIZE, &body), RL_CLIENT_ERR_WINDOW);
    assert_int_equal (rl_client_inflight (client), 2);
    //  A status on the other shard, an empty body.
    uint64_t status_id = 0;
    assert_int_equal (rl_client_send_begin (ctx->clients[1], 0, &body), 0);
    assert_int_equal (rl_client_send_end (ctx->clients[1], RL_OP_STATUS, 0, &status_id), 0);

    //  Three replies over the two clients, each lent in place.
    bool seen[2] = {false, false}, status_seen = false;
    for (int k = 0; k < 3; k++) {
        rl_header_t h;
        const uint8_t *reply = NULL;
        size_t size = 0;
        size_t which = s_borrow_any (ctx, &h, &reply, &size);
        if (which == 1) {
            assert_true (h.request_id == status_id);
            assert_int_equal (size, RL_STATUS_SIZE);
            rl_status_rec_t status;
            codec_decode_status (reply, &status);
            assert_string_equal (status.name, "s2");
            status_seen = true;
        } else {
            assert_int_equal (which, 0);
            int i = h.request_id == sent[0] ? 0 : 1;
            assert_true (h.request_id == sent[i] && !seen[i]);
            assert_int_equal (h.record_count, 1);
            assert_int_equal (size, RL_RESULT_SIZE);
            assert_non_null (reply);
            seen[i] = true;
        }
    }
    assert_true (seen[0] && seen[1] && status_seen);
    rl_header_t h;
    const uint8_t *reply = NULL;
    size_t size = 0;
    assert_int_equal (rl_client_recv_borrow (client, 0, &h, &reply, &size), RL_CLIENT_ERR_ARGS);

    //  The window filled (another way) between a begin and its end: the end
    //  is refused, nothing sent, and goes once a reply is taken (it used
    //  to stop the caller's process on an assertion).
    assert_int_equal (rl_client_set_window (client, 1), 0);
    assert_int_equal (rl_client_send_begin (client, 0, &body), 0);
    uint64_t filler = 0;
    assert_int_equal (rl_client_send (client, RL_OP_STATUS, NULL, 0, 0, &filler), 0);
    assert_int_equal (rl_client_send_end (client, RL_OP_STATUS, 0, &status_id),
                      RL_CLIENT_ERR_WINDOW);
    assert_int_equal (rl_client_inflight (client), 1);
    assert_true (rl_client_recv_borrow (client, TK_TIMEOUT_MS, &h, &reply, &size) >= 0);
    assert_true (h.request_id == filler);
    assert_int_equal (rl_client_send_end (client, RL_OP_STATUS, 0, &status_id), 0);
    assert_true (rl_client_recv_borrow (client, TK_TIMEOUT_MS, &h, &reply, &size) >= 0);
    assert_true (h.request_id == status_id);
    assert_int_equal (rl_client_set_window (client, 2), 0);
    bool ready[SHARDS];
    assert_int_equal (rl_client_wait_any (ctx->clients, 0, 0, ready), RL_CLIENT_ERR_ARGS);

    //  A reply that arrives during a blocking call (a create answered after
    //  the first one's write) is kept, and the wait sees it.
    uint64_t kept = s_send_account_in_place (client, 3);
    rl_account_t account = tk_account (4, TAG, LEDGER, 0);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_accounts (client, &account, 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (rl_client_wait_any (ctx->clients, SHARDS, TK_TIMEOUT_MS, ready), 1);
    assert_true (ready[0] && !ready[1]);
    assert_int_equal (rl_client_recv_borrow (client, 0, &h, &reply, &size), 0);
    assert_true (h.request_id == kept);
    assert_int_equal (rl_client_inflight (client), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_fanout_status_and_ring, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_in_doubt_audit_resolve, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_alloc_failure, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pipelined_without_copies, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
