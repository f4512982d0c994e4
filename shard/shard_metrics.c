/*  shard_metrics.c: what a shard tells Prometheus (docs/metrics.md).

    The turn loop counts as it goes: replies by operation and status,
    per-record results of creates, and the histograms of turn duration,
    group-commit size, sync and checkpoint durations; all into the
    registry's WORK copy (common/metrics.c), which only this thread
    touches. Once per tick shard_metrics_tick copies the server's counters
    and gauges (the ones the status record carries) into the registry and
    publishes the snapshot that the HTTP thread serves.

    INVARIANTS
    1. Everything here runs on the loop thread; the HTTP thread reads only
       the published snapshot.
    2. Whatever may cost more than a few counters (RocksDB properties and
       statistics, the in-doubt listing for the oldest record's age,
       statvfs of the data directory) runs at most once every
       S_SLOW_PERIOD_MS.
    3. Ready (/readyz) means: the loop runs (recovery is over before it
       starts), the store is not FAILED, and the shard's ring names it.

    LIMITS: operations and statuses of at most S_CODES_MAX, results of at
    most S_RESULTS_MAX (larger codes are counted under the last slot,
    labelled by its name, "unknown").
*/
#include "shard_metrics.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <time.h>

#include <czmq.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "rl_limits.h"
#include "server_internal.h"

#define S_CODES_MAX      64
#define S_RESULTS_MAX    128
#define S_SLOW_PERIOD_MS 1000
#define S_UNSET          (-2)

static const double s_seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};
static const double s_size_bounds[] = {1,   2,   4,   8,    16,   32,   64,
                                       128, 256, 512, 1024, 2048, 4096, 8192};

enum {
    S_REQUESTS_RECEIVED,
    S_COMMITS,
    S_DROPPED,
    S_MALFORMED,
    S_WRONG_SHARD,
    S_UNAUTHORIZED,
    S_HANDSHAKES_REFUSED,
    S_EPOCH_JUMPS_REFUSED,
    S_CHECKPOINTS,
    S_ACCOUNTS,
    S_TRANSFERS,
    S_LIVE_ATTEMPTS,
    S_UNACKED_DECISIONS,
    S_IN_DOUBT,
    S_IN_DOUBT_OLDEST,
    S_ALARMS,
    S_LAST_CHECKPOINT_AGE,
    S_EPOCH,
    S_RING_SHARDS,
    S_OWNERSHIP,
    S_ARCS_UNRECEIVED,
    S_FAILED,
    S_READY,
    S_UPTIME,
    S_MEMTABLE,
    S_PENDING_COMPACTION,
    S_LIVE_SST,
    S_WRITE_STOPPED,
    S_STALL,
    S_WAL_WRITTEN,
    S_WAL_SYNCS,
    S_KEYS_WRITTEN,
    S_BYTES_WRITTEN,
    S_DISK_FREE,
    S_DISK_SIZE,
    S_SCALAR_COUNT
};

//  A scalar: its name, type and help (docs/metrics.md lists them all).
typedef struct {
    metrics_type_t type;
    const char *name;
    const char *help;
} s_scalar_t;

static const s_scalar_t s_scalars[S_SCALAR_COUNT] = {
    [S_REQUESTS_RECEIVED] = {METRICS_COUNTER, "ringledger_shard_requests_received_total",
                             "Requests received from clients, routers and peers."},
    [S_COMMITS] = {METRICS_COUNTER, "ringledger_shard_group_commits_total",
                   "Group commits (one synced write each)."},
    [S_DROPPED] = {METRICS_COUNTER, "ringledger_shard_dropped_total",
                   "Messages dropped: too short, undeliverable, or out of memory."},
    [S_MALFORMED] = {METRICS_COUNTER, "ringledger_shard_malformed_total",
                     "Requests and peer replies that did not decode."},
    [S_WRONG_SHARD] = {METRICS_COUNTER, "ringledger_shard_wrong_shard_total",
                       "Records and reads answered wrong_shard."},
    [S_UNAUTHORIZED] = {METRICS_COUNTER, "ringledger_shard_unauthorized_total",
                        "Requests refused: the key lacks the role."},
    [S_HANDSHAKES_REFUSED] = {METRICS_COUNTER, "ringledger_shard_handshakes_refused_total",
                              "CURVE handshakes refused (unknown keys)."},
    [S_EPOCH_JUMPS_REFUSED] = {METRICS_COUNTER, "ringledger_shard_epoch_jumps_refused_total",
                               "Rings refused by load_ring: epoch beyond --max-epoch-jump."},
    [S_CHECKPOINTS] = {METRICS_COUNTER, "ringledger_shard_checkpoints_total",
                       "Checkpoints since the shard started."},
    [S_ACCOUNTS] = {METRICS_GAUGE, "ringledger_shard_accounts", "Accounts held."},
    [S_TRANSFERS] = {METRICS_GAUGE, "ringledger_shard_transfers", "Transfers held."},
    [S_LIVE_ATTEMPTS] = {METRICS_GAUGE, "ringledger_shard_twophase_live_attempts",
                         "Cross-shard transfers this shard coordinates, not yet decided."},
    [S_UNACKED_DECISIONS] = {METRICS_GAUGE, "ringledger_shard_twophase_unacked_decisions",
                             "Decisions awaiting the participant's acknowledgement."},
    [S_IN_DOUBT] = {METRICS_GAUGE, "ringledger_shard_in_doubt_records",
                    "Prepared records awaiting their coordinator's decision."},
    [S_IN_DOUBT_OLDEST] = {METRICS_GAUGE, "ringledger_shard_in_doubt_oldest_age_seconds",
                           "Age of the oldest prepared record (0 when none)."},
    [S_ALARMS] = {METRICS_GAUGE, "ringledger_shard_alarms",
                  "Contrary or unknown decisions seen: an operator must look."},
    [S_LAST_CHECKPOINT_AGE] = {METRICS_GAUGE, "ringledger_shard_last_checkpoint_age_seconds",
                               "Seconds since the last checkpoint (or since the start)."},
    [S_EPOCH] = {METRICS_GAUGE, "ringledger_ring_epoch", "Epoch of the ring served."},
    [S_RING_SHARDS] = {METRICS_GAUGE, "ringledger_ring_shards", "Shards in the ring served."},
    [S_OWNERSHIP] = {METRICS_GAUGE, "ringledger_shard_ownership_ratio",
                     "Fraction of the ring this shard owns (0..1)."},
    [S_ARCS_UNRECEIVED] = {METRICS_GAUGE, "ringledger_shard_arcs_unreceived",
                           "Gained arcs whose data has not arrived (frozen accounts)."},
    [S_FAILED] = {METRICS_GAUGE, "ringledger_store_failed",
                  "1 when the store is FAILED (a write, sync or checkpoint failed): restart."},
    [S_READY] = {METRICS_GAUGE, "ringledger_ready", "1 when /readyz answers ready."},
    [S_UPTIME] = {METRICS_GAUGE, "ringledger_uptime_seconds", "Seconds since the loop started."},
    [S_MEMTABLE] = {METRICS_GAUGE, "ringledger_store_memtable_bytes",
                    "RocksDB memtables, every column family."},
    [S_PENDING_COMPACTION] = {METRICS_GAUGE, "ringledger_store_pending_compaction_bytes",
                              "RocksDB's estimate of the bytes compaction must rewrite."},
    [S_LIVE_SST] = {METRICS_GAUGE, "ringledger_store_live_sst_bytes", "RocksDB's live SST files."},
    [S_WRITE_STOPPED] = {METRICS_GAUGE, "ringledger_store_write_stopped",
                         "1 while RocksDB stops writes (a stall)."},
    [S_STALL] = {METRICS_COUNTER, "ringledger_store_stall_seconds_total",
                 "Time writes waited in RocksDB stalls."},
    [S_WAL_WRITTEN] = {METRICS_COUNTER, "ringledger_store_wal_written_bytes_total",
                       "Bytes written to the write-ahead log."},
    [S_WAL_SYNCS] = {METRICS_COUNTER, "ringledger_store_wal_syncs_total",
                     "Syncs of the write-ahead log."},
    [S_KEYS_WRITTEN] = {METRICS_COUNTER, "ringledger_store_keys_written_total", "Keys written."},
    [S_BYTES_WRITTEN] = {METRICS_COUNTER, "ringledger_store_written_bytes_total",
                         "Bytes written (keys and values)."},
    [S_DISK_FREE] = {METRICS_GAUGE, "ringledger_store_disk_free_bytes",
                     "Bytes available to the shard on the data directory's file system."},
    [S_DISK_SIZE] = {METRICS_GAUGE, "ringledger_store_disk_size_bytes",
                     "Size of the data directory's file system."},
};

struct shard_metrics_t {
    metrics_t *metrics;
    metrics_http_t *http;
    int scalar[S_SCALAR_COUNT]; //  series ids
    int info;
    int replies_family, results_family, created;
    int turn_seconds, commit_writes, sync_seconds, checkpoint_seconds;
    int replies_series[S_CODES_MAX][S_CODES_MAX]; //  [operation][status]; S_UNSET: not yet
    uint64_t replies[S_CODES_MAX][S_CODES_MAX];
    int results_series[2][S_RESULTS_MAX]; //  [create_transfers?][result]
    uint64_t results[2][S_RESULTS_MAX];
    uint64_t transfers_created;
    int64_t slow_next_ms;
    int64_t started_ms;
    int64_t last_checkpoint_ms;
    uint64_t checkpoints_seen;
    rl_in_doubt_rec_t *in_doubt; //  RL_IN_DOUBT_RECORDS_MAX
};

shard_metrics_t *
shard_metrics_new (const char *bind)
{
    assert (bind);
    shard_metrics_t *self = calloc (1, sizeof (*self));
    if (!self) {
        rl_error ("out of memory");
        return NULL;
    }
    self->metrics = metrics_new ();
    self->in_doubt = calloc (RL_IN_DOUBT_RECORDS_MAX, sizeof (rl_in_doubt_rec_t));
    if (!self->metrics || !self->in_doubt) {
        rl_error ("out of memory");
        shard_metrics_destroy (&self);
        return NULL;
    }
    metrics_t *m = self->metrics;
    for (size_t i = 0; i < S_SCALAR_COUNT; i++) {
        const s_scalar_t *s = &s_scalars[i];
        self->scalar[i] = metrics_series (m, metrics_family (m, s->type, s->name, s->help, NULL, 0),
                                          "");
    }
    self->info = metrics_family (m, METRICS_GAUGE, "ringledger_shard_info",
                                 "Constant 1, labelled with the shard's name and durability.", NULL,
                                 0);
    self->replies_family = metrics_family (
        m, METRICS_COUNTER, "ringledger_shard_requests_total",
        "Replies by operation and message status (clients, routers and peers).", NULL, 0);
    self->results_family = metrics_family (m, METRICS_COUNTER, "ringledger_shard_records_total",
                                           "Records of creates by operation and result.", NULL, 0);
    self->created = metrics_series (m,
                                    metrics_family (m, METRICS_COUNTER,
                                                    "ringledger_shard_transfers_created_total",
                                                    "Transfers created (result ok).", NULL, 0),
                                    "");
    self->turn_seconds = metrics_series (
        m,
        metrics_family (m, METRICS_HISTOGRAM, "ringledger_shard_turn_duration_seconds",
                        "Turns, from the first request read to the last reply sent: the "
                        "shard's request latency.",
                        s_seconds_bounds, sizeof s_seconds_bounds / sizeof (double)),
        "");
    self->commit_writes = metrics_series (
        m,
        metrics_family (m, METRICS_HISTOGRAM, "ringledger_shard_group_commit_writes",
                        "Writes (puts and deletes) per group commit.", s_size_bounds,
                        sizeof s_size_bounds / sizeof (double)),
        "");
    self->sync_seconds = metrics_series (
        m,
        metrics_family (m, METRICS_HISTOGRAM, "ringledger_shard_sync_duration_seconds",
                        "Group commits: the write and the sync of the write-ahead log.",
                        s_seconds_bounds, sizeof s_seconds_bounds / sizeof (double)),
        "");
    self->checkpoint_seconds = metrics_series (
        m,
        metrics_family (m, METRICS_HISTOGRAM, "ringledger_shard_checkpoint_duration_seconds",
                        "Checkpoints, on the loop thread.", s_seconds_bounds,
                        sizeof s_seconds_bounds / sizeof (double)),
        "");
    for (size_t i = 0; i < S_CODES_MAX; i++) {
        for (size_t j = 0; j < S_CODES_MAX; j++) {
            self->replies_series[i][j] = S_UNSET;
        }
    }
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < S_RESULTS_MAX; j++) {
            self->results_series[i][j] = S_UNSET;
        }
    }
    self->started_ms = self->last_checkpoint_ms = zclock_mono ();
    char err[256];
    self->http = metrics_http_new (bind, m, err, sizeof err);
    if (!self->http) {
        rl_error ("--metrics-bind: %s", err);
        shard_metrics_destroy (&self);
        return NULL;
    }
    return self;
}

void
shard_metrics_destroy (shard_metrics_t **self_p)
{
    assert (self_p);
    shard_metrics_t *self = *self_p;
    if (!self) {
        return;
    }
    metrics_http_destroy (&self->http); //  first: its thread reads the registry
    metrics_destroy (&self->metrics);
    free (self->in_doubt);
    free (self);
    *self_p = NULL;
}

void
shard_metrics_reply (shard_metrics_t *self, uint32_t operation, uint32_t status)
{
    if (self) {
        self->replies[operation < S_CODES_MAX ? operation : 0]
                     [status < S_CODES_MAX ? status : S_CODES_MAX - 1]++;
    }
}

void
shard_metrics_results (shard_metrics_t *self, uint32_t operation, const rl_result_rec_t *results,
                       size_t count)
{
    if (!self) {
        return;
    }
    assert (count == 0 || results);
    size_t transfers = operation == RL_OP_CREATE_TRANSFERS;
    for (size_t i = 0; i < count; i++) {
        uint32_t r = results[i].result;
        self->results[transfers][r < S_RESULTS_MAX ? r : S_RESULTS_MAX - 1]++;
        self->transfers_created += transfers && r == RL_OK;
    }
}

void
shard_metrics_turn (shard_metrics_t *self, int64_t turn_us)
{
    if (self) {
        metrics_observe (self->metrics, self->turn_seconds, (double) turn_us / 1e6);
    }
}

void
shard_metrics_commit (shard_metrics_t *self, size_t writes, int64_t sync_us)
{
    if (self) {
        metrics_observe (self->metrics, self->commit_writes, (double) writes);
        metrics_observe (self->metrics, self->sync_seconds, (double) sync_us / 1e6);
    }
}

void
shard_metrics_checkpoint (shard_metrics_t *self, int64_t checkpoint_us)
{
    if (self) {
        metrics_observe (self->metrics, self->checkpoint_seconds, (double) checkpoint_us / 1e6);
    }
}

static void
s_set (shard_metrics_t *self, int which, double value)
{
    metrics_set (self->metrics, self->scalar[which], value);
}

//  The labelled counters: a series at the first non-zero count.
static void
s_labelled (shard_metrics_t *self)
{
    char labels[METRICS_LABELS_SIZE_MAX];
    for (uint32_t op = 0; op < S_CODES_MAX; op++) {
        for (uint32_t st = 0; st < S_CODES_MAX; st++) {
            if (self->replies[op][st] == 0) {
                continue;
            }
            if (self->replies_series[op][st] == S_UNSET) {
                snprintf (labels, sizeof labels, "operation=\"%s\",status=\"%s\"", rl_op_name (op),
                          rl_status_name (st));
                self->replies_series[op][st] = metrics_series (self->metrics, self->replies_family,
                                                               labels);
            }
            metrics_set (self->metrics, self->replies_series[op][st],
                         (double) self->replies[op][st]);
        }
    }
    for (uint32_t t = 0; t < 2; t++) {
        for (uint32_t r = 0; r < S_RESULTS_MAX; r++) {
            if (self->results[t][r] == 0) {
                continue;
            }
            if (self->results_series[t][r] == S_UNSET) {
                snprintf (labels, sizeof labels, "operation=\"%s\",result=\"%s\"",
                          rl_op_name (t ? RL_OP_CREATE_TRANSFERS : RL_OP_CREATE_ACCOUNTS),
                          rl_result_name (r));
                self->results_series[t][r] = metrics_series (self->metrics, self->results_family,
                                                             labels);
            }
            metrics_set (self->metrics, self->results_series[t][r], (double) self->results[t][r]);
        }
    }
    metrics_set (self->metrics, self->created, (double) self->transfers_created);
}

//  Once a second: RocksDB, the disk, the oldest in-doubt record.
static void
s_slow (shard_metrics_t *self, server_t *server)
{
    store_t *store = server->store;
    s_set (self, S_MEMTABLE,
           (double) store_property_sum (store, "rocksdb.cur-size-all-mem-tables"));
    s_set (self, S_PENDING_COMPACTION,
           (double) store_property_sum (store, "rocksdb.estimate-pending-compaction-bytes"));
    s_set (self, S_LIVE_SST, (double) store_property_sum (store, "rocksdb.live-sst-files-size"));
    s_set (self, S_WRITE_STOPPED,
           store_property_sum (store, "rocksdb.is-write-stopped") > 0 ? 1 : 0);
    s_set (self, S_STALL, (double) store_ticker (store, "rocksdb.stall.micros ") / 1e6);
    uint64_t keys = 0, bytes = 0, wal_bytes = 0, wal_syncs = 0;
    store_write_stats (store, &keys, &bytes, &wal_bytes, &wal_syncs);
    s_set (self, S_KEYS_WRITTEN, (double) keys);
    s_set (self, S_BYTES_WRITTEN, (double) bytes);
    s_set (self, S_WAL_WRITTEN, (double) wal_bytes);
    s_set (self, S_WAL_SYNCS, (double) wal_syncs);
    struct statvfs fs;
    if (statvfs (server->options->data_dir, &fs) == 0) {
        s_set (self, S_DISK_FREE, (double) fs.f_bavail * (double) fs.f_frsize);
        s_set (self, S_DISK_SIZE, (double) fs.f_blocks * (double) fs.f_frsize);
    }
    //  The oldest prepared record (participant role) among those listed.
    size_t count = ledger_in_doubt (server->ledger, self->in_doubt, RL_IN_DOUBT_RECORDS_MAX);
    uint64_t now_ns = now_read ().wall_ns;
    double oldest_s = 0;
    for (size_t i = 0; i < count; i++) {
        const rl_prepare_rec_t *p = &self->in_doubt[i].prepare;
        if (p->reserved[1] == 2 && p->reserved[0] < now_ns) {
            double age_s = (double) (now_ns - p->reserved[0]) / 1e9;
            oldest_s = age_s > oldest_s ? age_s : oldest_s;
        }
    }
    s_set (self, S_IN_DOUBT_OLDEST, oldest_s);
}

void
shard_metrics_tick (shard_metrics_t *self, server_t *server)
{
    if (!self) {
        return;
    }
    assert (server);
    int64_t now_ms = zclock_mono ();
    if (now_ms >= self->slow_next_ms) {
        s_slow (self, server);
        self->slow_next_ms = now_ms + S_SLOW_PERIOD_MS;
    }
    s_set (self, S_REQUESTS_RECEIVED, (double) server->requests);
    s_set (self, S_COMMITS, (double) server->commits);
    s_set (self, S_DROPPED, (double) server->dropped);
    s_set (self, S_MALFORMED, (double) server->malformed);
    s_set (self, S_WRONG_SHARD, (double) server->wrong_shard);
    s_set (self, S_UNAUTHORIZED, (double) server->unauthorized);
    s_set (self, S_HANDSHAKES_REFUSED, (double) rl_auth_refused (server->auth));
    s_set (self, S_EPOCH_JUMPS_REFUSED, (double) server->epoch_jumps_refused);
    uint64_t checkpoints = ledger_checkpoint_count (server->ledger);
    if (checkpoints != self->checkpoints_seen) {
        self->checkpoints_seen = checkpoints;
        self->last_checkpoint_ms = now_ms;
    }
    s_set (self, S_CHECKPOINTS, (double) checkpoints);
    s_set (self, S_LAST_CHECKPOINT_AGE, (double) (now_ms - self->last_checkpoint_ms) / 1e3);
    s_set (self, S_ACCOUNTS, (double) ledger_account_count (server->ledger));
    s_set (self, S_TRANSFERS, (double) ledger_transfer_count (server->ledger));
    uint64_t live = 0, decided = 0, alarms = 0, inflight = 0, in_doubt = 0;
    coordinator_counts (ledger_coordinator (server->ledger), &live, &decided, &alarms);
    ledger_tp_counts (server->ledger, &inflight, &in_doubt, &alarms);
    s_set (self, S_LIVE_ATTEMPTS, (double) live);
    s_set (self, S_UNACKED_DECISIONS, (double) decided);
    s_set (self, S_IN_DOUBT, (double) in_doubt);
    s_set (self, S_ALARMS, (double) alarms);
    if (in_doubt == 0) {
        s_set (self, S_IN_DOUBT_OLDEST, 0);
    }
    const ring_t *ring = server->ring;
    int index = ring_shard_find (ring, server->options->name);
    s_set (self, S_EPOCH, (double) ring_epoch (ring));
    s_set (self, S_RING_SHARDS, (double) ring_shard_count (ring));
    s_set (self, S_OWNERSHIP, index >= 0 ? ring_shard_ownership (ring, (size_t) index) : 0);
    const arcs_t *arcs = ledger_arcs (server->ledger);
    s_set (self, S_ARCS_UNRECEIVED, arcs ? (double) arcs_unreceived_count (arcs) : 0);
    s_set (self, S_FAILED, server->failed ? 1 : 0);
    s_set (self, S_UPTIME, (double) (now_ms - self->started_ms) / 1e3);
    if (self->info >= 0) {
        //  The name as a label value: quotes, backslashes and control
        //  bytes (a --name the ring does not hold is not checked) become _.
        char name[RL_SHARD_NAME_SIZE_MAX];
        snprintf (name, sizeof name, "%s", server->options->name);
        for (char *c = name; *c; c++) {
            *c = (*c == '"' || *c == '\\' || (unsigned char) *c < 0x20) ? '_' : *c;
        }
        char labels[METRICS_LABELS_SIZE_MAX];
        snprintf (labels, sizeof labels, "shard=\"%s\",durability=\"%s\"", name,
                  rl_durability_name (server->options->durability));
        metrics_set (self->metrics, metrics_series (self->metrics, self->info, labels), 1);
        self->info = -1; //  constant: set once
    }
    s_labelled (self);
    bool ready = !server->failed && index >= 0;
    s_set (self, S_READY, ready ? 1 : 0);
    metrics_set_ready (self->metrics, ready,
                       server->failed ? "store FAILED: restart the shard"
                                      : (index < 0 ? "the ring does not name this shard" : ""));
    metrics_publish (self->metrics);
}
