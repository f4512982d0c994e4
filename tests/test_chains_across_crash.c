/*  test_chains_across_crash.c: the crash matrix of linked chains across
    shards (docs/payments.md, "Linked chains"; docs/two-phase.md, "Linked
    chains: groups").

    Three real shards with --durability manual-wal (SIGKILL drops whatever
    was not group-committed) and fast two-phase timeouts. Account 1 pays,
    on s1 (the coordinator); 2 is s1's, 3 s2's, 4 and 5 s3's (5 is never
    created). A case's chain is 1 -> 2 (held on s1), 1 -> 3 (s2) and, on
    three shards, 1 -> 4 (s3); on the business path its last member
    credits 5 (s3 refuses it), on the infrastructure path s3 handles
    PREPAREs after the coordinator's prepare timeout.

    For every two-phase crash point of the registry (the test fails if one
    has no case), on the paths where it lies: the shard armed with it (s1
    for tp.coord.*, s2 for tp.part.*) must die there by SIGKILL; it is
    restarted, the cluster settles (no live attempt, decision or prepared
    record left, no alarm, every audit holds), and then: the chain is all
    applied or all not (its members found at s1, and every credit
    account's balance, by the strong conservation check against a model
    built from what was applied); a chain answered ok is applied; sent
    again it answers exists for every member when applied, else it is
    decided again (ok, or the same refusal on the business path: nothing
    burned); a member sent again alone answers exists when applied.

    The cases marked legs run a chain whose members debit other shards
    (docs/two-phase.md, "Debit legs"): 1 -> 2 (held on s1), 3 -> 1 (its
    debit leg on s2, its credit held on s1) and, on three shards, 4 -> 2
    (a debit leg on s3), or 5 -> 2 on the business path (s3 refuses it:
    debit_account_not_found): s2 is a debit-leg participant at every
    tp.part.* point, and the coordinator at its points with debit legs in
    the group. A member sent again alone goes to its debit shard.

    The cases marked kinds run a chain of pending kinds
    (docs/payments.md, "Linked chains across shards"): a pending transfer
    1 -> 2 (held on s1), the void of a pending transfer 1 -> 3 made before
    the case (a two-phase void attempt towards s2, its pending transfer
    claimed meanwhile) and the plain member to s3. After the checks above,
    the pending transfer the chain made is voided, so that nothing is
    pending at the strong conservation check; the void sent again alone
    answers exists when the chain applied, else voids it now.

    The cases marked third run 1 -> 2 (held on s1) and 4 -> 3: a member
    debiting s3 and crediting s2, its debit leg prepared on s3, then its
    credit leg on s2, the participant armed at every tp.part.* point (on
    the business path a third member 4 -> 6, 6 an account of s2 never
    created: s2 refuses its credit leg). Sent alone, it goes to s3. Marked
    kinds too, 4 -> 3 is a pending transfer, voided at s3 in the end.

    The cases marked own run a pending transfer 1 -> 2 held on s1, a post
    of 6 of it and 1 -> 4 (or 1 -> 5) in one chain: the post is held
    after it and applied right after it at the commit. Marked own across,
    the pending transfer is 1 -> 3: its credit leg and the post are
    prepared on s2, the post against that credit leg, and it claims the
    credit side when the pending transfer's COMMIT makes it.

    The cases marked post legs run a chain of voids and posts of pending
    transfers made before it (docs/two-phase.md, "Post legs"): the void
    of 1 -> 2 (held on s1: it places the chain there), a capture of 5 of
    3 -> 1 (a post leg on s2, its credit side claimed on s1) and, on three
    shards, the void of 4 -> 3 naming its credit account (a post leg on
    s3, then its credit leg on s2: a credit on a third shard), or on the
    business path a capture of 99 of its 6 (s3 refuses it). Sent alone, the capture
    goes to s2; what a failed chain left pending is voided in the end.

    The cases marked both run the legs chain with its member 3 -> 1 a
    pending transfer (timeout 3600 s): a pending debit leg on s2. At the
    end it is voided at s2 (made by the chain, or by the member sent alone
    after a failed chain).

    test_inflight: while a chain waits for a slow participant (1.5 s), its members
    sent again alone or whole are in_progress; then the chain commits
    once. test_inflight_legs: the same with a debit leg prepared on s2
    while s3 is slow: the member sent alone to s2 is in_progress, and
    exists once the chain committed. Ends with the strong conservation
    check.
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

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "failpoint.h"
#include "ring.h"
#include "testkit.h"
#include "tpkit.h"

#define LEDGER          761
#define PREPARE_TIMEOUT "300"
#define L               RL_TRANSFER_LINKED
#define SHARDS          3

typedef enum { PATH_COMMIT, PATH_BUSINESS, PATH_INFRA } s_path_t;
static const char *s_path_names[] = {"commit", "business-abort", "infrastructure-abort"};

typedef struct {
    const char *point; //  with its action (crash, crash@N)
    int shard;         //  0: the coordinator s1, 1: the participant s2
    s_path_t path;
    int shards;        //  shards the chain touches: 2 or 3
    const char *other; //  a second crash point on the coordinator, or NULL
    bool legs;         //  members debit s2 (and s3): debit legs there
    bool kinds;        //  a pending transfer and a void across as members
    bool third;        //  a member debiting s3 and crediting s2 (a credit on a third shard)
    bool own;          //  a pending transfer held on s1 and a post of it in the same chain
    bool own_across;   //  own, the pending transfer 1 -> 3 (its credit leg on s2)
    bool post_legs;    //  posts and voids debiting s2 (and s3): post legs there
} s_case_t;

static const s_case_t s_cases[] = {
    {"tp.coord.prepare_sent=crash", 0, PATH_COMMIT, 3, NULL},
    {"tp.coord.prepare_sent=crash", 0, PATH_INFRA, 3, NULL},
    //  The second PREPARE reply decides the group: dies with it in the batch.
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL},
    {"tp.coord.decided=crash", 0, PATH_BUSINESS, 3, NULL},
    {"tp.coord.decided=crash", 0, PATH_COMMIT, 2, NULL},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 3, NULL},
    {"tp.coord.decision_synced=crash", 0, PATH_BUSINESS, 3, NULL},
    {"tp.coord.decision_synced=crash", 0, PATH_INFRA, 3, NULL},
    {"tp.coord.decision_sent=crash", 0, PATH_COMMIT, 3, NULL},
    {"tp.coord.decision_sent=crash", 0, PATH_INFRA, 3, NULL},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL},
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL},
    {"tp.part.prepared=crash", 1, PATH_BUSINESS, 3, NULL},
    {"tp.part.prepare_synced=crash", 1, PATH_COMMIT, 2, NULL},
    {"tp.part.prepare_synced=crash", 1, PATH_BUSINESS, 3, NULL},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL},
    {"tp.part.applied=crash", 1, PATH_INFRA, 3, NULL},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 3, NULL},
    //  The coordinator dies with the group's PREPARE-OKs in, its decision
    //  not durable: s2 asks about its prepared record, and dies too.
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2"},
    //  Debit legs: s2 holds one (3 -> 1), s3 another (4 -> 2, or 5 -> 2).
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, true},
    {"tp.part.prepared=crash", 1, PATH_BUSINESS, 3, NULL, true},
    {"tp.part.prepare_synced=crash", 1, PATH_COMMIT, 2, NULL, true},
    {"tp.part.prepare_synced=crash", 1, PATH_BUSINESS, 3, NULL, true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, true},
    {"tp.part.applied=crash", 1, PATH_INFRA, 3, NULL, true},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 2, NULL, true},
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2", true},
    {"tp.coord.prepare_sent=crash", 0, PATH_COMMIT, 3, NULL, true},
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL, true},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 3, NULL, true},
    {"tp.coord.decision_sent=crash", 0, PATH_COMMIT, 2, NULL, true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, true},
    //  Pending kinds: a pending transfer held on s1, a void across (s2).
    {"tp.coord.prepare_sent=crash", 0, PATH_COMMIT, 3, NULL, false, true},
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL, false, true},
    {"tp.coord.decided=crash", 0, PATH_BUSINESS, 3, NULL, false, true},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 2, NULL, false, true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, false, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, false, true},
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, false, true},
    {"tp.part.prepare_synced=crash", 1, PATH_BUSINESS, 3, NULL, false, true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, false, true},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 2, NULL, false, true},
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2", false, true},
    //  Both: the debit leg on s2 (3 -> 1) is a pending transfer.
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, true, true},
    {"tp.part.prepare_synced=crash", 1, PATH_BUSINESS, 3, NULL, true, true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, true, true},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 2, NULL, true, true},
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2", true, true},
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL, true, true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, true, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, true, true},
    //  Third: 4 -> 3, its debit leg on s3, then its credit leg on s2.
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.part.prepared=crash", 1, PATH_BUSINESS, 3, NULL, false, false, true},
    {"tp.part.prepare_synced=crash", 1, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2", false, false, true},
    {"tp.coord.prepare_sent=crash", 0, PATH_COMMIT, 3, NULL, false, false, true},
    //  The second PREPARE sent is the credit leg's, after s3's PREPARED.
    {"tp.coord.prepare_sent=crash@2", 0, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.coord.decided=crash@2", 0, PATH_BUSINESS, 3, NULL, false, false, true},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.coord.decision_sent=crash", 0, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, false, false, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, false, false, true},
    //  Third, 4 -> 3 a pending transfer (its debit side on s3, its credit
    //  side on s2).
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, false, true, true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, false, true, true},
    {"tp.part.apply_synced=crash", 1, PATH_BUSINESS, 3, NULL, false, true, true},
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL, false, true, true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, false, true, true},
    //  Own: 1 -> 2 pending, held on s1, and a post of it in the same chain.
    {"tp.coord.prepare_sent=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, true},
    {"tp.coord.decided=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, true},
    {"tp.coord.decided=crash", 0, PATH_BUSINESS, 3, NULL, false, false, false, true},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, false, false, false, true},
    //  Own across: 1 -> 3 pending (its credit leg on s2) and a post of it,
    //  prepared on s2 against that credit leg, claiming its credit side
    //  at its COMMIT.
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, false, false, false, true, true},
    {"tp.part.prepare_synced=crash", 1, PATH_BUSINESS, 3, NULL, false, false, false, true, true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, false, false, false, true, true},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 3, NULL, false, false, false, true, true},
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2", false, false, false,
     true, true},
    {"tp.coord.decided=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, true, true},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, true, true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, true, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, false, false, false, true, true},
    //  Post legs: the void of 1 -> 2 (here), the capture of 3 -> 1 (its
    //  debit side on s2: a post leg there, its credit side claimed here),
    //  and the void (business: an over-capture) of 4 -> 3 (s3, its credit
    //  leg on s2).
    {"tp.part.prepared=crash", 1, PATH_COMMIT, 3, NULL, false, false, false, false, false, true},
    {"tp.part.prepared=crash", 1, PATH_BUSINESS, 3, NULL, false, false, false, false, false, true},
    {"tp.part.prepare_synced=crash", 1, PATH_COMMIT, 2, NULL, false, false, false, false, false,
     true},
    {"tp.part.applied=crash", 1, PATH_COMMIT, 3, NULL, false, false, false, false, false, true},
    {"tp.part.applied=crash", 1, PATH_INFRA, 3, NULL, false, false, false, false, false, true},
    {"tp.part.apply_synced=crash", 1, PATH_COMMIT, 3, NULL, false, false, false, false, false,
     true},
    {"tp.part.query_sent=crash", 1, PATH_COMMIT, 3, "tp.coord.decided=crash@2", false, false, false,
     false, false, true},
    {"tp.coord.prepare_sent=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, false, false,
     true},
    {"tp.coord.decided=crash@2", 0, PATH_COMMIT, 3, NULL, false, false, false, false, false, true},
    {"tp.coord.decision_synced=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, false, false,
     true},
    {"tp.coord.acked=crash", 0, PATH_COMMIT, 3, NULL, false, false, false, false, false, true},
    {"tp.coord.abort_decided=crash", 0, PATH_INFRA, 3, NULL, false, false, false, false, false,
     true},
};
#define CASES (sizeof (s_cases) / sizeof (s_cases[0]))

typedef struct {
    harness_t *h;
    tpk_t tp;
    uint64_t tag;
    tk_model_t model;
    uint64_t next_id;
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->h = harness_new ("chains_across_crash");
    *state = ctx;
    if (!ctx->h) {
        return -1;
    }
    tpk_init (&ctx->tp, ctx->h, "s", SHARDS, PREPARE_TIMEOUT, "200");
    for (int i = 0; i < SHARDS; i++) {
        tpk_start (&ctx->tp, i);
    }
    //  1 and 2 on s1, 3 on s2, 4 and 5 on s3, 6 on s2 (6 is never created).
    static const int owners[] = {0, 0, 1, 2, 2, 1};
    ctx->tag = tpk_find_tag (&ctx->tp, 0x43410000ull, owners, 6);
    for (uint64_t n = 1; n <= 4; n++) {
        rl_account_t a = tk_account (n, ctx->tag, LEDGER, 0);
        rl_result_rec_t r;
        assert_int_equal (
            rl_client_create_accounts (tpk_client_for (&ctx->tp, a.id), &a, 1, &r, TK_TIMEOUT_MS),
            0);
        assert_int_equal (r.result, RL_OK);
    }
    tk_model_init (&ctx->model, ctx->tag, 4);
    ctx->next_id = 1000;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    tpk_close (&ctx->tp);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

//  The chain of a case: 1 -> 2 (held here), 1 -> 3 (s2), and 1 -> 4 (s3)
//  or 1 -> 5 (s3, never created: the business path). Returns its length.
//  legs: 1 -> 2, 3 -> 1 (a debit leg on s2), and 4 -> 2 or 5 -> 2 (s3).
static size_t
s_chain (s_ctx_t *ctx, s_path_t path, int shards, bool legs, rl_transfer_t *c)
{
    uint64_t t = ctx->tag;
    size_t n = 0;
    c[n++] = tk_transfer (tk_id (ctx->next_id++, t), tk_id (1, t), tk_id (2, t), 11, LEDGER);
    c[n++] = legs ? tk_transfer (tk_id (ctx->next_id++, t), tk_id (3, t), tk_id (1, t), 7, LEDGER)
                  : tk_transfer (tk_id (ctx->next_id++, t), tk_id (1, t), tk_id (3, t), 7, LEDGER);
    if (shards == 3 || path == PATH_BUSINESS || path == PATH_INFRA) {
        uint64_t to = path == PATH_BUSINESS ? 5 : 4;
        c[n++] = legs ? tk_transfer (tk_id (ctx->next_id++, t), tk_id (to, t), tk_id (2, t), 5,
                                     LEDGER)
                      : tk_transfer (tk_id (ctx->next_id++, t), tk_id (1, t), tk_id (to, t), 5,
                                     LEDGER);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        c[i].flags = L;
    }
    return n;
}

//  The chain of a kinds case: a pending transfer 1 -> 2, the void of *pa (a
//  pending transfer 1 -> 3 made here first), then the third member as in
//  s_chain (1 -> 4, or 1 -> 5 on the business path).
static size_t
s_chain_kinds (s_ctx_t *ctx, s_path_t path, int shards, rl_transfer_t *c, rl_transfer_t *pa)
{
    uint64_t t = ctx->tag;
    *pa = tk_transfer (tk_id (ctx->next_id++, t), tk_id (1, t), tk_id (3, t), 9, LEDGER);
    pa->flags = RL_TRANSFER_PENDING;
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (ctx->tp.clients[0], pa, 1, &r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_OK);
    size_t n = s_chain (ctx, path, shards, false, c);
    c[0].flags = RL_TRANSFER_PENDING | L;
    c[1] = (rl_transfer_t){.id = c[1].id,
                           .debit_account_id = pa->debit_account_id,
                           .pending_id = pa->id,
                           .flags = RL_TRANSFER_VOID_PENDING_TRANSFER | (n > 2 ? L : 0)};
    return n;
}

//  The chain of an own case: a pending transfer 1 -> 2 of 11 (held here;
//  across: 1 -> 3, its credit leg on s2), a post of 6 of it, and 1 -> 4
//  (s3), or 1 -> 5 on the business path.
static size_t
s_chain_own (s_ctx_t *ctx, s_path_t path, bool across, rl_transfer_t *c)
{
    size_t n = s_chain (ctx, path, 3, false, c);
    assert_int_equal (n, 3);
    c[0].flags = RL_TRANSFER_PENDING | L;
    if (across) {
        c[0].credit_account_id = tk_id (3, ctx->tag);
    }
    c[1] = (rl_transfer_t){.id = c[1].id,
                           .debit_account_id = c[0].debit_account_id,
                           .pending_id = c[0].id,
                           .amount = 6,
                           .flags = RL_TRANSFER_POST_PENDING_TRANSFER | L};
    return n;
}

//  A pending transfer dr -> cr of amount made now (at dr's shard).
static rl_transfer_t
s_pending_now (s_ctx_t *ctx, uint64_t dr, uint64_t cr, uint64_t amount)
{
    uint64_t t = ctx->tag;
    rl_transfer_t p = tk_transfer (tk_id (ctx->next_id++, t), tk_id (dr, t), tk_id (cr, t), amount,
                                   LEDGER);
    p.flags = RL_TRANSFER_PENDING;
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (tpk_client_for (&ctx->tp, p.debit_account_id), &p,
                                                  1, &r, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (r.result, RL_OK);
    return p;
}

//  The chain of a post legs case, its pending transfers made first (p[3]):
//  the void of 1 -> 2 (here: it places the chain here), a capture of 5 of
//  3 -> 1 (a post leg on s2, its credit side here), and on three shards
//  the void of 4 -> 3 (a post leg on s3 naming its credit account, then
//  its credit leg on s2, a third shard), on the business path a capture of
//  more than it holds (s3 refuses it).
static size_t
s_chain_post_legs (s_ctx_t *ctx, s_path_t path, int shards, rl_transfer_t *c, rl_transfer_t *p)
{
    p[0] = s_pending_now (ctx, 1, 2, 8);
    p[1] = s_pending_now (ctx, 3, 1, 9);
    p[2] = s_pending_now (ctx, 4, 3, 6);
    size_t n = shards == 3 || path != PATH_COMMIT ? 3 : 2;
    for (size_t i = 0; i < n; i++) {
        c[i] = (rl_transfer_t){.id = tk_id (ctx->next_id++, ctx->tag),
                               .debit_account_id = p[i].debit_account_id,
                               .pending_id = p[i].id,
                               .flags = RL_TRANSFER_VOID_PENDING_TRANSFER | (i + 1 < n ? L : 0)};
    }
    c[1].flags = RL_TRANSFER_POST_PENDING_TRANSFER | (n > 2 ? L : 0);
    c[1].amount = 5;
    c[2].credit_account_id = p[2].credit_account_id; //  named: its credit leg goes to s2
    if (path == PATH_BUSINESS) {
        c[2].flags = RL_TRANSFER_POST_PENDING_TRANSFER;
        c[2].amount = 99;
    }
    return n;
}

//  The chain of a third case: 1 -> 2 (held here) and 4 -> 3 (its debit leg
//  on s3, its credit leg on s2), and on the business path 4 -> 6 (s2
//  refuses the credit leg: credit_account_not_found).
static size_t
s_chain_third (s_ctx_t *ctx, s_path_t path, rl_transfer_t *c)
{
    uint64_t t = ctx->tag;
    size_t n = 0;
    c[n++] = tk_transfer (tk_id (ctx->next_id++, t), tk_id (1, t), tk_id (2, t), 11, LEDGER);
    c[n++] = tk_transfer (tk_id (ctx->next_id++, t), tk_id (4, t), tk_id (3, t), 7, LEDGER);
    if (path == PATH_BUSINESS) {
        c[n++] = tk_transfer (tk_id (ctx->next_id++, t), tk_id (4, t), tk_id (6, t), 5, LEDGER);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        c[i].flags = L;
    }
    return n;
}

//  Sends the chain to s1; its results into r. -1: no answer in time.
static int
s_send (s_ctx_t *ctx, const rl_transfer_t *c, size_t n, rl_result_rec_t *r, int timeout_ms)
{
    return rl_client_create_transfers (ctx->tp.clients[0], c, n, r, timeout_ms);
}

//  How many members are stored, each asked at its debit account's shard.
static size_t
s_found (s_ctx_t *ctx, const rl_transfer_t *c, size_t n)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        rl_transfer_t out;
        assert_int_equal (
            rl_client_lookup_transfers (tpk_client_for (&ctx->tp, c[i].debit_account_id), &c[i].id,
                                        1, &out, TK_TIMEOUT_MS),
            0);
        found += out.timestamp != 0;
    }
    return found;
}

static bool
s_file_has (const char *path, const char *text)
{
    char *data = harness_read_file (path, NULL);
    bool has = data && strstr (data, text);
    free (data);
    return has;
}

static void
s_run_case (s_ctx_t *ctx, size_t k)
{
    const s_case_t *c = &s_cases[k];
    static char fp_env[SHARDS][256], fp_file_env[SHARDS][600], fp_file[SHARDS][512];
    static const char delay[] = "tp.part.prepare_delay=delay:600";
    const char *points[SHARDS] = {NULL, NULL, NULL};
    points[c->shard] = c->point;
    if (c->other) {
        points[0] = c->other;
    }
    rl_transfer_t chain[3], pa, pl[3];
    size_t n = c->post_legs           ? s_chain_post_legs (ctx, c->path, c->shards, chain, pl)
               : c->own               ? s_chain_own (ctx, c->path, c->own_across, chain)
               : c->third             ? s_chain_third (ctx, c->path, chain)
               : c->kinds && !c->legs ? s_chain_kinds (ctx, c->path, c->shards, chain, &pa)
                                      : s_chain (ctx, c->path, c->shards, c->legs, chain);
    if (c->kinds && (c->legs || c->third)) {
        chain[1].flags |= RL_TRANSFER_PENDING; //  a pending debit leg on s2 (third: s3)
        chain[1].timeout = 3600;
    }
    if ((c->kinds && !c->legs && !c->third) || c->post_legs) {
        tpk_quiet (&ctx->tp); //  pa's own attempt settled before the points are armed
    }
    bool armed[SHARDS] = {false, false, false};
    for (int i = 0; i < SHARDS; i++) {
        bool slow = i == 2 && c->path == PATH_INFRA;
        if (!points[i] && !slow) {
            continue;
        }
        armed[i] = true;
        snprintf (fp_file[i], sizeof (fp_file[i]), "%s/case%zu-fp%d.log", harness_dir (ctx->h), k,
                  i);
        snprintf (fp_file_env[i], sizeof (fp_file_env[i]), "RL_FAILPOINT_FILE=%.511s", fp_file[i]);
        snprintf (fp_env[i], sizeof (fp_env[i]), "RL_FAILPOINTS=%s", slow ? delay : points[i]);
        char *env[] = {fp_env[i], fp_file_env[i], NULL};
        tpk_restart (&ctx->tp, i, env);
    }
    rl_result_rec_t r[3];
    int rc = s_send (ctx, chain, n, r, 1200); //  a coordinator armed dies: no answer
    bool answered_ok = rc == 0 && r[0].result == RL_OK;
    //  Every armed process dies by SIGKILL at its point.
    for (int i = 0; i < SHARDS; i++) {
        if (!points[i]) {
            continue;
        }
        int wstatus = 0;
        if (harness_wait_exit (ctx->h, ctx->tp.shards[i].pid, 15000, &wstatus) != 0) {
            harness_keep (ctx->h);
            fail_msg ("case %zu (%s, %s): %s never died", k, points[i], s_path_names[c->path],
                      ctx->tp.shards[i].name);
        }
        ctx->tp.shards[i].pid = -1;
        assert_true (WIFSIGNALED (wstatus) && WTERMSIG (wstatus) == SIGKILL);
        char name[64];
        snprintf (name, sizeof (name), "%.*s", (int) strcspn (points[i], "="), points[i]);
        assert_true (s_file_has (fp_file[i], name));
    }
    for (int i = 0; i < SHARDS; i++) {
        if (armed[i]) {
            tpk_restart (&ctx->tp, i, NULL);
        }
    }
    tpk_quiet (&ctx->tp);
    size_t found = s_found (ctx, chain, n);
    printf ("  %zu of %zu members applied%s\n", found, n, answered_ok ? " (answered ok)" : "");
    if (found != 0 && found != n) {
        harness_keep (ctx->h);
        fail_msg ("case %zu: a chain applied in part: %zu of %zu members", k, found, n);
    }
    if (answered_ok) {
        assert_int_equal (found, n);
    }
    //  Sent again: exists for each when applied, else decided again.
    assert_int_equal (s_send (ctx, chain, n, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t want = found                      ? RL_EXISTS
                        : c->path != PATH_BUSINESS ? RL_OK
                        : i == n - 1 ? (c->post_legs           ? RL_EXCEEDS_PENDING_TRANSFER_AMOUNT
                                        : c->legs && !c->third ? RL_DEBIT_ACCOUNT_NOT_FOUND
                                                               : RL_CREDIT_ACCOUNT_NOT_FOUND)
                                     : RL_LINKED_EVENT_FAILED;
        if (r[i].result != want) {
            harness_keep (ctx->h);
            fail_msg ("case %zu, member %zu sent again: %s, expected %s", k, i,
                      rl_result_name (r[i].result), rl_result_name (want));
        }
    }
    if (found || c->path != PATH_BUSINESS) {
        for (size_t i = 0; i < n; i++) {
            if (!(chain[i].flags
                  & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER
                     | RL_TRANSFER_POST_PENDING_TRANSFER))) {
                tk_model_apply (&ctx->model, &chain[i]); //  a pending kind posts nothing
            }
        }
        if (c->own) {
            rl_transfer_t posted = chain[0]; //  6 of it posted by its post
            posted.amount = 6;
            tk_model_apply (&ctx->model, &posted);
        }
        if (c->post_legs) {
            rl_transfer_t posted = pl[1]; //  5 of 3 -> 1 captured
            posted.flags = 0, posted.amount = 5;
            tk_model_apply (&ctx->model, &posted);
        }
    }
    //  A member alone (at its debit shard): exists once applied (never
    //  executed on its own). A failed chain's debit leg is released when
    //  its ABORT lands there, after the chain's answer: until then the
    //  member is in_progress at its debit shard.
    if (c->legs || c->third || c->post_legs) {
        tpk_quiet (&ctx->tp);
    }
    rl_transfer_t alone = chain[1];
    alone.flags &= (uint16_t) ~L;
    rl_result_rec_t one;
    assert_int_equal (rl_client_create_transfers (tpk_client_for (&ctx->tp, alone.debit_account_id),
                                                  &alone, 1, &one, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (one.result, c->path == PATH_BUSINESS && !found
                                      ? (c->own ? RL_PENDING_TRANSFER_NOT_FOUND : RL_OK)
                                      : RL_EXISTS);
    if (c->path == PATH_BUSINESS && !found && !c->kinds && !c->own && !c->post_legs) {
        tk_model_apply (&ctx->model, &alone);
    }
    if (c->path == PATH_BUSINESS && !found && c->post_legs) {
        rl_transfer_t posted = pl[1]; //  the capture alone: 5 of 3 -> 1
        posted.flags = 0, posted.amount = 5;
        tk_model_apply (&ctx->model, &posted);
    }
    //  What the chain left pending (the business path: 1 -> 2 and 4 -> 2),
    //  voided at its debit shard.
    for (size_t i = 0; c->post_legs && c->path == PATH_BUSINESS && !found && i < 3; i += 2) {
        rl_transfer_t v = {.id = tk_id (ctx->next_id++, ctx->tag),
                           .debit_account_id = pl[i].debit_account_id,
                           .pending_id = pl[i].id,
                           .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
        assert_int_equal (rl_client_create_transfers (tpk_client_for (&ctx->tp, v.debit_account_id),
                                                      &v, 1, &one, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (one.result, RL_OK);
    }
    if (c->post_legs && n == 2) {
        rl_transfer_t v = {.id = tk_id (ctx->next_id++, ctx->tag),
                           .debit_account_id = pl[2].debit_account_id,
                           .pending_id = pl[2].id,
                           .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
        assert_int_equal (rl_client_create_transfers (tpk_client_for (&ctx->tp, v.debit_account_id),
                                                      &v, 1, &one, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (one.result, RL_OK);
    }
    //  The pending transfer the chain (or, both kinds and legs, the member
    //  alone) made, voided at its debit shard: nothing pending is left.
    if (c->kinds && (found || c->path != PATH_BUSINESS || c->legs || c->third)) {
        const rl_transfer_t *p = c->legs || c->third ? &chain[1] : &chain[0];
        rl_transfer_t v = {.id = tk_id (ctx->next_id++, ctx->tag),
                           .debit_account_id = p->debit_account_id,
                           .pending_id = p->id,
                           .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
        assert_int_equal (
            rl_client_create_transfers (tpk_client_for (&ctx->tp, p->debit_account_id), &v, 1, &one,
                                        TK_TIMEOUT_MS),
            0);
        assert_int_equal (one.result, RL_OK);
    }
    tpk_quiet (&ctx->tp);
    tk_check_conservation_by (tpk_client_for, &ctx->tp, &ctx->model, 1);
}

static void
test_crash_matrix (void **state)
{
    s_ctx_t *ctx = *state;
    //  Every two-phase crash point of the registry has at least one case.
    for (size_t fp = 0; fp < failpoint_count (); fp++) {
        const char *name = failpoint_name ((rl_fp_t) fp);
        if (strncmp (name, "tp.", 3) != 0 || strstr (name, "delay")) {
            continue;
        }
        bool covered = false;
        for (size_t k = 0; k < CASES; k++) {
            covered |= strncmp (s_cases[k].point, name, strlen (name)) == 0
                       && s_cases[k].point[strlen (name)] == '=';
        }
        if (!covered) {
            fail_msg ("failpoint %s has no crash case", name);
        }
    }
    int64_t started = zclock_mono ();
    for (size_t k = 0; k < CASES; k++) {
        printf ("case %zu: %s on %s, %s path, %d shards%s\n", k, s_cases[k].point,
                s_cases[k].shard ? "participant s2" : "coordinator s1",
                s_path_names[s_cases[k].path], s_cases[k].shards,
                s_cases[k].post_legs    ? ", post legs"
                : s_cases[k].own_across ? ", a post of its own pending transfer across"
                : s_cases[k].own        ? ", a post of its own pending transfer"
                : s_cases[k].third && s_cases[k].kinds ? ", a pending credit on a third shard"
                : s_cases[k].third                     ? ", a credit on a third shard"
                : s_cases[k].legs && s_cases[k].kinds  ? ", a pending debit leg"
                : s_cases[k].legs                      ? ", debit legs"
                : s_cases[k].kinds                     ? ", pending kinds"
                                                       : "");
        s_run_case (ctx, k);
    }
    printf ("test_chains_across_crash: %zu cases, %lu transfers, %ld ms\n", CASES,
            (unsigned long) ctx->model.ok, (long) (zclock_mono () - started));
}

static void
test_inflight (void **state)
{
    s_ctx_t *ctx = *state;
    //  The chain stays in flight for 1.5 s: s2 holds its PREPARE that long
    //  and s1 waits up to 3 s for it (its deadline raised to match), so the
    //  checks below never race the chain's end on a loaded machine.
    char *args[] = {
        "--prepare-timeout-ms", "3000", "--deadline-ms", "6000", "--tick-ms", "5", NULL};
    memcpy (ctx->tp.shards[0].args, args, sizeof (args));
    tpk_restart (&ctx->tp, 0, NULL);
    static char env0[] = "RL_FAILPOINTS=tp.part.prepare_delay=delay:1500";
    char *env[] = {env0, NULL};
    tpk_restart (&ctx->tp, 1, env);
    rl_transfer_t chain[3];
    size_t n = s_chain (ctx, PATH_COMMIT, 3, false, chain);
    //  In flight: sent on a client of its own, connected first (a status
    //  call) so that its request has left when it gives up on the answer.
    rl_client_t *early = rl_client_new (ctx->tp.shards[0].endpoint);
    assert_non_null (early);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (early, &status, TK_TIMEOUT_MS), 0);
    uint8_t body[3 * RL_TRANSFER_SIZE];
    for (size_t i = 0; i < n; i++) {
        codec_encode_transfer (&chain[i], body + i * RL_TRANSFER_SIZE);
    }
    rl_header_t rh;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    (void) rl_client_call (early, RL_OP_CREATE_TRANSFERS, body, sizeof (body), (uint32_t) n, 200,
                           &rh, &reply, &reply_size);
    free (reply);
    rl_client_destroy (&early);
    //  Each member alone, and the chain whole: in_progress.
    rl_result_rec_t r[3];
    for (size_t i = 0; i < n; i++) {
        rl_transfer_t alone = chain[i];
        alone.flags = 0;
        assert_int_equal (s_send (ctx, &alone, 1, r, TK_TIMEOUT_MS), 0);
        assert_int_equal (r[0].result, RL_IN_PROGRESS);
    }
    assert_int_equal (s_send (ctx, chain, n, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (r[i].result, RL_IN_PROGRESS);
    }
    tpk_quiet (&ctx->tp);
    assert_int_equal (s_send (ctx, chain, n, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (r[i].result, RL_EXISTS);
        tk_model_apply (&ctx->model, &chain[i]);
    }
    tpk_restart (&ctx->tp, 1, NULL);
    tpk_quiet (&ctx->tp);
    tk_check_conservation_by (tpk_client_for, &ctx->tp, &ctx->model, n);
}

static void
test_inflight_legs (void **state)
{
    s_ctx_t *ctx = *state;
    //  s1 waits up to 3 s (test_inflight raised it); s3 holds its PREPARE
    //  1.5 s, while s2 prepares the debit leg of 3 -> 1 at once.
    char *args[] = {
        "--prepare-timeout-ms", "3000", "--deadline-ms", "6000", "--tick-ms", "5", NULL};
    memcpy (ctx->tp.shards[0].args, args, sizeof (args));
    tpk_restart (&ctx->tp, 0, NULL);
    tpk_restart (&ctx->tp, 1, NULL);
    static char env2[] = "RL_FAILPOINTS=tp.part.prepare_delay=delay:1500";
    char *env[] = {env2, NULL};
    tpk_restart (&ctx->tp, 2, env);
    rl_transfer_t chain[3];
    size_t n = s_chain (ctx, PATH_COMMIT, 3, true, chain);
    rl_client_t *early = rl_client_new (ctx->tp.shards[0].endpoint);
    assert_non_null (early);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (early, &status, TK_TIMEOUT_MS), 0);
    uint8_t body[3 * RL_TRANSFER_SIZE];
    for (size_t i = 0; i < n; i++) {
        codec_encode_transfer (&chain[i], body + i * RL_TRANSFER_SIZE);
    }
    rl_header_t rh;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    (void) rl_client_call (early, RL_OP_CREATE_TRANSFERS, body, sizeof (body), (uint32_t) n, 200,
                           &rh, &reply, &reply_size);
    free (reply);
    rl_client_destroy (&early);
    //  Once s2 holds the debit leg prepared: the member alone there, and
    //  the chain whole at s1, are in_progress.
    int64_t until = zclock_mono () + 1000;
    do {
        assert_int_equal (rl_client_status (ctx->tp.clients[1], &status, TK_TIMEOUT_MS), 0);
    } while (status.in_doubt == 0 && zclock_mono () < until);
    assert_int_equal (status.in_doubt, 1);
    rl_transfer_t alone = chain[1];
    alone.flags = 0;
    rl_result_rec_t r[3];
    assert_int_equal (rl_client_create_transfers (ctx->tp.clients[1], &alone, 1, r, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (r[0].result, RL_IN_PROGRESS);
    assert_int_equal (s_send (ctx, chain, n, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (r[i].result, RL_IN_PROGRESS);
    }
    tpk_quiet (&ctx->tp);
    assert_int_equal (s_send (ctx, chain, n, r, TK_TIMEOUT_MS), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (r[i].result, RL_EXISTS);
        tk_model_apply (&ctx->model, &chain[i]);
    }
    assert_int_equal (rl_client_create_transfers (ctx->tp.clients[1], &alone, 1, r, TK_TIMEOUT_MS),
                      0);
    assert_int_equal (r[0].result, RL_EXISTS);
    tpk_restart (&ctx->tp, 2, NULL);
    tpk_quiet (&ctx->tp);
    tk_check_conservation_by (tpk_client_for, &ctx->tp, &ctx->model, n);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_crash_matrix, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_inflight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_inflight_legs, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
