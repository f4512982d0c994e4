/*  test_pending.c: user-level pending transfers, rule by rule, on one
    shard's ledger with storage in memory (docs/protocol.md, "Pending
    transfers").

    The ledger of shard s1 (of a ring of s1 and s2: odd accounts are s1's,
    even ones s2's) runs on an in-memory file system that keeps what was
    committed across a restart, with an injected wall clock, so that
    expiry, crashes before and after a group commit, restarts while a
    pending transfer's time passes and clock steps are exact and fast.

    - test_rules: every result code of pending, post and void, in its
      precedence; amount 0 posts or voids all; partial posts; the limits
      count pending amounts; the burn rule (a failed post burns its own id,
      never the pending transfer); exists for retries of posts and voids
      that left inherited fields 0, but exists_with_different_amount for a
      partial post's id sent again with amount 0 (the whole amount).
    - test_bad_input: hostile flags, zero and huge amounts, and ids.
    - test_one_batch: a pending transfer, its post and a second post (and
      void) in one request: applied in order, the second answered
      already_posted; two partial posts of one pending transfer.
    - test_expiry: a timeout expires on the shard's timestamp clock, at a
      tick or at the post that comes too late; after expiry nothing can
      post or void it; a clock stepping back does not undo it.
    - test_recovery: pending, posted, voided and expiring transfers across
      restarts, with checkpoints between: amounts come back exactly, a
      transfer that expired while the shard was down expires at recovery
      (committed there), and a post lost in an uncommitted batch leaves its
      transfer pending.
    - test_cross_shard: a post or void of an unknown pending id is
      pending_transfer_not_found, and one whose debit account is another
      shard's wrong_shard (cross-shard pending transfers themselves run
      through two real shards: test_pending_xshard.c).
    - test_arc_index: the table's index by account (pending.c, "THE INDEX
      BY ACCOUNT") gives, for arcs of every shape (one account's point,
      two, a range that wraps past 0, all but one point), exactly the
      entries a scan of the whole table finds, once each, whatever the
      limits per call (the cursor resumes inside one point's keys); after
      a handover that splits entries, after a store whose index was
      removed is opened again (the index is built), and with corrupt keys
      (a bad flag, a value of another size, an entry of another debit
      account: an error, the cursor unchanged); the audit finds a transfer
      still pending whose key holds another entry, or none.
    Every test ends with the audit (pending amounts equal the transfers
    still pending) and conservation: debits posted == credits posted, and,
    once everything is settled or expired, nothing pending.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "failpoint.h"
#include "imported.h"
#include "ledgerkit.h"
#include "pending.h"

#define LEDGER LK_LEDGER
#define S_NS   LK_S_NS

static void
s_tick (void)
{
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
}

static void
s_fund (void)
{
    rl_transfer_t t = lk_t (0, 1, 3, 100);
    assert_int_equal (lk_send (&t), RL_OK);
}

//  Rules ---------------------------------------------------------------------------

static void
test_rules (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    //  A pending transfer reserves; the limit counts it.
    rl_transfer_t p1 = lk_t (RL_TRANSFER_PENDING, 3, 5, 60);
    assert_int_equal (lk_send (&p1), RL_OK);
    lk_expect (3, 60, 0, 0, 100);
    lk_expect (5, 0, 0, 60, 0);
    rl_transfer_t over = lk_t (RL_TRANSFER_PENDING, 3, 5, 41);
    assert_int_equal (lk_send (&over), RL_EXCEEDS_CREDITS); //  60 pending + 41 > 100
    rl_transfer_t plain = lk_t (0, 3, 5, 41);
    assert_int_equal (lk_send (&plain), RL_EXCEEDS_CREDITS); //  a plain one counts it too
    //  credits_must_not_exceed_debits counts pending credits.
    rl_transfer_t to7 = lk_t (RL_TRANSFER_PENDING, 1, 7, 1);
    assert_int_equal (lk_send (&to7), RL_EXCEEDS_DEBITS);

    //  The pending group, in its precedence.
    rl_transfer_t t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.pending_id = (rl_id_t){.lo = 999999, .hi = 0x9e};
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_NOT_FOUND);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &over, 0); //  burned: no transfer
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_NOT_FOUND);
    rl_transfer_t fund2 = lk_t (0, 1, 3, 5);
    assert_int_equal (lk_send (&fund2), RL_OK);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &fund2, 0);
    t.debit_account_id = lk_acc (1);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_NOT_PENDING);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.debit_account_id = lk_acc (1);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.credit_account_id = lk_acc (7);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.ledger = LEDGER + 1;
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.code = 2;
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 61);
    assert_int_equal (lk_send (&t), RL_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p1, 59);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT);
    //  Burn rule: a failed post burns its own id (a retry gets the same
    //  failure), and leaves the pending transfer as it was.
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT);
    lk_expect (3, 60, 0, 0, 105);

    //  Post in full with amount 0, fields inherited; a retry is exists,
    //  whether it leaves them 0 or names them.
    rl_transfer_t post1 = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (lk_send (&post1), RL_OK);
    lk_expect (3, 0, 60, 0, 105);
    lk_expect (5, 0, 0, 0, 60);
    assert_int_equal (lk_send (&post1), RL_EXISTS);
    rl_transfer_t named = post1;
    named.credit_account_id = lk_acc (5), named.amount = 60, named.ledger = LEDGER, named.code = 1;
    assert_int_equal (lk_send (&named), RL_EXISTS);
    named.amount = 59;
    assert_int_equal (lk_send (&named), RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    //  The stored post is complete: lookup shows what it moved.
    rl_transfer_t looked;
    assert_int_equal (ledger_lookup_transfers (lk_ledger, &post1.id, 1, &looked), 0);
    assert_int_equal (looked.amount, 60);
    assert_true (rl_id_eq (looked.credit_account_id, lk_acc (5)));
    assert_int_equal (looked.ledger, LEDGER);
    //  Already posted, for a post and for a void.
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_ALREADY_POSTED);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_ALREADY_POSTED);

    //  A partial post releases the rest.
    rl_transfer_t p2 = lk_t (RL_TRANSFER_PENDING, 3, 5, 30);
    assert_int_equal (lk_send (&p2), RL_OK);
    lk_expect (3, 30, 60, 0, 105);
    rl_transfer_t post2 = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 10);
    assert_int_equal (lk_send (&post2), RL_OK);
    lk_expect (3, 0, 70, 0, 105);
    lk_expect (5, 0, 0, 0, 70);
    //  Its id sent again: with its amount, exists; with amount 0, which
    //  means the whole 30, not what it posted (as in TigerBeetle).
    assert_int_equal (lk_send (&post2), RL_EXISTS);
    rl_transfer_t whole = post2;
    whole.amount = 0;
    assert_int_equal (lk_send (&whole), RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    whole.amount = 30;
    assert_int_equal (lk_send (&whole), RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    lk_expect (3, 0, 70, 0, 105);

    //  A void releases it all; then already voided.
    rl_transfer_t p3 = lk_t (RL_TRANSFER_PENDING, 3, 5, 35);
    assert_int_equal (lk_send (&p3), RL_OK);
    rl_transfer_t void3 = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p3, 35);
    assert_int_equal (lk_send (&void3), RL_OK);
    lk_expect (3, 0, 70, 0, 105);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p3, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p3, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    //  A post names a post: not pending.
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &post1, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_NOT_PENDING);

    //  History: the pending transfers, the posts and the void, in order;
    //  the posted amounts sum to the balance.
    rl_filter_t f = {.account_id = lk_acc (5), .limit = 100, .flags = RL_FILTER_CREDITS};
    rl_transfer_t hist[100];
    size_t n = 0;
    assert_int_equal (ledger_account_transfers (lk_ledger, &f, hist, &n), RL_STATUS_OK);
    uint64_t posted = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(hist[i].flags & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER))) {
            posted += hist[i].amount;
        }
    }
    assert_int_equal (n, 6); //  p1, post1, p2, post2, p3, void3
    assert_int_equal (posted, 70);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_bad_input (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 3, 5, 10);
    assert_int_equal (lk_send (&p), RL_OK);
    struct {
        rl_transfer_t t;
        uint32_t want;
    } cases[32];
    size_t n = 0;
    rl_transfer_t t = lk_t (0xfffe, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_RESERVED_FLAG};
    //  Linked alone: its chain is open at the end of the batch, before any
    //  check of the record (test_chains.c has the rules of chains).
    t = lk_t (0xffff, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_LINKED_EVENT_CHAIN_OPEN};
    t = lk_t (RL_TRANSFER_PENDING | 0x40, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_RESERVED_FLAG};
    t = lk_t (RL_TRANSFER_PENDING | RL_TRANSFER_POST_PENDING_TRANSFER, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    cases[n++] = (typeof (cases[0])){t, RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE};
    t = lk_t (RL_TRANSFER_PENDING | RL_TRANSFER_LINKED, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_LINKED_EVENT_CHAIN_OPEN};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_BALANCING_DEBIT, &p, 0);
    cases[n++] = (typeof (cases[0])){t, RL_NOT_SUPPORTED};
    t = lk_t (RL_TRANSFER_PENDING, 3, 5, 0);
    cases[n++] = (typeof (cases[0])){t, RL_AMOUNT_MUST_NOT_BE_ZERO};
    t = lk_t (RL_TRANSFER_PENDING, 3, 5, 1);
    t.pending_id = p.id;
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_BE_ZERO};
    t = lk_t (0, 3, 5, 1);
    t.timeout = 5;
    cases[n++] = (typeof (cases[0])){t, RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER};
    t = lk_t (RL_TRANSFER_PENDING, 3, 0, 1);
    cases[n++] = (typeof (cases[0])){t, RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO};
    t = lk_t (RL_TRANSFER_PENDING, 3, 3, 1);
    cases[n++] = (typeof (cases[0])){t, RL_ACCOUNTS_MUST_BE_DIFFERENT};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.pending_id = (rl_id_t){0};
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_NOT_BE_ZERO};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.pending_id = (rl_id_t){UINT64_MAX, UINT64_MAX};
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_NOT_BE_INT_MAX};
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    t.pending_id = t.id;
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_BE_DIFFERENT};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.timeout = 1;
    cases[n++] = (typeof (cases[0])){t, RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.debit_account_id = (rl_id_t){0};
    cases[n++] = (typeof (cases[0])){t, RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.credit_account_id = (rl_id_t){UINT64_MAX, UINT64_MAX};
    cases[n++] = (typeof (cases[0])){t, RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.credit_account_id = t.debit_account_id;
    cases[n++] = (typeof (cases[0])){t, RL_ACCOUNTS_MUST_BE_DIFFERENT};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.reserved = 1;
    cases[n++] = (typeof (cases[0])){t, RL_RESERVED_FIELD};
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.timestamp = 1;
    cases[n++] = (typeof (cases[0])){t, RL_TIMESTAMP_MUST_BE_ZERO};
    //  Field validation never burns: each id stays free, nothing moves.
    for (size_t i = 0; i < n; i++) {
        uint32_t got = lk_send (&cases[i].t);
        if (got != cases[i].want) {
            fail_msg ("case %zu: %s, expected %s", i, rl_result_name (got),
                      rl_result_name (cases[i].want));
        }
        assert_int_equal (lk_send (&cases[i].t), cases[i].want);
    }
    lk_expect (3, 10, 0, 0, 100);
    //  Huge amounts: a post of more than pending; a pending transfer whose
    //  sum overflows (account 1 may go negative).
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, UINT64_MAX);
    assert_int_equal (lk_send (&t), RL_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    rl_transfer_t big = lk_t (RL_TRANSFER_PENDING, 1, 5, UINT64_MAX - 200);
    assert_int_equal (lk_send (&big), RL_OK);
    rl_transfer_t big2 = lk_t (RL_TRANSFER_PENDING, 1, 5, 300);
    assert_int_equal (lk_send (&big2), RL_OVERFLOWS_DEBITS_PENDING);
    rl_transfer_t big3 = lk_t (RL_TRANSFER_PENDING, 1, 3, UINT64_MAX);
    assert_int_equal (lk_send (&big3), RL_OVERFLOWS_DEBITS_PENDING);
    rl_transfer_t big4 = lk_t (0, 1, 3, 250);
    assert_int_equal (lk_send (&big4), RL_OVERFLOWS_DEBITS); //  posted + pending + amount
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &big, 0);
    assert_int_equal (lk_send (&t), RL_OK);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    assert_int_equal (lk_send (&t), RL_OK);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_one_batch (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    rl_transfer_t batch[6];
    batch[0] = lk_t (RL_TRANSFER_PENDING, 3, 5, 50);
    batch[1] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[0], 20);
    batch[2] = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[0], 20);
    batch[3] = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &batch[0], 0);
    batch[4] = lk_t (RL_TRANSFER_PENDING, 3, 5, 50);
    batch[5] = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &batch[4], 0);
    rl_result_rec_t r[6];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 6};
    assert_int_equal (ledger_create_transfers (lk_ledger, batch, 6, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_NOW);
    lk_commit ();
    uint32_t want[6] = {
        RL_OK, RL_OK, RL_PENDING_TRANSFER_ALREADY_POSTED, RL_PENDING_TRANSFER_ALREADY_POSTED,
        RL_OK, RL_OK};
    for (int i = 0; i < 6; i++) {
        assert_int_equal (r[i].result, want[i]);
    }
    lk_expect (3, 0, 20, 0, 100);
    //  The same request again: every record is answered from its id.
    assert_int_equal (ledger_create_transfers (lk_ledger, batch, 6, lk_now (), NULL, &h, r),
                      LEDGER_REPLY_NOW);
    lk_commit ();
    uint32_t again[6] = {RL_EXISTS,
                         RL_EXISTS,
                         RL_PENDING_TRANSFER_ALREADY_POSTED,
                         RL_PENDING_TRANSFER_ALREADY_POSTED,
                         RL_EXISTS,
                         RL_EXISTS};
    for (int i = 0; i < 6; i++) {
        assert_int_equal (r[i].result, again[i]);
    }
    //  After a restart the states come from the store.
    lk_restart (true);
    rl_transfer_t t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[0], 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_ALREADY_POSTED);
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[4], 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    lk_expect (3, 0, 20, 0, 100);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_expiry (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    rl_transfer_t p1 = lk_t (RL_TRANSFER_PENDING, 3, 5, 10);
    p1.timeout = 2;
    rl_transfer_t p2 = lk_t (RL_TRANSFER_PENDING, 3, 5, 20);
    p2.timeout = 1;
    rl_transfer_t p3 = lk_t (RL_TRANSFER_PENDING, 3, 5, 30); //  never expires
    assert_int_equal (lk_send (&p1), RL_OK);
    assert_int_equal (lk_send (&p2), RL_OK);
    assert_int_equal (lk_send (&p3), RL_OK);
    lk_expect (3, 60, 0, 0, 100);
    //  Retry with another timeout: exists_with_different_timeout.
    rl_transfer_t other = p1;
    other.timeout = 3;
    assert_int_equal (lk_send (&other), RL_EXISTS_WITH_DIFFERENT_TIMEOUT);
    lk_wall += S_NS / 2;
    s_tick ();
    lk_expect (3, 60, 0, 0, 100);
    lk_wall += S_NS;
    s_tick (); //  p2's time has come
    lk_expect (3, 40, 0, 0, 100);
    rl_transfer_t t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p2, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    //  A post that comes after p1's time, before any tick expired it: the
    //  post expires it (its own timestamp is past the expiry).
    lk_wall += S_NS;
    rl_transfer_t late = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (lk_send (&late), RL_PENDING_TRANSFER_EXPIRED);
    lk_expect (3, 30, 0, 0, 100);
    assert_int_equal (lk_send (&late), RL_PENDING_TRANSFER_EXPIRED); //  burned
    //  The wall clock steps back an hour: the expiry stands, and a post
    //  still gets expired (the state is kept, whatever the clock).
    lk_wall -= 3600 * S_NS;
    s_tick ();
    t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    lk_expect (3, 30, 0, 0, 100);
    //  A pending transfer made while the clock is back expires by the
    //  shard's timestamp clock (never below the last timestamp).
    rl_transfer_t p4 = lk_t (RL_TRANSFER_PENDING, 3, 5, 5);
    p4.timeout = 1;
    assert_int_equal (lk_send (&p4), RL_OK);
    lk_wall += 3600 * S_NS + 2 * S_NS;
    s_tick ();
    lk_expect (3, 30, 0, 0, 100);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p3, 0);
    assert_int_equal (lk_send (&t), RL_OK);
    lk_conserved (true); //  nothing pending left after expiry
    lk_teardown ();
}

static void
test_recovery (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    rl_transfer_t keep = lk_t (RL_TRANSFER_PENDING, 3, 5, 11);
    rl_transfer_t posted = lk_t (RL_TRANSFER_PENDING, 3, 5, 12);
    rl_transfer_t voided = lk_t (RL_TRANSFER_PENDING, 3, 5, 13);
    rl_transfer_t expiring = lk_t (RL_TRANSFER_PENDING, 3, 5, 14);
    expiring.timeout = 10;
    assert_int_equal (lk_send (&keep), RL_OK);
    assert_int_equal (lk_send (&posted), RL_OK);
    assert_int_equal (lk_send (&voided), RL_OK);
    assert_int_equal (lk_send (&expiring), RL_OK);
    rl_transfer_t post = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &posted, 12);
    rl_transfer_t void_ = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &voided, 0);
    assert_int_equal (lk_send (&post), RL_OK);
    assert_int_equal (lk_send (&void_), RL_OK);
    lk_expect (3, 25, 12, 0, 100);
    assert_int_equal (ledger_checkpoint (lk_ledger), 0); //  accounts stored with pending amounts
    lk_restart (true);
    lk_expect (3, 25, 12, 0, 100);
    lk_expect (5, 0, 0, 25, 12);
    lk_conserved (false);

    //  A post lost with an uncommitted batch: still pending after restart.
    rl_transfer_t lost = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &keep, 0);
    rl_result_rec_t r;
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 1};
    ledger_create_transfers (lk_ledger, &lost, 1, lk_now (), NULL, &h, &r);
    assert_int_equal (r.result, RL_OK);
    lk_expect (3, 14, 23, 0, 100);
    lk_restart (false);
    lk_expect (3, 25, 12, 0, 100);

    //  The shard is down while `expiring` passes its time: it expires at
    //  recovery, before anything else, and can never be posted.
    lk_close (true);
    lk_wall += 11 * S_NS;
    lk_open ();
    lk_expect (3, 11, 12, 0, 100);
    //  Recovery committed the expiry before it returned: a crash right
    //  after (nothing else committed) keeps it.
    lk_close (false);
    lk_open ();
    lk_expect (3, 11, 12, 0, 100);
    rl_transfer_t t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &expiring, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    lk_close (true);
    lk_open ();
    lk_expect (3, 11, 12, 0, 100);
    t = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &expiring, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    lk_conserved (false);
    //  The lost post, sent again with its id, applies once.
    assert_int_equal (lk_send (&lost), RL_OK);
    assert_int_equal (lk_send (&lost), RL_EXISTS);
    lk_restart (true);
    assert_int_equal (lk_send (&lost), RL_EXISTS);
    lk_expect (3, 0, 23, 0, 100);
    lk_expect (5, 0, 0, 0, 23);
    lk_conserved (true);
    lk_teardown ();
}

static void
test_cross_shard (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 3, 2, 10); //  account 2 is s2's: never sent
    rl_transfer_t t = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    assert_int_equal (lk_send (&t), RL_PENDING_TRANSFER_NOT_FOUND);
    //  A post or void whose debit account is another shard's: wrong_shard.
    t.debit_account_id = lk_acc (2);
    assert_int_equal (lk_send (&t), RL_WRONG_SHARD);
    lk_expect (3, 0, 0, 0, 100);
    lk_conserved (true);
    lk_teardown ();
}

//  The index by account ----------------------------------------------------------

#define S_ARC_SEEN_MAX 256

typedef struct {
    rl_transfer_t seen[S_ARC_SEEN_MAX];
    size_t count;
} s_arc_seen_t;

static void
s_arc_add (void *arg, const rl_transfer_t *t)
{
    s_arc_seen_t *s = arg;
    assert_true (s->count < S_ARC_SEEN_MAX);
    s->seen[s->count++] = *t;
}

static uint64_t
s_arc_point (uint64_t a)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (lk_acc (a), bytes);
    return ring_point_of_id (bytes);
}

//  What a scan of the whole table finds for the arc: the entries that name
//  an account of the arc on a side they hold.
static void
s_arc_scan (uint64_t start, uint64_t end, s_arc_seen_t *s)
{
    s->count = 0;
    store_iter_t *it = store_iter_new (lk_store, STORE_CF_PENDING);
    assert_non_null (it);
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t size = 0;
        rl_transfer_t t;
        codec_decode_transfer (store_iter_value (it, &size), &t);
        if (imported_pending_side (start, end, &t) >= 0) {
            s_arc_add (s, &t);
        }
    }
    store_iter_destroy (&it);
}

static bool
s_arc_has (const s_arc_seen_t *s, const rl_transfer_t *t)
{
    for (size_t i = 0; i < s->count; i++) {
        if (memcmp (&s->seen[i], t, sizeof (*t)) == 0) {
            return true;
        }
    }
    return false;
}

//  Reads the arc through the index with these limits per call; fails unless
//  it gives what the scan finds, each once.
static void
s_arc_check (uint64_t start, uint64_t end, size_t keys_max, size_t entries_max)
{
    s_arc_seen_t want, got = {.count = 0};
    s_arc_scan (start, end, &want);
    uint8_t cursor[16] = {0};
    int rc = 0;
    for (int calls = 0; rc == 0; calls++) {
        assert_true (calls < 1000);
        size_t keys = 0, before = got.count;
        rc = pending_arc_each (lk_store, start, end, cursor, keys_max, entries_max, s_arc_add, &got,
                               &keys);
        assert_true (rc >= 0 && keys <= keys_max && got.count - before <= entries_max);
    }
    assert_int_equal (got.count, want.count);
    for (size_t i = 0; i < got.count; i++) {
        assert_true (s_arc_has (&want, &got.seen[i]));
        for (size_t j = 0; j < i; j++) {
            assert_true (memcmp (&got.seen[i], &got.seen[j], sizeof (rl_transfer_t)) != 0);
        }
    }
}

//  Every arc shape around the points of accounts 1, 3 and 5, at each limit.
static void
s_arc_check_all (void)
{
    uint64_t p[3] = {s_arc_point (1), s_arc_point (3), s_arc_point (5)};
    static const size_t limits[][2] = {{1, 1}, {1, 1000}, {1000, 1}, {2, 3}, {1000, 1000}};
    for (size_t l = 0; l < sizeof (limits) / sizeof (limits[0]); l++) {
        size_t keys = limits[l][0], entries = limits[l][1];
        for (size_t i = 0; i < 3; i++) {
            s_arc_check (p[i] - 1, p[i], keys, entries);           //  one point
            s_arc_check (p[i], p[i] - 1, keys, entries);           //  all but one: wraps
            s_arc_check (p[i] - 1, p[(i + 1) % 3], keys, entries); //  two or three
            s_arc_check (p[(i + 1) % 3], p[i], keys, entries);     //  the rest
        }
        s_arc_check (UINT64_MAX, p[0], keys, entries); //  from point 0
        s_arc_check (p[0], UINT64_MAX, keys, entries); //  to the last point
    }
}

static void
test_arc_index (void **state)
{
    (void) state;
    lk_setup ("/pending/s1");
    s_fund ();
    //  Pending transfers from 1 to 3 and 5, some posted, some voided.
    rl_transfer_t last = {.id = {0}};
    for (uint64_t k = 0; k < 24; k++) {
        rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 1, k % 2 ? 3 : 5, 1 + k);
        assert_int_equal (lk_send (&p), RL_OK);
        last = k % 2 ? p : last; //  from 1 to 3
        if (k % 3 != 0) {
            uint16_t how = k % 3 == 1 ? RL_TRANSFER_POST_PENDING_TRANSFER
                                      : RL_TRANSFER_VOID_PENDING_TRANSFER;
            rl_transfer_t r = lk_resolve (how, &p, 0);
            assert_int_equal (lk_send (&r), RL_OK);
        }
    }
    s_arc_check_all ();
    char err[256];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);

    //  Account 3 leaves: its live entries keep their debit side (split),
    //  the credit's keys go with it; the resolved ones stay as they were.
    uint64_t p3 = s_arc_point (3);
    assert_true (ledger_pending_hand_over (lk_ledger, p3 - 1, p3) > 0);
    lk_commit ();
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    s_arc_check_all ();

    //  A store without the index (an older shard's): built when it opens.
    static const uint8_t from[1] = {0x00},
                         to[9] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    store_batch_delete_range (lk_store, STORE_CF_PENDING_ARC, from, sizeof (from), to, sizeof (to));
    store_batch_delete (lk_store, STORE_CF_META, PENDING_META_ARC_INDEX,
                        strlen (PENDING_META_ARC_INDEX));
    lk_commit ();
    uint8_t cursor[16] = {0};
    size_t keys = 0;
    s_arc_seen_t got = {.count = 0};
    assert_int_equal (
        pending_arc_each (lk_store, 0, UINT64_MAX, cursor, 1000, 1000, s_arc_add, &got, &keys), 1);
    assert_int_equal (keys, 0); //  nothing indexed
    lk_restart (true);
    s_arc_check_all ();
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);

    //  Corrupt keys: a flag other than 0 or 1, a value of another size, an
    //  entry of another debit account than its key's. Each is an error, and
    //  the cursor does not move.
    uint8_t key[PENDING_ARC_KEY_SIZE], value[RL_TRANSFER_SIZE];
    static const uint8_t zeros[16] = {0};
    rl_transfer_t other = last;
    other.debit_account_id = lk_acc (5);
    codec_encode_transfer (&last, value);
    for (int bad = 0; bad < 3; bad++) {
        pending_arc_key (lk_acc (3), bad == 0 ? &last : &other, false, key); //  not its keys
        key[PENDING_ARC_KEY_SIZE - 1] = bad == 0 ? 7 : 0;
        store_batch_put (lk_store, STORE_CF_PENDING_ARC, key, sizeof (key), value,
                         bad == 1 ? 64 : sizeof (value));
        lk_commit ();
        memset (cursor, 0, sizeof (cursor));
        assert_int_equal (
            pending_arc_each (lk_store, p3 - 1, p3, cursor, 1000, 1000, s_arc_add, &got, &keys),
            -1);
        assert_memory_equal (cursor, zeros, sizeof (zeros));
        store_batch_delete (lk_store, STORE_CF_PENDING_ARC, key, sizeof (key));
        lk_commit ();
    }
    s_arc_check_all ();

    //  A transfer still pending whose key holds another entry, or whose key
    //  is lost: the audit says so.
    rl_transfer_t live = lk_t (RL_TRANSFER_PENDING, 1, 5, 9);
    assert_int_equal (lk_send (&live), RL_OK);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    pending_arc_key (lk_acc (5), &live, false, key);
    store_batch_put (lk_store, STORE_CF_PENDING_ARC, key, sizeof (key), value, sizeof (value));
    lk_commit ();
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), -1);
    assert_non_null (strstr (err, "another entry in the index by account (credit account)"));
    store_batch_delete (lk_store, STORE_CF_PENDING_ARC, key, sizeof (key));
    lk_commit ();
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), -1);
    assert_non_null (strstr (err, "no key in the index by account (credit account)"));

    //  A read of the index that fails is said as such, not as a missing key.
    assert_int_equal (setenv ("RL_FAILPOINTS", "store.iter=error", 1), 0);
    assert_int_equal (failpoint_init (err, sizeof (err)), 0);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), -1);
    unsetenv ("RL_FAILPOINTS");
    assert_int_equal (failpoint_init (NULL, 0), 0);
    assert_non_null (strstr (err, "the index by account could not be read"));
    lk_restart (false); //  the store failed: reopened
    lk_teardown ();
}

int
main (void)
{
    setenv ("RL_LOG_LEVEL", "warn", 0);
    lk_ring_setup ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rules),     cmocka_unit_test (test_bad_input),
        cmocka_unit_test (test_one_batch), cmocka_unit_test (test_expiry),
        cmocka_unit_test (test_recovery),  cmocka_unit_test (test_cross_shard),
        cmocka_unit_test (test_arc_index),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    ring_destroy (&lk_ring);
    return rc;
}
