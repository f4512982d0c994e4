/*  arcs.h: which arcs of the ring this shard holds the data of.

    A shard serves an account only when the ring gives it the account AND
    it holds the data of the account's arc ("received"). A new cluster's
    arcs count as received; an arc a shard gains in a ring change does not,
    until its data arrives (live rebalancing marks it, arcs_mark_received).
    Until then every request for an account there is answered `frozen`
    (retryable, never burns an id). See arcs.c for the design.
*/
#ifndef RL_ARCS_H
#define RL_ARCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "ring.h"
#include "store.h"

//  The meta key of the arcs not yet received (arcs.c, "STORED FORM").
#define ARCS_META_KEY "arcs_unreceived"

typedef struct arcs_t arcs_t;

//  Opens the arcs of shard `name` for `ring`, the ring it starts with.
//  `stored`: the ring the store holds (NULL: none). No arcs in the store: a
//  new cluster, every arc of `ring` is received. Arcs kept for an older
//  ring: that ring must be `stored`, and the change stored -> ring is
//  applied (arcs_ring_change). *ring_write_p is set when the caller must
//  store `ring` beside them (in the same batch, before the next commit).
//  What changed is put into the store's batch. NULL (err says why) when
//  the stored arcs do not decode or do not match the stored ring, or
//  memory ran out.
arcs_t *arcs_open (store_t *store, const char *name, const ring_t *ring, const ring_t *stored,
                   bool *ring_write_p, char *err, size_t err_size);
void arcs_destroy (arcs_t **self_p);

//  A ring change (load_ring, or a newer ring file at start): the arcs this
//  shard gains are not received, but for the hash space it still keeps
//  (lost while received, never handed over since: arcs.c, "KEPT"), which
//  counts as received again; of the arcs it loses, what was received is
//  kept (an arc gained, lost and gained again before its data arrived is
//  still not received). Puts the new sets into the store's batch. 0; -1 when memory ran out or the
//  set would exceed RL_SHARD_ARCS_UNRECEIVED_MAX spans (nothing changed).
int arcs_ring_change (arcs_t *self, const ring_t *old_ring, const ring_t *new_ring);

//  The data of the arc (start, end] has arrived (start == end: the whole
//  hash space). Puts the new set into the store's batch. 0, or -1 (memory;
//  nothing changed).
int arcs_mark_received (arcs_t *self, uint64_t start, uint64_t end);

//  The source handed the arc (start, end] over (migrate_commit): it keeps
//  it no more, so a ring giving it back alone never makes it received.
//  Puts the new sets into the store's batch. 0, or -1 (memory; nothing
//  changed).
int arcs_forget (arcs_t *self, uint64_t start, uint64_t end);
//  Does this shard keep the data of `point` (lost in a ring change while
//  received, never handed over since)?
bool arcs_kept (const arcs_t *self, uint64_t point);

//  Does this shard hold the data of the hash `point` / of the account?
//  (Ownership is the ring's business: a point it does not own is never
//  "not received".)
bool arcs_received (const arcs_t *self, uint64_t point);
bool arcs_received_id (const arcs_t *self, rl_id_t account_id);
//  How much of the arc (start, end] (start == end: the whole space) this
//  shard holds the data of, as arcs_received answers point by point:
//  RING_SHARE_ALL every point, RING_SHARE_NONE none, otherwise PART (also
//  when the points not received are partly a freeze's and partly not).
//  O(spans).
ring_share_t arcs_arc_received (const arcs_t *self, uint64_t start, uint64_t end);

//  A migration freezes the arc (start, end] it moves away (start != end):
//  until arcs_thaw, its points count as not received, so that every write
//  there is answered `frozen` (docs/rebalance.md). One arc at a time.
void arcs_freeze (arcs_t *self, uint64_t start, uint64_t end);
void arcs_thaw (arcs_t *self);
//  Is any point not received (an arc not received, or a frozen one)?
bool arcs_waiting (const arcs_t *self);

//  Arcs answered frozen: not received yet, or held by a migration's freeze
//  (maximal runs of hash space; one across the wrap counts once), for
//  status.
uint64_t arcs_unreceived_count (const arcs_t *self);
//  The epoch of the ring the set was computed for.
uint64_t arcs_epoch (const arcs_t *self);

#endif
