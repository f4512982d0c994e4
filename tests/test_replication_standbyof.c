/*  test_replication_standbyof.c: a standby takes only the stream of the
    primary its --standby-of names (docs/replication.md, "A standby takes
    only its primary's stream").

    test_old_primary_refused: the risk it cures. A primary P1 (quorum 1 of
    1) with standby B, under load; P1 SIGSTOPped (it never hears that it
    is fenced) and B promoted: B is NEW and takes transfers. P1 is killed
    and restarted on its directory with --standby C, where C is a wiped
    standby started with --standby-of NEW. C refuses P1's stream
    (unconfirmed): P1 is never seeded into C, stays stalled, and answers
    every write and read busy, never ok. NEW restarted with --standby C
    seeds C (C then holds NEW's stream) and acknowledges writes; P1, still
    running, still refused. None of the ids P1 refused exists on NEW;
    exactly-once over every id and the strong conservation check on NEW.

    test_query_hostile: the answers a standby gets to its query. A test
    socket bound as the primary its --standby-of names (the shard's key)
    answers the standby's QUERY with a short frame, a header of another
    kind, another query's id, a data frame, a 1 MiB frame, and not at all:
    each time a HELLO of the stream the test claims is refused
    unconfirmed and the standby holds nothing. Then it answers no_stream:
    still refused. Then ok with that stream: the HELLO is taken. A QUERY
    to a standby is answered no_stream; to a primary from a client's key
    unauthorized, with a data frame malformed, well-formed ok with its
    stream, and its repl_status shows the refused link as refusing. A
    standby whose --standby-of names itself takes no stream.

    RL_SEED=<n> replays a run.
*/
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <czmq.h>

#include "auth.h"
#include "codec.h"
#include "replica.h"
#include "replkit.h"
#include "rl_rand.h"
#include "testkit.h"

#define TAG             0x53424f46ull //  "SBOF"
#define LEDGER          860
#define ACCOUNTS        16
#define TRANSFERS_MAX   4000
#define BATCH_MAX       32
#define CALL_TIMEOUT_MS 5000
#define REPL_TIMEOUT    "400" //  --repl-timeout-ms
#define REPL_TIMEOUT_MS 400

static tk_outcome_t s_records[TRANSFERS_MAX];
static rk_load_t s_load = {.tag = TAG,
                           .ledger = LEDGER,
                           .accounts = ACCOUNTS,
                           .id_base = 500000,
                           .batch_max = BATCH_MAX,
                           .log = {.records = s_records, .capacity = TRANSFERS_MAX}};

static int
s_setup (void **state)
{
    *state = harness_new ("replication_standbyof");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

//  A standby of s1 in its own directory, following `of`.
static void
s_standby (harness_t *h, tk_shard_t *s, char letter, const char *of)
{
    tk_shard_init (h, s, "s1");
    snprintf (s->data_dir, sizeof s->data_dir, "%s/s1-standby-%c", harness_dir (h), letter);
    s->durability = "sync";
    s->checkpoint_transfers = 50;
    s->args[0] = "--standby-of";
    s->args[1] = (char *) of;
    assert_true (tk_shard_start (h, s) > 0);
}

//  s (a primary's directory) replicates to `standby`, quorum 1 of 1.
static void
s_primary_args (tk_shard_t *s, const char *standby)
{
    memset (s->args, 0, sizeof s->args);
    s->args[0] = "--standby";
    s->args[1] = (char *) standby;
    s->args[2] = "--repl-timeout-ms";
    s->args[3] = REPL_TIMEOUT;
    s->args[4] = "--repl-quorum";
    s->args[5] = "1";
}

//  An admin operation without a body: its status.
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

static void
s_wait_state (const char *endpoint, uint32_t state, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    for (;;) {
        rl_client_t *c = rl_client_new (endpoint);
        rl_status_rec_t st = {0};
        int rc = rl_client_status (c, &st, 1000);
        rl_client_destroy (&c);
        if (rc == 0 && st.state == state) {
            return;
        }
        if (zclock_mono () > deadline) {
            fail_msg ("%s: state %d, want %d (rc %d)", endpoint, (int) st.state, (int) state, rc);
        }
        zclock_sleep (50);
    }
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

//  Writes to the old primary for ms: each answered busy (or not within
//  the call's timeout), never ok; their ids are 900000 + *next....
static size_t
s_old_refuses (const char *endpoint, int ms, uint64_t *next)
{
    rl_client_t *old = rl_client_new (endpoint);
    int64_t deadline = zclock_mono () + ms;
    size_t busy = 0;
    while (zclock_mono () < deadline) {
        rl_transfer_t t = tk_transfer (tk_id (900000 + (*next)++, TAG), tk_id (1, TAG),
                                       tk_id (2, TAG), 1, LEDGER);
        rl_result_rec_t r;
        int rc = rl_client_create_transfers (old, &t, 1, &r, 1000);
        if (rc != RL_STATUS_BUSY && rc != RL_CLIENT_TIMEOUT) {
            fail_msg ("the old primary answered a write %d (%s): two primaries", rc,
                      rc >= 0 ? rl_status_name ((rl_status_t) rc) : "client error");
        }
        busy += rc == RL_STATUS_BUSY;
        rl_id_t id = s_load.log.records[s_load.log.count - 1].t.id;
        rl_transfer_t found;
        rc = rl_client_lookup_transfers (old, &id, 1, &found, 1000);
        assert_true (rc == RL_STATUS_BUSY || rc == RL_CLIENT_TIMEOUT);
        if (rc == RL_CLIENT_TIMEOUT) {
            rl_client_destroy (&old);
            old = rl_client_new (endpoint);
        }
        zclock_sleep (20);
    }
    rl_client_destroy (&old);
    return busy;
}

static void
test_old_primary_refused (void **state)
{
    harness_t *h = *state;
    rk_load_start (&s_load, "test_old_primary_refused");
    tk_shard_t p1, b, c;
    tk_shard_init (h, &p1, "s1");
    p1.durability = "sync";
    p1.checkpoint_transfers = 50;
    tk_shard_prepare_accounts (h, &p1, TAG, LEDGER, ACCOUNTS);
    s_standby (h, &b, 'b', p1.endpoint);
    s_primary_args (&p1, b.endpoint);
    assert_true (tk_shard_start (h, &p1) > 0);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (p1.endpoint);
    rk_drive (&s_load, client, 6, &model);
    rl_client_destroy (&client);
    //  P1 paused: it never hears that B fences it. B promoted: NEW.
    harness_kill (h, p1.pid, SIGSTOP);
    assert_int_equal (s_admin (b.endpoint, RL_OP_PROMOTE), 0);
    s_wait_state (b.endpoint, RL_SHARD_SERVING, 20000);
    client = rl_client_new (b.endpoint);
    rk_drive (&s_load, client, 4, &model);
    rl_client_destroy (&client);
    //  C: a wiped standby of NEW, which it names by another string than
    //  NEW's --bind (the stream decides, not the name). P1 killed and
    //  restarted on its directory with --standby C: it never heard fenced.
    char new_by_name[64];
    snprintf (new_by_name, sizeof new_by_name, "tcp://localhost:%d", b.port);
    s_standby (h, &c, 'c', new_by_name);
    tk_shard_stop (h, &p1, SIGKILL);
    s_primary_args (&p1, c.endpoint);
    assert_true (tk_shard_start (h, &p1) > 0);
    uint64_t next = 0;
    size_t busy = s_old_refuses (p1.endpoint, 6 * REPL_TIMEOUT_MS, &next);
    assert_true (busy > 0);
    assert_int_equal (s_standby_repl (c.endpoint).stream, 0); //  never seeded by P1
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    size_t count = rk_repl (p1.endpoint, recs);
    assert_int_equal (count, 2);
    assert_true ((recs[0].flags & RL_REPL_FLAG_STALLED) != 0);
    //  Refused, asked again every timeout / 4: refusing, or hello between.
    assert_true (recs[1].state == RL_REPL_REFUSING || recs[1].state == RL_REPL_HELLO);
    uint64_t p1_stream = recs[0].stream;
    //  NEW restarted with --standby C (the runbook): it seeds C and
    //  acknowledges writes; P1 still refused.
    assert_int_equal (tk_shard_stop (h, &b, SIGTERM), 0);
    s_primary_args (&b, c.endpoint);
    assert_true (tk_shard_start (h, &b) > 0);
    client = rl_client_new (b.endpoint);
    int64_t t0 = zclock_mono ();
    rk_drive (&s_load, client, 4, &model);
    printf ("test_old_primary_refused: NEW restarted with --standby C acknowledged in %ld ms\n",
            (long) (zclock_mono () - t0));
    count = rk_repl (b.endpoint, recs);
    uint64_t new_stream = recs[0].stream;
    assert_int_equal (recs[1].state, RL_REPL_STREAMING);
    rl_repl_rec_t sc = s_standby_repl (c.endpoint);
    assert_int_equal (sc.stream, new_stream);
    assert_true (sc.stream != p1_stream);
    busy += s_old_refuses (p1.endpoint, 4 * REPL_TIMEOUT_MS, &next);
    assert_int_equal (s_standby_repl (c.endpoint).stream, new_stream);
    printf ("test_old_primary_refused: the old primary refused %" PRIu64 " writes (%zu busy)\n",
            next, busy);
    //  None of the ids P1 refused exists anywhere.
    for (uint64_t i = 0; i < next; i++) {
        rl_id_t id = tk_id (900000 + i, TAG);
        rl_transfer_t found;
        assert_int_equal (rl_client_lookup_transfers (client, &id, 1, &found, CALL_TIMEOUT_MS), 0);
        assert_int_equal (found.timestamp, 0);
    }
    rk_finish (&s_load, client, &model);
    rl_client_destroy (&client);
    tk_shard_stop (h, &p1, SIGTERM);
    tk_shard_stop (h, &b, SIGTERM);
    tk_shard_stop (h, &c, SIGTERM);
}

//  Test sockets ---------------------------------------------------------------

static void
s_send_header (void *sock, zframe_t *route, const replica_header_t *h, size_t size,
               const void *data, size_t data_size)
{
    uint8_t raw[REPLICA_HEADER_SIZE];
    replica_header_encode (h, raw);
    zmsg_t *msg = zmsg_new ();
    if (route) {
        zmsg_addmem (msg, zframe_data (route), zframe_size (route));
    }
    zmsg_addmem (msg, raw, size);
    zmsg_addmem (msg, data, data_size);
    assert_int_equal (zmsg_send (&msg, sock), 0);
}

//  One message from dealer, its answer's header (status UINT32_MAX: none).
static replica_header_t
s_ask (void *dealer, const replica_header_t *h, const void *data, size_t size)
{
    s_send_header (dealer, NULL, h, REPLICA_HEADER_SIZE, data, size);
    replica_header_t a = {.status = UINT32_MAX};
    zmsg_t *msg = zmsg_recv (dealer);
    if (msg) {
        zframe_t *f = zmsg_first (msg);
        assert_int_equal (replica_header_decode (zframe_data (f), zframe_size (f), &a), 0);
        assert_int_equal (a.kind, REPLICA_ACK);
        zmsg_destroy (&msg);
    }
    return a;
}

static replica_header_t
s_hello (uint64_t stream)
{
    return (replica_header_t){.magic = REPLICA_MAGIC,
                              .version = REPLICA_VERSION,
                              .kind = REPLICA_HELLO,
                              .stream = stream,
                              .session = 3,
                              .key_size = REPL_TIMEOUT_MS,
                              .entry_size = (1ull << 32) | 1};
}

//  The fake primary's next QUERY (within ms): its routing frame and header.
static bool
s_next_query (zsock_t *fake, int ms, zframe_t **route_p, replica_header_t *q)
{
    zsock_set_rcvtimeo (fake, ms);
    zmsg_t *msg = zmsg_recv (fake);
    if (!msg) {
        return false;
    }
    assert_int_equal (zmsg_size (msg), 3);
    *route_p = zmsg_pop (msg);
    zframe_t *f = zmsg_first (msg);
    assert_int_equal (replica_header_decode (zframe_data (f), zframe_size (f), q), 0);
    assert_int_equal (q->kind, REPLICA_QUERY);
    assert_int_equal (zframe_size (zmsg_next (msg)), 0);
    zmsg_destroy (&msg);
    return true;
}

static void
test_query_hostile (void **state)
{
    harness_t *h = *state;
    //  The fake primary: a ROUTER with the shard's certificate.
    (void) tk_key (h, "shard", "s1");
    char path[PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/private/s1.key_secret", tk_keys_dir (h));
    char err[768];
    zcert_t *cert = rl_cert_load (path, err, sizeof err);
    assert_non_null (cert);
    zsock_t *fake = zsock_new (ZMQ_ROUTER);
    zcert_apply (cert, fake);
    zcert_destroy (&cert);
    zsock_set_curve_server (fake, 1);
    zsock_set_linger (fake, 0);
    int port = harness_free_port ();
    assert_int_equal (zsock_bind (fake, "tcp://127.0.0.1:%d", port), port);
    char fake_ep[64];
    snprintf (fake_ep, sizeof fake_ep, "tcp://127.0.0.1:%d", port);
    tk_shard_t d;
    s_standby (h, &d, 'd', fake_ep);
    void *own = tk_dealer_as (h, "s1", "s1", d.endpoint);
    const uint64_t stream = 0x1234567800000001ull;
    replica_header_t hello = s_hello (stream);
    //  Each bad answer: the HELLO is refused, the standby holds nothing.
    enum { SHORT, KIND, ID, DATA, HUGE, NONE, NO_STREAM, BAD_COUNT };
    static const char *const names[] = {"a short frame", "another kind", "another query's id",
                                        "a data frame",  "1 MiB",        "no answer",
                                        "no_stream"};
    size_t queries = 0;
    for (int bad = SHORT; bad < BAD_COUNT; bad++) {
        replica_header_t a = s_ask (own, &hello, NULL, 0);
        assert_int_equal (a.status, REPLICA_ST_UNCONFIRMED);
        assert_int_equal (a.stream, 0);
        zframe_t *route = NULL;
        replica_header_t q;
        //  The standby asks again at the next message, the interval
        //  after the last query (and its timeout when unanswered).
        int64_t deadline = zclock_mono () + 5000;
        while (!s_next_query (fake, 200, &route, &q)) {
            if (zclock_mono () > deadline) {
                harness_keep (h);
                fail_msg ("no query from the standby after %s", bad ? names[bad - 1] : "its start");
            }
            a = s_ask (own, &hello, NULL, 0);
            assert_int_equal (a.status, REPLICA_ST_UNCONFIRMED);
        }
        queries++;
        replica_header_t ans = {.magic = REPLICA_MAGIC,
                                .version = REPLICA_VERSION,
                                .kind = REPLICA_ACK,
                                .stream = stream,
                                .cf = REPLICA_QUERY,
                                .count = q.count};
        static uint8_t huge[1 << 20];
        switch (bad) {
            case SHORT:
                s_send_header (fake, route, &ans, 20, NULL, 0);
                break;
            case KIND:
                ans.cf = REPLICA_PING;
                s_send_header (fake, route, &ans, REPLICA_HEADER_SIZE, NULL, 0);
                break;
            case ID:
                ans.count = q.count + 7;
                s_send_header (fake, route, &ans, REPLICA_HEADER_SIZE, NULL, 0);
                break;
            case DATA:
                ans.data_size = 5;
                s_send_header (fake, route, &ans, REPLICA_HEADER_SIZE, "12345", 5);
                break;
            case HUGE:
                ans.data_size = sizeof huge;
                s_send_header (fake, route, &ans, REPLICA_HEADER_SIZE, huge, sizeof huge);
                break;
            case NONE:
                break;
            case NO_STREAM:
                ans.status = REPLICA_ST_NO_STREAM;
                ans.stream = 0;
                s_send_header (fake, route, &ans, REPLICA_HEADER_SIZE, NULL, 0);
                break;
        }
        zframe_destroy (&route);
        zclock_sleep (100);
        a = s_ask (own, &hello, NULL, 0);
        if (a.status != REPLICA_ST_UNCONFIRMED) {
            fail_msg ("after %s the HELLO was answered %s", names[bad],
                      replica_status_name (a.status));
        }
        assert_int_equal (s_standby_repl (d.endpoint).stream, 0);
    }
    //  The right answer: the stream is taken.
    int64_t deadline = zclock_mono () + 5000;
    for (;;) {
        zframe_t *route = NULL;
        replica_header_t q;
        if (s_next_query (fake, 200, &route, &q)) {
            replica_header_t ans = {.magic = REPLICA_MAGIC,
                                    .version = REPLICA_VERSION,
                                    .kind = REPLICA_ACK,
                                    .stream = stream,
                                    .cf = REPLICA_QUERY,
                                    .count = q.count};
            s_send_header (fake, route, &ans, REPLICA_HEADER_SIZE, NULL, 0);
            zframe_destroy (&route);
            zclock_sleep (50);
        }
        replica_header_t a = s_ask (own, &hello, NULL, 0);
        if (a.status == REPLICA_ST_OK) {
            break;
        }
        assert_int_equal (a.status, REPLICA_ST_UNCONFIRMED);
        assert_true (zclock_mono () < deadline);
    }
    //  Another stream is still refused; a QUERY to a standby: no_stream.
    hello.stream = stream + 2;
    assert_int_equal (s_ask (own, &hello, NULL, 0).status, REPLICA_ST_UNCONFIRMED);
    replica_header_t query = {
        .magic = REPLICA_MAGIC, .version = REPLICA_VERSION, .kind = REPLICA_QUERY, .count = 77};
    replica_header_t a = s_ask (own, &query, NULL, 0);
    assert_int_equal (a.status, REPLICA_ST_NO_STREAM);
    assert_int_equal (a.count, 77);
    printf ("test_query_hostile: %zu bad answers, each refused\n", queries);
    zsock_destroy ((zsock_t **) &own);
    //  A primary answers a QUERY: ok with its stream; with a data frame
    //  malformed; from a client's key unauthorized.
    tk_shard_t p;
    tk_shard_init (h, &p, "s1");
    snprintf (p.data_dir, sizeof p.data_dir, "%s/s1-p", harness_dir (h));
    s_primary_args (&p, d.endpoint);
    assert_true (tk_shard_start (h, &p) > 0);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    assert_int_equal (rk_repl (p.endpoint, recs), 2);
    void *as_shard = tk_dealer_as (h, "s1", "s1", p.endpoint);
    a = s_ask (as_shard, &query, NULL, 0);
    assert_int_equal (a.status, REPLICA_ST_OK);
    assert_int_equal (a.stream, recs[0].stream);
    assert_int_equal (a.count, 77);
    query.data_size = 3;
    assert_int_equal (s_ask (as_shard, &query, "abc", 3).status, REPLICA_ST_MALFORMED);
    zsock_destroy ((zsock_t **) &as_shard);
    (void) tk_key (h, "client", "tester");
    void *as_client = tk_dealer_as (h, "tester", "s1", p.endpoint);
    query.data_size = 0;
    a = s_ask (as_client, &query, NULL, 0);
    assert_true (a.status == REPLICA_ST_UNAUTHORIZED || a.status == UINT32_MAX);
    zsock_destroy ((zsock_t **) &as_client);
    //  D follows the fake, not p: p's link is refused.
    deadline = zclock_mono () + 5000;
    for (;;) {
        size_t count = rk_repl (p.endpoint, recs);
        assert_int_equal (count, 2);
        if (recs[1].state == RL_REPL_REFUSING) {
            break;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (50);
    }
    assert_int_equal (s_standby_repl (d.endpoint).stream, 0);
    tk_shard_stop (h, &p, SIGTERM);
    tk_shard_stop (h, &d, SIGTERM);
    zsock_destroy (&fake);
    //  A standby whose --standby-of names itself: it ships no stream, so
    //  nothing is ever confirmed.
    tk_shard_t e;
    tk_shard_init (h, &e, "s1");
    snprintf (e.data_dir, sizeof e.data_dir, "%s/s1-standby-e", harness_dir (h));
    e.args[0] = "--standby-of";
    e.args[1] = e.endpoint;
    assert_true (tk_shard_start (h, &e) > 0);
    own = tk_dealer_as (h, "s1", "s1", e.endpoint);
    hello.stream = stream;
    for (int i = 0; i < 5; i++) {
        assert_int_equal (s_ask (own, &hello, NULL, 0).status, REPLICA_ST_UNCONFIRMED);
        zclock_sleep (150);
    }
    zsock_destroy ((zsock_t **) &own);
    assert_int_equal (s_standby_repl (e.endpoint).stream, 0);
    tk_shard_stop (h, &e, SIGTERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_query_hostile, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_old_primary_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
