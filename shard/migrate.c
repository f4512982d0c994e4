/*  migrate.c: the move of one arc between two shards, driven by the tool
    (docs/rebalance.md has the whole state machine): the copy and its
    catch-up rounds, the freeze, the drain, the final round, the handover.

    WHY
    Moving an arc must not stop the shard that serves it. So the source
    hands out its data in bounded chunks from a cursor, between ordinary
    turns, and the target imports each chunk in one group commit together
    with the cursor it has reached. A crash of either side, or of the tool
    between them, resumes from the target's cursor: nothing is imported
    twice, nothing skipped.

    OPERATIONS (admin role; each is one request, answered after the
    group commit that holds its writes)
      migrate_begin   (either side) stores the migration: id, arc, source,
                      target, this shard's role; cursor zero. Again with
                      the same record: answers the stored state (how the
                      tool resumes). A different migration while one is
                      stored: migration_refused. The source must serve
                      every point of the arc; the target none (it may own
                      all of it, not received). Every check of the ring
                      and of the arcs received takes the whole arc.
                      Begin, freeze and commit of a migration of another
                      plan than the one holding the shard's migration lease
                      are refused (lease_held; mlease.h); a plan's first
                      begin takes the lease when none holds it. While the
                      accounts of the last handover here wait for their
                      checkpoint (ledger_adopting), a new begin is
                      answered busy and asks for it.
      migrate_export  (source) the chunk numbered `chunks + 1` from
                      `cursor`, at most `entries_max` entries, and at most
                      RL_MIGRATE_SCAN_RECORDS_MAX records read. Writes
                      only the source's record: the rounds begun (an
                      export that begins one) and SHIPPED.
      migrate_import  (target) imports a chunk: the next one in order
                      (seq == chunks + 1 and from == the stored cursor),
                      every entry in the arc; its keys (imported.c), the new
                      cursor and counts go into one batch. A chunk already
                      imported (seq <= chunks) is answered with the state
                      and changes nothing.
      migrate_freeze  (source) COPYING -> FROZEN: the arc counts as not
                      received (arcs_freeze), so writes there answer
                      frozen, and nothing pending there expires; param: the
                      freeze's time limit. Past it, the tick unfreezes
                      (COPYING) unless the final round is out.
      migrate_drain   (source) param: the two-phase entries touching the
                      arc (0: drained); entries_max: its heuristic records.
                      A freeze is refused while the arc holds heuristic
                      records, unless the request says they are reconciled.
      migrate_unfreeze (source) FROZEN -> COPYING; refused once SHIPPED.
      migrate_commit  (target) SHIPPED, serving a ring that gives it the
                      arc not received -> the staged accounts adopted and
                      the pending transfers installed (checked first
                      against each other), the arc received, HANDED_OVER,
                      one batch (THE HANDOVER'S ACCOUNTS, in s_commit_target).
                      (source) SHIPPED, serving a ring that no longer gives
                      it the arc -> its pending transfers of the arc handed
                      over (pending_hand_over), HANDED_OVER, the freeze
                      ends, and the arc is kept no more (arcs_forget: a
                      ring alone never gives it back as received), one
                      batch.
      migrate_cleanup (source) HANDED_OVER -> NONE: once no transfer still
                      to checkpoint posts to the arc, deletes the moved
                      accounts and their history, a bounded number of
                      accounts a call (cursor.account_key), then compacts.
                      Id 0 with param RL_MIGRATE_CLEANUP_PEEK: the source
                      migration stored here, handed over and not cleaned
                      up, answered as stored; nothing deleted.
      migrate_abort   (target, first) deletes what it imported for the arc,
                      a bounded number of keys a call, resuming from a
                      stored key (ABORTING), then NONE; (source) NONE, the
                      freeze ends; from SHIPPED only when the tool says the
                      target answered NONE. Refused once HANDED_OVER.

    STATES (the stored record; docs/rebalance.md, "The state machine")
      source  NONE -> COPYING <-> FROZEN -> SHIPPED -> HANDED_OVER
      target  NONE -> COPYING -> SHIPPED (final chunk in) -> HANDED_OVER
      abort   target COPYING|SHIPPED -> ABORTING ... -> NONE; source
              COPYING|FROZEN|SHIPPED -> NONE (never from HANDED_OVER)
      A target's HANDED_OVER migration may be replaced by a new
      migrate_begin; a source's only once its cleanup has run (NONE).
      A round that begins fresh (a round number no export began before:
      the source's record counts the rounds begun, in `chunks`), FROZEN
      and drained, is the final one: when it ends the source is SHIPPED
      and the chunk that ends it carries RL_CHUNK_FINAL (and so does the
      last chunk of any round, in SHIPPED, numbered from the final one on).

    WHAT MOVES (the export's scan; each round runs the phases in order)
      1. the source's own transfer records (the `transfers` family, every
         record from the first to the last committed, those still in the
         in-memory recent index included) that name an account of the arc
         on a side their leg applies to, by timestamp;
      2. the records the source itself imported earlier, by key;
      3. the accounts of the arc, with their balances as in memory;
      4. in the final round only (and any after it, once SHIPPED): the
         entries of the pending table that name an account of the arc,
         read through its index by account (s_export_pending;
         docs/rebalance.md, "Pending transfers move").
      The target derives from each record its idempotency entry (debit
      account in the arc), its credit-leg entry and its history keys.
      Records and idempotency entries are never deleted from the source
      by the copy. A round that has ended (phase DONE) is followed by a
      catch-up round: phases 1 and 2 continue where they stopped (records
      only grow), phase 3 sends the accounts of the arc changed since the
      round before began (s_round_begins: a change generation per account,
      accounts.c), or every account when this process did not serve that
      start (the first round, a restart).

    INVARIANTS
    1. The target's stored cursor and chunk number change only in the
       batch that holds that chunk's entries.
    2. Nothing is written for a request that is refused (bad chunk, other
       migration, out of order, an entry outside the arc).
    3. A shard takes part in at most one migration at a time (so a source
       imports nothing while it exports: its imported keys do not move
       under the cursor of phase 2).
    4. The source accepts no write in the arc from FROZEN on while the
       ring gives it the arc, and never leaves SHIPPED but by losing the
       arc; the target serves the arc only after the commit, which needs
       the final chunk. So two shards never accept writes for one account.
    5. A stored FROZEN or SHIPPED source is frozen again at start, before
       anything is served (migrate_start).
    6. An abort's deletes, its resume key and its state go in one batch;
       a SHIPPED source unfreezes by an abort only on the tool's word that
       the target has aborted (so it will never commit).
    7. A transfer still pending is kept by exactly one shard per side: the
       target puts the final round's entries into its pending table in
       the batch of its handover, the source takes them out of its own in
       the batch of its handover; in between (SHIPPED), neither resolves
       nor expires them (the arc is frozen on the source, not received on
       the target). Every staged account's pending amounts equal what the
       staged transfers reserve on it, or the target's commit is refused.
    8. While the target's stage mirrors its migration (its migration_id),
       it holds exactly the arc's 'A' keys and the 'P' keys that the store
       holds once the batch being built is written.

    THE STAGE (target)
    The accounts and pending transfers staged for the arc ('A', 'P' of the
    imported family) are mirrored in memory as the store holds them
    (migrate_stage_t): every import puts its chunk's into both, a round's
    first chunk drops the staged pending transfers from both, the commit
    and the abort empty both. So the commit reads nothing from the store:
    its work in the freeze is installing what is staged, and the tool sends
    the final chunk, the step's ring and the commit back to back, one turn
    and one sync on the target (a commit that read the store would miss a
    chunk imported in its own turn: the batch is written when the turn
    ends). The mirror is loaded from the store at start (a target COPYING
    or SHIPPED), at a target's begin, and whenever it mirrors nothing (memory ran out),
    but only while the batch being built holds no 'A' or 'P' write
    (stage_written_seq); otherwise the request is answered busy and sent
    again. Memory: 128 bytes per staged account, kept until the shard stops (reused by the
    next migration).

    FAILPOINTS (failpoint_list.h, migrate.*): one per durable step, in the
    batch before its commit, and after the sync of an import and of the
    target's handover; migrate.recover at start (tests/test_migrate_crash.c).

    LIMITS
    RL_MIGRATE_ENTRIES_MAX entries a chunk; RL_MIGRATE_SCAN_RECORDS_MAX
    records read by one export (one turn).
*/
#include "migrate.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "backup.h"
#include "chunk.h"
#include "codec.h"
#include "failpoint.h"
#include "idmap.h"
#include "imported.h"
#include "log.h"
#include "mlease.h"
#include "pending.h"
#include "rl_limits.h"
#include "server_internal.h"

uint64_t
migrate_origin (const char *shard_name)
{
    uint64_t h = XXH3_64bits (shard_name, strlen (shard_name));
    return h ? h : 1;
}

static int s_inflight (server_t *self, const rl_migrate_rec_t *state);
static void s_track_stop (server_t *self);
static void s_stage_reset (server_t *self, uint64_t migration_id);
static int s_stage_load (server_t *self, const rl_migrate_rec_t *state);

//  State -----------------------------------------------------------------------

//  The stored migration (state NONE when there is none): read once, then
//  kept in the server.
static int
s_state (server_t *self, rl_migrate_rec_t **state_p)
{
    if (!self->migration_loaded) {
        uint8_t value[RL_MIGRATE_SIZE];
        size_t size = 0;
        int rc = store_get (self->store, STORE_CF_META, MIGRATE_META_KEY, strlen (MIGRATE_META_KEY),
                            value, sizeof (value), &size);
        if (rc < 0 || (rc == 1 && size != RL_MIGRATE_SIZE)) {
            return -1;
        }
        memset (&self->migration, 0, sizeof (self->migration));
        if (rc == 1) {
            codec_decode_migrate (value, &self->migration);
        }
        self->migration_loaded = true;
    }
    *state_p = &self->migration;
    return 0;
}

int
migrate_stored (server_t *self, rl_migrate_rec_t **state_p)
{
    return s_state (self, state_p);
}

static void
s_state_put (server_t *self)
{
    uint8_t value[RL_MIGRATE_SIZE];
    codec_encode_migrate (&self->migration, value);
    store_batch_put (self->store, STORE_CF_META, MIGRATE_META_KEY, strlen (MIGRATE_META_KEY), value,
                     sizeof (value));
}

static zmsg_t *
s_reply_state (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 1, RL_MIGRATE_SIZE, &out);
    if (reply) {
        codec_encode_migrate (&self->migration, out);
    }
    return reply;
}

static zmsg_t *
s_refuse (server_t *self, zmsg_t *envelope, const rl_header_t *h, const char *why)
{
    rl_warn ("migration: request %" PRIu64 " (%s) refused: %s", h->request_id,
             rl_op_name (h->operation), why);
    return server_reply_new (self, envelope, h, RL_STATUS_MIGRATION_REFUSED, 0, 0, NULL);
}

//  How much of the arc (start, end] the ring gives this shard: an arc of
//  a migration is wholly the source's before it and wholly the target's
//  after it (a plan's arcs are ring_diff_arcs', runs of whole ring arcs),
//  so every check takes the whole arc, never one point of it: an admin
//  request naming a wider arc would otherwise hand over, freeze or mark
//  received what does not move.
static ring_share_t
s_ring_share (server_t *self, uint64_t start, uint64_t end)
{
    int me = ring_shard_find (self->ring, self->options->name);
    return me < 0 ? RING_SHARE_NONE : ring_arc_share (self->ring, start, end, me);
}

//  How much of the arc this shard holds the data of (arcs.h; a shard
//  without the arcs module holds all of it).
static ring_share_t
s_held_share (server_t *self, uint64_t start, uint64_t end)
{
    const arcs_t *arcs = ledger_arcs (self->ledger);
    return arcs ? arcs_arc_received (arcs, start, end) : RING_SHARE_ALL;
}

//  Begin -----------------------------------------------------------------------

static bool
s_same_migration (const rl_migrate_rec_t *a, const rl_migrate_rec_t *b)
{
    return a->migration_id == b->migration_id && a->arc_start == b->arc_start
           && a->arc_end == b->arc_end && a->role == b->role && strcmp (a->source, b->source) == 0
           && strcmp (a->target, b->target) == 0;
}

static zmsg_t *
s_begin (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    rl_migrate_rec_t req;
    codec_decode_migrate (body, &req);
    const char *name = self->options->name;
    bool source = req.role == RL_MIGRATE_SOURCE;
    if (req.migration_id == 0 || req.arc_start == req.arc_end
        || (req.role != RL_MIGRATE_SOURCE && req.role != RL_MIGRATE_TARGET) || !req.source[0]
        || !req.target[0] || strcmp (req.source, req.target) == 0
        || strcmp (source ? req.source : req.target, name) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_MALFORMED, 0, 0, NULL);
    }
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    rl_status_t leased = mlease_check (self, req.migration_id, "begin"); //  mlease.h
    if (leased != RL_STATUS_OK) {
        return server_reply_new (self, envelope, h, leased, 0, 0, NULL);
    }
    if (state->state != RL_MIGRATE_NONE
        && !(state->state == RL_MIGRATE_HANDED_OVER && !s_same_migration (state, &req))) {
        if (!s_same_migration (state, &req)) {
            return s_refuse (self, envelope, h, "another migration is stored");
        }
        return s_reply_state (self, envelope, h); //  resumed: as stored
    }
    if (state->state == RL_MIGRATE_HANDED_OVER && state->role == RL_MIGRATE_SOURCE) {
        //  Replacing it would drop its cleanup: the accounts that left would
        //  stay here for good (and moving the arc back be refused).
        return s_refuse (self, envelope, h,
                         "the cleanup of the last migration from here has not run");
    }
    //  The source serves the whole arc now; the target none of it (it may
    //  own all of it already, the step's ring loaded, but hold none).
    ring_share_t owned = s_ring_share (self, req.arc_start, req.arc_end);
    ring_share_t held = s_held_share (self, req.arc_start, req.arc_end);
    if (source && (owned != RING_SHARE_ALL || held != RING_SHARE_ALL)) {
        return s_refuse (self, envelope, h, "the source does not serve the whole arc");
    }
    if (!source && owned != RING_SHARE_NONE
        && !(owned == RING_SHARE_ALL && held == RING_SHARE_NONE)) {
        return s_refuse (self, envelope, h, "the target serves part of the arc");
    }
    if (ledger_adopting (self->ledger)) {
        //  The accounts the last handover adopted are not in the accounts
        //  family until the checkpoint it asked for commits: an export and
        //  a cleanup read that family, a target's stage the staged keys.
        ledger_checkpoint_soon (self->ledger);
        rl_debug ("migration %" PRIu64 ": begin waits for the checkpoint of adopted accounts",
                  req.migration_id);
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    rl_migrate_rec_t fresh = {
        .migration_id = req.migration_id,
        .arc_start = req.arc_start,
        .arc_end = req.arc_end,
        .role = req.role,
        .state = RL_MIGRATE_COPYING,
    };
    if (source && state->migration_id == req.migration_id && state->role == req.role) {
        //  The same migration begun again after an abort here: its rounds
        //  stay counted (the target may still hold a cursor of one of them).
        fresh.chunks = state->chunks;
    }
    memcpy (fresh.source, req.source, sizeof (fresh.source));
    memcpy (fresh.target, req.target, sizeof (fresh.target));
    self->migration = fresh;
    s_track_stop (self); //  a new migration's rounds are tracked afresh
    s_stage_reset (self, 0);
    if (!source && s_stage_load (self, &fresh) != 0) {
        rl_debug ("migration %" PRIu64 ": the stage is loaded at the first import",
                  fresh.migration_id);
    }
    s_state_put (self);
    mlease_take (self, fresh.migration_id); //  the plan's first begin here: same batch
    RL_FAILPOINT (MIGRATE_BEGIN);
    rl_info ("migration %" PRIu64 ": %s of arc (%" PRIu64 ", %" PRIu64 "] from %s to %s",
             fresh.migration_id, source ? "source" : "target", fresh.arc_start, fresh.arc_end,
             fresh.source, fresh.target);
    return s_reply_state (self, envelope, h);
}

//  Export ------------------------------------------------------------------------

typedef struct {
    server_t *server;
    const rl_migrate_rec_t *state;
    uint8_t *out; //  the chunk being built
    uint32_t cap; //  entries it may hold
    uint32_t count;
    size_t scanned; //  records read
    uint64_t origin;
} s_export_t;

static bool
s_export_full (const s_export_t *x)
{
    return x->count >= x->cap || x->scanned >= RL_MIGRATE_SCAN_RECORDS_MAX;
}

static void
s_export_entry (s_export_t *x, const chunk_entry_t *e)
{
    assert (x->count < x->cap);
    chunk_put_entry (x->out, x->count++, e);
}

//  Phase 1: own transfer records after cursor->ts. -1 on a storage error.
static int
s_export_transfers (s_export_t *x, rl_migrate_cursor_t *c)
{
    store_iter_t *it = store_iter_new (x->server->store, STORE_CF_TRANSFERS);
    if (!it) {
        return -1;
    }
    int rc = 0;
    if (c->ts == UINT64_MAX) {
        c->phase = RL_MIGRATE_PHASE_IMPORTED;
        store_iter_destroy (&it);
        return 0;
    }
    uint8_t seek[8];
    codec_put_u64_be (seek, c->ts + 1);
    for (store_iter_seek (it, seek, sizeof (seek)); !s_export_full (x); store_iter_next (it)) {
        if (!store_iter_valid (it)) {
            c->phase = RL_MIGRATE_PHASE_IMPORTED;
            break;
        }
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != 8 || value_size != RL_TRANSFER_SIZE) {
            rc = -1;
            break;
        }
        x->scanned++;
        chunk_entry_t e = {.kind = RL_CHUNK_TRANSFER, .origin = x->origin};
        codec_decode_transfer (value, &e.transfer);
        c->ts = codec_get_u64_be (key);
        if (imported_entry_fits (x->state->arc_start, x->state->arc_end, &e)) {
            s_export_entry (x, &e);
        }
    }
    store_iter_destroy (&it);
    return rc;
}

//  Phase 2: records this shard imported earlier, after cursor->imported_key.
static int
s_export_imported (s_export_t *x, rl_migrate_cursor_t *c)
{
    store_iter_t *it = store_iter_new (x->server->store, STORE_CF_IMPORTED);
    if (!it) {
        return -1;
    }
    uint8_t seek[IMPORTED_TRANSFER_KEY_SIZE];
    seek[0] = IMPORTED_TRANSFER;
    memcpy (seek + 1, c->imported_key, sizeof (c->imported_key));
    int rc = 0;
    for (store_iter_seek (it, seek, sizeof (seek)); !s_export_full (x); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_valid (it) ? store_iter_key (it, &key_size) : NULL;
        if (!key || key[0] != IMPORTED_TRANSFER) {
            c->phase = RL_MIGRATE_PHASE_ACCOUNTS;
            break;
        }
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size != IMPORTED_TRANSFER_KEY_SIZE || value_size != RL_TRANSFER_SIZE) {
            rc = -1;
            break;
        }
        if (memcmp (key, seek, sizeof (seek)) == 0) {
            continue; //  the cursor's own key: exported already
        }
        x->scanned++;
        chunk_entry_t e = {.kind = RL_CHUNK_TRANSFER, .origin = codec_get_u64_be (key + 1)};
        codec_decode_transfer (value, &e.transfer);
        memcpy (c->imported_key, key + 1, sizeof (c->imported_key));
        if (imported_entry_fits (x->state->arc_start, x->state->arc_end, &e)) {
            s_export_entry (x, &e);
        }
    }
    store_iter_destroy (&it);
    return rc;
}

//  Phase 3: the accounts of the arc after cursor->account_key, as in memory.
static int
s_export_accounts (s_export_t *x, rl_migrate_cursor_t *c)
{
    store_iter_t *it = store_iter_new (x->server->store, STORE_CF_ACCOUNTS);
    if (!it) {
        return -1;
    }
    int rc = 0;
    for (store_iter_seek (it, c->account_key, sizeof (c->account_key)); !s_export_full (x);
         store_iter_next (it)) {
        if (!store_iter_valid (it)) {
            c->phase = RL_MIGRATE_PHASE_DONE;
            break;
        }
        size_t key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        if (key_size != RL_ID_SIZE) {
            rc = -1;
            break;
        }
        if (memcmp (key, c->account_key, RL_ID_SIZE) == 0) {
            continue;
        }
        x->scanned++;
        memcpy (c->account_key, key, RL_ID_SIZE);
        rl_id_t id = codec_decode_id (key);
        if (!imported_in_arc (x->state->arc_start, x->state->arc_end, id)) {
            continue;
        }
        chunk_entry_t e = {.kind = RL_CHUNK_ACCOUNT};
        ledger_lookup_accounts (x->server->ledger, &id, 1, &e.account);
        if (e.account.timestamp != 0) {
            s_export_entry (x, &e);
        }
    }
    store_iter_destroy (&it);
    return rc;
}

//  Phase 3 from the round's list (s_round_begins): the accounts listed
//  after cursor->account_key, as in memory. The list is in key order, the
//  order of the scan above, so a cursor moves on from either.
static void
s_export_listed (s_export_t *x, rl_migrate_cursor_t *c)
{
    server_t *self = x->server;
    //  The first listed key after the cursor (binary search).
    size_t lo = 0, hi = self->round_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp (self->round_keys + mid * RL_ID_SIZE, c->account_key, RL_ID_SIZE) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (; lo < self->round_count && !s_export_full (x); lo++) {
        const uint8_t *key = self->round_keys + lo * RL_ID_SIZE;
        x->scanned++;
        memcpy (c->account_key, key, RL_ID_SIZE);
        rl_id_t id = codec_decode_id (key);
        chunk_entry_t e = {.kind = RL_CHUNK_ACCOUNT};
        ledger_lookup_accounts (self->ledger, &id, 1, &e.account);
        if (e.account.timestamp != 0) {
            s_export_entry (x, &e);
        }
    }
    if (lo == self->round_count) {
        c->phase = RL_MIGRATE_PHASE_DONE;
    }
}

//  The pending phase (5), the final round's last (docs/rebalance.md,
//  "Pending transfers move"): every entry of this shard's pending table (the transfers still
//  pending, and the states of those resolved) that names an account of the
//  arc on a side it holds, read through the table's index by account
//  (pending_arc_each): the arc's keys alone, so that the pass costs what
//  the arc holds and not what the shard ever held. The cursor
//  (account_key) is the index's (16 bytes); a chunk may end anywhere. The
//  arc is frozen and drained, so its keys and entries do not change until
//  the handover (they neither resolve nor expire: pending_set_hold), and
//  the round reads them from the store (its batch was empty when it
//  began). At most RL_MIGRATE_SCAN_RECORDS_MAX keys a call.
static void
s_export_pending_one (void *arg, const rl_transfer_t *t)
{
    chunk_entry_t e = {.kind = RL_CHUNK_PENDING, .transfer = *t};
    s_export_entry (arg, &e);
}

static int
s_export_pending (s_export_t *x, rl_migrate_cursor_t *c)
{
    assert (!s_export_full (x));
    size_t read = 0;
    int rc = pending_arc_each (x->server->store, x->state->arc_start, x->state->arc_end,
                               c->account_key, RL_MIGRATE_SCAN_RECORDS_MAX - x->scanned,
                               x->cap - x->count, s_export_pending_one, x, &read);
    x->scanned += read;
    if (rc == 1) {
        c->phase = RL_MIGRATE_PHASE_DONE;
    }
    return rc < 0 ? -1 : 0;
}

//  Catch-up rounds ----------------------------------------------------------------

static void
s_round_free (server_t *self)
{
    free (self->round_keys);
    self->round_keys = NULL;
    self->round_count = 0;
    self->round_listed = 0;
}

//  Forgets the tracking (the migration ended here, or another began).
static void
s_track_stop (server_t *self)
{
    s_round_free (self);
    self->track_id = 0;
    memset (self->track_round, 0, sizeof (self->track_round));
    memset (self->track_mark, 0, sizeof (self->track_mark));
    memset (self->track_first, 0, sizeof (self->track_first));
    ledger_track_changes (self->ledger, false);
}

typedef struct {
    uint64_t start, end; //  the arc
    uint8_t *keys;
    size_t count, cap;
    bool failed; //  out of memory
} s_collect_t;

static bool
s_collect (void *arg, const rl_account_t *account)
{
    s_collect_t *k = arg;
    if (!imported_in_arc (k->start, k->end, account->id)) {
        return true;
    }
    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 1024;
        uint8_t *keys = realloc (k->keys, cap * RL_ID_SIZE);
        if (!keys) {
            k->failed = true;
            return false;
        }
        k->keys = keys;
        k->cap = cap;
    }
    codec_encode_id (account->id, k->keys + k->count++ * RL_ID_SIZE);
    return true;
}

static int
s_key_cmp (const void *a, const void *b)
{
    return memcmp (a, b, RL_ID_SIZE);
}

//  Is the cursor the very first of a migration (round 0 not begun)?
static bool
s_cursor_zero (const rl_migrate_cursor_t *c)
{
    static const rl_migrate_cursor_t zero = {0};
    return chunk_cursor_eq (c, &zero);
}

//  An export that begins round `round` (the first export of round 0, or
//  one from a cursor whose round is DONE). It marks the change generation
//  the round begins with, and lists the accounts the round's phase 3
//  sends, from memory, in key order:
//    - when this process served the start of the round before (tracking
//      on since): the accounts of the arc changed since that start. An
//      account changed since is listed; one not changed since holds, on
//      the target, what the round before read after that start (or it was
//      changed after it, and is listed);
//    - otherwise (round 0, a restart, another migration before): every
//      account of the arc, so that the next round may list changes only.
//  Memory holds what the store's scan would miss: an account created by
//  a request of this turn, not yet written. A start served twice (its
//  reply lost) keeps its first mark, the earlier: it only lists more.
//  And only the mark of a round's first start ever (`fresh`: the rounds
//  begun, counted in the source's record) may stand for the round: the
//  target may hold that round from a start this process never saw (a
//  second tool's, before a restart or an abort here), read before a later
//  start's mark; after a later start alone the next round lists every
//  account (test_migrate, test_round_begun_twice).
//  Without memory for the list, phase 3 scans the accounts family (every
//  account) as before. O(accounts held) in the loop, once a round.
static void
s_round_begins (server_t *self, const rl_migrate_rec_t *state, uint32_t round, bool fresh)
{
    if (self->track_id != state->migration_id) {
        s_track_stop (self);
        self->track_id = state->migration_id;
    }
    s_round_free (self);
    if (ledger_track_changes (self->ledger, true) != 0) {
        rl_warn ("migration %" PRIu64 ": no memory to track changes: round %" PRIu32
                 " scans every account",
                 state->migration_id, round);
        self->track_id = 0;
        return;
    }
    if (!(self->track_mark[1] && self->track_round[1] == round)) {
        bool follows = self->track_mark[1] && self->track_round[1] + 1 == round;
        self->track_round[0] = follows ? self->track_round[1] : 0;
        self->track_mark[0] = follows ? self->track_mark[1] : 0;
        self->track_first[0] = follows && self->track_first[1];
        self->track_round[1] = round;
        self->track_mark[1] = ledger_change_mark (self->ledger);
        self->track_first[1] = fresh;
    }
    bool changes = round > 0 && self->track_mark[0] && self->track_first[0]
                   && self->track_round[0] + 1 == round;
    s_collect_t k = {.start = state->arc_start, .end = state->arc_end};
    ledger_changed_since (self->ledger, changes ? self->track_mark[0] : 0, s_collect, &k);
    if (!k.failed && !k.keys) {
        k.keys = malloc (1); //  an empty list is a list
        k.failed = !k.keys;
    }
    if (k.failed) {
        free (k.keys);
        rl_warn ("migration %" PRIu64 ": no memory for the list of round %" PRIu32
                 ": it scans every account",
                 state->migration_id, round);
        return;
    }
    if (k.count > 1) {
        qsort (k.keys, k.count, RL_ID_SIZE, s_key_cmp);
    }
    self->round_keys = k.keys;
    self->round_count = k.count;
    self->round_listed = round + 1;
    if (changes) {
        rl_info ("migration %" PRIu64 ": round %" PRIu32 " sends the %zu accounts of the arc "
                 "changed since round %" PRIu32 " began",
                 state->migration_id, round, k.count, round - 1);
    } else {
        rl_info ("migration %" PRIu64 ": round %" PRIu32 " sends every account of the arc (%zu)",
                 state->migration_id, round, k.count);
    }
}

//  An export that waits for the drain: at most one (a newer one, the
//  tool's resend after a timeout, replaces it: the older is dropped
//  unanswered, its caller gave up), for at most the freeze's own time
//  limit and S_EXPORT_WAIT_MS_MAX.
#define S_EXPORT_WAIT_MS_MAX 60000

void
migrate_parked_drop (server_t *self)
{
    zmsg_destroy (&self->parked);
}

static void
s_park (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
        uint32_t wait_ms)
{
    migrate_parked_drop (self);
    uint32_t limit = self->migration.param < S_EXPORT_WAIT_MS_MAX ? self->migration.param
                                                                  : S_EXPORT_WAIT_MS_MAX;
    self->parked = envelope;
    self->parked_header = *h;
    memcpy (self->parked_body, body, RL_MIGRATE_SIZE);
    self->parked_until_ms = zclock_mono () + (wait_ms < limit ? wait_ms : limit);
}

static zmsg_t *s_export (server_t *self, zmsg_t *envelope, const rl_header_t *h,
                         const uint8_t *body);

zmsg_t *
migrate_parked (server_t *self)
{
    //  Never while a backup holds the shard: served, the export would
    //  write SHIPPED into the hold (a drain may end in the very turn the
    //  hold arrived), and the cut would catch the source in the handover
    //  that the hold refuses, its final round on no other shard's cut.
    if (!self->parked || backup_holding (self)) {
        return NULL;
    }
    const rl_migrate_rec_t *state = &self->migration;
    bool waiting = state->state == RL_MIGRATE_FROZEN && state->role == RL_MIGRATE_SOURCE
                   && zclock_mono () < self->parked_until_ms;
    if (waiting) {
        int inflight = s_inflight (self, state);
        waiting = inflight != 0; //  -1 (memory): served now, answered busy
    }
    if (waiting) {
        return NULL;
    }
    zmsg_t *envelope = self->parked;
    self->parked = NULL;
    self->parked_serving = true;
    zmsg_t *reply = s_export (self, envelope, &self->parked_header, self->parked_body);
    self->parked_serving = false;
    assert (reply || !self->parked); //  never parked again
    return reply;
}

static zmsg_t *
s_export (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    rl_migrate_rec_t req;
    codec_decode_migrate (body, &req);
    if (req.entries_max == 0 || req.entries_max > RL_MIGRATE_ENTRIES_MAX
        || req.cursor.phase > RL_MIGRATE_PHASE_MAX) {
        return server_reply_new (self, envelope, h, RL_STATUS_MALFORMED, 0, 0, NULL);
    }
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (state->state < RL_MIGRATE_COPYING || state->state > RL_MIGRATE_SHIPPED
        || state->role != RL_MIGRATE_SOURCE || state->migration_id != req.migration_id) {
        return s_refuse (self, envelope, h, "no such migration with this shard as its source");
    }
    //  A round begins here (the first export, or one from a cursor whose
    //  round is DONE). Fresh: no export began that round number before
    //  (the source's record counts the rounds begun, in `chunks`, across
    //  restarts). Only a fresh start may be the final round: a cursor the
    //  target holds in the middle of a round begun twice may come from the
    //  earlier start (a second tool, an old run alive after `recover`), and
    //  a round begun before the freeze must never end as the final one.
    //  A cursor of a round this record never counted (none from before the
    //  count: 0; in SHIPPED every round from the final one on is as good):
    //  one round past the count is a round this record lost (a source
    //  promoted from an asynchronous standby, say): counted as begun now,
    //  never fresh. Further past (a stray export) it is refused, so that
    //  nothing counts rounds far ahead and keeps the tool's from ever
    //  being fresh.
    bool begins = req.cursor.phase == RL_MIGRATE_PHASE_DONE || s_cursor_zero (&req.cursor);
    bool counted = s_cursor_zero (&req.cursor) || state->chunks == 0
                   || state->state == RL_MIGRATE_SHIPPED || req.cursor.round < state->chunks;
    if ((req.cursor.phase == RL_MIGRATE_PHASE_DONE && req.cursor.round == UINT32_MAX)
        || (!counted && req.cursor.round > state->chunks)) {
        return s_refuse (self, envelope, h, "the cursor names a round this source never began");
    }
    if (!counted) {
        rl_warn ("migration %" PRIu64 ": round %" PRIu32 " began without a count here (lost): "
                 "counted now",
                 state->migration_id, req.cursor.round);
        //  The next round may have begun and been lost with it too: that one
        //  is counted as well, so the first fresh start is the one after.
        state->chunks = (uint64_t) req.cursor.round + 2;
        s_state_put (self);
    }
    uint32_t round = req.cursor.phase == RL_MIGRATE_PHASE_DONE ? req.cursor.round + 1 : 0;
    bool fresh = begins && (uint64_t) round + 1 > state->chunks;
    //  A round that begins frozen and drained is the final one: nothing in
    //  the arc can change any more, so it carries everything.
    if (req.cursor.phase == RL_MIGRATE_PHASE_DONE && state->state == RL_MIGRATE_FROZEN) {
        int inflight = s_inflight (self, state);
        if (inflight < 0) {
            return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
        }
        //  Drained means written too: phase 1 reads the records from the
        //  store, phase 3 the balances from memory, so a round that begins
        //  while this turn's batch holds writes (a decision that ended the
        //  drain a moment ago, say) is not the final one: its record would
        //  miss the round whose account carries its amount.
        inflight += store_batch_count (self->store) > 0;
        if (inflight > 0 && req.param > 0 && !self->parked_serving) {
            //  Asked to wait for the drain: answered by migrate_parked at
            //  the start of the turn after the one that ends it (or when
            //  the wait or the freeze ends), instead of a catch-up round
            //  now and polls after it.
            s_park (self, envelope, h, body, req.param);
            return NULL;
        }
        //  Begun again since it began final (a resend): still the final one.
        bool final = inflight == 0 && (fresh || self->migration_final == round + 1);
        if (inflight == 0 && !final) {
            rl_warn ("migration %" PRIu64 ": round %" PRIu32 " began before: not the final one",
                     state->migration_id, round);
        }
        self->migration_final = final ? round + 1 : 0;
        if (final) {
            //  Where the freeze's time goes (bench/README.md, "Rebalancing"):
            //  this line against "arc frozen" is the drain, as this shard saw it.
            rl_info ("migration %" PRIu64 ": the final round begins, %" PRId64
                     " ms after the freeze%s",
                     state->migration_id,
                     (int64_t) ((uint64_t) zclock_mono () - self->migration_frozen_ms),
                     self->parked_serving ? " (the export waited for the drain)" : "");
        }
    }
    size_t size = chunk_size (req.entries_max);
    uint8_t *buffer = malloc (size);
    if (!buffer) {
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    s_export_t x = {.server = self,
                    .state = state,
                    .out = buffer,
                    .cap = req.entries_max,
                    .origin = migrate_origin (self->options->name)};
    rl_migrate_cursor_t c = req.cursor;
    if (c.phase == RL_MIGRATE_PHASE_DONE) {
        c.phase = RL_MIGRATE_PHASE_TRANSFERS; //  a catch-up round
        c.round++;
        memset (c.account_key, 0, sizeof (c.account_key));
        s_round_begins (self, state, c.round, fresh);
    } else if (s_cursor_zero (&c)) {
        s_round_begins (self, state, 0, fresh);
    }
    if (fresh && state->state != RL_MIGRATE_SHIPPED) {
        //  Stored with this turn, before the chunk goes out. Once SHIPPED it
        //  stays the final round's number + 1: every round from it on began
        //  frozen and drained, every one before it may not have.
        state->chunks = (uint64_t) round + 1;
        s_state_put (self);
        RL_FAILPOINT (MIGRATE_ROUND_BEGUN);
    }
    bool final_shipped = state->state == RL_MIGRATE_SHIPPED && c.round + 1 >= state->chunks;
    //  Phase 3 sends the round's list when this process made it.
    bool listed = self->round_keys && self->track_id == state->migration_id
                  && self->round_listed == c.round + 1;
    int rc = 0;
    while (rc == 0 && c.phase != RL_MIGRATE_PHASE_DONE && !s_export_full (&x)) {
        switch (c.phase) {
            case RL_MIGRATE_PHASE_TRANSFERS:
                rc = s_export_transfers (&x, &c);
                break;
            case RL_MIGRATE_PHASE_IMPORTED:
                rc = s_export_imported (&x, &c);
                break;
            case RL_MIGRATE_PHASE_PENDING_BY_ID:
                //  A pass an older source began (by id): sent again from the
                //  start, by point; the target keeps one entry per key.
                c.phase = RL_MIGRATE_PHASE_PENDING;
                memset (c.account_key, 0, sizeof (c.account_key));
                break;
            case RL_MIGRATE_PHASE_PENDING:
                rc = s_export_pending (&x, &c);
                break;
            default:
                if (listed) {
                    s_export_listed (&x, &c);
                } else {
                    rc = s_export_accounts (&x, &c);
                }
                if (rc == 0 && c.phase == RL_MIGRATE_PHASE_DONE
                    && (final_shipped
                        || (state->state == RL_MIGRATE_FROZEN
                            && self->migration_final == c.round + 1))) {
                    //  The final round (or one after it): the pending transfers too.
                    c.phase = RL_MIGRATE_PHASE_PENDING;
                    memset (c.account_key, 0, sizeof (c.account_key));
                }
                break;
        }
    }
    if (rc != 0) {
        free (buffer);
        rl_error ("migration %" PRIu64 ": export failed reading the store", state->migration_id);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    chunk_t chunk = {.migration_id = state->migration_id,
                     .seq = req.chunks + 1,
                     .entry_count = x.count,
                     .from = req.cursor,
                     .to = c};
    bool round_done = c.phase == RL_MIGRATE_PHASE_DONE;
    if (round_done && state->state == RL_MIGRATE_FROZEN && self->migration_final == c.round + 1) {
        state->state = RL_MIGRATE_SHIPPED; //  never unfreezes by itself from here
        s_state_put (self);
        RL_FAILPOINT (MIGRATE_SHIPPED);
        rl_info ("migration %" PRIu64 ": the final round is out (%" PRIu64 " chunks)",
                 state->migration_id, chunk.seq);
    }
    if (round_done && state->state == RL_MIGRATE_SHIPPED && c.round + 1 >= state->chunks) {
        chunk.flags = RL_CHUNK_FINAL; //  again when resent: nothing changes once shipped
    }
    chunk_encode_header (&chunk, buffer);
    size_t chunk_bytes = chunk_size (x.count);
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 1, chunk_bytes, &out);
    if (reply) {
        memcpy (out, buffer, chunk_bytes);
    }
    free (buffer);
    return reply;
}

//  The target's stage --------------------------------------------------------------

//  The 'A' and 'P' keys of the imported family that the target's migration
//  wrote for its arc, mirrored in memory as the store holds them (migrate.c,
//  "THE STAGE"): the commit takes them from here, so that it reads nothing
//  from the store inside the freeze, and the final chunk's import may share
//  its turn (its writes are not in the store before the turn ends).
#define S_STAGE_PENDING_SIZE (IMPORTED_PENDING_KEY_SIZE + RL_TRANSFER_SIZE) //  key, value

typedef struct migrate_stage_t {
    uint64_t migration_id; //  the target migration mirrored (0: none: load it from the store)
    idmap_t *index;        //  account id -> its slot in accounts
    uint8_t *accounts;     //  'A' values, RL_ACCOUNT_SIZE each, in the order first staged
    size_t account_count, account_cap;
    uint8_t *pending; //  'P' keys and values, S_STAGE_PENDING_SIZE each, in the order staged
    size_t pending_count, pending_cap;
    size_t others; //  'A' keys of the store outside the arc (none is expected)
} migrate_stage_t;

void
migrate_stage_drop (server_t *self)
{
    migrate_stage_t *st = self->stage;
    if (st) {
        idmap_destroy (&st->index);
        free (st->accounts);
        free (st->pending);
        free (st);
        self->stage = NULL;
    }
}

//  Empties the stage, mirroring `migration_id` (0: nothing mirrored).
static void
s_stage_reset (server_t *self, uint64_t migration_id)
{
    migrate_stage_t *st = self->stage;
    if (st) {
        idmap_clear (st->index);
        st->account_count = st->pending_count = st->others = 0;
        st->migration_id = migration_id;
    }
}

static migrate_stage_t *
s_stage (server_t *self)
{
    if (!self->stage) {
        migrate_stage_t *st = calloc (1, sizeof (*st));
        if (st && !(st->index = idmap_new (1024))) {
            free (st);
            st = NULL;
        }
        self->stage = st;
    }
    return self->stage;
}

//  Room for `accounts` more accounts and `pending` more pending entries.
static int
s_stage_reserve (migrate_stage_t *st, size_t accounts, size_t pending)
{
    if (st->account_count + accounts > st->account_cap) {
        size_t cap = st->account_cap ? st->account_cap : 1024;
        while (cap < st->account_count + accounts) {
            cap *= 2;
        }
        uint8_t *more = realloc (st->accounts, cap * RL_ACCOUNT_SIZE);
        if (!more) {
            return -1;
        }
        st->accounts = more;
        st->account_cap = cap;
    }
    if (st->pending_count + pending > st->pending_cap) {
        size_t cap = st->pending_cap ? st->pending_cap : 256;
        while (cap < st->pending_count + pending) {
            cap *= 2;
        }
        uint8_t *more = realloc (st->pending, cap * S_STAGE_PENDING_SIZE);
        if (!more) {
            return -1;
        }
        st->pending = more;
        st->pending_cap = cap;
    }
    return 0;
}

//  A staged account (its 'A' value), replacing the one of its id. Room
//  reserved first; -1 when the index cannot grow (memory).
static int
s_stage_account (migrate_stage_t *st, rl_id_t id, const uint8_t *value)
{
    uint64_t slot = 0;
    if (!idmap_get (st->index, id, &slot)) {
        assert (st->account_count < st->account_cap);
        slot = st->account_count;
        if (idmap_put (st->index, id, slot) != 0) {
            return -1;
        }
        st->account_count++;
    }
    memcpy (st->accounts + slot * RL_ACCOUNT_SIZE, value, RL_ACCOUNT_SIZE);
    return 0;
}

//  A staged pending transfer (its 'P' key and value); room reserved first.
//  A key staged again is appended: the commit keeps the last (s_staged_pending).
static void
s_stage_pending (migrate_stage_t *st, const uint8_t *key, const uint8_t *value)
{
    assert (st->pending_count < st->pending_cap);
    uint8_t *at = st->pending + st->pending_count++ * S_STAGE_PENDING_SIZE;
    memcpy (at, key, IMPORTED_PENDING_KEY_SIZE);
    memcpy (at + IMPORTED_PENDING_KEY_SIZE, value, RL_TRANSFER_SIZE);
}

//  migrate.c writes 'A' or 'P' keys into the batch being built: until it is
//  written, the store does not hold what the stage must mirror.
static void
s_stage_written (server_t *self)
{
    self->stage_written_seq = outq_batch_seq (self->outq);
}

//  Loads the stage of the target's migration from the store: its 'A' keys
//  in the arc (counting those outside it) and every 'P' key. Only when
//  the batch being built holds no 'A' or 'P' write (s_stage_written), so
//  that the store holds all of them. 0; -1 not now, storage or memory (the
//  stage then mirrors nothing).
static int
s_stage_load (server_t *self, const rl_migrate_rec_t *state)
{
    migrate_stage_t *st = s_stage (self);
    if (!st || self->stage_written_seq == outq_batch_seq (self->outq)) {
        return -1;
    }
    s_stage_reset (self, 0);
    store_iter_t *it = store_iter_new (self->store, STORE_CF_IMPORTED);
    if (!it) {
        return -1;
    }
    int rc = 0;
    uint8_t prefix = IMPORTED_ACCOUNT;
    for (store_iter_seek (it, &prefix, 1); rc == 0 && store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key[0] != IMPORTED_ACCOUNT) {
            break;
        }
        if (key_size != 1 + RL_ID_SIZE || value_size != RL_ACCOUNT_SIZE) {
            rc = -1;
            break;
        }
        rl_id_t id = codec_decode_id (key + 1);
        if (!imported_in_arc (state->arc_start, state->arc_end, id)) {
            st->others++; //  not this arc's (none is expected): left as it is
        } else if (s_stage_reserve (st, 1, 0) != 0 || s_stage_account (st, id, value) != 0) {
            rc = -1;
        }
    }
    prefix = IMPORTED_PENDING;
    for (store_iter_seek (it, &prefix, 1); rc == 0 && store_iter_valid (it); store_iter_next (it)) {
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key[0] != IMPORTED_PENDING) {
            break;
        }
        if (key_size != IMPORTED_PENDING_KEY_SIZE || value_size != RL_TRANSFER_SIZE
            || s_stage_reserve (st, 0, 1) != 0) {
            rc = -1;
            break;
        }
        s_stage_pending (st, key, value);
    }
    store_iter_destroy (&it);
    if (rc != 0 || store_failed (self->store)) {
        s_stage_reset (self, 0);
        return -1;
    }
    st->migration_id = state->migration_id;
    return 0;
}

//  The stage of the target's migration, loaded when it mirrors nothing yet
//  (a restart, a memory failure); NULL when it cannot be now (the turn
//  holds writes, or storage or memory failed): the caller answers busy.
static migrate_stage_t *
s_stage_ready (server_t *self, const rl_migrate_rec_t *state)
{
    migrate_stage_t *st = s_stage (self);
    if (st && st->migration_id == state->migration_id) {
        return st;
    }
    if (!st || s_stage_load (self, state) != 0) {
        rl_warn ("migration %" PRIu64 ": the staged accounts are not in memory yet: busy",
                 state->migration_id);
        return NULL;
    }
    return st;
}

//  Import ------------------------------------------------------------------------

static zmsg_t *
s_import (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
          size_t body_size)
{
    chunk_t chunk;
    rl_status_t status = chunk_decode (body, body_size, &chunk);
    if (status != RL_STATUS_OK) {
        self->malformed++;
        rl_warn ("migration: request %" PRIu64 ": a chunk that does not decode (%s)", h->request_id,
                 rl_status_name (status));
        return server_reply_new (self, envelope, h, status, 0, 0, NULL);
    }
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (state->state < RL_MIGRATE_COPYING || state->role != RL_MIGRATE_TARGET
        || state->migration_id != chunk.migration_id) {
        return s_refuse (self, envelope, h, "no such migration with this shard as its target");
    }
    if (chunk.seq <= state->chunks) {
        return s_reply_state (self, envelope, h); //  imported already: nothing changes
    }
    if (state->state != RL_MIGRATE_COPYING) {
        return s_refuse (self, envelope, h, "a chunk after the final one");
    }
    if (chunk.seq != state->chunks + 1 || !chunk_cursor_eq (&chunk.from, &state->cursor)) {
        return s_refuse (self, envelope, h, "a chunk out of order");
    }
    uint64_t records = 0, accounts = 0, pending = 0;
    for (uint32_t i = 0; i < chunk.entry_count; i++) {
        chunk_entry_t e;
        chunk_entry (&chunk, i, &e);
        if (!imported_entry_fits (state->arc_start, state->arc_end, &e)) {
            return s_refuse (self, envelope, h, "an entry outside the arc");
        }
        bool in_phase = e.kind != RL_CHUNK_PENDING || chunk.to.phase == RL_MIGRATE_PHASE_PENDING
                        || chunk.to.phase == RL_MIGRATE_PHASE_PENDING_BY_ID
                        || chunk.to.phase == RL_MIGRATE_PHASE_DONE;
        if (!in_phase) {
            return s_refuse (self, envelope, h, "a pending transfer outside the pending phase");
        }
        records += e.kind != RL_CHUNK_ACCOUNT;
        accounts += e.kind == RL_CHUNK_ACCOUNT;
        pending += e.kind == RL_CHUNK_PENDING;
    }
    //  The stage takes the chunk's accounts and pending transfers first: if
    //  memory runs out there, nothing is written and the stage is loaded
    //  again from the store when the tool resends the chunk.
    migrate_stage_t *st = s_stage_ready (self, state);
    if (!st || s_stage_reserve (st, accounts, pending) != 0) {
        s_stage_reset (self, 0);
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    for (uint32_t i = 0; i < chunk.entry_count; i++) {
        chunk_entry_t e;
        chunk_entry (&chunk, i, &e);
        uint8_t value[RL_ACCOUNT_SIZE]; //  as imported_put writes it
        if (e.kind == RL_CHUNK_ACCOUNT) {
            codec_encode_account (&e.account, value);
            if (s_stage_account (st, e.account.id, value) != 0) {
                //  Nothing is written yet: the tool sends the chunk again,
                //  and the stage is loaded again from the store first.
                s_stage_reset (self, 0);
                return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
            }
        }
    }
    int room = accounts > 0 ? ledger_reserve_accounts (self->ledger, st->account_count) : 0;
    if (room == -2) {
        //  The commit will be refused unless a restart closes the holes
        //  of removed accounts first: said now, while the copy runs.
        rl_warn ("migration %" PRIu64 ": %zu staged accounts do not fit under "
                 "RL_SHARD_ACCOUNTS_MAX here",
                 state->migration_id, st->account_count);
    } else if (room != 0) {
        rl_debug ("migration %" PRIu64 ": no room made for %zu staged accounts yet",
                  state->migration_id, st->account_count); //  the handover grows the table
    }
    s_stage_written (self);
    if (chunk.from.phase == RL_MIGRATE_PHASE_DONE) {
        //  A round begins: the pending transfers an earlier round staged
        //  (one whose freeze did not last) are dropped, so that only the
        //  final round's stand (imported.c, 'P'). Before this chunk's puts.
        uint8_t from = IMPORTED_PENDING, to = IMPORTED_PENDING + 1;
        store_batch_delete_range (self->store, STORE_CF_IMPORTED, &from, 1, &to, 1);
        st->pending_count = 0;
    }
    for (uint32_t i = 0; i < chunk.entry_count; i++) {
        chunk_entry_t e;
        chunk_entry (&chunk, i, &e);
        if (e.kind == RL_CHUNK_PENDING) {
            uint8_t key[IMPORTED_PENDING_KEY_SIZE], value[RL_TRANSFER_SIZE];
            imported_pending_key (&e.transfer, key);
            codec_encode_transfer (&e.transfer, value);
            s_stage_pending (st, key, value);
        }
    }
    for (uint32_t i = 0; i < chunk.entry_count; i++) {
        chunk_entry_t e;
        chunk_entry (&chunk, i, &e);
        imported_put (self->store, state->arc_start, state->arc_end, &e);
        if (e.kind == RL_CHUNK_TRANSFER) {
            ledger_note_imported_id (self->ledger, e.transfer.id); //  the id filter (journal.c)
        }
    }
    state->cursor = chunk.to;
    state->chunks = chunk.seq;
    if ((chunk.flags & RL_CHUNK_FINAL) && chunk.to.phase == RL_MIGRATE_PHASE_DONE) {
        state->state = RL_MIGRATE_SHIPPED; //  everything is here: the handover may come
    }
    state->records += records;
    state->accounts += accounts;
    s_state_put (self);
    RL_FAILPOINT (MIGRATE_IMPORT);
    self->reply_fp = RL_FP_MIGRATE_IMPORT_SYNCED;
    if (chunk.entry_count > 0) {
        ledger_set_imported (self->ledger);
    }
    return s_reply_state (self, envelope, h);
}

//  Freeze, drain, handover --------------------------------------------------------

#define S_FREEZE_MS_DEFAULT 1000   //  --freeze-max-ms of the tool
#define S_FREEZE_MS_MAX     600000 //  a freeze longer than this is refused

//  A pending transfer, its post, void or expiry (pending.h).
#define S_PENDING_KINDS                                                                            \
    (RL_TRANSFER_PENDING | RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER)

//  Two-phase entries that touch the arc: live attempts whose debit account
//  is in it, or whose credit account is (a linked chain's member held
//  here: coordinator), prepared records whose credit account is
//  (participant). -1 when memory ran out. An attempt of a pending kind (a
//  cross-shard pending transfer, its post, void or expiry) whose debit
//  account is in the arc counts until its decision is acknowledged: until
//  then the credit shard has not created, or still claims, its credit side
//  of the pending transfer, which the debit side's next owner must find
//  free (it may be that owner itself: docs/rebalance.md, "Pending
//  transfers move"). Heuristic records are not
//  listed: they block the freeze instead. A decision logged but not yet
//  acknowledged is not waited for: the batch that decided it posted (or
//  released) the debit and stored the record, so the final round carries
//  the account as the decision left it; the entry stays in this shard's
//  coordinator log, which never moves, and this shard goes on delivering
//  it (decisions, acknowledgements and outcome queries are never frozen,
//  and an acknowledgement only deletes the entry).
static int
s_inflight (server_t *self, const rl_migrate_rec_t *state)
{
    rl_in_doubt_rec_t *list = malloc (RL_IN_DOUBT_RECORDS_MAX * sizeof (rl_in_doubt_rec_t));
    if (!list) {
        return -1;
    }
    size_t count = ledger_in_doubt (self->ledger, list, RL_IN_DOUBT_RECORDS_MAX);
    int touching = 0;
    for (size_t i = 0; i < count; i++) {
        const rl_transfer_t *t = &list[i].prepare.transfer;
        bool coordinator = list[i].prepare.reserved[1] == RL_ROLE_COORDINATOR;
        //  A chain's debit leg of a pending kind is not one: its credit side
        //  is this shard's from the decision, and its debit side's owner is
        //  another shard's (docs/two-phase.md, "Debit legs").
        bool pending_kind = (t->flags & S_PENDING_KINDS) != 0 && !(t->flags & RL_TRANSFER_TP_LEGS);
        if (coordinator && list[i].prepare.tp.state != RL_TP_PENDING && !pending_kind) {
            continue; //  decided: its debit is posted or released, only the delivery is left
        }
        rl_id_t id = coordinator ? t->debit_account_id : t->credit_account_id;
        touching += imported_in_arc (state->arc_start, state->arc_end, id);
        //  A live attempt's credit account too: a linked chain's member
        //  held here reserves its credit on this shard until its group is
        //  decided (coordinator.c, "Groups"); any other attempt's is not
        //  this shard's, and waiting for it costs at most its timeout.
        touching += coordinator && !imported_in_arc (state->arc_start, state->arc_end, id)
                    && imported_in_arc (state->arc_start, state->arc_end, t->credit_account_id);
        //  A prepared debit leg's debit account (a chain of another shard
        //  reserves it here: docs/two-phase.md, "Debit legs").
        touching += !coordinator && (t->flags & RL_TRANSFER_TP_LEGS)
                    && imported_in_arc (state->arc_start, state->arc_end, t->debit_account_id);
    }
    free (list);
    if (count == RL_IN_DOUBT_RECORDS_MAX && touching == 0) {
        touching = 1; //  a full listing may hide one: not drained
    }
    return touching;
}

static void
s_freeze (server_t *self, rl_migrate_rec_t *state)
{
    arcs_t *arcs = ledger_arcs (self->ledger);
    if (arcs) {
        arcs_freeze (arcs, state->arc_start, state->arc_end);
    }
    self->migration_frozen_ms = (uint64_t) zclock_mono ();
    self->migration_final = 0;
}

static void
s_thaw (server_t *self)
{
    arcs_t *arcs = ledger_arcs (self->ledger);
    if (arcs) {
        arcs_thaw (arcs);
    }
    self->migration_final = 0;
}

//  The stored migration, when it matches the request's id and this role.
static rl_migrate_rec_t *
s_mine (server_t *self, const rl_migrate_rec_t *req, uint32_t role)
{
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0 || state->state == RL_MIGRATE_NONE
        || state->migration_id != req->migration_id || state->role != role) {
        return NULL;
    }
    return state;
}

static zmsg_t *
s_freeze_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const rl_migrate_rec_t *req)
{
    rl_migrate_rec_t *state = s_mine (self, req, RL_MIGRATE_SOURCE);
    if (req->param > S_FREEZE_MS_MAX) {
        return server_reply_new (self, envelope, h, RL_STATUS_MALFORMED, 0, 0, NULL);
    }
    rl_status_t leased = mlease_check (self, req->migration_id, "freeze"); //  mlease.h
    if (leased != RL_STATUS_OK) {
        return server_reply_new (self, envelope, h, leased, 0, 0, NULL);
    }
    if (!state || state->state < RL_MIGRATE_COPYING || state->state > RL_MIGRATE_SHIPPED) {
        return s_refuse (self, envelope, h, "no such migration to freeze on this source");
    }
    size_t heuristics = ledger_heuristics_in_arc (self->ledger, state->arc_start, state->arc_end);
    if (state->state == RL_MIGRATE_COPYING && heuristics > 0
        && req->entries_max != RL_MIGRATE_HEURISTICS_RECONCILED) {
        //  A heuristic record never moves: its account must not leave it
        //  behind before an operator has reconciled it.
        rl_warn ("migration %" PRIu64 ": %zu heuristic records in the arc: reconcile them first",
                 state->migration_id, heuristics);
        return s_refuse (self, envelope, h, "the arc holds heuristic records");
    }
    if (state->state == RL_MIGRATE_COPYING) {
        state->state = RL_MIGRATE_FROZEN;
        state->param = req->param ? req->param : S_FREEZE_MS_DEFAULT;
        s_state_put (self);
        s_freeze (self, state);
        RL_FAILPOINT (MIGRATE_FREEZE);
        rl_info ("migration %" PRIu64 ": arc frozen (at most %" PRIu32 " ms before it ships)",
                 state->migration_id, state->param);
    }
    return s_reply_state (self, envelope, h);
}

static zmsg_t *
s_drain_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const rl_migrate_rec_t *req)
{
    rl_migrate_rec_t *state = s_mine (self, req, RL_MIGRATE_SOURCE);
    if (!state || state->state < RL_MIGRATE_COPYING || state->state > RL_MIGRATE_SHIPPED) {
        return s_refuse (self, envelope, h, "no such migration on this source");
    }
    int inflight = s_inflight (self, state);
    if (inflight < 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    rl_migrate_rec_t answer = *state;
    answer.param = (uint32_t) inflight;
    size_t heuristics = ledger_heuristics_in_arc (self->ledger, state->arc_start, state->arc_end);
    answer.entries_max = heuristics > UINT32_MAX ? UINT32_MAX : (uint32_t) heuristics;
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 1, RL_MIGRATE_SIZE, &out);
    if (reply) {
        codec_encode_migrate (&answer, out);
    }
    return reply;
}

static zmsg_t *
s_unfreeze_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const rl_migrate_rec_t *req)
{
    rl_migrate_rec_t *state = s_mine (self, req, RL_MIGRATE_SOURCE);
    if (!state || state->state < RL_MIGRATE_COPYING || state->state > RL_MIGRATE_FROZEN) {
        return s_refuse (self, envelope, h, "nothing to unfreeze (or the final round is out)");
    }
    if (state->state == RL_MIGRATE_FROZEN) {
        state->state = RL_MIGRATE_COPYING;
        state->param = 0;
        s_state_put (self);
        RL_FAILPOINT (MIGRATE_UNFREEZE);
        s_thaw (self);
        rl_info ("migration %" PRIu64 ": arc unfrozen", state->migration_id);
    }
    return s_reply_state (self, envelope, h);
}

//  The pending transfers the final round staged ('P'), with the side this
//  shard holds of each (imported_pending_side).
typedef struct {
    struct {
        rl_transfer_t t;
        uint8_t side;
    } * list;
    size_t count, cap;
    size_t live;     //  of them still pending: what RL_SHARD_PENDING_MAX counts
    const char *why; //  the refusal (-2)
} s_staged_pending_t;

static int
s_account_cmp (const void *a, const void *b)
{
    const rl_account_t *x = a, *y = b;
    return memcmp (&x->id, &y->id, sizeof (x->id));
}

//  The staged pending entries in key order, each key once (the last one
//  staged: what the store holds), as indexes into st->pending.
static const migrate_stage_t *s_sort_stage; //  qsort's context (the loop is single-threaded)

static int
s_pending_index_cmp (const void *a, const void *b)
{
    size_t x = *(const size_t *) a, y = *(const size_t *) b;
    int c = memcmp (s_sort_stage->pending + x * S_STAGE_PENDING_SIZE,
                    s_sort_stage->pending + y * S_STAGE_PENDING_SIZE, IMPORTED_PENDING_KEY_SIZE);
    return c ? c : (x < y ? -1 : x > y);
}

typedef struct {
    bool credit;
    rl_id_t key;
} s_live_key_t;

static int
s_live_key_cmp (const void *a, const void *b)
{
    const s_live_key_t *x = a, *y = b;
    if (x->credit != y->credit) {
        return x->credit ? 1 : -1;
    }
    return memcmp (&x->key, &y->key, sizeof (x->key));
}

//  No two live entries of the list take one key of the live table; an
//  entry of both sides takes its credit side's key too (a credit-side
//  entry of the same id and debit account beside it would be a second
//  credit side of one transfer, never resolved). 0; -2 refused (p->why);
//  -1 memory.
static int
s_staged_keys_distinct (s_staged_pending_t *p)
{
    s_live_key_t *keys = malloc ((p->count ? 2 * p->count : 1) * sizeof (*keys));
    if (!keys) {
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++) {
        if ((p->list[i].t.reserved & 0xff) == PENDING_STATE_PENDING) {
            keys[n].key = pending_live_key (&p->list[i].t, p->list[i].side, &keys[n].credit);
            n++;
            if (p->list[i].side == PENDING_SIDE_BOTH) {
                keys[n].key = pending_live_key (&p->list[i].t, PENDING_SIDE_CREDIT,
                                                &keys[n].credit);
                n++;
            }
        }
    }
    qsort (keys, n, sizeof (*keys), s_live_key_cmp);
    int rc = 0;
    for (size_t i = 1; rc == 0 && i < n; i++) {
        if (s_live_key_cmp (&keys[i - 1], &keys[i]) == 0) {
            p->why = "two staged pending transfers take one key (one id with two debit "
                     "accounts, or a second credit side of one transfer)";
            rc = -2;
        }
    }
    free (keys);
    return rc;
}

//  Reads them (from the stage, in the order the store holds them) and
//  checks them against the staged accounts (sorted here by id when any
//  pending transfer is staged), before anything changes: each fits the
//  arc and names staged accounts on its side, none is live here already
//  (one id, two debit accounts), no two live ones take one key of the live
//  table (one id staged with two debit accounts), the live ones fit under
//  RL_SHARD_PENDING_MAX (a resolved state takes no live entry: an arc
//  with any number of them moves), and every staged account's debits_pending and
//  credits_pending are exactly what they reserve on it (sums that do not
//  wrap). Only what the sender sent can fail these (a source's own table
//  never holds such entries): refused, so that the install, which must not
//  fail, never meets them. 0; -2 refused (p->why); -1 memory.
static int
s_staged_pending (server_t *self, const rl_migrate_rec_t *state, const migrate_stage_t *st,
                  rl_account_t *staged, size_t count, s_staged_pending_t *p)
{
    //  Sorted for the lookups of the pending transfers' accounts alone:
    //  without any, every staged account must hold no pending amount, and
    //  the sort is skipped (22-25 ms of the handover's time in the loop,
    //  inside the freeze, for an arc of 75,000 accounts).
    if (count > 1 && st->pending_count > 0) {
        qsort (staged, count, sizeof (*staged), s_account_cmp);
    }
    uint64_t *sums = calloc (2 * (count ? count : 1), sizeof (uint64_t)); //  debits, credits
    size_t *order = malloc ((st->pending_count ? st->pending_count : 1) * sizeof (size_t));
    int rc = sums && order ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < st->pending_count; i++) {
        order[i] = i;
    }
    if (rc == 0 && st->pending_count > 1) {
        s_sort_stage = st;
        qsort (order, st->pending_count, sizeof (*order), s_pending_index_cmp);
        s_sort_stage = NULL;
    }
    for (size_t i = 0; rc == 0 && i < st->pending_count; i++) {
        const uint8_t *key = st->pending + order[i] * S_STAGE_PENDING_SIZE;
        if (i + 1 < st->pending_count
            && memcmp (key, st->pending + order[i + 1] * S_STAGE_PENDING_SIZE,
                       IMPORTED_PENDING_KEY_SIZE)
                   == 0) {
            continue; //  staged again later: the later one stands, as in the store
        }
        rl_transfer_t t;
        codec_decode_transfer (key + IMPORTED_PENDING_KEY_SIZE, &t);
        int side = imported_pending_side (state->arc_start, state->arc_end, &t);
        rl_account_t dr = {.id = t.debit_account_id}, cr = {.id = t.credit_account_id};
        rl_account_t *d = count ? bsearch (&dr, staged, count, sizeof (*staged), s_account_cmp)
                                : NULL;
        rl_account_t *c = count ? bsearch (&cr, staged, count, sizeof (*staged), s_account_cmp)
                                : NULL;
        if (side < 0 || (side != PENDING_SIDE_CREDIT && !d) || (side != PENDING_SIDE_DEBIT && !c)) {
            p->why = "a staged pending transfer names no staged account of its side";
            rc = -2;
            break;
        }
        bool live = (t.reserved & 0xff) == PENDING_STATE_PENDING;
        if (live && ledger_pending_install_check (self->ledger, &t, (uint8_t) side) == -1) {
            rl_warn ("migration %" PRIu64 ": pending transfer %016" PRIx64 "%016" PRIx64
                     " is pending here already (its id reused with another debit account)",
                     state->migration_id, t.id.hi, t.id.lo);
            p->why = "a pending transfer of the arc is pending here already";
            rc = -2;
            break;
        }
        //  What it reserves on its staged accounts, checked against their
        //  pending amounts below.
        uint64_t *debits = live && side != PENDING_SIDE_CREDIT ? &sums[2 * (size_t) (d - staged)]
                                                               : NULL;
        uint64_t *credits = live && side != PENDING_SIDE_DEBIT
                                ? &sums[2 * (size_t) (c - staged) + 1]
                                : NULL;
        if ((debits && __builtin_add_overflow (*debits, t.amount, debits))
            || (credits && __builtin_add_overflow (*credits, t.amount, credits))) {
            p->why = "the staged pending transfers of an account sum beyond 2^64 - 1";
            rc = -2;
            break;
        }
        if (p->count == p->cap) {
            size_t grown = p->cap ? p->cap * 2 : 256;
            void *more = realloc (p->list, grown * sizeof (*p->list));
            if (!more) {
                rc = -1;
                break;
            }
            p->list = more;
            p->cap = grown;
        }
        p->list[p->count].t = t;
        p->list[p->count++].side = (uint8_t) side;
        p->live += live;
    }
    free (order);
    if (rc == 0) {
        rc = s_staged_keys_distinct (p);
    }
    if (rc == 0 && ledger_pending_taken (self->ledger) + p->live > RL_SHARD_PENDING_MAX) {
        p->why = "the pending transfers of the arc do not fit under RL_SHARD_PENDING_MAX here";
        rc = -2;
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (staged[i].debits_pending != sums[2 * i]
            || staged[i].credits_pending != sums[2 * i + 1]) {
            rl_error ("migration %" PRIu64 ": account %016" PRIx64 "%016" PRIx64 " staged with "
                      "pending %" PRIu64 "/%" PRIu64
                      ", its staged pending transfers sum to %" PRIu64 "/%" PRIu64,
                      state->migration_id, staged[i].id.hi, staged[i].id.lo,
                      staged[i].debits_pending, staged[i].credits_pending, sums[2 * i],
                      sums[2 * i + 1]);
            p->why = "the staged pending transfers do not sum to the staged accounts' pending";
            rc = -2;
        }
    }
    free (sums);
    return rc;
}

//  The target's handover: it serves the step's ring (loaded before), which
//  gives it the arc, not received yet; in one batch the staged accounts
//  become live, the arc becomes received, the state HANDED_OVER. The
//  staged accounts and pending transfers come from the stage (memory): the
//  commit reads nothing from the store, so the final chunk's import may
//  come in the same turn.
static zmsg_t *
s_commit_target (server_t *self, zmsg_t *envelope, const rl_header_t *h, rl_migrate_rec_t *state)
{
    arcs_t *arcs = ledger_arcs (self->ledger);
    if (state->state != RL_MIGRATE_SHIPPED || !arcs
        || s_ring_share (self, state->arc_start, state->arc_end) != RING_SHARE_ALL
        || arcs_arc_received (arcs, state->arc_start, state->arc_end) != RING_SHARE_NONE) {
        return s_refuse (self, envelope, h,
                         "commit needs the final chunk and the step's ring giving the arc here");
    }
    int64_t began_us = zclock_usecs ();
    migrate_stage_t *st = s_stage_ready (self, state);
    if (!st) {
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    //  First every check, then every change, so a refusal changes nothing.
    size_t count = st->account_count, others = st->others;
    rl_account_t *staged = malloc ((count ? count : 1) * sizeof (*staged));
    if (!staged) {
        rl_error ("migration %" PRIu64 ": no memory to check the handover of %zu accounts",
                  state->migration_id, count);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        rl_account_t here;
        codec_decode_account (st->accounts + i * RL_ACCOUNT_SIZE, &staged[i]);
        ledger_lookup_accounts (self->ledger, &staged[i].id, 1, &here);
        if (here.timestamp != 0 || staged[i].debits_reserved || staged[i].credits_reserved) {
            rc = -2; //  held here already, or something still in escrow
        }
    }
    if (rc == -2) {
        free (staged);
        return s_refuse (self, envelope, h, "an account of the arc is held here or in escrow");
    }
    s_staged_pending_t pend = {0};
    if (rc == 0) {
        rc = s_staged_pending (self, state, st, staged, count, &pend);
    }
    if (rc == -2) {
        free (staged);
        free (pend.list);
        return s_refuse (self, envelope, h, pend.why);
    }
    if (rc != 0) {
        free (staged);
        free (pend.list);
        rl_error ("migration %" PRIu64 ": no memory to check the handover's pending transfers",
                  state->migration_id);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    //  Room for the arc's accounts, made before anything changes: past
    //  RL_SHARD_ACCOUNTS_MAX (the holes of accounts this shard gave away
    //  count until a restart closes them) the install would fail halfway
    //  and fail the shard, at every commit again.
    rc = count > 0 ? ledger_reserve_accounts (self->ledger, count) : 0;
    if (rc != 0) {
        free (staged);
        free (pend.list);
        if (rc == -2) {
            return s_refuse (self, envelope, h,
                             "the arc's accounts do not fit under RL_SHARD_ACCOUNTS_MAX here");
        }
        rl_error ("migration %" PRIu64 ": no memory for the handover of %zu accounts",
                  state->migration_id, count);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    s_stage_written (self); //  from here on the batch changes what is staged
    //  THE HANDOVER'S ACCOUNTS: when every staged key is the arc's, the
    //  accounts are adopted, their staged copies staying their durable
    //  ones until the next checkpoint writes them (ledger.c, "ADOPTED
    //  ACCOUNTS"): the batch of the freeze holds a few keys, not the arc.
    //  Otherwise (keys of no arc of this migration, none expected) each is
    //  written into the accounts family and its staged copy deleted.
    bool adopt = others == 0 && count > 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        //  Its pending amounts come back with the transfers installed below.
        staged[i].debits_pending = staged[i].credits_pending = 0;
        rc = adopt ? ledger_adopt_account (self->ledger, &staged[i])
                   : ledger_install_account (self->ledger, &staged[i]);
        if (rc == 0 && i == count / 2 && RL_FAILPOINT (MIGRATE_HANDOVER_ALLOC) != 0) {
            rc = -1; //  test: memory ran out with half of the arc installed
        }
        if (rc == 0 && others > 0) {
            uint8_t key[1 + RL_ID_SIZE] = {IMPORTED_ACCOUNT};
            codec_encode_id (staged[i].id, key + 1);
            store_batch_delete (self->store, STORE_CF_IMPORTED, key, sizeof (key));
        }
    }
    size_t live = 0;
    for (size_t i = 0; i < pend.count && rc == 0; i++) {
        rc = ledger_pending_install (self->ledger, &pend.list[i].t, pend.list[i].side);
        live += (pend.list[i].t.reserved & 0xff) == PENDING_STATE_PENDING;
        if (rc == 1) {
            rl_warn ("migration %" PRIu64 ": the state of resolved pending transfer %016" PRIx64
                     "%016" PRIx64 " is not kept: a live one of its id holds its key here",
                     state->migration_id, pend.list[i].t.id.hi, pend.list[i].t.id.lo);
            rc = 0;
        }
    }
    if (rc == 0 && st->pending_count > 0) {
        uint8_t from = IMPORTED_PENDING, to = IMPORTED_PENDING + 1; //  every one is the arc's
        store_batch_delete_range (self->store, STORE_CF_IMPORTED, &from, 1, &to, 1);
    }
    size_t installs = count;
    free (staged);
    free (pend.list);
    if (rc != 0 || arcs_mark_received (arcs, state->arc_start, state->arc_end) != 0) {
        //  Memory ran out halfway: accounts or pending transfers are in
        //  memory that neither this batch nor a checkpoint may make
        //  durable. The shard fails (its batch is not written, no
        //  checkpoint runs); a restart recovers the target as it was
        //  before this turn, the arc staged, and `rebalance apply`, run
        //  again, resumes the step (the final chunk again, then the commit).
        s_stage_reset (self, 0);
        rl_error ("migration %" PRIu64 ": the handover failed (storage or memory)",
                  state->migration_id);
        server_enter_failed (self, "a migration's handover");
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (adopt) {
        //  Their staged copies go, by one range tombstone (a point delete
        //  per key left every later scan of the staged keys walking over
        //  them all), in the checkpoint that writes them.
        ledger_adopted (self->ledger, state->migration_id, state->arc_start, state->arc_end);
    }
    state->state = RL_MIGRATE_HANDED_OVER;
    s_state_put (self);
    //  Adopted: the store keeps the staged keys until the checkpoint, and
    //  nothing reads the stage of a migration handed over (a begin loads
    //  it again). Point deletes: the others are left in place.
    s_stage_reset (self, adopt ? 0 : state->migration_id);
    st->others = adopt ? 0 : others;
    RL_FAILPOINT (MIGRATE_COMMIT_TARGET);
    self->reply_fp = RL_FP_MIGRATE_COMMIT_TARGET_SYNCED;
    rl_info ("migration %" PRIu64 ": handed over at epoch %" PRIu64
             ", %zu accounts installed, %zu transfers still pending and %zu resolved states"
             " (%" PRId64 " us in the loop)",
             state->migration_id, ring_epoch (self->ring), installs, live, pend.count - live,
             (int64_t) (zclock_usecs () - began_us));
    return s_reply_state (self, envelope, h);
}

//  The source's handover: it serves the step's ring, which no longer gives
//  it the arc (it answers wrong_shard there); the freeze ends.
static zmsg_t *
s_commit_source (server_t *self, zmsg_t *envelope, const rl_header_t *h, rl_migrate_rec_t *state)
{
    if (state->state != RL_MIGRATE_SHIPPED
        || s_ring_share (self, state->arc_start, state->arc_end) != RING_SHARE_NONE) {
        return s_refuse (self, envelope, h,
                         "commit needs the final round out and the step's ring loaded");
    }
    //  The arc's data moved on: a ring giving it back alone must never make
    //  it received here again (arcs.c, "KEPT"); same batch as the state.
    arcs_t *arcs = ledger_arcs (self->ledger);
    if (arcs && arcs_forget (arcs, state->arc_start, state->arc_end) != 0) {
        rl_error ("migration %" PRIu64 ": the handover failed (memory)", state->migration_id);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    //  Its pending transfers went with the final round: they leave the
    //  pending table here (a same-shard one keeps the side that stays).
    size_t pending = ledger_pending_hand_over (self->ledger, state->arc_start, state->arc_end);
    state->state = RL_MIGRATE_HANDED_OVER;
    s_state_put (self);
    RL_FAILPOINT (MIGRATE_COMMIT_SOURCE);
    if (pending > 0) {
        rl_info ("migration %" PRIu64 ": %zu pending transfers handed over", state->migration_id,
                 pending);
    }
    s_thaw (self);
    s_track_stop (self); //  no round follows
    rl_info ("migration %" PRIu64 ": the arc left at epoch %" PRIu64, state->migration_id,
             ring_epoch (self->ring));
    return s_reply_state (self, envelope, h);
}

//  Did the source's cleanup of this migration run to its end? Its record
//  is NONE then with the id, the role and the cursor's phase DONE kept;
//  an aborted source is NONE with the cursor it began with (phase 0): an
//  abort is refused once HANDED_OVER, and the cleanup needs HANDED_OVER.
static bool
s_cleaned (server_t *self, const rl_migrate_rec_t *req)
{
    rl_migrate_rec_t *state = NULL;
    return s_state (self, &state) == 0 && state->state == RL_MIGRATE_NONE
           && req->role == RL_MIGRATE_SOURCE && state->role == RL_MIGRATE_SOURCE
           && state->migration_id == req->migration_id
           && state->cursor.phase == RL_MIGRATE_PHASE_DONE;
}

static zmsg_t *
s_commit_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const rl_migrate_rec_t *req)
{
    rl_status_t leased = mlease_check (self, req->migration_id, "commit"); //  mlease.h
    if (leased != RL_STATUS_OK) {
        return server_reply_new (self, envelope, h, leased, 0, 0, NULL);
    }
    if (s_cleaned (self, req)) {
        //  A commit sent again after the cleanup (the tool died before it
        //  wrote the step done): committed and cleaned, answered as stored
        //  (NONE), nothing changes.
        return s_reply_state (self, envelope, h);
    }
    rl_migrate_rec_t *state = s_mine (self, req, req->role);
    if (!state || (req->role != RL_MIGRATE_SOURCE && req->role != RL_MIGRATE_TARGET)) {
        return s_refuse (self, envelope, h, "no such migration in that role here");
    }
    if (state->state == RL_MIGRATE_HANDED_OVER) {
        return s_reply_state (self, envelope, h); //  done already
    }
    return req->role == RL_MIGRATE_TARGET ? s_commit_target (self, envelope, h, state)
                                          : s_commit_source (self, envelope, h, state);
}

//  Abort -------------------------------------------------------------------------

//  The meta key of an abort in progress on the target: the last key of the
//  imported family it has judged (the next call resumes after it).
#define S_ABORT_META_KEY "migration_abort_at"
#define S_ABORT_KEY_MAX  64 //  bytes of an imported key (the longest, 'H', is 49)

//  The target's abort, at most `budget` keys a call (the request's
//  entries_max, 0: RL_MIGRATE_SCAN_RECORDS_MAX):
//  deletes what was imported for the arc (imported_abort_verdict), in key
//  order from where the last call stopped; when the family is done, the
//  migration is forgotten (NONE) in the same batch. ABORTING until then.
static zmsg_t *
s_abort_target (server_t *self, zmsg_t *envelope, const rl_header_t *h, rl_migrate_rec_t *state,
                uint32_t budget)
{
    assert (budget > 0 && budget <= RL_MIGRATE_SCAN_RECORDS_MAX);
    uint8_t at[S_ABORT_KEY_MAX];
    size_t at_size = 0;
    int rc = state->state == RL_MIGRATE_ABORTING
                 ? store_get (self->store, STORE_CF_META, S_ABORT_META_KEY,
                              strlen (S_ABORT_META_KEY), at, sizeof (at), &at_size)
                 : 0;
    store_iter_t *it = rc >= 0 ? store_iter_new (self->store, STORE_CF_IMPORTED) : NULL;
    if (!it) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (rc == 1) {
        store_iter_seek (it, at, at_size);
    } else {
        store_iter_seek_first (it);
    }
    size_t judged = 0, deleted = 0;
    bool done = false;
    rc = 0;
    s_stage_written (self); //  it deletes staged keys: the stage mirrors nothing now
    s_stage_reset (self, 0);
    for (;; store_iter_next (it)) {
        if (!store_iter_valid (it)) {
            done = true;
            break;
        }
        size_t key_size = 0, value_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        const uint8_t *value = store_iter_value (it, &value_size);
        if (key_size > S_ABORT_KEY_MAX) {
            rc = -1;
            break;
        }
        if (at_size == key_size && memcmp (key, at, at_size) == 0) {
            continue; //  judged by the last call
        }
        if (judged == budget) {
            break; //  the rest in the next call
        }
        judged++;
        int verdict = imported_abort_verdict (self->store, state->arc_start, state->arc_end, key,
                                              key_size, value, value_size);
        if (verdict < 0) {
            rc = -1;
            break;
        }
        if (verdict == 1) {
            store_batch_delete (self->store, STORE_CF_IMPORTED, key, key_size);
            deleted++;
        }
        memcpy (at, key, key_size);
        at_size = key_size;
    }
    store_iter_destroy (&it);
    if (rc != 0) {
        rl_error ("migration %" PRIu64 ": the abort failed reading the imported keys",
                  state->migration_id);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (done) {
        state->state = RL_MIGRATE_NONE;
        store_batch_delete (self->store, STORE_CF_META, S_ABORT_META_KEY,
                            strlen (S_ABORT_META_KEY));
    } else {
        state->state = RL_MIGRATE_ABORTING;
        store_batch_put (self->store, STORE_CF_META, S_ABORT_META_KEY, strlen (S_ABORT_META_KEY),
                         at, at_size);
    }
    memset (&state->cursor, 0, sizeof (state->cursor));
    state->chunks = state->records = state->accounts = 0;
    state->param = 0;
    s_state_put (self);
    RL_FAILPOINT (MIGRATE_ABORT_TARGET);
    rl_info ("migration %" PRIu64 ": target abort deleted %zu of %zu imported keys%s",
             state->migration_id, deleted, judged, done ? ", done" : ", more to come");
    return s_reply_state (self, envelope, h);
}

//  The source's abort: the freeze ends, the migration is forgotten. From
//  SHIPPED only with param RL_MIGRATE_ABORT_TARGET_DONE: the tool says the
//  target answered its abort (NONE), so it will never serve the arc.
static zmsg_t *
s_abort_source (server_t *self, zmsg_t *envelope, const rl_header_t *h, rl_migrate_rec_t *state,
                const rl_migrate_rec_t *req)
{
    if (state->state == RL_MIGRATE_SHIPPED && req->param != RL_MIGRATE_ABORT_TARGET_DONE) {
        return s_refuse (self, envelope, h,
                         "the final round is out: abort the target first, then say so");
    }
    bool frozen = state->state == RL_MIGRATE_FROZEN || state->state == RL_MIGRATE_SHIPPED;
    state->state = RL_MIGRATE_NONE;
    state->param = 0;
    s_state_put (self);
    RL_FAILPOINT (MIGRATE_ABORT_SOURCE);
    if (frozen) {
        s_thaw (self);
    }
    s_track_stop (self);
    rl_info ("migration %" PRIu64 ": aborted on the source%s", state->migration_id,
             frozen ? ", the arc serves again" : "");
    return s_reply_state (self, envelope, h);
}

static zmsg_t *
s_abort_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const rl_migrate_rec_t *req)
{
    if (req->migration_id == 0 || req->entries_max > RL_MIGRATE_SCAN_RECORDS_MAX
        || (req->role != RL_MIGRATE_SOURCE && req->role != RL_MIGRATE_TARGET)) {
        return server_reply_new (self, envelope, h, RL_STATUS_MALFORMED, 0, 0, NULL);
    }
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (state->state == RL_MIGRATE_NONE) {
        return s_reply_state (self, envelope, h); //  nothing (left) to abort: done
    }
    if (state->migration_id != req->migration_id || state->role != req->role) {
        return s_refuse (self, envelope, h, "another migration, or another role, is stored");
    }
    if (state->state == RL_MIGRATE_HANDED_OVER) {
        return s_refuse (self, envelope, h, "handed over: too late to abort");
    }
    uint32_t budget = req->entries_max ? req->entries_max : RL_MIGRATE_SCAN_RECORDS_MAX;
    return req->role == RL_MIGRATE_TARGET ? s_abort_target (self, envelope, h, state, budget)
                                          : s_abort_source (self, envelope, h, state, req);
}

//  Cleanup -------------------------------------------------------------------------

//  The source, after the handover: the moved accounts and their history
//  keys are deleted (the records, the idempotency and legs indexes stay:
//  late messages and the history of the accounts that stay need them).
//  Accounts are keyed by id, not by ring position, so the arc is not a key
//  range: the accounts family is scanned (at most `budget` keys a call,
//  from the stored cursor), each account of the arc deleted with its
//  history by a range per account; the call after the scan compacts the
//  span of the deleted ids (in the loop: it stalls the shard for the
//  compaction's time) and forgets the migration (NONE).
//  The smallest key after every key that begins with prefix: the prefix
//  with its last byte below 0xff incremented and what follows dropped.
//  Its size (0 never: an id of all 0xff bytes is invalid, and 'H' < 0xff).
static size_t
s_prefix_end (const uint8_t *prefix, size_t size, uint8_t *out)
{
    memcpy (out, prefix, size);
    while (size > 0 && out[size - 1] == 0xff) {
        size--;
    }
    assert (size > 0);
    out[size - 1]++;
    return size;
}

static zmsg_t *
s_cleanup_scan (server_t *self, zmsg_t *envelope, const rl_header_t *h, rl_migrate_rec_t *state,
                uint32_t budget)
{
    rl_migrate_cursor_t *c = &state->cursor;
    store_iter_t *it = store_iter_new (self->store, STORE_CF_ACCOUNTS);
    if (!it) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    bool started = c->round > 0; //  round: accounts deleted so far + 1 once one is
    uint8_t *lo = c->imported_key, *hi = c->imported_key + RL_ID_SIZE; //  span of deleted ids
    uint32_t judged = 0;
    bool not_yet = false, owned = false;
    int rc = 0;
    for (store_iter_seek (it, c->account_key, RL_ID_SIZE);; store_iter_next (it)) {
        if (!store_iter_valid (it)) {
            c->phase = RL_MIGRATE_PHASE_DONE;
            break;
        }
        size_t key_size = 0;
        const uint8_t *key = store_iter_key (it, &key_size);
        if (key_size != RL_ID_SIZE) {
            rc = -1;
            break;
        }
        if (c->phase == RL_MIGRATE_PHASE_ACCOUNTS
            && memcmp (key, c->account_key, RL_ID_SIZE) == 0) {
            continue; //  judged by the last call
        }
        if (judged == budget) {
            break;
        }
        rl_id_t id = codec_decode_id (key);
        if (imported_in_arc (state->arc_start, state->arc_end, id)) {
            if (ledger_owns (self->ledger, id)) {
                owned = true; //  a newer ring gives part of the arc back: it stays
                break;
            }
            if (ledger_remove_account (self->ledger, id) < 0) {
                not_yet = true; //  dirty or in escrow: after a checkpoint
                break;
            }
            store_batch_delete (self->store, STORE_CF_ACCOUNTS, key, RL_ID_SIZE);
            //  Every key that begins with the id's bytes: [id, the next prefix).
            uint8_t from[1 + RL_ID_SIZE], to[1 + RL_ID_SIZE];
            size_t to_size = s_prefix_end (key, RL_ID_SIZE, to);
            store_batch_delete_range (self->store, STORE_CF_HISTORY, key, RL_ID_SIZE, to, to_size);
            from[0] = IMPORTED_HISTORY;
            memcpy (from + 1, key, RL_ID_SIZE);
            to_size = s_prefix_end (from, sizeof (from), to);
            store_batch_delete_range (self->store, STORE_CF_IMPORTED, from, sizeof (from), to,
                                      to_size);
            if (!started || memcmp (key, lo, RL_ID_SIZE) < 0) {
                memcpy (lo, key, RL_ID_SIZE);
            }
            if (!started || memcmp (key, hi, RL_ID_SIZE) > 0) {
                memcpy (hi, key, RL_ID_SIZE);
            }
            started = true;
            state->accounts++;
        }
        judged++;
        memcpy (c->account_key, key, RL_ID_SIZE);
        c->phase = RL_MIGRATE_PHASE_ACCOUNTS;
    }
    store_iter_destroy (&it);
    if (rc != 0) {
        rl_error ("migration %" PRIu64 ": the cleanup failed reading the accounts",
                  state->migration_id);
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    c->round = started ? 1 : 0;
    if (not_yet) {
        ledger_checkpoint_soon (self->ledger);
    }
    s_state_put (self);
    RL_FAILPOINT (MIGRATE_CLEANUP);
    if (owned) {
        return s_refuse (self, envelope, h, "the ring gives this shard part of the arc again");
    }
    return s_reply_state (self, envelope, h);
}

static zmsg_t *
s_cleanup_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const rl_migrate_rec_t *req)
{
    if (req->role != RL_MIGRATE_SOURCE || req->entries_max > RL_MIGRATE_SCAN_RECORDS_MAX
        || (req->migration_id == 0) != (req->param == RL_MIGRATE_CLEANUP_PEEK)) {
        return server_reply_new (self, envelope, h, RL_STATUS_MALFORMED, 0, 0, NULL);
    }
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    if (req->migration_id == 0) {
        //  Peek: which migration from here is handed over and not cleaned
        //  up (one an older tool left: a new begin is refused until it is).
        //  The caller makes sure another shard holds its arc before it
        //  cleans it up by its id (rebalance apply, s_clean_stale).
        if (state->state != RL_MIGRATE_HANDED_OVER || state->role != RL_MIGRATE_SOURCE) {
            return s_refuse (self, envelope, h, "no migration from here waits for its cleanup");
        }
        return s_reply_state (self, envelope, h);
    }
    if (state->state == RL_MIGRATE_NONE) {
        return s_reply_state (self, envelope, h); //  nothing (left) to clean
    }
    if (state->migration_id != req->migration_id || state->role != RL_MIGRATE_SOURCE
        || state->state != RL_MIGRATE_HANDED_OVER) {
        return s_refuse (self, envelope, h,
                         "cleanup needs this migration handed over, here its source");
    }
    //  A ring loaded by hand may give the arc back (its accounts then
    //  answer frozen: never handed back): nothing of it is deleted.
    if (s_ring_share (self, state->arc_start, state->arc_end) != RING_SHARE_NONE) {
        return s_refuse (self, envelope, h, "the ring gives this shard the arc again");
    }
    //  Recovery must never replay a transfer onto an account it no longer
    //  holds: every ok transfer that posts to the arc is checkpointed first.
    if (ledger_recent_posts_to_arc (self->ledger, state->arc_start, state->arc_end)) {
        ledger_checkpoint_soon (self->ledger);
        return s_reply_state (self, envelope, h); //  HANDED_OVER: call again
    }
    //  Nor while the checkpoint in the background writes an account of the
    //  arc: it would put the account back after this call deleted it (an
    //  account is in its snapshot when it changed with nothing posted, as a
    //  linked chain's undo changes it, and its dirty mark went with the
    //  snapshot, so accounts_remove no longer refuses it).
    if (ledger_checkpoint_holds_arc (self->ledger, state->arc_start, state->arc_end)) {
        return s_reply_state (self, envelope, h); //  HANDED_OVER: call again
    }
    if (state->cursor.phase != RL_MIGRATE_PHASE_DONE) {
        uint32_t budget = req->entries_max ? req->entries_max : RL_MIGRATE_SCAN_RECORDS_MAX;
        return s_cleanup_scan (self, envelope, h, state, budget);
    }
    //  The deletes are committed: their space is reclaimed by a compaction
    //  of their span, then the migration is forgotten. Ids are random, so
    //  the span is about the whole family: a compaction here would stall
    //  the loop for a rewrite of the shard's history (tens of seconds at
    //  millions of transfers), so the span is only marked, and RocksDB's
    //  background compactions reclaim it (with the deletes, once flushed).
    if (state->cursor.round > 0) {
        const uint8_t *lo = state->cursor.imported_key, *hi = lo + RL_ID_SIZE;
        uint8_t end[RL_ID_SIZE + 8];
        memcpy (end, hi, RL_ID_SIZE);
        memset (end + RL_ID_SIZE, 0xff, 8);
        int rc = store_suggest_compact_range (self->store, STORE_CF_ACCOUNTS, lo, RL_ID_SIZE, hi,
                                              RL_ID_SIZE);
        rc |= store_suggest_compact_range (self->store, STORE_CF_HISTORY, lo, RL_ID_SIZE, end,
                                           sizeof (end));
        if (rc != 0) {
            rl_warn ("migration %" PRIu64 ": the moved data's space is left to later compactions",
                     state->migration_id);
        }
    }
    rl_info ("migration %" PRIu64 ": cleaned up, %" PRIu64 " moved accounts deleted here",
             state->migration_id, state->accounts);
    state->state = RL_MIGRATE_NONE;
    s_state_put (self);
    return s_reply_state (self, envelope, h);
}

//  Arc load ------------------------------------------------------------------------
//
//  Per point of the ring served (the arc that ends there), the
//  create_transfers records whose debit account lies in it, whatever their
//  result: the write load the arc brings. A total since the ring was
//  adopted, and one count per second of the last RL_ARC_LOAD_WINDOW_S. The
//  counters start afresh with every ring (and every start): memory only.

#define S_SLOTS (1 + RL_ARC_LOAD_WINDOW_S) //  total, then the seconds

//  The index of the point that ends the arc holding `point` (the first
//  position >= point, wrapping to 0). O(log points).
static size_t
s_point_index (const ring_t *ring, uint64_t point)
{
    size_t lo = 0, hi = ring_point_count (ring);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring_point_position (ring, mid) < point) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == ring_point_count (ring) ? 0 : lo;
}

//  The counters for the ring served now, their buckets rotated to `now_s`
//  (a bucket older than the window is zeroed before reuse). false when
//  memory ran out (nothing is counted then).
static bool
s_arc_load_ready (server_t *self, int64_t now_s)
{
    size_t points = ring_point_count (self->ring);
    if (self->arc_load_epoch != ring_epoch (self->ring) || self->arc_load_points != points) {
        free (self->arc_load);
        self->arc_load = calloc (points ? points * S_SLOTS : 1, sizeof (uint64_t));
        self->arc_load_points = self->arc_load ? points : 0;
        self->arc_load_epoch = self->arc_load ? ring_epoch (self->ring) : 0;
        self->arc_load_second = now_s;
        self->arc_load_since_ms = (int64_t) zclock_mono ();
        hotacct_destroy (&self->hot); //  the hot accounts count over the same window
    }
    if (!self->arc_load) {
        return false;
    }
    int64_t gap = now_s - self->arc_load_second;
    for (int64_t s = 1; s <= gap && s <= RL_ARC_LOAD_WINDOW_S; s++) {
        size_t bucket = 1 + (size_t) ((self->arc_load_second + s) % RL_ARC_LOAD_WINDOW_S);
        for (size_t p = 0; p < self->arc_load_points; p++) {
            self->arc_load[p * S_SLOTS + bucket] = 0;
        }
    }
    self->arc_load_second = now_s > self->arc_load_second ? now_s : self->arc_load_second;
    return true;
}

void
migrate_count_transfers (server_t *self, const rl_transfer_t *transfers, size_t count)
{
    assert (self && (count == 0 || transfers));
    int64_t now_s = (int64_t) zclock_mono () / 1000;
    if (count == 0 || !s_arc_load_ready (self, now_s)) {
        return;
    }
    if (!self->hot) {
        self->hot = hotacct_new (now_s); //  on failure (memory), no account is counted
    }
    size_t bucket = 1 + (size_t) (now_s % RL_ARC_LOAD_WINDOW_S);
    for (size_t i = 0; i < count; i++) {
        rl_id_t debit = transfers[i].debit_account_id;
        if (rl_id_is_zero (debit) || rl_id_is_max (debit) || !ledger_owns (self->ledger, debit)) {
            continue;
        }
        if (self->hot) {
            hotacct_count (self->hot, debit, now_s);
        }
        uint8_t bytes[RL_ID_SIZE];
        codec_encode_id (debit, bytes);
        size_t p = s_point_index (self->ring, ring_point_of_id (bytes));
        assert (p < self->arc_load_points);
        self->arc_load[p * S_SLOTS]++;
        self->arc_load[p * S_SLOTS + bucket]++;
    }
}

typedef struct {
    const ring_t *ring;
    uint64_t *accounts; //  per point
} s_account_count_t;

static void
s_count_account (void *arg, const rl_account_t *account)
{
    s_account_count_t *c = arg;
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (account->id, bytes);
    c->accounts[s_point_index (c->ring, ring_point_of_id (bytes))]++;
}

//  The bytes of what moves with accounts besides their own records: the
//  transfer records and the history, idempotency and leg indexes, and what
//  migrations imported (RocksDB's estimate of the live data of each
//  family, plus its memtables). arc_load shares it among the arcs by their
//  accounts: an estimate (docs/rebalance.md, "Arc load").
static uint64_t
s_record_bytes (server_t *self)
{
    static const store_cf_t families[] = {STORE_CF_TRANSFERS, STORE_CF_TX_INDEX, STORE_CF_HISTORY,
                                          STORE_CF_LEGS, STORE_CF_IMPORTED};
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        total += store_property_cf (self->store, families[i], "rocksdb.estimate-live-data-size");
        total += store_property_cf (self->store, families[i], "rocksdb.cur-size-all-mem-tables");
    }
    return total;
}

//  arc_load: one record per arc this shard owns, in ring order (at most
//  RL_BATCH_RECORDS_MAX). It reads every account held: O(accounts), in
//  the loop.
static zmsg_t *
s_arc_load_op (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    int64_t now_ms = (int64_t) zclock_mono ();
    int me = ring_shard_find (self->ring, self->options->name);
    size_t points = ring_point_count (self->ring);
    uint64_t *accounts = calloc (points ? points : 1, sizeof (uint64_t));
    if (!accounts || !s_arc_load_ready (self, now_ms / 1000)) {
        free (accounts);
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    s_account_count_t c = {.ring = self->ring, .accounts = accounts};
    ledger_each_account (self->ledger, s_count_account, &c);
    uint64_t held = 0;
    for (size_t p = 0; p < points; p++) {
        held += accounts[p];
    }
    double per_account = held ? (double) s_record_bytes (self) / (double) held : 0;
    uint32_t arcs = 0;
    for (size_t p = 0; p < points && me >= 0; p++) {
        arcs += ring_point_owner (self->ring, p) == (size_t) me && arcs < RL_BATCH_RECORDS_MAX;
    }
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, arcs, RL_ARC_LOAD_SIZE,
                                      &out);
    int64_t window_ms = now_ms - self->arc_load_since_ms;
    if (window_ms > RL_ARC_LOAD_WINDOW_S * 1000) {
        window_ms = RL_ARC_LOAD_WINDOW_S * 1000;
    }
    window_ms = window_ms < 1 ? 1 : window_ms;
    uint32_t k = 0;
    for (size_t p = 0; reply && p < points && k < arcs; p++) {
        if (ring_point_owner (self->ring, p) != (size_t) me) {
            continue;
        }
        const uint64_t *slots = &self->arc_load[p * S_SLOTS];
        uint64_t window = 0;
        for (size_t b = 1; b < S_SLOTS; b++) {
            window += slots[b];
        }
        rl_arc_load_rec_t rec = {
            .arc_start = ring_point_position (self->ring, (p + points - 1) % points),
            .arc_end = ring_point_position (self->ring, p),
            .accounts = accounts[p],
            .account_bytes = accounts[p] * RL_ACCOUNT_SIZE,
            .transfers_window = window,
            .window_ms = (uint32_t) window_ms,
            .transfers_per_s = (uint32_t) (window * 1000 / (uint64_t) window_ms),
            .transfers_total = slots[0],
            .record_bytes = (uint64_t) (per_account * (double) accounts[p]),
        };
        codec_encode_arc_load (&rec, out + (size_t) k++ * RL_ARC_LOAD_SIZE);
    }
    free (accounts);
    return reply;
}

//  hot_accounts: the hottest debit accounts this shard owns over the
//  window (hotacct.h), at most RL_HOT_ACCOUNTS_MAX. The table starts
//  afresh with arc_load's counters (every start and ring change), so that
//  both count over one window. O(the table), in the loop; no account is
//  read.
static zmsg_t *
s_hot_accounts_op (server_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    int64_t now_ms = (int64_t) zclock_mono ();
    hotacct_entry_t top[RL_HOT_ACCOUNTS_MAX];
    uint64_t counted = 0, others_max = 0;
    if (!s_arc_load_ready (self, now_ms / 1000)) {
        return server_reply_new (self, envelope, h, RL_STATUS_BUSY, 0, 0, NULL);
    }
    size_t n = self->hot ? hotacct_top (self->hot, now_ms / 1000, top, RL_HOT_ACCOUNTS_MAX,
                                        &counted, &others_max)
                         : 0;
    uint32_t owned = 0;
    for (size_t i = 0; i < n; i++) {
        if (ledger_owns (self->ledger, top[i].id)) { //  not one a ring change took away
            top[owned++] = top[i];
        }
    }
    int64_t window_ms = now_ms - self->arc_load_since_ms; //  arc_load's window
    if (window_ms > RL_ARC_LOAD_WINDOW_S * 1000) {
        window_ms = RL_ARC_LOAD_WINDOW_S * 1000;
    }
    window_ms = window_ms < 1 ? 1 : window_ms;
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, owned, RL_HOT_ACCOUNTS_SIZE,
                                      &out);
    for (uint32_t k = 0; reply && k < owned; k++) {
        rl_hot_account_rec_t rec = {
            .id = top[k].id,
            .transfers_window = top[k].count,
            .error = top[k].error,
            .others_max = others_max,
            .window_ms = (uint32_t) window_ms,
            .counted = counted,
        };
        codec_encode_hot_account (&rec, out + (size_t) k * RL_HOT_ACCOUNTS_SIZE);
    }
    return reply;
}

int
migrate_start (server_t *self)
{
    rl_migrate_rec_t *state = NULL;
    if (s_state (self, &state) != 0) {
        rl_error ("migration: the stored state does not read");
        return -1;
    }
    RL_FAILPOINT (MIGRATE_RECOVER);
    if (state->role == RL_MIGRATE_SOURCE
        && (state->state == RL_MIGRATE_FROZEN || state->state == RL_MIGRATE_SHIPPED)) {
        s_freeze (self, state); //  a write must not slip in after the last chunk
        rl_info ("migration %" PRIu64 ": the arc is frozen again (%s)", state->migration_id,
                 state->state == RL_MIGRATE_SHIPPED ? "shipped" : "draining");
    }
    if (state->role == RL_MIGRATE_TARGET
        && (state->state == RL_MIGRATE_COPYING || state->state == RL_MIGRATE_SHIPPED)) {
        //  The staged accounts back in memory, before the commit needs them.
        if (s_stage_load (self, state) != 0) {
            rl_warn ("migration %" PRIu64 ": the staged accounts do not load now: "
                     "loaded at the next import or commit",
                     state->migration_id);
        } else {
            rl_info ("migration %" PRIu64 ": %zu staged accounts and %zu pending transfers "
                     "in memory",
                     state->migration_id, self->stage->account_count, self->stage->pending_count);
        }
    }
    return 0;
}

void
migrate_tick (server_t *self)
{
    rl_migrate_rec_t *state = &self->migration;
    if (!self->migration_loaded || state->role != RL_MIGRATE_SOURCE
        || state->state != RL_MIGRATE_FROZEN) {
        return;
    }
    if ((uint64_t) zclock_mono () - self->migration_frozen_ms <= state->param) {
        return;
    }
    //  The drain took too long (a coordinator down, say): the arc serves
    //  again, and the tool tries later. Never from SHIPPED.
    state->state = RL_MIGRATE_COPYING;
    state->param = 0;
    s_state_put (self);
    RL_FAILPOINT (MIGRATE_UNFREEZE);
    s_thaw (self);
    rl_warn ("migration %" PRIu64 ": not shipped within its freeze_max_ms: unfrozen",
             state->migration_id);
}

zmsg_t *
migrate_handle (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
                size_t body_size)
{
    assert (self && envelope && h
            && (body || h->operation == RL_OP_ARC_LOAD || h->operation == RL_OP_HOT_ACCOUNTS));
    switch (h->operation) {
        case RL_OP_MIGRATE_BEGIN:
            return s_begin (self, envelope, h, body);
        case RL_OP_MIGRATE_EXPORT:
            return s_export (self, envelope, h, body);
        case RL_OP_ARC_LOAD:
            return s_arc_load_op (self, envelope, h);
        case RL_OP_HOT_ACCOUNTS:
            return s_hot_accounts_op (self, envelope, h);
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_MIGRATE_CLEANUP: {
            rl_migrate_rec_t req;
            codec_decode_migrate (body, &req);
            if (h->operation == RL_OP_MIGRATE_ABORT) {
                return s_abort_op (self, envelope, h, &req);
            }
            if (h->operation == RL_OP_MIGRATE_CLEANUP) {
                return s_cleanup_op (self, envelope, h, &req);
            }
            if (h->operation == RL_OP_MIGRATE_FREEZE) {
                return s_freeze_op (self, envelope, h, &req);
            }
            if (h->operation == RL_OP_MIGRATE_DRAIN) {
                return s_drain_op (self, envelope, h, &req);
            }
            if (h->operation == RL_OP_MIGRATE_UNFREEZE) {
                return s_unfreeze_op (self, envelope, h, &req);
            }
            return s_commit_op (self, envelope, h, &req);
        }
        default:
            assert (h->operation == RL_OP_MIGRATE_IMPORT);
            return s_import (self, envelope, h, body, body_size);
    }
}
