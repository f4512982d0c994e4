/*  test_idfilter.c: the shard's filter of transfer ids (shard/idfilter.c).

    test_no_false_absent: millions of ids, random and sequential (as clients
    often number them) and ids that differ in one high bit only: every id
    added is answered "maybe", before and after the filter passes its
    capacity. test_false_present_rate: the share of ids never added that
    are answered "maybe", at capacity, at twice and four times it, within
    bounds (printed). test_limits: the sizes are rounded into
    [IDFILTER_KEYS_FLOOR, IDFILTER_KEYS_MAX]; a filter past its capacity says
    so and keeps every id; one at the largest size never asks to grow.
    Seeded: the seed is printed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "idfilter.h"
#include "rl_rand.h"

static uint64_t s_rng;

static void
s_seed (const char *name)
{
    uint64_t seed = (uint64_t) time (NULL);
    printf ("test_idfilter %s: seed %lu\n", name, (unsigned long) seed);
    s_rng = seed | 1;
}

//  The i-th id of a kind: 0 random, 1 sequential, 2 one high bit apart.
static rl_id_t
s_id (int kind, size_t i, uint64_t base)
{
    switch (kind) {
        case 0:
            return (rl_id_t){.lo = rl_rand_next (&s_rng), .hi = rl_rand_next (&s_rng)};
        case 1:
            return (rl_id_t){.lo = base + i, .hi = 0};
        default:
            return (rl_id_t){.lo = base, .hi = (uint64_t) i << 20};
    }
}

static void
test_no_false_absent (void **state)
{
    (void) state;
    s_seed ("no_false_absent");
    enum { N = 3 << 20 }; //  3 M ids into a filter sized for 2 M: past its capacity
    idfilter_t *filter = idfilter_new (2u << 20);
    assert_non_null (filter);
    assert_int_equal (idfilter_capacity (filter), 2u << 20);
    uint64_t *hashes = malloc (N * sizeof (*hashes));
    assert_non_null (hashes);
    for (size_t i = 0; i < N; i++) {
        hashes[i] = idfilter_hash (s_id ((int) (i % 3), i, 7));
        idfilter_add (filter, hashes[i]);
        if (i + 1 == (2u << 20)) {
            assert_false (idfilter_full (filter)); //  at capacity, not past it
        }
    }
    assert_int_equal (idfilter_count (filter), N);
    assert_true (idfilter_full (filter));
    for (size_t i = 0; i < N; i++) {
        assert_true (idfilter_may_hold (filter, hashes[i]));
    }
    //  The same ids again, hashed again: the hash depends on the id alone.
    for (size_t i = 1; i < N; i += 3) {
        assert_int_equal (idfilter_hash (s_id (1, i, 7)), hashes[i]);
    }
    free (hashes);
    idfilter_destroy (&filter);
    idfilter_destroy (&filter); //  safe twice
    assert_null (filter);
}

//  The share of `probes` ids of `kind` never added that the filter holding
//  `load` ids of the same kind answers "maybe".
static double
s_false_present (size_t capacity, size_t load, int kind, size_t probes)
{
    idfilter_t *filter = idfilter_new (capacity);
    assert_non_null (filter);
    for (size_t i = 0; i < load; i++) {
        idfilter_add (filter, idfilter_hash (s_id (kind, i, 1)));
    }
    size_t maybe = 0;
    for (size_t i = 0; i < probes; i++) {
        //  Sequential ids continue after the added ones; random ones are new.
        maybe += idfilter_may_hold (filter, idfilter_hash (s_id (kind, load + i, 1)));
    }
    idfilter_destroy (&filter);
    return (double) maybe / (double) probes;
}

static void
test_false_present_rate (void **state)
{
    (void) state;
    s_seed ("false_present_rate");
    size_t cap = 1u << 17; //  2^12 blocks: the rates do not depend on the size
    for (int kind = 0; kind < 3; kind++) {
        double at1 = s_false_present (cap, cap, kind, 1u << 19);
        double at2 = s_false_present (cap, 2 * cap, kind, 1u << 18);
        double at4 = s_false_present (cap, 4 * cap, kind, 1u << 18);
        printf ("kind %d: false present %.4f%% at capacity, %.3f%% at 2x, %.2f%% at 4x\n", kind,
                at1 * 100, at2 * 100, at4 * 100);
        assert_true (at1 < 0.003);
        assert_true (at2 < 0.05);
        assert_true (at4 < 0.40);
    }
    //  A filter holding nothing answers "absent" to everything.
    assert_true (s_false_present (cap, 0, 0, 1u << 16) == 0.0);
}

static void
test_limits (void **state)
{
    (void) state;
    s_seed ("limits");
    idfilter_t *filter = idfilter_new (0);
    assert_non_null (filter);
    assert_int_equal (idfilter_capacity (filter), IDFILTER_KEYS_FLOOR);
    assert_int_equal (idfilter_bytes (filter),
                      (size_t) IDFILTER_KEYS_FLOOR * IDFILTER_BITS_PER_KEY / 8);
    assert_int_equal (idfilter_count (filter), 0);
    assert_false (idfilter_full (filter));
    idfilter_destroy (&filter);
    //  Rounded up to a power of two.
    filter = idfilter_new (IDFILTER_KEYS_MIN + 1);
    assert_non_null (filter);
    assert_int_equal (idfilter_capacity (filter), 2 * (size_t) IDFILTER_KEYS_MIN);
    idfilter_destroy (&filter);
    //  The smallest filter, filled to four times its capacity: every id kept.
    filter = idfilter_new (1);
    assert_non_null (filter);
    assert_int_equal (idfilter_capacity (filter), IDFILTER_KEYS_FLOOR);
    for (size_t i = 0; i < 4 * IDFILTER_KEYS_FLOOR; i++) {
        idfilter_add (filter, idfilter_hash ((rl_id_t){.lo = i + 1, .hi = 3}));
    }
    assert_true (idfilter_full (filter));
    for (size_t i = 0; i < 4 * IDFILTER_KEYS_FLOOR; i++) {
        assert_true (idfilter_may_hold (filter, idfilter_hash ((rl_id_t){.lo = i + 1, .hi = 3})));
    }
    idfilter_destroy (&filter);
    //  Hostile sizes are clamped to the largest filter, which never asks to
    //  grow however many ids it takes (its bits are allocated but untouched).
    filter = idfilter_new (SIZE_MAX);
    assert_non_null (filter);
    assert_int_equal (idfilter_capacity (filter), IDFILTER_KEYS_MAX);
    assert_int_equal (idfilter_bytes (filter),
                      (size_t) IDFILTER_KEYS_MAX * IDFILTER_BITS_PER_KEY / 8);
    for (size_t i = 0; i < 1000; i++) {
        idfilter_add (filter, idfilter_hash (s_id (0, i, 0)));
    }
    assert_false (idfilter_full (filter));
    idfilter_destroy (&filter);
    //  Hashes at the edges of the block index and of the bit selection.
    filter = idfilter_new (0);
    const uint64_t edges[] = {0,           UINT64_MAX,           1, (uint64_t) 1 << 63,
                              0xffffffffu, 0xffffffff00000000ull};
    for (size_t i = 0; i < sizeof (edges) / sizeof (edges[0]); i++) {
        idfilter_add (filter, edges[i]);
    }
    for (size_t i = 0; i < sizeof (edges) / sizeof (edges[0]); i++) {
        assert_true (idfilter_may_hold (filter, edges[i]));
        idfilter_prefetch (filter, edges[i]);
    }
    idfilter_destroy (&filter);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_no_false_absent),
        cmocka_unit_test (test_false_present_rate),
        cmocka_unit_test (test_limits),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
