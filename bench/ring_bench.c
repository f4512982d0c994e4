/*  ring_bench.c: how fast, how balanced and how frugal the ring is.

    ring_bench [--quick] [--runs N] [--lookups N]

    1. Lookups per second at 4, 32 and 100 shards: ring_lookup (binary
       search over the points) beside jump consistent hash (Lamping and
       Veach 2014, a dozen lines below, for this comparison only). Both
       take a precomputed 64-bit point, so the id hash is not measured.
    2. Imbalance (max/mean ownership by weight) against points per weight
       at 10 and 100 shards: our placement, and plain random vnodes
       (points at XXH3("name#i")) whose figure is the median over several
       name sets.
    3. Movement: hash space moved when one shard is added or removed,
       divided by the ideal (1/(N+1) on add; the removed shard's share on
       remove), for both placements, at 4, 10, 32 and 100 shards.

    Timed figures are the median of --runs runs (default 5). --quick runs
    a small version of everything in well under 10 s (the ctest smoke).
    Balance and movement figures are exact (computed from the arcs), not
    sampled, and do not vary between runs.
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "ring.h"
#include "rl_rand.h"

#define S_RUNS_DEFAULT    5
#define S_RUNS_MAX        101
#define S_LOOKUPS_DEFAULT 4000000 //  points looked up per timed run
#define S_LOOKUPS_QUICK   200000
#define S_NAME_SETS       5  //  random-vnode name sets per median
#define S_TEXT_LINE_SIZE  80 //  bytes per point line, generous

static double
s_now_s (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static int
s_double_compare (const void *left, const void *right)
{
    double a = *(const double *) left;
    double b = *(const double *) right;
    return a < b ? -1 : a > b;
}

static double
s_median (double *values, size_t count)
{
    qsort (values, count, sizeof (double), s_double_compare);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

//  Jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory,
//  Consistent Hash Algorithm", 2014).
static int32_t
s_jump_hash (uint64_t key, int32_t buckets)
{
    int64_t bucket = -1;
    int64_t next = 0;
    while (next < buckets) {
        bucket = next;
        key = key * 2862933555777941757ull + 1;
        next = (int64_t) ((double) (bucket + 1)
                          * ((double) (1ll << 31) / (double) ((key >> 33) + 1)));
    }
    return (int32_t) bucket;
}

//  The benchmark cannot go on without its memory: says why and exits 1.
static void
s_need (const void *mem, const char *what)
{
    if (!mem) {
        fprintf (stderr, "ring_bench: out of memory (%s)\n", what);
        exit (1);
    }
}

//  A ring call that cannot fail on the benchmark's own input but for want
//  of memory: says why and exits 1.
static void
s_need_ok (int rc, const char *what)
{
    if (rc != RING_OK) {
        fprintf (stderr, "ring_bench: %s: %s\n", what, ring_strerror (rc));
        exit (1);
    }
}

//  A ring of `count` shards placed by ring_add_shard, weight 1.
static ring_t *
s_our_ring (size_t count, uint32_t points_per_weight)
{
    ring_t *ring = ring_new (1);
    s_need (ring, "a ring");
    s_need_ok (ring_set_points_per_weight (ring, points_per_weight), "points per weight");
    for (size_t i = 0; i < count; i++) {
        char name[RL_SHARD_NAME_SIZE_MAX];
        snprintf (name, sizeof name, "s%zu", i + 1);
        s_need_ok (ring_add_shard (ring, name, "tcp://127.0.0.1:7100", 1.0), "add a shard");
    }
    return ring;
}

//  A ring of random vnodes: shard i of `count` gets `points` points at
//  XXH3("<set>s<i>#<j>"); shard `skip` (1-based, 0 for none) is left out.
//  Built through the text form so that the library measures it.
static ring_t *
s_random_ring (size_t count, size_t points, unsigned set, size_t skip)
{
    size_t size = 64 + count * (64 + points * S_TEXT_LINE_SIZE);
    char *text = (char *) malloc (size);
    s_need (text, "a ring's text");
    size_t used = (size_t) snprintf (text, size, "epoch 1\n");
    for (size_t i = 1; i <= count; i++) {
        if (i != skip) {
            used += (size_t) snprintf (text + used, size - used,
                                       "shard s%zu tcp://127.0.0.1:7100 weight 1\n", i);
        }
    }
    for (size_t i = 1; i <= count; i++) {
        for (size_t j = 0; j < points && i != skip; j++) {
            char key[64];
            int key_size = snprintf (key, sizeof key, "%us%zu#%zu", set, i, j);
            uint64_t position = XXH3_64bits (key, (size_t) key_size);
            used += (size_t) snprintf (text + used, size - used, "point %016" PRIx64 " s%zu\n",
                                       position, i);
        }
    }
    assert (used < size);
    char err[256];
    ring_t *ring = ring_from_text (text, err, sizeof err);
    if (!ring) {
        fprintf (stderr, "ring_bench: %s\n", err);
        exit (1);
    }
    free (text);
    return ring;
}

static double
s_moved (const ring_t *a, const ring_t *b)
{
    ring_flow_t *flows = NULL;
    size_t count = 0;
    s_need_ok (ring_diff_flows (a, b, &flows, &count), "diff two rings");
    double moved = 0;
    for (size_t f = 0; f < count; f++) {
        moved += flows[f].fraction;
    }
    free (flows);
    return moved;
}

//  1. Lookups ---------------------------------------------------------------------

static void
s_bench_lookups (size_t runs, size_t lookups)
{
    static const size_t sizes[] = {4, 32, 100};
    uint64_t *points = (uint64_t *) malloc (lookups * sizeof (uint64_t));
    s_need (points, "the lookup points");
    uint64_t state = 42; //  rl_rand: any state but zero
    for (size_t k = 0; k < lookups; k++) {
        points[k] = rl_rand_next (&state);
    }
    printf ("## lookups per second (median of %zu runs of %zu lookups)\n\n", runs, lookups);
    printf ("| shards | ring points | ring (M/s) | jump hash (M/s) |\n|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        ring_t *ring = s_our_ring (sizes[s], RL_RING_POINTS_PER_WEIGHT);
        double ring_rates[S_RUNS_MAX];
        double jump_rates[S_RUNS_MAX];
        uint64_t checksum = 0;
        for (size_t r = 0; r < runs; r++) {
            double start = s_now_s ();
            for (size_t k = 0; k < lookups; k++) {
                checksum += (uint64_t) ring_lookup (ring, points[k]);
            }
            double middle = s_now_s ();
            for (size_t k = 0; k < lookups; k++) {
                checksum += (uint64_t) s_jump_hash (points[k], (int32_t) sizes[s]);
            }
            double end = s_now_s ();
            ring_rates[r] = (double) lookups / (middle - start) / 1e6;
            jump_rates[r] = (double) lookups / (end - middle) / 1e6;
        }
        printf ("| %zu | %zu | %.1f | %.1f |\n", sizes[s], ring_point_count (ring),
                s_median (ring_rates, runs), s_median (jump_rates, runs));
        fprintf (stderr, "(checksum %" PRIu64 ")\n", checksum);
        ring_destroy (&ring);
    }
    printf ("\n");
    free (points);
}

//  2. Balance -----------------------------------------------------------------------

static double
s_random_imbalance (size_t count, size_t points)
{
    double values[S_NAME_SETS];
    for (unsigned set = 0; set < S_NAME_SETS; set++) {
        ring_t *ring = s_random_ring (count, points, set, 0);
        values[set] = ring_imbalance (ring);
        ring_destroy (&ring);
    }
    return s_median (values, S_NAME_SETS);
}

static void
s_bench_balance (int quick)
{
    static const uint32_t ppws[] = {16, 32, 64, 128, 256};
    static const size_t sizes[] = {10, 100};
    size_t ppw_count = quick ? 2 : sizeof ppws / sizeof ppws[0];
    printf ("## imbalance (max/mean ownership) against points per shard\n\n");
    printf ("| shards | points per shard | ours: imbalance | ours: points in ring | "
            "random vnodes: imbalance (median of %d name sets) |\n|---|---|---|---|---|\n",
            S_NAME_SETS);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t p = 0; p < ppw_count; p++) {
            ring_t *ring = s_our_ring (sizes[s], ppws[p]);
            printf ("| %zu | %" PRIu32 " | %.4f | %zu | %.4f |\n", sizes[s], ppws[p],
                    ring_imbalance (ring), ring_point_count (ring),
                    s_random_imbalance (sizes[s], ppws[p]));
            ring_destroy (&ring);
        }
    }
    printf ("\n");
}

//  3. Movement ---------------------------------------------------------------------

static void
s_bench_movement (int quick)
{
    static const size_t sizes[] = {4, 10, 32, 100};
    size_t size_count = quick ? 2 : sizeof sizes / sizeof sizes[0];
    printf ("## movement: hash space moved / ideal, one shard added or removed\n\n");
    printf ("| shards | ours: add | ours: remove | random vnodes (160/shard): add | "
            "random vnodes: remove | ours: points added by the add |\n"
            "|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < size_count; s++) {
        size_t count = sizes[s];
        ring_t *ours = s_our_ring (count, RL_RING_POINTS_PER_WEIGHT);
        ring_t *added = ring_dup (ours);
        ring_t *removed = ring_dup (ours);
        s_need (added && removed ? added : NULL, "copies of a ring");
        s_need_ok (ring_add_shard (added, "new", "tcp://127.0.0.1:7100", 1.0), "add a shard");
        s_need_ok (ring_remove_shard (removed, "s1"), "remove a shard");
        double add_ratio = s_moved (ours, added) * (double) (count + 1);
        double remove_ratio = s_moved (ours, removed) / ring_shard_ownership (ours, 0);
        ring_t *random_ring = s_random_ring (count, 160, 0, 0);
        ring_t *random_added = s_random_ring (count + 1, 160, 0, 0);
        ring_t *random_removed = s_random_ring (count, 160, 0, 1);
        double random_add = s_moved (random_ring, random_added) * (double) (count + 1);
        double random_remove = s_moved (random_ring, random_removed)
                               / ring_shard_ownership (random_ring, 0);
        printf ("| %zu | %.4f | %.4f | %.4f | %.4f | %zu |\n", count, add_ratio, remove_ratio,
                random_add, random_remove, ring_point_count (added) - ring_point_count (ours));
        ring_destroy (&ours);
        ring_destroy (&added);
        ring_destroy (&removed);
        ring_destroy (&random_ring);
        ring_destroy (&random_added);
        ring_destroy (&random_removed);
    }
    printf ("\n");
}

int
main (int argc, char **argv)
{
    int quick = 0;
    size_t runs = S_RUNS_DEFAULT;
    size_t lookups = S_LOOKUPS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--quick") == 0) {
            quick = 1;
            runs = 3;
            lookups = S_LOOKUPS_QUICK;
        } else if (strcmp (argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtoul (argv[++i], NULL, 10);
        } else if (strcmp (argv[i], "--lookups") == 0 && i + 1 < argc) {
            lookups = strtoul (argv[++i], NULL, 10);
        } else {
            fprintf (stderr, "usage: ring_bench [--quick] [--runs N] [--lookups N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > S_RUNS_MAX || lookups < 1) {
        fprintf (stderr, "ring_bench: --runs is 1..%d, --lookups at least 1\n", S_RUNS_MAX);
        return 2;
    }
    s_bench_lookups (runs, lookups);
    s_bench_balance (quick);
    s_bench_movement (quick);
    return 0;
}
