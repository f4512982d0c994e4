/*  test_arcs.c: the arcs whose data a shard holds (shard/arcs.c), on an
    in-memory store.

    Every check compares the set with what the rings say, point by point,
    over points drawn at random (RL_SEED replays) plus the boundaries of
    every ring point and the ends of the hash space: a new cluster holds
    all its arcs; a ring change leaves exactly the gained hash space not
    received; an arc gained, lost and gained again stays not received;
    an arc held, lost and regained by rings alone (also across restarts
    with newer ring files) is received again, but one handed over
    (arcs_forget) and regained by a ring stays not received until its data
    arrives; the sets survive a reopen, and a newer ring at open is a ring
    change; marking an arc received (the whole space, across the wrap)
    empties it; a migration's freeze counts in the frozen arcs; a whole
    arc is held all, in part or not at all (arcs_arc_received); the stored
    form 1 still reads; stored bytes that lie are refused.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "arcs.h"
#include "ring.h"
#include "rl_rand.h"
#include "store.h"

#define S_POINTS 5000 //  random points checked per comparison

typedef struct {
    store_env_t *env;
    store_t *store;
    uint64_t seed;
} s_ctx_t;

static ring_t *
s_ring (uint64_t epoch, const char *const *names, size_t count)
{
    ring_t *ring = ring_new (epoch);
    assert_non_null (ring);
    for (size_t i = 0; i < count; i++) {
        char endpoint[64];
        snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%zu", 7000 + i);
        assert_int_equal (ring_add_shard (ring, names[i], endpoint, 1.0), RING_OK);
    }
    return ring;
}

//  Is the point one that `name` gained from `before` to `after`?
static bool
s_gained (const ring_t *before, const ring_t *after, const char *name, uint64_t point)
{
    int now = ring_lookup (after, point);
    int then = ring_lookup (before, point);
    return strcmp (ring_shard_name (after, (size_t) now), name) == 0
           && strcmp (ring_shard_name (before, (size_t) then), name) != 0;
}

//  arcs_received(p) must equal want(p) at every checked point.
typedef bool (s_want_fn) (const void *arg, uint64_t point);

static void
s_check (s_ctx_t *ctx, const arcs_t *arcs, const ring_t *ring, s_want_fn *want, const void *arg)
{
    uint64_t state = ctx->seed;
    for (size_t i = 0; i < S_POINTS + 4 * ring_point_count (ring) + 2; i++) {
        uint64_t p;
        size_t k = i - S_POINTS;
        if (i < S_POINTS) {
            p = rl_rand_next (&state);
        } else if (k < 4 * ring_point_count (ring)) {
            p = ring_point_position (ring, k / 4) + (k % 4) - 1; //  -1, 0, +1, +2 around it
        } else {
            p = k % 2 ? UINT64_MAX : 0;
        }
        if (arcs_received (arcs, p) != want (arg, p)) {
            fail_msg ("point %016llx: received %d, expected %d", (unsigned long long) p,
                      arcs_received (arcs, p), want (arg, p));
        }
    }
}

static bool
s_want_all (const void *arg, uint64_t point)
{
    (void) arg;
    (void) point;
    return true;
}

typedef struct {
    const ring_t *before;
    const ring_t *after;
    const char *name;
} s_change_t;

static bool
s_want_not_gained (const void *arg, uint64_t point)
{
    const s_change_t *c = arg;
    return !s_gained (c->before, c->after, c->name, point);
}

static arcs_t *
s_open (s_ctx_t *ctx, const char *name, const ring_t *ring, const ring_t *stored, bool *write_p)
{
    char err[256] = "";
    bool write = false;
    arcs_t *arcs = arcs_open (ctx->store, name, ring, stored, &write, err, sizeof (err));
    if (!arcs) {
        fail_msg ("arcs_open: %s", err);
    }
    assert_int_equal (store_commit (ctx->store), 0);
    if (write_p) {
        *write_p = write;
    }
    return arcs;
}

static void
test_changes (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x", "y", "z"};
    ring_t *a = s_ring (1, names, 2); //  x, y
    ring_t *b = ring_dup (a);         //  + z
    assert_int_equal (ring_add_shard (b, "z", "tcp://127.0.0.1:7002", 1.0), RING_OK);
    ring_set_epoch (b, 2);
    ring_t *c = ring_dup (a); //  a again
    ring_set_epoch (c, 3);
    ring_t *d = ring_dup (b); //  b again
    ring_set_epoch (d, 4);

    //  z: a new cluster whose first ring names no z, then gains.
    bool write = false;
    arcs_t *z = s_open (ctx, "z", a, NULL, &write);
    assert_true (write);
    assert_int_equal (arcs_unreceived_count (z), 0);
    s_check (ctx, z, a, s_want_all, NULL);
    assert_int_equal (arcs_ring_change (z, a, b), 0);
    assert_int_equal (store_commit (ctx->store), 0);
    assert_true (arcs_unreceived_count (z) > 0);
    assert_int_equal (arcs_epoch (z), 2);
    s_change_t gained = {a, b, "z"};
    s_check (ctx, z, b, s_want_not_gained, &gained);
    uint64_t count_b = arcs_unreceived_count (z);
    //  Lost: nothing left; gained again: the same set as before.
    assert_int_equal (arcs_ring_change (z, b, c), 0);
    assert_int_equal (arcs_unreceived_count (z), 0);
    assert_int_equal (arcs_ring_change (z, c, d), 0);
    assert_int_equal (store_commit (ctx->store), 0);
    assert_int_equal (arcs_unreceived_count (z), count_b);
    s_check (ctx, z, d, s_want_not_gained, &gained);
    //  Reopened: the same set; reopened with a newer ring than stored (d,
    //  epoch 4): a ring change at open (c is "epoch 5" a again: all lost).
    arcs_destroy (&z);
    z = s_open (ctx, "z", d, d, &write);
    assert_false (write);
    assert_int_equal (arcs_unreceived_count (z), count_b);
    s_check (ctx, z, d, s_want_not_gained, &gained);
    arcs_destroy (&z);
    ring_set_epoch (c, 5);
    z = s_open (ctx, "z", c, d, &write);
    assert_true (write);
    assert_int_equal (arcs_epoch (z), 5);
    assert_int_equal (arcs_unreceived_count (z), 0);
    //  A ring newer than the arcs without the ring they were kept for.
    char err[256] = "";
    ring_set_epoch (b, 7);
    arcs_t *none = arcs_open (ctx->store, "z", b, a, &write, err, sizeof (err));
    assert_null (none);
    assert_non_null (strstr (err, "kept for ring epoch 5"));
    store_batch_discard (ctx->store);
    arcs_destroy (&z);
    ring_destroy (&a);
    ring_destroy (&b);
    ring_destroy (&c);
    ring_destroy (&d);
}

//  x holds its arcs, loses some to w (a ring alone, nothing handed over),
//  regains them: it still holds their data, the only copy, so they count
//  as received again, also across a reopen at a newer ring (a shard
//  restarted with a newer ring file, then given its arcs back).
static void
test_lost_and_regained (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x", "y"};
    ring_t *a = s_ring (1, names, 2);
    ring_t *b = ring_dup (a);
    assert_int_equal (ring_add_shard (b, "w", "tcp://127.0.0.1:7009", 2.0), RING_OK);
    ring_set_epoch (b, 2);
    ring_t *c = ring_dup (a);
    ring_set_epoch (c, 3);
    arcs_t *x = s_open (ctx, "x", a, NULL, NULL);
    arcs_destroy (&x);
    bool write = false;
    x = s_open (ctx, "x", b, a, &write); //  restarted with b
    assert_true (write);
    assert_int_equal (arcs_unreceived_count (x), 0); //  it only lost
    size_t kept = 0;
    for (size_t i = 0; i < ring_point_count (b); i++) {
        uint64_t p = ring_point_position (b, i);
        bool was = strcmp (ring_shard_name (a, (size_t) ring_lookup (a, p)), "x") == 0;
        bool is = strcmp (ring_shard_name (b, (size_t) ring_lookup (b, p)), "x") == 0;
        assert_int_equal (arcs_kept (x, p), was && !is);
        kept += was && !is;
    }
    assert_true (kept > 0);
    arcs_destroy (&x);
    x = s_open (ctx, "x", c, b, &write); //  restarted with c: given back
    assert_int_equal (arcs_unreceived_count (x), 0);
    s_check (ctx, x, c, s_want_all, NULL);
    for (size_t i = 0; i < ring_point_count (b); i++) {
        assert_false (arcs_kept (x, ring_point_position (b, i)));
    }
    arcs_destroy (&x);
    ring_destroy (&a);
    ring_destroy (&b);
    ring_destroy (&c);
}

//  x loses arcs to w, hands every one of them over (the source's
//  handover), regains them by a ring alone: not received (their data
//  moved on); the data arrives again: received. An arc handed over in
//  part: only that part stays not received.
static void
test_handed_over_and_regained (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x", "y"};
    ring_t *a = s_ring (1, names, 2);
    ring_t *b = ring_dup (a);
    assert_int_equal (ring_add_shard (b, "w", "tcp://127.0.0.1:7009", 2.0), RING_OK);
    ring_set_epoch (b, 2);
    ring_t *c = ring_dup (a);
    ring_set_epoch (c, 3);
    ring_arc_t *diff = NULL;
    size_t count = 0;
    assert_int_equal (ring_diff_arcs (a, b, &diff, &count), RING_OK);
    int xi = ring_shard_find (a, "x");
    arcs_t *x = s_open (ctx, "x", a, NULL, NULL);
    assert_int_equal (arcs_ring_change (x, a, b), 0);
    //  Hand over every lost arc but the first one.
    size_t first = count, handed = 0;
    for (size_t i = 0; i < count; i++) {
        if (diff[i].from != xi) {
            continue;
        }
        if (first == count) {
            first = i;
            continue;
        }
        assert_int_equal (arcs_forget (x, diff[i].start, diff[i].end), 0);
        handed++;
    }
    assert_true (first < count && handed > 0);
    assert_int_equal (store_commit (ctx->store), 0);
    arcs_destroy (&x);
    x = s_open (ctx, "x", b, NULL, NULL); //  the sets survive a reopen
    assert_int_equal (arcs_ring_change (x, b, c), 0);
    assert_true (arcs_unreceived_count (x) >= 1);
    for (size_t i = 0; i < count; i++) {
        if (diff[i].from != xi) {
            continue;
        }
        uint64_t end = diff[i].end;
        assert_int_equal (arcs_received (x, end), i == first); //  kept one: received
    }
    assert_int_equal (arcs_mark_received (x, 42, 42), 0);
    assert_int_equal (arcs_unreceived_count (x), 0);
    s_check (ctx, x, c, s_want_all, NULL);
    assert_int_equal (store_commit (ctx->store), 0);
    free (diff);
    arcs_destroy (&x);
    ring_destroy (&a);
    ring_destroy (&b);
    ring_destroy (&c);
}

//  arcs_arc_received over whole arcs: z, new in ring b, holds none of each
//  arc it gained, part of one a point longer, all of the others' arcs;
//  once one is marked received, all of it.
static void
test_arc_received (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x", "y"};
    ring_t *a = s_ring (1, names, 2);
    ring_t *b = ring_dup (a);
    assert_int_equal (ring_add_shard (b, "z", "tcp://127.0.0.1:7002", 1.0), RING_OK);
    ring_set_epoch (b, 2);
    arcs_t *z = s_open (ctx, "z", a, NULL, NULL);
    assert_int_equal (arcs_ring_change (z, a, b), 0);
    assert_int_equal (store_commit (ctx->store), 0);
    int me = ring_shard_find (b, "z");
    size_t count = ring_point_count (b), gained = 0;
    uint64_t one_start = 0, one_end = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t prev = ring_point_position (b, i == 0 ? count - 1 : i - 1);
        uint64_t here = ring_point_position (b, i);
        if ((int) ring_point_owner (b, i) == me) {
            assert_int_equal (arcs_arc_received (z, prev, here), RING_SHARE_NONE);
            assert_int_equal (arcs_arc_received (z, prev, here + 1), RING_SHARE_PART);
            assert_int_equal (arcs_arc_received (z, prev - 1, here), RING_SHARE_PART);
            one_start = prev;
            one_end = here;
            gained++;
        } else {
            assert_int_equal (arcs_arc_received (z, prev, here), RING_SHARE_ALL);
        }
    }
    assert_true (gained > 0);
    assert_int_equal (arcs_arc_received (z, 0, 0), RING_SHARE_PART);
    assert_int_equal (arcs_mark_received (z, one_start, one_end), 0);
    assert_int_equal (store_commit (ctx->store), 0);
    assert_int_equal (arcs_arc_received (z, one_start, one_end), RING_SHARE_ALL);
    arcs_destroy (&z);
    ring_destroy (&a);
    ring_destroy (&b);
}

//  Status counts a migration's freeze with the arcs not received.
static void
test_freeze_counted (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x"};
    ring_t *a = s_ring (1, names, 1);
    arcs_t *x = s_open (ctx, "x", a, NULL, NULL);
    assert_int_equal (arcs_unreceived_count (x), 0);
    assert_false (arcs_waiting (x));
    arcs_freeze (x, 100, 200);
    assert_int_equal (arcs_unreceived_count (x), 1);
    assert_true (arcs_waiting (x));
    assert_false (arcs_received (x, 150));
    assert_true (arcs_received (x, 100));
    arcs_thaw (x);
    assert_int_equal (arcs_unreceived_count (x), 0);
    arcs_freeze (x, UINT64_MAX - 5, 5); //  across the wrap: one arc
    assert_int_equal (arcs_unreceived_count (x), 1);
    //  Whole arcs: inside the freeze, across its edge, outside it.
    assert_int_equal (arcs_arc_received (x, UINT64_MAX - 3, 2), RING_SHARE_NONE);
    assert_int_equal (arcs_arc_received (x, UINT64_MAX - 3, 10), RING_SHARE_PART);
    assert_int_equal (arcs_arc_received (x, 5, 100), RING_SHARE_ALL);
    assert_int_equal (arcs_arc_received (x, 7, 7), RING_SHARE_PART);
    arcs_thaw (x);
    assert_int_equal (arcs_arc_received (x, UINT64_MAX - 3, 2), RING_SHARE_ALL);
    assert_int_equal (arcs_arc_received (x, 7, 7), RING_SHARE_ALL);
    arcs_destroy (&x);
    ring_destroy (&a);
}

//  A shard alone, then a second one: the gained arcs wrap round 0; one
//  run across the wrap counts once; marking a wrapping arc received.
static void
test_wrap (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"p", "q"};
    ring_t *a = s_ring (1, names, 1);
    ring_t *b = s_ring (2, names, 2);
    arcs_t *q = s_open (ctx, "q", a, NULL, NULL);
    assert_int_equal (arcs_ring_change (q, a, b), 0);
    s_change_t gained = {a, b, "q"};
    s_check (ctx, q, b, s_want_not_gained, &gained);
    //  q's arcs of b, as the ring has them; one of them holds 0 or wraps.
    size_t points = ring_point_count (b);
    uint64_t arcs = 0;
    for (size_t i = 0; i < points; i++) {
        size_t prev = (i + points - 1) % points;
        bool mine = strcmp (ring_shard_name (b, ring_point_owner (b, i)), "q") == 0;
        bool prev_mine = strcmp (ring_shard_name (b, ring_point_owner (b, prev)), "q") == 0;
        arcs += mine && !prev_mine;
    }
    assert_int_equal (arcs_unreceived_count (q), arcs);
    //  Mark the arc (last point, first point] received: it wraps.
    uint64_t last = ring_point_position (b, points - 1);
    uint64_t first = ring_point_position (b, 0);
    assert_int_equal (arcs_mark_received (q, last, first), 0);
    assert_true (arcs_received (q, 0));
    assert_true (arcs_received (q, UINT64_MAX) || last == UINT64_MAX);
    assert_true (arcs_received (q, first));
    arcs_destroy (&q);
    ring_destroy (&a);
    ring_destroy (&b);
}

//  Stored bytes that lie are refused at open.
static void
test_bad_stored (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x"};
    ring_t *a = s_ring (1, names, 1);
    static const uint8_t bad[][16 + 32] = {
        {2, 0, 0, 0},                                     //  version 2, no kept count
        {1, 0, 0, 0, 3, 0, 0, 0},                         //  3 spans, none there
        {1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,  //  two spans out of order
         9, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,  //
         1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, //
        {3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, //  version 3
        {2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, //  2 kept spans, none there
         2, 0, 0, 0, 0, 0, 0, 0},
        {2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, //  kept count, then not 0
         0, 0, 0, 0, 7, 0, 0, 0},
        {2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,    //  a kept span lo > hi
         1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,    //
         1, 0, 0, 0, 0, 0, 0, 0},                           //
        {2, 0, 0, 0,    0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, //  huge kept count
         0, 0, 0, 0x7f, 0, 0, 0, 0},
    };
    static const size_t sizes[] = {16, 16, 48, 24, 24, 24, 40, 24};
    for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
        store_batch_put (ctx->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), bad[i],
                         sizes[i]);
        assert_int_equal (store_commit (ctx->store), 0);
        char err[256] = "";
        bool write = false;
        arcs_t *arcs = arcs_open (ctx->store, "x", a, NULL, &write, err, sizeof (err));
        assert_null (arcs);
        assert_non_null (strstr (err, "do not decode"));
    }
    ring_destroy (&a);
}

//  A stored set of form 1 (nothing kept) is read: its span not received,
//  the rest received; the next change writes form 2.
static void
test_stored_v1 (void **state)
{
    s_ctx_t *ctx = *state;
    static const char *names[] = {"x"};
    ring_t *a = s_ring (1, names, 1);
    static const uint8_t v1[32] = {1,  0, 0, 0, 1, 0, 0, 0, 1,  0, 0, 0, 0, 0, 0, 0,
                                   10, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0};
    store_batch_put (ctx->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), v1,
                     sizeof (v1));
    assert_int_equal (store_commit (ctx->store), 0);
    arcs_t *x = s_open (ctx, "x", a, NULL, NULL);
    assert_true (arcs_received (x, 9));
    assert_false (arcs_received (x, 10));
    assert_false (arcs_received (x, 20));
    assert_true (arcs_received (x, 21));
    assert_false (arcs_kept (x, 5));
    assert_int_equal (arcs_unreceived_count (x), 1);
    assert_int_equal (arcs_mark_received (x, 9, 20), 0);
    assert_int_equal (store_commit (ctx->store), 0);
    arcs_destroy (&x);
    x = s_open (ctx, "x", a, NULL, NULL);
    assert_int_equal (arcs_unreceived_count (x), 0);
    arcs_destroy (&x);
    ring_destroy (&a);
}

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    char err[256];
    ctx->env = store_env_new_mem ();
    ctx->store = store_open_env ("/arcs", RL_DURABILITY_SYNC, ctx->env, err, sizeof (err));
    assert_non_null (ctx->store);
    const char *seed = getenv ("RL_SEED");
    ctx->seed = (seed ? strtoull (seed, NULL, 10) : (uint64_t) time (NULL) * 2654435761u) | 1;
    printf ("RL_SEED=%llu\n", (unsigned long long) ctx->seed);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    store_close (&ctx->store);
    store_env_destroy (&ctx->env);
    free (ctx);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_changes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lost_and_regained, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_handed_over_and_regained, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_freeze_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_arc_received, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_stored_v1, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_wrap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_stored, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
