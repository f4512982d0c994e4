/*  client.c: see client.h.

    One DEALER socket; a call encodes the header, sends one frame (DEALER
    adds no envelope, so the ROUTER on the other side sees identity +
    payload), then polls until the matching reply or the deadline. Request
    ids are per client, starting from a random value so that two clients
    that share a router never confuse each other's ids in logs.
*/
#include "client.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "codec.h"

#define RL_CLIENT_HWM_MESSAGES 1000   //  queued requests before send fails

struct rl_client_t {
    zsock_t *dealer;
    uint64_t next_request_id;
    uint64_t stale_replies;     //  replies to calls that had timed out
    uint64_t bad_replies;       //  replies that did not decode
};

rl_client_t *
rl_client_new (const char *endpoints)
{
    assert (endpoints);
    rl_client_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer) {
        free (self);
        return NULL;
    }
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndhwm (self->dealer, RL_CLIENT_HWM_MESSAGES);
    zsock_set_rcvhwm (self->dealer, RL_CLIENT_HWM_MESSAGES);
    zsock_set_sndtimeo (self->dealer, 0);
    char *list = strdup (endpoints);
    char *save = NULL;
    int connected = 0;
    for (char *ep = strtok_r (list, ",", &save); ep; ep = strtok_r (NULL, ",", &save)) {
        if (zsock_connect (self->dealer, "%s", ep) == 0) {
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
        zsock_destroy (&(*self_p)->dealer);
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
rl_client_strerror (int rc)
{
    switch (rc) {
    case 0: return "ok";
    case RL_CLIENT_TIMEOUT: return "timeout: outcome unknown, retry with the same ids";
    case RL_CLIENT_ERR_SEND: return "cannot send: no connection or queue full";
    case RL_CLIENT_ERR_REPLY: return "reply did not decode";
    case RL_CLIENT_ERR_ARGS: return "bad arguments";
    default: return rc > 0 ? rl_status_name ((uint32_t) rc) : "unknown error";
    }
}

//  Waits for the reply to request_id; takes ownership of nothing.
static int
s_receive (rl_client_t *self, uint64_t request_id, int timeout_ms, rl_header_t *header,
           uint8_t **reply_p, size_t *reply_size_p)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            return RL_CLIENT_TIMEOUT;
        }
        zmq_pollitem_t item = {zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc < 0) {
            return RL_CLIENT_TIMEOUT;   //  interrupted: the caller decides
        }
        if (rc == 0) {
            continue;
        }
        zframe_t *frame = zframe_recv (self->dealer);
        if (!frame) {
            continue;
        }
        rl_status_t status = codec_check_reply (zframe_data (frame), zframe_size (frame), header);
        if (status != RL_STATUS_OK && zframe_size (frame) < RL_HEADER_SIZE) {
            self->bad_replies++;
            zframe_destroy (&frame);
            continue;
        }
        if (header->request_id != request_id) {
            self->stale_replies++;
            zframe_destroy (&frame);
            continue;
        }
        if (status != RL_STATUS_OK) {
            self->bad_replies++;
            zframe_destroy (&frame);
            return RL_CLIENT_ERR_REPLY;
        }
        size_t body_size = zframe_size (frame) - RL_HEADER_SIZE;
        *reply_p = NULL;
        *reply_size_p = body_size;
        if (body_size > 0) {
            *reply_p = malloc (body_size);
            assert (*reply_p);
            memcpy (*reply_p, zframe_data (frame) + RL_HEADER_SIZE, body_size);
        }
        zframe_destroy (&frame);
        return header->status == RL_STATUS_OK ? 0 : (int) header->status;
    }
}

int
rl_client_call (rl_client_t *self, uint16_t operation, const void *body, size_t body_size,
                uint32_t record_count, int timeout_ms, rl_header_t *reply_header,
                uint8_t **reply_p, size_t *reply_size_p)
{
    assert (self && reply_header && reply_p && reply_size_p);
    assert (body_size == 0 || body);
    *reply_p = NULL;
    *reply_size_p = 0;
    rl_header_t header = {
        .magic = RL_MAGIC,
        .version = RL_VERSION,
        .operation = operation,
        .request_id = self->next_request_id++,
        .record_count = record_count,
    };
    zframe_t *frame = zframe_new (NULL, RL_HEADER_SIZE + body_size);
    assert (frame);
    codec_encode_header (&header, zframe_data (frame));
    if (body_size > 0) {
        memcpy (zframe_data (frame) + RL_HEADER_SIZE, body, body_size);
    }
    if (zframe_send (&frame, self->dealer, 0) != 0) {
        zframe_destroy (&frame);
        return RL_CLIENT_ERR_SEND;
    }
    int rc = s_receive (self, header.request_id, timeout_ms, reply_header, reply_p,
                        reply_size_p);
    if (rc == 0 && reply_header->operation != operation) {
        free (*reply_p);
        *reply_p = NULL;
        return RL_CLIENT_ERR_REPLY;
    }
    return rc;
}

//  Encodes `count` records with `encode`, calls, and checks the reply count.
typedef void (s_encode_fn) (const void *record, uint8_t *out);

static int
s_call_records (rl_client_t *self, uint16_t op, const void *records, size_t count,
                size_t in_size, size_t in_record_size, s_encode_fn *encode,
                size_t expect_count, size_t reply_record_size, int timeout_ms,
                uint8_t **reply_p, size_t *reply_count_p)
{
    if (count > RL_BATCH_RECORDS_MAX) {
        return RL_CLIENT_ERR_ARGS;
    }
    uint8_t *body = count ? malloc (count * in_record_size) : NULL;
    assert (count == 0 || body);
    for (size_t i = 0; i < count; i++) {
        encode ((const uint8_t *) records + i * in_size, body + i * in_record_size);
    }
    rl_header_t reply_header;
    size_t reply_size = 0;
    int rc = rl_client_call (self, op, body, count * in_record_size, (uint32_t) count,
                             timeout_ms, &reply_header, reply_p, &reply_size);
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
rl_client_lookup_accounts (rl_client_t *self, const rl_id_t *ids, size_t count,
                           rl_account_t *out, int timeout_ms)
{
    uint8_t *reply = NULL;
    int rc = s_call_records (self, RL_OP_LOOKUP_ACCOUNTS, ids, count, sizeof (rl_id_t),
                             RL_ID_SIZE, s_enc_id, count, RL_ACCOUNT_SIZE, timeout_ms, &reply,
                             NULL);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        codec_decode_account (reply + i * RL_ACCOUNT_SIZE, &out[i]);
    }
    free (reply);
    return rc;
}

int
rl_client_lookup_transfers (rl_client_t *self, const rl_id_t *ids, size_t count,
                            rl_transfer_t *out, int timeout_ms)
{
    uint8_t *reply = NULL;
    int rc = s_call_records (self, RL_OP_LOOKUP_TRANSFERS, ids, count, sizeof (rl_id_t),
                             RL_ID_SIZE, s_enc_id, count, RL_TRANSFER_SIZE, timeout_ms, &reply,
                             NULL);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        codec_decode_transfer (reply + i * RL_TRANSFER_SIZE, &out[i]);
    }
    free (reply);
    return rc;
}

int
rl_client_get_account_transfers (rl_client_t *self, const rl_filter_t *filter,
                                 rl_transfer_t *out, size_t *count_p, int timeout_ms)
{
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_call_records (self, RL_OP_GET_ACCOUNT_TRANSFERS, filter, 1, sizeof (*filter),
                             RL_FILTER_SIZE, s_enc_filter, SIZE_MAX, RL_TRANSFER_SIZE,
                             timeout_ms, &reply, &count);
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
    int rc = s_call_records (self, RL_OP_STATUS, NULL, 0, 0, 0, NULL, 1, RL_STATUS_SIZE,
                             timeout_ms, &reply, NULL);
    if (rc == 0) {
        codec_decode_status (reply, out);
    }
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
