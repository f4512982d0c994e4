/*  accounts.h: the shard's account table and the balance checks.

    Accounts live in memory (a slab of records with an id index); the
    durable copy is the `accounts` column family, written in full for the
    changed ("dirty") accounts at each checkpoint. Escrow (debits_reserved,
    credits_reserved) is derived state: zero when loaded, rebuilt by the
    two-phase modules from what they recover.

    The two-phase modules see the table only through the narrow calls at
    the end (reserve, release, post one side), never through a record. See
    accounts.c for the invariants and limits.
*/
#ifndef RL_ACCOUNTS_H
#define RL_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

typedef struct accounts_t accounts_t;

//  The two accounts of a same-shard transfer, found once by
//  accounts_transfer_check and posted by accounts_transfer_post.
typedef struct {
    uint32_t debit_slot;
    uint32_t credit_slot;
} accounts_pair_t;

//  A side of a pair held on another shard (a cross-shard pending transfer
//  keeps one side here: pending.c); accounts_pending_move leaves it alone.
#define ACCOUNTS_SLOT_NONE UINT32_MAX

//  NULL when memory ran out.
accounts_t *accounts_new (store_t *store);
void accounts_destroy (accounts_t **self_p);
//  Loads every stored account, reserved amounts zeroed. *last_ts_p is
//  raised to the newest account timestamp. 0, or -1 with a message in err.
int accounts_load (accounts_t *self, uint64_t *last_ts_p, char *err, size_t err_size);

size_t accounts_count (const accounts_t *self); //  slots, holes of removed accounts included
size_t accounts_live_count (const accounts_t *self);
//  Removes an account from memory (its slot becomes a zeroed hole); the
//  caller deletes its durable copy. 0 removed, 1 not held, -1 refused: it
//  is dirty (the next checkpoint would write it back) or holds escrow.
int accounts_remove (accounts_t *self, rl_id_t id);
//  The account in a slot (< accounts_count); a hole is all zeros.
const rl_account_t *accounts_at (const accounts_t *self, size_t slot);
//  The account, or NULL when it is not held here.
const rl_account_t *accounts_get (const accounts_t *self, rl_id_t id);

//  A create_accounts record against the table: RL_OK when it may be
//  created, an exists result (with the stored timestamp in *ts_p), or the
//  first validation failure. Id and ownership checks are the caller's.
uint32_t accounts_check_new (const accounts_t *self, const rl_account_t *a, uint64_t *ts_p);
//  Adds an account checked by accounts_check_new (timestamp set) and puts
//  it into the batch. 0, or -1 when the table is full or memory ran out.
int accounts_insert (accounts_t *self, const rl_account_t *account);
//  A migration's handover (migrate.c, "THE HANDOVER'S ACCOUNTS"): adds an
//  account (timestamp set, nothing pending or reserved, not held here)
//  marked dirty, and puts nothing into the batch: its durable copy is the
//  staged one until the next checkpoint writes it. 0, or -1 when the table
//  is full or memory ran out.
int accounts_adopt (accounts_t *self, const rl_account_t *account);
//  Room for `more` accounts beyond those held, made now (the slab and its
//  index grown), so that adding them later grows nothing: a handover's
//  adoptions do not pay for a growth inside the freeze. 0; -1 when
//  memory ran out (then the adds grow it as usual, or fail); -2 when the
//  table would pass RL_SHARD_ACCOUNTS_MAX, whose slots count the removed
//  accounts' holes until a restart closes them.
int accounts_reserve (accounts_t *self, size_t more);

//  Same-shard transfer: lookups, ledgers and balances, in the documented
//  order (docs/protocol.md). RL_OK fills *pair.
uint32_t accounts_transfer_check (const accounts_t *self, const rl_transfer_t *t,
                                  accounts_pair_t *pair);
void accounts_transfer_post (accounts_t *self, const accounts_pair_t *pair, uint64_t amount);

//  User-level pending transfers (pending.c). The slots of two accounts held
//  here (false when one is not). Pending amounts are derived, like escrow:
//  zero when loaded, rebuilt from the transfers still pending.
bool accounts_pair (const accounts_t *self, rl_id_t debit, rl_id_t credit, accounts_pair_t *pair);
//  Both accounts' pending amounts lose `release` and gain `add`, and
//  `post` (<= release) is posted (a side ACCOUNTS_SLOT_NONE is skipped). 0, or -1 when pending
//  holds less than release or a sum overflows (nothing changed).
int accounts_pending_move (accounts_t *self, const accounts_pair_t *pair, uint64_t add,
                           uint64_t release, uint64_t post);

//  A linked chain that failed (ledger.c): the account in `slot` gets back
//  the record `saved`, copied from it (accounts_at) before the chain
//  changed it. Its slot stays dirty.
void accounts_restore (accounts_t *self, size_t slot, const rl_account_t *saved);

//  Replay of a stored ok transfer: posts one side. -1 when the account is
//  not held here (the stored state is inconsistent).
int accounts_post (accounts_t *self, rl_id_t id, bool debit, uint64_t amount);

//  Two-phase, debit side (coordinator): checks the debit account (found,
//  ledger, limits) and reserves the amount. RL_OK or the failure.
uint32_t accounts_debit_reserve (accounts_t *self, const rl_transfer_t *t);
//  Releases a reservation made by accounts_debit_reserve; post: the debit
//  is posted (the transfer committed).
void accounts_debit_release (accounts_t *self, rl_id_t id, uint64_t amount, bool post);
//  Two-phase, credit side (participant): the same for the credit account.
uint32_t accounts_credit_reserve (accounts_t *self, const rl_transfer_t *t);
void accounts_credit_release (accounts_t *self, rl_id_t id, uint64_t amount, bool post);
//  Recovery of a prepared record's reservation. -1 when the account is missing.
int accounts_credit_restore (accounts_t *self, rl_id_t id, uint64_t amount);
//  The same for debits_reserved (a participant's prepared debit leg).
int accounts_debit_restore (accounts_t *self, rl_id_t id, uint64_t amount);

//  Audit support: the slot of an account (false when not held here), and a
//  check that every slot's reserved amounts equal the given sums (arrays of
//  accounts_count entries). 0, or -1 with the first discrepancy in err.
bool accounts_slot (const accounts_t *self, rl_id_t id, size_t *slot_p);
int accounts_audit (const accounts_t *self, const uint64_t *debits, const uint64_t *credits,
                    char *err, size_t err_size);

//  Sums over every account held here, per ledger (0: all).
void accounts_sums (const accounts_t *self, uint32_t ledger_id, uint64_t *debits_posted,
                    uint64_t *credits_posted, uint64_t *debits_reserved,
                    uint64_t *credits_reserved);

//  Checkpoint: copies every account changed since the last checkpoint into
//  out (room for cap >= accounts_dirty_count records) and forgets that it
//  changed. Returns how many.
size_t accounts_take_dirty (accounts_t *self, rl_account_t *out, size_t cap);
//  Accounts changed since the last checkpoint.
size_t accounts_dirty_count (const accounts_t *self);

//  A STANDBY'S MIRROR (journal.h, "a standby's warm state"): a table built
//  and kept current from the records of the `accounts` column family as
//  they are written, so that it holds what accounts_load would read from
//  that family now; a promotion's recovery takes it instead (accounts_take).
//  A record put: inserted, or written over the account's record, its
//  reserved and pending amounts zeroed (as accounts_load leaves them);
//  nothing is marked dirty or put into the store's batch. The record's id
//  must not be zero. *old_ts_p: the timestamp of the record written over
//  (0: a new account). 0, or -1 when the table is full or memory ran out
//  (nothing changed).
int accounts_mirror_put (accounts_t *self, const rl_account_t *stored, uint64_t *old_ts_p);
//  A record deleted: the account's slot becomes a hole, whatever it holds
//  (a mirror has nothing dirty, no escrow). true when it was held.
bool accounts_mirror_delete (accounts_t *self, rl_id_t id);
//  self (just made by accounts_new, nothing loaded) takes over the
//  accounts of the mirror *from_p (nothing dirty, no change tracking),
//  which is destroyed: the slab and its index change hands, and the holes
//  of deleted records are closed (O(slots); none: O(1)), so that the table
//  holds no more slots than a load of the disk would.
void accounts_take (accounts_t *self, accounts_t **from_p);

//  Change tracking, for a migration's catch-up rounds (accounts.c, "CHANGE
//  TRACKING"): on allocates a generation per slot (0, or -1 when memory ran
//  out: tracking stays off); off frees it. Idempotent.
int accounts_track_changes (accounts_t *self, bool on);
//  Starts a new generation (tracking on): every change from now on is
//  stamped with the returned mark or a later one.
uint32_t accounts_change_mark (accounts_t *self);
//  Calls fn for every account (not a hole) changed since `mark` (0: every
//  account; tracking on), in slot order, until fn returns false; returns
//  the calls made.
size_t accounts_changed_since (const accounts_t *self, uint32_t mark,
                               bool (*fn) (void *arg, const rl_account_t *account), void *arg);

#endif
