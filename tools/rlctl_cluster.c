/*  rlctl_cluster.c: the commands of rlctl that look at the cluster as a
    whole (docs/cli.md): ring, locate, status, in-doubt, audit and resolve.

    Each gets the ring from --connect, then (status, in-doubt, audit,
    resolve) asks the shards it names directly, builds one cJSON tree of
    the answers and hands it to rlctl_emit with its table printer.

    DESIGN
    Through the client library's typed admin calls: status, in-doubt and
    audit ask every shard at once and wait for all of them until one
    deadline (rl_client_*_all), so each costs at most one probe timeout
    even with shards down; resolve asks one shard (rl_client_resolve).
    status shows every counter of the status record, the two-phase alarms
    first, because an alarm needs an operator (docs/two-phase.md).
    status asks --connect's own status first: a shard answers status after
    its local sync only, while its ring read (like every reply that
    reports its state) waits for its standby's acknowledgement. A stalled
    primary or a standby at --connect is shown from that answer, without
    the ring (whose read would wait for good, or be refused); so is any
    --connect whose ring read fails or does not come within the timeout
    (docs/replication.md).

    INVARIANTS
    1. Exit 0 only when every shard of the ring answered (and, for audit,
       passed; for resolve, the shard resolved). status without the ring
       (above) exits 1: the view is --connect's alone.
    2. resolve sends one request to the one shard named, nothing else.

    LIMITS
    At most the shards of one ring (RL_SHARDS_MAX), and as many endpoints
    in --connect; each waited for at most RLCTL_PROBE_TIMEOUT_MS (capped
    by --timeout-ms); the ring read for at most --timeout-ms.
*/
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "codec.h" //  codec_encode_id: the wire bytes an id is placed by
#include "ring.h"
#include "rlctl.h"

_Static_assert(RLCTL_PROBE_TIMEOUT_MS <= RL_CLIENT_TIMEOUT_MS, "a probe is shorter than a call");

#define S_CONNECT_TEXT_MAX 8192 //  bytes of --connect that status splits into endpoints

static int
s_probe_ms (const rlctl_ctx_t *ctx)
{
    return ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms : RLCTL_PROBE_TIMEOUT_MS;
}

//  Ring and locate ---------------------------------------------------------------

int
rlctl_ring_get (rl_client_t *client, int timeout_ms, ring_t **ring_p, char *err, size_t err_size)
{
    assert (client && ring_p && err && err_size > 0);
    *ring_p = NULL;
    err[0] = '\0';
    uint8_t *blob = NULL;
    size_t size = 0;
    int rc = rl_client_get_ring (client, &blob, &size, timeout_ms);
    if (rc) {
        free (blob);
        return rc;
    }
    *ring_p = ring_decode (blob, size, err, err_size);
    free (blob);
    if (!*ring_p) {
        return RL_CLIENT_ERR_REPLY;
    }
    //  The shards are asked directly: each with the key the ring gives it.
    for (size_t i = 0; i < ring_shard_count (*ring_p); i++) {
        if (*ring_shard_key (*ring_p, i)) {
            rl_client_add_server_key (ring_shard_endpoint (*ring_p, i),
                                      ring_shard_key (*ring_p, i));
        }
    }
    return 0;
}

void
rlctl_ring_newest (ring_t **ring_p, int timeout_ms)
{
    assert (ring_p && *ring_p);
    static const char *endpoints[RL_SHARDS_MAX];
    static rl_client_reply_t replies[RL_SHARDS_MAX];
    //  Each round moves to a strictly higher epoch: bounded by the rings
    //  in between, and by a number of rounds no real change needs.
    for (int round = 0; round < 16; round++) {
        size_t n = ring_shard_count (*ring_p);
        for (size_t i = 0; i < n; i++) {
            endpoints[i] = ring_shard_endpoint (*ring_p, i);
        }
        rl_client_fanout (endpoints, n, RL_OP_GET_RING, NULL, 0, 0, timeout_ms, replies);
        ring_t *newest = NULL;
        for (size_t i = 0; i < n; i++) {
            char err[256];
            ring_t *ring = replies[i].rc == 0 && replies[i].body ? ring_decode (
                               replies[i].body, replies[i].body_size, err, sizeof err)
                                                                 : NULL;
            if (ring && ring_epoch (ring) > ring_epoch (newest ? newest : *ring_p)) {
                ring_destroy (&newest);
                newest = ring;
            } else {
                ring_destroy (&ring);
            }
        }
        rl_client_replies_free (replies, n);
        if (!newest) {
            return;
        }
        ring_destroy (ring_p);
        *ring_p = newest;
        for (size_t i = 0; i < ring_shard_count (newest); i++) {
            if (*ring_shard_key (newest, i)) {
                rl_client_add_server_key (ring_shard_endpoint (newest, i),
                                          ring_shard_key (newest, i));
            }
        }
    }
}

//  The ring served at --connect; NULL after printing why.
static ring_t *
s_fetch_ring (const rlctl_ctx_t *ctx, const char *what)
{
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return NULL;
    }
    ring_t *ring = NULL;
    char err[256];
    int rc = rlctl_ring_get (client, ctx->timeout_ms, &ring, err, sizeof err);
    rl_client_destroy (&client);
    if (rc && err[0]) {
        fprintf (stderr, "rlctl: %s: the ring from %s does not decode: %s\n", what, ctx->connect,
                 err);
    } else if (rc) {
        rlctl_call_failed (ctx, what, rc, false);
    }
    return ring;
}

static void
s_ring_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    const cJSON *shards = jsonkit_get (tree, "shards");
    int count = cJSON_GetArraySize (shards);
    printf ("ring epoch %s: %d shard%s, %s points (from %s)\n\n", jsonkit_text (tree, "epoch"),
            count, count == 1 ? "" : "s", jsonkit_text (tree, "points"), ctx->connect);
    printf ("%-16s %-32s %8s %10s %7s\n", "shard", "address", "weight", "ownership", "points");
    const cJSON *s;
    cJSON_ArrayForEach (s, shards)
    {
        printf ("%-16s %-32s %8.6g %9.3f%% %7s\n", jsonkit_text (s, "name"),
                jsonkit_text (s, "endpoint"), jsonkit_double (s, "weight"),
                jsonkit_double (s, "ownership") * 100, jsonkit_text (s, "points"));
    }
    printf ("\nimbalance (max/mean ownership by weight): %.4f\n",
            jsonkit_double (tree, "imbalance"));
}

int
rlctl_cmd_ring (rlctl_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "ring");
    if (!ring) {
        return RLCTL_EXIT_FAILED;
    }
    if (ctx->given & RLCTL_O_TEXT) {
        char *text = ring_to_text (ring);
        ring_destroy (&ring);
        if (!text) {
            fprintf (stderr, "rlctl: ring: out of memory\n");
            return RLCTL_EXIT_FAILED;
        }
        fputs (text, stdout);
        free (text);
        return RLCTL_EXIT_OK;
    }
    cJSON *tree = jsonkit_object ();
    jsonkit_add_u64 (tree, "epoch", ring_epoch (ring));
    jsonkit_add_u64 (tree, "points", ring_point_count (ring));
    jsonkit_add_number (tree, "points_per_weight", ring_points_per_weight (ring));
    jsonkit_add_number (tree, "imbalance", ring_imbalance (ring));
    cJSON *list = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        cJSON *s = jsonkit_add_object (list, NULL);
        jsonkit_add_string (s, "name", ring_shard_name (ring, i));
        jsonkit_add_string (s, "endpoint", ring_shard_endpoint (ring, i));
        jsonkit_add_number (s, "weight", ring_shard_weight (ring, i));
        jsonkit_add_number (s, "ownership", ring_shard_ownership (ring, i));
        jsonkit_add_u64 (s, "points", ring_shard_point_count (ring, i));
    }
    ring_destroy (&ring);
    return rlctl_emit (ctx, &tree, s_ring_table, RLCTL_EXIT_OK);
}

static void
s_locate_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("ring epoch %s\n%-34s %-16s %-16s %s\n", jsonkit_text (tree, "epoch"), "account",
            "point", "shard", "address");
    const cJSON *a;
    cJSON_ArrayForEach (a, jsonkit_get (tree, "accounts"))
    {
        printf ("%-34s %s %-16s %s\n", jsonkit_text (a, "id"), jsonkit_text (a, "point"),
                jsonkit_text (a, "shard"), jsonkit_text (a, "address"));
    }
}

//  Which shard owns each id, by the ring served at --connect.
int
rlctl_cmd_locate (rlctl_ctx_t *ctx)
{
    static rl_id_t ids[RLCTL_IDS_MAX];
    size_t count = 0;
    int rc = rlctl_parse_ids (ctx, 1, ids, &count);
    if (rc) {
        return rc;
    }
    ring_t *ring = s_fetch_ring (ctx, "locate");
    if (!ring) {
        return RLCTL_EXIT_FAILED;
    }
    cJSON *tree = jsonkit_object ();
    jsonkit_add_u64 (tree, "epoch", ring_epoch (ring));
    cJSON *list = jsonkit_add_array (tree, "accounts");
    for (size_t i = 0; i < count; i++) {
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (ids[i], bytes);
        int owner = ring_lookup_id (ring, bytes);
        assert (owner >= 0);
        char id_text[RLCTL_ID_TEXT_SIZE];
        char point[RLCTL_NUMBER_TEXT_SIZE];
        snprintf (point, sizeof point, "%016" PRIx64, ring_point_of_id (bytes));
        cJSON *a = jsonkit_add_object (list, NULL);
        jsonkit_add_string (a, "id", rlctl_id_text (ids[i], id_text));
        jsonkit_add_string (a, "point", point);
        jsonkit_add_string (a, "shard", ring_shard_name (ring, (size_t) owner));
        jsonkit_add_string (a, "address", ring_shard_endpoint (ring, (size_t) owner));
    }
    ring_destroy (&ring);
    return rlctl_emit (ctx, &tree, s_locate_table, RLCTL_EXIT_OK);
}

//  Status ------------------------------------------------------------------------

//  A shard whose CURVE handshake failed ("failed": the key given for it is
//  not its key) or that refused this client's key ("refused").
static void
s_add_handshake (cJSON *s, int rc)
{
    jsonkit_add_string (s, "handshake", rc == RL_CLIENT_ERR_REFUSED ? "refused" : "failed");
}

//  Why a shard gave no answer to an admin call, in words.
static const char *
s_shard_error (int rc, int probe_ms, char *out, size_t size)
{
    if (rc == RL_CLIENT_TIMEOUT) {
        snprintf (out, size, "no answer within %d ms", probe_ms);
    } else if (rc > 0) {
        snprintf (out, size, "answered %s", rl_status_name ((uint32_t) rc));
    } else {
        snprintf (out, size, "%s", rl_client_strerror (rc));
    }
    return out;
}

//  The endpoints of the ring's shards, in ring order.
static void
s_endpoints (const ring_t *ring, const char **endpoints)
{
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        endpoints[i] = ring_shard_endpoint (ring, i);
    }
}

//  The status record's counters, in the order status shows them: the
//  two-phase alarms first (they need an operator), then the counters of
//  the main table, then the rest.
static void
s_add_status_record (cJSON *s, const rl_status_rec_t *r)
{
    jsonkit_add_u64 (s, "alarms", r->alarms);
    jsonkit_add_string (s, "reported_name", r->name);
    jsonkit_add_string (s, "state", rl_shard_state_name (r->state));
    jsonkit_add_u64 (s, "epoch", r->epoch);
    jsonkit_add_u64 (s, "accounts", r->accounts);
    jsonkit_add_u64 (s, "transfers", r->transfers);
    jsonkit_add_u64 (s, "requests", r->requests);
    jsonkit_add_u64 (s, "commits", r->commits);
    jsonkit_add_string (s, "durability", rl_durability_name (r->durability));
    jsonkit_add_u64 (s, "inflight", r->inflight);
    jsonkit_add_u64 (s, "in_doubt", r->in_doubt);
    jsonkit_add_u64 (s, "dropped", r->dropped);
    jsonkit_add_u64 (s, "malformed", r->malformed);
    jsonkit_add_u64 (s, "wrong_shard", r->wrong_shard);
    jsonkit_add_u64 (s, "last_timestamp", r->last_timestamp);
    jsonkit_add_u64 (s, "pid", r->pid);
    jsonkit_add_u64 (s, "uptime_ms", r->uptime_ms);
    jsonkit_add_u64 (s, "ring_shards", r->ring_shards);
    jsonkit_add_u64 (s, "checkpoints", r->checkpoints);
    jsonkit_add_u64 (s, "store_keys_written", r->store_keys_written);
    jsonkit_add_u64 (s, "store_bytes_written", r->store_bytes_written);
    jsonkit_add_u64 (s, "wal_bytes", r->wal_bytes);
    jsonkit_add_u64 (s, "wal_syncs", r->wal_syncs);
    jsonkit_add_u64 (s, "deadline_ms", r->deadline_ms);
    jsonkit_add_u64 (s, "prepare_timeout_ms", r->prepare_timeout_ms);
    jsonkit_add_u64 (s, "arcs_unreceived", r->arcs_unreceived);
    jsonkit_add_string (s, "security", r->insecure ? "insecure" : "curve");
    jsonkit_add_u64 (s, "keys", r->keys);
    jsonkit_add_u64 (s, "handshakes_refused", r->handshakes_refused);
    jsonkit_add_u64 (s, "unauthorized", r->unauthorized);
    jsonkit_add_u64 (s, "epoch_jumps_refused", r->epoch_jumps_refused);
    jsonkit_add_u64 (s, "turn_p99_us", r->turn_p99_us);
    jsonkit_add_u64 (s, "in_doubt_oldest_ms", r->in_doubt_oldest_ms);
    //  Replication (docs/replication.md): a standby's position is its
    //  `commits`; a primary's mode is flagged in its durability, and its
    //  link is stalled when its standby has not acknowledged in time.
    cJSON *repl = jsonkit_add_object (s, "replication");
    if (r->state == RL_SHARD_STANDBY) {
        jsonkit_add_string (repl, "role", "standby");
        jsonkit_add_u64 (repl, "position", r->commits);
    } else if (r->durability & (RL_DURABILITY_REPL_SEMI | RL_DURABILITY_REPL_ASYNC)) {
        jsonkit_add_string (repl, "role", "primary");
        jsonkit_add_string (repl, "mode",
                            (r->durability & RL_DURABILITY_REPL_SEMI) ? "semi" : "async");
        jsonkit_add_string (repl, "link",
                            r->state == RL_SHARD_STALLED ? "stalled" : "acknowledging");
    } else {
        jsonkit_add_string (repl, "role", "none");
    }
}

//  The state column (5 wide): up, FAIL, STALL (stalled), stby (a standby),
//  FENCE (a former primary whose standby was promoted) or ? (a state this
//  version does not know).
static const char *
s_state_word (const cJSON *s)
{
    const char *state = jsonkit_text (s, "state");
    return strcmp (state, "serving") == 0   ? "up"
           : strcmp (state, "failed") == 0  ? "FAIL"
           : strcmp (state, "stalled") == 0 ? "STALL"
           : strcmp (state, "standby") == 0 ? "stby"
           : strcmp (state, "fenced") == 0  ? "FENCE"
                                            : "?";
}

//  The durability column (12 wide): sync, nosync or manual (the WAL held
//  until the group commit), and a primary's replication mode, +semi or
//  +ASYNC; the whole label is in --json and on the replication line.
static const char *
s_durability_word (const cJSON *s, char *out, size_t size)
{
    const char *name = jsonkit_text (s, "durability");
    const char *base = strncmp (name, "nosync", 6) == 0          ? "nosync"
                       : strncmp (name, "sync, manual", 12) == 0 ? "manual"
                       : strncmp (name, "sync", 4) == 0          ? "sync"
                                                                 : "unknown";
    const cJSON *repl = jsonkit_get (s, "replication");
    const char *mode = "";
    if (repl && strcmp (jsonkit_text (repl, "role"), "primary") == 0) {
        mode = strcmp (jsonkit_text (repl, "mode"), "semi") == 0 ? "+semi" : "+ASYNC";
    }
    snprintf (out, size, "%s%s", base, mode);
    return out;
}

//  One line on a shard's replication, when it has any.
static void
s_status_replication_line (const cJSON *s)
{
    const cJSON *repl = jsonkit_get (s, "replication");
    const char *role = repl ? jsonkit_text (repl, "role") : "none";
    if (strcmp (role, "standby") == 0) {
        printf ("    replication: standby at position %s of its primary's stream (serves status "
                "and promote only)",
                jsonkit_text (repl, "position"));
        if (jsonkit_get (repl, "state")) {
            printf (", %s, quorum %s of %s", jsonkit_text (repl, "state"),
                    jsonkit_text (repl, "quorum"), jsonkit_text (repl, "standbys"));
        }
        printf ("\n");
    } else if (strcmp (role, "primary") == 0) {
        bool stalled = strcmp (jsonkit_text (repl, "link"), "stalled") == 0;
        printf ("    replication: primary, %s, standby %s",
                strcmp (jsonkit_text (repl, "mode"), "semi") == 0 ? "semi-sync"
                                                                  : "ASYNC (invariant 9 suspended)",
                stalled ? "STALLED (fewer than the quorum acknowledged within --repl-timeout-ms)"
                        : "acknowledging");
        const cJSON *links = jsonkit_get (repl, "links");
        if (links) {
            printf (", quorum %s of %s at position %s of %s\n", jsonkit_text (repl, "quorum"),
                    jsonkit_text (repl, "standbys"), jsonkit_text (repl, "quorum_position"),
                    jsonkit_text (repl, "tapped"));
            const cJSON *l;
            cJSON_ArrayForEach (l, links)
            {
                printf ("      standby %s: %s, position %s\n", jsonkit_text (l, "endpoint"),
                        jsonkit_text (l, "state"), jsonkit_text (l, "position"));
            }
        } else {
            printf ("\n");
        }
    }
}

//  The main table: one row per shard of the ring, alarms first.
static void
s_status_main_rows (const cJSON *tree)
{
    printf ("%-10s %-24s %-5s %6s %5s %10s %10s %10s %-12s %8s %11s %9s\n", "shard", "address",
            "state", "alarms", "epoch", "accounts", "transfers", "requests", "durability",
            "in-doubt", "frozen-arcs", "drop/bad");
    const cJSON *s;
    cJSON_ArrayForEach (s, jsonkit_get (tree, "shards"))
    {
        const char *name = jsonkit_text (s, "name");
        const char *address = jsonkit_text (s, "address");
        if (!jsonkit_true (s, "up")) {
            if (jsonkit_has (s, "error")) {
                printf ("%-10s %-24s %-5s (answered %s)\n", name, address, "ERROR",
                        jsonkit_text (s, "error"));
            } else if (jsonkit_has (s, "handshake")) {
                printf ("%-10s %-24s %-5s (%s)\n", name, address, "CURVE",
                        strcmp (jsonkit_text (s, "handshake"), "refused") == 0
                            ? "it refused this client's key: not among the keys it accepts"
                            : "the handshake failed: the key the ring gives is not its key");
            } else {
                printf ("%-10s %-24s %-5s (no answer within the probe timeout)\n", name, address,
                        "DOWN");
            }
            continue;
        }
        char drop_bad[2 * RLCTL_NUMBER_TEXT_SIZE];
        snprintf (drop_bad, sizeof drop_bad, "%s/%s", jsonkit_text (s, "dropped"),
                  jsonkit_text (s, "malformed"));
        char durability[24];
        printf ("%-10s %-24s %-5s %6s %5s %10s %10s %10s %-12s %8s %11s %9s\n", name, address,
                s_state_word (s), jsonkit_text (s, "alarms"), jsonkit_text (s, "epoch"),
                jsonkit_text (s, "accounts"), jsonkit_text (s, "transfers"),
                jsonkit_text (s, "requests"), s_durability_word (s, durability, sizeof durability),
                jsonkit_text (s, "in_doubt"), jsonkit_text (s, "arcs_unreceived"), drop_bad);
        if (strcmp (jsonkit_text (s, "reported_name"), name) != 0) {
            printf ("    warning: the process at this address calls itself '%s'\n",
                    jsonkit_text (s, "reported_name"));
        }
        s_status_replication_line (s);
        if (jsonkit_has (tree, "ring_epoch")
            && jsonkit_u64 (s, "epoch") != jsonkit_u64 (tree, "ring_epoch")) {
            printf ("    warning: serves ring epoch %s, not %s\n", jsonkit_text (s, "epoch"),
                    jsonkit_text (tree, "ring_epoch"));
        }
        if (strcmp (jsonkit_text (s, "security"), "insecure") == 0) {
            printf ("    warning: INSECURE: started with --insecure, anyone who reaches it can "
                    "do anything\n");
        } else {
            printf ("    curve: %s keys, %s handshakes refused, %s requests unauthorized\n",
                    jsonkit_text (s, "keys"), jsonkit_text (s, "handshakes_refused"),
                    jsonkit_text (s, "unauthorized"));
        }
    }
}

//  The second table: the other counters of the shards that answered.
static void
s_status_counter_rows (const cJSON *tree)
{
    printf ("\n%-10s %8s %10s %11s %11s %11s %12s %14s %14s %10s %8s %10s %11s %10s %8s %8s %11s "
            "%s\n",
            "shard", "inflight", "commits", "wrong-shard", "checkpoints", "ring-shards",
            "store keys", "store bytes", "wal bytes", "wal syncs", "pid", "uptime s", "deadline ms",
            "prepare ms", "p99 ms", "oldest s", "epoch-jumps", "last timestamp");
    const cJSON *s;
    cJSON_ArrayForEach (s, jsonkit_get (tree, "shards"))
    {
        if (!jsonkit_true (s, "up")) {
            continue;
        }
        printf (
            "%-10s %8s %10s %11s %11s %11s %12s %14s %14s %10s %8s %10.1f %11s %10s %8.2f %8.1f "
            "%11s %s\n",
            jsonkit_text (s, "name"), jsonkit_text (s, "inflight"), jsonkit_text (s, "commits"),
            jsonkit_text (s, "wrong_shard"), jsonkit_text (s, "checkpoints"),
            jsonkit_text (s, "ring_shards"), jsonkit_text (s, "store_keys_written"),
            jsonkit_text (s, "store_bytes_written"), jsonkit_text (s, "wal_bytes"),
            jsonkit_text (s, "wal_syncs"), jsonkit_text (s, "pid"),
            (double) jsonkit_u64 (s, "uptime_ms") / 1000, jsonkit_text (s, "deadline_ms"),
            jsonkit_text (s, "prepare_timeout_ms"), (double) jsonkit_u64 (s, "turn_p99_us") / 1000,
            (double) jsonkit_u64 (s, "in_doubt_oldest_ms") / 1000,
            jsonkit_text (s, "epoch_jumps_refused"), jsonkit_text (s, "last_timestamp"));
    }
}

static void
s_status_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    const cJSON *shards = jsonkit_get (tree, "shards");
    int count = cJSON_GetArraySize (shards);
    uint64_t down = jsonkit_u64 (tree, "down");
    if (jsonkit_has (tree, "ring_epoch")) {
        printf ("ring epoch %s from %s: %d shard%s, %" PRIu64 " down\n\n",
                jsonkit_text (tree, "ring_epoch"), ctx->connect, count, count == 1 ? "" : "s",
                down);
    } else {
        printf ("NO RING: %s\nshowing the status of %s alone (%d endpoint%s, %" PRIu64 " down)\n\n",
                jsonkit_text (tree, "ring_error"), ctx->connect, count, count == 1 ? "" : "s",
                down);
    }
    const cJSON *router = jsonkit_get (tree, "router");
    if (router) {
        printf ("router %s at %s: deadline %s ms, %s deadline-order error%s, %s\n\n",
                jsonkit_text (router, "name"), ctx->connect, jsonkit_text (router, "deadline_ms"),
                jsonkit_text (router, "deadline_errors"),
                jsonkit_u64 (router, "deadline_errors") == 1 ? "" : "s",
                strcmp (jsonkit_text (router, "security"), "insecure") == 0
                    ? "INSECURE (started with --insecure)"
                    : "curve");
    }
    s_status_main_rows (tree);
    if (down < (uint64_t) count) {
        s_status_counter_rows (tree);
    }
    const cJSON *s;
    cJSON_ArrayForEach (s, shards)
    {
        if (jsonkit_true (s, "up") && strcmp (jsonkit_text (s, "state"), "failed") == 0) {
            printf ("\nFAILED: %s's store failed (a write, sync or checkpoint): it answers "
                    "storage_error to everything but status. Its log says why; free or fix the "
                    "disk, then restart it: it recovers what was acknowledged\n",
                    jsonkit_text (s, "name"));
        }
        if (jsonkit_true (s, "up") && jsonkit_u64 (s, "arcs_unreceived")) {
            printf ("\nFROZEN: %s gained %s arc%s of the ring whose data has not arrived: its "
                    "accounts there answer frozen until it does (docs/rebalance.md)\n",
                    jsonkit_text (s, "name"), jsonkit_text (s, "arcs_unreceived"),
                    jsonkit_u64 (s, "arcs_unreceived") == 1 ? "" : "s");
        }
        if (jsonkit_true (s, "up") && strcmp (jsonkit_text (s, "state"), "stalled") == 0) {
            printf ("\nSTALLED: %s is a semi-synchronous primary whose standby has not "
                    "acknowledged within --repl-timeout-ms: new writes are answered busy and "
                    "replies already made wait (their transfers are applied; nothing is lost). "
                    "Bring the standby back (it catches up), promote it, or go on without it "
                    "with 'rlctl --connect %s degrade' (invariant 9 suspended; "
                    "docs/replication.md)\n",
                    jsonkit_text (s, "name"), jsonkit_text (s, "address"));
        }
        if (jsonkit_true (s, "up") && strcmp (jsonkit_text (s, "state"), "fenced") == 0) {
            printf ("\nFENCED: %s is a former primary whose standby was promoted: it answers "
                    "fenced to everything but status. Stop it; start it as a standby of the new "
                    "primary (a fenced data directory is wiped and re-seeded; "
                    "docs/replication.md, the runbook)\n",
                    jsonkit_text (s, "name"));
        }
        if (jsonkit_u64 (s, "alarms")) {
            printf ("\nALARM: %s raised %s two-phase alarm%s (a contrary or unknown decision): "
                    "see docs/two-phase.md, \"Admin\", and the shard's log\n",
                    jsonkit_text (s, "name"), jsonkit_text (s, "alarms"),
                    jsonkit_u64 (s, "alarms") == 1 ? "" : "s");
        }
    }
    if (router && jsonkit_u64 (router, "deadline_errors")) {
        printf ("\nDEADLINE ORDER: router %s found shards that answer later than its "
                "--shard-deadline-ms (%s times): creates may end outcome_unknown where a "
                "definite aborted was due; its log names them (docs/router.md)\n",
                jsonkit_text (router, "name"), jsonkit_text (router, "deadline_errors"));
    }
    if (down) {
        printf ("\n%" PRIu64 " shard%s did not answer: accounts they own cannot be served; see "
                "tools/cluster.sh status and the shard logs\n",
                down, down == 1 ? "" : "s");
    }
    const cJSON *line;
    cJSON_ArrayForEach (line, jsonkit_get (tree, "attention"))
    {
        printf ("%sATTENTION: %s\n", line == jsonkit_get (tree, "attention")->child ? "\n" : "",
                cJSON_GetStringValue (line));
    }
}

//  What in a status tree needs an operator now although its shard
//  answered: a state other than serving, a frozen arc, another epoch (with
//  a ring) or name than the ring gives it. Each is a line of "attention";
//  the count, which makes status exit 1 as a shard down does, so that a
//  script that checks the exit code sees a failed store or a fenced
//  primary, not only a silent one. Counters since a process started (its
//  two-phase alarms, the router's deadline-order errors) are not: nothing
//  clears them but a restart, so the exit code would never come back to 0
//  (their lines under the table, and the metrics' alerts, say them).
static size_t
s_status_attention (cJSON *tree)
{
    cJSON *list = jsonkit_add_array (tree, "attention");
    char line[192];
    const cJSON *s;
    cJSON_ArrayForEach (s, jsonkit_get (tree, "shards"))
    {
        if (!jsonkit_true (s, "up")) {
            continue;
        }
        const char *name = jsonkit_text (s, "name");
        if (strcmp (jsonkit_text (s, "state"), "serving") != 0) {
            snprintf (line, sizeof line, "%s is %s", name, jsonkit_text (s, "state"));
            jsonkit_add_string (list, NULL, line);
        }
        if (jsonkit_u64 (s, "arcs_unreceived")) {
            snprintf (line, sizeof line, "%s has %s frozen arcs", name,
                      jsonkit_text (s, "arcs_unreceived"));
            jsonkit_add_string (list, NULL, line);
        }
        if (jsonkit_has (tree, "ring_epoch")
            && jsonkit_u64 (s, "epoch") != jsonkit_u64 (tree, "ring_epoch")) {
            snprintf (line, sizeof line, "%s serves ring epoch %s, not %s", name,
                      jsonkit_text (s, "epoch"), jsonkit_text (tree, "ring_epoch"));
            jsonkit_add_string (list, NULL, line);
        }
        if (jsonkit_has (tree, "ring_epoch")
            && strcmp (jsonkit_text (s, "reported_name"), name) != 0) {
            snprintf (line, sizeof line, "the process at %s's address calls itself '%s'", name,
                      jsonkit_text (s, "reported_name"));
            jsonkit_add_string (list, NULL, line);
        }
    }
    return (size_t) cJSON_GetArraySize (list);
}

//  The ring at --connect, silently: 0, or the client's code with why in
//  words (why_size bytes).
static int
s_read_ring (const rlctl_ctx_t *ctx, ring_t **ring_p, char *why, size_t why_size)
{
    *ring_p = NULL;
    rl_client_t *client = rl_client_new (ctx->connect);
    if (!client) {
        snprintf (why, why_size, "'%.255s' is not a list of ZeroMQ endpoints", ctx->connect);
        return RL_CLIENT_ERR_SEND;
    }
    char err[256];
    int rc = rlctl_ring_get (client, ctx->timeout_ms, ring_p, err, sizeof err);
    rl_client_destroy (&client);
    if (rc && err[0]) {
        snprintf (why, why_size, "the ring from %.255s does not decode: %s", ctx->connect, err);
    } else if (rc == RL_CLIENT_TIMEOUT) {
        snprintf (
            why, why_size,
            "the ring read at %.255s got no answer within %d ms (a primary's replies wait for "
            "its standby's acknowledgement; a status is answered at once)",
            ctx->connect, ctx->timeout_ms);
    } else if (rc > 0) {
        snprintf (why, why_size, "the ring read at %.255s was answered %s", ctx->connect,
                  rl_status_name ((uint32_t) rc));
    } else if (rc) {
        snprintf (why, why_size, "the ring read at %.255s: %s", ctx->connect,
                  rl_client_strerror (rc));
    }
    return rc;
}

//  A replicated shard's quorum and each standby's position (repl_status),
//  into its "replication" object; nothing when it does not answer.
static void
s_add_repl (cJSON *s, const rl_status_rec_t *r, const char *endpoint, int timeout_ms)
{
    cJSON *repl = (cJSON *) jsonkit_get (s, "replication");
    if (!repl || strcmp (jsonkit_text (repl, "role"), "none") == 0) {
        return;
    }
    (void) r;
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = 0;
    rl_client_t *client = rl_client_new (endpoint);
    int rc = client ? rl_client_repl_status (client, recs, &count, timeout_ms) : -1;
    rl_client_destroy (&client);
    if (rc != 0) {
        return; //  an older shard, or gone since its status
    }
    static const char *states[] = {"hello",  "seeding",  "streaming",
                                   "fenced", "promoted", "refusing"};
    const rl_repl_rec_t *me = &recs[0];
    if (me->role == RL_REPL_PRIMARY) {
        jsonkit_add_u64 (repl, "quorum", me->quorum);
        jsonkit_add_u64 (repl, "standbys", me->standbys);
        jsonkit_add_u64 (repl, "tapped", me->position);
        jsonkit_add_u64 (repl, "quorum_position", me->quorum_position);
        cJSON *links = jsonkit_add_array (repl, "links");
        for (size_t i = 1; i < count; i++) {
            cJSON *l = jsonkit_add_object (links, NULL);
            jsonkit_add_string (l, "endpoint", recs[i].endpoint);
            jsonkit_add_string (l, "state", recs[i].state < 6 ? states[recs[i].state] : "?");
            jsonkit_add_u64 (l, "position", recs[i].position);
        }
    } else if (me->role == RL_REPL_STANDBY) {
        jsonkit_add_string (repl, "state", me->state < 6 ? states[me->state] : "?");
        jsonkit_add_u64 (repl, "incarnation", me->incarnation);
        jsonkit_add_u64 (repl, "quorum", me->quorum);
        jsonkit_add_u64 (repl, "standbys", me->standbys);
        jsonkit_add_string (repl, "primary", me->endpoint);
    }
}

//  status without a ring: the endpoints of --connect as they answered.
static int
s_status_without_ring (rlctl_ctx_t *ctx, const char **fronts, size_t count,
                       const rl_status_rec_t *records, const int *rcs, size_t down, const char *why)
{
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "connect", ctx->connect);
    jsonkit_add_string (tree, "ring_error", why);
    jsonkit_add_u64 (tree, "down", down);
    cJSON *list = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < count; i++) {
        cJSON *s = jsonkit_add_object (list, NULL);
        jsonkit_add_string (s, "name", rcs[i] == 0 ? records[i].name : "?");
        jsonkit_add_string (s, "address", fronts[i]);
        jsonkit_add_bool (s, "up", rcs[i] == 0);
        if (rcs[i] > 0) {
            jsonkit_add_string (s, "error", rl_status_name ((uint32_t) rcs[i]));
        } else if (rcs[i] == RL_CLIENT_ERR_HANDSHAKE || rcs[i] == RL_CLIENT_ERR_REFUSED) {
            s_add_handshake (s, rcs[i]);
        } else if (rcs[i] == 0) {
            s_add_status_record (s, &records[i]);
            s_add_repl (s, &records[i], fronts[i], s_probe_ms (ctx));
        }
    }
    //  Exit 1: this is --connect's view alone, not the cluster's.
    (void) s_status_attention (tree);
    return rlctl_emit (ctx, &tree, s_status_table, RLCTL_EXIT_FAILED);
}

int
rlctl_cmd_status (rlctl_ctx_t *ctx)
{
    //  --connect's own status first: answered after the local sync only,
    //  so a stalled primary shows (DESIGN).
    static char connect[S_CONNECT_TEXT_MAX];
    const char *fronts[RL_SHARDS_MAX];
    size_t front_count = rlctl_connect_endpoints (ctx, connect, sizeof connect, fronts);
    if (front_count == 0) {
        return rlctl_usage_error ("--connect '%s': expected tcp://HOST:PORT, or a comma-separated "
                                  "list of them (at most as many as a ring has shards)",
                                  ctx->connect);
    }
    static rl_status_rec_t front_recs[RL_SHARDS_MAX];
    int front_rcs[RL_SHARDS_MAX];
    size_t fronts_down = rl_client_status_all (fronts, front_count, s_probe_ms (ctx), front_recs,
                                               front_rcs);
    //  A stalled primary holds its ring read until its standby acknowledges
    //  (for good, if it never does); a standby refuses it.
    char why[1024] = "";
    for (size_t i = 0; i < front_count && !why[0]; i++) {
        if (front_rcs[i] == 0
            && (front_recs[i].state == RL_SHARD_STALLED
                || front_recs[i].state == RL_SHARD_STANDBY)) {
            snprintf (why, sizeof why, "%.31s (%.255s) is %s: %s", front_recs[i].name, fronts[i],
                      rl_shard_state_name (front_recs[i].state),
                      front_recs[i].state == RL_SHARD_STANDBY
                          ? "a standby serves no ring"
                          : "its ring read waits for its standby's acknowledgement");
        }
    }
    ring_t *ring = NULL;
    if (!why[0]) {
        int rc = s_read_ring (ctx, &ring, why, sizeof why);
        if (rc && fronts_down == front_count) {
            //  Nothing answered at all: the cluster is not there.
            if (strstr (why, "does not decode")) {
                fprintf (stderr, "rlctl: status: %s\n", why);
                return RLCTL_EXIT_FAILED;
            }
            return rlctl_call_failed (ctx, "status", rc, false);
        }
    }
    if (!ring) {
        return s_status_without_ring (ctx, fronts, front_count, front_recs, front_rcs, fronts_down,
                                      why);
    }
    //  Every shard at once, under one deadline: at most one probe timeout.
    size_t shards = ring_shard_count (ring);
    const char *endpoints[RL_SHARDS_MAX];
    static rl_status_rec_t records[RL_SHARDS_MAX];
    int rcs[RL_SHARDS_MAX];
    s_endpoints (ring, endpoints);
    size_t down = rl_client_status_all (endpoints, shards, s_probe_ms (ctx), records, rcs);
    //  --connect itself: a router (not a shard of the ring) shows its own
    //  deadline and the order errors it counted.
    const rl_status_rec_t *front = NULL;
    for (size_t i = 0; i < front_count && !front; i++) {
        if (front_rcs[i] == 0 && ring_shard_find (ring, front_recs[i].name) < 0) {
            front = &front_recs[i];
        }
    }
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "connect", ctx->connect);
    jsonkit_add_u64 (tree, "ring_epoch", ring_epoch (ring));
    jsonkit_add_u64 (tree, "down", down);
    if (front) {
        cJSON *router = jsonkit_add_object (tree, "router");
        jsonkit_add_string (router, "name", front->name);
        jsonkit_add_u64 (router, "deadline_ms", front->deadline_ms);
        jsonkit_add_u64 (router, "deadline_errors", front->deadline_errors);
        jsonkit_add_u64 (router, "requests", front->requests);
        jsonkit_add_string (router, "security", front->insecure ? "insecure" : "curve");
        jsonkit_add_u64 (router, "handshakes_refused", front->handshakes_refused);
        jsonkit_add_u64 (router, "unauthorized", front->unauthorized);
        jsonkit_add_u64 (router, "epoch_jumps_refused", front->epoch_jumps_refused);
    }
    cJSON *list = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < shards; i++) {
        cJSON *s = jsonkit_add_object (list, NULL);
        jsonkit_add_string (s, "name", ring_shard_name (ring, i));
        jsonkit_add_string (s, "address", ring_shard_endpoint (ring, i));
        jsonkit_add_bool (s, "up", rcs[i] == 0);
        if (rcs[i] > 0) {
            //  It answered, with a message-level error.
            jsonkit_add_string (s, "error", rl_status_name ((uint32_t) rcs[i]));
        } else if (rcs[i] == RL_CLIENT_ERR_HANDSHAKE || rcs[i] == RL_CLIENT_ERR_REFUSED) {
            s_add_handshake (s, rcs[i]);
        } else if (rcs[i] == 0) {
            s_add_status_record (s, &records[i]);
            s_add_repl (s, &records[i], endpoints[i], s_probe_ms (ctx));
        }
    }
    ring_destroy (&ring);
    size_t attention = s_status_attention (tree);
    return rlctl_emit (ctx, &tree, s_status_table,
                       down || attention ? RLCTL_EXIT_FAILED : RLCTL_EXIT_OK);
}

//  Admin: in-doubt transfers and the reservation audit, asked of every shard ------

static void
s_add_in_doubt (cJSON *list, const char *shard, const rl_in_doubt_rec_t *r, uint64_t now_ns)
{
    const rl_tp_rec_t *tp = &r->prepare.tp;
    uint64_t created = r->prepare.reserved[0];
    double age_s = created && now_ns > created ? (double) (now_ns - created) / 1e9 : 0;
    char id_text[RLCTL_ID_TEXT_SIZE];
    char attempt[2 * RLCTL_NUMBER_TEXT_SIZE];
    snprintf (attempt, sizeof attempt, "%" PRIu64 ".%" PRIu64, tp->attempt.counter,
              tp->attempt.seq);
    cJSON *item = jsonkit_add_object (list, NULL);
    jsonkit_add_string (item, "shard", shard);
    jsonkit_add_string (item, "id", rlctl_id_text (tp->id, id_text));
    jsonkit_add_string (item, "attempt", attempt);
    jsonkit_add_string (item, "role",
                        r->prepare.reserved[1] == RL_ROLE_COORDINATOR ? "coordinator"
                                                                      : "participant");
    jsonkit_add_string (item, "peer", r->peer);
    jsonkit_add_string (item, "state", rl_tp_state_name (tp->state));
    jsonkit_add_u64 (item, "amount", tp->amount);
    jsonkit_add_fixed (item, "age_s", age_s, 3);
}

static void
s_in_doubt_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%-10s %-34s %15s %-11s %-10s %-9s %12s %8s\n", "shard", "transfer id", "attempt",
            "role", "peer", "state", "amount", "age s");
    const cJSON *list = jsonkit_get (tree, "in_doubt");
    const cJSON *r;
    cJSON_ArrayForEach (r, list)
    {
        if (jsonkit_has (r, "error")) {
            printf ("%-10s DOWN or refused: %s\n", jsonkit_text (r, "shard"),
                    jsonkit_text (r, "error"));
            continue;
        }
        //  The attempt as COUNTER.SEQ, the counter right-aligned on the dot.
        const char *attempt = jsonkit_text (r, "attempt");
        const char *dot = strchr (attempt, '.');
        int counter_size = dot ? (int) (dot - attempt) : (int) strlen (attempt);
        printf ("%-10s %-34s %8.*s.%-6s %-11s %-10s %-9s %12s %8.1f\n", jsonkit_text (r, "shard"),
                jsonkit_text (r, "id"), counter_size, attempt, dot ? dot + 1 : "",
                jsonkit_text (r, "role"), jsonkit_text (r, "peer"), jsonkit_text (r, "state"),
                jsonkit_text (r, "amount"), jsonkit_double (r, "age_s"));
    }
    if (cJSON_GetArraySize (list) == 0) {
        printf ("(nothing in doubt: no live attempt, undelivered decision or prepared record)\n");
    }
}

int
rlctl_cmd_in_doubt (rlctl_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "in-doubt");
    if (!ring) {
        return RLCTL_EXIT_FAILED;
    }
    size_t shards = ring_shard_count (ring);
    const char *endpoints[RL_SHARDS_MAX];
    rl_in_doubt_rec_t *records[RL_SHARDS_MAX];
    size_t counts[RL_SHARDS_MAX];
    int rcs[RL_SHARDS_MAX];
    s_endpoints (ring, endpoints);
    size_t failed = rl_client_in_doubt_all (endpoints, shards, s_probe_ms (ctx), records, counts,
                                            rcs);
    uint64_t now_ns = (uint64_t) zclock_time () * 1000000ull;
    cJSON *tree = jsonkit_object ();
    cJSON *list = jsonkit_add_array (tree, "in_doubt");
    for (size_t i = 0; i < shards; i++) {
        if (rcs[i] != 0) {
            cJSON *item = jsonkit_add_object (list, NULL);
            jsonkit_add_string (item, "shard", ring_shard_name (ring, i));
            char why[256];
            jsonkit_add_string (item, "error",
                                s_shard_error (rcs[i], s_probe_ms (ctx), why, sizeof why));
        }
        for (size_t k = 0; rcs[i] == 0 && k < counts[i]; k++) {
            s_add_in_doubt (list, ring_shard_name (ring, i), &records[i][k], now_ns);
        }
        free (records[i]);
    }
    ring_destroy (&ring);
    return rlctl_emit (ctx, &tree, s_in_doubt_table, failed ? RLCTL_EXIT_FAILED : RLCTL_EXIT_OK);
}

static void
s_audit_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%-10s %-4s %10s %8s %9s\n", "shard", "", "accounts", "live", "prepared");
    size_t bad = 0;
    const cJSON *a;
    cJSON_ArrayForEach (a, jsonkit_get (tree, "audit"))
    {
        bool ok = jsonkit_true (a, "ok");
        bad += !ok;
        if (jsonkit_has (a, "error")) {
            printf ("%-10s DOWN or refused: %s\n", jsonkit_text (a, "shard"),
                    jsonkit_text (a, "error"));
            continue;
        }
        printf ("%-10s %-4s %10s %8s %9s  %s\n", jsonkit_text (a, "shard"), ok ? "ok" : "BAD",
                jsonkit_text (a, "accounts"), jsonkit_text (a, "live"),
                jsonkit_text (a, "prepared"),
                ok ? "every reservation accounted for" : jsonkit_text (a, "message"));
    }
    if (bad) {
        printf ("\n%zu shard%s failed the audit or did not answer: see the shard logs\n", bad,
                bad == 1 ? "" : "s");
    }
}

int
rlctl_cmd_audit (rlctl_ctx_t *ctx)
{
    ring_t *ring = s_fetch_ring (ctx, "audit");
    if (!ring) {
        return RLCTL_EXIT_FAILED;
    }
    size_t shards = ring_shard_count (ring);
    const char *endpoints[RL_SHARDS_MAX];
    static rl_audit_rec_t audits[RL_SHARDS_MAX];
    int rcs[RL_SHARDS_MAX];
    s_endpoints (ring, endpoints);
    rl_client_audit_all (endpoints, shards, s_probe_ms (ctx), audits, rcs);
    size_t bad = 0;
    cJSON *tree = jsonkit_object ();
    cJSON *list = jsonkit_add_array (tree, "audit");
    for (size_t i = 0; i < shards; i++) {
        const rl_audit_rec_t *a = &audits[i];
        bool ok = rcs[i] == 0 && a->ok;
        bad += !ok;
        cJSON *item = jsonkit_add_object (list, NULL);
        jsonkit_add_string (item, "shard", ring_shard_name (ring, i));
        jsonkit_add_bool (item, "ok", ok);
        jsonkit_add_u64 (item, "accounts", a->accounts);
        jsonkit_add_u64 (item, "live", a->live);
        jsonkit_add_u64 (item, "prepared", a->prepared);
        char why[256];
        s_shard_error (rcs[i], s_probe_ms (ctx), why, sizeof why);
        jsonkit_add_string (item, "message", rcs[i] == 0 ? a->message : why);
        if (rcs[i] != 0) {
            jsonkit_add_string (item, "error", why);
        }
    }
    ring_destroy (&ring);
    return rlctl_emit (ctx, &tree, s_audit_table, bad ? RLCTL_EXIT_FAILED : RLCTL_EXIT_OK);
}

//  Resolve -----------------------------------------------------------------------

static void
s_resolve_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%s\n", jsonkit_text (tree, "message"));
}

//  resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort --force: a heuristic
//  decision on a prepared record whose coordinator is gone for good (fenced
//  out of the shard's ring). The shard refuses without --force.
int
rlctl_cmd_resolve (rlctl_ctx_t *ctx)
{
    const char *shard = ctx->args[1], *decision = ctx->args[5];
    rl_tp_rec_t rec = {0};
    snprintf (rec.coordinator, sizeof (rec.coordinator), "%s", ctx->args[2]);
    unsigned long long counter = 0, seq = 0;
    char tail = 0;
    if (rlctl_parse_id (ctx->args[3], &rec.id)
        || sscanf (ctx->args[4], "%llu.%llu%c", &counter, &seq, &tail) != 2
        || (strcmp (decision, "commit") && strcmp (decision, "abort"))) {
        return rlctl_usage_error ("usage: resolve SHARD COORDINATOR ID COUNTER.SEQ commit|abort "
                                  "--force (attempt as listed by 'rlctl in-doubt'): got '%s'",
                                  ctx->args[4]);
    }
    rec.attempt.counter = counter;
    rec.attempt.seq = seq;
    rec.state = strcmp (decision, "commit") == 0 ? RL_TP_COMMIT : RL_TP_ABORT;
    rec.result = (ctx->given & RLCTL_O_FORCE) ? RL_RESOLVE_FORCE : 0;
    ring_t *ring = s_fetch_ring (ctx, "resolve");
    if (!ring) {
        return RLCTL_EXIT_FAILED;
    }
    int index = ring_shard_find (ring, shard);
    if (index < 0) {
        ring_destroy (&ring);
        return rlctl_usage_error ("no shard '%s' in the ring (see 'rlctl status')", shard);
    }
    rl_client_t *client = rl_client_new (ring_shard_endpoint (ring, (size_t) index));
    rl_tp_rec_t answer = {0};
    int rc = client ? rl_client_resolve (client, &rec, &answer, ctx->timeout_ms)
                    : RL_CLIENT_ERR_SEND;
    rl_client_destroy (&client);
    ring_destroy (&ring);
    if (rc != 0) {
        fprintf (stderr, "rlctl: resolve on %s: %s\n", shard, rl_client_strerror (rc));
        return RLCTL_EXIT_FAILED;
    }
    uint32_t why = answer.state == RL_TP_ACKED ? 0 : answer.result;
    char message[256];
    if (why == 0) {
        snprintf (message, sizeof message,
                  "resolved: heuristic record written; a contrary "
                  "decision arriving later raises an alarm");
    } else {
        snprintf (message, sizeof message, "refused: %s%s", rl_resolve_reason (why),
                  why == RL_RESOLVE_NOT_FORCED ? " (--force)" : "");
    }
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "shard", shard);
    jsonkit_add_bool (tree, "resolved", why == 0);
    jsonkit_add_string (tree, "message", message);
    return rlctl_emit (ctx, &tree, s_resolve_table, why == 0 ? RLCTL_EXIT_OK : RLCTL_EXIT_FAILED);
}
