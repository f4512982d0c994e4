/*  test_replication_fence.c: the fence of a promotion, lost disks and a
    stopped standby (docs/replication.md, "Promotion and the fence").

    test_fence_running: the primary is SIGSTOPped while its standby is
    promoted and takes new transfers, then continued: from then on it
    answers no read and no write but busy (its lease ran out) or fenced
    (it heard the promoted shard), never a stale "not found"; status says
    fenced. Hostile replication messages sent to the promoted primary are
    answered with their codes.

    test_fence_restart: the primary is SIGKILLed, its standby promoted; the
    old primary restarted with its command line hears fenced from the
    promoted shard and refuses writes and reads, and stays fenced across a
    restart (its marker); started as a standby of the new primary on the
    same directory it is wiped and re-seeded (killed the moment the seed,
    a copy of the promoted primary, is in place, and restarted: a standby,
    not a second primary fencing the real one), and the new primary, given
    it as its standby, acknowledges writes again.

    test_lost_disk: the primary's data directory is deleted and the
    process killed, then started again on an empty directory: its seed
    is refused older (the standby keeps its copy) and it releases no
    write; the promoted standby holds every acknowledged transfer.

    test_rolled_back: the primary's data directory is copied while it
    runs (SIGSTOPped: a snapshot), one more batch is acknowledged, and the
    primary is killed 100 ms later (its pings 1 s apart) and started on
    the snapshot: the standby's copy is of an incarnation its history
    holds, but the history ends it before the head the primary
    acknowledged and told the standby (at once, in a ping). It is refused
    as older (the standby keeps its copy, the primary stalls); promoted,
    the standby holds every acknowledged transfer.

    test_older_wiped: the same lost disk, and the operator keeps the
    primary's (empty) data: the standby's older copy is wiped. The
    primary, stalled while the copy was there, sees the empty standby at
    its next hello (within seconds, not the 30 s of a refused seed),
    seeds it and serves again. No money moves (an account only).

    test_fence_by_ring: a primary fenced by a ring (the one rlctl promote
    loads at its endpoint) while its standby still streams from it ships
    nothing more: its fence marker never reaches the standby, which keeps
    its copy across a restart (it used to take the marker, and wipe itself
    as a fenced former primary at its next start). Hostile batches that
    write a standby's own marks (a promotion, a fence, its position; a
    range delete over them), even from the shard's own key, are refused
    malformed. The standby, promoted, holds every acknowledged transfer.

    test_refused_backoff: a standby that refuses every new event of its
    primary's stream (the failpoint repl.standby.refuse) is asked its
    position again after a pause that doubles up to --repl-timeout-ms / 4,
    not in a loop of hellos and refusals at full speed (it answered over
    3,000 a second). Started again without the failpoint, it takes the
    held write at the primary's next hello, and the write answers.

    test_promote_mid_seed: the primary restarts (its standby is re-seeded)
    and dies while the seed is held by a failpoint: the standby drops the
    seed and promotes the copy it holds, every acknowledged transfer in it.

    test_seed_between_renames: the standby dies between a re-seed's two
    renames (its copy moved aside, the seed complete): its start installs
    the seed; promoted later, it holds every acknowledged transfer.

    test_standby_stopped: a SIGSTOPped standby: a semi-synchronous primary
    stalls (writes and reads busy after the timeout; /readyz 503 saying
    replication stalled, the gauge ringledger_shard_repl_stalled 1) and
    goes on when the standby catches up; an asynchronous one keeps serving, and the standby
    catches up after SIGCONT.

    Each ends with exactly-once over every id (settle, retry a sample) and
    the strong conservation check. RL_SEED=<n> replays a run.
*/
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "replica.h"
#include "ring.h"
#include "rl_rand.h"
#include "replkit.h"
#include "testkit.h"

#define TAG             0x46454e43ull //  "FENC"
#define LEDGER          840
#define ACCOUNTS        16
#define TRANSFERS_MAX   4000
#define BATCH_MAX       32
#define CALL_TIMEOUT_MS 5000
#define REPL_TIMEOUT    "400" //  --repl-timeout-ms: the lease a promotion waits out

static tk_outcome_t s_records[TRANSFERS_MAX];
static rk_load_t s_load = {.tag = TAG,
                           .ledger = LEDGER,
                           .accounts = ACCOUNTS,
                           .id_base = 300000,
                           .batch_max = BATCH_MAX,
                           .log = {.records = s_records, .capacity = TRANSFERS_MAX}};

static const char *s_repl_timeout = REPL_TIMEOUT; //  the primaries s_pair starts

//  The status of the standby at endpoint (asserted to be one).
static rl_status_rec_t
s_standby_status (const char *endpoint)
{
    rl_status_rec_t st = rk_status (endpoint);
    assert_int_equal (st.state, RL_SHARD_STANDBY);
    return st;
}

//  A standby's position in its primary's stream.
static uint64_t
s_position (const char *endpoint)
{
    return s_standby_status (endpoint).commits;
}

//  Replication messages the standby at endpoint refused (status `malformed`).
static uint64_t
s_refusals (const char *endpoint)
{
    return s_standby_status (endpoint).malformed;
}

//  Waits until status at endpoint says state (a new socket each time: a
//  promoted standby reopens).
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

//  A write to a shard that must refuse it: the status it answered.
static int
s_write_refused (rl_client_t *client)
{
    rl_transfer_t t = tk_transfer (tk_id (900000 + rl_rand_next (&s_load.rng) % 1000, TAG),
                                   tk_id (1, TAG), tk_id (2, TAG), 1, LEDGER);
    rl_result_rec_t r;
    return rl_client_create_transfers (client, &t, 1, &r, 1000);
}

//  The last `count` transfers of the log, looked up at endpoint: the
//  answer's status (0: served).
static int
s_read (rl_client_t *client, size_t count)
{
    rl_id_t ids[8];
    rl_transfer_t out[8];
    assert_true (count <= 8 && count <= s_load.log.count);
    for (size_t i = 0; i < count; i++) {
        ids[i] = s_load.log.records[s_load.log.count - 1 - i].t.id;
    }
    return rl_client_lookup_transfers (client, ids, count, out, 1000);
}

static int
s_setup (void **state)
{
    *state = harness_new ("replication_fence");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

//  Primary s1 with accounts, replicating to its standby (same name and
//  key, its own port and data directory), started; with --metrics-bind
//  s_pair_metrics when that is set.
static const char *s_pair_metrics;
static void
s_pair (harness_t *h, tk_shard_t *primary, tk_shard_t *standby, const char *mode)
{
    tk_shard_init (h, primary, "s1");
    primary->durability = "sync";
    primary->checkpoint_transfers = 50;
    tk_shard_prepare_accounts (h, primary, TAG, LEDGER, ACCOUNTS);
    tk_shard_init (h, standby, "s1");
    snprintf (standby->data_dir, sizeof standby->data_dir, "%s/s1-standby", harness_dir (h));
    standby->durability = "sync";
    standby->checkpoint_transfers = 50;
    standby->args[0] = "--standby-of";
    standby->args[1] = primary->endpoint;
    assert_true (tk_shard_start (h, standby) > 0);
    primary->args[0] = "--standby";
    primary->args[1] = standby->endpoint;
    primary->args[2] = "--repl-timeout-ms";
    primary->args[3] = (char *) s_repl_timeout;
    primary->args[4] = "--repl-mode";
    primary->args[5] = (char *) mode;
    primary->args[6] = s_pair_metrics ? "--metrics-bind" : NULL;
    primary->args[7] = (char *) s_pair_metrics;
    assert_true (tk_shard_start (h, primary) > 0);
}

//  Load on the pair (model initialised), then the standby restarted with
//  fp_env (RL_FAILPOINTS=...) and the primary restarted (with
//  --repl-timeout-ms repl_timeout, unless NULL): a new stream, so a seed
//  of the standby begins.
static void
s_reseed_armed (harness_t *h, tk_shard_t *primary, tk_shard_t *standby, tk_model_t *model,
                char *fp_env, char *repl_timeout)
{
    tk_model_init (model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary->endpoint);
    rk_drive (&s_load, client, 8, model);
    rl_client_destroy (&client);
    tk_shard_stop (h, standby, SIGTERM);
    standby->env[0] = fp_env;
    standby->env[1] = NULL;
    assert_true (tk_shard_start (h, standby) > 0);
    tk_shard_stop (h, primary, SIGTERM);
    if (repl_timeout) {
        primary->args[3] = repl_timeout;
    }
    assert_true (tk_shard_start (h, primary) > 0);
}

//  One replication message from dealer; the status it was answered.
static uint32_t
s_repl (void *dealer, const replica_header_t *h, size_t header_size, const void *data, size_t size)
{
    uint8_t raw[REPLICA_HEADER_SIZE];
    replica_header_encode (h, raw);
    zsock_send (dealer, "bb", raw, header_size, data, size);
    zmsg_t *msg = zmsg_recv (dealer);
    if (!msg) {
        return UINT32_MAX;
    }
    zframe_t *f = zmsg_first (msg);
    replica_header_t a;
    assert_int_equal (replica_header_decode (zframe_data (f), zframe_size (f), &a), 0);
    assert_int_equal (a.kind, REPLICA_ACK);
    if (h->kind == REPLICA_PING && a.status == REPLICA_ST_OK) {
        assert_true (a.count == h->count); //  the ping's id, echoed
    }
    zmsg_destroy (&msg);
    return a.status;
}

//  Replication messages to a serving primary: the shard's own key gets
//  fenced (promoted) or not_standby, a malformed one malformed, another
//  key unauthorized; none changes anything.
static void
s_repl_to_primary (harness_t *h, const char *endpoint, uint32_t expect)
{
    void *own = tk_dealer_as (h, "s1", "s1", endpoint);
    zsock_set_rcvtimeo (own, CALL_TIMEOUT_MS);
    replica_header_t ping = {.magic = REPLICA_MAGIC,
                             .version = REPLICA_VERSION,
                             .kind = REPLICA_PING,
                             .count = 77,
                             .key_size = 400,
                             .session = 3};
    assert_int_equal (s_repl (own, &ping, REPLICA_HEADER_SIZE, "", 0), expect);
    replica_header_t hello = ping;
    hello.kind = REPLICA_HELLO;
    assert_int_equal (s_repl (own, &hello, REPLICA_HEADER_SIZE, "", 0), expect);
    replica_header_t bad = ping;
    bad.kind = REPLICA_ACK; //  an acknowledgement is no request
    assert_int_equal (s_repl (own, &bad, REPLICA_HEADER_SIZE, "", 0), REPLICA_ST_MALFORMED);
    bad = ping;
    bad.version = 9;
    assert_int_equal (s_repl (own, &bad, REPLICA_HEADER_SIZE, "", 0), REPLICA_ST_MALFORMED);
    bad = ping;
    bad.kind = 99;
    assert_int_equal (s_repl (own, &bad, REPLICA_HEADER_SIZE, "xyz", 3), REPLICA_ST_MALFORMED);
    zsock_destroy ((zsock_t **) &own);
    (void) tk_key (h, "client", "intruder");
    void *other = tk_dealer_as (h, "intruder", "s1", endpoint);
    zsock_set_rcvtimeo (other, CALL_TIMEOUT_MS);
    uint32_t st = s_repl (other, &ping, REPLICA_HEADER_SIZE, "", 0);
    assert_true (st == REPLICA_ST_UNAUTHORIZED || st == UINT32_MAX); //  or refused at ZAP
    zsock_destroy ((zsock_t **) &other);
}

static void
test_fence_running (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_fence_running");
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 8, &model);
    rl_client_destroy (&client);
    //  Not a standby: a primary that was never promoted says so.
    s_repl_to_primary (h, primary.endpoint, REPLICA_ST_NOT_STANDBY);
    //  The primary stops (a pause, a partition) while its standby is
    //  promoted and takes new transfers.
    harness_kill (h, primary.pid, SIGSTOP);
    int64_t t0 = zclock_mono ();
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    printf ("test_fence_running: promote -> serving %ld ms (the lease: " REPL_TIMEOUT " ms)\n",
            (long) (zclock_mono () - t0));
    client = rl_client_new (standby.endpoint);
    rk_drive (&s_load, client, 4, &model);
    s_repl_to_primary (h, standby.endpoint, REPLICA_ST_FENCED);
    //  The old primary goes on: it never answers the new transfers "not
    //  found", nor takes a write.
    harness_kill (h, primary.pid, SIGCONT);
    rl_client_t *old = rl_client_new (primary.endpoint);
    int64_t deadline = zclock_mono () + 10000;
    size_t busy = 0, fenced = 0;
    for (;;) {
        int rc = s_read (old, 8);
        assert_true (rc == RL_STATUS_BUSY || rc == RL_STATUS_FENCED || rc == RL_CLIENT_TIMEOUT);
        busy += rc == RL_STATUS_BUSY;
        rc = s_write_refused (old);
        assert_true (rc == RL_STATUS_BUSY || rc == RL_STATUS_FENCED || rc == RL_CLIENT_TIMEOUT);
        rl_status_rec_t st;
        assert_int_equal (rl_client_status (old, &st, CALL_TIMEOUT_MS), 0);
        if (st.state == RL_SHARD_FENCED) {
            break;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
    for (int i = 0; i < 3; i++) {
        fenced += s_read (old, 8) == RL_STATUS_FENCED;
        fenced += s_write_refused (old) == RL_STATUS_FENCED;
    }
    assert_int_equal (fenced, 6);
    printf ("test_fence_running: the old primary answered busy %zu times, then fenced\n", busy);
    rl_client_destroy (&old);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

static void
test_fence_restart (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_fence_restart");
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 8, &model);
    rl_client_destroy (&client);
    harness_kill (h, primary.pid, SIGKILL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    client = rl_client_new (standby.endpoint);
    rk_drive (&s_load, client, 4, &model);
    //  The old primary comes back with its command line: its standby, now
    //  the primary, answers fenced; it serves nothing.
    assert_true (tk_shard_start (h, &primary) > 0);
    s_wait_state (primary.endpoint, RL_SHARD_FENCED);
    rl_client_t *old = rl_client_new (primary.endpoint);
    assert_int_equal (s_write_refused (old), RL_STATUS_FENCED);
    assert_int_equal (s_read (old, 8), RL_STATUS_FENCED);
    rl_client_destroy (&old);
    //  The fence is on its disk: a restart is fenced at once.
    tk_shard_stop (h, &primary, SIGTERM);
    assert_true (tk_shard_start (h, &primary) > 0);
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_FENCED);
    old = rl_client_new (primary.endpoint);
    assert_int_equal (s_write_refused (old), RL_STATUS_FENCED);
    rl_client_destroy (&old);
    tk_shard_stop (h, &primary, SIGTERM);
    //  The runbook: the old primary starts as a standby of the new one on
    //  its directory (wiped), and the new primary names it its standby.
    //  It dies the moment the seed (a copy of the promoted primary, its
    //  promotion mark included) is in place: restarted, it must be a
    //  standby, not a second primary that fences the real one.
    memset (primary.args, 0, sizeof primary.args);
    primary.args[0] = "--standby-of";
    primary.args[1] = standby.endpoint;
    static char seed_crash[] = "RL_FAILPOINTS=repl.standby.seed_installed=crash@1";
    primary.env[0] = seed_crash;
    assert_true (tk_shard_start (h, &primary) > 0);
    assert_int_equal (s_position (primary.endpoint), 0); //  wiped: waits for a seed
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
    memset (standby.args, 0, sizeof standby.args);
    standby.args[0] = "--standby";
    standby.args[1] = primary.endpoint;
    standby.args[2] = "--repl-timeout-ms";
    standby.args[3] = REPL_TIMEOUT;
    assert_true (tk_shard_start (h, &standby) > 0);
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    primary.env[0] = NULL;
    assert_true (tk_shard_start (h, &primary) > 0);
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_STANDBY);
    //  Stalled a moment while its standby restarts, never fenced.
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    client = rl_client_new (standby.endpoint);
    rk_drive (&s_load, client, 4, &model); //  acknowledged: the re-seeded standby holds them
    assert_true (s_position (primary.endpoint) > 0);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

//  The promoted standby is killed while it waits out the old primary's
//  lease and restarted at once: it still serves only after that lease, so
//  the old primary, continued then, never answers a read the new one has
//  made stale.
static void
test_restart_in_lease (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_restart_in_lease");
    tk_shard_t primary, standby;
    s_repl_timeout = "4000";
    s_pair (h, &primary, &standby, "semi");
    s_repl_timeout = REPL_TIMEOUT;
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 4, &model);
    rl_client_destroy (&client);
    harness_kill (h, primary.pid, SIGSTOP);
    int64_t t0 = zclock_mono ();
    rk_promote (standby.endpoint);
    assert_true (tk_shard_stop (h, &standby, SIGKILL) >= 0);
    assert_true (tk_shard_start (h, &standby) > 0); //  the marker: it opens as the primary
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    printf ("test_restart_in_lease: promote -> restarted -> serving %ld ms (the lease: 4000 "
            "ms)\n",
            (long) (zclock_mono () - t0));
    client = rl_client_new (standby.endpoint);
    rk_drive (&s_load, client, 2, &model);
    harness_kill (h, primary.pid, SIGCONT);
    rl_client_t *old = rl_client_new (primary.endpoint);
    for (int i = 0; i < 3; i++) {
        int rc = s_read (old, 8);
        assert_true (rc == RL_STATUS_BUSY || rc == RL_STATUS_FENCED || rc == RL_CLIENT_TIMEOUT);
    }
    rl_client_destroy (&old);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

static void
test_lost_disk (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_lost_disk");
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 12, &model);
    rl_client_destroy (&client);
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s'", primary.data_dir);
    harness_kill (h, primary.pid, SIGSTOP); //  RocksDB writes no file while it is removed
    assert_int_equal (system (cmd), 0);     //  the disk is lost...
    harness_kill (h, primary.pid, SIGKILL); //  ...and the process with it
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    //  Started again on an empty data directory (a disk replaced, and a
    //  service manager's restart), three times (its start counter passes
    //  the copy's: two starts made the copy's): a new shard's history,
    //  whose seed the standby refuses (older) every time. The standby
    //  keeps its copy; the primary, stalled, releases nothing. (Counted
    //  by the primary's line, one per process: the standby's error lines
    //  are rate-limited to one a second, and the starts come faster.)
    for (size_t start = 1; start <= 3; start++) {
        const char *older = "does not descend from (older)";
        size_t refused = tk_log_count (h, "s1", older);
        assert_true (tk_shard_start (h, &primary) > 0);
        int64_t deadline = zclock_mono () + 20000;
        while (tk_log_count (h, "s1", older) == refused && zclock_mono () < deadline) {
            zclock_sleep (20);
        }
        assert_int_equal (tk_log_count (h, "s1", older), refused + 1);
        client = rl_client_new (primary.endpoint);
        rl_account_t a = tk_account (ACCOUNTS + 1, TAG, LEDGER, 0);
        rl_result_rec_t r;
        int rc = rl_client_create_accounts (client, &a, 1, &r, 1000);
        assert_true (rc != 0 || r.result != RL_OK); //  busy, or no answer: nothing released
        rl_client_destroy (&client);
        assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_STALLED);
        tk_shard_stop (h, &primary, SIGKILL);
    }
    assert_true (tk_log_contains (h, "s1", "which this primary's history does not hold"));
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    client = rl_client_new (standby.endpoint);
    rk_finish (&s_load, client, &model); //  every acknowledged transfer is there
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

static void
test_rolled_back (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_rolled_back");
    tk_shard_t primary, standby;
    s_repl_timeout = "4000"; //  pings 1 s apart: the last head goes at once, not with them
    s_pair (h, &primary, &standby, "semi");
    s_repl_timeout = REPL_TIMEOUT;
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 6, &model);
    char snapshot[1100], cmd[2400];
    snprintf (snapshot, sizeof snapshot, "%s/s1-snapshot", harness_dir (h));
    snprintf (cmd, sizeof cmd, "cp -a -- '%s' '%s'", primary.data_dir, snapshot);
    harness_kill (h, primary.pid, SIGSTOP); //  no file changes while it is copied
    assert_int_equal (system (cmd), 0);
    harness_kill (h, primary.pid, SIGCONT);
    rk_drive (&s_load, client, 1, &model); //  acknowledged after the snapshot
    rl_client_destroy (&client);
    zclock_sleep (100);
    tk_shard_stop (h, &primary, SIGKILL);
    uint64_t position = s_position (standby.endpoint);
    //  The snapshot restored in its place, and started.
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s' && mv -- '%s' '%s'", primary.data_dir, snapshot,
              primary.data_dir);
    assert_int_equal (system (cmd), 0);
    assert_true (tk_shard_start (h, &primary) > 0);
    s_wait_state (primary.endpoint, RL_SHARD_STALLED);
    assert_true (tk_log_contains (h, "s1", "its data was rolled back"));
    assert_true (tk_log_contains (h, "s1", "does not descend from (older)"));
    client = rl_client_new (primary.endpoint);
    rl_account_t a = tk_account (ACCOUNTS + 1, TAG, LEDGER, 0);
    rl_result_rec_t r;
    int rc = rl_client_create_accounts (client, &a, 1, &r, 1000);
    assert_true (rc != 0 || r.result != RL_OK); //  busy, or no answer: nothing released
    rl_client_destroy (&client);
    assert_int_equal (s_position (standby.endpoint), position); //  the copy kept
    tk_shard_stop (h, &primary, SIGKILL);
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    client = rl_client_new (standby.endpoint);
    rk_finish (&s_load, client, &model); //  every acknowledged transfer is there
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

static void
test_older_wiped (void **state)
{
    harness_t *h = *state;
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    //  An acknowledged write (semi): the standby holds a copy of it.
    rl_client_t *client = rl_client_new (primary.endpoint);
    rl_account_t a = tk_account (ACCOUNTS + 1, TAG, LEDGER, 0);
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_accounts (client, &a, 1, &r, CALL_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_OK);
    rl_client_destroy (&client);
    char cmd[1200];
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s'", primary.data_dir);
    harness_kill (h, primary.pid, SIGSTOP);
    assert_int_equal (system (cmd), 0);
    harness_kill (h, primary.pid, SIGKILL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    assert_true (tk_shard_start (h, &primary) > 0);
    s_wait_state (primary.endpoint, RL_SHARD_STALLED);
    assert_true (tk_log_contains (h, "s1", "does not descend from (older)"));
    //  The operator keeps the primary's data: the standby is wiped.
    assert_int_equal (tk_shard_stop (h, &standby, SIGTERM), 0);
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s'", standby.data_dir);
    assert_int_equal (system (cmd), 0);
    int64_t t0 = zclock_mono ();
    assert_true (tk_shard_start (h, &standby) > 0);
    s_wait_state (primary.endpoint, RL_SHARD_SERVING);
    int64_t took = zclock_mono () - t0;
    printf ("test_older_wiped: serving %ld ms after the standby was wiped\n", (long) took);
    assert_true (took < 15000);
    assert_true (tk_log_contains (h, "s1", "no longer holds an older copy"));
    client = rl_client_new (primary.endpoint);
    assert_int_equal (rl_client_create_accounts (client, &a, 1, &r, CALL_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_OK);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

//  A WriteBatch of one record into the meta family (the default one):
//  a put of key (value: 8 zero bytes), or a range delete [key, end).
static size_t
s_meta_batch (uint8_t *out, const char *key, const char *end)
{
    memset (out, 0, 12);
    out[8] = 1; //  count 1, little-endian
    size_t n = 12;
    out[n++] = end ? 0xF : 0x1; //  kTypeRangeDeletion, kTypeValue
    out[n++] = (uint8_t) strlen (key);
    memcpy (out + n, key, strlen (key));
    n += strlen (key);
    const char *value = end ? end : "\0\0\0\0\0\0\0\0";
    size_t value_size = end ? strlen (end) : 8;
    out[n++] = (uint8_t) value_size;
    memcpy (out + n, value, value_size);
    return n + value_size;
}

//  Batches that write the standby's own marks, sent in its stream from
//  the shard's own key: each refused malformed.
static void
s_marks_refused (harness_t *h, const tk_shard_t *standby)
{
    rl_client_t *c = rl_client_new (standby->endpoint);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = 0;
    assert_int_equal (rl_client_repl_status (c, recs, &count, CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    assert_int_equal (recs[0].role, RL_REPL_STANDBY);
    void *own = tk_dealer_as (h, "s1", "s1", standby->endpoint);
    zsock_set_rcvtimeo (own, CALL_TIMEOUT_MS);
    const char *keys[][2] = {{REPLICA_META_PROMOTED, NULL},
                             {REPLICA_META_FENCED, NULL},
                             {REPLICA_META_POSITION, NULL},
                             {"events", "z"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint8_t batch[64];
        size_t size = s_meta_batch (batch, keys[i][0], keys[i][1]);
        replica_header_t hb = {.magic = REPLICA_MAGIC,
                               .version = REPLICA_VERSION,
                               .kind = REPLICA_BATCH,
                               .stream = recs[0].stream,
                               .seq = recs[0].position + 1,
                               .data_size = size};
        assert_int_equal (s_repl (own, &hb, REPLICA_HEADER_SIZE, batch, size),
                          REPLICA_ST_MALFORMED);
    }
    zsock_destroy ((zsock_t **) &own);
}

static void
test_fence_by_ring (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_fence_by_ring");
    tk_shard_t primary, standby;
    s_repl_timeout = "2000"; //  the slow applies below stay within it
    s_pair (h, &primary, &standby, "semi");
    s_repl_timeout = REPL_TIMEOUT;
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 8, &model);
    rl_client_destroy (&client);
    s_marks_refused (h, &standby);
    //  Its error line, rate-limited to one a second: the marker's, had it
    //  come, would be another.
    const char *marks = "writes this standby's own marks";
    zclock_sleep (1100);
    size_t refused = tk_log_count (h, "s1", marks);
    assert_true (refused >= 1);
    //  The standby applies each event 0.6 s late: a write is in flight
    //  when the fence comes, and its acknowledgement comes after it (what
    //  used to ship the marker).
    static char slow[] = "RL_FAILPOINTS=repl.standby.before_apply=delay:600";
    assert_int_equal (tk_shard_stop (h, &standby, SIGTERM), 0);
    standby.env[0] = slow;
    standby.env[1] = NULL;
    assert_true (tk_shard_start (h, &standby) > 0);
    client = rl_client_new (primary.endpoint);
    rl_account_t a = tk_account (ACCOUNTS + 1, TAG, LEDGER, 0);
    rl_result_rec_t r;
    int64_t deadline = zclock_mono () + 20000;
    while (rl_client_create_accounts (client, &a, 1, &r, 3000) != 0 || r.result != RL_OK) {
        assert_true (zclock_mono () < deadline); //  busy until the standby streams again
        zclock_sleep (50);
    }
    //  The ring that gives s1 to its standby, loaded into the primary
    //  alone while the write is in flight: fenced, with its standby still
    //  streaming. (Read first: a ring read waits for the standby.)
    ring_t *ring = tk_ring_of (primary.endpoint, CALL_TIMEOUT_MS);
    assert_int_equal (ring_set_endpoint (ring, "s1", standby.endpoint), RING_OK);
    ring_set_epoch (ring, ring_epoch (ring) + 1);
    a = tk_account (ACCOUNTS + 2, TAG, LEDGER, 0);
    assert_int_equal (rl_client_create_accounts (client, &a, 1, &r, 150), RL_CLIENT_TIMEOUT);
    rl_client_destroy (&client);
    assert_int_equal (tk_ring_load (primary.endpoint, ring, CALL_TIMEOUT_MS), RL_STATUS_FENCED);
    ring_destroy (&ring);
    s_wait_state (primary.endpoint, RL_SHARD_FENCED);
    zclock_sleep (2000); //  the write's event and its acknowledgement; a marker's, had it gone
    uint64_t position = s_position (standby.endpoint);
    //  Restarted, the standby keeps its copy: it never took the marker.
    assert_int_equal (tk_shard_stop (h, &standby, SIGTERM), 0);
    standby.env[0] = NULL;
    assert_true (tk_shard_start (h, &standby) > 0);
    assert_int_equal (s_position (standby.endpoint), position);
    assert_false (tk_log_contains (h, "s1", "is a former primary fenced by a promotion"));
    assert_int_equal (tk_log_count (h, "s1", marks), refused);
    tk_shard_stop (h, &primary, SIGTERM);
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    client = rl_client_new (standby.endpoint);
    rk_finish (&s_load, client, &model); //  every acknowledged transfer is there
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

static void
test_refused_backoff (void **state)
{
    harness_t *h = *state;
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    //  A write answered (semi): the standby streams (its seed is over).
    rl_client_t *client = rl_client_new (primary.endpoint);
    uint64_t n = ACCOUNTS + 1;
    rl_account_t a = tk_account (n, TAG, LEDGER, 0);
    rl_result_rec_t r;
    int64_t deadline = zclock_mono () + 10000;
    while (rl_client_create_accounts (client, &a, 1, &r, 1000) != 0 || r.result != RL_OK) {
        assert_true (zclock_mono () < deadline); //  busy until the seed is in
        zclock_sleep (50);
    }
    static char refuse[] = "RL_FAILPOINTS=repl.standby.refuse=error";
    assert_int_equal (tk_shard_stop (h, &standby, SIGTERM), 0);
    standby.env[0] = refuse;
    standby.env[1] = NULL;
    assert_true (tk_shard_start (h, &standby) > 0);
    uint64_t position = s_position (standby.endpoint);
    //  Writes whose events the standby refuses: held (semi), unanswered.
    //  Each a new account, so that each is an event.
    deadline = zclock_mono () + 10000;
    while (s_refusals (standby.endpoint) == 0) {
        assert_true (zclock_mono () < deadline);
        a = tk_account (++n, TAG, LEDGER, 0);
        rl_client_create_accounts (client, &a, 1, &r, 200); //  busy, or no answer
    }
    uint64_t before = s_refusals (standby.endpoint);
    zclock_sleep (2000);
    uint64_t refusals = s_refusals (standby.endpoint) - before;
    //  At most one a 100 ms (400 / 4) once the pause has doubled up.
    printf ("test_refused_backoff: %" PRIu64 " refusals in 2 s\n", refusals);
    assert_true (refusals >= 5 && refusals <= 40);
    assert_true (tk_log_contains (h, "s1", "an event was answered malformed"));
    //  The standby takes the stream again: the write answers.
    assert_int_equal (tk_shard_stop (h, &standby, SIGTERM), 0);
    standby.env[0] = NULL;
    assert_true (tk_shard_start (h, &standby) > 0);
    deadline = zclock_mono () + 10000;
    while (rl_client_create_accounts (client, &a, 1, &r, 1000) != 0
           || (r.result != RL_OK && r.result != RL_EXISTS)) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (50);
    }
    rl_client_destroy (&client);
    assert_true (s_position (standby.endpoint) > position); //  the write's event, taken
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

//  The primary restarts (a new stream: its standby is seeded again) and
//  dies while that seed is held: the standby drops the seed and promotes
//  the complete copy it holds, with every acknowledged transfer.
static void
test_promote_mid_seed (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_promote_mid_seed");
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    tk_model_t model;
    //  The standby holds the next seed's first chunk 3 s; no hello again
    //  (which drops a seed) before the kill.
    static char fp_env[] = "RL_FAILPOINTS=repl.standby.seed_file=delay:1500@1";
    s_reseed_armed (h, &primary, &standby, &model, fp_env, "2000");
    zclock_sleep (500);
    harness_kill (h, primary.pid, SIGKILL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    rl_client_t *client = rl_client_new (standby.endpoint);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

//  The standby dies between a seed's two renames (its copy moved aside,
//  the seed complete): its start installs the seed, and once promoted it
//  holds every acknowledged transfer.
static void
test_seed_between_renames (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_seed_between_renames");
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "semi");
    tk_model_t model;
    static char fp_env[] = "RL_FAILPOINTS=repl.standby.seed_aside=crash@1";
    s_reseed_armed (h, &primary, &standby, &model, fp_env, NULL);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, standby.pid, 20000, &wstatus), 0);
    assert_true (WIFSIGNALED (wstatus) && WTERMSIG (wstatus) == SIGKILL);
    standby.pid = -1;
    //  The window: the copy moved aside, the seed not in its place.
    char path[sizeof standby.data_dir + 16];
    struct stat st;
    assert_int_not_equal (stat (standby.data_dir, &st), 0);
    snprintf (path, sizeof path, "%s.old", standby.data_dir);
    assert_int_equal (stat (path, &st), 0);
    snprintf (path, sizeof path, "%s.seed-tmp", standby.data_dir);
    assert_int_equal (stat (path, &st), 0);
    standby.env[0] = NULL;
    assert_true (tk_shard_start (h, &standby) > 0);
    assert_true (tk_log_contains (h, "s1", "a crash came between the renames of a complete seed"));
    assert_int_not_equal (stat (path, &st), 0);
    //  Stalled a moment while its standby restarts and catches up.
    s_wait_state (primary.endpoint, RL_SHARD_SERVING);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 4, &model); //  acknowledged: the standby holds them
    rl_client_destroy (&client);
    harness_kill (h, primary.pid, SIGKILL);
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    rk_promote (standby.endpoint);
    s_wait_state (standby.endpoint, RL_SHARD_SERVING);
    client = rl_client_new (standby.endpoint);
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

//  GET path from 127.0.0.1:port: the whole answer (status line, headers,
//  body), malloc'd.
static char *
s_http_get (int port, const char *path)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    char request[256];
    int n = snprintf (request, sizeof request,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    assert_int_equal (write (fd, request, (size_t) n), n);
    size_t cap = 1 << 20, size = 0;
    char *text = malloc (cap + 1);
    assert_non_null (text);
    ssize_t got;
    while ((got = read (fd, text + size, cap - size)) > 0) {
        size += (size_t) got;
    }
    close (fd);
    text[size] = '\0';
    return text;
}

static void
test_standby_stopped (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_standby_stopped");
    tk_shard_t primary, standby;
    char metrics_bind[64];
    int metrics_port = harness_free_port ();
    snprintf (metrics_bind, sizeof metrics_bind, "127.0.0.1:%d", metrics_port);
    s_pair_metrics = metrics_bind;
    s_pair (h, &primary, &standby, "semi");
    s_pair_metrics = NULL;
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 4, &model);
    //  A ping with a data frame whose size the header does not give.
    void *own = tk_dealer_as (h, "s1", "s1", standby.endpoint);
    zsock_set_rcvtimeo (own, CALL_TIMEOUT_MS);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    assert_int_equal (rk_repl (standby.endpoint, recs), 1);
    replica_header_t ping = {.magic = REPLICA_MAGIC,
                             .version = REPLICA_VERSION,
                             .kind = REPLICA_PING,
                             .stream = recs[0].stream, //  its primary's: confirmed
                             .count = 5};
    assert_int_equal (s_repl (own, &ping, REPLICA_HEADER_SIZE, "", 0), REPLICA_ST_OK);
    assert_int_equal (s_repl (own, &ping, REPLICA_HEADER_SIZE, "abc", 3), REPLICA_ST_MALFORMED);
    //  A ping of a stream its primary does not ship: no lease.
    ping.stream ^= 0x100;
    assert_int_equal (s_repl (own, &ping, REPLICA_HEADER_SIZE, "", 0), REPLICA_ST_UNCONFIRMED);
    zsock_destroy ((zsock_t **) &own);
    //  Semi: the standby stops; a write waits, then the primary is stalled:
    //  writes and reads busy.
    uint64_t stopped_at = s_position (standby.endpoint);
    harness_kill (h, standby.pid, SIGSTOP);
    rl_transfer_t t = rk_new_transfer (&s_load);
    tk_outcomes_sent (&s_load.log, &t); //  unknown: settled below
    rl_result_rec_t r;
    int rc = rl_client_create_transfers (client, &t, 1, &r, 1500);
    assert_true (rc == RL_CLIENT_TIMEOUT || rc == RL_STATUS_BUSY);
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_STALLED);
    rl_client_destroy (&client);
    client = rl_client_new (primary.endpoint);
    assert_int_equal (s_write_refused (client), RL_STATUS_BUSY);
    assert_int_equal (s_read (client, 4), RL_STATUS_BUSY);
    //  Not ready, saying why, and the gauge the alert reads is 1 (the
    //  metrics are published once a second).
    char *ready = NULL;
    int64_t ready_by = zclock_mono () + 5000;
    do {
        free (ready);
        zclock_sleep (100);
        ready = s_http_get (metrics_port, "/readyz");
    } while (!strstr (ready, "replication stalled") && zclock_mono () < ready_by);
    if (!strstr (ready, " 503 ") || !strstr (ready, "replication stalled")) {
        fail_msg ("/readyz of a stalled primary: %s", ready);
    }
    free (ready);
    char *metrics = s_http_get (metrics_port, "/metrics");
    assert_non_null (strstr (metrics, "\nringledger_shard_repl_stalled 1"));
    free (metrics);
    harness_kill (h, standby.pid, SIGCONT);
    s_wait_state (primary.endpoint, RL_SHARD_SERVING);
    size_t applied = 0;
    tk_outcomes_settle (&s_load.log, client, &model, CALL_TIMEOUT_MS, &applied);
    rk_drive (&s_load, client, 4, &model);
    assert_true (s_position (standby.endpoint) > stopped_at); //  caught up
    rl_client_destroy (&client);
    //  Async: the primary keeps serving while its standby is stopped.
    tk_shard_stop (h, &primary, SIGTERM);
    primary.args[5] = "async";
    assert_true (tk_shard_start (h, &primary) > 0);
    client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 2, &model);
    harness_kill (h, standby.pid, SIGSTOP);
    zclock_sleep (600); //  beyond the timeout
    rk_drive (&s_load, client, 6, &model);
    assert_int_equal (s_read (client, 4), 0);
    assert_int_equal (rk_status (primary.endpoint).state, RL_SHARD_SERVING);
    harness_kill (h, standby.pid, SIGCONT);
    stopped_at = s_position (standby.endpoint);
    rk_drive (&s_load, client, 1, &model);
    int64_t deadline = zclock_mono () + 10000;
    //  It catches up, or re-seeds: a stop during the seed of the restarted
    //  primary's stream leaves the old stream's position, and the seed
    //  begun again may end below it, so the position moves, either way
    //  (a seed that ends exactly at the old position moves it with the
    //  next write: one batch a second).
    for (int round = 1; s_position (standby.endpoint) == stopped_at; round++) {
        assert_true (zclock_mono () < deadline);
        zclock_sleep (50);
        if (round % 20 == 0) {
            rk_drive (&s_load, client, 1, &model); //  once a second
        }
    }
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_fence_running, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fence_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_in_lease, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lost_disk, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_older_wiped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fence_by_ring, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_refused_backoff, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_promote_mid_seed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_seed_between_renames, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_standby_stopped, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
