/*  ring.c: the consistent-hash ring: points, weights, placement, lookup,
    text and binary forms, and the diff of two rings.

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

    LIMITATIONS
    Every change costs O(points x log points) (sorting arcs). Lookup is a
    binary search over a u64 array: O(log points), no allocation. Rings
    loaded from files built elsewhere (say with random points) are only as
    balanced as their points; the next change moves toward the targets only
    for the shards it touches.
*/
#include "ring.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

typedef unsigned __int128 s_u128;

#define S_SPACE               ((s_u128) 1 << 64) //  units of hash space in the ring
#define S_MOVE_UNITS_MIN      ((s_u128) 1 << 20) //  smaller transfers are rounding noise
#define S_SEED_ATTEMPTS_EXTRA 64                 //  hash attempts beyond P when seeding

typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    double weight;
} s_shard_t;

struct ring_t {
    uint64_t epoch;             //  carried, never bumped here
    uint32_t points_per_weight; //  seed points per unit of weight
    size_t shard_count;
    size_t shard_capacity;
    s_shard_t *shards; //  [shard_capacity]
    s_u128 *owned;     //  [shard_capacity] units of hash space owned
    size_t point_count;
    size_t point_capacity;
    uint64_t *positions; //  [point_capacity] sorted, unique
    uint16_t *owners;    //  [point_capacity] shard index of each point
};

//  One arc of a shard, for sorting by size.
typedef struct {
    s_u128 size;  //  units of hash space
    size_t index; //  point index
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
    s_shard_t *shards = (s_shard_t *) realloc (self->shards, capacity * sizeof (s_shard_t));
    if (!shards) {
        return RING_ERR_NOMEM;
    }
    self->shards = shards;
    s_u128 *owned = (s_u128 *) realloc (self->owned, capacity * sizeof (s_u128));
    if (!owned) {
        return RING_ERR_NOMEM;
    }
    self->owned = owned;
    self->shard_capacity = capacity;
    return RING_OK;
}

static int
s_reserve_points (ring_t *self, size_t count)
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
    if (s_reserve_shards (copy, self->shard_count) || s_reserve_points (copy, self->point_count)) {
        ring_destroy (&copy);
        return NULL;
    }
    if (self->shard_count) {
        memcpy (copy->shards, self->shards, self->shard_count * sizeof (s_shard_t));
        memcpy (copy->owned, self->owned, self->shard_count * sizeof (s_u128));
    }
    if (self->point_count) {
        memcpy (copy->positions, self->positions, self->point_count * sizeof (uint64_t));
        memcpy (copy->owners, self->owners, self->point_count * sizeof (uint16_t));
    }
    copy->shard_count = self->shard_count;
    copy->point_count = self->point_count;
    return copy;
}

const char *
ring_strerror (int rc)
{
    switch (rc) {
        case RING_OK:
            return "ok";
        case RING_ERR_NOMEM:
            return "out of memory";
        case RING_ERR_EXISTS:
            return "a shard of that name already exists";
        case RING_ERR_NOT_FOUND:
            return "no shard of that name";
        case RING_ERR_INVALID:
            return "invalid name, endpoint or weight";
        case RING_ERR_FULL:
            return "too many shards or points";
        case RING_ERR_PARSE:
            return "malformed ring";
        case RING_ERR_IO:
            return "input/output error (see errno)";
        default:
            return "unknown error";
    }
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

//  Validation of names, endpoints and weights ------------------------------

//  Shard names: 1..31 bytes of [A-Za-z0-9._-], so they are safe in the
//  text form, in JSON, and on a command line.
static int
s_name_valid (const char *name)
{
    size_t size = strnlen (name, RL_SHARD_NAME_SIZE_MAX);
    if (size == 0 || size >= RL_SHARD_NAME_SIZE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) name[i];
        if (!isalnum (c) && c != '.' && c != '_' && c != '-') {
            return 0;
        }
    }
    return 1;
}

//  Endpoints: 1..127 bytes of printable ASCII, no space, quote or backslash.
static int
s_endpoint_valid (const char *endpoint)
{
    size_t size = strnlen (endpoint, RL_ENDPOINT_SIZE_MAX);
    if (size == 0 || size >= RL_ENDPOINT_SIZE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) endpoint[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\') {
            return 0;
        }
    }
    return 1;
}

static int
s_weight_valid (double weight)
{
    return isfinite (weight) && weight >= RING_WEIGHT_MIN && weight <= RL_RING_WEIGHT_MAX;
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
static s_u128
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

static void
s_recount (ring_t *self)
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
static s_u128
s_take (ring_t *self, size_t from, size_t to, s_u128 need, s_arc_t *scratch)
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
    s_u128 moved = 0;
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
static s_u128
s_target (double weight, double weight_total)
{
    double fraction = weight / weight_total;
    if (fraction >= 1.0) {
        return S_SPACE;
    }
    return (s_u128) (fraction * 18446744073709551616.0);
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

//  Places the seed points of the first shard of an empty ring.
static int
s_seed (ring_t *self, size_t owner, size_t points)
{
    const char *name = self->shards[owner].name;
    size_t attempts_max = points + S_SEED_ATTEMPTS_EXTRA;
    char key[RL_SHARD_NAME_SIZE_MAX + 24];
    for (size_t i = 0; i < attempts_max && self->point_count < points; i++) {
        int size = snprintf (key, sizeof key, "%s#%zu", name, i);
        assert (size > 0 && (size_t) size < sizeof key);
        uint64_t position = XXH3_64bits (key, (size_t) size);
        size_t at = s_lower_bound (self->positions, self->point_count, position);
        if (at == self->point_count || self->positions[at] != position) {
            s_insert_point (self, position, owner);
        }
    }
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
static int
s_append_shard (ring_t *self, const char *name, const char *endpoint, double weight)
{
    if (!s_name_valid (name) || !s_endpoint_valid (endpoint) || !s_weight_valid (weight)) {
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
    s_shard_t *shard = &self->shards[self->shard_count];
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
    int rc = s_reserve_points (self, points);
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
    s_recount (self);
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
    int rc = s_reserve_points (self, points);
    if (rc == RING_OK) {
        rc = s_append_shard (self, name, endpoint, weight);
    }
    if (rc == RING_OK) {
        rc = s_seed (self, 0, points);
        assert (rc == RING_OK); //  a first attempt always lands
        s_recount (self);
    }
    return rc;
}

int
ring_add_shard (ring_t *self, const char *name, const char *endpoint, double weight)
{
    assert (self);
    assert (name && endpoint);
    if (!s_name_valid (name) || !s_endpoint_valid (endpoint) || !s_weight_valid (weight)) {
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
        rc = s_append_shard (self, name, endpoint, weight);
    }
    if (rc) {
        free (scratch);
        return rc;
    }
    size_t added = self->shard_count - 1;
    double total = s_weight_total (self);
    for (size_t x = 0; x < added; x++) {
        s_u128 target = s_target (self->shards[x].weight, total);
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
    s_u128 deficit;
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
s_give_away (ring_t *self, size_t s, s_u128 amount, int everything, s_arc_t *scratch)
{
    s_deficit_t *order = (s_deficit_t *) malloc (self->shard_count * sizeof (s_deficit_t));
    if (!order) {
        return RING_ERR_NOMEM;
    }
    double total = s_weight_total (self) - (everything ? self->shards[s].weight : 0);
    size_t others = 0;
    for (size_t y = 0; y < self->shard_count; y++) {
        if (y != s) {
            s_u128 target = s_target (self->shards[y].weight, total);
            s_u128 deficit = target > self->owned[y] ? target - self->owned[y] : 0;
            order[others++] = (s_deficit_t){deficit, y};
        }
    }
    assert (others > 0);
    qsort (order, others, sizeof (s_deficit_t), s_deficit_compare);
    for (size_t k = 0; k < others; k++) {
        int last = everything && k + 1 == others;
        s_u128 need = last ? S_SPACE : (order[k].deficit < amount ? order[k].deficit : amount);
        s_u128 moved = s_take (self, s, order[k].index, need, scratch);
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
    memmove (self->shards + s, self->shards + s + 1, tail * sizeof (s_shard_t));
    memmove (self->owned + s, self->owned + s + 1, tail * sizeof (s_u128));
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
    if (!s_weight_valid (weight)) {
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
    s_u128 target = s_target (weight, s_weight_total (self));
    if (self->owned[s] > target && self->shard_count > 1) {
        rc = s_give_away (self, s, self->owned[s] - target, 0, scratch);
    } else if (self->owned[s] < target) {
        double total = s_weight_total (self);
        for (size_t x = 0; x < self->shard_count; x++) {
            s_u128 target_x = s_target (self->shards[x].weight, total);
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
    if (!s_endpoint_valid (endpoint)) {
        return RING_ERR_INVALID;
    }
    s_shard_t *shard = &self->shards[found];
    memset (shard->endpoint, 0, sizeof shard->endpoint);
    strcpy (shard->endpoint, endpoint);
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

//  Text form -------------------------------------------------------------------
//
//  # comment                                   (whole lines only)
//  epoch 7                                     (exactly once)
//  points_per_weight 128                       (at most once)
//  shard NAME ENDPOINT weight W                (before the points naming it)
//  point 0123456789abcdef NAME                 (16 hex digits, any order)

static void
s_error (char *err, size_t err_size, int line, const char *format, ...)
{
    if (!err || err_size == 0) {
        return;
    }
    int size = line > 0 ? snprintf (err, err_size, "line %d: ", line) : 0;
    if (size < 0 || (size_t) size >= err_size) {
        return;
    }
    va_list args;
    va_start (args, format);
    vsnprintf (err + size, err_size - (size_t) size, format, args);
    va_end (args);
}

#define S_TOKENS_MAX 8

typedef struct {
    uint64_t position;
    uint16_t owner;
    int line;
} s_text_point_t;

typedef struct {
    char *err;
    size_t err_size;
    int line;               //  current line number, from 1
    int epoch_line;         //  line of the epoch key, 0 if none yet
    int ppw_line;           //  line of points_per_weight, 0 if none yet
    ring_t *ring;           //  shards as declared, no points yet
    int *shard_lines;       //  [RL_SHARDS_MAX] line of each shard
    s_text_point_t *points; //  points as read
    size_t point_count;
    size_t point_capacity;
} s_parser_t;

static int
s_parse_u64 (const char *token, uint64_t *value_p)
{
    if (!isdigit ((unsigned char) token[0])) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (token, &end, 10);
    if (errno || *end) {
        return -1;
    }
    *value_p = value;
    return 0;
}

static int
s_parse_hex64 (const char *token, uint64_t *value_p)
{
    if (strlen (token) != 16) {
        return -1;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < 16; i++) {
        int c = tolower ((unsigned char) token[i]);
        if (!isxdigit (c)) {
            return -1;
        }
        value = (value << 4) | (uint64_t) (isdigit (c) ? c - '0' : c - 'a' + 10);
    }
    *value_p = value;
    return 0;
}

static int
s_expect_tokens (s_parser_t *parser, size_t count, size_t expected, const char *usage)
{
    if (count < expected) {
        s_error (parser->err, parser->err_size, parser->line, "truncated line, expected '%s'",
                 usage);
        return -1;
    }
    if (count > expected) {
        s_error (parser->err, parser->err_size, parser->line, "extra tokens, expected '%s'", usage);
        return -1;
    }
    return 0;
}

static int
s_parse_epoch (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 2, "epoch N")) {
        return -1;
    }
    uint64_t epoch;
    if (parser->epoch_line) {
        s_error (parser->err, parser->err_size, parser->line,
                 "duplicate 'epoch' (first on line %d)", parser->epoch_line);
        return -1;
    }
    if (s_parse_u64 (tokens[1], &epoch)) {
        s_error (parser->err, parser->err_size, parser->line,
                 "epoch '%s' is not a decimal number below 2^64", tokens[1]);
        return -1;
    }
    parser->epoch_line = parser->line;
    ring_set_epoch (parser->ring, epoch);
    return 0;
}

static int
s_parse_ppw (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 2, "points_per_weight N")) {
        return -1;
    }
    uint64_t value;
    if (parser->ppw_line) {
        s_error (parser->err, parser->err_size, parser->line,
                 "duplicate 'points_per_weight' (first on line %d)", parser->ppw_line);
        return -1;
    }
    if (s_parse_u64 (tokens[1], &value) || value < 1 || value > RING_POINTS_PER_WEIGHT_MAX) {
        s_error (parser->err, parser->err_size, parser->line,
                 "points_per_weight '%s' is not a number in 1..%d", tokens[1],
                 RING_POINTS_PER_WEIGHT_MAX);
        return -1;
    }
    parser->ppw_line = parser->line;
    ring_set_points_per_weight (parser->ring, (uint32_t) value);
    return 0;
}

static int
s_check_name (s_parser_t *parser, const char *name)
{
    if (strlen (name) >= RL_SHARD_NAME_SIZE_MAX) {
        s_error (parser->err, parser->err_size, parser->line,
                 "shard name '%.40s...' is longer than %d bytes", name, RL_SHARD_NAME_SIZE_MAX - 1);
        return -1;
    }
    if (!s_name_valid (name)) {
        s_error (parser->err, parser->err_size, parser->line,
                 "shard name '%s' may hold only letters, digits, '.', '_' and '-'", name);
        return -1;
    }
    return 0;
}

static int
s_parse_shard (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 5, "shard NAME ENDPOINT weight W")) {
        return -1;
    }
    if (s_check_name (parser, tokens[1])) {
        return -1;
    }
    int other = ring_shard_find (parser->ring, tokens[1]);
    if (other >= 0) {
        s_error (parser->err, parser->err_size, parser->line,
                 "duplicate shard '%s' (first on line %d)", tokens[1], parser->shard_lines[other]);
        return -1;
    }
    if (!s_endpoint_valid (tokens[2])) {
        s_error (parser->err, parser->err_size, parser->line,
                 "endpoint of shard '%s' must be 1..%d printable bytes without quotes", tokens[1],
                 RL_ENDPOINT_SIZE_MAX - 1);
        return -1;
    }
    char *end = NULL;
    double weight = strtod (tokens[4], &end);
    if (strcmp (tokens[3], "weight") || *end || !s_weight_valid (weight)) {
        s_error (parser->err, parser->err_size, parser->line,
                 "expected 'weight W' with W a number in %g..%g, got '%s %s'", RING_WEIGHT_MIN,
                 RL_RING_WEIGHT_MAX, tokens[3], tokens[4]);
        return -1;
    }
    if (ring_shard_count (parser->ring) >= RL_SHARDS_MAX) {
        s_error (parser->err, parser->err_size, parser->line, "more than %d shards", RL_SHARDS_MAX);
        return -1;
    }
    parser->shard_lines[ring_shard_count (parser->ring)] = parser->line;
    int rc = s_append_shard (parser->ring, tokens[1], tokens[2], weight);
    if (rc) {
        s_error (parser->err, parser->err_size, parser->line, "%s", ring_strerror (rc));
        return -1;
    }
    return 0;
}

static int
s_parse_point (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 3, "point HEX16 NAME")) {
        return -1;
    }
    uint64_t position;
    if (s_parse_hex64 (tokens[1], &position)) {
        s_error (parser->err, parser->err_size, parser->line,
                 "point position '%s' is not 16 hex digits", tokens[1]);
        return -1;
    }
    int owner = ring_shard_find (parser->ring, tokens[2]);
    if (owner < 0) {
        s_error (parser->err, parser->err_size, parser->line,
                 "point names unknown shard '%s' (declare it above with a 'shard' line)",
                 tokens[2]);
        return -1;
    }
    if (parser->point_count == parser->point_capacity) {
        if (parser->point_count >= RING_POINTS_MAX) {
            s_error (parser->err, parser->err_size, parser->line, "more than %zu points",
                     (size_t) RING_POINTS_MAX);
            return -1;
        }
        size_t capacity = parser->point_capacity ? parser->point_capacity * 2 : 256;
        void *points = realloc (parser->points, capacity * sizeof (s_text_point_t));
        if (!points) {
            s_error (parser->err, parser->err_size, parser->line, "out of memory");
            return -1;
        }
        parser->points = (s_text_point_t *) points;
        parser->point_capacity = capacity;
    }
    parser->points[parser->point_count++] = (s_text_point_t){position, (uint16_t) owner,
                                                             parser->line};
    return 0;
}

//  Splits a line in place into tokens; returns the count (S_TOKENS_MAX + 1
//  means "more than S_TOKENS_MAX").
static size_t
s_tokenize (char *line, char **tokens)
{
    size_t count = 0;
    char *cursor = line;
    while (*cursor) {
        while (*cursor == ' ' || *cursor == '\t') {
            *cursor++ = 0;
        }
        if (!*cursor) {
            break;
        }
        if (count == S_TOKENS_MAX) {
            return S_TOKENS_MAX + 1;
        }
        tokens[count++] = cursor;
        while (*cursor && *cursor != ' ' && *cursor != '\t') {
            cursor++;
        }
    }
    return count;
}

static int
s_parse_line (s_parser_t *parser, char *line)
{
    char *tokens[S_TOKENS_MAX];
    size_t count = s_tokenize (line, tokens);
    if (count == 0 || tokens[0][0] == '#') {
        return 0;
    }
    if (strcmp (tokens[0], "epoch") == 0) {
        return s_parse_epoch (parser, tokens, count);
    }
    if (strcmp (tokens[0], "points_per_weight") == 0) {
        return s_parse_ppw (parser, tokens, count);
    }
    if (strcmp (tokens[0], "shard") == 0) {
        return s_parse_shard (parser, tokens, count);
    }
    if (strcmp (tokens[0], "point") == 0) {
        return s_parse_point (parser, tokens, count);
    }
    s_error (parser->err, parser->err_size, parser->line,
             "unknown key '%.40s' (expected epoch, points_per_weight, shard or point)", tokens[0]);
    return -1;
}

static int
s_text_point_compare (const void *left, const void *right)
{
    const s_text_point_t *a = (const s_text_point_t *) left;
    const s_text_point_t *b = (const s_text_point_t *) right;
    if (a->position != b->position) {
        return a->position < b->position ? -1 : 1;
    }
    return a->line < b->line ? -1 : a->line > b->line;
}

//  Moves the parsed points into the ring after checking them.
static int
s_install_points (s_parser_t *parser)
{
    ring_t *ring = parser->ring;
    qsort (parser->points, parser->point_count, sizeof (s_text_point_t), s_text_point_compare);
    if (s_reserve_points (ring, parser->point_count)) {
        s_error (parser->err, parser->err_size, parser->line, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < parser->point_count; i++) {
        const s_text_point_t *point = &parser->points[i];
        if (i > 0 && point->position == parser->points[i - 1].position) {
            s_error (parser->err, parser->err_size, point->line,
                     "duplicate point position %016" PRIx64 " (also on line %d)", point->position,
                     parser->points[i - 1].line);
            return -1;
        }
        ring->positions[i] = point->position;
        ring->owners[i] = point->owner;
    }
    ring->point_count = parser->point_count;
    for (size_t x = 0; x < ring->shard_count; x++) {
        if (ring_shard_point_count (ring, x) == 0) {
            s_error (parser->err, parser->err_size, parser->shard_lines[x],
                     "shard '%s' has no points", ring->shards[x].name);
            return -1;
        }
    }
    s_recount (ring);
    return 0;
}

//  A ring file with shards and no point lines: add the shards in file order.
static int
s_build_points (s_parser_t *parser)
{
    ring_t *built = ring_new (ring_epoch (parser->ring));
    if (!built) {
        s_error (parser->err, parser->err_size, parser->line, "out of memory");
        return -1;
    }
    built->points_per_weight = parser->ring->points_per_weight;
    for (size_t x = 0; x < parser->ring->shard_count; x++) {
        const s_shard_t *shard = &parser->ring->shards[x];
        int rc = ring_add_shard (built, shard->name, shard->endpoint, shard->weight);
        if (rc) {
            s_error (parser->err, parser->err_size, parser->shard_lines[x],
                     "cannot place shard '%s': %s", shard->name, ring_strerror (rc));
            ring_destroy (&built);
            return -1;
        }
    }
    ring_destroy (&parser->ring);
    parser->ring = built;
    return 0;
}

static int
s_parse_finish (s_parser_t *parser)
{
    if (!parser->epoch_line) {
        s_error (parser->err, parser->err_size, parser->line,
                 "end of ring without an 'epoch N' line");
        return -1;
    }
    if (parser->ring->shard_count == 0) {
        s_error (parser->err, parser->err_size, parser->line,
                 "end of ring without shards (add 'shard NAME ENDPOINT weight W' lines)");
        return -1;
    }
    if (parser->point_count == 0) {
        return s_build_points (parser);
    }
    return s_install_points (parser);
}

static int
s_parse_lines (s_parser_t *parser, const char *text)
{
    char line[RING_TEXT_LINE_SIZE_MAX + 1];
    const char *cursor = text;
    while (*cursor) {
        parser->line++;
        const char *newline = strchr (cursor, '\n');
        size_t size = newline ? (size_t) (newline - cursor) : strlen (cursor);
        if (size > 0 && cursor[size - 1] == '\r') {
            size--;
        }
        if (size > RING_TEXT_LINE_SIZE_MAX) {
            s_error (parser->err, parser->err_size, parser->line, "line longer than %d bytes",
                     RING_TEXT_LINE_SIZE_MAX);
            return -1;
        }
        memcpy (line, cursor, size);
        line[size] = 0;
        if (s_parse_line (parser, line)) {
            return -1;
        }
        cursor = newline ? newline + 1 : cursor + strlen (cursor);
    }
    return 0;
}

ring_t *
ring_from_text (const char *text, char *err, size_t err_size)
{
    assert (text);
    s_parser_t parser = {.err = err, .err_size = err_size};
    s_error (err, err_size, 0, "no error");
    parser.ring = ring_new (0);
    parser.shard_lines = (int *) calloc (RL_SHARDS_MAX, sizeof (int));
    int rc = -1;
    if (!parser.ring || !parser.shard_lines) {
        s_error (err, err_size, 0, "out of memory");
    } else if (s_parse_lines (&parser, text) == 0) {
        rc = s_parse_finish (&parser);
    }
    free (parser.shard_lines);
    free (parser.points);
    if (rc) {
        ring_destroy (&parser.ring);
    }
    return parser.ring;
}

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
    int failed;
} s_buffer_t;

static void
s_append (s_buffer_t *buffer, const char *format, ...)
{
    if (buffer->failed) {
        return;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list args;
        va_start (args, format);
        size_t room = buffer->capacity - buffer->size;
        int size = vsnprintf (buffer->data + buffer->size, room, format, args);
        va_end (args);
        if (size < 0) {
            buffer->failed = 1;
            return;
        }
        if ((size_t) size < room) {
            buffer->size += (size_t) size;
            return;
        }
        size_t capacity = buffer->capacity * 2 + (size_t) size + 1;
        char *data = (char *) realloc (buffer->data, capacity);
        if (!data) {
            buffer->failed = 1;
            return;
        }
        buffer->data = data;
        buffer->capacity = capacity;
    }
}

//  Shortest of %.15g and %.17g that reads back to the same double.
static void
s_format_weight (double weight, char *out, size_t out_size)
{
    snprintf (out, out_size, "%.15g", weight);
    if (strtod (out, NULL) != weight) {
        snprintf (out, out_size, "%.17g", weight);
    }
}

char *
ring_to_text (const ring_t *self)
{
    assert (self);
    s_buffer_t buffer = {NULL, 0, 0, 0};
    buffer.capacity = 256 + self->shard_count * 200 + self->point_count * 56;
    buffer.data = (char *) malloc (buffer.capacity);
    if (!buffer.data) {
        return NULL;
    }
    buffer.data[0] = 0;
    s_append (&buffer, "# ringledger ring: %zu shards, %zu points (docs/ring.md)\n",
              self->shard_count, self->point_count);
    s_append (&buffer, "epoch %" PRIu64 "\n", self->epoch);
    s_append (&buffer, "points_per_weight %" PRIu32 "\n", self->points_per_weight);
    for (size_t x = 0; x < self->shard_count; x++) {
        char weight[40];
        s_format_weight (self->shards[x].weight, weight, sizeof weight);
        s_append (&buffer, "shard %s %s weight %s\n", self->shards[x].name,
                  self->shards[x].endpoint, weight);
    }
    for (size_t i = 0; i < self->point_count; i++) {
        s_append (&buffer, "point %016" PRIx64 " %s\n", self->positions[i],
                  self->shards[self->owners[i]].name);
    }
    if (buffer.failed) {
        free (buffer.data);
        return NULL;
    }
    return buffer.data;
}

//  Reads a whole file, NUL-terminated; NULL with err set on failure.
static char *
s_read_file (const char *path, char *err, size_t err_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        s_error (err, err_size, 0, "%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    char *data = (char *) malloc (RING_TEXT_FILE_SIZE_MAX + 1);
    size_t size = data ? fread (data, 1, RING_TEXT_FILE_SIZE_MAX + 1, file) : 0;
    int failed = !data || ferror (file);
    fclose (file);
    if (failed || size > RING_TEXT_FILE_SIZE_MAX || memchr (data, 0, size)) {
        s_error (err, err_size, 0, "%s: %s", path,
                 failed ? "cannot read" : "larger than the limit or holds NUL bytes");
        free (data);
        return NULL;
    }
    data[size] = 0;
    return data;
}

ring_t *
ring_load_file (const char *path, char *err, size_t err_size)
{
    assert (path);
    char *text = s_read_file (path, err, err_size);
    if (!text) {
        return NULL;
    }
    char message[256];
    ring_t *ring = ring_from_text (text, message, sizeof message);
    free (text);
    if (!ring) {
        s_error (err, err_size, 0, "%s: %s", path, message);
    }
    return ring;
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            errno = written < 0 ? errno : EIO;
            return -1;
        }
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

static int
s_sync_directory (const char *path)
{
    char copy[4096];
    if (strlen (path) >= sizeof copy) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy (copy, path);
    int fd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

//  Writes text to temp, syncs it and renames it to path; -1 with errno.
static int
s_replace_file (const char *temp, const char *path, const char *text)
{
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    int rc = s_write_all (fd, text, strlen (text));
    if (rc == 0) {
        rc = fsync (fd);
    }
    int saved = errno;
    if (close (fd) && rc == 0) {
        saved = errno;
        rc = -1;
    }
    if (rc == 0 && rename (temp, path)) {
        saved = errno;
        rc = -1;
    }
    if (rc) {
        unlink (temp);
        errno = saved;
        return -1;
    }
    return s_sync_directory (path);
}

int
ring_save_file (const ring_t *self, const char *path)
{
    assert (self);
    assert (path);
    if (self->shard_count == 0) {
        return RING_ERR_INVALID;
    }
    char temp[4096];
    if (snprintf (temp, sizeof temp, "%s.tmp", path) >= (int) sizeof temp) {
        errno = ENAMETOOLONG;
        return RING_ERR_IO;
    }
    char *text = ring_to_text (self);
    if (!text) {
        return RING_ERR_NOMEM;
    }
    int rc = s_replace_file (temp, path, text);
    int saved = errno;
    free (text);
    errno = saved;
    return rc ? RING_ERR_IO : RING_OK;
}

//  Binary form -----------------------------------------------------------------
//
//  offset  size  field (little-endian)
//  0       4     magic "RLRG"
//  4       2     version (RING_BLOB_VERSION)
//  6       2     shard_count (1..RL_SHARDS_MAX)
//  8       4     point_count (shard_count..RING_POINTS_MAX)
//  12      4     points_per_weight
//  16      8     epoch
//  24      168   per shard: name[32] endpoint[128] (NUL-padded), weight (IEEE-754 bits)
//  ...     10    per point: position u64, owner u16 (shard index), by position
//  size-8  8     XXH3_64bits of every byte before it

static const uint8_t s_magic[4] = {'R', 'L', 'R', 'G'};

static void
s_put_le (uint8_t *out, uint64_t value, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        out[i] = (uint8_t) (value >> (8 * i));
    }
}

static uint64_t
s_get_le (const uint8_t *in, size_t size)
{
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) {
        value |= (uint64_t) in[i] << (8 * i);
    }
    return value;
}

static size_t
s_blob_size (size_t shards, size_t points)
{
    return RING_BLOB_HEADER_SIZE + shards * RING_BLOB_SHARD_SIZE + points * RING_BLOB_POINT_SIZE
           + RING_BLOB_TRAILER_SIZE;
}

size_t
ring_encoded_size (const ring_t *self)
{
    assert (self);
    return s_blob_size (self->shard_count, self->point_count);
}

size_t
ring_encode (const ring_t *self, uint8_t *out, size_t out_size)
{
    assert (self);
    assert (out || out_size == 0);
    size_t size = ring_encoded_size (self);
    if (out_size < size) {
        return 0;
    }
    memcpy (out, s_magic, 4);
    s_put_le (out + 4, RING_BLOB_VERSION, 2);
    s_put_le (out + 6, self->shard_count, 2);
    s_put_le (out + 8, self->point_count, 4);
    s_put_le (out + 12, self->points_per_weight, 4);
    s_put_le (out + 16, self->epoch, 8);
    uint8_t *cursor = out + RING_BLOB_HEADER_SIZE;
    for (size_t x = 0; x < self->shard_count; x++) {
        const s_shard_t *shard = &self->shards[x];
        memset (cursor, 0, RING_BLOB_SHARD_SIZE);
        memcpy (cursor, shard->name, strlen (shard->name));
        memcpy (cursor + RL_SHARD_NAME_SIZE_MAX, shard->endpoint, strlen (shard->endpoint));
        uint64_t bits;
        memcpy (&bits, &shard->weight, sizeof bits);
        s_put_le (cursor + RL_SHARD_NAME_SIZE_MAX + RL_ENDPOINT_SIZE_MAX, bits, 8);
        cursor += RING_BLOB_SHARD_SIZE;
    }
    for (size_t i = 0; i < self->point_count; i++) {
        s_put_le (cursor, self->positions[i], 8);
        s_put_le (cursor + 8, self->owners[i], 2);
        cursor += RING_BLOB_POINT_SIZE;
    }
    s_put_le (cursor, XXH3_64bits (out, size - RING_BLOB_TRAILER_SIZE), 8);
    assert (cursor + RING_BLOB_TRAILER_SIZE == out + size);
    return size;
}

//  A fixed-size, NUL-padded string field: a NUL inside, zeros after it.
static int
s_field_valid (const uint8_t *field, size_t size)
{
    const uint8_t *nul = (const uint8_t *) memchr (field, 0, size);
    if (!nul) {
        return 0;
    }
    for (const uint8_t *rest = nul; rest < field + size; rest++) {
        if (*rest) {
            return 0;
        }
    }
    return 1;
}

static int
s_decode_header (const uint8_t *in, size_t size, size_t *shards_p, size_t *points_p, char *err,
                 size_t err_size)
{
    if (size < RING_BLOB_HEADER_SIZE + RING_BLOB_TRAILER_SIZE || size > RL_RING_BLOB_SIZE_MAX) {
        s_error (err, err_size, 0, "binary ring of %zu bytes is out of bounds", size);
        return -1;
    }
    if (memcmp (in, s_magic, 4) || s_get_le (in + 4, 2) != RING_BLOB_VERSION) {
        s_error (err, err_size, 0, "not a binary ring of version %d", RING_BLOB_VERSION);
        return -1;
    }
    size_t shards = (size_t) s_get_le (in + 6, 2);
    size_t points = (size_t) s_get_le (in + 8, 4);
    if (shards < 1 || shards > RL_SHARDS_MAX || points < shards || points > RING_POINTS_MAX) {
        s_error (err, err_size, 0, "binary ring counts out of bounds (%zu shards, %zu points)",
                 shards, points);
        return -1;
    }
    if (size != s_blob_size (shards, points)) {
        s_error (err, err_size, 0, "binary ring is %zu bytes, its counts say %zu", size,
                 s_blob_size (shards, points));
        return -1;
    }
    uint64_t checksum = s_get_le (in + size - RING_BLOB_TRAILER_SIZE, 8);
    if (checksum != XXH3_64bits (in, size - RING_BLOB_TRAILER_SIZE)) {
        s_error (err, err_size, 0, "binary ring checksum mismatch");
        return -1;
    }
    uint64_t ppw = s_get_le (in + 12, 4);
    if (ppw < 1 || ppw > RING_POINTS_PER_WEIGHT_MAX) {
        s_error (err, err_size, 0, "binary ring points_per_weight %" PRIu64 " out of bounds", ppw);
        return -1;
    }
    *shards_p = shards;
    *points_p = points;
    return 0;
}

static int
s_decode_shards (ring_t *ring, const uint8_t *cursor, size_t shards, char *err, size_t err_size)
{
    for (size_t x = 0; x < shards; x++, cursor += RING_BLOB_SHARD_SIZE) {
        const uint8_t *endpoint = cursor + RL_SHARD_NAME_SIZE_MAX;
        if (!s_field_valid (cursor, RL_SHARD_NAME_SIZE_MAX)
            || !s_field_valid (endpoint, RL_ENDPOINT_SIZE_MAX)) {
            s_error (err, err_size, 0, "binary ring shard %zu: unterminated name or endpoint", x);
            return -1;
        }
        uint64_t bits = s_get_le (endpoint + RL_ENDPOINT_SIZE_MAX, 8);
        double weight;
        memcpy (&weight, &bits, sizeof weight);
        int rc = s_append_shard (ring, (const char *) cursor, (const char *) endpoint, weight);
        if (rc) {
            s_error (err, err_size, 0, "binary ring shard %zu: %s", x, ring_strerror (rc));
            return -1;
        }
    }
    return 0;
}

static int
s_decode_points (ring_t *ring, const uint8_t *cursor, size_t points, char *err, size_t err_size)
{
    if (s_reserve_points (ring, points)) {
        s_error (err, err_size, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < points; i++, cursor += RING_BLOB_POINT_SIZE) {
        uint64_t position = s_get_le (cursor, 8);
        uint64_t owner = s_get_le (cursor + 8, 2);
        if (owner >= ring->shard_count || (i > 0 && position <= ring->positions[i - 1])) {
            s_error (err, err_size, 0, "binary ring point %zu: bad owner or out of order", i);
            return -1;
        }
        ring->positions[i] = position;
        ring->owners[i] = (uint16_t) owner;
    }
    ring->point_count = points;
    for (size_t x = 0; x < ring->shard_count; x++) {
        if (ring_shard_point_count (ring, x) == 0) {
            s_error (err, err_size, 0, "binary ring shard '%s' has no points",
                     ring->shards[x].name);
            return -1;
        }
    }
    s_recount (ring);
    return 0;
}

ring_t *
ring_decode (const uint8_t *in, size_t size, char *err, size_t err_size)
{
    assert (in || size == 0);
    size_t shards = 0;
    size_t points = 0;
    if (!in || s_decode_header (in, size, &shards, &points, err, err_size)) {
        if (!in) {
            s_error (err, err_size, 0, "no binary ring");
        }
        return NULL;
    }
    ring_t *ring = ring_new (s_get_le (in + 16, 8));
    if (!ring) {
        s_error (err, err_size, 0, "out of memory");
        return NULL;
    }
    ring->points_per_weight = (uint32_t) s_get_le (in + 12, 4);
    const uint8_t *cursor = in + RING_BLOB_HEADER_SIZE;
    if (s_decode_shards (ring, cursor, shards, err, err_size)
        || s_decode_points (ring, cursor + shards * RING_BLOB_SHARD_SIZE, points, err, err_size)) {
        ring_destroy (&ring);
    }
    return ring;
}

//  Diff ------------------------------------------------------------------------

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
    int *map = (int *) malloc ((a->shard_count + 1) * sizeof (int));
    if (map) {
        for (size_t x = 0; x < a->shard_count; x++) {
            map[x] = ring_shard_find (b, a->shards[x].name);
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
    size_t ia = 0;
    size_t ib = 0;
    uint64_t last = a->positions[a->point_count - 1] > b->positions[b->point_count - 1]
                        ? a->positions[a->point_count - 1]
                        : b->positions[b->point_count - 1];
    uint64_t start = last;
    while (ia < a->point_count || ib < b->point_count) {
        uint64_t pa = ia < a->point_count ? a->positions[ia] : UINT64_MAX;
        uint64_t pb = ib < b->point_count ? b->positions[ib] : UINT64_MAX;
        uint64_t end = pa < pb ? pa : pb;
        if (ia == a->point_count) {
            end = pb;
        } else if (ib == b->point_count) {
            end = pa;
        }
        int from = a->owners[ia < a->point_count ? ia : 0];
        int to = b->owners[ib < b->point_count ? ib : 0];
        if (map[from] != to) {
            int rc = s_arc_push (arcs_p, count_p, &capacity, (ring_arc_t){from, to, start, end});
            if (rc) {
                return rc;
            }
        }
        ia += ia < a->point_count && a->positions[ia] == end;
        ib += ib < b->point_count && b->positions[ib] == end;
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
    if (a->point_count == 0 || b->point_count == 0) {
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
        const char *from = a->shards[arcs[k].from].name;
        const char *to = b->shards[arcs[k].to].name;
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
