/*  shard_metrics.c: what a shard tells Prometheus (docs/metrics.md), and
    the two figures of its status record that need a window of time.

    The turn loop counts as it goes: replies by operation and status,
    per-record results of creates, and the histograms of turn duration,
    group-commit size, sync and checkpoint durations; all into the
    registry's WORK copy (common/metrics.c), which only this thread
    touches. Once per tick shard_metrics_tick copies the server's counters
    and gauges (the ones the status record carries) into the registry and
    publishes the snapshot that the HTTP thread serves.

    STATUS FIGURES
    The status record (docs/protocol.md) carries the p99 of the turns of
    the last full second and the age of the oldest prepared record, with or
    without --metrics-bind: so the object exists in every shard, and only
    the registry's updates, RocksDB's properties and the HTTP server are
    left out without it. The turns of the current second go into a
    log-linear histogram of S_WINDOW_BUCKETS counts (8 per power of two,
    so a percentile is reported within 12.5 %, as its bucket's upper
    bound); at the end of each second its p99 is kept and it starts empty.
    The oldest prepared record is looked for once a second, and at once
    when records come into doubt after none: its age may be up to a second
    old, never that of a record long gone.

    INVARIANTS
    1. Everything here runs on the loop thread; the HTTP thread reads only
       the published snapshot. Without --metrics-bind there is no HTTP
       thread and nothing is published.
    2. Whatever may cost more than a few counters (RocksDB properties and
       statistics, the WAL files' sizes, statvfs of the data directory, the
       peers' socket events, the in-doubt listing for the oldest record's
       age) runs at most once every S_SLOW_PERIOD_MS; the in-doubt listing
       also once when records come into doubt after none.
    3. Ready (/readyz) means: the loop runs (recovery is over before it
       starts), the store is not FAILED, and the shard's ring names it.

    QUEUES
    Requests waiting in the shard's socket cannot be counted: a turn reads
    at most RL_SHARD_REQUESTS_PER_TURN_MAX of them, so the histogram of
    requests per turn shows the queue (turns at the bound leave requests
    behind). Client requests held for cross-shard decisions are counted
    (requests_waiting), the journal's fill too, and a peer's outbound queue
    as full or not (its socket cannot take a message).

    LIMITS: operations and statuses of at most METRICS_CODES_MAX (the
    replies counter of common/metrics.h), results of at most S_RESULTS_MAX
    (larger codes are counted under the last slot, labelled by its name,
    "unknown").
*/
#include "shard_metrics.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include <czmq.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "rl_limits.h"
#include "server_internal.h"

#define S_RESULTS_MAX    128
#define S_SLOW_PERIOD_MS 1000
#define S_UNSET          (-2)
#define S_WINDOW_MS      1000
#define S_WINDOW_SUBS    8 //  buckets per power of two (a power of two)
#define S_WINDOW_BUCKETS (S_WINDOW_SUBS + 29 * S_WINDOW_SUBS) //  0 .. UINT32_MAX us
#define S_STATE_COUNT    (CHECKPOINT_FAILED + 1)

//  The label values of checkpoint_state_t (checkpoint.h).
static const char *s_state_names[S_STATE_COUNT] = {
    [CHECKPOINT_IDLE] = "idle",         [CHECKPOINT_WRITING] = "writing",
    [CHECKPOINT_INGESTED] = "ingested", [CHECKPOINT_COMMITTED] = "committed",
    [CHECKPOINT_FAILED] = "failed",
};

static const double s_seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};
static const double s_size_bounds[] = {1,   2,   4,   8,    16,   32,   64,
                                       128, 256, 512, 1024, 2048, 4096, 8192};
static const double s_turn_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, RL_SHARD_REQUESTS_PER_TURN_MAX};

enum {
    S_REQUESTS_RECEIVED,
    S_COMMITS,
    S_DROPPED,
    S_MALFORMED,
    S_WRONG_SHARD,
    S_UNAUTHORIZED,
    S_HANDSHAKES_REFUSED,
    S_EPOCH_JUMPS_REFUSED,
    S_REPLY_QUEUE_FULL,
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
    S_WAL_SIZE,
    S_REQUESTS_WAITING,
    S_PEERS_BLOCKED,
    S_CHECKPOINT_TRANSFERS,
    S_EVENTS_READS,
    S_EVENTS_SERVED,
    S_EVENTS_BAD_POSITIONS,
    S_EVENTS_RESYNCS,
    S_EVENTS_NOTES,
    S_EVENTS_HEARTBEATS,
    S_PENDING,
    S_PENDING_CREATED,
    S_PENDING_POSTED,
    S_PENDING_VOIDED,
    S_PENDING_EXPIRED,
    S_CHAINS_COMMITTED,
    S_CHAINS_FAILED,
    S_SCALAR_COUNT
};

//  The scalars (docs/metrics.md lists them all).
static const metrics_scalar_t s_scalars[S_SCALAR_COUNT] = {
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
    [S_REPLY_QUEUE_FULL] = {METRICS_COUNTER, "ringledger_shard_reply_queue_full_total",
                            "Replies dropped: the connection's --reply-queue-bytes reached."},
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
    [S_WAL_SIZE] = {METRICS_GAUGE, "ringledger_store_wal_bytes",
                    "Size of the live write-ahead log files on disk."},
    [S_REQUESTS_WAITING] = {METRICS_GAUGE, "ringledger_shard_requests_waiting",
                            "Client requests held for cross-shard decisions (busy at the limit)."},
    [S_PEERS_BLOCKED] = {METRICS_GAUGE, "ringledger_shard_peers_send_blocked",
                         "Peer shards whose outbound queue is full (sends to them are dropped)."},
    [S_CHECKPOINT_TRANSFERS] = {METRICS_GAUGE, "ringledger_shard_journal_checkpoint_transfers",
                                "Transfers in the journal's live generation that start a "
                                "checkpoint."},
    [S_EVENTS_READS] = {METRICS_COUNTER, "ringledger_shard_events_reads_total",
                        "Change stream: events_read requests answered ok."},
    [S_EVENTS_SERVED] = {METRICS_COUNTER, "ringledger_shard_events_served_total",
                         "Change stream: events served by events_read."},
    [S_EVENTS_BAD_POSITIONS] = {METRICS_COUNTER, "ringledger_shard_events_bad_positions_total",
                                "Change stream: events_read refused bad_position."},
    [S_EVENTS_RESYNCS] = {METRICS_COUNTER, "ringledger_shard_events_resyncs_total",
                          "Change stream: events_read answered resync (a position this shard "
                          "does not hold)."},
    [S_EVENTS_NOTES] = {METRICS_COUNTER, "ringledger_shard_events_notifications_total",
                        "Change stream: PUB notifications sent that the durable head moved."},
    [S_EVENTS_HEARTBEATS] = {METRICS_COUNTER, "ringledger_shard_events_heartbeats_total",
                             "Change stream: PUB heartbeats sent (the head did not move)."},
    [S_PENDING] = {METRICS_GAUGE, "ringledger_shard_pending_transfers",
                   "Pending transfers not yet posted, voided or expired."},
    [S_PENDING_CREATED] = {METRICS_COUNTER, "ringledger_shard_pending_created_total",
                           "Pending transfers created (their amounts reserved)."},
    [S_PENDING_POSTED] = {METRICS_COUNTER, "ringledger_shard_pending_posted_total",
                          "Posts of pending transfers applied."},
    [S_PENDING_VOIDED] = {METRICS_COUNTER, "ringledger_shard_pending_voided_total",
                          "Voids of pending transfers applied."},
    [S_PENDING_EXPIRED] = {METRICS_COUNTER, "ringledger_shard_pending_expired_total",
                           "Pending transfers expired by the shard's timer."},
    [S_CHAINS_COMMITTED] = {METRICS_COUNTER, "ringledger_shard_chains_committed_total",
                            "Linked chains applied whole."},
    [S_CHAINS_FAILED] = {METRICS_COUNTER, "ringledger_shard_chains_failed_total",
                         "Linked chains refused whole (nothing of them applied)."},
};

struct shard_metrics_t {
    metrics_t *metrics;
    metrics_http_t *http;
    int scalar[S_SCALAR_COUNT]; //  series ids
    int info;
    metrics_replies_t *replies;
    int results_family, created;
    int turn_seconds, turn_requests, commit_writes, sync_seconds, checkpoint_seconds;
    int journal[2];                       //  transfers: the live generation, the frozen one
    int checkpoint_state[S_STATE_COUNT];  //  one series per checkpoint_state_t, 1 for the state
    uint64_t turn_replies;                //  replies of the current turn
    int results_series[2][S_RESULTS_MAX]; //  [create_transfers?][result]
    uint64_t results[2][S_RESULTS_MAX];
    uint64_t transfers_created;
    int64_t slow_next_ms;
    int64_t started_ms;
    int64_t last_checkpoint_ms;
    uint64_t checkpoints_seen;
    rl_in_doubt_rec_t *in_doubt; //  RL_IN_DOUBT_RECORDS_MAX
    bool registry;               //  --metrics-bind: the registry is updated and served
    //  The status figures (STATUS FIGURES above).
    uint32_t window[S_WINDOW_BUCKETS]; //  turns of the current second, by duration
    uint64_t window_turns;
    int64_t window_end_ms;
    uint32_t turn_p99_us;        //  of the last full second
    uint64_t in_doubt_oldest_ns; //  created (wall clock) of the oldest prepared record; 0: none
    bool in_doubt_listed;        //  listed since records are in doubt
    //  Replication (with --standby): the quorum, stalled, and each
    //  standby's acknowledged position, labelled by its endpoint.
    int repl_quorum, repl_stalled, repl_quorum_position, repl_position_family;
    int repl_position[REPLICA_STANDBYS_MAX]; //  S_UNSET until first set
};

//  The bucket of a duration: exact below S_WINDOW_SUBS us, then
//  S_WINDOW_SUBS buckets per power of two.
static size_t
s_window_bucket (uint32_t us)
{
    if (us < S_WINDOW_SUBS) {
        return us;
    }
    unsigned msb = 31u - (unsigned) __builtin_clz (us); //  >= 3
    unsigned shift = msb - 3u;
    size_t sub = (us >> shift) & (S_WINDOW_SUBS - 1);
    size_t bucket = S_WINDOW_SUBS + (size_t) shift * S_WINDOW_SUBS + sub;
    assert (bucket < S_WINDOW_BUCKETS);
    return bucket;
}

//  The largest duration of a bucket, us.
static uint32_t
s_window_upper (size_t bucket)
{
    assert (bucket < S_WINDOW_BUCKETS);
    if (bucket < S_WINDOW_SUBS) {
        return (uint32_t) bucket;
    }
    unsigned shift = (unsigned) ((bucket - S_WINDOW_SUBS) / S_WINDOW_SUBS);
    uint64_t lower = (uint64_t) (S_WINDOW_SUBS + (bucket - S_WINDOW_SUBS) % S_WINDOW_SUBS) << shift;
    uint64_t upper = lower + ((uint64_t) 1 << shift) - 1;
    return upper > UINT32_MAX ? UINT32_MAX : (uint32_t) upper;
}

//  Ends the current second: keeps its p99 (0 without turns), empties it.
static void
s_window_roll (shard_metrics_t *self)
{
    uint64_t rank = (self->window_turns * 99 + 99) / 100; //  ceil (0.99 n)
    uint64_t seen = 0;
    self->turn_p99_us = 0;
    for (size_t b = 0; rank > 0 && b < S_WINDOW_BUCKETS; b++) {
        seen += self->window[b];
        if (seen >= rank) {
            self->turn_p99_us = s_window_upper (b);
            break;
        }
    }
    memset (self->window, 0, sizeof self->window);
    self->window_turns = 0;
}

//  The registry's families and series (only with --metrics-bind). -1 when
//  memory ran out.
static int
s_register (shard_metrics_t *self)
{
    metrics_t *m = self->metrics;
    metrics_scalars (m, s_scalars, S_SCALAR_COUNT, self->scalar);
    self->info = metrics_family (m, METRICS_GAUGE, "ringledger_shard_info",
                                 "Constant 1, labelled with the shard's name and durability.", NULL,
                                 0);
    self->replies = metrics_replies_new (
        m, "ringledger_shard_requests_total",
        "Replies by operation and message status (clients, routers and peers).");
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
    self->turn_requests = metrics_series (
        m,
        metrics_family (m, METRICS_HISTOGRAM, "ringledger_shard_turn_requests",
                        "Requests answered per turn: a turn at its bound leaves requests "
                        "waiting in the socket.",
                        s_turn_bounds, sizeof s_turn_bounds / sizeof (double)),
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
    int journal = metrics_family (m, METRICS_GAUGE, "ringledger_shard_journal_transfers",
                                  "Transfers in the journal since the last checkpoint: the live "
                                  "generation, and the frozen one a checkpoint is writing.",
                                  NULL, 0);
    self->journal[0] = metrics_series (m, journal, "generation=\"live\"");
    self->journal[1] = metrics_series (m, journal, "generation=\"frozen\"");
    int state = metrics_family (m, METRICS_GAUGE, "ringledger_shard_checkpoint_state",
                                "The background checkpoint's state: 1 for the current one.", NULL,
                                0);
    for (size_t i = 0; i < S_STATE_COUNT; i++) {
        char labels[METRICS_LABELS_SIZE_MAX];
        snprintf (labels, sizeof labels, "state=\"%s\"", s_state_names[i]);
        self->checkpoint_state[i] = metrics_series (m, state, labels);
    }
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < S_RESULTS_MAX; j++) {
            self->results_series[i][j] = S_UNSET;
        }
    }
    self->repl_quorum = self->repl_stalled = self->repl_quorum_position = S_UNSET;
    self->repl_position_family = S_UNSET;
    for (size_t i = 0; i < REPLICA_STANDBYS_MAX; i++) {
        self->repl_position[i] = S_UNSET;
    }
    return self->replies ? 0 : -1;
}

shard_metrics_t *
shard_metrics_new (const char *bind)
{
    shard_metrics_t *self = calloc (1, sizeof (*self));
    if (!self) {
        rl_error ("out of memory");
        return NULL;
    }
    self->started_ms = self->last_checkpoint_ms = zclock_mono ();
    self->window_end_ms = self->started_ms + S_WINDOW_MS;
    self->in_doubt = calloc (RL_IN_DOUBT_RECORDS_MAX, sizeof (rl_in_doubt_rec_t));
    if (!self->in_doubt) {
        rl_error ("out of memory");
        shard_metrics_destroy (&self);
        return NULL;
    }
    if (!bind) {
        return self; //  the status figures alone
    }
    self->registry = true;
    self->metrics = metrics_new ();
    if (!self->metrics || s_register (self) != 0) {
        rl_error ("out of memory");
        shard_metrics_destroy (&self);
        return NULL;
    }
    char err[256];
    self->http = metrics_http_new (bind, self->metrics, err, sizeof err);
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
    metrics_replies_destroy (&self->replies);
    metrics_destroy (&self->metrics);
    free (self->in_doubt);
    free (self);
    *self_p = NULL;
}

void
shard_metrics_reply (shard_metrics_t *self, uint32_t operation, uint32_t status)
{
    if (self && self->registry) {
        metrics_replies_count (self->replies, operation, status);
        self->turn_replies++;
    }
}

void
shard_metrics_results (shard_metrics_t *self, uint32_t operation, const rl_result_rec_t *results,
                       size_t count)
{
    if (!self || !self->registry) {
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
    if (!self) {
        return;
    }
    uint32_t us = turn_us < 0 ? 0 : (turn_us > UINT32_MAX ? UINT32_MAX : (uint32_t) turn_us);
    self->window[s_window_bucket (us)]++;
    self->window_turns++;
    if (self->registry) {
        metrics_observe (self->metrics, self->turn_seconds, (double) turn_us / 1e6);
        metrics_observe (self->metrics, self->turn_requests, (double) self->turn_replies);
        self->turn_replies = 0;
    }
}

void
shard_metrics_commit (shard_metrics_t *self, size_t writes, int64_t sync_us)
{
    if (self && self->registry) {
        metrics_observe (self->metrics, self->commit_writes, (double) writes);
        metrics_observe (self->metrics, self->sync_seconds, (double) sync_us / 1e6);
    }
}

void
shard_metrics_checkpoint (shard_metrics_t *self, int64_t checkpoint_us)
{
    if (self && self->registry) {
        metrics_observe (self->metrics, self->checkpoint_seconds, (double) checkpoint_us / 1e6);
    }
}

static void
s_set (shard_metrics_t *self, int which, double value)
{
    metrics_set (self->metrics, self->scalar[which], value);
}

//  The labelled counters: replies, and results at their first non-zero count.
static void
s_labelled (shard_metrics_t *self)
{
    metrics_replies_update (self->replies);
    char labels[METRICS_LABELS_SIZE_MAX];
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

//  Once a second, while records are in doubt: the oldest prepared one
//  (participant role) among those listed.
static void
s_oldest_in_doubt (shard_metrics_t *self, server_t *server, uint64_t in_doubt)
{
    self->in_doubt_oldest_ns = 0;
    self->in_doubt_listed = in_doubt > 0;
    if (in_doubt == 0) {
        return;
    }
    size_t count = ledger_in_doubt (server->ledger, self->in_doubt, RL_IN_DOUBT_RECORDS_MAX);
    for (size_t i = 0; i < count; i++) {
        const rl_prepare_rec_t *p = &self->in_doubt[i].prepare;
        uint64_t created_ns = p->reserved[0];
        if (p->reserved[1] == RL_ROLE_PARTICIPANT && created_ns > 0
            && (self->in_doubt_oldest_ns == 0 || created_ns < self->in_doubt_oldest_ns)) {
            self->in_doubt_oldest_ns = created_ns;
        }
    }
}

//  Age of the oldest prepared record at now_ns, seconds (0: none).
static double
s_oldest_age_s (const shard_metrics_t *self, uint64_t now_ns)
{
    uint64_t created_ns = self->in_doubt_oldest_ns;
    return created_ns && created_ns < now_ns ? (double) (now_ns - created_ns) / 1e9 : 0;
}

void
shard_metrics_status (const shard_metrics_t *self, rl_status_rec_t *status)
{
    assert (status);
    if (!self) {
        return;
    }
    status->turn_p99_us = self->turn_p99_us;
    double age_ms = status->in_doubt ? s_oldest_age_s (self, now_read ().wall_ns) * 1e3 : 0;
    status->in_doubt_oldest_ms = age_ms >= UINT32_MAX ? UINT32_MAX : (uint32_t) age_ms;
}

//  Once a second: RocksDB and the disk.
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
    s_set (self, S_WAL_SIZE, (double) store_wal_size (store));
    struct statvfs fs;
    if (statvfs (server->options->data_dir, &fs) == 0) {
        s_set (self, S_DISK_FREE, (double) fs.f_bavail * (double) fs.f_frsize);
        s_set (self, S_DISK_SIZE, (double) fs.f_blocks * (double) fs.f_frsize);
    }
    //  A peer's DEALER that cannot take a message: its queue is at the
    //  high-water mark (the peer is slow or gone), and sends are dropped.
    size_t blocked = 0;
    for (size_t i = 0; i < peers_count (server->peers); i++) {
        blocked += !(zsock_events (peers_socket (server->peers, i)) & ZMQ_POLLOUT);
    }
    s_set (self, S_PEERS_BLOCKED, (double) blocked);
}

//  The journal's fill and the background checkpoint's state.
static void
s_checkpoint (shard_metrics_t *self, server_t *server)
{
    size_t live = 0, frozen = 0, checkpoint_transfers = 0;
    ledger_journal_fill (server->ledger, &live, &frozen, &checkpoint_transfers);
    metrics_set (self->metrics, self->journal[0], (double) live);
    metrics_set (self->metrics, self->journal[1], (double) frozen);
    s_set (self, S_CHECKPOINT_TRANSFERS, (double) checkpoint_transfers);
    checkpoint_state_t state = ledger_checkpoint_state (server->ledger);
    for (size_t i = 0; i < S_STATE_COUNT; i++) {
        metrics_set (self->metrics, self->checkpoint_state[i], (size_t) state == i ? 1 : 0);
    }
}

//  The replication gauges (docs/metrics.md), registered at their first
//  use: a shard without --standby shows none.
static void
s_replication (shard_metrics_t *self, server_t *server)
{
    if (!server->replica) {
        return;
    }
    metrics_t *m = self->metrics;
    if (self->repl_quorum == S_UNSET) {
        self->repl_quorum = metrics_series (
            m,
            metrics_family (m, METRICS_GAUGE, "ringledger_shard_repl_quorum",
                            "Standbys' acknowledgements a write waits for (--repl-quorum).", NULL,
                            0),
            "");
        self->repl_stalled = metrics_series (
            m,
            metrics_family (m, METRICS_GAUGE, "ringledger_shard_repl_stalled",
                            "1 while the primary is stalled: fewer than the quorum of standbys "
                            "acknowledged or renewed the lease within --repl-timeout-ms.",
                            NULL, 0),
            "");
        self->repl_quorum_position = metrics_series (
            m,
            metrics_family (m, METRICS_GAUGE, "ringledger_shard_repl_quorum_position",
                            "The quorum-th highest position acknowledged: every event up to it "
                            "is on the disks of a quorum of standbys.",
                            NULL, 0),
            "");
        self->repl_position_family = metrics_family (
            m, METRICS_GAUGE, "ringledger_shard_repl_standby_position",
            "Each standby's acknowledged position in the primary's stream (0 when not "
            "streaming).",
            NULL, 0);
    }
    rl_repl_rec_t recs[1 + REPLICA_STANDBYS_MAX];
    size_t count = replica_describe (server->replica, recs, 1 + REPLICA_STANDBYS_MAX);
    metrics_set (m, self->repl_quorum, (double) recs[0].quorum);
    metrics_set (m, self->repl_stalled, (recs[0].flags & RL_REPL_FLAG_STALLED) ? 1.0 : 0.0);
    metrics_set (m, self->repl_quorum_position, (double) recs[0].quorum_position);
    for (size_t i = 1; i < count; i++) {
        if (self->repl_position[i - 1] == S_UNSET) {
            char endpoint[METRICS_LABELS_SIZE_MAX - 12];
            size_t n = 0;
            for (const char *c = recs[i].endpoint; *c && n + 1 < sizeof endpoint; c++) {
                if (*c != '"' && *c != '\\' && *c != '\n') {
                    endpoint[n++] = *c; //  a label value: no quote, backslash or newline
                }
            }
            endpoint[n] = '\0';
            char labels[METRICS_LABELS_SIZE_MAX];
            snprintf (labels, sizeof labels, "standby=\"%s\"", endpoint);
            self->repl_position[i - 1] = metrics_series (m, self->repl_position_family, labels);
        }
        metrics_set (m, self->repl_position[i - 1], (double) recs[i].position);
    }
}

void
shard_metrics_tick (shard_metrics_t *self, server_t *server)
{
    if (!self) {
        return;
    }
    assert (server);
    int64_t now_ms = zclock_mono ();
    if (now_ms >= self->window_end_ms) {
        s_window_roll (self);
        self->window_end_ms = now_ms + S_WINDOW_MS;
    }
    uint64_t live = 0, decided = 0, coordinator_alarms = 0, in_doubt = 0, participant_alarms = 0;
    coordinator_counts (ledger_coordinator (server->ledger), &live, &decided, &coordinator_alarms);
    participant_counts (ledger_participant (server->ledger), &in_doubt, &participant_alarms);
    bool slow = now_ms >= self->slow_next_ms;
    if (slow) {
        self->slow_next_ms = now_ms + S_SLOW_PERIOD_MS;
    }
    //  Listed once a second, and at once when records come into doubt.
    if (slow || in_doubt == 0 || !self->in_doubt_listed) {
        s_oldest_in_doubt (self, server, in_doubt);
    }
    if (!self->registry) {
        return; //  no --metrics-bind: the status figures alone
    }
    if (slow) {
        s_slow (self, server);
    }
    s_set (self, S_REQUESTS_RECEIVED, (double) server->requests);
    s_set (self, S_COMMITS, (double) server->commits);
    s_set (
        self, S_DROPPED,
        (double) (server->dropped + replyq_gone (server->replies) + replyq_full (server->replies)));
    s_set (self, S_MALFORMED, (double) server->malformed);
    s_set (self, S_WRONG_SHARD, (double) server->wrong_shard);
    s_set (self, S_UNAUTHORIZED, (double) server->unauthorized);
    s_set (self, S_HANDSHAKES_REFUSED, (double) rl_auth_refused (server->auth));
    s_set (self, S_EPOCH_JUMPS_REFUSED, (double) server->epoch_jumps_refused);
    s_set (self, S_REPLY_QUEUE_FULL, (double) replyq_full (server->replies));
    uint64_t checkpoints = ledger_checkpoint_count (server->ledger);
    if (checkpoints != self->checkpoints_seen) {
        self->checkpoints_seen = checkpoints;
        self->last_checkpoint_ms = now_ms;
    }
    s_set (self, S_CHECKPOINTS, (double) checkpoints);
    s_set (self, S_LAST_CHECKPOINT_AGE, (double) (now_ms - self->last_checkpoint_ms) / 1e3);
    s_set (self, S_ACCOUNTS, (double) ledger_account_count (server->ledger));
    s_set (self, S_TRANSFERS, (double) ledger_transfer_count (server->ledger));
    s_set (self, S_LIVE_ATTEMPTS, (double) live);
    s_set (self, S_UNACKED_DECISIONS, (double) decided);
    s_set (self, S_IN_DOUBT, (double) in_doubt);
    s_set (self, S_ALARMS, (double) (coordinator_alarms + participant_alarms));
    s_set (self, S_IN_DOUBT_OLDEST, s_oldest_age_s (self, now_read ().wall_ns));
    s_set (self, S_REQUESTS_WAITING,
           (double) coordinator_requests_waiting (ledger_coordinator (server->ledger)));
    s_checkpoint (self, server);
    s_replication (self, server);
    events_stats_t events;
    events_stats (server, &events);
    s_set (self, S_EVENTS_READS, (double) events.reads);
    s_set (self, S_EVENTS_SERVED, (double) events.events);
    s_set (self, S_EVENTS_BAD_POSITIONS, (double) events.bad_positions);
    s_set (self, S_EVENTS_RESYNCS, (double) events.resyncs);
    s_set (self, S_EVENTS_NOTES, (double) events.notes);
    s_set (self, S_EVENTS_HEARTBEATS, (double) events.heartbeats);
    ledger_payments_t payments;
    ledger_payments (server->ledger, &payments);
    s_set (self, S_PENDING, (double) ledger_pending_count (server->ledger));
    s_set (self, S_PENDING_CREATED, (double) payments.pending);
    s_set (self, S_PENDING_POSTED, (double) payments.posted);
    s_set (self, S_PENDING_VOIDED, (double) payments.voided);
    s_set (self, S_PENDING_EXPIRED, (double) payments.expired);
    s_set (self, S_CHAINS_COMMITTED, (double) payments.chains_committed);
    s_set (self, S_CHAINS_FAILED, (double) payments.chains_failed);
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
    //  A stalled semi-synchronous primary answers every write and read
    //  busy: not ready, with the reason.
    bool stalled = server->replica && replica_stalled (server->replica);
    bool ready = !server->failed && index >= 0 && !stalled;
    s_set (self, S_READY, ready ? 1 : 0);
    metrics_set_ready (self->metrics, ready,
                       server->failed ? "store FAILED: restart the shard"
                       : index < 0    ? "the ring does not name this shard"
                       : stalled && replica_older (server->replica)
                           ? "replication stalled: a standby holds a copy this data does not "
                             "descend from (promote it, or wipe it; docs/replication.md)"
                       : stalled ? "replication stalled: fewer standbys than the quorum "
                                   "stream (writes and reads answer busy; docs/replication.md)"
                                 : "");
    metrics_publish (self->metrics);
}
