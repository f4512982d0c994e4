/*  test_rebalance_kit.h: the cluster, the load and the closing checks of
    the tests that change the ring of a running cluster (test_rebalance.c,
    test_rebalance_load.c, test_rebalance_fence.c, test_rebalance_repair.c,
    test_rebalance_failover.c, test_migrate_pending.c; docs/rebalance.md,
    docs/testing.md).

    The load is the test process itself, through one router: batches of
    transfers between accounts 1..count of one tag, half of them between
    two accounts on the same shard and half across shards (by the ring
    given with rbk_load_ring, the one the change starts from), some of
    whose accounts carry limit flags (rbk_account_flags) so that business
    failures (exceeds_credits, exceeds_debits) happen and are burned.
    Every record keeps its first definite outcome: ok (or exists: an
    earlier attempt applied it) with its timestamp, or the business
    failure. A record whose outcome is open (a timeout, outcome_unknown,
    frozen past the client's deadline, a killed router) is sent again,
    with the same id and fields, in a later batch until it is definite:
    retries of unknown outcomes with the same ids.

    rbk_check_all ends every run: the open outcomes settled; exactly once
    over every id (lookup_transfers finds every applied id with its fields
    and original timestamp, and no failed one); a replay of every id
    answers its original outcome (exists with the original timestamp, or
    the same failure) and changes nothing; and the conservation check of
    invariant 1 in its strong sense (tk_check_conservation_also: the quiet
    wait covers the shards the change removed too; every balance equals
    the model, nothing pending or reserved, histories complete).

    rbk_cluster_start sets up the cluster these tests change: shards
    s1..s4, where the ring R0 (epoch 1) names s1..s3 and R1 (epoch 2, what
    `rebalance plan --add s4` writes) adds s4; every shard starts on R0
    (s4 owns nothing there), and one router, on R0, learns newer rings
    from the shards.
*/
#ifndef RL_TEST_REBALANCE_KIT_H
#define RL_TEST_REBALANCE_KIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"
#include "routerkit.h"
#include "testkit.h"

#define RBK_OPEN       UINT32_MAX //  outcome not known yet
#define RBK_BATCH      24         //  records a batch (half of them may be open ones resent)
#define RBK_CALL_MS    1500       //  one attempt of a batch through the router
#define RBK_ATTEMPTS   3          //  attempts of a batch before its open records wait
#define RBK_SETTLE_MS  30000      //  open outcomes become definite within this
#define RBK_REPLAY_MAX 128        //  ids a replay call

typedef struct {
    rl_transfer_t t;
    uint32_t result;    //  RL_OK (ok or exists), a business failure, or RBK_OPEN
    uint64_t timestamp; //  of the applied record (RL_OK)
} rbk_sent_t;

typedef struct {
    rl_client_t *client; //  through the router (not owned)
    uint64_t tag;
    uint32_t ledger;
    size_t accounts; //  accounts 1..accounts
    tk_model_t model;
    rbk_sent_t *sent;
    size_t count, max;
    size_t *open; //  indexes of the sent records whose outcome is open
    size_t open_count;
    uint64_t rng;
    int call_ms;  //  one attempt of a batch (RBK_CALL_MS unless set)
    int attempts; //  attempts of a batch before its open records wait (RBK_ATTEMPTS)
    int owner[TK_ACCOUNTS_MAX + 1]; //  shard index of each account in the pairing ring
    //  What the load did, for the report and the assertions of the mix.
    uint64_t same_shard, cross_shard; //  new records by pair
    uint64_t failed;                  //  records whose outcome is a business failure
    uint64_t resent;                  //  records sent again while open
} rbk_load_t;

//  Account n's flags: every fifth may not be debited beyond its credits,
//  every seventh (not fifth) not credited beyond its debits, the rest free.
uint16_t rbk_account_flags (uint64_t n);

//  A load of at most `max` records over accounts 1..accounts (<=
//  TK_ACCOUNTS_MAX) of `tag` on `ledger`, through `client`.
void rbk_load_init (rbk_load_t *self, rl_client_t *client, uint64_t tag, uint32_t ledger,
                    size_t accounts, size_t max, uint64_t seed);
void rbk_load_destroy (rbk_load_t *self);
//  Creates accounts 1..accounts with their flags; each must be ok.
void rbk_create_accounts (rbk_load_t *self);
//  The ring the same-shard / cross-shard pairing follows.
void rbk_load_ring (rbk_load_t *self, const ring_t *ring);
void rbk_load_ring_file (rbk_load_t *self, const char *path);
//  One batch: open records first (same ids), then new ones.
void rbk_load_once (rbk_load_t *self);
//  Sends the open records again until none is open (bounded: fails).
void rbk_settle (rbk_load_t *self);
//  The closing checks above (settles first). `removed`: endpoints of the
//  shards the change removed (their two-phase state must be quiet too).
//  `name` goes into the report line.
void rbk_check_all (rbk_load_t *self, const char *name, const char *const *removed,
                    size_t removed_count, uint64_t ok_min);

//  Spawns tools/rebalance with args (NULL-terminated, without the program)
//  and RL_FAILPOINTS=failpoints (NULL: none), its log named "rebalance"
//  in the harness. Its pid (asserted).
pid_t rbk_tool_spawn (harness_t *h, const char *failpoints, const char *const *args);
//  The same with one more environment entry ("NAME=VALUE"; NULL: none).
pid_t rbk_tool_spawn_env (harness_t *h, const char *failpoints, const char *extra_env,
                          const char *const *args);
//  Waits for the process `name` (pid) to end: its exit code, -signal when
//  killed; fails with its log when it runs past max_ms.
int rbk_tool_wait (harness_t *h, const char *name, pid_t pid, int max_ms);

#define RBK_SHARDS 4 //  s1..s4

typedef struct {
    harness_t *h;
    tk_shard_t shards[RBK_SHARDS];
    rk_router_t router;  //  router1, on R0, refreshing its ring every 200 ms
    rl_client_t *client; //  through the router
    char r0[512];        //  R0: s1..s3, epoch 1
    char r1[512];        //  R1: R0 + s4 (weight 1), epoch 2
    char cert[512];      //  the tester's secret certificate (`rebalance --cert`)
} rbk_cluster_t;

//  A new harness `name` and the cluster above, its shards with `durability`.
void rbk_cluster_start (rbk_cluster_t *self, const char *name, const char *durability);
//  Called for shard `index` of a cluster being started, once its endpoint
//  and ring file are set and before it starts: it may start processes of
//  its own (a standby) and give the shard extra arguments (its args).
typedef void (rbk_shard_hook_fn) (rbk_cluster_t *cluster, size_t index, void *arg);
//  rbk_cluster_start with `hook` (NULL: none) called before each shard starts.
void rbk_cluster_start_with (rbk_cluster_t *self, const char *name, const char *durability,
                             rbk_shard_hook_fn *hook, void *arg);
//  Stops what runs (SIGTERM) and destroys the harness.
void rbk_cluster_stop (rbk_cluster_t *self);
//  `name` in the harness's directory, into out.
char *rbk_path (harness_t *h, const char *name, char *out, size_t size);
//  Creates accounts 1..count of `tag` on `ledger` without flags; each must be ok.
void rbk_create_plain_accounts (rl_client_t *client, uint64_t tag, uint32_t ledger, size_t count);

//  A fail-over (docs/replication.md) ------------------------------------------

#define RBK_RLCTL_WAIT_MS 60000 //  rlctl promote ends within this

//  For a hook of rbk_cluster_start_with, before shard `index` starts: starts
//  `standby` (--standby-of the shard, durability sync, its data beside the
//  harness's) and gives the shard --standby and --repl-timeout-ms
//  repl_timeout_ms (a string that outlives the shard's start).
void rbk_standby_start (rbk_cluster_t *cluster, size_t index, tk_shard_t *standby,
                        const char *repl_timeout_ms);
//  Waits until the primary at `endpoint` streams to its standby.
void rbk_wait_streaming (const char *endpoint);
//  `rlctl --connect <shard via> ARGS...` (NULL-terminated) as the tester
//  (an admin), its output into <harness>/<log>.log: its exit code
//  (-signal), its output in *out_p (malloc'd). rbk_rlctl_promote: the
//  command `promote SHARD STANDBY`.
int rbk_rlctl (rbk_cluster_t *cluster, size_t via, const char *log, char **out_p, ...);
#define rbk_rlctl_promote(cluster, via, shard, standby, out_p)                                     \
    rbk_rlctl ((cluster), (via), "rlctl-promote", (out_p), "promote", (shard), (standby),          \
               (const char *) NULL)

#endif
