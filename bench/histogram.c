/*  histogram.c: the latency histogram of the benchmarks (see histogram.h). */
#include "histogram.h"

#include <assert.h>
#include <math.h>

static size_t
s_index (uint64_t v)
{
    if (v < HIST_SUB) {
        return (size_t) v;
    }
    int msb = 63 - __builtin_clzll (v);
    int shift = msb - HIST_SUB_BITS;
    return HIST_SUB + (size_t) shift * HIST_SUB + (size_t) ((v >> shift) & (HIST_SUB - 1));
}

static uint64_t
s_highest (size_t index)
{
    if (index < HIST_SUB) {
        return index;
    }
    size_t shift = (index - HIST_SUB) / HIST_SUB;
    uint64_t sub = (index - HIST_SUB) % HIST_SUB;
    return ((HIST_SUB + sub + 1) << shift) - 1;
}

void
hist_record (hist_t *h, uint64_t value_ns)
{
    size_t i = s_index (value_ns);
    assert (i < HIST_BUCKETS);
    h->counts[i]++;
    h->total++;
    if (value_ns > h->max) {
        h->max = value_ns;
    }
}

double
hist_ms (const hist_t *h, double p)
{
    assert (p > 0 && p <= 1);
    if (h->total == 0) {
        return 0;
    }
    uint64_t target = (uint64_t) ceil (p * (double) h->total);
    target = target < 1 ? 1 : target;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= target) {
            uint64_t v = s_highest (i);
            return (double) (v < h->max ? v : h->max) / 1e6;
        }
    }
    return (double) h->max / 1e6;
}

double
hist_max_ms (const hist_t *h)
{
    return (double) h->max / 1e6;
}
