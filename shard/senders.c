/*  senders.c: the table key -> shard name of the sender rules.

    DESIGN
    A czmq hash (zhashx) from a Z85 public key to a shard name. senders_learn_ring
    adds every shard of a ring the server adopts (and the one it starts
    with); a key already known takes the newer ring's name. Names are
    never forgotten while the table has room, so a coordinator removed
    from the ring keeps its name and can deliver its decisions. A key no
    ring named is looked up, on demand, as the certificate of the name the
    message claims (KEYDIR/shard/NAME.key, the convention of rl_keygen,
    tools/cluster.sh and rebalance --keys); a match is learned.

    INVARIANTS
    1. A key maps to exactly one name: the last ring (or certificate) that
       gave it one.
    2. Only keys that a ring or a certificate of the key sets gives a name
       are in the table: a sender is never named from what it claims alone.

    LIMITS: RL_SENDERS_MAX keys. Beyond, the table is emptied and the
    current ring learned again (names of removed shards then come from
    their certificates). senders_name is O(1) plus, for an unknown key,
    one file read.
*/
#include "senders.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "log.h"
#include "rl_limits.h"

struct senders_t {
    rl_auth_t *auth;
    zhashx_t *names; //  key (Z85) -> name (copies; keys are copied by zhashx)
};

static void *
s_name_dup (const void *name)
{
    return strdup (name);
}

static void
s_name_free (void **name_p)
{
    free (*name_p);
    *name_p = NULL;
}

senders_t *
senders_new (rl_auth_t *auth)
{
    assert (auth);
    senders_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->auth = auth;
    self->names = zhashx_new ();
    if (!self->names) {
        free (self);
        return NULL;
    }
    zhashx_set_duplicator (self->names, s_name_dup);
    zhashx_set_destructor (self->names, s_name_free);
    return self;
}

void
senders_destroy (senders_t **self_p)
{
    assert (self_p);
    senders_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->names);
        free (self);
        *self_p = NULL;
    }
}

//  Invariant 1: the newest name wins.
static void
s_learn (senders_t *self, const char *key, const char *name)
{
    assert (key && name);
    zhashx_update (self->names, key, (void *) name);
}

void
senders_learn_ring (senders_t *self, const ring_t *ring)
{
    assert (self && ring);
    if (rl_auth_insecure (self->auth)) {
        return; //  no keys: no sender has a name
    }
    if (zhashx_size (self->names) + ring_shard_count (ring) > RL_SENDERS_MAX) {
        zhashx_purge (self->names); //  LIMITS: the certificates name the others
    }
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        const char *name = ring_shard_name (ring, i);
        char key[RL_KEY_TEXT_SIZE];
        if (rl_auth_peer_key (self->auth, name, ring_shard_key (ring, i), key) == 0 && key[0]) {
            s_learn (self, key, name);
        }
    }
    assert (zhashx_size (self->names) <= RL_SENDERS_MAX);
}

//  A name that can only be a file in KEYDIR/shard: [A-Za-z0-9._-], not "." or
//  "..", shorter than RL_SHARD_NAME_SIZE_MAX (the claim comes off the network).
static bool
s_name_valid (const char *name)
{
    size_t n = strnlen (name, RL_SHARD_NAME_SIZE_MAX);
    if (n == 0 || n == RL_SHARD_NAME_SIZE_MAX || strcmp (name, ".") == 0
        || strcmp (name, "..") == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

const char *
senders_name (senders_t *self, const char *key, const char *candidate)
{
    assert (self && key);
    const char *name = zhashx_lookup (self->names, key);
    if (name || !candidate || !s_name_valid (candidate) || !key[0]) {
        return name;
    }
    char file_key[RL_KEY_TEXT_SIZE];
    if (rl_auth_peer_key (self->auth, candidate, "", file_key) != 0
        || strcmp (file_key, key) != 0) {
        return NULL;
    }
    if (zhashx_size (self->names) >= RL_SENDERS_MAX) {
        zhashx_purge (self->names);
    }
    s_learn (self, key, candidate);
    return zhashx_lookup (self->names, key); //  invariant 2: the certificate named it
}

size_t
senders_count (const senders_t *self)
{
    assert (self);
    return zhashx_size (self->names);
}
