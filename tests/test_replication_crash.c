/*  test_replication_crash.c: the crash matrix of replication under
    cross-shard transfers (docs/replication.md, "Tests").

    A cluster of shard s1, a semi-synchronous primary, and s2 without a
    standby, every process with --durability manual-wal (a SIGKILL drops
    what was not group-committed). The test is the client: it sends each
    transfer to the shard of its debit account, which coordinates it, so
    s1 coordinates the transfers from its accounts to s2's and takes part
    in those from s2's accounts to its own. Each case:

    1. Pending transfers across shards both ways (long ones, and ones of
       1 s that expire during the case: s1's in every case, s2's towards
       s1 in a third of them), plain transfers both ways; all acknowledged.
    2. A new standby (an empty directory, its own port) and the primary
       restarted with it; one of the two is armed to crash at the case's
       point. After one write of s1's own is acknowledged (the standby
       holds a complete copy), a load runs until the armed process dies by
       SIGKILL (checked, and the point's record in RL_FAILPOINT_FILE):
       batches to both shards at once, each with cross-shard transfers, a
       transfer of the shard's own, a post or a void of a pending transfer
       and, every other round, a new pending transfer.
    3. The primary died: its standby is promoted (the admin op) and a ring
       of the next epoch that gives s1 the standby's endpoint is loaded
       into it and s2; the promoted shard is the next case's primary. (If
       the primary died at its start, before its new standby held a
       complete copy, promote is refused and the primary restarts, as an
       operator would.) The standby died: the primary says stalled and
       answers a new write busy, and serves again once the standby is
       back and caught up.
    4. Settled: the two-phase records end; every acknowledged transfer is
       on its debit shard; every unknown outcome is looked up, and sent
       again with its id (found: `exists`; else it executes now or fails
       for good); every known outcome is sent again and gets its original
       answer (exactly-once over every id); the accounts' pending amounts
       are exactly the pending transfers still pending once those of 1 s
       have expired, the posted amounts the model's; then every pending
       transfer is posted or voided, and the strong conservation check
       runs (nothing pending or reserved, balances as the model, histories
       that sum), with the audit and no two-phase alarm on either shard.

    Points: the five replication points on the path of a write
    (repl.primary.written, .shipped, .released at a hit drawn in 3..16:
    the primary dies; repl.standby.applied, .acked: the standby dies), and
    the two-phase points of s1 as coordinator and as participant (tp.*,
    at the first hit: the primary dies). RL_SEED=<n> replays a run,
    RL_CASE=<k> runs case k alone.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "ring.h"
#include "replkit.h"
#include "rl_rand.h"
#include "testkit.h"

#define LEDGER          743
#define ACCOUNTS        8 //  1..4 on s1, 5..8 on s2
#define RECORDS_MAX     2048
#define BATCH_MAX       8
#define CALL_TIMEOUT_MS 8000
#define LOAD_WAIT_MS    1000  //  a batch's answer in the load (then its outcome is unknown)
#define DEATH_WAIT_MS   15000 //  the armed process dies within this under load
#define EXPIRY_WAIT_MS  15000 //  pending transfers of 1 s expire within this
#define REPL_TIMEOUT    "400"
#define LONG_TIMEOUT    3600 //  s: a pending transfer that stays pending for the case

typedef enum { K_PLAIN, K_PENDING, K_POST, K_VOID } s_kind_t;

typedef struct {
    rl_transfer_t t;
    s_kind_t kind;
    size_t pending;  //  K_POST, K_VOID: the record of the pending transfer
    uint32_t result; //  TK_OUTCOME_UNKNOWN until known
} s_rec_t;

typedef enum { ARM_PRIMARY, ARM_STANDBY } s_arm_t;

typedef struct {
    const char *point;
    s_arm_t arm;
    unsigned nth_max; //  0: crash at the first hit; else at a hit drawn in 3..nth_max (the load
                      //  makes 4-9 a round)
} s_case_t;

static const s_case_t s_cases[] = {
    {"repl.primary.written", ARM_PRIMARY, 16},  {"repl.primary.shipped", ARM_PRIMARY, 16},
    {"repl.primary.released", ARM_PRIMARY, 16}, {"repl.standby.applied", ARM_STANDBY, 16},
    {"repl.standby.acked", ARM_STANDBY, 16},    {"tp.coord.prepare_sent", ARM_PRIMARY, 0},
    {"tp.coord.decided", ARM_PRIMARY, 0},       {"tp.coord.decision_synced", ARM_PRIMARY, 0},
    {"tp.coord.decision_sent", ARM_PRIMARY, 0}, {"tp.coord.acked", ARM_PRIMARY, 0},
    {"tp.part.prepared", ARM_PRIMARY, 0},       {"tp.part.prepare_synced", ARM_PRIMARY, 0},
    {"tp.part.applied", ARM_PRIMARY, 0},        {"tp.part.apply_synced", ARM_PRIMARY, 0},
};
#define CASES (sizeof (s_cases) / sizeof (s_cases[0]))

typedef struct {
    harness_t *h;
    tk_shard_t primary, standby, s2;
    ring_t *ring;
    uint64_t tag;
    rl_client_t *c1; //  s1: its primary, or the promoted standby
    rl_client_t *c2;
    uint64_t rng;
    uint64_t next_id;
    s_rec_t recs[RECORDS_MAX];
    size_t count;
    tk_model_t model;
    char config[512];
    char ring_file[480];
} s_ctx_t;

static int
s_owner (s_ctx_t *ctx, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    return ring_lookup_id (ctx->ring, bytes);
}

static rl_client_t *
s_client_for (void *arg, rl_id_t id)
{
    s_ctx_t *ctx = arg;
    return s_owner (ctx, id) == 0 ? ctx->c1 : ctx->c2;
}

//  Account k (0-based) of shard s: 1..4 on s1, 5..8 on s2.
static rl_id_t
s_acct (s_ctx_t *ctx, int s, uint64_t k)
{
    return tk_id (1 + (uint64_t) s * 4 + k % 4, ctx->tag);
}

static size_t
s_add (s_ctx_t *ctx, s_kind_t kind, rl_transfer_t t, size_t pending)
{
    assert_true (ctx->count < RECORDS_MAX);
    s_rec_t *r = &ctx->recs[ctx->count];
    *r = (s_rec_t){.t = t, .kind = kind, .pending = pending, .result = TK_OUTCOME_UNKNOWN};
    return ctx->count++;
}

//  A plain transfer from shard `from`'s accounts to shard `to`'s.
static size_t
s_plain (s_ctx_t *ctx, int from, int to)
{
    rl_transfer_t t = tk_transfer (
        tk_id (ctx->next_id++, ctx->tag), s_acct (ctx, from, rl_rand_next (&ctx->rng)),
        s_acct (ctx, to, rl_rand_next (&ctx->rng)), 1 + rl_rand_next (&ctx->rng) % 50, LEDGER);
    if (t.debit_account_id.lo == t.credit_account_id.lo) {
        t.credit_account_id = s_acct (ctx, to, t.credit_account_id.lo);
    }
    return s_add (ctx, K_PLAIN, t, 0);
}

//  A pending transfer from shard `from`'s accounts to shard `to`'s.
static size_t
s_pending (s_ctx_t *ctx, int from, int to, uint32_t timeout)
{
    size_t i = s_plain (ctx, from, to);
    ctx->recs[i].kind = K_PENDING;
    ctx->recs[i].t.flags = RL_TRANSFER_PENDING;
    ctx->recs[i].t.timeout = timeout;
    ctx->recs[i].t.amount += 100;
    return i;
}

//  A post (of part of it) or a void of the pending transfer of record p.
static size_t
s_resolve (s_ctx_t *ctx, size_t p, bool post)
{
    const rl_transfer_t *pt = &ctx->recs[p].t;
    rl_transfer_t t = {.id = tk_id (ctx->next_id++, ctx->tag),
                       .debit_account_id = pt->debit_account_id,
                       .pending_id = pt->id,
                       .amount = post ? pt->amount - 1 - rl_rand_next (&ctx->rng) % 50 : 0,
                       .flags = post ? RL_TRANSFER_POST_PENDING_TRANSFER
                                     : RL_TRANSFER_VOID_PENDING_TRANSFER};
    return s_add (ctx, post ? K_POST : K_VOID, t, p);
}

//  Whether a post or void of record p is applied (or, open_too, may be).
static bool
s_resolved (const s_ctx_t *ctx, size_t p, bool open_too)
{
    for (size_t j = p + 1; j < ctx->count; j++) {
        const s_rec_t *r = &ctx->recs[j];
        if ((r->kind == K_POST || r->kind == K_VOID) && r->pending == p
            && (r->result == RL_OK || (open_too && r->result == TK_OUTCOME_UNKNOWN))) {
            return true;
        }
    }
    return false;
}

//  A long pending transfer of shard `from`, acknowledged, with no post or
//  void applied or in flight.
static bool
s_open_pending (s_ctx_t *ctx, int from, size_t *p)
{
    for (size_t i = 0; i < ctx->count; i++) {
        const s_rec_t *r = &ctx->recs[i];
        if (r->kind == K_PENDING && r->result == RL_OK && r->t.timeout == LONG_TIMEOUT
            && s_owner (ctx, r->t.debit_account_id) == from && !s_resolved (ctx, i, true)) {
            *p = i;
            return true;
        }
    }
    return false;
}

//  What an answer means: ok and business failures are final (the model
//  takes what was applied); anything retryable leaves it unknown.
static void
s_answered (s_ctx_t *ctx, size_t i, uint32_t result)
{
    s_rec_t *r = &ctx->recs[i];
    if (result == RL_EXISTS) {
        fail_msg ("record %zu: exists on its first send", i);
    }
    if (result != RL_OK && !tk_result_is_business (result)) {
        return; //  busy, aborted, in_progress ...: the outcome is open
    }
    r->result = result;
    if (result != RL_OK) {
        return;
    }
    if (r->kind == K_PLAIN) {
        tk_model_apply (&ctx->model, &r->t);
    } else if (r->kind == K_POST) {
        rl_transfer_t posted = ctx->recs[r->pending].t;
        posted.amount = r->t.amount;
        tk_model_apply (&ctx->model, &posted);
    }
}

//  Sends records [first, first + n) to client until each is ok (busy or
//  a timeout while the standby is seeded are sent again, same ids: an
//  `exists` then is the first send's ok).
static void
s_send (s_ctx_t *ctx, rl_client_t *client, size_t first, size_t n)
{
    rl_transfer_t ts[BATCH_MAX];
    rl_result_rec_t rs[BATCH_MAX];
    assert_true (n <= BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        ts[i] = ctx->recs[first + i].t;
    }
    assert_int_equal (rl_client_create_transfers_retry (client, ts, n, rs, CALL_TIMEOUT_MS, 10), 0);
    for (size_t i = 0; i < n; i++) {
        if (rs[i].result != RL_OK && rs[i].result != RL_EXISTS) {
            fail_msg ("record %zu: %s", first + i, rl_result_name (rs[i].result));
        }
        s_answered (ctx, first + i, RL_OK);
    }
}

//  Sends a pipelined batch; its answer is taken by s_recv_batch.
static bool
s_send_batch (rl_client_t *client, s_ctx_t *ctx, size_t first, size_t n, uint64_t *req)
{
    rl_transfer_t ts[BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        ts[i] = ctx->recs[first + i].t;
    }
    return rl_client_send_transfers (client, ts, n, req) == 0;
}

//  Whether the child pid has exited (it is left to be reaped).
static bool
s_exited (pid_t pid)
{
    siginfo_t info = {0};
    return waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
           && info.si_pid == pid;
}

//  Waits for the answer of a pipelined batch up to wait_ms, or less
//  once the armed process (pid) is dead: then its outcome stays unknown.
static void
s_recv_batch (rl_client_t *client, s_ctx_t *ctx, size_t first, size_t n, uint64_t req, pid_t pid,
              int wait_ms)
{
    rl_header_t rh;
    uint8_t *body = NULL;
    size_t size = 0;
    int rc = RL_CLIENT_TIMEOUT;
    for (int64_t until = zclock_mono () + wait_ms;
         rc == RL_CLIENT_TIMEOUT && zclock_mono () < until;) {
        rc = rl_client_recv (client, 20, &rh, &body, &size);
        if (rc == RL_CLIENT_TIMEOUT && s_exited (pid)) {
            break;
        }
    }
    if (rc == 0 && rh.request_id == req && rh.status == RL_STATUS_OK
        && size == n * RL_RESULT_SIZE) {
        for (size_t i = 0; i < n; i++) {
            rl_result_rec_t r;
            codec_decode_result (body + i * RL_RESULT_SIZE, &r);
            assert_int_equal (r.index, i);
            s_answered (ctx, first + i, r.result);
        }
    } else if (rc == RL_CLIENT_TIMEOUT) {
        rl_client_cancel (client, req); //  unknown: settled after the recovery
    }
    free (body);
}

static uint32_t
s_state (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_status_rec_t st = {.state = UINT32_MAX};
    int rc = rl_client_status (c, &st, 300);
    rl_client_destroy (&c);
    return rc == 0 ? st.state : UINT32_MAX;
}

static void
s_wait_state (const char *endpoint, uint32_t state, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    uint32_t now = UINT32_MAX;
    while ((now = s_state (endpoint)) != state && zclock_mono () < deadline) {
        zclock_sleep (10);
    }
    if (now != state) {
        fail_msg ("%s: state %u, want %u", endpoint, now, state);
    }
}

static void
s_load_ring (const char *endpoint, const ring_t *ring)
{
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    rl_client_t *c = rl_client_new (endpoint);
    assert_int_equal (rl_client_load_ring (c, blob, size, CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    free (blob);
}

static void
s_quiet (s_ctx_t *ctx)
{
    rl_client_t *clients[2] = {ctx->c1, ctx->c2};
    if (!tk_wait_quiet (clients, 2, 20000)) {
        harness_keep (ctx->h);
        fail_msg ("the shards did not settle: live attempts or prepared records remain");
    }
}

//  Step 4's exactly-once: every record looked up on its debit shard, the
//  unknown ones settled, every one sent again with its id.
static void
s_settle (s_ctx_t *ctx)
{
    size_t unknown = 0, applied = 0;
    for (size_t i = 0; i < ctx->count; i++) {
        s_rec_t *r = &ctx->recs[i];
        rl_transfer_t found;
        rl_client_t *c = s_client_for (ctx, r->t.debit_account_id);
        assert_int_equal (rl_client_lookup_transfers (c, &r->t.id, 1, &found, CALL_TIMEOUT_MS), 0);
        if (r->result == RL_OK && found.timestamp == 0) {
            harness_keep (ctx->h);
            fail_msg ("record %zu (id %lu): acknowledged, not on its debit shard", i,
                      (unsigned long) r->t.id.lo);
        }
        if (r->result != TK_OUTCOME_UNKNOWN && r->result != RL_OK && found.timestamp != 0) {
            fail_msg ("record %zu: failed with %s, yet stored", i, rl_result_name (r->result));
        }
        if (r->result != TK_OUTCOME_UNKNOWN) {
            continue;
        }
        unknown++;
        if (found.timestamp != 0) {
            applied++;
            assert_int_equal (found.amount, r->t.amount ? r->t.amount : found.amount);
            s_answered (ctx, i, RL_OK);
        }
    }
    //  Every record again, with its id: the original outcome, or (unknown
    //  and not found) executed now, once.
    for (size_t i = 0; i < ctx->count; i++) {
        s_rec_t *r = &ctx->recs[i];
        rl_result_rec_t res;
        assert_int_equal (
            rl_client_create_transfers_retry (s_client_for (ctx, r->t.debit_account_id), &r->t, 1,
                                              &res, CALL_TIMEOUT_MS, 20),
            0);
        if (r->result == TK_OUTCOME_UNKNOWN) {
            if (res.result == RL_EXISTS) {
                fail_msg ("record %zu: not found, yet its retry says exists", i);
            }
            s_answered (ctx, i, res.result);
            assert_true (r->result != TK_OUTCOME_UNKNOWN);
            continue;
        }
        uint32_t want = r->result == RL_OK ? RL_EXISTS : r->result;
        if (res.result != want) {
            harness_keep (ctx->h);
            fail_msg ("record %zu (kind %d, id %lu): retry got %s, want %s", i, r->kind,
                      (unsigned long) r->t.id.lo, rl_result_name (res.result),
                      rl_result_name (want));
        }
    }
    printf ("  %zu records, %zu unknown after the crash (%zu found applied)\n", ctx->count, unknown,
            applied);
}

//  The pending amounts the accounts must show: every acknowledged long
//  pending transfer not posted or voided (the short ones have expired).
static void
s_expected_pending (s_ctx_t *ctx, uint64_t *dp, uint64_t *cp)
{
    memset (dp, 0, (ACCOUNTS + 1) * sizeof (uint64_t));
    memset (cp, 0, (ACCOUNTS + 1) * sizeof (uint64_t));
    for (size_t i = 0; i < ctx->count; i++) {
        const s_rec_t *r = &ctx->recs[i];
        if (r->kind != K_PENDING || r->result != RL_OK || r->t.timeout != LONG_TIMEOUT) {
            continue;
        }
        if (!s_resolved (ctx, i, false)) {
            dp[r->t.debit_account_id.lo] += r->t.amount;
            cp[r->t.credit_account_id.lo] += r->t.amount;
        }
    }
}

//  Waits until every account's pending amounts are the expected ones
//  (the transfers of 1 s expire meanwhile), and the posted ones the model's.
static void
s_check_pending (s_ctx_t *ctx)
{
    uint64_t dp[ACCOUNTS + 1], cp[ACCOUNTS + 1];
    s_expected_pending (ctx, dp, cp);
    int64_t deadline = zclock_mono () + EXPIRY_WAIT_MS;
    while (true) {
        bool same = true;
        char what[256] = "";
        for (uint64_t n = 1; n <= ACCOUNTS; n++) {
            rl_id_t id = tk_id (n, ctx->tag);
            rl_account_t a;
            assert_int_equal (
                rl_client_lookup_accounts (s_client_for (ctx, id), &id, 1, &a, CALL_TIMEOUT_MS), 0);
            if (a.debits_pending != dp[n] || a.credits_pending != cp[n]
                || a.debits_posted != ctx->model.debits[n]
                || a.credits_posted != ctx->model.credits[n]) {
                same = false;
                snprintf (what, sizeof what,
                          "account %lu: pending %lu/%lu want %lu/%lu, posted %lu/%lu want %lu/%lu",
                          (unsigned long) n, (unsigned long) a.debits_pending,
                          (unsigned long) a.credits_pending, (unsigned long) dp[n],
                          (unsigned long) cp[n], (unsigned long) a.debits_posted,
                          (unsigned long) a.credits_posted, (unsigned long) ctx->model.debits[n],
                          (unsigned long) ctx->model.credits[n]);
                break;
            }
        }
        if (same) {
            return;
        }
        if (zclock_mono () > deadline) {
            harness_keep (ctx->h);
            fail_msg ("pending amounts: %s", what);
        }
        zclock_sleep (50);
    }
}

static void
s_audit (rl_client_t *client)
{
    rl_audit_rec_t audit;
    assert_int_equal (rl_client_audit (client, &audit, CALL_TIMEOUT_MS), 0);
    if (!audit.ok) {
        fail_msg ("audit: %s", audit.message);
    }
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (client, &st, CALL_TIMEOUT_MS), 0);
    assert_int_equal (st.alarms, 0);
}

//  One round of the load: a batch to each shard at once.
static void
s_round (s_ctx_t *ctx, unsigned round, pid_t armed)
{
    size_t first[2], n[2];
    for (int s = 0; s < 2; s++) {
        first[s] = ctx->count;
        s_plain (ctx, s, 1 - s);
        s_plain (ctx, s, 1 - s);
        s_plain (ctx, s, s);
        size_t p;
        if (s_open_pending (ctx, s, &p)) {
            s_resolve (ctx, p, (round + (unsigned) s) % 2 == 0);
        }
        if (round % 2 == (unsigned) s) {
            s_pending (ctx, s, 1 - s, LONG_TIMEOUT);
        }
        n[s] = ctx->count - first[s];
    }
    uint64_t req[2];
    bool sent[2];
    rl_client_t *clients[2] = {ctx->c1, ctx->c2};
    for (int s = 0; s < 2; s++) {
        sent[s] = s_send_batch (clients[s], ctx, first[s], n[s], &req[s]);
    }
    for (int s = 0; s < 2; s++) {
        if (sent[s]) {
            s_recv_batch (clients[s], ctx, first[s], n[s], req[s], armed, LOAD_WAIT_MS);
        }
    }
}

//  Spawns shard with env (NULL: none) and waits until it answers status
//  or dies (an armed point its start may reach: a decision delivered
//  again, an expiry). Returns the wait status when it died, else -1.
static int
s_spawn (s_ctx_t *ctx, tk_shard_t *shard, char *const *env)
{
    for (size_t i = 0; i < 3; i++) {
        shard->env[i] = env ? env[i] : NULL;
        if (!shard->env[i]) {
            break;
        }
    }
    assert_true (tk_shard_spawn (ctx->h, shard) > 0);
    shard->env[0] = NULL;
    int64_t ready_by = zclock_mono () + TK_READY_TIMEOUT_MS;
    while (!s_exited (shard->pid) && !tk_wait_ready (shard->endpoint, 50)) {
        if (zclock_mono () > ready_by) {
            harness_keep (ctx->h);
            fail_msg ("%s (%s) did not start", shard->name, shard->data_dir);
        }
    }
    int wstatus = -1;
    if (s_exited (shard->pid)) {
        assert_int_equal (harness_wait_exit (ctx->h, shard->pid, 1000, &wstatus), 0);
        shard->pid = -1;
    }
    return wstatus;
}

//  s1's command line: a primary with `standby` (NULL: none), or a
//  standby of the primary.
static void
s_s1_args (s_ctx_t *ctx, tk_shard_t *shard, const tk_shard_t *standby, const tk_shard_t *of)
{
    memset (shard->args, 0, sizeof shard->args);
    shard->args[0] = "--config";
    shard->args[1] = ctx->config;
    if (standby) {
        shard->args[2] = "--standby";
        shard->args[3] = (char *) standby->endpoint;
        shard->args[4] = "--repl-timeout-ms";
        shard->args[5] = REPL_TIMEOUT;
    } else if (of) {
        shard->args[2] = "--standby-of";
        shard->args[3] = (char *) of->endpoint;
    }
}

//  s1 (no standby yet) and s2, accounts 1..4 on s1 and 5..8 on s2. Every
//  case then runs on this cluster: the promoted standby of one case is
//  the primary of the next.
static void
s_cluster_start (s_ctx_t *ctx)
{
    harness_t *h = ctx->h;
    tk_shard_init (h, &ctx->primary, "s1");
    snprintf (ctx->primary.data_dir, sizeof ctx->primary.data_dir, "%s/s1-first", harness_dir (h));
    tk_shard_init (h, &ctx->s2, "s2");
    ctx->ring = ring_new (1);
    assert_int_equal (ring_add_shard (ctx->ring, "s1", ctx->primary.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_add_shard (ctx->ring, "s2", ctx->s2.endpoint, 1.0), RING_OK);
    char ring_file[480];
    snprintf (ring_file, sizeof ring_file, "%s/cluster.ring", harness_dir (h));
    assert_int_equal (ring_save_file (ctx->ring, ring_file), RING_OK);
    snprintf (ctx->ring_file, sizeof ctx->ring_file, "%s", ring_file);
    tk_shard_t *both[] = {&ctx->primary, &ctx->s2};
    for (size_t i = 0; i < 2; i++) {
        snprintf (both[i]->ring_file, sizeof both[i]->ring_file, "%s", ring_file);
        both[i]->durability = "manual-wal";
        s_s1_args (ctx, both[i], NULL, NULL);
        assert_true (tk_shard_spawn (h, both[i]) > 0);
    }
    for (size_t i = 0; i < 2; i++) {
        if (!tk_wait_ready (both[i]->endpoint, TK_READY_TIMEOUT_MS)) {
            harness_keep (h);
            fail_msg ("%s did not start", both[i]->name);
        }
    }
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
    ctx->c2 = rl_client_new (ctx->s2.endpoint);
    for (ctx->tag = 0x52434d00000ull;; ctx->tag++) {
        bool ok = true;
        for (uint64_t n = 1; n <= ACCOUNTS && ok; n++) {
            ok = s_owner (ctx, tk_id (n, ctx->tag)) == (n <= 4 ? 0 : 1);
        }
        if (ok) {
            break;
        }
    }
    for (uint64_t n = 1; n <= ACCOUNTS; n++) {
        rl_account_t a = tk_account (n, ctx->tag, LEDGER, 0);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_accounts_retry (s_client_for (ctx, a.id), &a, 1, &r,
                                                           CALL_TIMEOUT_MS, 10),
                          0);
        assert_int_equal (r.result, RL_OK);
    }
    tk_model_init (&ctx->model, ctx->tag, ACCOUNTS);
    ctx->next_id = 1000;
}

static void
s_case (s_ctx_t *ctx, size_t k)
{
    const s_case_t *c = &s_cases[k];
    harness_t *h = ctx->h;
    int64_t t0 = zclock_mono ();
    //  1. Before: pending transfers both ways (long ones, and one of 1 s
    //  each way that expires during the case), plain transfers.
    ctx->count = 0;
    for (int s = 0; s < 2; s++) {
        size_t first = ctx->count;
        for (int i = 0; i < 2; i++) {
            s_pending (ctx, s, 1 - s, LONG_TIMEOUT);
        }
        if (s == 0 || k % 3 == 0) {
            //  s2's expiry, s1 its participant, waits out s1's fail-over
            //  (tried again 1 s, then 2 s later): in a third of the cases.
            s_pending (ctx, s, 1 - s, 1);
        }
        s_plain (ctx, s, 1 - s);
        s_plain (ctx, s, s);
        s_send (ctx, s == 0 ? ctx->c1 : ctx->c2, first, ctx->count - first);
    }
    s_quiet (ctx); //  their decisions delivered: the restart below starts clean
    //  2. A new standby (its own directory and port), the primary restarted
    //  with it; the armed one of the two runs until it dies under load.
    static char fp_env[128], fp_file_env[700];
    char fp_file[600];
    unsigned nth = c->nth_max ? 3 + (unsigned) (rl_rand_next (&ctx->rng) % (c->nth_max - 2)) : 0;
    if (nth) {
        snprintf (fp_env, sizeof fp_env, "RL_FAILPOINTS=%s=crash@%u", c->point, nth);
    } else {
        snprintf (fp_env, sizeof fp_env, "RL_FAILPOINTS=%s=crash", c->point);
    }
    snprintf (fp_file, sizeof fp_file, "%s/c%zu-fp.log", harness_dir (h), k);
    snprintf (fp_file_env, sizeof fp_file_env, "RL_FAILPOINT_FILE=%s", fp_file);
    char *armed_env[] = {fp_env, fp_file_env, NULL};
    printf ("case %zu: %s at %s\n", k, c->arm == ARM_PRIMARY ? "primary" : "standby",
            fp_env + strlen ("RL_FAILPOINTS="));
    if (ctx->standby.pid > 0) {
        tk_shard_stop (h, &ctx->standby, SIGKILL); //  the last case's: replaced
    }
    tk_shard_init (h, &ctx->standby, "s1");
    snprintf (ctx->standby.data_dir, sizeof ctx->standby.data_dir, "%s/s1-c%zu", harness_dir (h),
              k);
    snprintf (ctx->standby.ring_file, sizeof ctx->standby.ring_file, "%s", ctx->ring_file);
    ctx->standby.durability = "manual-wal";
    s_s1_args (ctx, &ctx->standby, NULL, &ctx->primary);
    s_s1_args (ctx, &ctx->primary, &ctx->standby, NULL);
    tk_shard_t *armed = c->arm == ARM_PRIMARY ? &ctx->primary : &ctx->standby;
    int wstatus = s_spawn (ctx, &ctx->standby, c->arm == ARM_STANDBY ? armed_env : NULL);
    assert_int_equal (tk_shard_stop (h, &ctx->primary, SIGTERM), 0);
    if (c->arm == ARM_PRIMARY) {
        wstatus = s_spawn (ctx, &ctx->primary, armed_env);
    } else if (s_spawn (ctx, &ctx->primary, NULL) != -1) {
        fail_msg ("case %zu: the primary died at its start", k);
    }
    bool dead = wstatus != -1;
    int64_t t_armed = zclock_mono ();
    rl_client_set_send_timeout (ctx->c1, 200);
    rl_client_set_send_timeout (ctx->c2, 200);
    if (!dead) {
        //  One write of s1's own first: acknowledged once the standby holds
        //  a complete copy (or the armed one died meanwhile), so that the
        //  load's points come with a standby to promote.
        size_t i = s_plain (ctx, 0, 0);
        uint64_t req;
        if (s_send_batch (ctx->c1, ctx, i, 1, &req)) {
            s_recv_batch (ctx->c1, ctx, i, 1, req, armed->pid, TK_READY_TIMEOUT_MS);
        }
    }
    int64_t deadline = zclock_mono () + DEATH_WAIT_MS;
    unsigned round = 0;
    while (!dead && !(dead = harness_wait_exit (h, armed->pid, 0, &wstatus) == 0)) {
        if (zclock_mono () > deadline) {
            harness_keep (h);
            fail_msg ("case %zu: %s never died at %s", k, armed->data_dir, c->point);
        }
        s_round (ctx, round++, armed->pid);
    }
    armed->pid = -1;
    char *hits = harness_read_file (fp_file, NULL);
    if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL || !hits
        || !strstr (hits, c->point)) {
        harness_keep (h);
        fail_msg ("case %zu: status 0x%x, failpoint record '%s'", k, wstatus, hits ? hits : "");
    }
    free (hits);
    size_t before = ctx->count;
    int64_t t_dead = zclock_mono ();
    //  3. Fail-over, or the primary without its standby.
    int promoted = c->arm == ARM_PRIMARY ? rk_promote_call (ctx->standby.endpoint) : -1;
    if (promoted == RL_STATUS_UNAVAILABLE) {
        //  It died before its new standby held a complete copy (its point
        //  came at its start): in semi mode it acknowledged nothing since,
        //  and the operator restarts it.
        printf ("  the standby was not seeded yet: the primary restarts\n");
        assert_int_equal (s_spawn (ctx, &ctx->primary, NULL), -1);
        rl_client_destroy (&ctx->c1);
        ctx->c1 = rl_client_new (ctx->primary.endpoint);
    } else if (c->arm == ARM_PRIMARY) {
        assert_int_equal (promoted, 0);
        s_wait_state (ctx->standby.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
        ring_t *next = ring_dup (ctx->ring);
        assert_non_null (next);
        ring_set_epoch (next, ring_epoch (ctx->ring) + 1);
        assert_int_equal (ring_set_endpoint (next, "s1", ctx->standby.endpoint), RING_OK);
        s_load_ring (ctx->standby.endpoint, next);
        s_load_ring (ctx->s2.endpoint, next);
        ring_destroy (&ctx->ring);
        ctx->ring = next;
        ctx->primary = ctx->standby; //  the next case's primary
        ctx->standby.pid = -1;
        rl_client_destroy (&ctx->c1);
        ctx->c1 = rl_client_new (ctx->primary.endpoint);
    } else {
        //  Semi-synchronous: the primary stalls, a new write is busy.
        s_wait_state (ctx->primary.endpoint, RL_SHARD_STALLED, 5000);
        size_t i = s_plain (ctx, 0, 1);
        rl_header_t rh;
        uint8_t body[RL_TRANSFER_SIZE];
        codec_encode_transfer (&ctx->recs[i].t, body);
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        int rc = rl_client_call (ctx->c1, RL_OP_CREATE_TRANSFERS, body, RL_TRANSFER_SIZE, 1,
                                 CALL_TIMEOUT_MS, &rh, &reply, &reply_size);
        assert_true (rc == RL_STATUS_BUSY || (rc == 0 && rh.status == RL_STATUS_BUSY));
        free (reply);
        //  It comes back, catches up: the primary serves again.
        assert_int_equal (s_spawn (ctx, &ctx->standby, NULL), -1);
        s_wait_state (ctx->primary.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    }
    int64_t t_back = zclock_mono ();
    //  4. Settle; exactly-once; pending amounts; conservation.
    rl_client_set_send_timeout (ctx->c1, CALL_TIMEOUT_MS);
    rl_client_set_send_timeout (ctx->c2, CALL_TIMEOUT_MS);
    s_quiet (ctx);
    s_settle (ctx);
    s_quiet (ctx);
    s_check_pending (ctx);
    int64_t t_settled = zclock_mono ();
    size_t p;
    for (int s = 0; s < 2; s++) {
        while (s_open_pending (ctx, s, &p)) {
            size_t i = s_resolve (ctx, p, p % 2 == 0);
            s_send (ctx, s == 0 ? ctx->c1 : ctx->c2, i, 1);
        }
    }
    s_quiet (ctx);
    s_check_pending (ctx); //  nothing pending at all now
    tk_check_conservation_by (s_client_for, ctx, &ctx->model, 4);
    s_audit (ctx->c1);
    s_audit (ctx->c2);
    printf ("  %u rounds, %zu records before the crash; ms: restarts %ld, load %ld, back %ld, "
            "settled %ld, case %ld\n",
            round, before, (long) (t_armed - t0), (long) (t_dead - t_armed),
            (long) (t_back - t_dead), (long) (t_settled - t_back), (long) (zclock_mono () - t0));
}

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->h = harness_new ("replication_crash");
    *state = ctx;
    return ctx->h ? 0 : -1;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rl_client_destroy (&ctx->c1);
    rl_client_destroy (&ctx->c2);
    ring_destroy (&ctx->ring);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

static void
test_replication_crash_matrix (void **state)
{
    s_ctx_t *ctx = *state;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("test_replication_crash: RL_SEED=%lu\n", (unsigned long) seed);
    ctx->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    snprintf (ctx->config, sizeof ctx->config, "%s/twophase.conf", harness_dir (ctx->h));
    FILE *f = fopen (ctx->config, "w");
    assert_non_null (f);
    fputs ("prepare-timeout-ms = 300\nquery-after-ms = 200\nretry-min-ms = 20\n"
           "retry-max-ms = 200\ntick-ms = 5\n",
           f);
    fclose (f);
    s_cluster_start (ctx);
    const char *only = getenv ("RL_CASE"); //  one case by index, to replay it
    for (size_t k = 0; k < CASES; k++) {
        if (!only || (size_t) atoi (only) == k) {
            s_case (ctx, k);
        }
    }
    tk_shard_t *all[] = {&ctx->primary, &ctx->standby, &ctx->s2};
    for (size_t i = 0; i < 3; i++) {
        if (all[i]->pid > 0) {
            tk_shard_stop (ctx->h, all[i], SIGTERM);
        }
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_replication_crash_matrix, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
