/*  client.h: the C client library.

    A client holds one ZeroMQ DEALER socket connected to one or more
    endpoints (routers, or a shard directly); ZeroMQ spreads requests over
    the endpoints that have a live connection (ZMQ_IMMEDIATE), round-robin.

    Four ways to use it:
    - Blocking calls (rl_client_create_transfers, ...): send one request and
      wait for the reply whose request id matches; replies to earlier calls
      that timed out are recognised by their id and discarded.
    - Retry helpers (rl_client_create_transfers_retry, ...): a blocking
      create that resends the records whose outcome is still open, with the
      SAME ids, until every record has a definite result or the attempts are
      used up. Since a retry of an applied record answers `exists`, treat ok
      and exists alike as success.
    - Pipelined calls (rl_client_send / rl_client_recv): up to `window`
      requests in flight; replies come back in any order, matched by id.
    - Admin calls to one shard (rl_client_in_doubt, rl_client_audit,
      rl_client_resolve, ...) and fan-outs that ask every shard of a ring
      at once under one deadline (rl_client_status_all, ...).

    Return codes of every call:
        0                      the reply arrived with status ok
        > 0                    the reply's message-level status (rl_status_t)
        RL_CLIENT_TIMEOUT      no reply within timeout_ms: the outcome is
                               unknown; retry with the same ids
        RL_CLIENT_ERR_SEND     nothing was sent: no live connection within
                               the timeout (or the queue is full); retry
        RL_CLIENT_ERR_REPLY    the reply did not decode (counted, dropped);
                               the outcome is unknown: retry with the same ids
        RL_CLIENT_ERR_ARGS     the call was misused (count too large, ...)
        RL_CLIENT_ERR_WINDOW   rl_client_send: `window` requests are in
                               flight; receive (or cancel) one first
        RL_CLIENT_INCOMPLETE   a retry helper used up its attempts; the
                               records still open are outcome_unknown
        RL_CLIENT_ERR_NOMEM    the library could not allocate memory: before
                               the send nothing was sent; after it the reply
                               is lost and the outcome unknown. Either way
                               retry with the same ids (after freeing memory)
        RL_CLIENT_ERR_HANDSHAKE  fan-outs only: the server closed every
                               connection in the CURVE handshake and none
                               completed: the public key given for it is not
                               its key. Nothing reached it
        RL_CLIENT_ERR_REFUSED  fan-outs only: the server refused this
                               client's key in the CURVE handshake (not
                               among the keys it accepts). Nothing reached it
    Per-record outcomes are in the result records, as data.

    A client is used from one thread at a time. See docs/client.md.

    Security (docs/security.md): rl_client_set_curve makes every socket
    the library opens afterwards speak CURVE with this process's keypair,
    and pin the server's public key: the key registered for the endpoint
    (rl_client_add_server_key, e.g. from the ring), else the default key.
    Without rl_client_set_curve, connections are plain TCP, which only a
    server started with --insecure accepts.
*/
#ifndef RL_CLIENT_H
#define RL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define RL_CLIENT_TIMEOUT       (-1)
#define RL_CLIENT_ERR_SEND      (-2)
#define RL_CLIENT_ERR_REPLY     (-3)
#define RL_CLIENT_ERR_ARGS      (-4)
#define RL_CLIENT_ERR_WINDOW    (-5)
#define RL_CLIENT_INCOMPLETE    (-6)
#define RL_CLIENT_ERR_NOMEM     (-7)
#define RL_CLIENT_ERR_HANDSHAKE (-8)
#define RL_CLIENT_ERR_REFUSED   (-9)

typedef struct rl_client_t rl_client_t;

//  Security, process-wide: call from one thread before opening clients ----------
//
//  cert: this process's keypair (common/keys.h rl_cert_load), kept by the
//  caller until the last client is gone; NULL: plain TCP (insecure).
//  server_key: the Z85 key of servers with no key of their own (may be
//  NULL). Copies the key.
void rl_client_set_curve (void *cert, const char *server_key);
//  The server key of one endpoint, preferred to the default. 0, or -1 if
//  the key is not 40 Z85 characters or memory ran out.
int rl_client_add_server_key (const char *endpoint, const char *key);
//  Forgets the keypair and every server key (back to plain TCP).
void rl_client_clear_curve (void);
//  Connects sock (a DEALER of the caller) to endpoint the way the library
//  does: with CURVE and the endpoint's server key when security is on.
//  -1 if the endpoint does not parse, or security is on and no server key
//  is known for it (nothing is sent in clear then).
int rl_client_connect (void *sock, const char *endpoint);

//  endpoints: one or more ZeroMQ endpoints separated by commas.
rl_client_t *rl_client_new (const char *endpoints);
void rl_client_destroy (rl_client_t **self_p);
const char *rl_client_strerror (int rc);

//  Blocking calls --------------------------------------------------------------

//  The raw call: body is record_count records (or one blob). On success
//  *reply_p is a malloc'd copy of the reply body (caller frees) and
//  *reply_header its header. On a status reply, *reply_p is NULL.
int rl_client_call (rl_client_t *self, uint16_t operation, const void *body, size_t body_size,
                    uint32_t record_count, int timeout_ms, rl_header_t *reply_header,
                    uint8_t **reply_p, size_t *reply_size_p);

int rl_client_create_accounts (rl_client_t *self, const rl_account_t *accounts, size_t count,
                               rl_result_rec_t *results, int timeout_ms);
int rl_client_create_transfers (rl_client_t *self, const rl_transfer_t *transfers, size_t count,
                                rl_result_rec_t *results, int timeout_ms);
int rl_client_lookup_accounts (rl_client_t *self, const rl_id_t *ids, size_t count,
                               rl_account_t *out, int timeout_ms);
int rl_client_lookup_transfers (rl_client_t *self, const rl_id_t *ids, size_t count,
                                rl_transfer_t *out, int timeout_ms);
//  out has room for filter->limit transfers; *count_p is set.
int rl_client_get_account_transfers (rl_client_t *self, const rl_filter_t *filter,
                                     rl_transfer_t *out, size_t *count_p, int timeout_ms);
int rl_client_status (rl_client_t *self, rl_status_rec_t *out, int timeout_ms);
//  repl_status (docs/replication.md): the process's record, then a
//  primary's one per standby link; *count_p records (1..RL_REPL_RECORDS_MAX).
int rl_client_repl_status (rl_client_t *self, rl_repl_rec_t out[RL_REPL_RECORDS_MAX],
                           size_t *count_p, int timeout_ms);
int rl_client_load_ring (rl_client_t *self, const uint8_t *blob, size_t size, int timeout_ms);
//  *blob_p: malloc'd, caller frees.
int rl_client_get_ring (rl_client_t *self, uint8_t **blob_p, size_t *size_p, int timeout_ms);

//  Admin calls -------------------------------------------------------------------
//
//  Asked of one shard (a client connected to the shard's endpoint); a router
//  refuses them with unknown_operation. status, load_ring and get_ring above
//  are admin calls too, and a router answers those. Return like any call.
//
//  in_doubt: the shard's two-phase records that wait for something: live
//  attempts and undelivered decisions (as coordinator), prepared records (as
//  participant); see proto.h, rl_in_doubt_rec_t. *records_p: a malloc'd
//  array of *count_p records, NULL when there are none (caller frees).
int rl_client_in_doubt (rl_client_t *self, rl_in_doubt_rec_t **records_p, size_t *count_p,
                        int timeout_ms);
//  audit: whether every amount the shard holds in escrow is accounted for by
//  a live reservation or a prepared record (out->ok), with the first
//  discrepancy in out->message.
int rl_client_audit (rl_client_t *self, rl_audit_rec_t *out, int timeout_ms);
//  resolve: a heuristic decision on a prepared record whose coordinator is
//  gone for good (docs/two-phase.md). request: id, attempt (counter and seq
//  as in_doubt lists them), coordinator, state RL_TP_COMMIT or RL_TP_ABORT,
//  result RL_RESOLVE_FORCE. *answer: state RL_TP_ACKED, or RL_TP_REFUSED
//  with the reason in result (RL_RESOLVE_NOT_FOUND, ...; rl_resolve_reason
//  says it in words). A refusal is data: the call still returns 0.
int rl_client_resolve (rl_client_t *self, const rl_tp_rec_t *request, rl_tp_rec_t *answer,
                       int timeout_ms);
//  What a resolve answer's result means, for an operator ("" for 0).
const char *rl_resolve_reason (uint32_t result);

//  migrate_begin, _freeze, _drain, _unfreeze, _commit, _abort, _cleanup (op): a migrate record
//  to one shard, the stored record back in *out (docs/rebalance.md). The
//  export is a raw call (rl_client_call: the reply is a chunk blob);
//  migrate_import sends a chunk blob and answers the target's record.
int rl_client_migrate (rl_client_t *self, uint16_t op, const rl_migrate_rec_t *request,
                       rl_migrate_rec_t *out, int timeout_ms);
int rl_client_migrate_import (rl_client_t *self, const uint8_t *chunk, size_t size,
                              rl_migrate_rec_t *out, int timeout_ms);
//  migrate_lease (op 66): action RL_MIGRATE_LEASE_READ, _ACQUIRE or
//  _RELEASE for `plan`; the shard's stored migration in *stored and the
//  plan holding its lease (0: none) in *holder, after the action.
//  RL_STATUS_LEASE_HELD when another plan holds it.
int rl_client_migrate_lease (rl_client_t *self, uint64_t plan, uint32_t action,
                             rl_migrate_rec_t *stored, uint64_t *holder, int timeout_ms);

//  Fan-out: the same request to every shard ---------------------------------------
//
//  Sends one request to each of `count` endpoints at once (a connection of
//  its own to each, opened for the call), then waits for all the replies
//  until one deadline, timeout_ms after the call: the whole fan-out costs at
//  most one timeout, however many shards are down. replies[i] (or rcs[i])
//  answers endpoints[i]; each rc is what a blocking call to that endpoint
//  would return (RL_CLIENT_TIMEOUT: no reply by the deadline, the shard is
//  down or stalled; RL_CLIENT_ERR_SEND: the endpoint is not valid or no
//  socket could be made; RL_CLIENT_ERR_REPLY: only replies that did not
//  decode, or not what the operation answers; with CURVE on, instead of
//  a timeout, RL_CLIENT_ERR_HANDSHAKE when the endpoint closed every
//  connection in the handshake (the key given for it is not its key) and
//  RL_CLIENT_ERR_REFUSED when it refused this process's key: in both the
//  request never left this process). Every call returns the
//  number of endpoints whose rc is not 0. Use it with the endpoints of a
//  ring (ring_shard_endpoint) for cluster-wide admin: status, in_doubt,
//  audit, load_ring.
typedef struct {
    int rc;             //  as above
    rl_header_t header; //  the reply's header, when rc >= 0
    uint8_t *body;      //  malloc'd body when rc is 0 and the body is not empty, else NULL
    size_t body_size;
} rl_client_reply_t;

//  The raw fan-out: body is record_count records in wire form (or one blob).
//  Free the bodies with rl_client_replies_free.
size_t rl_client_fanout (const char *const *endpoints, size_t count, uint16_t operation,
                         const void *body, size_t body_size, uint32_t record_count, int timeout_ms,
                         rl_client_reply_t *replies);
void rl_client_replies_free (rl_client_reply_t *replies, size_t count);

//  Typed fan-outs. out[i] is zeroed unless rcs[i] is 0.
size_t rl_client_status_all (const char *const *endpoints, size_t count, int timeout_ms,
                             rl_status_rec_t *out, int *rcs);
size_t rl_client_audit_all (const char *const *endpoints, size_t count, int timeout_ms,
                            rl_audit_rec_t *out, int *rcs);
//  records[i]: malloc'd array of counts[i] records (NULL when none; caller
//  frees each).
size_t rl_client_in_doubt_all (const char *const *endpoints, size_t count, int timeout_ms,
                               rl_in_doubt_rec_t **records, size_t *counts, int *rcs);
//  Loads the ring blob into every endpoint; rcs[i] epoch_not_newer when that
//  shard serves this epoch or a newer one already.
size_t rl_client_load_ring_all (const char *const *endpoints, size_t count, const uint8_t *blob,
                                size_t size, int timeout_ms, int *rcs);

//  Retry helpers ---------------------------------------------------------------
//
//  Sends the batch; then, up to attempts_max sends in all, sends again (same
//  records, same ids, in the same relative order) every record whose outcome
//  is still open: no reply within timeout_ms, a retryable message status
//  (busy, unavailable, timeout, storage_error, wrong_shard, frozen), or an
//  infrastructure result (outcome_unknown, busy, aborted, wrong_shard,
//  in_progress, in_doubt, frozen, storage_error, or a code this version
//  does not know). Pauses between attempts that met backpressure, from
//  RL_CLIENT_RETRY_BACKOFF_MS_MIN doubling to RL_CLIENT_RETRY_BACKOFF_MS_MAX.
//
//  A linked chain (docs/payments.md) is sent again whole or not at all:
//  when one member's outcome is open, every member goes again (same ids,
//  same order); when its failure is decided, the others' linked_event_failed
//  (and a linked_event_chain_open) are final answers of the call. No id of
//  a failed chain is burned, its failing member's included: read what the
//  results leave of each id with rl_reply_burns (proto.h), not with
//  rl_result_burns of a member's code.
//
//  `frozen` (the account's arc is migrating or its data is on its way) is
//  retried until the helper's deadline, attempts_max * timeout_ms from the
//  call: an attempt whose open records are all frozen uses no attempt.
//
//  Returns 0 when every result is definite (ok, exists, or a failure that a
//  retry would repeat); RL_CLIENT_INCOMPLETE when the attempts or the
//  deadline ran out (open records are outcome_unknown, or `frozen` when
//  that was their last answer: call again later with the same ids, never
//  with new ones); a non-retryable status (malformed, duplicate_id, ...) or
//  RL_CLIENT_ERR_ARGS as soon as it is seen (open records outcome_unknown).
//  results[i] always answers records[i] (index i).
int rl_client_create_accounts_retry (rl_client_t *self, const rl_account_t *accounts, size_t count,
                                     rl_result_rec_t *results, int timeout_ms, int attempts_max);
int rl_client_create_transfers_retry (rl_client_t *self, const rl_transfer_t *transfers,
                                      size_t count, rl_result_rec_t *results, int timeout_ms,
                                      int attempts_max);

//  Pipelined calls -------------------------------------------------------------
//
//  rl_client_send sends one request (body: record_count records in wire
//  form, see codec.h, or one blob) and returns at once with its request id;
//  RL_CLIENT_ERR_WINDOW when `window` requests are already in flight. It
//  waits for a live connection up to the send timeout (default
//  RL_CLIENT_TIMEOUT_MS), then fails with RL_CLIENT_ERR_SEND (nothing sent).
//
//  rl_client_recv returns the reply to any request in flight (in whatever
//  order they come), and takes it out of the window: *reply_header (always
//  set when a reply was matched, so its request_id names the request) and a
//  malloc'd copy of the body in *body_p (NULL when empty; caller frees).
//  Returns like a blocking call; RL_CLIENT_ERR_ARGS when nothing is in
//  flight; RL_CLIENT_TIMEOUT when no reply came within timeout_ms (the
//  requests stay in flight: wait again, or cancel and resend the same ids).
//
//  Blocking calls may be mixed with pipelined ones: a reply to a request in
//  flight that arrives during a blocking call is kept for rl_client_recv.
int rl_client_send (rl_client_t *self, uint16_t operation, const void *body, size_t body_size,
                    uint32_t record_count, uint64_t *request_id_p);
//  Encodes host-order transfers and sends them (count <= RL_BATCH_RECORDS_MAX).
int rl_client_send_transfers (rl_client_t *self, const rl_transfer_t *transfers, size_t count,
                              uint64_t *request_id_p);
int rl_client_recv (rl_client_t *self, int timeout_ms, rl_header_t *reply_header, uint8_t **body_p,
                    size_t *body_size_p);
//  Forgets a request in flight (its reply, if it ever comes, is discarded).
//  0, or RL_CLIENT_ERR_ARGS when request_id is not in flight.
int rl_client_cancel (rl_client_t *self, uint64_t request_id);
//  1..RL_CLIENT_WINDOW_MAX (default RL_CLIENT_WINDOW_DEFAULT); RL_CLIENT_ERR_ARGS
//  otherwise. A window smaller than what is in flight lets requests drain.
int rl_client_set_window (rl_client_t *self, size_t window);
size_t rl_client_inflight (const rl_client_t *self);
void rl_client_set_send_timeout (rl_client_t *self, int timeout_ms);

//  Pipelined calls without copies ------------------------------------------------
//
//  For a load generator with many large batches in flight on many clients.
//  The window, the send timeout and the return codes are rl_client_send's
//  and rl_client_recv's; requests sent either way share the window.
//
//  rl_client_send_begin makes a request frame and sets *body_p to its body:
//  body_size bytes for the caller to fill in wire form (codec.h). It checks
//  the window first (RL_CLIENT_ERR_WINDOW: nothing made); RL_CLIENT_ERR_ARGS
//  when body_size exceeds RL_MESSAGE_SIZE_MAX, RL_CLIENT_ERR_NOMEM when
//  memory lacks. rl_client_send_end writes the header and sends the frame
//  (RL_CLIENT_ERR_ARGS when none was begun; RL_CLIENT_ERR_WINDOW when the
//  window filled or narrowed since the begin: nothing sent, the frame stays
//  begun for an end after a receive). A begin without its end is dropped
//  by the next begin or by destroy.
//
//  rl_client_recv_borrow is rl_client_recv without the copy: *body_p points
//  into the reply and stays valid until the next borrow on this client (or
//  its destroy). With timeout_ms 0 it takes only a reply that has arrived.
//
//  rl_client_wait_any waits up to timeout_ms until some of the `count`
//  clients (at most RL_CLIENT_WAIT_MAX) have a reply to take; ready[i] says
//  which. Returns how many (0: none in time, or interrupted), or
//  RL_CLIENT_ERR_ARGS when count is 0 or too large.
int rl_client_send_begin (rl_client_t *self, size_t body_size, uint8_t **body_p);
int rl_client_send_end (rl_client_t *self, uint16_t operation, uint32_t record_count,
                        uint64_t *request_id_p);
int rl_client_recv_borrow (rl_client_t *self, int timeout_ms, rl_header_t *reply_header,
                           const uint8_t **body_p, size_t *body_size_p);
int rl_client_wait_any (rl_client_t *const *clients, size_t count, int timeout_ms, bool *ready);

//  Decodes the result records of a create reply body (count = size / RL_RESULT_SIZE).
void rl_client_decode_results (const uint8_t *body, size_t count, rl_result_rec_t *results);

#endif
