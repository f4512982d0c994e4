/*  test_debit_legs.c: the debit leg of a linked chain's member, at the
    shard of its debit account (docs/two-phase.md, "Debit legs"), driven by
    hand on one shard's ledger with storage in memory.

    The ledger of shard s1 (of a ring of s1 and s2: odd accounts are s1's,
    even ones s2's) gets PREPAREs from coordinator s2, the chain's shard,
    for members debiting s1's accounts: the debit leg alone (the credit on
    s2) or both legs (the credit on s1 too).

    - test_commit: a debit leg prepared (the debit reserved, the record
      durable), its id in_progress for a create here, a duplicate PREPARE
      answered as before; a restart restores it; the COMMIT posts it and
      stores the transfer under s1's timestamp: a create of the id then
      answers exists with it, a resent COMMIT (also after a restart) is
      acknowledged, a PREPARE of the id again (any attempt) is refused
      exists with that timestamp. Both legs likewise.
    - test_abort: an ABORT releases, stores nothing, burns nothing; a
      create of the id alone then applies; a crash before the PREPARE's
      commit leaves nothing; a newer attempt supersedes an older one.
    - test_refusals: the checks of a create: debit account not found,
      ledger, exceeds_credits (reservations count), both legs' credit
      checks; a stored id (exists, exists_with_different_*, a burned
      failure); an id live in this shard's coordinator or held for another
      coordinator (in_progress); nothing reserved by any of them.
    - test_pending_legs: a chain's pending member as a debit leg (its
      timeout with it): prepared (the debit reserved, the table's room
      kept), restored by a restart, committed into debits_pending (side
      DEBIT: this shard expires it, by a void attempt towards s2); both
      legs: side BOTH, expired by the tick; a void of it as a post leg
      once due: expired (both leg bits beside it: refused).
      test_pending_legs_import: a migration's
      handover bringing a pending transfer of the same id (another debit
      account) is refused while the leg is prepared.
    - test_pending_third_window: a pending credit leg on a third shard
      prepared here; a post of it from its debit shard before its COMMIT
      is in_progress (not burned), prepared and applied after it; the
      credit leg of a post leg on a third shard (as the client gave it):
      from the debit account's owner unauthorized, with a timeout
      refused, from the chain's shard prepared (the credit side claimed),
      committed.
    - test_hostile: wrong_shard (accounts not of the leg's shard, a debit
      leg alone whose credit is this shard's too), a coordinator naming
      this shard itself or a shard not in the ring, a sender not the
      coordinator (unauthorized; a debit leg's credit on a third shard
      needs three: test_chains_router), other flags beside a leg
      flag, a timeout or pending id, both legs on one account, code zero
      (reserved_field), a leg flag in a
      client's create (reserved_flag); a credit leg on a third shard from
      the debit account's owner (unauthorized) or whose debit account is
      this shard's (wrong_shard); nothing reserved, nothing stored.
      (test_codec checks the codec's malformed for mixed kinds.)
    Every test ends with the audit and a conservation check: the posted
    debits of s1's accounts equal their posted credits plus what the
    committed debit legs sent to s2.
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
#include "participant.h"
#include "pending.h"

#define DEBIT_LEG RL_TRANSFER_TP_DEBIT_LEG
#define BOTH_LEGS RL_TRANSFER_TP_BOTH_LEGS

static uint64_t s_seq; //  the attempts of the made-up coordinator s2

//  The PREPARE of t from coordinator s2 (a new attempt), kind in its flags.
static rl_prepare_rec_t
s_prep (const rl_transfer_t *t, uint16_t kind)
{
    rl_prepare_rec_t rec = {.transfer = *t};
    rec.transfer.flags = kind;
    rec.tp.id = t->id;
    rec.tp.attempt = (rl_attempt_t){.counter = 1, .nonce = 7, .seq = ++s_seq};
    rec.tp.amount = t->amount;
    rec.tp.debit_account_id = t->debit_account_id;
    snprintf (rec.tp.coordinator, sizeof (rec.tp.coordinator), "s2");
    return rec;
}

//  Sends PREPAREs from `sender`, commits the turn; out: the replies.
static void
s_prepare (const rl_prepare_rec_t *recs, size_t count, const char *sender, rl_tp_rec_t *out)
{
    participant_prepare (ledger_participant (lk_ledger), recs, count, sender, lk_now (), out);
    lk_commit ();
}

//  One PREPARE from s2: its reply's state; *result_p its result.
static uint32_t
s_prepare_one (const rl_prepare_rec_t *rec, uint32_t *result_p, uint64_t *ts_p)
{
    rl_tp_rec_t out;
    s_prepare (rec, 1, "s2", &out);
    if (result_p) {
        *result_p = out.result;
    }
    if (ts_p) {
        *ts_p = out.timestamp;
    }
    return out.state;
}

//  The decision `state` for the attempt of rec from s2: the ack's state.
static uint32_t
s_decide (const rl_prepare_rec_t *rec, uint32_t state)
{
    rl_tp_rec_t d = rec->tp;
    d.state = state;
    rl_tp_rec_t out;
    participant_decide (ledger_participant (lk_ledger), &d, 1, "s2", lk_now (), &out);
    lk_commit ();
    return out.state;
}

static uint64_t
s_prepared (void)
{
    uint64_t prepared = 0, alarms = 0;
    participant_counts (ledger_participant (lk_ledger), &prepared, &alarms);
    assert_int_equal (alarms, 0);
    return prepared;
}

//  The stored transfer of id (timestamp 0: none).
static rl_transfer_t
s_lookup (rl_id_t id)
{
    rl_transfer_t out;
    assert_int_equal (ledger_lookup_transfers (lk_ledger, &id, 1, &out), 0);
    return out;
}

//  Audit and conservation: nothing reserved, s1's posted debits equal its
//  posted credits plus `sent` (the debit legs committed whose credit is s2's).
static void
s_conserved (uint64_t sent)
{
    char err[512];
    if (ledger_audit (lk_ledger, err, sizeof (err)) != 0) {
        fail_msg ("audit: %s", err);
    }
    uint64_t dp = 0, cp = 0;
    for (uint64_t a = 1; a <= 7; a += 2) {
        rl_account_t x = lk_account (a);
        dp += x.debits_posted, cp += x.credits_posted;
        assert_int_equal (x.debits_reserved + x.credits_reserved, 0);
    }
    assert_int_equal (dp, cp + sent);
    assert_int_equal (s_prepared (), 0);
}

static void
test_commit (void **state)
{
    (void) state;
    lk_setup ("/legs/commit");
    assert_int_equal (lk_send (&(rl_transfer_t){.id = {900, 1},
                                                .debit_account_id = lk_acc (1),
                                                .credit_account_id = lk_acc (3),
                                                .amount = 100,
                                                .ledger = LK_LEDGER,
                                                .code = 1}),
                      RL_OK);
    //  3 pays 2 (s2's) 30: the debit leg here.
    rl_transfer_t t = lk_t (0, 3, 2, 30);
    rl_prepare_rec_t p = s_prep (&t, DEBIT_LEG);
    assert_int_equal (s_prepare_one (&p, NULL, NULL), RL_TP_PREPARED);
    assert_int_equal (lk_account (3).debits_reserved, 30);
    assert_true (participant_debit_live (ledger_participant (lk_ledger), t.id));
    char err[256];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  Its id is live here: a create of it alone is in_progress.
    assert_int_equal (lk_send (&t), RL_IN_PROGRESS);
    assert_int_equal (s_lookup (t.id).timestamp, 0);
    //  Listed in doubt as a participant's record of that kind.
    rl_in_doubt_rec_t listed[4];
    assert_int_equal (ledger_in_doubt (lk_ledger, listed, 4), 1);
    assert_int_equal (listed[0].prepare.transfer.flags, DEBIT_LEG);
    assert_int_equal (listed[0].prepare.reserved[1], RL_ROLE_PARTICIPANT);
    //  A duplicate PREPARE is answered as before; a restart restores it.
    assert_int_equal (s_prepare_one (&p, NULL, NULL), RL_TP_PREPARED);
    lk_restart (true);
    assert_int_equal (lk_account (3).debits_reserved, 30);
    assert_int_equal (lk_send (&t), RL_IN_PROGRESS);
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    //  The limit counts the reservation: 3 has 70 left to pay.
    rl_transfer_t more = lk_t (0, 3, 5, 71);
    assert_int_equal (lk_send (&more), RL_EXCEEDS_CREDITS);
    //  COMMIT: posted, stored under s1's timestamp.
    lk_wall += LK_S_NS;
    assert_int_equal (s_decide (&p, RL_TP_COMMIT), RL_TP_ACKED);
    rl_account_t a3 = lk_account (3);
    assert_int_equal (a3.debits_reserved, 0);
    assert_int_equal (a3.debits_posted, 30);
    assert_false (participant_debit_live (ledger_participant (lk_ledger), t.id));
    rl_transfer_t stored = s_lookup (t.id);
    assert_true (stored.timestamp >= lk_wall);
    assert_int_equal (stored.flags, 0);
    assert_int_equal (stored.amount, 30);
    //  A create of it alone: exists (its timestamp); resent COMMITs acked.
    rl_result_rec_t r;
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 1};
    ledger_create_transfers (lk_ledger, &t, 1, lk_now (), NULL, &h, &r);
    lk_commit ();
    assert_int_equal (r.result, RL_EXISTS);
    assert_int_equal (r.timestamp, stored.timestamp);
    assert_int_equal (s_decide (&p, RL_TP_COMMIT), RL_TP_ACKED);
    lk_restart (true);
    assert_int_equal (s_decide (&p, RL_TP_COMMIT), RL_TP_ACKED);
    assert_int_equal (s_lookup (t.id).timestamp, stored.timestamp);
    //  Prepared again, the same attempt or a newer one: refused exists
    //  with its timestamp, nothing reserved.
    uint32_t result = 0;
    uint64_t ts = 0;
    assert_int_equal (s_prepare_one (&p, &result, &ts), RL_TP_REFUSED);
    assert_int_equal (result, RL_EXISTS);
    assert_int_equal (ts, stored.timestamp);
    rl_prepare_rec_t again = s_prep (&t, DEBIT_LEG);
    assert_int_equal (s_prepare_one (&again, &result, &ts), RL_TP_REFUSED);
    assert_int_equal (result, RL_EXISTS);
    assert_int_equal (lk_account (3).debits_reserved, 0);
    //  Both legs: 3 pays 5, both s1's, one record of both.
    rl_transfer_t b = lk_t (0, 3, 5, 20);
    rl_prepare_rec_t pb = s_prep (&b, BOTH_LEGS);
    assert_int_equal (s_prepare_one (&pb, NULL, NULL), RL_TP_PREPARED);
    assert_int_equal (lk_account (3).debits_reserved, 20);
    assert_int_equal (lk_account (5).credits_reserved, 20);
    assert_int_equal (lk_send (&b), RL_IN_PROGRESS);
    lk_restart (true);
    assert_int_equal (lk_account (5).credits_reserved, 20);
    assert_int_equal (s_decide (&pb, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (3, 0, 50, 0, 100);
    lk_expect (5, 0, 0, 0, 20);
    assert_int_equal (lk_send (&b), RL_EXISTS);
    //  A COMMIT whose record was not dropped yet at a crash: the record
    //  goes at the load (the transfer is the proof), nothing restored.
    rl_transfer_t c = lk_t (0, 3, 4, 5);
    rl_prepare_rec_t pc = s_prep (&c, DEBIT_LEG);
    assert_int_equal (s_prepare_one (&pc, NULL, NULL), RL_TP_PREPARED);
    assert_int_equal (s_decide (&pc, RL_TP_COMMIT), RL_TP_ACKED);
    lk_restart (true);
    assert_int_equal (lk_account (3).debits_reserved, 0);
    lk_expect (3, 0, 55, 0, 100);
    s_conserved (35);
    lk_teardown ();
}

static void
test_abort (void **state)
{
    (void) state;
    lk_setup ("/legs/abort");
    rl_transfer_t fund = lk_t (0, 1, 3, 100);
    assert_int_equal (lk_send (&fund), RL_OK);
    rl_transfer_t t = lk_t (0, 3, 5, 60); //  both legs here: a create of it alone applies here
    rl_prepare_rec_t p = s_prep (&t, BOTH_LEGS);
    assert_int_equal (s_prepare_one (&p, NULL, NULL), RL_TP_PREPARED);
    assert_int_equal (lk_account (5).credits_reserved, 60);
    assert_int_equal (s_decide (&p, RL_TP_ABORT), RL_TP_ACKED);
    assert_int_equal (lk_account (5).credits_reserved, 0);
    assert_int_equal (lk_account (3).debits_reserved, 0);
    assert_int_equal (s_lookup (t.id).timestamp, 0);
    //  A COMMIT of the aborted attempt: refused, an alarm, nothing applied.
    rl_tp_rec_t d = p.tp, out;
    d.state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), &d, 1, "s2", lk_now (), &out);
    lk_commit ();
    assert_int_equal (out.state, RL_TP_NOT_ACKED);
    uint64_t prepared = 0, alarms = 0;
    participant_counts (ledger_participant (lk_ledger), &prepared, &alarms);
    assert_int_equal (alarms, 1);
    //  The id is not burned: a newer attempt prepares; a crash before its
    //  commit leaves nothing.
    rl_prepare_rec_t p2 = s_prep (&t, BOTH_LEGS);
    rl_tp_rec_t o2;
    participant_prepare (ledger_participant (lk_ledger), &p2, 1, "s2", lk_now (), &o2);
    assert_int_equal (o2.state, RL_TP_PREPARED);
    lk_restart (false);
    assert_int_equal (lk_account (3).debits_reserved, 0);
    assert_false (participant_debit_live (ledger_participant (lk_ledger), t.id));
    //  Prepared again (durably); a newer attempt supersedes it (the
    //  coordinator begins one only when the older cannot commit).
    assert_int_equal (s_prepare_one (&p2, NULL, NULL), RL_TP_PREPARED);
    rl_prepare_rec_t p3 = s_prep (&t, BOTH_LEGS);
    assert_int_equal (s_prepare_one (&p3, NULL, NULL), RL_TP_PREPARED);
    assert_int_equal (lk_account (3).debits_reserved, 60);
    uint32_t result = 0;
    assert_int_equal (s_prepare_one (&p2, &result, NULL), RL_TP_REFUSED); //  late: superseded
    assert_int_equal (result, RL_ABORTED);
    lk_restart (true);
    assert_int_equal (s_decide (&p3, RL_TP_ABORT), RL_TP_ACKED);
    //  Nothing burned: the create alone applies under the id.
    assert_int_equal (lk_send (&t), RL_OK);
    lk_expect (3, 0, 60, 0, 100);
    lk_expect (5, 0, 0, 0, 60);
    //  ... and from then on a PREPARE of it is refused exists.
    rl_prepare_rec_t p4 = s_prep (&t, BOTH_LEGS);
    assert_int_equal (s_prepare_one (&p4, &result, NULL), RL_TP_REFUSED);
    assert_int_equal (result, RL_EXISTS);
    s_conserved (0);
    lk_teardown ();
}

static void
test_refusals (void **state)
{
    (void) state;
    lk_setup ("/legs/refusals");
    rl_transfer_t fund = lk_t (0, 1, 3, 50);
    assert_int_equal (lk_send (&fund), RL_OK);
    struct {
        rl_transfer_t t;
        uint16_t kind;
        uint32_t want;
    } cases[] = {
        {lk_t (0, 9, 2, 5), DEBIT_LEG, RL_DEBIT_ACCOUNT_NOT_FOUND},
        {lk_t (0, 3, 2, 51), DEBIT_LEG, RL_EXCEEDS_CREDITS},
        {lk_t (0, 3, 9, 5), BOTH_LEGS, RL_CREDIT_ACCOUNT_NOT_FOUND},
        {lk_t (0, 3, 7, 5), BOTH_LEGS, RL_EXCEEDS_DEBITS},
        {lk_t (0, 3, 5, 51), BOTH_LEGS, RL_EXCEEDS_CREDITS},
    };
    size_t n = sizeof cases / sizeof cases[0];
    rl_transfer_t wrong_ledger = lk_t (0, 3, 2, 5);
    wrong_ledger.ledger = LK_LEDGER + 1;
    for (size_t k = 0; k < n; k++) {
        rl_prepare_rec_t p = s_prep (&cases[k].t, cases[k].kind);
        uint32_t result = 0;
        assert_int_equal (s_prepare_one (&p, &result, NULL), RL_TP_REFUSED);
        if (result != cases[k].want) {
            fail_msg ("case %zu: %s, expected %s", k, rl_result_name (result),
                      rl_result_name (cases[k].want));
        }
        assert_int_equal (s_lookup (cases[k].t.id).timestamp, 0); //  nothing burned
    }
    rl_prepare_rec_t wl = s_prep (&wrong_ledger, DEBIT_LEG);
    uint32_t result = 0;
    assert_int_equal (s_prepare_one (&wl, &result, NULL), RL_TP_REFUSED);
    assert_int_equal (result, RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS);
    //  A reservation counts: 40 prepared, 11 more exceed 3's credits.
    rl_transfer_t big = lk_t (0, 3, 2, 40);
    rl_prepare_rec_t pbig = s_prep (&big, DEBIT_LEG);
    assert_int_equal (s_prepare_one (&pbig, NULL, NULL), RL_TP_PREPARED);
    rl_transfer_t over = lk_t (0, 3, 4, 11);
    rl_prepare_rec_t pover = s_prep (&over, DEBIT_LEG);
    assert_int_equal (s_prepare_one (&pover, &result, NULL), RL_TP_REFUSED);
    assert_int_equal (result, RL_EXCEEDS_CREDITS);
    //  Held for s2: a PREPARE of the id for another coordinator (s1 cannot
    //  be one: a ring of two; the sender rule is the hostile test's) would
    //  wait; a create here is in_progress; so is a chain holding it.
    rl_transfer_t chain[2] = {big, lk_t (0, 1, 3, 1)};
    chain[0].flags = RL_TRANSFER_LINKED;
    rl_result_rec_t r[2];
    rl_header_t h = {.operation = RL_OP_CREATE_TRANSFERS, .record_count = 2};
    ledger_create_transfers (lk_ledger, chain, 2, lk_now (), NULL, &h, r);
    lk_commit ();
    assert_int_equal (r[0].result, RL_IN_PROGRESS);
    assert_int_equal (r[1].result, RL_IN_PROGRESS);
    assert_int_equal (s_decide (&pbig, RL_TP_ABORT), RL_TP_ACKED);
    //  Ids stored here: the create's answers, with the stored timestamp.
    rl_transfer_t applied = lk_t (0, 3, 5, 10);
    assert_int_equal (lk_send (&applied), RL_OK);
    rl_transfer_t burned = lk_t (0, 5, 3, 1000);
    assert_int_equal (lk_send (&burned), RL_EXCEEDS_CREDITS);
    rl_transfer_t other = applied;
    other.amount = 11;
    struct {
        rl_transfer_t t;
        uint16_t kind;
        uint32_t want;
    } ids[] = {
        {applied, BOTH_LEGS, RL_EXISTS},
        {other, BOTH_LEGS, RL_EXISTS_WITH_DIFFERENT_AMOUNT},
        {burned, BOTH_LEGS, RL_EXCEEDS_CREDITS},
        {applied, DEBIT_LEG, RL_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID},
    };
    ids[3].t.credit_account_id = lk_acc (2);
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        rl_prepare_rec_t p = s_prep (&ids[k].t, ids[k].kind);
        uint64_t ts = 0;
        assert_int_equal (s_prepare_one (&p, &result, &ts), RL_TP_REFUSED);
        if (result != ids[k].want) {
            fail_msg ("id case %zu: %s, expected %s", k, rl_result_name (result),
                      rl_result_name (ids[k].want));
        }
        assert_true (ts == s_lookup (applied.id).timestamp || k == 2);
        assert_true (ts != 0);
    }
    lk_expect (3, 0, 10, 0, 50);
    s_conserved (0);
    lk_teardown ();
}

static void
test_pending_legs (void **state)
{
    (void) state;
    lk_setup ("/legs/pending");
    //  1 (here) to 2 (s2): a debit leg of a pending transfer.
    rl_transfer_t t = lk_t (0, 1, 2, 5);
    t.timeout = 2;
    rl_prepare_rec_t rec = s_prep (&t, DEBIT_LEG | RL_TRANSFER_PENDING);
    uint32_t result = 0;
    assert_int_equal (s_prepare_one (&rec, &result, NULL), RL_TP_PREPARED);
    assert_int_equal (lk_account (1).debits_reserved, 5);
    //  A post of it while it is prepared here: in_progress, not burned.
    rl_transfer_t early = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &t, 0);
    assert_int_equal (lk_send (&early), RL_IN_PROGRESS);
    assert_int_equal (s_lookup (early.id).timestamp, 0);
    lk_restart (true);
    assert_int_equal (lk_account (1).debits_reserved, 5);
    assert_int_equal (lk_send (&early), RL_IN_PROGRESS);
    assert_int_equal (s_decide (&rec, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (1, 5, 0, 0, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 1);
    assert_int_equal (s_lookup (t.id).flags, RL_TRANSFER_PENDING);
    //  Past its timeout it falls due here: the void attempt towards s2.
    lk_wall += 3 * LK_S_NS;
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    bool expiry = false;
    for (size_t k = 0; k < outq_count (lk_outq); k++) {
        const outq_msg_t *m = outq_at (lk_outq, k);
        expiry |= m->kind == OUTQ_PREPARE
                  && (m->prepare.transfer.flags & RL_TRANSFER_VOID_PENDING_TRANSFER)
                  && rl_id_eq (m->prepare.transfer.pending_id, t.id);
    }
    assert_true (expiry);
    lk_commit ();
    //  Both legs here (1 to 5): side BOTH, which the tick expires.
    rl_transfer_t b = lk_t (0, 1, 5, 4);
    b.timeout = 1;
    rl_prepare_rec_t both = s_prep (&b, BOTH_LEGS | RL_TRANSFER_PENDING);
    assert_int_equal (s_prepare_one (&both, &result, NULL), RL_TP_PREPARED);
    assert_int_equal (s_decide (&both, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (5, 0, 0, 4, 0);
    lk_wall += 2 * LK_S_NS;
    lk_mono += 1000000;
    ledger_tick (lk_ledger, lk_now ());
    lk_commit ();
    lk_expect (5, 0, 0, 0, 0);
    //  A void of it as a post leg (docs/two-phase.md, "Post legs") from
    //  s2, which holds its credit side: it fell due, its expiry's void
    //  attempt holds it: expired, nothing claimed. Both leg bits beside a
    //  void: reserved_field.
    rl_transfer_t v = lk_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &t, 0);
    v.credit_account_id = t.credit_account_id;
    v.amount = 5, v.ledger = t.ledger, v.code = 1;
    rl_prepare_rec_t vr = s_prep (&v, DEBIT_LEG | RL_TRANSFER_VOID_PENDING_TRANSFER);
    assert_int_equal (s_prepare_one (&vr, &result, NULL), RL_TP_REFUSED);
    assert_int_equal (result, RL_PENDING_TRANSFER_EXPIRED);
    vr = s_prep (&v, DEBIT_LEG | BOTH_LEGS | RL_TRANSFER_VOID_PENDING_TRANSFER);
    assert_int_equal (s_prepare_one (&vr, &result, NULL), RL_TP_REFUSED);
    assert_int_equal (result, RL_WRONG_SHARD); //  a credit leg on a third shard's rule
    char err[512];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  A migration's handover bringing a live pending transfer whose id a
//  prepared pending debit leg holds here with another debit account (a
//  client reused the id): refused (-1), so that the leg's COMMIT finds its
//  key free; both legs too.
static void
test_pending_legs_import (void **state)
{
    (void) state;
    lk_setup ("/legs/import");
    const uint16_t kinds[2] = {DEBIT_LEG, BOTH_LEGS};
    for (int k = 0; k < 2; k++) {
        rl_transfer_t t = lk_t (0, 1, k == 0 ? 2 : 5, 5);
        t.timeout = 100;
        rl_prepare_rec_t rec = s_prep (&t, kinds[k] | RL_TRANSFER_PENDING);
        assert_int_equal (s_prepare_one (&rec, NULL, NULL), RL_TP_PREPARED);
        rl_transfer_t moved = t;
        moved.debit_account_id = lk_acc (3);
        moved.credit_account_id = lk_acc (4);
        moved.flags = RL_TRANSFER_PENDING;
        moved.timestamp = lk_wall - LK_S_NS;
        moved.reserved = PENDING_STATE_PENDING;
        assert_int_equal (ledger_pending_install_check (lk_ledger, &moved, PENDING_SIDE_DEBIT), -1);
        assert_int_equal (s_decide (&rec, RL_TP_COMMIT), RL_TP_ACKED);
        assert_int_equal (s_lookup (t.id).flags, RL_TRANSFER_PENDING);
    }
    lk_expect (1, 10, 0, 0, 0);
    assert_int_equal (ledger_pending_count (lk_ledger), 2);
    char err[512];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    lk_teardown ();
}

//  The credit leg of a pending member debiting a third shard, prepared
//  here (s3 as the debit shard X, s2 as the chain's shard D): D answered its
//  client at X's acknowledgement, so X's PREPARE of a post of it may come
//  before D's COMMIT: in_progress (not pending_transfer_not_found, which
//  burns); after the COMMIT, the same post is prepared.
static void
test_pending_third_window (void **state)
{
    (void) state;
    lk_setup ("/legs/third_window");
    ring_t *ring3 = ring_dup (lk_ring);
    assert_non_null (ring3);
    assert_int_equal (ring_add_shard (ring3, "s3", "inproc://s3", 0.2), 0);
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (lk_acc (3), bytes);
    int owner = ring_lookup_id (ring3, bytes);
    assert_true (owner >= 0 && strcmp (ring_shard_name (ring3, (size_t) owner), "s1") == 0);
    rl_id_t x = {0}; //  an account of s3
    for (uint64_t hi = 1; hi < 100000 && rl_id_is_zero (x); hi++) {
        rl_id_t id = {.lo = 79, .hi = hi};
        codec_encode_id (id, bytes);
        int index = ring_lookup_id (ring3, bytes);
        x = index >= 0 && strcmp (ring_shard_name (ring3, (size_t) index), "s3") == 0 ? id : x;
    }
    assert_false (rl_id_is_zero (x));
    ledger_set_ring (lk_ledger, ring3);
    rl_transfer_t p = lk_t (RL_TRANSFER_PENDING, 1, 3, 25);
    p.debit_account_id = x;
    p.timeout = 60;
    rl_prepare_rec_t leg = s_prep (&p, RL_TRANSFER_TP_CREDIT_THIRD | RL_TRANSFER_PENDING);
    assert_int_equal (s_prepare_one (&leg, NULL, NULL), RL_TP_PREPARED);
    rl_transfer_t post = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
    post.credit_account_id = p.credit_account_id;
    post.amount = p.amount;
    post.ledger = p.ledger;
    post.code = p.code;
    rl_prepare_rec_t pp = s_prep (&post, RL_TRANSFER_POST_PENDING_TRANSFER);
    pp.transfer.pending_id = p.id;
    snprintf (pp.tp.coordinator, sizeof (pp.tp.coordinator), "s3");
    rl_tp_rec_t out;
    s_prepare (&pp, 1, "s3", &out);
    assert_int_equal (out.state, RL_TP_REFUSED);
    assert_int_equal (out.result, RL_IN_PROGRESS);
    assert_int_equal (s_decide (&leg, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (3, 0, 0, 25, 0);
    pp.tp.attempt.seq++;
    s_prepare (&pp, 1, "s3", &out);
    assert_int_equal (out.state, RL_TP_PREPARED);
    rl_tp_rec_t d = pp.tp;
    d.state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), &d, 1, "s3", lk_now (), &out);
    lk_commit ();
    assert_int_equal (out.state, RL_TP_ACKED);
    lk_expect (3, 0, 0, 0, 25);
    //  The credit leg of a post leg (docs/two-phase.md, "Post legs"): a
    //  chain of s2 captures p2 (x on s3 to 3 here) naming its credit
    //  account, as the client gave it (all of it: amount 0). From s3 (the
    //  debit account's owner): unauthorized; with a timeout: reserved_field;
    //  from s2: prepared, resolved here, the credit side claimed (s3's own
    //  post of it in_progress), committed: 9 posted to 3.
    rl_transfer_t p2 = lk_t (RL_TRANSFER_PENDING, 1, 3, 9);
    p2.debit_account_id = x;
    rl_prepare_rec_t leg2 = s_prep (&p2, RL_TRANSFER_TP_CREDIT_THIRD | RL_TRANSFER_PENDING);
    assert_int_equal (s_prepare_one (&leg2, NULL, NULL), RL_TP_PREPARED);
    assert_int_equal (s_decide (&leg2, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (3, 0, 0, 9, 25);
    rl_transfer_t cap = lk_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p2, 0);
    cap.credit_account_id = p2.credit_account_id;
    rl_prepare_rec_t cp = s_prep (&cap,
                                  RL_TRANSFER_TP_CREDIT_THIRD | RL_TRANSFER_POST_PENDING_TRANSFER);
    snprintf (cp.tp.coordinator, sizeof (cp.tp.coordinator), "s3");
    s_prepare (&cp, 1, "s3", &out);
    assert_int_equal (out.result, RL_UNAUTHORIZED);
    cp = s_prep (&cap, RL_TRANSFER_TP_CREDIT_THIRD | RL_TRANSFER_POST_PENDING_TRANSFER);
    cp.transfer.timeout = 1;
    uint32_t result = 0;
    assert_int_equal (s_prepare_one (&cp, &result, NULL), RL_TP_REFUSED);
    assert_int_equal (result, RL_RESERVED_FIELD);
    cp.transfer.timeout = 0;
    assert_int_equal (s_prepare_one (&cp, &result, NULL), RL_TP_PREPARED);
    pp.transfer.id = lk_t (0, 1, 3, 1).id; //  a fresh id
    pp.tp.id = pp.transfer.id;
    pp.transfer.pending_id = p2.id;
    pp.transfer.amount = pp.tp.amount = 9;
    pp.tp.attempt.seq++;
    s_prepare (&pp, 1, "s3", &out);
    assert_int_equal (out.result, RL_IN_PROGRESS);
    assert_int_equal (s_decide (&cp, RL_TP_COMMIT), RL_TP_ACKED);
    lk_expect (3, 0, 0, 0, 34);
    char err[512];
    assert_int_equal (ledger_audit (lk_ledger, err, sizeof (err)), 0);
    ledger_set_ring (lk_ledger, lk_ring);
    lk_teardown ();
    ring_destroy (&ring3);
}

static void
test_hostile (void **state)
{
    (void) state;
    lk_setup ("/legs/hostile");
    rl_transfer_t fund = lk_t (0, 1, 3, 50);
    assert_int_equal (lk_send (&fund), RL_OK);
    rl_transfer_t good = lk_t (0, 3, 2, 5);
    enum { N = 12 };
    rl_prepare_rec_t recs[N];
    uint32_t want[N];
    //  0: a good one among them, prepared.
    recs[0] = s_prep (&good, DEBIT_LEG), want[0] = RL_OK;
    //  1: a debit leg whose debit account is s2's; 2: whose credit is s1's;
    //  3: both legs, the credit s2's.
    rl_transfer_t t = lk_t (0, 4, 2, 5);
    recs[1] = s_prep (&t, DEBIT_LEG), want[1] = RL_WRONG_SHARD;
    t = lk_t (0, 3, 5, 5); //  a debit leg alone whose credit is this shard's too
    recs[2] = s_prep (&t, DEBIT_LEG), want[2] = RL_WRONG_SHARD;
    t = lk_t (0, 3, 2, 5);
    recs[3] = s_prep (&t, BOTH_LEGS), want[3] = RL_WRONG_SHARD;
    //  4, 5: naming another coordinator than the sender (this shard, a
    //  shard not in the ring).
    t = lk_t (0, 3, 2, 5);
    recs[4] = s_prep (&t, DEBIT_LEG), want[4] = RL_UNAUTHORIZED;
    snprintf (recs[4].tp.coordinator, sizeof recs[4].tp.coordinator, "s1");
    t = lk_t (0, 3, 2, 5);
    recs[5] = s_prep (&t, DEBIT_LEG), want[5] = RL_UNAUTHORIZED;
    snprintf (recs[5].tp.coordinator, sizeof recs[5].tp.coordinator, "s9");
    //  6: linked beside the leg flag; 7: balancing; 8: a timeout; 9: a
    //  pending id (the codec refuses 8 and 9 malformed on the wire).
    t = lk_t (0, 3, 2, 5);
    recs[6] = s_prep (&t, DEBIT_LEG | RL_TRANSFER_LINKED), want[6] = RL_RESERVED_FIELD;
    t = lk_t (0, 3, 5, 5);
    recs[7] = s_prep (&t, BOTH_LEGS | RL_TRANSFER_BALANCING_DEBIT), want[7] = RL_RESERVED_FIELD;
    t = lk_t (0, 3, 2, 5);
    recs[8] = s_prep (&t, DEBIT_LEG), want[8] = RL_RESERVED_FIELD;
    recs[8].transfer.timeout = 5;
    t = lk_t (0, 3, 2, 5);
    recs[9] = s_prep (&t, DEBIT_LEG), want[9] = RL_RESERVED_FIELD;
    recs[9].transfer.pending_id = (rl_id_t){.lo = 77};
    //  10: both legs on one account; 11: code zero (a create refuses both).
    t = lk_t (0, 3, 3, 5);
    recs[10] = s_prep (&t, BOTH_LEGS), want[10] = RL_RESERVED_FIELD;
    t = lk_t (0, 3, 2, 5);
    t.code = 0;
    recs[11] = s_prep (&t, DEBIT_LEG), want[11] = RL_RESERVED_FIELD;
    rl_tp_rec_t out[N];
    s_prepare (recs, N, "s2", out);
    for (int k = 0; k < N; k++) {
        uint32_t state_want = want[k] == RL_OK ? RL_TP_PREPARED : RL_TP_REFUSED;
        if (out[k].state != state_want || (want[k] != RL_OK && out[k].result != want[k])) {
            fail_msg ("record %d: %s %s, expected %s", k, rl_tp_state_name (out[k].state),
                      rl_result_name (out[k].result), rl_result_name (want[k]));
        }
    }
    assert_int_equal (lk_account (3).debits_reserved, 5);
    assert_int_equal (s_prepared (), 1);
    //  From a sender that is not the coordinator named; this shard naming
    //  itself (a chain's shard is never its member's debit shard: that
    //  member is its own); a shard not in the ring, without keys to tell:
    //  unauthorized.
    const char *named[3] = {"s2", "s1", "s9"};
    const char *senders[3] = {"s1", "s1", NULL};
    for (int k = 0; k < 3; k++) {
        t = lk_t (0, 3, 2, 5);
        rl_prepare_rec_t forged = s_prep (&t, DEBIT_LEG);
        snprintf (forged.tp.coordinator, sizeof forged.tp.coordinator, "%s", named[k]);
        s_prepare (&forged, 1, senders[k], out);
        assert_int_equal (out[0].state, RL_TP_REFUSED);
        assert_int_equal (out[0].result, RL_UNAUTHORIZED);
    }
    //  A credit leg on a third shard (both leg bits): from the debit
    //  account's owner, unauthorized (it sends a credit leg of its own);
    //  whose debit account is this shard's, wrong_shard; beside pending or
    //  with a timeout, the sender rule first (s2 owns every other debit
    //  account in this two-shard ring: the served path is in
    //  test_chains_router and test_chains_across_crash).
    rl_transfer_t third[4] = {lk_t (0, 2, 3, 5), lk_t (0, 1, 3, 5), lk_t (0, 2, 3, 5),
                              lk_t (0, 2, 3, 5)};
    const uint32_t third_want[4] = {RL_UNAUTHORIZED, RL_WRONG_SHARD, RL_UNAUTHORIZED,
                                    RL_UNAUTHORIZED};
    for (int k = 0; k < 4; k++) {
        rl_prepare_rec_t rec = s_prep (&third[k], RL_TRANSFER_TP_CREDIT_THIRD);
        rec.transfer.flags |= k == 2 ? RL_TRANSFER_PENDING : 0;
        rec.transfer.timeout = k == 3 ? 5 : 0;
        s_prepare (&rec, 1, "s2", out);
        assert_int_equal (out[0].state, RL_TP_REFUSED);
        assert_int_equal (out[0].result, third_want[k]);
    }
    assert_int_equal (lk_account (3).credits_reserved, 0);
    assert_int_equal (s_prepared (), 1);
    //  A DECIDE of the good one from another sender changes nothing.
    rl_tp_rec_t d = recs[0].tp;
    d.state = RL_TP_COMMIT;
    participant_decide (ledger_participant (lk_ledger), &d, 1, "s1", lk_now (), out);
    lk_commit ();
    assert_int_equal (out[0].result, RL_UNAUTHORIZED);
    assert_int_equal (lk_account (3).debits_reserved, 5);
    //  A client's create carrying a leg flag: reserved_flag, not burned.
    rl_transfer_t client = lk_t (DEBIT_LEG, 3, 5, 1);
    assert_int_equal (lk_send (&client), RL_RESERVED_FLAG);
    client.flags = 0;
    assert_int_equal (lk_send (&client), RL_OK);
    //  The good one aborted: nothing of the hostile ones is left.
    assert_int_equal (s_decide (&recs[0], RL_TP_ABORT), RL_TP_ACKED);
    lk_expect (3, 0, 1, 0, 50);
    s_conserved (0);
    lk_teardown ();
}

int
main (void)
{
    lk_ring_setup ();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_commit),
        cmocka_unit_test (test_abort),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_pending_legs),
        cmocka_unit_test (test_pending_legs_import),
        cmocka_unit_test (test_pending_third_window),
        cmocka_unit_test (test_hostile),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
