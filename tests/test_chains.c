/*  test_chains.c: linked chains, rule by rule, on one shard's ledger with
    storage in memory (docs/payments.md, "Linked chains").

    The ledger of shard s1 (of a ring of s1 and s2: odd accounts are s1's,
    even ones s2's) runs on an in-memory file system that keeps what was
    committed across a restart, with an injected wall clock.

    - test_all_ok: a chain of three applies as any three records; a retry
      of the whole chain answers exists for each member, and so does a
      member retried alone without its linked flag.
    - test_one_fails: a member fails; it gets its own code, the others
      linked_event_failed, nothing is applied (balances, lookups), no id
      is burned: the same ids, corrected, apply. Records around the chain
      in the same request are not affected; an exists member of a failed
      chain is answered linked_event_failed.
    - test_chain_open: a batch that ends inside a chain: its last record
      linked_event_chain_open, the chain's others linked_event_failed,
      nothing of it applied.
    - test_pending_members: pending, post and void as members: applied
      together; a failed chain takes back a pending transfer it created, a
      post or void it made (the pending transfer is pending again) and an
      expiry its check found (the tick expires it later).
    - test_shards: in a chain that credits another shard, a member cannot
      spend what an earlier one credits here (held, not posted); a chain
      whose first member's debit account is another shard's makes every
      member wrong_shard.
    - test_across_commit, test_across_abort: chains that credit s2, with
      s2's answers made up: every member held until the last PREPARED,
      then decided in one turn; in_progress for a member sent again alone
      or in its chain while in flight; a refusal (its code, the others
      linked_event_failed, ABORT to the prepared ones), a prepare timeout,
      duplicate, late and forged replies, a crash before the decision's
      commit (nothing left, applied once afterwards), an exists member.
    - test_across_pending: pending transfers, posts and voids in chains
      that credit s2: one made here and one across, then posted and
      voided together; held meanwhile (reserved, claimed: in_progress
      alone, no expiry), pending amounts only at the commit; an abort
      releases the claim and the tick expires it after; a second post or
      void of one pending transfer in the chain (already voided), a post
      of a pending transfer the chain itself makes across shards (an
      attempt towards s2 behind the pending transfer's, claiming nothing;
      at the commit the debit side made and posted at once; refused by s2:
      nothing made, nothing claimed), and of one it makes here (held,
      applied right after it at the commit; its rules: more than its
      amount, already voided); a restart before the decision leaves
      nothing held.
    - test_own_pending_credit: this shard as the credit shard of such a
      chain: the post prepared against the pending transfer's prepared
      credit leg, waiting (a second post or void in_progress), its COMMIT
      before the pending transfer's answered RETRY and its commit by hand
      refused; restarts while it waits and after the pending transfer's
      COMMIT made the credit side (claimed at once, and at load); then
      posted; an aborted chain leaves nothing; a void alone, its pending
      transfer's leg gone, not found.
    - test_own_pending_stale: a post whose group's leg has not come while
      an older attempt's leg is prepared (reordered messages): in_progress,
      not checked against it; a newer attempt of the pending transfer's
      credit leg (another amount, another credit account) committed
      under a waiting post: the post never claims that side (a void of it
      in_progress meanwhile), its COMMIT, before or after a restart, an
      alarm with nothing applied, its ABORT acknowledged; a post whose
      leg was aborted first loads after a restart and waits for its
      ABORT.
    - test_across_pending_limits: claimed pending transfers past their
      timeout hold up no other expiry (more of them than the tick's bound
      for frozen ones); a post of a pending transfer an earlier chain of
      the same request holds is in_progress, not burned, and applies once
      that chain committed.
    - test_pending_room (run alone, as test_chains_room: RL_CASE selects
      tests, RL_SKIP leaves some out): with the pending table nearly full,
      the room a chain's held pending transfer was promised is not given
      to a PREPARE of another shard (busy), and the chain commits into it.
    - test_legs: a chain with a member debiting s2 (its debit leg there):
      the PREPARE's kind, the credit held here, in_progress while in
      flight and while its COMMIT is on its way, answered at s2's
      acknowledgement with s2's timestamp; sent again, s2's exists (no
      decision, nothing posted twice); refused by s2 (its code, nothing
      stored); a pending member (its debit side at s2, its credit side
      here); a chain whose void debits s2 is placed there (wrong_shard
      here), and one whose post debits here runs here though its first
      member debits s2 (a debit leg; the post held, applied at the
      commit).
    - test_post_legs: posts and voids debiting two shards in one chain
      (post legs): this shard as the chain's shard (a void of a pending
      transfer of s2 alone, sent as the client gave it; a capture of one
      crediting this shard, resolved and its credit side claimed here,
      refused at s2 then committed, exists when sent again), and as the
      debit shard of s2's chains (prepared: claimed, across a restart
      past its timeout, committed or aborted; one whose credit side is at
      s2; hostile ones refused, nothing claimed).
    - test_across_hostile_prepare: PREPAREs flagged linked, among good
      ones in one message, refused reserved_field, nothing reserved.
    - test_bad_input: reserved and balancing flags, invalid fields, the
      same id twice in one chain, a long chain failing at its last member.
    - test_crash: a chain whose group commit is lost leaves nothing after
      the restart, a committed one is there whole (checkpoints between).
    - test_across_own_pending: a post or void of a pending transfer an
      earlier member of the same chain across shards makes: before it
      (not found), twice (already posted), held then aborted or cancelled,
      a restart while held, its timeout passing while held (applied right
      after it, nothing expires), an all-local group (the crossing member
      exists), the same post twice in the chain (exists).
    - test_across_two_entries: a cross-shard pending transfer whose two
      sides a ring change brought here (two entries): posted in a chain
      across (both claimed meanwhile: in_progress alone), twice (already
      posted), held past its timeout then aborted (expired once), beside a
      post of a pending transfer the chain makes, a restart while held.
    Every test ends with the audit and conservation.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator.h"
#include "participant.h"
#include "pending.h"
#include "ledgerkit.h"

#define LEDGER LK_LEDGER
#define S_NS   LK_S_NS
#define LINKED RL_TRANSFER_LINKED
#define LONG   1000 //  members of the long chain

//  Sends the records in one request and commits the turn.
static void
s_batch (const rl_transfer_t *t, size_t count, rl_result_rec_t *r)
{
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = (uint32_t) count};
    ledger_reply_t when = ledger_create_transfers (lk_ledger, t, count, lk_now (), NULL, &h, r);
    assert_int_equal (when, LEDGER_REPLY_NOW);
    lk_commit ();
    for (size_t i = 0; i < count; i++) {
        assert_int_equal (r[i].index, i);
    }
}

//  The results of a batch, checked against want (count of them).
static void
s_batch_expect (const rl_transfer_t *t, size_t count, const uint32_t *want)
{
    rl_result_rec_t r[16];
    assert_true (count <= 16);
    s_batch (t, count, r);
    for (size_t i = 0; i < count; i++) {
        if (r[i].result != want[i]) {
            fail_msg ("record %zu: %s, expected %s", i, rl_result_name (r[i].result),
                      rl_result_name (want[i]));
        }
        bool stored = want[i] == RL_OK || want[i] == RL_EXISTS;
        assert_true (stored ? r[i].timestamp != 0 : r[i].timestamp == 0);
    }
}

//  Is the transfer stored as applied (lookup_transfers finds it)?
static bool
s_found (const rl_transfer_t *t)
{
    rl_transfer_t out;
    assert_int_equal (ledger_lookup_transfers (lk_ledger, &t->id, 1, &out), 0);
    return out.timestamp != 0;
}

//  Rules ---------------------------------------------------------------------------

static void
test_all_ok (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    //  1 pays 3, 3 pays 5 out of it, 5 pays back 1: only together can 3
    //  and 5 pay (debits must not exceed credits).
    rl_transfer_t chain[3] = {lk_t (LINKED, 1, 3, 100), lk_t (LINKED, 3, 5, 60),
                              lk_t (0, 5, 1, 10)};
    uint32_t ok[3] = {RL_OK, RL_OK, RL_OK};
    s_batch_expect (chain, 3, ok);
    lk_expect (1, 0, 100, 0, 10);
    lk_expect (3, 0, 60, 0, 100);
    lk_expect (5, 0, 10, 0, 60);
    rl_transfer_t stored;
    assert_int_equal (ledger_lookup_transfers (lk_ledger, &chain[0].id, 1, &stored), 0);
    assert_int_equal (stored.flags, LINKED); //  the record keeps where it stood
    //  The whole chain again: exists for each member, nothing moves.
    uint32_t exists[3] = {RL_EXISTS, RL_EXISTS, RL_EXISTS};
    s_batch_expect (chain, 3, exists);
    //  A member retried alone: linked says where it stood, not what it is.
    rl_transfer_t alone = chain[1];
    alone.flags = 0;
    assert_int_equal (lk_send (&alone), RL_EXISTS);
    //  Alone with its flag it leaves a chain open at the end of its batch.
    assert_int_equal (lk_send (&chain[1]), RL_LINKED_EVENT_CHAIN_OPEN);
    //  Two chains back to back and a record between them.
    rl_transfer_t two[5] = {lk_t (LINKED, 1, 3, 1), lk_t (0, 3, 5, 1), lk_t (0, 1, 5, 1),
                            lk_t (LINKED, 1, 5, 2), lk_t (0, 5, 1, 1)};
    uint32_t ok5[5] = {RL_OK, RL_OK, RL_OK, RL_OK, RL_OK};
    s_batch_expect (two, 5, ok5);
    lk_expect (1, 0, 104, 0, 11);
    lk_expect (3, 0, 61, 0, 101);
    lk_expect (5, 0, 11, 0, 64);
    lk_restart (true);
    s_batch_expect (chain, 3, exists);
    lk_expect (5, 0, 11, 0, 64);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_one_fails (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    rl_transfer_t fund = lk_t (0, 1, 5, 30);
    assert_int_equal (lk_send (&fund), RL_OK);
    //  Before and after the chain, records of their own; the chain's second
    //  member asks 3 for more than the first member gave it.
    rl_transfer_t batch[5] = {lk_t (0, 1, 3, 5), lk_t (LINKED, 1, 3, 100), lk_t (LINKED, 3, 5, 500),
                              lk_t (0, 5, 1, 10), lk_t (0, 5, 1, 1)};
    uint32_t want[5] = {RL_OK, RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS, RL_LINKED_EVENT_FAILED,
                        RL_OK};
    s_batch_expect (batch, 5, want);
    //  Nothing of the chain: only the records around it moved money.
    lk_expect (1, 0, 35, 0, 1);
    lk_expect (3, 0, 0, 0, 5);
    lk_expect (5, 0, 1, 0, 30);
    for (int i = 1; i <= 3; i++) {
        assert_false (s_found (&batch[i]));
    }
    //  The same chain again fails the same way: no id was burned, the
    //  failure was not remembered, so it is decided again.
    s_batch_expect (
        &batch[1], 3,
        (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS, RL_LINKED_EVENT_FAILED});
    //  Corrected (the same ids, the second member's amount within reach):
    //  it applies.
    batch[2].amount = 90;
    s_batch_expect (&batch[1], 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    lk_expect (1, 0, 135, 0, 11);
    lk_expect (3, 0, 90, 0, 105);
    lk_expect (5, 0, 11, 0, 120);
    //  A chain whose first member exists (applied alone before) and whose
    //  last fails: the exists member is answered linked_event_failed too.
    rl_transfer_t more[2] = {batch[0], lk_t (0, 3, 5, 1000)};
    more[0].flags = LINKED;
    s_batch_expect (more, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_true (s_found (&batch[0])); //  applied before, still there
    assert_false (s_found (&more[1]));
    //  ... and one whose first member fails on its idempotency check.
    rl_transfer_t taken[2] = {batch[0], lk_t (0, 1, 3, 1)};
    taken[0].flags = LINKED;
    taken[0].amount = 6;
    s_batch_expect (taken, 2,
                    (uint32_t[]){RL_EXISTS_WITH_DIFFERENT_AMOUNT, RL_LINKED_EVENT_FAILED});
    assert_false (s_found (&taken[1]));
    //  A member whose id was burned before, alone: its burned result.
    rl_transfer_t burned = lk_t (0, 3, 5, 100000);
    assert_int_equal (lk_send (&burned), RL_EXCEEDS_CREDITS);
    rl_transfer_t with_burned[2] = {lk_t (LINKED, 1, 3, 1), burned};
    s_batch_expect (with_burned, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_false (s_found (&with_burned[0]));
    lk_expect (3, 0, 90, 0, 105);
    lk_restart (true);
    lk_expect (1, 0, 135, 0, 11);
    lk_expect (3, 0, 90, 0, 105);
    lk_expect (5, 0, 11, 0, 120);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_chain_open (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    rl_transfer_t batch[3] = {lk_t (0, 1, 3, 5), lk_t (LINKED, 1, 3, 7), lk_t (LINKED, 1, 3, 9)};
    s_batch_expect (batch, 3,
                    (uint32_t[]){RL_OK, RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_CHAIN_OPEN});
    lk_expect (3, 0, 0, 0, 5);
    assert_false (s_found (&batch[1]));
    //  One record, linked: the chain it opens is open at the end.
    s_batch_expect (&batch[1], 1, (uint32_t[]){RL_LINKED_EVENT_CHAIN_OPEN});
    //  Not burned: closed, the same ids apply.
    batch[2].flags = 0;
    s_batch_expect (&batch[1], 2, (uint32_t[]){RL_OK, RL_OK});
    lk_expect (3, 0, 0, 0, 21);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_pending_members (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    //  Authorise and capture part of it in one chain, with a fee.
    rl_transfer_t fund = lk_t (0, 1, 3, 100);
    assert_int_equal (lk_send (&fund), RL_OK);
    rl_transfer_t a[3];
    a[0] = lk_t (RL_TRANSFER_PENDING | LINKED, 3, 5, 50);
    a[1] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &a[0], 20);
    a[2] = lk_t (0, 3, 5, 1);
    s_batch_expect (a, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    lk_expect (3, 0, 21, 0, 100);
    lk_expect (5, 0, 0, 0, 21);
    //  A pending transfer created by a chain that fails is not there.
    rl_transfer_t b[2] = {lk_t (RL_TRANSFER_PENDING | LINKED, 3, 5, 40), lk_t (0, 3, 5, 1000)};
    s_batch_expect (b, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    lk_expect (3, 0, 21, 0, 100);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    rl_transfer_t post_b = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &b[0], 0);
    assert_int_equal (lk_send (&post_b), RL_PENDING_TRANSFER_NOT_FOUND);
    //  A void and a post of one pending transfer in one chain: the post
    //  fails (already voided), and the void is taken back: still pending.
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 3, 5, 30);
    assert_int_equal (lk_send (&p), RL_OK);
    lk_expect (3, 30, 21, 0, 100);
    rl_transfer_t c[2] = {lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &p, 0),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0)};
    s_batch_expect (c, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_ALREADY_VOIDED});
    lk_expect (3, 30, 21, 0, 100);
    lk_expect (5, 0, 0, 30, 21);
    assert_int_equal (ledger_pending_count (lk_ledger), 1);
    lk_conserved (false);
    //  A post in a chain that fails after it: the post is taken back.
    rl_transfer_t d[2] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p, 10),
                          lk_t (0, 5, 1, 10000)};
    s_batch_expect (d, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    lk_expect (3, 30, 21, 0, 100);
    lk_conserved (false);
    //  The same records after a commit and a restart: the state comes from
    //  the store, still pending; then the void alone applies.
    lk_restart (true);
    lk_expect (3, 30, 21, 0, 100);
    c[0].flags = RL_TRANSFER_VOID_PENDING_TRANSFER; //  alone, its chain closed
    assert_int_equal (lk_send (&c[0]), RL_OK);      //  its id was not burned
    lk_expect (3, 0, 21, 0, 100);
    //  An expiry that a member's check finds is taken back with the chain,
    //  and the tick expires the transfer for good.
    rl_transfer_t e = lk_t (RL_TRANSFER_PENDING, 3, 5, 25);
    e.timeout = 1;
    assert_int_equal (lk_send (&e), RL_OK);
    lk_wall += 2 * S_NS;
    rl_transfer_t f[2] = {lk_t (LINKED, 1, 3, 1),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &e, 0)};
    s_batch_expect (f, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_EXPIRED});
    lk_conserved (false);
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (3, 0, 21, 0, 100);
    assert_int_equal (lk_send (&f[1]), RL_PENDING_TRANSFER_EXPIRED);
    lk_restart (true);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    lk_expect (3, 0, 21, 0, 100);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_shards (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    //  Account 2 is s2's: the chain needs s2, so its members' credits here
    //  are held (reserved) until it is decided, and a later member cannot
    //  spend them: 3 pays out of what the first member gives it.
    rl_transfer_t a[3] = {lk_t (LINKED, 1, 3, 5), lk_t (LINKED, 3, 2, 1), lk_t (0, 1, 5, 1)};
    s_batch_expect (
        a, 3, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS, RL_LINKED_EVENT_FAILED});
    //  A chain whose first member's debit account is s2's (the chain is
    //  s2's): every member wrong_shard, so that a router sends it again
    //  whole. (A later member debiting s2's account is a debit leg there:
    //  test_legs.)
    rl_transfer_t b[3] = {lk_t (LINKED, 2, 3, 1), lk_t (LINKED, 1, 3, 5), lk_t (0, 1, 5, 1)};
    s_batch_expect (b, 3, (uint32_t[]){RL_WRONG_SHARD, RL_WRONG_SHARD, RL_WRONG_SHARD});
    lk_expect (1, 0, 0, 0, 0);
    lk_expect (3, 0, 0, 0, 0);
    lk_conserved (true);
    lk_teardown ();
}

//  Chains across shards, driven by hand: this ledger is s1, the
//  coordinator; s2's answers to its PREPAREs are made up here.

//  The messages of the turn: the PREPAREs (copied into prep, count in
//  *n_prep), the DECIDEs (their decisions in dec), and the reply's
//  results (copied into results; false when no reply was queued).
static bool
s_turn (rl_prepare_rec_t *prep, size_t *n_prep, rl_tp_rec_t *dec, size_t *n_dec,
        rl_result_rec_t *results, size_t count)
{
    bool replied = false;
    *n_prep = *n_dec = 0;
    for (size_t k = 0; k < outq_count (lk_outq); k++) {
        outq_msg_t *m = outq_at (lk_outq, k);
        assert_true (*n_prep < 16 && *n_dec < 16);
        if (m->kind == OUTQ_PREPARE) {
            assert_int_equal (m->peer, 1); //  s2
            prep[(*n_prep)++] = m->prepare;
        } else if (m->kind == OUTQ_DECIDE) {
            dec[(*n_dec)++] = m->tp;
        } else if (m->kind == OUTQ_REPLY) {
            assert_int_equal (m->reply.count, count);
            memcpy (results, m->reply.results, count * sizeof (*results));
            free (m->reply.results);
            m->reply.results = NULL;
            replied = true;
        }
    }
    lk_commit ();
    return replied;
}

//  Sends a chain that needs s2; it waits for s2 (reply later); its PREPAREs
//  into prep (how many: the return).
static size_t
s_across_send (const rl_transfer_t *t, size_t count, rl_prepare_rec_t *prep)
{
    rl_result_rec_t r[128];
    assert_true (count <= 128);
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = (uint32_t) count};
    if (ledger_create_transfers (lk_ledger, t, count, lk_now (), NULL, &h, r)
        != LEDGER_REPLY_LATER) {
        fail_msg ("answered at once: record 0 %s, record %zu %s", rl_result_name (r[0].result),
                  count - 1, rl_result_name (r[count - 1].result));
    }
    size_t n_prep = 0, n_dec = 0;
    rl_tp_rec_t dec[16];
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, count));
    assert_int_equal (n_dec, 0);
    for (size_t k = 0; k < n_prep; k++) {
        //  As the transfer it is at s2 (plain, or a pending kind).
        assert_int_equal (prep[k].transfer.flags & ~PENDING_FLAGS, 0);
    }
    return n_prep;
}

//  s2 answers PREPARE prep with state (result when refused); the turn's
//  messages as s_turn's.
static bool
s_answer (const rl_prepare_rec_t *prep, uint32_t state, uint32_t result, rl_tp_rec_t *dec,
          size_t *n_dec, rl_result_rec_t *results, size_t count)
{
    rl_tp_rec_t reply = prep->tp;
    reply.state = state;
    reply.result = result;
    coordinator_prepare_replies (ledger_coordinator (lk_ledger), &reply, 1, "s2", lk_now ());
    rl_prepare_rec_t none[16];
    size_t n_prep = 0;
    bool replied = s_turn (none, &n_prep, dec, n_dec, results, count);
    assert_int_equal (n_prep, 0);
    return replied;
}

static void
s_results (const rl_result_rec_t *r, size_t count, const uint32_t *want)
{
    for (size_t i = 0; i < count; i++) {
        if (r[i].result != want[i]) {
            fail_msg ("record %zu: %s, expected %s", i, rl_result_name (r[i].result),
                      rl_result_name (want[i]));
        }
        bool stored = want[i] == RL_OK || want[i] == RL_EXISTS;
        assert_true (stored ? r[i].timestamp != 0 : r[i].timestamp == 0);
    }
}

//  Is the attempt tp among the DECIDEs, with that decision?
static bool
s_decided (const rl_tp_rec_t *dec, size_t n_dec, const rl_tp_rec_t *tp, uint32_t state)
{
    for (size_t k = 0; k < n_dec; k++) {
        if (rl_id_eq (dec[k].id, tp->id) && dec[k].attempt.seq == tp->attempt.seq
            && dec[k].state == state) {
            return true;
        }
    }
    return false;
}

static void
test_across_commit (void **state)
{
    (void) state;
    lk_setup ("/chains/across");
    //  1 pays 3 here, and 2 and 4 at s2: one group, two PREPAREs.
    rl_transfer_t c[3] = {lk_t (LINKED, 1, 3, 10), lk_t (LINKED, 1, 2, 20), lk_t (0, 1, 4, 30)};
    rl_prepare_rec_t prep[16];
    assert_int_equal (s_across_send (c, 3, prep), 2);
    //  Held, not posted: 3's credit reserved, 1's three debits reserved.
    rl_account_t a1 = lk_account (1), a3 = lk_account (3);
    assert_int_equal (a1.debits_reserved, 60);
    assert_int_equal (a1.debits_posted, 0);
    assert_int_equal (a3.credits_reserved, 10);
    assert_int_equal (a3.credits_posted, 0);
    char err[256];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  Listed in doubt, the held member with its credit account (a
    //  migration's drain waits for it: shard/migrate.c, s_inflight).
    rl_in_doubt_rec_t listed[8];
    assert_int_equal (ledger_in_doubt (lk_ledger, listed, 8), 3);
    bool held = false;
    for (int k = 0; k < 3; k++) {
        held |= rl_id_eq (listed[k].prepare.transfer.id, c[0].id)
                && rl_id_eq (listed[k].prepare.transfer.credit_account_id, lk_acc (3))
                && listed[k].prepare.tp.state == RL_TP_PENDING
                && listed[k].prepare.reserved[1] == RL_ROLE_COORDINATOR;
    }
    assert_true (held);
    //  Every member is in flight, the local one too: alone or in the
    //  chain, in_progress, nothing begun twice.
    rl_transfer_t alone = c[0];
    alone.flags = 0;
    assert_int_equal (lk_send (&alone), RL_IN_PROGRESS);
    alone = c[2];
    assert_int_equal (lk_send (&alone), RL_IN_PROGRESS);
    s_batch_expect (c, 3, (uint32_t[]){RL_IN_PROGRESS, RL_IN_PROGRESS, RL_IN_PROGRESS});
    //  One PREPARED (twice: counted once): still waiting for the other.
    rl_tp_rec_t dec[16];
    rl_result_rec_t r[3];
    size_t n_dec = 0;
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    assert_int_equal (n_dec, 0);
    //  The last one: every member decided in one turn, two COMMITs.
    assert_true (s_answer (&prep[1], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    assert_int_equal (n_dec, 2);
    assert_int_equal (dec[0].state, RL_TP_COMMIT);
    assert_int_equal (dec[1].state, RL_TP_COMMIT);
    lk_expect (1, 0, 60, 0, 0);
    lk_expect (3, 0, 0, 0, 10);
    assert_int_equal (lk_account (1).debits_reserved + lk_account (3).credits_reserved, 0);
    //  A late PREPARED changes nothing; the chain is there after a restart.
    assert_false (s_answer (&prep[1], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    lk_restart (true);
    s_batch_expect (c, 3, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS});
    alone = c[1];
    alone.flags = 0;
    assert_int_equal (lk_send (&alone), RL_EXISTS);
    lk_expect (1, 0, 60, 0, 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

static void
test_across_pending (void **state)
{
    (void) state;
    lk_setup ("/chains/pending");
    char err[256];
    rl_tp_rec_t dec[16];
    rl_result_rec_t r[4];
    size_t n_dec = 0;
    //  A pending transfer here (1 to 3) and one across (1 to 2, with a
    //  timeout), with a fee across: one group, two PREPAREs.
    rl_transfer_t a[3] = {lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 30),
                          lk_t (RL_TRANSFER_PENDING | LINKED, 1, 2, 20), lk_t (0, 1, 4, 5)};
    a[1].timeout = 60;
    rl_prepare_rec_t prep[16];
    assert_int_equal (s_across_send (a, 3, prep), 2);
    assert_int_equal (prep[0].transfer.flags, RL_TRANSFER_PENDING); //  without linked
    assert_int_equal (prep[0].transfer.timeout, 60);
    //  Held: reserved, nothing pending yet.
    assert_int_equal (lk_account (1).debits_reserved, 55);
    assert_int_equal (lk_account (3).credits_reserved, 30);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    assert_true (s_answer (&prep[1], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    assert_int_equal (n_dec, 2);
    lk_expect (1, 50, 5, 0, 0);
    lk_expect (3, 0, 0, 30, 0);
    assert_int_equal (lk_account (1).debits_reserved + lk_account (3).credits_reserved, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 2);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  Capture part of the one here and release the one across, with a fee,
    //  in one chain: the void across makes it a group (its PREPARE), the
    //  post here is held, its pending transfer claimed.
    rl_transfer_t b[3] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &a[0], 10),
                          lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &a[1], 0),
                          lk_t (0, 1, 3, 1)};
    assert_int_equal (s_across_send (b, 3, prep), 1);
    assert_int_equal (prep[0].transfer.flags, RL_TRANSFER_VOID_PENDING_TRANSFER);
    assert_true (rl_id_eq (prep[0].transfer.credit_account_id, lk_acc (2)));
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0); //  a claim reserves nothing
    rl_transfer_t again = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &a[0], 0);
    assert_int_equal (lk_send (&again), RL_IN_PROGRESS); //  claimed by the chain
    assert_int_equal (lk_send (&again), RL_IN_PROGRESS);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    lk_expect (1, 0, 16, 0, 0);
    lk_expect (3, 0, 0, 0, 11);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    assert_int_equal (lk_send (&again), RL_PENDING_TRANSFER_ALREADY_POSTED);
    //  A chain whose other shard refuses: the post here is released, and its
    //  pending transfer, which fell due while claimed, expires at the tick.
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 1, 3, 40);
    p.timeout = 1;
    assert_int_equal (lk_send (&p), RL_OK);
    rl_transfer_t c[2] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p, 0),
                          lk_t (0, 1, 2, 2)};
    assert_int_equal (s_across_send (c, 2, prep), 1);
    lk_wall += 2 * S_NS;
    lk_mono += 1000000; //  within the prepare timeout
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (1, 40, 16, 0, 0); //  claimed: not expired
    assert_true (s_answer (&prep[0], RL_TP_REFUSED, RL_EXCEEDS_CREDITS, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    lk_expect (1, 40, 16, 0, 0);
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (1, 0, 16, 0, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    c[0].flags = RL_TRANSFER_POST_PENDING_TRANSFER; //  its id was not burned
    assert_int_equal (lk_send (&c[0]), RL_PENDING_TRANSFER_EXPIRED);
    //  One pending transfer resolved twice in a chain: the second answered
    //  as on one shard; nothing sent, nothing held.
    rl_transfer_t q = lk_t (RL_TRANSFER_PENDING, 1, 3, 7);
    assert_int_equal (lk_send (&q), RL_OK);
    rl_transfer_t d[3] = {lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &q, 0),
                          lk_t (LINKED, 1, 2, 1),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &q, 0)};
    s_batch_expect (d, 3,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED,
                                 RL_PENDING_TRANSFER_ALREADY_VOIDED});
    //  A post of a pending transfer the same chain makes across shards (7
    //  to s2's 2): both go to s2 in the group, the post prepared there
    //  against the pending transfer's credit leg; at the commit its debit
    //  side is added here and posted at once (all 3), both answered ok.
    rl_account_t e7 = lk_account (7);
    rl_transfer_t e[2] = {lk_t (RL_TRANSFER_PENDING | LINKED, 7, 2, 3), lk_t (0, 0, 0, 0)};
    e[1] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &e[0], 0);
    assert_int_equal (s_across_send (e, 2, prep), 2);
    assert_int_equal (prep[1].transfer.flags, RL_TRANSFER_POST_PENDING_TRANSFER);
    assert_true (rl_id_eq (prep[1].transfer.pending_id, e[0].id));
    assert_int_equal (prep[1].transfer.amount, 3); //  resolved here: all of it
    assert_true (rl_id_eq (prep[1].transfer.credit_account_id, e[0].credit_account_id));
    assert_int_equal (lk_account (7).debits_reserved, 3);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_true (s_answer (&prep[1], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 2);
    assert_true (dec[0].state == RL_TP_COMMIT && dec[1].state == RL_TP_COMMIT);
    assert_true (rl_id_eq (dec[0].id, e[0].id)); //  the pending transfer's COMMIT first
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    assert_int_equal (lk_account (7).debits_posted, e7.debits_posted + 3);
    assert_int_equal (lk_account (7).debits_pending, e7.debits_pending);
    assert_int_equal (lk_account (7).debits_reserved, 0);
    s_batch_expect (&e[1], 1, (uint32_t[]){RL_EXISTS});
    //  Refused by s2: nothing applied, nothing claimed, nothing burned.
    rl_transfer_t e2[2] = {lk_t (RL_TRANSFER_PENDING | LINKED, 7, 2, 4), lk_t (0, 0, 0, 0)};
    e2[1] = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &e2[0], 0);
    assert_int_equal (s_across_send (e2, 2, prep), 2);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_true (s_answer (&prep[1], RL_TP_REFUSED, RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE, dec,
                           &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE});
    assert_int_equal (lk_account (7).debits_reserved, 0);
    assert_int_equal (lk_account (7).debits_pending, e7.debits_pending);
    assert_false (s_found (&e2[0]));
    assert_false (s_found (&e2[1]));
    assert_int_equal (lk_account (1).debits_reserved, 0);
    lk_expect (1, 7, 16, 0, 0); //  q still pending, unclaimed
    //  A post of a pending transfer of this shard (1 to 3) that the same
    //  chain across shards makes: held after it, applied right after it at
    //  the commit (12 of 20 posted, the rest released).
    rl_account_t a3 = lk_account (3);
    size_t pending_before = ledger_pending_count (lk_ledger);
    rl_transfer_t g[3] = {lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 20), lk_t (0, 0, 0, 0),
                          lk_t (0, 1, 2, 1)};
    g[1] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &g[0], 12);
    assert_int_equal (s_across_send (g, 3, prep), 1);
    assert_int_equal (lk_account (1).debits_reserved, 21);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    lk_expect (1, 7, 29, 0, 0);
    assert_int_equal (lk_account (3).credits_posted, a3.credits_posted + 12);
    assert_int_equal (lk_account (3).credits_pending, a3.credits_pending);
    assert_int_equal (ledger_pending_count (lk_ledger), pending_before);
    s_batch_expect (g, 3, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS});
    rl_transfer_t g2 = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &g[0], 0);
    assert_int_equal (lk_send (&g2), RL_PENDING_TRANSFER_ALREADY_POSTED);
    //  Its rules: more than its amount, a void then a post of it in one
    //  chain (already voided): the chain fails, nothing held or applied.
    rl_transfer_t h[3] = {lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 5), lk_t (0, 0, 0, 0),
                          lk_t (0, 1, 2, 1)};
    h[1] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &h[0], 6);
    s_batch_expect (h, 3,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_PENDING_TRANSFER_AMOUNT,
                                 RL_LINKED_EVENT_FAILED});
    rl_transfer_t v4[4] = {h[0], lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &h[0], 0),
                           lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &h[0], 0),
                           lk_t (0, 1, 2, 1)};
    s_batch_expect (v4, 4,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED,
                                 RL_PENDING_TRANSFER_ALREADY_VOIDED, RL_LINKED_EVENT_FAILED});
    assert_int_equal (lk_account (1).debits_reserved, 0);
    lk_expect (1, 7, 29, 0, 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  A restart before the decision: nothing held, q free again.
    rl_transfer_t f[2] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &q, 0),
                          lk_t (0, 1, 2, 1)};
    assert_int_equal (s_across_send (f, 2, prep), 1);
    lk_restart (false);
    lk_expect (1, 7, 29, 0, 0);
    assert_int_equal (lk_account (1).debits_reserved, 0);
    f[0].flags = RL_TRANSFER_POST_PENDING_TRANSFER;
    assert_int_equal (lk_send (&f[0]), RL_OK);
    lk_expect (1, 0, 36, 0, 0);
    lk_expect (3, 0, 0, 0, 30);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  A PREPARE from s2 of transfer t (its attempt: seq).
static rl_prepare_rec_t
s_prepare_from_s2 (const rl_transfer_t *t, uint64_t seq)
{
    rl_prepare_rec_t rec = {.transfer = *t};
    rec.tp.id = t->id;
    rec.tp.attempt = (rl_attempt_t){.counter = 1, .nonce = 7, .seq = seq};
    rec.tp.amount = t->amount;
    rec.tp.debit_account_id = t->debit_account_id;
    snprintf (rec.tp.coordinator, sizeof (rec.tp.coordinator), "s2");
    return rec;
}

//  A post or void of pending transfer p as s2 resolves it (its fields
//  inherited), amount given.
static rl_transfer_t
s_resolved_by_s2 (uint16_t flags, const rl_transfer_t *p, uint64_t amount)
{
    rl_transfer_t t = lk_resolve (flags, p, amount);
    t.credit_account_id = p->credit_account_id;
    t.ledger = p->ledger;
    t.code = p->code;
    return t;
}

//  s2 decides attempt tp (state); the acknowledgement's state.
static uint32_t
s_decide_from_s2 (const rl_tp_rec_t *tp, uint32_t state)
{
    rl_tp_rec_t d = *tp, ack;
    d.state = state;
    participant_decide (ledger_participant (lk_ledger), &d, 1, "s2", lk_now (), &ack);
    lk_commit ();
    return ack.state;
}

//  s2 prepares rec here; the reply (its result in *result_p).
static uint32_t
s_prepare_here (const rl_prepare_rec_t *rec, uint32_t *result_p)
{
    rl_tp_rec_t out;
    participant_prepare (ledger_participant (lk_ledger), rec, 1, "s2", lk_now (), &out);
    lk_commit ();
    *result_p = out.result;
    return out.state;
}

//  This ledger as the credit shard of chains of s2 that make a pending
//  transfer (s2's 2 to 1 here) and post or void it: the post is prepared
//  against the pending transfer's prepared credit leg and claims the
//  credit side once its COMMIT made it.
static void
test_own_pending_credit (void **state)
{
    (void) state;
    lk_setup ("/chains/own_credit");
    char err[256];
    uint32_t result = 0;
    rl_account_t a1 = lk_account (1);
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 2, 1, 5);
    rl_transfer_t post = s_resolved_by_s2 (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 3);
    rl_prepare_rec_t in[2] = {s_prepare_from_s2 (&p, 1), s_prepare_from_s2 (&post, 2)};
    assert_int_equal (s_prepare_here (&in[0], &result), RL_TP_PREPARED);
    assert_int_equal (s_prepare_here (&in[1], &result), RL_TP_PREPARED);
    assert_int_equal (lk_account (1).credits_reserved, a1.credits_reserved + 5);
    //  Meanwhile: a second post or void of it is in_progress (one at a
    //  time); one that does not match p gets its code; from another
    //  coordinator's key, unauthorized.
    rl_transfer_t other = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 5);
    rl_prepare_rec_t in_other = s_prepare_from_s2 (&other, 3);
    assert_int_equal (s_prepare_here (&in_other, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_IN_PROGRESS);
    rl_transfer_t big = s_resolved_by_s2 (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 6);
    rl_prepare_rec_t in_big = s_prepare_from_s2 (&big, 4);
    assert_int_equal (s_prepare_here (&in_big, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_IN_PROGRESS); //  the waiting post holds it first
    //  The post's COMMIT before the pending transfer's: retried, nothing
    //  applied; an operator's commit of it by hand: its credit leg first.
    assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_RETRY);
    rl_tp_rec_t by_hand = in[1].tp;
    by_hand.state = RL_TP_COMMIT;
    assert_int_equal (participant_resolve (ledger_participant (lk_ledger), &by_hand, lk_now ()),
                      RL_RESOLVE_LEG_FIRST);
    assert_int_equal (lk_account (1).credits_pending, a1.credits_pending);
    //  A restart keeps both prepared, the post waiting.
    lk_restart (true);
    assert_int_equal (lk_account (1).credits_reserved, a1.credits_reserved + 5);
    assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_RETRY);
    //  The pending transfer's COMMIT makes the credit side, which the post
    //  claims at once (another void is in_progress), and after a restart too.
    assert_int_equal (s_decide_from_s2 (&in[0].tp, RL_TP_COMMIT), RL_TP_ACKED);
    assert_int_equal (lk_account (1).credits_pending, a1.credits_pending + 5);
    assert_int_equal (lk_account (1).credits_reserved, a1.credits_reserved);
    assert_int_equal (s_prepare_here (&in_other, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_IN_PROGRESS);
    lk_restart (true);
    in_other.tp.attempt.seq = 5;
    assert_int_equal (s_prepare_here (&in_other, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_IN_PROGRESS);
    //  The post's COMMIT: 3 posted, 2 released.
    assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_ACKED);
    assert_int_equal (lk_account (1).credits_pending, a1.credits_pending);
    assert_int_equal (lk_account (1).credits_posted, a1.credits_posted + 3);
    assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_ACKED); //  resent
    assert_int_equal (lk_account (1).credits_posted, a1.credits_posted + 3);
    //  A chain that aborts: its void waits, both aborted; nothing left
    //  reserved, claimed or made; sent again, refused (tombstones).
    rl_transfer_t q = lk_t (RL_TRANSFER_PENDING, 2, 1, 4);
    rl_transfer_t qv = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER, &q, 4);
    rl_prepare_rec_t qin[2] = {s_prepare_from_s2 (&q, 11), s_prepare_from_s2 (&qv, 12)};
    assert_int_equal (s_prepare_here (&qin[0], &result), RL_TP_PREPARED);
    assert_int_equal (s_prepare_here (&qin[1], &result), RL_TP_PREPARED);
    assert_int_equal (s_decide_from_s2 (&qin[1].tp, RL_TP_ABORT), RL_TP_ACKED);
    assert_int_equal (s_decide_from_s2 (&qin[0].tp, RL_TP_ABORT), RL_TP_ACKED);
    assert_int_equal (lk_account (1).credits_reserved, a1.credits_reserved);
    assert_int_equal (lk_account (1).credits_pending, a1.credits_pending);
    assert_int_equal (s_prepare_here (&qin[1], &result), RL_TP_REFUSED);
    //  Its void alone, without its pending transfer's credit leg: not found.
    rl_transfer_t lone = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER, &q, 4);
    rl_prepare_rec_t lone_in = s_prepare_from_s2 (&lone, 13);
    assert_int_equal (s_prepare_here (&lone_in, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_PENDING_TRANSFER_NOT_FOUND);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  The alarms this ledger's participant counted.
static uint64_t
s_alarms (void)
{
    uint64_t prepared = 0, alarms = 0;
    participant_counts (ledger_participant (lk_ledger), &prepared, &alarms);
    return alarms;
}

//  Hostile and out-of-order decisions about a waiting post: a newer attempt
//  of its pending transfer's credit leg (another amount, or another credit
//  account) supersedes the leg it was checked against and commits; the
//  stale post never claims that side (a void of it waits for the stale
//  post's end, in_progress), and its COMMIT, with or without a restart in
//  between, is an alarm, nothing applied. Then a post whose leg was
//  aborted before it survives a restart, its COMMIT an alarm, its ABORT
//  acknowledged. Nothing moves but what the commits say.
static void
test_own_pending_stale (void **state)
{
    (void) state;
    lk_setup ("/chains/own_stale");
    char err[256];
    uint32_t result = 0;
    uint64_t seq = 1;
    for (int variant = 0; variant < 4; variant++) {
        bool amount = variant % 2 == 0, restart = variant >= 2;
        rl_account_t a1 = lk_account (1), a3 = lk_account (3);
        rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 2, 1, 5);
        rl_transfer_t post = s_resolved_by_s2 (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 5);
        rl_prepare_rec_t in[2] = {s_prepare_from_s2 (&p, seq), s_prepare_from_s2 (&post, seq + 1)};
        assert_int_equal (s_prepare_here (&in[0], &result), RL_TP_PREPARED);
        assert_int_equal (s_prepare_here (&in[1], &result), RL_TP_PREPARED);
        rl_transfer_t p2 = p;
        if (amount) {
            p2.amount = 1;
        } else {
            p2.credit_account_id = lk_acc (3);
        }
        rl_prepare_rec_t in2 = s_prepare_from_s2 (&p2, seq + 2);
        assert_int_equal (s_prepare_here (&in2, &result), RL_TP_PREPARED);
        assert_int_equal (s_decide_from_s2 (&in2.tp, RL_TP_COMMIT), RL_TP_ACKED);
        rl_transfer_t v = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER, &p2, p2.amount);
        rl_prepare_rec_t vin = s_prepare_from_s2 (&v, seq + 3);
        assert_int_equal (s_prepare_here (&vin, &result), RL_TP_REFUSED);
        assert_int_equal (result, RL_IN_PROGRESS);
        if (restart) {
            lk_restart (true);
        }
        uint64_t alarms = s_alarms ();
        assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_NOT_ACKED);
        assert_int_equal (s_alarms (), alarms + 1);
        rl_account_t credited = lk_account (amount ? 1 : 3);
        rl_account_t before = amount ? a1 : a3;
        assert_int_equal (credited.credits_posted, before.credits_posted);
        assert_int_equal (credited.credits_pending, before.credits_pending + p2.amount);
        //  Its ABORT (the real decision): acknowledged; the void then goes.
        assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_ABORT), RL_TP_ACKED);
        vin.tp.attempt.seq = seq + 4;
        assert_int_equal (s_prepare_here (&vin, &result), RL_TP_PREPARED);
        assert_int_equal (s_decide_from_s2 (&vin.tp, RL_TP_COMMIT), RL_TP_ACKED);
        assert_int_equal (lk_account (amount ? 1 : 3).credits_pending, before.credits_pending);
        assert_int_equal (lk_account (amount ? 1 : 3).credits_posted, before.credits_posted);
        assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
        seq += 10;
    }
    //  A newer attempt of the leg with the same fields, prepared when the
    //  shard restarts: the post, reloaded, does not take it for its own
    //  (a later sequence), so its COMMIT stays an alarm, before and after
    //  that leg commits, and a commit by hand is refused (no side to wait
    //  for: abort it).
    {
        rl_account_t b1 = lk_account (1);
        rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 2, 1, 5);
        rl_transfer_t post = s_resolved_by_s2 (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 5);
        rl_prepare_rec_t in[2] = {s_prepare_from_s2 (&p, seq), s_prepare_from_s2 (&post, seq + 1)};
        assert_int_equal (s_prepare_here (&in[0], &result), RL_TP_PREPARED);
        assert_int_equal (s_prepare_here (&in[1], &result), RL_TP_PREPARED);
        rl_prepare_rec_t in2 = s_prepare_from_s2 (&p, seq + 2);
        assert_int_equal (s_prepare_here (&in2, &result), RL_TP_PREPARED);
        lk_restart (true);
        assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_NOT_ACKED);
        assert_int_equal (s_decide_from_s2 (&in2.tp, RL_TP_COMMIT), RL_TP_ACKED);
        assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_NOT_ACKED);
        rl_tp_rec_t by_hand = in[1].tp;
        by_hand.state = RL_TP_COMMIT;
        assert_int_equal (participant_resolve (ledger_participant (lk_ledger), &by_hand, lk_now ()),
                          RL_RESOLVE_NO_SIDE);
        assert_int_equal (lk_account (1).credits_posted, b1.credits_posted);
        assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_ABORT), RL_TP_ACKED);
        rl_transfer_t v = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 5);
        rl_prepare_rec_t vin = s_prepare_from_s2 (&v, seq + 3);
        assert_int_equal (s_prepare_here (&vin, &result), RL_TP_PREPARED);
        assert_int_equal (s_decide_from_s2 (&vin.tp, RL_TP_COMMIT), RL_TP_ACKED);
        assert_int_equal (lk_account (1).credits_pending, b1.credits_pending);
        seq += 10;
    }
    //  Messages reordered: an older attempt's leg still prepared (its ABORT
    //  late) when the newer chain's post comes before the newer leg: the
    //  post is not checked against a leg of another group (in_progress,
    //  nothing prepared); the newer leg then supersedes the older one, and
    //  the post sent again after it waits for it and posts at its commit.
    {
        rl_account_t b1 = lk_account (1);
        rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 2, 1, 5);
        rl_transfer_t post = s_resolved_by_s2 (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 3);
        rl_prepare_rec_t old = s_prepare_from_s2 (&p, seq);
        assert_int_equal (s_prepare_here (&old, &result), RL_TP_PREPARED);
        rl_prepare_rec_t in[2] = {s_prepare_from_s2 (&p, seq + 2),
                                  s_prepare_from_s2 (&post, seq + 3)};
        in[0].tp.attempt.counter = in[1].tp.attempt.counter = 2; //  s2 restarted since
        assert_int_equal (s_prepare_here (&in[1], &result), RL_TP_REFUSED);
        assert_int_equal (result, RL_IN_PROGRESS);
        assert_int_equal (s_prepare_here (&in[0], &result), RL_TP_PREPARED);
        in[1].tp.attempt.seq = seq + 4;
        assert_int_equal (s_prepare_here (&in[1], &result), RL_TP_PREPARED);
        assert_int_equal (s_decide_from_s2 (&old.tp, RL_TP_ABORT), RL_TP_ACKED);
        assert_int_equal (s_decide_from_s2 (&in[0].tp, RL_TP_COMMIT), RL_TP_ACKED);
        assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_ACKED);
        assert_int_equal (lk_account (1).credits_posted, b1.credits_posted + 3);
        assert_int_equal (lk_account (1).credits_pending, b1.credits_pending);
        seq += 10;
    }
    //  The group's ABORT of the pending transfer's leg applied, the post's
    //  not yet, then a restart: the post loads waiting for nothing; a
    //  COMMIT of it is an alarm, its ABORT acknowledged.
    rl_account_t a1 = lk_account (1);
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 2, 1, 5);
    rl_transfer_t post = s_resolved_by_s2 (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 5);
    rl_prepare_rec_t in[2] = {s_prepare_from_s2 (&p, seq), s_prepare_from_s2 (&post, seq + 1)};
    assert_int_equal (s_prepare_here (&in[0], &result), RL_TP_PREPARED);
    assert_int_equal (s_prepare_here (&in[1], &result), RL_TP_PREPARED);
    assert_int_equal (s_decide_from_s2 (&in[0].tp, RL_TP_ABORT), RL_TP_ACKED);
    lk_restart (true);
    assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_COMMIT), RL_TP_NOT_ACKED);
    assert_int_equal (s_decide_from_s2 (&in[1].tp, RL_TP_ABORT), RL_TP_ACKED);
    rl_account_t after = lk_account (1);
    assert_int_equal (after.credits_posted, a1.credits_posted);
    assert_int_equal (after.credits_pending + after.credits_reserved,
                      a1.credits_pending + a1.credits_reserved);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

static void
test_across_pending_limits (void **state)
{
    (void) state;
    lk_setup ("/chains/limits");
    char err[256];
    rl_tp_rec_t dec[16];
    size_t n_dec = 0;
    rl_prepare_rec_t prep[16];
    //  More claimed transfers past their timeout than the tick's bound for
    //  frozen ones (64), and another one, unclaimed: it expires at the tick.
    enum { N = 70 };
    static rl_transfer_t p[N], chain[N + 1];
    static rl_result_rec_t r[N + 1];
    for (int k = 0; k < N; k++) {
        p[k] = lk_t (RL_TRANSFER_PENDING, 1, 3, 1);
        p[k].timeout = 1;
        assert_int_equal (lk_send (&p[k]), RL_OK);
        chain[k] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p[k], 0);
    }
    rl_transfer_t other = lk_t (RL_TRANSFER_PENDING, 1, 5, 100);
    other.timeout = 1;
    assert_int_equal (lk_send (&other), RL_OK);
    chain[N] = lk_t (0, 1, 2, 1);
    assert_int_equal (s_across_send (chain, N + 1, prep), 1);
    lk_wall += 5 * S_NS;
    lk_mono += 1000000; //  within the prepare timeout
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (5, 0, 0, 0, 0); //  expired
    lk_expect (1, N, 0, 0, 0); //  the claimed ones wait for their posts
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, N + 1));
    assert_int_equal (r[0].result, RL_OK);
    lk_expect (1, 0, N + 1, 0, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    //  A post of a pending transfer that an earlier chain of the request
    //  holds: in_progress (not burned), then ok once the chain committed.
    rl_transfer_t a[3] = {lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 10), lk_t (0, 1, 2, 1),
                          lk_t (0, 0, 0, 0)};
    a[2] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &a[0], 0);
    assert_int_equal (s_across_send (a, 3, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_IN_PROGRESS});
    assert_int_equal (lk_send (&a[2]), RL_OK);
    lk_expect (3, 0, 0, 0, N + 10);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  Its own ctest entry (test_chains_room): filling the table takes seconds.
static void
test_pending_room (void **state)
{
    (void) state;
    lk_setup ("/chains/room");
    char err[256];
    rl_tp_rec_t dec[16];
    size_t n_dec = 0;
    rl_prepare_rec_t prep[16];
    rl_result_rec_t r[2];
    //  The pending table two short of full: a chain's held pending transfer
    //  takes one place from its begin, so of two PREPAREs of pending
    //  transfers from s2 one is refused busy; both commits find room.
    static rl_transfer_t fill[RL_BATCH_RECORDS_MAX];
    static rl_result_rec_t fr[RL_BATCH_RECORDS_MAX];
    for (size_t left = RL_SHARD_PENDING_MAX - 2; left > 0;) {
        size_t c = left < RL_BATCH_RECORDS_MAX ? left : RL_BATCH_RECORDS_MAX;
        for (size_t i = 0; i < c; i++) {
            fill[i] = lk_t (RL_TRANSFER_PENDING, 1, 3, 1);
        }
        rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = (uint32_t) c};
        assert_int_equal (ledger_create_transfers (lk_ledger, fill, c, lk_now (), NULL, &h, fr),
                          LEDGER_REPLY_NOW);
        lk_commit ();
        assert_int_equal (fr[c - 1].result, RL_OK);
        left -= c;
    }
    rl_transfer_t b[2] = {lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 1), lk_t (0, 1, 2, 1)};
    assert_int_equal (s_across_send (b, 2, prep), 1);
    rl_prepare_rec_t in[2];
    for (int k = 0; k < 2; k++) {
        rl_transfer_t t = lk_t (RL_TRANSFER_PENDING, 2, 3, 1);
        in[k] = s_prepare_from_s2 (&t, (uint64_t) k + 1);
    }
    rl_tp_rec_t out[2];
    participant_prepare (ledger_participant (lk_ledger), in, 2, "s2", lk_now (), out);
    lk_commit ();
    assert_int_equal (out[0].state, RL_TP_PREPARED);
    assert_int_equal (out[1].state, RL_TP_REFUSED);
    assert_int_equal (out[1].result, RL_BUSY);
    rl_tp_rec_t d = in[0].tp, ack;
    d.state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), &d, 1, "s2", lk_now (), &ack);
    lk_commit ();
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    assert_int_equal (ledger_pending_count (lk_ledger), RL_SHARD_PENDING_MAX);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  s2 acknowledges DECIDE d (a debit leg's COMMIT: ts, its stored record's
//  timestamp); the turn's messages as s_turn's.
static bool
s_ack (const rl_tp_rec_t *d, uint64_t ts, rl_result_rec_t *results, size_t count)
{
    rl_tp_rec_t ack = *d;
    ack.state = RL_TP_ACKED;
    ack.timestamp = ts;
    coordinator_decide_replies (ledger_coordinator (lk_ledger), &ack, 1, "s2", lk_now ());
    rl_prepare_rec_t none[16];
    rl_tp_rec_t dec[16];
    size_t n_prep = 0, n_dec = 0;
    bool replied = s_turn (none, &n_prep, dec, &n_dec, results, count);
    assert_int_equal (n_prep + n_dec, 0);
    return replied;
}

static void
test_legs (void **state)
{
    (void) state;
    lk_setup ("/chains/legs");
    //  1 pays 3 here, 2 (s2's) pays 1: a debit leg at s2, 1's credit held.
    rl_transfer_t c[2] = {lk_t (LINKED, 1, 3, 10), lk_t (0, 2, 1, 4)};
    rl_result_rec_t r[2];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 2};
    assert_int_equal (ledger_create_transfers (lk_ledger, c, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    rl_prepare_rec_t prep[16];
    rl_tp_rec_t dec[16];
    size_t n_prep = 0, n_dec = 0;
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_prep, 1);
    assert_int_equal (prep[0].transfer.flags, RL_TRANSFER_TP_DEBIT_LEG);
    assert_true (rl_id_eq (prep[0].transfer.id, c[1].id));
    assert_int_equal (lk_account (1).credits_reserved, 4);
    assert_int_equal (lk_account (1).debits_reserved, 10);
    char err[256];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  In flight: the chain sent again is in_progress.
    s_batch_expect (c, 2, (uint32_t[]){RL_IN_PROGRESS, RL_IN_PROGRESS});
    //  PREPARED: decided (1's credit posted, a COMMIT to s2), answered
    //  only at s2's acknowledgement, with s2's timestamp.
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 1);
    assert_int_equal (dec[0].state, RL_TP_COMMIT);
    lk_expect (1, 0, 10, 0, 4);
    assert_int_equal (lk_account (1).credits_reserved, 0);
    //  Until then the chain sent again is in_progress (its COMMIT is on
    //  its way; member 0 is exists, and that does not fail a chain).
    s_batch_expect (c, 2, (uint32_t[]){RL_IN_PROGRESS, RL_IN_PROGRESS});
    assert_true (s_ack (&dec[0], LK_T0 + 777, r, 2));
    assert_int_equal (r[0].result, RL_OK);
    assert_int_equal (r[1].result, RL_OK);
    assert_int_equal (r[1].timestamp, LK_T0 + 777);
    assert_true (r[0].timestamp != 0 && r[0].timestamp != r[1].timestamp);
    //  Sent again: exists here, and s2 refuses the new attempt exists (its
    //  record's timestamp): exists for both, nothing posted twice.
    assert_int_equal (ledger_create_transfers (lk_ledger, c, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_prep, 1);
    rl_tp_rec_t reply = prep[0].tp;
    reply.state = RL_TP_REFUSED;
    reply.result = RL_EXISTS;
    reply.timestamp = LK_T0 + 777;
    rl_tp_rec_t twice[2] = {reply, reply}; //  a duplicate answer counts once
    coordinator_prepare_replies (ledger_coordinator (lk_ledger), twice, 2, "s2", lk_now ());
    rl_prepare_rec_t none[16];
    assert_true (s_turn (none, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 0); //  nothing to decide at s2
    assert_int_equal (r[0].result, RL_EXISTS);
    assert_int_equal (r[1].result, RL_EXISTS);
    assert_int_equal (r[1].timestamp, LK_T0 + 777);
    lk_expect (1, 0, 10, 0, 4);
    //  Refused at s2 (its debit account cannot pay): its code, the other
    //  linked_event_failed, 1's credit released, nothing stored or burned.
    rl_transfer_t f[2] = {lk_t (LINKED, 1, 3, 10), lk_t (0, 2, 1, 9)};
    assert_int_equal (ledger_create_transfers (lk_ledger, f, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_true (s_answer (&prep[0], RL_TP_REFUSED, RL_EXCEEDS_CREDITS, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 0);
    assert_int_equal (r[0].result, RL_LINKED_EVENT_FAILED);
    assert_int_equal (r[1].result, RL_EXCEEDS_CREDITS);
    assert_false (s_found (&f[0]));
    lk_expect (1, 0, 10, 0, 4);
    //  A pending member debiting s2 and crediting 1 here: a pending debit
    //  leg (its timeout with it); at the commit 1's credit becomes pending
    //  here (the credit side of a pending transfer whose debit shard is s2).
    size_t pending_before = ledger_pending_count (lk_ledger);
    rl_transfer_t p[2] = {lk_t (LINKED, 1, 3, 1), lk_t (RL_TRANSFER_PENDING, 2, 1, 6)};
    p[1].timeout = 30;
    assert_int_equal (ledger_create_transfers (lk_ledger, p, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_prep, 1);
    assert_int_equal (prep[0].transfer.flags, RL_TRANSFER_TP_DEBIT_LEG | RL_TRANSFER_PENDING);
    assert_int_equal (prep[0].transfer.timeout, 30);
    assert_int_equal (lk_account (1).credits_reserved, 6);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 1);
    assert_int_equal (lk_account (1).credits_reserved, 0);
    assert_int_equal (lk_account (1).credits_pending, 6);
    assert_int_equal (ledger_pending_count (lk_ledger), pending_before + 1);
    assert_true (s_ack (&dec[0], lk_wall + 9, r, 2));
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    //  A chain is placed by its first post or void: one voiding s2's
    //  pending transfer runs on s2, and here every member is wrong_shard
    //  (a router sends the chain there); nothing sent.
    rl_transfer_t v[2] = {lk_t (LINKED, 1, 3, 1),
                          lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p[1], 0)};
    s_batch_expect (v, 2, (uint32_t[]){RL_WRONG_SHARD, RL_WRONG_SHARD});
    assert_int_equal (lk_account (1).credits_reserved + lk_account (1).debits_reserved, 0);
    //  The same with a first member that credits s2: it may not begin a
    //  two-phase transfer outside a group (the shard stopped on an
    //  assertion): wrong_shard too, nothing reserved, nothing sent.
    rl_transfer_t w[2] = {lk_t (LINKED, 1, 2, 1),
                          lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p[1], 0)};
    s_batch_expect (w, 2, (uint32_t[]){RL_WRONG_SHARD, RL_WRONG_SHARD});
    assert_int_equal (lk_account (1).credits_reserved + lk_account (1).debits_reserved, 0);
    //  s2 voids it later (its debit shard decides): the credit side here goes.
    rl_transfer_t vd = {.id = {777, 0x9e},
                        .debit_account_id = p[1].debit_account_id,
                        .credit_account_id = p[1].credit_account_id,
                        .pending_id = p[1].id,
                        .amount = 6,
                        .ledger = LEDGER,
                        .code = 1,
                        .flags = RL_TRANSFER_VOID_PENDING_TRANSFER};
    rl_prepare_rec_t in = s_prepare_from_s2 (&vd, 99);
    rl_tp_rec_t out;
    participant_prepare (ledger_participant (lk_ledger), &in, 1, "s2", lk_now (), &out);
    lk_commit ();
    assert_int_equal (out.state, RL_TP_PREPARED);
    rl_tp_rec_t dv = in.tp, ackv;
    dv.state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), &dv, 1, "s2", lk_now (), &ackv);
    lk_commit ();
    assert_int_equal (lk_account (1).credits_pending, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), pending_before);
    //  s1's credits exceed its debits by what s2's debit legs sent here.
    rl_account_t a1 = lk_account (1), a3 = lk_account (3);
    assert_int_equal (a1.debits_posted, 11);
    assert_int_equal (a3.credits_posted, 11);
    assert_int_equal (a1.credits_posted, 4);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  A chain placed here by its post though its first member debits s2:
    //  that member a debit leg at s2, the post of a pending transfer of
    //  this shard (1 to 3) held, its pending transfer claimed (a void of
    //  it meanwhile is in_progress); at the commit 5 of 8 posted, the rest
    //  released, and s2's member answered with s2's timestamp.
    rl_transfer_t q = lk_t (RL_TRANSFER_PENDING, 1, 3, 8);
    assert_int_equal (lk_send (&q), RL_OK);
    rl_transfer_t l[2] = {lk_t (LINKED, 2, 3, 2),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &q, 5)};
    assert_int_equal (ledger_create_transfers (lk_ledger, l, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_prep, 1);
    assert_int_equal (prep[0].transfer.flags, RL_TRANSFER_TP_DEBIT_LEG);
    assert_true (rl_id_eq (prep[0].transfer.id, l[0].id));
    rl_transfer_t qv = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &q, 0);
    s_batch_expect (&qv, 1, (uint32_t[]){RL_IN_PROGRESS});
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 1);
    assert_true (s_ack (&dec[0], LK_T0 + 999, r, 2));
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    assert_int_equal (r[0].timestamp, LK_T0 + 999);
    assert_true (s_found (&l[1]));
    rl_account_t b1 = lk_account (1), b3 = lk_account (3);
    assert_int_equal (b1.debits_posted, a1.debits_posted + 5);
    assert_int_equal (b1.debits_pending, a1.debits_pending);
    assert_int_equal (b3.credits_posted, a3.credits_posted + 5 + 2);
    s_batch_expect (&qv, 1, (uint32_t[]){RL_PENDING_TRANSFER_ALREADY_POSTED});
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  Post legs (docs/two-phase.md, "Post legs"): chains whose posts and
//  voids debit two shards. This ledger (s1) first as the chain's shard:
//  a void of a pending transfer of s2 alone (both legs, as the client gave
//  it), a capture of one of s2 crediting 1 here (a debit leg resolved
//  here, its credit side claimed until the decision); refused at s2 (its
//  code, the claim released); sent again, exists. Then as the debit shard
//  X of chains of s2: a void of both legs prepared (its pending transfer
//  claimed: a post of it in_progress), kept across a restart after its
//  timeout passed (the claim wins over the expiry at recovery), committed
//  (stored under its id: a duplicate PREPARE is exists); one aborted (the
//  claim released); hostile ones (both leg bits, a debit leg of one whose
//  both sides are here: not_supported; another amount: reserved_field).
static void
test_post_legs (void **state)
{
    (void) state;
    lk_setup ("/chains/post_legs");
    char err[256];
    rl_prepare_rec_t prep[16];
    rl_tp_rec_t dec[16];
    size_t n_prep = 0, n_dec = 0;
    rl_result_rec_t r[3];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 2};
    uint32_t result = 0;
    //  1. s2's pending transfer 2 to 4 (its own), voided in a chain of
    //     this shard (placed here by its first void, of 1 to 3): both legs,
    //     as the client gave it (no credit account, no amount).
    rl_transfer_t q = lk_t (RL_TRANSFER_PENDING, 1, 3, 8);
    assert_int_equal (lk_send (&q), RL_OK);
    rl_transfer_t s2p = lk_t (RL_TRANSFER_PENDING, 2, 4, 6);
    rl_transfer_t a[2] = {lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &q, 0),
                          lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &s2p, 0)};
    assert_int_equal (ledger_create_transfers (lk_ledger, a, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_prep, 1);
    assert_int_equal (prep[0].transfer.flags,
                      RL_TRANSFER_TP_BOTH_LEGS | RL_TRANSFER_VOID_PENDING_TRANSFER);
    assert_true (rl_id_is_zero (prep[0].transfer.credit_account_id));
    assert_int_equal (prep[0].transfer.amount, 0);
    s_batch_expect (a, 2, (uint32_t[]){RL_IN_PROGRESS, RL_IN_PROGRESS});
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_int_equal (n_dec, 1);
    assert_int_equal (dec[0].state, RL_TP_COMMIT);
    assert_true (s_ack (&dec[0], LK_T0 + 555, r, 2));
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    assert_int_equal (r[1].timestamp, LK_T0 + 555);
    lk_expect (1, 0, 0, 0, 0);
    //  2. s2's pending transfer 2 to 1 (its credit side here: prepared and
    //     committed from s2), captured in part in a chain of this shard: a
    //     debit leg, resolved here (1's account, ledger, code, 4 of 6), the
    //     credit side claimed meanwhile (s2's own post of it in_progress).
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 2, 1, 6);
    rl_prepare_rec_t leg = s_prepare_from_s2 (&p, 40);
    assert_int_equal (s_prepare_here (&leg, &result), RL_TP_PREPARED);
    assert_int_equal (s_decide_from_s2 (&leg.tp, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (1, 0, 0, 6, 0);
    rl_transfer_t q2 = lk_t (RL_TRANSFER_PENDING, 1, 3, 8);
    assert_int_equal (lk_send (&q2), RL_OK);
    rl_transfer_t b[2] = {lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &q2, 0),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 4)};
    assert_int_equal (ledger_create_transfers (lk_ledger, b, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (n_prep, 1);
    assert_int_equal (prep[0].transfer.flags,
                      RL_TRANSFER_TP_DEBIT_LEG | RL_TRANSFER_POST_PENDING_TRANSFER);
    assert_true (rl_id_eq (prep[0].transfer.credit_account_id, p.credit_account_id));
    assert_int_equal (prep[0].transfer.amount, 4);
    assert_int_equal (prep[0].transfer.ledger, LEDGER);
    rl_transfer_t pv = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 6);
    rl_prepare_rec_t direct = s_prepare_from_s2 (&pv, 41);
    assert_int_equal (s_prepare_here (&direct, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_IN_PROGRESS);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  Refused at s2 (expired there): its code, the other
    //  linked_event_failed, the claim released (s2's void then prepares).
    assert_true (
        s_answer (&prep[0], RL_TP_REFUSED, RL_PENDING_TRANSFER_EXPIRED, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_EXPIRED});
    lk_expect (1, 8, 0, 6, 0);
    assert_int_equal (s_prepare_here (&direct, &result), RL_TP_PREPARED);
    assert_int_equal (s_decide_from_s2 (&direct.tp, RL_TP_ABORT), RL_TP_ACKED);
    //  Sent again and prepared: at the decision 4 posted to 1, the rest
    //  released; answered at s2's acknowledgement; sent again: exists (the
    //  credit side resolved here, so asked as the client gave it).
    assert_int_equal (ledger_create_transfers (lk_ledger, b, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    lk_expect (1, 0, 0, 0, 4);
    assert_true (s_ack (&dec[0], LK_T0 + 556, r, 2));
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    assert_int_equal (ledger_create_transfers (lk_ledger, b, 2, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_LATER);
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    assert_int_equal (prep[0].transfer.flags,
                      RL_TRANSFER_TP_BOTH_LEGS | RL_TRANSFER_POST_PENDING_TRANSFER);
    rl_tp_rec_t reply = prep[0].tp;
    reply.state = RL_TP_REFUSED;
    reply.result = RL_EXISTS;
    reply.timestamp = LK_T0 + 556;
    coordinator_prepare_replies (ledger_coordinator (lk_ledger), &reply, 1, "s2", lk_now ());
    assert_true (s_turn (prep, &n_prep, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_EXISTS, RL_EXISTS});
    lk_expect (1, 0, 0, 0, 4);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  3. This shard as the debit shard X: s2's chain voids 1 to 3 (both
    //     sides here), as the client gave it. Prepared: claimed (a post of
    //     it here in_progress); its timeout passes across a restart: the
    //     claim wins over the expiry at recovery; committed: voided, stored
    //     under its id (a duplicate PREPARE: exists).
    rl_transfer_t x = lk_t (RL_TRANSFER_PENDING, 1, 3, 7);
    x.timeout = 1;
    assert_int_equal (lk_send (&x), RL_OK);
    rl_transfer_t xv = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &x,
                                   0);
    rl_prepare_rec_t xp = s_prepare_from_s2 (&xv, 50);
    assert_int_equal (s_prepare_here (&xp, &result), RL_TP_PREPARED);
    rl_transfer_t xpost = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &x, 0);
    assert_int_equal (lk_send (&xpost), RL_IN_PROGRESS);
    lk_wall += 5 * S_NS;
    lk_restart (true);
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (1, 7, 0, 0, 4);
    assert_int_equal (lk_send (&xpost), RL_IN_PROGRESS);
    rl_tp_rec_t dx = xp.tp, ackx;
    dx.state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), &dx, 1, "s2", lk_now (), &ackx);
    lk_commit ();
    assert_int_equal (ackx.state, RL_TP_ACKED);
    assert_true (ackx.timestamp != 0);
    lk_expect (1, 0, 0, 0, 4);
    lk_expect (3, 0, 0, 0, 0);
    xv.flags &= (uint16_t) ~RL_TRANSFER_TP_LEGS;
    assert_true (s_found (&xv));
    assert_int_equal (s_prepare_here (&xp, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_EXISTS);
    assert_int_equal (lk_send (&xpost), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    //  4. Prepared, then aborted: the claim released, a post of it applies.
    rl_transfer_t y = lk_t (RL_TRANSFER_PENDING, 1, 3, 5);
    assert_int_equal (lk_send (&y), RL_OK);
    rl_transfer_t yp = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &y,
                                   2);
    //  No room for its record first: busy, nothing claimed, and nothing
    //  released on the credit account it names as it came (none).
    participant_set_records_max (ledger_participant (lk_ledger), 0);
    rl_prepare_rec_t ybusy = s_prepare_from_s2 (&yp, 59);
    assert_int_equal (s_prepare_here (&ybusy, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_BUSY);
    participant_set_records_max (ledger_participant (lk_ledger), SIZE_MAX);
    rl_prepare_rec_t ypr = s_prepare_from_s2 (&yp, 60);
    assert_int_equal (s_prepare_here (&ypr, &result), RL_TP_PREPARED);
    lk_restart (true);
    rl_transfer_t ypost = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &y, 3);
    assert_int_equal (lk_send (&ypost), RL_IN_PROGRESS);
    assert_int_equal (s_decide_from_s2 (&ypr.tp, RL_TP_ABORT), RL_TP_ACKED);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    assert_int_equal (lk_send (&ypost), RL_OK);
    lk_expect (3, 0, 0, 0, 3);
    //  5. Hostile: both leg bits beside a void, a debit leg naming another
    //     credit account, a debit leg of a pending transfer whose two sides
    //     are here, a post of more than it holds: refused, nothing claimed.
    rl_transfer_t z = lk_t (RL_TRANSFER_PENDING, 1, 3, 9);
    assert_int_equal (lk_send (&z), RL_OK);
    rl_transfer_t zv = s_resolved_by_s2 (RL_TRANSFER_VOID_PENDING_TRANSFER | RL_TRANSFER_TP_LEGS,
                                         &z, 9);
    rl_prepare_rec_t zr = s_prepare_from_s2 (&zv, 70);
    assert_int_equal (s_prepare_here (&zr, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_WRONG_SHARD); //  a credit leg on a third shard (and malformed)
    zv.flags = RL_TRANSFER_VOID_PENDING_TRANSFER | RL_TRANSFER_TP_DEBIT_LEG;
    zv.credit_account_id = lk_acc (4);
    zr = s_prepare_from_s2 (&zv, 71);
    assert_int_equal (s_prepare_here (&zr, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID);
    zv.credit_account_id = z.credit_account_id;
    zr = s_prepare_from_s2 (&zv, 72);
    assert_int_equal (s_prepare_here (&zr, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_WRONG_SHARD); //  its credit is this shard's: not a debit leg
    rl_transfer_t zb = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &z,
                                   10);
    zr = s_prepare_from_s2 (&zb, 73);
    assert_int_equal (s_prepare_here (&zr, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    rl_transfer_t zpost = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &z, 9);
    assert_int_equal (lk_send (&zpost), RL_OK);
    //  6. A pending transfer 1 to 2 (its debit side here, its credit side
    //     at s2), captured by a chain of s2 holding that credit side: a
    //     debit leg resolved there. One with another ledger is refused with
    //     that code; the right one prepared (claimed: an expiry or post of
    //     it here waits) and committed: 5 posted, stored under its id.
    rl_transfer_t d = lk_t (RL_TRANSFER_PENDING, 1, 2, 9);
    d.timeout = 60;
    assert_int_equal (s_across_send (&d, 1, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 1));
    assert_int_equal (r[0].result, RL_OK);
    lk_expect (1, 9, 12, 0, 4);
    //  Sent as both legs, as s2 does while P's credit side has not reached
    //  it yet (P's COMMIT on its way): in_progress, nothing claimed.
    rl_transfer_t db = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &d,
                                   5);
    rl_prepare_rec_t dbr = s_prepare_from_s2 (&db, 79);
    assert_int_equal (s_prepare_here (&dbr, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_IN_PROGRESS);
    rl_transfer_t dp = s_resolved_by_s2 (
        RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_TP_DEBIT_LEG, &d, 5);
    dp.ledger = LEDGER + 1;
    rl_prepare_rec_t dpr = s_prepare_from_s2 (&dp, 80);
    assert_int_equal (s_prepare_here (&dpr, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER);
    dp.ledger = LEDGER;
    dpr = s_prepare_from_s2 (&dp, 81);
    assert_int_equal (s_prepare_here (&dpr, &result), RL_TP_PREPARED);
    rl_transfer_t dpost = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &d, 1);
    assert_int_equal (lk_send (&dpost), RL_IN_PROGRESS);
    //  Its timeout passes across a restart: claimed again at load, it falls
    //  due but no expiry attempt begins while it is claimed.
    lk_wall += 3600 * S_NS;
    lk_restart (true);
    ledger_tick (lk_ledger, lk_now ());
    assert_false (s_turn (prep, &n_prep, dec, &n_dec, r, 0));
    assert_int_equal (n_prep, 0);
    assert_int_equal (lk_send (&dpost), RL_IN_PROGRESS);
    assert_int_equal (s_decide_from_s2 (&dpr.tp, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (1, 0, 17, 0, 4);
    dp.flags &= (uint16_t) ~RL_TRANSFER_TP_LEGS;
    assert_true (s_found (&dp));
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  Post legs at the debit shard X (this ledger)
//  under duplicate, reordered and superseding PREPAREs and DECIDEs from
//  the chain's shard s2: one claim at a time, nothing applied twice.
static void
test_post_leg_orders (void **state)
{
    (void) state;
    lk_setup ("/chains/post_leg_orders");
    char err[256];
    uint32_t result = 0;
    //  1. A void leg (both legs) of p prepared, then a newer attempt of the
    //     same id voiding p2: the older is superseded (p released), p2
    //     claimed; the older's late ABORT changes nothing; the COMMIT of the
    //     newer voids p2 once; p is then posted alone.
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 1, 3, 7);
    rl_transfer_t p2 = lk_t (RL_TRANSFER_PENDING, 1, 3, 5);
    assert_int_equal (lk_send (&p), RL_OK);
    assert_int_equal (lk_send (&p2), RL_OK);
    lk_expect (1, 12, 0, 0, 0);
    rl_transfer_t v = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &p,
                                  0);
    rl_prepare_rec_t a1 = s_prepare_from_s2 (&v, 10);
    assert_int_equal (s_prepare_here (&a1, &result), RL_TP_PREPARED);
    rl_transfer_t v2 = v;
    v2.pending_id = p2.id;
    rl_prepare_rec_t a2 = s_prepare_from_s2 (&v2, 11);
    assert_int_equal (s_prepare_here (&a2, &result), RL_TP_PREPARED);
    rl_transfer_t ppost = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 2);
    rl_transfer_t p2post = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 2);
    assert_int_equal (lk_send (&p2post), RL_IN_PROGRESS);
    assert_int_equal (s_decide_from_s2 (&a1.tp, RL_TP_ABORT), RL_TP_ACKED);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  The older attempt's PREPARE again (late, duplicated): refused.
    assert_int_equal (s_prepare_here (&a1, &result), RL_TP_REFUSED);
    assert_int_equal (s_decide_from_s2 (&a2.tp, RL_TP_COMMIT), RL_TP_ACKED);
    assert_int_equal (s_decide_from_s2 (&a2.tp, RL_TP_COMMIT), RL_TP_ACKED);
    lk_restart (true);
    assert_int_equal (s_decide_from_s2 (&a2.tp, RL_TP_COMMIT), RL_TP_ACKED);
    //  The superseded attempt's COMMIT (never sent by an honest s2): its id
    //  is stored ok, so acknowledged; nothing applied again.
    assert_int_equal (s_decide_from_s2 (&a1.tp, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (1, 7, 0, 0, 0);
    assert_int_equal (lk_send (&p2post), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    assert_int_equal (lk_send (&ppost), RL_OK);
    lk_expect (1, 0, 2, 0, 0);
    lk_expect (3, 0, 0, 0, 2);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  2. One message holding the same PREPARE twice, and one holding two
    //     post legs of one pending transfer (other ids): one claim.
    rl_transfer_t q = lk_t (RL_TRANSFER_PENDING, 1, 3, 9);
    assert_int_equal (lk_send (&q), RL_OK);
    rl_transfer_t qa = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &q,
                                   4);
    rl_transfer_t qb = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &q,
                                   5);
    rl_prepare_rec_t twice[3] = {s_prepare_from_s2 (&qa, 20), s_prepare_from_s2 (&qa, 20),
                                 s_prepare_from_s2 (&qb, 21)};
    rl_tp_rec_t out[3];
    participant_prepare (ledger_participant (lk_ledger), twice, 3, "s2", lk_now (), out);
    lk_commit ();
    assert_int_equal (out[0].state, RL_TP_PREPARED);
    assert_int_equal (out[1].state, RL_TP_PREPARED);
    assert_int_equal (out[2].state, RL_TP_REFUSED);
    assert_int_equal (out[2].result, RL_IN_PROGRESS);
    //  COMMIT and ABORT of it in one message, then the COMMIT again.
    rl_tp_rec_t ds[3] = {twice[0].tp, twice[0].tp, twice[0].tp}, acks[3];
    ds[0].state = RL_TP_COMMIT;
    ds[1].state = RL_TP_ABORT;
    ds[2].state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), ds, 3, "s2", lk_now (), acks);
    lk_commit ();
    assert_int_equal (acks[0].state, RL_TP_ACKED);
    lk_expect (1, 0, 6, 0, 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_restart (true);
    lk_expect (1, 0, 6, 0, 0);
    assert_int_equal (s_prepare_here (&twice[0], &result), RL_TP_REFUSED);
    assert_int_equal (s_prepare_here (&twice[2], &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_PENDING_TRANSFER_ALREADY_POSTED);
    //  3. ABORT before its PREPARE (reordered): the PREPARE is refused,
    //     nothing claimed (a post of it alone applies).
    rl_transfer_t w = lk_t (RL_TRANSFER_PENDING, 1, 3, 3);
    w.timeout = 2;
    assert_int_equal (lk_send (&w), RL_OK);
    rl_transfer_t wv = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | RL_TRANSFER_TP_BOTH_LEGS, &w,
                                   0);
    rl_prepare_rec_t wr = s_prepare_from_s2 (&wv, 30);
    assert_int_equal (s_decide_from_s2 (&wr.tp, RL_TP_ABORT), RL_TP_ACKED);
    assert_int_equal (s_prepare_here (&wr, &result), RL_TP_REFUSED);
    //  A newer attempt prepared, its timeout passes, a restart, the tick,
    //  then an even newer attempt (superseding it) with the same id.
    rl_prepare_rec_t wr2 = s_prepare_from_s2 (&wv, 31);
    assert_int_equal (s_prepare_here (&wr2, &result), RL_TP_PREPARED);
    lk_wall += 10 * S_NS;
    lk_restart (true);
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    rl_prepare_rec_t wr3 = s_prepare_from_s2 (&wv, 32);
    assert_int_equal (s_prepare_here (&wr3, &result), RL_TP_REFUSED);
    assert_int_equal (result, RL_PENDING_TRANSFER_EXPIRED);
    assert_int_equal (s_decide_from_s2 (&wr2.tp, RL_TP_ABORT), RL_TP_ACKED);
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (1, 0, 6, 0, 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

static void
test_across_abort (void **state)
{
    (void) state;
    lk_setup ("/chains/abort");
    rl_transfer_t c[3] = {lk_t (LINKED, 1, 3, 10), lk_t (LINKED, 1, 2, 20), lk_t (0, 1, 4, 30)};
    rl_prepare_rec_t prep[16];
    rl_tp_rec_t dec[16];
    rl_result_rec_t r[3];
    size_t n_dec = 0;
    char err[256];
    //  s2 refuses one member for a business reason: that member its code,
    //  the others linked_event_failed; the prepared one gets an ABORT, the
    //  refused one nothing (s2 holds nothing of it); nothing burned.
    assert_int_equal (s_across_send (c, 3, prep), 2);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    bool second = rl_id_eq (prep[1].transfer.id, c[2].id);
    assert_true (s_answer (&prep[1], RL_TP_REFUSED, RL_EXCEEDS_DEBITS, dec, &n_dec, r, 3));
    s_results (
        r, 3,
        second ? (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED, RL_EXCEEDS_DEBITS}
               : (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_DEBITS, RL_LINKED_EVENT_FAILED});
    assert_int_equal (n_dec, 1);
    assert_int_equal (dec[0].state, RL_TP_ABORT);
    assert_true (rl_id_eq (dec[0].id, prep[0].tp.id));
    lk_expect (1, 0, 0, 0, 0);
    lk_expect (3, 0, 0, 0, 0);
    assert_int_equal (lk_account (1).debits_reserved + lk_account (3).credits_reserved, 0);
    for (int i = 0; i < 3; i++) {
        assert_false (s_found (&c[i]));
    }
    //  Sent again: decided again (new attempts). s2 times out: aborted for
    //  a member still waiting, ABORT to both.
    assert_int_equal (s_across_send (c, 3, prep), 2);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    lk_mono += 2 * S_NS;
    ledger_tick (lk_ledger, lk_now ());
    rl_prepare_rec_t none[16];
    size_t n_prep = 0;
    assert_true (s_turn (none, &n_prep, dec, &n_dec, r, 3));
    second = rl_id_eq (prep[1].transfer.id, c[2].id);
    s_results (r, 3,
               second ? (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED, RL_ABORTED}
                      : (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ABORTED, RL_LINKED_EVENT_FAILED});
    //  (The tick resends the earlier ABORT too: never acknowledged here.)
    assert_true (s_decided (dec, n_dec, &prep[0].tp, RL_TP_ABORT));
    assert_true (s_decided (dec, n_dec, &prep[1].tp, RL_TP_ABORT));
    //  A late PREPARED for an aborted attempt changes nothing.
    assert_false (s_answer (&prep[1], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    assert_int_equal (n_dec, 0);
    lk_expect (1, 0, 0, 0, 0);
    //  Sent again, both PREPARED, and the shard dies before the decision's
    //  group commit: after the restart nothing of it is there (presumed
    //  abort), nothing is reserved, and the chain applies once.
    assert_int_equal (s_across_send (c, 3, prep), 2);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    rl_tp_rec_t reply = prep[1].tp;
    reply.state = RL_TP_PREPARED;
    coordinator_prepare_replies (ledger_coordinator (lk_ledger), &reply, 1, "s2", lk_now ());
    for (size_t k = 0; k < outq_count (lk_outq); k++) {
        outq_msg_t *m = outq_at (lk_outq, k);
        if (m->kind == OUTQ_REPLY) {
            free (m->reply.results); //  never sent: the commit is lost
            m->reply.results = NULL;
        }
    }
    outq_clear (lk_outq);
    lk_restart (false);
    for (int i = 0; i < 3; i++) {
        assert_false (s_found (&c[i]));
    }
    lk_expect (1, 0, 0, 0, 0);
    assert_int_equal (lk_account (1).debits_reserved + lk_account (3).credits_reserved, 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    assert_int_equal (s_across_send (c, 3, prep), 2);
    assert_false (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    assert_true (s_answer (&prep[1], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    lk_expect (1, 0, 60, 0, 0);
    lk_expect (3, 0, 0, 0, 10);
    //  A member applied before (exists) in a chain that then fails is
    //  answered linked_event_failed, and stays as it was.
    rl_transfer_t e[2] = {c[0], lk_t (0, 1, 2, 5)};
    assert_int_equal (s_across_send (e, 2, prep), 1);
    assert_true (
        s_answer (&prep[0], RL_TP_REFUSED, RL_CREDIT_ACCOUNT_NOT_FOUND, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_CREDIT_ACCOUNT_NOT_FOUND});
    assert_int_equal (n_dec, 0);
    assert_true (s_found (&e[0]));
    assert_false (s_found (&e[1]));
    //  ... and in a chain that commits, exists.
    assert_int_equal (s_across_send (e, 2, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_EXISTS, RL_OK});
    lk_expect (1, 0, 65, 0, 0);
    //  A local member failing at once: nothing is sent, nothing held.
    rl_transfer_t f[3] = {lk_t (LINKED, 1, 2, 5), lk_t (LINKED, 1, 9, 1), lk_t (0, 1, 4, 1)};
    s_batch_expect (
        f, 3,
        (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_CREDIT_ACCOUNT_NOT_FOUND, RL_LINKED_EVENT_FAILED});
    assert_int_equal (lk_account (1).debits_reserved, 0);
    //  A forged reply (from s3, not the attempt's participant) is ignored.
    assert_int_equal (s_across_send (&f[2], 1, prep), 1);
    reply = prep[0].tp;
    reply.state = RL_TP_REFUSED;
    reply.result = RL_EXCEEDS_DEBITS;
    assert_int_equal (
        coordinator_prepare_replies (ledger_coordinator (lk_ledger), &reply, 1, "s3", lk_now ()),
        1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 1));
    s_results (r, 1, (uint32_t[]){RL_OK});
    lk_expect (1, 0, 66, 0, 0);
    //  The same id twice in one such chain: taken (a different record: the
    //  chain fails, nothing sent), or the same record (exists, decided
    //  with its chain, applied once).
    rl_transfer_t twice[2] = {lk_t (LINKED, 1, 2, 5)};
    twice[1] = twice[0];
    twice[1].flags = 0;
    twice[1].amount = 6;
    s_batch_expect (twice, 2,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXISTS_WITH_DIFFERENT_AMOUNT});
    twice[1].amount = 5;
    assert_int_equal (s_across_send (twice, 2, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    assert_int_equal (r[0].result, RL_OK);
    assert_int_equal (r[1].result, RL_EXISTS);
    assert_true (r[0].timestamp != 0);
    assert_int_equal (r[1].timestamp, r[0].timestamp); //  the repeat: the member's record
    lk_expect (1, 0, 71, 0, 0);
    //  ... and, the chain refused, the repeat linked_event_failed, nothing stored.
    rl_transfer_t again[2] = {lk_t (LINKED, 1, 2, 4)};
    again[1] = again[0];
    again[1].flags = 0;
    assert_int_equal (s_across_send (again, 2, prep), 1);
    assert_true (
        s_answer (&prep[0], RL_TP_REFUSED, RL_CREDIT_ACCOUNT_NOT_FOUND, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_CREDIT_ACCOUNT_NOT_FOUND, RL_LINKED_EVENT_FAILED});
    assert_false (s_found (&again[0]));
    lk_expect (1, 0, 71, 0, 0);
    //  A hostile refusal "refused, ok": an infrastructure one (aborted),
    //  nothing posted without a COMMIT.
    rl_transfer_t h[2] = {lk_t (LINKED, 1, 3, 1), lk_t (0, 1, 2, 1)};
    assert_int_equal (s_across_send (h, 2, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_REFUSED, RL_OK, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ABORTED});
    rl_transfer_t p1 = lk_t (0, 1, 2, 1);
    assert_int_equal (s_across_send (&p1, 1, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_REFUSED, RL_EXISTS, dec, &n_dec, r, 1));
    s_results (r, 1, (uint32_t[]){RL_ABORTED});
    lk_expect (1, 0, 71, 0, 0);
    lk_expect (3, 0, 0, 0, 10);
    //  A chain whose member of s2 exists already: the rest is here, and
    //  is applied in its turn.
    rl_transfer_t here[2] = {lk_t (LINKED, 1, 3, 2), twice[0]};
    here[1].flags = 0;
    s_batch_expect (here, 2, (uint32_t[]){RL_OK, RL_EXISTS});
    lk_expect (3, 0, 0, 0, 12);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

static void
test_bad_input (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    //  Field validation fails a chain too, and burns nothing.
    rl_transfer_t a[2] = {lk_t (LINKED, 1, 3, 5), lk_t (RL_TRANSFER_BALANCING_DEBIT, 1, 3, 1)};
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_NOT_SUPPORTED});
    a[1].flags = 0x0100;
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_RESERVED_FLAG});
    a[1] = lk_t (0, 1, 3, 0);
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_AMOUNT_MUST_NOT_BE_ZERO});
    a[1] = lk_t (0, 1, 1, 1);
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ACCOUNTS_MUST_BE_DIFFERENT});
    a[1] = lk_t (0, 1, 3, 1);
    a[1].id = (rl_id_t){0};
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ID_MUST_NOT_BE_ZERO});
    a[1].id = (rl_id_t){UINT64_MAX, UINT64_MAX};
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ID_MUST_NOT_BE_INT_MAX});
    a[1] = lk_t (RL_TRANSFER_PENDING | RL_TRANSFER_POST_PENDING_TRANSFER, 1, 3, 1);
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE});
    a[1] = lk_t (0, 1, 9, 1); //  on s1, never created
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_CREDIT_ACCOUNT_NOT_FOUND});
    assert_false (s_found (&a[0]));
    assert_false (s_found (&a[1])); //  not burned either
    //  The same id twice in one chain: the second is the same record
    //  (exists), or a different one (taken: the chain fails, the first
    //  member is taken back with it).
    rl_transfer_t twice[2] = {lk_t (LINKED, 1, 3, 5)};
    twice[1] = twice[0];
    twice[1].flags = 0;
    s_batch_expect (twice, 2, (uint32_t[]){RL_OK, RL_EXISTS});
    lk_expect (3, 0, 0, 0, 5);
    rl_transfer_t differ[2] = {lk_t (LINKED, 1, 3, 5)};
    differ[1] = differ[0];
    differ[1].flags = 0;
    differ[1].amount = 6;
    s_batch_expect (differ, 2,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXISTS_WITH_DIFFERENT_AMOUNT});
    assert_false (s_found (&differ[0]));
    lk_expect (3, 0, 0, 0, 5);
    //  A long chain (pending transfers among its members) failing at its
    //  last member: nothing of it.
    static rl_transfer_t chain[LONG];
    static rl_result_rec_t r[LONG];
    for (int i = 0; i < LONG; i++) {
        chain[i] = lk_t (LINKED | ((i % 3) ? 0 : RL_TRANSFER_PENDING), 1, 3, 1);
    }
    chain[LONG - 1] = lk_t (0, 3, 5, 1000000);
    s_batch (chain, LONG, r);
    for (int i = 0; i < LONG - 1; i++) {
        assert_int_equal (r[i].result, RL_LINKED_EVENT_FAILED);
    }
    assert_int_equal (r[LONG - 1].result, RL_EXCEEDS_CREDITS);
    lk_expect (1, 0, 5, 0, 0);
    lk_expect (3, 0, 0, 0, 5);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    //  Closed within reach, the same ids apply.
    chain[LONG - 1].amount = 1;
    s_batch (chain, LONG, r);
    for (int i = 0; i < LONG; i++) {
        assert_int_equal (r[i].result, RL_OK);
    }
    uint64_t pending = (LONG - 1 + 2) / 3; //  members 0, 3, 6, ... of the first LONG - 1
    lk_expect (3, 0, 1, pending, 5 + (LONG - 1) - pending);
    lk_expect (1, pending, 5 + (LONG - 1) - pending, 0, 0);
    lk_conserved (false);
    lk_teardown ();
}

static void
test_crash (void **state)
{
    (void) state;
    lk_setup ("/chains/s1");
    //  Applied in memory, its group commit lost: nothing after the restart.
    rl_transfer_t a[3] = {lk_t (LINKED, 1, 3, 10), lk_t (RL_TRANSFER_PENDING | LINKED, 3, 5, 4),
                          lk_t (0, 3, 5, 2)};
    rl_result_rec_t r[3];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 3};
    assert_int_equal (ledger_create_transfers (lk_ledger, a, 3, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_NOW);
    for (int i = 0; i < 3; i++) {
        assert_int_equal (r[i].result, RL_OK);
    }
    lk_restart (false);
    lk_expect (3, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        assert_false (s_found (&a[i]));
    }
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    lk_conserved (true);
    //  Committed: whole after the restart, past checkpoints (every 4).
    s_batch_expect (a, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    for (int i = 0; i < 4; i++) {
        rl_transfer_t t = lk_t (0, 1, 7, 1);
        assert_int_equal (lk_send (&t), RL_EXCEEDS_DEBITS); //  burned records, stored
    }
    lk_restart (true);
    lk_expect (3, 4, 2, 0, 10);
    lk_expect (5, 0, 0, 4, 2);
    for (int i = 0; i < 3; i++) {
        assert_true (s_found (&a[i]));
    }
    s_batch_expect (a, 3, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS});
    rl_transfer_t v = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &a[1], 0);
    assert_int_equal (lk_send (&v), RL_OK);
    lk_conserved (true);
    lk_teardown ();
}

//  Hostile PREPAREs to this shard as a participant (from s2, for credits
//  here): a chain's member never travels as such, so a PREPARE flagged
//  linked, alone or beside good records in one message, is refused
//  reserved_field on its own and changes nothing; the others prepare.
static void
test_across_hostile_prepare (void **state)
{
    (void) state;
    lk_setup ("/chains/hostile");
    participant_t *part = ledger_participant (lk_ledger);
    rl_prepare_rec_t recs[3];
    for (int k = 0; k < 3; k++) {
        rl_transfer_t t = lk_t (k == 1 ? LINKED : 0, 2, 3, 5);
        recs[k] = (rl_prepare_rec_t){.transfer = t};
        recs[k].tp.id = t.id;
        recs[k].tp.attempt = (rl_attempt_t){.counter = 1, .nonce = 7, .seq = (uint64_t) k + 1};
        recs[k].tp.amount = t.amount;
        recs[k].tp.debit_account_id = t.debit_account_id;
        snprintf (recs[k].tp.coordinator, sizeof (recs[k].tp.coordinator), "s2");
    }
    recs[2].transfer.flags = LINKED | RL_TRANSFER_BALANCING_DEBIT; //  two bad flags
    rl_tp_rec_t out[3];
    participant_prepare (part, recs, 3, "s2", lk_now (), out);
    assert_int_equal (out[0].state, RL_TP_PREPARED);
    assert_int_equal (out[1].state, RL_TP_REFUSED);
    assert_int_equal (out[1].result, RL_RESERVED_FIELD);
    assert_int_equal (out[2].state, RL_TP_REFUSED);
    assert_int_equal (out[2].result, RL_RESERVED_FIELD);
    lk_commit ();
    assert_int_equal (lk_account (3).credits_reserved, 5); //  the good one's only
    uint64_t prepared = 0, alarms = 0;
    participant_counts (part, &prepared, &alarms);
    assert_int_equal (prepared, 1);
    char err[256];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  Does s1 own account id in ring?
static bool
s_on_s1 (const ring_t *ring, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    int index = ring_lookup_id (ring, bytes);
    return index >= 0 && strcmp (ring_shard_name (ring, (size_t) index), "s1") == 0;
}

//  A post or void of a pending transfer an earlier member of the same chain
//  makes: its order, twice, an abort, a cancel, a restart, its expiry, and
//  the all-local group (waiting 0).
static void
test_across_own_pending (void **state)
{
    (void) state;
    lk_setup ("/chains/own_pending");
    char err[256];
    rl_tp_rec_t dec[16];
    rl_result_rec_t r[8];
    size_t n_dec = 0;
    rl_prepare_rec_t prep[16];
    //  1. The post before its pending transfer: not found, nothing held.
    rl_transfer_t p1 = lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 20);
    rl_transfer_t a[3] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p1, 0), p1,
                          lk_t (0, 1, 2, 1)};
    s_batch_expect (a, 3,
                    (uint32_t[]){RL_PENDING_TRANSFER_NOT_FOUND, RL_LINKED_EVENT_FAILED,
                                 RL_LINKED_EVENT_FAILED});
    assert_int_equal (lk_account (1).debits_reserved, 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  2. Two posts of it in one chain: the second already_posted.
    rl_transfer_t b[4] = {p1, lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p1, 5),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p1, 5),
                          lk_t (0, 1, 2, 1)};
    s_batch_expect (b, 4,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED,
                                 RL_PENDING_TRANSFER_ALREADY_POSTED, RL_LINKED_EVENT_FAILED});
    assert_int_equal (lk_account (1).debits_reserved, 0);
    //  3. Held, s2 refuses: nothing applied, the ids free.
    rl_transfer_t c[3] = {p1, lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p1, 5),
                          lk_t (0, 1, 2, 1)};
    assert_int_equal (s_across_send (c, 3, prep), 1);
    assert_int_equal (lk_account (1).debits_reserved, 21);
    assert_true (s_answer (&prep[0], RL_TP_REFUSED, RL_EXCEEDS_CREDITS, dec, &n_dec, r, 3));
    s_results (r, 3,
               (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_int_equal (lk_account (1).debits_reserved, 0);
    lk_expect (1, 0, 0, 0, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    //  4. A later member failing at its begin (cancel) after the post was held.
    rl_transfer_t d[4] = {p1, lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p1, 5),
                          lk_t (LINKED, 1, 2, 1), lk_t (0, 3, 5, 1000)};
    s_batch_expect (d, 4,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED,
                                 RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_int_equal (lk_account (1).debits_reserved, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    //  5. A restart while held: nothing left.
    assert_int_equal (s_across_send (c, 3, prep), 1);
    lk_restart (false);
    assert_int_equal (lk_account (1).debits_reserved, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  6. Its timeout tiny, the group decided long after: the post is applied
    //     right after it (its timestamp is the commit's), nothing expires twice.
    rl_transfer_t p6 = lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 30);
    p6.timeout = 1;
    rl_transfer_t e[3] = {p6, lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p6, 12),
                          lk_t (0, 1, 2, 1)};
    assert_int_equal (s_across_send (e, 3, prep), 1);
    lk_wall += 10 * S_NS;
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 3));
    s_results (r, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    lk_expect (1, 0, 13, 0, 0);
    lk_expect (3, 0, 0, 0, 12);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    lk_wall += 10 * S_NS;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (1, 0, 13, 0, 0);
    rl_transfer_t e2 = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p6, 0);
    assert_int_equal (lk_send (&e2), RL_PENDING_TRANSFER_ALREADY_POSTED);
    //  7. An all-local group: its member crediting s2 exists (stored before),
    //     so the launch applies the others at once (waiting 0), in order.
    rl_transfer_t x = lk_t (0, 1, 2, 2);
    assert_int_equal (s_across_send (&x, 1, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 1));
    assert_int_equal (r[0].result, RL_OK);
    rl_transfer_t p7 = lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 40);
    p7.timeout = 1;
    rl_transfer_t xl = x;
    xl.flags = LINKED;
    rl_transfer_t f[4] = {xl, p7, lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &p7, 0),
                          lk_t (0, 1, 3, 3)};
    s_batch_expect (f, 4, (uint32_t[]){RL_EXISTS, RL_OK, RL_OK, RL_OK});
    lk_expect (1, 0, 18, 0, 0);
    lk_expect (3, 0, 0, 0, 15);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    rl_transfer_t f2 = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p7, 0);
    assert_int_equal (lk_send (&f2), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    //  A void then a post in an all-local group: already voided, nothing.
    rl_transfer_t p8 = lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 40);
    rl_transfer_t g[4] = {xl, p8, lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &p8, 0),
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p8, 0)};
    s_batch_expect (g, 4,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_FAILED,
                                 RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_ALREADY_VOIDED});
    //  The same post twice (a repeat of the member) in a chain across.
    rl_transfer_t p9 = lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 9);
    rl_transfer_t post9 = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p9, 4);
    rl_transfer_t h[4] = {p9, post9, post9, lk_t (0, 1, 2, 1)};
    assert_int_equal (s_across_send (h, 4, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 4));
    s_results (r, 4, (uint32_t[]){RL_OK, RL_OK, RL_EXISTS, RL_OK});
    lk_expect (1, 0, 23, 0, 0);
    lk_expect (3, 0, 0, 0, 19);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    if (ledger_audit (lk_ledger, err, sizeof (err)) != 0) {
        fail_msg ("audit: %s", err);
    }
    lk_restart (true);
    lk_expect (1, 0, 23, 0, 0);
    lk_expect (3, 0, 0, 0, 19);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    lk_teardown ();
}

//  Builds on s1 a cross-shard pending transfer P (1 to an account A that s2
//  owns in lk_ring) and then a ring where s1 owns A too, A installed with
//  P's credit side: P's two entries here (as a migration leaves them).
static ring_t *s_ring2;
static rl_id_t s_acc_a;

static rl_transfer_t
s_two_entries (uint64_t amount, uint32_t timeout)
{
    rl_prepare_rec_t prep[16];
    rl_tp_rec_t dec[16];
    rl_result_rec_t r[2];
    size_t n_dec = 0;
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 1, 0, amount);
    p.credit_account_id = s_acc_a;
    p.timeout = timeout;
    assert_int_equal (s_across_send (&p, 1, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 1));
    assert_int_equal (r[0].result, RL_OK);
    rl_transfer_t stored;
    assert_int_equal (ledger_lookup_transfers (lk_ledger, &p.id, 1, &stored), 0);
    assert_true (stored.timestamp != 0);
    return stored;
}

static void
s_bring_credit (const rl_transfer_t *stored)
{
    rl_transfer_t side = *stored;
    side.flags = RL_TRANSFER_PENDING;
    side.reserved = PENDING_STATE_PENDING;
    assert_int_equal (ledger_pending_install (lk_ledger, &side, PENDING_SIDE_CREDIT), 0);
    lk_commit ();
}

static void
test_across_two_entries (void **state)
{
    (void) state;
    lk_setup ("/chains/two_entries");
    //  An account that s2 owns in lk_ring and s1 in ring2 (s1 weighs more).
    s_ring2 = ring_dup (lk_ring);
    assert_non_null (s_ring2);
    assert_int_equal (ring_reweight_shard (s_ring2, "s1", 8.0), 0);
    bool found = false;
    for (uint64_t hi = 1; hi < 100000 && !found; hi++) {
        rl_id_t id = {.lo = 77, .hi = hi};
        if (!s_on_s1 (lk_ring, id) && s_on_s1 (s_ring2, id)) {
            s_acc_a = id;
            found = true;
        }
    }
    assert_true (found);
    for (uint64_t k = 1; k <= 7; k += 2) {
        assert_true (s_on_s1 (s_ring2, lk_acc (k)));
    }
    //  An account s2 keeps in ring2 (the chains' fee across).
    rl_id_t fee = {0};
    for (uint64_t hi = 1; hi < 100000; hi++) {
        rl_id_t id = {.lo = 78, .hi = hi};
        if (!s_on_s1 (lk_ring, id) && !s_on_s1 (s_ring2, id)) {
            fee = id;
            break;
        }
    }
    assert_false (rl_id_is_zero (fee));
    //  Three pending transfers of 1 to A (side DEBIT here), then A comes.
    rl_transfer_t p1 = s_two_entries (30, 0);
    rl_transfer_t p2 = s_two_entries (40, 1);
    rl_transfer_t p3 = s_two_entries (50, 0);
    ledger_set_ring (lk_ledger, s_ring2);
    rl_account_t acc = {.id = s_acc_a, .ledger = LK_LEDGER, .code = 1, .timestamp = lk_wall};
    assert_int_equal (ledger_install_account (lk_ledger, &acc), 0);
    s_bring_credit (&p1);
    s_bring_credit (&p2);
    s_bring_credit (&p3);
    lk_expect (1, 120, 0, 0, 0);
    rl_account_t a = {0};
    ledger_lookup_accounts (lk_ledger, &s_acc_a, 1, &a);
    assert_int_equal (a.credits_pending, 120);
    rl_prepare_rec_t prep[16];
    rl_tp_rec_t dec[16];
    rl_result_rec_t r[8];
    size_t n_dec = 0;
    rl_transfer_t fee_t = lk_t (0, 1, 0, 1);
    fee_t.credit_account_id = fee;
    //  (a) A post of p1 with a fee across: held, both entries claimed.
    rl_transfer_t c[2] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p1, 10), fee_t};
    assert_int_equal (s_across_send (c, 2, prep), 1);
    rl_transfer_t other = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (lk_send (&other), RL_IN_PROGRESS);
    //  Two posts of it in one chain (the second: already_posted, nothing held).
    rl_transfer_t c2[3] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p3, 10),
                           lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p3, 10), fee_t};
    c2[2].id = (rl_id_t){lk_next_id++, 0x9e};
    s_batch_expect (c2, 3,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_ALREADY_POSTED,
                                 RL_LINKED_EVENT_FAILED});
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_OK, RL_OK});
    lk_expect (1, 90, 11, 0, 0);
    ledger_lookup_accounts (lk_ledger, &s_acc_a, 1, &a);
    assert_int_equal (a.credits_pending, 90);
    assert_int_equal (a.credits_posted, 10);
    assert_int_equal (lk_send (&other), RL_PENDING_TRANSFER_ALREADY_POSTED);
    //  (b) p2 (timeout 1 s) held, past its expiry while held; s2 refuses:
    //  released, then its expiry releases it once (both entries).
    rl_transfer_t fee2 = fee_t;
    fee2.id = (rl_id_t){lk_next_id++, 0x9e};
    rl_transfer_t d[2] = {lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p2, 0), fee2};
    assert_int_equal (s_across_send (d, 2, prep), 1);
    lk_wall += 5 * S_NS;
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (1, 90, 11, 0, 0); //  claimed: not expired
    assert_true (s_answer (&prep[0], RL_TP_REFUSED, RL_EXCEEDS_CREDITS, dec, &n_dec, r, 2));
    s_results (r, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    for (int k = 0; k < 3; k++) {
        lk_mono += 2 * S_NS;
        lk_wall += 2 * S_NS;
        ledger_tick (lk_ledger, lk_now ());
        lk_commit ();
    }
    lk_expect (1, 50, 11, 0, 0);
    ledger_lookup_accounts (lk_ledger, &s_acc_a, 1, &a);
    assert_int_equal (a.credits_pending, 50);
    rl_transfer_t late = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 0);
    assert_int_equal (lk_send (&late), RL_PENDING_TRANSFER_EXPIRED);
    //  (c) p3 held in a chain that also makes a pending transfer here and
    //  posts it (both kinds of hold in one chain), then a restart while held.
    rl_transfer_t q = lk_t (RL_TRANSFER_PENDING | LINKED, 1, 3, 5);
    rl_transfer_t fee3 = fee_t;
    fee3.id = (rl_id_t){lk_next_id++, 0x9e};
    rl_transfer_t e[4] = {lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &p3, 0), q,
                          lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &q, 0), fee3};
    assert_int_equal (s_across_send (e, 4, prep), 1);
    lk_restart (false);
    ledger_set_ring (lk_ledger, s_ring2);
    //  (The restart rebuilt the table from the store: the credit side
    //  install was committed, so both entries are back, unclaimed.)
    assert_int_equal (lk_account (1).debits_reserved, 0);
    assert_int_equal (s_across_send (e, 4, prep), 1);
    assert_true (s_answer (&prep[0], RL_TP_PREPARED, 0, dec, &n_dec, r, 4));
    s_results (r, 4, (uint32_t[]){RL_OK, RL_OK, RL_OK, RL_OK});
    lk_expect (1, 0, 17, 0, 0);
    ledger_lookup_accounts (lk_ledger, &s_acc_a, 1, &a);
    assert_int_equal (a.credits_pending, 0);
    assert_int_equal (a.credits_posted, 10);
    assert_int_equal (ledger_pending_count (lk_ledger), 0);
    char err[512];
    if (ledger_audit (lk_ledger, err, sizeof (err)) != 0) {
        fail_msg ("audit: %s", err);
    }
    lk_teardown ();
    ring_destroy (&s_ring2);
}

int
main (void)
{
    setenv ("RL_LOG_LEVEL", "warn", 0);
    if (getenv ("RL_CASE")) {
        cmocka_set_test_filter (getenv ("RL_CASE"));
    }
    if (getenv ("RL_SKIP")) {
        cmocka_set_skip_filter (getenv ("RL_SKIP"));
    }
    lk_ring_setup ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_all_ok),
        cmocka_unit_test (test_one_fails),
        cmocka_unit_test (test_chain_open),
        cmocka_unit_test (test_pending_members),
        cmocka_unit_test (test_shards),
        cmocka_unit_test (test_across_commit),
        cmocka_unit_test (test_across_pending),
        cmocka_unit_test (test_across_pending_limits),
        cmocka_unit_test (test_pending_room),
        cmocka_unit_test (test_legs),
        cmocka_unit_test (test_post_legs),
        cmocka_unit_test (test_post_leg_orders),
        cmocka_unit_test (test_across_abort),
        cmocka_unit_test (test_across_hostile_prepare),
        cmocka_unit_test (test_bad_input),
        cmocka_unit_test (test_crash),
        cmocka_unit_test (test_across_own_pending),
        cmocka_unit_test (test_across_two_entries),
        cmocka_unit_test (test_own_pending_credit),
        cmocka_unit_test (test_own_pending_stale),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    ring_destroy (&lk_ring);
    return rc;
}
