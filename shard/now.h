/*  now.h: the shard's two clocks, read together once per call into the
    state machines.

    The wall clock (CLOCK_REALTIME) may step either way: an operator sets
    the date, NTP steps it. It is used only for what is written into records
    as a date: transfer and account timestamps (made strictly increasing by
    journal.c whatever the clock does) and the creation time shown by
    in_doubt. The monotonic clock (CLOCK_MONOTONIC) only advances, and runs
    every timer: prepare deadlines, resend and query backoff, tombstone
    expiry. A monotonic value means nothing in another process, so none is
    ever stored: timers are re-armed from the time of loading.

    The state machines (ledger.c and the modules under it) never read a
    clock: the caller passes a now_t, which a simulation makes up.
*/
#ifndef RL_NOW_H
#define RL_NOW_H

#include <stdint.h>

typedef struct {
    uint64_t wall_ns; //  CLOCK_REALTIME: timestamps and dates written into records
    uint64_t mono_ns; //  CLOCK_MONOTONIC: every timer; never stored
} now_t;

//  Both clocks, now.
now_t now_read (void);

#endif
