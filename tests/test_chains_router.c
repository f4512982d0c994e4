/*  test_chains_router.c: linked chains through a real router in front of
    two real shards (docs/payments.md, "Linked chains").

    - A same-shard chain (a transfer, another, a pending transfer and a
      transfer closing it) applies whole; sent again, every member is
      exists; mixed into a batch with records of the other shard, the
      router keeps it whole and the results come back in order.
    - A chain whose debit accounts are on two shards is applied (a debit
      leg at the other shard); a chain whose member credits another
      shard's account is applied (one two-phase group); a chain left open
      at the end of the request is answered linked_event_chain_open by the
      router.
    - test_chains_across, on three shards: chains paying accounts of two
      and three shards commit whole (exists for each when sent again,
      alone or whole); a member refused by its credit shard fails the
      chain with its own code, nothing applied, nothing burned (sent
      again, decided again; corrected, the same ids apply); a member
      failing at the debit shard (its local credit, or its debit) fails it
      before anything is sent; two chains and a record of another shard
      in one request; pending transfers (one across), then a capture of
      part of one and a void of the other, with fees across, each in one
      chain (exists when sent again, a second capture already posted);
      the conservation check.
    - test_chains_debits, on three shards: chains whose members debit
      accounts of two and three shards (a member's debit and credit on
      another shard, its debit there and its credit on the chain's shard)
      commit whole, the timestamps in the reply those of each member's
      debit shard; sent again whole, exists for each, and a member sent
      alone to its debit shard exists (and a debit leg's PREPARE of it
      from another shard is told exists for the exact record,
      exists_with_different_amount for another amount); refused at a
      debit shard (exceeds_credits, debit account not found): that
      member's code, the others linked_event_failed, nothing applied,
      nothing burned (decided again; corrected, the same ids apply); a
      member retried alone after a failed chain applies alone; a member
      debiting one other shard and crediting another commits (its debit
      leg, then its credit leg on the third shard), and so does a pending
      one, posted in part later; pending transfers as debit legs (one
      crediting the chain's shard, one both legs on its debit shard)
      commit whole, then one is captured in part and the other voided at
      their debit shard; a chain placed by its post (its first member
      debits another shard than the post) commits; one whose posts and
      voids debit two shards commits (post legs: a void whose pending
      transfer is its debit shard's alone, a capture whose credit side is
      on the chain's shard; exists when sent again), and one whose void's
      pending transfer credits a third shard is not_supported unless the
      void names that credit account (then its credit leg goes to the
      third shard, and it commits); a chain that authorises a
      payment to another shard and captures part of it at once, with a
      fee, commits (exists when sent again), and one capturing more than
      it authorised fails with that code, nothing applied; hostile legs on the wire (a client's key:
      unauthorized; both leg bits beside a void: malformed; a credit leg
      on a third shard not the receiver's: wrong_shard, sent by the debit
      account's owner: unauthorized, or beside another shard's credit leg
      of the same transfer: in_progress; a debit leg crediting a third
      shard prepared, then aborted by its sender; a missing or poor debit
      account: its code), nothing reserved
      or moved; the conservation check.
    - The client library's retry helper, on a chain that fails for a
      business reason: its answers are final (returns 0, nothing resent).
    - The burn rule of a failed chain: its failing member's id is not
      burned (rl_reply_burns says no, though its code alone says yes): sent
      again alone with its amount fixed, it applies; the same failure of a
      record sent alone burns the id (the fixed record is then
      exists_with_different_amount, and fails a chain as taken).
    - rlctl: transfer --pending [--timeout], post (part), void, transfer
      --linked (applied, and failed whole: exit 1, "burns" no for every
      member; the same failure alone: "burns" yes), and its usage errors.
    Ends with the conservation check.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <czmq.h>
#include <inttypes.h>
#include <sys/wait.h>

#include "codec.h"
#include "ring.h"
#include "routerkit.h"
#include "testkit.h"

#define L RL_TRANSFER_LINKED

static uint64_t s_next = 5000;

static rl_transfer_t
s_t (uint16_t flags, uint64_t dr, uint64_t cr, uint64_t amount)
{
    rl_transfer_t t = tk_transfer (tk_id (s_next++, RK_TAG), tk_id (dr, RK_TAG), tk_id (cr, RK_TAG),
                                   amount, RK_LEDGER);
    t.flags = flags;
    return t;
}

//  The k-th account (0-based) on shard s whose flags are `flags`, or fail.
static uint64_t
s_pick (rk_ctx_t *ctx, int s, uint16_t flags, int k)
{
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        if (rk_owner (ctx->ring, tk_id (n, RK_TAG)) == s && rk_account_flags (n) == flags
            && k-- == 0) {
            return n;
        }
    }
    fail_msg ("no account %d with flags %u on shard %d", k, flags, s);
    return 0;
}

static void
s_check_results (const rl_result_rec_t *r, size_t count, const uint32_t *want)
{
    for (size_t i = 0; i < count; i++) {
        if (r[i].result != want[i] || r[i].index != i) {
            fail_msg ("record %zu (index %u): %s, expected %s", i, r[i].index,
                      rl_result_name (r[i].result), rl_result_name (want[i]));
        }
    }
}

static void
s_expect (rk_ctx_t *ctx, const rl_transfer_t *t, size_t count, const uint32_t *want)
{
    rl_result_rec_t r[16];
    assert_true (count <= 16);
    assert_int_equal (rl_client_create_transfers (ctx->client, t, count, r, TK_TIMEOUT_MS), 0);
    s_check_results (r, count, want);
}

//  s_expect for a request sent just after a reply whose COMMITs may still
//  be on their way: a pending transfer it resolves on another shard than
//  that transfer's debit shard (the client's reply and the COMMIT that
//  gives that shard the credit side leave together, on different paths),
//  or a chain sent again before its debit legs acknowledged their COMMITs.
//  Answered in_progress meanwhile (nothing applied, docs/payments.md), it
//  is sent again until no record is in_progress.
static void
s_expect_after_commit (rk_ctx_t *ctx, const rl_transfer_t *t, size_t count, const uint32_t *want)
{
    rl_result_rec_t r[16];
    assert_true (count <= 16);
    for (int n = 0; n < 500; n++) {
        assert_int_equal (rl_client_create_transfers (ctx->client, t, count, r, TK_TIMEOUT_MS), 0);
        bool open = false;
        for (size_t i = 0; i < count; i++) {
            open |= r[i].result == RL_IN_PROGRESS;
        }
        if (!open) {
            break;
        }
        zclock_sleep (10);
    }
    s_check_results (r, count, want);
}

//  How many of the transfers lookup finds.
static size_t
s_found (rk_ctx_t *ctx, const rl_transfer_t *t, size_t count)
{
    rl_id_t ids[16];
    rl_transfer_t out[16];
    for (size_t i = 0; i < count; i++) {
        ids[i] = t[i].id;
    }
    assert_int_equal (rl_client_lookup_transfers (ctx->client, ids, count, out, TK_TIMEOUT_MS), 0);
    size_t found = 0;
    for (size_t i = 0; i < count; i++) {
        found += out[i].timestamp != 0;
    }
    return found;
}

//  Runs rlctl (--json) against router 0: its exit code; *json_p the parsed
//  output when it printed JSON (else NULL).
static int
s_rlctl (rk_ctx_t *ctx, const char *log, cJSON **json_p, ...)
{
    va_list args;
    va_start (args, json_p);
    char *text = NULL;
    int rc = rk_rlctl_v (ctx, 0, log, &text, args);
    va_end (args);
    const char *brace = strchr (text, '{');
    *json_p = brace ? cJSON_Parse (brace) : NULL;
    free (text);
    return rc;
}

//  The result names of rlctl's JSON, checked against want.
static void
s_rlctl_results (cJSON *json, size_t count, const char *const *want)
{
    assert_non_null (json);
    const cJSON *list = cJSON_GetObjectItem (json, "results");
    assert_int_equal ((size_t) cJSON_GetArraySize (list), count);
    for (size_t i = 0; i < count; i++) {
        const cJSON *result = cJSON_GetObjectItem (cJSON_GetArrayItem (list, (int) i), "result");
        assert_string_equal (cJSON_GetStringValue (result), want[i]);
    }
    cJSON_Delete (json);
}

//  The "burns" of each result of rlctl's JSON, checked against want.
static void
s_rlctl_burns (const cJSON *json, size_t count, const char *const *want)
{
    assert_non_null (json);
    const cJSON *list = cJSON_GetObjectItem (json, "results");
    assert_int_equal ((size_t) cJSON_GetArraySize (list), count);
    for (size_t i = 0; i < count; i++) {
        const cJSON *burns = cJSON_GetObjectItem (cJSON_GetArrayItem (list, (int) i), "burns");
        assert_string_equal (cJSON_GetStringValue (burns), want[i]);
    }
}

static const char *
s_num (uint64_t n, char *out)
{
    snprintf (out, 40, "%" PRIu64, n);
    return out;
}

//  Account n's id as rlctl reads it (0x and 32 hex digits: hi, then lo).
static const char *
s_acc_text (uint64_t n, char *out)
{
    snprintf (out, 40, "0x%016" PRIx64 "%016" PRIx64, (uint64_t) RK_TAG, n);
    return out;
}

static void
test_chains_router (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = s_pick (ctx, 0, 0, 0), b = s_pick (ctx, 0, 0, 1), c = s_pick (ctx, 0, 0, 2);
    uint64_t poor = s_pick (ctx, 0, RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0);
    uint64_t x = s_pick (ctx, 1, 0, 0), y = s_pick (ctx, 1, 0, 1);

    //  A same-shard chain, applied whole, then exists for each member.
    rl_transfer_t chain[4] = {s_t (L, a, b, 10), s_t (L, b, c, 5),
                              s_t (L | RL_TRANSFER_PENDING, a, c, 7), s_t (0, c, a, 1)};
    s_expect (ctx, chain, 4, (uint32_t[]){RL_OK, RL_OK, RL_OK, RL_OK});
    s_expect (ctx, chain, 4, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS, RL_EXISTS});
    tk_model_apply (&ctx->model, &chain[0]);
    tk_model_apply (&ctx->model, &chain[1]);
    tk_model_apply (&ctx->model, &chain[3]);
    rl_transfer_t void_ = {.id = tk_id (s_next++, RK_TAG),
                           .debit_account_id = chain[2].debit_account_id,
                           .pending_id = chain[2].id,
                           .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
    s_expect (ctx, &void_, 1, (uint32_t[]){RL_OK});

    //  Mixed with the other shard's records: kept whole, results in order.
    rl_transfer_t mixed[5] = {s_t (0, x, y, 3), s_t (L, a, b, 4), s_t (L, b, a, 1),
                              s_t (0, a, c, 2), s_t (0, y, x, 1)};
    s_expect (ctx, mixed, 5, (uint32_t[]){RL_OK, RL_OK, RL_OK, RL_OK, RL_OK});
    for (int i = 0; i < 5; i++) {
        tk_model_apply (&ctx->model, &mixed[i]);
    }

    //  Debit accounts on two shards: a debit leg of the last at shard 1.
    rl_transfer_t across[3] = {s_t (L, a, b, 1), s_t (L, a, c, 1), s_t (0, x, y, 1)};
    s_expect (ctx, across, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    assert_int_equal (s_found (ctx, across, 3), 3);
    for (int i = 0; i < 3; i++) {
        tk_model_apply (&ctx->model, &across[i]);
    }
    //  A member crediting the other shard: one two-phase group, applied.
    rl_transfer_t credit[2] = {s_t (L, a, b, 1), s_t (0, a, x, 1)};
    s_expect (ctx, credit, 2, (uint32_t[]){RL_OK, RL_OK});
    tk_model_apply (&ctx->model, &credit[0]);
    tk_model_apply (&ctx->model, &credit[1]);
    //  Its members' timestamps follow the record order, held members and
    //  members of the other shard interleaved, as in a chain of one shard.
    rl_transfer_t order[4] = {s_t (L, a, x, 1), s_t (L, a, b, 1), s_t (L, a, y, 1),
                              s_t (0, a, c, 1)};
    rl_result_rec_t order_r[4];
    assert_int_equal (rl_client_create_transfers (ctx->client, order, 4, order_r, TK_TIMEOUT_MS),
                      0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal (order_r[i].result, RL_OK);
        assert_true (i == 0 || order_r[i].timestamp > order_r[i - 1].timestamp);
        tk_model_apply (&ctx->model, &order[i]);
    }
    //  Open at the end of the request.
    rl_transfer_t open[3] = {s_t (0, x, y, 1), s_t (L, a, b, 1), s_t (L, a, b, 1)};
    s_expect (ctx, open, 3,
              (uint32_t[]){RL_OK, RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_CHAIN_OPEN});
    tk_model_apply (&ctx->model, &open[0]);
    assert_int_equal (s_found (ctx, &open[1], 2), 0);
    //  Not burned: closed, the same ids apply.
    open[2].flags = 0;
    s_expect (ctx, &open[1], 2, (uint32_t[]){RL_OK, RL_OK});
    tk_model_apply (&ctx->model, &open[1]);
    tk_model_apply (&ctx->model, &open[2]);

    //  The retry helper: a chain that failed for a business reason is
    //  decided; its answers are final.
    rl_transfer_t fails[2] = {s_t (L, a, b, 1), s_t (0, poor, c, 1000000000)};
    rl_result_rec_t r[2];
    assert_int_equal (rl_client_create_transfers_retry (ctx->client, fails, 2, r, TK_TIMEOUT_MS, 3),
                      0);
    assert_int_equal (r[0].result, RL_LINKED_EVENT_FAILED);
    assert_int_equal (r[1].result, RL_EXCEEDS_CREDITS);
    assert_int_equal (s_found (ctx, fails, 2), 0);

    //  The burn rule of a failed chain: nothing of it is stored, the
    //  failing member's id included, whatever its own code says alone.
    assert_int_equal (rl_result_burns (r[1].result), RL_BURNS_YES); //  the code alone: burned
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal (rl_reply_burns (fails, r, 2, i), RL_BURNS_NO); //  in its chain: free
        assert_true (rl_reply_is_retryable (fails, r, 2, i));
    }
    //  The failing member alone, its amount fixed, applies under its id;
    //  so does the other one, its chain closed.
    rl_transfer_t fund = s_t (0, a, poor, 100);
    s_expect (ctx, &fund, 1, (uint32_t[]){RL_OK});
    tk_model_apply (&ctx->model, &fund);
    fails[1].amount = 60;
    s_expect (ctx, &fails[1], 1, (uint32_t[]){RL_OK});
    tk_model_apply (&ctx->model, &fails[1]);
    fails[0].flags = 0;
    s_expect (ctx, &fails[0], 1, (uint32_t[]){RL_OK});
    tk_model_apply (&ctx->model, &fails[0]);
    //  Alone, the same failure burns the id: the fixed record is refused.
    rl_transfer_t alone = s_t (0, poor, c, 1000000000);
    assert_int_equal (rl_client_create_transfers (ctx->client, &alone, 1, r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r[0].result, RL_EXCEEDS_CREDITS);
    assert_int_equal (rl_reply_burns (&alone, r, 1, 0), RL_BURNS_YES);
    assert_false (rl_reply_is_retryable (&alone, r, 1, 0));
    alone.amount = 1;
    s_expect (ctx, &alone, 1, (uint32_t[]){RL_EXISTS_WITH_DIFFERENT_AMOUNT});
    //  ... and, in a chain, that burned id fails the chain as taken.
    rl_transfer_t taken[2] = {s_t (L, a, b, 1), alone};
    assert_int_equal (rl_client_create_transfers (ctx->client, taken, 2, r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r[0].result, RL_LINKED_EVENT_FAILED);
    assert_int_equal (r[1].result, RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    assert_int_equal (rl_reply_burns (taken, r, 2, 0), RL_BURNS_NO);
    assert_int_equal (rl_reply_burns (taken, r, 2, 1), RL_BURNS_TAKEN);
    assert_int_equal (s_found (ctx, taken, 1), 0);

    //  rlctl: an authorisation captured in part, one voided, chains.
    char ta[40], tb[40], tc[40], tp[40], id1[40], id2[40], id3[40], id4[40];
    s_acc_text (a, ta), s_acc_text (b, tb), s_acc_text (c, tc), s_acc_text (poor, tp);
    cJSON *json = NULL;
    assert_int_equal (s_rlctl (ctx, "pending", &json, "transfer", s_num (9001, id1), ta, tb, "300",
                               "--ledger", "978", "--code", "1", "--pending", "--timeout", "3600",
                               NULL),
                      0);
    s_rlctl_results (json, 1, (const char *[]){"ok"});
    rl_transfer_t seen;
    rl_id_t pid = tk_id (9001, 0);
    assert_int_equal (rl_client_lookup_transfers (ctx->client, &pid, 1, &seen, TK_TIMEOUT_MS), 0);
    assert_int_equal (seen.flags, RL_TRANSFER_PENDING);
    assert_int_equal (seen.timeout, 3600);
    assert_int_equal (s_rlctl (ctx, "post", &json, "post", s_num (9002, id2), id1, ta, "120", NULL),
                      0);
    s_rlctl_results (json, 1, (const char *[]){"ok"});
    tk_model_apply (&ctx->model, &(rl_transfer_t){.debit_account_id = tk_id (a, RK_TAG),
                                                  .credit_account_id = tk_id (b, RK_TAG),
                                                  .amount = 120});
    assert_int_equal (s_rlctl (ctx, "post_again", &json, "post", s_num (9003, id3), id1, ta, NULL),
                      1);
    s_rlctl_results (json, 1, (const char *[]){"pending_transfer_already_posted"});
    assert_int_equal (s_rlctl (ctx, "pending2", &json, "transfer", s_num (9004, id4), ta, tb, "50",
                               "--ledger", "978", "--code", "1", "--pending", NULL),
                      0);
    s_rlctl_results (json, 1, (const char *[]){"ok"});
    assert_int_equal (s_rlctl (ctx, "void", &json, "void", s_num (9005, id2), id4, ta, NULL), 0);
    s_rlctl_results (json, 1, (const char *[]){"ok"});
    //  A chain: a payment and its fee.
    assert_int_equal (s_rlctl (ctx, "chain", &json, "transfer", s_num (9006, id1), ta, tb, "40",
                               s_num (9007, id2), ta, tc, "2", "--ledger", "978", "--code", "1",
                               "--linked", NULL),
                      0);
    s_rlctl_results (json, 2, (const char *[]){"ok", "ok"});
    tk_model_apply (&ctx->model, &(rl_transfer_t){.debit_account_id = tk_id (a, RK_TAG),
                                                  .credit_account_id = tk_id (b, RK_TAG),
                                                  .amount = 40});
    tk_model_apply (&ctx->model, &(rl_transfer_t){.debit_account_id = tk_id (a, RK_TAG),
                                                  .credit_account_id = tk_id (c, RK_TAG),
                                                  .amount = 2});
    //  ... and one whose fee the payer cannot pay: exit 1, nothing applied.
    assert_int_equal (s_rlctl (ctx, "chain_fails", &json, "transfer", s_num (9008, id3), ta, tb,
                               "40", s_num (9009, id4), tp, tc, "1000000000", "--ledger", "978",
                               "--code", "1", "--linked", NULL),
                      1);
    s_rlctl_burns (json, 2, (const char *[]){"no", "no"}); //  a failed chain burns nothing
    s_rlctl_results (json, 2, (const char *[]){"linked_event_failed", "exceeds_credits"});
    //  The same failure alone burns its id.
    assert_int_equal (s_rlctl (ctx, "alone_fails", &json, "transfer", s_num (9013, id3), tp, tc,
                               "1000000000", "--ledger", "978", "--code", "1", NULL),
                      1);
    s_rlctl_burns (json, 1, (const char *[]){"yes"});
    s_rlctl_results (json, 1, (const char *[]){"exceeds_credits"});
    //  Usage errors: a record short of an argument, --timeout alone.
    assert_int_equal (s_rlctl (ctx, "usage1", &json, "transfer", "9010", ta, tb, "1", "9011", ta,
                               "--ledger", "978", "--code", "1", NULL),
                      2);
    cJSON_Delete (json);
    assert_int_equal (s_rlctl (ctx, "usage2", &json, "transfer", "9012", ta, tb, "1", "--ledger",
                               "978", "--code", "1", "--timeout", "5", NULL),
                      2);
    cJSON_Delete (json);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
}

//  An account id of shard s that was never created (beyond RK_ACCOUNTS).
static uint64_t
s_missing (rk_ctx_t *ctx, int s)
{
    for (uint64_t n = RK_ACCOUNTS + 1;; n++) {
        if (rk_owner (ctx->ring, tk_id (n, RK_TAG)) == s) {
            return n;
        }
    }
}

static void
s_apply (rk_ctx_t *ctx, const rl_transfer_t *t, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        tk_model_apply (&ctx->model, &t[i]);
    }
}

static void
test_chains_across (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = s_pick (ctx, 0, 0, 0), b = s_pick (ctx, 0, 0, 1);
    uint64_t poor = s_pick (ctx, 0, RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0);
    uint64_t x = s_pick (ctx, 1, 0, 0), z = s_pick (ctx, 2, 0, 0);
    uint32_t ok3[3] = {RL_OK, RL_OK, RL_OK}, exists3[3] = {RL_EXISTS, RL_EXISTS, RL_EXISTS};

    //  A payment with its fees on two other shards, and one on two shards.
    rl_transfer_t fee[3] = {s_t (L, a, b, 100), s_t (L, a, x, 3), s_t (0, a, z, 2)};
    s_expect (ctx, fee, 3, ok3);
    s_apply (ctx, fee, 3);
    s_expect (ctx, fee, 3, exists3);
    rl_transfer_t two[2] = {s_t (L, a, x, 7), s_t (0, a, b, 70)};
    s_expect (ctx, two, 2, ok3);
    s_apply (ctx, two, 2);
    //  A member sent again alone: exists (ids stay with the debit shard).
    rl_transfer_t alone = fee[1];
    alone.flags = 0;
    s_expect (ctx, &alone, 1, exists3);
    assert_int_equal (s_found (ctx, fee, 3), 3);

    //  Refused by a credit shard (its account does not exist): that
    //  member's code, the others linked_event_failed, nothing applied.
    rl_transfer_t bad[3] = {s_t (L, a, b, 10), s_t (L, a, x, 1), s_t (0, a, z, 1)};
    bad[2].credit_account_id = tk_id (s_missing (ctx, 2), RK_TAG);
    uint32_t refused[3] = {RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED,
                           RL_CREDIT_ACCOUNT_NOT_FOUND};
    s_expect (ctx, bad, 3, refused);
    assert_int_equal (s_found (ctx, bad, 3), 0);
    s_expect (ctx, bad, 3, refused); //  nothing burned: decided again
    rl_result_rec_t r[3];
    assert_int_equal (rl_client_create_transfers (ctx->client, bad, 3, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (rl_reply_burns (bad, r, 3, i), RL_BURNS_NO);
    }
    bad[2].credit_account_id = tk_id (z, RK_TAG); //  corrected: the same ids apply
    s_expect (ctx, bad, 3, ok3);
    s_apply (ctx, bad, 3);

    //  Failing at the debit shard: its local credit member, or a member's
    //  debit; nothing is sent, and the other member's id stays free.
    rl_transfer_t local[2] = {s_t (L, a, x, 5), s_t (0, poor, b, 1000000000)};
    s_expect (ctx, local, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    rl_transfer_t debit[2] = {s_t (L, a, b, 5), s_t (0, poor, z, 1000000000)};
    s_expect (ctx, debit, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_int_equal (s_found (ctx, local, 2) + s_found (ctx, debit, 2), 0);
    local[0].flags = 0;
    s_expect (ctx, local, 1, ok3);
    s_apply (ctx, local, 1);

    //  Two chains and a record of shard 1 in one request: results in order.
    rl_transfer_t mixed[5] = {s_t (L, a, x, 1), s_t (0, a, b, 1), s_t (0, x, z, 1),
                              s_t (L, a, z, 1), s_t (0, a, x, 1)};
    s_expect (ctx, mixed, 5, (uint32_t[]){RL_OK, RL_OK, RL_OK, RL_OK, RL_OK});
    s_apply (ctx, mixed, 5);
    s_expect (ctx, mixed, 5, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS, RL_EXISTS, RL_EXISTS});

    //  Pending kinds: two authorisations (one across, one here) and a fee
    //  across in one chain; then one captured in part and the other
    //  released, with another fee, in one chain; sent again, exists.
    rl_transfer_t auth[3] = {s_t (L | RL_TRANSFER_PENDING, a, x, 50),
                             s_t (L | RL_TRANSFER_PENDING, a, b, 20), s_t (0, a, z, 2)};
    auth[0].timeout = 600;
    s_expect (ctx, auth, 3, ok3);
    s_apply (ctx, &auth[2], 1);
    rl_account_t acc;
    rl_id_t payer = tk_id (a, RK_TAG);
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &payer, 1, &acc, TK_TIMEOUT_MS), 0);
    assert_int_equal (acc.debits_pending, 70);
    rl_transfer_t capture[3] = {s_t (L | RL_TRANSFER_POST_PENDING_TRANSFER, a, 0, 30),
                                s_t (L | RL_TRANSFER_VOID_PENDING_TRANSFER, a, 0, 0),
                                s_t (0, a, z, 1)};
    capture[0].pending_id = auth[0].id;
    capture[1].pending_id = auth[1].id;
    capture[0].ledger = capture[1].ledger = capture[0].code = capture[1].code = 0;
    capture[0].credit_account_id = capture[1].credit_account_id = (rl_id_t){0};
    s_expect (ctx, capture, 3, ok3);
    rl_transfer_t posted = auth[0];
    posted.amount = 30;
    s_apply (ctx, &posted, 1);
    s_apply (ctx, &capture[2], 1);
    s_expect (ctx, capture, 3, exists3);
    s_expect (ctx, auth, 3, exists3);
    //  A second capture of it in a chain: already posted, nothing applied.
    rl_transfer_t twice[2] = {s_t (L, a, x, 1), s_t (RL_TRANSFER_POST_PENDING_TRANSFER, a, 0, 0)};
    twice[1].pending_id = auth[0].id;
    twice[1].ledger = twice[1].code = 0;
    twice[1].credit_account_id = (rl_id_t){0};
    s_expect (ctx, twice, 2,
              (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_ALREADY_POSTED});
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &payer, 1, &acc, TK_TIMEOUT_MS), 0);
    assert_int_equal (acc.debits_pending, 0);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
}

//  The stored timestamp of transfer t (0: not found).
static uint64_t
s_stored_ts (rk_ctx_t *ctx, const rl_transfer_t *t)
{
    rl_transfer_t out;
    assert_int_equal (rl_client_lookup_transfers (ctx->client, &t->id, 1, &out, TK_TIMEOUT_MS), 0);
    return out.timestamp;
}

//  Sends the chain, expects every member ok with the timestamp its debit
//  shard stored, and applies it to the model.
static void
s_commit (rk_ctx_t *ctx, const rl_transfer_t *t, size_t count)
{
    rl_result_rec_t r[8];
    assert_true (count <= 8);
    assert_int_equal (rl_client_create_transfers (ctx->client, t, count, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < count; i++) {
        if (r[i].result != RL_OK) {
            fail_msg ("record %zu: %s", i, rl_result_name (r[i].result));
        }
        assert_int_equal (r[i].timestamp, s_stored_ts (ctx, &t[i]));
    }
    s_apply (ctx, t, count);
}

static rl_account_t
s_account (rk_ctx_t *ctx, uint64_t n)
{
    rl_id_t id = tk_id (n, RK_TAG);
    rl_account_t out;
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &id, 1, &out, TK_TIMEOUT_MS), 0);
    assert_true (out.timestamp != 0);
    return out;
}

//  A two-phase request of op (count records already encoded after the
//  header in frame, size bytes in all) sent as key `as` to shard s: the
//  reply's status, and each record's reply in out (status ok).
static uint32_t
s_tp_call (rk_ctx_t *ctx, const char *as, int s, uint8_t *frame, size_t size, uint32_t count,
           rl_tp_rec_t *out)
{
    zsock_t *dealer = tk_dealer_as (ctx->h, as, ctx->shards[s].name, ctx->shards[s].endpoint);
    assert_int_equal (zsock_send (dealer, "b", frame, size), 0);
    zframe_t *reply = zframe_recv (dealer);
    assert_non_null (reply);
    rl_header_t h;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal (
        codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &body, &body_size),
        RL_STATUS_OK);
    if (h.status == RL_STATUS_OK) {
        assert_int_equal (body_size, (size_t) count * RL_TP_SIZE);
        for (uint32_t i = 0; i < count; i++) {
            codec_decode_tp (body + (size_t) i * RL_TP_SIZE, &out[i]);
        }
    }
    zframe_destroy (&reply);
    zsock_destroy (&dealer);
    return h.status;
}

static uint64_t s_request_id = 700; //  the made-up requests' ids

//  PREPAREs sent as key `as` to shard s: the reply's status, and each
//  record's reply in out (status ok).
static uint32_t
s_prepare_send (rk_ctx_t *ctx, const char *as, int s, const rl_prepare_rec_t *recs, uint32_t count,
                rl_tp_rec_t *out)
{
    uint8_t frame[RL_HEADER_SIZE + 4 * RL_PREPARE_SIZE];
    assert_true (count <= 4);
    size_t size = tk_request_header (frame, RL_OP_PREPARE, ++s_request_id, count);
    for (uint32_t i = 0; i < count; i++) {
        codec_encode_prepare (&recs[i], frame + size);
        size += RL_PREPARE_SIZE;
    }
    return s_tp_call (ctx, as, s, frame, size, count, out);
}

//  A DECIDE of one record sent as key `as` to shard s: the record's reply
//  state.
static uint32_t
s_decide_send (rk_ctx_t *ctx, const char *as, int s, const rl_tp_rec_t *rec)
{
    uint8_t frame[RL_HEADER_SIZE + RL_TP_SIZE];
    size_t size = tk_request_header (frame, RL_OP_DECIDE, ++s_request_id, 1);
    codec_encode_tp (rec, frame + size);
    size += RL_TP_SIZE;
    rl_tp_rec_t out;
    assert_int_equal (s_tp_call (ctx, as, s, frame, size, 1, &out), RL_STATUS_OK);
    return out.state;
}

//  A debit leg's PREPARE of t as coordinator `coordinator`, attempt 1.n of
//  a made-up incarnation.
static rl_prepare_rec_t
s_leg_rec (const rl_transfer_t *t, uint16_t kind, const char *coordinator)
{
    static uint64_t seq;
    rl_prepare_rec_t rec = {.transfer = *t};
    rec.transfer.flags = kind;
    rec.tp.id = t->id;
    rec.tp.attempt = (rl_attempt_t){.counter = 1, .nonce = 0x1e95, .seq = ++seq};
    rec.tp.amount = t->amount;
    rec.tp.debit_account_id = t->debit_account_id;
    snprintf (rec.tp.coordinator, sizeof rec.tp.coordinator, "%s", coordinator);
    return rec;
}

static void
test_chains_debits (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 3, 3, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = s_pick (ctx, 0, 0, 0), b = s_pick (ctx, 0, 0, 1);
    uint64_t x = s_pick (ctx, 1, 0, 0), x2 = s_pick (ctx, 1, 0, 1);
    uint64_t z = s_pick (ctx, 2, 0, 0), z2 = s_pick (ctx, 2, 0, 1);
    uint64_t poor_x = s_pick (ctx, 1, RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0);
    uint32_t exists3[3] = {RL_EXISTS, RL_EXISTS, RL_EXISTS};

    //  Two debit shards: x pays a (its credit held at the chain's shard).
    rl_transfer_t two[2] = {s_t (L, a, b, 50), s_t (0, x, a, 20)};
    s_commit (ctx, two, 2);
    s_expect (ctx, two, 2, exists3);
    rl_transfer_t alone = two[1];
    alone.flags = 0;
    s_expect (ctx, &alone, 1, exists3); //  at its debit shard, alone
    //  Three debit shards: x pays x2 (both legs at shard 1), z pays a, and
    //  z2 pays z (both legs at shard 2), a pays x.
    rl_transfer_t three[4] = {s_t (L, a, x, 5), s_t (L, x, x2, 6), s_t (L, z, a, 7),
                              s_t (0, z2, z, 8)};
    s_commit (ctx, three, 4);
    s_expect (ctx, three, 4, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS, RL_EXISTS});
    assert_int_equal (s_found (ctx, three, 4), 4);
    //  A member sent alone before its chain: exists does not break it.
    rl_transfer_t first = s_t (0, z, b, 3);
    s_expect (ctx, &first, 1, (uint32_t[]){RL_OK});
    tk_model_apply (&ctx->model, &first);
    rl_transfer_t after[2] = {s_t (L, a, b, 4), first};
    after[1].flags = 0;
    rl_result_rec_t r[4];
    assert_int_equal (rl_client_create_transfers (ctx->client, after, 2, r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r[0].result, RL_OK);
    assert_int_equal (r[1].result, RL_EXISTS);
    assert_int_equal (r[1].timestamp, s_stored_ts (ctx, &first));
    tk_model_apply (&ctx->model, &after[0]);

    //  Refused at a debit shard: exceeds_credits, then debit account not
    //  found; nothing applied, nothing burned (decided again).
    rl_transfer_t poor[3] = {s_t (L, a, b, 9), s_t (L, z, a, 9), s_t (0, poor_x, a, 1000000000)};
    uint32_t exceeds[3] = {RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS};
    s_expect (ctx, poor, 3, exceeds);
    s_expect (ctx, poor, 3, exceeds);
    assert_int_equal (s_found (ctx, poor, 3), 0);
    assert_int_equal (rl_client_create_transfers (ctx->client, poor, 3, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (rl_reply_burns (poor, r, 3, i), RL_BURNS_NO);
    }
    rl_transfer_t fund = s_t (0, a, poor_x, 1); //  funded: the same ids apply
    s_commit (ctx, &fund, 1);
    poor[2].amount = 1;
    s_commit (ctx, poor, 3);
    rl_transfer_t missing[2] = {s_t (L, a, b, 2), s_t (0, s_missing (ctx, 1), a, 2)};
    s_expect (ctx, missing, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_DEBIT_ACCOUNT_NOT_FOUND});
    assert_int_equal (s_found (ctx, missing, 2), 0);
    //  The failed chain's member sent alone (its flag cleared): applied.
    rl_transfer_t solo = missing[0];
    solo.flags = 0;
    s_commit (ctx, &solo, 1);
    //  Pending debit legs: x authorises a (a debit leg: its credit side on
    //  the chain's shard) and x2 (both legs on shard 1), with a fee; then,
    //  through the router, part of the first is captured and the second
    //  voided at their debit shard, each alone; sent again, exists.
    rl_transfer_t auth[3] = {s_t (L, a, b, 2), s_t (L | RL_TRANSFER_PENDING, x, a, 12),
                             s_t (RL_TRANSFER_PENDING, x, x2, 13)};
    auth[2].timeout = 3600;
    s_expect (ctx, auth, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    s_apply (ctx, auth, 1);
    s_expect (ctx, auth, 3, exists3);
    assert_int_equal (s_account (ctx, x).debits_pending, 25);
    assert_int_equal (s_account (ctx, a).credits_pending, 12);
    rl_transfer_t settle[2] = {s_t (RL_TRANSFER_POST_PENDING_TRANSFER, x, 0, 5),
                               s_t (RL_TRANSFER_VOID_PENDING_TRANSFER, x, 0, 0)};
    for (size_t i = 0; i < 2; i++) {
        settle[i].pending_id = auth[i + 1].id;
        settle[i].ledger = settle[i].code = 0;
        settle[i].credit_account_id = (rl_id_t){0};
    }
    s_expect (ctx, settle, 1, (uint32_t[]){RL_OK});
    s_expect (ctx, &settle[1], 1, (uint32_t[]){RL_OK});
    rl_transfer_t captured = auth[1];
    captured.flags = 0, captured.amount = 5;
    s_apply (ctx, &captured, 1);
    s_expect (ctx, settle, 2, (uint32_t[]){RL_EXISTS, RL_EXISTS});
    assert_int_equal (s_account (ctx, x).debits_pending, 0);
    assert_int_equal (s_account (ctx, a).credits_pending, 0);
    //  A member debiting shard 1 and crediting shard 2: its debit leg, then
    //  its credit leg on the third shard; sent again, exists.
    rl_transfer_t third[2] = {s_t (L, a, b, 1), s_t (0, x, z, 1)};
    s_commit (ctx, third, 2);
    s_expect (ctx, third, 2, exists3);
    //  The same as a pending transfer: its debit side on shard 1, its
    //  credit side on shard 2; posted in part at shard 1 later.
    rl_account_t x_pend = s_account (ctx, x), z_pend = s_account (ctx, z);
    rl_transfer_t third_p[2] = {s_t (L, a, b, 1), s_t (RL_TRANSFER_PENDING, x, z, 6)};
    s_expect (ctx, third_p, 2, (uint32_t[]){RL_OK, RL_OK});
    s_apply (ctx, third_p, 1);
    assert_int_equal (s_account (ctx, x).debits_pending, x_pend.debits_pending + 6);
    assert_int_equal (s_account (ctx, z).credits_pending, z_pend.credits_pending + 6);
    rl_transfer_t third_post = s_t (RL_TRANSFER_POST_PENDING_TRANSFER, x, 0, 4);
    third_post.pending_id = third_p[1].id;
    third_post.ledger = third_post.code = 0;
    third_post.credit_account_id = (rl_id_t){0};
    s_expect (ctx, &third_post, 1, (uint32_t[]){RL_OK});
    rl_transfer_t third_posted = third_p[1];
    third_posted.flags = 0, third_posted.amount = 4;
    s_apply (ctx, &third_posted, 1);
    assert_int_equal (s_account (ctx, x).debits_pending, x_pend.debits_pending);
    assert_int_equal (s_account (ctx, z).credits_pending, z_pend.credits_pending);
    //  A chain placed by its post: its first member debits shard 0, its
    //  post captures part of a pending transfer of shard 1 (x to x2), so
    //  the router sends it to shard 1, which prepares the first member as
    //  a debit leg at shard 0; sent again, exists.
    rl_transfer_t hold = s_t (RL_TRANSFER_PENDING, x, x2, 9);
    s_expect (ctx, &hold, 1, (uint32_t[]){RL_OK});
    rl_transfer_t led[2] = {s_t (L, a, b, 3), s_t (RL_TRANSFER_POST_PENDING_TRANSFER, x, 0, 4)};
    led[1].pending_id = hold.id;
    led[1].ledger = led[1].code = 0;
    led[1].credit_account_id = (rl_id_t){0};
    s_expect (ctx, led, 2, (uint32_t[]){RL_OK, RL_OK});
    rl_transfer_t led_posted = hold;
    led_posted.flags = 0, led_posted.amount = 4;
    s_apply (ctx, led, 1);
    s_apply (ctx, &led_posted, 1);
    s_expect (ctx, led, 2, (uint32_t[]){RL_EXISTS, RL_EXISTS});
    assert_int_equal (s_account (ctx, x).debits_pending, x_pend.debits_pending);
    //  Posts or voids debiting two shards in one chain (post legs): the
    //  chain runs on shard 0 (its first void debits a); the void of x to
    //  x2 (both sides on shard 1) goes there as both legs, the capture of
    //  x to a (its credit side on shard 0) as a debit leg resolved on
    //  shard 0; all commit, exists when sent again.
    rl_account_t a_two = s_account (ctx, a), x2_two = s_account (ctx, x2);
    rl_transfer_t hold2[5] = {
        s_t (RL_TRANSFER_PENDING, a, b, 2), s_t (RL_TRANSFER_PENDING, x, x2, 2),
        s_t (RL_TRANSFER_PENDING, x, a, 5), s_t (RL_TRANSFER_PENDING, x, z, 3),
        s_t (RL_TRANSFER_PENDING, a, b, 1)};
    s_expect (ctx, hold2, 5, (uint32_t[]){RL_OK, RL_OK, RL_OK, RL_OK, RL_OK});
    rl_transfer_t posts2[3] = {s_t (L | RL_TRANSFER_VOID_PENDING_TRANSFER, a, 0, 0),
                               s_t (L | RL_TRANSFER_VOID_PENDING_TRANSFER, x, 0, 0),
                               s_t (RL_TRANSFER_POST_PENDING_TRANSFER, x, 0, 4)};
    for (size_t i = 0; i < 3; i++) {
        posts2[i].pending_id = hold2[i].id;
        posts2[i].ledger = posts2[i].code = 0;
        posts2[i].credit_account_id = (rl_id_t){0};
    }
    s_expect_after_commit (ctx, posts2, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    s_expect (ctx, posts2, 3, exists3);
    assert_int_equal (s_account (ctx, x).debits_pending, x_pend.debits_pending + 3);
    assert_int_equal (s_account (ctx, x2).credits_pending, x2_two.credits_pending);
    assert_int_equal (s_account (ctx, a).debits_pending, a_two.debits_pending + 1);
    assert_int_equal (s_account (ctx, a).credits_pending, a_two.credits_pending);
    assert_int_equal (s_account (ctx, a).credits_posted, a_two.credits_posted + 4);
    rl_transfer_t posts2_done = hold2[2];
    posts2_done.flags = 0, posts2_done.amount = 4;
    s_apply (ctx, &posts2_done, 1);
    //  One whose pending transfer credits a third shard (x to z), its
    //  credit account not named: that member not_supported, the first
    //  linked_event_failed, nothing applied or burned. Named: a post leg
    //  at shard 1, then its credit leg at shard 2; all commit, exists
    //  when sent again.
    rl_transfer_t voids[2] = {s_t (L | RL_TRANSFER_VOID_PENDING_TRANSFER, a, 0, 0),
                              s_t (RL_TRANSFER_VOID_PENDING_TRANSFER, x, 0, 0)};
    for (size_t i = 0; i < 2; i++) {
        voids[i].pending_id = hold2[4 - i].id;
        voids[i].ledger = voids[i].code = 0;
        voids[i].credit_account_id = (rl_id_t){0};
    }
    s_expect (ctx, voids, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_NOT_SUPPORTED});
    assert_int_equal (s_found (ctx, voids, 2), 0);
    assert_int_equal (s_account (ctx, x).debits_pending, x_pend.debits_pending + 3);
    voids[1].credit_account_id = hold2[3].credit_account_id;
    s_expect (ctx, voids, 2, (uint32_t[]){RL_OK, RL_OK});
    //  Sent again: in_progress until both COMMITs are acknowledged, then exists.
    s_expect_after_commit (ctx, voids, 2, (uint32_t[]){RL_EXISTS, RL_EXISTS});
    assert_int_equal (s_account (ctx, z).credits_pending, z_pend.credits_pending);
    assert_int_equal (s_account (ctx, x).debits_pending, x_pend.debits_pending);
    assert_int_equal (s_account (ctx, a).debits_pending, a_two.debits_pending);
    //  A chain that authorises a (shard 0) to pay x (shard 1) and captures
    //  part of it at once, with a fee: the capture is prepared at shard 1
    //  against the authorisation's credit leg; sent again, exists.
    rl_account_t a_own = s_account (ctx, a), x_own = s_account (ctx, x);
    rl_transfer_t own[3] = {s_t (L | RL_TRANSFER_PENDING, a, x, 10),
                            s_t (L | RL_TRANSFER_POST_PENDING_TRANSFER, a, 0, 7), s_t (0, a, b, 1)};
    own[1].pending_id = own[0].id;
    own[1].ledger = own[1].code = 0;
    own[1].credit_account_id = (rl_id_t){0};
    s_expect (ctx, own, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    rl_transfer_t own_posted = own[0];
    own_posted.flags = 0, own_posted.amount = 7;
    s_apply (ctx, &own_posted, 1);
    s_apply (ctx, &own[2], 1);
    s_expect (ctx, own, 3, exists3);
    assert_int_equal (s_account (ctx, a).debits_pending, a_own.debits_pending);
    assert_int_equal (s_account (ctx, x).credits_pending, x_own.credits_pending);
    assert_int_equal (s_account (ctx, x).credits_posted, x_own.credits_posted + 7);
    //  The same capturing more than it authorised: its own code, nothing
    //  applied or burned.
    rl_transfer_t over[2] = {s_t (L | RL_TRANSFER_PENDING, a, x, 10),
                             s_t (RL_TRANSFER_POST_PENDING_TRANSFER, a, 0, 11)};
    over[1].pending_id = over[0].id;
    over[1].ledger = over[1].code = 0;
    over[1].credit_account_id = (rl_id_t){0};
    s_expect (ctx, over, 2,
              (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_PENDING_TRANSFER_AMOUNT});
    assert_int_equal (s_found (ctx, over, 2), 0);
    assert_int_equal (s_account (ctx, x).credits_pending, x_own.credits_pending);
    assert_int_equal (s_account (ctx, x).credits_reserved, 0);

    //  Hostile legs on the wire, to shard 1 (x's): from a client's key,
    //  unauthorized whole; from shard 0's key, both leg bits beside
    //  a void, malformed whole; a credit leg on a third shard whose credit
    //  account is not the receiver's, wrong_shard; one sent by the debit
    //  account's owner (to shard 2), unauthorized.
    rl_account_t x_before = s_account (ctx, x), poor_before = s_account (ctx, poor_x);
    const char *s0 = ctx->shards[0].name, *s1 = ctx->shards[1].name, *s2 = ctx->shards[2].name;
    rl_transfer_t h = s_t (0, x, a, 5);
    rl_prepare_rec_t recs[4] = {s_leg_rec (&h, RL_TRANSFER_TP_DEBIT_LEG, s0)};
    rl_tp_rec_t out[4], abort_rec;
    (void) tk_key (ctx->h, "client", "legs-client");
    assert_int_equal (s_prepare_send (ctx, "legs-client", 1, recs, 1, out), RL_STATUS_UNAUTHORIZED);
    recs[0].transfer.flags = RL_TRANSFER_TP_CREDIT_THIRD | RL_TRANSFER_VOID_PENDING_TRANSFER;
    assert_int_equal (s_prepare_send (ctx, s0, 1, recs, 1, out), RL_STATUS_MALFORMED);
    recs[0] = s_leg_rec (&h, RL_TRANSFER_TP_CREDIT_THIRD, s0);
    assert_int_equal (s_prepare_send (ctx, s0, 1, recs, 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].state, RL_TP_REFUSED);
    assert_int_equal (out[0].result, RL_WRONG_SHARD);
    rl_transfer_t hz = s_t (0, x, z, 5);
    recs[0] = s_leg_rec (&hz, RL_TRANSFER_TP_CREDIT_THIRD, s1);
    assert_int_equal (s_prepare_send (ctx, s1, 2, recs, 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].state, RL_TP_REFUSED);
    assert_int_equal (out[0].result, RL_UNAUTHORIZED);
    assert_int_equal (s_account (ctx, z).credits_reserved, 0);
    //  Shard 1's credit leg of a transfer x -> z prepared on shard 2: shard
    //  0's key preparing a credit leg on a third shard of the same transfer
    //  beside it is refused in_progress (one credit leg a transfer); shard
    //  1's ABORT releases it.
    rl_transfer_t xz = s_t (0, x, z, 4);
    recs[0] = s_leg_rec (&xz, 0, s1);
    assert_int_equal (s_prepare_send (ctx, s1, 2, recs, 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].state, RL_TP_PREPARED);
    recs[1] = s_leg_rec (&xz, RL_TRANSFER_TP_CREDIT_THIRD, s0);
    assert_int_equal (s_prepare_send (ctx, s0, 2, &recs[1], 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].state, RL_TP_REFUSED);
    assert_int_equal (out[0].result, RL_IN_PROGRESS);
    assert_int_equal (s_account (ctx, z).credits_reserved, 4);
    abort_rec = recs[0].tp;
    abort_rec.state = RL_TP_ABORT;
    assert_int_equal (s_decide_send (ctx, s1, 2, &abort_rec), RL_TP_ACKED);
    assert_int_equal (s_account (ctx, z).credits_reserved, 0);
    //  A debit leg from shard 2 crediting shard 0's a (a credit on a third
    //  shard) is prepared; shard 2's ABORT releases it.
    recs[0] = s_leg_rec (&h, RL_TRANSFER_TP_DEBIT_LEG, s2);
    assert_int_equal (s_prepare_send (ctx, s2, 1, recs, 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].state, RL_TP_PREPARED);
    assert_int_equal (s_account (ctx, x).debits_reserved, 5);
    abort_rec = recs[0].tp;
    abort_rec.state = RL_TP_ABORT;
    assert_int_equal (s_decide_send (ctx, s2, 1, &abort_rec), RL_TP_ACKED);
    assert_int_equal (s_account (ctx, x).debits_reserved, 0);
    //  A shard asking about a member stored there (applied in a chain
    //  above) is told exists with its timestamp, and nothing moves; the
    //  same record with another amount is what a create of it is told.
    recs[0] = s_leg_rec (&alone, RL_TRANSFER_TP_DEBIT_LEG, s2);
    assert_int_equal (s_prepare_send (ctx, s2, 1, recs, 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].state, RL_TP_REFUSED);
    assert_int_equal (out[0].result, RL_EXISTS);
    assert_int_equal (out[0].timestamp, s_stored_ts (ctx, &alone));
    recs[0].transfer.amount++;
    assert_int_equal (s_prepare_send (ctx, s2, 1, recs, 1, out), RL_STATUS_OK);
    assert_int_equal (out[0].result, RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    rl_transfer_t gone = s_t (0, s_missing (ctx, 1), a, 5), much = s_t (0, poor_x, a, 1000000);
    recs[0] = s_leg_rec (&gone, RL_TRANSFER_TP_DEBIT_LEG, s0);
    recs[1] = s_leg_rec (&much, RL_TRANSFER_TP_DEBIT_LEG, s0);
    assert_int_equal (s_prepare_send (ctx, s0, 1, recs, 2, out), RL_STATUS_OK);
    assert_int_equal (out[0].result, RL_DEBIT_ACCOUNT_NOT_FOUND);
    assert_int_equal (out[1].result, RL_EXCEEDS_CREDITS);
    assert_int_equal (out[0].state + out[1].state, 2 * RL_TP_REFUSED);
    rl_account_t x_after = s_account (ctx, x), poor_after = s_account (ctx, poor_x);
    assert_int_equal (x_after.debits_reserved + poor_after.debits_reserved, 0);
    assert_int_equal (x_after.debits_posted, x_before.debits_posted);
    assert_int_equal (poor_after.debits_posted, poor_before.debits_posted);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_chains_router, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_chains_across, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_chains_debits, rk_setup, rk_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
