/*  imported.h: the records and accounts a migration brought into this
    shard, in the `imported` column family (docs/rebalance.md, "The
    imported key space"). Recovery never reads them into balances; lookups
    by id, the credit-leg check and history reads consult them after the
    shard's own records. See imported.c for the keys and invariants.
*/
#ifndef RL_IMPORTED_H
#define RL_IMPORTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "proto.h"
#include "store.h"

//  Key prefixes (imported.c, KEYS).
#define IMPORTED_TRANSFER 'T' //  'T' origin ts id -> transfer record
#define IMPORTED_BY_ID    'I' //  'I' id debit -> origin ts (the debit account moved here)
#define IMPORTED_LEG      'L' //  'L' id debit -> origin ts (a credit leg applied at the origin)
#define IMPORTED_HISTORY  'H' //  'H' account ts origin id -> (empty)
#define IMPORTED_ACCOUNT  'A' //  'A' id -> account snapshot (staged until the handover)
#define IMPORTED_PENDING  'P' //  'P' id debit side -> pending transfer (staged until the handover)

#define IMPORTED_TRANSFER_KEY_SIZE (1 + 8 + 8 + RL_ID_SIZE)
#define IMPORTED_PENDING_KEY_SIZE  (1 + 2 * RL_ID_SIZE + 1)

//  Is the point of `account` in the arc (start, end]? (start != end)
bool imported_in_arc (uint64_t start, uint64_t end, rl_id_t account);
//  Does the entry belong to the arc: a transfer that names an account of
//  the arc on a side its leg applies to, an account of the arc?
bool imported_entry_fits (uint64_t start, uint64_t end, const chunk_entry_t *entry);
//  A transfer still pending as a source's pending table holds it (its side
//  there in bits 8..15 of `reserved`): the side the shard that receives
//  the arc (start, end] holds of it (0 both, 1 the debit, 2 the credit:
//  pending_side_t), or -1 when it names no account of the arc on a side
//  the source holds.
int imported_pending_side (uint64_t start, uint64_t end, const rl_transfer_t *t);
//  Its staged key (IMPORTED_PENDING_KEY_SIZE bytes into key).
void imported_pending_key (const rl_transfer_t *t, uint8_t *key);
//  Puts the entry's keys into the store's batch (the entry fits the arc:
//  asserted). Writing the same entry twice writes the same keys.
void imported_put (store_t *store, uint64_t start, uint64_t end, const chunk_entry_t *entry);

//  An abort's verdict on one key of the family (migrate_abort on the
//  target): 1 when it was written for the arc (start, end] and nothing
//  outside the arc needs it (a staged account, a history, idempotency or
//  leg key of an account of the arc, a record that no key of an account
//  outside the arc names), 0 when it stays, -1 on a storage error or a key
//  that does not parse. Keys are judged in key order: the 'T' records come
//  last, after the keys that name them.
int imported_abort_verdict (store_t *store, uint64_t start, uint64_t end, const uint8_t *key,
                            size_t key_size, const uint8_t *value, size_t value_size);

//  Does the column family hold anything? (At open: whether lookups must
//  consult it.)
bool imported_any (store_t *store);
//  A transfer whose debit account moved here, by id: 1 found (out filled,
//  reserved = stored result and leg), 0 not, -1 storage error.
//  With several records of one id (clients that reused it with other
//  debit accounts on other shards), one of them.
int imported_find (store_t *store, rl_id_t id, rl_transfer_t *out);
//  The transfer of (id, debit account) that moved here: 1 found (out
//  filled as imported_find), 0 not, -1 storage error.
int imported_find_debit (store_t *store, rl_id_t id, rl_id_t debit_account_id, rl_transfer_t *out);
//  Was the credit leg of (id, debit account) applied by a previous owner
//  of the credit account? 1 yes, 0 no, -1 storage error.
int imported_leg_applied (store_t *store, rl_id_t id, rl_id_t debit_account_id);
//  The account's imported ok transfers with ts_min <= timestamp <= ts_max
//  on the sides `filter_flags` asks for (RL_FILTER_DEBITS: it is the debit
//  account of a debit or whole record; RL_FILTER_CREDITS: the credit account
//  of a credit or whole record), in timestamp order (newest first when
//  reversed), at most cap into out. The side is checked during the scan, so
//  records of the other side never use up cap. 0 (*count_p set), or -1 on a
//  storage error.
int imported_history (store_t *store, rl_id_t account_id, uint64_t ts_min, uint64_t ts_max,
                      uint32_t filter_flags, bool reversed, rl_transfer_t *out, size_t cap,
                      size_t *count_p);
//  Whether a stored record t (its leg in t->reserved, journal.h) is on a
//  side of account_id that filter_flags asks for.
bool imported_history_side (const rl_transfer_t *t, rl_id_t account_id, uint32_t filter_flags);
//  The staged snapshot of an account: 1 found, 0 not, -1 storage error.
int imported_account (store_t *store, rl_id_t id, rl_account_t *out);

#endif
