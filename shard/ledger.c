/*  ledger.c: accounts and transfers of one shard, and the order of calls
    into the two-phase modules.

    DESIGN
    The ledger is the facade of the shard's state machine. It owns:
      - the account table (accounts.c) and the transfer journal
        (journal.c: the durable record of every transfer, the transfers
        since the last checkpoint and their indexes);
      - the two-phase coordinator and participant (coordinator.c,
        participant.c), which see the accounts and the journal through
        narrow calls and never call back into the ledger.
    It applies create_accounts and same-shard transfers itself, hands a
    transfer whose credit account lives on another shard to the
    coordinator, answers lookups and history, and runs checkpoints: after
    a group commit, it freezes the journal's recent transfers and copies
    the dirty accounts, and a background thread (checkpoint.c) ingests the
    indexes as SST files, then writes those accounts (in pieces) and
    meta.checkpoint_ts (in a synced batch), while the loop goes on
    serving. A later turn sees the checkpoint committed and thaws the
    journal.

    Ownership is read from the ring served now: the ring maps an account
    id to a shard index (owner.h), compared with this shard's index. An
    account this shard owns but whose arc it gained in a ring change and
    has not received (arcs.h) is frozen: every create that names it (the
    debit account, or the credit account of a same-shard transfer) is
    answered `frozen` before the idempotency check, so that nothing the
    shard does not hold decides about an id. One such record makes the
    whole piece of the request (what this shard got of it) `frozen`,
    nothing applied: a later record never overtakes an earlier one on
    this shard. Decisions, outcome queries and acknowledgements are
    never frozen (participant.c, coordinator.c), so a freeze can drain.

    INVARIANTS
    1. Every account's balances equal the sum of its ok transfers (history).
    2. A transfer id has at most one record: the idempotency check consults
       the journal, then the coordinator's live attempts, before anything
       else is decided (one live attempt per id: in_progress).
    3. A record's outcome is stored (ok or burned) in the batch of the turn
       that decides it; field validation failures are not stored.
    4. self_index is the index of `name` in `ring` (or -1: owns nothing),
       refreshed with every ring.
    5. At most one checkpoint in the background. BACKPRESSURE: when the
       live generation fills up (checkpoint_transfers) while the previous
       checkpoint still runs, the loop waits for it before it freezes the
       next one. Nothing is refused or dropped; the loop stalls only when
       transfers arrive faster than the background checkpoints them.
    6. A failed checkpoint fails the shard (ledger_after_commit returns -1
       from then on), as a failed group commit does.

    RESULTS (docs/protocol.md): id validation, ownership (and frozen), idempotency, field
    validation, account lookups, ledger, balances. Field validation depends
    on the record alone and is not stored; lookups, ledger and balance
    failures are stored (they burn the id) so that a retry gets the same
    answer forever.

    ADOPTED ACCOUNTS (a migration's handover, migrate.c)
    A target's handover installs the arc's accounts in memory and marks
    them dirty, and writes only MIGRATE_ADOPTED_KEY: their durable copies
    are the staged 'A' keys the imports wrote, which stay. So the handover
    writes a few keys however large the arc, where writing every account
    into the batch of the freeze cost about 1.2 us an account. The next
    checkpoint's snapshot holds those accounts (dirty), and its batch
    writes them into the accounts family, deletes the staged copies (one
    range tombstone) and the key, atomically with its checkpoint_ts.
    Recovery, between the stored accounts and the replay (journal_open's
    adopt step), adopts the staged copies again while the key is there:
    they are the balances of the handover, and every transfer that
    touched them since is after any checkpoint that did not write them
    (the arc was not received here before), so the replay brings them up
    to date. Until that checkpoint is committed, the accounts family does
    not list the arc, so a new migration's begin waits for it (answered
    busy: migrate.c), since exports and cleanups read that family.

    LIMITS: RL_SHARD_ACCOUNTS_MAX accounts (accounts.c);
    RL_SHARD_CHECKPOINT_TRANSFERS between checkpoints (journal.c). A history
    query scans the recent transfers linearly for the account: O(recent),
    at most one checkpoint interval.
*/
#include "ledger.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "checkpoint.h"
#include "codec.h"
#include "failpoint.h"
#include "imported.h"
#include "journal.h"
#include "log.h"
#include "migrate.h"
#include "owner.h"
#include "pending.h"
#include "rl_limits.h"

//  An account's record before a linked chain changed it.
typedef struct {
    size_t slot;
    rl_account_t account;
} s_saved_t;

struct ledger_t {
    store_t *store;
    outq_t *outq;
    accounts_t *accounts;
    journal_t *journal;
    checkpoint_t *checkpoint; //  the checkpoint in the background
    coordinator_t *coordinator;
    participant_t *participant;
    pending_t *pending;                //  user-level pending transfers (pending.c)
    bool hold_arc;                     //  recovery: a frozen source's arc (s_pending_held)
    uint64_t hold_start, hold_end;     //  that arc (start, end]
    arcs_t *arcs;                      //  arcs whose data is here (the caller's; NULL: all)
    const ring_t *ring;                //  the ring served now (the caller's)
    int self_index;                    //  this shard in it, or -1 (owns nothing)
    char name[RL_SHARD_NAME_SIZE_MAX]; //  this shard's name
    size_t checkpoint_transfers;       //  checkpoint once recent holds this many
    uint64_t checkpoints;              //  since open
    uint64_t *probed_ts;               //  journal_probe's answers, RL_BATCH_RECORDS_MAX
    bool checkpoint_failed;            //  a checkpoint failed: the shard must fail
    bool imported;                     //  a migration brought records here (imported.h)
    bool checkpoint_soon;              //  start a checkpoint after the next commit, however few
    bool filter_growing;               //  the checkpoint builds a bigger id filter
    bool adopted;   //  accounts adopted by a handover, not yet written by a checkpoint
    bool absorbing; //  the checkpoint in the background writes them
    //  The linked chain in progress (s_chain_*): the accounts' records as
    //  they were before its members changed them, oldest first.
    s_saved_t *saved;
    size_t saved_count;
    size_t saved_cap;
    ledger_payments_t payments; //  counts of payment flows (ledger_payments)
};

static uint32_t s_leg_id_check (void *arg, const rl_transfer_t *t, uint64_t *ts_p);
static int s_leg_applied (void *arg, rl_id_t id, rl_id_t debit_account_id, uint64_t *ts_p);
static uint32_t s_leg_resolve (void *arg, const rl_transfer_t *t, int coordinator, uint64_t wall_ns,
                               rl_transfer_t *resolved);

//  The shard's timestamp clock, which pending transfers expire by: the
//  wall clock, but never below the last timestamp assigned (persisted), so
//  that neither a restart nor a clock stepping back undoes an expiry.
static uint64_t
s_clock (const ledger_t *self, now_t now)
{
    uint64_t last = journal_last_ts (self->journal);
    return now.wall_ns > last ? now.wall_ns : last;
}

//  The accounts whose pending transfers must not expire now (pending.h,
//  pending_set_hold): those a migration holds frozen on this source
//  (ledger_frozen, from migrate_freeze to the handover), those this shard
//  keeps but no longer owns (the step's ring loaded, the handover not
//  done yet; or a ring loaded by hand: the data waits for a migration,
//  docs/rebalance.md, "Ring changes and data"), and, during
//  recovery, before the freeze is restored (migrate_start runs after the
//  ledger opens), the arc of a stored FROZEN or SHIPPED source migration:
//  the final round must carry them as they were (docs/rebalance.md).
static bool
s_pending_held (void *arg, rl_id_t account)
{
    const ledger_t *self = arg;
    if (self->hold_arc && imported_in_arc (self->hold_start, self->hold_end, account)) {
        return true;
    }
    //  Not owned: the step's ring is loaded before the source's handover
    //  (and kept across a restart), which then takes the entry away.
    return !ledger_owns (self, account) || ledger_frozen (self, account);
}

//  Recovery: the arc of the migration stored here as a frozen or shipped
//  source, if any (migrate.c keeps it under MIGRATE_META_KEY).
static void
s_hold_stored_arc (ledger_t *self)
{
    uint8_t value[RL_MIGRATE_SIZE];
    size_t size = 0;
    int rc = store_get (self->store, STORE_CF_META, MIGRATE_META_KEY, strlen (MIGRATE_META_KEY),
                        value, sizeof (value), &size);
    if (rc != 1 || size != RL_MIGRATE_SIZE) {
        return; //  none (a bad one is migrate_start's to refuse)
    }
    rl_migrate_rec_t m;
    codec_decode_migrate (value, &m);
    if (m.role == RL_MIGRATE_SOURCE && m.arc_start != m.arc_end
        && (m.state == RL_MIGRATE_FROZEN || m.state == RL_MIGRATE_SHIPPED)) {
        self->hold_arc = true;
        self->hold_start = m.arc_start;
        self->hold_end = m.arc_end;
    }
}

//  Recovery, journal_open's adopt step (ADOPTED ACCOUNTS above): while the
//  handover's key is stored, its accounts come from their staged copies.
static int
s_adopt_stored (void *arg, accounts_t *accounts, uint64_t *last_ts_p, char *err, size_t err_size)
{
    ledger_t *self = arg;
    uint8_t value[RL_MIGRATE_SIZE > MIGRATE_ADOPTED_SIZE ? RL_MIGRATE_SIZE : MIGRATE_ADOPTED_SIZE];
    size_t size = 0;
    int rc = store_get (self->store, STORE_CF_META, MIGRATE_ADOPTED_KEY,
                        strlen (MIGRATE_ADOPTED_KEY), value, sizeof (value), &size);
    if (rc == 0) {
        return 0;
    }
    if (rc < 0 || size != MIGRATE_ADOPTED_SIZE) {
        snprintf (err, err_size, "cannot read %s: %s", MIGRATE_ADOPTED_KEY,
                  rc < 0 ? store_error (self->store) : "not its size");
        return -1;
    }
    uint64_t migration_id = codec_get_u64 (value);
    uint64_t start = codec_get_u64 (value + 8), end = codec_get_u64 (value + 16);
    rl_migrate_rec_t m = {0};
    rc = store_get (self->store, STORE_CF_META, MIGRATE_META_KEY, strlen (MIGRATE_META_KEY), value,
                    sizeof (value), &size);
    if (rc == 1 && size == RL_MIGRATE_SIZE) {
        codec_decode_migrate (value, &m);
    }
    if (m.migration_id != migration_id || m.role != RL_MIGRATE_TARGET
        || m.state != RL_MIGRATE_HANDED_OVER || m.arc_start != start || m.arc_end != end) {
        snprintf (err, err_size,
                  "%s names migration %" PRIu64 ", but the stored migration is not its handover "
                  "as the target",
                  MIGRATE_ADOPTED_KEY, migration_id);
        return -1;
    }
    store_iter_t *it = store_iter_new (self->store, STORE_CF_IMPORTED);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    size_t adopted = 0;
    rc = 0;
    uint8_t prefix = IMPORTED_ACCOUNT;
    for (store_iter_seek (it, &prefix, 1); rc == 0 && store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *stored = store_iter_value (it, &value_size);
        if (key[0] != IMPORTED_ACCOUNT) {
            break;
        }
        rl_account_t a = {0};
        if (key_size == 1 + RL_ID_SIZE && value_size == RL_ACCOUNT_SIZE) {
            codec_decode_account (stored, &a);
        }
        //  The handover adopts only when every staged key is the arc's.
        if (a.timestamp == 0 || !rl_id_eq (a.id, codec_decode_id (key + 1))
            || !imported_in_arc (start, end, a.id) || accounts_get (accounts, a.id)) {
            snprintf (err, err_size,
                      "a staged account of migration %" PRIu64
                      " is corrupt, not its arc's, or held here already",
                      migration_id);
            rc = -1;
            break;
        }
        a.debits_pending = a.credits_pending = 0; //  rebuilt from the pending transfers
        a.debits_reserved = a.credits_reserved = 0;
        if (accounts_adopt (accounts, &a) != 0) {
            snprintf (err, err_size, "the account table is full or memory ran out");
            rc = -1;
            break;
        }
        if (a.timestamp > *last_ts_p) {
            *last_ts_p = a.timestamp; //  as accounts_load raises it
        }
        adopted++;
    }
    store_iter_destroy (&it);
    if (rc == 0 && store_failed (self->store)) {
        snprintf (err, err_size, "cannot read the staged accounts: %s", store_error (self->store));
        rc = -1;
    }
    if (rc == 0 && adopted == 0) {
        snprintf (err, err_size, "the staged accounts of migration %" PRIu64 " are missing",
                  migration_id); //  the handover adopts only an arc with accounts
        rc = -1;
    }
    if (rc == 0) {
        self->adopted = true;
        self->checkpoint_soon = true; //  as the handover asked
        rl_info ("ledger: %zu accounts of migration %" PRIu64
                 " adopted from their staged copies (no checkpoint has written them yet)",
                 adopted, migration_id);
    }
    return rc;
}

ledger_t *
ledger_open (store_t *store, outq_t *outq, const char *name, const ring_t *ring, uint64_t nonce,
             now_t now, char *err, size_t err_size)
{
    return ledger_open_warm (store, outq, name, ring, nonce, now, NULL, err, err_size);
}

ledger_t *
ledger_open_warm (store_t *store, outq_t *outq, const char *name, const ring_t *ring,
                  uint64_t nonce, now_t now, journal_warm_t **warm_p, char *err, size_t err_size)
{
    assert (store && outq && name && ring);
    assert (strlen (name) < RL_SHARD_NAME_SIZE_MAX);
    ledger_t *self = calloc (1, sizeof (*self));
    if (!self) {
        snprintf (err, err_size, "out of memory");
        if (warm_p) {
            journal_warm_destroy (warm_p);
        }
        return NULL;
    }
    self->store = store;
    self->outq = outq;
    self->checkpoint_transfers = RL_SHARD_CHECKPOINT_TRANSFERS;
    snprintf (self->name, sizeof (self->name), "%s", name);
    self->accounts = accounts_new (store);
    self->journal = journal_new (store);
    self->checkpoint = checkpoint_new (store);
    self->probed_ts = malloc (RL_BATCH_RECORDS_MAX * sizeof (*self->probed_ts));
    if (self->accounts && self->journal && self->checkpoint && self->probed_ts) {
        self->coordinator = coordinator_new (store, self->accounts, self->journal, outq, name);
        self->participant = participant_new (store, self->accounts, self->journal, outq);
        self->pending = pending_new (store, self->accounts);
    }
    if (self->coordinator && self->participant && self->pending) {
        coordinator_set_pending (self->coordinator, self->pending);
        participant_set_pending (self->participant, self->pending);
        participant_set_ids (self->participant, &(participant_ids_t){.check = s_leg_id_check,
                                                                     .applied = s_leg_applied,
                                                                     .resolve = s_leg_resolve,
                                                                     .arg = self});
        pending_set_hold (self->pending, s_pending_held, self);
    }
    if (!self->accounts || !self->journal || !self->checkpoint || !self->coordinator
        || !self->participant || !self->pending) {
        snprintf (err, err_size, "out of memory");
        ledger_destroy (&self);
        if (warm_p) {
            journal_warm_destroy (warm_p);
        }
        return NULL;
    }
    if (warm_p && *warm_p) {
        journal_set_warm (self->journal, warm_p);
    }
    ledger_set_ring (self, ring);
    //  Recovery order: accounts and transfers, then the coordinator (its new
    //  incarnation is committed before anything is served), then the pending
    //  transfers, then the participant's prepared records (they restore
    //  credit reservations, and claim the credit sides of pending transfers
    //  their posts and voids resolve, and the pending transfers their post
    //  legs resolve), then the expiries of what expired meanwhile (never of
    //  a pending transfer a prepared post leg claims: its commit wins).
    s_hold_stored_arc (self);
    journal_set_adopt (self->journal, s_adopt_stored, self);
    if (journal_open (self->journal, self->accounts, err, err_size) != 0
        || coordinator_open (self->coordinator, nonce, now, err, err_size) != 0
        || pending_open (self->pending, err, err_size) != 0
        || participant_open (self->participant, now, err, err_size) != 0) {
        ledger_destroy (&self);
        return NULL;
    }
    pending_recover (self->pending, s_clock (self, now));
    self->hold_arc = false; //  from here the freeze itself holds it (migrate_start)
    //  What expired while the shard was down expired in pending_recover: that
    //  is committed before anything is served, like the incarnation.
    if (store_batch_count (store) > 0) {
        journal_before_commit (self->journal);
        RL_FAILPOINT (PENDING_RECOVERY_EXPIRED);
        if (store_commit (store) != 0) {
            snprintf (err, err_size, "cannot commit the expiries of recovery: %s",
                      store_error (store));
            ledger_destroy (&self);
            return NULL;
        }
        pending_committed (self->pending);
    }
    if (imported_any (store)) {
        ledger_set_imported (self); //  never replayed: only consulted by lookups
    }
    size_t recent = 0;
    journal_recent (self->journal, &recent);
    uint64_t live = 0, decided = 0, alarms = 0, prepared = 0;
    coordinator_counts (self->coordinator, &live, &decided, &alarms);
    participant_counts (self->participant, &prepared, &alarms);
    rl_info ("ledger: %zu accounts, %zu transfers replayed after checkpoint %" PRIu64
             ", last ts %" PRIu64 "; two-phase: %" PRIu64 " decisions to deliver, %" PRIu64
             " prepared",
             accounts_count (self->accounts), recent, journal_checkpoint_ts (self->journal),
             journal_last_ts (self->journal), decided, prepared);
    assert (live == 0); //  live attempts die with the process
    return self;
}

void
ledger_destroy (ledger_t **self_p)
{
    assert (self_p);
    ledger_t *self = *self_p;
    if (!self) {
        return;
    }
    checkpoint_destroy (&self->checkpoint); //  first: it reads the journal and the store
    coordinator_destroy (&self->coordinator);
    participant_destroy (&self->participant);
    pending_destroy (&self->pending);
    journal_destroy (&self->journal);
    accounts_destroy (&self->accounts);
    free (self->probed_ts);
    free (self->saved);
    free (self);
    *self_p = NULL;
}

void
ledger_set_ring (ledger_t *self, const ring_t *ring)
{
    assert (self && ring);
    self->ring = ring;
    self->self_index = ring_shard_find (ring, self->name);
    coordinator_set_ring (self->coordinator, ring);
    participant_set_ring (self->participant, ring, self->self_index);
    assert (self->self_index >= -1 && self->self_index < (int) ring_shard_count (ring));
}

bool
ledger_owns (const ledger_t *self, rl_id_t account_id)
{
    assert (self && self->ring);
    return self->self_index >= 0 && owner_of (self->ring, account_id) == self->self_index;
}

void
ledger_set_arcs (ledger_t *self, arcs_t *arcs)
{
    assert (self);
    self->arcs = arcs;
    participant_set_arcs (self->participant, arcs);
}

arcs_t *
ledger_arcs (const ledger_t *self)
{
    assert (self);
    return self->arcs;
}

void
ledger_set_imported (ledger_t *self)
{
    assert (self);
    self->imported = true;
    journal_set_imported (self->journal);
}

bool
ledger_frozen (const ledger_t *self, rl_id_t account_id)
{
    assert (self);
    //  Almost always nothing waits for data: no hashing then.
    return self->arcs && arcs_waiting (self->arcs) && ledger_owns (self, account_id)
           && !arcs_received_id (self->arcs, account_id);
}

coordinator_t *
ledger_coordinator (ledger_t *self)
{
    assert (self && self->coordinator);
    return self->coordinator;
}

participant_t *
ledger_participant (ledger_t *self)
{
    assert (self && self->participant);
    return self->participant;
}

//  Accounts -----------------------------------------------------------------

static rl_result_rec_t
s_create_account (ledger_t *self, const rl_account_t *a, now_t now)
{
    rl_result_rec_t r = {0};
    if (rl_id_is_zero (a->id)) {
        r.result = RL_ID_MUST_NOT_BE_ZERO;
        return r;
    }
    if (rl_id_is_max (a->id)) {
        r.result = RL_ID_MUST_NOT_BE_INT_MAX;
        return r;
    }
    if (!ledger_owns (self, a->id)) {
        r.result = RL_WRONG_SHARD;
        return r;
    }
    if (ledger_frozen (self, a->id)) {
        r.result = RL_FROZEN; //  it may exist where the data still is
        return r;
    }
    r.result = accounts_check_new (self->accounts, a, &r.timestamp);
    if (r.result != RL_OK) {
        return r;
    }
    rl_account_t account = *a;
    account.timestamp = journal_next_ts (self->journal, now.wall_ns);
    if (accounts_insert (self->accounts, &account) != 0) {
        rl_error ("ledger: account table full (%zu accounts)", accounts_count (self->accounts));
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    r.timestamp = account.timestamp;
    return r;
}

//  An id that field validation lets through to the ownership checks.
static bool
s_id_usable (rl_id_t id)
{
    return !rl_id_is_zero (id) && !rl_id_is_max (id);
}

//  Answers every record of the piece `frozen` (nothing looked at, nothing
//  applied, no id burned) when one of them would be: the records of one
//  request then keep their order on this shard, whatever moves.
static void
s_piece_frozen (rl_result_rec_t *results, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        results[i] = (rl_result_rec_t){.index = (uint32_t) i, .result = RL_FROZEN};
    }
}

bool
ledger_piece_frozen_accounts (const ledger_t *self, const rl_account_t *accounts, size_t count)
{
    assert (self);
    if (!self->arcs || !arcs_waiting (self->arcs)) {
        return false; //  almost always: no hashing then
    }
    for (size_t i = 0; i < count; i++) {
        if (s_id_usable (accounts[i].id) && ledger_frozen (self, accounts[i].id)) {
            return true;
        }
    }
    return false;
}

bool
ledger_piece_frozen_transfers (const ledger_t *self, const rl_transfer_t *transfers, size_t count)
{
    assert (self);
    if (!self->arcs || !arcs_waiting (self->arcs)) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        const rl_transfer_t *t = &transfers[i];
        if (!s_id_usable (t->debit_account_id)) {
            continue; //  field validation names it, whatever moves
        }
        if (ledger_frozen (self, t->debit_account_id)) {
            return true;
        }
        //  A same-shard transfer whose credit account is frozen here.
        if (s_id_usable (t->credit_account_id) && ledger_owns (self, t->debit_account_id)
            && ledger_frozen (self, t->credit_account_id)) {
            return true;
        }
    }
    return false;
}

void
ledger_create_accounts (ledger_t *self, const rl_account_t *accounts, size_t count, now_t now,
                        rl_result_rec_t *results)
{
    assert (self);
    assert (count == 0 || (accounts && results));
    if (ledger_piece_frozen_accounts (self, accounts, count)) {
        s_piece_frozen (results, count);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        results[i] = s_create_account (self, &accounts[i], now);
        results[i].index = (uint32_t) i;
    }
}

//  Transfers ----------------------------------------------------------------

//  A stored transfer by id: the shard's own records, then the ones a
//  migration imported (their debit account moved here). 1, 0, or -1.
static int
s_find (ledger_t *self, rl_id_t id, rl_transfer_t *out)
{
    int found = journal_find (self->journal, id, out);
    if (found == 0 && self->imported && journal_may_hold (self->journal, id)) {
        found = imported_find (self->store, id, out);
    }
    return found;
}

//  s_find with the ingested index's answer from journal_probe (probed_ts).
static int
s_find_probed (ledger_t *self, rl_id_t id, uint64_t probed_ts, rl_transfer_t *out)
{
    int found = journal_find_probed (self->journal, id, probed_ts, out);
    //  An id the filter never saw was not imported either (journal.c, invariant 8).
    if (found == 0 && self->imported && probed_ts != JOURNAL_PROBE_NONE
        && journal_may_hold (self->journal, id)) {
        found = imported_find (self->store, id, out);
    }
    return found;
}

static uint32_t
s_transfer_exists (const rl_transfer_t *t, const rl_transfer_t *stored)
{
    //  `linked` says where a record stood in its request, not what it is:
    //  a member of an applied chain retried alone, without it, is `exists`
    //  (docs/payments.md, "Linked chains").
    if ((t->flags & ~RL_TRANSFER_LINKED) != (stored->flags & ~RL_TRANSFER_LINKED)) {
        return RL_EXISTS_WITH_DIFFERENT_FLAGS;
    }
    if (!rl_id_eq (t->debit_account_id, stored->debit_account_id)) {
        return RL_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID;
    }
    //  A post or void stores what it inherited from its pending transfer:
    //  a field the retry leaves 0 is that one (docs/protocol.md).
    bool resolve = (t->flags & PENDING_RESOLVE_FLAGS) != 0;
    if (!rl_id_eq (t->credit_account_id, stored->credit_account_id)
        && !(resolve && rl_id_is_zero (t->credit_account_id))) {
        return RL_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID;
    }
    if (t->amount != stored->amount && !(resolve && t->amount == 0)) {
        return RL_EXISTS_WITH_DIFFERENT_AMOUNT;
    }
    if (!rl_id_eq (t->pending_id, stored->pending_id)) {
        return RL_EXISTS_WITH_DIFFERENT_PENDING_ID;
    }
    if (!rl_id_eq (t->user_data_128, stored->user_data_128)) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_128;
    }
    if (t->user_data_64 != stored->user_data_64) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_64;
    }
    if (t->user_data_32 != stored->user_data_32) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_32;
    }
    if (t->timeout != stored->timeout) {
        return RL_EXISTS_WITH_DIFFERENT_TIMEOUT;
    }
    if (t->ledger != stored->ledger && !(resolve && t->ledger == 0)) {
        return RL_EXISTS_WITH_DIFFERENT_LEDGER;
    }
    if (t->code != stored->code && !(resolve && t->code == 0)) {
        return RL_EXISTS_WITH_DIFFERENT_CODE;
    }
    //  Same record: the original outcome, ok or the failure that burned it.
    uint32_t result = JOURNAL_RESULT (stored->reserved);
    return result == RL_OK ? RL_EXISTS : result;
}

//  The stored record of id with this debit account (s_find, and the one of
//  that debit account when a migration brought several): 1, 0, -1.
static int
s_find_debit (ledger_t *self, rl_id_t id, rl_id_t debit_account_id, rl_transfer_t *out)
{
    int found = s_find (self, id, out);
    if (found == 1 && self->imported && !rl_id_eq (out->debit_account_id, debit_account_id)) {
        rl_transfer_t mine;
        int rc = imported_find_debit (self->store, id, debit_account_id, &mine);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1) {
            *out = mine;
        }
    }
    return found;
}

//  s_transfer_exists against a record stored here, with the one rule that
//  needs the pending transfer too (as TigerBeetle's): a post or void sent
//  again with amount 0 means the whole pending amount, so a post stored
//  with less (a partial post of that id) is exists_with_different_amount,
//  not exists. The pending transfer is read only then.
static uint32_t
s_stored_exists (ledger_t *self, const rl_transfer_t *t, const rl_transfer_t *stored)
{
    uint32_t result = s_transfer_exists (t, stored);
    if (result != RL_EXISTS || t->amount != 0 || !(t->flags & PENDING_RESOLVE_FLAGS)) {
        return result;
    }
    rl_transfer_t p;
    int found = s_find_debit (self, stored->pending_id, stored->debit_account_id, &p);
    if (found < 0) {
        return RL_STORAGE_ERROR;
    }
    return found == 1 && (p.flags & RL_TRANSFER_PENDING) && p.amount != stored->amount
               ? RL_EXISTS_WITH_DIFFERENT_AMOUNT
               : RL_EXISTS;
}

//  participant_ids_t.check: what a create of a debit leg's transfer would
//  answer about its id here (participant.h).
static uint32_t
s_leg_id_check (void *arg, const rl_transfer_t *t, uint64_t *ts_p)
{
    ledger_t *self = arg;
    *ts_p = 0;
    rl_transfer_t stored;
    int found = s_find_debit (self, t->id, t->debit_account_id, &stored);
    if (found < 0) {
        return RL_STORAGE_ERROR;
    }
    if (found) {
        rl_transfer_t plain = *t; //  the leg flags say how it travelled, not what it is
        plain.flags &= (uint16_t) ~RL_TRANSFER_TP_LEGS;
        *ts_p = stored.timestamp;
        return s_stored_exists (self, &plain, &stored);
    }
    return coordinator_is_live (self->coordinator, t->id) ? RL_IN_PROGRESS : RL_OK;
}

//  participant_ids_t.resolve: a post or void leg from a chain's shard
//  (participant.h), checked as s_post_or_void checks one here, its side
//  fitting its kind.
static uint32_t
s_leg_resolve (void *arg, const rl_transfer_t *t, int coordinator, uint64_t wall_ns,
               rl_transfer_t *resolved)
{
    ledger_t *self = arg;
    rl_transfer_t p;
    int found = s_find (self, t->pending_id, &p);
    if (found < 0) {
        return RL_STORAGE_ERROR;
    }
    if (!found
        && (coordinator_is_live (self->coordinator, t->pending_id)
            || participant_debit_live (self->participant, t->pending_id))) {
        return RL_IN_PROGRESS; //  in flight: not made yet, nor refused
    }
    int side = found ? pending_side (self->pending, p.id) : -1;
    if (side >= 0
        && (s_pending_held (self, p.debit_account_id)
            || (side == PENDING_SIDE_BOTH && s_pending_held (self, p.credit_account_id)))) {
        return RL_FROZEN; //  a migration holds it as it is
    }
    uint64_t last = journal_last_ts (self->journal);
    uint32_t result = pending_check (self->pending, t, found ? &p : NULL,
                                     wall_ns > last ? wall_ns : last, resolved);
    if (result != RL_OK) {
        return result;
    }
    //  A debit leg: P's credit side on the coordinator's shard (which
    //  resolved the record), or on a third shard (the record names P's
    //  credit account; the coordinator sends that shard its credit leg).
    bool both = (t->flags & RL_TRANSFER_TP_LEGS) == RL_TRANSFER_TP_BOTH_LEGS;
    int credit_owner = owner_of (self->ring, p.credit_account_id);
    if (both && side == PENDING_SIDE_DEBIT && credit_owner >= 0 && credit_owner == coordinator) {
        //  P's credit side is the chain's shard's, which did not have it yet
        //  when it sent this (P's COMMIT still on its way there): retry.
        return RL_IN_PROGRESS;
    }
    if (both ? side != PENDING_SIDE_BOTH
             : side != PENDING_SIDE_DEBIT || coordinator < 0 || credit_owner < 0
                   || credit_owner == self->self_index) {
        rl_warn ("ledger: post or void leg %016" PRIx64 "%016" PRIx64 " of pending transfer "
                 "%016" PRIx64 "%016" PRIx64 ", whose credit is on a third shard and not named "
                 "by the record: not_supported",
                 t->id.hi, t->id.lo, t->pending_id.hi, t->pending_id.lo);
        return RL_NOT_SUPPORTED;
    }
    return RL_OK;
}

//  participant_ids_t.applied: the id stored here applied, with this debit account.
static int
s_leg_applied (void *arg, rl_id_t id, rl_id_t debit_account_id, uint64_t *ts_p)
{
    ledger_t *self = arg;
    rl_transfer_t stored;
    int found = s_find_debit (self, id, debit_account_id, &stored);
    if (found <= 0) {
        return found;
    }
    *ts_p = stored.timestamp;
    return rl_id_eq (stored.debit_account_id, debit_account_id)
           && JOURNAL_RESULT (stored.reserved) == RL_OK;
}

static uint32_t
s_transfer_validate (const rl_transfer_t *t)
{
    if (t->timestamp != 0) {
        return RL_TIMESTAMP_MUST_BE_ZERO;
    }
    if (t->reserved != 0) {
        return RL_RESERVED_FIELD;
    }
    if (t->flags & ~RL_TRANSFER_FLAGS_KNOWN) {
        return RL_RESERVED_FLAG;
    }
    if (t->flags & PENDING_FLAGS) {
        return pending_validate (t); //  pending, post, void (pending.c)
    }
    if (t->flags & ~RL_TRANSFER_LINKED) {
        return RL_NOT_SUPPORTED; //  balancing: not yet served
    }
    if (rl_id_is_zero (t->debit_account_id)) {
        return RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
    }
    if (rl_id_is_max (t->debit_account_id)) {
        return RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
    }
    if (rl_id_is_zero (t->credit_account_id)) {
        return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
    }
    if (rl_id_is_max (t->credit_account_id)) {
        return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
    }
    if (rl_id_eq (t->debit_account_id, t->credit_account_id)) {
        return RL_ACCOUNTS_MUST_BE_DIFFERENT;
    }
    if (!rl_id_is_zero (t->pending_id)) {
        return RL_PENDING_ID_MUST_BE_ZERO;
    }
    if (t->timeout != 0) {
        return RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER;
    }
    if (t->amount == 0) {
        return RL_AMOUNT_MUST_NOT_BE_ZERO;
    }
    if (t->ledger == 0) {
        return RL_LEDGER_MUST_NOT_BE_ZERO;
    }
    if (t->code == 0) {
        return RL_CODE_MUST_NOT_BE_ZERO;
    }
    return RL_OK;
}

//  The credit side's checks of the post or void `record` of a cross-shard
//  pending transfer whose two sides are both here (a migration brought
//  them together). false: no outcome yet (*result frozen, in_progress, a
//  storage error, or aborted: the credit account is here but not its
//  credit side); true: *result is the outcome of these checks (ok, or a
//  business failure).
static bool
s_credit_side_check (ledger_t *self, const rl_transfer_t *record, uint32_t *result)
{
    if (ledger_frozen (self, record->credit_account_id)) {
        *result = RL_FROZEN;
        return false;
    }
    *result = pending_credit_check (self->pending, record);
    if (*result == RL_STORAGE_ERROR || *result == RL_IN_PROGRESS || *result == RL_FROZEN) {
        return false;
    }
    if (*result == RL_PENDING_TRANSFER_NOT_FOUND) {
        rl_warn ("ledger: pending transfer %016" PRIx64 "%016" PRIx64
                 ": its credit account is here but not its credit side: aborted",
                 record->pending_id.hi, record->pending_id.lo);
        *result = RL_ABORTED;
        return false;
    }
    return true;
}

//  A post, void or expiry `record` (pending_check accepted it) of a
//  cross-shard pending transfer whose credit side is here too: a migration
//  brought one side beside the other (docs/rebalance.md, "Pending
//  transfers move"). Both sides are resolved here, in one step, like a
//  same-shard one: the credit side's checks (participant.c's) first. Its
//  outcome is stored like any transfer's, except in_progress (the credit
//  side is claimed by the attempt of a former owner of the debit account,
//  whose decision is on its way), frozen, and a credit side not found
//  (aborted, with a log line: the drain of a migration makes it
//  impossible), which are not decided.
static rl_result_rec_t
s_resolve_here (ledger_t *self, const rl_transfer_t *record, uint64_t ts)
{
    rl_result_rec_t r = {0};
    if (!s_credit_side_check (self, record, &r.result)) {
        return r;
    }
    rl_transfer_t stored = *record;
    stored.timestamp = ts;
    stored.reserved = JOURNAL_STORED (r.result, JOURNAL_LEG_BOTH);
    if (journal_append (self->journal, &stored) != 0) {
        rl_error ("ledger: out of memory for the recent index");
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (r.result == RL_OK) {
        pending_apply_here (self->pending, &stored);
    }
    r.timestamp = ts;
    return r;
}

//  The code of a post or void of pending_id in a chain (group) one of
//  whose earlier members resolves that pending transfer already: already
//  posted (or voided), as on one shard; 0 when none does.
static uint32_t
s_resolved_in_chain (ledger_t *self, uint32_t group, rl_id_t pending_id)
{
    const rl_transfer_t *twice = coordinator_group_resolving (self->coordinator, group, pending_id);
    if (!twice) {
        return 0;
    }
    return (twice->flags & RL_TRANSFER_POST_PENDING_TRANSFER) ? RL_PENDING_TRANSFER_ALREADY_POSTED
                                                              : RL_PENDING_TRANSFER_ALREADY_VOIDED;
}

//  A post or void of a pending transfer that an earlier member of its own
//  chain across shards makes (held, not in the pending table yet): checked
//  against the member as pending_check checks the table. When that pending
//  transfer is this shard's alone: held, and applied at the commit right
//  after it (the group decides its members in record order). When its
//  credit is on another shard C: an attempt of the group towards C, which
//  prepares it against the pending transfer's prepared credit leg
//  (participant.c, "Posts of a chain's own pending transfer"); at the
//  commit this shard adds the debit side and then applies the post or
//  void to it, C the same to its credit side. One of a pending transfer
//  debiting another shard (a debit leg) is not_supported.
static rl_result_rec_t
s_post_or_void_member (ledger_t *self, const rl_transfer_t *t, const rl_transfer_t *member,
                       now_t now, int32_t request, uint32_t index, uint32_t group)
{
    rl_result_rec_t r = {0};
    r.result = s_resolved_in_chain (self, group, t->pending_id);
    if (r.result != 0) {
        return r; //  resolved by an earlier member of this chain, as on one shard
    }
    rl_transfer_t p = *member;
    p.flags &= (uint16_t) ~(RL_TRANSFER_LINKED | RL_TRANSFER_TP_LEGS);
    p.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
    rl_transfer_t record = *t;
    r.result = pending_check_member (self->pending, t, &p, &record);
    if (r.result != RL_OK) {
        return r; //  the member's own code: its chain fails, nothing stored
    }
    int debit_owner = owner_of (self->ring, p.debit_account_id);
    int credit_owner = owner_of (self->ring, p.credit_account_id);
    if (debit_owner == self->self_index && credit_owner == self->self_index) {
        return coordinator_hold_local (self->coordinator, &record, now, request, index, group);
    }
    if (debit_owner != self->self_index || (member->flags & RL_TRANSFER_TP_LEGS)) {
        rl_warn ("ledger: a linked chain across shards posts or voids its own pending transfer "
                 "%016" PRIx64 "%016" PRIx64 " debiting another shard: not_supported",
                 t->pending_id.hi, t->pending_id.lo);
        r.result = RL_NOT_SUPPORTED;
        return r;
    }
    if (credit_owner < 0) {
        r.result = RL_ABORTED; //  no shard owns it in this ring: retry
        return r;
    }
    return coordinator_begin (self->coordinator, &record, credit_owner, now, request, index, group);
}

//  A post or void of a pending transfer of this shard (pending.c): its
//  outcome is final from here, stored like any transfer's. The record
//  stored for an ok one carries what it inherited (accounts, ledger, code,
//  the amount posted or voided).
//  A cross-shard pending transfer's post or void (its credit on another
//  shard) is decided by a two-phase attempt: pending_check's rules first,
//  here, then the credit shard's (coordinator.c, participant.c).
//  In a linked chain that needs other shards (group), an ok one is a
//  member of the chain's group: held here until the chain is decided
//  (its pending transfer claimed), or, its credit on another shard, an
//  attempt of the group.
static rl_result_rec_t
s_post_or_void (ledger_t *self, const rl_transfer_t *t, now_t now, int32_t request, uint32_t index,
                bool chained, uint32_t group)
{
    rl_result_rec_t r = {0};
    const rl_transfer_t *member = coordinator_group_member (self->coordinator, group,
                                                            t->pending_id);
    if (member) {
        return s_post_or_void_member (self, t, member, now, request, index, group);
    }
    rl_transfer_t p;
    int found = s_find (self, t->pending_id, &p);
    if (found < 0) {
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (!found
        && (coordinator_is_live (self->coordinator, t->pending_id)
            || participant_debit_live (self->participant, t->pending_id))) {
        //  Its pending transfer is in flight (a two-phase attempt, held in a
        //  chain across shards, or prepared here as a chain's debit leg): not
        //  made yet, nor refused; not_found would burn this id for good.
        r.result = RL_IN_PROGRESS;
        return r;
    }
    //  A same-shard one whose credit account a migration holds frozen (or
    //  gave away, the handover not done yet): its state must not change,
    //  nor expire, before the handover (s_pending_held).
    if (found && pending_side (self->pending, p.id) == PENDING_SIDE_BOTH
        && s_pending_held (self, p.credit_account_id)) {
        r.result = RL_FROZEN;
        return r;
    }
    uint64_t ts = journal_next_ts (self->journal, now.wall_ns);
    rl_transfer_t record = *t;
    r.result = pending_check (self->pending, t, found ? &p : NULL, ts, &record);
    uint32_t twice = r.result == RL_IN_PROGRESS ? s_resolved_in_chain (self, group, t->pending_id)
                                                : 0;
    if (twice != 0) {
        //  Claimed by an earlier member of this chain: answered as on one
        //  shard, where that member would have resolved it already.
        r.result = twice;
        return r;
    }
    if (r.result == RL_STORAGE_ERROR || r.result == RL_IN_PROGRESS) {
        return r; //  nothing stored: the outcome is not decided
    }
    int credit_owner = r.result == RL_OK && pending_is_debit_side (self->pending, t->pending_id)
                           ? owner_of (self->ring, p.credit_account_id)
                           : -2; //  -2: not a debit side
    if (chained && credit_owner != -2 && (group == 0 || credit_owner == self->self_index)) {
        //  Both sides here since a migration (two entries), in a chain: a
        //  chain of this shard alone runs in this turn (s_chain_group makes
        //  one holding such a post or void a group).
        if (group == 0) {
            rl_warn ("ledger: a linked chain's post or void %016" PRIx64 "%016" PRIx64
                     " of a cross-shard pending transfer outside a group: not_supported",
                     t->id.hi, t->id.lo);
            r.result = RL_NOT_SUPPORTED;
            return r;
        }
        if (!s_credit_side_check (self, &record, &r.result)) {
            return r;
        }
        if (r.result == RL_OK) {
            //  Held, both sides claimed, until the chain is decided (its
            //  commit applies both: coordinator.c, s_local_end).
            r = coordinator_hold_local (self->coordinator, &record, now, request, index, group);
            if (r.result == COORDINATOR_PENDING) {
                int rc = pending_credit_claim (self->pending, &record, true);
                assert (rc == 0); //  pending_credit_check found it live and unclaimed
                (void) rc;
            }
            return r;
        }
        //  A failure of the credit side's checks: the member's own code.
    } else if (credit_owner != -2) {
        if (credit_owner >= 0 && credit_owner == self->self_index) {
            return s_resolve_here (self, &record, ts); //  a migration brought both sides here
        }
        if (credit_owner < 0) {
            r.result = RL_ABORTED; //  no shard owns it in this ring: retry
            return r;
        }
        return coordinator_begin (self->coordinator, &record, credit_owner, now, request, index,
                                  group);
    }
    if (r.result == RL_OK && group != 0) {
        //  Held (its pending transfer claimed) until its chain is decided.
        return coordinator_hold_local (self->coordinator, &record, now, request, index, group);
    }
    record.timestamp = ts;
    record.reserved = JOURNAL_STORED (r.result, JOURNAL_LEG_BOTH);
    if (journal_append (self->journal, &record) != 0) {
        rl_error ("ledger: out of memory for the recent index");
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (r.result == RL_OK) {
        pending_apply (self->pending, &record);
    }
    r.timestamp = ts;
    return r;
}

//  A member of a chain of this shard that posts or voids a pending
//  transfer P debiting another shard X (docs/two-phase.md, "Post legs"):
//  X resolves it against P and claims P, as a post or void of P there
//  would. P's credit side here: resolved here first against this side's
//  copy of P, that side claimed, and sent resolved as a debit leg (X
//  checks that P's credit is this shard's); a business failure here fails
//  the member unless X holds its id stored (exists: "doomed", as a debit
//  leg's credit). Else, when the record names P's credit account and that
//  is a third shard Y's, a debit leg at X as the client gave it, then a
//  credit leg at Y (coordinator.c, "Credit on a third shard"); else P must
//  be X's alone (both sides there): sent as the client gave it, as both
//  legs (P's credit on a third shard, not named: X refuses it
//  not_supported). A post or void of a pending transfer that an earlier
//  member of this chain makes debiting X is not_supported.
static rl_result_rec_t
s_post_leg (ledger_t *self, const rl_transfer_t *t, int debit_owner, now_t now, int32_t request,
            uint32_t index, uint32_t group)
{
    rl_result_rec_t r = {0};
    r.result = s_resolved_in_chain (self, group, t->pending_id);
    if (r.result != 0) {
        return r; //  resolved by an earlier member of this chain, as on one shard
    }
    if (coordinator_group_member (self->coordinator, group, t->pending_id)) {
        rl_warn ("ledger: a linked chain across shards posts or voids its own pending transfer "
                 "%016" PRIx64 "%016" PRIx64 " debiting another shard: not_supported",
                 t->pending_id.hi, t->pending_id.lo);
        r.result = RL_NOT_SUPPORTED;
        return r;
    }
    int state = pending_credit_state (self->pending, t->pending_id, t->debit_account_id);
    if (state < 0) {
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (state == PENDING_STATE_NONE) {
        //  P's credit side is not here: on X (both legs), or, when the
        //  client names P's credit account and that is a third shard's,
        //  there (a debit leg at X, then a credit leg at that shard).
        int credit_owner = rl_id_is_zero (t->credit_account_id)
                                   || rl_id_is_max (t->credit_account_id)
                               ? -1
                               : owner_of (self->ring, t->credit_account_id);
        bool third = credit_owner >= 0 && credit_owner != self->self_index
                     && credit_owner != debit_owner;
        return coordinator_begin_post_leg (self->coordinator, t, debit_owner,
                                           third ? RL_TRANSFER_TP_DEBIT_LEG
                                                 : RL_TRANSFER_TP_BOTH_LEGS,
                                           0, third, now, request, index, group);
    }
    rl_transfer_t record = *t;
    uint32_t result = pending_credit_resolve (self->pending, t, &record);
    if (result == RL_OK && ledger_frozen (self, record.credit_account_id)) {
        result = RL_FROZEN;
    }
    if (result != RL_OK && rl_result_burns (result) != RL_BURNS_YES) {
        r.result = result; //  retryable: the chain is answered it, nothing stored
        return r;
    }
    if (result != RL_OK) {
        //  Its id may be stored at X (this chain applied before): asked as
        //  the client gave it, reserving nothing here.
        return coordinator_begin_post_leg (self->coordinator, t, debit_owner,
                                           RL_TRANSFER_TP_BOTH_LEGS, result, false, now, request,
                                           index, group);
    }
    r = coordinator_begin_post_leg (self->coordinator, &record, debit_owner,
                                    RL_TRANSFER_TP_DEBIT_LEG, 0, false, now, request, index, group);
    if (r.result == COORDINATOR_PENDING) {
        int rc = pending_credit_claim (self->pending, &record, true);
        assert (rc == 0); //  pending_credit_resolve found it live and unclaimed
        (void) rc;
    }
    return r;
}

//  Records between a prefetch of a record's lookups and the lookups.
#define S_PREFETCH_AHEAD 8

//  A member of a chain of this shard whose debit account is another
//  shard's X (docs/two-phase.md, "Debit legs"): its id is X's, which
//  checks it and the debit; here only what this shard can tell: the id not
//  live here (the same record twice in the chain is a repeat, as any
//  member), nor its commit on its way to X (in_progress until X has it),
//  its fields, and the credit side when it is here. A credit account on a
//  third shard: its credit leg follows X's PREPARED (docs/two-phase.md,
//  "Credit on a third shard").
static rl_result_rec_t
s_create_leg (ledger_t *self, const rl_transfer_t *t, now_t now, int32_t request, uint32_t index,
              uint32_t group)
{
    rl_result_rec_t r = {0};
    int debit_owner = owner_of (self->ring, t->debit_account_id);
    if (debit_owner < 0) {
        r.result = RL_ABORTED; //  no shard owns it in this ring: retry
        return r;
    }
    if (coordinator_is_live (self->coordinator, t->id)) {
        const rl_transfer_t *member = coordinator_group_member (self->coordinator, group, t->id);
        if (member) {
            rl_transfer_t live = *member;
            live.flags &= (uint16_t) ~RL_TRANSFER_TP_LEGS;
            live.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
            r.result = s_transfer_exists (t, &live);
            if (r.result == RL_EXISTS) {
                return coordinator_group_repeat (self->coordinator, group, t->id, index);
            }
            return r;
        }
        r.result = RL_IN_PROGRESS;
        return r;
    }
    if (coordinator_leg_committing (self->coordinator, t->id)) {
        r.result = RL_IN_PROGRESS; //  committed, not yet stored at X (acknowledged)
        return r;
    }
    r.result = s_transfer_validate (t);
    if (r.result != RL_OK) {
        return r;
    }
    if (t->flags & PENDING_RESOLVE_FLAGS) {
        return s_post_leg (self, t, debit_owner, now, request, index, group);
    }
    int credit_owner = owner_of (self->ring, t->credit_account_id);
    if (credit_owner < 0) {
        r.result = RL_ABORTED;
        return r;
    }
    if (credit_owner == self->self_index) {
        if (ledger_frozen (self, t->credit_account_id)) {
            r.result = RL_FROZEN;
            return r;
        }
        if ((t->flags & RL_TRANSFER_PENDING) && !pending_room (self->pending)) {
            r.result = RL_BUSY; //  its credit side could not be kept here
            return r;
        }
        return coordinator_begin_leg (self->coordinator, t, debit_owner, RL_TRANSFER_TP_DEBIT_LEG,
                                      false, now, request, index, group);
    }
    if (credit_owner == debit_owner) {
        return coordinator_begin_leg (self->coordinator, t, debit_owner, RL_TRANSFER_TP_BOTH_LEGS,
                                      false, now, request, index, group);
    }
    //  Its credit on a third shard: its debit leg first, then its credit
    //  leg (docs/two-phase.md, "Credit on a third shard"), a pending
    //  transfer's too (its debit side at X, its credit side at Y).
    return coordinator_begin_leg (self->coordinator, t, debit_owner, RL_TRANSFER_TP_DEBIT_LEG, true,
                                  now, request, index, group);
}

//  probed_ts: the ingested index's answer for t->id (journal_probe).
//  chained: t is a member of a linked chain (s_chain_*); group: the
//  coordinator's group of that chain when it credits other shards (0: the
//  chain runs on this shard alone).
static rl_result_rec_t
s_create_transfer (ledger_t *self, const rl_transfer_t *t, uint64_t probed_ts, now_t now,
                   int32_t request, uint32_t index, bool chained, uint32_t group)
{
    rl_result_rec_t r = {0};
    if (rl_id_is_zero (t->id)) {
        r.result = RL_ID_MUST_NOT_BE_ZERO;
        return r;
    }
    if (rl_id_is_max (t->id)) {
        r.result = RL_ID_MUST_NOT_BE_INT_MAX;
        return r;
    }
    //  The debit account's shard keeps the id (an invalid debit id is named
    //  by field validation below, on whichever shard the record reached),
    //  except in a chain of this shard: a debit leg there.
    if (!rl_id_is_zero (t->debit_account_id) && !rl_id_is_max (t->debit_account_id)
        && !ledger_owns (self, t->debit_account_id)) {
        if (group != 0) {
            return s_create_leg (self, t, now, request, index, group);
        }
        r.result = RL_WRONG_SHARD;
        return r;
    }
    //  The id lives with the debit account's data: where that has not
    //  arrived, neither has the id's record, so nothing can be decided.
    if (!rl_id_is_zero (t->debit_account_id) && !rl_id_is_max (t->debit_account_id)
        && ledger_frozen (self, t->debit_account_id)) {
        r.result = RL_FROZEN;
        return r;
    }
    rl_transfer_t stored;
    int found = s_find_probed (self, t->id, probed_ts, &stored);
    if (found < 0) {
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (found && self->imported && !rl_id_eq (stored.debit_account_id, t->debit_account_id)) {
        //  One id, several debit accounts (imported.c, 'I'): this one's record.
        rl_transfer_t mine;
        int rc = imported_find_debit (self->store, t->id, t->debit_account_id, &mine);
        found = rc < 0 ? rc : found;
        stored = rc == 1 ? mine : stored;
    }
    if (found < 0) {
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (found) {
        r.result = s_stored_exists (self, t, &stored);
        r.timestamp = stored.timestamp;
        return r;
    }
    if (coordinator_is_live (self->coordinator, t->id)) {
        const rl_transfer_t *member = coordinator_group_member (self->coordinator, group, t->id);
        if (member) {
            //  The same id twice in this very chain: as on one shard, the
            //  same record (exists: decided with its chain) or taken.
            rl_transfer_t live = *member;
            live.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
            r.result = s_transfer_exists (t, &live);
            if (r.result == RL_EXISTS) {
                //  Answered with the member once the chain is decided: exists
                //  with its timestamp, or linked_event_failed.
                return coordinator_group_repeat (self->coordinator, group, t->id, index);
            }
            return r;
        }
        r.result = RL_IN_PROGRESS; //  one live attempt per id: wait for its decision
        return r;
    }
    if (participant_debit_live (self->participant, t->id)) {
        //  A chain of another shard holds it as its member's debit leg
        //  (docs/two-phase.md, "Debit legs"): its decision comes from there.
        r.result = RL_IN_PROGRESS;
        return r;
    }
    r.result = s_transfer_validate (t);
    if (r.result != RL_OK) {
        return r;
    }
    if (t->flags & PENDING_RESOLVE_FLAGS) {
        return s_post_or_void (self, t, now, request, index, chained, group);
    }
    int credit_owner = owner_of (self->ring, t->credit_account_id);
    if (credit_owner < 0) {
        r.result = RL_ABORTED; //  no shard owns it in this ring: nothing done, retry
        return r;
    }
    if (chained && group == 0 && credit_owner != self->self_index) {
        //  A member crediting another shard in a chain that is no group
        //  here: the chain is placed on another shard (its lead debits an
        //  account there, s_chain_group) or cannot be placed. It may not
        //  begin a two-phase transfer alone: wrong_shard, as its lead is.
        r.result = RL_WRONG_SHARD;
        return r;
    }
    if (r.result == RL_OK && (t->flags & RL_TRANSFER_PENDING) && !pending_room (self->pending)) {
        rl_warn ("ledger: %zu transfers pending: no room for another",
                 pending_live_count (self->pending));
        r.result = RL_BUSY;
        return r;
    }
    if (credit_owner != self->self_index) {
        return coordinator_begin (self->coordinator, t, credit_owner, now, request, index, group);
    }
    if (ledger_frozen (self, t->credit_account_id)) {
        r.result = RL_FROZEN; //  not credit_account_not_found: it may exist elsewhere still
        return r;
    }
    if (group != 0) {
        //  Held (both sides reserved) until its chain is decided.
        return coordinator_hold_local (self->coordinator, t, now, request, index, group);
    }
    accounts_pair_t pair = {0};
    r.result = accounts_transfer_check (self->accounts, t, &pair);
    //  From here the outcome is final for this id: store it (ok or burned).
    rl_transfer_t record = *t;
    record.timestamp = journal_next_ts (self->journal, now.wall_ns);
    record.reserved = JOURNAL_STORED (r.result, JOURNAL_LEG_BOTH);
    if (journal_append (self->journal, &record) != 0) {
        rl_error ("ledger: out of memory for the recent index");
        r.result = RL_STORAGE_ERROR;
        return r;
    }
    if (r.result == RL_OK && (t->flags & RL_TRANSFER_PENDING)) {
        pending_add (self->pending, &record, &pair); //  reserves instead of posting
    } else if (r.result == RL_OK) {
        accounts_transfer_post (self->accounts, &pair, t->amount);
    }
    r.timestamp = record.timestamp;
    return r;
}

//  Linked chains ---------------------------------------------------------------
//
//  Records flagged `linked`, up to and including the first record without
//  the flag, succeed or fail together (docs/payments.md, "Linked chains").
//  The members are applied one by one, as any record, between a save
//  point and its release: the store's batch (a save point), the journal's
//  live generation (a mark), the pending table (an undo log) and the
//  records of the accounts the members touch (saved before each member).
//  When a member fails, all of it is taken back: the batch, and so the
//  group commit, holds either every member of a chain or none, and a crash
//  can never leave part of one. `exists` is not a failure (the member was
//  applied before: a retried chain answers `exists` for each). A chain
//  whose member credits another shard (s_chain_group) runs as a group of
//  the coordinator (coordinator.c, "Groups"): its members are held there,
//  decided together later; a member failing now cancels the group before
//  the undo, and the chain's last record launches it.

//  Saves the account's record before a member of the chain changes it.
//  -1 when memory ran out (nothing saved: the member must not run).
static int
s_chain_save (ledger_t *self, rl_id_t id)
{
    size_t slot = 0;
    if (!s_id_usable (id) || !accounts_slot (self->accounts, id, &slot)) {
        return 0; //  not held here: the member cannot change it
    }
    if (self->saved_count == self->saved_cap) {
        size_t cap = self->saved_cap ? self->saved_cap * 2 : 64;
        s_saved_t *saved = realloc (self->saved, cap * sizeof (*saved));
        if (!saved) {
            return -1;
        }
        self->saved = saved;
        self->saved_cap = cap;
    }
    self->saved[self->saved_count++] = (s_saved_t){slot, *accounts_at (self->accounts, slot)};
    return 0;
}

//  Saves every account the member may change: its two accounts and, for a
//  post or void, those of its pending transfer (an expiry found by the
//  check releases them). -1 when memory ran out.
static int
s_chain_save_member (ledger_t *self, const rl_transfer_t *t)
{
    if (s_chain_save (self, t->debit_account_id) != 0
        || s_chain_save (self, t->credit_account_id) != 0) {
        return -1;
    }
    if ((t->flags & PENDING_RESOLVE_FLAGS) && s_id_usable (t->pending_id)) {
        rl_transfer_t p;
        if (s_find (self, t->pending_id, &p) == 1
            && (s_chain_save (self, p.debit_account_id) != 0
                || s_chain_save (self, p.credit_account_id) != 0)) {
            return -1;
        }
    }
    return 0;
}

static void
s_chain_begin (ledger_t *self, size_t *journal_mark_p)
{
    store_batch_savepoint (self->store);
    *journal_mark_p = journal_mark (self->journal);
    pending_chain_begin (self->pending);
    self->saved_count = 0;
}

//  The chain's members all succeeded: their writes stay in the batch.
static void
s_chain_keep (ledger_t *self)
{
    int rc = store_batch_savepoint_pop (self->store);
    assert (rc == 0); //  s_chain_begin set it, nothing else took it
    (void) rc;
    pending_chain_end (self->pending, false);
    self->saved_count = 0;
}

//  A member failed: everything the chain did is taken back.
static void
s_chain_undo (ledger_t *self, size_t journal_mark)
{
    int rc = store_batch_rollback (self->store);
    assert (rc == 0);
    (void) rc;
    journal_rollback (self->journal, journal_mark);
    pending_chain_end (self->pending, true);
    while (self->saved_count > 0) { //  newest first: each slot ends as it was first saved
        const s_saved_t *saved = &self->saved[--self->saved_count];
        accounts_restore (self->accounts, saved->slot, &saved->account);
    }
}

//  What the other members of a failed chain are answered: the infrastructure
//  codes that a router or a client resends the whole chain for stand for
//  every member (wrong_shard, frozen, and in_progress: the chain, or a
//  member of it, is in flight), anything else makes them
//  linked_event_failed.
static uint32_t
s_chain_others (uint32_t failure)
{
    return failure == RL_WRONG_SHARD || failure == RL_FROZEN || failure == RL_IN_PROGRESS
               ? failure
               : RL_LINKED_EVENT_FAILED;
}

//  The member whose debit account places the chain starting at record
//  `start`: its first post or void, else its first member
//  (codec_transfer_places_chain, the router's rule too).
static size_t
s_chain_lead (const rl_transfer_t *transfers, size_t count, size_t start)
{
    for (size_t k = start; k < count; k++) {
        if (codec_transfer_places_chain (&transfers[k])) {
            return k;
        }
        if (!(transfers[k].flags & RL_TRANSFER_LINKED)) {
            break; //  the record closing the chain
        }
    }
    return start;
}

//  Does the chain starting at record `start` need other shards: a member
//  whose debit account is here credits an account another shard owns, or
//  a member debits an account of another shard (a debit leg there)? Then
//  it runs as a group of two-phase attempts (coordinator.c, "Groups"), if
//  this is the chain's shard, its lead's debit account here (s_chain_lead;
//  else its members are wrong_shard: a router sends it to that shard).
static bool
s_chain_group (const ledger_t *self, const rl_transfer_t *transfers, size_t count, size_t start)
{
    const rl_transfer_t *lead = &transfers[s_chain_lead (transfers, count, start)];
    if (!s_id_usable (lead->debit_account_id) || !ledger_owns (self, lead->debit_account_id)) {
        return false;
    }
    for (size_t k = start; k < count; k++) {
        const rl_transfer_t *t = &transfers[k];
        if (s_id_usable (t->debit_account_id) && s_id_usable (t->credit_account_id)
            && !(t->flags & PENDING_RESOLVE_FLAGS) && ledger_owns (self, t->debit_account_id)) {
            int owner = owner_of (self->ring, t->credit_account_id);
            if (owner >= 0 && owner != self->self_index) {
                return true;
            }
        }
        if ((t->flags & PENDING_RESOLVE_FLAGS) && self->pending && s_id_usable (t->pending_id)
            && pending_is_debit_side (self->pending, t->pending_id)) {
            return true; //  the post or void of a cross-shard pending transfer of this shard
        }
        if (s_id_usable (t->debit_account_id) && !ledger_owns (self, t->debit_account_id)
            && owner_of (self->ring, t->debit_account_id) >= 0) {
            return true;
        }
        if (!(t->flags & RL_TRANSFER_LINKED)) {
            break; //  the record closing the chain
        }
    }
    return false;
}

ledger_reply_t
ledger_create_transfers (ledger_t *self, const rl_transfer_t *transfers, size_t count, now_t now,
                         void *ctx, const rl_header_t *header, rl_result_rec_t *results)
{
    assert (self && header);
    assert (count == 0 || (transfers && results));
    if (ledger_piece_frozen_transfers (self, transfers, count)) {
        s_piece_frozen (results, count); //  before a request slot is taken
        return LEDGER_REPLY_NOW;
    }
    int32_t request = coordinator_request_new (self->coordinator);
    if (request < 0) {
        return LEDGER_BUSY;
    }
    //  The idempotency check of the whole request against the ingested
    //  index in one batched read (journal.c invariant 7): almost every id
    //  is new, and one MultiGet costs far less than a get per id.
    assert (count <= RL_BATCH_RECORDS_MAX);
    bool probed = journal_probe (self->journal, transfers, count, self->probed_ts) == 0;
    if (!probed) {
        for (size_t i = 0; i < count; i++) {
            self->probed_ts[i] = JOURNAL_PROBE_UNKNOWN; //  each id asks alone
        }
    }
    bool chain = false;      //  a linked chain is open
    size_t chain_start = 0;  //  its first member
    size_t journal_mark = 0; //  the journal's end before it
    uint32_t broken = RL_OK; //  not ok: a member failed, what the rest are answered
    uint32_t group = 0;      //  the chain's group when it credits other shards
    for (size_t i = 0; i < count; i++) {
        if (probed && i + S_PREFETCH_AHEAD < count) {
            journal_prefetch_probed (self->journal, transfers, i + S_PREFETCH_AHEAD);
        }
        const rl_transfer_t *t = &transfers[i];
        bool linked = (t->flags & RL_TRANSFER_LINKED) != 0;
        if (linked && !chain) {
            chain = true;
            chain_start = i;
            broken = RL_OK;
            s_chain_begin (self, &journal_mark);
            if (i < count - 1 && s_chain_group (self, transfers, count, i)) {
                group = coordinator_group_new (self->coordinator, request, (uint32_t) i);
                if (group == 0) {
                    rl_warn ("ledger: %d linked chains across shards in flight: busy",
                             RL_TP_GROUPS_MAX);
                }
            }
        }
        if (chain && linked && i == count - 1) {
            results[i] = (rl_result_rec_t){.result = RL_LINKED_EVENT_CHAIN_OPEN};
        } else if (chain && i == chain_start && group == 0 && linked && i < count - 1
                   && s_chain_group (self, transfers, count, i)) {
            results[i] = (rl_result_rec_t){.result = RL_BUSY}; //  no group to run it in
        } else if (chain && broken != RL_OK) {
            results[i] = (rl_result_rec_t){.result = broken};
        } else if (chain && s_chain_save_member (self, t) != 0) {
            rl_error ("ledger: out of memory for a linked chain's saved accounts");
            results[i] = (rl_result_rec_t){.result = RL_BUSY};
        } else {
            results[i] = s_create_transfer (self, t, self->probed_ts[i], now, request, (uint32_t) i,
                                            chain, group);
            assert (!chain || group != 0 || results[i].result != COORDINATOR_PENDING);
        }
        if (results[i].result != RL_OK && results[i].result != RL_EXISTS
            && results[i].result != COORDINATOR_PENDING) {
            results[i].timestamp = 0; //  only a transfer that exists has a timestamp
        }
        results[i].index = (uint32_t) i;
        uint32_t result = results[i].result;
        if (chain && broken == RL_OK && result != RL_OK && result != RL_EXISTS
            && result != COORDINATOR_PENDING) {
            //  The first failure of the chain: nothing of it stays.
            if (group != 0) {
                coordinator_group_cancel (self->coordinator, group); //  nothing was sent
                group = 0;
            }
            s_chain_undo (self, journal_mark);
            broken = s_chain_others (result);
            for (size_t k = chain_start; k < i; k++) {
                results[k] = (rl_result_rec_t){.index = (uint32_t) k, .result = broken};
            }
            if (broken != RL_LINKED_EVENT_FAILED) {
                results[i].result = broken;
            }
            rl_info ("ledger: linked chain of records %zu.. failed at record %zu (%s): "
                     "nothing of it applied",
                     chain_start, i, rl_result_name (result));
        }
        if (chain && (!linked || i == count - 1)) {
            if (broken == RL_OK) {
                s_chain_keep (self);
            }
            if (group != 0) {
                //  Its members are decided together later (or, none of them
                //  of another shard, applied now: results filled).
                coordinator_group_launch (self->coordinator, group, (uint32_t) i, results, now);
                group = 0;
            }
            //  A chain answered exists for every member was applied before.
            bool applied = false;
            for (size_t k = chain_start; k <= i; k++) {
                applied |= results[k].result == RL_OK;
            }
            self->payments.chains_committed += broken == RL_OK && applied;
            self->payments.chains_failed += broken != RL_OK;
            chain = false;
        }
    }
    assert (!chain);
    for (size_t i = 0; i < count; i++) {
        if (results[i].result == RL_OK) {
            uint16_t flags = transfers[i].flags;
            self->payments.pending += (flags & RL_TRANSFER_PENDING) != 0;
            self->payments.posted += (flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
            self->payments.voided += (flags & RL_TRANSFER_VOID_PENDING_TRANSFER) != 0;
        }
    }
    //  The request waits in the coordinator while a record is pending.
    bool later = coordinator_request_hold (self->coordinator, request, ctx, header, results,
                                           (uint32_t) count);
    return later ? LEDGER_REPLY_LATER : LEDGER_REPLY_NOW;
}

//  Lookups ------------------------------------------------------------------

void
ledger_lookup_accounts (ledger_t *self, const rl_id_t *ids, size_t count, rl_account_t *out)
{
    assert (self);
    for (size_t i = 0; i < count; i++) {
        const rl_account_t *account = accounts_get (self->accounts, ids[i]);
        if (account) {
            out[i] = *account;
        } else {
            memset (&out[i], 0, sizeof (out[i]));
            out[i].id = ids[i];
        }
    }
}

//  An account a handover may add here: stamped, not held here already,
//  nothing reserved or pending (those come back with their transfers).
static bool
s_handed_over_fits (const ledger_t *self, const rl_account_t *account)
{
    return account->timestamp != 0 && !accounts_get (self->accounts, account->id)
           && account->debits_reserved == 0 && account->credits_reserved == 0
           && account->debits_pending == 0 && account->credits_pending == 0;
}

int
ledger_install_account (ledger_t *self, const rl_account_t *account)
{
    assert (self && account);
    return s_handed_over_fits (self, account) ? accounts_insert (self->accounts, account) : -1;
}

int
ledger_adopt_account (ledger_t *self, const rl_account_t *account)
{
    assert (self && account);
    return s_handed_over_fits (self, account) ? accounts_adopt (self->accounts, account) : -1;
}

int
ledger_reserve_accounts (ledger_t *self, size_t more)
{
    assert (self);
    return accounts_reserve (self->accounts, more);
}

void
ledger_adopted (ledger_t *self, uint64_t migration_id, uint64_t arc_start, uint64_t arc_end)
{
    assert (self && !self->adopted);
    uint8_t value[MIGRATE_ADOPTED_SIZE];
    codec_put_u64 (value, migration_id);
    codec_put_u64 (value + 8, arc_start);
    codec_put_u64 (value + 16, arc_end);
    store_batch_put (self->store, STORE_CF_META, MIGRATE_ADOPTED_KEY, strlen (MIGRATE_ADOPTED_KEY),
                     value, sizeof (value));
    self->adopted = true;
    self->checkpoint_soon = true; //  so that the next migration need not wait long
}

bool
ledger_adopting (const ledger_t *self)
{
    assert (self);
    return self->adopted;
}

int
ledger_lookup_transfers (ledger_t *self, const rl_id_t *ids, size_t count, rl_transfer_t *out)
{
    assert (self);
    for (size_t i = 0; i < count; i++) {
        int found = s_find (self, ids[i], &out[i]);
        if (found < 0) {
            return -1;
        }
        //  Only transfers that took effect are visible; a burned id is not a transfer.
        if (!found || JOURNAL_RESULT (out[i].reserved) != RL_OK) {
            memset (&out[i], 0, sizeof (out[i]));
            out[i].id = ids[i];
        }
        out[i].reserved = 0;
    }
    return 0;
}

//  History ------------------------------------------------------------------

typedef struct {
    const rl_filter_t *filter;
    uint64_t ts_min; //  inclusive
    uint64_t ts_max; //  inclusive
    rl_transfer_t *out;
    size_t count;
} s_history_t;

static bool
s_history_full (const s_history_t *h)
{
    return h->count >= h->filter->limit;
}

//  Appends t when it is on the asked side of the account and in range.
static void
s_history_offer (s_history_t *h, const rl_transfer_t *t)
{
    const rl_filter_t *f = h->filter;
    //  A leg of a cross-shard transfer speaks for its own side only (the
    //  other side's account may have moved here since).
    uint32_t leg = JOURNAL_LEG (t->reserved);
    bool debit = (f->flags & RL_FILTER_DEBITS) && leg != JOURNAL_LEG_CREDIT
                 && rl_id_eq (t->debit_account_id, f->account_id);
    bool credit = (f->flags & RL_FILTER_CREDITS) && leg != JOURNAL_LEG_DEBIT
                  && rl_id_eq (t->credit_account_id, f->account_id);
    if ((debit || credit) && t->timestamp >= h->ts_min && t->timestamp <= h->ts_max
        && !s_history_full (h)) {
        h->out[h->count] = *t;
        h->out[h->count].reserved = 0;
        h->count++;
    }
}

//  The transfers since the checkpoint: the frozen generation, then the live one.
static void
s_history_part (s_history_t *h, const rl_transfer_t *recent, size_t count, bool reversed)
{
    assert (recent || count == 0);
    for (size_t k = 0; k < count && !s_history_full (h); k++) {
        const rl_transfer_t *t = &recent[reversed ? count - 1 - k : k];
        if (JOURNAL_RESULT (t->reserved) == RL_OK) {
            s_history_offer (h, t);
        }
    }
}

static void
s_history_recent (ledger_t *self, s_history_t *h, bool reversed)
{
    size_t frozen_count = 0, live_count = 0;
    const rl_transfer_t *frozen = journal_frozen (self->journal, &frozen_count);
    const rl_transfer_t *live = journal_recent (self->journal, &live_count);
    assert (frozen_count == 0 || live_count == 0
            || frozen[frozen_count - 1].timestamp < live[0].timestamp);
    s_history_part (h, reversed ? live : frozen, reversed ? live_count : frozen_count, reversed);
    s_history_part (h, reversed ? frozen : live, reversed ? frozen_count : live_count, reversed);
}

//  The ingested part: history keys (account, ts) for ts <= checkpoint_ts.
static int
s_history_stored (ledger_t *self, s_history_t *h, bool reversed)
{
    uint64_t checkpoint_ts = journal_checkpoint_ts (self->journal);
    uint64_t hi = h->ts_max < checkpoint_ts ? h->ts_max : checkpoint_ts;
    if (h->ts_min > hi) {
        return 0;
    }
    store_iter_t *it = store_iter_new (self->store, STORE_CF_HISTORY);
    if (!it) {
        return -1;
    }
    uint8_t key[RL_ID_SIZE + 8];
    codec_encode_id (h->filter->account_id, key);
    codec_put_u64_be (key + RL_ID_SIZE, reversed ? hi : h->ts_min);
    if (reversed) {
        store_iter_seek_for_prev (it, key, sizeof (key));
    } else {
        store_iter_seek (it, key, sizeof (key));
    }
    int rc = 0;
    for (; store_iter_valid (it) && !s_history_full (h);
         reversed ? store_iter_prev (it) : store_iter_next (it)) {
        size_t size = 0;
        const uint8_t *k = store_iter_key (it, &size);
        if (size != sizeof (key) || memcmp (k, key, RL_ID_SIZE) != 0) {
            break;
        }
        uint64_t ts = codec_get_u64_be (k + RL_ID_SIZE);
        if (ts < h->ts_min || ts > hi) {
            break;
        }
        uint8_t value[RL_TRANSFER_SIZE];
        size_t value_size = 0;
        if (store_get (self->store, STORE_CF_TRANSFERS, k + RL_ID_SIZE, 8, value, sizeof (value),
                       &value_size)
                != 1
            || value_size != RL_TRANSFER_SIZE) {
            rc = -1;
            break;
        }
        rl_transfer_t t;
        codec_decode_transfer (value, &t);
        s_history_offer (h, &t);
    }
    store_iter_destroy (&it);
    return rc;
}

//  Merges the account's imported history (imported.h) into h->out, in
//  timestamp order (the shard's own record first on a tie), up to the
//  limit. 0, or -1 on a storage error or when memory ran out.
static int
s_history_merge_imported (ledger_t *self, s_history_t *h, bool reversed)
{
    const rl_filter_t *f = h->filter;
    size_t limit = f->limit;
    rl_transfer_t *theirs = malloc (2 * limit * sizeof (rl_transfer_t));
    if (!theirs) {
        return -1;
    }
    size_t count = 0;
    if (imported_history (self->store, f->account_id, h->ts_min, h->ts_max, f->flags, reversed,
                          theirs, limit, &count)
        != 0) {
        free (theirs);
        return -1;
    }
    rl_transfer_t *merged = theirs + limit;
    size_t i = 0, j = 0, n = 0;
    while (n < limit && (i < h->count || j < count)) {
        bool take_ours = j == count;
        if (i < h->count && j < count) {
            uint64_t a = h->out[i].timestamp, b = theirs[j].timestamp;
            take_ours = reversed ? a >= b : a <= b;
        }
        if (take_ours) {
            merged[n++] = h->out[i++];
            continue;
        }
        const rl_transfer_t *t = &theirs[j++];
        assert (imported_history_side (t, f->account_id, f->flags));
        merged[n] = *t;
        merged[n++].reserved = 0;
    }
    memcpy (h->out, merged, n * sizeof (rl_transfer_t));
    h->count = n;
    free (theirs);
    return 0;
}

rl_status_t
ledger_account_transfers (ledger_t *self, const rl_filter_t *filter, rl_transfer_t *out,
                          size_t *count_p)
{
    assert (self && filter && out && count_p);
    *count_p = 0;
    if (rl_id_is_zero (filter->account_id) || rl_id_is_max (filter->account_id)
        || filter->limit == 0 || filter->limit > RL_HISTORY_LIMIT_MAX
        || (filter->flags & ~RL_FILTER_FLAGS_KNOWN)
        || !(filter->flags & (RL_FILTER_DEBITS | RL_FILTER_CREDITS)) || filter->reserved[0]
        || filter->reserved[1] || filter->reserved[2]
        || (filter->timestamp_max != 0 && filter->timestamp_min > filter->timestamp_max)) {
        return RL_STATUS_BAD_FILTER;
    }
    s_history_t h = {
        .filter = filter,
        .ts_min = filter->timestamp_min,
        .ts_max = filter->timestamp_max ? filter->timestamp_max : UINT64_MAX,
        .out = out,
    };
    bool reversed = (filter->flags & RL_FILTER_REVERSED) != 0;
    int rc = 0;
    if (reversed) {
        s_history_recent (self, &h, true);
        rc = s_history_stored (self, &h, true);
    } else {
        rc = s_history_stored (self, &h, false);
        s_history_recent (self, &h, false);
    }
    if (rc == 0 && self->imported) {
        rc = s_history_merge_imported (self, &h, reversed);
    }
    *count_p = h.count;
    return rc == 0 ? RL_STATUS_OK : RL_STATUS_STORAGE_ERROR;
}

//  Commit and checkpoint -------------------------------------------------------

void
ledger_before_commit (ledger_t *self)
{
    assert (self);
    journal_before_commit (self->journal);
}

//  Waits for the checkpoint in the background (at once when it has ended),
//  then thaws the journal. 0, or -1 when it failed.
static int
s_checkpoint_finish (ledger_t *self)
{
    assert (checkpoint_busy (self->checkpoint));
    int rc = checkpoint_wait (self->checkpoint);
    idfilter_t *filter = checkpoint_take_filter (self->checkpoint);
    if (rc != 0) {
        rl_error ("ledger: checkpoint failed: %s", store_error (self->store));
        self->checkpoint_failed = true;
        idfilter_destroy (&filter);
        return -1;
    }
    journal_thaw (self->journal);
    if (self->absorbing) {
        RL_FAILPOINT (MIGRATE_ADOPTED_CHECKPOINTED);
        rl_info ("ledger: the accounts a handover adopted are checkpointed, their staged copies "
                 "deleted");
        self->adopted = self->absorbing = false;
    }
    if (self->filter_growing) {
        journal_filter_swap (self->journal, &filter); //  the new one holds every id
        self->filter_growing = false;
    }
    assert (!filter);
    self->checkpoints++;
    assert (!checkpoint_busy (self->checkpoint));
    return 0;
}

//  Freezes recent and copies the dirty accounts (after a commit, nothing in
//  the background), and hands them to the background. 0, or -1.
static int
s_checkpoint_start (ledger_t *self)
{
    assert (!checkpoint_busy (self->checkpoint));
    assert (store_batch_count (self->store) == 0); //  the snapshot is of committed state
    size_t recent = 0;
    journal_recent (self->journal, &recent);
    size_t dirty = accounts_dirty_count (self->accounts);
    if (recent == 0 && dirty == 0) {
        return 0;
    }
    rl_account_t *snapshot = checkpoint_accounts (self->checkpoint, dirty);
    if (!snapshot && dirty > 0) {
        rl_error ("ledger: out of memory for the checkpoint's %zu accounts", dirty);
        self->checkpoint_failed = true;
        return -1;
    }
    size_t copied = accounts_take_dirty (self->accounts, snapshot, dirty);
    assert (copied == dirty);
    uint64_t checkpoint_ts = journal_freeze (self->journal);
    size_t count = 0;
    const rl_transfer_t *frozen = journal_frozen (self->journal, &count);
    assert (count == recent);
    size_t filter_extra = 0;
    if (journal_filter_growth (self->journal, &filter_extra)) {
        checkpoint_grow_filter (self->checkpoint, filter_extra); //  past its capacity
        self->filter_growing = true;
    }
    if (self->adopted) {
        //  The snapshot holds every adopted account (dirty since the
        //  handover's turn, which is committed): their staged copies and
        //  the key go with the checkpoint that writes them.
        assert (!self->absorbing && dirty > 0);
        store_batch_t *batch = checkpoint_batch (self->checkpoint);
        uint8_t from = IMPORTED_ACCOUNT, to = IMPORTED_ACCOUNT + 1;
        store_batch_delete_range_into (self->store, batch, STORE_CF_IMPORTED, &from, 1, &to, 1);
        store_batch_delete_into (self->store, batch, STORE_CF_META, MIGRATE_ADOPTED_KEY,
                                 strlen (MIGRATE_ADOPTED_KEY));
        self->absorbing = true;
    }
    checkpoint_start (self->checkpoint, frozen, count, dirty, checkpoint_ts);
    if (self->absorbing) {
        RL_FAILPOINT (MIGRATE_ADOPTED_CHECKPOINT);
    }
    return 0;
}

void
ledger_note_imported_id (ledger_t *self, rl_id_t id)
{
    assert (self);
    journal_note_id (self->journal, id);
}

int
ledger_after_commit (ledger_t *self)
{
    assert (self);
    if (self->checkpoint_failed) {
        return -1;
    }
    pending_committed (self->pending);
    checkpoint_state_t state = checkpoint_state (self->checkpoint);
    if ((state == CHECKPOINT_COMMITTED || state == CHECKPOINT_FAILED)
        && s_checkpoint_finish (self) != 0) {
        return -1;
    }
    size_t recent = 0;
    journal_recent (self->journal, &recent);
    if (recent < self->checkpoint_transfers && !self->checkpoint_soon) {
        return 0;
    }
    if (self->checkpoint_soon && recent < self->checkpoint_transfers
        && checkpoint_busy (self->checkpoint)) {
        return 0; //  asked for: after the one running (a later turn)
    }
    self->checkpoint_soon = false;
    //  Invariant 5, backpressure: the previous checkpoint must end first.
    if (checkpoint_busy (self->checkpoint) && s_checkpoint_finish (self) != 0) {
        return -1;
    }
    if (store_failed (self->store)) {
        return -1;
    }
    return s_checkpoint_start (self);
}

void
ledger_journal_fill (const ledger_t *self, size_t *live_p, size_t *frozen_p,
                     size_t *checkpoint_transfers_p)
{
    assert (self && live_p && frozen_p && checkpoint_transfers_p);
    journal_recent (self->journal, live_p);
    journal_frozen (self->journal, frozen_p);
    *checkpoint_transfers_p = self->checkpoint_transfers;
}

checkpoint_state_t
ledger_checkpoint_state (const ledger_t *self)
{
    assert (self);
    return self->checkpoint_failed ? CHECKPOINT_FAILED : checkpoint_state (self->checkpoint);
}

void
ledger_set_checkpoint_transfers (ledger_t *self, size_t transfers)
{
    assert (self);
    assert (transfers >= 1 && transfers <= RL_SHARD_CHECKPOINT_TRANSFERS);
    self->checkpoint_transfers = transfers;
}

void
ledger_set_checkpoint_piece_accounts (ledger_t *self, size_t accounts)
{
    assert (self && accounts >= 1);
    checkpoint_set_piece_accounts (self->checkpoint, accounts);
}

int
ledger_checkpoint (ledger_t *self)
{
    assert (self);
    assert (store_batch_count (self->store) == 0);
    if (self->checkpoint_failed || store_failed (self->store)) {
        return -1;
    }
    if (checkpoint_busy (self->checkpoint) && s_checkpoint_finish (self) != 0) {
        return -1;
    }
    if (s_checkpoint_start (self) != 0) {
        return -1;
    }
    if (checkpoint_busy (self->checkpoint) && s_checkpoint_finish (self) != 0) {
        return -1;
    }
    assert (!checkpoint_busy (self->checkpoint));
    return 0;
}

//  Two-phase, both roles ------------------------------------------------------------

//  Cross-shard pending transfers past their expiry: each one's expiry is a
//  void attempt of this shard, the debit shard (pending.c, "CROSS-SHARD"),
//  at most PENDING_EXPIRY_ATTEMPTS_PER_TICK begun a tick. One that cannot
//  begin now (no owner of its credit account, the log full) is tried again
//  PENDING_EXPIRY_RETRY_NS later.
#define PENDING_EXPIRY_ATTEMPTS_PER_TICK 256

//  Gives the expiry the first of its ids (pending_expiry_id) that no
//  transfer of this shard holds, stored or live: the derivation is public,
//  so a client may have sent a transfer of its own under an id of the list
//  (with the expiry's debit account; a leg of it on any shard was
//  coordinated here, so this journal has it). Storing the expiry under
//  such an id would give one id two records. 0 done; 1 every id is taken
//  (the expiry waits; logged); -1 a storage error.
static int
s_expiry_id (ledger_t *self, rl_transfer_t *expiry)
{
    rl_id_t id = pending_expiry_id (expiry->pending_id, expiry->debit_account_id);
    for (unsigned k = 0; k < PENDING_EXPIRY_IDS_MAX;
         k++, id = pending_expiry_id_next (id, expiry->debit_account_id)) {
        if (coordinator_is_live (self->coordinator, id)
            || participant_debit_live (self->participant, id)) {
            continue; //  a client's attempt under this id (or a chain's debit leg)
        }
        rl_transfer_t stored;
        int found = s_find (self, id, &stored);
        if (found < 0) {
            return -1;
        }
        if (found == 0) {
            if (k > 0) {
                rl_warn ("ledger: the expiry of pending transfer %016" PRIx64 "%016" PRIx64
                         " takes its id number %u: the ones before are ids of other transfers",
                         expiry->pending_id.hi, expiry->pending_id.lo, k);
            }
            expiry->id = id;
            return 0;
        }
    }
    rl_error ("ledger: every expiry id of pending transfer %016" PRIx64 "%016" PRIx64
              " (%d) is the id of another transfer: it cannot expire, its amounts stay "
              "pending (docs/payments.md, \"Expiry\")",
              expiry->pending_id.hi, expiry->pending_id.lo, PENDING_EXPIRY_IDS_MAX);
    return 1;
}

static void
s_expiries_begin (ledger_t *self, now_t now, uint64_t clock_ns)
{
    rl_transfer_t expiries[PENDING_EXPIRY_ATTEMPTS_PER_TICK];
    size_t count = pending_due_take (self->pending, clock_ns, expiries,
                                     PENDING_EXPIRY_ATTEMPTS_PER_TICK);
    for (size_t n = 0; n < count; n++) {
        rl_transfer_t expiry = expiries[n];
        bool id_free = s_expiry_id (self, &expiry) == 0;
        int credit_owner = owner_of (self->ring, expiry.credit_account_id);
        bool begun = false;
        bool here = credit_owner >= 0 && credit_owner == self->self_index;
        //  A migration holds the debit account frozen: the final round
        //  carries the entry as it is, and its next owner expires it.
        bool movable = ledger_owns (self, expiry.debit_account_id)
                       && !ledger_frozen (self, expiry.debit_account_id);
        if (!id_free) {
            //  Tried again later (below).
        } else if (here && movable && !ledger_frozen (self, expiry.credit_account_id)
                   && pending_credit_here (self->pending, expiry.pending_id,
                                           expiry.debit_account_id)
                   && pending_credit_check (self->pending, &expiry) == RL_OK) {
            //  Both sides here (a migration brought them together): released
            //  here at once, its void stored ok (only ok: a retry must find
            //  its id free).
            uint64_t ts = journal_next_ts (self->journal, now.wall_ns);
            rl_result_rec_t r = s_resolve_here (self, &expiry, ts);
            begun = r.result == RL_OK;
            self->payments.expired += begun;
        } else if (credit_owner >= 0 && !here && movable
                   && !coordinator_is_live (self->coordinator, expiry.id)) {
            rl_result_rec_t r = coordinator_begin (self->coordinator, &expiry, credit_owner, now,
                                                   -1, 0, 0);
            begun = r.result == COORDINATOR_PENDING; //  it claimed the pending transfer
        }
        if (!begun) {
            rl_warn ("ledger: the expiry of pending transfer %016" PRIx64 "%016" PRIx64
                     " cannot begin now: tried again later",
                     expiry.pending_id.hi, expiry.pending_id.lo);
            pending_claim (self->pending, expiry.pending_id, true, clock_ns);
            pending_claim (self->pending, expiry.pending_id, false, clock_ns);
        }
    }
}

void
ledger_tick (ledger_t *self, now_t now)
{
    assert (self);
    //  One budget for decisions and queries together.
    size_t work = coordinator_tick (self->coordinator, now, RL_TP_WORK_PER_TICK_MAX);
    assert (work <= RL_TP_WORK_PER_TICK_MAX);
    participant_tick (self->participant, now, RL_TP_WORK_PER_TICK_MAX - work);
    uint64_t clock_ns = s_clock (self, now);
    self->payments.expired += pending_tick (self->pending, clock_ns,
                                            RL_SHARD_PENDING_EXPIRE_PER_TICK);
    s_expiries_begin (self, now, clock_ns);
}

void
ledger_tp_counts (const ledger_t *self, uint64_t *inflight, uint64_t *in_doubt, uint64_t *alarms)
{
    assert (self && inflight && in_doubt && alarms);
    uint64_t live = 0, decided = 0, coordinator_alarms = 0, participant_alarms = 0;
    coordinator_counts (self->coordinator, &live, &decided, &coordinator_alarms);
    participant_counts (self->participant, in_doubt, &participant_alarms);
    *inflight = live + decided;
    *alarms = coordinator_alarms + participant_alarms;
}

void
ledger_set_tp_timeouts (ledger_t *self, uint64_t prepare_ms, uint64_t query_after_ms,
                        uint64_t retry_min_ms, uint64_t retry_max_ms)
{
    assert (self);
    assert (prepare_ms > 0 && query_after_ms > 0 && retry_min_ms > 0);
    assert (retry_min_ms <= retry_max_ms);
    coordinator_set_timeouts (self->coordinator, prepare_ms, retry_min_ms, retry_max_ms);
    participant_set_timeouts (self->participant, query_after_ms, retry_min_ms, retry_max_ms);
}

int
ledger_audit (ledger_t *self, char *err, size_t err_size)
{
    assert (self && err);
    size_t n = accounts_count (self->accounts);
    uint64_t *debits = calloc (n + 1, sizeof (uint64_t));
    uint64_t *credits = calloc (n + 1, sizeof (uint64_t));
    int rc = -1;
    if (debits && credits) {
        coordinator_audit_sums (self->coordinator, self->accounts, debits, credits);
        participant_audit_sums (self->participant, self->accounts, debits, credits);
        rc = accounts_audit (self->accounts, debits, credits, err, err_size);
        if (rc == 0) {
            rc = pending_audit (self->pending, err, err_size);
        }
    } else {
        snprintf (err, err_size, "out of memory");
    }
    free (debits);
    free (credits);
    return rc;
}

size_t
ledger_in_doubt (ledger_t *self, rl_in_doubt_rec_t *out, size_t cap)
{
    assert (self && (cap == 0 || out));
    size_t n = coordinator_in_doubt (self->coordinator, out, cap);
    assert (n <= cap);
    return n + participant_in_doubt (self->participant, out + n, cap - n);
}

void
ledger_audit_counts (const ledger_t *self, uint64_t *accounts, uint64_t *live, uint64_t *prepared)
{
    assert (self && accounts && live && prepared);
    uint64_t decided = 0, alarms = 0;
    *accounts = accounts_live_count (self->accounts); //  as status counts them: no holes
    coordinator_counts (self->coordinator, live, &decided, &alarms);
    participant_counts (self->participant, prepared, &alarms);
}

void
ledger_sums (const ledger_t *self, uint32_t ledger_id, uint64_t *debits_posted,
             uint64_t *credits_posted, uint64_t *debits_reserved, uint64_t *credits_reserved)
{
    assert (self);
    accounts_sums (self->accounts, ledger_id, debits_posted, credits_posted, debits_reserved,
                   credits_reserved);
}

uint64_t
ledger_account_count (const ledger_t *self)
{
    assert (self);
    return accounts_live_count (self->accounts);
}

int
ledger_remove_account (ledger_t *self, rl_id_t id)
{
    assert (self);
    assert (!ledger_owns (self, id)); //  only an account that left
    return accounts_remove (self->accounts, id);
}

void
ledger_checkpoint_soon (ledger_t *self)
{
    assert (self);
    self->checkpoint_soon = true;
}

//  Does an ok record of this generation post to an account of the arc?
static bool
s_part_names_arc (const rl_transfer_t *part, size_t count, uint64_t start, uint64_t end)
{
    for (size_t i = 0; i < count; i++) {
        const rl_transfer_t *t = &part[i];
        uint32_t leg = JOURNAL_LEG (t->reserved);
        if (JOURNAL_RESULT (t->reserved) == RL_OK
            && ((leg != JOURNAL_LEG_CREDIT && imported_in_arc (start, end, t->debit_account_id))
                || (leg != JOURNAL_LEG_DEBIT
                    && imported_in_arc (start, end, t->credit_account_id)))) {
            return true;
        }
    }
    return false;
}

typedef struct {
    uint64_t start, end;
} s_arc_t;

static bool
s_in_arc (void *arg, rl_id_t account)
{
    const s_arc_t *arc = arg;
    return imported_in_arc (arc->start, arc->end, account);
}

void
ledger_each_account (const ledger_t *self, void (*fn) (void *arg, const rl_account_t *account),
                     void *arg)
{
    assert (self && fn);
    size_t slots = accounts_count (self->accounts);
    for (size_t i = 0; i < slots; i++) {
        const rl_account_t *a = accounts_at (self->accounts, i);
        if (a->timestamp != 0) { //  not a hole
            fn (arg, a);
        }
    }
}

int
ledger_track_changes (ledger_t *self, bool on)
{
    assert (self);
    return accounts_track_changes (self->accounts, on);
}

uint32_t
ledger_change_mark (ledger_t *self)
{
    assert (self);
    return accounts_change_mark (self->accounts);
}

size_t
ledger_changed_since (const ledger_t *self, uint32_t mark,
                      bool (*fn) (void *arg, const rl_account_t *account), void *arg)
{
    assert (self);
    return accounts_changed_since (self->accounts, mark, fn, arg);
}

size_t
ledger_heuristics_in_arc (const ledger_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    s_arc_t arc = {start, end};
    return participant_heuristics (self->participant, s_in_arc, &arc);
}

size_t
ledger_pending_taken (const ledger_t *self)
{
    assert (self);
    return pending_live_count (self->pending) + pending_promised_count (self->pending);
}

size_t
ledger_pending_count (const ledger_t *self)
{
    assert (self);
    return pending_live_count (self->pending);
}

size_t
ledger_pending_hand_over (ledger_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    s_arc_t arc = {start, end};
    return pending_hand_over (self->pending, s_in_arc, &arc);
}

int
ledger_pending_install_check (ledger_t *self, const rl_transfer_t *t, uint8_t side)
{
    assert (self && t);
    if (side != PENDING_SIDE_CREDIT
        && (participant_debit_live (self->participant, t->id)
            || coordinator_is_live (self->coordinator, t->id))) {
        //  Its id is live here with another debit account (a debit leg
        //  prepared, or an attempt of this shard's): its commit would find
        //  the pending table's key taken. One id, two debit accounts.
        return -1;
    }
    return pending_install_check (self->pending, t, side);
}

int
ledger_pending_install (ledger_t *self, const rl_transfer_t *t, uint8_t side)
{
    assert (self && t);
    return pending_install (self->pending, t, side);
}

void
ledger_payments (const ledger_t *self, ledger_payments_t *out)
{
    assert (self && out);
    *out = self->payments;
    uint64_t committed = 0, failed = 0;
    coordinator_group_counts (self->coordinator, &committed, &failed);
    out->chains_committed += committed;
    out->chains_failed += failed;
}

bool
ledger_recent_posts_to_arc (const ledger_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    size_t live = 0, frozen = 0;
    const rl_transfer_t *a = journal_recent (self->journal, &live);
    const rl_transfer_t *b = journal_frozen (self->journal, &frozen);
    return s_part_names_arc (a, live, start, end) || s_part_names_arc (b, frozen, start, end);
}

bool
ledger_checkpoint_holds_arc (const ledger_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    size_t count = 0;
    const rl_account_t *snapshot = checkpoint_snapshot (self->checkpoint, &count);
    for (size_t i = 0; i < count; i++) {
        if (imported_in_arc (start, end, snapshot[i].id)) {
            return true;
        }
    }
    return false;
}

uint64_t
ledger_transfer_count (const ledger_t *self)
{
    assert (self);
    return journal_transfers_ok (self->journal);
}

uint64_t
ledger_last_timestamp (const ledger_t *self)
{
    assert (self);
    return journal_last_ts (self->journal);
}

uint64_t
ledger_checkpoint_count (const ledger_t *self)
{
    assert (self);
    return self->checkpoints;
}
