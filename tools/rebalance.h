/*  rebalance.h: the pieces of the `rebalance` tool shared by its files
    (docs/rebalance.md): the plan of a live rebalancing as a list of steps,
    its state directory, and the commands that drive a running cluster.

    rebalance.c         init, plan (rings only), and the command dispatch
    rebalance_live.c    the load model of plan --live and suggest (rebalance_live.h)
    rebalance_live_cmd.c  plan --live and suggest: the counters from the cluster
    rebalance_state.c   the steps of a change and their rings; the state
                        directory (its files, their atomic writes, their
                        parser, the lock of the running apply)
    rebalance_apply.c   apply, status, check, fix, abort

    THE STATE DIRECTORY
        ring.K      the ring of step K (K = 0: the ring the change starts
                    from), at epoch base + K, text form (docs/ring.md)
        rollback.ring  after step K rolled back: ring.(K-1) at epoch
                    base + K + 1
        state       the plan and the state of every step (below); written
                    ahead of every message that depends on it
        lock        held (flock) by the apply that runs
    The ring files keep the epochs and endpoints the plan was derived with.
    A fail-over during the change (rlctl promote: docs/rebalance.md, "A
    fail-over during a change") is kept in the state file alone: the
    epochs the plan moved up by (failover_shift) and each promoted shard's
    new endpoint; rb_plan_load applies them to the rings it reads, so in
    memory rings[k] is always the ring step k loads.
    Every file is written to NAME.tmp, fsynced, renamed and the directory
    fsynced, so a crash leaves the old file or the new one. The state file
    is written last when the directory is made: a directory without it
    holds no plan.
*/
#ifndef RL_REBALANCE_H
#define RL_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "rl_limits.h"

#define RB_EXIT_OK       0
#define RB_EXIT_BAD_FILE 1 //  a ring or state file is bad or cannot be written
#define RB_EXIT_USAGE    2 //  bad option, or a request the state refuses
#define RB_EXIT_CLUSTER  3 //  the cluster did not answer or refused: rerun later
#define RB_EXIT_DIRTY    4 //  check: inconsistent state found
#define RB_EXIT_TARGET   5 //  suggest: no ring found within the target (the best is shown)
#define RB_EXIT_FENCED                                                                             \
    6 //  another plan holds a shard's lease, or a shard serves a ring
      //  this plan does not expect at this step: nothing more moved

#define RB_STEPS_MAX      65535       //  steps of one change (the low 20 bits of an id number them)
#define RB_STATE_SIZE_MAX (64u << 20) //  bytes of a state file
#define RB_PATH_SIZE_MAX  4096
#define RB_STATE_VERSION  1
#define RB_FREEZE_MS_DEF  1000   //  --freeze-max-ms default
#define RB_FREEZE_MS_MAX  600000 //  what the shard accepts
#define RB_RETRIES_DEF    20     //  --max-retries default: freezes that did not drain, per step
#define RB_TIMEOUT_MS_DEF 5000   //  --timeout-ms default: one request
#define RB_FAILOVER_S_MAX 86400  //  --failover-wait-s: a day
#define RB_ENTRIES_DEF    1024   //  entries a chunk asked for
#define RB_ENTRIES_MAX    8190
#define RB_MOVED_MAX      64 //  shards of one change that fail-overs moved

//  A step's state in the tool. Written ahead: the state names what may
//  have been sent, so a restart knows what to resend.
typedef enum {
    RB_PENDING = 0,    //  nothing sent for the step
    RB_COPYING = 1,    //  migrate_begin may have been sent: copy, catch up
    RB_FROZEN = 2,     //  migrate_freeze may have been sent: drain, final round
    RB_HANDOVER = 3,   //  the final chunk is in the target: the step's ring
                       //  may be anywhere; it rolls forward from here, unless
                       //  the target refuses its commit (then RB_ROLLED_BACK)
    RB_DONE = 4,       //  both commits done, every shard serves the step's ring
    RB_ROLLED_BACK = 5 //  the target refused its commit: the step is undone on
                       //  both shards and every shard is brought to
                       //  rollback.ring (the ring before the step, at the
                       //  epoch after it); the change ends there
} rb_step_state_t;

typedef struct {
    uint32_t state; //  rb_step_state_t
    uint64_t migration_id;
    char source[RL_SHARD_NAME_SIZE_MAX];
    char target[RL_SHARD_NAME_SIZE_MAX];
    uint64_t start, end; //  the arc (start, end]
    //  progress (what the tool saw; the target's stored cursor is the truth)
    uint64_t chunks, records, accounts, bytes;
    uint64_t rounds;    //  copy rounds completed
    uint64_t lag;       //  records of the last complete round (what catching up still copies)
    uint64_t retries;   //  freezes that did not drain in time
    uint64_t frozen_at; //  wall clock ms of the freeze in progress, 0 if none
    uint64_t started;   //  wall clock ms of the first begin, 0 if none
    uint64_t finished;  //  wall clock ms of the handover, 0 if none
} rb_step_t;

typedef struct {
    uint32_t version;
    uint64_t plan_id; //  rb_plan_id_of (ring 0, last ring); step k's migration id: plan_id + k
    uint32_t run;     //  this directory's run (1..2^20-1, random): the low bits of its lease
    uint64_t base_epoch;
    uint32_t freeze_max_ms;
    bool aborted;
    size_t step_count;
    rb_step_t *steps; //  [step_count]
    ring_t **rings;   //  [step_count + 1]: rings[k] at base_epoch + k
    ring_t *rollback; //  after step k (1-based) rolled back: rings[k - 1] at base + k + 1
    //  Fail-overs during the change (rb_plan_failover): base_epoch above
    //  includes shift; the ring files are at base_epoch - shift + k.
    uint64_t shift;
    size_t moved_count;
    struct {
        char name[RL_SHARD_NAME_SIZE_MAX];
        char endpoint[RL_ENDPOINT_SIZE_MAX];
    } moved[RB_MOVED_MAX]; //  promoted shards: their endpoint now
    char dir[RB_PATH_SIZE_MAX];
} rb_plan_t;

//  Derives the steps and rings of the change from `current` to `planned`
//  (every arc whose owner changes, adjacent arcs of one pair merged: one
//  migration and one epoch each; the last ring is `planned` at base + n).
//  0, or RB_EXIT_USAGE with a message in err (no change, a ring that
//  cannot hold a step, ...).
int rb_plan_derive (const ring_t *current, const ring_t *planned, uint32_t freeze_max_ms,
                    rb_plan_t *plan, char *err, size_t err_size);
void rb_plan_free (rb_plan_t *plan);

//  The plan id of the change from `first` (ring 0) to `last` (the last
//  ring, at its epoch base + n): XXH3 of both rings' encodings with the low
//  RL_MIGRATE_STEP_BITS cleared (never 0). So the same two rings always
//  give the same plan, step ids and step rings: a lost state directory is
//  rebuilt from them (rebalance recover). 0 only when memory ran out.
uint64_t rb_plan_id_of (const ring_t *first, const ring_t *last);
//  Makes DIR (if needed) and writes every ring, then the state file. The
//  ring files hold the rings as derived (rb_plan_derive): a plan that
//  follows fail-overs (shift, moved: rb_plan_failover) passes them as
//  `derived` (step_count + 1 rings), any other plan NULL (its own rings).
int rb_plan_save_new (rb_plan_t *plan, ring_t *const *derived, const char *dir, char *err,
                      size_t err_size);
#define RB_NO_PLAN 100 //  rb_plan_load: the directory holds no state file
//  Reads DIR: 0, RB_NO_PLAN when DIR holds no state file, or RB_EXIT_BAD_FILE
//  (err says which file and line).
int rb_plan_load (rb_plan_t *plan, const char *dir, char *err, size_t err_size);
//  Writes the state file (atomic). 0 or -1 (err).
int rb_state_save (const rb_plan_t *plan, char *err, size_t err_size);
//  Makes plan->rollback for the step at `index` (0-based) and writes it to
//  DIR/rollback.ring (atomic). 0 or -1 (err).
int rb_rollback_save (rb_plan_t *plan, size_t index, char *err, size_t err_size);

//  A fail-over during the change: shard `name` serves at `endpoint` now,
//  and a promotion's ring took the epochs up by `shift` (0 for the second
//  shard of one ring that moved two): every ring
//  of the plan gets the endpoint and its epoch + shift, base_epoch + shift.
//  Memory only: the caller saves the state. 0, or -1 (err: the name is in
//  no ring, the endpoint is not valid, too many moved shards, the epochs
//  would overflow, the current step was rolled back), the plan unchanged.
int rb_plan_failover (rb_plan_t *plan, const char *name, const char *endpoint, uint64_t shift,
                      char *err, size_t err_size);
//  The lock of a running apply: a descriptor (>= 0) held until closed;
//  -1 when another process holds it (err says so), -2 on an error.
int rb_lock (const char *dir, bool wait, char *err, size_t err_size);
//  True when an apply holds DIR's lock now.
bool rb_locked_by_other (const char *dir);

const char *rb_step_state_name (uint32_t state);
uint64_t rb_wall_ms (void);
//  The first step not done (step_count when all are).
size_t rb_plan_current (const rb_plan_t *plan);

//  Commands (argv[1] is the command's name).
int rb_cmd_apply (int argc, char **argv);
int rb_cmd_status (int argc, char **argv);
int rb_cmd_check (int argc, char **argv);
int rb_cmd_fix (int argc, char **argv);
int rb_cmd_abort (int argc, char **argv);
int rb_cmd_recover (int argc, char **argv);
int rb_cmd_plan_live (int argc, char **argv); //  rebalance_live_cmd.c
int rb_cmd_suggest (int argc, char **argv);   //  rebalance_live_cmd.c

//  Applies one change of the command line to ring: option is --add
//  (NAME=ENDPOINT[@WEIGHT]), --remove (NAME) or --reweight (NAME=WEIGHT).
//  0, or RB_EXIT_USAGE after printing why (rebalance.c).
int rb_ring_change (ring_t *ring, const char *option, const char *value);

#endif
