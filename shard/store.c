/*  store.c: RocksDB behind the names of store.h.

    Every `char *err` that RocksDB hands back is turned into a log line and
    a return code here; nothing outside this file sees a RocksDB type.

    INVARIANTS
    1. One WriteBatch per group commit: everything the caller put since the
       last commit is written together or not at all.
    2. Once a write or sync has failed, no later commit or ingest is
       attempted (state FAILED below): memory and disk may disagree, and
       only a restart, which recovers from what is on disk, makes them agree
       again. Writes, syncs and ingests of every thread (the loop, the
       syncer, the checkpoint, a backup) take turns under write_lock, each
       checking FAILED first, so that none reaches RocksDB after another saw
       a failure. A sync is under the lock too: RocksDB's SyncWAL does not
       check the WAL writer's earlier error, and on a writer whose Append
       failed (a full disk) its SyncWithoutFlush stops the process on an
       assertion (`sync_without_flush_called_`, Debian's librocksdb keeps
       assertions) instead of returning the error. A write is still never
       under the same hold as a sync of its batch (store_batch_commit lets
       the lock go between them), but the loop's write waits out an fsync
       of another thread that holds the lock.
    3. A staged ingest file's name is never reused and never written over:
       see "Staged ingest files" below (a reused name truncated a live SST
       through a hard link left by a crash inside RocksDB's ingest).

    STATES
                 store_open ok
        (closed) ------------> OPEN --- commit: write or sync fails ---> FAILED
                                 |                                        |
                                 +------------- store_close <-------------+
        OPEN    commits, ingests, reads.
        FAILED  store_commit and store_ingest_sorted return -1 at once (a
                failed SST write or ingest fails the store too); reads still work (they see
                what RocksDB holds, which may include the failed batch: the
                caller must not serve them as durable); store_failed () and
                store_error () say why. Left only by closing; the next open
                recovers from disk.

    LIMITS
      STORE_WRITE_BUFFER_BYTES per column family memtable; one staged ingest
      file at a time; error text STORE_ERROR_SIZE bytes (longer is cut).

    Options, and why (docs/storage.md has the measurements):
      - transfers: keys are shard timestamps, so inserts arrive in key order
        and the skiplist insert is cheap; no compression (CPU is the limit).
      - tx_index and history are written only through SST ingestion at
        checkpoints (sorted in memory first), never through the memtable.
        tx_index carries full bloom filters (as do accounts, legs,
        imported, pending, pending_arc) for the gets that the id filter
        does not answer; history has none: only iterators read it.
      - tx_index, history, legs, imported and pending_arc have random
        keys, so each file in level 0 spans the key space and each
        compaction of level 0 rewrites level 1: STORE_RANDOM_L0_FILES files
        wait in level 0 before one, not RocksDB's default 4.
      - xlog and prepared: a vector memtable (entries appended unsorted,
        sorted once at flush) instead of the skiplist. Every cross-shard
        transfer puts and deletes one entry in each, and a turn interleaves
        new keys with deletes of older ones, so each skiplist insert paid a
        full search (a quarter of a cross-shard transfer's CPU, profiled);
        these families are read only by the scan at start, never by a get.
        The vector memtable takes no concurrent inserts, so that option is
        off for the database (writes take turns under write_lock anyway).
      - pending_arc: a vector memtable too. Every pending state written puts
        one or two of its keys, which start with an account's ring point, so
        each skiplist insert paid a full search: a workload with 20% of
        pending transfers spent 10-14% more CPU per transfer than before the
        family existed, 6-7% with the vector (bench/README.md). It is read only
        by iterators (a migration's final round, the audit, never a get),
        and an iterator over a vector that is still being written sorts a
        copy of it, so its memtable is STORE_PENDING_ARC_BUFFER_BYTES: tens
        of thousands of keys, a sort of milliseconds for each chunk of the
        final round of a migration, which reads the arc while it is
        frozen. Up to STORE_PENDING_ARC_BUFFERS of them.
      - statistics are on, so that benchmarks read keys and bytes written
        from RocksDB itself.
*/
#include "store.h"

#include <assert.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "failpoint.h"
#include "log.h"

static const char *s_cf_names[STORE_CF_COUNT] = {
    "default",  "accounts", "transfers", "tx_index", "history",     "xlog",
    "prepared", "legs",     "imported",  "pending",  "pending_arc",
};

#define STORE_WRITE_BUFFER_BYTES       (64u << 20) //  memtable size per column family
#define STORE_PENDING_ARC_BUFFER_BYTES (4u << 20)  //  pending_arc's: its scans sort it
#define STORE_PENDING_ARC_BUFFERS      4           //  pending_arc's memtables, at most
#define STORE_RANDOM_L0_FILES          16          //  level-0 files before a compaction
#define STORE_BLOOM_BITS_PER_KEY       10.0        //  ~1% false positives
#define STORE_ERROR_SIZE               256         //  bytes of the last error text
#define STORE_INFO_LOG_LEVEL           4           //  RocksDB's InfoLogLevel FATAL_LEVEL

struct store_t {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_options_t *cf_options[STORE_CF_COUNT];
    rocksdb_block_based_table_options_t *table_options;
    rocksdb_column_family_handle_t *cf[STORE_CF_COUNT];
    rocksdb_writebatch_t *batch;
    rocksdb_writeoptions_t *write_options;
    rocksdb_writeoptions_t *group_options; //  the loop's group writes: never sync=true
    rocksdb_readoptions_t *read_options;
    rl_durability_t durability;
    atomic_bool failed;           //  a write or sync failed: refuse until restart (any thread)
    pthread_mutex_t write_lock;   //  one write or ingest at a time, each after checking failed
    pthread_mutex_t error_lock;   //  guards error: any thread may fail
    char error[STORE_ERROR_SIZE]; //  last error text
    char *dir;
    atomic_uint_fast64_t ingest_seq; //  names of staged ingest files: sequence within this open
    uint64_t ingest_token;           //  names of staged ingest files: random, new at every open
    rocksdb_env_t *env;              //  NULL: the default (disk)
    store_tap_fn *tap;               //  replication (replica.h): sees every write; under write_lock
    void *tap_arg;
};

struct store_iter_t {
    rocksdb_iterator_t *it;
    store_t *store; //  failed by an iterator that ends on an error
};

//  A WriteBatch of a thread other than the loop's (store_batch_new).
struct store_batch_t {
    rocksdb_writebatch_t *batch;
};

static void
s_set_error_text (store_t *self, const char *what, const char *text)
{
    char line[STORE_ERROR_SIZE];
    snprintf (line, sizeof (line), "%s: %s", what, text);
    pthread_mutex_lock (&self->error_lock);
    memcpy (self->error, line, sizeof (line));
    pthread_mutex_unlock (&self->error_lock);
    rl_error ("store: %s", line);
}

static void
s_set_error (store_t *self, const char *what, char *err)
{
    s_set_error_text (self, what, err ? err : "?");
    rocksdb_free (err);
}

//  Staged ingest files -----------------------------------------------------
//
//  A checkpoint writes each sorted index as an SST file in the database
//  directory, named STORE_INGEST_PREFIX..., and ingests it with move_files:
//  RocksDB hard-links the file into the database, records the ingest, and
//  only then unlinks the staged name. A crash between those two steps
//  leaves a staged name that is a second link to a live SST. Writing a new
//  SST under that name would truncate the live file through the link (the
//  database is then corrupt for good), so:
//    - a staged name is never reused: it carries a random token new at every
//      open, plus a sequence;
//    - a staged name is unlinked before it is written, so the writer always
//      creates a new inode;
//    - at open, every leftover staged file is unlinked. Unlinking drops one
//      name of a file and never touches its data: a leftover is either a
//      file that was never ingested (garbage) or an extra link to a live
//      SST (RocksDB keeps its own name).
#define STORE_INGEST_PREFIX "ingest-"

static uint64_t
s_ingest_token (void)
{
    uint64_t token = 0;
    if (getrandom (&token, sizeof (token), GRND_NONBLOCK) != (ssize_t) sizeof (token)) {
        //  No entropy yet: the time and pid still differ from any earlier open.
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        token = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
        token ^= (uint64_t) getpid () << 40;
    }
    return token;
}

//  Unlinks every staged ingest file left in the database directory.
//  0, or -1 with a message when the directory cannot be read or a file
//  cannot be unlinked.
static int
s_remove_staged (store_t *self, char *err, size_t err_size)
{
    DIR *dir = opendir (self->dir);
    if (!dir) {
        snprintf (err, err_size, "cannot list %s: %s", self->dir, strerror (errno));
        return -1;
    }
    int rc = 0;
    size_t removed = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL) {
        if (strncmp (entry->d_name, STORE_INGEST_PREFIX, strlen (STORE_INGEST_PREFIX)) != 0) {
            continue;
        }
        char path[4096];
        snprintf (path, sizeof (path), "%s/%s", self->dir, entry->d_name);
        if (unlink (path) != 0 && errno != ENOENT) {
            snprintf (err, err_size, "cannot remove the staged file %s: %s", path,
                      strerror (errno));
            rc = -1;
            break;
        }
        removed++;
    }
    closedir (dir);
    if (removed > 0) {
        rl_info ("store: removed %zu staged ingest file(s) left by an interrupted checkpoint",
                 removed);
    }
    return rc;
}

static rocksdb_options_t *
s_cf_options_new (store_t *self, store_cf_t cf)
{
    rocksdb_options_t *options = rocksdb_options_create ();
    rocksdb_options_set_write_buffer_size (options, STORE_WRITE_BUFFER_BYTES);
    rocksdb_options_set_compression (options, rocksdb_no_compression);
    if (self->env) {
        rocksdb_options_set_env (options, self->env); //  SST files written for ingestion too
    }
    if (cf == STORE_CF_TX_INDEX || cf == STORE_CF_ACCOUNTS || cf == STORE_CF_LEGS
        || cf == STORE_CF_IMPORTED || cf == STORE_CF_PENDING || cf == STORE_CF_PENDING_ARC) {
        //  Bloom filters where gets look keys up. history is read only by
        //  iterators, which filters never serve: building one for each of
        //  its files, at every checkpoint and every compaction, was waste.
        rocksdb_options_set_block_based_table_factory (options, self->table_options);
    }
    if (cf == STORE_CF_TX_INDEX || cf == STORE_CF_HISTORY || cf == STORE_CF_LEGS
        || cf == STORE_CF_IMPORTED || cf == STORE_CF_PENDING_ARC) {
        //  Random keys: every file that reaches level 0 (a checkpoint's
        //  ingested file, a flushed memtable) spans the whole key space,
        //  so each compaction of level 0 rewrites all of level 1. With
        //  the default trigger of 4 files, that rewrite was most of the
        //  shards' compaction CPU during a migration (docs/storage.md);
        //  16 files make it up to four times rarer. RocksDB also
        //  compacts level 0 once it holds max_bytes_for_level_base (256
        //  MB): imported's flushes, about 50 MB each, reach that at about
        //  6 files. Gets and iterators pay a probe per level-0 file.
        rocksdb_options_set_level0_file_num_compaction_trigger (options, STORE_RANDOM_L0_FILES);
        rocksdb_options_set_level0_slowdown_writes_trigger (options, 2 * STORE_RANDOM_L0_FILES + 8);
        rocksdb_options_set_level0_stop_writes_trigger (options, 3 * STORE_RANDOM_L0_FILES + 8);
    }
    if (cf == STORE_CF_XLOG || cf == STORE_CF_PREPARED || cf == STORE_CF_PENDING_ARC) {
        //  Written on every cross-shard transfer, or every pending state,
        //  read only by scans: an unsorted memtable, sorted once when it
        //  is flushed (or copied and sorted by an iterator while mutable).
        rocksdb_options_set_memtable_vector_rep (options);
    }
    if (cf == STORE_CF_PENDING_ARC) {
        //  Small memtables, so that a scan's sort of the one being written
        //  is short (above); more of them than the default two, so that
        //  writes wait less often while another family's 64 MB flush runs
        //  (one flush at a time, max_background_jobs). Its keys are random
        //  too: level 0 holds STORE_RANDOM_L0_FILES of its files (above).
        rocksdb_options_set_write_buffer_size (options, STORE_PENDING_ARC_BUFFER_BYTES);
        rocksdb_options_set_max_write_buffer_number (options, STORE_PENDING_ARC_BUFFERS);
    }
    return options;
}

static int
s_open_db (store_t *self, const char *dir, char *err_out, size_t err_size)
{
    const char *names[STORE_CF_COUNT];
    const rocksdb_options_t *cf_options[STORE_CF_COUNT];
    for (int i = 0; i < STORE_CF_COUNT; i++) {
        names[i] = s_cf_names[i];
        cf_options[i] = self->cf_options[i];
    }
    char *err = NULL;
    self->db = rocksdb_open_column_families (self->options, dir, STORE_CF_COUNT, names, cf_options,
                                             self->cf, &err);
    if (err) {
        //  RocksDB holds an flock on DIR/LOCK for as long as the database is
        //  open: a second process on one data directory (a shard started
        //  twice, a standby and its primary given the same --data) fails
        //  here, and its words name a file, not the cause.
        bool locked = strstr (err, "lock file") && strstr (err, "temporarily unavailable");
        snprintf (err_out, err_size, "cannot open database in %s: %s%s", dir,
                  locked ? "another process has it open (is this shard already running? "
                           "'fuser DIR/LOCK' names it): "
                         : "",
                  err);
        rocksdb_free (err);
        return -1;
    }
    return 0;
}

struct store_env_t {
    rocksdb_env_t *env;
};

store_env_t *
store_env_new_mem (void)
{
    store_env_t *self = calloc (1, sizeof (*self));
    if (self) {
        self->env = rocksdb_create_mem_env ();
    }
    return self;
}

void
store_env_destroy (store_env_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        rocksdb_env_destroy ((*self_p)->env);
        free (*self_p);
        *self_p = NULL;
    }
}

void
store_batch_discard (store_t *self)
{
    assert (self);
    rocksdb_writebatch_clear (self->batch);
}

store_t *
store_open (const char *dir, rl_durability_t durability, char *err, size_t err_size)
{
    return store_open_env (dir, durability, NULL, err, err_size);
}

store_t *
store_open_env (const char *dir, rl_durability_t durability, store_env_t *env, char *err,
                size_t err_size)
{
    assert (dir);
    assert (durability == RL_DURABILITY_SYNC || durability == RL_DURABILITY_NOSYNC
            || durability == RL_DURABILITY_SYNC_MANUAL_WAL);
    store_t *self = calloc (1, sizeof (*self));
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->durability = durability;
    self->dir = strdup (dir);
    if (!self->dir) {
        snprintf (err, err_size, "out of memory");
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->error_lock, NULL);
    pthread_mutex_init (&self->write_lock, NULL);
    atomic_init (&self->failed, false);
    atomic_init (&self->ingest_seq, 0);
    self->options = rocksdb_options_create ();
    rocksdb_options_set_create_if_missing (self->options, 1);
    rocksdb_options_set_create_missing_column_families (self->options, 1);
    rocksdb_options_increase_parallelism (self->options, 2);
    rocksdb_options_set_max_background_jobs (self->options, 2);
    //  One writer at a time (write_lock), and the vector memtables of xlog
    //  and prepared take no concurrent inserts.
    rocksdb_options_set_allow_concurrent_memtable_write (self->options, 0);
    rocksdb_options_enable_statistics (self->options);
    //  RocksDB's own LOG file only for fatal errors: on a full disk its
    //  writer fails like any other, and RocksDB's no-space recovery thread
    //  then logs through it again and stops the process with an assertion
    //  (a writer used after its error) instead of letting the shard reach
    //  FAILED. Our log has every error RocksDB hands back.
    rocksdb_options_set_info_log_level (self->options, STORE_INFO_LOG_LEVEL);
    if (durability == RL_DURABILITY_SYNC_MANUAL_WAL) {
        rocksdb_options_set_manual_wal_flush (self->options, 1);
    }
    if (env) {
        rocksdb_options_set_env (self->options, env->env);
    }
    self->env = env ? env->env : NULL;
    self->table_options = rocksdb_block_based_options_create ();
    rocksdb_block_based_options_set_filter_policy (
        self->table_options, rocksdb_filterpolicy_create_bloom_full (STORE_BLOOM_BITS_PER_KEY));
    for (int i = 0; i < STORE_CF_COUNT; i++) {
        self->cf_options[i] = s_cf_options_new (self, (store_cf_t) i);
    }
    self->batch = rocksdb_writebatch_create ();
    self->write_options = rocksdb_writeoptions_create ();
    rocksdb_writeoptions_set_sync (self->write_options, durability == RL_DURABILITY_SYNC);
    self->group_options = rocksdb_writeoptions_create (); //  synced apart, by store_sync
    self->read_options = rocksdb_readoptions_create ();
    if (s_open_db (self, dir, err, err_size) != 0) {
        store_close (&self);
        return NULL;
    }
    self->ingest_token = s_ingest_token ();
    if (!self->env && s_remove_staged (self, err, err_size) != 0) {
        store_close (&self);
        return NULL;
    }
    return self;
}

void
store_close (store_t **self_p)
{
    assert (self_p);
    store_t *self = *self_p;
    if (!self) {
        return;
    }
    if (self->db) {
        for (int i = 0; i < STORE_CF_COUNT; i++) {
            rocksdb_column_family_handle_destroy (self->cf[i]);
        }
        rocksdb_close (self->db);
    }
    for (int i = 0; i < STORE_CF_COUNT; i++) {
        if (self->cf_options[i]) {
            rocksdb_options_destroy (self->cf_options[i]);
        }
    }
    rocksdb_block_based_options_destroy (self->table_options);
    rocksdb_options_destroy (self->options);
    rocksdb_writebatch_destroy (self->batch);
    rocksdb_writeoptions_destroy (self->write_options);
    if (self->group_options) {
        rocksdb_writeoptions_destroy (self->group_options);
    }
    rocksdb_readoptions_destroy (self->read_options);
    pthread_mutex_destroy (&self->error_lock);
    pthread_mutex_destroy (&self->write_lock);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

rl_durability_t
store_durability (const store_t *self)
{
    assert (self);
    return self->durability;
}

void
store_batch_put (store_t *self, store_cf_t cf, const void *key, size_t key_size, const void *value,
                 size_t value_size)
{
    assert (self && cf < STORE_CF_COUNT);
    assert (key && key_size > 0);
    rocksdb_writebatch_put_cf (self->batch, self->cf[cf], key, key_size, value, value_size);
}

void
store_batch_delete (store_t *self, store_cf_t cf, const void *key, size_t key_size)
{
    assert (self && cf < STORE_CF_COUNT);
    assert (key && key_size > 0);
    rocksdb_writebatch_delete_cf (self->batch, self->cf[cf], key, key_size);
}

void
store_batch_delete_range (store_t *self, store_cf_t cf, const void *begin, size_t begin_size,
                          const void *end, size_t end_size)
{
    assert (self && cf < STORE_CF_COUNT);
    assert (begin && begin_size > 0 && end && end_size > 0);
    rocksdb_writebatch_delete_range_cf (self->batch, self->cf[cf], begin, begin_size, end,
                                        end_size);
}

void
store_compact_range (store_t *self, store_cf_t cf, const void *begin, size_t begin_size,
                     const void *end, size_t end_size)
{
    assert (self && cf < STORE_CF_COUNT);
    rocksdb_compact_range_cf (self->db, self->cf[cf], begin, begin_size, end, end_size);
}

int
store_suggest_compact_range (store_t *self, store_cf_t cf, const void *begin, size_t begin_size,
                             const void *end, size_t end_size)
{
    assert (self && cf < STORE_CF_COUNT);
    assert (begin && begin_size > 0 && end && end_size > 0);
    char *err = NULL;
    rocksdb_suggest_compact_range_cf (self->db, self->cf[cf], begin, begin_size, end, end_size,
                                      &err);
    if (err) {
        rl_warn ("store: suggest_compact_range: %s", err);
        rocksdb_free (err);
        return -1;
    }
    return 0;
}

//  Save points of the loop's batch: a linked chain's writes (ledger.c) are
//  taken back as a whole when a member fails. RocksDB keeps a stack of them
//  in the batch; a write of the batch (store_commit) clears them.
void
store_batch_savepoint (store_t *self)
{
    assert (self);
    rocksdb_writebatch_set_save_point (self->batch);
}

int
store_batch_rollback (store_t *self)
{
    assert (self);
    char *err = NULL;
    rocksdb_writebatch_rollback_to_save_point (self->batch, &err);
    if (err) {
        rl_error ("store: rollback to a save point: %s", err);
        rocksdb_free (err);
        return -1;
    }
    return 0;
}

int
store_batch_savepoint_pop (store_t *self)
{
    assert (self);
    char *err = NULL;
    rocksdb_writebatch_pop_save_point (self->batch, &err);
    if (err) {
        rl_error ("store: pop a save point: %s", err);
        rocksdb_free (err);
        return -1;
    }
    return 0;
}

size_t
store_batch_count (const store_t *self)
{
    assert (self);
    return (size_t) rocksdb_writebatch_count (self->batch);
}

static int s_commit (store_t *self, bool group);
static int s_sync (store_t *self, bool group);

int
store_commit (store_t *self)
{
    return s_commit (self, false);
}

int
store_write_group (store_t *self)
{
    return s_commit (self, true);
}

int
store_sync (store_t *self)
{
    return s_sync (self, true);
}

//  Makes every write made so far durable as the mode says; group: the
//  sync of a group commit, which hosts store.sync. Under write_lock
//  (s_sync takes it): RocksDB would sync the WAL beside concurrent writes,
//  but a write that fails meanwhile (ENOSPC on the WAL's Append) leaves
//  the WAL writer with an error that SyncWAL does not check before its
//  SyncWithoutFlush, which then asserts (invariant 2). Under the lock, a
//  failed write has set FAILED before any sync starts, and no write can
//  fail while one runs. The cost: a write waits while a sync runs.
static int
s_sync_locked (store_t *self, bool group)
{
    assert (self);
    if (atomic_load (&self->failed)) {
        return -1;
    }
    if (group && RL_FAILPOINT (STORE_SYNC) != 0) {
        //  As a failed fsync: the batches written may or may not be on disk.
        atomic_store (&self->failed, true);
        s_set_error_text (self, "sync", "Input/output error (failpoint)");
        return -1;
    }
    //  The in-memory file system of the simulations keeps every write (a
    //  simulated crash drops only the batch not written) and cannot sync.
    if (self->durability == RL_DURABILITY_NOSYNC || self->env) {
        return 0;
    }
    char *err = NULL;
    rocksdb_flush_wal (self->db, 1, &err); //  FlushWAL(sync): the buffer if manual, then SyncWAL
    if (err) {
        atomic_store (&self->failed, true);
        s_set_error (self, "sync", err);
        return -1;
    }
    return 0;
}

static int
s_sync (store_t *self, bool group)
{
    assert (self);
    pthread_mutex_lock (&self->write_lock);
    int rc = s_sync_locked (self, group);
    pthread_mutex_unlock (&self->write_lock);
    return rc;
}

//  How s_write_locked writes a batch.
typedef enum {
    S_WRITE_SYNCED, //  made durable as the mode says, before write_lock is let go
    S_WRITE_GROUP,  //  the loop's group write: store_sync makes it durable; hosts shard.after_write
    S_WRITE_UNSYNCED, //  its writer syncs it after write_lock is let go (store_batch_commit)
} s_write_mode_t;

//  The tap's event of a batch about to be written or just written.
static void
s_tap_batch (store_t *self, rocksdb_writebatch_t *batch)
{
    size_t size = 0;
    const char *data = rocksdb_writebatch_data (batch, &size);
    store_tap_event_t event = {
        .kind = STORE_TAP_BATCH, .data = (const uint8_t *) data, .size = size};
    self->tap (self->tap_arg, &event);
}

//  Writes batch as mode says. Under write_lock. With `ship` (the loop's
//  group write, store_write_group_ship), the tap sees the batch before
//  RocksDB writes it, and ship runs between the two.
static int
s_write_locked (store_t *self, rocksdb_writebatch_t *batch, s_write_mode_t mode,
                store_ship_fn *ship, void *ship_arg)
{
    assert (self && batch);
    if (atomic_load (&self->failed)) {
        rocksdb_writebatch_clear (batch);
        return -1;
    }
    if (rocksdb_writebatch_count (batch) == 0) {
        return 0;
    }
    bool shipped = ship && self->tap;
    if (shipped) {
        s_tap_batch (self, batch);
        if (ship (ship_arg) != 0) { //  a test's failed write, after the batch went out
            rocksdb_writebatch_clear (batch);
            atomic_store (&self->failed, true);
            s_set_error_text (self, "write", "refused after its batch was shipped (failpoint)");
            return -1;
        }
    }
    char *err = NULL;
    rocksdb_write (self->db, mode == S_WRITE_SYNCED ? self->write_options : self->group_options,
                   batch, &err);
    if (!err && self->tap && !shipped) {
        s_tap_batch (self, batch);
    }
    rocksdb_writebatch_clear (batch);
    if (err) {
        atomic_store (&self->failed, true);
        s_set_error (self, "write", err);
        return -1;
    }
    if (mode == S_WRITE_GROUP) {
        RL_FAILPOINT (SHARD_AFTER_WRITE);
        return 0;
    }
    if (mode == S_WRITE_SYNCED && self->durability == RL_DURABILITY_SYNC_MANUAL_WAL) {
        rocksdb_flush_wal (self->db, 1, &err);
        if (err) {
            atomic_store (&self->failed, true);
            s_set_error (self, "flush_wal", err);
            return -1;
        }
    }
    assert (rocksdb_writebatch_count (batch) == 0);
    return 0;
}

//  Any thread. Writes and ingests take turns, and none starts after one has
//  failed: RocksDB must not be written to again after a failed WAL write
//  (invariant 2), whichever thread saw the failure.
static int
s_write (store_t *self, rocksdb_writebatch_t *batch, s_write_mode_t mode)
{
    pthread_mutex_lock (&self->write_lock);
    int rc = s_write_locked (self, batch, mode, NULL, NULL);
    pthread_mutex_unlock (&self->write_lock);
    assert (rc == 0 || atomic_load (&self->failed));
    return rc;
}

static int
s_commit (store_t *self, bool group)
{
    assert (self);
    return s_write (self, self->batch, group ? S_WRITE_GROUP : S_WRITE_SYNCED);
}

int
store_write_group_ship (store_t *self, store_ship_fn *ship, void *arg)
{
    assert (self && ship);
    pthread_mutex_lock (&self->write_lock);
    int rc = s_write_locked (self, self->batch, S_WRITE_GROUP, ship, arg);
    pthread_mutex_unlock (&self->write_lock);
    assert (rc == 0 || atomic_load (&self->failed));
    return rc;
}

store_batch_t *
store_batch_new (void)
{
    store_batch_t *self = calloc (1, sizeof (*self));
    if (self) {
        self->batch = rocksdb_writebatch_create ();
    }
    return self;
}

void
store_batch_destroy (store_batch_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        rocksdb_writebatch_destroy ((*self_p)->batch);
        free (*self_p);
        *self_p = NULL;
    }
}

void
store_batch_put_into (store_t *self, store_batch_t *batch, store_cf_t cf, const void *key,
                      size_t key_size, const void *value, size_t value_size)
{
    assert (self && batch && cf < STORE_CF_COUNT);
    assert (key && key_size > 0);
    rocksdb_writebatch_put_cf (batch->batch, self->cf[cf], key, key_size, value, value_size);
}

void
store_batch_delete_into (store_t *self, store_batch_t *batch, store_cf_t cf, const void *key,
                         size_t key_size)
{
    assert (self && batch && cf < STORE_CF_COUNT);
    assert (key && key_size > 0);
    rocksdb_writebatch_delete_cf (batch->batch, self->cf[cf], key, key_size);
}

void
store_batch_delete_range_into (store_t *self, store_batch_t *batch, store_cf_t cf,
                               const void *begin, size_t begin_size, const void *end,
                               size_t end_size)
{
    assert (self && batch && cf < STORE_CF_COUNT);
    assert (begin && begin_size > 0 && end && end_size > 0);
    rocksdb_writebatch_delete_range_cf (batch->batch, self->cf[cf], begin, begin_size, end,
                                        end_size);
}

int
store_batch_commit (store_t *self, store_batch_t *batch)
{
    assert (self && batch);
    assert (batch->batch != self->batch); //  the loop's batch goes through store_commit
    //  Written under write_lock, synced after it: a loop's group write
    //  waiting for write_lock also waited out this batch's fsync when the
    //  write synced under the lock (a checkpoint's batch of 10,000 accounts
    //  held the lock 31-63 ms synced, 30-44 ms not: the open loop's p99 at
    //  50,000 transfers/s; docs/storage.md). The batch is atomic in the WAL
    //  either way: a crash before the sync keeps it whole or not at all,
    //  and a later group sync covers it too.
    if (s_write (self, batch->batch, S_WRITE_UNSYNCED) != 0) {
        return -1;
    }
    return s_sync (self, false);
}

int
store_batch_write (store_t *self, store_batch_t *batch)
{
    assert (self && batch);
    assert (batch->batch != self->batch);
    //  Durable with the next sync of the WAL, whoever starts it: the WAL
    //  keeps batches in order, so a crash keeps a prefix of them.
    return s_write (self, batch->batch, S_WRITE_UNSYNCED);
}

size_t
store_batch_entries (const store_batch_t *batch)
{
    assert (batch);
    return (size_t) rocksdb_writebatch_count (batch->batch);
}

bool
store_failed (const store_t *self)
{
    assert (self);
    return atomic_load (&self->failed);
}

const char *
store_error (const store_t *self)
{
    assert (self);
    //  A copy per thread: another thread may set the text meanwhile.
    static _Thread_local char copy[STORE_ERROR_SIZE];
    pthread_mutex_lock ((pthread_mutex_t *) &self->error_lock);
    memcpy (copy, self->error, sizeof (copy));
    pthread_mutex_unlock ((pthread_mutex_t *) &self->error_lock);
    assert (memchr (copy, 0, sizeof (copy)));
    return copy;
}

int
store_get (store_t *self, store_cf_t cf, const void *key, size_t key_size, void *value,
           size_t value_cap, size_t *value_size_p)
{
    assert (self && cf < STORE_CF_COUNT);
    char *err = NULL;
    rocksdb_pinnableslice_t *slice = rocksdb_get_pinned_cf (self->db, self->read_options,
                                                            self->cf[cf], key, key_size, &err);
    if (err) {
        s_set_error (self, "get", err);
        return -1;
    }
    if (!slice) {
        return 0;
    }
    size_t size = 0;
    const char *data = rocksdb_pinnableslice_value (slice, &size);
    size_t copy = size < value_cap ? size : value_cap;
    if (copy > 0) {
        memcpy (value, data, copy);
    }
    if (value_size_p) {
        *value_size_p = size;
    }
    rocksdb_pinnableslice_destroy (slice);
    return 1;
}

int
store_multi_get (store_t *self, store_cf_t cf, const uint8_t *keys, size_t key_size, size_t count,
                 uint8_t *values, size_t value_size, uint8_t *found)
{
    assert (self && cf < STORE_CF_COUNT);
    assert (count == 0 || (keys && key_size > 0 && values && found));
    if (count == 0) {
        return 0;
    }
    const char **key_list = malloc (count * sizeof (*key_list));
    size_t *key_sizes = malloc (count * sizeof (*key_sizes));
    rocksdb_pinnableslice_t **slices = calloc (count, sizeof (*slices));
    char **errs = calloc (count, sizeof (*errs));
    if (!key_list || !key_sizes || !slices || !errs) {
        free (key_list);
        free (key_sizes);
        free (slices);
        free (errs);
        s_set_error_text (self, "multi_get", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        key_list[i] = (const char *) keys + i * key_size;
        key_sizes[i] = key_size;
    }
    rocksdb_batched_multi_get_cf (self->db, self->read_options, self->cf[cf], count, key_list,
                                  key_sizes, slices, errs, false);
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        found[i] = 0;
        if (errs[i]) {
            if (rc == 0) {
                s_set_error (self, "multi_get", errs[i]);
            } else {
                rocksdb_free (errs[i]);
            }
            rc = -1;
        } else if (slices[i]) {
            size_t size = 0;
            const char *data = rocksdb_pinnableslice_value (slices[i], &size);
            if (size == value_size) {
                memcpy (values + i * value_size, data, value_size);
                found[i] = 1;
            } else if (rc == 0) {
                s_set_error_text (self, "multi_get", "a value of an unexpected size");
                rc = -1;
            }
        }
        if (slices[i]) {
            rocksdb_pinnableslice_destroy (slices[i]);
        }
    }
    free (key_list);
    free (key_sizes);
    free (slices);
    free (errs);
    return rc;
}

int
store_ingest_sorted (store_t *self, store_cf_t cf, const uint8_t *entries, size_t entry_size,
                     size_t key_size, size_t count)
{
    assert (self && cf < STORE_CF_COUNT);
    assert (entries && key_size > 0 && key_size <= entry_size);
    if (count == 0) {
        return 0;
    }
    //  The entries come from transfers the loop wrote, maybe not synced yet
    //  (the pipelined group commit): an ingested entry must never outlive
    //  the transfer it names, so those writes are made durable first.
    if (s_sync (self, false) != 0) {
        return -1;
    }
    char path[4096];
    snprintf (path, sizeof (path), "%s/" STORE_INGEST_PREFIX "%016" PRIx64 "-%s-%" PRIu64 ".sst",
              self->dir, self->ingest_token, s_cf_names[cf],
              atomic_fetch_add (&self->ingest_seq, 1) + 1);
    if (!self->env) {
        unlink (path); //  a new inode, whatever a name might still link to
    }
    rocksdb_envoptions_t *env_options = rocksdb_envoptions_create ();
    rocksdb_sstfilewriter_t *writer = rocksdb_sstfilewriter_create (env_options,
                                                                    self->cf_options[cf]);
    char *err = NULL;
    rocksdb_sstfilewriter_open (writer, path, &err);
    for (size_t i = 0; i < count && !err; i++) {
        const char *entry = (const char *) entries + i * entry_size;
        assert (i == 0 || memcmp (entry - entry_size, entry, key_size) < 0);
        rocksdb_sstfilewriter_put (writer, entry, key_size, entry + key_size, entry_size - key_size,
                                   &err);
    }
    if (!err) {
        rocksdb_sstfilewriter_finish (writer, &err);
    }
    rocksdb_sstfilewriter_destroy (writer);
    rocksdb_envoptions_destroy (env_options);
    if (err) {
        atomic_store (&self->failed, true); //  the disk refused a write: fail as a commit would
        s_set_error (self, "sst write", err);
        remove (path);
        return -1;
    }
    RL_FAILPOINT (STORE_INGEST_STAGED);
    rocksdb_ingestexternalfileoptions_t *ingest = rocksdb_ingestexternalfileoptions_create ();
    rocksdb_ingestexternalfileoptions_set_move_files (ingest, 1);
    const char *files[1] = {path};
    pthread_mutex_lock (&self->write_lock);
    bool refused = atomic_load (&self->failed);
    if (!refused) {
        rocksdb_ingest_external_file_cf (self->db, self->cf[cf], files, 1, ingest, &err);
        if (err) {
            atomic_store (&self->failed, true);
        } else if (self->tap) {
            store_tap_event_t event = {.kind = STORE_TAP_INGEST,
                                       .data = entries,
                                       .size = entry_size * count,
                                       .cf = cf,
                                       .entry_size = entry_size,
                                       .key_size = key_size,
                                       .count = count};
            self->tap (self->tap_arg, &event);
        }
    }
    pthread_mutex_unlock (&self->write_lock);
    rocksdb_ingestexternalfileoptions_destroy (ingest);
    if (refused || err) {
        if (err) {
            s_set_error (self, "ingest", err);
        }
        remove (path);
        return -1;
    }
    RL_FAILPOINT (STORE_INGEST_DONE);
    return 0;
}

int
store_checkpoint (store_t *self, const char *dir, uint64_t log_size_for_flush, char *err,
                  size_t err_size)
{
    assert (self && dir && err);
    //  A cut holds nothing unsynced: what the loop wrote and has not synced
    //  yet (the pipelined group commit) is synced first.
    if (s_sync (self, false) != 0) {
        snprintf (err, err_size, "sync before the checkpoint: %s", store_error (self));
        return -1;
    }
    char *e = NULL;
    rocksdb_checkpoint_t *checkpoint = rocksdb_checkpoint_object_create (self->db, &e);
    if (!e) {
        rocksdb_checkpoint_create (checkpoint, dir, log_size_for_flush, &e);
    }
    if (checkpoint) {
        rocksdb_checkpoint_object_destroy (checkpoint);
    }
    if (e) {
        snprintf (err, err_size, "checkpoint into %s: %s", dir, e);
        rocksdb_free (e);
        return -1;
    }
    return 0;
}

void
store_set_tap (store_t *self, store_tap_fn *fn, void *arg)
{
    assert (self);
    pthread_mutex_lock (&self->write_lock);
    self->tap = fn;
    self->tap_arg = arg;
    pthread_mutex_unlock (&self->write_lock);
}

int
store_checkpoint_at (store_t *self, const char *dir, void (*at) (void *), void *arg, char *err,
                     size_t err_size)
{
    assert (self && dir && at && err);
    pthread_mutex_lock (&self->write_lock);
    //  Under the lock, no write comes between the sync, the position and
    //  the checkpoint: the copy holds exactly the writes up to `at`'s.
    int rc = s_sync_locked (self, false);
    if (rc != 0) {
        snprintf (err, err_size, "sync before the checkpoint: %s", store_error (self));
    } else {
        at (arg);
        char *e = NULL;
        rocksdb_checkpoint_t *checkpoint = rocksdb_checkpoint_object_create (self->db, &e);
        if (!e) {
            rocksdb_checkpoint_create (checkpoint, dir, UINT64_MAX, &e);
        }
        if (checkpoint) {
            rocksdb_checkpoint_object_destroy (checkpoint);
        }
        if (e) {
            snprintf (err, err_size, "checkpoint into %s: %s", dir, e);
            rocksdb_free (e);
            rc = -1;
        }
    }
    pthread_mutex_unlock (&self->write_lock);
    return rc;
}

int
store_apply_batch (store_t *self, const uint8_t *data, size_t size, const void *meta_key,
                   size_t meta_key_size, const void *meta_value, size_t meta_value_size)
{
    assert (self && data && size >= 12 && meta_key && meta_value);
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create_from ((const char *) data, size);
    if (!batch) {
        s_set_error_text (self, "apply", "out of memory");
        return -1;
    }
    rocksdb_writebatch_put_cf (batch, self->cf[STORE_CF_META], meta_key, meta_key_size, meta_value,
                               meta_value_size);
    int rc = s_write (self, batch, S_WRITE_SYNCED);
    rocksdb_writebatch_destroy (batch);
    return rc;
}

uint64_t
store_sequence (store_t *self)
{
    assert (self);
    return rocksdb_get_latest_sequence_number (self->db);
}

store_iter_t *
store_iter_new (store_t *self, store_cf_t cf)
{
    assert (self && cf < STORE_CF_COUNT);
    store_iter_t *iter = calloc (1, sizeof (*iter));
    if (!iter) {
        return NULL;
    }
    iter->it = rocksdb_create_iterator_cf (self->db, self->read_options, self->cf[cf]);
    iter->store = self;
    return iter;
}

void
store_iter_destroy (store_iter_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        rocksdb_iter_destroy ((*self_p)->it);
        free (*self_p);
        *self_p = NULL;
    }
}

void
store_iter_seek (store_iter_t *self, const void *key, size_t key_size)
{
    rocksdb_iter_seek (self->it, key, key_size);
}

void
store_iter_seek_for_prev (store_iter_t *self, const void *key, size_t key_size)
{
    rocksdb_iter_seek_for_prev (self->it, key, key_size);
}

void
store_iter_seek_first (store_iter_t *self)
{
    rocksdb_iter_seek_to_first (self->it);
}

void
store_iter_seek_last (store_iter_t *self)
{
    rocksdb_iter_seek_to_last (self->it);
}

bool
store_iter_valid (const store_iter_t *self)
{
    if (rocksdb_iter_valid (self->it)) {
        if (RL_FAILPOINT (STORE_ITER) == 0) {
            return true;
        }
        //  As a read that fails (EIO, a checksum mismatch): the scan ends.
        atomic_store (&self->store->failed, true);
        s_set_error_text (self->store, "read", "Input/output error (failpoint)");
        return false;
    }
    //  The end of the range, or an error that ended the scan early: a
    //  caller that took the end for the whole range would build its state
    //  from part of it (recovery) or answer a part as all of it (history).
    //  So the store fails (FAILED, invariant 2's state): recovery refuses
    //  to serve, and a shard that serves answers storage_error.
    char *err = NULL;
    rocksdb_iter_get_error (self->it, &err);
    if (err) {
        atomic_store (&self->store->failed, true);
        s_set_error (self->store, "read", err);
    }
    return false;
}

int
store_iter_error (const store_iter_t *self, char *err, size_t err_size)
{
    char *e = NULL;
    rocksdb_iter_get_error (self->it, &e);
    if (!e) {
        return 0;
    }
    snprintf (err, err_size, "%s", e);
    rocksdb_free (e);
    return -1;
}

void
store_iter_next (store_iter_t *self)
{
    rocksdb_iter_next (self->it);
}

void
store_iter_prev (store_iter_t *self)
{
    rocksdb_iter_prev (self->it);
}

const uint8_t *
store_iter_key (const store_iter_t *self, size_t *size_p)
{
    return (const uint8_t *) rocksdb_iter_key (self->it, size_p);
}

const uint8_t *
store_iter_value (const store_iter_t *self, size_t *size_p)
{
    return (const uint8_t *) rocksdb_iter_value (self->it, size_p);
}

static uint64_t
s_ticker (const char *stats, const char *name)
{
    //  Lines look like "rocksdb.number.keys.written COUNT : 1234"
    const char *at = stats ? strstr (stats, name) : NULL;
    if (!at) {
        return 0;
    }
    at = strstr (at, "COUNT : ");
    return at ? strtoull (at + 8, NULL, 10) : 0;
}

void
store_write_stats (store_t *self, uint64_t *keys_written_p, uint64_t *bytes_written_p,
                   uint64_t *wal_bytes_p, uint64_t *wal_syncs_p)
{
    assert (self);
    char *stats = rocksdb_options_statistics_get_string (self->options);
    *keys_written_p = s_ticker (stats, "rocksdb.number.keys.written ");
    *bytes_written_p = s_ticker (stats, "rocksdb.bytes.written ");
    *wal_bytes_p = s_ticker (stats, "rocksdb.wal.bytes ");
    *wal_syncs_p = s_ticker (stats, "rocksdb.wal.synced ");
    rocksdb_free (stats);
}

uint64_t
store_property_sum (store_t *self, const char *name)
{
    assert (self && name);
    uint64_t total = 0;
    for (size_t i = 0; i < STORE_CF_COUNT; i++) {
        uint64_t value = 0;
        if (self->cf[i] && rocksdb_property_int_cf (self->db, self->cf[i], name, &value) == 0) {
            total += value;
        }
    }
    return total;
}

uint64_t
store_property_cf (store_t *self, store_cf_t cf, const char *name)
{
    assert (self && cf < STORE_CF_COUNT && name);
    uint64_t value = 0;
    if (!self->cf[cf] || rocksdb_property_int_cf (self->db, self->cf[cf], name, &value) != 0) {
        return 0;
    }
    return value;
}

uint64_t
store_wal_size (store_t *self)
{
    assert (self);
    DIR *dir = opendir (self->dir);
    if (!dir) {
        return 0;
    }
    uint64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        const char *name = entry->d_name;
        size_t digits = strspn (name, "0123456789");
        struct stat st;
        if (digits > 0 && strcmp (name + digits, ".log") == 0
            && fstatat (dirfd (dir), name, &st, 0) == 0) {
            total += (uint64_t) st.st_size;
        }
    }
    closedir (dir);
    return total;
}

uint64_t
store_ticker (store_t *self, const char *name)
{
    assert (self && name);
    char *stats = rocksdb_options_statistics_get_string (self->options);
    uint64_t value = s_ticker (stats, name);
    rocksdb_free (stats);
    return value;
}
