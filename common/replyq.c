/*  replyq.c: replies to the connections of a ROUTER socket, bounded in
    bytes per connection (replyq.h says how and why).

    A reply goes out as its envelope frames (copied by zmq_send, small)
    then its payload, handed to ZeroMQ without a copy (zmq_msg_init_data)
    with s_released as the function ZeroMQ calls when it lets go. A refused
    first frame (EAGAIN: the queue is at its high-water mark; EHOSTUNREACH:
    gone) leaves the message whole; once the first frame is taken the
    ROUTER has chosen the connection's queue, and the rest follow (a part
    it drops is released, so its bytes are given back all the same).

    THREADS: s_released runs on whichever thread lets the message go
    (ZeroMQ's I/O thread, usually). It touches only the message's record,
    its connection's `queued` and `refs` and the queue's total (s_total_t),
    all atomic; everything else is the caller's thread. ZeroMQ may release
    a message after replyq_destroy (at the socket's close, or the
    context's end): what s_released touches is counted by reference, so
    it outlives the queue until the last release.

    A CONNECTION'S RECORD (s_conn_t)
        made at its first reply; refs: one for the table, one per reply
        ZeroMQ holds;
        dropped from the table at a flush when nothing is queued or parked
        (the table's ref goes; the last release frees it).
*/
#include "replyq.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rl_limits.h"

#define S_KEY_SIZE (2 * 255 + 1) //  hex of a routing id of at most 255 bytes, and the NUL
#define S_PRUNE_MS 1000          //  idle records are dropped at most this often

typedef struct {
    atomic_size_t queued; //  bytes ZeroMQ holds for this connection
    atomic_int refs;      //  the table's, and one per reply ZeroMQ holds
    zlist_t *parked;      //  zmsg_t *, oldest first; NULL when none yet
    size_t parked_bytes;
} s_conn_t;

//  The bytes ZeroMQ holds for every connection of the queue.
typedef struct {
    atomic_size_t bytes;
    atomic_int refs; //  the queue's, and one per reply ZeroMQ holds
} s_total_t;

//  One reply ZeroMQ holds: what to give back when it is released.
typedef struct {
    s_conn_t *conn;
    zframe_t *payload; //  the memory ZeroMQ sends from
    size_t bytes;      //  counted against conn
    s_total_t *total;
} s_sent_t;

struct replyq_t {
    zsock_t *sock;
    void *handle;       //  the libzmq socket
    size_t sending_max; //  queued + parked, per connection
    zhash_t *conns;     //  routing id (hex) -> s_conn_t *
    s_total_t *total;   //  bytes ZeroMQ holds, all connections
    size_t parked_bytes;
    size_t parked_conns;
    int64_t prune_next_ms;
    uint64_t full;
    uint64_t gone;
};

static void
s_conn_unref (s_conn_t *conn)
{
    if (atomic_fetch_sub (&conn->refs, 1) == 1) {
        assert (atomic_load (&conn->queued) == 0 && !conn->parked);
        free (conn);
    }
}

static void
s_total_unref (s_total_t *total)
{
    if (atomic_fetch_sub (&total->refs, 1) == 1) {
        assert (atomic_load (&total->bytes) == 0);
        free (total);
    }
}

//  ZeroMQ let go of a payload (any thread).
static void
s_released (void *data, void *hint)
{
    (void) data;
    s_sent_t *sent = hint;
    atomic_fetch_sub (&sent->conn->queued, sent->bytes);
    atomic_fetch_sub (&sent->total->bytes, sent->bytes);
    zframe_destroy (&sent->payload);
    s_conn_unref (sent->conn);
    s_total_unref (sent->total);
    free (sent);
}

replyq_t *
replyq_new (zsock_t *sock, size_t bytes_max)
{
    assert (sock && bytes_max >= (size_t) RL_REPLY_QUEUE_BYTES_MIN);
    replyq_t *self = calloc (1, sizeof (*self));
    if (!self || !(self->conns = zhash_new ()) || !(self->total = calloc (1, sizeof (s_total_t)))) {
        if (self) {
            zhash_destroy (&self->conns);
        }
        free (self);
        return NULL;
    }
    atomic_init (&self->total->bytes, 0);
    atomic_init (&self->total->refs, 1);
    self->sock = sock;
    self->handle = zsock_resolve (sock);
    self->sending_max = RL_REPLY_QUEUE_SENDING_BYTES (bytes_max);
    zsock_set_router_mandatory (sock, 1);
    zsock_set_sndtimeo (sock, 0);
    return self;
}

//  Drops the record from the table (its parked replies with it).
static void
s_conn_remove (replyq_t *self, const char *key, s_conn_t *conn)
{
    if (conn->parked) {
        zmsg_t *msg;
        while ((msg = zlist_pop (conn->parked))) {
            zmsg_destroy (&msg);
        }
        zlist_destroy (&conn->parked);
        self->parked_bytes -= conn->parked_bytes;
        self->parked_conns--;
        conn->parked_bytes = 0;
    }
    zhash_delete (self->conns, key);
    s_conn_unref (conn);
}

void
replyq_destroy (replyq_t **self_p)
{
    assert (self_p);
    replyq_t *self = *self_p;
    if (!self) {
        return;
    }
    zlist_t *keys = zhash_keys (self->conns);
    for (char *key = keys ? zlist_first (keys) : NULL; key; key = zlist_next (keys)) {
        s_conn_remove (self, key, zhash_lookup (self->conns, key));
    }
    zlist_destroy (&keys);
    zhash_destroy (&self->conns);
    s_total_unref (self->total);
    free (self);
    *self_p = NULL;
}

static void
s_key (zframe_t *id, char key[S_KEY_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *data = zframe_data (id);
    size_t size = zframe_size (id) > 255 ? 255 : zframe_size (id);
    for (size_t i = 0; i < size; i++) {
        key[2 * i] = hex[data[i] >> 4];
        key[2 * i + 1] = hex[data[i] & 15];
    }
    key[2 * size] = '\0';
}

//  0 when ZeroMQ took *msg_p (taken: its payload is counted against conn
//  until released); else the errno of the refused first frame, and *msg_p
//  is untouched.
static int
s_try (replyq_t *self, s_conn_t *conn, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    size_t bytes = zmsg_content_size (msg);
    s_sent_t *sent = malloc (sizeof (*sent));
    if (!sent) {
        return ENOMEM;
    }
    size_t frames = zmsg_size (msg);
    zframe_t *frame = zmsg_first (msg);
    for (size_t i = 0; i + 1 < frames; i++, frame = zmsg_next (msg)) {
        if (zmq_send (self->handle, zframe_data (frame), zframe_size (frame),
                      ZMQ_SNDMORE | ZMQ_DONTWAIT)
            < 0) {
            int err = zmq_errno ();
            if (i == 0) {
                free (sent);
                return err ? err : EHOSTUNREACH;
            }
            break; //  a later part is not refused, only dropped
        }
    }
    //  The payload, without a copy: ZeroMQ calls s_released when done.
    zframe_t *payload = zmsg_last (msg);
    zmsg_remove (msg, payload);
    zmsg_destroy (msg_p);
    *sent = (s_sent_t){conn, payload, bytes, self->total};
    atomic_fetch_add (&conn->refs, 1);
    atomic_fetch_add (&self->total->refs, 1);
    atomic_fetch_add (&conn->queued, bytes);
    atomic_fetch_add (&self->total->bytes, bytes);
    zmq_msg_t part;
    if (zmq_msg_init_data (&part, zframe_data (payload), zframe_size (payload), s_released, sent)
        != 0) {
        s_released (NULL, sent);
        return 0; //  lost like an undelivered reply (the envelope went alone)
    }
    if (zmq_msg_send (&part, self->handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&part); //  releases it
    }
    return 0;
}

//  Parks *msg_p (taken) behind the connection's parked replies, within its
//  bound; -1 when dropped (counted).
static int
s_park (replyq_t *self, s_conn_t *conn, zmsg_t **msg_p)
{
    size_t bytes = zmsg_content_size (*msg_p);
    if (atomic_load (&conn->queued) + conn->parked_bytes + bytes > self->sending_max) {
        self->full++;
        zmsg_destroy (msg_p);
        return -1;
    }
    if (!conn->parked && !(conn->parked = zlist_new ())) {
        self->gone++; //  out of memory: lost like an undelivered reply
        zmsg_destroy (msg_p);
        return -1;
    }
    if (zlist_append (conn->parked, *msg_p) != 0) {
        self->gone++;
        zmsg_destroy (msg_p);
        return -1;
    }
    *msg_p = NULL;
    self->parked_conns += conn->parked_bytes == 0;
    conn->parked_bytes += bytes;
    self->parked_bytes += bytes;
    return 0;
}

//  Sends the connection's parked replies while it takes them.
static void
s_flush_conn (replyq_t *self, s_conn_t *conn)
{
    zmsg_t *msg;
    while (conn->parked && (msg = zlist_first (conn->parked))) {
        size_t bytes = zmsg_content_size (msg);
        //  Its bytes are counted already (parked); sent, they move to queued.
        zmsg_t *attempt = msg;
        int err = s_try (self, conn, &attempt);
        if (err == EAGAIN || err == ENOMEM) {
            return; //  the next flush tries again
        }
        zlist_pop (conn->parked);
        assert (conn->parked_bytes >= bytes && self->parked_bytes >= bytes);
        conn->parked_bytes -= bytes;
        self->parked_bytes -= bytes;
        if (err != 0) {
            self->gone++; //  gone: each later parked reply goes the same way
            zmsg_destroy (&msg);
        }
    }
    if (conn->parked && zlist_size (conn->parked) == 0) {
        zlist_destroy (&conn->parked);
        self->parked_conns--;
    }
}

int
replyq_send (replyq_t *self, zmsg_t **msg_p)
{
    assert (self && msg_p && *msg_p);
    assert (zmsg_size (*msg_p) >= 2); //  a routing id, then the reply
    char key[S_KEY_SIZE];
    s_key (zmsg_first (*msg_p), key);
    s_conn_t *conn = zhash_lookup (self->conns, key);
    if (!conn) {
        conn = calloc (1, sizeof (*conn));
        if (!conn || zhash_insert (self->conns, key, conn) != 0) {
            free (conn);
            self->gone++; //  out of memory: lost like an undelivered reply
            zmsg_destroy (msg_p);
            return -1;
        }
        atomic_init (&conn->queued, 0);
        atomic_init (&conn->refs, 1);
    }
    if (conn->parked) {
        s_flush_conn (self, conn);
        if (conn->parked) {
            return s_park (self, conn, msg_p); //  invariant 2
        }
    }
    size_t bytes = zmsg_content_size (*msg_p);
    if (atomic_load (&conn->queued) + bytes > self->sending_max) {
        self->full++; //  invariant 1: the client is not reading
        zmsg_destroy (msg_p);
        return -1;
    }
    int err = s_try (self, conn, msg_p);
    if (err == 0) {
        return 0;
    }
    if (err == EAGAIN || err == ENOMEM) {
        return s_park (self, conn, msg_p);
    }
    self->gone++; //  no such connection (any more)
    zmsg_destroy (msg_p);
    return -1;
}

void
replyq_flush (replyq_t *self)
{
    assert (self);
    int64_t now_ms = zclock_mono ();
    bool prune = now_ms >= self->prune_next_ms;
    if (self->parked_conns == 0 && !prune) {
        return;
    }
    if (prune) {
        self->prune_next_ms = now_ms + S_PRUNE_MS;
    }
    zlist_t *keys = zhash_keys (self->conns);
    if (!keys) {
        return; //  out of memory: the next flush tries again
    }
    for (char *key = zlist_first (keys); key; key = zlist_next (keys)) {
        s_conn_t *conn = zhash_lookup (self->conns, key);
        if (conn->parked) {
            s_flush_conn (self, conn);
        }
        if (prune && !conn->parked && atomic_load (&conn->queued) == 0) {
            s_conn_remove (self, key, conn); //  idle: made again at its next reply
        }
    }
    zlist_destroy (&keys);
}

uint64_t
replyq_full (const replyq_t *self)
{
    assert (self);
    return self->full;
}

uint64_t
replyq_gone (const replyq_t *self)
{
    assert (self);
    return self->gone;
}

size_t
replyq_parked_bytes (const replyq_t *self)
{
    assert (self);
    return self->parked_bytes;
}

size_t
replyq_queued_bytes (const replyq_t *self)
{
    assert (self);
    return atomic_load (&self->total->bytes);
}
