/*  client_pipe.c: the client library's pipelined calls (see client.h).

    DESIGN
    A request sent with rl_client_send (or rl_client_send_begin/_end) is
    remembered by id in the client's window and answered by rl_client_recv
    (or rl_client_recv_borrow), so a caller keeps many batches in flight on
    one connection; rl_client_wait_any waits on many clients at once. The
    window, the stash of replies that a blocking call received, and the
    framing are client.c's (client_internal.h); this file only drives them.

    INVARIANTS
    1. At most `window` requests are in flight; a request enters the window
       only once its frame was sent.
    2. `begun` is a frame not yet sent (at most one), `lent` the last reply
       lent (at most one, freed at the next borrow or at destroy).
    3. Nothing read from the network is asserted on.
*/

#include "client.h"
#include "client_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "codec.h"

//  Pipelined calls -------------------------------------------------------------

int
rl_client_send (rl_client_t *self, uint16_t operation, const void *body, size_t body_size,
                uint32_t record_count, uint64_t *request_id_p)
{
    assert (self && request_id_p);
    assert (body_size == 0 || body);
    if (self->inflight_count >= self->window) {
        return RL_CLIENT_ERR_WINDOW;
    }
    uint64_t request_id = self->next_request_id++;
    int rc = client_i_send (self, operation, request_id, body, body_size, record_count,
                            self->send_timeout_ms);
    if (rc != 0) {
        return rc;
    }
    assert (self->inflight_count < RL_CLIENT_WINDOW_MAX);
    self->inflight[self->inflight_count++] = request_id;
    *request_id_p = request_id;
    return 0;
}

int
rl_client_send_transfers (rl_client_t *self, const rl_transfer_t *transfers, size_t count,
                          uint64_t *request_id_p)
{
    if (count > RL_BATCH_RECORDS_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    if (self->inflight_count >= self->window) {
        return RL_CLIENT_ERR_WINDOW;
    }
    uint8_t *body = count ? client_i_alloc (count * RL_TRANSFER_SIZE) : NULL;
    if (count > 0 && !body) {
        return RL_CLIENT_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        codec_encode_transfer (&transfers[i], body + i * RL_TRANSFER_SIZE);
    }
    int rc = rl_client_send (self, RL_OP_CREATE_TRANSFERS, body, count * RL_TRANSFER_SIZE,
                             (uint32_t) count, request_id_p);
    free (body);
    return rc;
}

int
rl_client_recv (rl_client_t *self, int timeout_ms, rl_header_t *reply_header, uint8_t **body_p,
                size_t *body_size_p)
{
    assert (self && reply_header && body_p && body_size_p);
    *body_p = NULL;
    *body_size_p = 0;
    rl_status_t check = RL_STATUS_OK;
    zframe_t *frame = client_i_stash_take (self, reply_header, &check);
    if (frame) {
        return client_i_take_reply (self, &frame, check, reply_header, body_p, body_size_p);
    }
    if (self->inflight_count == 0) {
        return RL_CLIENT_ERR_ARGS;
    }
    return client_i_receive (self, 0, timeout_ms, reply_header, body_p, body_size_p);
}

int
rl_client_cancel (rl_client_t *self, uint64_t request_id)
{
    assert (self);
    int slot = client_i_inflight_find (self, request_id);
    if (slot < 0) {
        return RL_CLIENT_ERR_ARGS;
    }
    client_i_inflight_remove (self, (size_t) slot);
    return 0;
}

int
rl_client_set_window (rl_client_t *self, size_t window)
{
    assert (self);
    if (window < 1 || window > RL_CLIENT_WINDOW_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    self->window = window;
    return 0;
}

size_t
rl_client_inflight (const rl_client_t *self)
{
    assert (self);
    return self->inflight_count;
}

void
rl_client_set_send_timeout (rl_client_t *self, int timeout_ms)
{
    assert (self);
    self->send_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

void
rl_client_decode_results (const uint8_t *body, size_t count, rl_result_rec_t *results)
{
    assert (count == 0 || (body && results));
    for (size_t i = 0; i < count; i++) {
        codec_decode_result (body + i * RL_RESULT_SIZE, &results[i]);
    }
}

//  Pipelined calls without copies ------------------------------------------------
//
//  The same window as rl_client_send / rl_client_recv, for a caller that
//  keeps many large batches in flight on many clients: the body is encoded
//  straight into the request frame, a reply is read where it arrived, and
//  one wait covers every client. Invariant: `begun` is a frame not yet sent
//  (at most one), `lent` the last reply lent (at most one, freed at the
//  next borrow or at destroy).

int
rl_client_send_begin (rl_client_t *self, size_t body_size, uint8_t **body_p)
{
    assert (self && body_p);
    *body_p = NULL;
    zframe_destroy (&self->begun);
    if (body_size > RL_MESSAGE_SIZE_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    if (self->inflight_count >= self->window) {
        return RL_CLIENT_ERR_WINDOW;
    }
    self->begun = client_i_frame_new (body_size);
    if (!self->begun) {
        return RL_CLIENT_ERR_NOMEM;
    }
    *body_p = zframe_data (self->begun) + codec_frame_size (0);
    return 0;
}

int
rl_client_send_end (rl_client_t *self, uint16_t operation, uint32_t record_count,
                    uint64_t *request_id_p)
{
    assert (self && request_id_p);
    if (!self->begun) {
        return RL_CLIENT_ERR_ARGS;
    }
    if (self->inflight_count >= self->window) {
        //  Filled (rl_client_send) or narrowed (rl_client_set_window) since
        //  the begin: the frame stays begun for an end after a receive.
        return RL_CLIENT_ERR_WINDOW;
    }
    uint64_t request_id = self->next_request_id++;
    rl_header_t header = codec_request_header (operation, request_id, record_count);
    codec_encode_frame (&header, NULL, 0, zframe_data (self->begun));
    int rc = client_i_send_frame (self, &self->begun, self->send_timeout_ms);
    assert (!self->begun); //  sent or destroyed
    if (rc != 0) {
        return rc;
    }
    self->inflight[self->inflight_count++] = request_id;
    *request_id_p = request_id;
    return 0;
}

int
rl_client_recv_borrow (rl_client_t *self, int timeout_ms, rl_header_t *reply_header,
                       const uint8_t **body_p, size_t *body_size_p)
{
    assert (self && reply_header && body_p && body_size_p);
    *body_p = NULL;
    *body_size_p = 0;
    zframe_destroy (&self->lent);
    rl_status_t check = RL_STATUS_OK;
    zframe_t *frame = client_i_stash_take (self, reply_header, &check);
    if (!frame) {
        if (self->inflight_count == 0) {
            return RL_CLIENT_ERR_ARGS;
        }
        int rc = client_i_receive_frame (self, 0, timeout_ms, reply_header, &frame, &check);
        if (rc != 0) {
            return rc;
        }
    }
    if (check != RL_STATUS_OK) {
        self->bad_replies++;
        zframe_destroy (&frame);
        return RL_CLIENT_ERR_REPLY;
    }
    *body_p = codec_frame_body (zframe_data (frame), zframe_size (frame), body_size_p);
    if (*body_size_p == 0) {
        *body_p = NULL;
    }
    self->lent = frame;
    return reply_header->status == RL_STATUS_OK ? 0 : (int) reply_header->status;
}

int
rl_client_wait_any (rl_client_t *const *clients, size_t count, int timeout_ms, bool *ready)
{
    assert (clients && ready);
    if (count == 0 || count > RL_CLIENT_WAIT_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    zmq_pollitem_t items[RL_CLIENT_WAIT_MAX];
    int stashed = 0;
    for (size_t i = 0; i < count; i++) {
        assert (clients[i]);
        ready[i] = zlist_size (clients[i]->stash) > 0;
        stashed += ready[i];
        items[i] = (zmq_pollitem_t){.socket = zsock_resolve (clients[i]->dealer),
                                    .events = ZMQ_POLLIN};
    }
    int rc = zmq_poll (items, (int) count, stashed > 0 ? 0 : timeout_ms);
    if (rc < 0) {
        return stashed; //  interrupted: the caller decides
    }
    int ready_count = 0;
    for (size_t i = 0; i < count; i++) {
        ready[i] = ready[i] || (items[i].revents & ZMQ_POLLIN);
        ready_count += ready[i];
    }
    return ready_count;
}
