/*  rl_rand.h: the seeded pseudo-random generator of tests and benchmarks.

    xorshift64* (Vigna): fast, 64 bits of state, good enough for workloads
    and fault schedules, and reproducible from a printed seed, which is all
    a test needs. Not for anything secret (incarnation nonces come from the
    kernel).
*/
#ifndef RL_RAND_H
#define RL_RAND_H

#include <stdint.h>

//  Next value from *state, which must not be zero (seed with seed | 1, or
//  seed * odd + 1).
static inline uint64_t
rl_rand_next (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

#endif
