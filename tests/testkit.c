/*  testkit.c: see testkit.h. */
#include "testkit.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "check.h"
#include "codec.h"
#include "keys.h"
#include "ring.h"
#include "rl_rand.h"

//  Security ------------------------------------------------------------------------

static char s_keys_dir[PATH_MAX]; //  the harness whose keys the client library uses
static zcert_t *s_tester;         //  the test's keypair (admin and client roles)

const char *
tk_keys_dir (harness_t *h)
{
    char dir[PATH_MAX];
    snprintf (dir, sizeof dir, "%s/keys", harness_dir (h));
    if (strcmp (dir, s_keys_dir) == 0 && s_tester) {
        return s_keys_dir;
    }
    rl_client_clear_curve ();
    zcert_destroy (&s_tester);
    snprintf (s_keys_dir, sizeof s_keys_dir, "%s", dir);
    char err[768];
    char secret[PATH_MAX + 64];
    snprintf (secret, sizeof secret, "%s/private/tester.key_secret", dir);
    if (access (secret, F_OK) != 0) {
        assert_int_equal (rl_keygen (dir, "admin", "tester", NULL, err, sizeof err), 0);
        //  The same public certificate in every role folder: the tests send
        //  every operation (test_roles sends them with keys of one role).
        static const char *roles[] = {"client", "router", "shard"};
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
            char from[PATH_MAX + 64], to[PATH_MAX + 64];
            snprintf (to, sizeof to, "%s/%s", dir, roles[r]);
            assert_true (mkdir (to, 0755) == 0 || errno == EEXIST);
            snprintf (from, sizeof from, "%s/admin/tester.key", dir);
            snprintf (to, sizeof to, "%s/%s/tester.key", dir, roles[r]);
            assert_int_equal (link (from, to), 0);
        }
    }
    s_tester = rl_cert_load (secret, err, sizeof err);
    if (!s_tester) {
        fail_msg ("tester key: %s", err);
    }
    rl_client_set_curve (s_tester, NULL);
    return s_keys_dir;
}

void
tk_curve_restore (void)
{
    assert_non_null (s_tester);
    rl_client_set_curve (s_tester, NULL);
}

const char *
tk_key (harness_t *h, const char *role, const char *name)
{
    static char key[RL_KEY_TEXT_SIZE];
    const char *dir = tk_keys_dir (h);
    char path[PATH_MAX + 128];
    char err[768];
    snprintf (path, sizeof path, "%s/%s/%s.key", dir, role, name);
    if (access (path, F_OK) != 0) {
        assert_int_equal (rl_keygen (dir, role, name, NULL, err, sizeof err), 0);
    }
    if (rl_key_resolve (path, key, err, sizeof err) != 0) {
        fail_msg ("key of %s %s: %s", role, name, err);
    }
    return key;
}

void
tk_connect (void *dealer, const char *endpoint)
{
    assert_int_equal (rl_client_connect (dealer, endpoint), 0);
}

void *
tk_dealer_as (harness_t *h, const char *name, const char *server, const char *endpoint)
{
    char server_key[RL_KEY_TEXT_SIZE];
    snprintf (server_key, sizeof server_key, "%s", tk_key (h, "shard", server));
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/private/%s.key_secret", tk_keys_dir (h), name);
    char err[768];
    zcert_t *cert = rl_cert_load (path, err, sizeof err);
    if (!cert) {
        fail_msg ("%s", err);
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    zcert_apply (cert, dealer);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (dealer, server_key);
    assert_int_equal (zsock_connect (dealer, "%s", endpoint), 0);
    return dealer;
}

void
tk_shard_init (harness_t *h, tk_shard_t *shard, const char *name)
{
    memset (shard, 0, sizeof (*shard));
    snprintf (shard->name, sizeof (shard->name), "%s", name);
    shard->port = harness_free_port ();
    assert (shard->port > 0);
    snprintf (shard->endpoint, sizeof (shard->endpoint), "tcp://127.0.0.1:%d", shard->port);
    snprintf (shard->data_dir, sizeof (shard->data_dir), "%s/%s", harness_dir (h), name);
    shard->durability = "sync";
    shard->pid = -1;
    (void) tk_key (h, "shard", name); //  before any process starts: in every key set
}

bool
tk_log_contains (harness_t *h, const char *name, const char *needle)
{
    char file[128];
    snprintf (file, sizeof (file), "%s.log", name);
    char *path = harness_path (h, file);
    char *text = path ? harness_read_file (path, NULL) : NULL;
    bool found = text && strstr (text, needle);
    free (text);
    free (path);
    return found;
}

size_t
tk_log_count (harness_t *h, const char *name, const char *needle)
{
    assert (needle && *needle);
    char file[128];
    snprintf (file, sizeof (file), "%s.log", name);
    char *path = harness_path (h, file);
    char *text = path ? harness_read_file (path, NULL) : NULL;
    size_t n = 0;
    for (const char *at = text; at && (at = strstr (at, needle)); at += strlen (needle)) {
        n++;
    }
    free (text);
    free (path);
    return n;
}

bool
tk_wait_ready (const char *endpoint, int timeout_ms)
{
    rl_client_t *client = rl_client_new (endpoint);
    if (!client) {
        return false;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    bool ready = false;
    while (!ready && zclock_mono () < deadline) {
        rl_status_rec_t status;
        ready = rl_client_status (client, &status, 200) == 0;
    }
    rl_client_destroy (&client);
    return ready;
}

//  Waits for status answers; false as soon as the process exits.
static bool
s_wait_ready_or_exit (harness_t *h, tk_shard_t *shard, int *wstatus)
{
    rl_client_t *client = rl_client_new (shard->endpoint);
    assert (client);
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    bool ready = false;
    while (!ready && zclock_mono () < deadline) {
        if (harness_wait_exit (h, shard->pid, 0, wstatus) == 0) {
            shard->pid = -1;
            break;
        }
        rl_status_rec_t status;
        ready = rl_client_status (client, &status, 200) == 0
                && strcmp (status.name, shard->name) == 0;
    }
    rl_client_destroy (&client);
    return ready;
}

//  The shard's command line (argv: 32 slots, NULL-terminated).
static void
s_shard_argv (harness_t *h, tk_shard_t *shard, char *path, char *checkpoint, char **argv)
{
    int n = 0;
    argv[n++] = path;
    argv[n++] = "--name";
    argv[n++] = shard->name;
    argv[n++] = "--bind";
    argv[n++] = shard->endpoint;
    argv[n++] = "--data";
    argv[n++] = shard->data_dir;
    argv[n++] = "--durability";
    argv[n++] = (char *) shard->durability;
    if (shard->insecure) {
        argv[n++] = "--insecure";
    } else {
        argv[n++] = "--keys";
        argv[n++] = (char *) tk_keys_dir (h);
        assert_int_equal (
            rl_client_add_server_key (shard->endpoint, tk_key (h, "shard", shard->name)), 0);
    }
    if (shard->ring_file[0]) {
        argv[n++] = "--ring";
        argv[n++] = shard->ring_file;
    }
    if (shard->checkpoint_transfers > 0) {
        argv[n++] = "--checkpoint-transfers";
        argv[n++] = checkpoint;
    }
    for (size_t k = 0; k < sizeof shard->args / sizeof shard->args[0] && shard->args[k]; k++) {
        argv[n++] = shard->args[k];
    }
    argv[n] = NULL;
}

pid_t
tk_shard_start (harness_t *h, tk_shard_t *shard)
{
    char path[1024];
    char checkpoint[32];
    snprintf (path, sizeof (path), "%s/shard/shard", harness_bin_dir ());
    snprintf (checkpoint, sizeof (checkpoint), "%ld", shard->checkpoint_transfers);
    //  A port can be taken between harness_free_port and the bind (by another
    //  test's connection): then the shard exits at once and we try another.
    for (int attempt = 0; attempt < TK_START_ATTEMPTS; attempt++) {
        char *argv[32];
        s_shard_argv (h, shard, path, checkpoint, argv);
        shard->pid = harness_spawn (h, shard->name, argv, shard->env);
        if (shard->pid < 0) {
            return -1;
        }
        int wstatus = 0;
        if (s_wait_ready_or_exit (h, shard, &wstatus)) {
            return shard->pid;
        }
        if (shard->pid > 0) {
            break; //  alive but not answering: a real failure
        }
        shard->port = harness_free_port ();
        snprintf (shard->endpoint, sizeof (shard->endpoint), "tcp://127.0.0.1:%d", shard->port);
    }
    harness_dump_log (h, shard->name);
    return -1;
}

pid_t
tk_shard_spawn (harness_t *h, tk_shard_t *shard)
{
    char path[1024];
    char checkpoint[32];
    snprintf (path, sizeof (path), "%s/shard/shard", harness_bin_dir ());
    snprintf (checkpoint, sizeof (checkpoint), "%ld", shard->checkpoint_transfers);
    char *argv[32];
    s_shard_argv (h, shard, path, checkpoint, argv);
    shard->pid = harness_spawn (h, shard->name, argv, shard->env);
    return shard->pid;
}

int
tk_shard_run_to_exit (harness_t *h, tk_shard_t *shard, int timeout_ms)
{
    char path[1024];
    char checkpoint[32];
    snprintf (path, sizeof (path), "%s/shard/shard", harness_bin_dir ());
    snprintf (checkpoint, sizeof (checkpoint), "%ld", shard->checkpoint_transfers);
    char *argv[32];
    s_shard_argv (h, shard, path, checkpoint, argv);
    pid_t pid = harness_spawn (h, shard->name, argv, shard->env);
    if (pid < 0) {
        return -1;
    }
    int wstatus = 0;
    if (harness_wait_exit (h, pid, timeout_ms, &wstatus) != 0) {
        harness_kill (h, pid, SIGKILL);
        (void) harness_wait_exit (h, pid, 20000, NULL);
        return -1;
    }
    shard->pid = -1;
    return wstatus;
}

int
tk_shard_stop (harness_t *h, tk_shard_t *shard, int sig)
{
    if (shard->pid < 0) {
        return -1;
    }
    int wstatus = 0;
    harness_kill (h, shard->pid, sig);
    int rc = harness_wait_exit (h, shard->pid, 20000, &wstatus);
    shard->pid = -1;
    return rc == 0 ? wstatus : -1;
}

void
tk_shard_prepare_accounts (harness_t *h, tk_shard_t *shard, uint64_t tag, uint32_t ledger,
                           size_t count)
{
    assert (h && shard && count <= TK_ACCOUNTS_MAX);
    assert_true (tk_shard_start (h, shard) > 0);
    rl_client_t *client = rl_client_new (shard->endpoint);
    assert_non_null (client);
    static rl_account_t accounts[TK_ACCOUNTS_MAX];
    static rl_result_rec_t results[TK_ACCOUNTS_MAX];
    for (size_t i = 0; i < count; i++) {
        accounts[i] = tk_account (i + 1, tag, ledger,
                                  i == 0 ? 0 : RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS);
    }
    assert_int_equal (rl_client_create_accounts (client, accounts, count, results, TK_TIMEOUT_MS),
                      0);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (results[i].result, RL_OK);
    }
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, shard, SIGTERM), 0);
}

rl_id_t
tk_id (uint64_t lo, uint64_t tag)
{
    return (rl_id_t){.lo = lo, .hi = tag};
}

rl_account_t
tk_account (uint64_t i, uint64_t tag, uint32_t ledger, uint16_t flags)
{
    return (rl_account_t){.id = tk_id (i, tag), .ledger = ledger, .code = 10, .flags = flags};
}

rl_transfer_t
tk_transfer (rl_id_t id, rl_id_t debit, rl_id_t credit, uint64_t amount, uint32_t ledger)
{
    return (rl_transfer_t){
        .id = id,
        .debit_account_id = debit,
        .credit_account_id = credit,
        .amount = amount,
        .ledger = ledger,
        .code = 1,
    };
}

void
tk_model_init (tk_model_t *model, uint64_t tag, size_t count)
{
    assert (count <= TK_ACCOUNTS_MAX);
    memset (model, 0, sizeof (*model));
    model->tag = tag;
    model->count = count;
}

void
tk_model_apply (tk_model_t *model, const rl_transfer_t *t)
{
    assert (t->debit_account_id.lo >= 1 && t->debit_account_id.lo <= model->count);
    assert (t->credit_account_id.lo >= 1 && t->credit_account_id.lo <= model->count);
    model->debits[t->debit_account_id.lo] += t->amount;
    model->credits[t->credit_account_id.lo] += t->amount;
    model->ok++;
}

//  Outcomes ---------------------------------------------------------------------

bool
tk_result_is_business (uint32_t result)
{
    return result != RL_OK && !rl_result_is_retryable (result);
}

void
tk_outcomes_sent (tk_outcomes_t *self, const rl_transfer_t *t)
{
    assert (self && t && self->count < self->capacity);
    self->records[self->count].t = *t;
    self->records[self->count].result = TK_OUTCOME_UNKNOWN;
    self->count++;
}

void
tk_outcomes_answered (tk_outcomes_t *self, size_t first, const rl_result_rec_t *rs, size_t n,
                      bool storage_error_unknown, tk_model_t *model)
{
    assert (self && rs && model && first + n <= self->count);
    for (size_t i = 0; i < n; i++) {
        uint32_t result = rs[i].result;
        if (storage_error_unknown && result == RL_STORAGE_ERROR) {
            continue; //  unknown
        }
        if (result != RL_OK && !tk_result_is_business (result)) {
            fail_msg ("transfer %zu: unexpected %s", first + i, rl_result_name (result));
        }
        tk_outcome_t *r = &self->records[first + i];
        r->result = result;
        if (result == RL_OK) {
            tk_model_apply (model, &r->t);
        }
    }
}

size_t
tk_outcomes_settle (tk_outcomes_t *self, rl_client_t *client, tk_model_t *model, int timeout_ms,
                    size_t *applied_p)
{
    assert (self && client && model);
    static rl_id_t ids[RL_BATCH_RECORDS_MAX];
    static rl_transfer_t found[RL_BATCH_RECORDS_MAX];
    size_t unknown = 0, applied = 0;
    for (size_t base = 0; base < self->count; base += RL_BATCH_RECORDS_MAX) {
        size_t left = self->count - base;
        size_t n = left < RL_BATCH_RECORDS_MAX ? left : RL_BATCH_RECORDS_MAX;
        for (size_t i = 0; i < n; i++) {
            ids[i] = self->records[base + i].t.id;
        }
        assert_int_equal (rl_client_lookup_transfers (client, ids, n, found, timeout_ms), 0);
        for (size_t i = 0; i < n; i++) {
            tk_outcome_t *r = &self->records[base + i];
            if (r->result == RL_OK && found[i].timestamp == 0) {
                fail_msg ("acknowledged transfer %zu lost", base + i);
            }
            if (r->result != TK_OUTCOME_UNKNOWN && r->result != RL_OK) {
                assert_int_equal (found[i].timestamp, 0); //  failures are not transfers
            }
            if (r->result == TK_OUTCOME_UNKNOWN) {
                unknown++;
                if (found[i].timestamp != 0) {
                    assert_int_equal (found[i].amount, r->t.amount);
                    r->result = RL_OK;
                    tk_model_apply (model, &r->t);
                    applied++;
                }
            }
        }
    }
    //  The rest of the unknown ones were not applied: retry them (same ids).
    for (size_t i = 0; i < self->count; i++) {
        tk_outcome_t *r = &self->records[i];
        if (r->result != TK_OUTCOME_UNKNOWN) {
            continue;
        }
        rl_result_rec_t res;
        assert_int_equal (rl_client_create_transfers (client, &r->t, 1, &res, timeout_ms), 0);
        assert_true (res.result == RL_OK || tk_result_is_business (res.result));
        r->result = res.result;
        if (res.result == RL_OK) {
            tk_model_apply (model, &r->t);
        }
    }
    if (applied_p) {
        *applied_p = applied;
    }
    return unknown;
}

void
tk_outcomes_retry_sample (const tk_outcomes_t *self, rl_client_t *client, size_t samples,
                          uint64_t *rng, int timeout_ms)
{
    assert (self && client && rng);
    for (size_t k = 0; k < samples && self->count > 0; k++) {
        const tk_outcome_t *r = &self->records[rl_rand_next (rng) % self->count];
        rl_result_rec_t res;
        assert_int_equal (rl_client_create_transfers (client, &r->t, 1, &res, timeout_ms), 0);
        uint32_t want = r->result == RL_OK ? RL_EXISTS : r->result;
        if (res.result != want) {
            fail_msg ("retry of transfer %lu: got %s, want %s", (unsigned long) r->t.id.lo,
                      rl_result_name (res.result), rl_result_name (want));
        }
    }
}

static rl_client_t *
s_single (void *ctx, rl_id_t id)
{
    (void) id;
    return ctx;
}

void
tk_check_conservation (rl_client_t *client, const tk_model_t *model, uint64_t ok_min)
{
    tk_check_conservation_by (s_single, client, model, ok_min);
}

bool
tk_wait_quiet (rl_client_t **shards, size_t count, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        bool quiet = true;
        for (size_t i = 0; i < count && quiet; i++) {
            rl_status_rec_t status;
            quiet = rl_client_status (shards[i], &status, 1000) == 0 && status.inflight == 0
                    && status.in_doubt == 0;
        }
        if (quiet) {
            return true;
        }
        zclock_sleep (5); //  polling interval of a bounded wait, not a fixed delay
    }
    return false;
}

ring_t *
tk_ring_of (const char *endpoint, int timeout_ms)
{
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    uint8_t *blob = NULL;
    size_t size = 0;
    assert_int_equal (rl_client_get_ring (client, &blob, &size, timeout_ms), 0);
    rl_client_destroy (&client);
    char err[256];
    ring_t *ring = ring_decode (blob, size, err, sizeof err);
    free (blob);
    if (!ring) {
        fail_msg ("the ring served at %s does not decode: %s", endpoint, err);
    }
    return ring;
}

int
tk_ring_load (const char *endpoint, const ring_t *ring, int timeout_ms)
{
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    rl_client_t *client = rl_client_new (endpoint);
    assert_non_null (client);
    int rc = rl_client_load_ring (client, blob, size, timeout_ms);
    rl_client_destroy (&client);
    free (blob);
    return rc;
}

bool
tk_wait_cluster_quiet (rl_client_t *client, int timeout_ms)
{
    uint8_t *blob = NULL;
    size_t size = 0;
    if (rl_client_get_ring (client, &blob, &size, TK_TIMEOUT_MS) != 0) {
        free (blob);
        return false;
    }
    char err[256];
    ring_t *ring = ring_decode (blob, size, err, sizeof (err));
    free (blob);
    if (!ring) {
        return false;
    }
    size_t count = ring_shard_count (ring);
    rl_client_t **shards = calloc (count, sizeof (*shards));
    assert (shards);
    for (size_t i = 0; i < count; i++) {
        shards[i] = rl_client_new (ring_shard_endpoint (ring, i));
        assert (shards[i]);
    }
    bool quiet = tk_wait_quiet (shards, count, timeout_ms);
    for (size_t i = 0; i < count; i++) {
        rl_client_destroy (&shards[i]);
    }
    free (shards);
    ring_destroy (&ring);
    return quiet;
}

static void s_check_conservation (tk_client_for_fn *client_for, void *ctx, const tk_model_t *model,
                                  uint64_t ok_min, const char *const *also, size_t also_count);

void
tk_check_conservation_also (rl_client_t *client, const tk_model_t *model, uint64_t ok_min,
                            const char *const *also, size_t also_count)
{
    s_check_conservation (s_single, client, model, ok_min, also, also_count);
}

void
tk_check_conservation_by (tk_client_for_fn *client_for, void *ctx, const tk_model_t *model,
                          uint64_t ok_min)
{
    s_check_conservation (client_for, ctx, model, ok_min, NULL, 0);
}

static void
s_check_conservation (tk_client_for_fn *client_for, void *ctx, const tk_model_t *model,
                      uint64_t ok_min, const char *const *also, size_t also_count)
{
    assert_true (ok_min > 0);
    assert_true (model->ok >= ok_min);
    //  The shards to wait for: those of the ring the first account's client serves.
    uint8_t *blob = NULL;
    size_t size = 0;
    char err[256] = "";
    ring_t *ring = NULL;
    if (rl_client_get_ring (client_for (ctx, tk_id (1, model->tag)), &blob, &size, TK_TIMEOUT_MS)
        == 0) {
        ring = ring_decode (blob, size, err, sizeof (err));
    }
    free (blob);
    if (!ring) {
        fail_msg ("conservation: no ring from the cluster %s", err);
    }
    const char *endpoints[RL_SHARDS_MAX];
    size_t shards = ring_shard_count (ring);
    for (size_t i = 0; i < shards; i++) {
        endpoints[i] = ring_shard_endpoint (ring, i);
    }
    for (size_t i = 0; i < also_count; i++) {
        assert_true (shards < RL_SHARDS_MAX);
        endpoints[shards++] = also[i];
    }
    //  One ledger per test model: the check sums per ledger the accounts report.
    rl_check_t *check = rl_check_new (model->count);
    if (!check) {
        ring_destroy (&ring);
        fail_msg ("conservation: out of memory");
    }
    for (size_t n = 1; n <= model->count; n++) {
        int64_t index = rl_check_add_account (check, tk_id (n, model->tag), RL_CHECK_LEDGER_ANY);
        assert_true (index == (int64_t) (n - 1));
        rl_check_expect (check, (size_t) index, model->debits[n], model->credits[n]);
    }
    rl_check_expect_applied (check, model->ok);
    rl_check_options_t options = {
        .shard_endpoints = endpoints,
        .shard_count = shards,
        .client_for = client_for,
        .client_arg = ctx,
        .timeout_ms = TK_TIMEOUT_MS,
        .quiet_timeout_ms = TK_QUIET_TIMEOUT_MS,
        .ok_min = ok_min,
        .history = true,
        .report = stderr,
        .prefix = "conservation: ",
    };
    bool passed = rl_check_run (check, &options);
    rl_check_destroy (&check);
    ring_destroy (&ring);
    if (!passed) {
        fail_msg ("the conservation check failed (see the lines above)");
    }
}

//  Bad input ------------------------------------------------------------------

const char *
tk_bad_name (tk_bad_case_t bad)
{
    static const char *names[TK_BAD_CASES] = {
        [TK_BAD_EMPTY_FRAME] = "empty frame",
        [TK_BAD_SHORT_FRAME] = "short frame",
        [TK_BAD_WRONG_MAGIC] = "wrong magic",
        [TK_BAD_WRONG_VERSION] = "wrong version",
        [TK_BAD_UNKNOWN_OPERATION] = "unknown operation",
        [TK_BAD_RESERVED_ACK] = "reserved two-phase operation (ack)",
        [TK_BAD_RESERVED_PREPARE] = "reserved two-phase operation (prepare)",
        [TK_BAD_COUNT_OVER_BODY] = "count larger than body",
        [TK_BAD_COUNT_UNDER_BODY] = "count smaller than body",
        [TK_BAD_OVERSIZE_BATCH] = "oversize batch",
        [TK_BAD_REQUEST_STATUS] = "non-zero status in a request",
        [TK_BAD_REQUEST_EPOCH] = "non-zero epoch in a request",
        [TK_BAD_GARBAGE] = "garbage",
        [TK_BAD_DUPLICATE_ID] = "duplicate transfer id",
        [TK_BAD_LOAD_RING] = "load_ring with a bad ring",
    };
    assert (bad < TK_BAD_CASES);
    return names[bad];
}

size_t
tk_request_header (uint8_t *out, uint16_t op, uint64_t request_id, uint32_t count)
{
    rl_header_t h = codec_request_header (op, request_id, count);
    codec_encode_header (&h, out);
    return RL_HEADER_SIZE;
}

void
tk_lookup_all_frame (uint8_t *out, uint64_t request_id, uint64_t tag)
{
    size_t size = tk_request_header (out, RL_OP_LOOKUP_ACCOUNTS, request_id, RL_BATCH_RECORDS_MAX);
    for (uint64_t i = 0; i < RL_BATCH_RECORDS_MAX; i++) {
        codec_encode_id (tk_id (i + 1, tag), out + size + i * RL_ID_SIZE);
    }
}

long
tk_proc_status_bytes (pid_t pid, const char *field)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    char *line = strstr (text, field);
    assert_non_null (line);
    long kb = strtol (line + strlen (field) + 1, NULL, 10); //  the file says kB
    free (text);
    return kb * 1024;
}

void
tk_proc_reset_peak (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/clear_refs", (int) pid);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    assert_true (fputs ("5", f) >= 0);
    assert_int_equal (fclose (f), 0);
}

//  A status request with the one header field that case `bad` spoils.
static size_t
s_bad_status_request (uint8_t *out, uint64_t request_id, tk_bad_case_t bad)
{
    rl_header_t h;
    tk_request_header (out, RL_OP_STATUS, request_id, 0);
    codec_decode_header (out, &h);
    switch (bad) {
        case TK_BAD_WRONG_MAGIC:
            h.magic ^= 0xff;
            break;
        case TK_BAD_WRONG_VERSION:
            h.version = 9;
            break;
        case TK_BAD_REQUEST_STATUS:
            h.status = 1;
            break;
        case TK_BAD_REQUEST_EPOCH:
            h.epoch = 1;
            break;
        default:
            assert (false);
    }
    codec_encode_header (&h, out);
    return RL_HEADER_SIZE;
}

//  A create_transfers request of `count` in the header and `records`
//  copies of transfer in the body.
static size_t
s_bad_transfers (uint8_t *out, uint64_t request_id, uint32_t count, size_t records,
                 const rl_transfer_t *transfer)
{
    size_t size = tk_request_header (out, RL_OP_CREATE_TRANSFERS, request_id, count);
    for (size_t i = 0; i < records; i++) {
        codec_encode_transfer (transfer, out + size);
        size += RL_TRANSFER_SIZE;
    }
    return size;
}

size_t
tk_bad_frame (tk_bad_case_t bad, const rl_transfer_t *transfer, uint64_t request_id, uint8_t *out,
              size_t out_size)
{
    assert (bad < TK_BAD_CASES);
    assert (transfer && out);
    assert (out_size >= TK_BAD_FRAME_SIZE_MAX);
    size_t size = 0;
    rl_header_t h;
    switch (bad) {
        case TK_BAD_EMPTY_FRAME:
            break;
        case TK_BAD_SHORT_FRAME:
            size = 10;
            memset (out, 0x72, size);
            break;
        case TK_BAD_WRONG_MAGIC:
        case TK_BAD_WRONG_VERSION:
        case TK_BAD_REQUEST_STATUS:
        case TK_BAD_REQUEST_EPOCH:
            size = s_bad_status_request (out, request_id, bad);
            break;
        case TK_BAD_UNKNOWN_OPERATION:
            size = tk_request_header (out, 99, request_id, 0);
            break;
        case TK_BAD_RESERVED_ACK:
            size = tk_request_header (out, RL_OP_ACK, request_id, 0);
            break;
        case TK_BAD_RESERVED_PREPARE:
            size = tk_request_header (out, RL_OP_PREPARE, request_id, 0);
            break;
        case TK_BAD_COUNT_OVER_BODY:
            size = s_bad_transfers (out, request_id, 2, 1, transfer);
            break;
        case TK_BAD_COUNT_UNDER_BODY:
            size = s_bad_transfers (out, request_id, 1, 1, transfer) + 1;
            out[size - 1] = 0;
            break;
        case TK_BAD_OVERSIZE_BATCH:
            size = s_bad_transfers (out, request_id, RL_BATCH_RECORDS_MAX + 1,
                                    RL_BATCH_RECORDS_MAX + 1, transfer);
            break;
        case TK_BAD_GARBAGE:
            size = 200;
            for (size_t i = 0; i < size; i++) {
                out[i] = (uint8_t) (i * 37 + 11);
            }
            //  The noise keeps its own header fields but carries the
            //  request id, so that its error reply can be told apart.
            codec_decode_header (out, &h);
            h.request_id = request_id;
            codec_encode_header (&h, out);
            break;
        case TK_BAD_DUPLICATE_ID:
            size = s_bad_transfers (out, request_id, 2, 2, transfer);
            break;
        case TK_BAD_LOAD_RING:
            size = tk_request_header (out, RL_OP_LOAD_RING, request_id, 1);
            memset (out + size, 0x11, 16);
            size += 16;
            break;
        case TK_BAD_CASES:
            assert (false);
    }
    assert (size <= out_size);
    return size;
}

static void
s_bad_send (zsock_t *dealer, const uint8_t *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    assert_non_null (frame);
    assert_int_equal (zframe_send (&frame, dealer, 0), 0);
}

static rl_header_t
s_bad_reply (zsock_t *dealer)
{
    zframe_t *frame = zframe_recv (dealer);
    assert_non_null (frame);
    assert_true (zframe_size (frame) >= RL_HEADER_SIZE);
    rl_header_t h;
    codec_decode_header (zframe_data (frame), &h);
    zframe_destroy (&frame);
    return h;
}

bool
tk_oversize_dropped (const char *endpoint)
{
    assert (endpoint);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 1000);
    tk_connect (dealer, endpoint);
    size_t big = (size_t) RL_FRAME_SIZE_MAX + 1;
    zframe_t *junk = zframe_new (NULL, big); //  built in place: one copy of 4 MiB, not two
    assert_non_null (junk);
    memset (zframe_data (junk), 0, big);
    uint8_t header[RL_HEADER_SIZE];
    size_t size = tk_request_header (header, RL_OP_STATUS, 4343, 0);
    zmsg_t *msg = zmsg_new ();
    assert_non_null (msg);
    assert_int_equal (zmsg_append (msg, &junk), 0);
    assert_int_equal (zmsg_addmem (msg, header, size), 0);
    assert_int_equal (zmsg_send (&msg, dealer), 0);
    zmsg_t *reply = zmsg_recv (dealer);
    bool dropped = reply == NULL;
    zmsg_destroy (&reply);
    zsock_destroy (&dealer);
    return dropped;
}

tk_bad_counts_t
tk_bad_input_run (const char *endpoint, const rl_transfer_t *transfer, const tk_bad_want_t *want)
{
    assert (endpoint && transfer && want);
    tk_bad_counts_t counts = {0, 0};
    uint8_t *buf = (uint8_t *) malloc (TK_BAD_FRAME_SIZE_MAX);
    assert_non_null (buf);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    tk_connect (dealer, endpoint);
    for (int c = 0; c < TK_BAD_CASES; c++) {
        uint32_t expected = want->status[c];
        if (expected == TK_BAD_SKIPPED) {
            continue;
        }
        uint64_t rid = 9000 + (uint64_t) c;
        size_t size = tk_bad_frame ((tk_bad_case_t) c, transfer, rid, buf, TK_BAD_FRAME_SIZE_MAX);
        s_bad_send (dealer, buf, size);
        size = tk_request_header (buf, RL_OP_STATUS, 1, 0);
        s_bad_send (dealer, buf, size);
        rl_header_t h = s_bad_reply (dealer);
        if (expected == TK_BAD_DROPPED) {
            if (h.request_id != 1 || h.status != RL_STATUS_OK) {
                fail_msg ("%s: got request %lu status %s, want it dropped",
                          tk_bad_name ((tk_bad_case_t) c), (unsigned long) h.request_id,
                          rl_status_name (h.status));
            }
            counts.dropped++;
            continue;
        }
        if (h.request_id != rid || h.status != expected) {
            fail_msg ("%s: got request %lu status %s, want %s", tk_bad_name ((tk_bad_case_t) c),
                      (unsigned long) h.request_id, rl_status_name (h.status),
                      rl_status_name (expected));
        }
        assert_int_equal (h.record_count, 0);
        if (want->epoch_checked) {
            assert_int_equal (h.epoch, want->epoch);
        }
        h = s_bad_reply (dealer);
        assert_int_equal (h.request_id, 1);
        counts.answered++;
    }
    zsock_destroy (&dealer);
    free (buf);
    return counts;
}
