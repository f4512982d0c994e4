/*  test_ring.c: unit tests of the consistent-hash ring (ring/: placement
    and lookup, the text and binary forms, the diff).

    1. Golden vectors: XXH3 points of fixed ids, and the owners of fixed ids
       in a ring built by fixed operations and in a small hand-written ring,
       so that every platform agrees on placement and lookup.
    2. Properties over 1,000,000 seeded random ids (the seed is printed;
       set RL_SEED to replay): on add, remove and reweight an id
       changes owner only to or from the changed shard, and the moved
       fraction is at most 1.05x the ideal.
    3. Balance at 4/10/32/100 shards and weights honoured.
    4. Text and binary forms round-trip; malformed text is rejected with
       the line number; corrupt or truncated binary input is rejected.
    5. API errors: named codes, the ring unchanged after a failure.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "ring.h"
#include "rl_rand.h"

#define S_IDS_COUNT 1000000 //  random ids per movement property
#define S_TOLERANCE 1.05    //  allowed ratio to the ideal

static uint64_t s_seed;
static uint64_t *s_points; //  [S_IDS_COUNT] points of the random ids

static void
s_hex_to_id (const char *hex, uint8_t *id)
{
    for (int i = 0; i < RL_ID_SIZE; i++) {
        unsigned value = 0;
        assert_int_equal (sscanf (hex + 2 * i, "%2x", &value), 1);
        id[i] = (uint8_t) value;
    }
}

//  A ring of `count` shards s1..sN, weight 1, added in order.
static ring_t *
s_ring_of (size_t count)
{
    ring_t *ring = ring_new (1);
    assert_non_null (ring);
    for (size_t i = 0; i < count; i++) {
        char name[RL_SHARD_NAME_SIZE_MAX];
        char endpoint[64];
        snprintf (name, sizeof name, "s%zu", i + 1);
        snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%zu", 7101 + i);
        assert_int_equal (ring_add_shard (ring, name, endpoint, 1.0), RING_OK);
    }
    return ring;
}

//  Invariants every ring keeps: sorted unique points, no two successive
//  points with one owner, every shard with a point, ownership sums to 1.
static void
s_check_ring (const ring_t *ring)
{
    size_t points = ring_point_count (ring);
    for (size_t i = 1; i < points; i++) {
        assert_true (ring_point_position (ring, i - 1) < ring_point_position (ring, i));
    }
    for (size_t i = 0; points > 1 && i < points; i++) {
        assert_int_not_equal (ring_point_owner (ring, i),
                              ring_point_owner (ring, (i + 1) % points));
    }
    double sum = 0;
    for (size_t x = 0; x < ring_shard_count (ring); x++) {
        assert_true (ring_shard_point_count (ring, x) > 0);
        sum += ring_shard_ownership (ring, x);
    }
    assert_true (fabs (sum - 1.0) < 1e-9);
}

static int
s_setup (void **state)
{
    (void) state;
    const char *seed = getenv ("RL_SEED");
    s_seed = seed ? strtoull (seed, NULL, 0) : 0x5eed0001ull;
    printf ("test_ring: RL_SEED=0x%llx (set it to replay)\n", (unsigned long long) s_seed);
    s_points = (uint64_t *) malloc (S_IDS_COUNT * sizeof (uint64_t));
    assert_non_null (s_points);
    uint64_t prng = s_seed * 0x9E3779B97F4A7C15ull + 1; //  seed * odd + 1, as rl_rand.h asks
    for (size_t k = 0; k < S_IDS_COUNT; k++) {
        uint64_t id[2] = {rl_rand_next (&prng), rl_rand_next (&prng)};
        s_points[k] = ring_point_of_id (id);
    }
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    free (s_points);
    return 0;
}

//  1. Golden vectors ----------------------------------------------------------

typedef struct {
    const char *id_hex;
    uint64_t point;
    const char *owner;
} s_golden_t;

static const s_golden_t s_golden[] = {
    {"00000000000000000000000000000000", 0xd0a66a65c7528968ull, "s2"},
    {"00000000000000000000000000000001", 0x4152418f75dd93bbull, "s4"},
    {"0123456789abcdef0123456789abcdef", 0x26f2a731193d428full, "s3"},
    {"ffffffffffffffffffffffffffffffff", 0x722a202f07a4b313ull, "s1"},
    {"6ba7b8109dad11d180b400c04fd430c8", 0x7ee5ae082bb79d16ull, "s4"},
    {"deadbeefdeadbeefdeadbeefdeadbeef", 0x0f7f4f5f42fe9279ull, "s4"},
    {"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", 0x7119f613d6386a59ull, "s1"},
    {"1111111111111111222222222222222f", 0xb47ad7d432102975ull, "s3"},
};

static void
test_golden_built_ring (void **state)
{
    (void) state;
    //  XXH3 itself: the published value for empty input
    assert_true (XXH3_64bits ("", 0) == 0x2d06800538d394c2ull);
    ring_t *ring = s_ring_of (4);
    assert_int_equal (ring_point_count (ring), 46);
    assert_true (ring_point_position (ring, 0) == 0x01eabd10420bd54eull);
    for (size_t k = 0; k < sizeof s_golden / sizeof s_golden[0]; k++) {
        uint8_t id[RL_ID_SIZE];
        s_hex_to_id (s_golden[k].id_hex, id);
        assert_true (ring_point_of_id (id) == s_golden[k].point);
        int owner = ring_lookup_id (ring, id);
        assert_true (owner >= 0);
        assert_string_equal (ring_shard_name (ring, (size_t) owner), s_golden[k].owner);
    }
    s_check_ring (ring);
    ring_destroy (&ring);
    ring_destroy (&ring); //  safe twice
    assert_null (ring);
}

static const char *s_small_ring = "# a hand-written ring\n"
                                  "epoch 3\n"
                                  "shard a tcp://127.0.0.1:7101 weight 1\n"
                                  "shard b tcp://127.0.0.1:7102 weight 1\n"
                                  "shard c tcp://127.0.0.1:7103 weight 2\n"
                                  "point 4000000000000000 a\n"
                                  "point 8000000000000000 b\n"
                                  "point c000000000000000 c\n";

static void
test_golden_text_ring (void **state)
{
    (void) state;
    char err[256];
    ring_t *ring = ring_from_text (s_small_ring, err, sizeof err);
    assert_non_null (ring);
    assert_int_equal (ring_epoch (ring), 3);
    //  owner of h: the first point >= h, wrapping to the smallest point
    static const struct {
        uint64_t point;
        const char *owner;
    } cases[] = {
        {0x0000000000000000ull, "a"}, {0x4000000000000000ull, "a"}, {0x4000000000000001ull, "b"},
        {0x8000000000000000ull, "b"}, {0xbfffffffffffffffull, "c"}, {0xc000000000000000ull, "c"},
        {0xc000000000000001ull, "a"}, {0xffffffffffffffffull, "a"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int owner = ring_lookup (ring, cases[k].point);
        assert_string_equal (ring_shard_name (ring, (size_t) owner), cases[k].owner);
    }
    //  a owns (c000.., 4000..]: half of the space, across the wrap
    assert_true (fabs (ring_shard_ownership (ring, 0) - 0.5) < 1e-12);
    assert_true (fabs (ring_shard_ownership (ring, 2) - 0.25) < 1e-12);
    assert_true (fabs (ring_imbalance (ring) - 2.0) < 1e-12);
    ring_destroy (&ring);
}

//  2. Movement properties -------------------------------------------------------

//  Counts ids whose owner (by name) differs between a and b; every mover
//  must involve `changed` (from it, or to it).
static double
s_moved_fraction (const ring_t *a, const ring_t *b, const char *changed)
{
    size_t moved = 0;
    for (size_t k = 0; k < S_IDS_COUNT; k++) {
        const char *before = ring_shard_name (a, (size_t) ring_lookup (a, s_points[k]));
        const char *after = ring_shard_name (b, (size_t) ring_lookup (b, s_points[k]));
        if (strcmp (before, after) != 0) {
            if (strcmp (before, changed) != 0 && strcmp (after, changed) != 0) {
                fail_msg ("seed 0x%llx: id %zu moved %s -> %s, neither is %s",
                          (unsigned long long) s_seed, k, before, after, changed);
            }
            moved++;
        }
    }
    return (double) moved / S_IDS_COUNT;
}

//  The exact flows: only to or from `changed`; returns their sum.
static double
s_flow_fraction (const ring_t *a, const ring_t *b, const char *changed)
{
    ring_flow_t *flows = NULL;
    size_t count = 0;
    assert_int_equal (ring_diff_flows (a, b, &flows, &count), RING_OK);
    double sum = 0;
    for (size_t f = 0; f < count; f++) {
        assert_true (strcmp (flows[f].from, changed) == 0 || strcmp (flows[f].to, changed) == 0);
        sum += flows[f].fraction;
    }
    free (flows);
    return sum;
}

static void
s_check_moved (double moved, double flow, double ideal)
{
    printf ("    moved %.5f (ids) %.5f (exact), ideal %.5f\n", moved, flow, ideal);
    assert_true (flow <= ideal * S_TOLERANCE);
    assert_true (moved <= ideal * S_TOLERANCE);
    assert_true (fabs (moved - flow) < 0.005); //  1M ids sample it closely
}

static void
test_movement_add (void **state)
{
    (void) state;
    ring_t *before = s_ring_of (10);
    ring_t *after = ring_dup (before);
    assert_int_equal (ring_add_shard (after, "s11", "tcp://127.0.0.1:7111", 1.0), RING_OK);
    assert_int_equal (ring_epoch (after), ring_epoch (before));
    s_check_ring (after);
    s_check_moved (s_moved_fraction (before, after, "s11"), s_flow_fraction (before, after, "s11"),
                   1.0 / 11);
    ring_destroy (&before);
    ring_destroy (&after);
}

static void
test_movement_remove (void **state)
{
    (void) state;
    ring_t *before = s_ring_of (10);
    ring_t *after = ring_dup (before);
    double share = ring_shard_ownership (before, (size_t) ring_shard_find (before, "s4"));
    assert_int_equal (ring_remove_shard (after, "s4"), RING_OK);
    assert_int_equal (ring_shard_count (after), 9);
    assert_int_equal (ring_shard_find (after, "s4"), -1);
    s_check_ring (after);
    assert_true (ring_imbalance (after) <= S_TOLERANCE);
    s_check_moved (s_moved_fraction (before, after, "s4"), s_flow_fraction (before, after, "s4"),
                   share);
    ring_destroy (&before);
    ring_destroy (&after);
}

static void
test_movement_reweight (void **state)
{
    (void) state;
    ring_t *before = s_ring_of (10);
    ring_t *up = ring_dup (before);
    assert_int_equal (ring_reweight_shard (up, "s3", 2.0), RING_OK);
    s_check_ring (up);
    assert_true (ring_imbalance (up) <= S_TOLERANCE);
    double ideal = 2.0 / 11 - 1.0 / 10;
    s_check_moved (s_moved_fraction (before, up, "s3"), s_flow_fraction (before, up, "s3"), ideal);
    ring_t *down = ring_dup (up);
    assert_int_equal (ring_reweight_shard (down, "s3", 0.5), RING_OK);
    s_check_ring (down);
    assert_true (ring_imbalance (down) <= S_TOLERANCE);
    ideal = 2.0 / 11 - 0.5 / 9.5;
    s_check_moved (s_moved_fraction (up, down, "s3"), s_flow_fraction (up, down, "s3"), ideal);
    //  the same weight again moves nothing
    ring_t *same = ring_dup (down);
    assert_int_equal (ring_reweight_shard (same, "s3", 0.5), RING_OK);
    assert_true (s_flow_fraction (down, same, "s3") == 0);
    ring_destroy (&before);
    ring_destroy (&up);
    ring_destroy (&down);
    ring_destroy (&same);
}

//  Exact hash-space flows at every size, without the id sample.
static void
test_movement_exact (void **state)
{
    (void) state;
    static const size_t sizes[] = {1, 2, 3, 4, 10, 32, 100};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t count = sizes[k];
        ring_t *before = s_ring_of (count);
        ring_t *added = ring_dup (before);
        assert_int_equal (ring_add_shard (added, "new", "tcp://127.0.0.1:7000", 1.0), RING_OK);
        double flow = s_flow_fraction (before, added, "new");
        assert_true (flow <= S_TOLERANCE / (double) (count + 1));
        assert_true (flow >= 0.99 / (double) (count + 1));
        ring_t *removed = ring_dup (added);
        assert_int_equal (ring_remove_shard (removed, "s1"), RING_OK);
        double share = ring_shard_ownership (added, 0);
        assert_true (s_flow_fraction (added, removed, "s1") <= share * S_TOLERANCE);
        s_check_ring (removed);
        ring_destroy (&before);
        ring_destroy (&added);
        ring_destroy (&removed);
    }
}

//  Seeded random sequences of changes: after each one the ring keeps its
//  invariants, stays balanced, and moves space only to or from the shard
//  that changed.
static void
test_random_changes (void **state)
{
    (void) state;
    uint64_t prng = (s_seed ^ 0xc0ffeeull) * 0x9E3779B97F4A7C15ull + 1;
    ring_t *ring = s_ring_of (3);
    size_t next_name = 4;
    for (int step = 0; step < 300; step++) {
        ring_t *before = ring_dup (ring);
        assert_non_null (before);
        uint64_t roll = rl_rand_next (&prng);
        size_t count = ring_shard_count (ring);
        char name[RL_SHARD_NAME_SIZE_MAX];
        size_t pick = (size_t) ((roll >> 8) % count);
        snprintf (name, sizeof name, "%s", ring_shard_name (ring, pick));
        double weight = 0.25 * (double) (1 + (roll >> 40) % 16);
        if (roll % 3 == 0 || count < 2) {
            snprintf (name, sizeof name, "n%zu", next_name++);
            assert_int_equal (ring_add_shard (ring, name, "tcp://127.0.0.1:7000", weight), RING_OK);
        } else if (roll % 3 == 1 && count > 2) {
            assert_int_equal (ring_remove_shard (ring, name), RING_OK);
        } else {
            assert_int_equal (ring_reweight_shard (ring, name, weight), RING_OK);
        }
        s_check_ring (ring);
        if (ring_imbalance (ring) > 1.0 + 1e-9) {
            fail_msg ("RL_SEED=0x%llx step %d: imbalance %.9f", (unsigned long long) s_seed, step,
                      ring_imbalance (ring));
        }
        s_flow_fraction (before, ring, name);
        ring_destroy (&before);
    }
    ring_destroy (&ring);
}

//  3. Balance and weights ---------------------------------------------------------

static void
test_balance (void **state)
{
    (void) state;
    static const size_t sizes[] = {4, 10, 32, 100};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ring_t *ring = s_ring_of (sizes[k]);
        printf ("    %zu shards: imbalance %.6f, %zu points\n", sizes[k], ring_imbalance (ring),
                ring_point_count (ring));
        assert_true (ring_imbalance (ring) <= S_TOLERANCE);
        assert_true (ring_imbalance (ring) >= 1.0 - 1e-9);
        s_check_ring (ring);
        ring_destroy (&ring);
    }
}

static void
test_weights (void **state)
{
    (void) state;
    ring_t *ring = ring_new (1);
    assert_int_equal (ring_add_shard (ring, "one", "tcp://127.0.0.1:7101", 1.0), RING_OK);
    assert_int_equal (ring_add_shard (ring, "two", "tcp://127.0.0.1:7102", 2.0), RING_OK);
    assert_int_equal (ring_add_shard (ring, "also", "tcp://127.0.0.1:7103", 1.0), RING_OK);
    double ratio = ring_shard_ownership (ring, 1) / ring_shard_ownership (ring, 0);
    assert_true (fabs (ratio - 2.0) < 0.1);
    //  by counting ids (1M, so the sample error is far below 5%)
    size_t counts[3] = {0, 0, 0};
    for (size_t k = 0; k < S_IDS_COUNT; k++) {
        counts[ring_lookup (ring, s_points[k])]++;
    }
    ratio = (double) counts[1] / (double) counts[0];
    printf ("    weight 2 / weight 1 by ids: %.4f\n", ratio);
    assert_true (fabs (ratio - 2.0) < 0.1);
    assert_int_equal (ring_shard_point_count (ring, 1) > 0, 1);
    ring_destroy (&ring);
}

static void
test_determinism (void **state)
{
    (void) state;
    ring_t *a = s_ring_of (12);
    ring_t *b = s_ring_of (12);
    assert_int_equal (ring_remove_shard (a, "s5"), RING_OK);
    assert_int_equal (ring_remove_shard (b, "s5"), RING_OK);
    assert_int_equal (ring_reweight_shard (a, "s7", 3.5), RING_OK);
    assert_int_equal (ring_reweight_shard (b, "s7", 3.5), RING_OK);
    char *text_a = ring_to_text (a);
    char *text_b = ring_to_text (b);
    assert_string_equal (text_a, text_b);
    free (text_a);
    free (text_b);
    ring_destroy (&a);
    ring_destroy (&b);
}

//  4. Forms ---------------------------------------------------------------------

static void
test_text_round_trip (void **state)
{
    (void) state;
    ring_t *ring = s_ring_of (7);
    assert_int_equal (ring_reweight_shard (ring, "s2", 0.1), RING_OK);
    ring_set_epoch (ring, 42);
    char *text = ring_to_text (ring);
    assert_non_null (text);
    char err[256];
    ring_t *copy = ring_from_text (text, err, sizeof err);
    assert_non_null (copy);
    char *again = ring_to_text (copy);
    assert_string_equal (text, again);
    assert_int_equal (ring_epoch (copy), 42);
    assert_true (ring_shard_weight (copy, 1) == 0.1);
    for (size_t k = 0; k < 100000; k++) {
        assert_int_equal (ring_lookup (ring, s_points[k]), ring_lookup (copy, s_points[k]));
    }
    free (text);
    free (again);
    ring_destroy (&copy);
    ring_destroy (&ring);
}

//  A file with shards and no points places them as ring_add_shard would.
static void
test_text_without_points (void **state)
{
    (void) state;
    const char *text = "epoch 1\n"
                       "shard s1 tcp://127.0.0.1:7101 weight 1\n"
                       "shard s2 tcp://127.0.0.1:7102 weight 1\n"
                       "shard s3 tcp://127.0.0.1:7103 weight 1\n"
                       "shard s4 tcp://127.0.0.1:7104 weight 1\n";
    char err[256];
    ring_t *ring = ring_from_text (text, err, sizeof err);
    assert_non_null (ring);
    ring_t *built = s_ring_of (4);
    char *text_a = ring_to_text (ring);
    char *text_b = ring_to_text (built);
    assert_string_equal (text_a, text_b);
    free (text_a);
    free (text_b);
    ring_destroy (&ring);
    ring_destroy (&built);
}

static void
test_file_round_trip (void **state)
{
    (void) state;
    ring_t *ring = s_ring_of (4);
    char path[64];
    snprintf (path, sizeof path, "test_ring_%ld.ring", (long) getpid ());
    assert_int_equal (ring_save_file (ring, path), RING_OK);
    char err[256];
    ring_t *loaded = ring_load_file (path, err, sizeof err);
    assert_non_null (loaded);
    assert_int_equal (ring_point_count (loaded), ring_point_count (ring));
    unlink (path);
    assert_null (ring_load_file (path, err, sizeof err));
    assert_non_null (strstr (err, path));
    ring_t *empty = ring_new (1);
    assert_int_equal (ring_save_file (empty, path), RING_ERR_INVALID);
    assert_int_equal (ring_save_file (ring, "no-such-dir/x.ring"), RING_ERR_IO);
    ring_destroy (&empty);
    ring_destroy (&loaded);
    ring_destroy (&ring);
}

typedef struct {
    const char *text;
    const char *message; //  expected at the start of the error
} s_bad_text_t;

#define S_HEAD      "epoch 1\nshard a tcp://h:1 weight 1\n"
#define S_PA        "point 0000000000000001 a\n"
#define S_LONG_NAME "abcdefghijabcdefghijabcdefghij12"
#define S_LONG_ENDPOINT                                                                            \
    "tcp://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"        \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1"

static const s_bad_text_t s_bad_texts[] = {
    {S_HEAD "shard a tcp://h:2 weight 1\n" S_PA, "line 3: duplicate shard 'a' (first on line 2)"},
    {"epoch 1\nshard a tcp://h:1 weight 0\n", "line 2: expected 'weight W'"},
    {"epoch 1\nshard a tcp://h:1 weight -1\n", "line 2: expected 'weight W'"},
    {"epoch 1\nshard a tcp://h:1 weight nan\n", "line 2: expected 'weight W'"},
    {"epoch 1\nshard a tcp://h:1 weight 1e9\n", "line 2: expected 'weight W'"},
    {"epoch 1\nshard a tcp://h:1 weight 1x\n", "line 2: expected 'weight W'"},
    {"epoch 1\nshard a tcp://h:1 height 1\n", "line 2: expected 'weight W'"},
    {S_HEAD "colour blue\n", "line 3: unknown key 'colour'"},
    {"epoch 1\nshard a tcp://h:1 weight\n", "line 2: truncated line"},
    {S_HEAD "point 0000000000000001\n", "line 3: truncated line"},
    {"epoch\n", "line 1: truncated line"},
    {S_HEAD "point 0000000000000001 a extra\n", "line 3: extra tokens"},
    {"epoch 1 2\n", "line 1: extra tokens"},
    {S_HEAD S_PA "point 0000000000000002 zz\n", "line 4: point names unknown shard 'zz'"},
    {S_HEAD S_PA "\n# c\npoint 0000000000000001 a\n", "line 6: duplicate point position"},
    {S_HEAD "shard b tcp://h:2 weight 1\n" S_PA, "line 3: shard 'b' has no points"},
    {"# nothing\nepoch 1\n", "line 2: end of ring without shards"},
    {"shard a tcp://h:1 weight 1\n", "line 1: end of ring without an 'epoch N' line"},
    {S_HEAD "point 00000000000000g1 a\n", "line 3: point position '00000000000000g1' is not"},
    {S_HEAD "point 01 a\n", "line 3: point position '01' is not 16 hex digits"},
    {"epoch 1\nshard " S_LONG_NAME " tcp://h:1 weight 1\n", "line 2: shard name"},
    {"epoch 1\nshard a/b tcp://h:1 weight 1\n", "line 2: shard name 'a/b' may hold only"},
    {"epoch 1\nshard a " S_LONG_ENDPOINT " weight 1\n", "line 2: endpoint of shard 'a'"},
    {"epoch x\n", "line 1: epoch 'x' is not a decimal number"},
    {"epoch -1\n", "line 1: epoch '-1' is not a decimal number"},
    {"epoch 99999999999999999999\n", "line 1: epoch"},
    {"epoch 1\nepoch 2\n", "line 2: duplicate 'epoch' (first on line 1)"},
    {"epoch 1\npoints_per_weight 0\n", "line 2: points_per_weight '0' is not"},
    {"epoch 1\npoints_per_weight 2\npoints_per_weight 2\n", "line 3: duplicate"},
};

static void
test_text_malformed (void **state)
{
    (void) state;
    for (size_t k = 0; k < sizeof s_bad_texts / sizeof s_bad_texts[0]; k++) {
        char err[256] = "";
        ring_t *ring = ring_from_text (s_bad_texts[k].text, err, sizeof err);
        if (ring || strncmp (err, s_bad_texts[k].message, strlen (s_bad_texts[k].message))) {
            fail_msg ("case %zu: got '%s', expected '%s...'", k, ring ? "a ring" : err,
                      s_bad_texts[k].message);
        }
    }
    //  a line longer than the limit
    char *text = (char *) malloc (RING_TEXT_LINE_SIZE_MAX + 64);
    assert_non_null (text);
    memset (text, '#', RING_TEXT_LINE_SIZE_MAX + 32);
    strcpy (text + RING_TEXT_LINE_SIZE_MAX + 32, "\n");
    char err[256];
    assert_null (ring_from_text (text, err, sizeof err));
    assert_non_null (strstr (err, "line 1: line longer"));
    free (text);
    //  no err buffer is fine
    assert_null (ring_from_text ("bad", NULL, 0));
}

//  Rewrites the checksum so that the decoder's other checks are reached.
static void
s_reseal (uint8_t *blob, size_t size)
{
    uint64_t checksum = XXH3_64bits (blob, size - RING_BLOB_TRAILER_SIZE);
    for (int i = 0; i < 8; i++) {
        blob[size - 8 + i] = (uint8_t) (checksum >> (8 * i));
    }
}

static void
s_expect_rejected (uint8_t *blob, size_t size, const char *message)
{
    char err[256] = "";
    ring_t *ring = ring_decode (blob, size, err, sizeof err);
    if (ring || (message && !strstr (err, message))) {
        fail_msg ("decode: got '%s', expected '%s'", ring ? "a ring" : err, message);
    }
}

static void
test_binary_round_trip (void **state)
{
    (void) state;
    ring_t *ring = s_ring_of (5);
    ring_set_epoch (ring, 0x0102030405060708ull);
    size_t size = ring_encoded_size (ring);
    assert_int_equal (size, RING_BLOB_HEADER_SIZE + 5 * RING_BLOB_SHARD_SIZE
                                + ring_point_count (ring) * RING_BLOB_POINT_SIZE
                                + RING_BLOB_TRAILER_SIZE);
    uint8_t *blob = (uint8_t *) malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size - 1), 0);
    assert_int_equal (ring_encode (ring, blob, size), size);
    assert_memory_equal (blob, "RLRG\x01\x00\x05\x00", 8);
    assert_int_equal (blob[16], 0x08); //  epoch, little-endian
    char err[256];
    ring_t *copy = ring_decode (blob, size, err, sizeof err);
    assert_non_null (copy);
    char *text_a = ring_to_text (ring);
    char *text_b = ring_to_text (copy);
    assert_string_equal (text_a, text_b);
    free (text_a);
    free (text_b);
    ring_destroy (&copy);
    free (blob);
    ring_destroy (&ring);
}

static void
test_binary_corrupt (void **state)
{
    (void) state;
    ring_t *ring = s_ring_of (3);
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = (uint8_t *) malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    for (size_t cut = 0; cut < size; cut++) { //  every truncation
        s_expect_rejected (blob, cut, NULL);
    }
    for (size_t at = 0; at < size; at++) { //  every single flipped byte
        blob[at] ^= 0x5a;
        s_expect_rejected (blob, size, NULL);
        blob[at] ^= 0x5a;
    }
    assert_null (ring_decode (NULL, 0, NULL, 0));
    size_t points_at = RING_BLOB_HEADER_SIZE + 3 * RING_BLOB_SHARD_SIZE;
    uint8_t saved[16];
    memcpy (saved, blob, sizeof saved);
    blob[6] = 0; //  no shards
    s_reseal (blob, size);
    s_expect_rejected (blob, size, "counts out of bounds");
    memcpy (blob, saved, sizeof saved);
    blob[8] = (uint8_t) (blob[8] + 1); //  one point more than the bytes hold
    s_reseal (blob, size);
    s_expect_rejected (blob, size, "its counts say");
    memcpy (blob, saved, sizeof saved);
    blob[points_at + 8] = 7; //  first point owned by shard 7 of 3
    s_reseal (blob, size);
    s_expect_rejected (blob, size, "bad owner or out of order");
    assert_int_equal (ring_encode (ring, blob, size), size);
    memset (blob + points_at + RING_BLOB_POINT_SIZE, 0, 8); //  second point at 0
    s_reseal (blob, size);
    s_expect_rejected (blob, size, "out of order");
    assert_int_equal (ring_encode (ring, blob, size), size);
    memset (blob + RING_BLOB_HEADER_SIZE, 'x', RL_SHARD_NAME_SIZE_MAX); //  no NUL
    s_reseal (blob, size);
    s_expect_rejected (blob, size, "unterminated");
    assert_int_equal (ring_encode (ring, blob, size), size);
    memset (blob + RING_BLOB_HEADER_SIZE + RL_SHARD_NAME_SIZE_MAX + RL_ENDPOINT_SIZE_MAX, 0xff, 8);
    s_reseal (blob, size); //  weight NaN
    s_expect_rejected (blob, size, "shard 0");
    free (blob);
    ring_destroy (&ring);
}

//  Shard keys: optional in both forms, round-trip, old rings read without
//  keys, and bad keys refused.
static void
test_keys (void **state)
{
    (void) state;
    const char *key_a = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const char *key_b = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    ring_t *ring = s_ring_of (3);
    assert_string_equal (ring_shard_key (ring, 0), "");
    size_t plain_size = ring_encoded_size (ring);
    assert_int_equal (ring_set_key (ring, "s1", key_a), RING_OK);
    assert_int_equal (ring_set_key (ring, "s3", key_b), RING_OK);
    assert_int_equal (ring_set_key (ring, "nope", key_a), RING_ERR_NOT_FOUND);
    assert_int_equal (ring_set_key (ring, "s2", "short"), RING_ERR_INVALID);
    assert_int_equal (ring_set_key (ring, "s2", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf "),
                      RING_ERR_INVALID); //  a space is not Z85
    assert_int_equal (ring_shard_find_key (ring, key_b), 2);
    assert_int_equal (ring_shard_find_key (ring, ""), -1);
    //  Binary: version 2, 40 more bytes per shard, and back.
    size_t size = ring_encoded_size (ring);
    assert_int_equal (size, plain_size + 3 * RING_KEY_SIZE);
    uint8_t *blob = (uint8_t *) malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    assert_memory_equal (blob, "RLRG\x02\x00\x03\x00", 8);
    char err[256];
    ring_t *copy = ring_decode (blob, size, err, sizeof err);
    assert_non_null (copy);
    assert_string_equal (ring_shard_key (copy, 0), key_a);
    assert_string_equal (ring_shard_key (copy, 1), "");
    assert_string_equal (ring_shard_key (copy, 2), key_b);
    //  Text: "key Z85" after the weight, and back.
    char *text = ring_to_text (copy);
    assert_non_null (strstr (text, "weight 1 key rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"));
    ring_t *again = ring_from_text (text, err, sizeof err);
    assert_non_null (again);
    char *text_again = ring_to_text (again);
    assert_string_equal (text, text_again);
    free (text_again);
    free (text);
    ring_destroy (&again);
    ring_destroy (&copy);
    //  A key field half written is refused.
    blob[RING_BLOB_HEADER_SIZE + RING_BLOB_SHARD_SIZE_KEYED + RING_BLOB_SHARD_SIZE + 5] = 'x';
    s_reseal (blob, size);
    s_expect_rejected (blob, size, "shard 1");
    free (blob);
    //  Clearing every key writes version 1 again, byte for byte as before.
    assert_int_equal (ring_set_key (ring, "s1", ""), RING_OK);
    assert_int_equal (ring_set_key (ring, "s3", ""), RING_OK);
    assert_int_equal (ring_encoded_size (ring), plain_size);
    //  Text errors name the line.
    assert_null (
        ring_from_text ("epoch 1\nshard s1 tcp://h:1 weight 1 key abc\n", err, sizeof err));
    assert_non_null (strstr (err, "line 2: expected 'key Z85'"));
    assert_null (ring_from_text ("epoch 1\nshard s1 tcp://h:1 weight 1 kee "
                                 "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n",
                                 err, sizeof err));
    assert_non_null (strstr (err, "line 2: expected 'key Z85'"));
    assert_null (ring_from_text ("epoch 1\nshard s1 tcp://h:1 weight 1 key\n", err, sizeof err));
    assert_non_null (strstr (err, "line 2: extra tokens"));
    ring_t *built = ring_from_text ("epoch 1\nshard s1 tcp://h:1 weight 1 key "
                                    "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n",
                                    err, sizeof err);
    assert_non_null (built); //  placed from shard lines alone, key kept
    assert_string_equal (ring_shard_key (built, 0), key_a);
    ring_destroy (&built);
    ring_destroy (&ring);
}

//  The share by definition: the owner of every ring point inside the arc,
//  and of the first at or after its end (which owns the end).
static ring_share_t
s_share_slow (const ring_t *ring, uint64_t start, uint64_t end, int shard)
{
    size_t mine = ring_lookup (ring, end) == shard, seen = 1;
    for (size_t i = 0; i < ring_point_count (ring); i++) {
        uint64_t p = ring_point_position (ring, i);
        bool inside = start == end || (start < end ? p > start && p <= end : p > start || p <= end);
        if (inside) {
            seen++;
            mine += (int) ring_point_owner (ring, i) == shard;
        }
    }
    return mine == 0 ? RING_SHARE_NONE : mine == seen ? RING_SHARE_ALL : RING_SHARE_PART;
}

//  ring_arc_share: each ring arc is wholly its owner's, one point more is
//  partly; random arcs (wrapping ones, the whole space, the top of the
//  space) agree with the definition; an empty ring gives nothing.
static void
test_arc_share (void **state)
{
    (void) state;
    ring_t *ring = s_ring_of (4);
    size_t count = ring_point_count (ring);
    for (size_t i = 0; i < count; i++) {
        uint64_t prev = ring_point_position (ring, i == 0 ? count - 1 : i - 1);
        uint64_t here = ring_point_position (ring, i);
        int owner = (int) ring_point_owner (ring, i);
        assert_int_equal (ring_arc_share (ring, prev, here, owner), RING_SHARE_ALL);
        assert_int_equal (ring_arc_share (ring, prev, here, (owner + 1) % 4), RING_SHARE_NONE);
        assert_int_equal (ring_arc_share (ring, prev, here + 1, owner), RING_SHARE_PART);
        assert_int_equal (ring_arc_share (ring, prev - 1, here, owner), RING_SHARE_PART);
        assert_int_equal (ring_arc_share (ring, here - 1, here, owner), RING_SHARE_ALL);
    }
    uint64_t prng = s_seed * 0x9E3779B97F4A7C15ull + 3;
    for (int k = 0; k < 20000; k++) {
        uint64_t start = rl_rand_next (&prng), end = rl_rand_next (&prng);
        switch (k % 5) {
            case 1:
                end = start + (end >> 40); //  short arcs
                break;
            case 2:
                start = UINT64_MAX;
                break;
            case 3:
                end = start; //  the whole space
                break;
            default:
                break;
        }
        for (int shard = 0; shard < 4; shard++) {
            assert_int_equal (ring_arc_share (ring, start, end, shard),
                              s_share_slow (ring, start, end, shard));
        }
    }
    assert_int_equal (ring_arc_share (ring, 5, 5, 0), RING_SHARE_PART);
    ring_destroy (&ring);
    ring = ring_new (1);
    assert_int_equal (ring_arc_share (ring, 1, 2, 0), RING_SHARE_NONE);
    ring_destroy (&ring);
}

//  Diff across the wrap, on a hand-written ring.
static void
test_diff_wrap (void **state)
{
    (void) state;
    char err[256];
    ring_t *a = ring_from_text ("epoch 1\n"
                                "shard s1 tcp://h:1 weight 1\nshard s2 tcp://h:2 weight 1\n"
                                "point 4000000000000000 s1\npoint c000000000000000 s2\n",
                                err, sizeof err);
    ring_t *b = ring_from_text ("epoch 2\n"
                                "shard s1 tcp://h:1 weight 1\nshard s2 tcp://h:2 weight 1\n"
                                "shard s3 tcp://h:3 weight 1\n"
                                "point 2000000000000000 s3\n"
                                "point 4000000000000000 s1\npoint c000000000000000 s2\n",
                                err, sizeof err);
    assert_non_null (a);
    assert_non_null (b);
    ring_arc_t *arcs = NULL;
    size_t count = 0;
    assert_int_equal (ring_diff_arcs (a, b, &arcs, &count), RING_OK);
    assert_int_equal (count, 1);
    assert_int_equal (arcs[0].from, 0);
    assert_int_equal (arcs[0].to, 2);
    assert_true (arcs[0].start == 0xc000000000000000ull);
    assert_true (arcs[0].end == 0x2000000000000000ull);
    assert_true (fabs (ring_arc_fraction (&arcs[0]) - 0.375) < 1e-12);
    free (arcs);
    ring_flow_t *flows = NULL;
    assert_int_equal (ring_diff_flows (b, a, &flows, &count), RING_OK);
    assert_int_equal (count, 1);
    assert_string_equal (flows[0].from, "s3");
    assert_string_equal (flows[0].to, "s1");
    free (flows);
    assert_int_equal (ring_diff_arcs (a, a, &arcs, &count), RING_OK);
    assert_int_equal (count, 0);
    assert_null (arcs);
    ring_destroy (&a);
    ring_destroy (&b);
}

//  5. API errors ------------------------------------------------------------------

static void
test_api_errors (void **state)
{
    (void) state;
    ring_t *ring = ring_new (5);
    assert_int_equal (ring_lookup (ring, 1), -1);
    assert_true (ring_imbalance (ring) == 0);
    assert_int_equal (ring_points_per_weight (ring), RL_RING_POINTS_PER_WEIGHT);
    assert_int_equal (ring_set_points_per_weight (ring, 0), RING_ERR_INVALID);
    assert_int_equal (ring_set_points_per_weight (ring, 16), RING_OK);
    assert_int_equal (ring_add_shard (ring, "s1", "tcp://h:1", 0), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, "s1", "tcp://h:1", NAN), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, "s1", "tcp://h:1", 1e6), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, "", "tcp://h:1", 1), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, "a b", "tcp://h:1", 1), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, S_LONG_NAME, "tcp://h:1", 1), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, "s1", S_LONG_ENDPOINT, 1), RING_ERR_INVALID);
    assert_int_equal (ring_add_shard (ring, "s1", "tcp://h:1", 1), RING_OK);
    assert_int_equal (ring_point_count (ring), 16);
    assert_int_equal (ring_add_shard (ring, "s1", "tcp://h:9", 1), RING_ERR_EXISTS);
    assert_int_equal (ring_remove_shard (ring, "nope"), RING_ERR_NOT_FOUND);
    assert_int_equal (ring_reweight_shard (ring, "nope", 1), RING_ERR_NOT_FOUND);
    assert_int_equal (ring_reweight_shard (ring, "s1", -1), RING_ERR_INVALID);
    assert_int_equal (ring_set_endpoint (ring, "nope", "tcp://h:2"), RING_ERR_NOT_FOUND);
    assert_int_equal (ring_set_endpoint (ring, "s1", "tcp:// h"), RING_ERR_INVALID);
    static const char *bad_endpoints[] = {"tcp://h:99999", "tcp://h:0",   "tcp://h",
                                          "h:7101",        "tcp://:7101", "tcp://h:7x",
                                          "tcp://h:",      "ipc://",      "udp://h:1"};
    for (size_t i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; i++) {
        assert_int_equal (ring_set_endpoint (ring, "s1", bad_endpoints[i]), RING_ERR_INVALID);
        assert_false (ring_endpoint_valid (bad_endpoints[i]));
    }
    static const char *good_endpoints[] = {"tcp://h:65535", "tcp://[::1]:7101", "tcp://*:1",
                                           "ipc:///tmp/s1", "inproc://s1"};
    for (size_t i = 0; i < sizeof good_endpoints / sizeof good_endpoints[0]; i++) {
        assert_true (ring_endpoint_valid (good_endpoints[i]));
    }
    assert_int_equal (ring_set_endpoint (ring, "s1", "tcp://h:2"), RING_OK);
    assert_string_equal (ring_shard_endpoint (ring, 0), "tcp://h:2");
    assert_int_equal (ring_epoch (ring), 5);
    //  a lone shard owns everything; reweighting it moves nothing
    assert_int_equal (ring_reweight_shard (ring, "s1", 3), RING_OK);
    assert_true (ring_shard_ownership (ring, 0) == 1.0);
    //  removing the last shard leaves an empty ring
    ring_t *copy = ring_dup (ring);
    assert_int_equal (ring_remove_shard (copy, "s1"), RING_OK);
    assert_int_equal (ring_shard_count (copy), 0);
    assert_int_equal (ring_lookup (copy, 7), -1);
    ring_arc_t *arcs = NULL;
    size_t count = 0;
    assert_int_equal (ring_diff_arcs (ring, copy, &arcs, &count), RING_ERR_INVALID);
    assert_non_null (ring_strerror (RING_ERR_FULL));
    ring_destroy (&copy);
    ring_destroy (&ring);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        // clang-format off
        cmocka_unit_test (test_golden_built_ring),
        cmocka_unit_test (test_golden_text_ring),
        cmocka_unit_test (test_movement_add),
        cmocka_unit_test (test_movement_remove),
        cmocka_unit_test (test_movement_reweight),
        cmocka_unit_test (test_movement_exact),
        cmocka_unit_test (test_random_changes),
        cmocka_unit_test (test_balance),
        cmocka_unit_test (test_weights),
        cmocka_unit_test (test_determinism),
        cmocka_unit_test (test_text_round_trip),
        cmocka_unit_test (test_text_without_points),
        cmocka_unit_test (test_file_round_trip),
        cmocka_unit_test (test_text_malformed),
        cmocka_unit_test (test_binary_round_trip),
        cmocka_unit_test (test_binary_corrupt),
        cmocka_unit_test (test_diff_wrap),
        cmocka_unit_test (test_arc_share),
        cmocka_unit_test (test_api_errors),
        cmocka_unit_test (test_keys),
        // clang-format on
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
