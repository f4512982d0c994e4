/*  coordinator.c: the debit shard D of a cross-shard transfer.

    D coordinates; the credit shard C participates (participant.c). Escrow,
    not locks: D reserves the amount on the debit account, C on the credit
    account; every limit counts them, and nothing is locked across the
    network round trip. docs/two-phase.md draws the whole protocol.

    STATES of an attempt here (attempts.h):

        (none) --coordinator_begin--> LIVE            debit reserved, PREPARE queued
        LIVE --reply PREPARED--------> DECIDED(COMMIT) debit posted + record + xlog, one batch
        LIVE --reply REFUSED, business-> (none)        release, store the failure (burns the id)
        LIVE --reply REFUSED, infra----> (none)        release; aborted, not burned, not logged
        LIVE --prepare timeout (tick)--> DECIDED(ABORT) release, xlog ABORT
        DECIDED --ACK-----------------> (none)        xlog entry deleted
        DECIDED --RETRY---------------> DECIDED       not applied now: kept, resent, no alarm
        DECIDED --NOT_ACKED-----------> DECIDED       contrary or unknown: alarm, kept, resent
        DECIDED --tick, due------------> DECIDED       DECIDE resent, capped backoff, forever

    Every decision that ends a LIVE attempt completes its record of the
    client request; the request's reply is queued (OUTQ_REPLY) when its last
    record is decided.

    GROUPS (a linked chain crediting other shards, "Groups" below): the
    members' attempts are LIVE together, a local member (its credit here)
    with no participant; the group leaves LIVE in one call, every member
    with it: COMMIT once every participant answered PREPARED, ABORT at the
    first REFUSED or prepare timeout. So all of a chain's decisions are in
    one batch.

    PENDING KINDS (docs/payments.md, "Pending transfers across shards"). A pending transfer
    reserves and prepares like any other; its commit moves the debit to
    debits_pending instead of posting it (pending.c keeps the side DEBIT).
    A post or a void of one reserves nothing: the amount is pending
    already. The ledger resolved it (pending_check: every rule as on one
    shard) and claimed the pending transfer; its commit posts (part of)
    the debit and releases the rest (pending_apply); any other end
    releases the claim. An expiry is a void attempt without a client
    request (request -1), never burned: an abort leaves the transfer due
    and it is tried again (pending_claim).

    INVARIANTS
    1. Attempts are named (incarnation counter + nonce, seq) and D never
       reuses one: the counter grows and is synced (coordinator_open) before
       anything is served.
    2. One live attempt per transfer id. A new attempt for an id is started
       only when no earlier attempt of it can commit: the earlier one was
       decided ABORT, or belonged to an earlier incarnation (live attempts
       die with the process: presumed abort).
    3. D answers an outcome query with its logged decision, PENDING for the
       live attempt, and ABORT only when abort is presumed: an older
       incarnation, or a sequence of this one (same counter and nonce)
       already issued and finished without a logged commit. Anything else
       (a newer counter, our counter with another nonce: a restored or
       copied data directory; a sequence not issued yet) raises an alarm
       and is answered PENDING, no decision: the participant keeps asking.
    4. A live attempt holds exactly its amount in debits_reserved of its
       debit account (paired reserve/release in accounts.c; audited).
    5. Every message is stamped with the group commit of the write that
       justifies it: a DECIDE with its xlog entry's, a REPLY with the newest
       write among its records' outcomes, a PREPARE with none (nothing
       durable is needed to ask).
    6. A request slot is in use exactly while one of its records is a live
       attempt (open > 0) or until coordinator_request_hold frees it.

    7. Live attempts + logged decisions <= log_entries_max, which is at
       most the xlog's table (RL_TP_LOG_ENTRIES_MAX): coordinator_begin
       refuses (busy) an attempt whose decision could not be logged, so a
       decision always has room, however long a participant stays away.

    8. Sender rules (docs/security.md): an outcome query of an attempt live
       or logged here is answered only to its participant (else refused
       unauthorized); a PREPARE reply or an acknowledgement counts only
       from the attempt's participant (else ignored, counted).

    TIME: prepare deadlines and decision resends run on the monotonic
    clock (now.h), so that a step of the wall clock neither fires every
    deadline at once (forwards) nor freezes them (backwards). The wall
    clock only stamps records: transfer timestamps (journal.c) and the
    creation date an xlog entry stores for in_doubt. Logged decisions are
    due at once after a restart: no timer is stored.

    THE FIRST RESEND waits for about as long as an acknowledgement takes
    now, at least retry_min_ms and at most retry_max_ms: as TCP sets its
    retransmission timeout, the running mean of the time from the log to
    the ACK plus four times its mean deviation (ack_ns, weight 1/8;
    ack_dev_ns, 1/4). One sample per message of acknowledgements, its
    slowest (at most retry_max_ms): a message holds thousands at full
    batches, all logged in one turn, and a sample each made the mean the
    last message's and the deviation zero. A DECIDE leaves only once its group commit
   is synced, and its ACK only once the participant's is: at full batches that round trip is a few
   turns, and a fixed 50 ms resent most decisions before their ACK could come back (1.4 resends a
   decision, measured: each a DECIDE record, its check at the participant, and an ACK, all for
   nothing). Only liveness depends on it: a decision is resent until acknowledged, whatever the
   wait.

    LIMITS: RL_TP_ATTEMPTS_MAX live attempts, and live attempts + logged
    decisions within the log's capacity (--tp-log-capacity, default and
    at most RL_TP_LOG_ENTRIES_MAX); beyond either: busy, not burned. A
    log reloaded fuller than a lowered capacity only refuses new attempts
    until acknowledgements drain it. At most
    RL_SHARD_PENDING_REQUESTS_MAX client requests wait for decisions (more:
    the request is answered busy). A tick scans the live attempts only when
    the earliest deadline may have come, and the log only when the earliest
    resend is due: O(table) a scan.
*/
#include "coordinator.h"

#include <assert.h>
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
#include "xlog.h"

//  The kinds of attempt: a plain transfer, a pending one, a post or void of
//  a pending one (resolve), the void of an expiry, and a chain member's
//  debit leg (its debit account on the peer: "Groups").
static bool
s_is_leg (const rl_transfer_t *t)
{
    return (t->flags & RL_TRANSFER_TP_LEGS) != 0;
}

//  The credit leg of a member whose debit leg is on a third shard: an
//  attempt of its own, same id ("Credit on a third shard" below).
static bool
s_is_credit_third (const rl_transfer_t *t)
{
    return (t->flags & RL_TRANSFER_TP_LEGS) == RL_TRANSFER_TP_CREDIT_THIRD;
}

//  A live debit leg that holds its credit side here: reserved at its begin,
//  or for a post leg its pending transfer's credit side claimed (ledger.c,
//  s_post_leg) (a doomed one holds nothing: "Groups"; a credit on a third
//  shard is that shard's).
static bool
s_leg_holds_credit (const attempt_t *e)
{
    return (e->transfer.flags & RL_TRANSFER_TP_LEGS) == RL_TRANSFER_TP_DEBIT_LEG && !e->third
           && e->doomed == 0;
}

static bool
s_is_resolve (const rl_transfer_t *t)
{
    return (t->flags & PENDING_RESOLVE_FLAGS) != 0;
}

//  A new pending transfer: its commit adds an entry to the pending table,
//  whose room it keeps from its begin (pending_promise).
static bool
s_is_pending (const rl_transfer_t *t)
{
    return (t->flags & RL_TRANSFER_PENDING) != 0;
}

static bool
s_is_expiry (const rl_transfer_t *t)
{
    return (t->flags & RL_TRANSFER_VOID_PENDING_TRANSFER)
           && pending_is_expiry_id (t->id, t->pending_id, t->debit_account_id);
}

#define META_INCARNATION "incarnation"

//  A client request waiting for cross-shard decisions.
typedef struct {
    bool used;
    bool held;                //  coordinator_request_hold kept it
    void *ctx;                //  the server's handle (its envelope)
    rl_header_t header;       //  the request's header
    rl_result_rec_t *results; //  one per record; COORDINATOR_PENDING until decided
    uint32_t count;
    uint32_t open;      //  records still live
    uint64_t needs_seq; //  newest write among the decided records' outcomes
} s_request_t;

//  A linked chain whose members credit other shards (GROUPS above).
typedef struct {
    bool used;
    bool launched;    //  its PREPAREs are queued (coordinator_group_launch)
    int32_t request;  //  the client request (requests[])
    uint32_t first;   //  its first record in that request
    uint32_t last;    //  its last (known at the launch)
    int32_t head;     //  its first member (a live attempt's slot), or -1
    int32_t tail;     //  its last member: members are kept in record order
    uint32_t members; //  live attempts in it
    uint32_t waiting; //  members of other shards not yet PREPARED
} s_group_t;

struct coordinator_t {
    store_t *store;
    accounts_t *accounts;
    journal_t *journal;
    outq_t *outq;
    pending_t *pending; //  user-level pending transfers (NULL: pending kinds refused)
    const ring_t *ring; //  the ring served now (participants by index)
    char name[RL_SHARD_NAME_SIZE_MAX];
    rl_attempt_t incarnation; //  counter, nonce; seq counts attempts
    attempts_t attempts;      //  ATTEMPT_LIVE
    xlog_t *xlog;             //  ATTEMPT_DECIDED
    s_request_t requests[RL_SHARD_PENDING_REQUESTS_MAX];
    size_t requests_used;
    uint64_t attempts_due_ns; //  no live attempt times out before this
    uint64_t xlog_due_ns;     //  no decision is due for resending before this
    uint64_t alarms;
    size_t log_entries_max; //  live attempts + logged decisions (invariant 7)
    uint64_t prepare_timeout_ms;
    uint64_t retry_min_ms;
    uint64_t retry_max_ms;
    uint64_t ack_ns;       //  running mean of the time from the log to the ACK (0: none yet)
    uint64_t ack_dev_ns;   //  running mean deviation of that time
    s_group_t *groups;     //  linked chains across shards, by number (1..RL_TP_GROUPS_MAX)
    uint32_t *groups_free; //  the numbers not in use (a stack)
    size_t groups_free_count;
    uint64_t groups_committed; //  chains across shards committed whole
    uint64_t groups_failed;    //  ... refused or aborted whole
    bool chain_decided;        //  a chain's decision logged since coordinator_urgent_take
};

void
coordinator_set_pending (coordinator_t *self, pending_t *pending)
{
    assert (self);
    self->pending = pending;
}

coordinator_t *
coordinator_new (store_t *store, accounts_t *accounts, journal_t *journal, outq_t *outq,
                 const char *name)
{
    assert (store && accounts && journal && outq && name);
    assert (strlen (name) < RL_SHARD_NAME_SIZE_MAX);
    coordinator_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->accounts = accounts;
    self->journal = journal;
    self->outq = outq;
    memcpy (self->name, name, strlen (name) + 1);
    self->prepare_timeout_ms = RL_PREPARE_TIMEOUT_MS;
    self->retry_min_ms = RL_TP_RETRY_MIN_MS;
    self->retry_max_ms = RL_TP_RETRY_MAX_MS;
    self->log_entries_max = RL_TP_LOG_ENTRIES_MAX;
    self->attempts_due_ns = UINT64_MAX; //  no live attempt yet
    self->xlog_due_ns = 0;              //  recovered decisions: resend at the first tick
    self->groups = calloc (RL_TP_GROUPS_MAX + 1, sizeof (*self->groups));
    self->groups_free = malloc (RL_TP_GROUPS_MAX * sizeof (*self->groups_free));
    if (attempts_init (&self->attempts, RL_TP_ATTEMPTS_MAX) != 0
        || !(self->xlog = xlog_new (store, RL_TP_LOG_ENTRIES_MAX)) || !self->groups
        || !self->groups_free) {
        coordinator_destroy (&self);
        return NULL;
    }
    for (uint32_t g = RL_TP_GROUPS_MAX; g >= 1; g--) {
        self->groups_free[self->groups_free_count++] = g; //  1 is taken first
    }
    return self;
}

void
coordinator_destroy (coordinator_t **self_p)
{
    assert (self_p);
    coordinator_t *self = *self_p;
    if (!self) {
        return;
    }
    for (size_t i = 0; i < RL_SHARD_PENDING_REQUESTS_MAX; i++) {
        free (self->requests[i].results);
    }
    attempts_free (&self->attempts);
    xlog_destroy (&self->xlog);
    free (self->groups);
    free (self->groups_free);
    free (self);
    *self_p = NULL;
}

//  The participant's index in the ring served now, or -1 (not in it: the
//  decision waits for a ring that names it again).
static int32_t
s_peer_index (const coordinator_t *self, const char *peer)
{
    return self->ring ? (int32_t) ring_shard_find (self->ring, peer) : -1;
}

int
coordinator_open (coordinator_t *self, uint64_t nonce, now_t now, char *err, size_t err_size)
{
    assert (self && self->incarnation.counter == 0);
    assert (xlog_count (self->xlog) == 0 && self->attempts.count == 0);
    uint8_t bytes[16];
    size_t size = 0;
    int rc = store_get (self->store, STORE_CF_META, META_INCARNATION, strlen (META_INCARNATION),
                        bytes, sizeof (bytes), &size);
    if (rc < 0) {
        snprintf (err, err_size, "cannot read the incarnation");
        return -1;
    }
    uint64_t counter = rc == 1 && size == 16 ? codec_get_u64 (bytes) : 0;
    self->incarnation = (rl_attempt_t){.counter = counter + 1, .nonce = nonce};
    codec_put_u64 (bytes, self->incarnation.counter);
    codec_put_u64 (bytes + 8, self->incarnation.nonce);
    assert (store_batch_count (self->store) == 0);
    store_batch_put (self->store, STORE_CF_META, META_INCARNATION, strlen (META_INCARNATION), bytes,
                     sizeof (bytes));
    if (store_commit (self->store) != 0) {
        snprintf (err, err_size, "cannot persist the incarnation: %s", store_error (self->store));
        return -1;
    }
    if (xlog_load (self->xlog, now.mono_ns, self->retry_min_ms, err, err_size) != 0) {
        return -1;
    }
    coordinator_set_ring (self, self->ring); //  the recovered entries' peer indexes
    assert (self->incarnation.counter > counter);
    return 0;
}

void
coordinator_set_ring (coordinator_t *self, const ring_t *ring)
{
    assert (self);
    self->ring = ring;
    //  Indexes move with the ring: resolve every entry's participant once.
    attempts_t *tables[2] = {&self->attempts, xlog_entries (self->xlog)};
    for (int t = 0; t < 2; t++) {
        size_t span = attempts_span (tables[t]);
        for (size_t i = 0; i < span; i++) {
            attempt_t *e = attempts_at (tables[t], (int32_t) i);
            if (e->state != ATTEMPT_FREE) {
                e->peer_index = s_peer_index (self, e->peer);
            }
        }
    }
}

void
coordinator_set_timeouts (coordinator_t *self, uint64_t prepare_ms, uint64_t retry_min_ms,
                          uint64_t retry_max_ms)
{
    assert (self);
    assert (prepare_ms > 0 && retry_min_ms > 0 && retry_min_ms <= retry_max_ms);
    self->prepare_timeout_ms = prepare_ms;
    self->retry_min_ms = retry_min_ms;
    self->retry_max_ms = retry_max_ms;
}

void
coordinator_set_log_capacity (coordinator_t *self, size_t entries)
{
    assert (self);
    assert (entries >= 1 && entries <= RL_TP_LOG_ENTRIES_MAX); //  within the xlog's table
    self->log_entries_max = entries;
}

//  The live attempt of id named `attempt` (a member whose credit is on a
//  third shard has two live attempts of its id), or -1.
static int32_t
s_live_find (coordinator_t *self, rl_id_t id, rl_attempt_t attempt)
{
    for (int32_t i = attempts_head (&self->attempts, id); i >= 0;
         i = attempts_at (&self->attempts, i)->next) {
        if (attempt_eq (attempts_at (&self->attempts, i)->tp.attempt, attempt)) {
            return i;
        }
    }
    return -1;
}

bool
coordinator_is_live (const coordinator_t *self, rl_id_t id)
{
    assert (self);
    return attempts_head (&self->attempts, id) >= 0;
}

//  Requests ------------------------------------------------------------------------

int32_t
coordinator_request_new (coordinator_t *self)
{
    assert (self);
    if (self->requests_used == RL_SHARD_PENDING_REQUESTS_MAX) {
        return -1;
    }
    for (int32_t i = 0; i < RL_SHARD_PENDING_REQUESTS_MAX; i++) {
        s_request_t *r = &self->requests[i];
        if (!r->used) {
            assert (!r->held && r->open == 0 && !r->results);
            r->used = true;
            r->needs_seq = 0;
            self->requests_used++;
            return i;
        }
    }
    assert (false && "requests_used counts the slots in use");
    return -1;
}

static void
s_request_free (coordinator_t *self, s_request_t *r)
{
    assert (r->used && r->open == 0 && self->requests_used > 0);
    free (r->results);
    *r = (s_request_t){0};
    self->requests_used--;
}

bool
coordinator_request_hold (coordinator_t *self, int32_t request, void *ctx,
                          const rl_header_t *header, rl_result_rec_t *results, uint32_t count)
{
    assert (self && request >= 0 && request < RL_SHARD_PENDING_REQUESTS_MAX);
    s_request_t *r = &self->requests[request];
    assert (r->used && !r->held && !r->results);
    assert (count == 0 || results);
    uint32_t open = 0;
    for (uint32_t i = 0; i < count; i++) {
        open += results[i].result == COORDINATOR_PENDING;
    }
    assert (open == r->open); //  paired with coordinator_begin
    if (open == 0) {
        s_request_free (self, r);
        return false;
    }
    r->results = malloc (count * sizeof (*results));
    if (!r->results) {
        //  Out of memory: the records stay live and decide alone; the client
        //  hears in_doubt for them now and looks them up later.
        rl_error ("coordinator: out of memory holding a request: answering in_doubt");
        for (uint32_t i = 0; i < count; i++) {
            if (results[i].result == COORDINATOR_PENDING) {
                results[i].result = RL_IN_DOUBT;
            }
        }
        return false;
    }
    memcpy (r->results, results, count * sizeof (*results));
    r->held = true;
    r->ctx = ctx;
    r->header = *header;
    r->count = count;
    r->needs_seq = outq_batch_seq (self->outq); //  its same-shard records were written now
    return true;
}

void *
coordinator_request_drop (coordinator_t *self, rl_header_t *header_p)
{
    assert (self);
    for (size_t i = 0; i < RL_SHARD_PENDING_REQUESTS_MAX; i++) {
        s_request_t *r = &self->requests[i];
        if (r->used && r->held) {
            void *ctx = r->ctx;
            if (header_p) {
                *header_p = r->header;
            }
            //  Debit legs' commits waiting for their acknowledgement answer
            //  nobody any more.
            attempts_t *log = xlog_entries (self->xlog);
            for (size_t x = 0; x < attempts_span (log); x++) {
                attempt_t *e = attempts_at (log, (int32_t) x);
                if (e->state == ATTEMPT_DECIDED && e->request == (int32_t) i) {
                    e->request = -1;
                }
            }
            r->open = 0;
            s_request_free (self, r);
            return ctx;
        }
    }
    return NULL;
}

//  The repeats of a decided group member (coordinator_group_repeat),
//  answered with it: exists with its timestamp, or linked_event_failed.
static void
s_repeats_decided (const attempt_t *e, rl_result_rec_t *results, uint32_t count, uint32_t result,
                   uint64_t ts)
{
    uint32_t seen = 0;
    for (uint32_t k = e->repeat_head; k != 0; seen++) {
        assert (k - 1 < count && results[k - 1].result == COORDINATOR_PENDING);
        uint32_t next = (uint32_t) results[k - 1].timestamp;
        bool ok = result == RL_OK || result == RL_EXISTS;
        results[k - 1] = (rl_result_rec_t){.index = k - 1,
                                           .result = ok ? RL_EXISTS : RL_LINKED_EVENT_FAILED,
                                           .timestamp = ok ? ts : 0};
        k = next;
    }
    assert (seen == e->repeats);
}

//  One record of a request is decided; the reply is queued after the last.
static void
s_request_decided (coordinator_t *self, attempt_t *e, uint32_t result, uint64_t ts,
                   uint64_t write_seq)
{
    if (e->request < 0) {
        return; //  an expiry: no client waits for it
    }
    assert (e->request < RL_SHARD_PENDING_REQUESTS_MAX);
    s_request_t *r = &self->requests[e->request];
    assert (r->used && r->open >= 1 + e->repeats);
    r->open -= 1 + e->repeats;
    if (!r->held) {
        //  Not kept (out of memory in coordinator_request_hold): the client
        //  was told in_doubt; nobody waits for this result.
        if (r->open == 0) {
            s_request_free (self, r);
        }
        return;
    }
    assert (e->index < r->count && r->results[e->index].result == COORDINATOR_PENDING);
    r->results[e->index] = (rl_result_rec_t){
        .index = e->index,
        .result = result,
        .timestamp = result == RL_OK || result == RL_EXISTS ? ts : 0};
    s_repeats_decided (e, r->results, r->count, result, ts);
    if (write_seq > r->needs_seq) {
        r->needs_seq = write_seq;
    }
    if (r->open > 0) {
        return;
    }
    outq_msg_t msg = {.kind = OUTQ_REPLY, .peer = -1, .needs_seq = r->needs_seq};
    msg.reply.ctx = r->ctx;
    msg.reply.header = r->header;
    msg.reply.results = r->results;
    msg.reply.count = r->count;
    if (outq_push (self->outq, &msg) != 0) {
        rl_error ("coordinator: out of memory queueing a reply: the client retries");
        free (r->results); //  the ctx goes with the server's held requests at shutdown
    }
    r->results = NULL;
    r->held = false;
    r->ctx = NULL;
    s_request_free (self, r);
}

//  Attempts -------------------------------------------------------------------------

//  A shard name into a field of size bytes, cut like snprintf's "%s" (a
//  call of that per name was about 1% of a debit shard's samples).
static void
s_copy_name (char *dst, size_t size, const char *name)
{
    size_t n = strnlen (name, size - 1);
    memcpy (dst, name, n);
    dst[n] = '\0';
}

//  Queues the PREPARE of live attempt e. A chain's member goes as the
//  plain transfer it is: `linked` says where it stood in its request, and
//  the participant refuses it (reserved_field) as no single transfer's.
static void
s_queue_prepare (coordinator_t *self, const attempt_t *e)
{
    assert (e->state == ATTEMPT_LIVE && !e->local);
    outq_msg_t msg = {.kind = OUTQ_PREPARE, .peer = e->peer_index, .needs_seq = 0};
    msg.prepare = (rl_prepare_rec_t){.transfer = e->transfer, .tp = e->tp};
    msg.prepare.transfer.flags &= (uint16_t) ~RL_TRANSFER_LINKED;
    if (outq_push (self->outq, &msg) != 0) {
        rl_warn ("coordinator: out of memory queueing a PREPARE: it times out");
    }
}

//  The group numbered g (in use).
static s_group_t *
s_group (coordinator_t *self, uint32_t g)
{
    assert (g >= 1 && g <= RL_TP_GROUPS_MAX && self->groups[g].used);
    return &self->groups[g];
}

//  Attempt slot i becomes a live attempt of transfer t towards peer: a new
//  attempt id of this incarnation, its prepare deadline armed. Peer -1: a
//  chain's member held here, its "participant" this shard, with no
//  deadline of its own (its group decides it).
static attempt_t *
s_attempt_begin (coordinator_t *self, int32_t i, const rl_transfer_t *t, int peer, int32_t request,
                 uint32_t index, now_t now)
{
    bool local = peer < 0;
    attempt_t *e = attempts_at (&self->attempts, i);
    e->state = ATTEMPT_LIVE;
    e->transfer = *t;
    e->tp.id = t->id;
    e->tp.attempt = self->incarnation;
    e->tp.attempt.seq = ++self->incarnation.seq;
    e->tp.amount = t->amount;
    e->tp.debit_account_id = t->debit_account_id;
    s_copy_name (e->tp.coordinator, sizeof (e->tp.coordinator), self->name);
    s_copy_name (e->peer, sizeof (e->peer),
                 local ? self->name : ring_shard_name (self->ring, (size_t) peer));
    e->peer_index = local ? s_peer_index (self, self->name) : peer;
    e->deadline_ns = local ? UINT64_MAX : now.mono_ns + self->prepare_timeout_ms * 1000000ull;
    if (e->deadline_ns < self->attempts_due_ns) {
        self->attempts_due_ns = e->deadline_ns;
    }
    e->created_ns = now.wall_ns;
    e->request = request;
    e->index = index;
    e->exists_ts = 0;
    e->doomed = 0;
    e->third = false;
    e->of_member = false;
    return e;
}

//  Puts the live attempt at slot i into group g: not yet launched, or (a
//  credit leg on a third shard) launched and still waiting.
static void
s_group_join (coordinator_t *self, uint32_t g, int32_t i, bool local)
{
    s_group_t *group = s_group (self, g);
    attempt_t *e = attempts_at (&self->attempts, i);
    assert (!group->launched || (s_is_credit_third (&e->transfer) && group->waiting > 0));
    e->group = g;
    e->group_next = -1;
    e->local = local;
    e->prepared = false;
    e->repeats = 0;
    e->repeat_head = 0;
    //  Appended, so that a decision walks the members in record order and
    //  their timestamps increase with it, as in a chain of one shard.
    if (group->head < 0) {
        group->head = i;
    } else {
        attempts_at (&self->attempts, group->tail)->group_next = i;
    }
    group->tail = i;
    group->members++;
    group->waiting += !local;
}

rl_result_rec_t
coordinator_begin (coordinator_t *self, const rl_transfer_t *t, int32_t peer, now_t now,
                   int32_t request, uint32_t index, uint32_t group)
{
    assert (self && t && self->ring);
    assert (peer >= 0 && (size_t) peer < ring_shard_count (self->ring));
    assert ((request >= 0 && request < RL_SHARD_PENDING_REQUESTS_MAX) || s_is_expiry (t));
    assert (request < 0 || (self->requests[request].used && !self->requests[request].held));
    assert (!coordinator_is_live (self, t->id)); //  the ledger checked it (invariant 2)
    assert (!(t->flags & PENDING_FLAGS) || self->pending);
    assert (group == 0 || request >= 0);
    rl_result_rec_t r = {0};
    bool resolve = s_is_resolve (t);
    //  A post or void reserves nothing: the amount is pending already.
    r.result = resolve ? RL_OK : accounts_debit_reserve (self->accounts, t);
    if (r.result != RL_OK && group != 0) {
        return r; //  a chain's member: its chain fails, nothing is stored (burns nothing)
    }
    if (r.result != RL_OK) {
        //  Decided here, before any message: store the failure (burns the id).
        rl_transfer_t record = *t;
        record.timestamp = journal_next_ts (self->journal, now.wall_ns);
        record.reserved = JOURNAL_STORED (r.result, JOURNAL_LEG_DEBIT);
        if (journal_append (self->journal, &record) != 0) {
            r.result = RL_STORAGE_ERROR;
            return r;
        }
        r.timestamp = record.timestamp;
        return r;
    }
    //  Invariant 7: the decision of every attempt begun has room in the log.
    bool log_full = self->attempts.count + xlog_count (self->xlog) >= self->log_entries_max;
    int32_t i = log_full ? -1 : attempts_add (&self->attempts, t->id);
    if (i < 0) {
        if (!resolve) {
            accounts_debit_release (self->accounts, t->debit_account_id, t->amount, false);
        }
        r.result = RL_BUSY;
        return r;
    }
    //  A post or void claims its pending transfer (one attempt at a time),
    //  unless an earlier member of its chain makes it: not in the table
    //  yet, added just before this one is applied, at the commit.
    bool of_member = resolve && coordinator_group_member (self, group, t->pending_id) != NULL;
    if (resolve && !of_member) {
        pending_claim (self->pending, t->pending_id, true, 0);
    }
    if (s_is_pending (t)) {
        pending_promise (self->pending, true); //  the ledger asked pending_room
    }
    attempt_t *e = s_attempt_begin (self, i, t, peer, request, index, now);
    e->of_member = of_member;
    if (request >= 0) {
        self->requests[request].open++;
    }
    if (group != 0) {
        s_group_join (self, group, i, false); //  its PREPARE goes at the launch
    } else {
        s_queue_prepare (self, e);
    }
    r.result = COORDINATOR_PENDING;
    assert (e->state == ATTEMPT_LIVE && coordinator_is_live (self, t->id));
    assert (self->attempts.count + xlog_count (self->xlog) <= self->log_entries_max);
    return r;
}

static void
s_queue_decide (coordinator_t *self, const attempt_t *e)
{
    assert (e->state == ATTEMPT_DECIDED);
    outq_msg_t msg = {.kind = OUTQ_DECIDE, .peer = e->peer_index, .needs_seq = e->write_seq};
    msg.tp = e->tp;
    if (outq_push (self->outq, &msg) != 0) {
        rl_warn ("coordinator: out of memory queueing a DECIDE: resent later");
    }
}

//  The wait before the first resend of a decision (see TIME above).
static uint64_t
s_first_backoff_ms (const coordinator_t *self)
{
    uint64_t ms = (self->ack_ns + 4 * self->ack_dev_ns) / 1000000u;
    return ms < self->retry_min_ms   ? self->retry_min_ms
           : ms > self->retry_max_ms ? self->retry_max_ms
                                     : ms;
}

//  Moves a live attempt to the xlog with `decision`; schedules its delivery.
static void
s_log_decision (coordinator_t *self, const attempt_t *live, uint32_t decision, uint64_t mono_ns)
{
    int32_t x = xlog_append (self->xlog, live, decision, outq_batch_seq (self->outq));
    self->chain_decided |= live->group != 0;
    attempt_t *e = attempts_at (xlog_entries (self->xlog), x);
    e->backoff_ms = s_first_backoff_ms (self);
    e->next_ns = mono_ns + e->backoff_ms * 1000000ull;
    e->deadline_ns = mono_ns; //  a decided entry's: when it was logged (the ACK's time, TIME)
    if (e->next_ns < self->xlog_due_ns) {
        self->xlog_due_ns = e->next_ns;
    }
    s_queue_decide (self, e);
    assert (e->tp.state == decision && e->write_seq == outq_batch_seq (self->outq));
}

//  Ends a live debit leg (always a chain's member): the credit held here
//  is posted (commit: a credit leg stored, as a participant stores one) or
//  released; nothing of the debit is here. A commit's result waits for the
//  debit shard's acknowledgement, which carries the timestamp of the
//  transfer it stored there (coordinator_decide_replies): the logged entry
//  keeps the request until then. A member stored there before (exists)
//  needs no decision: it is answered exists with that record's timestamp.
static void
s_leg_finish (coordinator_t *self, int32_t i, uint32_t result, uint32_t decision, now_t now)
{
    attempt_t *e = attempts_at (&self->attempts, i);
    const rl_transfer_t *t = &e->transfer;
    assert (e->group != 0 && (e->exists_ts == 0 || decision == 0));
    bool commit = decision == RL_TP_COMMIT;
    bool pending = s_is_pending (t);
    assert (!commit || e->doomed == 0);
    bool resolve = s_is_resolve (t);
    if (s_leg_holds_credit (e) && resolve && !commit) {
        //  A post leg's credit side, claimed at its begin (ledger.c, s_post_leg).
        int rc = pending_credit_claim (self->pending, t, false);
        assert (rc == 0);
        (void) rc;
    } else if (s_leg_holds_credit (e) && !resolve) {
        //  A pending member's credit goes to credits_pending (below).
        accounts_credit_release (self->accounts, t->credit_account_id, t->amount,
                                 commit && !pending);
        if (pending) {
            pending_promise (self->pending, false);
        }
    }
    uint64_t write_seq = 0;
    if (commit && s_leg_holds_credit (e)) {
        rl_transfer_t leg = *t;
        leg.flags &= (uint16_t) ~(RL_TRANSFER_TP_LEGS | RL_TRANSFER_LINKED);
        leg.timestamp = journal_next_ts (self->journal, now.wall_ns);
        leg.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_CREDIT);
        if (journal_append (self->journal, &leg) != 0) {
            rl_error ("two-phase: out of memory storing a chain member's credit leg");
            abort (); //  memory and the decision would disagree: crash, recover
        }
        if (pending && pending_add_side (self->pending, &leg, PENDING_SIDE_CREDIT) != 0) {
            rl_error ("two-phase: no room to keep the credit side of pending transfer %016" PRIx64
                      "%016" PRIx64,
                      t->id.hi, t->id.lo);
            abort (); //  the promise kept its room: out of memory; crash, recover
        }
        if (resolve) {
            pending_credit_apply (self->pending, &leg); //  posts (part of) it, releases the rest
        }
    }
    if (decision != 0) {
        s_log_decision (self, e, decision, now.mono_ns);
        write_seq = outq_batch_seq (self->outq);
    }
    if (commit) {
        //  Answered at the acknowledgement, with the debit shard's timestamp.
        int32_t x = xlog_find (self->xlog, e->tp.id, e->tp.attempt);
        assert (x >= 0);
        attempt_t *logged = attempts_at (xlog_entries (self->xlog), x);
        logged->request = e->request;
        logged->index = e->index;
        attempts_remove (&self->attempts, i);
        return;
    }
    s_request_decided (self, e, result, result == RL_EXISTS ? e->exists_ts : 0, write_seq);
    attempts_remove (&self->attempts, i);
}

//  Ends a live attempt: releases the debit reservation, records the outcome.
static void
s_finish (coordinator_t *self, int32_t i, uint32_t result, uint32_t decision, now_t now)
{
    attempt_t *e = attempts_at (&self->attempts, i);
    assert (e->state == ATTEMPT_LIVE);
    assert (decision == 0 || decision == RL_TP_COMMIT || decision == RL_TP_ABORT);
    assert (decision != RL_TP_COMMIT || result == RL_OK);
    const rl_transfer_t *t = &e->transfer;
    bool resolve = s_is_resolve (t);
    bool pending = (t->flags & RL_TRANSFER_PENDING) != 0;
    if (s_is_leg (t)) {
        s_leg_finish (self, i, result, decision, now);
        return;
    }
    if (!resolve) {
        //  A pending transfer's debit goes to debits_pending (below), not posted.
        accounts_debit_release (self->accounts, t->debit_account_id, t->amount,
                                result == RL_OK && !pending);
    }
    if (pending) {
        pending_promise (self->pending, false); //  its room, taken at the begin, is used now
    }
    uint64_t ts = 0;
    uint64_t write_seq = 0; //  an outcome with no write needs no sync
    bool burns = result == RL_OK || !rl_result_is_retryable (result);
    if (e->group != 0) {
        burns = result == RL_OK; //  a failed chain burns nothing (docs/payments.md)
    }
    if (s_is_expiry (t)) {
        burns = result == RL_OK; //  an expiry that failed is tried again, never burned
        if (result != RL_OK) {
            rl_warn ("two-phase: the expiry of pending transfer %016" PRIx64 "%016" PRIx64
                     " ended %s: tried again later",
                     t->pending_id.hi, t->pending_id.lo, rl_result_name (result));
        }
    }
    if (burns) {
        rl_transfer_t record = *t;
        record.timestamp = ts = journal_next_ts (self->journal, now.wall_ns);
        record.reserved = JOURNAL_STORED (result, JOURNAL_LEG_DEBIT);
        if (journal_append (self->journal, &record) != 0) {
            rl_error ("two-phase: out of memory storing a decided transfer");
            abort (); //  memory and the decision would disagree: crash, recover
        }
        write_seq = outq_batch_seq (self->outq);
        if (result == RL_OK && pending
            && pending_add_side (self->pending, &record, PENDING_SIDE_DEBIT) != 0) {
            rl_error ("two-phase: no room to keep pending transfer %016" PRIx64 "%016" PRIx64,
                      t->id.hi, t->id.lo);
            abort (); //  the decision is in the batch: crash before it commits, recover
        }
        if (result == RL_OK && resolve) {
            if (e->of_member) {
                //  Its pending transfer, an earlier member of its chain, was
                //  added just now (members are decided in record order).
                pending_claim (self->pending, t->pending_id, true, 0);
            }
            pending_apply (self->pending, &record); //  posts (part of) it, releases the rest
        }
    }
    if (resolve && result != RL_OK && !e->of_member) {
        uint64_t last = journal_last_ts (self->journal);
        pending_claim (self->pending, t->pending_id, false,
                       now.wall_ns > last ? now.wall_ns : last);
    }
    if (decision != 0) {
        s_log_decision (self, e, decision, now.mono_ns);
        write_seq = outq_batch_seq (self->outq);
    }
    s_request_decided (self, e, result, ts, write_seq);
    attempts_remove (&self->attempts, i);
}

//  Groups: linked chains across shards -------------------------------------------
//
//  BACKGROUND. A linked chain's members succeed or fail together
//  (docs/payments.md, "Linked chains"). When every member debits an
//  account of this shard but some credit accounts of other shards, the
//  chain runs as a group of attempts that this shard decides together:
//  each member crediting another shard is an attempt as any (its own id,
//  attempt name, participant, PREPARE, log entry and DECIDE), and each
//  member crediting an account of this shard is a *local* member: a live
//  attempt with no participant, which reserves both of its sides
//  (debits_reserved and credits_reserved, memory only) instead of posting
//  them. Every member is live, so a member's id sent again, in the chain
//  or alone, is answered in_progress (one live attempt per id).
//
//  BEHAVIOR.
//    - The ledger opens a group (coordinator_group_new), adds the members
//      in order (coordinator_begin with the group, coordinator_hold_local),
//      and either cancels it (a member failed at once: every reservation
//      is released, nothing was sent, nothing stored) or launches it at
//      the chain's last record (coordinator_group_launch): the PREPAREs
//      go out; with no member of another shard, the local members are
//      applied at once, as a chain of one shard.
//    - The group is decided once: COMMIT when the last member of another
//      shard answers PREPARED, ABORT at the first refusal or prepare
//      timeout of any member. Every member is decided in that same call,
//      so its writes (each member's record, each log entry, the postings)
//      are in one batch and one group commit: recovery finds all of the
//      chain's decisions or none of them, and with none of them every
//      attempt is presumed aborted and every local reservation is gone
//      with the process (memory only).
//    - On ABORT, the failing member gets its own code (a participant's
//      refusal, or aborted at a timeout), the others linked_event_failed
//      (a member answered exists as well); no id is burned; every member
//      whose participant may hold a prepared record gets a logged ABORT.
//
//    - Pending kinds (docs/payments.md, "Linked chains", rule 5): a
//      pending transfer is a member as any (its amounts reserved; at the
//      commit they become pending, its room promised from the begin:
//      pending_promise); a post or void reserves nothing and claims its
//      pending transfer from the begin (a local one, both sides here, as
//      well as one across), released at the end; its commit applies it.
//
//      A debit leg may be a pending transfer (its credit side, here, is
//      promised at the begin and added at the commit: s_leg_finish).
//
//      A post or void of a pending transfer an earlier member makes
//      (of_member) claims nothing: the group decides its members in record
//      order, so at the commit the pending transfer is added (held here:
//      s_local_end; across: s_finish, its debit side) and then the post or
//      void applied to it. Across, its credit shard prepares it against
//      the pending transfer's prepared credit leg (participant.c).
//
//  LIMITATIONS. A debit leg is never a post or void (the ledger refuses
//  them debiting another shard than the chain's); a member's credit here
//  is reserved, not posted, until the decision, so a later member cannot
//  spend it; RL_TP_GROUPS_MAX groups in flight (more: busy).

uint32_t
coordinator_group_new (coordinator_t *self, int32_t request, uint32_t first)
{
    assert (self && request >= 0 && request < RL_SHARD_PENDING_REQUESTS_MAX);
    assert (self->requests[request].used && !self->requests[request].held);
    if (self->groups_free_count == 0) {
        return 0;
    }
    uint32_t g = self->groups_free[--self->groups_free_count];
    assert (g >= 1 && g <= RL_TP_GROUPS_MAX && !self->groups[g].used);
    self->groups[g] = (s_group_t){
        .used = true, .request = request, .first = first, .last = first, .head = -1, .tail = -1};
    return g;
}

static void
s_group_free (coordinator_t *self, uint32_t g)
{
    s_group_t *group = s_group (self, g);
    assert (group->members == 0 && group->head == -1);
    *group = (s_group_t){0};
    assert (self->groups_free_count < RL_TP_GROUPS_MAX);
    self->groups_free[self->groups_free_count++] = g;
}

rl_result_rec_t
coordinator_hold_local (coordinator_t *self, const rl_transfer_t *t, now_t now, int32_t request,
                        uint32_t index, uint32_t group)
{
    assert (self && t && group != 0);
    assert (!(t->flags & PENDING_FLAGS) || self->pending);
    assert (!coordinator_is_live (self, t->id)); //  the ledger checked it (invariant 2)
    rl_result_rec_t r = {0};
    bool resolve = s_is_resolve (t);
    accounts_pair_t pair;
    //  The checks of a transfer of one shard, in their order; then both
    //  sides reserved (each limit counts its reservations). A post or void
    //  (resolved by pending_check) reserves nothing: its amount is pending.
    r.result = resolve ? RL_OK : accounts_transfer_check (self->accounts, t, &pair);
    if (r.result == RL_OK && !resolve) {
        r.result = accounts_debit_reserve (self->accounts, t);
    }
    if (r.result == RL_OK && !resolve) {
        r.result = accounts_credit_reserve (self->accounts, t);
        if (r.result != RL_OK) {
            accounts_debit_release (self->accounts, t->debit_account_id, t->amount, false);
        }
    }
    if (r.result != RL_OK) {
        return r; //  the chain fails: nothing stored, nothing burned
    }
    bool log_full = self->attempts.count + xlog_count (self->xlog) >= self->log_entries_max;
    int32_t i = log_full ? -1 : attempts_add (&self->attempts, t->id);
    if (i < 0) {
        if (!resolve) {
            accounts_debit_release (self->accounts, t->debit_account_id, t->amount, false);
            accounts_credit_release (self->accounts, t->credit_account_id, t->amount, false);
        }
        r.result = RL_BUSY;
        return r;
    }
    //  Its pending transfer (both sides here) is claimed until the chain is
    //  decided: no other post, void or expiry of it meanwhile. One an
    //  earlier member of this chain makes is not in the table yet: it is
    //  applied just before this one, at the commit (members in order).
    bool of_member = resolve && coordinator_group_member (self, group, t->pending_id) != NULL;
    if (resolve && !of_member) {
        pending_claim (self->pending, t->pending_id, true, 0);
    }
    if (s_is_pending (t)) {
        pending_promise (self->pending, true); //  the ledger asked pending_room
    }
    attempt_t *held = s_attempt_begin (self, i, t, -1, request, index, now);
    held->of_member = of_member;
    self->requests[request].open++;
    s_group_join (self, group, i, true);
    r.result = COORDINATOR_PENDING;
    assert (coordinator_is_live (self, t->id));
    return r;
}

rl_result_rec_t
coordinator_begin_leg (coordinator_t *self, const rl_transfer_t *t, int32_t peer, uint16_t kind,
                       bool third, now_t now, int32_t request, uint32_t index, uint32_t group)
{
    assert (self && t && self->ring && group != 0 && !(t->flags & PENDING_RESOLVE_FLAGS));
    assert (!(t->flags & RL_TRANSFER_PENDING) || self->pending);
    assert (kind == RL_TRANSFER_TP_DEBIT_LEG || kind == RL_TRANSFER_TP_BOTH_LEGS);
    assert (!third || kind == RL_TRANSFER_TP_DEBIT_LEG);
    assert (peer >= 0 && (size_t) peer < ring_shard_count (self->ring));
    assert (!coordinator_is_live (self, t->id)); //  the ledger checked it (invariant 2)
    rl_result_rec_t r = {0};
    rl_transfer_t member = *t;
    member.flags |= kind;
    uint32_t doomed = 0;
    bool credit_here = kind == RL_TRANSFER_TP_DEBIT_LEG && !third;
    if (credit_here) {
        //  The credit side here: a participant's checks and reservation.
        r.result = accounts_credit_reserve (self->accounts, t);
        if (r.result != RL_OK && rl_result_burns (r.result) != RL_BURNS_YES) {
            return r; //  retryable: the chain is answered it, nothing stored, nothing burned
        }
        //  A business failure here does not fail the chain yet: the member's
        //  id is its debit shard's, which may hold it stored (this chain
        //  applied before and sent again, the credit account full since; or
        //  the member applied alone there), and then it is exists (rule 2).
        //  So its PREPARE goes all the same, reserving nothing here: exists
        //  keeps the chain going; anything else fails it with this code.
        doomed = r.result;
    }
    //  A credit on a third shard takes a second attempt (and decision) later.
    bool log_full = self->attempts.count + xlog_count (self->xlog) + third >= self->log_entries_max;
    int32_t i = log_full ? -1 : attempts_add (&self->attempts, t->id);
    if (i < 0) {
        if (credit_here && doomed == 0) {
            accounts_credit_release (self->accounts, t->credit_account_id, t->amount, false);
        }
        r.result = RL_BUSY;
        return r;
    }
    attempt_t *e = s_attempt_begin (self, i, &member, peer, request, index, now);
    e->doomed = doomed;
    e->third = third;
    if (s_leg_holds_credit (e) && s_is_pending (t)) {
        pending_promise (self->pending, true); //  its credit side, kept here at the commit
    }
    self->requests[request].open++;
    s_group_join (self, group, i, false); //  its PREPARE goes at the launch
    r.result = COORDINATOR_PENDING;
    assert (coordinator_is_live (self, t->id));
    return r;
}

rl_result_rec_t
coordinator_begin_post_leg (coordinator_t *self, const rl_transfer_t *t, int32_t peer,
                            uint16_t kind, uint32_t doomed, bool third, now_t now, int32_t request,
                            uint32_t index, uint32_t group)
{
    assert (self && t && self->ring && self->pending && group != 0 && s_is_resolve (t));
    assert (kind == RL_TRANSFER_TP_DEBIT_LEG || kind == RL_TRANSFER_TP_BOTH_LEGS);
    assert (doomed == 0 || kind == RL_TRANSFER_TP_BOTH_LEGS);
    assert (!third || (kind == RL_TRANSFER_TP_DEBIT_LEG && doomed == 0));
    assert (peer >= 0 && (size_t) peer < ring_shard_count (self->ring));
    assert (!coordinator_is_live (self, t->id)); //  the ledger checked it (invariant 2)
    rl_result_rec_t r = {0};
    rl_transfer_t member = *t;
    member.flags |= kind;
    //  A credit on a third shard takes a second attempt (and decision) later.
    bool log_full = self->attempts.count + xlog_count (self->xlog) + third >= self->log_entries_max;
    int32_t i = log_full ? -1 : attempts_add (&self->attempts, t->id);
    if (i < 0) {
        r.result = RL_BUSY;
        return r;
    }
    attempt_t *e = s_attempt_begin (self, i, &member, peer, request, index, now);
    e->doomed = doomed;
    e->third = third;
    self->requests[request].open++;
    s_group_join (self, group, i, false); //  its PREPARE goes at the launch
    r.result = COORDINATOR_PENDING;
    assert (coordinator_is_live (self, t->id));
    return r;
}

bool
coordinator_leg_committing (coordinator_t *self, rl_id_t id)
{
    assert (self);
    attempts_t *log = xlog_entries (self->xlog);
    for (int32_t i = attempts_head (log, id); i >= 0; i = attempts_at (log, i)->next) {
        const attempt_t *e = attempts_at (log, i);
        if (e->state == ATTEMPT_DECIDED && e->tp.state == RL_TP_COMMIT && s_is_leg (&e->transfer)) {
            return true;
        }
    }
    return false;
}

//  A local member decided: released, or applied with its record stored
//  (ok): a transfer posted on both sides, a pending transfer's amount
//  moved from reserved to pending, a post or void applied to its pending
//  transfer (claimed since the begin). Returns the record's timestamp (0:
//  released).
static uint64_t
s_local_end (coordinator_t *self, attempt_t *e, bool commit, now_t now)
{
    assert (e->state == ATTEMPT_LIVE && e->local);
    const rl_transfer_t *t = &e->transfer;
    bool pending = s_is_pending (t);
    bool resolve = s_is_resolve (t);
    if (!resolve) {
        accounts_debit_release (self->accounts, t->debit_account_id, t->amount, commit && !pending);
        accounts_credit_release (self->accounts, t->credit_account_id, t->amount,
                                 commit && !pending);
    }
    if (pending) {
        pending_promise (self->pending, false);
    }
    //  A post or void of a cross-shard pending transfer whose two sides a
    //  migration brought here (two entries): both claimed since the begin.
    bool two = resolve && !e->of_member && pending_is_debit_side (self->pending, t->pending_id);
    if (!commit) {
        if (resolve && !e->of_member) {
            pending_claim (self->pending, t->pending_id, false, 0);
        }
        if (two) {
            int rc = pending_credit_claim (self->pending, t, false);
            assert (rc == 0);
            (void) rc;
        }
        return 0;
    }
    rl_transfer_t record = *t;
    record.timestamp = journal_next_ts (self->journal, now.wall_ns);
    record.reserved = JOURNAL_STORED (RL_OK, JOURNAL_LEG_BOTH);
    if (journal_append (self->journal, &record) != 0) {
        rl_error ("two-phase: out of memory storing a chain's member");
        abort (); //  memory and the decision would disagree: crash, recover
    }
    if (pending) {
        //  Its accounts are here (reserved since the begin), and the
        //  promise kept its room (pending_promise).
        accounts_pair_t pair;
        bool found = accounts_pair (self->accounts, t->debit_account_id, t->credit_account_id,
                                    &pair);
        assert (found);
        (void) found;
        pending_add (self->pending, &record, &pair);
    }
    if (resolve) {
        pending_apply (self->pending, &record); //  posts (part of) it, releases the rest
    }
    if (two) {
        pending_credit_apply (self->pending, &record); //  and its credit side, the same
    }
    return record.timestamp;
}

void
coordinator_group_cancel (coordinator_t *self, uint32_t g)
{
    assert (self);
    s_group_t *group = s_group (self, g);
    assert (!group->launched); //  nothing of it was sent
    s_request_t *r = &self->requests[group->request];
    while (group->head >= 0) {
        int32_t i = group->head;
        attempt_t *e = attempts_at (&self->attempts, i);
        assert (e->state == ATTEMPT_LIVE && e->group == g && r->open > 0);
        group->head = e->group_next;
        if (e->local) {
            (void) s_local_end (self, e, false, (now_t){0});
        } else if (s_is_leg (&e->transfer)) {
            if (s_leg_holds_credit (e) && s_is_resolve (&e->transfer)) {
                int rc = pending_credit_claim (self->pending, &e->transfer, false);
                assert (rc == 0); //  claimed at its begin (ledger.c, s_post_leg)
                (void) rc;
            } else if (s_leg_holds_credit (e)) {
                accounts_credit_release (self->accounts, e->transfer.credit_account_id,
                                         e->transfer.amount, false);
                if (s_is_pending (&e->transfer)) {
                    pending_promise (self->pending, false);
                }
            }
        } else if (s_is_resolve (&e->transfer)) {
            if (!e->of_member) {
                pending_claim (self->pending, e->transfer.pending_id, false, 0);
            }
        } else {
            accounts_debit_release (self->accounts, e->transfer.debit_account_id,
                                    e->transfer.amount, false);
            if (s_is_pending (&e->transfer)) {
                pending_promise (self->pending, false);
            }
        }
        assert (r->open >= 1 + e->repeats);
        r->open -= 1 + e->repeats; //  the ledger answers the chain's records itself
        group->members--;
        attempts_remove (&self->attempts, i);
    }
    s_group_free (self, g);
}

void
coordinator_group_launch (coordinator_t *self, uint32_t g, uint32_t last, rl_result_rec_t *results,
                          now_t now)
{
    assert (self && results);
    s_group_t *group = s_group (self, g);
    assert (!group->launched && last >= group->first);
    group->last = last;
    if (group->waiting > 0) {
        group->launched = true;
        for (int32_t i = group->head; i >= 0;) {
            const attempt_t *e = attempts_at (&self->attempts, i);
            if (!e->local) {
                s_queue_prepare (self, e);
            }
            i = e->group_next;
        }
        return;
    }
    //  Every member is here (the others existed already): applied now, in
    //  this turn's batch, as a chain of one shard.
    s_request_t *r = &self->requests[group->request];
    while (group->head >= 0) {
        int32_t i = group->head;
        attempt_t *e = attempts_at (&self->attempts, i);
        assert (e->local && r->open > 0);
        group->head = e->group_next;
        uint64_t ts = s_local_end (self, e, true, now);
        results[e->index] = (rl_result_rec_t){.index = e->index, .result = RL_OK, .timestamp = ts};
        s_repeats_decided (e, results, last + 1, RL_OK, ts);
        assert (r->open >= 1 + e->repeats);
        r->open -= 1 + e->repeats;
        group->members--;
        attempts_remove (&self->attempts, i);
    }
    s_group_free (self, g);
}

//  Credit on a third shard (docs/two-phase.md): a member debiting the peer
//  X and crediting a third shard Y is two attempts of its id in its group,
//  in turn. First the debit leg to X, as any: X answers about the id
//  (exists: applied before, nothing more to do) or prepares it. Only then,
//  X holding the id live for this attempt (so no earlier attempt of it can
//  have committed: a debit leg begins only when no COMMIT of the id waits
//  for X, coordinator_leg_committing), its credit leg begins towards Y,
//  without a request of its own. The group commits when both (and every
//  other member) are PREPARED; a failure of the credit leg is its member's.

//  The debit leg of id in group g whose credit leg is on a third shard.
static int32_t
s_third_debit (coordinator_t *self, uint32_t g, rl_id_t id)
{
    for (int32_t k = s_group (self, g)->head; k >= 0;) {
        const attempt_t *m = attempts_at (&self->attempts, k);
        if (m->third && rl_id_eq (m->tp.id, id)) {
            return k;
        }
        k = m->group_next;
    }
    assert (false); //  a credit leg on a third shard joins only beside its debit leg
    return -1;
}

//  The debit leg at slot i (credit on a third shard) is PREPARED: its
//  credit leg begins towards the credit account's owner now. -1: no room
//  (busy), or no such third shard in this ring any more (the caller fails
//  the chain).
static int
s_third_begin (coordinator_t *self, int32_t i, now_t now)
{
    const attempt_t *e = attempts_at (&self->attempts, i);
    assert (e->third && e->prepared && e->group != 0 && e->doomed == 0);
    rl_transfer_t credit = e->transfer;
    credit.flags = (uint16_t) ((credit.flags & ~RL_TRANSFER_TP_LEGS) | RL_TRANSFER_TP_CREDIT_THIRD);
    uint32_t g = e->group, index = e->index;
    int peer = owner_of (self->ring, credit.credit_account_id);
    int self_index = s_peer_index (self, self->name);
    if (peer < 0 || peer == self_index || peer == e->peer_index) {
        return -1; //  a ring change since the begin: retry the chain
    }
    if (self->attempts.count + xlog_count (self->xlog) >= self->log_entries_max) {
        return -1;
    }
    int32_t k = attempts_add (&self->attempts, credit.id); //  e may move
    if (k < 0) {
        return -1;
    }
    attempt_t *w = s_attempt_begin (self, k, &credit, peer, -1, index, now);
    //  The debit leg waits as long as its credit leg: a prepare deadline of
    //  either aborts the group (s_group_timeout).
    attempts_at (&self->attempts, i)->deadline_ns = w->deadline_ns;
    s_group_join (self, g, k, false);
    s_queue_prepare (self, w);
    return 0;
}

//  Decides every member of group g together: commit (failure RL_OK), or
//  abort with `failure` for the member at slot `failing` (the others
//  linked_event_failed). failing_holds: its participant may hold a
//  prepared record (it is sent a logged ABORT; a refusal holds none).
static void
s_group_decide (coordinator_t *self, uint32_t g, uint32_t failure, int32_t failing,
                bool failing_holds, now_t now)
{
    s_group_t *group = s_group (self, g);
    assert (group->launched && (failure == RL_OK) == (failing < 0));
    if (failing >= 0 && s_is_credit_third (&attempts_at (&self->attempts, failing)->transfer)) {
        //  A credit leg on a third shard has no record of its own: its
        //  member fails, the debit leg (prepared at its debit shard: a
        //  logged ABORT) answered with the code; the credit leg is sent a
        //  logged ABORT as every other member.
        failing = s_third_debit (self, g, attempts_at (&self->attempts, failing)->tp.id);
        failing_holds = true;
    }
    s_request_t *r = &self->requests[group->request];
    //  A debit leg that failed without an answer about its id (its shard
    //  silent past the prepare timeout, or refusing for a retryable
    //  reason before its id check: frozen, a message refused whole ...) leaves the chain's
    //  outcome unknown here: an earlier send of this chain may have
    //  committed, and its debit shard alone holds that member. So every
    //  member is answered in_progress (retry the chain), never the
    //  definite failed of a chain that applied nothing.
    //  (A debit leg that answered PREPARED told: the id was not stored.)
    bool unknown = failure != RL_OK && s_is_leg (&attempts_at (&self->attempts, failing)->transfer)
                   && !attempts_at (&self->attempts, failing)->prepared
                   && (failure == RL_ABORTED || failure == RL_IN_PROGRESS);
    uint32_t others = unknown ? RL_IN_PROGRESS : RL_LINKED_EVENT_FAILED;
    if (unknown) {
        failure = RL_IN_PROGRESS;
    }
    if (failure != RL_OK && r->held) {
        //  A member answered exists is answered linked_event_failed too.
        for (uint32_t k = group->first; k <= group->last && k < r->count; k++) {
            if (r->results[k].result != COORDINATOR_PENDING) {
                r->results[k] = (rl_result_rec_t){.index = k, .result = others};
            }
        }
    }
    if (failure != RL_OK) {
        const attempt_t *f = attempts_at (&self->attempts, failing);
        rl_info ("two-phase: linked chain of records %" PRIu32 "..%" PRIu32
                 " failed at record %" PRIu32 " (%s): nothing of it applied",
                 group->first, group->last, f->index, rl_result_name (failure));
    }
    while (group->head >= 0) {
        int32_t i = group->head;
        attempt_t *e = attempts_at (&self->attempts, i);
        assert (e->state == ATTEMPT_LIVE && e->group == g);
        group->head = e->group_next;
        group->members--;
        uint32_t result = failure == RL_OK ? RL_OK : i == failing ? failure : others;
        if (e->local) {
            uint64_t ts = s_local_end (self, e, failure == RL_OK, now);
            s_request_decided (self, e, result, ts,
                               failure == RL_OK ? outq_batch_seq (self->outq) : 0);
            attempts_remove (&self->attempts, i);
            continue;
        }
        uint32_t decision = failure == RL_OK                 ? RL_TP_COMMIT
                            : i == failing && !failing_holds ? 0
                                                             : RL_TP_ABORT;
        if (e->exists_ts != 0) {
            //  Stored at its debit shard before: that shard holds nothing of
            //  this attempt, so nothing to decide; exists, or failed with it.
            decision = 0;
            result = failure == RL_OK ? RL_EXISTS : others;
        }
        s_finish (self, i, result, decision, now);
    }
    assert (group->members == 0);
    self->groups_committed += failure == RL_OK;
    self->groups_failed += failure != RL_OK;
    s_group_free (self, g);
}

//  A PREPARE reply that is not PREPARED, refused for a business reason:
//  its code burns the id (docs/protocol.md). Any other code (ok, exists, a
//  taken id: no participant refuses with one) counts as an infrastructure
//  refusal, so that nothing is posted without a logged COMMIT.
static bool
s_refused_business (const rl_tp_rec_t *reply)
{
    assert (reply->state != RL_TP_PREPARED);
    return rl_result_burns (reply->result) == RL_BURNS_YES;
}

//  A PREPARE reply for the member of a group at slot i.
static void
s_group_reply (coordinator_t *self, int32_t i, const rl_tp_rec_t *reply, now_t now)
{
    attempt_t *e = attempts_at (&self->attempts, i);
    uint32_t g = e->group;
    s_group_t *group = s_group (self, g);
    assert (group->launched && !e->local);
    if (reply->state == RL_TP_PREPARED && e->doomed != 0) {
        //  Its debit shard did not hold it (it prepared it now): the chain
        //  never applied, and fails with the code of its check here; the
        //  debit shard's reservation goes with the logged ABORT.
        s_group_decide (self, g, e->doomed, i, true, now);
        return;
    }
    if (reply->state == RL_TP_PREPARED) {
        if (!e->prepared) { //  a duplicate reply counts once
            e->prepared = true;
            if (e->third && s_third_begin (self, i, now) != 0) { //  e may move
                s_group_decide (self, g, RL_BUSY, i, true, now);
                return;
            }
            assert (group->waiting > 0);
            group->waiting--;
        }
        if (group->waiting == 0) {
            s_group_decide (self, g, RL_OK, -1, false, now);
        }
        return;
    }
    bool debit_leg = s_is_leg (&e->transfer) && !s_is_credit_third (&e->transfer);
    if (debit_leg && reply->result == RL_EXISTS && reply->timestamp != 0
        && (!e->prepared || e->exists_ts != 0)) {
        //  The member is stored at its debit shard (applied before: rule 2,
        //  exists does not break a chain). It holds nothing there: counted
        //  as prepared (a duplicate answer once), answered exists with that
        //  record's timestamp.
        if (!e->prepared) {
            e->prepared = true;
            e->exists_ts = reply->timestamp;
            assert (group->waiting > 0);
            group->waiting--;
        }
        if (group->waiting == 0) {
            s_group_decide (self, g, RL_OK, -1, false, now);
        }
        return;
    }
    //  Refused: a business failure is the member's own code (not burned in
    //  a chain); an infrastructure one is aborted (or in_doubt). A debit
    //  leg's answer about its id (a taken id, a burned failure) is its own
    //  code too; in_progress says the id is live at its debit shard.
    uint32_t result = s_refused_business (reply)     ? reply->result
                      : reply->result == RL_IN_DOUBT ? RL_IN_DOUBT
                                                     : RL_ABORTED;
    if (debit_leg) {
        //  busy comes after the id's answer there (a coordinator's share of
        //  the reservations, a full prepared table): not stored, so it is
        //  the member's own, retryable code, not an unknown outcome.
        //  not_supported comes after the id's answer too (a post leg whose
        //  pending transfer credits a third shard not named): the id is
        //  free there.
        result = !rl_result_is_retryable (reply->result) ? reply->result
                 : reply->result == RL_IN_PROGRESS || reply->result == RL_IN_DOUBT
                         || reply->result == RL_BUSY || reply->result == RL_NOT_SUPPORTED
                     ? reply->result
                     : RL_ABORTED;
        if (e->doomed != 0 && reply->timestamp == 0
            && (reply->result == RL_NOT_SUPPORTED || !rl_result_is_retryable (reply->result))) {
            //  Refused after its id check without an answer about the id (a
            //  stored id comes with its timestamp): not stored there, so the
            //  member fails with its own code here (a credit on a third shard
            //  is refused not_supported there once the id is looked at). A
            //  retryable refusal (unauthorized: the debit shard's ring does
            //  not know this shard yet, say) says nothing of the id: unknown.
            result = e->doomed;
        }
    }
    s_group_decide (self, g, result, i, e->prepared && e->exists_ts == 0, now);
}

//  The member at slot i timed out: its group is aborted, the failing
//  member one still waiting for its participant.
static void
s_group_timeout (coordinator_t *self, int32_t i, now_t now)
{
    attempt_t *e = attempts_at (&self->attempts, i);
    s_group_t *group = s_group (self, e->group);
    int32_t failing = i;
    for (int32_t k = group->head; k >= 0 && attempts_at (&self->attempts, failing)->prepared;) {
        const attempt_t *m = attempts_at (&self->attempts, k);
        if (!m->local && !m->prepared) {
            failing = k;
        }
        k = m->group_next;
    }
    s_group_decide (self, e->group, RL_ABORTED, failing, true, now);
}

const rl_transfer_t *
coordinator_group_member (coordinator_t *self, uint32_t g, rl_id_t id)
{
    assert (self);
    if (g == 0) {
        return NULL;
    }
    for (int32_t i = attempts_head (&self->attempts, id); i >= 0;) {
        const attempt_t *e = attempts_at (&self->attempts, i);
        if (e->state == ATTEMPT_LIVE && e->group == g && rl_id_eq (e->tp.id, id)) {
            return &e->transfer;
        }
        i = e->next;
    }
    return NULL;
}

const rl_transfer_t *
coordinator_group_resolving (coordinator_t *self, uint32_t g, rl_id_t pending_id)
{
    assert (self);
    if (g == 0) {
        return NULL;
    }
    //  A chain has at most a batch's records: walk its members.
    for (int32_t i = s_group (self, g)->head; i >= 0;) {
        const attempt_t *e = attempts_at (&self->attempts, i);
        assert (e->state == ATTEMPT_LIVE && e->group == g);
        if (s_is_resolve (&e->transfer) && rl_id_eq (e->transfer.pending_id, pending_id)) {
            return &e->transfer;
        }
        i = e->group_next;
    }
    return NULL;
}

rl_result_rec_t
coordinator_group_repeat (coordinator_t *self, uint32_t g, rl_id_t id, uint32_t index)
{
    assert (self && g != 0);
    for (int32_t i = attempts_head (&self->attempts, id); i >= 0;) {
        attempt_t *e = attempts_at (&self->attempts, i);
        if (e->state == ATTEMPT_LIVE && e->group == g && rl_id_eq (e->tp.id, id)) {
            assert (e->request >= 0 && self->requests[e->request].used);
            assert (index > e->index && index < UINT32_MAX);
            rl_result_rec_t r = {
                .index = index, .result = COORDINATOR_PENDING, .timestamp = e->repeat_head};
            e->repeat_head = index + 1;
            e->repeats++;
            self->requests[e->request].open++;
            return r;
        }
        i = e->next;
    }
    assert (false); //  the ledger found the member a moment before
    return (rl_result_rec_t){.index = index, .result = RL_ABORTED};
}

void
coordinator_group_counts (const coordinator_t *self, uint64_t *committed, uint64_t *failed)
{
    assert (self && committed && failed);
    *committed = self->groups_committed;
    *failed = self->groups_failed;
}

//  Sender rule of a reply: it comes from the participant of the attempt.
static bool
s_from_peer (const attempt_t *e, const char *from, const char *what)
{
    if (!from || strcmp (from, e->peer) == 0) {
        return true;
    }
    rl_warn ("two-phase: %s of transfer %016" PRIx64 "%016" PRIx64 " attempt %" PRIu64 ".%" PRIu64
             " (participant %s) from %s: ignored",
             what, e->tp.id.hi, e->tp.id.lo, e->tp.attempt.counter, e->tp.attempt.seq, e->peer,
             from);
    return false;
}

//  A batch's loop at record k of `count`: the lookups of the records
//  ahead in `table`, prefetched (attempts.h), so that their misses overlap.
static void
s_prefetch (const attempts_t *table, const rl_tp_rec_t *recs, size_t count, size_t k)
{
    if (k + ATTEMPTS_PREFETCH_SLOT_AHEAD < count) {
        attempts_prefetch (table, recs[k + ATTEMPTS_PREFETCH_SLOT_AHEAD].id);
    }
    if (k + ATTEMPTS_PREFETCH_ENTRY_AHEAD < count) {
        attempts_prefetch_entry (table, recs[k + ATTEMPTS_PREFETCH_ENTRY_AHEAD].id);
    }
}

bool
coordinator_urgent_take (coordinator_t *self)
{
    assert (self);
    bool urgent = self->chain_decided;
    self->chain_decided = false;
    return urgent;
}

size_t
coordinator_prepare_replies (coordinator_t *self, const rl_tp_rec_t *replies, size_t count,
                             const char *from, now_t now)
{
    assert (self && (count == 0 || replies));
    size_t refused = 0;
    for (size_t k = 0; k < count; k++) {
        s_prefetch (&self->attempts, replies, count, k);
        if (k + JOURNAL_APPEND_PREFETCH_AHEAD < count) {
            const rl_tp_rec_t *ahead = &replies[k + JOURNAL_APPEND_PREFETCH_AHEAD];
            if (ahead->state == RL_TP_PREPARED) { //  its debit record is appended
                journal_prefetch_append (self->journal, ahead->id, ahead->debit_account_id, false);
            }
        }
        const rl_tp_rec_t *reply = &replies[k];
        int32_t i = s_live_find (self, reply->id, reply->attempt);
        if (i < 0) {
            continue; //  a late reply: that attempt was decided (abort) on timeout
        }
        if (!s_from_peer (attempts_at (&self->attempts, i), from, "PREPARE reply")) {
            refused++;
            continue;
        }
        if (attempts_at (&self->attempts, i)->group != 0) {
            s_group_reply (self, i, reply, now); //  decided with its chain
            continue;
        }
        if (reply->state == RL_TP_PREPARED) {
            s_finish (self, i, RL_OK, RL_TP_COMMIT, now);
        } else if (s_refused_business (reply)) {
            //  A business failure at the credit side: C holds nothing.
            s_finish (self, i, reply->result, 0, now);
        } else {
            //  Refused for an infrastructure reason: C holds nothing either.
            uint32_t result = reply->result == RL_IN_DOUBT ? RL_IN_DOUBT : RL_ABORTED;
            s_finish (self, i, result, 0, now);
        }
    }
    if (count > 0) {
        RL_FAILPOINT (TP_COORD_DECIDED);
    }
    return refused;
}

//  The time from the log to the ACK of a decided entry, at most
//  retry_max_ms, or 0 (loaded at start: deadline_ns 0, no sample).
static uint64_t
s_ack_time (const coordinator_t *self, const attempt_t *e, uint64_t mono_ns)
{
    if (e->deadline_ns == 0 || mono_ns < e->deadline_ns) {
        return 0;
    }
    uint64_t cap = self->retry_max_ms * 1000000ull;
    return mono_ns - e->deadline_ns < cap ? mono_ns - e->deadline_ns : cap;
}

//  One sample (a message's slowest ACK) into the running means (TIME above).
static void
s_ack_sample (coordinator_t *self, uint64_t sample)
{
    if (sample == 0) {
        return;
    }
    if (self->ack_ns == 0) {
        self->ack_ns = sample;
        self->ack_dev_ns = sample / 2;
        return;
    }
    uint64_t dev = sample >= self->ack_ns ? sample - self->ack_ns : self->ack_ns - sample;
    if (sample >= self->ack_ns) {
        self->ack_ns += (sample - self->ack_ns) / 8;
    } else {
        self->ack_ns -= (self->ack_ns - sample) / 8;
    }
    if (dev >= self->ack_dev_ns) {
        self->ack_dev_ns += (dev - self->ack_dev_ns) / 4;
    } else {
        self->ack_dev_ns -= (self->ack_dev_ns - dev) / 4;
    }
}

size_t
coordinator_decide_replies (coordinator_t *self, const rl_tp_rec_t *acks, size_t count,
                            const char *from, now_t now)
{
    assert (self && (count == 0 || acks));
    size_t refused = 0;
    uint64_t slowest = 0; //  the message's slowest ACK, one sample (TIME above)
    for (size_t k = 0; k < count; k++) {
        s_prefetch (xlog_entries (self->xlog), acks, count, k);
        int32_t i = xlog_find (self->xlog, acks[k].id, acks[k].attempt);
        if (i < 0) {
            continue; //  a duplicate acknowledgement
        }
        const attempt_t *e = attempts_at (xlog_entries (self->xlog), i);
        if (!s_from_peer (e, from, "acknowledgement")) {
            refused++; //  the decision stays logged and is resent to its participant
            continue;
        }
        if (acks[k].state == RL_TP_RETRY) {
            //  Not applied now (no room, a storage error at the participant):
            //  the decision stays logged and is resent with its backoff.
            continue;
        }
        if (acks[k].state != RL_TP_ACKED) {
            self->alarms++;
            rl_error ("two-phase ALARM: %s refused to acknowledge %s of transfer %016" PRIx64
                      "%016" PRIx64 " attempt %" PRIu64 ".%" PRIu64 " (needs an operator)",
                      e->peer, rl_tp_state_name (e->tp.state), acks[k].id.hi, acks[k].id.lo,
                      acks[k].attempt.counter, acks[k].attempt.seq);
            continue;
        }
        uint64_t took = s_ack_time (self, e, now.mono_ns);
        slowest = took > slowest ? took : slowest;
        if (e->request >= 0 && s_is_leg (&e->transfer) && e->tp.state == RL_TP_COMMIT) {
            //  A debit leg's commit: its member answered now, with the
            //  timestamp of the transfer its debit shard stored.
            attempt_t *w = attempts_at (xlog_entries (self->xlog), i);
            s_request_decided (self, w, RL_OK, acks[k].timestamp, w->write_seq);
            w->request = -1;
        }
        xlog_remove (self->xlog, i);
    }
    s_ack_sample (self, slowest);
    if (count > 0) {
        RL_FAILPOINT (TP_COORD_ACKED);
    }
    return refused;
}

//  The answer to a query of an attempt neither live nor logged: ABORT when
//  it is presumed (invariant 3), or PENDING (no decision: the participant
//  keeps asking) with an alarm when the attempt cannot be one of ours.
static uint32_t
s_presumed (coordinator_t *self, const rl_tp_rec_t *q)
{
    const rl_attempt_t *own = &self->incarnation;
    if (q->attempt.counter < own->counter) {
        return RL_TP_ABORT; //  an earlier incarnation: its live attempts died with it
    }
    if (q->attempt.counter == own->counter && q->attempt.nonce == own->nonce && q->attempt.seq >= 1
        && q->attempt.seq <= own->seq) {
        return RL_TP_ABORT; //  finished here without a logged commit
    }
    //  A newer incarnation, another nonce for ours (a restored or copied data
    //  directory), or a sequence not issued yet: not ours to presume.
    self->alarms++;
    rl_error ("two-phase ALARM: %s asks about transfer %016" PRIx64 "%016" PRIx64
              " attempt %" PRIu64 ".%" PRIu64 " (nonce %016" PRIx64 ") that this coordinator"
              " never began (it is %" PRIu64 ".%" PRIu64 ", nonce %016" PRIx64
              "): no answer (restored or copied data directory? needs an operator)",
              q->coordinator, q->id.hi, q->id.lo, q->attempt.counter, q->attempt.seq,
              q->attempt.nonce, own->counter, own->seq, own->nonce);
    return RL_TP_PENDING;
}

uint64_t
coordinator_outcome_query (coordinator_t *self, const rl_tp_rec_t *queries, size_t count,
                           const char *sender, rl_tp_rec_t *out)
{
    assert (self && (count == 0 || (queries && out)));
    uint64_t needs_seq = 0;
    for (size_t k = 0; k < count; k++) {
        out[k] = queries[k];
        int32_t x = xlog_find (self->xlog, queries[k].id, queries[k].attempt);
        int32_t live = s_live_find (self, queries[k].id, queries[k].attempt);
        const attempt_t *named = x >= 0 ? attempts_at (xlog_entries (self->xlog), x) : NULL;
        if (!named && live >= 0) {
            named = attempts_at (&self->attempts, live);
        }
        if (sender && named && strcmp (sender, named->peer) != 0) {
            //  Sender rule: only the attempt's participant learns its outcome.
            rl_warn ("two-phase: outcome query of transfer %016" PRIx64 "%016" PRIx64
                     " (participant %s) from %s: unauthorized",
                     queries[k].id.hi, queries[k].id.lo, named->peer, sender);
            out[k].state = RL_TP_REFUSED;
            out[k].result = RL_UNAUTHORIZED;
            continue;
        }
        if (x >= 0) {
            const attempt_t *e = attempts_at (xlog_entries (self->xlog), x);
            out[k].state = e->tp.state;
            needs_seq = e->write_seq > needs_seq ? e->write_seq : needs_seq;
        } else if (live >= 0) {
            out[k].state = RL_TP_PENDING;
        } else {
            out[k].state = s_presumed (self, &queries[k]);
        }
        assert (out[k].state == RL_TP_COMMIT || out[k].state == RL_TP_ABORT
                || out[k].state == RL_TP_PENDING || out[k].state == RL_TP_REFUSED);
    }
    assert (needs_seq <= outq_batch_seq (self->outq));
    return needs_seq;
}

rl_attempt_t
coordinator_incarnation (const coordinator_t *self)
{
    assert (self);
    return self->incarnation;
}

//  Timers --------------------------------------------------------------------------------

static void
s_backoff (const coordinator_t *self, attempt_t *e, uint64_t mono_ns)
{
    assert (e->state == ATTEMPT_DECIDED && e->backoff_ms > 0);
    e->next_ns = mono_ns + e->backoff_ms * 1000000ull;
    e->backoff_ms = e->backoff_ms * 2 > self->retry_max_ms ? self->retry_max_ms : e->backoff_ms * 2;
    assert (e->backoff_ms <= self->retry_max_ms && e->next_ns > mono_ns);
}

size_t
coordinator_tick (coordinator_t *self, now_t now, size_t budget)
{
    assert (self);
    uint64_t mono_ns = now.mono_ns; //  every timer; now.wall_ns only for the records
    size_t work = 0;
    //  Prepare timeouts decide abort (infrastructure: not burned). Scans only
    //  when the earliest deadline may have come (O(table) a scan).
    if (mono_ns >= self->attempts_due_ns) {
        self->attempts_due_ns = UINT64_MAX;
        size_t span = attempts_span (&self->attempts);
        for (size_t i = 0; i < span; i++) {
            attempt_t *e = attempts_at (&self->attempts, (int32_t) i);
            if (e->state != ATTEMPT_LIVE) {
                continue;
            }
            if (mono_ns >= e->deadline_ns && e->group != 0) {
                s_group_timeout (self, (int32_t) i, now); //  the whole chain aborts
                RL_FAILPOINT (TP_COORD_ABORT_DECIDED);
            } else if (mono_ns >= e->deadline_ns) {
                s_finish (self, (int32_t) i, RL_ABORTED, RL_TP_ABORT, now);
                RL_FAILPOINT (TP_COORD_ABORT_DECIDED);
            } else if (e->deadline_ns < self->attempts_due_ns) {
                self->attempts_due_ns = e->deadline_ns;
            }
        }
    }
    //  Resend decisions until acknowledged, forever, capped backoff.
    if (mono_ns >= self->xlog_due_ns) {
        self->xlog_due_ns = UINT64_MAX;
        attempts_t *xlog = xlog_entries (self->xlog);
        size_t span = attempts_span (xlog);
        for (size_t i = 0; i < span; i++) {
            attempt_t *e = attempts_at (xlog, (int32_t) i);
            if (e->state != ATTEMPT_DECIDED) {
                continue;
            }
            if (mono_ns >= e->next_ns && work < budget) {
                s_queue_decide (self, e);
                s_backoff (self, e, mono_ns);
                work++;
            }
            if (e->next_ns < self->xlog_due_ns) {
                self->xlog_due_ns = e->next_ns;
            }
        }
    }
    assert (work <= budget);
    return work;
}

void
coordinator_counts (const coordinator_t *self, uint64_t *live, uint64_t *decided, uint64_t *alarms)
{
    assert (self && live && decided && alarms);
    *live = self->attempts.count;
    *decided = xlog_count (self->xlog);
    *alarms = self->alarms;
}

size_t
coordinator_requests_waiting (const coordinator_t *self)
{
    assert (self && self->requests_used <= RL_SHARD_PENDING_REQUESTS_MAX);
    return self->requests_used;
}

void
coordinator_audit_sums (coordinator_t *self, const accounts_t *accounts, uint64_t *debits,
                        uint64_t *credits)
{
    assert (self && accounts && debits && credits);
    size_t span = attempts_span (&self->attempts);
    for (size_t i = 0; i < span; i++) {
        const attempt_t *e = attempts_at (&self->attempts, (int32_t) i);
        size_t slot = 0;
        if (e->state == ATTEMPT_LIVE && !s_is_resolve (&e->transfer) && !s_is_leg (&e->transfer)
            && accounts_slot (accounts, e->transfer.debit_account_id, &slot)) {
            debits[slot] += e->transfer.amount;
        }
        if (e->state == ATTEMPT_LIVE && s_leg_holds_credit (e) && !s_is_resolve (&e->transfer)
            && accounts_slot (accounts, e->transfer.credit_account_id, &slot)) {
            credits[slot] += e->transfer.amount; //  a debit leg's credit side, held here
        }
        if (e->state == ATTEMPT_LIVE && e->local && !s_is_resolve (&e->transfer)
            && accounts_slot (accounts, e->transfer.credit_account_id, &slot)) {
            //  A chain's local member holds both sides (a post or void
            //  reserves nothing: its pending transfer is claimed).
            credits[slot] += e->transfer.amount;
        }
    }
}

size_t
coordinator_in_doubt (coordinator_t *self, rl_in_doubt_rec_t *out, size_t cap)
{
    assert (self && (cap == 0 || out));
    attempts_t *tables[2] = {&self->attempts, xlog_entries (self->xlog)};
    size_t n = 0;
    for (int t = 0; t < 2; t++) {
        size_t span = attempts_span (tables[t]);
        for (size_t i = 0; i < span && n < cap; i++) {
            const attempt_t *e = attempts_at (tables[t], (int32_t) i);
            if (e->state == ATTEMPT_LIVE || e->state == ATTEMPT_DECIDED) {
                attempt_in_doubt (e, &out[n++]);
            }
        }
    }
    assert (n <= cap);
    return n;
}
