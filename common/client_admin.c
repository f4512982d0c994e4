/*  client_admin.c: the client library's admin calls to one shard, and the
    fan-outs that ask every shard of a ring at once. See client.h.

    DESIGN
    The admin calls to one shard are blocking calls (rl_client_call) with a
    typed body: the reply's record count and size are checked before any
    record is decoded. A fan-out does not use rl_client_t: it opens one
    DEALER per endpoint for the call, without ZMQ_IMMEDIATE (the request
    waits in the socket until the connection is up, so a shard slow to
    accept still answers), sends every request first, then polls them all
    until one deadline. Each endpoint gets its own request id, from a random
    base, so a stray reply never settles the wrong endpoint.

    INVARIANTS
    1. A fan-out costs at most one timeout, whatever the number of endpoints
       or how many are down, and closes every socket it opened before it
       returns.
    2. rcs[i] (replies[i]) always answers endpoints[i]; 0 only for a reply
       that decoded, matched the request's id and operation and, for the
       typed calls, holds what the operation answers.
    3. Nothing read from the network is asserted on; an allocation that
       fails is RL_CLIENT_ERR_NOMEM for that endpoint (before the send:
       nothing sent; after it: the reply is lost), never an assert. A
       socket that cannot be made is RL_CLIENT_ERR_SEND.

    LIMITS
    One socket per endpoint during a fan-out (a ring has at most
    RL_SHARDS_MAX shards); an in_doubt reply of at most RL_IN_DOUBT_RECORDS_MAX
    records.
*/
#include "client.h"
#include "client_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "codec.h"
#include "failpoint.h"

//  Memory, or NULL (RL_CLIENT_ERR_NOMEM); failpoint client.alloc makes it fail.
static void *
s_calloc (size_t count, size_t size)
{
    return RL_FAILPOINT (CLIENT_ALLOC) == 0 ? calloc (count ? count : 1, size) : NULL;
}

//  Admin calls to one shard ------------------------------------------------------

//  Decodes an in_doubt reply body of `count` records into a malloc'd array.
static int
s_decode_in_doubt (const uint8_t *body, size_t count, rl_in_doubt_rec_t **records_p)
{
    *records_p = NULL;
    if (count == 0) {
        return 0;
    }
    rl_in_doubt_rec_t *records = s_calloc (count, sizeof (*records));
    if (!records) {
        return RL_CLIENT_ERR_NOMEM; //  the reply cannot be held
    }
    for (size_t i = 0; i < count; i++) {
        codec_decode_in_doubt (body + i * RL_IN_DOUBT_SIZE, &records[i]);
    }
    *records_p = records;
    return 0;
}

//  A blocking call of `op` whose reply must hold `count` records of
//  `record_size` bytes (count SIZE_MAX: any count). On 0, *reply_p is the
//  body (caller frees) and *count_p the record count.
static int
s_admin_call (rl_client_t *self, uint16_t op, const void *body, size_t body_size,
              uint32_t record_count, size_t count, size_t record_size, int timeout_ms,
              uint8_t **reply_p, size_t *count_p)
{
    rl_header_t header;
    size_t reply_size = 0;
    int rc = rl_client_call (self, op, body, body_size, record_count, timeout_ms, &header, reply_p,
                             &reply_size);
    if (rc != 0) {
        return rc;
    }
    size_t reply_count = header.record_count;
    if (reply_size != reply_count * record_size || (count != SIZE_MAX && reply_count != count)) {
        free (*reply_p);
        *reply_p = NULL;
        return RL_CLIENT_ERR_REPLY;
    }
    *count_p = reply_count;
    return 0;
}

int
rl_client_in_doubt (rl_client_t *self, rl_in_doubt_rec_t **records_p, size_t *count_p,
                    int timeout_ms)
{
    assert (self && records_p && count_p);
    *records_p = NULL;
    *count_p = 0;
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_admin_call (self, RL_OP_IN_DOUBT, NULL, 0, 0, SIZE_MAX, RL_IN_DOUBT_SIZE, timeout_ms,
                           &reply, &count);
    if (rc == 0) {
        rc = s_decode_in_doubt (reply, count, records_p);
        *count_p = rc == 0 ? count : 0;
    }
    free (reply);
    return rc;
}

int
rl_client_audit (rl_client_t *self, rl_audit_rec_t *out, int timeout_ms)
{
    assert (self && out);
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_admin_call (self, RL_OP_AUDIT, NULL, 0, 0, 1, RL_AUDIT_SIZE, timeout_ms, &reply,
                           &count);
    if (rc == 0) {
        codec_decode_audit (reply, out);
    }
    free (reply);
    return rc;
}

int
rl_client_resolve (rl_client_t *self, const rl_tp_rec_t *request, rl_tp_rec_t *answer,
                   int timeout_ms)
{
    assert (self && request && answer);
    uint8_t body[RL_TP_SIZE];
    codec_encode_tp (request, body);
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_admin_call (self, RL_OP_RESOLVE, body, sizeof (body), 1, 1, RL_TP_SIZE, timeout_ms,
                           &reply, &count);
    if (rc == 0) {
        codec_decode_tp (reply, answer);
    }
    free (reply);
    return rc;
}

int
rl_client_migrate (rl_client_t *self, uint16_t op, const rl_migrate_rec_t *request,
                   rl_migrate_rec_t *out, int timeout_ms)
{
    assert (self && request && out);
    assert (op == RL_OP_MIGRATE_BEGIN
            || (op >= RL_OP_MIGRATE_FREEZE && op <= RL_OP_MIGRATE_CLEANUP));
    uint8_t body[RL_MIGRATE_SIZE];
    codec_encode_migrate (request, body);
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_admin_call (self, op, body, sizeof (body), 1, 1, RL_MIGRATE_SIZE, timeout_ms, &reply,
                           &count);
    if (rc == 0) {
        codec_decode_migrate (reply, out);
    }
    free (reply);
    return rc;
}

int
rl_client_migrate_lease (rl_client_t *self, uint64_t plan, uint32_t action,
                         rl_migrate_rec_t *stored, uint64_t *holder, int timeout_ms)
{
    assert (self && stored && holder);
    rl_migrate_rec_t request = {.migration_id = plan, .param = action};
    uint8_t body[RL_MIGRATE_SIZE];
    codec_encode_migrate (&request, body);
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_admin_call (self, RL_OP_MIGRATE_LEASE, body, sizeof (body), 1, 2, RL_MIGRATE_SIZE,
                           timeout_ms, &reply, &count);
    if (rc == 0) {
        rl_migrate_rec_t lease;
        codec_decode_migrate (reply, stored);
        codec_decode_migrate (reply + RL_MIGRATE_SIZE, &lease);
        *holder = lease.migration_id;
    }
    free (reply);
    return rc;
}

int
rl_client_migrate_import (rl_client_t *self, const uint8_t *chunk, size_t size,
                          rl_migrate_rec_t *out, int timeout_ms)
{
    assert (self && chunk && out);
    uint8_t *reply = NULL;
    size_t count = 0;
    int rc = s_admin_call (self, RL_OP_MIGRATE_IMPORT, chunk, size, 1, 1, RL_MIGRATE_SIZE,
                           timeout_ms, &reply, &count);
    if (rc == 0) {
        codec_decode_migrate (reply, out);
    }
    free (reply);
    return rc;
}

const char *
rl_resolve_reason (uint32_t result)
{
    switch (result) {
        case 0:
            return "";
        case RL_RESOLVE_NOT_FOUND:
            return "no prepared record of that attempt on this shard (see in-doubt)";
        case RL_RESOLVE_NOT_FENCED:
            return "the coordinator is still in this shard's ring: fence it out first (load a "
                   "ring of a higher epoch without it)";
        case RL_RESOLVE_NOT_FORCED:
            return "a heuristic decision needs the explicit force flag";
        case RL_RESOLVE_BAD_DECISION:
            return "the decision must be commit or abort";
        case RL_RESOLVE_LEG_FIRST:
            return "a post or void whose pending transfer's credit leg is still prepared here: "
                   "resolve that record first";
        case RL_RESOLVE_NO_SIDE:
            return "a post or void that holds no credit side here and waits for none (the leg it "
                   "was checked against is gone): only abort is possible";
        default:
            return "refused for a reason this version does not know";
    }
}

//  Fan-out -----------------------------------------------------------------------

//  Reads every reply that is waiting on `dealer` (endpoint i): the one that
//  matches request_id and operation settles replies[i]. 1 when it did.
static size_t
s_fanout_read (zsock_t *dealer, uint64_t request_id, uint16_t operation, rl_client_reply_t *reply)
{
    zframe_t *frame;
    while ((frame = zframe_recv_nowait (dealer)) != NULL) {
        rl_header_t header;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        rl_status_t check = codec_parse_reply (zframe_data (frame), zframe_size (frame), &header,
                                               &body, &body_size);
        if (check != RL_STATUS_OK || header.request_id != request_id
            || header.operation != operation) {
            reply->rc = RL_CLIENT_ERR_REPLY; //  unless a good one follows
            zframe_destroy (&frame);
            continue;
        }
        reply->header = header;
        reply->rc = header.status == RL_STATUS_OK ? 0 : (int) header.status;
        if (reply->rc == 0 && body_size > 0) {
            reply->body = s_calloc (1, body_size);
            if (reply->body) {
                memcpy (reply->body, body, body_size);
                reply->body_size = body_size;
            } else {
                reply->rc = RL_CLIENT_ERR_NOMEM; //  the reply cannot be held
            }
        }
        zframe_destroy (&frame);
        return 1;
    }
    return 0;
}

size_t
rl_client_fanout (const char *const *endpoints, size_t count, uint16_t operation, const void *body,
                  size_t body_size, uint32_t record_count, int timeout_ms,
                  rl_client_reply_t *replies)
{
    assert (count == 0 || (endpoints && replies));
    assert (body_size == 0 || body);
    int64_t deadline = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    zsock_t **dealers = s_calloc (count, sizeof (*dealers));
    zsock_t **monitors = dealers ? s_calloc (count, sizeof (*monitors)) : NULL;
    zmq_pollitem_t *items = monitors ? s_calloc (count, sizeof (*items)) : NULL;
    size_t *slots = items ? s_calloc (count, sizeof (*slots)) : NULL;
    for (size_t i = 0; i < count; i++) {
        replies[i] = (rl_client_reply_t){.rc = slots ? RL_CLIENT_ERR_SEND : RL_CLIENT_ERR_NOMEM};
    }
    if (!slots) {
        free (dealers);
        free (monitors);
        free (items);
        free (slots);
        return count;
    }
    //  One id per endpoint, from a random base: a stray reply never matches.
    uint64_t base = ((uint64_t) randof (0x7fffffff) << 20) + 1;
    size_t waiting = 0;
    for (size_t i = 0; i < count; i++) {
        zsock_t *dealer = zsock_new (ZMQ_DEALER);
        zframe_t *frame = RL_FAILPOINT (CLIENT_ALLOC) == 0
                              ? zframe_new (NULL, codec_frame_size (body_size))
                              : NULL;
        if (!dealer || !frame) {
            replies[i].rc = dealer ? RL_CLIENT_ERR_NOMEM : RL_CLIENT_ERR_SEND;
            zsock_destroy (&dealer);
            zframe_destroy (&frame);
            continue;
        }
        //  No ZMQ_IMMEDIATE: the request waits in the socket until the
        //  connection is up, so a shard that is slow to accept still answers.
        zsock_set_linger (dealer, 0);
        zsock_set_sndtimeo (dealer, 0);
        rl_header_t header = codec_request_header (operation, base + i, record_count);
        codec_encode_frame (&header, body, body_size, zframe_data (frame));
        //  Watched from before the connect: a wrong key is told from a
        //  shard that is down (client.c, "Handshake monitors").
        monitors[i] = client_i_monitor_new (dealer);
        if (!endpoints[i] || rl_client_connect (dealer, endpoints[i]) != 0
            || zframe_send (&frame, dealer, 0) != 0) {
            zframe_destroy (&frame);
            client_i_monitor_destroy (dealer, &monitors[i]);
            zsock_destroy (&dealer);
            continue;
        }
        dealers[i] = dealer;
        replies[i].rc = RL_CLIENT_TIMEOUT; //  until its reply comes
        waiting++;
    }
    while (waiting > 0) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            break;
        }
        size_t polled = 0;
        for (size_t i = 0; i < count; i++) {
            if (dealers[i]) {
                items[polled] = (zmq_pollitem_t){zsock_resolve (dealers[i]), 0, ZMQ_POLLIN, 0};
                slots[polled++] = i;
            }
        }
        if (zmq_poll (items, (int) polled, (long) left) <= 0) {
            continue; //  nothing yet, or interrupted: the deadline decides
        }
        for (size_t k = 0; k < polled; k++) {
            size_t i = slots[k];
            if ((items[k].revents & ZMQ_POLLIN)
                && s_fanout_read (dealers[i], base + i, operation, &replies[i])) {
                client_i_monitor_destroy (dealers[i], &monitors[i]);
                zsock_destroy (&dealers[i]);
                waiting--;
            }
        }
    }
    size_t failed = 0;
    for (size_t i = 0; i < count; i++) {
        if (dealers[i] && replies[i].rc == RL_CLIENT_TIMEOUT) {
            //  No answer: a handshake that never completed means the
            //  request never left this process.
            int verdict = client_i_monitor_verdict (monitors[i]);
            replies[i].rc = verdict != 0 ? verdict : replies[i].rc;
        }
        client_i_monitor_destroy (dealers[i], &monitors[i]);
        zsock_destroy (&dealers[i]);
        failed += replies[i].rc != 0;
    }
    free (dealers);
    free (monitors);
    free (items);
    free (slots);
    return failed;
}

void
rl_client_replies_free (rl_client_reply_t *replies, size_t count)
{
    assert (count == 0 || replies);
    for (size_t i = 0; i < count; i++) {
        free (replies[i].body);
        replies[i].body = NULL;
        replies[i].body_size = 0;
    }
}

//  Runs a fan-out of a request without records; NULL when the replies
//  cannot be held (then every rcs[i] is RL_CLIENT_ERR_NOMEM).
static rl_client_reply_t *
s_fanout_bare (const char *const *endpoints, size_t count, uint16_t operation, int timeout_ms,
               int *rcs)
{
    rl_client_reply_t *replies = s_calloc (count, sizeof (*replies));
    if (!replies) {
        for (size_t i = 0; i < count; i++) {
            rcs[i] = RL_CLIENT_ERR_NOMEM;
        }
        return NULL;
    }
    rl_client_fanout (endpoints, count, operation, NULL, 0, 0, timeout_ms, replies);
    for (size_t i = 0; i < count; i++) {
        rcs[i] = replies[i].rc;
    }
    return replies;
}

//  Counts the endpoints that failed, and frees the replies.
static size_t
s_fanout_done (rl_client_reply_t *replies, size_t count, const int *rcs)
{
    size_t failed = 0;
    for (size_t i = 0; i < count; i++) {
        failed += rcs[i] != 0;
    }
    if (replies) {
        rl_client_replies_free (replies, count);
        free (replies);
    }
    return failed;
}

//  rcs[i] 0 stays 0 only when the reply holds exactly one record of `size`.
static bool
s_fanout_one (const rl_client_reply_t *reply, size_t size, int *rc)
{
    if (*rc == 0 && (reply->header.record_count != 1 || reply->body_size != size)) {
        *rc = RL_CLIENT_ERR_REPLY;
    }
    return *rc == 0;
}

size_t
rl_client_status_all (const char *const *endpoints, size_t count, int timeout_ms,
                      rl_status_rec_t *out, int *rcs)
{
    assert (count == 0 || (out && rcs));
    rl_client_reply_t *replies = s_fanout_bare (endpoints, count, RL_OP_STATUS, timeout_ms, rcs);
    for (size_t i = 0; i < count; i++) {
        memset (&out[i], 0, sizeof (out[i]));
        if (replies && s_fanout_one (&replies[i], RL_STATUS_SIZE, &rcs[i])) {
            codec_decode_status (replies[i].body, &out[i]);
        }
    }
    return s_fanout_done (replies, count, rcs);
}

size_t
rl_client_audit_all (const char *const *endpoints, size_t count, int timeout_ms,
                     rl_audit_rec_t *out, int *rcs)
{
    assert (count == 0 || (out && rcs));
    rl_client_reply_t *replies = s_fanout_bare (endpoints, count, RL_OP_AUDIT, timeout_ms, rcs);
    for (size_t i = 0; i < count; i++) {
        memset (&out[i], 0, sizeof (out[i]));
        if (replies && s_fanout_one (&replies[i], RL_AUDIT_SIZE, &rcs[i])) {
            codec_decode_audit (replies[i].body, &out[i]);
        }
    }
    return s_fanout_done (replies, count, rcs);
}

size_t
rl_client_in_doubt_all (const char *const *endpoints, size_t count, int timeout_ms,
                        rl_in_doubt_rec_t **records, size_t *counts, int *rcs)
{
    assert (count == 0 || (records && counts && rcs));
    rl_client_reply_t *replies = s_fanout_bare (endpoints, count, RL_OP_IN_DOUBT, timeout_ms, rcs);
    for (size_t i = 0; i < count; i++) {
        records[i] = NULL;
        counts[i] = 0;
        if (!replies || rcs[i] != 0) {
            continue;
        }
        size_t n = replies[i].header.record_count;
        if (replies[i].body_size != n * RL_IN_DOUBT_SIZE) {
            rcs[i] = RL_CLIENT_ERR_REPLY;
            continue;
        }
        rcs[i] = s_decode_in_doubt (replies[i].body, n, &records[i]);
        counts[i] = rcs[i] == 0 ? n : 0;
    }
    return s_fanout_done (replies, count, rcs);
}

size_t
rl_client_load_ring_all (const char *const *endpoints, size_t count, const uint8_t *blob,
                         size_t size, int timeout_ms, int *rcs)
{
    assert (count == 0 || rcs);
    assert (blob && size > 0);
    rl_client_reply_t *replies = s_calloc (count, sizeof (*replies));
    if (!replies) {
        for (size_t i = 0; i < count; i++) {
            rcs[i] = RL_CLIENT_ERR_NOMEM;
        }
        return count;
    }
    rl_client_fanout (endpoints, count, RL_OP_LOAD_RING, blob, size, 1, timeout_ms, replies);
    for (size_t i = 0; i < count; i++) {
        rcs[i] = replies[i].rc;
    }
    return s_fanout_done (replies, count, rcs);
}
