/*  replxkit.h: a replicated shard beside a second one, under cross-shard
    and pending transfers, for the crash tests of replication that drive
    both shards themselves (test_replication_crash.c,
    test_replication_warm.c; docs/testing.md).

    The cluster: shard s1, a primary that gets a semi-synchronous standby
    (rx_standby_init), and s2 without one, on one ring file, every process
    with --durability manual-wal and the fast two-phase timers of one
    config file, which also has checkpoints write their accounts one a
    piece. Accounts 1..4 live on s1 and 5..8 on s2 (rx_start finds
    the tag that puts them there). The test is the client: it sends each
    transfer to the shard of its debit account (rx_client_for, by the
    kit's ring), so s1 coordinates the transfers from its accounts to s2's
    and takes part in those from s2's accounts to its own.

    The load is a log of records, each with its kind (plain, pending, the
    post or void of a pending one) and its outcome: unknown until an
    answer is final (ok or a business failure; rx_answered also applies
    what moved money to the model). rx_plain, rx_pending and rx_resolve add
    records; rx_send sends some until each is ok; rx_send_batch and
    rx_recv_batch pipeline a batch whose answer may never come (a process
    killed: the outcomes stay unknown); rx_round sends one round to both
    shards at once (two cross-shard transfers and one of the shard's own, a
    post or a void of an open pending transfer, every other round a new
    pending transfer of RX_LONG_TIMEOUT_S). rx_start seeds the load from
    RL_SEED, or the clock, and prints the seed so that a run can be
    replayed.

    The closing checks, after a crash and its recovery:
    1. rx_settle: exactly-once over every id. Every acknowledged record is
       on its debit shard, no failed one is; every unknown outcome is looked
       up (found: applied) and every record sent again with its id: the
       original answer (`exists` for an ok), or, unknown and not found,
       executed now, once. With `timestamps` set, an acknowledged record
       must also be stored, and answered `exists`, at the timestamp its
       first answer gave.
    2. rx_check_pending: the accounts' pending amounts are those of the
       acknowledged long pending transfers not posted or voided (shorter
       ones must have expired: it waits up to wait_ms for that), the
       posted amounts the model's.
    3. rx_finish: every open pending transfer posted or voided, then
       nothing pending, the strong conservation check by each account's
       shard, the audit and no two-phase alarm on either shard.

    Processes: rx_spawn starts a shard, armed (rx_arm: the failpoints and
    the file they record their hits in) or not, and waits until it answers
    or dies; rx_fail_over, once s1's standby is promoted, loads a ring of
    the next epoch naming it into it and s2 and makes it the primary. The
    harness stops what is left; rx_destroy (or the cmocka teardown
    rx_teardown) frees the kit.
*/
#ifndef RL_REPLXKIT_H
#define RL_REPLXKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"
#include "testkit.h"

#define RX_ACCOUNTS        8    //  1..4 on s1, 5..8 on s2
#define RX_RECORDS_MAX     2048 //  records of the load's log
#define RX_BATCH_MAX       8    //  records of one rx_send or pipelined batch
#define RX_CALL_TIMEOUT_MS 8000
#define RX_LONG_TIMEOUT_S  3600  //  a pending transfer that stays pending for the test
#define RX_REPL_TIMEOUT_MS "400" //  s1's --repl-timeout-ms as a primary

typedef enum { RX_PLAIN, RX_PENDING, RX_POST, RX_VOID } rx_kind_t;

typedef struct {
    rl_transfer_t t;
    rx_kind_t kind;
    size_t pending;     //  RX_POST, RX_VOID: the record of the pending transfer
    uint32_t result;    //  TK_OUTCOME_UNKNOWN until known
    uint64_t timestamp; //  of an ok: its answer's, or the one the settle found
} rx_rec_t;

typedef struct {
    harness_t *h;
    tk_shard_t primary, standby, s2; //  s1's primary and standby, and s2
    ring_t *ring;
    rl_client_t *c1; //  s1: its primary, or the promoted standby
    rl_client_t *c2;
    uint32_t ledger;
    uint64_t tag;
    long checkpoint_transfers; //  of s1 and s2 (0: the default)
    bool timestamps;           //  rx_settle also checks each ok's timestamp
    uint64_t rng;
    uint64_t next_id;
    rx_rec_t recs[RX_RECORDS_MAX];
    size_t count;
    tk_model_t model;
    char config[512];
    char ring_file[480];
    char fp_file[600];     //  where armed processes record their hits
    char fp_env[128];      //  RL_FAILPOINTS=...
    char fp_file_env[700]; //  RL_FAILPOINT_FILE=...
} rx_t;

//  A kit with its own harness (named `name`), nothing started; NULL on failure.
rx_t *rx_new (const char *name);
void rx_destroy (rx_t **self_p);
//  A cmocka teardown: destroys the kit in *state.
int rx_teardown (void **state);
//  Seeds the load (printed as `test`: RL_SEED=n), writes the two-phase
//  config, starts s1 (a primary without a standby) and s2 on a ring of
//  epoch 1, finds the first tag from tag_from that puts accounts 1..4 on
//  s1 and 5..8 on s2, and creates them on `ledger`.
void rx_start (rx_t *self, const char *test, uint32_t ledger, uint64_t tag_from,
               long checkpoint_transfers);
//  What rx_spawn's `armed` sets: RL_FAILPOINTS=failpoints, and their
//  record in file_name under the harness directory (fp_file).
void rx_arm (rx_t *self, const char *failpoints, const char *file_name);
//  Spawns shard, armed or not, and waits until it answers status or dies
//  (an armed point its start may reach). The wait status when it died
//  (its pid then -1), else -1.
int rx_spawn (rx_t *self, tk_shard_t *shard, bool armed);
//  s1's command line: a primary with `standby` (NULL: none), or a standby
//  of `of`.
void rx_s1_args (rx_t *self, tk_shard_t *shard, const tk_shard_t *standby, const tk_shard_t *of);
//  A new standby of s1 in its own directory (dir_name under the harness
//  directory) and port, and the primary's command line naming it; neither
//  is started.
void rx_standby_init (rx_t *self, const char *dir_name);
//  s1's standby, promoted: waits until it serves, loads a ring of the next
//  epoch that gives s1 its endpoint into it and s2, and makes it the
//  primary (c1 its client).
void rx_fail_over (rx_t *self);

int rx_owner (const rx_t *self, rl_id_t id);
//  The client of the shard that owns id (a tk_client_for_fn: self is an rx_t).
rl_client_t *rx_client_for (void *self, rl_id_t id);

//  Records: each returns its index in the log.
size_t rx_plain (rx_t *self, int from, int to); //  from shard `from`'s accounts to `to`'s
size_t rx_pending (rx_t *self, int from, int to, uint32_t timeout_s);
size_t rx_resolve (rx_t *self, size_t p, bool post); //  a post (of part) or a void of record p
//  Whether a post or void of record p is applied (or, open_too, may be).
bool rx_resolved (const rx_t *self, size_t p, bool open_too);
//  A long pending transfer of shard `from`, acknowledged, with no post or
//  void applied or in flight.
bool rx_open_pending (const rx_t *self, int from, size_t *p);
//  What an answer means: ok and business failures are final; anything
//  retryable (busy, aborted, in_progress ...) leaves it unknown.
void rx_answered (rx_t *self, size_t i, uint32_t result, uint64_t timestamp);

//  Sends records [first, first + n) to client until each is ok (busy or a
//  timeout are sent again, same ids: an `exists` then is the first ok).
void rx_send (rx_t *self, rl_client_t *client, size_t first, size_t n);
bool rx_send_batch (rx_t *self, rl_client_t *client, size_t first, size_t n, uint64_t *req);
//  Waits for the answer of a pipelined batch up to wait_ms, or less once
//  the process `armed` (a pid, or -1) is dead: then its outcomes stay
//  unknown.
void rx_recv_batch (rx_t *self, rl_client_t *client, size_t first, size_t n, uint64_t req,
                    pid_t armed, int wait_ms);
//  One round of the load, a batch to each shard at once; `kill` (NULL:
//  none) is SIGKILLed once both are sent; answers as rx_recv_batch.
void rx_round (rx_t *self, unsigned round, pid_t armed, tk_shard_t *kill, int wait_ms);

//  The state status reports at endpoint (UINT32_MAX: no answer), and a
//  bounded wait for one.
uint32_t rx_state (const char *endpoint);
void rx_wait_state (const char *endpoint, uint32_t state, int timeout_ms);
void rx_load_ring (const char *endpoint, const ring_t *ring);
//  Waits until neither shard holds a live attempt or a prepared record.
void rx_quiet (rx_t *self);

void rx_settle (rx_t *self);
void rx_check_pending (rx_t *self, int wait_ms);
void rx_finish (rx_t *self, int pending_wait_ms);

#endif
