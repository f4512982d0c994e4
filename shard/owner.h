/*  owner.h: which shard of a ring owns an account (header only).

    The ring maps the 16 bytes of an account id to a shard index
    (ring/ring.h); the index is what the shard compares and sends to, so no
    shard name is compared per record.
*/
#ifndef RL_OWNER_H
#define RL_OWNER_H

#include <assert.h>

#include "codec.h"
#include "proto.h"
#include "ring.h"

//  The index of the shard that owns the account in `ring`, or -1 when no
//  shard does (an empty ring).
static inline int
owner_of (const ring_t *ring, rl_id_t account_id)
{
    assert (ring);
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (account_id, bytes);
    return ring_lookup_id (ring, bytes);
}

#endif
