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

    CROSS-SHARD (docs/payments.md, "Pending transfers across shards"). A pending transfer P
    whose credit account lives on another shard is made by a two-phase
    attempt (coordinator.c, participant.c); once committed, each shard
    keeps its side here: the debit shard D an entry of side DEBIT (key: P's
    id, debits_pending), the credit shard C one of side CREDIT (key: P's id
    and debit account, credits_pending), so that whichever shard owns the
    debit account later can name it. Only D decides: a post, a void or an
    expiry of P is a two-phase attempt of D's, and while one is live D's
    entry is *claimed* (memory only: live attempts die with the process),
    so that one attempt per pending transfer runs at a time: a second post
    or void meanwhile is answered in_progress. C's entry is claimed by its
    prepared record of the attempt (rebuilt from the records at start).
    D never expires its side alone: an entry past its expiry becomes *due*
    and the ledger runs its expiry as a void attempt (pending_due_take),
    again after an abort (PENDING_EXPIRY_RETRY_NS later, doubling), until it
    commits; under the first of its ids (pending_expiry_id) that no other
    transfer holds. A claim taken before the entry fell due is a post's or
    a void's, and keeps answering in_progress after (claim_expiry).

    CHAINS ACROSS SHARDS (coordinator.c, "Groups"). A post or void of a
    same-shard pending transfer (side BOTH) in a linked chain that needs
    other shards is held until its chain is decided: it claims the entry
    as a two-phase attempt does, so that another post or void meanwhile is
    in_progress and the tick skips it (its expiry waits: the held post
    commits first, or, aborted, the next tick expires it). A pending
    transfer such a chain creates is added at the decision; from its begin
    its room is promised (pending_promise), as a two-phase attempt's is.

    MIGRATION (docs/rebalance.md, "Pending transfers move"). The entries
    move with their accounts: the final round of a migration sends every
    entry of the table that names an account of the arc (migrate.c); the
    target puts them here with pending_install at its handover (the side
    whose account it receives), and the source takes them out with
    pending_hand_over at its own: an entry whose held accounts all leave
    goes, a same-shard one of which one account leaves keeps the side
    that stays (s_split), which is the cross-shard shape above. A
    cross-shard one whose two accounts end here keeps two entries, a debit
    and a credit side: the ledger resolves both at once
    (pending_apply_here). From the freeze to the handover the source's
    entries of the arc must stay as the final round read them: a hold
    (pending_set_hold, the ledger's frozen accounts) keeps the tick from
    expiring them, in recovery too.

    THE INDEX BY ACCOUNT. The table is keyed by id, and it keeps the
    states of resolved transfers for ever, so finding the entries of one
    arc in it means reading all of it: a migration's final round did, while
    the arc was frozen, and a shard with a long past of pending transfers
    froze every step for as long. So every entry is also written, whole, in
    the `pending_arc` family, under the ring point of each account it names
    on a side held here (a side BOTH entry twice, a side entry once), in
    the batch that writes the entry: s_index on every put of a state (the
    same keys again, with the new state), its keys deleted with the entry,
    and the credit's key of an entry that keeps only its debit side
    (s_split). The final round reads the arc's range of points alone, in
    order, and needs no read of the table (migrate.c): a read by key of
    each entry cost more than the whole table's scan when the arc held a
    large part of it. An entry's keys never change with its state (its
    accounts and its side do not), so a key and its entry agree; the keys
    of an entry whose account left stay with its resolved state, like its
    record, and are passed over (no account of the arc is held here). One
    exception: a migration's entry of an id that another debit account
    reused, installed over a resolved entry of that id, leaves the older
    entry's keys as they were (docs/rebalance.md, "Limits").
    A store that an older shard wrote has entries without keys: the first
    pending_open builds them, in batches of their own, and then writes
    PENDING_META_ARC_INDEX, which later opens find. The keys are idempotent,
    so a crash during the build only builds again.

    INVARIANTS
    1. A transfer is in the live table exactly when its stored state is
       pending (or will be, once the batch commits).
    2. For every account: debits_pending (credits_pending) == the sum of
       the live transfers that debit (credit) it (pending_audit).
    3. A state leaves pending once, to posted, voided or expired, and never
       changes again.
    4. Every live transfer with a timeout has a heap entry with its expiry,
       or (side DEBIT) is due; side CREDIT never expires here. A held one
       (pending_set_hold) keeps its heap entry and expires after the hold.
    5. At most one attempt claims an entry; a claimed entry is never
       resolved nor expired but by the claim's own attempt.

    6. Once PENDING_META_ARC_INDEX is written, every entry of the table has
       its index keys (one per account it names on a side held here).

    LIMITS: RL_SHARD_PENDING_MAX live transfers, counting those a live
    two-phase attempt or a held chain member will add when it commits
    (pending_promise: a commit always finds room); more: busy;
    RL_SHARD_PENDING_EXPIRE_PER_TICK expiries per tick (recovery expires
    every overdue one at once).
*/
#include "pending.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"
#include "idmap.h"
#include "imported.h"
#include "journal.h"
#include "log.h"
#include "ring.h"
#include "rl_limits.h"

#define S_NS_PER_S   1000000000ull
#define S_INITIAL    1024 //  first size of the live table and the heap
#define S_HEAP_SLACK 1024 //  stale heap entries tolerated beyond the live count
#define S_HELD_MAX   64   //  held entries (pending_set_hold) skipped by one tick

typedef struct {
    rl_transfer_t t; //  the pending transfer as stored (timestamp set)
    accounts_pair_t pair;
    uint64_t expires_at; //  0: never
    uint64_t retry_at;   //  side DEBIT, due: no expiry attempt before (clock, ns)
    uint8_t side;        //  pending_side_t: which accounts are here
    bool claimed;        //  a two-phase attempt resolves it (invariant 5)
    bool claim_expiry;   //  side DEBIT: the claim is its expiry's (taken while due)
    bool due;            //  side DEBIT: past its expiry, its void attempt to run
    uint8_t tries;       //  side DEBIT, due: expiry attempts that ended without a commit
} s_live_t;

//  The key of a credit side in memory: a digest of (pending id, debit
//  account), exact enough (BLAKE2b, 128 bits) and checked against the
//  entry on every lookup.
#define S_CREDIT_PERSONAL      "ringledger.pcr.1"
#define S_EXPIRY_PERSONAL      "ringledger.exp.1"
#define S_EXPIRY_NEXT_PERSONAL "ringledger.exp.n" //  the next expiry id from the one before
_Static_assert(sizeof (S_EXPIRY_NEXT_PERSONAL) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
               "a 16-byte personalisation");
_Static_assert(sizeof (S_CREDIT_PERSONAL) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
               "a 16-byte personalisation");
_Static_assert(sizeof (S_EXPIRY_PERSONAL) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
               "a 16-byte personalisation");

//  A stored credit side's key: the pending id, then the debit account.
#define S_CREDIT_KEY_SIZE (2 * RL_ID_SIZE)

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
    size_t promised; //  pending transfers decided later whose room is kept (pending_promise)
    idmap_t *ids;    //  id -> index in live
    s_heap_t *heap;
    size_t heap_count;
    size_t heap_cap;
    s_heap_t *skipped; //  pending_tick: the entries it passes over, back after the pass
    size_t skipped_cap;
    idmap_t *changed;        //  id -> state, changed since the last group commit
    idmap_t *credit_ids;     //  side CREDIT: digest (s_credit_key) -> index in live
    idmap_t *credit_changed; //  side CREDIT: digest -> state, changed since the commit
    rl_id_t *due;            //  side DEBIT entries due (stale ones skipped)
    size_t due_count;
    size_t due_cap;
    //  A linked chain in progress (pending_chain_begin): how to take back
    //  what its members did to these tables (the ledger restores the
    //  accounts and the batch).
    bool logging;
    //  Accounts whose transfers must not expire now (pending_set_hold): a
    //  migration's frozen arc, whose final round must find them as they were.
    pending_held_fn *held;
    void *held_arg;
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
    self->credit_ids = idmap_new (S_INITIAL);
    self->credit_changed = idmap_new (S_INITIAL);
    if (!self->ids || !self->changed || !self->credit_ids || !self->credit_changed) {
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
    idmap_destroy (&self->credit_ids);
    idmap_destroy (&self->credit_changed);
    free (self->due);
    free (self->live);
    free (self->heap);
    free (self->skipped);
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

//  BLAKE2b of (a, b) with a personalisation, as an id (never zero: a digest
//  of 0 is taken as 1, which only costs a collision checked on lookup).
static rl_id_t
s_digest (rl_id_t a, rl_id_t b, const char *personal)
{
    uint8_t in[2 * RL_ID_SIZE];
    uint8_t out[RL_ID_SIZE];
    codec_encode_id (a, in);
    codec_encode_id (b, in + RL_ID_SIZE);
    int rc = crypto_generichash_blake2b_salt_personal (out, sizeof out, in, sizeof in, NULL, 0,
                                                       NULL, (const unsigned char *) personal);
    assert (rc == 0);
    (void) rc;
    rl_id_t id = codec_decode_id (out);
    return rl_id_is_zero (id) ? (rl_id_t){.lo = 1} : id;
}

static rl_id_t
s_credit_key (rl_id_t pending_id, rl_id_t debit_account_id)
{
    return s_digest (pending_id, debit_account_id, S_CREDIT_PERSONAL);
}

rl_id_t
pending_live_key (const rl_transfer_t *t, uint8_t side, bool *credit_p)
{
    assert (t && credit_p && side <= PENDING_SIDE_CREDIT);
    *credit_p = side == PENDING_SIDE_CREDIT;
    return *credit_p ? s_credit_key (t->id, t->debit_account_id) : t->id;
}

//  An expiry id is never all ones either (nor 0: s_digest).
static rl_id_t
s_expiry_digest (rl_id_t a, rl_id_t debit_account_id, const char *personal)
{
    rl_id_t id = s_digest (a, debit_account_id, personal);
    return rl_id_is_max (id) ? (rl_id_t){.lo = 2} : id;
}

rl_id_t
pending_expiry_id (rl_id_t pending_id, rl_id_t debit_account_id)
{
    return s_expiry_digest (pending_id, debit_account_id, S_EXPIRY_PERSONAL);
}

rl_id_t
pending_expiry_id_next (rl_id_t expiry_id, rl_id_t debit_account_id)
{
    return s_expiry_digest (expiry_id, debit_account_id, S_EXPIRY_NEXT_PERSONAL);
}

bool
pending_is_expiry_id (rl_id_t id, rl_id_t pending_id, rl_id_t debit_account_id)
{
    rl_id_t candidate = pending_expiry_id (pending_id, debit_account_id);
    for (unsigned k = 0; k < PENDING_EXPIRY_IDS_MAX; k++) {
        if (rl_id_eq (id, candidate)) {
            return true;
        }
        candidate = pending_expiry_id_next (candidate, debit_account_id);
    }
    return false;
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

static uint64_t
s_point (rl_id_t account)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (account, bytes);
    return ring_point_of_id (bytes);
}

void
pending_arc_key (rl_id_t account, const rl_transfer_t *t, bool credit_key, uint8_t *key)
{
    assert (t && key);
    assert (rl_id_eq (account, t->debit_account_id) || rl_id_eq (account, t->credit_account_id));
    codec_put_u64_be (key, s_point (account));
    codec_encode_id (t->id, key + 8);
    codec_encode_id (t->debit_account_id, key + 8 + RL_ID_SIZE);
    key[8 + 2 * RL_ID_SIZE] = credit_key ? 1 : 0;
}

//  The index keys of an entry of `side`: one per account it names on a side
//  held here, the debit account's first. Returns how many (1 or 2).
static size_t
s_index_keys (const rl_transfer_t *t, uint8_t side, uint8_t keys[2][PENDING_ARC_KEY_SIZE])
{
    size_t count = 0;
    if (side != PENDING_SIDE_CREDIT) {
        pending_arc_key (t->debit_account_id, t, false, keys[count++]);
    }
    if (side != PENDING_SIDE_DEBIT) {
        pending_arc_key (t->credit_account_id, t, side == PENDING_SIDE_CREDIT, keys[count++]);
    }
    return count;
}

//  The index keys of an entry of `side` ("THE INDEX BY ACCOUNT"), put with
//  the entry's value (RL_TRANSFER_SIZE bytes, as the `pending` family holds
//  it) or deleted (value NULL), into `batch` (NULL: the turn's).
static void
s_index (pending_t *self, store_batch_t *batch, const rl_transfer_t *t, uint8_t side,
         const uint8_t *value)
{
    bool put = value != NULL;
    uint8_t keys[2][PENDING_ARC_KEY_SIZE];
    size_t count = s_index_keys (t, side, keys);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *key = keys[i];
        if (batch && put) {
            store_batch_put_into (self->store, batch, STORE_CF_PENDING_ARC, key,
                                  PENDING_ARC_KEY_SIZE, value, RL_TRANSFER_SIZE);
        } else if (put) {
            store_batch_put (self->store, STORE_CF_PENDING_ARC, key, PENDING_ARC_KEY_SIZE, value,
                             RL_TRANSFER_SIZE);
        } else {
            assert (!batch);
            store_batch_delete (self->store, STORE_CF_PENDING_ARC, key, PENDING_ARC_KEY_SIZE);
        }
    }
}

static void
s_put_state (pending_t *self, const rl_transfer_t *t, uint8_t side, pending_state_t state)
{
    uint8_t key[S_CREDIT_KEY_SIZE];
    uint8_t value[RL_TRANSFER_SIZE];
    rl_transfer_t record = *t;
    codec_encode_id (t->id, key);
    codec_encode_id (t->debit_account_id, key + RL_ID_SIZE);
    record.reserved = (uint64_t) state | (uint64_t) side << 8;
    codec_encode_transfer (&record, value);
    size_t key_size = side == PENDING_SIDE_CREDIT ? S_CREDIT_KEY_SIZE : RL_ID_SIZE;
    store_batch_put (self->store, STORE_CF_PENDING, key, key_size, value, sizeof (value));
    s_index (self, NULL, t, side, value);
    if (side == PENDING_SIDE_CREDIT) {
        assert (!self->logging); //  a linked chain never reaches another shard
        if (idmap_put (self->credit_changed, s_credit_key (t->id, t->debit_account_id),
                       (uint64_t) state)
            != 0) {
            rl_error ("pending: out of memory for the states of this turn");
            abort ();
        }
        return;
    }
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
    return (int) (record.reserved & 0xff);
}

int
pending_credit_state (pending_t *self, rl_id_t pending_id, rl_id_t debit_account_id)
{
    assert (self);
    rl_id_t key = s_credit_key (pending_id, debit_account_id);
    uint64_t index = 0;
    if (idmap_get (self->credit_ids, key, &index)) {
        assert (index < self->live_count);
        const s_live_t *e = &self->live[index];
        if (rl_id_eq (e->t.id, pending_id) && rl_id_eq (e->t.debit_account_id, debit_account_id)) {
            return PENDING_STATE_PENDING;
        }
        return -1; //  a digest collision: not answerable (never seen: 2^-128)
    }
    uint64_t state = 0;
    if (idmap_get (self->credit_changed, key, &state)) {
        return (int) state;
    }
    uint8_t bytes[S_CREDIT_KEY_SIZE];
    uint8_t value[RL_TRANSFER_SIZE];
    size_t size = 0;
    codec_encode_id (pending_id, bytes);
    codec_encode_id (debit_account_id, bytes + RL_ID_SIZE);
    int found = store_get (self->store, STORE_CF_PENDING, bytes, sizeof (bytes), value,
                           sizeof (value), &size);
    if (found < 0 || (found == 1 && size != RL_TRANSFER_SIZE)) {
        return -1;
    }
    if (found == 0) {
        return PENDING_STATE_NONE;
    }
    rl_transfer_t record;
    codec_decode_transfer (value, &record);
    return (int) (record.reserved & 0xff);
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
s_live_insert (pending_t *self, const rl_transfer_t *t, const accounts_pair_t *pair, uint8_t side)
{
    if (!s_live_room (self)) {
        return -1;
    }
    s_live_t *e = &self->live[self->live_count];
    *e = (s_live_t){.t = *t, .pair = *pair, .side = side};
    //  The credit side never expires here: the debit shard decides (invariant 4).
    e->expires_at = side == PENDING_SIDE_CREDIT ? 0 : s_expires_at (t);
    e->t.reserved = 0;
    bool credit = side == PENDING_SIDE_CREDIT;
    idmap_t *map = credit ? self->credit_ids : self->ids;
    rl_id_t key = credit ? s_credit_key (t->id, t->debit_account_id) : t->id;
    if (idmap_get (map, key, NULL)) {
        return -1; //  a digest collision (credit side): never seen, refused all the same
    }
    if (idmap_put (map, key, self->live_count) != 0) {
        return -1;
    }
    if (e->expires_at != 0 && s_heap_push (self, e->expires_at, t->id) != 0) {
        idmap_remove (map, key);
        return -1;
    }
    if (accounts_pending_move (self->accounts, pair, t->amount, 0, 0) != 0) {
        idmap_remove (map, key); //  a stale heap entry at most
        return -1;
    }
    self->live_count++;
    s_undo_push (self, &(s_undo_t){.kind = S_UNDO_INSERTED, .live.t.id = t->id});
    return 0;
}

//  Takes the entry at index out of the table (swap with the last), with
//  no change to the accounts.
//  The map and key of a live entry.
static idmap_t *
s_live_key (pending_t *self, const s_live_t *e, rl_id_t *key_p)
{
    if (e->side == PENDING_SIDE_CREDIT) {
        *key_p = s_credit_key (e->t.id, e->t.debit_account_id);
        return self->credit_ids;
    }
    *key_p = e->t.id;
    return self->ids;
}

static void
s_live_drop (pending_t *self, size_t index)
{
    assert (index < self->live_count);
    rl_id_t key;
    idmap_t *map = s_live_key (self, &self->live[index], &key);
    bool removed = idmap_remove (map, key);
    assert (removed);
    (void) removed;
    size_t last = --self->live_count;
    if (index != last) {
        self->live[index] = self->live[last];
        map = s_live_key (self, &self->live[index], &key);
        int rc = idmap_put (map, key, index); //  replaces: no allocation
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
    assert (e->side == PENDING_SIDE_BOTH && !e->claimed); //  the others expire by two-phase
    s_put_state (self, &e->t, e->side, PENDING_STATE_EXPIRED);
    s_live_remove (self, index, 0);
}

//  A side DEBIT entry past its expiry: due for its void attempt.
static void
s_make_due (pending_t *self, size_t index)
{
    s_live_t *e = &self->live[index];
    assert (e->side == PENDING_SIDE_DEBIT);
    if (e->due) {
        return;
    }
    if (self->due_count == self->due_cap) {
        size_t cap = self->due_cap ? self->due_cap * 2 : 64;
        rl_id_t *due = realloc (self->due, cap * sizeof (*due));
        if (!due) {
            rl_error ("pending: out of memory for the expiries due");
            abort (); //  an expiry would be forgotten until the next start
        }
        self->due = due;
        self->due_cap = cap;
    }
    self->due[self->due_count++] = e->t.id;
    e->due = true;
    rl_info ("pending: transfer %016" PRIx64 "%016" PRIx64 " (credit on another shard) is due"
             " to expire (at %" PRIu64 "): a void attempt releases it",
             e->t.id.hi, e->t.id.lo, e->expires_at);
}

//  Open ---------------------------------------------------------------------------

#define S_INDEX_BUILD_BATCH 65536 //  entries indexed per batch of the build

//  A store an older shard wrote has entries without index keys: each gets
//  them, in batches of its own, then the marker ("THE INDEX BY ACCOUNT").
//  Nothing to do once the marker is there. 0, or -1 with a message in err.
static int
s_index_build (pending_t *self, char *err, size_t err_size)
{
    const char *marker = PENDING_META_ARC_INDEX;
    uint8_t one = 1;
    size_t size = 0;
    int found = store_get (self->store, STORE_CF_META, marker, strlen (marker), &one, 1, &size);
    if (found == 1) {
        return 0;
    }
    if (found < 0) {
        snprintf (err, err_size, "cannot read %s: %s", marker, store_error (self->store));
        return -1;
    }
    store_batch_t *batch = store_batch_new ();
    store_iter_t *it = batch ? store_iter_new (self->store, STORE_CF_PENDING) : NULL;
    if (!it) {
        store_batch_destroy (&batch);
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t count = 0;
    for (store_iter_seek_first (it); rc == 0 && store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        rl_transfer_t t;
        memset (&t, 0, sizeof (t));
        if (value_size == RL_TRANSFER_SIZE) {
            codec_decode_transfer (value, &t);
        }
        uint8_t side = value_size == RL_TRANSFER_SIZE ? (uint8_t) (t.reserved >> 8) : 0xff;
        if ((key_size != RL_ID_SIZE && key_size != S_CREDIT_KEY_SIZE) || side > PENDING_SIDE_CREDIT
            || (side == PENDING_SIDE_CREDIT) != (key_size == S_CREDIT_KEY_SIZE)) {
            snprintf (err, err_size, "corrupt pending record (key %zu, value %zu bytes)", key_size,
                      value_size);
            rc = -1;
            break;
        }
        s_index (self, batch, &t, side, value);
        if (++count % S_INDEX_BUILD_BATCH == 0 && store_batch_commit (self->store, batch) != 0) {
            snprintf (err, err_size, "cannot write the index of the pending table: %s",
                      store_error (self->store));
            rc = -1;
        }
    }
    if (rc == 0 && store_iter_error (it, err, err_size) != 0) {
        rc = -1;
    }
    if (rc == 0) {
        store_batch_put_into (self->store, batch, STORE_CF_META, marker, strlen (marker), &one, 1);
        if (store_batch_commit (self->store, batch) != 0) {
            snprintf (err, err_size, "cannot write the index of the pending table: %s",
                      store_error (self->store));
            rc = -1;
        }
    }
    store_iter_destroy (&it);
    store_batch_destroy (&batch);
    if (rc == 0 && count > 0) {
        rl_info ("pending: %zu entries of the pending table indexed by account", count);
    }
    return rc;
}

int
pending_open (pending_t *self, char *err, size_t err_size)
{
    assert (self && self->live_count == 0 && self->promised == 0);
    if (s_index_build (self, err, err_size) != 0) {
        return -1;
    }
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
        if ((key_size != RL_ID_SIZE && key_size != S_CREDIT_KEY_SIZE)
            || value_size != RL_TRANSFER_SIZE) {
            snprintf (err, err_size, "corrupt pending record (key %zu, value %zu bytes)", key_size,
                      value_size);
            rc = -1;
            break;
        }
        rl_transfer_t t;
        codec_decode_transfer (value, &t);
        uint8_t side = (uint8_t) (t.reserved >> 8);
        if ((t.reserved & 0xff) != PENDING_STATE_PENDING) {
            continue; //  resolved: read on demand
        }
        if ((side == PENDING_SIDE_CREDIT) != (key_size == S_CREDIT_KEY_SIZE)
            || side > PENDING_SIDE_CREDIT) {
            snprintf (err, err_size, "corrupt pending record (side %u, key %zu bytes)", side,
                      key_size);
            rc = -1;
            break;
        }
        t.reserved = 0;
        accounts_pair_t pair = {ACCOUNTS_SLOT_NONE, ACCOUNTS_SLOT_NONE};
        size_t dr = 0, cr = 0;
        bool held = side == PENDING_SIDE_BOTH ? accounts_pair (self->accounts, t.debit_account_id,
                                                               t.credit_account_id, &pair)
                    : side == PENDING_SIDE_DEBIT
                        ? accounts_slot (self->accounts, t.debit_account_id, &dr)
                        : accounts_slot (self->accounts, t.credit_account_id, &cr);
        if (held && side == PENDING_SIDE_DEBIT) {
            pair.debit_slot = (uint32_t) dr;
        } else if (held && side == PENDING_SIDE_CREDIT) {
            pair.credit_slot = (uint32_t) cr;
        }
        if (!held || s_live_insert (self, &t, &pair, side) != 0) {
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
    return 0;
}

size_t
pending_recover (pending_t *self, uint64_t clock_ns)
{
    assert (self);
    //  Whatever expired while the shard was down expires now, all of it.
    size_t expired = pending_tick (self, clock_ns, SIZE_MAX);
    rl_info ("pending: %zu transfers pending, %zu expired at recovery", self->live_count, expired);
    return expired;
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
    return self->live_count + self->promised < RL_SHARD_PENDING_MAX && s_live_room (self);
}

size_t
pending_promised_count (const pending_t *self)
{
    assert (self);
    return self->promised;
}

void
pending_promise (pending_t *self, bool take)
{
    assert (self);
    assert (take || self->promised > 0);
    self->promised = take ? self->promised + 1 : self->promised - 1;
    assert (self->live_count + self->promised <= RL_SHARD_PENDING_MAX);
}

void
pending_add (pending_t *self, const rl_transfer_t *record, const accounts_pair_t *pair)
{
    assert (self && record && pair);
    assert ((record->flags & RL_TRANSFER_PENDING) && record->timestamp != 0);
    assert (!idmap_get (self->ids, record->id, NULL));
    int rc = s_live_insert (self, record, pair, PENDING_SIDE_BOTH);
    //  pending_room made the room; the accounts check summed the amounts.
    assert (rc == 0);
    (void) rc;
    s_put_state (self, record, PENDING_SIDE_BOTH, PENDING_STATE_PENDING);
}

int
pending_add_side (pending_t *self, const rl_transfer_t *record, pending_side_t side)
{
    assert (self && record && (side == PENDING_SIDE_DEBIT || side == PENDING_SIDE_CREDIT));
    assert ((record->flags & RL_TRANSFER_PENDING) && record->timestamp != 0);
    accounts_pair_t pair = {ACCOUNTS_SLOT_NONE, ACCOUNTS_SLOT_NONE};
    size_t slot = 0;
    rl_id_t account = side == PENDING_SIDE_DEBIT ? record->debit_account_id
                                                 : record->credit_account_id;
    if (!accounts_slot (self->accounts, account, &slot)) {
        return -1;
    }
    if (side == PENDING_SIDE_DEBIT) {
        pair.debit_slot = (uint32_t) slot;
    } else {
        pair.credit_slot = (uint32_t) slot;
    }
    rl_transfer_t t = *record;
    t.reserved = 0;
    if (s_live_insert (self, &t, &pair, (uint8_t) side) != 0) {
        return -1;
    }
    s_put_state (self, &t, (uint8_t) side, PENDING_STATE_PENDING);
    return 0;
}

//  Post, void -----------------------------------------------------------------------

//  The rules of a post or void t of p that its fields tell, in their
//  order (docs/payments.md): RL_OK and *amount_p the amount it resolves.
static uint32_t
s_check_fields (const rl_transfer_t *t, const rl_transfer_t *p, uint64_t *amount_p)
{
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
    *amount_p = amount;
    return RL_OK;
}

//  Would posting amount overflow the posted sums of the pair's accounts
//  (its credit slot ACCOUNTS_SLOT_NONE: checked on its own shard)?
static uint32_t
s_posted_overflow (pending_t *self, const accounts_pair_t *pair, uint64_t amount)
{
    uint64_t sum = 0;
    if (__builtin_add_overflow (accounts_at (self->accounts, pair->debit_slot)->debits_posted,
                                amount, &sum)) {
        return RL_OVERFLOWS_DEBITS_POSTED;
    }
    if (pair->credit_slot != ACCOUNTS_SLOT_NONE
        && __builtin_add_overflow (accounts_at (self->accounts, pair->credit_slot)->credits_posted,
                                   amount, &sum)) {
        return RL_OVERFLOWS_CREDITS_POSTED;
    }
    return RL_OK;
}

//  What a post or void resolved of p inherits from it.
static void
s_inherit (const rl_transfer_t *t, const rl_transfer_t *p, uint64_t amount, rl_transfer_t *resolved)
{
    *resolved = *t;
    resolved->credit_account_id = p->credit_account_id;
    resolved->ledger = p->ledger;
    resolved->code = p->code;
    resolved->amount = amount;
}

uint32_t
pending_check (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p, uint64_t ts,
               rl_transfer_t *resolved)
{
    assert (self && t && resolved);
    assert (t->flags & PENDING_RESOLVE_FLAGS);
    bool post = (t->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    uint64_t amount = 0;
    uint32_t result = s_check_fields (t, p, &amount);
    if (result != RL_OK) {
        return result;
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
            //  Its state is not here: a record a migration brought without
            //  it (a store from before states moved, or a live entry of the
            //  id held its key here: docs/rebalance.md, "Pending transfers move").
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
    if (e->claimed && !e->claim_expiry) {
        //  Side DEBIT: a post or void of it is a live two-phase attempt
        //  (one at a time, invariant 5): not decided, not burned, even
        //  once the entry fell due meanwhile (a post that commits wins).
        return RL_IN_PROGRESS;
    }
    //  Due (side DEBIT: its expiry's void attempt may be live) or past its
    //  expiry: it can never be posted.
    if (e->due || (e->expires_at != 0 && e->expires_at <= ts)) {
        if (e->side == PENDING_SIDE_DEBIT) {
            s_make_due (self, (size_t) index); //  its void attempt releases both sides
        } else {
            s_expire (self, (size_t) index, ts); //  its time came before this record's
        }
        return RL_PENDING_TRANSFER_EXPIRED;
    }
    //  The credit side of a cross-shard one is checked there (participant).
    result = post ? s_posted_overflow (self, &e->pair, amount) : RL_OK;
    if (result == RL_OK) {
        s_inherit (t, p, amount, resolved);
    }
    return result;
}

uint32_t
pending_check_member (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p,
                      rl_transfer_t *resolved)
{
    assert (self && t && p && resolved && (t->flags & PENDING_RESOLVE_FLAGS));
    uint64_t amount = 0;
    uint32_t result = s_check_fields (t, p, &amount);
    if (result == RL_OK && (t->flags & RL_TRANSFER_POST_PENDING_TRANSFER)) {
        //  p's member reserved its debit here (and its credit, when that
        //  is here too: else its credit shard checks that side).
        size_t debit_slot = 0, credit_slot = 0;
        bool found = accounts_slot (self->accounts, p->debit_account_id, &debit_slot);
        assert (found);
        (void) found;
        accounts_pair_t pair = {.debit_slot = (uint32_t) debit_slot,
                                .credit_slot = ACCOUNTS_SLOT_NONE};
        if (accounts_slot (self->accounts, p->credit_account_id, &credit_slot)) {
            pair.credit_slot = (uint32_t) credit_slot;
        }
        result = s_posted_overflow (self, &pair, amount);
    }
    if (result == RL_OK) {
        s_inherit (t, p, amount, resolved);
    }
    return result;
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
    assert (e->side == PENDING_SIDE_BOTH || e->claimed); //  side DEBIT: by its attempt
    pending_state_t state = post ? PENDING_STATE_POSTED : PENDING_STATE_VOIDED;
    if (!post && pending_is_expiry_id (resolved->id, e->t.id, e->t.debit_account_id)) {
        state = PENDING_STATE_EXPIRED; //  the void attempt of its expiry
    }
    s_put_state (self, &e->t, e->side, state);
    s_live_remove (self, (size_t) index, post ? resolved->amount : 0);
}

int
pending_side (pending_t *self, rl_id_t pending_id)
{
    assert (self);
    uint64_t index = 0;
    return idmap_get (self->ids, pending_id, &index) ? (int) self->live[index].side : -1;
}

bool
pending_is_debit_side (pending_t *self, rl_id_t pending_id)
{
    assert (self);
    uint64_t index = 0;
    return idmap_get (self->ids, pending_id, &index)
           && self->live[index].side == PENDING_SIDE_DEBIT;
}

void
pending_claim (pending_t *self, rl_id_t pending_id, bool claimed, uint64_t clock_ns)
{
    assert (self);
    uint64_t index = 0;
    bool live = idmap_get (self->ids, pending_id, &index);
    assert (live); //  a claim is taken of a live entry, and it stays live while claimed
    (void) live;
    s_live_t *e = &self->live[index];
    assert (e->side != PENDING_SIDE_CREDIT && e->claimed != claimed);
    assert (e->side == PENDING_SIDE_DEBIT || !e->due);
    e->claimed = claimed;
    e->claim_expiry = claimed && e->due; //  a post or void of a due entry is refused expired
    if (!claimed && e->due) {
        //  The next expiry attempt, later: 1 s, doubling up to 64 s, so that
        //  expiries towards a shard that is away add few entries to the log.
        unsigned shift = e->tries < PENDING_EXPIRY_BACKOFF_SHIFT_MAX
                             ? e->tries
                             : PENDING_EXPIRY_BACKOFF_SHIFT_MAX;
        e->retry_at = clock_ns + (PENDING_EXPIRY_RETRY_NS << shift);
        e->tries = e->tries < UINT8_MAX ? (uint8_t) (e->tries + 1) : UINT8_MAX;
    }
}

size_t
pending_due_take (pending_t *self, uint64_t clock_ns, rl_transfer_t *expiries, size_t max)
{
    assert (self && (max == 0 || expiries));
    //  One pass over the due list: the stale ids go, at most max are taken.
    size_t kept = 0, taken = 0;
    for (size_t i = 0; i < self->due_count; i++) {
        rl_id_t id = self->due[i];
        uint64_t index = 0;
        if (!idmap_get (self->ids, id, &index) || !self->live[index].due) {
            continue; //  resolved since: stale
        }
        self->due[kept++] = id;
        const s_live_t *e = &self->live[index];
        if (taken == max || e->claimed || e->retry_at > clock_ns) {
            continue;
        }
        //  The expiry, as a void of it all (its record: docs/payments.md).
        expiries[taken++] = (rl_transfer_t){
            .id = pending_expiry_id (e->t.id, e->t.debit_account_id),
            .debit_account_id = e->t.debit_account_id,
            .credit_account_id = e->t.credit_account_id,
            .amount = e->t.amount,
            .pending_id = e->t.id,
            .ledger = e->t.ledger,
            .code = e->t.code,
            .flags = RL_TRANSFER_VOID_PENDING_TRANSFER,
        };
    }
    self->due_count = kept;
    assert (taken <= max && kept <= self->live_count);
    return taken;
}

//  Credit side (participant) -----------------------------------------------------------

//  The live credit side of (pending id, debit account), or NULL.
static s_live_t *
s_credit_live (pending_t *self, rl_id_t pending_id, rl_id_t debit_account_id)
{
    uint64_t index = 0;
    if (!idmap_get (self->credit_ids, s_credit_key (pending_id, debit_account_id), &index)) {
        return NULL;
    }
    assert (index < self->live_count);
    s_live_t *e = &self->live[index];
    bool same = rl_id_eq (e->t.id, pending_id)
                && rl_id_eq (e->t.debit_account_id, debit_account_id);
    return same ? e : NULL;
}

//  The rules of a post or void t (resolved by the debit shard: pending_check
//  filled in the pending transfer's fields) against the credit side p it
//  resolves, whose credit account is `credit`: its fields must match.
static uint32_t
s_credit_match (const rl_transfer_t *t, const rl_transfer_t *p, const rl_account_t *credit)
{
    bool post = (t->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    if (!rl_id_eq (t->credit_account_id, p->credit_account_id)) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID;
    }
    if (t->ledger != p->ledger) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER;
    }
    if (t->code != p->code) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_CODE;
    }
    if (t->amount > p->amount) {
        return RL_EXCEEDS_PENDING_TRANSFER_AMOUNT;
    }
    if (!post && t->amount != p->amount) {
        return RL_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT;
    }
    uint64_t sum = 0;
    if (post && __builtin_add_overflow (credit->credits_posted, t->amount, &sum)) {
        return RL_OVERFLOWS_CREDITS_POSTED;
    }
    return RL_OK;
}

uint32_t
pending_credit_check (pending_t *self, const rl_transfer_t *t)
{
    assert (self && t && (t->flags & PENDING_RESOLVE_FLAGS));
    int state = pending_credit_state (self, t->pending_id, t->debit_account_id);
    uint64_t both = 0;
    switch (state) {
        case PENDING_STATE_PENDING:
            break;
        case PENDING_STATE_NONE:
            if (idmap_get (self->ids, t->pending_id, &both)
                && self->live[both].side == PENDING_SIDE_BOTH
                && rl_id_eq (self->live[both].t.debit_account_id, t->debit_account_id)) {
                //  Still one entry of both sides: a migration gave its debit
                //  account to another shard, and this shard's handover, which
                //  keeps the credit side here (pending_hand_over), has not run
                //  yet. Not decided: retry (the coordinator aborts, unburned).
                return RL_FROZEN;
            }
            return RL_PENDING_TRANSFER_NOT_FOUND;
        case PENDING_STATE_POSTED:
            return RL_PENDING_TRANSFER_ALREADY_POSTED;
        case PENDING_STATE_VOIDED:
            return RL_PENDING_TRANSFER_ALREADY_VOIDED;
        case PENDING_STATE_EXPIRED:
            return RL_PENDING_TRANSFER_EXPIRED;
        default:
            return RL_STORAGE_ERROR;
    }
    s_live_t *e = s_credit_live (self, t->pending_id, t->debit_account_id);
    assert (e); //  invariant 1
    if (e->claimed) {
        return RL_IN_PROGRESS; //  another attempt's prepared record holds it
    }
    return s_credit_match (t, &e->t, accounts_at (self->accounts, e->pair.credit_slot));
}

uint32_t
pending_credit_check_leg (pending_t *self, const rl_transfer_t *t, const rl_transfer_t *p)
{
    assert (self && t && p && (t->flags & PENDING_RESOLVE_FLAGS)
            && (p->flags & RL_TRANSFER_PENDING));
    assert (rl_id_eq (t->pending_id, p->id) && rl_id_eq (t->debit_account_id, p->debit_account_id));
    const rl_account_t *credit = accounts_get (self->accounts, p->credit_account_id);
    if (!credit) {
        return RL_PENDING_TRANSFER_NOT_FOUND; //  its credit leg names an account not here
    }
    return s_credit_match (t, p, credit);
}

int
pending_credit_claim (pending_t *self, const rl_transfer_t *t, bool claimed)
{
    assert (self && t);
    s_live_t *e = s_credit_live (self, t->pending_id, t->debit_account_id);
    if (!e || e->claimed == claimed) {
        return -1;
    }
    e->claimed = claimed;
    return 0;
}

uint32_t
pending_credit_resolve (pending_t *self, const rl_transfer_t *t, rl_transfer_t *resolved)
{
    assert (self && t && resolved && (t->flags & PENDING_RESOLVE_FLAGS));
    const s_live_t *e = s_credit_live (self, t->pending_id, t->debit_account_id);
    if (!e) {
        return pending_credit_check (self, t); //  its state's code (resolved, or none)
    }
    uint64_t amount = 0;
    uint32_t result = s_check_fields (t, &e->t, &amount);
    if (result != RL_OK) {
        return result;
    }
    s_inherit (t, &e->t, amount, resolved);
    return pending_credit_check (self, resolved);
}

int
pending_reclaim (pending_t *self, const rl_transfer_t *t, uint8_t side)
{
    assert (self && t && (t->flags & PENDING_RESOLVE_FLAGS));
    assert (side == PENDING_SIDE_BOTH || side == PENDING_SIDE_DEBIT);
    uint64_t index = 0;
    if (!idmap_get (self->ids, t->pending_id, &index)) {
        return -1;
    }
    s_live_t *e = &self->live[index];
    uint64_t amount = 0; //  t is resolved: every field it names is P's
    if (e->side != side || e->claimed || s_check_fields (t, &e->t, &amount) != RL_OK
        || amount != t->amount) {
        return -1;
    }
    //  A post's claim, not an expiry's, even on a due entry: a post that
    //  commits wins (pending_check answers others in_progress meanwhile).
    e->claimed = true;
    e->claim_expiry = false;
    return 0;
}

void
pending_credit_apply (pending_t *self, const rl_transfer_t *t)
{
    assert (self && t && (t->flags & PENDING_RESOLVE_FLAGS));
    s_live_t *e = s_credit_live (self, t->pending_id, t->debit_account_id);
    assert (e && e->claimed && t->amount <= e->t.amount); //  its prepared record claimed it
    bool post = (t->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    pending_state_t state = post ? PENDING_STATE_POSTED : PENDING_STATE_VOIDED;
    if (!post && pending_is_expiry_id (t->id, e->t.id, e->t.debit_account_id)) {
        state = PENDING_STATE_EXPIRED;
    }
    s_put_state (self, &e->t, PENDING_SIDE_CREDIT, state);
    s_live_remove (self, (size_t) (e - self->live), post ? t->amount : 0);
}

//  Expiry ----------------------------------------------------------------------------

//  Does the hold (pending_set_hold) keep this live entry as it is?
static bool
s_held (const pending_t *self, const s_live_t *e)
{
    if (!self->held) {
        return false;
    }
    return (e->side != PENDING_SIDE_CREDIT && self->held (self->held_arg, e->t.debit_account_id))
           || (e->side != PENDING_SIDE_DEBIT
               && self->held (self->held_arg, e->t.credit_account_id));
}

void
pending_set_hold (pending_t *self, pending_held_fn *held, void *arg)
{
    assert (self);
    self->held = held;
    self->held_arg = arg;
}

size_t
pending_tick (pending_t *self, uint64_t clock_ns, size_t max)
{
    assert (self);
    size_t expired = 0;
    //  Entries held (a frozen arc) go back into the heap after the pass, so
    //  they come up again at the next tick; at most S_HELD_MAX are skipped
    //  a tick (beyond, the pass stops: the others wait for the thaw too).
    //  Side BOTH claimed: a linked chain's post or void of it is live
    //  (coordinator.c, "Groups"), whose commit wins; if it aborts, the next
    //  tick expires it. Those are skipped too, without that bound (at most
    //  one a live attempt), so that they hold up no other expiry.
    size_t skipped_count = 0, held_count = 0;
    while (expired < max && self->heap_count > 0 && self->heap[0].expires_at <= clock_ns) {
        s_heap_t top = self->heap[0];
        size_t index = 0;
        bool live = s_heap_entry_live (self, &top, &index);
        bool claimed = live && self->live[index].side == PENDING_SIDE_BOTH
                       && self->live[index].claimed;
        bool held = live && !claimed && s_held (self, &self->live[index]);
        if (claimed || held) {
            if (held && held_count == S_HELD_MAX) {
                break;
            }
            if (skipped_count == self->skipped_cap) {
                size_t cap = self->skipped_cap ? 2 * self->skipped_cap : S_HELD_MAX;
                s_heap_t *grown = realloc (self->skipped, cap * sizeof (*grown));
                if (!grown) {
                    break; //  the rest waits for the next tick
                }
                self->skipped = grown;
                self->skipped_cap = cap;
            }
            self->skipped[skipped_count++] = top;
            held_count += held;
            s_heap_pop (self);
            continue;
        }
        s_heap_pop (self);
        if (live) {
            if (self->live[index].side == PENDING_SIDE_DEBIT) {
                s_make_due (self, index); //  its expiry is a void attempt (pending_due_take)
            } else {
                s_expire (self, index, clock_ns);
            }
            expired++;
        }
    }
    for (size_t i = 0; i < skipped_count; i++) {
        int rc = s_heap_push (self, self->skipped[i].expires_at, self->skipped[i].id);
        assert (rc == 0); //  the heap held them a moment ago: no allocation
        (void) rc;
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
    if (idmap_size (self->credit_changed) > 0) {
        idmap_clear (self->credit_changed);
    }
}

static int s_audit_index (pending_t *self, char *err, size_t err_size);

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
        rl_id_t key;
        idmap_t *map = s_live_key ((pending_t *) self, e, &key);
        if (!idmap_get (map, key, &index) || index != i) {
            snprintf (err, err_size, "pending transfer %016" PRIx64 "%016" PRIx64 " not indexed",
                      e->t.id.hi, e->t.id.lo);
            rc = -1;
            break;
        }
        if (e->pair.debit_slot != ACCOUNTS_SLOT_NONE) {
            debits[e->pair.debit_slot] += e->t.amount;
        }
        if (e->pair.credit_slot != ACCOUNTS_SLOT_NONE) {
            credits[e->pair.credit_slot] += e->t.amount;
        }
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
    if (rc == 0) {
        rc = s_audit_index ((pending_t *) self, err, err_size);
    }
    return rc;
}

//  Invariant 6 for the transfers still pending, whose keys the migrations
//  move: each has its index keys, holding its current entry (those written
//  since the last commit are in the batch, which a read does not see, and
//  are passed over: s_changed). The live entries' keys are sorted and
//  found with one iterator: a read by key would sort the family's vector
//  memtable (store.c) every time, where the iterator sorts it once. From
//  one key to the next the iterator steps when the next is near (at most
//  S_AUDIT_STEPS keys of resolved entries between them) and seeks when it
//  is not, so the audit costs what is live, never the index's whole
//  history of resolved entries, nor a seek per key when the index holds
//  little else.
#define S_AUDIT_STEPS 32

typedef struct {
    uint32_t live; //  index in live
    uint8_t k;     //  which of its keys (s_index_keys)
    uint8_t key[PENDING_ARC_KEY_SIZE];
} s_audit_key_t;
_Static_assert(sizeof (s_audit_key_t) == 48, "a million transfers still pending: 96 MB of keys");

static int
s_audit_key_cmp (const void *a, const void *b)
{
    return memcmp (((const s_audit_key_t *) a)->key, ((const s_audit_key_t *) b)->key,
                   PENDING_ARC_KEY_SIZE);
}

static bool
s_changed (pending_t *self, const s_live_t *e)
{
    rl_id_t key;
    s_live_key (self, e, &key);
    return idmap_get (e->side == PENDING_SIDE_CREDIT ? self->credit_changed : self->changed, key,
                      NULL);
}

//  Moves `it` to the first key >= target: steps first, then seeks.
static void
s_audit_reach (store_iter_t *it, const uint8_t *target, bool *positioned)
{
    for (size_t step = 0; *positioned && step < S_AUDIT_STEPS && store_iter_valid (it); step++) {
        size_t size = 0;
        const uint8_t *key = store_iter_key (it, &size);
        size_t n = size < PENDING_ARC_KEY_SIZE ? size : PENDING_ARC_KEY_SIZE;
        int c = memcmp (key, target, n);
        if (c > 0 || (c == 0 && size >= PENDING_ARC_KEY_SIZE)) {
            return; //  at or past the target
        }
        store_iter_next (it);
    }
    store_iter_seek (it, target, PENDING_ARC_KEY_SIZE);
    *positioned = true;
}

static int
s_audit_index (pending_t *self, char *err, size_t err_size)
{
    assert (self->live_count <= UINT32_MAX);
    s_audit_key_t *keys = malloc ((2 * self->live_count + 1) * sizeof (*keys));
    store_iter_t *it = keys ? store_iter_new (self->store, STORE_CF_PENDING_ARC) : NULL;
    if (!it) {
        free (keys);
        snprintf (err, err_size, "out of memory");
        return -1;
    }
    size_t count = 0;
    for (size_t i = 0; i < self->live_count; i++) {
        const s_live_t *e = &self->live[i];
        if (s_changed (self, e)) {
            continue;
        }
        uint8_t mine[2][PENDING_ARC_KEY_SIZE];
        size_t n = s_index_keys (&e->t, e->side, mine);
        for (size_t k = 0; k < n; k++) {
            memcpy (keys[count].key, mine[k], PENDING_ARC_KEY_SIZE);
            keys[count].live = (uint32_t) i;
            keys[count].k = (uint8_t) k;
            count++;
        }
    }
    qsort (keys, count, sizeof (*keys), s_audit_key_cmp);
    int rc = 0;
    bool positioned = false;
    for (size_t j = 0; rc == 0 && j < count; j++) {
        const s_live_t *e = &self->live[keys[j].live];
        s_audit_reach (it, keys[j].key, &positioned);
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_valid (it) ? store_iter_key (it, &key_size) : NULL;
        bool found = key && key_size == PENDING_ARC_KEY_SIZE
                     && memcmp (key, keys[j].key, PENDING_ARC_KEY_SIZE) == 0;
        const uint8_t *value = found ? store_iter_value (it, &value_size) : NULL;
        if (!found && store_failed (self->store)) {
            //  A read that failed (store_iter_valid failed the store), not
            //  a key that is missing.
            snprintf (err, err_size, "the index by account could not be read: %s",
                      store_error (self->store));
            rc = -1;
            break;
        }
        rl_transfer_t record = e->t;
        uint8_t want[RL_TRANSFER_SIZE];
        record.reserved = (uint64_t) PENDING_STATE_PENDING | (uint64_t) e->side << 8;
        codec_encode_transfer (&record, want);
        if (!found || value_size != sizeof (want) || memcmp (value, want, sizeof (want)) != 0) {
            snprintf (err, err_size,
                      "pending transfer %016" PRIx64 "%016" PRIx64
                      " has %s in the index by account (%s account)",
                      e->t.id.hi, e->t.id.lo, found ? "another entry" : "no key",
                      e->side == PENDING_SIDE_CREDIT || keys[j].k == 1 ? "credit" : "debit");
            rc = -1;
        }
    }
    if (rc == 0 && store_iter_error (it, err, err_size) != 0) {
        rc = -1;
    }
    store_iter_destroy (&it);
    free (keys);
    return rc;
}

//  The index by account ----------------------------------------------------------------

int
pending_arc_each (store_t *store, uint64_t start, uint64_t end, uint8_t *cursor, size_t keys_max,
                  size_t entries_max, pending_arc_fn *fn, void *arg, size_t *keys_read_p)
{
    assert (store && cursor && fn && keys_read_p && start != end && keys_max > 0
            && entries_max > 0);
    uint64_t last = codec_get_u64_be (cursor);
    uint64_t read = codec_get_u64_be (cursor + 8); //  keys of point `last` read
    //  The arc's ranges of keys, inclusive: one, or two when it wraps.
    uint64_t lo[2] = {start + 1, 0}, hi[2] = {end, end};
    size_t ranges = 1;
    if (start > end && start != UINT64_MAX) {
        hi[0] = UINT64_MAX;
        ranges = 2;
    }
    size_t range = read > 0 && ranges == 2 && last <= end ? 1 : 0; //  the cursor's
    store_iter_t *it = store_iter_new (store, STORE_CF_PENDING_ARC);
    if (!it) {
        return -1;
    }
    size_t keys = 0, entries = 0;
    int rc = 1;
    for (; rc == 1 && range < ranges; range++) {
        uint8_t seek[8];
        codec_put_u64_be (seek, read > 0 ? last : lo[range]);
        uint64_t skip = read; //  keys of the cursor's point read by an earlier call
        store_iter_seek (it, seek, sizeof (seek));
        for (; rc == 1; store_iter_next (it)) {
            if (keys == keys_max || entries == entries_max) {
                rc = 0; //  the rest in the next call
                break;
            }
            size_t key_size = 0, value_size = 0;
            const uint8_t *key = store_iter_valid (it) ? store_iter_key (it, &key_size) : NULL;
            const uint8_t *value = key ? store_iter_value (it, &value_size) : NULL;
            if (key
                && (key_size != PENDING_ARC_KEY_SIZE || key[PENDING_ARC_KEY_SIZE - 1] > 1
                    || value_size != RL_TRANSFER_SIZE)) {
                rc = -1; //  not an index key (pending_arc_key)
                break;
            }
            uint64_t point = key ? codec_get_u64_be (key) : 0;
            bool credit_key = key && key[PENDING_ARC_KEY_SIZE - 1] == 1;
            if (!key || point > hi[range]) {
                if (!key && store_iter_error (it, NULL, 0) != 0) {
                    rc = -1;
                }
                read = 0; //  the next range begins at its start
                break;
            }
            if (skip > 0 && point == last) {
                skip--;
                continue; //  delivered by an earlier call
            }
            skip = 0;
            read = point == last ? read + 1 : 1;
            last = point;
            keys++;
            rl_transfer_t t;
            codec_decode_transfer (value, &t);
            uint64_t state = t.reserved & 0xff;
            uint8_t side = (uint8_t) (t.reserved >> 8);
            uint8_t ids[2 * RL_ID_SIZE];
            codec_encode_id (t.id, ids);
            codec_encode_id (t.debit_account_id, ids + RL_ID_SIZE);
            if (state < PENDING_STATE_PENDING || state > PENDING_STATE_EXPIRED
                || side > PENDING_SIDE_CREDIT || (side == PENDING_SIDE_CREDIT) != credit_key
                || memcmp (key + 8, ids, sizeof (ids)) != 0) {
                rc = -1; //  not the entry its key names
                break;
            }
            //  The one key it goes at: its debit account's when that is in
            //  the arc and held here, else its credit account's.
            bool debit_in = side != PENDING_SIDE_CREDIT
                            && imported_in_arc (start, end, t.debit_account_id);
            bool credit_in = side != PENDING_SIDE_DEBIT
                             && imported_in_arc (start, end, t.credit_account_id);
            if (!debit_in && !credit_in) {
                continue; //  none of its accounts of the arc is held here (any more)
            }
            if (s_point (debit_in ? t.debit_account_id : t.credit_account_id) == point) {
                fn (arg, &t);
                entries++;
            }
        }
    }
    store_iter_destroy (&it);
    assert (rc != 0 || read > 0); //  a cursor that stops names the key it stops after
    if (rc == 1) {
        read = 0;
    }
    if (rc >= 0) {
        codec_put_u64_be (cursor, read > 0 ? last : 0);
        codec_put_u64_be (cursor + 8, read);
    }
    *keys_read_p = keys;
    return rc;
}

//  Migration (migrate.c) ------------------------------------------------------------

//  The sides of a live entry that name an account for which in() holds.
static void
s_sides_in (const s_live_t *e, pending_held_fn *in, void *arg, bool *debit_p, bool *credit_p)
{
    *debit_p = e->side != PENDING_SIDE_CREDIT && in (arg, e->t.debit_account_id);
    *credit_p = e->side != PENDING_SIDE_DEBIT && in (arg, e->t.credit_account_id);
}

//  The stored state of an entry that leaves this shard is deleted: the
//  shard that holds its account now keeps it (read before the commit as
//  none, like a key never written).
static void
s_delete_state (pending_t *self, const rl_transfer_t *t, uint8_t side)
{
    uint8_t key[S_CREDIT_KEY_SIZE];
    codec_encode_id (t->id, key);
    codec_encode_id (t->debit_account_id, key + RL_ID_SIZE);
    bool credit = side == PENDING_SIDE_CREDIT;
    store_batch_delete (self->store, STORE_CF_PENDING, key,
                        credit ? S_CREDIT_KEY_SIZE : RL_ID_SIZE);
    s_index (self, NULL, t, side, NULL);
    idmap_t *map = credit ? self->credit_changed : self->changed;
    rl_id_t id = credit ? s_credit_key (t->id, t->debit_account_id) : t->id;
    if (idmap_put (map, id, PENDING_STATE_NONE) != 0) {
        rl_error ("pending: out of memory for the states of this turn");
        abort ();
    }
}

//  A same-shard entry one of whose accounts leaves: the side that stays
//  keeps it, as the cross-shard shape (debit: key the id, it expires here
//  by a void attempt; credit: key (id, debit account), never expires here),
//  and the side that leaves is released here (its account's new shard
//  reserves it from the entry it received).
static void
s_split (pending_t *self, size_t index, uint8_t keep)
{
    s_live_t *e = &self->live[index];
    assert (e->side == PENDING_SIDE_BOTH && keep != PENDING_SIDE_BOTH && !e->claimed);
    accounts_pair_t leaving = {ACCOUNTS_SLOT_NONE, ACCOUNTS_SLOT_NONE};
    if (keep == PENDING_SIDE_DEBIT) {
        leaving.credit_slot = e->pair.credit_slot;
        e->pair.credit_slot = ACCOUNTS_SLOT_NONE;
    } else {
        leaving.debit_slot = e->pair.debit_slot;
        e->pair.debit_slot = ACCOUNTS_SLOT_NONE;
    }
    int rc = accounts_pending_move (self->accounts, &leaving, 0, e->t.amount, 0);
    assert (rc == 0); //  invariant 2
    (void) rc;
    if (keep == PENDING_SIDE_DEBIT) {
        e->side = PENDING_SIDE_DEBIT; //  its heap entry, if any, stays its expiry
        s_put_state (self, &e->t, PENDING_SIDE_DEBIT, PENDING_STATE_PENDING);
        uint8_t key[PENDING_ARC_KEY_SIZE]; //  the credit account's key goes with it
        pending_arc_key (e->t.credit_account_id, &e->t, false, key);
        store_batch_delete (self->store, STORE_CF_PENDING_ARC, key, sizeof (key));
        return;
    }
    rl_id_t key = s_credit_key (e->t.id, e->t.debit_account_id);
    if (idmap_get (self->credit_ids, key, NULL) || idmap_put (self->credit_ids, key, index) != 0) {
        //  The credit side of this very (id, debit) is live here already
        //  (never: ids are scoped to their debit account), or no memory.
        rl_error ("pending: transfer %016" PRIx64 "%016" PRIx64 " cannot keep its credit side",
                  e->t.id.hi, e->t.id.lo);
        abort ();
    }
    bool removed = idmap_remove (self->ids, e->t.id);
    assert (removed);
    (void) removed;
    s_delete_state (self, &e->t, PENDING_SIDE_BOTH);
    e->side = PENDING_SIDE_CREDIT;
    e->expires_at = 0; //  its heap entry is stale now: the debit's shard expires it
    e->due = false;
    s_put_state (self, &e->t, PENDING_SIDE_CREDIT, PENDING_STATE_PENDING);
}

size_t
pending_hand_over (pending_t *self, pending_held_fn *leaves, void *arg)
{
    assert (self && leaves && !self->logging);
    size_t moved = 0;
    for (size_t i = 0; i < self->live_count;) {
        s_live_t *e = &self->live[i];
        bool debit, credit;
        s_sides_in (e, leaves, arg, &debit, &credit);
        if (!debit && !credit) {
            i++;
            continue;
        }
        //  The drain ended every attempt that could claim it (migrate.c).
        assert (!e->claimed);
        moved++;
        if (e->side == PENDING_SIDE_BOTH && debit != credit) {
            s_split (self, i, debit ? PENDING_SIDE_CREDIT : PENDING_SIDE_DEBIT);
            i++;
            continue;
        }
        s_delete_state (self, &e->t, e->side);
        s_live_remove (self, i, 0); //  the last entry comes to i: looked at next
    }
    return moved;
}

int
pending_install_check (pending_t *self, const rl_transfer_t *t, uint8_t side)
{
    assert (self && t && side <= PENDING_SIDE_CREDIT);
    bool credit = side == PENDING_SIDE_CREDIT;
    idmap_t *map = credit ? self->credit_ids : self->ids;
    rl_id_t key = credit ? s_credit_key (t->id, t->debit_account_id) : t->id;
    if (idmap_get (map, key, NULL)) {
        return -1; //  live here already (one id, two debit accounts: protocol.md)
    }
    //  Never a second credit side of one transfer: an entry of both sides
    //  beside a credit side of the same id and debit account, either way.
    if (side == PENDING_SIDE_BOTH && s_credit_live (self, t->id, t->debit_account_id)) {
        return -1;
    }
    uint64_t index = 0;
    if (side == PENDING_SIDE_CREDIT && idmap_get (self->ids, t->id, &index)) {
        assert (index < self->live_count);
        const s_live_t *e = &self->live[index];
        if (e->side == PENDING_SIDE_BOTH && rl_id_eq (e->t.debit_account_id, t->debit_account_id)) {
            return -1;
        }
    }
    size_t slot = 0;
    if ((side != PENDING_SIDE_CREDIT && !accounts_slot (self->accounts, t->debit_account_id, &slot))
        || (side != PENDING_SIDE_DEBIT
            && !accounts_slot (self->accounts, t->credit_account_id, &slot))) {
        return -2; //  an account of its side is not here
    }
    return 0;
}

int
pending_install (pending_t *self, const rl_transfer_t *t, uint8_t side)
{
    assert (self && t && (t->flags & RL_TRANSFER_PENDING) && t->timestamp != 0);
    assert (!self->logging && side <= PENDING_SIDE_CREDIT);
    pending_state_t state = (pending_state_t) (t->reserved & 0xff);
    assert (state >= PENDING_STATE_PENDING && state <= PENDING_STATE_EXPIRED);
    if (state != PENDING_STATE_PENDING) {
        //  Resolved before the move: its state only, so that a post or void
        //  of it answers as it would have there. Never over a live entry
        //  (one id, two debit accounts: the live one keeps its key).
        bool credit = side == PENDING_SIDE_CREDIT;
        rl_id_t key = credit ? s_credit_key (t->id, t->debit_account_id) : t->id;
        if (idmap_get (credit ? self->credit_ids : self->ids, key, NULL)) {
            return 1;
        }
        rl_transfer_t record = *t;
        record.reserved = 0;
        s_put_state (self, &record, side, state);
        return 0;
    }
    if (pending_install_check (self, t, side) != 0) {
        return -1;
    }
    accounts_pair_t pair = {ACCOUNTS_SLOT_NONE, ACCOUNTS_SLOT_NONE};
    size_t slot = 0;
    if (side != PENDING_SIDE_CREDIT) {
        accounts_slot (self->accounts, t->debit_account_id, &slot);
        pair.debit_slot = (uint32_t) slot;
    }
    if (side != PENDING_SIDE_DEBIT) {
        accounts_slot (self->accounts, t->credit_account_id, &slot);
        pair.credit_slot = (uint32_t) slot;
    }
    rl_transfer_t record = *t;
    record.reserved = 0;
    if (s_live_insert (self, &record, &pair, side) != 0) {
        return -1; //  RL_SHARD_PENDING_MAX, a sum that overflows, or memory
    }
    s_put_state (self, &record, side, PENDING_STATE_PENDING);
    return 0;
}

//  Both sides here, as two entries (migrate.c brought one beside the other) -------

bool
pending_credit_here (pending_t *self, rl_id_t pending_id, rl_id_t debit_account_id)
{
    assert (self);
    return s_credit_live (self, pending_id, debit_account_id) != NULL;
}

void
pending_apply_here (pending_t *self, const rl_transfer_t *resolved)
{
    assert (self && resolved && (resolved->flags & PENDING_RESOLVE_FLAGS) && !self->logging);
    uint64_t index = 0;
    bool live = idmap_get (self->ids, resolved->pending_id, &index);
    assert (live && self->live[index].side == PENDING_SIDE_DEBIT && !self->live[index].claimed);
    (void) live;
    bool post = (resolved->flags & RL_TRANSFER_POST_PENDING_TRANSFER) != 0;
    s_live_t *debit = &self->live[index];
    pending_state_t state = post ? PENDING_STATE_POSTED : PENDING_STATE_VOIDED;
    if (!post && pending_is_expiry_id (resolved->id, debit->t.id, debit->t.debit_account_id)) {
        state = PENDING_STATE_EXPIRED;
    }
    rl_transfer_t p = debit->t;
    assert (resolved->amount <= p.amount);
    s_put_state (self, &p, PENDING_SIDE_DEBIT, state);
    s_live_remove (self, (size_t) index, post ? resolved->amount : 0);
    s_live_t *credit = s_credit_live (self, p.id, p.debit_account_id); //  after the swap
    assert (credit && !credit->claimed); //  pending_credit_check found it free
    s_put_state (self, &credit->t, PENDING_SIDE_CREDIT, state);
    s_live_remove (self, (size_t) (credit - self->live), post ? resolved->amount : 0);
}
