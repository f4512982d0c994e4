/*  rlctl.h: what the parts of the operator CLI share (docs/cli.md).

    rlctl.c         options, the command table and main
    rlctl_text.c    ids, numbers, times and account flags
    rlctl_records.c create-account, transfer, balance, transfer-get, history
    rlctl_cluster.c ring, locate, status, in-doubt, audit, resolve
    rlctl_top.c     top (a live view, redrawn every interval)
    rlctl_keys.c    keygen (CURVE keypairs, docs/security.md)
    rlctl_backup.c  backup, verify-backup, restore, backup-purge (docs/backup.md)
    rlctl_reverse.c reverse (reversals, docs/payments.md)
    rlctl_replica.c promote (the fail-over at a new ring epoch), degrade
                    (docs/replication.md)

    DESIGN
    A command asks the cluster, then builds one cJSON tree of the answer
    and hands it to rlctl_emit with its table printer: the tree is printed
    as JSON with --json, else the printer draws the table from the tree.
    So both forms show the same data, and no JSON is written by hand
    (tools/jsonkit.h).

    INVARIANTS
    1. Exit codes: RLCTL_EXIT_OK every record succeeded (ok or exists)
       and every shard answered; RLCTL_EXIT_FAILED a record failed, an
       account or transfer was not found, a shard is down or the cluster
       did not answer; RLCTL_EXIT_USAGE a usage error (nothing was sent).
    2. A create is sent once, never retried by rlctl: on a timeout the
       outcome is unknown and the message says to retry with the same id.
*/
#ifndef RL_RLCTL_H
#define RL_RLCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "jsonkit.h"
#include "proto.h"

#define RLCTL_EXIT_OK                 0
#define RLCTL_EXIT_FAILED             1 //  a record failed, or the cluster did not answer
#define RLCTL_EXIT_USAGE              2
#define RLCTL_IDS_MAX                 1024 //  ids on one command line
#define RLCTL_TRANSFERS_MAX           64   //  transfers on one command line (4 arguments each)
#define RLCTL_ARGS_MAX                (RLCTL_IDS_MAX + 8) //  positional arguments
#define RLCTL_PROBE_TIMEOUT_MS        2000 //  status, in-doubt, audit: longest wait for one shard
#define RLCTL_ID_TEXT_SIZE            40   //  "0x" + 32 digits + NUL, rounded up
#define RLCTL_NUMBER_TEXT_SIZE        32   //  a signed 64-bit magnitude with its sign
#define RLCTL_TOP_INTERVAL_MS_DEFAULT 1000
#define RLCTL_TOP_INTERVAL_MS_MIN     100
#define RLCTL_TOP_INTERVAL_MS_MAX     3600000 //  one hour
#define RLCTL_TOP_COUNT_MAX           1000000 //  views before top exits by itself

//  Each option has a bit; each command lists the bits it accepts.
enum {
    RLCTL_O_LEDGER = 1u << 0,
    RLCTL_O_CODE = 1u << 1,
    RLCTL_O_FLAGS = 1u << 2,
    RLCTL_O_UD128 = 1u << 3,
    RLCTL_O_UD64 = 1u << 4,
    RLCTL_O_UD32 = 1u << 5,
    RLCTL_O_LIMIT = 1u << 6,
    RLCTL_O_REVERSE = 1u << 7,
    RLCTL_O_FROM = 1u << 8,
    RLCTL_O_TO = 1u << 9,
    RLCTL_O_DEBITS = 1u << 10,
    RLCTL_O_CREDITS = 1u << 11,
    RLCTL_O_TEXT = 1u << 12,
    RLCTL_O_CONNECT = 1u << 13,
    RLCTL_O_JSON = 1u << 14,
    RLCTL_O_TIMEOUT = 1u << 15,
    RLCTL_O_HELP = 1u << 16,
    RLCTL_O_FORCE = 1u << 17,
    RLCTL_O_ROLE = 1u << 18,
    RLCTL_O_NAME = 1u << 19,
    RLCTL_O_DIR = 1u << 20,
    RLCTL_O_CERT = 1u << 21,
    RLCTL_O_SERVER_KEY = 1u << 22,
    RLCTL_O_INSECURE = 1u << 23,
    RLCTL_O_INTERVAL = 1u << 24,
    RLCTL_O_COUNT = 1u << 25,
    RLCTL_O_CLUSTER = 1u << 26,
    RLCTL_O_K = 1u << 27,
    RLCTL_O_AMOUNT = 1u << 28,
    RLCTL_O_PENDING = 1u << 29,   //  transfer --pending
    RLCTL_O_TIMEOUT_S = 1u << 30, //  transfer --timeout (seconds)
    RLCTL_O_LINKED = 1u << 31,    //  transfer --linked
    RLCTL_O_GLOBAL = RLCTL_O_CONNECT | RLCTL_O_JSON | RLCTL_O_TIMEOUT | RLCTL_O_HELP | RLCTL_O_CERT
                     | RLCTL_O_SERVER_KEY | RLCTL_O_INSECURE,
};

//  The command line, parsed.
typedef struct {
    const char *connect; //  endpoints, comma-separated
    bool json;
    int timeout_ms;
    unsigned given; //  RLCTL_O_* bits seen
    uint32_t ledger;
    uint16_t code;
    uint16_t account_flags;
    rl_id_t user_data_128;
    uint64_t user_data_64;
    uint32_t user_data_32;
    uint32_t limit;
    uint64_t timestamp_min;           //  ns
    uint64_t timestamp_max;           //  ns
    const char *role;                 //  keygen --role
    const char *name;                 //  keygen --name
    const char *dir;                  //  keygen --dir
    const char *cert;                 //  --cert (or $RL_CERT): this client's secret certificate
    const char *server_key;           //  --server-key (or $RL_SERVER_KEY): --connect's key
    int interval_ms;                  //  top --interval-ms
    uint64_t count;                   //  top --count; 0: until q or Ctrl-C
    uint32_t k;                       //  reverse --k
    uint64_t amount;                  //  reverse --amount, minor units
    uint32_t timeout_s;               //  transfer --timeout: a pending transfer's, seconds
    const char *args[RLCTL_ARGS_MAX]; //  positional, the command first
    size_t arg_count;
} rlctl_ctx_t;

//  Draws the table of a command's tree on stdout.
typedef void (rlctl_table_fn) (const rlctl_ctx_t *ctx, const cJSON *tree);

//  Commands (each returns an exit code).
int rlctl_cmd_create_account (rlctl_ctx_t *ctx);
int rlctl_cmd_transfer (rlctl_ctx_t *ctx);
int rlctl_cmd_post (rlctl_ctx_t *ctx); //  post and void of a pending transfer
int rlctl_cmd_void (rlctl_ctx_t *ctx);
int rlctl_cmd_balance (rlctl_ctx_t *ctx);
int rlctl_cmd_transfer_get (rlctl_ctx_t *ctx);
int rlctl_cmd_history (rlctl_ctx_t *ctx);
int rlctl_cmd_ring (rlctl_ctx_t *ctx);
int rlctl_cmd_locate (rlctl_ctx_t *ctx);
int rlctl_cmd_status (rlctl_ctx_t *ctx);
int rlctl_cmd_in_doubt (rlctl_ctx_t *ctx);
int rlctl_cmd_audit (rlctl_ctx_t *ctx);
int rlctl_cmd_resolve (rlctl_ctx_t *ctx);
int rlctl_cmd_keygen (rlctl_ctx_t *ctx);
int rlctl_cmd_top (rlctl_ctx_t *ctx);
int rlctl_cmd_backup (rlctl_ctx_t *ctx);        //  rlctl_backup.c
int rlctl_cmd_verify_backup (rlctl_ctx_t *ctx); //  rlctl_backup.c
int rlctl_cmd_restore (rlctl_ctx_t *ctx);       //  rlctl_backup.c
int rlctl_cmd_backup_purge (rlctl_ctx_t *ctx);  //  rlctl_backup.c
int rlctl_cmd_reverse (rlctl_ctx_t *ctx);       //  rlctl_reverse.c
int rlctl_cmd_promote (rlctl_ctx_t *ctx);       //  rlctl_replica.c
int rlctl_cmd_degrade (rlctl_ctx_t *ctx);       //  rlctl_replica.c

//  Output and errors (rlctl.c) --------------------------------------------------
//  Prints tree as JSON (--json) or through table; destroys the tree.
//  Returns exit_code, or RLCTL_EXIT_FAILED when the tree is incomplete
//  (out of memory).
int rlctl_emit (const rlctl_ctx_t *ctx, cJSON **tree_p, rlctl_table_fn *table, int exit_code);
//  Reports a call that did not return ok (stderr; with --json also an
//  {"error", "message"} object). is_create: the outcome may be unknown.
int rlctl_call_failed (const rlctl_ctx_t *ctx, const char *what, int rc, bool is_create);
//  The endpoints of --connect (comma-separated), pointing into buf; their
//  count, 0 when the list does not fit (size bytes, RL_SHARDS_MAX of them).
size_t rlctl_connect_endpoints (const rlctl_ctx_t *ctx, char *buf, size_t size,
                                const char **endpoints);
int rlctl_usage_error (const char *format, const char *detail);
//  A client of --connect; NULL after printing why.
rl_client_t *rlctl_client (const rlctl_ctx_t *ctx);
//  Ids from the positional arguments [first, arg_count); usage error on a bad one.
int rlctl_parse_ids (const rlctl_ctx_t *ctx, size_t first, rl_id_t *ids, size_t *count_p);

//  The ring (rlctl_cluster.c) ----------------------------------------------------
typedef struct ring_t ring_t;
//  The ring that client's endpoint serves, into *ring_p, with each shard's
//  key registered for the direct calls. 0, or the call's code; a ring that
//  does not decode: RL_CLIENT_ERR_REPLY with the reason in err (else "").
int rlctl_ring_get (rl_client_t *client, int timeout_ms, ring_t **ring_p, char *err,
                    size_t err_size);
//  The newest ring the shards serve, starting from *ring_p (which it takes
//  and may replace): asks every shard of the ring for its own, takes the
//  highest epoch, and asks again while that brings a newer one (a router
//  serves a ring change only from its next refresh). Shards that do not
//  answer within timeout_ms are passed over. Each shard's key is
//  registered for the direct calls.
void rlctl_ring_newest (ring_t **ring_p, int timeout_ms);

//  Text (rlctl_text.c) ---------------------------------------------------------
int rlctl_parse_u64 (const char *text, uint64_t *value_p);
int rlctl_parse_id (const char *text, rl_id_t *id);
int rlctl_parse_account_flags (const char *text, uint16_t *flags_p);
const char *rlctl_id_text (rl_id_t id, char out[RLCTL_ID_TEXT_SIZE]);
//  credits - debits, as text with a sign.
const char *rlctl_balance_text (uint64_t credits, uint64_t debits,
                                char out[RLCTL_NUMBER_TEXT_SIZE]);
//  ns since the epoch -> "2026-11-25T14:25:01.123Z"; "-" for 0.
const char *rlctl_time_text (uint64_t ns, char *out, size_t size);
const char *rlctl_account_flags_text (uint16_t flags);
#endif
