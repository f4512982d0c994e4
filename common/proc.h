/*  proc.h: child processes, the one core under the test harness
    (tests/harness.c) and the benchmarks' spawner (bench/spawn.c).

    proc_spawn forks and execs a program with stdin from /dev/null and
    stdout and stderr appended to files; exec's failure comes back as the
    errno of a -1, never as a child that dies later with a line in a log.
    proc_wait polls for a child's exit, and can leave it unreaped (the
    zombie pins its pid and process group id while the caller cleans up).
    proc_free_port and proc_remove_tree serve the same two callers.

    It needs nothing from the rest of common/ (its own library, rlproc), so
    the harness's own tests link it alone.
*/
#ifndef RL_PROC_H
#define RL_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_POLL_MS_MIN 1  //  first pause of proc_wait and proc_backoff
#define PROC_POLL_MS_MAX 50 //  longest pause

#define PROC_PORT_LOW              20000 //  proc_free_port draws from here ...
#define PROC_EPHEMERAL_LOW_DEFAULT 32768 //  ... to below the ephemeral range (Linux's default)
#define PROC_PORT_RANGE_MIN        2000  //  fewer ports below it: the kernel's choice
#define PROC_PORT_ATTEMPTS_MAX     64    //  draws tried before that too

typedef struct {
    char *const *argv;    //  argv[0]: a path, or a name looked up in PATH
    char *const *envp;    //  NULL: this process's environment
    const char *out_path; //  stdout, appended (created 0644); NULL: /dev/null
    const char *err_path; //  stderr, likewise; the same path as out_path: one file
    bool own_group;       //  the child leads a process group of its own
    bool die_with_parent; //  SIGKILL when the thread that forked it ends
} proc_spawn_t;

//  Starts the program. The pid once exec succeeded; -1 with errno set
//  otherwise (the exec's own errno, ENOENT for a bad path; or that of the
//  open, pipe or fork that failed). A child set to die with its parent and
//  whose parent died before it could arrange that exits 127 at once.
pid_t proc_spawn (const proc_spawn_t *spawn);

//  Waits up to timeout_ms (0: a look) for the child to exit. reap: reaps it
//  and sets *wstatus (when not NULL); otherwise leaves it a zombie
//  (WNOWAIT). 0 when it exited; -1 with errno ETIMEDOUT when it had not by
//  the deadline, or ECHILD when it is not a child of ours (reaped already).
int proc_wait (pid_t pid, int timeout_ms, bool reap, int *wstatus);

//  A free TCP port on 127.0.0.1, or -1: drawn at random from
//  PROC_PORT_LOW up to just below the kernel's ephemeral range
//  (/proc/sys/net/ipv4/ip_local_port_range), and tried with a bind. Below
//  that range no connect() takes the port as its local port while its
//  program is down: a process reconnecting to a port nobody listens on
//  can otherwise be given that very port and connect to itself (TCP
//  simultaneous open), and a restart on the port then fails "address
//  already in use". When the range starts too low (fewer than
//  PROC_PORT_RANGE_MIN ports below it), the kernel picks one (bind to port
//  0). Another process may take the port before the child binds it:
//  callers check that the program they start really serves it.
int proc_free_port (void);

//  Removes a directory tree without a shell; a missing one is fine. Goes on
//  past an entry it cannot remove: 0, or -1 with the errno of the first
//  failure. Safe from several threads: calls run one at a time.
int proc_remove_tree (const char *path);

//  CLOCK_MONOTONIC in milliseconds.
int64_t proc_now_ms (void);
//  Sleeps the smaller of *backoff_ms and what is left until deadline_ms,
//  then doubles *backoff_ms up to backoff_max_ms.
void proc_backoff (int *backoff_ms, int backoff_max_ms, int64_t deadline_ms);

#endif
