/*  auth.c: CURVE, ZAP and roles of a server (the contract is in auth.h).

    DESIGN
    The ZAP handler is a REP socket bound to inproc://zeromq.zap.01 and read
    by the server's own loop (no thread): libzmq runs handshakes in its I/O
    threads and waits for the ZAP reply there, so the loop answers between
    turns and nothing else blocks. A request (ZeroMQ RFC 27) is: version
    "1.0", request id, domain, address, routing id, mechanism, and for
    CURVE one 32-byte client public key. The reply is: version, request id,
    "200" or "400", a text, the user id (the Z85 key when admitted) and no
    metadata. Anything but CURVE is refused: a secure server has no other
    mechanism.

    An unknown key makes the handler look at the key-set folders once more
    before it refuses (four stat calls; a re-read only if they changed),
    because libzmq does not reconnect after a refusal: a process whose key
    was added a moment ago must get in on its first try.

    Handshake failures are counted from the server socket's monitor
    (ZMQ_EVENT_HANDSHAKE_FAILED_*): a client with no key (plain TCP: a
    mechanism mismatch), with a key ZAP refused, or speaking nonsense.

    LIMITS
    S_ZAP_PER_TURN_MAX ZAP requests and S_EVENTS_PER_TURN_MAX monitor
    events are read per readable event; the rest wait for the next.
*/
#include "auth.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define S_ZAP_ENDPOINT        "inproc://zeromq.zap.01"
#define S_ZAP_PER_TURN_MAX    256
#define S_ZAP_BIND_ATTEMPTS   100 //  binds tried while the endpoint is still in use
#define S_ZAP_BIND_RETRY_MS   10  //  between them
#define S_EVENTS_PER_TURN_MAX 256
#define S_HANDSHAKE_FAILED                                                                         \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL                    \
     | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

struct rl_auth_t {
    bool insecure;
    char *keys_dir;
    zcert_t *cert;
    rl_keyset_t *keys;
    zsock_t *zap;     //  REP, bound to S_ZAP_ENDPOINT
    zsock_t *monitor; //  PAIR, connected to the server socket's monitor
    zloop_t *loop;    //  where the readers are (rl_auth_attach), NULL before
    int64_t refreshed_ms;
    uint64_t refused;
    uint64_t admitted;
    uint64_t reloads;
};

rl_auth_t *
rl_auth_new_insecure (void)
{
    rl_auth_t *self = (rl_auth_t *) calloc (1, sizeof *self);
    if (self) {
        self->insecure = true;
    }
    return self;
}

rl_auth_t *
rl_auth_new (const char *keys_dir, const char *cert_path, char *err, size_t err_size)
{
    assert (keys_dir && cert_path);
    rl_auth_t *self = (rl_auth_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->keys_dir = strdup (keys_dir);
    self->cert = self->keys_dir ? rl_cert_load (cert_path, err, err_size) : NULL;
    self->keys = self->cert ? rl_keyset_new (keys_dir, err, err_size) : NULL;
    if (!self->keys) {
        rl_auth_destroy (&self);
        return NULL;
    }
    self->zap = zsock_new (ZMQ_REP);
    int bound = self->zap ? zsock_bind (self->zap, S_ZAP_ENDPOINT) : -1;
    //  A handler of this process destroyed just before (a promoted standby's,
    //  replaced by its primary's) may still hold the endpoint: libzmq
    //  releases it asynchronously.
    for (int i = 0;
         bound != 0 && self->zap && zmq_errno () == EADDRINUSE && i < S_ZAP_BIND_ATTEMPTS; i++) {
        zclock_sleep (S_ZAP_BIND_RETRY_MS);
        bound = zsock_bind (self->zap, S_ZAP_ENDPOINT);
    }
    if (!self->zap || bound != 0) {
        snprintf (err, err_size, "cannot bind the ZAP handler (%s)", zmq_strerror (zmq_errno ()));
        rl_auth_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->zap, 0);
    self->refreshed_ms = zclock_mono ();
    return self;
}

void
rl_auth_destroy (rl_auth_t **self_p)
{
    assert (self_p);
    rl_auth_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->monitor);
        zsock_destroy (&self->zap);
        rl_keyset_destroy (&self->keys);
        zcert_destroy (&self->cert);
        free (self->keys_dir);
        free (self);
        *self_p = NULL;
    }
}

bool
rl_auth_insecure (const rl_auth_t *self)
{
    assert (self);
    return self->insecure;
}

zcert_t *
rl_auth_cert (rl_auth_t *self)
{
    assert (self);
    return self->cert;
}

rl_keyset_t *
rl_auth_keys (rl_auth_t *self)
{
    assert (self);
    return self->keys;
}

static int s_on_monitor (zloop_t *loop, zsock_t *monitor, void *arg);

int
rl_auth_server (rl_auth_t *self, zsock_t *sock)
{
    assert (self && sock);
    if (self->insecure) {
        return 0;
    }
    assert (!self->monitor); //  one server socket per process
    zsock_set_zap_domain (sock, RL_AUTH_ZAP_DOMAIN);
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    //  Named by a count, not by the address alone: a promoted standby's
    //  auth is freed just before the primary's is made, malloc may give
    //  the new one the same address, and the old socket's monitor endpoint
    //  may not be unbound yet (libzmq closes sockets in the background).
    static unsigned monitors;
    char endpoint[96];
    snprintf (endpoint, sizeof endpoint, "inproc://rl-auth-monitor-%u-%p", ++monitors,
              (void *) self);
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint, S_HANDSHAKE_FAILED) != 0) {
        return -1;
    }
    self->monitor = zsock_new (ZMQ_PAIR);
    if (!self->monitor || zsock_connect (self->monitor, "%s", endpoint) != 0) {
        return -1;
    }
    if (self->loop && zloop_reader (self->loop, self->monitor, s_on_monitor, self) != 0) {
        return -1;
    }
    return 0;
}

int
rl_auth_client (rl_auth_t *self, zsock_t *sock, const char *server_key)
{
    assert (self && sock);
    if (self->insecure) {
        return 0;
    }
    if (!server_key || !rl_key_valid (server_key)) {
        return -1;
    }
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, server_key);
    return 0;
}

int
rl_auth_peer_key (rl_auth_t *self, const char *name, const char *ring_key,
                  char out[RL_KEY_TEXT_SIZE])
{
    assert (self && name && ring_key);
    out[0] = 0;
    if (self->insecure) {
        return 0;
    }
    if (rl_key_valid (ring_key)) {
        memcpy (out, ring_key, RL_KEY_TEXT_SIZE);
        return 0;
    }
    char path[4096];
    snprintf (path, sizeof path, "%s/shard/%s.key", self->keys_dir, name);
    return rl_key_resolve (path, out, NULL, 0);
}

//  One ZAP request; the reply says yes only to a CURVE key in some role.
static void
s_zap_answer (rl_auth_t *self, zmsg_t *request)
{
    char *version = zmsg_popstr (request);
    char *request_id = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *routing_id = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);
    char key[RL_KEY_TEXT_SIZE] = "";
    bool ok = false;
    if (version && strcmp (version, "1.0") == 0 && mechanism && strcmp (mechanism, "CURVE") == 0
        && credentials && zframe_size (credentials) == 32) {
        zmq_z85_encode (key, zframe_data (credentials), 32);
        ok = rl_keyset_roles (self->keys, key) != 0;
        if (!ok && rl_keyset_refresh (self->keys, 0, NULL, 0) > 0) {
            //  A key added since the last tick: a client refused now would
            //  not try again (libzmq gives up after an authentication
            //  failure), so the folders are looked at before refusing.
            self->reloads++;
            ok = rl_keyset_roles (self->keys, key) != 0;
        }
    }
    if (ok) {
        self->admitted++;
    } else {
        rl_debug ("handshake refused from %s: %s", address ? address : "?",
                  key[0] ? "key in no role" : "not a CURVE key");
    }
    zmsg_t *reply = zmsg_new ();
    if (reply) {
        zmsg_addstr (reply, "1.0");
        zmsg_addstr (reply, request_id ? request_id : "");
        zmsg_addstr (reply, ok ? "200" : "400");
        zmsg_addstr (reply, ok ? "OK" : "key in no role");
        zmsg_addstr (reply, ok ? key : "");
        zmsg_addmem (reply, NULL, 0);
        zmsg_send (&reply, self->zap);
    }
    zframe_destroy (&credentials);
    free (version);
    free (request_id);
    free (domain);
    free (address);
    free (routing_id);
    free (mechanism);
}

static int
s_on_zap (zloop_t *loop, zsock_t *zap, void *arg)
{
    (void) loop;
    rl_auth_t *self = (rl_auth_t *) arg;
    for (int n = 0; n < S_ZAP_PER_TURN_MAX && (zsock_events (zap) & ZMQ_POLLIN); n++) {
        zmsg_t *request = zmsg_recv (zap);
        if (!request) {
            break;
        }
        s_zap_answer (self, request);
        zmsg_destroy (&request);
    }
    return 0;
}

static int
s_on_monitor (zloop_t *loop, zsock_t *monitor, void *arg)
{
    (void) loop;
    rl_auth_t *self = (rl_auth_t *) arg;
    for (int n = 0; n < S_EVENTS_PER_TURN_MAX && (zsock_events (monitor) & ZMQ_POLLIN); n++) {
        zmsg_t *event = zmsg_recv (monitor);
        if (!event) {
            break;
        }
        zframe_t *head = zmsg_first (event);
        if (head && zframe_size (head) >= 2) {
            uint16_t kind;
            memcpy (&kind, zframe_data (head), 2);
            if (kind & S_HANDSHAKE_FAILED) {
                self->refused++;
            }
        }
        zmsg_destroy (&event);
    }
    return 0;
}

int
rl_auth_attach (rl_auth_t *self, zloop_t *loop)
{
    assert (self && loop);
    if (self->insecure) {
        return 0;
    }
    if (zloop_reader (loop, self->zap, s_on_zap, self) != 0) {
        return -1;
    }
    self->loop = loop;
    if (self->monitor && zloop_reader (loop, self->monitor, s_on_monitor, self) != 0) {
        return -1;
    }
    return 0;
}

void
rl_auth_tick (rl_auth_t *self, int64_t now_ms, bool force)
{
    assert (self);
    if (self->insecure || (!force && now_ms - self->refreshed_ms < RL_AUTH_REFRESH_MS)) {
        return;
    }
    self->refreshed_ms = now_ms;
    char err[512];
    int rc = rl_keyset_refresh (self->keys, force, err, sizeof err);
    if (rc > 0) {
        self->reloads++;
        rl_info ("key sets re-read: %zu keys", rl_keyset_size (self->keys));
    } else if (rc < 0) {
        rl_warn ("key sets not re-read, the old ones stay: %s", err);
    }
}

unsigned
rl_auth_roles (rl_auth_t *self, zframe_t *frame, const char **user_p)
{
    assert (self && frame);
    if (self->insecure) {
        if (user_p) {
            *user_p = "";
        }
        return RL_ROLE_ALL;
    }
    const char *user = zframe_meta (frame, "User-Id");
    if (user_p) {
        *user_p = user ? user : "";
    }
    return user ? rl_keyset_roles (self->keys, user) : 0;
}

uint64_t
rl_auth_refused (const rl_auth_t *self)
{
    assert (self);
    return self->refused;
}

uint64_t
rl_auth_admitted (const rl_auth_t *self)
{
    assert (self);
    return self->admitted;
}

uint64_t
rl_auth_reloads (const rl_auth_t *self)
{
    assert (self);
    return self->reloads;
}

size_t
rl_auth_key_count (rl_auth_t *self)
{
    assert (self);
    return self->keys ? rl_keyset_size (self->keys) : 0;
}
