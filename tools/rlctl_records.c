/*  rlctl_records.c: the commands of rlctl that create and read records
    (docs/cli.md): create-account, transfer, balance, transfer-get and
    history.

    Each sends one request through the client library, builds one cJSON
    tree of the answer and hands it to rlctl_emit with its table printer
    (rlctl.h). Ids are strings in the tree (a JSON number cannot hold 128
    bits everywhere); amounts, balances and timestamps are exact integer
    literals.

    INVARIANTS
    1. A create is sent once (rlctl.h, invariant 2).
    2. Row i of a table or of a JSON array answers the i-th id asked.

    LIMITS
    RLCTL_IDS_MAX ids per command; history --limit 1..RL_HISTORY_LIMIT_MAX.
*/
#include <inttypes.h>
#include <stdbool.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "rlctl.h"

#define S_HISTORY_LIMIT_DEFAULT 100 //  history: transfers shown without --limit

_Static_assert(RLCTL_IDS_MAX <= RL_BATCH_RECORDS_MAX, "the ids of one command fit one request");

//  Creates ---------------------------------------------------------------------

static void
s_results_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    printf ("%-34s %-24s %s\n",
            strcmp (ctx->args[0], "create-account") == 0 ? "account" : "transfer", "result",
            "timestamp");
    const cJSON *item;
    cJSON_ArrayForEach (item, jsonkit_get (tree, "results"))
    {
        printf ("%-34s %-24s %s\n", jsonkit_text (item, "id"), jsonkit_text (item, "result"),
                jsonkit_text (item, "timestamp"));
        const char *hint = jsonkit_text (item, "hint");
        if (*hint && jsonkit_u64 (item, "code") != RL_EXISTS) {
            printf ("    %s\n", hint);
        }
    }
}

//  transfers: the request of a create_transfers (NULL for accounts), so
//  that a linked chain's members read as such: a failed chain stores
//  nothing, its failing member's code burns no id there (rl_reply_burns,
//  docs/payments.md, "Linked chains").
static int
s_emit_results (const rlctl_ctx_t *ctx, const rl_id_t *ids, const rl_transfer_t *transfers,
                const rl_result_rec_t *results, size_t count)
{
    int exit_code = RLCTL_EXIT_OK;
    char id_text[RLCTL_ID_TEXT_SIZE];
    cJSON *tree = jsonkit_object ();
    cJSON *list = jsonkit_add_array (tree, "results");
    for (size_t i = 0; i < count; i++) {
        uint32_t code = results[i].result;
        const char *hint = rl_result_hint (code);
        rl_burns_t burns = transfers ? rl_reply_burns (transfers, results, count, i)
                                     : rl_result_burns (code);
        if (burns != rl_result_burns (code)) {
            hint = "this record failed its linked chain: nothing of the chain was applied or "
                   "stored, no id is burned; fix it, then send the whole chain again with the "
                   "same ids";
        }
        if (burns != RL_BURNS_SUCCESS) {
            exit_code = RLCTL_EXIT_FAILED;
        }
        cJSON *item = jsonkit_add_object (list, NULL);
        jsonkit_add_number (item, "index", results[i].index);
        jsonkit_add_string (item, "id", rlctl_id_text (ids[i], id_text));
        jsonkit_add_string (item, "result", rl_result_name (code));
        jsonkit_add_number (item, "code", code);
        jsonkit_add_u64 (item, "timestamp", results[i].timestamp);
        jsonkit_add_string (item, "burns", rl_burns_name (burns));
        jsonkit_add_string (item, "hint", hint);
    }
    jsonkit_add_bool (tree, "ok", exit_code == RLCTL_EXIT_OK);
    return rlctl_emit (ctx, &tree, s_results_table, exit_code);
}

static int
s_require_ledger_code (const rlctl_ctx_t *ctx, const char *command)
{
    unsigned both = RLCTL_O_LEDGER | RLCTL_O_CODE;
    if ((ctx->given & both) != both) {
        return rlctl_usage_error ("%s needs --ledger L and --code C (both not 0)", command);
    }
    return 0;
}

int
rlctl_cmd_create_account (rlctl_ctx_t *ctx)
{
    int rc = s_require_ledger_code (ctx, "create-account");
    if (rc) {
        return rc;
    }
    static rl_id_t ids[RLCTL_IDS_MAX];
    static rl_account_t accounts[RLCTL_IDS_MAX];
    static rl_result_rec_t results[RLCTL_IDS_MAX];
    size_t count = 0;
    if ((rc = rlctl_parse_ids (ctx, 1, ids, &count))) {
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        accounts[i] = (rl_account_t){
            .id = ids[i],
            .user_data_128 = ctx->user_data_128,
            .user_data_64 = ctx->user_data_64,
            .user_data_32 = ctx->user_data_32,
            .ledger = ctx->ledger,
            .code = ctx->code,
            .flags = ctx->account_flags,
        };
    }
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return RLCTL_EXIT_USAGE;
    }
    rc = rl_client_create_accounts (client, accounts, count, results, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return rlctl_call_failed (ctx, "create-account", rc, true);
    }
    return s_emit_results (ctx, ids, NULL, results, count);
}

//  Parses argument `at` as an id into *id: 0, or the usage error's exit code.
static int
s_arg_id (const rlctl_ctx_t *ctx, size_t at, rl_id_t *id)
{
    if (rlctl_parse_id (ctx->args[at], id)) {
        return rlctl_usage_error ("bad id '%s': expected a decimal number, 0x and up to 32 "
                                  "hex digits, or a UUID",
                                  ctx->args[at]);
    }
    return 0;
}

static int
s_arg_amount (const rlctl_ctx_t *ctx, size_t at, uint64_t *amount)
{
    if (rlctl_parse_u64 (ctx->args[at], amount)) {
        return rlctl_usage_error ("bad amount '%s': expected a whole number of minor units "
                                  "(cents), up to 2^64 - 1",
                                  ctx->args[at]);
    }
    return 0;
}

//  Sends the transfers in one request and prints their results.
static int
s_send_transfers (rlctl_ctx_t *ctx, const char *command, const rl_transfer_t *transfers,
                  size_t count)
{
    rl_id_t ids[RLCTL_TRANSFERS_MAX];
    rl_result_rec_t results[RLCTL_TRANSFERS_MAX];
    assert (count >= 1 && count <= RLCTL_TRANSFERS_MAX);
    for (size_t i = 0; i < count; i++) {
        ids[i] = transfers[i].id;
    }
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return RLCTL_EXIT_USAGE;
    }
    int rc = rl_client_create_transfers (client, transfers, count, results, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return rlctl_call_failed (ctx, command, rc, true);
    }
    return s_emit_results (ctx, ids, transfers, results, count);
}

//  transfer: one or more records (ID DEBIT CREDIT AMOUNT each) in one
//  request; --pending authorises each, --linked makes them one chain.
int
rlctl_cmd_transfer (rlctl_ctx_t *ctx)
{
    int rc = s_require_ledger_code (ctx, "transfer");
    if (rc) {
        return rc;
    }
    size_t args = ctx->arg_count - 1;
    if (args % 4 != 0) {
        return rlctl_usage_error ("transfer takes %s: four arguments per transfer",
                                  "ID DEBIT CREDIT AMOUNT");
    }
    bool pending = (ctx->given & RLCTL_O_PENDING) != 0;
    if ((ctx->given & RLCTL_O_TIMEOUT_S) && !pending) {
        return rlctl_usage_error ("--timeout is a pending transfer's: give %s too", "--pending");
    }
    size_t count = args / 4;
    rl_transfer_t transfers[RLCTL_TRANSFERS_MAX];
    for (size_t t = 0; t < count; t++) {
        rl_transfer_t *transfer = &transfers[t];
        *transfer = (rl_transfer_t){
            .user_data_128 = ctx->user_data_128,
            .user_data_64 = ctx->user_data_64,
            .user_data_32 = ctx->user_data_32,
            .ledger = ctx->ledger,
            .code = ctx->code,
            .timeout = pending ? ctx->timeout_s : 0,
            .flags = (uint16_t) ((pending ? RL_TRANSFER_PENDING : 0)
                                 | ((ctx->given & RLCTL_O_LINKED) && t + 1 < count
                                        ? RL_TRANSFER_LINKED
                                        : 0)),
        };
        size_t at = 1 + 4 * t;
        if ((rc = s_arg_id (ctx, at, &transfer->id))
            || (rc = s_arg_id (ctx, at + 1, &transfer->debit_account_id))
            || (rc = s_arg_id (ctx, at + 2, &transfer->credit_account_id))
            || (rc = s_arg_amount (ctx, at + 3, &transfer->amount))) {
            return rc;
        }
    }
    return s_send_transfers (ctx, "transfer", transfers, count);
}

//  post / void: ID PENDING_ID DEBIT [AMOUNT]; the rest is inherited from
//  the pending transfer (docs/protocol.md, "Pending transfers").
static int
s_resolve (rlctl_ctx_t *ctx, const char *command, uint16_t flag)
{
    rl_transfer_t t = {
        .user_data_128 = ctx->user_data_128,
        .user_data_64 = ctx->user_data_64,
        .user_data_32 = ctx->user_data_32,
        .flags = flag,
    };
    int rc = 0;
    if ((rc = s_arg_id (ctx, 1, &t.id)) || (rc = s_arg_id (ctx, 2, &t.pending_id))
        || (rc = s_arg_id (ctx, 3, &t.debit_account_id))
        || (ctx->arg_count > 4 && (rc = s_arg_amount (ctx, 4, &t.amount)))) {
        return rc;
    }
    return s_send_transfers (ctx, command, &t, 1);
}

int
rlctl_cmd_post (rlctl_ctx_t *ctx)
{
    return s_resolve (ctx, "post", RL_TRANSFER_POST_PENDING_TRANSFER);
}

int
rlctl_cmd_void (rlctl_ctx_t *ctx)
{
    return s_resolve (ctx, "void", RL_TRANSFER_VOID_PENDING_TRANSFER);
}

//  Looks up the ids of the command line, accounts or transfers, into `out`
//  (of RLCTL_IDS_MAX records): 0 with *count_p set, or the exit code (bad
//  ids, no client, or the call's failure, reported).
static int
s_lookup (rlctl_ctx_t *ctx, const char *command, bool accounts, rl_id_t *ids, size_t *count_p,
          void *out)
{
    int rc = rlctl_parse_ids (ctx, 1, ids, count_p);
    if (rc) {
        return rc;
    }
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return RLCTL_EXIT_USAGE;
    }
    rc = accounts ? rl_client_lookup_accounts (client, ids, *count_p, out, ctx->timeout_ms)
                  : rl_client_lookup_transfers (client, ids, *count_p, out, ctx->timeout_ms);
    rl_client_destroy (&client);
    return rc ? rlctl_call_failed (ctx, command, rc, false) : 0;
}

//  Accounts --------------------------------------------------------------------

static void
s_add_account (cJSON *list, const rl_account_t *a, rl_id_t asked)
{
    char text[RLCTL_ID_TEXT_SIZE];
    char balance[RLCTL_NUMBER_TEXT_SIZE];
    cJSON *item = jsonkit_add_object (list, NULL);
    jsonkit_add_string (item, "id", rlctl_id_text (asked, text));
    jsonkit_add_bool (item, "found", a->timestamp != 0);
    if (!a->timestamp) {
        return;
    }
    jsonkit_add_number (item, "ledger", a->ledger);
    jsonkit_add_number (item, "code", a->code);
    jsonkit_add_number (item, "flags", a->flags);
    jsonkit_add_string (item, "flags_name", rlctl_account_flags_text (a->flags));
    jsonkit_add_u64 (item, "debits_posted", a->debits_posted);
    jsonkit_add_u64 (item, "credits_posted", a->credits_posted);
    jsonkit_add_u64 (item, "debits_pending", a->debits_pending);
    jsonkit_add_u64 (item, "credits_pending", a->credits_pending);
    jsonkit_add_u64 (item, "debits_reserved", a->debits_reserved);
    jsonkit_add_u64 (item, "credits_reserved", a->credits_reserved);
    jsonkit_add_integer_text (item, "balance",
                              rlctl_balance_text (a->credits_posted, a->debits_posted, balance));
    jsonkit_add_string (item, "user_data_128", rlctl_id_text (a->user_data_128, text));
    jsonkit_add_u64 (item, "user_data_64", a->user_data_64);
    jsonkit_add_number (item, "user_data_32", a->user_data_32);
    jsonkit_add_u64 (item, "timestamp", a->timestamp);
}

static void
s_accounts_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%-34s %8s %16s %16s %11s %11s %17s\n", "account", "ledger", "debits posted",
            "credits posted", "pending d/c", "reserved d/c", "balance (c - d)");
    const cJSON *a;
    cJSON_ArrayForEach (a, jsonkit_get (tree, "accounts"))
    {
        if (!jsonkit_true (a, "found")) {
            printf ("%-34s not found: no such account (create it with 'rlctl create-account')\n",
                    jsonkit_text (a, "id"));
            continue;
        }
        char pending[2 * RLCTL_NUMBER_TEXT_SIZE];
        char reserved[2 * RLCTL_NUMBER_TEXT_SIZE];
        snprintf (pending, sizeof pending, "%s/%s", jsonkit_text (a, "debits_pending"),
                  jsonkit_text (a, "credits_pending"));
        snprintf (reserved, sizeof reserved, "%s/%s", jsonkit_text (a, "debits_reserved"),
                  jsonkit_text (a, "credits_reserved"));
        printf ("%-34s %8" PRIu64 " %16s %16s %11s %11s %17s\n", jsonkit_text (a, "id"),
                jsonkit_u64 (a, "ledger"), jsonkit_text (a, "debits_posted"),
                jsonkit_text (a, "credits_posted"), pending, reserved, jsonkit_text (a, "balance"));
    }
}

int
rlctl_cmd_balance (rlctl_ctx_t *ctx)
{
    static rl_id_t ids[RLCTL_IDS_MAX];
    static rl_account_t accounts[RLCTL_IDS_MAX];
    size_t count = 0;
    int rc = s_lookup (ctx, "balance", true, ids, &count, accounts);
    if (rc) {
        return rc;
    }
    int exit_code = RLCTL_EXIT_OK;
    cJSON *tree = jsonkit_object ();
    cJSON *list = jsonkit_add_array (tree, "accounts");
    for (size_t i = 0; i < count; i++) {
        if (!accounts[i].timestamp) {
            exit_code = RLCTL_EXIT_FAILED;
        }
        s_add_account (list, &accounts[i], ids[i]);
    }
    return rlctl_emit (ctx, &tree, s_accounts_table, exit_code);
}

//  Transfers -------------------------------------------------------------------

static void
s_add_transfer (cJSON *list, const rl_transfer_t *t, rl_id_t asked, const char *direction)
{
    char text[RLCTL_ID_TEXT_SIZE];
    cJSON *item = jsonkit_add_object (list, NULL);
    jsonkit_add_string (item, "id", rlctl_id_text (asked, text));
    jsonkit_add_bool (item, "found", t->timestamp != 0);
    if (!t->timestamp) {
        return;
    }
    jsonkit_add_string (item, "debit_account_id", rlctl_id_text (t->debit_account_id, text));
    jsonkit_add_string (item, "credit_account_id", rlctl_id_text (t->credit_account_id, text));
    jsonkit_add_u64 (item, "amount", t->amount);
    jsonkit_add_number (item, "ledger", t->ledger);
    jsonkit_add_number (item, "code", t->code);
    jsonkit_add_number (item, "flags", t->flags);
    jsonkit_add_string (item, "user_data_128", rlctl_id_text (t->user_data_128, text));
    jsonkit_add_u64 (item, "user_data_64", t->user_data_64);
    jsonkit_add_number (item, "user_data_32", t->user_data_32);
    jsonkit_add_u64 (item, "timestamp", t->timestamp);
    if (direction) {
        jsonkit_add_string (item, "direction", direction);
    }
}

//  The rows of transfer-get (with_direction false) and history.
static void
s_transfer_rows (const cJSON *list, bool with_direction)
{
    printf ("%-24s %-20s %-22s %-22s %-22s %16s %8s %5s%s\n", "time (UTC)", "timestamp (ns)",
            "transfer", "debit", "credit", "amount", "ledger", "code",
            with_direction ? "  side" : "");
    const cJSON *t;
    cJSON_ArrayForEach (t, list)
    {
        if (!jsonkit_true (t, "found")) {
            printf ("%-24s %-20s %-22s not found: no such transfer\n", "-", "-",
                    jsonkit_text (t, "id"));
            continue;
        }
        char when[40];
        const char *direction = jsonkit_text (t, "direction");
        printf ("%-24s %-20s %-22s %-22s %-22s %16s %8" PRIu64 " %5" PRIu64 "%s%s\n",
                rlctl_time_text (jsonkit_u64 (t, "timestamp"), when, sizeof when),
                jsonkit_text (t, "timestamp"), jsonkit_text (t, "id"),
                jsonkit_text (t, "debit_account_id"), jsonkit_text (t, "credit_account_id"),
                jsonkit_text (t, "amount"), jsonkit_u64 (t, "ledger"), jsonkit_u64 (t, "code"),
                *direction ? "  " : "", direction);
    }
}

static void
s_transfers_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    s_transfer_rows (jsonkit_get (tree, "transfers"), false);
}

int
rlctl_cmd_transfer_get (rlctl_ctx_t *ctx)
{
    static rl_id_t ids[RLCTL_IDS_MAX];
    static rl_transfer_t transfers[RLCTL_IDS_MAX];
    size_t count = 0;
    int rc = s_lookup (ctx, "transfer-get", false, ids, &count, transfers);
    if (rc) {
        return rc;
    }
    int exit_code = RLCTL_EXIT_OK;
    cJSON *tree = jsonkit_object ();
    cJSON *list = jsonkit_add_array (tree, "transfers");
    for (size_t i = 0; i < count; i++) {
        if (!transfers[i].timestamp) {
            exit_code = RLCTL_EXIT_FAILED;
        }
        s_add_transfer (list, &transfers[i], ids[i], NULL);
    }
    return rlctl_emit (ctx, &tree, s_transfers_table, exit_code);
}

static void
s_history_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    const cJSON *list = jsonkit_get (tree, "transfers");
    s_transfer_rows (list, true);
    size_t count = (size_t) cJSON_GetArraySize (list);
    printf ("(%zu transfer%s of account %s%s)\n", count, count == 1 ? "" : "s",
            jsonkit_text (tree, "account"),
            count == jsonkit_u64 (tree, "limit") ? "; more may follow: page with --from/--to past "
                                                   "the last timestamp"
                                                 : "");
}

int
rlctl_cmd_history (rlctl_ctx_t *ctx)
{
    rl_filter_t filter = {
        .timestamp_min = ctx->timestamp_min,
        .timestamp_max = ctx->timestamp_max,
        .limit = ctx->given & RLCTL_O_LIMIT ? ctx->limit : S_HISTORY_LIMIT_DEFAULT,
        .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS,
    };
    if (rlctl_parse_id (ctx->args[1], &filter.account_id)) {
        return rlctl_usage_error ("bad id '%s': expected a decimal number, 0x and up to 32 hex "
                                  "digits, or a UUID",
                                  ctx->args[1]);
    }
    unsigned sides = ctx->given & (RLCTL_O_DEBITS | RLCTL_O_CREDITS);
    if (sides == RLCTL_O_DEBITS) {
        filter.flags = RL_FILTER_DEBITS;
    } else if (sides == RLCTL_O_CREDITS) {
        filter.flags = RL_FILTER_CREDITS;
    }
    if (ctx->given & RLCTL_O_REVERSE) {
        filter.flags |= RL_FILTER_REVERSED;
    }
    if (filter.timestamp_min && filter.timestamp_max
        && filter.timestamp_min > filter.timestamp_max) {
        return rlctl_usage_error ("%s", "--from must not be after --to");
    }
    static rl_transfer_t transfers[RL_HISTORY_LIMIT_MAX];
    size_t count = 0;
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return RLCTL_EXIT_USAGE;
    }
    int rc = rl_client_get_account_transfers (client, &filter, transfers, &count, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return rlctl_call_failed (ctx, "history", rc, false);
    }
    char text[RLCTL_ID_TEXT_SIZE];
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "account", rlctl_id_text (filter.account_id, text));
    jsonkit_add_number (tree, "limit", filter.limit);
    cJSON *list = jsonkit_add_array (tree, "transfers");
    for (size_t i = 0; i < count; i++) {
        bool debit = rl_id_eq (transfers[i].debit_account_id, filter.account_id);
        s_add_transfer (list, &transfers[i], transfers[i].id, debit ? "debit" : "credit");
    }
    return rlctl_emit (ctx, &tree, s_history_table, RLCTL_EXIT_OK);
}
