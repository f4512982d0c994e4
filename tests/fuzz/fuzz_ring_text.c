/*  fuzz_ring_text.c: libFuzzer target of the text form of a ring
    (ring/ring_text.c), the ring file that configures shards, routers and
    the tools.

    PROPERTIES (beyond "no crash")
    1. A refusal says why: err is a non-empty C string.
    2. A parsed ring's text form reads back, and to_text -> from_text ->
       to_text is byte-identical (ring_text.c, invariant 3).
    3. The binary form of the parsed ring decodes to the same ring (same
       bytes when encoded again).
*/
#include <string.h>

#include "fuzz_check.h"
#include "ring.h"

static void
s_check_ring (const ring_t *ring)
{
    char *text = ring_to_text (ring);
    FUZZ_CHECK (text != NULL);
    char err[256] = "";
    ring_t *again = ring_from_text (text, err, sizeof err);
    if (!again) {
        fprintf (stderr, "text form does not read back: %s\n%s", err, text);
    }
    FUZZ_CHECK (again != NULL); //  2
    char *text_again = ring_to_text (again);
    FUZZ_CHECK (text_again != NULL);
    FUZZ_CHECK (strcmp (text, text_again) == 0); //  2

    size_t size = ring_encoded_size (ring);
    uint8_t *blob = malloc (size);
    uint8_t *blob_again = malloc (size);
    FUZZ_CHECK (blob && blob_again);
    FUZZ_CHECK (ring_encode (ring, blob, size) == size);
    FUZZ_CHECK (ring_encode (again, blob_again, size) == size);
    FUZZ_CHECK (memcmp (blob, blob_again, size) == 0);
    ring_t *decoded = ring_decode (blob, size, err, sizeof err);
    FUZZ_CHECK (decoded != NULL); //  3
    FUZZ_CHECK (ring_encode (decoded, blob_again, size) == size);
    FUZZ_CHECK (memcmp (blob, blob_again, size) == 0); //  3
    ring_destroy (&decoded);
    free (blob);
    free (blob_again);
    free (text_again);
    ring_destroy (&again);
    free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    FUZZ_CHECK (text != NULL);
    if (size) {
        memcpy (text, data, size);
    }
    text[size] = '\0';
    char err[256];
    memset (err, 'x', sizeof err);
    ring_t *ring = ring_from_text (text, err, sizeof err);
    if (ring) {
        s_check_ring (ring);
        ring_destroy (&ring);
    } else {
        FUZZ_CHECK (memchr (err, '\0', sizeof err) != NULL && err[0] != '\0'); //  1
    }
    free (text);
    return 0;
}
