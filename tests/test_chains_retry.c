/*  test_chains_retry.c: a linked chain with a debit leg sent again
    (docs/payments.md, "Linked chains", rule 2), on two real shards: D, the
    chain's shard, and X, which holds the debit account of one member whose
    credit account is D's. That member's id is X's, so only X can say
    whether it is stored; D's own check of its credit must not answer first.

    - test_applied_sent_again: the chain applies; its credit account at D
      (credits must not exceed debits) is full since. Sent again, as a
      client does after a lost reply, every member is exists with the
      timestamp stored at its debit shard, nothing moves.
    - test_member_alone_first: the member applied alone at X, then a chain
      of a new member and that one on a full credit account: the new
      member ok, that one exists (exists does not break a chain).
    - test_failing_member: the same member never applied, its credit
      account at D full: X prepares it and D aborts the chain, the member
      exceeds_debits and the other linked_event_failed, nothing applied,
      nothing burned, nothing left reserved at X (the audit); sent again,
      decided again the same; once the account at D has room, the same ids
      apply.
    - test_busy_at_x: X allows one coordinator 100 of reservations
      (--tp-reserve-max): a member of 500 is refused busy there after its
      id was looked at, so the chain answers it busy and the other member
      linked_event_failed (not in_progress, which would say the outcome is
      unknown); nothing applied or reserved; 50 applies.
    Each ends with the audits and the strong conservation check.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tpkit.h"

#define LEDGER 762
#define L      RL_TRANSFER_LINKED

//  Accounts 1, 2 and 3 are D's (3: credits must not exceed debits), 4 is
//  X's.
typedef struct {
    harness_t *h;
    tpk_t tp;
    uint64_t tag;
    tk_model_t model;
    uint64_t next;
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof *ctx);
    ctx->h = harness_new ("chains_retry");
    assert_non_null (ctx->h);
    tpk_init (&ctx->tp, ctx->h, "s", 2, "500", "200");
    tpk_start (&ctx->tp, 0);
    tpk_start (&ctx->tp, 1);
    static const int owners[] = {0, 0, 0, 1};
    ctx->tag = tpk_find_tag (&ctx->tp, 0x43525459ull, owners, 4);
    for (uint64_t n = 1; n <= 4; n++) {
        rl_account_t a = tk_account (n, ctx->tag, LEDGER,
                                     n == 3 ? RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS : 0);
        rl_result_rec_t r;
        assert_int_equal (
            rl_client_create_accounts (tpk_client_for (&ctx->tp, a.id), &a, 1, &r, TK_TIMEOUT_MS),
            0);
        assert_int_equal (r.result, RL_OK);
    }
    tk_model_init (&ctx->model, ctx->tag, 4);
    ctx->next = 100;
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    tpk_quiet (&ctx->tp);
    tk_check_conservation_by (tpk_client_for, &ctx->tp, &ctx->model, 2);
    tpk_close (&ctx->tp);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

static rl_transfer_t
s_t (s_ctx_t *ctx, uint16_t flags, uint64_t debit, uint64_t credit, uint64_t amount)
{
    rl_transfer_t t = tk_transfer (tk_id (ctx->next++, ctx->tag), tk_id (debit, ctx->tag),
                                   tk_id (credit, ctx->tag), amount, LEDGER);
    t.flags = flags;
    return t;
}

//  Sends count records to shard s (D: 0, X: 1); each answer must be want[i].
static void
s_send (s_ctx_t *ctx, int s, const rl_transfer_t *t, size_t count, const uint32_t *want,
        rl_result_rec_t *r)
{
    assert_int_equal (rl_client_create_transfers (ctx->tp.clients[s], t, count, r, TK_TIMEOUT_MS),
                      0);
    for (size_t i = 0; i < count; i++) {
        if (r[i].result != want[i]) {
            fail_msg ("record %zu: %s, expected %s", i, rl_result_name (r[i].result),
                      rl_result_name (want[i]));
        }
    }
}

//  The timestamp stored for t at its debit shard (0: not stored).
static uint64_t
s_stored (s_ctx_t *ctx, const rl_transfer_t *t)
{
    rl_transfer_t out;
    assert_int_equal (rl_client_lookup_transfers (tpk_client_for (&ctx->tp, t->debit_account_id),
                                                  &t->id, 1, &out, TK_TIMEOUT_MS),
                      0);
    return out.timestamp;
}

//  Account 3 gets `amount` of debits (room for as much credit).
static void
s_room (s_ctx_t *ctx, uint64_t amount)
{
    rl_transfer_t fund = s_t (ctx, 0, 3, 2, amount);
    rl_result_rec_t r;
    s_send (ctx, 0, &fund, 1, (uint32_t[]){RL_OK}, &r);
    tk_model_apply (&ctx->model, &fund);
}

static void
test_applied_sent_again (void **state)
{
    s_ctx_t *ctx = *state;
    s_room (ctx, 10);
    rl_transfer_t c[2] = {s_t (ctx, L, 1, 2, 1), s_t (ctx, 0, 4, 3, 10)};
    rl_result_rec_t r[2];
    s_send (ctx, 0, c, 2, (uint32_t[]){RL_OK, RL_OK}, r);
    tk_model_apply (&ctx->model, &c[0]);
    tk_model_apply (&ctx->model, &c[1]);
    tpk_quiet (&ctx->tp);
    //  Account 3 is full now: its credit check fails, but the chain applied.
    for (int round = 0; round < 2; round++) {
        s_send (ctx, 0, c, 2, (uint32_t[]){RL_EXISTS, RL_EXISTS}, r);
        assert_int_equal (r[0].timestamp, s_stored (ctx, &c[0]));
        assert_int_equal (r[1].timestamp, s_stored (ctx, &c[1]));
    }
}

static void
test_member_alone_first (void **state)
{
    s_ctx_t *ctx = *state;
    s_room (ctx, 5);
    rl_transfer_t alone = s_t (ctx, 0, 4, 3, 5);
    rl_result_rec_t r[2];
    s_send (ctx, 1, &alone, 1, (uint32_t[]){RL_OK}, r);
    tk_model_apply (&ctx->model, &alone);
    tpk_quiet (&ctx->tp);
    rl_transfer_t c[2] = {s_t (ctx, L, 1, 2, 1), alone};
    s_send (ctx, 0, c, 2, (uint32_t[]){RL_OK, RL_EXISTS}, r);
    tk_model_apply (&ctx->model, &c[0]);
    assert_int_equal (r[1].timestamp, s_stored (ctx, &alone));
}

static void
test_failing_member (void **state)
{
    s_ctx_t *ctx = *state;
    rl_transfer_t c[2] = {s_t (ctx, L, 1, 2, 1), s_t (ctx, 0, 4, 3, 7)};
    rl_result_rec_t r[2];
    for (int round = 0; round < 2; round++) {
        s_send (ctx, 0, c, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_DEBITS}, r);
        assert_int_equal (s_stored (ctx, &c[0]), 0);
        assert_int_equal (s_stored (ctx, &c[1]), 0);
        tpk_quiet (&ctx->tp); //  X's reservation went with the ABORT (audit)
    }
    s_room (ctx, 7);
    s_send (ctx, 0, c, 2, (uint32_t[]){RL_OK, RL_OK}, r);
    tk_model_apply (&ctx->model, &c[0]);
    tk_model_apply (&ctx->model, &c[1]);
    assert_int_equal (r[1].timestamp, s_stored (ctx, &c[1]));
}

static void
test_busy_at_x (void **state)
{
    s_ctx_t *ctx = *state;
    tk_shard_t *x = &ctx->tp.shards[1];
    x->args[10] = "--tp-reserve-max";
    x->args[11] = "100";
    tpk_restart (&ctx->tp, 1, NULL);
    rl_transfer_t c[2] = {s_t (ctx, L, 1, 2, 1), s_t (ctx, 0, 4, 2, 500)};
    rl_result_rec_t r[2];
    for (int round = 0; round < 2; round++) {
        s_send (ctx, 0, c, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_BUSY}, r);
        assert_int_equal (s_stored (ctx, &c[0]), 0);
        assert_int_equal (s_stored (ctx, &c[1]), 0);
        tpk_quiet (&ctx->tp);
    }
    c[1].amount = 50;
    s_send (ctx, 0, c, 2, (uint32_t[]){RL_OK, RL_OK}, r);
    tk_model_apply (&ctx->model, &c[0]);
    tk_model_apply (&ctx->model, &c[1]);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_applied_sent_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_member_alone_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failing_member, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_busy_at_x, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
