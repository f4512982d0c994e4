/*  ledger.h: a shard's accounts and transfers, as a state machine.

    The ledger applies create/lookup operations to in-memory state and puts
    the corresponding writes into the store's pending WriteBatch. It never
    touches a socket or a clock: the caller passes the time and commits the
    batch (one group commit per loop turn), so that a simulation can drive
    it. What must be sent goes into the output queue (outq.h), which the
    caller drains after each call. The time is a now_t (now.h): the wall
    clock for timestamps, the monotonic clock for every timer. See ledger.c
    for the design and docs/storage.md for the layout.

    The ledger owns the two-phase modules and the order of calls into them:
    create_transfers hands a cross-shard record to the coordinator; the
    caller reaches the coordinator and the participant for the protocol's
    messages through ledger_coordinator and ledger_participant.
*/
#ifndef RL_LEDGER_H
#define RL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arcs.h"
#include "checkpoint.h"
#include "coordinator.h"
#include "journal.h"
#include "now.h"
#include "outq.h"
#include "participant.h"
#include "proto.h"
#include "ring.h"
#include "store.h"

typedef struct ledger_t ledger_t;

//  What ledger_create_transfers did with the request.
typedef enum {
    LEDGER_REPLY_NOW = 0, //  every result is final: answer now
    LEDGER_REPLY_LATER,   //  waits for cross-shard decisions: its reply comes out of the queue
    LEDGER_BUSY,          //  no room for another waiting request: nothing done, answer busy
} ledger_reply_t;

//  Loads accounts, replays transfers written after the last checkpoint,
//  starts a new incarnation (nonce: random, from the host), recovers
//  two-phase state and the pending transfers, and expires those whose time
//  came while the shard was down. The incarnation and those expiries are
//  committed before this returns.
//  ring: the ring served now (the caller keeps it alive; see
//  ledger_set_ring). NULL (with a message in err) when the stored state is
//  unreadable or memory ran out.
ledger_t *ledger_open (store_t *store, outq_t *outq, const char *name, const ring_t *ring,
                       uint64_t nonce, now_t now, char *err, size_t err_size);
//  ledger_open for a promoted standby: *warm_p (the standby's accounts, id
//  filter and transfers after the checkpoint, journal.h) stands in for the
//  read of the accounts, the scan and the replay's read when it follows the
//  store; it is taken (NULL after).
ledger_t *ledger_open_warm (store_t *store, outq_t *outq, const char *name, const ring_t *ring,
                            uint64_t nonce, now_t now, journal_warm_t **warm_p, char *err,
                            size_t err_size);
void ledger_destroy (ledger_t **self_p);
//  A new ring is served (the caller destroys the old one after this).
void ledger_set_ring (ledger_t *self, const ring_t *ring);
//  Does this shard own the account in the ring served now?
bool ledger_owns (const ledger_t *self, rl_id_t account_id);
//  The arcs whose data this shard holds (arcs.h; the caller keeps them
//  alive). Without them every arc counts as received.
void ledger_set_arcs (ledger_t *self, arcs_t *arcs);
arcs_t *ledger_arcs (const ledger_t *self); //  NULL: none set
//  Does this shard own the account but not hold its data yet (an arc it
//  gained in a ring change, not received)? Such an account is `frozen`.
bool ledger_frozen (const ledger_t *self, rl_id_t account_id);
//  Would one record of this piece of a request be answered frozen? Then
//  ledger_create_* answers every record of it frozen and applies nothing.
bool ledger_piece_frozen_accounts (const ledger_t *self, const rl_account_t *accounts,
                                   size_t count);
bool ledger_piece_frozen_transfers (const ledger_t *self, const rl_transfer_t *transfers,
                                    size_t count);

//  A migration brought records here (imported.h): lookups by id, the
//  credit-leg check and history consult them from now on (ledger_open sets
//  it when the store holds any).
void ledger_set_imported (ledger_t *self);
//  A transfer id a migration is importing (its 'I' key is in the batch):
//  the idempotency check's filter learns it before anything is served.
void ledger_note_imported_id (ledger_t *self, rl_id_t id);

coordinator_t *ledger_coordinator (ledger_t *self);
participant_t *ledger_participant (ledger_t *self);

//  Writes go into the store's batch; the caller commits. `results` has
//  `count` entries.
void ledger_create_accounts (ledger_t *self, const rl_account_t *accounts, size_t count, now_t now,
                             rl_result_rec_t *results);
//  ctx and header: the caller's handle of the request and its header, given
//  back in the OUTQ_REPLY when the reply waits for cross-shard decisions.
ledger_reply_t ledger_create_transfers (ledger_t *self, const rl_transfer_t *transfers,
                                        size_t count, now_t now, void *ctx,
                                        const rl_header_t *header, rl_result_rec_t *results);

//  Timeouts, resends and expiry of both two-phase roles; bounded work per call.
void ledger_tick (ledger_t *self, now_t now);
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
//  Counts for the audit reply.
void ledger_audit_counts (const ledger_t *self, uint64_t *accounts, uint64_t *live,
                          uint64_t *prepared);
//  Sums over every account held here, per the given ledger (0: all).
void ledger_sums (const ledger_t *self, uint32_t ledger_id, uint64_t *debits_posted,
                  uint64_t *credits_posted, uint64_t *debits_reserved, uint64_t *credits_reserved);
void ledger_set_tp_timeouts (ledger_t *self, uint64_t prepare_ms, uint64_t query_after_ms,
                             uint64_t retry_min_ms, uint64_t retry_max_ms);
//  Not found: the record is zero but for its id (timestamp 0).
void ledger_lookup_accounts (ledger_t *self, const rl_id_t *ids, size_t count, rl_account_t *out);
//  A migration's handover: the account, with the balances its previous
//  owner had (nothing reserved), becomes one of this shard's, into the
//  batch. 0; -1 when it is held here already, has no timestamp or holds
//  reserved amounts, or the table is full (nothing changed).
int ledger_install_account (ledger_t *self, const rl_account_t *account);
//  The same without the write (ADOPTED ACCOUNTS, ledger.c): the account is
//  marked dirty and its durable copy stays the staged one until the next
//  checkpoint. The handover then calls ledger_adopted once, in the same
//  turn: its key goes into the batch, and the next checkpoint (asked for)
//  writes the accounts and deletes their staged copies. ledger_adopting:
//  adopted accounts wait for that checkpoint (a new migration must too).
int ledger_adopt_account (ledger_t *self, const rl_account_t *account);
//  Room for `more` accounts beyond those held (accounts_reserve): a
//  target makes it while it stages an arc, so that the handover grows
//  nothing. 0; -1 memory (the handover then grows the table as usual);
//  -2 past RL_SHARD_ACCOUNTS_MAX (accounts_reserve).
int ledger_reserve_accounts (ledger_t *self, size_t more);
void ledger_adopted (ledger_t *self, uint64_t migration_id, uint64_t arc_start, uint64_t arc_end);
bool ledger_adopting (const ledger_t *self);
//  0, or -1 on a storage error.
int ledger_lookup_transfers (ledger_t *self, const rl_id_t *ids, size_t count, rl_transfer_t *out);
//  RL_STATUS_OK, RL_STATUS_BAD_FILTER or RL_STATUS_STORAGE_ERROR. `out` has
//  room for filter->limit transfers.
rl_status_t ledger_account_transfers (ledger_t *self, const rl_filter_t *filter, rl_transfer_t *out,
                                      size_t *count_p);

//  Call before store_commit: adds the persisted timestamp to the batch.
void ledger_before_commit (ledger_t *self);
//  Call after a successful store_commit (the batch is empty): finishes a
//  background checkpoint that has ended, and starts one when due, after
//  waiting for the previous one if it still runs (backpressure). 0, or -1
//  when a checkpoint failed (the shard must fail; -1 from then on).
int ledger_after_commit (ledger_t *self);
//  Transfers between checkpoints: 1..RL_SHARD_CHECKPOINT_TRANSFERS (tests use few).
void ledger_set_checkpoint_transfers (ledger_t *self, size_t transfers);
//  Accounts per piece of a checkpoint's account writes (checkpoint.h);
//  only while no checkpoint runs (at start).
void ledger_set_checkpoint_piece_accounts (ledger_t *self, size_t accounts);
//  Forces a checkpoint now and waits for it (tests, shutdown).
int ledger_checkpoint (ledger_t *self);

uint64_t ledger_account_count (const ledger_t *self); //  held now (removed ones not counted)
//  Forgets an account that left with its arc (accounts_remove: 0, 1 not
//  held, -1 not now: dirty or in escrow). The caller deletes its keys.
int ledger_remove_account (ledger_t *self, rl_id_t id);
//  Starts a checkpoint after the next group commit, however few transfers
//  are recent (the source's cleanup needs one past the handover).
void ledger_checkpoint_soon (ledger_t *self);
//  Would recovery replay an ok transfer onto an account of the arc (one
//  not checkpointed yet, in the live or the frozen generation)? O(recent).
bool ledger_recent_posts_to_arc (const ledger_t *self, uint64_t start, uint64_t end);
//  Does the checkpoint in the background write an account of the arc
//  (its snapshot holds one)? O(its accounts); false when none runs.
bool ledger_checkpoint_holds_arc (const ledger_t *self, uint64_t start, uint64_t end);
//  Heuristic records (participant) whose credit account is in the arc.
size_t ledger_heuristics_in_arc (const ledger_t *self, uint64_t start, uint64_t end);
size_t ledger_pending_count (const ledger_t *self); //  transfers still pending
//  ... and those that live attempts and prepared records will add when they
//  commit (pending_promise): what a migration's import must leave room for.
size_t ledger_pending_taken (const ledger_t *self);
//  Migration of the arc (start, end] (docs/rebalance.md, "Pending transfers
//  move"; pending.h has each): the source's handover of the transfers
//  still pending that name its accounts, and the target's.
size_t ledger_pending_hand_over (ledger_t *self, uint64_t start, uint64_t end);
int ledger_pending_install_check (ledger_t *self, const rl_transfer_t *t, uint8_t side);
int ledger_pending_install (ledger_t *self, const rl_transfer_t *t, uint8_t side);

//  Payment flows since the ledger opened (docs/metrics.md): applied in a
//  turn of this shard (ok, not exists), so a crash that loses the turn
//  loses its counts with it; cross-shard pending transfers, posts and
//  voids (two-phase attempts) are not counted. Expiries are those of the
//  timer (ledger_tick; a cross-shard one's debit side each time it is made
//  due for its void attempt);
//  the ones recovery makes and those a post or void finds due (answered
//  pending_transfer_expired) are not in `expired`.
typedef struct {
    uint64_t pending;          //  pending transfers created
    uint64_t posted;           //  posts applied
    uint64_t voided;           //  voids applied
    uint64_t expired;          //  pending transfers expired by the timer
    uint64_t chains_committed; //  linked chains applied whole (not a retry all exists)
    uint64_t chains_failed;    //  linked chains refused whole (nothing applied)
} ledger_payments_t;
void ledger_payments (const ledger_t *self, ledger_payments_t *out);
//  Calls fn for every account held (O(accounts)).
void ledger_each_account (const ledger_t *self, void (*fn) (void *arg, const rl_account_t *account),
                          void *arg);
//  Change tracking of the accounts, for a migration's catch-up rounds
//  (accounts.h, accounts_track_changes and the calls after it).
int ledger_track_changes (ledger_t *self, bool on);
uint32_t ledger_change_mark (ledger_t *self);
size_t ledger_changed_since (const ledger_t *self, uint32_t mark,
                             bool (*fn) (void *arg, const rl_account_t *account), void *arg);
uint64_t ledger_transfer_count (const ledger_t *self); //  applied (ok)
uint64_t ledger_last_timestamp (const ledger_t *self);
uint64_t ledger_checkpoint_count (const ledger_t *self); //  since open
//  The journal's fill (metrics): transfers in the live generation (a
//  checkpoint starts when it holds *checkpoint_transfers_p), and in the
//  frozen one a checkpoint is writing (0 when none).
void ledger_journal_fill (const ledger_t *self, size_t *live_p, size_t *frozen_p,
                          size_t *checkpoint_transfers_p);
//  The background checkpoint's state; CHECKPOINT_FAILED from a failed
//  checkpoint on, even once waited for.
checkpoint_state_t ledger_checkpoint_state (const ledger_t *self);

#endif
