/*  pending.h: user-level pending transfers of one shard: authorise now,
    post (in full or in part) or void later, or let a timeout expire it.

    A pending transfer reserves its amount in the debit account's
    debits_pending and the credit account's credits_pending; a post moves
    (part of) it to posted and releases the rest, a void or an expiry
    releases it all. The ledger (ledger.c) stores every record in the
    journal as usual; this module keeps the state of each pending transfer
    (pending, posted, voided, expired) durable in the `pending` column
    family, in the batch of the turn that changes it, and the ones still
    pending in memory, ordered by expiry. See pending.c for the design and
    docs/protocol.md ("Pending transfers") for the rules and codes.
*/
#ifndef RL_PENDING_H
#define RL_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "proto.h"
#include "store.h"

typedef struct pending_t pending_t;

//  The state of a pending transfer, stored in its record's `reserved`.
typedef enum {
    PENDING_STATE_NONE = 0, //  not a pending transfer of this shard
    PENDING_STATE_PENDING = 1,
    PENDING_STATE_POSTED = 2,
    PENDING_STATE_VOIDED = 3,
    PENDING_STATE_EXPIRED = 4,
} pending_state_t;

//  Which accounts of a pending transfer this shard holds: both, or one side
//  of a cross-shard one (pending.c, "CROSS-SHARD"). Stored in bits 8..15
//  of the state record's `reserved`.
typedef enum {
    PENDING_SIDE_BOTH = 0,
    PENDING_SIDE_DEBIT = 1,  //  the debit shard, which decides
    PENDING_SIDE_CREDIT = 2, //  the credit shard, keyed by (pending id, debit account)
} pending_side_t;

//  A cross-shard expiry whose void attempt aborted is tried again this
//  much later (the shard's timestamp clock).
#define PENDING_EXPIRY_RETRY_NS (1000ull * 1000 * 1000)
//  ... doubled after each attempt that ended without a commit, up to
//  2^PENDING_EXPIRY_BACKOFF_SHIFT_MAX times (64 s).
#define PENDING_EXPIRY_BACKOFF_SHIFT_MAX 6u

//  Post or void: one of the two flags.
#define PENDING_RESOLVE_FLAGS                                                                      \
    (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER)
#define PENDING_FLAGS (RL_TRANSFER_PENDING | PENDING_RESOLVE_FLAGS)

//  NULL when memory ran out.
pending_t *pending_new (store_t *store, accounts_t *accounts);
void pending_destroy (pending_t **self_p);
//  Recovery, after the accounts are loaded: the transfers still pending
//  come back into memory with their amounts. 0, or -1 with a message in err.
int pending_open (pending_t *self, char *err, size_t err_size);
//  Recovery, once the prepared records claimed what they resolve
//  (participant.c): the transfers whose expiry is at or before clock_ns
//  (the shard's timestamp clock) expire now, into the batch, but those a
//  prepared post or void claims (pending_tick). Returns how many.
size_t pending_recover (pending_t *self, uint64_t clock_ns);

//  Field validation of a transfer with a pending, post or void flag (the
//  record alone): RL_OK or the first failure, in the documented order.
uint32_t pending_validate (const rl_transfer_t *t);
//  Can one more transfer be pending? False at RL_SHARD_PENDING_MAX (the
//  live ones and the promised ones), or when memory ran out (nothing
//  changed).
bool pending_room (pending_t *self);
//  A pending transfer that a live attempt or a held chain member adds when
//  it commits keeps its room from its begin (take, after pending_room) to
//  its end (!take, before pending_add or pending_add_side): so a decision
//  to commit always finds room.
void pending_promise (pending_t *self, bool take);
size_t pending_promised_count (const pending_t *self);
//  A new pending transfer, stored ok (timestamp set), whose accounts the
//  caller checked (pair): reserves its amount. pending_room first.
void pending_add (pending_t *self, const rl_transfer_t *record, const accounts_pair_t *pair);
//  A post or void (validated) against the transfer stored under its
//  pending_id (p; NULL when none), at timestamp ts. RL_OK fills *resolved
//  with the record to store: the pending transfer's accounts, ledger and
//  code, and the amount posted (or voided). A pending transfer found past
//  its expiry expires now (into the batch), and the answer is expired.
//  RL_STORAGE_ERROR when its state cannot be read.
uint32_t pending_check (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p,
                        uint64_t ts, rl_transfer_t *resolved);
//  Cross-shard, once its two-phase attempt committed: the transfer
//  `record` (stored ok, timestamp set) keeps one side here, DEBIT (its
//  debits_pending) or CREDIT (its credits_pending, keyed by the pending id
//  and debit account). 0, or -1 when the account is not here or memory ran
//  out (nothing changed).
int pending_add_side (pending_t *self, const rl_transfer_t *record, pending_side_t side);
//  The side (pending_side_t) of the live entry keyed by this pending id
//  (both or debit), or -1 when none is live.
int pending_side (pending_t *self, rl_id_t pending_id);
//  Is this pending id a live side DEBIT entry (its credit on another shard)?
bool pending_is_debit_side (pending_t *self, rl_id_t pending_id);
//  Claims (or releases) a live side DEBIT entry for the two-phase attempt
//  that posts, voids or expires it (one at a time). A release of a due
//  entry puts its next expiry attempt PENDING_EXPIRY_RETRY_NS after clock_ns,
//  doubled after each such release (PENDING_EXPIRY_BACKOFF_SHIFT_MAX).
void pending_claim (pending_t *self, rl_id_t pending_id, bool claimed, uint64_t clock_ns);
//  The due side DEBIT entries, unclaimed, whose next attempt may run at
//  clock_ns, at most max: fills expiries with the void transfers that
//  expire them (ids pending_expiry_id) and returns how many; the caller
//  claims each. One pass over the due list: O(due).
size_t pending_due_take (pending_t *self, uint64_t clock_ns, rl_transfer_t *expiries, size_t max);
//  The ids the void that expires a cross-shard pending transfer may take:
//  pending_expiry_id is the first; pending_expiry_id_next gives the one
//  after expiry_id, up to PENDING_EXPIRY_IDS_MAX in all. A client may have
//  taken an id of the list with a transfer of its own (the derivation is
//  public): the debit shard uses the first that its journal does not hold
//  (ledger.c).
#define PENDING_EXPIRY_IDS_MAX 16
rl_id_t pending_expiry_id (rl_id_t pending_id, rl_id_t debit_account_id);
rl_id_t pending_expiry_id_next (rl_id_t expiry_id, rl_id_t debit_account_id);
//  Is id one of the expiry ids of (pending_id, debit_account_id)?
bool pending_is_expiry_id (rl_id_t id, rl_id_t pending_id, rl_id_t debit_account_id);
//  Credit side (participant): may the post or void `t` (resolved by the
//  debit shard: credit account, ledger, code, amount) resolve the credit
//  side of its pending transfer? RL_OK or the result (in_progress: another
//  attempt claims it; storage_error).
uint32_t pending_credit_check (pending_t *self, const rl_transfer_t *t);
//  pending_credit_check for the post or void t of p, a pending transfer
//  whose credit leg is prepared here and not committed yet (its credit
//  side comes with its COMMIT): the same rules against p's fields. Its
//  prepared record claims the credit side once that exists.
uint32_t pending_credit_check_leg (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p);
//  Claims (or releases) the credit side for t's prepared record. -1 when
//  it is not live or already so.
int pending_credit_claim (pending_t *self, const rl_transfer_t *t, bool claimed);
//  The chain's shard of a post or void t (as the client gave it) of a
//  pending transfer whose credit side is here and whose debit side is on
//  another shard (a post leg: docs/two-phase.md, "Post legs"): t resolved
//  against that side's copy of the transfer into *resolved (the rules its
//  fields tell, as pending_check), then pending_credit_check of it. RL_OK,
//  or the result (a resolved side: its state's code).
uint32_t pending_credit_resolve (pending_t *self, const rl_transfer_t *t, rl_transfer_t *resolved);
//  At a restart: the prepared post or void leg t (the record its PREPARE
//  resolved here) claims its pending transfer again, live here with `side`
//  (pending_side_t: both, or debit), unclaimed, and fitting t (accounts,
//  ledger, code, amount). 0, or -1 when it does not (nothing changed).
int pending_reclaim (pending_t *self, const rl_transfer_t *t, uint8_t side);
//  Applies the claimed post or void t to the credit side (into the batch).
void pending_credit_apply (pending_t *self, const rl_transfer_t *t);
//  The stored state of a credit side (PENDING_STATE_NONE: none); -1 on a
//  storage error.
int pending_credit_state (pending_t *self, rl_id_t pending_id, rl_id_t debit_account_id);
//  pending_check for the post or void t of p, a pending transfer of this
//  shard that an earlier member of t's own chain makes (held, not in the
//  table yet): the rules its fields tell and the posted sums' overflow;
//  fills *resolved as pending_check does. Applied with pending_apply once
//  p's member is.
uint32_t pending_check_member (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p,
                               rl_transfer_t *resolved);
//  Applies a post or void that pending_check accepted, once stored.
void pending_apply (pending_t *self, const rl_transfer_t *resolved);
//  Expires the pending transfers whose expiry is at or before clock_ns, at
//  most max of them, into the batch. Returns how many.
size_t pending_tick (pending_t *self, uint64_t clock_ns, size_t max);
//  The stored state of a pending transfer (PENDING_STATE_NONE when it has
//  none); -1 on a storage error.
int pending_state (pending_t *self, rl_id_t id);

//  A linked chain (ledger.c): between begin and end, every change to the
//  live table and to the states of this turn is noted; end with rollback
//  takes them back (the pending transfers, their heap entries, the states
//  read before the commit), without moving any account's amount: the
//  caller restores the accounts' records and the batch (store save point).
void pending_chain_begin (pending_t *self);
void pending_chain_end (pending_t *self, bool rollback);

//  After a successful group commit: the states changed are readable from
//  the store from now on.
void pending_committed (pending_t *self);

size_t pending_live_count (const pending_t *self);
//  The earliest expiry of a transfer still pending (0: none expires).
uint64_t pending_next_expiry (pending_t *self);
//  Audit: every account's pending amounts equal the sum of the transfers
//  still pending. 0, or -1 with the first discrepancy in err.
int pending_audit (const pending_t *self, char *err, size_t err_size);

//  A predicate on accounts (a migration's arc, a frozen arc).
typedef bool (pending_held_fn) (void *arg, rl_id_t account);
//  While held(arg, account) holds for an account of a transfer still
//  pending (on a side held here), the transfer does not expire: the tick
//  (and pending_open) skips it until the predicate lets go. A frozen arc's
//  transfers must reach the final round of its migration as they were
//  (docs/rebalance.md). NULL: nothing held.
void pending_set_hold (pending_t *self, pending_held_fn *held, void *arg);

//  The index by account (pending.c, "THE INDEX BY ACCOUNT"): a key of the
//  `pending_arc` family is the ring point of an account (8, big-endian),
//  the pending id, the debit account id and a byte that says which key of
//  the `pending` family it names (1: the credit side's, (id, debit); 0: the
//  id's). Its value is that entry's (RL_TRANSFER_SIZE bytes).
#define PENDING_ARC_KEY_SIZE (8 + 2 * RL_ID_SIZE + 1)
//  In meta: every entry of the pending table is in the index (written once,
//  by the first pending_open that built it).
#define PENDING_META_ARC_INDEX "pending_arc_index"
//  The index key of `account` (t's debit or credit account) for the entry
//  of t under the credit side's key (credit_key) or the id's.
void pending_arc_key (rl_id_t account, const rl_transfer_t *t, bool credit_key, uint8_t *key);

//  The entries that name an account of the arc (start, end] of the ring on
//  a side held here, read through the index by account (the arc's keys
//  alone, in key order), each given once to fn (its state and side in
//  `reserved`, as stored), from `cursor` (16 bytes: the last point read
//  and how many of its keys were read, big-endian; zeros: from the start)
//  on, until keys_max keys were read or entries_max entries given. Reads
//  the store only: the caller's batch must hold no write to the table.
//  Returns 1 when the arc's keys are all read, 0 when more remain (cursor
//  moved on), -1 on a storage error or a corrupt key or entry (cursor
//  unchanged); *keys_read_p: keys read. Reads the index alone: each key's
//  value is its entry.
typedef void (pending_arc_fn) (void *arg, const rl_transfer_t *t);
int pending_arc_each (store_t *store, uint64_t start, uint64_t end, uint8_t *cursor,
                      size_t keys_max, size_t entries_max, pending_arc_fn *fn, void *arg,
                      size_t *keys_read_p);

//  Migration (docs/rebalance.md, "Pending transfers move").
//  The source's handover, into the batch: every transfer still pending
//  whose accounts on a side held here leave (leaves(arg, account)) goes,
//  its state deleted and its amounts released here; a same-shard one of
//  which one account leaves keeps here the side that stays (the debit:
//  keyed by its id, expired by a void attempt; the credit: keyed by (id,
//  debit account)). Returns how many changed. O(pending).
size_t pending_hand_over (pending_t *self, pending_held_fn *leaves, void *arg);
//  The target's handover: may `t` (a pending transfer still pending, as
//  the source's table stored it) be put here with `side` (pending_side_t)? 0; -1 when that key
//  is live here already, or the same transfer's credit side (an entry of
//  both sides beside a credit side of its id and debit account, either
//  way); -2 when an account of that side is not here.
int pending_install_check (pending_t *self, const rl_transfer_t *t, uint8_t side);
//  The key of the live table that `t` with `side` takes: its id, or for the
//  credit side (*credit_p true) a digest of (id, debit account). Two live
//  entries of one key cannot both be installed.
rl_id_t pending_live_key (const rl_transfer_t *t, uint8_t side, bool *credit_p);
//  Puts it (into the batch, and its amounts onto its accounts here). 0, or
//  -1 (pending_install_check, RL_SHARD_PENDING_MAX, an overflow, memory):
//  nothing changed. A resolved one (its state in t->reserved, as the
//  source stored it) puts its state only: 0, or 1 when a live entry holds
//  its key here (left as it is).
int pending_install (pending_t *self, const rl_transfer_t *t, uint8_t side);
//  Is the credit side of (pending id, debit account) live here? A debit
//  side and its credit side may both be here, as two entries, once a
//  migration brought one beside the other.
bool pending_credit_here (pending_t *self, rl_id_t pending_id, rl_id_t debit_account_id);
//  Applies the post or void `resolved` (pending_check and
//  pending_credit_check accepted it, neither side claimed) to both sides
//  here, into the batch.
void pending_apply_here (pending_t *self, const rl_transfer_t *resolved);

#endif
