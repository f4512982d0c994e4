/*  test_migrate.c: the copy of one arc between two real shards
    (docs/rebalance.md, "The copy").

    Two shards, s1 and s2, serve a ring of few points (so that one arc
    holds many accounts), in the WAL-held-in-memory mode, with security
    on. The test plays the tool: it begins a migration of s1's fullest
    arc to s2 on both, then moves chunks from s1's export to s2's import
    while it keeps sending transfers of every kind to s1 and s2: same-shard
    and cross-shard, debits and credits inside and outside the arc, and
    some that fail for a business reason (their ids are burned). Catch-up
    rounds follow until the arc is quiet and a last round has run. Then:
      - lookup_transfers on s2 answers every transfer whose debit account
        is in the arc exactly as s1 does;
      - with s2 stopped, a ledger opened on its store (the code the shard
        runs) answers the history of every account of the arc as s1 does,
        retries with the same ids get the original outcome (exists, or the
        same failure), the credit legs applied on s1 are recognised, the
        staged balances equal s1's, and recovery put nothing imported into
        balances (s2's own accounts keep their sums).
    test_copy_resumes_after_kills kills s1 and s2 (SIGKILL) in the middle of
    the copy, restarts them and resumes from s2's stored cursor; a chunk
    imported twice changes nothing, and the records counted equal the
    records stored. test_hostile_chunks sends chunks that are malformed,
    oversize, out of order, of another migration or outside the arc, and
    pending transfers (kind 3) with a bad state, side or origin, outside
    the arc, or outside the pending phase: each is refused with its status
    and nothing changes. test_handover plays
    the rest of the step: a freeze past its time limit ends by itself;
    then a transfer left pending in the arc, freeze, drain, s2 SIGKILLed
    and restarted (its staged accounts come back into memory from its
    store), an export from an older source's pending cursor (phase 4: the
    phase again from its start, the pending transfer in it), the final
    round, whose final
    chunk goes into s2 back to back with the step's ring (epoch 2, the
    arc's point given to s2) and s2's commit, as the tool sends them (one
    turn there: the commit installs that chunk's balances too), the ring on s1,
    s1's commit, then s1's cleanup (a few keys a call). Balances are
    unchanged and conserved, s2 answers the arc's history, lookups and
    retries as s1 did, s1 answers wrong_shard to a client holding the old
    ring, still acknowledges a resent COMMIT of a credit leg it applied (and
    not one it never applied), its store holds nothing of the arc, the
    history of its other accounts is unchanged, and both keep this across a
    SIGKILL; status counts the freeze while it lasts; a ring alone giving
    the arc back to s1 afterwards leaves it frozen there (handed over).
    Before the copy, begins naming an arc one point wider than the ring's
    are refused on both sides; before the cleanup, a new migration from
    s1 is refused. test_round_begun_twice: a round begun before the freeze
    (its first chunks imported) and again after the drain ends as an
    ordinary round; the next one is the final one, and the balances s2
    takes over are s1's.
    test_ring_gives_back: s1 restarted with the step's ring before any
    migration, then given the arc back by a ring of a higher epoch, serves
    it at once (it kept the data, never handed over), balances unchanged,
    also after a SIGKILL.
    test_frozen_piece: during a freeze one record of the arc makes the
    whole piece of a request frozen (transfers and accounts), nothing
    applied; the retry helper retries frozen to its deadline and returns
    it, or waits out a short freeze; a COMMIT crosses the freeze and the
    drain ends. test_abort: migrate_abort after the final round, the
    target in bounded calls killed in the middle, hostile and misdirected
    aborts, the source unfrozen, a fresh copy after. test_heuristic_blocks_
    freeze: a heuristic record in the arc refuses the freeze until the
    request says it is reconciled. test_arc_load: arc_load's fields
    against the traffic sent. test_cleanup_beside_checkpoint: an account
    of the arc changed by an undone chain (nothing posted) is in a
    checkpoint held in the background; the cleanup waits for it, and the
    source's store holds no account of the arc afterwards. Every case ends
    with the conservation check.
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

#include <cmocka.h>
#include <czmq.h>

#include "chunk.h"
#include "codec.h"
#include "imported.h"
#include "ledger.h"
#include "migrate.h"
#include "now.h"
#include "outq.h"
#include "ring.h"
#include "store.h"
#include "testkit.h"

#define S_TAG         0x4d4947524154ull //  "MIGRAT"
#define S_LEDGER      840
#define S_ACCOUNTS    160 //  accounts 1..S_ACCOUNTS
#define S_OPERATORS   24  //  accounts 1..S_OPERATORS may go negative
#define S_POINTS      8   //  ring points per shard: arcs of many accounts
#define S_TRANSFERS   1200
#define S_MIGRATION   77
#define S_ENTRIES     9 //  entries per chunk: many chunks
#define S_HISTORY_MAX 2048

typedef struct {
    harness_t *h;
    tk_shard_t shards[2];
    ring_t *ring;
    rl_client_t *clients[2];
    uint64_t arc_start, arc_end;
    rl_transfer_t sent[S_TRANSFERS];
    uint32_t results[S_TRANSFERS]; //  the first definite answer to each
    size_t sent_count;
    uint64_t next_id;
    uint32_t rand_state;
    rl_account_t own[S_ACCOUNTS + 1]; //  s2's own accounts as it answered before it stopped
} s_ctx_t;

static uint32_t
s_rand (s_ctx_t *ctx)
{
    ctx->rand_state = ctx->rand_state * 1103515245u + 12345u;
    return ctx->rand_state >> 8;
}

static int
s_owner (const s_ctx_t *ctx, uint64_t n)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (tk_id (n, S_TAG), bytes);
    return ring_lookup_id (ctx->ring, bytes);
}

static bool
s_in_arc (const s_ctx_t *ctx, rl_id_t id)
{
    return imported_in_arc (ctx->arc_start, ctx->arc_end, id);
}

static void
s_clients_open (s_ctx_t *ctx)
{
    for (size_t i = 0; i < 2; i++) {
        rl_client_destroy (&ctx->clients[i]);
        ctx->clients[i] = rl_client_new (ctx->shards[i].endpoint);
        assert_non_null (ctx->clients[i]);
    }
}

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (s_ctx_t));
    assert_non_null (ctx);
    ctx->h = harness_new ("test_migrate");
    assert_non_null (ctx->h);
    tk_keys_dir (ctx->h);
    ctx->rand_state = 7;
    ctx->next_id = 1;
    const char *names[2] = {"s1", "s2"};
    ctx->ring = ring_new (1);
    assert_non_null (ctx->ring);
    assert_int_equal (ring_set_points_per_weight (ctx->ring, S_POINTS), RING_OK);
    for (size_t i = 0; i < 2; i++) {
        tk_shard_init (ctx->h, &ctx->shards[i], names[i]);
        ctx->shards[i].durability = "manual-wal";
        assert_int_equal (ring_add_shard (ctx->ring, names[i], ctx->shards[i].endpoint, 1.0),
                          RING_OK);
    }
    char *path = harness_path (ctx->h, "cluster.ring");
    assert_non_null (path);
    assert_int_equal (ring_save_file (ctx->ring, path), RING_OK);
    for (size_t i = 0; i < 2; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof (ctx->shards[i].ring_file), "%s", path);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    }
    free (path);
    s_clients_open (ctx);
    //  The accounts, each on its shard.
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        uint16_t flags = n <= S_OPERATORS ? 0 : RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
        rl_account_t a = tk_account (n, S_TAG, S_LEDGER, flags);
        rl_result_rec_t r;
        assert_int_equal (
            rl_client_create_accounts (ctx->clients[s_owner (ctx, n)], &a, 1, &r, TK_TIMEOUT_MS),
            0);
        assert_int_equal (r.result, RL_OK);
    }
    //  s1's arc with the most accounts, (previous point, point], leaving
    //  s1 a quarter of its accounts at least.
    size_t points = ring_point_count (ctx->ring), best = 0, on_s1 = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        on_s1 += s_owner (ctx, n) == 0;
    }
    for (size_t p = 0; p < points; p++) {
        if (ring_point_owner (ctx->ring, p) != 0) {
            continue;
        }
        uint64_t end = ring_point_position (ctx->ring, p);
        uint64_t start = ring_point_position (ctx->ring, (p + points - 1) % points);
        size_t count = 0;
        for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
            count += imported_in_arc (start, end, tk_id (n, S_TAG));
        }
        if (count > best && count <= on_s1 * 3 / 4) {
            best = count;
            ctx->arc_start = start;
            ctx->arc_end = end;
        }
    }
    assert_true (best >= 8);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    for (size_t i = 0; i < 2; i++) {
        rl_client_destroy (&ctx->clients[i]);
        if (ctx->shards[i].pid > 0) {
            tk_shard_stop (ctx->h, &ctx->shards[i], SIGTERM);
        }
    }
    ring_destroy (&ctx->ring);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

//  Traffic -------------------------------------------------------------------

//  One transfer to its debit account's shard, retried while retryable;
//  kept with its first definite result. The result.
static uint32_t
s_send (s_ctx_t *ctx, uint64_t debit, uint64_t credit, uint64_t amount)
{
    assert_true (ctx->sent_count < S_TRANSFERS);
    rl_transfer_t t = tk_transfer (tk_id (ctx->next_id++, S_TAG + 1), tk_id (debit, S_TAG),
                                   tk_id (credit, S_TAG), amount, S_LEDGER);
    rl_client_t *client = ctx->clients[s_owner (ctx, debit)];
    rl_result_rec_t r = {0};
    for (int attempt = 0; attempt < 50; attempt++) {
        assert_int_equal (rl_client_create_transfers (client, &t, 1, &r, TK_TIMEOUT_MS), 0);
        if (!rl_result_is_retryable (r.result)) {
            break;
        }
    }
    assert_false (rl_result_is_retryable (r.result));
    ctx->results[ctx->sent_count] = r.result;
    ctx->sent[ctx->sent_count++] = t;
    return r.result;
}

//  Sends `count` transfers between random accounts: from operators (never
//  short of money) and from limited accounts (some fail and burn their id),
//  each to its debit account's shard. Retries a retryable answer.
static void
s_traffic (s_ctx_t *ctx, size_t count)
{
    for (size_t k = 0; k < count && ctx->sent_count < S_TRANSFERS; k++) {
        //  Half from operators, half from any account (some of those fail).
        uint64_t debit = 1 + s_rand (ctx) % (s_rand (ctx) % 2 ? S_OPERATORS : S_ACCOUNTS);
        uint64_t credit = 1 + s_rand (ctx) % S_ACCOUNTS;
        if (debit == credit) {
            credit = credit % S_ACCOUNTS + 1;
        }
        uint64_t amount = 1 + s_rand (ctx) % (debit <= S_OPERATORS ? 500 : 120);
        s_send (ctx, debit, credit, amount);
    }
}

static void s_sums (s_ctx_t *ctx, const ring_t *ring, rl_account_t *accounts);

//  The tool's side of the copy -----------------------------------------------

static int
s_migrate_call (rl_client_t *client, uint16_t op, const rl_migrate_rec_t *req,
                rl_migrate_rec_t *out)
{
    uint8_t body[RL_MIGRATE_SIZE];
    codec_encode_migrate (req, body);
    rl_header_t h;
    uint8_t *reply = NULL;
    size_t size = 0;
    int rc = rl_client_call (client, op, body, sizeof (body), 1, TK_TIMEOUT_MS, &h, &reply, &size);
    if (rc == 0) {
        assert_int_equal (size, RL_MIGRATE_SIZE);
        codec_decode_migrate (reply, out);
    }
    free (reply);
    return rc;
}

static rl_migrate_rec_t
s_request (const s_ctx_t *ctx, uint32_t role)
{
    rl_migrate_rec_t r = {.migration_id = S_MIGRATION,
                          .arc_start = ctx->arc_start,
                          .arc_end = ctx->arc_end,
                          .role = role};
    snprintf (r.source, sizeof (r.source), "s1");
    snprintf (r.target, sizeof (r.target), "s2");
    return r;
}

//  migrate_begin on both sides (again: the stored state); s2's state.
static rl_migrate_rec_t
s_begin (s_ctx_t *ctx)
{
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_SOURCE), out;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_BEGIN, &req, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_COPYING);
    req = s_request (ctx, RL_MIGRATE_TARGET);
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_BEGIN, &req, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_COPYING);
    assert_int_equal (out.role, RL_MIGRATE_TARGET);
    return out;
}

//  The next chunk from s1 for s2's state, at most `entries` (malloc'd).
static uint8_t *
s_export_max (s_ctx_t *ctx, const rl_migrate_rec_t *target, uint32_t entries, size_t *size_p)
{
    rl_migrate_rec_t req = *target;
    req.role = RL_MIGRATE_SOURCE;
    req.entries_max = entries;
    uint8_t body[RL_MIGRATE_SIZE];
    codec_encode_migrate (&req, body);
    rl_header_t h;
    uint8_t *chunk = NULL;
    assert_int_equal (rl_client_call (ctx->clients[0], RL_OP_MIGRATE_EXPORT, body, sizeof (body), 1,
                                      TK_TIMEOUT_MS, &h, &chunk, size_p),
                      0);
    assert_non_null (chunk);
    return chunk;
}

static uint8_t *
s_export (s_ctx_t *ctx, const rl_migrate_rec_t *target, size_t *size_p)
{
    return s_export_max (ctx, target, S_ENTRIES, size_p);
}

static int
s_import (s_ctx_t *ctx, const uint8_t *chunk, size_t size, rl_migrate_rec_t *out)
{
    rl_header_t h;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    int rc = rl_client_call (ctx->clients[1], RL_OP_MIGRATE_IMPORT, chunk, size, 1, TK_TIMEOUT_MS,
                             &h, &reply, &reply_size);
    if (rc == 0) {
        assert_int_equal (reply_size, RL_MIGRATE_SIZE);
        codec_decode_migrate (reply, out);
    }
    free (reply);
    return rc;
}

//  One chunk from s1 into s2; s2's new state.
static rl_migrate_rec_t
s_step (s_ctx_t *ctx, const rl_migrate_rec_t *target)
{
    size_t size = 0;
    uint8_t *chunk = s_export (ctx, target, &size);
    rl_migrate_rec_t out;
    assert_int_equal (s_import (ctx, chunk, size, &out), 0);
    assert_int_equal (out.chunks, target->chunks + 1);
    free (chunk);
    return out;
}

//  Copies until a round ends, sending `traffic` transfers between chunks.
static rl_migrate_rec_t
s_round (s_ctx_t *ctx, rl_migrate_rec_t target, size_t traffic)
{
    uint32_t round = target.cursor.phase == RL_MIGRATE_PHASE_DONE ? target.cursor.round + 1
                                                                  : target.cursor.round;
    do {
        target = s_step (ctx, &target);
        s_traffic (ctx, traffic);
    } while (!(target.cursor.phase == RL_MIGRATE_PHASE_DONE && target.cursor.round == round));
    return target;
}

//  Comparisons ---------------------------------------------------------------

static bool
s_quiet (void *arg)
{
    s_ctx_t *ctx = arg;
    return tk_wait_quiet (ctx->clients, 2, 100);
}

//  lookup_transfers on s2 equals s1 for every transfer whose debit account is in the arc.
static size_t
s_check_lookups (s_ctx_t *ctx)
{
    size_t checked = 0;
    for (size_t i = 0; i < ctx->sent_count; i++) {
        const rl_transfer_t *t = &ctx->sent[i];
        if (!s_in_arc (ctx, t->debit_account_id)) {
            continue;
        }
        rl_transfer_t a, b;
        assert_int_equal (
            rl_client_lookup_transfers (ctx->clients[0], &t->id, 1, &a, TK_TIMEOUT_MS), 0);
        assert_int_equal (
            rl_client_lookup_transfers (ctx->clients[1], &t->id, 1, &b, TK_TIMEOUT_MS), 0);
        assert_memory_equal (&a, &b, sizeof (a));
        checked += a.timestamp != 0;
    }
    return checked;
}

//  Stops s2 (SIGTERM, exit 0) after reading its own accounts.
static void
s_stop_target (s_ctx_t *ctx)
{
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, S_TAG);
        if (s_owner (ctx, n) == 1) {
            assert_int_equal (
                rl_client_lookup_accounts (ctx->clients[1], &id, 1, &ctx->own[n], TK_TIMEOUT_MS),
                0);
        }
    }
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM), 0);
}

//  Opens s2's store (s2 stopped) with a ledger that owns everything and
//  checks its answers for the arc's accounts against s1's.
static void
s_check_target_store (s_ctx_t *ctx)
{
    char err[256] = "";
    store_t *store = store_open (ctx->shards[1].data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    ring_t *solo = ring_new (1);
    assert_non_null (solo);
    assert_int_equal (ring_add_shard (solo, "s2", ctx->shards[1].endpoint, 1.0), RING_OK);
    outq_t *outq = outq_new ();
    assert_non_null (outq);
    ledger_t *ledger = ledger_open (store, outq, "s2", solo, 99, now_read (), err, sizeof (err));
    if (!ledger) {
        fail_msg ("ledger_open: %s", err);
    }
    //  Recovery put nothing imported into balances: s2's own accounts are
    //  as s2 answered, and the accounts of the arc are not live yet.
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, S_TAG);
        rl_account_t a;
        ledger_lookup_accounts (ledger, &id, 1, &a);
        if (s_owner (ctx, n) == 1) {
            assert_memory_equal (&a, &ctx->own[n], sizeof (a));
        } else if (s_in_arc (ctx, id)) {
            assert_int_equal (a.timestamp, 0);
        }
    }
    static rl_transfer_t mine[S_HISTORY_MAX], theirs[S_HISTORY_MAX];
    size_t accounts = 0, history = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, S_TAG);
        if (!s_in_arc (ctx, id)) {
            continue;
        }
        accounts++;
        //  Balances: the staged snapshot equals s1's account.
        rl_account_t a, staged;
        assert_int_equal (rl_client_lookup_accounts (ctx->clients[0], &id, 1, &a, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (imported_account (store, id, &staged), 1);
        assert_memory_equal (&a, &staged, sizeof (a));
        //  History, both directions, each side alone and both, with the
        //  full limit and a short one (records of the other side must not
        //  use up a short limit).
        static const uint32_t sides[] = {RL_FILTER_DEBITS | RL_FILTER_CREDITS, RL_FILTER_DEBITS,
                                         RL_FILTER_CREDITS};
        for (int k = 0; k < 12; k++) {
            bool reversed = k & 1, full = (k >> 1) & 1;
            rl_filter_t f = {.account_id = id,
                             .limit = full ? S_HISTORY_MAX : 3,
                             .flags = sides[k >> 2] | (reversed ? RL_FILTER_REVERSED : 0)};
            size_t count_s1 = 0, count_s2 = 0;
            assert_int_equal (rl_client_get_account_transfers (ctx->clients[0], &f, theirs,
                                                               &count_s1, TK_TIMEOUT_MS),
                              0);
            assert_int_equal (ledger_account_transfers (ledger, &f, mine, &count_s2), RL_STATUS_OK);
            assert_int_equal (count_s1, count_s2);
            assert_memory_equal (theirs, mine, count_s1 * sizeof (rl_transfer_t));
            if (full && k < 4) {
                history += count_s1;
            }
        }
    }
    assert_true (accounts >= 8 && history > 0);
    //  Retries with the same ids: the original outcome, on s2 as on s1.
    size_t retried = 0, burned = 0, legs = 0;
    for (size_t i = 0; i < ctx->sent_count; i++) {
        const rl_transfer_t *t = &ctx->sent[i];
        if (s_in_arc (ctx, t->debit_account_id)) {
            rl_result_rec_t r1, r2;
            assert_int_equal (
                rl_client_create_transfers (ctx->clients[0], t, 1, &r1, TK_TIMEOUT_MS), 0);
            rl_header_t header = codec_request_header (RL_OP_CREATE_TRANSFERS, 1, 1);
            assert_int_equal (
                ledger_create_transfers (ledger, t, 1, now_read (), NULL, &header, &r2),
                LEDGER_REPLY_NOW);
            assert_int_equal (r1.result, r2.result);
            assert_true (r1.timestamp == r2.timestamp);
            assert_true (r1.result == RL_EXISTS || tk_result_is_business (r1.result));
            retried++;
            burned += r1.result != RL_EXISTS;
        }
        //  A cross-shard transfer from s2 to an account of the arc: when it
        //  was applied (s2 holds its debit leg), its credit leg was applied on
        //  s1, and s2 now recognises it (a resent decision never credits twice).
        if (s_in_arc (ctx, t->credit_account_id) && s_owner (ctx, t->debit_account_id.lo) == 1) {
            rl_transfer_t found;
            assert_int_equal (ledger_lookup_transfers (ledger, &t->id, 1, &found), 0);
            if (found.timestamp != 0) {
                assert_int_equal (imported_leg_applied (store, t->id, t->debit_account_id), 1);
                legs++;
            }
        }
    }
    print_message ("target store: %zu accounts, %zu history rows, %zu retries (%zu burned), "
                   "%zu credit legs equal s1's answers\n",
                   accounts, history, retried, burned, legs);
    assert_true (retried > 20 && burned > 0);
    assert_true (legs > 0);
    ledger_destroy (&ledger);
    outq_destroy (&outq);
    ring_destroy (&solo);
    store_close (&store);
}

//  Tests -----------------------------------------------------------------------

static void
test_copy_while_serving (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 400);
    rl_migrate_rec_t target = s_begin (ctx);
    assert_int_equal (target.chunks, 0);
    target = s_round (ctx, target, 3); //  the bulk copy, under traffic
    target = s_round (ctx, target, 2); //  catch-up, under traffic
    assert_true (ctx->sent_count > 420);
    //  The arc goes quiet (as the freeze will make it), a last round.
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    target = s_round (ctx, target, 0);
    assert_true (target.records > 0 && target.accounts > 0);
    print_message ("copy: %zu transfers sent, %" PRIu64 " chunks, %" PRIu64 " records, %" PRIu64
                   " account snapshots, %u rounds\n",
                   ctx->sent_count, target.chunks, target.records, target.accounts,
                   target.cursor.round + 1);
    assert_true (s_check_lookups (ctx) > 50);
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums); //  conservation: the copy moved no money
    //  s2's store, with s2 stopped.
    s_stop_target (ctx);
    s_check_target_store (ctx);
}

static void
test_copy_resumes_after_kills (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 200);
    rl_migrate_rec_t target = s_begin (ctx);
    for (int i = 0; i < 5; i++) {
        target = s_step (ctx, &target);
        s_traffic (ctx, 2);
    }
    //  The source dies mid-copy; a chunk it exported is lost with the tool's memory.
    size_t lost_size = 0;
    uint8_t *lost = s_export (ctx, &target, &lost_size);
    free (lost);
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[0], SIGKILL) >= 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[0]) > 0);
    s_clients_open (ctx);
    rl_migrate_rec_t resumed = s_begin (ctx);
    assert_int_equal (resumed.chunks, target.chunks);
    for (int i = 0; i < 5; i++) {
        resumed = s_step (ctx, &resumed);
        s_traffic (ctx, 2);
    }
    //  The target dies right after importing a chunk; the tool sends it
    //  again after the restart: imported already, nothing changes.
    size_t size = 0;
    uint8_t *chunk = s_export (ctx, &resumed, &size);
    rl_migrate_rec_t after;
    assert_int_equal (s_import (ctx, chunk, size, &after), 0);
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGKILL) >= 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    rl_migrate_rec_t again = s_begin (ctx);
    assert_memory_equal (&again.cursor, &after.cursor, sizeof (after.cursor));
    assert_int_equal (again.chunks, after.chunks);
    assert_int_equal (again.records, after.records);
    rl_migrate_rec_t dup;
    assert_int_equal (s_import (ctx, chunk, size, &dup), 0);
    assert_memory_equal (&dup, &again, sizeof (dup));
    free (chunk);
    //  To the end, quiet, and compare.
    target = s_round (ctx, again, 2);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    target = s_round (ctx, target, 0);
    assert_true (s_check_lookups (ctx) > 20);
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums); //  conservation after both kills
    s_stop_target (ctx);
    //  No duplicates: the records counted are the records stored.
    char err[256] = "";
    store_t *store = store_open (ctx->shards[1].data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    store_iter_t *it = store_iter_new (store, STORE_CF_IMPORTED);
    uint8_t first = IMPORTED_TRANSFER;
    uint64_t stored = 0;
    for (store_iter_seek (it, &first, 1); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0;
        if (store_iter_key (it, &key_size)[0] != IMPORTED_TRANSFER) {
            break;
        }
        stored++;
    }
    store_iter_destroy (&it);
    store_close (&store);
    //  Every round after the first sends only new records: counted once each.
    assert_int_equal (stored, target.records);
    s_check_target_store (ctx);
}

//  A catch-up round after N accounts of the arc changed sends those N
//  accounts, not every account of the arc; a source restarted in between
//  sends a whole round once, then changes only again. The target's
//  `accounts` counter counts the account entries each round brought.
static void
test_catchup_sends_changes (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 400);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    size_t arc = 0;
    uint64_t same = 0, cross = 0; //  operators outside the arc, on s1 and on s2
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        bool in = s_in_arc (ctx, tk_id (n, S_TAG));
        arc += in;
        if (!in && n <= S_OPERATORS) {
            *(s_owner (ctx, n) == 0 ? &same : &cross) = n;
        }
    }
    assert_true (arc >= 8 && same && cross);
    rl_migrate_rec_t target = s_begin (ctx);
    target = s_round (ctx, target, 0); //  the bulk copy: every account
    assert_int_equal (target.accounts, arc);
    uint64_t accounts = target.accounts, records = target.records;
    target = s_round (ctx, target, 0); //  nothing changed: no account, no record
    assert_int_equal (target.accounts - accounts, 0);
    assert_int_equal (target.records - records, 0);
    //  Credits to N accounts of the arc, from operators outside it: same-
    //  shard and cross-shard (escrow on s1, then the credit posted).
    size_t changed = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS && changed < 6; n++) {
        if (s_in_arc (ctx, tk_id (n, S_TAG)) && n != same && n != cross) {
            assert_int_equal (s_send (ctx, changed % 2 ? cross : same, n, 7), RL_OK);
            changed++;
        }
    }
    assert_int_equal (changed, 6);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    accounts = target.accounts;
    records = target.records;
    target = s_round (ctx, target, 0);
    print_message ("catch-up after %zu changed accounts of %zu: %" PRIu64 " accounts, %" PRIu64
                   " records\n",
                   changed, arc, target.accounts - accounts, target.records - records);
    assert_int_equal (target.accounts - accounts, changed);
    assert_int_equal (target.records - records, changed);
    //  A restarted source has no record of the changes: one whole round,
    //  then changes only again.
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[0], SIGKILL) >= 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[0]) > 0);
    s_clients_open (ctx);
    target = s_begin (ctx);
    accounts = target.accounts;
    target = s_round (ctx, target, 0);
    assert_int_equal (target.accounts - accounts, arc);
    uint64_t one = 0; //  an account of the arc
    for (uint64_t n = 1; n <= S_ACCOUNTS && !one; n++) {
        one = s_in_arc (ctx, tk_id (n, S_TAG)) ? n : 0;
    }
    assert_int_equal (s_send (ctx, same, one, 3), RL_OK);
    accounts = target.accounts;
    target = s_round (ctx, target, 0);
    assert_int_equal (target.accounts - accounts, 1);
    //  A cursor one round past what s1 counted (a count its record lost):
    //  counted now and served; two rounds past: refused.
    rl_migrate_rec_t past = target, got;
    past.role = RL_MIGRATE_SOURCE;
    past.entries_max = 4;
    past.cursor.round = target.cursor.round + 2;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_EXPORT, &past, &got),
                      RL_STATUS_MIGRATION_REFUSED);
    past.cursor.round = target.cursor.round + 1;
    size_t size = 0;
    free (s_export_max (ctx, &past, 4, &size));
    //  The target's staged accounts equal the source's (and the rest of
    //  the copy's checks), then conservation.
    assert_true (s_check_lookups (ctx) > 20);
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums);
    s_stop_target (ctx);
    s_check_target_store (ctx);
}

//  Handover ------------------------------------------------------------------------

static int
s_op (rl_client_t *client, uint16_t op, const rl_migrate_rec_t *state, uint32_t role,
      uint32_t param, rl_migrate_rec_t *out)
{
    rl_migrate_rec_t req = *state;
    req.role = role;
    req.param = param;
    return s_migrate_call (client, op, &req, out);
}

//  One transfer's result, sent once to `client`.
static uint32_t
s_once (rl_client_t *client, uint64_t id, uint64_t debit, uint64_t credit)
{
    rl_transfer_t t = tk_transfer (tk_id (id, S_TAG + 2), tk_id (debit, S_TAG),
                                   tk_id (credit, S_TAG), 1, S_LEDGER);
    rl_result_rec_t r = {0};
    assert_int_equal (rl_client_create_transfers (client, &t, 1, &r, TK_TIMEOUT_MS), 0);
    return r.result;
}

//  The step's ring: the current one with the arc's point given to s2, at epoch 2.
static ring_t *
s_step_ring (s_ctx_t *ctx)
{
    char *text = ring_to_text (ctx->ring);
    assert_non_null (text);
    char line[64];
    snprintf (line, sizeof (line), "point %016" PRIx64 " s1", ctx->arc_end);
    char *at = strstr (text, line);
    assert_non_null (at);
    at[strlen (line) - 1] = '2';
    at = strstr (text, "epoch 1\n");
    assert_non_null (at);
    at[6] = '2';
    char err[256];
    ring_t *ring = ring_from_text (text, err, sizeof (err));
    if (!ring) {
        fail_msg ("step ring: %s", err);
    }
    free (text);
    return ring;
}

static void
s_load_ring (rl_client_t *client, const ring_t *ring)
{
    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring, blob, size), size);
    assert_int_equal (rl_client_load_ring (client, blob, size, TK_TIMEOUT_MS), 0);
    free (blob);
}

//  Sums of posted amounts over every account, each asked of its owner in `ring`.
static void
s_sums (s_ctx_t *ctx, const ring_t *ring, rl_account_t *accounts)
{
    uint64_t debits = 0, credits = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, S_TAG);
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (id, bytes);
        int owner = ring_lookup_id (ring, bytes);
        assert_int_equal (
            rl_client_lookup_accounts (ctx->clients[owner], &id, 1, &accounts[n], TK_TIMEOUT_MS),
            0);
        assert_int_equal (accounts[n].debits_reserved + accounts[n].credits_reserved, 0);
        debits += accounts[n].debits_posted;
        credits += accounts[n].credits_posted;
    }
    assert_true (debits > 0);
    assert_int_equal (debits, credits);
}

//  The frozen arcs `client`'s shard counts in its status.
static uint64_t
s_frozen_arcs (rl_client_t *client)
{
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (client, &st, TK_TIMEOUT_MS), 0);
    return st.arcs_unreceived;
}

//  ctx->ring at `epoch` (a single digit).
static ring_t *
s_ring_at (s_ctx_t *ctx, uint64_t epoch)
{
    char *text = ring_to_text (ctx->ring);
    assert_non_null (text);
    char *at = strstr (text, "epoch 1\n");
    assert_non_null (at);
    at[6] = (char) ('0' + epoch);
    char err[256];
    ring_t *ring = ring_from_text (text, err, sizeof (err));
    free (text);
    assert_non_null (ring);
    return ring;
}

//  Restarts shard i with the ring file of ctx->ring at `epoch`.
static void
s_restart_with_ring (s_ctx_t *ctx, size_t i, uint64_t epoch)
{
    ring_t *ring = s_ring_at (ctx, epoch);
    char name[32];
    snprintf (name, sizeof (name), "epoch%" PRIu64 ".ring", epoch);
    char *path = harness_path (ctx->h, name);
    assert_non_null (path);
    assert_int_equal (ring_save_file (ring, path), RING_OK);
    ring_destroy (&ring);
    if (ctx->shards[i].pid > 0) {
        assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[i], SIGTERM), 0);
    }
    snprintf (ctx->shards[i].ring_file, sizeof (ctx->shards[i].ring_file), "%s", path);
    free (path);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    s_clients_open (ctx);
}

#define S_HANDOVER_HISTORY 512 //  transfers per account compared across the handover

//  The history of every account of the arc from `client`: into a new
//  array (expected NULL), or compared with `expected` (then NULL is returned).
static rl_transfer_t *s_histories_of (s_ctx_t *ctx, rl_client_t *client,
                                      const rl_transfer_t *expected, bool in_arc);

static rl_transfer_t *
s_histories (s_ctx_t *ctx, rl_client_t *client, const rl_transfer_t *expected)
{
    return s_histories_of (ctx, client, expected, true);
}

//  The same for the accounts of the arc (in_arc) or for s1's accounts outside it.
static rl_transfer_t *
s_histories_of (s_ctx_t *ctx, rl_client_t *client, const rl_transfer_t *expected, bool in_arc)
{
    size_t per = S_HANDOVER_HISTORY + 1; //  slot 0: the count
    rl_transfer_t *all = calloc ((S_ACCOUNTS + 1) * per, sizeof (rl_transfer_t));
    assert_non_null (all);
    size_t rows = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        rl_id_t id = tk_id (n, S_TAG);
        if (in_arc ? !s_in_arc (ctx, id) : (s_in_arc (ctx, id) || s_owner (ctx, n) != 0)) {
            continue;
        }
        rl_filter_t f = {.account_id = id,
                         .limit = S_HANDOVER_HISTORY,
                         .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
        rl_transfer_t *slot = all + n * per;
        size_t count = 0;
        assert_int_equal (
            rl_client_get_account_transfers (client, &f, slot + 1, &count, TK_TIMEOUT_MS), 0);
        slot[0].amount = count;
        rows += count;
        if (expected) {
            assert_int_equal (count, expected[n * per].amount);
            assert_memory_equal (slot + 1, expected + n * per + 1, count * sizeof (rl_transfer_t));
        }
    }
    assert_true (rows > 0);
    if (expected) {
        free (all);
        return NULL;
    }
    return all;
}

//  migrate_cleanup on s1 (`budget` keys a call) until NONE; the calls made.
static size_t
s_cleanup (s_ctx_t *ctx, uint32_t budget)
{
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_SOURCE), out;
    req.entries_max = budget;
    size_t calls = 0;
    do {
        assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_CLEANUP, &req, &out), 0);
        calls++;
        assert_true (calls < 10000);
        if (out.state != RL_MIGRATE_NONE) {
            zclock_sleep (5); //  a checkpoint may be running
        }
    } while (out.state != RL_MIGRATE_NONE);
    return calls;
}

//  The keys of `cf` in shard i's store (the shard stopped), and in *in_arc_p
//  those that begin with an id of the arc.
static size_t
s_stored_keys (s_ctx_t *ctx, size_t i, store_cf_t cf, size_t *in_arc_p)
{
    char err[256] = "";
    store_t *store = store_open (ctx->shards[i].data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    store_iter_t *it = store_iter_new (store, cf);
    assert_non_null (it);
    size_t keys = 0;
    *in_arc_p = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        assert_true (key_size >= RL_ID_SIZE);
        *in_arc_p += s_in_arc (ctx, codec_decode_id (key));
        keys++;
    }
    store_iter_destroy (&it);
    store_close (&store);
    return keys;
}

//  A DECIDE sent to s1 with s2's key, as s2 (the coordinator) would; its answer's state.
static uint32_t
s_decide_from_s2 (s_ctx_t *ctx, rl_tp_rec_t *tp)
{
    snprintf (tp->coordinator, sizeof (tp->coordinator), "s2");
    uint8_t frame[RL_HEADER_SIZE + RL_TP_SIZE];
    size_t size = tk_request_header (frame, RL_OP_DECIDE, 1, 1);
    codec_encode_tp (tp, frame + size);
    zsock_t *dealer = tk_dealer_as (ctx->h, "s2", "s1", ctx->shards[0].endpoint);
    assert_int_equal (zsock_send (dealer, "b", frame, size + RL_TP_SIZE), 0);
    zframe_t *reply = zframe_recv (dealer);
    assert_non_null (reply);
    rl_header_t h;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal (
        codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &body, &body_size),
        RL_STATUS_OK);
    assert_int_equal (h.record_count, 1);
    rl_tp_rec_t answer;
    codec_decode_tp (body, &answer);
    zframe_destroy (&reply);
    zsock_destroy (&dealer);
    return answer.state;
}

//  After the cleanup, s1 still acknowledges a resent COMMIT of a credit leg
//  it applied to an account that moved (its legs index), touching nothing.
static void
s_check_resent_commit (s_ctx_t *ctx)
{
    rl_status_rec_t before, after;
    assert_int_equal (rl_client_status (ctx->clients[0], &before, TK_TIMEOUT_MS), 0);
    size_t acked = 0;
    for (size_t i = 0; i < ctx->sent_count && acked < 3; i++) {
        const rl_transfer_t *t = &ctx->sent[i];
        if (!s_in_arc (ctx, t->credit_account_id) || s_owner (ctx, t->debit_account_id.lo) != 1
            || ctx->results[i] != RL_OK) {
            continue; //  applied, from s2: s1 applied its credit leg
        }
        rl_tp_rec_t tp = {.id = t->id,
                          .attempt = {.counter = 1, .seq = 1},
                          .state = RL_TP_COMMIT,
                          .amount = t->amount,
                          .debit_account_id = t->debit_account_id};
        assert_int_equal (s_decide_from_s2 (ctx, &tp), RL_TP_ACKED);
        acked++;
    }
    print_message ("resent commits acknowledged: %zu\n", acked);
    assert_true (acked > 0);
    assert_int_equal (rl_client_status (ctx->clients[0], &after, TK_TIMEOUT_MS), 0);
    assert_int_equal (after.alarms, before.alarms);
    //  The control: a COMMIT for a leg never applied here is not acknowledged.
    rl_tp_rec_t never = {.id = tk_id (1, S_TAG + 9),
                         .attempt = {.counter = 1, .seq = 1},
                         .state = RL_TP_COMMIT,
                         .amount = 1,
                         .debit_account_id = tk_id (1, S_TAG)};
    assert_int_equal (s_decide_from_s2 (ctx, &never), RL_TP_NOT_ACKED);
}

//  The final round from s1 into s2 up to its final chunk, which is held;
//  then that chunk, the step's ring and s2's commit sent back to back on
//  one connection, as the tool sends them (one turn on s2: its commit takes
//  the final chunk's accounts from memory, migrate.c "THE STAGE"). Every
//  reply must be ok; *target becomes s2's answer to the chunk, and the
//  commit's answer is returned.
static rl_migrate_rec_t
s_final_handover_status (s_ctx_t *ctx, rl_migrate_rec_t *target, const ring_t *step,
                         uint32_t *status_p)
{
    uint8_t *chunk = NULL;
    size_t size = 0;
    for (;;) {
        rl_migrate_rec_t req = *target;
        req.role = RL_MIGRATE_SOURCE;
        req.entries_max = RL_MIGRATE_ENTRIES_MAX; //  the final round in as few chunks as it takes
        uint8_t body[RL_MIGRATE_SIZE];
        codec_encode_migrate (&req, body);
        rl_header_t h;
        assert_int_equal (rl_client_call (ctx->clients[0], RL_OP_MIGRATE_EXPORT, body,
                                          sizeof (body), 1, TK_TIMEOUT_MS, &h, &chunk, &size),
                          0);
        chunk_t head;
        assert_int_equal (chunk_decode (chunk, size, &head), RL_STATUS_OK);
        if ((head.flags & RL_CHUNK_FINAL) && head.to.phase == RL_MIGRATE_PHASE_DONE) {
            size_t accounts = 0;
            for (uint32_t i = 0; i < head.entry_count; i++) {
                chunk_entry_t e;
                chunk_entry (&head, i, &e);
                accounts += e.kind == RL_CHUNK_ACCOUNT;
            }
            print_message ("final chunk: %" PRIu32 " entries, %zu accounts\n", head.entry_count,
                           accounts);
            assert_true (accounts > 0); //  balances that only this chunk brings
            break;
        }
        rl_migrate_rec_t out;
        assert_int_equal (s_import (ctx, chunk, size, &out), 0);
        free (chunk);
        *target = out;
    }
    size_t ring_size = ring_encoded_size (step);
    uint8_t *blob = malloc (ring_size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (step, blob, ring_size), ring_size);
    uint8_t commit[RL_MIGRATE_SIZE];
    rl_migrate_rec_t req = *target;
    req.role = RL_MIGRATE_TARGET;
    codec_encode_migrate (&req, commit);
    uint64_t ids[3] = {0};
    rl_client_t *client = ctx->clients[1];
    assert_int_equal (rl_client_send (client, RL_OP_MIGRATE_IMPORT, chunk, size, 1, &ids[0]), 0);
    assert_int_equal (rl_client_send (client, RL_OP_LOAD_RING, blob, ring_size, 1, &ids[1]), 0);
    assert_int_equal (
        rl_client_send (client, RL_OP_MIGRATE_COMMIT, commit, sizeof (commit), 1, &ids[2]), 0);
    free (blob);
    free (chunk);
    rl_migrate_rec_t recs[3];
    memset (recs, 0, sizeof (recs));
    uint32_t commit_status = RL_STATUS_OK;
    for (int n = 0; n < 3; n++) {
        rl_header_t h;
        uint8_t *body = NULL;
        size_t body_size = 0;
        int rc = rl_client_recv (client, TK_TIMEOUT_MS, &h, &body, &body_size);
        assert_true (rc >= 0); //  a reply: its status
        assert_true (rc == 0 || status_p);
        int part = h.request_id == ids[0] ? 0 : h.request_id == ids[1] ? 1 : 2;
        assert_int_equal (h.request_id, ids[part]);
        if (part == 2) {
            commit_status = (uint32_t) rc;
        }
        if (part != 1 && rc == 0) {
            assert_int_equal (body_size, RL_MIGRATE_SIZE);
            codec_decode_migrate (body, &recs[part]);
        }
        free (body);
    }
    if (status_p) {
        *status_p = commit_status;
        if (commit_status != RL_STATUS_OK) {
            return recs[2]; //  the turn failed: nothing of it holds
        }
    }
    assert_int_equal (commit_status, RL_STATUS_OK);
    assert_int_equal (recs[0].state, RL_MIGRATE_SHIPPED);
    *target = recs[0];
    return recs[2];
}

//  The same, every answer ok (the commit's status out of *status_p
//  otherwise, the other answers unchecked when it failed).
static rl_migrate_rec_t
s_final_handover (s_ctx_t *ctx, rl_migrate_rec_t *target, const ring_t *step)
{
    return s_final_handover_status (ctx, target, step, NULL);
}

//  The final round into s2 with the step's ring and its commit, then the
//  ring on s1 and s1's commit: both HANDED_OVER.
static void
s_hand_over (s_ctx_t *ctx, rl_migrate_rec_t *target, const ring_t *step)
{
    rl_migrate_rec_t out = s_final_handover (ctx, target, step);
    assert_int_equal (out.state, RL_MIGRATE_HANDED_OVER);
    s_load_ring (ctx->clients[0], step);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_COMMIT, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_HANDED_OVER);
}

//  One chunk of at most `entries` from s1 into s2, which must not be the
//  final one; s2's new state. *account_p: the last account in it, if any.
static rl_migrate_rec_t
s_step_not_final (s_ctx_t *ctx, const rl_migrate_rec_t *target, uint32_t entries,
                  rl_id_t *account_p)
{
    size_t size = 0;
    uint8_t *chunk = s_export_max (ctx, target, entries, &size);
    chunk_t head;
    assert_int_equal (chunk_decode (chunk, size, &head), RL_STATUS_OK);
    assert_false (head.flags & RL_CHUNK_FINAL);
    for (uint32_t i = 0; i < head.entry_count && account_p; i++) {
        chunk_entry_t e;
        chunk_entry (&head, i, &e);
        if (e.kind == RL_CHUNK_ACCOUNT) {
            *account_p = e.account.id;
        }
    }
    rl_migrate_rec_t out;
    assert_int_equal (s_import (ctx, chunk, size, &out), 0);
    free (chunk);
    return out;
}

//  s1's stored migration state.
static uint32_t
s_source_state (s_ctx_t *ctx)
{
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_SOURCE), out;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_BEGIN, &req, &out), 0);
    return out.state;
}

//  A round begun twice: once before the freeze (by a second tool, or an old
//  run alive after `recover`), whose chunks s2 imports, and once after the
//  drain. An account the earlier start had sent already changes in
//  between. The round must not end as the final one (it would ship that
//  account's old balance): it ends as an ordinary round, and the next
//  one, begun fresh in the freeze, is the final one. The balances s2 takes
//  over are s1's.
static void
test_round_begun_twice (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 200);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    uint64_t same = 0; //  an operator on s1 outside the arc
    for (uint64_t n = 1; n <= S_OPERATORS && !same; n++) {
        same = !s_in_arc (ctx, tk_id (n, S_TAG)) && s_owner (ctx, n) == 0 ? n : 0;
    }
    assert_true (same > 0);
    rl_migrate_rec_t target = s_begin (ctx);
    target = s_round (ctx, target, 0); //  round 0: every account
    size_t changed = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS && changed < 6; n++) {
        if (s_in_arc (ctx, tk_id (n, S_TAG)) && n != same) {
            assert_int_equal (s_send (ctx, same, n, 7), RL_OK);
            changed++;
        }
    }
    assert_int_equal (changed, 6);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    //  The earlier start of round 1: one entry a chunk until an account is in.
    rl_migrate_rec_t before_round = target;
    rl_id_t sent = {0};
    while (rl_id_is_zero (sent)) {
        target = s_step_not_final (ctx, &target, 1, &sent);
        assert_int_not_equal (target.cursor.phase, RL_MIGRATE_PHASE_DONE);
    }
    //  A stray export naming a round no export began here: refused, nothing
    //  counted (it would keep every later start from being fresh).
    rl_migrate_rec_t stray = s_request (ctx, RL_MIGRATE_SOURCE), got;
    stray.entries_max = 4;
    stray.cursor.phase = RL_MIGRATE_PHASE_DONE;
    stray.cursor.round = 7;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_EXPORT, &stray, &got),
                      RL_STATUS_MIGRATION_REFUSED);
    stray.cursor.round = UINT32_MAX;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_EXPORT, &stray, &got),
                      RL_STATUS_MIGRATION_REFUSED);
    stray.cursor.phase = RL_MIGRATE_PHASE_ACCOUNTS;
    stray.cursor.round = 3;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_EXPORT, &stray, &got),
                      RL_STATUS_MIGRATION_REFUSED);
    //  The source aborted by hand and begun again: the rounds it began stay
    //  counted (s2 still holds a cursor of round 1).
    rl_migrate_rec_t src = s_request (ctx, RL_MIGRATE_SOURCE);
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_ABORT, &src, &got), 0);
    assert_int_equal (got.state, RL_MIGRATE_NONE);
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_BEGIN, &src, &got), 0);
    assert_int_equal (got.state, RL_MIGRATE_COPYING);
    assert_int_equal (got.chunks, 2);
    //  That account changes after it went.
    uint64_t n_sent = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS && !n_sent; n++) {
        n_sent = rl_id_eq (tk_id (n, S_TAG), sent) ? n : 0;
    }
    assert_true (n_sent > 0);
    assert_int_equal (s_send (ctx, same, n_sent, 5), RL_OK);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t before[S_ACCOUNTS + 1], after[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, before);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out), 0);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (out.param, 0);
    //  The later start, frozen and drained, from the cursor before round 1:
    //  not the final one, and s2 takes nothing of it (already imported).
    size_t size = 0;
    uint8_t *chunk = s_export_max (ctx, &before_round, RL_MIGRATE_ENTRIES_MAX, &size);
    chunk_t head;
    assert_int_equal (chunk_decode (chunk, size, &head), RL_STATUS_OK);
    assert_false (head.flags & RL_CHUNK_FINAL);
    assert_int_equal (s_import (ctx, chunk, size, &out), 0);
    assert_int_equal (out.chunks, target.chunks);
    free (chunk);
    assert_int_equal (s_source_state (ctx), RL_MIGRATE_FROZEN);
    //  s2's cursor, from the earlier start, goes on: an ordinary round's end.
    while (target.cursor.phase != RL_MIGRATE_PHASE_DONE) {
        target = s_step_not_final (ctx, &target, RL_MIGRATE_ENTRIES_MAX, NULL);
    }
    assert_int_equal (s_source_state (ctx), RL_MIGRATE_FROZEN);
    //  The next round begins fresh in the freeze: the final one, handed over.
    ring_t *step = s_step_ring (ctx);
    s_hand_over (ctx, &target, step);
    s_sums (ctx, step, after);
    assert_memory_equal (before, after, sizeof (before));
    ring_destroy (&step);
}

static void
test_handover (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 300);
    {
        //  A begin naming an arc one point wider than the ring's (its end
        //  is s1's): the source does not serve all of it, the target
        //  serves part of it (the ring's points alternate between s1 and
        //  s2, so the point before the arc is s2's).
        rl_migrate_rec_t wide = s_request (ctx, RL_MIGRATE_SOURCE), none;
        wide.arc_start--;
        assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_BEGIN, &wide, &none),
                          RL_STATUS_MIGRATION_REFUSED);
        wide = s_request (ctx, RL_MIGRATE_TARGET);
        wide.arc_start--;
        assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_BEGIN, &wide, &none),
                          RL_STATUS_MIGRATION_REFUSED);
    }
    rl_migrate_rec_t target = s_begin (ctx);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    target = s_round (ctx, target, 2);
    uint64_t in = 0, out_n = 0; //  an operator account inside the arc; one of s1's outside
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        bool inside = s_in_arc (ctx, tk_id (n, S_TAG));
        if (inside && n <= S_OPERATORS && !in) {
            in = n;
        } else if (!inside && s_owner (ctx, n) == 0 && (!out_n || out_n > S_OPERATORS)) {
            out_n = out_n && n > S_OPERATORS ? out_n : n;
        }
    }
    assert_true (in && out_n);

    //  A freeze that cannot ship in time unfreezes by itself.
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 150, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_FROZEN);
    assert_int_equal (s_once (ctx->clients[0], 1, in, out_n), RL_FROZEN);
    uint64_t on_s2 = 1;
    while (s_owner (ctx, on_s2) != 1) {
        on_s2++;
    }
    uint32_t served = s_once (ctx->clients[0], 2, out_n, on_s2); //  outside the arc: served
    assert_true (served == RL_OK || tk_result_is_business (served));
    int64_t deadline = zclock_mono () + TK_TIMEOUT_MS;
    do {
        zclock_sleep (50);
        assert_int_equal (
            s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    } while (out.state == RL_MIGRATE_FROZEN && zclock_mono () < deadline);
    assert_int_equal (out.state, RL_MIGRATE_COPYING);
    assert_int_equal (s_once (ctx->clients[0], 1, in, out_n), RL_OK); //  the same id, now applied
    //  The commit is refused before the final round.
    assert_int_equal (
        s_op (ctx->clients[1], RL_OP_MIGRATE_COMMIT, &target, RL_MIGRATE_TARGET, 0, &out),
        RL_STATUS_MIGRATION_REFUSED);

    //  A transfer left pending in the arc (its debit account inside, its
    //  credit account outside): the final round carries it.
    rl_transfer_t held = tk_transfer (tk_id (100, S_TAG + 2), tk_id (in, S_TAG),
                                      tk_id (out_n, S_TAG), 1, S_LEDGER);
    held.flags = RL_TRANSFER_PENDING;
    rl_result_rec_t held_r = {0};
    assert_int_equal (
        rl_client_create_transfers (ctx->clients[0], &held, 1, &held_r, TK_TIMEOUT_MS), 0);
    assert_int_equal (held_r.result, RL_OK);

    //  The real freeze: drain, the final round, the handover at epoch 2.
    //  (Reads of the arc answer frozen too while it lasts: the balances
    //  are read before.)
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t before[S_ACCOUNTS + 1], after[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, before);
    rl_transfer_t *histories = s_histories (ctx, ctx->clients[0], NULL);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out), 0);
    assert_int_equal (s_frozen_arcs (ctx->clients[0]), 1); //  status counts the freeze
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (out.param, 0);
    if (target.cursor.phase != RL_MIGRATE_PHASE_DONE) {
        target = s_round (ctx, target, 0); //  ends the round that began before the freeze
    }
    //  The target SIGKILLed and restarted before the final round: its
    //  staged accounts come back into memory from its store.
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGKILL) >= 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    //  An export resumed from an older source's pending phase (cursor phase
    //  4, by id: its account_key the last id sent) sends the phase again
    //  from its start, by point: the pending transfer comes out (the chunk
    //  is not imported: nothing changes).
    rl_migrate_rec_t older = target;
    older.cursor.phase = RL_MIGRATE_PHASE_PENDING_BY_ID;
    memset (older.cursor.account_key, 0xff, sizeof (older.cursor.account_key));
    size_t older_size = 0;
    uint8_t *older_chunk = s_export (ctx, &older, &older_size);
    chunk_t head;
    assert_int_equal (chunk_decode (older_chunk, older_size, &head), RL_STATUS_OK);
    size_t carried = 0;
    for (uint32_t i = 0; i < head.entry_count; i++) {
        chunk_entry_t e;
        chunk_entry (&head, i, &e);
        carried += e.kind == RL_CHUNK_PENDING && rl_id_eq (e.transfer.id, held.id);
    }
    assert_int_equal (carried, 1);
    free (older_chunk);
    ring_t *step = s_step_ring (ctx);
    s_hand_over (ctx, &target, step);
    assert_int_equal (s_frozen_arcs (ctx->clients[0]), 0); //  the freeze ended
    //  Too late to abort, on either side.
    assert_int_equal (
        s_op (ctx->clients[1], RL_OP_MIGRATE_ABORT, &target, RL_MIGRATE_TARGET, 0, &out),
        RL_STATUS_MIGRATION_REFUSED);
    assert_int_equal (s_op (ctx->clients[0], RL_OP_MIGRATE_ABORT, &source, RL_MIGRATE_SOURCE,
                            RL_MIGRATE_ABORT_TARGET_DONE, &out),
                      RL_STATUS_MIGRATION_REFUSED);

    //  A ring loaded by hand that gives the arc back to the source before
    //  its cleanup (epoch 3): the cleanup is refused and deletes nothing
    //  (it used to stop the shard on an assertion at the first account);
    //  the step's ring again (epoch 4) lets it go on.
    {
        ring_t *back = s_ring_at (ctx, 3), *again = ring_dup (step);
        assert_non_null (again);
        ring_set_epoch (again, 4);
        s_load_ring (ctx->clients[0], back);
        rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_SOURCE);
        assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_CLEANUP, &req, &out),
                          RL_STATUS_MIGRATION_REFUSED);
        rl_status_rec_t st;
        assert_int_equal (rl_client_status (ctx->clients[0], &st, TK_TIMEOUT_MS), 0);
        assert_int_equal (st.epoch, 3);
        s_load_ring (ctx->clients[0], again);
        //  Nor may a new migration from s1, of an arc it serves, replace
        //  the one whose cleanup has not run.
        rl_migrate_rec_t other = s_request (ctx, RL_MIGRATE_SOURCE);
        other.migration_id = S_MIGRATION + 5;
        size_t count = ring_point_count (again);
        for (size_t i = 0; i < count; i++) {
            if (ring_point_owner (again, i) == 0) {
                other.arc_start = ring_point_position (again, i == 0 ? count - 1 : i - 1);
                other.arc_end = ring_point_position (again, i);
            }
        }
        assert_true (other.arc_end != ctx->arc_end);
        assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_BEGIN, &other, &out),
                          RL_STATUS_MIGRATION_REFUSED);
        //  A cleanup naming no migration (id 0) only names the one stored
        //  (PEEK; without it: malformed), deleting nothing.
        rl_migrate_rec_t any = {.role = RL_MIGRATE_SOURCE, .entries_max = 1};
        assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_CLEANUP, &any, &out),
                          RL_STATUS_MALFORMED);
        any.param = RL_MIGRATE_CLEANUP_PEEK;
        assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_CLEANUP, &any, &out), 0);
        assert_int_equal (out.migration_id, S_MIGRATION);
        assert_int_equal (out.state, RL_MIGRATE_HANDED_OVER);
        assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_CLEANUP, &any, &out),
                          RL_STATUS_MIGRATION_REFUSED); //  s2: the target
        ring_destroy (&back);
        ring_destroy (&again);
    }
    //  The source cleans up: the moved accounts and their history go, in
    //  several calls of a few keys; the accounts that stay keep theirs.
    rl_transfer_t *staying = s_histories_of (ctx, ctx->clients[0], NULL, false);
    size_t calls = s_cleanup (ctx, 7);
    print_message ("cleanup: %zu calls of 7 keys\n", calls);
    assert_true (calls > 3);
    assert_int_equal (s_cleanup (ctx, 0), 1); //  again: NONE at once
    s_histories_of (ctx, ctx->clients[0], staying, false);
    free (staying);
    s_check_resent_commit (ctx);

    //  The new owner answers as the old one did; the old owner, asked with a
    //  stale ring, answers wrong_shard and changes nothing.
    s_sums (ctx, step, after);
    assert_memory_equal (before, after, sizeof (before));
    s_histories (ctx, ctx->clients[1], histories);
    free (histories);
    assert_true (s_check_lookups (ctx) > 20);
    assert_int_equal (s_once (ctx->clients[0], 3, in, out_n), RL_WRONG_SHARD);
    assert_int_equal (s_once (ctx->clients[1], 3, in, out_n), RL_OK); //  served by s2, cross-shard
    for (size_t i = 0; i < ctx->sent_count; i++) {
        const rl_transfer_t *t = &ctx->sent[i];
        if (s_in_arc (ctx, t->debit_account_id)) {
            rl_result_rec_t r;
            assert_int_equal (rl_client_create_transfers (ctx->clients[1], t, 1, &r, TK_TIMEOUT_MS),
                              0);
            assert_true (r.result == RL_EXISTS || tk_result_is_business (r.result));
        }
    }
    //  Both survive a SIGKILL: s2 still serves the arc, s1 still does not.
    for (size_t i = 0; i < 2; i++) {
        assert_true (tk_shard_stop (ctx->h, &ctx->shards[i], SIGKILL) >= 0);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    }
    s_clients_open (ctx);
    assert_int_equal (s_once (ctx->clients[0], 4, in, out_n), RL_WRONG_SHARD);
    assert_int_equal (s_once (ctx->clients[1], 4, in, out_n), RL_OK);
    served = s_once (ctx->clients[0], 5, out_n, on_s2); //  s1 serves the rest
    assert_true (served == RL_OK || tk_result_is_business (served));
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    s_sums (ctx, step, after);
    //  s1's store holds no account of the arc, nor their history; its own stay.
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[0], SIGTERM), 0);
    size_t in_arc = 1;
    assert_true (s_stored_keys (ctx, 0, STORE_CF_ACCOUNTS, &in_arc) > 0);
    assert_int_equal (in_arc, 0);
    assert_true (s_stored_keys (ctx, 0, STORE_CF_HISTORY, &in_arc) > 0);
    assert_int_equal (in_arc, 0);
    //  A ring alone giving the arc back to s1 (epoch 5, a restart with it):
    //  s1 handed the arc over, its data moved on, so it stays frozen there.
    s_restart_with_ring (ctx, 0, 5);
    assert_int_equal (s_once (ctx->clients[0], 6, in, out_n), RL_FROZEN);
    assert_int_equal (s_frozen_arcs (ctx->clients[0]), 1);
    ring_destroy (&step);
}

//  The source's cleanup beside a checkpoint -------------------------------------
//
//  A linked chain undone on the source marks its accounts changed though
//  nothing was posted. Such an account of the arc is in the next
//  checkpoint's snapshot, and its mark went with the snapshot: a cleanup
//  that deleted it while that checkpoint ran in the background had the
//  delete written over by the checkpoint's batch, and the source's store
//  kept an account that had moved. The cleanup now waits for such a
//  checkpoint (held 2 s in the background here).
static void
test_cleanup_beside_checkpoint (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 100);
    rl_migrate_rec_t target = s_begin (ctx);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    target = s_round (ctx, target, 0);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    //  s1 stopped (its last checkpoint holds every transfer so far: nothing
    //  is replayed onto the arc) and started again with every checkpoint
    //  held 2 s in the background.
    static char fp[] = "RL_FAILPOINTS=checkpoint.ingested=delay:2000";
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[0], SIGTERM), 0);
    ctx->shards[0].env[0] = fp;
    ctx->shards[0].env[1] = NULL;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[0]) > 0);
    s_clients_open (ctx);
    //  A chain undone on s1: its first member debits an account of the
    //  arc, its second an account that does not exist.
    uint64_t in = 0, other = 0, missing = S_ACCOUNTS + 1;
    for (uint64_t n = 1; n <= S_OPERATORS; n++) {
        bool inside = s_in_arc (ctx, tk_id (n, S_TAG));
        if (s_owner (ctx, n) == 0 && inside && !in) {
            in = n;
        } else if (s_owner (ctx, n) == 0 && !inside && !other) {
            other = n;
        }
    }
    while (s_owner (ctx, missing) != 0) {
        missing++;
    }
    assert_true (in && other);
    static rl_account_t before[S_ACCOUNTS + 1], after[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, before);
    rl_transfer_t chain[2] = {
        tk_transfer (tk_id (ctx->next_id, S_TAG + 3), tk_id (in, S_TAG), tk_id (other, S_TAG), 5,
                     S_LEDGER),
        tk_transfer (tk_id (ctx->next_id + 1, S_TAG + 3), tk_id (missing, S_TAG),
                     tk_id (other, S_TAG), 5, S_LEDGER),
    };
    chain[0].flags = RL_TRANSFER_LINKED;
    rl_result_rec_t r[2] = {{0}};
    assert_int_equal (rl_client_create_transfers (ctx->clients[0], chain, 2, r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r[0].result, RL_LINKED_EVENT_FAILED);
    assert_int_equal (r[1].result, RL_DEBIT_ACCOUNT_NOT_FOUND);
    //  The step: freeze, the final round, the handover, as the tool sends them.
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out), 0);
    if (target.cursor.phase != RL_MIGRATE_PHASE_DONE) {
        target = s_round (ctx, target, 0);
    }
    ring_t *step = s_step_ring (ctx);
    s_hand_over (ctx, &target, step);
    //  The cleanup: its first call finds the undone account changed and
    //  asks for a checkpoint, whose snapshot takes it; the calls after
    //  wait for that checkpoint before they delete it.
    size_t calls = s_cleanup (ctx, 0);
    print_message ("cleanup beside a checkpoint: %zu calls\n", calls);
    assert_true (calls > 1);
    //  Stopped (SIGTERM waits for the checkpoint in the background): s1's
    //  store holds no account of the arc.
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[0], SIGTERM), 0);
    ctx->shards[0].env[0] = NULL;
    size_t in_arc = 1;
    assert_true (s_stored_keys (ctx, 0, STORE_CF_ACCOUNTS, &in_arc) > 0);
    assert_int_equal (in_arc, 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[0]) > 0);
    s_clients_open (ctx);
    s_sums (ctx, step, after);
    assert_memory_equal (before, after, sizeof (before));
    ring_destroy (&step);
}

//  The handover's accounts (docs/rebalance.md, "The handover's accounts") ------------

//  s2's store (s2 stopped): its accounts of the arc in the accounts family,
//  and its staged 'A' keys.
static void
s_adopted_keys (s_ctx_t *ctx, size_t *in_family_p, size_t *staged_p)
{
    char err[256] = "";
    store_t *store = store_open (ctx->shards[1].data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    *in_family_p = *staged_p = 0;
    store_iter_t *it = store_iter_new (store, STORE_CF_ACCOUNTS);
    assert_non_null (it);
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        *in_family_p += key_size == RL_ID_SIZE && s_in_arc (ctx, codec_decode_id (key));
    }
    store_iter_destroy (&it);
    it = store_iter_new (store, STORE_CF_IMPORTED);
    assert_non_null (it);
    uint8_t prefix = IMPORTED_ACCOUNT;
    for (store_iter_seek (it, &prefix, 1); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0;
        if (store_iter_key (it, &key_size)[0] != IMPORTED_ACCOUNT) {
            break;
        }
        (*staged_p)++;
    }
    store_iter_destroy (&it);
    store_close (&store);
}

//  s2's store (s2 stopped): one key put (value) or deleted (value NULL).
static void
s_store_key (s_ctx_t *ctx, store_cf_t cf, const void *key, size_t key_size, const void *value,
             size_t value_size)
{
    char err[256] = "";
    store_t *store = store_open (ctx->shards[1].data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    if (value) {
        store_batch_put (store, cf, key, key_size, value, value_size);
    } else {
        store_batch_delete (store, cf, key, key_size);
    }
    assert_int_equal (store_commit (store), 0);
    store_close (&store);
}

//  s2 refuses to start on its store as it is, and its log says why.
static void
s_start_refused (s_ctx_t *ctx, const char *why)
{
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) < 0);
    assert_true (tk_log_contains (ctx->h, ctx->shards[1].name, why));
}

//  The target's handover adopts the arc's accounts: they stay staged until
//  the next checkpoint writes them (held back here by a delay in the
//  background). Meanwhile a new migration's begin is answered busy, and a
//  SIGKILL of the target loses nothing (recovery adopts them again); once
//  the checkpoint is committed, the accounts family holds them, the staged
//  copies are gone, and the begin is served.
static void
test_adopted_accounts (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 200);
    rl_migrate_rec_t target = s_begin (ctx);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    target = s_round (ctx, target, 0);
    s_traffic (ctx, 100); //  changes that only the final round brings
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t before[S_ACCOUNTS + 1], after[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, before);
    //  Every checkpoint of s2 takes 1.5 s in the background from here, and
    //  its first handover runs out of memory halfway.
    static char fp[] =
        "RL_FAILPOINTS=checkpoint.ingested=delay:1500,migrate.handover_alloc=error@1";
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGKILL) >= 0);
    ctx->shards[1].env[0] = fp;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out), 0);
    if (target.cursor.phase != RL_MIGRATE_PHASE_DONE) {
        target = s_round (ctx, target, 0);
    }
    ring_t *step = s_step_ring (ctx);
    uint32_t status = RL_STATUS_OK;
    rl_migrate_rec_t before_final = target;
    s_final_handover_status (ctx, &target, step, &status);
    //  Half of the arc in memory: the shard fails rather than let its batch
    //  or a checkpoint make that durable (the final chunk's import, in the
    //  same turn, is lost with it). Restarted, it holds the arc staged as
    //  before the final chunk, and the final chunk and the commit sent
    //  again hand over.
    assert_int_equal (status, RL_STATUS_STORAGE_ERROR);
    assert_int_equal (
        s_op (ctx->clients[1], RL_OP_MIGRATE_COMMIT, &target, RL_MIGRATE_TARGET, 0, &out),
        RL_STATUS_STORAGE_ERROR);
    static char fp_delay[] = "RL_FAILPOINTS=checkpoint.ingested=delay:1500";
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGKILL) >= 0);
    ctx->shards[1].env[0] = fp_delay;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    target = before_final;
    s_hand_over (ctx, &target, step);

    //  The arc back from s2 to s1, a new migration: not while s2's adopted
    //  accounts wait for their checkpoint.
    rl_migrate_rec_t back = s_request (ctx, RL_MIGRATE_SOURCE);
    back.migration_id = S_MIGRATION + 1;
    snprintf (back.source, sizeof (back.source), "s2");
    snprintf (back.target, sizeof (back.target), "s1");
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_BEGIN, &back, &out),
                      RL_STATUS_BUSY);
    //  Killed before that checkpoint: the staged copies are their only
    //  durable copies, and recovery adopts them again.
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGKILL) >= 0);
    size_t in_family = 0, staged = 0;
    s_adopted_keys (ctx, &in_family, &staged);
    print_message ("killed before the checkpoint: %zu of the arc in accounts, %zu staged\n",
                   in_family, staged);
    assert_int_equal (in_family, 0);
    assert_true (staged > 0);
    //  Hostile stores: a staged account outside the arc, then a handover
    //  key of another size. Recovery refuses each with a message, and the
    //  store keeps what it held.
    uint64_t outside = S_ACCOUNTS + 1;
    while (s_in_arc (ctx, tk_id (outside, S_TAG))) {
        outside++;
    }
    rl_account_t stray = tk_account (outside, S_TAG, S_LEDGER, 0);
    stray.timestamp = 1;
    uint8_t stray_key[1 + RL_ID_SIZE] = {IMPORTED_ACCOUNT}, stray_value[RL_ACCOUNT_SIZE];
    codec_encode_id (stray.id, stray_key + 1);
    codec_encode_account (&stray, stray_value);
    s_store_key (ctx, STORE_CF_IMPORTED, stray_key, sizeof stray_key, stray_value,
                 sizeof stray_value);
    s_start_refused (ctx, "is corrupt, not its arc's, or held here already");
    s_store_key (ctx, STORE_CF_IMPORTED, stray_key, sizeof stray_key, NULL, 0);
    uint8_t short_value[MIGRATE_ADOPTED_SIZE - 1] = {0};
    s_store_key (ctx, STORE_CF_META, MIGRATE_ADOPTED_KEY, strlen (MIGRATE_ADOPTED_KEY), short_value,
                 sizeof short_value);
    s_start_refused (ctx, "cannot read migration.adopted: not its size");
    size_t staged_after = 0;
    s_adopted_keys (ctx, &in_family, &staged_after);
    assert_int_equal (in_family, 0);
    assert_int_equal (staged_after, staged);
    //  The key as the handover wrote it again: the migration and its arc.
    uint8_t adopted_value[MIGRATE_ADOPTED_SIZE];
    codec_put_u64 (adopted_value, S_MIGRATION);
    codec_put_u64 (adopted_value + 8, ctx->arc_start);
    codec_put_u64 (adopted_value + 16, ctx->arc_end);
    s_store_key (ctx, STORE_CF_META, MIGRATE_ADOPTED_KEY, strlen (MIGRATE_ADOPTED_KEY),
                 adopted_value, sizeof adopted_value);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    s_sums (ctx, step, after);
    assert_memory_equal (before, after, sizeof (before));
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_BEGIN, &back, &out),
                      RL_STATUS_BUSY);
    //  Served once the checkpoint is committed (each call is a turn in which
    //  s2 can see it end).
    int64_t deadline = zclock_mono () + TK_TIMEOUT_MS;
    int rc = RL_STATUS_BUSY;
    while (rc == RL_STATUS_BUSY && zclock_mono () < deadline) {
        zclock_sleep (100);
        rc = s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_BEGIN, &back, &out);
    }
    assert_int_equal (rc, 0);
    assert_int_equal (out.state, RL_MIGRATE_COPYING);
    //  Undone at once (a source's abort from COPYING); then the store.
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &back, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_NONE);
    s_sums (ctx, step, after);
    assert_memory_equal (before, after, sizeof (before));
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM), 0);
    ctx->shards[1].env[0] = NULL;
    s_adopted_keys (ctx, &in_family, &staged);
    print_message ("after the checkpoint: %zu of the arc in accounts, %zu staged\n", in_family,
                   staged);
    assert_true (in_family > 0);
    assert_int_equal (staged, 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    s_sums (ctx, step, after);
    assert_memory_equal (before, after, sizeof (before));
    ring_destroy (&step);
}

//  A ring alone gives back what was kept -----------------------------------------

//  A shard started once with the next ring too early (before any
//  migration), then given its arc back by a ring of a higher epoch: it
//  still holds the arc's data, never handed over, so it serves it again at
//  once, balances unchanged.
static void
test_ring_gives_back (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 150);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t before[S_ACCOUNTS + 1], after[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, before);
    uint64_t in = 0, out_n = 0; //  an operator account inside the arc; one of s1's outside
    for (uint64_t n = 1; n <= S_OPERATORS; n++) {
        bool inside = s_in_arc (ctx, tk_id (n, S_TAG));
        in = !in && inside ? n : in;
        out_n = !out_n && !inside && s_owner (ctx, n) == 0 ? n : out_n;
    }
    assert_true (in && out_n);
    //  s1 restarted with the step's ring (epoch 2: the arc is s2's): it
    //  loses the arc (wrong_shard), and s2, still at epoch 1, does not own it.
    ring_t *step = s_step_ring (ctx);
    char *path = harness_path (ctx->h, "step.ring");
    assert_non_null (path);
    assert_int_equal (ring_save_file (step, path), RING_OK);
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[0], SIGTERM), 0);
    snprintf (ctx->shards[0].ring_file, sizeof (ctx->shards[0].ring_file), "%s", path);
    free (path);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[0]) > 0);
    s_clients_open (ctx);
    assert_int_equal (s_once (ctx->clients[0], 1, in, out_n), RL_WRONG_SHARD);
    assert_int_equal (s_frozen_arcs (ctx->clients[0]), 0);
    //  The ring giving it back, at epoch 3: s1 by a restart, s2 by load_ring.
    s_restart_with_ring (ctx, 0, 3);
    ring_t *back = s_ring_at (ctx, 3);
    s_load_ring (ctx->clients[1], back);
    assert_int_equal (s_frozen_arcs (ctx->clients[0]), 0);
    assert_int_equal (s_frozen_arcs (ctx->clients[1]), 0);
    s_sums (ctx, back, after);
    assert_memory_equal (before, after, sizeof (before));
    assert_int_equal (s_once (ctx->clients[0], 1, in, out_n), RL_OK); //  served again
    assert_int_equal (s_once (ctx->clients[0], 1, in, out_n), RL_EXISTS);
    //  Across a SIGKILL too.
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[0], SIGKILL) >= 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[0]) > 0);
    s_clients_open (ctx);
    assert_int_equal (s_once (ctx->clients[0], 2, in, out_n), RL_OK);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    s_sums (ctx, back, after); //  conserved
    assert_int_equal (after[in].debits_posted, before[in].debits_posted + 2);
    ring_destroy (&back);
    ring_destroy (&step);
}

//  Whole-piece frozen ------------------------------------------------------------

//  The first account numbered from `from` (new ones included) for which
//  `want` holds: in the arc, or on s1 outside it.
static uint64_t
s_pick (s_ctx_t *ctx, uint64_t from, bool in_arc, int owner, bool operator_only)
{
    for (uint64_t n = from; n < from + 100000; n++) {
        if (operator_only && n > S_OPERATORS) {
            break;
        }
        if (s_owner (ctx, n) == owner && s_in_arc (ctx, tk_id (n, S_TAG)) == in_arc) {
            return n;
        }
    }
    fail_msg ("no account fits");
    return 0;
}

static bool
s_drained (void *arg)
{
    s_ctx_t *ctx = arg;
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    return s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out) == 0
           && out.param == 0;
}

static void
test_frozen_piece (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 60);
    (void) s_begin (ctx);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    uint64_t in = s_pick (ctx, 1, true, 0, true);     //  an operator in the arc
    uint64_t out_n = s_pick (ctx, 1, false, 0, true); //  an operator of s1 outside it
    uint64_t on_s2 = s_pick (ctx, 1, false, 1, true); //  an operator of s2
    uint64_t other = s_pick (ctx, out_n + 1, false, 0, true);

    //  A decision that must cross the freeze: s2 coordinates a transfer to
    //  an account of the arc and dies with its COMMIT durable but not sent.
    static char fp[] = "RL_FAILPOINTS=tp.coord.decision_synced=crash";
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM), 0);
    ctx->shards[1].env[0] = fp;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    rl_transfer_t crossing = tk_transfer (tk_id (1, S_TAG + 3), tk_id (on_s2, S_TAG),
                                          tk_id (in, S_TAG), 7, S_LEDGER);
    rl_result_rec_t r;
    assert_int_not_equal (rl_client_create_transfers (ctx->clients[1], &crossing, 1, &r, 1000), 0);
    assert_int_equal (harness_wait_exit (ctx->h, ctx->shards[1].pid, 15000, NULL), 0);
    ctx->shards[1].pid = -1;

    //  The freeze: the prepared credit in the arc is not drained.
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_FROZEN);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_true (out.param >= 1);

    //  One record in the arc freezes the whole piece: nothing of it applied.
    rl_transfer_t piece[3] = {
        tk_transfer (tk_id (2, S_TAG + 3), tk_id (out_n, S_TAG), tk_id (other, S_TAG), 5, S_LEDGER),
        tk_transfer (tk_id (3, S_TAG + 3), tk_id (in, S_TAG), tk_id (out_n, S_TAG), 6, S_LEDGER),
        tk_transfer (tk_id (4, S_TAG + 3), tk_id (other, S_TAG), tk_id (out_n, S_TAG), 2, S_LEDGER),
    };
    rl_result_rec_t rs[3];
    assert_int_equal (rl_client_create_transfers (ctx->clients[0], piece, 3, rs, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (rs[i].result, RL_FROZEN);
        assert_int_equal (rs[i].index, i);
        rl_transfer_t found;
        assert_int_equal (
            rl_client_lookup_transfers (ctx->clients[0], &piece[i].id, 1, &found, TK_TIMEOUT_MS),
            0);
        assert_int_equal (found.timestamp, 0);
    }
    //  The same for accounts: a new one outside the arc waits with one inside.
    uint64_t new_out = s_pick (ctx, S_ACCOUNTS + 1, false, 0, false);
    uint64_t new_in = s_pick (ctx, S_ACCOUNTS + 1, true, 0, false);
    rl_account_t fresh[2] = {tk_account (new_out, S_TAG, S_LEDGER, 0),
                             tk_account (new_in, S_TAG, S_LEDGER, 0)};
    assert_int_equal (rl_client_create_accounts (ctx->clients[0], fresh, 2, rs, TK_TIMEOUT_MS), 0);
    assert_int_equal (rs[0].result, RL_FROZEN);
    assert_int_equal (rs[1].result, RL_FROZEN);
    rl_account_t seen;
    assert_int_equal (
        rl_client_lookup_accounts (ctx->clients[0], &fresh[0].id, 1, &seen, TK_TIMEOUT_MS), 0);
    assert_int_equal (seen.timestamp, 0);
    //  The retry helper retries frozen to its deadline (here 2 x 150 ms,
    //  more sends than its 2 attempts), then answers it.
    int64_t began = zclock_mono ();
    assert_int_equal (rl_client_create_transfers_retry (ctx->clients[0], piece, 3, rs, 150, 2),
                      RL_CLIENT_INCOMPLETE);
    assert_true (zclock_mono () - began >= 150);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (rs[i].result, RL_FROZEN);
    }

    //  The coordinator comes back: its COMMIT is applied on the frozen
    //  source (decisions are never frozen), and the arc drains.
    ctx->shards[1].env[0] = NULL;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    assert_true (harness_wait_until (s_drained, ctx, TK_QUIET_TIMEOUT_MS));
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_FROZEN);
    rl_transfer_t found;
    assert_int_equal (
        rl_client_lookup_transfers (ctx->clients[1], &crossing.id, 1, &found, TK_TIMEOUT_MS), 0);
    assert_true (found.timestamp != 0); //  committed (an operator's debit cannot fail)

    //  A short freeze ending by itself: the retry helper (deadline 3 x 1 s)
    //  waits it out and the piece applies, in order, with the same ids.
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_UNFREEZE, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 300, &out), 0);
    assert_int_equal (
        rl_client_create_transfers_retry (ctx->clients[0], piece, 3, rs, TK_TIMEOUT_MS / 5, 3), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal (rs[i].result, RL_OK);
        assert_true (i == 0 || rs[i].timestamp > rs[i - 1].timestamp);
    }
    assert_int_equal (rl_client_create_accounts (ctx->clients[0], fresh, 2, rs, TK_TIMEOUT_MS), 0);
    assert_int_equal (rs[0].result, RL_OK);
    assert_int_equal (rs[1].result, RL_OK);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums); //  conservation
}

//  Arc load -----------------------------------------------------------------------

static void
test_arc_load (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 200);
    for (int i = 0; i < 2; i++) {
        rl_header_t h;
        uint8_t *body = NULL;
        size_t size = 0;
        assert_int_equal (rl_client_call (ctx->clients[i], RL_OP_ARC_LOAD, NULL, 0, 0,
                                          TK_TIMEOUT_MS, &h, &body, &size),
                          0);
        size_t arcs = h.record_count;
        assert_int_equal (size, arcs * RL_ARC_LOAD_SIZE);
        assert_true (arcs >= 1 && arcs <= S_POINTS);
        uint64_t accounts = 0, total = 0, window = 0, sent = 0, held = 0;
        for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
            held += s_owner (ctx, n) == i;
        }
        for (size_t k = 0; k < arcs; k++) {
            rl_arc_load_rec_t rec;
            codec_decode_arc_load (body + k * RL_ARC_LOAD_SIZE, &rec);
            //  Each arc's own count: its accounts, the transfers debiting it.
            uint64_t mine = 0, debits = 0;
            for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
                mine += imported_in_arc (rec.arc_start, rec.arc_end, tk_id (n, S_TAG));
            }
            for (size_t t = 0; t < ctx->sent_count; t++) {
                debits += imported_in_arc (rec.arc_start, rec.arc_end,
                                           ctx->sent[t].debit_account_id);
            }
            assert_int_equal (rec.accounts, mine);
            assert_int_equal (rec.account_bytes, mine * RL_ACCOUNT_SIZE);
            assert_true (rec.transfers_total >= debits); //  a retried record counts again
            assert_true (rec.transfers_window <= rec.transfers_total);
            assert_true (rec.window_ms > 0 && rec.window_ms <= RL_ARC_LOAD_WINDOW_S * 1000);
            assert_true (rec.accounts == 0 || rec.record_bytes > 0); //  an estimate (rebalance.md)
            accounts += rec.accounts;
            total += rec.transfers_total;
            window += rec.transfers_window;
            sent += debits;
        }
        free (body);
        print_message ("s%d: %zu arcs, %" PRIu64 " accounts, %" PRIu64
                       " transfers counted (%" PRIu64 " sent), %" PRIu64 " in the window\n",
                       i + 1, arcs, accounts, total, sent, window);
        assert_int_equal (accounts, held);
        assert_true (sent > 0 && total >= sent && total <= sent + 50);
        assert_true (window > 0);
        //  Bad input: a body where none belongs.
        uint8_t junk[RL_ARC_LOAD_SIZE] = {0};
        assert_int_equal (rl_client_call (ctx->clients[i], RL_OP_ARC_LOAD, junk, sizeof (junk), 1,
                                          TK_TIMEOUT_MS, &h, &body, &size),
                          RL_STATUS_MALFORMED);
    }
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums); //  conservation
}

//  Heuristic records --------------------------------------------------------------

//  s1's ring as ctx->ring at `epoch`, without s2 when fence.
static void
s_load_ring_s1 (s_ctx_t *ctx, uint64_t epoch, bool fence)
{
    ring_t *ring = NULL;
    if (fence) {
        ring = ring_new (epoch);
        assert_non_null (ring);
        assert_int_equal (ring_add_shard (ring, "s1", ctx->shards[0].endpoint, 1.0), RING_OK);
    } else {
        char *text = ring_to_text (ctx->ring);
        assert_non_null (text);
        char *at = strstr (text, "epoch 1\n");
        assert_non_null (at);
        at[6] = (char) ('0' + epoch);
        char err[256];
        ring = ring_from_text (text, err, sizeof (err));
        free (text);
        assert_non_null (ring);
    }
    s_load_ring (ctx->clients[0], ring);
    ring_destroy (&ring);
}

static void
test_heuristic_blocks_freeze (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 60);
    (void) s_begin (ctx);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    uint64_t in = s_pick (ctx, 1, true, 0, true);
    uint64_t on_s2 = s_pick (ctx, 1, false, 1, true);
    //  s2 coordinates a transfer into the arc and dies with its COMMIT durable, not sent.
    static char fp[] = "RL_FAILPOINTS=tp.coord.decision_synced=crash";
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM), 0);
    ctx->shards[1].env[0] = fp;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    rl_transfer_t t = tk_transfer (tk_id (1, S_TAG + 4), tk_id (on_s2, S_TAG), tk_id (in, S_TAG), 9,
                                   S_LEDGER);
    rl_result_rec_t r;
    assert_int_not_equal (rl_client_create_transfers (ctx->clients[1], &t, 1, &r, 1000), 0);
    assert_int_equal (harness_wait_exit (ctx->h, ctx->shards[1].pid, 15000, NULL), 0);
    ctx->shards[1].pid = -1;
    //  The operator fences s2 out and commits by hand on s1: a heuristic record.
    rl_in_doubt_rec_t *listed = NULL;
    size_t count = 0;
    assert_int_equal (rl_client_in_doubt (ctx->clients[0], &listed, &count, TK_TIMEOUT_MS), 0);
    assert_int_equal (count, 1);
    rl_tp_rec_t rec = listed[0].prepare.tp;
    free (listed);
    s_load_ring_s1 (ctx, 2, true);
    rec.state = RL_TP_COMMIT;
    rec.result = RL_RESOLVE_FORCE;
    rl_tp_rec_t answer;
    assert_int_equal (rl_client_resolve (ctx->clients[0], &rec, &answer, TK_TIMEOUT_MS), 0);
    assert_int_equal (answer.state, RL_TP_ACKED);
    s_load_ring_s1 (ctx, 3, false); //  s2 back in the ring, the arcs as before

    //  The arc holds a heuristic record: drained, but no freeze.
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_DRAIN, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (out.param, 0);
    assert_int_equal (out.entries_max, 1);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out),
        RL_STATUS_MIGRATION_REFUSED);
    assert_int_equal (s_once (ctx->clients[0], 20, in, s_pick (ctx, 1, false, 0, true)), RL_OK);
    //  The coordinator comes back and agrees (COMMIT, as by hand); the
    //  operator says it is reconciled: the freeze goes ahead.
    ctx->shards[1].env[0] = NULL;
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_SOURCE);
    req.param = 30000;
    req.entries_max = RL_MIGRATE_HEURISTICS_RECONCILED;
    assert_int_equal (s_migrate_call (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &req, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_FROZEN);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_UNFREEZE, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->clients[0], &status, TK_TIMEOUT_MS), 0);
    assert_int_equal (status.alarms, 0); //  the coordinator's COMMIT matched the hand's
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums); //  conservation: debited on s2, credited on s1, once
}

//  Abort ---------------------------------------------------------------------------

//  Keys of s2's imported family (s2 stopped).
static size_t
s_imported_keys (s_ctx_t *ctx)
{
    char err[256] = "";
    store_t *store = store_open (ctx->shards[1].data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    store_iter_t *it = store_iter_new (store, STORE_CF_IMPORTED);
    assert_non_null (it);
    size_t keys = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        keys++;
    }
    store_iter_destroy (&it);
    store_close (&store);
    return keys;
}

//  migrate_abort of the target, `budget` keys a call, until NONE; the calls made.
static size_t
s_abort_target (s_ctx_t *ctx, uint32_t budget)
{
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_TARGET), out;
    req.entries_max = budget;
    size_t calls = 0;
    do {
        assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &req, &out), 0);
        calls++;
        assert_true (out.state == RL_MIGRATE_NONE || out.state == RL_MIGRATE_ABORTING);
        assert_true (calls < 100000);
    } while (out.state != RL_MIGRATE_NONE);
    return calls;
}

static void
test_abort (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 150);
    rl_migrate_rec_t target = s_begin (ctx);
    rl_migrate_rec_t source = s_request (ctx, RL_MIGRATE_SOURCE), out;
    target = s_round (ctx, target, 2);
    uint64_t in = s_pick (ctx, 1, true, 0, true);
    uint64_t out_n = s_pick (ctx, 1, false, 0, true);
    //  Frozen, drained, shipped: the last point before the handover.
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 30000, &out), 0);
    target = s_round (ctx, target, 0);
    if (target.state != RL_MIGRATE_SHIPPED) {
        target = s_round (ctx, target, 0);
    }
    assert_int_equal (target.state, RL_MIGRATE_SHIPPED);
    assert_int_equal (s_once (ctx->clients[0], 10, in, out_n), RL_FROZEN);

    //  Hostile and misdirected aborts change nothing.
    rl_migrate_rec_t bad = s_request (ctx, RL_MIGRATE_TARGET);
    bad.migration_id = 0;
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &bad, &out),
                      RL_STATUS_MALFORMED);
    bad = s_request (ctx, 7);
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &bad, &out),
                      RL_STATUS_MALFORMED);
    bad = s_request (ctx, RL_MIGRATE_TARGET);
    bad.entries_max = RL_MIGRATE_SCAN_RECORDS_MAX + 1;
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &bad, &out),
                      RL_STATUS_MALFORMED);
    bad = s_request (ctx, RL_MIGRATE_TARGET);
    bad.migration_id = S_MIGRATION + 1;
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &bad, &out),
                      RL_STATUS_MIGRATION_REFUSED);
    bad = s_request (ctx, RL_MIGRATE_SOURCE); //  s2 is the target
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &bad, &out),
                      RL_STATUS_MIGRATION_REFUSED);
    //  A shipped source refuses until told that the target has aborted.
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_ABORT, &source, RL_MIGRATE_SOURCE, 0, &out),
        RL_STATUS_MIGRATION_REFUSED);
    assert_int_equal (s_once (ctx->clients[0], 10, in, out_n), RL_FROZEN);

    //  The target first, a few keys a call (ABORTING between calls), killed
    //  in the middle: it resumes where it stopped.
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_TARGET);
    req.entries_max = 5;
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_ABORT, &req, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_ABORTING);
    assert_int_equal (out.chunks, 0);
    rl_migrate_rec_t aborted_once = out;
    assert_int_equal (
        s_op (ctx->clients[1], RL_OP_MIGRATE_COMMIT, &target, RL_MIGRATE_TARGET, 0, &out),
        RL_STATUS_MIGRATION_REFUSED);
    rl_migrate_rec_t aborting = aborted_once;
    size_t size = 0;
    uint8_t *chunk = s_export (ctx, &aborting, &size); //  the next chunk, as the target asks
    assert_int_equal (s_import (ctx, chunk, size, &out), RL_STATUS_MIGRATION_REFUSED);
    free (chunk);
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGKILL) >= 0);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
    s_clients_open (ctx);
    size_t calls = s_abort_target (ctx, 40);
    print_message ("abort: the target took %zu more calls of 40 keys\n", calls);
    assert_true (calls > 2);
    assert_int_equal (s_abort_target (ctx, 0), 1); //  again: nothing left, NONE at once
    //  Then the source: unfrozen, serving the arc again, forgotten.
    assert_int_equal (s_op (ctx->clients[0], RL_OP_MIGRATE_ABORT, &source, RL_MIGRATE_SOURCE,
                            RL_MIGRATE_ABORT_TARGET_DONE, &out),
                      0);
    assert_int_equal (out.state, RL_MIGRATE_NONE);
    assert_int_equal (s_once (ctx->clients[0], 10, in, out_n), RL_OK); //  the same id, now applied
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_ABORT, &source, RL_MIGRATE_SOURCE, 0, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_NONE);
    assert_int_equal (
        s_op (ctx->clients[0], RL_OP_MIGRATE_FREEZE, &source, RL_MIGRATE_SOURCE, 0, &out),
        RL_STATUS_MIGRATION_REFUSED);
    //  Both survive a SIGKILL as aborted: nothing imported is left on the
    //  target, the source serves the arc.
    for (size_t i = 0; i < 2; i++) {
        assert_true (tk_shard_stop (ctx->h, &ctx->shards[i], SIGKILL) >= 0);
    }
    assert_int_equal (s_imported_keys (ctx), 0);
    for (size_t i = 0; i < 2; i++) {
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    }
    s_clients_open (ctx);
    assert_int_equal (s_once (ctx->clients[0], 11, in, out_n), RL_OK);
    assert_int_equal (s_abort_target (ctx, 0), 1);
    //  The same migration begins afresh and copies again.
    target = s_begin (ctx);
    assert_int_equal (target.chunks, 0);
    target = s_round (ctx, target, 1);
    assert_true (target.records > 0 && target.accounts > 0);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t sums[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, sums); //  conservation
}

//  A chunk import that must be refused with `status`, leaving s2's state as `before`.
static void
s_expect_refused (s_ctx_t *ctx, const uint8_t *chunk, size_t size, int status,
                  const rl_migrate_rec_t *before)
{
    rl_migrate_rec_t out;
    assert_int_equal (s_import (ctx, chunk, size, &out), status);
    rl_migrate_rec_t now = s_begin (ctx);
    assert_memory_equal (&now, before, sizeof (now));
}

static void
test_hostile_chunks (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 100);
    rl_migrate_rec_t target = s_begin (ctx);
    target = s_step (ctx, &target);
    size_t size = 0;
    uint8_t *good = s_export (ctx, &target, &size);
    chunk_t chunk;
    assert_int_equal (chunk_decode (good, size, &chunk), RL_STATUS_OK);
    assert_true (chunk.entry_count > 0);
    uint8_t *bad = calloc (1, chunk_size (RL_MIGRATE_ENTRIES_MAX + 1));
    assert_non_null (bad);

    //  Malformed: bad magic, truncated, a byte too many, an unknown kind, a zero id.
    memcpy (bad, good, size);
    bad[0] ^= 1;
    s_expect_refused (ctx, bad, size, RL_STATUS_MALFORMED, &target);
    s_expect_refused (ctx, good, size - 1, RL_STATUS_MALFORMED, &target);
    memcpy (bad, good, size);
    bad[size] = 0;
    s_expect_refused (ctx, bad, size + 1, RL_STATUS_MALFORMED, &target);
    memcpy (bad, good, size);
    bad[RL_MIGRATE_CHUNK_HEADER] = 9;
    s_expect_refused (ctx, bad, size, RL_STATUS_MALFORMED, &target);
    memcpy (bad, good, size);
    memset (bad + RL_MIGRATE_CHUNK_HEADER + 16, 0, RL_ID_SIZE);
    s_expect_refused (ctx, bad, size, RL_STATUS_MALFORMED, &target);
    //  Oversize: more entries than a chunk may hold.
    chunk_t big = chunk;
    big.entry_count = RL_MIGRATE_ENTRIES_MAX;
    chunk_encode_header (&big, bad);
    codec_put_u32 (bad + 24, RL_MIGRATE_ENTRIES_MAX + 1);
    s_expect_refused (ctx, bad, chunk_size (RL_MIGRATE_ENTRIES_MAX + 1), RL_STATUS_TOO_MANY_RECORDS,
                      &target);
    //  Well formed, but not this migration's next chunk.
    chunk_t other = chunk;
    uint8_t *copy = malloc (size);
    assert_non_null (copy);
    memcpy (copy, good, size);
    other.migration_id = S_MIGRATION + 1;
    chunk_encode_header (&other, copy);
    s_expect_refused (ctx, copy, size, RL_STATUS_MIGRATION_REFUSED, &target);
    other = chunk;
    other.seq = chunk.seq + 1;
    chunk_encode_header (&other, copy);
    s_expect_refused (ctx, copy, size, RL_STATUS_MIGRATION_REFUSED, &target);
    other = chunk;
    other.from.ts ^= 1;
    chunk_encode_header (&other, copy);
    s_expect_refused (ctx, copy, size, RL_STATUS_MIGRATION_REFUSED, &target);
    //  An entry outside the arc (an account that stays on s1).
    memcpy (copy, good, size);
    uint64_t outside = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS && !outside; n++) {
        if (!s_in_arc (ctx, tk_id (n, S_TAG))) {
            outside = n;
        }
    }
    chunk_entry_t e = {.kind = RL_CHUNK_ACCOUNT,
                       .account = tk_account (outside, S_TAG, S_LEDGER, 0)};
    e.account.timestamp = 1;
    e.account.credits_posted = 1000000;
    chunk_put_entry (copy, 0, &e);
    s_expect_refused (ctx, copy, size, RL_STATUS_MIGRATION_REFUSED, &target);
    //  Pending transfers (kind 3, the final round's): malformed with a state
    //  outside 1..4, a side outside 0..2 or an origin; refused outside the
    //  arc, and outside the pending phase.
    uint64_t inside = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS && !inside; n++) {
        if (s_in_arc (ctx, tk_id (n, S_TAG))) {
            inside = n;
        }
    }
    assert_true (inside && outside);
    chunk_entry_t pe = {.kind = RL_CHUNK_PENDING};
    pe.transfer = tk_transfer (tk_id (777, S_TAG + 1), tk_id (inside, S_TAG),
                               tk_id (outside, S_TAG), 5, S_LEDGER);
    pe.transfer.flags = RL_TRANSFER_PENDING;
    pe.transfer.timestamp = 1;
    const uint64_t hostile[] = {5, 0, 1 | 3u << 8, 1 | 1u << 16};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        memcpy (copy, good, size);
        pe.transfer.reserved = hostile[i];
        chunk_put_entry (copy, 0, &pe);
        s_expect_refused (ctx, copy, size, RL_STATUS_MALFORMED, &target);
    }
    memcpy (copy, good, size);
    pe.transfer.reserved = 1;
    pe.origin = 1;
    chunk_put_entry (copy, 0, &pe);
    s_expect_refused (ctx, copy, size, RL_STATUS_MALFORMED, &target);
    pe.origin = 0;
    pe.transfer.reserved = 1 | 1u << 8; //  the debit side held by the source: outside the arc
    pe.transfer.debit_account_id = tk_id (outside, S_TAG);
    pe.transfer.credit_account_id = tk_id (inside, S_TAG);
    chunk_put_entry (copy, 0, &pe);
    s_expect_refused (ctx, copy, size, RL_STATUS_MIGRATION_REFUSED, &target);
    pe.transfer.reserved = 1; //  both sides: in the arc, but not in the pending phase
    other = chunk;
    other.to.phase = RL_MIGRATE_PHASE_ACCOUNTS;
    chunk_encode_header (&other, copy);
    chunk_put_entry (copy, 0, &pe);
    s_expect_refused (ctx, copy, size, RL_STATUS_MIGRATION_REFUSED, &target);
    //  A second migration, and an export asked of the target: refused.
    rl_migrate_rec_t req = s_request (ctx, RL_MIGRATE_TARGET), out;
    req.migration_id = S_MIGRATION + 1;
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_BEGIN, &req, &out),
                      RL_STATUS_MIGRATION_REFUSED);
    req = target;
    req.entries_max = 4;
    assert_int_equal (s_migrate_call (ctx->clients[1], RL_OP_MIGRATE_EXPORT, &req, &out) != 0,
                      true);
    //  The good chunk still imports.
    rl_migrate_rec_t next;
    assert_int_equal (s_import (ctx, good, size, &next), 0);
    assert_int_equal (next.chunks, target.chunks + 1);
    free (copy);
    free (bad);
    free (good);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (ctx->clients[1], &status, TK_TIMEOUT_MS), 0);
    assert_true (status.malformed >= 11);
}

//  A final chunk whose pending transfers conflict with each other, each
//  check of the import passed: variant 0 stages one pending id with two
//  debit accounts (two store keys, one key of the live table), variant 1
//  two transfers of 2^63 on one account staged with 0 pending (the sum
//  wraps), variant 2 one transfer as both sides and again as its credit
//  side alone, variant 3 the credit side alone of a transfer pending on
//  the target as both sides. The target's commit is refused, nothing
//  changed; it put the shard in its failed state, again after every
//  restart (variants 0 and 1), or installed a second credit side never
//  resolved (variants 2 and 3: the shard aborts later, at a COMMIT or a
//  source's commit, on the key it takes).
static rl_migrate_rec_t
s_import_conflicting (s_ctx_t *ctx, int variant, uint64_t live_debit)
{
    rl_migrate_rec_t target = s_begin (ctx);
    uint64_t a1 = 0, a2 = 0, outside = 0;
    for (uint64_t n = S_OPERATORS + 1; n <= S_ACCOUNTS; n++) {
        if (s_in_arc (ctx, tk_id (n, S_TAG))) {
            a1 = a1 ? a1 : n;
            a2 = a1 != n && !a2 ? n : a2;
        } else {
            outside = outside ? outside : n;
        }
    }
    assert_true (a1 && a2 && outside);
    chunk_t c = {.migration_id = S_MIGRATION,
                 .seq = target.chunks + 1,
                 .entry_count = 4,
                 .flags = RL_CHUNK_FINAL,
                 .from = target.cursor};
    c.to.phase = RL_MIGRATE_PHASE_DONE;
    c.to.round = target.cursor.round;
    size_t size = chunk_size (4);
    uint8_t *chunk = calloc (1, size);
    assert_non_null (chunk);
    chunk_encode_header (&c, chunk);
    uint64_t accounts[2] = {a1, a2};
    for (size_t i = 0; i < 2; i++) {
        chunk_entry_t e = {.kind = RL_CHUNK_ACCOUNT,
                           .account = tk_account (accounts[i], S_TAG, S_LEDGER, 0)};
        e.account.timestamp = 1;
        e.account.debits_pending = variant == 0 || (variant == 2 && i == 0) ? 5 : 0;
        e.account.credits_pending = i == 1 ? (variant == 2 ? 10 : variant == 3 ? 5 : 0) : 0;
        chunk_put_entry (chunk, i, &e);
    }
    chunk_entry_t p = {.kind = RL_CHUNK_PENDING};
    p.transfer = tk_transfer (
        tk_id (4242, S_TAG + 9), tk_id (variant == 3 ? live_debit : a1, S_TAG),
        tk_id (variant >= 2 ? a2 : outside, S_TAG), variant == 1 ? 1ull << 63 : 5, S_LEDGER);
    p.transfer.flags = RL_TRANSFER_PENDING;
    p.transfer.timestamp = 7;
    //  Pending; held here: its debit side (both sides in variant 2, the
    //  credit side in variant 3).
    p.transfer.reserved = variant == 2 ? 1 : variant == 3 ? 1 | 2u << 8 : 1 | 1u << 8;
    chunk_put_entry (chunk, 2, &p);
    if (variant == 0) {
        p.transfer.debit_account_id = tk_id (a2, S_TAG);
    } else if (variant == 1) {
        p.transfer.id = tk_id (4243, S_TAG + 9);
    } else if (variant == 2) {
        p.transfer.reserved = 1 | 2u << 8; //  its credit side alone
    }
    chunk_put_entry (chunk, 3, &p); //  variant 3: the same entry again (one stands)
    rl_migrate_rec_t out;
    assert_int_equal (s_import (ctx, chunk, size, &out), 0);
    assert_int_equal (out.state, RL_MIGRATE_SHIPPED);
    free (chunk);
    return out;
}

//  s2 serves: a lookup of one of its own accounts.
static void
s_target_serves (s_ctx_t *ctx)
{
    uint64_t own = 1;
    while (s_owner (ctx, own) != 1) {
        own++;
    }
    rl_id_t id = tk_id (own, S_TAG);
    rl_account_t account;
    assert_int_equal (rl_client_lookup_accounts (ctx->clients[1], &id, 1, &account, TK_TIMEOUT_MS),
                      0);
}

static void
test_conflicting_pending (void **state)
{
    s_ctx_t *ctx = *state;
    s_traffic (ctx, 200);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    static rl_account_t before[S_ACCOUNTS + 1], after[S_ACCOUNTS + 1];
    s_sums (ctx, ctx->ring, before);
    ring_t *step = s_step_ring (ctx);
    //  Variant 3's transfer, pending on s2 as both sides (s2's own accounts).
    uint64_t b1 = 0, b2 = 0;
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        if (s_owner (ctx, n) == 1 && !s_in_arc (ctx, tk_id (n, S_TAG))) {
            b1 = !b1 && n <= S_OPERATORS ? n : b1;
            b2 = !b2 && n > S_OPERATORS ? n : b2;
        }
    }
    assert_true (b1 && b2);
    for (int variant = 0; variant < 4; variant++) {
        if (variant == 3) {
            rl_transfer_t t = tk_transfer (tk_id (4242, S_TAG + 9), tk_id (b1, S_TAG),
                                           tk_id (b2, S_TAG), 5, S_LEDGER);
            t.flags = RL_TRANSFER_PENDING;
            rl_result_rec_t r;
            assert_int_equal (
                rl_client_create_transfers (ctx->clients[1], &t, 1, &r, TK_TIMEOUT_MS), 0);
            assert_int_equal (r.result, RL_OK);
        }
        rl_migrate_rec_t target = s_import_conflicting (ctx, variant, b1);
        if (variant == 0) {
            s_load_ring (ctx->clients[1], step); //  it stays: begun again beneath it
        }
        rl_migrate_rec_t out;
        assert_int_equal (
            s_op (ctx->clients[1], RL_OP_MIGRATE_COMMIT, &target, RL_MIGRATE_TARGET, 0, &out),
            RL_STATUS_MIGRATION_REFUSED);
        s_target_serves (ctx);
        if (variant == 0) {
            //  Refused again after a restart (the stage reloaded).
            assert_true (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM) >= 0);
            assert_true (tk_shard_start (ctx->h, &ctx->shards[1]) > 0);
            s_clients_open (ctx);
            assert_int_equal (
                s_op (ctx->clients[1], RL_OP_MIGRATE_COMMIT, &target, RL_MIGRATE_TARGET, 0, &out),
                RL_STATUS_MIGRATION_REFUSED);
            s_target_serves (ctx);
        }
        s_abort_target (ctx, 64);
    }
    assert_false (tk_log_contains (ctx->h, "s2", "handover failed"));
    //  Nothing moved: variant 3's transfer voided, every account as before
    //  (the arc's asked of s1, which still serves it), nothing pending,
    //  debits equal credits.
    rl_transfer_t v = {.id = tk_id (4244, S_TAG + 9),
                       .debit_account_id = tk_id (b1, S_TAG),
                       .pending_id = tk_id (4242, S_TAG + 9),
                       .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (ctx->clients[1], &v, 1, &r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_OK);
    assert_true (harness_wait_until (s_quiet, ctx, TK_QUIET_TIMEOUT_MS));
    s_sums (ctx, ctx->ring, after);
    for (uint64_t n = 1; n <= S_ACCOUNTS; n++) {
        assert_int_equal (after[n].debits_posted, before[n].debits_posted);
        assert_int_equal (after[n].credits_posted, before[n].credits_posted);
        assert_int_equal (after[n].debits_pending + after[n].credits_pending, 0);
    }
    ring_destroy (&step);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_copy_while_serving, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_copy_resumes_after_kills, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_catchup_sends_changes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hostile_chunks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_round_begun_twice, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_handover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_adopted_accounts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cleanup_beside_checkpoint, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ring_gives_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_frozen_piece, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_abort, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_heuristic_blocks_freeze, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_arc_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_conflicting_pending, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
