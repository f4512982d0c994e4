/*  test_router_arcs.c: a retry across a ring change is never run again on
    the new owner.

    A shard serves an arc it gained in a ring change only after it has
    received that arc's data (docs/rebalance.md, "Ring changes and data").
    The test applies a transfer T (both accounts in arcs that will move),
    loads a ring that moves those arcs from s1/s2 to s3, and retries T with
    the same id through the router and directly on s3: the answer must be
    `frozen` (retryable, never burns the id), never debit_account_not_found,
    never a second application. Through the router a `busy` may come first
    (a connection to s3 not up yet: nothing was sent); the test then
    retries with the same id, as a client does, until s3's answer. So must be a create_accounts of
   the moved debit account on s3 (which would let a later retry apply T again), a read of it (never
   "not found"), and a cross-shard transfer whose credit account moved (its PREPARE is refused:
   aborted, not burned), while lookup_transfers still finds T. The set survives a restart of s3, and
    an arc gained, lost and gained again stays not received. It ends with
    the conservation check: the whole cluster before the change, the
    accounts that did not move after it.

    test_frozen_retried: the router retries `frozen` (docs/router.md,
    "frozen"). An arc of s1 is frozen by the migration operations
    (migrate_begin, then migrate_freeze, as the rebalancing tool does).
    A transfer whose debit account lies there, sent through a router
    whose deadline outlasts the freeze, comes back ok once the freeze has
    ended by its own time limit (the router's exit line counts the frozen
    answers it retried); through a router whose deadline ends first, a
    batch gets frozen for that record (after the deadline, not at once)
    and ok for its record on s2, and a read of the account fails frozen. After
    migrate_unfreeze the same id goes through: frozen burned nothing. A
    lookup of 8 records in a frozen arc is sent at least 9 times during a
    1.5 s freeze (its pause doubles per answer, from 10 ms; it doubled per
    record, so its first pause was 200 ms). It ends with the conservation
    check.
*/
#include <inttypes.h>
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

#include "check.h"
#include "codec.h"
#include "ring.h"
#include "routerkit.h"
#include "testkit.h"

#define S_TRANSFER_T       9001  //  the transfer retried across the ring change
#define S_BUSY_RETRY_MS    50    //  pause before retrying a request the router answered busy
#define S_MIGRATION        31    //  the migration that freezes an arc of s1
#define S_FREEZE_MS        1000  //  a freeze that ends by itself within router 1's deadline
#define S_LONG_FREEZE_MS   30000 //  a freeze that outlasts router 0's deadline
#define S_LONG_DEADLINE_MS 4000  //  router 1's deadline: outlasts S_FREEZE_MS
#define S_PIECE_FREEZE_MS  1500  //  the freeze a piece of 8 records is resent through

//  Loads `ring` into every shard of the cluster (all must take it).
static void
s_load_ring_all (rk_ctx_t *ctx, const ring_t *ring)
{
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    const char *endpoints[RK_SHARDS_MAX];
    int rcs[RK_SHARDS_MAX];
    for (size_t i = 0; i < ctx->shard_count; i++) {
        endpoints[i] = ctx->shards[i].endpoint;
    }
    assert_int_equal (
        rl_client_load_ring_all (endpoints, ctx->shard_count, blob, size, TK_TIMEOUT_MS, rcs), 0);
    free (blob);
}

//  One create_transfers of `t` through `endpoint`; its result.
static uint32_t
s_transfer_once (const char *endpoint, const rl_transfer_t *t)
{
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    rl_result_rec_t result = {0};
    assert_int_equal (rl_client_create_transfers (client, t, 1, &result, TK_TIMEOUT_MS), 0);
    rl_client_destroy (&client);
    return result.result;
}

//  The retry of T must be frozen: not applied, the id not burned.
static void
s_expect_frozen (const char *where, uint32_t result)
{
    if (result != RL_FROZEN) {
        fail_msg ("retry of T %s: %s, expected frozen (retryable, not burning the id)", where,
                  rl_result_name (result));
    }
    assert_true (rl_result_is_retryable (result));
    assert_int_equal (rl_result_burns (result), RL_BURNS_NO);
}

//  The retry of T through the router. The router may answer busy first: a
//  record it could not send (the connection to its shard is down, say
//  because the shard restarted moments ago and the router's reconnect
//  backoff has not come round) was never applied (router.c, invariant 3).
//  busy burns nothing, so the client retries with the same id, as any
//  client would, until the shard's own answer comes through.
static uint32_t
s_transfer_via_router (const char *endpoint, const rl_transfer_t *t)
{
    int64_t deadline_ms = zclock_mono () + TK_TIMEOUT_MS;
    uint32_t result = s_transfer_once (endpoint, t);
    while (result == RL_BUSY && zclock_mono () < deadline_ms) {
        assert_true (rl_result_is_retryable (result));
        assert_int_equal (rl_result_burns (result), RL_BURNS_NO);
        zclock_sleep (S_BUSY_RETRY_MS);
        result = s_transfer_once (endpoint, t);
    }
    return result;
}

static rl_client_t *
s_router_client (void *arg, rl_id_t account_id)
{
    (void) account_id;
    return arg;
}

static void
test_retry_across_ring_change (void **state)
{
    rk_ctx_t *ctx = *state;
    //  s1 and s2 serve ring epoch 1; s3 runs, owning nothing. Short
    //  deadlines: the router retries frozen until its deadline.
    rk_cluster_start (ctx, 3, 2, RK_DEADLINE_MS, 0);
    ring_t *ring1 = ring_dup (ctx->ring);
    ring_t *ring2 = ring_dup (ctx->ring);
    assert_non_null (ring1);
    assert_non_null (ring2);
    assert_int_equal (ring_add_shard (ring2, "s3", ctx->shards[2].endpoint, 1.0), RING_OK);
    ring_set_epoch (ring2, 2);
    bool moved[RK_ACCOUNTS + 1] = {false};
    uint64_t a = 0, b = 0; //  T: from operator a to b, both moving to s3
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        moved[n] = rk_owner (ring2, tk_id (n, RK_TAG)) == 2;
        if (moved[n] && !a && rk_account_flags (n) == 0) {
            a = n;
        } else if (moved[n] && !b) {
            b = n;
        }
    }
    assert_true (a && b);
    int a_owner_before = rk_owner (ring1, tk_id (a, RK_TAG));

    //  Before the change: T, and a batch among accounts that do not move.
    rk_create_accounts (ctx);
    rl_transfer_t t = tk_transfer (tk_id (S_TRANSFER_T, RK_TAG), tk_id (a, RK_TAG),
                                   tk_id (b, RK_TAG), 25, RK_LEDGER);
    assert_int_equal (s_transfer_once (ctx->routers[0].endpoint, &t), RL_OK);
    tk_model_apply (&ctx->model, &t);
    rl_transfer_t batch[RK_ACCOUNTS];
    rl_result_rec_t results[RK_ACCOUNTS];
    size_t count = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        uint64_t c = moved[n] ? 0 : rk_partner (ring2, n, true);
        if (c && rk_account_flags (n) == 0) {
            batch[count++] = tk_transfer (tk_id (7000 + n, RK_TAG), tk_id (n, RK_TAG),
                                          tk_id (c, RK_TAG), n * 3, RK_LEDGER);
        }
    }
    assert_true (count > 0);
    assert_int_equal (
        rl_client_create_transfers (ctx->client, batch, count, results, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].result, RL_OK);
        tk_model_apply (&ctx->model, &batch[i]);
    }
    tk_check_conservation (ctx->client, &ctx->model, count + 1);
    uint64_t transfers_before = rk_status_of (ctx->shards[0].endpoint).transfers
                                + rk_status_of (ctx->shards[1].endpoint).transfers;

    //  The change: s3 gains the arcs of a and b, without their data.
    s_load_ring_all (ctx, ring2);
    rl_status_rec_t s3 = rk_status_of (ctx->shards[2].endpoint);
    uint64_t unreceived = s3.arcs_unreceived;
    assert_true (unreceived > 0);
    assert_int_equal (rk_status_of (ctx->shards[0].endpoint).arcs_unreceived, 0);
    assert_int_equal (rk_status_of (ctx->shards[1].endpoint).arcs_unreceived, 0);

    //  The retry, through the router (wrong_shard at the old owner, a ring
    //  refresh, then s3) and directly on s3.
    s_expect_frozen ("through the router", s_transfer_via_router (ctx->routers[0].endpoint, &t));
    s_expect_frozen ("on s3", s_transfer_once (ctx->shards[2].endpoint, &t));
    //  Creating the debit account again on s3 is refused too (it would let
    //  a retry apply T a second time).
    rl_client_t *direct = rl_client_new (ctx->shards[2].endpoint);
    assert_non_null (direct);
    rl_result_rec_t result = {0};
    assert_int_equal (
        rl_client_create_accounts (direct, &ctx->accounts[a - 1], 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (result.result, RL_FROZEN);
    s_expect_frozen ("on s3, after a create_accounts",
                     s_transfer_once (ctx->shards[2].endpoint, &t));
    //  A read of a moved account: frozen, never "not found".
    rl_id_t id_a = tk_id (a, RK_TAG);
    rl_account_t account;
    assert_int_equal (rl_client_lookup_accounts (direct, &id_a, 1, &account, TK_TIMEOUT_MS),
                      RL_STATUS_FROZEN);
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &id_a, 1, &account, TK_TIMEOUT_MS),
                      RL_STATUS_FROZEN);
    rl_client_destroy (&direct);
    //  A cross-shard transfer whose credit account moved: its PREPARE is
    //  refused frozen, the coordinator aborts, the id stays free.
    uint64_t payer = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS && !payer; n++) {
        payer = !moved[n] && rk_account_flags (n) == 0 ? n : 0;
    }
    assert_true (payer);
    rl_transfer_t cross = tk_transfer (tk_id (9002, RK_TAG), tk_id (payer, RK_TAG),
                                       tk_id (b, RK_TAG), 5, RK_LEDGER);
    uint32_t cross_result = s_transfer_once (ctx->routers[0].endpoint, &cross);
    if (cross_result != RL_ABORTED) {
        fail_msg ("a credit to a moved account: %s, expected aborted (not burned)",
                  rl_result_name (cross_result));
    }
    //  Idempotent lookups of the applied transfer still work.
    rl_id_t id_t = t.id;
    rl_transfer_t found;
    assert_int_equal (rl_client_lookup_transfers (ctx->client, &id_t, 1, &found, TK_TIMEOUT_MS), 0);
    assert_true (rl_id_eq (found.debit_account_id, t.debit_account_id));
    assert_int_equal (found.amount, t.amount);
    //  Nothing was applied anywhere by the retries.
    s3 = rk_status_of (ctx->shards[2].endpoint);
    assert_int_equal (s3.accounts, 0);
    assert_int_equal (s3.transfers, 0);
    assert_int_equal (rk_status_of (ctx->shards[0].endpoint).transfers
                          + rk_status_of (ctx->shards[1].endpoint).transfers,
                      transfers_before);

    //  The set is durable: s3 restarted keeps it.
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[2], SIGTERM), 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[2]) > 0);
    s3 = rk_status_of (ctx->shards[2].endpoint);
    assert_int_equal (s3.epoch, 2);
    assert_int_equal (s3.arcs_unreceived, unreceived);
    s_expect_frozen ("on s3 after its restart", s_transfer_once (ctx->shards[2].endpoint, &t));

    //  Epoch 3 is epoch 1 again: the old owner regains the arcs it lost by
    //  a ring alone. It kept them (arcs.c, KEPT): no shard served them since
    //  (s3 never received them), so its copy is the only current one and it
    //  serves them at once; the retry of T finds T there (exists, nothing
    //  applied). Epoch 4 is epoch 2 again: s3 gains them again, still not
    //  received.
    ring_t *ring3 = ring_dup (ring1);
    assert_non_null (ring3);
    ring_set_epoch (ring3, 3);
    s_load_ring_all (ctx, ring3);
    assert_int_equal (rk_status_of (ctx->shards[2].endpoint).arcs_unreceived, 0);
    assert_int_equal (rk_status_of (ctx->shards[a_owner_before].endpoint).arcs_unreceived, 0);
    uint32_t again = s_transfer_once (ctx->shards[a_owner_before].endpoint, &t);
    if (again != RL_EXISTS) {
        fail_msg ("retry of T at the old owner after epoch 3: %s, expected exists",
                  rl_result_name (again));
    }
    ring_set_epoch (ring2, 4);
    s_load_ring_all (ctx, ring2);
    assert_int_equal (rk_status_of (ctx->shards[2].endpoint).arcs_unreceived, unreceived);
    s_expect_frozen ("on s3 after epoch 4", s_transfer_once (ctx->shards[2].endpoint, &t));
    s_expect_frozen ("through the router after epoch 4",
                     s_transfer_via_router (ctx->routers[0].endpoint, &t));
    //  However many tries that took, T was applied once, before the change.
    s3 = rk_status_of (ctx->shards[2].endpoint);
    assert_int_equal (s3.accounts, 0);
    assert_int_equal (s3.transfers, 0);
    assert_int_equal (rk_status_of (ctx->shards[0].endpoint).transfers
                          + rk_status_of (ctx->shards[1].endpoint).transfers,
                      transfers_before);

    //  Conservation of the accounts that never moved (they hold every
    //  transfer but T, which stays between two moved accounts).
    rl_check_t *check = rl_check_new (RK_ACCOUNTS);
    assert_non_null (check);
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        if (!moved[n]) {
            int64_t index = rl_check_add_account (check, tk_id (n, RK_TAG), RK_LEDGER);
            assert_true (index >= 0);
            rl_check_expect (check, (size_t) index, ctx->model.debits[n], ctx->model.credits[n]);
        }
    }
    rl_check_expect_applied (check, count);
    const char *endpoints[RK_SHARDS_MAX];
    for (size_t i = 0; i < ctx->shard_count; i++) {
        endpoints[i] = ctx->shards[i].endpoint;
    }
    rl_check_options_t options = {
        .shard_endpoints = endpoints,
        .shard_count = ctx->shard_count,
        .client_for = s_router_client,
        .client_arg = ctx->client,
        .timeout_ms = TK_TIMEOUT_MS,
        .quiet_timeout_ms = TK_QUIET_TIMEOUT_MS,
        .ok_min = count,
        .history = true,
        .report = stderr,
        .prefix = "conservation: ",
    };
    bool passed = rl_check_run (check, &options);
    rl_check_destroy (&check);
    assert_true (passed);
    ring_destroy (&ring1);
    ring_destroy (&ring2);
    ring_destroy (&ring3);
    rk_routers_stop (ctx);
}

//  The router retries frozen --------------------------------------------------

//  True when the id's point lies in the arc (start, end] (wrapping past 0).
static bool
s_in_arc (uint64_t start, uint64_t end, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    uint64_t point = ring_point_of_id (bytes);
    return start < end ? point > start && point <= end : point > start || point <= end;
}

//  One migrate operation on a shard; its answer in *out (rc: the status).
static int
s_migrate_op (const char *endpoint, uint16_t op, const rl_migrate_rec_t *req, rl_migrate_rec_t *out)
{
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    uint8_t body[RL_MIGRATE_SIZE];
    codec_encode_migrate (req, body);
    rl_header_t h;
    uint8_t *reply = NULL;
    size_t size = 0;
    int rc = rl_client_call (client, op, body, sizeof (body), 1, TK_TIMEOUT_MS, &h, &reply, &size);
    if (rc == 0) {
        assert_int_equal (size, RL_MIGRATE_SIZE);
        codec_decode_migrate (reply, out);
    }
    free (reply);
    rl_client_destroy (&client);
    return rc;
}

//  The number of frozen answers a stopped router's exit line counts (-1: no line).
static long
s_router_frozen_count (rk_ctx_t *ctx, const char *name)
{
    char path[1024];
    snprintf (path, sizeof (path), "%s/%s.log", harness_dir (ctx->h), name);
    FILE *log = fopen (path, "r");
    assert_non_null (log);
    char line[2048];
    long frozen = -1;
    while (fgets (line, sizeof (line), log)) {
        const char *at = strstr (line, " frozen, ");
        if (strstr (line, "stopping:") && at) {
            while (at > line && at[-1] >= '0' && at[-1] <= '9') {
                at--;
            }
            frozen = strtol (at, NULL, 10);
        }
    }
    fclose (log);
    return frozen;
}

//  Finds the arc of s1 that holds an account that may go negative (`in`),
//  an account of s1 outside it (`out`) and one of s2 (`other`).
static void
s_pick_arc (rk_ctx_t *ctx, uint64_t *in, uint64_t *out, uint64_t *other, uint64_t *start,
            uint64_t *end)
{
    size_t points = ring_point_count (ctx->ring);
    *in = *out = *other = 0;
    for (uint64_t n = 1; n <= RK_ACCOUNTS && !*in; n++) {
        if (rk_owner (ctx->ring, tk_id (n, RK_TAG)) != 0 || rk_account_flags (n) != 0) {
            continue;
        }
        for (size_t p = 0; p < points && !*in; p++) {
            uint64_t e = ring_point_position (ctx->ring, p);
            uint64_t b = ring_point_position (ctx->ring, (p + points - 1) % points);
            if (ring_point_owner (ctx->ring, p) == 0 && s_in_arc (b, e, tk_id (n, RK_TAG))) {
                *in = n;
                *start = b;
                *end = e;
            }
        }
    }
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        int owner = rk_owner (ctx->ring, tk_id (n, RK_TAG));
        if (owner == 0 && !*out && !s_in_arc (*start, *end, tk_id (n, RK_TAG))) {
            *out = n;
        } else if (owner == 1 && !*other && rk_account_flags (n) == 0) {
            *other = n;
        }
    }
    assert_true (*in && *out && *other);
}

static void
test_frozen_retried (void **state)
{
    rk_ctx_t *ctx = *state;
    //  s1 and s2, router 0 with a short deadline (RK_DEADLINE_MS), router 1
    //  with one that outlasts the freeze that ends by itself.
    rk_cluster_start (ctx, 2, 2, RK_DEADLINE_MS, 0);
    rk_router_t *r1 = &ctx->routers[1];
    rk_router_init (r1, "r2");
    snprintf (r1->ring_file, sizeof (r1->ring_file), "%s", ctx->ring_file);
    r1->deadline_ms = S_LONG_DEADLINE_MS;
    r1->shard_deadline_ms = RK_SHARD_DEADLINE_MS;
    assert_true (rk_router_start (ctx->h, r1) > 0);
    rk_create_accounts (ctx);
    uint64_t in = 0, out = 0, other = 0, start = 0, end = 0;
    s_pick_arc (ctx, &in, &out, &other, &start, &end);

    //  The freeze, as the rebalancing tool makes it: begin on both, freeze the source.
    rl_migrate_rec_t req = {
        .migration_id = S_MIGRATION, .arc_start = start, .arc_end = end, .role = RL_MIGRATE_SOURCE};
    snprintf (req.source, sizeof (req.source), "s1");
    snprintf (req.target, sizeof (req.target), "s2");
    rl_migrate_rec_t got;
    assert_int_equal (s_migrate_op (ctx->shards[0].endpoint, RL_OP_MIGRATE_BEGIN, &req, &got), 0);
    assert_int_equal (got.state, RL_MIGRATE_COPYING);
    req.role = RL_MIGRATE_TARGET;
    assert_int_equal (s_migrate_op (ctx->shards[1].endpoint, RL_OP_MIGRATE_BEGIN, &req, &got), 0);
    req.role = RL_MIGRATE_SOURCE;
    req.param = S_FREEZE_MS;
    assert_int_equal (s_migrate_op (ctx->shards[0].endpoint, RL_OP_MIGRATE_FREEZE, &req, &got), 0);
    assert_int_equal (got.state, RL_MIGRATE_FROZEN);
    int64_t frozen_at = zclock_mono ();

    //  s1 itself answers frozen for the arc: nothing applied, nothing burned.
    rl_transfer_t t1 = tk_transfer (tk_id (9101, RK_TAG), tk_id (in, RK_TAG), tk_id (out, RK_TAG),
                                    7, RK_LEDGER);
    assert_int_equal (s_transfer_once (ctx->shards[0].endpoint, &t1), RL_FROZEN);
    //  Through router 1 the same transfer waits out the freeze: ok, once.
    uint32_t result = s_transfer_once (r1->endpoint, &t1);
    int64_t after_ms = zclock_mono () - frozen_at;
    if (result != RL_OK || after_ms < S_FREEZE_MS / 2) {
        fail_msg ("through router r2: %s %" PRId64 " ms after a %d ms freeze, expected ok after it",
                  rl_result_name (result), after_ms, S_FREEZE_MS);
    }
    tk_model_apply (&ctx->model, &t1);
    rk_router_stop (ctx->h, r1);
    long retried = s_router_frozen_count (ctx, "r2");
    if (retried < 1) {
        fail_msg ("router r2 retried %ld frozen answers, expected at least one", retried);
    }

    //  A freeze that outlasts router 0's deadline: the record in the arc is
    //  answered frozen, after the deadline; the others of the batch ok.
    req.param = S_LONG_FREEZE_MS;
    assert_int_equal (s_migrate_op (ctx->shards[0].endpoint, RL_OP_MIGRATE_FREEZE, &req, &got), 0);
    assert_int_equal (got.state, RL_MIGRATE_FROZEN);
    rl_transfer_t batch[2] = {
        tk_transfer (tk_id (9102, RK_TAG), tk_id (in, RK_TAG), tk_id (other, RK_TAG), 5, RK_LEDGER),
        tk_transfer (tk_id (9103, RK_TAG), tk_id (other, RK_TAG), tk_id (out, RK_TAG), 4,
                     RK_LEDGER),
    };
    rl_result_rec_t results[2];
    int64_t sent_at = zclock_mono ();
    assert_int_equal (rl_client_create_transfers (ctx->client, batch, 2, results, TK_TIMEOUT_MS),
                      0);
    int64_t waited_ms = zclock_mono () - sent_at;
    if (results[0].result != RL_FROZEN || waited_ms < RK_DEADLINE_MS / 2) {
        fail_msg ("the record in the arc: %s after %" PRId64 " ms, expected frozen at the "
                  "deadline (%d ms)",
                  rl_result_name (results[0].result), waited_ms, RK_DEADLINE_MS);
    }
    if (results[1].result != RL_OK) {
        fail_msg ("the record of s2 (credit outside the arc): %s, expected ok",
                  rl_result_name (results[1].result));
    }
    tk_model_apply (&ctx->model, &batch[1]);
    //  A read of the account in the arc fails frozen, after the deadline too.
    rl_id_t id_in = tk_id (in, RK_TAG);
    rl_account_t account;
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &id_in, 1, &account, TK_TIMEOUT_MS),
                      RL_STATUS_FROZEN);

    //  The freeze ends (the tool's unfreeze): the same id goes through once.
    assert_int_equal (s_migrate_op (ctx->shards[0].endpoint, RL_OP_MIGRATE_UNFREEZE, &req, &got),
                      0);
    assert_int_equal (got.state, RL_MIGRATE_COPYING);
    assert_int_equal (s_transfer_once (ctx->routers[0].endpoint, &batch[0]), RL_OK);
    tk_model_apply (&ctx->model, &batch[0]);
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &id_in, 1, &account, TK_TIMEOUT_MS),
                      0);

    //  The pause doubles per answer, not per record: a lookup of the
    //  account 8 times (a piece of 8 records) is sent as often during a
    //  freeze as one record is (pauses of 10, 20, 40 ... 200 ms: 11 or 12
    //  sends in 1.5 s, fewer on a loaded machine; per record, its first
    //  pause was already the longest: at most 8).
    rk_router_t *r3 = &ctx->routers[1];
    rk_router_init (r3, "r3");
    snprintf (r3->ring_file, sizeof (r3->ring_file), "%s", ctx->ring_file);
    r3->deadline_ms = S_LONG_DEADLINE_MS;
    r3->shard_deadline_ms = RK_SHARD_DEADLINE_MS;
    assert_true (rk_router_start (ctx->h, r3) > 0);
    req.param = S_PIECE_FREEZE_MS;
    assert_int_equal (s_migrate_op (ctx->shards[0].endpoint, RL_OP_MIGRATE_FREEZE, &req, &got), 0);
    assert_int_equal (got.state, RL_MIGRATE_FROZEN);
    rl_id_t eight[8] = {id_in, id_in, id_in, id_in, id_in, id_in, id_in, id_in};
    rl_account_t found[8];
    rl_client_t *reader = rl_client_new (r3->endpoint);
    assert_int_equal (rl_client_lookup_accounts (reader, eight, 8, found, TK_TIMEOUT_MS), 0);
    rl_client_destroy (&reader);
    rk_router_stop (ctx->h, r3);
    long sends = s_router_frozen_count (ctx, "r3") / 8;
    if (sends < 9) {
        fail_msg ("router r3 sent a piece of 8 records %ld times during a %d ms freeze, expected "
                  "at least 9",
                  sends, S_PIECE_FREEZE_MS);
    }
    tk_check_conservation (ctx->client, &ctx->model, 3);
    rk_routers_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_retry_across_ring_change, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_frozen_retried, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
