/*  attempts.h: the two-phase tables: a slab of entries with an index by
    transfer id, shared by the coordinator (live attempts, logged decisions)
    and the participant (prepared records and their markers).

    A table is a value the owner embeds; its entries are read and written
    in place by the owner (coordinator.c, participant.c). See attempts.c for
    the invariants and limits.
*/
#ifndef RL_ATTEMPTS_H
#define RL_ATTEMPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idmap.h"
#include "proto.h"
#include "rl_limits.h"
#include "store.h"

//  The life cycle of an entry (docs/two-phase.md draws the transitions).
typedef enum {
    ATTEMPT_FREE = 0,
    ATTEMPT_LIVE,      //  coordinator: PREPARE sent, undecided
    ATTEMPT_DECIDED,   //  coordinator: xlog entry, decision not yet acknowledged
    ATTEMPT_PREPARED,  //  participant: credit reserved, awaiting the decision
    ATTEMPT_ABORTED,   //  participant: aborted or unknown-aborted (tombstone)
    ATTEMPT_HEURISTIC, //  participant: resolved by hand (tp.state says how); kept
} attempt_state_t;

//  One entry of any table: an attempt at the coordinator D, or a record at
//  the participant C.
typedef struct {
    attempt_state_t state;
    rl_transfer_t transfer;
    rl_tp_rec_t tp;                    //  id, attempt, coordinator, amount; state = decision
    char peer[RL_SHARD_NAME_SIZE_MAX]; //  D: the participant
    int32_t peer_index;                //  D: the participant in the ring served now, or -1
    uint64_t deadline_ns;              //  monotonic; D live: prepare timeout; D decided: logged
                                       //  at (0: loaded); C tombstone: expiry
    uint64_t next_ns;                  //  monotonic; next resend (decision) or query
    uint64_t backoff_ms;
    int32_t request;      //  D live: the client request (coordinator's request table)
    uint32_t index;       //  D live: record index in that request
    uint32_t group;       //  D live: the linked chain it is a member of (1..), or 0: none
    int32_t group_next;   //  D live: the group's next member, or -1
    bool local;           //  D live: a group member whose credit is here too (no PREPARE)
    bool prepared;        //  D live: a group member whose participant answered PREPARED
    uint32_t repeats;     //  D live: later records of its chain repeating it (same id, same record)
    uint32_t repeat_head; //  D live: the last of them (record index + 1; 0: none), see
                          //  coordinator_group_repeat
    uint64_t exists_ts;   //  D live: a debit leg's member stored at its debit shard before
                          //  (refused exists): that record's timestamp; else 0
    bool of_member;       //  D live: a held post or void of a pending transfer an earlier
                          //  member of its chain makes (nothing claimed: not in the table yet)
    bool third;           //  D live: a debit leg whose credit is on a third shard: its credit
                          //  leg, an attempt of the same id, begins once it is PREPARED
    uint32_t doomed;      //  D live: a debit leg's member whose credit check here failed with
                          //  this code (nothing reserved here): it fails its chain unless its
                          //  debit shard answers exists; else 0
    uint64_t created_ns;  //  wall clock: when the attempt or record began (admin listing)
    uint64_t stamp;       //  C marker: its place in the marker FIFO
    uint64_t key_seq;     //  its key in xlog or prepared (increasing)
    uint64_t write_seq;   //  the group commit that wrote its record (0: recovered, durable)
    int32_t next;         //  chain of the same id
    bool keyed;           //  holds a key the table still needs (in the key order below)
    int32_t key_prev;     //  the order of keys: the entry with the next lower key, or -1
    int32_t key_next;     //  ... the next higher, or -1
} attempt_t;

//  The keys of a table stored in a column family (xlog, prepared): every
//  entry's record is under a key that only grows. A record no longer
//  needed is not deleted one by one: the keys below the lowest one still
//  needed are dropped by range (attempts.c, "Keys").
typedef struct {
    store_t *store;       //  NULL: the table stores nothing (live attempts)
    store_cf_t cf;        //  its column family
    uint64_t key_seq;     //  the last key used or loaded
    uint64_t range_low;   //  every key below it is deleted (in the batch, or durably)
    int32_t first;        //  the keyed entry with the lowest key, or -1
    int32_t last;         //  ... the highest, or -1
    uint64_t range_drops; //  ranges deleted
    uint64_t point_drops; //  records deleted one by one (far above the bound)
    uint64_t moves;       //  records moved to a new key (they held the bound back)
} attempts_keys_t;

typedef struct {
    attempt_t *slots;
    size_t cap;
    size_t count;
    size_t span; //  slots ever used: every slot in use is below it (never shrinks)
    int32_t free_head;
    idmap_t *heads;       //  id -> first slot + 1
    attempts_keys_t keys; //  the stored records' keys (attempts_keys_init)
} attempts_t;

//  0, or -1 when memory ran out (attempts_free is then still safe).
int attempts_init (attempts_t *self, size_t cap);
void attempts_free (attempts_t *self);
//  The first entry of id's chain, or -1.
int32_t attempts_head (const attempts_t *self, rl_id_t id);
//  Hints for a batch's loop, which looks ids up in order: the index slot
//  of an id a few records ahead (idmap_prefetch), then, nearer, its first
//  entry (found through that slot, in the cache by then). Change nothing.
#define ATTEMPTS_PREFETCH_SLOT_AHEAD  8
#define ATTEMPTS_PREFETCH_ENTRY_AHEAD 4
void attempts_prefetch (const attempts_t *self, rl_id_t id);
void attempts_prefetch_entry (const attempts_t *self, rl_id_t id);
//  The entry for (id, coordinator), or -1; coordinator NULL: any.
int32_t attempts_find (const attempts_t *self, rl_id_t id, const char *coordinator);
//  A zeroed entry (state ATTEMPT_FREE, the caller sets it) at the head of
//  id's chain, or -1 when the table is full or memory ran out.
int32_t attempts_add (attempts_t *self, rl_id_t id);
void attempts_remove (attempts_t *self, int32_t i);
//  Slots in use are below this high-water mark; scans go up to it.
size_t attempts_span (const attempts_t *self);
//  The entry at i (asserted in range).
attempt_t *attempts_at (attempts_t *self, int32_t i);

//  Keys --------------------------------------------------------------------------
//
//  LIMITS: a range is dropped once the bound has moved ATTEMPTS_KEYS_STEP
//  keys, or when no record is needed any more; a record dropped
//  ATTEMPTS_KEYS_WINDOW keys or more above the bound is deleted at once;
//  the entry with the lowest key moves to a new key once it lags the
//  newest by more than ATTEMPTS_KEYS_WINDOW / 2. So the column family
//  holds at most ATTEMPTS_KEYS_WINDOW + ATTEMPTS_KEYS_STEP records not
//  needed (loaded again after a crash), besides the needed ones.
#define ATTEMPTS_KEYS_STEP   256u
#define ATTEMPTS_KEYS_WINDOW (1u << 17)
#define ATTEMPTS_KEY_SIZE    8 //  bytes: the sequence, big-endian

//  The table stores its records in `cf` of `store`, keyed (at init, empty).
void attempts_keys_init (attempts_t *self, store_t *store, store_cf_t cf);
//  Gives entry i a new key, the highest (its record is then put).
void attempts_key_assign (attempts_t *self, int32_t i);
//  Recovery: entry i was loaded from `key` (keys loaded in increasing order).
void attempts_key_loaded (attempts_t *self, int32_t i, uint64_t key);
//  Puts entry i's record under its key, into the batch. The value's format
//  follows its state: ATTEMPT_DECIDED a log entry, ATTEMPT_HEURISTIC a
//  heuristic record, else a participant's record.
void attempts_key_put (attempts_t *self, int32_t i);
//  Entry i's record is no longer needed (before attempts_remove): its key
//  leaves the order; the batch gets its delete only when it lies far above
//  the bound, else a range delete takes it later.
void attempts_key_drop (attempts_t *self, int32_t i);
//  The lowest key still needed (the first keyed entry's, or the next key).
uint64_t attempts_key_low (const attempts_t *self);

//  The admin listing of an entry (live, decided or prepared).
void attempt_in_doubt (const attempt_t *e, rl_in_doubt_rec_t *out);

//  Stored values of an entry, in the `xlog` and `prepared` column families
//  (attempts.c draws the layout): the transfer's fields that may be
//  non-zero, the attempt, tp.state, the creation date, the coordinator's
//  name and the peer's (empty for a participant's record).
#define ATTEMPT_VALUE_LOG        2 //  a coordinator-log entry (xlog.c)
#define ATTEMPT_VALUE_RECORD     3 //  a participant's record (participant.c)
#define ATTEMPT_VALUE_HEURISTIC  4 //  a participant's heuristic record
#define ATTEMPT_VALUE_FIXED_SIZE 126
//  The tail of a transfer of a pending kind (pending, post, void: flags,
//  timeout, pending id), present when the format byte has ATTEMPT_VALUE_TAIL.
#define ATTEMPT_VALUE_TAIL      0x80
#define ATTEMPT_VALUE_TAIL_SIZE 22
#define ATTEMPT_VALUE_SIZE_MAX                                                                     \
    (ATTEMPT_VALUE_FIXED_SIZE + 2 * (RL_SHARD_NAME_SIZE_MAX - 1) + ATTEMPT_VALUE_TAIL_SIZE)
//  Encodes e's persistent fields; returns the value's size.
size_t attempt_value_encode (const attempt_t *e, uint8_t format, uint8_t *out);
//  Decodes into e's persistent fields (transfer, tp, created_ns, peer);
//  returns the format, or -1 when the bytes are not a value.
int attempt_value_decode (const uint8_t *in, size_t size, attempt_t *e);

bool attempt_eq (rl_attempt_t a, rl_attempt_t b);
//  a was started before b (by the same coordinator).
bool attempt_older (rl_attempt_t a, rl_attempt_t b);

#endif
