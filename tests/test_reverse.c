/*  test_reverse.c: reversals (docs/payments.md, common/reversal.h) through
    the client library and through rlctl, against real shards behind a real
    router (tests/routerkit.h: 2 shards, CURVE).

    Covers: the id derivation (the vectors of docs/payments.md); a full
    reversal, same-shard and cross-shard; partial reversals up to the
    original's amount and not beyond; a retry of the same k (exists, never
    twice); a reversal burned by a business failure that keeps its k while
    the next one takes k + 1; callers racing on one original, whose
    reversals never sum above it; bad input (an unknown original, a failed
    original, k out of range, an amount of 0 or above the original, a k that
    skips a free one, a reversal id taken outside the rules, malformed ids),
    each refused with its name and nothing applied; rlctl's reverse command
    with its exit codes and JSON. Every case ends with the conservation
    check.
*/
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>
#include <czmq.h>

#include "reversal.h"
#include "routerkit.h"
#include "testkit.h"

#define S_RACERS        4
#define S_RLCTL_WAIT_MS 30000
#define S_OK_MIN        10
#define S_ATTEMPTS      20    //  of a call whose outcome is open (a loaded machine)
#define S_RACE_MS       60000 //  a racer gives up after this
#define S_RLCTL_TIMEOUT "10000"

static uint64_t s_next_id = 5000; //  transfer ids of this test (tag RK_TAG)

//  A transfer debit -> credit of amount (account numbers), retried with its
//  id until definite (a loaded machine may meet the router's deadline); its
//  result, exists after an open outcome counted as ok.
static uint32_t
s_pay (rk_ctx_t *ctx, rl_id_t *id_p, uint64_t debit, uint64_t credit, uint64_t amount)
{
    rl_transfer_t t = tk_transfer (tk_id (s_next_id++, RK_TAG), tk_id (debit, RK_TAG),
                                   tk_id (credit, RK_TAG), amount, RK_LEDGER);
    rl_result_rec_t r;
    assert_int_equal (
        rl_client_create_transfers_retry (ctx->client, &t, 1, &r, TK_TIMEOUT_MS, S_ATTEMPTS), 0);
    if (r.result == RL_OK || r.result == RL_EXISTS) {
        tk_model_apply (&ctx->model, &t);
        r.result = RL_OK;
    }
    *id_p = t.id;
    return r.result;
}

//  A reversal by the rules of payments.md: an open outcome (no reply,
//  outcome_unknown, a reversal in flight) is retried with the SAME k and
//  amount; exists after an open outcome is the first attempt applied, ok.
static rl_reversal_t
s_reverse (rk_ctx_t *ctx, rl_id_t original, uint32_t k, uint64_t amount)
{
    rl_reversal_request_t request = {.original = original, .k = k, .amount = amount};
    rl_reversal_t r;
    bool was_open = false;
    for (int attempt = 0;; attempt++) {
        assert_true (attempt < S_ATTEMPTS);
        int rc = rl_client_reverse (ctx->client, &request, &r, TK_TIMEOUT_MS);
        bool open = rc != 0 || r.outcome == RL_REVERSAL_OPEN
                    || (r.outcome == RL_REVERSAL_SENT && rl_result_is_retryable (r.result.result));
        if (!open) {
            break;
        }
        if (rc != 0 && !r.sent && rc != RL_CLIENT_TIMEOUT) {
            fail_msg ("reverse: %s", rl_client_strerror (rc));
        }
        if (r.sent) {
            request.k = r.k; //  the same reversal again, never the next k
            request.amount = r.transfer.amount;
            was_open = true;
        }
        zclock_sleep (20);
    }
    if (was_open && r.outcome == RL_REVERSAL_SENT && r.result.result == RL_EXISTS) {
        r.result.result = RL_OK;
    }
    if (r.outcome == RL_REVERSAL_SENT && r.result.result == RL_OK) {
        tk_model_apply (&ctx->model, &r.transfer);
    }
    return r;
}

static void
s_expect (const rl_reversal_t *r, rl_reversal_outcome_t outcome, uint32_t result)
{
    if (r->outcome != outcome || (outcome == RL_REVERSAL_SENT && r->result.result != result)) {
        fail_msg ("reversal k %u: %s/%s, want %s/%s", r->k, rl_reversal_outcome_name (r->outcome),
                  rl_result_name (r->result.result), rl_reversal_outcome_name (outcome),
                  rl_result_name (result));
    }
    assert_true (r->sent == (outcome == RL_REVERSAL_SENT));
}

//  The sum of the reversals of original that took effect, looked up by id.
static uint64_t
s_reversed_total (rk_ctx_t *ctx, rl_id_t original, const rl_transfer_t *o)
{
    static rl_id_t ids[RL_REVERSAL_K_MAX];
    static rl_transfer_t found[RL_REVERSAL_K_MAX];
    for (uint32_t k = 0; k < RL_REVERSAL_K_MAX; k++) {
        assert_int_equal (rl_reversal_id (original, k, &ids[k]), 0);
    }
    assert_int_equal (
        rl_client_lookup_transfers (ctx->client, ids, RL_REVERSAL_K_MAX, found, TK_TIMEOUT_MS), 0);
    uint64_t total = 0;
    for (uint32_t k = 0; k < RL_REVERSAL_K_MAX; k++) {
        if (found[k].timestamp == 0) {
            continue;
        }
        //  Every reversal names its original and its k, and moves money back.
        assert_true (rl_id_eq (found[k].user_data_128, original));
        assert_int_equal (found[k].user_data_64, k);
        assert_true (rl_id_eq (found[k].debit_account_id, o->credit_account_id));
        assert_true (rl_id_eq (found[k].credit_account_id, o->debit_account_id));
        total += found[k].amount;
    }
    return total;
}

//  The id derivation -----------------------------------------------------------

static void
test_reversal_id (void **state)
{
    (void) state;
    //  The vectors of docs/payments.md (the Python client checks the same).
    static const struct {
        rl_id_t original;
        uint32_t k;
        rl_id_t id;
    } vectors[] = {
        {{1, 0}, 0, {0xff1db4beb6dcb673ull, 0x35154f6852fe8041ull}},
        {{1, 0}, 1, {0xc7418b9e143819a5ull, 0xf06b5ff5487d7165ull}},
        {{0x0011223344556677ull, 0x0123456789abcdefull},
         0,
         {0x6f3f8e753c81921dull, 0xbf93d9ef1a4e0687ull}},
        {{0x0011223344556677ull, 0x0123456789abcdefull},
         255,
         {0xbe147a44764df142ull, 0x4127eed24ef36cc9ull}},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        rl_id_t id;
        assert_int_equal (rl_reversal_id (vectors[i].original, vectors[i].k, &id), 0);
        if (!rl_id_eq (id, vectors[i].id)) {
            fail_msg ("vector %zu: %016" PRIx64 "%016" PRIx64, i, id.hi, id.lo);
        }
    }
    rl_id_t id;
    assert_int_equal (rl_reversal_id ((rl_id_t){1, 0}, RL_REVERSAL_K_MAX, &id), -1);
    assert_int_equal (rl_reversal_id ((rl_id_t){1, 0}, UINT32_MAX, &id), -1);
    //  Different k, different originals: different ids.
    rl_id_t a, b;
    assert_int_equal (rl_reversal_id ((rl_id_t){2, 0}, 0, &a), 0);
    assert_int_equal (rl_reversal_id ((rl_id_t){0, 2}, 0, &b), 0);
    assert_false (rl_id_eq (a, b));
    assert_string_equal (rl_reversal_outcome_name (RL_REVERSAL_EXCEEDS_ORIGINAL),
                         "exceeds_original");
    assert_string_equal (rl_reversal_outcome_name (RL_REVERSAL_OUTCOMES), "unknown");
}

//  The client library ------------------------------------------------------------

static void
test_reverse_client (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = 1;
    uint64_t same = rk_partner (ctx->ring, a, true);
    uint64_t other = rk_partner (ctx->ring, a, false);
    assert_true (same != 0 && other != 0 && rk_account_flags (same) == 0);

    //  A full reversal of a same-shard transfer, then nothing left.
    rl_id_t t1;
    assert_int_equal (s_pay (ctx, &t1, a, same, 1000), RL_OK);
    rl_reversal_t r = s_reverse (ctx, t1, RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_SENT, RL_OK);
    assert_int_equal (r.k, 0);
    assert_int_equal (r.transfer.amount, 1000);
    assert_int_equal (r.transfer.debit_account_id.lo, same);
    assert_int_equal (r.transfer.credit_account_id.lo, a);
    assert_true (rl_id_eq (r.transfer.user_data_128, t1));
    assert_int_equal (r.transfer.user_data_64, 0);
    r = s_reverse (ctx, t1, RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_EXCEEDS_ORIGINAL, 0);
    assert_int_equal (r.k, 1);
    assert_int_equal (r.reversed, 1000);
    //  The same k again: exists, applied once; another amount under it: taken.
    r = s_reverse (ctx, t1, 0, 0);
    s_expect (&r, RL_REVERSAL_SENT, RL_EXISTS);
    r = s_reverse (ctx, t1, 0, 5);
    s_expect (&r, RL_REVERSAL_SENT, RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    assert_int_equal (s_reversed_total (ctx, t1, &r.original), 1000);

    //  Partial reversals of a cross-shard transfer, up to its amount.
    rl_id_t t2;
    assert_int_equal (s_pay (ctx, &t2, a, other, 900), RL_OK);
    r = s_reverse (ctx, t2, RL_REVERSAL_K_NEXT, 300);
    s_expect (&r, RL_REVERSAL_SENT, RL_OK);
    r = s_reverse (ctx, t2, 1, 250);
    s_expect (&r, RL_REVERSAL_SENT, RL_OK);
    r = s_reverse (ctx, t2, RL_REVERSAL_K_NEXT, 351); //  1 above what is left
    s_expect (&r, RL_REVERSAL_EXCEEDS_ORIGINAL, 0);
    assert_int_equal (r.reversed, 550);
    r = s_reverse (ctx, t2, 4, 10); //  k 2 and 3 are free
    s_expect (&r, RL_REVERSAL_K_NOT_NEXT, 0);
    r = s_reverse (ctx, t2, RL_REVERSAL_K_NEXT, 0); //  the rest
    s_expect (&r, RL_REVERSAL_SENT, RL_OK);
    assert_int_equal (r.k, 2);
    assert_int_equal (r.transfer.amount, 350);
    r = s_reverse (ctx, t2, 1, 250); //  a retry of k 1 after k 2: exists
    s_expect (&r, RL_REVERSAL_SENT, RL_EXISTS);
    assert_true (tk_wait_cluster_quiet (ctx->client, 20000));
    assert_int_equal (s_reversed_total (ctx, t2, &r.original), 900);

    //  A reversal burned by a business failure keeps its k; the next takes k + 1.
    uint64_t poor = 5; //  debits must not exceed credits
    uint64_t poor_peer = rk_partner (ctx->ring, poor, true);
    rl_id_t t3, spend, fund;
    assert_int_equal (s_pay (ctx, &t3, a, poor, 500), RL_OK);
    //  Its credit is applied when its COMMIT lands on poor's shard, which
    //  may be after the answer: spent only once the cluster is quiet.
    assert_true (tk_wait_cluster_quiet (ctx->client, 20000));
    assert_int_equal (s_pay (ctx, &spend, poor, poor_peer, 500), RL_OK);
    r = s_reverse (ctx, t3, RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_SENT, RL_EXCEEDS_CREDITS);
    assert_int_equal (r.k, 0);
    assert_int_equal (s_pay (ctx, &fund, a, poor, 500), RL_OK);
    assert_true (tk_wait_cluster_quiet (ctx->client, 20000)); //  its credit applied
    r = s_reverse (ctx, t3, RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_SENT, RL_OK);
    assert_int_equal (r.k, 1);
    assert_int_equal (r.reversed, 0); //  the burned one moved nothing
    r = s_reverse (ctx, t3, 0, 500);  //  k 0 stays burned
    s_expect (&r, RL_REVERSAL_SENT, RL_EXCEEDS_CREDITS);

    //  Bad input: nothing applied, each refused by name.
    rl_id_t failed;
    assert_int_equal (s_pay (ctx, &failed, 10, a, 1000000), RL_EXCEEDS_CREDITS);
    r = s_reverse (ctx, failed, RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_ORIGINAL_NOT_FOUND, 0);
    r = s_reverse (ctx, tk_id (987654321, RK_TAG), RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_ORIGINAL_NOT_FOUND, 0);
    rl_id_t t4;
    assert_int_equal (s_pay (ctx, &t4, a, same, 70), RL_OK);
    r = s_reverse (ctx, t4, RL_REVERSAL_K_NEXT, 71);
    s_expect (&r, RL_REVERSAL_EXCEEDS_ORIGINAL, 0);
    r = s_reverse (ctx, t4, RL_REVERSAL_K_NEXT, UINT64_MAX);
    s_expect (&r, RL_REVERSAL_EXCEEDS_ORIGINAL, 0);
    rl_reversal_request_t bad[] = {
        {.original = t4, .k = RL_REVERSAL_K_MAX},
        {.original = t4, .k = RL_REVERSAL_K_NEXT - 1},
        {.original = {0, 0}, .k = 0},
        {.original = {UINT64_MAX, UINT64_MAX}, .k = 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (rl_client_reverse (ctx->client, &bad[i], &r, TK_TIMEOUT_MS),
                          RL_CLIENT_ERR_ARGS);
        assert_false (r.sent);
    }
    //  A reversal id taken outside the rules (k 3 while 0 is free): refused.
    rl_transfer_t rogue = tk_transfer ((rl_id_t){0}, tk_id (same, RK_TAG), tk_id (a, RK_TAG), 1,
                                       RK_LEDGER);
    assert_int_equal (rl_reversal_id (t4, 3, &rogue.id), 0);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_transfers (ctx->client, &rogue, 1, &result, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (result.result, RL_OK);
    tk_model_apply (&ctx->model, &rogue);
    r = s_reverse (ctx, t4, RL_REVERSAL_K_NEXT, 0);
    s_expect (&r, RL_REVERSAL_DISORDER, 0);
    assert_int_equal (r.k, 3);

    assert_true (tk_wait_cluster_quiet (ctx->client, 20000));
    tk_check_conservation (ctx->client, &ctx->model, S_OK_MIN);
    rk_routers_stop (ctx);
}

//  Racing callers ----------------------------------------------------------------

typedef struct {
    const char *endpoint;
    rl_id_t original;
    uint64_t amount; //  each racer its own, so that two on one k collide as taken
    uint32_t ok;     //  reversals this racer applied
    uint32_t refused_exceeds;
} s_racer_t;

static void *
s_race (void *arg)
{
    s_racer_t *racer = arg;
    rl_client_t *client = rl_client_new (racer->endpoint);
    assert (client);
    int64_t deadline = zclock_mono () + S_RACE_MS;
    rl_reversal_request_t request = {
        .original = racer->original, .k = RL_REVERSAL_K_NEXT, .amount = racer->amount};
    bool was_open = false;
    while (zclock_mono () < deadline) {
        rl_reversal_t r;
        int rc = rl_client_reverse (client, &request, &r, TK_TIMEOUT_MS);
        bool open = rc != 0 || r.outcome == RL_REVERSAL_OPEN
                    || (r.outcome == RL_REVERSAL_SENT && rl_result_is_retryable (r.result.result));
        if (open) {
            if (r.sent) {
                request.k = r.k; //  ours may be applied: the same k again, never the next
                was_open = true;
            }
            zclock_sleep (5);
            continue;
        }
        if (r.outcome == RL_REVERSAL_EXCEEDS_ORIGINAL) {
            racer->refused_exceeds++;
            break;
        }
        assert (r.outcome == RL_REVERSAL_SENT);
        uint32_t result = r.result.result;
        if (result == RL_OK || (was_open && result == RL_EXISTS)) {
            racer->ok++;
        } //  else another racer's k (exists_with_different_amount): the next one
        request.k = RL_REVERSAL_K_NEXT;
        was_open = false;
    }
    rl_client_destroy (&client);
    return NULL;
}

static void
test_reverse_race (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = 2;
    uint64_t other = rk_partner (ctx->ring, a, false);
    for (int round = 0; round < 2; round++) {
        //  Same-shard, then cross-shard: 4 racers reverse 1000 by 300..303.
        uint64_t credit = round == 0 ? rk_partner (ctx->ring, a, true) : other;
        rl_id_t original;
        assert_int_equal (s_pay (ctx, &original, a, credit, 1000), RL_OK);
        s_racer_t racers[S_RACERS];
        pthread_t threads[S_RACERS];
        for (size_t i = 0; i < S_RACERS; i++) {
            racers[i] = (s_racer_t){
                .endpoint = ctx->routers[0].endpoint, .original = original, .amount = 300 + i};
            assert_int_equal (pthread_create (&threads[i], NULL, s_race, &racers[i]), 0);
        }
        uint32_t ok = 0;
        for (size_t i = 0; i < S_RACERS; i++) {
            pthread_join (threads[i], NULL);
            ok += racers[i].ok;
        }
        assert_true (tk_wait_cluster_quiet (ctx->client, 20000));
        //  Three of 300..303 fit in 1000, a fourth never does.
        assert_int_equal (ok, 3);
        rl_transfer_t o;
        assert_int_equal (rl_client_lookup_transfers (ctx->client, &original, 1, &o, TK_TIMEOUT_MS),
                          0);
        uint64_t total = s_reversed_total (ctx, original, &o);
        assert_true (total <= 1000 && total >= 900);
        //  Into the model: every reversal found.
        for (uint32_t k = 0; k < 8; k++) {
            rl_transfer_t found;
            rl_id_t id;
            assert_int_equal (rl_reversal_id (original, k, &id), 0);
            assert_int_equal (
                rl_client_lookup_transfers (ctx->client, &id, 1, &found, TK_TIMEOUT_MS), 0);
            if (found.timestamp != 0) {
                tk_model_apply (&ctx->model, &found);
            }
        }
    }
    tk_check_conservation (ctx->client, &ctx->model, 6);
    rk_routers_stop (ctx);
}

//  rlctl -------------------------------------------------------------------------

//  Runs rlctl reverse (--json) against router 0; its exit code, *json_p the
//  parsed output when it printed JSON (else NULL).
static int
s_rlctl (rk_ctx_t *ctx, const char *log, cJSON **json_p, ...)
{
    char rlctl[512], cert[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/tester.key_secret", tk_keys_dir (ctx->h));
    snprintf (key, sizeof key, "%s", tk_key (ctx->h, "router", ctx->routers[0].name));
    char *argv[32] = {
        rlctl, "--connect", ctx->routers[0].endpoint, "--cert",       cert, "--server-key",
        key,   "--json",    "--timeout-ms",           S_RLCTL_TIMEOUT};
    size_t argc = 10;
    va_list ap;
    va_start (ap, json_p);
    const char *arg;
    while ((arg = va_arg (ap, const char *)) && argc < 31) {
        argv[argc++] = (char *) arg;
    }
    va_end (ap);
    argv[argc] = NULL;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (ctx->h), log);
    pid_t pid = harness_spawn (ctx->h, log, argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (ctx->h, pid, S_RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    const char *brace = strchr (text, '{');
    *json_p = brace ? cJSON_Parse (brace) : NULL;
    free (text);
    return WEXITSTATUS (wstatus);
}

static void
s_id_text (rl_id_t id, char *out, size_t size)
{
    snprintf (out, size, "0x%016" PRIx64 "%016" PRIx64, id.hi, id.lo);
}

static void
test_reverse_rlctl (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = 3;
    uint64_t other = rk_partner (ctx->ring, a, false);
    rl_id_t t;
    assert_int_equal (s_pay (ctx, &t, a, other, 800), RL_OK);
    char id[64], expect[64];
    s_id_text (t, id, sizeof id);
    cJSON *json = NULL;

    //  Partial, then the rest, then nothing left.
    assert_int_equal (s_rlctl (ctx, "partial", &json, "reverse", id, "--amount", "200", NULL), 0);
    assert_non_null (json);
    assert_string_equal (cJSON_GetObjectItem (json, "outcome")->valuestring, "sent");
    assert_string_equal (cJSON_GetObjectItem (json, "result")->valuestring, "ok");
    rl_id_t rid;
    assert_int_equal (rl_reversal_id (t, 0, &rid), 0);
    s_id_text (rid, expect, sizeof expect);
    assert_string_equal (cJSON_GetObjectItem (json, "id")->valuestring, expect);
    cJSON_Delete (json);
    rl_transfer_t first = tk_transfer (rid, tk_id (other, RK_TAG), tk_id (a, RK_TAG), 200,
                                       RK_LEDGER);
    tk_model_apply (&ctx->model, &first);
    assert_int_equal (s_rlctl (ctx, "rest", &json, "reverse", id, NULL), 0);
    assert_non_null (json);
    assert_true (cJSON_GetObjectItem (json, "amount")->valuedouble == 600);
    assert_true (cJSON_GetObjectItem (json, "k")->valuedouble == 1);
    cJSON_Delete (json);
    assert_int_equal (rl_reversal_id (t, 1, &rid), 0);
    rl_transfer_t second = tk_transfer (rid, tk_id (other, RK_TAG), tk_id (a, RK_TAG), 600,
                                        RK_LEDGER);
    tk_model_apply (&ctx->model, &second);
    assert_int_equal (s_rlctl (ctx, "again", &json, "reverse", id, NULL), 1);
    assert_non_null (json);
    assert_string_equal (cJSON_GetObjectItem (json, "outcome")->valuestring, "exceeds_original");
    cJSON_Delete (json);
    //  A retry of k 1 with its amount: exists, exit 0.
    assert_int_equal (
        s_rlctl (ctx, "retry", &json, "reverse", id, "--k", "1", "--amount", "600", NULL), 0);
    assert_string_equal (cJSON_GetObjectItem (json, "result")->valuestring, "exists");
    cJSON_Delete (json);
    //  Refusals: exit 1 with the outcome's name.
    assert_int_equal (s_rlctl (ctx, "unknown", &json, "reverse", "0x1234567", NULL), 1);
    assert_string_equal (cJSON_GetObjectItem (json, "outcome")->valuestring, "original_not_found");
    cJSON_Delete (json);
    assert_int_equal (s_rlctl (ctx, "not_next", &json, "reverse", id, "--k", "7", NULL), 1);
    assert_string_equal (cJSON_GetObjectItem (json, "outcome")->valuestring, "k_not_next");
    cJSON_Delete (json);
    rl_id_t t2;
    assert_int_equal (s_pay (ctx, &t2, a, other, 50), RL_OK);
    char id2[64];
    s_id_text (t2, id2, sizeof id2);
    assert_int_equal (s_rlctl (ctx, "above", &json, "reverse", id2, "--amount", "51", NULL), 1);
    assert_string_equal (cJSON_GetObjectItem (json, "outcome")->valuestring, "exceeds_original");
    cJSON_Delete (json);
    //  Usage errors: exit 2, nothing sent.
    static const char *usage[][4] = {
        {"reverse", "nonsense", NULL, NULL},
        {"reverse", "0", NULL, NULL},
        {"reverse", "0xffffffffffffffffffffffffffffffff", NULL, NULL},
        {"reverse", "1", "--k", "256"},
        {"reverse", "1", "--k", "-1"},
        {"reverse", "1", "--amount", "0"},
        {"reverse", "1", "--amount", "x"},
        {"reverse", "1", "--user-data-64", "3"},
        {"reverse", "1", "2", NULL},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        char log[32];
        snprintf (log, sizeof log, "usage%zu", i);
        assert_int_equal (
            s_rlctl (ctx, log, &json, usage[i][0], usage[i][1], usage[i][2], usage[i][3], NULL), 2);
        cJSON_Delete (json);
    }
    assert_true (tk_wait_cluster_quiet (ctx->client, 20000));
    tk_check_conservation (ctx->client, &ctx->model, 3);
    rk_routers_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_reversal_id),
        cmocka_unit_test_setup_teardown (test_reverse_client, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_reverse_race, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_reverse_rlctl, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
