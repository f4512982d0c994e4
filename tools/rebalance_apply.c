/*  rebalance_apply.c: the commands of `rebalance` that drive a running
    cluster: apply, status, check, fix, abort (docs/rebalance.md, "Live
    migration", and the runbook there).

    apply CURRENT NEW --state DIR
        Derives the steps and their rings (rebalance_state.c) and writes
        them into DIR before any shard hears of them; then, one step at a
        time: migrate_begin on source and target, export from the source
        and import into the target in rounds until the last round copied
        few records (paced: --copy-share, s_pace), migrate_freeze and,
        right behind it on the same connection, the first export of the
        round after it, which waits on the source until nothing two-phase
        touches the arc (s_freeze_ahead; else migrate_drain polled), the
        final round (its last chunk, held until
        the state says handover), then the handover: that chunk, the step's
        ring and the commit into the target, back to back (one turn and one
        sync there), the ring into the source, its commit, the ring
        into every other shard, then the source's cleanup (it deletes the
        arc's accounts). A target that refuses its commit has the step
        rolled back (both sides aborted, every shard brought to
        rollback.ring) and apply stops. A freeze that does not drain within
        --freeze-max-ms is undone (migrate_unfreeze; the source would undo
        it by itself too) and retried after a pause, up to --max-retries.
        Rerun with the same DIR after a crash at any point, it resumes.

    recover --from RING0 --to FINAL --state NEWDIR
        A lost state directory rebuilt: the plan derived again from the
        two rings (the same ids and rings), the state of its steps read
        from the shards (the ring each serves, the migration each stores,
        through migrate_lease), the plan's lease taken over for NEWDIR's
        run; then apply or abort with NEWDIR.

    status / check / fix / abort --state DIR
        status: the plan and every step from the state file. check: asks
        every shard (status, get_ring, and the source's migrate_drain,
        which writes nothing) whether it agrees with the state file. fix:
        rolls a started handover forward, brings a shard that is behind to
        the state file's epoch, undoes a freeze nobody drives. abort: a
        step not handed over yet is undone on both shards (migrate_abort,
        the target first), and starts afresh when apply runs again.

    THE STATE IS WRITTEN AHEAD
    Before a message whose effect a restart must know of, the state file
    says it may have been sent: COPYING before migrate_begin, FROZEN before
    migrate_freeze, HANDOVER before the first load_ring of the step's ring
    (and only once the target holds the final chunk), DONE after every
    shard serves that ring. Every message of a step is idempotent on the
    shard (begin again answers the stored record, a chunk the target holds
    is answered with its state, a commit done answers HANDED_OVER, a ring
    already served answers epoch_not_newer), so resuming = sending again
    from the step's state, from the target's stored cursor.

    INVARIANTS
    1. No shard gets the ring of step k before the state file says step k
       is in its handover, and the handover begins only when the source
       has shipped the final chunk (SHIPPED); the step's ring and the
       commit go to the target only once it holds that chunk (its commit
       needs it anyway): the source is frozen from its freeze on, so two
       shards never accept writes for one account.
    2. Steps run in order, one at a time; step k begins only when every
       shard still in the change serves the ring of step k - 1.
    3. Nothing read from the network is trusted: a reply that does not
       decode is an error of that call, never an assert.
    4. One apply at a time per state directory (a lock held while it runs);
       fix and abort refuse to run beside it.
    5. One plan, and one run of it, at a time per cluster: apply takes the
       plan's lease (plan id and this directory's run) on every shard
       still in the change before it loads a ring or begins a step, and
       the shards refuse another plan's begin, freeze and commit; before
       every step every shard must serve exactly the plan's ring of that
       step (RB_EXIT_FENCED otherwise). The lease is released when the
       change is done or rolled back, and by abort.

    FAIL-OVERS (docs/rebalance.md, "A fail-over during a change")
    rlctl promote loads the newest ring with the promoted shard at its
    standby's endpoint, at that ring's epoch + 1: the epoch of the plan's
    next ring. A ring a shard serves that is ring j of the plan with
    endpoints changed, at a higher epoch, is followed (s_follow): every
    ring of the plan takes the new endpoints and moves up as many epochs
    (rb_plan_failover, written to the state file first), and the shard is
    addressed at its new endpoint. apply looks for one when it starts
    (before the lease: the promoted standby holds it), at every check of
    the rings, after every epoch_not_newer (so a promotion's ring at a
    step's epoch is never taken for the step's ring), and when a shard
    stops answering mid-step (then it resumes as a rerun would). With
    --failover-wait-s N (default 0) a step whose shard stays silent waits
    up to N s for its fail-over, or for the shard to answer again (a
    restarted primary), then resumes (s_await); else it exits 3.

    LIMITS
    One migration at a time for the whole change (a shard takes part in at
    most one). The drain is polled every S_DRAIN_POLL_MS when the source
    did not wait for it. The shards hold
    no read-only query of the target's migration state, so check reads the
    source's only.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "chunk.h"
#include "client.h"
#include "codec.h"
#include "failpoint.h"
#include "jsonkit.h"
#include "keys.h"
#include "rebalance.h"

#define S_SHARDS_MAX       (2 * RL_SHARDS_MAX) //  shards named by any ring of a change
#define S_DRAIN_POLL_MS    5
#define S_CATCHUP_DEF      256  //  --catchup-records default
#define S_COPY_SHARE_DEF   100  //  --copy-share default, percent (100: no pause)
#define S_COPY_PAUSE_MAX   1000 //  ms: the longest pause between two chunks of a copy
#define S_ROUNDS_MAX       8    //  copy rounds of one try before the freeze, whatever the lag
#define S_FINAL_ROUNDS_MAX 3    //  rounds after the freeze before the target must be SHIPPED
#define S_CALL_ATTEMPTS    5    //  sends of one request that timed out or met busy
#define S_RING_ATTEMPTS    20   //  fan-outs of a step's ring before apply gives up
#define S_SAVE_EVERY_MS    500  //  progress written to the state file during a copy
#define S_BACKOFF_MS_MAX   2000
#define S_CLEANUP_WAIT_MS  60000 //  a source's cleanup ends within this, or apply stops
#define S_CLEANUP_POLL_MS  10
#define S_BEGIN_WAIT_MS    60000 //  a begin answered busy is sent again for this long
#define S_COMMIT_REFUSED   64    //  s_commit: the target refused (not an exit code)
#define S_LEAVE_WAIT_MS    60000 //  a leaving shard becomes quiet within this, or apply stops
#define S_RESUMES_MAX      8     //  resumes of one run after fail-overs followed
#define S_AWAIT_POLL_MS    1000  //  --failover-wait-s: a silent shard asked again

typedef struct {
    const char *command;
    const char *state_dir;
    const char *rings[2]; //  apply: CURRENT, NEW
    const char *cert;
    const char *server_key;
    bool insecure;
    bool json;
    bool reconciled; //  --heuristics-reconciled
    uint32_t freeze_max_ms;
    bool freeze_given;
    int timeout_ms;
    uint32_t entries;
    uint64_t max_retries;
    uint64_t catchup;
    uint32_t copy_share;      //  --copy-share: percent of the time the copy's chunks may take
    uint32_t freeze_entries;  //  --freeze-entries: entries asked per chunk once frozen
    uint32_t failover_wait_s; //  --failover-wait-s: how long a silent shard is waited for
} s_args_t;

typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    rl_client_t *client;
} s_shard_t;

typedef struct {
    s_args_t *args;
    rb_plan_t plan;
    zcert_t *cert;
    s_shard_t shards[S_SHARDS_MAX];
    size_t shard_count;
    uint64_t saved_at; //  last progress write, ms
    bool unsaved;      //  recover: a fail-over followed is written with the new directory
    bool leased;       //  this run took the plan's lease on every shard of the change
} s_ctx_t;

//  Messages and arguments ------------------------------------------------------

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

static bool
s_parse_u64 (const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    if (!text || !*text || strspn (text, "0123456789") != strlen (text) || strlen (text) > 19) {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull (text, NULL, 10);
    if (errno || v < min || v > max) {
        return false;
    }
    *value = (uint64_t) v;
    return true;
}

static int
s_parse_args (int argc, char **argv, s_args_t *a)
{
    *a = (s_args_t){.command = argv[1],
                    .freeze_max_ms = RB_FREEZE_MS_DEF,
                    .timeout_ms = RB_TIMEOUT_MS_DEF,
                    .entries = RB_ENTRIES_DEF,
                    .max_retries = RB_RETRIES_DEF,
                    .catchup = S_CATCHUP_DEF,
                    .copy_share = S_COPY_SHARE_DEF,
                    .freeze_entries = RB_ENTRIES_MAX};
    size_t positional = 0;
    bool apply = strcmp (a->command, "apply") == 0;
    bool recover = strcmp (a->command, "recover") == 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp (o, "--json") == 0) {
            a->json = true;
            continue;
        }
        if (strcmp (o, "--insecure") == 0) {
            a->insecure = true;
            continue;
        }
        if (apply && strcmp (o, "--heuristics-reconciled") == 0) {
            a->reconciled = true;
            continue;
        }
        if (o[0] != '-' || o[1] != '-') {
            if (!apply || positional == 2) {
                return s_fail (RB_EXIT_USAGE,
                               "unexpected argument '%.64s' (run 'rebalance --help')", o);
            }
            a->rings[positional++] = o;
            continue;
        }
        if (!v) {
            return s_fail (RB_EXIT_USAGE, "%.64s needs a value", o);
        }
        i++;
        if (strcmp (o, "--state") == 0) {
            a->state_dir = v;
        } else if (recover && (strcmp (o, "--from") == 0 || strcmp (o, "--to") == 0)) {
            a->rings[o[2] == 'f' ? 0 : 1] = v;
        } else if (strcmp (o, "--cert") == 0) {
            a->cert = v;
        } else if (strcmp (o, "--server-key") == 0) {
            a->server_key = v;
        } else if (apply && strcmp (o, "--freeze-max-ms") == 0) {
            if (!s_parse_u64 (v, 1, RB_FREEZE_MS_MAX, &n)) {
                return s_fail (RB_EXIT_USAGE, "--freeze-max-ms: '%.64s' is not a number in 1..%d",
                               v, RB_FREEZE_MS_MAX);
            }
            a->freeze_max_ms = (uint32_t) n;
            a->freeze_given = true;
        } else if (strcmp (o, "--timeout-ms") == 0) {
            if (!s_parse_u64 (v, 10, 600000, &n)) {
                return s_fail (RB_EXIT_USAGE, "--timeout-ms: '%.64s' is not a number in 10..600000",
                               v);
            }
            a->timeout_ms = (int) n;
        } else if (apply && strcmp (o, "--entries") == 0) {
            if (!s_parse_u64 (v, 1, RB_ENTRIES_MAX, &n)) {
                return s_fail (RB_EXIT_USAGE, "--entries: '%.64s' is not a number in 1..%d", v,
                               RB_ENTRIES_MAX);
            }
            a->entries = (uint32_t) n;
        } else if (apply && strcmp (o, "--freeze-entries") == 0) {
            if (!s_parse_u64 (v, 1, RB_ENTRIES_MAX, &n)) {
                return s_fail (RB_EXIT_USAGE, "--freeze-entries: '%.64s' is not a number in 1..%d",
                               v, RB_ENTRIES_MAX);
            }
            a->freeze_entries = (uint32_t) n;
        } else if (apply && strcmp (o, "--max-retries") == 0) {
            if (!s_parse_u64 (v, 0, 1000000, &n)) {
                return s_fail (RB_EXIT_USAGE,
                               "--max-retries: '%.64s' is not a number in 0..1000000", v);
            }
            a->max_retries = n;
        } else if (apply && strcmp (o, "--catchup-records") == 0) {
            if (!s_parse_u64 (v, 0, UINT32_MAX, &n)) {
                return s_fail (RB_EXIT_USAGE, "--catchup-records: '%.64s' is not a number", v);
            }
            a->catchup = n;
        } else if (apply && strcmp (o, "--copy-share") == 0) {
            if (!s_parse_u64 (v, 1, 100, &n)) {
                return s_fail (RB_EXIT_USAGE, "--copy-share: '%.64s' is not a number in 1..100", v);
            }
            a->copy_share = (uint32_t) n;
        } else if (apply && strcmp (o, "--failover-wait-s") == 0) {
            if (!s_parse_u64 (v, 0, RB_FAILOVER_S_MAX, &n)) {
                return s_fail (RB_EXIT_USAGE, "--failover-wait-s: '%.64s' is not a number in 0..%d",
                               v, RB_FAILOVER_S_MAX);
            }
            a->failover_wait_s = (uint32_t) n;
        } else {
            return s_fail (RB_EXIT_USAGE, "%s: unknown option '%.64s' (run 'rebalance --help')",
                           a->command, o);
        }
    }
    if (!a->state_dir || !*a->state_dir) {
        return s_fail (RB_EXIT_USAGE, "%s needs --state DIR", a->command);
    }
    if (apply && positional != 2) {
        return s_fail (RB_EXIT_USAGE, "apply needs CURRENT_RING and NEW_RING");
    }
    if (recover && (!a->rings[0] || !a->rings[1])) {
        return s_fail (RB_EXIT_USAGE, "recover needs --from RING0 and --to FINAL_RING");
    }
    if (a->json && strcmp (a->command, "status") != 0 && strcmp (a->command, "check") != 0) {
        return s_fail (RB_EXIT_USAGE, "--json is for status and check");
    }
    bool talks = strcmp (a->command, "status") != 0;
    if (talks && a->insecure && (a->cert || a->server_key)) {
        return s_fail (RB_EXIT_USAGE, "--insecure takes no --cert or --server-key");
    }
    if (talks && !a->insecure && (!a->cert || !*a->cert)) {
        return s_fail (RB_EXIT_USAGE,
                       "%s talks to the shards as an admin: give --cert FILE (an admin's secret "
                       "certificate; shards' keys come from the rings), or --insecure for a "
                       "cluster without security (docs/security.md)",
                       a->command);
    }
    return 0;
}

//  Shards ------------------------------------------------------------------------

static s_shard_t *
s_shard (s_ctx_t *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->shard_count; i++) {
        if (strcmp (ctx->shards[i].name, name) == 0) {
            return &ctx->shards[i];
        }
    }
    return NULL;
}

//  The shards of every ring of the plan (the newest endpoint and key of
//  each), and the security of the process.
static int
s_ctx_open (s_ctx_t *ctx)
{
    const s_args_t *a = ctx->args;
    if (!a->insecure && strcmp (a->command, "status") != 0) {
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
    }
    for (size_t k = ctx->plan.step_count + 1; k-- > 0;) {
        const ring_t *ring = ctx->plan.rings[k];
        for (size_t x = 0; x < ring_shard_count (ring); x++) {
            const char *name = ring_shard_name (ring, x);
            if (s_shard (ctx, name)) {
                continue;
            }
            if (ctx->shard_count == S_SHARDS_MAX) {
                return s_fail (RB_EXIT_BAD_FILE, "more than %d shards in the plan's rings",
                               S_SHARDS_MAX);
            }
            s_shard_t *s = &ctx->shards[ctx->shard_count++];
            snprintf (s->name, sizeof s->name, "%s", name);
            snprintf (s->endpoint, sizeof s->endpoint, "%s", ring_shard_endpoint (ring, x));
            if (*ring_shard_key (ring, x) && !a->insecure
                && rl_client_add_server_key (s->endpoint, ring_shard_key (ring, x)) != 0) {
                return s_fail (RB_EXIT_BAD_FILE, "shard %s: a bad key in the ring", name);
            }
        }
    }
    return 0;
}

static void
s_ctx_close (s_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->shard_count; i++) {
        rl_client_destroy (&ctx->shards[i].client);
    }
    rb_plan_free (&ctx->plan);
    rl_client_clear_curve ();
    zcert_destroy (&ctx->cert);
}

static rl_client_t *
s_client (s_ctx_t *ctx, s_shard_t *s)
{
    (void) ctx;
    if (!s->client) {
        s->client = rl_client_new (s->endpoint);
    }
    return s->client;
}

static bool
s_retryable (int rc)
{
    return rc == RL_CLIENT_TIMEOUT || rc == RL_CLIENT_ERR_SEND || rc == RL_CLIENT_ERR_REPLY
           || rc == RL_STATUS_BUSY || rc == RL_STATUS_UNAVAILABLE || rc == RL_STATUS_STORAGE_ERROR;
}

static const char *
s_rc_text (int rc)
{
    return rc > 0 ? rl_status_name ((uint16_t) rc) : rl_client_strerror (rc);
}

//  A migrate_* call, sent again while it times out or meets busy.
static int
s_migrate (s_ctx_t *ctx, s_shard_t *s, uint16_t op, const rl_migrate_rec_t *req,
           rl_migrate_rec_t *out)
{
    int rc = RL_CLIENT_ERR_SEND;
    int pause = 50;
    for (int attempt = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        rl_client_t *client = s_client (ctx, s);
        if (!client) {
            return RL_CLIENT_ERR_NOMEM;
        }
        rc = rl_client_migrate (client, op, req, out, ctx->args->timeout_ms);
        if (!s_retryable (rc)) {
            return rc;
        }
        zclock_sleep (pause);
        pause = pause * 2 > S_BACKOFF_MS_MAX ? S_BACKOFF_MS_MAX : pause * 2;
    }
    return rc;
}

static rl_migrate_rec_t
s_request (const rb_step_t *step, uint32_t role)
{
    rl_migrate_rec_t r = {.migration_id = step->migration_id,
                          .arc_start = step->start,
                          .arc_end = step->end,
                          .role = role};
    snprintf (r.source, sizeof r.source, "%s", step->source);
    snprintf (r.target, sizeof r.target, "%s", step->target);
    return r;
}

static const char *
s_migrate_state_name (uint32_t state)
{
    static const char *names[] = {"none",    "copying",     "frozen",
                                  "shipped", "handed_over", "aborting"};
    return state <= RL_MIGRATE_ABORTING ? names[state] : "?";
}

static int s_not_newer (s_ctx_t *ctx, s_shard_t *s);
#define S_FOLLOWED 65 //  s_follow: the plan now follows a fail-over (not an exit code)

//  Loads ring k into one shard: 0 when it serves ring k or newer. A
//  fail-over's ring there is followed, and ring k loaded again at its new
//  epoch (its new endpoint, when the shard moved: s_not_newer).
static int
s_load_ring (s_ctx_t *ctx, s_shard_t *s, size_t k)
{
    const ring_t *ring = ctx->plan.rings[k];
    int rc = RL_CLIENT_ERR_SEND;
    for (int attempt = 0, follows = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        size_t size = ring_encoded_size (ring);
        uint8_t *blob = malloc (size);
        if (!blob) {
            return RL_CLIENT_ERR_NOMEM;
        }
        ring_encode (ring, blob, size);
        rl_client_t *client = s_client (ctx, s);
        rc = client ? rl_client_load_ring (client, blob, size, ctx->args->timeout_ms)
                    : RL_CLIENT_ERR_NOMEM;
        free (blob);
        if (rc == RL_STATUS_EPOCH_NOT_NEWER) {
            rc = s_not_newer (ctx, s);
            if (rc == S_FOLLOWED && follows++ < S_CALL_ATTEMPTS) {
                attempt--;
                continue;
            }
            if (rc != 0) {
                return rc == S_FOLLOWED ? RL_STATUS_EPOCH_NOT_NEWER : rc;
            }
        }
        if (!s_retryable (rc)) {
            break;
        }
        zclock_sleep (100);
    }
    return rc;
}

//  Is shard `name` still in the change at ring k (named by ring k or a later one)?
static bool
s_in_change (const s_ctx_t *ctx, const char *name, size_t k)
{
    for (size_t j = k; j <= ctx->plan.step_count; j++) {
        if (ring_shard_find (ctx->plan.rings[j], name) >= 0) {
            return true;
        }
    }
    return false;
}

//  Ring k into every shard still in the change, all at once, again until
//  each serves it (or a newer one). 0, or RB_EXIT_CLUSTER.
static int
s_publish_ring (s_ctx_t *ctx, const ring_t *ring, size_t k)
{
    const char *endpoints[S_SHARDS_MAX];
    size_t index[S_SHARDS_MAX];
    int rcs[S_SHARDS_MAX];
    uint8_t *blob = NULL;
    int code = 0;
    for (int attempt = 0, follows = 0; attempt < S_RING_ATTEMPTS; attempt++) {
        //  Encoded again each time: a fail-over followed moves its epoch
        //  and an endpoint.
        free (blob);
        size_t size = ring_encoded_size (ring);
        if (!(blob = malloc (size))) {
            return s_fail (RB_EXIT_CLUSTER, "out of memory");
        }
        ring_encode (ring, blob, size);
        size_t n = 0;
        for (size_t i = 0; i < ctx->shard_count; i++) {
            if (s_in_change (ctx, ctx->shards[i].name, k)) {
                index[n] = i;
                endpoints[n++] = ctx->shards[i].endpoint;
            }
        }
        rl_client_load_ring_all (endpoints, n, blob, size, ctx->args->timeout_ms, rcs);
        code = 0;
        bool followed = false;
        for (size_t j = 0; j < n && !followed; j++) {
            if (rcs[j] == RL_STATUS_EPOCH_NOT_NEWER) {
                int rc = s_not_newer (ctx, &ctx->shards[index[j]]);
                if (rc != 0 && rc != S_FOLLOWED) {
                    free (blob);
                    return rc;
                }
                followed = rc == S_FOLLOWED;
            }
        }
        if (followed && follows++ < S_RING_ATTEMPTS) {
            attempt--;
            continue; //  the ring again, at its new epoch, to every shard
        }
        for (size_t j = 0; j < n; j++) {
            if (rcs[j] != 0 && rcs[j] != RL_STATUS_EPOCH_NOT_NEWER) {
                code = RB_EXIT_CLUSTER;
                if (attempt + 1 == S_RING_ATTEMPTS) {
                    s_fail (code, "shard %s did not take the ring of epoch %" PRIu64 ": %s",
                            ctx->shards[index[j]].name, ring_epoch (ring), s_rc_text (rcs[j]));
                }
            }
        }
        if (code == 0) {
            break;
        }
        zclock_sleep (200);
    }
    free (blob);
    return code;
}

static int
s_publish (s_ctx_t *ctx, size_t k)
{
    return s_publish_ring (ctx, ctx->plan.rings[k], k);
}

static int
s_save (s_ctx_t *ctx)
{
    char err[512];
    if (rb_state_save (&ctx->plan, err, sizeof err) != 0) {
        return s_fail (RB_EXIT_BAD_FILE, "cannot write the state: %s", err);
    }
    ctx->saved_at = rb_wall_ms ();
    return 0;
}

//  A failpoint of the tool: crash and delay act inside; error stops apply.
static int
s_point (int hit, const char *name)
{
    return hit == 0 ? 0 : s_fail (RB_EXIT_CLUSTER, "failpoint %s: stopped", name);
}

//  Apply: one step -------------------------------------------------------------

typedef struct {
    s_ctx_t *ctx;
    size_t index;
    rb_step_t *step;
    s_shard_t *source, *target;
    rl_migrate_rec_t have; //  the target's stored record
    //  Wall clock (ms) of this run's freeze: the freeze answered, the drain
    //  seen, the final chunk exported, the target's commit answered (0: not
    //  seen)
    uint64_t t_frozen, t_drained, t_shipped, t_committed;
    uint64_t t_saved; //  the state file said handover
    //  The final chunk, exported and not imported yet: it goes into the
    //  target together with the step's ring and the commit (s_handover)
    uint8_t *final_chunk;
    size_t final_size;
    //  The first export of a round after the freeze waits this long on the
    //  source for the drain (0: no wait)
    uint32_t export_wait_ms;
    //  A chunk exported ahead: the first of the round after the freeze,
    //  sent with the freeze (s_freeze_ahead); s_chunk takes it first
    uint8_t *ahead_chunk;
    size_t ahead_size;
    //  Where the freeze's time goes (printed with the step): the freeze
    //  sent, the first chunk after it in, the chunks of the rounds after it
    uint64_t t_freeze_sent, t_first_chunk;
    uint64_t frozen_chunks;
} s_run_t;

//  The copy's pace (--copy-share): before the freeze, a chunk that took t
//  ms (its export and its import, each waiting behind the client work of
//  its shard's turn) is followed by a pause of t x (100 - share) / share
//  ms, at most S_COPY_PAUSE_MAX, so that the copy's requests take about
//  share percent of the time and the pause grows with the shards' load
//  (the foreground's latency). Never inside a freeze: there every chunk
//  goes at once.
static void
s_pace (s_run_t *r, int64_t began_ms)
{
    uint32_t share = r->ctx->args->copy_share;
    if (share >= 100 || r->step->state != RB_COPYING) {
        return;
    }
    int64_t took = zclock_mono () - began_ms;
    int64_t pause = took > 0 ? took * (100 - share) / share : 0;
    if (pause > 0) {
        zclock_sleep ((int) (pause < S_COPY_PAUSE_MAX ? pause : S_COPY_PAUSE_MAX));
    }
}

//  Entries asked per chunk: --entries while the arc serves, --freeze-entries
//  once it is frozen (the freeze, the final round, a resumed handover),
//  where every chunk but the last costs a round trip and an import with
//  its sync on the target while writers of the arc wait: the final round
//  in one chunk when it fits.
static uint32_t
s_entries (const s_run_t *r)
{
    const s_args_t *a = r->ctx->args;
    return r->step->state == RB_COPYING ? a->entries : a->freeze_entries;
}

//  One chunk from the source into the target.
static int
s_chunk (s_run_t *r)
{
    assert (!r->final_chunk);
    int64_t began_ms = zclock_mono ();
    rl_migrate_rec_t req = r->have;
    req.role = RL_MIGRATE_SOURCE;
    req.entries_max = s_entries (r);
    req.param = r->have.cursor.phase == RL_MIGRATE_PHASE_DONE ? r->export_wait_ms : 0;
    uint8_t body[RL_MIGRATE_SIZE];
    codec_encode_migrate (&req, body);
    uint8_t *chunk = r->ahead_chunk;
    size_t size = r->ahead_size;
    r->ahead_chunk = NULL;
    r->ahead_size = 0;
    int rc = chunk ? 0 : RL_CLIENT_ERR_SEND;
    for (int attempt = 0; !chunk && attempt < S_CALL_ATTEMPTS; attempt++) {
        rl_header_t h;
        rl_client_t *client = s_client (r->ctx, r->source);
        rc = client ? rl_client_call (client, RL_OP_MIGRATE_EXPORT, body, sizeof body, 1,
                                      r->ctx->args->timeout_ms, &h, &chunk, &size)
                    : RL_CLIENT_ERR_NOMEM;
        if (rc == 0 && !chunk) {
            rc = RL_CLIENT_ERR_REPLY;
        }
        if (!s_retryable (rc)) {
            break;
        }
        free (chunk);
        chunk = NULL;
        zclock_sleep (100);
    }
    if (rc != 0) {
        free (chunk);
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_export from %s: %s", r->index + 1,
                       r->source->name, s_rc_text (rc));
    }
    if (r->t_freeze_sent) {
        r->frozen_chunks++;
        if (!r->t_first_chunk) {
            r->t_first_chunk = rb_wall_ms ();
        }
    }
    chunk_t head;
    if (chunk_decode (chunk, size, &head) == RL_STATUS_OK && (head.flags & RL_CHUNK_FINAL)
        && head.to.phase == RL_MIGRATE_PHASE_DONE && head.migration_id == r->step->migration_id) {
        //  The final chunk: the source is SHIPPED. It goes into the target
        //  with the step's ring and the commit, in one round trip and one
        //  sync there (s_handover), once the state says handover.
        r->final_chunk = chunk;
        r->final_size = size;
        r->step->bytes += size;
        return s_point (RL_FAILPOINT (REBALANCE_CHUNK), "rebalance.chunk");
    }
    rl_migrate_rec_t out;
    for (int attempt = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        rl_client_t *client = s_client (r->ctx, r->target);
        rc = client ? rl_client_migrate_import (client, chunk, size, &out, r->ctx->args->timeout_ms)
                    : RL_CLIENT_ERR_NOMEM;
        if (!s_retryable (rc)) {
            break;
        }
        zclock_sleep (100);
    }
    free (chunk);
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_import into %s: %s", r->index + 1,
                       r->target->name, s_rc_text (rc));
    }
    if (out.migration_id != r->step->migration_id || out.chunks < r->have.chunks) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: %s answered the import with another migration",
                       r->index + 1, r->target->name);
    }
    r->step->bytes += size;
    r->step->chunks = out.chunks;
    r->step->records = out.records;
    r->step->accounts = out.accounts;
    r->have = out;
    if (rb_wall_ms () - r->ctx->saved_at > S_SAVE_EVERY_MS && s_save (r->ctx) != 0) {
        return RB_EXIT_BAD_FILE;
    }
    s_pace (r, began_ms);
    return s_point (RL_FAILPOINT (REBALANCE_CHUNK), "rebalance.chunk");
}

//  Copies until the round in progress (or the next one, if none is) ends;
//  *records_p: transfer records that round brought.
static int
s_round (s_run_t *r, uint64_t *records_p)
{
    const rl_migrate_cursor_t *c = &r->have.cursor;
    uint32_t round = c->phase == RL_MIGRATE_PHASE_DONE ? c->round + 1 : c->round;
    uint64_t before = r->have.records;
    do {
        int rc = s_chunk (r);
        if (rc != 0) {
            return rc;
        }
    } while (!(c->phase == RL_MIGRATE_PHASE_DONE && c->round == round)
             && r->have.state != RL_MIGRATE_SHIPPED && !r->final_chunk);
    r->step->rounds++;
    *records_p = r->have.records - before;
    return 0;
}

//  migrate_begin to one side, sent again while it is answered busy (a
//  shard whose last handover's accounts wait for their checkpoint:
//  docs/rebalance.md, "The handover's accounts"), for S_BEGIN_WAIT_MS.
static int
s_begin_once (s_ctx_t *ctx, s_shard_t *s, const rl_migrate_rec_t *req, rl_migrate_rec_t *out)
{
    int64_t deadline = zclock_mono () + S_BEGIN_WAIT_MS;
    int rc = s_migrate (ctx, s, RL_OP_MIGRATE_BEGIN, req, out);
    while (rc == RL_STATUS_BUSY && zclock_mono () < deadline) {
        rc = s_migrate (ctx, s, RL_OP_MIGRATE_BEGIN, req, out);
    }
    return rc;
}

//  A shard refuses a begin while a migration from it is handed over and
//  not cleaned up (one an older tool left). migrate_cleanup with id 0
//  and RL_MIGRATE_CLEANUP_PEEK names it (deleting nothing). Its accounts
//  are deleted only if they are not the arc's only copy: the ring the
//  cluster serves now (`ring`) gives the whole arc to one other shard,
//  which answers status serving that ring's epoch with no arc waiting for
//  its data (nothing not received, nothing frozen). Then the cleanup by
//  its id. 1 when one was cleaned up (the begin is worth sending again),
//  0 otherwise (the refusal stands).
static int
s_clean_stale (s_ctx_t *ctx, s_shard_t *s, const ring_t *ring)
{
    rl_migrate_rec_t peek = {.role = RL_MIGRATE_SOURCE, .param = RL_MIGRATE_CLEANUP_PEEK}, old, out;
    if (s_migrate (ctx, s, RL_OP_MIGRATE_CLEANUP, &peek, &old) != 0
        || old.state != RL_MIGRATE_HANDED_OVER || old.role != RL_MIGRATE_SOURCE) {
        return 0;
    }
    int owner = ring_lookup (ring, old.arc_end);
    s_shard_t *holder = owner >= 0 ? s_shard (ctx, ring_shard_name (ring, (size_t) owner)) : NULL;
    rl_status_rec_t st = {0};
    rl_client_t *client = holder && holder != s ? s_client (ctx, holder) : NULL;
    if (!client || ring_arc_share (ring, old.arc_start, old.arc_end, owner) != RING_SHARE_ALL
        || rl_client_status (client, &st, ctx->args->timeout_ms) != 0
        || st.state != RL_SHARD_SERVING || st.epoch != ring_epoch (ring)
        || st.arcs_unreceived != 0) {
        printf ("%s: migration %" PRIu64 " was handed over from there and not cleaned up, "
                "and no other shard is known to hold its arc: not cleaned up\n",
                s->name, old.migration_id);
        return 0;
    }
    rl_migrate_rec_t req = {.migration_id = old.migration_id, .role = RL_MIGRATE_SOURCE};
    int64_t deadline = zclock_mono () + S_CLEANUP_WAIT_MS;
    for (;;) {
        if (s_migrate (ctx, s, RL_OP_MIGRATE_CLEANUP, &req, &out) != 0) {
            return 0;
        }
        if (out.state == RL_MIGRATE_NONE) {
            printf ("%s: migration %" PRIu64 " was handed over from there and not cleaned "
                    "up (%s holds its arc): cleaned up now\n",
                    s->name, old.migration_id, holder->name);
            return 1;
        }
        if (out.state != RL_MIGRATE_HANDED_OVER || zclock_mono () > deadline) {
            return 0;
        }
        zclock_sleep (S_CLEANUP_POLL_MS);
    }
}

//  `ring`: the ring the cluster serves before the step.
static int
s_begin_one (s_ctx_t *ctx, s_shard_t *s, const ring_t *ring, const rl_migrate_rec_t *req,
             rl_migrate_rec_t *out)
{
    int rc = s_begin_once (ctx, s, req, out);
    if (rc == RL_STATUS_MIGRATION_REFUSED && s_clean_stale (ctx, s, ring)) {
        rc = s_begin_once (ctx, s, req, out);
    }
    return rc;
}

//  migrate_begin on both sides (again: their stored state). *source_state:
//  the source's state.
static int
s_begin (s_run_t *r, uint32_t *source_state)
{
    rl_migrate_rec_t req = s_request (r->step, RL_MIGRATE_SOURCE), out;
    int rc = s_begin_one (r->ctx, r->source, r->ctx->plan.rings[r->index], &req, &out);
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER,
                       "step %zu: migrate_begin on the source %s: %s (a migration of another "
                       "change stored there? the ring it serves?)",
                       r->index + 1, r->source->name, s_rc_text (rc));
    }
    *source_state = out.state;
    req = s_request (r->step, RL_MIGRATE_TARGET);
    rc = s_begin_one (r->ctx, r->target, r->ctx->plan.rings[r->index], &req, &out);
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_begin on the target %s: %s",
                       r->index + 1, r->target->name, s_rc_text (rc));
    }
    if (out.migration_id != r->step->migration_id || out.role != RL_MIGRATE_TARGET) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: the target answered another migration",
                       r->index + 1);
    }
    r->have = out;
    return s_point (RL_FAILPOINT (REBALANCE_BEGUN), "rebalance.begun");
}

//  A shard that leaves the ring does so at the step of its last point
//  (rebalance_state.c), and only once nothing two-phase names it any
//  more: nothing in its own in_doubt list (no live attempt, no undelivered
//  decision, no prepared record), and no entry of any other shard with it
//  as the peer (a decision that must still reach it). True when that holds.
static bool
s_leaving_quiet (s_run_t *r)
{
    s_ctx_t *ctx = r->ctx;
    const char *endpoints[S_SHARDS_MAX] = {NULL};
    rl_in_doubt_rec_t *records[S_SHARDS_MAX];
    size_t counts[S_SHARDS_MAX];
    int rcs[S_SHARDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ctx->shard_count; i++) {
        if (s_in_change (ctx, ctx->shards[i].name, r->index)) {
            endpoints[n++] = ctx->shards[i].endpoint;
        }
    }
    size_t failed = rl_client_in_doubt_all (endpoints, n, ctx->args->timeout_ms, records, counts,
                                            rcs);
    bool quiet = failed == 0;
    for (size_t i = 0; i < n; i++) {
        bool self = strcmp (endpoints[i], r->source->endpoint) == 0;
        for (size_t j = 0; j < counts[i] && quiet; j++) {
            quiet = !self && strncmp (records[i][j].peer, r->step->source, RL_SHARD_NAME_SIZE_MAX);
        }
        free (records[i]);
    }
    return quiet;
}

//  Waits (bounded) until the leaving shard is quiet.
static int
s_leaving_wait (s_run_t *r)
{
    int64_t deadline = zclock_mono () + S_LEAVE_WAIT_MS;
    while (!s_leaving_quiet (r)) {
        if (zclock_mono () > deadline) {
            return s_fail (RB_EXIT_CLUSTER,
                           "step %zu: %s leaves the ring, but two-phase entries still name it "
                           "after %d ms (see rlctl in-doubt): rerun apply later",
                           r->index + 1, r->step->source, S_LEAVE_WAIT_MS);
        }
        zclock_sleep (50);
    }
    return 0;
}

//  The freeze did not drain (or ship) in time: the arc serves again, and
//  the step is tried again later.
static int
s_retry_later (s_run_t *r, const char *why)
{
    free (r->ahead_chunk); //  of the freeze undone
    r->ahead_chunk = NULL;
    rl_migrate_rec_t req = s_request (r->step, RL_MIGRATE_SOURCE), out;
    int rc = s_migrate (r->ctx, r->source, RL_OP_MIGRATE_UNFREEZE, &req, &out);
    if (rc == RL_STATUS_MIGRATION_REFUSED) {
        return 1; //  the final round is out already (SHIPPED): go on
    }
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_unfreeze on %s: %s", r->index + 1,
                       r->source->name, s_rc_text (rc));
    }
    if ((rc = s_point (RL_FAILPOINT (REBALANCE_UNFROZEN), "rebalance.unfrozen")) != 0) {
        return rc;
    }
    r->step->retries++;
    r->step->state = RB_COPYING;
    r->step->frozen_at = 0;
    if ((rc = s_save (r->ctx)) != 0) {
        return rc;
    }
    fprintf (stderr,
             "rebalance: step %zu: %s: unfrozen, tried again later (%" PRIu64 " of %" PRIu64 ")\n",
             r->index + 1, why, r->step->retries, r->ctx->args->max_retries);
    if (r->step->retries > r->ctx->args->max_retries) {
        return s_fail (RB_EXIT_CLUSTER,
                       "step %zu: the arc did not drain within %" PRIu32 " ms in %" PRIu64
                       " tries: rerun apply later (or with a larger --freeze-max-ms)",
                       r->index + 1, r->ctx->plan.freeze_max_ms, r->step->retries);
    }
    uint64_t pause = 100 * r->step->retries;
    zclock_sleep ((int) (pause > S_BACKOFF_MS_MAX ? S_BACKOFF_MS_MAX : pause));
    return 0;
}

//  The freeze and the first export of the round after it, back to back on
//  one connection: the source takes the freeze, then the export, which
//  waits there for the drain (migrate.c) while the freeze's write syncs,
//  instead of leaving the tool only once the freeze's answer came back (a
//  source whose arc is drained serves it right after the freeze's write,
//  in the freeze's sync). The freeze's answer is taken first: *freeze_rc
//  is 0 (and *out the record), the status the source answered, or a
//  client error when no answer came (the caller sends the freeze again,
//  alone: it is idempotent). The failpoint rebalance.frozen fires once an
//  ok answer is in (the freeze is applied), never when it is only sent.
//  Then the export's chunk is taken, within the call's timeout, and kept
//  for the round (r->ahead_chunk); one that did not come back is
//  cancelled, and the round sends it again. Returns 0, or the exit of the
//  failpoint.
static int
s_freeze_ahead (s_run_t *r, const rl_migrate_rec_t *freeze, uint32_t wait_ms, rl_migrate_rec_t *out,
                int *freeze_rc)
{
    const s_args_t *a = r->ctx->args;
    *freeze_rc = RL_CLIENT_ERR_SEND;
    rl_client_t *client = s_client (r->ctx, r->source);
    if (!client) {
        return 0;
    }
    uint8_t fbody[RL_MIGRATE_SIZE], xbody[RL_MIGRATE_SIZE];
    codec_encode_migrate (freeze, fbody);
    rl_migrate_rec_t x = r->have;
    x.role = RL_MIGRATE_SOURCE;
    x.entries_max = s_entries (r);
    x.param = wait_ms;
    codec_encode_migrate (&x, xbody);
    uint64_t ids[2] = {0, 0}; //  the freeze, the export
    r->t_freeze_sent = rb_wall_ms ();
    r->t_first_chunk = r->frozen_chunks = 0;
    if (rl_client_send (client, RL_OP_MIGRATE_FREEZE, fbody, sizeof fbody, 1, &ids[0]) != 0) {
        return 0;
    }
    int exit = s_point (RL_FAILPOINT (REBALANCE_FREEZE_SENT), "rebalance.freeze_sent");
    if (exit == 0
        && rl_client_send (client, RL_OP_MIGRATE_EXPORT, xbody, sizeof xbody, 1, &ids[1]) != 0) {
        ids[1] = 0; //  the round sends it
    }
    *freeze_rc = RL_CLIENT_TIMEOUT;
    if (exit != 0) {
        rl_client_cancel (client, ids[0]);
        return exit;
    }
    int64_t deadline = zclock_mono () + a->timeout_ms;
    while ((ids[0] != 0 || ids[1] != 0) && exit == 0) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            break;
        }
        rl_header_t h;
        memset (&h, 0, sizeof h);
        uint8_t *body = NULL;
        size_t size = 0;
        int got = rl_client_recv (client, (int) left, &h, &body, &size);
        if (ids[0] != 0 && h.request_id == ids[0]) {
            ids[0] = 0;
            *freeze_rc = got == 0 && size != RL_MIGRATE_SIZE ? RL_CLIENT_ERR_REPLY : got;
            if (*freeze_rc == 0) {
                r->t_frozen = rb_wall_ms ();
                codec_decode_migrate (body, out);
                exit = s_point (RL_FAILPOINT (REBALANCE_FROZEN), "rebalance.frozen");
            } else {
                free (body);
                break; //  refused, or no clean answer: the export does not count
            }
        } else if (ids[1] != 0 && h.request_id == ids[1]) {
            ids[1] = 0;
            if (got == 0 && body) {
                r->ahead_chunk = body; //  taken by s_chunk
                r->ahead_size = size;
                body = NULL;
            }
        } else if (got == RL_CLIENT_TIMEOUT || got == RL_CLIENT_ERR_ARGS) {
            free (body);
            break; //  nothing came, or nothing of ours is in flight
        }
        free (body);
    }
    for (size_t i = 0; i < 2; i++) {
        if (ids[i] != 0) {
            rl_client_cancel (client, ids[i]); //  a late reply is dropped
        }
    }
    if (*freeze_rc != 0) {
        free (r->ahead_chunk); //  the freeze is sent again: so is the export
        r->ahead_chunk = NULL;
        r->ahead_size = 0;
    }
    return exit;
}

//  From COPYING or FROZEN to HANDOVER: the copy, the freeze, the drain and
//  the final round; tried again while the freeze does not drain in time.
static int
s_move (s_run_t *r)
{
    rb_step_t *step = r->step;
    const s_args_t *a = r->ctx->args;
    uint32_t freeze_ms = r->ctx->plan.freeze_max_ms;
    bool leaving = ring_shard_find (r->ctx->plan.rings[r->index + 1], step->source) < 0;
    uint32_t half_call = (uint32_t) a->timeout_ms / 2;
    uint32_t wait_ms = freeze_ms < half_call ? freeze_ms
                                             : half_call; //  an export's wait for the drain
    for (;;) {
        uint32_t source_state = 0;
        r->t_frozen = 0;
        int rc = s_begin (r, &source_state);
        if (rc != 0) {
            return rc;
        }
        if (r->have.state == RL_MIGRATE_SHIPPED || r->have.state == RL_MIGRATE_HANDED_OVER) {
            break; //  the final chunk is in the target already
        }
        if (source_state == RL_MIGRATE_COPYING) {
            if (step->state == RB_FROZEN) { //  the freeze ended (or never began)
                step->state = RB_COPYING;
                step->frozen_at = 0;
            }
            //  Copy until a round brings few records.
            for (int round = 0; round < S_ROUNDS_MAX; round++) {
                uint64_t records = 0;
                if ((rc = s_round (r, &records)) != 0) {
                    return rc;
                }
                step->lag = records;
                if (records <= a->catchup) {
                    break;
                }
            }
            if (leaving && (rc = s_leaving_wait (r)) != 0) {
                return rc;
            }
            step->state = RB_FROZEN;
            step->frozen_at = rb_wall_ms ();
            if ((rc = s_save (r->ctx)) != 0) {
                return rc;
            }
            rl_migrate_rec_t req = s_request (step, RL_MIGRATE_SOURCE), out;
            req.param = freeze_ms;
            req.entries_max = a->reconciled ? RL_MIGRATE_HEURISTICS_RECONCILED : 0;
            bool ahead = !leaving && r->have.cursor.phase == RL_MIGRATE_PHASE_DONE;
            rc = RL_CLIENT_TIMEOUT;
            if (ahead) {
                //  The freeze and the round after it, back to back; its
                //  failpoint fires inside, once the freeze is answered.
                int exit = s_freeze_ahead (r, &req, wait_ms, &out, &rc);
                if (exit != 0) {
                    free (r->ahead_chunk);
                    r->ahead_chunk = NULL;
                    return exit;
                }
            }
            bool alone = !ahead || s_retryable (rc);
            if (alone) {
                r->t_freeze_sent = rb_wall_ms ();
                r->t_first_chunk = r->frozen_chunks = 0;
                rc = s_migrate (r->ctx, r->source, RL_OP_MIGRATE_FREEZE, &req, &out);
            }
            if (rc != 0) {
                return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_freeze on %s: %s%s",
                               r->index + 1, r->source->name, s_rc_text (rc),
                               rc == RL_STATUS_MIGRATION_REFUSED && !a->reconciled
                                   ? " (heuristic records in the arc? see its log; reconcile "
                                     "them, then run apply again with --heuristics-reconciled)"
                                   : "");
            }
            if (alone
                && (rc = s_point (RL_FAILPOINT (REBALANCE_FROZEN), "rebalance.frozen")) != 0) {
                return rc;
            }
            source_state = out.state;
        } else if (step->state != RB_FROZEN || step->frozen_at == 0) {
            step->state = RB_FROZEN; //  frozen by an earlier run
            step->frozen_at = rb_wall_ms ();
            if ((rc = s_save (r->ctx)) != 0) {
                return rc;
            }
        }
        if (!r->t_frozen) {
            r->t_frozen = rb_wall_ms (); //  (the freeze sent ahead: when its answer came)
        }
        //  The drain (and for a shard that leaves, nothing two-phase left on it).
        bool drained = source_state == RL_MIGRATE_SHIPPED;
        bool thawed = false;
        if (!drained && !leaving && r->have.cursor.phase == RL_MIGRATE_PHASE_DONE) {
            //  No poll first: the source checks the drain when a round
            //  begins, and a round that begins frozen and drained is the
            //  final one. Usually the arc is drained already, and the
            //  freeze saves the round trips of a poll; if not, this round
            //  is one more catch-up and the drain is polled below. Its
            //  first export asks the source to wait for the drain (at most
            //  the freeze's limit, or half a call's timeout): the source
            //  answers in the turn the arc drained, with the final round's
            //  first chunk (a source that does not wait answers at once).
            uint64_t records = 0;
            r->export_wait_ms = wait_ms;
            rc = s_round (r, &records);
            r->export_wait_ms = 0;
            if (rc != 0) {
                return rc;
            }
            step->lag = records;
            drained = r->have.state == RL_MIGRATE_SHIPPED || r->final_chunk;
        }
        while (!drained && !thawed) {
            rl_migrate_rec_t req = s_request (step, RL_MIGRATE_SOURCE), out;
            rc = s_migrate (r->ctx, r->source, RL_OP_MIGRATE_DRAIN, &req, &out);
            if (rc != 0) {
                return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_drain on %s: %s", r->index + 1,
                               r->source->name, s_rc_text (rc));
            }
            if (out.state == RL_MIGRATE_COPYING) {
                thawed = true; //  the source's own time limit passed
            } else if (out.param == 0 && (!leaving || s_leaving_quiet (r))) {
                drained = true;
            } else if (rb_wall_ms () - step->frozen_at > freeze_ms) {
                rc = s_retry_later (r, "the arc did not drain in time");
                if (rc < 0 || rc > 1) {
                    return rc;
                }
                thawed = rc == 0;
                drained = rc == 1;
            } else {
                zclock_sleep (S_DRAIN_POLL_MS);
            }
        }
        r->t_drained = rb_wall_ms ();
        if (thawed) {
            if (step->state == RB_FROZEN) {
                if ((rc = s_retry_later (r, "the source ended the freeze")) < 0 || rc > 1) {
                    return rc;
                }
            }
            continue;
        }
        //  The final round: one that begins frozen and drained (the round
        //  in progress at the freeze, if any, ends first).
        for (int round = 0;
             round < S_FINAL_ROUNDS_MAX && r->have.state != RL_MIGRATE_SHIPPED && !r->final_chunk;
             round++) {
            uint64_t records = 0;
            r->export_wait_ms = wait_ms;
            rc = s_round (r, &records);
            r->export_wait_ms = 0;
            if (rc != 0) {
                return rc;
            }
            step->lag = records;
        }
        if (r->have.state == RL_MIGRATE_SHIPPED || r->final_chunk) {
            break;
        }
        if ((rc = s_retry_later (r, "the final round did not ship")) < 0 || rc > 1) {
            return rc;
        }
    }
    r->t_shipped = rb_wall_ms ();
    step->state = RB_HANDOVER;
    int rc = s_save (r->ctx);
    if (rc != 0) {
        return rc;
    }
    r->t_saved = rb_wall_ms ();
    return s_point (RL_FAILPOINT (REBALANCE_SHIPPED), "rebalance.shipped");
}

//  A commit of one side; HANDED_OVER wanted.
static int
s_commit (s_run_t *r, s_shard_t *s, uint32_t role)
{
    rl_migrate_rec_t req = s_request (r->step, role), out;
    int rc = s_migrate (r->ctx, s, RL_OP_MIGRATE_COMMIT, &req, &out);
    if (rc == RL_STATUS_MIGRATION_REFUSED && role == RL_MIGRATE_TARGET) {
        return S_COMMIT_REFUSED;
    }
    if (rc == 0 && role == RL_MIGRATE_SOURCE && out.state == RL_MIGRATE_NONE
        && out.migration_id == req.migration_id) {
        return 0; //  committed and cleaned up already (a run killed after its cleanup)
    }
    if (rc != 0 || out.state != RL_MIGRATE_HANDED_OVER) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_commit on the %s %s: %s", r->index + 1,
                       role == RL_MIGRATE_SOURCE ? "source" : "target", s->name,
                       rc ? s_rc_text (rc) : s_migrate_state_name (out.state));
    }
    return 0;
}

static int s_abort_step (s_run_t *r);
static size_t s_lease_release_all (s_ctx_t *ctx);

//  Ends a rolled back step: both shards forget it (the target first: it
//  deletes what it imported), and every shard still in the change serves
//  rollback.ring, which gives the arc to the source again at an epoch
//  above the step's (the target may serve the step's ring already).
static int
s_rollback_finish (s_run_t *r)
{
    int rc = s_abort_step (r);
    rc = rc == 0 ? s_publish_ring (r->ctx, r->ctx->plan.rollback, r->index) : rc;
    if (rc == 0) {
        s_lease_release_all (r->ctx); //  the change is over
    }
    return rc;
}

//  apply stops after a rollback: the change must be planned again.
static int
s_rolled_back (s_run_t *r)
{
    return s_fail (RB_EXIT_CLUSTER,
                   "step %zu was rolled back: its target %s refused the commit (its log says "
                   "why; it may still hold accounts of the arc from an earlier change). Every "
                   "shard serves %s/rollback.ring (epoch %" PRIu64 "): plan the rest of the change "
                   "from it, in a new state directory",
                   r->index + 1, r->step->target, r->ctx->plan.dir,
                   ring_epoch (r->ctx->plan.rollback));
}

//  The target refused its commit, so the source never committed: the step
//  is undone (written ahead, then done).
static int
s_rollback (s_run_t *r)
{
    char err[512];
    if (rb_rollback_save (&r->ctx->plan, r->index, err, sizeof err) != 0) {
        return s_fail (RB_EXIT_BAD_FILE, "cannot write the rollback ring: %s", err);
    }
    r->step->state = RB_ROLLED_BACK;
    r->step->frozen_at = 0;
    int rc = s_save (r->ctx);
    if (rc != 0 || (rc = s_point (RL_FAILPOINT (REBALANCE_ROLLED_BACK), "rebalance.rolled_back"))) {
        return rc;
    }
    if ((rc = s_rollback_finish (r)) != 0) {
        return rc;
    }
    return s_rolled_back (r);
}

//  The source deletes the arc's accounts and their history (it no longer
//  serves them: every shard serves the step's ring), in bounded calls,
//  after the checkpoint it waits for: until then it answers HANDED_OVER.
//  Done when it answers NONE. Part of the handover, so that no later step
//  begins (and replaces the migration on the source) before it is done.
static int
s_cleanup (s_run_t *r)
{
    rl_migrate_rec_t req = s_request (r->step, RL_MIGRATE_SOURCE), out;
    int64_t deadline = zclock_mono () + S_CLEANUP_WAIT_MS;
    for (;;) {
        int rc = s_migrate (r->ctx, r->source, RL_OP_MIGRATE_CLEANUP, &req, &out);
        if (rc != 0) {
            return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_cleanup on %s: %s", r->index + 1,
                           r->source->name, s_rc_text (rc));
        }
        if (out.state == RL_MIGRATE_NONE) {
            return 0;
        }
        if (out.state != RL_MIGRATE_HANDED_OVER || zclock_mono () > deadline) {
            return s_fail (RB_EXIT_CLUSTER,
                           "step %zu: migrate_cleanup on %s answered %s after %d ms: rerun apply",
                           r->index + 1, r->source->name, s_migrate_state_name (out.state),
                           S_CLEANUP_WAIT_MS);
        }
        zclock_sleep (S_CLEANUP_POLL_MS); //  a checkpoint to wait for, or more to delete
    }
}

//  The target's answer to the final chunk: counts, and its record.
static int
s_imported (s_run_t *r, const rl_migrate_rec_t *out)
{
    if (out->migration_id != r->step->migration_id || out->chunks < r->have.chunks) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: %s answered the import with another migration",
                       r->index + 1, r->target->name);
    }
    r->step->chunks = out->chunks;
    r->step->records = out->records;
    r->step->accounts = out->accounts;
    r->have = *out;
    free (r->final_chunk);
    r->final_chunk = NULL;
    r->final_size = 0;
    return 0;
}

//  The final chunk held (if any) into the target, sent again while it times out.
static int
s_final_import (s_run_t *r)
{
    if (!r->final_chunk) {
        return 0;
    }
    rl_migrate_rec_t out;
    int rc = RL_CLIENT_ERR_SEND;
    for (int attempt = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        rl_client_t *client = s_client (r->ctx, r->target);
        rc = client ? rl_client_migrate_import (client, r->final_chunk, r->final_size, &out,
                                                r->ctx->args->timeout_ms)
                    : RL_CLIENT_ERR_NOMEM;
        if (!s_retryable (rc)) {
            break;
        }
        zclock_sleep (100);
    }
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_import of the final chunk into %s: %s",
                       r->index + 1, r->target->name, s_rc_text (rc));
    }
    return s_imported (r, &out);
}

//  A handover resumed (apply run again, fix): the final chunk may not be
//  in the target yet (the state says handover once the source shipped it).
//  The target's stored migration says (migrate_lease, read: nothing
//  written); the rest of the final round comes from its cursor (the
//  source is SHIPPED: the round's last chunk is final), held for the
//  handover like the final chunk of a run that was not interrupted.
static int
s_final_rest (s_run_t *r)
{
    rl_migrate_rec_t stored;
    uint64_t holder = 0;
    int rc = RL_CLIENT_ERR_SEND;
    for (int attempt = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        rl_client_t *client = s_client (r->ctx, r->target);
        rc = client ? rl_client_migrate_lease (client, 0, RL_MIGRATE_LEASE_READ, &stored, &holder,
                                               r->ctx->args->timeout_ms)
                    : RL_CLIENT_ERR_NOMEM;
        if (!s_retryable (rc)) {
            break;
        }
        zclock_sleep (100);
    }
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_lease (read) on the target %s: %s",
                       r->index + 1, r->target->name, s_rc_text (rc));
    }
    if (stored.migration_id != r->step->migration_id || stored.role != RL_MIGRATE_TARGET
        || stored.state != RL_MIGRATE_COPYING) {
        return 0; //  the final chunk is in (or the commit says why not)
    }
    r->have = stored;
    for (int round = 0;
         round < S_FINAL_ROUNDS_MAX && !r->final_chunk && r->have.state != RL_MIGRATE_SHIPPED;
         round++) {
        uint64_t records = 0;
        if ((rc = s_round (r, &records)) != 0) {
            return rc;
        }
    }
    if (!r->final_chunk && r->have.state != RL_MIGRATE_SHIPPED) {
        return s_fail (RB_EXIT_CLUSTER,
                       "step %zu: in its handover, but the source %s sent no final chunk",
                       r->index + 1, r->source->name);
    }
    return 0;
}

//  The final chunk (when held), the step's ring and the commit in one
//  round trip to the target, sent back to back on one connection, so that
//  the target applies them in order in one turn and answers them after
//  one sync (its commit takes the staged accounts from memory, the final
//  chunk's among them: docs/rebalance.md, "The stage"). -1: not every
//  reply came back clean from a live target (a timeout, busy, a send that
//  failed): the caller sends what is left again, one after the other (each
//  is idempotent). Otherwise as s_target_handover.
static int
s_target_pipelined (s_run_t *r, size_t k)
{
    s_ctx_t *ctx = r->ctx;
    rl_client_t *client = s_client (ctx, r->target);
    const ring_t *ring = ctx->plan.rings[k];
    size_t ring_size = ring_encoded_size (ring);
    uint8_t *blob = client ? malloc (ring_size) : NULL;
    if (!blob) {
        return -1;
    }
    ring_encode (ring, blob, ring_size);
    uint8_t commit[RL_MIGRATE_SIZE];
    rl_migrate_rec_t req = s_request (r->step, RL_MIGRATE_TARGET);
    codec_encode_migrate (&req, commit);
    enum { IMPORT, RING, COMMIT, PARTS };
    uint64_t ids[PARTS] = {0};
    bool sent[PARTS] = {false}, got[PARTS] = {false};
    int rcs[PARTS] = {RL_CLIENT_TIMEOUT, RL_CLIENT_TIMEOUT, RL_CLIENT_TIMEOUT};
    rl_migrate_rec_t recs[PARTS];
    memset (recs, 0, sizeof recs);
    int rc = 0;
    if (r->final_chunk) {
        rc = rl_client_send (client, RL_OP_MIGRATE_IMPORT, r->final_chunk, r->final_size, 1,
                             &ids[IMPORT]);
        sent[IMPORT] = rc == 0;
    }
    if (rc == 0) {
        rc = rl_client_send (client, RL_OP_LOAD_RING, blob, ring_size, 1, &ids[RING]);
        sent[RING] = rc == 0;
    }
    if (rc == 0) {
        rc = rl_client_send (client, RL_OP_MIGRATE_COMMIT, commit, sizeof commit, 1, &ids[COMMIT]);
        sent[COMMIT] = rc == 0;
    }
    free (blob);
    int point = rc == 0 ? s_point (RL_FAILPOINT (REBALANCE_TARGET_RING), "rebalance.target_ring")
                        : 0;
    int64_t deadline = zclock_mono () + ctx->args->timeout_ms;
    size_t waiting = (size_t) sent[IMPORT] + sent[RING] + sent[COMMIT];
    while (point == 0 && waiting > 0) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            break;
        }
        rl_header_t h;
        memset (&h, 0, sizeof h);
        uint8_t *body = NULL;
        size_t body_size = 0;
        int x = rl_client_recv (client, (int) left, &h, &body, &body_size);
        size_t part = PARTS;
        for (size_t i = 0; i < PARTS; i++) {
            if (sent[i] && !got[i] && h.request_id == ids[i] && h.request_id != 0) {
                part = i;
            }
        }
        if (part == PARTS) {
            free (body);
            break; //  a timeout, or no reply of ours: what is left goes again
        }
        got[part] = true;
        waiting--;
        rcs[part] = x;
        if (x == 0 && part != RING) {
            if (body_size == RL_MIGRATE_SIZE) {
                codec_decode_migrate (body, &recs[part]);
            } else {
                rcs[part] = RL_CLIENT_ERR_REPLY;
            }
        }
        free (body);
    }
    for (size_t i = 0; i < PARTS; i++) {
        if (sent[i] && !got[i]) {
            rl_client_cancel (client, ids[i]); //  a late reply is dropped
        }
    }
    if (point != 0) {
        return point;
    }
    //  In the order the target applied them: a part that failed for a
    //  reason worth a resend sends it and what follows again. The commit
    //  counts only after the final chunk was taken (a chunk refused makes
    //  the commit refused too, which is no refusal of the step).
    if (r->final_chunk) {
        if (!got[IMPORT] || s_retryable (rcs[IMPORT])) {
            return -1;
        }
        if (rcs[IMPORT] != 0) {
            return s_fail (RB_EXIT_CLUSTER,
                           "step %zu: migrate_import of the final chunk into %s: %s", r->index + 1,
                           r->target->name, s_rc_text (rcs[IMPORT]));
        }
        if ((rc = s_imported (r, &recs[IMPORT])) != 0) {
            return rc;
        }
    }
    if (!got[RING] || s_retryable (rcs[RING])) {
        return -1;
    }
    if (rcs[RING] != 0 && rcs[RING] != RL_STATUS_EPOCH_NOT_NEWER) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: load_ring into the target %s: %s", k,
                       r->target->name, s_rc_text (rcs[RING]));
    }
    if (rcs[RING] == RL_STATUS_EPOCH_NOT_NEWER) {
        //  A fail-over's ring at the step's epoch (or above) may hold the
        //  arc elsewhere, and the commit be refused for it: once the plan
        //  follows it, the ring and the commit go again, one by one.
        rc = s_not_newer (ctx, r->target);
        if (rc != 0) {
            return rc == S_FOLLOWED ? -1 : rc;
        }
    }
    if (!got[COMMIT] || s_retryable (rcs[COMMIT])) {
        return -1;
    }
    if (rcs[COMMIT] == RL_STATUS_MIGRATION_REFUSED) {
        return S_COMMIT_REFUSED;
    }
    if (rcs[COMMIT] != 0 || recs[COMMIT].state != RL_MIGRATE_HANDED_OVER) {
        return s_fail (
            RB_EXIT_CLUSTER, "step %zu: migrate_commit on the target %s: %s", k, r->target->name,
            rcs[COMMIT] ? s_rc_text (rcs[COMMIT]) : s_migrate_state_name (recs[COMMIT].state));
    }
    return 0;
}

//  The target's part of the handover: the final chunk (when held), the
//  step's ring, the commit. 0: committed (the arc serves there);
//  S_COMMIT_REFUSED: the target refused the commit; or an exit code.
static int
s_target_handover (s_run_t *r, size_t k)
{
    if (RL_FAILPOINT (REBALANCE_COMMIT_REFUSED) != 0) {
        //  As if the target had refused its commit (tests): the final
        //  chunk and the ring go in, the commit is not sent.
        int rc = s_final_import (r);
        if (rc == 0 && (rc = s_load_ring (r->ctx, r->target, k)) != 0) {
            rc = s_fail (RB_EXIT_CLUSTER, "step %zu: load_ring into the target %s: %s", k,
                         r->target->name, s_rc_text (rc));
        }
        return rc != 0 ? rc : S_COMMIT_REFUSED;
    }
    int rc = s_target_pipelined (r, k);
    if (rc >= 0) {
        return rc;
    }
    //  One after the other, each sent again while it times out.
    if ((rc = s_final_import (r)) != 0) {
        return rc;
    }
    if ((rc = s_load_ring (r->ctx, r->target, k)) != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: load_ring into the target %s: %s", k,
                       r->target->name, s_rc_text (rc));
    }
    return s_commit (r, r->target, RL_MIGRATE_TARGET);
}

//  HANDOVER to DONE: only forward, unless the target refuses its commit.
static int
s_handover (s_run_t *r)
{
    size_t k = r->index + 1;
    int rc = r->final_chunk ? 0 : s_final_rest (r);
    if (rc != 0) {
        return rc;
    }
    rc = s_target_handover (r, k);
    if (rc == S_COMMIT_REFUSED) {
        return s_rollback (r); //  the source never committed: undo the step
    }
    r->t_committed = rb_wall_ms (); //  the arc serves again, on the target
    if (rc != 0
        || (rc = s_point (RL_FAILPOINT (REBALANCE_TARGET_COMMITTED), "rebalance.target_committed"))
               != 0) {
        return rc;
    }
    rc = s_load_ring (r->ctx, r->source, k);
    if (rc != 0) {
        return s_fail (RB_EXIT_CLUSTER, "step %zu: load_ring into the source %s: %s", k,
                       r->source->name, s_rc_text (rc));
    }
    if ((rc = s_commit (r, r->source, RL_MIGRATE_SOURCE)) != 0
        || (rc = s_point (RL_FAILPOINT (REBALANCE_SOURCE_COMMITTED), "rebalance.source_committed"))
               != 0
        || (rc = s_publish (r->ctx, k)) != 0
        || (rc = s_point (RL_FAILPOINT (REBALANCE_PUBLISHED), "rebalance.published")) != 0
        || (rc = s_cleanup (r)) != 0
        || (rc = s_point (RL_FAILPOINT (REBALANCE_CLEANED), "rebalance.cleaned")) != 0) {
        return rc;
    }
    r->step->state = RB_DONE;
    r->step->frozen_at = 0;
    r->step->finished = rb_wall_ms ();
    if ((rc = s_save (r->ctx)) != 0) {
        return rc;
    }
    return s_point (RL_FAILPOINT (REBALANCE_STEP_DONE), "rebalance.step_done");
}

static int
s_run_init (s_ctx_t *ctx, size_t index, s_run_t *r)
{
    *r = (s_run_t){.ctx = ctx, .index = index, .step = &ctx->plan.steps[index]};
    r->source = s_shard (ctx, r->step->source);
    r->target = s_shard (ctx, r->step->target);
    if (!r->source || !r->target) {
        return s_fail (RB_EXIT_BAD_FILE, "step %zu names a shard no ring has", index + 1);
    }
    return 0;
}

static int
s_step (s_ctx_t *ctx, size_t index)
{
    s_run_t r;
    int rc = s_run_init (ctx, index, &r);
    if (rc != 0) {
        return rc;
    }
    rb_step_t *step = r.step;
    uint64_t t0 = rb_wall_ms ();
    if (step->state == RB_PENDING) {
        step->state = RB_COPYING;
        step->started = t0;
        if ((rc = s_save (ctx)) != 0) {
            return rc;
        }
    }
    if (step->state == RB_COPYING || step->state == RB_FROZEN) {
        rc = s_move (&r);
        free (r.ahead_chunk); //  taken by the round after the freeze, unless it stopped
        r.ahead_chunk = NULL;
        if (rc != 0) {
            free (r.final_chunk);
            return rc;
        }
    }
    uint64_t frozen = step->frozen_at ? rb_wall_ms () - step->frozen_at : 0;
    rc = s_handover (&r);
    free (r.final_chunk);
    if (rc != 0) {
        return rc;
    }
    if (!ctx->args->json) {
        char parts[320] = "";
        if (r.t_frozen && r.t_drained >= r.t_frozen && r.t_shipped >= r.t_drained
            && r.t_committed >= r.t_shipped) {
            //  This run's last freeze: to the drain seen (with the round
            //  that found it), to the final chunk exported, to the
            //  target's commit; and the state file's write between; then
            //  from the freeze sent: its answer, the first chunk after it,
            //  and the chunks after it.
            uint64_t sent = r.t_freeze_sent && r.t_freeze_sent <= r.t_frozen ? r.t_freeze_sent
                                                                             : r.t_frozen;
            snprintf (
                parts, sizeof parts,
                " (drained %" PRIu64 ", shipped %" PRIu64 ", target committed %" PRIu64
                " ms after the freeze; state written in %" PRIu64 " ms; freeze answered %" PRIu64
                ", first chunk in %" PRIu64 " ms after it was sent, %" PRIu64 " chunks after it)",
                r.t_drained - r.t_frozen, r.t_shipped - r.t_frozen, r.t_committed - r.t_frozen,
                r.t_saved >= r.t_shipped ? r.t_saved - r.t_shipped : 0, r.t_frozen - sent,
                r.t_first_chunk >= sent ? r.t_first_chunk - sent : 0, r.frozen_chunks);
        }
        printf ("step %zu/%zu: %s -> %s, arc (%016" PRIx64 ", %016" PRIx64 "]: %" PRIu64
                " accounts, %" PRIu64 " records, %" PRIu64 " bytes, %" PRIu64
                " rounds, frozen %" PRIu64 " ms%s, %" PRIu64 " retries: epoch %" PRIu64 "\n",
                index + 1, ctx->plan.step_count, step->source, step->target, step->start, step->end,
                step->accounts, step->records, step->bytes, step->rounds, frozen, parts,
                step->retries, ctx->plan.base_epoch + index + 1);
        fflush (stdout);
    }
    return 0;
}

//  Loads a plan from its directory (rc as rb_plan_load).
static int
s_load (s_ctx_t *ctx)
{
    char err[1024];
    int rc = rb_plan_load (&ctx->plan, ctx->args->state_dir, err, sizeof err);
    if (rc == RB_NO_PLAN) {
        return s_fail (RB_EXIT_USAGE, "%s holds no plan (no state file): run apply first",
                       ctx->args->state_dir);
    }
    if (rc != 0) {
        return s_fail (rc, "%s", err);
    }
    return 0;
}

//  Do the two ring files given agree with the plan in the directory?
static bool
s_same_change (const rb_plan_t *plan, const ring_t *current, const ring_t *planned)
{
    const ring_t *first = plan->rings[0], *last = plan->rings[plan->step_count];
    if (ring_epoch (current) != ring_epoch (first) - plan->shift //  the epoch derived from
        || ring_point_count (current) != ring_point_count (first)
        || ring_point_count (planned) != ring_point_count (last)) {
        return false;
    }
    for (size_t i = 0; i < ring_point_count (first); i++) {
        if (ring_point_position (current, i) != ring_point_position (first, i)) {
            return false;
        }
    }
    for (size_t i = 0; i < ring_point_count (last); i++) {
        if (ring_point_position (planned, i) != ring_point_position (last, i)
            || strcmp (ring_shard_name (planned, ring_point_owner (planned, i)),
                       ring_shard_name (last, ring_point_owner (last, i)))
                   != 0) {
            return false;
        }
    }
    return true;
}

//  Ring comparison -------------------------------------------------------------

//  Is `blob` the encoding of `ring` (at `epoch`, when not 0)?
static bool
s_ring_is (const uint8_t *blob, size_t size, const ring_t *ring, uint64_t epoch)
{
    ring_t *copy = ring_dup (ring);
    if (!copy) {
        return false;
    }
    if (epoch) {
        ring_set_epoch (copy, epoch);
    }
    size_t want = ring_encoded_size (copy);
    uint8_t *expect = want == size ? malloc (want) : NULL;
    bool same = false;
    if (expect) {
        ring_encode (copy, expect, want);
        same = memcmp (blob, expect, size) == 0;
    }
    free (expect);
    ring_destroy (&copy);
    return same;
}

#define S_RING_FOREIGN  (-1) //  s_served: not a ring of this plan
#define S_RING_ROLLBACK (-2) //  s_served: the rollback ring of step *rolled_p
#define S_RING_PROMOTED (-3) //  s_served: a fail-over's ring (s_promotion)

//  The ring shard s serves, decoded into *its_p (the caller destroys it).
//  0, or the client's error (RL_CLIENT_ERR_REPLY: it does not decode).
static int
s_get_ring (s_ctx_t *ctx, s_shard_t *s, ring_t **its_p)
{
    uint8_t *blob = NULL;
    size_t size = 0;
    rl_client_t *client = s_client (ctx, s);
    int rc = RL_CLIENT_ERR_SEND;
    for (int attempt = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        rc = client ? rl_client_get_ring (client, &blob, &size, ctx->args->timeout_ms)
                    : RL_CLIENT_ERR_NOMEM;
        if (!s_retryable (rc)) {
            break;
        }
        zclock_sleep (100);
    }
    if (rc != 0) {
        return rc;
    }
    char err[256];
    *its_p = ring_decode (blob, size, err, sizeof err);
    free (blob);
    return *its_p ? 0 : RL_CLIENT_ERR_REPLY;
}

//  Are a and b the same ring, to the byte (epoch included)?
static bool
s_rings_equal (const ring_t *a, const ring_t *b)
{
    size_t size = ring_encoded_size (a);
    uint8_t *blob = malloc (size);
    bool same = false;
    if (blob) {
        ring_encode (a, blob, size);
        same = s_ring_is (blob, size, b, 0);
    }
    free (blob);
    return same;
}

//  Is `its` `ring` but for its epoch and endpoints (every shard, point,
//  weight and key the same)? *changed_p: how many endpoints differ.
static bool
s_same_but_endpoints (const ring_t *its, const ring_t *ring, uint64_t *changed_p)
{
    *changed_p = 0;
    if (ring_shard_count (its) != ring_shard_count (ring)) {
        return false;
    }
    ring_t *copy = ring_dup (its);
    bool same = copy != NULL;
    for (size_t x = 0; same && x < ring_shard_count (ring); x++) {
        const char *name = ring_shard_name (ring, x);
        int at = ring_shard_find (copy, name);
        if (at < 0) {
            same = false;
        } else if (strcmp (ring_shard_endpoint (copy, (size_t) at), ring_shard_endpoint (ring, x))
                   != 0) {
            (*changed_p)++;
            same = ring_set_endpoint (copy, name, ring_shard_endpoint (ring, x)) == 0;
        }
    }
    if (same) {
        ring_set_epoch (copy, ring_epoch (ring));
        same = s_rings_equal (copy, ring);
    }
    ring_destroy (&copy);
    return same;
}

//  Is `its` a fail-over's ring made from ring j of the plan: ring j with
//  one shard or more at another endpoint, at a higher epoch (rlctl
//  promote loads the newest ring it finds with the promoted shard's
//  endpoint changed, at its epoch + 1: docs/replication.md)? j, or -1.
static long
s_promotion (const rb_plan_t *plan, const ring_t *its)
{
    for (size_t j = 0; j <= plan->step_count; j++) {
        uint64_t changed = 0;
        uint64_t above = ring_epoch (its) > ring_epoch (plan->rings[j])
                             ? ring_epoch (its) - ring_epoch (plan->rings[j])
                             : 0;
        if (above > 0 && s_same_but_endpoints (its, plan->rings[j], &changed) && changed >= 1
            && changed <= above) {
            return (long) j;
        }
    }
    return -1;
}

//  Which ring of the plan `its` is: its index (0..n), S_RING_FOREIGN,
//  S_RING_ROLLBACK (*rolled_p: the index of the step rolled back) or
//  S_RING_PROMOTED. After a fail-over was followed, a ring of the plan as
//  it was before (its epoch lower, the old endpoint) counts as that ring:
//  a shard the promotion's load missed, or that took a step's ring at the
//  promotion's epoch; the next load of the step's ring brings it forward.
static long
s_classify (const rb_plan_t *plan, const ring_t *its, size_t *rolled_p)
{
    uint64_t epoch = ring_epoch (its);
    if (epoch >= plan->base_epoch && epoch - plan->base_epoch <= plan->step_count) {
        size_t j = (size_t) (epoch - plan->base_epoch);
        if (s_rings_equal (its, plan->rings[j])) {
            return (long) j;
        }
        ring_t *copy = j >= 2 ? ring_dup (plan->rings[j - 2]) : NULL;
        if (copy) {
            ring_set_epoch (copy, epoch); //  rb_rollback_save: ring k - 1 at base + k + 1
            bool rollback = s_rings_equal (its, copy);
            ring_destroy (&copy);
            if (rollback) {
                *rolled_p = j - 2;
                return S_RING_ROLLBACK;
            }
        }
    }
    if (s_promotion (plan, its) >= 0) {
        return S_RING_PROMOTED;
    }
    for (size_t j = 0; plan->shift > 0 && j <= plan->step_count; j++) {
        uint64_t changed = 0;
        if (epoch < ring_epoch (plan->rings[j])
            && s_same_but_endpoints (its, plan->rings[j], &changed)) {
            return (long) j;
        }
    }
    return S_RING_FOREIGN;
}

//  Which ring of the plan shard s serves (s_classify); its epoch in
//  *epoch_p. 0, or the client's error.
static int
s_served (s_ctx_t *ctx, s_shard_t *s, long *index_p, uint64_t *epoch_p, size_t *rolled_p)
{
    ring_t *its = NULL;
    int rc = s_get_ring (ctx, s, &its);
    if (rc != 0) {
        return rc;
    }
    *epoch_p = ring_epoch (its);
    *index_p = s_classify (&ctx->plan, its, rolled_p);
    ring_destroy (&its);
    return 0;
}

//  Fail-overs ------------------------------------------------------------------

#define S_FOLLOWS_MAX 16 //  fail-overs one verification of the rings follows

#define S_PROBE_MS_MAX 2000 //  a status asked of a fail-over's endpoints, at most

//  The shard at `endpoint` answers status as `name`, serving? (Its key is
//  registered for the endpoint.)
static bool
s_serves_as (s_ctx_t *ctx, const char *endpoint, const char *name)
{
    int probe = ctx->args->timeout_ms < S_PROBE_MS_MAX ? ctx->args->timeout_ms : S_PROBE_MS_MAX;
    rl_status_rec_t st;
    memset (&st, 0, sizeof st);
    rl_client_t *client = rl_client_new (endpoint);
    int rc = client ? rl_client_status (client, &st, probe) : RL_CLIENT_ERR_NOMEM;
    rl_client_destroy (&client);
    return rc == 0 && st.state == RL_SHARD_SERVING && strncmp (st.name, name, sizeof st.name) == 0;
}

//  Is shard `name` failed over to `endpoint`: an endpoint no other shard of
//  the plan has, where the shard answers (under its key) as serving, and
//  not still serving at its endpoint in the plan (`old`)? What rlctl
//  promote checks before it loads its ring; a ring that only says so (a
//  ring loaded by hand, a hostile one) is not followed. 0, or exit 6.
static int
s_failed_over (s_ctx_t *ctx, const ring_t *its, const char *name, const char *old)
{
    int at = ring_shard_find (its, name);
    assert (at >= 0); //  s_promotion: the plan's shards
    const char *endpoint = ring_shard_endpoint (its, (size_t) at);
    for (size_t i = 0; i < ctx->shard_count; i++) {
        if (strcmp (ctx->shards[i].name, name) != 0
            && strcmp (ctx->shards[i].endpoint, endpoint) == 0) {
            return s_fail (RB_EXIT_FENCED,
                           "a ring served at epoch %" PRIu64 " moves shard %s to %s, the "
                           "endpoint of shard %s: not followed. Nothing more was moved",
                           ring_epoch (its), name, endpoint, ctx->shards[i].name);
        }
    }
    const char *key = ring_shard_key (its, (size_t) at);
    if (*key && !ctx->args->insecure && rl_client_add_server_key (endpoint, key) != 0) {
        return s_fail (RB_EXIT_BAD_FILE, "shard %s: a bad key in the ring", name);
    }
    if (!s_serves_as (ctx, endpoint, name)) {
        return s_fail (RB_EXIT_FENCED,
                       "a ring served at epoch %" PRIu64 " moves shard %s to %s, which does "
                       "not answer as %s serving (under its key): not followed (a fail-over "
                       "not finished yet: run apply again once rlctl promote exits 0). "
                       "Nothing more was moved",
                       ring_epoch (its), name, endpoint, name);
    }
    if (s_serves_as (ctx, old, name)) {
        return s_fail (RB_EXIT_FENCED,
                       "a ring served at epoch %" PRIu64 " moves shard %s to %s, but %s "
                       "still serves at %s: not followed (two primaries? stop the old one). "
                       "Nothing more was moved",
                       ring_epoch (its), name, endpoint, name, old);
    }
    return 0;
}

//  A shard serves `its`: when it is a fail-over's ring made from ring j of
//  the plan, the plan follows it (rb_plan_failover): every ring takes the
//  promoted shards' endpoints and its epoch moves up by as much as the
//  promotion's did, so that ring j is `its` to the byte and every later
//  ring is newer than it; the state file says so before anything more is
//  sent, and the moved shards are addressed at their new endpoints.
//  S_FOLLOWED, 0 (not a fail-over's ring), or an exit code.
static int
s_follow (s_ctx_t *ctx, const ring_t *its)
{
    rb_plan_t *plan = &ctx->plan;
    long j = s_promotion (plan, its);
    if (j < 0) {
        return 0;
    }
    const ring_t *before = plan->rings[j];
    uint64_t shift = ring_epoch (its) - ring_epoch (before);
    char names[8][RL_SHARD_NAME_SIZE_MAX];
    char endpoints[8][RL_ENDPOINT_SIZE_MAX];
    size_t moved = 0;
    for (size_t x = 0; x < ring_shard_count (before); x++) {
        int at = ring_shard_find (its, ring_shard_name (before, x));
        assert (at >= 0); //  s_promotion: the same shards
        if (strcmp (ring_shard_endpoint (its, (size_t) at), ring_shard_endpoint (before, x)) == 0) {
            continue;
        }
        if (moved == 8) {
            return s_fail (RB_EXIT_FENCED,
                           "a ring served at epoch %" PRIu64 " moved more than 8 "
                           "shards' endpoints at once: not followed",
                           ring_epoch (its));
        }
        snprintf (names[moved], sizeof names[moved], "%s", ring_shard_name (before, x));
        snprintf (endpoints[moved], sizeof endpoints[moved], "%s",
                  ring_shard_endpoint (its, (size_t) at));
        moved++;
    }
    assert (moved >= 1);
    for (size_t i = 0; i < moved; i++) {
        s_shard_t *s = s_shard (ctx, names[i]);
        int rc = s_failed_over (ctx, its, names[i], s ? s->endpoint : "");
        if (rc != 0) {
            return rc;
        }
    }
    char err[512];
    for (size_t i = 0; i < moved; i++) {
        if (rb_plan_failover (plan, names[i], endpoints[i], i == 0 ? shift : 0, err, sizeof err)
            != 0) {
            return s_fail (RB_EXIT_FENCED, "%s", err);
        }
    }
    int rc = ctx->unsaved ? 0 : s_save (ctx);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < moved; i++) {
        s_shard_t *s = s_shard (ctx, names[i]);
        if (!s) {
            continue;
        }
        //  Its key is registered for the new endpoint (s_failed_over).
        rl_client_destroy (&s->client);
        snprintf (s->endpoint, sizeof s->endpoint, "%s", endpoints[i]);
        printf ("fail-over followed: shard %s serves at %s; the plan's rings move up %" PRIu64
                " epoch%s (ring.%ld is epoch %" PRIu64 ", the last %" PRIu64 ")\n",
                names[i], endpoints[i], shift, shift == 1 ? "" : "s", j, ring_epoch (its),
                plan->base_epoch + plan->step_count);
    }
    fflush (stdout);
    return S_FOLLOWED;
}

//  Every shard still in the change at ring k is asked its ring, all at
//  once: a fail-over's ring there is followed (s_follow), and they are
//  asked again. Shards that do not answer within --timeout-ms are passed
//  over (a dead primary's old endpoint): the calls after this find them;
//  *silent (when not NULL) counts the shards that did not answer with
//  their ring (no reply, an error status) in the last round asked.
//  0, or an exit code.
static int
s_follow_all (s_ctx_t *ctx, size_t k, size_t *silent)
{
    const char *endpoints[S_SHARDS_MAX];
    static rl_client_reply_t replies[S_SHARDS_MAX];
    for (int round = 0; round < S_FOLLOWS_MAX; round++) {
        size_t n = 0;
        for (size_t i = 0; i < ctx->shard_count; i++) {
            if (s_in_change (ctx, ctx->shards[i].name, k)) {
                endpoints[n++] = ctx->shards[i].endpoint;
            }
        }
        rl_client_fanout (endpoints, n, RL_OP_GET_RING, NULL, 0, 0, ctx->args->timeout_ms, replies);
        int rc = 0;
        if (silent) {
            *silent = 0;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            char err[256];
            ring_t *its = replies[i].rc == 0 && replies[i].body
                              ? ring_decode (replies[i].body, replies[i].body_size, err, sizeof err)
                              : NULL;
            if (silent) {
                *silent += its == NULL; //  no reply, an error status, or no ring in it
            }
            rc = its ? s_follow (ctx, its) : 0;
            ring_destroy (&its);
        }
        rl_client_replies_free (replies, n);
        if (rc != S_FOLLOWED) {
            return rc;
        }
    }
    return s_fail (RB_EXIT_FENCED, "more than %d fail-overs followed at once", S_FOLLOWS_MAX);
}

//  Shard s answered epoch_not_newer to a ring of the plan: it serves that
//  ring, a newer one, or a fail-over's ring at that epoch or above it.
//  S_FOLLOWED when it was a fail-over's (the plan follows it: load the
//  ring again, at its new epoch), 0 otherwise, or an exit code.
static int
s_not_newer (s_ctx_t *ctx, s_shard_t *s)
{
    ring_t *its = NULL;
    int rc = s_get_ring (ctx, s, &its);
    if (rc != 0) {
        //  Not known to be the plan's ring: a commit sent with it could be
        //  refused for a fail-over's ring and taken for a refusal of the
        //  step. Stop (a rerun resumes) rather than guess.
        return s_fail (RB_EXIT_CLUSTER, "shard %s answered epoch_not_newer, then not get_ring: %s",
                       s->name, s_rc_text (rc));
    }
    rc = s_follow (ctx, its);
    ring_destroy (&its);
    return rc;
}

//  Does every shard still in the change at ring k serve a ring of the plan
//  between ring lo and ring hi? Before every step (lo = hi = k), and
//  before the publish that brings shards that are behind to ring k (lo =
//  0). A shard that serves another ring (another change, a ring loaded by
//  hand, a new shard started with the new ring) or a ring of this plan
//  outside lo..hi (another run of the plan, from another state directory,
//  moved it) stops apply with RB_EXIT_FENCED before anything more moves.
static int
s_verify_once (s_ctx_t *ctx, size_t k, size_t lo, size_t hi)
{
    assert (lo <= hi && hi <= ctx->plan.step_count);
    //  A fail-over's ring anywhere is followed first (a dead primary's old
    //  endpoint answers nothing; its promoted standby does).
    int rc = s_follow_all (ctx, k, NULL);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < ctx->shard_count; i++) {
        s_shard_t *s = &ctx->shards[i];
        if (!s_in_change (ctx, s->name, k)) {
            continue;
        }
        long index = 0;
        uint64_t epoch = 0;
        size_t rolled = 0;
        rc = s_served (ctx, s, &index, &epoch, &rolled);
        if (rc != 0) {
            return s_fail (RB_EXIT_CLUSTER, "shard %s does not answer get_ring: %s", s->name,
                           s_rc_text (rc));
        }
        if (index == S_RING_PROMOTED) {
            return S_FOLLOWED; //  a fail-over since s_follow_all: follow it, look again
        }
        if (index == S_RING_FOREIGN) {
            return s_fail (RB_EXIT_FENCED,
                           "shard %s serves a ring (epoch %" PRIu64 ") that is none of this "
                           "plan's rings: another change ran (is CURRENT_RING what the cluster "
                           "served, and was a new shard started with it, not with the new "
                           "ring?). Nothing more was moved",
                           s->name, epoch);
        }
        if (index == S_RING_ROLLBACK) {
            return s_fail (RB_EXIT_FENCED,
                           "shard %s serves the ring that rolled back step %zu (epoch %" PRIu64
                           ") while the state directory says otherwise: run 'rebalance recover' "
                           "into a new directory",
                           s->name, rolled + 1, epoch);
        }
        if ((size_t) index < lo || (size_t) index > hi) {
            return s_fail (RB_EXIT_FENCED,
                           "shard %s serves ring.%ld of this plan (epoch %" PRIu64
                           "), not ring.%zu%s as this state directory expects: another run of "
                           "this plan (another state directory) moved it, or this directory is "
                           "not the change's last one ('rebalance recover' rebuilds it). Nothing "
                           "more was moved",
                           s->name, index, epoch, hi, lo < hi ? " or one before it" : "");
        }
    }
    return 0;
}

static int
s_verify_rings (s_ctx_t *ctx, size_t k, size_t lo, size_t hi)
{
    for (int round = 0; round < S_FOLLOWS_MAX; round++) {
        int rc = s_verify_once (ctx, k, lo, hi);
        if (rc != S_FOLLOWED) {
            return rc;
        }
    }
    return s_fail (RB_EXIT_FENCED, "the rings kept changing under fail-overs: nothing more moved");
}

//  The lease -----------------------------------------------------------------------

static int
s_name_compare (const void *a, const void *b)
{
    return strcmp ((*(s_shard_t *const *) a)->name, (*(s_shard_t *const *) b)->name);
}

//  This directory's holder id of the lease: the plan and the run.
static uint64_t
s_holder_id (const s_ctx_t *ctx)
{
    return ctx->plan.plan_id | ctx->plan.run;
}

//  migrate_lease to one shard, sent again while it times out.
static int
s_lease_call (s_ctx_t *ctx, s_shard_t *s, uint32_t action, rl_migrate_rec_t *stored,
              uint64_t *holder)
{
    int rc = RL_CLIENT_ERR_SEND;
    for (int attempt = 0; attempt < S_CALL_ATTEMPTS; attempt++) {
        rl_client_t *client = s_client (ctx, s);
        rc = client ? rl_client_migrate_lease (client, s_holder_id (ctx), action, stored, holder,
                                               ctx->args->timeout_ms)
                    : RL_CLIENT_ERR_NOMEM;
        if (!s_retryable (rc)) {
            break;
        }
        zclock_sleep (100);
    }
    return rc;
}

//  Clears the plan's lease on every shard of every ring of the plan (a
//  shard that holds none, or another plan's, is left as it is). Best
//  effort: a shard that does not answer keeps it (a warning says how to
//  clear it). The number of shards that may still hold it.
static size_t
s_lease_release_all (s_ctx_t *ctx)
{
    ctx->leased = false;
    size_t left = 0;
    for (size_t i = 0; i < ctx->shard_count; i++) {
        s_shard_t *s = &ctx->shards[i];
        rl_migrate_rec_t stored;
        uint64_t holder = 0;
        int rc = s_lease_call (ctx, s, RL_MIGRATE_LEASE_RELEASE, &stored, &holder);
        if (rc != 0 && rc != RL_STATUS_LEASE_HELD) {
            left++;
            fprintf (stderr,
                     "rebalance: warning: shard %s: the lease of plan %016" PRIx64
                     " was not released (%s): 'rebalance abort' (or apply) with this state "
                     "directory releases it once the shard answers\n",
                     s->name, ctx->plan.plan_id, s_rc_text (rc));
        }
    }
    return left;
}

//  Takes the plan's lease on every shard still in the change at ring k, in
//  the order of their names (two plans contending never wait on each
//  other: the first shard both want decides). A shard whose lease another
//  plan holds stops apply (RB_EXIT_FENCED); when no step of the plan has
//  begun, the leases this call took are given back.
static int
s_lease_acquire_all (s_ctx_t *ctx, size_t k)
{
    s_shard_t *order[S_SHARDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ctx->shard_count; i++) {
        if (s_in_change (ctx, ctx->shards[i].name, k)) {
            order[n++] = &ctx->shards[i];
        }
    }
    qsort (order, n, sizeof order[0], s_name_compare);
    for (size_t i = 0; i < n; i++) {
        rl_migrate_rec_t stored;
        uint64_t holder = 0;
        int rc = s_lease_call (ctx, order[i], RL_MIGRATE_LEASE_ACQUIRE, &stored, &holder);
        if (rc == 0) {
            continue;
        }
        int code = rc == RL_STATUS_LEASE_HELD ? RB_EXIT_FENCED : RB_EXIT_CLUSTER;
        uint64_t other = 0;
        if (rc == RL_STATUS_LEASE_HELD) {
            s_lease_call (ctx, order[i], RL_MIGRATE_LEASE_READ, &stored, &other);
        }
        if (rc == RL_STATUS_LEASE_HELD && other != 0
            && (other & RL_MIGRATE_PLAN_MASK) == ctx->plan.plan_id) {
            s_fail (code,
                    "shard %s: another run of this plan (another state directory, run %05" PRIx64
                    ") holds its migration lease; this directory's run is %05" PRIx32 ". If "
                    "that run is alive, let it finish; if it is dead and its directory lost, "
                    "'rebalance recover' into a new directory takes the lease over. Nothing "
                    "was moved",
                    order[i]->name, other & ~RL_MIGRATE_PLAN_MASK, ctx->plan.run);
        } else if (rc == RL_STATUS_LEASE_HELD) {
            s_fail (code,
                    "shard %s: plan %016" PRIx64 " holds its migration lease%s (this plan is "
                    "%016" PRIx64 "): another change is running, or died. Let it finish, or "
                    "clear it with 'rebalance abort --state ITS_DIR' (a lost directory: "
                    "'rebalance recover' first). Nothing was moved",
                    order[i]->name, other & RL_MIGRATE_PLAN_MASK,
                    other == 0 ? " (a migration of another plan is in progress there)" : "",
                    ctx->plan.plan_id);
        } else {
            s_fail (code, "shard %s: migrate_lease: %s", order[i]->name, s_rc_text (rc));
        }
        bool begun = rb_plan_current (&ctx->plan) > 0 || ctx->plan.steps[0].state != RB_PENDING;
        for (size_t j = 0; j < i && !begun; j++) {
            s_lease_call (ctx, order[j], RL_MIGRATE_LEASE_RELEASE, &stored, &holder);
        }
        return code;
    }
    return 0;
}

//  Did the shards that answer again after a silence (s_await) come back as
//  they were? Once this run holds the plan's lease (its steps began),
//  every shard of the change must still hold it and serve ring k or k + 1
//  of the plan: a primary restarted on its own data does; one restored
//  from an earlier backup, or started empty at the same endpoint, does not,
//  and is not resumed onto (exit 3: an operator looks). Before that, a
//  resume is the start of a rerun, which checks the rings itself.
static bool
s_came_back (s_ctx_t *ctx, size_t k)
{
    if (!ctx->leased) {
        return true;
    }
    for (size_t i = 0; i < ctx->shard_count; i++) {
        s_shard_t *s = &ctx->shards[i];
        if (!s_in_change (ctx, s->name, k)) {
            continue;
        }
        rl_migrate_rec_t stored;
        uint64_t holder = 0;
        long index = -1;
        uint64_t epoch = 0;
        size_t rolled = 0;
        int rc = s_lease_call (ctx, s, RL_MIGRATE_LEASE_READ, &stored, &holder);
        rc = rc == 0 ? s_served (ctx, s, &index, &epoch, &rolled) : rc;
        if (rc != 0 || holder != s_holder_id (ctx) || index < (long) k || index > (long) k + 1) {
            printf ("apply: shard %s answers again, but %s: not resumed (is it the shard that "
                    "stopped answering, on its own data?)\n",
                    s->name,
                    rc != 0                       ? "its lease or ring could not be read"
                    : holder != s_holder_id (ctx) ? "without this plan's lease"
                                                  : "on a ring this step does not expect");
            return false;
        }
    }
    return true;
}

//  apply stopped with exit 3 in step k + 1, `silent` shards of the change
//  not answering with their ring, the plan at fail-over shift `shift`.
//  S_AWAIT_FOLLOWED: a fail-over was followed meanwhile (rlctl promote);
//  S_AWAIT_BACK: every shard answers again as it was (a restarted primary,
//  s_came_back); either way the step resumes as a rerun would. With
//  --failover-wait-s N, the shards are asked again every S_AWAIT_POLL_MS
//  (each ask waits up to --timeout-ms for a silent one) until N s have
//  passed. 0 when there is no wait (none asked, nobody silent, or a step
//  rolled back: its rerun finishes the rollback) or it ends with neither;
//  or an exit code (fenced) met while waiting.
#define S_AWAIT_FOLLOWED 66 //  not exit codes
#define S_AWAIT_BACK     67
static int
s_await (s_ctx_t *ctx, size_t k, uint64_t shift, size_t silent)
{
    if (ctx->plan.shift != shift) {
        return S_AWAIT_FOLLOWED;
    }
    uint32_t wait_s = ctx->args->failover_wait_s;
    if (silent == 0 || wait_s == 0 || ctx->plan.steps[k].state == RB_ROLLED_BACK) {
        return 0;
    }
    printf ("apply: %zu shard%s of the change do%s not answer: waiting up to %" PRIu32
            " s for %s or a fail-over (rlctl promote)\n",
            silent, silent == 1 ? "" : "s", silent == 1 ? "es" : "", wait_s,
            silent == 1 ? "it" : "them");
    fflush (stdout);
    int64_t deadline = zclock_mono () + (int64_t) wait_s * 1000;
    while (zclock_mono () < deadline) {
        zclock_sleep (S_AWAIT_POLL_MS);
        int rc = s_follow_all (ctx, k, &silent);
        if (rc != 0) {
            return rc; //  fenced: a ring that is none of the plan's, two primaries
        }
        if (ctx->plan.shift != shift) {
            return S_AWAIT_FOLLOWED;
        }
        if (silent == 0) {
            return s_came_back (ctx, k) ? S_AWAIT_BACK : 0;
        }
    }
    printf ("apply: no answer nor fail-over within %" PRIu32 " s\n", wait_s);
    return 0;
}

//  Before step k, at the start of a run and after a fail-over followed:
//  the cluster's fence, this plan's lease on every shard in the change,
//  then every shard on a ring of this plan where this directory expects
//  it. A fail-over since the last run is followed first: its promoted
//  standby holds the lease. 0, or an exit code.
static int
s_resume (s_ctx_t *ctx, size_t k)
{
    int rc = s_follow_all (ctx, k, NULL);
    rc = rc == 0 ? s_lease_acquire_all (ctx, k) : rc;
    ctx->leased |= rc == 0;
    bool handover = ctx->plan.steps[k].state == RB_HANDOVER;
    if (rc == 0) {
        rc = s_verify_rings (ctx, k, 0, handover ? k + 1 : k);
    }
    if (rc == 0 && !handover) {
        //  Every shard still in the change serves the ring before step
        //  k, that ring and no other.
        rc = s_publish (ctx, k);
        if (rc == 0) {
            rc = s_verify_rings (ctx, k, k, k);
        }
    }
    if (rc == RB_EXIT_FENCED && k == 0 && ctx->plan.steps[0].state == RB_PENDING) {
        s_lease_release_all (ctx); //  nothing of this plan began: leave no lease behind
    }
    return rc;
}

int
rb_cmd_apply (int argc, char **argv)
{
    s_args_t args;
    int rc = s_parse_args (argc, argv, &args);
    if (rc != 0) {
        return rc;
    }
    char err[1024];
    ring_t *current = ring_load_file (args.rings[0], err, sizeof err);
    if (!current) {
        return s_fail (RB_EXIT_BAD_FILE, "%s: %s", args.rings[0], err);
    }
    ring_t *planned = ring_load_file (args.rings[1], err, sizeof err);
    if (!planned) {
        ring_destroy (&current);
        return s_fail (RB_EXIT_BAD_FILE, "%s: %s", args.rings[1], err);
    }
    if (access (args.state_dir, F_OK) != 0 && mkdir (args.state_dir, 0755) != 0) {
        ring_destroy (&current);
        ring_destroy (&planned);
        return s_fail (RB_EXIT_BAD_FILE, "--state %s: %s", args.state_dir, strerror (errno));
    }
    int lock = rb_lock (args.state_dir, false, err, sizeof err);
    if (lock < 0) {
        ring_destroy (&current);
        ring_destroy (&planned);
        return s_fail (lock == -1 ? RB_EXIT_USAGE : RB_EXIT_BAD_FILE, "%s", err);
    }
    s_ctx_t ctx = {.args = &args};
    rc = rb_plan_load (&ctx.plan, args.state_dir, err, sizeof err);
    if (rc == RB_NO_PLAN) {
        rc = rb_plan_derive (current, planned, args.freeze_max_ms, &ctx.plan, err, sizeof err);
        if (rc == 0) {
            rc = rb_plan_save_new (&ctx.plan, NULL, args.state_dir, err, sizeof err);
        }
        if (rc == 0) {
            printf ("plan %016" PRIx64 ": epoch %" PRIu64 " -> %" PRIu64 ", %zu steps, written "
                    "to %s\n",
                    ctx.plan.plan_id, ctx.plan.base_epoch,
                    ctx.plan.base_epoch + ctx.plan.step_count, ctx.plan.step_count, args.state_dir);
            fflush (stdout);
            rc = s_point (RL_FAILPOINT (REBALANCE_PERSISTED), "rebalance.persisted");
        } else {
            s_fail (rc, "%s", err);
        }
    } else if (rc != 0) {
        s_fail (rc, "%s", err);
    } else if (!s_same_change (&ctx.plan, current, planned)) {
        rc = s_fail (RB_EXIT_USAGE,
                     "%s holds the plan of another change (its ring.0 and last ring differ from "
                     "the rings given): use a new state directory",
                     args.state_dir);
    } else {
        if (args.freeze_given) {
            ctx.plan.freeze_max_ms = args.freeze_max_ms;
        }
        if (ctx.plan.aborted) {
            printf ("the plan was aborted at step %zu: apply resumes it\n",
                    rb_plan_current (&ctx.plan) + 1);
            ctx.plan.aborted = false;
        }
        rc = s_save (&ctx);
    }
    ring_destroy (&current);
    ring_destroy (&planned);
    if (rc == 0) {
        rc = s_ctx_open (&ctx);
    }
    size_t k = rc == 0 ? rb_plan_current (&ctx.plan) : 0;
    if (rc == 0 && k < ctx.plan.step_count && ctx.plan.steps[k].state == RB_ROLLED_BACK) {
        s_run_t r;
        if ((rc = s_run_init (&ctx, k, &r)) == 0) {
            rc = s_rollback_finish (&r); //  again, then stops
            rc = rc == 0 ? s_rolled_back (&r) : rc;
        }
    }
    for (int resumes = 0; rc == 0 && k < ctx.plan.step_count;) {
        rc = s_resume (&ctx, k);
        for (size_t first = k; rc == 0 && k < ctx.plan.step_count; k++) {
            if (k > first) {
                rc = s_verify_rings (&ctx, k, k, k); //  nothing moved the rings but this run
            }
            rc = rc == 0 ? s_step (&ctx, k) : rc;
            if (rc != 0) {
                break;
            }
        }
        //  A shard stopped answering: if it failed over meanwhile (its
        //  standby promoted), follow and resume as a rerun would; with
        //  --failover-wait-s, wait that long for it or its fail-over.
        if (rc == RB_EXIT_CLUSTER && resumes++ < S_RESUMES_MAX) {
            uint64_t shift = ctx.plan.shift;
            size_t silent = 0;
            int back = s_follow_all (&ctx, k, &silent) == 0 ? s_await (&ctx, k, shift, silent) : 0;
            if (back == S_AWAIT_FOLLOWED) {
                printf ("apply resumes step %zu after the fail-over\n", k + 1);
            } else if (back == S_AWAIT_BACK) {
                printf ("apply resumes step %zu: every shard of the change answers again\n", k + 1);
            }
            fflush (stdout);
            rc = back == S_AWAIT_FOLLOWED || back == S_AWAIT_BACK ? 0 : back != 0 ? back : rc;
        }
    }
    if (rc == 0) {
        s_lease_release_all (&ctx);
        printf ("done: every shard serves epoch %" PRIu64 " (%zu steps)\n",
                ctx.plan.base_epoch + ctx.plan.step_count, ctx.plan.step_count);
    }
    s_ctx_close (&ctx);
    close (lock);
    return rc;
}

//  Status ------------------------------------------------------------------------

static void
s_status_table (const rb_plan_t *plan, bool running, uint64_t now)
{
    size_t done = rb_plan_current (plan);
    printf ("plan %016" PRIx64 ": epoch %" PRIu64 " -> %" PRIu64
            ", %zu steps, %zu done (%.1f%%)%s%s\n",
            plan->plan_id, plan->base_epoch, plan->base_epoch + plan->step_count, plan->step_count,
            done, 100.0 * (double) done / (double) plan->step_count,
            running ? ", apply running" : ", apply not running", plan->aborted ? ", aborted" : "");
    bool rolled = done < plan->step_count && plan->steps[done].state == RB_ROLLED_BACK;
    printf ("epoch served: %" PRIu64 "%s\n", plan->base_epoch + done + (rolled ? 2 : 0),
            done < plan->step_count && plan->steps[done].state == RB_HANDOVER
                ? " (the next one is being handed over)"
            : rolled ? " (rollback.ring: the change was rolled back at the step in progress)"
                     : "");
    for (size_t i = 0; i < plan->moved_count; i++) {
        printf ("fail-over followed: %s at %s\n", plan->moved[i].name, plan->moved[i].endpoint);
    }
    if (plan->shift) {
        printf ("epochs moved up by %" PRIu64 " for fail-overs (the ring files keep the epochs "
                "derived)\n",
                plan->shift);
    }
    if (done < plan->step_count && plan->steps[done].state != RB_PENDING) {
        const rb_step_t *s = &plan->steps[done];
        printf ("in progress: step %zu, %s -> %s, %s", done + 1, s->source, s->target,
                rb_step_state_name (s->state));
        if (s->frozen_at && now >= s->frozen_at) {
            printf (", frozen for %" PRIu64 " ms", now - s->frozen_at);
        }
        printf ("\n");
    }
    printf ("\n%4s  %-8s  %-12s  %-12s  %-35s  %9s  %9s  %11s  %6s  %7s  %7s  %9s\n", "step",
            "state", "source", "target", "arc (start, end]", "accounts", "records", "bytes",
            "rounds", "lag", "retries", "frozen_ms");
    for (size_t i = 0; i < plan->step_count; i++) {
        const rb_step_t *s = &plan->steps[i];
        char arc[48];
        snprintf (arc, sizeof arc, "(%016" PRIx64 ", %016" PRIx64 "]", s->start, s->end);
        uint64_t frozen = s->frozen_at && now >= s->frozen_at ? now - s->frozen_at : 0;
        printf ("%4zu  %-8s  %-12s  %-12s  %-35s  %9" PRIu64 "  %9" PRIu64 "  %11" PRIu64
                "  %6" PRIu64 "  %7" PRIu64 "  %7" PRIu64 "  %9" PRIu64 "\n",
                i + 1, rb_step_state_name (s->state), s->source, s->target, arc, s->accounts,
                s->records, s->bytes, s->rounds, s->lag, s->retries, frozen);
    }
}

static int
s_status_json (const rb_plan_t *plan, bool running, uint64_t now)
{
    size_t done = rb_plan_current (plan);
    cJSON *tree = jsonkit_object ();
    if (!tree) {
        return s_fail (RB_EXIT_CLUSTER, "out of memory");
    }
    char hex[32];
    snprintf (hex, sizeof hex, "%016" PRIx64, plan->plan_id);
    jsonkit_add_string (tree, "plan_id", hex);
    jsonkit_add_u64 (tree, "base_epoch", plan->base_epoch);
    jsonkit_add_u64 (tree, "final_epoch", plan->base_epoch + plan->step_count);
    bool rolled = done < plan->step_count && plan->steps[done].state == RB_ROLLED_BACK;
    jsonkit_add_u64 (tree, "epoch", plan->base_epoch + done + (rolled ? 2 : 0));
    jsonkit_add_bool (tree, "rolled_back", rolled);
    jsonkit_add_u64 (tree, "steps_total", plan->step_count);
    jsonkit_add_u64 (tree, "steps_done", done);
    jsonkit_add_fixed (tree, "progress", (double) done / (double) plan->step_count, 4);
    jsonkit_add_bool (tree, "running", running);
    jsonkit_add_bool (tree, "aborted", plan->aborted);
    jsonkit_add_u64 (tree, "freeze_max_ms", plan->freeze_max_ms);
    jsonkit_add_u64 (tree, "failover_shift", plan->shift);
    cJSON *moved = jsonkit_add_object (tree, "failover_endpoints");
    for (size_t i = 0; moved && i < plan->moved_count; i++) {
        jsonkit_add_string (moved, plan->moved[i].name, plan->moved[i].endpoint);
    }
    if (done < plan->step_count && plan->steps[done].state != RB_PENDING) {
        jsonkit_add_u64 (tree, "in_progress", done + 1);
    } else {
        jsonkit_add_null (tree, "in_progress");
    }
    cJSON *steps = jsonkit_add_array (tree, "steps");
    for (size_t i = 0; steps && i < plan->step_count; i++) {
        const rb_step_t *s = &plan->steps[i];
        cJSON *o = jsonkit_add_object (steps, NULL);
        if (!o) {
            break;
        }
        jsonkit_add_u64 (o, "step", i + 1);
        jsonkit_add_u64 (o, "epoch", plan->base_epoch + i + 1);
        jsonkit_add_string (o, "state", rb_step_state_name (s->state));
        snprintf (hex, sizeof hex, "%016" PRIx64, s->migration_id);
        jsonkit_add_string (o, "migration_id", hex);
        jsonkit_add_string (o, "source", s->source);
        jsonkit_add_string (o, "target", s->target);
        snprintf (hex, sizeof hex, "%016" PRIx64, s->start);
        jsonkit_add_string (o, "arc_start", hex);
        snprintf (hex, sizeof hex, "%016" PRIx64, s->end);
        jsonkit_add_string (o, "arc_end", hex);
        jsonkit_add_u64 (o, "accounts", s->accounts);
        jsonkit_add_u64 (o, "records", s->records);
        jsonkit_add_u64 (o, "chunks", s->chunks);
        jsonkit_add_u64 (o, "bytes", s->bytes);
        jsonkit_add_u64 (o, "rounds", s->rounds);
        jsonkit_add_u64 (o, "lag", s->lag);
        jsonkit_add_u64 (o, "retries", s->retries);
        jsonkit_add_u64 (o, "frozen_ms",
                         s->frozen_at && now >= s->frozen_at ? now - s->frozen_at : 0);
        jsonkit_add_u64 (o, "started_ms", s->started);
        jsonkit_add_u64 (o, "finished_ms", s->finished);
    }
    int rc = jsonkit_print (stdout, tree, true);
    cJSON_Delete (tree);
    return rc == 0 ? 0 : s_fail (RB_EXIT_CLUSTER, "out of memory");
}

int
rb_cmd_status (int argc, char **argv)
{
    s_args_t args;
    int rc = s_parse_args (argc, argv, &args);
    if (rc != 0) {
        return rc;
    }
    s_ctx_t ctx = {.args = &args};
    if ((rc = s_load (&ctx)) != 0) {
        return rc;
    }
    bool running = rb_locked_by_other (args.state_dir);
    uint64_t now = rb_wall_ms ();
    if (args.json) {
        rc = s_status_json (&ctx.plan, running, now);
    } else {
        s_status_table (&ctx.plan, running, now);
    }
    rb_plan_free (&ctx.plan);
    return rc;
}

//  Check, fix, abort ----------------------------------------------------------------

typedef struct {
    size_t problems;
    size_t stale; //  shards serving a ring that is none of the plan's (fix cannot help)
    bool json;
    bool quiet; //  count, print nothing
    cJSON *list;
} s_report_t;

static void
s_problem (s_report_t *rep, const char *format, ...)
{
    char text[512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    rep->problems++;
    if (rep->quiet) {
        return;
    }
    if (rep->json) {
        jsonkit_add_string (rep->list, NULL, text);
    } else {
        printf ("problem: %s\n", text);
    }
}

//  The source's migration state, read without a write (migrate_drain):
//  RL_MIGRATE_NONE when the source holds no such migration in progress
//  (none, another, or handed over). -1 when it did not answer.
static int
s_source_state (s_ctx_t *ctx, const rb_step_t *step, uint32_t *state)
{
    s_shard_t *source = s_shard (ctx, step->source);
    rl_migrate_rec_t req = s_request (step, RL_MIGRATE_SOURCE), out;
    int rc = source ? s_migrate (ctx, source, RL_OP_MIGRATE_DRAIN, &req, &out) : -1;
    if (rc == RL_STATUS_MIGRATION_REFUSED) {
        *state = RL_MIGRATE_NONE;
        return 0;
    }
    if (rc != 0) {
        return -1;
    }
    *state = out.state;
    return 0;
}

//  Every disagreement between the shards and the state file.
static void
s_check (s_ctx_t *ctx, s_report_t *rep, bool running)
{
    const rb_plan_t *plan = &ctx->plan;
    size_t k = rb_plan_current (plan);
    const rb_step_t *step = k < plan->step_count ? &plan->steps[k] : NULL;
    bool handover = step && step->state == RB_HANDOVER;
    bool rolled_back = step && step->state == RB_ROLLED_BACK;
    uint64_t want = plan->base_epoch + k + (rolled_back ? 2 : 0);
    const char *endpoints[S_SHARDS_MAX];
    s_shard_t *shards[S_SHARDS_MAX];
    rl_status_rec_t status[S_SHARDS_MAX];
    int rcs[S_SHARDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < ctx->shard_count; i++) {
        if (s_in_change (ctx, ctx->shards[i].name, k)) {
            shards[n] = &ctx->shards[i];
            endpoints[n++] = ctx->shards[i].endpoint;
        }
    }
    rl_client_status_all (endpoints, n, ctx->args->timeout_ms, status, rcs);
    for (size_t i = 0; i < n; i++) {
        const char *name = shards[i]->name;
        if (rcs[i] != 0) {
            s_problem (rep, "shard %s does not answer status: %s", name, s_rc_text (rcs[i]));
            continue;
        }
        uint64_t epoch = status[i].epoch;
        bool ok = epoch == want || (handover && epoch == want + 1);
        if (!ok) {
            s_problem (rep, "shard %s serves epoch %" PRIu64 ", the state file says %" PRIu64 "%s",
                       name, epoch, want, handover ? " (or the next, in the handover)" : "");
        }
        ring_t *its = NULL;
        int rc = s_get_ring (ctx, shards[i], &its);
        size_t rolled = 0;
        if (rc != 0) {
            s_problem (rep, "shard %s does not answer get_ring: %s", name, s_rc_text (rc));
        } else if (ring_epoch (its) >= plan->base_epoch
                   && !(plan->rollback && s_rings_equal (its, plan->rollback))
                   && s_classify (plan, its, &rolled) == S_RING_FOREIGN) {
            //  Another change moved the cluster on (or a ring was loaded
            //  by hand): no ring of this plan can replace it, so fix could
            //  only fail the same way for ever.
            rep->stale++;
            s_problem (rep,
                       "shard %s serves a ring (epoch %" PRIu64 ") that is none of this plan's "
                       "rings: another change ran, and this state directory is stale",
                       name, ring_epoch (its));
        } else if (rolled_back ? epoch == want
                               : epoch >= plan->base_epoch
                                     && epoch <= plan->base_epoch + plan->step_count) {
            //  Its ring must be the plan's ring of that epoch.
            const ring_t *mine = rolled_back ? plan->rollback
                                             : plan->rings[epoch - plan->base_epoch];
            if (!s_rings_equal (its, mine)) {
                s_problem (rep,
                           "shard %s serves a ring of epoch %" PRIu64
                           " that is not the plan's ring.%" PRIu64,
                           name, epoch, epoch - plan->base_epoch);
            }
        }
        ring_destroy (&its);
        bool may_wait = handover && strcmp (name, step->target) == 0;
        if (status[i].arcs_unreceived != 0 && !may_wait) {
            s_problem (rep,
                       "shard %s has %" PRIu64 " arcs not received (answered frozen) outside "
                       "a handover",
                       name, status[i].arcs_unreceived);
        }
    }
    //  The leases: another plan's is in the way of this one; this plan's
    //  is left behind once it is over (done, aborted or rolled back).
    bool over = !step || plan->aborted || rolled_back;
    for (size_t i = 0; i < ctx->shard_count; i++) {
        rl_migrate_rec_t stored;
        uint64_t holder = 0;
        if (s_lease_call (ctx, &ctx->shards[i], RL_MIGRATE_LEASE_READ, &stored, &holder) != 0) {
            continue; //  a shard that left and stopped; one in the change was reported above
        }
        if (holder != 0 && (holder & RL_MIGRATE_PLAN_MASK) == plan->plan_id
            && holder != s_holder_id (ctx) && (holder & ~RL_MIGRATE_PLAN_MASK) != 0) {
            s_problem (rep,
                       "shard %s: another run of this plan (another state directory, run %05" PRIx64
                       ") holds its migration lease",
                       ctx->shards[i].name, holder & ~RL_MIGRATE_PLAN_MASK);
        } else if (holder != 0 && (holder & RL_MIGRATE_PLAN_MASK) != plan->plan_id) {
            s_problem (rep,
                       "shard %s: plan %016" PRIx64 " holds its migration lease, not this plan: "
                       "another change is running or died ('rebalance abort' of it releases it)",
                       ctx->shards[i].name, holder & RL_MIGRATE_PLAN_MASK);
        } else if (holder != 0 && over && !running) {
            s_problem (rep,
                       "shard %s still holds the lease of this plan, which is over: 'rebalance "
                       "fix' releases it",
                       ctx->shards[i].name);
        }
    }
    if (!step || step->state == RB_PENDING || rolled_back) {
        return;
    }
    uint32_t state = 0;
    if (s_source_state (ctx, step, &state) != 0) {
        s_problem (rep, "step %zu: the source %s does not answer migrate_drain", k + 1,
                   step->source);
        return;
    }
    if (step->state == RB_HANDOVER) {
        if (!running) {
            s_problem (rep,
                       "step %zu is in its handover and no apply runs: the arc is frozen "
                       "until 'rebalance fix' (or apply) finishes it",
                       k + 1);
        }
        if (state != RL_MIGRATE_SHIPPED && state != RL_MIGRATE_NONE) {
            s_problem (rep, "step %zu: the state file says handover, the source %s says %s", k + 1,
                       step->source, s_migrate_state_name (state));
        }
    } else if (state == RL_MIGRATE_FROZEN && !running) {
        s_problem (rep, "step %zu: the source %s is frozen and no apply runs", k + 1, step->source);
    } else if (state == RL_MIGRATE_SHIPPED) {
        s_problem (rep, "step %zu: the source %s shipped the final round, the state file says %s",
                   k + 1, step->source, rb_step_state_name (step->state));
    }
}

//  Opens a plan for check, fix or abort (with the shards).
static int
s_open_for (s_ctx_t *ctx, s_args_t *args, int argc, char **argv)
{
    int rc = s_parse_args (argc, argv, args);
    if (rc != 0) {
        return rc;
    }
    ctx->args = args;
    if ((rc = s_load (ctx)) != 0) {
        return rc;
    }
    return s_ctx_open (ctx);
}

static int
s_check_report (s_ctx_t *ctx, bool running)
{
    s_report_t rep = {.json = ctx->args->json};
    cJSON *tree = NULL;
    if (rep.json) {
        tree = jsonkit_object ();
        rep.list = tree ? jsonkit_add_array (tree, "problems") : NULL;
        if (!rep.list) {
            cJSON_Delete (tree);
            return s_fail (RB_EXIT_CLUSTER, "out of memory");
        }
    }
    s_check (ctx, &rep, running);
    if (rep.json) {
        jsonkit_add_bool (tree, "clean", rep.problems == 0);
        jsonkit_add_bool (tree, "stale", rep.stale > 0);
        jsonkit_add_bool (tree, "running", running);
        jsonkit_add_u64 (tree, "epoch", ctx->plan.base_epoch + rb_plan_current (&ctx->plan));
        jsonkit_print (stdout, tree, true);
        cJSON_Delete (tree);
    } else if (rep.problems == 0) {
        printf ("clean: every shard agrees with the state file (epoch %" PRIu64 ", %zu of %zu "
                "steps done)%s\n",
                ctx->plan.base_epoch + rb_plan_current (&ctx->plan), rb_plan_current (&ctx->plan),
                ctx->plan.step_count, running ? "; apply is running" : "");
    } else if (rep.stale > 0) {
        printf ("%zu problems: the cluster serves rings that are none of this plan's, so this "
                "state directory is stale and 'rebalance fix' cannot resolve them; plan again "
                "from the ring the cluster serves ('rlctl ring')\n",
                rep.problems);
    } else {
        printf ("%zu problems%s: 'rebalance fix' resolves them\n", rep.problems,
                running ? " (apply is running: some may be steps in flight)" : "");
    }
    return rep.problems == 0 ? 0 : RB_EXIT_DIRTY;
}

int
rb_cmd_check (int argc, char **argv)
{
    s_args_t args;
    s_ctx_t ctx = {0};
    int rc = s_open_for (&ctx, &args, argc, argv);
    if (rc == 0) {
        rc = s_check_report (&ctx, rb_locked_by_other (args.state_dir));
    }
    s_ctx_close (&ctx);
    return rc;
}

int
rb_cmd_fix (int argc, char **argv)
{
    s_args_t args;
    s_ctx_t ctx = {0};
    int rc = s_open_for (&ctx, &args, argc, argv);
    char err[512];
    int lock = -1;
    if (rc == 0 && (lock = rb_lock (args.state_dir, false, err, sizeof err)) < 0) {
        rc = s_fail (RB_EXIT_USAGE, "%s", err);
    }
    //  Shards serving a ring that is none of the plan's: no ring this
    //  directory holds can replace theirs, so fix publishes none (a fix
    //  that tried would report the same problems again for ever). What
    //  needs no ring still runs: a handover rolls forward and a frozen
    //  arc is unfrozen, so that no arc stays frozen behind a stale plan.
    s_report_t pre = {.quiet = true};
    if (rc == 0) {
        s_check (&ctx, &pre, false);
    }
    size_t k = rb_plan_current (&ctx.plan);
    rb_step_t *step = rc == 0 && k < ctx.plan.step_count ? &ctx.plan.steps[k] : NULL;
    if (rc == 0 && step && step->state == RB_ROLLED_BACK) {
        s_run_t r;
        if ((rc = s_run_init (&ctx, k, &r)) == 0 && (rc = s_rollback_finish (&r)) == 0) {
            printf ("fixed: step %zu's rollback is complete (epoch %" PRIu64 ")\n", k + 1,
                    ring_epoch (ctx.plan.rollback));
            rc = s_check_report (&ctx, false);
        }
        close (lock);
        s_ctx_close (&ctx);
        return rc;
    }
    if (rc == 0 && step && step->state == RB_HANDOVER) {
        //  A handover only rolls forward.
        s_run_t r;
        rc = s_run_init (&ctx, k, &r);
        rc = rc == 0 ? s_handover (&r) : rc;
        free (r.final_chunk);
        if (rc == 0) {
            printf ("fixed: the handover of step %zu finished (epoch %" PRIu64 ")\n", k + 1,
                    ctx.plan.base_epoch + k + 1);
            k++;
            step = NULL;
        }
    }
    if (rc == 0 && pre.stale == 0) {
        //  Shards behind the state file's epoch get the rings they missed.
        for (size_t j = 1; j <= k && rc == 0; j++) {
            rc = s_publish (&ctx, j);
        }
    }
    if (rc == 0 && step && step->state != RB_PENDING) {
        uint32_t state = 0;
        if (s_source_state (&ctx, step, &state) != 0) {
            rc = s_fail (RB_EXIT_CLUSTER, "the source %s does not answer", step->source);
        } else if (state == RL_MIGRATE_SHIPPED && pre.stale == 0) {
            //  The final round is out: the source never unfreezes from
            //  here, so the step only rolls forward (the target's cursor
            //  says what is left of the final round, then the handover).
            if ((rc = s_step (&ctx, k)) == 0) {
                printf ("fixed: step %zu's source had shipped its final round: the step was "
                        "finished (epoch %" PRIu64 ")\n",
                        k + 1, ctx.plan.base_epoch + k + 1);
                step = NULL;
            }
        } else if (state == RL_MIGRATE_FROZEN) {
            s_run_t r;
            if ((rc = s_run_init (&ctx, k, &r)) == 0) {
                rl_migrate_rec_t req = s_request (step, RL_MIGRATE_SOURCE), out;
                rc = s_migrate (&ctx, r.source, RL_OP_MIGRATE_UNFREEZE, &req, &out);
                rc = rc == 0 ? 0 : s_fail (RB_EXIT_CLUSTER, "migrate_unfreeze: %s", s_rc_text (rc));
                printf ("fixed: step %zu's arc unfrozen on %s\n", k + 1, step->source);
            }
        }
        if (rc == 0 && step && step->state == RB_FROZEN) {
            step->state = RB_COPYING;
            step->frozen_at = 0;
            rc = s_save (&ctx);
        }
    }
    if (rc == 0 && (rb_plan_current (&ctx.plan) == ctx.plan.step_count || ctx.plan.aborted)) {
        s_lease_release_all (&ctx); //  the plan is over: its lease goes
    }
    if (rc == 0 && pre.stale > 0) {
        rc = s_fail (RB_EXIT_FENCED,
                     "%zu shard%s serve%s a ring that is none of this plan's ('rebalance check' "
                     "names them): this state directory is stale, and fix loaded no ring (a "
                     "handover or a freeze it found was finished or undone). Plan again from "
                     "the ring the cluster serves ('rlctl ring'), or 'rebalance recover' into "
                     "a new directory",
                     pre.stale, pre.stale == 1 ? "" : "s", pre.stale == 1 ? "s" : "");
    }
    if (rc == 0) {
        rc = s_check_report (&ctx, false);
    }
    if (lock >= 0) {
        close (lock);
    }
    s_ctx_close (&ctx);
    return rc;
}

//  migrate_abort of one side until it holds no migration. A side that
//  holds none (or that forgot this one) answers NONE at once.
static int
s_abort_side (s_run_t *r, s_shard_t *s, uint32_t role)
{
    rl_migrate_rec_t req = s_request (r->step, role), out;
    req.param = role == RL_MIGRATE_SOURCE ? RL_MIGRATE_ABORT_TARGET_DONE : 0;
    for (;;) {
        int rc = s_migrate (r->ctx, s, RL_OP_MIGRATE_ABORT, &req, &out);
        if (rc != 0) {
            return s_fail (rc == RL_STATUS_MIGRATION_REFUSED ? RB_EXIT_USAGE : RB_EXIT_CLUSTER,
                           "step %zu: migrate_abort on the %s %s: %s%s", r->index + 1,
                           role == RL_MIGRATE_SOURCE ? "source" : "target", s->name, s_rc_text (rc),
                           rc == RL_STATUS_MIGRATION_REFUSED
                               ? " (handed over, or another migration: see 'rebalance check')"
                               : "");
        }
        if (out.state == RL_MIGRATE_NONE) {
            return 0;
        }
        if (out.state != RL_MIGRATE_ABORTING) {
            return s_fail (RB_EXIT_CLUSTER, "step %zu: migrate_abort on %s answered %s",
                           r->index + 1, s->name, s_migrate_state_name (out.state));
        }
    }
}

//  Undoes a step not handed over: the target first (it deletes what it
//  imported; refused once it committed), then the source (it forgets the
//  migration and serves the arc again, told that the target is done).
static int
s_abort_step (s_run_t *r)
{
    int rc = s_abort_side (r, r->target, RL_MIGRATE_TARGET);
    return rc == 0 ? s_abort_side (r, r->source, RL_MIGRATE_SOURCE) : rc;
}

int
rb_cmd_abort (int argc, char **argv)
{
    s_args_t args;
    s_ctx_t ctx = {0};
    int rc = s_open_for (&ctx, &args, argc, argv);
    char err[512];
    int lock = -1;
    if (rc == 0 && (lock = rb_lock (args.state_dir, false, err, sizeof err)) < 0) {
        rc = s_fail (RB_EXIT_USAGE, "%s (stop it first)", err);
    }
    size_t k = rb_plan_current (&ctx.plan);
    if (rc == 0 && k == ctx.plan.step_count) {
        rc = s_fail (RB_EXIT_USAGE, "nothing to abort: every step is done");
    }
    rb_step_t *step = rc == 0 ? &ctx.plan.steps[k] : NULL;
    if (rc == 0 && step->state == RB_ROLLED_BACK) {
        rc = s_fail (RB_EXIT_USAGE, "step %zu was rolled back already: the change is over", k + 1);
    }
    if (rc == 0 && step->state == RB_HANDOVER) {
        rc = s_fail (RB_EXIT_USAGE,
                     "step %zu is past its final round (handover): it only rolls forward "
                     "('rebalance fix' or 'rebalance apply')",
                     k + 1);
    }
    if (rc == 0 && step->state != RB_PENDING) {
        s_run_t r;
        if ((rc = s_run_init (&ctx, k, &r)) == 0) {
            rc = s_abort_step (&r);
        }
        if (rc == 0) {
            //  Nothing of the step is left on the shards: it starts afresh.
            rb_step_t fresh = {.state = RB_PENDING,
                               .migration_id = step->migration_id,
                               .start = step->start,
                               .end = step->end};
            memcpy (fresh.source, step->source, sizeof fresh.source);
            memcpy (fresh.target, step->target, sizeof fresh.target);
            *step = fresh;
        }
    }
    if (rc == 0) {
        ctx.plan.aborted = true;
        rc = s_save (&ctx);
    }
    if (rc == 0) {
        s_lease_release_all (&ctx); //  another change may run now; apply takes it again
    }
    if (rc == 0) {
        printf ("aborted at step %zu of %zu: every shard serves epoch %" PRIu64
                ", the arc of step %zu is served by %s as before, and neither shard holds the "
                "migration any more (what the target had copied is deleted). 'rebalance apply' "
                "with this state directory resumes the change from step %zu.\n",
                k + 1, ctx.plan.step_count, ctx.plan.base_epoch + k, k + 1, step->source, k + 1);
    }
    if (lock >= 0) {
        close (lock);
    }
    s_ctx_close (&ctx);
    return rc;
}

//  Recover ---------------------------------------------------------------------------
//
//  The state directory of a change was lost. Its plan is derived again
//  from the two rings (the same plan id, step ids and step rings:
//  rebalance_state.c), and the state of its steps is read back from the
//  shards: which ring of the plan each serves, and the migration each
//  stores. Steps run in order and each writes ahead of what it sends, so
//  the newest ring K of the plan that any shard serves says that steps 1
//  to K - 1 are done and step K is in its handover or done (done when step
//  K + 1 has begun: a shard stores its migration); the step after the last
//  ring is pending, copying or frozen as its source and target store it. A
//  shard that serves the ring that rolled a step back says that step was
//  rolled back. Read only: nothing in the cluster changes; DIR is written.

//  The step at `index` as its source and target store it: RB_PENDING when
//  neither holds it in progress, else RB_FROZEN when the source froze or
//  shipped (or the target holds the final chunk), else RB_COPYING.
static uint32_t
s_recovered_state (const rb_step_t *step, const rl_migrate_rec_t *source,
                   const rl_migrate_rec_t *target)
{
    bool src = source->migration_id == step->migration_id && source->role == RL_MIGRATE_SOURCE
               && source->state != RL_MIGRATE_NONE;
    bool tgt = target->migration_id == step->migration_id && target->role == RL_MIGRATE_TARGET
               && target->state != RL_MIGRATE_NONE;
    if (!src && !tgt) {
        return RB_PENDING;
    }
    if ((src && (source->state == RL_MIGRATE_FROZEN || source->state == RL_MIGRATE_SHIPPED))
        || (tgt && target->state == RL_MIGRATE_SHIPPED)) {
        return RB_FROZEN;
    }
    return RB_COPYING;
}

int
rb_cmd_recover (int argc, char **argv)
{
    s_args_t args;
    int rc = s_parse_args (argc, argv, &args);
    if (rc != 0) {
        return rc;
    }
    char err[1024];
    s_ctx_t ctx = {.args = &args};
    rc = rb_plan_load (&ctx.plan, args.state_dir, err, sizeof err);
    if (rc != RB_NO_PLAN) {
        rb_plan_free (&ctx.plan);
        return rc == 0 ? s_fail (RB_EXIT_USAGE,
                                 "%s holds a plan already: run apply (or check) with it; recover "
                                 "writes a new directory",
                                 args.state_dir)
                       : s_fail (rc, "%s", err);
    }
    ring_t *current = ring_load_file (args.rings[0], err, sizeof err);
    if (!current) {
        return s_fail (RB_EXIT_BAD_FILE, "%s: %s", args.rings[0], err);
    }
    ring_t *planned = ring_load_file (args.rings[1], err, sizeof err);
    if (!planned) {
        ring_destroy (&current);
        return s_fail (RB_EXIT_BAD_FILE, "%s: %s", args.rings[1], err);
    }
    //  Twice: ctx.plan follows the fail-overs, `derived` keeps the rings
    //  as derived for the ring files (rb_plan_save_new).
    rb_plan_t derived = {0};
    rc = rb_plan_derive (current, planned, args.freeze_max_ms, &ctx.plan, err, sizeof err);
    if (rc == 0) {
        rc = rb_plan_derive (current, planned, args.freeze_max_ms, &derived, err, sizeof err);
    }
    ring_destroy (&current);
    ring_destroy (&planned);
    if (rc != 0) {
        rb_plan_free (&derived);
        return s_fail (rc, "%s", err);
    }
    if ((rc = s_ctx_open (&ctx)) != 0) {
        rb_plan_free (&derived);
        s_ctx_close (&ctx);
        return rc;
    }
    rb_plan_t *plan = &ctx.plan;
    size_t n = plan->step_count;
    //  A shard failed over during the change (rlctl promote) is followed
    //  as apply follows it (s_follow_all: the promoted standby checked at
    //  its new endpoint), in memory; the new directory's state file then
    //  says so (failover_shift, endpoint), and the rings below are the
    //  followed ones. Nothing is written when it cannot be followed.
    ctx.unsaved = true;
    rc = s_follow_all (&ctx, 0, NULL);
    //  Per shard of the plan: its stored migration, the ring it serves,
    //  whether it answered (on the heap: S_SHARDS_MAX of each).
    rl_migrate_rec_t *stored = calloc (S_SHARDS_MAX, sizeof (rl_migrate_rec_t));
    long *served = calloc (S_SHARDS_MAX, sizeof (long));
    bool *answered = calloc (S_SHARDS_MAX, sizeof (bool));
    if (rc == 0 && (!stored || !served || !answered)) {
        rc = s_fail (RB_EXIT_CLUSTER, "out of memory");
    }
    long newest = 0;
    size_t rolled = SIZE_MAX;
    for (size_t i = 0; i < ctx.shard_count && rc == 0; i++) {
        s_shard_t *s = &ctx.shards[i];
        uint64_t epoch = 0, holder = 0;
        size_t rolled_here = 0;
        answered[i] = s_served (&ctx, s, &served[i], &epoch, &rolled_here) == 0
                      && s_lease_call (&ctx, s, RL_MIGRATE_LEASE_READ, &stored[i], &holder) == 0;
        if (!answered[i]) {
            memset (&stored[i], 0, sizeof stored[i]);
            continue;
        }
        if (served[i] == S_RING_PROMOTED) {
            //  Not seen by the follow above (the shard did not answer then).
            rc = s_fail (RB_EXIT_CLUSTER,
                         "shard %s serves a fail-over's ring (epoch %" PRIu64 ") made from a "
                         "ring of this plan that was not followed: run recover again. Nothing "
                         "was written",
                         s->name, epoch);
        } else if (served[i] == S_RING_FOREIGN) {
            rc = s_fail (RB_EXIT_FENCED,
                         "shard %s serves a ring (epoch %" PRIu64 ") that is none of the plan "
                         "%s -> %s: another change ran since, or these are not the change's "
                         "rings. Nothing was written",
                         s->name, epoch, args.rings[0], args.rings[1]);
        } else if (holder != 0 && (holder & RL_MIGRATE_PLAN_MASK) != plan->plan_id) {
            rc = s_fail (RB_EXIT_FENCED,
                         "shard %s: plan %016" PRIx64 " holds its migration lease, not this "
                         "plan (%016" PRIx64 "). Nothing was written",
                         s->name, holder & RL_MIGRATE_PLAN_MASK, plan->plan_id);
        } else if (served[i] == S_RING_ROLLBACK) {
            rolled = rolled_here;
        } else if (served[i] > newest) {
            newest = served[i];
        }
    }
    if (rc == 0 && rolled != SIZE_MAX && plan->shift) {
        //  As apply: a fail-over is not followed after a rolled-back step.
        rc = s_fail (RB_EXIT_FENCED,
                     "step %zu was rolled back and a shard failed over since: not followed. "
                     "Nothing was written",
                     rolled + 1);
    }
    //  Where the change is.
    size_t current_step = 0; //  the first step not done
    if (rc == 0 && rolled != SIZE_MAX) {
        current_step = rolled;
        plan->steps[rolled].state = RB_ROLLED_BACK;
    } else if (rc == 0) {
        size_t k = (size_t) newest; //  steps 1..k-1 done; step k handover or done
        current_step = k > 0 ? k - 1 : 0;
        if (k > 0) {
            plan->steps[k - 1].state = RB_HANDOVER;
        }
        if (k < n) {
            //  The step after the newest ring: begun? (then step k is done)
            const rb_step_t *next = &plan->steps[k];
            rl_migrate_rec_t none = {0};
            const rl_migrate_rec_t *src = &none, *tgt = &none;
            for (size_t i = 0; i < ctx.shard_count; i++) {
                if (!answered[i]) {
                    continue;
                }
                if (strcmp (ctx.shards[i].name, next->source) == 0) {
                    src = &stored[i];
                } else if (strcmp (ctx.shards[i].name, next->target) == 0) {
                    tgt = &stored[i];
                }
            }
            uint32_t state = s_recovered_state (next, src, tgt);
            if (k == 0 || state != RB_PENDING) {
                if (k > 0) {
                    plan->steps[k - 1].state = RB_DONE;
                }
                plan->steps[k].state = state;
                current_step = k;
            }
        }
        for (size_t i = 0; i < current_step; i++) {
            plan->steps[i].state = RB_DONE;
        }
    }
    //  Every shard still in the change at that step must have answered.
    for (size_t i = 0; i < ctx.shard_count && rc == 0; i++) {
        if (!answered[i] && s_in_change (&ctx, ctx.shards[i].name, current_step)) {
            rc = s_fail (RB_EXIT_CLUSTER,
                         "shard %s does not answer: the change's state cannot be read without "
                         "it. Nothing was written; run recover again when it is up",
                         ctx.shards[i].name);
        }
    }
    //  The dead run's lease passes to this directory's run (on every shard
    //  still in the change: the others hold none of this plan, or keep the
    //  dead run's until its release), so that apply with it may go on and
    //  a run still alive from the lost directory is fenced out.
    for (size_t i = 0; i < ctx.shard_count && rc == 0; i++) {
        if (!answered[i] || !s_in_change (&ctx, ctx.shards[i].name, current_step)) {
            continue;
        }
        rl_migrate_rec_t ignored;
        uint64_t holder = 0;
        int lrc = s_lease_call (&ctx, &ctx.shards[i], RL_MIGRATE_LEASE_TAKEOVER, &ignored, &holder);
        if (lrc != 0) {
            rc = s_fail (lrc == RL_STATUS_LEASE_HELD ? RB_EXIT_FENCED : RB_EXIT_CLUSTER,
                         "shard %s: the takeover of the plan's lease: %s. Nothing was written",
                         ctx.shards[i].name, s_rc_text (lrc));
        }
    }
    uint64_t now = rb_wall_ms ();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rb_step_t *step = &plan->steps[i];
        step->started = step->state != RB_PENDING ? now : 0;
        step->finished = step->state == RB_DONE ? now : 0;
    }
    ring_t *const *rings = plan->shift || plan->moved_count ? derived.rings : NULL;
    if (rc == 0 && (rc = rb_plan_save_new (plan, rings, args.state_dir, err, sizeof err)) != 0) {
        s_fail (rc, "%s", err);
    }
    if (rc == 0 && rolled != SIZE_MAX) {
        if (rb_rollback_save (plan, rolled, err, sizeof err) != 0) {
            rc = s_fail (RB_EXIT_BAD_FILE, "cannot write the rollback ring: %s", err);
        }
    }
    if (rc == 0) {
        size_t k = rb_plan_current (plan);
        printf ("recovered plan %016" PRIx64 " into %s: epoch %" PRIu64 " -> %" PRIu64
                ", %zu steps, %zu done",
                plan->plan_id, args.state_dir, plan->base_epoch, plan->base_epoch + n, n, k);
        if (k < n) {
            printf (", step %zu %s (%s -> %s)", k + 1, rb_step_state_name (plan->steps[k].state),
                    plan->steps[k].source, plan->steps[k].target);
        }
        printf (". 'rebalance apply %s %s --state %s' %s; 'rebalance abort' undoes a step not "
                "handed over yet\n",
                args.rings[0], args.rings[1], args.state_dir,
                k < n && plan->steps[k].state == RB_ROLLED_BACK ? "finishes the rollback"
                                                                : "finishes the change");
    }
    free (stored);
    free (served);
    free (answered);
    rb_plan_free (&derived);
    s_ctx_close (&ctx);
    return rc;
}
