/*  test_options.c: bad options of the shard, rlctl and rlbench are refused
    at start-up, each with exit code 2 and a message that names the option
    and why; none of them touches a socket or a disk first.

    - the shard's numeric options (--tp-log-capacity, --deadline-ms,
      --prepare-timeout-ms, the two-phase timers, --tick-ms,
      --checkpoint-transfers, --checkpoint-piece-accounts,
      --tp-prepared-share, --tp-reserve-max): zero,
      negative, not a number, trailing text,
      overflow of a long, above the range;
    - the order of timeouts on a shard: --prepare-timeout-ms at or above
      --deadline-ms (the default deadline, or a given one);
    - rlctl and rlbench: a --timeout-ms for creates that does not exceed
      the router's deadline (the client comes last in the order of
      timeouts);
    - the router's --ring-refresh-ms, --max-epoch-jump and
      --reply-queue-bytes (every kind of bad number; the shard's
      --reply-queue-bytes too), and its security choice: --keys or --insecure, exactly
      one, and no --cert or --shard-key with --insecure;
    - the replication options (--standby, --standby-of, --repl-mode,
      --repl-timeout-ms): malformed values, and a standby that would not
      sync (--standby-of with --durability nosync), from the command line
      or a --config file;
    - endpoints (the shard's and the router's --bind, --standby-of,
      --standby): no scheme, no host, no port, a port of 0 or beyond
      65535 (ZeroMQ would bind 99999 as 34463), trailing text;
    - the shard's secret certificate, checked with the options: missing,
      a public certificate given for it, readable by others;
    - rlctl keygen: a missing --role, --name or --dir, or an unknown role,
      is a usage error (exit 2); a name or a directory that cannot be used
      is a refused write (exit 1, with the reason), and nothing is written;
      an existing key is never overwritten.
    The router's deadlines are tested in test_router_input.c.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"
#include "keys.h"
#include "rl_limits.h"

#define S_EXIT_TIMEOUT_MS 10000
#define S_ARGS_MAX        24

//  Runs `program` (a path under the build tree) with `args`; returns its
//  exit status and whether its output contains `needle` (NULL: not asked).
static int
s_run (harness_t *h, const char *program, const char *log_name, const char *const *args,
       const char *needle, bool *said)
{
    char path[1024];
    snprintf (path, sizeof (path), "%s/%s", harness_bin_dir (), program);
    char *argv[S_ARGS_MAX] = {path};
    int n = 1;
    for (; *args && n < S_ARGS_MAX - 1; args++) {
        argv[n++] = (char *) *args;
    }
    argv[n] = NULL;
    pid_t pid = harness_spawn (h, log_name, argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, pid, S_EXIT_TIMEOUT_MS, &wstatus), 0);
    char file[128];
    snprintf (file, sizeof (file), "%s.log", log_name);
    char *log_path = harness_path (h, file);
    char *text = harness_read_file (log_path, NULL);
    *said = needle && text && strstr (text, needle);
    free (text);
    free (log_path);
    return WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : -1;
}

//  The shard with `option value` (plus `extra`, NULL-terminated): refused
//  with exit 2 and `needle` in its output.
static void
s_shard_refuses (harness_t *h, const char *option, const char *value, const char *extra[],
                 const char *needle)
{
    static int run = 0;
    char log_name[64], data[64];
    snprintf (log_name, sizeof (log_name), "shard-%d", ++run);
    snprintf (data, sizeof (data), "%s/data-%d", harness_dir (h), run);
    const char *args[S_ARGS_MAX] = {"--name", "s1", "--bind", "tcp://127.0.0.1:1", "--data", data};
    int n = 6;
    if (option) {
        args[n++] = option;
        args[n++] = value;
    }
    for (; extra && *extra; extra++) {
        args[n++] = *extra;
    }
    args[n] = NULL;
    bool said = false;
    int rc = s_run (h, "shard/shard", log_name, args, needle, &said);
    if (rc != 2 || !said) {
        harness_dump_log (h, log_name);
        fail_msg ("shard %s '%s': exit %d, %s '%s'", option ? option : "", value ? value : "", rc,
                  said ? "said" : "did not say", needle);
    }
}

//  Every kind of bad number, for each numeric option of the shard.
static void
test_shard_numbers (void **state)
{
    harness_t *h = *state;
    static const char *options[] = {
        "--tp-log-capacity",   "--deadline-ms",          "--prepare-timeout-ms",
        "--query-after-ms",    "--retry-min-ms",         "--retry-max-ms",
        "--tick-ms",           "--checkpoint-transfers", "--max-epoch-jump",
        "--tp-prepared-share", "--reply-queue-bytes",    "--checkpoint-piece-accounts"};
    static const char *bad[] = {
        "0", "-1", "abc", "12abc", "", "99999999999999999999999", "4294967296000"};
    for (size_t i = 0; i < sizeof (options) / sizeof (options[0]); i++) {
        for (size_t k = 0; k < sizeof (bad) / sizeof (bad[0]); k++) {
            char needle[96];
            snprintf (needle, sizeof (needle), "%s must be a whole number in", options[i]);
            s_shard_refuses (h, options[i], bad[k], NULL, needle);
        }
    }
    //  Just above each range.
    char text[32];
    snprintf (text, sizeof (text), "%d", RL_TP_LOG_ENTRIES_MAX + 1);
    s_shard_refuses (h, "--tp-log-capacity", text, NULL, "--tp-log-capacity must be");
    snprintf (text, sizeof (text), "%d", RL_SHARD_DEADLINE_MS_MAX + 1);
    s_shard_refuses (h, "--deadline-ms", text, NULL, "--deadline-ms must be");
    s_shard_refuses (h, "--deadline-ms", "1", NULL, "--deadline-ms must be");
    s_shard_refuses (h, "--tick-ms", "1001", NULL, "--tick-ms must be");
    s_shard_refuses (h, "--tp-prepared-share", "101", NULL, "--tp-prepared-share must be");
    snprintf (text, sizeof (text), "%u", RL_SHARD_ACCOUNTS_MAX + 1);
    s_shard_refuses (h, "--checkpoint-piece-accounts", text, NULL,
                     "--checkpoint-piece-accounts must be");
    //  --tp-reserve-max takes any positive long: 0, a negative or an
    //  overflowing number, or trailing text are refused.
    static const char *reserve_bad[] = {"0", "-1", "12abc", "99999999999999999999999"};
    for (size_t k = 0; k < sizeof (reserve_bad) / sizeof (reserve_bad[0]); k++) {
        s_shard_refuses (h, "--tp-reserve-max", reserve_bad[k], NULL,
                         "--tp-reserve-max must be a whole number in");
    }
}

static void s_router_refuses (harness_t *h, const char *const *extra, const char *needle);

//  Endpoints a shard or a router would bind somewhere else than asked, or
//  not at all.
static void
test_endpoints (void **state)
{
    harness_t *h = *state;
    const char *insecure[] = {"--insecure", NULL};
    static const char *bad[] = {"tcp://127.0.0.1:99999",
                                "tcp://127.0.0.1:0",
                                "tcp://127.0.0.1",
                                "127.0.0.1:7101",
                                "tcp://:7101",
                                "tcp://h:71x",
                                "udp://127.0.0.1:7101",
                                "ipc://",
                                "tcp://h:"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        s_shard_refuses (h, "--bind", bad[i], insecure, "--bind must be an endpoint");
        const char *router[] = {"--insecure", "--bind", bad[i], NULL};
        s_router_refuses (h, router, "--bind must be an endpoint");
    }
    //  The reason in one line, then a pointer to --help: not the whole
    //  usage, which would bury it in a journal.
    const char *args[] = {"--name", "s1",           "--bind",     "tcp://h:99999",
                          "--data", "/nonexistent", "--insecure", NULL};
    bool said = false;
    assert_int_equal (s_run (h, "shard/shard", "shard-one-line", args, "--help' for usage", &said),
                      2);
    assert_true (said);
    char *path = harness_path (h, "shard-one-line.log");
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    assert_null (strstr (text, "usage:"));
    free (text);
    free (path);
}

//  Security is chosen, never defaulted: --keys or --insecure, exactly one,
//  and no certificate without keys.
static void
test_shard_security_choice (void **state)
{
    harness_t *h = *state;
    const char *why = "give --keys KEYDIR";
    s_shard_refuses (h, NULL, NULL, NULL, why); //  neither
    const char *both[] = {"--insecure", NULL};
    s_shard_refuses (h, "--keys", harness_dir (h), both, why);
    const char *cert[] = {"--insecure", NULL};
    s_shard_refuses (h, "--cert", "/nonexistent.key_secret", cert, why);
    //  The certificate is checked with the options (exit 2, nothing
    //  opened): missing, a public one given for the secret, or readable by
    //  others.
    char keydir[512], public_cert[600], secret_cert[600], err[256];
    snprintf (keydir, sizeof keydir, "%s/shard-keys", harness_dir (h));
    assert_int_equal (rl_keygen (keydir, "shard", "s1", NULL, err, sizeof err), 0);
    snprintf (public_cert, sizeof public_cert, "%s/shard/s1.key", keydir);
    snprintf (secret_cert, sizeof secret_cert, "%s/private/s1.key_secret", keydir);
    const char *missing[] = {"--cert", "/nonexistent.key_secret", NULL};
    s_shard_refuses (h, "--keys", keydir, missing, "--cert: secret key file");
    const char *public[] = {"--cert", public_cert, NULL};
    s_shard_refuses (h, "--keys", keydir, public, "if it is a public certificate");
    assert_int_equal (chmod (secret_cert, 0644), 0);
    s_shard_refuses (h, "--keys", keydir, NULL, "chmod 600 it");
    assert_int_equal (chmod (secret_cert, 0600), 0);
}

//  The router with `extra` (NULL-terminated) after a --bind and a --ring
//  that are fine: refused with exit 2 and `needle` in its output.
static void
s_router_refuses (harness_t *h, const char *const *extra, const char *needle)
{
    static int run = 0;
    char log_name[64];
    snprintf (log_name, sizeof (log_name), "router-%d", ++run);
    const char *args[S_ARGS_MAX] = {"--bind", "tcp://127.0.0.1:1", "--ring", "/nonexistent.ring"};
    int n = 4;
    for (; *extra && n < S_ARGS_MAX - 1; extra++) {
        args[n++] = *extra;
    }
    args[n] = NULL;
    bool said = false;
    int rc = s_run (h, "router/router", log_name, args, needle, &said);
    if (rc != 2 || !said) {
        harness_dump_log (h, log_name);
        fail_msg ("router %s: exit %d, %s '%s'", extra[-1], rc, said ? "said" : "did not say",
                  needle);
    }
}

//  The router's --ring-refresh-ms and --max-epoch-jump: every kind of bad
//  number, and just outside each range.
static void
test_router_numbers (void **state)
{
    harness_t *h = *state;
    static const char *options[] = {"--ring-refresh-ms", "--max-epoch-jump", "--reply-queue-bytes"};
    static const char *bad[] = {
        "0", "-1", "abc", "12abc", "", "99999999999999999999999", "4294967296000000"};
    for (size_t i = 0; i < sizeof (options) / sizeof (options[0]); i++) {
        char needle[96];
        snprintf (needle, sizeof (needle), "%s must be a whole number in", options[i]);
        for (size_t k = 0; k < sizeof (bad) / sizeof (bad[0]); k++) {
            const char *args[] = {"--insecure", options[i], bad[k], NULL};
            s_router_refuses (h, args, needle);
        }
    }
    char below[32], above[32], jump[32];
    snprintf (below, sizeof (below), "%d", RL_ROUTER_TICK_MS - 1);
    snprintf (above, sizeof (above), "%d", RL_ROUTER_DEADLINE_MS_MAX + 1);
    snprintf (jump, sizeof (jump), "%ld", RL_RING_EPOCH_JUMP_MAX + 1);
    const char *low[] = {"--insecure", "--ring-refresh-ms", below, NULL};
    s_router_refuses (h, low, "--ring-refresh-ms must be");
    const char *high[] = {"--insecure", "--ring-refresh-ms", above, NULL};
    s_router_refuses (h, high, "--ring-refresh-ms must be");
    const char *far[] = {"--insecure", "--max-epoch-jump", jump, NULL};
    s_router_refuses (h, far, "--max-epoch-jump must be");
    //  Values in range pass the options (and the missing ring file then
    //  stops the router: exit 1), without a word about them.
    const char *ok[] = {"--bind",     "tcp://127.0.0.1:1",
                        "--ring",     "/nonexistent.ring",
                        "--insecure", "--ring-refresh-ms",
                        "10",         "--max-epoch-jump",
                        "1",          NULL};
    bool said = false;
    assert_int_equal (s_run (h, "router/router", "router-ok", ok, "must be", &said), 1);
    assert_false (said);
}

//  The router's security is chosen, never defaulted, like the shard's.
static void
test_router_security_choice (void **state)
{
    harness_t *h = *state;
    const char *why = "give --keys KEYDIR";
    const char *neither[] = {NULL};
    s_router_refuses (h, neither, why);
    const char *both[] = {"--keys", harness_dir (h), "--insecure", NULL};
    s_router_refuses (h, both, why);
    const char *cert[] = {"--cert", "/nonexistent.key_secret", "--insecure", NULL};
    s_router_refuses (h, cert, why);
    const char *shard_key[] = {"--shard-key", "/nonexistent.key", "--insecure", NULL};
    s_router_refuses (h, shard_key, why);
}

//  rlctl keygen `args` (NULL-terminated): exit `want` and `needle` said.
static void
s_keygen (harness_t *h, const char *const *args, int want, const char *needle)
{
    static int run = 0;
    char log_name[64];
    snprintf (log_name, sizeof (log_name), "keygen-%d", ++run);
    const char *argv[S_ARGS_MAX] = {"keygen"};
    int n = 1;
    for (; *args && n < S_ARGS_MAX - 1; args++) {
        argv[n++] = *args;
    }
    argv[n] = NULL;
    bool said = false;
    int rc = s_run (h, "tools/rlctl", log_name, argv, needle, &said);
    if (rc != want || !said) {
        harness_dump_log (h, log_name);
        fail_msg ("rlctl keygen (%s): exit %d, want %d, %s '%s'", log_name, rc, want,
                  said ? "said" : "did not say", needle);
    }
}

static bool
s_exists (const char *dir, const char *name)
{
    char path[1024];
    snprintf (path, sizeof (path), "%s/%s", dir, name);
    struct stat st;
    return stat (path, &st) == 0;
}

static void
test_keygen_usage (void **state)
{
    harness_t *h = *state;
    char dir[512], file[512];
    snprintf (dir, sizeof (dir), "%s/keys", harness_dir (h));
    snprintf (file, sizeof (file), "%s/a-file", harness_dir (h));
    FILE *f = fopen (file, "w");
    assert_non_null (f);
    fclose (f);
    const char *needs = "keygen needs --role, --name and --dir";
    //  Missing options, an unknown role, an option without its value: usage.
    const char *no_role[] = {"--name", "x", "--dir", dir, NULL};
    s_keygen (h, no_role, 2, needs);
    const char *no_name[] = {"--role", "client", "--dir", dir, NULL};
    s_keygen (h, no_name, 2, needs);
    const char *no_dir[] = {"--role", "client", "--name", "x", NULL};
    s_keygen (h, no_dir, 2, needs);
    const char *bad_role[] = {"--role", "root", "--name", "x", "--dir", dir, NULL};
    s_keygen (h, bad_role, 2, "bad --role 'root'");
    const char *no_value[] = {"--name", "x", "--dir", dir, "--role", NULL};
    s_keygen (h, no_value, 2, "option '--role' needs a value");
    const char *extra[] = {"--role", "client", "--name", "x", "--dir", dir, "more", NULL};
    s_keygen (h, extra, 2, "keygen takes no arguments");
    assert_false (s_exists (dir, ""));
    //  A name that cannot be a file name, or a directory that cannot be
    //  made: refused with the reason, nothing written.
    static const char *bad_names[] = {"../x", "", "a/b", "0123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof (bad_names) / sizeof (bad_names[0]); i++) {
        const char *args[] = {"--role", "client", "--name", bad_names[i], "--dir", dir, NULL};
        s_keygen (h, args, 1, "must be 1..31 bytes");
    }
    assert_false (s_exists (dir, ""));
    const char *in_file[] = {"--role", "client", "--name", "x", "--dir", file, NULL};
    s_keygen (h, in_file, 1, "Not a directory");
    //  A good one, then the same again: never overwritten.
    const char *good[] = {"--role", "client", "--name", "x", "--dir", dir, NULL};
    s_keygen (h, good, 0, "public key");
    assert_true (s_exists (dir, "client/x.key") && s_exists (dir, "private/x.key_secret"));
    char secret[600];
    snprintf (secret, sizeof (secret), "%s/private/x.key_secret", dir);
    char *before = harness_read_file (secret, NULL);
    assert_non_null (before);
    s_keygen (h, good, 1, "a key of that name exists");
    char *after = harness_read_file (secret, NULL);
    assert_non_null (after);
    assert_string_equal (before, after);
    free (before);
    free (after);
}

//  The order of timeouts on one shard: prepare < deadline.
static void
test_shard_order (void **state)
{
    harness_t *h = *state;
    const char *why = "must be below the shard's deadline";
    char text[32];
    snprintf (text, sizeof (text), "%d", RL_SHARD_DEADLINE_MS);
    s_shard_refuses (h, "--prepare-timeout-ms", text, NULL, why); //  the default deadline
    const char *equal[] = {"--deadline-ms", "500", NULL};
    s_shard_refuses (h, "--prepare-timeout-ms", "500", equal, why);
    const char *above[] = {"--prepare-timeout-ms", "900", NULL};
    s_shard_refuses (h, "--deadline-ms", "800", above, why);
    //  The tick that notices the prepare timeout must come before the deadline.
    const char *tick[] = {"--deadline-ms", "500", "--tick-ms", "10", NULL};
    s_shard_refuses (h, "--prepare-timeout-ms", "490", tick, "plus --tick-ms 10 must be below");
    const char *retry[] = {"--retry-max-ms", "10", NULL};
    s_shard_refuses (h, "--retry-min-ms", "20", retry, "must not exceed --retry-max-ms");
    //  A consistent short configuration passes the options and then fails
    //  to bind (exit 1: an address of no interface here, TEST-NET-1),
    //  without a word about the options.
    const char *ok[] = {"--name",
                        "s1",
                        "--bind",
                        "tcp://192.0.2.1:1",
                        "--data",
                        harness_dir (h),
                        "--deadline-ms",
                        "300",
                        "--prepare-timeout-ms",
                        "200",
                        "--insecure",
                        NULL};
    bool said = false;
    assert_int_equal (s_run (h, "shard/shard", "shard-ok", ok, "must", &said), 1);
    assert_false (said);
}

//  The replication options: malformed values are refused, and so is a
//  standby that would acknowledge writes it has not synced (--standby-of
//  with --durability nosync), whether the options come from the command
//  line or from a --config file, and even with --check-config.
static void
test_shard_replication (void **state)
{
    harness_t *h = *state;
    const char *insecure[] = {"--insecure", NULL};
    static const char *bad_lists[] = {"", "127.0.0.1:7111",
                                      "tcp://a:1,tcp://b:1,tcp://c:1,tcp://d:1,tcp://e:1"};
    for (size_t i = 0; i < sizeof (bad_lists) / sizeof (bad_lists[0]); i++) {
        s_shard_refuses (h, "--standby", bad_lists[i], insecure, "--standby takes at");
    }
    s_shard_refuses (h, "--standby-of", "127.0.0.1:7111", insecure,
                     "--standby-of must be an endpoint");
    s_shard_refuses (h, "--standby-of", "tcp://127.0.0.1:99999", insecure,
                     "--standby-of must be an endpoint");
    s_shard_refuses (h, "--standby", "tcp://127.0.0.1", insecure, "--standby takes at");
    s_shard_refuses (h, "--repl-mode", "quorum", insecure, "--repl-mode must be semi or async");
    static const char *bad_timeouts[] = {"9", "600001", "1000ms"};
    for (size_t i = 0; i < sizeof (bad_timeouts) / sizeof (bad_timeouts[0]); i++) {
        s_shard_refuses (h, "--repl-timeout-ms", bad_timeouts[i], insecure,
                         "--repl-timeout-ms must be a whole number in");
    }
    const char *why = "--standby-of cannot run with --durability nosync";
    const char *nosync[] = {"--insecure", "--durability", "nosync", NULL};
    s_shard_refuses (h, "--standby-of", "tcp://127.0.0.1:1", nosync, why);
    const char *nosync_check[] = {"--insecure",        "--durability",   "nosync", "--standby-of",
                                  "tcp://127.0.0.1:1", "--check-config", NULL};
    s_shard_refuses (h, NULL, NULL, nosync_check, why);
    char file[512];
    snprintf (file, sizeof (file), "%s/standby-nosync.conf", harness_dir (h));
    FILE *f = fopen (file, "w");
    assert_non_null (f);
    fprintf (f, "standby-of = tcp://127.0.0.1:1\ndurability = nosync\ninsecure = true\n");
    fclose (f);
    s_shard_refuses (h, "--config", file, NULL, why);
    //  The same standby with a synced WAL (or a primary without sync,
    //  labelled benchmark-only in status) passes the options.
    bool said = false;
    const char *sync[] = {"--name",
                          "s1",
                          "--bind",
                          "tcp://127.0.0.1:1",
                          "--data",
                          harness_dir (h),
                          "--insecure",
                          "--standby-of",
                          "tcp://127.0.0.1:1",
                          "--durability",
                          "sync",
                          "--check-config",
                          NULL};
    assert_int_equal (s_run (h, "shard/shard", "shard-standby-sync", sync, "cannot", &said), 0);
    assert_false (said);
    const char *primary[] = {"--name",
                             "s1",
                             "--bind",
                             "tcp://127.0.0.1:1",
                             "--data",
                             harness_dir (h),
                             "--insecure",
                             "--standby",
                             "tcp://127.0.0.1:2",
                             "--durability",
                             "nosync",
                             "--check-config",
                             NULL};
    assert_int_equal (s_run (h, "shard/shard", "shard-primary-nosync", primary, "cannot", &said),
                      0);
    assert_false (said);
}

//  rlctl and rlbench wait longer than the router's deadline for a create.
static void
test_client_timeouts (void **state)
{
    harness_t *h = *state;
    char deadline[32];
    snprintf (deadline, sizeof (deadline), "%d", RL_ROUTER_DEADLINE_MS);
    bool said = false;
    //  --insecure: the options are the subject here, not security.
    const char *transfer[] = {"--connect",  "tcp://127.0.0.1:1",
                              "--insecure", "--timeout-ms",
                              "100",        "transfer",
                              "1",          "2",
                              "3",          "10",
                              "--ledger",   "1",
                              "--code",     "1",
                              NULL};
    assert_int_equal (s_run (h, "tools/rlctl", "rlctl-transfer", transfer,
                             "must exceed the router's deadline", &said),
                      2);
    assert_true (said);
    const char *account[] = {
        "--connect", "tcp://127.0.0.1:1", "--insecure", "--timeout-ms", deadline, "create-account",
        "1",         "--ledger",          "1",          "--code",       "1",      NULL};
    assert_int_equal (s_run (h, "tools/rlctl", "rlctl-account", account,
                             "must exceed the router's deadline", &said),
                      2);
    assert_true (said);
    //  A read may wait less: it is sent (nobody answers here: exit 1).
    const char *status[] = {"--connect", "tcp://127.0.0.1:1", "--insecure", "--timeout-ms",
                            "100",       "balance",           "1",          NULL};
    assert_int_equal (s_run (h, "tools/rlctl", "rlctl-read", status, "too short", &said), 1);
    assert_false (said);
    const char *bad[] = {"100", deadline, "0", "-1", "abc", "5000x", "99999999999999999999999"};
    for (size_t k = 0; k < sizeof (bad) / sizeof (bad[0]); k++) {
        const char *args[] = {
            "--connect", "tcp://127.0.0.1:1", "--insecure", "--timeout-ms", bad[k], NULL};
        char log_name[32];
        snprintf (log_name, sizeof (log_name), "rlbench-%zu", k);
        assert_int_equal (s_run (h, "bench/rlbench", log_name, args,
                                 "--timeout-ms must be a whole number above the router's deadline",
                                 &said),
                          2);
        if (!said) {
            harness_dump_log (h, log_name);
            fail_msg ("rlbench --timeout-ms '%s': no reason given", bad[k]);
        }
    }
}

static int
s_setup (void **state)
{
    harness_t *h = harness_new ("options");
    *state = h;
    return h ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_shard_numbers),     cmocka_unit_test (test_shard_order),
        cmocka_unit_test (test_endpoints),         cmocka_unit_test (test_shard_security_choice),
        cmocka_unit_test (test_shard_replication), cmocka_unit_test (test_client_timeouts),
        cmocka_unit_test (test_router_numbers),    cmocka_unit_test (test_router_security_choice),
        cmocka_unit_test (test_keygen_usage),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
