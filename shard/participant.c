/*  participant.c: the credit shard C of a cross-shard transfer (and the
    debit shard of a chain member whose chain runs elsewhere: DEBIT LEGS).

    STATES of a record here (attempts.h), keyed by (transfer id,
    coordinator):

        (none) --PREPARE, checks pass--> PREPARED   credit reserved, record written
        (none) --PREPARE, refused------> (none)     business or infrastructure result
        PREPARED --DECIDE COMMIT--------> (none)    credit leg stored (the leg index
                                                    remembers it), record deleted
        PREPARED --DECIDE ABORT---------> ABORTED   released; a marker (tombstone)
        (none) --DECIDE ABORT, unknown--> ABORTED   tombstone: a late PREPARE is refused
        PREPARED --newer attempt--------> ABORTED   by the coordinator's invariant 2
        PREPARED --resolve (operator)---> HEURISTIC kept for ever: a contrary
                                                    decision later is an alarm
        HEURISTIC --PREPARE of it or older--> HEURISTIC  refused (aborted)
        HEURISTIC --newer attempt-------> HEURISTIC kept; the newer one gets its own record
        ABORTED --PREPARE of another attempt--> (none), then as any PREPARE
        ABORTED --evicted (FIFO full, or older than RL_TP_TOMBSTONE_MS)--> (none)
        PREPARED older than query_after: OUTCOME_QUERY to the coordinator, forever.

    INVARIANTS
    1. C never acknowledges a COMMIT it holds no record of, unless it
       applied that attempt (the leg index says so); a contrary or unknown
       decision raises an alarm (log + counter) and is answered NOT_ACKED.
       An ABORT for an unknown attempt leaves a tombstone, so that a late
       PREPARE of it is refused. A decision that cannot be applied now (no
       room for the tombstone, a storage error reading the leg index) is
       answered RETRY: no alarm, and the coordinator resends it.
    2. A PREPARED record holds exactly its amount in credits_reserved of its
       credit account (paired reserve/release in accounts.c; audited), and
       prepared_count counts the PREPARED records.
    3. A duplicate PREPARE of an applied attempt is refused (in_doubt), never
       prepared again: the coordinator may still resend its COMMIT.
    4. An unreachable coordinator never means abort: C keeps asking.
    5. Every reply is justified by the write of the record it reports on:
       the functions return the newest such group commit, and a query is
       stamped with its record's.
    6. A heuristic record is never removed nor prepared again: a duplicate
       PREPARE of it (or of an older attempt) is refused, and a newer
       attempt of the same (id, coordinator) gets a record of its own, the
       current one (s_find_current skips heuristic records).
    7. Sender rules (docs/security.md): a PREPARE is prepared only from the
       coordinator it names (in the ring, owning the debit account at this
       epoch), a DECIDE applied only from the coordinator it names (the
       record's), an outcome answer only from the record's coordinator;
       anything else is refused unauthorized (ignored, for an answer)
       before it touches a record.
    8. A tombstone shadows only its exact attempt: it refuses a duplicate
       PREPARE of that attempt, and gives way to a PREPARE of any other
       (a late one of an older attempt is prepared, then released by the
       outcome query: safe, only slower). A DECIDE abort never touches a
       PREPARED record of another attempt. So an abort with a huge attempt
       counter blocks no attempt of the id but its own.

    PENDING KINDS (docs/payments.md, "Pending transfers across shards"). A PREPARE of a
    pending transfer reserves its credit like any other; its commit moves
    it to credits_pending (pending.c keeps the side CREDIT, keyed by the
    pending id and the debit account) and stores the credit leg. A PREPARE
    of a post or void (the debit shard resolved it) reserves nothing: it
    claims the credit side (pending_credit_check, then claim; one prepared
    record claims it at a time), and its commit posts (part of) it and
    releases the rest, or its abort releases the claim. The record keeps
    the transfer's pending fields (attempts.c, the tail). Any other field
    combination is refused reserved_field, and nothing changes.

    DEBIT LEGS (docs/two-phase.md, "Debit legs"). A linked chain runs at
    the debit account's shard of its first post or void, else of its first
    member (codec_transfer_places_chain); a member debiting an
    account of this shard comes here as a PREPARE of the debit leg
    (RL_TRANSFER_TP_DEBIT_LEG: its credit is on another shard) or of both
    legs (RL_TRANSFER_TP_BOTH_LEGS: its credit is here too). Its id is this
    shard's (its debit account's), so before anything is reserved the
    ledger answers for it (participant_ids_t): stored (exists, a taken id,
    the failure that burned it: refused with that code and the stored
    timestamp), or live in this shard's coordinator (in_progress); a debit
    leg of the id held for another coordinator is in_progress too. Then the
    checks of a create (debit account, ledger, limits; both legs: those of
    a transfer of one shard) and the debit reserved (debits_reserved; both
    legs: the credit too), and the record written as any. While it is
    PREPARED, a create of the id here answers in_progress
    (participant_debit_live). Its commit posts what it reserved and stores
    the transfer's record under its id (debit leg, or both legs) with this
    shard's next timestamp, so that a create of the id answers exists
    from then on; that record is its "applied" proof (instead of the leg
    index) for a resent COMMIT and at load; a pending one's amounts become
    pending instead (side DEBIT, or BOTH for both legs: this shard is its
    debit shard from then on). Its abort releases, stores nothing and
    burns nothing. The sender rule: the coordinator it names is the
    sender, in the ring, and not this shard (for a debit leg alone, it
    holds the credit side, or a third shard does); the debit account (and,
    both legs, the credit account) is this shard's, a debit leg's credit
    account is not (else wrong_shard).

    CREDIT ON A THIRD SHARD (docs/two-phase.md). A chain's member debiting
    a shard X and crediting this one, from a chain of a third shard D,
    comes here as a credit leg of kind RL_TRANSFER_TP_CREDIT_THIRD (both
    leg bits) once X prepared its debit leg. It is a credit leg in every
    way (reserved, applied under the leg index, asked about) but its
    sender rule: the coordinator is another shard of the ring than this
    one and than the debit account's owner, and the debit account is not
    this shard's. One credit leg a transfer: a credit of an (id, debit
    account) that another coordinator holds prepared here is refused
    in_progress (s_credit_elsewhere). Its member is answered at X's
    acknowledgement, so a post or void of a pending one from X may come
    before its COMMIT: in_progress too (s_pending_leg_of).

    POST LEGS (docs/two-phase.md, "Post legs"). A chain of a shard D may
    post or void a pending transfer P debiting this shard: a PREPARE of a
    debit leg (P's credit side on D, which resolved the record against
    its copy of P and claims that side; or on a third shard Y, the record
    as the client gave it naming P's credit account: D then sends Y the
    credit leg, both leg bits beside post or void, which Y resolves
    against its credit side, claims and applies as any credit-side post)
    or of both legs (P wholly here: the record as the client gave it, its
    credit account and amount maybe zero) beside post or void. After the
    id's answer, the ledger checks P as a post of it here (ids.resolve:
    the same rules and codes, P's side fitting the kind, else
    not_supported), the record keeps what it resolved, and P is claimed
    (pending_claim): a post, void or expiry of it meanwhile waits.
    Nothing is reserved. The commit stores the post or void under its id
    (the debit leg, or both) and applies it to P (pending_apply); the
    abort releases the claim. At load the record claims P again
    (pending_reclaim; the ledger runs recovery's expiries after this load,
    so a claimed P never expires then); one that cannot waits for its
    abort, as a waiting post does (below).

    POSTS OF A CHAIN'S OWN PENDING TRANSFER (docs/two-phase.md). A chain
    of a shard D may make a pending transfer P crediting this shard and
    post or void it in the same chain: both PREPAREs come here from D, P's
    credit leg first. P's credit side does not exist before P's COMMIT, so
    the post or void is checked against P's prepared credit leg of the
    same coordinator and of its group (s_leg_of_group; another attempt's
    leg: in_progress) (pending_credit_check_leg: the same rules), one at a
    time (another is in_progress, a post or void of P outside the chain
    too), and prepared claiming nothing: it *waits* (the waiting list,
    with the attempt of P's leg it was checked against). The commit of
    exactly that attempt adds the credit side and the waiting record
    claims it at once, if the side matches it (s_waiting_claim); a newer
    attempt of P's leg (a coordinator's key making one up) never gives it
    its side. A COMMIT of a waiting record before its leg's is answered
    RETRY; an operator's commit of one by hand is refused
    (RL_RESOLVE_LEG_FIRST); its abort releases nothing. P's leg may be
    aborted before the post's ABORT comes (the group's decisions apply one
    by one, a crash between them): the post then waits for its ABORT, and
    a COMMIT of one that cannot claim is a contrary decision: an alarm,
    not acknowledged. At load (s_load_claim) a post or void claims its
    credit side when that is here and matches it, else waits: for its
    leg still prepared here and of its own group (s_load_legs), or for
    nothing (only its abort can come; warned when a side is here that it
    cannot claim). The leg's attempt is not stored: after a restart, a
    post stranded by a made-up newer attempt that committed claims that
    side if it matches (docs/two-phase.md).

    TIME: timers (the query backoff, a tombstone's expiry) run on the
    monotonic clock and are never stored: at load, every prepared record is
    queried at once and every tombstone's expiry is re-armed from now. A
    record stores only its creation date (wall clock, in reserved[0];
    reserved[1] flags a heuristic record), and a credit leg its timestamp.

    LIMITS: RL_TP_PREPARED_MAX prepared records (more: busy, an
    infrastructure result); per coordinator, at most prepared_share_max
    of them (--tp-prepared-share) and at most reserve_max reserved in
    them together (--tp-reserve-max): beyond, its PREPARE is refused busy
    (retryable, the id not burned), so that no coordinator fills the
    table or makes an account's balance overflow; RL_TP_MARKERS_MAX markers, kept in a FIFO and
    evicted oldest first when full or older than RL_TP_TOMBSTONE_MS. A
    marker only serves duplicates: a COMMIT resent before its ACK arrived
    (acknowledged again), a late PREPARE of an aborted attempt (refused).
    Past its eviction such a late PREPARE is prepared, then aborted by the
    outcome query: safe, only slower. Queries resend forever with capped
    backoff, at most the tick's budget; a scan for them runs at most once
    per retry_min_ms: O(table).
*/
#include "participant.h"

#include <assert.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attempts.h"
#include "codec.h"
#include "failpoint.h"
#include "log.h"
#include "owner.h"
#include "pending.h"
#include "rl_limits.h"

typedef struct {
    int32_t slot;
    uint64_t stamp;
} s_marker_t;

//  What one coordinator holds here: its PREPARED records and the sum of
//  their amounts (LIMITS: each bounded).
typedef struct {
    char coordinator[RL_SHARD_NAME_SIZE_MAX];
    uint64_t reserved; //  saturating sum of its PREPARED records' amounts
    uint32_t prepared; //  its PREPARED records (> 0: else the entry goes)
} s_share_t;

//  A prepared post or void that waits for its credit side (POSTS OF A
//  CHAIN'S OWN PENDING TRANSFER): its slot and attempt, the attempt of the
//  credit leg it was checked against, and whether it holds its claim now.
typedef struct {
    int32_t slot;
    rl_id_t id;
    rl_attempt_t attempt;
    rl_attempt_t leg;
    bool has_leg; //  false: waits for no leg (only its abort can come)
    bool claimed;
} s_waiting_t;

struct participant_t {
    store_t *store;
    accounts_t *accounts;
    journal_t *journal;
    outq_t *outq;
    const ring_t *ring;    //  the ring served now
    int self_index;        //  this shard in it, or -1
    const arcs_t *arcs;    //  arcs whose data is here (NULL: all)
    attempts_t records;    //  ATTEMPT_PREPARED, ATTEMPT_ABORTED, ATTEMPT_HEURISTIC
    size_t prepared_count; //  records in ATTEMPT_PREPARED
    s_marker_t *markers;   //  FIFO of aborted markers
    size_t markers_head;   //  oldest (monotonic; index modulo the cap)
    size_t markers_tail;   //  next free
    uint64_t marker_stamp;
    size_t markers_max;    //  <= RL_TP_MARKERS_MAX (tests use few)
    size_t records_max;    //  <= the records table (tests use few)
    uint64_t next_scan_ns; //  next scan for outcome queries
    uint64_t alarms;
    uint64_t query_after_ms;
    uint64_t retry_min_ms;
    uint64_t retry_max_ms;
    //  The ring index of the coordinator named last (sender rule of PREPARE).
    char last_coordinator[RL_SHARD_NAME_SIZE_MAX];
    int last_coordinator_index;
    s_share_t *shares; //  one per coordinator with PREPARED records here
    size_t shares_count;
    size_t shares_cap;
    size_t share_last;         //  the entry found last
    uint64_t reserve_max;      //  amount one coordinator may hold reserved here
    size_t prepared_share_max; //  PREPARED records one coordinator may hold here
    int8_t *legs_applied;      //  journal_legs_probe's answers, RL_BATCH_RECORDS_MAX
    pending_t *pending;        //  user-level pending transfers (NULL: pending kinds refused)
    participant_ids_t ids;     //  this shard's ids, for debit legs (check NULL: refused)
    //  Prepared posts and voids that waited for their credit side (POSTS OF
    //  A CHAIN'S OWN PENDING TRANSFER), by slot and attempt: an entry whose
    //  slot holds another record since is dropped when met (s_resolve_waiting).
    s_waiting_t *waiting;
    size_t waiting_count;
    size_t waiting_cap;
};

//  A post or void of a pending transfer: it reserves nothing here.
static bool
s_is_resolve (const rl_transfer_t *t)
{
    return (t->flags & PENDING_RESOLVE_FLAGS) != 0;
}

//  The legs a record holds here (DEBIT LEGS above): the credit leg (0, or
//  RL_TRANSFER_TP_CREDIT_THIRD: a chain member's whose debit leg is on a
//  third shard), the debit leg (RL_TRANSFER_TP_DEBIT_LEG) or both
//  (RL_TRANSFER_TP_BOTH_LEGS).
static uint16_t
s_legs (const rl_transfer_t *t)
{
    return t->flags & RL_TRANSFER_TP_LEGS;
}

static bool
s_holds_debit (const rl_transfer_t *t)
{
    return s_legs (t) == RL_TRANSFER_TP_DEBIT_LEG || s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS;
}

//  A credit leg whose debit leg is on a third shard: neither this shard
//  nor the coordinator owns the debit account.
static bool
s_credit_third (const rl_transfer_t *t)
{
    return s_legs (t) == RL_TRANSFER_TP_CREDIT_THIRD;
}

static bool
s_holds_credit (const rl_transfer_t *t)
{
    return s_legs (t) != RL_TRANSFER_TP_DEBIT_LEG;
}

//  What a record holds in credits_reserved: its amount, or nothing for a
//  post or void (the amount is pending already) or a debit leg alone.
static uint64_t
s_reserved (const rl_transfer_t *t)
{
    return s_is_resolve (t) || !s_holds_credit (t) ? 0 : t->amount;
}

//  A post or void leg (POST LEGS above): it resolves a pending transfer
//  debiting this shard, claimed by its prepared record; it reserves nothing.
static bool
s_is_post_leg (const rl_transfer_t *t)
{
    return s_is_resolve (t) && s_holds_debit (t);
}

//  What a record holds in debits_reserved: a debit leg's amount, nothing
//  for a post or void leg (the amount is pending already).
static uint64_t
s_debit_reserved (const rl_transfer_t *t)
{
    return s_holds_debit (t) && !s_is_resolve (t) ? t->amount : 0;
}

//  What a record counts in its coordinator's share (LIMITS): its amount,
//  whichever leg it reserves, or nothing for a post or void.
static uint64_t
s_share_amount (const rl_transfer_t *t)
{
    return s_is_resolve (t) ? 0 : t->amount;
}

//  Releases what a record reserved (a debit leg's debit, a credit leg's
//  credit); post: the transfer committed, the amounts are posted.
static void
s_release (participant_t *self, const rl_transfer_t *t, bool post)
{
    if (s_holds_debit (t) && !s_is_resolve (t)) {
        accounts_debit_release (self->accounts, t->debit_account_id, s_debit_reserved (t), post);
    }
    if (s_holds_credit (t)) {
        accounts_credit_release (self->accounts, t->credit_account_id, s_reserved (t), post);
    }
}

//  The credit leg of pending transfer pending_id (of that debit account)
//  prepared here, not committed yet, by `coordinator` (NULL: any), or
//  NULL. A linked chain may make the pending transfer and post or void it
//  (POSTS OF A CHAIN'S OWN PENDING TRANSFER above); a chain's member
//  debiting a third shard is answered when its debit shard acknowledged,
//  so a post or void of it from there may arrive before this credit leg's
//  COMMIT does.
static const attempt_t *
s_pending_leg_of (participant_t *self, rl_id_t pending_id, rl_id_t debit_account_id,
                  const char *coordinator)
{
    for (int32_t i = attempts_head (&self->records, pending_id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state == ATTEMPT_PREPARED && (e->transfer.flags & RL_TRANSFER_PENDING)
            && !s_holds_debit (&e->transfer)
            && rl_id_eq (e->transfer.debit_account_id, debit_account_id)
            && (!coordinator || strcmp (e->tp.coordinator, coordinator) == 0)) {
            return e;
        }
    }
    return NULL;
}

//  Is the prepared credit leg `leg` of the same group as the post or void
//  attempt `post` of its coordinator: the same incarnation (counter and
//  nonce), begun before it (a group begins its members in record order)?
//  A leg of another attempt of the chain (an older incarnation's, still
//  prepared here because its ABORT has not come, or its newer attempt's)
//  is not the one the post's group commits.
static bool
s_leg_of_group (const attempt_t *leg, rl_attempt_t post)
{
    return leg->tp.attempt.counter == post.counter && leg->tp.attempt.nonce == post.nonce
           && leg->tp.attempt.seq < post.seq;
}

//  Room for one more entry in the list of waiting records. -1: out of memory.
static int
s_waiting_room (participant_t *self)
{
    if (self->waiting_count < self->waiting_cap) {
        return 0;
    }
    size_t cap = self->waiting_cap ? 2 * self->waiting_cap : 16;
    s_waiting_t *grown = realloc (self->waiting, cap * sizeof (*grown));
    if (!grown) {
        return -1;
    }
    self->waiting = grown;
    self->waiting_cap = cap;
    return 0;
}

//  Remembers the prepared record at slot i as one that waits for its
//  credit side, checked against attempt *leg of its pending transfer's
//  credit leg (NULL: none; s_waiting_room made room).
static void
s_waiting_add (participant_t *self, int32_t i, const rl_attempt_t *leg)
{
    assert (self->waiting_count < self->waiting_cap);
    const attempt_t *e = attempts_at (&self->records, i);
    assert (e->state == ATTEMPT_PREPARED && s_is_resolve (&e->transfer));
    self->waiting[self->waiting_count++] = (s_waiting_t){.slot = i,
                                                         .id = e->tp.id,
                                                         .attempt = e->tp.attempt,
                                                         .leg = leg ? *leg : (rl_attempt_t){0},
                                                         .has_leg = leg != NULL};
}

//  Entry k of the waiting list, or NULL when its record is decided since
//  (the entry is dropped: k then holds the next one).
static s_waiting_t *
s_waiting_at (participant_t *self, size_t k)
{
    assert (k < self->waiting_count);
    s_waiting_t *w = &self->waiting[k];
    const attempt_t *e = attempts_at (&self->records, w->slot);
    if (e->state != ATTEMPT_PREPARED || !rl_id_eq (e->tp.id, w->id)
        || !attempt_eq (e->tp.attempt, w->attempt)) {
        self->waiting[k] = self->waiting[--self->waiting_count];
        return NULL;
    }
    return w;
}

//  A prepared post or void of the pending transfer (pending_id, debit
//  account) in the waiting list (it may hold its claim since), or NULL.
//  Looked for at a PREPARE of such a post or void; the list is short (such
//  chains in flight), and a walk drops the entries whose record is decided.
static const attempt_t *
s_resolve_waiting (participant_t *self, rl_id_t pending_id, rl_id_t debit_account_id)
{
    for (size_t k = 0; k < self->waiting_count;) {
        const s_waiting_t *w = s_waiting_at (self, k);
        if (!w) {
            continue;
        }
        const attempt_t *e = attempts_at (&self->records, w->slot);
        if (rl_id_eq (e->transfer.pending_id, pending_id)
            && rl_id_eq (e->transfer.debit_account_id, debit_account_id)) {
            return e;
        }
        k++;
    }
    return NULL;
}

//  The waiting list's entry of the prepared record e, or NULL (a post or
//  void prepared against its credit side holds its claim from the start).
static s_waiting_t *
s_waiting_of (participant_t *self, const attempt_t *e)
{
    int32_t slot = (int32_t) (e - attempts_at (&self->records, 0));
    for (size_t k = 0; k < self->waiting_count;) {
        s_waiting_t *w = s_waiting_at (self, k);
        if (!w) {
            continue;
        }
        if (w->slot == slot) {
            return w;
        }
        k++;
    }
    return NULL;
}

//  The credit leg the waiting post or void e waits for, still prepared
//  here, or NULL.
static const attempt_t *
s_waited_leg (participant_t *self, const attempt_t *e)
{
    const s_waiting_t *w = s_waiting_of (self, e);
    const attempt_t *leg = s_pending_leg_of (self, e->transfer.pending_id,
                                             e->transfer.debit_account_id, e->tp.coordinator);
    return w && w->has_leg && leg && attempt_eq (leg->tp.attempt, w->leg) ? leg : NULL;
}

//  Does the prepared post or void e still wait for its credit side (no
//  claim held)? A record of any other kind does not.
static bool
s_resolve_waits (participant_t *self, const attempt_t *e)
{
    if (!s_is_resolve (&e->transfer)) {
        return false;
    }
    const s_waiting_t *w = s_waiting_of (self, e);
    return w && !w->claimed;
}

//  The credit leg e (a pending transfer's, just committed: its credit side
//  is here now) gives that side to the post or void waiting for exactly
//  this attempt, if the side matches it (pending_credit_check: a waiting
//  record checked against another attempt of the leg, which a newer
//  PREPARE of it superseded, never claims; only its abort can come).
static void
s_waiting_claim (participant_t *self, const attempt_t *leg)
{
    for (size_t k = 0; k < self->waiting_count;) {
        s_waiting_t *w = s_waiting_at (self, k);
        if (!w) {
            continue;
        }
        k++;
        const attempt_t *e = attempts_at (&self->records, w->slot);
        if (w->claimed || !w->has_leg || !attempt_eq (w->leg, leg->tp.attempt)
            || !rl_id_eq (e->transfer.pending_id, leg->transfer.id)
            || !rl_id_eq (e->transfer.debit_account_id, leg->transfer.debit_account_id)
            || strcmp (e->tp.coordinator, leg->tp.coordinator) != 0
            || pending_credit_check (self->pending, &e->transfer) != RL_OK) {
            continue;
        }
        int rc = pending_credit_claim (self->pending, &e->transfer, true);
        assert (rc == 0); //  pending_credit_check found it live and unclaimed
        (void) rc;
        w->claimed = true;
    }
}

void
participant_set_ids (participant_t *self, const participant_ids_t *ids)
{
    assert (self);
    self->ids = ids ? *ids : (participant_ids_t){0};
}

void
participant_set_pending (participant_t *self, pending_t *pending)
{
    assert (self);
    self->pending = pending;
}

//  The records table: every prepared record, every marker, and one more.
#define S_RECORDS_MAX (RL_TP_PREPARED_MAX + RL_TP_MARKERS_MAX + 1)

participant_t *
participant_new (store_t *store, accounts_t *accounts, journal_t *journal, outq_t *outq)
{
    assert (store && accounts && journal && outq);
    participant_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->accounts = accounts;
    self->journal = journal;
    self->outq = outq;
    self->self_index = -1;
    self->query_after_ms = RL_TP_QUERY_AFTER_MS;
    self->retry_min_ms = RL_TP_RETRY_MIN_MS;
    self->retry_max_ms = RL_TP_RETRY_MAX_MS;
    self->markers_max = RL_TP_MARKERS_MAX;
    self->records_max = S_RECORDS_MAX;
    self->reserve_max = RL_TP_RESERVE_PER_COORDINATOR_MAX;
    self->prepared_share_max = RL_TP_PREPARED_MAX * RL_TP_PREPARED_SHARE_PERCENT / 100;
    if (attempts_init (&self->records, S_RECORDS_MAX) != 0
        || !(self->markers = calloc (RL_TP_MARKERS_MAX, sizeof (s_marker_t)))
        || !(self->legs_applied = malloc (RL_BATCH_RECORDS_MAX))) {
        participant_destroy (&self);
        return NULL;
    }
    attempts_keys_init (&self->records, store, STORE_CF_PREPARED);
    return self;
}

void
participant_destroy (participant_t **self_p)
{
    assert (self_p);
    participant_t *self = *self_p;
    if (self) {
        attempts_free (&self->records);
        free (self->markers);
        free (self->shares);
        free (self->legs_applied);
        free (self->waiting);
        free (self);
        *self_p = NULL;
    }
}

void
participant_set_ring (participant_t *self, const ring_t *ring, int self_index)
{
    assert (self && ring);
    assert (self_index >= -1 && self_index < (int) ring_shard_count (ring));
    self->ring = ring;
    self->self_index = self_index;
    self->last_coordinator[0] = '\0'; //  indexes move with the ring
}

void
participant_set_arcs (participant_t *self, const arcs_t *arcs)
{
    assert (self);
    self->arcs = arcs;
}

void
participant_set_timeouts (participant_t *self, uint64_t query_after_ms, uint64_t retry_min_ms,
                          uint64_t retry_max_ms)
{
    assert (self);
    assert (query_after_ms > 0 && retry_min_ms > 0 && retry_min_ms <= retry_max_ms);
    self->query_after_ms = query_after_ms;
    self->retry_min_ms = retry_min_ms;
    self->retry_max_ms = retry_max_ms;
}

void
participant_set_markers_max (participant_t *self, size_t markers_max)
{
    assert (self);
    assert (markers_max >= 1 && markers_max <= RL_TP_MARKERS_MAX);
    self->markers_max = markers_max;
}

void
participant_set_bounds (participant_t *self, uint64_t reserve_max, size_t prepared_share_max)
{
    assert (self && reserve_max > 0 && prepared_share_max > 0);
    self->reserve_max = reserve_max;
    self->prepared_share_max = prepared_share_max;
}

void
participant_set_records_max (participant_t *self, size_t records_max)
{
    assert (self);
    self->records_max = records_max < S_RECORDS_MAX ? records_max : S_RECORDS_MAX;
}

//  A prepared pending transfer adds its credit side at its commit: its
//  room in the pending table is kept while it is PREPARED (pending_promise),
//  so that a commit always finds it.
static void
s_promise (participant_t *self, const rl_transfer_t *t, bool take)
{
    if ((t->flags & RL_TRANSFER_PENDING) && self->pending) {
        pending_promise (self->pending, take);
    }
}

//  A new record (attempts_add) within records_max, or -1: no room.
static int32_t
s_record_add (participant_t *self, rl_id_t id)
{
    return self->records.count < self->records_max ? attempts_add (&self->records, id) : -1;
}

static bool
s_owns (const participant_t *self, rl_id_t account_id)
{
    assert (self->self_index < 0 || self->ring); //  participant_set_ring set both
    return self->ring && self->self_index >= 0
           && owner_of (self->ring, account_id) == self->self_index;
}

#define S_HEURISTIC_FLAG 1 //  prepared record reserved[1]: a heuristic record

static void s_marker_push (participant_t *self, attempt_t *e);

//  Persistent keys ----------------------------------------------------------------
//
//  Prepared records are keyed like the coordinator log (xlog.c): by a
//  sequence that only grows (8 bytes, big-endian), so that a new record
//  lands at the end of the memtable. The record remembers its key; the
//  index by transfer id is in memory and rebuilt at start by a scan. A
//  record no longer needed (committed, an expired tombstone) is not
//  deleted: its key is dropped by range once every lower key is settled
//  too (attempts.c, "Keys").

#define S_KEY_SIZE ATTEMPTS_KEY_SIZE

static int32_t
s_slot (participant_t *self, const attempt_t *e)
{
    return (int32_t) (e - attempts_at (&self->records, 0));
}

//  Participant records keep their state in tp.state: prepared, commit, abort.
//  The entry remembers the group commit that wrote it (invariant 5).
//  The value: ATTEMPT_VALUE_RECORD, or ATTEMPT_VALUE_HEURISTIC for a
//  heuristic record (attempts.c draws the layout: 126 bytes + the
//  coordinator's name, against the 256 of the PREPARE record stored before;
//  such a record still loads, its reserved[0] the creation date and
//  reserved[1] the heuristic flag).
static void
s_record_put (participant_t *self, attempt_t *e)
{
    assert (e->state == ATTEMPT_PREPARED || e->state == ATTEMPT_ABORTED
            || e->state == ATTEMPT_HEURISTIC);
    assert (e->peer[0] == '\0'); //  a record names its coordinator only
    e->write_seq = outq_batch_seq (self->outq);
    attempts_key_put (&self->records, s_slot (self, e)); //  the format follows the state
}

//  Decodes a stored record of either format into e's persistent fields;
//  *heuristic_p: a heuristic record. 0, or -1 when the bytes are not a record.
static int
s_record_decode (const uint8_t *value, size_t size, attempt_t *e, bool *heuristic_p)
{
    if (size == RL_PREPARE_SIZE) {
        rl_prepare_rec_t rec;
        codec_decode_prepare (value, &rec);
        e->transfer = rec.transfer;
        e->tp = rec.tp;
        e->created_ns = rec.reserved[0];
        *heuristic_p = rec.reserved[1] == S_HEURISTIC_FLAG;
        return 0;
    }
    int format = attempt_value_decode (value, size, e);
    if ((format != ATTEMPT_VALUE_RECORD && format != ATTEMPT_VALUE_HEURISTIC)
        || e->peer[0] != '\0') {
        return -1;
    }
    *heuristic_p = format == ATTEMPT_VALUE_HEURISTIC;
    return 0;
}

//  Coordinators' shares ------------------------------------------------------------

//  The share of `coordinator`, or NULL when it holds no PREPARED record.
static s_share_t *
s_share_find (participant_t *self, const char *coordinator)
{
    if (self->share_last < self->shares_count
        && strcmp (self->shares[self->share_last].coordinator, coordinator) == 0) {
        return &self->shares[self->share_last];
    }
    for (size_t i = 0; i < self->shares_count; i++) {
        if (strcmp (self->shares[i].coordinator, coordinator) == 0) {
            self->share_last = i;
            return &self->shares[i];
        }
    }
    return NULL;
}

//  Room for one more share (s_share_add never fails after it); -1 when
//  memory ran out.
static int
s_shares_room (participant_t *self)
{
    if (self->shares_count < self->shares_cap) {
        return 0;
    }
    size_t cap = self->shares_cap ? self->shares_cap * 2 : 16;
    s_share_t *shares = realloc (self->shares, cap * sizeof (s_share_t));
    if (!shares) {
        return -1;
    }
    self->shares = shares;
    self->shares_cap = cap;
    return 0;
}

//  A PREPARED record counts in its coordinator's share (s_shares_room first).
static void
s_share_add (participant_t *self, const char *coordinator, uint64_t amount)
{
    s_share_t *share = s_share_find (self, coordinator);
    if (!share) {
        assert (self->shares_count < self->shares_cap); //  s_shares_room made room
        share = &self->shares[self->shares_count++];
        memset (share, 0, sizeof (*share));
        snprintf (share->coordinator, sizeof share->coordinator, "%s", coordinator);
    }
    share->prepared++;
    share->reserved = amount > UINT64_MAX - share->reserved ? UINT64_MAX : share->reserved + amount;
    assert (share->prepared > 0);
}

//  A PREPARED record leaves (commit, abort): its share shrinks, and goes at 0.
static void
s_share_remove (participant_t *self, const char *coordinator, uint64_t amount)
{
    s_share_t *share = s_share_find (self, coordinator);
    assert (share && share->prepared > 0); //  every PREPARED record was added
    share->prepared--;
    share->reserved = share->reserved > amount ? share->reserved - amount : 0;
    if (share->prepared == 0) {
        *share = self->shares[--self->shares_count];
        self->share_last = 0;
    }
}

//  LIMITS: may `coordinator` reserve `amount` more here, in one more record?
static bool
s_share_allows (participant_t *self, const char *coordinator, uint64_t amount)
{
    const s_share_t *share = s_share_find (self, coordinator);
    uint64_t reserved = share ? share->reserved : 0;
    size_t prepared = share ? share->prepared : 0;
    return prepared < self->prepared_share_max && reserved < self->reserve_max
           && amount <= self->reserve_max - reserved;
}

//  At load, the prepared post or void e claims its credit side when that
//  is here and matches it (as it did before the restart: one prepared
//  against it, or one its chain's pending transfer made since); else it
//  waits: for its pending transfer's credit leg still prepared here, or
//  (that leg aborted first, its own ABORT to come) for nothing. One that
//  cannot claim a side which is here (claimed by another record, or not
//  matching: a record a coordinator's key made up) waits for nothing, with
//  a warning: only its abort is expected. -1: out of memory.
static int
s_load_claim (participant_t *self, attempt_t *e)
{
    const rl_transfer_t *t = &e->transfer;
    if (pending_credit_here (self->pending, t->pending_id, t->debit_account_id)) {
        uint32_t result = pending_credit_check (self->pending, t);
        if (result == RL_OK) {
            int rc = pending_credit_claim (self->pending, t, true);
            assert (rc == 0);
            (void) rc;
            return 0;
        }
        rl_warn ("two-phase: prepared post or void %016" PRIx64 "%016" PRIx64 " from %s cannot "
                 "claim the credit side of pending transfer %016" PRIx64 "%016" PRIx64
                 " (%s): kept, only its abort is expected",
                 t->id.hi, t->id.lo, e->tp.coordinator, t->pending_id.hi, t->pending_id.lo,
                 rl_result_name (result));
    }
    if (s_waiting_room (self) != 0) {
        return -1;
    }
    //  The leg it waits for is found once every record is in (s_load_legs).
    s_waiting_add (self, (int32_t) (e - attempts_at (&self->records, 0)), NULL);
    return 0;
}

//  At load, a prepared post or void leg (POST LEGS above) claims its
//  pending transfer again, which must be live here with the side of its
//  kind, unclaimed, and fit it (pending_reclaim): nothing but this record
//  resolved it since its prepare. One that cannot (only a coordinator's key
//  making records up leaves one) is kept, warned about, and waits for
//  nothing: only its abort is expected, a COMMIT is an alarm (as a waiting
//  post's). -1: out of memory.
static int
s_load_reclaim (participant_t *self, attempt_t *e)
{
    const rl_transfer_t *t = &e->transfer;
    uint8_t side = s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS ? PENDING_SIDE_BOTH : PENDING_SIDE_DEBIT;
    if (pending_reclaim (self->pending, t, side) == 0) {
        return 0;
    }
    rl_warn ("two-phase: prepared post or void leg %016" PRIx64 "%016" PRIx64 " from %s cannot "
             "claim pending transfer %016" PRIx64 "%016" PRIx64
             ": kept, only its abort is expected",
             t->id.hi, t->id.lo, e->tp.coordinator, t->pending_id.hi, t->pending_id.lo);
    if (s_waiting_room (self) != 0) {
        return -1;
    }
    s_waiting_add (self, (int32_t) (e - attempts_at (&self->records, 0)), NULL);
    return 0;
}

//  At load, once every record is in: each waiting post or void whose
//  credit side is not here waits for its pending transfer's credit leg
//  prepared here by its coordinator, if that leg is of its own group: the
//  same incarnation of the coordinator, begun before it (a group begins
//  its members in record order). The attempt it was checked against is
//  not stored, so a leg of a later attempt of that incarnation (only a
//  coordinator's key making one up) is told apart by nothing else; its
//  side is checked against the post all the same (s_waiting_claim).
static void
s_load_legs (participant_t *self)
{
    for (size_t k = 0; k < self->waiting_count; k++) {
        s_waiting_t *w = &self->waiting[k];
        const attempt_t *e = attempts_at (&self->records, w->slot);
        const rl_transfer_t *t = &e->transfer;
        const attempt_t *leg = s_pending_leg_of (self, t->pending_id, t->debit_account_id,
                                                 e->tp.coordinator);
        if (leg && !s_is_post_leg (t)
            && !pending_credit_here (self->pending, t->pending_id, t->debit_account_id)
            && s_leg_of_group (leg, e->tp.attempt)) {
            w->leg = leg->tp.attempt;
            w->has_leg = true;
        }
    }
}

static int
s_load_records (participant_t *self, now_t now, char *err, size_t err_size)
{
    assert (self->records.count == 0 && self->prepared_count == 0);
    store_iter_t *it = store_iter_new (self->store, STORE_CF_PREPARED);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t size = 0, key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &size);
        attempt_t loaded = {0};
        bool heuristic = false;
        if (key_size != S_KEY_SIZE || s_record_decode (value, size, &loaded, &heuristic) != 0) {
            snprintf (err, err_size, "corrupt prepared record");
            rc = -1;
            break;
        }
        if (rl_id_is_zero (loaded.tp.id)) {
            snprintf (err, err_size, "corrupt prepared record (no id)");
            rc = -1;
            break;
        }
        if (loaded.tp.state == RL_TP_PREPARED && !heuristic && s_holds_debit (&loaded.transfer)
            && !self->ids.applied) {
            snprintf (err, err_size, "a prepared debit leg, and no ids to check it against");
            rc = -1;
            break;
        }
        if (loaded.tp.state == RL_TP_PREPARED && !heuristic) {
            //  A record committed before the crash, not dropped yet (its key
            //  lies above the bound: attempts.c, "Keys"): the credit leg is
            //  the proof, or for a debit leg its transfer record (stored ok
            //  under its id). Its reservation is not restored, and it goes.
            uint64_t ts = 0;
            int applied = s_holds_debit (&loaded.transfer)
                              ? self->ids.applied (self->ids.arg, loaded.transfer.id,
                                                   loaded.transfer.debit_account_id, &ts)
                              : journal_leg_applied (self->journal, loaded.transfer.id,
                                                     loaded.transfer.debit_account_id);
            if (applied < 0) {
                snprintf (err, err_size, "cannot read the leg index: %s",
                          store_error (self->store));
                rc = -1;
                break;
            }
            if (applied == 1) {
                continue;
            }
        }
        int32_t i = attempts_add (&self->records, loaded.tp.id);
        if (i < 0) {
            snprintf (err, err_size, "prepared records larger than their table");
            rc = -1;
            break;
        }
        attempt_t *e = attempts_at (&self->records, i);
        e->transfer = loaded.transfer;
        e->tp = loaded.tp;
        e->created_ns = loaded.created_ns;
        e->write_seq = 0;                                                //  durable already
        attempts_key_loaded (&self->records, i, codec_get_u64_be (key)); //  in key order
        e->backoff_ms = self->retry_min_ms;
        e->next_ns = now.mono_ns; //  ask at once: recovery runs before anything else
        assert (e->backoff_ms > 0);
        if (e->tp.state == RL_TP_PREPARED && !heuristic) {
            if ((s_holds_credit (&e->transfer)
                 && accounts_credit_restore (self->accounts, e->transfer.credit_account_id,
                                             s_reserved (&e->transfer))
                        != 0)
                || (s_holds_debit (&e->transfer)
                    && accounts_debit_restore (self->accounts, e->transfer.debit_account_id,
                                               s_debit_reserved (&e->transfer))
                           != 0)) {
                snprintf (err, err_size, "prepared record names a missing account");
                rc = -1;
                break;
            }
            if (s_is_resolve (&e->transfer) && !self->pending) {
                snprintf (err, err_size, "a prepared post or void, and no pending transfers");
                rc = -1;
                break;
            }
            if (s_shares_room (self) != 0) {
                snprintf (err, err_size, "out of memory");
                rc = -1;
                break;
            }
            s_share_add (self, e->tp.coordinator, s_share_amount (&e->transfer));
            e->state = ATTEMPT_PREPARED;
            self->prepared_count++;
            s_promise (self, &e->transfer, true);
            if (s_is_post_leg (&e->transfer) && s_load_reclaim (self, e) != 0) {
                snprintf (err, err_size, "out of memory");
                rc = -1;
                break;
            }
            if (s_is_resolve (&e->transfer) && !s_is_post_leg (&e->transfer)
                && s_load_claim (self, e) != 0) {
                snprintf (err, err_size, "out of memory");
                rc = -1;
                break;
            }
        } else if (heuristic) {
            e->state = ATTEMPT_HEURISTIC; //  kept: a contrary decision later is an alarm
        } else if (e->tp.state == RL_TP_ABORT) {
            e->state = ATTEMPT_ABORTED;
            //  Its expiry is re-armed: a monotonic time means nothing after a restart.
            e->deadline_ns = now.mono_ns + RL_TP_TOMBSTONE_MS * 1000000ull;
            s_marker_push (self, e); //  FIFO order of keys, not of age: good enough
        } else {
            //  A commit deletes its record (the leg index remembers it).
            snprintf (err, err_size, "prepared record in an unexpected state %u", e->tp.state);
            rc = -1;
            break;
        }
    }
    store_iter_destroy (&it);
    if (rc == 0) {
        s_load_legs (self);
    }
    return rc;
}

//  Participant ------------------------------------------------------------------------

//  The current record of (id, coordinator): the newest that is not a
//  heuristic record (invariant 6), or -1.
static int32_t
s_find_current (participant_t *self, rl_id_t id, const char *coordinator)
{
    for (int32_t i = attempts_head (&self->records, id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state != ATTEMPT_HEURISTIC && strcmp (e->tp.coordinator, coordinator) == 0) {
            return i;
        }
    }
    return -1;
}

//  The heuristic record of exactly this attempt, or -1.
static int32_t
s_find_heuristic (participant_t *self, rl_id_t id, const char *coordinator, rl_attempt_t attempt)
{
    for (int32_t i = attempts_head (&self->records, id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state == ATTEMPT_HEURISTIC && strcmp (e->tp.coordinator, coordinator) == 0
            && attempt_eq (e->tp.attempt, attempt)) {
            return i;
        }
    }
    return -1;
}

//  Is a heuristic record of (id, coordinator) newer than `attempt`?
static bool
s_heuristic_newer (participant_t *self, rl_id_t id, const char *coordinator, rl_attempt_t attempt)
{
    for (int32_t i = attempts_head (&self->records, id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state == ATTEMPT_HEURISTIC && strcmp (e->tp.coordinator, coordinator) == 0
            && attempt_older (attempt, e->tp.attempt)) {
            return true;
        }
    }
    return false;
}

//  Drops a marker: from the table and from the prepared column family.
static void
s_marker_drop (participant_t *self, int32_t slot)
{
    //  A prepared record is released before it goes: its reservation would leak.
    assert (attempts_at (&self->records, slot)->state != ATTEMPT_PREPARED);
    attempts_key_drop (&self->records, slot); //  deleted by range later
    attempts_remove (&self->records, slot);
}

//  Evicts the oldest markers: while the FIFO is full (room for one more),
//  or while the oldest has expired (mono_ns != 0). Stale FIFO entries (the
//  slot was reused or removed) are skipped.
static void
s_markers_evict (participant_t *self, uint64_t mono_ns, bool make_room)
{
    while (self->markers_head < self->markers_tail) {
        s_marker_t *m = &self->markers[self->markers_head % RL_TP_MARKERS_MAX];
        attempt_t *e = attempts_at (&self->records, m->slot);
        bool current = e->state == ATTEMPT_ABORTED && e->stamp == m->stamp;
        bool full = self->markers_tail - self->markers_head >= self->markers_max;
        if (current && !(make_room && full) && !(mono_ns && mono_ns >= e->deadline_ns)) {
            break;
        }
        if (current) {
            s_marker_drop (self, m->slot);
        }
        self->markers_head++;
    }
    assert (self->markers_head <= self->markers_tail);
}

//  Records that the entry became an applied or aborted marker.
static void
s_marker_push (participant_t *self, attempt_t *e)
{
    assert (e->state == ATTEMPT_ABORTED); //  only aborted records are markers
    s_markers_evict (self, 0, true);
    assert (self->markers_tail - self->markers_head < self->markers_max);
    e->stamp = ++self->marker_stamp;
    self->markers[self->markers_tail++ % RL_TP_MARKERS_MAX] = (s_marker_t){
        .slot = (int32_t) (e - attempts_at (&self->records, 0)), .stamp = e->stamp};
}

//  Releases a PREPARED record's reservation and turns it into a tombstone.
static void
s_record_abort (participant_t *self, attempt_t *e, now_t now)
{
    assert (e->state == ATTEMPT_PREPARED || e->state == ATTEMPT_ABORTED);
    if (e->state == ATTEMPT_PREPARED) {
        assert (self->prepared_count > 0);
        s_release (self, &e->transfer, false);
        s_share_remove (self, e->tp.coordinator, s_share_amount (&e->transfer));
        self->prepared_count--;
        s_promise (self, &e->transfer, false);
        if (s_is_post_leg (&e->transfer) && !s_resolve_waits (self, e)) {
            uint64_t last = journal_last_ts (self->journal);
            pending_claim (self->pending, e->transfer.pending_id, false,
                           now.wall_ns > last ? now.wall_ns : last);
        } else if (s_is_resolve (&e->transfer) && !s_resolve_waits (self, e)) {
            int rc = pending_credit_claim (self->pending, &e->transfer, false);
            assert (rc == 0); //  its prepare (or its credit side's commit) claimed it
            (void) rc;
        }
    }
    e->state = ATTEMPT_ABORTED;
    e->tp.state = RL_TP_ABORT;
    e->deadline_ns = now.mono_ns + RL_TP_TOMBSTONE_MS * 1000000ull;
    s_record_put (self, e);
    s_marker_push (self, e);
    assert (e->state == ATTEMPT_ABORTED && e->write_seq == outq_batch_seq (self->outq));
}

//  Applies a commit to a PREPARED record: the credit leg becomes a transfer
//  (a debit leg: the transfer). Returns the stored record's timestamp.
static uint64_t
s_record_commit (participant_t *self, attempt_t *e, now_t now)
{
    assert (e->state == ATTEMPT_PREPARED && self->prepared_count > 0);
    const rl_transfer_t *t = &e->transfer;
    bool pending = (t->flags & RL_TRANSFER_PENDING) != 0;
    //  Plain: posted. Pending: to credits_pending (below). Post, void: nothing
    //  reserved. A debit leg: its debit posted (and its credit, both legs).
    s_release (self, t, !pending && !s_is_resolve (t));
    s_share_remove (self, e->tp.coordinator, s_share_amount (t));
    self->prepared_count--;
    s_promise (self, t, false);
    //  A debit leg is the transfer's record under its id, in this shard's
    //  timestamp order (the journal replays it so), as any transfer debiting
    //  here: a create of the id answers exists from now on.
    rl_transfer_t leg = *t;
    leg.flags &= (uint16_t) ~RL_TRANSFER_TP_LEGS;
    leg.timestamp = journal_next_ts (self->journal, now.wall_ns);
    leg.reserved = JOURNAL_STORED (RL_OK, s_legs (t) == RL_TRANSFER_TP_DEBIT_LEG ? JOURNAL_LEG_DEBIT
                                          : s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS
                                              ? JOURNAL_LEG_BOTH
                                              : JOURNAL_LEG_CREDIT);
    if (journal_append (self->journal, &leg) != 0) {
        rl_error ("two-phase: out of memory storing a credit leg");
        abort ();
    }
    if (pending && s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS) {
        //  A chain's pending member with both accounts here: side BOTH, as
        //  one made here (its accounts were checked and reserved).
        accounts_pair_t pair;
        bool found = accounts_pair (self->accounts, t->debit_account_id, t->credit_account_id,
                                    &pair);
        assert (found);
        (void) found;
        pending_add (self->pending, &leg, &pair);
    } else if (pending
               && pending_add_side (self->pending, &leg,
                                    s_holds_debit (t) ? PENDING_SIDE_DEBIT : PENDING_SIDE_CREDIT)
                      != 0) {
        rl_error ("two-phase: no room to keep a side of pending transfer %016" PRIx64 "%016" PRIx64,
                  t->id.hi, t->id.lo);
        abort (); //  the decision is not applied yet: crash before the commit, recover
    }
    if (pending && !s_holds_debit (t) && self->waiting_count > 0) {
        s_waiting_claim (self, e); //  a post or void of it its chain prepared here
    }
    if (s_is_post_leg (t)) {
        pending_apply (self->pending, &leg); //  P, claimed since the prepare
    } else if (s_is_resolve (t)) {
        pending_credit_apply (self->pending, t); //  posts (part of) it, releases the rest
    }
    //  The credit leg itself is the durable "applied" marker (leg index):
    //  the prepared record goes (by range later; a restart before that finds
    //  the leg and drops the record).
    size_t count = self->records.count;
    attempts_key_drop (&self->records, s_slot (self, e));
    attempts_remove (&self->records, s_slot (self, e));
    assert (self->records.count + 1 == count && e->state == ATTEMPT_FREE);
    return leg.timestamp;
}

//  The index in this shard's ring of the coordinator `name`, or -1; the
//  last one is remembered (a PREPARE batch names one coordinator).
static int
s_coordinator_index (participant_t *self, const char *name)
{
    if (!self->ring) {
        return -1;
    }
    if (self->last_coordinator[0] == '\0' || strcmp (self->last_coordinator, name) != 0) {
        snprintf (self->last_coordinator, sizeof self->last_coordinator, "%s", name);
        self->last_coordinator_index = ring_shard_find (self->ring, name);
    }
    return self->last_coordinator_index;
}

//  The sender rule of a PREPARE (docs/security.md, "Sender rules"): the
//  sender is the shard the record names as coordinator (sender NULL: no
//  key to tell, --insecure), that shard is in this shard's ring, and it
//  owns the debit account at this shard's epoch. A chain's legs: see each.
static bool
s_prepare_sender_ok (participant_t *self, const rl_prepare_rec_t *rec, const char *sender)
{
    if (sender && strcmp (sender, rec->tp.coordinator) != 0) {
        return false;
    }
    int index = s_coordinator_index (self, rec->tp.coordinator);
    if (s_legs (&rec->transfer) == RL_TRANSFER_TP_DEBIT_LEG) {
        //  A debit leg alone: the coordinator is the chain's shard, another
        //  one of the ring.
        return index >= 0 && index != self->self_index;
    }
    if (s_credit_third (&rec->transfer)) {
        //  A credit leg whose debit leg is on a third shard: the coordinator
        //  is the chain's shard, another one of the ring, and not the debit
        //  account's owner (that one sends a credit leg of its own).
        return index >= 0 && index != self->self_index
               && owner_of (self->ring, rec->transfer.debit_account_id) != index;
    }
    if (s_holds_debit (&rec->transfer)) {
        //  Both legs here: the coordinator is the chain's shard, another
        //  one of the ring (both accounts are this shard's).
        return index >= 0 && index != self->self_index;
    }
    return index >= 0 && owner_of (self->ring, rec->transfer.debit_account_id) == index;
}

//  Why the fields of a PREPARE's transfer are not those of any kind a
//  coordinator sends (NULL: they are): a plain transfer, a pending one, or
//  a post or void resolved by the debit shard (docs/payments.md).
static const char *
s_prepare_fields_bad (const participant_t *self, const rl_transfer_t *t)
{
    if (t->timestamp != 0 || t->reserved != 0) {
        return "timestamp or reserved set";
    }
    if (s_credit_third (t) && s_is_resolve (t)) {
        //  The credit side of a post leg whose pending transfer credits this
        //  shard, a third one (docs/two-phase.md, "Post legs"): as the
        //  client gave it (its credit account named), resolved here.
        uint16_t kind = t->flags & (uint16_t) ~PENDING_RESOLVE_FLAGS;
        if (kind != RL_TRANSFER_TP_CREDIT_THIRD
            || (t->flags & PENDING_RESOLVE_FLAGS) == PENDING_RESOLVE_FLAGS) {
            return "a post or void credit leg with another flag";
        }
        if (!self->pending) {
            return "a pending kind, not served here";
        }
        if (t->timeout != 0 || rl_id_is_zero (t->pending_id) || rl_id_is_max (t->pending_id)
            || rl_id_eq (t->pending_id, t->id)
            || rl_id_eq (t->debit_account_id, t->credit_account_id)) {
            return "a post or void credit leg with a timeout, one account, or without another "
                   "usable pending id";
        }
        return NULL;
    }
    if (s_credit_third (t)) {
        //  A chain member's credit leg, plain or pending (docs/two-phase.md,
        //  "Credit on a third shard").
        uint16_t kind = t->flags & (uint16_t) ~RL_TRANSFER_PENDING;
        if (kind != RL_TRANSFER_TP_CREDIT_THIRD
            || (t->timeout != 0 && !(t->flags & RL_TRANSFER_PENDING))
            || !rl_id_is_zero (t->pending_id)) {
            return "a credit leg on a third shard with another flag, a timeout (not pending) or "
                   "a pending id";
        }
        if ((t->flags & RL_TRANSFER_PENDING) && !self->pending) {
            return "a pending kind, not served here";
        }
        if (rl_id_eq (t->debit_account_id, t->credit_account_id) || t->ledger == 0
            || t->code == 0) {
            return "a credit leg on a third shard a create would refuse (one account, ledger or "
                   "code zero)";
        }
        return NULL;
    }
    if (s_legs (t) != 0 && s_is_resolve (t)) {
        //  A post or void leg (docs/two-phase.md, "Post legs"): resolved
        //  by its chain's shard for a debit leg, as the client gave it for
        //  both legs (resolved here).
        uint16_t kind = t->flags & (uint16_t) ~PENDING_RESOLVE_FLAGS;
        if ((kind != RL_TRANSFER_TP_DEBIT_LEG && kind != RL_TRANSFER_TP_BOTH_LEGS)
            || (t->flags & PENDING_RESOLVE_FLAGS) == PENDING_RESOLVE_FLAGS) {
            return "a post or void leg with another flag";
        }
        if (!self->pending || !self->ids.check || !self->ids.resolve) {
            return "a post or void leg, not served here";
        }
        if (t->timeout != 0 || rl_id_is_zero (t->pending_id) || rl_id_is_max (t->pending_id)
            || rl_id_eq (t->pending_id, t->id)) {
            return "a post or void leg with a timeout or without another usable pending id";
        }
        if (kind == RL_TRANSFER_TP_DEBIT_LEG
            && (rl_id_is_zero (t->credit_account_id)
                || rl_id_eq (t->debit_account_id, t->credit_account_id))) {
            return "a post or void debit leg without its credit account";
        }
        return NULL;
    }
    if (s_legs (t) != 0) {
        //  A debit leg: a chain member (docs/two-phase.md, "Debit legs").
        uint16_t kind = t->flags & (uint16_t) ~RL_TRANSFER_PENDING;
        if (kind != RL_TRANSFER_TP_DEBIT_LEG && kind != RL_TRANSFER_TP_BOTH_LEGS) {
            return "a debit leg with another flag";
        }
        if ((t->timeout != 0 && !(t->flags & RL_TRANSFER_PENDING))
            || !rl_id_is_zero (t->pending_id)) {
            return "a debit leg with a timeout (not pending) or a pending id";
        }
        if (rl_id_eq (t->debit_account_id, t->credit_account_id) || t->ledger == 0
            || t->code == 0) {
            //  What a create refuses before it looks at an account (its
            //  chain's shard validated the member so).
            return "a debit leg a create would refuse (one account, ledger or code zero)";
        }
        return self->ids.check ? NULL : "a debit leg, not served here";
    }
    if (t->flags == 0) {
        return t->timeout != 0 || !rl_id_is_zero (t->pending_id)
                   ? "a plain transfer with a timeout or pending id"
                   : NULL;
    }
    if (!self->pending) {
        return "a pending kind, not served here";
    }
    if (t->flags == RL_TRANSFER_PENDING) {
        return rl_id_is_zero (t->pending_id) ? NULL : "a pending transfer with a pending id";
    }
    if (t->flags != RL_TRANSFER_POST_PENDING_TRANSFER
        && t->flags != RL_TRANSFER_VOID_PENDING_TRANSFER) {
        return "flags no cross-shard transfer carries";
    }
    if (t->timeout != 0 || rl_id_is_zero (t->pending_id) || rl_id_is_max (t->pending_id)
        || rl_id_eq (t->pending_id, t->id) || t->amount == 0 || t->ledger == 0 || t->code == 0) {
        return "a post or void not resolved by its debit shard";
    }
    return NULL;
}

//  A credit of the transfer (id, debit account) prepared here by another
//  coordinator than `coordinator`. One transfer has one credit leg; since a
//  credit leg on a third shard may name any debit account, a shard key
//  could otherwise prepare a second one beside the real one (two credits,
//  and the leg index's assert at the second commit).
static bool
s_credit_elsewhere (participant_t *self, const rl_transfer_t *t, const char *coordinator)
{
    for (int32_t i = attempts_head (&self->records, t->id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state == ATTEMPT_PREPARED && !s_holds_debit (&e->transfer)
            && rl_id_eq (e->transfer.debit_account_id, t->debit_account_id)
            && strcmp (e->tp.coordinator, coordinator) != 0) {
            return true;
        }
    }
    return false;
}

//  A debit leg of id prepared here by another coordinator than `coordinator`
//  (one live attempt per id: its own coordinator decides it first).
static bool
s_debit_leg_elsewhere (participant_t *self, rl_id_t id, const char *coordinator)
{
    for (int32_t i = attempts_head (&self->records, id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state == ATTEMPT_PREPARED && s_holds_debit (&e->transfer)
            && strcmp (e->tp.coordinator, coordinator) != 0) {
            return true;
        }
    }
    return false;
}

bool
participant_debit_live (participant_t *self, rl_id_t id)
{
    assert (self);
    for (int32_t i = attempts_head (&self->records, id); i >= 0;
         i = attempts_at (&self->records, i)->next) {
        const attempt_t *e = attempts_at (&self->records, i);
        if (e->state == ATTEMPT_PREPARED && s_holds_debit (&e->transfer)) {
            return true;
        }
    }
    return false;
}

//  Checks and reserves what a debit leg holds (its debit; both legs: its
//  credit too), as a create of it here would: the checks of a transfer of
//  one shard for both legs, of a coordinator for its debit alone.
static uint32_t
s_legs_reserve (participant_t *self, const rl_transfer_t *t)
{
    uint32_t result = RL_OK;
    if (s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS) {
        accounts_pair_t pair;
        result = accounts_transfer_check (self->accounts, t, &pair);
    }
    if (result == RL_OK) {
        result = accounts_debit_reserve (self->accounts, t);
    }
    if (result == RL_OK && s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS) {
        result = accounts_credit_reserve (self->accounts, t);
        if (result != RL_OK) {
            accounts_debit_release (self->accounts, t->debit_account_id, t->amount, false);
        }
    }
    return result;
}

//  The checks of a post or void leg (POST LEGS above) once its id is free
//  here: the ledger resolves it against its pending transfer (ids.resolve:
//  the rules of a post or void of it here, its side fitting the kind), a
//  debit leg's resolution must be the one its chain's shard sent (that
//  shard resolved it against the credit side's copy: a difference is a
//  hostile or corrupt record), and the credit account of both legs must
//  have arrived here. *resolved: the record to keep.
static uint32_t
s_post_leg_resolve (participant_t *self, const rl_prepare_rec_t *rec, now_t now,
                    rl_transfer_t *resolved)
{
    const rl_transfer_t *t = &rec->transfer;
    uint32_t result = self->ids.resolve (
        self->ids.arg, t, s_coordinator_index (self, rec->tp.coordinator), now.wall_ns, resolved);
    if (result != RL_OK) {
        return result;
    }
    int coordinator = s_coordinator_index (self, rec->tp.coordinator);
    if (s_legs (t) == RL_TRANSFER_TP_DEBIT_LEG
        && owner_of (self->ring, resolved->credit_account_id) == coordinator
        && (!rl_id_eq (resolved->credit_account_id, t->credit_account_id)
            || resolved->ledger != t->ledger || resolved->code != t->code
            || resolved->amount != t->amount)) {
        rl_warn ("two-phase: post or void leg %016" PRIx64 "%016" PRIx64 " from %s differs from "
                 "its pending transfer here: refused",
                 t->id.hi, t->id.lo, rec->tp.coordinator);
        return RL_RESERVED_FIELD;
    }
    if (self->arcs && !arcs_received_id (self->arcs, resolved->credit_account_id)) {
        return RL_FROZEN;
    }
    return RL_OK;
}

//  Checks and reserves the credit of one PREPARE; returns the reply state.
//  *seq_p: the group commit of the write the reply reports on (0: none).
static uint32_t
s_prepare_one (participant_t *self, const rl_prepare_rec_t *rec, int applied, const char *sender,
               now_t now, uint32_t *result, uint64_t *seq_p, uint64_t *ts_p)
{
    assert (rec && result && seq_p && ts_p);
    const rl_transfer_t *t = &rec->transfer;
    *result = RL_OK;
    *seq_p = 0;
    if (!s_prepare_sender_ok (self, rec, sender)) {
        //  Refused before anything is looked at: retryable, the id is not burned.
        rl_warn ("two-phase: PREPARE of transfer %016" PRIx64 "%016" PRIx64
                 " naming coordinator %s from %s: unauthorized (not that shard, not in the "
                 "ring, or not the debit account's owner at epoch %" PRIu64 ")",
                 t->id.hi, t->id.lo, rec->tp.coordinator, sender ? sender : "(no key)",
                 self->ring ? ring_epoch (self->ring) : 0);
        *result = RL_UNAUTHORIZED;
        return RL_TP_REFUSED;
    }
    //  The accounts of the legs it holds are this shard's; a debit leg's
    //  credit alone is another shard's.
    //  A post or void leg of both legs names the credit account as the
    //  client did (maybe not at all): its pending transfer's, resolved
    //  here, is this shard's (s_post_leg_resolve).
    bool post_leg = s_is_post_leg (t);
    bool owned = s_legs (t) == RL_TRANSFER_TP_DEBIT_LEG
                     ? s_owns (self, t->debit_account_id) && !s_owns (self, t->credit_account_id)
                 : s_legs (t) == RL_TRANSFER_TP_BOTH_LEGS
                     ? s_owns (self, t->debit_account_id)
                           && (post_leg || s_owns (self, t->credit_account_id))
                 : s_credit_third (t)
                     ? s_owns (self, t->credit_account_id) && !s_owns (self, t->debit_account_id)
                     : s_owns (self, t->credit_account_id);
    if (!rl_id_eq (t->id, rec->tp.id) || rec->tp.coordinator[0] == '\0' || rl_id_is_zero (t->id)
        || !owned) {
        *result = RL_WRONG_SHARD;
        return RL_TP_REFUSED;
    }
    //  Fields no cross-shard transfer of its kind carries (the ledger
    //  refuses them from clients: a PREPARE that sets them is hostile).
    const char *bad = s_prepare_fields_bad (self, t);
    if (bad) {
        rl_warn ("two-phase: PREPARE of transfer %016" PRIx64 "%016" PRIx64
                 " from coordinator %s refused (reserved_field): %s",
                 t->id.hi, t->id.lo, rec->tp.coordinator, bad);
        *result = RL_RESERVED_FIELD;
        return RL_TP_REFUSED;
    }
    //  A credit account in an arc gained by a ring change whose data has
    //  not arrived: it is not here yet, so nothing may be decided about it
    //  (retryable, the coordinator aborts without burning the id).
    if (self->arcs
        && ((s_holds_credit (t) && !post_leg
             && !arcs_received_id (self->arcs, t->credit_account_id))
            || (s_holds_debit (t) && !arcs_received_id (self->arcs, t->debit_account_id)))) {
        *result = RL_FROZEN;
        return RL_TP_REFUSED;
    }
    if (s_holds_debit (t)) {
        //  A debit leg's id is this shard's (its debit account's): what a
        //  create of it would answer first. Stored (exists, a taken id, the
        //  failure that burned it: its code and timestamp; the record may be
        //  in this very batch: the reply waits for it) or live in an
        //  attempt of this shard's coordinator (in_progress): not prepared.
        //  The credit leg index (`applied`) does not concern it.
        applied = 0;
        *result = self->ids.check (self->ids.arg, t, ts_p);
        if (*result != RL_OK) {
            *seq_p = *result == RL_IN_PROGRESS || *result == RL_STORAGE_ERROR
                         ? 0
                         : outq_batch_seq (self->outq);
            *ts_p = *seq_p ? *ts_p : 0;
            return RL_TP_REFUSED;
        }
        if (s_debit_leg_elsewhere (self, t->id, rec->tp.coordinator)) {
            *result = RL_IN_PROGRESS; //  another chain holds it: decided first
            return RL_TP_REFUSED;
        }
    }
    //  A duplicate PREPARE of an attempt already applied here finds no record
    //  (it was deleted at the commit). It must not be prepared again: D may
    //  still hold COMMIT in its log (the ACK was lost) and resend it, which
    //  would apply the credit a second time. The leg index says it was applied
    //  (`applied`: read for the whole batch, journal_legs_probe).
    if (applied != 0) {
        *result = applied < 0 ? RL_STORAGE_ERROR : RL_IN_DOUBT;
        //  The leg may be in this very batch: wait for it (conservative).
        *seq_p = applied > 0 ? outq_batch_seq (self->outq) : 0;
        return RL_TP_REFUSED;
    }
    //  A heuristic record was resolved by hand: its reservation is gone (or
    //  its credit applied), so a duplicate PREPARE of it is never prepared
    //  (invariant 6); neither is an attempt older than it (superseded).
    if (s_find_heuristic (self, t->id, rec->tp.coordinator, rec->tp.attempt) >= 0
        || s_heuristic_newer (self, t->id, rec->tp.coordinator, rec->tp.attempt)) {
        *result = RL_ABORTED;
        return RL_TP_REFUSED;
    }
    if (!s_holds_debit (t) && s_credit_elsewhere (self, t, rec->tp.coordinator)) {
        *result = RL_IN_PROGRESS; //  its own coordinator decides it first
        return RL_TP_REFUSED;
    }
    int32_t i = s_find_current (self, t->id, rec->tp.coordinator);
    if (i >= 0 && attempts_at (&self->records, i)->state == ATTEMPT_PREPARED
        && s_legs (&attempts_at (&self->records, i)->transfer) != s_legs (t)) {
        //  The coordinator holds another leg of this id prepared here: not
        //  superseded by a record of another kind (its own decision comes).
        *result = RL_IN_PROGRESS;
        return RL_TP_REFUSED;
    }
    if (i >= 0) {
        attempt_t *e = attempts_at (&self->records, i);
        if (attempt_eq (e->tp.attempt, rec->tp.attempt)) {
            //  A duplicate PREPARE: answer as before.
            *result = e->state == ATTEMPT_ABORTED ? RL_ABORTED : RL_OK;
            *seq_p = e->write_seq;
            return e->state == ATTEMPT_ABORTED ? RL_TP_REFUSED : RL_TP_PREPARED;
        }
        if (e->state == ATTEMPT_PREPARED && attempt_older (rec->tp.attempt, e->tp.attempt)) {
            *result = RL_ABORTED; //  a late PREPARE of a superseded attempt
            return RL_TP_REFUSED;
        }
        //  An older attempt of the same id: aborted by invariant 2. A
        //  tombstone shadows its own attempt only (invariant 8): of any other
        //  one, it goes.
        if (e->state == ATTEMPT_PREPARED) {
            s_record_abort (self, e, now);
        }
        s_marker_drop (self, i);
    }
    //  LIMITS: one coordinator holds at most its share of the prepared table
    //  and of the amounts reserved here (busy: retryable, the id not burned).
    if (!s_share_allows (self, rec->tp.coordinator, s_share_amount (t))) {
        rl_warn ("two-phase: PREPARE of transfer %016" PRIx64 "%016" PRIx64 " (amount %" PRIu64
                 ") from coordinator %s: busy, beyond its share (%zu records, %" PRIu64
                 " reserved at most)",
                 t->id.hi, t->id.lo, t->amount, rec->tp.coordinator, self->prepared_share_max,
                 self->reserve_max);
        *result = RL_BUSY;
        return RL_TP_REFUSED;
    }
    if ((t->flags & RL_TRANSFER_PENDING) && !pending_room (self->pending)) {
        *result = RL_BUSY; //  its commit could not keep the credit side
        return RL_TP_REFUSED;
    }
    //  A post or void: the credit side must be pending here, unclaimed, and
    //  match (amount, accounts, ledger, code, overflow); it reserves nothing.
    //  A debit leg: its debit (and both legs: its credit) checked and reserved.
    //  A post or void leg: resolved against its pending transfer here, which
    //  it claims (s_post_leg_resolve); its credit leg on a third shard:
    //  resolved against the credit side here (pending_credit_resolve).
    rl_transfer_t resolved = *t;
    bool third_post = s_credit_third (t) && s_is_resolve (t);
    *result = post_leg            ? s_post_leg_resolve (self, rec, now, &resolved)
              : third_post        ? pending_credit_resolve (self->pending, t, &resolved)
              : s_is_resolve (t)  ? pending_credit_check (self->pending, t)
              : s_holds_debit (t) ? s_legs_reserve (self, t)
                                  : accounts_credit_reserve (self->accounts, t);
    if (post_leg && *result != RL_OK) {
        //  Its check may have expired the pending transfer (into this batch).
        *seq_p = rl_result_is_retryable (*result) ? 0 : outq_batch_seq (self->outq);
        return RL_TP_REFUSED;
    }
    const attempt_t *leg = *result == RL_PENDING_TRANSFER_NOT_FOUND && !third_post
                               ? s_pending_leg_of (self, t->pending_id, t->debit_account_id,
                                                   rec->tp.coordinator)
                               : NULL;
    if (leg && !s_leg_of_group (leg, rec->tp.attempt)) {
        //  The leg prepared here is another attempt's (its group's leg has
        //  not come: messages reordered, or an older attempt's ABORT late):
        //  not decided, not burned; the coordinator aborts this attempt.
        leg = NULL;
        *result = RL_IN_PROGRESS;
    } else if (leg) {
        //  Its chain makes the pending transfer: checked against its
        //  prepared credit leg; one post or void of it at a time.
        *result = s_resolve_waiting (self, t->pending_id, t->debit_account_id)
                      ? RL_IN_PROGRESS
                      : pending_credit_check_leg (self->pending, t, &leg->transfer);
    } else if (*result == RL_OK && s_is_resolve (t) && self->waiting_count > 0
               && s_resolve_waiting (self, t->pending_id, t->debit_account_id)) {
        *result = RL_IN_PROGRESS; //  one of its chain waits, unclaimed: decided first
    } else if (*result == RL_PENDING_TRANSFER_NOT_FOUND
               && s_pending_leg_of (self, t->pending_id, t->debit_account_id, NULL)) {
        *result = RL_IN_PROGRESS; //  its credit side comes with that COMMIT: not burned
    }
    if (*result != RL_OK) {
        //  A failure the coordinator stores (it burns the id) may rest on
        //  this turn's writes: a credit posted or reserved by an earlier
        //  record of the batch. Its reply waits for their sync, so that a
        //  crash cannot leave a refusal that no durable state explains
        //  (invariant 5). Retryable ones burn nothing: they go at once.
        *seq_p = rl_result_is_retryable (*result) ? 0 : outq_batch_seq (self->outq);
        return RL_TP_REFUSED;
    }
    if (self->prepared_count >= RL_TP_PREPARED_MAX || s_shares_room (self) != 0
        || (leg && s_waiting_room (self) != 0) || (i = s_record_add (self, t->id)) < 0) {
        //  What it reserved: the record it resolved, a post leg's (its
        //  credit account may be zero or another shard's as it came).
        s_release (self, &resolved, false);
        *result = RL_BUSY;
        return RL_TP_REFUSED;
    }
    if (post_leg) {
        pending_claim (self->pending, t->pending_id, true, 0); //  found live and unclaimed
    } else if (s_is_resolve (t) && !leg) {
        int rc = pending_credit_claim (self->pending, t, true);
        assert (rc == 0); //  pending_credit_check found it live and unclaimed
        (void) rc;
    }
    attempt_t *e = attempts_at (&self->records, i);
    e->state = ATTEMPT_PREPARED;
    e->transfer = resolved; //  t, or what a post or void leg resolved
    e->tp = rec->tp;
    e->tp.state = RL_TP_PREPARED;
    //  As the stored record loads back (attempts.c): from the transfer.
    e->tp.amount = resolved.amount;
    e->tp.debit_account_id = t->debit_account_id;
    e->tp.result = 0;
    e->tp.timestamp = 0;
    e->created_ns = now.wall_ns;
    attempts_key_assign (&self->records, i);
    e->backoff_ms = self->retry_min_ms;
    e->next_ns = now.mono_ns + self->query_after_ms * 1000000ull;
    s_share_add (self, e->tp.coordinator, s_share_amount (t));
    self->prepared_count++;
    s_promise (self, t, true); //  pending_room said there is room
    s_record_put (self, e);
    if (leg) {
        s_waiting_add (self, i, &leg->tp.attempt); //  claims its side at that leg's commit
    }
    *seq_p = e->write_seq;
    assert (e->state == ATTEMPT_PREPARED && *seq_p == outq_batch_seq (self->outq));
    return RL_TP_PREPARED;
}

//  A batch's loop at record k of `count` (each `size` bytes, the id at
//  `offset`): the records table's lookups of the records ahead, prefetched
//  (attempts.h), so that their cache misses overlap.
static void
s_prefetch (const participant_t *self, const void *recs, size_t count, size_t k, size_t offset,
            size_t size)
{
    const uint8_t *bytes = recs;
    rl_id_t id;
    if (k + ATTEMPTS_PREFETCH_SLOT_AHEAD < count) {
        memcpy (&id, bytes + (k + ATTEMPTS_PREFETCH_SLOT_AHEAD) * size + offset, sizeof (id));
        attempts_prefetch (&self->records, id);
    }
    if (k + ATTEMPTS_PREFETCH_ENTRY_AHEAD < count) {
        memcpy (&id, bytes + (k + ATTEMPTS_PREFETCH_ENTRY_AHEAD) * size + offset, sizeof (id));
        attempts_prefetch_entry (&self->records, id);
    }
}

uint64_t
participant_prepare (participant_t *self, const rl_prepare_rec_t *recs, size_t count,
                     const char *sender, now_t now, rl_tp_rec_t *out)
{
    assert (self && (count == 0 || (recs && out)));
    if (count > 0) {
        RL_FAILPOINT (TP_PART_PREPARE_DELAY);
    }
    uint64_t needs_seq = 0;
    for (size_t from = 0; from < count; from += RL_BATCH_RECORDS_MAX) {
        size_t n = count - from > RL_BATCH_RECORDS_MAX ? RL_BATCH_RECORDS_MAX : count - from;
        //  The leg check of every record, in one batched read: a PREPARE
        //  appends no leg, so the answers hold for the whole batch.
        journal_legs_probe (self->journal, recs + from, n, self->legs_applied);
        for (size_t k = from; k < from + n; k++) {
            s_prefetch (self, recs, from + n, k, offsetof (rl_prepare_rec_t, tp.id),
                        sizeof (*recs));
            uint64_t seq = 0;
            out[k] = recs[k].tp;
            out[k].timestamp = 0; //  set only for an id stored here (a debit leg's)
            out[k].state = s_prepare_one (self, &recs[k], self->legs_applied[k - from], sender, now,
                                          &out[k].result, &seq, &out[k].timestamp);
            needs_seq = seq > needs_seq ? seq : needs_seq;
        }
    }
    if (count > 0) {
        RL_FAILPOINT (TP_PART_PREPARED);
    }
    assert (needs_seq <= outq_batch_seq (self->outq));
    return needs_seq;
}

//  Applies one decision (DECIDE, or an outcome answer); returns the ack state.
//  *seq_p: the group commit of the write the ack reports on (0: none).
static uint32_t
s_decide_one (participant_t *self, const rl_tp_rec_t *d, now_t now, uint64_t *seq_p, uint64_t *ts_p)
{
    assert (d->state == RL_TP_COMMIT || d->state == RL_TP_ABORT);
    *seq_p = 0;
    *ts_p = 0;
    int32_t h = s_find_heuristic (self, d->id, d->coordinator, d->attempt);
    if (h >= 0) {
        attempt_t *e = attempts_at (&self->records, h);
        if (e->tp.state == d->state) {
            *seq_p = e->write_seq;
            return RL_TP_ACKED; //  the coordinator decided as the operator did
        }
        self->alarms++;
        rl_error ("two-phase ALARM: %s decided %s for transfer %016" PRIx64 "%016" PRIx64
                  " attempt %" PRIu64 ".%" PRIu64 ", resolved here by hand as %s: not applied,"
                  " not acknowledged (reconcile by hand)",
                  d->coordinator, rl_tp_state_name (d->state), d->id.hi, d->id.lo,
                  d->attempt.counter, d->attempt.seq, rl_tp_state_name (e->tp.state));
        return RL_TP_NOT_ACKED;
    }
    int32_t i = s_find_current (self, d->id, d->coordinator);
    attempt_t *e = i >= 0 ? attempts_at (&self->records, i) : NULL;
    bool same = e && attempt_eq (e->tp.attempt, d->attempt);
    assert (!e || e->state != ATTEMPT_HEURISTIC); //  heuristic records are kept (invariant 6)
    if (d->state == RL_TP_COMMIT) {
        if (same && e->state == ATTEMPT_PREPARED && s_resolve_waits (self, e)) {
            if (s_waited_leg (self, e)) {
                return RL_TP_RETRY; //  its credit side comes with its pending transfer's COMMIT
            }
            self->alarms++;
            rl_error ("two-phase ALARM: COMMIT from %s of post or void %016" PRIx64 "%016" PRIx64
                      " that waits for a credit side it cannot claim (the credit leg it was "
                      "checked against aborted, superseded or resolved by hand): not applied, not "
                      "acknowledged (reconcile by hand)",
                      d->coordinator, d->id.hi, d->id.lo);
            return RL_TP_NOT_ACKED;
        }
        if (same && e->state == ATTEMPT_PREPARED) {
            bool debit_leg = s_holds_debit (&e->transfer);
            uint64_t ts = s_record_commit (self, e, now);
            *ts_p = debit_leg ? ts : 0;
            *seq_p = outq_batch_seq (self->outq);
            return RL_TP_ACKED;
        }
        if (!e || !same) {
            //  Applied: a credit leg in the leg index, or a debit leg's
            //  transfer stored ok under its id (the DECIDE does not say
            //  which leg it was).
            int applied = journal_leg_applied (self->journal, d->id, d->debit_account_id);
            if (applied == 0 && self->ids.applied) {
                applied = self->ids.applied (self->ids.arg, d->id, d->debit_account_id, ts_p);
            }
            if (applied == 1) {
                //  Applied earlier; the ACK was lost. The leg may be in this
                //  very batch: wait for it (conservative).
                *seq_p = outq_batch_seq (self->outq);
                return RL_TP_ACKED;
            }
            if (applied < 0) {
                return RL_TP_RETRY; //  cannot tell now (storage error): the coordinator resends
            }
        }
        self->alarms++;
        rl_error ("two-phase ALARM: COMMIT from %s for transfer %016" PRIx64 "%016" PRIx64
                  " attempt %" PRIu64 ".%" PRIu64 " that is %s here: not acknowledged",
                  d->coordinator, d->id.hi, d->id.lo, d->attempt.counter, d->attempt.seq,
                  !e      ? "unknown"
                  : !same ? "another attempt"
                          : "aborted");
        return RL_TP_NOT_ACKED;
    }
    if (same) {
        if (e->state == ATTEMPT_PREPARED) {
            s_record_abort (self, e, now);
        }
        *seq_p = e->write_seq;
        return RL_TP_ACKED;
    }
    if (e && e->state == ATTEMPT_PREPARED) {
        //  Another attempt is prepared: this abort does not touch it (it
        //  has its own decision; invariant 8), nor leaves a tombstone beside it.
        return RL_TP_ACKED;
    }
    if (e && !attempt_older (e->tp.attempt, d->attempt)) {
        return RL_TP_ACKED; //  a tombstone of a newer attempt: this abort concerns nothing here
    }
    //  Unknown attempt (or newer than our tombstone's): leave a tombstone so
    //  that a late PREPARE of it is refused; it replaces the older one.
    if (e) {
        s_marker_drop (self, i);
    }
    i = s_record_add (self, d->id);
    if (i < 0) {
        return RL_TP_RETRY; //  no room for the tombstone: ask again later
    }
    e = attempts_at (&self->records, i);
    e->state = ATTEMPT_ABORTED;
    attempts_key_assign (&self->records, i);
    e->tp = *d;
    e->transfer.id = d->id;
    e->transfer.debit_account_id = d->debit_account_id;
    e->created_ns = now.wall_ns;
    s_record_abort (self, e, now);
    *seq_p = e->write_seq;
    assert (*seq_p == outq_batch_seq (self->outq));
    return RL_TP_ACKED;
}

uint64_t
participant_decide (participant_t *self, const rl_tp_rec_t *recs, size_t count, const char *sender,
                    now_t now, rl_tp_rec_t *out)
{
    assert (self && (count == 0 || (recs && out)));
    uint64_t needs_seq = 0;
    for (size_t k = 0; k < count; k++) {
        s_prefetch (self, recs, count, k, offsetof (rl_tp_rec_t, id), sizeof (*recs));
        if (k + JOURNAL_APPEND_PREFETCH_AHEAD < count) {
            const rl_tp_rec_t *ahead = &recs[k + JOURNAL_APPEND_PREFETCH_AHEAD];
            if (ahead->state == RL_TP_COMMIT) { //  its credit leg is appended
                journal_prefetch_append (self->journal, ahead->id, ahead->debit_account_id, true);
            }
        }
        out[k] = recs[k];
        if (sender && strcmp (sender, recs[k].coordinator) != 0) {
            //  Sender rule: only the coordinator a record names decides it,
            //  whatever the ring says now (records are found by that name).
            rl_warn ("two-phase: DECIDE of transfer %016" PRIx64 "%016" PRIx64
                     " naming coordinator %s from %s: unauthorized",
                     recs[k].id.hi, recs[k].id.lo, recs[k].coordinator, sender);
            out[k].state = RL_TP_REFUSED;
            out[k].result = RL_UNAUTHORIZED;
            continue;
        }
        if ((recs[k].state != RL_TP_COMMIT && recs[k].state != RL_TP_ABORT)
            || rl_id_is_zero (recs[k].id)) {
            out[k].state = RL_TP_NOT_ACKED;
            continue;
        }
        uint64_t seq = 0;
        out[k].timestamp = 0;
        out[k].state = s_decide_one (self, &recs[k], now, &seq, &out[k].timestamp);
        needs_seq = seq > needs_seq ? seq : needs_seq;
    }
    if (count > 0) {
        RL_FAILPOINT (TP_PART_APPLIED);
    }
    assert (needs_seq <= outq_batch_seq (self->outq));
    return needs_seq;
}

size_t
participant_outcome_answers (participant_t *self, const rl_tp_rec_t *answers, size_t count,
                             const char *from, now_t now)
{
    assert (self && (count == 0 || answers));
    size_t refused = 0;
    for (size_t k = 0; k < count; k++) {
        const rl_tp_rec_t *a = &answers[k];
        int32_t i = s_find_current (self, a->id, a->coordinator);
        if (i < 0 || attempts_at (&self->records, i)->state != ATTEMPT_PREPARED
            || !attempt_eq (attempts_at (&self->records, i)->tp.attempt, a->attempt)) {
            continue; //  answers matter only to a record still prepared
        }
        if (from && strcmp (from, a->coordinator) != 0) {
            //  Sender rule: only the record's coordinator answers for it.
            rl_warn ("two-phase: outcome of transfer %016" PRIx64 "%016" PRIx64
                     " (coordinator %s) answered by %s: ignored",
                     a->id.hi, a->id.lo, a->coordinator, from);
            refused++;
            continue;
        }
        if (a->state == RL_TP_COMMIT || a->state == RL_TP_ABORT) {
            uint64_t seq = 0, ts = 0;
            s_decide_one (self, a, now, &seq, &ts); //  nothing is sent back
        }
    }
    assert (refused <= count);
    return refused;
}

uint32_t
participant_resolve (participant_t *self, const rl_tp_rec_t *rec, now_t now)
{
    assert (self && rec);
    if (rec->state != RL_TP_COMMIT && rec->state != RL_TP_ABORT) {
        return RL_RESOLVE_BAD_DECISION;
    }
    //  The operator names the attempt by counter and sequence (as listed).
    int32_t i = s_find_current (self, rec->id, rec->coordinator);
    if (i < 0 || attempts_at (&self->records, i)->state != ATTEMPT_PREPARED
        || attempts_at (&self->records, i)->tp.attempt.counter != rec->attempt.counter
        || attempts_at (&self->records, i)->tp.attempt.seq != rec->attempt.seq) {
        return RL_RESOLVE_NOT_FOUND;
    }
    attempt_t *e = attempts_at (&self->records, i);
    if (rec->state == RL_TP_COMMIT && s_resolve_waits (self, e)) {
        //  It holds no credit side: one may come with the leg it waits for.
        return s_waited_leg (self, e) ? RL_RESOLVE_LEG_FIRST : RL_RESOLVE_NO_SIDE;
    }
    attempt_t kept = *e;
    if (rec->state == RL_TP_COMMIT) {
        s_record_commit (self, e, now); //  applies the credit leg, drops the record
        i = attempts_add (&self->records, rec->id);
        assert (i >= 0); //  the slot just freed
        e = attempts_at (&self->records, i);
        int32_t next = e->next;
        *e = kept;
        e->next = next;
        e->keyed = false; //  its old key was dropped with the commit: a new one
        e->key_prev = e->key_next = -1;
        attempts_key_assign (&self->records, i);
    } else {
        s_record_abort (self, e, now); //  releases the reservation
    }
    e->state = ATTEMPT_HEURISTIC;
    e->tp.state = rec->state;
    s_record_put (self, e); //  same key: overwrites the record in this batch
    assert (e->state == ATTEMPT_HEURISTIC && e->write_seq == outq_batch_seq (self->outq));
    rl_warn ("two-phase: transfer %016" PRIx64 "%016" PRIx64 " attempt %" PRIu64 ".%" PRIu64
             " from %s resolved by hand: %s (heuristic record written)",
             rec->id.hi, rec->id.lo, rec->attempt.counter, rec->attempt.seq, rec->coordinator,
             rl_tp_state_name (rec->state));
    return 0;
}

int
participant_open (participant_t *self, now_t now, char *err, size_t err_size)
{
    assert (self && self->records.count == 0);
    if (s_load_records (self, now, err, err_size) != 0) {
        return -1;
    }
    assert (self->prepared_count <= self->records.count);
    return 0;
}

//  Timers ---------------------------------------------------------------------------

static void
s_backoff (const participant_t *self, attempt_t *e, uint64_t mono_ns)
{
    assert (e->state == ATTEMPT_PREPARED && e->backoff_ms > 0);
    e->next_ns = mono_ns + e->backoff_ms * 1000000ull;
    e->backoff_ms = e->backoff_ms * 2 > self->retry_max_ms ? self->retry_max_ms : e->backoff_ms * 2;
    assert (e->backoff_ms <= self->retry_max_ms && e->next_ns > mono_ns);
}

size_t
participant_tick (participant_t *self, now_t now, size_t budget)
{
    assert (self);
    uint64_t mono_ns = now.mono_ns; //  every timer
    size_t work = 0;
    //  Expire markers (oldest first); ask about old prepared records,
    //  scanning at most once per retry_min_ms (O(table) a scan).
    s_markers_evict (self, mono_ns, false);
    if (self->prepared_count > 0 && mono_ns >= self->next_scan_ns) {
        self->next_scan_ns = mono_ns + self->retry_min_ms * 1000000ull;
        size_t span = attempts_span (&self->records);
        for (size_t i = 0; i < span && work < budget; i++) {
            attempt_t *e = attempts_at (&self->records, (int32_t) i);
            if (e->state == ATTEMPT_PREPARED && mono_ns >= e->next_ns) {
                //  Cold path: the coordinator's index is looked up by name.
                int peer = self->ring ? ring_shard_find (self->ring, e->tp.coordinator) : -1;
                outq_msg_t msg = {.kind = OUTQ_QUERY, .peer = peer, .needs_seq = e->write_seq};
                msg.tp = e->tp;
                if (outq_push (self->outq, &msg) != 0) {
                    rl_warn ("participant: out of memory queueing a query: asked later");
                }
                s_backoff (self, e, mono_ns);
                work++;
            }
        }
    }
    assert (work <= budget);
    return work;
}

void
participant_counts (const participant_t *self, uint64_t *prepared, uint64_t *alarms)
{
    assert (self && prepared && alarms);
    *prepared = self->prepared_count;
    *alarms = self->alarms;
}

void
participant_audit_sums (participant_t *self, const accounts_t *accounts, uint64_t *debits,
                        uint64_t *credits)
{
    assert (self && accounts && debits && credits);
    size_t span = attempts_span (&self->records);
    for (size_t i = 0; i < span; i++) {
        const attempt_t *e = attempts_at (&self->records, (int32_t) i);
        size_t slot = 0;
        if (e->state == ATTEMPT_PREPARED && s_holds_credit (&e->transfer)
            && accounts_slot (accounts, e->transfer.credit_account_id, &slot)) {
            credits[slot] += s_reserved (&e->transfer);
        }
        if (e->state == ATTEMPT_PREPARED && s_holds_debit (&e->transfer)
            && accounts_slot (accounts, e->transfer.debit_account_id, &slot)) {
            debits[slot] += s_debit_reserved (&e->transfer); //  a debit leg
        }
    }
}

size_t
participant_heuristics (participant_t *self, bool (*in) (void *arg, rl_id_t account), void *arg)
{
    assert (self && in);
    size_t n = 0;
    size_t span = attempts_span (&self->records);
    for (size_t i = 0; i < span; i++) {
        const attempt_t *e = attempts_at (&self->records, (int32_t) i);
        n += e->state == ATTEMPT_HEURISTIC
             && (in (arg, e->transfer.credit_account_id)
                 || (s_holds_debit (&e->transfer) && in (arg, e->transfer.debit_account_id)));
    }
    return n;
}

size_t
participant_in_doubt (participant_t *self, rl_in_doubt_rec_t *out, size_t cap)
{
    assert (self && (cap == 0 || out));
    size_t n = 0;
    size_t span = attempts_span (&self->records);
    for (size_t i = 0; i < span && n < cap; i++) {
        const attempt_t *e = attempts_at (&self->records, (int32_t) i);
        if (e->state == ATTEMPT_PREPARED) {
            attempt_in_doubt (e, &out[n++]);
        }
    }
    assert (n <= cap);
    return n;
}
