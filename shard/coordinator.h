/*  coordinator.h: the debit shard's side of a cross-shard transfer.

    The coordinator reserves the debit, sends PREPARE, decides on the reply
    (or a timeout), logs the decision (xlog.c), posts or releases the
    debit, and delivers the decision until the participant acknowledges it.
    It also holds the client requests that wait for its decisions, so a
    request lives in one place: the reply comes out of the output queue as
    an OUTQ_REPLY when its last record is decided.

    It touches accounts only through accounts.h's reserve/release calls and
    the transfer records only through journal.h; it never calls the ledger.
    See coordinator.c for the states, invariants and limits.
*/
#ifndef RL_COORDINATOR_H
#define RL_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "journal.h"
#include "now.h"
#include "outq.h"
#include "proto.h"
#include "ring.h"
#include "store.h"

typedef struct coordinator_t coordinator_t;

//  A create_transfers result meaning "decided later": the record's outcome
//  arrives in the request's OUTQ_REPLY. Never on the wire.
#define COORDINATOR_PENDING 0xFFFFFFFFu

//  NULL when memory ran out. name: this shard's name (the coordinator field
//  of every attempt).
coordinator_t *coordinator_new (store_t *store, accounts_t *accounts, journal_t *journal,
                                outq_t *outq, const char *name);
void coordinator_destroy (coordinator_t **self_p);
//  Recovery: a new incarnation (counter + 1, nonce), committed before this
//  returns, then the logged decisions, each due for delivery at once.
//  0, or -1 with a message in err.
int coordinator_open (coordinator_t *self, uint64_t nonce, now_t now, char *err, size_t err_size);
//  The shard's pending transfers (pending.c): a create of a pending kind
//  (pending, post, void) needs them.
typedef struct pending_t pending_t;
void coordinator_set_pending (coordinator_t *self, pending_t *pending);
//  The ring served now: participants are sent to by their index in it.
void coordinator_set_ring (coordinator_t *self, const ring_t *ring);
void coordinator_set_timeouts (coordinator_t *self, uint64_t prepare_ms, uint64_t retry_min_ms,
                               uint64_t retry_max_ms);
//  The log's capacity: live attempts + decisions not yet acknowledged, in
//  entries (1..RL_TP_LOG_ENTRIES_MAX, the default). Beyond it an attempt is
//  refused busy before it starts.
//  This incarnation: counter and nonce, seq the last attempt begun.
rl_attempt_t coordinator_incarnation (const coordinator_t *self);
void coordinator_set_log_capacity (coordinator_t *self, size_t entries);

//  Is an attempt of this transfer id live (one live attempt per id)?
bool coordinator_is_live (const coordinator_t *self, rl_id_t id);

//  Client requests. A request slot is taken before the records are applied
//  (-1: every slot is in use, answer busy); coordinator_begin ties records
//  to it; coordinator_request_hold then either frees it (nothing pending:
//  false, answer now) or keeps the results and ctx until the last pending
//  record is decided (true). Out of memory, it answers the pending records
//  in_doubt in `results` and returns false.
int32_t coordinator_request_new (coordinator_t *self);
bool coordinator_request_hold (coordinator_t *self, int32_t request, void *ctx,
                               const rl_header_t *header, rl_result_rec_t *results, uint32_t count);
//  Shutdown, or a failed store: frees one held request and returns its ctx
//  (and its header in *header_p, when not NULL), or NULL when none is left.
void *coordinator_request_drop (coordinator_t *self, rl_header_t *header_p);

//  A create_transfers record whose credit account lives on the shard at
//  `peer` (a ring index): reserves the debit and queues a PREPARE; returns
//  COORDINATOR_PENDING, or a final result (a stored business failure, busy).
//  A post or void (resolved by pending_check) reserves nothing and claims
//  its pending transfer; an expiry (pending_due_take) has request -1.
//  group: the linked chain it is a member of (coordinator_group_new), or 0;
//  a member's PREPARE waits for coordinator_group_launch, and a member
//  whose debit fails stores nothing (its chain fails, no id is burned).
rl_result_rec_t coordinator_begin (coordinator_t *self, const rl_transfer_t *t, int32_t peer,
                                   now_t now, int32_t request, uint32_t index, uint32_t group);

//  Linked chains across shards (coordinator.c, "Groups"): a chain whose
//  members debit accounts of this shard and credit accounts of others is
//  a group of live attempts decided together. coordinator_group_new opens
//  one for the chain starting at record `first` of the request (0: every
//  group is in use, answer busy); coordinator_begin (with the group) adds
//  a member crediting another shard, coordinator_hold_local one crediting
//  this shard (checks as a same-shard transfer, reserves both sides;
//  COORDINATOR_PENDING, or the failure: nothing stored). Then either
//  coordinator_group_cancel (a member failed: everything released,
//  nothing was sent) or coordinator_group_launch at the chain's last
//  record (the PREPAREs go; with no member of another shard, the local
//  members are applied now and their results written into `results`).
uint32_t coordinator_group_new (coordinator_t *self, int32_t request, uint32_t first);
rl_result_rec_t coordinator_hold_local (coordinator_t *self, const rl_transfer_t *t, now_t now,
                                        int32_t request, uint32_t index, uint32_t group);
//  A member whose debit account is on the shard at `peer` (a debit leg:
//  docs/two-phase.md, "Debit legs"), kind RL_TRANSFER_TP_DEBIT_LEG (its
//  credit account is this shard's: checked and reserved here, as a
//  participant does) or RL_TRANSFER_TP_BOTH_LEGS (its credit is at `peer`
//  too). The id is the peer's: the ledger checked that no attempt of it is
//  live here nor a commit of it on its way (coordinator_leg_committing).
//  third: kind RL_TRANSFER_TP_DEBIT_LEG whose credit account is on a third
//  shard, neither this one nor the peer (a plain transfer): once the peer
//  PREPAREs it, its credit leg begins towards that shard, an attempt of
//  the same id in the same group (docs/two-phase.md, "Credit on a third
//  shard"). COORDINATOR_PENDING, or the failure (nothing stored).
rl_result_rec_t coordinator_begin_leg (coordinator_t *self, const rl_transfer_t *t, int32_t peer,
                                       uint16_t kind, bool third, now_t now, int32_t request,
                                       uint32_t index, uint32_t group);
//  A member that posts or voids a pending transfer debiting the shard at
//  `peer` (a post leg: docs/two-phase.md, "Post legs"): kind
//  RL_TRANSFER_TP_DEBIT_LEG, t resolved here against the pending
//  transfer's credit side, which the ledger claims for it (COORDINATOR_PENDING),
//  or RL_TRANSFER_TP_BOTH_LEGS, t as the client gave it (the peer holds both
//  sides). doomed: the business failure of this shard's checks (0: none),
//  the member's code unless the peer holds its id stored (nothing claimed
//  here then, kind both legs). Nothing is reserved: the amount is pending.
//  third: kind RL_TRANSFER_TP_DEBIT_LEG, t as the client gave it, naming
//  P's credit account, a third shard's: once the peer PREPAREs it, its
//  credit leg begins towards that shard, as for a credit on a third shard.
rl_result_rec_t coordinator_begin_post_leg (coordinator_t *self, const rl_transfer_t *t,
                                            int32_t peer, uint16_t kind, uint32_t doomed,
                                            bool third, now_t now, int32_t request, uint32_t index,
                                            uint32_t group);
//  Is a COMMIT of a debit leg of id logged here, not yet acknowledged (its
//  debit shard has not stored the transfer yet, or not said so)?
bool coordinator_leg_committing (coordinator_t *self, rl_id_t id);
void coordinator_group_cancel (coordinator_t *self, uint32_t group);
void coordinator_group_launch (coordinator_t *self, uint32_t group, uint32_t last,
                               rl_result_rec_t *results, now_t now);
//  The transfer of id's live attempt when it is a member of group g (the
//  same id twice in one chain), else NULL.
const rl_transfer_t *coordinator_group_member (coordinator_t *self, uint32_t g, rl_id_t id);
//  The post or void of pending transfer pending_id that is a member of
//  group g (a second one in the same chain is answered as a chain of one
//  shard answers it: already posted or voided), else NULL.
const rl_transfer_t *coordinator_group_resolving (coordinator_t *self, uint32_t g,
                                                  rl_id_t pending_id);
//  Record `index` of the request repeats group g's member `id` (the same
//  record: exists, as in a chain of one shard): answered with the member
//  when it is decided, exists with its timestamp or linked_event_failed.
//  Returns the pending result to store at `index` (its timestamp field
//  links the member's earlier repeat until then).
rl_result_rec_t coordinator_group_repeat (coordinator_t *self, uint32_t g, rl_id_t id,
                                          uint32_t index);
//  Chains across shards committed whole and failed whole, since start.
void coordinator_group_counts (const coordinator_t *self, uint64_t *committed, uint64_t *failed);

//  Replies to our PREPAREs and DECIDEs (acknowledgements), from the peer
//  `from` (the shard the connection they came on leads to; NULL: not
//  checked). A reply about an attempt whose participant is not `from` is
//  ignored (sender rule, docs/security.md); each returns how many were.
size_t coordinator_prepare_replies (coordinator_t *self, const rl_tp_rec_t *replies, size_t count,
                                    const char *from, now_t now);
size_t coordinator_decide_replies (coordinator_t *self, const rl_tp_rec_t *acks, size_t count,
                                   const char *from, now_t now);
//  True once after a chain's decision was logged (its client waits for the
//  decision's sync, and for debit legs the ACKs after it): the turn's sync
//  should start now. A plain attempt's decision urges nothing by itself;
//  the request's reply does, when its last record is decided (server.c,
//  DEFERRED DECISIONS).
bool coordinator_urgent_take (coordinator_t *self);
//  Outcome queries from participants: one answer each in out. Returns the
//  group commit the answers need synced (the newest logged decision named).
//  sender: the shard name of the sending key ("" for a key without one;
//  NULL: no key, --insecure). A query about an attempt live or logged here
//  whose participant is not the sender is answered refused, result
//  unauthorized (sender rule).
uint64_t coordinator_outcome_query (coordinator_t *self, const rl_tp_rec_t *queries, size_t count,
                                    const char *sender, rl_tp_rec_t *out);
//  Prepare timeouts and decision resends; at most `budget` messages.
//  Returns the messages queued.
size_t coordinator_tick (coordinator_t *self, now_t now, size_t budget);

//  live: attempts undecided; decided: decisions not yet acknowledged.
void coordinator_counts (const coordinator_t *self, uint64_t *live, uint64_t *decided,
                         uint64_t *alarms);
//  Client requests held for cross-shard decisions (of at most
//  RL_SHARD_PENDING_REQUESTS_MAX: more are answered busy).
size_t coordinator_requests_waiting (const coordinator_t *self);
//  Audit: adds every live reservation to debits[slot of its account] (and
//  a chain's local member's credit to credits[slot]).
void coordinator_audit_sums (coordinator_t *self, const accounts_t *accounts, uint64_t *debits,
                             uint64_t *credits);
//  Lists live attempts and unacknowledged decisions; at most cap.
size_t coordinator_in_doubt (coordinator_t *self, rl_in_doubt_rec_t *out, size_t cap);

#endif
