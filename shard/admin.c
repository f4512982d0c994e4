/*  admin.c: the shard's operator operations: status, the in-doubt listing,
    heuristic resolution, the reservation audit, and the ring (load_ring,
    get_ring). Dispatched by server.c within a turn, like every request.

    INVARIANTS
    1. load_ring installs a ring only when its epoch is higher, by at most
       --max-epoch-jump (a ring at epoch 2^64 - 1 would refuse every later
       one for good: refused epoch_too_far, counted, nothing stored), and
       puts it into the turn's batch, so the reply goes out after it is durable and
       a restart never goes back to an older ring. The arcs the shard gains
       become not received (arcs.h) in the same batch, before the ring
       serves anything. A ring that gives this shard's name to another
       endpoint (server_ring_fences: a promotion) fences it instead: the
       marker is written, nothing else, and it answers fenced.
    2. resolve acts only on a prepared record whose coordinator is fenced
       out of this shard's ring (not named by it) and when the request
       carries the explicit flag; the decision and the kept heuristic
       record go into the turn's batch.
    3. Reads (status, in_doubt, audit, get_ring) write nothing.

    LIMITS: in_doubt lists the first RL_IN_DOUBT_RECORDS_MAX entries (what
    fits one message; status counts them all); audit is
    O(accounts + live attempts + prepared records).
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "coordinator.h"
#include "log.h"
#include "rl_limits.h"
#include "server_internal.h"

zmsg_t *
admin_status (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    assert (h->operation == RL_OP_STATUS);
    rl_status_rec_t status = {0};
    snprintf (status.name, sizeof (status.name), "%s", self->options->name);
    status.epoch = ring_epoch (self->ring);
    status.accounts = ledger_account_count (self->ledger);
    status.transfers = ledger_transfer_count (self->ledger);
    status.requests = self->requests;
    status.commits = self->commits;
    status.durability = self->options->durability;
    if (self->replica) { //  the replication mode is part of the label (docs/replication.md)
        status.durability |= replica_mode (self->replica) == REPLICA_MODE_SEMI
                                 ? RL_DURABILITY_REPL_SEMI
                                 : RL_DURABILITY_REPL_ASYNC;
    }
    status.ring_shards = (uint32_t) ring_shard_count (self->ring);
    status.last_timestamp = ledger_last_timestamp (self->ledger);
    //  Replies lost to a gone connection or to --reply-queue-bytes count too.
    status.dropped = self->dropped + replyq_gone (self->replies) + replyq_full (self->replies);
    status.malformed = self->malformed;
    status.wrong_shard = self->wrong_shard;
    status.pid = (uint32_t) getpid ();
    status.uptime_ms = (uint64_t) zclock_mono () - self->started_ms;
    status.checkpoints = ledger_checkpoint_count (self->ledger);
    status.state = self->fenced                                       ? RL_SHARD_FENCED
                   : self->failed                                     ? RL_SHARD_FAILED
                   : self->replica && replica_stalled (self->replica) ? RL_SHARD_STALLED
                                                                      : RL_SHARD_SERVING;
    status.deadline_ms = (uint32_t) self->options->deadline_ms; //  main.c bounds both
    status.prepare_timeout_ms = (uint32_t) self->options->prepare_timeout_ms;
    const arcs_t *arcs = ledger_arcs (self->ledger);
    status.arcs_unreceived = arcs ? arcs_unreceived_count (arcs) : 0;
    status.insecure = rl_auth_insecure (self->auth);
    status.keys = (uint32_t) rl_auth_key_count (self->auth);
    status.handshakes_refused = rl_auth_refused (self->auth);
    status.unauthorized = self->unauthorized;
    status.epoch_jumps_refused = self->epoch_jumps_refused;
    ledger_tp_counts (self->ledger, &status.inflight, &status.in_doubt, &status.alarms);
    shard_metrics_status (self->metrics, &status); //  turn_p99_us, in_doubt_oldest_ms
    store_write_stats (self->store, &status.store_keys_written, &status.store_bytes_written,
                       &status.wal_bytes, &status.wal_syncs);
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 1, RL_STATUS_SIZE, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    codec_encode_status (&status, out);
    return reply;
}

//  repl_status (docs/replication.md): the primary's quorum and position,
//  then each standby's link; a shard without standbys, one record of role
//  none. Answered after the local sync only, like status: it reports no
//  ledger state, and a stalled primary must be seen.
zmsg_t *
admin_repl_status (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    assert (h->operation == RL_OP_REPL_STATUS);
    rl_repl_rec_t recs[RL_REPL_RECORDS_MAX];
    _Static_assert(RL_REPL_RECORDS_MAX == 1 + REPLICA_STANDBYS_MAX, "the process and its links");
    size_t count = 1;
    if (self->replica) {
        count = replica_describe (self->replica, recs, RL_REPL_RECORDS_MAX);
    } else {
        recs[0] = (rl_repl_rec_t){.role = RL_REPL_NONE};
    }
    rl_attempt_t inc = coordinator_incarnation (ledger_coordinator (self->ledger));
    recs[0].incarnation = inc.counter;
    recs[0].nonce = inc.nonce;
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                      RL_REPL_SIZE, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    for (size_t i = 0; i < count; i++) {
        codec_encode_repl (&recs[i], out + i * RL_REPL_SIZE);
    }
    return reply;
}

//  Admin: what is in doubt here (the first RL_BATCH_RECORDS_MAX entries).
zmsg_t *
admin_in_doubt (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    assert (h->operation == RL_OP_IN_DOUBT);
    static rl_in_doubt_rec_t list[RL_IN_DOUBT_RECORDS_MAX];
    size_t count = ledger_in_doubt (self->ledger, list, RL_IN_DOUBT_RECORDS_MAX);
    assert (count <= RL_IN_DOUBT_RECORDS_MAX); //  paired with ledger_in_doubt's cap
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                      RL_IN_DOUBT_SIZE, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    for (size_t i = 0; i < count; i++) {
        codec_encode_in_doubt (&list[i], out + i * RL_IN_DOUBT_SIZE);
    }
    return reply;
}

//  Admin: heuristic resolution of prepared records whose coordinator is
//  gone for good: refused unless the coordinator is fenced out of this
//  shard's ring (a ring of a higher epoch without it) and the request
//  carries the explicit flag.
zmsg_t *
admin_resolve (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    assert (h->operation == RL_OP_RESOLVE);
    size_t count = h->record_count;
    assert (count <= RL_BATCH_RECORDS_MAX); //  codec_check_request bounds it
    now_t now = now_read ();
    for (size_t i = 0; i < count; i++) {
        rl_tp_rec_t rec;
        codec_decode_tp (body + i * RL_TP_SIZE, &rec);
        uint32_t reason = 0;
        if (rec.result != RL_RESOLVE_FORCE) {
            reason = RL_RESOLVE_NOT_FORCED;
        } else if (ring_shard_find (self->ring, rec.coordinator) >= 0) {
            reason = RL_RESOLVE_NOT_FENCED;
        } else {
            reason = participant_resolve (ledger_participant (self->ledger), &rec, now);
        }
        self->tps_out[i] = rec;
        self->tps_out[i].state = reason == 0 ? RL_TP_ACKED : RL_TP_REFUSED;
        self->tps_out[i].result = reason;
        if (reason != 0) {
            rl_warn ("resolve refused (reason %u) for a transfer from %s", reason, rec.coordinator);
        }
    }
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count, RL_TP_SIZE,
                                      &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    for (size_t i = 0; i < count; i++) {
        codec_encode_tp (&self->tps_out[i], out + i * RL_TP_SIZE);
    }
    return reply;
}

//  Admin: every reservation accounted for?
zmsg_t *
admin_audit (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    assert (h->operation == RL_OP_AUDIT);
    rl_audit_rec_t audit = {0};
    audit.ok = ledger_audit (self->ledger, audit.message, sizeof (audit.message)) == 0;
    if (!audit.ok) {
        rl_error ("audit: %s", audit.message);
    }
    ledger_audit_counts (self->ledger, &audit.accounts, &audit.live, &audit.prepared);
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 1, RL_AUDIT_SIZE, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    codec_encode_audit (&audit, out);
    return reply;
}

zmsg_t *
admin_load_ring (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
                 size_t body_size)
{
    assert (h->operation == RL_OP_LOAD_RING);
    char err[256];
    ring_t *ring = ring_decode (body, body_size, err, sizeof (err));
    if (!ring) {
        rl_warn ("load_ring refused: %s", err);
        return server_reply_new (self, envelope, h, RL_STATUS_BAD_RING, 0, 0, NULL);
    }
    if (ring_epoch (ring) <= ring_epoch (self->ring)) {
        rl_warn ("load_ring refused: epoch %" PRIu64 " is not newer than %" PRIu64,
                 ring_epoch (ring), ring_epoch (self->ring));
        ring_destroy (&ring);
        return server_reply_new (self, envelope, h, RL_STATUS_EPOCH_NOT_NEWER, 0, 0, NULL);
    }
    assert (self->options->max_epoch_jump > 0); //  main.c bounds it
    if (ring_epoch (ring) - ring_epoch (self->ring) > (uint64_t) self->options->max_epoch_jump) {
        //  Nothing stored: the ring served, and the one a restart reads, stay.
        self->epoch_jumps_refused++;
        rl_warn ("load_ring refused: epoch %" PRIu64 " is more than %ld (--max-epoch-jump) "
                 "above %" PRIu64,
                 ring_epoch (ring), self->options->max_epoch_jump, ring_epoch (self->ring));
        ring_destroy (&ring);
        return server_reply_new (self, envelope, h, RL_STATUS_EPOCH_TOO_FAR, 0, 0, NULL);
    }
    if (server_ring_fences (self, ring)) {
        //  Its name moved to another endpoint: a standby of it was promoted
        //  (docs/replication.md, "The ring's epoch as the fence").
        char why[512];
        int at = ring_shard_find (ring, self->options->name);
        snprintf (why, sizeof why,
                  "load_ring of epoch %" PRIu64 " gives %s to %s, not to --bind %s",
                  ring_epoch (ring), self->options->name, ring_shard_endpoint (ring, (size_t) at),
                  self->options->bind);
        ring_destroy (&ring);
        server_enter_fenced (self, why);
        return server_reply_new (self, envelope, h, RL_STATUS_FENCED, 0, 0, NULL);
    }
    //  The arcs this shard gains are not received until their data arrives
    //  (arcs.h); the new set goes into this batch, with the ring.
    arcs_t *arcs = ledger_arcs (self->ledger);
    if (arcs && arcs_ring_change (arcs, self->ring, ring) != 0) {
        rl_warn ("load_ring refused: out of memory (or too many arcs not received) for the "
                 "arcs of epoch %" PRIu64,
                 ring_epoch (ring));
        ring_destroy (&ring);
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    store_batch_put (self->store, STORE_CF_META, SERVER_META_RING, strlen (SERVER_META_RING), body,
                     body_size);
    rl_info ("ring epoch %" PRIu64 " -> %" PRIu64 " (%zu shards)", ring_epoch (self->ring),
             ring_epoch (ring), ring_shard_count (ring));
    server_ring_adopt (self, ring);
    assert (self->ring == ring); //  the ledger serves it too (s_ring_adopt)
    return server_reply_new (self, envelope, h, RL_STATUS_OK, 0, 0, NULL);
}

zmsg_t *
admin_get_ring (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    assert (h->operation == RL_OP_GET_RING);
    size_t size = ring_encoded_size (self->ring);
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 1, size, &out);
    if (!reply) {
        return NULL; //  out of memory: counted by s_hold
    }
    size_t written = ring_encode (self->ring, out, size);
    assert (written == size);
    return reply;
}
