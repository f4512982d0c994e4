/*  test_config.c: config files (--config FILE, docs/config.md) of the
    shard and the router.

    1. A shard's file sets its options: the status record shows the file's
       deadline and prepare timeout, and its log is JSON (log-format); a
       flag given with the file overrides it (--name, then --deadline-ms).
    2. The same for a router: the file's deadline and log format; a flag
       overrides the deadline.
    3. Bad inputs, for both programs: an unknown key, a value out of range
       (named with its line), a flag key that is not true or false, a
       syntax error, a key given twice, a missing file, a directory, a file
       above the size limit, --config given twice: each refused at start
       with exit 2 and a message saying why; --check-config says a good
       file is valid (exit 0) and refuses a bad one (exit 2), starting
       nothing.
*/
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <czmq.h>

#include "config.h"
#include "routerkit.h"
#include "testkit.h"

#define EXIT_WAIT_MS 10000

static char *
s_write (harness_t *h, const char *name, const char *text)
{
    char *path = harness_path (h, name);
    assert_non_null (path);
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (text, 1, strlen (text), file), strlen (text));
    fclose (file);
    return path;
}

static rl_status_rec_t
s_status (const char *endpoint)
{
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (client, &status, TK_TIMEOUT_MS), 0);
    rl_client_destroy (&client);
    return status;
}

//  The first byte of a process's log.
static char
s_log_first_byte (harness_t *h, const char *name)
{
    char file[64];
    snprintf (file, sizeof file, "%s.log", name);
    char *path = harness_path (h, file);
    assert_non_null (path);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    char first = text[0];
    free (text);
    free (path);
    return first;
}

static void
test_shard_file (void **state)
{
    (void) state;
    harness_t *h = harness_new ("config_shard");
    assert_non_null (h);
    char *path = s_write (h, "s1.conf",
                          "# a shard\n"
                          "name = not-s1\n"
                          "deadline-ms = 3000   # ms\n"
                          "prepare-timeout-ms = \"1000\"\n"
                          "log-format = json\n");
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    shard.args[0] = "--config";
    shard.args[1] = path;
    assert_true (tk_shard_start (h, &shard) > 0); //  named s1: the flag won
    rl_status_rec_t status = s_status (shard.endpoint);
    assert_string_equal (status.name, "s1");
    assert_int_equal (status.deadline_ms, 3000);
    assert_int_equal (status.prepare_timeout_ms, 1000);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    assert_int_equal (s_log_first_byte (h, "s1"), '{');

    shard.args[2] = "--deadline-ms";
    shard.args[3] = "2500";
    assert_true (tk_shard_start (h, &shard) > 0);
    status = s_status (shard.endpoint);
    assert_int_equal (status.deadline_ms, 2500);
    assert_int_equal (status.prepare_timeout_ms, 1000);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    free (path);
    harness_destroy (&h);
}

static void
test_router_file (void **state)
{
    (void) state;
    harness_t *h = harness_new ("config_router");
    assert_non_null (h);
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    assert_true (tk_shard_start (h, &shard) > 0);
    char text[1024];
    snprintf (text, sizeof text,
              "name = not-r1\n"
              "deadline-ms = 5000\n"
              "log-format = json\n"
              "shard = %s\n",
              shard.endpoint);
    char *path = s_write (h, "r1.conf", text);
    rk_router_t router;
    rk_router_init (&router, "r1");
    snprintf (router.shards, sizeof router.shards, "%s", shard.endpoint);
    snprintf (router.shard_key_name, sizeof router.shard_key_name, "s1");
    router.args[0] = "--config";
    router.args[1] = path;
    assert_true (rk_router_start (h, &router) > 0);
    rl_status_rec_t status = s_status (router.endpoint);
    assert_string_equal (status.name, "r1");
    assert_int_equal (status.deadline_ms, 5000);
    rk_router_stop (h, &router);
    assert_int_equal (s_log_first_byte (h, "r1"), '{');

    router.args[2] = "--deadline-ms=4500";
    assert_true (rk_router_start (h, &router) > 0);
    assert_int_equal (s_status (router.endpoint).deadline_ms, 4500);
    rk_router_stop (h, &router);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
    free (path);
    harness_destroy (&h);
}

//  Runs PROGRAM ARGS... (NULL-terminated), which must exit with `code`
//  and say `said` on stdout or stderr.
static void
s_expect (harness_t *h, const char *program, int code, const char *said, ...)
{
    static int run;
    char bin[1024];
    snprintf (bin, sizeof bin, "%s/%s/%s", harness_bin_dir (), program, program);
    char *argv[16] = {bin};
    int n = 1;
    va_list args;
    va_start (args, said);
    for (char *arg = va_arg (args, char *); arg && n < 15; arg = va_arg (args, char *)) {
        argv[n++] = arg;
    }
    va_end (args);
    argv[n] = NULL;
    char log_name[32];
    snprintf (log_name, sizeof log_name, "run%d", ++run);
    pid_t pid = harness_spawn (h, log_name, argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, pid, EXIT_WAIT_MS, &wstatus), 0);
    char file[64];
    snprintf (file, sizeof file, "%s.log", log_name);
    char *path = harness_path (h, file);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != code || !strstr (text, said)) {
        fail_msg ("%s %s: expected exit %d and '%s', got status 0x%x:\n%s", program,
                  n > 1 ? argv[1] : "", code, said, wstatus, text);
    }
    free (text);
    free (path);
}

static void
test_bad_files (void **state)
{
    (void) state;
    harness_t *h = harness_new ("config_bad");
    assert_non_null (h);
    const char *programs[] = {"shard", "router"};
    char *good_shard = s_write (h, "good-shard.conf",
                                "name = s1\nbind = tcp://127.0.0.1:1\ndata = /nonexistent\n"
                                "insecure = true\n");
    char *good_router = s_write (h, "good-router.conf",
                                 "bind = tcp://127.0.0.1:1\nshard = tcp://127.0.0.1:2\n"
                                 "insecure = true\n");
    char *unknown = s_write (h, "unknown.conf", "insecure = true\nbogus = 1\n");
    char *range = s_write (h, "range.conf", "insecure = true\ndeadline-ms = soon\n");
    char *flag = s_write (h, "flag.conf", "insecure = yes\n");
    char *syntax = s_write (h, "syntax.conf", "insecure = true\n    name = s1\n");
    char *twice = s_write (h, "twice.conf", "name = a\nname = b\n");
    char *format = s_write (h, "format.conf", "log-format = yaml\n");
    char *missing = harness_path (h, "missing.conf");
    char *dir = harness_path (h, "a-directory.conf");
    assert_int_equal (mkdir (dir, 0700), 0);
    static char big_text[RL_CONFIG_SIZE_MAX + 2];
    memset (big_text, '#', sizeof big_text - 1);
    char *big = s_write (h, "big.conf", big_text);
    for (size_t i = 0; i < 2; i++) {
        const char *p = programs[i];
        char *good = i == 0 ? good_shard : good_router;
        s_expect (h, p, 0, "are valid", "--config", good, "--check-config", NULL);
        s_expect (h, p, 2, "line 2: unknown key 'bogus'", "--config", unknown, NULL);
        s_expect (h, p, 2, "line 2 of --config", "--config", range, NULL);
        s_expect (h, p, 2, "must be a whole number", "--config", range, "--check-config", NULL);
        s_expect (h, p, 2, "line 1: insecure must be true or false, not 'yes'", "--config", flag,
                  NULL);
        s_expect (h, p, 2, "line 2: indented", "--config", syntax, NULL);
        s_expect (h, p, 2, "line 2: 'name' was given on line 1 already", "--config", twice, NULL);
        s_expect (h, p, 2, "--log-format must be text or json, not 'yaml'", "--config", format,
                  NULL);
        s_expect (h, p, 2, "cannot open: No such file or directory", "--config", missing, NULL);
        s_expect (h, p, 2, "not a regular file", "--config", dir, NULL);
        s_expect (h, p, 2, "larger than 65536 bytes", "--config", big, NULL);
        s_expect (h, p, 2, "--config given twice", "--config", good, "--config", good, NULL);
        //  A flag's bad value overrides the file's good one, and is refused.
        s_expect (h, p, 2, "must be a whole number", "--config", good, "--deadline-ms", "0",
                  "--check-config", NULL);
    }
    free (good_shard);
    free (good_router);
    free (unknown);
    free (range);
    free (flag);
    free (syntax);
    free (twice);
    free (format);
    free (missing);
    free (dir);
    free (big);
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_shard_file),
        cmocka_unit_test (test_router_file),
        cmocka_unit_test (test_bad_files),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
