/*  replyq.h: replies to the connections of a ROUTER socket, with the bytes
    queued per connection bounded (docs/security.md, "Reply queues").

    ZeroMQ bounds a connection's send queue in messages (its high-water
    mark, kept large so that bursts of small replies pass), not bytes, and
    a reply may be anything from 32 bytes to RL_REPLY_SIZE_MAX: a client
    that never read its replies could make a process hold high-water mark
    x 1 MiB. Here every reply's bytes are counted against its connection
    from the moment ZeroMQ takes it until ZeroMQ releases it (written to
    the kernel, or dropped with the connection): the reply's payload is
    handed over without a copy, with a release function that ZeroMQ calls
    (from its I/O thread) when it lets go. So a connection's queued bytes
    are known exactly, and bounded:

        queued + parked + new reply <= RL_REPLY_QUEUE_SENDING_BYTES (bytes_max)
            (three quarters of --reply-queue-bytes; the last quarter is
            for the replies the caller is building: the shard's turn)

    A reply beyond that is dropped and counted (replyq_full): the client
    retries with the same ids, as after any lost reply. A reply that
    ZeroMQ refuses because the connection's queue is at its high-water
    mark (EAGAIN) is parked, in order, within the same bound, and goes out
    before any later reply to that connection, at its next replyq_send or
    at replyq_flush (each turn and tick of the caller). A connection that
    is gone loses its parked replies (counted, replyq_gone).

    INVARIANTS
    1. A connection's queued + parked bytes never exceed the sending bound
       (the queued bytes only shrink between two checks: ZeroMQ releases).
    2. Replies to one connection leave in the order they were given.
    3. Every reply handed to ZeroMQ is released exactly once; a
       connection's record lives until its last reply is released.

    LIMITS: one record per connection that has replies queued or parked
    (records of idle connections are dropped at a flush, at most every
    S_PRUNE_MS); routing ids of at most 255 bytes.
*/
#ifndef RL_REPLYQ_H
#define RL_REPLYQ_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

typedef struct replyq_t replyq_t;

//  sock: a ROUTER (ROUTER_MANDATORY and sndtimeo 0 are set here). NULL when
//  out of memory.
replyq_t *replyq_new (zsock_t *sock, size_t bytes_max);
//  Frees every parked reply. Replies ZeroMQ still holds keep their
//  connection's record alive until they are released.
void replyq_destroy (replyq_t **self_p);
//  Sends *msg_p (routing id first, the reply last), or parks it behind the
//  connection's parked replies. Takes it. 0 when sent or parked; -1 when
//  dropped (counted: full, or the connection gone).
int replyq_send (replyq_t *self, zmsg_t **msg_p);
//  Sends what is parked, in order, while each connection takes it; drops
//  the records of idle connections now and then.
void replyq_flush (replyq_t *self);

uint64_t replyq_full (const replyq_t *self);       //  replies dropped: the bound reached
uint64_t replyq_gone (const replyq_t *self);       //  replies dropped: connection gone
size_t replyq_parked_bytes (const replyq_t *self); //  bytes parked, every connection
size_t replyq_queued_bytes (const replyq_t *self); //  bytes ZeroMQ holds, every connection

#endif
