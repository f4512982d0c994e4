/*  test_replication.c: a shard's standby (docs/replication.md).

    test_failover: a primary (manual-wal, so that SIGKILL drops whatever
    was not group-committed; a checkpoint every 50 transfers, so that
    ingest events are in the stream) replicates semi-synchronously to a
    standby seeded from it while it serves. Hostile messages on the
    standby's replication socket are refused with their codes and change
    nothing. The primary is SIGKILLed with a batch in flight; the standby
    is promoted; until the old primary's lease has run out its socket
    still answers as a promoted standby. Then every acknowledged transfer is on the new primary,
    unknown outcomes are settled and retried with their ids, old ids get
    their original outcomes, the old primary's messages are answered
    fenced, and the strong conservation check passes.

    test_semi_sync_waits: the standby's apply is delayed by a failpoint
    (repl.standby.before_apply): the primary's reply does not come while
    the standby has not acknowledged, a later write is answered busy and
    status says stalled; when the standby goes on, the first write's reply
    is ok. Then rlctl degrade's operation switches to async, labelled in
    status.

    test_failed_write_after_ship: the primary's write of a group commit
    fails after its batch went to the standby (repl.primary.before_write
    =error, as a disk's failed write): the client gets storage_error, the
    standby applies the batch. The primary restarts: a new stream, the
    standby is seeded again, the transfer is not applied and its retry
    executes once; then the primary is SIGKILLed and the standby promoted:
    every id keeps its outcome there, and the strong conservation check
    passes on both.

    Seed: RL_SEED=<n> replays a run; the seed is printed first.
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

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "replica.h"
#include "rl_rand.h"
#include "replkit.h"
#include "testkit.h"

#define TAG             0x5245504cull //  "REPL"
#define LEDGER          840
#define ACCOUNTS        16
#define TRANSFERS_MAX   8000
#define BATCH_MAX       64
#define CALL_TIMEOUT_MS 5000

static tk_outcome_t s_records[TRANSFERS_MAX];
static rk_load_t s_load = {.tag = TAG,
                           .ledger = LEDGER,
                           .accounts = ACCOUNTS,
                           .id_base = 200000,
                           .batch_max = BATCH_MAX,
                           .log = {.records = s_records, .capacity = TRANSFERS_MAX}};

static uint64_t
s_position (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (c, &st, CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    assert_int_equal (st.state, RL_SHARD_STANDBY);
    return st.commits; //  a standby's commits: its stream position
}

//  Waits until the standby holds a copy (it answers status with a
//  position and a stream): returns its position.
static uint64_t
s_wait_streaming (void *dealer, uint64_t *stream_p)
{
    for (int i = 0; i < 400; i++) {
        replica_header_t h = {.magic = REPLICA_MAGIC,
                              .version = REPLICA_VERSION,
                              .kind = REPLICA_HELLO,
                              .session = 7};
        uint8_t raw[REPLICA_HEADER_SIZE];
        replica_header_encode (&h, raw);
        zsock_send (dealer, "bb", raw, sizeof raw, "", (size_t) 0);
        zmsg_t *msg = zmsg_recv (dealer);
        assert_non_null (msg);
        zframe_t *f = zmsg_first (msg);
        replica_header_t a;
        assert_int_equal (replica_header_decode (zframe_data (f), zframe_size (f), &a), 0);
        zmsg_destroy (&msg);
        if (a.stream != 0) {
            *stream_p = a.stream;
            return a.seq;
        }
        zclock_sleep (50);
    }
    fail_msg ("the standby was never seeded");
    return 0;
}

//  One hostile replication message; returns the status it was answered.
static uint32_t
s_send_raw (void *dealer, const replica_header_t *h, size_t header_size, const void *data,
            size_t size)
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
    zmsg_destroy (&msg);
    return a.status;
}

//  Bad input on the replication socket: each answered with its code,
//  the standby's position unchanged.
static void
s_bad_input (harness_t *h, const char *endpoint)
{
    void *own = tk_dealer_as (h, "s1", "s1", endpoint);
    uint64_t stream = 0;
    uint64_t pos = s_wait_streaming (own, &stream);
    uint64_t before = s_position (endpoint);
    assert_true (before >= pos);
    pos = before;
    replica_header_t ok = {.magic = REPLICA_MAGIC,
                           .version = REPLICA_VERSION,
                           .kind = REPLICA_BATCH,
                           .stream = stream,
                           .seq = pos + 1,
                           .session = 9};
    uint8_t garbage[64];
    memset (garbage, 0x5a, sizeof garbage);
    replica_header_t bad = ok;
    bad.data_size = sizeof garbage;
    //  A short header.
    assert_int_equal (s_send_raw (own, &bad, 10, garbage, sizeof garbage), REPLICA_ST_MALFORMED);
    //  A batch that is not a WriteBatch.
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, garbage, sizeof garbage),
                      REPLICA_ST_MALFORMED);
    //  The sizes do not add up.
    bad.data_size = 3;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, garbage, sizeof garbage),
                      REPLICA_ST_MALFORMED);
    //  Oversize.
    bad.data_size = (uint64_t) REPLICA_EVENT_BYTES_MAX + 1;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, "", 0), REPLICA_ST_OVERSIZE);
    //  A well-formed batch (a put of meta "x" = "y") far ahead: a gap.
    static const uint8_t put[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x1, 1, 'x', 1, 'y'};
    assert_true (replica_batch_valid (put, sizeof put));
    bad = ok;
    bad.seq = pos + 1000000;
    bad.data_size = sizeof put;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, put, sizeof put),
                      REPLICA_ST_OUT_OF_ORDER);
    //  Another stream: not the one its --standby-of ships.
    bad.stream = stream ^ 0x10;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, put, sizeof put),
                      REPLICA_ST_UNCONFIRMED);
    //  Unsorted ingest entries.
    bad = ok;
    bad.kind = REPLICA_INGEST;
    bad.cf = 3; //  tx_index
    bad.key_size = 16;
    bad.entry_size = 24;
    bad.count = 2;
    uint8_t entries[48];
    memset (entries, 0x7f, sizeof entries);
    bad.data_size = sizeof entries;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, entries, sizeof entries),
                      REPLICA_ST_MALFORMED);
    //  An ingest of keys of a size no checkpoint writes (sorted, unique).
    bad.key_size = 17;
    bad.entry_size = 24;
    bad.count = 2;
    memset (entries, 0, sizeof entries);
    entries[24] = 1;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, entries, sizeof entries),
                      REPLICA_ST_MALFORMED);
    //  A put, then a range delete ending before it begins: RocksDB would
    //  refuse the batch after writing the put.
    //  Sequence 0, two records: a put of meta "x" = "y", a range delete.
    static const uint8_t reversed[] = {0, 0,   0, 0,   0, 0,   0,   0, 2,   0, 0,
                                       0, 0x1, 1, 'x', 1, 'y', 0xF, 1, 'z', 1, 'a'};
    static const uint8_t forward[] = {0, 0,   0, 0,   0, 0,   0,   0, 2,   0, 0,
                                      0, 0x1, 1, 'x', 1, 'y', 0xF, 1, 'a', 1, 'z'};
    assert_false (replica_batch_valid (reversed, sizeof reversed));
    assert_true (replica_batch_valid (forward, sizeof forward));
    bad = ok;
    bad.data_size = sizeof reversed;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, reversed, sizeof reversed),
                      REPLICA_ST_MALFORMED);
    //  A SingleDelete (of meta "x", then of accounts' key "k"): the store
    //  writes none, and an older put compacted beneath one comes back.
    static const uint8_t single[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x7, 1, 'x'};
    static const uint8_t single_cf[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x8, 1, 1, 'k'};
    static const uint8_t plain_cf[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x4, 1, 1, 'k'};
    assert_false (replica_batch_valid (single, sizeof single));
    assert_false (replica_batch_valid (single_cf, sizeof single_cf));
    assert_true (replica_batch_valid (plain_cf, sizeof plain_cf));
    bad.data_size = sizeof single_cf;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, single_cf, sizeof single_cf),
                      REPLICA_ST_MALFORMED);
    //  A seed file with a path in its name.
    bad = ok;
    bad.kind = REPLICA_SEED_FILE;
    bad.cf = 6;
    bad.data_size = 6;
    assert_int_equal (s_send_raw (own, &bad, REPLICA_HEADER_SIZE, "../x/y", 6),
                      REPLICA_ST_WRONG_STREAM); //  no seed in progress
    zsock_destroy ((zsock_t **) &own);
    //  Another shard's key, and a client's: unauthorized.
    const char *others[] = {"s2", "tester"};
    for (size_t i = 0; i < 2; i++) {
        (void) tk_key (h, i == 0 ? "shard" : "client", others[i]);
        void *other = tk_dealer_as (h, others[i], "s1", endpoint);
        bad = ok;
        bad.data_size = sizeof garbage;
        uint32_t st = s_send_raw (other, &bad, REPLICA_HEADER_SIZE, garbage, sizeof garbage);
        assert_true (st == REPLICA_ST_UNAUTHORIZED || st == UINT32_MAX); //  or refused at ZAP
        zsock_destroy ((zsock_t **) &other);
    }
    //  Nothing changed: the standby's position only moved by the primary's
    //  own events (it keeps replicating meanwhile, so it may have grown).
    assert_true (s_position (endpoint) >= before);
}

static int
s_setup (void **state)
{
    *state = harness_new ("replication");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

//  Primary s1 with accounts, and its standby (same name and key, its own
//  port and data directory).
static void
s_pair (harness_t *h, tk_shard_t *primary, tk_shard_t *standby, const char *durability)
{
    tk_shard_init (h, primary, "s1");
    primary->durability = durability;
    primary->checkpoint_transfers = 50;
    tk_shard_prepare_accounts (h, primary, TAG, LEDGER, ACCOUNTS);
    tk_shard_init (h, standby, "s1");
    snprintf (standby->data_dir, sizeof standby->data_dir, "%s/s1-standby", harness_dir (h));
    standby->durability = durability;
    standby->checkpoint_transfers = 50;
    standby->args[0] = "--standby-of";
    standby->args[1] = primary->endpoint;
    assert_true (tk_shard_start (h, standby) > 0);
}

static void
test_failover (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_replication");
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "manual-wal");
    primary.args[0] = "--standby";
    primary.args[1] = standby.endpoint;
    primary.args[2] = "--repl-timeout-ms";
    primary.args[3] = "3000";
    assert_true (tk_shard_start (h, &primary) > 0);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    rk_drive (&s_load, client, 20, &model);
    s_bad_input (h, standby.endpoint);
    rk_drive (&s_load, client, 20 + rl_rand_next (&s_load.rng) % 20, &model);
    //  SIGKILL with a batch in flight: its outcome is unknown.
    rl_transfer_t ts[BATCH_MAX];
    uint8_t body[BATCH_MAX * RL_TRANSFER_SIZE];
    size_t n = 1 + rl_rand_next (&s_load.rng) % BATCH_MAX;
    for (size_t i = 0; i < n; i++) {
        ts[i] = rk_new_transfer (&s_load);
        tk_outcomes_sent (&s_load.log, &ts[i]);
        codec_encode_transfer (&ts[i], body + i * RL_TRANSFER_SIZE);
    }
    rl_header_t rh;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    harness_kill (h, primary.pid, SIGKILL);
    rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, n * RL_TRANSFER_SIZE, (uint32_t) n, 200,
                    &rh, &reply, &reply_size);
    free (reply);
    rl_client_destroy (&client);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, primary.pid, 20000, &wstatus), 0);
    primary.pid = -1;
    //  Promote the standby; time to the first acknowledged write.
    int64_t t0 = zclock_usecs ();
    rk_promote (standby.endpoint);
    //  The primary path opens behind the old primary's 3 s lease (it was
    //  answered a moment before the SIGKILL): meanwhile the standby's
    //  socket still answers, status as a standby, a repeated promote ok.
    rl_client_t *waiting = rl_client_new (standby.endpoint);
    rl_status_rec_t during;
    assert_int_equal (rl_client_status (waiting, &during, CALL_TIMEOUT_MS), 0);
    assert_int_equal (during.state, RL_SHARD_STANDBY);
    rl_client_destroy (&waiting);
    rk_promote (standby.endpoint);
    rk_wait_serving (standby.endpoint);
    client = rl_client_new (standby.endpoint);
    rk_drive (&s_load, client, 1, &model);
    printf ("test_replication: promote -> first acknowledged write %.1f ms\n",
            (double) (zclock_usecs () - t0) / 1000.0);
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (client, &st, CALL_TIMEOUT_MS), 0);
    assert_int_equal (st.state, RL_SHARD_SERVING);
    //  Every acknowledged transfer is here; the unknown ones are settled
    //  and retried with their ids; old ids keep their outcomes.
    size_t applied = 0;
    size_t unknown = tk_outcomes_settle (&s_load.log, client, &model, CALL_TIMEOUT_MS, &applied);
    printf ("test_replication: %zu transfers, %zu unknown at the kill (%zu applied)\n",
            s_load.log.count, unknown, applied);
    tk_outcomes_retry_sample (&s_load.log, client, 64, &s_load.rng, CALL_TIMEOUT_MS);
    rk_drive (&s_load, client, 10, &model);
    tk_check_conservation (client, &model, 40);
    rl_client_destroy (&client);
    //  The promotion stays: a restart with --standby-of runs the primary.
    tk_shard_stop (h, &standby, SIGTERM);
    assert_true (tk_shard_start (h, &standby) > 0);
    client = rl_client_new (standby.endpoint);
    assert_int_equal (rl_client_status (client, &st, CALL_TIMEOUT_MS), 0);
    assert_int_equal (st.state, RL_SHARD_SERVING);
    tk_check_conservation (client, &model, 40);
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

//  One transfer from the operator (never a business failure) to the
//  primary; its answer's status (ok: applied to the model), or the call's
//  error (RL_CLIENT_TIMEOUT: no answer within timeout_ms).
static int
s_write_one (rl_client_t *client, tk_model_t *model, int timeout_ms)
{
    rl_transfer_t t = rk_new_transfer (&s_load);
    t.debit_account_id = tk_id (1, TAG);
    tk_outcomes_sent (&s_load.log, &t);
    uint8_t body[RL_TRANSFER_SIZE];
    codec_encode_transfer (&t, body);
    rl_header_t rh;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    int rc = rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, RL_TRANSFER_SIZE, 1, timeout_ms,
                             &rh, &reply, &reply_size);
    if (rc == 0 && rh.status == RL_STATUS_OK) {
        rl_result_rec_t r;
        codec_decode_result (reply, &r);
        tk_outcomes_answered (&s_load.log, s_load.log.count - 1, &r, 1, false, model);
    }
    free (reply);
    return rc != 0 ? rc : (int) rh.status;
}

static void
test_semi_sync_waits (void **state)
{
    harness_t *h = *state;
    s_load.log.count = 0;
    s_load.rng = 0x1234567;
    tk_shard_t primary, standby;
    static char fp_env[] = "RL_FAILPOINTS=repl.standby.before_apply=delay:4000@40";
    standby.env[0] = NULL;
    s_pair (h, &primary, &standby, "sync");
    tk_shard_stop (h, &standby, SIGTERM);
    standby.env[0] = fp_env;
    standby.env[1] = NULL;
    assert_true (tk_shard_start (h, &standby) > 0);
    primary.args[0] = "--standby";
    primary.args[1] = standby.endpoint;
    primary.args[2] = "--repl-timeout-ms";
    primary.args[3] = "500";
    assert_true (tk_shard_start (h, &primary) > 0);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    //  Until the 40th event the standby applies at once; one write at a
    //  time, so that the delayed one is known.
    for (size_t sent = 0;; sent++) {
        assert_true (sent < 100);
        int rc = s_write_one (client, &model, 1000);
        if (rc == RL_STATUS_OK) {
            continue;
        }
        printf ("test_replication: transfer %zu unanswered within 1 s (%d)\n", sent, rc);
        assert_int_equal (rc, RL_CLIENT_TIMEOUT);
        break; //  no answer within 1 s: the standby holds its apply
    }
    rl_client_destroy (&client);
    //  The primary waits for the standby: stalled, and a new write is busy.
    client = rl_client_new (primary.endpoint);
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (client, &st, CALL_TIMEOUT_MS), 0);
    assert_int_equal (st.state, RL_SHARD_STALLED);
    assert_true ((st.durability & RL_DURABILITY_REPL_SEMI) != 0);
    rl_transfer_t t2 = rk_new_transfer (&s_load);
    tk_outcomes_sent (&s_load.log, &t2); //  busy: settled (absent, retried) below
    rl_header_t rh;
    uint8_t body[RL_TRANSFER_SIZE];
    codec_encode_transfer (&t2, body);
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    int rc = rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, RL_TRANSFER_SIZE, 1,
                             CALL_TIMEOUT_MS, &rh, &reply, &reply_size);
    assert_true (rc == RL_STATUS_BUSY || (rc == 0 && rh.status == RL_STATUS_BUSY));
    free (reply);
    //  The standby goes on: the primary serves again.
    for (int i = 0; i < 200; i++) {
        assert_int_equal (rl_client_status (client, &st, CALL_TIMEOUT_MS), 0);
        if (st.state == RL_SHARD_SERVING) {
            break;
        }
        zclock_sleep (50);
    }
    assert_int_equal (st.state, RL_SHARD_SERVING);
    //  The held transfer was applied (its reply waited for the standby);
    //  the busy one was not, and executes on its retry.
    size_t applied = 0;
    assert_int_equal (tk_outcomes_settle (&s_load.log, client, &model, CALL_TIMEOUT_MS, &applied),
                      2);
    assert_int_equal (applied, 1);
    //  rlctl degrade: async, labelled.
    assert_int_equal (rl_client_call (client, RL_OP_DEGRADE, NULL, 0, 0, CALL_TIMEOUT_MS, &rh,
                                      &reply, &reply_size),
                      0);
    assert_int_equal (rh.status, RL_STATUS_OK);
    free (reply);
    assert_int_equal (rl_client_status (client, &st, CALL_TIMEOUT_MS), 0);
    assert_true ((st.durability & RL_DURABILITY_REPL_ASYNC) != 0);
    rk_drive (&s_load, client, 5, &model);
    tk_check_conservation (client, &model, 20);
    rl_client_destroy (&client);
    tk_shard_stop (h, &primary, SIGTERM);
    tk_shard_stop (h, &standby, SIGTERM);
}

static void
test_failed_write_after_ship (void **state)
{
    harness_t *h = *state;
    s_load.log.count = 0;
    s_load.rng = 0x5415;
    tk_shard_t primary, standby;
    s_pair (h, &primary, &standby, "sync");
    static char fp_env[] = "RL_FAILPOINTS=repl.primary.before_write=error@12";
    primary.env[0] = fp_env;
    primary.env[1] = NULL;
    primary.args[0] = "--standby";
    primary.args[1] = standby.endpoint;
    assert_true (tk_shard_start (h, &primary) > 0);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    //  One write at a time until the armed group commit: its batch goes
    //  to the standby, then its write fails (storage_error, outcome unknown).
    uint64_t held = 0; //  the standby's position once the last ok write was answered
    int status = RL_STATUS_OK;
    for (size_t sent = 0; status == RL_STATUS_OK; sent++) {
        assert_true (sent < 40);
        held = s_position (standby.endpoint);
        status = s_write_one (client, &model, CALL_TIMEOUT_MS);
    }
    assert_int_equal (status, RL_STATUS_STORAGE_ERROR);
    rl_client_destroy (&client);
    //  The standby applies the batch its primary never wrote.
    uint64_t pos = held;
    for (int i = 0; i < 100 && pos == held; i++) {
        zclock_sleep (20);
        pos = s_position (standby.endpoint);
    }
    printf ("test_replication: the write failed after its batch was shipped; the standby's "
            "position %" PRIu64 " -> %" PRIu64 "\n",
            held, pos);
    assert_true (pos > held);
    //  The primary restarts (the disk is back): a new stream, so the standby
    //  is seeded again and drops the batch; the transfer is not applied, and
    //  its retry executes once.
    tk_shard_stop (h, &primary, SIGTERM);
    primary.env[0] = NULL;
    assert_true (tk_shard_start (h, &primary) > 0);
    client = rl_client_new (primary.endpoint);
    size_t applied = 0;
    assert_int_equal (tk_outcomes_settle (&s_load.log, client, &model, CALL_TIMEOUT_MS, &applied),
                      1);
    assert_int_equal (applied, 0);
    rk_drive (&s_load, client, 5, &model);
    tk_check_conservation (client, &model, 10);
    rl_client_destroy (&client);
    //  The standby holds the primary's copy, not the batch: promoted, it
    //  answers every id as the primary did, and its sums are the model's.
    assert_true (tk_shard_stop (h, &primary, SIGKILL) != -1);
    rk_promote (standby.endpoint);
    rk_wait_serving (standby.endpoint);
    client = rl_client_new (standby.endpoint);
    tk_outcomes_retry_sample (&s_load.log, client, 64, &s_load.rng, CALL_TIMEOUT_MS);
    tk_check_conservation (client, &model, 10);
    rl_client_destroy (&client);
    tk_shard_stop (h, &standby, SIGTERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_failover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_semi_sync_waits, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_write_after_ship, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
