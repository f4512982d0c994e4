/*  journal.h: the transfers of one shard since its last checkpoint, and the
    durable record of every transfer.

    Every transfer that took effect or burned its id is one record in the
    `transfers` column family, keyed by its shard timestamp. The journal
    assigns those timestamps, puts the records into the batch, keeps the
    ones since the last checkpoint in memory ("recent", with an id index and
    a credit-leg index), and at a checkpoint freezes them for the background
    checkpoint (checkpoint.c), which ingests the derived indexes (tx_index,
    legs, history) as sorted SST files. See journal.c for the invariants and
    limits.
*/
#ifndef RL_JOURNAL_H
#define RL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "idfilter.h"
#include "proto.h"
#include "store.h"

//  The `reserved` field of a stored transfer: the result in bits 0..31, the
//  leg in bits 32..39. A same-shard transfer moves both accounts; a
//  cross-shard one is stored on each side as one leg.
#define JOURNAL_LEG_BOTH            0u
#define JOURNAL_LEG_DEBIT           1u //  on the coordinator: debits the local debit account
#define JOURNAL_LEG_CREDIT          2u //  on the participant: credits the local credit account
#define JOURNAL_STORED(result, leg) ((uint64_t) (result) | ((uint64_t) (leg) << 32))
#define JOURNAL_RESULT(reserved)    ((uint32_t) (reserved))
#define JOURNAL_LEG(reserved)       ((uint32_t) (((reserved) >> 32) & 0xff))

typedef struct journal_t journal_t;

//  NULL when memory ran out.
journal_t *journal_new (store_t *store);
void journal_destroy (journal_t **self_p);
//  Recovery: reads the persisted timestamps, loads the accounts and
//  replays every transfer after the checkpoint onto them. 0, or -1 with a
//  message in err.
int journal_open (journal_t *self, accounts_t *accounts, char *err, size_t err_size);
//  Recovery's step between the accounts and the replay: called by
//  journal_open once the stored accounts are in the table (read, or taken
//  from a standby's warm state) and before any transfer is replayed onto
//  them, to add accounts whose durable copy lives elsewhere until a
//  checkpoint writes them (a migration's handover: ledger.c). It raises
//  *last_ts_p to the newest timestamp it adds, as accounts_load does. 0, or
//  -1 with a message in err (the recovery fails).
typedef int (journal_adopt_fn) (void *arg, accounts_t *accounts, uint64_t *last_ts_p, char *err,
                                size_t err_size);
//  Before journal_open.
void journal_set_adopt (journal_t *self, journal_adopt_fn *fn, void *arg);

//  The next timestamp: max(wall clock, last + 1), so strictly increasing
//  whichever way the wall clock steps.
uint64_t journal_next_ts (journal_t *self, uint64_t wall_ns);
//  Stores a decided record (timestamp from journal_next_ts, reserved =
//  JOURNAL_STORED): into the batch and recent; a credit leg is indexed by
//  (id, debit account), anything else by id. 0, or -1 when memory ran out
//  (nothing stored).
int journal_append (journal_t *self, const rl_transfer_t *record);
//  A linked chain (ledger.c): journal_mark names the end of the live
//  generation; journal_rollback takes back every record appended since (no
//  credit leg among them), within the same turn, before any freeze. The
//  batch's writes are the caller's to take back (store_batch_rollback).
size_t journal_mark (const journal_t *self);
void journal_rollback (journal_t *self, size_t mark);
//  A stored transfer by id (not credit legs): 1 found, 0 not, -1 storage error.
int journal_find (journal_t *self, rl_id_t id, rl_transfer_t *out);
//  The ingested index (tx_index) asked about the ids of `count` transfers
//  (at most RL_BATCH_RECORDS_MAX) in one batched read: ts[i] is the
//  timestamp it names for transfers[i].id, or 0 when it holds no such id.
//  The answers hold until the next journal_thaw (invariant 7). 0, or -1
//  storage error.
int journal_probe (journal_t *self, const rl_transfer_t *transfers, size_t count, uint64_t *ts);
//  journal_find with the ingested index's answer taken from journal_probe
//  (ts: its answer for this id, made since the last journal_thaw), or
//  JOURNAL_PROBE_UNKNOWN: ask the index now, as journal_find does.
int journal_find_probed (journal_t *self, rl_id_t id, uint64_t ts, rl_transfer_t *out);
#define JOURNAL_PROBE_UNKNOWN UINT64_MAX
//  A hint, after a journal_probe of `transfers` that succeeded: the id
//  filter's block and the recent index slots of transfers[i] into the
//  cache, where its lookup and its append will touch them (the request's
//  loop calls it a few records ahead, so that the misses overlap).
void journal_prefetch_probed (const journal_t *self, const rl_transfer_t *transfers, size_t i);
//  A hint, a few records ahead of a batch's appends of two-phase records
//  (the coordinator's debit records, the participant's credit legs): the
//  id filter's block and the index slot the append of (id, debit) will
//  write, into the cache. The probe of the id or the PREPARE's leg check
//  loaded them long before, in another turn. Changes nothing.
#define JOURNAL_APPEND_PREFETCH_AHEAD 8
void journal_prefetch_append (const journal_t *self, rl_id_t id, rl_id_t debit_account_id,
                              bool credit_leg);
//  journal_probe's answer for an id the id filter has never seen: absent
//  from tx_index and from what a migration imported (invariant 8).
#define JOURNAL_PROBE_NONE (UINT64_MAX - 1)
//  May the id be stored or imported here? false: certainly not (the id
//  filter, invariant 8; the recent generations are not consulted).
bool journal_may_hold (const journal_t *self, rl_id_t id);
//  An id a migration imported (its 'I' key is in the store's batch): the
//  filter learns it before the batch commits.
void journal_note_id (journal_t *self, rl_id_t id);

//  The id filter's growth. At a freeze (loop): true when the filter is past
//  its capacity, with the ids a bigger one must have room for beyond those
//  stored in *extra_keys_p; the growth is then marked begun. Any thread: a filter of
//  every id in tx_index and the 'I' keys of `imported` now, sized for twice
//  them plus extra_keys, at least keys_min; NULL with a message in err. At the thaw of that
//  checkpoint (loop): the filter (or NULL: the growth failed) is swapped in,
//  with the live generation's ids added, unless an id was imported since
//  the growth began. *filter_p is taken either way.
bool journal_filter_growth (journal_t *self, size_t *extra_keys_p);
idfilter_t *journal_filter_scan (store_t *store, size_t keys_min, size_t extra_keys, char *err,
                                 size_t err_size);
//  Before journal_open: the smallest filter it builds (IDFILTER_KEYS_MIN)
//  and the room a new filter has beyond the ids it is built with (two
//  checkpoint intervals). Tests make both small to see a filter grow.
void journal_set_filter_sizing (journal_t *self, size_t keys_min, size_t extra_keys);
void journal_filter_swap (journal_t *self, idfilter_t **filter_p);
//  Ids in the filter, ids it is sized for, and journal_probe's ids answered
//  by the filter alone and read from tx_index, since open.
void journal_filter_stats (const journal_t *self, size_t *count_p, size_t *capacity_p,
                           uint64_t *filtered_p, uint64_t *read_p);
//  Leg checks of journal_legs_probe answered "not applied" by the id filter
//  alone (no read of `legs`), since open.
uint64_t journal_legs_filtered (const journal_t *self);
//  Was the credit leg of (transfer id, debit account) applied here? The pair
//  names a transfer uniquely across the cluster (ids are scoped to the debit
//  account's shard). 1 yes, 0 no, -1 storage error.
//  Also consults the legs a migration imported, once journal_set_imported.
int journal_leg_applied (journal_t *self, rl_id_t id, rl_id_t debit_account_id);
//  journal_leg_applied for the credit leg of each PREPARE of a batch, the
//  ingested leg index read in one batched read: applied[i] is 1, 0 or -1
//  (a storage error). The answers hold until a leg is appended or the
//  journal thaws (invariant 7 holds for the leg index too).
void journal_legs_probe (journal_t *self, const rl_prepare_rec_t *recs, size_t count,
                         int8_t *applied);
//  A migration brought records here (imported.h): from now on the leg
//  check consults them after a miss.
void journal_set_imported (journal_t *self);

//  The transfers since the checkpoint that the live generation holds, in
//  timestamp order (all newer than the frozen ones).
const rl_transfer_t *journal_recent (const journal_t *self, size_t *count_p);
//  The frozen generation, being checkpointed (none: NULL, 0), in timestamp order.
const rl_transfer_t *journal_frozen (const journal_t *self, size_t *count_p);
uint64_t journal_checkpoint_ts (const journal_t *self);
uint64_t journal_last_ts (const journal_t *self);
uint64_t journal_transfers_ok (const journal_t *self); //  ok transfers stored since open

//  Before a group commit: the last timestamp joins a non-empty batch.
void journal_before_commit (journal_t *self);
//  Checkpoint, first half (loop, after a commit, nothing frozen): the live
//  generation becomes the frozen one, read-only until journal_thaw, and an
//  empty one takes its place. Returns the checkpoint timestamp it ends at
//  (the last one assigned); the frozen transfers come from journal_frozen.
uint64_t journal_freeze (journal_t *self);
//  Second half, once the checkpoint of the frozen generation is committed
//  (its indexes ingested, its batch synced): checkpoint_ts moves up to it
//  and the frozen generation is emptied.
void journal_thaw (journal_t *self);

//  A STANDBY'S WARM STATE (docs/replication.md, "The standby's ledger"):
//  what journal_open builds from a disk that costs reads (the accounts as
//  accounts_load reads them, the id filter's scan of every stored id, the
//  transfers after checkpoint_ts), built once from a standby's copy and
//  kept current as it applies the primary's events, so that a promotion's
//  journal_open need not read them again. Timestamps and everything else
//  (two-phase records, pending transfers) are still read from disk.
typedef struct journal_warm_t journal_warm_t;
//  Begins building it from the store as journal_open would (the same scan;
//  the filter sized as journal_set_filter_sizing says: IDFILTER_KEYS_MIN
//  and two checkpoint intervals, as a shard's, unless a test asks for
//  less), in a thread of its own: the caller goes on applying writes
//  (journal_warm_write, journal_warm_ingest), which a side record keeps
//  for the build, and journal_warm_settle takes the build once it is done.
//  Not ready (journal_warm_ready) until then. Two small reads here (the
//  copy's checkpoint_ts and newest transfer record). NULL with a message
//  in err.
journal_warm_t *journal_warm_start (store_t *store, size_t keys_min, size_t extra_keys, char *err,
                                    size_t err_size);
//  journal_warm_start, waited for: ready, or NULL with a message in err.
journal_warm_t *journal_warm_new (store_t *store, size_t keys_min, size_t extra_keys, char *err,
                                  size_t err_size);
//  Ends a build that runs (cancelled, joined) and frees it.
void journal_warm_destroy (journal_warm_t **self_p);
//  A write just applied to the store, in its order: a put (value), a
//  delete (value NULL) or a range delete (value: the end key, range true).
//  A write the state does not follow (a transfer record deleted or out of
//  order, checkpoint_ts moving back, an index key of a size the scan fails
//  on, an account record accounts_load fails on or not under its own id's
//  key, a range delete of accounts, more accounts than the table holds)
//  drops it at the next journal_warm_settle.
void journal_warm_write (journal_warm_t *self, store_cf_t cf, const uint8_t *key, size_t key_size,
                         const uint8_t *value, size_t value_size, bool range);
//  An ingest just applied (store_ingest_sorted's arguments). One into the
//  accounts family (the shard makes none) drops the state.
void journal_warm_ingest (journal_warm_t *self, store_cf_t cf, const uint8_t *entries,
                          size_t entry_size, size_t key_size, size_t count);
//  After an event, and now and then (it never waits): a build that is done
//  is taken, with the side record added (logged); a build whose side
//  record passed its bound is abandoned (logged) and another begins
//  JOURNAL_WARM_RETRY_MS later; a filter that filled up begins to be built
//  again, bigger, in the background (the old one answers meanwhile). 0, or
//  -1 with the reason in err: the state no longer follows the disk (a write
//  it does not follow, memory, a scan that failed) and must be dropped; a
//  promotion then recovers from disk.
int journal_warm_settle (journal_warm_t *self, char *err, size_t err_size);
#define JOURNAL_WARM_SIDE_MAX ((size_t) 256 << 20) //  bytes of a build's side record
#define JOURNAL_WARM_RETRY_MS 1000
//  Tests: the bound of the side record, in bytes.
void journal_warm_set_side_max (journal_warm_t *self, size_t bytes);
//  Does it hold the state (built, not dropped)? A growth may be running.
bool journal_warm_ready (const journal_warm_t *self);
//  Does a build (first or growth) run or wait to be taken?
bool journal_warm_building (const journal_warm_t *self);
//  Waits for a build's thread to end (tests); journal_warm_settle takes it.
void journal_warm_wait (journal_warm_t *self);
//  Ends a build that runs (cancelled, joined; logged): a ready state keeps
//  its filter (it holds every id), and goes on following writes, but no
//  build begins again (a fenced copy takes no more events; a seeded one is
//  replaced). Returns journal_warm_ready.
bool journal_warm_stop (journal_warm_t *self);
//  What it holds: ids in its filter, transfers after the checkpoint.
void journal_warm_stats (const journal_warm_t *self, size_t *ids_p, size_t *transfers_p);
//  Accounts it holds (0 until built).
size_t journal_warm_accounts (const journal_warm_t *self);
//  Entries of side records added to the builds taken, builds abandoned.
void journal_warm_side_stats (const journal_warm_t *self, uint64_t *taken_p, uint64_t *abandoned_p);
//  Before journal_open: it takes the warm state (and *warm_p becomes NULL).
//  journal_open checks it against the disk's meta and ends of the
//  transfers after the checkpoint, and uses it (the accounts taken over,
//  no read of them, no scan, no replay read); one that does not match is
//  dropped (logged) and the disk is read. With journal.warm.verify, it
//  also reads all of it from the disk and fails on any difference.
void journal_set_warm (journal_t *self, journal_warm_t **warm_p);
//  After journal_open: did it take a warm state (rather than read the disk)?
bool journal_opened_warm (const journal_t *self);

//  The meta key of the last timestamp assigned (u64), put in the batch of
//  every group commit (journal.c invariant 2).
#define JOURNAL_META_LAST_TS "last_ts"
//  The meta key of the checkpoint timestamp (u64), written by the checkpoint's batch.
#define JOURNAL_META_CHECKPOINT_TS "checkpoint_ts"
//  The meta key of a checkpoint whose accounts are being written in pieces
//  (checkpoint.c, "PIECES"): its checkpoint_ts (u64) and the key of the
//  last account written (an encoded id), put with every piece, deleted by
//  the batch that writes checkpoint_ts. Recovery does not replay a
//  transfer up to that checkpoint_ts onto an account at or below that key.
#define JOURNAL_META_CHECKPOINT_PIECE "checkpoint_piece"
#define JOURNAL_PIECE_SIZE            (8 + RL_ID_SIZE)

#endif
