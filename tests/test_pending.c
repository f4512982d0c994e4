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
      that left inherited fields 0.
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
    - test_cross_shard: a pending transfer whose credit account is on
      another shard is refused not_supported (not burned).
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

#include "codec.h"
#include "ledger.h"
#include "outq.h"
#include "ring.h"
#include "store.h"

#define LEDGER   7
#define ACCOUNTS 8
#define S_NS     1000000000ull
#define T0       1700000000000000000ull

static ring_t *s_ring;
static uint64_t s_hi[ACCOUNTS + 1]; //  account a is {a, s_hi[a]}
static store_env_t *s_env;
static store_t *s_store;
static outq_t *s_outq;
static ledger_t *s_ledger;
static uint64_t s_wall = T0;
static uint64_t s_mono = 1;
static uint64_t s_next_id = 1000;

static now_t
s_now (void)
{
    return (now_t){.wall_ns = s_wall, .mono_ns = s_mono};
}

static rl_id_t
s_acc (uint64_t a)
{
    return (rl_id_t){.lo = a, .hi = s_hi[a]};
}

static void
s_ring_setup (void)
{
    s_ring = ring_new (1);
    assert_non_null (s_ring);
    assert_int_equal (ring_add_shard (s_ring, "s1", "inproc://s1", 1.0), 0);
    assert_int_equal (ring_add_shard (s_ring, "s2", "inproc://s2", 1.0), 0);
    for (uint64_t a = 1; a <= ACCOUNTS; a++) {
        const char *want = (a & 1) ? "s1" : "s2";
        for (uint64_t hi = 0;; hi++) {
            uint8_t bytes[RL_ID_SIZE];
            codec_encode_id ((rl_id_t){.lo = a, .hi = hi}, bytes);
            int index = ring_lookup_id (s_ring, bytes);
            if (index >= 0 && strcmp (ring_shard_name (s_ring, (size_t) index), want) == 0) {
                s_hi[a] = hi;
                break;
            }
        }
    }
}

static void
s_open (void)
{
    char err[256];
    s_store = store_open_env ("/pending/s1", RL_DURABILITY_SYNC, s_env, err, sizeof (err));
    assert_non_null (s_store);
    s_outq = outq_new ();
    assert_non_null (s_outq);
    s_ledger = ledger_open (s_store, s_outq, "s1", s_ring, 42, s_now (), err, sizeof (err));
    if (!s_ledger) {
        fail_msg ("ledger_open: %s", err);
    }
    ledger_set_checkpoint_transfers (s_ledger, 4); //  checkpoints between the steps
}

static void
s_commit (void)
{
    ledger_before_commit (s_ledger);
    assert_int_equal (store_commit (s_store), 0);
    outq_batch_synced (s_outq);
    outq_clear (s_outq);
    assert_int_equal (ledger_after_commit (s_ledger), 0);
}

static void
s_close (bool commit)
{
    if (commit) {
        s_commit ();
    } else {
        store_batch_discard (s_store); //  a crash before the commit
    }
    ledger_destroy (&s_ledger);
    outq_destroy (&s_outq);
    store_close (&s_store);
}

static void
s_restart (bool commit)
{
    s_close (commit);
    s_mono += S_NS;
    s_open ();
}

//  Accounts 1 (free to go negative), 3, 5 (debits must not exceed
//  credits) and 7 (credits must not exceed debits), then 1 funds 3 with 100.
static void
s_setup (void **state)
{
    (void) state;
    s_wall = T0;
    s_env = store_env_new_mem ();
    assert_non_null (s_env);
    s_open ();
    rl_account_t accounts[4];
    rl_result_rec_t results[4];
    uint16_t flags[4] = {0, RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
                         RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
                         RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS};
    for (int i = 0; i < 4; i++) {
        accounts[i] = (rl_account_t){
            .id = s_acc (2 * (uint64_t) i + 1), .ledger = LEDGER, .code = 1, .flags = flags[i]};
    }
    ledger_create_accounts (s_ledger, accounts, 4, s_now (), results);
    for (int i = 0; i < 4; i++) {
        assert_int_equal (results[i].result, RL_OK);
    }
    s_commit ();
}

static void
s_teardown (void)
{
    s_close (true);
    store_env_destroy (&s_env);
}

static rl_transfer_t
s_t (uint16_t flags, uint64_t dr, uint64_t cr, uint64_t amount)
{
    return (rl_transfer_t){.id = {s_next_id++, 0x9e},
                           .debit_account_id = s_acc (dr),
                           .credit_account_id = cr ? s_acc (cr) : (rl_id_t){0},
                           .amount = amount,
                           .ledger = LEDGER,
                           .code = 1,
                           .flags = flags};
}

//  A post (or void) of pending transfer p, inheriting what it leaves 0.
static rl_transfer_t
s_resolve (uint16_t flag, const rl_transfer_t *p, uint64_t amount)
{
    rl_transfer_t t = {.id = {s_next_id++, 0x9e},
                       .debit_account_id = p->debit_account_id,
                       .pending_id = p->id,
                       .amount = amount,
                       .flags = flag};
    return t;
}

//  Sends one record in its own request and commits the turn.
static uint32_t
s_send (const rl_transfer_t *t)
{
    rl_result_rec_t r;
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 1};
    ledger_reply_t when = ledger_create_transfers (s_ledger, t, 1, s_now (), NULL, &h, &r);
    assert_int_equal (when, LEDGER_REPLY_NOW);
    s_commit ();
    return r.result;
}

static void
s_tick (void)
{
    s_mono += 1000000;
    ledger_tick (s_ledger, s_now ());
    s_commit ();
}

static rl_account_t
s_account (uint64_t a)
{
    rl_id_t id = s_acc (a);
    rl_account_t out;
    ledger_lookup_accounts (s_ledger, &id, 1, &out);
    assert_true (out.timestamp != 0);
    return out;
}

static void
s_expect (uint64_t a, uint64_t dpend, uint64_t dpost, uint64_t cpend, uint64_t cpost)
{
    rl_account_t x = s_account (a);
    if (x.debits_pending != dpend || x.debits_posted != dpost || x.credits_pending != cpend
        || x.credits_posted != cpost) {
        fail_msg ("account %lu: pending/posted debits %lu/%lu credits %lu/%lu, expected %lu/%lu "
                  "%lu/%lu",
                  (unsigned long) a, (unsigned long) x.debits_pending,
                  (unsigned long) x.debits_posted, (unsigned long) x.credits_pending,
                  (unsigned long) x.credits_posted, (unsigned long) dpend, (unsigned long) dpost,
                  (unsigned long) cpend, (unsigned long) cpost);
    }
}

//  Audit and conservation; settled: nothing may be pending any more.
static void
s_conserved (bool settled)
{
    char err[512];
    if (ledger_audit (s_ledger, err, sizeof (err)) != 0) {
        fail_msg ("audit: %s", err);
    }
    uint64_t dp = 0, cp = 0, dpend = 0, cpend = 0;
    for (uint64_t a = 1; a <= ACCOUNTS; a += 2) {
        rl_account_t x = s_account (a);
        dp += x.debits_posted, cp += x.credits_posted;
        dpend += x.debits_pending, cpend += x.credits_pending;
        assert_int_equal (x.debits_reserved + x.credits_reserved, 0);
    }
    assert_int_equal (dp, cp);
    assert_int_equal (dpend, cpend);
    if (settled) {
        assert_int_equal (dpend, 0);
        assert_int_equal (ledger_pending_count (s_ledger), 0);
    }
}

static void
s_fund (void)
{
    rl_transfer_t t = s_t (0, 1, 3, 100);
    assert_int_equal (s_send (&t), RL_OK);
}

//  Rules ---------------------------------------------------------------------------

static void
test_rules (void **state)
{
    s_setup (state);
    s_fund ();
    //  A pending transfer reserves; the limit counts it.
    rl_transfer_t p1 = s_t (RL_TRANSFER_PENDING, 3, 5, 60);
    assert_int_equal (s_send (&p1), RL_OK);
    s_expect (3, 60, 0, 0, 100);
    s_expect (5, 0, 0, 60, 0);
    rl_transfer_t over = s_t (RL_TRANSFER_PENDING, 3, 5, 41);
    assert_int_equal (s_send (&over), RL_EXCEEDS_CREDITS); //  60 pending + 41 > 100
    rl_transfer_t plain = s_t (0, 3, 5, 41);
    assert_int_equal (s_send (&plain), RL_EXCEEDS_CREDITS); //  a plain one counts it too
    //  credits_must_not_exceed_debits counts pending credits.
    rl_transfer_t to7 = s_t (RL_TRANSFER_PENDING, 1, 7, 1);
    assert_int_equal (s_send (&to7), RL_EXCEEDS_DEBITS);

    //  The pending group, in its precedence.
    rl_transfer_t t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.pending_id = (rl_id_t){.lo = 999999, .hi = 0x9e};
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_NOT_FOUND);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &over, 0); //  burned: no transfer
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_NOT_FOUND);
    rl_transfer_t fund2 = s_t (0, 1, 3, 5);
    assert_int_equal (s_send (&fund2), RL_OK);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &fund2, 0);
    t.debit_account_id = s_acc (1);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_NOT_PENDING);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.debit_account_id = s_acc (1);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.credit_account_id = s_acc (7);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.ledger = LEDGER + 1;
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    t.code = 2;
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 61);
    assert_int_equal (s_send (&t), RL_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p1, 59);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT);
    //  Burn rule: a failed post burns its own id (a retry gets the same
    //  failure), and leaves the pending transfer as it was.
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT);
    s_expect (3, 60, 0, 0, 105);

    //  Post in full with amount 0, fields inherited; a retry is exists,
    //  whether it leaves them 0 or names them.
    rl_transfer_t post1 = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (s_send (&post1), RL_OK);
    s_expect (3, 0, 60, 0, 105);
    s_expect (5, 0, 0, 0, 60);
    assert_int_equal (s_send (&post1), RL_EXISTS);
    rl_transfer_t named = post1;
    named.credit_account_id = s_acc (5), named.amount = 60, named.ledger = LEDGER, named.code = 1;
    assert_int_equal (s_send (&named), RL_EXISTS);
    named.amount = 59;
    assert_int_equal (s_send (&named), RL_EXISTS_WITH_DIFFERENT_AMOUNT);
    //  The stored post is complete: lookup shows what it moved.
    rl_transfer_t looked;
    assert_int_equal (ledger_lookup_transfers (s_ledger, &post1.id, 1, &looked), 0);
    assert_int_equal (looked.amount, 60);
    assert_true (rl_id_eq (looked.credit_account_id, s_acc (5)));
    assert_int_equal (looked.ledger, LEDGER);
    //  Already posted, for a post and for a void.
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_ALREADY_POSTED);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_ALREADY_POSTED);

    //  A partial post releases the rest.
    rl_transfer_t p2 = s_t (RL_TRANSFER_PENDING, 3, 5, 30);
    assert_int_equal (s_send (&p2), RL_OK);
    s_expect (3, 30, 60, 0, 105);
    rl_transfer_t post2 = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 10);
    assert_int_equal (s_send (&post2), RL_OK);
    s_expect (3, 0, 70, 0, 105);
    s_expect (5, 0, 0, 0, 70);

    //  A void releases it all; then already voided.
    rl_transfer_t p3 = s_t (RL_TRANSFER_PENDING, 3, 5, 35);
    assert_int_equal (s_send (&p3), RL_OK);
    rl_transfer_t void3 = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p3, 35);
    assert_int_equal (s_send (&void3), RL_OK);
    s_expect (3, 0, 70, 0, 105);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p3, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p3, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    //  A post names a post: not pending.
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &post1, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_NOT_PENDING);

    //  History: the pending transfers, the posts and the void, in order;
    //  the posted amounts sum to the balance.
    rl_filter_t f = {.account_id = s_acc (5), .limit = 100, .flags = RL_FILTER_CREDITS};
    rl_transfer_t hist[100];
    size_t n = 0;
    assert_int_equal (ledger_account_transfers (s_ledger, &f, hist, &n), RL_STATUS_OK);
    uint64_t posted = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(hist[i].flags & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER))) {
            posted += hist[i].amount;
        }
    }
    assert_int_equal (n, 6); //  p1, post1, p2, post2, p3, void3
    assert_int_equal (posted, 70);
    s_conserved (true);
    s_teardown ();
}

static void
test_bad_input (void **state)
{
    s_setup (state);
    s_fund ();
    rl_transfer_t p = s_t (RL_TRANSFER_PENDING, 3, 5, 10);
    assert_int_equal (s_send (&p), RL_OK);
    struct {
        rl_transfer_t t;
        uint32_t want;
    } cases[32];
    size_t n = 0;
    rl_transfer_t t = s_t (0xfffe, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_RESERVED_FLAG};
    //  Linked alone: its chain is open at the end of the batch, before any
    //  check of the record (test_chains.c has the rules of chains).
    t = s_t (0xffff, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_LINKED_EVENT_CHAIN_OPEN};
    t = s_t (RL_TRANSFER_PENDING | 0x40, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_RESERVED_FLAG};
    t = s_t (RL_TRANSFER_PENDING | RL_TRANSFER_POST_PENDING_TRANSFER, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    cases[n++] = (typeof (cases[0])){t, RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE};
    t = s_t (RL_TRANSFER_PENDING | RL_TRANSFER_LINKED, 3, 5, 1);
    cases[n++] = (typeof (cases[0])){t, RL_LINKED_EVENT_CHAIN_OPEN};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_BALANCING_DEBIT, &p, 0);
    cases[n++] = (typeof (cases[0])){t, RL_NOT_SUPPORTED};
    t = s_t (RL_TRANSFER_PENDING, 3, 5, 0);
    cases[n++] = (typeof (cases[0])){t, RL_AMOUNT_MUST_NOT_BE_ZERO};
    t = s_t (RL_TRANSFER_PENDING, 3, 5, 1);
    t.pending_id = p.id;
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_BE_ZERO};
    t = s_t (0, 3, 5, 1);
    t.timeout = 5;
    cases[n++] = (typeof (cases[0])){t, RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER};
    t = s_t (RL_TRANSFER_PENDING, 3, 0, 1);
    cases[n++] = (typeof (cases[0])){t, RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO};
    t = s_t (RL_TRANSFER_PENDING, 3, 3, 1);
    cases[n++] = (typeof (cases[0])){t, RL_ACCOUNTS_MUST_BE_DIFFERENT};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.pending_id = (rl_id_t){0};
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_NOT_BE_ZERO};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.pending_id = (rl_id_t){UINT64_MAX, UINT64_MAX};
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_NOT_BE_INT_MAX};
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    t.pending_id = t.id;
    cases[n++] = (typeof (cases[0])){t, RL_PENDING_ID_MUST_BE_DIFFERENT};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.timeout = 1;
    cases[n++] = (typeof (cases[0])){t, RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.debit_account_id = (rl_id_t){0};
    cases[n++] = (typeof (cases[0])){t, RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.credit_account_id = (rl_id_t){UINT64_MAX, UINT64_MAX};
    cases[n++] = (typeof (cases[0])){t, RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.credit_account_id = t.debit_account_id;
    cases[n++] = (typeof (cases[0])){t, RL_ACCOUNTS_MUST_BE_DIFFERENT};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.reserved = 1;
    cases[n++] = (typeof (cases[0])){t, RL_RESERVED_FIELD};
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    t.timestamp = 1;
    cases[n++] = (typeof (cases[0])){t, RL_TIMESTAMP_MUST_BE_ZERO};
    //  Field validation never burns: each id stays free, nothing moves.
    for (size_t i = 0; i < n; i++) {
        uint32_t got = s_send (&cases[i].t);
        if (got != cases[i].want) {
            fail_msg ("case %zu: %s, expected %s", i, rl_result_name (got),
                      rl_result_name (cases[i].want));
        }
        assert_int_equal (s_send (&cases[i].t), cases[i].want);
    }
    s_expect (3, 10, 0, 0, 100);
    //  Huge amounts: a post of more than pending; a pending transfer whose
    //  sum overflows (account 1 may go negative).
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, UINT64_MAX);
    assert_int_equal (s_send (&t), RL_EXCEEDS_PENDING_TRANSFER_AMOUNT);
    rl_transfer_t big = s_t (RL_TRANSFER_PENDING, 1, 5, UINT64_MAX - 200);
    assert_int_equal (s_send (&big), RL_OK);
    rl_transfer_t big2 = s_t (RL_TRANSFER_PENDING, 1, 5, 300);
    assert_int_equal (s_send (&big2), RL_OVERFLOWS_DEBITS_PENDING);
    rl_transfer_t big3 = s_t (RL_TRANSFER_PENDING, 1, 3, UINT64_MAX);
    assert_int_equal (s_send (&big3), RL_OVERFLOWS_DEBITS_PENDING);
    rl_transfer_t big4 = s_t (0, 1, 3, 250);
    assert_int_equal (s_send (&big4), RL_OVERFLOWS_DEBITS); //  posted + pending + amount
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &big, 0);
    assert_int_equal (s_send (&t), RL_OK);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
    assert_int_equal (s_send (&t), RL_OK);
    s_conserved (true);
    s_teardown ();
}

static void
test_one_batch (void **state)
{
    s_setup (state);
    s_fund ();
    rl_transfer_t batch[6];
    batch[0] = s_t (RL_TRANSFER_PENDING, 3, 5, 50);
    batch[1] = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[0], 20);
    batch[2] = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[0], 20);
    batch[3] = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &batch[0], 0);
    batch[4] = s_t (RL_TRANSFER_PENDING, 3, 5, 50);
    batch[5] = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &batch[4], 0);
    rl_result_rec_t r[6];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 6};
    assert_int_equal (ledger_create_transfers (s_ledger, batch, 6, s_now (), NULL, &h, r),
                      LEDGER_REPLY_NOW);
    s_commit ();
    uint32_t want[6] = {
        RL_OK, RL_OK, RL_PENDING_TRANSFER_ALREADY_POSTED, RL_PENDING_TRANSFER_ALREADY_POSTED,
        RL_OK, RL_OK};
    for (int i = 0; i < 6; i++) {
        assert_int_equal (r[i].result, want[i]);
    }
    s_expect (3, 0, 20, 0, 100);
    //  The same request again: every record is answered from its id.
    assert_int_equal (ledger_create_transfers (s_ledger, batch, 6, s_now (), NULL, &h, r),
                      LEDGER_REPLY_NOW);
    s_commit ();
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
    s_restart (true);
    rl_transfer_t t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[0], 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_ALREADY_POSTED);
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &batch[4], 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_ALREADY_VOIDED);
    s_expect (3, 0, 20, 0, 100);
    s_conserved (true);
    s_teardown ();
}

static void
test_expiry (void **state)
{
    s_setup (state);
    s_fund ();
    rl_transfer_t p1 = s_t (RL_TRANSFER_PENDING, 3, 5, 10);
    p1.timeout = 2;
    rl_transfer_t p2 = s_t (RL_TRANSFER_PENDING, 3, 5, 20);
    p2.timeout = 1;
    rl_transfer_t p3 = s_t (RL_TRANSFER_PENDING, 3, 5, 30); //  never expires
    assert_int_equal (s_send (&p1), RL_OK);
    assert_int_equal (s_send (&p2), RL_OK);
    assert_int_equal (s_send (&p3), RL_OK);
    s_expect (3, 60, 0, 0, 100);
    //  Retry with another timeout: exists_with_different_timeout.
    rl_transfer_t other = p1;
    other.timeout = 3;
    assert_int_equal (s_send (&other), RL_EXISTS_WITH_DIFFERENT_TIMEOUT);
    s_wall += S_NS / 2;
    s_tick ();
    s_expect (3, 60, 0, 0, 100);
    s_wall += S_NS;
    s_tick (); //  p2's time has come
    s_expect (3, 40, 0, 0, 100);
    rl_transfer_t t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p2, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    //  A post that comes after p1's time, before any tick expired it: the
    //  post expires it (its own timestamp is past the expiry).
    s_wall += S_NS;
    rl_transfer_t late = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (s_send (&late), RL_PENDING_TRANSFER_EXPIRED);
    s_expect (3, 30, 0, 0, 100);
    assert_int_equal (s_send (&late), RL_PENDING_TRANSFER_EXPIRED); //  burned
    //  The wall clock steps back an hour: the expiry stands, and a post
    //  still gets expired (the state is kept, whatever the clock).
    s_wall -= 3600 * S_NS;
    s_tick ();
    t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p1, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    s_expect (3, 30, 0, 0, 100);
    //  A pending transfer made while the clock is back expires by the
    //  shard's timestamp clock (never below the last timestamp).
    rl_transfer_t p4 = s_t (RL_TRANSFER_PENDING, 3, 5, 5);
    p4.timeout = 1;
    assert_int_equal (s_send (&p4), RL_OK);
    s_wall += 3600 * S_NS + 2 * S_NS;
    s_tick ();
    s_expect (3, 30, 0, 0, 100);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p3, 0);
    assert_int_equal (s_send (&t), RL_OK);
    s_conserved (true); //  nothing pending left after expiry
    s_teardown ();
}

static void
test_recovery (void **state)
{
    s_setup (state);
    s_fund ();
    rl_transfer_t keep = s_t (RL_TRANSFER_PENDING, 3, 5, 11);
    rl_transfer_t posted = s_t (RL_TRANSFER_PENDING, 3, 5, 12);
    rl_transfer_t voided = s_t (RL_TRANSFER_PENDING, 3, 5, 13);
    rl_transfer_t expiring = s_t (RL_TRANSFER_PENDING, 3, 5, 14);
    expiring.timeout = 10;
    assert_int_equal (s_send (&keep), RL_OK);
    assert_int_equal (s_send (&posted), RL_OK);
    assert_int_equal (s_send (&voided), RL_OK);
    assert_int_equal (s_send (&expiring), RL_OK);
    rl_transfer_t post = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &posted, 12);
    rl_transfer_t void_ = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &voided, 0);
    assert_int_equal (s_send (&post), RL_OK);
    assert_int_equal (s_send (&void_), RL_OK);
    s_expect (3, 25, 12, 0, 100);
    assert_int_equal (ledger_checkpoint (s_ledger), 0); //  accounts stored with pending amounts
    s_restart (true);
    s_expect (3, 25, 12, 0, 100);
    s_expect (5, 0, 0, 25, 12);
    s_conserved (false);

    //  A post lost with an uncommitted batch: still pending after restart.
    rl_transfer_t lost = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &keep, 0);
    rl_result_rec_t r;
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 1};
    ledger_create_transfers (s_ledger, &lost, 1, s_now (), NULL, &h, &r);
    assert_int_equal (r.result, RL_OK);
    s_expect (3, 14, 23, 0, 100);
    s_restart (false);
    s_expect (3, 25, 12, 0, 100);

    //  The shard is down while `expiring` passes its time: it expires at
    //  recovery, before anything else, and can never be posted.
    s_close (true);
    s_wall += 11 * S_NS;
    s_open ();
    s_expect (3, 11, 12, 0, 100);
    //  Recovery committed the expiry before it returned: a crash right
    //  after (nothing else committed) keeps it.
    s_close (false);
    s_open ();
    s_expect (3, 11, 12, 0, 100);
    rl_transfer_t t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &expiring, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    s_close (true);
    s_open ();
    s_expect (3, 11, 12, 0, 100);
    t = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &expiring, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_EXPIRED);
    s_conserved (false);
    //  The lost post, sent again with its id, applies once.
    assert_int_equal (s_send (&lost), RL_OK);
    assert_int_equal (s_send (&lost), RL_EXISTS);
    s_restart (true);
    assert_int_equal (s_send (&lost), RL_EXISTS);
    s_expect (3, 0, 23, 0, 100);
    s_expect (5, 0, 0, 0, 23);
    s_conserved (true);
    s_teardown ();
}

static void
test_cross_shard (void **state)
{
    s_setup (state);
    s_fund ();
    rl_transfer_t p = s_t (RL_TRANSFER_PENDING, 3, 2, 10); //  account 2 is s2's
    assert_int_equal (s_send (&p), RL_NOT_SUPPORTED);
    assert_int_equal (s_send (&p), RL_NOT_SUPPORTED); //  not burned
    rl_transfer_t t = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    assert_int_equal (s_send (&t), RL_PENDING_TRANSFER_NOT_FOUND);
    //  A post or void whose debit account is another shard's: wrong_shard.
    t.debit_account_id = s_acc (2);
    assert_int_equal (s_send (&t), RL_WRONG_SHARD);
    s_expect (3, 0, 0, 0, 100);
    s_conserved (true);
    s_teardown ();
}

int
main (void)
{
    setenv ("RL_LOG_LEVEL", "warn", 0);
    s_ring_setup ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rules),     cmocka_unit_test (test_bad_input),
        cmocka_unit_test (test_one_batch), cmocka_unit_test (test_expiry),
        cmocka_unit_test (test_recovery),  cmocka_unit_test (test_cross_shard),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    ring_destroy (&s_ring);
    return rc;
}
