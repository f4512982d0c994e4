/*  ledgerkit.h: one shard's ledger on storage in memory, for the unit tests
    of payment rules (test_pending, test_chains).

    Shard s1 of a ring of s1 and s2: odd accounts are s1's, even ones s2's
    (lk_acc picks each id's high half so that it lands there). The ledger
    runs on an in-memory file system that keeps what was committed across
    a restart, with an injected clock (lk_wall, lk_mono), so that expiry,
    crashes before and after a group commit and restarts are exact and
    fast. lk_setup creates accounts 1 (free to go negative), 3, 5 (debits
    must not exceed credits) and 7 (credits must not exceed debits).
*/
#ifndef RL_TEST_LEDGERKIT_H
#define RL_TEST_LEDGERKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "ledger.h"
#include "now.h"
#include "outq.h"
#include "ring.h"
#include "store.h"

#define LK_LEDGER   7
#define LK_ACCOUNTS 9 //  accounts 1..9 get ids; 9 is s1's and never created
#define LK_S_NS     1000000000ull
#define LK_T0       1700000000000000000ull

extern ring_t *lk_ring;
extern store_env_t *lk_env;
extern store_t *lk_store;
extern outq_t *lk_outq;
extern ledger_t *lk_ledger;
extern uint64_t lk_wall;    //  the wall clock the ledger sees, ns
extern uint64_t lk_mono;    //  its monotonic clock, ns
extern uint64_t lk_next_id; //  lk_t and lk_resolve take ids from here

now_t lk_now (void);
//  The id of account a (1..LK_ACCOUNTS).
rl_id_t lk_acc (uint64_t a);
//  Builds lk_ring and the account ids; once per program.
void lk_ring_setup (void);
//  A fresh in-memory store at path (a name inside it), the ledger opened on
//  it and the four accounts created.
void lk_setup (const char *path);
void lk_teardown (void);
//  Opens the ledger on the store at the path of lk_setup.
void lk_open (void);
//  The group commit of the turn: before_commit, write, sync, after_commit.
void lk_commit (void);
//  Closes the ledger, after committing the turn or (commit false) as a
//  crash before its commit would.
void lk_close (bool commit);
//  lk_close, then one second later lk_open.
void lk_restart (bool commit);
//  A transfer of amount from dr to cr (cr 0: no credit account).
rl_transfer_t lk_t (uint16_t flags, uint64_t dr, uint64_t cr, uint64_t amount);
//  A post (or void) of pending transfer p, inheriting what it leaves 0.
rl_transfer_t lk_resolve (uint16_t flags, const rl_transfer_t *p, uint64_t amount);
//  Sends one record in its own request, commits the turn, returns its result.
uint32_t lk_send (const rl_transfer_t *t);
rl_account_t lk_account (uint64_t a);
//  Fails unless account a has these pending and posted amounts.
void lk_expect (uint64_t a, uint64_t dpend, uint64_t dpost, uint64_t cpend, uint64_t cpost);
//  The ledger's audit and conservation over accounts 1, 3, 5, 7: posted
//  debits equal posted credits, pending ones too, nothing reserved; settled:
//  nothing may be pending any more.
void lk_conserved (bool settled);

#endif
