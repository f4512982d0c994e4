/*  senders.h: the shard names of peer keys, for the sender rules of the
    two-phase operations (docs/security.md, "Sender rules").

    A message from a peer carries the sender's public key (its ZAP User-Id,
    common/auth.h); the rules compare shard NAMES (the coordinator a
    PREPARE names, the one a prepared record names, the participant of an
    attempt). This table gives the name of a key: every shard of every ring
    this process has served since it started, with the ring's key (or, for
    a ring written without keys, KEYDIR/shard/NAME.key), so that a
    coordinator removed from the ring still has its name; and for a key
    that no such ring named (removed before this process started), the
    certificate KEYDIR/shard/CANDIDATE.key of the name a message claims.
    See senders.c for the invariants and limits.
*/
#ifndef RL_SENDERS_H
#define RL_SENDERS_H

#include <stddef.h>

#include "auth.h"
#include "ring.h"

typedef struct senders_t senders_t;

//  auth is borrowed (its key sets' folder). NULL when memory ran out.
senders_t *senders_new (rl_auth_t *auth);
void senders_destroy (senders_t **self_p);
//  Learns the name of every shard of ring (a newer ring wins for a key).
void senders_learn_ring (senders_t *self, const ring_t *ring);
//  The shard name of key (Z85), or NULL. A key no ring named is compared
//  with KEYDIR/shard/CANDIDATE.key when candidate is not NULL (a file
//  read: call it at most once a message); a match is learned.
const char *senders_name (senders_t *self, const char *key, const char *candidate);
//  Names known (tests, status).
size_t senders_count (const senders_t *self);

#endif
