/*  proto.c: the names of every code in proto.h, the operator hints, and
    what a result means for the id it answers.

    DESIGN
    Everything here is read from the tables of proto.h (RL_OP_TABLE,
    RL_STATUS_TABLE, RL_RESULT_TABLE): each code is one row, and each
    function below is a switch generated from the rows, so adding a code is
    adding a row. tests/test_codec.c checks the names against the
    identifiers and docs/protocol.md against the rows.

    INVARIANTS
    1. Every function here returns a static string (never NULL) or a value
       of its enum, and accepts any u32: a value no row defines is "unknown",
       class RL_RESULT_CLASS_UNKNOWN, RL_BURNS_NO.
    2. rl_result_is_retryable is true exactly for the rows whose burns is
       RL_BURNS_NO (infrastructure, id validation, field validation) and for
       values no row defines: the safe reading of an unknown code is "retry
       with the same id", never "pay again".
    3. rl_reply_burns differs from rl_result_burns only for a member of a
       linked chain answered a remembered failure (RL_BURNS_YES), which it
       reads RL_BURNS_NO: the shard stores nothing of a chain that failed
       (docs/payments.md, "Linked chains", rule 1).
*/
#include "proto.h"

#include <assert.h>

//  Names ----------------------------------------------------------------------

#define RL_CASE_NAME_OP_(id, value, name)                                                          \
    case id:                                                                                       \
        return name;
#define RL_CASE_NAME_STATUS_(id, value, name, hint)                                                \
    case id:                                                                                       \
        return name;
#define RL_CASE_NAME_RESULT_(id, value, name, class, burns, hint)                                  \
    case id:                                                                                       \
        return name;

const char *
rl_op_name (uint32_t op)
{
    switch (op) {
        RL_OP_TABLE (RL_CASE_NAME_OP_)
        default:
            return "unknown";
    }
}

unsigned
rl_op_roles (uint32_t op)
{
    switch (op) {
#define S_ROLES_(id, roles)                                                                        \
    case id:                                                                                       \
        return roles;
        RL_OP_ROLES_TABLE (S_ROLES_)
#undef S_ROLES_
        default:
            return 0;
    }
}

const char *
rl_status_name (uint32_t status)
{
    switch (status) {
        RL_STATUS_TABLE (RL_CASE_NAME_STATUS_)
        default:
            return "unknown";
    }
}

const char *
rl_result_name (uint32_t result)
{
    switch (result) {
        RL_RESULT_TABLE (RL_CASE_NAME_RESULT_)
        default:
            return "unknown";
    }
}

const char *
rl_durability_name (uint32_t durability)
{
    //  A replicated shard's label names both (docs/replication.md).
    static const char *semi[] = {"sync + semi-sync standby",
                                 "nosync (benchmark only) + semi-sync standby",
                                 "sync, manual WAL flush + semi-sync standby"};
    static const char *async[] = {"sync + ASYNC standby (invariant 9 suspended)",
                                  "nosync (benchmark only) + ASYNC standby",
                                  "sync, manual WAL flush + ASYNC standby (invariant 9 suspended)"};
    uint32_t base = durability & 0xffffu;
    uint32_t repl = durability & ~0xffffu;
    if (repl && base >= RL_DURABILITY_SYNC && base <= RL_DURABILITY_SYNC_MANUAL_WAL) {
        if (repl == RL_DURABILITY_REPL_SEMI) {
            return semi[base - 1];
        }
        if (repl == RL_DURABILITY_REPL_ASYNC) {
            return async[base - 1];
        }
        return "unknown";
    }
    switch (durability) {
        case RL_DURABILITY_SYNC:
            return "sync";
        case RL_DURABILITY_NOSYNC:
            return "nosync (benchmark only)";
        case RL_DURABILITY_SYNC_MANUAL_WAL:
            return "sync, manual WAL flush";
        default:
            return "unknown";
    }
}

const char *
rl_shard_state_name (uint32_t state)
{
    switch (state) {
        case RL_SHARD_SERVING:
            return "serving";
        case RL_SHARD_FAILED:
            return "failed";
        case RL_SHARD_STANDBY:
            return "standby";
        case RL_SHARD_STALLED:
            return "stalled";
        case RL_SHARD_FENCED:
            return "fenced";
        default:
            return "unknown";
    }
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
        case RL_TP_RETRY:
            return "retry";
        default:
            return "unknown";
    }
}

//  Hints ----------------------------------------------------------------------

#define RL_CASE_HINT_STATUS_(id, value, name, hint)                                                \
    case id:                                                                                       \
        return hint;
#define RL_CASE_HINT_RESULT_(id, value, name, class, burns, hint)                                  \
    case id:                                                                                       \
        return hint;

const char *
rl_status_hint (uint32_t status)
{
    switch (status) {
        RL_STATUS_TABLE (RL_CASE_HINT_STATUS_)
        default:
            return "";
    }
}

const char *
rl_result_hint (uint32_t result)
{
    switch (result) {
        RL_RESULT_TABLE (RL_CASE_HINT_RESULT_)
        default:
            return "unknown code: treat it as outcome_unknown and retry with the same id";
    }
}

//  Classes and what a result leaves of the id ---------------------------------

#define RL_CASE_CLASS_(id, value, name, class, burns, hint)                                        \
    case id:                                                                                       \
        return RL_RESULT_CLASS_##class;
#define RL_CASE_BURNS_(id, value, name, class, burns, hint)                                        \
    case id:                                                                                       \
        return RL_BURNS_##burns;

rl_result_class_t
rl_result_class (uint32_t result)
{
    switch (result) {
        RL_RESULT_TABLE (RL_CASE_CLASS_)
        default:
            return RL_RESULT_CLASS_UNKNOWN;
    }
}

const char *
rl_result_class_name (rl_result_class_t result_class)
{
    switch (result_class) {
        case RL_RESULT_CLASS_APPLIED:
            return "applied";
        case RL_RESULT_CLASS_INFRASTRUCTURE:
            return "infrastructure";
        case RL_RESULT_CLASS_ID_VALIDATION:
            return "id validation";
        case RL_RESULT_CLASS_IDEMPOTENCY:
            return "idempotency";
        case RL_RESULT_CLASS_FIELD_VALIDATION:
            return "field validation";
        case RL_RESULT_CLASS_ACCOUNT_LOOKUPS:
            return "account lookups";
        case RL_RESULT_CLASS_LEDGER:
            return "ledger";
        case RL_RESULT_CLASS_PENDING:
            return "pending";
        case RL_RESULT_CLASS_BALANCES:
            return "balances";
        default:
            return "unknown";
    }
}

rl_burns_t
rl_result_burns (uint32_t result)
{
    switch (result) {
        RL_RESULT_TABLE (RL_CASE_BURNS_)
        default:
            return RL_BURNS_NO; //  a code this version does not know: never assume the id is spent
    }
}

const char *
rl_burns_name (rl_burns_t burns)
{
    switch (burns) {
        case RL_BURNS_NO:
            return "no";
        case RL_BURNS_YES:
            return "yes";
        case RL_BURNS_SUCCESS:
            return "success";
        case RL_BURNS_TAKEN:
            return "taken";
        default:
            return "unknown";
    }
}

bool
rl_result_is_retryable (uint32_t result)
{
    return rl_result_burns (result) == RL_BURNS_NO;
}

rl_burns_t
rl_reply_burns (const rl_transfer_t *transfers, const rl_result_rec_t *results, size_t count,
                size_t i)
{
    assert (transfers && results && i < count);
    rl_burns_t burns = rl_result_burns (results[i].result);
    bool member = (transfers[i].flags & RL_TRANSFER_LINKED)
                  || (i > 0 && (transfers[i - 1].flags & RL_TRANSFER_LINKED));
    //  A failed chain stores nothing: its failing member's code burned nothing.
    return member && burns == RL_BURNS_YES ? RL_BURNS_NO : burns;
}

bool
rl_reply_is_retryable (const rl_transfer_t *transfers, const rl_result_rec_t *results, size_t count,
                       size_t i)
{
    return rl_reply_burns (transfers, results, count, i) == RL_BURNS_NO;
}
