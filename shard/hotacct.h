/*  hotacct.h: the hottest accounts of a shard over a sliding window, in a
    small table of bounded size (hot_accounts, op 58; docs/rebalance.md,
    "Hot accounts").

    A capacity planner needs to know whether one account alone carries so
    much of the load that no placement of arcs can balance it: moving arcs
    moves whole accounts, so a shard holding such an account stays hot
    whatever else it gives away. Counting every account exactly would take
    memory in proportion to the accounts; this table takes a fixed amount
    (HOTACCT_BUCKETS x HOTACCT_SLOTS entries, about 10 KB) and finds every
    account hot enough to matter.

    DESIGN
    One bucket per second of the window (RL_ARC_LOAD_WINDOW_S, rotated by
    the caller's clock, like arc_load's counters). Each bucket is a
    Space-Saving summary (Metwally, Agrawal, El Abbadi 2005) of
    HOTACCT_SLOTS entries: a counted account already in the bucket adds
    one to its entry; else it takes a free entry; else it replaces the
    entry with the smallest count c, starting at c + 1 with an error of c.
    So an entry's count is never below the account's true count in that
    second, and never above it by more than its error; an account absent
    from a full bucket counted at most that bucket's smallest count there.
    hotacct_top merges the buckets of the window: per account the sum of
    its entries, plus the smallest count of every full bucket it is absent
    from (both in the estimate and in its error). Every estimate is an
    upper bound, estimate - error a lower bound, and `others_max` bounds
    any account not listed. An account with more than 1/HOTACCT_SLOTS of a
    second's records is always in that second's bucket.

    LIMITS
    HOTACCT_SLOTS entries a bucket, HOTACCT_BUCKETS buckets; a count is
    O(HOTACCT_SLOTS); hotacct_top O(HOTACCT_BUCKETS^2 x HOTACCT_SLOTS^2)
    at worst (about 100,000 comparisons), run only on request. No memory
    is allocated after hotacct_new. Memory only: it starts afresh with
    every start of the shard.
*/
#ifndef RL_HOTACCT_H
#define RL_HOTACCT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define HOTACCT_SLOTS   RL_HOT_ACCOUNTS_MAX  //  entries of one bucket (one second)
#define HOTACCT_BUCKETS RL_ARC_LOAD_WINDOW_S //  seconds of the window

typedef struct hotacct_t hotacct_t;

//  One account of hotacct_top: its count over the window is in
//  [count - error, count].
typedef struct {
    rl_id_t id;
    uint64_t count;
    uint64_t error;
} hotacct_entry_t;

//  A table whose window begins at monotonic second now_s. NULL when memory
//  ran out.
hotacct_t *hotacct_new (int64_t now_s);
void hotacct_destroy (hotacct_t **self_p);
//  Counts one record of `id` at monotonic second now_s (never decreasing;
//  an older second counts in the newest bucket).
void hotacct_count (hotacct_t *self, rl_id_t id, int64_t now_s);
//  The accounts of the window ending at now_s, by count (the highest
//  first, ties by id), at most `max` into out; their number. *counted_p:
//  the records counted over the window; *others_max_p: an upper bound of
//  the count of any account not returned.
size_t hotacct_top (hotacct_t *self, int64_t now_s, hotacct_entry_t *out, size_t max,
                    uint64_t *counted_p, uint64_t *others_max_p);

#endif
