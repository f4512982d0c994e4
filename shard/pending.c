/*  pending.c: user-level pending transfers of one shard.

    DESIGN
    TigerBeetle's two-phase transfers are the reference (docs/protocol.md,
    "Pending transfers"). A transfer flagged `pending` is checked like any
    other (accounts, ledger, limits counting posted + pending + reserved)
    and, instead of posting, adds its amount to the debit account's
    debits_pending and the credit account's credits_pending. A later
    transfer flagged `post_pending_transfer` or `void_pending_transfer`
    names it by `pending_id`: a post moves the amount it gives (all of it
    when 0) to posted and releases the rest; a void releases it all. A
    pending transfer with a `timeout` (seconds) expires at its timestamp
    plus the timeout, on the shard's timestamp clock (max of the wall clock
    and the last timestamp assigned, which is persisted and never goes
    back), and its amount is released.

    Every record (the pending transfer, each post or void, ok or burned)
    is stored in the journal like any transfer. What the journal cannot
    say cheaply is the state of a pending transfer, so this module keeps
    it, durably, in the `pending` column family: key the pending id, value
    the pending transfer's record with its state in `reserved`, put into
    the batch of the turn that creates, posts, voids or expires it. So a
    state change and the record that caused it commit together or not at
    all, and an expiry needs no record of its own.

    Pending amounts are derived state, like escrow (accounts.c): the
    accounts load with them zeroed, and pending_open adds back the amount
    of every transfer still pending. The journal's replay posts a post's
    amount and nothing for a pending transfer or a void (journal.c), so
    accounts + replay + this table give the balances of any crash point.

    In memory: the transfers still pending (a table with an id index and
    the accounts' slots), a binary heap of (expiry, id) for the ones with a
    timeout, and the states changed since the last group commit (a read of
    the column family does not see the batch). A heap entry of a transfer
    resolved since is stale and skipped when it comes up; the heap is
    rebuilt when stale entries outnumber live ones.

    INVARIANTS
    1. A transfer is in the live table exactly when its stored state is
       pending (or will be, once the batch commits).
    2. For every account: debits_pending (credits_pending) == the sum of
       the live transfers that debit (credit) it (pending_audit).
    3. A state leaves pending once, to posted, voided or expired, and never
       changes again.
    4. Every live transfer with a timeout has a heap entry with its expiry.

    LIMITS: RL_SHARD_PENDING_MAX live transfers (more: busy);
    RL_SHARD_PENDING_EXPIRE_PER_TICK expiries per tick (recovery expires
    every overdue one at once).
*/
#include "pending.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "idmap.h"
#include "journal.h"
#include "log.h"
#include "rl_limits.h"

#define S_NS_PER_S   1000000000ull
#define S_INITIAL    1024 //  first size of the live table and the heap
#define S_HEAP_SLACK 1024 //  stale heap entries tolerated beyond the live count

typedef struct {
    rl_transfer_t t; //  the pending transfer as stored (timestamp set)
    accounts_pair_t pair;
    uint64_t expires_at; //  0: never
} s_live_t;

typedef struct {
    uint64_t expires_at;
    rl_id_t id;
} s_heap_t;

//  One step to take back when a linked chain fails.
typedef enum {
    S_UNDO_INSERTED = 1, //  id became live: take it out again
    S_UNDO_REMOVED,      //  live left the table: put it back
    S_UNDO_CHANGED,      //  changed[id] was prev (had) or absent
} s_undo_kind_t;

typedef struct {
    s_undo_kind_t kind;
    bool had;
    uint64_t prev;
    s_live_t live; //  REMOVED: the entry; others: live.t.id only
} s_undo_t;

struct pending_t {
    store_t *store;
    accounts_t *accounts;
    s_live_t *live;
    size_t live_count;
    size_t live_cap;
    idmap_t *ids; //  id -> index in live
    s_heap_t *heap;
    size_t heap_count;
    size_t heap_cap;
    idmap_t *changed; //  id -> state, changed since the last group commit
    //  A linked chain in progress (pending_chain_begin): how to take back
    //  what its members did to these tables (the ledger restores the
    //  accounts and the batch).
    bool logging;
    s_undo_t *undo;
    size_t undo_count;
    size_t undo_cap;
};

pending_t *
pending_new (store_t *store, accounts_t *accounts)
{
    assert (store && accounts);
    pending_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->accounts = accounts;
    self->ids = idmap_new (S_INITIAL);
    self->changed = idmap_new (S_INITIAL);
    if (!self->ids || !self->changed) {
        pending_destroy (&self);
    }
    return self;
}

void
pending_destroy (pending_t **self_p)
{
    assert (self_p);
    pending_t *self = *self_p;
    if (!self) {
        return;
    }
    idmap_destroy (&self->ids);
    idmap_destroy (&self->changed);
    free (self->live);
    free (self->heap);
    free (self->undo);
    free (self);
    *self_p = NULL;
}

//  The expiry of a pending transfer: its timestamp plus its timeout
//  (u32 seconds: at most 2^32 s, so it never overflows a u64 of ns
//  before the year 2500; saturated all the same).
static uint64_t
s_expires_at (const rl_transfer_t *t)
{
    if (t->timeout == 0) {
        return 0;
    }
    uint64_t at = 0;
    if (__builtin_add_overflow (t->timestamp, (uint64_t) t->timeout * S_NS_PER_S, &at)) {
        return UINT64_MAX;
    }
    return at;
}

//  Heap ------------------------------------------------------------------------

static bool
s_heap_less (const s_heap_t *a, const s_heap_t *b)
{
    return a->expires_at < b->expires_at;
}

static int
s_heap_push (pending_t *self, uint64_t expires_at, rl_id_t id)
{
    if (self->heap_count == self->heap_cap) {
        size_t cap = self->heap_cap ? self->heap_cap * 2 : S_INITIAL;
        s_heap_t *heap = realloc (self->heap, cap * sizeof (*heap));
        if (!heap) {
            return -1;
        }
        self->heap = heap;
        self->heap_cap = cap;
    }
    size_t i = self->heap_count++;
    self->heap[i] = (s_heap_t){expires_at, id};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_heap_less (&self->heap[i], &self->heap[parent])) {
            break;
        }
        s_heap_t swap = self->heap[i];
        self->heap[i] = self->heap[parent];
        self->heap[parent] = swap;
        i = parent;
    }
    return 0;
}

static void
s_heap_pop (pending_t *self)
{
    assert (self->heap_count > 0);
    self->heap[0] = self->heap[--self->heap_count];
    size_t i = 0;
    for (;;) {
        size_t least = i, left = 2 * i + 1, right = left + 1;
        if (left < self->heap_count && s_heap_less (&self->heap[left], &self->heap[least])) {
            least = left;
        }
        if (right < self->heap_count && s_heap_less (&self->heap[right], &self->heap[least])) {
            least = right;
        }
        if (least == i) {
            break;
        }
        s_heap_t swap = self->heap[i];
        self->heap[i] = self->heap[least];
        self->heap[least] = swap;
        i = least;
    }
}

//  Is this heap entry still the expiry of a live transfer?
static bool
s_heap_entry_live (const pending_t *self, const s_heap_t *e, size_t *index_p)
{
    uint64_t index = 0;
    if (!idmap_get (self->ids, e->id, &index)) {
        return false;
    }
    assert (index < self->live_count);
    *index_p = (size_t) index;
    return self->live[index].expires_at == e->expires_at;
}

//  Drops the stale entries: the heap is rebuilt from the live table (its
//  memory is already there: live entries <= heap_count).
static void
s_heap_rebuild (pending_t *self)
{
    size_t count = self->heap_count;
    self->heap_count = 0;
    (void) count;
    for (size_t i = 0; i < self->live_count; i++) {
        if (self->live[i].expires_at != 0) {
            int rc = s_heap_push (self, self->live[i].expires_at, self->live[i].t.id);
            assert (rc == 0); //  fewer entries than before: no allocation
            (void) rc;
        }
    }
    assert (self->heap_count <= count);
}

//  Linked chains ------------------------------------------------------------------

//  Notes a step to take back, while a chain is in progress. Without memory
//  the chain could not be taken back: fail loudly, as s_put_state does.
static void
s_undo_push (pending_t *self, const s_undo_t *step)
{
    if (!self->logging) {
        return;
    }
    if (self->undo_count == self->undo_cap) {
        size_t cap = self->undo_cap ? self->undo_cap * 2 : 64;
        s_undo_t *undo = realloc (self->undo, cap * sizeof (*undo));
        if (!undo) {
            rl_error ("pending: out of memory for the undo steps of a linked chain");
            abort ();
        }
        self->undo = undo;
        self->undo_cap = cap;
    }
    self->undo[self->undo_count++] = *step;
}

//  Durable state ----------------------------------------------------------------

static void
s_put_state (pending_t *self, const rl_transfer_t *t, pending_state_t state)
{
    uint8_t key[RL_ID_SIZE];
    uint8_t value[RL_TRANSFER_SIZE];
    rl_transfer_t record = *t;
    record.reserved = (uint64_t) state;
    codec_encode_id (t->id, key);
    codec_encode_transfer (&record, value);
    store_batch_put (self->store, STORE_CF_PENDING, key, sizeof (key), value, sizeof (value));
    if (self->logging) {
        s_undo_t step = {.kind = S_UNDO_CHANGED, .live.t.id = t->id};
        step.had = idmap_get (self->changed, t->id, &step.prev);
        s_undo_push (self, &step);
    }
    //  Read back by pending_state before the commit: the batch is not readable.
    if (idmap_put (self->changed, t->id, (uint64_t) state) != 0) {
        //  Without room the state cannot be answered before the commit:
        //  the store write stands; a later read of this turn would see
        //  the committed state. Memory is gone: fail loudly.
        rl_error ("pending: out of memory for the states of this turn");
        abort ();
    }
}

int
pending_state (pending_t *self, rl_id_t id)
{
    assert (self);
    uint64_t state = 0;
    if (idmap_get (self->ids, id, &state)) {
        return PENDING_STATE_PENDING;
    }
    if (idmap_get (self->changed, id, &state)) {
        return (int) state;
    }
    uint8_t key[RL_ID_SIZE];
    uint8_t value[RL_TRANSFER_SIZE];
    size_t size = 0;
    codec_encode_id (id, key);
    int found = store_get (self->store, STORE_CF_PENDING, key, sizeof (key), value, sizeof (value),
                           &size);
    if (found < 0 || (found == 1 && size != RL_TRANSFER_SIZE)) {
        return -1;
    }
    if (found == 0) {
        return PENDING_STATE_NONE;
    }
    rl_transfer_t record;
    codec_decode_transfer (value, &record);
    return (int) record.reserved;
}

//  Live table ---------------------------------------------------------------------

static bool
s_live_room (pending_t *self)
{
    if (self->live_count < self->live_cap) {
        return true;
    }
    if (self->live_count >= RL_SHARD_PENDING_MAX) {
        return false;
    }
    size_t cap = self->live_cap ? self->live_cap * 2 : S_INITIAL;
    if (cap > RL_SHARD_PENDING_MAX) {
        cap = RL_SHARD_PENDING_MAX;
    }
    s_live_t *live = realloc (self->live, cap * sizeof (*live));
    if (!live) {
        return false;
    }
    self->live = live;
    self->live_cap = cap;
    return true;
}

//  Inserts a transfer still pending and reserves its amount. 0, or -1.
static int
s_live_insert (pending_t *self, const rl_transfer_t *t, const accounts_pair_t *pair)
{
    if (!s_live_room (self)) {
        return -1;
    }
    s_live_t *e = &self->live[self->live_count];
    *e = (s_live_t){.t = *t, .pair = *pair, .expires_at = s_expires_at (t)};
    e->t.reserved = 0;
    if (idmap_put (self->ids, t->id, self->live_count) != 0) {
        return -1;
    }
    if (e->expires_at != 0 && s_heap_push (self, e->expires_at, t->id) != 0) {
        idmap_remove (self->ids, t->id);
        return -1;
    }
    if (accounts_pending_move (self->accounts, pair, t->amount, 0, 0) != 0) {
        idmap_remove (self->ids, t->id); //  a stale heap entry at most
        return -1;
    }
    self->live_count++;
    s_undo_push (self, &(s_undo_t){.kind = S_UNDO_INSERTED, .live.t.id = t->id});
    return 0;
}

//  Takes the entry at index out of the table (swap with the last), with
//  no change to the accounts.
static void
s_live_drop (pending_t *self, size_t index)
{
    assert (index < self->live_count);
    bool removed = idmap_remove (self->ids, self->live[index].t.id);
    assert (removed);
    (void) removed;
    size_t last = --self->live_count;
    if (index != last) {
        self->live[index] = self->live[last];
        int rc = idmap_put (self->ids, self->live[index].t.id, index); //  replaces: no allocation
        assert (rc == 0);
        (void) rc;
    }
}

//  Takes a live transfer out of the table (swap with the last), releases
//  its amount and posts `post` of it.
static void
s_live_remove (pending_t *self, size_t index, uint64_t post)
{
    assert (index < self->live_count);
    s_live_t *e = &self->live[index];
    int rc = accounts_pending_move (self->accounts, &e->pair, 0, e->t.amount, post);
    assert (rc == 0); //  invariant 2: the amount is there, and a post was checked
    (void) rc;
    s_undo_push (self, &(s_undo_t){.kind = S_UNDO_REMOVED, .live = *e});
    s_live_drop (self, index);
    if (self->heap_count > 2 * self->live_count + S_HEAP_SLACK) {
        s_heap_rebuild (self);
    }
}

static void
s_expire (pending_t *self, size_t index, uint64_t clock_ns)
{
    s_live_t *e = &self->live[index];
    rl_info ("pending: transfer %016" PRIx64 "%016" PRIx64 " expired (at %" PRIu64
             ", clock %" PRIu64 "): %" PRIu64 " released",
             e->t.id.hi, e->t.id.lo, e->expires_at, clock_ns, e->t.amount);
    s_put_state (self, &e->t, PENDING_STATE_EXPIRED);
    s_live_remove (self, index, 0);
}

//  Open ---------------------------------------------------------------------------

int
pending_open (pending_t *self, uint64_t clock_ns, char *err, size_t err_size)
{
    assert (self && self->live_count == 0);
    store_iter_t *it = store_iter_new (self->store, STORE_CF_PENDING);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != RL_ID_SIZE || value_size != RL_TRANSFER_SIZE) {
            snprintf (err, err_size, "corrupt pending record (key %zu, value %zu bytes)", key_size,
                      value_size);
            rc = -1;
            break;
        }
        rl_transfer_t t;
        codec_decode_transfer (value, &t);
        if (t.reserved != PENDING_STATE_PENDING) {
            continue; //  resolved: read on demand
        }
        accounts_pair_t pair = {0};
        if (!accounts_pair (self->accounts, t.debit_account_id, t.credit_account_id, &pair)
            || s_live_insert (self, &t, &pair) != 0) {
            snprintf (err, err_size,
                      "pending transfer %016" PRIx64 "%016" PRIx64
                      ": an account is missing, a sum overflows or memory ran out",
                      t.id.hi, t.id.lo);
            rc = -1;
            break;
        }
    }
    store_iter_destroy (&it);
    if (rc != 0) {
        return -1;
    }
    //  Whatever expired while the shard was down expires now, all of it.
    size_t expired = pending_tick (self, clock_ns, SIZE_MAX);
    rl_info ("pending: %zu transfers pending, %zu expired at recovery", self->live_count, expired);
    return 0;
}

//  Create -------------------------------------------------------------------------

uint32_t
pending_validate (const rl_transfer_t *t)
{
    assert (t && (t->flags & PENDING_FLAGS));
    unsigned kinds = ((t->flags & RL_TRANSFER_PENDING) != 0)
                     + ((t->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0)
                     + ((t->flags & RL_TRANSFER_VOID_PENDING_TRANSFER) != 0);
    if (kinds > 1) {
        return RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
    }
    if (t->flags & ~(PENDING_FLAGS | RL_TRANSFER_LINKED)) {
        return RL_NOT_SUPPORTED; //  balancing: not served yet
    }
    //  The debit account routes the record and keeps its id: never inherited.
    if (rl_id_is_zero (t->debit_account_id)) {
        return RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
    }
    if (rl_id_is_max (t->debit_account_id)) {
        return RL_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
    }
    if (t->flags & RL_TRANSFER_PENDING) {
        if (rl_id_is_zero (t->credit_account_id)) {
            return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
        }
        if (rl_id_is_max (t->credit_account_id)) {
            return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
        }
        if (rl_id_eq (t->debit_account_id, t->credit_account_id)) {
            return RL_ACCOUNTS_MUST_BE_DIFFERENT;
        }
        if (!rl_id_is_zero (t->pending_id)) {
            return RL_PENDING_ID_MUST_BE_ZERO;
        }
        if (t->amount == 0) {
            return RL_AMOUNT_MUST_NOT_BE_ZERO;
        }
        if (t->ledger == 0) {
            return RL_LEDGER_MUST_NOT_BE_ZERO;
        }
        if (t->code == 0) {
            return RL_CODE_MUST_NOT_BE_ZERO;
        }
        return RL_OK;
    }
    //  Post or void: credit account, amount, ledger and code may be 0 (the
    //  pending transfer's; amount 0 posts or voids all of it).
    if (rl_id_is_max (t->credit_account_id)) {
        return RL_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
    }
    if (rl_id_eq (t->debit_account_id, t->credit_account_id)) {
        return RL_ACCOUNTS_MUST_BE_DIFFERENT;
    }
    if (rl_id_is_zero (t->pending_id)) {
        return RL_PENDING_ID_MUST_NOT_BE_ZERO;
    }
    if (rl_id_is_max (t->pending_id)) {
        return RL_PENDING_ID_MUST_NOT_BE_INT_MAX;
    }
    if (rl_id_eq (t->pending_id, t->id)) {
        return RL_PENDING_ID_MUST_BE_DIFFERENT;
    }
    if (t->timeout != 0) {
        return RL_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER;
    }
    return RL_OK;
}

bool
pending_room (pending_t *self)
{
    assert (self);
    return s_live_room (self);
}

void
pending_add (pending_t *self, const rl_transfer_t *record, const accounts_pair_t *pair)
{
    assert (self && record && pair);
    assert ((record->flags & RL_TRANSFER_PENDING) && record->timestamp != 0);
    assert (!idmap_get (self->ids, record->id, NULL));
    int rc = s_live_insert (self, record, pair);
    //  pending_room made the room; the accounts check summed the amounts.
    assert (rc == 0);
    (void) rc;
    s_put_state (self, record, PENDING_STATE_PENDING);
}

//  Post, void -----------------------------------------------------------------------

uint32_t
pending_check (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p, uint64_t ts,
               rl_transfer_t *resolved)
{
    assert (self && t && resolved);
    assert (t->flags & PENDING_RESOLVE_FLAGS);
    bool post = (t->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    //  A burned id is no transfer (lookup_transfers does not find it either).
    if (!p || JOURNAL_RESULT (p->reserved) != RL_OK) {
        return RL_PENDING_TRANSFER_NOT_FOUND;
    }
    if (!(p->flags & RL_TRANSFER_PENDING)) {
        return RL_PENDING_TRANSFER_NOT_PENDING;
    }
    if (!rl_id_eq (t->debit_account_id, p->debit_account_id)) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID;
    }
    if (!rl_id_is_zero (t->credit_account_id)
        && !rl_id_eq (t->credit_account_id, p->credit_account_id)) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID;
    }
    if (t->ledger != 0 && t->ledger != p->ledger) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER;
    }
    if (t->code != 0 && t->code != p->code) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE;
    }
    uint64_t amount = t->amount != 0 ? t->amount : p->amount;
    if (amount > p->amount) {
        return RL_EXCEEDS_PENDING_TRANSFER_AMOUNT;
    }
    if (!post && amount != p->amount) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT;
    }
    int state = pending_state (self, t->pending_id);
    switch (state) {
        case PENDING_STATE_PENDING:
            break;
        case PENDING_STATE_POSTED:
            return RL_PENDING_TRANSFER_ALREADY_POSTED;
        case PENDING_STATE_VOIDED:
            return RL_PENDING_TRANSFER_ALREADY_VOIDED;
        case PENDING_STATE_EXPIRED:
            return RL_PENDING_TRANSFER_EXPIRED;
        case PENDING_STATE_NONE:
            //  Its state is not here: a record a migration brought, resolved
            //  on its former shard before the move (docs/protocol.md).
            rl_warn ("pending: transfer %016" PRIx64 "%016" PRIx64 " has no state here", p->id.hi,
                     p->id.lo);
            return RL_PENDING_TRANSFER_NOT_PENDING;
        default:
            rl_error ("pending: cannot read the state of %016" PRIx64 "%016" PRIx64 ": %s",
                      p->id.hi, p->id.lo, store_error (self->store));
            return RL_STORAGE_ERROR;
    }
    uint64_t index = 0;
    bool live = idmap_get (self->ids, t->pending_id, &index);
    assert (live); //  invariant 1
    (void) live;
    s_live_t *e = &self->live[index];
    if (e->expires_at != 0 && e->expires_at <= ts) {
        s_expire (self, (size_t) index, ts); //  its time came before this record's
        return RL_PENDING_TRANSFER_EXPIRED;
    }
    if (post) {
        const rl_account_t *dr = accounts_at (self->accounts, e->pair.debit_slot);
        const rl_account_t *cr = accounts_at (self->accounts, e->pair.credit_slot);
        uint64_t sum = 0;
        if (__builtin_add_overflow (dr->debits_posted, amount, &sum)) {
            return RL_OVERFLOWS_DEBITS_POSTED;
        }
        if (__builtin_add_overflow (cr->credits_posted, amount, &sum)) {
            return RL_OVERFLOWS_CREDITS_POSTED;
        }
    }
    *resolved = *t;
    resolved->credit_account_id = p->credit_account_id;
    resolved->ledger = p->ledger;
    resolved->code = p->code;
    resolved->amount = amount;
    return RL_OK;
}

void
pending_apply (pending_t *self, const rl_transfer_t *resolved)
{
    assert (self && resolved && (resolved->flags & PENDING_RESOLVE_FLAGS));
    uint64_t index = 0;
    bool live = idmap_get (self->ids, resolved->pending_id, &index);
    assert (live); //  pending_check found it pending, this turn
    (void) live;
    s_live_t *e = &self->live[index];
    bool post = (resolved->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    assert (resolved->amount <= e->t.amount);
    s_put_state (self, &e->t, post ? PENDING_STATE_POSTED : PENDING_STATE_VOIDED);
    s_live_remove (self, (size_t) index, post ? resolved->amount : 0);
}

//  Expiry ----------------------------------------------------------------------------

size_t
pending_tick (pending_t *self, uint64_t clock_ns, size_t max)
{
    assert (self);
    size_t expired = 0;
    while (expired < max && self->heap_count > 0 && self->heap[0].expires_at <= clock_ns) {
        s_heap_t top = self->heap[0];
        s_heap_pop (self);
        size_t index = 0;
        if (s_heap_entry_live (self, &top, &index)) {
            s_expire (self, index, clock_ns);
            expired++;
        }
    }
    return expired;
}

void
pending_chain_begin (pending_t *self)
{
    assert (self && !self->logging);
    self->logging = true;
    self->undo_count = 0;
}

//  Takes back the steps in reverse order. The accounts' amounts are the
//  ledger's to restore (it saved their records), so nothing here moves an
//  amount: the tables and the states of this turn only.
static void
s_chain_undo (pending_t *self)
{
    while (self->undo_count > 0) {
        const s_undo_t *step = &self->undo[--self->undo_count];
        rl_id_t id = step->live.t.id;
        uint64_t index = 0;
        switch (step->kind) {
            case S_UNDO_INSERTED: {
                bool live = idmap_get (self->ids, id, &index);
                assert (live); //  nothing since took it out but a later step, undone first
                (void) live;
                s_live_drop (self, (size_t) index); //  its heap entry, if any, is stale now
                break;
            }
            case S_UNDO_REMOVED: {
                //  Its slot was there a moment ago: no allocation but the
                //  idmap's and the heap's, which never shrink.
                bool room = s_live_room (self);
                assert (room);
                (void) room;
                self->live[self->live_count] = step->live;
                if (idmap_put (self->ids, id, self->live_count) != 0
                    || (step->live.expires_at != 0
                        && s_heap_push (self, step->live.expires_at, id) != 0)) {
                    rl_error ("pending: out of memory taking back a linked chain");
                    abort ();
                }
                self->live_count++;
                break;
            }
            case S_UNDO_CHANGED:
                if (step->had) {
                    int rc = idmap_put (self->changed, id, step->prev); //  replaces
                    assert (rc == 0);
                    (void) rc;
                } else {
                    idmap_remove (self->changed, id);
                }
                break;
        }
    }
}

void
pending_chain_end (pending_t *self, bool rollback)
{
    assert (self && self->logging);
    if (rollback) {
        s_chain_undo (self);
    }
    self->logging = false;
    self->undo_count = 0;
}

uint64_t
pending_next_expiry (pending_t *self)
{
    assert (self);
    while (self->heap_count > 0) {
        size_t index = 0;
        if (s_heap_entry_live (self, &self->heap[0], &index)) {
            return self->heap[0].expires_at;
        }
        s_heap_pop (self);
    }
    return 0;
}

size_t
pending_live_count (const pending_t *self)
{
    assert (self);
    return self->live_count;
}

void
pending_committed (pending_t *self)
{
    assert (self);
    if (idmap_size (self->changed) > 0) {
        idmap_clear (self->changed);
    }
}

int
pending_audit (const pending_t *self, char *err, size_t err_size)
{
    assert (self && err);
    size_t n = accounts_count (self->accounts);
    uint64_t *debits = calloc (n + 1, sizeof (uint64_t));
    uint64_t *credits = calloc (n + 1, sizeof (uint64_t));
    int rc = 0;
    if (!debits || !credits) {
        snprintf (err, err_size, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < self->live_count; i++) {
        const s_live_t *e = &self->live[i];
        uint64_t index = 0;
        if (!idmap_get (self->ids, e->t.id, &index) || index != i) {
            snprintf (err, err_size, "pending transfer %016" PRIx64 "%016" PRIx64 " not indexed",
                      e->t.id.hi, e->t.id.lo);
            rc = -1;
            break;
        }
        debits[e->pair.debit_slot] += e->t.amount;
        credits[e->pair.credit_slot] += e->t.amount;
    }
    for (size_t slot = 0; rc == 0 && slot < n; slot++) {
        const rl_account_t *a = accounts_at (self->accounts, slot);
        if (a->debits_pending != debits[slot] || a->credits_pending != credits[slot]) {
            snprintf (err, err_size,
                      "account %016" PRIx64 "%016" PRIx64 ": pending %" PRIu64 "/%" PRIu64
                      ", transfers still pending sum to %" PRIu64 "/%" PRIu64,
                      a->id.hi, a->id.lo, a->debits_pending, a->credits_pending, debits[slot],
                      credits[slot]);
            rc = -1;
        }
    }
    free (debits);
    free (credits);
    return rc;
}

bool
pending_names (const pending_t *self, bool (*in) (void *arg, rl_id_t account), void *arg)
{
    assert (self && in);
    for (size_t i = 0; i < self->live_count; i++) {
        if (in (arg, self->live[i].t.debit_account_id)
            || in (arg, self->live[i].t.credit_account_id)) {
            return true;
        }
    }
    return false;
}
