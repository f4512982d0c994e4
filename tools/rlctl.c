/*  rlctl.c: the operator CLI of a ringledger cluster (docs/cli.md).

    rlctl [--connect ENDPOINTS] [--json] [--timeout-ms MS] COMMAND ...

        create-account ID... --ledger L --code C [--flags FLAGS] [--user-data-*]
        transfer ID DEBIT CREDIT AMOUNT --ledger L --code C [--user-data-*]
        balance ID...
        history ID [--limit N] [--reverse] [--from TS] [--to TS] [--debits|--credits]
        transfer-get ID...
        status
        ring [--text]
        locate ID...

    DESIGN
    One command is one request (status: one get_ring, then one status
    request to every shard of that ring, all in flight at once), sent
    through the C client library (common/client.h) or, for the fan-out of
    status, through one DEALER per shard and the codec. Results are data:
    every record's result is printed by name (rl_result_name) with what to
    do next. Tables for people by default, one JSON object with --json.

    IDS
    An id is a 128-bit number. On the command line it is decimal (up to
    2^64 - 1), 0x-prefixed hex (up to 32 digits) or a UUID
    (8-4-4-4-12 hex digits, read as one 128-bit big-endian number, the
    way it is written). On the wire the number is 16 little-endian bytes:
    lo = bits 0..63 (bytes 0..7), hi = bits 64..127 (bytes 8..15). So
    "1", "0x1" and "00000000-0000-0000-0000-000000000001" are the same id.
    Ids print in decimal when hi is 0, else as 0x and 32 hex digits.

    INVARIANTS
    1. Exit codes: 0 every record succeeded (ok or exists) and every
       shard answered; 1 a record failed, an account or transfer was not
       found, a shard is down or the cluster did not answer; 2 a usage
       error (nothing was sent).
    2. A create is sent once, never retried by rlctl: on a timeout the
       outcome is unknown and the message says to retry with the same id.
    3. Nothing but the requests named above is sent; rlctl keeps no state.

    LIMITS
    S_IDS_MAX ids per command; history --limit 1..RL_HISTORY_LIMIT_MAX;
    status probes at most RL_SHARDS_MAX shards, each for at most
    S_PROBE_TIMEOUT_MS (capped by --timeout-ms), all at once.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#include "client.h"
#include "codec.h"
#include "proto.h"
#include "ring.h"

#define S_EXIT_OK               0
#define S_EXIT_FAILED           1 //  a record failed, or the cluster did not answer
#define S_EXIT_USAGE            2
#define S_CONNECT_DEFAULT       "tcp://127.0.0.1:7100"
#define S_TIMEOUT_MS_DEFAULT    RL_CLIENT_TIMEOUT_MS
#define S_TIMEOUT_MS_MAX        3600000         //  one hour
#define S_PROBE_TIMEOUT_MS      2000            //  status: longest wait for one shard
#define S_IDS_MAX               1024            //  ids on one command line
#define S_ARGS_MAX              (S_IDS_MAX + 8) //  positional arguments
#define S_HISTORY_LIMIT_DEFAULT 100             //  history: transfers shown without --limit
#define S_ID_TEXT_SIZE          40              //  "0x" + 32 digits + NUL, rounded up
#define S_NUMBER_TEXT_SIZE      32              //  a signed 64-bit magnitude with its sign

_Static_assert(S_IDS_MAX <= RL_BATCH_RECORDS_MAX, "the ids of one command fit one request");
_Static_assert(S_PROBE_TIMEOUT_MS <= S_TIMEOUT_MS_DEFAULT, "a probe is shorter than a call");

//  Options -------------------------------------------------------------------
//  Each option has a bit; each command lists the bits it accepts.
enum {
    O_LEDGER = 1u << 0,
    O_CODE = 1u << 1,
    O_FLAGS = 1u << 2,
    O_UD128 = 1u << 3,
    O_UD64 = 1u << 4,
    O_UD32 = 1u << 5,
    O_LIMIT = 1u << 6,
    O_REVERSE = 1u << 7,
    O_FROM = 1u << 8,
    O_TO = 1u << 9,
    O_DEBITS = 1u << 10,
    O_CREDITS = 1u << 11,
    O_TEXT = 1u << 12,
    O_CONNECT = 1u << 13,
    O_JSON = 1u << 14,
    O_TIMEOUT = 1u << 15,
    O_HELP = 1u << 16,
    O_FORCE = 1u << 17,
    O_GLOBAL = O_CONNECT | O_JSON | O_TIMEOUT | O_HELP,
};

typedef struct {
    const char *name;
    unsigned bit;
    bool takes_value;
} s_option_t;

static const s_option_t s_options[] = {
    {"--ledger", O_LEDGER, true},     {"--code", O_CODE, true},
    {"--flags", O_FLAGS, true},       {"--user-data-128", O_UD128, true},
    {"--user-data-64", O_UD64, true}, {"--user-data-32", O_UD32, true},
    {"--limit", O_LIMIT, true},       {"--reverse", O_REVERSE, false},
    {"--from", O_FROM, true},         {"--to", O_TO, true},
    {"--debits", O_DEBITS, false},    {"--credits", O_CREDITS, false},
    {"--text", O_TEXT, false},        {"--connect", O_CONNECT, true},
    {"--json", O_JSON, false},        {"--timeout-ms", O_TIMEOUT, true},
    {"--help", O_HELP, false},        {"-h", O_HELP, false},
    {"--force", O_FORCE, false},
};

typedef struct {
    const char *connect; //  endpoints, comma-separated
    bool json;
    int timeout_ms;
    unsigned given; //  O_* bits seen
    uint32_t ledger;
    uint16_t code;
    uint16_t account_flags;
    rl_id_t user_data_128;
    uint64_t user_data_64;
    uint32_t user_data_32;
    uint32_t limit;
    uint64_t timestamp_min;       //  ns
    uint64_t timestamp_max;       //  ns
    const char *args[S_ARGS_MAX]; //  positional, the command first
    size_t arg_count;
} s_ctx_t;

typedef int (s_command_fn) (s_ctx_t *ctx);

typedef struct {
    const char *name;
    s_command_fn *run;
    unsigned options; //  O_* bits accepted besides the global ones
    size_t args_min;  //  positional arguments after the command
    size_t args_max;
    const char *usage;
} s_command_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: rlctl [--connect ENDPOINTS] [--json] [--timeout-ms MS] COMMAND ...\n"
             "\n"
             "  create-account ID... --ledger L --code C [--flags FLAGS]\n"
             "                 [--user-data-128 X] [--user-data-64 N] [--user-data-32 N]\n"
             "      FLAGS: debits-must-not-exceed-credits | credits-must-not-exceed-debits | none\n"
             "  transfer ID DEBIT CREDIT AMOUNT --ledger L --code C [--user-data-*]\n"
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
             "\n"
             "--connect   a router or a shard, or several, comma-separated\n"
             "            (default $RL_CONNECT, else " S_CONNECT_DEFAULT ")\n"
             "--json      one JSON object on stdout instead of tables\n"
             "--timeout-ms  how long to wait for a reply (default %d)\n"
             "IDs: decimal, 0x-hex (up to 128 bits) or a UUID; TS: ns since the Unix epoch.\n"
             "exit: 0 ok, 1 a record failed or the cluster did not answer, 2 usage.\n"
             "See docs/cli.md.\n",
             S_TIMEOUT_MS_DEFAULT);
}

static int
s_usage_error (const char *format, const char *detail)
{
    fprintf (stderr, "rlctl: ");
    fprintf (stderr, format, detail);
    fprintf (stderr, "\n(run 'rlctl --help' for usage)\n");
    return S_EXIT_USAGE;
}

//  Numbers and ids ------------------------------------------------------------

static int
s_hex_digit (char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

//  Up to 32 hex digits, most significant first, into a 128-bit number.
static int
s_parse_hex128 (const char *digits, size_t count, rl_id_t *id)
{
    if (count == 0 || count > 32) {
        return -1;
    }
    rl_id_t value = {0, 0};
    for (size_t i = 0; i < count; i++) {
        int d = s_hex_digit (digits[i]);
        if (d < 0) {
            return -1;
        }
        value.hi = (value.hi << 4) | (value.lo >> 60);
        value.lo = (value.lo << 4) | (uint64_t) d;
    }
    *id = value;
    return 0;
}

static int
s_parse_decimal_u64 (const char *text, uint64_t *value_p)
{
    if (!*text) {
        return -1;
    }
    uint64_t value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        uint64_t digit = (uint64_t) (*p - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            return -1;
        }
        value = value * 10 + digit;
    }
    *value_p = value;
    return 0;
}

//  Decimal or 0x-hex u64.
static int
s_parse_u64 (const char *text, uint64_t *value_p)
{
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        rl_id_t id;
        if (s_parse_hex128 (text + 2, strlen (text + 2), &id) || id.hi) {
            return -1;
        }
        *value_p = id.lo;
        return 0;
    }
    return s_parse_decimal_u64 (text, value_p);
}

//  Decimal (u64), 0x-hex (u128) or a UUID (8-4-4-4-12): see IDS above.
static int
s_parse_id (const char *text, rl_id_t *id)
{
    size_t size = strlen (text);
    if (size > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        return s_parse_hex128 (text + 2, size - 2, id);
    }
    if (size == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-') {
        char digits[32];
        size_t count = 0;
        for (size_t i = 0; i < size; i++) {
            if (i != 8 && i != 13 && i != 18 && i != 23) {
                digits[count++] = text[i];
            }
        }
        return s_parse_hex128 (digits, count, id);
    }
    id->hi = 0;
    return s_parse_decimal_u64 (text, &id->lo);
}

static const char *
s_id_text (rl_id_t id, char out[S_ID_TEXT_SIZE])
{
    if (id.hi == 0) {
        snprintf (out, S_ID_TEXT_SIZE, "%" PRIu64, id.lo);
    } else {
        snprintf (out, S_ID_TEXT_SIZE, "0x%016" PRIx64 "%016" PRIx64, id.hi, id.lo);
    }
    return out;
}

//  credits - debits, as text with a sign.
static const char *
s_balance_text (uint64_t credits, uint64_t debits, char out[S_NUMBER_TEXT_SIZE])
{
    if (credits >= debits) {
        snprintf (out, S_NUMBER_TEXT_SIZE, "%" PRIu64, credits - debits);
    } else {
        snprintf (out, S_NUMBER_TEXT_SIZE, "-%" PRIu64, debits - credits);
    }
    return out;
}

//  ns since the epoch -> "2026-11-25T14:25:01.123Z"; "-" for 0.
static const char *
s_time_text (uint64_t ns, char *out, size_t size)
{
    if (ns == 0) {
        snprintf (out, size, "-");
        return out;
    }
    time_t seconds = (time_t) (ns / 1000000000u);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char date[32];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out, size, "%s.%03uZ", date, (unsigned) (ns % 1000000000u / 1000000u));
    return out;
}

//  A JSON string: the characters of names, endpoints and messages, escaped.
static void
s_json_string (const char *text)
{
    putchar ('"');
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p == '"' || *p == '\\') {
            printf ("\\%c", *p);
        } else if (*p < 0x20) {
            printf ("\\u%04x", *p);
        } else {
            putchar (*p);
        }
    }
    putchar ('"');
}

//  Account flags: names separated by commas, '-' or '_' between words.
static int
s_parse_account_flags (const char *text, uint16_t *flags_p)
{
    static const struct {
        const char *name;
        uint16_t bit;
    } known[] = {
        {"debits_must_not_exceed_credits", RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS},
        {"credits_must_not_exceed_debits", RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS},
        {"none", 0},
    };
    char word[64];
    uint16_t flags = 0;
    const char *p = text;
    while (true) {
        size_t size = strcspn (p, ",");
        if (size == 0 || size >= sizeof word) {
            return -1;
        }
        for (size_t i = 0; i < size; i++) {
            word[i] = p[i] == '-' ? '_' : p[i];
        }
        word[size] = 0;
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp (known[k].name, word)) {
            k++;
        }
        if (k == sizeof known / sizeof known[0]) {
            return -1;
        }
        flags |= known[k].bit;
        if (p[size] == 0) {
            break;
        }
        p += size + 1;
    }
    *flags_p = flags;
    return 0;
}

static const char *
s_account_flags_text (uint16_t flags)
{
    switch (flags) {
        case 0:
            return "none";
        case RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS:
            return "debits-must-not-exceed-credits";
        case RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS:
            return "credits-must-not-exceed-debits";
        default:
            return "other";
    }
}

//  What to do next -------------------------------------------------------------

//  For a per-record result of create_accounts (is_transfer false) or
//  create_transfers.
static const char *
s_result_hint (uint32_t result, bool is_transfer)
{
    switch (result) {
        case RL_OK:
            return "";
        case RL_EXISTS:
            return "created earlier with the same fields: success (the timestamp is the "
                   "original's)";
        case RL_WRONG_SHARD:
            return "this shard does not own the account: connect to the router, or to the owner "
                   "that 'rlctl ring' shows";
        case RL_BUSY:
            return "a queue is full: back off, then retry with the same id";
        case RL_ABORTED:
            return "definitely not applied; the id is not burned: retry with the same id";
        case RL_OUTCOME_UNKNOWN:
        case RL_STORAGE_ERROR:
            return "the outcome is unknown: retry with the SAME id, never pay again with a new one";
        case RL_IN_PROGRESS:
        case RL_IN_DOUBT:
        case RL_FROZEN:
            return "not decided yet: retry later with the same id";
        case RL_NOT_SUPPORTED:
            return is_transfer ? "the two accounts live on different shards: cross-shard transfers "
                                 "are not available yet; the id is not burned, retry it with the "
                                 "same id once they are"
                               : "a reserved feature flag is set; the id is not burned";
        case RL_EXCEEDS_CREDITS:
            return "the debit account's balance flags forbid it (debits must not exceed credits); "
                   "the id is now burned: a retry with the same id gets the same result, pay again "
                   "with a new id";
        case RL_EXCEEDS_DEBITS:
            return "the credit account's balance flags forbid it (credits must not exceed debits); "
                   "the id is now burned: a retry with the same id gets the same result, pay again "
                   "with a new id";
        case RL_DEBIT_ACCOUNT_NOT_FOUND:
        case RL_CREDIT_ACCOUNT_NOT_FOUND:
            return "create the account first; the id is now burned: a retry with the same id gets "
                   "the same result, pay again with a new id";
        default:
            break;
    }
    if (result >= RL_EXISTS_WITH_DIFFERENT_FLAGS && result <= RL_EXISTS_WITH_DIFFERENT_CODE) {
        return "the id is taken by a different record: use a new id";
    }
    if ((result >= RL_ID_MUST_NOT_BE_ZERO && result <= RL_ID_MUST_NOT_BE_INT_MAX)
        || (result >= RL_TIMESTAMP_MUST_BE_ZERO && result <= RL_NOT_SUPPORTED)
        || (result >= RL_DEBITS_PENDING_MUST_BE_ZERO && result <= RL_CREDITS_POSTED_MUST_BE_ZERO)) {
        return "fix the record; the id is not burned";
    }
    if (result >= RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER && result <= RL_EXCEEDS_DEBITS) {
        return "refused for good; the id is now burned: a retry with the same id gets the same "
               "result";
    }
    if (rl_result_is_retryable (result)) {
        return "unknown code: treat it as outcome_unknown and retry with the same id";
    }
    return "";
}

static bool
s_result_is_success (uint32_t result)
{
    return result == RL_OK || result == RL_EXISTS;
}

static const char *
s_status_hint (int status)
{
    switch (status) {
        case RL_STATUS_MALFORMED:
        case RL_STATUS_BAD_MAGIC:
        case RL_STATUS_BAD_VERSION:
        case RL_STATUS_UNKNOWN_OPERATION:
            return "the server refused the request: is --connect a ringledger router or shard of "
                   "protocol version 1?";
        case RL_STATUS_TOO_MANY_RECORDS:
            return "too many records in one request: split it";
        case RL_STATUS_BUSY:
            return "a queue is full: back off, then retry the same command";
        case RL_STATUS_STORAGE_ERROR:
            return "a shard's store failed and it is restarting: retry with the same ids, the "
                   "outcome of creates is unknown until then";
        case RL_STATUS_BAD_FILTER:
            return "check --limit, --from and --to (from <= to)";
        case RL_STATUS_UNAVAILABLE:
            return "the router reached no shard: check 'rlctl status'; retry later with the same "
                   "ids";
        case RL_STATUS_TIMEOUT:
            return "the router's deadline passed: retry";
        case RL_STATUS_DUPLICATE_ID:
            return "an id appears twice in the command: give each its own";
        case RL_STATUS_WRONG_SHARD:
            return "the shard at --connect does not own this account: connect to the router, or to "
                   "the owner that 'rlctl ring' shows";
        default:
            return "";
    }
}

//  Reports a call that did not return ok. is_create: the outcome may be unknown.
static int
s_call_failed (const s_ctx_t *ctx, const char *what, int rc, bool is_create)
{
    char message[768];
    if (rc == RL_CLIENT_ERR_SEND) {
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
                  rl_status_name ((uint32_t) rc), s_status_hint (rc));
    } else {
        snprintf (message, sizeof message, "%s: %s (%s)", what, rl_client_strerror (rc),
                  ctx->connect);
    }
    fprintf (stderr, "rlctl: %s\n", message);
    if (ctx->json) {
        printf ("{\"error\": ");
        s_json_string (rc > 0                     ? rl_status_name ((uint32_t) rc)
                       : rc == RL_CLIENT_TIMEOUT  ? "timeout"
                       : rc == RL_CLIENT_ERR_SEND ? "unreachable"
                                                  : "client_error");
        printf (", \"message\": ");
        s_json_string (message);
        printf ("}\n");
    }
    return S_EXIT_FAILED;
}

static rl_client_t *
s_client (const s_ctx_t *ctx)
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
static int
s_parse_ids (const s_ctx_t *ctx, size_t first, rl_id_t *ids, size_t *count_p)
{
    size_t count = 0;
    for (size_t i = first; i < ctx->arg_count; i++) {
        if (s_parse_id (ctx->args[i], &ids[count])) {
            return s_usage_error ("bad id '%s': expected a decimal number, 0x and up to 32 "
                                  "hex digits, or a UUID",
                                  ctx->args[i]);
        }
        count++;
    }
    *count_p = count;
    return 0;
}

//  Creates ---------------------------------------------------------------------

static int
s_print_results (const s_ctx_t *ctx, const rl_id_t *ids, const rl_result_rec_t *results,
                 size_t count, bool is_transfer)
{
    int exit_code = S_EXIT_OK;
    char id_text[S_ID_TEXT_SIZE];
    if (ctx->json) {
        printf ("{\"results\": [");
    } else {
        printf ("%-34s %-24s %s\n", is_transfer ? "transfer" : "account", "result", "timestamp");
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t code = results[i].result;
        if (!s_result_is_success (code)) {
            exit_code = S_EXIT_FAILED;
        }
        const char *hint = s_result_hint (code, is_transfer);
        if (ctx->json) {
            printf ("%s\n  {\"index\": %" PRIu32 ", \"id\": \"%s\", \"result\": \"%s\", "
                    "\"code\": %" PRIu32 ", \"timestamp\": %" PRIu64 ", \"hint\": ",
                    i ? "," : "", results[i].index, s_id_text (ids[i], id_text),
                    rl_result_name (code), code, results[i].timestamp);
            s_json_string (hint);
            printf ("}");
        } else {
            printf ("%-34s %-24s %" PRIu64 "\n", s_id_text (ids[i], id_text), rl_result_name (code),
                    results[i].timestamp);
            if (*hint && code != RL_EXISTS) {
                printf ("    %s\n", hint);
            }
        }
    }
    if (ctx->json) {
        printf ("\n], \"ok\": %s}\n", exit_code == S_EXIT_OK ? "true" : "false");
    }
    return exit_code;
}

static int
s_require_ledger_code (const s_ctx_t *ctx, const char *command)
{
    if ((ctx->given & (O_LEDGER | O_CODE)) != (O_LEDGER | O_CODE)) {
        return s_usage_error ("%s needs --ledger L and --code C (both not 0)", command);
    }
    return 0;
}

static int
s_cmd_create_account (s_ctx_t *ctx)
{
    int rc = s_require_ledger_code (ctx, "create-account");
    if (rc) {
        return rc;
    }
    static rl_id_t ids[S_IDS_MAX];
    static rl_account_t accounts[S_IDS_MAX];
    static rl_result_rec_t results[S_IDS_MAX];
    size_t count = 0;
    if ((rc = s_parse_ids (ctx, 1, ids, &count))) {
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
    rl_client_t *client = s_client (ctx);
    if (!client) {
        return S_EXIT_USAGE;
    }
    rc = rl_client_create_accounts (client, accounts, count, results, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return s_call_failed (ctx, "create-account", rc, true);
    }
    return s_print_results (ctx, ids, results, count, false);
}

static int
s_cmd_transfer (s_ctx_t *ctx)
{
    int rc = s_require_ledger_code (ctx, "transfer");
    if (rc) {
        return rc;
    }
    rl_transfer_t transfer = {
        .user_data_128 = ctx->user_data_128,
        .user_data_64 = ctx->user_data_64,
        .user_data_32 = ctx->user_data_32,
        .ledger = ctx->ledger,
        .code = ctx->code,
    };
    rl_id_t *fields[] = {&transfer.id, &transfer.debit_account_id, &transfer.credit_account_id};
    for (size_t i = 0; i < 3; i++) {
        if (s_parse_id (ctx->args[1 + i], fields[i])) {
            return s_usage_error ("bad id '%s': expected a decimal number, 0x and up to 32 "
                                  "hex digits, or a UUID",
                                  ctx->args[1 + i]);
        }
    }
    if (s_parse_u64 (ctx->args[4], &transfer.amount)) {
        return s_usage_error ("bad amount '%s': expected a whole number of minor units "
                              "(cents), up to 2^64 - 1",
                              ctx->args[4]);
    }
    rl_client_t *client = s_client (ctx);
    if (!client) {
        return S_EXIT_USAGE;
    }
    rl_result_rec_t result;
    rc = rl_client_create_transfers (client, &transfer, 1, &result, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return s_call_failed (ctx, "transfer", rc, true);
    }
    return s_print_results (ctx, &transfer.id, &result, 1, true);
}

//  Reads -----------------------------------------------------------------------

static void
s_print_account_json (const rl_account_t *a, rl_id_t asked, bool first)
{
    char id_text[S_ID_TEXT_SIZE];
    char balance[S_NUMBER_TEXT_SIZE];
    printf ("%s\n  {\"id\": \"%s\", \"found\": %s", first ? "" : ",", s_id_text (asked, id_text),
            a->timestamp ? "true" : "false");
    if (a->timestamp) {
        printf (", \"ledger\": %" PRIu32 ", \"code\": %u, \"flags\": %u, \"flags_name\": \"%s\", "
                "\"debits_posted\": %" PRIu64 ", \"credits_posted\": %" PRIu64
                ", \"debits_pending\": %" PRIu64 ", \"credits_pending\": %" PRIu64
                ", \"debits_reserved\": %" PRIu64 ", \"credits_reserved\": %" PRIu64
                ", \"balance\": %s, \"user_data_128\": \"%s\", \"user_data_64\": %" PRIu64
                ", \"user_data_32\": %" PRIu32 ", \"timestamp\": %" PRIu64,
                a->ledger, a->code, a->flags, s_account_flags_text (a->flags), a->debits_posted,
                a->credits_posted, a->debits_pending, a->credits_pending, a->debits_reserved,
                a->credits_reserved, s_balance_text (a->credits_posted, a->debits_posted, balance),
                s_id_text (a->user_data_128, id_text), a->user_data_64, a->user_data_32,
                a->timestamp);
    }
    printf ("}");
}

static void
s_print_account_row (const rl_account_t *a, rl_id_t asked)
{
    char id_text[S_ID_TEXT_SIZE];
    char pair[2 * S_NUMBER_TEXT_SIZE];
    char pair2[2 * S_NUMBER_TEXT_SIZE];
    char balance[S_NUMBER_TEXT_SIZE];
    if (!a->timestamp) {
        printf ("%-34s not found: no such account (create it with 'rlctl create-account')\n",
                s_id_text (asked, id_text));
        return;
    }
    snprintf (pair, sizeof pair, "%" PRIu64 "/%" PRIu64, a->debits_pending, a->credits_pending);
    snprintf (pair2, sizeof pair2, "%" PRIu64 "/%" PRIu64, a->debits_reserved, a->credits_reserved);
    printf ("%-34s %8" PRIu32 " %16" PRIu64 " %16" PRIu64 " %11s %11s %17s\n",
            s_id_text (asked, id_text), a->ledger, a->debits_posted, a->credits_posted, pair, pair2,
            s_balance_text (a->credits_posted, a->debits_posted, balance));
}

static int
s_cmd_balance (s_ctx_t *ctx)
{
    static rl_id_t ids[S_IDS_MAX];
    static rl_account_t accounts[S_IDS_MAX];
    size_t count = 0;
    int rc = s_parse_ids (ctx, 1, ids, &count);
    if (rc) {
        return rc;
    }
    rl_client_t *client = s_client (ctx);
    if (!client) {
        return S_EXIT_USAGE;
    }
    rc = rl_client_lookup_accounts (client, ids, count, accounts, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return s_call_failed (ctx, "balance", rc, false);
    }
    int exit_code = S_EXIT_OK;
    if (ctx->json) {
        printf ("{\"accounts\": [");
    } else {
        printf ("%-34s %8s %16s %16s %11s %11s %17s\n", "account", "ledger", "debits posted",
                "credits posted", "pending d/c", "reserved d/c", "balance (c - d)");
    }
    for (size_t i = 0; i < count; i++) {
        if (!accounts[i].timestamp) {
            exit_code = S_EXIT_FAILED;
        }
        if (ctx->json) {
            s_print_account_json (&accounts[i], ids[i], i == 0);
        } else {
            s_print_account_row (&accounts[i], ids[i]);
        }
    }
    if (ctx->json) {
        printf ("\n]}\n");
    }
    return exit_code;
}

static void
s_print_transfer_json (const rl_transfer_t *t, rl_id_t asked, bool first, const char *direction)
{
    char id_text[S_ID_TEXT_SIZE];
    printf ("%s\n  {\"id\": \"%s\", \"found\": %s", first ? "" : ",", s_id_text (asked, id_text),
            t->timestamp ? "true" : "false");
    if (t->timestamp) {
        printf (", \"debit_account_id\": \"%s\"", s_id_text (t->debit_account_id, id_text));
        printf (", \"credit_account_id\": \"%s\"", s_id_text (t->credit_account_id, id_text));
        printf (", \"amount\": %" PRIu64 ", \"ledger\": %" PRIu32 ", \"code\": %u, \"flags\": %u",
                t->amount, t->ledger, t->code, t->flags);
        printf (", \"user_data_128\": \"%s\", \"user_data_64\": %" PRIu64
                ", \"user_data_32\": %" PRIu32 ", \"timestamp\": %" PRIu64,
                s_id_text (t->user_data_128, id_text), t->user_data_64, t->user_data_32,
                t->timestamp);
        if (direction) {
            printf (", \"direction\": \"%s\"", direction);
        }
    }
    printf ("}");
}

static void
s_print_transfer_header (bool with_direction)
{
    printf ("%-24s %-20s %-22s %-22s %-22s %16s %8s %5s%s\n", "time (UTC)", "timestamp (ns)",
            "transfer", "debit", "credit", "amount", "ledger", "code",
            with_direction ? "  side" : "");
}

static void
s_print_transfer_row (const rl_transfer_t *t, rl_id_t asked, const char *direction)
{
    char id_text[3][S_ID_TEXT_SIZE];
    char when[40];
    if (!t->timestamp) {
        printf ("%-24s %-20s %-22s not found: no such transfer\n", "-", "-",
                s_id_text (asked, id_text[0]));
        return;
    }
    printf ("%-24s %-20" PRIu64 " %-22s %-22s %-22s %16" PRIu64 " %8" PRIu32 " %5u%s%s\n",
            s_time_text (t->timestamp, when, sizeof when), t->timestamp,
            s_id_text (t->id, id_text[0]), s_id_text (t->debit_account_id, id_text[1]),
            s_id_text (t->credit_account_id, id_text[2]), t->amount, t->ledger, t->code,
            direction ? "  " : "", direction ? direction : "");
}

static int
s_cmd_transfer_get (s_ctx_t *ctx)
{
    static rl_id_t ids[S_IDS_MAX];
    static rl_transfer_t transfers[S_IDS_MAX];
    size_t count = 0;
    int rc = s_parse_ids (ctx, 1, ids, &count);
    if (rc) {
        return rc;
    }
    rl_client_t *client = s_client (ctx);
    if (!client) {
        return S_EXIT_USAGE;
    }
    rc = rl_client_lookup_transfers (client, ids, count, transfers, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return s_call_failed (ctx, "transfer-get", rc, false);
    }
    int exit_code = S_EXIT_OK;
    if (ctx->json) {
        printf ("{\"transfers\": [");
    } else {
        s_print_transfer_header (false);
    }
    for (size_t i = 0; i < count; i++) {
        if (!transfers[i].timestamp) {
            exit_code = S_EXIT_FAILED;
        }
        if (ctx->json) {
            s_print_transfer_json (&transfers[i], ids[i], i == 0, NULL);
        } else {
            s_print_transfer_row (&transfers[i], ids[i], NULL);
        }
    }
    if (ctx->json) {
        printf ("\n]}\n");
    }
    return exit_code;
}

static int
s_cmd_history (s_ctx_t *ctx)
{
    rl_filter_t filter = {
        .timestamp_min = ctx->timestamp_min,
        .timestamp_max = ctx->timestamp_max,
        .limit = ctx->given & O_LIMIT ? ctx->limit : S_HISTORY_LIMIT_DEFAULT,
        .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS,
    };
    if (s_parse_id (ctx->args[1], &filter.account_id)) {
        return s_usage_error ("bad id '%s': expected a decimal number, 0x and up to 32 hex "
                              "digits, or a UUID",
                              ctx->args[1]);
    }
    if ((ctx->given & (O_DEBITS | O_CREDITS)) == O_DEBITS) {
        filter.flags = RL_FILTER_DEBITS;
    } else if ((ctx->given & (O_DEBITS | O_CREDITS)) == O_CREDITS) {
        filter.flags = RL_FILTER_CREDITS;
    }
    if (ctx->given & O_REVERSE) {
        filter.flags |= RL_FILTER_REVERSED;
    }
    if (filter.timestamp_min && filter.timestamp_max
        && filter.timestamp_min > filter.timestamp_max) {
        return s_usage_error ("%s", "--from must not be after --to");
    }
    static rl_transfer_t transfers[RL_HISTORY_LIMIT_MAX];
    size_t count = 0;
    rl_client_t *client = s_client (ctx);
    if (!client) {
        return S_EXIT_USAGE;
    }
    int rc = rl_client_get_account_transfers (client, &filter, transfers, &count, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        return s_call_failed (ctx, "history", rc, false);
    }
    char id_text[S_ID_TEXT_SIZE];
    if (ctx->json) {
        printf ("{\"account\": \"%s\", \"limit\": %" PRIu32 ", \"transfers\": [",
                s_id_text (filter.account_id, id_text), filter.limit);
    } else {
        s_print_transfer_header (true);
    }
    for (size_t i = 0; i < count; i++) {
        const char *side = rl_id_eq (transfers[i].debit_account_id, filter.account_id) ? "debit"
                                                                                       : "credit";
        if (ctx->json) {
            s_print_transfer_json (&transfers[i], transfers[i].id, i == 0, side);
        } else {
            s_print_transfer_row (&transfers[i], transfers[i].id, side);
        }
    }
    if (ctx->json) {
        printf ("\n]}\n");
    } else {
        printf ("(%zu transfer%s of account %s%s)\n", count, count == 1 ? "" : "s",
                s_id_text (filter.account_id, id_text),
                count == filter.limit ? "; more may follow: page with --from/--to past the "
                                        "last timestamp"
                                      : "");
    }
    return S_EXIT_OK;
}

//  Ring and status ---------------------------------------------------------------

//  The ring served at --connect; NULL after printing why.
static ring_t *
s_fetch_ring (const s_ctx_t *ctx, const char *what)
{
    rl_client_t *client = s_client (ctx);
    if (!client) {
        return NULL;
    }
    uint8_t *blob = NULL;
    size_t size = 0;
    int rc = rl_client_get_ring (client, &blob, &size, ctx->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        s_call_failed (ctx, what, rc, false);
        free (blob);
        return NULL;
    }
    char err[256] = "";
    ring_t *ring = ring_decode (blob, size, err, sizeof err);
    free (blob);
    if (!ring) {
        fprintf (stderr, "rlctl: %s: the ring from %s does not decode: %s\n", what, ctx->connect,
                 err);
    }
    return ring;
}

static int
s_cmd_ring (s_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "ring");
    if (!ring) {
        return S_EXIT_FAILED;
    }
    size_t shards = ring_shard_count (ring);
    if (ctx->given & O_TEXT) {
        char *text = ring_to_text (ring);
        assert (text);
        fputs (text, stdout);
        free (text);
    } else if (ctx->json) {
        printf ("{\"epoch\": %" PRIu64 ", \"points\": %zu, \"points_per_weight\": %" PRIu32
                ", \"imbalance\": %.6f, \"shards\": [",
                ring_epoch (ring), ring_point_count (ring), ring_points_per_weight (ring),
                ring_imbalance (ring));
        for (size_t i = 0; i < shards; i++) {
            printf ("%s\n  {\"name\": ", i ? "," : "");
            s_json_string (ring_shard_name (ring, i));
            printf (", \"endpoint\": ");
            s_json_string (ring_shard_endpoint (ring, i));
            printf (", \"weight\": %.17g, \"ownership\": %.9f, \"points\": %zu}",
                    ring_shard_weight (ring, i), ring_shard_ownership (ring, i),
                    ring_shard_point_count (ring, i));
        }
        printf ("\n]}\n");
    } else {
        printf ("ring epoch %" PRIu64 ": %zu shard%s, %zu points (from %s)\n\n", ring_epoch (ring),
                shards, shards == 1 ? "" : "s", ring_point_count (ring), ctx->connect);
        printf ("%-16s %-32s %8s %10s %7s\n", "shard", "address", "weight", "ownership", "points");
        for (size_t i = 0; i < shards; i++) {
            printf ("%-16s %-32s %8.6g %9.3f%% %7zu\n", ring_shard_name (ring, i),
                    ring_shard_endpoint (ring, i), ring_shard_weight (ring, i),
                    ring_shard_ownership (ring, i) * 100, ring_shard_point_count (ring, i));
        }
        printf ("\nimbalance (max/mean ownership by weight): %.4f\n", ring_imbalance (ring));
    }
    ring_destroy (&ring);
    return S_EXIT_OK;
}

//  Which shard owns each id, by the ring served at --connect.
static int
s_cmd_locate (s_ctx_t *ctx)
{
    static rl_id_t ids[S_IDS_MAX];
    size_t count = 0;
    int rc = s_parse_ids (ctx, 1, ids, &count);
    if (rc) {
        return rc;
    }
    ring_t *ring = s_fetch_ring (ctx, "locate");
    if (!ring) {
        return S_EXIT_FAILED;
    }
    char id_text[S_ID_TEXT_SIZE];
    if (ctx->json) {
        printf ("{\"epoch\": %" PRIu64 ", \"accounts\": [", ring_epoch (ring));
    } else {
        printf ("ring epoch %" PRIu64 "\n%-34s %-16s %-16s %s\n", ring_epoch (ring), "account",
                "point", "shard", "address");
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (ids[i], bytes);
        int owner = ring_lookup_id (ring, bytes);
        assert (owner >= 0);
        const char *name = ring_shard_name (ring, (size_t) owner);
        const char *endpoint = ring_shard_endpoint (ring, (size_t) owner);
        if (ctx->json) {
            printf ("%s\n  {\"id\": \"%s\", \"point\": \"%016" PRIx64 "\", \"shard\": ",
                    i ? "," : "", s_id_text (ids[i], id_text), ring_point_of_id (bytes));
            s_json_string (name);
            printf (", \"address\": ");
            s_json_string (endpoint);
            printf ("}");
        } else {
            printf ("%-34s %016" PRIx64 " %-16s %s\n", s_id_text (ids[i], id_text),
                    ring_point_of_id (bytes), name, endpoint);
        }
    }
    if (ctx->json) {
        printf ("\n]}\n");
    }
    ring_destroy (&ring);
    return S_EXIT_OK;
}

//  One shard's answer to status.
typedef struct {
    zsock_t *dealer;
    bool up;
    int status; //  message-level status of the reply, when up
    rl_status_rec_t record;
} s_probe_t;

//  Sends status to every shard at once, then waits for all of them until
//  one deadline: the whole probe costs at most one timeout.
static void
s_probe_all (const ring_t *ring, s_probe_t *probes, int timeout_ms)
{
    size_t shards = ring_shard_count (ring);
    uint8_t request[RL_HEADER_SIZE];
    for (size_t i = 0; i < shards; i++) {
        rl_header_t header = {.magic = RL_MAGIC,
                              .version = RL_VERSION,
                              .operation = RL_OP_STATUS,
                              .request_id = i + 1};
        codec_encode_header (&header, request);
        probes[i].dealer = zsock_new (ZMQ_DEALER);
        assert (probes[i].dealer);
        zsock_set_linger (probes[i].dealer, 0);
        zsock_set_sndtimeo (probes[i].dealer, 0);
        if (zsock_connect (probes[i].dealer, "%s", ring_shard_endpoint (ring, i)) == 0) {
            zframe_t *frame = zframe_new (request, sizeof request);
            if (zframe_send (&frame, probes[i].dealer, 0) != 0) {
                zframe_destroy (&frame);
            }
        }
    }
    zmq_pollitem_t *items = calloc (shards, sizeof *items);
    assert (items);
    int64_t deadline = zclock_mono () + timeout_ms;
    size_t waiting = shards;
    while (waiting > 0 && zclock_mono () < deadline) {
        for (size_t i = 0; i < shards; i++) {
            items[i] = (zmq_pollitem_t){zsock_resolve (probes[i].dealer), 0,
                                        probes[i].up ? 0 : ZMQ_POLLIN, 0};
        }
        if (zmq_poll (items, (int) shards, (long) (deadline - zclock_mono ())) <= 0) {
            continue;
        }
        for (size_t i = 0; i < shards; i++) {
            if (!(items[i].revents & ZMQ_POLLIN)) {
                continue;
            }
            zframe_t *frame = zframe_recv (probes[i].dealer);
            rl_header_t header;
            if (frame
                && codec_check_reply (zframe_data (frame), zframe_size (frame), &header)
                       == RL_STATUS_OK
                && header.request_id == i + 1 && header.operation == RL_OP_STATUS) {
                probes[i].up = true;
                probes[i].status = (int) header.status;
                if (header.status == RL_STATUS_OK) {
                    codec_decode_status (zframe_data (frame) + RL_HEADER_SIZE, &probes[i].record);
                }
                waiting--;
            }
            zframe_destroy (&frame);
        }
    }
    free (items);
    for (size_t i = 0; i < shards; i++) {
        zsock_destroy (&probes[i].dealer);
    }
}

static void
s_print_status_json (const s_ctx_t *ctx, const ring_t *ring, const s_probe_t *probes, size_t down)
{
    printf ("{\"connect\": ");
    s_json_string (ctx->connect);
    printf (", \"ring_epoch\": %" PRIu64 ", \"down\": %zu, \"shards\": [", ring_epoch (ring), down);
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        const s_probe_t *p = &probes[i];
        const rl_status_rec_t *r = &p->record;
        printf ("%s\n  {\"name\": ", i ? "," : "");
        s_json_string (ring_shard_name (ring, i));
        printf (", \"address\": ");
        s_json_string (ring_shard_endpoint (ring, i));
        bool ok = p->up && p->status == RL_STATUS_OK;
        printf (", \"up\": %s", ok ? "true" : "false");
        if (p->up && !ok) {
            printf (", \"error\": \"%s\"", rl_status_name ((uint32_t) p->status));
        }
        if (ok) {
            printf (", \"reported_name\": ");
            s_json_string (r->name);
            printf (", \"epoch\": %" PRIu64 ", \"accounts\": %" PRIu64 ", \"transfers\": %" PRIu64
                    ", \"requests\": %" PRIu64 ", \"commits\": %" PRIu64
                    ", \"durability\": \"%s\", \"inflight\": %" PRIu64 ", \"in_doubt\": %" PRIu64
                    ", \"dropped\": %" PRIu64 ", \"malformed\": %" PRIu64
                    ", \"wrong_shard\": %" PRIu64 ", \"last_timestamp\": %" PRIu64
                    ", \"pid\": %" PRIu32 ", \"uptime_ms\": %" PRIu64,
                    r->epoch, r->accounts, r->transfers, r->requests, r->commits,
                    rl_durability_name (r->durability), r->inflight, r->in_doubt, r->dropped,
                    r->malformed, r->wrong_shard, r->last_timestamp, r->pid, r->uptime_ms);
        }
        printf ("}");
    }
    printf ("\n]}\n");
}

static void
s_print_status_table (const s_ctx_t *ctx, const ring_t *ring, const s_probe_t *probes, size_t down)
{
    size_t shards = ring_shard_count (ring);
    printf ("ring epoch %" PRIu64 " from %s: %zu shard%s, %zu down\n\n", ring_epoch (ring),
            ctx->connect, shards, shards == 1 ? "" : "s", down);
    printf ("%-10s %-24s %-5s %5s %10s %10s %10s %-10s %8s %9s\n", "shard", "address", "state",
            "epoch", "accounts", "transfers", "requests", "durability", "in-doubt", "drop/bad");
    for (size_t i = 0; i < shards; i++) {
        const s_probe_t *p = &probes[i];
        const rl_status_rec_t *r = &p->record;
        if (!p->up) {
            printf ("%-10s %-24s %-5s (no answer within the probe timeout)\n",
                    ring_shard_name (ring, i), ring_shard_endpoint (ring, i), "DOWN");
            continue;
        }
        if (p->status != RL_STATUS_OK) {
            printf ("%-10s %-24s %-5s (answered %s)\n", ring_shard_name (ring, i),
                    ring_shard_endpoint (ring, i), "ERROR", rl_status_name ((uint32_t) p->status));
            continue;
        }
        char drop_bad[2 * S_NUMBER_TEXT_SIZE];
        snprintf (drop_bad, sizeof drop_bad, "%" PRIu64 "/%" PRIu64, r->dropped, r->malformed);
        printf ("%-10s %-24s %-5s %5" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
                " %-10s %8" PRIu64 " %9s\n",
                ring_shard_name (ring, i), ring_shard_endpoint (ring, i), "up", r->epoch,
                r->accounts, r->transfers, r->requests, rl_durability_name (r->durability),
                r->in_doubt, drop_bad);
        if (strcmp (r->name, ring_shard_name (ring, i)) != 0) {
            printf ("    warning: the process at this address calls itself '%s'\n", r->name);
        }
        if (r->epoch != ring_epoch (ring)) {
            printf ("    warning: serves ring epoch %" PRIu64 ", not %" PRIu64 "\n", r->epoch,
                    ring_epoch (ring));
        }
    }
    if (down) {
        printf ("\n%zu shard%s did not answer: accounts they own cannot be served; see "
                "tools/cluster.sh status and the shard logs\n",
                down, down == 1 ? "" : "s");
    }
}

static int
s_cmd_status (s_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "status");
    if (!ring) {
        return S_EXIT_FAILED;
    }
    size_t shards = ring_shard_count (ring);
    s_probe_t *probes = calloc (shards, sizeof *probes);
    assert (probes);
    int probe_ms = ctx->timeout_ms < S_PROBE_TIMEOUT_MS ? ctx->timeout_ms : S_PROBE_TIMEOUT_MS;
    s_probe_all (ring, probes, probe_ms);
    size_t down = 0;
    for (size_t i = 0; i < shards; i++) {
        if (!probes[i].up || probes[i].status != RL_STATUS_OK) {
            down++;
        }
    }
    if (ctx->json) {
        s_print_status_json (ctx, ring, probes, down);
    } else {
        s_print_status_table (ctx, ring, probes, down);
    }
    free (probes);
    ring_destroy (&ring);
    return down ? S_EXIT_FAILED : S_EXIT_OK;
}

//  Admin: in-doubt transfers and the reservation audit, asked of every shard ------

//  Calls `op` (no request records) on every shard of the ring in turn.
typedef void (s_shard_fn) (s_ctx_t *ctx, const ring_t *ring, size_t i, int rc, const uint8_t *body,
                           size_t count, void *arg);

static size_t
s_each_shard (s_ctx_t *ctx, const ring_t *ring, uint16_t op, s_shard_fn *fn, void *arg)
{
    size_t failed = 0;
    int probe_ms = ctx->timeout_ms < S_PROBE_TIMEOUT_MS ? ctx->timeout_ms : S_PROBE_TIMEOUT_MS;
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        rl_client_t *client = rl_client_new (ring_shard_endpoint (ring, i));
        rl_header_t header;
        uint8_t *body = NULL;
        size_t size = 0;
        int rc = client ? rl_client_call (client, op, NULL, 0, 0, probe_ms, &header, &body, &size)
                        : RL_CLIENT_ERR_SEND;
        failed += rc != 0;
        fn (ctx, ring, i, rc, body, rc == 0 ? header.record_count : 0, arg);
        free (body);
        rl_client_destroy (&client);
    }
    return failed;
}

static void
s_in_doubt_shard (s_ctx_t *ctx, const ring_t *ring, size_t i, int rc, const uint8_t *body,
                  size_t count, void *arg)
{
    size_t *total = arg;
    const char *shard = ring_shard_name (ring, i);
    if (rc != 0) {
        if (ctx->json) {
            printf ("%s\n  {\"shard\": \"%s\", \"error\": \"%s\"}", *total ? "," : "", shard,
                    rl_client_strerror (rc));
        } else {
            printf ("%-10s DOWN or refused: %s\n", shard, rl_client_strerror (rc));
        }
        (*total)++;
        return;
    }
    uint64_t now_ns = (uint64_t) zclock_time () * 1000000ull;
    for (size_t k = 0; k < count; k++) {
        rl_in_doubt_rec_t r;
        codec_decode_in_doubt (body + k * RL_IN_DOUBT_SIZE, &r);
        const rl_tp_rec_t *tp = &r.prepare.tp;
        uint64_t created = r.prepare.reserved[0];
        double age_s = created && now_ns > created ? (double) (now_ns - created) / 1e9 : 0;
        const char *role = r.prepare.reserved[1] == RL_ROLE_COORDINATOR ? "coordinator"
                                                                        : "participant";
        char id_text[64];
        if (ctx->json) {
            printf (
                "%s\n  {\"shard\": \"%s\", \"id\": \"%s\", \"attempt\": \"%" PRIu64 ".%" PRIu64
                "\", \"role\": \"%s\", \"peer\": \"%s\", \"state\": \"%s\", \"amount\": %" PRIu64
                ", \"age_s\": %.3f}",
                *total ? "," : "", shard, s_id_text (tp->id, id_text), tp->attempt.counter,
                tp->attempt.seq, role, r.peer, rl_tp_state_name (tp->state), tp->amount, age_s);
        } else {
            printf ("%-10s %-34s %8" PRIu64 ".%-6" PRIu64 " %-11s %-10s %-9s %12" PRIu64 " %8.1f\n",
                    shard, s_id_text (tp->id, id_text), tp->attempt.counter, tp->attempt.seq, role,
                    r.peer, rl_tp_state_name (tp->state), tp->amount, age_s);
        }
        (*total)++;
    }
}

static int
s_cmd_in_doubt (s_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "in-doubt");
    if (!ring) {
        return S_EXIT_FAILED;
    }
    size_t total = 0;
    if (ctx->json) {
        printf ("{\"in_doubt\": [");
    } else {
        printf ("%-10s %-34s %15s %-11s %-10s %-9s %12s %8s\n", "shard", "transfer id", "attempt",
                "role", "peer", "state", "amount", "age s");
    }
    size_t failed = s_each_shard (ctx, ring, RL_OP_IN_DOUBT, s_in_doubt_shard, &total);
    if (ctx->json) {
        printf ("\n]}\n");
    } else if (total == 0) {
        printf ("(nothing in doubt: no live attempt, undelivered decision or prepared record)\n");
    }
    ring_destroy (&ring);
    return failed ? S_EXIT_FAILED : S_EXIT_OK;
}

static void
s_audit_shard (s_ctx_t *ctx, const ring_t *ring, size_t i, int rc, const uint8_t *body,
               size_t count, void *arg)
{
    size_t *bad = arg;
    const char *shard = ring_shard_name (ring, i);
    rl_audit_rec_t a = {0};
    if (rc == 0 && count == 1) {
        codec_decode_audit (body, &a);
    }
    bool ok = rc == 0 && count == 1 && a.ok;
    *bad += !ok;
    if (ctx->json) {
        printf ("%s\n  {\"shard\": \"%s\", \"ok\": %s, \"accounts\": %" PRIu64
                ", \"live\": %" PRIu64 ", \"prepared\": %" PRIu64 ", \"message\": ",
                i ? "," : "", shard, ok ? "true" : "false", a.accounts, a.live, a.prepared);
        s_json_string (rc == 0 ? a.message : rl_client_strerror (rc));
        printf ("}");
    } else if (rc != 0) {
        printf ("%-10s DOWN or refused: %s\n", shard, rl_client_strerror (rc));
    } else {
        printf ("%-10s %-4s %10" PRIu64 " %8" PRIu64 " %9" PRIu64 "  %s\n", shard,
                ok ? "ok" : "BAD", a.accounts, a.live, a.prepared,
                ok ? "every reservation accounted for" : a.message);
    }
}

static int
s_cmd_audit (s_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "audit");
    if (!ring) {
        return S_EXIT_FAILED;
    }
    size_t bad = 0;
    if (ctx->json) {
        printf ("{\"audit\": [");
    } else {
        printf ("%-10s %-4s %10s %8s %9s\n", "shard", "", "accounts", "live", "prepared");
    }
    s_each_shard (ctx, ring, RL_OP_AUDIT, s_audit_shard, &bad);
    if (ctx->json) {
        printf ("\n]}\n");
    } else if (bad) {
        printf ("\n%zu shard%s failed the audit or did not answer: see the shard logs\n", bad,
                bad == 1 ? "" : "s");
    }
    ring_destroy (&ring);
    return bad ? S_EXIT_FAILED : S_EXIT_OK;
}

//  resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort --force: a heuristic
//  decision on a prepared record whose coordinator is gone for good (fenced
//  out of the shard's ring). The shard refuses without --force.
static int
s_cmd_resolve (s_ctx_t *ctx)
{
    const char *shard = ctx->args[0], *decision = ctx->args[4];
    rl_tp_rec_t rec = {0};
    snprintf (rec.coordinator, sizeof (rec.coordinator), "%s", ctx->args[1]);
    unsigned long long counter = 0, seq = 0;
    char tail = 0;
    if (s_parse_id (ctx->args[2], &rec.id)
        || sscanf (ctx->args[3], "%llu.%llu%c", &counter, &seq, &tail) != 2
        || (strcmp (decision, "commit") && strcmp (decision, "abort"))) {
        return s_usage_error ("usage: resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort "
                              "--force (attempt as listed by 'rlctl in-doubt'): got '%s'",
                              ctx->args[3]);
    }
    rec.attempt.counter = counter;
    rec.attempt.seq = seq;
    rec.state = strcmp (decision, "commit") == 0 ? RL_TP_COMMIT : RL_TP_ABORT;
    rec.result = (ctx->given & O_FORCE) ? RL_RESOLVE_FORCE : 0;
    ring_t *ring = s_fetch_ring (ctx, "resolve");
    if (!ring) {
        return S_EXIT_FAILED;
    }
    int index = ring_shard_find (ring, shard);
    if (index < 0) {
        ring_destroy (&ring);
        return s_usage_error ("no shard '%s' in the ring (see 'rlctl status')", shard);
    }
    rl_client_t *client = rl_client_new (ring_shard_endpoint (ring, (size_t) index));
    uint8_t body[RL_TP_SIZE], *reply = NULL;
    size_t size = 0;
    rl_header_t h;
    codec_encode_tp (&rec, body);
    int rc = client ? rl_client_call (client, RL_OP_RESOLVE, body, sizeof (body), 1,
                                      ctx->timeout_ms, &h, &reply, &size)
                    : RL_CLIENT_ERR_SEND;
    rl_client_destroy (&client);
    ring_destroy (&ring);
    if (rc != 0 || h.record_count != 1) {
        free (reply);
        fprintf (stderr, "rlctl: resolve on %s: %s\n", shard, rl_client_strerror (rc));
        return S_EXIT_FAILED;
    }
    rl_tp_rec_t answer;
    codec_decode_tp (reply, &answer);
    free (reply);
    static const char *reasons[] = {
        "resolved: heuristic record written; a contrary decision arriving later raises an alarm",
        "refused: no prepared record of that attempt on this shard (see 'rlctl in-doubt')",
        "refused: the coordinator is still in this shard's ring: fence it out first (load a "
        "ring of a higher epoch without it)",
        "refused: a heuristic decision needs --force",
        "refused: the decision must be commit or abort",
    };
    uint32_t why = answer.state == RL_TP_ACKED ? 0 : answer.result;
    printf ("%s\n", why < 5 ? reasons[why] : "refused");
    return why == 0 ? S_EXIT_OK : S_EXIT_FAILED;
}

//  Arguments ---------------------------------------------------------------------

static const s_command_t s_commands[] = {
    {"create-account", s_cmd_create_account,
     O_LEDGER | O_CODE | O_FLAGS | O_UD128 | O_UD64 | O_UD32, 1, S_IDS_MAX,
     "create-account ID... --ledger L --code C [--flags FLAGS]"},
    {"transfer", s_cmd_transfer, O_LEDGER | O_CODE | O_UD128 | O_UD64 | O_UD32, 4, 4,
     "transfer ID DEBIT CREDIT AMOUNT --ledger L --code C"},
    {"balance", s_cmd_balance, 0, 1, S_IDS_MAX, "balance ID..."},
    {"history", s_cmd_history, O_LIMIT | O_REVERSE | O_FROM | O_TO | O_DEBITS | O_CREDITS, 1, 1,
     "history ID [--limit N] [--reverse] [--from TS] [--to TS] [--debits|--credits]"},
    {"transfer-get", s_cmd_transfer_get, 0, 1, S_IDS_MAX, "transfer-get ID..."},
    {"status", s_cmd_status, 0, 0, 0, "status"},
    {"ring", s_cmd_ring, O_TEXT, 0, 0, "ring [--text]"},
    {"locate", s_cmd_locate, 0, 1, S_IDS_MAX, "locate ID..."},
    {"in-doubt", s_cmd_in_doubt, 0, 0, 0, "in-doubt"},
    {"audit", s_cmd_audit, 0, 0, 0, "audit"},
    {"resolve", s_cmd_resolve, O_FORCE, 5, 5,
     "resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort --force"},
};

static int
s_parse_bounded (const char *option, const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s_parse_u64 (value, out) || *out < min || *out > max) {
        fprintf (stderr,
                 "rlctl: bad value '%s' for %s: expected a number in %" PRIu64 "..%" PRIu64
                 "\n(run 'rlctl --help' for usage)\n",
                 value, option, min, max);
        return S_EXIT_USAGE;
    }
    return 0;
}

static int
s_set_option (s_ctx_t *ctx, const s_option_t *option, const char *value)
{
    uint64_t number = 0;
    int rc = 0;
    switch (option->bit) {
        case O_CONNECT:
            ctx->connect = value;
            break;
        case O_JSON:
            ctx->json = true;
            break;
        case O_TIMEOUT:
            rc = s_parse_bounded (option->name, value, 1, S_TIMEOUT_MS_MAX, &number);
            ctx->timeout_ms = (int) number;
            break;
        case O_LEDGER:
            rc = s_parse_bounded (option->name, value, 1, UINT32_MAX, &number);
            ctx->ledger = (uint32_t) number;
            break;
        case O_CODE:
            rc = s_parse_bounded (option->name, value, 1, UINT16_MAX, &number);
            ctx->code = (uint16_t) number;
            break;
        case O_FLAGS:
            if (s_parse_account_flags (value, &ctx->account_flags)) {
                return s_usage_error ("bad --flags '%s': expected debits-must-not-exceed-credits, "
                                      "credits-must-not-exceed-debits or none",
                                      value);
            }
            break;
        case O_UD128:
            if (s_parse_id (value, &ctx->user_data_128)) {
                return s_usage_error (
                    "bad --user-data-128 '%s': expected decimal, 0x-hex or a UUID", value);
            }
            break;
        case O_UD64:
            rc = s_parse_bounded (option->name, value, 0, UINT64_MAX, &ctx->user_data_64);
            break;
        case O_UD32:
            rc = s_parse_bounded (option->name, value, 0, UINT32_MAX, &number);
            ctx->user_data_32 = (uint32_t) number;
            break;
        case O_LIMIT:
            rc = s_parse_bounded (option->name, value, 1, RL_HISTORY_LIMIT_MAX, &number);
            ctx->limit = (uint32_t) number;
            break;
        case O_FROM:
            rc = s_parse_bounded (option->name, value, 1, UINT64_MAX, &ctx->timestamp_min);
            break;
        case O_TO:
            rc = s_parse_bounded (option->name, value, 1, UINT64_MAX, &ctx->timestamp_max);
            break;
        default:
            break; //  flags without a value: the bit in ctx->given is enough
    }
    return rc;
}

static int
s_parse_args (int argc, char **argv, s_ctx_t *ctx)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == 0) {
            if (ctx->arg_count == S_ARGS_MAX) {
                return s_usage_error ("too many arguments (at most %s ids)", "1024");
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
            return s_usage_error ("unknown option '%s'", arg);
        }
        const char *value = NULL;
        if (s_options[k].takes_value) {
            if (i + 1 >= argc) {
                return s_usage_error ("option '%s' needs a value", arg);
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
    unsigned stray = given & ~(command->options | O_GLOBAL);
    for (size_t k = 0; stray && k < sizeof s_options / sizeof s_options[0]; k++) {
        if (stray & s_options[k].bit) {
            fprintf (stderr, "rlctl: %s does not take %s\nusage: rlctl %s\n", command->name,
                     s_options[k].name, command->usage);
            return S_EXIT_USAGE;
        }
    }
    return 0;
}

int
main (int argc, char **argv)
{
    s_ctx_t ctx = {
        .connect = getenv ("RL_CONNECT") && *getenv ("RL_CONNECT") ? getenv ("RL_CONNECT")
                                                                   : S_CONNECT_DEFAULT,
        .timeout_ms = S_TIMEOUT_MS_DEFAULT,
    };
    int rc = s_parse_args (argc, argv, &ctx);
    if (rc) {
        return rc;
    }
    if (ctx.given & O_HELP) {
        s_usage (stdout);
        return S_EXIT_OK;
    }
    if (ctx.arg_count == 0) {
        s_usage (stderr);
        return S_EXIT_USAGE;
    }
    const s_command_t *command = s_find_command (ctx.args[0]);
    if (!command) {
        return s_usage_error ("unknown command '%s'", ctx.args[0]);
    }
    if ((rc = s_check_options (command, ctx.given))) {
        return rc;
    }
    size_t args = ctx.arg_count - 1;
    if (args < command->args_min || args > command->args_max) {
        fprintf (stderr, "rlctl: %s takes %s\nusage: rlctl %s\n", command->name,
                 command->args_min == command->args_max
                     ? (command->args_min == 0 ? "no arguments" : "exactly the arguments shown")
                     : "one or more ids",
                 command->usage);
        return S_EXIT_USAGE;
    }
    //  czmq would otherwise install its own SIGINT handler and print on exit.
    zsys_handler_set (NULL);
    rc = command->run (&ctx);
    fflush (stdout);
    return rc;
}
