/*  routerkit.h: a cluster of real shards behind real routers on 127.0.0.1,
    for the router's integration tests (test_router_routing.c,
    test_router_faults.c, test_router_input.c, test_router_reply_bound.c).

    - rk_router_*: start a router process on a free port through the
      harness and wait until it answers status; stop it with SIGTERM, and
      fail the test unless it exits 0 (so a sanitizer report fails it).
    - rk_cluster_start: up to RK_SHARDS_MAX shards serving one ring file
      (epoch 1), and router 0 on it, with ctx->client talking to router 0.
    - Accounts 1..RK_ACCOUNTS of tag RK_TAG, and batches and lookups over
      them that know which shard owns what (rk_owner, rk_partner).
    - rk_settle: retries a batch with the same ids until every record is
      definite, and applies it to the model.
*/
#ifndef RL_ROUTERKIT_H
#define RL_ROUTERKIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"
#include "testkit.h"

#define RK_TAG         0x524f55544552ull //  "ROUTER"
#define RK_LEDGER      978
#define RK_ACCOUNTS    30
#define RK_SHARDS_MAX  3
#define RK_ROUTERS_MAX 2
#define RK_DEADLINE_MS 400 //  router deadline in the deadline tests
//  With it, the order of timeouts holds: the shards' prepare timeout below
//  their deadline, below the router's.
#define RK_SHARD_DEADLINE_MS   300
#define RK_SHARD_DEADLINE_TEXT "300" //  the shards' --deadline-ms: the same bound
#define RK_PREPARE_MS          "200"
#define RK_RETRY_ATTEMPTS      30
#define RK_RLCTL_TIMEOUT       "10000" //  rk_rlctl's --timeout-ms
#define RK_RLCTL_WAIT_MS       30000   //  and how long it may take in all

//  A router process.
typedef struct {
    char name[32];
    int port;
    char endpoint[64];
    char ring_file[512]; //  --ring; empty: --shard shards
    char shards[512];
    char shard_key_name[32]; //  with --shard: the shard whose key --shard-key gives
    long deadline_ms;        //  0: default
    long shard_deadline_ms;  //  0: default
    long refresh_ms;         //  0: default
    char failpoints[256];    //  RL_FAILPOINTS of the process; empty: none
    char *args[8];           //  extra arguments, NULL-terminated
    char *env[4];            //  extra environment ("K=V"), NULL-terminated
    pid_t pid;
} rk_router_t;

//  A cluster: shards with one ring file, and routers. One per test case
//  (rk_setup / rk_teardown as cmocka setup and teardown).
typedef struct {
    harness_t *h;
    tk_shard_t shards[RK_SHARDS_MAX];
    size_t shard_count;
    rk_router_t routers[RK_ROUTERS_MAX];
    ring_t *ring; //  the ring the shards serve (the newest loaded)
    char ring_file[512];
    rl_client_t *client; //  through router 0
    rl_account_t accounts[RK_ACCOUNTS];
    tk_model_t model;
} rk_ctx_t;

void rk_router_init (rk_router_t *r, const char *name); //  a free port, no process yet
pid_t rk_router_start (harness_t *h, rk_router_t *r);   //  pid, or -1 (log dumped)
void rk_router_stop (harness_t *h, rk_router_t *r);     //  SIGTERM; must exit 0

int rk_setup (void **state);
int rk_teardown (void **state);

//  Writes a ring of the first `count` shards at `epoch` to `path`.
ring_t *rk_ring_write (rk_ctx_t *ctx, size_t count, uint64_t epoch, const char *path);
//  Starts `shards` shards serving a ring (epoch 1) of the first `ring_shards`
//  of them, and router 0 on that ring file.
void rk_cluster_start (rk_ctx_t *ctx, size_t shards, size_t ring_shards, long deadline_ms,
                       long refresh_ms);
void rk_routers_stop (rk_ctx_t *ctx);

int rk_owner (const ring_t *ring, rl_id_t id); //  shard index of an account
//  Account n (1-based): every fifth one may not go negative; the others may.
uint16_t rk_account_flags (uint64_t n);
void rk_create_accounts (rk_ctx_t *ctx); //  accounts 1..RK_ACCOUNTS, all must be ok
//  An account other than n on the same shard as n (or on another one), or 0.
uint64_t rk_partner (const ring_t *ring, uint64_t n, bool same_shard);
//  One same-shard transfer from every operator account: ids base + n.
size_t rk_same_shard_batch (const ring_t *ring, uint64_t base, rl_transfer_t *out);
int rk_shard_of_transfer (const ring_t *ring, const rl_transfer_t *t);
rl_status_rec_t rk_status_of (const char *endpoint);
//  Runs rlctl --json against router `router` with the tester's key, the
//  arguments after `log` up to a NULL; its exit code, and in *out_p (the
//  caller frees it) what it printed, which the harness keeps as LOG.log.
int rk_rlctl (rk_ctx_t *ctx, size_t router, const char *log, char **out_p, ...);
int rk_rlctl_v (rk_ctx_t *ctx, size_t router, const char *log, char **out_p, va_list args);
//  Retries `batch` (same ids) until every record is definite, and applies
//  to the model each record of `apply` (a flag per record) that is ok or
//  exists.
void rk_settle (rk_ctx_t *ctx, rl_client_t *client, const rl_transfer_t *batch, size_t count,
                const bool *apply);

#endif
