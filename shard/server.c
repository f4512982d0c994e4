/*  server.c: the shard's turn loop and the dispatch of operations.

    One ROUTER socket, driven by a czmq reactor (zloop). Each time the
    socket becomes readable the shard runs one TURN:

        1. drain up to RL_SHARD_REQUESTS_PER_TURN_MAX requests (and the
           replies of peer shards), without blocking, and apply each in
           arrival order to the ledger (writes go into one WriteBatch,
           replies are built but held back);
        2. group commit: write the batch (not synced yet), once;
        3. start a sync of everything written, unless one is in flight;
        4. send what earlier syncs justify (and PREPAREs, which need none);
        5. checkpoint if due (ledger.c).

    THE PIPELINED GROUP COMMIT. The sync runs on a thread of its own
    (syncer.h) while the loop goes on reading and applying the next turns.
    When it ends, the loop sends every held reply and peer record whose
    group commit it covers and starts the next sync, which covers every
    batch written meanwhile: so a sync is shared by all the turns that ran
    while the previous one took, and the disk's time overlaps the loop's.
    Replies and outboxes wait across turns for their sync. So nothing is
    answered before the write that justifies it is durable, as before;
    only the waiting moved off the loop. A turn whose writes need no sync
    (it only read acknowledgements of DECIDEs: the coordinator log entries
    they delete may be lost, docs/two-phase.md "Writes without a sync")
    starts none: the next sync covers it. Reads are answered once the
    writes before them are synced. A turn that wrote
    RL_SHARD_INLINE_SYNC_WRITES or more (full batches) waits for its sync
    (s_sync_inline), as before the pipeline: there a turn lasts about as
    long as a sync, and the wait lets peers' records pile up into larger
    turns. A timer tick (prepare timeouts, resends,
    queries) is a turn of its own. With --durability nosync nothing is
    synced and everything goes at the end of its turn.

    DEFERRED APPLIES. A turn that only applied DECIDEs (a participant's
    commits and aborts; acknowledgements read beside them change nothing)
    needs a sync, but nobody waits for it but the coordinator's log entry:
    the client was answered when the decision was durable at the
    coordinator, and the ACK that lets the coordinator forget it goes once
    the apply is synced. So such a turn writes its batch and starts no
    sync (outq_batch_written, not urgent): the next turn that wants one
    (anything else read, a tick: at most RL_SHARD_TICK_MS later) starts a
    sync that covers it. At batch 1 this takes the apply's sync off the
    path of the next PREPARE to the same shard, which would otherwise wait
    for it, and saves a sync per cross-shard transfer when the shard is
    not busy. Not deferred: a DECIDE of a debit leg (its chain's client is
    answered at the ACK, docs/two-phase.md "Debit legs"), a turn that
    wrote RL_SHARD_INLINE_SYNC_WRITES or more. A crash before the covering
    sync loses the apply and its ACK was never sent: the prepared record
    is still durable, and the coordinator sends its DECIDE again.

    DEFERRED BEGINS. A create_transfers request whose reply waits for
    cross-shard decisions (its records are being prepared at peers) does
    not urge a sync either: its writes (the same-shard records beside the
    cross-shard ones, and failures that burn ids; the attempts and the
    debit reservations are in memory only) are reported to nobody until
    the turn that logs the last decision, which is urgent and whose sync
    covers them (the WAL is one log); and a PREPARE needs nothing
    durable. So the sync of the turn that began the attempts no
    longer runs ahead of the decision's and makes it wait for the disk
    twice. A reply that comes out of the queue (a request decided within
    the turn, or a chain answered at its debit legs' ACKs in a turn that is
    otherwise lazy) makes the turn urgent (s_drain_outq), so that a sync
    starts that covers the deferred batches before it. A crash before the
    covering sync is the crash matrix's tp.coord.prepare_sent: nothing of
    the request is durable, the client was told nothing, and a
    participant's outcome query finds no decision (presumed abort).

    DEFERRED DECISIONS. A turn that read PREPARE replies logs decisions
    (W1) that need a sync before their DECIDEs and the client's reply go,
    but when the request still waits for other records' replies, nobody
    is told anything before its last decision. So PREPARE replies urge no
    sync by themselves: the turn that decides a request's last record is
    urgent through its reply (s_drain_outq), a chain's decision through
    coordinator_urgent_take (its client waits for the sync, and for debit
    legs the ACKs after it), and anything else through the next urgent
    turn or tick. Under load a uniform request's piece at D used to pay a
    sync per peer whose replies came in a turn of their own, each waiting
    for the one before; now it pays the one its last decision starts. A
    crash before the covering sync is the crash matrix's tp.coord.decided:
    the decisions are lost with the batch, nobody was told, and a
    participant's outcome query finds none (presumed abort).

    MIGRATION REQUESTS FIRST. A migration's freeze is a chain of requests
    (freeze, export, import, the step's ring, commit), each waiting for the
    one before; behind a saturating load each used to wait for the turn
    of client batches queued ahead of it and for that turn's sync. So a
    turn first reads ahead what waits on the socket (at most
    RL_SHARD_READ_AHEAD_MAX requests): the requests of a freeze and a
    handover and the ring loads among them (s_first; not the bulk copy's
    exports, which take their turn) are served in a turn of their own, with a
    small batch whose sync starts at once (or as soon as the one in flight
    ends), then the rest in arrival order in the next turn, in the same
    call. And between two requests of a turn, a sync that ended meanwhile
    is taken at once (s_sync_ended): what it justifies goes then, and the
    next sync starts, instead of both waiting for the end of the turn. A
    request served first may so overtake client requests that arrived
    before it; they are concurrent, and each still sees the ledger as the
    writes before it left it. The export that begins the final round may
    ask to wait for the drain (migrate.c): it is kept unanswered and served
    as soon as the batch whose write drained the arc is written, before
    that batch's sync starts (s_parked_written: what the export writes,
    SHIPPED, is written then as a batch of its own, and the one sync
    covers both), or else first in a turn or tick, while the batch being
    built is still empty (the export reads records from the store, so the
    decision that ended the drain must be written first); no poll is
    needed.

    Data flows one way: the server calls the ledger, the coordinator or the
    participant, then drains the output queue (outq.h): PREPARE, DECIDE and
    outcome-query records go to the peer at their ring index (peers.c), and
    a client request whose cross-shard records are all decided comes out as
    its reply.

    INVARIANTS
    1. Every held reply and every queued record carries the group commit
       whose write justifies it; nothing is sent before that commit is
       synced (asserted at each send: "sent <= synced"), except the
       storage_error answers of a failed turn. The test-only failpoint
       shard.send_before_sync breaks this on purpose (tests/test_send_sync.c).
    2. The output queue is empty between calls: it is drained after each.
    3. Held replies wait in arrival order; each goes as soon as its commit
       is synced, so between turns only replies whose commit is not yet
       synced are held, and only while a sync is in flight or due (a
       deferred one: until the next urgent turn or tick).
    4. The failpoints between a sync and the send of what it justifies
       (tp.part.prepare_synced, tp.coord.decision_synced,
       tp.part.apply_synced) fire from the messages that carry them, once a
       release, in that order, before any of them is sent.
    5. At most one sync in flight (syncer.h); one is started whenever a
       written batch needs one, an urgent batch was written since the last
       sync (DEFERRED APPLIES and BEGINS; every tick is urgent), and none is in
       flight.

    STATES, like SQLite's pager ERROR state:

        SERVING --- a group commit's write or sync fails, or a checkpoint
                    fails (s_enter_failed) ---> FAILED --- SIGTERM ---> exit 3

      SERVING  turns as above.
      FAILED   memory may be ahead of disk: the writes of the failed batch
               are applied in memory but may not be durable. So nothing
               that memory says may leave any more: the failed turn's
               replies, and every request still waiting for cross-shard
               decisions, are answered storage_error (their outcome is
               unknown); nothing queued for a peer is sent; from then on
               every request but status is answered storage_error at once
               (reads included: they would show unsynced writes), peers'
               messages are dropped, timers do nothing. status answers,
               with state `failed`, so operators and routers see why. Only
               a restart leaves FAILED: it recovers from what is on disk.

    Roles: every request is checked against the roles its operation allows
    (RL_OP_ROLES_TABLE, proto.h), from the sender's key (the User-Id ZAP
    gave its connection, common/auth.h) in the key sets as they are now; a
    key without the role is answered unauthorized, counted, and nothing is
    applied. Two-phase records also obey their sender rules
    (docs/security.md): the sender's shard name (senders.h, from its key)
    is handed to the participant and the coordinator, and the name of the
    peer a reply came from (its connection) with every reply; records
    refused or ignored by them are counted with the unauthorized requests.

    Errors: a request that does not decode gets a reply whose header names
    the problem (codec_check_request); a frame too short to carry even a
    request id is dropped and counted. Running out of memory for a reply
    drops it (counted): the client retries.

    Ownership: the shard serves the accounts its ring gives it. A record for
    another shard's account gets wrong_shard, and the reply header carries
    the shard's epoch so that the router knows to refresh. An account in an
    arc gained by a ring change whose data has not arrived (arcs.h) gets
    frozen: the record result for creates (ledger.c), the message status
    for reads. load_ring is
    accepted only with a higher epoch, and the ring is persisted, so a
    restart never goes back to an older one. A ring of a higher epoch
    that gives this shard's name to another endpoint (from load_ring, or
    from a peer: ringcheck.h) fences it (server_ring_fences,
    docs/replication.md "The ring's epoch as the fence"); a replicated
    data directory asks its peers for their rings at start, and answers
    clients' writes and reads busy until they answered (or the check timed
    out).

    LIMITS: RL_SHARD_REQUESTS_PER_TURN_MAX requests a turn (and as many
    rounds over the peers' replies); RL_BATCH_RECORDS_MAX records a
    request; RL_SHARD_PENDING_REQUESTS_MAX requests waiting for cross-shard
    decisions (more: busy); socket high-water marks from rl_limits.h; the
    reply bytes one connection may make the shard hold, --reply-queue-bytes
    (replies are sent through replyq.h; a turn stops reading requests once
    its replies reach a quarter of it).
*/
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "codec.h"
#include "failpoint.h"
#include "log.h"
#include "mlease.h"
#include "peers.h"
#include "replyq.h"
#include "ringcheck.h"
#include "rl_limits.h"
#include "server_internal.h"

#define SERVER_BIND_ATTEMPTS 50 //  binds tried when the endpoint is still in use
#define SERVER_BIND_RETRY_MS 20 //  between them

//  Serves a new ring: the ledger switches first, then the old ring goes.
void
server_ring_adopt (server_t *self, ring_t *ring)
{
    assert (ring && ring != self->ring && ring_epoch (ring) > ring_epoch (self->ring));
    ledger_set_ring (self->ledger, ring);
    if (!self->senders && !rl_auth_insecure (self->auth)
        && (self->senders = senders_new (self->auth))) {
        senders_learn_ring (self->senders, self->ring);
    }
    if (self->senders) {
        senders_learn_ring (self->senders, ring); //  the old names stay (a removed coordinator's)
    }
    peers_retire (self->peers, ring); //  indexes move: unchanged peers kept, by name
    ring_destroy (&self->ring);
    self->ring = ring;
    if (ring_shard_find (ring, self->options->name) < 0) {
        rl_warn ("ring epoch %" PRIu64 " does not name this shard: it owns no accounts",
                 ring_epoch (ring));
    }
}

//  Reply frames --------------------------------------------------------------

//  Builds a reply message: envelope (moved from request) + header + body.
//  NULL when memory ran out (the envelope is destroyed: no reply, the
//  client retries).
zmsg_t *
server_reply_new (server_t *self, zmsg_t *envelope, const rl_header_t *request, uint32_t status,
                  uint32_t count, size_t record_size, uint8_t **body_p)
{
    assert (envelope && request);
    assert (status != RL_STATUS_OK || count == 0 || (record_size > 0 && body_p));
    rl_header_t header = codec_reply_header (request, status, count, ring_epoch (self->ring));
    shard_metrics_reply (self->metrics, request->operation, status);
    size_t body_size = status == RL_STATUS_OK ? (size_t) count * record_size : 0;
    zframe_t *frame = zframe_new (NULL, codec_frame_size (body_size));
    if (!frame) {
        rl_error ("out of memory building a reply");
        zmsg_destroy (&envelope);
        return NULL;
    }
    uint8_t *body = codec_encode_frame (&header, NULL, body_size, zframe_data (frame));
    if (body_p) {
        *body_p = body;
    }
    zmsg_append (envelope, &frame);
    assert (zmsg_size (envelope) >= 2); //  the route, then the reply (s_handle checked)
    return envelope;
}

//  Holds a reply until the group commit needs_seq is synced (and, with a
//  semi-synchronous standby, replicated; local: synced only, for the
//  operator's replies that report no ledger state: status, promote,
//  degrade, so that a stalled primary still says so). Takes reply.
static void
s_hold (server_t *self, zmsg_t *reply, uint64_t needs_seq, rl_fp_t fp, bool local)
{
    assert (needs_seq <= outq_batch_seq (self->outq)); //  no reply needs a later write
    //  A reply reports on memory: it needs the writes of earlier turns too,
    //  which may not be synced yet (outq.h).
    needs_seq = outq_justified (self->outq, needs_seq);
    if (!reply) {
        self->dropped++; //  out of memory building it: the client retries
        return;
    }
    if (self->held_count == self->held_cap) {
        size_t cap = self->held_cap ? self->held_cap * 2 : 256;
        s_held_t *held = realloc (self->held, cap * sizeof (s_held_t));
        if (!held) {
            rl_error ("out of memory holding a reply: dropped, the client retries");
            zmsg_destroy (&reply);
            self->dropped++;
            return;
        }
        self->held = held;
        self->held_cap = cap;
    }
    self->held[self->held_count++] = (s_held_t){reply, needs_seq, fp, local};
    self->held_bytes += zmsg_content_size (reply);
    assert (self->held_count <= self->held_cap);
}

static zmsg_t *s_reply_results (server_t *self, zmsg_t *envelope, const rl_header_t *h,
                                const rl_result_rec_t *results, size_t count);
static zmsg_t *s_do_replication (server_t *self, zmsg_t *envelope, const rl_header_t *h);
static void s_on_replicated (void *arg);

//  Takes what the last call into the ledger queued: records for peers go
//  into their outboxes, finished client requests become held replies.
static void
s_drain_outq (server_t *self)
{
    size_t count = outq_count (self->outq);
    for (size_t i = 0; i < count; i++) {
        outq_msg_t *m = outq_at (self->outq, i);
        assert (m->needs_seq <= outq_batch_seq (self->outq));
        if (m->kind == OUTQ_REPLY) {
            assert (m->reply.ctx && m->reply.count > 0);
            zmsg_t *reply = s_reply_results (self, m->reply.ctx, &m->reply.header, m->reply.results,
                                             m->reply.count);
            free (m->reply.results);
            m->reply.results = NULL;
            s_hold (self, reply, m->needs_seq, RL_FP_TP_COORD_DECISION_SYNCED, false);
            self->turn_urgent = true; //  a client waits for this commit
            continue;
        }
        if (!peers_push (self->peers, self->ring, m)) {
            self->dropped++; //  no such peer in this ring: resent or timed out later
        }
    }
    outq_clear (self->outq);
    assert (outq_count (self->outq) == 0);
}

//  Operations ----------------------------------------------------------------

static void
s_count_wrong_shard (server_t *self, const rl_result_rec_t *results, size_t count)
{
    assert (count == 0 || results);
    for (size_t i = 0; i < count; i++) {
        if (results[i].result == RL_WRONG_SHARD) {
            self->wrong_shard++;
        }
    }
}

static zmsg_t *
s_reply_results (server_t *self, zmsg_t *envelope, const rl_header_t *h,
                 const rl_result_rec_t *results, size_t count)
{
    assert (h->operation == RL_OP_CREATE_ACCOUNTS || h->operation == RL_OP_CREATE_TRANSFERS);
    assert (count == h->record_count && count <= RL_BATCH_RECORDS_MAX);
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                      RL_RESULT_SIZE, &out);
    shard_metrics_results (self->metrics, h->operation, results, count);
    for (size_t i = 0; reply && i < count; i++) {
        assert (results[i].result != COORDINATOR_PENDING); //  decided before any reply
        codec_encode_result (&results[i], out + i * RL_RESULT_SIZE);
    }
    return reply;
}

//  Returns the reply, or NULL when the request waits for cross-shard
//  decisions (the coordinator holds it; its reply comes out of the queue).
static zmsg_t *
s_do_create (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    size_t count = h->record_count;
    assert (count <= RL_BATCH_RECORDS_MAX); //  codec_check_request bounds it
    if (h->operation == RL_OP_CREATE_ACCOUNTS) {
        for (size_t i = 0; i < count; i++) {
            codec_decode_account (body + i * RL_ACCOUNT_SIZE, &self->accounts[i]);
        }
        ledger_create_accounts (self->ledger, self->accounts, count, now_read (), self->results);
        s_count_wrong_shard (self, self->results, count);
        return s_reply_results (self, envelope, h, self->results, count);
    }
    for (size_t i = 0; i < count; i++) {
        codec_decode_transfer (body + i * RL_TRANSFER_SIZE, &self->transfers[i]);
    }
    migrate_count_transfers (self, self->transfers, count);
    ledger_reply_t when = ledger_create_transfers (self->ledger, self->transfers, count,
                                                   now_read (), envelope, h, self->results);
    s_drain_outq (self);
    if (when == LEDGER_BUSY) {
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    s_count_wrong_shard (self, self->results, count);
    if (when == LEDGER_REPLY_LATER) {
        return NULL;
    }
    return s_reply_results (self, envelope, h, self->results, count);
}

//  The shard name of the sender of a two-phase request, for the sender
//  rules (docs/security.md): NULL without keys (--insecure: nothing to
//  tell), "" for a key no ring or certificate names (every record is then
//  refused). candidate: the name the first record claims, tried once
//  against the key sets' certificate (a coordinator removed from the ring
//  before this shard started).
static const char *
s_sender (server_t *self, zframe_t *payload, const char *candidate)
{
    if (rl_auth_insecure (self->auth)) {
        return NULL;
    }
    if (!self->senders && (self->senders = senders_new (self->auth))) {
        senders_learn_ring (self->senders, self->ring); //  the first: the ring served since start
    }
    const char *key = "";
    (void) rl_auth_roles (self->auth, payload, &key);
    const char *name = self->senders ? senders_name (self->senders, key, candidate) : NULL;
    return name ? name : "";
}

//  Two-phase messages from peers (on the ROUTER socket). The reply is held
//  here, stamped with the group commit of the writes it reports on, and
//  tagged with the failpoint that sits between that sync and its send.
//  Records that break their sender rule come back refused, unauthorized,
//  and are counted with the unauthorized requests.
static bool
s_do_twophase (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
               zframe_t *payload)
{
    bool deferrable = false; //  a DECIDE whose apply's sync may wait (DEFERRED APPLIES)
    size_t count = h->record_count;
    assert (count <= RL_BATCH_RECORDS_MAX); //  codec_check_request bounds it
    now_t now = now_read ();
    uint64_t needs_seq = 0;
    rl_fp_t fp = RL_FP_COUNT;
    char sender[RL_SHARD_NAME_SIZE_MAX] = "";
    const char *name = NULL;
    if (h->operation == RL_OP_PREPARE) {
        for (size_t i = 0; i < count; i++) {
            codec_decode_prepare (body + i * RL_PREPARE_SIZE, &self->prepares[i]);
        }
        name = s_sender (self, payload, count ? self->prepares[0].tp.coordinator : NULL);
        if (name) {
            snprintf (sender, sizeof sender, "%s", name);
        }
        needs_seq = participant_prepare (ledger_participant (self->ledger), self->prepares, count,
                                         name ? sender : NULL, now, self->tps_out);
        fp = RL_FP_TP_PART_PREPARE_SYNCED;
    } else {
        for (size_t i = 0; i < count; i++) {
            codec_decode_tp (body + i * RL_TP_SIZE, &self->tps[i]);
        }
        bool decide = h->operation == RL_OP_DECIDE;
        name = s_sender (self, payload, decide && count ? self->tps[0].coordinator : NULL);
        if (name) {
            snprintf (sender, sizeof sender, "%s", name);
        }
        if (decide) {
            //  A debit leg's commit is answered to its chain's client at
            //  this ACK (docs/two-phase.md, "Debit legs"): its sync goes at once.
            deferrable = true;
            for (size_t i = 0; i < count && deferrable; i++) {
                deferrable = !participant_debit_live (ledger_participant (self->ledger),
                                                      self->tps[i].id);
            }
            needs_seq = participant_decide (ledger_participant (self->ledger), self->tps, count,
                                            name ? sender : NULL, now, self->tps_out);
            fp = RL_FP_TP_PART_APPLY_SYNCED;
        } else {
            assert (h->operation == RL_OP_OUTCOME_QUERY);
            needs_seq = coordinator_outcome_query (ledger_coordinator (self->ledger), self->tps,
                                                   count, name ? sender : NULL, self->tps_out);
        }
    }
    s_drain_outq (self);
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count, RL_TP_SIZE,
                                      &out);
    for (size_t i = 0; i < count; i++) {
        self->unauthorized += self->tps_out[i].state == RL_TP_REFUSED
                              && self->tps_out[i].result == RL_UNAUTHORIZED;
    }
    for (size_t i = 0; reply && i < count; i++) {
        codec_encode_tp (&self->tps_out[i], out + i * RL_TP_SIZE);
    }
    assert (needs_seq <= outq_batch_seq (self->outq)); //  paired with the modules' returns
    s_hold (self, reply, needs_seq, fp, false);
    return deferrable;
}

//  Does this shard own the account? (Reads of others' accounts get wrong_shard.)
static bool
s_owns (server_t *self, rl_id_t id)
{
    assert (self->ledger);
    return ledger_owns (self->ledger, id);
}

static zmsg_t *
s_do_lookup (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    assert (h->operation == RL_OP_LOOKUP_ACCOUNTS || h->operation == RL_OP_LOOKUP_TRANSFERS);
    size_t count = h->record_count;
    assert (count <= RL_BATCH_RECORDS_MAX); //  codec_check_request bounds it
    for (size_t i = 0; i < count; i++) {
        self->ids[i] = codec_decode_id (body + i * RL_ID_SIZE);
    }
    uint8_t *out = NULL;
    if (h->operation == RL_OP_LOOKUP_ACCOUNTS) {
        //  An id that is invalid is owned by nobody and simply not found.
        for (size_t i = 0; i < count; i++) {
            if (!rl_id_is_zero (self->ids[i]) && !rl_id_is_max (self->ids[i])
                && !s_owns (self, self->ids[i])) {
                self->wrong_shard++;
                return server_reply_new (self, envelope, h, RL_STATUS_WRONG_SHARD, 0, 0, NULL);
            }
            if (ledger_frozen (self->ledger, self->ids[i])) {
                //  Its data has not arrived: "not found" would be a lie.
                return server_reply_new (self, envelope, h, RL_STATUS_FROZEN, 0, 0, NULL);
            }
        }
        ledger_lookup_accounts (self->ledger, self->ids, count, self->accounts);
        zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                          RL_ACCOUNT_SIZE, &out);
        if (!reply) {
            return NULL; //  out of memory: counted by s_hold
        }
        for (size_t i = 0; i < count; i++) {
            codec_encode_account (&self->accounts[i], out + i * RL_ACCOUNT_SIZE);
        }
        return reply;
    }
    if (ledger_lookup_transfers (self->ledger, self->ids, count, self->transfers) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                      RL_TRANSFER_SIZE, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    for (size_t i = 0; i < count; i++) {
        codec_encode_transfer (&self->transfers[i], out + i * RL_TRANSFER_SIZE);
    }
    return reply;
}

static zmsg_t *
s_do_history (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    assert (h->operation == RL_OP_GET_ACCOUNT_TRANSFERS && body);
    rl_filter_t filter;
    codec_decode_filter (body, &filter);
    if (!rl_id_is_zero (filter.account_id) && !rl_id_is_max (filter.account_id)
        && !s_owns (self, filter.account_id)) {
        self->wrong_shard++;
        return server_reply_new (self, envelope, h, RL_STATUS_WRONG_SHARD, 0, 0, NULL);
    }
    if (ledger_frozen (self->ledger, filter.account_id)) {
        return server_reply_new (self, envelope, h, RL_STATUS_FROZEN, 0, 0, NULL);
    }
    size_t count = 0;
    rl_status_t status = ledger_account_transfers (self->ledger, &filter, self->transfers, &count);
    if (status != RL_STATUS_OK) {
        return server_reply_new (self, envelope, h, status, 0, 0, NULL);
    }
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                      RL_TRANSFER_SIZE, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    for (size_t i = 0; i < count; i++) {
        codec_encode_transfer (&self->transfers[i], out + i * RL_TRANSFER_SIZE);
    }
    return reply;
}

//  A stalled semi-synchronous primary (replica_stalled) answers clients'
//  writes and reads busy (docs/replication.md, "Stalled").
static bool
s_replica_refuses (server_t *self, uint32_t operation)
{
    //  Nor before the start-up ring check ended (ringcheck.h).
    bool checking = self->ringcheck && ringcheck_pending (self->ringcheck);
    if (!checking && (!self->replica || !replica_stalled (self->replica))) {
        return false;
    }
    switch (operation) {
        case RL_OP_CREATE_ACCOUNTS:
        case RL_OP_CREATE_TRANSFERS:
        case RL_OP_LOOKUP_ACCOUNTS:
        case RL_OP_LOOKUP_TRANSFERS:
        case RL_OP_GET_ACCOUNT_TRANSFERS:
        case RL_OP_EVENTS_READ:
            return true;
        default:
            return false; //  peers' records and admin: their answers wait for the lease
    }
}

//  Decodes and applies one request; holds its reply. Takes msg.
static void
s_handle (server_t *self, zmsg_t *msg)
{
    assert (msg && !self->failed);
    if (replica_answer_as_primary (&msg, self->router, self->auth, self->promoted, self->replica)) {
        return; //  the old primary learns it is fenced (docs/replication.md)
    }
    self->requests++;
    zframe_t *payload = zmsg_last (msg);
    if (!payload || zmsg_size (msg) < 2) {
        //  A ROUTER always prepends the peer identity; a payload is needed too.
        self->dropped++;
        zmsg_destroy (&msg);
        return;
    }
    zmsg_remove (msg, payload); //  msg keeps the envelope
    const uint8_t *data = zframe_data (payload);
    size_t size = zframe_size (payload);
    rl_header_t h = {0};
    const uint8_t *body = NULL;
    size_t body_size = 0;
    rl_status_t status = codec_parse_request (data, size, &h, &body, &body_size);
    if (!codec_frame_has_header (size)) {
        self->dropped++; //  no request id to answer to
        rl_debug ("dropped a %zu-byte frame", size);
        zframe_destroy (&payload);
        zmsg_destroy (&msg);
        return;
    }
    rl_log_request_begin (h.request_id); //  the lines of this request carry its id
    zmsg_t *reply = NULL;
    bool deferrable = false; //  a DECIDE applied whose sync may wait (DEFERRED APPLIES)
    bool local = false;      //  the reply reports no ledger state: it waits for the sync only
    const char *sender = "";
    bool decoded = status == RL_STATUS_OK || status == RL_STATUS_MALFORMED
                   || status == RL_STATUS_TOO_MANY_RECORDS; //  the header names an operation
    if (decoded && !(rl_auth_roles (self->auth, payload, &sender) & rl_op_roles (h.operation))) {
        //  The sender's key (its User-Id) holds none of the operation's roles
        //  in the key sets as they are now: refused before its body is read,
        //  counted, nothing changed.
        self->unauthorized++;
        rl_debug ("request %" PRIu64 " (%s) from key %s: unauthorized", h.request_id,
                  rl_op_name (h.operation), sender);
        reply = server_reply_new (self, msg, &h, RL_STATUS_UNAUTHORIZED, 0, 0, NULL);
    } else if (status != RL_STATUS_OK) {
        self->malformed++;
        rl_debug ("bad request %" PRIu64 ": %s", h.request_id, rl_status_name (status));
        reply = server_reply_new (self, msg, &h, status, 0, 0, NULL);
    } else if (s_replica_refuses (self, h.operation)) {
        //  Stalled (docs/replication.md): the standby is silent, so this
        //  shard may have been replaced by a promoted standby. No new
        //  write, and no read that could show state that is no more.
        self->repl_busy++;
        reply = server_reply_new (self, msg, &h, RL_STATUS_BUSY, 0, 0, NULL);
        local = true;
    } else if (backup_holding (self) && !backup_serves_held (h.operation)) {
        //  A backup hold (backup.h): the whole request waits for its end.
        zmsg_append (msg, &payload);
        reply = backup_defer (self, msg, &h);
        self->requests--; //  counted when it is served
    } else {
        switch (h.operation) {
            case RL_OP_CREATE_ACCOUNTS:
            case RL_OP_CREATE_TRANSFERS:
                reply = s_do_create (self, msg, &h, body);
                //  Waiting for cross-shard decisions: nobody waits for this
                //  turn's sync (DEFERRED BEGINS).
                deferrable = h.operation == RL_OP_CREATE_TRANSFERS && !reply;
                break;
            case RL_OP_PREPARE:
            case RL_OP_DECIDE:
            case RL_OP_OUTCOME_QUERY:
                deferrable = s_do_twophase (self, msg, &h, body, payload); //  holds its reply
                break;
            case RL_OP_LOOKUP_ACCOUNTS:
            case RL_OP_LOOKUP_TRANSFERS:
                reply = s_do_lookup (self, msg, &h, body);
                break;
            case RL_OP_GET_ACCOUNT_TRANSFERS:
                reply = s_do_history (self, msg, &h, body);
                break;
            case RL_OP_STATUS:
                reply = admin_status (self, msg, &h);
                break;
            case RL_OP_LOAD_RING:
                reply = admin_load_ring (self, msg, &h, body, body_size);
                break;
            case RL_OP_GET_RING:
                reply = admin_get_ring (self, msg, &h);
                break;
            case RL_OP_IN_DOUBT:
                reply = admin_in_doubt (self, msg, &h);
                break;
            case RL_OP_AUDIT:
                reply = admin_audit (self, msg, &h);
                break;
            case RL_OP_RESOLVE:
                reply = admin_resolve (self, msg, &h, body);
                break;
            case RL_OP_MIGRATE_BEGIN:
            case RL_OP_MIGRATE_EXPORT:
            case RL_OP_MIGRATE_IMPORT:
            case RL_OP_MIGRATE_FREEZE:
            case RL_OP_MIGRATE_DRAIN:
            case RL_OP_MIGRATE_UNFREEZE:
            case RL_OP_MIGRATE_COMMIT:
            case RL_OP_MIGRATE_ABORT:
            case RL_OP_MIGRATE_CLEANUP:
            case RL_OP_ARC_LOAD:
            case RL_OP_HOT_ACCOUNTS:
                reply = migrate_handle (self, msg, &h, body, body_size);
                break;
            case RL_OP_BACKUP_HOLD:
            case RL_OP_BACKUP_CUT:
            case RL_OP_BACKUP_RELEASE:
            case RL_OP_BACKUP_STATUS:
                reply = backup_handle (self, msg, &h, body);
                break;
            case RL_OP_EVENTS_READ:
                reply = events_handle (self, msg, &h, body);
                break;
            case RL_OP_MIGRATE_LEASE:
                reply = mlease_op (self, msg, &h, body);
                break;
            case RL_OP_PROMOTE:
            case RL_OP_DEGRADE:
            case RL_OP_FENCE:
                reply = s_do_replication (self, msg, &h);
                break;
            case RL_OP_REPL_STATUS:
                reply = admin_repl_status (self, msg, &h);
                break;
            default:
                assert (false && "codec_check_request passed an unserved operation");
        }
    }
    zframe_destroy (&payload);
    if (reply) {
        //  A client reply reports memory as of this turn's batch.
        local |= h.operation == RL_OP_STATUS || h.operation == RL_OP_PROMOTE
                 || h.operation == RL_OP_DEGRADE || h.operation == RL_OP_FENCE
                 || h.operation == RL_OP_REPL_STATUS;
        s_hold (self, reply, outq_batch_seq (self->outq), self->reply_fp, local);
    }
    self->reply_fp = RL_FP_COUNT;
    self->turn_urgent |= !deferrable;
    rl_log_request_end ();
}

//  What FAILED answers: storage_error, or fenced after a promotion.
static rl_status_t
s_failed_status (const server_t *self)
{
    return self->fenced ? RL_STATUS_FENCED : RL_STATUS_STORAGE_ERROR;
}

//  Replaces a held reply's payload by a storage_error header; NULL when
//  memory ran out (the reply is then gone).
static zmsg_t *
s_fail_reply (server_t *self, zmsg_t *reply)
{
    assert (self->failed);
    if (!reply) {
        return NULL; //  already lost to out of memory
    }
    zframe_t *payload = zmsg_last (reply);
    zmsg_remove (reply, payload);
    rl_header_t h;
    codec_decode_header (zframe_data (payload), &h);
    zframe_destroy (&payload);
    return server_reply_new (self, reply, &h, s_failed_status (self), 0, 0, NULL);
}

//  The failpoints between the sync and the send of the messages it
//  justifies, fired once a release each, in the protocol's order.
static void
s_fire_synced (server_t *self, uint64_t synced)
{
    assert (!self->failed);
    static const rl_fp_t order[] = {RL_FP_TP_PART_PREPARE_SYNCED, RL_FP_TP_COORD_DECISION_SYNCED,
                                    RL_FP_TP_PART_APPLY_SYNCED, RL_FP_MIGRATE_IMPORT_SYNCED,
                                    RL_FP_MIGRATE_COMMIT_TARGET_SYNCED};
    bool due[RL_FP_COUNT + 1] = {false};
    for (size_t i = 0; i < self->held_count; i++) {
        due[self->held[i].fp] |= self->held[i].needs_seq <= synced;
    }
    //  A DECIDE is justified by its logged decision.
    due[RL_FP_TP_COORD_DECISION_SYNCED] |= peers_ready (self->peers, OUTQ_DECIDE, synced);
    for (size_t k = 0; k < sizeof (order) / sizeof (order[0]); k++) {
        if (due[order[k]]) {
            failpoint_hit (order[k]);
        }
    }
}

//  Sends every held reply and peer record that the synced group commits
//  justify (all held replies when the shard failed: they became
//  storage_error answers); the others stay held, in order. all: send every
//  held reply regardless (test only: the "sent <= synced" assertion stops
//  it).
static void
s_send (server_t *self, size_t sent[OUTQ_REPLY], bool all)
{
    assert (outq_count (self->outq) == 0); //  everything queued is in held or the outboxes
    uint64_t synced = outq_synced_seq (self->outq);
    uint64_t release = outq_release_seq (self->outq); //  synced and replicated
    //  Without the standby's lease this shard may have been replaced by a
    //  promoted standby: nothing that reports ledger state leaves (replica.h).
    bool lease = !self->replica || replica_lease_ok (self->replica);
    replyq_flush (self->replies); //  what earlier turns parked goes first
    size_t kept = 0;
    for (size_t i = 0; i < self->held_count; i++) {
        s_held_t *held = &self->held[i];
        uint64_t may = held->local ? synced : release;
        if (!self->failed && !all && (held->needs_seq > may || (!lease && !held->local))) {
            self->held[kept++] = *held; //  waits for a later sync (or acknowledgement)
            continue;
        }
        assert (self->failed || held->needs_seq <= may); //  sent <= min (synced, replicated)
        if (!held->msg) {
            continue; //  lost to out of memory: the client retries
        }
        if (!self->failed) { //  failed: the answers changed size; all go (0 below)
            size_t bytes = zmsg_content_size (held->msg);
            assert (bytes <= self->held_bytes);
            self->held_bytes -= bytes;
        }
        //  Sent, or parked behind the connection's full queue; dropped and
        //  counted by replyq when its bound is reached or it is gone: the
        //  client retries.
        replyq_send (self->replies, &held->msg);
    }
    self->held_count = kept;
    if (kept == 0) {
        self->held_bytes = 0;
    }
    if (!self->failed && lease) {
        self->dropped += peers_flush (self->peers, release, sent);
    }
}

//  Fires the failpoints that sit after synced sends, per kind sent.
static void
s_after_sent (const size_t sent[OUTQ_REPLY])
{
    if (sent[OUTQ_PREPARE]) {
        RL_FAILPOINT (TP_COORD_PREPARE_SENT);
    }
    if (sent[OUTQ_DECIDE]) {
        RL_FAILPOINT (TP_COORD_DECISION_SENT);
    }
    if (sent[OUTQ_QUERY]) {
        RL_FAILPOINT (TP_PART_QUERY_SENT);
    }
}

//  Enters FAILED (STATES above): answers storage_error to every held reply
//  and to every request still waiting for cross-shard decisions, and drops
//  what is queued for peers.
static void
s_enter_failed (server_t *self, const char *what)
{
    assert (!self->failed);
    if (self->fenced) {
        rl_log_event (RL_LOG_ERROR, "fence",
                      "FENCED (%s): a standby of this shard was promoted; answering fenced to "
                      "everything but status. Wipe this data directory and start it as a "
                      "standby of the new primary (docs/replication.md, runbook)",
                      what);
    } else {
        rl_error ("%s failed (%s): answering storage_error to everything but status until "
                  "restarted",
                  what, store_error (self->store));
    }
    self->failed = true;
    for (size_t i = 0; i < self->held_count; i++) {
        self->held[i].msg = s_fail_reply (self, self->held[i].msg);
    }
    peers_discard (self->peers); //  nothing unjustified leaves
    rl_header_t h;
    zmsg_t *envelope = NULL;
    while ((envelope = coordinator_request_drop (ledger_coordinator (self->ledger), &h))) {
        zmsg_t *reply = server_reply_new (self, envelope, &h, s_failed_status (self), 0, 0, NULL);
        if (!reply) {
            self->dropped++; //  the client times out: outcome unknown either way
        } else {
            replyq_send (self->replies, &reply);
        }
    }
    assert (self->failed);
}

//  FAILED: answers one request, status normally and everything else
//  storage_error, at once (nothing is written any more). Takes msg.
static void
s_handle_failed (server_t *self, zmsg_t *msg)
{
    assert (msg && self->failed);
    if (replica_answer_as_primary (&msg, self->router, self->auth, false, NULL)) {
        return; //  a primary's replication message: not_standby
    }
    self->requests++;
    zframe_t *payload = zmsg_last (msg);
    if (!payload || zmsg_size (msg) < 2 || !codec_frame_has_header (zframe_size (payload))) {
        self->dropped++;
        zmsg_destroy (&msg);
        return;
    }
    zmsg_remove (msg, payload); //  msg keeps the envelope
    rl_header_t h = {0};
    rl_status_t status = codec_check_request (zframe_data (payload), zframe_size (payload), &h);
    zframe_destroy (&payload);
    zmsg_t *reply = NULL;
    if (status == RL_STATUS_OK && h.operation == RL_OP_STATUS) {
        reply = admin_status (self, msg, &h);
    } else {
        self->malformed += status != RL_STATUS_OK;
        reply = server_reply_new (
            self, msg, &h, status == RL_STATUS_OK ? s_failed_status (self) : status, 0, 0, NULL);
    }
    if (!reply) {
        self->dropped++;
    } else {
        replyq_send (self->replies, &reply);
    }
}

//  The next request read ahead this turn (NULL: none left).
static zmsg_t *
s_inbox_pop (server_t *self)
{
    if (self->inbox_head == self->inbox_count) {
        self->inbox_head = self->inbox_count = 0;
        return NULL;
    }
    return self->inbox[self->inbox_head++];
}

//  Holds the reply of the export that waited for the drain (migrate.c),
//  when it is due, as a reply of this turn.
static void
s_parked (server_t *self)
{
    zmsg_t *reply = migrate_parked (self);
    self->parked_held = reply != NULL;
    if (reply) {
        s_hold (self, reply, outq_batch_seq (self->outq), RL_FP_COUNT, false);
    }
}

//  The batch just written (not synced yet) may have ended the drain: a
//  decision, a COMMIT applied, an acknowledgement. The export that waits
//  for it is served now, while the batch being built is empty (it reads
//  the records just written), and what it writes (SHIPPED, when the final
//  round fits in its chunk) is written at once as a batch of its own, so
//  that the sync about to start covers both: one sync after the drain
//  instead of the draining turn's and then, in the turn after it, the
//  export's. Only with a syncer (nosync serves it in the next turn).
static void s_replica_written (server_t *self);

static void
s_parked_written (server_t *self)
{
    assert (self->syncer && store_batch_count (self->store) == 0);
    zmsg_t *reply = migrate_parked (self);
    if (!reply) {
        return; //  still waiting
    }
    s_hold (self, reply, outq_batch_seq (self->outq), RL_FP_COUNT, false);
    size_t write_count = store_batch_count (self->store);
    if (write_count > 0) {
        ledger_before_commit (self->ledger);
        if (store_write_group (self->store) != 0) {
            s_enter_failed (self, "group commit");
            return;
        }
        self->written_head = ledger_last_timestamp (self->ledger);
        self->writes_unsynced += write_count;
    }
    outq_batch_written (self->outq, write_count > 0, true);
    s_replica_written (self);
}

//  A turn in FAILED: answer the clients, drop what peers sent.
static int
s_turn_failed (server_t *self)
{
    assert (self->failed && self->held_count == 0);
    zmsg_t *ahead = NULL;
    while ((ahead = s_inbox_pop (self))) { //  read ahead before the failure
        s_handle_failed (self, ahead);
    }
    for (size_t round = 0; round < RL_SHARD_REQUESTS_PER_TURN_MAX; round++) {
        zmsg_t *msg = zmsg_recv (self->router); //  rcvtimeo 0: NULL when drained
        if (!msg) {
            break;
        }
        s_handle_failed (self, msg);
    }
    for (size_t i = 0; i < peers_count (self->peers); i++) {
        for (size_t n = 0; n < RL_SHARD_REQUESTS_PER_TURN_MAX; n++) {
            zframe_t *frame = zframe_recv (peers_socket (self->peers, i));
            if (!frame) {
                break;
            }
            self->dropped++;
            zframe_destroy (&frame);
        }
    }
    assert (self->held_count == 0);
    return 0;
}

//  Starts a sync of everything written when one is wanted (an urgent
//  batch waits for it: DEFERRED APPLIES) and none is in flight (invariant
//  5).
static void
s_sync_kick (server_t *self)
{
    if (self->failed || !self->syncer || syncer_busy (self->syncer)
        || !outq_sync_wanted (self->outq)) {
        return;
    }
    //  It covers the batches written; one being built in a turn is not
    //  written yet (nor its head: written_head, not the ledger's).
    self->sync_head = self->written_head;
    self->writes_syncing = self->writes_unsynced;
    self->writes_unsynced = 0;
    syncer_start (self->syncer, outq_written_seq (self->outq));
}

//  The durable head moved (or may have): announces it to the change stream.
static void
s_events_synced (server_t *self)
{
    //  Nothing written waits for a sync: memory's head is durable. Else
    //  the head of the last sync that ended, never that of the sync in
    //  flight (sync_head): a crash may still drop what it covers.
    if (outq_synced_seq (self->outq) == outq_written_seq (self->outq)) {
        uint64_t head = self->written_head; //  not a batch still being built
        self->durable_head = head > self->durable_head ? head : self->durable_head;
    }
    uint64_t head = self->durable_head;
    if (self->replica) {
        uint64_t replicated = replica_released_head (self->replica);
        head = replicated < head ? replicated : head; //  nor beyond what the standby holds
        replica_acked_head (self->replica, head);
    }
    events_synced (self, head);
}

//  A sync that ended (if one did): what it justifies goes, and the next
//  sync starts if more was written meanwhile. Between turns (the syncer's
//  pipe is readable) or between two requests of a turn.
static void
s_sync_ended (server_t *self)
{
    assert (self && self->syncer);
    uint64_t seq = 0;
    int rc = 0;
    int64_t sync_us = 0;
    if (!syncer_take (self->syncer, &seq, &rc, &sync_us)) {
        return;
    }
    if (self->failed) {
        return; //  already answering storage_error; nothing may leave
    }
    size_t sent[OUTQ_REPLY] = {0};
    if (rc != 0) {
        s_enter_failed (self, "group commit sync");
        s_send (self, sent, false);
        return;
    }
    shard_metrics_commit (self->metrics, self->writes_syncing, sync_us);
    self->writes_syncing = 0;
    self->commits++;
    outq_synced_to (self->outq, seq);
    //  sync_head is still the head of the sync that ended: the next one
    //  starts below (s_sync_kick).
    self->durable_head = self->sync_head > self->durable_head ? self->sync_head
                                                              : self->durable_head;
    RL_FAILPOINT (SHARD_AFTER_SYNC);
    s_fire_synced (self, outq_release_seq (self->outq));
    s_events_synced (self);
    s_send (self, sent, false);
    RL_FAILPOINT (SHARD_AFTER_REPLY);
    s_after_sent (sent);
    s_sync_kick (self);
}

static int
s_on_synced (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    s_sync_ended (arg);
    return 0;
}

//  A turn that wrote RL_SHARD_INLINE_SYNC_WRITES or more waits here for the
//  sync that covers its batch (after the one in flight, if any), as the
//  loop did before the pipeline. At full batches a turn lasts about as long
//  as a sync, so the pipeline gains little there, and a loop that never
//  waits runs more, smaller turns: more messages, WriteBatches and syncs
//  per cross-shard transfer. Waiting lets peers' records pile up into the
//  next turn. Small turns (batch 1, many clients) keep the pipeline.
static void
s_sync_inline (server_t *self)
{
    assert (self->syncer);
    while (!self->failed && outq_synced_seq (self->outq) < outq_written_seq (self->outq)) {
        s_sync_kick (self);
        if (!syncer_busy (self->syncer)) {
            break; //  nothing written needs a sync
        }
        struct pollfd ready = {.fd = syncer_fd (self->syncer), .events = POLLIN};
        while (poll (&ready, 1, -1) < 0 && errno == EINTR) {
        }
        s_on_synced (NULL, NULL, self);
    }
}

//  The turn's batch, about to be written: the standbys get it now
//  (store_write_group_ship), so that their writes run beside this one.
static int
s_ship (void *arg)
{
    server_t *self = arg;
    replica_ship (self->replica);
    //  crash: shipped, never written here; error: the write fails after it.
    return RL_FAILPOINT (REPL_PRIMARY_BEFORE_WRITE);
}

//  The turn's batch is written: the standbys get it (replica.h).
static void
s_replica_written (server_t *self)
{
    if (self->replica) {
        replica_written (self->replica, outq_written_seq (self->outq),
                         ledger_last_timestamp (self->ledger));
        outq_replicated_to (self->outq, replica_released (self->replica));
    }
}

//  A promotion fenced this primary (its standby answered fenced, or a
//  ring of a higher epoch gives its name to another endpoint: admin.c,
//  s_on_peer_ring): the marker is written (synced, a batch of its own: a
//  restart stays fenced), then FAILED answering fenced (85); what was held
//  goes at once as fenced answers.
void
server_enter_failed (server_t *self, const char *what)
{
    assert (self && what);
    if (!self->failed) {
        s_enter_failed (self, what);
    }
}

void
server_enter_fenced (server_t *self, const char *why)
{
    assert (!self->failed);
    if (self->replica) {
        replica_fence (self->replica); //  the marker below is tapped: never shipped
    }
    store_batch_t *batch = store_batch_new ();
    uint8_t one = 1;
    if (batch) {
        store_batch_put_into (self->store, batch, STORE_CF_META, REPLICA_META_FENCED,
                              strlen (REPLICA_META_FENCED), &one, sizeof one);
    }
    if (!batch || store_batch_commit (self->store, batch) != 0) {
        rl_error ("fence: cannot write the fence marker (%s): a restart asks the standby again",
                  store_error (self->store));
    }
    store_batch_destroy (&batch);
    self->fenced = true;
    s_enter_failed (self, why);
    size_t sent[OUTQ_REPLY] = {0};
    s_send (self, sent, false); //  failed: every held reply goes, as fenced
}

//  Would `ring` fence this shard? Only a replicated shard's (one of its
//  standbys may have been promoted; any other shard holds the only copy of
//  its data, and a ring that moves it is no promotion), when the ring's
//  epoch is higher than the ring served, and it gives this shard's name to
//  an endpoint that is neither --bind nor the one the ring served gives
//  it: the name moved elsewhere. Endpoints are compared as strings,
//  exactly; a ring that does not name this shard, or named it nowhere
//  before, fences nothing (docs/replication.md, "The ring's epoch as the
//  fence").
bool
server_ring_fences (const server_t *self, const ring_t *ring)
{
    if (!self->replicated) {
        return false;
    }
    const char *name = self->options->name;
    int at = ring_shard_find (ring, name);
    int was = ring_shard_find (self->ring, name);
    if (ring_epoch (ring) <= ring_epoch (self->ring) || at < 0 || was < 0) {
        return false;
    }
    const char *there = ring_shard_endpoint (ring, (size_t) at);
    return strcmp (there, self->options->bind) != 0
           && strcmp (there, ring_shard_endpoint (self->ring, (size_t) was)) != 0;
}

//  A peer's ring (ringcheck.h): fenced when it gives this shard's name to
//  another endpoint at a higher epoch.
static void
s_on_peer_ring (void *arg, const char *peer, ring_t *ring)
{
    server_t *self = arg;
    if (!self->failed && server_ring_fences (self, ring)) {
        int at = ring_shard_find (ring, self->options->name);
        char why[512];
        snprintf (why, sizeof why,
                  "peer %s serves ring epoch %" PRIu64 " (this shard: %" PRIu64
                  "), which gives %s to %s, not to --bind %s",
                  peer, ring_epoch (ring), ring_epoch (self->ring), self->options->name,
                  ring_shard_endpoint (ring, (size_t) at), self->options->bind);
        server_enter_fenced (self, why);
    }
    ring_destroy (&ring);
}

//  The standbys acknowledged more (replica.h): what that releases goes.
static void
s_on_replicated (void *arg)
{
    server_t *self = arg;
    assert (self && self->replica);
    if (self->failed) {
        return; //  nothing may leave
    }
    if (replica_fenced (self->replica)) {
        server_enter_fenced (self, "a standby answered fenced: promoted, or withdrawn from "
                                   "this primary's stream by a promotion");
        return;
    }
    outq_replicated_to (self->outq, replica_released (self->replica));
    size_t sent[OUTQ_REPLY] = {0};
    s_fire_synced (self, outq_release_seq (self->outq));
    s_events_synced (self);
    s_send (self, sent, false);
    s_after_sent (sent);
}

//  Admin: promote (a primary already is one: ok) and degrade (semi ->
//  async, by hand; docs/replication.md).
static zmsg_t *
s_do_replication (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    if (h->operation == RL_OP_FENCE) {
        //  fence withdraws a standby (rlctl promote with several); a
        //  primary is none: nothing changes.
        rl_warn ("fence: this shard is a primary, not a standby: refused");
        return server_reply_new (self, envelope, h, RL_STATUS_UNAVAILABLE, 0, 0, NULL);
    }
    if (h->operation == RL_OP_PROMOTE) {
        rl_info ("promote: this shard already is the primary");
    } else if (!self->replica) {
        rl_info ("degrade: no standby is configured; nothing to do");
    } else {
        replica_degrade (self->replica); //  its wake sends what waited
    }
    return server_reply_new (self, envelope, h, RL_STATUS_OK, 0, 0, NULL);
}

//  Ends a turn: write the batch once, start its sync (or leave it to the
//  next one), then send what synced commits justify. lazy: the turn's
//  writes need no sync (it only read acknowledgements of DECIDEs).
//  urgent: false when it only applied DECIDEs (and read ACKs) or decided
//  records of requests still open: its sync waits for the next urgent turn
//  or the tick (DEFERRED APPLIES, DEFERRED DECISIONS); a chain's decision
//  makes it urgent here.
static int
s_turn_finish (server_t *self, bool lazy, bool urgent)
{
    assert (outq_count (self->outq) == 0); //  drained after every call
    urgent |= coordinator_urgent_take (ledger_coordinator (self->ledger));
    if (!self->failed && store_failed (self->store)) {
        //  A read of this turn ended on an error (store_iter_valid): its
        //  answer, held with the rest, may hold part of what was asked.
        s_enter_failed (self, "a read");
    }
    ledger_before_commit (self->ledger);
    //  Commit-path failpoints count only turns that write something.
    size_t write_count = store_batch_count (self->store);
    bool writes = write_count > 0;
    size_t sent[OUTQ_REPLY] = {0};
    if (writes && RL_FAILPOINT (SHARD_SEND_BEFORE_SYNC) != 0) {
        s_send (self, sent, true); //  test only: the "sent <= synced" assertion stops this
    }
    int rc = 0;
    if (writes && !self->failed) {
        int64_t write_us = zclock_usecs ();
        if (RL_FAILPOINT (SHARD_BEFORE_COMMIT) != 0) {
            rc = -1;
        } else if (self->replica) {
            rc = store_write_group_ship (self->store, s_ship, self);
        } else {
            rc = store_write_group (self->store);
        }
        if (rc == 0) {
            self->written_head = ledger_last_timestamp (self->ledger);
        }
        if (rc == 0 && !self->syncer) { //  nosync: written is as durable as it gets
            shard_metrics_commit (self->metrics, write_count, zclock_usecs () - write_us);
        }
    }
    bool synced_now = false;
    if (rc != 0) {
        s_enter_failed (self, "group commit");
    } else if (!self->failed) {
        if (!self->syncer) {
            outq_batch_synced (self->outq);
            synced_now = writes;
            self->commits += writes;
            s_replica_written (self);
        } else {
            //  The sync's failpoints fire when it ends (s_on_synced). A
            //  large turn is never deferred (s_sync_inline below).
            urgent |= write_count >= RL_SHARD_INLINE_SYNC_WRITES;
            //  A lazy turn is urgent only when a reply came out of the
            //  queue (a chain answered at its debit legs' ACKs): its sync
            //  covers the deferred batches the reply may need (DEFERRED
            //  BEGINS); with nothing to sync, none starts.
            outq_batch_written (self->outq, writes && !lazy, urgent);
            self->writes_unsynced += writes ? write_count : 0;
            //  Shipped before the write (s_ship), so the standby's write
            //  runs beside this one and the sync; the rest (a standby
            //  not streaming yet, the window) goes now (docs/replication.md).
            s_replica_written (self);
            if (writes && self->parked) {
                s_parked_written (self);
            }
            s_sync_kick (self);
            if (!lazy && write_count >= RL_SHARD_INLINE_SYNC_WRITES) {
                s_sync_inline (self);
            }
        }
        if (synced_now) {
            RL_FAILPOINT (SHARD_AFTER_SYNC);
        }
        //  The parked export's write or the large turn's own sync may have
        //  failed just above: the shard is FAILED, its held replies are
        //  storage_error answers, and s_send takes them as such.
        if (!self->failed) {
            s_fire_synced (self, outq_release_seq (self->outq));
            s_events_synced (self);
        }
    }
    s_send (self, sent, false);
    if (synced_now) {
        RL_FAILPOINT (SHARD_AFTER_REPLY);
    }
    s_after_sent (sent);
    peers_close_retired (self->peers); //  the peers of a replaced ring
    uint64_t checkpoints = ledger_checkpoint_count (self->ledger);
    int64_t checkpoint_us = zclock_usecs ();
    if (!self->failed && ledger_after_commit (self->ledger) != 0) {
        s_enter_failed (self, "checkpoint");
        s_send (self, sent, false);
    }
    if (ledger_checkpoint_count (self->ledger) != checkpoints) {
        shard_metrics_checkpoint (self->metrics, zclock_usecs () - checkpoint_us);
    }
    assert (outq_count (self->outq) == 0);
    assert (!self->failed || self->held_count == 0);
    return 0; //  FAILED keeps the loop running: status still answers
}

//  A peer's reply carried a higher epoch than the ring served: its ring is
//  asked for (ringcheck.h), at most once a second.
static void
s_ask_ring (server_t *self, uint32_t index)
{
    if (!self->ringcheck) {
        self->ringcheck = ringcheck_new (self->loop, self->auth, s_on_peer_ring, self);
    }
    if (self->ringcheck) {
        ringcheck_ask (self->ringcheck, self->ring, index);
    }
}

//  Replies from one peer to our PREPARE, DECIDE and OUTCOME_QUERY messages.
//  The peer is the i-th of peers.h: its replies count only for attempts
//  whose other shard it is (sender rules); the others are counted with the
//  unauthorized requests and change nothing.
static size_t
s_drain_peer (server_t *self, size_t peer, now_t now, size_t budget, bool *lazy_p)
{
    zsock_t *dealer = peers_socket (self->peers, peer);
    const char *from = ring_shard_name (self->ring, peers_index (self->peers, peer));
    assert (dealer && from && budget > 0);
    size_t n = 0;
    for (; n < budget; n++) {
        zframe_t *frame = zframe_recv (dealer); //  rcvtimeo 0: NULL when drained
        if (!frame) {
            break;
        }
        rl_header_t h;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        //  Only replies to what we send peers carry two-phase records;
        //  codec_parse_reply sized the body for the operation the reply
        //  names, so anything else would be read past its end.
        if (codec_parse_reply (zframe_data (frame), zframe_size (frame), &h, &body, &body_size)
                != RL_STATUS_OK
            || h.status != RL_STATUS_OK
            || (h.operation != RL_OP_PREPARE && h.operation != RL_OP_DECIDE
                && h.operation != RL_OP_OUTCOME_QUERY)) {
            self->malformed++;
            zframe_destroy (&frame);
            continue;
        }
        if (self->replicated && h.epoch > ring_epoch (self->ring)) {
            s_ask_ring (self, peers_index (self->peers, peer)); //  a newer ring may fence us
        }
        assert (codec_reply_record_size (h.operation) == RL_TP_SIZE);
        assert (h.record_count <= RL_BATCH_RECORDS_MAX); //  codec_parse_reply bounds it
        assert (body_size == (size_t) h.record_count * RL_TP_SIZE);
        for (size_t i = 0; i < h.record_count; i++) {
            codec_decode_tp (body + i * RL_TP_SIZE, &self->tps[i]);
        }
        coordinator_t *coordinator = ledger_coordinator (self->ledger);
        *lazy_p &= h.operation == RL_OP_DECIDE;
        //  ACKs never urge a sync; PREPARE replies only when they decided a
        //  chain, or a request's last record (its reply, s_drain_outq:
        //  DEFERRED DECISIONS).
        self->turn_urgent |= h.operation == RL_OP_OUTCOME_QUERY;
        if (h.operation == RL_OP_PREPARE) {
            self->unauthorized += coordinator_prepare_replies (coordinator, self->tps,
                                                               h.record_count, from, now);
        } else if (h.operation == RL_OP_DECIDE) {
            //  Only deletes of log entries: they need no sync (lazy stays).
            self->unauthorized += coordinator_decide_replies (coordinator, self->tps,
                                                              h.record_count, from, now);
        } else if (h.operation == RL_OP_OUTCOME_QUERY) {
            self->unauthorized += participant_outcome_answers (
                ledger_participant (self->ledger), self->tps, h.record_count, from, now);
        }
        s_drain_outq (self);
        zframe_destroy (&frame);
    }
    return n;
}

//  Served ahead of the other requests read with it (MIGRATION REQUESTS
//  FIRST): the requests of a migration's freeze and handover, and ring
//  loads. The bulk copy's exports are not: they go in arrival order, so
//  that the copy takes its share of the loop and no more (an export
//  while this shard is a frozen source is the final round: first). Only
//  the header is read here; s_handle checks the whole request and its
//  sender's role as for any other (a client key naming these operations is
//  refused there).
static bool
s_first (server_t *self, zmsg_t *msg)
{
    zframe_t *payload = zmsg_last (msg);
    if (!payload || zmsg_size (msg) < 2 || !codec_frame_has_header (zframe_size (payload))) {
        return false;
    }
    rl_header_t h;
    codec_decode_header (zframe_data (payload), &h);
    switch (h.operation) {
        case RL_OP_MIGRATE_EXPORT:
            return self->migration_loaded && self->migration.role == RL_MIGRATE_SOURCE
                   && (self->migration.state == RL_MIGRATE_FROZEN
                       || self->migration.state == RL_MIGRATE_SHIPPED);
        case RL_OP_MIGRATE_BEGIN:
        case RL_OP_MIGRATE_IMPORT:
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_LOAD_RING:
            return true;
        default:
            return false;
    }
}

//  The most reply bytes a request read ahead can make this shard hold:
//  exact for creates (a result per record), the largest reply of its kind
//  for lookups and reads, the largest reply of all for anything else
//  (malformed ones included).
static size_t
s_reply_bytes_bound (zmsg_t *msg)
{
    zframe_t *payload = zmsg_last (msg);
    if (!payload || !codec_frame_has_header (zframe_size (payload))) {
        return RL_HEADER_SIZE;
    }
    rl_header_t h;
    codec_decode_header (zframe_data (payload), &h);
    size_t count = h.record_count < RL_BATCH_RECORDS_MAX ? h.record_count : RL_BATCH_RECORDS_MAX;
    switch (h.operation) {
        case RL_OP_CREATE_ACCOUNTS:
        case RL_OP_CREATE_TRANSFERS:
            return RL_HEADER_SIZE + count * RL_RESULT_SIZE;
        case RL_OP_LOOKUP_ACCOUNTS:
        case RL_OP_LOOKUP_TRANSFERS:
            return RL_HEADER_SIZE + count * RL_TRANSFER_SIZE;
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            return RL_HEADER_SIZE + (size_t) RL_HISTORY_LIMIT_MAX * RL_TRANSFER_SIZE;
        case RL_OP_EVENTS_READ:
            return RL_HEADER_SIZE + (size_t) RL_EVENTS_LIMIT_MAX * RL_EVENT_SIZE;
        default:
            return RL_REPLY_SIZE_MAX;
    }
}

//  Reads ahead what waits on the ROUTER socket (at most
//  RL_SHARD_READ_AHEAD_MAX, and no more than the replies they can make
//  fit in the turn's reply bytes: those read ahead are all served this
//  turn, so the bound of replyq.h holds as when each was read in turn) and
//  serves the migration requests among it in a turn of their own; the
//  rest stays in the inbox, in arrival order, for the turn that follows.
static void
s_first_turn (server_t *self, size_t building_max)
{
    assert (self->inbox_head == 0 && self->inbox_count == 0);
    size_t ahead_bytes = 0; //  the most reply bytes of those read ahead
    while (self->inbox_count < RL_SHARD_READ_AHEAD_MAX
           && self->held_bytes + ahead_bytes < building_max) {
        zmsg_t *msg = zmsg_recv (self->router); //  rcvtimeo 0: NULL when drained
        if (!msg) {
            break;
        }
        ahead_bytes += s_reply_bytes_bound (msg);
        self->inbox[self->inbox_count++] = msg;
    }
    size_t kept = 0, first = 0;
    int64_t turn_us = zclock_usecs ();
    for (size_t i = 0; i < self->inbox_count; i++) {
        zmsg_t *msg = self->inbox[i];
        if (!self->failed && s_first (self, msg)) {
            s_handle (self, msg);
            first++;
        } else {
            self->inbox[kept++] = msg;
        }
    }
    self->inbox_count = kept;
    if (first > 0) {
        s_turn_finish (self, false,
                       true); //  its own small batch, its sync at once if none is in flight
        shard_metrics_turn (self->metrics, zclock_usecs () - turn_us);
    }
}

//  One turn: drain every socket (clients and peers), commit once, answer.
//  Whichever socket woke the loop, everything that has arrived anywhere
//  shares this turn's one synced write (but the migration requests read
//  ahead, which go first in a turn of their own).
static int
s_turn (server_t *self)
{
    //  The replies a turn builds are bounded in bytes too (replyq.h).
    size_t building_max = RL_REPLY_QUEUE_BUILDING_BYTES (self->options->reply_queue_bytes);
    if (!self->failed && !backup_holding (self) && !backup_deferred_waiting (self)) {
        s_first_turn (self, building_max);
    }
    if (self->failed) {
        return s_turn_failed (self);
    }
    now_t now = now_read ();
    int64_t turn_us = zclock_usecs ();
    bool more = true;
    //  An export that waited for the drain, due now: first, while this
    //  turn's batch is empty, so that it reads every record the turns
    //  before wrote (a decision that ended the drain included)
    s_parked (self);
    bool lazy = !self->parked_held;        //  only acknowledgements of DECIDEs read so far
    self->turn_urgent = self->parked_held; //  and deferrable DECIDEs (DEFERRED APPLIES)
    for (size_t round = 0; more && round < RL_SHARD_REQUESTS_PER_TURN_MAX; round++) {
        more = false;
        //  Requests that waited for a backup hold go first (backup.h), then
        //  those read ahead (always served in this turn), then the socket.
        zmsg_t *msg = self->held_bytes < building_max ? backup_next_deferred (self) : NULL;
        if (!msg) {
            msg = s_inbox_pop (self);
        }
        if (!msg && self->held_bytes < building_max) {
            msg = zmsg_recv (self->router);
        }
        if (msg) {
            s_handle (self, msg);
            more = true;
            lazy = false;
        }
        for (size_t i = 0; !backup_holding (self) && i < peers_count (self->peers); i++) {
            more |= s_drain_peer (self, i, now, 1, &lazy) > 0;
        }
        if (self->syncer) {
            s_sync_ended (self); //  one that ended meanwhile: its replies go now
        }
        if (self->failed) {
            break; //  the sync failed: nothing more is applied
        }
    }
    int rc = s_turn_finish (self, lazy, self->turn_urgent);
    shard_metrics_turn (self->metrics, zclock_usecs () - turn_us);
    if (self->failed) {
        migrate_parked_drop (self); //  unanswered: the tool's call times out and is resent
        s_turn_failed (self);       //  requests read ahead and not served: answered
    }
    assert (self->inbox_head == self->inbox_count); //  every one read ahead was served
    self->inbox_head = self->inbox_count = 0;
    return rc;
}

static int
s_on_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    assert (arg && router);
    return s_turn (arg);
}

static int
s_on_peer (zloop_t *loop, zsock_t *dealer, void *arg)
{
    (void) loop;
    assert (arg && dealer);
    int rc = s_turn (arg);
    if (backup_holding (arg)) {
        zclock_sleep (1); //  held: peers' messages wait on their sockets; no busy loop
    }
    return rc;
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    server_t *self = arg;
    assert (self);
    rl_auth_tick (self->auth, zclock_mono (), false);
    shard_metrics_tick (self->metrics, self); //  publishes the snapshot
    if (self->failed) {
        return 0; //  FAILED: no resends, no queries, no timeouts
    }
    if (backup_holding (self)) {
        return 0; //  a backup hold: nothing is applied until it ends (backup.h)
    }
    if (backup_deferred_waiting (self)) {
        return s_turn (self); //  a hold ended by itself: what waited goes now
    }
    if (self->replica) {
        replica_tick (self->replica); //  acknowledgements it moves come through s_on_replicated
    }
    s_parked (self); //  its wait may end on the clock; first: the batch is empty
    ledger_tick (self->ledger, now_read ());
    migrate_tick (self);
    s_drain_outq (self);
    return s_turn_finish (self, false, true); //  a deferred sync goes now at the latest
}

//  Life cycle -----------------------------------------------------------------

//  A data directory of a replicated shard (it ran with --standby, or was a
//  standby: REPLICA_META_PRIMARY, which the seed copies) asks its peers for
//  their rings before it serves writes (ringcheck.h): a former primary
//  started without its --standby is fenced by the ring that `rlctl
//  promote` loaded. The marker is written, synced, at the first start
//  with --standby, before any standby is seeded. 0, or -1.
static int
s_ring_check_start (server_t *self, store_t *store, const ring_t *ring)
{
    uint8_t mark[16];
    size_t mark_size = 0;
    bool replicated = self->promoted
                      || store_get (store, STORE_CF_META, REPLICA_META_PRIMARY,
                                    strlen (REPLICA_META_PRIMARY), mark, sizeof mark, &mark_size)
                             == 1;
    if (!replicated && self->options->replica.standby_count > 0) {
        store_batch_t *batch = store_batch_new ();
        uint8_t one = 1;
        if (batch) {
            store_batch_put_into (store, batch, STORE_CF_META, REPLICA_META_PRIMARY,
                                  strlen (REPLICA_META_PRIMARY), &one, sizeof one);
        }
        int rc = batch ? store_batch_commit (store, batch) : -1;
        store_batch_destroy (&batch);
        if (rc != 0) {
            rl_error ("cannot write the replication marker: %s", store_error (store));
            return -1;
        }
        replicated = true;
    }
    self->replicated = replicated;
    if (!replicated || ring_shard_count (ring) < 2) {
        return 0; //  never replicated, or no peer to ask
    }
    self->ringcheck = ringcheck_new (self->loop, self->auth, s_on_peer_ring, self);
    if (!self->ringcheck
        || ringcheck_start (self->ringcheck, ring, self->options->name, RL_SHARD_RING_CHECK_MS)
               != 0) {
        rl_error ("ring check: out of memory or sockets");
        return -1;
    }
    return 0;
}

server_t *
server_new (const server_options_t *options, store_t *store, ring_t **ring_p, outq_t *outq,
            ledger_t *ledger)
{
    assert (options && store && ring_p && *ring_p && outq && ledger);
    assert (outq_count (outq) == 0);
    server_t *self = calloc (1, sizeof (*self));
    if (!self) {
        rl_error ("out of memory");
        return NULL;
    }
    self->options = options;
    self->reply_fp = RL_FP_COUNT;
    self->store = store;
    self->outq = outq;
    self->ledger = ledger;
    self->started_ms = (uint64_t) zclock_mono ();
    self->prepares = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_prepare_rec_t));
    self->tps = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_tp_rec_t));
    self->tps_out = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_tp_rec_t));
    self->transfers = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_transfer_t));
    self->accounts = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_account_t));
    self->ids = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_id_t));
    self->results = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_result_rec_t));
    char err[768] = "out of memory";
    self->auth = options->insecure
                     ? rl_auth_new_insecure ()
                     : rl_auth_new (options->keys_dir, options->cert, err, sizeof err);
    if (!self->auth) {
        rl_error ("%s", err);
        server_destroy (&self);
        return NULL;
    }
    self->loop = zloop_new ();
    self->peers = self->loop ? peers_new (self->loop, s_on_peer, self, self->auth) : NULL;
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->prepares || !self->tps || !self->tps_out || !self->transfers || !self->accounts
        || !self->ids || !self->results || !self->loop || !self->peers || !self->router
        || rl_auth_server (self->auth, self->router) != 0
        || rl_auth_attach (self->auth, self->loop) != 0) {
        rl_error ("out of memory or sockets");
        server_destroy (&self);
        return NULL;
    }
    //  ROUTER_MANDATORY, sndtimeo 0, and the reply bytes one connection
    //  may make the shard hold (replyq.h).
    self->replies = replyq_new (self->router, (size_t) options->reply_queue_bytes);
    if (!self->replies) {
        rl_error ("out of memory");
        server_destroy (&self);
        return NULL;
    }
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndhwm (self->router, RL_SHARD_SNDHWM_MESSAGES);
    zsock_set_rcvhwm (self->router, RL_SHARD_RCVHWM_MESSAGES);
    zsock_set_maxmsgsize (self->router, (int) RL_FRAME_SIZE_MAX);
    zsock_set_linger (self->router, 0);
    int bound = zsock_bind (self->router, "%s", options->bind);
    //  A promoted standby binds the endpoint its standby socket just
    //  released: ZeroMQ closes a listener asynchronously.
    for (int i = 0; bound < 0 && zmq_errno () == EADDRINUSE && i < SERVER_BIND_ATTEMPTS; i++) {
        zclock_sleep (SERVER_BIND_RETRY_MS);
        bound = zsock_bind (self->router, "%s", options->bind);
    }
    if (bound < 0) {
        rl_error ("cannot bind %s: %s", options->bind, zmq_strerror (zmq_errno ()));
        server_destroy (&self);
        return NULL;
    }
    if (!(self->metrics = shard_metrics_new (options->metrics_bind))) { //  NULL bind: no HTTP
        server_destroy (&self);
        return NULL;
    }
    if (backup_start (self) != 0) { //  a cut left by a stop during a backup goes
        server_destroy (&self);
        return NULL;
    }
    if (events_start (self) != 0        //  this incarnation remembered before anything is served
        || migrate_start (self) != 0) { //  a stored freeze holds again before anything is served
        server_destroy (&self);
        return NULL;
    }
    //  What recovery loaded is durable: the change stream's head starts there.
    self->durable_head = ledger_last_timestamp (self->ledger);
    self->sync_head = self->durable_head;
    self->written_head = self->durable_head;
    if (options->durability != RL_DURABILITY_NOSYNC) {
        //  The pipelined group commit's sync thread (syncer.h).
        self->syncer = syncer_new (store);
        zmq_pollitem_t item = {NULL, self->syncer ? syncer_fd (self->syncer) : -1, ZMQ_POLLIN, 0};
        if (!self->syncer || zloop_poller (self->loop, &item, s_on_synced, self) != 0) {
            rl_error ("cannot start the sync thread");
            server_destroy (&self);
            return NULL;
        }
    }
    uint8_t mark[16];
    size_t mark_size = 0;
    self->promoted = store_get (store, STORE_CF_META, REPLICA_META_PROMOTED,
                                strlen (REPLICA_META_PROMOTED), mark, sizeof mark, &mark_size)
                     == 1;
    if (store_get (store, STORE_CF_META, REPLICA_META_FENCED, strlen (REPLICA_META_FENCED), mark,
                   sizeof mark, &mark_size)
        == 1) {
        //  A former primary (docs/replication.md, "The fence"): it serves
        //  nothing until it is wiped and re-seeded as a standby.
        self->fenced = true;
        s_enter_failed (self, "the fence marker of an earlier promotion");
    } else if (s_ring_check_start (self, store, *ring_p) != 0) {
        server_destroy (&self);
        return NULL;
    }
    if (!self->fenced && options->replica.standby_count > 0) {
        //  Every write from here on is an event of the stream (replica.h).
        self->replica = replica_new (&options->replica, store, self->auth, self->loop,
                                     self->durable_head, s_on_replicated, self);
        if (!self->replica) {
            server_destroy (&self);
            return NULL;
        }
        outq_replicated_to (outq, replica_released (self->replica));
    }
    zloop_reader (self->loop, self->router, s_on_readable, self);
    zloop_timer (self->loop, (size_t) options->tick_ms, 0, s_on_tick, self);
    self->ring = *ring_p; //  taken only on success
    *ring_p = NULL;
    return self;
}

void
server_destroy (server_t **self_p)
{
    assert (self_p);
    server_t *self = *self_p;
    if (!self) {
        return;
    }
    syncer_destroy (&self->syncer);   //  waits for a sync in flight; what it justified stays unsent
    replica_destroy (&self->replica); //  untaps the store
    ringcheck_destroy (&self->ringcheck);
    shard_metrics_destroy (&self->metrics); //  stops the HTTP thread
    events_stop (self);
    backup_stop (self); //  waits for a copy in progress
    peers_destroy (&self->peers);
    senders_destroy (&self->senders);
    //  Requests still waiting for decisions: their envelopes are ours.
    zmsg_t *envelope = NULL;
    while ((envelope = coordinator_request_drop (ledger_coordinator (self->ledger), NULL))) {
        zmsg_destroy (&envelope);
    }
    for (size_t i = 0; i < self->held_count; i++) {
        zmsg_destroy (&self->held[i].msg);
    }
    for (size_t i = self->inbox_head; i < self->inbox_count; i++) {
        zmsg_destroy (&self->inbox[i]);
    }
    migrate_parked_drop (self);
    migrate_stage_drop (self);
    free (self->held);
    free (self->arc_load);
    free (self->round_keys); //  a migration's round list (migrate.c)
    hotacct_destroy (&self->hot);
    replyq_destroy (&self->replies);
    zsock_destroy (&self->router);
    zloop_destroy (&self->loop);
    rl_auth_destroy (&self->auth);
    ring_destroy (&self->ring);
    free (self->prepares);
    free (self->tps);
    free (self->tps_out);
    free (self->transfers);
    free (self->accounts);
    free (self->ids);
    free (self->results);
    free (self);
    *self_p = NULL;
}

int
server_run (server_t *self)
{
    assert (self && self->ring && (!self->failed || self->fenced));
    rl_info ("serving %s, data %s, durability %s, ring epoch %" PRIu64 " (%zu shards)",
             self->options->bind, self->options->data_dir,
             rl_durability_name (self->options->durability), ring_epoch (self->ring),
             ring_shard_count (self->ring));
    if (rl_auth_insecure (self->auth)) {
        rl_warn ("INSECURE (--insecure): no CURVE, no authentication, no roles: anyone who "
                 "reaches %s can create money",
                 self->options->bind);
    } else {
        rl_info ("CURVE on, public key %s, %zu keys in the role key sets of %s",
                 zcert_public_txt (rl_auth_cert (self->auth)), rl_auth_key_count (self->auth),
                 self->options->keys_dir);
    }
    zloop_start (self->loop); //  returns on SIGINT/SIGTERM (also in FAILED)
    return self->failed ? -1 : 0;
}

bool
server_failed (const server_t *self)
{
    assert (self);
    return self->failed;
}

bool
server_fenced (const server_t *self)
{
    assert (self);
    return self->fenced;
}
