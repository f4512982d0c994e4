/*  test_replication_warm.c: a promoted standby serves from the ledger state
    it kept in memory while it streamed, and that state is exactly the one a
    recovery of the same disk builds (docs/replication.md, "The standby's
    ledger").

    A cluster of shard s1, a semi-synchronous primary checkpointing every
    40 transfers (so the stream carries checkpoints: index ingests and
    checkpoint batches), and s2, every process with --durability
    manual-wal. The test sends each transfer to the shard of its debit
    account: s1 coordinates cross-shard transfers to s2 and takes part in
    those from s2 (credit legs), and both hold user-level pending
    transfers, posts and voids.

    1. The standby, started with journal.warm.verify=error (its promoted
       recovery, having taken the id filter and the transfers after the
       checkpoint from memory, also reads them from the disk and fails the
       open if they differ) and repl.standby.warm.small=error (its filter
       holds 1,024 ids at first, so that it grows, in the background,
       while the load's events are applied), is seeded; a load runs.
    2. The standby is SIGKILLed and restarted in the middle of the load:
       it rebuilds its state from its disk (in the background, while it
       catches up); the load goes on. Its log says the state was built
       twice and its filter grew: ids of failed transfers (an account
       of s1 that does not exist) are stored among the rounds.
    3. The primary is SIGKILLed with a batch in flight on each shard, the
       standby promoted and a ring of the next epoch naming it loaded into
       it and s2. Its log says the state was taken from memory, and the
       failpoint's record says the check against the disk ran (the open
       would have failed otherwise).
    4. Once the two-phase records end, every account of s1 and every
       transfer whose debit account is on s1 is read (snapshot A); the
       promoted shard is SIGKILLed and restarted, so that it recovers from
       its disk; read again (snapshot B): A and B are the same records,
       byte for byte.
    5. Exactly-once over every id: every acknowledged transfer is on its
       debit shard with the timestamp its first answer gave, every retry
       with the same id gets `exists` with that timestamp (or its original
       failure), unknown outcomes are settled; pending amounts are those
       of the pending transfers still pending; then every pending transfer
       is posted or voided and the strong conservation check runs, with
       the audit and no two-phase alarm on either shard.
    test_promote_while_building: the same cluster and load, the standby
    started with journal.warm.build.slow=error (its first build, after
    the seed, waits up to 5 s unless it is ended); the primary is
    SIGKILLed with a batch in flight and the standby promoted at once:
    the build is ended, the promoted recovery reads the disk (its log
    says so, and nothing was taken from memory), and step 5 runs.
    RL_SEED=<n> replays a run.
*/
#include <inttypes.h>
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
#include "replkit.h"
#include "ring.h"
#include "rl_rand.h"
#include "testkit.h"

#define LEDGER          744
#define ACCOUNTS        8 //  1..4 on s1, 5..8 on s2
#define RECORDS_MAX     2048
#define BATCH_MAX       8
#define CALL_TIMEOUT_MS 8000
#define LOAD_WAIT_MS    2000 //  a batch's answer in the load (then its outcome is unknown)
#define REPL_TIMEOUT    "400"
#define CHECKPOINT      40
#define ROUNDS          30 //  before and after the standby's restart
#define LONG_TIMEOUT    3600

typedef enum { K_PLAIN, K_PENDING, K_POST, K_VOID } s_kind_t;

typedef struct {
    rl_transfer_t t;
    s_kind_t kind;
    size_t pending;     //  K_POST, K_VOID: the record of the pending transfer
    uint32_t result;    //  TK_OUTCOME_UNKNOWN until known
    uint64_t timestamp; //  of an ok: the one its answer gave (0: learnt by the settle)
} s_rec_t;

typedef struct {
    harness_t *h;
    tk_shard_t primary, standby, s2;
    ring_t *ring;
    uint64_t tag;
    rl_client_t *c1;
    rl_client_t *c2;
    uint64_t rng;
    uint64_t next_id;
    s_rec_t recs[RECORDS_MAX];
    size_t count;
    tk_model_t model;
    char config[512];
    char ring_file[480];
    char fp_file[600];
    char fp_env[128];
    char fp_file_env[700];
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

static rl_id_t
s_acct (s_ctx_t *ctx, int s, uint64_t k)
{
    return tk_id (1 + (uint64_t) s * 4 + k % 4, ctx->tag);
}

static size_t
s_add (s_ctx_t *ctx, s_kind_t kind, rl_transfer_t t, size_t pending)
{
    assert_true (ctx->count < RECORDS_MAX);
    ctx->recs[ctx->count] = (s_rec_t){
        .t = t, .kind = kind, .pending = pending, .result = TK_OUTCOME_UNKNOWN};
    return ctx->count++;
}

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

static size_t
s_pending (s_ctx_t *ctx, int from, int to)
{
    size_t i = s_plain (ctx, from, to);
    ctx->recs[i].kind = K_PENDING;
    ctx->recs[i].t.flags = RL_TRANSFER_PENDING;
    ctx->recs[i].t.timeout = LONG_TIMEOUT;
    ctx->recs[i].t.amount += 100;
    return i;
}

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

static bool
s_open_pending (s_ctx_t *ctx, int from, size_t *p)
{
    for (size_t i = 0; i < ctx->count; i++) {
        const s_rec_t *r = &ctx->recs[i];
        if (r->kind == K_PENDING && r->result == RL_OK
            && s_owner (ctx, r->t.debit_account_id) == from && !s_resolved (ctx, i, true)) {
            *p = i;
            return true;
        }
    }
    return false;
}

//  An answer: ok and business failures are final (the model takes what
//  was applied, the record its timestamp); anything else stays unknown.
static void
s_answered (s_ctx_t *ctx, size_t i, uint32_t result, uint64_t timestamp)
{
    s_rec_t *r = &ctx->recs[i];
    if (result == RL_EXISTS) {
        fail_msg ("record %zu: exists on its first send", i);
    }
    if (result != RL_OK && !tk_result_is_business (result)) {
        return;
    }
    r->result = result;
    r->timestamp = result == RL_OK ? timestamp : 0;
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

//  Sends records [first, first + n) until each is ok (an `exists` on a
//  retry is the first send's ok: its timestamp is the original's).
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
        s_answered (ctx, first + i, RL_OK, rs[i].timestamp);
    }
}

static bool
s_send_batch (rl_client_t *client, s_ctx_t *ctx, size_t first, size_t n, uint64_t *req)
{
    rl_transfer_t ts[BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        ts[i] = ctx->recs[first + i].t;
    }
    return rl_client_send_transfers (client, ts, n, req) == 0;
}

//  The answer of a pipelined batch within wait_ms; without it the
//  outcomes stay unknown.
static void
s_recv_batch (rl_client_t *client, s_ctx_t *ctx, size_t first, size_t n, uint64_t req, int wait_ms)
{
    rl_header_t rh;
    uint8_t *body = NULL;
    size_t size = 0;
    int rc = rl_client_recv (client, wait_ms, &rh, &body, &size);
    if (rc == 0 && rh.request_id == req && rh.status == RL_STATUS_OK
        && size == n * RL_RESULT_SIZE) {
        for (size_t i = 0; i < n; i++) {
            rl_result_rec_t r;
            codec_decode_result (body + i * RL_RESULT_SIZE, &r);
            assert_int_equal (r.index, i);
            s_answered (ctx, first + i, r.result, r.timestamp);
        }
    } else if (rc == RL_CLIENT_TIMEOUT) {
        rl_client_cancel (client, req);
    }
    free (body);
}

//  One round: a batch to each shard at once (cross-shard and own
//  transfers, a post or a void, every other round a new pending
//  transfer). kill_primary: the primary is SIGKILLed with both in flight.
static void
s_round (s_ctx_t *ctx, unsigned round, bool kill_primary)
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
            s_pending (ctx, s, 1 - s);
        }
        n[s] = ctx->count - first[s];
    }
    uint64_t req[2];
    bool sent[2];
    rl_client_t *clients[2] = {ctx->c1, ctx->c2};
    for (int s = 0; s < 2; s++) {
        sent[s] = s_send_batch (clients[s], ctx, first[s], n[s], &req[s]);
    }
    if (kill_primary) {
        tk_shard_stop (ctx->h, &ctx->primary, SIGKILL);
    }
    for (int s = 0; s < 2; s++) {
        if (sent[s]) {
            s_recv_batch (clients[s], ctx, first[s], n[s], req[s],
                          kill_primary ? 300 : LOAD_WAIT_MS);
        }
    }
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

//  s1's command line: a primary with `standby` (NULL: none), or a standby of `of`.
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

static void
s_spawn (s_ctx_t *ctx, tk_shard_t *shard, bool armed)
{
    shard->env[0] = armed ? ctx->fp_env : NULL;
    shard->env[1] = armed ? ctx->fp_file_env : NULL;
    shard->env[2] = NULL;
    assert_true (tk_shard_spawn (ctx->h, shard) > 0);
    shard->env[0] = NULL;
    if (!tk_wait_ready (shard->endpoint, TK_READY_TIMEOUT_MS)) {
        harness_keep (ctx->h);
        fail_msg ("%s (%s) did not start", shard->name, shard->data_dir);
    }
}

static void
s_cluster_start (s_ctx_t *ctx)
{
    harness_t *h = ctx->h;
    tk_shard_init (h, &ctx->primary, "s1");
    snprintf (ctx->primary.data_dir, sizeof ctx->primary.data_dir, "%s/s1-primary",
              harness_dir (h));
    tk_shard_init (h, &ctx->s2, "s2");
    ctx->ring = ring_new (1);
    assert_int_equal (ring_add_shard (ctx->ring, "s1", ctx->primary.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_add_shard (ctx->ring, "s2", ctx->s2.endpoint, 1.0), RING_OK);
    snprintf (ctx->ring_file, sizeof ctx->ring_file, "%s/cluster.ring", harness_dir (h));
    assert_int_equal (ring_save_file (ctx->ring, ctx->ring_file), RING_OK);
    tk_shard_t *both[] = {&ctx->primary, &ctx->s2};
    for (size_t i = 0; i < 2; i++) {
        snprintf (both[i]->ring_file, sizeof both[i]->ring_file, "%s", ctx->ring_file);
        both[i]->durability = "manual-wal";
        both[i]->checkpoint_transfers = CHECKPOINT;
        s_s1_args (ctx, both[i], NULL, NULL);
        s_spawn (ctx, both[i], false);
    }
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
    ctx->c2 = rl_client_new (ctx->s2.endpoint);
    for (ctx->tag = 0x5741524d000ull;; ctx->tag++) {
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

//  What s1 holds, as its clients read it: its accounts, and every record
//  whose debit account is on s1 (encoded, in the order of the log).
typedef struct {
    uint8_t accounts[4][RL_ACCOUNT_SIZE];
    uint8_t *transfers; //  RL_TRANSFER_SIZE per record of the log
    size_t count;
} s_snapshot_t;

static void
s_snapshot (s_ctx_t *ctx, s_snapshot_t *snap)
{
    for (uint64_t n = 1; n <= 4; n++) {
        rl_id_t id = tk_id (n, ctx->tag);
        rl_account_t a;
        assert_int_equal (rl_client_lookup_accounts (ctx->c1, &id, 1, &a, CALL_TIMEOUT_MS), 0);
        assert_true (a.timestamp != 0);
        codec_encode_account (&a, snap->accounts[n - 1]);
    }
    snap->count = ctx->count;
    snap->transfers = calloc (ctx->count, RL_TRANSFER_SIZE);
    assert_non_null (snap->transfers);
    for (size_t i = 0; i < ctx->count; i++) {
        const s_rec_t *r = &ctx->recs[i];
        if (s_owner (ctx, r->t.debit_account_id) != 0) {
            continue;
        }
        rl_transfer_t found;
        assert_int_equal (
            rl_client_lookup_transfers (ctx->c1, &r->t.id, 1, &found, CALL_TIMEOUT_MS), 0);
        codec_encode_transfer (&found, snap->transfers + i * RL_TRANSFER_SIZE);
    }
}

//  Step 5: every record on its debit shard with its first answer's
//  timestamp, the unknown ones settled, every one sent again with its id.
static void
s_settle (s_ctx_t *ctx)
{
    size_t unknown = 0, applied = 0;
    for (size_t i = 0; i < ctx->count; i++) {
        s_rec_t *r = &ctx->recs[i];
        rl_transfer_t found;
        rl_client_t *c = s_client_for (ctx, r->t.debit_account_id);
        assert_int_equal (rl_client_lookup_transfers (c, &r->t.id, 1, &found, CALL_TIMEOUT_MS), 0);
        if (r->result == RL_OK && (found.timestamp == 0 || found.timestamp != r->timestamp)) {
            harness_keep (ctx->h);
            fail_msg ("record %zu (id %lu): acknowledged at ts %lu, found at %lu", i,
                      (unsigned long) r->t.id.lo, (unsigned long) r->timestamp,
                      (unsigned long) found.timestamp);
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
            s_answered (ctx, i, RL_OK, found.timestamp);
        }
    }
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
            s_answered (ctx, i, res.result, res.timestamp);
            assert_true (r->result != TK_OUTCOME_UNKNOWN);
            continue;
        }
        uint32_t want = r->result == RL_OK ? RL_EXISTS : r->result;
        if (res.result != want || (want == RL_EXISTS && res.timestamp != r->timestamp)) {
            harness_keep (ctx->h);
            fail_msg ("record %zu (kind %d, id %lu): retry got %s at ts %lu, want %s at %lu", i,
                      r->kind, (unsigned long) r->t.id.lo, rl_result_name (res.result),
                      (unsigned long) res.timestamp, rl_result_name (want),
                      (unsigned long) r->timestamp);
        }
    }
    printf ("  %zu records, %zu unknown after the crash (%zu found applied)\n", ctx->count, unknown,
            applied);
}

//  Pending amounts: every acknowledged pending transfer not posted or
//  voided; posted amounts: the model's.
static void
s_check_pending (s_ctx_t *ctx)
{
    uint64_t dp[ACCOUNTS + 1] = {0}, cp[ACCOUNTS + 1] = {0};
    for (size_t i = 0; i < ctx->count; i++) {
        const s_rec_t *r = &ctx->recs[i];
        if (r->kind == K_PENDING && r->result == RL_OK && !s_resolved (ctx, i, false)) {
            dp[r->t.debit_account_id.lo] += r->t.amount;
            cp[r->t.credit_account_id.lo] += r->t.amount;
        }
    }
    for (uint64_t n = 1; n <= ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, ctx->tag);
        rl_account_t a;
        assert_int_equal (
            rl_client_lookup_accounts (s_client_for (ctx, id), &id, 1, &a, CALL_TIMEOUT_MS), 0);
        if (a.debits_pending != dp[n] || a.credits_pending != cp[n]
            || a.debits_posted != ctx->model.debits[n]
            || a.credits_posted != ctx->model.credits[n]) {
            harness_keep (ctx->h);
            fail_msg ("account %lu: pending %lu/%lu want %lu/%lu, posted %lu/%lu want %lu/%lu",
                      (unsigned long) n, (unsigned long) a.debits_pending,
                      (unsigned long) a.credits_pending, (unsigned long) dp[n],
                      (unsigned long) cp[n], (unsigned long) a.debits_posted,
                      (unsigned long) a.credits_posted, (unsigned long) ctx->model.debits[n],
                      (unsigned long) ctx->model.credits[n]);
        }
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

//  Occurrences of `what` in s1's log (the primary, the standby and the
//  promoted shard write to it).
static size_t
s_log_count (s_ctx_t *ctx, const char *what)
{
    char path[700];
    snprintf (path, sizeof path, "%s/s1.log", harness_dir (ctx->h));
    char *log = harness_read_file (path, NULL);
    assert_non_null (log);
    size_t n = 0;
    for (const char *p = log; (p = strstr (p, what)); p += strlen (what)) {
        n++;
    }
    free (log);
    return n;
}

//  Transfers from an account of s1 that does not exist: each fails and
//  stores its id (so the standby's filter fills up and grows), moving no
//  money; the model does not follow them.
static void
s_burn (s_ctx_t *ctx, size_t count)
{
    uint64_t ghost = 100;
    while (s_owner (ctx, tk_id (ghost, ctx->tag)) != 0) {
        ghost++;
    }
    enum { N = 500 };
    static uint64_t next = 1000000; //  ids of their own, never sent twice
    static rl_transfer_t ts[N];
    static rl_result_rec_t rs[N];
    for (size_t sent = 0; sent < count; sent += N) {
        for (size_t i = 0; i < N; i++) {
            ts[i] = tk_transfer (tk_id (next++, ctx->tag ^ 0xb0b), tk_id (ghost, ctx->tag),
                                 tk_id (1, ctx->tag), 1, LEDGER);
        }
        assert_int_equal (
            rl_client_create_transfers_retry (ctx->c1, ts, N, rs, CALL_TIMEOUT_MS, 10), 0);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal (rs[i].result, RL_DEBIT_ACCOUNT_NOT_FOUND);
        }
    }
}

//  The cluster, a load, and s1's standby seeded while the primary serves
//  (started with the failpoints `failpoints`); the primary restarted as
//  its semi-synchronous primary.
static void
s_begin (s_ctx_t *ctx, const char *failpoints)
{
    harness_t *h = ctx->h;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("test_replication_warm: RL_SEED=%lu\n", (unsigned long) seed);
    ctx->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    snprintf (ctx->config, sizeof ctx->config, "%s/twophase.conf", harness_dir (h));
    FILE *f = fopen (ctx->config, "w");
    assert_non_null (f);
    fputs ("prepare-timeout-ms = 300\nquery-after-ms = 200\nretry-min-ms = 20\n"
           "retry-max-ms = 200\ntick-ms = 5\n",
           f);
    fclose (f);
    snprintf (ctx->fp_file, sizeof ctx->fp_file, "%s/warm-fp.log", harness_dir (h));
    snprintf (ctx->fp_env, sizeof ctx->fp_env, "RL_FAILPOINTS=%s", failpoints);
    snprintf (ctx->fp_file_env, sizeof ctx->fp_file_env, "RL_FAILPOINT_FILE=%s", ctx->fp_file);
    s_cluster_start (ctx);
    //  Transfers before the standby: its seed carries them (and checkpoints).
    for (unsigned round = 0; round < ROUNDS / 2; round++) {
        s_round (ctx, round, false);
    }
    //  1. The standby, seeded while the primary serves.
    tk_shard_init (h, &ctx->standby, "s1");
    snprintf (ctx->standby.data_dir, sizeof ctx->standby.data_dir, "%s/s1-standby",
              harness_dir (h));
    snprintf (ctx->standby.ring_file, sizeof ctx->standby.ring_file, "%s", ctx->ring_file);
    ctx->standby.durability = "manual-wal";
    ctx->standby.checkpoint_transfers = CHECKPOINT;
    s_s1_args (ctx, &ctx->standby, NULL, &ctx->primary);
    s_s1_args (ctx, &ctx->primary, &ctx->standby, NULL);
    s_spawn (ctx, &ctx->standby, true);
    assert_int_equal (tk_shard_stop (h, &ctx->primary, SIGTERM), 0);
    s_spawn (ctx, &ctx->primary, false);
    rl_client_destroy (&ctx->c1);
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
    //  Seeded and streaming: the standby applied an event after its seed
    //  (its position, status' commits).
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    for (unsigned round = 0;
         rk_status (ctx->standby.endpoint).commits == 0 && zclock_mono () < deadline; round++) {
        s_round (ctx, round, false);
    }
    assert_true (rk_status (ctx->standby.endpoint).commits > 0);
}

//  The primary killed with a batch in flight, the standby promoted and a
//  ring of the next epoch naming it loaded into it and s2.
static void
s_promote (s_ctx_t *ctx, unsigned round)
{
    rl_client_set_send_timeout (ctx->c1, 200);
    s_round (ctx, round, true);
    rk_promote (ctx->standby.endpoint);
    s_wait_state (ctx->standby.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    ring_t *next = ring_dup (ctx->ring);
    assert_non_null (next);
    ring_set_epoch (next, ring_epoch (ctx->ring) + 1);
    assert_int_equal (ring_set_endpoint (next, "s1", ctx->standby.endpoint), RING_OK);
    s_load_ring (ctx->standby.endpoint, next);
    s_load_ring (ctx->s2.endpoint, next);
    ring_destroy (&ctx->ring);
    ctx->ring = next;
    ctx->primary = ctx->standby;
    ctx->standby.pid = -1;
    rl_client_destroy (&ctx->c1);
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
}

//  Step 5: exactly-once, pending amounts, conservation; the shards stopped.
static void
s_finish (s_ctx_t *ctx)
{
    rl_client_set_send_timeout (ctx->c1, CALL_TIMEOUT_MS);
    s_settle (ctx);
    s_quiet (ctx);
    s_check_pending (ctx);
    size_t p;
    for (int s = 0; s < 2; s++) {
        while (s_open_pending (ctx, s, &p)) {
            size_t i = s_resolve (ctx, p, p % 2 == 0);
            s_send (ctx, s == 0 ? ctx->c1 : ctx->c2, i, 1);
        }
    }
    s_quiet (ctx);
    s_check_pending (ctx);
    tk_check_conservation_by (s_client_for, ctx, &ctx->model, 4);
    s_audit (ctx->c1);
    s_audit (ctx->c2);
    tk_shard_t *all[] = {&ctx->primary, &ctx->s2};
    for (size_t i = 0; i < 2; i++) {
        if (all[i]->pid > 0) {
            tk_shard_stop (ctx->h, all[i], SIGTERM);
        }
    }
}

static void
test_warm_promote (void **state)
{
    s_ctx_t *ctx = *state;
    harness_t *h = ctx->h;
    s_begin (ctx, "journal.warm.verify=error,repl.standby.warm.small=error");
    unsigned round = 0;
    for (; round < ROUNDS; round++) {
        s_round (ctx, round, false);
    }
    //  2. The standby restarted: its state rebuilt from its disk.
    size_t built = s_log_count (ctx, "standby: the copy's id filter");
    assert_true (built >= 1);
    tk_shard_stop (h, &ctx->standby, SIGKILL);
    s_spawn (ctx, &ctx->standby, true);
    assert_int_equal (s_log_count (ctx, "standby: the copy's id filter"), built + 1);
    s_wait_state (ctx->primary.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    for (; round < 2 * ROUNDS; round++) {
        s_round (ctx, round, false);
        if (round % 10 == 0) {
            s_burn (ctx, 1000);
        }
    }
    assert_int_equal (s_log_count (ctx, "the copy's ledger state in memory dropped"), 0);
    //  Its filter of 1,024 ids grew in the background while it applied the
    //  load's events, and the build after its restart was taken.
    if (s_log_count (ctx, "standby's id filter grew to") == 0
        || s_log_count (ctx, "after the checkpoint in memory, built in") < 2) {
        harness_keep (h);
        fail_msg ("the standby's state was not built, or its filter did not grow, in the "
                  "background");
    }
    //  3. The primary killed with a batch in flight, the standby promoted.
    size_t taken = s_log_count (ctx, "taken from the standby's memory");
    s_promote (ctx, round++);
    assert_int_equal (s_log_count (ctx, "taken from the standby's memory"), taken + 1);
    char *hits = harness_read_file (ctx->fp_file, NULL);
    if (!hits || !strstr (hits, "journal.warm.verify")) {
        harness_keep (h);
        fail_msg ("the check of the warm state against the disk did not run");
    }
    free (hits);
    //  4. The state it serves is the one a recovery of its disk builds.
    s_quiet (ctx);
    s_snapshot_t a, b;
    s_snapshot (ctx, &a);
    tk_shard_stop (h, &ctx->primary, SIGKILL);
    s_spawn (ctx, &ctx->primary, false);
    s_wait_state (ctx->primary.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    rl_client_destroy (&ctx->c1);
    ctx->c1 = rl_client_new (ctx->primary.endpoint);
    s_quiet (ctx);
    s_snapshot (ctx, &b);
    assert_int_equal (a.count, b.count);
    for (size_t n = 0; n < 4; n++) {
        if (memcmp (a.accounts[n], b.accounts[n], RL_ACCOUNT_SIZE) != 0) {
            harness_keep (h);
            fail_msg ("account %zu: promoted from memory and recovered from disk differ", n + 1);
        }
    }
    size_t compared = 0;
    for (size_t i = 0; i < a.count; i++) {
        if (memcmp (a.transfers + i * RL_TRANSFER_SIZE, b.transfers + i * RL_TRANSFER_SIZE,
                    RL_TRANSFER_SIZE)
            != 0) {
            harness_keep (h);
            fail_msg ("record %zu: promoted from memory and recovered from disk differ", i);
        }
        compared += s_owner (ctx, ctx->recs[i].t.debit_account_id) == 0;
    }
    free (a.transfers);
    free (b.transfers);
    printf ("  %u rounds; the promoted state and the recovered one agree on 4 accounts and %zu "
            "transfers\n",
            round, compared);
    //  5. Exactly-once, pending amounts, conservation.
    s_finish (ctx);
}

//  A promotion while the standby's first build runs (journal.warm.build.slow
//  holds it up to 5 s unless it is ended): the build is ended at once, the
//  promoted recovery reads the disk, and nothing is lost or doubled.
static void
test_promote_while_building (void **state)
{
    s_ctx_t *ctx = *state;
    s_begin (ctx, "journal.warm.build.slow=error");
    size_t unbuilt = s_log_count (ctx, "was not built yet: recovery reads the disk");
    int64_t started = zclock_mono ();
    s_promote (ctx, 0);
    int64_t took = zclock_mono () - started;
    if (s_log_count (ctx, "was not built yet: recovery reads the disk") != unbuilt + 1
        || s_log_count (ctx, "taken from the standby's memory") != 0) {
        harness_keep (ctx->h);
        fail_msg ("the promotion did not end the standby's build and read the disk");
    }
    printf ("  the build ended, the standby promoted and serving in %" PRId64 " ms\n", took);
    s_quiet (ctx);
    s_finish (ctx);
}

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->h = harness_new ("replication_warm");
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

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_warm_promote, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_promote_while_building, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
