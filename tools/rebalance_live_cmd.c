/*  rebalance_live_cmd.c: `rebalance plan --live` and `rebalance suggest`
    (docs/rebalance.md, "Planning from live load").

    plan --live ROUTER [--add ...] [--remove ...] [--reweight ...] [--to NEW.ring]
        The ring from ROUTER (get_ring: a router or any shard), then every
        shard of it asked at once for its arcs' load (arc_load) and its
        hottest accounts (hot_accounts); the changes are applied to a copy
        of the ring (or --to names the new ring), and the model
        (rebalance_live.c) predicts each shard's load, accounts and bytes
        after the change, with what moves and the imbalance before and
        after. --out writes the new ring (epoch + 1), like plan.
    suggest --live ROUTER [--target X] [--spare NAME=ENDPOINT[@WEIGHT]]...
        The same measurement, then the search of rb_live_suggest: the
        reweights (and additions of the spares given) that bring the
        predicted max/mean load to the target, as `plan` options, with the
        prediction of the ring they make. Names every hot account that no
        placement of arcs can balance (rb_live_hot_unbalanceable).

    Both print a table, or one JSON object with --json (tools/jsonkit.h).

    INVARIANTS
    1. Nothing is written to the cluster: both only read (get_ring,
       arc_load, hot_accounts). Only --out writes, atomically, and only
       after every report was read and checked.
    2. Every report is checked against the ring before the model sees it:
       each arc must be one the ring gives that shard, each once, all of
       them; each hot account one it owns; counts within their bounds and
       consistent. Anything else (a shard that serves another ring during
       a change, a hostile or broken reply) ends the command with exit 3
       and a message naming the shard and what was wrong.
    3. Exit codes: 0 done (suggest: the target is met), 1 a ring file is
       bad or cannot be written, 2 usage, 3 the cluster did not answer or
       answered wrongly (rerun), 5 suggest found no ring within the target
       (the best one is still shown, and --out written).

    LIMITS
    RL_SHARDS_MAX shards, RL_BATCH_RECORDS_MAX arcs a shard (what arc_load
    answers), RL_HOT_ACCOUNTS_MAX hot accounts a shard; counts above
    S_COUNT_MAX are refused as hostile; one deadline (--timeout-ms) for
    each fan-out.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "client.h"
#include "codec.h"
#include "jsonkit.h"
#include "keys.h"
#include "rebalance.h"
#include "rebalance_live.h"

#define S_COUNT_MAX    (1ull << 50) //  largest count or byte figure believed in a report
#define S_ID_TEXT_SIZE 40

typedef struct {
    bool suggest;
    const char *live; //  ROUTER
    const char *to_path;
    const char *out_path;
    const char *cert;
    const char *server_key;
    bool insecure;
    bool json;
    int timeout_ms;
    double target;
    uint64_t steps;
    rb_live_spare_t spares[RB_SPARES_MAX];
    size_t spare_count;
    //  plan's changes, in order (argv indexes of their option)
    int changes[RL_SHARDS_MAX];
    size_t change_count;
} s_args_t;

static int
s_fail (int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "rebalance: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
    return code;
}

//  Arguments ------------------------------------------------------------------

static int
s_parse_spare (const char *value, rb_live_spare_t *spare)
{
    const char *equals = strchr (value, '=');
    if (!equals || equals == value || (size_t) (equals - value) >= sizeof spare->name) {
        return -1;
    }
    memcpy (spare->name, value, (size_t) (equals - value));
    spare->name[equals - value] = 0;
    const char *rest = equals + 1;
    const char *at = strrchr (rest, '@');
    size_t size = at ? (size_t) (at - rest) : strlen (rest);
    if (size == 0 || size >= sizeof spare->endpoint) {
        return -1;
    }
    memcpy (spare->endpoint, rest, size);
    spare->endpoint[size] = 0;
    spare->weight = 1.0;
    if (at) {
        char *end = NULL;
        errno = 0;
        spare->weight = strtod (at + 1, &end);
        if (errno || end == at + 1 || *end || !isfinite (spare->weight)
            || spare->weight < RING_WEIGHT_MIN || spare->weight > RL_RING_WEIGHT_MAX) {
            return -1;
        }
    }
    return 0;
}

static int
s_parse_option (s_args_t *a, int i, const char *o, const char *v)
{
    char *end = NULL;
    if (strcmp (o, "--live") == 0) {
        a->live = v;
    } else if (strcmp (o, "--to") == 0 && !a->suggest) {
        a->to_path = v;
    } else if (strcmp (o, "--out") == 0) {
        a->out_path = v;
    } else if (strcmp (o, "--cert") == 0) {
        a->cert = v;
    } else if (strcmp (o, "--server-key") == 0) {
        a->server_key = v;
    } else if (strcmp (o, "--timeout-ms") == 0) {
        errno = 0;
        long ms = strtol (v, &end, 10);
        if (errno || end == v || *end || ms < 1 || ms > 600000) {
            return s_fail (RB_EXIT_USAGE, "--timeout-ms '%s': expected 1..600000", v);
        }
        a->timeout_ms = (int) ms;
    } else if (strcmp (o, "--target") == 0) {
        errno = 0;
        a->target = strtod (v, &end);
        if (errno || end == v || *end || !isfinite (a->target) || a->target < RB_TARGET_MIN
            || a->target > RB_TARGET_MAX) {
            return s_fail (RB_EXIT_USAGE, "--target '%s': expected a max/mean load of %g..%g", v,
                           RB_TARGET_MIN, RB_TARGET_MAX);
        }
    } else if (strcmp (o, "--max-steps") == 0 && a->suggest) {
        errno = 0;
        unsigned long long steps = strtoull (v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' || steps < 1 || steps > RB_SUGGEST_STEPS_MAX) {
            return s_fail (RB_EXIT_USAGE, "--max-steps '%s': expected 1..%d", v,
                           RB_SUGGEST_STEPS_MAX);
        }
        a->steps = steps;
    } else if (strcmp (o, "--spare") == 0 && a->suggest) {
        if (a->spare_count == RB_SPARES_MAX) {
            return s_fail (RB_EXIT_USAGE, "at most %d --spare", RB_SPARES_MAX);
        }
        if (s_parse_spare (v, &a->spares[a->spare_count])) {
            return s_fail (RB_EXIT_USAGE,
                           "--spare '%s': expected NAME=ENDPOINT[@WEIGHT] (weight %g..%g)", v,
                           RING_WEIGHT_MIN, RL_RING_WEIGHT_MAX);
        }
        a->spare_count++;
    } else if (!a->suggest
               && (strcmp (o, "--add") == 0 || strcmp (o, "--remove") == 0
                   || strcmp (o, "--reweight") == 0)) {
        if (a->change_count == RL_SHARDS_MAX) {
            return s_fail (RB_EXIT_USAGE, "too many changes (at most %d)", RL_SHARDS_MAX);
        }
        a->changes[a->change_count++] = i;
    } else {
        return s_fail (RB_EXIT_USAGE, "%s: unknown option '%s' (run 'rebalance --help')",
                       a->suggest ? "suggest" : "plan --live", o);
    }
    return 0;
}

static int
s_parse_args (int argc, char **argv, s_args_t *a)
{
    a->timeout_ms = RB_TIMEOUT_MS_DEF;
    a->target = RB_TARGET_DEF;
    a->steps = RB_SUGGEST_STEPS_DEF;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp (o, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (strcmp (o, "--insecure") == 0) {
            a->insecure = true;
            continue;
        }
        if (strncmp (o, "--", 2) != 0) {
            return s_fail (RB_EXIT_USAGE, "unexpected argument '%s' (run 'rebalance --help')", o);
        }
        if (i + 1 >= argc) {
            return s_fail (RB_EXIT_USAGE, "option '%s' needs a value", o);
        }
        int rc = s_parse_option (a, i, o, argv[i + 1]);
        if (rc) {
            return rc;
        }
        i++;
    }
    if (!a->live || !*a->live) {
        return s_fail (RB_EXIT_USAGE, "%s needs --live ROUTER (an endpoint of a router or shard)",
                       a->suggest ? "suggest" : "plan --live");
    }
    if (a->to_path && a->change_count > 0) {
        return s_fail (RB_EXIT_USAGE, "--to takes the new ring whole: no --add, --remove or "
                                      "--reweight beside it");
    }
    if (a->insecure && (a->cert || a->server_key)) {
        return s_fail (RB_EXIT_USAGE, "--insecure takes no --cert or --server-key");
    }
    if (!a->insecure && (!a->cert || !*a->cert)) {
        return s_fail (RB_EXIT_USAGE,
                       "the load counters are admin operations: give --cert FILE (an admin's "
                       "secret certificate; --server-key KEY for the router's key, the shards' "
                       "come from the ring), or --insecure for a cluster without security");
    }
    return 0;
}

//  The measurement -------------------------------------------------------------------

typedef struct {
    s_args_t *args;
    zcert_t *cert;
    ring_t *ring; //  the ring from --live
    rb_live_t live;
    bool *seen;        //  [points]: the arc ending at point i was reported
    double arc_window; //  seconds, the shortest window of arc_load
    double hot_window; //  seconds, the shortest window of hot_accounts
    uint64_t hot_counted;
} s_ctx_t;

static int
s_security (s_ctx_t *ctx)
{
    const s_args_t *a = ctx->args;
    if (a->insecure) {
        return 0;
    }
    char err[768];
    ctx->cert = rl_cert_load (a->cert, err, sizeof err);
    if (!ctx->cert) {
        return s_fail (RB_EXIT_USAGE, "--cert: %s", err);
    }
    char key[RL_KEY_TEXT_SIZE] = "";
    if (a->server_key && rl_key_resolve (a->server_key, key, err, sizeof err)) {
        return s_fail (RB_EXIT_USAGE, "--server-key: %s", err);
    }
    rl_client_set_curve (ctx->cert, a->server_key ? key : NULL);
    return 0;
}

static int
s_fetch_ring (s_ctx_t *ctx)
{
    rl_client_t *client = rl_client_new (ctx->args->live);
    if (!client) {
        return s_fail (RB_EXIT_USAGE,
                       "--live '%s': cannot connect: not an endpoint (tcp://HOST:PORT), or no "
                       "key for it (--server-key KEY)",
                       ctx->args->live);
    }
    uint8_t *blob = NULL;
    size_t size = 0;
    int rc = rl_client_get_ring (client, &blob, &size, ctx->args->timeout_ms);
    rl_client_destroy (&client);
    if (rc) {
        free (blob);
        return s_fail (RB_EXIT_CLUSTER, "no ring from %s: %s (nothing was changed; is it up?)",
                       ctx->args->live, rl_client_strerror (rc));
    }
    char err[256];
    ctx->ring = ring_decode (blob, size, err, sizeof err);
    free (blob);
    if (!ctx->ring) {
        return s_fail (RB_EXIT_CLUSTER, "the ring from %s does not decode: %s", ctx->args->live,
                       err);
    }
    if (ring_point_count (ctx->ring) == 0) {
        return s_fail (RB_EXIT_CLUSTER, "the ring from %s has no shard", ctx->args->live);
    }
    for (size_t x = 0; x < ring_shard_count (ctx->ring); x++) {
        if (*ring_shard_key (ctx->ring, x) && !ctx->args->insecure
            && rl_client_add_server_key (ring_shard_endpoint (ctx->ring, x),
                                         ring_shard_key (ctx->ring, x))
                   != 0) {
            return s_fail (RB_EXIT_CLUSTER, "shard %s: a bad key in the ring from %s",
                           ring_shard_name (ctx->ring, x), ctx->args->live);
        }
    }
    return 0;
}

//  The index of the point at position `at`, or -1 when the ring has none there.
static long
s_point_at (const ring_t *ring, uint64_t at)
{
    size_t lo = 0, hi = ring_point_count (ring);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring_point_position (ring, mid) < at) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < ring_point_count (ring) && ring_point_position (ring, lo) == at ? (long) lo : -1;
}

//  One shard's arc_load reply, checked, into the measurement.
static int
s_take_arcs (s_ctx_t *ctx, size_t x, const rl_client_reply_t *reply)
{
    const char *name = ring_shard_name (ctx->ring, x);
    if (reply->rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "shard %s (%s): arc_load: %s", name,
                       ring_shard_endpoint (ctx->ring, x), rl_client_strerror (reply->rc));
    }
    size_t count = reply->header.record_count;
    size_t owned = ring_shard_point_count (ctx->ring, x);
    if (reply->body_size != count * RL_ARC_LOAD_SIZE || (count > 0 && !reply->body)) {
        return s_fail (RB_EXIT_CLUSTER, "shard %s: arc_load: %zu bytes for %zu records", name,
                       reply->body_size, count);
    }
    if (count != owned) {
        return s_fail (RB_EXIT_CLUSTER,
                       "shard %s: arc_load answered %zu arcs, the ring of epoch %" PRIu64
                       " gives it %zu (a ring change in progress? rerun when it is done)",
                       name, count, ring_epoch (ctx->ring), owned);
    }
    size_t points = ring_point_count (ctx->ring);
    long prev = -1;
    for (size_t k = 0; k < count; k++) {
        rl_arc_load_rec_t rec;
        codec_decode_arc_load (reply->body + k * RL_ARC_LOAD_SIZE, &rec);
        long p = s_point_at (ctx->ring, rec.arc_end);
        uint64_t start = p >= 0
                             ? ring_point_position (ctx->ring, ((size_t) p + points - 1) % points)
                             : 0;
        if (p < 0 || ring_point_owner (ctx->ring, (size_t) p) != x || rec.arc_start != start) {
            return s_fail (RB_EXIT_CLUSTER,
                           "shard %s: arc_load record %zu: the arc (%" PRIu64 ", %" PRIu64
                           "] is not one of its arcs in the ring of epoch %" PRIu64
                           " (a ring change in progress? rerun when it is done)",
                           name, k, rec.arc_start, rec.arc_end, ring_epoch (ctx->ring));
        }
        if (p <= prev || ctx->seen[p]) {
            return s_fail (RB_EXIT_CLUSTER, "shard %s: arc_load record %zu: arcs out of ring order",
                           name, k);
        }
        prev = p;
        if (rec.window_ms == 0 || rec.window_ms > RL_ARC_LOAD_WINDOW_S * 1000
            || rec.transfers_window > rec.transfers_total || rec.transfers_total > S_COUNT_MAX
            || rec.accounts > S_COUNT_MAX || rec.account_bytes != rec.accounts * RL_ACCOUNT_SIZE
            || rec.record_bytes > S_COUNT_MAX
            || rec.transfers_per_s != (uint32_t) (rec.transfers_window * 1000 / rec.window_ms)) {
            return s_fail (
                RB_EXIT_CLUSTER,
                "shard %s: arc_load record %zu: inconsistent counters (window %" PRIu32
                " ms, %" PRIu64 " transfers in it, %" PRIu64 " in all, %" PRIu64 " accounts)",
                name, k, rec.window_ms, rec.transfers_window, rec.transfers_total, rec.accounts);
        }
        ctx->seen[p] = true;
        double window = rec.window_ms / 1000.0;
        ctx->arc_window = window < ctx->arc_window ? window : ctx->arc_window;
        ctx->live.arcs[p] = (rb_live_arc_t){
            .start = rec.arc_start,
            .end = rec.arc_end,
            .owner = x,
            .rate = (double) rec.transfers_window / window,
            .accounts = (double) rec.accounts,
            .bytes = (double) rec.account_bytes + (double) rec.record_bytes,
        };
    }
    return 0;
}

//  One shard's hot_accounts reply, checked, into the measurement.
static int
s_take_hot (s_ctx_t *ctx, size_t x, const rl_client_reply_t *reply)
{
    const char *name = ring_shard_name (ctx->ring, x);
    if (reply->rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "shard %s (%s): hot_accounts: %s", name,
                       ring_shard_endpoint (ctx->ring, x), rl_client_strerror (reply->rc));
    }
    size_t count = reply->header.record_count;
    if (count > RL_HOT_ACCOUNTS_MAX || reply->body_size != count * RL_HOT_ACCOUNTS_SIZE
        || (count > 0 && !reply->body)) {
        return s_fail (RB_EXIT_CLUSTER,
                       "shard %s: hot_accounts: %zu records in %zu bytes (at most %d of %d)", name,
                       count, reply->body_size, RL_HOT_ACCOUNTS_MAX, RL_HOT_ACCOUNTS_SIZE);
    }
    uint64_t last = UINT64_MAX;
    for (size_t k = 0; k < count; k++) {
        rl_hot_account_rec_t rec;
        codec_decode_hot_account (reply->body + k * RL_HOT_ACCOUNTS_SIZE, &rec);
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (rec.id, bytes);
        bool dup = false;
        for (size_t j = 0; j < ctx->live.hot_count && !dup; j++) {
            dup = rl_id_eq (ctx->live.hot[j].id, rec.id);
        }
        if (ring_lookup_id (ctx->ring, bytes) != (int) x || dup) {
            return s_fail (RB_EXIT_CLUSTER,
                           "shard %s: hot_accounts record %zu: an account it does not own in "
                           "the ring of epoch %" PRIu64 ", or listed twice",
                           name, k, ring_epoch (ctx->ring));
        }
        if (rec.window_ms == 0 || rec.window_ms > RL_ARC_LOAD_WINDOW_S * 1000
            || rec.error > rec.transfers_window || rec.transfers_window > rec.counted
            || rec.others_max > rec.counted || rec.counted > S_COUNT_MAX || rec.reserved
            || rec.reserved2 || rec.transfers_window > last || rec.transfers_window == 0) {
            return s_fail (RB_EXIT_CLUSTER,
                           "shard %s: hot_accounts record %zu: inconsistent counters (%" PRIu64
                           " transfers, error %" PRIu64 ", %" PRIu64 " counted, window %" PRIu32
                           " ms)",
                           name, k, rec.transfers_window, rec.error, rec.counted, rec.window_ms);
        }
        last = rec.transfers_window;
        double window = rec.window_ms / 1000.0;
        ctx->hot_window = window < ctx->hot_window ? window : ctx->hot_window;
        ctx->hot_counted += k == 0 ? rec.counted : 0;
        double others = (double) rec.others_max / window;
        ctx->live.others_max_rate = others > ctx->live.others_max_rate ? others
                                                                       : ctx->live.others_max_rate;
        ctx->live.hot[ctx->live.hot_count++] = (rb_live_hot_t){
            .id = rec.id,
            .point = ring_point_of_id (bytes),
            .owner = x,
            .rate = (double) (rec.transfers_window - rec.error) / window,
            .rate_max = (double) rec.transfers_window / window,
        };
    }
    return 0;
}

//  Both fan-outs, every reply checked. 0, or an exit code (printed).
static int
s_measure (s_ctx_t *ctx)
{
    size_t shards = ring_shard_count (ctx->ring);
    size_t points = ring_point_count (ctx->ring);
    const char **endpoints = calloc (shards, sizeof (char *));
    rl_client_reply_t *arcs = calloc (shards, sizeof *arcs);
    rl_client_reply_t *hot = calloc (shards, sizeof *hot);
    ctx->seen = calloc (points, sizeof (bool));
    ctx->live.arcs = calloc (points, sizeof (rb_live_arc_t));
    ctx->live.hot = calloc (shards * RL_HOT_ACCOUNTS_MAX, sizeof (rb_live_hot_t));
    if (!endpoints || !arcs || !hot || !ctx->seen || !ctx->live.arcs || !ctx->live.hot) {
        free (endpoints);
        free (arcs);
        free (hot);
        return s_fail (RB_EXIT_BAD_FILE, "out of memory");
    }
    ctx->live.ring = ctx->ring;
    ctx->live.arc_count = points;
    ctx->arc_window = ctx->hot_window = RL_ARC_LOAD_WINDOW_S;
    for (size_t x = 0; x < shards; x++) {
        endpoints[x] = ring_shard_endpoint (ctx->ring, x);
    }
    rl_client_fanout (endpoints, shards, RL_OP_ARC_LOAD, NULL, 0, 0, ctx->args->timeout_ms, arcs);
    rl_client_fanout (endpoints, shards, RL_OP_HOT_ACCOUNTS, NULL, 0, 0, ctx->args->timeout_ms,
                      hot);
    int rc = 0;
    for (size_t x = 0; rc == 0 && x < shards; x++) {
        rc = s_take_arcs (ctx, x, &arcs[x]);
    }
    for (size_t x = 0; rc == 0 && x < shards; x++) {
        rc = s_take_hot (ctx, x, &hot[x]);
    }
    for (size_t p = 0; rc == 0 && p < points; p++) {
        if (!ctx->seen[p]) { //  cannot happen when every shard answered its own count
            rc = s_fail (RB_EXIT_CLUSTER, "no shard reported the arc ending at %" PRIu64,
                         ring_point_position (ctx->ring, p));
        }
    }
    ctx->live.window_s = ctx->arc_window < ctx->hot_window ? ctx->arc_window : ctx->hot_window;
    rl_client_replies_free (arcs, shards);
    rl_client_replies_free (hot, shards);
    free (arcs);
    free (hot);
    free (endpoints);
    return rc;
}

static void
s_ctx_close (s_ctx_t *ctx)
{
    free (ctx->seen);
    free (ctx->live.arcs);
    free (ctx->live.hot);
    ring_destroy (&ctx->ring);
    rl_client_clear_curve ();
    zcert_destroy (&ctx->cert);
}

//  Output ----------------------------------------------------------------------------

static void
s_id_text (rl_id_t id, char out[S_ID_TEXT_SIZE])
{
    snprintf (out, S_ID_TEXT_SIZE, "0x%016" PRIx64 "%016" PRIx64, id.hi, id.lo);
}

//  The report of one comparison: the measured ring against `after`.
typedef struct {
    const s_ctx_t *ctx;
    const ring_t *after;
    rb_live_load_t *before_loads; //  [shards of the measured ring]
    rb_live_load_t *after_loads;  //  [shards of after]
    rb_live_moved_t moved;
    double total_rate, total_accounts, total_bytes;
    double imbalance_before, imbalance_after;
    double target;
} s_report_t;

static const rb_live_load_t *
s_load_of (const ring_t *ring, const rb_live_load_t *loads, const char *name)
{
    int x = ring_shard_find (ring, name);
    return x < 0 ? NULL : &loads[x];
}

static void
s_add_load (cJSON *shard, const char *suffix, const rb_live_load_t *load, double total_rate)
{
    char key[64];
    snprintf (key, sizeof key, "weight_%s", suffix);
    if (!load) {
        jsonkit_add_null (shard, key);
        snprintf (key, sizeof key, "load_%s", suffix);
        jsonkit_add_null (shard, key);
        snprintf (key, sizeof key, "load_share_%s", suffix);
        jsonkit_add_null (shard, key);
        snprintf (key, sizeof key, "accounts_%s", suffix);
        jsonkit_add_null (shard, key);
        snprintf (key, sizeof key, "bytes_%s", suffix);
        jsonkit_add_null (shard, key);
        return;
    }
    jsonkit_add_number (shard, key, load->weight);
    snprintf (key, sizeof key, "load_%s", suffix);
    jsonkit_add_fixed (shard, key, load->rate, 3);
    snprintf (key, sizeof key, "load_share_%s", suffix);
    jsonkit_add_fixed (shard, key, total_rate > 0 ? load->rate / total_rate : 0, 6);
    snprintf (key, sizeof key, "accounts_%s", suffix);
    jsonkit_add_u64 (shard, key, (uint64_t) llround (load->accounts));
    snprintf (key, sizeof key, "bytes_%s", suffix);
    jsonkit_add_u64 (shard, key, (uint64_t) llround (load->bytes));
}

//  Every shard of the measured ring, then those only in `after`.
static cJSON *
s_json_shards (cJSON *tree, const s_report_t *r)
{
    cJSON *list = jsonkit_add_array (tree, "shards");
    const ring_t *a = r->ctx->ring;
    for (int pass = 0; pass < 2; pass++) {
        const ring_t *ring = pass == 0 ? a : r->after;
        for (size_t x = 0; x < ring_shard_count (ring); x++) {
            const char *name = ring_shard_name (ring, x);
            if (pass == 1 && ring_shard_find (a, name) >= 0) {
                continue;
            }
            cJSON *shard = jsonkit_add_object (list, NULL);
            jsonkit_add_string (shard, "name", name);
            s_add_load (shard, "before", s_load_of (a, r->before_loads, name), r->total_rate);
            s_add_load (shard, "after", s_load_of (r->after, r->after_loads, name), r->total_rate);
        }
    }
    return list;
}

static void
s_json_hot (cJSON *tree, const s_report_t *r)
{
    const rb_live_t *live = &r->ctx->live;
    cJSON *list = jsonkit_add_array (tree, "hot_accounts");
    for (size_t k = 0; k < live->hot_count; k++) {
        const rb_live_hot_t *hot = &live->hot[k];
        char id[S_ID_TEXT_SIZE];
        s_id_text (hot->id, id);
        int owner = ring_lookup (r->after, hot->point);
        cJSON *item = jsonkit_add_object (list, NULL);
        jsonkit_add_string (item, "id", id);
        jsonkit_add_string (item, "shard_before", ring_shard_name (r->ctx->ring, hot->owner));
        jsonkit_add_string (item, "shard_after", ring_shard_name (r->after, (size_t) owner));
        jsonkit_add_fixed (item, "load", hot->rate, 3);
        jsonkit_add_fixed (item, "load_max", hot->rate_max, 3);
        jsonkit_add_fixed (item, "load_share", r->total_rate > 0 ? hot->rate / r->total_rate : 0,
                           6);
        jsonkit_add_bool (item, "unbalanceable",
                          rb_live_hot_unbalanceable (live, hot, r->after, r->target));
    }
    jsonkit_add_fixed (tree, "others_max_load", live->others_max_rate, 3);
}

static cJSON *
s_json_report (const s_report_t *r)
{
    const s_ctx_t *ctx = r->ctx;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "live", ctx->args->live);
    jsonkit_add_u64 (tree, "epoch_before", ring_epoch (ctx->ring));
    jsonkit_add_u64 (tree, "epoch_after", ring_epoch (r->after));
    jsonkit_add_fixed (tree, "window_s", ctx->live.window_s, 3);
    jsonkit_add_fixed (tree, "load", r->total_rate, 3);
    jsonkit_add_u64 (tree, "accounts", (uint64_t) llround (r->total_accounts));
    jsonkit_add_u64 (tree, "bytes", (uint64_t) llround (r->total_bytes));
    s_json_shards (tree, r);
    cJSON *moved = jsonkit_add_object (tree, "moved");
    jsonkit_add_fixed (moved, "load", r->moved.rate, 3);
    jsonkit_add_fixed (moved, "load_share", r->total_rate > 0 ? r->moved.rate / r->total_rate : 0,
                       6);
    jsonkit_add_u64 (moved, "accounts", (uint64_t) llround (r->moved.accounts));
    jsonkit_add_u64 (moved, "bytes", (uint64_t) llround (r->moved.bytes));
    jsonkit_add_fixed (moved, "fraction", r->moved.fraction, 9);
    jsonkit_add_fixed (tree, "imbalance_before", r->imbalance_before, 6);
    jsonkit_add_fixed (tree, "imbalance_after", r->imbalance_after, 6);
    jsonkit_add_fixed (tree, "ownership_imbalance_before", ring_imbalance (ctx->ring), 6);
    jsonkit_add_fixed (tree, "ownership_imbalance_after", ring_imbalance (r->after), 6);
    jsonkit_add_fixed (tree, "target", r->target, 6);
    s_json_hot (tree, r);
    return tree;
}

static void
s_human_bytes (double bytes, char *out, size_t size)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    size_t u = 0;
    while (bytes >= 1000 && u + 1 < sizeof units / sizeof units[0]) {
        bytes /= 1000;
        u++;
    }
    snprintf (out, size, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

static void
s_print_cells (const rb_live_load_t *load, double total_rate, char cells[5][32])
{
    if (!load) {
        for (int c = 0; c < 5; c++) {
            snprintf (cells[c], 32, "-");
        }
        return;
    }
    snprintf (cells[0], 32, "%g", load->weight);
    snprintf (cells[1], 32, "%.1f", load->rate);
    snprintf (cells[2], 32, "%.1f%%", total_rate > 0 ? load->rate / total_rate * 100 : 0);
    snprintf (cells[3], 32, "%.0f", load->accounts);
    s_human_bytes (load->bytes, cells[4], 32);
}

static void
s_print_report (const s_report_t *r)
{
    const s_ctx_t *ctx = r->ctx;
    const ring_t *a = ctx->ring;
    char bytes[32];
    s_human_bytes (r->total_bytes, bytes, sizeof bytes);
    printf ("live plan: epoch %" PRIu64 " -> %" PRIu64 ", %zu -> %zu shards; measured over %.1f s: "
            "%.1f transfers/s, %.0f accounts, %s\n\n",
            ring_epoch (a), ring_epoch (r->after), ring_shard_count (a),
            ring_shard_count (r->after), ctx->live.window_s, r->total_rate, r->total_accounts,
            bytes);
    printf ("%-12s %6s %6s %9s %9s %6s %6s %9s %9s %9s %9s\n", "shard", "weight", "weight",
            "load/s", "load/s", "share", "share", "accounts", "accounts", "bytes", "bytes");
    printf ("%-12s %6s %6s %9s %9s %6s %6s %9s %9s %9s %9s\n", "", "before", "after", "before",
            "after", "before", "after", "before", "after", "before", "after");
    for (int pass = 0; pass < 2; pass++) {
        const ring_t *ring = pass == 0 ? a : r->after;
        for (size_t x = 0; x < ring_shard_count (ring); x++) {
            const char *name = ring_shard_name (ring, x);
            if (pass == 1 && ring_shard_find (a, name) >= 0) {
                continue;
            }
            char b[5][32], f[5][32];
            s_print_cells (s_load_of (a, r->before_loads, name), r->total_rate, b);
            s_print_cells (s_load_of (r->after, r->after_loads, name), r->total_rate, f);
            printf ("%-12s %6s %6s %9s %9s %6s %6s %9s %9s %9s %9s\n", name, b[0], f[0], b[1], f[1],
                    b[2], f[2], b[3], f[3], b[4], f[4]);
        }
    }
    s_human_bytes (r->moved.bytes, bytes, sizeof bytes);
    printf ("\nmoves: %.1f transfers/s (%.1f%% of the load), %.0f accounts, %s, %.3f%% of the "
            "hash space\n",
            r->moved.rate, r->total_rate > 0 ? r->moved.rate / r->total_rate * 100 : 0,
            r->moved.accounts, bytes, r->moved.fraction * 100);
    printf ("imbalance (max/mean load by capacity): before %.4f, after %.4f (target %.2f)\n",
            r->imbalance_before, r->imbalance_after, r->target);
    printf ("ownership imbalance (hash space): before %.4f, after %.4f\n", ring_imbalance (a),
            ring_imbalance (r->after));
    if (!(r->total_rate > 0)) {
        printf ("no transfer was counted over the window: the prediction is of accounts and "
                "bytes only\n");
    }
    const rb_live_t *live = &ctx->live;
    if (live->hot_count > 0) {
        printf ("\nhot accounts (transfers/s debiting each, at least; any other at most %.1f):\n",
                live->others_max_rate);
        printf ("%-34s %-12s %-12s %9s %6s\n", "account", "shard", "after", "load/s", "share");
    }
    for (size_t k = 0; k < live->hot_count; k++) {
        const rb_live_hot_t *hot = &live->hot[k];
        char id[S_ID_TEXT_SIZE];
        s_id_text (hot->id, id);
        int owner = ring_lookup (r->after, hot->point);
        bool alone = rb_live_hot_unbalanceable (live, hot, r->after, r->target);
        printf ("%-34s %-12s %-12s %9.1f %5.1f%%%s\n", id, ring_shard_name (a, hot->owner),
                ring_shard_name (r->after, (size_t) owner), hot->rate,
                r->total_rate > 0 ? hot->rate / r->total_rate * 100 : 0,
                alone ? "  too hot alone: no placement of arcs balances it" : "");
    }
}

//  The report of the measured ring against `after`. 0, or an exit code.
static int
s_report_build (const s_ctx_t *ctx, const ring_t *after, double target, s_report_t *r)
{
    *r = (s_report_t){.ctx = ctx, .after = after, .target = target};
    r->before_loads = calloc (ring_shard_count (ctx->ring), sizeof (rb_live_load_t));
    r->after_loads = calloc (ring_shard_count (after) + 1, sizeof (rb_live_load_t));
    if (!r->before_loads || !r->after_loads) {
        return s_fail (RB_EXIT_BAD_FILE, "out of memory");
    }
    if (rb_live_predict (&ctx->live, ctx->ring, r->before_loads, NULL)
        || rb_live_predict (&ctx->live, after, r->after_loads, &r->moved)) {
        return s_fail (RB_EXIT_CLUSTER, "the reports do not cover the ring: rerun");
    }
    for (size_t k = 0; k < ctx->live.arc_count; k++) {
        r->total_rate += ctx->live.arcs[k].rate;
        r->total_accounts += ctx->live.arcs[k].accounts;
        r->total_bytes += ctx->live.arcs[k].bytes;
    }
    r->imbalance_before = rb_live_imbalance (r->before_loads, ring_shard_count (ctx->ring));
    r->imbalance_after = rb_live_imbalance (r->after_loads, ring_shard_count (after));
    return 0;
}

static void
s_report_free (s_report_t *r)
{
    free (r->before_loads);
    free (r->after_loads);
}

static int
s_emit (cJSON *tree)
{
    int rc = jsonkit_print (stdout, tree, true);
    cJSON_Delete (tree);
    return rc ? s_fail (RB_EXIT_BAD_FILE, "out of memory") : 0;
}

//  Commands --------------------------------------------------------------------------

//  Parses, secures, fetches the ring and measures. 0, or an exit code.
static int
s_open (s_ctx_t *ctx, s_args_t *args, int argc, char **argv, bool suggest)
{
    memset (ctx, 0, sizeof *ctx);
    args->suggest = suggest;
    ctx->args = args;
    int rc = s_parse_args (argc, argv, args);
    if (rc == 0) {
        rc = s_security (ctx);
    }
    if (rc == 0) {
        rc = s_fetch_ring (ctx);
    }
    return rc == 0 ? s_measure (ctx) : rc;
}

static int
s_write_ring (const ring_t *ring, const char *path)
{
    if (path && ring_save_file (ring, path)) {
        return s_fail (RB_EXIT_BAD_FILE, "cannot write %s: %s", path, strerror (errno));
    }
    return 0;
}

int
rb_cmd_plan_live (int argc, char **argv)
{
    s_args_t *args = calloc (1, sizeof *args);
    if (!args) {
        return s_fail (RB_EXIT_BAD_FILE, "out of memory");
    }
    s_ctx_t ctx;
    int rc = s_open (&ctx, args, argc, argv, false);
    ring_t *after = NULL;
    if (rc == 0 && args->to_path) {
        char err[512];
        after = ring_load_file (args->to_path, err, sizeof err);
        if (!after) {
            rc = s_fail (RB_EXIT_BAD_FILE, "bad ring file: %s", err);
        } else if (ring_point_count (after) == 0) {
            rc = s_fail (RB_EXIT_BAD_FILE, "%s: the ring has no shard", args->to_path);
        }
    } else if (rc == 0) {
        after = ring_dup (ctx.ring);
        rc = after ? 0 : s_fail (RB_EXIT_BAD_FILE, "out of memory");
        for (size_t k = 0; rc == 0 && k < args->change_count; k++) {
            rc = rb_ring_change (after, argv[args->changes[k]], argv[args->changes[k] + 1]);
        }
        if (rc == 0 && ring_point_count (after) == 0) {
            rc = s_fail (RB_EXIT_USAGE, "the change leaves no shard in the ring");
        }
        if (after) {
            ring_set_epoch (after, ring_epoch (ctx.ring) + 1);
        }
    }
    s_report_t report = {0};
    if (rc == 0) {
        rc = s_report_build (&ctx, after, args->target, &report);
    }
    if (rc == 0 && !args->to_path) {
        rc = s_write_ring (after, args->out_path);
    }
    if (rc == 0) {
        if (args->json) {
            rc = s_emit (s_json_report (&report));
        } else {
            s_print_report (&report);
            if (args->out_path && !args->to_path) {
                printf ("wrote %s (epoch %" PRIu64 ")\n", args->out_path, ring_epoch (after));
            }
        }
    }
    s_report_free (&report);
    ring_destroy (&after);
    s_ctx_close (&ctx);
    free (args);
    return rc;
}

int
rb_cmd_suggest (int argc, char **argv)
{
    s_args_t *args = calloc (1, sizeof *args);
    rb_live_change_t *changes = calloc (RB_SUGGEST_STEPS_MAX, sizeof *changes);
    if (!args || !changes) {
        free (args);
        free (changes);
        return s_fail (RB_EXIT_BAD_FILE, "out of memory");
    }
    s_ctx_t ctx;
    int rc = s_open (&ctx, args, argc, argv, true);
    for (size_t k = 0; rc == 0 && k < args->spare_count; k++) {
        if (ring_shard_find (ctx.ring, args->spares[k].name) >= 0) {
            rc = s_fail (RB_EXIT_USAGE, "--spare %s: the ring has that shard already",
                         args->spares[k].name);
        }
    }
    ring_t *after = NULL;
    size_t change_count = 0;
    if (rc == 0
        && rb_live_suggest (&ctx.live, ctx.ring, args->target, args->steps, args->spares,
                            args->spare_count, &after, changes, &change_count)) {
        rc = s_fail (RB_EXIT_CLUSTER, "no suggestion: out of memory or the reports do not "
                                      "cover the ring");
    }
    s_report_t report = {0};
    if (rc == 0) {
        rc = s_report_build (&ctx, after, args->target, &report);
    }
    if (rc == 0) {
        rc = s_write_ring (after, args->out_path);
    }
    bool met = rc == 0 && report.imbalance_after <= args->target + 1e-9;
    if (rc == 0 && args->json) {
        cJSON *tree = s_json_report (&report);
        cJSON *list = jsonkit_add_array (tree, "changes");
        for (size_t k = 0; k < change_count; k++) {
            cJSON *change = jsonkit_add_object (list, NULL);
            jsonkit_add_string (change, "kind", changes[k].add ? "add" : "reweight");
            jsonkit_add_string (change, "name", changes[k].name);
            if (changes[k].add) {
                jsonkit_add_string (change, "endpoint", changes[k].endpoint);
            }
            jsonkit_add_number (change, "weight", changes[k].weight);
        }
        jsonkit_add_bool (tree, "target_met", met);
        if (args->out_path) {
            jsonkit_add_string (tree, "out", args->out_path);
        } else {
            jsonkit_add_null (tree, "out");
        }
        rc = s_emit (tree);
    } else if (rc == 0) {
        printf ("suggest: target max/mean load %.2f; measured %.4f\n", args->target,
                report.imbalance_before);
        if (change_count == 0) {
            printf ("no change %s\n\n",
                    met ? "needed: within the target" : "found that lowers the imbalance");
        } else {
            printf ("changes (as plan options):");
            for (size_t k = 0; k < change_count; k++) {
                if (changes[k].add) {
                    printf (" --add %s=%s@%g", changes[k].name, changes[k].endpoint,
                            changes[k].weight);
                } else {
                    printf (" --reweight %s=%g", changes[k].name, changes[k].weight);
                }
            }
            printf ("\n\n");
        }
        s_print_report (&report);
        if (args->out_path) {
            printf ("wrote %s (epoch %" PRIu64 "): rebalance plan --live %s --to %s checks it\n",
                    args->out_path, ring_epoch (after), args->live, args->out_path);
        }
        if (!met) {
            printf ("the target is not met%s\n",
                    args->spare_count == 0 ? ": give --spare NAME=ENDPOINT to let suggest add "
                                             "shards, or raise --target"
                                           : "");
        }
    }
    if (rc == 0 && !met) {
        rc = RB_EXIT_TARGET;
    }
    s_report_free (&report);
    ring_destroy (&after);
    s_ctx_close (&ctx);
    free (changes);
    free (args);
    return rc;
}
