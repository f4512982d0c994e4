/*  test_idmap.c: the shard's id hash map against a plain array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "rl_rand.h"
#include "idmap.h"

static uint64_t s_rng;

static uint64_t
s_rand (void)
{
    return rl_rand_next (&s_rng);
}

//  A reserve grows the table at once, keeping what it holds; puts up to
//  the reserve grow nothing more.
static void
test_reserve (void **state)
{
    (void) state;
    enum { HELD = 1000, MORE = 50000 };
    idmap_t *map = idmap_new (16);
    assert_non_null (map);
    for (uint64_t i = 1; i <= HELD; i++) {
        assert_int_equal (idmap_put (map, (rl_id_t){.lo = i, .hi = 7}, i), 0);
    }
    assert_true (idmap_capacity (map) < HELD + MORE);
    assert_int_equal (idmap_reserve (map, HELD + MORE), 0);
    size_t capacity = idmap_capacity (map);
    assert_true (capacity >= HELD + MORE);
    assert_int_equal (idmap_reserve (map, 10), 0); //  never shrinks
    assert_int_equal (idmap_capacity (map), capacity);
    for (uint64_t i = HELD + 1; i <= HELD + MORE; i++) {
        assert_int_equal (idmap_put (map, (rl_id_t){.lo = i, .hi = 7}, i), 0);
    }
    assert_int_equal (idmap_capacity (map), capacity);
    assert_int_equal (idmap_size (map), HELD + MORE);
    for (uint64_t i = 1; i <= HELD + MORE; i++) {
        uint64_t v = 0;
        assert_true (idmap_get (map, (rl_id_t){.lo = i, .hi = 7}, &v));
        assert_int_equal (v, i);
    }
    idmap_destroy (&map);
}

static void
test_put_get_grow_clear (void **state)
{
    (void) state;
    uint64_t seed = (uint64_t) time (NULL);
    printf ("test_idmap: seed %lu\n", (unsigned long) seed);
    s_rng = seed | 1;
    enum { N = 100000 };
    rl_id_t *ids = calloc (N, sizeof (*ids));
    idmap_t *map = idmap_new (16); //  small: forces many doublings
    assert_non_null (map);
    for (size_t i = 0; i < N; i++) {
        //  Half sequential ids (as clients often use), half random.
        ids[i] = i % 2 ? (rl_id_t){.lo = i + 1, .hi = 0} : (rl_id_t){s_rand (), s_rand ()};
        assert_int_equal (idmap_put (map, ids[i], i), 0);
    }
    assert_int_equal (idmap_size (map), N);
    for (size_t i = 0; i < N; i++) {
        uint64_t v = 0;
        assert_true (idmap_get (map, ids[i], &v));
        assert_int_equal (v, i);
    }
    assert_int_equal (idmap_put (map, ids[5], 42), 0); //  replace
    assert_int_equal (idmap_size (map), N);
    uint64_t v = 0;
    assert_true (idmap_get (map, ids[5], &v));
    assert_int_equal (v, 42);
    assert_false (idmap_get (map, (rl_id_t){.lo = 0, .hi = 0}, NULL));
    assert_false (idmap_get (map, (rl_id_t){.lo = N + 10, .hi = 0}, NULL));
    idmap_clear (map);
    assert_int_equal (idmap_size (map), 0);
    assert_false (idmap_get (map, ids[1], NULL));
    idmap_destroy (&map);
    idmap_destroy (&map); //  safe twice
    assert_null (map);
    free (ids);
}

//  Removal keeps every other key reachable (backward shift), under churn,
//  in a map that starts small and in one with a large hint (which starts at
//  IDMAP_SLOTS_FIRST_MAX slots and grows as it fills).
static void
s_remove_churn (size_t hint)
{
    enum { N = 20000, ROUNDS = 20 };
    idmap_t *map = idmap_new (hint);
    rl_id_t *ids = calloc (N, sizeof (*ids));
    bool *live = calloc (N, sizeof (*live));
    s_rng = 12345;
    for (size_t i = 0; i < N; i++) {
        ids[i] = (rl_id_t){.lo = i + 1, .hi = s_rand () % 4}; //  unique, clustered
    }
    size_t count = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < N; i++) {
            if (s_rand () % 2) {
                if (!live[i]) {
                    assert_int_equal (idmap_put (map, ids[i], i), 0);
                    live[i] = true;
                    count++;
                }
            } else if (live[i]) {
                assert_true (idmap_remove (map, ids[i]));
                live[i] = false;
                count--;
            } else {
                assert_false (idmap_remove (map, ids[i]));
            }
        }
        assert_int_equal (idmap_size (map), count);
        for (size_t i = 0; i < N; i++) {
            uint64_t v = 0;
            assert_int_equal (idmap_get (map, ids[i], &v), live[i]);
            if (live[i]) {
                assert_int_equal (v, i);
            }
        }
    }
    idmap_destroy (&map);
    free (ids);
    free (live);
}

static void
test_remove_churn (void **state)
{
    (void) state;
    s_remove_churn (64);
    s_remove_churn (327681); //  the participant's records table
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_reserve),
        cmocka_unit_test (test_remove_churn),
        cmocka_unit_test (test_put_get_grow_clear),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
