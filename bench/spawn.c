/*  spawn.c: the shard a benchmark starts for itself (see spawn.h). Forking,
    exec, waiting, the port and removing a tree are common/proc.c's, the
    core the test harness shares. */
#include "spawn.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "keys.h"
#include "proc.h"

#define S_STATUS_POLL_MS 200 //  one status attempt while waiting for the start

int
spawn_keys_make (const char *keys_dir, const char *name, zcert_t **cert_p)
{
    assert (keys_dir && name && cert_p);
    char err[768];
    char shard_key[RL_KEY_TEXT_SIZE];
    char secret[PATH_MAX];
    snprintf (secret, sizeof secret, "%s/private/bench-client.key_secret", keys_dir);
    if (rl_keygen (keys_dir, "shard", name, shard_key, err, sizeof err) != 0
        || rl_keygen (keys_dir, "client", "bench-client", NULL, err, sizeof err) != 0
        || !(*cert_p = rl_cert_load (secret, err, sizeof err))) {
        fprintf (stderr, "spawn: keys: %s\n", err);
        return -1;
    }
    rl_client_set_curve (*cert_p, shard_key);
    return 0;
}

int
spawn_shard_start (spawn_shard_t *self, const char *shard_bin, const char *name,
                   const char *data_dir, const char *durability, const char *keys_dir,
                   const char *log_path, int ready_timeout_ms, volatile sig_atomic_t *interrupted)
{
    assert (self && shard_bin && name && data_dir && durability && log_path);
    self->pid = 0;
    int port = proc_free_port ();
    if (port <= 0) {
        fprintf (stderr, "spawn: no free port on 127.0.0.1\n");
        return -1;
    }
    snprintf (self->endpoint, sizeof (self->endpoint), "tcp://127.0.0.1:%d", port);
    char *const argv[] = {(char *) shard_bin,  "--name",
                          (char *) name,       "--bind",
                          self->endpoint,      "--data",
                          (char *) data_dir,   "--durability",
                          (char *) durability, keys_dir ? "--keys" : "--insecure",
                          (char *) keys_dir,   NULL};
    fflush (stdout);
    fflush (stderr);
    proc_spawn_t spawn = {.argv = argv, .out_path = NULL, .err_path = log_path};
    pid_t pid = proc_spawn (&spawn);
    if (pid < 0) {
        fprintf (stderr, "spawn: %s: %s\n", shard_bin, strerror (errno));
        return -1;
    }
    self->pid = pid;
    rl_client_t *client = rl_client_new (self->endpoint);
    int64_t deadline_ms = proc_now_ms () + ready_timeout_ms;
    int rc = -1;
    while (client && proc_now_ms () < deadline_ms && !(interrupted && *interrupted)) {
        if (proc_wait (pid, 0, true, NULL) == 0) {
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
    if (proc_wait (self->pid, stop_timeout_ms, true, NULL) != 0 && errno == ETIMEDOUT) {
        kill (self->pid, SIGKILL);
        proc_wait (self->pid, INT32_MAX, true, NULL);
    }
    self->pid = 0;
}
