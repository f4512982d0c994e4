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
    - test_shards: a member that credits another shard's account is
      not_supported (cross-shard chains are not served), a member whose
      debit account is another shard's makes every member wrong_shard.
    - test_bad_input: reserved and balancing flags, invalid fields, the
      same id twice in one chain, a long chain failing at its last member.
    - test_crash: a chain whose group commit is lost leaves nothing after
      the restart, a committed one is there whole (checkpoints between).
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

#include "codec.h"
#include "ledger.h"
#include "outq.h"
#include "ring.h"
#include "store.h"

#define LEDGER   7
#define ACCOUNTS 9 //  9 is s1's, never created
#define S_NS     1000000000ull
#define T0       1700000000000000000ull
#define LINKED   RL_TRANSFER_LINKED
#define LONG     1000 //  members of the long chain

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
    s_store = store_open_env ("/chains/s1", RL_DURABILITY_SYNC, s_env, err, sizeof (err));
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
//  credits) and 7 (credits must not exceed debits).
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
s_resolve (uint16_t flags, const rl_transfer_t *p, uint64_t amount)
{
    return (rl_transfer_t){.id = {s_next_id++, 0x9e},
                           .debit_account_id = p->debit_account_id,
                           .pending_id = p->id,
                           .amount = amount,
                           .flags = flags};
}

//  Sends the records in one request and commits the turn.
static void
s_batch (const rl_transfer_t *t, size_t count, rl_result_rec_t *r)
{
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = (uint32_t) count};
    ledger_reply_t when = ledger_create_transfers (s_ledger, t, count, s_now (), NULL, &h, r);
    assert_int_equal (when, LEDGER_REPLY_NOW);
    s_commit ();
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

static uint32_t
s_send (const rl_transfer_t *t)
{
    rl_result_rec_t r;
    s_batch (t, 1, &r);
    return r.result;
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

//  Is the transfer stored as applied (lookup_transfers finds it)?
static bool
s_found (const rl_transfer_t *t)
{
    rl_transfer_t out;
    assert_int_equal (ledger_lookup_transfers (s_ledger, &t->id, 1, &out), 0);
    return out.timestamp != 0;
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
    for (uint64_t a = 1; a <= 7; a += 2) {
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

//  Rules ---------------------------------------------------------------------------

static void
test_all_ok (void **state)
{
    s_setup (state);
    //  1 pays 3, 3 pays 5 out of it, 5 pays back 1: only together can 3
    //  and 5 pay (debits must not exceed credits).
    rl_transfer_t chain[3] = {s_t (LINKED, 1, 3, 100), s_t (LINKED, 3, 5, 60), s_t (0, 5, 1, 10)};
    uint32_t ok[3] = {RL_OK, RL_OK, RL_OK};
    s_batch_expect (chain, 3, ok);
    s_expect (1, 0, 100, 0, 10);
    s_expect (3, 0, 60, 0, 100);
    s_expect (5, 0, 10, 0, 60);
    rl_transfer_t stored;
    assert_int_equal (ledger_lookup_transfers (s_ledger, &chain[0].id, 1, &stored), 0);
    assert_int_equal (stored.flags, LINKED); //  the record keeps where it stood
    //  The whole chain again: exists for each member, nothing moves.
    uint32_t exists[3] = {RL_EXISTS, RL_EXISTS, RL_EXISTS};
    s_batch_expect (chain, 3, exists);
    //  A member retried alone: linked says where it stood, not what it is.
    rl_transfer_t alone = chain[1];
    alone.flags = 0;
    assert_int_equal (s_send (&alone), RL_EXISTS);
    //  Alone with its flag it leaves a chain open at the end of its batch.
    assert_int_equal (s_send (&chain[1]), RL_LINKED_EVENT_CHAIN_OPEN);
    //  Two chains back to back and a record between them.
    rl_transfer_t two[5] = {s_t (LINKED, 1, 3, 1), s_t (0, 3, 5, 1), s_t (0, 1, 5, 1),
                            s_t (LINKED, 1, 5, 2), s_t (0, 5, 1, 1)};
    uint32_t ok5[5] = {RL_OK, RL_OK, RL_OK, RL_OK, RL_OK};
    s_batch_expect (two, 5, ok5);
    s_expect (1, 0, 104, 0, 11);
    s_expect (3, 0, 61, 0, 101);
    s_expect (5, 0, 11, 0, 64);
    s_restart (true);
    s_batch_expect (chain, 3, exists);
    s_expect (5, 0, 11, 0, 64);
    s_conserved (true);
    s_teardown ();
}

static void
test_one_fails (void **state)
{
    s_setup (state);
    rl_transfer_t fund = s_t (0, 1, 5, 30);
    assert_int_equal (s_send (&fund), RL_OK);
    //  Before and after the chain, records of their own; the chain's second
    //  member asks 3 for more than the first member gave it.
    rl_transfer_t batch[5] = {s_t (0, 1, 3, 5), s_t (LINKED, 1, 3, 100), s_t (LINKED, 3, 5, 500),
                              s_t (0, 5, 1, 10), s_t (0, 5, 1, 1)};
    uint32_t want[5] = {RL_OK, RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS, RL_LINKED_EVENT_FAILED,
                        RL_OK};
    s_batch_expect (batch, 5, want);
    //  Nothing of the chain: only the records around it moved money.
    s_expect (1, 0, 35, 0, 1);
    s_expect (3, 0, 0, 0, 5);
    s_expect (5, 0, 1, 0, 30);
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
    s_expect (1, 0, 135, 0, 11);
    s_expect (3, 0, 90, 0, 105);
    s_expect (5, 0, 11, 0, 120);
    //  A chain whose first member exists (applied alone before) and whose
    //  last fails: the exists member is answered linked_event_failed too.
    rl_transfer_t more[2] = {batch[0], s_t (0, 3, 5, 1000)};
    more[0].flags = LINKED;
    s_batch_expect (more, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_true (s_found (&batch[0])); //  applied before, still there
    assert_false (s_found (&more[1]));
    //  ... and one whose first member fails on its idempotency check.
    rl_transfer_t taken[2] = {batch[0], s_t (0, 1, 3, 1)};
    taken[0].flags = LINKED;
    taken[0].amount = 6;
    s_batch_expect (taken, 2,
                    (uint32_t[]){RL_EXISTS_WITH_DIFFERENT_AMOUNT, RL_LINKED_EVENT_FAILED});
    assert_false (s_found (&taken[1]));
    //  A member whose id was burned before, alone: its burned result.
    rl_transfer_t burned = s_t (0, 3, 5, 100000);
    assert_int_equal (s_send (&burned), RL_EXCEEDS_CREDITS);
    rl_transfer_t with_burned[2] = {s_t (LINKED, 1, 3, 1), burned};
    s_batch_expect (with_burned, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    assert_false (s_found (&with_burned[0]));
    s_expect (3, 0, 90, 0, 105);
    s_restart (true);
    s_expect (1, 0, 135, 0, 11);
    s_expect (3, 0, 90, 0, 105);
    s_expect (5, 0, 11, 0, 120);
    s_conserved (true);
    s_teardown ();
}

static void
test_chain_open (void **state)
{
    s_setup (state);
    rl_transfer_t batch[3] = {s_t (0, 1, 3, 5), s_t (LINKED, 1, 3, 7), s_t (LINKED, 1, 3, 9)};
    s_batch_expect (batch, 3,
                    (uint32_t[]){RL_OK, RL_LINKED_EVENT_FAILED, RL_LINKED_EVENT_CHAIN_OPEN});
    s_expect (3, 0, 0, 0, 5);
    assert_false (s_found (&batch[1]));
    //  One record, linked: the chain it opens is open at the end.
    s_batch_expect (&batch[1], 1, (uint32_t[]){RL_LINKED_EVENT_CHAIN_OPEN});
    //  Not burned: closed, the same ids apply.
    batch[2].flags = 0;
    s_batch_expect (&batch[1], 2, (uint32_t[]){RL_OK, RL_OK});
    s_expect (3, 0, 0, 0, 21);
    s_conserved (true);
    s_teardown ();
}

static void
test_pending_members (void **state)
{
    s_setup (state);
    //  Authorise and capture part of it in one chain, with a fee.
    rl_transfer_t fund = s_t (0, 1, 3, 100);
    assert_int_equal (s_send (&fund), RL_OK);
    rl_transfer_t a[3];
    a[0] = s_t (RL_TRANSFER_PENDING | LINKED, 3, 5, 50);
    a[1] = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &a[0], 20);
    a[2] = s_t (0, 3, 5, 1);
    s_batch_expect (a, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    s_expect (3, 0, 21, 0, 100);
    s_expect (5, 0, 0, 0, 21);
    //  A pending transfer created by a chain that fails is not there.
    rl_transfer_t b[2] = {s_t (RL_TRANSFER_PENDING | LINKED, 3, 5, 40), s_t (0, 3, 5, 1000)};
    s_batch_expect (b, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    s_expect (3, 0, 21, 0, 100);
    assert_int_equal (ledger_pending_count (s_ledger), 0);
    rl_transfer_t post_b = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &b[0], 0);
    assert_int_equal (s_send (&post_b), RL_PENDING_TRANSFER_NOT_FOUND);
    //  A void and a post of one pending transfer in one chain: the post
    //  fails (already voided), and the void is taken back: still pending.
    rl_transfer_t p = s_t (RL_TRANSFER_PENDING, 3, 5, 30);
    assert_int_equal (s_send (&p), RL_OK);
    s_expect (3, 30, 21, 0, 100);
    rl_transfer_t c[2] = {s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER | LINKED, &p, 0),
                          s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0)};
    s_batch_expect (c, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_ALREADY_VOIDED});
    s_expect (3, 30, 21, 0, 100);
    s_expect (5, 0, 0, 30, 21);
    assert_int_equal (ledger_pending_count (s_ledger), 1);
    s_conserved (false);
    //  A post in a chain that fails after it: the post is taken back.
    rl_transfer_t d[2] = {s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER | LINKED, &p, 10),
                          s_t (0, 5, 1, 10000)};
    s_batch_expect (d, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXCEEDS_CREDITS});
    s_expect (3, 30, 21, 0, 100);
    s_conserved (false);
    //  The same records after a commit and a restart: the state comes from
    //  the store, still pending; then the void alone applies.
    s_restart (true);
    s_expect (3, 30, 21, 0, 100);
    c[0].flags = RL_TRANSFER_VOID_PENDING_TRANSFER; //  alone, its chain closed
    assert_int_equal (s_send (&c[0]), RL_OK);       //  its id was not burned
    s_expect (3, 0, 21, 0, 100);
    //  An expiry that a member's check finds is taken back with the chain,
    //  and the tick expires the transfer for good.
    rl_transfer_t e = s_t (RL_TRANSFER_PENDING, 3, 5, 25);
    e.timeout = 1;
    assert_int_equal (s_send (&e), RL_OK);
    s_wall += 2 * S_NS;
    rl_transfer_t f[2] = {s_t (LINKED, 1, 3, 1),
                          s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &e, 0)};
    s_batch_expect (f, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_PENDING_TRANSFER_EXPIRED});
    s_conserved (false);
    s_mono += 1000000;
    ledger_tick (s_ledger, s_now ());
    s_commit ();
    s_expect (3, 0, 21, 0, 100);
    assert_int_equal (s_send (&f[1]), RL_PENDING_TRANSFER_EXPIRED);
    s_restart (true);
    assert_int_equal (ledger_pending_count (s_ledger), 0);
    s_expect (3, 0, 21, 0, 100);
    s_conserved (true);
    s_teardown ();
}

static void
test_shards (void **state)
{
    s_setup (state);
    //  Account 2 is s2's: a chain that would need s2 is refused whole.
    rl_transfer_t a[3] = {s_t (LINKED, 1, 3, 5), s_t (LINKED, 3, 2, 1), s_t (0, 1, 5, 1)};
    s_batch_expect (a, 3,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_NOT_SUPPORTED, RL_LINKED_EVENT_FAILED});
    s_batch_expect (a, 3,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_NOT_SUPPORTED, RL_LINKED_EVENT_FAILED});
    //  A member whose debit account is s2's: every member wrong_shard, so
    //  that a router sends the chain again whole.
    rl_transfer_t b[3] = {s_t (LINKED, 1, 3, 5), s_t (LINKED, 2, 3, 1), s_t (0, 1, 5, 1)};
    s_batch_expect (b, 3, (uint32_t[]){RL_WRONG_SHARD, RL_WRONG_SHARD, RL_WRONG_SHARD});
    s_expect (1, 0, 0, 0, 0);
    s_expect (3, 0, 0, 0, 0);
    //  Cross-shard transfers outside a chain are served as before (two-phase).
    s_conserved (true);
    s_teardown ();
}

static void
test_bad_input (void **state)
{
    s_setup (state);
    //  Field validation fails a chain too, and burns nothing.
    rl_transfer_t a[2] = {s_t (LINKED, 1, 3, 5), s_t (RL_TRANSFER_BALANCING_DEBIT, 1, 3, 1)};
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_NOT_SUPPORTED});
    a[1].flags = 0x0100;
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_RESERVED_FLAG});
    a[1] = s_t (0, 1, 3, 0);
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_AMOUNT_MUST_NOT_BE_ZERO});
    a[1] = s_t (0, 1, 1, 1);
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ACCOUNTS_MUST_BE_DIFFERENT});
    a[1] = s_t (0, 1, 3, 1);
    a[1].id = (rl_id_t){0};
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ID_MUST_NOT_BE_ZERO});
    a[1].id = (rl_id_t){UINT64_MAX, UINT64_MAX};
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_ID_MUST_NOT_BE_INT_MAX});
    a[1] = s_t (RL_TRANSFER_PENDING | RL_TRANSFER_POST_PENDING_TRANSFER, 1, 3, 1);
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE});
    a[1] = s_t (0, 1, 9, 1); //  on s1, never created
    s_batch_expect (a, 2, (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_CREDIT_ACCOUNT_NOT_FOUND});
    assert_false (s_found (&a[0]));
    assert_false (s_found (&a[1])); //  not burned either
    //  The same id twice in one chain: the second is the same record
    //  (exists), or a different one (taken: the chain fails, the first
    //  member is taken back with it).
    rl_transfer_t twice[2] = {s_t (LINKED, 1, 3, 5)};
    twice[1] = twice[0];
    twice[1].flags = 0;
    s_batch_expect (twice, 2, (uint32_t[]){RL_OK, RL_EXISTS});
    s_expect (3, 0, 0, 0, 5);
    rl_transfer_t differ[2] = {s_t (LINKED, 1, 3, 5)};
    differ[1] = differ[0];
    differ[1].flags = 0;
    differ[1].amount = 6;
    s_batch_expect (differ, 2,
                    (uint32_t[]){RL_LINKED_EVENT_FAILED, RL_EXISTS_WITH_DIFFERENT_AMOUNT});
    assert_false (s_found (&differ[0]));
    s_expect (3, 0, 0, 0, 5);
    //  A long chain (pending transfers among its members) failing at its
    //  last member: nothing of it.
    static rl_transfer_t chain[LONG];
    static rl_result_rec_t r[LONG];
    for (int i = 0; i < LONG; i++) {
        chain[i] = s_t (LINKED | ((i % 3) ? 0 : RL_TRANSFER_PENDING), 1, 3, 1);
    }
    chain[LONG - 1] = s_t (0, 3, 5, 1000000);
    s_batch (chain, LONG, r);
    for (int i = 0; i < LONG - 1; i++) {
        assert_int_equal (r[i].result, RL_LINKED_EVENT_FAILED);
    }
    assert_int_equal (r[LONG - 1].result, RL_EXCEEDS_CREDITS);
    s_expect (1, 0, 5, 0, 0);
    s_expect (3, 0, 0, 0, 5);
    assert_int_equal (ledger_pending_count (s_ledger), 0);
    //  Closed within reach, the same ids apply.
    chain[LONG - 1].amount = 1;
    s_batch (chain, LONG, r);
    for (int i = 0; i < LONG; i++) {
        assert_int_equal (r[i].result, RL_OK);
    }
    uint64_t pending = (LONG - 1 + 2) / 3; //  members 0, 3, 6, ... of the first LONG - 1
    s_expect (3, 0, 1, pending, 5 + (LONG - 1) - pending);
    s_expect (1, pending, 5 + (LONG - 1) - pending, 0, 0);
    s_conserved (false);
    s_teardown ();
}

static void
test_crash (void **state)
{
    s_setup (state);
    //  Applied in memory, its group commit lost: nothing after the restart.
    rl_transfer_t a[3] = {s_t (LINKED, 1, 3, 10), s_t (RL_TRANSFER_PENDING | LINKED, 3, 5, 4),
                          s_t (0, 3, 5, 2)};
    rl_result_rec_t r[3];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 3};
    assert_int_equal (ledger_create_transfers (s_ledger, a, 3, s_now (), NULL, &h, r),
                      LEDGER_REPLY_NOW);
    for (int i = 0; i < 3; i++) {
        assert_int_equal (r[i].result, RL_OK);
    }
    s_restart (false);
    s_expect (3, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        assert_false (s_found (&a[i]));
    }
    assert_int_equal (ledger_pending_count (s_ledger), 0);
    s_conserved (true);
    //  Committed: whole after the restart, past checkpoints (every 4).
    s_batch_expect (a, 3, (uint32_t[]){RL_OK, RL_OK, RL_OK});
    for (int i = 0; i < 4; i++) {
        rl_transfer_t t = s_t (0, 1, 7, 1);
        assert_int_equal (s_send (&t), RL_EXCEEDS_DEBITS); //  burned records, stored
    }
    s_restart (true);
    s_expect (3, 4, 2, 0, 10);
    s_expect (5, 0, 0, 4, 2);
    for (int i = 0; i < 3; i++) {
        assert_true (s_found (&a[i]));
    }
    s_batch_expect (a, 3, (uint32_t[]){RL_EXISTS, RL_EXISTS, RL_EXISTS});
    rl_transfer_t v = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &a[1], 0);
    assert_int_equal (s_send (&v), RL_OK);
    s_conserved (true);
    s_teardown ();
}

int
main (void)
{
    setenv ("RL_LOG_LEVEL", "warn", 0);
    s_ring_setup ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_all_ok),     cmocka_unit_test (test_one_fails),
        cmocka_unit_test (test_chain_open), cmocka_unit_test (test_pending_members),
        cmocka_unit_test (test_shards),     cmocka_unit_test (test_bad_input),
        cmocka_unit_test (test_crash),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    ring_destroy (&s_ring);
    return rc;
}
