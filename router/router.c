/*  router.c: a client request's life in the router.

    Clients talk to a router as they would to one big shard. The router
    splits each request by the shard that owns each record (its ring), sends
    the pieces (sub-requests, shards.c) to the shards concurrently, and puts
    the answers back together in the client's order. It keeps no state on
    disk: everything it holds is a request in progress, which a client retry
    with the same ids redoes.

    SOCKETS
    One ROUTER socket for clients (ROUTER_MANDATORY, sndtimeo 0), opened by
    main.c, read and written by clients.c, which checks each request and
    hands it here (router_admit); the shards' DEALERs belong to shards.c.
    All of them, and the tick, are driven by one czmq zloop.

    A REQUEST'S LIFE (r_pending_t)
        admitted ---- split by owner, sub-requests sent ----> open
        open -- every record answered (or read failed) --> replied, freed
        open -- deadline passed --> replied (open records outcome_unknown,
                                    or status timeout for a read), freed
    A record answered wrong_shard waits (REC_WAIT) for a ring refresh or
    the next tick, and is sent again, at most
    RL_ROUTER_WRONG_SHARD_ATTEMPTS_MAX times in all; then wrong_shard stands.
    A record answered frozen (its account's arc is migrating, or was gained
    and not received: docs/rebalance.md) waits too, and is sent again after
    a pause that doubles from RL_ROUTER_FROZEN_RETRY_MS_MIN to
    RL_ROUTER_FROZEN_RETRY_MS_MAX, for as long as the deadline allows; at
    the deadline it is answered frozen. A frozen answer applied nothing and
    burned no id, so the resend is safe, and it does not count against the
    wrong_shard attempts. A read piece answered frozen waits the same way;
    at the deadline the read fails frozen (not timeout).
    A RECORD'S STATES: REC_NEW -> REC_SENT -> REC_DONE, with REC_SENT ->
    REC_WAIT -> REC_SENT after wrong_shard, frozen or a connection still
    coming up.

    INVARIANTS
    1. One request, one reply: every admitted request is answered exactly
       once (s_pending_finish), by the deadline at the latest.
    2. A record is in at most one sub-request at a time, so its final result
       is written once.
    3. A create record whose outcome the router does not know (sent, no
       answer) is answered outcome_unknown, never a guess. A record that
       was never sent (no capacity, no connection) is answered busy: it is
       definitely not applied.
    4. Bounded: pending requests (count and bytes), sub-requests per shard
       and in total, work per readable event; when full the answer is busy.
    5. Nothing read from the network is asserted on (a shard's reply that
       does not decode or match is dropped and counted; clients.c checks
       the clients' requests). Neither is an allocation: a request the
       router cannot allocate for is answered busy (its records were not
       sent), and a reply frame it cannot allocate is dropped and counted
       like an undeliverable reply (the client retries).
    6. waiting_total is the sum of the requests' waiting counts, and
       pending_bytes the sum of their bytes.

    LIMITS
    RL_ROUTER_PENDING_MAX requests and RL_ROUTER_PENDING_BYTES_MAX bytes in
    progress; RL_ROUTER_REPLIES_PER_TURN_MAX shard replies per readable
    event (the client side's limits are in clients.c).
*/
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "codec.h"
#include "failpoint.h"
#include "log.h"
#include "router.h"

static void s_dispatch (router_t *self, r_pending_t *p);
static void s_pending_try_finish (router_t *self, r_pending_t *p);

//  Zeroed memory for a request in progress, or NULL (logged) when there is
//  none: the caller answers busy. Failpoint router.alloc makes it fail.
void *
router_alloc (router_t *self, size_t size)
{
    void *mem = RL_FAILPOINT (ROUTER_ALLOC) == 0 ? calloc (1, size ? size : 1) : NULL;
    if (!mem) {
        self->nomem++;
        router_log_client_error (self, "out of memory: %zu bytes for a request", size);
    }
    return mem;
}

//  Pending client requests -----------------------------------------------------

static r_pending_t *
s_pending_of (router_t *self, const r_sub_t *sub)
{
    if (sub->refresh || sub->probe || sub->pending_slot >= RL_ROUTER_PENDING_MAX) {
        return NULL;
    }
    r_pending_t *p = &self->pending[sub->pending_slot];
    return p->used && p->gen == sub->pending_gen ? p : NULL;
}

static void
s_pending_unlink (router_t *self, r_pending_t *p)
{
    if (p->prev >= 0) {
        self->pending[p->prev].next = p->next;
    } else {
        self->pending_head = p->next;
    }
    if (p->next >= 0) {
        self->pending[p->next].prev = p->prev;
    } else {
        self->pending_tail = p->prev;
    }
}

//  Answers the client and frees the request (invariant 1: called once).
static void
s_pending_finish (router_t *self, r_pending_t *p)
{
    assert (p->used);
    uint32_t count = p->status == RL_STATUS_OK ? p->reply_count : 0;
    router_metrics_request (self->metrics, p->header.operation, zclock_usecs () - p->admitted_us);
    router_reply_send (self, &p->envelope, &p->header, p->status, count, p->reply,
                       (size_t) count * p->out_size);
    s_pending_unlink (self, p);
    assert (self->waiting_total >= p->waiting);
    self->waiting_total -= p->waiting;
    assert (self->pending_bytes >= p->bytes);
    self->pending_bytes -= p->bytes;
    zframe_destroy (&p->payload);
    free (p->reply);
    free (p->state); //  frozen shares its block
    free (p->attempts);
    uint64_t gen = p->gen;
    memset (p, 0, sizeof (*p));
    p->gen = gen; //  late sub-requests still name the old generation
    self->pending_free[self->pending_free_count++] = (uint32_t) (p - self->pending);
}

//  Writes the final result of a create record.
static void
s_record_result (r_pending_t *p, uint32_t pos, uint32_t result, uint64_t timestamp)
{
    assert (p->state[pos] != REC_DONE);
    rl_result_rec_t r = {.index = pos, .result = result, .timestamp = timestamp};
    codec_encode_result (&r, p->reply + (size_t) pos * RL_RESULT_SIZE);
    p->state[pos] = REC_DONE;
    assert (p->open > 0);
    p->open--;
}

static void
s_record_done_read (r_pending_t *p, uint32_t pos, const uint8_t *record)
{
    assert (p->state[pos] != REC_DONE);
    memcpy (p->reply + (size_t) pos * p->out_size, record, p->out_size);
    p->state[pos] = REC_DONE;
    assert (p->open > 0);
    p->open--;
}

//  A record leaves REC_WAIT (sent again, or answered without a send).
static void
s_unwait (router_t *self, r_pending_t *p, uint32_t pos)
{
    assert (p->state[pos] == REC_WAIT && p->waiting > 0 && self->waiting_total > 0);
    p->waiting--;
    self->waiting_total--;
    if (p->frozen[pos]) {
        assert (p->frozen_waiting > 0);
        p->frozen_waiting--;
    }
    assert (p->frozen_waiting <= p->waiting);
}

//  A record answered wrong_shard: wait for a ring refresh and send it again,
//  unless it has had its attempts.
static void
s_record_wrong_shard (router_t *self, r_pending_t *p, uint32_t pos)
{
    self->wrong_shard++;
    if (p->attempts[pos] >= RL_ROUTER_WRONG_SHARD_ATTEMPTS_MAX) {
        router_log_client_error (self,
                                 "request %" PRIu64 ": record %" PRIu32 " still wrong_shard "
                                 "after %d sends (ring epoch %" PRIu64 ")",
                                 p->header.request_id, pos, RL_ROUTER_WRONG_SHARD_ATTEMPTS_MAX,
                                 ring_epoch (self->ring));
        s_record_result (p, pos, RL_WRONG_SHARD, 0);
        return;
    }
    p->state[pos] = REC_WAIT;
    p->frozen[pos] = 0;
    p->waiting++;
    self->waiting_total++;
}

//  The next pause of `p`'s frozen records, once per answer that froze any
//  (not per record: a piece of 8 records would start at the longest pause):
//  doubling, from now. No resend
//  starts in the last quarter of the deadline (at least
//  RL_ROUTER_FROZEN_RETRY_MS_MIN): that time is kept for the answer to the
//  last one, so that the deadline does not overtake a resend and turn a
//  definite frozen into outcome_unknown.
static void
s_frozen_backoff (router_t *self, r_pending_t *p)
{
    int64_t pause = p->frozen_pause_ms ? p->frozen_pause_ms * 2 : RL_ROUTER_FROZEN_RETRY_MS_MIN;
    p->frozen_pause_ms = pause < RL_ROUTER_FROZEN_RETRY_MS_MAX ? pause
                                                               : RL_ROUTER_FROZEN_RETRY_MS_MAX;
    int64_t keep_ms = self->options.deadline_ms / 4;
    if (keep_ms < RL_ROUTER_FROZEN_RETRY_MS_MIN) {
        keep_ms = RL_ROUTER_FROZEN_RETRY_MS_MIN;
    }
    int64_t at = zclock_mono () + p->frozen_pause_ms;
    p->retry_ms = at < p->deadline_ms - keep_ms ? at : INT64_MAX;
}

//  A record answered frozen (nothing applied, the id not burned): it waits
//  for its pause and is sent again, until the deadline.
static void
s_record_frozen (router_t *self, r_pending_t *p, uint32_t pos)
{
    assert (p->state[pos] == REC_SENT && p->attempts[pos] > 0);
    self->frozen++;
    p->attempts[pos]--; //  a frozen answer does not count against wrong_shard's sends
    p->state[pos] = REC_WAIT;
    p->frozen[pos] = 1;
    p->waiting++;
    p->frozen_waiting++;
    self->waiting_total++;
}

static void
s_pending_try_finish (router_t *self, r_pending_t *p)
{
    if (p->status != RL_STATUS_OK || (p->open == 0 && p->subs == 0)) {
        if (p->status != RL_STATUS_OK) {
            router_log_client_error (self, "request %" PRIu64 " (%s): %s", p->header.request_id,
                                     rl_op_name (p->header.operation), rl_status_name (p->status));
        }
        s_pending_finish (self, p);
    }
}

//  The deadline passed: creates answer their open records outcome_unknown
//  (a record waiting for a resend was answered wrong_shard: not applied);
//  reads answer timeout.
void
router_pending_expire (router_t *self, r_pending_t *p)
{
    rl_log_request_begin (p->header.request_id);
    if (router_op_is_create (p->header.operation)) {
        uint32_t unknown = 0;
        for (uint32_t i = 0; i < p->header.record_count; i++) {
            if (p->state[i] == REC_SENT || p->state[i] == REC_NEW) {
                s_record_result (p, i, RL_OUTCOME_UNKNOWN, 0);
                unknown++;
            } else if (p->state[i] == REC_WAIT) {
                //  Not applied: answered frozen or wrong_shard, or never sent at all.
                s_record_result (p, i,
                                 p->frozen[i]         ? RL_FROZEN
                                 : p->attempts[i] > 0 ? RL_WRONG_SHARD
                                                      : RL_BUSY,
                                 0);
            }
        }
        router_log_client_error (self,
                                 "request %" PRIu64 " (%s): deadline passed, %" PRIu32
                                 " of %" PRIu32 " records outcome_unknown",
                                 p->header.request_id, rl_op_name (p->header.operation), unknown,
                                 p->header.record_count);
    } else {
        //  A read still waiting after frozen answers fails frozen: retry later.
        p->status = p->read_frozen && p->waiting > 0 ? RL_STATUS_FROZEN : RL_STATUS_TIMEOUT;
        router_log_client_error (self, "request %" PRIu64 " (%s): deadline passed: %s",
                                 p->header.request_id, rl_op_name (p->header.operation),
                                 rl_status_name (p->status));
    }
    s_pending_finish (self, p);
    rl_log_request_end ();
}

//  Splitting and sending -------------------------------------------------------

//  The records of the client's request, in wire form (the payload passed
//  codec_check_request: it holds a header).
static const uint8_t *
s_request_records (const r_pending_t *p)
{
    size_t body_size = 0;
    return codec_frame_body (zframe_data (p->payload), zframe_size (p->payload), &body_size);
}

//  The bytes of the id that places record i on the ring.
static const uint8_t *
s_routing_id (const r_pending_t *p, uint32_t i)
{
    const uint8_t *record = s_request_records (p) + (size_t) i * p->in_size;
    const uint8_t *id = codec_routing_id (p->header.operation, record);
    assert (id); //  only placed operations are admitted
    return id;
}

//  A group could not be sent (no capacity or no connection): its records
//  were never applied. Creates answer busy per record; reads fail with
//  `status`.
static void
s_group_unsent (router_t *self, r_pending_t *p, r_shard_t *shard, const uint32_t *positions,
                uint32_t count, uint32_t status)
{
    self->busy++;
    if (router_op_is_create (p->header.operation)) {
        for (uint32_t k = 0; k < count; k++) {
            uint32_t pos = positions[k];
            if (p->state[pos] == REC_WAIT) {
                s_unwait (self, p, pos);
            }
            s_record_result (p, pos, RL_BUSY, 0);
        }
        router_log_client_error (self, "request %" PRIu64 ": %" PRIu32 " records busy: shard %s %s",
                                 p->header.request_id, count, shard->name,
                                 status == RL_STATUS_BUSY ? "has too much in flight"
                                                          : "is not connected");
    } else if (p->status == RL_STATUS_OK) {
        p->status = status;
    }
}

//  True while a connection opened moments ago may simply not be up yet.
static bool
s_shard_connecting (router_t *self, const r_shard_t *shard)
{
    int64_t grace_ms = RL_ROUTER_CONNECT_GRACE_MS;
    if (grace_ms > self->options.deadline_ms / 2) {
        grace_ms = self->options.deadline_ms / 2;
    }
    return zclock_mono () < shard->created_ms + grace_ms;
}

//  The records wait for the next tick (the connection is being made).
static void
s_group_wait (router_t *self, r_pending_t *p, const uint32_t *positions, uint32_t count)
{
    for (uint32_t k = 0; k < count; k++) {
        uint32_t pos = positions[k];
        if (p->state[pos] != REC_WAIT) {
            p->state[pos] = REC_WAIT;
            p->waiting++;
            self->waiting_total++;
        }
    }
}

//  Sends the records of `p` at `positions` to `shard` as one sub-request.
static void
s_send_group (router_t *self, r_pending_t *p, r_shard_t *shard, const uint32_t *positions,
              uint32_t count)
{
    r_sub_t *sub = router_sub_alloc (self, shard);
    if (!sub) {
        s_group_unsent (self, p, shard, positions, count, RL_STATUS_BUSY);
        return;
    }
    sub->pending_slot = (uint32_t) (p - self->pending);
    sub->pending_gen = p->gen;
    sub->operation = p->header.operation;
    sub->count = count;
    sub->positions = router_alloc (self, (size_t) count * sizeof (uint32_t));
    if (!sub->positions) {
        router_sub_free (self, sub, false, false);
        s_group_unsent (self, p, shard, positions, count, RL_STATUS_BUSY);
        return;
    }
    memcpy (sub->positions, positions, (size_t) count * sizeof (uint32_t));
    const uint8_t *records = s_request_records (p);
    for (uint32_t k = 0; k < count; k++) {
        memcpy (self->frame_buf + (size_t) k * p->in_size,
                records + (size_t) positions[k] * p->in_size, p->in_size);
    }
    int rc = router_sub_send (self, sub, self->frame_buf, (size_t) count * p->in_size);
    if (rc != 0) {
        router_sub_free (self, sub, false, false);
        if (rc == RL_STATUS_BUSY) {
            s_group_unsent (self, p, shard, positions, count, RL_STATUS_BUSY); //  no memory
        } else if (s_shard_connecting (self, shard)) {
            s_group_wait (self, p, positions, count);
        } else {
            s_group_unsent (self, p, shard, positions, count, RL_STATUS_UNAVAILABLE);
        }
        return;
    }
    router_sub_link (self, sub);
    p->subs++;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t pos = positions[k];
        if (p->state[pos] == REC_WAIT) {
            s_unwait (self, p, pos);
        }
        p->state[pos] = REC_SENT;
        p->attempts[pos]++;
    }
}

//  lookup_transfers: a transfer lives on its debit account's shard, which an
//  id alone does not name; every shard gets every id.
static void
s_broadcast (router_t *self, r_pending_t *p)
{
    const uint8_t *body = s_request_records (p);
    size_t body_size = (size_t) p->header.record_count * p->in_size;
    for (size_t s = 0; s < self->shard_count && p->status == RL_STATUS_OK; s++) {
        r_sub_t *sub = router_sub_alloc (self, self->shards[s]);
        if (!sub) {
            p->status = RL_STATUS_BUSY;
            break;
        }
        sub->pending_slot = (uint32_t) (p - self->pending);
        sub->pending_gen = p->gen;
        sub->operation = p->header.operation;
        sub->count = p->header.record_count;
        int rc = router_sub_send (self, sub, body, body_size);
        if (rc != 0) {
            router_sub_free (self, sub, false, false);
            p->status = (uint32_t) rc;
            if (rc == RL_STATUS_UNAVAILABLE) {
                router_log_client_error (self, "request %" PRIu64 ": shard %s is not connected",
                                         p->header.request_id, self->shards[s]->name);
            }
            break;
        }
        router_sub_link (self, sub);
        p->subs++;
    }
}

//  Linked chains (docs/payments.md) ---------------------------------------------
//
//  A chain (transfers flagged linked, up to the first without the flag) is
//  decided by one shard, so the router never splits one: every member
//  goes in the piece of the chain's shard, the debit account's shard of
//  its first post or void, else of its first member
//  (codec_transfer_places_chain; that shard runs a group of two-phase
//  attempts for members crediting other shards, and prepares the debit
//  legs of members debiting other shards there), and a
//  shard answers a chain's members together (wrong_shard and frozen for
//  all of them), so they wait and are sent again together. A chain left
//  open at the end of the request is answered here:
//  linked_event_chain_open (its last record) and linked_event_failed; none
//  of it is sent.

//  Is record i of the request flagged linked (create_transfers only)?
static bool
s_linked (const r_pending_t *p, uint32_t i)
{
    if (p->header.operation != RL_OP_CREATE_TRANSFERS) {
        return false;
    }
    rl_transfer_t t;
    codec_decode_transfer (s_request_records (p) + (size_t) i * p->in_size, &t);
    return (t.flags & RL_TRANSFER_LINKED) != 0;
}

//  The last record of the chain that starts at i (i itself when no chain).
static uint32_t
s_chain_end (const r_pending_t *p, uint32_t i)
{
    uint32_t end = i;
    while (end + 1 < p->header.record_count && s_linked (p, end)) {
        end++;
    }
    return end;
}

//  The routing id of the chain that starts at record `start`: its first
//  post or void's debit account, else its first member's (above).
static const uint8_t *
s_chain_routing_id (const r_pending_t *p, uint32_t start)
{
    uint32_t end = s_chain_end (p, start);
    for (uint32_t k = start; k <= end; k++) {
        rl_transfer_t t;
        codec_decode_transfer (s_request_records (p) + (size_t) k * p->in_size, &t);
        if (codec_transfer_places_chain (&t)) {
            return s_routing_id (p, k);
        }
    }
    return s_routing_id (p, start);
}

//  At admission: answers the chains that no shard can serve (above).
static void
s_chains_check (router_t *self, r_pending_t *p)
{
    uint32_t count = p->header.record_count;
    for (uint32_t start = 0; start < count;) {
        uint32_t end = s_chain_end (p, start);
        if (end == start && !s_linked (p, start)) {
            start++;
            continue;
        }
        if (end == count - 1 && s_linked (p, end)) {
            router_log_client_error (self,
                                     "request %" PRIu64 ": linked chain of records %" PRIu32
                                     "..%" PRIu32 " not sent: record %" PRIu32
                                     " leaves the chain open",
                                     p->header.request_id, start, end, end);
            for (uint32_t k = start; k <= end; k++) {
                s_record_result (p, k,
                                 k == end ? RL_LINKED_EVENT_CHAIN_OPEN : RL_LINKED_EVENT_FAILED, 0);
            }
        }
        start = end + 1;
    }
}

//  Sends every record of `p` in REC_NEW or REC_WAIT, grouped by owner.
static void
s_dispatch (router_t *self, r_pending_t *p)
{
    uint32_t count = p->header.record_count;
    memset (self->group_count, 0, self->shard_count * sizeof (uint32_t));
    uint32_t todo = 0;
    bool paused = p->retry_ms > zclock_mono (); //  frozen records wait for their pause
    for (uint32_t i = 0; i < count; i++) {
        self->owners[i] = -1;
        if (p->state[i] == REC_WAIT && p->frozen[i] && paused) {
            continue;
        }
        if (p->state[i] == REC_NEW || p->state[i] == REC_WAIT) {
            //  A chain's members go where its first member goes, and that
            //  one where the chain is placed.
            bool member = i > 0 && s_linked (p, i - 1) && self->owners[i - 1] >= 0;
            self->owners[i] = member            ? self->owners[i - 1]
                              : s_linked (p, i) ? router_owner (self, s_chain_routing_id (p, i))
                                                : router_owner (self, s_routing_id (p, i));
            self->group_count[self->owners[i]]++;
            todo++;
        }
    }
    if (todo == 0) {
        return;
    }
    uint32_t *positions = router_alloc (self, (size_t) todo * sizeof (uint32_t));
    if (!positions) {
        //  Nothing of it was sent: creates answer busy per record, reads fail.
        self->busy++;
        for (uint32_t i = 0; i < count && router_op_is_create (p->header.operation); i++) {
            if (self->owners[i] >= 0) {
                if (p->state[i] == REC_WAIT) {
                    s_unwait (self, p, i);
                }
                s_record_result (p, i, RL_BUSY, 0);
            }
        }
        if (!router_op_is_create (p->header.operation) && p->status == RL_STATUS_OK) {
            p->status = RL_STATUS_BUSY;
        }
        return;
    }
    for (size_t s = 0; s < self->shard_count; s++) {
        if (self->group_count[s] == 0) {
            continue;
        }
        uint32_t n = 0;
        for (uint32_t i = 0; i < count; i++) {
            if (self->owners[i] == (int32_t) s) {
                positions[n++] = i;
            }
        }
        assert (n == self->group_count[s]);
        s_send_group (self, p, self->shards[s], positions, n);
        if (p->status != RL_STATUS_OK) {
            break; //  a read failed: no need to send the rest
        }
    }
    free (positions);
}

//  Re-sends the records that wait after wrong_shard, with the current ring.
void
router_redispatch_waiting (router_t *self)
{
    int64_t now = zclock_mono ();
    int32_t slot = self->pending_head;
    while (slot >= 0 && self->waiting_total > 0) {
        r_pending_t *p = &self->pending[slot];
        int32_t next = p->next;
        //  Only frozen records in their pause: nothing to send (no scan of
        //  the request's records at every tick while an arc stays frozen).
        bool paused = p->waiting == p->frozen_waiting && p->retry_ms > now;
        if (p->waiting > 0 && !paused) {
            s_dispatch (self, p);
            s_pending_try_finish (self, p);
        }
        slot = next;
    }
}

//  Admission: true when the request fits the bounds, with one sub-request
//  per target shard (nothing is sent otherwise: busy).
static bool
s_admit_fits (router_t *self, r_pending_t *p)
{
    uint32_t count = p->header.record_count;
    size_t needed = 0;
    if (p->header.operation == RL_OP_LOOKUP_TRANSFERS) {
        for (size_t s = 0; s < self->shard_count; s++) {
            if (self->shards[s]->inflight >= RL_ROUTER_INFLIGHT_PER_SHARD_MAX) {
                return false;
            }
        }
        return self->shard_count <= self->sub_free_count;
    }
    memset (self->group_count, 0, self->shard_count * sizeof (uint32_t));
    for (uint32_t i = 0; i < count; i++) {
        int owner = router_owner (self, s_routing_id (p, i));
        if (self->group_count[owner]++ == 0) {
            needed++;
            if (self->shards[owner]->inflight >= RL_ROUTER_INFLIGHT_PER_SHARD_MAX) {
                return false;
            }
        }
    }
    return needed <= self->sub_free_count;
}

//  Takes envelope and payload: admits the request and sends its pieces, or
//  answers at once (busy, empty batch). Called by clients.c after its checks.
void
router_admit (router_t *self, zmsg_t *envelope, zframe_t *payload, const rl_header_t *h)
{
    uint32_t count = h->record_count;
    uint32_t op = h->operation;
    size_t out_size = codec_reply_record_size (op);
    size_t reply_bytes = op == RL_OP_GET_ACCOUNT_TRANSFERS ? 0 : (size_t) count * out_size;
    //  The envelope is held as long as the request (its frames may be as
    //  large as the payload's): counted too, or a client's frame of 4 MiB
    //  before each request would hold 4 GiB within the bound.
    size_t bytes = zmsg_content_size (envelope) + zframe_size (payload) + reply_bytes;
    if (self->pending_free_count == 0
        || self->pending_bytes + bytes > RL_ROUTER_PENDING_BYTES_MAX) {
        self->busy++;
        router_log_client_error (self, "request %" PRIu64 " (%s): busy: %zu requests in progress",
                                 h->request_id, rl_op_name (op),
                                 (size_t) RL_ROUTER_PENDING_MAX - self->pending_free_count);
        router_reply_send (self, &envelope, h, RL_STATUS_BUSY, 0, NULL, 0);
        zframe_destroy (&payload);
        return;
    }
    if (count == 0) {
        router_reply_send (self, &envelope, h, RL_STATUS_OK, 0, NULL, 0);
        zframe_destroy (&payload);
        return;
    }
    uint32_t slot = self->pending_free[self->pending_free_count - 1];
    r_pending_t *p = &self->pending[slot];
    assert (!p->used);
    p->header = *h;
    p->payload = payload;
    p->admitted_us = zclock_usecs ();
    p->in_size = codec_request_record_size (op);
    p->out_size = out_size;
    if (!s_admit_fits (self, p)) {
        memset (&p->header, 0, sizeof (p->header));
        p->payload = NULL;
        self->busy++;
        router_log_client_error (self,
                                 "request %" PRIu64 " (%s): busy: a shard has %d sub-requests "
                                 "in flight",
                                 h->request_id, rl_op_name (op), RL_ROUTER_INFLIGHT_PER_SHARD_MAX);
        router_reply_send (self, &envelope, h, RL_STATUS_BUSY, 0, NULL, 0);
        zframe_destroy (&payload);
        return;
    }
    p->state = router_alloc (self, (size_t) count * 2); //  state, then frozen
    p->frozen = p->state ? p->state + count : NULL;
    p->attempts = p->state ? router_alloc (self, count) : NULL;
    p->reply = p->attempts && reply_bytes ? router_alloc (self, reply_bytes) : NULL;
    if (!p->attempts || (!p->reply && reply_bytes > 0)) {
        free (p->state);
        free (p->attempts);
        p->state = p->attempts = p->frozen = p->reply = NULL;
        memset (&p->header, 0, sizeof (p->header));
        p->payload = NULL;
        self->busy++;
        router_log_client_error (self, "request %" PRIu64 " (%s): busy: out of memory",
                                 h->request_id, rl_op_name (op));
        router_reply_send (self, &envelope, h, RL_STATUS_BUSY, 0, NULL, 0);
        zframe_destroy (&payload);
        return;
    }
    self->pending_free_count--;
    p->used = true;
    p->gen++;
    p->envelope = envelope;
    p->reply_count = op == RL_OP_GET_ACCOUNT_TRANSFERS ? 0 : count;
    p->open = count;
    p->bytes = bytes;
    self->pending_bytes += bytes;
    p->deadline_ms = zclock_mono () + self->options.deadline_ms;
    p->prev = self->pending_tail;
    p->next = -1;
    if (self->pending_tail >= 0) {
        self->pending[self->pending_tail].next = (int32_t) slot;
    } else {
        self->pending_head = (int32_t) slot;
    }
    self->pending_tail = (int32_t) slot;

    if (op == RL_OP_LOOKUP_TRANSFERS) {
        //  Not found until a shard says otherwise: the id, every other field 0.
        const uint8_t *ids = s_request_records (p);
        for (uint32_t i = 0; i < count; i++) {
            rl_transfer_t t = {.id = codec_decode_id (ids + (size_t) i * RL_ID_SIZE)};
            codec_encode_transfer (&t, p->reply + (size_t) i * RL_TRANSFER_SIZE);
            p->state[i] = REC_DONE;
        }
        p->open = 0;
        s_broadcast (self, p);
    } else {
        s_chains_check (self, p);
        s_dispatch (self, p);
    }
    s_pending_try_finish (self, p);
}

//  Shard replies -------------------------------------------------------------

static void
s_reply_create (router_t *self, r_pending_t *p, r_sub_t *sub, const rl_header_t *h,
                const uint8_t *body)
{
    if (h->status == RL_STATUS_OK) {
        bool frozen = false;
        for (uint32_t k = 0; k < sub->count; k++) {
            rl_result_rec_t r;
            codec_decode_result (body + (size_t) k * RL_RESULT_SIZE, &r);
            uint32_t pos = sub->positions[k];
            if (r.result == RL_WRONG_SHARD) {
                s_record_wrong_shard (self, p, pos);
            } else if (r.result == RL_FROZEN) {
                s_record_frozen (self, p, pos);
                frozen = true;
            } else {
                s_record_result (p, pos, r.result, r.timestamp);
            }
        }
        if (frozen) {
            s_frozen_backoff (self, p);
        }
        return;
    }
    //  The shard refused the whole piece. frozen: nothing applied, sent
    //  again after a pause. busy: nothing applied. Anything else
    //  (storage_error above all) leaves the outcome open.
    if (h->status == RL_STATUS_FROZEN) {
        for (uint32_t k = 0; k < sub->count; k++) {
            s_record_frozen (self, p, sub->positions[k]);
        }
        s_frozen_backoff (self, p);
        return;
    }
    uint32_t result = h->status == RL_STATUS_BUSY ? RL_BUSY : RL_OUTCOME_UNKNOWN;
    router_log_client_error (self,
                             "request %" PRIu64 ": shard %s answered %s: %" PRIu32 " records %s",
                             p->header.request_id, sub->shard->name, rl_status_name (h->status),
                             sub->count, rl_result_name (result));
    for (uint32_t k = 0; k < sub->count; k++) {
        s_record_result (p, sub->positions[k], result, 0);
    }
}

static void
s_reply_read (router_t *self, r_pending_t *p, r_sub_t *sub, const rl_header_t *h,
              const uint8_t *body, size_t body_size)
{
    if (h->status == RL_STATUS_WRONG_SHARD && p->header.operation != RL_OP_LOOKUP_TRANSFERS) {
        self->wrong_shard++; //  a read counts once per sub-request
        for (uint32_t k = 0; k < sub->count; k++) {
            uint32_t pos = sub->positions[k];
            if (p->attempts[pos] >= RL_ROUTER_WRONG_SHARD_ATTEMPTS_MAX) {
                p->status = RL_STATUS_WRONG_SHARD;
                return;
            }
            p->state[pos] = REC_WAIT;
            p->frozen[pos] = 0;
            p->waiting++;
            self->waiting_total++;
        }
        return;
    }
    if (h->status == RL_STATUS_FROZEN && p->header.operation != RL_OP_LOOKUP_TRANSFERS) {
        //  Nothing was read: the piece waits for its pause and is sent again.
        for (uint32_t k = 0; k < sub->count; k++) {
            s_record_frozen (self, p, sub->positions[k]);
        }
        s_frozen_backoff (self, p);
        p->read_frozen = true;
        return;
    }
    if (h->status != RL_STATUS_OK) {
        p->status = h->status;
        return;
    }
    switch (p->header.operation) {
        case RL_OP_LOOKUP_TRANSFERS:
            //  Merge: a found record has a timestamp; the first one found wins.
            for (uint32_t k = 0; k < sub->count; k++) {
                const uint8_t *record = body + (size_t) k * RL_TRANSFER_SIZE;
                uint8_t *merged = p->reply + (size_t) k * RL_TRANSFER_SIZE;
                if (codec_transfer_timestamp (record) != 0
                    && codec_transfer_timestamp (merged) == 0) {
                    memcpy (merged, record, RL_TRANSFER_SIZE);
                }
            }
            break;
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            free (p->reply);
            p->reply = body_size ? router_alloc (self, body_size) : NULL;
            if (!p->reply && body_size > 0) {
                p->status = RL_STATUS_BUSY;
                return;
            }
            if (body_size) {
                memcpy (p->reply, body, body_size);
            }
            p->reply_count = h->record_count;
            p->state[0] = REC_DONE;
            p->open = 0;
            break;
        default:
            for (uint32_t k = 0; k < sub->count; k++) {
                s_record_done_read (p, sub->positions[k], body + (size_t) k * p->out_size);
            }
            break;
    }
}

//  A well-formed reply must answer the sub-request it names, with the
//  record count that sub-request implies.
static bool
s_reply_matches (const r_sub_t *sub, const rl_header_t *h)
{
    if (h->operation != sub->operation) {
        return false;
    }
    if (h->status != RL_STATUS_OK || sub->refresh || sub->probe
        || sub->operation == RL_OP_GET_ACCOUNT_TRANSFERS) {
        return true;
    }
    return h->record_count == sub->count;
}

static void
s_handle_reply (router_t *self, r_shard_t *shard, zframe_t *frame)
{
    const uint8_t *data = zframe_data (frame);
    size_t size = zframe_size (frame);
    rl_header_t h;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    if (codec_parse_reply (data, size, &h, &body, &body_size) != RL_STATUS_OK) {
        self->bad_replies++;
        rl_warn ("shard %s: a reply that does not decode (%zu bytes): dropped", shard->name, size);
        return;
    }
    r_sub_t *sub = router_sub_find (self, h.request_id);
    if (!sub || sub->shard != shard) {
        self->late++;
        rl_debug ("shard %s: late reply %" PRIu64 " discarded", shard->name, h.request_id);
        return;
    }
    //  An epoch refused for its jump (shards.c) is not asked for again at
    //  every reply; the periodic refresh still asks. Never of a retired
    //  shard: it is closed once its sub-requests are gone, and a refresh
    //  sent to it would outlive it.
    if (h.epoch > ring_epoch (self->ring) && h.epoch != self->epoch_refused && !self->refresh_want
        && !shard->retired) {
        self->refresh_want = shard;
    }
    if (!s_reply_matches (sub, &h)) {
        self->bad_replies++;
        rl_warn ("shard %s: reply %" PRIu64 " does not match its request: dropped", shard->name,
                 h.request_id);
        return;
    }
    if (sub->refresh) {
        router_refresh_done (self, sub, h.status == RL_STATUS_OK ? body : NULL, body_size);
        return;
    }
    if (sub->probe) {
        rl_status_rec_t status;
        bool ok = h.status == RL_STATUS_OK && h.record_count == 1 && body_size == RL_STATUS_SIZE;
        if (ok) {
            codec_decode_status (body, &status);
        }
        router_probe_done (self, sub, ok ? &status : NULL);
        return;
    }
    r_pending_t *p = s_pending_of (self, sub);
    if (!p) {
        self->late++; //  the client was answered already (deadline, or a read failed)
        router_sub_free (self, sub, true, true);
        return;
    }
    rl_log_request_begin (p->header.request_id); //  the client's request
    if (router_op_is_create (p->header.operation)) {
        s_reply_create (self, p, sub, &h, body);
    } else {
        s_reply_read (self, p, sub, &h, body, body_size);
    }
    assert (p->subs > 0);
    p->subs--;
    router_sub_free (self, sub, true, true);
    if (p->waiting > 0 && self->refresh_want) {
        router_refresh_start (self, self->refresh_want);
    }
    s_pending_try_finish (self, p);
    rl_log_request_end ();
}

int
router_on_shard_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    r_shard_t *shard = arg;
    for (int i = 0; i < RL_ROUTER_REPLIES_PER_TURN_MAX; i++) {
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg) {
            break;
        }
        zframe_t *frame = zmsg_last (msg);
        if (frame) {
            s_handle_reply (shard->router, shard, frame);
        }
        zmsg_destroy (&msg);
    }
    return 0;
}

//  The tick: deadlines, expiries, refreshes, resends -------------------------

int
router_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    router_t *self = arg;
    self->tick++;
    int64_t now = zclock_mono ();
    rl_auth_tick (self->auth, now, false);
    replyq_flush (self->replies);              //  replies parked behind clients' full queues
    router_metrics_tick (self->metrics, self); //  publishes the snapshot
    while (self->pending_head >= 0 && self->pending[self->pending_head].deadline_ms <= now) {
        router_pending_expire (self, &self->pending[self->pending_head]);
    }
    while (self->sub_head >= 0 && self->subs[self->sub_head].expires_ms <= now) {
        r_sub_t *sub = &self->subs[self->sub_head];
        r_pending_t *p = s_pending_of (self, sub);
        if (p) {
            p->subs--; //  the request itself expires no later than this
        }
        if (sub->probe) {
            sub->shard->probe_active = false; //  no answer: the next poll is due already
        }
        self->expired_subs++;
        router_sub_free (self, sub, true, true);
    }
    if (self->refresh_active && self->refresh_expires_ms <= now) {
        rl_warn ("ring refresh from shard %s: no answer within %d ms",
                 self->subs[self->refresh_slot].shard->name, RL_ROUTER_RING_FETCH_TIMEOUT_MS);
        router_refresh_done (self, &self->subs[self->refresh_slot], NULL, 0);
    }
    if (!self->refresh_active && (self->refresh_want || now >= self->refresh_next_ms)) {
        router_refresh_start (self, self->refresh_want);
    }
    if (!self->refresh_active && self->waiting_total > 0) {
        router_redispatch_waiting (self);
    }
    router_probe_tick (self, now);
    router_retired_sweep (self);
    return 0;
}
