/*  test_tp_input.c: a shard refuses two-phase records that no coordinator
    sends (docs/protocol.md, "Message-level status", check 8).

    One real shard, sent raw frames as a peer or an operator would send
    them: PREPAREs naming the zero or the all-ones id (transfer, debit or
    credit account), moving amount 0, with an unknown flag or a non-zero
    reserved field; DECIDEs, outcome queries and resolves naming the zero
    or the all-ones transfer id (a DECIDE abort of transfer 0 used to stop
    the shard on an assertion). Each frame gets a `malformed` error reply
    (an acknowledgement, a reply only, `unknown_operation`);
    then the shard still answers, counted them, holds no prepared record,
    its audit is clean, the balances are those of the one transfer, and
    the conservation check passes.
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
#include "testkit.h"

#define TAG    0x5450494e50ull //  "TPINP"
#define LEDGER 840

static const rl_id_t s_zero = {0, 0};
static const rl_id_t s_max = {UINT64_MAX, UINT64_MAX};

//  Sends one frame of `count` records and returns the reply's status.
static uint32_t
s_send (zsock_t *dealer, uint16_t op, const uint8_t *body, size_t body_size, uint32_t count,
        uint64_t request_id)
{
    uint8_t frame[RL_HEADER_SIZE + 4 * RL_PREPARE_SIZE];
    assert_true (body_size <= sizeof frame - RL_HEADER_SIZE);
    size_t size = tk_request_header (frame, op, request_id, count);
    memcpy (frame + size, body, body_size);
    assert_int_equal (zsock_send (dealer, "b", frame, size + body_size), 0);
    zframe_t *reply = zframe_recv (dealer);
    assert_non_null (reply);
    rl_header_t h;
    const uint8_t *reply_body = NULL;
    size_t reply_size = 0;
    assert_int_equal (
        codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &reply_body, &reply_size),
        RL_STATUS_OK);
    assert_int_equal (h.request_id, request_id);
    assert_int_equal (h.operation, op);
    zframe_destroy (&reply);
    return h.status;
}

static rl_prepare_rec_t
s_prepare (const rl_transfer_t *t)
{
    rl_prepare_rec_t rec = {.transfer = *t};
    rec.tp.id = t->id;
    rec.tp.attempt = (rl_attempt_t){.counter = 1, .nonce = 0x1234, .seq = 1};
    rec.tp.amount = t->amount;
    rec.tp.debit_account_id = t->debit_account_id;
    snprintf (rec.tp.coordinator, sizeof rec.tp.coordinator, "s1");
    return rec;
}

static void
test_tp_bad_records (void **state)
{
    (void) state;
    harness_t *h = harness_new ("tp_input");
    assert_non_null (h);
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    assert_non_null (client);

    rl_account_t accounts[2] = {tk_account (1, TAG, LEDGER, 0), tk_account (2, TAG, LEDGER, 0)};
    rl_result_rec_t results[2];
    assert_int_equal (rl_client_create_accounts (client, accounts, 2, results, TK_TIMEOUT_MS), 0);
    assert_int_equal (results[0].result, RL_OK);
    assert_int_equal (results[1].result, RL_OK);
    rl_transfer_t applied = tk_transfer (tk_id (7, TAG), tk_id (1, TAG), tk_id (2, TAG), 500,
                                         LEDGER);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_transfers (client, &applied, 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (result.result, RL_OK);
    rl_status_rec_t before;
    assert_int_equal (rl_client_status (client, &before, TK_TIMEOUT_MS), 0);

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    tk_connect (dealer, shard.endpoint);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    uint64_t request_id = 100;
    uint64_t refused = 0;

    //  PREPAREs: a valid record first and last, the bad one in the middle,
    //  so that one bad record refuses the whole frame.
    rl_transfer_t t = tk_transfer (tk_id (8, TAG), tk_id (3, TAG), tk_id (2, TAG), 40, LEDGER);
    for (int defect = 0; defect < 15; defect++) {
        rl_prepare_rec_t bad = s_prepare (&t);
        switch (defect) {
            case 0:
                bad.tp.id = bad.transfer.id = s_zero;
                break;
            case 1:
                bad.tp.id = bad.transfer.id = s_max;
                break;
            case 2:
                bad.transfer.id = s_zero;
                break;
            case 3:
                bad.transfer.debit_account_id = s_zero;
                break;
            case 4:
                bad.transfer.debit_account_id = s_max;
                break;
            case 5:
                bad.transfer.credit_account_id = s_zero;
                break;
            case 6:
                bad.transfer.credit_account_id = s_max;
                break;
            case 7:
                bad.transfer.amount = 0;
                break;
            case 8:
                bad.transfer.flags = 0x2000; //  bits 14 and 15 name debit legs
                break;
            case 9:
                bad.transfer.pending_id = tk_id (1, TAG);
                break;
            case 10:
                bad.transfer.timeout = 60;
                break;
            case 11:
                bad.transfer.reserved = 1;
                break;
            case 12:
                bad.reserved[0] = 1;
                break;
            case 13:
                bad.reserved[1] = UINT64_MAX;
                break;
            default:
                bad.tp.id = s_max;
                break;
        }
        rl_transfer_t other = tk_transfer (tk_id (9, TAG), tk_id (3, TAG), tk_id (2, TAG), 40,
                                           LEDGER);
        rl_prepare_rec_t good = s_prepare (&other);
        uint8_t body[3 * RL_PREPARE_SIZE];
        codec_encode_prepare (&good, body);
        codec_encode_prepare (&bad, body + RL_PREPARE_SIZE);
        codec_encode_prepare (&good, body + 2 * RL_PREPARE_SIZE);
        if (s_send (dealer, RL_OP_PREPARE, body, sizeof body, 3, request_id++)
            != RL_STATUS_MALFORMED) {
            fail_msg ("PREPARE with defect %d was not refused malformed", defect);
        }
        refused++;
    }

    //  DECIDE (commit and abort), outcome query and resolve of transfer 0
    //  and of the all-ones transfer.
    const uint16_t ops[] = {RL_OP_DECIDE, RL_OP_DECIDE, RL_OP_OUTCOME_QUERY, RL_OP_RESOLVE};
    const uint32_t states[] = {RL_TP_ABORT, RL_TP_COMMIT, 0, RL_TP_ABORT};
    for (size_t k = 0; k < 4; k++) {
        for (int which = 0; which < 2; which++) {
            rl_tp_rec_t tp = s_prepare (&t).tp;
            tp.id = which ? s_max : s_zero;
            tp.state = states[k];
            tp.result = ops[k] == RL_OP_RESOLVE ? RL_RESOLVE_FORCE : 0;
            snprintf (tp.coordinator, sizeof tp.coordinator, "gone");
            uint8_t body[RL_TP_SIZE];
            codec_encode_tp (&tp, body);
            if (s_send (dealer, ops[k], body, sizeof body, 1, request_id++)
                != RL_STATUS_MALFORMED) {
                fail_msg ("%s of the %s id was not refused malformed", rl_op_name (ops[k]),
                          which ? "all-ones" : "zero");
            }
            refused++;
        }
    }
    //  An acknowledgement is only ever a reply (to DECIDE): sent as a
    //  request, with either id, it gets unknown_operation.
    for (int which = 0; which < 2; which++) {
        rl_tp_rec_t tp = s_prepare (&t).tp;
        tp.id = which ? s_max : s_zero;
        tp.state = RL_TP_ACKED;
        uint8_t body[RL_TP_SIZE];
        codec_encode_tp (&tp, body);
        if (s_send (dealer, RL_OP_ACK, body, sizeof body, 1, request_id++)
            != RL_STATUS_UNKNOWN_OPERATION) {
            fail_msg ("ack of the %s id was not refused", which ? "all-ones" : "zero");
        }
        refused++;
    }
    zsock_destroy (&dealer);

    //  Nothing changed, and the shard is alive and counted every refusal.
    rl_status_rec_t after;
    assert_int_equal (rl_client_status (client, &after, TK_TIMEOUT_MS), 0);
    assert_int_equal (after.malformed - before.malformed, refused);
    rl_in_doubt_rec_t *listed = NULL;
    size_t listed_count = 0;
    assert_int_equal (rl_client_in_doubt (client, &listed, &listed_count, TK_TIMEOUT_MS), 0);
    assert_int_equal (listed_count, 0);
    free (listed);
    rl_audit_rec_t audit;
    assert_int_equal (rl_client_audit (client, &audit, TK_TIMEOUT_MS), 0);
    assert_true (audit.ok);
    rl_id_t ids[2] = {tk_id (1, TAG), tk_id (2, TAG)};
    rl_account_t balances[2];
    assert_int_equal (rl_client_lookup_accounts (client, ids, 2, balances, TK_TIMEOUT_MS), 0);
    assert_int_equal (balances[0].debits_posted, 500);
    assert_int_equal (balances[1].credits_posted, 500);
    assert_int_equal (balances[1].credits_reserved, 0);
    tk_model_t model;
    tk_model_init (&model, TAG, 2);
    tk_model_apply (&model, &applied);
    tk_check_conservation (client, &model, 1);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0); //  a clean exit, no assertion
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_tp_bad_records),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
