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
    The set kept is its complement within the ring: the hash space the
    ring gives this shard but whose data has not arrived ("unreceived").
    It is empty in a new cluster (the first ring a data directory is opened
    with: every arc counts as received) and stays empty until a ring
    change. A ring change (ring_diff_arcs of the old and the new ring) adds
    every arc the shard gains and removes every arc it loses, so the set is
    always within the arcs the current ring gives the shard, and an arc
    gained, lost and gained again is still not received. Live rebalancing
    removes an arc from the set when its data has arrived
    (arcs_mark_received). An account is served when the ring gives it to
    this shard (ledger_owns) and its point is not in the set.

    The set is a sorted array of disjoint, non-adjacent closed spans
    [lo, hi] of u64 points; a ring arc (start, end] becomes [start + 1, end],
    or two spans when it wraps. Lookups are a binary search.

    STORED FORM (meta key ARCS_META_KEY, little-endian)
        u32 version (1), u32 span count, u64 epoch of the ring the set is
        for, then per span u64 lo, u64 hi.
    It is written in the batch of the ring change that made it, with that
    ring (main.c at start, admin.c for load_ring), so the stored ring and
    the set always agree after a restart.

    INVARIANTS
    1. Spans are sorted, disjoint and non-adjacent: lo <= hi, and the next
       span's lo > this hi + 1.
    2. Every span lies in the hash space the ring of `epoch` gives this
       shard.
    3. A failed change (memory, bound) leaves the set as it was.

    LIMITS
    A migration's freeze (arcs_freeze) adds one more arc that counts as
    not received while it lasts, kept in memory only: the migration's
    stored state says whether it is frozen, and re-freezes it at start
    (shard/migrate.c).

    RL_SHARD_ARCS_UNRECEIVED_MAX spans; a change costs O(spans + arcs of
    the diff), a lookup O(log spans).
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

#define S_VERSION     1
#define S_HEADER_SIZE 16
#define S_SPAN_SIZE   16

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
    s_set_t set;
    bool frozen; //  a migration froze (frozen_start, frozen_end]: in memory only
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
static int
s_set_arc (s_set_t *set, uint64_t start, uint64_t end, bool add)
{
    s_span_t parts[2];
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

//  Stored form ---------------------------------------------------------------

//  Puts the set into the store's batch. -1 when memory ran out.
static int
s_put (arcs_t *self)
{
    size_t size = S_HEADER_SIZE + self->set.count * S_SPAN_SIZE;
    uint8_t *blob = malloc (size);
    if (!blob) {
        return -1;
    }
    codec_put_u32 (blob, S_VERSION);
    codec_put_u32 (blob + 4, (uint32_t) self->set.count);
    codec_put_u64 (blob + 8, self->epoch);
    for (size_t i = 0; i < self->set.count; i++) {
        codec_put_u64 (blob + S_HEADER_SIZE + i * S_SPAN_SIZE, self->set.spans[i].lo);
        codec_put_u64 (blob + S_HEADER_SIZE + i * S_SPAN_SIZE + 8, self->set.spans[i].hi);
    }
    store_batch_put (self->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), blob, size);
    free (blob);
    return 0;
}

//  Reads the stored set: 1 found, 0 none, -1 (err) unreadable or malformed.
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
    uint32_t count = size >= S_HEADER_SIZE ? codec_get_u32 (header + 4) : 0;
    if (size < S_HEADER_SIZE || codec_get_u32 (header) != S_VERSION
        || count > RL_SHARD_ARCS_UNRECEIVED_MAX
        || size != S_HEADER_SIZE + (size_t) count * S_SPAN_SIZE) {
        snprintf (err, err_size, "the stored arcs do not decode (%zu bytes)", size);
        return -1;
    }
    uint8_t *blob = malloc (size);
    self->set.spans = malloc ((count ? count : 1) * sizeof (s_span_t));
    if (!blob || !self->set.spans) {
        free (blob);
        snprintf (err, err_size, "out of memory reading the stored arcs");
        return -1;
    }
    size_t again = 0;
    rc = store_get (self->store, STORE_CF_META, ARCS_META_KEY, strlen (ARCS_META_KEY), blob, size,
                    &again);
    bool ok = rc == 1 && again == size;
    self->epoch = codec_get_u64 (blob + 8);
    for (size_t i = 0; ok && i < count; i++) {
        s_span_t s = {codec_get_u64 (blob + S_HEADER_SIZE + i * S_SPAN_SIZE),
                      codec_get_u64 (blob + S_HEADER_SIZE + i * S_SPAN_SIZE + 8)};
        //  Invariant 1, checked on bytes from disk.
        ok = s.lo <= s.hi
             && (i == 0
                 || (s.lo > self->set.spans[i - 1].hi && s.lo - self->set.spans[i - 1].hi > 1));
        self->set.spans[i] = s;
    }
    free (blob);
    if (!ok) {
        snprintf (err, err_size, "the stored arcs do not decode (spans out of order)");
        return -1;
    }
    self->set.count = count;
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
        free (*self_p);
        *self_p = NULL;
    }
}

//  Changes -------------------------------------------------------------------

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
    s_set_t set = {malloc ((self->set.count ? self->set.count : 1) * sizeof (s_span_t)),
                   self->set.count};
    int rc = set.spans ? 0 : -1;
    if (set.spans && self->set.count) {
        memcpy (set.spans, self->set.spans, self->set.count * sizeof (s_span_t));
    }
    size_t gained = 0, lost = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (self_new >= 0 && arcs[i].to == self_new) {
            rc = s_set_arc (&set, arcs[i].start, arcs[i].end, true);
            gained++;
        } else if (self_old >= 0 && arcs[i].from == self_old) {
            rc = s_set_arc (&set, arcs[i].start, arcs[i].end, false);
            lost++;
        }
        if (set.count > RL_SHARD_ARCS_UNRECEIVED_MAX) {
            rc = -1;
        }
    }
    free (arcs);
    if (rc != 0) {
        free (set.spans);
        return -1; //  invariant 3: unchanged
    }
    uint64_t epoch = self->epoch;
    s_set_t old = self->set;
    self->set = set;
    self->epoch = ring_epoch (new_ring);
    if (s_put (self) != 0) {
        self->set = old;
        self->epoch = epoch;
        free (set.spans);
        return -1;
    }
    free (old.spans);
    rl_info ("arcs: ring epoch %" PRIu64 " -> %" PRIu64 ": %zu arcs gained (not received until "
             "their data arrives: frozen), %zu lost; %" PRIu64 " not received",
             epoch, self->epoch, gained, lost, arcs_unreceived_count (self));
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

uint64_t
arcs_unreceived_count (const arcs_t *self)
{
    assert (self);
    size_t n = self->set.count;
    //  A run across the wrap is two spans here, one arc of the ring.
    if (n >= 2 && self->set.spans[0].lo == 0 && self->set.spans[n - 1].hi == UINT64_MAX) {
        n--;
    }
    return n;
}

uint64_t
arcs_epoch (const arcs_t *self)
{
    assert (self);
    return self->epoch;
}
