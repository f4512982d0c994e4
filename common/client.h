/*  client.h: the C client library (blocking calls).

    A client holds one ZeroMQ DEALER socket connected to one or more
    endpoints (routers, or a shard directly); ZeroMQ spreads requests over
    them round-robin. Each call sends one request and waits for the reply
    whose request id matches; replies to earlier calls that timed out are
    recognised by their id and discarded.

    Return codes of every call:
        0                the reply arrived with status ok
        > 0              the reply's message-level status (rl_status_t)
        RL_CLIENT_TIMEOUT      no reply within timeout_ms: the outcome is
                               unknown; retry with the same ids
        RL_CLIENT_ERR_SEND     the request could not be queued
        RL_CLIENT_ERR_REPLY    the reply did not decode (counted, dropped)
        RL_CLIENT_ERR_ARGS     the call was misused (count too large)
    Per-record outcomes are in the result records, as data.

    See docs/client.md.
*/
#ifndef RL_CLIENT_H
#define RL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define RL_CLIENT_TIMEOUT   (-1)
#define RL_CLIENT_ERR_SEND  (-2)
#define RL_CLIENT_ERR_REPLY (-3)
#define RL_CLIENT_ERR_ARGS  (-4)

typedef struct rl_client_t rl_client_t;

//  endpoints: one or more ZeroMQ endpoints separated by commas.
rl_client_t *rl_client_new (const char *endpoints);
void         rl_client_destroy (rl_client_t **self_p);
const char  *rl_client_strerror (int rc);

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
int rl_client_load_ring (rl_client_t *self, const uint8_t *blob, size_t size, int timeout_ms);
//  *blob_p: malloc'd, caller frees.
int rl_client_get_ring (rl_client_t *self, uint8_t **blob_p, size_t *size_p, int timeout_ms);

#endif
