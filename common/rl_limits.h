/*  rl_limits.h: every bound in ringledger, in one place.

    Each limit is a named default with its unit last in the name. Related
    limits are tied together by _Static_assert so that a change to one that
    breaks another fails the build, not a production cluster.

    Timeouts are ordered (see DESIGN, "Results"):
        prepare < shard deadline < router deadline < client timeout
    so that an unreachable credit shard yields a definite `aborted` from the
    shard rather than the router's `outcome_unknown`.
*/
#ifndef RL_RL_LIMITS_H
#define RL_RL_LIMITS_H

#include <stdint.h>

//  Wire protocol ---------------------------------------------------------
#define RL_HEADER_SIZE        32   //  bytes in every message header
#define RL_ACCOUNT_SIZE       128  //  bytes per account record
#define RL_TRANSFER_SIZE      128  //  bytes per transfer record
#define RL_ID_SIZE            16   //  bytes per lookup id
#define RL_RESULT_SIZE        16   //  bytes per create result
#define RL_FILTER_SIZE        64   //  bytes per account-history filter
#define RL_STATUS_SIZE        256  //  bytes of the status record
#define RL_TP_SIZE            112  //  bytes of a two-phase record (decide, ack, query)
#define RL_PREPARE_SIZE       256  //  bytes of a PREPARE record (transfer + two-phase record)
#define RL_IN_DOUBT_SIZE      288  //  bytes of an in-doubt listing record (prepare + peer name)
#define RL_AUDIT_SIZE         256  //  bytes of the audit reply record
#define RL_BACKUP_SIZE        512  //  bytes of the backup record (ops 60..63)
#define RL_REPL_SIZE          256  //  bytes of the repl_status reply record (op 83)
#define RL_MIGRATE_SIZE       192  //  bytes of a migration record (migrate_begin, _export, _import)
#define RL_ARC_LOAD_SIZE      64   //  bytes of an arc_load reply record
#define RL_ARC_LOAD_WINDOW_S  10   //  seconds over which arc_load counts transfers per second
#define RL_HOT_ACCOUNTS_SIZE  64   //  bytes of a hot_accounts reply record
#define RL_HOT_ACCOUNTS_MAX   32   //  accounts a hot_accounts reply lists, at most
#define RL_BATCH_RECORDS_MAX  8190 //  records in one request
#define RL_MESSAGE_SIZE_MAX   (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_PREPARE_SIZE)
#define RL_RING_BLOB_SIZE_MAX (4u << 20) //  bytes of a binary ring
//  The largest frame a shard or a router takes from a client, a peer or an
//  admin tool: a blob (a ring, a migration chunk) with its header, which
//  is more than a full batch of PREPAREs. Their sockets drop a connection
//  that sends a larger frame (ZMQ_MAXMSGSIZE) before it is held in memory.
#define RL_FRAME_SIZE_MAX    (RL_HEADER_SIZE + RL_RING_BLOB_SIZE_MAX)
#define RL_HISTORY_LIMIT_MAX RL_BATCH_RECORDS_MAX //  transfers per history reply
//  in_doubt lists at most what fits one message (7,280 of 288 bytes).
#define RL_IN_DOUBT_RECORDS_MAX ((RL_MESSAGE_SIZE_MAX - RL_HEADER_SIZE) / RL_IN_DOUBT_SIZE)

//  Backups (docs/backup.md).
#define RL_BACKUP_DIR_SIZE_MAX 256   //  bytes of a backup directory path, with its NUL
#define RL_BACKUP_MESSAGE_SIZE 144   //  bytes of a backup reply's message, with its NUL
#define RL_BACKUP_HOLD_MS_MAX  10000 //  longest hold a backup_hold may ask

//  Migration (docs/rebalance.md) -------------------------------------------
#define RL_MIGRATE_ENTRY_SIZE       144   //  bytes of one chunk entry (kind, origin, record)
#define RL_MIGRATE_CHUNK_HEADER     168   //  bytes of a chunk's header
#define RL_MIGRATE_ENTRIES_MAX      8190  //  entries in one chunk
#define RL_MIGRATE_SCAN_RECORDS_MAX 65536 //  records one export reads (bounds the turn)
_Static_assert(RL_MIGRATE_CHUNK_HEADER + RL_MIGRATE_ENTRIES_MAX * RL_MIGRATE_ENTRY_SIZE
                   <= RL_RING_BLOB_SIZE_MAX,
               "a chunk is a blob body");

//  Ring ------------------------------------------------------------------
#define RL_SHARDS_MAX             1024       //  shards in one ring
#define RL_SHARD_NAME_SIZE_MAX    32         //  bytes, including the terminating NUL
#define RL_ENDPOINT_SIZE_MAX      128        //  bytes, including the terminating NUL
#define RL_RING_POINTS_PER_WEIGHT 128        //  default points per unit of weight
#define RL_RING_POINTS_MAX        (1u << 20) //  points in one ring
#define RL_RING_WEIGHT_MAX        1000.0     //  largest weight of one shard

//  Shard -----------------------------------------------------------------
#define RL_SHARD_REQUESTS_PER_TURN_MAX 256         //  requests gathered into one group commit
#define RL_SHARD_INLINE_SYNC_WRITES    1024        //  writes from which a turn waits for its sync
#define RL_SHARD_ACCOUNTS_MAX          (16u << 20) //  accounts held by one shard
#define RL_SHARD_SNDHWM_MESSAGES       10000       //  ZeroMQ high-water mark of shard sockets
#define RL_SHARD_RCVHWM_MESSAGES       10000
#define RL_SHARD_CHECKPOINT_TRANSFERS  (1u << 18) //  transfers between two checkpoints
#define RL_SHARD_ACCOUNTS_INITIAL      (1u << 16) //  account slots allocated at start
//  User-level pending transfers (shard/pending.c): live ones held by one
//  shard (more: the create answers busy), and expiries per tick.
#define RL_SHARD_PENDING_MAX             (1u << 20)
#define RL_SHARD_PENDING_EXPIRE_PER_TICK 4096
//  Spans of hash space a shard gained in ring changes and has not received
//  yet (shard/arcs.c); a ring change that would keep more is refused.
#define RL_SHARD_ARCS_UNRECEIVED_MAX (2u * RL_RING_POINTS_MAX)

//  Two-phase transfers (docs/two-phase.md) --------------------------------
#define RL_TP_ATTEMPTS_MAX            65536 //  live attempts one coordinator holds (more: busy)
#define RL_TP_PREPARED_MAX            65536 //  prepared records one participant holds (more: busy)
#define RL_TP_MARKERS_MAX             (1u << 18) //  applied/aborted markers kept (oldest evicted first)
#define RL_TP_RETRY_MIN_MS            50         //  first resend of a decision or an outcome query
#define RL_TP_RETRY_MAX_MS            2000       //  backoff cap: decisions are resent forever
#define RL_TP_QUERY_AFTER_MS          3000       //  a participant asks the coordinator after this
#define RL_TP_TOMBSTONE_MS            600000     //  applied/aborted markers expire after this
#define RL_TP_WORK_PER_TICK_MAX       4096 //  decisions + queries sent per tick (bound per tick)
#define RL_SHARD_TICK_MS              10   //  timer of the shard loop (timeouts, resends)
#define RL_SHARD_PENDING_REQUESTS_MAX 1024 //  client requests waiting for cross-shard decisions
//  Linked chains across shards in flight at one coordinator (more: busy,
//  the chain's ids not burned; shard/coordinator.c, "Groups").
#define RL_TP_GROUPS_MAX 4096

//  Coordinator log entries: live attempts + decisions not yet acknowledged
//  (more: busy); the default and the largest --tp-log-capacity.
#define RL_TP_LOG_ENTRIES_MAX (RL_TP_ATTEMPTS_MAX * 2)

//  Timeouts (ms), ordered ------------------------------------------------
#define RL_PREPARE_TIMEOUT_MS 1000 //  coordinator waits this long for PREPARE-OK
#define RL_SHARD_DEADLINE_MS  2000 //  shard answers a request within this
#define RL_ROUTER_DEADLINE_MS 4000 //  router answers outcome_unknown after this
#define RL_CLIENT_TIMEOUT_MS  8000 //  client gives up waiting (then retries)
//  Ranges of the shard's timer options (shard --help): --deadline-ms is
//  2..RL_SHARD_DEADLINE_MS_MAX, --prepare-timeout-ms 1..(deadline - 1), the
//  others 1..RL_SHARD_TIMER_MS_MAX.
#define RL_SHARD_DEADLINE_MS_MAX 300000  //  largest shard --deadline-ms (5 min)
#define RL_SHARD_TIMER_MS_MAX    3600000 //  largest --query-after-ms, --retry-*-ms (1 h)

_Static_assert(RL_PREPARE_TIMEOUT_MS < RL_SHARD_DEADLINE_MS, "prepare < shard deadline");
_Static_assert(RL_SHARD_DEADLINE_MS < RL_ROUTER_DEADLINE_MS, "shard < router deadline");
_Static_assert(RL_ROUTER_DEADLINE_MS < RL_CLIENT_TIMEOUT_MS, "router deadline < client");
_Static_assert(RL_ACCOUNT_SIZE == RL_TRANSFER_SIZE, "one record size for both creates");
_Static_assert(RL_MESSAGE_SIZE_MAX < (1u << 24), "a full batch fits one ZeroMQ message");
_Static_assert(RL_FRAME_SIZE_MAX >= RL_MESSAGE_SIZE_MAX && RL_FRAME_SIZE_MAX < (1u << 30),
               "the frame bound takes every request and fits ZMQ_MAXMSGSIZE");
_Static_assert(RL_HEADER_SIZE + RL_IN_DOUBT_RECORDS_MAX * RL_IN_DOUBT_SIZE <= RL_MESSAGE_SIZE_MAX,
               "an in_doubt reply fits one message");
_Static_assert(RL_IN_DOUBT_RECORDS_MAX <= RL_BATCH_RECORDS_MAX, "in_doubt is a batch");
_Static_assert(RL_HISTORY_LIMIT_MAX <= RL_BATCH_RECORDS_MAX, "a history reply fits");
_Static_assert(RL_SHARDS_MAX <= UINT16_MAX, "shard index fits a u16 on the wire");

//  Logging (common/log.c) -------------------------------------------------
#define RL_LOG_WARN_INTERVAL_MS 1000 //  one warning line per call site per interval

//  Router (router/, docs/router.md) ------------------------------------------
#define RL_ROUTER_PENDING_MAX               1024 //  client requests in progress in one router
#define RL_ROUTER_PENDING_BYTES_MAX         (256u << 20) //  bytes held for them (requests + replies)
#define RL_ROUTER_INFLIGHT_PER_SHARD_MAX    64           //  sub-requests outstanding to one shard
#define RL_ROUTER_SUBS_MAX                  4096         //  sub-requests outstanding in total
#define RL_ROUTER_WRONG_SHARD_ATTEMPTS_MAX  3     //  sends of one record before wrong_shard stands
#define RL_ROUTER_TICK_MS                   10    //  timer period: deadlines, retries, refresh
#define RL_ROUTER_FROZEN_RETRY_MS_MIN       10    //  first resend of a record answered frozen
#define RL_ROUTER_FROZEN_RETRY_MS_MAX       200   //  longest pause between its resends
#define RL_ROUTER_RING_REFRESH_MS           2000  //  periodic get_ring from one shard
#define RL_ROUTER_RING_FETCH_TIMEOUT_MS     500   //  one get_ring attempt (start-up and refresh)
#define RL_ROUTER_RING_FETCH_BACKOFF_MS_MAX 2000  //  longest pause between start-up attempts
#define RL_ROUTER_REQUESTS_PER_TURN_MAX     256   //  client requests read per readable event
#define RL_ROUTER_REPLIES_PER_TURN_MAX      256   //  shard replies read per readable event
#define RL_ROUTER_SNDHWM_MESSAGES           10000 //  ZeroMQ high-water marks of the client socket
#define RL_ROUTER_RCVHWM_MESSAGES           10000
#define RL_ROUTER_SHARD_HWM_MESSAGES        1000 //  high-water marks of the socket to one shard
#define RL_ROUTER_RECONNECT_MS              50   //  first reconnect pause to a shard
#define RL_ROUTER_RECONNECT_MS_MAX          1000 //  longest reconnect pause to a shard
#define RL_ROUTER_CONNECT_GRACE_MS                                                                 \
    1000                                     //  a new shard connection may be missing this
                                             //  long before its records are answered busy
#define RL_ROUTER_DEADLINE_MS_MIN     10     //  smallest --deadline-ms (tests)
#define RL_ROUTER_DEADLINE_MS_MAX     600000 //  largest --deadline-ms
#define RL_ROUTER_LOG_LINES_PER_S_MAX 100    //  client-visible error lines per second

_Static_assert(RL_ROUTER_INFLIGHT_PER_SHARD_MAX <= RL_ROUTER_SUBS_MAX, "one shard fits the table");
_Static_assert(RL_ROUTER_SUBS_MAX <= 65536, "a sub-request slot fits 16 bits of its request id");
_Static_assert(RL_ROUTER_INFLIGHT_PER_SHARD_MAX < RL_ROUTER_SHARD_HWM_MESSAGES,
               "the in-flight bound, not ZeroMQ's queue, refuses work to a slow shard");
_Static_assert(RL_ROUTER_PENDING_BYTES_MAX >= 2 * (RL_MESSAGE_SIZE_MAX + RL_RING_BLOB_SIZE_MAX),
               "one full request fits the byte bound");
_Static_assert(RL_ROUTER_WRONG_SHARD_ATTEMPTS_MAX >= 2, "one retry after a ring refresh");
_Static_assert(RL_ROUTER_TICK_MS < RL_ROUTER_DEADLINE_MS, "deadlines are checked in time");
_Static_assert(RL_ROUTER_FROZEN_RETRY_MS_MIN <= RL_ROUTER_FROZEN_RETRY_MS_MAX
                   && RL_ROUTER_FROZEN_RETRY_MS_MAX < RL_ROUTER_DEADLINE_MS,
               "frozen records are resent within a deadline");
_Static_assert(RL_SHARD_DEADLINE_MS_MAX < RL_ROUTER_DEADLINE_MS_MAX,
               "a router deadline can exceed every shard deadline");
_Static_assert(RL_SHARD_DEADLINE_MS <= RL_SHARD_DEADLINE_MS_MAX, "the default is in range");

//  Rings against hostile peers (docs/security.md) ----------------------------
//  A new ring's epoch may exceed the current one by at most --max-epoch-jump
//  (shard: load_ring; router: the rings it fetches), so that one ring at
//  epoch 2^64 - 1 cannot freeze the ring for good.
#define RL_RING_EPOCH_JUMP_DEFAULT 1000       //  default --max-epoch-jump
#define RL_RING_EPOCH_JUMP_MAX     (1L << 40) //  largest --max-epoch-jump
_Static_assert(RL_RING_EPOCH_JUMP_DEFAULT <= RL_RING_EPOCH_JUMP_MAX,
               "the default jump is in range");

//  Reply queues against clients that do not read (common/replyq.h) --------
//  The largest reply a shard or a router sends, with its routing id frame:
//  a ring blob (get_ring), above a full lookup and an in_doubt list.
#define RL_REPLY_SIZE_MAX (RL_HEADER_SIZE + RL_RING_BLOB_SIZE_MAX + 256)
//  Reply bytes one connection may make the process hold (the shard's
//  ROUTER socket, the router's client socket), --reply-queue-bytes: three
//  quarters queued in ZeroMQ or parked by the process, counted exactly
//  (replyq.h); a quarter for replies being built (the shard stops reading
//  a turn's requests there).
#define RL_REPLY_QUEUE_BYTES_DEFAULT         (64L << 20)              //  64 MiB
#define RL_REPLY_QUEUE_BYTES_MIN             (4L * RL_REPLY_SIZE_MAX) //  a quarter holds the largest reply
#define RL_REPLY_QUEUE_BYTES_MAX             (64L << 30)              //  64 GiB
#define RL_REPLY_QUEUE_SENDING_BYTES(bytes)  ((size_t) (bytes) - (size_t) (bytes) / 4)
#define RL_REPLY_QUEUE_BUILDING_BYTES(bytes) ((size_t) (bytes) / 4)

_Static_assert(RL_REPLY_SIZE_MAX >= RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_ACCOUNT_SIZE + 256,
               "a full lookup reply is no larger than the largest reply");
_Static_assert(RL_REPLY_SIZE_MAX
                   >= RL_HEADER_SIZE + RL_IN_DOUBT_RECORDS_MAX * RL_IN_DOUBT_SIZE + 256,
               "an in_doubt reply is no larger than the largest reply");
_Static_assert(RL_REPLY_QUEUE_BYTES_MIN <= RL_REPLY_QUEUE_BYTES_DEFAULT
                   && RL_REPLY_QUEUE_BYTES_DEFAULT <= RL_REPLY_QUEUE_BYTES_MAX,
               "the default bound is in range");

//  Client (common/client.c, docs/client.md) --------------------------------
#define RL_CLIENT_HWM_MESSAGES         1000 //  requests queued in the client socket
#define RL_CLIENT_WINDOW_DEFAULT       64   //  asynchronous requests in flight, default
#define RL_CLIENT_WINDOW_MAX           1000 //  asynchronous requests in flight, upper bound
#define RL_CLIENT_RETRY_BACKOFF_MS_MIN 10   //  first pause of a retry helper after busy
#define RL_CLIENT_RETRY_BACKOFF_MS_MAX 1000 //  longest pause of a retry helper
#define RL_CLIENT_ATTEMPTS_MAX         1000 //  attempts_max accepted by a retry helper
#define RL_CLIENT_WAIT_MAX             256  //  clients one rl_client_wait_any watches

_Static_assert(RL_CLIENT_WINDOW_MAX <= RL_CLIENT_HWM_MESSAGES, "a full window fits the queue");
_Static_assert(RL_CLIENT_RETRY_BACKOFF_MS_MIN <= RL_CLIENT_RETRY_BACKOFF_MS_MAX, "backoff");

//  Reversals (common/reversal.c, docs/payments.md) --------------------------
#define RL_REVERSAL_K_MAX 256 //  reversal ids per original: k in 0..RL_REVERSAL_K_MAX - 1

_Static_assert(RL_REVERSAL_K_MAX <= RL_BATCH_RECORDS_MAX, "one probe request covers every k");

//  Two-phase sender rules and reservation bounds (shard/senders.c,
//  shard/participant.c, docs/security.md) ----------------------------------
#define RL_SENDERS_MAX (4 * RL_SHARDS_MAX) //  peer keys whose shard name a shard remembers
#define RL_TP_RESERVE_PER_COORDINATOR_MAX                                                          \
    (1ull << 60)                        //  amount one coordinator may hold
                                        //  reserved at a participant (default)
#define RL_TP_PREPARED_SHARE_PERCENT 50 //  of a participant's prepared table, per coordinator

_Static_assert(RL_TP_RESERVE_PER_COORDINATOR_MAX <= INT64_MAX, "the option is a long");
_Static_assert(RL_TP_PREPARED_SHARE_PERCENT >= 1 && RL_TP_PREPARED_SHARE_PERCENT <= 100,
               "a share of the table");

#endif
