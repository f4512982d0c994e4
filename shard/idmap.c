/*  idmap.c: see idmap.h.

    The hash of an id mixes both halves with a multiply-xorshift; client ids
    may be sequential (1, 2, 3...) or random UUIDs, and both must spread.
    Growth doubles the table and reinserts: O(n) once per doubling, which
    the account table pays rarely and the recent index never (it is sized
    for a full checkpoint interval up front).

    INVARIANTS
    1. The table size is a power of two and at most half full, so a probe
       always ends at an empty slot.
    2. An id of zero is never stored: zero marks an empty slot.
    3. Removal shifts the later entries of the probe run back into the hole
       (backward shift), so no lookup stops early at a removed id's slot.

    LIMITS: the table doubles when half full; a put that cannot grow it
    returns -1 and leaves the map unchanged.
*/
#include "idmap.h"

#include <assert.h>
#include <stdlib.h>

typedef struct {
    rl_id_t id;
    uint64_t value;
} s_slot_t;

struct idmap_t {
    s_slot_t *slots;
    size_t mask; //  slot count - 1; slot count is a power of two
    size_t size; //  occupied slots
};

static inline size_t
s_hash (rl_id_t id)
{
    uint64_t h = id.lo * 0x9E3779B97F4A7C15ull ^ (id.hi + 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return (size_t) h;
}

static size_t
s_slots_for (size_t capacity)
{
    size_t slots = 16;
    while (slots < capacity * 2) {
        slots *= 2;
    }
    return slots;
}

idmap_t *
idmap_new (size_t capacity_hint)
{
    idmap_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    size_t slots = s_slots_for (capacity_hint);
    self->slots = calloc (slots, sizeof (s_slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->mask = slots - 1;
    return self;
}

void
idmap_destroy (idmap_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->slots);
        free (*self_p);
        *self_p = NULL;
    }
}

static s_slot_t *
s_find (s_slot_t *slots, size_t mask, rl_id_t id)
{
    size_t i = s_hash (id) & mask;
    while (true) {
        s_slot_t *slot = &slots[i];
        if (rl_id_is_zero (slot->id) || rl_id_eq (slot->id, id)) {
            return slot;
        }
        i = (i + 1) & mask;
    }
}

static int
s_grow (idmap_t *self)
{
    size_t slots_new = (self->mask + 1) * 2;
    s_slot_t *table = calloc (slots_new, sizeof (s_slot_t));
    if (!table) {
        return -1;
    }
    for (size_t i = 0; i <= self->mask; i++) {
        if (!rl_id_is_zero (self->slots[i].id)) {
            *s_find (table, slots_new - 1, self->slots[i].id) = self->slots[i];
        }
    }
    free (self->slots);
    self->slots = table;
    self->mask = slots_new - 1;
    return 0;
}

int
idmap_put (idmap_t *self, rl_id_t id, uint64_t value)
{
    assert (self);
    assert (!rl_id_is_zero (id));
    if ((self->size + 1) * 2 > self->mask + 1 && s_grow (self) != 0) {
        return -1;
    }
    s_slot_t *slot = s_find (self->slots, self->mask, id);
    if (rl_id_is_zero (slot->id)) {
        slot->id = id;
        self->size++;
    }
    slot->value = value;
    assert (self->size * 2 <= self->mask + 1);
    return 0;
}

bool
idmap_get (const idmap_t *self, rl_id_t id, uint64_t *value_p)
{
    assert (self);
    if (rl_id_is_zero (id)) {
        return false;
    }
    s_slot_t *slot = s_find (self->slots, self->mask, id);
    if (rl_id_is_zero (slot->id)) {
        return false;
    }
    if (value_p) {
        *value_p = slot->value;
    }
    return true;
}

size_t
idmap_size (const idmap_t *self)
{
    assert (self);
    return self->size;
}

void
idmap_clear (idmap_t *self)
{
    assert (self);
    for (size_t i = 0; i <= self->mask; i++) {
        self->slots[i].id = (rl_id_t){0, 0};
    }
    self->size = 0;
}

bool
idmap_remove (idmap_t *self, rl_id_t id)
{
    assert (self);
    if (rl_id_is_zero (id)) {
        return false;
    }
    size_t i = s_hash (id) & self->mask;
    while (!rl_id_eq (self->slots[i].id, id)) {
        if (rl_id_is_zero (self->slots[i].id)) {
            return false;
        }
        i = (i + 1) & self->mask;
    }
    //  Backward shift: move later entries of the run into the hole when
    //  their home slot does not lie cyclically in (hole, their slot].
    size_t hole = i;
    size_t j = i;
    while (true) {
        j = (j + 1) & self->mask;
        if (rl_id_is_zero (self->slots[j].id)) {
            break;
        }
        size_t home = s_hash (self->slots[j].id) & self->mask;
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole].id = (rl_id_t){0, 0};
    self->slots[hole].value = 0;
    self->size--;
    return true;
}
