/*  ring_blob.c: the binary form of a ring, sent on the wire
    (docs/ring.md). Little-endian, fixed-size records, and a checksum over
    everything before it:

        offset  size  field
        0       4     magic "RLRG"
        4       2     version: 1 (RING_BLOB_VERSION), or 2
                      (RING_BLOB_VERSION_KEYED) when a shard has a key
        6       2     shard_count (1..RL_SHARDS_MAX)
        8       4     point_count (shard_count..RING_POINTS_MAX)
        12      4     points_per_weight
        16      8     epoch
        24      168   per shard: name[32] endpoint[128] (NUL-padded),
                      weight (IEEE-754 bits); version 2 adds
                      key[40] (Z85 CURVE public key, all NUL if
                      none), so a record is 208 bytes
        ...     10    per point: position u64, owner u16 (shard index),
                      by increasing position
        size-8  8     XXH3_64bits of every byte before it

    INVARIANTS
    1. The size of a blob is a function of its counts alone (s_blob_size):
       ring_encoded_size is exact, and ring_encode writes that many bytes.
    2. ring_decode trusts nothing: it checks the size against the limits
       and against the counts before reading any record, then the magic,
       version and checksum, then every field.
    3. A decoded ring keeps the invariants of ring.c: shard records go
       through ring_i_append_shard, positions must be strictly increasing
       and owners in range, every shard must own a point, and owned[] is
       recounted.
    4. encode -> decode -> encode is byte-identical. A ring without keys
       is written as version 1, exactly as before keys existed, so older
       readers and stored rings keep working; version 1 reads as a ring
       without keys, and a version 2 blob without any key is refused.

    LIMITS
    RL_RING_BLOB_SIZE_MAX bytes per blob (common/rl_limits.h), hence
    RING_POINTS_MAX points (ring.h); RL_SHARDS_MAX shards.
*/
#include "ring.h"
#include "ring_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const uint8_t s_magic[4] = {'R', 'L', 'R', 'G'};

static void
s_put_le (uint8_t *out, uint64_t value, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        out[i] = (uint8_t) (value >> (8 * i));
    }
}

static uint64_t
s_get_le (const uint8_t *in, size_t size)
{
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++) {
        value |= (uint64_t) in[i] << (8 * i);
    }
    return value;
}

static size_t
s_shard_size (int version)
{
    return version == RING_BLOB_VERSION_KEYED ? RING_BLOB_SHARD_SIZE_KEYED : RING_BLOB_SHARD_SIZE;
}

static size_t
s_blob_size (int version, size_t shards, size_t points)
{
    return RING_BLOB_HEADER_SIZE + shards * s_shard_size (version) + points * RING_BLOB_POINT_SIZE
           + RING_BLOB_TRAILER_SIZE;
}

//  Version 2 only when some shard has a key.
static int
s_version (const ring_t *self)
{
    for (size_t x = 0; x < self->shard_count; x++) {
        if (self->shards[x].key[0]) {
            return RING_BLOB_VERSION_KEYED;
        }
    }
    return RING_BLOB_VERSION;
}

size_t
ring_encoded_size (const ring_t *self)
{
    assert (self);
    return s_blob_size (s_version (self), self->shard_count, self->point_count);
}

size_t
ring_encode (const ring_t *self, uint8_t *out, size_t out_size)
{
    assert (self);
    assert (out || out_size == 0);
    size_t size = ring_encoded_size (self);
    if (out_size < size) {
        return 0;
    }
    int version = s_version (self);
    size_t shard_size = s_shard_size (version);
    memcpy (out, s_magic, 4);
    s_put_le (out + 4, (uint64_t) version, 2);
    s_put_le (out + 6, self->shard_count, 2);
    s_put_le (out + 8, self->point_count, 4);
    s_put_le (out + 12, self->points_per_weight, 4);
    s_put_le (out + 16, self->epoch, 8);
    uint8_t *cursor = out + RING_BLOB_HEADER_SIZE;
    for (size_t x = 0; x < self->shard_count; x++) {
        const ring_i_shard_t *shard = &self->shards[x];
        memset (cursor, 0, shard_size);
        memcpy (cursor, shard->name, strlen (shard->name));
        memcpy (cursor + RL_SHARD_NAME_SIZE_MAX, shard->endpoint, strlen (shard->endpoint));
        uint64_t bits;
        memcpy (&bits, &shard->weight, sizeof bits);
        s_put_le (cursor + RL_SHARD_NAME_SIZE_MAX + RL_ENDPOINT_SIZE_MAX, bits, 8);
        if (version == RING_BLOB_VERSION_KEYED) {
            memcpy (cursor + RING_BLOB_SHARD_SIZE, shard->key, strlen (shard->key));
        }
        cursor += shard_size;
    }
    for (size_t i = 0; i < self->point_count; i++) {
        s_put_le (cursor, self->positions[i], 8);
        s_put_le (cursor + 8, self->owners[i], 2);
        cursor += RING_BLOB_POINT_SIZE;
    }
    s_put_le (cursor, XXH3_64bits (out, size - RING_BLOB_TRAILER_SIZE), 8);
    assert (cursor + RING_BLOB_TRAILER_SIZE == out + size);
    return size;
}

//  A fixed-size, NUL-padded string field: a NUL inside, zeros after it.
static int
s_field_valid (const uint8_t *field, size_t size)
{
    const uint8_t *nul = (const uint8_t *) memchr (field, 0, size);
    if (!nul) {
        return 0;
    }
    for (const uint8_t *rest = nul; rest < field + size; rest++) {
        if (*rest) {
            return 0;
        }
    }
    return 1;
}

static int
s_decode_header (const uint8_t *in, size_t size, int *version_p, size_t *shards_p, size_t *points_p,
                 char *err, size_t err_size)
{
    if (size < RING_BLOB_HEADER_SIZE + RING_BLOB_TRAILER_SIZE || size > RL_RING_BLOB_SIZE_MAX) {
        ring_i_error (err, err_size, 0, "binary ring of %zu bytes is out of bounds", size);
        return -1;
    }
    uint64_t version = s_get_le (in + 4, 2);
    if (memcmp (in, s_magic, 4)
        || (version != RING_BLOB_VERSION && version != RING_BLOB_VERSION_KEYED)) {
        ring_i_error (err, err_size, 0, "not a binary ring of version %d or %d", RING_BLOB_VERSION,
                      RING_BLOB_VERSION_KEYED);
        return -1;
    }
    size_t shards = (size_t) s_get_le (in + 6, 2);
    size_t points = (size_t) s_get_le (in + 8, 4);
    if (shards < 1 || shards > RL_SHARDS_MAX || points < shards || points > RING_POINTS_MAX) {
        ring_i_error (err, err_size, 0, "binary ring counts out of bounds (%zu shards, %zu points)",
                      shards, points);
        return -1;
    }
    if (size != s_blob_size ((int) version, shards, points)) {
        ring_i_error (err, err_size, 0, "binary ring is %zu bytes, its counts say %zu", size,
                      s_blob_size ((int) version, shards, points));
        return -1;
    }
    uint64_t checksum = s_get_le (in + size - RING_BLOB_TRAILER_SIZE, 8);
    if (checksum != XXH3_64bits (in, size - RING_BLOB_TRAILER_SIZE)) {
        ring_i_error (err, err_size, 0, "binary ring checksum mismatch");
        return -1;
    }
    uint64_t ppw = s_get_le (in + 12, 4);
    if (ppw < 1 || ppw > RING_POINTS_PER_WEIGHT_MAX) {
        ring_i_error (err, err_size, 0, "binary ring points_per_weight %" PRIu64 " out of bounds",
                      ppw);
        return -1;
    }
    *version_p = (int) version;
    *shards_p = shards;
    *points_p = points;
    return 0;
}

//  A key field: RING_KEY_SIZE Z85 characters, or all NUL (no key).
static int
s_decode_key (ring_t *ring, const char *name, const uint8_t *field)
{
    char key[RING_KEY_SIZE + 1];
    memcpy (key, field, RING_KEY_SIZE);
    key[RING_KEY_SIZE] = 0;
    if (!key[0]) {
        for (size_t i = 0; i < RING_KEY_SIZE; i++) {
            if (field[i]) {
                return RING_ERR_INVALID;
            }
        }
        return RING_OK;
    }
    return ring_set_key (ring, name, key);
}

static int
s_decode_shards (ring_t *ring, int version, const uint8_t *cursor, size_t shards, char *err,
                 size_t err_size)
{
    for (size_t x = 0; x < shards; x++, cursor += s_shard_size (version)) {
        const uint8_t *endpoint = cursor + RL_SHARD_NAME_SIZE_MAX;
        if (!s_field_valid (cursor, RL_SHARD_NAME_SIZE_MAX)
            || !s_field_valid (endpoint, RL_ENDPOINT_SIZE_MAX)) {
            ring_i_error (err, err_size, 0, "binary ring shard %zu: unterminated name or endpoint",
                          x);
            return -1;
        }
        uint64_t bits = s_get_le (endpoint + RL_ENDPOINT_SIZE_MAX, 8);
        double weight;
        memcpy (&weight, &bits, sizeof weight);
        int rc = ring_i_append_shard (ring, (const char *) cursor, (const char *) endpoint, weight);
        if (rc == 0 && version == RING_BLOB_VERSION_KEYED) {
            rc = s_decode_key (ring, (const char *) cursor, cursor + RING_BLOB_SHARD_SIZE);
        }
        if (rc) {
            ring_i_error (err, err_size, 0, "binary ring shard %zu: %s", x, ring_strerror (rc));
            return -1;
        }
    }
    return 0;
}

static int
s_decode_points (ring_t *ring, const uint8_t *cursor, size_t points, char *err, size_t err_size)
{
    if (ring_i_reserve_points (ring, points)) {
        ring_i_error (err, err_size, 0, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < points; i++, cursor += RING_BLOB_POINT_SIZE) {
        uint64_t position = s_get_le (cursor, 8);
        uint64_t owner = s_get_le (cursor + 8, 2);
        if (owner >= ring->shard_count || (i > 0 && position <= ring->positions[i - 1])) {
            ring_i_error (err, err_size, 0, "binary ring point %zu: bad owner or out of order", i);
            return -1;
        }
        ring->positions[i] = position;
        ring->owners[i] = (uint16_t) owner;
    }
    ring->point_count = points;
    for (size_t x = 0; x < ring->shard_count; x++) {
        if (ring_shard_point_count (ring, x) == 0) {
            ring_i_error (err, err_size, 0, "binary ring shard '%s' has no points",
                          ring->shards[x].name);
            return -1;
        }
    }
    ring_i_recount (ring);
    return 0;
}

ring_t *
ring_decode (const uint8_t *in, size_t size, char *err, size_t err_size)
{
    assert (in || size == 0);
    int version = 0;
    size_t shards = 0;
    size_t points = 0;
    if (!in || s_decode_header (in, size, &version, &shards, &points, err, err_size)) {
        if (!in) {
            ring_i_error (err, err_size, 0, "no binary ring");
        }
        return NULL;
    }
    ring_t *ring = ring_new (s_get_le (in + 16, 8));
    if (!ring) {
        ring_i_error (err, err_size, 0, "out of memory");
        return NULL;
    }
    ring->points_per_weight = (uint32_t) s_get_le (in + 12, 4);
    const uint8_t *cursor = in + RING_BLOB_HEADER_SIZE;
    if (s_decode_shards (ring, version, cursor, shards, err, err_size)
        || s_decode_points (ring, cursor + shards * s_shard_size (version), points, err,
                            err_size)) {
        ring_destroy (&ring);
        return NULL;
    }
    if (version != s_version (ring)) {
        //  Invariant 4: a ring without keys is written as version 1, so a
        //  version 2 blob whose key fields are all empty is no encoding of
        //  any ring (the codec fuzzer found one).
        ring_i_error (err, err_size, 0, "binary ring of version %d without a key", version);
        ring_destroy (&ring);
    }
    return ring;
}
