/*  spawn.c: the shard a benchmark starts for itself (see spawn.h). */
#define _GNU_SOURCE //  nftw
#include "spawn.h"

#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchkit.h"
#include "client.h"

#define S_STATUS_POLL_MS 200 //  one status attempt while waiting for the start
#define S_STOP_POLL_NS   10000000L
#define S_TREE_FDS_MAX   32 //  nftw: open directories at once

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
spawn_shard_start (spawn_shard_t *self, const char *shard_bin, const char *name,
                   const char *data_dir, const char *durability, const char *log_path,
                   int ready_timeout_ms, volatile sig_atomic_t *interrupted)
{
    assert (self && shard_bin && name && data_dir && durability && log_path);
    self->pid = 0;
    int port = bench_free_port ();
    if (port <= 0) {
        fprintf (stderr, "spawn: no free port on 127.0.0.1\n");
        return -1;
    }
    snprintf (self->endpoint, sizeof (self->endpoint), "tcp://127.0.0.1:%d", port);
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid < 0) {
        fprintf (stderr, "spawn: fork: %s\n", strerror (errno));
        return -1;
    }
    if (pid == 0) {
        if (!freopen (log_path, "a", stderr) || !freopen ("/dev/null", "w", stdout)) {
            _exit (127);
        }
        execl (shard_bin, shard_bin, "--name", name, "--bind", self->endpoint, "--data", data_dir,
               "--durability", durability, (char *) NULL);
        _exit (127);
    }
    self->pid = pid;
    rl_client_t *client = rl_client_new (self->endpoint);
    int64_t deadline_ms = s_now_ms () + ready_timeout_ms;
    int rc = -1;
    while (client && s_now_ms () < deadline_ms && !(interrupted && *interrupted)) {
        if (waitpid (pid, NULL, WNOHANG) == pid) {
            self->pid = 0; //  it exited: see its log
            break;
        }
        rl_status_rec_t status;
        if (rl_client_status (client, &status, S_STATUS_POLL_MS) == 0) {
            rc = 0;
            break;
        }
    }
    rl_client_destroy (&client);
    if (rc != 0) {
        fprintf (stderr, "spawn: the shard did not start (log: %s)\n", log_path);
        spawn_shard_stop (self, 0);
    }
    return rc;
}

void
spawn_shard_stop (spawn_shard_t *self, int stop_timeout_ms)
{
    assert (self);
    if (self->pid <= 0) {
        return;
    }
    kill (self->pid, SIGTERM);
    int64_t deadline_ms = s_now_ms () + stop_timeout_ms;
    while (waitpid (self->pid, NULL, WNOHANG) == 0) {
        if (s_now_ms () >= deadline_ms) {
            kill (self->pid, SIGKILL);
            waitpid (self->pid, NULL, 0);
            break;
        }
        struct timespec pause = {0, S_STOP_POLL_NS};
        nanosleep (&pause, NULL);
    }
    self->pid = 0;
}

static int
s_remove_entry (const char *path, const struct stat *stat_p, int type, struct FTW *ftw)
{
    (void) stat_p;
    (void) type;
    (void) ftw;
    return remove (path) == 0 || errno == ENOENT ? 0 : -1;
}

int
spawn_remove_tree (const char *path)
{
    assert (path);
    if (access (path, F_OK) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    return nftw (path, s_remove_entry, S_TREE_FDS_MAX, FTW_DEPTH | FTW_PHYS);
}
