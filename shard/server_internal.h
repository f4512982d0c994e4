/*  server_internal.h: the server's state, shared by server.c (the turn
    loop and the dispatch), admin.c (the operator's operations) and
    migrate.c (migrations). Not for use outside those files.
*/
#ifndef RL_SERVER_INTERNAL_H
#define RL_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "auth.h"
#include "backup.h"
#include "events.h"
#include "failpoint.h"
#include "hotacct.h"
#include "ledger.h"
#include "outq.h"
#include "peers.h"
#include "replica.h"
#include "replyq.h"
#include "ring.h"
#include "ringcheck.h"
#include "senders.h"
#include "server.h"
#include "shard_metrics.h"
#include "store.h"
#include "syncer.h"

//  Requests a turn reads ahead from the ROUTER socket to serve migration
//  requests first (server.c, "MIGRATION REQUESTS FIRST").
#define RL_SHARD_READ_AHEAD_MAX 64

//  A reply held until the group commit it needs is synced; fp: the
//  failpoint that sits between that sync and this send (RL_FP_COUNT: none).
typedef struct {
    zmsg_t *msg;
    uint64_t needs_seq;
    rl_fp_t fp;
    bool local; //  waits for the sync only, not for the standby (status and the like)
} s_held_t;

struct server_t {
    const server_options_t *options;
    zsock_t *router;
    store_t *store;
    ledger_t *ledger;
    ring_t *ring;
    outq_t *outq;  //  what the ledger asks to send; the group commit sequences
    bool failed;   //  FAILED (server.c, STATES): only status is served; exit 3
    bool fenced;   //  FAILED because a promotion fenced this primary: answers fenced (85)
    bool promoted; //  this data directory was a standby's, promoted (replica.h): the old
                   //  primary's replication messages are answered fenced
    uint64_t started_ms;

    zloop_t *loop;
    peers_t *peers;
    rl_auth_t *auth;          //  CURVE, ZAP and roles (common/auth.h)
    senders_t *senders;       //  peer keys -> shard names (sender rules, senders.h)
    shard_metrics_t *metrics; //  status figures; metrics served with --metrics-bind
    events_t *events;         //  the change stream (events.c)
    syncer_t *syncer;         //  the pipelined group commit's sync thread; NULL: nosync
    uint64_t sync_head;       //  the last timestamp written when the sync in flight began
    uint64_t written_head;    //  the last timestamp of a written group commit (synced or not)
    uint64_t durable_head;    //  the last timestamp of a synced write (the change stream's head)
    size_t writes_unsynced;   //  operations written since the last sync began
    size_t writes_syncing;    //  ... and those the sync in flight covers
    s_held_t *held;           //  replies waiting for their commit (across turns)
    size_t held_bytes;        //  their bytes (a turn stops reading at its share)
    replyq_t *replies;        //  the ROUTER's replies, bounded per connection
    size_t held_count;
    size_t held_cap;
    //  requests read ahead this turn, oldest first (inbox_head: the next)
    zmsg_t *inbox[RL_SHARD_READ_AHEAD_MAX];
    size_t inbox_head;
    size_t inbox_count;

    //  scratch, sized for one full batch
    rl_prepare_rec_t *prepares;
    rl_tp_rec_t *tps;
    rl_tp_rec_t *tps_out;
    rl_transfer_t *transfers;
    rl_account_t *accounts;
    rl_id_t *ids;
    rl_result_rec_t *results;

    //  counters (status)
    uint64_t requests;
    uint64_t commits;
    uint64_t dropped;
    uint64_t malformed;
    uint64_t wrong_shard;
    uint64_t unauthorized;
    uint64_t epoch_jumps_refused; //  load_ring beyond --max-epoch-jump (admin.c)
    //  status dropped adds replyq_gone and replyq_full (admin.c)

    //  migrate.c: the migration this shard takes part in, as stored
    rl_migrate_rec_t migration;
    bool migration_loaded;
    uint64_t migration_frozen_ms; //  source: when the freeze began (monotonic)
    uint32_t migration_final;     //  source: the round that began frozen and drained + 1; 0: none
    //  migrate.c: an export that waits for the drain (the first of a round
    //  on a frozen source, asked to wait): its envelope, header and body,
    //  served by migrate_parked once the arc drained or its wait ended
    zmsg_t *parked;
    rl_header_t parked_header;
    uint8_t parked_body[RL_MIGRATE_SIZE];
    int64_t parked_until_ms; //  monotonic: served then, drained or not
    bool parked_serving;     //  s_export: serve it, do not wait again
    bool parked_held;        //  server.c: its reply was held this turn
    bool turn_urgent; //  server.c: this turn read something other than deferrable DECIDEs and ACKs
    //  mlease.c: the plan holding the migration lease (0: none), as stored
    uint64_t migration_lease;
    bool migration_lease_loaded;
    //  migrate.c: the source's change tracking, so that a catch-up round
    //  sends only the accounts changed since the round before it began
    //  (migrate.c, s_round_begins); memory only
    uint64_t track_id;       //  the migration tracked (0: none)
    uint32_t track_round[2]; //  [1] the last round whose start was served, [0] the one before
    uint32_t track_mark[2];  //  the change mark each began with (0: its start was not seen)
    bool track_first[2];     //  that mark is of the round's first start ever (migrate.c)
    uint8_t *round_keys;     //  the accounts phase 3 of round round_listed - 1 sends,
                             //  RL_ID_SIZE each, in key order (NULL: none listed)
    size_t round_count;
    uint32_t round_listed; //  the round listed + 1 (0: none)
    //  migrate.c: the target's staged accounts and pending transfers ('A',
    //  'P' of the imported family), decoded as the store holds them, so
    //  that the commit reads nothing from the store (migrate.c, "THE
    //  STAGE"); NULL until a target migration needs it
    struct migrate_stage_t *stage;
    uint64_t stage_written_seq; //  the group commit of migrate.c's last 'A' or 'P' write
    //  migrate.c: per-arc load (arc_load), per point of the ring served: the
    //  total, then one count per second of the window (RL_ARC_LOAD_WINDOW_S)
    uint64_t *arc_load;
    size_t arc_load_points;
    uint64_t arc_load_epoch;   //  the ring they count for (0: none yet)
    int64_t arc_load_second;   //  monotonic second of the newest bucket
    int64_t arc_load_since_ms; //  monotonic: counting began (for this ring)
    hotacct_t *hot;            //  the hottest debit accounts (hot_accounts), over the same
                               //  window; NULL until counted
    rl_fp_t reply_fp;          //  the failpoint between the sync and the send of the reply
                               //  being built (migrate.c sets it; RL_FP_COUNT: none)

    backup_t *backup; //  backup.c: the hold and the copy; NULL until the first backup operation

    replica_t *replica;     //  replication to standbys (replica.h); NULL: none configured
    ringcheck_t *ringcheck; //  the peers asked for their rings (ringcheck.h); NULL: none yet
    bool replicated;    //  ran with --standby, or was a standby (REPLICA_META_PRIMARY, promoted):
                        //  a ring that moves its name fences it (server_ring_fences)
    uint64_t repl_busy; //  creates answered busy while the standby did not acknowledge
};

//  The start-up ring check waits at most this for the peers' rings
//  (ringcheck.h, docs/replication.md).
#define RL_SHARD_RING_CHECK_MS 3000

//  server.c
//  Builds a reply: envelope (moved from the request) + header + body of
//  count records (status OK). NULL when memory ran out (envelope destroyed).
zmsg_t *server_reply_new (server_t *self, zmsg_t *envelope, const rl_header_t *request,
                          uint32_t status, uint32_t count, size_t record_size, uint8_t **body_p);
//  Serves a new ring of a higher epoch: the ledger and the peers follow.
void server_ring_adopt (server_t *self, ring_t *ring);
//  Would this ring (of any epoch) fence this shard: a replicated shard,
//  and a higher epoch that gives its name to an endpoint other than
//  --bind and than the one the ring served gives it (docs/replication.md)?
bool server_ring_fences (const server_t *self, const ring_t *ring);
//  Writes the fence marker (synced) and answers fenced from then on: why
//  goes into the log.
void server_enter_fenced (server_t *self, const char *why);
//  Enters FAILED (server.c, STATES) unless it has: the turn's batch is
//  not written and nothing more is served until a restart, which recovers
//  from the store. For a step that failed halfway through changes in
//  memory that its batch would make durable (a handover: migrate.c).
void server_enter_failed (server_t *self, const char *what);

//  admin.c: each returns the reply (NULL: out of memory), taking envelope.
zmsg_t *admin_status (server_t *self, zmsg_t *envelope, const rl_header_t *h);
zmsg_t *admin_repl_status (server_t *self, zmsg_t *envelope, const rl_header_t *h);
zmsg_t *admin_in_doubt (server_t *self, zmsg_t *envelope, const rl_header_t *h);
zmsg_t *admin_resolve (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body);
zmsg_t *admin_audit (server_t *self, zmsg_t *envelope, const rl_header_t *h);
zmsg_t *admin_load_ring (server_t *self, zmsg_t *envelope, const rl_header_t *h,
                         const uint8_t *body, size_t body_size);
zmsg_t *admin_get_ring (server_t *self, zmsg_t *envelope, const rl_header_t *h);

//  migrate.c: the migrate_* operations; returns the reply (NULL: out of
//  memory), taking envelope.
zmsg_t *migrate_handle (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
                        size_t body_size);
//  The stored migration (state NONE when there is none), read once then
//  kept in the server. 0, or -1 (storage).
int migrate_stored (server_t *self, rl_migrate_rec_t **state_p);
//  At start: a stored freeze is in force again. 0, or -1 (storage).
int migrate_start (server_t *self);
//  Every tick: a freeze that has not shipped within its freeze_max_ms ends.
void migrate_tick (server_t *self);
//  In a turn: the reply of the export that waited for the drain, once the
//  arc drained, its wait ended or the freeze did (NULL: none due). The
//  caller holds it like any reply of this turn.
zmsg_t *migrate_parked (server_t *self);
//  The export that waits, dropped unanswered (a failed shard, a stop).
void migrate_parked_drop (server_t *self);
//  Frees the target's stage (server_destroy).
void migrate_stage_drop (server_t *self);
//  Counts create_transfers records by their debit account's arc (arc_load)
//  and by the account itself (hot_accounts).
void migrate_count_transfers (server_t *self, const rl_transfer_t *transfers, size_t count);

#endif
