/*  rebalance_live.c: the load model of `plan --live` and `suggest` (see
    rebalance_live.h for the model and docs/rebalance.md, "Planning from
    live load").

    DESIGN
    A prediction walks every measured arc once and, inside it, the points
    of the other ring that fall in it (a binary search, then a walk): the
    arc's pieces, each given whole to its owner there. Hot accounts come
    out of their arc first (never below zero) and are put on the owner of
    their point. So a prediction costs O(arcs x log(points) + points), and
    predicting the measured ring itself gives back each shard's measured
    load exactly.

    suggest is a greedy search over single changes, deterministic for the
    same measurement: it predicts every candidate, keeps the best, and
    goes on from there. It is a heuristic: it may stop above the target
    when a better ring needs several changes at once that none improves
    alone; the caller says so, and names the hot accounts that no ring
    can balance.

    INVARIANTS
    1. The totals are kept: summed over the shards of any ring, a
       prediction's load, accounts and bytes equal the measured ones (up to
       rounding), whatever the ring.
    2. Nothing read here comes from the network unchecked: the caller
       (rebalance_live_cmd.c) checks each report against the ring first.

    LIMITS
    RB_SUGGEST_STEPS_MAX steps, S_FACTORS candidates per shard and step,
    RB_SPARES_MAX spares.
*/
#include "rebalance_live.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CIRCLE 18446744073709551616.0 //  2^64: the length of the whole hash space

//  Reweight factors tried per shard and step (suggest).
static const double s_factors[] = {0.5, 0.7, 0.85, 0.95, 1.05, 1.2, 1.5, 2.0};
#define S_FACTORS (sizeof s_factors / sizeof s_factors[0])

//  The first point of ring at a position >= at (point_count when none).
static size_t
s_lower_bound (const ring_t *ring, uint64_t at)
{
    size_t lo = 0, hi = ring_point_count (ring);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring_point_position (ring, mid) < at) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

//  Length of the arc (start, end]; the whole circle when start == end.
static double
s_arc_length (uint64_t start, uint64_t end)
{
    return start == end ? S_CIRCLE : (double) (uint64_t) (end - start);
}

typedef struct {
    const ring_t *ring;
    rb_live_load_t *out;
    rb_live_moved_t *moved;
    size_t from; //  the owner in the measured ring
    const char *from_name;
    double rate, accounts, bytes, length; //  of the whole arc (rate without its hot accounts)
} s_spread_t;

//  Gives the positions [lo, hi] of the arc to their owners in s->ring.
static void
s_spread (s_spread_t *s, uint64_t lo, uint64_t hi)
{
    size_t i = s_lower_bound (s->ring, lo);
    size_t points = ring_point_count (s->ring);
    uint64_t a = lo;
    for (;;) {
        uint64_t b = hi;
        if (i < points && ring_point_position (s->ring, i) <= hi) {
            b = ring_point_position (s->ring, i);
        }
        double share = ((double) (uint64_t) (b - a) + 1.0) / s->length;
        int owner = ring_lookup (s->ring, b);
        assert (owner >= 0);
        rb_live_load_t *to = &s->out[owner];
        to->rate += s->rate * share;
        to->accounts += s->accounts * share;
        to->bytes += s->bytes * share;
        if (s->moved && strcmp (ring_shard_name (s->ring, (size_t) owner), s->from_name) != 0) {
            s->moved->rate += s->rate * share;
            s->moved->accounts += s->accounts * share;
            s->moved->bytes += s->bytes * share;
            s->moved->fraction += ((double) (uint64_t) (b - a) + 1.0) / S_CIRCLE;
        }
        if (b == hi) {
            return;
        }
        a = b + 1;
        i++;
    }
}

//  The measured arc holding `point` (arcs sorted by end, covering the circle).
static size_t
s_arc_of (const rb_live_t *live, uint64_t point)
{
    size_t lo = 0, hi = live->arc_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (live->arcs[mid].end < point) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == live->arc_count ? 0 : lo; //  past the last end: the arc that wraps
}

static bool
s_cover_ok (const rb_live_t *live)
{
    if (!live->ring || live->arc_count == 0 || !live->arcs) {
        return false;
    }
    for (size_t k = 0; k < live->arc_count; k++) {
        const rb_live_arc_t *arc = &live->arcs[k];
        const rb_live_arc_t *prev = &live->arcs[(k + live->arc_count - 1) % live->arc_count];
        if (arc->start != prev->end || (k > 0 && arc->end <= prev->end)
            || !(arc->rate >= 0 && arc->accounts >= 0 && arc->bytes >= 0)) {
            return false;
        }
    }
    return live->arc_count > 1 || live->arcs[0].start == live->arcs[0].end;
}

//  The capacity of shard x of ring (rebalance_live.h, THE MODEL).
static double
s_capacity (const rb_live_t *live, const ring_t *ring, size_t x)
{
    int measured = ring_shard_find (live->ring, ring_shard_name (ring, x));
    return measured >= 0 ? ring_shard_weight (live->ring, (size_t) measured)
                         : ring_shard_weight (ring, x);
}

int
rb_live_predict (const rb_live_t *live, const ring_t *ring, rb_live_load_t *out,
                 rb_live_moved_t *moved)
{
    assert (live && ring && out);
    if (!s_cover_ok (live) || ring_point_count (ring) == 0) {
        return -1;
    }
    size_t shards = ring_shard_count (ring);
    for (size_t x = 0; x < shards; x++) {
        out[x] = (rb_live_load_t){.weight = ring_shard_weight (ring, x),
                                  .capacity = s_capacity (live, ring, x)};
    }
    if (moved) {
        *moved = (rb_live_moved_t){0};
    }
    double *hot_rate = calloc (live->arc_count, sizeof (double));
    if (!hot_rate) {
        return -1;
    }
    for (size_t k = 0; k < live->hot_count; k++) {
        hot_rate[s_arc_of (live, live->hot[k].point)] += live->hot[k].rate;
    }
    for (size_t k = 0; k < live->arc_count; k++) {
        const rb_live_arc_t *arc = &live->arcs[k];
        double rest = arc->rate - hot_rate[k];
        s_spread_t s = {
            .ring = ring,
            .out = out,
            .moved = moved,
            .from = arc->owner,
            .from_name = ring_shard_name (live->ring, arc->owner),
            .rate = rest > 0 ? rest : 0,
            .accounts = arc->accounts,
            .bytes = arc->bytes,
            .length = s_arc_length (arc->start, arc->end),
        };
        if (arc->start < arc->end) {
            s_spread (&s, arc->start + 1, arc->end);
        } else {
            //  Through zero: (start, 2^64 - 1], then [0, end].
            if (arc->start != UINT64_MAX) {
                s_spread (&s, arc->start + 1, UINT64_MAX);
            }
            s_spread (&s, 0, arc->end);
        }
    }
    free (hot_rate);
    for (size_t k = 0; k < live->hot_count; k++) {
        const rb_live_hot_t *hot = &live->hot[k];
        int owner = ring_lookup (ring, hot->point);
        assert (owner >= 0);
        out[owner].rate += hot->rate;
        if (moved
            && strcmp (ring_shard_name (ring, (size_t) owner),
                       ring_shard_name (live->ring, hot->owner))
                   != 0) {
            moved->rate += hot->rate;
        }
    }
    return 0;
}

double
rb_live_imbalance (const rb_live_load_t *loads, size_t count)
{
    assert (loads || count == 0);
    double rate = 0, capacity = 0, worst = 0;
    for (size_t x = 0; x < count; x++) {
        rate += loads[x].rate;
        capacity += loads[x].capacity;
    }
    if (!(rate > 0) || !(capacity > 0)) {
        return 1.0;
    }
    double mean = rate / capacity;
    for (size_t x = 0; x < count; x++) {
        if (loads[x].capacity > 0) {
            double ratio = loads[x].rate / loads[x].capacity / mean;
            worst = ratio > worst ? ratio : worst;
        }
    }
    return worst;
}

bool
rb_live_hot_unbalanceable (const rb_live_t *live, const rb_live_hot_t *hot, const ring_t *ring,
                           double target)
{
    assert (live && hot && ring);
    double total = 0, capacity = 0, largest = 0;
    for (size_t k = 0; k < live->arc_count; k++) {
        total += live->arcs[k].rate;
    }
    for (size_t x = 0; x < ring_shard_count (ring); x++) {
        double c = s_capacity (live, ring, x);
        capacity += c;
        largest = c > largest ? c : largest;
    }
    if (!(total > 0) || !(largest > 0)) {
        return false;
    }
    return hot->rate / largest > target * total / capacity;
}

//  Suggest ---------------------------------------------------------------------------

//  The imbalance of `ring` under the model; HUGE_VAL when it cannot be
//  predicted.
static double
s_score (const rb_live_t *live, const ring_t *ring, rb_live_load_t *loads)
{
    if (rb_live_predict (live, ring, loads, NULL) != 0) {
        return HUGE_VAL;
    }
    return rb_live_imbalance (loads, ring_shard_count (ring));
}

//  A weight rounded to two decimals, within the ring's bounds.
static double
s_weight (double weight)
{
    double rounded = round (weight * 100) / 100;
    if (rounded < 0.01) {
        rounded = 0.01;
    }
    return rounded > RL_RING_WEIGHT_MAX ? RL_RING_WEIGHT_MAX : rounded;
}

int
rb_live_suggest (const rb_live_t *live, const ring_t *current, double target, size_t steps,
                 const rb_live_spare_t *spares, size_t spare_count, ring_t **ring_p,
                 rb_live_change_t *changes, size_t *change_count_p)
{
    assert (live && current && ring_p && (changes || steps == 0) && change_count_p);
    assert (spare_count <= RB_SPARES_MAX && (spares || spare_count == 0));
    *ring_p = NULL;
    *change_count_p = 0;
    rb_live_load_t *loads = calloc (RL_SHARDS_MAX, sizeof *loads);
    ring_t *ring = ring_dup (current);
    if (!loads || !ring) {
        free (loads);
        ring_destroy (&ring);
        return -1;
    }
    double score = s_score (live, ring, loads);
    int rc = score == HUGE_VAL ? -1 : 0;
    for (size_t step = 0; rc == 0 && step < steps && score > target; step++) {
        ring_t *best = NULL;
        rb_live_change_t change = {0};
        double best_score = score;
        size_t shards = ring_shard_count (ring);
        for (size_t c = 0; c < shards * S_FACTORS + spare_count; c++) {
            ring_t *trial = ring_dup (ring);
            if (!trial) {
                rc = -1;
                break;
            }
            rb_live_change_t candidate = {0};
            int ring_rc;
            if (c < shards * S_FACTORS) {
                size_t x = c / S_FACTORS;
                double weight = s_weight (ring_shard_weight (ring, x) * s_factors[c % S_FACTORS]);
                snprintf (candidate.name, sizeof candidate.name, "%s", ring_shard_name (ring, x));
                candidate.weight = weight;
                ring_rc = weight == ring_shard_weight (ring, x)
                              ? RING_ERR_INVALID
                              : ring_reweight_shard (trial, candidate.name, weight);
            } else {
                const rb_live_spare_t *spare = &spares[c - shards * S_FACTORS];
                candidate.add = true;
                snprintf (candidate.name, sizeof candidate.name, "%s", spare->name);
                snprintf (candidate.endpoint, sizeof candidate.endpoint, "%s", spare->endpoint);
                candidate.weight = spare->weight;
                ring_rc = ring_shard_find (ring, spare->name) >= 0
                              ? RING_ERR_EXISTS
                              : ring_add_shard (trial, spare->name, spare->endpoint, spare->weight);
            }
            double trial_score = ring_rc == RING_OK ? s_score (live, trial, loads) : HUGE_VAL;
            if (trial_score < best_score - 1e-9) {
                ring_destroy (&best);
                best = trial;
                best_score = trial_score;
                change = candidate;
            } else {
                ring_destroy (&trial);
            }
        }
        if (!best) {
            break; //  no single change improves: the best found stands
        }
        ring_destroy (&ring);
        ring = best;
        score = best_score;
        //  One change per shard: a later reweight of a shard changed before
        //  replaces its weight there.
        size_t k = 0;
        while (k < *change_count_p && strcmp (changes[k].name, change.name) != 0) {
            k++;
        }
        if (k < *change_count_p) {
            changes[k].weight = change.weight;
        } else {
            changes[(*change_count_p)++] = change;
        }
    }
    free (loads);
    if (rc != 0) {
        ring_destroy (&ring);
        return rc;
    }
    ring_set_epoch (ring, ring_epoch (current) + 1);
    *ring_p = ring;
    return 0;
}
