/*  router_metrics.c: what a router tells Prometheus (docs/metrics.md).

    The loop counts replies by operation and status and observes the
    latency of every request admitted into the table (from admission to
    the reply), by operation, into the registry's WORK copy
    (common/metrics.c). Once per tick router_metrics_tick copies the
    router's counters (those of its status record) and gauges (requests
    and sub-requests in flight, bytes held, ring) and publishes the
    snapshot the HTTP thread serves.

    INVARIANTS
    1. Everything here runs on the loop thread.
    2. Ready (/readyz) means: the loop runs and holds a ring with at least
       one shard (it started only after fetching or loading one).

    LIMITS: operations and statuses of at most METRICS_CODES_MAX (the
    replies counter of common/metrics.h), latencies of operations below
    S_CODES_MAX (larger ones under operation 0).
*/
#include "router_metrics.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include <czmq.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "router.h"

#define S_CODES_MAX METRICS_CODES_MAX
#define S_UNSET     (-2)

static const double s_seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};

enum {
    S_REQUESTS_RECEIVED,
    S_DROPPED,
    S_MALFORMED,
    S_WRONG_SHARD,
    S_UNAUTHORIZED,
    S_LATE,
    S_BAD_REPLIES,
    S_EXPIRED_SUBS,
    S_BUSY,
    S_NOMEM,
    S_REFRESHES,
    S_DEADLINE_ERRORS,
    S_HANDSHAKES_REFUSED,
    S_EPOCH_JUMPS_REFUSED,
    S_REPLY_QUEUE_FULL,
    S_PENDING,
    S_PENDING_BYTES,
    S_SUBS,
    S_WAITING,
    S_EPOCH,
    S_RING_SHARDS,
    S_READY,
    S_UPTIME,
    S_SCALAR_COUNT
};

static const metrics_scalar_t s_scalars[S_SCALAR_COUNT] = {
    [S_REQUESTS_RECEIVED] = {METRICS_COUNTER, "ringledger_router_requests_received_total",
                             "Client requests received."},
    [S_DROPPED] = {METRICS_COUNTER, "ringledger_router_dropped_total",
                   "Client frames too short, and replies not deliverable."},
    [S_MALFORMED] = {METRICS_COUNTER, "ringledger_router_malformed_total",
                     "Requests answered with a message-level error by the router."},
    [S_WRONG_SHARD] = {METRICS_COUNTER, "ringledger_router_wrong_shard_total",
                       "Records (reads: sub-requests) answered wrong_shard."},
    [S_UNAUTHORIZED] = {METRICS_COUNTER, "ringledger_router_unauthorized_total",
                        "Requests refused: the key lacks the role."},
    [S_LATE] = {METRICS_COUNTER, "ringledger_router_late_replies_total",
                "Shard replies to expired or freed sub-requests."},
    [S_BAD_REPLIES] = {METRICS_COUNTER, "ringledger_router_bad_replies_total",
                       "Shard replies that did not decode or match."},
    [S_EXPIRED_SUBS] = {METRICS_COUNTER, "ringledger_router_expired_subrequests_total",
                        "Sub-requests that got no answer in time."},
    [S_BUSY] = {METRICS_COUNTER, "ringledger_router_busy_total", "Requests answered busy."},
    [S_NOMEM] = {METRICS_COUNTER, "ringledger_router_allocation_failures_total",
                 "Allocations that failed."},
    [S_REFRESHES] = {METRICS_COUNTER, "ringledger_router_ring_refreshes_total",
                     "Rings fetched from a shard."},
    [S_DEADLINE_ERRORS] = {METRICS_COUNTER, "ringledger_router_deadline_errors_total",
                           "Shard status polls whose deadline broke the order of timeouts."},
    [S_HANDSHAKES_REFUSED] = {METRICS_COUNTER, "ringledger_router_handshakes_refused_total",
                              "CURVE handshakes refused (unknown keys)."},
    [S_EPOCH_JUMPS_REFUSED] = {METRICS_COUNTER, "ringledger_router_epoch_jumps_refused_total",
                               "Rings fetched and refused: epoch beyond --max-epoch-jump."},
    [S_REPLY_QUEUE_FULL] = {METRICS_COUNTER, "ringledger_router_reply_queue_full_total",
                            "Replies dropped: the connection's --reply-queue-bytes reached."},
    [S_PENDING] = {METRICS_GAUGE, "ringledger_router_pending_requests",
                   "Client requests in progress (queue depth)."},
    [S_PENDING_BYTES] = {METRICS_GAUGE, "ringledger_router_pending_bytes",
                         "Bytes held for requests in progress."},
    [S_SUBS] = {METRICS_GAUGE, "ringledger_router_subrequests_in_flight",
                "Sub-requests sent to shards, not yet answered."},
    [S_WAITING] = {METRICS_GAUGE, "ringledger_router_records_waiting",
                   "Records waiting for a newer ring."},
    [S_EPOCH] = {METRICS_GAUGE, "ringledger_ring_epoch", "Epoch of the ring served."},
    [S_RING_SHARDS] = {METRICS_GAUGE, "ringledger_ring_shards", "Shards in the ring served."},
    [S_READY] = {METRICS_GAUGE, "ringledger_ready", "1 when /readyz answers ready."},
    [S_UPTIME] = {METRICS_GAUGE, "ringledger_uptime_seconds", "Seconds since the loop started."},
};

struct router_metrics_t {
    metrics_t *metrics;
    metrics_http_t *http;
    int scalar[S_SCALAR_COUNT];
    metrics_replies_t *replies;
    int duration_family;
    int duration_series[S_CODES_MAX];
    int64_t started_ms;
};

router_metrics_t *
router_metrics_new (const char *bind)
{
    assert (bind);
    router_metrics_t *self = calloc (1, sizeof (*self));
    if (!self || !(self->metrics = metrics_new ())) {
        rl_error ("out of memory");
        free (self);
        return NULL;
    }
    metrics_t *m = self->metrics;
    metrics_scalars (m, s_scalars, S_SCALAR_COUNT, self->scalar);
    self->replies = metrics_replies_new (m, "ringledger_router_requests_total",
                                         "Replies to clients by operation and message status.");
    if (!self->replies) {
        rl_error ("out of memory");
        router_metrics_destroy (&self);
        return NULL;
    }
    self->duration_family = metrics_family (
        m, METRICS_HISTOGRAM, "ringledger_router_request_duration_seconds",
        "Client requests from admission to the reply, by operation: the cluster's latency.",
        s_seconds_bounds, sizeof s_seconds_bounds / sizeof (double));
    for (size_t i = 0; i < S_CODES_MAX; i++) {
        self->duration_series[i] = S_UNSET;
    }
    //  The latency of the writes exists from the start, so that rules and
    //  dashboards find it before the first request.
    router_metrics_request (self, RL_OP_CREATE_TRANSFERS, -1);
    self->started_ms = zclock_mono ();
    char err[256];
    self->http = metrics_http_new (bind, m, err, sizeof err);
    if (!self->http) {
        rl_error ("--metrics-bind: %s", err);
        router_metrics_destroy (&self);
        return NULL;
    }
    return self;
}

void
router_metrics_destroy (router_metrics_t **self_p)
{
    assert (self_p);
    router_metrics_t *self = *self_p;
    if (!self) {
        return;
    }
    metrics_http_destroy (&self->http); //  first: its thread reads the registry
    metrics_replies_destroy (&self->replies);
    metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

void
router_metrics_reply (router_metrics_t *self, uint32_t operation, uint32_t status)
{
    if (self) {
        metrics_replies_count (self->replies, operation, status);
    }
}

void
router_metrics_request (router_metrics_t *self, uint32_t operation, int64_t duration_us)
{
    if (!self) {
        return;
    }
    uint32_t op = operation < S_CODES_MAX ? operation : 0;
    if (self->duration_series[op] == S_UNSET) {
        char labels[METRICS_LABELS_SIZE_MAX];
        snprintf (labels, sizeof labels, "operation=\"%s\"", rl_op_name (op));
        self->duration_series[op] = metrics_series (self->metrics, self->duration_family, labels);
    }
    if (duration_us >= 0) {
        metrics_observe (self->metrics, self->duration_series[op], (double) duration_us / 1e6);
    }
}

static void
s_set (router_metrics_t *self, int which, double value)
{
    metrics_set (self->metrics, self->scalar[which], value);
}

void
router_metrics_tick (router_metrics_t *self, router_t *router)
{
    if (!self) {
        return;
    }
    assert (router);
    s_set (self, S_REQUESTS_RECEIVED, (double) router->requests);
    s_set (
        self, S_DROPPED,
        (double) (router->dropped + replyq_gone (router->replies) + replyq_full (router->replies)));
    s_set (self, S_MALFORMED, (double) router->malformed);
    s_set (self, S_WRONG_SHARD, (double) router->wrong_shard);
    s_set (self, S_UNAUTHORIZED, (double) router->unauthorized);
    s_set (self, S_LATE, (double) router->late);
    s_set (self, S_BAD_REPLIES, (double) router->bad_replies);
    s_set (self, S_EXPIRED_SUBS, (double) router->expired_subs);
    s_set (self, S_BUSY, (double) router->busy);
    s_set (self, S_NOMEM, (double) router->nomem);
    s_set (self, S_REFRESHES, (double) router->refreshes);
    s_set (self, S_DEADLINE_ERRORS, (double) router->deadline_errors);
    s_set (self, S_HANDSHAKES_REFUSED, (double) rl_auth_refused (router->auth));
    s_set (self, S_EPOCH_JUMPS_REFUSED, (double) router->epoch_jumps_refused);
    s_set (self, S_REPLY_QUEUE_FULL, (double) replyq_full (router->replies));
    s_set (self, S_PENDING, (double) (RL_ROUTER_PENDING_MAX - router->pending_free_count));
    s_set (self, S_PENDING_BYTES, (double) router->pending_bytes);
    s_set (self, S_SUBS, (double) (RL_ROUTER_SUBS_MAX - router->sub_free_count));
    s_set (self, S_WAITING, (double) router->waiting_total);
    s_set (self, S_EPOCH, router->ring ? (double) ring_epoch (router->ring) : 0);
    s_set (self, S_RING_SHARDS, (double) router->shard_count);
    s_set (self, S_UPTIME, (double) (zclock_mono () - self->started_ms) / 1e3);
    metrics_replies_update (self->replies);
    bool ready = router->ring && router->shard_count > 0;
    s_set (self, S_READY, ready ? 1 : 0);
    metrics_set_ready (self->metrics, ready, ready ? "" : "no ring");
    metrics_publish (self->metrics);
}
