/*  ring_internal.h: the ring's state and the helpers its loaders share.

    ring.c owns the state (placement, lookup, queries), ring_valid.c the
    checks of each field and the messages; the two loaders,
    ring_text.c (the text form) and ring_blob.c (the binary form), build a
    ring record by record through the helpers below, so that a loaded ring
    is checked by the same rules as one built with ring_add_shard.
    ring_diff.c needs none of this: it reads rings through ring.h only.

    Not for use outside ring/. Includes ring.h only, so there is no cycle:
    ring.h <- ring_internal.h <- ring.c, ring_valid.c, ring_text.c,
    ring_blob.c.

    The invariants of struct ring_t are those of ring.c (its top comment);
    a loader that writes the points directly must restore them all: points
    strictly increasing, every owner a shard index, every shard with a
    point, and owned[] recounted with ring_i_recount.
*/
#ifndef RL_RING_INTERNAL_H
#define RL_RING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

typedef unsigned __int128 ring_i_u128;

typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    double weight;
    char key[RING_KEY_SIZE + 1]; //  Z85 CURVE public key, "" if none
} ring_i_shard_t;

struct ring_t {
    uint64_t epoch;             //  carried, never bumped here
    uint32_t points_per_weight; //  seed points per unit of weight
    size_t shard_count;
    size_t shard_capacity;
    ring_i_shard_t *shards; //  [shard_capacity]
    ring_i_u128 *owned;     //  [shard_capacity] units of hash space owned
    size_t point_count;
    size_t point_capacity;
    uint64_t *positions; //  [point_capacity] sorted, unique
    uint16_t *owners;    //  [point_capacity] shard index of each point
};

//  Validation of one field; 1 if valid. Names: 1..31 bytes of
//  [A-Za-z0-9._-]; endpoints: 1..127 printable bytes, no space, quote or
//  backslash; weights: finite, RING_WEIGHT_MIN..RL_RING_WEIGHT_MAX.
int ring_i_name_valid (const char *name);
int ring_i_endpoint_valid (const char *endpoint);       //  the form, where typed
int ring_i_endpoint_chars_valid (const char *endpoint); //  the bytes, every record
int ring_i_weight_valid (double weight);
//  Keys: exactly RING_KEY_SIZE characters of the Z85 alphabet.
int ring_i_key_valid (const char *key);

//  Appends a shard record without points. RING_ERR_INVALID, _EXISTS, _FULL
//  or _NOMEM, with the ring unchanged, on failure.
int ring_i_append_shard (ring_t *self, const char *name, const char *endpoint, double weight);

//  Makes room for count points; RING_ERR_FULL past RING_POINTS_MAX.
int ring_i_reserve_points (ring_t *self, size_t count);

//  Recomputes owned[] from the points (after a loader wrote them).
void ring_i_recount (ring_t *self);

//  Writes a message to err (if any), prefixed "line N: " when line > 0.
void ring_i_error (char *err, size_t err_size, int line, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

#endif
