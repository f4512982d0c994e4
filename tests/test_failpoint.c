/*  test_failpoint.c: failpoints (common/failpoint.c) and, because every
    failpoint reports through it, the log line format (common/log.c).

    Uses the test-only points test.alpha and test.beta. Crashes happen in a
    forked child, so the test process survives to check how the child died
    and what it recorded. Lazy initialisation needs a fresh process: this
    program re-executes itself with --lazy-child for that.

    Every test starts and ends with no failpoint variable set and every
    point disarmed (s_setup, s_teardown).
*/
#include "failpoint.h"
#include "harness.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TEST_ERR_SIZE      256   //  bytes of an init error message
#define TEST_CHILD_WAIT_MS 10000 //  a forked child finishes within this

//  Fixtures ----------------------------------------------------------------

static void
s_clear_env (void)
{
    unsetenv ("RL_FAILPOINTS");
    unsetenv ("RL_FAILPOINT_FILE");
    unsetenv ("RL_LOG_LEVEL");
}

static int
s_setup (void **state)
{
    s_clear_env ();
    assert_int_equal (failpoint_init (NULL, 0), 0);
    rl_log_init ("test", "t1");
    *state = harness_new ("failpoint");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *harness = *state;
    s_clear_env ();
    failpoint_init (NULL, 0);
    harness_destroy (&harness);
    return 0;
}

//  Arms spec (NULL: unset) and returns failpoint_init's result; err gets
//  the message.
static int
s_arm (const char *spec, char *err, size_t err_size)
{
    if (spec) {
        setenv ("RL_FAILPOINTS", spec, 1);
    } else {
        unsetenv ("RL_FAILPOINTS");
    }
    return failpoint_init (err, err_size);
}

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Waits (bounded) for a forked child; SIGKILLs it when it overstays.
static int
s_wait_child (pid_t pid)
{
    int64_t deadline_ms = s_now_ms () + TEST_CHILD_WAIT_MS;
    int wstatus = 0;
    while (waitpid (pid, &wstatus, WNOHANG) == 0) {
        if (s_now_ms () > deadline_ms) {
            kill (pid, SIGKILL);
            waitpid (pid, &wstatus, 0);
            fail_msg ("child %d did not finish within %d ms", (int) pid, TEST_CHILD_WAIT_MS);
        }
        usleep (1000);
    }
    return wstatus;
}

//  Registry ----------------------------------------------------------------

static void
test_registry (void **state)
{
    (void) state;
    assert_int_equal (failpoint_count (), RL_FP_COUNT);
    for (int index = 0; index < RL_FP_COUNT; index++) {
        const char *name = failpoint_name ((rl_fp_t) index);
        assert_non_null (name);
        assert_true (strlen (name) > 0);
        assert_true (strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789_.") == strlen (name));
        assert_true (strlen (failpoint_where ((rl_fp_t) index)) > 0);
        assert_int_equal (failpoint_find (name), index); //  names are unique
    }
    assert_string_equal (failpoint_name (RL_FP_TEST_ALPHA), "test.alpha");
    assert_string_equal (failpoint_name (RL_FP_TEST_BETA), "test.beta");
    assert_int_equal (failpoint_find ("no.such.point"), -1);
    assert_int_equal (failpoint_find (""), -1);
}

//  Parsing -----------------------------------------------------------------

static void
test_parse_good (void **state)
{
    (void) state;
    const char *specs[] = {
        "",
        "test.alpha=crash",
        "test.alpha=error",
        "test.alpha=delay:0",
        "test.alpha=delay:600000",
        "test.alpha=error@1",
        "test.alpha=crash@4294967295",
        "test.alpha=error,test.beta=delay:5@2",
        "shard.after_sync=crash@3,test.alpha=error",
    };
    for (size_t index = 0; index < sizeof specs / sizeof specs[0]; index++) {
        char err[TEST_ERR_SIZE] = "untouched";
        int rc = s_arm (specs[index], err, sizeof err);
        if (rc != 0) {
            fail_msg ("'%s' did not parse: %s", specs[index], err);
        }
        assert_string_equal (err, "");
    }
    //  Unset and empty arm nothing: the fast path is back to one load.
    assert_int_equal (s_arm (NULL, NULL, 0), 0);
    assert_false (rl_failpoints_enabled);
    assert_int_equal (s_arm ("", NULL, 0), 0);
    assert_false (rl_failpoints_enabled);
    assert_int_equal (s_arm ("test.alpha=error", NULL, 0), 0);
    assert_true (rl_failpoints_enabled);
}

static void
test_parse_bad (void **state)
{
    (void) state;
    struct {
        const char *spec;
        const char *message; //  expected inside the error message
    } cases[] = {
        {"no.such.point=crash", "unknown failpoint 'no.such.point'"},
        {"test.alpha=crash,bogus=error", "unknown failpoint 'bogus'"},
        {"test.alpha", "not name=action"},
        {"=crash", "no valid name"},
        {"test.alpha=", "bad action"},
        {"test.alpha=boom", "bad action 'boom' for 'test.alpha'"},
        {"test.alpha=crashy", "bad action"},
        {"test.alpha=delay", "bad action"},
        {"test.alpha=delay:", "bad action"},
        {"test.alpha=delay:abc", "bad action"},
        {"test.alpha=delay:-5", "bad action"},
        {"test.alpha=delay:600001", "bad action"},
        {"test.alpha=error@0", "bad action"},
        {"test.alpha=error@", "bad action"},
        {"test.alpha=error@x", "bad action"},
        {"test.alpha=error@4294967296", "bad action"},
        {"test.alpha=error@99999999999", "bad action"},
        {"test.alpha=error@1@2", "bad action"},
        {"test.alpha= error", "bad action"},
        {"test.alpha=crash,", "empty entry"},
        {",test.alpha=crash", "empty entry"},
        {"test.alpha=crash,,test.beta=error", "empty entry"},
        {"test.alpha=crash,test.alpha=error", "'test.alpha' named twice"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char err[TEST_ERR_SIZE] = "";
        assert_int_equal (s_arm ("test.beta=error", NULL, 0), 0);
        int rc = s_arm (cases[index].spec, err, sizeof err);
        if (rc != -1 || strstr (err, cases[index].message) == NULL) {
            fail_msg ("'%s': rc %d, message '%s', expected '%s'", cases[index].spec, rc, err,
                      cases[index].message);
        }
        //  A bad spec arms nothing, not even what an earlier call armed.
        assert_false (rl_failpoints_enabled);
        assert_int_equal (RL_FAILPOINT (TEST_BETA), 0);
    }
}

static void
test_parse_limits (void **state)
{
    (void) state;
    //  Too long as a whole.
    size_t spec_size = 5000;
    char *spec = malloc (spec_size + 1);
    assert_non_null (spec);
    memset (spec, 'a', spec_size);
    spec[spec_size] = '\0';
    char err[TEST_ERR_SIZE];
    assert_int_equal (s_arm (spec, err, sizeof err), -1);
    assert_non_null (strstr (err, "longer than"));
    //  A long unknown name is reported, cut to fit.
    memcpy (spec + 300, "=crash", 7);
    assert_int_equal (s_arm (spec, err, sizeof err), -1);
    assert_non_null (strstr (err, "no valid name"));
    memcpy (spec + 100, "=crash", 7);
    assert_int_equal (s_arm (spec, err, sizeof err), -1);
    assert_non_null (strstr (err, "unknown failpoint 'aaaa"));
    free (spec);
    //  A tiny or absent buffer is not overrun.
    char tiny[8];
    memset (tiny, 'x', sizeof tiny);
    assert_int_equal (s_arm ("nope=crash", tiny, 4), -1);
    assert_int_equal (strlen (tiny), 3);
    assert_int_equal (tiny[4], 'x');
    assert_int_equal (s_arm ("nope=crash", NULL, 0), -1);
}

//  Actions -----------------------------------------------------------------

static void
test_error_action (void **state)
{
    (void) state;
    assert_int_equal (s_arm ("test.alpha=error", NULL, 0), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), -1);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), -1); //  every hit without @N
    assert_int_equal (RL_FAILPOINT (TEST_BETA), 0);   //  other points untouched
    assert_int_equal (RL_FAILPOINT (SHARD_AFTER_SYNC), 0);
    //  Re-initialising disarms what is no longer named.
    assert_int_equal (s_arm ("test.beta=error", NULL, 0), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), 0);
    assert_int_equal (RL_FAILPOINT (TEST_BETA), -1);
}

static void
test_nth_hit (void **state)
{
    (void) state;
    assert_int_equal (s_arm ("test.alpha=error@3,test.beta=error@1", NULL, 0), 0);
    int expected_alpha[] = {0, 0, -1, 0, 0, 0};
    for (size_t hit = 0; hit < sizeof expected_alpha / sizeof expected_alpha[0]; hit++) {
        assert_int_equal (RL_FAILPOINT (TEST_ALPHA), expected_alpha[hit]);
    }
    assert_int_equal (RL_FAILPOINT (TEST_BETA), -1);
    assert_int_equal (RL_FAILPOINT (TEST_BETA), 0);
    //  failpoint_init resets the counters: @3 counts again from zero.
    assert_int_equal (failpoint_init (NULL, 0), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), -1);
}

static void
test_delay_action (void **state)
{
    (void) state;
    assert_int_equal (s_arm ("test.alpha=delay:50,test.beta=delay:30@2", NULL, 0), 0);
    int64_t start_ms = s_now_ms ();
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), 0);
    assert_true (s_now_ms () - start_ms >= 50);

    //  Only the second hit of test.beta sleeps; the first is not timed
    //  (an upper bound on a sleep would make the test flaky).
    assert_int_equal (RL_FAILPOINT (TEST_BETA), 0);
    start_ms = s_now_ms ();
    assert_int_equal (RL_FAILPOINT (TEST_BETA), 0);
    assert_true (s_now_ms () - start_ms >= 30);
}

static void
test_record_file (void **state)
{
    harness_t *harness = *state;
    char *path = harness_path (harness, "failpoints.txt");
    assert_non_null (path);
    setenv ("RL_FAILPOINT_FILE", path, 1);
    assert_int_equal (s_arm ("test.alpha=error@2,test.beta=delay:1", NULL, 0), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), 0); //  not acting: no record
    assert_null (harness_read_file (path, NULL));
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), -1);
    assert_int_equal (RL_FAILPOINT (TEST_BETA), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), 0);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    assert_string_equal (text, "test.alpha error\ntest.beta delay:1\n");
    free (text);

    //  Unsetting the variable stops the records.
    unsetenv ("RL_FAILPOINT_FILE");
    assert_int_equal (s_arm ("test.alpha=error", NULL, 0), 0);
    assert_int_equal (RL_FAILPOINT (TEST_ALPHA), -1);
    text = harness_read_file (path, NULL);
    assert_string_equal (text, "test.alpha error\ntest.beta delay:1\n");
    free (text);
    free (path);
}

//  Forks a child that arms spec with the record file in the harness dir,
//  sends its stderr to child.log there, hits test.beta once and test.alpha
//  hits_max times, then exits 0. Returns its wait status.
static int
s_run_crash_child (harness_t *harness, const char *spec, int hits_max)
{
    char *record_path = harness_path (harness, "failpoints.txt");
    char *log_path = harness_path (harness, "child.log");
    assert_non_null (record_path);
    assert_non_null (log_path);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log_fd < 0 || dup2 (log_fd, STDERR_FILENO) < 0) {
            _exit (20);
        }
        setenv ("RL_FAILPOINTS", spec, 1);
        setenv ("RL_FAILPOINT_FILE", record_path, 1);
        rl_log_init ("test", "child");
        if (failpoint_init (NULL, 0) != 0 || RL_FAILPOINT (TEST_BETA) != 0) {
            _exit (21);
        }
        for (int hit = 0; hit < hits_max; hit++) {
            RL_FAILPOINT (TEST_ALPHA);
        }
        _exit (0);
    }
    free (record_path);
    free (log_path);
    return s_wait_child (pid);
}

static void
test_crash_action (void **state)
{
    harness_t *harness = *state;
    int wstatus = s_run_crash_child (harness, "test.alpha=crash", 5);
    assert_true (WIFSIGNALED (wstatus));
    assert_int_equal (WTERMSIG (wstatus), SIGKILL);

    char *record_path = harness_path (harness, "failpoints.txt");
    char *text = harness_read_file (record_path, NULL);
    assert_non_null (text);
    assert_string_equal (text, "test.alpha crash\n");
    free (text);
    free (record_path);

    char *log_path = harness_path (harness, "child.log");
    text = harness_read_file (log_path, NULL);
    assert_non_null (text);
    if (strstr (text, " test child ERROR failpoint test.alpha: crash (hit 1)") == NULL) {
        fail_msg ("no crash line in the child's log:\n%s", text);
    }
    free (text);
    free (log_path);
}

static void
test_crash_at_nth_hit (void **state)
{
    harness_t *harness = *state;
    //  Dies on the third hit of three...
    int wstatus = s_run_crash_child (harness, "test.alpha=crash@3", 3);
    assert_true (WIFSIGNALED (wstatus));
    assert_int_equal (WTERMSIG (wstatus), SIGKILL);
    //  ...and lives through two.
    wstatus = s_run_crash_child (harness, "test.alpha=crash@3", 2);
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 0);

    char *record_path = harness_path (harness, "failpoints.txt");
    char *text = harness_read_file (record_path, NULL);
    assert_string_equal (text, "test.alpha crash\n");
    free (text);
    free (record_path);
}

//  Lazy initialisation, in a fresh process ---------------------------------

#define LAZY_EXIT_ERROR_TAKEN 10 //  the child's hit returned -1
#define LAZY_EXIT_NOTHING     11 //  the child's hit returned 0

//  The child side: hits test.alpha without calling failpoint_init.
static int
s_lazy_child_main (void)
{
    rl_log_init ("test", "lazy");
    return RL_FAILPOINT (TEST_ALPHA) == -1 ? LAZY_EXIT_ERROR_TAKEN : LAZY_EXIT_NOTHING;
}

static int
s_run_lazy_child (harness_t *harness, const char *spec, const char *log_name)
{
    char self_path[4096];
    ssize_t size = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    assert_true (size > 0);
    self_path[size] = '\0';
    char spec_env[256];
    snprintf (spec_env, sizeof spec_env, "RL_FAILPOINTS=%s", spec);
    char *argv[] = {self_path, "--lazy-child", NULL};
    char *env_extra[] = {spec_env, NULL};
    pid_t pid = harness_spawn (harness, log_name, argv, env_extra);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, pid, TEST_CHILD_WAIT_MS, &wstatus), 0);
    return wstatus;
}

static void
test_lazy_init (void **state)
{
    harness_t *harness = *state;
    int wstatus = s_run_lazy_child (harness, "test.alpha=error", "lazy_good");
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), LAZY_EXIT_ERROR_TAKEN);

    wstatus = s_run_lazy_child (harness, "", "lazy_empty");
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), LAZY_EXIT_NOTHING);

    //  A bad spec found lazily stops the process, saying why.
    wstatus = s_run_lazy_child (harness, "bogus=crash", "lazy_bad");
    assert_true (WIFSIGNALED (wstatus));
    assert_int_equal (WTERMSIG (wstatus), SIGABRT);
    char *log_path = harness_path (harness, "lazy_bad.log");
    char *text = harness_read_file (log_path, NULL);
    assert_non_null (text);
    if (strstr (text, "ERROR failpoint: RL_FAILPOINTS: unknown failpoint 'bogus'") == NULL) {
        fail_msg ("no error line in the child's log:\n%s", text);
    }
    free (text);
    free (log_path);
}

//  Log lines ---------------------------------------------------------------

//  Runs emit with stderr sent to a file; returns what was written (malloc'd).
static char *
s_capture_stderr (harness_t *harness, void (*emit) (void))
{
    char *path = harness_path (harness, "stderr.txt");
    assert_non_null (path);
    int file_fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true (file_fd >= 0);
    fflush (stderr);
    int saved_fd = dup (STDERR_FILENO);
    assert_true (saved_fd >= 0);
    dup2 (file_fd, STDERR_FILENO);
    close (file_fd);
    emit ();
    dup2 (saved_fd, STDERR_FILENO);
    close (saved_fd);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    free (path);
    return text;
}

//  True when line starts with "YYYY-MM-DDTHH:MM:SS.mmmZ ".
static bool
s_has_timestamp (const char *line)
{
    const char *pattern = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t index = 0; pattern[index]; index++) {
        char c = line[index];
        bool ok = pattern[index] == 'd' ? (c >= '0' && c <= '9') : c == pattern[index];
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void
s_emit_levels (void)
{
    rl_log_set_level (RL_LOG_WARN);
    rl_debug ("hidden %d", 1);
    rl_info ("hidden %d", 2);
    rl_warn ("shown %d", 3);
    rl_error ("two\nlines");
    rl_log_set_level (RL_LOG_DEBUG);
    errno = ENOENT;
    rl_debug ("errno kept: %m");
    assert_int_equal (errno, ENOENT);
}

static void
test_log_format (void **state)
{
    harness_t *harness = *state;
    char *text = s_capture_stderr (harness, s_emit_levels);
    const char *lines[] = {
        " test t1 WARN shown 3\n",
        " test t1 ERROR two\\x0alines\n",
        " test t1 DEBUG errno kept: No such file or directory\n",
    };
    const char *line = text;
    for (size_t index = 0; index < sizeof lines / sizeof lines[0]; index++) {
        if (!s_has_timestamp (line) || strncmp (line + 24, lines[index], strlen (lines[index]))) {
            fail_msg ("line %zu: expected '<time>%s', log:\n%s", index, lines[index], text);
        }
        line = strchr (line, '\n') + 1;
    }
    assert_string_equal (line, "");
    free (text);
}

static void
s_emit_long (void)
{
    static char message[5000];
    memset (message, 'm', sizeof message - 1);
    rl_error ("%s", message);
    rl_error ("after");
}

static void
test_log_truncates (void **state)
{
    harness_t *harness = *state;
    char *text = s_capture_stderr (harness, s_emit_long);
    char *newline = strchr (text, '\n');
    assert_non_null (newline);
    size_t line_size = (size_t) (newline - text) + 1;
    assert_true (line_size <= 1024);
    assert_true (line_size > 900);
    assert_memory_equal (newline - 4, "m...", 4);
    assert_non_null (strstr (newline + 1, " ERROR after\n"));
    free (text);
}

static void
s_emit_env_level (void)
{
    setenv ("RL_LOG_LEVEL", "error", 1);
    rl_log_init ("shard", "s9");
    rl_warn ("hidden");
    rl_error ("shown");
    setenv ("RL_LOG_LEVEL", "loud", 1);
    rl_log_init ("shard", "s9"); //  unknown: info, with a warning
    rl_debug ("hidden");
    rl_info ("info shown");
    unsetenv ("RL_LOG_LEVEL");
    rl_log_init ("test", "t1");
}

static void
test_log_level_from_env (void **state)
{
    harness_t *harness = *state;
    char *text = s_capture_stderr (harness, s_emit_env_level);
    assert_null (strstr (text, "hidden"));
    assert_non_null (strstr (text, " shard s9 ERROR shown\n"));
    assert_non_null (strstr (text, " shard s9 WARN RL_LOG_LEVEL 'loud' is not debug"));
    assert_non_null (strstr (text, " shard s9 INFO info shown\n"));
    free (text);
}

int
main (int argc, char *argv[])
{
    if (argc == 2 && strcmp (argv[1], "--lazy-child") == 0) {
        return s_lazy_child_main ();
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_registry, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_parse_good, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_parse_bad, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_parse_limits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_error_action, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_nth_hit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_delay_action, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_record_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_action, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_at_nth_hit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lazy_init, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_log_format, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_log_truncates, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_log_level_from_env, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
