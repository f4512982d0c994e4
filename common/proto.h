/*  proto.h: the ringledger wire protocol, as C types.

    Every message is one ZeroMQ frame (after any routing envelope) holding a
    32-byte header followed by `record_count` fixed-size little-endian
    records. docs/protocol.md describes every byte and carries hex test
    vectors; tests/test_codec.c and tests/test_protocol.py check them.

    The structs below are the in-memory (host order) form. codec.c is the
    only place that turns bytes from the network into these structs; on a
    little-endian host the layout is identical and decoding is a copy, which
    the _Static_asserts in codec.c pin down.

    Every code is one row of a table (an X-macro: RL_OP_TABLE,
    RL_STATUS_TABLE, RL_RESULT_TABLE) that gives its value, its name and,
    for statuses and results, the operator hint; a result row also gives
    its class and what it leaves of the id. The enums, the names, the hints
    and the doc check of tests/test_codec.c all come from these rows.

    Result codes are data, not exceptions: every create returns one result
    per record. Codes are grouped by the order in which they are checked
    (docs/protocol.md, "Result codes"): id validation, idempotency, field
    validation, account lookups, ledger, balances. Infrastructure codes
    (2..15) never burn the id: a retry with the same id may execute.
*/
#ifndef RL_PROTO_H
#define RL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_limits.h"

#define RL_MAGIC   0x67646c72u //  bytes "rldg" read as a little-endian u32
#define RL_VERSION 1

//  A 128-bit id: lo holds bytes 0..7, hi bytes 8..15 (little-endian).
typedef struct {
    uint64_t lo;
    uint64_t hi;
} rl_id_t;

static inline bool
rl_id_is_zero (rl_id_t id)
{
    return id.lo == 0 && id.hi == 0;
}

static inline bool
rl_id_is_max (rl_id_t id)
{
    return id.lo == UINT64_MAX && id.hi == UINT64_MAX;
}

static inline bool
rl_id_eq (rl_id_t a, rl_id_t b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

//  Operations ------------------------------------------------------------
//  X (identifier, value, name). Request and reply bodies: codec.h.
//      create_accounts         account[]            -> result[]
//      create_transfers        transfer[]           -> result[]
//      lookup_accounts         id[]                 -> account[] (timestamp 0: not found)
//      lookup_transfers        id[]                 -> transfer[] (timestamp 0: not found)
//      get_account_transfers   filter[1]            -> transfer[] (up to limit)
//      status                  (none)               -> status[1]
//      load_ring               ring blob (count 1)  -> (none); refused unless epoch grows
//      get_ring                (none)               -> ring blob (count 1)
//      16..31: two-phase transfers between shards (docs/two-phase.md)
//      32..47: admin; resolve: two-phase record[] -> two-phase record[] (heuristic)
//      48..59: migration (docs/rebalance.md), admin, served by shards:
//      migrate_begin           migrate[1]           -> migrate[1] (the state)
//      migrate_export          migrate[1]           -> chunk blob (count 1)
//      migrate_import          chunk blob (count 1) -> migrate[1] (the state)
//      migrate_freeze, _drain, _unfreeze, _commit: migrate[1] -> migrate[1]
//      arc_load                (none)               -> arc_load[] (one per arc owned)
//      hot_accounts            (none)               -> hot_account[] (up to 32)
//      60..63: backups (docs/backup.md), admin, served by shards:
//      backup_hold, _cut, _release, _status: backup[1] -> backup[1]
//      64..69: the change stream of committed transfers (docs/events.md):
//      events_read             events_req[1]        -> event[] (up to limit)
//      66: migration (docs/rebalance.md, "The plan's lease"), admin, served by shards:
//      migrate_lease           migrate[1]           -> migrate[2] (the stored migration, the lease)
//      80..89: replication (docs/replication.md), served by shards and standbys:
//      promote, degrade, fence (none)               -> (none)
//      repl_status             (none)               -> repl[1..RL_REPL_RECORDS_MAX]
// clang-format off
#define RL_OP_TABLE(X)                                                                             \
    X (RL_OP_CREATE_ACCOUNTS, 1, "create_accounts")                                                \
    X (RL_OP_CREATE_TRANSFERS, 2, "create_transfers")                                              \
    X (RL_OP_LOOKUP_ACCOUNTS, 3, "lookup_accounts")                                                \
    X (RL_OP_LOOKUP_TRANSFERS, 4, "lookup_transfers")                                              \
    X (RL_OP_GET_ACCOUNT_TRANSFERS, 5, "get_account_transfers")                                    \
    X (RL_OP_STATUS, 6, "status")                                                                  \
    X (RL_OP_LOAD_RING, 7, "load_ring")                                                            \
    X (RL_OP_GET_RING, 8, "get_ring")                                                              \
    X (RL_OP_PREPARE, 16, "prepare")                                                               \
    X (RL_OP_DECIDE, 17, "decide")                                                                 \
    X (RL_OP_ACK, 18, "ack")                                                                       \
    X (RL_OP_OUTCOME_QUERY, 19, "outcome_query")                                                   \
    X (RL_OP_IN_DOUBT, 32, "in_doubt")                                                             \
    X (RL_OP_AUDIT, 33, "audit")                                                                   \
    X (RL_OP_RESOLVE, 34, "resolve")                                                               \
    X (RL_OP_MIGRATE_BEGIN, 48, "migrate_begin")                                                   \
    X (RL_OP_MIGRATE_EXPORT, 49, "migrate_export")                                                 \
    X (RL_OP_MIGRATE_IMPORT, 50, "migrate_import")                                                 \
    X (RL_OP_MIGRATE_FREEZE, 51, "migrate_freeze")                                                 \
    X (RL_OP_MIGRATE_DRAIN, 52, "migrate_drain")                                                   \
    X (RL_OP_MIGRATE_UNFREEZE, 53, "migrate_unfreeze")                                             \
    X (RL_OP_MIGRATE_COMMIT, 54, "migrate_commit")                                                 \
    X (RL_OP_MIGRATE_ABORT, 55, "migrate_abort")                                                   \
    X (RL_OP_MIGRATE_CLEANUP, 56, "migrate_cleanup")                                               \
    X (RL_OP_ARC_LOAD, 57, "arc_load")                                                             \
    X (RL_OP_HOT_ACCOUNTS, 58, "hot_accounts")                                                     \
    X (RL_OP_BACKUP_HOLD, 60, "backup_hold")                                                       \
    X (RL_OP_BACKUP_CUT, 61, "backup_cut")                                                         \
    X (RL_OP_BACKUP_RELEASE, 62, "backup_release")                                                 \
    X (RL_OP_BACKUP_STATUS, 63, "backup_status")                                                   \
    X (RL_OP_EVENTS_READ, 65, "events_read")                                                       \
    X (RL_OP_MIGRATE_LEASE, 66, "migrate_lease")                                                   \
    X (RL_OP_PROMOTE, 80, "promote")                                                               \
    X (RL_OP_DEGRADE, 81, "degrade")                                                               \
    X (RL_OP_FENCE, 82, "fence")                                                                   \
    X (RL_OP_REPL_STATUS, 83, "repl_status")
// clang-format on

#define RL_OP_ENUM_(id, value, name) id = value,
typedef enum { RL_OP_TABLE (RL_OP_ENUM_) } rl_op_t;
#undef RL_OP_ENUM_

//  Roles (docs/security.md): a role is a set of public keys; a key may hold
//  several. The bits of a mask of roles.
typedef enum {
    RL_ROLE_CLIENT = 1u << 0,
    RL_ROLE_ROUTER = 1u << 1,
    RL_ROLE_SHARD = 1u << 2,
    RL_ROLE_ADMIN = 1u << 3,
    RL_ROLE_ALL = 0xf,
} rl_role_t;

//  Who may send each operation: X (identifier, roles), one row for every
//  row of RL_OP_TABLE (test_codec checks it, and docs/protocol.md,
//  "Security", has the same table). A message from a key without one of
//  the roles is answered unauthorized and changes nothing. Operations that
//  later features add get a row here when they get one in RL_OP_TABLE.
// clang-format off
#define RL_OP_ROLES_TABLE(X)                                                                       \
    X (RL_OP_CREATE_ACCOUNTS, RL_ROLE_CLIENT | RL_ROLE_ROUTER)                                     \
    X (RL_OP_CREATE_TRANSFERS, RL_ROLE_CLIENT | RL_ROLE_ROUTER)                                    \
    X (RL_OP_LOOKUP_ACCOUNTS, RL_ROLE_CLIENT | RL_ROLE_ROUTER)                                     \
    X (RL_OP_LOOKUP_TRANSFERS, RL_ROLE_CLIENT | RL_ROLE_ROUTER)                                    \
    X (RL_OP_GET_ACCOUNT_TRANSFERS, RL_ROLE_CLIENT | RL_ROLE_ROUTER)                               \
    X (RL_OP_STATUS, RL_ROLE_CLIENT | RL_ROLE_ROUTER | RL_ROLE_ADMIN)                              \
    X (RL_OP_LOAD_RING, RL_ROLE_ADMIN)                                                             \
    X (RL_OP_GET_RING, RL_ROLE_ALL)                                                                \
    X (RL_OP_PREPARE, RL_ROLE_SHARD)                                                               \
    X (RL_OP_DECIDE, RL_ROLE_SHARD)                                                                \
    X (RL_OP_ACK, RL_ROLE_SHARD)                                                                   \
    X (RL_OP_OUTCOME_QUERY, RL_ROLE_SHARD)                                                         \
    X (RL_OP_IN_DOUBT, RL_ROLE_ADMIN)                                                              \
    X (RL_OP_AUDIT, RL_ROLE_ADMIN)                                                                 \
    X (RL_OP_RESOLVE, RL_ROLE_ADMIN)                                                               \
    X (RL_OP_MIGRATE_BEGIN, RL_ROLE_ADMIN)                                                         \
    X (RL_OP_MIGRATE_EXPORT, RL_ROLE_ADMIN)                                                        \
    X (RL_OP_MIGRATE_IMPORT, RL_ROLE_ADMIN)                                                        \
    X (RL_OP_MIGRATE_FREEZE, RL_ROLE_ADMIN)                                                        \
    X (RL_OP_MIGRATE_DRAIN, RL_ROLE_ADMIN)                                                         \
    X (RL_OP_MIGRATE_UNFREEZE, RL_ROLE_ADMIN)                                                      \
    X (RL_OP_MIGRATE_COMMIT, RL_ROLE_ADMIN)                                                        \
    X (RL_OP_MIGRATE_ABORT, RL_ROLE_ADMIN)                                                         \
    X (RL_OP_MIGRATE_CLEANUP, RL_ROLE_ADMIN)                                                       \
    X (RL_OP_ARC_LOAD, RL_ROLE_ADMIN)                                                              \
    X (RL_OP_HOT_ACCOUNTS, RL_ROLE_ADMIN)                                                          \
    X (RL_OP_BACKUP_HOLD, RL_ROLE_ADMIN)                                                           \
    X (RL_OP_BACKUP_CUT, RL_ROLE_ADMIN)                                                            \
    X (RL_OP_BACKUP_RELEASE, RL_ROLE_ADMIN)                                                        \
    X (RL_OP_BACKUP_STATUS, RL_ROLE_ADMIN)                                                         \
    X (RL_OP_EVENTS_READ, RL_ROLE_CLIENT | RL_ROLE_ADMIN)                                          \
    X (RL_OP_MIGRATE_LEASE, RL_ROLE_ADMIN)                                                         \
    X (RL_OP_PROMOTE, RL_ROLE_ADMIN)                                                               \
    X (RL_OP_DEGRADE, RL_ROLE_ADMIN)                                                               \
    X (RL_OP_FENCE, RL_ROLE_ADMIN)                                                                 \
    X (RL_OP_REPL_STATUS, RL_ROLE_CLIENT | RL_ROLE_ROUTER | RL_ROLE_ADMIN)
// clang-format on

//  Message-level status, in the reply header --------------------------------
//  X (identifier, value, name, operator hint: what to do next).
#define RL_HINT_PROTOCOL_                                                                          \
    "the server refused the request: is --connect a ringledger router or shard of protocol "       \
    "version 1?"
// clang-format off
#define RL_STATUS_TABLE(X)                                                                         \
    X (RL_STATUS_OK, 0, "ok", "")                                                                  \
    /*  short frame, or count disagrees with size */                                               \
    X (RL_STATUS_MALFORMED, 1, "malformed", RL_HINT_PROTOCOL_)                                     \
    X (RL_STATUS_BAD_MAGIC, 2, "bad_magic", RL_HINT_PROTOCOL_)                                     \
    X (RL_STATUS_BAD_VERSION, 3, "bad_version", RL_HINT_PROTOCOL_)                                 \
    X (RL_STATUS_UNKNOWN_OPERATION, 4, "unknown_operation", RL_HINT_PROTOCOL_)                     \
    /*  more than RL_BATCH_RECORDS_MAX, or oversize frame */                                       \
    X (RL_STATUS_TOO_MANY_RECORDS, 5, "too_many_records",                                          \
       "too many records in one request: split it")                                                \
    /*  a bounded queue is full: back off and retry */                                             \
    X (RL_STATUS_BUSY, 6, "busy",                                                                  \
       "a queue is full, a shard is unreachable, or a primary's replication is stalled: back "   \
       "off, then retry the same command")                                                        \
    /*  the store refuses writes until it recovers */                                              \
    X (RL_STATUS_STORAGE_ERROR, 7, "storage_error",                                                \
       "a shard's store failed ('rlctl status' shows it FAIL): fix its disk and restart it, "      \
       "then retry with the same ids; the outcome of creates is unknown until then")                \
    /*  load ring: the epoch does not increase */                                                  \
    X (RL_STATUS_EPOCH_NOT_NEWER, 8, "epoch_not_newer",                                            \
       "the shard already serves a ring of this epoch or a newer one: nothing to do")              \
    /*  load ring: the blob does not decode */                                                     \
    X (RL_STATUS_BAD_RING, 9, "bad_ring", "the ring does not decode: check the ring file")         \
    /*  get_account_transfers: invalid filter */                                                   \
    X (RL_STATUS_BAD_FILTER, 10, "bad_filter", "check --limit, --from and --to (from <= to)")      \
    /*  router: no shard could be reached */                                                       \
    X (RL_STATUS_UNAVAILABLE, 11, "unavailable",                                                   \
       "the router reached no shard: check 'rlctl status'; retry later with the same ids")         \
    /*  router: deadline passed on a read or admin request (creates answer */                      \
    /*  status ok, open records outcome_unknown) */                                                \
    X (RL_STATUS_TIMEOUT, 12, "timeout", "the router's deadline passed: retry")                    \
    /*  router: an id appears twice in one batch */                                                \
    X (RL_STATUS_DUPLICATE_ID, 13, "duplicate_id",                                                 \
       "an id appears twice in the command: give each its own")                                    \
    /*  read of an account the shard does not own at its epoch */                                  \
    X (RL_STATUS_WRONG_SHARD, 14, "wrong_shard",                                                   \
       "the shard at --connect does not own this account: connect to the router, or to the "      \
       "owner that 'rlctl ring' shows")                                                            \
    /*  read of an account whose arc the shard gained in a ring change and */                      \
    /*  whose data has not arrived yet */                                                          \
    X (RL_STATUS_FROZEN, 15, "frozen",                                                             \
       "the account's part of the ring moved to a shard that has not received its data yet: "     \
       "retry later")                                                                              \
    /*  the sender's key lacks every role the operation allows */                                  \
    X (RL_STATUS_UNAUTHORIZED, 16, "unauthorized",                                                 \
       "your key does not hold a role allowed to send this (docs/security.md): use a key of "     \
       "that role, or ask the operator to add yours; nothing was changed")                        \
    /*  load ring: the epoch is more than --max-epoch-jump above the current one */              \
    X (RL_STATUS_EPOCH_TOO_FAR, 17, "epoch_too_far",                                               \
       "the ring's epoch is more than the shard's --max-epoch-jump above the one it serves: "     \
       "load a ring of the next epoch (rebalance plan writes epoch + 1); nothing was changed")     \
    /*  a migration request that does not fit the migration the shard holds */                    \
    X (RL_STATUS_MIGRATION_REFUSED, 18, "migration_refused",                                       \
       "the migration step does not fit the shard's migration state (another migration, "         \
       "a chunk out of order or outside the arc): nothing was changed; see the shard's log")     \
    /*  events_read: the position names a history this shard does not hold */                    \
    /*  (another incarnation's nonce, past its end: a restore, a fail-over) */                    \
    X (RL_STATUS_RESYNC, 23, "resync",                                                             \
       "the shard does not know this position (restored, or a position past its end): drop "     \
       "what was built from this shard's events and read them again from the beginning")         \
    /*  events_read: a position or limit that breaks a rule */                                   \
    X (RL_STATUS_BAD_POSITION, 24, "bad_position",                                                 \
       "the events request breaks a rule (limit 1..8190, the beginning is all zeros, flags "      \
       "and reserved zero): fix the consumer; nothing was changed")                              \
    /*  migrate_*: another rebalancing plan holds the shard's migration lease */                 \
    X (RL_STATUS_LEASE_HELD, 84, "lease_held",                                                     \
       "another rebalancing plan holds this shard's migration lease (the shard's log names it): "  \
       "let that change finish, or clear it with 'rebalance abort' of that plan; nothing was "    \
       "changed")                                                                                \
    /*  any request to a primary that a promotion of its standby fenced */                       \
    X (RL_STATUS_FENCED, 85, "fenced",                                                             \
       "this shard's standby was promoted: send to the new primary (load its ring); an "           \
       "unanswered write's outcome is there, retry it with the same ids")
// clang-format on

#define RL_STATUS_ENUM_(id, value, name, hint) id = value,
typedef enum { RL_STATUS_TABLE (RL_STATUS_ENUM_) } rl_status_t;
#undef RL_STATUS_ENUM_
#define RL_STATUS_LAST RL_STATUS_FENCED //  statuses are 0..RL_STATUS_LAST, with gaps

//  Does a row of RL_STATUS_TABLE define this value? (The table has gaps:
//  values are given out by feature, not in order.)
#define RL_STATUS_CASE_(id, value, name, hint) case value:
static inline bool
rl_status_defined (uint32_t status)
{
    switch (status) {
        RL_STATUS_TABLE (RL_STATUS_CASE_)
        return true;
        default:
            return false;
    }
}
#undef RL_STATUS_CASE_

//  Per-record result codes (create_accounts and create_transfers) ----------
//  X (identifier, value, name, class, burns, operator hint), one row per
//  code: the one place that says what a result means (docs/protocol.md,
//  "Result codes", is checked against it by tests/test_codec.c).
//
//  class: the group of checks that gave it, in the order they run
//  (rl_result_class_t: applied, infrastructure, id validation, idempotency,
//  field validation, account lookups, ledger, pending, balances).
//  burns: what the result leaves of the id (rl_burns_t): NO, the id stays
//  free and a retry with it may apply the record; YES, a failure remembered
//  for that id; SUCCESS, the id holds the applied record; TAKEN, the id holds
//  another record. Values 13..15 are kept for infrastructure codes.
#define RL_HINT_UNKNOWN_                                                                           \
    "the outcome is unknown: retry with the SAME id, never pay again with a new one"
#define RL_HINT_LATER_ "not decided yet: retry later with the same id"
#define RL_HINT_FIX_   "fix the record; the id is not burned"
#define RL_HINT_TAKEN_ "the id is taken by a different record: use a new id"
#define RL_HINT_BURNED_                                                                            \
    "refused for good; the id is now burned: a retry with the same id gets the same result"
#define RL_HINT_CREATE_FIRST_                                                                      \
    "create the account first; the id is now burned: a retry with the same id gets the same "      \
    "result, pay again with a new id"

// clang-format off
#define RL_RESULT_TABLE(X)                                                                         \
    X (RL_OK, 0, "ok", APPLIED, SUCCESS, "")                                                       \
    X (RL_EXISTS, 1, "exists", IDEMPOTENCY, SUCCESS,                                               \
       "created earlier with the same fields: success (the timestamp is the original's)")          \
    X (RL_WRONG_SHARD, 2, "wrong_shard", INFRASTRUCTURE, NO,                                       \
       "this shard does not own the account: connect to the router, or to the owner that "         \
       "'rlctl ring' shows")                                                                       \
    X (RL_BUSY, 3, "busy", INFRASTRUCTURE, NO,                                                     \
       "a queue is full: back off, then retry with the same id")                                   \
    X (RL_ABORTED, 4, "aborted", INFRASTRUCTURE, NO,                                               \
       "definitely not applied; the id is not burned: retry with the same id")                     \
    X (RL_OUTCOME_UNKNOWN, 5, "outcome_unknown", INFRASTRUCTURE, NO, RL_HINT_UNKNOWN_)             \
    X (RL_IN_PROGRESS, 6, "in_progress", INFRASTRUCTURE, NO, RL_HINT_LATER_)                       \
    X (RL_IN_DOUBT, 7, "in_doubt", INFRASTRUCTURE, NO, RL_HINT_LATER_)                             \
    X (RL_FROZEN, 8, "frozen", INFRASTRUCTURE, NO,                                                 \
       "the account's part of the ring moved and its data has not arrived at its new shard: "     \
       "not applied; retry later with the same id")                                                \
    X (RL_STORAGE_ERROR, 9, "storage_error", INFRASTRUCTURE, NO, RL_HINT_UNKNOWN_)                 \
    X (RL_LINKED_EVENT_FAILED, 10, "linked_event_failed",                                          \
       INFRASTRUCTURE, NO,                                                                         \
       "another record of its linked chain failed (see its code): nothing of the chain was "      \
       "applied, no id burned; fix the chain, then send all of it again with the same ids")       \
    X (RL_LINKED_EVENT_CHAIN_OPEN, 11, "linked_event_chain_open",                                  \
       INFRASTRUCTURE, NO,                                                                         \
       "the request's last record is flagged linked: its chain is never closed and nothing of "   \
       "it was applied; clear the flag of the chain's last record")                               \
    /*  two-phase replies only: the sending shard is not the one the record */                    \
    /*  names (docs/security.md); a client sees aborted */                                         \
    X (RL_UNAUTHORIZED, 12, "unauthorized", INFRASTRUCTURE, NO,                                    \
       "a shard refused a two-phase record from a peer whose key is not the shard the record "    \
       "names (docs/security.md): nothing changed; check the ring's keys and the key sets")        \
    X (RL_ID_MUST_NOT_BE_ZERO, 16, "id_must_not_be_zero", ID_VALIDATION, NO, RL_HINT_FIX_)         \
    X (RL_ID_MUST_NOT_BE_INT_MAX, 17, "id_must_not_be_int_max", ID_VALIDATION, NO, RL_HINT_FIX_)   \
    X (RL_EXISTS_WITH_DIFFERENT_FLAGS, 20, "exists_with_different_flags",                          \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID, 21, "exists_with_different_debit_account_id",    \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID, 22, "exists_with_different_credit_account_id",  \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_AMOUNT, 23, "exists_with_different_amount",                        \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_PENDING_ID, 24, "exists_with_different_pending_id",                \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_USER_DATA_128, 25, "exists_with_different_user_data_128",          \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_USER_DATA_64, 26, "exists_with_different_user_data_64",            \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_USER_DATA_32, 27, "exists_with_different_user_data_32",            \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_TIMEOUT, 28, "exists_with_different_timeout",                      \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_LEDGER, 29, "exists_with_different_ledger",                        \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_EXISTS_WITH_DIFFERENT_CODE, 30, "exists_with_different_code",                            \
       IDEMPOTENCY, TAKEN, RL_HINT_TAKEN_)                                                         \
    X (RL_TIMESTAMP_MUST_BE_ZERO, 40, "timestamp_must_be_zero",                                    \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_RESERVED_FIELD, 41, "reserved_field", FIELD_VALIDATION, NO, RL_HINT_FIX_)                \
    X (RL_RESERVED_FLAG, 42, "reserved_flag", FIELD_VALIDATION, NO, RL_HINT_FIX_)                  \
    X (RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE, 43, "flags_are_mutually_exclusive",                        \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO, 44, "debit_account_id_must_not_be_zero",              \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX, 45, "debit_account_id_must_not_be_int_max",        \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO, 46, "credit_account_id_must_not_be_zero",            \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX, 47, "credit_account_id_must_not_be_int_max",      \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_ACCOUNTS_MUST_BE_DIFFERENT, 48, "accounts_must_be_different",                            \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_PENDING_ID_MUST_BE_ZERO, 49, "pending_id_must_be_zero",                                  \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_PENDING_ID_MUST_NOT_BE_ZERO, 50, "pending_id_must_not_be_zero",                          \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_PENDING_ID_MUST_NOT_BE_INT_MAX, 51, "pending_id_must_not_be_int_max",                    \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_PENDING_ID_MUST_BE_DIFFERENT, 52, "pending_id_must_be_different",                        \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER, 53, "timeout_reserved_for_pending_transfer",      \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_AMOUNT_MUST_NOT_BE_ZERO, 54, "amount_must_not_be_zero",                                  \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_LEDGER_MUST_NOT_BE_ZERO, 55, "ledger_must_not_be_zero",                                  \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_CODE_MUST_NOT_BE_ZERO, 56, "code_must_not_be_zero", FIELD_VALIDATION, NO, RL_HINT_FIX_)  \
    X (RL_NOT_SUPPORTED, 57, "not_supported", FIELD_VALIDATION, NO,                                \
       "a flag served in a later version is set (balancing, linked on an account), or a "        \
       "pending transfer or a linked chain spans two shards: not served yet; the id is not "     \
       "burned")                                                                                   \
    X (RL_DEBIT_ACCOUNT_NOT_FOUND, 60, "debit_account_not_found",                                  \
       ACCOUNT_LOOKUPS, YES, RL_HINT_CREATE_FIRST_)                                                \
    X (RL_CREDIT_ACCOUNT_NOT_FOUND, 61, "credit_account_not_found",                                \
       ACCOUNT_LOOKUPS, YES, RL_HINT_CREATE_FIRST_)                                                \
    X (RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER, 64, "accounts_must_have_the_same_ledger",            \
       LEDGER, YES, RL_HINT_BURNED_)                                                               \
    X (RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS, 65,                                      \
       "transfer_must_have_the_same_ledger_as_accounts", LEDGER, YES, RL_HINT_BURNED_)             \
    X (RL_PENDING_TRANSFER_NOT_FOUND, 68, "pending_transfer_not_found",                            \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_NOT_PENDING, 69, "pending_transfer_not_pending",                        \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID, 70,                                     \
       "pending_transfer_has_different_debit_account_id", PENDING, YES, RL_HINT_BURNED_)           \
    X (RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID, 71,                                    \
       "pending_transfer_has_different_credit_account_id", PENDING, YES, RL_HINT_BURNED_)          \
    X (RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER, 72, "pending_transfer_has_different_ledger",      \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE, 73, "pending_transfer_has_different_code",          \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_EXCEEDS_PENDING_TRANSFER_AMOUNT, 74, "exceeds_pending_transfer_amount",                  \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT, 75, "pending_transfer_has_different_amount",      \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_ALREADY_POSTED, 76, "pending_transfer_already_posted",                  \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_ALREADY_VOIDED, 77, "pending_transfer_already_voided",                  \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_PENDING_TRANSFER_EXPIRED, 78, "pending_transfer_expired",                                \
       PENDING, YES, RL_HINT_BURNED_)                                                              \
    X (RL_OVERFLOWS_DEBITS_PENDING, 80, "overflows_debits_pending",                                \
       BALANCES, YES, RL_HINT_BURNED_)                                                             \
    X (RL_OVERFLOWS_CREDITS_PENDING, 81, "overflows_credits_pending",                              \
       BALANCES, YES, RL_HINT_BURNED_)                                                             \
    X (RL_OVERFLOWS_DEBITS_POSTED, 82, "overflows_debits_posted", BALANCES, YES, RL_HINT_BURNED_)  \
    X (RL_OVERFLOWS_CREDITS_POSTED, 83, "overflows_credits_posted",                                \
       BALANCES, YES, RL_HINT_BURNED_)                                                             \
    X (RL_OVERFLOWS_DEBITS, 84, "overflows_debits", BALANCES, YES, RL_HINT_BURNED_)                \
    X (RL_OVERFLOWS_CREDITS, 85, "overflows_credits", BALANCES, YES, RL_HINT_BURNED_)              \
    X (RL_OVERFLOWS_TIMEOUT, 86, "overflows_timeout", BALANCES, YES, RL_HINT_BURNED_)              \
    X (RL_EXCEEDS_CREDITS, 87, "exceeds_credits", BALANCES, YES,                                   \
       "the debit account's balance flags forbid it (debits must not exceed credits); "            \
       "the id is now burned: a retry with the same id gets the same result, pay again "           \
       "with a new id")                                                                            \
    X (RL_EXCEEDS_DEBITS, 88, "exceeds_debits", BALANCES, YES,                                     \
       "the credit account's balance flags forbid it (credits must not exceed debits); "           \
       "the id is now burned: a retry with the same id gets the same result, pay again "           \
       "with a new id")                                                                            \
    X (RL_DEBITS_PENDING_MUST_BE_ZERO, 100, "debits_pending_must_be_zero",                         \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_DEBITS_POSTED_MUST_BE_ZERO, 101, "debits_posted_must_be_zero",                           \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_CREDITS_PENDING_MUST_BE_ZERO, 102, "credits_pending_must_be_zero",                       \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)                                                         \
    X (RL_CREDITS_POSTED_MUST_BE_ZERO, 103, "credits_posted_must_be_zero",                         \
       FIELD_VALIDATION, NO, RL_HINT_FIX_)
// clang-format on

#define RL_RESULT_ENUM_(id, value, name, class, burns, hint) id = value,
typedef enum { RL_RESULT_TABLE (RL_RESULT_ENUM_) } rl_result_t;
#undef RL_RESULT_ENUM_

typedef enum {
    RL_RESULT_CLASS_UNKNOWN = 0, //  a value this version does not define
    RL_RESULT_CLASS_APPLIED,
    RL_RESULT_CLASS_INFRASTRUCTURE,
    RL_RESULT_CLASS_ID_VALIDATION,
    RL_RESULT_CLASS_IDEMPOTENCY,
    RL_RESULT_CLASS_FIELD_VALIDATION,
    RL_RESULT_CLASS_ACCOUNT_LOOKUPS,
    RL_RESULT_CLASS_LEDGER,
    RL_RESULT_CLASS_PENDING, //  user-level pending transfers: post and void
    RL_RESULT_CLASS_BALANCES,
} rl_result_class_t;

typedef enum {
    RL_BURNS_NO = 0,  //  the id stays free: a retry with the same id may apply the record
    RL_BURNS_YES,     //  a failure remembered for the id: a retry gets the same result
    RL_BURNS_SUCCESS, //  the id holds the applied record (ok, exists)
    RL_BURNS_TAKEN,   //  the id holds another record (exists_with_different_*)
} rl_burns_t;

//  Account flags (u16) -----------------------------------------------------
#define RL_ACCOUNT_LINKED                         (1u << 0) //  reserved: not served on accounts
#define RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS (1u << 1)
#define RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS (1u << 2)
#define RL_ACCOUNT_FLAGS_KNOWN                    0x0007u

//  Transfer flags (u16) ----------------------------------------------------
#define RL_TRANSFER_LINKED                (1u << 0) //  a linked chain (docs/payments.md)
#define RL_TRANSFER_PENDING               (1u << 1) //  authorise now (docs/protocol.md)
#define RL_TRANSFER_POST_PENDING_TRANSFER (1u << 2) //  post pending_id
#define RL_TRANSFER_VOID_PENDING_TRANSFER (1u << 3) //  void pending_id
#define RL_TRANSFER_BALANCING_DEBIT       (1u << 4) //  reserved
#define RL_TRANSFER_BALANCING_CREDIT      (1u << 5) //  reserved
#define RL_TRANSFER_FLAGS_KNOWN           0x003Fu
//  The kind of a PREPARE between shards, never a client's flag (a create
//  carrying one is refused reserved_flag): the participant holds the
//  transfer's debit leg (its debit account is there), or both of its legs;
//  without either, the credit leg, as always (docs/two-phase.md, "Debit
//  legs"). One kind at most per PREPARE, and no pending kind beside it.
#define RL_TRANSFER_TP_DEBIT_LEG (1u << 14)
#define RL_TRANSFER_TP_BOTH_LEGS (1u << 15)
#define RL_TRANSFER_TP_LEGS      (RL_TRANSFER_TP_DEBIT_LEG | RL_TRANSFER_TP_BOTH_LEGS)
//  Both bits: the credit leg of a chain's member whose debit leg is on a
//  third shard (docs/two-phase.md, "Credit on a third shard").
#define RL_TRANSFER_TP_CREDIT_THIRD RL_TRANSFER_TP_LEGS

//  get_account_transfers filter flags (u32) ---------------------------------
#define RL_FILTER_DEBITS      (1u << 0) //  include transfers that debit the account
#define RL_FILTER_CREDITS     (1u << 1) //  include transfers that credit the account
#define RL_FILTER_REVERSED    (1u << 2) //  newest first
#define RL_FILTER_FLAGS_KNOWN 0x0007u

//  Records (host order; on the wire little-endian, same offsets) ------------
typedef struct {
    uint32_t magic;        //  RL_MAGIC
    uint16_t version;      //  RL_VERSION
    uint16_t operation;    //  rl_op_t
    uint64_t request_id;   //  chosen by the client, echoed in the reply
    uint32_t record_count; //  records following the header
    uint32_t status;       //  reply: rl_status_t; request: 0
    uint64_t epoch;        //  reply: the answering shard's ring epoch; request: 0
} rl_header_t;

typedef struct {
    rl_id_t id;
    uint64_t debits_pending;   //  minor units
    uint64_t debits_posted;    //  minor units
    uint64_t credits_pending;  //  minor units
    uint64_t credits_posted;   //  minor units
    uint64_t debits_reserved;  //  minor units in cross-shard escrow (server-set)
    uint64_t credits_reserved; //  minor units in cross-shard escrow (server-set)
    rl_id_t user_data_128;
    uint64_t user_data_64;
    uint32_t user_data_32;
    uint32_t ledger;       //  currency; must not be zero
    uint16_t code;         //  chart-of-accounts code; must not be zero
    uint16_t flags;        //  RL_ACCOUNT_*
    uint32_t reserved;     //  must be zero
    uint64_t timestamp;    //  ns, assigned by the shard; zero on create
    uint64_t reserved2[2]; //  must be zero
} rl_account_t;

typedef struct {
    rl_id_t id;
    rl_id_t debit_account_id;
    rl_id_t credit_account_id;
    uint64_t amount;    //  minor units; must not be zero
    rl_id_t pending_id; //  reserved: post/void; must be zero
    rl_id_t user_data_128;
    uint64_t user_data_64;
    uint32_t user_data_32;
    uint32_t timeout; //  reserved: pending timeout, s; must be zero
    uint32_t ledger;
    uint16_t code;
    uint16_t flags;     //  RL_TRANSFER_*
    uint64_t timestamp; //  ns, assigned by the shard; zero on create
    uint64_t reserved;  //  must be zero
} rl_transfer_t;

typedef struct {
    uint32_t index;     //  position of the record in the request
    uint32_t result;    //  rl_result_t
    uint64_t timestamp; //  of the applied (or original) record, else 0
} rl_result_rec_t;

typedef struct {
    rl_id_t account_id;
    uint64_t timestamp_min; //  inclusive; 0: no lower bound
    uint64_t timestamp_max; //  inclusive; 0: no upper bound
    uint32_t limit;         //  1..RL_HISTORY_LIMIT_MAX
    uint32_t flags;         //  RL_FILTER_*
    uint64_t reserved[3];   //  must be zero
} rl_filter_t;

typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX]; //  shard name, NUL-padded
    uint64_t epoch;                    //  ring epoch the shard serves
    uint64_t accounts;                 //  accounts held
    uint64_t transfers;                //  transfers applied (ok)
    uint64_t requests;                 //  requests served since start
    uint64_t commits;                  //  group commits since start
    uint32_t durability;               //  rl_durability_t
    uint32_t ring_shards;              //  shards in the ring the shard serves
    uint64_t inflight;                 //  live two-phase attempts coordinated here
    uint64_t in_doubt;                 //  prepared records awaiting a decision
    uint64_t last_timestamp;           //  last timestamp assigned, ns
    uint64_t dropped;                  //  messages dropped (no reply possible)
    uint64_t malformed;                //  requests answered with a message-level error
    uint64_t wrong_shard;              //  records answered wrong_shard
    uint32_t pid;                      //  process id
    uint32_t state;                    //  rl_shard_state_t (a router: 0)
    uint64_t uptime_ms;                //  since start
    uint64_t store_keys_written;       //  RocksDB statistics since start: keys written
    uint64_t store_bytes_written;      //  RocksDB statistics: bytes written (keys + values)
    uint64_t wal_bytes;                //  RocksDB statistics: bytes appended to the WAL
    uint64_t wal_syncs;                //  RocksDB statistics: WAL syncs
    uint64_t checkpoints;              //  ledger checkpoints since start
    uint64_t alarms;                   //  two-phase alarms: contrary or unknown decisions
    uint32_t deadline_ms;              //  shard: --deadline-ms; router: its --deadline-ms
    uint32_t prepare_timeout_ms;       //  shard: --prepare-timeout-ms (a router: 0)
    uint64_t deadline_errors;          //  router: shard deadlines seen above --shard-deadline-ms
    uint64_t arcs_unreceived;          //  shard: ring arcs gained whose data has not arrived
    uint32_t insecure;                 //  1: started with --insecure (no CURVE, no roles)
    uint32_t keys;                     //  public keys in the role key sets
    uint64_t handshakes_refused;       //  connections refused at the handshake (no or unknown key)
    uint64_t unauthorized;             //  requests refused unauthorized (a key without the role)
    uint64_t epoch_jumps_refused;      //  rings refused: epoch beyond --max-epoch-jump
    uint32_t turn_p99_us;              //  shard: p99 of its turns in its last full second
    uint32_t in_doubt_oldest_ms;       //  shard: age of the oldest prepared record (saturates)
} rl_status_rec_t;                     //  no reserved byte left: a new field needs a larger record

//  Two-phase transfers between shards (docs/two-phase.md) ---------------------
//  An attempt is named by the coordinator's incarnation (a counter that grows
//  at every start, and a random nonce) and a sequence within it. Attempts
//  order by (counter, seq); the nonce makes a restored copy distinguishable.
typedef struct {
    uint64_t counter;
    uint64_t nonce;
    uint64_t seq;
} rl_attempt_t;

typedef enum {
    RL_TP_COMMIT = 1,    //  decision, or query answer: commit
    RL_TP_ABORT = 2,     //  decision, or query answer: abort
    RL_TP_PENDING = 3,   //  query answer: the attempt is live and undecided
    RL_TP_PREPARED = 4,  //  prepare reply: the credit is reserved and durable
    RL_TP_REFUSED = 5,   //  prepare reply: not prepared (result says why)
    RL_TP_ACKED = 6,     //  decide reply: applied and durable
    RL_TP_NOT_ACKED = 7, //  decide reply: contrary or unknown commit (alarm)
    RL_TP_RETRY = 8,     //  decide reply: not applied now (no room, storage error): resend later
} rl_tp_state_t;

typedef struct {
    rl_id_t id; //  transfer id
    rl_attempt_t attempt;
    uint32_t state;                           //  rl_tp_state_t
    uint32_t result;                          //  prepare reply: rl_result_t
    char coordinator[RL_SHARD_NAME_SIZE_MAX]; //  debit shard's name, NUL-padded
    uint64_t amount;                          //  minor units (informational)
    uint64_t timestamp;                       //  ns; prepare reply: the participant's
    rl_id_t debit_account_id;                 //  with id, names the transfer cluster-wide
} rl_tp_rec_t;

typedef struct {
    rl_transfer_t transfer;
    rl_tp_rec_t tp;
    uint64_t reserved[2]; //  zero on the wire
} rl_prepare_rec_t;

//  Admin: one entry of in_doubt (op 32). prepare.reserved[0]: created, ns
//  (wall clock); prepare.reserved[1]: role (1 coordinator, 2 participant).
//  tp.state: pending (live attempt), commit/abort (decision not yet
//  acknowledged) at a coordinator; prepared at a participant.
typedef struct {
    rl_prepare_rec_t prepare;
    char peer[RL_SHARD_NAME_SIZE_MAX]; //  the other shard of the transfer
} rl_in_doubt_rec_t;

#define RL_ROLE_COORDINATOR 1
#define RL_ROLE_PARTICIPANT 2

//  Admin: resolve (op 34), a heuristic decision on a prepared record whose
//  coordinator is gone for good. Request: id, attempt, coordinator, state
//  (commit or abort), result = RL_RESOLVE_FORCE. Reply: state acked, or
//  refused with the reason in result.
#define RL_RESOLVE_FORCE        0x46524345u //  "FRCE": the explicit flag
#define RL_RESOLVE_NOT_FOUND    1           //  no prepared record of that attempt here
#define RL_RESOLVE_NOT_FENCED   2           //  the coordinator is still in this shard's ring
#define RL_RESOLVE_NOT_FORCED   3           //  the explicit flag is missing
#define RL_RESOLVE_BAD_DECISION 4           //  state is neither commit nor abort
//  A commit of a post or void whose pending transfer's credit leg is still
//  prepared here: resolve that record first.
#define RL_RESOLVE_LEG_FIRST 5
//  A commit of a post or void that holds no credit side here and waits for
//  none (the leg it was checked against aborted or superseded): abort it.
#define RL_RESOLVE_NO_SIDE 6

//  Admin: the reply of audit (op 33).
typedef struct {
    uint32_t ok; //  1: every reservation accounted for
    uint32_t reserved0;
    uint64_t accounts; //  accounts checked
    uint64_t live;     //  live attempts (coordinator)
    uint64_t prepared; //  prepared records (participant)
    char message[224]; //  the first discrepancy, NUL-terminated
} rl_audit_rec_t;

//  Migration (ops 48..50, docs/rebalance.md) ---------------------------------
//  Where a copy has got to: a round scans the source's own transfer
//  records by timestamp, then the records it imported earlier by key, then
//  the accounts of the arc by id; the next round (catch-up) resumes the
//  first two where they stopped and scans the accounts again; the final
//  round (the source frozen and drained) ends with the pending transfers.
typedef enum {
    RL_MIGRATE_PHASE_TRANSFERS = 0,     //  own records with timestamp > ts
    RL_MIGRATE_PHASE_IMPORTED = 1,      //  imported records with key > imported_key
    RL_MIGRATE_PHASE_ACCOUNTS = 2,      //  accounts with id key > account_key
    RL_MIGRATE_PHASE_DONE = 3,          //  the round is complete: the next export starts another
    RL_MIGRATE_PHASE_PENDING_BY_ID = 4, //  older shards' pending phase (account_key: the last
                                        //  id sent); a source resumes it from the start of 5
    RL_MIGRATE_PHASE_PENDING = 5,       //  the final round, after ACCOUNTS: the arc's pending
                                        //  transfers, by ring point; account_key holds the last
                                        //  point read (8) and its keys read (8), big-endian
} rl_migrate_phase_t;
#define RL_MIGRATE_PHASE_MAX RL_MIGRATE_PHASE_PENDING

typedef struct {
    uint32_t phase;           //  rl_migrate_phase_t
    uint32_t round;           //  rounds completed
    uint64_t ts;              //  last own record exported (its timestamp), 0: none
    uint8_t imported_key[32]; //  last imported record exported (its key), zeros: none
    uint8_t account_key[16];  //  last account exported this round (its id bytes), zeros: none
} rl_migrate_cursor_t;

#define RL_MIGRATE_SOURCE 1 //  role: the shard the arc leaves
#define RL_MIGRATE_TARGET 2 //  role: the shard the arc goes to
//  migrate_abort to a SHIPPED source: param says the target answered its
//  abort (state none), so it will never serve the arc ("DONE").
#define RL_MIGRATE_ABORT_TARGET_DONE 0x454e4f44u
//  migrate_freeze of an arc that holds heuristic records: entries_max says
//  the operator reconciled them (the freeze is refused otherwise), "RCNC".
#define RL_MIGRATE_HEURISTICS_RECONCILED 0x434e4352u
//  migrate_cleanup with migration id 0 and this param ("PEEK"): the
//  source migration stored, handed over and waiting for its cleanup,
//  answered as stored; nothing deleted (refused when there is none).
#define RL_MIGRATE_CLEANUP_PEEK 0x4b454550u
//  A migration's plan: its id with the low RL_MIGRATE_STEP_BITS cleared
//  (the tool numbers a plan's steps there). Plan 0 (ids below 2^20) is no
//  plan: such a migration takes no lease (docs/rebalance.md, "The plan's
//  lease").
#define RL_MIGRATE_STEP_BITS 20
#define RL_MIGRATE_PLAN_MASK (~(uint64_t) 0 << RL_MIGRATE_STEP_BITS)
//  migrate_lease (op 66): the request's param. Its migration_id is the
//  holder asking: a plan, and in the low RL_MIGRATE_STEP_BITS the run of
//  the tool (one per state directory), so that two runs of one plan are
//  fenced from each other too.
#define RL_MIGRATE_LEASE_READ     0 //  nothing changes: the reply says who holds it
#define RL_MIGRATE_LEASE_ACQUIRE  1 //  take it (held by this holder already: nothing changes)
#define RL_MIGRATE_LEASE_RELEASE  2 //  clear it, if any run of the plan holds it
#define RL_MIGRATE_LEASE_TAKEOVER 3 //  take it from a dead run of the same plan (or from nobody)

typedef enum {
    RL_MIGRATE_NONE = 0,        //  no migration (a reply to a shard that holds none)
    RL_MIGRATE_COPYING = 1,     //  bulk copy and catch-up rounds
    RL_MIGRATE_FROZEN = 2,      //  source: writes in the arc answer frozen; draining
    RL_MIGRATE_SHIPPED = 3,     //  source: the final round is out; target: it is in
    RL_MIGRATE_HANDED_OVER = 4, //  the target serves the arc; the source no longer does
    RL_MIGRATE_ABORTING = 5,    //  target: migrate_abort has deleted part of what it imported
} rl_migrate_state_t;

//  migrate_begin request and reply, migrate_export request, migrate_import
//  reply (192 bytes). The arc is (arc_start, arc_end] of the hash space.
typedef struct {
    uint64_t migration_id; //  chosen by the tool, never 0
    uint64_t arc_start;
    uint64_t arc_end; //  != arc_start
    uint32_t role;    //  RL_MIGRATE_SOURCE or RL_MIGRATE_TARGET
    uint32_t state;   //  rl_migrate_state_t (reply)
    char source[RL_SHARD_NAME_SIZE_MAX];
    char target[RL_SHARD_NAME_SIZE_MAX];
    rl_migrate_cursor_t cursor; //  target: imported up to here; export: from here
    uint64_t chunks;            //  target: chunks imported; export: the chunk asked is chunks + 1;
                                //  source (stored, replies): rounds begun (the highest + 1)
    uint64_t records;           //  target: transfer records imported (all rounds)
    uint64_t accounts;          //  target: account snapshots imported (all rounds)
    uint32_t entries_max;       //  export: entries in the chunk, 1..RL_MIGRATE_ENTRIES_MAX
    uint32_t param;             //  freeze: freeze_max_ms; drain reply: two-phase entries
                                //  touching the arc (0: drained); otherwise zero
} rl_migrate_rec_t;

//  arc_load reply (op 57, 64 bytes): one per arc of the ring this shard
//  owns, (arc_start, arc_end], in ring order.
typedef struct {
    uint64_t arc_start;
    uint64_t arc_end;
    uint64_t accounts;         //  accounts held in the arc
    uint64_t account_bytes;    //  their records: accounts x 128 (transfer records not counted)
    uint64_t transfers_window; //  transfers debiting the arc, decided here in the last window_ms
    uint32_t window_ms;        //  the window (RL_ARC_LOAD_WINDOW_S, less just after a start)
    uint32_t transfers_per_s;  //  transfers_window per second of the window, rounded down
    uint64_t transfers_total;  //  since the shard started serving this ring
    uint64_t record_bytes;     //  estimate: bytes of the transfer records, history and
                               //  indexes that move with the arc's accounts (rebalance.md)
} rl_arc_load_rec_t;

//  hot_accounts reply (op 58, 64 bytes): the accounts that debited the most
//  transfers here over the window, the hottest first (at most
//  RL_HOT_ACCOUNTS_MAX; shard/hotacct.h). Each true count lies in
//  [transfers_window - error, transfers_window]; any account not listed
//  debited at most others_max. The shard-wide fields repeat in every record.
typedef struct {
    rl_id_t id;
    uint64_t transfers_window; //  upper bound over the window
    uint64_t error;            //  transfers_window - error is a lower bound
    uint64_t others_max;       //  upper bound of any account not listed
    uint32_t window_ms;        //  the window (RL_ARC_LOAD_WINDOW_S, less just after a start)
    uint32_t reserved;         //  zero
    uint64_t counted;          //  transfers counted here over the window, every account
    uint64_t reserved2;        //  zero
} rl_hot_account_rec_t;

//  The change stream (op 65, docs/events.md) ----------------------------------
//  A position names a shard's history: the incarnation of the shard that
//  served it (counter and nonce, as in rl_attempt_t) and a timestamp of that
//  shard's transfer records; all zeros is the beginning. events_read answers
//  the stored records after the position, in timestamp (commit) order.
#define RL_EVENTS_REQ_SIZE    64                   //  bytes of an events_read request record
#define RL_EVENT_SIZE         160                  //  bytes of an event record
#define RL_EVENTS_LIMIT_MAX   RL_BATCH_RECORDS_MAX //  events per reply
#define RL_EVENTS_FLAGS_KNOWN 0u                   //  no request flag is defined yet

typedef struct {
    uint64_t incarnation; //  position: the serving shard's incarnation counter; 0: the beginning
    uint64_t nonce;       //  position: that incarnation's nonce
    uint64_t timestamp;   //  position: the records after this timestamp (ns)
    uint32_t limit;       //  1..RL_EVENTS_LIMIT_MAX records
    uint32_t flags;       //  must be zero
    uint64_t reserved[4]; //  must be zero
} rl_events_req_t;

//  The legs of an event: a same-shard transfer moves both accounts; a
//  cross-shard one shows as its debit leg on the debit shard and its credit
//  leg on the credit shard, each with the transfer's id.
#define RL_EVENT_LEG_BOTH   0u
#define RL_EVENT_LEG_DEBIT  1u
#define RL_EVENT_LEG_CREDIT 2u

typedef struct {
    rl_transfer_t transfer; //  as stored; transfer.timestamp is the event's position
    uint64_t incarnation;   //  position: the serving shard's incarnation counter
    uint64_t nonce;         //  position: its nonce
    uint32_t result;        //  rl_result_t: ok (balances moved), or the failure that burned the id
    uint32_t leg;           //  RL_EVENT_LEG_*
    uint64_t reserved;      //  zero
} rl_event_t;

//  Backups (ops 60..63, docs/backup.md) ----------------------------------------
typedef enum {
    RL_BACKUP_IDLE = 0,    //  no hold, no copy (or another token's)
    RL_BACKUP_HELD = 1,    //  requests and peer messages wait; nothing is applied
    RL_BACKUP_COPYING = 2, //  the cut is fixed; its copy into the backup engine runs
    RL_BACKUP_DONE = 3,    //  the copy is a verified backup (backup_id)
    RL_BACKUP_FAILED = 4,  //  the copy failed (message); the hold, if any, is over
} rl_backup_state_t;

//  Why a backup operation was refused (the reply's `result`; 0: done).
typedef enum {
    RL_BACKUP_OK = 0,
    RL_BACKUP_BAD_REQUEST = 1, //  token 0, hold_ms out of range, fields not zeroed
    RL_BACKUP_BAD_PATH = 2,    //  dir: not absolute, "..", control bytes, too long, not a dir
    RL_BACKUP_NOT_HELD = 3,    //  cut or release of a hold this token does not have (ended?)
    RL_BACKUP_BUSY = 4,        //  another token holds, or a copy still runs: retry later
    RL_BACKUP_STORAGE = 5,     //  the checkpoint could not be made (message)
    RL_BACKUP_UNKNOWN = 6,     //  status of a token this shard has no copy of
} rl_backup_result_t;

//  The backup record (512 bytes): request and reply of every backup op.
typedef struct {
    uint64_t token;          //  the cut's id, chosen by the tool, never 0
    uint32_t hold_ms;        //  hold: the hold ends by itself after this (1..RL_BACKUP_HOLD_MS_MAX)
    uint32_t state;          //  rl_backup_state_t (reply)
    uint32_t result;         //  rl_backup_result_t (reply)
    uint32_t backup_id;      //  status: the backup engine's id of the copy, 0 until done
    uint64_t accounts;       //  cut: accounts in the cut
    uint64_t transfers;      //  cut: transfers in the cut
    uint64_t last_timestamp; //  cut: the last timestamp the cut holds
    uint64_t epoch;          //  cut: the ring epoch the cut holds
    uint64_t held_us;        //  release: how long the hold lasted
    uint64_t cut_us;         //  cut: time to make the checkpoint
    uint64_t copy_ms;        //  status: time the copy took (so far)
    uint64_t files;          //  status: files of the backup
    uint64_t bytes;          //  status: bytes of the backup
    uint64_t new_bytes;      //  status: bytes this copy added to the backup directory
    uint64_t reserved;       //  zero
    char dir[RL_BACKUP_DIR_SIZE_MAX];     //  cut: the backup set's directory (absolute)
    char message[RL_BACKUP_MESSAGE_SIZE]; //  reply: why refused or failed, else ""
} rl_backup_rec_t;

//  Replication (ops 80..83, docs/replication.md) -----------------------------
//  repl_status answers one record for the process (a primary, a standby, or
//  a shard without replication), then a primary one per standby link.
#define RL_REPL_RECORDS_MAX 5 //  the process and REPLICA_STANDBYS_MAX links

typedef enum {
    RL_REPL_NONE = 0,    //  a shard without replication
    RL_REPL_PRIMARY = 1, //  a primary: the quorum and its position
    RL_REPL_LINK = 2,    //  a primary's link to one standby (endpoint)
    RL_REPL_STANDBY = 3, //  a standby: the copy it holds
} rl_repl_role_t;

//  A link's state (RL_REPL_LINK) or a standby's (RL_REPL_STANDBY).
typedef enum {
    RL_REPL_HELLO = 0,     //  link: asking the standby's position; standby: empty (no copy)
    RL_REPL_SEEDING = 1,   //  a seed is in progress
    RL_REPL_STREAMING = 2, //  events flow and are acknowledged
    RL_REPL_FENCED = 3,    //  link: the standby answered fenced; standby: fenced by `fence`
    RL_REPL_PROMOTED = 4,  //  standby: promoted, opening as the primary
    RL_REPL_REFUSING = 5,  //  link: a standby fenced by another promotion refuses this primary
} rl_repl_state_t;

#define RL_REPL_FLAG_STALLED 1u //  primary: stalled (too few acknowledgements or leases)

typedef struct {
    uint32_t role;            //  rl_repl_role_t
    uint32_t state;           //  rl_repl_state_t (links and standbys)
    uint64_t stream;          //  the stream (primary: its own; link: its; standby: the copy's)
    uint64_t position;        //  primary: events tapped; link: acknowledged; standby: applied
    uint64_t quorum_position; //  primary: the quorum-th highest acknowledged position
    uint32_t quorum;          //  primary: --repl-quorum; standby: the one its primary told
    uint32_t standbys;        //  primary: its standbys; standby: the number its primary told
    uint64_t incarnation;     //  the incarnation counter of the copy (primary: its own)
    uint64_t nonce;           //  and its nonce
    uint64_t lease_ms;        //  link: ms since its lease began (UINT64_MAX: none); standby: ms
                              //  left of the old primary's lease through it (0: none left)
    uint32_t mode;            //  primary: replica mode (1 semi, 2 async)
    uint32_t flags;           //  RL_REPL_FLAG_*
    uint64_t timeout_ms;      //  primary: --repl-timeout-ms; standby: the one its primary told
    uint64_t reserved[6];     //  zero
    char endpoint[RL_ENDPOINT_SIZE_MAX]; //  link: the standby; standby: its primary
} rl_repl_rec_t;

typedef enum {
    RL_DURABILITY_SYNC = 1,            //  WAL synced before every reply (default)
    RL_DURABILITY_NOSYNC = 2,          //  benchmark only: WAL written, not synced
    RL_DURABILITY_SYNC_MANUAL_WAL = 3, //  tests: WAL held in memory until group commit flush+sync
} rl_durability_t;

//  A shard's state in its status record.
typedef enum {
    RL_SHARD_SERVING = 0, //  serving
    RL_SHARD_FAILED = 1,  //  a write, sync or checkpoint failed: refuses every request
                          //  but status with storage_error until restarted
    RL_SHARD_STANDBY = 2, //  a standby (docs/replication.md): applies its primary's stream,
                          //  answers status and promote only
    RL_SHARD_STALLED = 3, //  a semi-synchronous primary whose standby has not acknowledged
                          //  within the timeout: writes are answered busy
    RL_SHARD_FENCED = 4,  //  a former primary whose standby was promoted: answers every
                          //  request but status fenced until wiped and re-seeded as a standby
} rl_shard_state_t;

//  Flags or-ed into a status record's durability: the replication mode.
//  SEMI: replies wait for the standby's synced write. ASYNC: a standby
//  that replies do not wait for (invariant 9 suspended).
#define RL_DURABILITY_REPL_SEMI  0x10000u
#define RL_DURABILITY_REPL_ASYNC 0x20000u

//  Names and meanings of codes ----------------------------------------------
//  Every function here accepts any u32 (a newer peer, garbage) and returns
//  a static string, never NULL: a value this version does not define is
//  named "unknown". Names are the identifiers of the tables above without
//  their prefix, in lower case; they are part of the protocol (logs, the
//  CLI, docs/protocol.md and the Python client use them).
const char *rl_op_name (uint32_t op);
//  The roles allowed to send op (RL_OP_ROLES_TABLE); 0 for an unknown op.
unsigned rl_op_roles (uint32_t op);
const char *rl_status_name (uint32_t status);
const char *rl_result_name (uint32_t result);
const char *rl_durability_name (uint32_t durability);
const char *rl_shard_state_name (uint32_t state); //  "serving", "failed"
const char *rl_tp_state_name (uint32_t state);

//  What to tell an operator about a message status or a result code: one
//  sentence saying what happened and what to do next, for the CLI. "" for
//  ok (and for an ok result: nothing to do). An undefined status: "";
//  an undefined result: treat it as outcome_unknown.
const char *rl_status_hint (uint32_t status);
const char *rl_result_hint (uint32_t result);

//  The class of a result: RL_RESULT_CLASS_UNKNOWN for a value this version
//  does not define. rl_result_class_name: "applied", "infrastructure",
//  "id validation", "idempotency", "field validation", "account lookups",
//  "ledger", "pending", "balances", "unknown" (the "group"
//  column of docs/protocol.md, without its precedence number).
rl_result_class_t rl_result_class (uint32_t result);
const char *rl_result_class_name (rl_result_class_t result_class);

//  What a result leaves of its id. RL_BURNS_NO is 0, so that
//  `if (rl_result_burns (r))` reads "the id is spent". A value this
//  version does not define is RL_BURNS_NO: retry with the same id, never
//  pay again. rl_burns_name: "no", "yes", "success", "taken" (the "burns
//  id" column of docs/protocol.md).
rl_burns_t rl_result_burns (uint32_t result);
const char *rl_burns_name (rl_burns_t burns);

//  True when a result leaves the id free for a retry (rl_result_burns is
//  RL_BURNS_NO): infrastructure codes, id and field validation, and any
//  value this version does not define.
bool rl_result_is_retryable (uint32_t result);

//  What one create_transfers reply leaves of the id of transfers[i], its
//  linked chains counted (docs/payments.md, "Linked chains", rule 1):
//  rl_result_burns of results[i].result, except for a member of a linked
//  chain (a record flagged linked, or the record that closes a chain: the
//  one after a linked record), which is never RL_BURNS_YES. A chain that
//  fails stores nothing, so its failing member's own code
//  (exceeds_credits, debit_account_not_found, ...) leaves its id free, as
//  the others' linked_event_failed does: RL_BURNS_NO. Decide "burned or
//  retryable" from this, never from a member's code alone; a record
//  outside any chain reads as its code. `transfers` is the request (in its
//  order, `count` records) and `results` its reply, results[k] answering
//  transfers[k] (the order of every reply); i < count.
//  The one thing a reply cannot show: a member whose id a record sent
//  alone burned earlier is answered that old failure (and fails its chain
//  again each time); this reply burned nothing, so it reads RL_BURNS_NO
//  too, and a retry of the chain gets the old failure (or, changed,
//  exists_with_different_*) again. RL_BURNS_TAKEN and RL_BURNS_SUCCESS are
//  kept as they are.
rl_burns_t rl_reply_burns (const rl_transfer_t *transfers, const rl_result_rec_t *results,
                           size_t count, size_t i);

//  True when the reply leaves transfers[i]'s id free for a retry
//  (rl_reply_burns is RL_BURNS_NO).
bool rl_reply_is_retryable (const rl_transfer_t *transfers, const rl_result_rec_t *results,
                            size_t count, size_t i);

#endif
