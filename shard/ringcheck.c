/*  ringcheck.c: the shard asks its peers for the ring they serve.

    DESIGN
    The ring's epoch is the fencing token of a promotion
    (docs/replication.md, "The ring's epoch as the fence"): `rlctl promote`
    loads a ring of a higher epoch that gives the shard's name to the
    promoted standby's endpoint into every shard. A former primary learns
    it from its own load_ring (admin.c) or, when it was down then, from a
    peer: this module asks the peers for their rings, with get_ring (a
    read every role may send), and hands each ring that comes back to the
    server (on_ring), which decides (server.c, server_ring_fences).

    - The start-up check (ringcheck_start): every shard of the ring but
      this one is asked, again every RINGCHECK_RESEND_MS, until each has
      answered or the timeout has passed; while it waits the server
      answers clients' writes and reads busy (ringcheck_pending).
    - Later, a peer whose reply carries a higher epoch than the ring
      served is asked once (ringcheck_ask, at most once per
      RINGCHECK_ASK_MS per peer).

    One DEALER per peer name, of its own (not the two-phase connections of
    peers.c, whose replies carry records): CURVE pinning the peer's key
    from the ring (else KEYDIR/shard/NAME.key), linger 0, sends never
    block (a full queue drops the ask: the next one covers it). A peer
    whose endpoint or key changed in a later ring gets a new socket.

    INVARIANTS
    1. Only get_ring is sent; an answer that is not a get_ring reply with
       status ok, or whose ring does not decode, is logged and ignored.
    2. The check ends (pending false) once, and stays ended.

    LIMITS: RL_SHARDS_MAX peers (the ring's bound).
*/
#include "ringcheck.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "rl_limits.h"

typedef struct {
    ringcheck_t *owner;
    zsock_t *dealer;
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    char key[RL_KEY_TEXT_SIZE];
    bool waited;     //  the start-up check waits for its answer
    bool answered;   //  it answered the start-up check
    int64_t sent_ms; //  the last ask (0: none)
} s_peer_t;

struct ringcheck_t {
    zloop_t *loop;
    rl_auth_t *auth;
    ringcheck_fn *on_ring;
    void *arg;
    s_peer_t *peers[RL_SHARDS_MAX];
    size_t count;
    uint64_t next_id;
    bool pending;
    int64_t deadline_ms;
    int timeout_ms;
    int timer;
};

ringcheck_t *
ringcheck_new (zloop_t *loop, rl_auth_t *auth, ringcheck_fn *on_ring, void *arg)
{
    assert (loop && auth && on_ring);
    ringcheck_t *self = calloc (1, sizeof (*self));
    if (!self) {
        rl_error ("out of memory");
        return NULL;
    }
    self->loop = loop;
    self->auth = auth;
    self->on_ring = on_ring;
    self->arg = arg;
    self->next_id = 1;
    self->timer = -1;
    return self;
}

static void
s_peer_destroy (ringcheck_t *self, s_peer_t **peer_p)
{
    s_peer_t *peer = *peer_p;
    if (peer) {
        zloop_reader_end (self->loop, peer->dealer);
        zsock_destroy (&peer->dealer);
        free (peer);
        *peer_p = NULL;
    }
}

void
ringcheck_destroy (ringcheck_t **self_p)
{
    assert (self_p);
    ringcheck_t *self = *self_p;
    if (!self) {
        return;
    }
    if (self->timer >= 0) {
        zloop_timer_end (self->loop, self->timer);
    }
    for (size_t i = 0; i < self->count; i++) {
        s_peer_destroy (self, &self->peers[i]);
    }
    free (self);
    *self_p = NULL;
}

//  An answer from one peer (invariant 1).
static int
s_on_reply (zloop_t *loop, zsock_t *dealer, void *arg)
{
    (void) loop;
    s_peer_t *peer = arg;
    ringcheck_t *self = peer->owner;
    zframe_t *frame = NULL;
    while ((frame = zframe_recv (dealer))) { //  rcvtimeo 0: NULL when drained
        rl_header_t h;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        rl_status_t status = codec_parse_reply (zframe_data (frame), zframe_size (frame), &h, &body,
                                                &body_size);
        if (status != RL_STATUS_OK || h.operation != RL_OP_GET_RING || h.status != RL_STATUS_OK
            || body_size == 0) {
            //  A peer still starting, stalled or a standby: asked again.
            rl_debug ("ring check: %s answered %s", peer->name,
                      rl_status_name (status != RL_STATUS_OK ? status : h.status));
            zframe_destroy (&frame);
            continue;
        }
        char err[256];
        ring_t *ring = ring_decode (body, body_size, err, sizeof err);
        zframe_destroy (&frame);
        if (!ring) {
            rl_warn ("ring check: the ring of peer %s does not decode: %s", peer->name, err);
            continue;
        }
        peer->answered = true;
        self->on_ring (self->arg, peer->name, ring); //  takes the ring
    }
    return 0;
}

//  The socket to the shard at index of ring (a new one when its endpoint
//  or key changed); NULL when none can be made.
static s_peer_t *
s_peer (ringcheck_t *self, const ring_t *ring, size_t index)
{
    const char *name = ring_shard_name (ring, index);
    const char *endpoint = ring_shard_endpoint (ring, index);
    char key[RL_KEY_TEXT_SIZE] = "";
    if (rl_auth_peer_key (self->auth, name, ring_shard_key (ring, index), key) != 0) {
        rl_warn ("ring check: no public key for peer %s: not asking it", name);
        return NULL;
    }
    size_t at = 0;
    while (at < self->count && strcmp (self->peers[at]->name, name) != 0) {
        at++;
    }
    if (at < self->count) {
        s_peer_t *peer = self->peers[at];
        if (strcmp (peer->endpoint, endpoint) == 0 && strcmp (peer->key, key) == 0) {
            return peer;
        }
        s_peer_destroy (self, &self->peers[at]); //  moved: connect afresh below
    } else if (self->count == RL_SHARDS_MAX) {
        return NULL;
    } else {
        self->count++;
    }
    s_peer_t *peer = calloc (1, sizeof (*peer));
    if (!peer || !(peer->dealer = zsock_new (ZMQ_DEALER))) {
        free (peer);
        self->peers[at] = self->peers[--self->count];
        rl_error ("ring check: out of memory or sockets");
        return NULL;
    }
    peer->owner = self;
    snprintf (peer->name, sizeof peer->name, "%s", name);
    snprintf (peer->endpoint, sizeof peer->endpoint, "%s", endpoint);
    snprintf (peer->key, sizeof peer->key, "%s", key);
    zsock_set_linger (peer->dealer, 0);
    zsock_set_sndtimeo (peer->dealer, 0);
    zsock_set_rcvtimeo (peer->dealer, 0);
    if (rl_auth_client (self->auth, peer->dealer, key) != 0
        || zsock_connect (peer->dealer, "%s", endpoint) != 0
        || zloop_reader (self->loop, peer->dealer, s_on_reply, peer) != 0) {
        rl_warn ("ring check: cannot connect to peer %s at %s", name, endpoint);
        zsock_destroy (&peer->dealer);
        free (peer);
        self->peers[at] = self->peers[--self->count];
        return NULL;
    }
    self->peers[at] = peer;
    return peer;
}

//  One get_ring to peer (dropped when its queue is full: asked again later).
static void
s_ask (ringcheck_t *self, s_peer_t *peer)
{
    uint8_t raw[64];
    assert (codec_frame_size (0) <= sizeof raw);
    rl_header_t h = codec_request_header (RL_OP_GET_RING, self->next_id++, 0);
    codec_encode_frame (&h, NULL, 0, raw);
    zframe_t *frame = zframe_new (raw, codec_frame_size (0));
    if (frame && zframe_send (&frame, peer->dealer, ZFRAME_DONTWAIT) != 0) {
        zframe_destroy (&frame);
    }
    peer->sent_ms = zclock_mono ();
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    ringcheck_t *self = arg;
    (void) ringcheck_pending (self); //  ends the check when due
    if (!self->pending) {
        return 0;
    }
    for (size_t i = 0; i < self->count; i++) {
        if (self->peers[i]->waited && !self->peers[i]->answered) {
            s_ask (self, self->peers[i]);
        }
    }
    return 0;
}

int
ringcheck_start (ringcheck_t *self, const ring_t *ring, const char *own, int timeout_ms)
{
    assert (self && ring && own && timeout_ms > 0 && !self->pending);
    self->timeout_ms = timeout_ms;
    self->deadline_ms = zclock_mono () + timeout_ms;
    size_t asked = 0;
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        if (strcmp (ring_shard_name (ring, i), own) == 0) {
            continue;
        }
        s_peer_t *peer = s_peer (self, ring, i);
        if (peer) {
            peer->waited = true;
            s_ask (self, peer);
            asked++;
        }
    }
    if (asked == 0) {
        return 0; //  no peer: nothing to wait for
    }
    self->timer = zloop_timer (self->loop, RINGCHECK_RESEND_MS, 0, s_on_timer, self);
    if (self->timer < 0) {
        return -1;
    }
    self->pending = true;
    rl_info ("ring check: asking %zu peers for their rings before serving writes (at most %d ms)",
             asked, timeout_ms);
    return 0;
}

bool
ringcheck_pending (ringcheck_t *self)
{
    assert (self);
    if (!self->pending) {
        return false;
    }
    size_t missing = 0;
    char names[256] = "";
    for (size_t i = 0; i < self->count; i++) {
        s_peer_t *peer = self->peers[i];
        if (peer->waited && !peer->answered) {
            if (missing++ < 8) {
                size_t used = strlen (names);
                snprintf (names + used, sizeof names - used, "%s%s", used ? ", " : "", peer->name);
            }
        }
    }
    if (missing > 0 && zclock_mono () < self->deadline_ms) {
        return true;
    }
    self->pending = false; //  invariant 2
    zloop_timer_end (self->loop, self->timer);
    self->timer = -1;
    if (missing > 0) {
        rl_warn ("ring check: %zu peers did not answer within %d ms (%s): serving without their "
                 "rings; a higher epoch in a later reply of theirs is checked then "
                 "(docs/replication.md)",
                 missing, self->timeout_ms, names);
    } else {
        rl_info ("ring check: every peer answered");
    }
    return false;
}

void
ringcheck_ask (ringcheck_t *self, const ring_t *ring, size_t index)
{
    assert (self && ring && index < ring_shard_count (ring));
    //  Every reply of a peer may carry the epoch: the rate is checked first.
    const char *name = ring_shard_name (ring, index);
    for (size_t i = 0; i < self->count; i++) {
        if (strcmp (self->peers[i]->name, name) == 0 && self->peers[i]->sent_ms != 0
            && zclock_mono () - self->peers[i]->sent_ms < RINGCHECK_ASK_MS) {
            return;
        }
    }
    s_peer_t *peer = s_peer (self, ring, index);
    if (peer) {
        s_ask (self, peer);
    }
}
