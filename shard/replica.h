/*  replica.h: replication of a shard to its standby (docs/replication.md).

    THE STREAM. A primary's store calls a tap under its write lock after
    every write it makes (store_set_tap): a WriteBatch (the loop's group
    commits, the checkpoint's batch, the writes at open) or an ingest of
    sorted index entries (the checkpoint's SSTs, which never enter the
    WAL). Each becomes one EVENT of the stream, numbered 1, 2, ... in the
    order RocksDB applied them, so a standby that applies the same events
    in the same order holds the same database, byte for byte in every
    column family, at every position. A stream is named by a random
    64-bit id drawn when the primary starts; position 0 is the database
    as it was then, and a standby reaches it by a SEED: a RocksDB
    checkpoint of the primary taken under the write lock (so at an exact
    position P), copied file by file, after which the events from P + 1
    follow.

    Two halves:
    - replica_t (replica.c), the primary's side: the log of events not yet
      acknowledged by every standby, one DEALER per standby (CURVE, the
      shard's own key pinned), the seed, and the release watermark that
      the server's sends wait for in semi-synchronous mode.
    - replica_standby_run (replica_standby.c), the standby's program: it
      binds the shard's endpoint, applies each event with its own synced
      write, in order, acknowledges its position, and on promote fences
      itself and hands its open store to main.c, which opens it as a
      primary by the normal recovery path while the old primary's lease
      runs out.

    The wire format of the replication socket (replica_wire.c) is its own
    (a 64-byte header frame and a data frame), not the client protocol:
    events reach hundreds of MB. Its status codes are REPLICA_ST_*.
*/
#ifndef RL_REPLICA_H
#define RL_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "auth.h"
#include "journal.h"
#include "proto.h"
#include "store.h"

//  Limits ---------------------------------------------------------------------
#define REPLICA_STANDBYS_MAX         4            //  --standby endpoints of one primary
#define REPLICA_EVENT_BYTES_MAX      (1u << 30)   //  one event's data (a turn's batch, an ingest)
#define REPLICA_LOG_BYTES_MAX        (1ull << 30) //  events kept for standbys; beyond: re-seed
#define REPLICA_WINDOW_EVENTS_MAX    64           //  events sent and not yet acknowledged
#define REPLICA_WINDOW_BYTES_MAX     (64u << 20)  //  their bytes (one larger event goes alone)
#define REPLICA_SEED_CHUNK_BYTES     (1u << 20)   //  bytes of one seed chunk
#define REPLICA_SEED_NAME_SIZE_MAX   64           //  a seeded file's name, bytes
#define REPLICA_SEED_FILES_MAX       100000       //  files in one seed
#define REPLICA_TIMEOUT_MS_DEFAULT   1000         //  --repl-timeout-ms: no answer -> hello again
#define REPLICA_TIMEOUT_MS_MIN       10
#define REPLICA_PROMOTE_LINGER_MS    200 //  a promoted standby keeps its socket open: answers leave
#define REPLICA_PING_DIVISOR         4   //  a link pings every timeout / 4 (the lease's renewal)
#define REPLICA_LEASE_MARGIN_MS      20  //  plus timeout / 16: clock rates, scheduling
#define REPLICA_TIMEOUT_MS_MAX       600000
#define REPLICA_QUERY_TIMEOUT_MS     500   //  a standby's QUERY unanswered this long: asked again
#define REPLICA_QUERY_INTERVAL_MS    100   //  at most one QUERY sent per interval
#define REPLICA_UNCONFIRMED_RETRY_MS 10    //  a primary answered unconfirmed says hello again after
#define REPLICA_OLDER_RETRY_MS       30000 //  a primary whose seed was refused older: hello after
#define REPLICA_REFUSED_RETRY_MS     10 //  an event or seed refused: hello after, doubling to timeout/4
#define REPLICA_HEAD_QUIET_MS        10 //  a link this long without a batch: a moved head goes in a ping
#define REPLICA_HEADER_SIZE          64
#define REPLICA_MAGIC                0x50524c52u //  "RLRP", little-endian
#define REPLICA_VERSION              1

_Static_assert(REPLICA_WINDOW_BYTES_MAX <= REPLICA_LOG_BYTES_MAX,
               "a window never holds more than the log");
_Static_assert(REPLICA_SEED_CHUNK_BYTES <= REPLICA_EVENT_BYTES_MAX, "a chunk fits a message");

//  Meta keys of the standby's own position and of a promotion, all with
//  this prefix.
#define REPLICA_META_PREFIX "repl_"
//  stream id (8) + last applied seq (8) + the acknowledged head its primary
//  told in that stream (8; absent in a value of 16 bytes: 0)
#define REPLICA_META_POSITION     "repl_position"
#define REPLICA_POSITION_SIZE     24
#define REPLICA_POSITION_SIZE_OLD 16
#define REPLICA_META_PROMOTED     "repl_promoted" //  stream id fenced (8): this data is a primary's
#define REPLICA_META_FENCED       "repl_fenced"   //  a promotion fenced this primary (1 byte)
#define REPLICA_META_LEASE        "repl_lease_ms" //  a standby: the largest timeout its primary told (8)
//  A promoted directory serves nothing before this wall-clock time (ms since
//  the epoch, 8) + the wait it stood for (ms, 8: a clock that went back
//  never makes a longer one): the end of the old primary's lease, written
//  with the fence, so that a restart within the lease waits out the rest.
#define REPLICA_META_SERVE_AT "repl_serve_at"
//  A standby withdrawn by `fence` (a promotion among several standbys; the
//  stream it held, 8): it answers every replication message
//  standby_fenced, across restarts, until its directory is wiped; it may
//  still be promoted
#define REPLICA_META_WITHDRAWN "repl_withdrawn"
//  The standbys and quorum its primary told (8 + 8)
#define REPLICA_META_QUORUM "repl_quorum"
//  This data directory ran as a primary with --standby (1 byte; a seed
//  copies it): it asks its peers for their rings at start (server.c)
#define REPLICA_META_PRIMARY "repl_primary"

typedef enum {
    REPLICA_MODE_NONE = 0,  //  no standby
    REPLICA_MODE_SEMI = 1,  //  replies wait for the standbys' acknowledgements (default)
    REPLICA_MODE_ASYNC = 2, //  replies do not wait: invariant 9 suspended
} replica_mode_t;

//  Wire ------------------------------------------------------------------------

typedef enum {
    REPLICA_HELLO = 1,      //  primary -> standby: where are you? (reply: its position)
    REPLICA_BATCH = 2,      //  an event: a WriteBatch's bytes
    REPLICA_INGEST = 3,     //  an event: sorted entries ingested as one SST into cf
    REPLICA_SEED_BEGIN = 4, //  a seed at position seq begins (the standby wipes its copy)
    REPLICA_SEED_FILE = 5,  //  a chunk of a file: data = name, then bytes at offset
    REPLICA_SEED_END = 6,   //  the seed is complete (count: its files): install it
    REPLICA_PING = 7,       //  are you still my standby? (count: the ping's id, echoed; the lease)
    //  standby -> the primary its --standby-of names: which stream do you
    //  ship? (count: the query's id, echoed; stream: the stream that made
    //  it ask). Answered by an ACK: ok with the stream, or no_stream. A
    //  standby takes only the stream its --standby-of ships.
    REPLICA_QUERY = 8,
    REPLICA_ACK = 16, //  standby -> primary: the reply to each of the above
} replica_kind_t;

typedef enum {
    REPLICA_ST_OK = 0,
    REPLICA_ST_MALFORMED = 1,    //  bad header, sizes, batch bytes or entries
    REPLICA_ST_OVERSIZE = 2,     //  beyond REPLICA_EVENT_BYTES_MAX or a seed limit
    REPLICA_ST_OUT_OF_ORDER = 3, //  not the next event of the stream (seq: the position held)
    REPLICA_ST_UNAUTHORIZED = 4, //  not the shard's own key
    REPLICA_ST_WRONG_STREAM = 5, //  another stream than the one held: hello, then seed
    REPLICA_ST_STORAGE = 6,      //  the standby's write failed: it stops
    REPLICA_ST_FENCED = 7,       //  promoted: it acknowledges no primary any more
    REPLICA_ST_NOT_STANDBY = 8,  //  a primary (not promoted) answers: this endpoint is no standby
    //  A standby that `fence` withdrew (a promotion among several standbys):
    //  it acknowledges no primary until its directory is wiped. Unlike
    //  fenced, it does not fence the primary that hears it (that may be the
    //  new one): it only refuses to count towards its quorum.
    REPLICA_ST_STANDBY_FENCED = 9,
    //  The answer to a QUERY from a process that ships no stream as a
    //  primary: a standby (a promoted one in its handover too), a fenced
    //  or failed primary. The standby that asked takes no stream from it.
    REPLICA_ST_NO_STREAM = 10,
    //  A standby refuses a hello, ping, event or seed of a stream that its
    //  --standby-of did not confirm (it ships another stream, none, or did
    //  not answer yet): nothing changes. The primary counts it for nothing
    //  and asks again after REPLICA_UNCONFIRMED_RETRY_MS, doubling up to
    //  timeout / REPLICA_PING_DIVISOR.
    REPLICA_ST_UNCONFIRMED = 11,
    //  A standby refuses a seed whose history does not hold the
    //  incarnation of the copy it holds (replica_standby.c, THE OLDER
    //  SEED): the primary's data directory was lost, replaced or restored,
    //  and the standby may hold the only copy of acknowledged transfers.
    //  It keeps its copy. The primary counts it for nothing, logs once at
    //  error, and says hello again after REPLICA_OLDER_RETRY_MS.
    REPLICA_ST_OLDER = 12,
} replica_status_t;

typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;     //  replica_kind_t
    uint64_t stream;   //  the primary's stream id
    uint64_t seq;      //  event sequence; ACK: the standby's position; SEED_*: seed position
    uint32_t status;   //  ACK: replica_status_t; requests: 0
    uint32_t session;  //  the primary's session with this standby, echoed by ACK
    uint32_t cf;       //  INGEST: column family; SEED_FILE: the name's length
    uint32_t key_size; //  INGEST: key bytes of an entry; HELLO, PING: the primary's timeout, ms
    //  INGEST: bytes of an entry; HELLO, PING: the primary's standbys (high
    //  32 bits) and its quorum (low 32 bits), kept by the standby for
    //  rlctl promote (0: an older primary that does not tell)
    uint64_t entry_size;
    uint64_t count;     //  INGEST: entries; SEED_FILE: offset; SEED_END: files; PING (+ACK): id
    uint64_t data_size; //  bytes of the data frame (0: none)
} replica_header_t;

void replica_header_encode (const replica_header_t *h, uint8_t out[REPLICA_HEADER_SIZE]);
//  REPLICA_ST_OK or MALFORMED (size, magic, version, kind).
replica_status_t replica_header_decode (const uint8_t *in, size_t size, replica_header_t *h);
const char *replica_status_name (uint32_t status);
const char *replica_mode_name (replica_mode_t mode);
//  Checks that data is a WriteBatch the store itself makes: the header, a
//  count that matches, only puts, deletes and range deletes of column
//  families 0..STORE_CF_COUNT-1, nothing after the last record. RocksDB
//  would write a malformed batch into its WAL before it noticed.
bool replica_batch_valid (const uint8_t *data, size_t size);
//  One record of a WriteBatch: a put (key, value), a delete (key) or a
//  range delete (keys in [key, value)).
typedef enum { REPLICA_OP_PUT = 1, REPLICA_OP_DELETE, REPLICA_OP_DELETE_RANGE } replica_op_kind_t;
typedef struct {
    replica_op_kind_t kind;
    store_cf_t cf;
    const uint8_t *key;
    size_t key_size;
    const uint8_t *value; //  PUT: the value; DELETE_RANGE: the end key
    size_t value_size;
} replica_op_t;
typedef void (replica_batch_fn) (void *arg, const replica_op_t *op);
//  replica_batch_valid, calling fn (unless NULL) on each record in order as
//  it goes: a batch that turns out invalid may have called it on the
//  records before the fault, so check first (replica_batch_valid).
bool replica_batch_each (const uint8_t *data, size_t size, replica_batch_fn *fn, void *arg);
//  Checks an INGEST event: one of the shapes a checkpoint ingests (the
//  column family with its key and entry sizes), sizes that add up, keys
//  strictly increasing (store_ingest_sorted asserts it).
bool replica_ingest_valid (const replica_header_t *h, const uint8_t *data, size_t size);
//  replica_batch_valid, in the same walk: does the batch write (put,
//  delete, or a range delete that reaches) a standby's own marks, the meta
//  keys of REPLICA_META_PREFIX but REPLICA_META_PRIMARY, which a primary
//  writes for itself (*writes_marks; meaningful when valid)? A stream
//  never carries one; a standby refuses such a batch (malformed).
bool replica_batch_valid_marks (const uint8_t *data, size_t size, bool *writes_marks);
//  A seeded file's name: [A-Za-z0-9._-], not "." nor "..", at most
//  REPLICA_SEED_NAME_SIZE_MAX - 1 bytes.
bool replica_seed_name_valid (const char *name, size_t size);

//  The primary's side ------------------------------------------------------------

typedef struct replica_t replica_t;

typedef struct {
    const char *standbys[REPLICA_STANDBYS_MAX]; //  endpoints
    size_t standby_count;
    replica_mode_t mode;
    size_t quorum;   //  semi: acknowledgements a write waits for, 1..standby_count
    long timeout_ms; //  no answer within: hello again; semi: stalled
    const char *data_dir;
} replica_options_t;

//  Called by the loop when acknowledgements moved the release watermark,
//  when the lease came back, and when a standby answered fenced
//  (replica_fenced).
typedef void (replica_wake_fn) (void *arg);

//  Taps the store (every write from now on is an event), connects a DEALER
//  per standby (rl_auth_client pinning this shard's own key), registers
//  them with loop. NULL (logged) on failure.
//  head: memory's last timestamp at start (all of it in any seed).
replica_t *replica_new (const replica_options_t *options, store_t *store, rl_auth_t *auth,
                        zloop_t *loop, uint64_t head, replica_wake_fn *wake, void *wake_arg);
//  Untaps the store, closes the sockets, removes a seed in progress.
void replica_destroy (replica_t **self_p);
//  The loop wrote its group commit outq_seq (or a turn with nothing to
//  write), memory's last timestamp being head: it is replicated once the
//  events tapped so far are acknowledged. Then sends what the window allows.
void replica_written (replica_t *self, uint64_t outq_seq, uint64_t head);
//  The loop's thread, under the store's write lock (store_write_group_ship):
//  sends the events tapped so far to each STREAMING standby, as its window
//  allows, before the primary's own write of the last one. Nothing else (no
//  hello, no seed, which reads the store): replica_written does the rest.
void replica_ship (replica_t *self);
//  The head of the last group commit released (the change stream announces
//  no further); UINT64_MAX when nothing waits.
uint64_t replica_released_head (const replica_t *self);
//  The head the server acknowledged: the last timestamp every write it
//  answered covers (synced here and, in semi mode, released). Told to the
//  standbys, which keep it with their position: a primary whose history
//  ends the copy's incarnation before it was rolled back (replica.c, THE
//  ROLLED-BACK PRIMARY). Only grows.
void replica_acked_head (replica_t *self, uint64_t head);
//  The last outq sequence whose events every standby acknowledged; in
//  async mode (or with none), UINT64_MAX: nothing waits.
uint64_t replica_released (const replica_t *self);
//  Semi mode, and writes have waited for an acknowledgement longer than
//  the timeout, or fewer than the quorum answered a ping sent within the
//  timeout (at start: none answered within the timeout), counting, once
//  replica_lease_ok has held, only the standbys that streamed in this
//  stream as it does (so a primary that may not answer says so): new
//  writes and reads are answered busy. In either mode, too, while
//  replica_older.
bool replica_stalled (const replica_t *self);
//  A standby holds a copy this primary's data does not descend from
//  (found at its hello, or its seed refused as older). Stalled, no
//  lease, nothing released, however many other standbys acknowledge
//  (replica.c, "THE OLDER COPY").
bool replica_older (const replica_t *self);
//  May anything that reports ledger state leave now? Semi: every standby
//  has streamed in this stream (it holds the database as this process
//  opened it, its incarnation included: a peer hears of no attempt that a
//  standby promoted in the middle of a re-seed would not know) and
//  answered ok a ping sent at most the timeout ago (the lease: a standby
//  promoted since then waits that long before it serves). Async: every
//  standby answered once since start, or the timeout passed. Never once a
//  standby answered fenced, nor while replica_older; and at start not
//  before every standby decided (its hello checked, found older,
//  withdrawn, fenced) or the timeout passed (replica.c, "THE OLDER COPY").
bool replica_lease_ok (const replica_t *self);
//  A standby answered fenced: a promotion made it the primary, or the
//  server was fenced otherwise (replica_fence). Final.
bool replica_fenced (const replica_t *self);
//  The server is fenced by a ring (a peer's, or one loaded): from now on
//  nothing more is shipped, before it writes its fence marker, which no
//  standby may take (one still streaming, with several standbys, would
//  wipe its copy at its next start). Called from the loop's thread.
void replica_fence (replica_t *self);
//  A replication message (frames: route, header, data) reached a serving
//  primary's ROUTER: answers it on router, from the shard's own key only
//  (unauthorized otherwise): a QUERY (a standby asks which stream this
//  primary ships) ok with replica's stream, at once whatever the lease,
//  a stall or a backup hold (no_stream when replica is NULL: no
//  --standby, or a failed primary; or fenced); anything
//  else fenced when this primary was promoted and is not fenced itself
//  (its old primary learns it is fenced), not_standby otherwise. Returns
//  false (msg untouched) when msg is not one: a 64-byte header frame with
//  the replication magic before the last frame. Takes msg when it
//  returns true.
bool replica_answer_as_primary (zmsg_t **msg_p, zsock_t *router, rl_auth_t *auth, bool promoted,
                                const replica_t *replica);
//  Timers: hello again after a silence, seed chunks, the window.
void replica_tick (replica_t *self);
replica_mode_t replica_mode (const replica_t *self);
//  rlctl degrade: semi -> async, by hand (never on a timeout). Logged.
void replica_degrade (replica_t *self);
//  For status and logs: events tapped, the quorum's position (the
//  quorum-th highest acknowledged).
void replica_positions (const replica_t *self, uint64_t *tapped_p, uint64_t *acked_p);
//  repl_status: the primary's record (recs[0]: role, stream, positions,
//  quorum, mode, stalled) and one per link; returns the number filled
//  (1 + the standbys). The caller fills the incarnation.
size_t replica_describe (const replica_t *self, rl_repl_rec_t *recs, size_t recs_max);

//  The standby's side ------------------------------------------------------------

typedef struct {
    const char *name;
    const char *bind;
    const char *data_dir;
    const char *primary; //  --standby-of ENDPOINT (for status and logs)
    rl_durability_t durability;
    const char *keys_dir; //  NULL with insecure
    const char *cert;
    bool insecure;
} replica_standby_options_t;

//  A promoted standby on its way to serve as the primary: its store, still
//  open, and its socket, still bound (replica_standby.c, "The handover").
typedef struct replica_promoted_t replica_promoted_t;

//  Runs the standby until SIGINT/SIGTERM (0), until promoted (1: the data
//  directory is fenced; *promoted_p holds it: open it as a primary with
//  replica_promoted_store, then replica_promoted_serve before the server
//  binds), or on a failure (-1, logged). A data directory that a promotion
//  fenced returns 1 at once. A former primary's (fenced:
//  REPLICA_META_FENCED) is wiped first: it waits for a seed like an empty
//  standby.
int replica_standby_run (const replica_standby_options_t *options, replica_promoted_t **promoted_p);

//  Takes the promoted standby's open store: the caller owns it from here.
store_t *replica_promoted_store (replica_promoted_t *promoted);
//  Takes the warm state the standby kept of that store (its accounts, id
//  filter and transfers after the checkpoint, journal.h: ledger_open_warm), or NULL
//  when it holds none (a directory promoted before this start, a state
//  dropped): the caller owns it from here.
journal_warm_t *replica_promoted_warm (replica_promoted_t *promoted);

//  Waits until the promoted primary may serve (the linger after the
//  answer to promote, and the old primary's lease), answering on the
//  standby's socket as a promoted standby does meanwhile, then closes that
//  socket and frees the rest (the store too, if it was not taken). Returns
//  at once for a directory promoted before this start, or after a signal.
void replica_promoted_serve (replica_promoted_t **promoted_p);
//  A promoted directory restarted before the old primary's lease ended
//  (REPLICA_META_SERVE_AT): waits out the rest (at most the longest lease)
//  before the server binds. Returns at once otherwise, or on SIGINT/SIGTERM.
void replica_serve_wait (store_t *store);

#endif
