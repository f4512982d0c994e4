/*  hotacct.c: see hotacct.h (a Space-Saving summary per second of the
    window, merged on request). */
#include "hotacct.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t second; //  the monotonic second it counts (-1: none yet)
    size_t used;
    uint64_t counted; //  records counted in this second
    hotacct_entry_t entries[HOTACCT_SLOTS];
} s_bucket_t;

struct hotacct_t {
    s_bucket_t buckets[HOTACCT_BUCKETS];
    int64_t newest;                                          //  the newest second counted or asked
    hotacct_entry_t merged[HOTACCT_BUCKETS * HOTACCT_SLOTS]; //  hotacct_top's work space
};

hotacct_t *
hotacct_new (int64_t now_s)
{
    hotacct_t *self = calloc (1, sizeof *self);
    if (!self) {
        return NULL;
    }
    for (size_t b = 0; b < HOTACCT_BUCKETS; b++) {
        self->buckets[b].second = -1;
    }
    self->newest = now_s;
    return self;
}

void
hotacct_destroy (hotacct_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static s_bucket_t *
s_bucket (hotacct_t *self, int64_t now_s)
{
    if (now_s > self->newest) {
        self->newest = now_s;
    }
    int64_t second = self->newest;
    s_bucket_t *b = &self->buckets[(uint64_t) second % HOTACCT_BUCKETS];
    if (b->second != second) {
        b->second = second;
        b->used = 0;
        b->counted = 0;
    }
    return b;
}

void
hotacct_count (hotacct_t *self, rl_id_t id, int64_t now_s)
{
    assert (self);
    s_bucket_t *b = s_bucket (self, now_s);
    b->counted++;
    size_t min = 0;
    for (size_t i = 0; i < b->used; i++) {
        if (rl_id_eq (b->entries[i].id, id)) {
            b->entries[i].count++;
            return;
        }
        min = b->entries[i].count < b->entries[min].count ? i : min;
    }
    if (b->used < HOTACCT_SLOTS) {
        b->entries[b->used++] = (hotacct_entry_t){.id = id, .count = 1, .error = 0};
        return;
    }
    hotacct_entry_t *e = &b->entries[min];
    e->error = e->count;
    e->count++;
    e->id = id;
}

//  The smallest count of a full bucket (what an absent account may have
//  had there); 0 for a bucket with room (an absent account had none).
static uint64_t
s_floor (const s_bucket_t *b)
{
    if (b->used < HOTACCT_SLOTS) {
        return 0;
    }
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < b->used; i++) {
        min = b->entries[i].count < min ? b->entries[i].count : min;
    }
    return min;
}

static const hotacct_entry_t *
s_find (const s_bucket_t *b, rl_id_t id)
{
    for (size_t i = 0; i < b->used; i++) {
        if (rl_id_eq (b->entries[i].id, id)) {
            return &b->entries[i];
        }
    }
    return NULL;
}

static int
s_by_count (const void *a, const void *b)
{
    const hotacct_entry_t *x = a, *y = b;
    if (x->count != y->count) {
        return x->count > y->count ? -1 : 1;
    }
    if (x->id.hi != y->id.hi) {
        return x->id.hi < y->id.hi ? -1 : 1;
    }
    return x->id.lo < y->id.lo ? -1 : x->id.lo > y->id.lo;
}

size_t
hotacct_top (hotacct_t *self, int64_t now_s, hotacct_entry_t *out, size_t max, uint64_t *counted_p,
             uint64_t *others_max_p)
{
    assert (self && (out || max == 0) && counted_p && others_max_p);
    s_bucket (self, now_s); //  rotates: the current second's bucket is fresh
    const s_bucket_t *live[HOTACCT_BUCKETS];
    size_t lives = 0;
    uint64_t counted = 0, floor_sum = 0;
    for (size_t k = 0; k < HOTACCT_BUCKETS; k++) {
        const s_bucket_t *b = &self->buckets[k];
        if (b->second >= 0 && b->second > self->newest - HOTACCT_BUCKETS) {
            live[lives++] = b;
            counted += b->counted;
            floor_sum += s_floor (b);
        }
    }
    //  Every account of some live bucket, once, with its merged bounds.
    hotacct_entry_t *merged = self->merged;
    size_t count = 0;
    for (size_t k = 0; k < lives; k++) {
        for (size_t i = 0; i < live[k]->used; i++) {
            rl_id_t id = live[k]->entries[i].id;
            bool seen = false;
            for (size_t j = 0; j < k && !seen; j++) {
                seen = s_find (live[j], id) != NULL;
            }
            if (seen) {
                continue;
            }
            hotacct_entry_t m = {.id = id};
            for (size_t j = 0; j < lives; j++) {
                const hotacct_entry_t *e = s_find (live[j], id);
                uint64_t f = e ? 0 : s_floor (live[j]);
                m.count += e ? e->count : f;
                m.error += e ? e->error : f;
            }
            assert (m.error <= m.count && count < HOTACCT_BUCKETS * HOTACCT_SLOTS);
            merged[count++] = m;
        }
    }
    qsort (merged, count, sizeof merged[0], s_by_count);
    size_t n = count < max ? count : max;
    if (n > 0) {
        memcpy (out, merged, n * sizeof merged[0]);
    }
    uint64_t others = floor_sum;
    if (n < count && merged[n].count > others) {
        others = merged[n].count;
    }
    *counted_p = counted;
    *others_max_p = others;
    return n;
}
