/*  test_replication_promote.c: the fail-over of a shard of a cluster by
    `rlctl promote SHARD STANDBY`, run as the real program: the promotion
    at a new ring epoch, and the ring's epoch as the fence
    (docs/replication.md, "The ring's epoch as the fence").

    test_promote_cluster: shards s1 (a semi-synchronous primary with its
    standby) and s2, and a router, with accounts on both shards and
    cross-shard transfers through the router.
    - Bad input first, each changing nothing (every shard and the router
      stay at epoch 1, the standby stays one): an unknown shard name, a
      ring file that does not load, a standby endpoint that is another
      shard's, one that is a router, a wrong number of arguments.
    - The primary is SIGKILLed and `rlctl --connect ROUTER promote s1
      STANDBY` runs while transfers keep going through the router (their
      outcome during the fail-over may stay unknown: settled at the end):
      it exits 0, s2 and the router serve epoch 2, which gives s1 the
      standby's endpoint, with no ring loaded by hand; transfers through
      the router are all ok again, cross-shard ones included.
    - The old primary restarted WITHOUT --standby on its old directory
      asks its peer for its ring before it serves: status says fenced,
      writes and reads are answered fenced, and a restart stays fenced.
    - A second `rlctl promote` is a no-op that exits 0 (resumable).
    - The runbook: the old primary rejoins as a standby of the new one,
      which is restarted with it; then the fail-over back to it runs with
      s2 stopped: rlctl exits 1 (INCOMPLETE: s2, and the router, which
      learns rings from shards, lack the new epoch), the primary it
      replaced, still running, is fenced (by its promoted standby and by
      the ring sent to its endpoint); after s2 continues the same command
      exits 0 and every shard and the router serve epoch 3.
    - Exactly-once over every id (settle, retry a sample) and the strong
      conservation check, through the router.
    - Then load_ring: a ring of a higher epoch naming the primary at its
      --bind leaves it serving, and s2 (never replicated) serving even
      though it gives s2 another endpoint string; one giving s1 the same
      port under the name localhost fences the primary at once.
    RL_SEED=<n> replays a run.
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

#include "ring.h"
#include "rl_rand.h"
#include "routerkit.h"
#include "testkit.h"

#define TAG              0x50524f4dull //  "PROM"
#define LEDGER           842
#define ACCOUNTS         16
#define TRANSFERS_MAX    4000
#define BATCH_MAX        16
#define CALL_TIMEOUT_MS  8000
#define RLCTL_WAIT_MS    60000
#define ARGS_MAX         24
#define RLCTL_TIMEOUT_MS "15000" //  rlctl --timeout-ms: the waits for serving and the router

static tk_outcome_t s_records[TRANSFERS_MAX];
static tk_outcomes_t s_log = {.records = s_records, .capacity = TRANSFERS_MAX};
static uint64_t s_rng;

static rl_transfer_t
s_new_transfer (void)
{
    uint64_t from = 1 + rl_rand_next (&s_rng) % ACCOUNTS;
    uint64_t to = 1 + rl_rand_next (&s_rng) % ACCOUNTS;
    if (to == from) {
        to = to == ACCOUNTS ? 1 : to + 1;
    }
    return tk_transfer (tk_id (500000 + s_log.count, TAG), tk_id (from, TAG), tk_id (to, TAG),
                        1 + rl_rand_next (&s_rng) % 100, LEDGER);
}

//  One batch through client. strict: every record must be ok; else what
//  is not definite (the call failed, or an infrastructure result during
//  the fail-over) stays unknown, settled at the end. Returns the records ok.
static size_t
s_batch (rl_client_t *client, tk_model_t *model, bool strict, int timeout_ms)
{
    rl_transfer_t ts[BATCH_MAX];
    rl_result_rec_t rs[BATCH_MAX];
    size_t first = s_log.count;
    size_t n = 1 + rl_rand_next (&s_rng) % BATCH_MAX;
    for (size_t i = 0; i < n; i++) {
        ts[i] = s_new_transfer ();
        tk_outcomes_sent (&s_log, &ts[i]);
    }
    int rc = rl_client_create_transfers (client, ts, n, rs, timeout_ms);
    if (strict) {
        assert_int_equal (rc, 0);
    }
    size_t ok = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strict || rs[i].result == RL_OK || tk_result_is_business (rs[i].result)) {
            tk_outcomes_answered (&s_log, first + i, &rs[i], 1, false, model);
            ok += rs[i].result == RL_OK;
        }
    }
    return ok;
}

static rl_status_rec_t
s_status (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (c, &st, CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    return st;
}

//  load_ring of ring into the shard at endpoint answers want.
static void
s_load (const char *endpoint, const ring_t *ring, int want)
{
    assert_int_equal (tk_ring_load (endpoint, ring, CALL_TIMEOUT_MS), want);
}

//  Runs rlctl --connect endpoint as the test's admin key with the
//  arguments that follow (NULL-terminated). wait: its exit code and
//  output (*out_p, malloc'd); else its pid, running.
static int
s_rlctl (harness_t *h, const char *log, const char *endpoint, const char *timeout_ms, bool wait,
         char **out_p, ...)
{
    static char rlctl[512], cert[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/tester.key_secret", tk_keys_dir (h));
    snprintf (key, sizeof key, "%s", tk_key (h, "router", "r1"));
    char *argv[ARGS_MAX] = {rlctl,    "--connect",    (char *) endpoint,
                            "--cert", cert,           "--server-key",
                            key,      "--timeout-ms", (char *) timeout_ms};
    size_t argc = 9;
    va_list ap;
    va_start (ap, out_p);
    const char *arg;
    while ((arg = va_arg (ap, const char *)) && argc < ARGS_MAX - 1) {
        argv[argc++] = (char *) arg;
    }
    va_end (ap);
    argv[argc] = NULL;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (h), log);
    unlink (path);
    pid_t pid = harness_spawn (h, log, argv, NULL);
    assert_true (pid > 0);
    if (!wait) {
        return (int) pid;
    }
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, pid, RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    if (out_p) {
        *out_p = text;
    } else {
        free (text);
    }
    return WEXITSTATUS (wstatus);
}

//  rlctl promote with args exits `want` and says `needle`.
static void
s_promote_expect (harness_t *h, const char *log, const char *endpoint, int want, const char *needle,
                  const char *a1, const char *a2, const char *a3)
{
    char *out = NULL;
    int rc = s_rlctl (h, log, endpoint, RLCTL_TIMEOUT_MS, true, &out, "promote", a1, a2, a3, NULL);
    if (rc != want || !strstr (out, needle)) {
        fail_msg ("rlctl promote (%s): exit %d, want %d and '%s'; said:\n%s", log, rc, want, needle,
                  out);
    }
    free (out);
}

static void
s_wait_state (const char *endpoint, uint32_t state)
{
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    rl_status_rec_t st = {.state = UINT32_MAX};
    while (zclock_mono () < deadline) {
        rl_client_t *client = rl_client_new (endpoint);
        int rc = rl_client_status (client, &st, 200);
        rl_client_destroy (&client);
        if (rc == 0 && st.state == state) {
            break;
        }
        zclock_sleep (10);
    }
    assert_int_equal (st.state, state);
}

static int
s_setup (void **state)
{
    *state = harness_new ("replication_promote");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

static void
test_promote_cluster (void **state)
{
    harness_t *h = *state;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("test_promote_cluster: RL_SEED=%lu\n", (unsigned long) seed);
    s_rng = seed * 0x9E3779B97F4A7C15ull + 1;
    tk_shard_t primary, standby, s2;
    tk_shard_init (h, &primary, "s1");
    tk_shard_init (h, &standby, "s1");
    snprintf (standby.data_dir, sizeof standby.data_dir, "%s/s1-standby", harness_dir (h));
    tk_shard_init (h, &s2, "s2");
    //  The ring, with the shards' keys (rlctl reaches each shard with it).
    char ring_file[512];
    assert_true ((size_t) snprintf (ring_file, sizeof ring_file, "%s/cluster.ring", harness_dir (h))
                 < sizeof ring_file);
    ring_t *ring = ring_new (1);
    assert_int_equal (ring_add_shard (ring, "s1", primary.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_add_shard (ring, "s2", s2.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_set_key (ring, "s1", tk_key (h, "shard", "s1")), RING_OK);
    assert_int_equal (ring_set_key (ring, "s2", tk_key (h, "shard", "s2")), RING_OK);
    assert_int_equal (ring_save_file (ring, ring_file), RING_OK);
    tk_shard_t *all[] = {&primary, &standby, &s2};
    for (size_t i = 0; i < 3; i++) {
        snprintf (all[i]->ring_file, sizeof all[i]->ring_file, "%s", ring_file);
        all[i]->durability = "sync";
    }
    standby.args[0] = "--standby-of";
    standby.args[1] = primary.endpoint;
    assert_true (tk_shard_start (h, &standby) > 0);
    primary.args[0] = "--standby";
    primary.args[1] = standby.endpoint;
    primary.args[2] = "--repl-timeout-ms";
    primary.args[3] = "400";
    assert_true (tk_shard_start (h, &primary) > 0);
    assert_true (tk_shard_start (h, &s2) > 0);
    rk_router_t router;
    rk_router_init (&router, "r1");
    snprintf (router.ring_file, sizeof router.ring_file, "%s", ring_file);
    router.refresh_ms = 300;
    assert_true (rk_router_start (h, &router) > 0);
    rl_client_t *client = rl_client_new (router.endpoint);
    //  Accounts on both shards; cross-shard transfers go through the router.
    rl_account_t accounts[ACCOUNTS];
    rl_result_rec_t results[ACCOUNTS];
    size_t on_s1 = 0;
    for (uint64_t i = 0; i < ACCOUNTS; i++) {
        accounts[i] = tk_account (i + 1, TAG, LEDGER, 0);
        on_s1 += rk_owner (ring, accounts[i].id) == 0;
    }
    assert_true (on_s1 > 0 && on_s1 < ACCOUNTS); //  both shards hold some
    assert_int_equal (
        rl_client_create_accounts_retry (client, accounts, ACCOUNTS, results, CALL_TIMEOUT_MS, 10),
        0);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    for (int b = 0; b < 10; b++) {
        s_batch (client, &model, true, CALL_TIMEOUT_MS);
    }
    //  Bad input: nothing changes.
    char bad_ring[600];
    snprintf (bad_ring, sizeof bad_ring, "%s/bad.ring", harness_dir (h));
    FILE *f = fopen (bad_ring, "w");
    assert_non_null (f);
    fputs ("epoch 2\nshard s1 tcp://127.0.0.1:1 weight x\n", f);
    fclose (f);
    s_promote_expect (h, "promote-unknown", router.endpoint, 2, "no shard 's9'", "s9",
                      standby.endpoint, NULL);
    s_promote_expect (h, "promote-bad-ring", router.endpoint, 2, "does not load", "s1",
                      standby.endpoint, bad_ring);
    s_promote_expect (h, "promote-other-shard", router.endpoint, 2, "the endpoint of shard s2",
                      "s1", s2.endpoint, NULL);
    s_promote_expect (h, "promote-router", router.endpoint, 1, "nothing changed", "s1",
                      router.endpoint, NULL);
    s_promote_expect (h, "promote-bad-endpoint", router.endpoint, 2, "bad endpoint", "s1",
                      "tcp://has space:1", NULL);
    s_promote_expect (h, "promote-one-arg", router.endpoint, 2, "promote takes", "s1", NULL, NULL);
    assert_int_equal (s_status (standby.endpoint).state, RL_SHARD_STANDBY);
    assert_int_equal (s_status (primary.endpoint).epoch, 1);
    assert_int_equal (s_status (s2.endpoint).epoch, 1);
    assert_int_equal (s_status (router.endpoint).epoch, 1);
    //  The primary dies; the fail-over runs while transfers go on.
    harness_kill (h, primary.pid, SIGKILL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    int64_t t0 = zclock_mono ();
    pid_t pid = (pid_t) s_rlctl (h, "promote", router.endpoint, RLCTL_TIMEOUT_MS, false, NULL,
                                 "promote", "s1", standby.endpoint, NULL);
    size_t during = 0;
    while (harness_wait_exit (h, pid, 0, &wstatus) != 0) {
        during += s_batch (client, &model, false, 1500);
        zclock_sleep (20);
    }
    printf ("test_promote_cluster: rlctl promote took %ld ms; %zu transfers ok meanwhile\n",
            (long) (zclock_mono () - t0), during);
    char path[600];
    snprintf (path, sizeof path, "%s/promote.log", harness_dir (h));
    char *out = harness_read_file (path, NULL);
    assert_non_null (out);
    if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != 0 || !strstr (out, "done:")) {
        fail_msg ("rlctl promote: status %d; said:\n%s", wstatus, out);
    }
    free (out);
    //  Epoch 2 everywhere, giving s1 the standby's endpoint: no ring
    //  loaded by hand.
    ring_t *now = tk_ring_of (s2.endpoint, CALL_TIMEOUT_MS);
    assert_int_equal (ring_epoch (now), 2);
    assert_string_equal (ring_shard_endpoint (now, (size_t) ring_shard_find (now, "s1")),
                         standby.endpoint);
    ring_destroy (&now);
    assert_int_equal (s_status (standby.endpoint).epoch, 2);
    assert_int_equal (s_status (router.endpoint).epoch, 2);
    for (int b = 0; b < 10; b++) {
        s_batch (client, &model, true, CALL_TIMEOUT_MS);
    }
    //  The old primary, restarted without --standby on its old directory:
    //  its peer's ring fences it before it serves a write.
    memset (primary.args, 0, sizeof primary.args);
    assert_true (tk_shard_start (h, &primary) > 0);
    s_wait_state (primary.endpoint, RL_SHARD_FENCED);
    rl_client_t *old = rl_client_new (primary.endpoint);
    rl_transfer_t t = tk_transfer (tk_id (900001, TAG), tk_id (1, TAG), tk_id (2, TAG), 1, LEDGER);
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (old, &t, 1, &r, CALL_TIMEOUT_MS),
                      RL_STATUS_FENCED);
    rl_id_t ids[1] = {s_log.records[0].t.id};
    rl_transfer_t found[1];
    assert_int_equal (rl_client_lookup_transfers (old, ids, 1, found, CALL_TIMEOUT_MS),
                      RL_STATUS_FENCED);
    rl_client_destroy (&old);
    tk_shard_stop (h, &primary, SIGTERM);
    assert_true (tk_shard_start (h, &primary) > 0); //  the marker: fenced at once
    assert_int_equal (s_status (primary.endpoint).state, RL_SHARD_FENCED);
    //  Rerun: nothing to do, exit 0, the epoch stays.
    s_promote_expect (h, "promote-again", router.endpoint, 0, "already the primary", "s1",
                      standby.endpoint, NULL);
    assert_int_equal (s_status (s2.endpoint).epoch, 2);
    //  The runbook: the old primary rejoins as a standby of the new one
    //  (its fenced directory wiped), which is restarted with it.
    tk_shard_stop (h, &primary, SIGTERM);
    primary.args[0] = "--standby-of";
    primary.args[1] = standby.endpoint;
    assert_true (tk_shard_start (h, &primary) > 0);
    tk_shard_stop (h, &standby, SIGTERM);
    standby.args[0] = "--standby";
    standby.args[1] = primary.endpoint;
    standby.args[2] = "--repl-timeout-ms";
    standby.args[3] = "400";
    assert_true (tk_shard_start (h, &standby) > 0);
    //  busy until the standby is seeded; acknowledged then: it streams.
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    for (size_t ok = 0; ok < 40; ok += s_batch (client, &model, false, 1500)) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    //  Back again, with s2 stopped: rlctl says INCOMPLETE (s2 and the
    //  router, which learns rings from the shards, lack epoch 3) and exits
    //  1; the primary it replaced, still running, is fenced; once s2 is
    //  back, the same command completes.
    harness_kill (h, s2.pid, SIGSTOP);
    char *back = NULL;
    int rc = s_rlctl (h, "promote-back", router.endpoint, "4000", true, &back, "promote", "s1",
                      primary.endpoint, NULL);
    if (rc != 1 || !strstr (back, "INCOMPLETE") || !strstr (back, "fenced (the old primary)")) {
        fail_msg ("rlctl promote back: exit %d; said:\n%s", rc, back);
    }
    free (back);
    harness_kill (h, s2.pid, SIGCONT);
    assert_int_equal (s_status (standby.endpoint).state, RL_SHARD_FENCED);
    s_promote_expect (h, "promote-back-again", router.endpoint, 0, "done:", "s1", primary.endpoint,
                      NULL);
    assert_int_equal (s_status (s2.endpoint).epoch, 3);
    assert_int_equal (s_status (router.endpoint).epoch, 3);
    assert_int_equal (s_status (primary.endpoint).state, RL_SHARD_SERVING);
    //  Exactly-once and conservation, through the router.
    size_t applied = 0;
    tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, &applied);
    tk_outcomes_retry_sample (&s_log, client, 32, &s_rng, CALL_TIMEOUT_MS);
    for (int b = 0; b < 4; b++) {
        s_batch (client, &model, true, CALL_TIMEOUT_MS);
    }
    tk_check_conservation (client, &model, 20);
    rl_client_destroy (&client);
    //  A running replicated shard fences itself on a load_ring that gives
    //  its name to another endpoint (compared exactly: the same port
    //  under another host name counts as another endpoint); one that
    //  names it at its --bind does not, and s2, never replicated, holds
    //  the only copy of its data: a ring that moves it fences nothing.
    ring_t *next = tk_ring_of (s2.endpoint, CALL_TIMEOUT_MS);
    char moved[64];
    snprintf (moved, sizeof moved, "tcp://localhost:%d", s2.port);
    assert_int_equal (ring_set_endpoint (next, "s2", moved), RING_OK);
    ring_set_epoch (next, 4);
    s_load (primary.endpoint, next, 0);
    s_load (s2.endpoint, next, 0);
    assert_int_equal (s_status (primary.endpoint).state, RL_SHARD_SERVING);
    assert_int_equal (s_status (s2.endpoint).state, RL_SHARD_SERVING);
    snprintf (moved, sizeof moved, "tcp://localhost:%d", primary.port);
    assert_int_equal (ring_set_endpoint (next, "s1", moved), RING_OK);
    ring_set_epoch (next, 5);
    s_load (primary.endpoint, next, RL_STATUS_FENCED);
    assert_int_equal (s_status (primary.endpoint).state, RL_SHARD_FENCED);
    ring_destroy (&next);
    ring_destroy (&ring);
    rk_router_stop (h, &router);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
    tk_shard_stop (h, &s2, SIGTERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_promote_cluster, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
