/*  now.c: reads the shard's two clocks (see now.h for which serves what).

    LIMITS: nanoseconds in 64 bits: the wall clock until the year 2554.
*/
#include "now.h"

#include <time.h>

static uint64_t
s_read_ns (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

now_t
now_read (void)
{
    return (now_t){.wall_ns = s_read_ns (CLOCK_REALTIME), .mono_ns = s_read_ns (CLOCK_MONOTONIC)};
}
