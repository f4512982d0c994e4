/*  participant.h: the credit shard's side of a cross-shard transfer.

    The participant checks and reserves the credit of a PREPARE, writes a
    prepared record, applies the decision (the credit leg becomes a
    transfer record) or releases it, and asks the coordinator about a
    record prepared too long (outcome query). It touches accounts only
    through accounts.h's reserve/release calls and transfer records only
    through journal.h; it never calls the ledger. See participant.c for the
    states, invariants and limits.
*/
#ifndef RL_PARTICIPANT_H
#define RL_PARTICIPANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "arcs.h"
#include "journal.h"
#include "now.h"
#include "outq.h"
#include "proto.h"
#include "ring.h"
#include "store.h"

typedef struct participant_t participant_t;

//  NULL when memory ran out.
participant_t *participant_new (store_t *store, accounts_t *accounts, journal_t *journal,
                                outq_t *outq);
void participant_destroy (participant_t **self_p);
//  Recovery: the prepared records (their reservations restored, each
//  queried at once) and the markers (their expiry re-armed from now). 0, or -1 with a message in
//  err.
int participant_open (participant_t *self, now_t now, char *err, size_t err_size);
//  The shard's pending transfers (pending.c): a PREPARE of a pending kind
//  (pending, post, void) needs them (NULL: refused reserved_field).
typedef struct pending_t pending_t;
void participant_set_pending (participant_t *self, pending_t *pending);
//  The ids of this shard's own transfers, which a debit leg (docs/two-phase.md,
//  "Debit legs") holds live while prepared and stores when committed; the
//  ledger answers for them (the participant never calls it):
//  - check: what a create of t would answer about its id, before its
//    fields: RL_OK (free: not stored, no live attempt here), RL_IN_PROGRESS
//    (a live attempt), RL_STORAGE_ERROR, or the idempotency answer (exists,
//    exists_with_different_*, the failure that burned it), *ts_p its
//    timestamp;
//  - applied: 1 when the id is stored here applied (ok) with this debit
//    account (*ts_p: its timestamp), 0 when not, -1 on a storage error;
//  - resolve: the post or void leg t (docs/two-phase.md, "Post legs") of a
//    pending transfer of this shard, checked as a post or void of it here
//    would be (pending_check, at the shard's clock), *resolved the record
//    to store, and its side fits t's kind: both sides here (both legs),
//    or its debit side here and its credit side on another shard, the
//    coordinator's (ring index `coordinator`) or a third one (a debit leg).
//    RL_OK, or the result (not_supported: both legs of one whose credit
//    is on a third shard; in_progress: its credit side not yet at the
//    coordinator; frozen, storage_error).
typedef struct {
    uint32_t (*check) (void *arg, const rl_transfer_t *t, uint64_t *ts_p);
    int (*applied) (void *arg, rl_id_t id, rl_id_t debit_account_id, uint64_t *ts_p);
    uint32_t (*resolve) (void *arg, const rl_transfer_t *t, int coordinator, uint64_t wall_ns,
                         rl_transfer_t *resolved);
    void *arg;
} participant_ids_t;
//  Without them (NULL), every debit-leg PREPARE is refused reserved_field.
void participant_set_ids (participant_t *self, const participant_ids_t *ids);
//  Does a prepared debit leg hold the id live (a create of it: in_progress)?
bool participant_debit_live (participant_t *self, rl_id_t id);
//  The ring served now and this shard's index in it (-1: owns nothing).
void participant_set_ring (participant_t *self, const ring_t *ring, int self_index);
//  The arcs whose data this shard holds (arcs.h; NULL: all of them): a
//  PREPARE whose credit account is in another one is refused `frozen`.
void participant_set_arcs (participant_t *self, const arcs_t *arcs);
void participant_set_timeouts (participant_t *self, uint64_t query_after_ms, uint64_t retry_min_ms,
                               uint64_t retry_max_ms);
//  Applied/aborted markers kept (1..RL_TP_MARKERS_MAX; tests use few).
void participant_set_markers_max (participant_t *self, size_t markers_max);
//  LIMITS against one coordinator (docs/two-phase.md): the amount it may
//  hold reserved here (sum of its prepared records) and the prepared
//  records it may hold; beyond either, its PREPARE is refused busy.
void participant_set_bounds (participant_t *self, uint64_t reserve_max, size_t prepared_share_max);
//  Records of every kind kept at most (tests use few, to run out of room;
//  more than the table: the table): a record that finds no room is refused
//  busy (PREPARE) or asked for again (a tombstone's DECIDE).
void participant_set_records_max (participant_t *self, size_t records_max);

//  A PREPARE batch (out: one reply record each) and a DECIDE batch (out:
//  one ack each). Each returns the group commit its replies need synced.
//  sender: the shard name of the sending key (senders.h; "" for a key
//  without one, NULL when there is no key: --insecure). A record that
//  breaks its sender rule (docs/security.md) is answered refused with
//  result unauthorized, logged, and changes nothing.
uint64_t participant_prepare (participant_t *self, const rl_prepare_rec_t *recs, size_t count,
                              const char *sender, now_t now, rl_tp_rec_t *out);
//  The ack of a debit leg's COMMIT carries in `timestamp` the one of the
//  transfer stored here (0 for a credit leg's).
uint64_t participant_decide (participant_t *self, const rl_tp_rec_t *recs, size_t count,
                             const char *sender, now_t now, rl_tp_rec_t *out);
//  The coordinator's answers to our outcome queries, from the peer `from`
//  (the shard the connection they came on leads to; NULL: not checked).
//  Returns the answers ignored because `from` is not the record's
//  coordinator.
size_t participant_outcome_answers (participant_t *self, const rl_tp_rec_t *answers, size_t count,
                                    const char *from, now_t now);
//  Marker expiry and outcome queries; at most `budget` queries. Returns
//  the queries queued.
size_t participant_tick (participant_t *self, now_t now, size_t budget);
//  Heuristic resolution of a prepared record (the server has checked the
//  fencing and the explicit flag): applies the decision, writes a kept
//  heuristic record, and returns 0, or a RL_RESOLVE_* reason.
uint32_t participant_resolve (participant_t *self, const rl_tp_rec_t *rec, now_t now);

void participant_counts (const participant_t *self, uint64_t *prepared, uint64_t *alarms);
//  Audit: adds every prepared record's amount to credits[slot of its credit
//  account], and a debit leg's to debits[slot of its debit account].
void participant_audit_sums (participant_t *self, const accounts_t *accounts, uint64_t *debits,
                             uint64_t *credits);
//  Lists prepared records; at most cap.
size_t participant_in_doubt (participant_t *self, rl_in_doubt_rec_t *out, size_t cap);
//  Heuristic records (kept for ever) whose credit account (or a debit leg's
//  debit account) `in` says yes to.
size_t participant_heuristics (participant_t *self, bool (*in) (void *arg, rl_id_t account),
                               void *arg);

#endif
