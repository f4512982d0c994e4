/*  test_bank.c: a bank-style run of payment flows on two real shards while
    a nemesis SIGKILLs them (docs/payments.md, docs/testing.md).

    Two shards (secure, --durability manual-wal: the WAL stays in process
    memory until each group commit, so SIGKILL drops everything unsynced),
    twelve accounts alternating between them: two banks free to go
    negative, ten customers who may not overdraw (debits must not exceed
    credits). After the funding, a seeded driver sends, for BANK_LOAD_MS of
    wall time, one request at a time to the debit account's shard:
      - transfers between customers, of one shard or across the two (some
        overdraw and burn their ids);
      - pending transfers of one shard with a timeout of 1-2 s;
      - pending transfers across the shards, left to expire (the debit
        shard's void attempt; not_supported by a build that does not serve
        them is accepted);
      - posts (all, part, too much) and voids of earlier pending transfers,
        racing their expiry and each other;
      - linked chains of 2-3 members on one shard (transfers, pending
        transfers, posts and voids), some failing on an overdraft;
      - linked chains of 2-3 members debiting one shard and crediting
        both (a group of two-phase attempts, docs/two-phase.md): transfers,
        some failing on an overdraft, pending transfers, and posts and
        voids of pending transfers of that shard or across made before;
        later members may debit the other shard (debit legs there:
        transfers and pending transfers, and posts and voids of its
        pending transfers made before: post legs).
    The nemesis kills in two ways. Each shard starts with one crash
    failpoint armed at a seeded hit (shard.before_commit, after_write,
    after_sync or after_reply, hit BANK_HIT_MIN..BANK_HIT_MAX, above the
    set-up): it dies by SIGKILL in the middle of a turn, with the request
    in flight (whose outcome is then unknown), and is restarted with
    another point armed. And every BANK_KILL_MIN_MS..BANK_KILL_MAX_MS a
    SIGKILL from outside takes one shard between requests (cross-shard
    attempts and expiries may be under way), restarted at once.

    Then, once every timeout has run and the shards are quiet, the strong
    checks:
      1. every record's outcome by lookup at its debit shard: an answer ok
         or exists was applied; a business failure, aborted, not_supported
         or a failed chain's answer was not; an unknown one is whatever the
         lookup says; every chain is applied whole or not at all;
      2. each pending transfer is resolved by at most one post or void,
         before its expiry, for at most its amount, with its accounts;
      3. exactly once: every applied record sent again (a chain whole)
         answers exists with its original timestamp, every burned one its
         failure again;
      4. a pending transfer neither posted nor voided has expired: a new post
         of it is refused pending_transfer_expired;
      5. the conservation check in its strong sense: balances equal the
         model of posted amounts (a post with the amount it stored), every
         history sums to its balance, debits equal credits, and nothing is
         pending or reserved on any account.

    Seed: RL_SEED=<n> replays a run's choices (not its timing); the seed is
    printed first.
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
#include "testkit.h"
#include "tpkit.h"

#define LEDGER           1616
#define ACCOUNTS         12   //  1, 2: banks (one per shard); 3..12 customers
#define FUNDING          5000 //  each customer's start, from its shard's bank
#define BANK_LOAD_MS     6000 //  wall time of the load
#define BANK_KILL_MIN_MS 700  //  between two SIGKILLs
#define BANK_KILL_MAX_MS 1500
#define RECORDS_MAX      20000
#define CHAIN_MAX        3
#define CALL_TIMEOUT_MS  500
#define TIMEOUT_MAX_S    2 //  pending transfers' timeouts: 1..this
#define UNKNOWN          UINT32_MAX
#define PREPARE_TIMEOUT  "300"
#define BANK_HIT_MAX     200 //  a crash failpoint's hit: BANK_HIT_MIN..this
//  Above the hits of the set-up (each account and each funding transfer is
//  a request of its own, so a turn, a write and a sync), which no crash
//  may interrupt: it asserts every answer.
#define BANK_HIT_MIN (2 * ACCOUNTS + 10)

static const char *s_points[] = {"shard.before_commit", "shard.after_write", "shard.after_sync",
                                 "shard.after_reply"};
#define POINTS (sizeof (s_points) / sizeof (s_points[0]))

typedef struct {
    rl_transfer_t t;
    uint32_t answer; //  UNKNOWN until answered
    int chain;       //  the chain's first record, or -1
    int chain_len;
    rl_transfer_t found; //  at the end: as the debit shard holds it (timestamp 0: absent)
} s_rec_t;

typedef struct {
    harness_t *h;
    tpk_t tp;
    uint64_t tag;
    uint64_t rng;
    s_rec_t *recs;
    size_t count;
    uint64_t next_id;
    tk_model_t model;
    size_t kills;       //  from outside
    size_t crashes;     //  at failpoints
    size_t placed_away; //  chains placed by a post or void off their first member's shard
    char armed[2][128]; //  each shard's RL_FAILPOINTS=...
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->recs = calloc (RECORDS_MAX, sizeof (s_rec_t));
    assert_non_null (ctx->recs);
    ctx->h = harness_new ("bank");
    *state = ctx;
    return ctx->h ? 0 : -1;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    tpk_close (&ctx->tp);
    harness_destroy (&ctx->h);
    free (ctx->recs);
    free (ctx);
    return 0;
}

static uint64_t
s_rand (s_ctx_t *ctx, uint64_t n)
{
    return rl_rand_next (&ctx->rng) % n;
}

//  Account a's shard: odd accounts on the first, even ones on the second.
static int
s_shard_of (uint64_t a)
{
    return (a & 1) ? 0 : 1;
}

//  A random customer of shard i (3..ACCOUNTS).
static uint64_t
s_customer_on (s_ctx_t *ctx, int i)
{
    return 3 + 2 * s_rand (ctx, (ACCOUNTS - 2) / 2) + (i == 0 ? 0 : 1);
}

static uint64_t s_rand (s_ctx_t *ctx, uint64_t n);

//  Starts shard i with a crash failpoint armed at a seeded hit.
static void
s_start (s_ctx_t *ctx, int i)
{
    snprintf (ctx->armed[i], sizeof ctx->armed[i], "RL_FAILPOINTS=%s=crash@%lu",
              s_points[s_rand (ctx, POINTS)],
              (unsigned long) (BANK_HIT_MIN + s_rand (ctx, BANK_HIT_MAX - BANK_HIT_MIN)));
    ctx->tp.shards[i].env[0] = ctx->armed[i];
    ctx->tp.shards[i].env[1] = NULL;
    tpk_start (&ctx->tp, i);
}

//  Two shards with a shared ring file and fast two-phase timeouts, and a
//  tag that puts odd accounts on the first and even ones on the second.
static void
s_cluster (s_ctx_t *ctx)
{
    tpk_init (&ctx->tp, ctx->h, "b", 2, PREPARE_TIMEOUT, "200");
    for (int i = 0; i < 2; i++) {
        s_start (ctx, i);
    }
    for (uint64_t tag = 0x42414e4b00ull;; tag++) {
        bool ok = true;
        for (uint64_t a = 1; a <= ACCOUNTS && ok; a++) {
            ok = tpk_owner (&ctx->tp, tk_id (a, tag)) == s_shard_of (a);
        }
        if (ok) {
            ctx->tag = tag;
            break;
        }
    }
    tk_model_init (&ctx->model, ctx->tag, ACCOUNTS);
    for (uint64_t a = 1; a <= ACCOUNTS; a++) {
        rl_account_t acc = tk_account (a, ctx->tag, LEDGER,
                                       a <= 2 ? 0 : RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_accounts (tpk_client_for (&ctx->tp, acc.id), &acc, 1, &r,
                                                     TK_TIMEOUT_MS),
                          0);
        assert_int_equal (r.result, RL_OK);
    }
    //  Funding: each customer from its own shard's bank.
    for (uint64_t a = 3; a <= ACCOUNTS; a++) {
        rl_transfer_t t = tk_transfer (tk_id (900000 + a, ctx->tag), tk_id (2 - (a & 1), ctx->tag),
                                       tk_id (a, ctx->tag), FUNDING, LEDGER);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_transfers (tpk_client_for (&ctx->tp, t.debit_account_id),
                                                      &t, 1, &r, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (r.result, RL_OK);
        tk_model_apply (&ctx->model, &t);
    }
}

//  Records -------------------------------------------------------------------------

static s_rec_t *
s_new (s_ctx_t *ctx, uint64_t debit, uint64_t credit, uint64_t amount)
{
    assert_true (ctx->count < RECORDS_MAX);
    s_rec_t *rec = &ctx->recs[ctx->count++];
    rec->t = tk_transfer (tk_id (++ctx->next_id, ctx->tag), tk_id (debit, ctx->tag),
                          tk_id (credit, ctx->tag), amount, LEDGER);
    rec->answer = UNKNOWN;
    rec->chain = -1;
    return rec;
}

//  A pending transfer sent before record `before` with debit on shard i
//  and credit on shard i (across: on either shard), or NULL.
static const s_rec_t *
s_pick_pending (s_ctx_t *ctx, int i, bool across, size_t before)
{
    if (before == 0) {
        return NULL;
    }
    size_t start = s_rand (ctx, before);
    for (size_t n = 0; n < before && n < 64; n++) {
        const s_rec_t *p = &ctx->recs[(start + before - n) % before];
        if ((p->t.flags & RL_TRANSFER_PENDING) && tpk_owner (&ctx->tp, p->t.debit_account_id) == i
            && (across || tpk_owner (&ctx->tp, p->t.credit_account_id) == i)) {
            return p;
        }
    }
    return NULL;
}

//  Turns rec into a post (all, part, too much) or a void of p.
static void
s_resolve (s_ctx_t *ctx, s_rec_t *rec, const s_rec_t *p)
{
    uint64_t amounts[] = {0, 1 + s_rand (ctx, p->t.amount), p->t.amount, p->t.amount + 1};
    rec->t = (rl_transfer_t){
        .id = rec->t.id,
        .debit_account_id = p->t.debit_account_id,
        .pending_id = p->t.id,
        .amount = amounts[s_rand (ctx, 4)],
        .flags = s_rand (ctx, 100) < 60 ? RL_TRANSFER_POST_PENDING_TRANSFER
                                        : RL_TRANSFER_VOID_PENDING_TRANSFER,
    };
}

//  One member or single record on shard i: a transfer (an overdraft now
//  and then), a pending transfer, or a post or void of an earlier one.
static s_rec_t *
s_make (s_ctx_t *ctx, int i, bool cross_ok)
{
    uint64_t dr = s_customer_on (ctx, i);
    bool cross = cross_ok && s_rand (ctx, 100) < 30;
    uint64_t cr = s_customer_on (ctx, cross ? 1 - i : i);
    if (cr == dr) {
        cr = dr + 2 <= ACCOUNTS ? dr + 2 : dr - 2;
    }
    uint64_t amount = s_rand (ctx, 100) < 5 ? 100000 : 1 + s_rand (ctx, 200);
    s_rec_t *rec = s_new (ctx, dr, cr, amount);
    uint64_t r = s_rand (ctx, 100);
    if (r < 30) {
        rec->t.flags = RL_TRANSFER_PENDING;
        rec->t.timeout = 1 + (uint32_t) s_rand (ctx, TIMEOUT_MAX_S);
    } else if (r < 55) {
        const s_rec_t *p = s_pick_pending (ctx, i, false, ctx->count - 1);
        if (p) {
            s_resolve (ctx, rec, p);
        }
    }
    return rec;
}

//  Sends recs[first..first+n) as one request to shard i and records the
//  answers (none when the call failed: unknown).
static void
s_send (s_ctx_t *ctx, int i, size_t first, size_t n)
{
    rl_transfer_t t[CHAIN_MAX];
    rl_result_rec_t r[CHAIN_MAX];
    assert_true (n >= 1 && n <= CHAIN_MAX);
    for (size_t k = 0; k < n; k++) {
        t[k] = ctx->recs[first + k].t;
    }
    if (rl_client_create_transfers (ctx->tp.clients[i], t, n, r, CALL_TIMEOUT_MS) != 0) {
        //  No answer: the shard died at its failpoint (restarted now), or
        //  was slow. Unknown either way.
        int wstatus = 0;
        if (harness_wait_exit (ctx->h, ctx->tp.shards[i].pid, 50, &wstatus) == 0) {
            ctx->tp.shards[i].pid = -1;
            if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL) {
                harness_keep (ctx->h);
                fail_msg ("shard %d exited with status 0x%x", i, wstatus);
            }
            ctx->crashes++;
            tpk_start (&ctx->tp, i);
        }
        return;
    }
    for (size_t k = 0; k < n; k++) {
        ctx->recs[first + k].answer = r[k].result;
    }
}

//  A member of a chain across the shards, debiting a customer of shard i:
//  a transfer to a customer of either shard (of the other for the chain's
//  first member, so that the chain crosses), an overdraft now and then; a
//  later member may be a pending transfer, or a post or void of a pending
//  transfer of shard i or across made before or by an earlier member, or
//  debit a customer of the other shard (a debit leg
//  there: a transfer or a pending transfer, or a post or void of a pending
//  transfer of that shard made before the chain: a post leg there). The
//  first member too may debit the other shard: a chain with a post or void
//  then runs on the shard of the first one, placed by it (s_chain_shard).
static s_rec_t *
s_make_across (s_ctx_t *ctx, int i, bool first, size_t chain_first)
{
    bool leg = s_rand (ctx, 4) == 0;
    uint64_t dr = s_customer_on (ctx, leg ? 1 - i : i);
    uint64_t cr = s_customer_on (ctx, first || s_rand (ctx, 2) ? 1 - i : i);
    if (cr == dr) {
        cr = dr + 2 <= ACCOUNTS ? dr + 2 : dr - 2;
    }
    s_rec_t *rec = s_new (ctx, dr, cr, s_rand (ctx, 100) < 5 ? 100000 : 1 + s_rand (ctx, 200));
    uint64_t r = first ? 100 : s_rand (ctx, 100);
    if (first && s_rand (ctx, 100) < 30) {
        r = 25; //  a post or void of shard i, which places the chain there
        leg = false;
        rec->t.debit_account_id = tk_id (s_customer_on (ctx, i), ctx->tag);
    }
    if (leg && r >= 25 && r < 50) {
        //  A post leg: of the newest pending transfer debiting the other
        //  shard made before this chain and answered ok (the likeliest to
        //  be pending still), for an amount that fits.
        for (size_t k = chain_first; k-- > 0 && k + 64 > chain_first;) {
            const s_rec_t *p = &ctx->recs[k];
            if ((p->t.flags & RL_TRANSFER_PENDING) && p->answer == RL_OK
                && tpk_owner (&ctx->tp, p->t.debit_account_id) == 1 - i) {
                s_resolve (ctx, rec, p);
                rec->t.amount = rec->t.amount > p->t.amount ? p->t.amount : rec->t.amount;
                break;
            }
        }
        return rec;
    }
    if (r < 25) {
        rec->t.flags = RL_TRANSFER_PENDING;
        rec->t.timeout = 1 + (uint32_t) s_rand (ctx, TIMEOUT_MAX_S);
    } else if (r < 50) {
        //  Made before, or by an earlier member of this chain (its
        //  credit side on the other shard comes with the commit).
        const s_rec_t *p = s_pick_pending (ctx, i, true, (size_t) (rec - ctx->recs));
        if (p) {
            s_resolve (ctx, rec, p);
        }
    }
    return rec;
}

//  The shard a chain of n records from `first` runs on: its first post or
//  void's debit shard, else its first member's (docs/payments.md, "Linked
//  chains"); the test sends it there, as a router would.
static int
s_chain_shard (s_ctx_t *ctx, size_t first, size_t n)
{
    size_t lead = first;
    for (size_t k = first; k < first + n; k++) {
        if (codec_transfer_places_chain (&ctx->recs[k].t)) {
            lead = k;
            break;
        }
    }
    return tpk_owner (&ctx->tp, ctx->recs[lead].t.debit_account_id);
}

static void
s_step (s_ctx_t *ctx)
{
    int i = (int) s_rand (ctx, 2);
    size_t first = ctx->count;
    if (s_rand (ctx, 100) < 30) {
        size_t n = 2 + s_rand (ctx, CHAIN_MAX - 1);
        bool across = s_rand (ctx, 3) == 0;
        for (size_t k = 0; k < n; k++) {
            s_rec_t *rec = across ? s_make_across (ctx, i, k == 0, first) : s_make (ctx, i, false);
            rec->chain = (int) first;
            rec->chain_len = (int) n;
            if (k < n - 1) {
                rec->t.flags |= RL_TRANSFER_LINKED;
            }
        }
        int shard = s_chain_shard (ctx, first, n);
        ctx->placed_away += shard != tpk_owner (&ctx->tp, ctx->recs[first].t.debit_account_id);
        s_send (ctx, shard, first, n);
        return;
    }
    s_make (ctx, i, true);
    s_send (ctx, i, first, 1);
}

//  The nemesis: SIGKILL of a shard, restarted at once.
static void
s_kill (s_ctx_t *ctx)
{
    int i = (int) s_rand (ctx, 2);
    int status = tk_shard_stop (ctx->h, &ctx->tp.shards[i], SIGKILL);
    //  Its failpoint may have killed it a moment before: SIGKILL either way.
    assert_true (status != -1 && WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    tpk_start (&ctx->tp, i);
    ctx->kills++;
}

//  Checks ---------------------------------------------------------------------------

static bool
s_success (uint32_t result)
{
    return result == RL_OK || result == RL_EXISTS;
}

//  A business failure: its id keeps it (alone; a failed chain burns none).
static bool
s_business (uint32_t result)
{
    return rl_result_burns (result) == RL_BURNS_YES;
}

//  An answer that says the record was not applied.
static bool
s_definitely_not (uint32_t result)
{
    return result == RL_ABORTED || result == RL_NOT_SUPPORTED || result == RL_BUSY
           || result == RL_LINKED_EVENT_FAILED || result == RL_LINKED_EVENT_CHAIN_OPEN
           || s_business (result);
}

//  1. Outcomes by lookup, all or nothing for chains.
static void
s_check_outcomes (s_ctx_t *ctx, size_t *unknown_p)
{
    size_t unknown = 0;
    for (size_t k = 0; k < ctx->count; k++) {
        s_rec_t *rec = &ctx->recs[k];
        assert_int_equal (
            rl_client_lookup_transfers (tpk_client_for (&ctx->tp, rec->t.debit_account_id),
                                        &rec->t.id, 1, &rec->found, TK_TIMEOUT_MS),
            0);
        bool applied = rec->found.timestamp != 0;
        unknown += rec->answer == UNKNOWN;
        if (rec->answer != UNKNOWN && s_success (rec->answer) && !applied) {
            fail_msg ("record %zu answered %s but not applied", k, rl_result_name (rec->answer));
        }
        if (rec->answer != UNKNOWN && s_definitely_not (rec->answer) && applied) {
            fail_msg ("record %zu answered %s but applied", k, rl_result_name (rec->answer));
        }
    }
    for (size_t k = 0; k < ctx->count; k++) {
        const s_rec_t *rec = &ctx->recs[k];
        if (rec->chain == (int) k) {
            int applied = 0;
            for (int j = 0; j < rec->chain_len; j++) {
                applied += ctx->recs[k + (size_t) j].found.timestamp != 0;
            }
            if (applied != 0 && applied != rec->chain_len) {
                fail_msg ("chain at record %zu: %d of %d members applied", k, applied,
                          rec->chain_len);
            }
        }
    }
    *unknown_p = unknown;
}

//  2. Pending transfers, and the model of posted amounts.
static void
s_check_pending (s_ctx_t *ctx, size_t *counts)
{
    for (size_t k = 0; k < ctx->count; k++) {
        const rl_transfer_t *f = &ctx->recs[k].found;
        if (f->timestamp == 0) {
            continue;
        }
        if (!(f->flags & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER))) {
            tk_model_apply (&ctx->model, f); //  a transfer, or a post with its amount
        }
        if (!(f->flags & RL_TRANSFER_PENDING)) {
            continue;
        }
        counts[0]++;
        uint64_t expires = f->timestamp + (uint64_t) f->timeout * 1000000000ull;
        int resolved = -1;
        for (size_t j = 0; j < ctx->count; j++) {
            const rl_transfer_t *r = &ctx->recs[j].found;
            if (r->timestamp == 0 || !rl_id_eq (r->pending_id, f->id)
                || !(r->flags
                     & (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER))) {
                continue;
            }
            if (resolved >= 0) {
                fail_msg ("pending record %zu resolved twice (%d, %zu)", k, resolved, j);
            }
            resolved = (int) j;
            assert_true (r->timestamp > f->timestamp && r->timestamp < expires);
            assert_true (rl_id_eq (r->debit_account_id, f->debit_account_id)
                         && rl_id_eq (r->credit_account_id, f->credit_account_id));
            assert_true (!(r->flags & RL_TRANSFER_POST_PENDING_TRANSFER) || r->amount <= f->amount);
            counts[(r->flags & RL_TRANSFER_POST_PENDING_TRANSFER) ? 1 : 2]++;
        }
        if (resolved < 0) {
            counts[3]++;
            //  4. Expired: never posted now.
            s_rec_t *post = s_new (ctx, 0, 0, 0);
            post->t = (rl_transfer_t){.id = post->t.id,
                                      .debit_account_id = f->debit_account_id,
                                      .pending_id = f->id,
                                      .flags = RL_TRANSFER_POST_PENDING_TRANSFER};
            rl_result_rec_t r;
            assert_int_equal (
                rl_client_create_transfers (tpk_client_for (&ctx->tp, f->debit_account_id),
                                            &post->t, 1, &r, TK_TIMEOUT_MS),
                0);
            if (r.result != RL_PENDING_TRANSFER_EXPIRED) {
                fail_msg ("a post of expired record %zu: %s", k, rl_result_name (r.result));
            }
            post->answer = r.result;
        }
    }
}

//  3. Exactly once: each applied record (a chain whole) answers exists with
//  its timestamp, each burned one its failure.
static void
s_check_retries (s_ctx_t *ctx, size_t until)
{
    for (size_t k = 0; k < until; k++) {
        const s_rec_t *rec = &ctx->recs[k];
        bool applied = rec->found.timestamp != 0;
        if (rec->chain >= 0) {
            if (rec->chain != (int) k || !applied) {
                continue; //  members go with their first; a failed chain burned nothing
            }
            rl_transfer_t t[CHAIN_MAX];
            rl_result_rec_t r[CHAIN_MAX];
            size_t n = (size_t) rec->chain_len;
            for (size_t j = 0; j < n; j++) {
                t[j] = ctx->recs[k + j].t;
            }
            int shard = s_chain_shard (ctx, k, n);
            assert_int_equal (
                rl_client_create_transfers (ctx->tp.clients[shard], t, n, r, TK_TIMEOUT_MS), 0);
            for (size_t j = 0; j < n; j++) {
                if (r[j].result != RL_EXISTS
                    || r[j].timestamp != ctx->recs[k + j].found.timestamp) {
                    fail_msg ("chain at %zu, member %zu retried: %s", k, j,
                              rl_result_name (r[j].result));
                }
            }
            continue;
        }
        bool burned = rec->answer != UNKNOWN && s_business (rec->answer);
        if (!applied && !burned) {
            continue;
        }
        rl_result_rec_t r;
        assert_int_equal (
            rl_client_create_transfers (tpk_client_for (&ctx->tp, rec->t.debit_account_id), &rec->t,
                                        1, &r, TK_TIMEOUT_MS),
            0);
        uint32_t want = applied ? RL_EXISTS : rec->answer;
        if (r.result != want || (applied && r.timestamp != rec->found.timestamp)) {
            fail_msg ("record %zu retried: %s, expected %s", k, rl_result_name (r.result),
                      rl_result_name (want));
        }
    }
}

static void
test_bank (void **state)
{
    s_ctx_t *ctx = *state;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("test_bank: RL_SEED=%lu\n", (unsigned long) seed);
    ctx->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s_cluster (ctx);
    int64_t start = zclock_mono ();
    int64_t next_kill = start + BANK_KILL_MIN_MS;
    while (zclock_mono () - start < BANK_LOAD_MS) {
        s_step (ctx);
        if (zclock_mono () >= next_kill) {
            s_kill (ctx);
            next_kill = zclock_mono () + BANK_KILL_MIN_MS
                        + (int64_t) s_rand (ctx, BANK_KILL_MAX_MS - BANK_KILL_MIN_MS);
        }
    }
    size_t sent = ctx->count;
    //  The end: each shard killed once more and started with no failpoint.
    for (int i = 0; i < 2; i++) {
        int status = tk_shard_stop (ctx->h, &ctx->tp.shards[i], SIGKILL);
        assert_true (status != -1 && WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
        ctx->tp.shards[i].env[0] = NULL;
        tpk_start (&ctx->tp, i);
    }
    //  Every timeout runs out; cross-shard attempts settle.
    zclock_sleep ((TIMEOUT_MAX_S + 1) * 1000);
    if (!tk_wait_quiet (ctx->tp.clients, 2, 20000)) {
        harness_keep (ctx->h);
        fail_msg ("the shards did not settle");
    }
    size_t unknown = 0;
    s_check_outcomes (ctx, &unknown);
    size_t counts[4] = {0}; //  pending applied, posted, voided, expired
    s_check_pending (ctx, counts);
    s_check_retries (ctx, sent);
    size_t chains = 0, chains_applied = 0, across_applied = 0, kinds_across = 0, not_supported = 0;
    size_t legs = 0;      //  applied chain members debiting another shard than their chain's
    size_t post_legs = 0; //  ... of them posts and voids (post legs)
    for (size_t k = 0; k < sent; k++) {
        const s_rec_t *rec = &ctx->recs[k];
        bool applied = rec->chain == (int) k && rec->found.timestamp != 0;
        chains += rec->chain == (int) k;
        chains_applied += applied;
        across_applied += applied && !(rec->t.flags & RL_TRANSFER_PENDING)
                          && tpk_owner (&ctx->tp, rec->t.credit_account_id)
                                 != tpk_owner (&ctx->tp, rec->t.debit_account_id);
        not_supported += rec->answer == RL_NOT_SUPPORTED;
        bool kinds = false;
        for (int j = 0; applied && j < rec->chain_len; j++) {
            kinds |= (ctx->recs[k + (size_t) j].t.flags
                      & (RL_TRANSFER_PENDING | RL_TRANSFER_POST_PENDING_TRANSFER
                         | RL_TRANSFER_VOID_PENDING_TRANSFER))
                     != 0;
        }
        for (int j = 0; applied && j < rec->chain_len; j++) {
            const rl_transfer_t *m = &ctx->recs[k + (size_t) j].t;
            bool away = tpk_owner (&ctx->tp, m->debit_account_id)
                        != s_chain_shard (ctx, k, (size_t) rec->chain_len);
            legs += away;
            post_legs += away
                         && (m->flags
                             & (RL_TRANSFER_POST_PENDING_TRANSFER
                                | RL_TRANSFER_VOID_PENDING_TRANSFER));
        }
        kinds_across += applied && kinds
                        && tpk_owner (&ctx->tp, rec->t.credit_account_id)
                               != tpk_owner (&ctx->tp, rec->t.debit_account_id);
    }
    printf (
        "test_bank: %zu records, %zu kills, %zu crashes at failpoints, %zu unknown; %zu "
        "pending applied: %zu posted, %zu "
        "voided, %zu expired; %zu chains, %zu applied (%zu across the shards, %zu of them with a "
        "pending kind, %zu members debiting another shard than their chain's, %zu of them post "
        "legs); %zu chains placed by a post or void away from their first member; %zu "
        "not_supported; %lu posting transfers\n",
        sent, ctx->kills, ctx->crashes, unknown, counts[0], counts[1], counts[2], counts[3], chains,
        chains_applied, across_applied, kinds_across, legs, post_legs, ctx->placed_away,
        not_supported, (unsigned long) ctx->model.ok);
    //  A run that did not exercise each flow proves nothing about it.
    assert_true (ctx->kills >= 2 && ctx->crashes >= 2);
    assert_true (counts[1] > 0 && counts[2] > 0 && counts[3] > 0);
    assert_true (chains_applied > 0 && chains_applied < chains && across_applied > 0);
    assert_true (kinds_across > 0 && legs > 0);
    //  5. Conservation, strong: nothing pending or reserved anywhere.
    tk_check_conservation_by (tpk_client_for, &ctx->tp, &ctx->model, ACCOUNTS - 2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_bank, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
