/*  accounts.c: the account table of one shard and its balance checks.

    DESIGN
    A slab of account records, a dirty flag per slot, the list of dirty
    slots in order, and an id -> slot index (idmap). Slots never move once
    assigned, so a slot names one account for the life of the process, or
    none once that account is removed (accounts_remove: an account that
    migrated away leaves a zeroed hole, never reused until a restart). The durable copy is the
   `accounts` column family: a new account is put into the batch of its group commit; the changed
   ones are copied out at each checkpoint and written, in full, by the background checkpoint
   (checkpoint.c). An account a migration hands over is adopted (accounts_adopt): its
   durable copy until that checkpoint is the staged one the migration left in the store.

    INVARIANTS
    1. accounts_count <= RL_SHARD_ACCOUNTS_MAX; every slot below it holds an
       account whose id maps to that slot.
    2. dirty[slot] is true exactly for the slots in dirty_list, each listed
       once; dirty_count <= accounts_count.
    3. Reserved amounts are derived: zero at load, then changed only by the
       reserve/release pairs of the two-phase modules, so a release never
       exceeds what was reserved (asserted).
    4. Every limit counts posted + pending + reserved (escrow).
    5. Posted amounts only grow, and only through a stored ok transfer (or
       its replay): accounts_transfer_post, accounts_*_release (post), and
       accounts_post.

    CHANGE TRACKING (for a migration's catch-up rounds, migrate.c)
    While tracking is on, every slot carries the change generation of its
    last change: balances posted, pending or reserved, and the slot's
    creation. accounts_change_mark starts a new generation; the slots
    changed since a mark are those whose generation is at least the one it
    returned. Off (the default) it costs one branch per change; on, 4
    bytes per slot. It lives in memory only: a restart forgets it (the
    migration then sends a whole round again).

    A STANDBY'S MIRROR (journal.c, "a standby's warm state"). A standby
    keeps a table of its copy's accounts as accounts_load would read them,
    current with every record of the `accounts` family it applies
    (accounts_mirror_put, accounts_mirror_delete), and its promoted
    recovery takes that table over (accounts_take) instead of reading the
    family: a promotion then costs no read of the accounts. A mirror's slot
    order is the order its records arrived in, not the key order of a load,
    and a deleted record leaves a hole as accounts_remove does: nothing
    reads meaning into either (slots name accounts, holes are all zeros).
    accounts_take closes the holes, so that those of a standby that
    followed many migrations never count against the promoted table's
    RL_SHARD_ACCOUNTS_MAX.

    LIMITS: RL_SHARD_ACCOUNTS_MAX accounts (more: the create answers
    storage_error); the table grows by doubling from
    RL_SHARD_ACCOUNTS_INITIAL slots.
*/
#include "accounts.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "idmap.h"
#include "rl_limits.h"

struct accounts_t {
    store_t *store;
    rl_account_t *slots;  //  slots never move once assigned
    bool *dirty;          //  per slot: changed since the last checkpoint
    uint32_t *dirty_list; //  slots marked dirty, in order
    size_t dirty_count;
    size_t count;   //  slots used, holes included
    size_t removed; //  holes: accounts removed since load
    size_t cap;
    idmap_t *ids;        //  id -> slot
    uint32_t *changed;   //  per slot: generation of its last change (NULL: tracking off)
    uint32_t change_gen; //  the generation a change is stamped with now (>= 1 while on)
};

static int
s_reserve (accounts_t *self, size_t count)
{
    if (count <= self->cap) {
        return 0;
    }
    size_t cap = self->cap ? self->cap : RL_SHARD_ACCOUNTS_INITIAL;
    while (cap < count) {
        cap *= 2;
    }
    rl_account_t *slots = realloc (self->slots, cap * sizeof (*slots));
    if (!slots) {
        return -1;
    }
    self->slots = slots;
    bool *dirty = realloc (self->dirty, cap * sizeof (*dirty));
    if (!dirty) {
        return -1;
    }
    memset (dirty + self->cap, 0, (cap - self->cap) * sizeof (*dirty));
    self->dirty = dirty;
    uint32_t *list = realloc (self->dirty_list, cap * sizeof (*list));
    if (!list) {
        return -1;
    }
    self->dirty_list = list;
    if (self->changed) {
        uint32_t *changed = realloc (self->changed, cap * sizeof (*changed));
        if (!changed) {
            return -1;
        }
        memset (changed + self->cap, 0, (cap - self->cap) * sizeof (*changed));
        self->changed = changed;
    }
    self->cap = cap;
    return 0;
}

accounts_t *
accounts_new (store_t *store)
{
    assert (store);
    accounts_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->ids = idmap_new (RL_SHARD_ACCOUNTS_INITIAL);
    if (!self->ids || s_reserve (self, 1) != 0) {
        accounts_destroy (&self);
    }
    return self;
}

void
accounts_destroy (accounts_t **self_p)
{
    assert (self_p);
    accounts_t *self = *self_p;
    if (!self) {
        return;
    }
    idmap_destroy (&self->ids);
    free (self->slots);
    free (self->dirty);
    free (self->dirty_list);
    free (self->changed);
    free (self);
    *self_p = NULL;
}

//  A change to the slot's balances (or its creation): stamped when tracking.
static inline void
s_touch (accounts_t *self, size_t slot)
{
    assert (slot < self->count);
    if (self->changed) {
        self->changed[slot] = self->change_gen;
    }
}

static void
s_mark_dirty (accounts_t *self, size_t slot)
{
    assert (slot < self->count);
    s_touch (self, slot);
    if (!self->dirty[slot]) {
        self->dirty[slot] = true;
        self->dirty_list[self->dirty_count++] = (uint32_t) slot;
        assert (self->dirty_count <= self->count);
    }
}

static rl_account_t *
s_find (const accounts_t *self, rl_id_t id, size_t *slot_p)
{
    uint64_t slot = 0;
    if (!idmap_get (self->ids, id, &slot)) {
        return NULL;
    }
    assert (slot < self->count);
    if (slot_p) {
        *slot_p = (size_t) slot;
    }
    return &self->slots[slot];
}

//  Adds an account to the table; returns its slot or -1 when full.
static long
s_insert (accounts_t *self, const rl_account_t *account)
{
    if (self->count >= RL_SHARD_ACCOUNTS_MAX || s_reserve (self, self->count + 1) != 0) {
        return -1;
    }
    size_t slot = self->count;
    if (idmap_put (self->ids, account->id, slot) != 0) {
        return -1;
    }
    self->slots[slot] = *account;
    self->count++;
    assert (idmap_size (self->ids) == self->count - self->removed);
    return (long) slot;
}

//  A stored record as a load holds it: its derived amounts zeroed. Escrow
//  is rebuilt from prepared records (participant.c; live attempts of the
//  last incarnation are presumed aborted), user-level pending amounts from
//  the pending transfers still pending (pending.c). A standby's mirror
//  holds its records so too (accounts_mirror_put).
static void
s_as_loaded (rl_account_t *account)
{
    account->debits_reserved = 0;
    account->credits_reserved = 0;
    account->debits_pending = 0;
    account->credits_pending = 0;
}

static void
s_put (accounts_t *self, const rl_account_t *account)
{
    uint8_t key[RL_ID_SIZE];
    uint8_t value[RL_ACCOUNT_SIZE];
    codec_encode_id (account->id, key);
    codec_encode_account (account, value);
    store_batch_put (self->store, STORE_CF_ACCOUNTS, key, sizeof (key), value, sizeof (value));
}

int
accounts_load (accounts_t *self, uint64_t *last_ts_p, char *err, size_t err_size)
{
    assert (self && last_ts_p);
    assert (self->count == 0);
    store_iter_t *it = store_iter_new (self->store, STORE_CF_ACCOUNTS);
    if (!it) {
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != RL_ID_SIZE || value_size != RL_ACCOUNT_SIZE) {
            snprintf (err, err_size, "corrupt account record");
            rc = -1;
            break;
        }
        rl_account_t account;
        codec_decode_account (value, &account);
        s_as_loaded (&account);
        if (s_insert (self, &account) < 0) {
            snprintf (err, err_size, "cannot hold account: table full or out of memory");
            rc = -1;
            break;
        }
        if (account.timestamp > *last_ts_p) {
            *last_ts_p = account.timestamp;
        }
    }
    store_iter_destroy (&it);
    return rc;
}

//  A standby's mirror -----------------------------------------------------------

int
accounts_mirror_put (accounts_t *self, const rl_account_t *stored, uint64_t *old_ts_p)
{
    assert (self && stored && old_ts_p && !rl_id_is_zero (stored->id));
    assert (self->dirty_count == 0 && !self->changed); //  a mirror: nothing dirty, no tracking
    rl_account_t account = *stored;
    s_as_loaded (&account); //  as accounts_load holds it
    rl_account_t *held = s_find (self, account.id, NULL);
    *old_ts_p = held ? held->timestamp : 0;
    if (held) {
        *held = account;
        return 0;
    }
    return s_insert (self, &account) < 0 ? -1 : 0;
}

bool
accounts_mirror_delete (accounts_t *self, rl_id_t id)
{
    assert (self && self->dirty_count == 0);
    rl_account_t *a = s_find (self, id, NULL);
    if (!a) {
        return false;
    }
    bool gone = idmap_remove (self->ids, id);
    assert (gone);
    memset (a, 0, sizeof (*a));
    self->removed++;
    assert (self->removed <= self->count);
    return true;
}

//  Closes the holes of removed accounts: the live records move down, in
//  their order, under a new index. 0, or -1 when memory ran out (nothing
//  changed). A mirror only (nothing dirty, no change tracking).
static int
s_close_holes (accounts_t *self)
{
    assert (self->dirty_count == 0 && !self->changed);
    size_t live = self->count - self->removed;
    idmap_t *ids = idmap_new (live > RL_SHARD_ACCOUNTS_INITIAL ? live : RL_SHARD_ACCOUNTS_INITIAL);
    if (!ids) {
        return -1;
    }
    size_t next = 0;
    for (size_t slot = 0; slot < self->count; slot++) {
        rl_id_t id = self->slots[slot].id;
        if (!rl_id_is_zero (id) && idmap_put (ids, id, next++) != 0) {
            idmap_destroy (&ids);
            return -1;
        }
    }
    assert (next == live && idmap_size (ids) == live);
    next = 0;
    for (size_t slot = 0; slot < self->count; slot++) {
        if (!rl_id_is_zero (self->slots[slot].id)) {
            self->slots[next++] = self->slots[slot];
        }
    }
    idmap_destroy (&self->ids);
    self->ids = ids;
    self->count = live;
    self->removed = 0;
    return 0;
}

void
accounts_take (accounts_t *self, accounts_t **from_p)
{
    assert (self && from_p && *from_p && *from_p != self);
    accounts_t *from = *from_p;
    assert (self->count == 0 && self->dirty_count == 0 && !self->changed);
    assert (from->dirty_count == 0 && !from->changed);
    //  The two change places; each keeps its own store (the mirror's is
    //  the same store, read by nothing of a mirror).
    accounts_t empty = *self;
    *self = *from;
    self->store = empty.store;
    empty.store = from->store;
    *from = empty;
    accounts_destroy (from_p);
    //  The holes of the accounts the mirror saw deleted (a migration's
    //  cleanups, across any number of the primary's restarts) would count
    //  against RL_SHARD_ACCOUNTS_MAX here, where a load of the disk holds
    //  none: closed, O(slots). Out of memory they stay, as a primary's own
    //  holes stay until its restart.
    if (self->removed > 0) {
        (void) s_close_holes (self);
    }
    assert (idmap_size (self->ids) == self->count - self->removed);
}

size_t
accounts_count (const accounts_t *self)
{
    assert (self);
    return self->count;
}

const rl_account_t *
accounts_at (const accounts_t *self, size_t slot)
{
    assert (self && slot < self->count);
    return &self->slots[slot];
}

size_t
accounts_live_count (const accounts_t *self)
{
    assert (self && self->removed <= self->count);
    return self->count - self->removed;
}

int
accounts_remove (accounts_t *self, rl_id_t id)
{
    assert (self);
    size_t slot = 0;
    rl_account_t *a = s_find (self, id, &slot);
    if (!a) {
        return 1;
    }
    if (self->dirty[slot] || a->debits_reserved || a->credits_reserved) {
        return -1; //  its checkpoint, or its escrow, is not done with it
    }
    bool gone = idmap_remove (self->ids, id);
    assert (gone);
    memset (a, 0, sizeof (*a));
    self->removed++;
    return 0;
}

const rl_account_t *
accounts_get (const accounts_t *self, rl_id_t id)
{
    assert (self);
    return s_find (self, id, NULL);
}

//  Creation -------------------------------------------------------------------

static uint32_t
s_account_exists (const rl_account_t *a, const rl_account_t *stored)
{
    if (a->flags != stored->flags) {
        return RL_EXISTS_WITH_DIFFERENT_FLAGS;
    }
    if (!rl_id_eq (a->user_data_128, stored->user_data_128)) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_128;
    }
    if (a->user_data_64 != stored->user_data_64) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_64;
    }
    if (a->user_data_32 != stored->user_data_32) {
        return RL_EXISTS_WITH_DIFFERENT_USER_DATA_32;
    }
    if (a->ledger != stored->ledger) {
        return RL_EXISTS_WITH_DIFFERENT_LEDGER;
    }
    if (a->code != stored->code) {
        return RL_EXISTS_WITH_DIFFERENT_CODE;
    }
    return RL_EXISTS;
}

static uint32_t
s_account_validate (const rl_account_t *a)
{
    if (a->timestamp != 0) {
        return RL_TIMESTAMP_MUST_BE_ZERO;
    }
    if (a->reserved != 0 || a->reserved2[0] != 0 || a->reserved2[1] != 0 || a->debits_reserved != 0
        || a->credits_reserved != 0) {
        return RL_RESERVED_FIELD;
    }
    if (a->flags & ~RL_ACCOUNT_FLAGS_KNOWN) {
        return RL_RESERVED_FLAG;
    }
    if (a->flags & RL_ACCOUNT_LINKED) {
        return RL_NOT_SUPPORTED;
    }
    if ((a->flags & RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
        && (a->flags & RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS)) {
        return RL_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
    }
    if (a->debits_pending != 0) {
        return RL_DEBITS_PENDING_MUST_BE_ZERO;
    }
    if (a->debits_posted != 0) {
        return RL_DEBITS_POSTED_MUST_BE_ZERO;
    }
    if (a->credits_pending != 0) {
        return RL_CREDITS_PENDING_MUST_BE_ZERO;
    }
    if (a->credits_posted != 0) {
        return RL_CREDITS_POSTED_MUST_BE_ZERO;
    }
    if (a->ledger == 0) {
        return RL_LEDGER_MUST_NOT_BE_ZERO;
    }
    if (a->code == 0) {
        return RL_CODE_MUST_NOT_BE_ZERO;
    }
    return RL_OK;
}

uint32_t
accounts_check_new (const accounts_t *self, const rl_account_t *a, uint64_t *ts_p)
{
    assert (self && a && ts_p);
    *ts_p = 0;
    const rl_account_t *stored = s_find (self, a->id, NULL);
    if (stored) {
        *ts_p = stored->timestamp;
        return s_account_exists (a, stored);
    }
    return s_account_validate (a);
}

int
accounts_insert (accounts_t *self, const rl_account_t *account)
{
    assert (self && account);
    assert (account->timestamp != 0 && !s_find (self, account->id, NULL));
    long slot = s_insert (self, account);
    if (slot < 0) {
        return -1;
    }
    s_touch (self, (size_t) slot); //  a new account is a change a migration must send
    s_put (self, account);
    return 0;
}

int
accounts_reserve (accounts_t *self, size_t more)
{
    assert (self);
    size_t live = self->count - self->removed;
    if (self->count + more > RL_SHARD_ACCOUNTS_MAX) {
        return -2;
    }
    if (s_reserve (self, self->count + more) != 0 || idmap_reserve (self->ids, live + more) != 0) {
        return -1;
    }
    return 0;
}

int
accounts_adopt (accounts_t *self, const rl_account_t *account)
{
    assert (self && account);
    assert (account->timestamp != 0 && !s_find (self, account->id, NULL));
    assert (account->debits_pending == 0 && account->credits_pending == 0);
    assert (account->debits_reserved == 0 && account->credits_reserved == 0);
    long slot = s_insert (self, account);
    if (slot < 0) {
        return -1;
    }
    s_mark_dirty (self, (size_t) slot); //  the next checkpoint writes it
    return 0;
}

//  Balance checks ---------------------------------------------------------------

//  Debit side: overflow, then limits (posted + pending + reserved against
//  credits posted).
static uint32_t
s_debit_checks (const rl_account_t *dr, uint64_t amount)
{
    uint64_t sum = 0, debits = 0;
    if (__builtin_add_overflow (dr->debits_posted, amount, &sum)) {
        return RL_OVERFLOWS_DEBITS_POSTED;
    }
    if (__builtin_add_overflow (dr->debits_posted, dr->debits_pending, &debits)
        || __builtin_add_overflow (debits, dr->debits_reserved, &debits)
        || __builtin_add_overflow (debits, amount, &debits)) {
        return RL_OVERFLOWS_DEBITS;
    }
    if ((dr->flags & RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) && debits > dr->credits_posted) {
        return RL_EXCEEDS_CREDITS;
    }
    return RL_OK;
}

//  The same on the credit side.
static uint32_t
s_credit_checks (const rl_account_t *cr, uint64_t amount)
{
    uint64_t sum = 0, credits = 0;
    if (__builtin_add_overflow (cr->credits_posted, amount, &sum)) {
        return RL_OVERFLOWS_CREDITS_POSTED;
    }
    if (__builtin_add_overflow (cr->credits_posted, cr->credits_pending, &credits)
        || __builtin_add_overflow (credits, cr->credits_reserved, &credits)
        || __builtin_add_overflow (credits, amount, &credits)) {
        return RL_OVERFLOWS_CREDITS;
    }
    if ((cr->flags & RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS) && credits > cr->debits_posted) {
        return RL_EXCEEDS_DEBITS;
    }
    return RL_OK;
}

//  Same-shard order: both overflows of posted first, then totals, then limits.
static uint32_t
s_transfer_balances (const rl_account_t *dr, const rl_account_t *cr, uint64_t amount)
{
    uint64_t sum = 0;
    if (__builtin_add_overflow (dr->debits_posted, amount, &sum)) {
        return RL_OVERFLOWS_DEBITS_POSTED;
    }
    if (__builtin_add_overflow (cr->credits_posted, amount, &sum)) {
        return RL_OVERFLOWS_CREDITS_POSTED;
    }
    uint32_t debit = s_debit_checks (dr, amount);
    uint32_t credit = s_credit_checks (cr, amount);
    if (debit == RL_OVERFLOWS_DEBITS || credit == RL_OVERFLOWS_CREDITS) {
        return debit == RL_OVERFLOWS_DEBITS ? debit : credit;
    }
    return debit != RL_OK ? debit : credit;
}

uint32_t
accounts_transfer_check (const accounts_t *self, const rl_transfer_t *t, accounts_pair_t *pair)
{
    assert (self && t && pair);
    size_t dr_slot = 0, cr_slot = 0;
    const rl_account_t *dr = s_find (self, t->debit_account_id, &dr_slot);
    const rl_account_t *cr = s_find (self, t->credit_account_id, &cr_slot);
    if (!dr) {
        return RL_DEBIT_ACCOUNT_NOT_FOUND;
    }
    if (!cr) {
        return RL_CREDIT_ACCOUNT_NOT_FOUND;
    }
    if (dr->ledger != cr->ledger) {
        return RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER;
    }
    if (t->ledger != dr->ledger) {
        return RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS;
    }
    pair->debit_slot = (uint32_t) dr_slot;
    pair->credit_slot = (uint32_t) cr_slot;
    uint64_t sum = 0;
    if ((t->flags & RL_TRANSFER_PENDING)
        && __builtin_add_overflow (dr->debits_pending, t->amount, &sum)) {
        return RL_OVERFLOWS_DEBITS_PENDING;
    }
    if ((t->flags & RL_TRANSFER_PENDING)
        && __builtin_add_overflow (cr->credits_pending, t->amount, &sum)) {
        return RL_OVERFLOWS_CREDITS_PENDING;
    }
    return s_transfer_balances (dr, cr, t->amount);
}

bool
accounts_pair (const accounts_t *self, rl_id_t debit, rl_id_t credit, accounts_pair_t *pair)
{
    assert (self && pair);
    size_t dr_slot = 0, cr_slot = 0;
    if (!s_find (self, debit, &dr_slot) || !s_find (self, credit, &cr_slot)) {
        return false;
    }
    pair->debit_slot = (uint32_t) dr_slot;
    pair->credit_slot = (uint32_t) cr_slot;
    return true;
}

int
accounts_pending_move (accounts_t *self, const accounts_pair_t *pair, uint64_t add,
                       uint64_t release, uint64_t post)
{
    assert (self && pair);
    bool has_dr = pair->debit_slot != ACCOUNTS_SLOT_NONE;
    bool has_cr = pair->credit_slot != ACCOUNTS_SLOT_NONE;
    assert (has_dr || has_cr);
    assert ((!has_dr || pair->debit_slot < self->count)
            && (!has_cr || pair->credit_slot < self->count));
    assert (post <= release);
    rl_account_t none = {0};
    rl_account_t *dr = has_dr ? &self->slots[pair->debit_slot] : &none;
    rl_account_t *cr = has_cr ? &self->slots[pair->credit_slot] : &none;
    if (!has_dr) {
        none.debits_pending = release; //  the side elsewhere: nothing to hold back
    }
    if (!has_cr) {
        none.credits_pending = release;
    }
    if (dr->debits_pending < release || cr->credits_pending < release) {
        return -1; //  more released than held: the caller's state is wrong
    }
    uint64_t debits = dr->debits_pending - release, credits = cr->credits_pending - release;
    uint64_t debits_posted = 0, credits_posted = 0;
    if (__builtin_add_overflow (debits, add, &debits)
        || __builtin_add_overflow (credits, add, &credits)
        || __builtin_add_overflow (dr->debits_posted, post, &debits_posted)
        || __builtin_add_overflow (cr->credits_posted, post, &credits_posted)) {
        return -1;
    }
    if (has_dr) {
        dr->debits_pending = debits;
        s_touch (self, pair->debit_slot);
    }
    if (has_cr) {
        cr->credits_pending = credits;
        s_touch (self, pair->credit_slot);
    }
    if (post > 0 && has_dr) {
        dr->debits_posted = debits_posted;
        s_mark_dirty (self, pair->debit_slot);
    }
    if (post > 0 && has_cr) {
        cr->credits_posted = credits_posted;
        s_mark_dirty (self, pair->credit_slot);
    }
    return 0;
}

void
accounts_transfer_post (accounts_t *self, const accounts_pair_t *pair, uint64_t amount)
{
    assert (self && pair);
    assert (pair->debit_slot < self->count && pair->credit_slot < self->count);
    assert (pair->debit_slot != pair->credit_slot);
    self->slots[pair->debit_slot].debits_posted += amount;
    self->slots[pair->credit_slot].credits_posted += amount;
    s_mark_dirty (self, pair->debit_slot);
    s_mark_dirty (self, pair->credit_slot);
}

void
accounts_restore (accounts_t *self, size_t slot, const rl_account_t *saved)
{
    assert (self && saved && slot < self->count);
    assert (rl_id_eq (self->slots[slot].id, saved->id)); //  slots never move
    self->slots[slot] = *saved;
    s_mark_dirty (self, slot); //  the next checkpoint writes the same record: harmless
}

int
accounts_post (accounts_t *self, rl_id_t id, bool debit, uint64_t amount)
{
    assert (self);
    size_t slot = 0;
    rl_account_t *a = s_find (self, id, &slot);
    if (!a) {
        return -1;
    }
    if (debit) {
        a->debits_posted += amount;
    } else {
        a->credits_posted += amount;
    }
    s_mark_dirty (self, slot);
    return 0;
}

//  Two-phase escrow ---------------------------------------------------------------

uint32_t
accounts_debit_reserve (accounts_t *self, const rl_transfer_t *t)
{
    assert (self && t);
    size_t slot = 0;
    rl_account_t *dr = s_find (self, t->debit_account_id, &slot);
    if (!dr) {
        return RL_DEBIT_ACCOUNT_NOT_FOUND;
    }
    if (t->ledger != dr->ledger) {
        return RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS;
    }
    uint32_t result = s_debit_checks (dr, t->amount);
    if (result == RL_OK) {
        dr->debits_reserved += t->amount; //  no overflow: s_debit_checks summed it
        s_touch (self, slot);
    }
    return result;
}

void
accounts_debit_release (accounts_t *self, rl_id_t id, uint64_t amount, bool post)
{
    assert (self);
    size_t slot = 0;
    rl_account_t *dr = s_find (self, id, &slot);
    assert (dr && dr->debits_reserved >= amount); //  paired with accounts_debit_reserve
    dr->debits_reserved -= amount;
    s_touch (self, slot);
    if (post) {
        dr->debits_posted += amount;
        s_mark_dirty (self, slot);
    }
}

uint32_t
accounts_credit_reserve (accounts_t *self, const rl_transfer_t *t)
{
    assert (self && t);
    size_t slot = 0;
    rl_account_t *cr = s_find (self, t->credit_account_id, &slot);
    if (!cr) {
        return RL_CREDIT_ACCOUNT_NOT_FOUND;
    }
    if (cr->ledger != t->ledger) {
        return RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER;
    }
    uint32_t result = s_credit_checks (cr, t->amount);
    if (result == RL_OK) {
        cr->credits_reserved += t->amount; //  no overflow: s_credit_checks summed it
        s_touch (self, slot);
    }
    return result;
}

void
accounts_credit_release (accounts_t *self, rl_id_t id, uint64_t amount, bool post)
{
    assert (self);
    size_t slot = 0;
    rl_account_t *cr = s_find (self, id, &slot);
    assert (cr && cr->credits_reserved >= amount); //  paired with accounts_credit_reserve
    cr->credits_reserved -= amount;
    s_touch (self, slot);
    if (post) {
        cr->credits_posted += amount;
        s_mark_dirty (self, slot);
    }
}

int
accounts_credit_restore (accounts_t *self, rl_id_t id, uint64_t amount)
{
    assert (self);
    size_t slot = 0;
    rl_account_t *cr = s_find (self, id, &slot);
    if (!cr) {
        return -1;
    }
    cr->credits_reserved += amount;
    s_touch (self, slot);
    return 0;
}

int
accounts_debit_restore (accounts_t *self, rl_id_t id, uint64_t amount)
{
    assert (self);
    size_t slot = 0;
    rl_account_t *dr = s_find (self, id, &slot);
    if (!dr) {
        return -1;
    }
    dr->debits_reserved += amount;
    s_touch (self, slot);
    return 0;
}

//  Audit, sums, checkpoint ---------------------------------------------------------

bool
accounts_slot (const accounts_t *self, rl_id_t id, size_t *slot_p)
{
    assert (self && slot_p);
    return s_find (self, id, slot_p) != NULL;
}

int
accounts_audit (const accounts_t *self, const uint64_t *debits, const uint64_t *credits, char *err,
                size_t err_size)
{
    assert (self && (self->count == 0 || (debits && credits)));
    for (size_t slot = 0; slot < self->count; slot++) {
        const rl_account_t *a = &self->slots[slot];
        if (a->debits_reserved != debits[slot] || a->credits_reserved != credits[slot]) {
            snprintf (err, err_size,
                      "account %016" PRIx64 "%016" PRIx64 ": reserved %" PRIu64 "/%" PRIu64
                      ", live reservations and prepared records sum to %" PRIu64 "/%" PRIu64,
                      a->id.hi, a->id.lo, a->debits_reserved, a->credits_reserved, debits[slot],
                      credits[slot]);
            return -1;
        }
    }
    return 0;
}

void
accounts_sums (const accounts_t *self, uint32_t ledger_id, uint64_t *debits_posted,
               uint64_t *credits_posted, uint64_t *debits_reserved, uint64_t *credits_reserved)
{
    assert (self && debits_posted && credits_posted && debits_reserved && credits_reserved);
    *debits_posted = *credits_posted = *debits_reserved = *credits_reserved = 0;
    for (size_t slot = 0; slot < self->count; slot++) {
        const rl_account_t *a = &self->slots[slot];
        if (ledger_id == 0 || a->ledger == ledger_id) {
            *debits_posted += a->debits_posted;
            *credits_posted += a->credits_posted;
            *debits_reserved += a->debits_reserved;
            *credits_reserved += a->credits_reserved;
        }
    }
}

size_t
accounts_take_dirty (accounts_t *self, rl_account_t *out, size_t cap)
{
    assert (self && (out || self->dirty_count == 0));
    assert (cap >= self->dirty_count);
    size_t count = self->dirty_count;
    for (size_t i = 0; i < count; i++) {
        uint32_t slot = self->dirty_list[i];
        assert (slot < self->count && self->dirty[slot]);
        out[i] = self->slots[slot];
        self->dirty[slot] = false;
    }
    self->dirty_count = 0;
    return count;
}

size_t
accounts_dirty_count (const accounts_t *self)
{
    assert (self);
    return self->dirty_count;
}

//  Change tracking (migrate.c) -------------------------------------------------

int
accounts_track_changes (accounts_t *self, bool on)
{
    assert (self);
    if (!on) {
        free (self->changed);
        self->changed = NULL;
        self->change_gen = 0;
        return 0;
    }
    if (self->changed) {
        return 0;
    }
    self->changed = calloc (self->cap ? self->cap : 1, sizeof (*self->changed));
    if (!self->changed) {
        return -1;
    }
    self->change_gen = 1; //  every slot is at 0: changed before tracking began
    return 0;
}

uint32_t
accounts_change_mark (accounts_t *self)
{
    assert (self && self->changed);
    assert (self->change_gen < UINT32_MAX); //  a mark per copy round: never reached
    return ++self->change_gen;
}

size_t
accounts_changed_since (const accounts_t *self, uint32_t mark,
                        bool (*fn) (void *arg, const rl_account_t *account), void *arg)
{
    assert (self && self->changed && fn);
    size_t called = 0;
    for (size_t slot = 0; slot < self->count; slot++) {
        if (self->changed[slot] >= mark && self->slots[slot].timestamp != 0) { //  not a hole
            called++;
            if (!fn (arg, &self->slots[slot])) {
                break;
            }
        }
    }
    return called;
}
