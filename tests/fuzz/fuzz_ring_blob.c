/*  fuzz_ring_blob.c: libFuzzer target of the binary ring (ring/ring_blob.c),
    the form a shard takes from the network in load_ring and from its
    store at start.

    Each input is decoded twice: as it is, and with its trailer replaced
    by the right XXH3 checksum, so that the fuzzer reaches the checks
    behind the checksum (counts, names, endpoints, weights, points).

    PROPERTIES (beyond "no crash")
    1. A refusal says why: err is a non-empty C string.
    2. A decoded ring is canonical: encoding it gives the input bytes
       exactly (same size, same bytes).
    3. Its text form reads back to the same ring (the same blob), and
       ring_dup copies it exactly.
    4. Every lookup lands on a shard of the ring; ownership sums to 1.
*/
#include <math.h>
#include <string.h>

#include <xxhash.h>

#include "fuzz_check.h"
#include "ring.h"

static void
s_check_blob (const uint8_t *blob, size_t size, const ring_t *ring)
{
    FUZZ_CHECK (ring_encoded_size (ring) == size); //  2
    uint8_t *out = malloc (size);
    FUZZ_CHECK (out != NULL);
    FUZZ_CHECK (ring_encode (ring, out, size) == size);
    FUZZ_CHECK (memcmp (out, blob, size) == 0); //  2
    free (out);
}

static void
s_check_ring (const uint8_t *blob, size_t size, const ring_t *ring)
{
    s_check_blob (blob, size, ring);
    ring_t *copy = ring_dup (ring);
    FUZZ_CHECK (copy != NULL);
    s_check_blob (blob, size, copy); //  3
    ring_destroy (&copy);

    char *text = ring_to_text (ring);
    FUZZ_CHECK (text != NULL);
    char err[256] = "";
    ring_t *from_text = ring_from_text (text, err, sizeof err);
    if (!from_text) {
        fprintf (stderr, "text form does not read back: %s\n%s", err, text);
    }
    FUZZ_CHECK (from_text != NULL);       //  3
    s_check_blob (blob, size, from_text); //  3
    ring_destroy (&from_text);
    free (text);

    size_t shards = ring_shard_count (ring);
    FUZZ_CHECK (shards >= 1);
    double owned = 0;
    for (size_t x = 0; x < shards; x++) {
        owned += ring_shard_ownership (ring, x);
        FUZZ_CHECK (ring_shard_point_count (ring, x) >= 1);
    }
    FUZZ_CHECK (fabs (owned - 1.0) < 1e-6); //  4
    uint8_t id[16] = {0};
    memcpy (id, blob, size < sizeof id ? size : sizeof id);
    int owner = ring_lookup_id (ring, id);
    FUZZ_CHECK (owner >= 0 && (size_t) owner < shards); //  4
    owner = ring_lookup (ring, ring_point_position (ring, 0));
    FUZZ_CHECK (owner >= 0 && (size_t) owner == ring_point_owner (ring, 0));
}

static void
s_decode (const uint8_t *blob, size_t size)
{
    char err[256];
    memset (err, 'x', sizeof err);
    ring_t *ring = ring_decode (blob, size, err, sizeof err);
    if (!ring) {
        FUZZ_CHECK (memchr (err, '\0', sizeof err) != NULL && err[0] != '\0'); //  1
        return;
    }
    s_check_ring (blob, size, ring);
    ring_destroy (&ring);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  An exact-size copy (data may be NULL when size is 0).
    uint8_t *blob = calloc (1, size ? size : 1);
    FUZZ_CHECK (blob != NULL);
    if (size) {
        memcpy (blob, data, size);
    }
    s_decode (blob, size);
    if (size >= RING_BLOB_HEADER_SIZE + RING_BLOB_TRAILER_SIZE) {
        uint64_t checksum = XXH3_64bits (blob, size - RING_BLOB_TRAILER_SIZE);
        for (size_t i = 0; i < RING_BLOB_TRAILER_SIZE; i++) {
            blob[size - RING_BLOB_TRAILER_SIZE + i] = (uint8_t) (checksum >> (8 * i));
        }
        s_decode (blob, size);
    }
    free (blob);
    return 0;
}
