/*  ring_diff.c: what changes owner between two rings: the arcs
    (ring_diff_arcs) and their sum per pair of shards (ring_diff_flows).
    The planner (tools/rebalance.c) turns them into a migration plan.

    Reads both rings through ring.h only: it needs none of their internals.

    BEHAVIOR
    The union of both rings' points, walked in position order, cuts the
    hash space into elementary segments: between two successive boundaries
    u < v neither ring has a point, so every hash in (u, v] has, in each
    ring, the owner of the first point at or after v. A segment whose two
    owners differ (shards matched by name) moves.

    INVARIANTS
    1. Arcs are in position order, never overlap, and adjacent arcs with
       the same (from, to) pair are merged, across the wrap too.
    2. start == end means the whole hash space.
    3. The arcs cover exactly the hash space whose owner (by name) differs,
       and the flows sum exactly those arcs.
    4. Flows are sorted by (from, to) name, one per pair.

    LIMITS
    O(points of a + points of b) for the walk, plus O(arcs x flows) to sum
    the flows; memory is one int per shard of a and the arrays returned.
*/
#include "ring.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Appends the elementary segment (start, end] moved from -> to, merging it
//  with the previous arc when they touch and share the pair.
static int
s_arc_push (ring_arc_t **arcs_p, size_t *count_p, size_t *capacity_p, ring_arc_t arc)
{
    size_t count = *count_p;
    if (count > 0) {
        ring_arc_t *last = &(*arcs_p)[count - 1];
        if (last->end == arc.start && last->from == arc.from && last->to == arc.to) {
            last->end = arc.end;
            return RING_OK;
        }
    }
    if (count == *capacity_p) {
        size_t capacity = *capacity_p ? *capacity_p * 2 : 16;
        ring_arc_t *arcs = (ring_arc_t *) realloc (*arcs_p, capacity * sizeof (ring_arc_t));
        if (!arcs) {
            return RING_ERR_NOMEM;
        }
        *arcs_p = arcs;
        *capacity_p = capacity;
    }
    (*arcs_p)[count] = arc;
    *count_p = count + 1;
    return RING_OK;
}

//  Index in b of every shard of a, by name (-1 when b lacks it).
static int *
s_shard_map (const ring_t *a, const ring_t *b)
{
    size_t shards = ring_shard_count (a);
    int *map = (int *) malloc ((shards + 1) * sizeof (int));
    if (map) {
        for (size_t x = 0; x < shards; x++) {
            map[x] = ring_shard_find (b, ring_shard_name (a, x));
        }
    }
    return map;
}

//  Walks the union of both rings' points in order. Between two successive
//  boundaries u < v neither ring has a point, so every hash in (u, v] has
//  the owner of v in each ring: compare those.
static int
s_diff_walk (const ring_t *a, const ring_t *b, const int *map, ring_arc_t **arcs_p, size_t *count_p)
{
    size_t capacity = 0;
    size_t na = ring_point_count (a);
    size_t nb = ring_point_count (b);
    size_t ia = 0;
    size_t ib = 0;
    uint64_t last_a = ring_point_position (a, na - 1);
    uint64_t last_b = ring_point_position (b, nb - 1);
    uint64_t start = last_a > last_b ? last_a : last_b;
    while (ia < na || ib < nb) {
        uint64_t pa = ia < na ? ring_point_position (a, ia) : UINT64_MAX;
        uint64_t pb = ib < nb ? ring_point_position (b, ib) : UINT64_MAX;
        uint64_t end = pa < pb ? pa : pb;
        if (ia == na) {
            end = pb;
        } else if (ib == nb) {
            end = pa;
        }
        int from = (int) ring_point_owner (a, ia < na ? ia : 0);
        int to = (int) ring_point_owner (b, ib < nb ? ib : 0);
        if (map[from] != to) {
            int rc = s_arc_push (arcs_p, count_p, &capacity, (ring_arc_t){from, to, start, end});
            if (rc) {
                return rc;
            }
        }
        ia += ia < na && pa == end;
        ib += ib < nb && pb == end;
        start = end;
    }
    return RING_OK;
}

int
ring_diff_arcs (const ring_t *a, const ring_t *b, ring_arc_t **arcs_p, size_t *count_p)
{
    assert (a && b);
    assert (arcs_p && count_p);
    *arcs_p = NULL;
    *count_p = 0;
    if (ring_point_count (a) == 0 || ring_point_count (b) == 0) {
        return RING_ERR_INVALID;
    }
    int *map = s_shard_map (a, b);
    if (!map) {
        return RING_ERR_NOMEM;
    }
    int rc = s_diff_walk (a, b, map, arcs_p, count_p);
    free (map);
    if (rc) {
        free (*arcs_p);
        *arcs_p = NULL;
        *count_p = 0;
        return rc;
    }
    //  The last arc may continue into the first across the wrap
    ring_arc_t *arcs = *arcs_p;
    size_t count = *count_p;
    if (count > 1 && arcs[count - 1].end == arcs[0].start && arcs[count - 1].from == arcs[0].from
        && arcs[count - 1].to == arcs[0].to) {
        arcs[0].start = arcs[count - 1].start;
        *count_p = count - 1;
    }
    return RING_OK;
}

double
ring_arc_fraction (const ring_arc_t *arc)
{
    assert (arc);
    uint64_t size = arc->end - arc->start;
    return size == 0 ? 1.0 : (double) size / 18446744073709551616.0;
}

static int
s_flow_compare (const void *left, const void *right)
{
    const ring_flow_t *a = (const ring_flow_t *) left;
    const ring_flow_t *b = (const ring_flow_t *) right;
    int order = strcmp (a->from, b->from);
    return order ? order : strcmp (a->to, b->to);
}

int
ring_diff_flows (const ring_t *a, const ring_t *b, ring_flow_t **flows_p, size_t *count_p)
{
    assert (a && b);
    assert (flows_p && count_p);
    *flows_p = NULL;
    *count_p = 0;
    ring_arc_t *arcs = NULL;
    size_t arc_count = 0;
    int rc = ring_diff_arcs (a, b, &arcs, &arc_count);
    if (rc || arc_count == 0) {
        return rc;
    }
    ring_flow_t *flows = (ring_flow_t *) calloc (arc_count, sizeof (ring_flow_t));
    if (!flows) {
        free (arcs);
        return RING_ERR_NOMEM;
    }
    size_t count = 0;
    for (size_t k = 0; k < arc_count; k++) {
        const char *from = ring_shard_name (a, (size_t) arcs[k].from);
        const char *to = ring_shard_name (b, (size_t) arcs[k].to);
        size_t f = 0;
        while (f < count && (strcmp (flows[f].from, from) || strcmp (flows[f].to, to))) {
            f++;
        }
        if (f == count) {
            strcpy (flows[count].from, from);
            strcpy (flows[count].to, to);
            count++;
        }
        flows[f].fraction += ring_arc_fraction (&arcs[k]);
    }
    free (arcs);
    qsort (flows, count, sizeof (ring_flow_t), s_flow_compare);
    *flows_p = flows;
    *count_p = count;
    return RING_OK;
}
