/*  replxkit.c: a replicated shard beside a second one, under cross-shard
    and pending transfers (replxkit.h). */
#include "replxkit.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "owner.h"
#include "rl_rand.h"

#define RX_QUIET_TIMEOUT_MS 20000

rx_t *
rx_new (const char *name)
{
    rx_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->h = harness_new (name);
    self->primary.pid = self->standby.pid = self->s2.pid = -1;
    if (!self->h) {
        free (self);
        return NULL;
    }
    return self;
}

int
rx_teardown (void **state)
{
    rx_t *self = *state;
    rx_destroy (&self);
    *state = NULL;
    return 0;
}

void
rx_destroy (rx_t **self_p)
{
    rx_t *self = self_p ? *self_p : NULL;
    if (self) {
        rl_client_destroy (&self->c1);
        rl_client_destroy (&self->c2);
        ring_destroy (&self->ring);
        harness_destroy (&self->h);
        free (self);
        *self_p = NULL;
    }
}

rl_client_t *
rx_client_for (void *arg, rl_id_t id)
{
    rx_t *self = arg;
    return rx_owner (self, id) == 0 ? self->c1 : self->c2;
}

int
rx_owner (const rx_t *self, rl_id_t id)
{
    return owner_of (self->ring, id);
}

//  Whether the child pid has exited (it is left to be reaped).
static bool
s_exited (pid_t pid)
{
    siginfo_t info = {0};
    return pid > 0 && waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
           && info.si_pid == pid;
}

void
rx_arm (rx_t *self, const char *failpoints, const char *file_name)
{
    int n = snprintf (self->fp_file, sizeof self->fp_file, "%s/%s", harness_dir (self->h),
                      file_name);
    assert_true (n > 0 && (size_t) n < sizeof self->fp_file);
    n = snprintf (self->fp_env, sizeof self->fp_env, "RL_FAILPOINTS=%s", failpoints);
    assert_true (n > 0 && (size_t) n < sizeof self->fp_env);
    snprintf (self->fp_file_env, sizeof self->fp_file_env, "RL_FAILPOINT_FILE=%s", self->fp_file);
}

int
rx_spawn (rx_t *self, tk_shard_t *shard, bool armed)
{
    shard->env[0] = armed ? self->fp_env : NULL;
    shard->env[1] = armed ? self->fp_file_env : NULL;
    shard->env[2] = NULL;
    assert_true (tk_shard_spawn (self->h, shard) > 0);
    shard->env[0] = NULL;
    int64_t ready_by = zclock_mono () + TK_READY_TIMEOUT_MS;
    while (!s_exited (shard->pid) && !tk_wait_ready (shard->endpoint, 50)) {
        if (zclock_mono () > ready_by) {
            harness_keep (self->h);
            fail_msg ("%s (%s) did not start", shard->name, shard->data_dir);
        }
    }
    int wstatus = -1;
    if (s_exited (shard->pid)) {
        assert_int_equal (harness_wait_exit (self->h, shard->pid, 1000, &wstatus), 0);
        shard->pid = -1;
    }
    return wstatus;
}

void
rx_s1_args (rx_t *self, tk_shard_t *shard, const tk_shard_t *standby, const tk_shard_t *of)
{
    memset (shard->args, 0, sizeof shard->args);
    shard->args[0] = "--config";
    shard->args[1] = self->config;
    if (standby) {
        shard->args[2] = "--standby";
        shard->args[3] = (char *) standby->endpoint;
        shard->args[4] = "--repl-timeout-ms";
        shard->args[5] = RX_REPL_TIMEOUT_MS;
    } else if (of) {
        shard->args[2] = "--standby-of";
        shard->args[3] = (char *) of->endpoint;
    }
}

//  The fast two-phase timers of every shard of the cluster.
static void
s_write_config (rx_t *self)
{
    snprintf (self->config, sizeof self->config, "%s/twophase.conf", harness_dir (self->h));
    FILE *f = fopen (self->config, "w");
    assert_non_null (f);
    //  A checkpoint writes its accounts one at a time: a crash, a seed or
    //  a promotion may come between two of its pieces.
    fputs ("prepare-timeout-ms = 300\nquery-after-ms = 200\nretry-min-ms = 20\n"
           "retry-max-ms = 200\ntick-ms = 5\ncheckpoint-piece-accounts = 1\n",
           f);
    fclose (f);
}

void
rx_start (rx_t *self, const char *test, uint32_t ledger, uint64_t tag_from,
          long checkpoint_transfers)
{
    harness_t *h = self->h;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("%s: RL_SEED=%lu\n", test, (unsigned long) seed);
    self->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    self->ledger = ledger;
    self->checkpoint_transfers = checkpoint_transfers;
    s_write_config (self);
    tk_shard_init (h, &self->primary, "s1");
    snprintf (self->primary.data_dir, sizeof self->primary.data_dir, "%s/s1-first",
              harness_dir (h));
    tk_shard_init (h, &self->s2, "s2");
    self->ring = ring_new (1);
    assert_non_null (self->ring);
    assert_int_equal (ring_add_shard (self->ring, "s1", self->primary.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_add_shard (self->ring, "s2", self->s2.endpoint, 1.0), RING_OK);
    snprintf (self->ring_file, sizeof self->ring_file, "%s/cluster.ring", harness_dir (h));
    assert_int_equal (ring_save_file (self->ring, self->ring_file), RING_OK);
    tk_shard_t *both[] = {&self->primary, &self->s2};
    for (size_t i = 0; i < 2; i++) {
        snprintf (both[i]->ring_file, sizeof both[i]->ring_file, "%s", self->ring_file);
        both[i]->durability = "manual-wal";
        both[i]->checkpoint_transfers = checkpoint_transfers;
        rx_s1_args (self, both[i], NULL, NULL);
        if (rx_spawn (self, both[i], false) != -1) {
            harness_keep (h);
            fail_msg ("%s died at its start", both[i]->name);
        }
    }
    self->c1 = rl_client_new (self->primary.endpoint);
    self->c2 = rl_client_new (self->s2.endpoint);
    for (self->tag = tag_from;; self->tag++) {
        bool ok = true;
        for (uint64_t n = 1; n <= RX_ACCOUNTS && ok; n++) {
            ok = rx_owner (self, tk_id (n, self->tag)) == (n <= 4 ? 0 : 1);
        }
        if (ok) {
            break;
        }
    }
    for (uint64_t n = 1; n <= RX_ACCOUNTS; n++) {
        rl_account_t a = tk_account (n, self->tag, ledger, 0);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_accounts_retry (rx_client_for (self, a.id), &a, 1, &r,
                                                           RX_CALL_TIMEOUT_MS, 10),
                          0);
        assert_int_equal (r.result, RL_OK);
    }
    tk_model_init (&self->model, self->tag, RX_ACCOUNTS);
    self->next_id = 1000;
}

void
rx_standby_init (rx_t *self, const char *dir_name)
{
    harness_t *h = self->h;
    tk_shard_init (h, &self->standby, "s1");
    snprintf (self->standby.data_dir, sizeof self->standby.data_dir, "%s/%s", harness_dir (h),
              dir_name);
    snprintf (self->standby.ring_file, sizeof self->standby.ring_file, "%s", self->ring_file);
    self->standby.durability = "manual-wal";
    self->standby.checkpoint_transfers = self->checkpoint_transfers;
    rx_s1_args (self, &self->standby, NULL, &self->primary);
    rx_s1_args (self, &self->primary, &self->standby, NULL);
}

void
rx_fail_over (rx_t *self)
{
    rx_wait_state (self->standby.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
    ring_t *next = ring_dup (self->ring);
    assert_non_null (next);
    ring_set_epoch (next, ring_epoch (self->ring) + 1);
    assert_int_equal (ring_set_endpoint (next, "s1", self->standby.endpoint), RING_OK);
    rx_load_ring (self->standby.endpoint, next);
    rx_load_ring (self->s2.endpoint, next);
    ring_destroy (&self->ring);
    self->ring = next;
    self->primary = self->standby; //  the primary from now on
    self->standby.pid = -1;
    rl_client_destroy (&self->c1);
    self->c1 = rl_client_new (self->primary.endpoint);
}

//  Account k (0-based) of shard s: 1..4 on s1, 5..8 on s2.
static rl_id_t
s_acct (const rx_t *self, int s, uint64_t k)
{
    return tk_id (1 + (uint64_t) s * 4 + k % 4, self->tag);
}

static size_t
s_add (rx_t *self, rx_kind_t kind, rl_transfer_t t, size_t pending)
{
    assert_true (self->count < RX_RECORDS_MAX);
    self->recs[self->count] = (rx_rec_t){
        .t = t, .kind = kind, .pending = pending, .result = TK_OUTCOME_UNKNOWN};
    return self->count++;
}

size_t
rx_plain (rx_t *self, int from, int to)
{
    rl_transfer_t t = tk_transfer (tk_id (self->next_id++, self->tag),
                                   s_acct (self, from, rl_rand_next (&self->rng)),
                                   s_acct (self, to, rl_rand_next (&self->rng)),
                                   1 + rl_rand_next (&self->rng) % 50, self->ledger);
    if (t.debit_account_id.lo == t.credit_account_id.lo) {
        t.credit_account_id = s_acct (self, to, t.credit_account_id.lo);
    }
    return s_add (self, RX_PLAIN, t, 0);
}

size_t
rx_pending (rx_t *self, int from, int to, uint32_t timeout_s)
{
    size_t i = rx_plain (self, from, to);
    self->recs[i].kind = RX_PENDING;
    self->recs[i].t.flags = RL_TRANSFER_PENDING;
    self->recs[i].t.timeout = timeout_s;
    self->recs[i].t.amount += 100;
    return i;
}

size_t
rx_resolve (rx_t *self, size_t p, bool post)
{
    const rl_transfer_t *pt = &self->recs[p].t;
    rl_transfer_t t = {.id = tk_id (self->next_id++, self->tag),
                       .debit_account_id = pt->debit_account_id,
                       .pending_id = pt->id,
                       .amount = post ? pt->amount - 1 - rl_rand_next (&self->rng) % 50 : 0,
                       .flags = post ? RL_TRANSFER_POST_PENDING_TRANSFER
                                     : RL_TRANSFER_VOID_PENDING_TRANSFER};
    return s_add (self, post ? RX_POST : RX_VOID, t, p);
}

bool
rx_resolved (const rx_t *self, size_t p, bool open_too)
{
    for (size_t j = p + 1; j < self->count; j++) {
        const rx_rec_t *r = &self->recs[j];
        if ((r->kind == RX_POST || r->kind == RX_VOID) && r->pending == p
            && (r->result == RL_OK || (open_too && r->result == TK_OUTCOME_UNKNOWN))) {
            return true;
        }
    }
    return false;
}

bool
rx_open_pending (const rx_t *self, int from, size_t *p)
{
    for (size_t i = 0; i < self->count; i++) {
        const rx_rec_t *r = &self->recs[i];
        if (r->kind == RX_PENDING && r->result == RL_OK && r->t.timeout == RX_LONG_TIMEOUT_S
            && rx_owner (self, r->t.debit_account_id) == from && !rx_resolved (self, i, true)) {
            *p = i;
            return true;
        }
    }
    return false;
}

void
rx_answered (rx_t *self, size_t i, uint32_t result, uint64_t timestamp)
{
    rx_rec_t *r = &self->recs[i];
    if (result == RL_EXISTS) {
        fail_msg ("record %zu: exists on its first send", i);
    }
    if (result != RL_OK && !tk_result_is_business (result)) {
        return; //  the outcome is open
    }
    r->result = result;
    r->timestamp = result == RL_OK ? timestamp : 0;
    if (result != RL_OK) {
        return;
    }
    if (r->kind == RX_PLAIN) {
        tk_model_apply (&self->model, &r->t);
    } else if (r->kind == RX_POST) {
        rl_transfer_t posted = self->recs[r->pending].t;
        posted.amount = r->t.amount;
        tk_model_apply (&self->model, &posted);
    }
}

void
rx_send (rx_t *self, rl_client_t *client, size_t first, size_t n)
{
    rl_transfer_t ts[RX_BATCH_MAX];
    rl_result_rec_t rs[RX_BATCH_MAX];
    assert_true (n <= RX_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        ts[i] = self->recs[first + i].t;
    }
    assert_int_equal (rl_client_create_transfers_retry (client, ts, n, rs, RX_CALL_TIMEOUT_MS, 10),
                      0);
    for (size_t i = 0; i < n; i++) {
        if (rs[i].result != RL_OK && rs[i].result != RL_EXISTS) {
            fail_msg ("record %zu: %s", first + i, rl_result_name (rs[i].result));
        }
        rx_answered (self, first + i, RL_OK, rs[i].timestamp);
    }
}

bool
rx_send_batch (rx_t *self, rl_client_t *client, size_t first, size_t n, uint64_t *req)
{
    rl_transfer_t ts[RX_BATCH_MAX];
    assert_true (n <= RX_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        ts[i] = self->recs[first + i].t;
    }
    return rl_client_send_transfers (client, ts, n, req) == 0;
}

void
rx_recv_batch (rx_t *self, rl_client_t *client, size_t first, size_t n, uint64_t req, pid_t armed,
               int wait_ms)
{
    rl_header_t rh;
    uint8_t *body = NULL;
    size_t size = 0;
    int rc = RL_CLIENT_TIMEOUT;
    for (int64_t until = zclock_mono () + wait_ms;
         rc == RL_CLIENT_TIMEOUT && zclock_mono () < until;) {
        rc = rl_client_recv (client, 20, &rh, &body, &size);
        if (rc == RL_CLIENT_TIMEOUT && s_exited (armed)) {
            break;
        }
    }
    if (rc == 0 && rh.request_id == req && rh.status == RL_STATUS_OK
        && size == n * RL_RESULT_SIZE) {
        for (size_t i = 0; i < n; i++) {
            rl_result_rec_t r;
            codec_decode_result (body + i * RL_RESULT_SIZE, &r);
            assert_int_equal (r.index, i);
            rx_answered (self, first + i, r.result, r.timestamp);
        }
    } else if (rc == RL_CLIENT_TIMEOUT) {
        rl_client_cancel (client, req); //  unknown: settled after the recovery
    }
    free (body);
}

void
rx_round (rx_t *self, unsigned round, pid_t armed, tk_shard_t *kill, int wait_ms)
{
    size_t first[2], n[2];
    for (int s = 0; s < 2; s++) {
        first[s] = self->count;
        rx_plain (self, s, 1 - s);
        rx_plain (self, s, 1 - s);
        rx_plain (self, s, s);
        size_t p;
        if (rx_open_pending (self, s, &p)) {
            rx_resolve (self, p, (round + (unsigned) s) % 2 == 0);
        }
        if (round % 2 == (unsigned) s) {
            rx_pending (self, s, 1 - s, RX_LONG_TIMEOUT_S);
        }
        n[s] = self->count - first[s];
    }
    uint64_t req[2];
    bool sent[2];
    rl_client_t *clients[2] = {self->c1, self->c2};
    for (int s = 0; s < 2; s++) {
        sent[s] = rx_send_batch (self, clients[s], first[s], n[s], &req[s]);
    }
    if (kill) {
        tk_shard_stop (self->h, kill, SIGKILL);
    }
    for (int s = 0; s < 2; s++) {
        if (sent[s]) {
            rx_recv_batch (self, clients[s], first[s], n[s], req[s], armed, wait_ms);
        }
    }
}

uint32_t
rx_state (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_status_rec_t st = {.state = UINT32_MAX};
    int rc = rl_client_status (c, &st, 300);
    rl_client_destroy (&c);
    return rc == 0 ? st.state : UINT32_MAX;
}

void
rx_wait_state (const char *endpoint, uint32_t state, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    uint32_t now = UINT32_MAX;
    while ((now = rx_state (endpoint)) != state && zclock_mono () < deadline) {
        zclock_sleep (10);
    }
    if (now != state) {
        fail_msg ("%s: state %u, want %u", endpoint, now, state);
    }
}

void
rx_load_ring (const char *endpoint, const ring_t *ring)
{
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    rl_client_t *c = rl_client_new (endpoint);
    assert_int_equal (rl_client_load_ring (c, blob, size, RX_CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    free (blob);
}

void
rx_quiet (rx_t *self)
{
    rl_client_t *clients[2] = {self->c1, self->c2};
    if (!tk_wait_quiet (clients, 2, RX_QUIET_TIMEOUT_MS)) {
        harness_keep (self->h);
        fail_msg ("the shards did not settle: live attempts or prepared records remain");
    }
}

//  Every record looked up on its debit shard: an acknowledged one is
//  there (at its answer's timestamp, with `timestamps`), a failed one is
//  not, an unknown one found is applied. Counts the unknown and found.
static void
s_look_up (rx_t *self, size_t *unknown, size_t *applied)
{
    for (size_t i = 0; i < self->count; i++) {
        rx_rec_t *r = &self->recs[i];
        rl_transfer_t found;
        rl_client_t *c = rx_client_for (self, r->t.debit_account_id);
        assert_int_equal (rl_client_lookup_transfers (c, &r->t.id, 1, &found, RX_CALL_TIMEOUT_MS),
                          0);
        if (r->result == RL_OK
            && (found.timestamp == 0 || (self->timestamps && found.timestamp != r->timestamp))) {
            harness_keep (self->h);
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
        (*unknown)++;
        if (found.timestamp != 0) {
            (*applied)++;
            assert_int_equal (found.amount, r->t.amount ? r->t.amount : found.amount);
            rx_answered (self, i, RL_OK, found.timestamp);
        }
    }
}

void
rx_settle (rx_t *self)
{
    size_t unknown = 0, applied = 0;
    s_look_up (self, &unknown, &applied);
    //  Every record again, with its id: the original outcome, or (unknown
    //  and not found) executed now, once.
    for (size_t i = 0; i < self->count; i++) {
        rx_rec_t *r = &self->recs[i];
        rl_result_rec_t res;
        assert_int_equal (
            rl_client_create_transfers_retry (rx_client_for (self, r->t.debit_account_id), &r->t, 1,
                                              &res, RX_CALL_TIMEOUT_MS, 20),
            0);
        if (r->result == TK_OUTCOME_UNKNOWN) {
            if (res.result == RL_EXISTS) {
                fail_msg ("record %zu: not found, yet its retry says exists", i);
            }
            rx_answered (self, i, res.result, res.timestamp);
            assert_true (r->result != TK_OUTCOME_UNKNOWN);
            continue;
        }
        uint32_t want = r->result == RL_OK ? RL_EXISTS : r->result;
        if (res.result != want
            || (self->timestamps && want == RL_EXISTS && res.timestamp != r->timestamp)) {
            harness_keep (self->h);
            fail_msg ("record %zu (kind %d, id %lu): retry got %s at ts %lu, want %s at %lu", i,
                      r->kind, (unsigned long) r->t.id.lo, rl_result_name (res.result),
                      (unsigned long) res.timestamp, rl_result_name (want),
                      (unsigned long) r->timestamp);
        }
    }
    printf ("  %zu records, %zu unknown after the crash (%zu found applied)\n", self->count,
            unknown, applied);
}

//  The pending amounts the accounts must show: every acknowledged long
//  pending transfer not posted or voided (shorter ones expire).
static void
s_expected_pending (const rx_t *self, uint64_t *dp, uint64_t *cp)
{
    memset (dp, 0, (RX_ACCOUNTS + 1) * sizeof (uint64_t));
    memset (cp, 0, (RX_ACCOUNTS + 1) * sizeof (uint64_t));
    for (size_t i = 0; i < self->count; i++) {
        const rx_rec_t *r = &self->recs[i];
        if (r->kind != RX_PENDING || r->result != RL_OK || r->t.timeout != RX_LONG_TIMEOUT_S) {
            continue;
        }
        if (!rx_resolved (self, i, false)) {
            dp[r->t.debit_account_id.lo] += r->t.amount;
            cp[r->t.credit_account_id.lo] += r->t.amount;
        }
    }
}

void
rx_check_pending (rx_t *self, int wait_ms)
{
    uint64_t dp[RX_ACCOUNTS + 1], cp[RX_ACCOUNTS + 1];
    s_expected_pending (self, dp, cp);
    int64_t deadline = zclock_mono () + wait_ms;
    while (true) {
        bool same = true;
        char what[256] = "";
        for (uint64_t n = 1; n <= RX_ACCOUNTS && same; n++) {
            rl_id_t id = tk_id (n, self->tag);
            rl_account_t a;
            assert_int_equal (rl_client_lookup_accounts (rx_client_for (self, id), &id, 1, &a,
                                                         RX_CALL_TIMEOUT_MS),
                              0);
            if (a.debits_pending != dp[n] || a.credits_pending != cp[n]
                || a.debits_posted != self->model.debits[n]
                || a.credits_posted != self->model.credits[n]) {
                same = false;
                snprintf (what, sizeof what,
                          "account %lu: pending %lu/%lu want %lu/%lu, posted %lu/%lu want %lu/%lu",
                          (unsigned long) n, (unsigned long) a.debits_pending,
                          (unsigned long) a.credits_pending, (unsigned long) dp[n],
                          (unsigned long) cp[n], (unsigned long) a.debits_posted,
                          (unsigned long) a.credits_posted, (unsigned long) self->model.debits[n],
                          (unsigned long) self->model.credits[n]);
            }
        }
        if (same) {
            return;
        }
        if (zclock_mono () >= deadline) {
            harness_keep (self->h);
            fail_msg ("pending amounts: %s", what);
        }
        zclock_sleep (50);
    }
}

static void
s_audit (rl_client_t *client)
{
    rl_audit_rec_t audit;
    assert_int_equal (rl_client_audit (client, &audit, RX_CALL_TIMEOUT_MS), 0);
    if (!audit.ok) {
        fail_msg ("audit: %s", audit.message);
    }
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (client, &st, RX_CALL_TIMEOUT_MS), 0);
    assert_int_equal (st.alarms, 0);
}

void
rx_finish (rx_t *self, int pending_wait_ms)
{
    size_t p;
    for (int s = 0; s < 2; s++) {
        while (rx_open_pending (self, s, &p)) {
            size_t i = rx_resolve (self, p, p % 2 == 0);
            rx_send (self, s == 0 ? self->c1 : self->c2, i, 1);
        }
    }
    rx_quiet (self);
    rx_check_pending (self, pending_wait_ms); //  nothing pending at all now
    tk_check_conservation_by (rx_client_for, self, &self->model, 4);
    s_audit (self->c1);
    s_audit (self->c2);
}
