/*  test_rebalance_kit.c: see test_rebalance_kit.h. */
#include "test_rebalance_kit.h"

#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "replkit.h"
#include "rl_rand.h"

uint16_t
rbk_account_flags (uint64_t n)
{
    if (n % 5 == 0) {
        return RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
    }
    return n % 7 == 0 ? RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS : 0;
}

void
rbk_load_init (rbk_load_t *self, rl_client_t *client, uint64_t tag, uint32_t ledger,
               size_t accounts, size_t max, uint64_t seed)
{
    assert_true (accounts >= 4 && accounts <= TK_ACCOUNTS_MAX);
    memset (self, 0, sizeof (*self));
    self->client = client;
    self->tag = tag;
    self->ledger = ledger;
    self->accounts = accounts;
    self->max = max;
    self->rng = seed;
    self->call_ms = RBK_CALL_MS;
    self->attempts = RBK_ATTEMPTS;
    self->sent = calloc (max, sizeof (rbk_sent_t));
    self->open = calloc (max, sizeof (size_t));
    assert_true (self->sent && self->open);
    tk_model_init (&self->model, tag, accounts);
}

void
rbk_load_destroy (rbk_load_t *self)
{
    free (self->sent);
    free (self->open);
    self->sent = NULL;
    self->open = NULL;
}

//  Creates accounts 1..count of tag on ledger, with rbk_account_flags when
//  `flags`, without flags otherwise; each must be ok.
static void
s_create_accounts (rl_client_t *client, uint64_t tag, uint32_t ledger, size_t count, bool flags)
{
    assert_true (count <= TK_ACCOUNTS_MAX);
    rl_account_t accounts[TK_ACCOUNTS_MAX];
    static rl_result_rec_t results[TK_ACCOUNTS_MAX];
    for (size_t base = 0; base < count; base += RL_BATCH_RECORDS_MAX) {
        size_t n = count - base < RL_BATCH_RECORDS_MAX ? count - base : RL_BATCH_RECORDS_MAX;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = base + i + 1;
            accounts[i] = tk_account (k, tag, ledger, flags ? rbk_account_flags (k) : 0);
        }
        //  Up to 20 attempts: under the sanitizers a semi-synchronous
        //  primary whose standby was just seeded may stall a while.
        assert_int_equal (
            rl_client_create_accounts_retry (client, accounts, n, results, TK_TIMEOUT_MS, 20), 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal (results[i].result, RL_OK);
        }
    }
}

void
rbk_create_accounts (rbk_load_t *self)
{
    s_create_accounts (self->client, self->tag, self->ledger, self->accounts, true);
}

void
rbk_load_ring (rbk_load_t *self, const ring_t *ring)
{
    for (uint64_t n = 1; n <= self->accounts; n++) {
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (tk_id (n, self->tag), bytes);
        self->owner[n] = ring_lookup_id (ring, bytes);
        assert_true (self->owner[n] >= 0);
    }
}

void
rbk_load_ring_file (rbk_load_t *self, const char *path)
{
    char err[256];
    ring_t *ring = ring_load_file (path, err, sizeof err);
    if (!ring) {
        fail_msg ("%s: %s", path, err);
    }
    rbk_load_ring (self, ring);
    ring_destroy (&ring);
}

//  A credit account for `debit`: on its shard or on another one (by the
//  pairing ring); any other account when there is none such.
static uint64_t
s_partner (rbk_load_t *self, uint64_t debit, bool same)
{
    uint64_t start = 1 + rl_rand_next (&self->rng) % self->accounts;
    for (size_t k = 0; k < self->accounts; k++) {
        uint64_t c = 1 + (start - 1 + k) % self->accounts;
        if (c != debit && (self->owner[c] == self->owner[debit]) == same) {
            return c;
        }
    }
    return debit % self->accounts + 1;
}

//  Takes in the answers to a batch.
static void
s_answered (rbk_load_t *self, const size_t *index, const rl_result_rec_t *results, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        rbk_sent_t *s = &self->sent[index[k]];
        uint32_t r = results[k].result;
        assert_int_equal (s->result, RBK_OPEN);
        if (r == RL_OK || r == RL_EXISTS) {
            if (results[k].timestamp == 0) {
                fail_msg ("transfer %zu: %s without a timestamp", index[k], rl_result_name (r));
            }
            s->result = RL_OK;
            s->timestamp = results[k].timestamp;
            tk_model_apply (&self->model, &s->t);
        } else if (r == RL_EXCEEDS_CREDITS || r == RL_EXCEEDS_DEBITS) {
            s->result = r; //  a limit flag: burned, a retry must get it again
            self->failed++;
        } else if (tk_result_is_business (r)) {
            fail_msg ("transfer %zu: %s (only the limit failures can happen here)", index[k],
                      rl_result_name (r));
        } else {
            self->open[self->open_count++] = index[k];
        }
    }
}

void
rbk_load_once (rbk_load_t *self)
{
    rl_transfer_t batch[RBK_BATCH];
    size_t index[RBK_BATCH];
    size_t n = 0;
    while (n < RBK_BATCH / 2 && self->open_count > 0) {
        index[n] = self->open[--self->open_count];
        batch[n] = self->sent[index[n]].t;
        self->resent++;
        n++;
    }
    while (n < RBK_BATCH && self->count < self->max) {
        uint64_t debit = 1 + rl_rand_next (&self->rng) % self->accounts;
        bool same = rl_rand_next (&self->rng) % 2 == 0;
        uint64_t credit = s_partner (self, debit, same);
        if (self->owner[credit] == self->owner[debit]) {
            self->same_shard++;
        } else {
            self->cross_shard++;
        }
        rbk_sent_t *s = &self->sent[self->count];
        s->t = tk_transfer (tk_id (self->count + 1, self->tag + 1), tk_id (debit, self->tag),
                            tk_id (credit, self->tag), 1 + rl_rand_next (&self->rng) % 9,
                            self->ledger);
        s->result = RBK_OPEN;
        index[n] = self->count++;
        batch[n++] = s->t;
    }
    if (n == 0) {
        return;
    }
    rl_result_rec_t results[RBK_BATCH];
    int rc = rl_client_create_transfers_retry (self->client, batch, n, results, self->call_ms,
                                               self->attempts);
    if (rc != 0 && rc != RL_CLIENT_INCOMPLETE) {
        fail_msg ("create_transfers through the router: %s", rl_client_strerror (rc));
    }
    s_answered (self, index, results, n);
}

void
rbk_settle (rbk_load_t *self)
{
    int64_t deadline = zclock_mono () + RBK_SETTLE_MS;
    size_t keep = self->max;
    self->max = self->count; //  no new transfers
    while (self->open_count > 0 && zclock_mono () < deadline) {
        rbk_load_once (self);
    }
    self->max = keep;
    if (self->open_count > 0) {
        fail_msg ("%zu outcomes still open after %d ms", self->open_count, RBK_SETTLE_MS);
    }
}

//  Exactly once: every applied id is found with its fields and its
//  original timestamp, no failed one is.
static void
s_check_lookup (rbk_load_t *self)
{
    static rl_id_t ids[RL_BATCH_RECORDS_MAX];
    static rl_transfer_t found[RL_BATCH_RECORDS_MAX];
    for (size_t base = 0; base < self->count; base += RL_BATCH_RECORDS_MAX) {
        size_t n = self->count - base < RL_BATCH_RECORDS_MAX ? self->count - base
                                                             : RL_BATCH_RECORDS_MAX;
        for (size_t i = 0; i < n; i++) {
            ids[i] = self->sent[base + i].t.id;
        }
        assert_int_equal (rl_client_lookup_transfers (self->client, ids, n, found, TK_TIMEOUT_MS),
                          0);
        for (size_t i = 0; i < n; i++) {
            const rbk_sent_t *s = &self->sent[base + i];
            const rl_transfer_t *f = &found[i];
            if (s->result != RL_OK) {
                if (f->timestamp != 0) {
                    fail_msg ("transfer %zu failed (%s) but is found", base + i,
                              rl_result_name (s->result));
                }
                continue;
            }
            if (f->timestamp != s->timestamp || f->amount != s->t.amount
                || f->debit_account_id.lo != s->t.debit_account_id.lo
                || f->credit_account_id.lo != s->t.credit_account_id.lo) {
                fail_msg ("transfer %zu: found ts %" PRIu64 " amount %" PRIu64
                          ", applied at ts %" PRIu64 " amount %" PRIu64,
                          base + i, f->timestamp, f->amount, s->timestamp, s->t.amount);
            }
        }
    }
}

//  Every id sent again: its original outcome, nothing applied.
static void
s_check_replay (rbk_load_t *self)
{
    rl_transfer_t batch[RBK_REPLAY_MAX];
    rl_result_rec_t results[RBK_REPLAY_MAX];
    for (size_t base = 0; base < self->count; base += RBK_REPLAY_MAX) {
        size_t n = self->count - base < RBK_REPLAY_MAX ? self->count - base : RBK_REPLAY_MAX;
        for (size_t i = 0; i < n; i++) {
            batch[i] = self->sent[base + i].t;
        }
        int rc = rl_client_create_transfers_retry (self->client, batch, n, results, TK_TIMEOUT_MS,
                                                   5);
        if (rc != 0) {
            fail_msg ("replay of transfers %zu..%zu: %s", base, base + n - 1,
                      rl_client_strerror (rc));
        }
        for (size_t i = 0; i < n; i++) {
            const rbk_sent_t *s = &self->sent[base + i];
            uint32_t want = s->result == RL_OK ? RL_EXISTS : s->result;
            uint64_t want_ts = s->result == RL_OK ? s->timestamp : 0;
            bool ts_ok = s->result != RL_OK || results[i].timestamp == want_ts;
            if (results[i].result != want || !ts_ok) {
                fail_msg ("replay of transfer %zu: %s at ts %" PRIu64 ", want %s at ts %" PRIu64,
                          base + i, rl_result_name (results[i].result), results[i].timestamp,
                          rl_result_name (want), want_ts);
            }
        }
    }
}

void
rbk_check_all (rbk_load_t *self, const char *name, const char *const *removed, size_t removed_count,
               uint64_t ok_min)
{
    rbk_settle (self);
    //  The mix the issue asks for happened.
    assert_true (self->same_shard > 0 && self->cross_shard > 0);
    assert_true (self->failed > 0);
    s_check_lookup (self);
    s_check_replay (self);
    //  The replay applied nothing: the balances still equal the model.
    tk_check_conservation_also (self->client, &self->model, ok_min, removed, removed_count);
    fprintf (stderr,
             "%s: %zu transfers (%" PRIu64 " same-shard, %" PRIu64 " cross-shard), %" PRIu64
             " applied, %" PRIu64 " limit failures, %" PRIu64
             " resent while open; exactly once, replayed, conserved\n",
             name, self->count, self->same_shard, self->cross_shard, self->model.ok, self->failed,
             self->resent);
}

pid_t
rbk_tool_spawn (harness_t *h, const char *failpoints, const char *const *args)
{
    return rbk_tool_spawn_env (h, failpoints, NULL, args);
}

pid_t
rbk_tool_spawn_env (harness_t *h, const char *failpoints, const char *extra_env,
                    const char *const *args)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/tools/rebalance", harness_bin_dir ());
    char *argv[32];
    size_t n = 0;
    argv[n++] = path;
    for (size_t i = 0; args[i]; i++) {
        assert_true (n < 30);
        argv[n++] = (char *) args[i];
    }
    argv[n] = NULL;
    char env_fp[512];
    snprintf (env_fp, sizeof env_fp, "RL_FAILPOINTS=%s", failpoints ? failpoints : "");
    char *env[] = {env_fp, (char *) extra_env, NULL};
    pid_t pid = harness_spawn (h, "rebalance", argv, env);
    assert_true (pid > 0);
    return pid;
}

int
rbk_tool_wait (harness_t *h, const char *name, pid_t pid, int max_ms)
{
    int ws = 0;
    if (harness_wait_exit (h, pid, max_ms, &ws) != 0) {
        harness_dump_log (h, name);
        fail_msg ("%s did not end within %d ms", name, max_ms);
    }
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}

char *
rbk_path (harness_t *h, const char *name, char *out, size_t size)
{
    char *p = harness_path (h, name);
    assert_non_null (p);
    snprintf (out, size, "%s", p);
    free (p);
    return out;
}

void
rbk_cluster_start (rbk_cluster_t *self, const char *name, const char *durability)
{
    rbk_cluster_start_with (self, name, durability, NULL, NULL);
}

void
rbk_cluster_start_with (rbk_cluster_t *self, const char *name, const char *durability,
                        rbk_shard_hook_fn *hook, void *arg)
{
    memset (self, 0, sizeof (*self));
    self->h = harness_new (name);
    assert_non_null (self->h);
    snprintf (self->cert, sizeof self->cert, "%s/private/tester.key_secret", tk_keys_dir (self->h));
    ring_t *ring = ring_new (1);
    assert_non_null (ring);
    const char *names[RBK_SHARDS] = {"s1", "s2", "s3", "s4"};
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        tk_shard_init (self->h, &self->shards[i], names[i]);
        self->shards[i].durability = durability;
        if (i < 3) {
            assert_int_equal (ring_add_shard (ring, names[i], self->shards[i].endpoint, 1.0),
                              RING_OK);
            assert_int_equal (ring_set_key (ring, names[i], tk_key (self->h, "shard", names[i])),
                              RING_OK);
        }
    }
    rbk_path (self->h, "r0.ring", self->r0, sizeof self->r0);
    assert_int_equal (ring_save_file (ring, self->r0), RING_OK);
    assert_int_equal (ring_add_shard (ring, "s4", self->shards[3].endpoint, 1.0), RING_OK);
    assert_int_equal (ring_set_key (ring, "s4", tk_key (self->h, "shard", "s4")), RING_OK);
    ring_set_epoch (ring, 2);
    rbk_path (self->h, "r1.ring", self->r1, sizeof self->r1);
    assert_int_equal (ring_save_file (ring, self->r1), RING_OK);
    ring_destroy (&ring);
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        snprintf (self->shards[i].ring_file, sizeof self->shards[i].ring_file, "%s", self->r0);
        if (hook) {
            hook (self, i, arg);
        }
        assert_true (tk_shard_start (self->h, &self->shards[i]) > 0);
    }
    rk_router_init (&self->router, "router1");
    snprintf (self->router.ring_file, sizeof self->router.ring_file, "%s", self->r0);
    self->router.refresh_ms = 200;
    assert_true (rk_router_start (self->h, &self->router) > 0);
    self->client = rl_client_new (self->router.endpoint);
    assert_non_null (self->client);
}

void
rbk_cluster_stop (rbk_cluster_t *self)
{
    rl_client_destroy (&self->client);
    if (self->router.pid > 0) {
        rk_router_stop (self->h, &self->router);
    }
    for (size_t i = 0; i < RBK_SHARDS; i++) {
        if (self->shards[i].pid > 0) {
            tk_shard_stop (self->h, &self->shards[i], SIGTERM);
        }
    }
    harness_destroy (&self->h);
}

void
rbk_create_plain_accounts (rl_client_t *client, uint64_t tag, uint32_t ledger, size_t count)
{
    s_create_accounts (client, tag, ledger, count, false);
}

//  A fail-over -------------------------------------------------------------------

void
rbk_standby_start (rbk_cluster_t *cluster, size_t index, tk_shard_t *standby,
                   const char *repl_timeout_ms)
{
    assert_true (index < RBK_SHARDS);
    tk_shard_t *primary = &cluster->shards[index];
    tk_shard_init (cluster->h, standby, primary->name);
    snprintf (standby->data_dir, sizeof standby->data_dir, "%s/%s-standby",
              harness_dir (cluster->h), primary->name);
    snprintf (standby->ring_file, sizeof standby->ring_file, "%s", primary->ring_file);
    standby->durability = "sync"; //  a standby syncs what it acknowledges
    standby->args[0] = "--standby-of";
    standby->args[1] = primary->endpoint;
    assert_true (tk_shard_start (cluster->h, standby) > 0);
    primary->args[0] = "--standby";
    primary->args[1] = standby->endpoint;
    primary->args[2] = "--repl-timeout-ms";
    primary->args[3] = (char *) repl_timeout_ms;
}

void
rbk_wait_streaming (const char *endpoint)
{
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    for (;;) {
        rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
        size_t n = rk_repl (endpoint, recs);
        for (size_t i = 0; i < n; i++) {
            if (recs[i].role == RL_REPL_LINK && recs[i].state == RL_REPL_STREAMING) {
                return;
            }
        }
        if (zclock_mono () > deadline) {
            fail_msg ("%s does not stream to its standby", endpoint);
        }
        zclock_sleep (20);
    }
}

int
rbk_rlctl (rbk_cluster_t *cluster, size_t via, const char *log, char **out_p, ...)
{
    assert_true (via < RBK_SHARDS);
    static char rlctl[512], cert[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/tester.key_secret", tk_keys_dir (cluster->h));
    snprintf (key, sizeof key, "%s", tk_key (cluster->h, "shard", cluster->shards[via].name));
    char *argv[24] = {rlctl,    "--connect",    cluster->shards[via].endpoint,
                      "--cert", cert,           "--server-key",
                      key,      "--timeout-ms", "15000"};
    size_t argc = 9;
    va_list ap;
    va_start (ap, out_p);
    const char *arg;
    while ((arg = va_arg (ap, const char *)) && argc < 23) {
        argv[argc++] = (char *) arg;
    }
    va_end (ap);
    argv[argc] = NULL;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (cluster->h), log);
    unlink (path);
    pid_t pid = harness_spawn (cluster->h, log, argv, NULL);
    assert_true (pid > 0);
    int ws = 0;
    assert_int_equal (harness_wait_exit (cluster->h, pid, RBK_RLCTL_WAIT_MS, &ws), 0);
    *out_p = harness_read_file (path, NULL);
    assert_non_null (*out_p);
    return WIFEXITED (ws) ? WEXITSTATUS (ws) : -WTERMSIG (ws);
}
