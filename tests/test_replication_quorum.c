/*  test_replication_quorum.c: a primary with several standbys and a quorum
    (docs/replication.md, "Several standbys: the quorum").

    test_quorum_bad_input: --repl-quorum 0, beyond the standbys, not a
    number, or without --standby: the shard refuses to start (exit 2) and
    says why.

    test_quorum_one_of_two: --repl-quorum 1 of 2 standbys, one SIGSTOPped:
    the primary keeps acknowledging (never busy, never stalled, well past
    --repl-timeout-ms); repl_status shows the quorum and the stopped
    standby behind the other; continued, it catches up.

    test_quorum_two_of_two: the default quorum (every standby) with one
    SIGSTOPped: writes and reads are answered busy, status and repl_status
    say stalled; once
    it continues the primary serves again and the busy write executes on
    its retry.

    Each ends with exactly-once over every id (settle, retry a sample) and
    the strong conservation check. RL_SEED=<n> replays a run.
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

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "rl_rand.h"
#include "testkit.h"

#define TAG             0x51554f52ull //  "QUOR"
#define LEDGER          850
#define ACCOUNTS        16
#define TRANSFERS_MAX   8000
#define BATCH_MAX       32
#define CALL_TIMEOUT_MS 5000
#define REPL_TIMEOUT    "400" //  --repl-timeout-ms
#define REPL_TIMEOUT_MS 400

static tk_outcome_t s_records[TRANSFERS_MAX];
static tk_outcomes_t s_log = {.records = s_records, .capacity = TRANSFERS_MAX};
static uint64_t s_rng;

static void
s_seed (const char *test)
{
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("%s: RL_SEED=%lu\n", test, (unsigned long) seed);
    s_rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s_log.count = 0;
}

static rl_transfer_t
s_new_transfer (void)
{
    uint64_t from = rl_rand_next (&s_rng) % 3 == 0 ? 1 : 2 + rl_rand_next (&s_rng) % (ACCOUNTS - 1);
    uint64_t to = 2 + rl_rand_next (&s_rng) % (ACCOUNTS - 1);
    if (to == from) {
        to = to == ACCOUNTS ? 2 : to + 1;
    }
    return tk_transfer (tk_id (400000 + s_log.count, TAG), tk_id (from, TAG), tk_id (to, TAG),
                        1 + rl_rand_next (&s_rng) % 100, LEDGER);
}

//  Sends `batches` batches, each answered ok; the answers go into the model.
static void
s_drive (rl_client_t *client, size_t batches, tk_model_t *model)
{
    for (size_t b = 0; b < batches; b++) {
        rl_transfer_t ts[BATCH_MAX];
        rl_result_rec_t rs[BATCH_MAX];
        size_t first = s_log.count;
        size_t n = 1 + rl_rand_next (&s_rng) % BATCH_MAX;
        for (size_t i = 0; i < n; i++) {
            ts[i] = s_new_transfer ();
            tk_outcomes_sent (&s_log, &ts[i]);
        }
        assert_int_equal (rl_client_create_transfers (client, ts, n, rs, CALL_TIMEOUT_MS), 0);
        tk_outcomes_answered (&s_log, first, rs, n, false, model);
    }
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

//  repl_status of endpoint: the records, their count returned.
static size_t
s_repl (const char *endpoint, rl_repl_rec_t recs[RL_REPL_RECORDS_MAX])
{
    rl_client_t *c = rl_client_new (endpoint);
    size_t count = 0;
    assert_int_equal (rl_client_repl_status (c, recs, &count, CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    return count;
}

//  The acknowledged position of the link to standby at endpoint.
static uint64_t
s_link_position (const rl_repl_rec_t *recs, size_t count, const char *endpoint)
{
    for (size_t i = 1; i < count; i++) {
        if (strcmp (recs[i].endpoint, endpoint) == 0) {
            assert_int_equal (recs[i].role, RL_REPL_LINK);
            return recs[i].position;
        }
    }
    fail_msg ("no link to %s", endpoint);
    return 0;
}

static void
s_finish (rl_client_t *client, tk_model_t *model)
{
    size_t applied = 0;
    tk_outcomes_settle (&s_log, client, model, CALL_TIMEOUT_MS, &applied);
    tk_outcomes_retry_sample (&s_log, client, 32, &s_rng, CALL_TIMEOUT_MS);
    s_drive (client, 2, model);
    tk_check_conservation (client, model, 10);
}

static int
s_setup (void **state)
{
    *state = harness_new ("replication_quorum");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

//  Primary s1 with accounts, replicating to standbys a and b (same name
//  and key, their own ports and directories), quorum q ("" for the
//  default), started.
static void
s_trio (harness_t *h, tk_shard_t *primary, tk_shard_t *a, tk_shard_t *b, const char *q)
{
    static char standbys[160];
    tk_shard_init (h, primary, "s1");
    primary->durability = "sync";
    primary->checkpoint_transfers = 50;
    tk_shard_prepare_accounts (h, primary, TAG, LEDGER, ACCOUNTS);
    tk_shard_t *both[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        tk_shard_init (h, both[i], "s1");
        snprintf (both[i]->data_dir, sizeof both[i]->data_dir, "%s/s1-standby-%c", harness_dir (h),
                  (int) ('a' + i));
        both[i]->durability = "sync";
        both[i]->checkpoint_transfers = 50;
        both[i]->args[0] = "--standby-of";
        both[i]->args[1] = primary->endpoint;
        assert_true (tk_shard_start (h, both[i]) > 0);
    }
    snprintf (standbys, sizeof standbys, "%s,%s", a->endpoint, b->endpoint);
    primary->args[0] = "--standby";
    primary->args[1] = standbys;
    primary->args[2] = "--repl-timeout-ms";
    primary->args[3] = REPL_TIMEOUT;
    if (*q) {
        primary->args[4] = "--repl-quorum";
        primary->args[5] = (char *) q;
    }
    assert_true (tk_shard_start (h, primary) > 0);
}

//  The shard refuses to start with these arguments: exit 2, and its log
//  says `needle`.
static void
s_refused (harness_t *h, const char *a0, const char *a1, const char *a2, const char *a3,
           const char *needle)
{
    tk_shard_t s;
    tk_shard_init (h, &s, "s1");
    snprintf (s.name, sizeof s.name, "bad%d", s.port); //  its own log
    s.args[0] = (char *) a0;
    s.args[1] = (char *) a1;
    s.args[2] = (char *) a2;
    s.args[3] = (char *) a3;
    int wstatus = tk_shard_run_to_exit (h, &s, 10000);
    assert_true (wstatus >= 0 && WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 2);
    char path[700];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (h), s.name);
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    if (!strstr (text, needle)) {
        fail_msg ("the refusal does not say '%s':\n%s", needle, text);
    }
    free (text);
}

static void
test_quorum_bad_input (void **state)
{
    harness_t *h = *state;
    const char *two = "tcp://127.0.0.1:1,tcp://127.0.0.1:2";
    s_refused (h, "--standby", two, "--repl-quorum", "0", "--repl-quorum");
    s_refused (h, "--standby", two, "--repl-quorum", "3", "exceeds the 2 standby(s)");
    s_refused (h, "--standby", two, "--repl-quorum", "two", "--repl-quorum");
    s_refused (h, "--standby", two, "--repl-quorum", "-1", "--repl-quorum");
    s_refused (h, "--standby", two, "--repl-quorum", "1x", "--repl-quorum");
    s_refused (h, "--repl-quorum", "1", NULL, NULL, "--repl-quorum needs --standby");
}

static void
test_quorum_one_of_two (void **state)
{
    harness_t *h = *state;
    s_seed ("test_quorum_one_of_two");
    tk_shard_t primary, a, b;
    s_trio (h, &primary, &a, &b, "1");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    s_drive (client, 6, &model);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = s_repl (primary.endpoint, recs);
    assert_int_equal (count, 3);
    assert_int_equal (recs[0].role, RL_REPL_PRIMARY);
    assert_int_equal (recs[0].quorum, 1);
    assert_int_equal (recs[0].standbys, 2);
    //  b stops: one acknowledgement is the quorum, the primary goes on,
    //  well past its timeout.
    harness_kill (h, b.pid, SIGSTOP);
    int64_t until = zclock_mono () + 4 * REPL_TIMEOUT_MS;
    size_t batches = 0;
    while (zclock_mono () < until) {
        s_drive (client, 1, &model);
        batches++;
    }
    rl_status_rec_t st = s_status (primary.endpoint);
    assert_int_equal (st.state, RL_SHARD_SERVING);
    count = s_repl (primary.endpoint, recs);
    assert_int_equal (recs[0].flags & RL_REPL_FLAG_STALLED, 0);
    uint64_t pa = s_link_position (recs, count, a.endpoint);
    uint64_t pb = s_link_position (recs, count, b.endpoint);
    printf ("test_quorum_one_of_two: %zu batches acknowledged with b stopped; positions a %lu, "
            "b %lu, quorum %lu of %lu tapped\n",
            batches, (unsigned long) pa, (unsigned long) pb,
            (unsigned long) recs[0].quorum_position, (unsigned long) recs[0].position);
    assert_true (pa > pb);
    assert_int_equal (recs[0].quorum_position, pa); //  the highest, with a quorum of 1
    //  b continues and catches up from the log.
    harness_kill (h, b.pid, SIGCONT);
    s_drive (client, 2, &model);
    int64_t deadline = zclock_mono () + 20000;
    for (;;) {
        count = s_repl (primary.endpoint, recs);
        if (s_link_position (recs, count, b.endpoint) >= s_link_position (recs, count, a.endpoint)
            && recs[1].state == RL_REPL_STREAMING && recs[2].state == RL_REPL_STREAMING) {
            break;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (50);
    }
    s_finish (client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

static void
test_quorum_two_of_two (void **state)
{
    harness_t *h = *state;
    s_seed ("test_quorum_two_of_two");
    tk_shard_t primary, a, b;
    s_trio (h, &primary, &a, &b, "");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    s_drive (client, 4, &model);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = s_repl (primary.endpoint, recs);
    assert_int_equal (count, 3);
    assert_int_equal (recs[0].quorum, 2); //  the default: every standby
    harness_kill (h, b.pid, SIGSTOP);
    //  Within the timeout the primary stalls: busy, and says so.
    int64_t deadline = zclock_mono () + 10000;
    size_t busy = 0;
    while (busy == 0) {
        rl_transfer_t t = s_new_transfer ();
        tk_outcomes_sent (&s_log, &t); //  busy or unanswered: settled below
        rl_result_rec_t r;
        int rc = rl_client_create_transfers (client, &t, 1, &r, 1000);
        if (rc == 0) {
            tk_outcomes_answered (&s_log, s_log.count - 1, &r, 1, false, &model);
        } else {
            assert_true (rc == RL_STATUS_BUSY || rc == RL_CLIENT_TIMEOUT);
            busy += rc == RL_STATUS_BUSY;
            if (rc == RL_CLIENT_TIMEOUT) {
                rl_client_destroy (&client); //  a new socket: the old one's reply may come late
                client = rl_client_new (primary.endpoint);
            }
        }
        assert_true (zclock_mono () < deadline);
    }
    assert_int_equal (s_status (primary.endpoint).state, RL_SHARD_STALLED);
    count = s_repl (primary.endpoint, recs);
    assert_true ((recs[0].flags & RL_REPL_FLAG_STALLED) != 0);
    rl_id_t id = s_log.records[0].t.id;
    rl_transfer_t out;
    assert_int_equal (rl_client_lookup_transfers (client, &id, 1, &out, 1000), RL_STATUS_BUSY);
    //  b continues: the primary serves again.
    harness_kill (h, b.pid, SIGCONT);
    deadline = zclock_mono () + 20000;
    while (s_status (primary.endpoint).state != RL_SHARD_SERVING) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    s_drive (client, 4, &model);
    count = s_repl (primary.endpoint, recs);
    assert_int_equal (recs[0].flags & RL_REPL_FLAG_STALLED, 0);
    s_finish (client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_quorum_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_one_of_two, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_two_of_two, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
