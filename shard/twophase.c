/*  twophase.c: transfers whose two accounts live on different shards.

    The debit shard D coordinates; the credit shard C participates. Escrow,
    not locks: D reserves the amount on the debit account (debits_reserved),
    C on the credit account (credits_reserved); every limit counts them, and
    nothing is locked across the network round trip. docs/two-phase.md draws
    the state machine; the short form:

      D  create_transfers: checks, reserve debit, attempt LIVE -> PREPARE to C
      C  PREPARE: checks, reserve credit, write PREPARED      -> reply after sync
      D  reply PREPARED: post debit + transfer record + xlog COMMIT, one batch
         reply REFUSED (business): release, store the failure (burns the id)
         reply REFUSED (infrastructure), or timeout: release, xlog ABORT
                                      -> client reply and DECIDE after sync
      C  DECIDE: apply (credit leg record) or release; mark APPLIED / ABORTED
                                      -> ACK (the reply) after sync
      D  ACK: delete the xlog entry.
      C  a PREPARED record older than query_after: OUTCOME_QUERY to D, forever.

    INVARIANTS
    1. Attempts are named (incarnation counter + nonce, seq) and D never
       reuses one: the counter grows and is synced before anything is served.
    2. One live attempt per transfer id at D. A new attempt for an id is
       started only when no earlier attempt of it can commit: the earlier
       one was decided ABORT, or belonged to an earlier incarnation (live
       attempts die with the process: presumed abort). Hence C may treat a
       PREPARED record of an older attempt of the same id from the same
       coordinator as aborted when a newer attempt arrives.
    3. D answers an outcome query with its logged decision, PENDING for the
       live attempt, and ABORT otherwise (older incarnation, or a sequence of
       this one that is finished without a logged commit). An unreachable D
       never means abort: C keeps asking.
    4. C never acknowledges a COMMIT it holds no record of, unless it applied
       that attempt; a contrary or unknown decision raises an alarm (log +
       counter) and is not acknowledged. An ABORT for an unknown attempt
       leaves a tombstone, so that a late PREPARE of it is refused.
    5. Reserved amounts are derived state: at start, debits_reserved is zero
       (no live attempts survive a restart) and credits_reserved is the sum
       of the PREPARED records.

    LIMITS: RL_TP_ATTEMPTS_MAX live attempts, RL_TP_PREPARED_MAX prepared
    records (more: busy, an infrastructure result), RL_TP_MARKERS_MAX
    applied/aborted markers, kept in a FIFO and evicted oldest first when
    full or older than RL_TP_TOMBSTONE_MS. A marker only serves duplicates:
    a COMMIT resent before its ACK arrived (acknowledged again), a late
    PREPARE of an aborted attempt (refused). Past its eviction such a late
    PREPARE is prepared, then aborted by the outcome query: safe, only
    slower. Decisions and queries resend forever with capped backoff, at
    most RL_TP_WORK_PER_TICK_MAX per tick.

    COST: each table is a slab with an id -> chain index; lookups are O(1)
    plus the chain of the same id (almost always one). A tick scans the
    tables linearly: O(live attempts + xlog + prepared).
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "attempts.h"
#include "failpoint.h"
#include "ledger_internal.h"
#include "log.h"
#include "xlog.h"

#define META_INCARNATION "incarnation"

#define S_HEURISTIC_FLAG 1 //  prepared record reserved[1]: a heuristic record

typedef struct {
    int32_t slot;
    uint64_t stamp;
} s_marker_t;

struct twophase_t {
    ledger_t *ledger;
    ledger_io_t io;
    void *io_ctx;
    rl_attempt_t incarnation; //  counter, nonce; seq counts attempts
    attempts_t attempts;      //  D: ATTEMPT_LIVE
    xlog_t *xlog;             //  D: ATTEMPT_DECIDED (xlog.c)
    attempts_t records;       //  C: ATTEMPT_PREPARED, ATTEMPT_ABORTED, ATTEMPT_HEURISTIC
    size_t prepared_count;    //  C: records in ATTEMPT_PREPARED
    s_marker_t *markers;      //  C: FIFO of applied/aborted markers
    size_t markers_head;      //  oldest (monotonic; index modulo the cap)
    size_t markers_tail;      //  next free
    uint64_t marker_stamp;
    size_t markers_max;       //  <= RL_TP_MARKERS_MAX (tests use few)
    uint64_t next_scan_ns;    //  C: next scan for outcome queries
    uint64_t key_seq;         //  last key used in prepared
    uint64_t attempts_due_ns; //  D: no live attempt times out before this
    uint64_t xlog_due_ns;     //  D: no decision is due for resending before this
    uint64_t alarms;
    uint64_t prepare_timeout_ms;
    uint64_t query_after_ms;
    uint64_t retry_min_ms;
    uint64_t retry_max_ms;
};

static void s_marker_push (twophase_t *self, attempt_t *e);

//  Persistent keys ----------------------------------------------------------------
//
//  Prepared records are keyed like the coordinator log (xlog.c): by a
//  sequence that only grows (8 bytes, big-endian), so that a new record
//  lands at the end of the memtable skiplist and its delete near it. The
//  record remembers its key; the index by transfer id is in memory and
//  rebuilt at start by a scan.

#define S_KEY_SIZE 8

static void
s_entry_key (const attempt_t *e, uint8_t key[S_KEY_SIZE])
{
    codec_put_u64_be (key, e->key_seq);
}

static void
s_record_key (const attempt_t *e, uint8_t key[S_KEY_SIZE])
{
    s_entry_key (e, key);
}

//  Participant records keep their state in tp.state: prepared, commit, abort.
static void
s_record_put (twophase_t *self, const attempt_t *e)
{
    uint8_t key[S_KEY_SIZE];
    uint8_t value[RL_PREPARE_SIZE];
    rl_prepare_rec_t rec = {.transfer = e->transfer, .tp = e->tp};
    rec.reserved[0] = e->deadline_ns;
    rec.reserved[1] = e->state == ATTEMPT_HEURISTIC ? S_HEURISTIC_FLAG : 0;
    s_record_key (e, key);
    codec_encode_prepare (&rec, value);
    store_batch_put (self->ledger->store, STORE_CF_PREPARED, key, sizeof (key), value,
                     sizeof (value));
}

//  Lifecycle -----------------------------------------------------------------------

twophase_t *
twophase_new (ledger_t *ledger)
{
    twophase_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->ledger = ledger;
    self->prepare_timeout_ms = RL_PREPARE_TIMEOUT_MS;
    self->query_after_ms = RL_TP_QUERY_AFTER_MS;
    self->retry_min_ms = RL_TP_RETRY_MIN_MS;
    self->retry_max_ms = RL_TP_RETRY_MAX_MS;
    self->markers_max = RL_TP_MARKERS_MAX;
    self->attempts_due_ns = UINT64_MAX; //  no live attempt yet
    self->xlog_due_ns = 0;              //  recovered decisions: resend at the first tick
    if (attempts_init (&self->attempts, RL_TP_ATTEMPTS_MAX) != 0
        || !(self->xlog = xlog_new (ledger->store, RL_TP_ATTEMPTS_MAX * 2))
        || attempts_init (&self->records, RL_TP_PREPARED_MAX + RL_TP_MARKERS_MAX + 1) != 0
        || !(self->markers = calloc (RL_TP_MARKERS_MAX, sizeof (s_marker_t)))) {
        twophase_destroy (&self);
    }
    return self;
}

void
twophase_destroy (twophase_t **self_p)
{
    assert (self_p);
    twophase_t *self = *self_p;
    if (self) {
        attempts_free (&self->attempts);
        xlog_destroy (&self->xlog);
        attempts_free (&self->records);
        free (self->markers);
        free (self);
        *self_p = NULL;
    }
}

void
twophase_set_io (twophase_t *self, const ledger_io_t *io, void *io_ctx)
{
    self->io = *io;
    self->io_ctx = io_ctx;
}

static int
s_load_records (twophase_t *self, uint64_t now_ns, char *err, size_t err_size)
{
    store_iter_t *it = store_iter_new (self->ledger->store, STORE_CF_PREPARED);
    int rc = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t size = 0, key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &size);
        if (size != RL_PREPARE_SIZE || key_size != S_KEY_SIZE) {
            snprintf (err, err_size, "corrupt prepared record");
            rc = -1;
            break;
        }
        rl_prepare_rec_t rec;
        codec_decode_prepare (value, &rec);
        int32_t i = attempts_add (&self->records, rec.tp.id);
        if (i < 0) {
            snprintf (err, err_size, "prepared records larger than their table");
            rc = -1;
            break;
        }
        attempt_t *e = &self->records.slots[i];
        e->transfer = rec.transfer;
        e->tp = rec.tp;
        e->deadline_ns = rec.reserved[0];
        e->key_seq = codec_get_u64_be (key);
        if (e->key_seq > self->key_seq) {
            self->key_seq = e->key_seq;
        }
        e->backoff_ms = self->retry_min_ms;
        e->next_ns = now_ns; //  ask at once: recovery runs before anything else
        if (rec.tp.state == RL_TP_PREPARED) {
            if (accounts_credit_restore (self->ledger->accounts, rec.transfer.credit_account_id,
                                         rec.transfer.amount)
                != 0) {
                snprintf (err, err_size, "prepared record names a missing account");
                rc = -1;
                break;
            }
            e->state = ATTEMPT_PREPARED;
            self->prepared_count++;
        } else if (rec.reserved[1] == S_HEURISTIC_FLAG) {
            e->state = ATTEMPT_HEURISTIC; //  kept: a contrary decision later is an alarm
        } else if (rec.tp.state == RL_TP_ABORT) {
            e->state = ATTEMPT_ABORTED;
            s_marker_push (self, e); //  FIFO order of keys, not of age: good enough
        } else {
            //  A commit deletes its record (the leg index remembers it).
            snprintf (err, err_size, "prepared record in an unexpected state %u", rec.tp.state);
            rc = -1;
            break;
        }
    }
    store_iter_destroy (&it);
    return rc;
}

int
twophase_open (twophase_t *self, uint64_t nonce, uint64_t now_ns, char *err, size_t err_size)
{
    store_t *store = self->ledger->store;
    uint8_t bytes[16];
    size_t size = 0;
    int rc = store_get (store, STORE_CF_META, META_INCARNATION, strlen (META_INCARNATION), bytes,
                        sizeof (bytes), &size);
    if (rc < 0) {
        snprintf (err, err_size, "cannot read the incarnation");
        return -1;
    }
    uint64_t counter = rc == 1 && size == 16 ? codec_get_u64 (bytes) : 0;
    self->incarnation = (rl_attempt_t){.counter = counter + 1, .nonce = nonce};
    codec_put_u64 (bytes, self->incarnation.counter);
    codec_put_u64 (bytes + 8, self->incarnation.nonce);
    assert (store_batch_count (store) == 0);
    store_batch_put (store, STORE_CF_META, META_INCARNATION, strlen (META_INCARNATION), bytes,
                     sizeof (bytes));
    if (store_commit (store) != 0) {
        snprintf (err, err_size, "cannot persist the incarnation: %s", store_error (store));
        return -1;
    }
    if (xlog_load (self->xlog, now_ns, self->retry_min_ms, err, err_size) != 0
        || s_load_records (self, now_ns, err, err_size) != 0) {
        return -1;
    }
    rl_info ("two-phase: incarnation %" PRIu64 ", %zu decisions to deliver, %zu prepared",
             self->incarnation.counter, xlog_count (self->xlog), self->prepared_count);
    return 0;
}

bool
twophase_is_live (const twophase_t *self, rl_id_t id)
{
    return attempts_head (&self->attempts, id) >= 0;
}

//  Coordinator ------------------------------------------------------------------------

rl_result_rec_t
twophase_begin (twophase_t *self, const rl_transfer_t *t, const char *peer, uint64_t now_ns,
                uint64_t tag, uint32_t index)
{
    ledger_t *ledger = self->ledger;
    rl_result_rec_t r = {0};
    r.result = accounts_debit_reserve (ledger->accounts, t);
    if (r.result != RL_OK) {
        //  Decided here, before any message: store the failure (burns the id).
        rl_transfer_t record = *t;
        record.timestamp = ledger_i_next_ts (ledger, now_ns);
        record.reserved = LEDGER_STORED (r.result, LEDGER_LEG_DEBIT);
        if (ledger_i_store_transfer (ledger, &record, true) != 0) {
            r.result = RL_STORAGE_ERROR;
            return r;
        }
        r.timestamp = record.timestamp;
        return r;
    }
    int32_t i = attempts_add (&self->attempts, t->id);
    if (i < 0) {
        accounts_debit_release (ledger->accounts, t->debit_account_id, t->amount, false);
        r.result = RL_BUSY;
        return r;
    }
    attempt_t *e = &self->attempts.slots[i];
    e->state = ATTEMPT_LIVE;
    e->transfer = *t;
    e->tp.id = t->id;
    e->tp.attempt = self->incarnation;
    e->tp.attempt.seq = ++self->incarnation.seq;
    e->tp.amount = t->amount;
    e->tp.debit_account_id = t->debit_account_id;
    snprintf (e->tp.coordinator, sizeof (e->tp.coordinator), "%s", ledger->name);
    snprintf (e->peer, sizeof (e->peer), "%s", peer);
    e->deadline_ns = now_ns + self->prepare_timeout_ms * 1000000ull;
    if (e->deadline_ns < self->attempts_due_ns) {
        self->attempts_due_ns = e->deadline_ns;
    }
    e->created_ns = now_ns;
    e->tag = tag;
    e->index = index;
    rl_prepare_rec_t rec = {.transfer = *t, .tp = e->tp};
    self->io.prepare (self->io_ctx, peer, &rec);
    r.result = LEDGER_PENDING;
    return r;
}

//  Moves a live attempt to the xlog with `decision`; schedules its delivery.
static void
s_log_decision (twophase_t *self, attempt_t *live, uint32_t decision, uint64_t now_ns)
{
    int32_t x = xlog_append (self->xlog, live, decision, 0);
    attempt_t *e = attempts_at (xlog_entries (self->xlog), x);
    e->backoff_ms = self->retry_min_ms;
    e->next_ns = now_ns + e->backoff_ms * 1000000ull;
    if (e->next_ns < self->xlog_due_ns) {
        self->xlog_due_ns = e->next_ns;
    }
    self->io.decide (self->io_ctx, e->peer, &e->tp);
}

//  Ends a live attempt: releases the debit reservation, records the outcome.
static void
s_finish (twophase_t *self, int32_t i, uint32_t result, uint32_t decision, uint64_t now_ns)
{
    ledger_t *ledger = self->ledger;
    attempt_t *e = &self->attempts.slots[i];
    accounts_debit_release (ledger->accounts, e->transfer.debit_account_id, e->transfer.amount,
                            result == RL_OK);
    uint64_t ts = 0;
    bool burns = result == RL_OK || !rl_result_is_retryable (result);
    if (burns) {
        rl_transfer_t record = e->transfer;
        record.timestamp = ts = ledger_i_next_ts (ledger, now_ns);
        record.reserved = LEDGER_STORED (result, LEDGER_LEG_DEBIT);
        if (result == RL_OK) {
            ledger->transfers_ok++;
        }
        if (ledger_i_store_transfer (ledger, &record, true) != 0) {
            rl_error ("two-phase: out of memory storing a decided transfer");
            abort (); //  memory and the decision would disagree: crash, recover
        }
    }
    if (decision != 0) {
        s_log_decision (self, e, decision, now_ns);
    }
    self->io.decided (self->io_ctx, e->tag, e->index, result, ts);
    attempts_remove (&self->attempts, i);
}

void
ledger_prepare_replies (ledger_t *ledger, const rl_tp_rec_t *replies, size_t count, uint64_t now_ns)
{
    twophase_t *self = ledger->tp;
    for (size_t k = 0; k < count; k++) {
        const rl_tp_rec_t *reply = &replies[k];
        int32_t i = attempts_find (&self->attempts, reply->id, NULL);
        if (i < 0 || !attempt_eq (self->attempts.slots[i].tp.attempt, reply->attempt)) {
            continue; //  a late reply: that attempt was decided (abort) on timeout
        }
        if (reply->state == RL_TP_PREPARED) {
            s_finish (self, i, RL_OK, RL_TP_COMMIT, now_ns);
        } else if (!rl_result_is_retryable (reply->result)) {
            //  A business failure at the credit side: C holds nothing.
            s_finish (self, i, reply->result, 0, now_ns);
        } else {
            //  Refused for an infrastructure reason: C holds nothing either.
            uint32_t result = reply->result == RL_IN_DOUBT ? RL_IN_DOUBT : RL_ABORTED;
            s_finish (self, i, result, 0, now_ns);
        }
    }
    if (count > 0) {
        RL_FAILPOINT (TP_COORD_DECIDED);
    }
}

void
ledger_decide_replies (ledger_t *ledger, const rl_tp_rec_t *acks, size_t count)
{
    twophase_t *self = ledger->tp;
    for (size_t k = 0; k < count; k++) {
        int32_t i = attempts_head (xlog_entries (self->xlog), acks[k].id);
        for (; i >= 0; i = xlog_entries (self->xlog)->slots[i].next) {
            if (attempt_eq (xlog_entries (self->xlog)->slots[i].tp.attempt, acks[k].attempt)) {
                break;
            }
        }
        if (i < 0) {
            continue; //  a duplicate acknowledgement
        }
        if (acks[k].state != RL_TP_ACKED) {
            self->alarms++;
            rl_error ("two-phase ALARM: %s refused to acknowledge %s of transfer %016" PRIx64
                      "%016" PRIx64 " attempt %" PRIu64 ".%" PRIu64 " (needs an operator)",
                      xlog_entries (self->xlog)->slots[i].peer,
                      rl_tp_state_name (xlog_entries (self->xlog)->slots[i].tp.state),
                      acks[k].id.hi, acks[k].id.lo, acks[k].attempt.counter, acks[k].attempt.seq);
            continue;
        }
        xlog_remove (self->xlog, i);
    }
    if (count > 0) {
        RL_FAILPOINT (TP_COORD_ACKED);
    }
}

void
ledger_outcome_query (ledger_t *ledger, const rl_tp_rec_t *queries, size_t count, rl_tp_rec_t *out)
{
    twophase_t *self = ledger->tp;
    for (size_t k = 0; k < count; k++) {
        out[k] = queries[k];
        out[k].state = RL_TP_ABORT; //  older incarnation, or finished without a commit
        for (int32_t i = attempts_head (xlog_entries (self->xlog), queries[k].id); i >= 0;
             i = xlog_entries (self->xlog)->slots[i].next) {
            if (attempt_eq (xlog_entries (self->xlog)->slots[i].tp.attempt, queries[k].attempt)) {
                out[k].state = xlog_entries (self->xlog)->slots[i].tp.state;
            }
        }
        int32_t live = attempts_head (&self->attempts, queries[k].id);
        if (live >= 0 && attempt_eq (self->attempts.slots[live].tp.attempt, queries[k].attempt)) {
            out[k].state = RL_TP_PENDING;
        }
    }
}

//  Participant ------------------------------------------------------------------------

//  Drops a marker: from the table and from the prepared column family.
static void
s_marker_drop (twophase_t *self, int32_t slot)
{
    uint8_t key[S_KEY_SIZE];
    s_record_key (&self->records.slots[slot], key);
    store_batch_delete (self->ledger->store, STORE_CF_PREPARED, key, sizeof (key));
    attempts_remove (&self->records, slot);
}

//  Evicts the oldest markers: while the FIFO is full (room for one more),
//  or while the oldest has expired (now_ns != 0). Stale FIFO entries (the
//  slot was reused or removed) are skipped.
static void
s_markers_evict (twophase_t *self, uint64_t now_ns, bool make_room)
{
    while (self->markers_head < self->markers_tail) {
        s_marker_t *m = &self->markers[self->markers_head % RL_TP_MARKERS_MAX];
        attempt_t *e = &self->records.slots[m->slot];
        bool current = e->state == ATTEMPT_ABORTED && e->stamp == m->stamp;
        bool full = self->markers_tail - self->markers_head >= self->markers_max;
        if (current && !(make_room && full) && !(now_ns && now_ns >= e->deadline_ns)) {
            break;
        }
        if (current) {
            s_marker_drop (self, m->slot);
        }
        self->markers_head++;
    }
}

//  Records that the entry became an applied or aborted marker.
static void
s_marker_push (twophase_t *self, attempt_t *e)
{
    s_markers_evict (self, 0, true);
    assert (self->markers_tail - self->markers_head < self->markers_max);
    e->stamp = ++self->marker_stamp;
    self->markers[self->markers_tail++ % RL_TP_MARKERS_MAX] = (s_marker_t){
        .slot = (int32_t) (e - self->records.slots), .stamp = e->stamp};
}

//  Releases a PREPARED record's reservation and turns it into a tombstone.
static void
s_record_abort (twophase_t *self, attempt_t *e, uint64_t now_ns)
{
    if (e->state == ATTEMPT_PREPARED) {
        accounts_credit_release (self->ledger->accounts, e->transfer.credit_account_id,
                                 e->transfer.amount, false);
        self->prepared_count--;
    }
    e->state = ATTEMPT_ABORTED;
    e->tp.state = RL_TP_ABORT;
    e->deadline_ns = now_ns + RL_TP_TOMBSTONE_MS * 1000000ull;
    s_record_put (self, e);
    s_marker_push (self, e);
}

//  Applies a commit to a PREPARED record: the credit leg becomes a transfer.
static void
s_record_commit (twophase_t *self, attempt_t *e, uint64_t now_ns)
{
    ledger_t *ledger = self->ledger;
    assert (e->state == ATTEMPT_PREPARED);
    accounts_credit_release (ledger->accounts, e->transfer.credit_account_id, e->transfer.amount,
                             true);
    self->prepared_count--;
    rl_transfer_t leg = e->transfer;
    leg.timestamp = ledger_i_next_ts (ledger, now_ns);
    leg.reserved = LEDGER_STORED (RL_OK, LEDGER_LEG_CREDIT);
    if (ledger_i_store_transfer (ledger, &leg, false) != 0) {
        rl_error ("two-phase: out of memory storing a credit leg");
        abort ();
    }
    //  The credit leg itself is the durable "applied" marker (leg index):
    //  the prepared record goes.
    uint8_t key[S_KEY_SIZE];
    s_record_key (e, key);
    store_batch_delete (ledger->store, STORE_CF_PREPARED, key, sizeof (key));
    attempts_remove (&self->records, (int32_t) (e - self->records.slots));
}

//  Checks and reserves the credit of one PREPARE; returns the reply state.
static uint32_t
s_prepare_one (twophase_t *self, const rl_prepare_rec_t *rec, uint64_t now_ns, uint32_t *result)
{
    ledger_t *ledger = self->ledger;
    const rl_transfer_t *t = &rec->transfer;
    *result = RL_OK;
    if (!rl_id_eq (t->id, rec->tp.id) || rec->tp.coordinator[0] == '\0'
        || !ledger_i_owns (ledger, t->credit_account_id)) {
        *result = RL_WRONG_SHARD;
        return RL_TP_REFUSED;
    }
    //  A duplicate PREPARE of an attempt already applied here finds no record
    //  (it was deleted at the commit). It must not be prepared again: D may
    //  still hold COMMIT in its log (the ACK was lost) and resend it, which
    //  would apply the credit a second time. The leg index says it was applied.
    int applied = ledger_i_leg_applied (ledger, t->id, t->debit_account_id);
    if (applied != 0) {
        *result = applied < 0 ? RL_STORAGE_ERROR : RL_IN_DOUBT;
        return RL_TP_REFUSED;
    }
    int32_t i = attempts_find (&self->records, t->id, rec->tp.coordinator);
    if (i >= 0) {
        attempt_t *e = &self->records.slots[i];
        if (attempt_eq (e->tp.attempt, rec->tp.attempt)) {
            //  A duplicate PREPARE: answer as before.
            *result = e->state == ATTEMPT_ABORTED ? RL_ABORTED : RL_OK;
            return e->state == ATTEMPT_ABORTED ? RL_TP_REFUSED : RL_TP_PREPARED;
        }
        if (attempt_older (rec->tp.attempt, e->tp.attempt)) {
            *result = RL_ABORTED; //  a late PREPARE of a superseded attempt
            return RL_TP_REFUSED;
        }
        //  An older attempt of the same id: aborted by invariant 2.
        if (e->state == ATTEMPT_PREPARED) {
            s_record_abort (self, e, now_ns);
        }
        s_marker_drop (self, i);
    }
    *result = accounts_credit_reserve (ledger->accounts, t);
    if (*result != RL_OK) {
        return RL_TP_REFUSED;
    }
    if (self->prepared_count >= RL_TP_PREPARED_MAX
        || (i = attempts_add (&self->records, t->id)) < 0) {
        accounts_credit_release (ledger->accounts, t->credit_account_id, t->amount, false);
        *result = RL_BUSY;
        return RL_TP_REFUSED;
    }
    attempt_t *e = &self->records.slots[i];
    e->state = ATTEMPT_PREPARED;
    e->transfer = *t;
    e->tp = rec->tp;
    e->tp.state = RL_TP_PREPARED;
    e->created_ns = now_ns;
    e->key_seq = ++self->key_seq;
    e->backoff_ms = self->retry_min_ms;
    e->next_ns = now_ns + self->query_after_ms * 1000000ull;
    self->prepared_count++;
    s_record_put (self, e);
    return RL_TP_PREPARED;
}

void
ledger_prepare (ledger_t *ledger, const rl_prepare_rec_t *recs, size_t count, uint64_t now_ns,
                rl_tp_rec_t *out)
{
    twophase_t *self = ledger->tp;
    for (size_t k = 0; k < count; k++) {
        out[k] = recs[k].tp;
        out[k].state = s_prepare_one (self, &recs[k], now_ns, &out[k].result);
    }
    if (count > 0) {
        RL_FAILPOINT (TP_PART_PREPARED);
    }
}

//  Applies one decision (DECIDE, or an outcome answer); returns the ack state.
static uint32_t
s_decide_one (twophase_t *self, const rl_tp_rec_t *d, uint64_t now_ns)
{
    int32_t i = attempts_find (&self->records, d->id, d->coordinator);
    attempt_t *e = i >= 0 ? &self->records.slots[i] : NULL;
    bool same = e && attempt_eq (e->tp.attempt, d->attempt);
    if (same && e->state == ATTEMPT_HEURISTIC) {
        if (e->tp.state == d->state) {
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
    if (d->state == RL_TP_COMMIT) {
        if (same && e->state == ATTEMPT_PREPARED) {
            s_record_commit (self, e, now_ns);
            return RL_TP_ACKED;
        }
        if (!e || !same) {
            int applied = ledger_i_leg_applied (self->ledger, d->id, d->debit_account_id);
            if (applied == 1) {
                return RL_TP_ACKED; //  applied earlier; the ACK was lost
            }
            if (applied < 0) {
                return RL_TP_NOT_ACKED; //  cannot tell now: the coordinator resends
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
    assert (d->state == RL_TP_ABORT);
    if (same) {
        if (e->state == ATTEMPT_PREPARED) {
            s_record_abort (self, e, now_ns);
        }
        return RL_TP_ACKED;
    }
    if (e && !attempt_older (e->tp.attempt, d->attempt)) {
        return RL_TP_ACKED; //  we hold a newer attempt: this abort concerns nothing here
    }
    //  Unknown attempt (or newer than ours): leave a tombstone so that a late
    //  PREPARE of it is refused. An older PREPARED one is aborted by invariant 2.
    if (e) {
        if (e->state == ATTEMPT_PREPARED) {
            s_record_abort (self, e, now_ns);
        }
        s_marker_drop (self, i);
    }
    i = attempts_add (&self->records, d->id);
    if (i < 0) {
        return RL_TP_NOT_ACKED; //  no room for the tombstone: ask again later
    }
    e = &self->records.slots[i];
    e->state = ATTEMPT_ABORTED;
    e->key_seq = ++self->key_seq;
    e->tp = *d;
    e->transfer.id = d->id;
    e->transfer.debit_account_id = d->debit_account_id;
    s_record_abort (self, e, now_ns);
    return RL_TP_ACKED;
}

void
ledger_decide (ledger_t *ledger, const rl_tp_rec_t *recs, size_t count, uint64_t now_ns,
               rl_tp_rec_t *out)
{
    twophase_t *self = ledger->tp;
    for (size_t k = 0; k < count; k++) {
        out[k] = recs[k];
        if (recs[k].state != RL_TP_COMMIT && recs[k].state != RL_TP_ABORT) {
            out[k].state = RL_TP_NOT_ACKED;
            continue;
        }
        out[k].state = s_decide_one (self, &recs[k], now_ns);
    }
    if (count > 0) {
        RL_FAILPOINT (TP_PART_APPLIED);
    }
}

void
ledger_outcome_answers (ledger_t *ledger, const rl_tp_rec_t *answers, size_t count, uint64_t now_ns)
{
    twophase_t *self = ledger->tp;
    for (size_t k = 0; k < count; k++) {
        const rl_tp_rec_t *a = &answers[k];
        int32_t i = attempts_find (&self->records, a->id, a->coordinator);
        if (i < 0 || self->records.slots[i].state != ATTEMPT_PREPARED
            || !attempt_eq (self->records.slots[i].tp.attempt, a->attempt)) {
            continue; //  answers matter only to a record still prepared
        }
        if (a->state == RL_TP_COMMIT || a->state == RL_TP_ABORT) {
            s_decide_one (self, a, now_ns);
        }
    }
}

//  Timers --------------------------------------------------------------------------------

static void
s_backoff (twophase_t *self, attempt_t *e, uint64_t now_ns)
{
    e->next_ns = now_ns + e->backoff_ms * 1000000ull;
    e->backoff_ms = e->backoff_ms * 2 > self->retry_max_ms ? self->retry_max_ms : e->backoff_ms * 2;
}

void
ledger_tick (ledger_t *ledger, uint64_t now_ns)
{
    twophase_t *self = ledger->tp;
    size_t work = 0;
    //  Coordinator: prepare timeouts decide abort (infrastructure: not burned).
    //  Scans only when the earliest deadline may have come (O(table) a scan).
    size_t span = 0;
    if (now_ns >= self->attempts_due_ns) {
        self->attempts_due_ns = UINT64_MAX;
        span = attempts_span (&self->attempts);
        for (size_t i = 0; i < span; i++) {
            attempt_t *e = &self->attempts.slots[i];
            if (e->state != ATTEMPT_LIVE) {
                continue;
            }
            if (now_ns >= e->deadline_ns) {
                s_finish (self, (int32_t) i, RL_ABORTED, RL_TP_ABORT, now_ns);
                RL_FAILPOINT (TP_COORD_ABORT_DECIDED);
            } else if (e->deadline_ns < self->attempts_due_ns) {
                self->attempts_due_ns = e->deadline_ns;
            }
        }
    }
    //  Coordinator: resend decisions until acknowledged, forever, capped backoff.
    if (now_ns >= self->xlog_due_ns) {
        self->xlog_due_ns = UINT64_MAX;
        span = attempts_span (xlog_entries (self->xlog));
        for (size_t i = 0; i < span; i++) {
            attempt_t *e = &xlog_entries (self->xlog)->slots[i];
            if (e->state != ATTEMPT_DECIDED) {
                continue;
            }
            if (now_ns >= e->next_ns && work < RL_TP_WORK_PER_TICK_MAX) {
                self->io.decide (self->io_ctx, e->peer, &e->tp);
                s_backoff (self, e, now_ns);
                work++;
            }
            if (e->next_ns < self->xlog_due_ns) {
                self->xlog_due_ns = e->next_ns;
            }
        }
    }
    //  Participant: expire markers (oldest first); ask about old prepared
    //  records, scanning at most once per retry_min_ms (O(table) a scan).
    s_markers_evict (self, now_ns, false);
    if (self->prepared_count > 0 && now_ns >= self->next_scan_ns) {
        self->next_scan_ns = now_ns + self->retry_min_ms * 1000000ull;
        span = attempts_span (&self->records);
        for (size_t i = 0; i < span && work < RL_TP_WORK_PER_TICK_MAX; i++) {
            attempt_t *e = &self->records.slots[i];
            if (e->state == ATTEMPT_PREPARED && now_ns >= e->next_ns) {
                self->io.query (self->io_ctx, e->tp.coordinator, &e->tp);
                s_backoff (self, e, now_ns);
                work++;
            }
        }
    }
}

void
ledger_tp_counts (const ledger_t *ledger, uint64_t *inflight, uint64_t *in_doubt, uint64_t *alarms)
{
    const twophase_t *self = ledger->tp;
    *inflight = self->attempts.count + xlog_entries (self->xlog)->count;
    *in_doubt = self->prepared_count;
    *alarms = self->alarms;
}

void
ledger_set_tp_timeouts (ledger_t *ledger, uint64_t prepare_ms, uint64_t query_after_ms,
                        uint64_t retry_min_ms, uint64_t retry_max_ms)
{
    twophase_t *self = ledger->tp;
    assert (prepare_ms > 0 && query_after_ms > 0 && retry_min_ms > 0);
    assert (retry_min_ms <= retry_max_ms);
    self->prepare_timeout_ms = prepare_ms;
    self->query_after_ms = query_after_ms;
    self->retry_min_ms = retry_min_ms;
    self->retry_max_ms = retry_max_ms;
}

int
ledger_audit (ledger_t *ledger, char *err, size_t err_size)
{
    twophase_t *self = ledger->tp;
    size_t n = accounts_count (ledger->accounts);
    uint64_t *debits = calloc (n + 1, sizeof (uint64_t));
    uint64_t *credits = calloc (n + 1, sizeof (uint64_t));
    int rc = debits && credits ? 0 : -1;
    size_t span = attempts_span (&self->attempts);
    for (size_t i = 0; rc == 0 && i < span; i++) {
        const attempt_t *e = &self->attempts.slots[i];
        size_t slot = 0;
        if (e->state == ATTEMPT_LIVE
            && accounts_slot (ledger->accounts, e->transfer.debit_account_id, &slot)) {
            debits[slot] += e->transfer.amount;
        }
    }
    span = attempts_span (&self->records);
    for (size_t i = 0; rc == 0 && i < span; i++) {
        const attempt_t *e = &self->records.slots[i];
        size_t slot = 0;
        if (e->state == ATTEMPT_PREPARED
            && accounts_slot (ledger->accounts, e->transfer.credit_account_id, &slot)) {
            credits[slot] += e->transfer.amount;
        }
    }
    if (rc == 0) {
        rc = accounts_audit (ledger->accounts, debits, credits, err, err_size);
    } else {
        snprintf (err, err_size, "out of memory");
    }
    free (debits);
    free (credits);
    return rc;
}

size_t
ledger_in_doubt (ledger_t *ledger, rl_in_doubt_rec_t *out, size_t cap)
{
    twophase_t *self = ledger->tp;
    const attempts_t *tables[3] = {&self->attempts, xlog_entries (self->xlog), &self->records};
    size_t n = 0;
    for (int t = 0; t < 3; t++) {
        size_t span = attempts_span (tables[t]);
        for (size_t i = 0; i < span && n < cap; i++) {
            const attempt_t *e = &tables[t]->slots[i];
            if (e->state != ATTEMPT_LIVE && e->state != ATTEMPT_DECIDED
                && e->state != ATTEMPT_PREPARED) {
                continue;
            }
            rl_in_doubt_rec_t *r = &out[n++];
            memset (r, 0, sizeof (*r));
            r->prepare.transfer = e->transfer;
            r->prepare.tp = e->tp;
            if (e->state == ATTEMPT_LIVE) {
                r->prepare.tp.state = RL_TP_PENDING;
            }
            r->prepare.reserved[0] = e->created_ns;
            r->prepare.reserved[1] = e->state == ATTEMPT_PREPARED ? RL_ROLE_PARTICIPANT
                                                                  : RL_ROLE_COORDINATOR;
            snprintf (r->peer, sizeof (r->peer), "%s",
                      e->state == ATTEMPT_PREPARED ? e->tp.coordinator : e->peer);
        }
    }
    return n;
}

void
ledger_audit_counts (const ledger_t *ledger, uint64_t *accounts, uint64_t *live, uint64_t *prepared)
{
    *accounts = accounts_count (ledger->accounts);
    *live = ledger->tp->attempts.count;
    *prepared = ledger->tp->prepared_count;
}

void
ledger_set_tp_markers_max (ledger_t *ledger, size_t markers_max)
{
    assert (markers_max >= 1 && markers_max <= RL_TP_MARKERS_MAX);
    ledger->tp->markers_max = markers_max;
}

uint32_t
ledger_resolve (ledger_t *ledger, const rl_tp_rec_t *rec, uint64_t now_ns)
{
    twophase_t *self = ledger->tp;
    if (rec->state != RL_TP_COMMIT && rec->state != RL_TP_ABORT) {
        return RL_RESOLVE_BAD_DECISION;
    }
    //  The operator names the attempt by counter and sequence (as listed).
    int32_t i = attempts_find (&self->records, rec->id, rec->coordinator);
    if (i < 0 || self->records.slots[i].state != ATTEMPT_PREPARED
        || self->records.slots[i].tp.attempt.counter != rec->attempt.counter
        || self->records.slots[i].tp.attempt.seq != rec->attempt.seq) {
        return RL_RESOLVE_NOT_FOUND;
    }
    attempt_t *e = &self->records.slots[i];
    attempt_t kept = *e;
    if (rec->state == RL_TP_COMMIT) {
        s_record_commit (self, e, now_ns); //  applies the credit leg, drops the record
        i = attempts_add (&self->records, rec->id);
        assert (i >= 0); //  the slot just freed
        e = &self->records.slots[i];
        int32_t next = e->next;
        *e = kept;
        e->next = next;
    } else {
        s_record_abort (self, e, now_ns); //  releases the reservation
    }
    e->state = ATTEMPT_HEURISTIC;
    e->tp.state = rec->state;
    s_record_put (self, e); //  same key: overwrites the record in this batch
    rl_warn ("two-phase: transfer %016" PRIx64 "%016" PRIx64 " attempt %" PRIu64 ".%" PRIu64
             " from %s resolved by hand: %s (heuristic record written)",
             rec->id.hi, rec->id.lo, rec->attempt.counter, rec->attempt.seq, rec->coordinator,
             rl_tp_state_name (rec->state));
    return 0;
}
