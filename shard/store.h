/*  store.h: the shard's one boundary to RocksDB.

    One database, one column family per kind of record (docs/storage.md):

        meta        small named values: last timestamp, checkpoint, ring, incarnation
        accounts    account id (16)            -> account record (128)
        transfers   timestamp (8, big-endian)  -> transfer record (128), result inside
        tx_index    transfer id (16)           -> timestamp (8)         [SST ingest only]
        history     account id (16) + ts (8)   -> (empty)               [SST ingest only]
        xlog        coordinator log of two-phase transfers
        prepared    prepared records of two-phase transfers
        legs        transfer id (16) + debit account id (16) -> ts (8): credit legs
                    applied here                             [SST ingest only]
        imported    what migrations brought in from other shards, under one-byte
                    prefixes (shard/imported.c); never replayed into balances
        pending     pending transfer id (16) -> its record (128), state inside:
                    user-level pending transfers (shard/pending.c)
        pending_arc ring point of an account (8, big-endian) + pending id (16) +
                    debit account id (16) + credit side (1) -> (empty): the
                    pending table by account, which a migration's final round
                    reads for its arc alone (shard/pending.c, "THE INDEX BY ACCOUNT")

    All writes of one group commit go into one WriteBatch (store_batch_*),
    written and synced by store_commit, or written by store_write_group
    and synced later by store_sync (the server's pipelined group commit).
    An ingest (store_ingest_sorted) and a checkpoint (store_checkpoint)
    first sync every write made before them, so that neither makes durable
    anything derived from a write the WAL could still lose. The background checkpoint
    (checkpoint.c) writes from its own thread: SST ingests and a WriteBatch
    of its own (store_batch_new); everything else is the loop thread's. Any
    thread may fail the store, and every thread sees it failed. A failed write or sync puts the
    store into a failed state: it refuses every later commit, because memory
    and disk may disagree; the shard then answers storage_error and exits so
    that a restart recovers from disk (docs/storage.md, "Errors").

    Durability modes (rl_durability_t):
        sync             write with sync=true (default)
        nosync           write without sync: benchmark only, labelled in reports
        sync_manual_wal  manual_wal_flush: the WAL stays in memory until
                         store_commit flushes and syncs it, so that SIGKILL
                         drops everything not group-committed (tests)
*/
#ifndef RL_STORE_H
#define RL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef enum {
    STORE_CF_META = 0,
    STORE_CF_ACCOUNTS,
    STORE_CF_TRANSFERS,
    STORE_CF_TX_INDEX,
    STORE_CF_HISTORY,
    STORE_CF_XLOG,
    STORE_CF_PREPARED,
    STORE_CF_LEGS,
    STORE_CF_IMPORTED,
    STORE_CF_PENDING,
    STORE_CF_PENDING_ARC,
    STORE_CF_COUNT
} store_cf_t;

typedef struct store_t store_t;
typedef struct store_iter_t store_iter_t;

store_t *store_open (const char *dir, rl_durability_t durability, char *err, size_t err_size);

//  An in-memory file system for simulations: databases opened on it keep
//  what was committed across store_close, like a disk across a restart.
typedef struct store_env_t store_env_t;
store_env_t *store_env_new_mem (void);
void store_env_destroy (store_env_t **self_p);
store_t *store_open_env (const char *dir, rl_durability_t durability, store_env_t *env, char *err,
                         size_t err_size);
//  Drops the pending batch (a simulated crash loses it).
void store_batch_discard (store_t *self);
void store_close (store_t **self_p);
rl_durability_t store_durability (const store_t *self);

//  The pending WriteBatch of the current group commit.
void store_batch_put (store_t *self, store_cf_t cf, const void *key, size_t key_size,
                      const void *value, size_t value_size);
void store_batch_delete (store_t *self, store_cf_t cf, const void *key, size_t key_size);
//  Deletes the keys in [begin, end) (one range tombstone).
void store_batch_delete_range (store_t *self, store_cf_t cf, const void *begin, size_t begin_size,
                               const void *end, size_t end_size);
//  Compacts the keys in [begin, end] now (reclaims deleted space). It
//  blocks the calling thread for the compaction's time.
void store_compact_range (store_t *self, store_cf_t cf, const void *begin, size_t begin_size,
                          const void *end, size_t end_size);
//  Marks the files that hold keys in [begin, end] for compaction, which
//  RocksDB's background threads run later (reclaiming deleted space); the
//  call itself returns at once. 0, or -1 (logged).
int store_suggest_compact_range (store_t *self, store_cf_t cf, const void *begin, size_t begin_size,
                                 const void *end, size_t end_size);
size_t store_batch_count (const store_t *self); //  operations in the batch
//  A save point of the pending batch (a linked chain: ledger.c). rollback
//  drops every write made since the newest save point and removes it; pop
//  removes it and keeps the writes. Each 0, or -1 (no save point: logged).
void store_batch_savepoint (store_t *self);
int store_batch_rollback (store_t *self);
int store_batch_savepoint_pop (store_t *self);
//  Writes the batch (empty batches cost nothing) and makes it durable as the
//  mode says. 0 on success; -1 and the failed state otherwise.
int store_commit (store_t *self);
//  The group commit of a server turn, in two halves so that the loop need
//  not wait for the disk (server.c, "The pipelined group commit"):
//  store_write_group writes the batch (the memtables and the WAL, which is
//  not synced, or in sync_manual_wal stays in memory) and hosts the
//  shard.after_write failpoint; store_sync then makes every write made so
//  far durable, from any thread, and hosts store.sync. It holds the write
//  lock while it syncs (store.c, invariant 2): the loop's next write waits
//  for it, its reads and applies go on. In nosync, store_sync does nothing. Each 0, or -1 and the
//  failed state.
int store_write_group (store_t *self);
//  store_write_group for a replicated primary: the tap (store_set_tap)
//  sees the batch first, then `ship` runs, then RocksDB writes it, all
//  under the write lock (events keep RocksDB's order), so that a standby
//  applies the batch beside the primary's own write (replica_ship). If
//  the write then fails, the event is out already: the shard fails, and
//  its next start begins a new stream (the standbys re-seed); a promoted
//  standby holds a batch whose requests were answered storage_error
//  (outcome unknown). Without a tap, store_write_group. A ship that
//  returns non-zero fails the write as RocksDB would (tests: a write
//  that fails after its batch went out).
typedef int (store_ship_fn) (void *arg);
int store_write_group_ship (store_t *self, store_ship_fn *ship, void *arg);
int store_sync (store_t *self);
bool store_failed (const store_t *self);
//  Last RocksDB error text, or "" (a copy owned by the calling thread).
const char *store_error (const store_t *self);

//  A WriteBatch of its own, for a thread other than the loop's (the
//  background checkpoint): that thread alone builds and commits it.
typedef struct store_batch_t store_batch_t;
store_batch_t *store_batch_new (void); //  NULL when memory ran out
void store_batch_destroy (store_batch_t **self_p);
void store_batch_put_into (store_t *self, store_batch_t *batch, store_cf_t cf, const void *key,
                           size_t key_size, const void *value, size_t value_size);
void store_batch_delete_into (store_t *self, store_batch_t *batch, store_cf_t cf, const void *key,
                              size_t key_size);
void store_batch_delete_range_into (store_t *self, store_batch_t *batch, store_cf_t cf,
                                    const void *begin, size_t begin_size, const void *end,
                                    size_t end_size);
//  Writes batch, then makes it durable as the mode says; the lock is let go
//  between the write and the sync (a loop's write may come between), but
//  the sync holds it too (store.c, invariant 2); a failure fails the store. The batch is empty
//  afterwards. 0, or -1.
int store_batch_commit (store_t *self, store_batch_t *batch);
//  Writes batch without a sync of its own (a later sync, of any writer,
//  makes it durable with every batch before it). Empty afterwards. 0, or -1.
int store_batch_write (store_t *self, store_batch_t *batch);
//  Entries in batch (puts and deletes).
size_t store_batch_entries (const store_batch_t *batch);

//  1 found (value copied, *value_size_p set, truncated to value_cap),
//  0 not found, -1 error.
int store_get (store_t *self, store_cf_t cf, const void *key, size_t key_size, void *value,
               size_t value_cap, size_t *value_size_p);
//  Looks up `count` keys of `key_size` bytes each, packed in `keys`, in one
//  batched read (RocksDB's MultiGet: one pass over the files for the
//  batch). found[i]: 1 when keys[i] is present (its value, which must be
//  exactly `value_size` bytes, copied to values + i * value_size), 0 when
//  absent. 0, or -1 on a storage error or a value of another size (found
//  then means nothing).
int store_multi_get (store_t *self, store_cf_t cf, const uint8_t *keys, size_t key_size,
                     size_t count, uint8_t *values, size_t value_size, uint8_t *found);

//  Writes `count` entries, each `entry_size` bytes: a key of `key_size`
//  bytes followed by its value. Entries must be sorted by key bytes and
//  unique. They become one SST file, ingested into `cf` (the file is moved
//  into the database). 0 on success, -1 on error (nothing ingested; a
//  failed write or ingest fails the store, and a failed store refuses).
int store_ingest_sorted (store_t *self, store_cf_t cf, const uint8_t *entries, size_t entry_size,
                         size_t key_size, size_t count);

//  A RocksDB checkpoint of the database as it is now into dir, which must
//  not exist and must be on the same file system (table files are hard
//  links; WAL files are copied unless they hold log_size_for_flush bytes or
//  more, when the memtables are flushed first). For backups (backup.c).
//  0, or -1 with the reason in err (the store is not failed: nothing of it
//  was written).
int store_checkpoint (store_t *self, const char *dir, uint64_t log_size_for_flush, char *err,
                      size_t err_size);

//  The sequence number of the last write or ingest (RocksDB's), any thread.
uint64_t store_sequence (store_t *self);

//  Iterators over one column family (a consistent view at creation).
store_iter_t *store_iter_new (store_t *self, store_cf_t cf);
void store_iter_destroy (store_iter_t **self_p);
void store_iter_seek (store_iter_t *self, const void *key, size_t key_size);
void store_iter_seek_for_prev (store_iter_t *self, const void *key, size_t key_size);
void store_iter_seek_first (store_iter_t *self);
void store_iter_seek_last (store_iter_t *self);
//  false at the end of the range, and also when a read error ended the
//  scan: then the store is FAILED (store_failed, store_error), so that no
//  caller takes part of a range for all of it.
bool store_iter_valid (const store_iter_t *self);
//  After an iterator stopped being valid: did it stop on an error rather
//  than at the end? 0 the end, -1 an error (its text in err).
int store_iter_error (const store_iter_t *self, char *err, size_t err_size);
void store_iter_next (store_iter_t *self);
void store_iter_prev (store_iter_t *self);
const uint8_t *store_iter_key (const store_iter_t *self, size_t *size_p);
const uint8_t *store_iter_value (const store_iter_t *self, size_t *size_p);

//  Replication (replica.h): a tap sees every write made to the database
//  after it is set, under the write lock, in the order RocksDB applied
//  them: a WriteBatch's bytes (rocksdb_writebatch_data) or an ingest's
//  sorted entries. From any thread that writes; it must not call the store.
//  It sees a write once RocksDB made it, except the group write of
//  store_write_group_ship, which it sees just before (that write may then
//  fail: the store fails too).
typedef enum { STORE_TAP_BATCH = 1, STORE_TAP_INGEST = 2 } store_tap_kind_t;
typedef struct {
    store_tap_kind_t kind;
    const uint8_t *data; //  the batch's bytes, or the entries
    size_t size;         //  their bytes
    store_cf_t cf;       //  INGEST: the column family
    size_t entry_size;   //  INGEST
    size_t key_size;     //  INGEST
    size_t count;        //  INGEST: entries
} store_tap_event_t;
typedef void (store_tap_fn) (void *arg, const store_tap_event_t *event);
//  Sets (or with NULL clears) the tap.
void store_set_tap (store_t *self, store_tap_fn *fn, void *arg);
//  A checkpoint (as store_checkpoint, WAL files copied, no flush) at an
//  exact position of the tap's stream: under the write lock, the WAL is
//  synced, `at (arg)` runs (no write can come between it and the
//  checkpoint), then the checkpoint is made. 0, or -1 with err.
int store_checkpoint_at (store_t *self, const char *dir, void (*at) (void *), void *arg, char *err,
                         size_t err_size);
//  The standby's apply: writes the WriteBatch bytes `data` (checked by the
//  caller, replica_batch_valid) plus one put into meta, durably as the
//  mode says. 0, or -1 and the failed state.
int store_apply_batch (store_t *self, const uint8_t *data, size_t size, const void *meta_key,
                       size_t meta_key_size, const void *meta_value, size_t meta_value_size);

//  RocksDB's own counters: keys and bytes written since open (statistics).
void store_write_stats (store_t *self, uint64_t *keys_written_p, uint64_t *bytes_written_p,
                        uint64_t *wal_bytes_p, uint64_t *wal_syncs_p);
//  An integer property of RocksDB summed over every column family (e.g.
//  "rocksdb.cur-size-all-mem-tables"); unknown properties count 0. For the
//  metrics, at most once a second: some properties take the DB mutex.
uint64_t store_property_sum (store_t *self, const char *name);
//  The same property of one column family; 0 when unknown.
uint64_t store_property_cf (store_t *self, store_cf_t cf, const char *name);
//  One ticker of RocksDB's statistics ("rocksdb.stall.micros "); 0 if absent.
uint64_t store_ticker (store_t *self, const char *name);
//  The size of the write-ahead log on disk now: the live WAL files
//  (NNNNNN.log in the data directory; RocksDB has no property for it).
//  O(files in the directory): for the metrics, at most once a second.
uint64_t store_wal_size (store_t *self);

#endif
