/*  proto.c: the names of every code in proto.h, and what a result means for
    the id it answers.

    DESIGN
    Names are the enum names without their prefix, in lower case
    ("exceeds_credits" for RL_EXCEEDS_CREDITS, "bad_version" for
    RL_STATUS_BAD_VERSION). They are part of the protocol: logs, the CLI,
    docs/protocol.md and the Python client all use them, and
    tests/test_codec.c checks them against proto.h and the doc. A value
    with no name (a newer peer, garbage) is "unknown", never NULL.

    INVARIANTS
    1. Every function here returns a static string and accepts any u32.
    2. rl_result_is_retryable is true exactly for the codes that leave the
       id free: infrastructure (2..15) and the checks that depend on the
       record alone (id validation 16..17, field validation 40..57 and
       100..103). Everything else is final for the id: ok and exists
       (success), exists_with_different_* (the id is taken), and the
       state-dependent business failures 60..88, which are remembered.
       A value this version does not define counts as infrastructure: the
       safe reading is "retry with the same id", never "pay again".
*/
#include "proto.h"

#include <string.h>

#define RL_NAME(value, name)                                                                       \
    case value:                                                                                    \
        return name

const char *
rl_result_name (uint32_t result)
{
    switch (result) {
        RL_NAME (RL_OK, "ok");
        RL_NAME (RL_EXISTS, "exists");
        RL_NAME (RL_WRONG_SHARD, "wrong_shard");
        RL_NAME (RL_BUSY, "busy");
        RL_NAME (RL_ABORTED, "aborted");
        RL_NAME (RL_OUTCOME_UNKNOWN, "outcome_unknown");
        RL_NAME (RL_IN_PROGRESS, "in_progress");
        RL_NAME (RL_IN_DOUBT, "in_doubt");
        RL_NAME (RL_FROZEN, "frozen");
        RL_NAME (RL_STORAGE_ERROR, "storage_error");
        RL_NAME (RL_LINKED_EVENT_FAILED, "linked_event_failed");
        RL_NAME (RL_LINKED_EVENT_CHAIN_OPEN, "linked_event_chain_open");
        RL_NAME (RL_ID_MUST_NOT_BE_ZERO, "id_must_not_be_zero");
        RL_NAME (RL_ID_MUST_NOT_BE_INT_MAX, "id_must_not_be_int_max");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_FLAGS, "exists_with_different_flags");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID,
                 "exists_with_different_debit_account_id");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID,
                 "exists_with_different_credit_account_id");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_AMOUNT, "exists_with_different_amount");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_PENDING_ID, "exists_with_different_pending_id");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_USER_DATA_128, "exists_with_different_user_data_128");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_USER_DATA_64, "exists_with_different_user_data_64");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_USER_DATA_32, "exists_with_different_user_data_32");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_TIMEOUT, "exists_with_different_timeout");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_LEDGER, "exists_with_different_ledger");
        RL_NAME (RL_EXISTS_WITH_DIFFERENT_CODE, "exists_with_different_code");
        RL_NAME (RL_TIMESTAMP_MUST_BE_ZERO, "timestamp_must_be_zero");
        RL_NAME (RL_RESERVED_FIELD, "reserved_field");
        RL_NAME (RL_RESERVED_FLAG, "reserved_flag");
        RL_NAME (RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE, "flags_are_mutually_exclusive");
        RL_NAME (RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO, "debit_account_id_must_not_be_zero");
        RL_NAME (RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX, "debit_account_id_must_not_be_int_max");
        RL_NAME (RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO, "credit_account_id_must_not_be_zero");
        RL_NAME (RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX, "credit_account_id_must_not_be_int_max");
        RL_NAME (RL_ACCOUNTS_MUST_BE_DIFFERENT, "accounts_must_be_different");
        RL_NAME (RL_PENDING_ID_MUST_BE_ZERO, "pending_id_must_be_zero");
        RL_NAME (RL_PENDING_ID_MUST_NOT_BE_ZERO, "pending_id_must_not_be_zero");
        RL_NAME (RL_PENDING_ID_MUST_NOT_BE_INT_MAX, "pending_id_must_not_be_int_max");
        RL_NAME (RL_PENDING_ID_MUST_BE_DIFFERENT, "pending_id_must_be_different");
        RL_NAME (RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER, "timeout_reserved_for_pending_transfer");
        RL_NAME (RL_AMOUNT_MUST_NOT_BE_ZERO, "amount_must_not_be_zero");
        RL_NAME (RL_LEDGER_MUST_NOT_BE_ZERO, "ledger_must_not_be_zero");
        RL_NAME (RL_CODE_MUST_NOT_BE_ZERO, "code_must_not_be_zero");
        RL_NAME (RL_NOT_SUPPORTED, "not_supported");
        RL_NAME (RL_DEBIT_ACCOUNT_NOT_FOUND, "debit_account_not_found");
        RL_NAME (RL_CREDIT_ACCOUNT_NOT_FOUND, "credit_account_not_found");
        RL_NAME (RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER, "accounts_must_have_the_same_ledger");
        RL_NAME (RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
                 "transfer_must_have_the_same_ledger_as_accounts");
        RL_NAME (RL_PENDING_TRANSFER_NOT_FOUND, "pending_transfer_not_found");
        RL_NAME (RL_PENDING_TRANSFER_NOT_PENDING, "pending_transfer_not_pending");
        RL_NAME (RL_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID,
                 "pending_transfer_has_different_debit_account_id");
        RL_NAME (RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
                 "pending_transfer_has_different_credit_account_id");
        RL_NAME (RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER, "pending_transfer_has_different_ledger");
        RL_NAME (RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE, "pending_transfer_has_different_code");
        RL_NAME (RL_EXCEEDS_PENDING_TRANSFER_AMOUNT, "exceeds_pending_transfer_amount");
        RL_NAME (RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT, "pending_transfer_has_different_amount");
        RL_NAME (RL_PENDING_TRANSFER_ALREADY_POSTED, "pending_transfer_already_posted");
        RL_NAME (RL_PENDING_TRANSFER_ALREADY_VOIDED, "pending_transfer_already_voided");
        RL_NAME (RL_PENDING_TRANSFER_EXPIRED, "pending_transfer_expired");
        RL_NAME (RL_OVERFLOWS_DEBITS_PENDING, "overflows_debits_pending");
        RL_NAME (RL_OVERFLOWS_CREDITS_PENDING, "overflows_credits_pending");
        RL_NAME (RL_OVERFLOWS_DEBITS_POSTED, "overflows_debits_posted");
        RL_NAME (RL_OVERFLOWS_CREDITS_POSTED, "overflows_credits_posted");
        RL_NAME (RL_OVERFLOWS_DEBITS, "overflows_debits");
        RL_NAME (RL_OVERFLOWS_CREDITS, "overflows_credits");
        RL_NAME (RL_OVERFLOWS_TIMEOUT, "overflows_timeout");
        RL_NAME (RL_EXCEEDS_CREDITS, "exceeds_credits");
        RL_NAME (RL_EXCEEDS_DEBITS, "exceeds_debits");
        RL_NAME (RL_DEBITS_PENDING_MUST_BE_ZERO, "debits_pending_must_be_zero");
        RL_NAME (RL_DEBITS_POSTED_MUST_BE_ZERO, "debits_posted_must_be_zero");
        RL_NAME (RL_CREDITS_PENDING_MUST_BE_ZERO, "credits_pending_must_be_zero");
        RL_NAME (RL_CREDITS_POSTED_MUST_BE_ZERO, "credits_posted_must_be_zero");
        default:
            return "unknown";
    }
}

const char *
rl_status_name (uint32_t status)
{
    switch (status) {
        RL_NAME (RL_STATUS_OK, "ok");
        RL_NAME (RL_STATUS_MALFORMED, "malformed");
        RL_NAME (RL_STATUS_BAD_MAGIC, "bad_magic");
        RL_NAME (RL_STATUS_BAD_VERSION, "bad_version");
        RL_NAME (RL_STATUS_UNKNOWN_OPERATION, "unknown_operation");
        RL_NAME (RL_STATUS_TOO_MANY_RECORDS, "too_many_records");
        RL_NAME (RL_STATUS_BUSY, "busy");
        RL_NAME (RL_STATUS_STORAGE_ERROR, "storage_error");
        RL_NAME (RL_STATUS_EPOCH_NOT_NEWER, "epoch_not_newer");
        RL_NAME (RL_STATUS_BAD_RING, "bad_ring");
        RL_NAME (RL_STATUS_BAD_FILTER, "bad_filter");
        RL_NAME (RL_STATUS_UNAVAILABLE, "unavailable");
        RL_NAME (RL_STATUS_TIMEOUT, "timeout");
        RL_NAME (RL_STATUS_DUPLICATE_ID, "duplicate_id");
        RL_NAME (RL_STATUS_WRONG_SHARD, "wrong_shard");
        default:
            return "unknown";
    }
}

const char *
rl_op_name (uint32_t op)
{
    switch (op) {
        RL_NAME (RL_OP_CREATE_ACCOUNTS, "create_accounts");
        RL_NAME (RL_OP_CREATE_TRANSFERS, "create_transfers");
        RL_NAME (RL_OP_LOOKUP_ACCOUNTS, "lookup_accounts");
        RL_NAME (RL_OP_LOOKUP_TRANSFERS, "lookup_transfers");
        RL_NAME (RL_OP_GET_ACCOUNT_TRANSFERS, "get_account_transfers");
        RL_NAME (RL_OP_STATUS, "status");
        RL_NAME (RL_OP_LOAD_RING, "load_ring");
        RL_NAME (RL_OP_GET_RING, "get_ring");
        RL_NAME (RL_OP_PREPARE, "prepare");
        RL_NAME (RL_OP_DECIDE, "decide");
        RL_NAME (RL_OP_ACK, "ack");
        RL_NAME (RL_OP_OUTCOME_QUERY, "outcome_query");
        RL_NAME (RL_OP_IN_DOUBT, "in_doubt");
        RL_NAME (RL_OP_AUDIT, "audit");
        RL_NAME (RL_OP_RESOLVE, "resolve");
        default:
            return "unknown";
    }
}

const char *
rl_durability_name (uint32_t durability)
{
    switch (durability) {
        RL_NAME (RL_DURABILITY_SYNC, "sync");
        RL_NAME (RL_DURABILITY_NOSYNC, "nosync (benchmark only)");
        RL_NAME (RL_DURABILITY_SYNC_MANUAL_WAL, "sync, manual WAL flush");
        default:
            return "unknown";
    }
}

bool
rl_result_is_retryable (uint32_t result)
{
    if (strcmp (rl_result_name (result), "unknown") == 0) {
        return true; //  a code this version does not know: never assume the id is spent
    }
    if (result >= RL_WRONG_SHARD && result <= 15) {
        return true; //  infrastructure, including codes 12..15 kept for it
    }
    if (result == RL_ID_MUST_NOT_BE_ZERO || result == RL_ID_MUST_NOT_BE_INT_MAX) {
        return true; //  id validation
    }
    if (result >= RL_TIMESTAMP_MUST_BE_ZERO && result <= RL_NOT_SUPPORTED) {
        return true; //  field validation of transfers and accounts
    }
    if (result >= RL_DEBITS_PENDING_MUST_BE_ZERO && result <= RL_CREDITS_POSTED_MUST_BE_ZERO) {
        return true; //  field validation of accounts
    }
    return false;
}

const char *
rl_tp_state_name (uint32_t state)
{
    switch (state) {
        case RL_TP_COMMIT:
            return "commit";
        case RL_TP_ABORT:
            return "abort";
        case RL_TP_PENDING:
            return "pending";
        case RL_TP_PREPARED:
            return "prepared";
        case RL_TP_REFUSED:
            return "refused";
        case RL_TP_ACKED:
            return "acked";
        case RL_TP_NOT_ACKED:
            return "not_acked";
        default:
            return "unknown";
    }
}
