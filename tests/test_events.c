/*  test_events.c: a shard's change stream (docs/events.md) against a real
    shard (secure, WAL held in memory until each group commit, so that
    SIGKILL drops everything unsynced).

    1. test_stream: transfers (ok and burned) are read back in commit order
       through small pages from the beginning, each once, with its result
       and leg; balances rebuilt from the ok events equal the shard's; a
       CURVE subscriber of --events-bind is told the durable head; a key in
       no role is refused at the handshake and hears nothing; a subscriber
       that never reads does not stop the shard; bad requests (limit 0 and
       8191, a beginning that is not all zeros, flags, reserved words, two
       records, a short body) get bad_position or malformed; positions the
       shard does not know (another nonce, a later incarnation, past the
       end) get resync; a key of the shard role gets unauthorized; none of
       it changes a balance (conservation at the end).
    2. test_restart_restore: events served before a SIGKILL are all there
       after the restart, identical, and a consumer resumes from its
       position (of the killed incarnation); then the data directory is
       restored from a copy taken earlier: a position served after the copy
       gets resync, while a position the copy holds is still served.
    3. test_failover_semi: a semi-synchronous primary with a standby under
       load; a consumer reads every event; the primary is SIGKILLed and
       the standby promoted. The consumer's last position resumes on the
       new primary (a semi-synchronous primary serves no event its standby
       has not acknowledged), the stream read again from the beginning is
       the one served before, the new primary's events follow, and the
       balances rebuilt from all of them equal the model after the
       unknown outcomes are settled (conservation at the end).
    4. test_failover_async: the same with an asynchronous primary whose
       standby is SIGSTOPped after it caught up: the primary goes on and
       the consumer reads past the standby's copy. After the SIGKILL of
       both (the stopped standby's socket may have buffered the tail), the
       standby's restart and its promotion, a position of that lost tail gets resync, the last
       position the standby held resumes, the stream from the beginning is
       the one served up to it, and the balances are those of the model
       at the SIGSTOP (the tail is what async mode may lose:
       docs/replication.md).
*/

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "replkit.h"
#include "testkit.h"

#define TAG        0xE7E7ull
#define LEDGER     77
#define ACCOUNTS   8
#define EVENTS_MAX 20000

typedef struct {
    harness_t *h;
    tk_shard_t shard;
    char events_endpoint[64];
    rl_client_t *client;
    tk_model_t model;
    uint64_t next_id;
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof *ctx);
    ctx->h = harness_new ("events");
    if (!ctx->h) {
        free (ctx);
        return -1;
    }
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    rl_client_destroy (&ctx->client);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

static void
s_start (s_ctx_t *ctx)
{
    rl_client_destroy (&ctx->client);
    assert_true (tk_shard_start (ctx->h, &ctx->shard) > 0);
    ctx->client = rl_client_new (ctx->shard.endpoint);
    assert_non_null (ctx->client);
}

static void
s_init (s_ctx_t *ctx)
{
    tk_shard_init (ctx->h, &ctx->shard, "s1");
    ctx->shard.durability = "manual-wal";
    snprintf (ctx->events_endpoint, sizeof ctx->events_endpoint, "tcp://127.0.0.1:%d",
              harness_free_port ());
    static char opt[] = "--events-bind";
    ctx->shard.args[0] = opt;
    ctx->shard.args[1] = ctx->events_endpoint;
    tk_shard_prepare_accounts (ctx->h, &ctx->shard, TAG, LEDGER, ACCOUNTS);
    tk_model_init (&ctx->model, TAG, ACCOUNTS);
    ctx->next_id = 1;
    s_start (ctx);
}

//  Sends n transfers: funding from account 1 (ok) and every third an
//  overdraft of a customer (burned). Returns how many took effect.
static size_t
s_pay (s_ctx_t *ctx, size_t n)
{
    rl_transfer_t transfers[64];
    rl_result_rec_t results[64];
    assert_true (n <= 64);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = ctx->next_id++;
        uint64_t credit = 2 + id % (ACCOUNTS - 1);
        bool overdraft = id % 3 == 0;
        transfers[i] = tk_transfer (tk_id (0x100000 + id, TAG), tk_id (overdraft ? credit : 1, TAG),
                                    tk_id (overdraft ? 1 : credit, TAG),
                                    overdraft ? 1000000000ull : 10 + id, LEDGER);
    }
    assert_int_equal (
        rl_client_create_transfers (ctx->client, transfers, n, results, TK_TIMEOUT_MS), 0);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        bool overdraft = transfers[i].amount == 1000000000ull;
        assert_int_equal (results[i].result, overdraft ? RL_EXCEEDS_CREDITS : RL_OK);
        if (results[i].result == RL_OK) {
            tk_model_apply (&ctx->model, &transfers[i]);
            ok++;
        }
    }
    return ok;
}

//  One events_read: the reply's status, and its events.
static uint32_t
s_read (s_ctx_t *ctx, const rl_events_req_t *req, rl_event_t *out, size_t *count_p)
{
    uint8_t body[RL_EVENTS_REQ_SIZE];
    codec_encode_events_req (req, body);
    rl_header_t reply;
    uint8_t *records = NULL;
    size_t size = 0;
    int rc = rl_client_call (ctx->client, RL_OP_EVENTS_READ, body, sizeof body, 1, TK_TIMEOUT_MS,
                             &reply, &records, &size);
    assert_true (rc >= 0);
    *count_p = reply.status == RL_STATUS_OK ? reply.record_count : 0;
    assert_int_equal (size, *count_p * RL_EVENT_SIZE);
    for (size_t i = 0; i < *count_p; i++) {
        codec_decode_event (records + i * RL_EVENT_SIZE, &out[i]);
    }
    free (records);
    return reply.status;
}

static rl_events_req_t
s_after (const rl_event_t *last, uint32_t limit)
{
    rl_events_req_t req = {.limit = limit};
    if (last) {
        req.incarnation = last->incarnation;
        req.nonce = last->nonce;
        req.timestamp = last->transfer.timestamp;
    }
    return req;
}

//  Reads everything from `from` in pages of `page`: appends to out.
static size_t
s_read_all (s_ctx_t *ctx, rl_events_req_t from, uint32_t page, rl_event_t *out, size_t have)
{
    from.limit = page;
    size_t first = have;
    for (;;) {
        size_t count = 0;
        assert_true (have + page <= EVENTS_MAX);
        assert_int_equal (s_read (ctx, &from, out + have, &count), RL_STATUS_OK);
        for (size_t i = 0; i < count; i++) {
            const rl_event_t *e = &out[have + i];
            const rl_event_t *before = have + i > first ? &out[have + i - 1] : NULL;
            assert_true (e->transfer.timestamp > from.timestamp);
            assert_true (!before || before->transfer.timestamp < e->transfer.timestamp);
            assert_int_equal (e->transfer.reserved, 0);
        }
        have += count;
        if (count < page) {
            return have;
        }
        from = s_after (&out[have - 1], page);
    }
}

//  Balances from the ok events equal the model's, and each ok transfer
//  shows exactly once.
static void
s_check_rebuilt (s_ctx_t *ctx, const rl_event_t *events, size_t count)
{
    uint64_t debits[ACCOUNTS + 1] = {0}, credits[ACCOUNTS + 1] = {0};
    uint64_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        const rl_transfer_t *t = &events[i].transfer;
        assert_int_equal (events[i].leg, RL_EVENT_LEG_BOTH); //  one shard: no legs
        if (events[i].result != RL_OK) {
            assert_int_equal (events[i].result, RL_EXCEEDS_CREDITS);
            continue;
        }
        assert_true (t->debit_account_id.lo <= ACCOUNTS && t->credit_account_id.lo <= ACCOUNTS);
        debits[t->debit_account_id.lo] += t->amount;
        credits[t->credit_account_id.lo] += t->amount;
        ok++;
    }
    assert_int_equal (ok, ctx->model.ok);
    for (size_t a = 1; a <= ACCOUNTS; a++) {
        assert_int_equal (debits[a], ctx->model.debits[a]);
        assert_int_equal (credits[a], ctx->model.credits[a]);
    }
}

//  A SUB socket on the events endpoint, CURVE with the key of NAME's
//  secret certificate (NULL: a fresh key in no role).
static zsock_t *
s_subscriber (s_ctx_t *ctx, const char *name)
{
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert_non_null (sub);
    zcert_t *cert = NULL;
    if (name) {
        char path[600];
        (void) tk_key (ctx->h, "client", name);
        snprintf (path, sizeof path, "%s/private/%s.key_secret", tk_keys_dir (ctx->h), name);
        cert = zcert_load (path);
    } else {
        cert = zcert_new ();
    }
    assert_non_null (cert);
    zcert_apply (cert, sub);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (sub, tk_key (ctx->h, "shard", "s1"));
    zsock_set_subscribe (sub, "");
    zsock_set_rcvtimeo (sub, 200);
    assert_int_equal (zsock_connect (sub, "%s", ctx->events_endpoint), 0);
    return sub;
}

//  Waits (bounded) for a notification whose head is at least ts.
static bool
s_noted (zsock_t *sub, uint64_t ts, uint64_t *incarnation_p, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        zframe_t *frame = zframe_recv (sub);
        if (!frame) {
            continue;
        }
        const uint8_t *d = zframe_data (frame);
        bool good = zframe_size (frame) == 64 && codec_get_u32 (d) == 0x76656c72u
                    && codec_get_u16 (d + 4) == 1 && strcmp ((const char *) d + 32, "s1") == 0
                    && codec_get_u64 (d + 8) >= 1;
        uint64_t head = codec_get_u64 (d + 24);
        if (incarnation_p) {
            *incarnation_p = codec_get_u64 (d + 8);
        }
        zframe_destroy (&frame);
        assert_true (good);
        if (head >= ts) {
            return true;
        }
    }
    return false;
}

static void
s_expect (s_ctx_t *ctx, rl_events_req_t req, uint32_t status)
{
    rl_event_t out[4];
    size_t count = 0;
    assert_int_equal (s_read (ctx, &req, out, &count), status);
}

static void
test_stream (void **state)
{
    s_ctx_t *ctx = *state;
    (void) tk_key (ctx->h, "shard", "s2"); //  a peer's key, known before the shard starts
    s_init (ctx);
    zsock_t *sub = s_subscriber (ctx, "tester");
    zsock_t *stranger = s_subscriber (ctx, NULL);
    zsock_t *idle = s_subscriber (ctx, "tester");
    zsock_set_rcvhwm (idle, 1);
    //  A heartbeat comes within a second even before any transfer.
    assert_true (s_noted (sub, 0, NULL, 5000));
    size_t ok = 0;
    for (int round = 0; round < 10; round++) {
        ok += s_pay (ctx, 30);
    }
    assert_true (ok > 100);
    static rl_event_t events[EVENTS_MAX];
    size_t count = s_read_all (ctx, s_after (NULL, 0), 7, events, 0);
    assert_int_equal (count, 300); //  every record: ok and burned
    s_check_rebuilt (ctx, events, count);
    const rl_event_t *last = &events[count - 1];
    uint64_t incarnation = 0;
    assert_true (s_noted (sub, last->transfer.timestamp, &incarnation, 5000));
    assert_int_equal (incarnation, last->incarnation);
    //  The stranger's key is in no role: refused at the handshake, it hears nothing.
    zframe_t *nothing = zframe_recv (stranger);
    assert_null (nothing);
    //  One page of everything, and a resume from the middle.
    size_t again = s_read_all (ctx, s_after (NULL, 0), RL_EVENTS_LIMIT_MAX, events, count);
    assert_int_equal (again - count, count);
    assert_memory_equal (events, events + count, count * sizeof (rl_event_t));
    size_t tail = s_read_all (ctx, s_after (&events[99], 50), 50, events, count);
    assert_int_equal (tail - count, count - 100);
    assert_memory_equal (events + 100, events + count, (count - 100) * sizeof (rl_event_t));

    //  Bad requests: bad_position, or malformed; nothing changes.
    rl_events_req_t req = s_after (last, 1);
    req.limit = 0;
    s_expect (ctx, req, RL_STATUS_BAD_POSITION);
    req.limit = RL_EVENTS_LIMIT_MAX + 1;
    s_expect (ctx, req, RL_STATUS_BAD_POSITION);
    req = s_after (NULL, 1);
    req.nonce = 1;
    s_expect (ctx, req, RL_STATUS_BAD_POSITION);
    req = s_after (NULL, 1);
    req.timestamp = 5;
    s_expect (ctx, req, RL_STATUS_BAD_POSITION);
    req = s_after (last, 1);
    req.flags = 1;
    s_expect (ctx, req, RL_STATUS_BAD_POSITION);
    req = s_after (last, 1);
    req.reserved[3] = 1;
    s_expect (ctx, req, RL_STATUS_BAD_POSITION);
    //  Unknown positions: resync.
    req = s_after (last, 1);
    req.nonce ^= 1;
    s_expect (ctx, req, RL_STATUS_RESYNC);
    req = s_after (last, 1);
    req.incarnation++;
    s_expect (ctx, req, RL_STATUS_RESYNC);
    req = s_after (last, 1);
    req.incarnation = UINT64_MAX;
    s_expect (ctx, req, RL_STATUS_RESYNC);
    req = s_after (last, 1);
    req.timestamp += 1000000000ull;
    s_expect (ctx, req, RL_STATUS_RESYNC);
    s_expect (ctx, s_after (last, 1), RL_STATUS_OK); //  the head itself: known, nothing after
    //  Frames the codec refuses: two records, a short body.
    uint8_t two[2 * RL_EVENTS_REQ_SIZE] = {0};
    rl_events_req_t good = s_after (last, 1);
    codec_encode_events_req (&good, two);
    codec_encode_events_req (&good, two + RL_EVENTS_REQ_SIZE);
    rl_header_t reply;
    uint8_t *body = NULL;
    size_t size = 0;
    assert_true (rl_client_call (ctx->client, RL_OP_EVENTS_READ, two, sizeof two, 2, TK_TIMEOUT_MS,
                                 &reply, &body, &size)
                 >= 0);
    assert_int_equal (reply.status, RL_STATUS_MALFORMED);
    assert_true (rl_client_call (ctx->client, RL_OP_EVENTS_READ, two, RL_EVENTS_REQ_SIZE - 8, 1,
                                 TK_TIMEOUT_MS, &reply, &body, &size)
                 >= 0);
    assert_int_equal (reply.status, RL_STATUS_MALFORMED);
    //  A key of the shard role may not read the stream.
    zsock_t *peer = tk_dealer_as (ctx->h, "s2", "s1", ctx->shard.endpoint);
    uint8_t frame[32 + RL_EVENTS_REQ_SIZE];
    size_t frame_size = tk_request_header (frame, RL_OP_EVENTS_READ, 77, 1);
    codec_encode_events_req (&good, frame + frame_size);
    zframe_t *out = zframe_new (frame, sizeof frame);
    assert_int_equal (zframe_send (&out, peer, 0), 0);
    zframe_t *in = zframe_recv (peer);
    assert_non_null (in);
    rl_header_t header;
    codec_decode_header (zframe_data (in), &header);
    assert_int_equal (header.status, RL_STATUS_UNAUTHORIZED);
    zframe_destroy (&in);
    zsock_destroy (&peer);

    //  The idle subscriber never read: the shard went on serving; more
    //  transfers are still announced and read after the last position.
    ok += s_pay (ctx, 30);
    size_t more = s_read_all (ctx, s_after (last, 0), 16, events, count);
    assert_int_equal (more - count, 30);
    s_check_rebuilt (ctx, events, more);
    assert_true (s_noted (sub, events[more - 1].transfer.timestamp, NULL, 5000));
    zsock_destroy (&idle);
    zsock_destroy (&stranger);
    zsock_destroy (&sub);
    tk_check_conservation (ctx->client, &ctx->model, ok);
}

static void
test_restart_restore (void **state)
{
    s_ctx_t *ctx = *state;
    s_init (ctx);
    static rl_event_t seen[EVENTS_MAX], now[EVENTS_MAX];
    s_pay (ctx, 40);
    size_t count = s_read_all (ctx, s_after (NULL, 0), 64, seen, 0);
    assert_int_equal (count, 40);
    //  A copy of the data directory, as a backup taken now would be.
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shard, SIGTERM), 0);
    char cmd[2048];
    snprintf (cmd, sizeof cmd, "cp -a '%s' '%s.copy'", ctx->shard.data_dir, ctx->shard.data_dir);
    assert_int_equal (system (cmd), 0);
    s_start (ctx);
    rl_event_t copy_last = seen[count - 1]; //  a position the copy holds
    //  Served while the shard runs, then SIGKILL: all still there after it.
    s_pay (ctx, 40);
    count = s_read_all (ctx, s_after (&seen[count - 1], 0), 64, seen, count);
    assert_int_equal (count, 80);
    rl_event_t before_kill = seen[count - 1];
    assert_true (before_kill.incarnation > copy_last.incarnation);
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shard, SIGKILL) & 0x7f, SIGKILL);
    s_start (ctx);
    size_t after = s_read_all (ctx, s_after (NULL, 0), 33, now, 0);
    assert_int_equal (after, count);
    for (size_t i = 0; i < count; i++) {
        assert_memory_equal (&seen[i].transfer, &now[i].transfer, sizeof (rl_transfer_t));
        assert_int_equal (seen[i].result, now[i].result);
        assert_true (now[i].incarnation > before_kill.incarnation); //  served by the new one
    }
    //  The killed incarnation's position resumes: nothing after it yet, then the new ones.
    s_expect (ctx, s_after (&before_kill, 1), RL_STATUS_OK);
    s_pay (ctx, 10);
    after = s_read_all (ctx, s_after (&before_kill, 0), 64, seen, count);
    assert_int_equal (after, 90);
    rl_event_t served_late = seen[after - 1];
    s_check_rebuilt (ctx, seen, after);
    //  Restore the copy: what was served after it is unknown there.
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shard, SIGTERM), 0);
    snprintf (cmd, sizeof cmd, "rm -rf '%s' && mv '%s.copy' '%s'", ctx->shard.data_dir,
              ctx->shard.data_dir, ctx->shard.data_dir);
    assert_int_equal (system (cmd), 0);
    s_start (ctx);
    s_expect (ctx, s_after (&served_late, 1), RL_STATUS_RESYNC);
    s_expect (ctx, s_after (&before_kill, 1), RL_STATUS_RESYNC);
    s_expect (ctx, s_after (&copy_last, 1), RL_STATUS_OK);
    after = s_read_all (ctx, s_after (NULL, 0), 64, now, 0);
    assert_int_equal (after, 40);
    assert_memory_equal (&now[39].transfer, &copy_last.transfer, sizeof (rl_transfer_t));
}

//  A notification announces only a durable head: while the sync of a
//  transfer is in flight (held 3 s by a failpoint), no note may carry a head
//  past the last synced one, since a crash would still drop the transfer;
//  once the sync ends, the note comes.
static void
test_note_after_sync (void **state)
{
    s_ctx_t *ctx = *state;
    static char delay[] = "RL_FAILPOINTS=shard.sync_in_flight=delay:3000";
    tk_shard_init (ctx->h, &ctx->shard, "s1");
    ctx->shard.durability = "manual-wal";
    snprintf (ctx->events_endpoint, sizeof ctx->events_endpoint, "tcp://127.0.0.1:%d",
              harness_free_port ());
    static char opt[] = "--events-bind";
    ctx->shard.args[0] = opt;
    ctx->shard.args[1] = ctx->events_endpoint;
    tk_shard_prepare_accounts (ctx->h, &ctx->shard, TAG, LEDGER, ACCOUNTS);
    ctx->shard.env[0] = delay;
    s_start (ctx);
    zsock_t *sub = s_subscriber (ctx, "tester");
    uint64_t incarnation = 0;
    assert_true (s_noted (sub, 0, &incarnation, 5000));
    //  The head before: the next heartbeat's.
    uint64_t before = 0;
    bool got = false;
    int64_t deadline = zclock_mono () + 5000;
    while (!got && zclock_mono () < deadline) {
        zframe_t *frame = zframe_recv (sub);
        if (frame && zframe_size (frame) == 64) {
            before = codec_get_u64 (zframe_data (frame) + 24);
            got = true;
        }
        zframe_destroy (&frame);
    }
    assert_true (got);
    rl_transfer_t t = tk_transfer (tk_id (0x900001, TAG), tk_id (1, TAG), tk_id (2, TAG), 55,
                                   LEDGER);
    rl_result_rec_t r;
    int64_t sent_ms = zclock_mono ();
    //  The reply waits for the sync: this call gives up first.
    assert_int_not_equal (rl_client_create_transfers (ctx->client, &t, 1, &r, 1000), 0);
    uint64_t head = before;
    while (zclock_mono () - sent_ms < 2500) {
        zframe_t *frame = zframe_recv (sub);
        if (frame && zframe_size (frame) == 64) {
            head = codec_get_u64 (zframe_data (frame) + 24);
        }
        zframe_destroy (&frame);
        assert_true (head == before); //  nothing announced before the sync ends
    }
    assert_true (s_noted (sub, before + 1, NULL, 5000)); //  ... and announced after it
    zsock_destroy (&sub);
    ctx->shard.env[0] = NULL;
}

//  Fail-over -----------------------------------------------------------------

static tk_outcome_t s_records[1024];
static rk_load_t s_load = {.tag = TAG,
                           .ledger = LEDGER,
                           .accounts = ACCOUNTS,
                           .id_base = 0x200000,
                           .batch_max = 16,
                           .log = {.records = s_records, .capacity = 1024}};

//  Primary s1 (ctx->shard, accounts made, started, ctx->client on it) in
//  MODE with its standby (same name and key, its own port and directory),
//  seeded and streaming.
static void
s_pair (s_ctx_t *ctx, tk_shard_t *standby, const char *mode)
{
    tk_shard_init (ctx->h, &ctx->shard, "s1");
    ctx->shard.durability = "manual-wal";
    tk_shard_prepare_accounts (ctx->h, &ctx->shard, TAG, LEDGER, ACCOUNTS);
    tk_model_init (&ctx->model, TAG, ACCOUNTS);
    tk_shard_init (ctx->h, standby, "s1");
    snprintf (standby->data_dir, sizeof standby->data_dir, "%s/s1-standby", harness_dir (ctx->h));
    standby->durability = "manual-wal";
    standby->args[0] = "--standby-of";
    standby->args[1] = ctx->shard.endpoint;
    assert_true (tk_shard_start (ctx->h, standby) > 0);
    static char *args[] = {"--standby", NULL, "--repl-mode", NULL, "--repl-timeout-ms", "1000"};
    args[1] = standby->endpoint;
    args[3] = (char *) mode;
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        ctx->shard.args[i] = args[i];
    }
    s_start (ctx); //  a semi-synchronous primary answers once its standby streams
}

//  Waits until the standby acknowledged every event the primary tapped.
static void
s_caught_up (s_ctx_t *ctx)
{
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    for (;;) {
        rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
        size_t count = rk_repl (ctx->shard.endpoint, recs);
        assert_int_equal (count, 2); //  the primary, its link
        assert_int_equal (recs[1].role, RL_REPL_LINK);
        if (recs[1].state == RL_REPL_STREAMING && recs[1].position == recs[0].position) {
            return;
        }
        assert_true (zclock_mono () < deadline);
        zclock_sleep (20);
    }
}

//  Promotes the standby (its primary is dead): ctx->shard becomes it.
static void
s_promote (s_ctx_t *ctx, tk_shard_t *standby)
{
    rk_promote (standby->endpoint);
    rk_wait_serving (standby->endpoint);
    ctx->shard = *standby;
    rl_client_destroy (&ctx->client);
    ctx->client = rl_client_new (ctx->shard.endpoint);
    assert_non_null (ctx->client);
}

static void
s_same_stream (const rl_event_t *a, const rl_event_t *b, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        assert_memory_equal (&a[i].transfer, &b[i].transfer, sizeof (rl_transfer_t));
        assert_int_equal (a[i].result, b[i].result);
        assert_int_equal (a[i].leg, b[i].leg);
    }
}

static void
test_failover_semi (void **state)
{
    s_ctx_t *ctx = *state;
    tk_shard_t standby;
    s_pair (ctx, &standby, "semi");
    rk_load_start (&s_load, "test_events/failover_semi");
    static rl_event_t seen[EVENTS_MAX], now[EVENTS_MAX];
    size_t count = 0;
    for (int round = 0; round < 4; round++) {
        rk_drive (&s_load, ctx->client, 8, &ctx->model);
        count = s_read_all (ctx, count ? s_after (&seen[count - 1], 0) : s_after (NULL, 0), 50,
                            seen, count);
    }
    assert_true (count > 0);
    rl_event_t last = seen[count - 1];
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shard, SIGKILL) & 0x7f, SIGKILL);
    s_promote (ctx, &standby);
    //  Nothing served by the old primary is unknown here.
    s_expect (ctx, s_after (&last, 1), RL_STATUS_OK);
    size_t again = s_read_all (ctx, s_after (NULL, 0), 64, now, 0);
    assert_int_equal (again, count);
    s_same_stream (seen, now, count);
    assert_true (now[0].incarnation > last.incarnation); //  served by the new incarnation
    //  The new primary's events follow the consumer's position.
    rk_finish (&s_load, ctx->client, &ctx->model);
    size_t all = s_read_all (ctx, s_after (&last, 0), 64, seen, count);
    assert_true (all > count);
    s_check_rebuilt (ctx, seen, all);
    tk_shard_stop (ctx->h, &ctx->shard, SIGTERM);
}

static void
test_failover_async (void **state)
{
    s_ctx_t *ctx = *state;
    tk_shard_t standby;
    s_pair (ctx, &standby, "async");
    rk_load_start (&s_load, "test_events/failover_async");
    static rl_event_t seen[EVENTS_MAX], now[EVENTS_MAX];
    rk_drive (&s_load, ctx->client, 20, &ctx->model);
    s_caught_up (ctx);
    size_t held = s_read_all (ctx, s_after (NULL, 0), 50, seen, 0);
    assert_true (held > 0);
    tk_model_t at_stop = ctx->model;
    //  The standby stops; the primary goes on, and so does the consumer.
    assert_int_equal (kill (standby.pid, SIGSTOP), 0);
    rk_drive (&s_load, ctx->client, 10, &ctx->model);
    size_t count = s_read_all (ctx, s_after (&seen[held - 1], 0), 50, seen, held);
    assert_true (count > held);
    rl_event_t tail = seen[count - 1], kept = seen[held - 1];
    //  Both die: what the stopped standby's socket buffered dies with it,
    //  and it restarts from its disk (what it had applied at the SIGSTOP).
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shard, SIGKILL) & 0x7f, SIGKILL);
    assert_int_equal (tk_shard_stop (ctx->h, &standby, SIGKILL) & 0x7f, SIGKILL);
    assert_true (tk_shard_start (ctx->h, &standby) > 0);
    s_promote (ctx, &standby);
    //  The tail is not here: a consumer past it must rebuild.
    s_expect (ctx, s_after (&tail, 1), RL_STATUS_RESYNC);
    s_expect (ctx, s_after (&seen[held], 1), RL_STATUS_RESYNC);
    s_expect (ctx, s_after (&kept, 1), RL_STATUS_OK);
    size_t again = s_read_all (ctx, s_after (NULL, 0), 64, now, 0);
    assert_int_equal (again, held);
    s_same_stream (seen, now, held);
    ctx->model = at_stop;
    s_check_rebuilt (ctx, now, again);
    tk_check_conservation (ctx->client, &ctx->model, 10);
    //  It goes on as the primary: new events after the kept position.
    rk_drive (&s_load, ctx->client, 4, &ctx->model);
    size_t all = s_read_all (ctx, s_after (&kept, 0), 64, now, again);
    assert_true (all > again);
    s_check_rebuilt (ctx, now, all);
    tk_check_conservation (ctx->client, &ctx->model, 10);
    tk_shard_stop (ctx->h, &ctx->shard, SIGTERM);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_stream, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_restore, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_note_after_sync, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failover_semi, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failover_async, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
