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

    test_quorum_promote: a quorum of 1 of 2 standbys under load, one
    SIGSTOPped so that it lags, the primary SIGKILLed with a batch in
    flight. `rlctl promote s1 A,B` while the lagging standby is still
    stopped: the rule needs both fenced, so it refuses (exit 1) and
    changes nothing (the answering standby is neither fenced nor
    promoted); a single standby is refused as usage (exit 2), so are a
    duplicate and too many. Once the lagging standby continues, the same
    command (the lagging one named first) fences both and promotes the
    advanced one: every acknowledged transfer is there, unknown outcomes
    settle, retries get their original outcomes, and a rerun exits 0.

    test_quorum_promote_paused: the primary (quorum 1 of 2) SIGSTOPped
    instead, both standbys fenced and the advanced one promoted, new
    transfers taken there; the old primary, continued, never serves a
    read or acknowledges a write (busy or fenced until its status says
    fenced): no two primaries, no stale read.

    test_quorum_withdrawn: quorum 1 of 2, both standbys caught up. A
    standby promoted alone is refused (a write may be on the other only)
    and nothing changes; b withdrawn (fence): the primary, whose stream b
    held, fences itself and refuses writes; b wiped and started again is
    not seeded by it; a withdrawn and promoted holds every acknowledged
    write, and not the write the old primary refused.

    test_quorum_lost_disk: quorum 1 of 2, both standbys caught up; the
    primary's directory is lost (and the process with it) and b's copy
    wiped (two faults); the primary starts again on an empty directory,
    with a's seeds slowed past the timeout. b takes its seed at once; a's
    answer to the hello tells its copy's incarnation, not in the empty
    primary's history (older), found before any seed: no write is
    acknowledged, though b alone makes the quorum (before, the primary
    acknowledged writes that a's promotion then lost); it is stalled. a,
    promoted, holds every acknowledged transfer.

    test_quorum_first_seed_stalled: quorum 1 of 2, b on a first seed
    slowed by a failpoint, a SIGSTOPped: b answers pings but holds no copy
    of the stream, so the primary holds no lease: status and repl_status
    say stalled within the timeout and reads are answered busy, never left
    unanswered.

    test_quorum_standby_restart: quorum 1 of 2 under load, b SIGKILLed
    and started again at once, three times (a alone makes the quorum
    meanwhile). Events sent into the dead connection make b answer
    out_of_order at its return: the primary pauses before its next hello,
    and the log keeps what follows b's position meanwhile, so b catches
    up from the log; seeded once in all (it used to be seeded again at
    every return: the pause let a's progress trim the log).

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
#include "ring.h"
#include "rl_rand.h"
#include "replkit.h"
#include "testkit.h"

#define TAG             0x51554f52ull //  "QUOR"
#define LEDGER          850
#define ACCOUNTS        16
#define TRANSFERS_MAX   8000
#define BATCH_MAX       32
#define CALL_TIMEOUT_MS 5000
#define REPL_TIMEOUT    "400" //  --repl-timeout-ms
#define REPL_TIMEOUT_MS 400
#define RLCTL_WAIT_MS   60000
#define ARGS_MAX        24

static tk_outcome_t s_records[TRANSFERS_MAX];
static rk_load_t s_load = {.tag = TAG,
                           .ledger = LEDGER,
                           .accounts = ACCOUNTS,
                           .id_base = 400000,
                           .batch_max = BATCH_MAX,
                           .log = {.records = s_records, .capacity = TRANSFERS_MAX}};

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
s_trio_env (harness_t *h, tk_shard_t *primary, tk_shard_t *a, tk_shard_t *b, const char *q,
            char *b_env, const char *timeout)
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
        both[i]->env[0] = i == 1 ? b_env : NULL;
        assert_true (tk_shard_start (h, both[i]) > 0);
    }
    snprintf (standbys, sizeof standbys, "%s,%s", a->endpoint, b->endpoint);
    primary->args[0] = "--standby";
    primary->args[1] = standbys;
    primary->args[2] = "--repl-timeout-ms";
    primary->args[3] = (char *) timeout;
    if (*q) {
        primary->args[4] = "--repl-quorum";
        primary->args[5] = (char *) q;
    }
    assert_true (tk_shard_start (h, primary) > 0);
}

static void
s_trio (harness_t *h, tk_shard_t *primary, tk_shard_t *a, tk_shard_t *b, const char *q)
{
    s_trio_env (h, primary, a, b, q, NULL, REPL_TIMEOUT);
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
    s_refused (h, "--standby", "tcp://127.0.0.1:1,tcp://127.0.0.1:1", NULL, NULL, "twice");
}

static void
test_quorum_one_of_two (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_quorum_one_of_two");
    tk_shard_t primary, a, b;
    s_trio (h, &primary, &a, &b, "1");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 6, &model);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = rk_repl (primary.endpoint, recs);
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
        rk_drive (&s_load, client, 1, &model);
        batches++;
        zclock_sleep (10); //  a quiet machine would fill the outcome log
    }
    rl_status_rec_t st = rk_status (primary.endpoint);
    assert_int_equal (st.state, RL_SHARD_SERVING);
    count = rk_repl (primary.endpoint, recs);
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
    rk_drive (&s_load, client, 2, &model);
    int64_t deadline = zclock_mono () + 20000;
    for (;;) {
        count = rk_repl (primary.endpoint, recs);
        if (s_link_position (recs, count, b.endpoint) >= s_link_position (recs, count, a.endpoint)
            && recs[1].state == RL_REPL_STREAMING && recs[2].state == RL_REPL_STREAMING) {
            break;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (50);
    }
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

//  Runs rlctl --connect endpoint as the test's admin key with the
//  arguments that follow (NULL-terminated): its exit code, its output in
//  *out_p (malloc'd).
static int
s_rlctl (harness_t *h, const char *log, const char *endpoint, char **out_p, ...)
{
    static char rlctl[512], cert[512];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/tester.key_secret", tk_keys_dir (h));
    char *argv[ARGS_MAX] = {rlctl,
                            "--connect",
                            (char *) endpoint,
                            "--cert",
                            cert,
                            "--server-key",
                            (char *) tk_key (h, "shard", "s1"),
                            "--timeout-ms",
                            "15000"};
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
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, pid, RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    *out_p = harness_read_file (path, NULL);
    assert_non_null (*out_p);
    return WEXITSTATUS (wstatus);
}

//  rlctl promote s1 LIST RING exits `want` and says `needle`.
static void
s_promote_expect (harness_t *h, const char *log, const char *connect, const char *list,
                  const char *ring, int want, const char *needle)
{
    char *out = NULL;
    int64_t t0 = zclock_mono ();
    int rc = s_rlctl (h, log, connect, &out, "promote", "s1", list, ring, NULL);
    if (rc != want || !strstr (out, needle)) {
        fail_msg ("rlctl promote %s (%s): exit %d, want %d and '%s'; said:\n%s", list, log, rc,
                  want, needle, out);
    }
    printf ("test_quorum_promote: rlctl promote %s: exit %d in %ld ms\n", log, rc,
            (long) (zclock_mono () - t0));
    free (out);
}

//  The standby at endpoint: its repl_status record.
static rl_repl_rec_t
s_standby_repl (const char *endpoint)
{
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    assert_int_equal (rk_repl (endpoint, recs), 1);
    assert_int_equal (recs[0].role, RL_REPL_STANDBY);
    return recs[0];
}

static void
test_quorum_promote (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_quorum_promote");
    tk_shard_t primary, a, b;
    s_trio (h, &primary, &a, &b, "1");
    char ring_file[600];
    snprintf (ring_file, sizeof ring_file, "%s/s1.ring", harness_dir (h));
    ring_t *ring = ring_new (1);
    assert_int_equal (ring_add_shard (ring, "s1", primary.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_set_key (ring, "s1", tk_key (h, "shard", "s1")), RING_OK);
    assert_int_equal (ring_save_file (ring, ring_file), RING_OK);
    ring_destroy (&ring);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 6, &model);
    //  b stops and lags; the primary goes on with a alone.
    harness_kill (h, b.pid, SIGSTOP);
    rk_drive (&s_load, client, 40, &model);
    //  A batch in flight when the primary dies: its outcome is unknown.
    rl_transfer_t ts[BATCH_MAX];
    for (size_t i = 0; i < BATCH_MAX; i++) {
        ts[i] = rk_new_transfer (&s_load);
        tk_outcomes_sent (&s_load.log, &ts[i]);
    }
    uint8_t body[BATCH_MAX * RL_TRANSFER_SIZE];
    for (size_t i = 0; i < BATCH_MAX; i++) {
        codec_encode_transfer (&ts[i], body + i * RL_TRANSFER_SIZE);
    }
    rl_header_t rh;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    (void) rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, sizeof body, BATCH_MAX, 2, &rh,
                           &reply, &reply_size);
    free (reply);
    rl_client_destroy (&client);
    harness_kill (h, primary.pid, SIGKILL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    uint64_t pa = s_standby_repl (a.endpoint).position;
    char list[200], back[200];
    snprintf (list, sizeof list, "%s,%s", a.endpoint, b.endpoint);
    snprintf (back, sizeof back, "%s,%s", b.endpoint, a.endpoint);
    //  Bad input: one standby of a quorum of 1 of 2, a duplicate, too many.
    s_promote_expect (h, "promote-one", a.endpoint, a.endpoint, ring_file, 2,
                      "give at least 2 of them");
    char dup[200], many[400];
    snprintf (dup, sizeof dup, "%s,%s", a.endpoint, a.endpoint);
    snprintf (many, sizeof many, "%s,%s,%s,%s,%s", a.endpoint, b.endpoint, "tcp://127.0.0.1:1",
              "tcp://127.0.0.1:2", "tcp://127.0.0.1:3");
    s_promote_expect (h, "promote-dup", a.endpoint, dup, ring_file, 2, "given twice");
    s_promote_expect (h, "promote-many", a.endpoint, many, ring_file, 2, "at most 4 standbys");
    //  b is still stopped: both cannot be fenced; nothing changes.
    s_promote_expect (h, "promote-refused", a.endpoint, list, ring_file, 1, "nothing fenced");
    rl_repl_rec_t ra = s_standby_repl (a.endpoint);
    assert_int_equal (ra.state, RL_REPL_STREAMING);
    assert_int_equal (ra.position, pa);
    assert_int_equal (ra.quorum, 1);
    assert_int_equal (ra.standbys, 2);
    assert_int_equal (rk_status (a.endpoint).state, RL_SHARD_STANDBY);
    //  b continues, behind a: the rule fences both and promotes a.
    harness_kill (h, b.pid, SIGCONT);
    //  It applies what reached its socket before it stopped, then stays.
    uint64_t pb = s_standby_repl (b.endpoint).position, before = UINT64_MAX;
    while (pb != before) {
        zclock_sleep (300);
        before = pb;
        pb = s_standby_repl (b.endpoint).position;
    }
    printf ("test_quorum_promote: positions a %lu, b %lu (stopped)\n", (unsigned long) pa,
            (unsigned long) pb);
    assert_true (pa > pb);
    char needle[200];
    snprintf (needle, sizeof needle, "s1: promoted at %s", a.endpoint);
    s_promote_expect (h, "promote", a.endpoint, back, ring_file, 0, needle);
    assert_int_equal (rk_status (a.endpoint).state, RL_SHARD_SERVING);
    rl_repl_rec_t rb = s_standby_repl (b.endpoint);
    assert_int_equal (rb.state, RL_REPL_FENCED);
    assert_int_equal (rb.position, pb);
    //  Resumable: a rerun finds a serving and the ring out already.
    s_promote_expect (h, "promote-again", a.endpoint, back, ring_file, 0, "already the primary");
    client = rl_client_new (a.endpoint);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

static void
test_quorum_promote_paused (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_quorum_promote_paused");
    tk_shard_t primary, a, b;
    s_trio (h, &primary, &a, &b, "1");
    char ring_file[600];
    snprintf (ring_file, sizeof ring_file, "%s/s1.ring", harness_dir (h));
    ring_t *ring = ring_new (1);
    assert_int_equal (ring_add_shard (ring, "s1", primary.endpoint, 1.0), RING_OK);
    assert_int_equal (ring_set_key (ring, "s1", tk_key (h, "shard", "s1")), RING_OK);
    assert_int_equal (ring_save_file (ring, ring_file), RING_OK);
    ring_destroy (&ring);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 8, &model);
    rl_client_destroy (&client);
    harness_kill (h, primary.pid, SIGSTOP);
    char list[200];
    snprintf (list, sizeof list, "%s,%s", b.endpoint, a.endpoint);
    char *out = NULL;
    int rc = s_rlctl (h, "promote-paused", a.endpoint, &out, "promote", "s1", list, ring_file,
                      NULL);
    if (rc != 0) {
        fail_msg ("rlctl promote: exit %d; said:\n%s", rc, out);
    }
    //  Both held every acknowledged write: either may be the choice.
    const char *chosen = rk_status (a.endpoint).state == RL_SHARD_SERVING ? a.endpoint : b.endpoint;
    free (out);
    assert_int_equal (rk_status (chosen).state, RL_SHARD_SERVING);
    client = rl_client_new (chosen);
    rk_drive (&s_load, client, 4, &model);
    //  The old primary goes on: nothing it answers is served.
    harness_kill (h, primary.pid, SIGCONT);
    rl_client_t *old = rl_client_new (primary.endpoint);
    int64_t deadline = zclock_mono () + 10000;
    size_t refused = 0;
    for (;;) {
        rl_id_t id =
            s_load.log.records[s_load.log.count - 1].t.id; //  a transfer only the new one holds
        rl_transfer_t found;
        rc = rl_client_lookup_transfers (old, &id, 1, &found, 1000);
        assert_true (rc == RL_STATUS_BUSY || rc == RL_STATUS_FENCED || rc == RL_CLIENT_TIMEOUT);
        rl_transfer_t t = tk_transfer (tk_id (900000 + refused, TAG), tk_id (1, TAG),
                                       tk_id (2, TAG), 1, LEDGER);
        rl_result_rec_t r;
        rc = rl_client_create_transfers (old, &t, 1, &r, 1000);
        assert_true (rc == RL_STATUS_BUSY || rc == RL_STATUS_FENCED || rc == RL_CLIENT_TIMEOUT);
        refused++;
        if (rc == RL_CLIENT_TIMEOUT) {
            rl_client_destroy (&old);
            old = rl_client_new (primary.endpoint);
        }
        rl_status_rec_t st;
        if (rl_client_status (old, &st, 1000) == 0 && st.state == RL_SHARD_FENCED) {
            break;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    printf ("test_quorum_promote_paused: %s promoted; the old primary refused %zu reads and "
            "writes, then said fenced\n",
            chosen, refused);
    rl_client_destroy (&old);
    //  The ids the old primary refused were never applied anywhere.
    for (size_t i = 0; i < refused; i++) {
        rl_id_t id = tk_id (900000 + i, TAG);
        rl_transfer_t found;
        assert_int_equal (rl_client_lookup_transfers (client, &id, 1, &found, CALL_TIMEOUT_MS), 0);
        assert_int_equal (found.timestamp, 0);
    }
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

//  An admin operation without a body to the shard at endpoint: its status.
static int
s_admin (const char *endpoint, uint16_t op)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_header_t h;
    uint8_t *body = NULL;
    size_t size = 0;
    int rc = rl_client_call (c, op, NULL, 0, 0, CALL_TIMEOUT_MS, &h, &body, &size);
    free (body);
    rl_client_destroy (&c);
    return rc;
}

//  Waits until standbys a and b acknowledged everything the primary wrote.
static void
s_wait_caught_up (const tk_shard_t *primary, const tk_shard_t *a, const tk_shard_t *b)
{
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    int64_t deadline = zclock_mono () + 20000;
    for (;;) {
        size_t count = rk_repl (primary->endpoint, recs);
        if (s_link_position (recs, count, a->endpoint) == recs[0].position
            && s_link_position (recs, count, b->endpoint) == recs[0].position) {
            return;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
}

//  A trio with a quorum of 1 of 2 (test `name`), driven by the load, both
//  standbys holding every acknowledged write.
static void
s_trio_caught_up (harness_t *h, const char *name, tk_shard_t *primary, tk_shard_t *a, tk_shard_t *b,
                  tk_model_t *model)
{
    rk_load_start (&s_load, name);
    s_trio (h, primary, a, b, "1");
    tk_model_init (model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary->endpoint);
    rk_drive (&s_load, client, 6, model);
    rl_client_destroy (&client);
    s_wait_caught_up (primary, a, b);
}

//  Fences and promotes the standby at endpoint; waits until it serves.
static void
s_promote_alone (harness_t *h, const char *endpoint)
{
    assert_int_equal (s_admin (endpoint, RL_OP_FENCE), 0);
    assert_int_equal (s_admin (endpoint, RL_OP_PROMOTE), 0);
    int64_t deadline = zclock_mono () + 20000;
    for (;;) {
        rl_client_t *c = rl_client_new (endpoint);
        rl_status_rec_t st;
        int rc = rl_client_status (c, &st, 1000);
        rl_client_destroy (&c);
        if (rc == 0 && st.state == RL_SHARD_SERVING) {
            return;
        }
        if (zclock_mono () > deadline) {
            harness_keep (h);
            fail_msg ("the promoted standby does not serve (rc %d, state %d)", rc, (int) st.state);
        }
        zclock_sleep (50);
    }
}

static void
test_quorum_withdrawn (void **state)
{
    harness_t *h = *state;
    tk_shard_t primary, a, b;
    tk_model_t model;
    s_trio_caught_up (h, "test_quorum_withdrawn", &primary, &a, &b, &model);
    rl_client_t *client;
    int64_t deadline;
    //  Promoting one standby alone is refused: with a quorum of 1 of 2, a
    //  write may be on the other only. Nothing changes.
    assert_int_equal (s_admin (a.endpoint, RL_OP_PROMOTE), RL_STATUS_UNAVAILABLE);
    assert_int_equal (rk_status (a.endpoint).state, RL_SHARD_STANDBY);
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_SERVING);
    //  b is withdrawn from the primary's stream (the first step of the
    //  promotion rule): the primary is the old one from then on.
    assert_int_equal (s_admin (b.endpoint, RL_OP_FENCE), 0);
    int64_t t0 = zclock_mono ();
    deadline = t0 + 10000;
    while (rk_status (primary.endpoint).state != RL_SHARD_FENCED) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    printf ("test_quorum_withdrawn: the primary fenced itself %ld ms after b was withdrawn\n",
            (long) (zclock_mono () - t0));
    client = rl_client_new (primary.endpoint);
    rl_transfer_t refused = tk_transfer (tk_id (990001, TAG), tk_id (1, TAG), tk_id (2, TAG), 5,
                                         LEDGER);
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (client, &refused, 1, &r, CALL_TIMEOUT_MS),
                      RL_STATUS_FENCED);
    rl_client_destroy (&client);
    //  b wiped and started again (the runbook's step for a withdrawn
    //  standby): the old primary, fenced, seeds it no more.
    assert_int_equal (tk_shard_stop (h, &b, SIGTERM), 0);
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", b.data_dir);
    assert_int_equal (system (cmd), 0);
    assert_true (tk_shard_start (h, &b) > 0);
    zclock_sleep (4 * REPL_TIMEOUT_MS);
    rl_repl_rec_t sb = s_standby_repl (b.endpoint);
    assert_int_equal (sb.stream, 0);
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_FENCED);
    //  a, withdrawn too, is promoted: every acknowledged write is there.
    s_promote_alone (h, a.endpoint);
    client = rl_client_new (a.endpoint);
    rl_transfer_t found;
    assert_int_equal (rl_client_lookup_transfers (client, &refused.id, 1, &found, CALL_TIMEOUT_MS),
                      0);
    assert_int_equal (found.timestamp, 0);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

//  A write to the primary at endpoint is not acknowledged (busy, or no
//  answer within a second).
static void
s_write_refused (const char *endpoint, const char *when)
{
    rl_client_t *client = rl_client_new (endpoint);
    rl_account_t account = tk_account (ACCOUNTS + 1, TAG, LEDGER, 0);
    rl_result_rec_t r = {0};
    int rc = rl_client_create_accounts (client, &account, 1, &r, 1000);
    rl_client_destroy (&client);
    if (rc == 0 && r.result == RL_OK) {
        fail_msg ("the empty primary acknowledged a write %s", when);
    }
}

static void
test_quorum_lost_disk (void **state)
{
    harness_t *h = *state;
    tk_shard_t primary, a, b;
    tk_model_t model;
    s_trio_caught_up (h, "test_quorum_lost_disk", &primary, &a, &b, &model);
    rl_client_t *client;
    //  The primary's disk is lost, and the process with it; b's copy is
    //  wiped (a second fault: a standby rebuilt empty).
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s'", primary.data_dir);
    harness_kill (h, primary.pid, SIGSTOP); //  RocksDB writes no file while it is removed
    assert_int_equal (system (cmd), 0);
    harness_kill (h, primary.pid, SIGKILL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    assert_int_equal (tk_shard_stop (h, &b, SIGTERM), 0);
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s'", b.data_dir);
    assert_int_equal (system (cmd), 0);
    assert_true (tk_shard_start (h, &b) > 0);
    //  a's seeds are slowed well past the timeout: were a's copy checked
    //  only at a seed's end, b's quick seed would make the quorum long
    //  before (as a large copy's seed would).
    static char slow_seed[] = "RL_FAILPOINTS=repl.standby.seed_file=delay:2500@1";
    assert_int_equal (tk_shard_stop (h, &a, SIGTERM), 0);
    a.env[0] = slow_seed;
    assert_true (tk_shard_start (h, &a) > 0);
    //  Started again on an empty directory: b takes its seed at once,
    //  a's answer to the hello tells its copy's incarnation, which this
    //  primary's history does not hold. No write is acknowledged.
    assert_true (tk_shard_start (h, &primary) > 0);
    int64_t started = zclock_mono ();
    while (s_standby_repl (b.endpoint).stream == 0
           || zclock_mono () - started < 2 * REPL_TIMEOUT_MS) {
        assert_true (zclock_mono () - started < 20000);
        zclock_sleep (20);
    }
    s_write_refused (primary.endpoint, "with b seeded");
    //  b alone makes the quorum of 1; the primary serves nothing all the
    //  same.
    int64_t deadline = zclock_mono () + 20000;
    while (!tk_log_contains (h, "s1", "does not descend from (older)")) {
        if (zclock_mono () > deadline) {
            harness_keep (h);
            fail_msg ("the empty primary did not find a's copy older");
        }
        zclock_sleep (20);
    }
    zclock_sleep (2 * REPL_TIMEOUT_MS);
    s_write_refused (primary.endpoint, "with a's copy found older");
    assert_true (tk_log_contains (h, "s1", "which this primary's history does not hold"));
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_STALLED);
    assert_true (tk_log_contains (h, "s1", "STALLED: a standby holds a copy"));
    tk_shard_stop (h, &primary, SIGKILL);
    //  a, promoted, holds every acknowledged transfer.
    s_promote_alone (h, a.endpoint);
    client = rl_client_new (a.endpoint);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

static void
test_quorum_two_of_two (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_quorum_two_of_two");
    tk_shard_t primary, a, b;
    s_trio (h, &primary, &a, &b, "");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 4, &model);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = rk_repl (primary.endpoint, recs);
    assert_int_equal (count, 3);
    assert_int_equal (recs[0].quorum, 2); //  the default: every standby
    harness_kill (h, b.pid, SIGSTOP);
    //  Within the timeout the primary stalls: busy, and says so.
    int64_t deadline = zclock_mono () + 10000;
    size_t busy = 0;
    while (busy == 0) {
        rl_transfer_t t = rk_new_transfer (&s_load);
        tk_outcomes_sent (&s_load.log, &t); //  busy or unanswered: settled below
        rl_result_rec_t r;
        int rc = rl_client_create_transfers (client, &t, 1, &r, 1000);
        if (rc == 0) {
            tk_outcomes_answered (&s_load.log, s_load.log.count - 1, &r, 1, false, &model);
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
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_STALLED);
    count = rk_repl (primary.endpoint, recs);
    assert_true ((recs[0].flags & RL_REPL_FLAG_STALLED) != 0);
    rl_id_t id = s_load.log.records[0].t.id;
    rl_transfer_t out;
    assert_int_equal (rl_client_lookup_transfers (client, &id, 1, &out, 1000), RL_STATUS_BUSY);
    //  b continues: the primary serves again.
    harness_kill (h, b.pid, SIGCONT);
    deadline = zclock_mono () + 20000;
    while (rk_status (primary.endpoint).state != RL_SHARD_SERVING) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    rk_drive (&s_load, client, 4, &model);
    count = rk_repl (primary.endpoint, recs);
    assert_int_equal (recs[0].flags & RL_REPL_FLAG_STALLED, 0);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

//  The state of the link to the standby at endpoint.
static uint32_t
s_link_state (const char *primary, const char *endpoint)
{
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = rk_repl (primary, recs);
    for (size_t i = 1; i < count; i++) {
        if (strcmp (recs[i].endpoint, endpoint) == 0) {
            return recs[i].state;
        }
    }
    fail_msg ("no link to %s", endpoint);
    return 0;
}

static void
test_quorum_first_seed_stalled (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_quorum_first_seed_stalled");
    tk_shard_t primary, a, b;
    //  b's first seed is slow: every chunk waits 600 ms (a seed of 6 to 8
    //  files: 4-5 s), within the timeout of 1000 ms.
    static char fp_env[] = "RL_FAILPOINTS=repl.standby.seed_file=delay:600";
    s_trio_env (h, &primary, &a, &b, "1", fp_env, "1000");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 2, &model);
    int64_t deadline = zclock_mono () + 10000;
    while (s_link_state (primary.endpoint, b.endpoint) != RL_REPL_SEEDING) {
        assert_true (zclock_mono () < deadline); //  (it may answer unconfirmed at first)
        zclock_sleep (10);
    }
    //  a stops while b is still on its first seed: b pings, but holds no
    //  copy of this stream, so no quorum holds a lease. The primary says
    //  stalled and answers busy, never leaves a read unanswered.
    harness_kill (h, a.pid, SIGSTOP);
    int64_t t0 = zclock_mono ();
    deadline = t0 + 10000;
    while (rk_status (primary.endpoint).state != RL_SHARD_STALLED) {
        if (zclock_mono () > deadline) {
            harness_keep (h);
            fail_msg ("the primary does not say stalled with a stopped and a seeding standby "
                      "(b's link: state %u)",
                      s_link_state (primary.endpoint, b.endpoint));
        }
        zclock_sleep (20);
    }
    printf ("test_quorum_first_seed_stalled: stalled %ld ms after a stopped\n",
            (long) (zclock_mono () - t0));
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    rk_repl (primary.endpoint, recs);
    assert_true ((recs[0].flags & RL_REPL_FLAG_STALLED) != 0);
    rl_client_destroy (&client);
    client = rl_client_new (primary.endpoint);
    size_t busy = 0;
    for (int i = 0; i < 6; i++) {
        rl_id_t id = s_load.log.records[0].t.id;
        rl_transfer_t out;
        int rc = rl_client_lookup_transfers (client, &id, 1, &out, 1000);
        if (rc != RL_STATUS_BUSY) {
            fail_msg ("a read of a stalled primary answered %d, not busy (b's link: state %u)", rc,
                      s_link_state (primary.endpoint, b.endpoint));
        }
        busy++;
        zclock_sleep (50);
    }
    //  The case held: b has not streamed yet (seeding, or asked its
    //  position again when a delayed chunk outlasted the timeout).
    uint32_t b_state = s_link_state (primary.endpoint, b.endpoint);
    if (b_state != RL_REPL_SEEDING && b_state != RL_REPL_HELLO) {
        fail_msg ("b's link is in state %u: the case did not hold", b_state);
    }
    harness_kill (h, a.pid, SIGCONT);
    deadline = zclock_mono () + 20000;
    while (rk_status (primary.endpoint).state != RL_SHARD_SERVING) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    rk_drive (&s_load, client, 12, &model); //  enough transfers for the check
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &a, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
}

static void
test_quorum_standby_restart (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_quorum_standby_restart");
    tk_shard_t primary, a, b;
    s_trio_env (h, &primary, &a, &b, "1", NULL, "3000");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 20, &model);
    s_wait_caught_up (&primary, &a, &b);
    for (int round = 0; round < 3; round++) {
        rk_drive (&s_load, client, 5, &model);
        tk_shard_stop (h, &b, SIGKILL);
        rk_drive (&s_load, client, 5, &model); //  a alone makes the quorum
        assert_true (tk_shard_start (h, &b) > 0);
        rk_drive (&s_load, client, 20, &model);
        s_wait_caught_up (&primary, &a, &b);
    }
    char seeded[300], from_log[300];
    snprintf (seeded, sizeof seeded, "replication to %s: seeding at position", b.endpoint);
    snprintf (from_log, sizeof from_log, "replication to %s: streaming from position", b.endpoint);
    printf ("test_quorum_standby_restart: b seeded %zu time(s), streamed from the log %zu, "
            "events refused %zu\n",
            tk_log_count (h, "s1", seeded), tk_log_count (h, "s1", from_log),
            tk_log_count (h, "s1", "an event was answered"));
    assert_int_equal (tk_log_count (h, "s1", seeded), 1);
    assert_true (tk_log_count (h, "s1", from_log) >= 1);
    rk_finish (&s_load, client, &model);
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
        cmocka_unit_test_setup_teardown (test_quorum_promote, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_promote_paused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_withdrawn, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_lost_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_first_seed_stalled, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quorum_standby_restart, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
