/*  harness.h: start real processes from cmocka tests, in a private
    directory, and make sure none of them outlives the test.

    A test creates the harness in its setup and destroys it in its teardown:
    cmocka jumps out of a failed test into its teardown, so the children are
    killed and the directory removed whether the test passed or not.

        static int s_setup (void **state) {
            *state = harness_new ("shard_restart");
            return *state ? 0 : -1;
        }
        static int s_teardown (void **state) {
            harness_t *harness = *state;
            harness_destroy (&harness);
            return 0;
        }

    Every child runs in its own process group with its stdout and stderr
    appended to <dir>/<log_name>.log, and dies with the test process
    (PR_SET_PDEATHSIG). Beyond harness_destroy, a process-wide registry of
    live children is killed from an atexit handler and from handlers for
    SIGABRT, SIGSEGV, SIGTERM and SIGINT. Only SIGKILL of the test process
    escapes those handlers; the death signal still reaches the children.

    Wait on conditions with harness_wait_until, never with fixed sleeps.

    A harness is used from one thread, the one that spawns: the death signal
    of a child follows the thread that forked it. harness_free_port and
    harness_wait_until may be called from any thread.
*/
#ifndef RL_HARNESS_H
#define RL_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HARNESS_CHILDREN_MAX       64          //  live (unreaped) children of one harness
#define HARNESS_RECORDS_MAX        256         //  children whose exit status one harness remembers
#define HARNESS_LIVE_MAX           256         //  live children in one test process
#define HARNESS_PORTS_REMEMBERED   256         //  ports never handed out twice
#define HARNESS_TEST_NAME_SIZE_MAX 64          //  bytes of a test name, NUL included
#define HARNESS_ARGS_MAX           64          //  argv entries of one child
#define HARNESS_ENV_EXTRA_MAX      64          //  env_extra entries of one child
#define HARNESS_REAP_TIMEOUT_MS    5000        //  destroy waits this long for a killed child
#define HARNESS_FILE_SIZE_MAX      (64u << 20) //  bytes harness_read_file reads at most
#define HARNESS_LOG_TAIL_SIZE      4096        //  bytes of a log printed by harness_dump_log
#define HARNESS_POLL_MS_MIN        1           //  first pause of harness_wait_until
#define HARNESS_POLL_MS_MAX        50          //  longest pause of harness_wait_until

typedef struct harness_t harness_t;

//  Creates a private directory ${TMPDIR:-/tmp}/rl-<test_name>-XXXXXX.
//  test_name: letters, digits, '_', '-', '.'. NULL on failure.
harness_t *harness_new (const char *test_name);

//  SIGKILLs every live child (its process group), reaps it and removes the
//  directory, unless RL_KEEP_TEST_DIRS=1 or harness_keep was called (then
//  the directory is printed on stderr). Sets *self_p to NULL; safe twice.
void harness_destroy (harness_t **self_p);

//  Keeps the directory at destroy (call it when a check failed).
void harness_keep (harness_t *self);

const char *harness_dir (const harness_t *self);

//  malloc'd "<dir>/<name>"; name is relative. NULL when out of memory.
char *harness_path (const harness_t *self, const char *name);

//  A free TCP port on 127.0.0.1: bound with port 0, read, closed. Never the
//  same port twice in one process (within the last HARNESS_PORTS_REMEMBERED). The
//  port is free when returned; a process of another test may still take it
//  before the child binds it. -1 on failure.
int harness_free_port (void);

//  fork + exec of argv (argv[0] is a path, or a name looked up in PATH).
//  stdout and stderr are appended to <dir>/<log_name>.log; stdin is
//  /dev/null. env_extra: NULL or a NULL-terminated list of "K=V" that are
//  added to the environment (replacing K). Returns the pid, or -1 with
//  errno set (also when exec failed: the child's errno is reported; EAGAIN
//  when HARNESS_CHILDREN_MAX children of this harness are live).
pid_t harness_spawn (harness_t *self, const char *log_name, char *const argv[],
                     char *const env_extra[]);

//  Sends sig to the child's process group. 0, or -1 with errno (ESRCH when
//  the child was already reaped).
int harness_kill (harness_t *self, pid_t pid, int sig);

//  Waits for the child to exit, then kills what is left of its process
//  group and reaps it. 0 when reaped (*wstatus set when wstatus is not
//  NULL; again on later calls, for the last HARNESS_RECORDS_MAX children),
//  -1 on timeout.
int harness_wait_exit (harness_t *self, pid_t pid, int timeout_ms, int *wstatus);

//  Polls cond with a backoff from HARNESS_POLL_MS_MIN to HARNESS_POLL_MS_MAX.
//  True when cond held before the deadline; false after timeout_ms.
bool harness_wait_until (bool (*cond) (void *arg), void *arg, int timeout_ms);

//  Directory of the built programs: env RL_BIN_DIR if set, else the root of
//  the build tree (programs live in its subdirectories: shard/shard, ...).
const char *harness_bin_dir (void);

//  malloc'd contents of a file, NUL-terminated; *size_p (when not NULL) gets
//  the size without the NUL. NULL on failure or above HARNESS_FILE_SIZE_MAX.
char *harness_read_file (const char *path, size_t *size_p);

//  Prints the last HARNESS_LOG_TAIL_SIZE bytes of a child's log to stderr.
void harness_dump_log (const harness_t *self, const char *log_name);

#endif
