/*  client.c: see client.h.

    DESIGN
    One DEALER socket with ZMQ_IMMEDIATE: a request goes only to an
    endpoint with a live connection, so a dead router never swallows it; a
    send waits (up to the call's timeout) for some connection to exist. A
    call encodes the header, sends one frame (DEALER adds no envelope, so
    the ROUTER on the other side sees identity + payload), then polls until
    the matching reply or the deadline. Request ids are per client, starting
    from a random value so that two clients that share a router never
    confuse each other's ids in logs.

    Pipelined requests are remembered by id in a window of at most
    RL_CLIENT_WINDOW_MAX (a linear scan: O(window) per reply). A reply to one
    of them that arrives while a blocking call waits is kept in a stash
    (at most one per request in the window) for rl_client_recv.

    The retry helpers only ever resend records with the ids they were given:
    an open outcome is settled by asking again, never by paying again.

    The pipelined calls are in client_pipe.c (over client_internal.h), the
    admin calls and the fan-outs in client_admin.c.

    Security is process-wide (s_curve): a keypair, a default server key and
    a table of server keys by endpoint, applied by rl_client_connect to
    every socket before it connects (libzmq copies the options at connect
    time, so one DEALER may pin a different key per endpoint).

    INVARIANTS
    1. A call that returns 0 has checked the reply: well formed
       (codec_check_reply), the request's id and operation and, for the
       typed calls, the record count the operation implies; anything else
       is RL_CLIENT_ERR_REPLY.
    2. The window holds at most `window` ids; the stash holds only replies
       to ids in the window (a cancelled id's reply is dropped when found).
    3. Nothing read from the network is asserted on.

    LIMITS
    RL_BATCH_RECORDS_MAX records per call, RL_CLIENT_WINDOW_MAX requests in
    flight, RL_CLIENT_ATTEMPTS_MAX attempts per retry helper.
*/
#include "client.h"
#include "client_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "codec.h"
#include "failpoint.h"

//  Process-wide security settings (set at start-up, read-only afterwards).
static struct {
    zcert_t *cert;       //  borrowed; NULL: plain TCP
    char server_key[41]; //  default server key, "" if none
    zhashx_t *keys;      //  endpoint -> malloc'd Z85 key
} s_curve;

void
rl_client_set_curve (void *cert, const char *server_key)
{
    s_curve.cert = (zcert_t *) cert;
    s_curve.server_key[0] = 0;
    if (server_key && strlen (server_key) == 40) {
        memcpy (s_curve.server_key, server_key, 41);
    }
}

static void
s_key_free (void **item)
{
    free (*item);
    *item = NULL;
}

int
rl_client_add_server_key (const char *endpoint, const char *key)
{
    assert (endpoint && key);
    uint8_t raw[32];
    if (strlen (key) != 40 || !zmq_z85_decode (raw, key)) {
        return -1;
    }
    if (!s_curve.keys) {
        s_curve.keys = zhashx_new ();
        if (!s_curve.keys) {
            return -1;
        }
        zhashx_set_destructor (s_curve.keys, s_key_free);
    }
    char *copy = strdup (key);
    if (!copy) {
        return -1;
    }
    zhashx_update (s_curve.keys, endpoint, copy);
    return 0;
}

void
rl_client_clear_curve (void)
{
    zhashx_destroy (&s_curve.keys);
    s_curve.cert = NULL;
    s_curve.server_key[0] = 0;
}

int
rl_client_connect (void *sock, const char *endpoint)
{
    assert (sock && endpoint);
    if (s_curve.cert) {
        const char *key = s_curve.keys ? zhashx_lookup (s_curve.keys, endpoint) : NULL;
        if (!key) {
            key = s_curve.server_key[0] ? s_curve.server_key : NULL;
        }
        if (!key) {
            return -1; //  never in clear when security is on
        }
        zcert_apply (s_curve.cert, sock);
        zsock_set_curve_serverkey (sock, key);
    }
    return zsock_connect (sock, "%s", endpoint) == 0 ? 0 : -1;
}

//  Handshake monitors -------------------------------------------------------------
//
//  With CURVE on, a server whose key is not the one given for it closes the
//  connection in the handshake, and one that refuses the client's key says
//  so in it; from the sending side both look like a server that is down.
//  A monitor of the socket's handshake events (zmq_socket_monitor) tells
//  them apart. Its events wait in an inproc pipe with no limit: libzmq's
//  I/O thread blocks on a full monitor pipe (libzmq issue 3575), and a
//  socket that retries a handshake every 100 ms adds 10 a second. So a
//  monitor is for a socket that lives as long as one call (the fan-outs),
//  and monitoring stops before the socket closes.

#define S_HANDSHAKE_FAILURES_MIN 2 //  closed handshakes that say "not its key"

zsock_t *
client_i_monitor_new (zsock_t *sock)
{
    assert (sock);
    if (!s_curve.cert) {
        return NULL;
    }
    static atomic_uint_fast64_t s_monitors;
    char endpoint[96];
    snprintf (endpoint, sizeof endpoint, "inproc://rl-client-handshake-%d-%" PRIuFAST64,
              (int) getpid (), atomic_fetch_add (&s_monitors, 1));
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                 | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, events) != 0) {
        return NULL; //  no diagnosis, the call goes on
    }
    zsock_t *reader = zsock_new (ZMQ_PAIR);
    if (reader) {
        zsock_set_rcvhwm (reader, 0); //  no limit: see above
        zsock_set_linger (reader, 0);
    }
    if (!reader || zsock_connect (reader, "%s", endpoint) != 0) {
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        zsock_destroy (&reader);
    }
    return reader;
}

int
client_i_monitor_verdict (zsock_t *monitor)
{
    if (!monitor) {
        return 0;
    }
    size_t failed = 0, refused = 0, succeeded = 0;
    void *handle = zsock_resolve (monitor);
    for (;;) {
        zmq_msg_t event, address;
        zmq_msg_init (&event);
        zmq_msg_init (&address);
        int got = zmq_msg_recv (&event, handle, ZMQ_DONTWAIT);
        if (got >= 0 && zmq_msg_more (&event)) {
            zmq_msg_recv (&address, handle, ZMQ_DONTWAIT);
        }
        uint16_t kind = 0;
        uint32_t value = 0;
        if (got >= 6) {
            memcpy (&kind, zmq_msg_data (&event), sizeof kind);
            memcpy (&value, (const uint8_t *) zmq_msg_data (&event) + 2, sizeof value);
        }
        zmq_msg_close (&event);
        zmq_msg_close (&address);
        if (got < 0) {
            break;
        }
        succeeded += kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
        //  The ZAP status: 400 is "denied"; 300 and 500 are the server's
        //  own trouble, not this key's.
        refused += kind == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == 400;
        failed += kind == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                  || kind == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    }
    if (succeeded > 0) {
        return 0;
    }
    //  One connection closed in its greeting is also what a server that
    //  is stopping does (the next ones are refused, with no handshake): a
    //  wrong key closes every one, so it takes two.
    return refused > 0                          ? RL_CLIENT_ERR_REFUSED
           : failed >= S_HANDSHAKE_FAILURES_MIN ? RL_CLIENT_ERR_HANDSHAKE
                                                : 0;
}

void
client_i_monitor_destroy (zsock_t *sock, zsock_t **monitor_p)
{
    assert (monitor_p);
    if (*monitor_p) {
        if (sock) {
            zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        }
        zsock_destroy (monitor_p);
    }
}

rl_client_t *
rl_client_new (const char *endpoints)
{
    assert (endpoints);
    rl_client_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->dealer = zsock_new (ZMQ_DEALER);
    self->inflight = calloc (RL_CLIENT_WINDOW_MAX, sizeof (uint64_t));
    self->stash = zlist_new ();
    if (!self->dealer || !self->inflight || !self->stash) {
        rl_client_destroy (&self);
        return NULL;
    }
    self->window = RL_CLIENT_WINDOW_DEFAULT;
    self->send_timeout_ms = RL_CLIENT_TIMEOUT_MS;
    zsock_set_linger (self->dealer, 0);
    zsock_set_immediate (self->dealer, 1);
    zsock_set_sndhwm (self->dealer, RL_CLIENT_HWM_MESSAGES);
    zsock_set_rcvhwm (self->dealer, RL_CLIENT_HWM_MESSAGES);
    zsock_set_sndtimeo (self->dealer, 0);
    char *list = strdup (endpoints);
    char *save = NULL;
    int connected = 0;
    for (char *ep = list ? strtok_r (list, ",", &save) : NULL; ep;
         ep = strtok_r (NULL, ",", &save)) {
        if (rl_client_connect (self->dealer, ep) == 0) {
            connected++;
        }
    }
    free (list);
    if (connected == 0) {
        rl_client_destroy (&self);
        return NULL;
    }
    self->next_request_id = ((uint64_t) randof (0x7fffffff) << 20) + 1;
    return self;
}

void
rl_client_destroy (rl_client_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        rl_client_t *self = *self_p;
        zsock_destroy (&self->dealer);
        if (self->stash) {
            zframe_t *frame;
            while ((frame = zlist_pop (self->stash))) {
                zframe_destroy (&frame);
            }
            zlist_destroy (&self->stash);
        }
        zframe_destroy (&self->begun);
        zframe_destroy (&self->lent);
        free (self->inflight);
        free (self);
        *self_p = NULL;
    }
}

const char *
rl_client_strerror (int rc)
{
    switch (rc) {
        case 0:
            return "ok";
        case RL_CLIENT_TIMEOUT:
            return "timeout: outcome unknown, retry with the same ids";
        case RL_CLIENT_ERR_SEND:
            return "not sent: no live connection or queue full; retry";
        case RL_CLIENT_ERR_REPLY:
            return "reply did not decode: outcome unknown, retry with the same ids";
        case RL_CLIENT_ERR_ARGS:
            return "bad arguments";
        case RL_CLIENT_ERR_WINDOW:
            return "window full: receive a reply first";
        case RL_CLIENT_INCOMPLETE:
            return "attempts used up: some outcomes unknown, retry with the same ids";
        case RL_CLIENT_ERR_NOMEM:
            return "out of memory in the client: nothing sent, or the reply lost (outcome "
                   "unknown); retry with the same ids";
        case RL_CLIENT_ERR_HANDSHAKE:
            return "the CURVE handshake failed: the public key given for this endpoint (the "
                   "ring's, or --server-key) is not the server's key; nothing reached it";
        case RL_CLIENT_ERR_REFUSED:
            return "the server refused this client's key in the CURVE handshake (not among "
                   "the keys it accepts); nothing reached it";
        default:
            return rc > 0 ? rl_status_name ((uint32_t) rc) : "unknown error";
    }
}

//  Memory for a call, or NULL (RL_CLIENT_ERR_NOMEM). Failpoint client.alloc
//  makes it fail.
void *
client_i_alloc (size_t size)
{
    return RL_FAILPOINT (CLIENT_ALLOC) == 0 ? malloc (size ? size : 1) : NULL;
}

//  Window of pipelined requests ------------------------------------------------

int
client_i_inflight_find (const rl_client_t *self, uint64_t request_id)
{
    for (size_t i = 0; i < self->inflight_count; i++) {
        if (self->inflight[i] == request_id) {
            return (int) i;
        }
    }
    return -1;
}

void
client_i_inflight_remove (rl_client_t *self, size_t i)
{
    assert (i < self->inflight_count);
    self->inflight[i] = self->inflight[--self->inflight_count];
}

//  A request frame with room for body_size bytes of body, or NULL.
zframe_t *
client_i_frame_new (size_t body_size)
{
    return RL_FAILPOINT (CLIENT_ALLOC) == 0 ? zframe_new (NULL, codec_frame_size (body_size))
                                            : NULL;
}

//  Sends a request frame (taken). Waits up to timeout_ms for a live
//  connection. 0, or RL_CLIENT_ERR_SEND (nothing sent).
int
client_i_send_frame (rl_client_t *self, zframe_t **frame_p, int timeout_ms)
{
    zsock_set_sndtimeo (self->dealer, timeout_ms > 0 ? timeout_ms : 0);
    int rc = zframe_send (frame_p, self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 0);
    if (rc != 0) {
        zframe_destroy (frame_p);
        return RL_CLIENT_ERR_SEND;
    }
    return 0;
}

//  Sends one request frame: header + body. Waits up to timeout_ms for a live
//  connection. 0, or RL_CLIENT_ERR_SEND or RL_CLIENT_ERR_NOMEM (nothing sent).
int
client_i_send (rl_client_t *self, uint16_t operation, uint64_t request_id, const void *body,
               size_t body_size, uint32_t record_count, int timeout_ms)
{
    rl_header_t header = codec_request_header (operation, request_id, record_count);
    zframe_t *frame = client_i_frame_new (body_size);
    if (!frame) {
        return RL_CLIENT_ERR_NOMEM;
    }
    codec_encode_frame (&header, body, body_size, zframe_data (frame));
    return client_i_send_frame (self, &frame, timeout_ms);
}

//  Takes a reply frame whose header decoded: copies the body out. Returns
//  like a call; RL_CLIENT_ERR_NOMEM when the body cannot be copied (the
//  reply is lost: its outcome is unknown).
int
client_i_take_reply (rl_client_t *self, zframe_t **frame_p, rl_status_t check, rl_header_t *header,
                     uint8_t **reply_p, size_t *reply_size_p)
{
    zframe_t *frame = *frame_p;
    *reply_p = NULL;
    *reply_size_p = 0;
    if (check != RL_STATUS_OK) {
        self->bad_replies++;
        zframe_destroy (frame_p);
        return RL_CLIENT_ERR_REPLY;
    }
    size_t body_size = 0;
    const uint8_t *body = codec_frame_body (zframe_data (frame), zframe_size (frame), &body_size);
    *reply_size_p = body_size;
    if (body_size > 0) {
        *reply_p = client_i_alloc (body_size);
        if (!*reply_p) {
            *reply_size_p = 0;
            zframe_destroy (frame_p);
            return RL_CLIENT_ERR_NOMEM;
        }
        memcpy (*reply_p, body, body_size);
    }
    zframe_destroy (frame_p);
    return header->status == RL_STATUS_OK ? 0 : (int) header->status;
}

//  Waits for the reply frame to request_id (any request in the window when
//  request_id is 0: that request leaves the window). Keeps replies to
//  pipelined requests that are not the one it waits for. On 0, *frame_p is
//  the reply, its header in *header and codec_check_reply's verdict in
//  *check_p. A reply already queued is taken even when timeout_ms is 0.
int
client_i_receive_frame (rl_client_t *self, uint64_t request_id, int timeout_ms, rl_header_t *header,
                        zframe_t **frame_p, rl_status_t *check_p)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    bool first = true;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 && !first) {
            return RL_CLIENT_TIMEOUT;
        }
        first = false;
        zframe_t *frame = zframe_recv_nowait (self->dealer);
        if (!frame) {
            if (left <= 0) {
                return RL_CLIENT_TIMEOUT;
            }
            zmq_pollitem_t item = {zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0};
            if (zmq_poll (&item, 1, (long) left) < 0) {
                return RL_CLIENT_TIMEOUT; //  interrupted: the caller decides
            }
            continue;
        }
        rl_status_t status = codec_check_reply (zframe_data (frame), zframe_size (frame), header);
        if (status != RL_STATUS_OK && !codec_frame_has_header (zframe_size (frame))) {
            self->bad_replies++;
            zframe_destroy (&frame);
            continue;
        }
        int slot = client_i_inflight_find (self, header->request_id);
        if ((request_id == 0 && slot >= 0)
            || (request_id != 0 && header->request_id == request_id)) {
            if (request_id == 0) {
                client_i_inflight_remove (self, (size_t) slot);
            }
            *frame_p = frame;
            *check_p = status;
            return 0;
        }
        if (slot >= 0) {
            if (zlist_append (self->stash, frame) != 0) { //  kept for rl_client_recv
                zframe_destroy (&frame); //  out of memory: its rl_client_recv times out
            }
        } else {
            self->stale_replies++;
            zframe_destroy (&frame);
        }
    }
}

//  Waits for the reply to request_id (any request in the window when
//  request_id is 0) and copies its body out.
int
client_i_receive (rl_client_t *self, uint64_t request_id, int timeout_ms, rl_header_t *header,
                  uint8_t **reply_p, size_t *reply_size_p)
{
    zframe_t *frame = NULL;
    rl_status_t check = RL_STATUS_OK;
    int rc = client_i_receive_frame (self, request_id, timeout_ms, header, &frame, &check);
    if (rc != 0) {
        return rc;
    }
    return client_i_take_reply (self, &frame, check, header, reply_p, reply_size_p);
}

//  A reply to a request in the window that a blocking call kept, taking the
//  request out of the window; NULL when there is none. Drops the replies to
//  requests cancelled since.
zframe_t *
client_i_stash_take (rl_client_t *self, rl_header_t *header, rl_status_t *check_p)
{
    zframe_t *frame = zlist_pop (self->stash);
    while (frame) {
        *check_p = codec_check_reply (zframe_data (frame), zframe_size (frame), header);
        int slot = client_i_inflight_find (self, header->request_id);
        if (slot >= 0) {
            client_i_inflight_remove (self, (size_t) slot);
            return frame;
        }
        zframe_destroy (&frame); //  cancelled since
        frame = zlist_pop (self->stash);
    }
    return NULL;
}

int
rl_client_call (rl_client_t *self, uint16_t operation, const void *body, size_t body_size,
                uint32_t record_count, int timeout_ms, rl_header_t *reply_header, uint8_t **reply_p,
                size_t *reply_size_p)
{
    assert (self && reply_header && reply_p && reply_size_p);
    assert (body_size == 0 || body);
    *reply_p = NULL;
    *reply_size_p = 0;
    uint64_t request_id = self->next_request_id++;
    int64_t started = zclock_mono ();
    int rc = client_i_send (self, operation, request_id, body, body_size, record_count, timeout_ms);
    if (rc != 0) {
        return rc;
    }
    int left = timeout_ms - (int) (zclock_mono () - started);
    rc = client_i_receive (self, request_id, left > 0 ? left : 0, reply_header, reply_p,
                           reply_size_p);
    if (rc >= 0 && reply_header->operation != operation) {
        free (*reply_p);
        *reply_p = NULL;
        return RL_CLIENT_ERR_REPLY;
    }
    return rc;
}

//  Encodes `count` records with `encode`, calls, and checks the reply count.
typedef void (s_encode_fn) (const void *record, uint8_t *out);

static int
s_call_records (rl_client_t *self, uint16_t op, const void *records, size_t count, size_t in_size,
                size_t in_record_size, s_encode_fn *encode, size_t expect_count,
                size_t reply_record_size, int timeout_ms, uint8_t **reply_p, size_t *reply_count_p)
{
    if (count > RL_BATCH_RECORDS_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    uint8_t *body = count ? client_i_alloc (count * in_record_size) : NULL;
    if (count > 0 && !body) {
        return RL_CLIENT_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        encode ((const uint8_t *) records + i * in_size, body + i * in_record_size);
    }
    rl_header_t reply_header;
    size_t reply_size = 0;
    int rc = rl_client_call (self, op, body, count * in_record_size, (uint32_t) count, timeout_ms,
                             &reply_header, reply_p, &reply_size);
    free (body);
    if (rc != 0) {
        return rc;
    }
    size_t reply_count = reply_header.record_count;
    if (reply_size != reply_count * reply_record_size
        || (expect_count != SIZE_MAX && reply_count != expect_count)) {
        free (*reply_p);
        *reply_p = NULL;
        return RL_CLIENT_ERR_REPLY;
    }
    if (reply_count_p) {
        *reply_count_p = reply_count;
    }
    return 0;
}

static void
s_enc_account (const void *r, uint8_t *out)
{
    codec_encode_account (r, out);
}

static void
s_enc_transfer (const void *r, uint8_t *out)
{
    codec_encode_transfer (r, out);
}

static void
s_enc_id (const void *r, uint8_t *out)
{
    codec_encode_id (*(const rl_id_t *) r, out);
}

static void
s_enc_filter (const void *r, uint8_t *out)
{
    codec_encode_filter (r, out);
}

static int
s_create (rl_client_t *self, uint16_t op, const void *records, size_t count, size_t in_size,
          s_encode_fn *encode, rl_result_rec_t *results, int timeout_ms)
{
    uint8_t *reply = NULL;
    int rc = s_call_records (self, op, records, count, in_size, RL_ACCOUNT_SIZE, encode, count,
                             RL_RESULT_SIZE, timeout_ms, &reply, NULL);
    if (rc == 0) {
        for (size_t i = 0; i < count; i++) {
            codec_decode_result (reply + i * RL_RESULT_SIZE, &results[i]);
        }
    }
    free (reply);
    return rc;
}

int
rl_client_create_accounts (rl_client_t *self, const rl_account_t *accounts, size_t count,
                           rl_result_rec_t *results, int timeout_ms)
{
    return s_create (self, RL_OP_CREATE_ACCOUNTS, accounts, count, sizeof (rl_account_t),
                     s_enc_account, results, timeout_ms);
}

int
rl_client_create_transfers (rl_client_t *self, const rl_transfer_t *transfers, size_t count,
                            rl_result_rec_t *results, int timeout_ms)
{
    return s_create (self, RL_OP_CREATE_TRANSFERS, transfers, count, sizeof (rl_transfer_t),
                     s_enc_transfer, results, timeout_ms);
}

int
rl_client_lookup_accounts (rl_client_t *self, const rl_id_t *ids, size_t count, rl_account_t *out,
                           int timeout_ms)
{
    uint8_t *reply = NULL;
    int rc = s_call_records (self, RL_OP_LOOKUP_ACCOUNTS, ids, count, sizeof (rl_id_t), RL_ID_SIZE,
                             s_enc_id, count, RL_ACCOUNT_SIZE, timeout_ms, &reply, NULL);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        codec_decode_account (reply + i * RL_ACCOUNT_SIZE, &out[i]);
    }
    free (reply);
    return rc;
}

int
rl_client_lookup_transfers (rl_client_t *self, const rl_id_t *ids, size_t count, rl_transfer_t *out,
                            int timeout_ms)
{
    uint8_t *reply = NULL;
    int rc = s_call_records (self, RL_OP_LOOKUP_TRANSFERS, ids, count, sizeof (rl_id_t), RL_ID_SIZE,
                             s_enc_id, count, RL_TRANSFER_SIZE, timeout_ms, &reply, NULL);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        codec_decode_transfer (reply + i * RL_TRANSFER_SIZE, &out[i]);
    }
    free (reply);
    return rc;
}

int
rl_client_get_account_transfers (rl_client_t *self, const rl_filter_t *filter, rl_transfer_t *out,
                                 size_t *count_p, int timeout_ms)
{
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_call_records (self, RL_OP_GET_ACCOUNT_TRANSFERS, filter, 1, sizeof (*filter),
                             RL_FILTER_SIZE, s_enc_filter, SIZE_MAX, RL_TRANSFER_SIZE, timeout_ms,
                             &reply, &count);
    if (rc == 0 && count > filter->limit) {
        rc = RL_CLIENT_ERR_REPLY;
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        codec_decode_transfer (reply + i * RL_TRANSFER_SIZE, &out[i]);
    }
    *count_p = rc == 0 ? count : 0;
    free (reply);
    return rc;
}

int
rl_client_status (rl_client_t *self, rl_status_rec_t *out, int timeout_ms)
{
    uint8_t *reply = NULL;
    int rc = s_call_records (self, RL_OP_STATUS, NULL, 0, 0, 0, NULL, 1, RL_STATUS_SIZE, timeout_ms,
                             &reply, NULL);
    if (rc == 0) {
        codec_decode_status (reply, out);
    }
    free (reply);
    return rc;
}

int
rl_client_repl_status (rl_client_t *self, rl_repl_rec_t out[RL_REPL_RECORDS_MAX], size_t *count_p,
                       int timeout_ms)
{
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_call_records (self, RL_OP_REPL_STATUS, NULL, 0, 0, 0, NULL, SIZE_MAX, RL_REPL_SIZE,
                             timeout_ms, &reply, &count);
    if (rc == 0 && (count == 0 || count > RL_REPL_RECORDS_MAX)) {
        rc = RL_CLIENT_ERR_REPLY; //  codec_check_reply bounds it: 1..RL_REPL_RECORDS_MAX
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        codec_decode_repl (reply + i * RL_REPL_SIZE, &out[i]);
    }
    *count_p = rc == 0 ? count : 0;
    free (reply);
    return rc;
}

int
rl_client_load_ring (rl_client_t *self, const uint8_t *blob, size_t size, int timeout_ms)
{
    rl_header_t header;
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    int rc = rl_client_call (self, RL_OP_LOAD_RING, blob, size, 1, timeout_ms, &header, &reply,
                             &reply_size);
    free (reply);
    return rc;
}

int
rl_client_get_ring (rl_client_t *self, uint8_t **blob_p, size_t *size_p, int timeout_ms)
{
    rl_header_t header;
    return rl_client_call (self, RL_OP_GET_RING, NULL, 0, 0, timeout_ms, &header, blob_p, size_p);
}

//  Retry helpers ---------------------------------------------------------------

//  True when a result leaves the outcome open for the retry helpers:
//  infrastructure codes (2..15) and codes this version does not know.
static bool
s_result_is_open (uint32_t result)
{
    rl_result_class_t result_class = rl_result_class (result);
    return result_class == RL_RESULT_CLASS_INFRASTRUCTURE
           || result_class == RL_RESULT_CLASS_UNKNOWN;
}

//  Message statuses after which the same request may be sent again.
static bool
s_status_is_retryable (int rc)
{
    return rc == RL_CLIENT_TIMEOUT || rc == RL_CLIENT_ERR_SEND || rc == RL_CLIENT_ERR_REPLY
           || rc == RL_STATUS_BUSY || rc == RL_STATUS_UNAVAILABLE || rc == RL_STATUS_TIMEOUT
           || rc == RL_STATUS_STORAGE_ERROR || rc == RL_STATUS_WRONG_SHARD
           || rc == RL_STATUS_FROZEN;
}

//  Linked chains (docs/payments.md): a chain is sent again whole or not at
//  all, so that a resend never makes a shorter chain of some of its
//  members. open[k]: the outcome of record k is open. A chain with a
//  member whose own outcome is open (busy, outcome_unknown, ...) goes again
//  whole, same ids, same order; otherwise it is decided, and its
//  linked_event_failed and linked_event_chain_open answers are final
//  (nothing of the chain was applied by this call).
static void
s_chains_open (const rl_transfer_t *t, size_t count, const rl_result_rec_t *results, bool *open)
{
    size_t start = 0;
    while (start < count) {
        size_t end = start; //  the chain [start, end]: linked records and the one closing them
        while (end + 1 < count && (t[end].flags & RL_TRANSFER_LINKED)) {
            end++;
        }
        bool chain = end > start || (t[start].flags & RL_TRANSFER_LINKED);
        bool any = false;
        for (size_t k = start; k <= end; k++) {
            uint32_t r = results[k].result;
            open[k] = s_result_is_open (r);
            any = any
                  || (open[k] && r != RL_LINKED_EVENT_FAILED && r != RL_LINKED_EVENT_CHAIN_OPEN);
        }
        for (size_t k = start; chain && k <= end; k++) {
            open[k] = any;
        }
        start = end + 1;
    }
}

static int
s_create_retry (rl_client_t *self, uint16_t op, const void *records, size_t count, size_t in_size,
                s_encode_fn *encode, rl_result_rec_t *results, int timeout_ms, int attempts_max)
{
    if (count > RL_BATCH_RECORDS_MAX || attempts_max < 1 || attempts_max > RL_CLIENT_ATTEMPTS_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    for (size_t i = 0; i < count; i++) {
        results[i] = (rl_result_rec_t){.index = (uint32_t) i, .result = RL_OUTCOME_UNKNOWN};
    }
    size_t *open = client_i_alloc (count * sizeof (size_t));
    uint8_t *batch = open ? client_i_alloc (count * in_size) : NULL;
    rl_result_rec_t *batch_results = batch ? client_i_alloc (count * sizeof (rl_result_rec_t))
                                           : NULL;
    bool *is_open = batch_results ? client_i_alloc (count * sizeof (bool) + 1) : NULL;
    if (!is_open) {
        free (batch_results);
        free (open);
        free (batch);
        return RL_CLIENT_ERR_NOMEM; //  nothing sent: every record outcome_unknown, none applied
    }
    for (size_t i = 0; i < count; i++) {
        open[i] = i;
    }
    size_t open_count = count;
    int backoff_ms = RL_CLIENT_RETRY_BACKOFF_MS_MIN;
    int rc = 0;
    bool first = true;
    //  The helper's deadline: as long as attempts_max attempts that all time
    //  out. An attempt whose open records are all `frozen` (a migration's
    //  short freeze, or data on its way) uses none of attempts_max: frozen
    //  is retried until this deadline, and a record still frozen then is
    //  answered `frozen` (definitely not applied by that attempt).
    int64_t deadline = zclock_mono () + (int64_t) timeout_ms * attempts_max;
    for (int attempt = 0; attempt < attempts_max && (open_count > 0 || first); attempt++) {
        first = false;
        for (size_t k = 0; k < open_count; k++) {
            memcpy (batch + k * in_size, (const uint8_t *) records + open[k] * in_size, in_size);
        }
        rc = s_create (self, op, batch, open_count, in_size, encode, batch_results, timeout_ms);
        bool pause = false, all_frozen = false;
        if (rc == 0) {
            for (size_t k = 0; k < open_count; k++) {
                is_open[k] = s_result_is_open (batch_results[k].result);
            }
            if (op == RL_OP_CREATE_TRANSFERS) {
                s_chains_open ((const rl_transfer_t *) (const void *) batch, open_count,
                               batch_results, is_open);
            }
            size_t still = 0;
            all_frozen = true;
            for (size_t k = 0; k < open_count; k++) {
                uint32_t result = batch_results[k].result;
                if (is_open[k]) {
                    pause = pause || result != RL_OUTCOME_UNKNOWN; //  backpressure
                    all_frozen = all_frozen && result == RL_FROZEN;
                    results[open[k]].result = result == RL_FROZEN ? RL_FROZEN : RL_OUTCOME_UNKNOWN;
                    open[still++] = open[k];
                } else {
                    results[open[k]] = (rl_result_rec_t){.index = (uint32_t) open[k],
                                                         .result = result,
                                                         .timestamp = batch_results[k].timestamp};
                }
            }
            open_count = still;
        } else if (s_status_is_retryable (rc)) {
            pause = rc != RL_CLIENT_TIMEOUT; //  a timeout has waited already
            for (size_t k = 0; k < open_count; k++) {
                results[open[k]].result = RL_OUTCOME_UNKNOWN; //  no answer this time
            }
        } else {
            break; //  the request itself is wrong: retrying cannot help
        }
        if (all_frozen && open_count > 0 && zclock_mono () + backoff_ms < deadline) {
            attempt--; //  frozen uses no attempt until the deadline
        }
        if (pause && open_count > 0 && attempt + 1 < attempts_max) {
            zclock_sleep (backoff_ms);
            backoff_ms = backoff_ms * 2 > RL_CLIENT_RETRY_BACKOFF_MS_MAX
                             ? RL_CLIENT_RETRY_BACKOFF_MS_MAX
                             : backoff_ms * 2;
        }
    }
    free (open);
    free (batch);
    free (batch_results);
    free (is_open);
    if (rc != 0 && !s_status_is_retryable (rc)) {
        return rc;
    }
    return open_count == 0 ? 0 : RL_CLIENT_INCOMPLETE;
}

int
rl_client_create_accounts_retry (rl_client_t *self, const rl_account_t *accounts, size_t count,
                                 rl_result_rec_t *results, int timeout_ms, int attempts_max)
{
    return s_create_retry (self, RL_OP_CREATE_ACCOUNTS, accounts, count, sizeof (rl_account_t),
                           s_enc_account, results, timeout_ms, attempts_max);
}

int
rl_client_create_transfers_retry (rl_client_t *self, const rl_transfer_t *transfers, size_t count,
                                  rl_result_rec_t *results, int timeout_ms, int attempts_max)
{
    return s_create_retry (self, RL_OP_CREATE_TRANSFERS, transfers, count, sizeof (rl_transfer_t),
                           s_enc_transfer, results, timeout_ms, attempts_max);
}
