/*  ledger.h: a shard's accounts and transfers, as a state machine.

    The ledger applies create/lookup operations to in-memory state and puts
    the corresponding writes into the store's pending WriteBatch. It never
    touches a socket or a clock: the caller passes the time and commits the
    batch (one group commit per loop turn), so that a simulation can drive
    it. See ledger.c for the design and docs/storage.md for the layout.
*/
#ifndef RL_LEDGER_H
#define RL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

typedef struct ledger_t ledger_t;

//  Does this shard own the account (in the ring it serves now)?
typedef bool (ledger_owns_fn) (void *ctx, rl_id_t account_id);

//  Loads accounts and replays transfers written after the last checkpoint.
//  NULL (with a message in err) when the stored state is unreadable.
ledger_t *ledger_open (store_t *store, ledger_owns_fn *owns, void *owns_ctx, char *err,
                       size_t err_size);
void      ledger_destroy (ledger_t **self_p);

//  Writes go into the store's batch; the caller commits. `results` has
//  `count` entries. now_ns: wall clock, for timestamps.
void ledger_create_accounts (ledger_t *self, const rl_account_t *accounts, size_t count,
                             uint64_t now_ns, rl_result_rec_t *results);
void ledger_create_transfers (ledger_t *self, const rl_transfer_t *transfers, size_t count,
                              uint64_t now_ns, rl_result_rec_t *results);
//  Not found: the record is zero but for its id (timestamp 0).
void ledger_lookup_accounts (ledger_t *self, const rl_id_t *ids, size_t count, rl_account_t *out);
//  0, or -1 on a storage error.
int  ledger_lookup_transfers (ledger_t *self, const rl_id_t *ids, size_t count,
                              rl_transfer_t *out);
//  RL_STATUS_OK, RL_STATUS_BAD_FILTER or RL_STATUS_STORAGE_ERROR. `out` has
//  room for filter->limit transfers.
rl_status_t ledger_account_transfers (ledger_t *self, const rl_filter_t *filter,
                                      rl_transfer_t *out, size_t *count_p);

//  Call before store_commit: adds the persisted timestamp to the batch.
void ledger_before_commit (ledger_t *self);
//  Call after a successful store_commit: runs a checkpoint when due.
//  0, or -1 when the checkpoint failed (the store is then failed).
int  ledger_after_commit (ledger_t *self);
//  Transfers between checkpoints: 1..RL_SHARD_CHECKPOINT_TRANSFERS (tests use few).
void ledger_set_checkpoint_transfers (ledger_t *self, size_t transfers);
//  Forces a checkpoint now (tests, shutdown).
int  ledger_checkpoint (ledger_t *self);

uint64_t ledger_account_count (const ledger_t *self);
uint64_t ledger_transfer_count (const ledger_t *self);   //  applied (ok)
uint64_t ledger_last_timestamp (const ledger_t *self);
uint64_t ledger_checkpoint_count (const ledger_t *self);   //  since open

#endif
