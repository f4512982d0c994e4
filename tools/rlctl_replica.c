/*  rlctl_replica.c: the operator's replication commands (docs/replication.md).

        rlctl --connect CLUSTER promote SHARD STANDBY[,STANDBY...] [RING-FILE]
                                          the fail-over: the standby at STANDBY
                                          becomes SHARD's primary at a new ring epoch;
                                          with several, the promotion rule (s_choose)
                                          picks it
        rlctl --connect STANDBY promote   the standby alone (the ring unchanged)
        rlctl --connect PRIMARY degrade   a semi-synchronous primary goes async, by hand

    promote and degrade are admin operations with no records (promote 80,
    degrade 81). Both are idempotent (a primary answers promote ok; a
    degraded primary answers degrade ok), so a call that timed out is sent
    again, on a new connection, up to S_ATTEMPTS_MAX times: a promoted
    standby closes its socket to open as the primary, and an answer can be
    lost with it.

    THE FAIL-OVER (promote SHARD STANDBY): every check comes before
    anything is sent that changes something.
    1. The ring: RING-FILE (text form), else --connect's; then every shard
       it names is asked for its own, and the highest epoch is the base (a
       rerun after a crash finds the ring it loaded part-way).
    2. SHARD must be in it; STANDBY must be a valid endpoint that is no
       other shard's. The target ring is the base with SHARD at STANDBY and
       the epoch + 1, or the base itself when it already names STANDBY for
       SHARD (built again on a rerun: the same bytes).
    3. STANDBY is asked its status: a standby of SHARD is promoted; a
       serving primary of SHARD is taken as promoted already (a rerun; at
       the endpoint the ring already gives SHARD, nothing changes);
       anything else (another shard or a router, a stalled, failed or
       fenced shard, no answer) is refused.
    4. Once it serves (status serving, within --timeout-ms), it is asked
       its own ring: one at the target's epoch or newer (a rebalancing
       step's target that took the step's ring first) is the base
       instead. Then the target ring is loaded into every shard it names
       (the new primary included), at once; ok is done, and so is
       epoch_not_newer unless the shard holds another ring at the
       target's epoch (then exit 1; a rerun's base, at one epoch, prefers
       a ring that does not name STANDBY for SHARD: s_newest_ring). The old
       endpoint is sent it too: an old primary still running hears it and
       fences itself (docs/replication.md, "The ring's epoch as the
       fence"); its answer, or none, changes nothing here.
    5. The routers among --connect (status names not in the ring) refuse
       load_ring and follow the shards (docs/router.md): their status is
       asked until their epoch reaches the target's, within --timeout-ms.
    Exit 0 when every shard holds the target epoch and every router of
    --connect serves it; else 1, and rerunning the same command resumes.

    SEVERAL STANDBYS (s_choose): before step 3, every standby listed is
    asked status and repl_status; one already serving (or promoted) is the
    choice of an earlier run. Else K - Q + 1 (what their primary told them)
    must answer as standbys of SHARD, or nothing is sent (exit 1); each is
    sent `fence`, and the newest copy among the fenced (incarnation, then
    position) is the STANDBY of steps 3-5, once the old primary's lease
    through the other fenced standbys has run out. A single STANDBY of a
    primary whose quorum is below its standbys is refused (exit 2).

    INVARIANTS
    1. Bad input (an unknown shard, a ring file that does not load, an
       endpoint that is not valid or is another shard's, a STANDBY that is
       not a standby of SHARD) sends nothing that changes anything: exit 2
       for what the command line alone shows, 1 for what the cluster
       answered.
    2. The target ring is a function of the base and the arguments, so
       every rerun loads the same bytes at the same epoch.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "jsonkit.h"
#include "ring.h"
#include "rlctl.h"

static void
s_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%s\n", jsonkit_text (tree, "message"));
}

#define S_ATTEMPTS_MAX 3 //  calls of an idempotent admin operation that timed out

//  Sends op to endpoint, again on a timeout: 0, or the call's code.
static int
s_call (rlctl_ctx_t *ctx, const char *endpoint, uint16_t op, const char *what)
{
    int rc = RL_CLIENT_TIMEOUT;
    for (int attempt = 0; attempt < S_ATTEMPTS_MAX && rc == RL_CLIENT_TIMEOUT; attempt++) {
        rl_client_t *client = rl_client_new (endpoint);
        if (!client) {
            fprintf (stderr, "rlctl: cannot use endpoint '%s': expected tcp://HOST:PORT\n",
                     endpoint);
            return RL_CLIENT_ERR_SEND;
        }
        rl_header_t h;
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        rc = rl_client_call (client, op, NULL, 0, 0, ctx->timeout_ms, &h, &reply, &reply_size);
        free (reply);
        rl_client_destroy (&client);
        if (rc == RL_CLIENT_TIMEOUT && attempt + 1 < S_ATTEMPTS_MAX) {
            fprintf (stderr, "rlctl: %s: no answer within %d ms; asking again\n", what,
                     ctx->timeout_ms);
        }
    }
    return rc;
}

static int
s_send (rlctl_ctx_t *ctx, uint16_t op, const char *what, const char *done)
{
    int rc = s_call (ctx, ctx->connect, op, what);
    if (rc != 0) {
        return rlctl_call_failed (ctx, what, rc, false);
    }
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "shard", ctx->connect);
    jsonkit_add_string (tree, "message", done);
    return rlctl_emit (ctx, &tree, s_table, RLCTL_EXIT_OK);
}

#define S_USAGE        "promote [SHARD STANDBY-ENDPOINT[,STANDBY-ENDPOINT...] [RING-FILE]]"
#define S_STANDBYS_MAX 4 //  a primary's standbys at most (shard/replica.h)

//  The highest-epoch ring among base and what the shards it names serve
//  (a rerun finds the ring it loaded part-way); each shard's key is
//  registered for the direct calls. The shard failed over is not asked at
//  its old endpoint (its primary is down, or holds no newer ring than its
//  peers: the ring goes to them first), but at the standby's, once it is
//  the primary. Takes *base_p, and may replace it.
static void
s_newest_ring (const rlctl_ctx_t *ctx, ring_t **base_p, const char *shard, const char *standby)
{
    ring_t *base = *base_p;
    const char *endpoints[RL_SHARDS_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < ring_shard_count (base); i++) {
        if (*ring_shard_key (base, i)) {
            rl_client_add_server_key (ring_shard_endpoint (base, i), ring_shard_key (base, i));
        }
        if (strcmp (ring_shard_name (base, i), shard) != 0) {
            endpoints[n++] = ring_shard_endpoint (base, i);
        }
    }
    endpoints[n++] = standby;
    static rl_client_reply_t replies[RL_SHARDS_MAX + 1];
    int probe = ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms : RLCTL_PROBE_TIMEOUT_MS;
    rl_client_fanout (endpoints, n, RL_OP_GET_RING, NULL, 0, 0, probe, replies);
    for (size_t i = 0; i < n; i++) {
        char err[256];
        ring_t *ring = replies[i].rc == 0 && replies[i].body
                           ? ring_decode (replies[i].body, replies[i].body_size, err, sizeof err)
                           : NULL;
        //  At one epoch, a ring that gives SHARD another endpoint than
        //  STANDBY beats one that gives it STANDBY: that is an earlier
        //  run's promotion that a shard refused for a ring of its own at
        //  the same epoch (a rebalancing step's), and the target must be
        //  newer than both (made from the step's ring: docs/replication.md).
        int at = ring ? ring_shard_find (ring, shard) : -1;
        int base_at = ring_shard_find (*base_p, shard);
        bool tie = ring && ring_epoch (ring) == ring_epoch (*base_p) && at >= 0 && base_at >= 0
                   && strcmp (ring_shard_endpoint (ring, (size_t) at), standby) != 0
                   && strcmp (ring_shard_endpoint (*base_p, (size_t) base_at), standby) == 0;
        if (ring && (ring_epoch (ring) > ring_epoch (*base_p) || tie)) {
            ring_destroy (base_p);
            *base_p = ring;
        } else {
            ring_destroy (&ring);
        }
    }
    rl_client_replies_free (replies, n);
}

//  A standby of the list, as it answered.
typedef struct {
    const char *endpoint;
    int status_rc; //  status: 0 answered
    rl_status_rec_t st;
    int repl_rc; //  repl_status: 0 answered
    rl_repl_rec_t repl;
    int64_t asked_ms; //  when repl_status answered (its lease_ms was counted before)
    bool fenced;      //  withdrawn (by this run or an earlier one) or promoted
} s_standby_t;

static void
s_ask (s_standby_t *sb, int probe_ms)
{
    rl_client_t *client = rl_client_new (sb->endpoint);
    sb->status_rc = client ? rl_client_status (client, &sb->st, probe_ms) : RL_CLIENT_ERR_SEND;
    size_t count = 0;
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    sb->repl_rc = client && sb->status_rc == 0
                      ? rl_client_repl_status (client, recs, &count, probe_ms)
                      : RL_CLIENT_ERR_SEND;
    //  After the answer: its lease_ms was counted before it left, so the
    //  end estimated from here is never early.
    sb->asked_ms = zclock_mono ();
    if (sb->repl_rc == 0) {
        sb->repl = recs[0];
    }
    rl_client_destroy (&client);
}

//  K - Q + 1: the standbys to fence so that the old primary can gather no
//  quorum, from what its standbys were told (the largest, if they differ;
//  1 when none was told: a primary that waits for every standby).
static size_t
s_needed (const s_standby_t *list, size_t n)
{
    size_t need = 1;
    for (size_t i = 0; i < n; i++) {
        const rl_repl_rec_t *r = &list[i].repl;
        if (list[i].repl_rc == 0 && r->role == RL_REPL_STANDBY && r->quorum >= 1
            && r->quorum <= r->standbys) {
            size_t k = (size_t) (r->standbys - r->quorum + 1);
            need = k > need ? k : need;
        }
    }
    return need;
}

//  THE PROMOTION RULE for several standbys (docs/replication.md, "The
//  promotion with several standbys"): fence K - Q + 1 of them, then pick
//  the newest copy among the fenced: the highest incarnation, then the
//  highest position. Every acknowledged write is on Q standbys, and any
//  K - Q + 1 of K meet any Q, so one fenced standby holds it; copies of
//  one stream are prefixes of it, so the highest position holds what
//  every other fenced copy of that stream holds, and a copy of a later
//  incarnation holds everything the earlier one acknowledged. The old
//  primary, with at most Q - 1 standbys left to acknowledge it, can
//  gather no quorum. Waits until the old primary's lease through every
//  fenced standby has run out (the chosen one waits out its own). 0 and
//  *chosen_p; else an exit code, logged. fenced: the list for the report.
static int
s_choose (rlctl_ctx_t *ctx, const char *shard, s_standby_t *list, size_t n, const char **chosen_p,
          cJSON *fenced)
{
    int probe_ms = ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms
                                                            : RLCTL_PROBE_TIMEOUT_MS;
    for (size_t i = 0; i < n; i++) {
        s_ask (&list[i], probe_ms);
    }
    //  An earlier run promoted one already: it is the choice (the others
    //  were fenced before it).
    for (size_t i = 0; i < n; i++) {
        if (list[i].status_rc == 0 && strcmp (list[i].st.name, shard) == 0
            && list[i].st.state == RL_SHARD_SERVING) {
            *chosen_p = list[i].endpoint;
            return 0;
        }
        if (list[i].repl_rc == 0 && list[i].repl.role == RL_REPL_STANDBY
            && list[i].repl.state == RL_REPL_PROMOTED && strcmp (list[i].st.name, shard) == 0) {
            *chosen_p = list[i].endpoint; //  promoted, still opening
            return 0;
        }
    }
    size_t need = s_needed (list, n);
    size_t candidates = 0;
    for (size_t i = 0; i < n; i++) {
        candidates += list[i].status_rc == 0 && list[i].st.state == RL_SHARD_STANDBY
                      && strcmp (list[i].st.name, shard) == 0;
    }
    if (candidates < need) {
        fprintf (stderr,
                 "rlctl: promote: %zu of the %zu standbys given answer as standbys of %s, and "
                 "the quorum rule needs %zu fenced (standbys - quorum + 1, as their primary "
                 "told them) so that the old primary can gather no quorum: nothing fenced, "
                 "nothing promoted\n",
                 candidates, n, shard, need);
        for (size_t i = 0; i < n; i++) {
            fprintf (stderr, "  %s: %s\n", list[i].endpoint,
                     list[i].status_rc != 0 ? "no answer"
                     : strcmp (list[i].st.name, shard) != 0
                         ? "another shard's"
                         : rl_shard_state_name (list[i].st.state));
        }
        return RLCTL_EXIT_FAILED;
    }
    //  The fence: every standby that answers, at least `need` of them.
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].status_rc != 0 || list[i].st.state != RL_SHARD_STANDBY
            || strcmp (list[i].st.name, shard) != 0) {
            continue;
        }
        int rc = s_call (ctx, list[i].endpoint, RL_OP_FENCE, "fence");
        if (rc != 0) {
            fprintf (stderr, "rlctl: promote: fencing %s: %s\n", list[i].endpoint,
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
            continue;
        }
        s_ask (&list[i], probe_ms); //  its position no longer moves
        list[i].fenced = list[i].repl_rc == 0 && list[i].repl.role == RL_REPL_STANDBY
                         && (list[i].repl.state == RL_REPL_FENCED
                             || list[i].repl.state == RL_REPL_PROMOTED);
        done += list[i].fenced;
    }
    if (done < need) {
        fprintf (stderr,
                 "rlctl: promote: %zu standbys fenced, the quorum rule needs %zu: nothing "
                 "promoted (the fenced ones stay fenced; run the same command again once more "
                 "answer)\n",
                 done, need);
        return RLCTL_EXIT_FAILED;
    }
    //  The newest copy among the fenced.
    const s_standby_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const s_standby_t *c = &list[i];
        if (!c->fenced) {
            continue;
        }
        cJSON *f = jsonkit_add_object (fenced, NULL);
        jsonkit_add_string (f, "endpoint", c->endpoint);
        jsonkit_add_u64 (f, "incarnation", c->repl.incarnation);
        jsonkit_add_u64 (f, "position", c->repl.position);
        if (c->repl.stream == 0) {
            continue; //  no complete copy: never the choice
        }
        if (!best || c->repl.incarnation > best->repl.incarnation
            || (c->repl.incarnation == best->repl.incarnation
                && c->repl.position > best->repl.position)) {
            best = c;
        }
    }
    if (!best) {
        fprintf (stderr, "rlctl: promote: no fenced standby holds a complete copy: nothing "
                         "promoted\n");
        return RLCTL_EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++) {
        const s_standby_t *c = &list[i];
        if (c->fenced && c->repl.stream && c->repl.incarnation == best->repl.incarnation
            && c->repl.nonce != best->repl.nonce) {
            //  Two lineages at one counter (a restarted old primary seeded a
            //  standby that was not fenced before): which one acknowledged
            //  writes cannot be told from here.
            fprintf (stderr,
                     "rlctl: promote: %s and %s hold copies of two different incarnations "
                     "numbered %" PRIu64 ": nothing promoted; keep the one the ring's primary "
                     "seeded, wipe the other, and run the same command again\n",
                     best->endpoint, c->endpoint, best->repl.incarnation);
            return RLCTL_EXIT_FAILED;
        }
    }
    //  The old primary's lease through the other fenced standbys: the
    //  chosen one waits out its own before it serves.
    int64_t until = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].fenced && &list[i] != best) {
            int64_t end = list[i].asked_ms + (int64_t) list[i].repl.lease_ms;
            until = end > until ? end : until;
        }
    }
    int64_t wait = until - zclock_mono ();
    if (wait > 0) {
        zclock_sleep ((int) wait);
    }
    *chosen_p = best->endpoint;
    return 0;
}

static void
s_promote_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%s: %s at %s, ring epoch %s\n\n", jsonkit_text (tree, "shard"),
            jsonkit_text (tree, "promotion"), jsonkit_text (tree, "standby"),
            jsonkit_text (tree, "epoch"));
    const cJSON *fenced = jsonkit_get (tree, "fenced");
    const cJSON *f;
    cJSON_ArrayForEach (f, fenced)
    {
        printf ("fenced standby %s: incarnation %s, position %s\n", jsonkit_text (f, "endpoint"),
                jsonkit_text (f, "incarnation"), jsonkit_text (f, "position"));
    }
    if (fenced && cJSON_GetArraySize (fenced) > 0) {
        printf ("\n");
    }
    printf ("%-12s %-8s %-40s %s\n", "name", "role", "endpoint", "ring");
    const cJSON *list = jsonkit_get (tree, "loaded");
    const cJSON *r;
    cJSON_ArrayForEach (r, list)
    {
        printf ("%-12s %-8s %-40s %s\n", jsonkit_text (r, "name"), jsonkit_text (r, "role"),
                jsonkit_text (r, "endpoint"), jsonkit_text (r, "result"));
    }
    printf ("\n%s\n", jsonkit_text (tree, "message"));
}

//  The fail-over (DESIGN): promote, then the ring at a new epoch.
static int
s_failover (rlctl_ctx_t *ctx)
{
    const char *shard = ctx->args[1];
    const char *standby = ctx->args[2];
    const char *file = ctx->arg_count > 3 ? ctx->args[3] : NULL;
    char err[512] = "";
    ring_t *base = NULL;
    if (file) {
        if (!(base = ring_load_file (file, err, sizeof err))) {
            fprintf (stderr, "rlctl: promote: the ring file %s does not load: %s (nothing sent)\n",
                     file, err);
            return RLCTL_EXIT_USAGE;
        }
    } else {
        rl_client_t *client = rlctl_client (ctx);
        if (!client) {
            return RLCTL_EXIT_USAGE;
        }
        int rc = rlctl_ring_get (client, ctx->timeout_ms, &base, err, sizeof err);
        rl_client_destroy (&client);
        if (rc && err[0]) {
            fprintf (stderr,
                     "rlctl: promote: the ring from %s does not decode: %s (nothing "
                     "changed)\n",
                     ctx->connect, err);
            return RLCTL_EXIT_FAILED;
        }
        if (rc) {
            return rlctl_call_failed (ctx, "promote: reading the ring", rc, false);
        }
    }
    //  Checks of the command line against the ring, before anything is sent.
    int at = ring_shard_find (base, shard);
    if (at < 0) {
        fprintf (stderr,
                 "rlctl: promote: no shard '%s' in the ring (epoch %" PRIu64 "); nothing sent\n",
                 shard, ring_epoch (base));
        ring_destroy (&base);
        return RLCTL_EXIT_USAGE;
    }
    //  STANDBY: one endpoint, or several (a primary's standbys, the
    //  promotion rule of s_choose), each checked as an endpoint.
    static char list_text[S_STANDBYS_MAX * RL_ENDPOINT_SIZE_MAX];
    static s_standby_t sbs[S_STANDBYS_MAX];
    size_t sb_count = 0;
    int rc = 0;
    if (strlen (standby) >= sizeof list_text) {
        fprintf (stderr, "rlctl: promote: the standby sbs is too long; nothing sent\n");
        ring_destroy (&base);
        return RLCTL_EXIT_USAGE;
    }
    snprintf (list_text, sizeof list_text, "%s", standby);
    for (char *save = NULL, *e = strtok_r (list_text, ",", &save); e;
         e = strtok_r (NULL, ",", &save)) {
        if (sb_count == S_STANDBYS_MAX) {
            fprintf (stderr, "rlctl: promote: at most %d standbys; nothing sent\n", S_STANDBYS_MAX);
            ring_destroy (&base);
            return RLCTL_EXIT_USAGE;
        }
        for (size_t j = 0; j < sb_count; j++) {
            if (strcmp (sbs[j].endpoint, e) == 0) {
                fprintf (stderr, "rlctl: promote: %s is given twice; nothing sent\n", e);
                ring_destroy (&base);
                return RLCTL_EXIT_USAGE;
            }
        }
        sbs[sb_count++] = (s_standby_t){.endpoint = e};
    }
    if (sb_count == 0) {
        fprintf (stderr, "rlctl: promote: no standby endpoint given; nothing sent\n");
        ring_destroy (&base);
        return RLCTL_EXIT_USAGE;
    }
    for (size_t k = 0; k < sb_count; k++) {
        standby = sbs[k].endpoint;
        ring_t *probe = ring_dup (base);
        rc = probe ? ring_set_endpoint (probe, shard, standby) : RING_ERR_NOMEM;
        ring_destroy (&probe);
        for (size_t i = 0; rc == 0 && i < ring_shard_count (base); i++) {
            if (i != (size_t) at && strcmp (ring_shard_endpoint (base, i), standby) == 0) {
                fprintf (stderr,
                         "rlctl: promote: %s is the endpoint of shard %s, not a standby of "
                         "%s; nothing sent\n",
                         standby, ring_shard_name (base, i), shard);
                ring_destroy (&base);
                return RLCTL_EXIT_USAGE;
            }
        }
        if (rc != 0) {
            fprintf (stderr, "rlctl: promote: bad endpoint '%s': %s; nothing sent\n", standby,
                     ring_strerror (rc));
            ring_destroy (&base);
            return RLCTL_EXIT_USAGE;
        }
        //  The standby speaks with the shard's key.
        if (*ring_shard_key (base, (size_t) at)) {
            rl_client_add_server_key (standby, ring_shard_key (base, (size_t) at));
        }
    }
    standby = sbs[0].endpoint;
    cJSON *fenced = cJSON_CreateArray ();
    if (!fenced) {
        ring_destroy (&base);
        cJSON_Delete (fenced);
        return RLCTL_EXIT_FAILED;
    }
    if (sb_count > 1) {
        rc = s_choose (ctx, shard, sbs, sb_count, &standby, fenced);
        if (rc != 0) {
            cJSON_Delete (fenced);
            ring_destroy (&base);
            return rc;
        }
    } else {
        //  One standby of a primary that waits for fewer than all of its
        //  standbys: the rule needs more of them fenced.
        int probe_ms = ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms
                                                                : RLCTL_PROBE_TIMEOUT_MS;
        s_ask (&sbs[0], probe_ms);
        size_t need = sbs[0].st.state == RL_SHARD_STANDBY ? s_needed (sbs, 1) : 1;
        if (need > 1) {
            fprintf (stderr,
                     "rlctl: promote: %s is one of %u standbys of a primary with a quorum of "
                     "%u: give at least %zu of them (comma-separated) so that the old primary "
                     "can gather no quorum; nothing sent\n",
                     standby, sbs[0].repl.standbys, sbs[0].repl.quorum, need);
            cJSON_Delete (fenced);
            ring_destroy (&base);
            return RLCTL_EXIT_USAGE;
        }
    }
    s_newest_ring (ctx, &base, shard, standby);
    at = ring_shard_find (base, shard);
    if (at < 0) {
        fprintf (stderr,
                 "rlctl: promote: the ring of epoch %" PRIu64 " a shard serves has no "
                 "shard '%s'; nothing sent\n",
                 ring_epoch (base), shard);
        ring_destroy (&base);
        cJSON_Delete (fenced);
        return RLCTL_EXIT_FAILED;
    }
    char old[RL_ENDPOINT_SIZE_MAX];
    snprintf (old, sizeof old, "%s", ring_shard_endpoint (base, (size_t) at));
    bool named = strcmp (old, standby) == 0; //  the ring went out already (a rerun)
    ring_t *target = ring_dup (base);
    if (!target || (!named && ring_set_endpoint (target, shard, standby) != 0)) {
        fprintf (stderr, "rlctl: promote: out of memory\n");
        ring_destroy (&target);
        ring_destroy (&base);
        cJSON_Delete (fenced);
        return RLCTL_EXIT_FAILED;
    }
    if (!named) {
        ring_set_epoch (target, ring_epoch (base) + 1);
    }
    ring_destroy (&base);
    //  The standby: a standby of SHARD is promoted; a primary of SHARD that
    //  the ring does not name yet was promoted by an earlier run.
    rl_status_rec_t st = {0};
    int probe_ms = ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms
                                                            : RLCTL_PROBE_TIMEOUT_MS;
    rl_client_t *client = rl_client_new (standby);
    rc = client ? rl_client_status (client, &st, probe_ms) : RL_CLIENT_ERR_SEND;
    rl_client_destroy (&client);
    const char *promotion = "promoted";
    if (rc != 0) {
        fprintf (stderr,
                 "rlctl: promote: the standby %s did not answer status (%s); nothing "
                 "changed\n",
                 standby, rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
        ring_destroy (&target);
        cJSON_Delete (fenced);
        return RLCTL_EXIT_FAILED;
    }
    if (strcmp (st.name, shard) != 0
        || (st.state != RL_SHARD_STANDBY && st.state != RL_SHARD_SERVING)) {
        fprintf (stderr, "rlctl: promote: %s is %.31s, %s, not a standby of %s; nothing changed\n",
                 standby, st.name, rl_shard_state_name (st.state), shard);
        ring_destroy (&target);
        cJSON_Delete (fenced);
        return RLCTL_EXIT_FAILED;
    }
    if (st.state == RL_SHARD_STANDBY) {
        rc = s_call (ctx, standby, RL_OP_PROMOTE, "promote");
        if (rc != 0) {
            fprintf (stderr, "rlctl: promote: the standby %s answered %s: %s\n", standby,
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc),
                     rc > 0 ? rl_status_hint ((uint32_t) rc) : "is it running?");
            ring_destroy (&target);
            cJSON_Delete (fenced);
            return RLCTL_EXIT_FAILED;
        }
    } else {
        promotion = "already the primary";
    }
    //  It serves once it opened as the primary (a recovery).
    int64_t deadline = zclock_mono () + ctx->timeout_ms;
    for (st.state = RL_SHARD_STANDBY; st.state != RL_SHARD_SERVING;) {
        client = rl_client_new (standby); //  a new socket: it reopens
        rc = client ? rl_client_status (client, &st, 200) : RL_CLIENT_ERR_SEND;
        rl_client_destroy (&client);
        if (rc == 0 && st.state == RL_SHARD_SERVING) {
            break;
        }
        if (zclock_mono () >= deadline) {
            fprintf (stderr,
                     "rlctl: promote: %s was promoted but does not serve within %d ms; "
                     "the ring is not loaded yet: run the same command again\n",
                     standby, ctx->timeout_ms);
            ring_destroy (&target);
            cJSON_Delete (fenced);
            return RLCTL_EXIT_FAILED;
        }
        zclock_sleep (20);
    }
    //  Its own ring may be newer than every peer's: the target of a
    //  rebalancing step takes the step's ring before the others, and its
    //  standby holds it (a standby answers no get_ring: s_newest_ring could
    //  not ask it). Then the promotion's ring is made from that one, so
    //  that it is newer than every ring served; a rerun finds the same
    //  base (s_newest_ring asks the promoted shard too).
    ring_t *own = NULL;
    client = rl_client_new (standby);
    if (client && rlctl_ring_get (client, probe_ms, &own, err, sizeof err) == 0 && own
        && ring_epoch (own) >= ring_epoch (target) && ring_shard_find (own, shard) >= 0) {
        int own_at = ring_shard_find (own, shard);
        bool own_named = strcmp (ring_shard_endpoint (own, (size_t) own_at), standby) == 0;
        ring_t *made = ring_dup (own);
        if (made && (own_named || ring_set_endpoint (made, shard, standby) == 0)) {
            if (!own_named) {
                ring_set_epoch (made, ring_epoch (own) + 1);
                snprintf (old, sizeof old, "%s", ring_shard_endpoint (own, (size_t) own_at));
            }
            named = own_named && named;
            ring_destroy (&target);
            target = made;
        } else {
            ring_destroy (&made);
        }
    }
    ring_destroy (&own);
    rl_client_destroy (&client);
    //  The ring, into every shard at once, and the old endpoint.
    size_t size = ring_encoded_size (target);
    uint8_t *blob = malloc (size);
    if (!blob || ring_encode (target, blob, size) != size) {
        fprintf (stderr, "rlctl: promote: out of memory\n");
        free (blob);
        ring_destroy (&target);
        cJSON_Delete (fenced);
        return RLCTL_EXIT_FAILED;
    }
    size_t shards = ring_shard_count (target);
    const char *endpoints[RL_SHARDS_MAX + 1];
    for (size_t i = 0; i < shards; i++) {
        endpoints[i] = ring_shard_endpoint (target, i);
    }
    size_t n = shards;
    if (!named) {
        endpoints[n++] = old; //  an old primary still running fences itself
    }
    static int rcs[RL_SHARDS_MAX + 1];
    rl_client_load_ring_all (endpoints, n, blob, size, probe_ms, rcs);
    //  "Held already" is done only when what is held at that epoch is the
    //  target itself: a shard may hold another ring at the target's epoch
    //  (a rebalancing step's ring that a peer missed when the base was
    //  read); then the promotion is not complete, and a rerun makes its
    //  ring from that one (s_newest_ring).
    static bool other[RL_SHARDS_MAX + 1];
    static rl_client_reply_t held[RL_SHARDS_MAX + 1];
    const char *asked[RL_SHARDS_MAX + 1];
    size_t asked_index[RL_SHARDS_MAX + 1];
    size_t asked_n = 0;
    for (size_t i = 0; i < n; i++) {
        other[i] = false;
        if (i < shards && rcs[i] == RL_STATUS_EPOCH_NOT_NEWER) {
            asked_index[asked_n] = i;
            asked[asked_n++] = endpoints[i];
        }
    }
    rl_client_fanout (asked, asked_n, RL_OP_GET_RING, NULL, 0, 0, probe_ms, held);
    for (size_t j = 0; j < asked_n; j++) {
        ring_t *ring = held[j].rc == 0 && held[j].body
                           ? ring_decode (held[j].body, held[j].body_size, err, sizeof err)
                           : NULL;
        //  No answer: what it holds is not known, so not done either.
        other[asked_index[j]] = !ring
                                || (ring_epoch (ring) == ring_epoch (target)
                                    && (held[j].body_size != size
                                        || memcmp (held[j].body, blob, size) != 0));
        ring_destroy (&ring);
    }
    rl_client_replies_free (held, asked_n);
    free (blob);
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "shard", shard);
    jsonkit_add_string (tree, "standby", standby);
    jsonkit_add_string (tree, "promotion", promotion);
    jsonkit_add_u64 (tree, "epoch", ring_epoch (target));
    cJSON_AddItemToObject (tree, "fenced", fenced);
    fenced = NULL;
    cJSON *list = jsonkit_add_array (tree, "loaded");
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        bool done = rcs[i] == 0 || rcs[i] == RL_STATUS_EPOCH_NOT_NEWER;
        char result[128];
        if (i == shards) {
            snprintf (result, sizeof result, "%s",
                      rcs[i] == RL_STATUS_FENCED ? "fenced (the old primary)"
                      : rcs[i] < 0               ? "no answer (the old primary: down, or stalled)"
                                                 : rl_status_name ((uint32_t) rcs[i]));
        } else {
            done = done && !other[i];
            missing += !done;
            snprintf (result, sizeof result, "%s",
                      rcs[i] == 0 ? "loaded"
                      : other[i]  ? "holds another ring at this epoch, or did not say: run "
                                    "the same command again"
                      : rcs[i] == RL_STATUS_EPOCH_NOT_NEWER ? "held already"
                      : rcs[i] > 0                          ? rl_status_name ((uint32_t) rcs[i])
                      : rcs[i] == RL_CLIENT_TIMEOUT         ? "no answer (down or stalled)"
                                                            : rl_client_strerror (rcs[i]));
        }
        cJSON *r = jsonkit_add_object (list, NULL);
        jsonkit_add_string (r, "name", i == shards ? shard : ring_shard_name (target, i));
        jsonkit_add_string (r, "role", i == shards ? "old" : "shard");
        jsonkit_add_string (r, "endpoint", endpoints[i]);
        jsonkit_add_string (r, "result", result);
        jsonkit_add_bool (r, "done", i == shards || done);
    }
    //  The routers among --connect follow the shards: wait for their epoch.
    static char connect[8192];
    const char *fronts[RL_SHARDS_MAX];
    size_t fronts_n = 0;
    if (strlen (ctx->connect) < sizeof connect) {
        snprintf (connect, sizeof connect, "%s", ctx->connect);
        for (char *save = NULL, *e = strtok_r (connect, ",", &save); e && fronts_n < RL_SHARDS_MAX;
             e = strtok_r (NULL, ",", &save)) {
            fronts[fronts_n++] = e;
        }
    }
    static rl_status_rec_t recs[RL_SHARDS_MAX];
    static int front_rcs[RL_SHARDS_MAX];
    bool routers_behind = true;
    deadline = zclock_mono () + ctx->timeout_ms;
    while (fronts_n > 0) {
        rl_client_status_all (fronts, fronts_n, probe_ms, recs, front_rcs);
        routers_behind = false;
        for (size_t i = 0; i < fronts_n; i++) {
            bool router = front_rcs[i] == 0 && ring_shard_find (target, recs[i].name) < 0;
            routers_behind |= router && recs[i].epoch < ring_epoch (target);
        }
        if (!routers_behind || zclock_mono () >= deadline) {
            break;
        }
        zclock_sleep (100);
    }
    size_t routers_missing = 0;
    for (size_t i = 0; i < fronts_n; i++) {
        if (front_rcs[i] != 0 || ring_shard_find (target, recs[i].name) >= 0) {
            continue; //  a shard (loaded above), or not answering: not known as a router
        }
        bool done = recs[i].epoch >= ring_epoch (target);
        routers_missing += !done;
        char result[64];
        snprintf (result, sizeof result, done ? "serves epoch %" PRIu64 : "still at epoch %" PRIu64,
                  recs[i].epoch);
        cJSON *r = jsonkit_add_object (list, NULL);
        jsonkit_add_string (r, "name", recs[i].name);
        jsonkit_add_string (r, "role", "router");
        jsonkit_add_string (r, "endpoint", fronts[i]);
        jsonkit_add_string (r, "result", result);
        jsonkit_add_bool (r, "done", done);
    }
    char message[512];
    if (missing || routers_missing) {
        snprintf (message, sizeof message,
                  "INCOMPLETE: %zu shard%s and %zu router%s do not hold epoch %" PRIu64
                  " yet: run the same command again (it resumes) once they are back",
                  missing, missing == 1 ? "" : "s", routers_missing,
                  routers_missing == 1 ? "" : "s", ring_epoch (target));
    } else {
        snprintf (message, sizeof message,
                  "done: %s is served at %s; every shard holds ring epoch %" PRIu64
                  ", which fences the old primary",
                  shard, standby, ring_epoch (target));
    }
    jsonkit_add_string (tree, "message", message);
    ring_destroy (&target);
    return rlctl_emit (ctx, &tree, s_promote_table,
                       missing || routers_missing ? RLCTL_EXIT_FAILED : RLCTL_EXIT_OK);
}

int
rlctl_cmd_promote (rlctl_ctx_t *ctx)
{
    if (ctx->arg_count == 2 || ctx->arg_count > 4) {
        fprintf (stderr, "rlctl: promote takes no argument (--connect: the standby), or SHARD "
                         "STANDBY-ENDPOINT [RING-FILE]\nusage: rlctl " S_USAGE "\n");
        return RLCTL_EXIT_USAGE;
    }
    if (ctx->arg_count > 1) {
        return s_failover (ctx);
    }
    return s_send (ctx, RL_OP_PROMOTE, "promote",
                   "promoted: the standby is fenced and opens as the primary (rlctl status "
                   "shows it serving); the ring is unchanged: `rlctl promote SHARD ENDPOINT` "
                   "completes the fail-over");
}

int
rlctl_cmd_degrade (rlctl_ctx_t *ctx)
{
    return s_send (ctx, RL_OP_DEGRADE, "degrade",
                   "degraded: replies no longer wait for the standby (async; invariant 9 "
                   "suspended until a restart in semi mode)");
}
