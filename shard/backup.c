/*  backup.c: the shard's part of a backup (docs/backup.md).

    A backup of a cluster must be a CUT: one instant at which every shard's
    state is taken, so that no cross-shard transfer is half applied in the
    set. Pausing decisions is not enough: a participant copied before it
    applies a COMMIT, with its coordinator copied after it removed the log
    entry, restores as a prepared record whose coordinator knows nothing,
    and "nothing known" presumes abort for a committed transfer. So the tool
    HOLDS every shard (nothing is applied: no request, no peer message, no
    timer), then CUTS each, then RELEASES them. Every shard's cut is then
    its state at one instant that all of them shared, exactly what a
    simultaneous kill -9 of the whole cluster would leave, which recovery
    handles (invariant 5).

    THE CUT IS A LIST, NOT A COPY. The cut is a RocksDB checkpoint, made on
    the copy's thread. A checkpoint first lists the live files under the
    database's mutex (table files, the manifest's size, the WAL files and
    the last one's size, with file deletions disabled), and only then
    links or copies them, each copied file cut at its listed size. The
    state it holds is the database's at the listing; the links, copies and
    fsyncs after it (tens of milliseconds on a busy disk) need not be held.
    So the held loop starts the thread and waits only until the listing is
    done: the first file appears in the checkpoint's directory (RocksDB's
    "<dir>.tmp"), or the checkpoint has ended. Then it answers and may be
    released while the files are linked and copied. That the cut holds no
    write made after the hold is then PROVEN, not assumed: the loop reads
    the database's last sequence number when the cut starts and again
    when the listing is done (both while held), and the copy opens the
    finished cut and refuses it unless its last sequence number lies
    between the two. A write or ingest after the hold has a larger number,
    and a cut that lacks a write made before the hold has a smaller one.
    The background checkpoint thread (checkpoint.c) may write while held:
    its writes are crash-consistent at every point, as for a kill -9.
    The copy of each cut into a RocksDB backup engine (incremental: table
    files already in the backup directory are not copied again) runs
    afterwards on the same thread, while the shard serves.

    STATES (one backup at a time per shard):

        IDLE --hold(token)--> HELD --cut(token, dir)--> HELD + COPYING
        HELD --release(token), or hold_ms passed--> not held
        COPYING --thread ends--> DONE (backup_id) | FAILED (message)

      HELD     requests other than the backup operations and status wait in
               arrival order (at most BACKUP_DEFERRED_MAX; more are answered
               busy), peers' messages stay on their sockets, timers do
               nothing. The hold ends by itself after its hold_ms, so that a
               tool that died never stops the shard for longer.
      COPYING  the thread makes the cut (BACKUP_CUT_DIR in the data
               directory), checks its sequence number, copies it into
               DIR/<shard name> with the backup engine, verifies the
               backup, and removes the cut.

    INVARIANTS
    1. While held, the loop changes nothing: it applies nothing, and the
       cut starts between turns, after the last group commit (so it holds
       everything acknowledged and nothing unsynced).
    2. A cut is only started while held by the same token (so a cut after
       an expired hold is refused, and the tool knows its cut is not a
       cut), and the cut's answer leaves only once its listing is done.
    3. A backup is written only from a cut whose last sequence number lies
       in [seq_before, seq_after], both read while held.
    4. The copy thread reads the live database only through the checkpoint
       (store_checkpoint: no write); the loop touches the copy's state only
       under the lock.
    5. Bad input changes nothing: a refused operation answers its reason
       (rl_backup_result_t) and a message, and leaves the state as it was.

    LIMITS: hold_ms 1..RL_BACKUP_HOLD_MS_MAX; BACKUP_DEFERRED_MAX requests
    wait during a hold; a directory path of RL_BACKUP_DIR_SIZE_MAX - 1 bytes
    at most; a cut never flushes the memtables (BACKUP_CUT_NEVER_FLUSH);
    the held loop looks for the listing every BACKUP_LIST_POLL_US.
*/
#define _XOPEN_SOURCE 700 //  nftw
#include "backup.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "codec.h"
#include "failpoint.h"
#include "log.h"
#include "proc.h"
#include "rl_limits.h"
#include "server_internal.h"

struct backup_t {
    //  The hold (loop thread only).
    uint64_t held_token;   //  0: not held
    int64_t held_since_us; //  monotonic
    int64_t held_until_ms; //  monotonic: the hold ends by itself then
    zlist_t *deferred;     //  zmsg_t *: requests waiting for the hold to end
    //  The copy (under lock; the thread writes, the loop reads).
    pthread_mutex_t lock;
    pthread_cond_t cond; //  the thread's checkpoint ended; the loop set the sequence bounds
    pthread_t thread;
    bool thread_live;        //  a thread was started and not joined (loop only)
    rl_backup_rec_t copy;    //  token, state, backup_id, figures, message of the last cut
    store_t *store;          //  the live database, for the checkpoint
    char cut_dir[PATH_MAX];  //  data_dir/BACKUP_CUT_DIR
    char list_dir[PATH_MAX]; //  cut_dir.tmp: where RocksDB puts the files once listed
    char target[PATH_MAX];   //  DIR/<shard name>
    int64_t copy_started_ms; //  monotonic
    bool checkpoint_ended;   //  the thread's checkpoint returned (ok or not)
    bool bounds_set;         //  seq_before and seq_after are set (the loop)
    uint64_t seq_before;     //  the last sequence number when the cut started
    uint64_t seq_after;      //  ... when its listing was done (still held)
    bool unheld;             //  failpoint backup.unheld: a cut after the hold
};

//  Paths -------------------------------------------------------------------

//  The bytes of the regular files under path (0 when it does not exist).
static uint64_t s_tree_bytes_sum;
static int
s_tree_bytes_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) path;
    (void) ftw;
    if (flag == FTW_F) {
        s_tree_bytes_sum += (uint64_t) st->st_size;
    }
    return 0;
}

static uint64_t
s_tree_bytes (const char *path)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; //  nftw has no context argument
    pthread_mutex_lock (&lock);
    s_tree_bytes_sum = 0;
    struct stat st;
    if (lstat (path, &st) == 0) {
        (void) nftw (path, s_tree_bytes_entry, 16, FTW_PHYS);
    }
    uint64_t sum = s_tree_bytes_sum;
    pthread_mutex_unlock (&lock);
    return sum;
}

//  The backup directory of a cut request: absolute, no ".." component, no
//  control bytes, NUL-terminated within its field, an existing directory;
//  DIR/<name> is made if missing and must be a directory (not a link).
//  0, or -1 with the reason in message.
static int
s_check_dir (const rl_backup_rec_t *rec, const char *name, char *target, size_t target_size,
             char *message, size_t message_size)
{
    const char *dir = rec->dir;
    size_t length = strnlen (dir, sizeof rec->dir);
    if (length == 0 || length == sizeof rec->dir) {
        snprintf (message, message_size, "the backup directory is empty or longer than %d bytes",
                  RL_BACKUP_DIR_SIZE_MAX - 1);
        return -1;
    }
    if (dir[0] != '/') {
        snprintf (message, message_size, "the backup directory must be an absolute path");
        return -1;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char) dir[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf (message, message_size, "the backup directory holds a control byte");
            return -1;
        }
        bool component = i == 0 || dir[i - 1] == '/';
        if (component && dir[i] == '.' && dir[i + 1] == '.'
            && (dir[i + 2] == '/' || dir[i + 2] == 0)) {
            snprintf (message, message_size, "the backup directory holds a '..' component");
            return -1;
        }
    }
    for (size_t i = length; i < sizeof rec->dir; i++) {
        if (dir[i] != 0) {
            snprintf (message, message_size, "bytes after the backup directory's end");
            return -1;
        }
    }
    struct stat st;
    if (stat (dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (message, message_size, "the backup directory does not exist on the shard's host");
        return -1;
    }
    int n = snprintf (target, target_size, "%s/%s", dir, name);
    if (n < 0 || (size_t) n >= target_size) {
        snprintf (message, message_size, "the backup directory is too long");
        return -1;
    }
    if (mkdir (target, 0700) != 0 && errno != EEXIST) {
        snprintf (message, message_size, "cannot make <dir>/%s: %s", name, strerror (errno));
        return -1;
    }
    if (lstat (target, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (message, message_size, "<dir>/%s is not a directory (a link is refused)", name);
        return -1;
    }
    return 0;
}

//  The copy (its own thread) ----------------------------------------------------

//  Opens the cut, copies it into the backup engine, verifies the backup.
//  0, or -1 with the reason in message.
static int
s_copy (const char *cut_dir, const char *target, uint64_t seq_before, uint64_t seq_after,
        rl_backup_rec_t *out, char *message, size_t message_size)
{
    char *err = NULL;
    rocksdb_options_t *options = rocksdb_options_create ();
    rocksdb_options_set_create_if_missing (options, 0);
    rocksdb_options_set_disable_auto_compactions (options, 1);
    size_t cf_count = 0;
    char **names = rocksdb_list_column_families (options, cut_dir, &cf_count, &err);
    rocksdb_t *db = NULL;
    rocksdb_backup_engine_t *engine = NULL;
    rocksdb_backup_engine_options_t *engine_options = NULL;
    rocksdb_env_t *env = NULL;
    const rocksdb_options_t **cf_options = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    int rc = -1;
    if (err) {
        snprintf (message, message_size, "cannot read the cut: %s", err);
        goto done;
    }
    cf_options = calloc (cf_count, sizeof (*cf_options));
    handles = calloc (cf_count, sizeof (*handles));
    if (!cf_options || !handles) {
        snprintf (message, message_size, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < cf_count; i++) {
        cf_options[i] = options;
    }
    //  Read only: the cut stays as it was cut (its WAL is not flushed into
    //  new table files, so the backup shares every table file it can).
    db = rocksdb_open_for_read_only_column_families (options, cut_dir, (int) cf_count,
                                                     (const char *const *) names, cf_options,
                                                     handles, 0, &err);
    if (err) {
        snprintf (message, message_size, "cannot open the cut: %s", err);
        goto done;
    }
    //  Invariant 3: the cut is the database as it was while held.
    uint64_t seq = rocksdb_get_latest_sequence_number (db);
    if (seq < seq_before || seq > seq_after) {
        snprintf (message, message_size,
                  "the cut's last sequence number %" PRIu64 " is outside the hold's %" PRIu64
                  "..%" PRIu64 ": %s, not a cut",
                  seq, seq_before, seq_after,
                  seq > seq_after ? "it holds writes made after the hold"
                                  : "it lacks writes made before the hold");
        goto done;
    }
    env = rocksdb_create_default_env ();
    engine_options = rocksdb_backup_engine_options_create (target);
    rocksdb_backup_engine_options_set_env (engine_options, env);
    rocksdb_backup_engine_options_set_share_table_files (engine_options, 1);
    rocksdb_backup_engine_options_set_sync (engine_options, 1);
    engine = rocksdb_backup_engine_open_opts (engine_options, env, &err);
    if (err) {
        snprintf (message, message_size, "cannot open the backup engine: %s", err);
        goto done;
    }
    if (RL_FAILPOINT (BACKUP_COPY) != 0) {
        snprintf (message, message_size, "failpoint backup.copy");
        goto done;
    }
    //  Table files are shared between backups; the WAL is copied whole.
    rocksdb_backup_engine_create_new_backup_flush (engine, db, 0, &err);
    if (err) {
        snprintf (message, message_size, "backup: %s", err);
        goto done;
    }
    const rocksdb_backup_engine_info_t *info = rocksdb_backup_engine_get_backup_info (engine);
    int count = rocksdb_backup_engine_info_count (info);
    uint32_t id = 0;
    for (int i = 0; i < count; i++) {
        uint32_t this_id = rocksdb_backup_engine_info_backup_id (info, i);
        if (this_id >= id) {
            id = this_id;
            out->files = rocksdb_backup_engine_info_number_files (info, i);
            out->bytes = rocksdb_backup_engine_info_size (info, i);
        }
    }
    rocksdb_backup_engine_info_destroy (info);
    if (id == 0) {
        snprintf (message, message_size, "the backup engine lists no backup");
        goto done;
    }
    rocksdb_backup_engine_verify_backup (engine, id, &err);
    if (err) {
        snprintf (message, message_size, "the new backup %u does not verify: %s", id, err);
        goto done;
    }
    out->backup_id = id;
    rc = 0;
done:
    rocksdb_free (err);
    if (engine) {
        rocksdb_backup_engine_close (engine);
    }
    if (engine_options) {
        rocksdb_backup_engine_options_destroy (engine_options);
    }
    if (env) {
        rocksdb_env_destroy (env);
    }
    for (size_t i = 0; db && i < cf_count; i++) {
        rocksdb_column_family_handle_destroy (handles[i]);
    }
    if (db) {
        rocksdb_close (db);
    }
    if (names) {
        rocksdb_list_column_families_destroy (names, cf_count);
    }
    free (cf_options);
    free (handles);
    rocksdb_options_destroy (options);
    return rc;
}

static void *
s_copy_main (void *arg)
{
    backup_t *self = arg;
    rl_backup_rec_t out = {0};
    char message[RL_BACKUP_MESSAGE_SIZE] = "";
    if (self->unheld) {
        //  Failpoint backup.unheld: the checkpoint waits for the first write
        //  after the hold (at most BACKUP_UNHELD_WAIT_MS), a cut that is not one.
        pthread_mutex_lock (&self->lock);
        while (!self->bounds_set) {
            pthread_cond_wait (&self->cond, &self->lock);
        }
        uint64_t after = self->seq_after;
        pthread_mutex_unlock (&self->lock);
        int64_t until = zclock_mono () + BACKUP_UNHELD_WAIT_MS;
        while (store_sequence (self->store) <= after && zclock_mono () < until) {
            zclock_sleep (5);
        }
    }
    //  The cut: the held loop waits until its files are listed (s_cut).
    char err[512] = "";
    int rc = store_checkpoint (self->store, self->cut_dir, BACKUP_CUT_NEVER_FLUSH, err, sizeof err);
    if (rc != 0) {
        snprintf (message, sizeof message, "%s", err);
    }
    pthread_mutex_lock (&self->lock);
    self->checkpoint_ended = true;
    pthread_cond_broadcast (&self->cond);
    while (!self->bounds_set) {
        pthread_cond_wait (&self->cond, &self->lock);
    }
    uint64_t seq_before = self->seq_before, seq_after = self->seq_after;
    pthread_mutex_unlock (&self->lock);
    uint64_t before = s_tree_bytes (self->target);
    if (rc == 0) {
        rc = s_copy (self->cut_dir, self->target, seq_before, seq_after, &out, message,
                     sizeof message);
    }
    if (proc_remove_tree (self->cut_dir) != 0) {
        rl_warn ("backup: cannot remove the cut %s: %s", self->cut_dir, strerror (errno));
    }
    uint64_t after = s_tree_bytes (self->target);
    pthread_mutex_lock (&self->lock);
    self->copy.copy_ms = (uint64_t) (zclock_mono () - self->copy_started_ms);
    if (rc == 0) {
        self->copy.state = RL_BACKUP_DONE;
        self->copy.backup_id = out.backup_id;
        self->copy.files = out.files;
        self->copy.bytes = out.bytes;
        self->copy.new_bytes = after > before ? after - before : 0;
        rl_info ("backup %" PRIx64 ": backup %u in %s, %" PRIu64 " files, %" PRIu64
                 " bytes (%" PRIu64 " new), %" PRIu64 " ms",
                 self->copy.token, out.backup_id, self->target, out.files, out.bytes,
                 self->copy.new_bytes, self->copy.copy_ms);
    } else {
        self->copy.state = RL_BACKUP_FAILED;
        snprintf (self->copy.message, sizeof self->copy.message, "%s", message);
        rl_error ("backup %" PRIx64 " into %s failed: %s", self->copy.token, self->target, message);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

//  Life cycle -------------------------------------------------------------------

static backup_t *
s_self (server_t *server)
{
    if (!server->backup) {
        backup_t *self = calloc (1, sizeof (*self));
        if (!self || !(self->deferred = zlist_new ())) {
            free (self);
            rl_error ("out of memory");
            return NULL;
        }
        pthread_mutex_init (&self->lock, NULL);
        pthread_cond_init (&self->cond, NULL);
        int n = snprintf (self->cut_dir, sizeof self->cut_dir, "%s/%s", server->options->data_dir,
                          BACKUP_CUT_DIR);
        assert (n > 0 && (size_t) n < sizeof self->cut_dir); //  main.c bounds the data dir
        n = snprintf (self->list_dir, sizeof self->list_dir, "%s.tmp", self->cut_dir);
        assert (n > 0 && (size_t) n < sizeof self->list_dir);
        server->backup = self;
    }
    return server->backup;
}

int
backup_start (server_t *server)
{
    char path[PATH_MAX];
    for (int k = 0; k < 2; k++) {
        //  RocksDB makes a checkpoint in <dir>.tmp, then renames it.
        snprintf (path, sizeof path, "%s/%s%s", server->options->data_dir, BACKUP_CUT_DIR,
                  k ? ".tmp" : "");
        struct stat st;
        if (lstat (path, &st) != 0) {
            continue;
        }
        if (proc_remove_tree (path) != 0) {
            rl_error ("cannot remove the cut %s left by a stop during a backup: %s", path,
                      strerror (errno));
            return -1;
        }
        rl_info ("removed the cut %s left by a stop during a backup", path);
    }
    return 0;
}

void
backup_stop (server_t *server)
{
    backup_t *self = server->backup;
    if (!self) {
        return;
    }
    if (self->thread_live) {
        pthread_join (self->thread, NULL); //  a copy is bounded by the cut's size
        self->thread_live = false;
    }
    zmsg_t *msg;
    while ((msg = zlist_pop (self->deferred))) {
        zmsg_destroy (&msg); //  their clients retry
    }
    zlist_destroy (&self->deferred);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->lock);
    free (self);
    server->backup = NULL;
}

//  The hold -----------------------------------------------------------------------

static void
s_release (backup_t *self, const char *why)
{
    assert (self->held_token != 0);
    uint64_t held_us = (uint64_t) (zclock_usecs () - self->held_since_us);
    rl_info ("backup %" PRIx64 ": hold ended (%s) after %" PRIu64 " us, %zu requests waited",
             self->held_token, why, held_us, zlist_size (self->deferred));
    self->held_token = 0;
}

bool
backup_holding (server_t *server)
{
    backup_t *self = server->backup;
    if (!self || self->held_token == 0) {
        return false;
    }
    if (zclock_mono () >= self->held_until_ms) {
        rl_warn ("backup %" PRIx64 ": the hold passed its limit: ending it", self->held_token);
        s_release (self, "limit");
        return false;
    }
    return true;
}

bool
backup_serves_held (uint16_t op)
{
    return op == RL_OP_STATUS || (op >= RL_OP_BACKUP_HOLD && op <= RL_OP_BACKUP_STATUS);
}

zmsg_t *
backup_defer (server_t *server, zmsg_t *msg, const rl_header_t *h)
{
    backup_t *self = server->backup;
    assert (self && self->held_token != 0 && msg);
    if (zlist_size (self->deferred) >= BACKUP_DEFERRED_MAX || zlist_append (self->deferred, msg)) {
        zframe_t *payload = zmsg_last (msg);
        zmsg_remove (msg, payload);
        zframe_destroy (&payload);
        return server_reply_new (server, msg, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    return NULL;
}

bool
backup_deferred_waiting (server_t *server)
{
    backup_t *self = server->backup;
    return self && self->held_token == 0 && zlist_size (self->deferred) > 0;
}

zmsg_t *
backup_next_deferred (server_t *server)
{
    backup_t *self = server->backup;
    if (!self || self->held_token != 0) {
        return NULL;
    }
    return zlist_pop (self->deferred);
}

//  Operations -----------------------------------------------------------------------

//  The copy's state as the loop sees it, into rec (token kept).
static void
s_copy_state (backup_t *self, rl_backup_rec_t *rec)
{
    pthread_mutex_lock (&self->lock);
    if (self->copy.token == rec->token && rec->token != 0) {
        *rec = self->copy;
        if (rec->state == RL_BACKUP_COPYING) {
            rec->copy_ms = (uint64_t) (zclock_mono () - self->copy_started_ms);
        }
    } else {
        rec->state = RL_BACKUP_IDLE;
        rec->result = RL_BACKUP_UNKNOWN;
        snprintf (rec->message, sizeof rec->message, "no backup of this token on this shard");
    }
    pthread_mutex_unlock (&self->lock);
}

static bool
s_copy_running (backup_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool running = self->copy.state == RL_BACKUP_COPYING;
    pthread_mutex_unlock (&self->lock);
    if (!running && self->thread_live) {
        pthread_join (self->thread, NULL); //  it has ended: this returns at once
        self->thread_live = false;
    }
    return running;
}

static void
s_hold (server_t *server, backup_t *self, rl_backup_rec_t *rec)
{
    if (rec->hold_ms == 0 || rec->hold_ms > RL_BACKUP_HOLD_MS_MAX) {
        rec->result = RL_BACKUP_BAD_REQUEST;
        snprintf (rec->message, sizeof rec->message, "hold_ms must be 1..%d",
                  RL_BACKUP_HOLD_MS_MAX);
        return;
    }
    rl_migrate_rec_t *m = NULL;
    if (migrate_stored (server, &m) != 0) {
        rec->result = RL_BACKUP_STORAGE;
        snprintf (rec->message, sizeof rec->message, "the stored migration cannot be read");
        return;
    }
    if (m->role == RL_MIGRATE_SOURCE && m->state == RL_MIGRATE_SHIPPED) {
        //  The step's handover is under way: its target may serve the
        //  arc already, at an epoch no other shard serves yet, so a set of
        //  the rings the shards serve could miss it (and writes it took).
        rec->result = RL_BACKUP_BUSY;
        snprintf (rec->message, sizeof rec->message,
                  "migration to %.31s in its handover: let 'rebalance apply' end it, then back up",
                  m->target);
        return;
    }
    if ((self->held_token != 0 && self->held_token != rec->token) || s_copy_running (self)) {
        rec->result = RL_BACKUP_BUSY;
        snprintf (rec->message, sizeof rec->message,
                  self->held_token ? "held by another backup" : "the last backup still copies");
        return;
    }
    if (self->held_token == 0) {
        self->held_since_us = zclock_usecs ();
    }
    self->held_token = rec->token;
    self->held_until_ms = zclock_mono () + rec->hold_ms;
    rec->state = RL_BACKUP_HELD;
    rec->epoch = ring_epoch (server->ring);
    rl_info ("backup %" PRIx64 ": held for at most %u ms", rec->token, rec->hold_ms);
}

//  True when directory path holds an entry (false when it does not exist).
static bool
s_dir_has_entry (const char *path)
{
    DIR *dir = opendir (path);
    bool found = false;
    struct dirent *entry;
    while (dir && !found && (entry = readdir (dir))) {
        found = strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0;
    }
    if (dir) {
        closedir (dir);
    }
    return found;
}

//  While held: waits until the copy thread's checkpoint has listed its
//  files. RocksDB makes "<cut>.tmp", lists the live files, and only then
//  links or copies the first of them into it; so an entry there, or the
//  checkpoint's end, says the listing is done. (Were it ever otherwise,
//  the sequence check of s_copy refuses the cut: invariant 3.)
static void
s_wait_listed (backup_t *self)
{
    while (true) {
        pthread_mutex_lock (&self->lock);
        bool ended = self->checkpoint_ended;
        pthread_mutex_unlock (&self->lock);
        if (ended || s_dir_has_entry (self->list_dir)) {
            return;
        }
        struct timespec pause = {.tv_nsec = BACKUP_LIST_POLL_US * 1000L};
        nanosleep (&pause, NULL);
    }
}

static void
s_cut (server_t *server, backup_t *self, rl_backup_rec_t *rec)
{
    if (self->held_token != rec->token) {
        rec->result = RL_BACKUP_NOT_HELD;
        snprintf (rec->message, sizeof rec->message,
                  "not held by this token (the hold ended by itself?): no cut");
        return;
    }
    char target[PATH_MAX];
    if (s_check_dir (rec, server->options->name, target, sizeof target, rec->message,
                     sizeof rec->message)
        != 0) {
        rec->result = RL_BACKUP_BAD_PATH;
        rl_warn ("backup %" PRIx64 " refused: %s", rec->token, rec->message);
        return;
    }
    if (s_copy_running (self) || backup_start (server) != 0) {
        rec->result = RL_BACKUP_BUSY;
        snprintf (rec->message, sizeof rec->message, "a cut or a copy is still in the way");
        return;
    }
    int64_t started_us = zclock_usecs ();
    if (RL_FAILPOINT (BACKUP_CUT) != 0) {
        rec->result = RL_BACKUP_STORAGE;
        snprintf (rec->message, sizeof rec->message, "failpoint backup.cut");
        rl_error ("backup %" PRIx64 ": %s", rec->token, rec->message);
        return;
    }
    rec->state = RL_BACKUP_COPYING;
    rec->accounts = ledger_account_count (server->ledger);
    rec->transfers = ledger_transfer_count (server->ledger);
    rec->last_timestamp = ledger_last_timestamp (server->ledger);
    rec->epoch = ring_epoch (server->ring);
    bool unheld = RL_FAILPOINT (BACKUP_UNHELD) != 0;
    pthread_mutex_lock (&self->lock);
    self->copy = *rec;
    snprintf (self->target, sizeof self->target, "%s", target);
    self->store = server->store;
    self->copy_started_ms = zclock_mono ();
    self->checkpoint_ended = false;
    self->bounds_set = false;
    self->unheld = unheld;
    self->seq_before = store_sequence (server->store);
    pthread_mutex_unlock (&self->lock);
    if (pthread_create (&self->thread, NULL, s_copy_main, self) != 0) {
        pthread_mutex_lock (&self->lock);
        self->copy.state = RL_BACKUP_FAILED;
        snprintf (self->copy.message, sizeof self->copy.message, "cannot start the copy thread");
        pthread_mutex_unlock (&self->lock);
        rec->state = RL_BACKUP_FAILED;
        rec->result = RL_BACKUP_STORAGE;
        snprintf (rec->message, sizeof rec->message, "cannot start the copy thread");
        return;
    }
    self->thread_live = true;
    if (!unheld) {
        s_wait_listed (self);
    }
    pthread_mutex_lock (&self->lock);
    self->seq_after = store_sequence (server->store);
    self->bounds_set = true;
    pthread_cond_broadcast (&self->cond);
    uint64_t seq_before = self->seq_before, seq_after = self->seq_after;
    pthread_mutex_unlock (&self->lock);
    rec->cut_us = (uint64_t) (zclock_usecs () - started_us);
    rl_info ("backup %" PRIx64 ": cut listed in %" PRIu64 " us (sequence %" PRIu64 "..%" PRIu64
             ", %" PRIu64 " accounts, %" PRIu64 " transfers), copying into %s%s",
             rec->token, rec->cut_us, seq_before, seq_after, rec->accounts, rec->transfers, target,
             unheld ? " (failpoint backup.unheld: not waited for)" : "");
}

zmsg_t *
backup_handle (server_t *server, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    assert (h->operation >= RL_OP_BACKUP_HOLD && h->operation <= RL_OP_BACKUP_STATUS);
    assert (h->record_count == 1 && body); //  codec_check_request: exactly one record
    backup_t *self = s_self (server);
    if (!self) {
        return server_reply_new (server, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    rl_backup_rec_t rec;
    codec_decode_backup (body, &rec);
    bool zeroed = rec.state == 0 && rec.result == 0 && rec.backup_id == 0 && rec.reserved == 0
                  && rec.message[0] == 0;
    if (h->operation != RL_OP_BACKUP_CUT) {
        zeroed = zeroed && strnlen (rec.dir, sizeof rec.dir) == 0;
    }
    if (h->operation != RL_OP_BACKUP_HOLD) {
        zeroed = zeroed && rec.hold_ms == 0;
    }
    memset (rec.message, 0, sizeof rec.message);
    rec.state = self->held_token == rec.token && rec.token ? RL_BACKUP_HELD : RL_BACKUP_IDLE;
    if (rec.token == 0 || !zeroed) {
        rec.result = RL_BACKUP_BAD_REQUEST;
        snprintf (rec.message, sizeof rec.message,
                  "token must not be 0, and fields the operation does not take must be 0");
    } else if (h->operation == RL_OP_BACKUP_HOLD) {
        s_hold (server, self, &rec);
    } else if (h->operation == RL_OP_BACKUP_CUT) {
        s_cut (server, self, &rec);
    } else if (h->operation == RL_OP_BACKUP_RELEASE) {
        if (self->held_token != rec.token) {
            rec.result = RL_BACKUP_NOT_HELD;
            snprintf (rec.message, sizeof rec.message, "not held by this token");
        } else {
            rec.held_us = (uint64_t) (zclock_usecs () - self->held_since_us);
            s_release (self, "released");
            rec.state = RL_BACKUP_IDLE;
        }
    } else {
        s_copy_state (self, &rec);
    }
    if (rec.result != RL_BACKUP_OK) {
        rl_warn ("%s refused (%u): %s", rl_op_name (h->operation), rec.result, rec.message);
    }
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (server, envelope, h, RL_STATUS_OK, 1, RL_BACKUP_SIZE, &out);
    if (reply) {
        codec_encode_backup (&rec, out);
    }
    return reply;
}
