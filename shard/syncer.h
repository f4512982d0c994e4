/*  syncer.h: the thread that syncs a shard's group commits, so that the
    loop keeps reading and applying while the disk works (server.c, "The
    pipelined group commit").

    The loop writes a batch (store_write_group), then hands the sync of
    everything written so far to this thread with the sequence of the last
    batch written (syncer_start); one sync is in flight at a time. When it
    ends, the thread makes syncer_fd readable; the loop polls it and takes
    the result (syncer_take), then sends what that sync justifies and, if
    more was written meanwhile, starts the next sync: so every sync covers
    all the batches written while the one before it ran (group commit
    across turns).
*/
#ifndef RL_SYNCER_H
#define RL_SYNCER_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct syncer_t syncer_t;

//  Starts the thread. NULL when memory, a pipe or a thread ran out.
syncer_t *syncer_new (store_t *store);
//  Waits for a sync in flight to end (its result is dropped), then stops
//  the thread.
void syncer_destroy (syncer_t **self_p);
//  Syncs every write made so far, on the thread; seq: the last batch
//  written, returned by syncer_take. Not while busy.
void syncer_start (syncer_t *self, uint64_t seq);
//  Is a sync in flight (started and not yet taken)?
bool syncer_busy (const syncer_t *self);
//  Readable once the sync in flight has ended; for zloop_poller.
int syncer_fd (const syncer_t *self);
//  The ended sync: true with *seq_p (as started), *rc_p (0, or -1: the
//  store failed) and *sync_us_p (its duration); false when none has ended
//  (a spurious wake-up). The syncer is then idle.
bool syncer_take (syncer_t *self, uint64_t *seq_p, int *rc_p, int64_t *sync_us_p);

#endif
