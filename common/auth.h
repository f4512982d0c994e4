/*  auth.h: authentication and authorisation of a server's connections
    (docs/security.md): CURVE on the server socket, a ZAP handler that
    admits only keys present in some role, handshake failures counted, and
    the roles of each message's sender.

    A server (a shard, a router) makes one rl_auth_t before it binds:

        rl_auth_t *auth = rl_auth_new (keys_dir, cert_path, err, sizeof err);
        rl_auth_server (auth, router);          //  before zsock_bind
        rl_auth_attach (auth, loop);            //  ZAP and monitor readers
        ...
        unsigned roles = rl_auth_roles (auth, payload_frame);

    and calls rl_auth_tick now and then (the key sets follow their folders).
    rl_auth_new_insecure makes the --insecure variant: no CURVE, no ZAP,
    and every message has every role.

    INVARIANTS
    1. The ZAP handler is bound (inproc://zeromq.zap.01) before any CURVE
       server socket exists, so no handshake ever goes unchecked.
    2. ZAP admits a key iff rl_keyset_roles gives it a role at that moment;
       it answers User-Id = the Z85 public key, so every message received
       on that connection carries the key it was sent with.
    3. Roles are looked up per message in the current key sets: a removed
       key loses its roles on connections already open at the next refresh.

    LIMITS
    One rl_auth_t per process (ZAP has one endpoint per ZeroMQ context).
    Key sets are re-read at most once per RL_AUTH_REFRESH_MS.
*/
#ifndef RL_AUTH_H
#define RL_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "keys.h"

#define RL_AUTH_REFRESH_MS 1000 //  how often the key-set folders are checked
#define RL_AUTH_ZAP_DOMAIN "ringledger"

typedef struct rl_auth_t rl_auth_t;

//  Secure: loads the secret certificate and the key sets, binds the ZAP
//  handler. NULL with err set on failure.
rl_auth_t *rl_auth_new (const char *keys_dir, const char *cert_path, char *err, size_t err_size);
//  --insecure: nothing checked.
rl_auth_t *rl_auth_new_insecure (void);
void rl_auth_destroy (rl_auth_t **self_p);

bool rl_auth_insecure (const rl_auth_t *self);
zcert_t *rl_auth_cert (rl_auth_t *self);     //  NULL when insecure
rl_keyset_t *rl_auth_keys (rl_auth_t *self); //  NULL when insecure

//  Makes sock a CURVE server with this keypair (before it binds) and
//  watches its handshakes. -1 if the monitor could not be made.
int rl_auth_server (rl_auth_t *self, zsock_t *sock);
//  Makes sock a CURVE client with this keypair that pins server_key (Z85),
//  before it connects. -1 when secure and server_key is not a key.
int rl_auth_client (rl_auth_t *self, zsock_t *sock, const char *server_key);
//  The server key of a peer shard: ring_key (the ring's, if not ""), else
//  the key of KEYDIR/shard/NAME.key (a ring written before keys existed).
//  0 with out set, -1 if neither exists; 0 with out "" when insecure.
int rl_auth_peer_key (rl_auth_t *self, const char *name, const char *ring_key,
                      char out[RL_KEY_TEXT_SIZE]);
//  Registers the ZAP handler and the handshake monitor as loop readers
//  (before or after rl_auth_server).
int rl_auth_attach (rl_auth_t *self, zloop_t *loop);
//  Re-reads the key sets if their folders changed, at most once per
//  RL_AUTH_REFRESH_MS (force: now). now_ms: a monotonic clock.
void rl_auth_tick (rl_auth_t *self, int64_t now_ms, bool force);

//  The roles of the sender of a received frame (RL_ROLE_ALL when insecure;
//  0 for a key no longer in any role). user: its Z85 key ("" if none).
unsigned rl_auth_roles (rl_auth_t *self, zframe_t *frame, const char **user_p);

//  Counters, for status.
uint64_t rl_auth_refused (const rl_auth_t *self);  //  handshakes that failed
uint64_t rl_auth_admitted (const rl_auth_t *self); //  keys ZAP admitted
uint64_t rl_auth_reloads (const rl_auth_t *self);  //  key-set re-reads
size_t rl_auth_key_count (rl_auth_t *self);        //  keys in the sets

#endif
