/*  client_internal.h: what client.c shares with client_pipe.c and
    client_admin.c, and nothing else includes. The client's fields, the window and stash helpers,
   and the framing; client.c's top comment gives their invariants.
*/

#ifndef RL_CLIENT_INTERNAL_H
#define RL_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "client.h"
#include "codec.h"

struct rl_client_t {
    zsock_t *dealer;
    uint64_t next_request_id;
    uint64_t stale_replies; //  replies to calls that had timed out
    uint64_t bad_replies;   //  replies that did not decode
    size_t window;          //  pipelined requests allowed in flight
    uint64_t *inflight;     //  their ids, RL_CLIENT_WINDOW_MAX slots
    size_t inflight_count;
    zlist_t *stash;      //  zframe_t: replies to them, received by a blocking call
    int send_timeout_ms; //  rl_client_send: wait for a connection this long
    zframe_t *begun;     //  rl_client_send_begin: the request being filled
    zframe_t *lent;      //  rl_client_recv_borrow: the reply last lent
};

void *client_i_alloc (size_t size);
zframe_t *client_i_frame_new (size_t body_size);
int client_i_inflight_find (const rl_client_t *self, uint64_t request_id);
void client_i_inflight_remove (rl_client_t *self, size_t i);
int client_i_receive_frame (rl_client_t *self, uint64_t request_id, int timeout_ms,
                            rl_header_t *header, zframe_t **frame_p, rl_status_t *check_p);
int client_i_receive (rl_client_t *self, uint64_t request_id, int timeout_ms, rl_header_t *header,
                      uint8_t **reply_p, size_t *reply_size_p);
int client_i_send_frame (rl_client_t *self, zframe_t **frame_p, int timeout_ms);
//  Handshake monitors (client.c): a reader of sock's CURVE handshake events,
//  or NULL (CURVE off, or no monitor could be made: no diagnosis). For a
//  socket that lives for one call only. The verdict drains the events: 0
//  (a handshake succeeded, or none failed), RL_CLIENT_ERR_HANDSHAKE or
//  RL_CLIENT_ERR_REFUSED. Destroy stops monitoring sock, then closes the
//  reader; call it before sock is destroyed.
zsock_t *client_i_monitor_new (zsock_t *sock);
int client_i_monitor_verdict (zsock_t *monitor);
void client_i_monitor_destroy (zsock_t *sock, zsock_t **monitor_p);
int client_i_send (rl_client_t *self, uint16_t operation, uint64_t request_id, const void *body,
                   size_t body_size, uint32_t record_count, int timeout_ms);
zframe_t *client_i_stash_take (rl_client_t *self, rl_header_t *header, rl_status_t *check_p);
int client_i_take_reply (rl_client_t *self, zframe_t **frame_p, rl_status_t check,
                         rl_header_t *header, uint8_t **reply_p, size_t *reply_size_p);

#endif
