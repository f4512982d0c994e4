/*  rlbench_report.c: the end of a run of rlbench: the conservation check
    and the report (bench/README.md, "Harness").

    The check is the project's one conservation check (common/check.h),
    fed by the engine with every outcome, and asked of each account's own
    shard when the ring is known (else of the first endpoint). rlbench adds
    one check of its own: the shards' status counts at least as many
    applied transfers as were acknowledged during the run. The report is a
    text summary, or one JSON object on one line (--json) built with cJSON.

    INVARIANTS
    1. "passed" is printed only when every step of the check passed.
    2. A run that lost an outcome (no memory to record it) fails the check.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonkit.h"
#include "rlbench.h"

//  The check ---------------------------------------------------------------------

//  The clients the check asks: one per shard of the ring, and the first
//  endpoint for accounts of no known shard.
typedef struct {
    const bench_t *b;
    rl_client_t *shards[RLB_SHARDS_MAX];
    rl_client_t *first;
} s_clients_t;

static rl_client_t *
s_client_for (void *arg, rl_id_t account_id)
{
    s_clients_t *clients = arg;
    int k = rlb_shard_of_id (clients->b, account_id);
    if (k >= 0 && (size_t) k < clients->b->shard_count && clients->shards[k]) {
        return clients->shards[k];
    }
    return clients->first;
}

//  The shards applied at least what they acknowledged to us.
static bool
s_check_applied_by_status (bench_t *b)
{
    if (!b->status_complete || rlb_read_status (b, true) != b->shard_count) {
        return true; //  not every shard answered: nothing to compare
    }
    uint64_t applied = 0;
    for (size_t i = 0; i < b->shard_count; i++) {
        applied += b->shards[i].after.transfers - b->shards[i].before.transfers;
    }
    uint64_t ours = rl_check_applied_count (b->check) - b->setup_ok
                    - (b->o.limits ? b->o.accounts : 0);
    if (applied < ours) {
        fprintf (stderr,
                 "rlbench: CHECK: the shards applied %" PRIu64 " transfers, fewer than the %" PRIu64
                 " acknowledged\n",
                 applied, ours);
        return false;
    }
    return true;
}

bool
rlb_check (bench_t *b)
{
    if (b->model_lost) {
        fprintf (stderr, "rlbench: CHECK: out of memory recording unknown outcomes\n");
        return false;
    }
    if (b->resolve_lost) {
        fprintf (stderr, "rlbench: CHECK: a pending transfer was left unresolved\n");
        return false;
    }
    s_clients_t clients = {.b = b, .first = rl_client_new (b->o.endpoints[0])};
    const char *endpoints[RLB_SHARDS_MAX];
    bool ok = clients.first != NULL;
    for (size_t i = 0; i < b->shard_count; i++) {
        endpoints[i] = b->shards[i].endpoint;
        if (b->ring && b->shards[i].reached) {
            clients.shards[i] = rl_client_new (b->shards[i].endpoint);
            ok = ok && clients.shards[i];
        }
    }
    if (!ok || b->shard_count == 0) {
        fprintf (stderr, "rlbench: CHECK: cannot connect to the cluster\n");
    } else {
        rl_check_options_t options = {
            .shard_endpoints = endpoints,
            .shard_count = b->shard_count,
            .client_for = s_client_for,
            .client_arg = &clients,
            .timeout_ms = RLB_ADMIN_TIMEOUT_MS,
            .quiet_timeout_ms = RLB_QUIESCE_TIMEOUT_MS,
            .ok_min = 1,
            .history = b->o.history == HISTORY_ON
                       || (b->o.history == HISTORY_AUTO
                           && b->o.accounts <= RLB_HISTORY_AUTO_ACCOUNTS_MAX),
            .report = stderr,
            .prefix = "rlbench: CHECK: ",
        };
        ok = rl_check_run (b->check, &options);
        ok = s_check_applied_by_status (b) && ok;
    }
    rl_client_destroy (&clients.first);
    for (size_t i = 0; i < b->shard_count; i++) {
        rl_client_destroy (&clients.shards[i]);
    }
    return ok;
}

//  Report --------------------------------------------------------------------
static double
s_measured_s (const bench_t *b)
{
    uint64_t end = b->o.mode == MODE_CLOSED && b->last_reply_ns > b->measure_end_ns
                       ? b->last_reply_ns
                       : b->measure_end_ns;
    return end > b->measure_start_ns ? (double) (end - b->measure_start_ns) / 1e9 : 0;
}

static bool
s_valid (const bench_t *b)
{
    return b->o.mode != MODE_OPEN
           || (double) b->sent_requests >= RLB_INVALID_SENT_FRACTION * (double) b->offered_requests;
}

static double
s_cross_fraction (const bench_t *b)
{
    return b->sent_transfers_measured
               ? (double) b->cross_sent_measured / (double) b->sent_transfers_measured
               : 0;
}

void
rlb_report_text (const bench_t *b, const char *check)
{
    FILE *out = stdout;
    double secs = s_measured_s (b);
    double tps = secs > 0 ? (double) b->ok_measured / secs : 0;
    double rps = secs > 0
                     ? (double) (b->create_requests_measured + b->lookup_requests_measured) / secs
                     : 0;
    fprintf (out, "\n== rlbench summary\n");
    fprintf (out,
             "mode           %s, batch %u, connections %d, window %d, accounts %" PRIu64
             " (%s%s), seed %" PRIu64 "\n",
             b->o.mode == MODE_CLOSED ? "closed loop" : "open loop", b->o.batch, b->o.connections,
             b->window, b->o.accounts, b->o.workload == WORKLOAD_ZIPF ? "zipf" : "uniform",
             b->o.limits ? ", limits" : "", b->o.seed);
    fprintf (out, "durability     %s:", rlb_durability_summary (b));
    for (size_t i = 0; i < b->shard_count; i++) {
        fprintf (out, " %s=%s", b->shards[i].name[0] ? b->shards[i].name : b->shards[i].endpoint,
                 b->shards[i].reached ? rlb_durability_name (b->shards[i].durability) : "?");
    }
    fprintf (out, "\n");
    if (b->probe_done) {
        fprintf (out,
                 "disk           4 KiB write + fdatasync: p50 %.3f ms, p99 %.3f ms (%d writes)\n",
                 b->probe_p50_ms, b->probe_p99_ms, b->probe_done);
    }
    fprintf (out,
             "throughput     %.0f transfers/s ok, %.0f requests/s (%.2f s measured after %.1f s "
             "warm-up)\n",
             tps, rps, secs, b->o.warmup_s);
    if (b->o.mode == MODE_OPEN) {
        double offered_tps = secs > 0 ? (double) b->offered_requests * b->o.batch / secs : 0;
        double sent_tps = secs > 0 ? (double) b->sent_requests * b->o.batch / secs : 0;
        fprintf (out,
                 "open loop      offered %.0f transfers/s (rate %.0f), sent %.0f/s (%.1f%%), "
                 "generator lag p99 %.3f ms, max %.3f ms%s\n",
                 offered_tps, b->o.rate, sent_tps,
                 b->offered_requests ? 100.0 * b->sent_requests / b->offered_requests : 0,
                 hist_ms (&b->lag, 0.99), hist_max_ms (&b->lag),
                 s_valid (b) ? ""
                             : "  ** INVALID: fewer than 99% of the offered requests were sent **");
    }
    fprintf (out,
             "latency ms     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%" PRIu64
             " create requests%s)\n",
             hist_ms (&b->latency, 0.5), hist_ms (&b->latency, 0.9), hist_ms (&b->latency, 0.99),
             hist_ms (&b->latency, 0.999), hist_max_ms (&b->latency), b->latency.total,
             b->o.mode == MODE_OPEN ? ", from the intended send time" : "");
    if (b->lookup_latency.total) {
        fprintf (out,
                 "lookup ms      p50 %.3f  p99 %.3f  max %.3f  (%" PRIu64 " lookup requests)\n",
                 hist_ms (&b->lookup_latency, 0.5), hist_ms (&b->lookup_latency, 0.99),
                 hist_max_ms (&b->lookup_latency), b->lookup_latency.total);
    }
    if (b->o.transfer_pending > 0) {
        fprintf (out,
                 "pending        %.0f%% of new transfers: %" PRIu64 " authorised (%" PRIu64
                 " cross-shard), %" PRIu64 " posted, %" PRIu64 " voided (all of the run)\n",
                 b->o.transfer_pending, b->pending_ok, b->pending_cross_ok, b->posts_ok,
                 b->voids_ok);
    }
    fprintf (out, "results       ");
    for (int r = 0; r < 256; r++) {
        if (b->results[r]) {
            fprintf (out, " %s=%" PRIu64, rl_result_name ((uint32_t) r), b->results[r]);
        }
    }
    if (b->results_other) {
        fprintf (out, " (undefined codes)=%" PRIu64, b->results_other);
    }
    for (int s = 1; s < 32; s++) {
        if (b->statuses[s]) {
            fprintf (out, " status:%s=%" PRIu64, rl_status_name ((uint32_t) s), b->statuses[s]);
        }
    }
    fprintf (out, " timeouts=%" PRIu64 "\n", b->timeouts);
    if (b->ring) {
        fprintf (out, "cross-shard    %.4f of the transfers sent (%zu shard%s in the ring%s)\n",
                 s_cross_fraction (b), b->shard_count, b->shard_count == 1 ? "" : "s",
                 b->o.cross_fraction >= 0 ? "" : ", not steered");
    } else {
        fprintf (out, "cross-shard    unknown (no ring)\n");
    }
    fprintf (out,
             "check          %s (%" PRIu64
             " transfers acknowledged ok, %zu unknown settled: %" PRIu64 " applied, %" PRIu64
             " not)\n",
             check, rl_check_applied_count (b->check), rl_check_unknown_count (b->check),
             rl_check_settled_applied (b->check), rl_check_settled_absent (b->check));
}

static void
s_add_latency (cJSON *parent, const char *key, const hist_t *h)
{
    cJSON *latency = jsonkit_add_object (parent, key);
    jsonkit_add_fixed (latency, "p50", hist_ms (h, 0.5), 4);
    jsonkit_add_fixed (latency, "p90", hist_ms (h, 0.9), 4);
    jsonkit_add_fixed (latency, "p99", hist_ms (h, 0.99), 4);
    jsonkit_add_fixed (latency, "p999", hist_ms (h, 0.999), 4);
    jsonkit_add_fixed (latency, "max", hist_max_ms (h), 4);
    jsonkit_add_u64 (latency, "count", h->total);
}

//  The report as one JSON object on one line; 0, or -1 when out of memory.
int
rlb_report_json (const bench_t *b, const char *check)
{
    double secs = s_measured_s (b);
    double tps = secs > 0 ? (double) b->ok_measured / secs : 0;
    double rps = secs > 0
                     ? (double) (b->create_requests_measured + b->lookup_requests_measured) / secs
                     : 0;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "mode", b->o.mode == MODE_CLOSED ? "closed" : "open");
    jsonkit_add_u64 (tree, "batch", b->o.batch);
    jsonkit_add_number (tree, "connections", b->o.connections);
    jsonkit_add_number (tree, "window", b->window);
    jsonkit_add_u64 (tree, "accounts", b->o.accounts);
    jsonkit_add_string (tree, "workload", b->o.workload == WORKLOAD_ZIPF ? "zipf" : "uniform");
    jsonkit_add_bool (tree, "limits", b->o.limits);
    jsonkit_add_u64 (tree, "seed", b->o.seed);
    jsonkit_add_fixed (tree, "transfer_pending", b->o.transfer_pending, 1);
    jsonkit_add_u64 (tree, "pending_authorised", b->pending_ok);
    jsonkit_add_u64 (tree, "pending_cross_shard", b->pending_cross_ok);
    jsonkit_add_u64 (tree, "pending_posted", b->posts_ok);
    jsonkit_add_u64 (tree, "pending_voided", b->voids_ok);
    jsonkit_add_string (tree, "durability", rlb_durability_summary (b));
    cJSON *shards = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < b->shard_count; i++) {
        cJSON *shard = jsonkit_add_object (shards, NULL);
        jsonkit_add_string (shard, "name", b->shards[i].name);
        jsonkit_add_string (shard, "endpoint", b->shards[i].endpoint);
        jsonkit_add_string (shard, "durability",
                            b->shards[i].reached ? rlb_durability_name (b->shards[i].durability)
                                                 : "?");
    }
    jsonkit_add_fixed (tree, "fsync_p50_ms", b->probe_p50_ms, 4);
    jsonkit_add_fixed (tree, "fsync_p99_ms", b->probe_p99_ms, 4);
    jsonkit_add_number (tree, "fsync_writes", b->probe_done);
    jsonkit_add_fixed (tree, "seconds", secs, 3);
    jsonkit_add_fixed (tree, "transfers_per_s", tps, 1);
    jsonkit_add_fixed (tree, "requests_per_s", rps, 1);
    s_add_latency (tree, "latency_ms", &b->latency);
    if (b->o.mode == MODE_OPEN) {
        jsonkit_add_fixed (tree, "rate", b->o.rate, 1);
        jsonkit_add_fixed (tree, "offered_per_s",
                           secs > 0 ? (double) b->offered_requests * b->o.batch / secs : 0, 1);
        jsonkit_add_fixed (tree, "sent_per_s",
                           secs > 0 ? (double) b->sent_requests * b->o.batch / secs : 0, 1);
        jsonkit_add_fixed (tree, "lag_ms_p99", hist_ms (&b->lag, 0.99), 4);
        jsonkit_add_fixed (tree, "lag_ms_max", hist_max_ms (&b->lag), 4);
    }
    jsonkit_add_bool (tree, "valid", s_valid (b));
    cJSON *results = jsonkit_add_object (tree, "results");
    for (int r = 0; r < 256; r++) {
        if (b->results[r]) {
            jsonkit_add_u64 (results, rl_result_name ((uint32_t) r), b->results[r]);
        }
    }
    for (int st = 1; st < 32; st++) {
        if (b->statuses[st]) {
            char key[64];
            snprintf (key, sizeof key, "status:%s", rl_status_name ((uint32_t) st));
            jsonkit_add_u64 (results, key, b->statuses[st]);
        }
    }
    jsonkit_add_u64 (tree, "timeouts", b->timeouts);
    if (b->ring) {
        jsonkit_add_fixed (tree, "cross_fraction", s_cross_fraction (b), 4);
    } else {
        jsonkit_add_null (tree, "cross_fraction");
    }
    jsonkit_add_string (tree, "check", check);
    jsonkit_add_u64 (tree, "ok_total", rl_check_applied_count (b->check));
    jsonkit_add_u64 (tree, "unknown", rl_check_unknown_count (b->check));
    int rc = jsonkit_print (stdout, tree, false);
    cJSON_Delete (tree);
    if (rc) {
        fprintf (stderr, "rlbench: out of memory\n");
    }
    return rc;
}
