/*  failpoint.h: named places where a test can make the process crash, fail
    or stall, compiled into every build so that the tested binary is the
    shipped one.

    Off unless the environment turns them on:

        RL_FAILPOINTS="name=action[,name=action...]"
            action:  crash            raise SIGKILL (no cleanup, like kill -9)
                     error            failpoint_hit returns -1: take the error path
                     delay:MS         sleep MS milliseconds, then go on
            suffix:  @N               act only on the Nth hit (1-based); without
                                      it, act on every hit
        RL_FAILPOINT_FILE=path
            before acting, append "name action\n" to this file and fsync it,
            so a test can assert that the point was really hit.

    An unknown name in RL_FAILPOINTS is an error reported by failpoint_init
    (the process should refuse to start). When no point is enabled, a hit
    costs one load and one predictable branch.

    Programs call failpoint_init at start, before they start threads. A
    program that does not is initialised lazily by its first hit; a bad
    RL_FAILPOINTS then stops the process with a message (there is nobody to
    return the error to). Hits may come from any thread.
*/
#ifndef RL_FAILPOINT_H
#define RL_FAILPOINT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
#define RL_FP_X(id, name, where) RL_FP_##id,
#include "failpoint_list.h"
#undef RL_FP_X
    RL_FP_COUNT
} rl_fp_t;

//  True when any point is armed, and before initialisation (so that the
//  first hit initialises). Atomic because hits come from any thread.
extern atomic_bool rl_failpoints_enabled;

//  Reads RL_FAILPOINTS and RL_FAILPOINT_FILE. Returns 0, or -1 (after
//  writing a message naming the bad entry into err) when the variable does
//  not parse or names an unknown point; then no point is armed. Safe to
//  call again (re-reads, disarms what is no longer named, and resets every
//  hit counter, so @N counts from the last call).
int failpoint_init (char *err, size_t err_size);

//  Slow path; call through RL_FAILPOINT. Returns 0, or -1 for "error".
int failpoint_hit_slow (rl_fp_t fp);

static inline int
failpoint_hit (rl_fp_t fp)
{
    return atomic_load_explicit (&rl_failpoints_enabled, memory_order_relaxed)
               ? failpoint_hit_slow (fp)
               : 0;
}

#define RL_FAILPOINT(id) failpoint_hit (RL_FP_##id)

size_t failpoint_count (void);            //  == RL_FP_COUNT
const char *failpoint_name (rl_fp_t fp);  //  stable name
const char *failpoint_where (rl_fp_t fp); //  description
int failpoint_find (const char *name);    //  index, or -1

#endif
