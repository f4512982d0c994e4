/*  rlctl.c: the operator CLI of a ringledger cluster (docs/cli.md):
    options, the command table and main. The commands are in
    rlctl_records.c and rlctl_cluster.c, the text forms in rlctl_text.c
    (rlctl.h lists the parts).

    rlctl [--connect ENDPOINTS] [--json] [--timeout-ms MS]
          [--cert FILE --server-key KEY | --insecure] COMMAND ...

        create-account ID... --ledger L --code C [--flags FLAGS] [--user-data-*]
        transfer ID DEBIT CREDIT AMOUNT --ledger L --code C [--user-data-*]
        reverse ID [--k K] [--amount N] [--code C] [--user-data-32 N]
        balance ID...
        history ID [--limit N] [--reverse] [--from TS] [--to TS] [--debits|--credits]
        transfer-get ID...
        status
        top [--interval-ms MS] [--count N]
        in-doubt
        audit
        resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort --force
        ring [--text]
        locate ID...
        keygen --role ROLE --name NAME --dir KEYDIR
        backup DIR --cluster | --name SHARD
        verify-backup DIR [SET]
        restore DIR ROOT [SET]
        backup-purge DIR KEEP
        promote [SHARD STANDBY [RING-FILE]], degrade (rlctl_replica.c)

    DESIGN
    One command is one request (status, in-doubt, audit: one get_ring,
    then one request to every shard of that ring; top: that once per
    interval, rlctl_top.c), sent through the C client library
    (common/client.h). Results are data: every record's
    result is printed by name (rl_result_name) with what to do next.
    Tables for people by default, one JSON object with --json, both from
    the same cJSON tree (rlctl_emit).

    INVARIANTS
    1. The exit codes of rlctl.h; a usage error sends nothing.
    2. An option a command does not take is a usage error.
    3. Nothing but the requests named above is sent; rlctl keeps no state
       (top keeps the last status records, in memory, for its rates).

    LIMITS
    RLCTL_IDS_MAX ids per command; --timeout-ms 1..S_TIMEOUT_MS_MAX, and
    above RL_ROUTER_DEADLINE_MS for create-account and transfer (the order
    of timeouts: the client waits longer than the router's deadline).
*/
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "keys.h"
#include "rlctl.h"

#define S_CONNECT_DEFAULT    "tcp://127.0.0.1:7100"
#define S_TIMEOUT_MS_DEFAULT RL_CLIENT_TIMEOUT_MS
#define S_TIMEOUT_MS_MAX     3600000 //  one hour

typedef struct {
    const char *name;
    unsigned bit;
    bool takes_value;
} s_option_t;

static const s_option_t s_options[] = {
    {"--ledger", RLCTL_O_LEDGER, true},      {"--code", RLCTL_O_CODE, true},
    {"--flags", RLCTL_O_FLAGS, true},        {"--user-data-128", RLCTL_O_UD128, true},
    {"--user-data-64", RLCTL_O_UD64, true},  {"--user-data-32", RLCTL_O_UD32, true},
    {"--limit", RLCTL_O_LIMIT, true},        {"--reverse", RLCTL_O_REVERSE, false},
    {"--from", RLCTL_O_FROM, true},          {"--to", RLCTL_O_TO, true},
    {"--debits", RLCTL_O_DEBITS, false},     {"--credits", RLCTL_O_CREDITS, false},
    {"--text", RLCTL_O_TEXT, false},         {"--connect", RLCTL_O_CONNECT, true},
    {"--json", RLCTL_O_JSON, false},         {"--timeout-ms", RLCTL_O_TIMEOUT, true},
    {"--help", RLCTL_O_HELP, false},         {"-h", RLCTL_O_HELP, false},
    {"--force", RLCTL_O_FORCE, false},       {"--role", RLCTL_O_ROLE, true},
    {"--name", RLCTL_O_NAME, true},          {"--dir", RLCTL_O_DIR, true},
    {"--cert", RLCTL_O_CERT, true},          {"--server-key", RLCTL_O_SERVER_KEY, true},
    {"--insecure", RLCTL_O_INSECURE, false}, {"--interval-ms", RLCTL_O_INTERVAL, true},
    {"--count", RLCTL_O_COUNT, true},        {"--cluster", RLCTL_O_CLUSTER, false},
    {"--amount", RLCTL_O_AMOUNT, true},      {"--k", RLCTL_O_K, true},
    {"--pending", RLCTL_O_PENDING, false},   {"--timeout", RLCTL_O_TIMEOUT_S, true},
    {"--linked", RLCTL_O_LINKED, false},
};

typedef int (s_command_fn) (rlctl_ctx_t *ctx);

typedef struct {
    const char *name;
    s_command_fn *run;
    unsigned options; //  RLCTL_O_* bits accepted besides the global ones
    size_t args_min;  //  positional arguments after the command
    size_t args_max;
    const char *usage;
} s_command_t;

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: rlctl [--connect ENDPOINTS] [--json] [--timeout-ms MS]\n"
        "             [--cert FILE --server-key KEY | --insecure] COMMAND ...\n"
        "\n"
        "  create-account ID... --ledger L --code C [--flags FLAGS]\n"
        "                 [--user-data-128 X] [--user-data-64 N] [--user-data-32 N]\n"
        "      FLAGS: debits-must-not-exceed-credits | credits-must-not-exceed-debits | none\n"
        "  transfer ID DEBIT CREDIT AMOUNT [ID DEBIT CREDIT AMOUNT]... --ledger L --code C\n"
        "           [--pending [--timeout S]] [--linked] [--user-data-*]\n"
        "                                    --pending: authorise (post or void later);\n"
        "                                    --linked: all of them or none (a chain)\n"
        "  post ID PENDING_ID DEBIT [AMOUNT]  capture a pending transfer (all of it by default)\n"
        "  void ID PENDING_ID DEBIT          release a pending transfer\n"
        "  reverse ID [--k K] [--amount N] [--code C] [--user-data-32 N]\n"
        "                                    refund transfer ID, in full or --amount N;\n"
        "                                    K: the next free by default (docs/payments.md)\n"
        "  balance ID...                     accounts: posted, pending, reserved, balance\n"
        "  history ID [--limit N] [--reverse] [--from TS] [--to TS] [--debits|--credits]\n"
        "  transfer-get ID...                transfers by id\n"
        "  status                            every shard of the ring, asked directly\n"
        "  in-doubt                          cross-shard transfers in flight, per shard\n"
        "  audit                             check every shard's reservations\n"
        "  resolve SHARD COORD ID C.S commit|abort --force\n"
        "                                    heuristic decision on a prepared transfer whose\n"
        "                                    coordinator is fenced out of the ring for good\n"
        "  ring [--text]                     the ring served at --connect\n"
        "  locate ID...                      the shard that owns each account, by that ring\n"
        "  top [--interval-ms MS] [--count N]\n"
        "                                    a live view of every shard, redrawn every\n"
        "                                    interval (default 1000 ms) until q or Ctrl-C;\n"
        "                                    --json: one object per interval, per line\n"
        "  keygen --role ROLE --name NAME --dir KEYDIR\n"
        "  backup DIR --cluster | --name SHARD   (docs/backup.md)\n"
        "  verify-backup DIR [SET]\n"
        "  restore DIR ROOT [SET]\n"
        "  backup-purge DIR KEEP             keep the KEEP newest sets, delete older backups\n"
        "  promote [SHARD STANDBY[,STANDBY...] [RING-FILE]]\n"
        "                                    fail SHARD over to its standby at STANDBY: promote\n"
        "                                    it, then the ring at the next epoch everywhere;\n"
        "                                    several: fence standbys - quorum + 1 of them and\n"
        "                                    promote the newest copy among those fenced;\n"
        "                                    no arguments: the standby at --connect alone\n"
        "  degrade                           the primary at --connect stops waiting for its\n"
        "                                    standby (async)\n"
        "  keygen --role ROLE --name NAME --dir KEYDIR\n"
        "                                    a CURVE keypair: KEYDIR/ROLE/NAME.key (public)\n"
        "                                    and KEYDIR/private/NAME.key_secret (mode 0600);\n"
        "                                    ROLE: client, router, shard or admin\n"
        "\n"
        "--connect   a router or a shard, or several, comma-separated\n"
        "            (default $RL_CONNECT, else " S_CONNECT_DEFAULT ")\n"
        "--json      one JSON object on stdout instead of tables\n"
        "--timeout-ms  how long to wait for a reply (default %d; for create-account\n"
        "            and transfer it must exceed the router's deadline, %d ms by default)\n"
        "IDs: decimal, 0x-hex (up to 128 bits) or a UUID; TS: ns since the Unix epoch.\n"
        "exit: 0 ok, 1 a record failed or the cluster did not answer, 2 usage.\n"
        "See docs/cli.md.\n",
        S_TIMEOUT_MS_DEFAULT, RL_ROUTER_DEADLINE_MS);
}

int
rlctl_usage_error (const char *format, const char *detail)
{
    fprintf (stderr, "rlctl: ");
    fprintf (stderr, format, detail);
    fprintf (stderr, "\n(run 'rlctl --help' for usage)\n");
    return RLCTL_EXIT_USAGE;
}

//  No connection came up: was it a CURVE handshake that failed (a wrong
//  server key, or this client's key refused) rather than nothing
//  listening? A status asked of each --connect endpoint for at most
//  S_HANDSHAKE_PROBE_MS says (the fan-out watches the handshakes): its
//  RL_CLIENT_ERR_HANDSHAKE or RL_CLIENT_ERR_REFUSED, else rc unchanged.
#define S_HANDSHAKE_PROBE_MS 500

size_t
rlctl_connect_endpoints (const rlctl_ctx_t *ctx, char *buf, size_t size, const char **endpoints)
{
    if (strlen (ctx->connect) >= size) {
        return 0;
    }
    snprintf (buf, size, "%s", ctx->connect);
    size_t count = 0;
    for (char *save = NULL, *e = strtok_r (buf, ",", &save); e; e = strtok_r (NULL, ",", &save)) {
        if (count == RL_SHARDS_MAX) {
            return 0;
        }
        endpoints[count++] = e;
    }
    return count;
}

static int
s_why_unreachable (const rlctl_ctx_t *ctx, int rc)
{
    if (rc != RL_CLIENT_ERR_SEND) {
        return rc;
    }
    static char list[RL_SHARDS_MAX * 64];
    static const char *endpoints[RL_SHARDS_MAX];
    static int rcs[RL_SHARDS_MAX];
    static rl_status_rec_t status[RL_SHARDS_MAX];
    size_t count = rlctl_connect_endpoints (ctx, list, sizeof list, endpoints);
    int probe = ctx->timeout_ms < S_HANDSHAKE_PROBE_MS ? ctx->timeout_ms : S_HANDSHAKE_PROBE_MS;
    rl_client_status_all (endpoints, count, probe, status, rcs);
    for (size_t i = 0; i < count; i++) {
        if (rcs[i] == RL_CLIENT_ERR_HANDSHAKE || rcs[i] == RL_CLIENT_ERR_REFUSED) {
            return rcs[i];
        }
    }
    return rc;
}

//  Reports a call that did not return ok. is_create: the outcome may be unknown.
int
rlctl_call_failed (const rlctl_ctx_t *ctx, const char *what, int rc, bool is_create)
{
    char message[768];
    rc = s_why_unreachable (ctx, rc);
    if (rc == RL_CLIENT_ERR_HANDSHAKE || rc == RL_CLIENT_ERR_REFUSED) {
        snprintf (message, sizeof message, "%s: cannot reach %s: %s", what, ctx->connect,
                  rl_client_strerror (rc));
    } else if (rc == RL_CLIENT_ERR_SEND) {
        //  No live connection within the timeout: nothing was sent.
        snprintf (message, sizeof message,
                  "%s: cannot reach %s within %d ms: is the cluster running? try "
                  "tools/cluster.sh status (nothing was sent)",
                  what, ctx->connect, ctx->timeout_ms);
    } else if (rc == RL_CLIENT_TIMEOUT) {
        snprintf (message, sizeof message,
                  "%s: no reply from %s within %d ms: is the cluster running? try "
                  "tools/cluster.sh status%s",
                  what, ctx->connect, ctx->timeout_ms,
                  is_create ? ". The request was sent, so the outcome is unknown: retry the "
                              "same command with the SAME ids"
                            : "");
    } else if (rc > 0) {
        snprintf (message, sizeof message, "%s: the cluster answered %s: %s", what,
                  rl_status_name ((uint32_t) rc), rl_status_hint ((uint32_t) rc));
    } else {
        snprintf (message, sizeof message, "%s: %s (%s)", what, rl_client_strerror (rc),
                  ctx->connect);
    }
    fprintf (stderr, "rlctl: %s\n", message);
    if (ctx->json) {
        cJSON *tree = jsonkit_object ();
        jsonkit_add_string (tree, "error",
                            rc > 0                          ? rl_status_name ((uint32_t) rc)
                            : rc == RL_CLIENT_TIMEOUT       ? "timeout"
                            : rc == RL_CLIENT_ERR_SEND      ? "unreachable"
                            : rc == RL_CLIENT_ERR_HANDSHAKE ? "handshake_failed"
                            : rc == RL_CLIENT_ERR_REFUSED   ? "key_refused"
                                                            : "client_error");
        jsonkit_add_string (tree, "message", message);
        jsonkit_print (stdout, tree, true);
        cJSON_Delete (tree);
    }
    return RLCTL_EXIT_FAILED;
}

rl_client_t *
rlctl_client (const rlctl_ctx_t *ctx)
{
    rl_client_t *client = rl_client_new (ctx->connect);
    if (!client) {
        fprintf (stderr,
                 "rlctl: cannot use endpoint '%s': expected tcp://HOST:PORT (or a "
                 "comma-separated list)\n",
                 ctx->connect);
    }
    return client;
}

//  Ids from the positional arguments [first, arg_count).
int
rlctl_parse_ids (const rlctl_ctx_t *ctx, size_t first, rl_id_t *ids, size_t *count_p)
{
    size_t count = 0;
    for (size_t i = first; i < ctx->arg_count; i++) {
        if (rlctl_parse_id (ctx->args[i], &ids[count])) {
            return rlctl_usage_error ("bad id '%s': expected a decimal number, 0x and up to 32 "
                                      "hex digits, or a UUID",
                                      ctx->args[i]);
        }
        count++;
    }
    *count_p = count;
    return 0;
}

int
rlctl_emit (const rlctl_ctx_t *ctx, cJSON **tree_p, rlctl_table_fn *table, int exit_code)
{
    cJSON *tree = *tree_p;
    *tree_p = NULL;
    if (!tree || jsonkit_failed ()) {
        fprintf (stderr, "rlctl: out of memory\n");
        cJSON_Delete (tree);
        return RLCTL_EXIT_FAILED;
    }
    if (ctx->json) {
        if (jsonkit_print (stdout, tree, true)) {
            fprintf (stderr, "rlctl: out of memory\n");
            exit_code = RLCTL_EXIT_FAILED;
        }
    } else {
        table (ctx, tree);
    }
    cJSON_Delete (tree);
    return exit_code;
}

//  Arguments ---------------------------------------------------------------------

static const s_command_t s_commands[] = {
    {"create-account", rlctl_cmd_create_account,
     RLCTL_O_LEDGER | RLCTL_O_CODE | RLCTL_O_FLAGS | RLCTL_O_UD128 | RLCTL_O_UD64 | RLCTL_O_UD32, 1,
     RLCTL_IDS_MAX, "create-account ID... --ledger L --code C [--flags FLAGS]"},
    {"transfer", rlctl_cmd_transfer,
     RLCTL_O_LEDGER | RLCTL_O_CODE | RLCTL_O_UD128 | RLCTL_O_UD64 | RLCTL_O_UD32 | RLCTL_O_PENDING
         | RLCTL_O_TIMEOUT_S | RLCTL_O_LINKED,
     4, 4 * RLCTL_TRANSFERS_MAX,
     "transfer ID DEBIT CREDIT AMOUNT [ID DEBIT CREDIT AMOUNT]... --ledger L --code C "
     "[--pending [--timeout S]] [--linked]"},
    {"post", rlctl_cmd_post, RLCTL_O_UD128 | RLCTL_O_UD64 | RLCTL_O_UD32, 3, 4,
     "post ID PENDING_ID DEBIT [AMOUNT]"},
    {"void", rlctl_cmd_void, RLCTL_O_UD128 | RLCTL_O_UD64 | RLCTL_O_UD32, 3, 3,
     "void ID PENDING_ID DEBIT"},
    {"reverse", rlctl_cmd_reverse, RLCTL_O_K | RLCTL_O_AMOUNT | RLCTL_O_CODE | RLCTL_O_UD32, 1, 1,
     "reverse ID [--k K] [--amount N] [--code C] [--user-data-32 N]"},
    {"balance", rlctl_cmd_balance, 0, 1, RLCTL_IDS_MAX, "balance ID..."},
    {"history", rlctl_cmd_history,
     RLCTL_O_LIMIT | RLCTL_O_REVERSE | RLCTL_O_FROM | RLCTL_O_TO | RLCTL_O_DEBITS | RLCTL_O_CREDITS,
     1, 1, "history ID [--limit N] [--reverse] [--from TS] [--to TS] [--debits|--credits]"},
    {"transfer-get", rlctl_cmd_transfer_get, 0, 1, RLCTL_IDS_MAX, "transfer-get ID..."},
    {"status", rlctl_cmd_status, 0, 0, 0, "status"},
    {"ring", rlctl_cmd_ring, RLCTL_O_TEXT, 0, 0, "ring [--text]"},
    {"locate", rlctl_cmd_locate, 0, 1, RLCTL_IDS_MAX, "locate ID..."},
    {"in-doubt", rlctl_cmd_in_doubt, 0, 0, 0, "in-doubt"},
    {"audit", rlctl_cmd_audit, 0, 0, 0, "audit"},
    {"resolve", rlctl_cmd_resolve, RLCTL_O_FORCE, 5, 5,
     "resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort --force"},
    {"keygen", rlctl_cmd_keygen, RLCTL_O_ROLE | RLCTL_O_NAME | RLCTL_O_DIR, 0, 0,
     "keygen --role client|router|shard|admin --name NAME --dir KEYDIR"},
    {"top", rlctl_cmd_top, RLCTL_O_INTERVAL | RLCTL_O_COUNT, 0, 0,
     "top [--interval-ms MS] [--count N] [--json]"},
    {"backup", rlctl_cmd_backup, RLCTL_O_CLUSTER | RLCTL_O_NAME, 1, 1,
     "backup DIR --cluster | --name SHARD"},
    {"verify-backup", rlctl_cmd_verify_backup, 0, 1, 2, "verify-backup DIR [SET]"},
    {"restore", rlctl_cmd_restore, RLCTL_O_NAME, 2, 3, "restore DIR ROOT [SET]"},
    {"promote", rlctl_cmd_promote, 0, 0, RLCTL_ARGS_MAX,
     "promote [SHARD STANDBY-ENDPOINT[,STANDBY-ENDPOINT...] [RING-FILE]] (--connect: the "
     "cluster; without SHARD: the standby)"},
    {"degrade", rlctl_cmd_degrade, 0, 0, 0, "degrade (--connect: the primary)"},
    {"backup-purge", rlctl_cmd_backup_purge, 0, 2, 2, "backup-purge DIR KEEP"},
};

static int
s_parse_bounded (const char *option, const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    if (rlctl_parse_u64 (value, out) || *out < min || *out > max) {
        fprintf (stderr,
                 "rlctl: bad value '%s' for %s: expected a number in %" PRIu64 "..%" PRIu64
                 "\n(run 'rlctl --help' for usage)\n",
                 value, option, min, max);
        return RLCTL_EXIT_USAGE;
    }
    return 0;
}

static int
s_set_option (rlctl_ctx_t *ctx, const s_option_t *option, const char *value)
{
    uint64_t number = 0;
    int rc = 0;
    switch (option->bit) {
        case RLCTL_O_CONNECT:
            ctx->connect = value;
            break;
        case RLCTL_O_JSON:
            ctx->json = true;
            break;
        case RLCTL_O_TIMEOUT:
            rc = s_parse_bounded (option->name, value, 1, S_TIMEOUT_MS_MAX, &number);
            ctx->timeout_ms = (int) number;
            break;
        case RLCTL_O_LEDGER:
            rc = s_parse_bounded (option->name, value, 1, UINT32_MAX, &number);
            ctx->ledger = (uint32_t) number;
            break;
        case RLCTL_O_CODE:
            rc = s_parse_bounded (option->name, value, 1, UINT16_MAX, &number);
            ctx->code = (uint16_t) number;
            break;
        case RLCTL_O_FLAGS:
            if (rlctl_parse_account_flags (value, &ctx->account_flags)) {
                return rlctl_usage_error (
                    "bad --flags '%s': expected debits-must-not-exceed-credits, "
                    "credits-must-not-exceed-debits or none",
                    value);
            }
            break;
        case RLCTL_O_UD128:
            if (rlctl_parse_id (value, &ctx->user_data_128)) {
                return rlctl_usage_error (
                    "bad --user-data-128 '%s': expected decimal, 0x-hex or a UUID", value);
            }
            break;
        case RLCTL_O_UD64:
            rc = s_parse_bounded (option->name, value, 0, UINT64_MAX, &ctx->user_data_64);
            break;
        case RLCTL_O_UD32:
            rc = s_parse_bounded (option->name, value, 0, UINT32_MAX, &number);
            ctx->user_data_32 = (uint32_t) number;
            break;
        case RLCTL_O_LIMIT:
            rc = s_parse_bounded (option->name, value, 1, RL_HISTORY_LIMIT_MAX, &number);
            ctx->limit = (uint32_t) number;
            break;
        case RLCTL_O_ROLE:
            ctx->role = value;
            break;
        case RLCTL_O_NAME:
            ctx->name = value;
            break;
        case RLCTL_O_DIR:
            ctx->dir = value;
            break;
        case RLCTL_O_CERT:
            ctx->cert = value;
            break;
        case RLCTL_O_SERVER_KEY:
            ctx->server_key = value;
            break;
        case RLCTL_O_FROM:
            rc = s_parse_bounded (option->name, value, 1, UINT64_MAX, &ctx->timestamp_min);
            break;
        case RLCTL_O_TO:
            rc = s_parse_bounded (option->name, value, 1, UINT64_MAX, &ctx->timestamp_max);
            break;
        case RLCTL_O_INTERVAL:
            rc = s_parse_bounded (option->name, value, RLCTL_TOP_INTERVAL_MS_MIN,
                                  RLCTL_TOP_INTERVAL_MS_MAX, &number);
            ctx->interval_ms = (int) number;
            break;
        case RLCTL_O_COUNT:
            rc = s_parse_bounded (option->name, value, 1, RLCTL_TOP_COUNT_MAX, &ctx->count);
            break;
        case RLCTL_O_K:
            rc = s_parse_bounded (option->name, value, 0, RL_REVERSAL_K_MAX - 1, &number);
            ctx->k = (uint32_t) number;
            break;
        case RLCTL_O_AMOUNT:
            rc = s_parse_bounded (option->name, value, 1, UINT64_MAX, &ctx->amount);
            break;
        case RLCTL_O_TIMEOUT_S:
            rc = s_parse_bounded (option->name, value, 1, UINT32_MAX, &number);
            ctx->timeout_s = (uint32_t) number;
            break;
        default:
            break; //  flags without a value: the bit in ctx->given is enough
    }
    return rc;
}

static int
s_parse_args (int argc, char **argv, rlctl_ctx_t *ctx)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == 0) {
            if (ctx->arg_count == RLCTL_ARGS_MAX) {
                return rlctl_usage_error ("too many arguments (at most %s ids)", "1024");
            }
            ctx->args[ctx->arg_count++] = arg;
            continue;
        }
        size_t k = 0;
        size_t known = sizeof s_options / sizeof s_options[0];
        while (k < known && strcmp (s_options[k].name, arg)) {
            k++;
        }
        if (k == known) {
            return rlctl_usage_error ("unknown option '%s'", arg);
        }
        const char *value = NULL;
        if (s_options[k].takes_value) {
            if (i + 1 >= argc) {
                return rlctl_usage_error ("option '%s' needs a value", arg);
            }
            value = argv[++i];
        }
        ctx->given |= s_options[k].bit;
        int rc = s_set_option (ctx, &s_options[k], value);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

static const s_command_t *
s_find_command (const char *name)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        if (strcmp (s_commands[i].name, name) == 0) {
            return &s_commands[i];
        }
    }
    return NULL;
}

//  The options given must all be accepted by the command.
static int
s_check_options (const s_command_t *command, unsigned given)
{
    unsigned stray = given & ~(command->options | RLCTL_O_GLOBAL);
    for (size_t k = 0; stray && k < sizeof s_options / sizeof s_options[0]; k++) {
        if (stray & s_options[k].bit) {
            fprintf (stderr, "rlctl: %s does not take %s\nusage: rlctl %s\n", command->name,
                     s_options[k].name, command->usage);
            return RLCTL_EXIT_USAGE;
        }
    }
    return 0;
}

//  CURVE unless --insecure: this client's keypair and --connect's key.
static int
s_security (rlctl_ctx_t *ctx, zcert_t **cert_p)
{
    if (ctx->given & RLCTL_O_INSECURE) {
        if (ctx->given & (RLCTL_O_CERT | RLCTL_O_SERVER_KEY)) {
            return rlctl_usage_error ("%s", "--insecure takes no --cert or --server-key");
        }
        return 0;
    }
    if (!ctx->cert || !*ctx->cert || !ctx->server_key || !*ctx->server_key) {
        return rlctl_usage_error (
            "%s", "give --cert FILE (this client's secret certificate) and --server-key KEY (the "
                  "public key of --connect), or $RL_CERT and $RL_SERVER_KEY; --insecure for a "
                  "cluster without security (docs/security.md)");
    }
    char err[768];
    char key[RL_KEY_TEXT_SIZE];
    *cert_p = rl_cert_load (ctx->cert, err, sizeof err);
    if (!*cert_p) {
        fprintf (stderr, "rlctl: --cert: %s\n", err);
        return RLCTL_EXIT_USAGE;
    }
    if (rl_key_resolve (ctx->server_key, key, err, sizeof err)) {
        fprintf (stderr, "rlctl: --server-key: %s\n", err);
        zcert_destroy (cert_p);
        return RLCTL_EXIT_USAGE;
    }
    rl_client_set_curve (*cert_p, key);
    return 0;
}

int
main (int argc, char **argv)
{
    rlctl_ctx_t ctx = {
        .connect = getenv ("RL_CONNECT") && *getenv ("RL_CONNECT") ? getenv ("RL_CONNECT")
                                                                   : S_CONNECT_DEFAULT,
        .timeout_ms = S_TIMEOUT_MS_DEFAULT,
        .cert = getenv ("RL_CERT"),
        .server_key = getenv ("RL_SERVER_KEY"),
        .interval_ms = RLCTL_TOP_INTERVAL_MS_DEFAULT,
    };
    int rc = s_parse_args (argc, argv, &ctx);
    if (rc) {
        return rc;
    }
    if (ctx.given & RLCTL_O_HELP) {
        s_usage (stdout);
        return RLCTL_EXIT_OK;
    }
    if (ctx.arg_count == 0) {
        s_usage (stderr);
        return RLCTL_EXIT_USAGE;
    }
    const s_command_t *command = s_find_command (ctx.args[0]);
    if (!command) {
        return rlctl_usage_error ("unknown command '%s'", ctx.args[0]);
    }
    if ((rc = s_check_options (command, ctx.given))) {
        return rc;
    }
    //  The order of timeouts ends with the client's: a create must wait
    //  longer than the router's deadline, so that it hears the router's
    //  definite answer (or outcome_unknown) instead of giving up first.
    bool creates = strcmp (command->name, "create-account") == 0
                   || strcmp (command->name, "transfer") == 0 || strcmp (command->name, "post") == 0
                   || strcmp (command->name, "void") == 0 || strcmp (command->name, "reverse") == 0;
    if (creates && ctx.timeout_ms <= RL_ROUTER_DEADLINE_MS) {
        fprintf (stderr,
                 "rlctl: --timeout-ms %d is too short for %s: it must exceed the router's "
                 "deadline (%d ms by default), or rlctl gives up before the router answers "
                 "and the outcome stays unknown (order: prepare < shard deadline < router "
                 "deadline < client timeout)\n",
                 ctx.timeout_ms, command->name, RL_ROUTER_DEADLINE_MS);
        return RLCTL_EXIT_USAGE;
    }
    size_t args = ctx.arg_count - 1;
    if (args < command->args_min || args > command->args_max) {
        fprintf (stderr, "rlctl: %s takes %s\nusage: rlctl %s\n", command->name,
                 command->args_min == command->args_max
                     ? (command->args_min == 0 ? "no arguments" : "exactly the arguments shown")
                     : "one or more ids",
                 command->usage);
        return RLCTL_EXIT_USAGE;
    }
    //  czmq would otherwise install its own SIGINT handler and print on exit.
    zsys_handler_set (NULL);
    zcert_t *cert = NULL;
    //  keygen, verify-backup, restore and backup-purge ask no shard: no
    //  security to set up.
    bool offline = command->run == rlctl_cmd_keygen || command->run == rlctl_cmd_verify_backup
                   || command->run == rlctl_cmd_restore || command->run == rlctl_cmd_backup_purge;
    if (!offline && (rc = s_security (&ctx, &cert))) {
        return rc;
    }
    rc = command->run (&ctx);
    fflush (stdout);
    rl_client_clear_curve ();
    zcert_destroy (&cert);
    return rc;
}
