/*  idmap.c: see idmap.h.

    The hash of an id mixes both halves with a multiply-xorshift; client ids
    may be sequential (1, 2, 3...) or random UUIDs, and both must spread.
    Growth doubles the table and reinserts: O(n) once per doubling.

    A table starts at IDMAP_SLOTS_FIRST_MAX slots at most, whatever the
    capacity hint, and grows as it fills. One sized for its capacity up
    front spread a few live entries over megabytes, so that every lookup
    missed the cache: the participant's records, sized for 327,681
    entries, took 24 MB for the few thousand in flight, and profiled, those
    lookups were the largest cost of a cross-shard transfer. Growth up to
    the hint allocates nothing: two buffers of the hinted size are reserved
    at idmap_new (calloc: pages never touched cost no memory), and the table
    moves from one to the other as it doubles, so that a put within the
    hint never fails (the two-phase tables rely on it, as they did on a
    table allocated whole). Beyond the hint a put allocates as before. A
    table never shrinks.

    INVARIANTS
    1. The table size is a power of two and at most half full, so a probe
       always ends at an empty slot.
    2. An id of zero is never stored: zero marks an empty slot.
    3. Removal shifts the later entries of the probe run back into the hole
       (backward shift), so no lookup stops early at a removed id's slot.
    4. Within the hint, slots is a prefix of buffers[current], the other
       buffer is free, and nothing is allocated after idmap_new.

    LIMITS: the table doubles when half full; a put beyond the hint that
    cannot grow it returns -1 and leaves the map unchanged. Memory: two
    reserved buffers of twice the hint's slots (virtual; resident as used).
*/
#include "idmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define IDMAP_SLOTS_FIRST_MAX (1u << 14) //  the first table: 384 KB at most

typedef struct {
    rl_id_t id;
    uint64_t value;
} s_slot_t;

struct idmap_t {
    s_slot_t *slots;
    size_t mask;           //  slot count - 1; slot count is a power of two
    size_t size;           //  occupied slots
    s_slot_t *buffers[2];  //  reserved for growth up to the hint (invariant 4), or NULL
    size_t reserved_slots; //  slots in each buffer; 0: none reserved (any more)
    int current;           //  the buffer slots lies in
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
    if (slots > IDMAP_SLOTS_FIRST_MAX) {
        //  Grows as it fills, within two reserved buffers (see above).
        self->buffers[0] = calloc (slots, sizeof (s_slot_t));
        self->buffers[1] = calloc (slots, sizeof (s_slot_t));
        if (!self->buffers[0] || !self->buffers[1]) {
            free (self->buffers[0]);
            free (self->buffers[1]);
            free (self);
            return NULL;
        }
        self->reserved_slots = slots;
        self->slots = self->buffers[0];
        self->mask = IDMAP_SLOTS_FIRST_MAX - 1;
        return self;
    }
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
    idmap_t *self = *self_p;
    if (self) {
        if (self->reserved_slots > 0) {
            free (self->buffers[0]);
            free (self->buffers[1]);
        } else {
            free (self->slots);
        }
        free (self);
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
    bool reserved = slots_new <= self->reserved_slots;
    s_slot_t *table = NULL;
    if (reserved) {
        //  Invariant 4: the other buffer, emptied (it held an earlier, smaller table).
        table = self->buffers[1 - self->current];
        memset (table, 0, slots_new * sizeof (s_slot_t));
    } else {
        table = calloc (slots_new, sizeof (s_slot_t));
        if (!table) {
            return -1;
        }
    }
    for (size_t i = 0; i <= self->mask; i++) {
        if (!rl_id_is_zero (self->slots[i].id)) {
            *s_find (table, slots_new - 1, self->slots[i].id) = self->slots[i];
        }
    }
    if (reserved) {
        self->current = 1 - self->current;
    } else if (self->reserved_slots > 0) {
        //  Past the hint: the reserve goes, the table lives on the heap from now on.
        free (self->buffers[0]);
        free (self->buffers[1]);
        self->buffers[0] = self->buffers[1] = NULL;
        self->reserved_slots = 0;
    } else {
        free (self->slots);
    }
    self->slots = table;
    self->mask = slots_new - 1;
    assert (self->reserved_slots == 0 || self->slots == self->buffers[self->current]);
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

size_t
idmap_capacity (const idmap_t *self)
{
    assert (self);
    return (self->mask + 1) / 2;
}

int
idmap_reserve (idmap_t *self, size_t entries)
{
    assert (self);
    while (entries * 2 > self->mask + 1) {
        if (s_grow (self) != 0) {
            return -1;
        }
    }
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

void
idmap_prefetch (const idmap_t *self, rl_id_t id)
{
    assert (self);
    __builtin_prefetch (&self->slots[s_hash (id) & self->mask]);
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
