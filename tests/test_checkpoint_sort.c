/*  test_checkpoint_sort.c: the checkpoint's radix sort (checkpoint_sort in
    shard/checkpoint.c) on hostile inputs.

    The checkpoint writes each index as an SST, so its entries must come out
    in memcmp order of their keys, and, like the stable merge sort it
    replaced, equal keys must keep their order. Every case here compares
    the result with a reference: qsort by key, ties broken by the entry's
    original position (an 8-byte index in the entry's bytes after the key).
    Inputs: no entry, one entry, every key equal, already sorted, reversed,
    keys differing only in their last or only in their first byte, the
    longest key (32 bytes), a key as long as the entry, an entry size with
    no fast path, and the largest sort a checkpoint makes (2^19 history
    entries, random keys with many duplicates).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "rl_limits.h"

static size_t s_key_size; //  of the reference's comparator

static uint64_t s_state = 0x9e3779b97f4a7c15u;

static uint64_t
s_next (void)
{
    //  xorshift64*: enough for test inputs, the same on every run.
    s_state ^= s_state >> 12;
    s_state ^= s_state << 25;
    s_state ^= s_state >> 27;
    return s_state * 0x2545f4914f6cdd1du;
}

//  Key order, then the original position stored after the key.
static int
s_cmp_reference (const void *a, const void *b)
{
    int c = memcmp (a, b, s_key_size);
    if (c != 0) {
        return c;
    }
    uint64_t ia, ib;
    memcpy (&ia, (const uint8_t *) a + s_key_size, sizeof (ia));
    memcpy (&ib, (const uint8_t *) b + s_key_size, sizeof (ib));
    return (ia > ib) - (ia < ib);
}

static int
s_cmp_bytes (const void *a, const void *b)
{
    return memcmp (a, b, s_key_size);
}

//  Writes each entry's position after its key (entry_size >= key_size + 8),
//  sorts a copy both ways and compares them byte for byte.
static void
s_check (uint8_t *entries, size_t count, size_t entry_size, size_t key_size)
{
    assert_true (entry_size >= key_size + 8);
    for (size_t i = 0; i < count; i++) {
        uint64_t index = i;
        memcpy (entries + i * entry_size + key_size, &index, sizeof (index));
    }
    uint8_t *expected = malloc (count * entry_size + 1);
    assert_non_null (expected);
    memcpy (expected, entries, count * entry_size);
    s_key_size = key_size;
    qsort (expected, count, entry_size, s_cmp_reference);
    assert_int_equal (checkpoint_sort (entries, count, entry_size, key_size), 0);
    assert_memory_equal (entries, expected, count * entry_size);
    free (expected);
}

static void
s_fill_random (uint8_t *entries, size_t count, size_t entry_size)
{
    for (size_t i = 0; i < count * entry_size; i++) {
        entries[i] = (uint8_t) s_next ();
    }
}

static void
test_none_and_one (void **state)
{
    (void) state;
    assert_int_equal (checkpoint_sort (NULL, 0, 24, 16), 0);
    uint8_t one[24];
    s_fill_random (one, 1, sizeof (one));
    uint8_t copy[24];
    memcpy (copy, one, sizeof (one));
    assert_int_equal (checkpoint_sort (one, 1, 24, 16), 0);
    assert_memory_equal (one, copy, sizeof (one));
}

static void
test_equal_keys (void **state)
{
    (void) state;
    enum { COUNT = 10000, ENTRY = 24, KEY = 16 };
    uint8_t *entries = malloc (COUNT * ENTRY);
    assert_non_null (entries);
    for (size_t i = 0; i < COUNT; i++) {
        memset (entries + i * ENTRY, 0xa5, KEY);
    }
    s_check (entries, COUNT, ENTRY, KEY);
    for (size_t i = 0; i < COUNT; i++) { //  stable: still in place
        uint64_t index;
        memcpy (&index, entries + i * ENTRY + KEY, sizeof (index));
        assert_int_equal (index, i);
    }
    //  Two keys, alternating: each half keeps its order.
    for (size_t i = 0; i < COUNT; i++) {
        memset (entries + i * ENTRY, i % 2 ? 0xff : 0x00, KEY);
    }
    s_check (entries, COUNT, ENTRY, KEY);
    free (entries);
}

static void
test_sorted_and_reversed (void **state)
{
    (void) state;
    enum { COUNT = 70000, ENTRY = 24, KEY = 16 };
    uint8_t *entries = malloc (COUNT * ENTRY);
    assert_non_null (entries);
    //  Big-endian counters: sorted, then reversed.
    for (int reversed = 0; reversed < 2; reversed++) {
        memset (entries, 0, COUNT * ENTRY);
        for (size_t i = 0; i < COUNT; i++) {
            uint32_t v = reversed ? (uint32_t) (COUNT - 1 - i) : (uint32_t) i;
            uint8_t *key = entries + i * ENTRY;
            key[KEY - 3] = (uint8_t) (v >> 16);
            key[KEY - 2] = (uint8_t) (v >> 8);
            key[KEY - 1] = (uint8_t) v;
        }
        s_check (entries, COUNT, ENTRY, KEY);
        for (size_t i = 0; i < COUNT; i++) {
            const uint8_t *key = entries + i * ENTRY;
            uint32_t v = (uint32_t) key[KEY - 3] << 16 | (uint32_t) key[KEY - 2] << 8
                         | key[KEY - 1];
            assert_int_equal (v, i);
        }
    }
    free (entries);
}

static void
test_one_byte_differs (void **state)
{
    (void) state;
    enum { COUNT = 5000, ENTRY = 40, KEY = 32 };
    uint8_t *entries = malloc (COUNT * ENTRY);
    assert_non_null (entries);
    for (size_t at = 0; at < KEY; at += KEY - 1) { //  the first byte, then the last
        memset (entries, 0x7e, COUNT * ENTRY);
        for (size_t i = 0; i < COUNT; i++) {
            entries[i * ENTRY + at] = (uint8_t) s_next ();
        }
        s_check (entries, COUNT, ENTRY, KEY);
    }
    free (entries);
}

static void
test_sizes (void **state)
{
    (void) state;
    enum { COUNT = 20000 };
    //  entry size, key size: the three indexes, the longest key, a one-byte
    //  key, and sizes with no fast path.
    static const size_t shapes[][2] = {
        {24, 16}, {40, 32}, {9, 1}, {13, 5}, {RL_ID_SIZE + 8 + 3, RL_ID_SIZE + 3},
    };
    for (size_t s = 0; s < sizeof (shapes) / sizeof (shapes[0]); s++) {
        size_t entry = shapes[s][0], key = shapes[s][1];
        uint8_t *entries = malloc (COUNT * entry);
        assert_non_null (entries);
        s_fill_random (entries, COUNT, entry);
        s_check (entries, COUNT, entry, key);
        free (entries);
    }
    //  A key as long as the entry (the history index): equal keys are equal
    //  entries, so the reference is plain memcmp order.
    enum { ENTRY = 24 };
    uint8_t *entries = malloc (COUNT * ENTRY);
    uint8_t *expected = malloc (COUNT * ENTRY);
    assert_true (entries && expected);
    s_fill_random (entries, COUNT, ENTRY);
    for (size_t i = 0; i < COUNT; i++) {
        entries[i * ENTRY + ENTRY - 1] &= 3; //  a few duplicates
        memset (entries + i * ENTRY, 0, 8);
        memcpy (entries + i * ENTRY + 8, entries + (i % 97) * ENTRY + 8, 8);
    }
    memcpy (expected, entries, COUNT * ENTRY);
    s_key_size = ENTRY;
    qsort (expected, COUNT, ENTRY, s_cmp_bytes);
    assert_int_equal (checkpoint_sort (entries, COUNT, ENTRY, ENTRY), 0);
    assert_memory_equal (entries, expected, COUNT * ENTRY);
    free (entries);
    free (expected);
}

static void
test_largest (void **state)
{
    (void) state;
    //  The history index of a full generation: two entries a transfer.
    const size_t count = 2 * (size_t) RL_SHARD_CHECKPOINT_TRANSFERS;
    enum { ENTRY = 40, KEY = 32 };
    uint8_t *entries = malloc (count * ENTRY);
    assert_non_null (entries);
    s_fill_random (entries, count, ENTRY);
    for (size_t i = 0; i < count; i++) {
        uint8_t *key = entries + i * ENTRY;
        memset (key, 0, 8); //  high bytes shared (skipped passes)
        key[KEY - 1] = (uint8_t) (key[KEY - 1] & 1);
        if (i % 3 == 0) { //  many duplicate keys
            memcpy (key, entries + (i / 3 % 1000) * ENTRY, KEY);
        }
    }
    s_check (entries, count, ENTRY, KEY);
    free (entries);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_none_and_one),
        cmocka_unit_test (test_equal_keys),
        cmocka_unit_test (test_sorted_and_reversed),
        cmocka_unit_test (test_one_byte_differs),
        cmocka_unit_test (test_sizes),
        cmocka_unit_test (test_largest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
