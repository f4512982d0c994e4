/*  ringcheck.h: asking the peer shards for the ring they serve, so that a
    shard learns a ring of a higher epoch that gives its name to another
    endpoint: the ring's epoch as a fencing token (docs/replication.md,
    "The ring's epoch as the fence"). See ringcheck.c for the design.
*/
#ifndef RL_RINGCHECK_H
#define RL_RINGCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#include "auth.h"
#include "ring.h"

typedef struct ringcheck_t ringcheck_t;

//  A peer's ring: ring is the callee's (it destroys it). peer: its name.
typedef void (ringcheck_fn) (void *arg, const char *peer, ring_t *ring);

//  NULL when memory ran out. auth: CURVE to the peers (borrowed).
ringcheck_t *ringcheck_new (zloop_t *loop, rl_auth_t *auth, ringcheck_fn *on_ring, void *arg);
void ringcheck_destroy (ringcheck_t **self_p);
//  The start-up check: asks every shard of ring but `own` for its ring,
//  again every RINGCHECK_RESEND_MS, until each answered or timeout_ms
//  passed. 0, or -1 when memory or sockets ran out.
int ringcheck_start (ringcheck_t *self, const ring_t *ring, const char *own, int timeout_ms);
//  Is the start-up check still waiting (a peer has not answered, and the
//  timeout has not passed)?
bool ringcheck_pending (ringcheck_t *self);
//  Asks the shard at index of ring for its ring (a reply of it carried a
//  higher epoch), at most once per RINGCHECK_ASK_MS per peer.
void ringcheck_ask (ringcheck_t *self, const ring_t *ring, size_t index);

#define RINGCHECK_RESEND_MS 250  //  the start-up check asks an unanswered peer again
#define RINGCHECK_ASK_MS    1000 //  a peer asked again after a higher epoch, at most
#endif
