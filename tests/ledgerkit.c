/*  ledgerkit.c: one shard's ledger on storage in memory, for the unit tests
    of payment rules (ledgerkit.h).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ledgerkit.h"

ring_t *lk_ring;
store_env_t *lk_env;
store_t *lk_store;
outq_t *lk_outq;
ledger_t *lk_ledger;
uint64_t lk_wall = LK_T0;
uint64_t lk_mono = 1;
uint64_t lk_next_id = 1000;

static uint64_t s_hi[LK_ACCOUNTS + 1]; //  account a is {a, s_hi[a]}
static char s_path[128];               //  the store's path in the in-memory env

now_t
lk_now (void)
{
    return (now_t){.wall_ns = lk_wall, .mono_ns = lk_mono};
}

rl_id_t
lk_acc (uint64_t a)
{
    return (rl_id_t){.lo = a, .hi = s_hi[a]};
}

void
lk_ring_setup (void)
{
    lk_ring = ring_new (1);
    assert_non_null (lk_ring);
    assert_int_equal (ring_add_shard (lk_ring, "s1", "inproc://s1", 1.0), 0);
    assert_int_equal (ring_add_shard (lk_ring, "s2", "inproc://s2", 1.0), 0);
    for (uint64_t a = 1; a <= LK_ACCOUNTS; a++) {
        const char *want = (a & 1) ? "s1" : "s2";
        for (uint64_t hi = 0;; hi++) {
            uint8_t bytes[RL_ID_SIZE];
            codec_encode_id ((rl_id_t){.lo = a, .hi = hi}, bytes);
            int index = ring_lookup_id (lk_ring, bytes);
            if (index >= 0 && strcmp (ring_shard_name (lk_ring, (size_t) index), want) == 0) {
                s_hi[a] = hi;
                break;
            }
        }
    }
}

void
lk_open (void)
{
    char err[256];
    lk_store = store_open_env (s_path, RL_DURABILITY_SYNC, lk_env, err, sizeof (err));
    assert_non_null (lk_store);
    lk_outq = outq_new ();
    assert_non_null (lk_outq);
    lk_ledger = ledger_open (lk_store, lk_outq, "s1", lk_ring, 42, lk_now (), err, sizeof (err));
    if (!lk_ledger) {
        fail_msg ("ledger_open: %s", err);
    }
    ledger_set_checkpoint_transfers (lk_ledger, 4); //  checkpoints between the steps
}

void
lk_commit (void)
{
    ledger_before_commit (lk_ledger);
    assert_int_equal (store_commit (lk_store), 0);
    outq_batch_synced (lk_outq);
    outq_clear (lk_outq);
    assert_int_equal (ledger_after_commit (lk_ledger), 0);
}

void
lk_close (bool commit)
{
    if (commit) {
        lk_commit ();
    } else {
        store_batch_discard (lk_store); //  a crash before the commit
    }
    ledger_destroy (&lk_ledger);
    outq_destroy (&lk_outq);
    store_close (&lk_store);
}

void
lk_restart (bool commit)
{
    lk_close (commit);
    lk_mono += LK_S_NS;
    lk_open ();
}

//  Accounts 1 (free to go negative), 3, 5 (debits must not exceed
//  credits) and 7 (credits must not exceed debits).
void
lk_setup (const char *path)
{
    snprintf (s_path, sizeof (s_path), "%s", path);
    lk_wall = LK_T0;
    lk_env = store_env_new_mem ();
    assert_non_null (lk_env);
    lk_open ();
    rl_account_t accounts[4];
    rl_result_rec_t results[4];
    uint16_t flags[4] = {0, RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
                         RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
                         RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS};
    for (int i = 0; i < 4; i++) {
        accounts[i] = (rl_account_t){
            .id = lk_acc (2 * (uint64_t) i + 1), .ledger = LK_LEDGER, .code = 1, .flags = flags[i]};
    }
    ledger_create_accounts (lk_ledger, accounts, 4, lk_now (), results);
    for (int i = 0; i < 4; i++) {
        assert_int_equal (results[i].result, RL_OK);
    }
    lk_commit ();
}

void
lk_teardown (void)
{
    lk_close (true);
    store_env_destroy (&lk_env);
}

rl_transfer_t
lk_t (uint16_t flags, uint64_t dr, uint64_t cr, uint64_t amount)
{
    return (rl_transfer_t){.id = {lk_next_id++, 0x9e},
                           .debit_account_id = lk_acc (dr),
                           .credit_account_id = cr ? lk_acc (cr) : (rl_id_t){0},
                           .amount = amount,
                           .ledger = LK_LEDGER,
                           .code = 1,
                           .flags = flags};
}

//  A post (or void) of pending transfer p, inheriting what it leaves 0.
rl_transfer_t
lk_resolve (uint16_t flags, const rl_transfer_t *p, uint64_t amount)
{
    return (rl_transfer_t){.id = {lk_next_id++, 0x9e},
                           .debit_account_id = p->debit_account_id,
                           .pending_id = p->id,
                           .amount = amount,
                           .flags = flags};
}

//  Sends one record in its own request and commits the turn.
uint32_t
lk_send (const rl_transfer_t *t)
{
    rl_result_rec_t r;
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 1};
    ledger_reply_t when = ledger_create_transfers (lk_ledger, t, 1, lk_now (), NULL, &h, &r);
    assert_int_equal (when, LEDGER_REPLY_NOW);
    lk_commit ();
    return r.result;
}

rl_account_t
lk_account (uint64_t a)
{
    rl_id_t id = lk_acc (a);
    rl_account_t out;
    ledger_lookup_accounts (lk_ledger, &id, 1, &out);
    assert_true (out.timestamp != 0);
    return out;
}

void
lk_expect (uint64_t a, uint64_t dpend, uint64_t dpost, uint64_t cpend, uint64_t cpost)
{
    rl_account_t x = lk_account (a);
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
void
lk_conserved (bool settled)
{
    char err[512];
    if (ledger_audit (lk_ledger, err, sizeof (err)) != 0) {
        fail_msg ("audit: %s", err);
    }
    uint64_t dp = 0, cp = 0, dpend = 0, cpend = 0;
    for (uint64_t a = 1; a <= 7; a += 2) {
        rl_account_t x = lk_account (a);
        dp += x.debits_posted, cp += x.credits_posted;
        dpend += x.debits_pending, cpend += x.credits_pending;
        assert_int_equal (x.debits_reserved + x.credits_reserved, 0);
    }
    assert_int_equal (dp, cp);
    assert_int_equal (dpend, cpend);
    if (settled) {
        assert_int_equal (dpend, 0);
        assert_int_equal (ledger_pending_count (lk_ledger), 0);
    }
}
