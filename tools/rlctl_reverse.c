/*  rlctl_reverse.c: rlctl reverse ID [--k K] [--amount N] [--code C]
    [--user-data-32 N] (docs/cli.md, docs/payments.md).

    Reverses (refunds) transfer ID through the client library's
    rl_client_reverse (common/reversal.h): the reversing transfer debits
    the original's credit account and credits its debit account, for the
    whole amount, what is left of it after earlier partial reversals, or
    --amount. Its id is derived from (ID, K); without --k, K is the
    smallest free one. The library looks the original up, probes the
    reversal ids, and sends the reversal once if the rules hold; a refusal
    (the original not found, the amount above what is left, ...) is printed
    by name with what to do, and exits 1 without sending anything that can
    apply.

    INVARIANTS
    1. The reversal is sent once (rlctl.h, invariant 2). When its outcome
       is open (no reply, outcome_unknown), the message names the K to
       retry with: never the next one, which could refund twice.
    2. Exit 0 only for a reversal answered ok or exists.
*/
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "reversal.h"
#include "rlctl.h"

static void
s_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    const char *outcome = jsonkit_text (tree, "outcome");
    printf ("original %s", jsonkit_text (tree, "original"));
    if (!jsonkit_get (tree, "original_amount")) {
        printf (": %s\n    %s\n", outcome, jsonkit_text (tree, "hint"));
        return;
    }
    printf (" (amount %s, reversed before %s)\n", jsonkit_text (tree, "original_amount"),
            jsonkit_text (tree, "reversed_before"));
    printf ("%-34s %-4s %-34s %-34s %-20s %-24s %s\n", "reversal", "k", "debit", "credit", "amount",
            "result", "timestamp");
    printf ("%-34s %-4s %-34s %-34s %-20s %-24s %s\n", jsonkit_text (tree, "id"),
            jsonkit_text (tree, "k"), jsonkit_text (tree, "debit_account_id"),
            jsonkit_text (tree, "credit_account_id"), jsonkit_text (tree, "amount"),
            strcmp (outcome, "sent") == 0 ? jsonkit_text (tree, "result") : outcome,
            jsonkit_text (tree, "timestamp"));
    const char *hint = jsonkit_text (tree, "hint");
    if (*hint) {
        printf ("    %s\n", hint);
    }
}

//  The hint of a reversal's answer: what to do next, with the k to use.
static void
s_hint (const rl_reversal_t *r, char *out, size_t size)
{
    if (r->outcome != RL_REVERSAL_SENT) {
        if (r->outcome == RL_REVERSAL_OPEN) {
            snprintf (out, size, "%s (k %" PRIu32 " answered %s)",
                      rl_reversal_outcome_hint (r->outcome), r->open_k,
                      rl_result_name (r->open_result));
        } else {
            snprintf (out, size, "%s", rl_reversal_outcome_hint (r->outcome));
        }
        return;
    }
    uint32_t code = r->result.result;
    if (code == RL_OK || code == RL_EXISTS) {
        out[0] = 0;
    } else if (rl_result_is_retryable (code)) {
        snprintf (out, size,
                  "the outcome is open: retry with --k %" PRIu32 " and the same amount, never "
                  "with the next k (that could refund twice)",
                  r->k);
    } else if (rl_result_burns (code) == RL_BURNS_YES) {
        snprintf (out, size, "%s; k %" PRIu32 " is spent: the next reversal takes the next k",
                  rl_result_hint (code), r->k);
    } else {
        snprintf (out, size, "%s", rl_result_hint (code));
    }
}

static cJSON *
s_tree (const rl_reversal_t *r, rl_id_t original)
{
    char text[RLCTL_ID_TEXT_SIZE];
    char hint[512];
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "original", rlctl_id_text (original, text));
    jsonkit_add_string (tree, "outcome", rl_reversal_outcome_name (r->outcome));
    bool sent = r->outcome == RL_REVERSAL_SENT;
    bool ok = sent && (r->result.result == RL_OK || r->result.result == RL_EXISTS);
    jsonkit_add_bool (tree, "ok", ok);
    s_hint (r, hint, sizeof hint);
    jsonkit_add_string (tree, "hint", hint);
    if (r->original.timestamp == 0 || r->outcome == RL_REVERSAL_NOT_REVERSIBLE) {
        return tree;
    }
    jsonkit_add_u64 (tree, "original_amount", r->original.amount);
    jsonkit_add_u64 (tree, "reversed_before", r->reversed);
    jsonkit_add_u64 (tree, "taken", r->taken);
    jsonkit_add_u64 (tree, "k", r->k);
    rl_id_t id = {0};
    if (r->k < RL_REVERSAL_K_MAX && rl_reversal_id (original, r->k, &id) == 0) {
        jsonkit_add_string (tree, "id", rlctl_id_text (id, text));
    }
    jsonkit_add_string (tree, "debit_account_id",
                        rlctl_id_text (r->transfer.debit_account_id, text));
    jsonkit_add_string (tree, "credit_account_id",
                        rlctl_id_text (r->transfer.credit_account_id, text));
    jsonkit_add_u64 (tree, "amount", r->transfer.amount);
    jsonkit_add_number (tree, "ledger", r->transfer.ledger);
    jsonkit_add_number (tree, "code", r->transfer.code);
    if (sent) {
        jsonkit_add_string (tree, "result", rl_result_name (r->result.result));
        jsonkit_add_number (tree, "result_code", r->result.result);
        jsonkit_add_u64 (tree, "timestamp", r->result.timestamp);
    }
    return tree;
}

int
rlctl_cmd_reverse (rlctl_ctx_t *ctx)
{
    rl_reversal_request_t request = {
        .k = (ctx->given & RLCTL_O_K) ? ctx->k : RL_REVERSAL_K_NEXT,
        .amount = (ctx->given & RLCTL_O_AMOUNT) ? ctx->amount : 0,
        .code = (ctx->given & RLCTL_O_CODE) ? ctx->code : 0,
        .user_data_32 = ctx->user_data_32,
    };
    if (rlctl_parse_id (ctx->args[1], &request.original) || rl_id_is_zero (request.original)
        || rl_id_is_max (request.original)) {
        return rlctl_usage_error ("bad transfer id '%s': expected a decimal number, 0x and up to "
                                  "32 hex digits, or a UUID (not 0, not all ones)",
                                  ctx->args[1]);
    }
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return RLCTL_EXIT_USAGE;
    }
    rl_reversal_t r;
    int rc = rl_client_reverse (client, &request, &r, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc != 0) {
        if (r.sent) {
            //  The reversal itself was sent: its outcome is open.
            fprintf (stderr,
                     "rlctl: reverse: the reversal (k %" PRIu32 ", amount %" PRIu64
                     ") was sent and its outcome is unknown: retry with --k %" PRIu32
                     " and the same amount, never with the next k\n",
                     r.k, r.transfer.amount, r.k);
        }
        return rlctl_call_failed (ctx, "reverse", rc, false);
    }
    cJSON *tree = s_tree (&r, request.original);
    bool ok = r.outcome == RL_REVERSAL_SENT
              && (r.result.result == RL_OK || r.result.result == RL_EXISTS);
    return rlctl_emit (ctx, &tree, s_table, ok ? RLCTL_EXIT_OK : RLCTL_EXIT_FAILED);
}
