/*  shards.c: the router's view of the shards: their connections, the ring,
    the sub-requests in flight to them, and the ring refresh.

    SOCKETS
    One DEALER per shard of the ring (ZMQ_IMMEDIATE: a send to a shard with
    no live connection fails at once instead of queueing; sndtimeo 0), read
    by the router's zloop (router_on_shard_readable).

    A SHARD'S LIFE (r_shard_t)
        in the ring --(a new ring drops it)--> retired
        retired --(no sub-request in flight)--> reader ended (not polled)
        reader ended --(one tick later)--> closed and freed
    A new ring keeps the connection of every shard whose name and endpoint
    are unchanged, opens the new ones and retires the rest.

    A SUB-REQUEST'S LIFE (r_sub_t)
    A slot of a fixed table; its request id is (generation << 16 | slot), so
    a reply finds its slot in O(1) and a late reply to a freed or reused slot
    is recognised by the id and discarded (counted). A sub-request is freed
    by its reply or when it expires (deadline after its send); until then it
    counts against its shard's in-flight bound, whatever happened to the
    client request it served.

    THE RING REFRESH
        idle --(tick: refresh_ms passed, or a reply showed a newer epoch)-->
        active (one get_ring sub-request, not linked in the FIFO, to the
        shard that showed the newer epoch, or, when there is none or its
        connection is down, to the shards in turn)
        active --(answer, or RL_ROUTER_RING_FETCH_TIMEOUT_MS)--> idle;
        a newer ring is adopted, then waiting records are sent again; a
        ring whose epoch is more than --max-epoch-jump above the one
        served is refused like a shard's load_ring refuses it (counted,
        logged), and the router keeps its ring.

    THE DEADLINE CHECK (the order of timeouts at run time)
    The order prepare < shard deadline < router deadline < client timeout
    must hold for the configuration that runs, not only for the defaults.
    Each shard refuses to start with a prepare timeout at or above its own
    deadline; the router refuses a --deadline-ms at or below
    --shard-deadline-ms. What links the two is checked here: every
    refresh_ms (and at the first tick after a shard's connection opens,
    since a send succeeds only once it is up), the router polls each shard
    of its ring with status (one poll per shard in flight, linked in the
    FIFO so that it expires like any sub-request). A shard whose reported
    deadline_ms exceeds --shard-deadline-ms breaks the order: a create
    whose credit shard is unreachable could then be answered
    outcome_unknown by the router before its shard answers aborted. Each
    such answer is counted (status deadline_errors); it is logged as an
    error when a shard starts breaking the order, and again when it is
    back in order. A shard that reports no deadline (0) is not judged.

    INVARIANTS
    1. shards[i] is the connection of ring shard i, for the ring installed;
       a failed adoption leaves both the ring and shards as they were.
    2. A shard's inflight counts exactly its sub-requests sent and not yet
       freed; a retired shard is closed only when it reaches 0, and after
       the loop stopped polling it.
    3. At most one refresh is in flight; its slot is never in the FIFO.
    4. Sub-request ids are never 0 and never reused while a reply to the
       old use could still match (the generation grows at every use).

    LIMITS
    RL_ROUTER_SUBS_MAX sub-requests (a 16-bit slot), at most
    RL_ROUTER_INFLIGHT_PER_SHARD_MAX per shard; RL_SHARDS_MAX shards.
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "codec.h"
#include "failpoint.h"
#include "log.h"
#include "router.h"

//  Shards and the ring --------------------------------------------------------

static r_shard_t *
s_shard_new (router_t *self, const char *name, const char *endpoint, const char *ring_key)
{
    r_shard_t *shard = calloc (1, sizeof (*shard));
    if (!shard) {
        return NULL;
    }
    shard->router = self;
    shard->created_ms = zclock_mono ();
    snprintf (shard->name, sizeof (shard->name), "%s", name);
    snprintf (shard->endpoint, sizeof (shard->endpoint), "%s", endpoint);
    snprintf (shard->key, sizeof (shard->key), "%s", ring_key);
    shard->dealer = zsock_new (ZMQ_DEALER);
    if (!shard->dealer) {
        free (shard);
        return NULL;
    }
    char key[RL_KEY_TEXT_SIZE];
    if (rl_auth_peer_key (self->auth, name, ring_key, key) != 0
        || rl_auth_client (self->auth, shard->dealer, key) != 0) {
        rl_error ("shard %s: no public key in the ring (or shard/%s.key in the key sets): "
                  "never connecting in clear",
                  name, name);
        zsock_destroy (&shard->dealer);
        free (shard);
        return NULL;
    }
    zsock_set_linger (shard->dealer, 0);
    zsock_set_immediate (shard->dealer, 1);
    zsock_set_sndtimeo (shard->dealer, 0);
    zsock_set_rcvtimeo (shard->dealer, 0);
    zsock_set_sndhwm (shard->dealer, RL_ROUTER_SHARD_HWM_MESSAGES);
    zsock_set_rcvhwm (shard->dealer, RL_ROUTER_SHARD_HWM_MESSAGES);
    zsock_set_reconnect_ivl (shard->dealer, RL_ROUTER_RECONNECT_MS);
    zsock_set_reconnect_ivl_max (shard->dealer, RL_ROUTER_RECONNECT_MS_MAX);
    //  A reply is one frame, a ring's at most: a larger one (a shard's
    //  bug, or anything at an insecure endpoint) drops the connection
    //  before the router holds it, as the client socket does.
    zsock_set_maxmsgsize (shard->dealer, RL_FRAME_SIZE_MAX);
    if (zsock_connect (shard->dealer, "%s", endpoint) != 0) {
        rl_error ("shard %s: cannot connect to %s", name, endpoint);
        zsock_destroy (&shard->dealer);
        free (shard);
        return NULL;
    }
    if (self->loop
        && zloop_reader (self->loop, shard->dealer, router_on_shard_readable, shard) != 0) {
        zsock_destroy (&shard->dealer);
        free (shard);
        return NULL;
    }
    return shard;
}

void
router_shard_destroy (r_shard_t **shard_p)
{
    if (*shard_p) {
        zsock_destroy (&(*shard_p)->dealer);
        free (*shard_p);
        *shard_p = NULL;
    }
}

//  Installs `ring` (takes it on success): keeps the connection to every shard
//  whose name, endpoint and key are unchanged, opens the new ones and retires the
//  rest (closed by router_retired_sweep once their sub-requests are gone).
int
router_ring_adopt (router_t *self, ring_t *ring)
{
    size_t count = ring_shard_count (ring);
    r_shard_t **shards = calloc (count ? count : 1, sizeof (*shards));
    if (!shards || count == 0) {
        free (shards);
        return -1;
    }
    bool *kept = calloc (self->shard_count + 1, sizeof (bool));
    if (!kept) {
        rl_error ("out of memory adopting ring epoch %" PRIu64, ring_epoch (ring));
        free (shards);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const char *name = ring_shard_name (ring, i);
        const char *endpoint = ring_shard_endpoint (ring, i);
        const char *key = ring_shard_key (ring, i);
        for (size_t j = 0; j < self->shard_count; j++) {
            r_shard_t *old = self->shards[j];
            if (!kept[j] && strcmp (old->name, name) == 0 && strcmp (old->endpoint, endpoint) == 0
                && strcmp (old->key, key) == 0) {
                shards[i] = old;
                kept[j] = true;
                break;
            }
        }
        if (!shards[i]) {
            shards[i] = s_shard_new (self, name, endpoint, key);
        }
        if (!shards[i]) {
            //  Undo: close what was opened here, keep the old ring.
            for (size_t k = 0; k <= i; k++) {
                bool is_old = false;
                for (size_t j = 0; j < self->shard_count; j++) {
                    is_old = is_old || shards[k] == self->shards[j];
                }
                if (shards[k] && !is_old) {
                    if (self->loop) {
                        zloop_reader_end (self->loop, shards[k]->dealer);
                    }
                    //  Not read yet by the loop: safe to close at once.
                    router_shard_destroy (&shards[k]);
                }
            }
            free (shards);
            free (kept);
            return -1;
        }
    }
    for (size_t j = 0; j < self->shard_count; j++) {
        if (!kept[j]) {
            self->shards[j]->retired = true;
            self->shards[j]->next = self->retired;
            self->retired = self->shards[j];
        }
    }
    free (kept);
    free (self->shards);
    self->shards = shards;
    self->shard_count = count;
    rl_info ("ring epoch %" PRIu64 " -> %" PRIu64 " (%zu shards)",
             self->ring ? ring_epoch (self->ring) : 0, ring_epoch (ring), count);
    ring_destroy (&self->ring);
    self->ring = ring;
    self->refresh_want = NULL; //  may name a retired shard; the new ring may satisfy it
    return 0;
}

//  Closes retired shards in two steps: the reader is ended once nothing is
//  in flight, and the socket is closed one tick later, when the loop no
//  longer holds it in its poll set.
void
router_retired_sweep (router_t *self)
{
    r_shard_t **link = &self->retired;
    while (*link) {
        r_shard_t *shard = *link;
        assert (shard->retired && self->refresh_want != shard);
        if (!shard->reader_ended && shard->inflight == 0) {
            zloop_reader_end (self->loop, shard->dealer);
            shard->reader_ended = true;
            shard->ended_tick = self->tick;
        } else if (shard->reader_ended && shard->inflight == 0 && self->tick > shard->ended_tick) {
            *link = shard->next;
            router_shard_destroy (&shard);
            continue;
        }
        link = &shard->next;
    }
}

int
router_owner (router_t *self, const uint8_t *id16)
{
    int owner = ring_lookup_id (self->ring, id16);
    assert (owner >= 0 && (size_t) owner < self->shard_count);
    return owner;
}

//  Sub-requests ---------------------------------------------------------------

r_sub_t *
router_sub_find (router_t *self, uint64_t id)
{
    uint32_t slot = (uint32_t) (id & SUB_SLOT_MASK);
    if (slot >= RL_ROUTER_SUBS_MAX || id == 0 || self->subs[slot].id != id) {
        return NULL;
    }
    return &self->subs[slot];
}

r_sub_t *
router_sub_alloc (router_t *self, r_shard_t *shard)
{
    if (self->sub_free_count == 0 || shard->inflight >= RL_ROUTER_INFLIGHT_PER_SHARD_MAX) {
        return NULL;
    }
    uint32_t slot = self->sub_free[--self->sub_free_count];
    r_sub_t *sub = &self->subs[slot];
    assert (sub->id == 0);
    memset (sub, 0, sizeof (*sub));
    sub->id = (++self->sub_gen << SUB_SLOT_BITS) | slot;
    sub->shard = shard;
    sub->prev = sub->next = -1;
    return sub;
}

void
router_sub_link (router_t *self, r_sub_t *sub)
{
    int32_t slot = (int32_t) (sub - self->subs);
    sub->expires_ms = zclock_mono () + self->options.deadline_ms;
    sub->prev = self->sub_tail;
    sub->next = -1;
    if (self->sub_tail >= 0) {
        self->subs[self->sub_tail].next = slot;
    } else {
        self->sub_head = slot;
    }
    self->sub_tail = slot;
}

//  Frees a sub-request; `sent`: it counted against its shard.
void
router_sub_free (router_t *self, r_sub_t *sub, bool sent, bool linked)
{
    uint32_t slot = (uint32_t) (sub - self->subs);
    if (linked) {
        if (sub->prev >= 0) {
            self->subs[sub->prev].next = sub->next;
        } else {
            self->sub_head = sub->next;
        }
        if (sub->next >= 0) {
            self->subs[sub->next].prev = sub->prev;
        } else {
            self->sub_tail = sub->prev;
        }
    }
    if (sent) {
        assert (sub->shard->inflight > 0);
        sub->shard->inflight--;
    }
    free (sub->positions);
    memset (sub, 0, sizeof (*sub));
    self->sub_free[self->sub_free_count++] = slot;
    assert (self->sub_free_count <= RL_ROUTER_SUBS_MAX);
}

//  Sends header + body to the sub's shard. 0 on success (the shard's
//  in-flight count grows); RL_STATUS_BUSY (out of memory) or
//  RL_STATUS_UNAVAILABLE (the connection takes nothing) when nothing was sent.
int
router_sub_send (router_t *self, r_sub_t *sub, const uint8_t *body, size_t body_size)
{
    rl_header_t header = codec_request_header (sub->operation, sub->id, sub->count);
    zframe_t *frame = zframe_new (NULL, codec_frame_size (body_size));
    if (!frame) {
        self->nomem++;
        rl_warn ("out of memory: a %zu-byte request for shard %s not sent", body_size,
                 sub->shard->name);
        return RL_STATUS_BUSY;
    }
    codec_encode_frame (&header, body, body_size, zframe_data (frame));
    if (zframe_send (&frame, sub->shard->dealer, ZFRAME_DONTWAIT) != 0) {
        zframe_destroy (&frame);
        return RL_STATUS_UNAVAILABLE;
    }
    sub->shard->inflight++;
    return 0;
}

//  Ring refresh --------------------------------------------------------------

//  A get_ring sent to shard, or NULL when it takes nothing (its connection
//  is down, or it or the table is full).
static r_sub_t *
s_refresh_send (router_t *self, r_shard_t *shard)
{
    r_sub_t *sub = router_sub_alloc (self, shard);
    if (!sub) {
        return NULL;
    }
    sub->refresh = true;
    sub->operation = RL_OP_GET_RING;
    if (router_sub_send (self, sub, NULL, 0) != 0) {
        router_sub_free (self, sub, false, false);
        return NULL;
    }
    return sub;
}

//  Asks target (a shard that showed a newer epoch) for its ring, or, when
//  there is none or it takes nothing, the shards in turn. A wanted shard
//  that died after its reply is unreachable for good (its connection never
//  comes back): it is forgotten, else the router would wait for it forever
//  and never learn the ring the others serve. When no shard takes the
//  request, the next tick tries again.
void
router_refresh_start (router_t *self, r_shard_t *target)
{
    if (self->refresh_active || self->shard_count == 0) {
        return;
    }
    assert (!target || !target->retired); //  its socket closes once drained
    assert (target == self->refresh_want);
    r_sub_t *sub = target && failpoint_hit (RL_FP_ROUTER_REFRESH_WANTED) == 0
                       ? s_refresh_send (self, target)
                       : NULL;
    self->refresh_want = NULL;
    for (size_t k = 0; !sub && k < self->shard_count; k++) {
        r_shard_t *candidate = self->shards[self->refresh_rr++ % self->shard_count];
        if (candidate != target) {
            sub = s_refresh_send (self, candidate);
        }
    }
    if (!sub) {
        //  The want is forgotten: the periodic refresh, due now, tries
        //  again at the next tick.
        self->refresh_next_ms = zclock_mono ();
        return;
    }
    self->refresh_active = true;
    self->refresh_slot = (uint32_t) (sub - self->subs);
    self->refresh_expires_ms = zclock_mono () + RL_ROUTER_RING_FETCH_TIMEOUT_MS;
    self->refresh_next_ms = zclock_mono () + self->options.refresh_ms;
}

void
router_refresh_done (router_t *self, r_sub_t *sub, const uint8_t *blob, size_t size)
{
    self->refresh_active = false;
    if (blob) {
        char err[256];
        ring_t *ring = ring_decode (blob, size, err, sizeof (err));
        if (!ring) {
            rl_warn ("ring from shard %s does not decode: %s", sub->shard->name, err);
        } else if (ring_epoch (ring) > ring_epoch (self->ring)
                   && ring_epoch (ring) - ring_epoch (self->ring)
                          > (uint64_t) self->options.max_epoch_jump) {
            //  The shards' own rule: a ring that jumps this far is refused.
            self->epoch_jumps_refused++;
            self->epoch_refused = ring_epoch (ring);
            rl_warn ("ring epoch %" PRIu64 " from shard %s is more than %ld (--max-epoch-jump) "
                     "above %" PRIu64 ": refused, keeping the ring served",
                     ring_epoch (ring), sub->shard->name, self->options.max_epoch_jump,
                     ring_epoch (self->ring));
            ring_destroy (&ring);
        } else if (ring_epoch (ring) > ring_epoch (self->ring)) {
            self->refreshes++;
            if (router_ring_adopt (self, ring) != 0) {
                rl_error ("cannot adopt ring epoch %" PRIu64 ": keeping %" PRIu64,
                          ring_epoch (ring), ring_epoch (self->ring));
                ring_destroy (&ring);
            }
        } else {
            ring_destroy (&ring);
        }
    }
    router_sub_free (self, sub, true, false);
    router_redispatch_waiting (self);
}

//  The deadline check (THE DEADLINE CHECK above) ----------------------------

void
router_probe_tick (router_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->shard_count; i++) {
        r_shard_t *shard = self->shards[i];
        if (shard->probe_active || now_ms < shard->probe_next_ms) {
            continue;
        }
        r_sub_t *sub = router_sub_alloc (self, shard);
        if (!sub) {
            continue; //  everything is full: the next tick tries again
        }
        sub->probe = true;
        sub->operation = RL_OP_STATUS;
        if (router_sub_send (self, sub, NULL, 0) != 0) {
            router_sub_free (self, sub, false, false);
            shard->probe_next_ms = now_ms + RL_ROUTER_RECONNECT_MS; //  not connected yet
            continue;
        }
        router_sub_link (self, sub); //  expires after the deadline, like any sub-request
        shard->probe_active = true;
        shard->probe_next_ms = now_ms + self->options.refresh_ms;
    }
}

void
router_probe_done (router_t *self, r_sub_t *sub, const rl_status_rec_t *status)
{
    assert (sub->probe && sub->shard->probe_active);
    r_shard_t *shard = sub->shard;
    shard->probe_active = false;
    if (status && status->deadline_ms > 0) {
        bool broken = status->deadline_ms > (uint64_t) self->options.shard_deadline_ms;
        if (broken) {
            self->deadline_errors++;
        }
        if (broken && !shard->order_broken) {
            rl_error ("shard %s answers within %" PRIu32 " ms (its --deadline-ms), above this "
                      "router's --shard-deadline-ms %ld: a create whose credit shard is "
                      "unreachable may be answered outcome_unknown here before its shard "
                      "answers aborted (order: prepare < shard deadline <= --shard-deadline-ms "
                      "< router deadline < client timeout); lower the shard's --deadline-ms or "
                      "raise this router's --shard-deadline-ms and --deadline-ms",
                      shard->name, status->deadline_ms, self->options.shard_deadline_ms);
        } else if (!broken && shard->order_broken) {
            rl_info ("shard %s answers within %" PRIu32 " ms: the order of timeouts holds again",
                     shard->name, status->deadline_ms);
        }
        shard->order_broken = broken;
    }
    router_sub_free (self, sub, true, true);
}
