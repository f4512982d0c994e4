/*  test_pending_xshard.c: pending transfers across shards (docs/payments.md,
    "Across shards"), through a real router in front of two real shards.

    test_xshard_flows: a pending transfer whose credit account is on the
    other shard reserves on both (debits_pending at the debit shard,
    credits_pending at the credit shard); a post in full, a post of part
    (the rest released), a void; the answers of a second post or void
    (already_posted, already_voided), of a post of an unknown id, of an
    amount above the pending one, of a mismatched credit account; a post
    and a void of one pending transfer in one request (the second waits for
    the first's live attempt: in_progress, not burned); retries of every id
    get their original outcome. Expiry: a pending transfer of 1 s expires
    on both shards by the debit shard's void attempt, and is then never
    posted nor voided (expired); one whose debit shard is SIGKILLed before
    its time expires when that shard is back. Ends with the strong
    conservation check: nothing pending left, balances as the model.

    test_xshard_expiry_ids: the id of a cross-shard expiry is derived from
    (pending id, debit account) by a public rule (docs/payments.md), so a
    client can send a transfer of its own under it first: applied on the
    debit shard, applied across shards, or failed (its id burned), and
    under the next id of the list too. Each pending transfer still expires
    on both shards, under the first id no transfer holds; every squatting
    transfer keeps its own outcome (exists, or its failure) and its record;
    both shards stop cleanly (their checkpoint at close ingests no id
    twice), start again, and the conservation check holds.

    test_xshard_post_at_expiry: a post in flight when its pending transfer
    falls due keeps its claim: a void then is in_progress, not expired, and
    the post commits.

    test_xshard_hostile: PREPAREs of pending kinds sent as the coordinator
    would (with its key): fields of no kind (two kinds, a post without a
    pending id or with a timeout, a pending transfer naming one) are
    refused `malformed` for the whole frame; a post or void of a credit
    side that is not pending there, or above its amount, is refused with
    its result; none changes a balance, none leaves a prepared record.

    test_xshard_crash: the crash matrix of a cross-shard post and void, on
    two shards of its own (--durability manual-wal: a SIGKILL drops what
    was not group-committed): every tp.* crash point of the commit path,
    and the prepare timeout's abort, and four points of the expiry's void
    attempt (a timeout of 2 s), in the role where it lies
    (coordinator: the debit shard; participant: the credit shard); the
    shard is armed, dies by SIGKILL at its point (checked), and restarts;
    then the post or void is applied on both shards or on neither (the
    pending, posted and reserved amounts of both accounts say which), a
    retry with its id gets exists or, not applied, executes now; the
    expiry is tried again until it is released on both shards, and a post
    is then expired; no alarm, and the strong conservation check holds
    after every case.
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
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>
#include <sodium.h>

#include "codec.h"
#include "routerkit.h"

#define S_WAIT_MS 15000 //  an expiry is seen on both shards within this

static uint64_t s_next = 7000;

static rl_transfer_t
s_t (uint16_t flags, uint64_t dr, uint64_t cr, uint64_t amount)
{
    rl_transfer_t t = tk_transfer (tk_id (s_next++, RK_TAG), tk_id (dr, RK_TAG), tk_id (cr, RK_TAG),
                                   amount, RK_LEDGER);
    t.flags = flags;
    return t;
}

//  A post or void of p (amount 0: all of it), inheriting the other fields.
static rl_transfer_t
s_resolve (uint16_t flags, const rl_transfer_t *p, uint64_t amount)
{
    rl_transfer_t t = {.id = tk_id (s_next++, RK_TAG),
                       .debit_account_id = p->debit_account_id,
                       .pending_id = p->id,
                       .amount = amount,
                       .flags = flags};
    return t;
}

//  The k-th account (0-based) on shard s that may go negative.
static uint64_t
s_pick (rk_ctx_t *ctx, int s, int k)
{
    for (uint64_t n = 1; n <= RK_ACCOUNTS; n++) {
        if (rk_owner (ctx->ring, tk_id (n, RK_TAG)) == s && rk_account_flags (n) == 0 && k-- == 0) {
            return n;
        }
    }
    fail_msg ("no account %d on shard %d", k, s);
    return 0;
}

static void
s_expect (rk_ctx_t *ctx, const rl_transfer_t *t, size_t count, const uint32_t *want)
{
    rl_result_rec_t r[8];
    assert_true (count <= 8);
    assert_int_equal (rl_client_create_transfers (ctx->client, t, count, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < count; i++) {
        if (r[i].result != want[i] || r[i].index != i) {
            fail_msg ("record %zu (index %u): %s, expected %s", i, r[i].index,
                      rl_result_name (r[i].result), rl_result_name (want[i]));
        }
    }
}

static void
s_one (rk_ctx_t *ctx, const rl_transfer_t *t, uint32_t want)
{
    s_expect (ctx, t, 1, &want);
}

static rl_account_t
s_account (rk_ctx_t *ctx, uint64_t n)
{
    rl_id_t id = tk_id (n, RK_TAG);
    rl_account_t a;
    assert_int_equal (rl_client_lookup_accounts (ctx->client, &id, 1, &a, TK_TIMEOUT_MS), 0);
    assert_true (a.timestamp != 0);
    return a;
}

//  Waits until a's debits_pending and b's credits_pending are as given.
static bool
s_wait_pending (rk_ctx_t *ctx, uint64_t a, uint64_t b, uint64_t dpend, uint64_t cpend)
{
    int64_t end = zclock_mono () + S_WAIT_MS;
    while (zclock_mono () < end) {
        rl_id_t ids[2] = {tk_id (a, RK_TAG), tk_id (b, RK_TAG)};
        rl_account_t out[2];
        if (rl_client_lookup_accounts (ctx->client, ids, 2, out, TK_TIMEOUT_MS) == 0
            && out[0].timestamp != 0 && out[1].timestamp != 0 && out[0].debits_pending == dpend
            && out[1].credits_pending == cpend) {
            return true;
        }
        zclock_sleep (50);
    }
    return false;
}

static void
s_expect_pending (rk_ctx_t *ctx, uint64_t a, uint64_t b, uint64_t dpend, uint64_t cpend)
{
    if (!s_wait_pending (ctx, a, b, dpend, cpend)) {
        rl_account_t x = s_account (ctx, a), y = s_account (ctx, b);
        fail_msg ("debits_pending %" PRIu64 " (expected %" PRIu64 "), credits_pending %" PRIu64
                  " (expected %" PRIu64 ")",
                  x.debits_pending, dpend, y.credits_pending, cpend);
    }
}

//  The model takes a post of `amount` from a to b.
static void
s_model_post (rk_ctx_t *ctx, uint64_t a, uint64_t b, uint64_t amount)
{
    rl_transfer_t t = tk_transfer (tk_id (0, RK_TAG), tk_id (a, RK_TAG), tk_id (b, RK_TAG), amount,
                                   RK_LEDGER);
    tk_model_apply (&ctx->model, &t);
}

static void
test_xshard_flows (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = s_pick (ctx, 0, 0), b = s_pick (ctx, 1, 0);
    uint64_t c = s_pick (ctx, 1, 1); //  another credit account on b's shard
    const uint16_t PEND = RL_TRANSFER_PENDING, POST = RL_TRANSFER_POST_PENDING_TRANSFER,
                   VOID = RL_TRANSFER_VOID_PENDING_TRANSFER;

    //  A pending transfer reserves on both shards; posted in full.
    rl_transfer_t p1 = s_t (PEND, a, b, 100);
    s_one (ctx, &p1, RL_OK);
    s_expect_pending (ctx, a, b, 100, 100);
    rl_transfer_t t1 = s_resolve (POST, &p1, 0);
    s_one (ctx, &t1, RL_OK);
    s_model_post (ctx, a, b, 100);
    s_expect_pending (ctx, a, b, 0, 0);
    s_one (ctx, &t1, RL_EXISTS);
    s_one (ctx, &p1, RL_EXISTS);
    rl_transfer_t again = s_resolve (POST, &p1, 0);
    s_one (ctx, &again, RL_PENDING_TRANSFER_ALREADY_POSTED);
    s_one (ctx, &again, RL_PENDING_TRANSFER_ALREADY_POSTED); //  burned: the same answer

    //  Posted in part: the rest is released on both shards.
    rl_transfer_t p2 = s_t (PEND, a, b, 200);
    s_one (ctx, &p2, RL_OK);
    rl_transfer_t above = s_resolve (POST, &p2, 201);
    s_one (ctx, &above, RL_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    rl_transfer_t other = s_resolve (POST, &p2, 0);
    other.credit_account_id = tk_id (c, RK_TAG);
    s_one (ctx, &other, RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID);
    s_expect_pending (ctx, a, b, 200, 200);
    rl_transfer_t t2 = s_resolve (POST, &p2, 50);
    s_one (ctx, &t2, RL_OK);
    s_model_post (ctx, a, b, 50);
    s_expect_pending (ctx, a, b, 0, 0);
    rl_transfer_t v2 = s_resolve (VOID, &p2, 0);
    s_one (ctx, &v2, RL_PENDING_TRANSFER_ALREADY_POSTED);
    s_one (ctx, &t2, RL_EXISTS);
    rl_transfer_t whole = t2; //  amount 0 is the whole 200, not the 50 posted
    whole.amount = 0;
    s_one (ctx, &whole, RL_EXISTS_WITH_DIFFERENT_AMOUNT);

    //  Voided: nothing posted; a post after it is refused.
    rl_transfer_t p3 = s_t (PEND, a, b, 300);
    s_one (ctx, &p3, RL_OK);
    s_expect_pending (ctx, a, b, 300, 300);
    rl_transfer_t t3 = s_resolve (VOID, &p3, 0);
    s_one (ctx, &t3, RL_OK);
    s_expect_pending (ctx, a, b, 0, 0);
    rl_transfer_t late = s_resolve (POST, &p3, 0);
    s_one (ctx, &late, RL_PENDING_TRANSFER_ALREADY_VOIDED);
    s_one (ctx, &t3, RL_EXISTS);

    //  Unknown pending id.
    rl_transfer_t unknown = s_resolve (POST, &p3, 0);
    unknown.pending_id = tk_id (999999, RK_TAG);
    s_one (ctx, &unknown, RL_PENDING_TRANSFER_NOT_FOUND);

    //  A post and a void of one pending transfer in one request: one live
    //  attempt per pending transfer, the second waits (in_progress, not
    //  burned) and, sent again, finds it posted.
    rl_transfer_t p4 = s_t (PEND, a, b, 40);
    s_one (ctx, &p4, RL_OK);
    rl_transfer_t pair[2] = {s_resolve (POST, &p4, 0), s_resolve (VOID, &p4, 0)};
    s_expect (ctx, pair, 2, (uint32_t[]){RL_OK, RL_IN_PROGRESS});
    s_model_post (ctx, a, b, 40);
    s_one (ctx, &pair[1], RL_PENDING_TRANSFER_ALREADY_POSTED);
    s_one (ctx, &pair[0], RL_EXISTS);

    //  Expiry: released on both shards by the debit shard; never posted after.
    rl_transfer_t p5 = s_t (PEND, a, b, 500);
    p5.timeout = 1;
    s_one (ctx, &p5, RL_OK);
    s_expect_pending (ctx, a, b, 0, 0);
    rl_transfer_t t5 = s_resolve (POST, &p5, 0);
    s_one (ctx, &t5, RL_PENDING_TRANSFER_EXPIRED);
    rl_transfer_t v5 = s_resolve (VOID, &p5, 0);
    s_one (ctx, &v5, RL_PENDING_TRANSFER_EXPIRED);
    s_one (ctx, &t5, RL_PENDING_TRANSFER_EXPIRED); //  burned: the same answer

    //  Expiry while the debit shard is down: it expires at recovery.
    int d = rk_owner (ctx->ring, tk_id (a, RK_TAG));
    rl_transfer_t p6 = s_t (PEND, a, b, 600);
    p6.timeout = 1;
    s_one (ctx, &p6, RL_OK);
    assert_true (tk_shard_stop (ctx->h, &ctx->shards[d], SIGKILL) >= 0);
    zclock_sleep (1500);
    assert_true (tk_shard_start (ctx->h, &ctx->shards[d]) > 0);
    s_expect_pending (ctx, a, b, 0, 0);
    rl_transfer_t t6 = s_resolve (POST, &p6, 0);
    s_one (ctx, &t6, RL_PENDING_TRANSFER_EXPIRED);

    //  Retries keep their outcomes after all that.
    s_one (ctx, &t1, RL_EXISTS);
    s_one (ctx, &t3, RL_EXISTS);
    s_one (ctx, &p6, RL_EXISTS);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
}

//  The expiry id number k of (pending id, debit account), by the rule of
//  docs/payments.md ("Expiry"), computed here on its own.
static rl_id_t
s_expiry_id (rl_id_t pending_id, rl_id_t debit_account_id, unsigned k)
{
    rl_id_t id = pending_id;
    for (unsigned n = 0; n <= k; n++) {
        uint8_t in[2 * RL_ID_SIZE], out[RL_ID_SIZE];
        codec_encode_id (id, in);
        codec_encode_id (debit_account_id, in + RL_ID_SIZE);
        const char *personal = n == 0 ? "ringledger.exp.1" : "ringledger.exp.n";
        assert_int_equal (
            crypto_generichash_blake2b_salt_personal (out, sizeof out, in, sizeof in, NULL, 0, NULL,
                                                      (const unsigned char *) personal),
            0);
        id = codec_decode_id (out);
        id = rl_id_is_zero (id) ? (rl_id_t){.lo = 1} : id;
        id = rl_id_is_max (id) ? (rl_id_t){.lo = 2} : id;
    }
    return id;
}

static void
test_xshard_expiry_ids (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = s_pick (ctx, 0, 0), a2 = s_pick (ctx, 0, 1);
    uint64_t b = s_pick (ctx, 1, 0), b2 = s_pick (ctx, 1, 1);
    rl_id_t debit = tk_id (a, RK_TAG);

    //  Three pending transfers of 2 s, each with its first expiry id taken.
    rl_transfer_t p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = s_t (RL_TRANSFER_PENDING, a, b, 100 + (uint64_t) i);
        p[i].timeout = 2;
        s_one (ctx, &p[i], RL_OK);
    }
    //  Taken on the debit shard by a transfer applied there.
    rl_transfer_t here = s_t (0, a, a2, 7);
    here.id = s_expiry_id (p[0].id, debit, 0);
    s_one (ctx, &here, RL_OK);
    tk_model_apply (&ctx->model, &here);
    //  Taken by a cross-shard transfer (its credit leg on the credit
    //  shard), and the next id of the list by one applied here.
    rl_transfer_t across = s_t (0, a, b2, 8);
    across.id = s_expiry_id (p[1].id, debit, 0);
    s_one (ctx, &across, RL_OK);
    tk_model_apply (&ctx->model, &across);
    rl_transfer_t next = s_t (0, a, a2, 9);
    next.id = s_expiry_id (p[1].id, debit, 1);
    s_one (ctx, &next, RL_OK);
    tk_model_apply (&ctx->model, &next);
    //  Burned by a transfer that failed.
    rl_transfer_t burned = s_t (0, a, a2, 10);
    burned.id = s_expiry_id (p[2].id, debit, 0);
    burned.ledger = RK_LEDGER + 1;
    s_one (ctx, &burned, RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS);

    //  All three expire on both shards all the same.
    s_expect_pending (ctx, a, b, 0, 0);
    for (int i = 0; i < 3; i++) {
        rl_transfer_t post = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p[i], 0);
        s_one (ctx, &post, RL_PENDING_TRANSFER_EXPIRED);
    }
    //  The squatters keep their outcomes and their records.
    s_one (ctx, &here, RL_EXISTS);
    s_one (ctx, &across, RL_EXISTS);
    s_one (ctx, &next, RL_EXISTS);
    s_one (ctx, &burned, RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS);
    rl_transfer_t found;
    assert_int_equal (rl_client_lookup_transfers (ctx->client, &here.id, 1, &found, TK_TIMEOUT_MS),
                      0);
    assert_true (rl_id_eq (found.credit_account_id, here.credit_account_id));
    assert_int_equal (found.amount, here.amount);
    assert_int_equal (found.flags, 0);

    //  Both shards stop cleanly (their checkpoint at close) and start again.
    for (int s = 0; s < 2; s++) {
        assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[s], SIGTERM), 0);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[s]) > 0);
    }
    s_expect_pending (ctx, a, b, 0, 0);
    s_one (ctx, &here, RL_EXISTS);
    s_one (ctx, &across, RL_EXISTS);
    tk_check_conservation (ctx->client, &ctx->model, ctx->model.ok);
}

//  PREPAREs (their records in body) sent as shard `as` to shard s of the
//  cluster: the reply's status, and each record's reply in out (status ok).
static uint32_t
s_prepare_send (rk_ctx_t *ctx, const char *as, int s, const rl_prepare_rec_t *recs, uint32_t count,
                rl_tp_rec_t *out)
{
    static uint64_t request_id = 500;
    zsock_t *dealer = tk_dealer_as (ctx->h, as, ctx->shards[s].name, ctx->shards[s].endpoint);
    uint8_t frame[RL_HEADER_SIZE + 4 * RL_PREPARE_SIZE];
    assert_true (count <= 4);
    size_t size = tk_request_header (frame, RL_OP_PREPARE, ++request_id, count);
    for (uint32_t i = 0; i < count; i++) {
        codec_encode_prepare (&recs[i], frame + size);
        size += RL_PREPARE_SIZE;
    }
    assert_int_equal (zsock_send (dealer, "b", frame, size), 0);
    zframe_t *reply = zframe_recv (dealer);
    assert_non_null (reply);
    rl_header_t h;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal (
        codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &body, &body_size),
        RL_STATUS_OK);
    assert_int_equal (h.request_id, request_id);
    if (h.status == RL_STATUS_OK) {
        assert_int_equal (body_size, (size_t) count * RL_TP_SIZE);
        for (uint32_t i = 0; i < count; i++) {
            codec_decode_tp (body + (size_t) i * RL_TP_SIZE, &out[i]);
        }
    }
    zframe_destroy (&reply);
    zsock_destroy (&dealer);
    return h.status;
}

//  A PREPARE as coordinator `coordinator` of t, attempt 1.1 of a made-up
//  incarnation (the participant never asks: every one is refused).
static rl_prepare_rec_t
s_prepare_rec (const rl_transfer_t *t, const char *coordinator)
{
    rl_prepare_rec_t rec = {.transfer = *t};
    rec.tp.id = t->id;
    rec.tp.attempt = (rl_attempt_t){.counter = 1, .nonce = 0x5157, .seq = 1};
    rec.tp.amount = t->amount;
    rec.tp.debit_account_id = t->debit_account_id;
    snprintf (rec.tp.coordinator, sizeof rec.tp.coordinator, "%s", coordinator);
    return rec;
}

static void
test_xshard_hostile (void **state)
{
    rk_ctx_t *ctx = *state;
    rk_cluster_start (ctx, 2, 2, 0, 0);
    rk_create_accounts (ctx);
    uint64_t a = s_pick (ctx, 0, 0), b = s_pick (ctx, 1, 0);
    int d = rk_owner (ctx->ring, tk_id (a, RK_TAG)), c = rk_owner (ctx->ring, tk_id (b, RK_TAG));
    const char *coordinator = ctx->shards[d].name;
    rl_transfer_t p = s_t (RL_TRANSFER_PENDING, a, b, 70);
    s_one (ctx, &p, RL_OK);
    s_expect_pending (ctx, a, b, 70, 70);
    rl_account_t before = s_account (ctx, b);

    //  The post the debit shard would send (resolved: every field set).
    rl_transfer_t post = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 70);
    post.credit_account_id = p.credit_account_id;
    post.ledger = p.ledger;
    post.code = p.code;
    rl_tp_rec_t out[4];
    //  Fields of no kind: the whole frame is malformed (the good record too).
    for (int defect = 0; defect < 4; defect++) {
        rl_prepare_rec_t recs[2] = {s_prepare_rec (&post, coordinator),
                                    s_prepare_rec (&post, coordinator)};
        recs[0].transfer.id = recs[0].tp.id = tk_id (s_next++, RK_TAG);
        rl_transfer_t *t = &recs[1].transfer;
        t->id = recs[1].tp.id = tk_id (s_next++, RK_TAG);
        switch (defect) {
            case 0:
                t->flags |= RL_TRANSFER_VOID_PENDING_TRANSFER;
                break;
            case 1:
                t->pending_id = (rl_id_t){0, 0};
                break;
            case 2:
                t->timeout = 5;
                break;
            default:
                t->flags = RL_TRANSFER_PENDING; //  a pending transfer naming a pending id
                break;
        }
        if (s_prepare_send (ctx, coordinator, c, recs, 2, out) != RL_STATUS_MALFORMED) {
            fail_msg ("PREPARE of a pending kind with defect %d not refused malformed", defect);
        }
    }
    //  Well-formed, but no credit side for it here, above its amount, a
    //  pending transfer with a flag no cross-shard transfer carries, and
    //  an amount beyond what one coordinator may reserve here (limits
    //  against one coordinator, docs/two-phase.md): each refused with its
    //  result.
    rl_prepare_rec_t recs[4];
    rl_transfer_t unknown = post;
    unknown.id = tk_id (s_next++, RK_TAG);
    unknown.pending_id = tk_id (888888, RK_TAG);
    recs[0] = s_prepare_rec (&unknown, coordinator);
    rl_transfer_t above = post;
    above.id = tk_id (s_next++, RK_TAG);
    above.amount = 71;
    recs[1] = s_prepare_rec (&above, coordinator);
    rl_transfer_t linked = s_t (RL_TRANSFER_PENDING | RL_TRANSFER_LINKED, a, b, 5);
    recs[2] = s_prepare_rec (&linked, coordinator);
    rl_transfer_t huge = s_t (RL_TRANSFER_PENDING, a, b, UINT64_MAX);
    recs[3] = s_prepare_rec (&huge, coordinator);
    assert_int_equal (s_prepare_send (ctx, coordinator, c, recs, 4, out), RL_STATUS_OK);
    const uint32_t want[4] = {RL_PENDING_TRANSFER_NOT_FOUND, RL_EXCEEDS_PENDING_TRANSFER_AMOUNT,
                              RL_RESERVED_FIELD, RL_BUSY}; //  busy: above --tp-reserve-max
    for (int i = 0; i < 4; i++) {
        if (out[i].state != RL_TP_REFUSED || out[i].result != want[i]) {
            fail_msg ("PREPARE %d: %s (%s), expected refused (%s)", i,
                      rl_tp_state_name (out[i].state), rl_result_name (out[i].result),
                      rl_result_name (want[i]));
        }
    }
    //  Nothing changed: no prepared record, the credit side as it was.
    rl_status_rec_t status = rk_status_of (ctx->shards[c].endpoint);
    assert_int_equal (status.in_doubt, 0);
    assert_int_equal (status.alarms, 0);
    rl_account_t after = s_account (ctx, b);
    assert_memory_equal (&before, &after, sizeof before);
    //  The real void still works, and the cluster is conserved.
    rl_transfer_t v = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    s_one (ctx, &v, RL_OK);
    s_expect_pending (ctx, a, b, 0, 0);
    rl_transfer_t plain = s_t (0, a, b, 3);
    s_one (ctx, &plain, RL_OK);
    tk_model_apply (&ctx->model, &plain);
    tk_check_conservation (ctx->client, &ctx->model, 1);
}

//  Crash matrix -------------------------------------------------------------------
//
//  Two shards of the test's own (--durability manual-wal: a SIGKILL drops
//  whatever was not group-committed; fast two-phase timers), the kit of
//  testkit.h; a case per (failpoint, post or void).

#define S_CRASH_LEDGER 753
#define S_PENDING      100 //  the pending transfer's amount
#define S_POSTED       60  //  what the post posts of it

typedef struct {
    const char *point;
    int role;    //  0: coordinator (the debit shard), 1: participant
    bool post;   //  a post of part of it, or a void
    bool infra;  //  the participant holds the PREPARE past the prepare timeout
    bool expiry; //  no post nor void: the expiry's void attempt (a timeout of 2 s)
} s_crash_t;

static const s_crash_t s_crashes[] = {
    {"tp.coord.prepare_sent", 0, true, false},
    {"tp.coord.prepare_sent", 0, false, false},
    {"tp.coord.decided", 0, true, false},
    {"tp.coord.decided", 0, false, false},
    {"tp.coord.decision_synced", 0, true, false},
    {"tp.coord.decision_synced", 0, false, false},
    {"tp.coord.decision_sent", 0, true, false},
    {"tp.coord.decision_sent", 0, false, false},
    {"tp.coord.acked", 0, true, false},
    {"tp.coord.acked", 0, false, false},
    {"tp.coord.abort_decided", 0, true, true},
    {"tp.coord.abort_decided", 0, false, true},
    {"tp.part.prepared", 1, true, false},
    {"tp.part.prepared", 1, false, false},
    {"tp.part.prepare_synced", 1, true, false},
    {"tp.part.prepare_synced", 1, false, false},
    {"tp.part.applied", 1, true, false},
    {"tp.part.applied", 1, false, false},
    {"tp.part.apply_synced", 1, true, false},
    {"tp.part.apply_synced", 1, false, false},
    {"tp.coord.prepare_sent", 0, false, false, true},
    {"tp.coord.decision_synced", 0, false, false, true},
    {"tp.part.prepared", 1, false, false, true},
    {"tp.part.apply_synced", 1, false, false, true},
};

typedef struct {
    harness_t *h;
    tk_shard_t shards[2];
    rl_client_t *clients[2];
    ring_t *ring;
    uint64_t tag;
} s_crash_ctx_t;

static rl_client_t *
s_crash_client_for (void *arg, rl_id_t id)
{
    s_crash_ctx_t *ctx = arg;
    return ctx->clients[rk_owner (ctx->ring, id)];
}

static void
s_crash_start (s_crash_ctx_t *ctx, int i)
{
    assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
    rl_client_destroy (&ctx->clients[i]);
    ctx->clients[i] = rl_client_new (ctx->shards[i].endpoint);
    assert_non_null (ctx->clients[i]);
}

static void
s_crash_init (s_crash_ctx_t *ctx)
{
    ring_destroy (&ctx->ring);
    ctx->ring = ring_new (1);
    char name[32], ring_file[512];
    for (int i = 0; i < 2; i++) {
        snprintf (name, sizeof name, "c%d", i + 1);
        tk_shard_init (ctx->h, &ctx->shards[i], name);
        tk_shard_t *s = &ctx->shards[i];
        s->durability = "manual-wal";
        char *args[] = {"--prepare-timeout-ms",
                        "300",
                        "--query-after-ms",
                        "200",
                        "--retry-min-ms",
                        "20",
                        "--retry-max-ms",
                        "200",
                        "--tick-ms",
                        "5",
                        NULL};
        memcpy (s->args, args, sizeof args);
        assert_int_equal (ring_add_shard (ctx->ring, name, s->endpoint, 1.0), 0);
    }
    snprintf (ring_file, sizeof ring_file, "%s/c.ring", harness_dir (ctx->h));
    assert_int_equal (ring_save_file (ctx->ring, ring_file), 0);
    for (int i = 0; i < 2; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof ctx->shards[i].ring_file, "%s", ring_file);
    }
    //  Account 1 on the first shard (the debit shard), 2 on the second.
    for (ctx->tag = 0x5850000000ull;; ctx->tag++) {
        if (rk_owner (ctx->ring, tk_id (1, ctx->tag)) == 0
            && rk_owner (ctx->ring, tk_id (2, ctx->tag)) == 1) {
            break;
        }
    }
}

//  Sends t to its debit shard until the answer is definite (not aborted,
//  in_progress, busy, nor silence).
static uint32_t
s_crash_send (s_crash_ctx_t *ctx, const rl_transfer_t *t)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        rl_result_rec_t r;
        int rc = rl_client_create_transfers (s_crash_client_for (ctx, t->debit_account_id), t, 1,
                                             &r, TK_TIMEOUT_MS);
        if (rc == 0 && !rl_result_is_retryable (r.result)) {
            return r.result;
        }
        zclock_sleep (100);
    }
    fail_msg ("transfer %" PRIx64 " never got a definite answer", t->id.lo);
    return UINT32_MAX;
}

static rl_account_t
s_crash_account (s_crash_ctx_t *ctx, uint64_t n)
{
    rl_id_t id = tk_id (n, ctx->tag);
    rl_account_t a;
    assert_int_equal (
        rl_client_lookup_accounts (s_crash_client_for (ctx, id), &id, 1, &a, TK_TIMEOUT_MS), 0);
    assert_true (a.timestamp != 0);
    return a;
}

static void s_crash_settle (s_crash_ctx_t *ctx, size_t k, const rl_transfer_t *p,
                            const rl_transfer_t *t, uint32_t first, const rl_account_t *dr0,
                            const rl_account_t *cr0);
static void s_crash_expired (s_crash_ctx_t *ctx, size_t k, const rl_transfer_t *p,
                             const rl_transfer_t *t, const rl_account_t *dr0,
                             const rl_account_t *cr0);

static void
s_crash_case (s_crash_ctx_t *ctx, size_t k, tk_model_t *model)
{
    const s_crash_t *c = &s_crashes[k];
    rl_transfer_t p = tk_transfer (tk_id (100 + 3 * k, ctx->tag), tk_id (1, ctx->tag),
                                   tk_id (2, ctx->tag), S_PENDING, S_CRASH_LEDGER);
    p.flags = RL_TRANSFER_PENDING;
    p.timeout = c->expiry ? 2 : 0;
    assert_int_equal (s_crash_send (ctx, &p), RL_OK);
    rl_account_t dr0 = s_crash_account (ctx, 1), cr0 = s_crash_account (ctx, 2);
    //  P's own attempt settled (its DECIDE acknowledged), so that the point
    //  fires for the post or void.
    assert_true (tk_wait_quiet (ctx->clients, 2, 15000));
    //  The role's shard again, armed (and the participant holding PREPAREs
    //  past the prepare timeout on the infrastructure path).
    static char fp_env[300], fp_file_env[600], fp_file[512], delay_env[64];
    snprintf (fp_file, sizeof fp_file, "%s/c%zu-fp.log", harness_dir (ctx->h), k);
    snprintf (fp_file_env, sizeof fp_file_env, "RL_FAILPOINT_FILE=%s", fp_file);
    snprintf (fp_env, sizeof fp_env, "RL_FAILPOINTS=%s=crash", c->point);
    snprintf (delay_env, sizeof delay_env, "RL_FAILPOINTS=tp.part.prepare_delay=delay:600");
    assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[c->role], SIGTERM), 0);
    ctx->shards[c->role].env[0] = fp_env;
    ctx->shards[c->role].env[1] = fp_file_env;
    ctx->shards[c->role].env[2] = NULL;
    s_crash_start (ctx, c->role);
    if (c->infra) {
        assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM), 0);
        ctx->shards[1].env[0] = delay_env;
        ctx->shards[1].env[1] = NULL;
        s_crash_start (ctx, 1);
    }
    rl_transfer_t t = {.id = tk_id (101 + 3 * k, ctx->tag),
                       .debit_account_id = p.debit_account_id,
                       .pending_id = p.id,
                       .amount = c->post ? S_POSTED : 0,
                       .flags = c->post ? RL_TRANSFER_POST_PENDING_TRANSFER
                                        : RL_TRANSFER_VOID_PENDING_TRANSFER};
    rl_result_rec_t first;
    int first_rc = -1; //  the expiry begins by itself at its time
    if (!c->expiry) {
        first_rc = rl_client_create_transfers (ctx->clients[0], &t, 1, &first, 3000);
    }
    //  It dies by SIGKILL at its point, and restarts.
    int wstatus = 0;
    tk_shard_t *armed = &ctx->shards[c->role];
    if (harness_wait_exit (ctx->h, armed->pid, 15000, &wstatus) != 0) {
        harness_keep (ctx->h);
        fail_msg ("case %zu (%s): %s never died", k, c->point, armed->name);
    }
    armed->pid = -1;
    assert_true (WIFSIGNALED (wstatus) && WTERMSIG (wstatus) == SIGKILL);
    char *log = harness_read_file (fp_file, NULL);
    assert_true (log && strstr (log, c->point));
    free (log);
    armed->env[0] = NULL;
    s_crash_start (ctx, c->role);
    if (c->infra) {
        assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[1], SIGTERM), 0);
        ctx->shards[1].env[0] = NULL;
        s_crash_start (ctx, 1);
    }
    if (c->expiry) {
        s_crash_expired (ctx, k, &p, &t, &dr0, &cr0);
    } else {
        s_crash_settle (ctx, k, &p, &t, first_rc == 0 ? first.result : UINT32_MAX, &dr0, &cr0);
    }
    if (c->post) {
        rl_transfer_t moved = p;
        moved.amount = S_POSTED;
        tk_model_apply (model, &moved);
    }
    rl_transfer_t plain = tk_transfer (tk_id (102 + 3 * k, ctx->tag), p.debit_account_id,
                                       p.credit_account_id, 5, S_CRASH_LEDGER);
    assert_int_equal (s_crash_send (ctx, &plain), RL_OK);
    tk_model_apply (model, &plain);
    //  Nothing pending is left: the strong conservation check.
    tk_check_conservation_by (s_crash_client_for, ctx, model, model->ok);
    for (int i = 0; i < 2; i++) {
        rl_status_rec_t status;
        assert_int_equal (rl_client_status (ctx->clients[i], &status, TK_TIMEOUT_MS), 0);
        assert_int_equal (status.alarms, 0);
    }
}

//  After a post or void's crash: applied on both shards or on neither; a
//  retry with its id gets exists or, not applied, executes now.
static void
s_crash_settle (s_crash_ctx_t *ctx, size_t k, const rl_transfer_t *p, const rl_transfer_t *t,
                uint32_t first, const rl_account_t *dr0, const rl_account_t *cr0)
{
    bool post = (t->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    if (!tk_wait_quiet (ctx->clients, 2, 15000)) {
        harness_keep (ctx->h);
        fail_msg ("case %zu (%s): the shards did not settle", k, s_crashes[k].point);
    }
    //  Applied on both shards or on neither.
    rl_transfer_t found;
    assert_int_equal (
        rl_client_lookup_transfers (ctx->clients[0], &t->id, 1, &found, TK_TIMEOUT_MS), 0);
    bool applied = found.timestamp != 0;
    if (first == RL_OK) {
        assert_true (applied);
    }
    rl_account_t dr = s_crash_account (ctx, 1), cr = s_crash_account (ctx, 2);
    uint64_t posted = applied && post ? S_POSTED : 0;
    assert_int_equal (dr.debits_pending, applied ? 0 : p->amount);
    assert_int_equal (cr.credits_pending, applied ? 0 : p->amount);
    assert_int_equal (dr.debits_posted, dr0->debits_posted + posted);
    assert_int_equal (cr.credits_posted, cr0->credits_posted + posted);
    assert_int_equal (dr.debits_reserved + cr.credits_reserved, 0);
    printf ("  first answer %s, applied after recovery: %s\n",
            first != UINT32_MAX ? rl_result_name (first) : "(none)", applied ? "yes" : "no");
    uint32_t retry = s_crash_send (ctx, t);
    assert_int_equal (retry, applied ? RL_EXISTS : RL_OK);
    assert_int_equal (s_crash_send (ctx, t), RL_EXISTS);
}

//  After a crash in the expiry's void attempt: the expiry is tried again
//  until it commits, on both shards; then a post of it is expired (burned).
static void
s_crash_expired (s_crash_ctx_t *ctx, size_t k, const rl_transfer_t *p, const rl_transfer_t *t,
                 const rl_account_t *dr0, const rl_account_t *cr0)
{
    int64_t end = zclock_mono () + S_WAIT_MS;
    rl_account_t dr = s_crash_account (ctx, 1), cr = s_crash_account (ctx, 2);
    while ((dr.debits_pending != 0 || cr.credits_pending != 0) && zclock_mono () < end) {
        zclock_sleep (50);
        dr = s_crash_account (ctx, 1);
        cr = s_crash_account (ctx, 2);
    }
    if (dr.debits_pending != 0 || cr.credits_pending != 0
        || !tk_wait_quiet (ctx->clients, 2, 15000)) {
        harness_keep (ctx->h);
        fail_msg ("case %zu (%s): the expiry did not settle (pending %" PRIu64 "/%" PRIu64 ")", k,
                  s_crashes[k].point, dr.debits_pending, cr.credits_pending);
    }
    assert_int_equal (dr.debits_posted, dr0->debits_posted);
    assert_int_equal (cr.credits_posted, cr0->credits_posted);
    assert_int_equal (dr.debits_reserved + cr.credits_reserved, 0);
    printf ("  expired on both shards\n");
    rl_transfer_t post = *t;
    post.flags = RL_TRANSFER_POST_PENDING_TRANSFER;
    assert_true (rl_id_eq (post.pending_id, p->id));
    assert_int_equal (s_crash_send (ctx, &post), RL_PENDING_TRANSFER_EXPIRED);
    assert_int_equal (s_crash_send (ctx, &post), RL_PENDING_TRANSFER_EXPIRED);
}

static void
test_xshard_crash (void **state)
{
    (void) state;
    s_crash_ctx_t ctx = {0};
    ctx.h = harness_new ("pending_xshard_crash");
    assert_non_null (ctx.h);
    s_crash_init (&ctx);
    for (int i = 0; i < 2; i++) {
        s_crash_start (&ctx, i);
        rl_account_t a = tk_account ((uint64_t) i + 1, ctx.tag, S_CRASH_LEDGER, 0);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_accounts (ctx.clients[i], &a, 1, &r, TK_TIMEOUT_MS), 0);
        assert_int_equal (r.result, RL_OK);
    }
    tk_model_t model;
    tk_model_init (&model, ctx.tag, 2);
    for (size_t k = 0; k < sizeof s_crashes / sizeof s_crashes[0]; k++) {
        printf ("case %zu: %s on the %s, %s\n", k, s_crashes[k].point,
                s_crashes[k].role ? "participant" : "coordinator",
                s_crashes[k].expiry ? "expiry"
                : s_crashes[k].post ? "post"
                                    : "void");
        s_crash_case (&ctx, k, &model);
    }
    for (int i = 0; i < 2; i++) {
        tk_shard_stop (ctx.h, &ctx.shards[i], SIGKILL);
    }
    for (int i = 0; i < 2; i++) {
        rl_client_destroy (&ctx.clients[i]);
    }
    ring_destroy (&ctx.ring);
    harness_destroy (&ctx.h);
}

//  A post whose attempt began before its pending transfer fell due holds
//  the claim: a void sent while it is in flight (its PREPARE held 1.5 s at
//  the credit shard, the expiry due meanwhile) is answered in_progress,
//  never expired; the post commits, and the void sent again is
//  already_posted.
static void
test_xshard_post_at_expiry (void **state)
{
    (void) state;
    s_crash_ctx_t ctx = {0};
    ctx.h = harness_new ("pending_xshard_post_at_expiry");
    assert_non_null (ctx.h);
    s_crash_init (&ctx);
    static char delay_env[] = "RL_FAILPOINTS=tp.part.prepare_delay=delay:1500@2";
    for (int i = 0; i < 2; i++) {
        ctx.shards[i].args[1] = "1900"; //  --prepare-timeout-ms: beyond the held PREPARE
    }
    ctx.shards[1].env[0] = delay_env;
    for (int i = 0; i < 2; i++) {
        s_crash_start (&ctx, i);
        rl_account_t a = tk_account ((uint64_t) i + 1, ctx.tag, S_CRASH_LEDGER, 0);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_accounts (ctx.clients[i], &a, 1, &r, TK_TIMEOUT_MS), 0);
        assert_int_equal (r.result, RL_OK);
    }
    //  P (1 s), its PREPARE the first one: held 1.5 s, it commits then.
    rl_transfer_t p = tk_transfer (tk_id (900, ctx.tag), tk_id (1, ctx.tag), tk_id (2, ctx.tag),
                                   S_PENDING, S_CRASH_LEDGER);
    p.flags = RL_TRANSFER_PENDING;
    p.timeout = 1;
    assert_int_equal (s_crash_send (&ctx, &p), RL_OK);
    int64_t committed = zclock_mono ();
    //  The post at once: its PREPARE held 1.5 s; the client gives up first.
    rl_transfer_t post = {.id = tk_id (901, ctx.tag),
                          .debit_account_id = p.debit_account_id,
                          .pending_id = p.id,
                          .amount = S_POSTED,
                          .flags = RL_TRANSFER_POST_PENDING_TRANSFER};
    rl_result_rec_t r;
    int rc = rl_client_create_transfers (ctx.clients[0], &post, 1, &r, 300);
    assert_int_equal (rc, RL_CLIENT_TIMEOUT);
    //  P is due (1 s after its commit); the post still in flight.
    zclock_sleep ((int) (committed + 1250 - zclock_mono ()));
    rl_transfer_t v = {.id = tk_id (902, ctx.tag),
                       .debit_account_id = p.debit_account_id,
                       .pending_id = p.id,
                       .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
    rl_client_t *other = rl_client_new (ctx.shards[0].endpoint);
    assert_int_equal (rl_client_create_transfers (other, &v, 1, &r, TK_TIMEOUT_MS), 0);
    bool in_flight = zclock_mono () < committed + 1500;
    printf ("  void at %.2f s after P: %s\n", (double) (zclock_mono () - committed) / 1000.0,
            rl_result_name (r.result));
    assert_int_not_equal (r.result, RL_PENDING_TRANSFER_EXPIRED);
    if (in_flight) {
        assert_int_equal (r.result, RL_IN_PROGRESS);
    }
    rl_client_destroy (&other);
    //  The post commits; the void is then refused as posted; the amounts.
    assert_int_equal (s_crash_send (&ctx, &post), RL_EXISTS);
    assert_int_equal (s_crash_send (&ctx, &v), RL_PENDING_TRANSFER_ALREADY_POSTED);
    rl_account_t dr = s_crash_account (&ctx, 1), cr = s_crash_account (&ctx, 2);
    assert_int_equal (dr.debits_pending + cr.credits_pending, 0);
    assert_int_equal (dr.debits_posted, S_POSTED);
    assert_int_equal (cr.credits_posted, S_POSTED);
    tk_model_t model;
    tk_model_init (&model, ctx.tag, 2);
    rl_transfer_t posted = tk_transfer (tk_id (0, ctx.tag), p.debit_account_id, p.credit_account_id,
                                        S_POSTED, S_CRASH_LEDGER);
    tk_model_apply (&model, &posted);
    tk_check_conservation_by (s_crash_client_for, &ctx, &model, model.ok);
    for (int i = 0; i < 2; i++) {
        tk_shard_stop (ctx.h, &ctx.shards[i], SIGKILL);
        rl_client_destroy (&ctx.clients[i]);
    }
    ring_destroy (&ctx.ring);
    harness_destroy (&ctx.h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_xshard_flows, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_xshard_expiry_ids, rk_setup, rk_teardown),
        cmocka_unit_test_setup_teardown (test_xshard_hostile, rk_setup, rk_teardown),
        cmocka_unit_test (test_xshard_post_at_expiry),
        cmocka_unit_test (test_xshard_crash),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
