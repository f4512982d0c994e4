/*  xlog.h: the coordinator log of two-phase transfers.

    Every decision of a cross-shard transfer whose participant may hold a
    prepared record is logged here, in the batch that decides it, and stays
    until the participant acknowledges it. The entries live in memory (an
    attempts table of ATTEMPT_DECIDED entries) and in the `xlog` column
    family. See xlog.c for the invariants and limits.
*/
#ifndef RL_XLOG_H
#define RL_XLOG_H

#include <stddef.h>
#include <stdint.h>

#include "attempts.h"
#include "store.h"

typedef struct xlog_t xlog_t;

//  An empty log of at most `cap` entries; NULL when memory ran out.
xlog_t *xlog_new (store_t *store, size_t cap);
void xlog_destroy (xlog_t **self_p);
//  Loads the stored entries (recovery), each due for delivery at mono_ns
//  (monotonic: no timer is stored). 0, or -1 with a message in err.
int xlog_load (xlog_t *self, uint64_t mono_ns, uint64_t retry_ms, char *err, size_t err_size);
//  Logs `decision` for the live attempt: a new entry, put into the batch.
//  Its timers are the caller's. Returns the entry's index.
int32_t xlog_append (xlog_t *self, const attempt_t *live, uint32_t decision, uint64_t write_seq);
//  The entry of (id, attempt), or -1.
int32_t xlog_find (xlog_t *self, rl_id_t id, rl_attempt_t attempt);
//  Removes an acknowledged entry (its delete goes into the batch).
void xlog_remove (xlog_t *self, int32_t i);
//  The entries, for scans and lookups by the coordinator.
attempts_t *xlog_entries (xlog_t *self);
size_t xlog_count (const xlog_t *self);

#endif
