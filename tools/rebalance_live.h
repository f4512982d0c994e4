/*  rebalance_live.h: planning a ring change from the load the shards
    measured (docs/rebalance.md, "Planning from live load").

    rebalance_live.c      the model: what each shard of any ring would
                          carry, from the measured arcs and hot accounts
                          (rb_live_predict), the imbalance of a prediction,
                          and the search behind `suggest` (rb_live_suggest).
                          Pure: no clock, no network, so that its tests are
                          deterministic on fabricated counters.
    rebalance_live_cmd.c  `plan --live` and `suggest`: the counters fetched
                          from the cluster (arc_load, hot_accounts), checked
                          against the ring, and the table or JSON.

    THE MODEL
    The unit of load is a transfer per second debiting an account (what
    arc_load and hot_accounts count). A measured arc carries its rate, its
    accounts and its bytes. Under another ring an arc splits where that
    ring has points; each piece goes to the piece's owner with a share of
    the arc in proportion to its length in hash space (load, accounts and
    bytes alike: ids are uniform in hash space, and so is the load between
    accounts that are not hot). A hot account is the exception: its load
    (the lower bound the shard reported) is taken out of its arc and put
    whole on the owner of its own point. A shard's load is the sum of what
    it gets.

    A shard's capacity is its weight in the measured ring (the one the
    cluster serves); a shard new in the other ring has its weight there.
    A reweight moves hash space, not capacity: it is the knob suggest
    turns, so scoring by the new weights would reward giving a busy shard
    a larger weight. Imbalance is the largest load per unit of capacity
    over the mean load per unit of capacity (1.0: perfectly even; 1.0 too
    when nothing was measured); with equal weights, max/mean load.
*/
#ifndef RL_REBALANCE_LIVE_H
#define RL_REBALANCE_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "ring.h"

#define RB_TARGET_DEF        1.10 //  suggest --target default: predicted max/mean load
#define RB_TARGET_MIN        1.0
#define RB_TARGET_MAX        100.0
#define RB_SUGGEST_STEPS_DEF 32 //  suggest --max-steps default: changes tried one after another
#define RB_SUGGEST_STEPS_MAX 256
#define RB_SPARES_MAX        64 //  suggest --spare: shards it may add
#define RB_LIVE_HOT_MAX      (RL_SHARDS_MAX * RL_HOT_ACCOUNTS_MAX)

//  One arc as measured: (start, end] (start == end: the whole circle), on
//  the shard `owner` (an index of the measured ring).
typedef struct {
    uint64_t start, end;
    size_t owner;
    double rate;     //  transfers per second debiting the arc
    double accounts; //  accounts held in it
    double bytes;    //  account_bytes + record_bytes (an estimate)
} rb_live_arc_t;

//  One hot account as measured on the shard `owner`.
typedef struct {
    rl_id_t id;
    uint64_t point; //  ring_point_of_id
    size_t owner;
    double rate;     //  lower bound, transfers per second
    double rate_max; //  upper bound
} rb_live_hot_t;

//  What the cluster measured: arcs sorted by end, covering the circle once.
typedef struct {
    const ring_t *ring; //  the ring they were measured on
    rb_live_arc_t *arcs;
    size_t arc_count;
    rb_live_hot_t *hot;
    size_t hot_count;
    double others_max_rate; //  upper bound of any account not in hot (per second)
    double window_s;        //  the shortest window of any report
} rb_live_t;

//  What one shard of a ring carries under the model.
typedef struct {
    double weight;   //  in the ring predicted
    double capacity; //  see THE MODEL
    double rate;
    double accounts;
    double bytes;
} rb_live_load_t;

//  What moves from the measured ring to another.
typedef struct {
    double rate, accounts, bytes;
    double fraction; //  of the hash space
} rb_live_moved_t;

//  The loads of every shard of `ring` (out has ring_shard_count entries),
//  and what moves (moved may be NULL). 0, or -1 when the measurement is
//  not a sorted cover of the circle (nothing written).
int rb_live_predict (const rb_live_t *live, const ring_t *ring, rb_live_load_t *out,
                     rb_live_moved_t *moved);
//  max (rate / capacity) / (sum rate / sum capacity); 1.0 when no load.
double rb_live_imbalance (const rb_live_load_t *loads, size_t count);
//  True when `hot` alone is more than the shard of the largest capacity of
//  `ring` may carry at `target` (hot->rate / max capacity > target x total
//  rate / total capacity): whichever shard holds it is above the target,
//  whatever arcs it gives away, so no placement of arcs balances it
//  (rebalance.md).
bool rb_live_hot_unbalanceable (const rb_live_t *live, const rb_live_hot_t *hot, const ring_t *ring,
                                double target);

//  A change suggest proposes.
typedef struct {
    bool add; //  else a reweight
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX]; //  add
    double weight;                       //  the new weight
} rb_live_change_t;

//  A shard suggest may add.
typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    double weight;
} rb_live_spare_t;

//  Greedy search from `current`: at each step, every reweight of one shard
//  by a fixed set of factors and every addition of one spare are
//  predicted, and the change that lowers the imbalance most is kept (the
//  earlier candidate on a tie: reweights before additions, shards in ring
//  order), until the imbalance is at most `target`, no change lowers it,
//  or `steps` changes were made. *ring_p: the proposed ring (epoch + 1;
//  caller destroys); changes[]: one per shard changed, in the order of
//  their first change, with the final weight (room for `steps`),
//  *change_count_p their number. 0, or -1 when memory ran out or the
//  measurement is bad.
int rb_live_suggest (const rb_live_t *live, const ring_t *current, double target, size_t steps,
                     const rb_live_spare_t *spares, size_t spare_count, ring_t **ring_p,
                     rb_live_change_t *changes, size_t *change_count_p);

#endif
