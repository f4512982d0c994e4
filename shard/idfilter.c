/*  idfilter.c: a split-block Bloom filter of transfer ids.

    WHY
    Every new transfer id is checked for idempotency against the shard's
    ingested index (tx_index), a RocksDB column family of one SST per
    checkpoint. Almost every such read misses, yet each one still walks the
    files' own Bloom filters and index blocks: 24% of a shard's CPU at full
    batches, profiled, even as one batched read per request. This filter,
    in memory and fed with every id the shard stores, answers most of those
    reads without RocksDB.

    LAYOUT
    The filter is an array of 2^n blocks of 256 bits (eight 32-bit words,
    32-byte aligned, so a block never straddles a cache line). An id's
    64-bit hash (XXH3 of its 16 bytes) picks a block by its high 32 bits and
    one bit in each of the block's eight words by its low 32 bits times a
    per-word odd constant, taking the top 5 bits of the product (the layout
    of Parquet's and Impala's split-block filters). A lookup or an add
    touches one cache line, whatever the size of the filter.

    FALSE "PRESENT"
    At IDFILTER_BITS_PER_KEY = 16, a block holds 16 ids on average: about
    0.13% of absent ids are answered "maybe" at capacity, 3.3% at twice
    the capacity, 33% at four times (tests/test_idfilter.c measures them). A
    "maybe" only costs the read the shard made before.

    INVARIANTS
    1. No false "absent": an added hash is answered "maybe" for ever (bits
       are only ever set).
    2. The block count is a power of two, and at most 2^32 blocks.

    LIMITS
    IDFILTER_KEYS_FLOOR to IDFILTER_KEYS_MAX ids of capacity (2 KB to 256 MB
    of bits; a shard opens with IDFILTER_KEYS_MIN at least, allocated zeroed: pages become resident
   as ids land on them). Past its capacity a filter keeps working at a higher false-positive rate;
   the owner rebuilds a bigger one (journal.c).
*/
#include "idfilter.h"

#include <assert.h>
#include <stdlib.h>
#include <xxhash.h>

#define S_BLOCK_WORDS 8
#define S_BLOCK_BYTES (S_BLOCK_WORDS * 4)
#define S_BLOCK_BITS  (S_BLOCK_BYTES * 8)

static_assert (IDFILTER_KEYS_FLOOR <= IDFILTER_KEYS_MIN && IDFILTER_KEYS_MIN <= IDFILTER_KEYS_MAX,
               "limits in order");
static_assert ((IDFILTER_KEYS_FLOOR & (IDFILTER_KEYS_FLOOR - 1)) == 0, "a power of two");
static_assert ((uint64_t) IDFILTER_KEYS_FLOOR * IDFILTER_BITS_PER_KEY / S_BLOCK_BITS >= 1,
               "at least one block");
static_assert ((IDFILTER_KEYS_MAX & (IDFILTER_KEYS_MAX - 1)) == 0, "a power of two");
static_assert ((uint64_t) IDFILTER_KEYS_MAX * IDFILTER_BITS_PER_KEY / S_BLOCK_BITS <= UINT32_MAX,
               "a block index fits in 32 bits");

struct idfilter_t {
    uint32_t *words; //  blocks * S_BLOCK_WORDS, 64-byte aligned, inside raw
    void *raw;       //  the allocation
    uint64_t blocks; //  a power of two
    size_t capacity; //  ids it is sized for
    size_t count;    //  ids added
};

//  Odd constants, one per word of a block (Parquet's split-block salts).
static const uint32_t s_salt[S_BLOCK_WORDS] = {0x47b6137bu, 0x44974d91u, 0x8824ad5bu, 0xa2b7289du,
                                               0x705495c7u, 0x2df1424bu, 0x9efc4947u, 0x5c6bfb31u};

idfilter_t *
idfilter_new (size_t keys)
{
    size_t capacity = IDFILTER_KEYS_FLOOR;
    while (capacity < keys && capacity < IDFILTER_KEYS_MAX) {
        capacity *= 2;
    }
    idfilter_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->capacity = capacity;
    self->blocks = (uint64_t) capacity * IDFILTER_BITS_PER_KEY / S_BLOCK_BITS;
    assert (self->blocks > 0 && (self->blocks & (self->blocks - 1)) == 0); //  invariant 2
    size_t bytes = (size_t) self->blocks * S_BLOCK_BYTES;
    //  calloc: zeroed pages from the kernel, resident only once an id lands
    //  on them (aligned_alloc and memset would touch every page at once).
    self->raw = calloc (1, bytes + 64);
    if (!self->raw) {
        free (self);
        return NULL;
    }
    self->words = (uint32_t *) (((uintptr_t) self->raw + 63) & ~(uintptr_t) 63);
    return self;
}

void
idfilter_destroy (idfilter_t **self_p)
{
    assert (self_p);
    idfilter_t *self = *self_p;
    if (!self) {
        return;
    }
    free (self->raw);
    free (self);
    *self_p = NULL;
}

uint64_t
idfilter_hash (rl_id_t id)
{
    const uint64_t words[2] = {id.lo, id.hi};
    return XXH3_64bits (words, sizeof (words));
}

#define S_LEG_SEED 0x6c65677363726564ull //  "legscred": a leg's hashes apart from an id's

uint64_t
idfilter_hash_leg (rl_id_t id, rl_id_t debit_account_id)
{
    const uint64_t words[4] = {id.lo, id.hi, debit_account_id.lo, debit_account_id.hi};
    return XXH3_64bits_withSeed (words, sizeof (words), S_LEG_SEED);
}

static inline uint32_t *
s_block (const idfilter_t *self, uint64_t hash)
{
    return self->words + ((hash >> 32) & (self->blocks - 1)) * S_BLOCK_WORDS;
}

void
idfilter_add (idfilter_t *self, uint64_t hash)
{
    assert (self);
    uint32_t *block = s_block (self, hash);
    uint32_t key = (uint32_t) hash;
    for (int i = 0; i < S_BLOCK_WORDS; i++) {
        block[i] |= 1u << ((key * s_salt[i]) >> 27);
    }
    self->count++;
    assert (idfilter_may_hold (self, hash)); //  invariant 1
}

bool
idfilter_may_hold (const idfilter_t *self, uint64_t hash)
{
    assert (self);
    const uint32_t *block = s_block (self, hash);
    uint32_t key = (uint32_t) hash;
    uint32_t missing = 0;
    for (int i = 0; i < S_BLOCK_WORDS; i++) {
        missing |= ~block[i] & (1u << ((key * s_salt[i]) >> 27));
    }
    return missing == 0;
}

void
idfilter_prefetch (const idfilter_t *self, uint64_t hash)
{
    assert (self);
    __builtin_prefetch (s_block (self, hash));
}

size_t
idfilter_count (const idfilter_t *self)
{
    assert (self);
    return self->count;
}

size_t
idfilter_capacity (const idfilter_t *self)
{
    assert (self);
    return self->capacity;
}

bool
idfilter_full (const idfilter_t *self)
{
    assert (self);
    return self->count > self->capacity && self->capacity < IDFILTER_KEYS_MAX;
}

size_t
idfilter_bytes (const idfilter_t *self)
{
    assert (self);
    return (size_t) self->blocks * S_BLOCK_BYTES;
}
