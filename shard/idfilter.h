/*  idfilter.h: a filter in memory of every transfer id a shard stores.

    A blocked ("split block") Bloom filter over 64-bit hashes of transfer
    ids. It answers "certainly absent" or "maybe present": a shard asks it
    before the idempotency read of its ingested index (journal.c), and skips
    that read when the id is certainly absent, which almost every new id is.
    It never forgets an id (no false "absent"); a false "present" only costs
    the read it would have made anyway. See idfilter.c for the layout, the
    false-positive rates and the limits.
*/
#ifndef RL_IDFILTER_H
#define RL_IDFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

//  Bits of filter per id it is sized for: about 0.1% false "present" at
//  its capacity, about 3% at twice its capacity (idfilter.c).
#define IDFILTER_BITS_PER_KEY 16
//  Ids the smallest filter a shard opens with is sized for (2 MB): room
//  for four checkpoint intervals before the first growth.
#define IDFILTER_KEYS_MIN (1u << 20)
//  The smallest filter idfilter_new makes (2 KB; tests use it).
#define IDFILTER_KEYS_FLOOR (1u << 10)
//  Ids the largest filter is sized for (256 MB). A filter never grows past
//  it: beyond, it takes more ids and answers "maybe" more often.
#define IDFILTER_KEYS_MAX (1u << 27)

typedef struct idfilter_t idfilter_t;

//  A filter sized for `keys` ids (rounded up to a power of two within
//  [IDFILTER_KEYS_FLOOR, IDFILTER_KEYS_MAX]); NULL when memory ran out.
idfilter_t *idfilter_new (size_t keys);
void idfilter_destroy (idfilter_t **self_p);

//  The hash an id is filed under (XXH3 of its 16 bytes).
uint64_t idfilter_hash (rl_id_t id);
//  The hash a credit leg, (transfer id, debit account), is filed under
//  (XXH3 of the 32 bytes with a seed of its own, so that a leg and a
//  transfer id never share a hash by construction).
uint64_t idfilter_hash_leg (rl_id_t id, rl_id_t debit_account_id);
void idfilter_add (idfilter_t *self, uint64_t hash);
//  false: no id of this hash was ever added. true: maybe one was.
bool idfilter_may_hold (const idfilter_t *self, uint64_t hash);
//  A hint: the block of `hash` into the cache (a batch's loop calls it a few
//  ids ahead, so that the misses overlap). Changes nothing.
void idfilter_prefetch (const idfilter_t *self, uint64_t hash);

//  Ids added (each add counts, an id added twice twice).
size_t idfilter_count (const idfilter_t *self);
//  Ids it was sized for; more make false "present" likelier, never a false "absent".
size_t idfilter_capacity (const idfilter_t *self);
//  Has it taken more ids than it was sized for (and could a bigger one be made)?
bool idfilter_full (const idfilter_t *self);
size_t idfilter_bytes (const idfilter_t *self);

#endif
