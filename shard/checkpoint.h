/*  checkpoint.h: a shard's checkpoint, written by a thread of its own.

    The loop hands over a frozen generation of transfers (journal.c) and a
    copy of the accounts they changed; a background thread sorts and
    ingests the derived indexes and writes the accounts (in pieces) and
    checkpoint_ts (in a synced batch), while the loop goes on serving. See
    checkpoint.c for the design, the states and the invariants.
*/
#ifndef RL_CHECKPOINT_H
#define RL_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idfilter.h"
#include "proto.h"
#include "store.h"

typedef struct checkpoint_t checkpoint_t;

typedef enum {
    CHECKPOINT_IDLE = 0,  //  no checkpoint handed over
    CHECKPOINT_WRITING,   //  background: sorting, writing and ingesting the index SSTs
    CHECKPOINT_INGESTED,  //  background: indexes ingested, writing the checkpoint batch
    CHECKPOINT_COMMITTED, //  background done: the batch is synced; the loop finishes
    CHECKPOINT_FAILED,    //  background done: a step failed; the shard must fail
} checkpoint_state_t;

//  NULL when memory ran out.
checkpoint_t *checkpoint_new (store_t *store);
//  Accounts per piece of the checkpoint's account writes (checkpoint.c,
//  "PIECES"); the default, and a setter (loop thread, IDLE; tests and the
//  shard's --checkpoint-piece-accounts).
#define CHECKPOINT_PIECE_ACCOUNTS 256
void checkpoint_set_piece_accounts (checkpoint_t *self, size_t accounts);
//  Waits for a checkpoint in the background to end first.
void checkpoint_destroy (checkpoint_t **self_p);

//  Loop thread, IDLE: room for `count` account records to copy into before
//  checkpoint_start. NULL when memory ran out.
rl_account_t *checkpoint_accounts (checkpoint_t *self, size_t count);
//  Loop thread, IDLE: starts the checkpoint of `transfers` (the frozen
//  generation, timestamp order; read by the background until
//  checkpoint_wait returns) and of the `account_count` records filled into
//  checkpoint_accounts, ending at checkpoint_ts. Leaves IDLE at once.
void checkpoint_start (checkpoint_t *self, const rl_transfer_t *transfers, size_t count,
                       size_t account_count, uint64_t checkpoint_ts);
//  Loop thread, IDLE, before checkpoint_start: the checkpoint's batch, for
//  writes that must become durable with this checkpoint's accounts and
//  checkpoint_ts, neither before nor after (the staged copies of accounts
//  a migration handed over, which the snapshot now holds: ledger.c).
store_batch_t *checkpoint_batch (checkpoint_t *self);
//  Any state, without blocking.
checkpoint_state_t checkpoint_state (checkpoint_t *self);
//  Loop thread, not IDLE: waits for the background to end (at once when it
//  has: COMMITTED or FAILED), then back to IDLE. 0 committed, -1 failed.
int checkpoint_wait (checkpoint_t *self);
//  Is a checkpoint handed over and not yet waited for?
bool checkpoint_busy (checkpoint_t *self);
//  Loop thread: the accounts snapshot of the checkpoint handed over (read
//  only: the background reads it too), *count_p records; NULL and 0 when
//  none is.
const rl_account_t *checkpoint_snapshot (const checkpoint_t *self, size_t *count_p);
//  Loop thread, IDLE, before checkpoint_start: the thread also builds a
//  bigger id filter once the batch is committed (journal_filter_scan, with
//  room for extra_keys more ids). After checkpoint_wait: that filter, NULL
//  when none was asked for or its build failed; the caller owns it.
void checkpoint_grow_filter (checkpoint_t *self, size_t extra_keys);
idfilter_t *checkpoint_take_filter (checkpoint_t *self);

#define CHECKPOINT_SORT_KEY_MAX 32 //  bytes of a sort key
//  Sorts `count` entries of `entry_size` bytes in place by their first
//  key_size bytes (memcmp order; 1 <= key_size <= CHECKPOINT_SORT_KEY_MAX,
//  key_size <= entry_size, count <= UINT32_MAX), stably: equal keys keep
//  their order. Any thread. 0 sorted, -1 no memory for the scratch array
//  (the entries are then unchanged).
int checkpoint_sort (uint8_t *entries, size_t count, size_t entry_size, size_t key_size);

#endif
