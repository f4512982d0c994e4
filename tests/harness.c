/*  harness.c: processes, private directories and ports for integration
    tests. See harness.h for the contract.

    DESIGN
    A harness owns a directory made by mkdtemp and a table of the children
    it spawned (at most HARNESS_CHILDREN_MAX). Besides that table, every live
    child's pid sits in a process-wide registry (s_live_pids, lock-free
    atomics) that three last-resort paths read:
      - an atexit handler, for a test program that exits without destroy;
      - handlers for SIGABRT, SIGSEGV, SIGTERM and SIGINT, which only call
        kill(2) (async-signal-safe), then pass the signal on to the handler
        that was there before (cmocka's, ASan's) or to the default action;
      - PR_SET_PDEATHSIG in each child, for a test killed by SIGKILL (ctest's
        TIMEOUT), where no handler of ours can run.
    The atexit and signal paths act only in the process that installed
    them, never in a forked child that inherited them.

    Forking, exec, waiting, ports and removing trees are common/proc.c's,
    the core the benchmarks' spawner shares; this file adds the registry,
    the handlers, the table and the directory.

    LIFE OF A CHILD
        spawn:  proc_spawn: its own process group, the death signal, fds
                0/1/2 at /dev/null and its log; exec's errno comes back, so
                a bad path is a -1 from harness_spawn, not a mystery in a
                log.
        live:   in the harness table and the registry; harness_kill signals
                its process group.
        exited: harness_wait_exit sees the exit with WNOWAIT, kills what is
                left of the group while the zombie still pins the group id
                (so the id cannot have been reused), then reaps it.
        reaped: out of the registry; its status stays in the table.

    INVARIANTS
    1. A pid is in the registry exactly while its child is spawned and not
       yet reaped, so the registry never names a pid the kernel could have
       given to an unrelated process.
    2. destroy leaves no child of this harness alive or unreaped (bounded by
       HARNESS_REAP_TIMEOUT_MS per child; a child stuck in the kernel past
       that is reported, not waited for).
    3. destroy removes only a directory that harness_new created.
*/
#define _GNU_SOURCE
#include "harness.h"
#include "proc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RL_HARNESS_BIN_DIR
#define RL_HARNESS_BIN_DIR "."
#endif

#define HARNESS_PORT_ATTEMPTS_MAX 64 //  binds tried by one harness_free_port

extern char **environ;

typedef struct {
    pid_t pid;          //  also its process group id
    bool live;          //  spawned and not yet reaped
    int wstatus;        //  valid once reaped
    uint64_t spawn_seq; //  order of spawning, to recycle the oldest record
} harness_child_t;

struct harness_t {
    char dir[PATH_MAX];                            //  absolute, made by mkdtemp
    harness_child_t children[HARNESS_RECORDS_MAX]; //  live and reaped children
    size_t children_size;                          //  used entries of children
    size_t live_size;                              //  live entries of children
    uint64_t spawn_seq_next;                       //  spawn_seq of the next child
    bool keep;                                     //  keep dir at destroy
};

_Static_assert(HARNESS_CHILDREN_MAX <= HARNESS_RECORDS_MAX, "every live child has a record");

//  Process-wide state ------------------------------------------------------

static atomic_int s_live_pids[HARNESS_LIVE_MAX]; //  0: free slot
static pid_t s_owner_pid;                        //  process that installed handlers
static pthread_once_t s_install_once = PTHREAD_ONCE_INIT;
static const int s_signals[] = {SIGABRT, SIGSEGV, SIGTERM, SIGINT};
#define HARNESS_SIGNALS_SIZE (sizeof s_signals / sizeof s_signals[0])
static struct sigaction s_old_actions[HARNESS_SIGNALS_SIZE];

static pthread_mutex_t s_ports_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_ports[HARNESS_PORTS_REMEMBERED]; //  ring of ports handed out
static size_t s_ports_next;                   //  next slot of s_ports

_Static_assert(sizeof (pid_t) == sizeof (int), "a pid fits an atomic_int");

static int
s_registry_add (pid_t pid)
{
    for (size_t index = 0; index < HARNESS_LIVE_MAX; index++) {
        int expected = 0;
        if (atomic_compare_exchange_strong (&s_live_pids[index], &expected, (int) pid)) {
            return 0;
        }
    }
    return -1;
}

static void
s_registry_remove (pid_t pid)
{
    for (size_t index = 0; index < HARNESS_LIVE_MAX; index++) {
        int expected = (int) pid;
        if (atomic_compare_exchange_strong (&s_live_pids[index], &expected, 0)) {
            return;
        }
    }
}

//  Async-signal-safe: loads and kill(2) only.
static void
s_kill_registered (void)
{
    if (getpid () != s_owner_pid) {
        return; //  a forked child that inherited the registry
    }
    for (size_t index = 0; index < HARNESS_LIVE_MAX; index++) {
        pid_t pid = (pid_t) atomic_load (&s_live_pids[index]);
        if (pid > 0) {
            kill (-pid, SIGKILL);
            kill (pid, SIGKILL);
        }
    }
}

static void
s_at_exit (void)
{
    s_kill_registered ();
}

//  Kills the children, then hands the signal to whoever had it before.
static void
s_on_signal (int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    s_kill_registered ();
    for (size_t index = 0; index < HARNESS_SIGNALS_SIZE; index++) {
        if (s_signals[index] != sig) {
            continue;
        }
        struct sigaction *old = &s_old_actions[index];
        if (old->sa_flags & SA_SIGINFO) {
            errno = saved_errno;
            old->sa_sigaction (sig, info, context);
        } else if (old->sa_handler == SIG_IGN) {
            errno = saved_errno;
        } else if (old->sa_handler == SIG_DFL) {
            sigaction (sig, old, NULL);
            raise (sig); //  SA_NODEFER: delivered now, default action
        } else {
            errno = saved_errno;
            old->sa_handler (sig);
        }
        return;
    }
}

static void
s_install (void)
{
    s_owner_pid = getpid ();
    atexit (s_at_exit);
    for (size_t index = 0; index < HARNESS_SIGNALS_SIZE; index++) {
        struct sigaction action;
        memset (&action, 0, sizeof action);
        action.sa_sigaction = s_on_signal;
        action.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset (&action.sa_mask);
        sigaction (s_signals[index], &action, &s_old_actions[index]);
    }
}

//  Helpers -----------------------------------------------------------------

static bool
s_name_is_valid (const char *name, size_t size_max)
{
    size_t size = strlen (name);
    if (size == 0 || size >= size_max) {
        return false;
    }
    for (size_t index = 0; index < size; index++) {
        char c = name[index];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
}

//  The live record of pid, else its latest reaped one (the kernel may have
//  given an old pid to a new child). NULL when none.
static harness_child_t *
s_child_find (harness_t *self, pid_t pid)
{
    harness_child_t *found = NULL;
    for (size_t index = 0; index < self->children_size; index++) {
        harness_child_t *child = &self->children[index];
        if (child->pid != pid) {
            continue;
        }
        if (child->live) {
            return child;
        }
        if (found == NULL || child->spawn_seq > found->spawn_seq) {
            found = child;
        }
    }
    return found;
}

//  A record for a new child: a free one, else the oldest reaped one. The
//  caller checked that fewer than HARNESS_CHILDREN_MAX are live.
static harness_child_t *
s_child_record (harness_t *self)
{
    if (self->children_size < HARNESS_RECORDS_MAX) {
        return &self->children[self->children_size++];
    }
    harness_child_t *oldest = NULL;
    for (size_t index = 0; index < HARNESS_RECORDS_MAX; index++) {
        harness_child_t *child = &self->children[index];
        if (!child->live && (oldest == NULL || child->spawn_seq < oldest->spawn_seq)) {
            oldest = child;
        }
    }
    assert (oldest);
    return oldest;
}

//  Writes "<dir>/<log_name>.log" into log_path. 0, or -1 when too long.
static int
s_log_path (const harness_t *self, const char *log_name, char log_path[PATH_MAX])
{
    int size = snprintf (log_path, PATH_MAX, "%s/%s.log", self->dir, log_name);
    return size > 0 && size < PATH_MAX ? 0 : -1;
}

//  Life cycle --------------------------------------------------------------

harness_t *
harness_new (const char *test_name)
{
    assert (test_name);
    assert (s_name_is_valid (test_name, HARNESS_TEST_NAME_SIZE_MAX));
    pthread_once (&s_install_once, s_install);

    harness_t *self = calloc (1, sizeof *self);
    if (self == NULL) {
        return NULL;
    }
    const char *tmp_dir = getenv ("TMPDIR");
    if (tmp_dir == NULL || *tmp_dir == '\0') {
        tmp_dir = "/tmp";
    }
    char template[PATH_MAX];
    int size = snprintf (template, sizeof template, "%s/rl-%s-XXXXXX", tmp_dir, test_name);
    if (size < 0 || (size_t) size >= sizeof template) {
        fprintf (stderr, "harness: TMPDIR too long\n");
        free (self);
        return NULL;
    }
    if (mkdtemp (template) == NULL) {
        fprintf (stderr, "harness: mkdtemp %s: %s\n", template, strerror (errno));
        free (self);
        return NULL;
    }
    if (realpath (template, self->dir) == NULL) {
        fprintf (stderr, "harness: realpath %s: %s\n", template, strerror (errno));
        rmdir (template);
        free (self);
        return NULL;
    }
    return self;
}

void
harness_destroy (harness_t **self_p)
{
    assert (self_p);
    harness_t *self = *self_p;
    if (self == NULL) {
        return;
    }
    for (size_t index = 0; index < self->children_size; index++) {
        harness_child_t *child = &self->children[index];
        if (!child->live) {
            continue;
        }
        kill (-child->pid, SIGKILL);
        kill (child->pid, SIGKILL);
        if (harness_wait_exit (self, child->pid, HARNESS_REAP_TIMEOUT_MS, NULL) != 0) {
            fprintf (stderr, "harness: child %d did not die within %d ms\n", (int) child->pid,
                     HARNESS_REAP_TIMEOUT_MS);
        }
    }
    const char *keep_env = getenv ("RL_KEEP_TEST_DIRS");
    if (self->keep || (keep_env && strcmp (keep_env, "1") == 0)) {
        fprintf (stderr, "harness: kept %s\n", self->dir);
    } else {
        assert (strstr (self->dir, "/rl-")); //  invariant 3
        if (proc_remove_tree (self->dir) != 0) {
            fprintf (stderr, "harness: remove %s: %s\n", self->dir, strerror (errno));
        }
    }
    free (self);
    *self_p = NULL;
}

void
harness_keep (harness_t *self)
{
    assert (self);
    self->keep = true;
}

const char *
harness_dir (const harness_t *self)
{
    assert (self);
    return self->dir;
}

char *
harness_path (const harness_t *self, const char *name)
{
    assert (self);
    assert (name && *name && name[0] != '/');
    char *path = NULL;
    if (asprintf (&path, "%s/%s", self->dir, name) < 0) {
        return NULL;
    }
    return path;
}

//  Ports -------------------------------------------------------------------

static bool
s_port_was_given (int port)
{
    for (size_t index = 0; index < HARNESS_PORTS_REMEMBERED; index++) {
        if (s_ports[index] == port) {
            return true;
        }
    }
    return false;
}

int
harness_free_port (void)
{
    pthread_mutex_lock (&s_ports_lock);
    int port = -1;
    for (int attempt = 0; attempt < HARNESS_PORT_ATTEMPTS_MAX; attempt++) {
        int candidate = proc_free_port ();
        if (candidate < 0) {
            break;
        }
        if (!s_port_was_given (candidate)) {
            port = candidate;
            s_ports[s_ports_next] = port;
            s_ports_next = (s_ports_next + 1) % HARNESS_PORTS_REMEMBERED;
            break;
        }
    }
    pthread_mutex_unlock (&s_ports_lock);
    return port;
}

//  Processes ---------------------------------------------------------------

static bool
s_env_key_equal (const char *left, const char *right)
{
    size_t left_size = strcspn (left, "=");
    size_t right_size = strcspn (right, "=");
    return left_size == right_size && memcmp (left, right, left_size) == 0;
}

//  malloc'd environment: environ without the keys of env_extra, then
//  env_extra. The strings are not copied.
static char **
s_env_build (char *const env_extra[])
{
    size_t extra_size = 0;
    while (env_extra && env_extra[extra_size]) {
        assert (strchr (env_extra[extra_size], '=') != NULL);
        extra_size++;
        assert (extra_size <= HARNESS_ENV_EXTRA_MAX);
    }
    size_t environ_size = 0;
    while (environ && environ[environ_size]) {
        environ_size++;
    }
    char **envp = calloc (environ_size + extra_size + 1, sizeof *envp);
    if (envp == NULL) {
        return NULL;
    }
    size_t envp_size = 0;
    for (size_t index = 0; index < environ_size; index++) {
        bool replaced = false;
        for (size_t extra = 0; extra < extra_size && !replaced; extra++) {
            replaced = s_env_key_equal (environ[index], env_extra[extra]);
        }
        if (!replaced) {
            envp[envp_size++] = environ[index];
        }
    }
    for (size_t extra = 0; extra < extra_size; extra++) {
        envp[envp_size++] = env_extra[extra];
    }
    envp[envp_size] = NULL;
    return envp;
}

pid_t
harness_spawn (harness_t *self, const char *log_name, char *const argv[], char *const env_extra[])
{
    assert (self);
    assert (log_name && s_name_is_valid (log_name, NAME_MAX - 4));
    assert (argv && argv[0]);
    for (size_t index = 0; argv[index]; index++) {
        assert (index < HARNESS_ARGS_MAX);
    }
    if (self->live_size >= HARNESS_CHILDREN_MAX) {
        fprintf (stderr, "harness: more than %d live children\n", HARNESS_CHILDREN_MAX);
        errno = EAGAIN;
        return -1;
    }
    char log_path[PATH_MAX];
    if (s_log_path (self, log_name, log_path) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char **envp = s_env_build (env_extra);
    if (envp == NULL) {
        errno = ENOMEM;
        return -1;
    }
    proc_spawn_t spawn = {.argv = argv,
                          .envp = envp,
                          .out_path = log_path,
                          .err_path = log_path,
                          .own_group = true,
                          .die_with_parent = true};
    pid_t pid = proc_spawn (&spawn);
    int error = errno;
    free (envp);
    if (pid < 0) {
        errno = error;
        return -1;
    }
    harness_child_t *child = s_child_record (self);
    child->pid = pid;
    child->live = true;
    child->wstatus = 0;
    child->spawn_seq = self->spawn_seq_next++;
    self->live_size++;
    if (s_registry_add (pid) != 0) {
        fprintf (stderr, "harness: more than %d live children in this process\n", HARNESS_LIVE_MAX);
    }
    return pid;
}

int
harness_kill (harness_t *self, pid_t pid, int sig)
{
    assert (self);
    harness_child_t *child = s_child_find (self, pid);
    assert (child); //  not a child of this harness
    if (!child->live) {
        errno = ESRCH;
        return -1;
    }
    if (kill (-pid, sig) == 0) {
        return 0;
    }
    return kill (pid, sig); //  in case the child had not made its group yet
}

//  Reaps a child that has exited. The pid leaves the registry before
//  waitpid lets the kernel reuse it (invariant 1).
static void
s_child_reap (harness_t *self, harness_child_t *child)
{
    kill (-child->pid, SIGKILL); //  leftovers of its group; the zombie pins the id
    s_registry_remove (child->pid);
    int wstatus = 0;
    while (waitpid (child->pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    child->wstatus = wstatus;
    child->live = false;
    self->live_size--;
}

int
harness_wait_exit (harness_t *self, pid_t pid, int timeout_ms, int *wstatus)
{
    assert (self);
    assert (timeout_ms >= 0);
    harness_child_t *child = s_child_find (self, pid);
    assert (child); //  not a child of this harness
    if (child->live) {
        //  Exited but not reaped: its group is killed while the zombie pins the id.
        if (proc_wait (pid, timeout_ms, false, NULL) != 0) {
            if (errno == ECHILD) {
                s_registry_remove (pid); //  reaped behind our back
                child->live = false;
                self->live_size--;
            }
            return -1;
        }
        s_child_reap (self, child);
    }
    if (wstatus) {
        *wstatus = child->wstatus;
    }
    return 0;
}

bool
harness_wait_until (bool (*cond) (void *arg), void *arg, int timeout_ms)
{
    assert (cond);
    assert (timeout_ms >= 0);
    int64_t deadline_ms = proc_now_ms () + timeout_ms;
    int backoff_ms = HARNESS_POLL_MS_MIN;
    //  Bounded by the deadline: each turn sleeps at least until it or 1 ms.
    while (true) {
        if (cond (arg)) {
            return true;
        }
        if (proc_now_ms () >= deadline_ms) {
            return false;
        }
        proc_backoff (&backoff_ms, HARNESS_POLL_MS_MAX, deadline_ms);
    }
}

//  Files -------------------------------------------------------------------

const char *
harness_bin_dir (void)
{
    const char *bin_dir = getenv ("RL_BIN_DIR");
    return bin_dir && *bin_dir ? bin_dir : RL_HARNESS_BIN_DIR;
}

char *
harness_read_file (const char *path, size_t *size_p)
{
    assert (path);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    size_t capacity = 4096;
    size_t size = 0;
    char *data = malloc (capacity);
    //  Bounded: the buffer doubles up to HARNESS_FILE_SIZE_MAX, then we stop.
    while (data) {
        if (size + 1 == capacity) {
            if (capacity > HARNESS_FILE_SIZE_MAX) {
                free (data);
                data = NULL;
                errno = EFBIG;
                break;
            }
            char *bigger = realloc (data, capacity * 2);
            if (bigger == NULL) {
                free (data);
                data = NULL;
                break;
            }
            data = bigger;
            capacity *= 2;
        }
        ssize_t got = read (fd, data + size, capacity - 1 - size);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            free (data);
            data = NULL;
            break;
        }
        if (got == 0) {
            data[size] = '\0';
            if (size_p) {
                *size_p = size;
            }
            break;
        }
        size += (size_t) got;
    }
    int saved_errno = errno;
    close (fd);
    errno = saved_errno;
    return data;
}

void
harness_dump_log (const harness_t *self, const char *log_name)
{
    assert (self);
    assert (log_name);
    char log_path[PATH_MAX];
    if (s_log_path (self, log_name, log_path) != 0) {
        fprintf (stderr, "harness: log name too long: %s\n", log_name);
        return;
    }
    size_t size = 0;
    char *data = harness_read_file (log_path, &size);
    if (data == NULL) {
        fprintf (stderr, "harness: cannot read %s: %s\n", log_path, strerror (errno));
        return;
    }
    size_t start = size > HARNESS_LOG_TAIL_SIZE ? size - HARNESS_LOG_TAIL_SIZE : 0;
    fprintf (stderr, "----- %s (last %zu of %zu bytes) -----\n%s%s----- end of %s -----\n",
             log_path, size - start, size, data + start,
             size > 0 && data[size - 1] != '\n' ? "\n" : "", log_name);
    free (data);
}
