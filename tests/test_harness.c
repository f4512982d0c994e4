/*  test_harness.c: what tests/harness.c promises, checked with real
    processes (tests/helper_child.c).

    The last-resort cleanups (atexit, signal handlers) act only in the
    process that installed them, so they are tested in a fresh process:
    this program re-executes itself with --cleanup-child MODE, creates a
    harness there, spawns a child that forks a grandchild, and then exits,
    raises SIGTERM, SIGSEGV or aborts. The grandchild has no death signal
    of its own, so its death shows that the process group was killed.

    No fixed sleeps: every wait is harness_wait_until or harness_wait_exit
    with a deadline.
*/
#include "harness.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef HELPER_CHILD_PATH
#error "HELPER_CHILD_PATH must name the built helper_child program"
#endif

#define TEST_WAIT_MS 10000 //  a child starts or exits within this
#define TEST_PORTS   32    //  ports asked for in test_free_ports

static int
s_setup (void **state)
{
    *state = harness_new ("harness");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *harness = *state;
    harness_destroy (&harness);
    return 0;
}

static bool
s_file_exists (void *arg)
{
    return access ((const char *) arg, F_OK) == 0;
}

//  Gone: no such process, or a zombie nobody reaped yet (a grandchild
//  whose new parent does not wait is one forever).
static bool
s_process_gone (void *arg)
{
    pid_t pid = *(pid_t *) arg;
    if (kill (pid, 0) != 0 && errno == ESRCH) {
        return true;
    }
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    char *text = harness_read_file (path, NULL);
    if (text == NULL) {
        return true;
    }
    char *paren = strrchr (text, ')');
    bool gone = paren && (paren[2] == 'Z' || paren[2] == 'X');
    free (text);
    return gone;
}

static pid_t
s_read_pid (const char *path)
{
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    pid_t pid = (pid_t) atoi (text);
    free (text);
    assert_true (pid > 0);
    return pid;
}

//  Spawns "helper_child sleep 30 <dir>/<name>.ready" and waits until it runs.
static pid_t
s_spawn_sleeper (harness_t *harness, const char *name)
{
    char ready_name[64];
    snprintf (ready_name, sizeof ready_name, "%s.ready", name);
    char *ready_path = harness_path (harness, ready_name);
    assert_non_null (ready_path);
    char *argv[] = {HELPER_CHILD_PATH, "sleep", "30", ready_path, NULL};
    pid_t pid = harness_spawn (harness, name, argv, NULL);
    assert_true (pid > 0);
    assert_true (harness_wait_until (s_file_exists, ready_path, TEST_WAIT_MS));
    assert_int_equal (s_read_pid (ready_path), pid);
    free (ready_path);
    return pid;
}

//  Spawns helper_child with argv_tail and waits for it to exit 0.
static void
s_run_helper (harness_t *harness, const char *log_name, char *mode, char *arg1, char *arg2,
              char *const env_extra[])
{
    char *argv[] = {HELPER_CHILD_PATH, mode, arg1, arg2, NULL};
    pid_t pid = harness_spawn (harness, log_name, argv, env_extra);
    assert_true (pid > 0);
    int wstatus = -1;
    assert_int_equal (harness_wait_exit (harness, pid, TEST_WAIT_MS, &wstatus), 0);
    if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != 0) {
        harness_dump_log (harness, log_name);
        fail_msg ("helper_child %s: wait status 0x%x", mode, wstatus);
    }
}

//  Processes -----------------------------------------------------------------

static void
test_spawn_and_kill (void **state)
{
    harness_t *harness = *state;
    pid_t pid = s_spawn_sleeper (harness, "sleeper");
    assert_int_equal (kill (pid, 0), 0);
    assert_int_equal (getpgid (pid), pid); //  its own process group

    int wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, pid, 0, &wstatus), -1); //  still running
    assert_int_equal (harness_kill (harness, pid, SIGKILL), 0);
    assert_int_equal (harness_wait_exit (harness, pid, TEST_WAIT_MS, &wstatus), 0);
    assert_true (WIFSIGNALED (wstatus));
    assert_int_equal (WTERMSIG (wstatus), SIGKILL);
    assert_int_equal (kill (pid, 0), -1); //  reaped

    //  Once reaped: kill says so, wait_exit repeats the status.
    assert_int_equal (harness_kill (harness, pid, SIGKILL), -1);
    assert_int_equal (errno, ESRCH);
    wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, pid, 0, &wstatus), 0);
    assert_int_equal (WTERMSIG (wstatus), SIGKILL);
}

static void
test_signals_reset_in_child (void **state)
{
    harness_t *harness = *state;
    //  The test process ignores SIGTERM; its child must not inherit that.
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    struct sigaction old;
    sigaction (SIGTERM, &ignore, &old);
    pid_t pid = s_spawn_sleeper (harness, "sleeper");
    sigaction (SIGTERM, &old, NULL);
    assert_int_equal (harness_kill (harness, pid, SIGTERM), 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, pid, TEST_WAIT_MS, &wstatus), 0);
    assert_true (WIFSIGNALED (wstatus));
    assert_int_equal (WTERMSIG (wstatus), SIGTERM);
}

static void
test_exit_status_and_path_lookup (void **state)
{
    harness_t *harness = *state;
    char *argv[] = {HELPER_CHILD_PATH, "exit", "7", NULL};
    pid_t pid = harness_spawn (harness, "exit", argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, pid, TEST_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 7);

    //  A bare name is looked up in PATH.
    char *sh_argv[] = {"sh", "-c", "exit 3", NULL};
    pid = harness_spawn (harness, "sh", sh_argv, NULL);
    assert_true (pid > 0);
    assert_int_equal (harness_wait_exit (harness, pid, TEST_WAIT_MS, &wstatus), 0);
    assert_int_equal (WEXITSTATUS (wstatus), 3);
}

static void
test_exec_failure (void **state)
{
    harness_t *harness = *state;
    char *argv[] = {"/nonexistent/rl-program", NULL};
    errno = 0;
    assert_int_equal (harness_spawn (harness, "missing", argv, NULL), -1);
    assert_int_equal (errno, ENOENT);
    char *dir_argv[] = {(char *) harness_dir (harness), NULL};
    assert_int_equal (harness_spawn (harness, "missing", dir_argv, NULL), -1);
    assert_int_equal (errno, EACCES);
}

static void
test_env_extra (void **state)
{
    harness_t *harness = *state;
    setenv ("RL_TEST_INHERITED", "from parent", 1);
    setenv ("RL_TEST_REPLACED", "old", 1);
    char *env_extra[] = {"RL_TEST_EXTRA=hello world", "RL_TEST_REPLACED=new", NULL};
    struct {
        char *name;
        const char *expected;
    } cases[] = {
        {"RL_TEST_EXTRA", "hello world"},
        {"RL_TEST_REPLACED", "new"},
        {"RL_TEST_INHERITED", "from parent"},
        {"RL_TEST_NOT_SET", "(unset)"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char *out_path = harness_path (harness, cases[index].name);
        s_run_helper (harness, "env", "env", cases[index].name, out_path, env_extra);
        char *text = harness_read_file (out_path, NULL);
        assert_non_null (text);
        assert_string_equal (text, cases[index].expected);
        free (text);
        free (out_path);
    }
    //  Without env_extra the parent's value goes through unchanged.
    char *out_path = harness_path (harness, "plain");
    s_run_helper (harness, "env", "env", "RL_TEST_REPLACED", out_path, NULL);
    char *text = harness_read_file (out_path, NULL);
    assert_string_equal (text, "old");
    free (text);
    free (out_path);
    unsetenv ("RL_TEST_INHERITED");
    unsetenv ("RL_TEST_REPLACED");
}

static void
test_log_capture (void **state)
{
    harness_t *harness = *state;
    s_run_helper (harness, "echo", "echo", "first", NULL, NULL);
    s_run_helper (harness, "echo", "echo", "second", NULL, NULL); //  appended
    char *log_path = harness_path (harness, "echo.log");
    size_t size = 0;
    char *text = harness_read_file (log_path, &size);
    assert_non_null (text);
    assert_string_equal (text, "out: first\nerr: first\nout: second\nerr: second\n");
    assert_int_equal (size, strlen (text));
    free (text);
    free (log_path);
    harness_dump_log (harness, "echo"); //  prints; must not fail
    harness_dump_log (harness, "no_such_log");
}

static void
test_children_max (void **state)
{
    harness_t *harness = *state;
    //  At most HARNESS_CHILDREN_MAX live at once...
    char *sleep_argv[] = {"sleep", "30", NULL};
    pid_t first = -1;
    for (int index = 0; index < HARNESS_CHILDREN_MAX; index++) {
        pid_t pid = harness_spawn (harness, "live", sleep_argv, NULL);
        assert_true (pid > 0);
        first = index == 0 ? pid : first;
    }
    assert_int_equal (harness_spawn (harness, "live", sleep_argv, NULL), -1);
    assert_int_equal (errno, EAGAIN);
    //  ...and a reaped one makes room.
    assert_int_equal (harness_kill (harness, first, SIGKILL), 0);
    assert_int_equal (harness_wait_exit (harness, first, TEST_WAIT_MS, NULL), 0);
    assert_true (harness_spawn (harness, "live", sleep_argv, NULL) > 0);
}

static void
test_many_spawns_over_life (void **state)
{
    harness_t *harness = *state;
    //  More children over a life than records: the oldest reaped records
    //  are recycled, the latest statuses stay.
    char *argv[] = {"sh", "-c", "exit 5", NULL};
    pid_t last = -1;
    for (int index = 0; index < HARNESS_RECORDS_MAX + 8; index++) {
        last = harness_spawn (harness, "many", argv, NULL);
        assert_true (last > 0);
        assert_int_equal (harness_wait_exit (harness, last, TEST_WAIT_MS, NULL), 0);
    }
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, last, 0, &wstatus), 0);
    assert_int_equal (WEXITSTATUS (wstatus), 5);
}

//  Directory -----------------------------------------------------------------

static void
test_dir_and_paths (void **state)
{
    harness_t *harness = *state;
    const char *dir = harness_dir (harness);
    assert_true (dir[0] == '/');
    assert_non_null (strstr (dir, "/rl-harness-"));
    struct stat info;
    assert_int_equal (stat (dir, &info), 0);
    assert_true (S_ISDIR (info.st_mode));
    assert_int_equal (info.st_mode & 0777, 0700); //  private

    char *path = harness_path (harness, "sub/file.txt");
    assert_non_null (path);
    assert_int_equal (strncmp (path, dir, strlen (dir)), 0);
    assert_string_equal (path + strlen (dir), "/sub/file.txt");
    free (path);

    //  Two harnesses never share a directory.
    harness_t *other = harness_new ("harness");
    assert_non_null (other);
    assert_string_not_equal (harness_dir (other), dir);
    harness_destroy (&other);
}

static void
test_bin_dir (void **state)
{
    (void) state;
    unsetenv ("RL_BIN_DIR");
    const char *bin_dir = harness_bin_dir ();
    struct stat info;
    assert_int_equal (stat (bin_dir, &info), 0);
    assert_true (S_ISDIR (info.st_mode));
    //  The helper lives somewhere under the build tree.
    assert_int_equal (strncmp (HELPER_CHILD_PATH, bin_dir, strlen (bin_dir)), 0);
    setenv ("RL_BIN_DIR", "/opt/ringledger/bin", 1);
    assert_string_equal (harness_bin_dir (), "/opt/ringledger/bin");
    unsetenv ("RL_BIN_DIR");
}

static void
test_read_file (void **state)
{
    harness_t *harness = *state;
    char *path = harness_path (harness, "big.bin");
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    size_t size_expected = 100000; //  larger than the first buffer
    for (size_t index = 0; index < size_expected; index++) {
        fputc ('a' + (int) (index % 26), file);
    }
    fclose (file);
    size_t size = 0;
    char *data = harness_read_file (path, &size);
    assert_non_null (data);
    assert_int_equal (size, size_expected);
    assert_int_equal (data[size], '\0');
    assert_int_equal (data[size_expected - 1], 'a' + (int) ((size_expected - 1) % 26));
    free (data);
    free (path);
    assert_null (harness_read_file ("/nonexistent/rl-file", NULL));
}

static void
test_destroy_kills_and_removes (void **state)
{
    (void) state;
    harness_t *harness = harness_new ("destroy");
    assert_non_null (harness);
    char *dir = strdup (harness_dir (harness));
    pid_t sleeper = s_spawn_sleeper (harness, "sleeper");
    char *pid_path = harness_path (harness, "grandchild.pid");
    char *argv[] = {HELPER_CHILD_PATH, "group", "30", pid_path, NULL};
    pid_t parent = harness_spawn (harness, "group", argv, NULL);
    assert_true (parent > 0);
    assert_true (harness_wait_until (s_file_exists, pid_path, TEST_WAIT_MS));
    pid_t grandchild = s_read_pid (pid_path);
    free (pid_path);

    harness_destroy (&harness);
    assert_null (harness);
    harness_destroy (&harness);              //  safe twice
    assert_true (s_process_gone (&sleeper)); //  reaped by destroy
    assert_true (s_process_gone (&parent));
    assert_true (harness_wait_until (s_process_gone, &grandchild, TEST_WAIT_MS));
    struct stat info;
    assert_int_equal (stat (dir, &info), -1);
    assert_int_equal (errno, ENOENT);
    free (dir);
}

static void
test_keep_dir (void **state)
{
    (void) state;
    //  By a call after a failure...
    harness_t *harness = harness_new ("keep");
    assert_non_null (harness);
    char *dir = strdup (harness_dir (harness));
    harness_keep (harness);
    harness_destroy (&harness);
    struct stat info;
    assert_int_equal (stat (dir, &info), 0);
    assert_int_equal (rmdir (dir), 0);
    free (dir);

    //  ...or by the environment.
    setenv ("RL_KEEP_TEST_DIRS", "1", 1);
    harness = harness_new ("keep");
    assert_non_null (harness);
    dir = strdup (harness_dir (harness));
    harness_destroy (&harness);
    unsetenv ("RL_KEEP_TEST_DIRS");
    assert_int_equal (stat (dir, &info), 0);
    assert_int_equal (rmdir (dir), 0);
    free (dir);
}

//  Ports and waiting ---------------------------------------------------------

static void
test_free_ports (void **state)
{
    (void) state;
    int ports[TEST_PORTS];
    for (int index = 0; index < TEST_PORTS; index++) {
        ports[index] = harness_free_port ();
        assert_true (ports[index] > 0 && ports[index] < 65536);
        for (int earlier = 0; earlier < index; earlier++) {
            assert_int_not_equal (ports[index], ports[earlier]);
        }
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        assert_true (fd >= 0);
        struct sockaddr_in address = {.sin_family = AF_INET,
                                      .sin_port = htons ((uint16_t) ports[index]),
                                      .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);
        assert_int_equal (listen (fd, 1), 0);
        close (fd);
    }
}

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool
s_never (void *arg)
{
    (*(int *) arg)++;
    return false;
}

static bool
s_on_fifth_call (void *arg)
{
    return ++(*(int *) arg) >= 5;
}

static void
test_wait_until (void **state)
{
    (void) state;
    int calls = 0;
    int64_t start_ms = s_now_ms ();
    assert_false (harness_wait_until (s_never, &calls, 50));
    int64_t elapsed_ms = s_now_ms () - start_ms;
    assert_true (elapsed_ms >= 50);
    assert_true (elapsed_ms < 1000); //  bounded, with room for a slow machine
    assert_true (calls >= 3);        //  polled, with backoff 1, 2, 4... ms
    assert_true (calls <= 50);

    calls = 0;
    assert_true (harness_wait_until (s_on_fifth_call, &calls, TEST_WAIT_MS));
    assert_int_equal (calls, 5);

    calls = 4;
    assert_true (harness_wait_until (s_on_fifth_call, &calls, 0)); //  checked once at least
    calls = 0;
    assert_false (harness_wait_until (s_never, &calls, 0));
    assert_int_equal (calls, 1);
}

//  Last-resort cleanup, in a fresh process -----------------------------------

//  Never destroyed on purpose; a global, so that LeakSanitizer sees it
//  reachable when the cleanup child exits without destroying it.
static harness_t *volatile s_cleanup_harness;

//  The child side: harness, a group child with a grandchild, then MODE.
//  Writes "<child pid> <grandchild pid>" to out_path before leaving.
static int
s_cleanup_child_main (const char *mode, const char *out_path)
{
    harness_t *harness = harness_new ("cleanup");
    s_cleanup_harness = harness;
    if (harness == NULL) {
        return 30;
    }
    char *pid_path = harness_path (harness, "grandchild.pid");
    char *argv[] = {HELPER_CHILD_PATH, "group", "30", pid_path, NULL};
    pid_t child = harness_spawn (harness, "group", argv, NULL);
    if (child < 0 || !harness_wait_until (s_file_exists, pid_path, TEST_WAIT_MS)) {
        return 31;
    }
    char *text = harness_read_file (pid_path, NULL);
    FILE *out = fopen (out_path, "w");
    if (text == NULL || out == NULL) {
        return 32;
    }
    fprintf (out, "%d %d\n", (int) child, atoi (text));
    fclose (out);
    free (text);
    free (pid_path);
    if (strcmp (mode, "term") == 0) {
        raise (SIGTERM);
    } else if (strcmp (mode, "int") == 0) {
        raise (SIGINT);
    } else if (strcmp (mode, "segv") == 0) {
        raise (SIGSEGV);
    } else if (strcmp (mode, "abort") == 0) {
        abort ();
    }
    exit (0); //  "exit": no destroy, atexit cleans up
}

static void
s_check_cleanup (harness_t *harness, char *mode, int sig_expected)
{
    char self_path[4096];
    ssize_t size = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    assert_true (size > 0);
    self_path[size] = '\0';
    char *out_path = harness_path (harness, mode);
    //  The child's own harness directory goes inside ours.
    char tmp_env[4200];
    snprintf (tmp_env, sizeof tmp_env, "TMPDIR=%s", harness_dir (harness));
    char *env_extra[] = {tmp_env, NULL};
    char *argv[] = {self_path, "--cleanup-child", mode, out_path, NULL};
    pid_t pid = harness_spawn (harness, mode, argv, env_extra);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (harness, pid, TEST_WAIT_MS, &wstatus), 0);
    if (sig_expected == 0) {
        if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != 0) {
            harness_dump_log (harness, mode);
            fail_msg ("%s: wait status 0x%x, expected exit 0", mode, wstatus);
        }
    } else if (sig_expected > 0) {
        if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != sig_expected) {
            harness_dump_log (harness, mode);
            fail_msg ("%s: wait status 0x%x, expected signal %d", mode, wstatus, sig_expected);
        }
    }
    char *text = harness_read_file (out_path, NULL);
    if (text == NULL) {
        harness_dump_log (harness, mode);
        fail_msg ("%s: the child wrote no pids", mode);
    }
    pid_t child = 0;
    pid_t grandchild = 0;
    int child_int = 0;
    int grandchild_int = 0;
    assert_int_equal (sscanf (text, "%d %d", &child_int, &grandchild_int), 2);
    child = (pid_t) child_int;
    grandchild = (pid_t) grandchild_int;
    free (text);
    free (out_path);
    assert_true (harness_wait_until (s_process_gone, &child, TEST_WAIT_MS));
    //  Only a kill of the process group reaches the grandchild.
    assert_true (harness_wait_until (s_process_gone, &grandchild, TEST_WAIT_MS));
}

static void
test_cleanup_at_exit (void **state)
{
    s_check_cleanup (*state, "exit", 0);
}

static void
test_cleanup_on_signals (void **state)
{
    s_check_cleanup (*state, "term", SIGTERM);
    s_check_cleanup (*state, "int", SIGINT);
    s_check_cleanup (*state, "abort", SIGABRT);
    //  Under a sanitizer its own SIGSEGV handler decides how the process
    //  ends; the children must be gone either way.
    s_check_cleanup (*state, "segv", -1);
}

int
main (int argc, char *argv[])
{
    if (argc == 4 && strcmp (argv[1], "--cleanup-child") == 0) {
        return s_cleanup_child_main (argv[2], argv[3]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_spawn_and_kill, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_reset_in_child, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exit_status_and_path_lookup, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_exec_failure, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_env_extra, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_log_capture, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_children_max, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_many_spawns_over_life, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dir_and_paths, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bin_dir, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_destroy_kills_and_removes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_keep_dir, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_free_ports, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_wait_until, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cleanup_at_exit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cleanup_on_signals, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
