/*  histogram.h: the latency histogram of the benchmarks (rlbench, shard_bench).

    Log-linear, values in ns: values below HIST_SUB are exact; above, each
    power of two is split into HIST_SUB buckets, so a percentile is within
    1/64 (1.6%) of the true value. A percentile reports the bucket's highest
    value, capped at the exact maximum, like HdrHistogram's "highest
    equivalent value". Recording is O(1) and allocates nothing; the whole
    range of uint64_t fits, so no value is ever dropped.

    INVARIANTS
    1. total == the sum of counts; max is the largest value recorded.
    2. hist_ms (h, p) is monotonic in p and never above max.

    LIMITS
    HIST_BUCKETS buckets of 8 bytes (about 30 KiB per histogram).
*/
#ifndef RL_HISTOGRAM_H
#define RL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6 //  64 sub-buckets per octave
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (HIST_SUB * (64 - HIST_SUB_BITS + 1))

typedef struct {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} hist_t;

void hist_record (hist_t *h, uint64_t value_ns);
//  The p-th quantile (0 < p <= 1) in ms; 0 for an empty histogram.
double hist_ms (const hist_t *h, double p);
//  The largest value in ms.
double hist_max_ms (const hist_t *h);

#endif
