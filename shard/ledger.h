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

//  The name of the shard that owns the account in the ring served now, or
//  NULL when no shard does.
typedef const char *(ledger_owner_fn) (void *ctx, rl_id_t account_id);

//  A create_transfers result meaning "decided later": the record's outcome
//  arrives through io.decided (cross-shard transfers). Never on the wire.
#define LEDGER_PENDING 0xFFFFFFFFu

//  What the state machine asks its host to send. The host queues these and
//  sends them at the end of the turn; everything but `prepare` only after
//  the turn's batch is committed (nothing goes out before the write that
//  justifies it is durable).
typedef struct {
    void (*prepare) (void *ctx, const char *peer, const rl_prepare_rec_t *rec);
    void (*decide) (void *ctx, const char *peer, const rl_tp_rec_t *rec);
    void (*query) (void *ctx, const char *coordinator, const rl_tp_rec_t *rec);
    void (*decided) (void *ctx, uint64_t tag, uint32_t index, uint32_t result, uint64_t timestamp);
} ledger_io_t;

//  Loads accounts, replays transfers written after the last checkpoint,
//  starts a new incarnation (nonce: random, from the host) and recovers
//  two-phase state. The incarnation is committed before this returns.
//  NULL (with a message in err) when the stored state is unreadable.
ledger_t *ledger_open (store_t *store, const char *name, ledger_owner_fn *owner, void *owner_ctx,
                       const ledger_io_t *io, void *io_ctx, uint64_t nonce, uint64_t now_ns,
                       char *err, size_t err_size);
void ledger_destroy (ledger_t **self_p);

//  Writes go into the store's batch; the caller commits. `results` has
//  `count` entries. now_ns: wall clock, for timestamps.
void ledger_create_accounts (ledger_t *self, const rl_account_t *accounts, size_t count,
                             uint64_t now_ns, rl_result_rec_t *results);
//  tag: the host's handle of the request, echoed by io.decided for records
//  answered LEDGER_PENDING.
void ledger_create_transfers (ledger_t *self, const rl_transfer_t *transfers, size_t count,
                              uint64_t now_ns, uint64_t tag, rl_result_rec_t *results);

//  Two-phase, participant side: a PREPARE batch from a coordinator (out:
//  one reply record each), a DECIDE batch (out: one ack each), and the
//  answers to our outcome queries.
void ledger_prepare (ledger_t *self, const rl_prepare_rec_t *recs, size_t count, uint64_t now_ns,
                     rl_tp_rec_t *out);
void ledger_decide (ledger_t *self, const rl_tp_rec_t *recs, size_t count, uint64_t now_ns,
                    rl_tp_rec_t *out);
void ledger_outcome_answers (ledger_t *self, const rl_tp_rec_t *answers, size_t count,
                             uint64_t now_ns);
//  Two-phase, coordinator side: replies to our PREPAREs and DECIDEs, and
//  outcome queries from participants (out: one answer each).
void ledger_prepare_replies (ledger_t *self, const rl_tp_rec_t *replies, size_t count,
                             uint64_t now_ns);
void ledger_decide_replies (ledger_t *self, const rl_tp_rec_t *acks, size_t count);
void ledger_outcome_query (ledger_t *self, const rl_tp_rec_t *queries, size_t count,
                           rl_tp_rec_t *out);
//  Timeouts, resends and expiry; bounded work per call.
void ledger_tick (ledger_t *self, uint64_t now_ns);
//  inflight: live attempts + decisions not yet acknowledged (coordinator);
//  in_doubt: prepared records awaiting a decision (participant);
//  alarms: contrary or unknown decisions seen (needs an operator).
void ledger_tp_counts (const ledger_t *self, uint64_t *inflight, uint64_t *in_doubt,
                       uint64_t *alarms);
//  Audit: every account's reserved amounts equal the sum of its live
//  reservations (debits) and prepared records (credits). 0, or -1 with the
//  first discrepancy in err.
int ledger_audit (ledger_t *self, char *err, size_t err_size);
//  Lists what is in doubt here: live attempts and unacknowledged decisions
//  (coordinator), prepared records (participant). At most `cap`; returns
//  the number written.
size_t ledger_in_doubt (ledger_t *self, rl_in_doubt_rec_t *out, size_t cap);
//  Heuristic resolution of a prepared record (participant side): the host
//  has checked the fencing and the explicit flag. Applies the decision,
//  writes a heuristic record that is kept, and returns 0, or a
//  RL_RESOLVE_* reason.
uint32_t ledger_resolve (ledger_t *self, const rl_tp_rec_t *rec, uint64_t now_ns);
//  Counts for the audit reply.
void ledger_audit_counts (const ledger_t *self, uint64_t *accounts, uint64_t *live,
                          uint64_t *prepared);
//  Sums over every account held here, per the given ledger (0: all).
void ledger_sums (const ledger_t *self, uint32_t ledger_id, uint64_t *debits_posted,
                  uint64_t *credits_posted, uint64_t *debits_reserved, uint64_t *credits_reserved);
//  Applied/aborted markers kept (1..RL_TP_MARKERS_MAX; tests use few).
void ledger_set_tp_markers_max (ledger_t *self, size_t markers_max);
void ledger_set_tp_timeouts (ledger_t *self, uint64_t prepare_ms, uint64_t query_after_ms,
                             uint64_t retry_min_ms, uint64_t retry_max_ms);
//  Not found: the record is zero but for its id (timestamp 0).
void ledger_lookup_accounts (ledger_t *self, const rl_id_t *ids, size_t count, rl_account_t *out);
//  0, or -1 on a storage error.
int ledger_lookup_transfers (ledger_t *self, const rl_id_t *ids, size_t count, rl_transfer_t *out);
//  RL_STATUS_OK, RL_STATUS_BAD_FILTER or RL_STATUS_STORAGE_ERROR. `out` has
//  room for filter->limit transfers.
rl_status_t ledger_account_transfers (ledger_t *self, const rl_filter_t *filter, rl_transfer_t *out,
                                      size_t *count_p);

//  Call before store_commit: adds the persisted timestamp to the batch.
void ledger_before_commit (ledger_t *self);
//  Call after a successful store_commit: runs a checkpoint when due.
//  0, or -1 when the checkpoint failed (the store is then failed).
int ledger_after_commit (ledger_t *self);
//  Transfers between checkpoints: 1..RL_SHARD_CHECKPOINT_TRANSFERS (tests use few).
void ledger_set_checkpoint_transfers (ledger_t *self, size_t transfers);
//  Forces a checkpoint now (tests, shutdown).
int ledger_checkpoint (ledger_t *self);

uint64_t ledger_account_count (const ledger_t *self);
uint64_t ledger_transfer_count (const ledger_t *self); //  applied (ok)
uint64_t ledger_last_timestamp (const ledger_t *self);
uint64_t ledger_checkpoint_count (const ledger_t *self); //  since open

#endif
