/*  spawn.h: the shard a benchmark starts for itself (rlbench --spawn-shard,
    shard_bench).

    spawn_shard_start starts a shard on a free port of 127.0.0.1 (stdout to
    /dev/null, stderr appended to a log file), then waits until it answers
    status; spawn_shard_stop ends it with SIGTERM, and SIGKILL when it does
    not exit in time. Starting, waiting, the port and removing a data
    directory (proc_remove_tree) are common/proc.h's, the core the test
    harness shares.

    INVARIANTS
    1. After spawn_shard_start fails or spawn_shard_stop returns, no shard
       of ours is left running (pid is 0).
    2. A shard that exits while starting is reaped at once and reported.

    LIMITS
    Start: ready_timeout_ms; stop: stop_timeout_ms, then SIGKILL.
    (The tests start their processes through tests/harness.h, on the same
    core, which also guarantees that none outlives a failed test.)
*/
#ifndef RL_SPAWN_H
#define RL_SPAWN_H

#include <limits.h>
#include <signal.h>
#include <sys/types.h>

#include <czmq.h>

#define SPAWN_ENDPOINT_SIZE 64

typedef struct {
    pid_t pid; //  0: not running
    char endpoint[SPAWN_ENDPOINT_SIZE];
} spawn_shard_t;

//  Fresh CURVE keys for a spawned shard NAME and its benchmark client in
//  KEYS_DIR (docs/security.md), and the client library set to use them
//  (rl_client_set_curve). *cert_p: the client's keypair, to destroy after
//  the last client. 0, or -1 after printing why.
int spawn_keys_make (const char *keys_dir, const char *name, zcert_t **cert_p);

//  Starts shard_bin --name NAME --bind ENDPOINT --data DATA_DIR --durability
//  DURABILITY (--keys KEYS_DIR, or --insecure when keys_dir is NULL) and
//  waits (bounded) until it answers status. Gives up early when
//  *interrupted becomes non-zero (NULL: never). 0, or -1 after printing
//  why (the shard is not running).
int spawn_shard_start (spawn_shard_t *self, const char *shard_bin, const char *name,
                       const char *data_dir, const char *durability, const char *keys_dir,
                       const char *log_path, int ready_timeout_ms,
                       volatile sig_atomic_t *interrupted);
//  SIGTERM, then SIGKILL after stop_timeout_ms; reaps it. Safe twice.
void spawn_shard_stop (spawn_shard_t *self, int stop_timeout_ms);

#endif
