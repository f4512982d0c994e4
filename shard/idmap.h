/*  idmap.h: an open-addressing hash map from a 128-bit id to a u64.

    Used for the shard's account table (id -> slot), its index of recent
    transfers (id -> slot in the recent log) and the two-phase tables.
    Linear probing over a power-of-two table kept at most half full, which
    starts small and doubles as it fills (within memory reserved for the
    capacity hint: idmap.c); removal by backward shift, and clearing of the
    whole map. Ids of zero are not stored (they are invalid on the wire),
    so zero marks an empty slot.
*/
#ifndef RL_IDMAP_H
#define RL_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct idmap_t idmap_t;

idmap_t *idmap_new (size_t capacity_hint);
void idmap_destroy (idmap_t **self_p);
//  0 on success, -1 when memory ran out (the map is unchanged). Replaces an existing value.
int idmap_put (idmap_t *self, rl_id_t id, uint64_t value);
bool idmap_get (const idmap_t *self, rl_id_t id, uint64_t *value_p);
//  Grows the table now so that it holds `entries` ids in all without
//  growing again (a growth, O(size), taken out of a later burst of puts).
//  0, or -1 when memory ran out (the map is unchanged but for growths done).
int idmap_reserve (idmap_t *self, size_t entries);
//  The ids it holds before its next growth.
size_t idmap_capacity (const idmap_t *self);
//  A hint: id will be looked up soon; its slot is loaded into the cache
//  (a batch's loop calls it a few records ahead). Changes nothing.
void idmap_prefetch (const idmap_t *self, rl_id_t id);
//  Removes id if present; returns whether it was.
bool idmap_remove (idmap_t *self, rl_id_t id);
size_t idmap_size (const idmap_t *self);
void idmap_clear (idmap_t *self);

#endif
