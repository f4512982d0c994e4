/*  clients.c: the router's front door, the clients' ROUTER socket.

    Reads the client messages, checks each one before it costs anything,
    answers by itself what the router knows (its status, its ring), and
    hands every other request to router.c (router_admit). Every reply to a
    client, from here or from router.c, goes out through router_reply_send,
    and every line about a client's error through router_log_client_error.

    A CLIENT MESSAGE
        envelope + payload --> no header:              dropped, counted
                           --> bad frame or operation: answered with a status
                           --> status, get_ring:       answered here
                           --> anything else:          router_admit (router.c)

    INVARIANTS
    1. Nothing read from the network is asserted on: a frame too short for
       a header is dropped (there is no request id to answer), any other
       bad request is answered with a message-level status, counted in
       `malformed`.
    2. Only client operations pass: shard-to-shard operations, and
       load_ring (an admin loads rings into the shards), are
       unknown_operation here.
    3. A create batch naming one valid id twice is refused whole
       (duplicate_id) before anything is sent, so no shard sees half of it.
    4. A reply that cannot be sent (no memory for the frame, client gone)
       is dropped and counted: the client retries. A client whose queue is
       full gets its replies parked, then dropped and counted beyond
       --reply-queue-bytes (common/replyq.h).
    5. Log lines about clients' errors are rate-limited; the lines left
       out are counted, and their number is logged with the first line of
       a later second.

    LIMITS
    RL_ROUTER_REQUESTS_PER_TURN_MAX client messages per readable event;
    RL_ROUTER_LOG_LINES_PER_S_MAX lines a second about client errors;
    a log line is cut at 511 characters.
*/
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <czmq.h>

#include "codec.h"
#include "log.h"
#include "router.h"

//  Logging of client-visible errors ---------------------------------------------

//  At most RL_ROUTER_LOG_LINES_PER_S_MAX lines a second (invariant 5).
void
router_log_client_error (router_t *self, const char *format, ...)
{
    int64_t now = zclock_mono ();
    if (now - self->log_window_ms >= 1000) {
        if (self->log_suppressed > 0) {
            rl_warn ("%" PRIu64 " client error lines suppressed", self->log_suppressed);
        }
        self->log_window_ms = now;
        self->log_lines = 0;
        self->log_suppressed = 0;
    }
    if (self->log_lines >= RL_ROUTER_LOG_LINES_PER_S_MAX) {
        self->log_suppressed++;
        return;
    }
    self->log_lines++;
    char line[512];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof (line), format, args);
    va_end (args);
    //  Not rl_warn: these lines have this budget of their own rather than
    //  one line per call site.
    rl_log_named (RL_LOG_WARN, "client_error", "%s", line);
}

//  Replies ---------------------------------------------------------------------

//  Sends the reply to `request` behind the client's envelope (taken); an
//  error status sends a bare header.
void
router_reply_send (router_t *self, zmsg_t **envelope_p, const rl_header_t *request, uint32_t status,
                   uint32_t count, const uint8_t *body, size_t body_size)
{
    if (status != RL_STATUS_OK) {
        body_size = 0; //  an error reply is a bare header
    }
    rl_header_t header = codec_reply_header (request, status, count,
                                             self->ring ? ring_epoch (self->ring) : 0);
    router_metrics_reply (self->metrics, request->operation, status);
    zframe_t *frame = zframe_new (NULL, codec_frame_size (body_size));
    if (!frame) {
        self->nomem++;
        self->dropped++; //  as if undeliverable: the client retries
        router_log_client_error (self, "out of memory: request %" PRIu64 " not answered",
                                 request->request_id);
        zmsg_destroy (envelope_p);
        return;
    }
    codec_encode_frame (&header, body, body_size, zframe_data (frame));
    zmsg_append (*envelope_p, &frame);
    //  Sent, or parked behind the client's full queue; dropped and counted
    //  by replyq when its bound is reached or the client is gone: it retries.
    replyq_send (self->replies, envelope_p);
}

//  Checks ----------------------------------------------------------------------

static int
s_id_cmp (const void *a, const void *b)
{
    const rl_id_t *x = a, *y = b;
    if (x->hi != y->hi) {
        return x->hi < y->hi ? -1 : 1;
    }
    if (x->lo != y->lo) {
        return x->lo < y->lo ? -1 : 1;
    }
    return 0;
}

//  True when a valid id appears twice in a create batch (O(n log n)). Zero
//  and int_max ids are left to the shard, which names them per record.
static bool
s_has_duplicate_id (router_t *self, uint32_t op, const uint8_t *body, uint32_t count)
{
    size_t n = 0;
    size_t record_size = codec_request_record_size (op);
    for (uint32_t i = 0; i < count; i++) {
        rl_id_t id = codec_record_id (op, body + (size_t) i * record_size);
        if (!rl_id_is_zero (id) && !rl_id_is_max (id)) {
            self->ids[n++] = id;
        }
    }
    qsort (self->ids, n, sizeof (rl_id_t), s_id_cmp);
    for (size_t i = 1; i < n; i++) {
        if (rl_id_eq (self->ids[i - 1], self->ids[i])) {
            return true;
        }
    }
    return false;
}

//  Client requests -------------------------------------------------------------

static void
s_answer_status (router_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    rl_status_rec_t status = {0};
    snprintf (status.name, sizeof (status.name), "%s", self->options.name);
    status.epoch = ring_epoch (self->ring);
    status.requests = self->requests;
    status.ring_shards = (uint32_t) self->shard_count;
    status.inflight = RL_ROUTER_PENDING_MAX - self->pending_free_count;
    //  Replies lost to a gone client or to --reply-queue-bytes count too.
    status.dropped = self->dropped + replyq_gone (self->replies) + replyq_full (self->replies);
    status.malformed = self->malformed;
    status.wrong_shard = self->wrong_shard;
    status.pid = (uint32_t) getpid ();
    status.uptime_ms = (uint64_t) (zclock_mono () - self->started_ms);
    status.deadline_ms = (uint32_t) self->options.deadline_ms; //  main.c bounds it
    status.deadline_errors = self->deadline_errors;
    status.insecure = rl_auth_insecure (self->auth);
    status.keys = (uint32_t) rl_auth_key_count (self->auth);
    status.handshakes_refused = rl_auth_refused (self->auth);
    status.unauthorized = self->unauthorized;
    status.epoch_jumps_refused = self->epoch_jumps_refused;
    uint8_t out[RL_STATUS_SIZE];
    codec_encode_status (&status, out);
    router_reply_send (self, &envelope, h, RL_STATUS_OK, 1, out, sizeof (out));
}

static void
s_answer_ring (router_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    size_t size = ring_encoded_size (self->ring);
    uint8_t *blob = router_alloc (self, size);
    if (!blob) {
        router_reply_send (self, &envelope, h, RL_STATUS_BUSY, 0, NULL, 0);
        return;
    }
    size_t written = ring_encode (self->ring, blob, size);
    assert (written == size);
    router_reply_send (self, &envelope, h, RL_STATUS_OK, 1, blob, size);
    free (blob);
}

//  One client message. Takes msg.
static void
s_handle_request (router_t *self, zmsg_t *msg)
{
    self->requests++;
    zframe_t *payload = zmsg_last (msg);
    if (!payload || zmsg_size (msg) < 2) {
        self->dropped++; //  a ROUTER always adds the identity; a payload is needed too
        zmsg_destroy (&msg);
        return;
    }
    zmsg_remove (msg, payload); //  msg keeps the envelope
    rl_header_t h = {0};
    const uint8_t *body = NULL;
    size_t body_size = 0;
    rl_status_t status = codec_parse_request (zframe_data (payload), zframe_size (payload), &h,
                                              &body, &body_size);
    if (!codec_frame_has_header (zframe_size (payload))) {
        self->dropped++; //  no request id to answer to
        rl_debug ("dropped a %zu-byte frame", zframe_size (payload));
        zframe_destroy (&payload);
        zmsg_destroy (&msg);
        return;
    }
    rl_log_request_begin (h.request_id); //  ended by the caller
    bool decoded = status == RL_STATUS_OK || status == RL_STATUS_MALFORMED
                   || status == RL_STATUS_TOO_MANY_RECORDS;
    if (decoded
        && (h.operation < RL_OP_CREATE_ACCOUNTS || h.operation > RL_OP_GET_RING
            || h.operation == RL_OP_LOAD_RING)) {
        //  Shard-to-shard operations are not served here, and rings are
        //  loaded into the shards by an admin, not through a router.
        status = RL_STATUS_UNKNOWN_OPERATION;
    }
    const char *sender = "";
    if (decoded && status != RL_STATUS_UNKNOWN_OPERATION
        && !(rl_auth_roles (self->auth, payload, &sender) & rl_op_roles (h.operation))) {
        //  The client's key holds none of the operation's roles now:
        //  refused before its body is read, counted.
        self->unauthorized++;
        router_log_client_error (self, "request %" PRIu64 " (%s) from key %s: unauthorized",
                                 h.request_id, rl_op_name (h.operation), sender);
        router_reply_send (self, &msg, &h, RL_STATUS_UNAUTHORIZED, 0, NULL, 0);
        zframe_destroy (&payload);
        return;
    }
    if (status == RL_STATUS_OK && router_op_is_create (h.operation)
        && s_has_duplicate_id (self, h.operation, body, h.record_count)) {
        status = RL_STATUS_DUPLICATE_ID;
    }
    if (status != RL_STATUS_OK) {
        self->malformed++;
        router_log_client_error (self, "request %" PRIu64 " (op %u): %s", h.request_id, h.operation,
                                 rl_status_name (status));
        router_reply_send (self, &msg, &h, status, 0, NULL, 0);
        zframe_destroy (&payload);
        return;
    }
    switch (h.operation) {
        case RL_OP_STATUS:
            s_answer_status (self, msg, &h);
            zframe_destroy (&payload);
            break;
        case RL_OP_GET_RING:
            s_answer_ring (self, msg, &h);
            zframe_destroy (&payload);
            break;
        default:
            router_admit (self, msg, payload, &h);
            break;
    }
}

int
router_on_client_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    router_t *self = arg;
    replyq_flush (self->replies); //  what waited behind full queues goes first
    for (int i = 0; i < RL_ROUTER_REQUESTS_PER_TURN_MAX; i++) {
        zmsg_t *msg = zmsg_recv (sock); //  rcvtimeo 0: NULL when drained
        if (!msg) {
            break;
        }
        s_handle_request (self, msg);
        rl_log_request_end ();
    }
    return 0;
}
