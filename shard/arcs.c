/*  arcs.c: the arcs of the ring whose data this shard holds.

    WHY
    A ring change gives arcs of the hash space to other shards. Without
    this module the new owner of an arc would serve it at once, with no
    data: a client's retry of a transfer applied before the change would
    be answered debit_account_not_found (which burns the id) or, once the
    account was created again there, applied a second time. The rule: a
    shard serves an arc it gained in a ring change only after it has
    received that arc's data. Until then it answers `frozen` (retryable,
    never burns an id), before any idempotency or balance check.

    DESIGN
    Two sets are kept. "Not received" is a complement within the ring: the
    hash space the ring gives this shard but whose data has not arrived.
    It is empty in a new cluster (the first ring a data directory is
    opened with: every arc counts as received) and stays empty until a
    ring change. "Kept" is the hash space the ring does not give this
    shard but whose data it holds as the only current copy (below). A ring
    change (ring_diff_arcs of the old and the new ring) moves, for every
    arc the shard loses, what of it was received into "kept" and drops the
    rest; for every arc it gains, what of it is kept counts as received
    again (leaves "kept"), and the rest becomes not received. So "not
    received" is always within the arcs the current ring gives the shard,
    "kept" always outside them, and an arc gained, lost and gained again
    before its data arrived is still not received. Live rebalancing
    removes an arc from "not received" when its data has arrived
    (arcs_mark_received, the target's handover) and from "kept" when the
    source hands it over (arcs_forget, the source's handover, in the batch
    that stores HANDED_OVER). An account is served when the ring gives it
    to this shard (ledger_owns) and its point is not in "not received"
    (nor under a migration's freeze).

    KEPT (why regaining a kept point by a ring alone is safe)
    The rule above must keep holding: for every point, at most one shard
    may serve it, and that shard holds its current data. Claim: a point
    is, at any time, received (owned and not "not received") or kept on at
    most one shard, leaving aside a migration's source from SHIPPED on
    (its freeze keeps the point unserved until its handover forgets it),
    and a shard that holds it that way has its current data. It holds at the start (the first ring
   gives each point to one shard). A ring change only moves a point between received and kept on one
   shard, or makes it not received (a shard that held neither gains nothing it could serve). The
   only other way a point becomes received is a handover (arcs_mark_received on the target), which
   needs the final chunk of a migration whose source served the point, i.e. held it; that source is
   frozen from FROZEN on (also across a restart: migrate_start), and leaves SHIPPED only by its
   handover, which forgets the point in the same batch as HANDED_OVER, or by an abort on the word
   that the target aborted (deleted its import, never to commit), after which the source is again
   the only holder. So while a point is kept here: no write was accepted for it anywhere since this
   shard last served it (nobody else could serve it), and its data here is current. A point lost
   while frozen by a migration is kept too; the freeze, not the set, keeps it unserved until the
   handover forgets it. A point handed over is never kept again but by being received again: gained
    back by a ring alone it stays not received (frozen) until a migration
    brings its data, as before. A data directory from before "kept"
    existed (stored form 1) keeps nothing: its regained arcs stay frozen.

    The sets are sorted arrays of disjoint, non-adjacent closed spans
    [lo, hi] of u64 points; a ring arc (start, end] becomes [start + 1, end],
    or two spans when it wraps. Lookups are a binary search.

    STORED FORM (meta key ARCS_META_KEY, little-endian)
        u32 version (2), u32 span count, u64 epoch of the ring the sets
        are for, then per span u64 lo, u64 hi ("not received"); then u32
        kept span count, u32 0, then per kept span u64 lo, u64 hi.
        Version 1 ends after the first spans (nothing kept); it is read,
        and written as version 2 at the next change.
    It is written in the batch of the ring change that made it, with that
    ring (main.c at start, admin.c for load_ring), so the stored ring and
    the sets always agree after a restart.

    INVARIANTS
    1. Spans are sorted, disjoint and non-adjacent: lo <= hi, and the next
       span's lo > this hi + 1 (both sets).
    2. Every "not received" span lies in the hash space the ring of
       `epoch` gives this shard; every kept span outside it.
    3. A failed change (memory, bound) leaves the sets as they were.

    LIMITS
    A migration's freeze (arcs_freeze) adds one more arc that counts as
    not received while it lasts, kept in memory only: the migration's
    stored state says whether it is frozen, and re-freezes it at start
    (shard/migrate.c).

    Status counts the frozen arc with the arcs not received
    (arcs_unreceived_count), as both answer frozen.

    RL_SHARD_ARCS_UNRECEIVED_MAX spans in each set (a change past it
    fails, nothing changed); a change costs O(spans x arcs of the diff),
    a lookup O(log spans).
*/
#include "arcs.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "rl_limits.h"

#define S_VERSION          2
#define S_HEADER_SIZE      16
#define S_KEPT_HEADER_SIZE 8
#define S_SPAN_SIZE        16

typedef struct {
    uint64_t lo;
    uint64_t hi; //  inclusive
} s_span_t;

//  A set of spans (invariant 1).
typedef struct {
    s_span_t *spans;
    size_t count;
} s_set_t;

struct arcs_t {
    store_t *store;
    char name[RL_SHARD_NAME_SIZE_MAX];
    uint64_t epoch;
    s_set_t set;  //  not received: owned, data not here
    s_set_t kept; //  kept: not owned, data here and never handed over
    bool frozen;  //  a migration froze (frozen_start, frozen_end]: in memory only
    uint64_t frozen_start;
    uint64_t frozen_end;
};

//  Spans ---------------------------------------------------------------------

//  The set with [lo, hi] added (merged with what it overlaps or touches),
//  into *out (malloc'd). -1 when memory ran out.
static int
s_set_add (const s_set_t *in, uint64_t lo, uint64_t hi, s_set_t *out)
{
    assert (lo <= hi);
    out->spans = malloc ((in->count + 1) * sizeof (s_span_t));
    out->count = 0;
    if (!out->spans) {
        return -1;
    }
    bool placed = false;
    for (size_t i = 0; i < in->count; i++) {
        s_span_t s = in->spans[i];
        if (s.hi < lo && lo - s.hi > 1) {
            out->spans[out->count++] = s; //  before, not touching
        } else if (s.lo > hi && s.lo - hi > 1) {
            if (!placed) {
                out->spans[out->count++] = (s_span_t){lo, hi};
                placed = true;
            }
            out->spans[out->count++] = s; //  after, not touching
        } else {
            lo = s.lo < lo ? s.lo : lo; //  overlaps or touches: merge
            hi = s.hi > hi ? s.hi : hi;
        }
    }
    if (!placed) {
        out->spans[out->count++] = (s_span_t){lo, hi};
    }
    assert (out->count <= in->count + 1);
    return 0;
}

//  The set with [lo, hi] removed, into *out (malloc'd). -1: memory.
static int
s_set_sub (const s_set_t *in, uint64_t lo, uint64_t hi, s_set_t *out)
{
    assert (lo <= hi);
    out->spans = malloc ((in->count + 1) * sizeof (s_span_t));
    out->count = 0;
    if (!out->spans) {
        return -1;
    }
    for (size_t i = 0; i < in->count; i++) {
        s_span_t s = in->spans[i];
        if (s.hi < lo || s.lo > hi) {
            out->spans[out->count++] = s;
            continue;
        }
        if (s.lo < lo) {
            out->spans[out->count++] = (s_span_t){s.lo, lo - 1};
        }
        if (s.hi > hi) {
            out->spans[out->count++] = (s_span_t){hi + 1, s.hi};
        }
    }
    assert (out->count <= in->count + 1);
    return 0;
}

//  Applies add or sub of the ring arc (start, end] to *set, in place (the
//  old array is freed). -1: memory, *set unchanged.
//  The arc (start, end] as one or two spans (start == end: the whole hash
//  space); returns how many.
static size_t
s_arc_spans (uint64_t start, uint64_t end, s_span_t parts[2])
{
    size_t n = 0;
    if (start == end) {
        parts[n++] = (s_span_t){0, UINT64_MAX}; //  the whole hash space
    } else if (start < end) {
        parts[n++] = (s_span_t){start + 1, end};
    } else {
        if (start != UINT64_MAX) {
            parts[n++] = (s_span_t){start + 1, UINT64_MAX};
        }
        parts[n++] = (s_span_t){0, end};
    }
    return n;
}

static int
s_set_arc (s_set_t *set, uint64_t start, uint64_t end, bool add)
{
    s_span_t parts[2];
    size_t n = s_arc_spans (start, end, parts);
    for (size_t k = 0; k < n; k++) {
        s_set_t next;
        int rc = add ? s_set_add (set, parts[k].lo, parts[k].hi, &next)
                     : s_set_sub (set, parts[k].lo, parts[k].hi, &next);
        if (rc != 0) {
            return -1;
        }
        free (set->spans);
        *set = next;
    }
    return 0;
}

static bool
s_set_contains (const s_set_t *set, uint64_t point)
{
    size_t lo = 0, hi = set->count; //  first span with span.hi >= point
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->spans[mid].hi < point) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < set->count && set->spans[lo].lo <= point;
}

//  Does a span of the set meet [lo, hi] (*any), does one hold all of it
//  (*all)? Spans are disjoint and never adjacent, so one span holds all of
//  [lo, hi] or none does.
static void
s_set_meets (const s_set_t *set, s_span_t part, bool *any, bool *all)
{
    for (size_t i = 0; i < set->count; i++) {
        s_span_t s = set->spans[i];
        if (s.lo <= part.hi && s.hi >= part.lo) {
            *any = true;
            *all = *all || (s.lo <= part.lo && s.hi >= part.hi);
        }
    }
}

//  Stored form ---------------------------------------------------------------

//  Puts both sets into the store's batch. -1 when memory ran out.
static int
s_put (arcs_t *self)
{
    size_t size = S_HEADER_SIZE + self->set.count * S_SPAN_SIZE + S_KEPT_HEADER_SIZE
                  + self->kept.count * S_SPAN_SIZE;
    uint8_t *blob = malloc (size);
    if (!blob) {
        return -1;
    }
    codec_put_u32 (blob, S_VERSION);
    codec_put_u32 (blob + 4, (uint32_t) self->set.count);
    codec_put_u64 (blob + 8, self->epoch);
    uint8_t *at = blob + S_HEADER_SIZE;
    for (size_t i = 0; i < self->set.count; i++, at += S_SPAN_SIZE) {
        codec_put_u64 (at, self->set.spans[i].lo);
        codec_put_u64 (at + 8, self->set.spans[i].hi);
    }
    codec_put_u32 (at, (uint32_t) self->kept.count);
    codec_put_u32 (at + 4, 0);
    at += S_KEPT_HEADER_SIZE;
    for (size_t i = 0; i < self->kept.count; i++, at += S_SPAN_SIZE) {
        codec_put_u64 (at, self->kept.spans[i].lo);
        codec_put_u64 (at + 8, self->kept.spans[i].hi);
    }
    assert ((size_t) (at - blob) == size);
    store_batch_put (self->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), blob, size);
    free (blob);
    return 0;
}

//  Decodes `count` spans at `at` into *set (malloc'd), checking invariant 1
//  on bytes from disk. false: out of order, or memory.
static bool
s_spans_decode (const uint8_t *at, uint32_t count, s_set_t *set)
{
    set->spans = malloc ((count ? count : 1) * sizeof (s_span_t));
    set->count = 0;
    if (!set->spans) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        s_span_t s = {codec_get_u64 (at + i * S_SPAN_SIZE),
                      codec_get_u64 (at + i * S_SPAN_SIZE + 8)};
        if (s.lo > s.hi
            || (i > 0 && (s.lo <= set->spans[i - 1].hi || s.lo - set->spans[i - 1].hi <= 1))) {
            return false;
        }
        set->spans[set->count++] = s;
    }
    return true;
}

//  Reads the stored sets: 1 found, 0 none, -1 (err) unreadable or malformed.
//  Version 1 has no kept set: nothing counts as kept.
static int
s_get (arcs_t *self, char *err, size_t err_size)
{
    size_t size = 0;
    uint8_t header[S_HEADER_SIZE];
    int rc = store_get (self->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), header,
                        sizeof (header), &size);
    if (rc <= 0) {
        if (rc < 0) {
            snprintf (err, err_size, "cannot read the stored arcs: %s", store_error (self->store));
        }
        return rc;
    }
    size_t max = S_HEADER_SIZE + S_KEPT_HEADER_SIZE
                 + 2 * RL_SHARD_ARCS_UNRECEIVED_MAX * S_SPAN_SIZE;
    if (size < S_HEADER_SIZE || size > max) {
        snprintf (err, err_size, "the stored arcs do not decode (%zu bytes)", size);
        return -1;
    }
    uint8_t *blob = malloc (size);
    if (!blob) {
        snprintf (err, err_size, "out of memory reading the stored arcs");
        return -1;
    }
    size_t again = 0;
    rc = store_get (self->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), blob, size,
                    &again);
    uint32_t version = codec_get_u32 (blob);
    uint32_t count = codec_get_u32 (blob + 4);
    size_t end = S_HEADER_SIZE + (size_t) count * S_SPAN_SIZE;
    uint32_t kept = 0;
    bool ok = rc == 1 && again == size && (version == 1 || version == S_VERSION)
              && count <= RL_SHARD_ARCS_UNRECEIVED_MAX;
    if (ok && version == 1) {
        ok = size == end;
    } else if (ok) {
        ok = size >= end + S_KEPT_HEADER_SIZE;
        kept = ok ? codec_get_u32 (blob + end) : 0;
        ok = ok && kept <= RL_SHARD_ARCS_UNRECEIVED_MAX && codec_get_u32 (blob + end + 4) == 0
             && size == end + S_KEPT_HEADER_SIZE + (size_t) kept * S_SPAN_SIZE;
    }
    if (!ok) {
        free (blob);
        snprintf (err, err_size, "the stored arcs do not decode (%zu bytes)", size);
        return -1;
    }
    self->epoch = codec_get_u64 (blob + 8);
    ok = s_spans_decode (blob + S_HEADER_SIZE, count, &self->set)
         && s_spans_decode (blob + end + S_KEPT_HEADER_SIZE, kept, &self->kept);
    free (blob);
    if (!ok) {
        snprintf (err, err_size, "the stored arcs do not decode (spans out of order)");
        return -1;
    }
    return 1;
}

//  Life cycle ------------------------------------------------------------------

arcs_t *
arcs_open (store_t *store, const char *name, const ring_t *ring, const ring_t *stored,
           bool *ring_write_p, char *err, size_t err_size)
{
    assert (store && name && ring && ring_write_p);
    assert (strlen (name) < RL_SHARD_NAME_SIZE_MAX);
    *ring_write_p = false;
    arcs_t *self = calloc (1, sizeof (*self));
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->store = store;
    snprintf (self->name, sizeof (self->name), "%s", name);
    int found = s_get (self, err, err_size);
    if (found < 0) {
        arcs_destroy (&self);
        return NULL;
    }
    if (found == 0) {
        //  A new cluster (or a data directory from before arcs were kept):
        //  every arc the first ring gives this shard counts as received.
        self->epoch = ring_epoch (ring);
        if (s_put (self) != 0) {
            snprintf (err, err_size, "out of memory");
            arcs_destroy (&self);
            return NULL;
        }
        *ring_write_p = true;
        rl_info ("arcs: every arc of ring epoch %" PRIu64 " counts as received", self->epoch);
        return self;
    }
    if (self->epoch == ring_epoch (ring)) {
        return self;
    }
    //  A newer ring than the arcs were kept for (a newer --ring file): a
    //  ring change from the stored ring, which the arcs were kept with.
    if (self->epoch > ring_epoch (ring) || !stored || ring_epoch (stored) != self->epoch) {
        snprintf (err, err_size,
                  "the arcs were kept for ring epoch %" PRIu64 ", but the ring is epoch %" PRIu64
                  " and the stored ring epoch %" PRIu64,
                  self->epoch, ring_epoch (ring), stored ? ring_epoch (stored) : 0);
        arcs_destroy (&self);
        return NULL;
    }
    if (arcs_ring_change (self, stored, ring) != 0) {
        snprintf (err, err_size, "cannot apply the ring change %" PRIu64 " -> %" PRIu64,
                  ring_epoch (stored), ring_epoch (ring));
        arcs_destroy (&self);
        return NULL;
    }
    *ring_write_p = true;
    return self;
}

void
arcs_destroy (arcs_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->set.spans);
        free ((*self_p)->kept.spans);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Changes -------------------------------------------------------------------

//  A copy of *in into *out (malloc'd). -1: memory.
static int
s_set_copy (const s_set_t *in, s_set_t *out)
{
    out->spans = malloc ((in->count ? in->count : 1) * sizeof (s_span_t));
    out->count = out->spans ? in->count : 0;
    if (!out->spans) {
        return -1;
    }
    if (in->count) {
        memcpy (out->spans, in->spans, in->count * sizeof (s_span_t));
    }
    return 0;
}

//  Adds (or removes) every span of *other to (from) *set, in place. -1:
//  memory, *set is still a valid set (the caller drops it).
static int
s_set_apply (s_set_t *set, const s_set_t *other, bool add)
{
    for (size_t i = 0; i < other->count; i++) {
        s_set_t next;
        int rc = add ? s_set_add (set, other->spans[i].lo, other->spans[i].hi, &next)
                     : s_set_sub (set, other->spans[i].lo, other->spans[i].hi, &next);
        if (rc != 0) {
            free (next.spans);
            return -1;
        }
        free (set->spans);
        *set = next;
    }
    return 0;
}

//  The arc (start, end] without the points of *minus, into *out (malloc'd).
//  -1: memory.
static int
s_arc_minus (uint64_t start, uint64_t end, const s_set_t *minus, s_set_t *out)
{
    out->spans = malloc (sizeof (s_span_t));
    out->count = 0;
    if (!out->spans) {
        return -1;
    }
    if (s_set_arc (out, start, end, true) != 0 || s_set_apply (out, minus, false) != 0) {
        free (out->spans);
        out->spans = NULL;
        return -1;
    }
    return 0;
}

int
arcs_ring_change (arcs_t *self, const ring_t *old_ring, const ring_t *new_ring)
{
    assert (self && old_ring && new_ring);
    ring_arc_t *arcs = NULL;
    size_t count = 0;
    if (ring_diff_arcs (old_ring, new_ring, &arcs, &count) != RING_OK) {
        return -1; //  out of memory (both rings decoded, so neither is empty)
    }
    int self_old = ring_shard_find (old_ring, self->name);
    int self_new = ring_shard_find (new_ring, self->name);
    s_set_t set = {NULL, 0}, kept = {NULL, 0};
    int rc = s_set_copy (&self->set, &set) == 0 && s_set_copy (&self->kept, &kept) == 0 ? 0 : -1;
    size_t gained = 0, lost = 0, regained = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint64_t a = arcs[i].start, b = arcs[i].end;
        s_set_t part = {NULL, 0};
        if (self_new >= 0 && arcs[i].to == self_new) {
            //  Gained: what is kept here counts as received again (see
            //  "KEPT"), the rest is not received.
            rc = s_arc_minus (a, b, &kept, &part);
            if (rc == 0) {
                s_set_t whole = {NULL, 0};
                s_set_t none = {NULL, 0};
                rc = s_arc_minus (a, b, &none, &whole);
                regained += rc == 0
                            && (whole.count != part.count
                                || memcmp (whole.spans, part.spans, part.count * sizeof (s_span_t))
                                       != 0);
                free (whole.spans);
            }
            rc = rc == 0 ? s_set_apply (&set, &part, true) : -1;
            rc = rc == 0 ? s_set_arc (&kept, a, b, false) : -1;
            gained++;
        } else if (self_old >= 0 && arcs[i].from == self_old) {
            //  Lost: what was received here is kept (its data stays).
            rc = s_arc_minus (a, b, &set, &part);
            rc = rc == 0 ? s_set_apply (&kept, &part, true) : -1;
            rc = rc == 0 ? s_set_arc (&set, a, b, false) : -1;
            lost++;
        }
        free (part.spans);
        if (set.count > RL_SHARD_ARCS_UNRECEIVED_MAX || kept.count > RL_SHARD_ARCS_UNRECEIVED_MAX) {
            rc = -1;
        }
    }
    free (arcs);
    if (rc != 0) {
        free (set.spans);
        free (kept.spans);
        return -1; //  invariant 3: unchanged
    }
    uint64_t epoch = self->epoch;
    s_set_t old_set = self->set, old_kept = self->kept;
    self->set = set;
    self->kept = kept;
    self->epoch = ring_epoch (new_ring);
    if (s_put (self) != 0) {
        self->set = old_set;
        self->kept = old_kept;
        self->epoch = epoch;
        free (set.spans);
        free (kept.spans);
        return -1;
    }
    free (old_set.spans);
    free (old_kept.spans);
    rl_info ("arcs: ring epoch %" PRIu64 " -> %" PRIu64 ": %zu arcs gained (%zu of them partly "
             "or wholly held here, never handed over: received; the rest not received until "
             "their data arrives: frozen), %zu lost (kept until handed over); %" PRIu64
             " not received",
             epoch, self->epoch, gained, regained, lost, arcs_unreceived_count (self));
    return 0;
}

int
arcs_mark_received (arcs_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    s_set_t set = {malloc ((self->set.count ? self->set.count : 1) * sizeof (s_span_t)),
                   self->set.count};
    if (!set.spans) {
        return -1;
    }
    if (self->set.count) {
        memcpy (set.spans, self->set.spans, self->set.count * sizeof (s_span_t));
    }
    if (s_set_arc (&set, start, end, false) != 0) {
        free (set.spans);
        return -1;
    }
    s_set_t old = self->set;
    self->set = set;
    if (s_put (self) != 0) {
        self->set = old;
        free (set.spans);
        return -1;
    }
    free (old.spans);
    return 0;
}

int
arcs_forget (arcs_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    s_set_t kept = {NULL, 0};
    if (s_set_copy (&self->kept, &kept) != 0 || s_set_arc (&kept, start, end, false) != 0) {
        free (kept.spans);
        return -1;
    }
    s_set_t old = self->kept;
    self->kept = kept;
    if (s_put (self) != 0) {
        self->kept = old;
        free (kept.spans);
        return -1;
    }
    free (old.spans);
    return 0;
}

bool
arcs_kept (const arcs_t *self, uint64_t point)
{
    assert (self);
    return s_set_contains (&self->kept, point);
}

//  Queries -------------------------------------------------------------------

bool
arcs_received (const arcs_t *self, uint64_t point)
{
    assert (self);
    if (self->frozen) {
        uint64_t a = self->frozen_start, b = self->frozen_end;
        if (a < b ? (point > a && point <= b) : (point > a || point <= b)) {
            return false; //  its data is leaving: nothing may be decided here
        }
    }
    return !s_set_contains (&self->set, point);
}

void
arcs_freeze (arcs_t *self, uint64_t start, uint64_t end)
{
    assert (self && start != end);
    self->frozen = true;
    self->frozen_start = start;
    self->frozen_end = end;
}

void
arcs_thaw (arcs_t *self)
{
    assert (self);
    self->frozen = false;
}

ring_share_t
arcs_arc_received (const arcs_t *self, uint64_t start, uint64_t end)
{
    assert (self);
    s_span_t parts[2], frozen[2];
    size_t n = s_arc_spans (start, end, parts);
    size_t f = self->frozen ? s_arc_spans (self->frozen_start, self->frozen_end, frozen) : 0;
    bool any_missing = false, all_missing = true;
    for (size_t k = 0; k < n; k++) {
        bool any = false, all = false;
        s_set_meets (&self->set, parts[k], &any, &all);
        s_set_meets (&(s_set_t){frozen, f}, parts[k], &any, &all);
        any_missing = any_missing || any;
        all_missing = all_missing && all;
    }
    return !any_missing ? RING_SHARE_ALL : all_missing ? RING_SHARE_NONE : RING_SHARE_PART;
}

bool
arcs_waiting (const arcs_t *self)
{
    assert (self);
    return self->frozen || self->set.count > 0;
}

bool
arcs_received_id (const arcs_t *self, rl_id_t account_id)
{
    assert (self);
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (account_id, bytes);
    return arcs_received (self, ring_point_of_id (bytes));
}

//  Maximal runs of the set; one across the wrap counts once.
static uint64_t
s_runs (const s_set_t *set)
{
    size_t n = set->count;
    if (n >= 2 && set->spans[0].lo == 0 && set->spans[n - 1].hi == UINT64_MAX) {
        n--;
    }
    return n;
}

uint64_t
arcs_unreceived_count (const arcs_t *self)
{
    assert (self);
    if (!self->frozen) {
        return s_runs (&self->set);
    }
    //  The migration's freeze counts too: its arc answers frozen as well.
    s_set_t all = {NULL, 0};
    uint64_t n = s_runs (&self->set) + 1; //  if memory runs out: a close bound
    if (s_set_copy (&self->set, &all) == 0
        && s_set_arc (&all, self->frozen_start, self->frozen_end, true) == 0) {
        n = s_runs (&all);
    }
    free (all.spans);
    return n;
}

uint64_t
arcs_epoch (const arcs_t *self)
{
    assert (self);
    return self->epoch;
}
