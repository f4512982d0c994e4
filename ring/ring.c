/*  ring.c: the consistent-hash ring: shards, weights, points, placement
    and lookup. The ring's other faces live beside it: the checks of each
    field and the error messages (ring_valid.c), the text form and its
    atomic save (ring_text.c), the binary form for the wire (ring_blob.c)
    and the diff of two rings (ring_diff.c). The loaders build rings
    through the few helpers of ring_internal.h; the diff reads rings
    through ring.h only.

    BACKGROUND
    Plain consistent hashing puts ~160 random points per shard on the ring
    and lives with the noise: at 10 shards the fullest shard owns ~1.12x
    its share, and a change moves arcs between shards that both stay only
    in the sense that the random arcs are uneven. We want exactness, so the
    points are explicit (stored in the ring file, sent on the wire) and each
    change computes, in integer units of hash space (2^64 in all), exactly
    what every shard must give or receive.

    BEHAVIOR (placement, see docs/ring.md)
    - First shard of an empty ring: round(points_per_weight x weight) seed
      points at XXH3("name#i"), deduplicated. It owns everything.
    - Add S: target_X = 2^64 x weight_X / total weight of the new ring.
      Every existing X gives its excess own_X - target_X to S: its largest
      arcs that fit whole are relabelled to S, and the last partial amount
      is cut from the front of one larger X arc (a, b] by inserting an S
      point at a + need. Only X -> S flows exist.
    - Remove S: every remaining Y has a deficit target_Y - own_Y. In order
      of deficit (largest first) Y takes its deficit from S's arcs in the
      same way; the last Y takes whatever S still owns. Only S -> Y flows.
    - Reweight S: the same transfers between S and the others, in the
      direction the new weight asks for.
    - After every change: compact (drop a point whose clockwise successor
      has the same owner; ownership is unchanged).

    INVARIANTS
    1. positions[] is strictly increasing (unique points, sorted).
    2. Every point's owner is a valid shard index; a non-empty ring gives
       every shard at least one point.
    3. owned[x] is the exact hash space (units of 2^-64) shard x owns, and
       the owned[] sum to 2^64 whenever the ring has a point.
    4. A change moves hash space only between the changed shard and the
       others, never between two shards that both stay.
    5. Determinism: the same operations give the same ring everywhere: no
       rand(), no clock, and the only floating point is one IEEE division
       and multiplication per target.
    6. A failed call leaves the ring as it was: capacity is reserved before
       the first write.
    7. Every shard record, however it arrives (ring_add_shard, the text or
       the binary form), passes the same checks: ring_i_append_shard.

    LIMITS
    RL_SHARDS_MAX shards and RING_POINTS_MAX points (ring.h); a change
    that would pass either returns RING_ERR_FULL. Names, endpoints and
    weights are bounded as ring_internal.h says.

    LIMITATIONS
    Every change costs O(points x log points) (sorting arcs). Lookup is a
    binary search over a u64 array: O(log points), no allocation. Rings
    loaded from files built elsewhere (say with random points) are only as
    balanced as their points; the next change moves toward the targets only
    for the shards it touches.
*/
#include "ring.h"
#include "ring_internal.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define S_SPACE               ((ring_i_u128) 1 << 64) //  units of hash space in the ring
#define S_MOVE_UNITS_MIN      ((ring_i_u128) 1 << 20) //  smaller transfers are rounding noise
#define S_SEED_ATTEMPTS_EXTRA 64                      //  hash attempts beyond P when seeding

//  One arc of a shard, for sorting by size.
typedef struct {
    ring_i_u128 size; //  units of hash space
    size_t index;     //  point index
} s_arc_t;

//  Life cycle -------------------------------------------------------------

ring_t *
ring_new (uint64_t epoch)
{
    ring_t *self = (ring_t *) calloc (1, sizeof (ring_t));
    if (!self) {
        return NULL;
    }
    self->epoch = epoch;
    self->points_per_weight = RL_RING_POINTS_PER_WEIGHT;
    return self;
}

void
ring_destroy (ring_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        ring_t *self = *self_p;
        free (self->shards);
        free (self->owned);
        free (self->positions);
        free (self->owners);
        free (self);
        *self_p = NULL;
    }
}

static int
s_reserve_shards (ring_t *self, size_t count)
{
    if (count <= self->shard_capacity) {
        return RING_OK;
    }
    if (count > RL_SHARDS_MAX) {
        return RING_ERR_FULL;
    }
    size_t capacity = self->shard_capacity ? self->shard_capacity * 2 : 8;
    capacity = capacity < count ? count : capacity;
    capacity = capacity > RL_SHARDS_MAX ? RL_SHARDS_MAX : capacity;
    ring_i_shard_t *shards = (ring_i_shard_t *) realloc (self->shards,
                                                         capacity * sizeof (ring_i_shard_t));
    if (!shards) {
        return RING_ERR_NOMEM;
    }
    self->shards = shards;
    ring_i_u128 *owned = (ring_i_u128 *) realloc (self->owned, capacity * sizeof (ring_i_u128));
    if (!owned) {
        return RING_ERR_NOMEM;
    }
    self->owned = owned;
    self->shard_capacity = capacity;
    return RING_OK;
}

int
ring_i_reserve_points (ring_t *self, size_t count)
{
    if (count <= self->point_capacity) {
        return RING_OK;
    }
    if (count > RING_POINTS_MAX) {
        return RING_ERR_FULL;
    }
    size_t capacity = self->point_capacity ? self->point_capacity * 2 : 64;
    capacity = capacity < count ? count : capacity;
    capacity = capacity > RING_POINTS_MAX ? RING_POINTS_MAX : capacity;
    uint64_t *positions = (uint64_t *) realloc (self->positions, capacity * sizeof (uint64_t));
    if (!positions) {
        return RING_ERR_NOMEM;
    }
    self->positions = positions;
    uint16_t *owners = (uint16_t *) realloc (self->owners, capacity * sizeof (uint16_t));
    if (!owners) {
        return RING_ERR_NOMEM;
    }
    self->owners = owners;
    self->point_capacity = capacity;
    return RING_OK;
}

ring_t *
ring_dup (const ring_t *self)
{
    assert (self);
    ring_t *copy = ring_new (self->epoch);
    if (!copy) {
        return NULL;
    }
    copy->points_per_weight = self->points_per_weight;
    if (s_reserve_shards (copy, self->shard_count)
        || ring_i_reserve_points (copy, self->point_count)) {
        ring_destroy (&copy);
        return NULL;
    }
    if (self->shard_count) {
        memcpy (copy->shards, self->shards, self->shard_count * sizeof (ring_i_shard_t));
        memcpy (copy->owned, self->owned, self->shard_count * sizeof (ring_i_u128));
    }
    if (self->point_count) {
        memcpy (copy->positions, self->positions, self->point_count * sizeof (uint64_t));
        memcpy (copy->owners, self->owners, self->point_count * sizeof (uint16_t));
    }
    copy->shard_count = self->shard_count;
    copy->point_count = self->point_count;
    return copy;
}

uint64_t
ring_epoch (const ring_t *self)
{
    assert (self);
    return self->epoch;
}

void
ring_set_epoch (ring_t *self, uint64_t epoch)
{
    assert (self);
    self->epoch = epoch;
}

uint32_t
ring_points_per_weight (const ring_t *self)
{
    assert (self);
    return self->points_per_weight;
}

int
ring_set_points_per_weight (ring_t *self, uint32_t points_per_weight)
{
    assert (self);
    if (points_per_weight < 1 || points_per_weight > RING_POINTS_PER_WEIGHT_MAX) {
        return RING_ERR_INVALID;
    }
    self->points_per_weight = points_per_weight;
    return RING_OK;
}

//  Points and arcs -----------------------------------------------------------

//  Position of the point before point index (the start of its arc).
static uint64_t
s_prev_position (const ring_t *self, size_t index)
{
    return self->positions[index == 0 ? self->point_count - 1 : index - 1];
}

//  Size of the arc (prev, position] owned by point index; a lone point owns
//  the whole space.
static ring_i_u128
s_arc_size (const ring_t *self, size_t index)
{
    assert (index < self->point_count);
    if (self->point_count == 1) {
        return S_SPACE;
    }
    return (uint64_t) (self->positions[index] - s_prev_position (self, index));
}

//  Index of the first point with position >= point (point_count if none).
static size_t
s_lower_bound (const uint64_t *positions, size_t count, uint64_t point)
{
    size_t low = 0;
    size_t high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (positions[middle] < point) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return low;
}

//  Inserts a point; capacity must be reserved and the position unused.
static void
s_insert_point (ring_t *self, uint64_t position, size_t owner)
{
    assert (self->point_count < self->point_capacity);
    size_t at = s_lower_bound (self->positions, self->point_count, position);
    assert (at == self->point_count || self->positions[at] != position);
    size_t tail = self->point_count - at;
    memmove (self->positions + at + 1, self->positions + at, tail * sizeof (uint64_t));
    memmove (self->owners + at + 1, self->owners + at, tail * sizeof (uint16_t));
    self->positions[at] = position;
    self->owners[at] = (uint16_t) owner;
    self->point_count++;
}

void
ring_i_recount (ring_t *self)
{
    for (size_t x = 0; x < self->shard_count; x++) {
        self->owned[x] = 0;
    }
    for (size_t i = 0; i < self->point_count; i++) {
        self->owned[self->owners[i]] += s_arc_size (self, i);
    }
}

//  Drops every point whose clockwise successor has the same owner: the
//  successor's arc absorbs it, so ownership is unchanged. A ring whose
//  points all have one owner keeps its last point.
static void
s_compact (ring_t *self)
{
    size_t count = self->point_count;
    if (count < 2) {
        return;
    }
    uint16_t first_owner = self->owners[0];
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        uint16_t next_owner = i + 1 < count ? self->owners[i + 1] : first_owner;
        if (self->owners[i] != next_owner || (i + 1 == count && kept == 0)) {
            self->positions[kept] = self->positions[i];
            self->owners[kept] = self->owners[i];
            kept++;
        }
    }
    assert (kept >= 1);
    self->point_count = kept;
}

static int
s_arc_compare (const void *left, const void *right)
{
    const s_arc_t *a = (const s_arc_t *) left;
    const s_arc_t *b = (const s_arc_t *) right;
    if (a->size != b->size) {
        return a->size > b->size ? -1 : 1; //  largest first
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

//  Moves `need` units of hash space from shard `from` to shard `to`: the
//  largest arcs of `from` that fit are relabelled whole, and what is left
//  is cut from the front of the largest arc that did not fit, by inserting
//  a point owned by `to`. Needs room for one more point; scratch holds
//  point_count entries. Returns the units moved.
static ring_i_u128
s_take (ring_t *self, size_t from, size_t to, ring_i_u128 need, s_arc_t *scratch)
{
    assert (from != to);
    if (need < S_MOVE_UNITS_MIN) {
        return 0;
    }
    size_t arcs = 0;
    for (size_t i = 0; i < self->point_count; i++) {
        if (self->owners[i] == from) {
            scratch[arcs++] = (s_arc_t){s_arc_size (self, i), i};
        }
    }
    qsort (scratch, arcs, sizeof (s_arc_t), s_arc_compare);
    ring_i_u128 moved = 0;
    size_t split = SIZE_MAX;
    for (size_t k = 0; k < arcs && need > 0; k++) {
        if (scratch[k].size <= need) {
            self->owners[scratch[k].index] = (uint16_t) to;
            need -= scratch[k].size;
            moved += scratch[k].size;
        } else if (split == SIZE_MAX) {
            split = scratch[k].index;
        }
    }
    if (need >= S_MOVE_UNITS_MIN && split != SIZE_MAX) {
        //  need < size of the split arc, so the new point lies strictly
        //  inside (prev, position]: unique, and the arc keeps a piece
        uint64_t position = s_prev_position (self, split) + (uint64_t) need;
        s_insert_point (self, position, to);
        moved += need;
    }
    return moved;
}

//  Target share of a weight, in units of hash space.
static ring_i_u128
s_target (double weight, double weight_total)
{
    double fraction = weight / weight_total;
    if (fraction >= 1.0) {
        return S_SPACE;
    }
    return (ring_i_u128) (fraction * 18446744073709551616.0);
}

static double
s_weight_total (const ring_t *self)
{
    double total = 0;
    for (size_t x = 0; x < self->shard_count; x++) {
        total += self->shards[x].weight;
    }
    return total;
}

static int
s_compare_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a;
    uint64_t y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

//  Places the seed points of the first shard of an empty ring: the first
//  `points` distinct hashes of "NAME#i", i = 0, 1, ... (at most
//  S_SEED_ATTEMPTS_EXTRA attempts beyond `points`). Gathered in rounds,
//  each sorted and deduplicated, so that seeding is O(P log P): each round
//  adds as many candidates as points are missing, so a round never holds
//  more than `points` distinct ones, and the set is the one that inserting
//  the hashes one by one, in order, would give.
static int
s_seed (ring_t *self, size_t owner, size_t points)
{
    assert (self->point_count == 0 && points <= self->point_capacity);
    const char *name = self->shards[owner].name;
    size_t attempts_max = points + S_SEED_ATTEMPTS_EXTRA;
    char key[RL_SHARD_NAME_SIZE_MAX + 24];
    size_t count = 0;
    size_t i = 0;
    while (count < points && i < attempts_max) {
        for (; count < points && i < attempts_max; i++) {
            int size = snprintf (key, sizeof key, "%s#%zu", name, i);
            assert (size > 0 && (size_t) size < sizeof key);
            self->positions[count++] = XXH3_64bits (key, (size_t) size);
        }
        qsort (self->positions, count, sizeof (uint64_t), s_compare_u64);
        size_t unique = 0;
        for (size_t k = 0; k < count; k++) {
            if (unique == 0 || self->positions[unique - 1] != self->positions[k]) {
                self->positions[unique++] = self->positions[k];
            }
        }
        count = unique;
    }
    for (size_t k = 0; k < count; k++) {
        self->owners[k] = (uint16_t) owner;
    }
    self->point_count = count;
    return self->point_count > 0 ? RING_OK : RING_ERR_INVALID;
}

//  Shard lookup by name ----------------------------------------------------

int
ring_shard_find (const ring_t *self, const char *name)
{
    assert (self);
    assert (name);
    for (size_t x = 0; x < self->shard_count; x++) {
        if (strncmp (self->shards[x].name, name, RL_SHARD_NAME_SIZE_MAX) == 0) {
            return (int) x;
        }
    }
    return -1;
}

//  Appends a shard record without points (ring, text and binary loaders).
int
ring_i_append_shard (ring_t *self, const char *name, const char *endpoint, double weight)
{
    if (!ring_i_name_valid (name) || !ring_i_endpoint_chars_valid (endpoint)
        || !ring_i_weight_valid (weight)) {
        return RING_ERR_INVALID;
    }
    if (ring_shard_find (self, name) >= 0) {
        return RING_ERR_EXISTS;
    }
    if (self->shard_count >= RL_SHARDS_MAX) {
        return RING_ERR_FULL;
    }
    int rc = s_reserve_shards (self, self->shard_count + 1);
    if (rc) {
        return rc;
    }
    ring_i_shard_t *shard = &self->shards[self->shard_count];
    memset (shard, 0, sizeof *shard);
    strcpy (shard->name, name);
    strcpy (shard->endpoint, endpoint);
    shard->weight = weight;
    self->owned[self->shard_count] = 0;
    self->shard_count++;
    return RING_OK;
}

//  Reserves what one transfer-based change needs: a point per shard plus
//  one, and scratch space for the arcs. On success *scratch_p is malloc'd.
static int
s_prepare_change (ring_t *self, s_arc_t **scratch_p)
{
    size_t points = self->point_count + self->shard_count + 1;
    if (points > RING_POINTS_MAX) {
        return RING_ERR_FULL;
    }
    int rc = ring_i_reserve_points (self, points);
    if (rc) {
        return rc;
    }
    *scratch_p = (s_arc_t *) malloc (points * sizeof (s_arc_t));
    return *scratch_p ? RING_OK : RING_ERR_NOMEM;
}

static void
s_finish_change (ring_t *self, s_arc_t **scratch_p)
{
    free (*scratch_p);
    *scratch_p = NULL;
    s_compact (self);
    ring_i_recount (self);
}

//  Changes ---------------------------------------------------------------------

static int
s_add_first (ring_t *self, const char *name, const char *endpoint, double weight)
{
    double points_real = round ((double) self->points_per_weight * weight);
    size_t points = points_real < 1 ? 1 : (size_t) points_real;
    if (points > RING_POINTS_MAX) {
        return RING_ERR_FULL;
    }
    int rc = ring_i_reserve_points (self, points);
    if (rc == RING_OK) {
        rc = ring_i_append_shard (self, name, endpoint, weight);
    }
    if (rc == RING_OK) {
        rc = s_seed (self, 0, points);
        assert (rc == RING_OK); //  a first attempt always lands
        ring_i_recount (self);
    }
    return rc;
}

int
ring_add_shard (ring_t *self, const char *name, const char *endpoint, double weight)
{
    assert (self);
    assert (name && endpoint);
    if (!ring_i_name_valid (name) || !ring_i_endpoint_valid (endpoint)
        || !ring_i_weight_valid (weight)) {
        return RING_ERR_INVALID;
    }
    if (ring_shard_find (self, name) >= 0) {
        return RING_ERR_EXISTS;
    }
    if (self->shard_count == 0) {
        return s_add_first (self, name, endpoint, weight);
    }
    s_arc_t *scratch = NULL;
    int rc = s_prepare_change (self, &scratch);
    if (rc == RING_OK) {
        rc = ring_i_append_shard (self, name, endpoint, weight);
    }
    if (rc) {
        free (scratch);
        return rc;
    }
    size_t added = self->shard_count - 1;
    double total = s_weight_total (self);
    for (size_t x = 0; x < added; x++) {
        ring_i_u128 target = s_target (self->shards[x].weight, total);
        if (self->owned[x] > target) {
            s_take (self, x, added, self->owned[x] - target, scratch);
        }
    }
    s_finish_change (self, &scratch);
    assert (ring_shard_point_count (self, added) > 0);
    return RING_OK;
}

//  Order of shards by deficit (largest first), for giving space away.
typedef struct {
    ring_i_u128 deficit;
    size_t index;
} s_deficit_t;

static int
s_deficit_compare (const void *left, const void *right)
{
    const s_deficit_t *a = (const s_deficit_t *) left;
    const s_deficit_t *b = (const s_deficit_t *) right;
    if (a->deficit != b->deficit) {
        return a->deficit > b->deficit ? -1 : 1;
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

//  Gives `amount` of shard s's space (all of it when everything is set) to
//  the other shards by deficit against the targets for weight_total.
//  Returns RING_ERR_NOMEM before changing anything if out of memory.
static int
s_give_away (ring_t *self, size_t s, ring_i_u128 amount, int everything, s_arc_t *scratch)
{
    s_deficit_t *order = (s_deficit_t *) malloc (self->shard_count * sizeof (s_deficit_t));
    if (!order) {
        return RING_ERR_NOMEM;
    }
    double total = s_weight_total (self) - (everything ? self->shards[s].weight : 0);
    size_t others = 0;
    for (size_t y = 0; y < self->shard_count; y++) {
        if (y != s) {
            ring_i_u128 target = s_target (self->shards[y].weight, total);
            ring_i_u128 deficit = target > self->owned[y] ? target - self->owned[y] : 0;
            order[others++] = (s_deficit_t){deficit, y};
        }
    }
    assert (others > 0);
    qsort (order, others, sizeof (s_deficit_t), s_deficit_compare);
    for (size_t k = 0; k < others; k++) {
        int last = everything && k + 1 == others;
        ring_i_u128 need = last ? S_SPACE : (order[k].deficit < amount ? order[k].deficit : amount);
        ring_i_u128 moved = s_take (self, s, order[k].index, need, scratch);
        amount = moved < amount ? amount - moved : 0;
    }
    free (order);
    return RING_OK;
}

//  Removes shard index s, which owns no points, and renumbers the owners.
static void
s_drop_shard (ring_t *self, size_t s)
{
    for (size_t i = 0; i < self->point_count; i++) {
        assert (self->owners[i] != s);
        if (self->owners[i] > s) {
            self->owners[i]--;
        }
    }
    size_t tail = self->shard_count - s - 1;
    memmove (self->shards + s, self->shards + s + 1, tail * sizeof (ring_i_shard_t));
    memmove (self->owned + s, self->owned + s + 1, tail * sizeof (ring_i_u128));
    self->shard_count--;
}

int
ring_remove_shard (ring_t *self, const char *name)
{
    assert (self);
    assert (name);
    int found = ring_shard_find (self, name);
    if (found < 0) {
        return RING_ERR_NOT_FOUND;
    }
    size_t s = (size_t) found;
    if (self->shard_count == 1) {
        self->point_count = 0;
        self->shard_count = 0;
        return RING_OK;
    }
    s_arc_t *scratch = NULL;
    int rc = s_prepare_change (self, &scratch);
    if (rc == RING_OK) {
        rc = s_give_away (self, s, self->owned[s], 1, scratch);
    }
    if (rc) {
        free (scratch);
        return rc;
    }
    s_drop_shard (self, s);
    s_finish_change (self, &scratch);
    return RING_OK;
}

int
ring_reweight_shard (ring_t *self, const char *name, double weight)
{
    assert (self);
    assert (name);
    int found = ring_shard_find (self, name);
    if (found < 0) {
        return RING_ERR_NOT_FOUND;
    }
    if (!ring_i_weight_valid (weight)) {
        return RING_ERR_INVALID;
    }
    size_t s = (size_t) found;
    s_arc_t *scratch = NULL;
    int rc = s_prepare_change (self, &scratch);
    if (rc) {
        return rc;
    }
    double weight_old = self->shards[s].weight;
    self->shards[s].weight = weight;
    ring_i_u128 target = s_target (weight, s_weight_total (self));
    if (self->owned[s] > target && self->shard_count > 1) {
        rc = s_give_away (self, s, self->owned[s] - target, 0, scratch);
    } else if (self->owned[s] < target) {
        double total = s_weight_total (self);
        for (size_t x = 0; x < self->shard_count; x++) {
            ring_i_u128 target_x = s_target (self->shards[x].weight, total);
            if (x != s && self->owned[x] > target_x) {
                s_take (self, x, s, self->owned[x] - target_x, scratch);
            }
        }
    }
    if (rc) {
        self->shards[s].weight = weight_old;
        free (scratch);
        return rc;
    }
    s_finish_change (self, &scratch);
    return RING_OK;
}

int
ring_set_endpoint (ring_t *self, const char *name, const char *endpoint)
{
    assert (self);
    assert (name && endpoint);
    int found = ring_shard_find (self, name);
    if (found < 0) {
        return RING_ERR_NOT_FOUND;
    }
    if (!ring_i_endpoint_valid (endpoint)) {
        return RING_ERR_INVALID;
    }
    ring_i_shard_t *shard = &self->shards[found];
    memset (shard->endpoint, 0, sizeof shard->endpoint);
    strcpy (shard->endpoint, endpoint);
    return RING_OK;
}

int
ring_set_key (ring_t *self, const char *name, const char *key)
{
    assert (self);
    assert (name && key);
    int found = ring_shard_find (self, name);
    if (found < 0) {
        return RING_ERR_NOT_FOUND;
    }
    if (*key && !ring_i_key_valid (key)) {
        return RING_ERR_INVALID;
    }
    ring_i_shard_t *shard = &self->shards[found];
    memset (shard->key, 0, sizeof shard->key);
    strcpy (shard->key, key);
    return RING_OK;
}

//  Queries -------------------------------------------------------------------

size_t
ring_shard_count (const ring_t *self)
{
    assert (self);
    return self->shard_count;
}

const char *
ring_shard_name (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->shard_count);
    return self->shards[index].name;
}

const char *
ring_shard_endpoint (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->shard_count);
    return self->shards[index].endpoint;
}

double
ring_shard_weight (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->shard_count);
    return self->shards[index].weight;
}

const char *
ring_shard_key (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->shard_count);
    return self->shards[index].key;
}

int
ring_shard_find_key (const ring_t *self, const char *key)
{
    assert (self);
    assert (key);
    if (!*key) {
        return -1;
    }
    for (size_t x = 0; x < self->shard_count; x++) {
        if (strcmp (self->shards[x].key, key) == 0) {
            return (int) x;
        }
    }
    return -1;
}

double
ring_shard_ownership (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->shard_count);
    return (double) self->owned[index] / 18446744073709551616.0;
}

size_t
ring_shard_point_count (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->shard_count);
    size_t count = 0;
    for (size_t i = 0; i < self->point_count; i++) {
        count += self->owners[i] == index;
    }
    return count;
}

size_t
ring_point_count (const ring_t *self)
{
    assert (self);
    return self->point_count;
}

uint64_t
ring_point_position (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->point_count);
    return self->positions[index];
}

size_t
ring_point_owner (const ring_t *self, size_t index)
{
    assert (self);
    assert (index < self->point_count);
    return self->owners[index];
}

uint64_t
ring_point_of_id (const void *id16)
{
    assert (id16);
    return XXH3_64bits (id16, RL_ID_SIZE);
}

int
ring_lookup (const ring_t *self, uint64_t point)
{
    assert (self);
    if (self->point_count == 0) {
        return -1;
    }
    size_t at = s_lower_bound (self->positions, self->point_count, point);
    return self->owners[at == self->point_count ? 0 : at];
}

int
ring_lookup_id (const ring_t *self, const void *id16)
{
    assert (self);
    assert (id16);
    return ring_lookup (self, ring_point_of_id (id16));
}

//  Ring points [from, to] (indexes) owned by shard, into *mine and *seen.
static void
s_share_count (const ring_t *self, size_t from, size_t to, int shard, size_t *mine, size_t *seen)
{
    for (size_t at = from; at <= to && at < self->point_count; at++) {
        (*seen)++;
        *mine += self->owners[at] == shard;
    }
}

//  A point x belongs to the first ring point at or after x (the smallest
//  when none is). So the points of (start, end] belong to the ring points
//  with positions in it and to the first at or after end; for an arc that
//  wraps (start > end), to those after start and those up to end's.
ring_share_t
ring_arc_share (const ring_t *self, uint64_t start, uint64_t end, int shard)
{
    assert (self);
    size_t count = self->point_count;
    if (count == 0) {
        return RING_SHARE_NONE;
    }
    size_t mine = 0, seen = 0;
    size_t after_start = start == UINT64_MAX ? count
                                             : s_lower_bound (self->positions, count, start + 1);
    size_t at_end = s_lower_bound (self->positions, count, end);
    if (start == end) {
        s_share_count (self, 0, count - 1, shard, &mine, &seen); //  the whole space
    } else if (start < end) {
        s_share_count (self, after_start, at_end, shard, &mine, &seen);
        if (at_end == count) {
            s_share_count (self, 0, 0, shard, &mine, &seen); //  end past the last point
        }
    } else {
        s_share_count (self, after_start, count - 1, shard, &mine, &seen);
        s_share_count (self, 0, at_end == count ? count - 1 : at_end, shard, &mine, &seen);
    }
    assert (seen > 0);
    return mine == 0 ? RING_SHARE_NONE : mine == seen ? RING_SHARE_ALL : RING_SHARE_PART;
}

double
ring_imbalance (const ring_t *self)
{
    assert (self);
    double total = s_weight_total (self);
    double worst = 0;
    for (size_t x = 0; x < self->shard_count; x++) {
        double ratio = ring_shard_ownership (self, x) / (self->shards[x].weight / total);
        worst = ratio > worst ? ratio : worst;
    }
    return worst;
}
