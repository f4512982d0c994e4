/*  peers.c: DEALER sockets to the peer shards, and their outboxes.

    DESIGN
    A table by ring index of peers (NULL until first used), and the list of
    the indexes in use, in connection order, for scans. A peer holds one
    DEALER (linger 0, no blocking, high-water marks from rl_limits.h) and an
    outbox of encoded records per kind of message, each with the newest
    group commit its records need synced. A DEALER speaks CURVE and pins
    the peer's public key from the ring (common/auth.h), unless the shard
    runs --insecure; a peer without a known key is never connected.

    A RING CHANGE (peers_retire) moves indexes, so peers are matched by
    NAME, never by index: a connected peer whose name is in the new ring
    with the same endpoint and the same pinned key (the ring's, else
    KEYDIR/shard/NAME.key, resolved again) keeps its DEALER, its queued
    output and its outboxes, under its new index; ZeroMQ's queues towards
    it survive, so no two-phase message in flight is lost to a ring change
    (rebalancing loads a ring per handover step: docs/rebalance.md). Every
    other peer (left the ring, moved, new key, never connected) goes to
    the retired list: flushed at the end of the turn, then closed; new
    messages to its name connect afresh. Each change logs how many
    connections it kept and closed. A reply read from a kept DEALER is
    attributed to the name its new index gives: the same shard, since the
    name and the pinned key did not change (the sender rules, senders.h).

    INVARIANTS
    1. by_index[list[i]] is a peer for every i < count, and every non-NULL
       entry of by_index is listed once; after a ring change too: the peer
       at index i is the shard the ring served now names at i (its name,
       endpoint and pinned key are those of that entry).
    2. An outbox's needs_seq is at least that of every record in it, and
       each record keeps its own (seqs); a flush sends a record only when
       synced_seq reaches its seq (asserted: "sent <= synced"). The group
       commit is pipelined (server.c), so a flush sends the records a sync
       has justified and keeps, in order, those waiting for a later one.
    3. A discard leaves every outbox empty (needs_seq 0), and so does a
       flush whose synced_seq covers the outbox's needs_seq.
    4. A peer is kept by a ring change only if it is connected and its
       name, endpoint and pinned key are unchanged; it keeps its outboxes
       (records encoded for that same shard), so invariants 2 and 3 hold
       across the change.

    LIMITS: RL_SHARDS_MAX peers (the ring's own bound); an outbox grows by
    doubling and keeps its memory; a message carries at most
    RL_BATCH_RECORDS_MAX records. A send that would block is dropped and
    counted: timeouts, resends and queries cover every kind.
*/
#include "peers.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "rl_limits.h"

typedef struct {
    uint8_t *data;
    size_t count; //  records queued
    size_t cap;   //  records allocated
    size_t record_size;
    uint64_t *seqs;     //  per record: the group commit it needs synced
    uint64_t needs_seq; //  the newest group commit its records need synced
} s_outbox_t;

typedef struct {
    zsock_t *dealer;
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    char key[RL_KEY_TEXT_SIZE];   //  the key pinned ("" insecure)
    bool connected;               //  CURVE set up and connect succeeded
    s_outbox_t boxes[OUTQ_REPLY]; //  by kind: PREPARE, DECIDE, QUERY
} s_peer_t;

struct peers_t {
    zloop_t *loop;
    rl_auth_t *auth; //  CURVE to peers: their key from the ring (borrowed)
    zloop_reader_fn *on_reply;
    void *arg;
    s_peer_t *by_index[RL_SHARDS_MAX]; //  NULL until first used
    uint32_t list[RL_SHARDS_MAX];      //  the indexes in use, in connection order
    size_t count;
    s_peer_t *retired[RL_SHARDS_MAX]; //  peers of a ring replaced this turn
    size_t retired_count;
    uint64_t request_id; //  of our messages to peers
};

static const uint16_t s_ops[OUTQ_REPLY] = {RL_OP_PREPARE, RL_OP_DECIDE, RL_OP_OUTCOME_QUERY};

peers_t *
peers_new (zloop_t *loop, zloop_reader_fn *on_reply, void *arg, rl_auth_t *auth)
{
    assert (loop && on_reply && auth);
    peers_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->loop = loop;
    self->auth = auth;
    self->on_reply = on_reply;
    self->arg = arg;
    return self;
}

static void
s_peer_destroy (peers_t *self, s_peer_t **peer_p)
{
    s_peer_t *peer = *peer_p;
    if (peer) {
        zloop_reader_end (self->loop, peer->dealer);
        zsock_destroy (&peer->dealer);
        for (int k = 0; k < OUTQ_REPLY; k++) {
            free (peer->boxes[k].data);
            free (peer->boxes[k].seqs);
        }
        free (peer);
        *peer_p = NULL;
    }
}

void
peers_destroy (peers_t **self_p)
{
    assert (self_p);
    peers_t *self = *self_p;
    if (!self) {
        return;
    }
    peers_retire (self, NULL);
    peers_close_retired (self);
    assert (self->count == 0 && self->retired_count == 0);
    free (self);
    *self_p = NULL;
}

//  The peer at ring index `index`, connected lazily; NULL when memory or
//  sockets ran out.
static s_peer_t *
s_peer (peers_t *self, const ring_t *ring, int32_t index)
{
    assert (index >= 0 && (size_t) index < ring_shard_count (ring));
    if (self->by_index[index]) {
        return self->by_index[index];
    }
    assert (self->count < RL_SHARDS_MAX);
    s_peer_t *peer = calloc (1, sizeof (*peer));
    if (!peer) {
        return NULL;
    }
    const char *name = ring_shard_name (ring, (size_t) index);
    peer->dealer = zsock_new (ZMQ_DEALER);
    if (!peer->dealer) {
        rl_error ("cannot open a socket to peer %s", name);
        free (peer);
        return NULL;
    }
    peer->boxes[OUTQ_PREPARE].record_size = RL_PREPARE_SIZE;
    peer->boxes[OUTQ_DECIDE].record_size = RL_TP_SIZE;
    peer->boxes[OUTQ_QUERY].record_size = RL_TP_SIZE;
    zsock_set_linger (peer->dealer, 0);
    zsock_set_sndtimeo (peer->dealer, 0);
    zsock_set_rcvtimeo (peer->dealer, 0);
    zsock_set_sndhwm (peer->dealer, RL_SHARD_SNDHWM_MESSAGES);
    zsock_set_rcvhwm (peer->dealer, RL_SHARD_RCVHWM_MESSAGES);
    const char *endpoint = ring_shard_endpoint (ring, (size_t) index);
    snprintf (peer->name, sizeof (peer->name), "%s", name);
    snprintf (peer->endpoint, sizeof (peer->endpoint), "%s", endpoint);
    char *key = peer->key;
    if (rl_auth_peer_key (self->auth, name, ring_shard_key (ring, (size_t) index), key) != 0
        || rl_auth_client (self->auth, peer->dealer, key) != 0) {
        //  Never in clear: its messages wait (and time out) like a peer's that is down.
        rl_warn ("no public key for peer %s (in the ring, or shard/%s.key in the key sets): "
                 "not connecting",
                 name, name);
    } else if (zsock_connect (peer->dealer, "%s", endpoint) != 0) {
        rl_warn ("cannot connect to peer %s at %s", name, endpoint);
    } else {
        peer->connected = true;
    }
    zloop_reader (self->loop, peer->dealer, self->on_reply, self->arg);
    self->by_index[index] = peer;
    self->list[self->count++] = (uint32_t) index;
    assert (self->by_index[self->list[self->count - 1]] == peer); //  invariant 1
    return peer;
}

bool
peers_push (peers_t *self, const ring_t *ring, const outq_msg_t *m)
{
    assert (self && ring && m);
    assert (m->kind == OUTQ_PREPARE || m->kind == OUTQ_DECIDE || m->kind == OUTQ_QUERY);
    if (m->peer < 0 || (size_t) m->peer >= ring_shard_count (ring)) {
        return false; //  not in the ring served now
    }
    s_peer_t *peer = s_peer (self, ring, m->peer);
    if (!peer) {
        return false;
    }
    s_outbox_t *box = &peer->boxes[m->kind];
    assert (box->record_size > 0);
    if (box->count == box->cap) {
        size_t cap = box->cap ? box->cap * 2 : 64;
        uint8_t *data = realloc (box->data, cap * box->record_size);
        if (!data) {
            return false;
        }
        box->data = data;
        uint64_t *seqs = realloc (box->seqs, cap * sizeof (uint64_t));
        if (!seqs) {
            return false;
        }
        box->seqs = seqs;
        box->cap = cap;
    }
    uint8_t *out = box->data + box->count * box->record_size;
    if (m->kind == OUTQ_PREPARE) {
        codec_encode_prepare (&m->prepare, out);
    } else {
        codec_encode_tp (&m->tp, out);
    }
    box->seqs[box->count++] = m->needs_seq;
    box->needs_seq = m->needs_seq > box->needs_seq ? m->needs_seq : box->needs_seq;
    assert (box->needs_seq >= m->needs_seq); //  invariant 2
    return true;
}

//  Every peer, current then retired, for flushes and discards.
static s_peer_t *
s_peer_at (const peers_t *self, size_t i)
{
    assert (i < self->count + self->retired_count);
    return i < self->count ? self->by_index[self->list[i]] : self->retired[i - self->count];
}

bool
peers_queued (const peers_t *self, outq_kind_t kind)
{
    assert (self && kind < OUTQ_REPLY);
    for (size_t i = 0; i < self->count + self->retired_count; i++) {
        if (s_peer_at (self, i)->boxes[kind].count > 0) {
            return true;
        }
    }
    return false;
}

//  Sends records [first, first + n) of an outbox to its peer, at most a
//  batch a message. Returns the records sent.
static size_t
s_send_records (peers_t *self, s_peer_t *peer, s_outbox_t *box, uint16_t op, size_t first, size_t n,
                size_t *dropped_p)
{
    size_t sent = 0;
    for (size_t end = first + n; first < end; first += RL_BATCH_RECORDS_MAX) {
        size_t k = end - first < RL_BATCH_RECORDS_MAX ? end - first : RL_BATCH_RECORDS_MAX;
        rl_header_t h = codec_request_header (op, ++self->request_id, (uint32_t) k);
        size_t body_size = k * box->record_size;
        zframe_t *frame = zframe_new (NULL, codec_frame_size (body_size));
        if (!frame) {
            *dropped_p += k; //  out of memory: the timeout, resend or query covers it
            continue;
        }
        codec_encode_frame (&h, box->data + first * box->record_size, body_size,
                            zframe_data (frame));
        if (zframe_send (&frame, peer->dealer, ZFRAME_DONTWAIT) != 0) {
            zframe_destroy (&frame);
            *dropped_p += 1; //  the timeout, resend or query covers it
        } else {
            sent += k;
        }
    }
    return sent;
}

//  Sends the queued records of one kind that synced_seq covers, each run
//  of them at most a batch a message; the others stay queued, in order.
static size_t
s_flush_box (peers_t *self, s_peer_t *peer, s_outbox_t *box, uint16_t op, uint64_t synced_seq,
             size_t *dropped_p)
{
    if (box->count == 0) {
        return 0;
    }
    if (box->needs_seq <= synced_seq) { //  every record: the common case
        size_t sent = s_send_records (self, peer, box, op, 0, box->count, dropped_p);
        box->count = 0;
        box->needs_seq = 0;
        return sent;
    }
    size_t sent = 0, kept = 0;
    uint64_t kept_max = 0;
    for (size_t i = 0; i < box->count;) {
        size_t run = 0;
        while (i + run < box->count && box->seqs[i + run] <= synced_seq) {
            run++;
        }
        if (run > 0) {
            sent += s_send_records (self, peer, box, op, i, run, dropped_p);
            i += run;
            continue;
        }
        //  Waits for a later sync: moves down to the kept prefix.
        if (kept != i) {
            memmove (box->data + kept * box->record_size, box->data + i * box->record_size,
                     box->record_size);
            box->seqs[kept] = box->seqs[i];
        }
        kept_max = box->seqs[kept] > kept_max ? box->seqs[kept] : kept_max;
        kept++;
        i++;
    }
    assert (kept > 0 && kept_max > synced_seq); //  needs_seq was beyond synced_seq
    box->count = kept;
    box->needs_seq = kept_max;
    return sent;
}

size_t
peers_flush (peers_t *self, uint64_t synced_seq, size_t sent[OUTQ_REPLY])
{
    assert (self && sent);
    size_t dropped = 0;
    for (size_t i = 0; i < self->count + self->retired_count; i++) {
        s_peer_t *peer = s_peer_at (self, i);
        for (int k = 0; k < OUTQ_REPLY; k++) {
            s_outbox_t *box = &peer->boxes[k];
            //  Nothing goes out before the write that justifies it is durable.
            sent[k] += s_flush_box (self, peer, box, s_ops[k], synced_seq, &dropped);
            assert (box->count == 0 || box->needs_seq > synced_seq); //  invariant 3
        }
    }
    return dropped;
}

bool
peers_ready (const peers_t *self, outq_kind_t kind, uint64_t synced_seq)
{
    assert (self && kind < OUTQ_REPLY);
    for (size_t i = 0; i < self->count + self->retired_count; i++) {
        const s_outbox_t *box = &s_peer_at (self, i)->boxes[kind];
        for (size_t r = 0; r < box->count; r++) {
            if (box->seqs[r] <= synced_seq) {
                return true;
            }
        }
    }
    return false;
}

void
peers_discard (peers_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->count + self->retired_count; i++) {
        s_peer_t *peer = s_peer_at (self, i);
        for (int k = 0; k < OUTQ_REPLY; k++) {
            peer->boxes[k].count = 0;
            peer->boxes[k].needs_seq = 0;
        }
    }
    assert (!peers_queued (self, OUTQ_PREPARE) && !peers_queued (self, OUTQ_DECIDE));
}

//  Does the new ring's shard at `at` lead where peer's connection leads?
static bool
s_peer_same (peers_t *self, const s_peer_t *peer, const ring_t *ring, int at)
{
    char key[RL_KEY_TEXT_SIZE];
    return peer->connected && strcmp (ring_shard_name (ring, (size_t) at), peer->name) == 0
           && strcmp (ring_shard_endpoint (ring, (size_t) at), peer->endpoint) == 0
           && rl_auth_peer_key (self->auth, peer->name, ring_shard_key (ring, (size_t) at), key)
                  == 0
           && strcmp (key, peer->key) == 0;
}

void
peers_retire (peers_t *self, const ring_t *ring)
{
    assert (self);
    s_peer_t *kept[RL_SHARDS_MAX] = {0}; //  by index in the new ring
    uint32_t order[RL_SHARDS_MAX];       //  connection order, kept
    size_t kept_count = 0, closed = 0;
    for (size_t i = 0; i < self->count; i++) {
        uint32_t index = self->list[i];
        s_peer_t *peer = self->by_index[index];
        assert (peer && self->retired_count < RL_SHARDS_MAX);
        self->by_index[index] = NULL;
        int at = ring ? ring_shard_find (ring, peer->name) : -1;
        if (at >= 0 && at < RL_SHARDS_MAX && !kept[at] && s_peer_same (self, peer, ring, at)) {
            kept[at] = peer; //  invariant 4: by name, same endpoint and key
            order[kept_count++] = (uint32_t) at;
        } else {
            self->retired[self->retired_count++] = peer;
            closed++;
        }
    }
    self->count = 0;
    for (size_t i = 0; i < kept_count; i++) {
        self->by_index[order[i]] = kept[order[i]];
        self->list[self->count++] = order[i];
        assert (self->by_index[self->list[i]]); //  invariant 1
    }
    if (ring && kept_count + closed > 0) {
        rl_info ("ring epoch %" PRIu64 ": peer connections kept %zu, closed %zu", ring_epoch (ring),
                 kept_count, closed);
    }
}

void
peers_close_retired (peers_t *self)
{
    assert (self);
    for (size_t i = 0; i < self->retired_count; i++) {
        s_peer_destroy (self, &self->retired[i]);
    }
    self->retired_count = 0;
}

size_t
peers_count (const peers_t *self)
{
    assert (self);
    return self->count;
}

zsock_t *
peers_socket (const peers_t *self, size_t i)
{
    assert (self && i < self->count);
    assert (self->by_index[self->list[i]]);
    return self->by_index[self->list[i]]->dealer;
}

uint32_t
peers_index (const peers_t *self, size_t i)
{
    assert (self && i < self->count);
    return self->list[i];
}
