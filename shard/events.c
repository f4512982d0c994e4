/*  events.c: the change stream of a shard's committed transfers.

    DESIGN
    The stream is the `transfers` column family itself (journal.c): every
    transfer that took effect or burned its id is one record there, keyed
    by its shard timestamp, and timestamps are assigned in commit order
    (ts = max(now, last + 1), one turn's records in one synced batch). So a
    position is a timestamp, and events_read answers the records after it,
    oldest first, as the iterator finds them. Nothing is copied or kept
    apart for the stream: it costs no write, and it reaches back as far as
    the records do, which is to the shard's first transfer (no record is
    ever deleted from that family; docs/events.md, "Retention").

    A cross-shard transfer is two records there: the debit leg, stored by
    the coordinator in the batch that logs its commit decision, and the
    credit leg, stored by the participant in the batch that applies it. So
    each leg appears once its decision is durable on its shard, with the
    transfer's id and its leg (JOURNAL_LEG, the same numbers as
    RL_EVENT_LEG_*). Attempts in flight and aborted attempts store nothing.

    POSITIONS AND INCARNATIONS
    A timestamp alone cannot tell a consumer that the shard it reads is not
    the one it read before: a shard restored from a backup goes back to an
    older history and then writes new records at other timestamps. So a
    position also names the incarnation that served it (the coordinator's:
    a counter that grows at every start and a random nonce), and the shard
    remembers, for each incarnation, where its history began: the last
    timestamp stored when it started (meta key "events.inc." + counter,
    big-endian; value: nonce, begin timestamp, 0). An incarnation's
    positions all lie at or below its end: the next incarnation's begin,
    or, for the current one, the durable head. A position is known when its
    incarnation is in the table with the same nonce and its timestamp is at
    or below that end; anything else (another nonce, an incarnation this
    store never saw or has forgotten, a timestamp past the end) is answered
    `resync`: the consumer drops what it built from this shard and reads it
    again from the beginning.

    INVARIANTS
    1. Sent <= synced: a position is served or announced only once the
       write that stored its record is synced. events_read reads the store,
       which holds only what earlier turns committed (the turn's own batch
       is written at its end), and stops at the durable head; a read's
       reply is held like any other until its turn's commit. The head
       published on the PUB socket is the one the server took when the
       sync that made it durable began (the group commit is pipelined:
       later turns may have written more, not yet synced).
    2. The table holds this incarnation, with the highest counter, before
       anything is served (events_start commits it, synced).
    3. Nothing here writes a transfer record or changes a balance: a
       refused request (bad_position, resync) changes nothing.

    LIMITS: RL_EVENTS_LIMIT_MAX records a reply; EVENTS_INCARNATIONS_MAX
    incarnations remembered (the oldest are dropped: their positions get
    resync); a notification at most once a group commit and at least once
    EVENTS_HEARTBEAT_MS; EVENTS_PUB_SNDHWM_MESSAGES queued per subscriber
    (beyond, notes are dropped for it: a subscriber that does not read can
    neither block the shard nor grow its memory). A subscriber's key must
    be in a role of the key sets (the shard's ZAP handler); the notes carry
    positions only, never a transfer.
*/
#include "events.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "journal.h"
#include "log.h"
#include "server_internal.h"

#define EVENTS_META_PREFIX  "events.inc."
#define EVENTS_META_KEY_MAX (sizeof (EVENTS_META_PREFIX) - 1 + 8)
#define EVENTS_META_VALUE   24 //  nonce, begin timestamp, 0

_Static_assert(JOURNAL_LEG_BOTH == RL_EVENT_LEG_BOTH && JOURNAL_LEG_DEBIT == RL_EVENT_LEG_DEBIT
                   && JOURNAL_LEG_CREDIT == RL_EVENT_LEG_CREDIT,
               "the stored legs are the wire's");
_Static_assert(RL_EVENTS_LIMIT_MAX *(uint64_t) RL_EVENT_SIZE + RL_HEADER_SIZE
                   <= RL_MESSAGE_SIZE_MAX,
               "a full events reply fits one message");

typedef struct {
    uint64_t counter;
    uint64_t nonce;
    uint64_t begin_ts; //  the last timestamp stored when it started
} s_incarnation_t;

struct events_t {
    s_incarnation_t table[EVENTS_INCARNATIONS_MAX]; //  by counter; the last one is ours
    size_t count;
    uint64_t synced_ts;   //  the durable head: every record at or below it is synced
    zsock_t *pub;         //  --events-bind, or NULL
    uint64_t noted_ts;    //  the head last announced
    int64_t noted_ms;     //  when (monotonic)
    events_stats_t stats; //  counted since start
    char name[RL_SHARD_NAME_SIZE_MAX];
};

static size_t
s_meta_key (uint64_t counter, uint8_t *key)
{
    size_t prefix = strlen (EVENTS_META_PREFIX);
    memcpy (key, EVENTS_META_PREFIX, prefix);
    codec_put_u64_be (key + prefix, counter);
    return prefix + 8;
}

int
events_history_has (store_t *store, uint64_t counter, uint64_t nonce)
{
    assert (store);
    uint8_t key[EVENTS_META_KEY_MAX], value[EVENTS_META_VALUE];
    size_t size = 0;
    int rc = store_get (store, STORE_CF_META, key, s_meta_key (counter, key), value, sizeof value,
                        &size);
    if (rc < 0) {
        return -1;
    }
    if (rc == 1) {
        return size == EVENTS_META_VALUE && codec_get_u64 (value) == nonce ? 1 : 0;
    }
    //  Not there: the table's oldest entry says whether it would be.
    store_iter_t *it = store_iter_new (store, STORE_CF_META);
    if (!it) {
        return -1;
    }
    size_t prefix = strlen (EVENTS_META_PREFIX);
    store_iter_seek (it, EVENTS_META_PREFIX, prefix);
    int answer = 2;
    if (store_iter_valid (it)) {
        size_t key_size = 0;
        const uint8_t *oldest = store_iter_key (it, &key_size);
        if (key_size == prefix + 8 && memcmp (oldest, EVENTS_META_PREFIX, prefix) == 0
            && codec_get_u64_be (oldest + prefix) < counter) {
            answer = 0;
        }
    }
    store_iter_destroy (&it);
    return answer;
}

int
events_history_end (store_t *store, uint64_t counter, uint64_t *end_p)
{
    assert (store && end_p);
    *end_p = UINT64_MAX;
    if (counter == UINT64_MAX) {
        return 0;
    }
    store_iter_t *it = store_iter_new (store, STORE_CF_META);
    if (!it) {
        return -1;
    }
    uint8_t key[EVENTS_META_KEY_MAX];
    size_t prefix = strlen (EVENTS_META_PREFIX);
    store_iter_seek (it, key, s_meta_key (counter + 1, key));
    int rc = 0;
    if (store_iter_valid (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *next = store_iter_key (it, &key_size);
        if (key_size == prefix + 8 && memcmp (next, EVENTS_META_PREFIX, prefix) == 0) {
            const uint8_t *value = store_iter_value (it, &value_size);
            if (value_size != EVENTS_META_VALUE) {
                rc = -1; //  a corrupt entry: cannot tell
            } else {
                *end_p = codec_get_u64 (value + 8);
            }
        }
    }
    store_iter_destroy (&it);
    return rc;
}

//  Loads the table of incarnations. 0, or -1 (logged).
static int
s_load (events_t *self, store_t *store, uint64_t current)
{
    store_iter_t *it = store_iter_new (store, STORE_CF_META);
    if (!it) {
        rl_error ("events: out of memory");
        return -1;
    }
    size_t prefix = strlen (EVENTS_META_PREFIX);
    int rc = 0;
    store_iter_seek (it, EVENTS_META_PREFIX, prefix);
    for (; store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        if (key_size < prefix || memcmp (key, EVENTS_META_PREFIX, prefix) != 0) {
            break;
        }
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != prefix + 8 || value_size != EVENTS_META_VALUE) {
            rl_error ("events: a corrupt incarnation entry (key %zu, value %zu bytes)", key_size,
                      value_size);
            rc = -1;
            break;
        }
        s_incarnation_t entry = {codec_get_u64_be (key + prefix), codec_get_u64 (value),
                                 codec_get_u64 (value + 8)};
        if (entry.counter >= current) {
            //  Only a store that lost the coordinator's counter could hold
            //  one: that history is not this store's.
            rl_warn ("events: incarnation %" PRIu64 " is not older than this one (%" PRIu64
                     "): forgotten",
                     entry.counter, current);
            uint8_t k[EVENTS_META_KEY_MAX];
            store_batch_delete (store, STORE_CF_META, k, s_meta_key (entry.counter, k));
            continue;
        }
        if (self->count == EVENTS_INCARNATIONS_MAX) {
            //  The oldest goes: its positions get resync.
            uint8_t k[EVENTS_META_KEY_MAX];
            store_batch_delete (store, STORE_CF_META, k, s_meta_key (self->table[0].counter, k));
            memmove (self->table, self->table + 1, (self->count - 1) * sizeof (self->table[0]));
            self->count--;
        }
        assert (self->count == 0 || self->table[self->count - 1].counter < entry.counter);
        self->table[self->count++] = entry;
    }
    store_iter_destroy (&it);
    return rc;
}

//  Binds the PUB socket, CURVE like the shard's own when keys are on. 0, or -1.
static int
s_bind (events_t *self, rl_auth_t *auth, const char *endpoint)
{
    self->pub = zsock_new (ZMQ_PUB);
    if (!self->pub) {
        rl_error ("events: out of sockets");
        return -1;
    }
    zsock_set_sndhwm (self->pub, EVENTS_PUB_SNDHWM_MESSAGES);
    zsock_set_linger (self->pub, 0);
    if (!rl_auth_insecure (auth)) {
        //  The shard's ZAP handler (bound at start, before any CURVE
        //  socket) admits only keys in a role.
        zsock_set_zap_domain (self->pub, RL_AUTH_ZAP_DOMAIN);
        zcert_apply (rl_auth_cert (auth), self->pub);
        zsock_set_curve_server (self->pub, 1);
    }
    if (zsock_bind (self->pub, "%s", endpoint) < 0) {
        rl_error ("events: cannot bind --events-bind %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

int
events_start (server_t *self)
{
    assert (self && !self->events && self->ledger);
    assert (store_batch_count (self->store) == 0);
    events_t *ev = calloc (1, sizeof (*ev));
    if (!ev) {
        rl_error ("events: out of memory");
        return -1;
    }
    self->events = ev;
    snprintf (ev->name, sizeof ev->name, "%s", self->options->name);
    rl_attempt_t me = coordinator_incarnation (ledger_coordinator (self->ledger));
    uint64_t head = ledger_last_timestamp (self->ledger);
    if (s_load (ev, self->store, me.counter) != 0) {
        store_batch_discard (self->store);
        return -1;
    }
    if (ev->count == EVENTS_INCARNATIONS_MAX) {
        uint8_t k[EVENTS_META_KEY_MAX];
        store_batch_delete (self->store, STORE_CF_META, k, s_meta_key (ev->table[0].counter, k));
        memmove (ev->table, ev->table + 1, (ev->count - 1) * sizeof (ev->table[0]));
        ev->count--;
    }
    ev->table[ev->count++] = (s_incarnation_t){me.counter, me.nonce, head};
    uint8_t key[EVENTS_META_KEY_MAX];
    uint8_t value[EVENTS_META_VALUE] = {0};
    codec_put_u64 (value, me.nonce);
    codec_put_u64 (value + 8, head);
    store_batch_put (self->store, STORE_CF_META, key, s_meta_key (me.counter, key), value,
                     sizeof value);
    if (store_commit (self->store) != 0) {
        rl_error ("events: cannot store this incarnation: %s", store_error (self->store));
        return -1;
    }
    ev->synced_ts = head;
    ev->noted_ms = zclock_mono ();
    if (self->options->events_bind && s_bind (ev, self->auth, self->options->events_bind) != 0) {
        return -1;
    }
    rl_info ("events: incarnation %" PRIu64 " begins after ts %" PRIu64 " (%zu remembered)%s%s",
             me.counter, head, ev->count, ev->pub ? ", notifications on " : "",
             ev->pub ? self->options->events_bind : "");
    assert (ev->count >= 1 && ev->table[ev->count - 1].counter == me.counter);
    return 0;
}

void
events_stop (server_t *self)
{
    assert (self);
    if (self->events) {
        zsock_destroy (&self->events->pub);
        free (self->events);
        self->events = NULL;
    }
}

//  Where an incarnation's positions end, or -1 when the position is not
//  one this shard knows (resync).
static int
s_known (const events_t *self, const rl_events_req_t *req)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->table[mid].counter < req->incarnation) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == self->count || self->table[lo].counter != req->incarnation
        || self->table[lo].nonce != req->nonce) {
        return -1;
    }
    uint64_t end = lo + 1 == self->count ? self->synced_ts : self->table[lo + 1].begin_ts;
    return req->timestamp <= end ? 0 : -1;
}

//  The request's rules (docs/protocol.md, "events_req").
static bool
s_valid (const rl_events_req_t *req)
{
    bool beginning_ok = req->incarnation != 0 || (req->nonce == 0 && req->timestamp == 0);
    bool reserved_zero = true;
    for (size_t i = 0; i < 4; i++) {
        reserved_zero = reserved_zero && req->reserved[i] == 0;
    }
    return beginning_ok && reserved_zero && req->limit >= 1 && req->limit <= RL_EVENTS_LIMIT_MAX
           && (req->flags & ~RL_EVENTS_FLAGS_KNOWN) == 0;
}

//  Reads up to limit records after ts, at or below the durable head, into
//  the reply body. -1 on a storage error (logged).
static int
s_read (server_t *self, const rl_events_req_t *req, uint8_t *out, size_t *count_p)
{
    events_t *ev = self->events;
    const s_incarnation_t *me = &ev->table[ev->count - 1];
    store_iter_t *it = store_iter_new (self->store, STORE_CF_TRANSFERS);
    if (!it) {
        rl_error ("events: out of memory");
        return -1;
    }
    uint8_t from[8];
    codec_put_u64_be (from, req->timestamp + 1); //  the beginning: 0 + 1
    size_t count = 0;
    int rc = 0;
    for (store_iter_seek (it, from, sizeof from); store_iter_valid (it) && count < req->limit;
         store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != 8 || value_size != RL_TRANSFER_SIZE) {
            rl_error ("events: a corrupt transfer record (key %zu, value %zu bytes)", key_size,
                      value_size);
            rc = -1;
            break;
        }
        if (codec_get_u64_be (key) > ev->synced_ts) {
            break; //  invariant 1 (the store holds no such record between turns)
        }
        rl_event_t event = {.incarnation = me->counter, .nonce = me->nonce};
        codec_decode_transfer (value, &event.transfer);
        assert (event.transfer.timestamp == codec_get_u64_be (key));
        assert (event.transfer.timestamp > req->timestamp);
        event.result = JOURNAL_RESULT (event.transfer.reserved);
        event.leg = JOURNAL_LEG (event.transfer.reserved);
        event.transfer.reserved = 0;
        if (out) {
            codec_encode_event (&event, out + count * RL_EVENT_SIZE);
        }
        count++;
    }
    store_iter_destroy (&it);
    *count_p = count;
    return rc;
}

zmsg_t *
events_handle (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    assert (self && self->events && h->operation == RL_OP_EVENTS_READ && body);
    events_t *ev = self->events;
    rl_events_req_t req;
    codec_decode_events_req (body, &req);
    rl_status_t status = RL_STATUS_OK;
    if (!s_valid (&req)) {
        status = RL_STATUS_BAD_POSITION;
    } else if (req.incarnation != 0 && s_known (ev, &req) != 0) {
        status = RL_STATUS_RESYNC;
    }
    if (status != RL_STATUS_OK) {
        if (status == RL_STATUS_RESYNC) {
            ev->stats.resyncs++;
        } else {
            ev->stats.bad_positions++;
        }
        rl_debug ("events_read %" PRIu64 ": position %" PRIu64 ".%016" PRIx64 ".%" PRIu64
                  ", limit %" PRIu32 ": %s",
                  h->request_id, req.incarnation, req.nonce, req.timestamp, req.limit,
                  rl_status_name (status));
        return server_reply_new (self, envelope, h, status, 0, 0, NULL);
    }
    //  Counted first, then read into the reply: two passes over the
    //  iterator cost less than a scratch buffer of 8190 events.
    size_t count = 0;
    if (s_read (self, &req, NULL, &count) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                      RL_EVENT_SIZE, &out);
    if (!reply) {
        return NULL;
    }
    size_t again = 0;
    if (count > 0 && (s_read (self, &req, out, &again) != 0 || again != count)) {
        //  The store cannot change between the two passes (one thread,
        //  nothing written mid-turn): only a storage error gets here. The
        //  reply is gone with its envelope: the consumer times out, retries.
        rl_error ("events: the second read of %zu events found %zu: no reply", count, again);
        zmsg_destroy (&reply);
        self->dropped++;
        return NULL;
    }
    ev->stats.reads++;
    ev->stats.events += count;
    return reply;
}

//  The 64-byte notification (docs/events.md, "Notifications").
static void
s_note (events_t *self, uint16_t kind, int64_t now_ms)
{
    assert (self->pub);
    const s_incarnation_t *me = &self->table[self->count - 1];
    uint8_t note[EVENTS_NOTE_SIZE] = {0};
    codec_put_u32 (note, EVENTS_NOTE_MAGIC);
    codec_put_u16 (note + 4, EVENTS_NOTE_VERSION);
    codec_put_u16 (note + 6, kind);
    codec_put_u64 (note + 8, me->counter);
    codec_put_u64 (note + 16, me->nonce);
    codec_put_u64 (note + 24, self->synced_ts);
    memcpy (note + 32, self->name, strlen (self->name)); //  NUL-padded, < 32 bytes
    zframe_t *frame = zframe_new (note, sizeof note);
    //  PUB never blocks: a subscriber at its high-water mark misses this
    //  one (the next note, or its own read, catches up).
    if (frame && zframe_send (&frame, self->pub, ZFRAME_DONTWAIT) == 0) {
        if (kind == EVENTS_NOTE_COMMITTED) {
            self->stats.notes++;
        } else {
            self->stats.heartbeats++;
        }
    }
    zframe_destroy (&frame); //  NULL once sent
    self->noted_ts = self->synced_ts;
    self->noted_ms = now_ms;
}

void
events_synced (server_t *self, uint64_t head)
{
    assert (self && !self->failed);
    events_t *ev = self->events;
    if (!ev) {
        return;
    }
    //  Invariant 1: head is in a synced write (the server's word), and no
    //  later than memory.
    assert (head <= ledger_last_timestamp (self->ledger));
    assert (head >= ev->synced_ts);
    ev->synced_ts = head;
    if (!ev->pub) {
        return;
    }
    int64_t now_ms = zclock_mono ();
    if (ev->synced_ts != ev->noted_ts) {
        s_note (ev, EVENTS_NOTE_COMMITTED, now_ms);
    } else if (now_ms - ev->noted_ms >= EVENTS_HEARTBEAT_MS) {
        s_note (ev, EVENTS_NOTE_HEARTBEAT, now_ms);
    }
}

void
events_stats (const server_t *self, events_stats_t *out)
{
    assert (self && out);
    *out = self->events ? self->events->stats : (events_stats_t){0};
}
