/*  ring.h: the consistent-hash ring that maps accounts onto shards.

    An account's point is XXH3_64bits of its 16 id bytes. The ring holds
    points (u64 positions), each owned by one shard; the owner of a hash h
    is the shard of the first point at a position >= h, wrapping round to
    the smallest point. A point at b therefore owns the arc (prev, b].

    Points are explicit (they are written in the ring file), and changes
    (add, remove, reweight) move exactly the hash space they must and no
    more: see ring.c and docs/ring.md for the placement algorithm.

    The epoch is carried, never changed by the ring itself: whoever makes a
    new ring for the cluster (the planner) sets epoch = old + 1.

    Class style: ring_new returns NULL on failure, ring_destroy sets the
    caller's pointer to NULL and is safe twice; mutating calls return a
    ring_err_t and leave the ring unchanged on failure.
*/
#ifndef RL_RING_H
#define RL_RING_H

#include <stddef.h>
#include <stdint.h>

#include "rl_limits.h"

//  Limits of the ring beyond common/rl_limits.h ------------------------------
#define RING_WEIGHT_MIN            0.001       //  smallest weight of one shard
#define RING_POINTS_PER_WEIGHT_MAX 4096        //  points per unit of weight, upper bound
#define RING_TEXT_LINE_SIZE_MAX    512         //  bytes of one line of the text form
#define RING_TEXT_FILE_SIZE_MAX    (64u << 20) //  bytes of a ring file
#define RING_BLOB_HEADER_SIZE      24          //  bytes before the shard records
#define RING_BLOB_SHARD_SIZE       (RL_SHARD_NAME_SIZE_MAX + RL_ENDPOINT_SIZE_MAX + 8)
#define RING_BLOB_POINT_SIZE       10 //  u64 position + u16 owner
#define RING_BLOB_TRAILER_SIZE     8  //  XXH3 checksum
#define RING_KEY_SIZE              40 //  Z85 characters of a CURVE public key (32 bytes)
#define RING_BLOB_SHARD_SIZE_KEYED (RING_BLOB_SHARD_SIZE + RING_KEY_SIZE)
#define RING_BLOB_VERSION          1 //  shard records without keys
#define RING_BLOB_VERSION_KEYED    2 //  shard records with a key field
//  Points in one ring: the smaller of RL_RING_POINTS_MAX and what fits a
//  binary ring of RL_RING_BLOB_SIZE_MAX bytes with RL_SHARDS_MAX shards.
#define RING_POINTS_MAX                                                                            \
    ((RL_RING_BLOB_SIZE_MAX - RING_BLOB_HEADER_SIZE - RING_BLOB_TRAILER_SIZE                       \
      - (size_t) RL_SHARDS_MAX * RING_BLOB_SHARD_SIZE_KEYED)                                       \
                 / RING_BLOB_POINT_SIZE                                                            \
             < RL_RING_POINTS_MAX                                                                  \
         ? (RL_RING_BLOB_SIZE_MAX - RING_BLOB_HEADER_SIZE - RING_BLOB_TRAILER_SIZE                 \
            - (size_t) RL_SHARDS_MAX * RING_BLOB_SHARD_SIZE_KEYED)                                 \
               / RING_BLOB_POINT_SIZE                                                              \
         : RL_RING_POINTS_MAX)

_Static_assert(RL_SHARDS_MAX <= UINT16_MAX, "a shard index fits the u16 owner of a point");
_Static_assert(RL_RING_POINTS_PER_WEIGHT <= RING_POINTS_PER_WEIGHT_MAX, "default within bounds");
_Static_assert((size_t) RL_SHARDS_MAX *RING_BLOB_SHARD_SIZE_KEYED < RL_RING_BLOB_SIZE_MAX,
               "every shard record fits a binary ring");

typedef struct ring_t ring_t;

typedef enum {
    RING_OK = 0,
    RING_ERR_NOMEM = -1,     //  out of memory; the ring is unchanged
    RING_ERR_EXISTS = -2,    //  a shard of that name is already in the ring
    RING_ERR_NOT_FOUND = -3, //  no shard of that name
    RING_ERR_INVALID = -4,   //  a name, endpoint or weight out of bounds, or an empty ring
    RING_ERR_FULL = -5,      //  RL_SHARDS_MAX shards or RING_POINTS_MAX points reached
    RING_ERR_PARSE = -6,     //  text or binary form rejected
    RING_ERR_IO = -7         //  a file could not be written; errno says why
} ring_err_t;

//  Life cycle -------------------------------------------------------------
ring_t *ring_new (uint64_t epoch); //  empty ring; NULL if out of memory
void ring_destroy (ring_t **self_p);
ring_t *ring_dup (const ring_t *self);
const char *ring_strerror (int rc);

uint64_t ring_epoch (const ring_t *self);
void ring_set_epoch (ring_t *self, uint64_t epoch);
uint32_t ring_points_per_weight (const ring_t *self); //  default RL_RING_POINTS_PER_WEIGHT
//  Sets the number of seed points per unit of weight used when the first
//  shard is added to an empty ring. RING_ERR_INVALID outside
//  1..RING_POINTS_PER_WEIGHT_MAX.
int ring_set_points_per_weight (ring_t *self, uint32_t points_per_weight);

//  Changes (each leaves the ring unchanged on failure) ---------------------
int ring_add_shard (ring_t *self, const char *name, const char *endpoint, double weight);
int ring_remove_shard (ring_t *self, const char *name);
int ring_reweight_shard (ring_t *self, const char *name, double weight);
int ring_set_endpoint (ring_t *self, const char *name, const char *endpoint);
//  Is endpoint one a ring may hold (and a shard may bind)? tcp://HOST:PORT
//  with PORT 1..65535, ipc://PATH or inproc://NAME, at most
//  RL_ENDPOINT_SIZE_MAX - 1 bytes of printable ASCII. 1 or 0.
int ring_endpoint_valid (const char *endpoint);
//  Sets a shard's CURVE public key (RING_KEY_SIZE Z85 characters), or
//  clears it with "". RING_ERR_INVALID for anything else.
int ring_set_key (ring_t *self, const char *name, const char *key);

//  Shards, by index 0..count-1 (indices shift down when a shard is removed)
size_t ring_shard_count (const ring_t *self);
int ring_shard_find (const ring_t *self, const char *name); //  index or -1
const char *ring_shard_name (const ring_t *self, size_t index);
const char *ring_shard_endpoint (const ring_t *self, size_t index);
double ring_shard_weight (const ring_t *self, size_t index);
const char *ring_shard_key (const ring_t *self, size_t index); //  Z85, "" if none
//  Index of the shard whose key is KEY (Z85), or -1; O(shards).
int ring_shard_find_key (const ring_t *self, const char *key);
double ring_shard_ownership (const ring_t *self, size_t index); //  fraction, sums to 1
size_t ring_shard_point_count (const ring_t *self, size_t index);

//  Points, by index in position order
size_t ring_point_count (const ring_t *self);
uint64_t ring_point_position (const ring_t *self, size_t index);
size_t ring_point_owner (const ring_t *self, size_t index);

//  Lookup: O(log points), no allocation
uint64_t ring_point_of_id (const void *id16);         //  XXH3_64bits over the 16 id bytes
int ring_lookup (const ring_t *self, uint64_t point); //  shard index; -1 if ring empty
int ring_lookup_id (const ring_t *self, const void *id16);

//  How much of the arc (start, end] the ring gives shard `shard` (start ==
//  end: the whole hash space): none of its points, some, or every one.
//  O(log points + points in the arc), no allocation. An empty ring gives
//  nothing.
typedef enum { RING_SHARE_NONE = 0, RING_SHARE_PART = 1, RING_SHARE_ALL = 2 } ring_share_t;
ring_share_t ring_arc_share (const ring_t *self, uint64_t start, uint64_t end, int shard);

//  Text form (docs/ring.md) -----------------------------------------------
//  On error: NULL, and err holds a message naming the line ("line 7: ...").
ring_t *ring_from_text (const char *text, char *err, size_t err_size);
char *ring_to_text (const ring_t *self); //  malloc'd, caller frees; NULL if out of memory
ring_t *ring_load_file (const char *path, char *err, size_t err_size);
//  Atomic: writes PATH.tmp, fsyncs it, renames it over PATH, fsyncs the
//  directory. RING_ERR_INVALID if the ring is empty, RING_ERR_IO (errno set)
//  if a step failed; PATH is then untouched.
int ring_save_file (const ring_t *self, const char *path);

//  Binary form for the wire (docs/ring.md), little-endian ------------------
size_t ring_encoded_size (const ring_t *self);
size_t ring_encode (const ring_t *self, uint8_t *out, size_t out_size); //  0 if too small
ring_t *ring_decode (const uint8_t *in, size_t size, char *err, size_t err_size);

//  Diff of two rings --------------------------------------------------------
//  The arc (start, end] moved from shard index `from` in a to shard index
//  `to` in b; start == end means the whole hash space. Shards are matched
//  by name. Arcs are in position order; adjacent arcs with the same pair
//  are merged, across the wrap too.
typedef struct {
    int from;
    int to;
    uint64_t start;
    uint64_t end;
} ring_arc_t;

//  Fraction of the hash space moved between a pair of shards (by name).
typedef struct {
    char from[RL_SHARD_NAME_SIZE_MAX];
    char to[RL_SHARD_NAME_SIZE_MAX];
    double fraction;
} ring_flow_t;

//  Both return a malloc'd array (NULL when the count is 0) that the caller
//  frees; RING_ERR_INVALID if either ring is empty.
int ring_diff_arcs (const ring_t *a, const ring_t *b, ring_arc_t **arcs_p, size_t *count_p);
int ring_diff_flows (const ring_t *a, const ring_t *b, ring_flow_t **flows_p, size_t *count_p);
double ring_arc_fraction (const ring_arc_t *arc); //  (end - start) / 2^64, whole space = 1

//  max over shards of ownership / (weight / total weight); 0 if empty
double ring_imbalance (const ring_t *self);

#endif
