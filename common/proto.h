/*  proto.h: the ringledger wire protocol, as C types.

    Every message is one ZeroMQ frame (after any routing envelope) holding a
    32-byte header followed by `record_count` fixed-size little-endian
    records. docs/protocol.md describes every byte and carries hex test
    vectors; tests/test_codec.c and tests/test_protocol.py check them.

    The structs below are the in-memory (host order) form. codec.c is the
    only place that turns bytes from the network into these structs; on a
    little-endian host the layout is identical and decoding is a copy, which
    the _Static_asserts in codec.c pin down.

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
typedef enum {
    RL_OP_CREATE_ACCOUNTS = 1,       //  account[]            -> result[]
    RL_OP_CREATE_TRANSFERS = 2,      //  transfer[]           -> result[]
    RL_OP_LOOKUP_ACCOUNTS = 3,       //  id[]                 -> account[] (timestamp 0: not found)
    RL_OP_LOOKUP_TRANSFERS = 4,      //  id[]                 -> transfer[] (timestamp 0: not found)
    RL_OP_GET_ACCOUNT_TRANSFERS = 5, //  filter[1]            -> transfer[] (up to limit)
    RL_OP_STATUS = 6,                //  (none)               -> status[1]
    RL_OP_LOAD_RING = 7,             //  ring blob (count 1)  -> (none); refused unless epoch grows
    RL_OP_GET_RING = 8,              //  (none)               -> ring blob (count 1)
    //  16..31: two-phase transfers between shards (reserved, docs/two-phase.md)
    RL_OP_PREPARE = 16,
    RL_OP_DECIDE = 17,
    RL_OP_ACK = 18,
    RL_OP_OUTCOME_QUERY = 19,
    //  32..47: admin (reserved)
    RL_OP_IN_DOUBT = 32,
    RL_OP_AUDIT = 33,
    RL_OP_RESOLVE = 34, //  two-phase record[] -> two-phase record[] (heuristic)
} rl_op_t;

//  Message-level status, in the reply header --------------------------------
typedef enum {
    RL_STATUS_OK = 0,
    RL_STATUS_MALFORMED = 1, //  short frame, or count disagrees with size
    RL_STATUS_BAD_MAGIC = 2,
    RL_STATUS_BAD_VERSION = 3,
    RL_STATUS_UNKNOWN_OPERATION = 4,
    RL_STATUS_TOO_MANY_RECORDS = 5, //  more than RL_BATCH_RECORDS_MAX, or oversize frame
    RL_STATUS_BUSY = 6,             //  a bounded queue is full: back off and retry
    RL_STATUS_STORAGE_ERROR = 7,    //  the store refuses writes until it recovers
    RL_STATUS_EPOCH_NOT_NEWER = 8,  //  load ring: the epoch does not increase
    RL_STATUS_BAD_RING = 9,         //  load ring: the blob does not decode
    RL_STATUS_BAD_FILTER = 10,      //  get_account_transfers: invalid filter
    RL_STATUS_UNAVAILABLE = 11,     //  router: no shard could be reached
    RL_STATUS_TIMEOUT = 12,         //  router: deadline passed on a read or admin request
                                    //  (creates answer status ok, open records outcome_unknown)
    RL_STATUS_DUPLICATE_ID = 13,    //  router: an id appears twice in one batch
    RL_STATUS_WRONG_SHARD = 14,     //  read of an account the shard does not own at its epoch
} rl_status_t;

//  Per-record result codes (create_accounts and create_transfers) ----------
typedef enum {
    RL_OK = 0,
    RL_EXISTS = 1, //  the same record was created earlier: success

    //  infrastructure: never burns the id
    RL_WRONG_SHARD = 2,
    RL_BUSY = 3,
    RL_ABORTED = 4,
    RL_OUTCOME_UNKNOWN = 5,
    RL_IN_PROGRESS = 6,
    RL_IN_DOUBT = 7,
    RL_FROZEN = 8,
    RL_STORAGE_ERROR = 9,
    RL_LINKED_EVENT_FAILED = 10,     //  reserved for linked chains
    RL_LINKED_EVENT_CHAIN_OPEN = 11, //  reserved for linked chains

    //  id validation
    RL_ID_MUST_NOT_BE_ZERO = 16,
    RL_ID_MUST_NOT_BE_INT_MAX = 17,

    //  idempotency: the id exists with other fields
    RL_EXISTS_WITH_DIFFERENT_FLAGS = 20,
    RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = 21,
    RL_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = 22,
    RL_EXISTS_WITH_DIFFERENT_AMOUNT = 23,
    RL_EXISTS_WITH_DIFFERENT_PENDING_ID = 24,
    RL_EXISTS_WITH_DIFFERENT_USER_DATA_128 = 25,
    RL_EXISTS_WITH_DIFFERENT_USER_DATA_64 = 26,
    RL_EXISTS_WITH_DIFFERENT_USER_DATA_32 = 27,
    RL_EXISTS_WITH_DIFFERENT_TIMEOUT = 28,
    RL_EXISTS_WITH_DIFFERENT_LEDGER = 29,
    RL_EXISTS_WITH_DIFFERENT_CODE = 30,

    //  field validation: depends on the record alone, never burns the id
    RL_TIMESTAMP_MUST_BE_ZERO = 40,
    RL_RESERVED_FIELD = 41,
    RL_RESERVED_FLAG = 42,
    RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE = 43,
    RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 44,
    RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 45,
    RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 46,
    RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 47,
    RL_ACCOUNTS_MUST_BE_DIFFERENT = 48,
    RL_PENDING_ID_MUST_BE_ZERO = 49,
    RL_PENDING_ID_MUST_NOT_BE_ZERO = 50,    //  reserved: post/void
    RL_PENDING_ID_MUST_NOT_BE_INT_MAX = 51, //  reserved: post/void
    RL_PENDING_ID_MUST_BE_DIFFERENT = 52,   //  reserved: post/void
    RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = 53,
    RL_AMOUNT_MUST_NOT_BE_ZERO = 54,
    RL_LEDGER_MUST_NOT_BE_ZERO = 55,
    RL_CODE_MUST_NOT_BE_ZERO = 56,
    RL_NOT_SUPPORTED = 57, //  a reserved feature flag (pending, linked) not yet served

    //  account lookups: state-dependent, burns the id
    RL_DEBIT_ACCOUNT_NOT_FOUND = 60,
    RL_CREDIT_ACCOUNT_NOT_FOUND = 61,

    //  ledger: burns the id
    RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = 64,
    RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = 65,

    //  user-level pending transfers (reserved, burns the id)
    RL_PENDING_TRANSFER_NOT_FOUND = 68,
    RL_PENDING_TRANSFER_NOT_PENDING = 69,
    RL_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = 70,
    RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = 71,
    RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = 72,
    RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE = 73,
    RL_EXCEEDS_PENDING_TRANSFER_AMOUNT = 74,
    RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = 75,
    RL_PENDING_TRANSFER_ALREADY_POSTED = 76,
    RL_PENDING_TRANSFER_ALREADY_VOIDED = 77,
    RL_PENDING_TRANSFER_EXPIRED = 78,

    //  balances: burns the id
    RL_OVERFLOWS_DEBITS_PENDING = 80,
    RL_OVERFLOWS_CREDITS_PENDING = 81,
    RL_OVERFLOWS_DEBITS_POSTED = 82,
    RL_OVERFLOWS_CREDITS_POSTED = 83,
    RL_OVERFLOWS_DEBITS = 84,
    RL_OVERFLOWS_CREDITS = 85,
    RL_OVERFLOWS_TIMEOUT = 86, //  reserved: pending timeouts
    RL_EXCEEDS_CREDITS = 87,
    RL_EXCEEDS_DEBITS = 88,

    //  create_accounts only (field validation)
    RL_DEBITS_PENDING_MUST_BE_ZERO = 100,
    RL_DEBITS_POSTED_MUST_BE_ZERO = 101,
    RL_CREDITS_PENDING_MUST_BE_ZERO = 102,
    RL_CREDITS_POSTED_MUST_BE_ZERO = 103,
} rl_result_t;

//  Account flags (u16) -----------------------------------------------------
#define RL_ACCOUNT_LINKED                         (1u << 0) //  reserved: linked chains
#define RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS (1u << 1)
#define RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS (1u << 2)
#define RL_ACCOUNT_FLAGS_KNOWN                    0x0007u

//  Transfer flags (u16) ----------------------------------------------------
#define RL_TRANSFER_LINKED                (1u << 0) //  reserved: linked chains
#define RL_TRANSFER_PENDING               (1u << 1) //  reserved: authorise now
#define RL_TRANSFER_POST_PENDING_TRANSFER (1u << 2) //  reserved: post later
#define RL_TRANSFER_VOID_PENDING_TRANSFER (1u << 3) //  reserved: void later
#define RL_TRANSFER_BALANCING_DEBIT       (1u << 4) //  reserved
#define RL_TRANSFER_BALANCING_CREDIT      (1u << 5) //  reserved
#define RL_TRANSFER_FLAGS_KNOWN           0x003Fu

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
    uint32_t reserved0;
    uint64_t uptime_ms;           //  since start
    uint64_t store_keys_written;  //  RocksDB statistics since start: keys written
    uint64_t store_bytes_written; //  RocksDB statistics: bytes written (keys + values)
    uint64_t wal_bytes;           //  RocksDB statistics: bytes appended to the WAL
    uint64_t wal_syncs;           //  RocksDB statistics: WAL syncs
    uint64_t checkpoints;         //  ledger checkpoints since start
    uint64_t alarms;              //  two-phase alarms: contrary or unknown decisions
    uint64_t reserved[8];         //  zero
} rl_status_rec_t;

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

//  Admin: the reply of audit (op 33).
typedef struct {
    uint32_t ok; //  1: every reservation accounted for
    uint32_t reserved0;
    uint64_t accounts; //  accounts checked
    uint64_t live;     //  live attempts (coordinator)
    uint64_t prepared; //  prepared records (participant)
    char message[224]; //  the first discrepancy, NUL-terminated
} rl_audit_rec_t;

typedef enum {
    RL_DURABILITY_SYNC = 1,            //  WAL synced before every reply (default)
    RL_DURABILITY_NOSYNC = 2,          //  benchmark only: WAL written, not synced
    RL_DURABILITY_SYNC_MANUAL_WAL = 3, //  tests: WAL held in memory until group commit flush+sync
} rl_durability_t;

const char *rl_result_name (uint32_t result);
const char *rl_status_name (uint32_t status);
const char *rl_op_name (uint32_t op);
const char *rl_durability_name (uint32_t durability);
const char *rl_tp_state_name (uint32_t state);

//  True when a result leaves the id free for a retry (infrastructure codes
//  and field validation); false when the outcome is final for that id.
//  A value this version does not define is true: retry with the same id.
bool rl_result_is_retryable (uint32_t result);

#endif
