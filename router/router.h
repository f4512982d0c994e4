/*  router.h: the router's state, shared by its four modules.

    main.c      start-up and shut-down: options, the first ring, the sockets
                and the loop; SIGINT/SIGTERM end the loop (czmq's handler).
    clients.c   the front door: reading and checking client messages, the
                router's own status and get_ring, every reply to a client,
                the rate-limited log of clients' errors.
    router.c    a client request's life: admission, splitting by owner,
                sub-requests, merging the answers, deadlines, the tick.
    shards.c    the shards of the ring: one DEALER each, the ring's adoption
                and the retirement of dropped shards, the table of
                sub-requests in flight, and the ring refresh.

    Data flows one way through one zloop (one thread): a readable client
    socket calls clients.c, which admits requests into router.c; a shard's
    socket or the tick calls into router.c, which calls shards.c to place
    and send, and clients.c to answer;
    shards.c calls back into router.c only to resend records that waited
    for a new ring (router_redispatch_waiting) and to read a shard's socket.

    LIMITS (rl_limits.h)
    RL_ROUTER_PENDING_MAX client requests and RL_ROUTER_PENDING_BYTES_MAX
    bytes held; RL_ROUTER_SUBS_MAX sub-requests in flight, at most
    RL_ROUTER_INFLIGHT_PER_SHARD_MAX per shard; RL_SHARDS_MAX shards.
*/
#ifndef RL_ROUTER_H
#define RL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "auth.h"
#include "proto.h"
#include "replyq.h"
#include "ring.h"
#include "rl_limits.h"
#include "router_metrics.h"

//  True for the operations that write (answered per record, never retried by
//  the router without knowing the outcome).
static inline bool
router_op_is_create (uint32_t op)
{
    return op == RL_OP_CREATE_ACCOUNTS || op == RL_OP_CREATE_TRANSFERS;
}

#define SUB_SLOT_BITS 16
#define SUB_SLOT_MASK ((1u << SUB_SLOT_BITS) - 1)

//  Per-record state of a request in progress.
enum { REC_NEW = 0, REC_SENT = 1, REC_WAIT = 2, REC_DONE = 3 };

typedef struct router_s router_t;

typedef struct r_shard_s {
    router_t *router;
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    char key[RING_KEY_SIZE + 1]; //  the shard's public key from the ring ("" if none)
    zsock_t *dealer;
    uint32_t inflight;      //  sub-requests sent, not answered, not expired
    bool retired;           //  no longer in the ring: closed once drained
    bool reader_ended;      //  retired: the loop no longer reads it
    uint64_t ended_tick;    //  tick at which the reader was ended
    struct r_shard_s *next; //  retired list
    int64_t created_ms;     //  connection opened (grace for its first connect)
    bool probe_active;      //  a status poll is in flight (shards.c, THE DEADLINE CHECK)
    int64_t probe_next_ms;  //  the next status poll is due (0: at the next tick)
    bool order_broken;      //  its last status broke the order of timeouts (logged once)
} r_shard_t;

typedef struct {
    uint64_t id;  //  request id sent to the shard; 0: slot free
    bool refresh; //  a get_ring for the router itself
    bool probe;   //  a status poll for the router itself (linked: it expires)
    r_shard_t *shard;
    uint32_t pending_slot;
    uint64_t pending_gen;
    uint16_t operation;
    uint32_t count;      //  records sent
    uint32_t *positions; //  their positions in the client's request
    int64_t expires_ms;
    int32_t prev, next; //  FIFO by send time (refresh: not linked)
} r_sub_t;

typedef struct {
    bool used;
    uint64_t gen;      //  bumped at every use of the slot
    zmsg_t *envelope;  //  the client's routing frames
    zframe_t *payload; //  the client's request (records, for resends)
    rl_header_t header;
    size_t in_size;          //  request record size, bytes
    size_t out_size;         //  reply record size, bytes
    uint8_t *reply;          //  reply body
    uint32_t reply_count;    //  records in it
    uint8_t *state;          //  REC_* per record
    uint8_t *attempts;       //  sends per record, but those answered frozen
    uint8_t *frozen;         //  per record: waits after a frozen answer (in state's block)
    uint32_t open;           //  records not REC_DONE
    uint32_t subs;           //  sub-requests outstanding for it
    uint32_t waiting;        //  records in REC_WAIT
    uint32_t frozen_waiting; //  of them, those waiting after a frozen answer
    uint32_t status;         //  reads: failure status; creates: always ok
    int64_t deadline_ms;
    int64_t retry_ms;        //  frozen records wait until then (backoff)
    int64_t frozen_pause_ms; //  the last backoff pause (0: none answered frozen yet)
    bool read_frozen;        //  a read's piece was answered frozen and waits
    int64_t admitted_us;     //  zclock_usecs at admission (the latency metric)
    size_t bytes;            //  held, counted in pending_bytes
    int32_t prev, next;      //  FIFO by deadline
} r_pending_t;

typedef struct {
    const char *bind;
    const char *ring_file;
    const char *shards;
    const char *name;
    long deadline_ms;
    long shard_deadline_ms;   //  the shards' answer bound: deadline_ms must exceed it
    long refresh_ms;          //  periodic ring refresh
    const char *keys_dir;     //  role key sets (docs/security.md); NULL only with insecure
    const char *cert;         //  this router's secret certificate
    const char *shard_key;    //  --shard-key: server key of the --shard endpoints
    bool insecure;            //  --insecure: no CURVE, no roles
    const char *metrics_bind; //  --metrics-bind IPV4:PORT (docs/metrics.md); NULL: off
    long max_epoch_jump;      //  a fetched ring may step the epoch by at most this
    long reply_queue_bytes;   //  reply bytes one client connection may queue
} r_options_t;

struct router_s {
    r_options_t options;
    rl_auth_t *auth;           //  CURVE, ZAP and roles (common/auth.h)
    router_metrics_t *metrics; //  NULL: no --metrics-bind
    zloop_t *loop;
    zsock_t *clients;
    replyq_t *replies; //  replies to clients, bounded per connection (common/replyq.h)
    ring_t *ring;
    r_shard_t **shards; //  by ring index
    size_t shard_count;
    r_shard_t *retired;
    uint64_t tick;
    int64_t started_ms;

    r_sub_t *subs; //  RL_ROUTER_SUBS_MAX
    uint32_t *sub_free;
    size_t sub_free_count;
    int32_t sub_head, sub_tail;
    uint64_t sub_gen;

    r_pending_t *pending; //  RL_ROUTER_PENDING_MAX
    uint32_t *pending_free;
    size_t pending_free_count;
    int32_t pending_head, pending_tail;
    size_t pending_bytes;
    size_t waiting_total; //  records in REC_WAIT over all requests

    bool refresh_active;
    uint32_t refresh_slot;
    int64_t refresh_expires_ms;
    r_shard_t *refresh_want; //  a shard that showed a higher epoch
    uint64_t epoch_refused;  //  the last fetched epoch refused beyond --max-epoch-jump
    int64_t refresh_next_ms;
    size_t refresh_rr;

    //  scratch
    int32_t *owners;       //  RL_BATCH_RECORDS_MAX
    rl_id_t *ids;          //  RL_BATCH_RECORDS_MAX
    uint32_t *group_count; //  RL_SHARDS_MAX
    uint8_t *frame_buf;    //  RL_MESSAGE_SIZE_MAX

    //  counters (status, exit log)
    uint64_t requests;
    uint64_t dropped;      //  client frames too short, replies not deliverable
    uint64_t malformed;    //  requests answered with a message-level error by the router
    uint64_t wrong_shard;  //  records (reads: sub-requests) answered wrong_shard
    uint64_t frozen;       //  records (reads: sub-requests) answered frozen, to be resent
    uint64_t unauthorized; //  requests refused unauthorized (a key without the role)
    uint64_t late;         //  shard replies to expired or freed sub-requests
    uint64_t bad_replies;  //  shard replies that did not decode or match
    uint64_t expired_subs;
    uint64_t busy;
    uint64_t nomem; //  allocations that failed (requests answered busy, replies dropped)
    uint64_t refreshes;
    uint64_t deadline_errors;     //  shard status polls whose deadline broke the order
    uint64_t epoch_jumps_refused; //  fetched rings beyond --max-epoch-jump (shards.c)

    int64_t log_window_ms;
    uint32_t log_lines;
    uint64_t log_suppressed;
};

//  clients.c: the front door -----------------------------------------------------

//  zloop handler: client requests.
int router_on_client_readable (zloop_t *loop, zsock_t *sock, void *arg);
//  Answers `request` through the client's envelope (taken), with `count`
//  records of `body`; an error status sends a bare header. A reply that
//  cannot be sent is dropped and counted.
void router_reply_send (router_t *self, zmsg_t **envelope_p, const rl_header_t *request,
                        uint32_t status, uint32_t count, const uint8_t *body, size_t body_size);
//  A warning about a client's error, at most RL_ROUTER_LOG_LINES_PER_S_MAX a second.
void __attribute__ ((format (printf, 2, 3)))
router_log_client_error (router_t *self, const char *format, ...);

//  router.c: the life cycle of client requests ---------------------------------

//  Takes envelope and payload of a checked request `h` (a placed or
//  broadcast operation): admits it and sends its pieces, or answers at once
//  (busy, empty batch).
void router_admit (router_t *self, zmsg_t *envelope, zframe_t *payload, const rl_header_t *h);
//  zloop handlers: shard replies, the tick.
int router_on_shard_readable (zloop_t *loop, zsock_t *sock, void *arg);
int router_on_tick (zloop_t *loop, int timer_id, void *arg);
//  The deadline of `p` passed (or the router stops): answers and frees it.
void router_pending_expire (router_t *self, r_pending_t *p);
//  Sends again, with the current ring, the records that wait after wrong_shard.
void router_redispatch_waiting (router_t *self);

//  shards.c: the shards of the ring, sub-requests, the ring refresh -------------

//  Installs `ring` (takes it on success, 0); -1 when a connection could not
//  be opened (the old ring stays, `ring` is the caller's).
int router_ring_adopt (router_t *self, ring_t *ring);
void router_shard_destroy (r_shard_t **shard_p);
//  Closes the retired shards whose sub-requests are gone (two ticks).
void router_retired_sweep (router_t *self);
//  The ring index of the shard that owns the 16 id bytes.
int router_owner (router_t *self, const uint8_t *id16);

//  The sub-request of a request id; NULL when it is not in flight (late).
r_sub_t *router_sub_find (router_t *self, uint64_t id);
//  A free sub-request for `shard`; NULL when the table or the shard's
//  in-flight bound is full.
r_sub_t *router_sub_alloc (router_t *self, r_shard_t *shard);
//  Starts its expiry clock and puts it in the FIFO of sends.
void router_sub_link (router_t *self, r_sub_t *sub);
//  Frees it; `sent`: it counted against its shard; `linked`: in the FIFO.
void router_sub_free (router_t *self, r_sub_t *sub, bool sent, bool linked);
//  Sends header + body to the sub's shard: 0 when sent; RL_STATUS_BUSY when out of memory,
//  RL_STATUS_UNAVAILABLE when the shard's connection takes nothing (nothing sent either way).
int router_sub_send (router_t *self, r_sub_t *sub, const uint8_t *body, size_t body_size);
//  Zeroed memory for a request, or NULL (logged, failpoint router.alloc).
void *router_alloc (router_t *self, size_t size);

//  Asks `target` (or the next shard with room) for its ring; nothing when a
//  refresh is already in flight or nothing can be sent.
void router_refresh_start (router_t *self, r_shard_t *target);
//  The refresh ended: blob is the ring's answer (NULL: none, or an error).
//  Adopts a newer ring, frees the sub-request and resends waiting records.
void router_refresh_done (router_t *self, r_sub_t *sub, const uint8_t *blob, size_t size);

//  Sends a status poll to every shard of the ring whose poll is due.
void router_probe_tick (router_t *self, int64_t now_ms);
//  The poll ended: status is the shard's answer (NULL: none, or an error).
//  Checks its deadline against --shard-deadline-ms and frees the sub-request.
void router_probe_done (router_t *self, r_sub_t *sub, const rl_status_rec_t *status);

#endif
