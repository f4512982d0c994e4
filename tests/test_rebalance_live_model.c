/*  test_rebalance_live_model.c: the load model of `rebalance plan --live`
    and `suggest` (tools/rebalance_live.h) on fabricated counters, and the
    shard's table of hot accounts (shard/hotacct.h) on fabricated traffic.
    Deterministic: no clock, no network, no random state but seeded ones.

    test_predict_same_ring: predicting the measured ring gives back each
        shard's measured load, accounts and bytes, and moves nothing.
    test_predict_add: a fourth shard takes arcs with their measured load;
        totals are kept, and what moves is what the new shard gets.
    test_predict_hot: a hot account's load stays whole at its own point,
        never split with its arc, and its arc keeps only the rest.
    test_predict_wrap: the arc through zero, a ring of one point (the
        whole circle), and a measurement that is not a cover (refused).
    test_imbalance: the max/mean load by weight, with weights, and 1.0
        without load.
    test_suggest_hot_arc: hot arcs make their shard 1.4x the mean; the
        suggestion meets 1.10, its ring predicts within it, it is the same
        twice, and it names each shard once.
    test_suggest_spare: with a spare given the target is met; a search
        cut short is never worse than where it starts; a bad measurement
        is refused.
    test_hot_unbalanceable: an account of 60% of the load is named, one
        of 20% is not; the bound follows the target and the weights.
    test_hotacct_*: Space-Saving bounds hold (every true count within
        [count - error, count], others_max bounds the rest), the window
        slides, the table is bounded, ties are ordered.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hotacct.h"
#include "rebalance_live.h"
#include "ring.h"
#include "rl_rand.h"

#define S_EPS 1e-6

static ring_t *
s_ring (size_t shards, const double *weights)
{
    ring_t *ring = ring_new (7);
    assert_non_null (ring);
    for (size_t i = 0; i < shards; i++) {
        char name[16], endpoint[64];
        snprintf (name, sizeof name, "s%zu", i + 1);
        snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%zu", 43900 + i);
        assert_int_equal (ring_add_shard (ring, name, endpoint, weights ? weights[i] : 1.0),
                          RING_OK);
    }
    return ring;
}

//  A measurement of ring: arc k (ending at point k) gets rate_of(k).
typedef double (s_rate_fn) (size_t k, size_t owner);

static rb_live_t
s_live (const ring_t *ring, s_rate_fn *rate_of)
{
    size_t points = ring_point_count (ring);
    rb_live_t live = {.ring = ring, .arc_count = points, .window_s = 10};
    live.arcs = calloc (points, sizeof (rb_live_arc_t));
    live.hot = calloc (RB_LIVE_HOT_MAX, sizeof (rb_live_hot_t));
    assert_true (live.arcs && live.hot);
    for (size_t k = 0; k < points; k++) {
        size_t owner = ring_point_owner (ring, k);
        live.arcs[k] = (rb_live_arc_t){
            .start = ring_point_position (ring, (k + points - 1) % points),
            .end = ring_point_position (ring, k),
            .owner = owner,
            .rate = rate_of (k, owner),
            .accounts = 10,
            .bytes = 1000,
        };
    }
    return live;
}

static void
s_live_free (rb_live_t *live)
{
    free (live->arcs);
    free (live->hot);
}

static double
s_uniform (size_t k, size_t owner)
{
    (void) owner;
    return 1.0 + (double) (k % 7); //  uneven, but known
}

static double
s_sum_rate (const rb_live_t *live, size_t owner)
{
    double sum = 0;
    for (size_t k = 0; k < live->arc_count; k++) {
        sum += live->arcs[k].owner == owner ? live->arcs[k].rate : 0;
    }
    return sum;
}

static void
s_totals (const rb_live_load_t *loads, size_t n, double *rate, double *accounts, double *bytes)
{
    *rate = *accounts = *bytes = 0;
    for (size_t x = 0; x < n; x++) {
        *rate += loads[x].rate;
        *accounts += loads[x].accounts;
        *bytes += loads[x].bytes;
    }
}

static void
test_predict_same_ring (void **state)
{
    (void) state;
    ring_t *ring = s_ring (3, NULL);
    rb_live_t live = s_live (ring, s_uniform);
    rb_live_load_t loads[3];
    rb_live_moved_t moved;
    assert_int_equal (rb_live_predict (&live, ring, loads, &moved), 0);
    for (size_t x = 0; x < 3; x++) {
        assert_true (fabs (loads[x].rate - s_sum_rate (&live, x)) < S_EPS);
        assert_true (fabs (loads[x].accounts - 10.0 * (double) ring_shard_point_count (ring, x))
                     < S_EPS);
        assert_true (loads[x].weight == 1.0 && loads[x].capacity == 1.0);
    }
    assert_true (moved.rate == 0 && moved.accounts == 0 && moved.bytes == 0 && moved.fraction == 0);
    s_live_free (&live);
    ring_destroy (&ring);
}

static void
test_predict_add (void **state)
{
    (void) state;
    ring_t *ring = s_ring (3, NULL);
    rb_live_t live = s_live (ring, s_uniform);
    ring_t *grown = ring_dup (ring);
    assert_int_equal (ring_add_shard (grown, "s4", "tcp://127.0.0.1:43999", 1.0), RING_OK);
    rb_live_load_t before[3], after[4];
    rb_live_moved_t moved;
    assert_int_equal (rb_live_predict (&live, ring, before, NULL), 0);
    assert_int_equal (rb_live_predict (&live, grown, after, &moved), 0);
    double r0, a0, b0, r1, a1, b1;
    s_totals (before, 3, &r0, &a0, &b0);
    s_totals (after, 4, &r1, &a1, &b1);
    assert_true (fabs (r0 - r1) < 1e-6 * r0 && fabs (a0 - a1) < 1e-6 * a0
                 && fabs (b0 - b1) < 1e-6 * b0);
    //  Nothing moves between the shards that stay (the planner's rule), so
    //  what moves is what s4 gets, and each other shard only loses.
    assert_true (fabs (moved.rate - after[3].rate) < 1e-6 * r0);
    assert_true (fabs (moved.accounts - after[3].accounts) < 1e-6 * a0);
    assert_true (fabs (moved.fraction - ring_shard_ownership (grown, 3)) < 1e-9);
    for (size_t x = 0; x < 3; x++) {
        assert_true (after[x].rate <= before[x].rate + S_EPS);
    }
    assert_true (after[3].rate > 0.1 * r0 && after[3].rate < 0.4 * r0);
    s_live_free (&live);
    ring_destroy (&grown);
    ring_destroy (&ring);
}

static void
test_predict_hot (void **state)
{
    (void) state;
    ring_t *ring = s_ring (3, NULL);
    rb_live_t live = s_live (ring, s_uniform);
    //  An account in arc 5 carrying 100/s of that arc's measured rate.
    uint64_t point = live.arcs[5].end - 1;
    live.arcs[5].rate += 100;
    live.hot[0] = (rb_live_hot_t){
        .point = point, .owner = live.arcs[5].owner, .rate = 100, .rate_max = 101};
    live.hot_count = 1;
    //  A ring whose new point splits arc 5 just below the account: the
    //  account's load must go whole to the owner of its own point.
    ring_t *grown = ring_dup (ring);
    assert_int_equal (ring_add_shard (grown, "s4", "tcp://127.0.0.1:43999", 1.0), RING_OK);
    rb_live_load_t same[3], after[4];
    assert_int_equal (rb_live_predict (&live, ring, same, NULL), 0);
    for (size_t x = 0; x < 3; x++) {
        assert_true (fabs (same[x].rate - s_sum_rate (&live, x)) < S_EPS);
    }
    assert_int_equal (rb_live_predict (&live, grown, after, NULL), 0);
    int holder = ring_lookup (grown, point);
    assert_true (holder >= 0);
    assert_true (after[holder].rate >= 100 - S_EPS);
    double r0, a0, b0, r1, a1, b1;
    s_totals (same, 3, &r0, &a0, &b0);
    s_totals (after, 4, &r1, &a1, &b1);
    assert_true (fabs (r0 - r1) < 1e-6 * r0);
    //  A hot account above its arc's rate (windows that differ): the arc
    //  goes to zero, never below.
    live.hot[0].rate = 1000;
    assert_int_equal (rb_live_predict (&live, ring, same, NULL), 0);
    for (size_t x = 0; x < 3; x++) {
        assert_true (same[x].rate >= 0);
    }
    s_live_free (&live);
    ring_destroy (&grown);
    ring_destroy (&ring);
}

static void
test_predict_wrap (void **state)
{
    (void) state;
    //  One shard: one arc per point; the first wraps through zero.
    ring_t *one = s_ring (1, NULL);
    rb_live_t live = s_live (one, s_uniform);
    assert_true (live.arcs[0].start > live.arcs[0].end); //  through zero
    ring_t *two = s_ring (2, NULL);
    rb_live_load_t loads[2];
    rb_live_moved_t moved;
    assert_int_equal (rb_live_predict (&live, two, loads, &moved), 0);
    double total = s_sum_rate (&live, 0);
    assert_true (fabs (loads[0].rate + loads[1].rate - total) < 1e-6 * total);
    assert_true (fabs (moved.rate - loads[1].rate) < 1e-6 * total);
    //  The whole circle as one arc (start == end).
    rb_live_arc_t whole = {
        .start = 42, .end = 42, .owner = 0, .rate = 90, .accounts = 9, .bytes = 900};
    rb_live_t circle = {.ring = one, .arcs = &whole, .arc_count = 1};
    assert_int_equal (rb_live_predict (&circle, two, loads, NULL), 0);
    assert_true (fabs (loads[0].rate + loads[1].rate - 90) < 1e-6);
    assert_true (fabs (loads[0].rate / 90 - ring_shard_ownership (two, 0)) < 1e-6);
    //  Not a cover: a gap, an overlap, a negative rate, nothing.
    rb_live_load_t spare[2];
    live.arcs[3].start += 1;
    assert_int_equal (rb_live_predict (&live, two, spare, NULL), -1);
    live.arcs[3].start -= 1;
    live.arcs[4].rate = -1;
    assert_int_equal (rb_live_predict (&live, two, spare, NULL), -1);
    live.arcs[4].rate = NAN;
    assert_int_equal (rb_live_predict (&live, two, spare, NULL), -1);
    live.arcs[4].rate = 1;
    rb_live_arc_t open = {.start = 1, .end = 2};
    rb_live_t gap = {.ring = one, .arcs = &open, .arc_count = 1};
    assert_int_equal (rb_live_predict (&gap, two, spare, NULL), -1);
    rb_live_t none = {.ring = one};
    assert_int_equal (rb_live_predict (&none, two, spare, NULL), -1);
    s_live_free (&live);
    ring_destroy (&one);
    ring_destroy (&two);
}

static void
test_imbalance (void **state)
{
    (void) state;
    rb_live_load_t even[3] = {{1, 1, 10, 0, 0}, {1, 1, 10, 0, 0}, {1, 1, 10, 0, 0}};
    assert_true (fabs (rb_live_imbalance (even, 3) - 1.0) < S_EPS);
    rb_live_load_t skew[3] = {{1, 1, 20, 0, 0}, {1, 1, 5, 0, 0}, {1, 1, 5, 0, 0}};
    assert_true (fabs (rb_live_imbalance (skew, 3) - 2.0) < S_EPS);
    //  Capacity 2 carrying twice as much is even, whatever the weights.
    rb_live_load_t weighted[2] = {{0.5, 2, 20, 0, 0}, {3, 1, 10, 0, 0}};
    assert_true (fabs (rb_live_imbalance (weighted, 2) - 1.0) < S_EPS);
    rb_live_load_t idle[2] = {{1, 1, 0, 0, 0}, {1, 1, 0, 0, 0}};
    assert_true (rb_live_imbalance (idle, 2) == 1.0);
    assert_true (rb_live_imbalance (NULL, 0) == 1.0);
}

//  Arcs of s1 from the third on are plain; its first two carry `s_hot_rate`.
static double s_hot_rate;
static double
s_hot_arc (size_t k, size_t owner)
{
    (void) k;
    static size_t s1_seen;
    if (k == 0) {
        s1_seen = 0;
    }
    if (owner == 0 && s1_seen++ < 2) {
        return s_hot_rate;
    }
    return 1.0;
}

static double
s_predicted (const rb_live_t *live, const ring_t *ring)
{
    rb_live_load_t *loads = calloc (RL_SHARDS_MAX, sizeof *loads);
    assert_non_null (loads);
    assert_int_equal (rb_live_predict (live, ring, loads, NULL), 0);
    double imbalance = rb_live_imbalance (loads, ring_shard_count (ring));
    free (loads);
    return imbalance;
}

static void
test_suggest_hot_arc (void **state)
{
    (void) state;
    ring_t *ring = s_ring (3, NULL);
    size_t points = ring_point_count (ring);
    //  Two hot arcs on s1: a fifth of the load (s1 at about 1.4x the mean).
    s_hot_rate = (double) points / 8;
    rb_live_t live = s_live (ring, s_hot_arc);
    double before = s_predicted (&live, ring);
    assert_true (before > 1.3);
    rb_live_change_t changes[RB_SUGGEST_STEPS_DEF];
    size_t count = 0;
    ring_t *proposed = NULL;
    assert_int_equal (rb_live_suggest (&live, ring, 1.10, RB_SUGGEST_STEPS_DEF, NULL, 0, &proposed,
                                       changes, &count),
                      0);
    assert_non_null (proposed);
    double after = s_predicted (&live, proposed);
    print_message ("hot arc: imbalance %.4f -> %.4f in %zu changes\n", before, after, count);
    assert_true (after <= 1.10 + S_EPS);
    assert_true (count >= 1 && count <= 3);
    assert_int_equal (ring_epoch (proposed), ring_epoch (ring) + 1);
    for (size_t k = 0; k < count; k++) {
        assert_false (changes[k].add);
        int x = ring_shard_find (proposed, changes[k].name);
        assert_true (x >= 0);
        assert_true (ring_shard_weight (proposed, (size_t) x) == changes[k].weight);
        for (size_t j = 0; j < k; j++) {
            assert_string_not_equal (changes[j].name, changes[k].name);
        }
    }
    //  The same again: deterministic.
    rb_live_change_t again[RB_SUGGEST_STEPS_DEF];
    size_t again_count = 0;
    ring_t *second = NULL;
    assert_int_equal (rb_live_suggest (&live, ring, 1.10, RB_SUGGEST_STEPS_DEF, NULL, 0, &second,
                                       again, &again_count),
                      0);
    assert_int_equal (again_count, count);
    assert_memory_equal (again, changes, count * sizeof changes[0]);
    ring_destroy (&second);
    //  Already within a loose target: no change.
    assert_int_equal (rb_live_suggest (&live, ring, 3.0, RB_SUGGEST_STEPS_DEF, NULL, 0, &second,
                                       again, &again_count),
                      0);
    assert_int_equal (again_count, 0);
    ring_destroy (&second);
    s_live_free (&live);
    ring_destroy (&proposed);
    ring_destroy (&ring);
}

static void
test_suggest_spare (void **state)
{
    (void) state;
    ring_t *ring = s_ring (3, NULL);
    size_t points = ring_point_count (ring);
    //  Two hot arcs on s1: a quarter of the load; with the spare s4 given.
    s_hot_rate = (double) points / 6;
    rb_live_t live = s_live (ring, s_hot_arc);
    rb_live_spare_t spare = {.name = "s4", .endpoint = "tcp://127.0.0.1:43998", .weight = 1.0};
    rb_live_change_t changes[RB_SUGGEST_STEPS_DEF];
    size_t count = 0;
    ring_t *proposed = NULL;
    assert_int_equal (rb_live_suggest (&live, ring, 1.10, RB_SUGGEST_STEPS_DEF, &spare, 1,
                                       &proposed, changes, &count),
                      0);
    double after = s_predicted (&live, proposed);
    print_message ("spare: %zu changes, imbalance %.4f\n", count, after);
    assert_true (after <= 1.10 + S_EPS);
    ring_destroy (&proposed);
    //  Two steps at most, no spare: the best it finds, maybe above target,
    //  never worse than the start.
    double before = s_predicted (&live, ring);
    assert_int_equal (rb_live_suggest (&live, ring, 1.0, 2, NULL, 0, &proposed, changes, &count),
                      0);
    assert_true (count <= 2);
    assert_true (s_predicted (&live, proposed) <= before + S_EPS);
    ring_destroy (&proposed);
    //  A bad measurement: refused.
    live.arcs[0].start++;
    assert_int_equal (rb_live_suggest (&live, ring, 1.10, 4, NULL, 0, &proposed, changes, &count),
                      -1);
    assert_null (proposed);
    s_live_free (&live);
    ring_destroy (&ring);
}

static void
test_hot_unbalanceable (void **state)
{
    (void) state;
    ring_t *ring = s_ring (3, NULL);
    rb_live_t live = s_live (ring, s_uniform);
    double total = s_sum_rate (&live, 0) + s_sum_rate (&live, 1) + s_sum_rate (&live, 2);
    rb_live_hot_t hot = {.point = live.arcs[0].end, .owner = live.arcs[0].owner};
    hot.rate = 0.6 * total;
    assert_true (rb_live_hot_unbalanceable (&live, &hot, ring, 1.10));
    hot.rate = 0.2 * total;
    assert_false (rb_live_hot_unbalanceable (&live, &hot, ring, 1.10));
    //  The bound: target x mean = 1.10 / 3 of the load.
    hot.rate = (1.10 / 3 + 0.001) * total;
    assert_true (rb_live_hot_unbalanceable (&live, &hot, ring, 1.10));
    hot.rate = (1.10 / 3 - 0.001) * total;
    assert_false (rb_live_hot_unbalanceable (&live, &hot, ring, 1.10));
    assert_true (rb_live_hot_unbalanceable (&live, &hot, ring, 1.0));
    //  A shard of a larger capacity may carry more (measured on weights
    //  2, 1, 1): above 1.1/3 of the load, within 1.1 x 2/4.
    const double weights[3] = {2, 1, 1};
    ring_t *heavy = s_ring (3, weights);
    rb_live_t heavy_live = s_live (heavy, s_uniform);
    double heavy_total = s_sum_rate (&heavy_live, 0) + s_sum_rate (&heavy_live, 1)
                         + s_sum_rate (&heavy_live, 2);
    rb_live_hot_t big = {.point = heavy_live.arcs[0].end,
                         .owner = heavy_live.arcs[0].owner,
                         .rate = 0.45 * heavy_total};
    assert_false (rb_live_hot_unbalanceable (&heavy_live, &big, heavy, 1.10));
    //  A reweight is not capacity: the measured ring's weights count.
    assert_true (rb_live_hot_unbalanceable (&live, &big, heavy, 1.10)
                 == (0.45 * heavy_total > 1.10 / 3 * total));
    s_live_free (&heavy_live);
    //  And with suggest: an unbalanceable account keeps the target out of reach.
    live.hot[0] = hot;
    live.hot[0].rate = 0.6 * total;
    live.arcs[0].rate += 0.6 * total;
    live.hot_count = 1;
    rb_live_change_t changes[RB_SUGGEST_STEPS_DEF];
    size_t count = 0;
    ring_t *proposed = NULL;
    assert_int_equal (rb_live_suggest (&live, ring, 1.10, RB_SUGGEST_STEPS_DEF, NULL, 0, &proposed,
                                       changes, &count),
                      0);
    assert_true (s_predicted (&live, proposed) > 1.10);
    ring_destroy (&proposed);
    ring_destroy (&heavy);
    s_live_free (&live);
    ring_destroy (&ring);
}

//  Hot accounts (shard/hotacct.c) -----------------------------------------------------

static rl_id_t
s_id (uint64_t n)
{
    return (rl_id_t){.lo = n, .hi = 0x484f54};
}

static void
test_hotacct_bounds (void **state)
{
    (void) state;
    hotacct_t *hot = hotacct_new (100);
    assert_non_null (hot);
    //  Over 10 seconds: account 1 takes 30% of each second's records,
    //  account 2 10%, the rest spread over 5,000 accounts.
    static uint64_t truth[5003];
    memset (truth, 0, sizeof truth);
    uint64_t rng = 7, total = 0;
    for (int64_t second = 100; second < 110; second++) {
        for (int i = 0; i < 2000; i++) {
            uint64_t r = rl_rand_next (&rng) % 100;
            uint64_t n = r < 30 ? 1 : r < 40 ? 2 : 3 + rl_rand_next (&rng) % 5000;
            hotacct_count (hot, s_id (n), second);
            truth[n]++;
            total++;
        }
    }
    hotacct_entry_t top[HOTACCT_SLOTS];
    uint64_t counted = 0, others = 0;
    size_t n = hotacct_top (hot, 109, top, HOTACCT_SLOTS, &counted, &others);
    assert_int_equal (counted, total);
    assert_int_equal (n, HOTACCT_SLOTS);
    assert_true (rl_id_eq (top[0].id, s_id (1)) && rl_id_eq (top[1].id, s_id (2)));
    for (size_t k = 0; k < n; k++) {
        uint64_t t = truth[top[k].id.lo];
        assert_true (top[k].count >= t && top[k].count - top[k].error <= t);
        assert_true (k == 0 || top[k - 1].count >= top[k].count);
    }
    //  The two hot accounts are exact enough to matter: error within 5%.
    assert_true (top[0].error * 20 <= top[0].count);
    //  Every account not listed is within others_max.
    for (uint64_t a = 1; a < 5003; a++) {
        bool listed = false;
        for (size_t k = 0; k < n && !listed; k++) {
            listed = top[k].id.lo == a;
        }
        assert_true (listed || truth[a] <= others);
    }
    //  The window slides: 10 seconds later, nothing is left.
    n = hotacct_top (hot, 119, top, HOTACCT_SLOTS, &counted, &others);
    assert_int_equal (n, 0);
    assert_int_equal (counted, 0);
    assert_int_equal (others, 0);
    hotacct_destroy (&hot);
    assert_null (hot);
}

static void
test_hotacct_window (void **state)
{
    (void) state;
    hotacct_t *hot = hotacct_new (0);
    //  Account 9: 5 records at second 0; account 8: 3 at second 5.
    for (int i = 0; i < 5; i++) {
        hotacct_count (hot, s_id (9), 0);
    }
    for (int i = 0; i < 3; i++) {
        hotacct_count (hot, s_id (8), 5);
    }
    hotacct_entry_t top[4];
    uint64_t counted, others;
    assert_int_equal (hotacct_top (hot, 9, top, 4, &counted, &others), 2);
    assert_int_equal (counted, 8);
    assert_true (rl_id_eq (top[0].id, s_id (9)) && top[0].count == 5 && top[0].error == 0);
    assert_int_equal (others, 0); //  no bucket was full
    //  Second 10: second 0 has left the window.
    assert_int_equal (hotacct_top (hot, 10, top, 4, &counted, &others), 1);
    assert_true (rl_id_eq (top[0].id, s_id (8)) && top[0].count == 3);
    //  A clock that goes back counts in the newest bucket.
    hotacct_count (hot, s_id (7), 3);
    assert_int_equal (hotacct_top (hot, 10, top, 1, &counted, &others), 1);
    assert_int_equal (counted, 4);
    //  max 1 of 2: the one left out bounds others; ties by id.
    assert_true (rl_id_eq (top[0].id, s_id (8)));
    assert_int_equal (others, 1);
    hotacct_count (hot, s_id (6), 10);
    hotacct_count (hot, s_id (6), 10);
    assert_int_equal (hotacct_top (hot, 10, top, 4, &counted, &others), 3);
    assert_true (rl_id_eq (top[1].id, s_id (6)) && rl_id_eq (top[2].id, s_id (7)));
    assert_int_equal (hotacct_top (hot, 10, NULL, 0, &counted, &others), 0);
    hotacct_destroy (&hot);
}

static void
test_hotacct_full (void **state)
{
    (void) state;
    //  More distinct accounts in one second than slots: each newcomer takes
    //  the smallest entry, and the bounds still hold.
    hotacct_t *hot = hotacct_new (0);
    for (uint64_t n = 1; n <= 10 * HOTACCT_SLOTS; n++) {
        hotacct_count (hot, s_id (n), 0);
    }
    hotacct_entry_t top[HOTACCT_SLOTS];
    uint64_t counted, others;
    size_t n = hotacct_top (hot, 0, top, HOTACCT_SLOTS, &counted, &others);
    assert_int_equal (n, HOTACCT_SLOTS);
    assert_int_equal (counted, 10 * HOTACCT_SLOTS);
    for (size_t k = 0; k < n; k++) {
        assert_true (top[k].count - top[k].error <= 1 && top[k].count >= 1);
    }
    assert_true (others >= 1);
    hotacct_destroy (&hot);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_predict_same_ring), cmocka_unit_test (test_predict_add),
        cmocka_unit_test (test_predict_hot),       cmocka_unit_test (test_predict_wrap),
        cmocka_unit_test (test_imbalance),         cmocka_unit_test (test_suggest_hot_arc),
        cmocka_unit_test (test_suggest_spare),     cmocka_unit_test (test_hot_unbalanceable),
        cmocka_unit_test (test_hotacct_bounds),    cmocka_unit_test (test_hotacct_window),
        cmocka_unit_test (test_hotacct_full),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
