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
    uint64_t deadline_ns;              //  monotonic; D live: prepare timeout; tombstone: expiry
    uint64_t next_ns;                  //  monotonic; next resend (decision) or query
    uint64_t backoff_ms;
    int32_t request;     //  D live: the client request (coordinator's request table)
    uint32_t index;      //  D live: record index in that request
    uint64_t created_ns; //  wall clock: when the attempt or record began (admin listing)
    uint64_t stamp;      //  C marker: its place in the marker FIFO
    uint64_t key_seq;    //  its key in xlog or prepared (increasing)
    uint64_t write_seq;  //  the group commit that wrote its record (0: recovered, durable)
    int32_t next;        //  chain of the same id
} attempt_t;

typedef struct {
    attempt_t *slots;
    size_t cap;
    size_t count;
    size_t span; //  slots ever used: every slot in use is below it (never shrinks)
    int32_t free_head;
    idmap_t *heads; //  id -> first slot + 1
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
#define ATTEMPT_VALUE_SIZE_MAX   (ATTEMPT_VALUE_FIXED_SIZE + 2 * (RL_SHARD_NAME_SIZE_MAX - 1))
//  Encodes e's persistent fields; returns the value's size.
size_t attempt_value_encode (const attempt_t *e, uint8_t format, uint8_t *out);
//  Decodes into e's persistent fields (transfer, tp, created_ns, peer);
//  returns the format, or -1 when the bytes are not a value.
int attempt_value_decode (const uint8_t *in, size_t size, attempt_t *e);

bool attempt_eq (rl_attempt_t a, rl_attempt_t b);
//  a was started before b (by the same coordinator).
bool attempt_older (rl_attempt_t a, rl_attempt_t b);

#endif
