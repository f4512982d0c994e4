/*  proc.c: child processes. See proc.h for the contract.

    DESIGN
    proc_spawn opens the child's files in the parent (so that an error is
    the caller's errno), forks, and in the child only rearranges
    descriptors, signals and its group before execvpe. A close-on-exec pipe
    tells the parent how the exec went: closed without a word, it
    succeeded; four bytes, they are its errno, and the child is reaped.

    THE CHILD, BETWEEN FORK AND EXEC
        own group (setpgid) -> death signal (prctl) -> parent still there?
        -> default dispositions and an empty signal mask (ignored signals
        and a blocked mask would survive exec) -> fds 0, 1, 2 -> execvpe

    INVARIANTS
    1. Between fork and exec the child calls async-signal-safe functions
       only (the parent may be threaded).
    2. proc_spawn returns a pid only for a child whose exec succeeded, and
       leaves no child behind when it returns -1.
    3. proc_wait reaps only when asked to.
    4. Every descriptor proc_spawn opens is closed before it returns, in
       the parent, and is close-on-exec in the child.

    LIMITS
    proc_wait sleeps PROC_POLL_MS_MIN doubling to PROC_POLL_MS_MAX between
    looks; proc_remove_tree holds at most PROC_TREE_FDS_MAX directories
    open, and one removal runs at a time in a process (nftw takes no
    argument, so the first error is kept in a static, under a mutex).
*/
#define _GNU_SOURCE //  execvpe, pipe2, nftw
#include "proc.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_TREE_FDS_MAX 16

extern char **environ;

//  Time --------------------------------------------------------------------------

int64_t
proc_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void
proc_backoff (int *backoff_ms, int backoff_max_ms, int64_t deadline_ms)
{
    assert (backoff_ms && *backoff_ms > 0 && backoff_max_ms > 0);
    int64_t left_ms = deadline_ms - proc_now_ms ();
    if (left_ms > 0) {
        int64_t sleep_ms = left_ms < *backoff_ms ? left_ms : *backoff_ms;
        struct timespec pause = {.tv_sec = sleep_ms / 1000, .tv_nsec = (sleep_ms % 1000) * 1000000};
        nanosleep (&pause, NULL); //  an early wake-up only means one more look
    }
    *backoff_ms = *backoff_ms * 2 > backoff_max_ms ? backoff_max_ms : *backoff_ms * 2;
}

//  Spawning ----------------------------------------------------------------------

typedef struct {
    pid_t parent_pid;
    bool own_group;
    bool die_with_parent;
    int null_fd;   //  stdin
    int out_fd;    //  stdout
    int err_fd;    //  stderr
    int report_fd; //  write end of the close-on-exec pipe
} s_exec_t;

//  In the child: async-signal-safe calls only (invariant 1).
static void
s_child_exec (const s_exec_t *exec, char *const argv[], char *const envp[])
{
    if (exec->own_group) {
        setpgid (0, 0);
    }
    if (exec->die_with_parent) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != exec->parent_pid) {
            _exit (127); //  the parent died before the death signal was set
        }
    }
    for (int sig = 1; sig < 32; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            signal (sig, SIG_DFL); //  ignored signals survive exec otherwise
        }
    }
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    if (dup2 (exec->null_fd, STDIN_FILENO) < 0 || dup2 (exec->out_fd, STDOUT_FILENO) < 0
        || dup2 (exec->err_fd, STDERR_FILENO) < 0) {
        int error = errno;
        (void) !write (exec->report_fd, &error, sizeof error);
        _exit (127);
    }
    execvpe (argv[0], argv, envp);
    int error = errno;
    (void) !write (exec->report_fd, &error, sizeof error);
    _exit (127);
}

//  Reads exec's errno from the pipe: 0 when exec succeeded (pipe closed).
static int
s_exec_error (int report_fd)
{
    int error = 0;
    ssize_t size;
    do {
        size = read (report_fd, &error, sizeof error);
    } while (size < 0 && errno == EINTR);
    return size == (ssize_t) sizeof error ? error : 0;
}

static int
s_open_output (const char *path)
{
    return open (path ? path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void
s_close (int *fd_p)
{
    if (*fd_p >= 0) {
        close (*fd_p);
        *fd_p = -1;
    }
}

pid_t
proc_spawn (const proc_spawn_t *spawn)
{
    assert (spawn && spawn->argv && spawn->argv[0]);
    s_exec_t exec = {.parent_pid = getpid (),
                     .own_group = spawn->own_group,
                     .die_with_parent = spawn->die_with_parent,
                     .null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC),
                     .out_fd = s_open_output (spawn->out_path),
                     .err_fd = -1,
                     .report_fd = -1};
    bool one_file = spawn->out_path && spawn->err_path
                    && strcmp (spawn->out_path, spawn->err_path) == 0;
    exec.err_fd = one_file ? dup (exec.out_fd) : s_open_output (spawn->err_path);
    if (exec.err_fd >= 0) {
        fcntl (exec.err_fd, F_SETFD, FD_CLOEXEC);
    }
    int report[2] = {-1, -1};
    pid_t pid = -1;
    int error = 0;
    if (exec.null_fd >= 0 && exec.out_fd >= 0 && exec.err_fd >= 0
        && pipe2 (report, O_CLOEXEC) == 0) {
        exec.report_fd = report[1];
        pid = fork ();
        if (pid == 0) {
            s_child_exec (&exec, spawn->argv, spawn->envp ? spawn->envp : environ);
        }
        error = errno;
    } else {
        error = errno ? errno : EMFILE;
    }
    if (pid > 0) {
        if (spawn->own_group) {
            setpgid (pid, pid); //  also in the parent: no moment without a group
        }
        s_close (&report[1]);
        error = s_exec_error (report[0]);
        if (error != 0) {
            while (waitpid (pid, NULL, 0) < 0 && errno == EINTR) {
            }
            pid = -1; //  invariant 2
        }
    }
    s_close (&report[0]);
    s_close (&report[1]);
    s_close (&exec.null_fd);
    s_close (&exec.out_fd);
    s_close (&exec.err_fd);
    if (pid < 0) {
        errno = error;
    }
    return pid;
}

//  Waiting -----------------------------------------------------------------------

int
proc_wait (pid_t pid, int timeout_ms, bool reap, int *wstatus)
{
    assert (pid > 0 && timeout_ms >= 0);
    int64_t deadline_ms = proc_now_ms () + timeout_ms;
    int backoff_ms = PROC_POLL_MS_MIN;
    while (true) {
        if (reap) {
            int status = 0;
            pid_t rc = waitpid (pid, &status, WNOHANG);
            if (rc == pid) {
                if (wstatus) {
                    *wstatus = status;
                }
                return 0;
            }
            if (rc < 0 && errno != EINTR) {
                return -1; //  ECHILD
            }
        } else {
            siginfo_t info;
            memset (&info, 0, sizeof info);
            int rc = waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT);
            if (rc == 0 && info.si_pid == pid) {
                return 0; //  invariant 3: still a zombie
            }
            if (rc < 0 && errno != EINTR) {
                return -1; //  ECHILD
            }
        }
        if (proc_now_ms () >= deadline_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        proc_backoff (&backoff_ms, PROC_POLL_MS_MAX, deadline_ms);
    }
}

//  Ports and trees ---------------------------------------------------------------

//  The lowest port of the kernel's ephemeral range (the local ports it
//  gives connect() and bind to port 0), PROC_EPHEMERAL_LOW_DEFAULT when
//  it cannot be read.
static int
s_ephemeral_low (void)
{
    int low = PROC_EPHEMERAL_LOW_DEFAULT;
    FILE *file = fopen ("/proc/sys/net/ipv4/ip_local_port_range", "re");
    if (file) {
        int high = 0;
        if (fscanf (file, "%d %d", &low, &high) != 2 || low < 1 || low > 65535) {
            low = PROC_EPHEMERAL_LOW_DEFAULT;
        }
        fclose (file);
    }
    return low;
}

//  Binds a TCP socket to 127.0.0.1:port (0: a port the kernel picks) and
//  closes it: the port bound, or -1 when it could not be.
static int
s_bind_port (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons ((uint16_t) port),
                                  .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t address_size = sizeof address;
    int bound = -1;
    if (bind (fd, (struct sockaddr *) &address, sizeof address) == 0
        && getsockname (fd, (struct sockaddr *) &address, &address_size) == 0) {
        bound = ntohs (address.sin_port);
    }
    close (fd);
    return bound;
}

int
proc_free_port (void)
{
    int high = s_ephemeral_low () - 1;
    if (high - PROC_PORT_LOW + 1 >= PROC_PORT_RANGE_MIN) {
        for (int attempt = 0; attempt < PROC_PORT_ATTEMPTS_MAX; attempt++) {
            uint32_t draw = 0;
            if (getrandom (&draw, sizeof draw, 0) != (ssize_t) sizeof draw) {
                break;
            }
            int port = PROC_PORT_LOW + (int) (draw % (uint32_t) (high - PROC_PORT_LOW + 1));
            if (s_bind_port (port) == port) {
                return port;
            }
        }
    }
    return s_bind_port (0); //  no room below the ephemeral range: the kernel's choice
}

static int s_tree_error; //  errno of the first entry nftw could not remove

static int
s_remove_entry (const char *path, const struct stat *stat_p, int type, struct FTW *ftw)
{
    (void) stat_p;
    (void) type;
    (void) ftw;
    if (remove (path) != 0 && errno != ENOENT && s_tree_error == 0) {
        s_tree_error = errno;
    }
    return 0; //  go on: remove as much as possible
}

int
proc_remove_tree (const char *path)
{
    assert (path);
    if (access (path, F_OK) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock (&lock);
    s_tree_error = 0;
    int rc = nftw (path, s_remove_entry, PROC_TREE_FDS_MAX, FTW_DEPTH | FTW_PHYS);
    int error = rc != 0 ? errno : s_tree_error;
    pthread_mutex_unlock (&lock);
    if (rc != 0 || error != 0) {
        errno = error;
        return -1;
    }
    return 0;
}
