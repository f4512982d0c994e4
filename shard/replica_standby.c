/*  replica_standby.c: the standby's program (replica.h, docs/replication.md).

    A standby binds the shard's endpoint (--bind) and holds a copy of its
    primary's database: it applies each event of the primary's stream with
    its own synced write, in order, and acknowledges its position only
    after that write. Its position (stream id, last event applied) is in
    its meta column family, written in the same batch as the event (after
    the ingest, for an ingest event: an ingest repeated after a crash is
    the same SST again), so a restart resumes where the disk is.

    STATES
        EMPTY (stream 0) --seed begin--> SEEDING --seed end--> STREAMING
        STREAMING --another confirmed stream's seed begin--> SEEDING (the copy is replaced)
        any --fence (admin)--> WITHDRAWN: acknowledges nothing (standby_fenced)
        WITHDRAWN --promote (admin)--> PROMOTED
        any --promote (admin)--> PROMOTED: fenced, returns 1 to main.c
        any --a failed write--> returns -1 (exit 3): restart, the disk decides

    WHAT IT ANSWERS. Replication messages (three frames: routing id, a
    64-byte header, data) only from the shard's own key (and in the shard
    role): anything else is answered unauthorized and changes nothing; a
    malformed header, sizes that do not add up, a batch RocksDB would not
    take, an event that is not the next one (out_of_order, with the
    position held), another stream (wrong_stream) or an event beyond
    REPLICA_EVENT_BYTES_MAX (oversize) are answered with their code and
    change nothing. Of those from the shard's key, only the CONFIRMED
    stream is taken (after fenced and standby_fenced, which every primary
    still hears): the one the primary at --standby-of says it ships.

    ITS PRIMARY'S STREAM. Every primary of a shard holds the shard's key,
    so the key does not tell which one this standby follows: an old
    primary that never heard of a promotion could seed a wiped standby of
    the new one and, with a quorum of them, serve again. So the standby
    asks --standby-of (a QUERY on its own DEALER, CURVE with the shard's
    key pinned) which stream it ships, at start and whenever a message of
    another stream arrives (one in flight, at most one per
    REPLICA_QUERY_INTERVAL_MS, forgotten after REPLICA_QUERY_TIMEOUT_MS
    with its socket, made anew), and answers every message of a stream
    that is not the confirmed one unconfirmed, changing nothing (no seed
    begun or dropped, no event, no lease, nothing kept). A primary answers
    a QUERY at once, stalled or not; a standby (promoted or not) answers
    it no_stream. Streams are compared, not endpoint strings: another name
    of the same process confirms it all the same.

    Client-protocol frames: status (the standby's state,
    commits = its position), repl_status (the copy it holds), promote and
    fence (admin role); every other
    operation is answered unavailable: a standby serves no reads or
    writes, which could show a state the primary has not acknowledged.

    THE SEED is written into DATA.seed-tmp beside the data directory; at
    its end the files are synced, the store closed, DATA renamed to
    DATA.old, the seed renamed to DATA, the parent directory synced (both
    renames durable), DATA.old removed, the store opened
    and the position written. A crash in between leaves DATA.old or
    DATA.seed-tmp, removed at the next start. Only a crash between the two
    renames leaves DATA missing beside both, and then the seed is
    complete (its files, directory and marks were synced before the first
    rename): the start installs it as the second rename would have. (DATA
    missing otherwise: an empty standby, seeded again.)

    THE ACKNOWLEDGED HEAD. Every HELLO, PING and BATCH of the primary
    tells the last timestamp every write it answered covers; the standby
    keeps the highest of its copy's stream in its position mark (written
    with each event; a hello or ping that moves it is written then) and
    tells it in its answer to a HELLO. A seed whose history ends the
    copy's incarnation before it is of a primary rolled back (replica.c,
    THE ROLLED-BACK PRIMARY): refused older, like a seed of another
    history (s_seed_older). A seed starts its copy at 0.

    THE LEASE. The primary pings (REPLICA_PING) and tells its timeout in
    every HELLO and PING; its lease runs from a ping answered ok. A
    promotion waits, before the process serves as the primary, until that
    timeout (plus a margin) has passed since the last ok answer: the old
    primary, which may not have heard "fenced", has stopped answering by
    then (replica.c).

    THE FENCE. promote writes REPLICA_META_PROMOTED (synced), answers, and
    from then on every replication message is answered fenced: the old
    primary gets no acknowledgement, so in semi-synchronous mode it can
    acknowledge nothing more. The marker stays: a restart of this data
    directory, even with --standby-of, runs as the primary.

    WITHDRAWN (fence, op 82: a promotion among several standbys, rlctl
    promote's rule). REPLICA_META_WITHDRAWN is written (synced) and from
    then on, across restarts, every replication message is answered
    standby_fenced: the old primary cannot count this standby towards its
    quorum, and the primary that hears it is not fenced by it (it may be
    the new one, given a leftover standby). The copy stays as it is and may
    still be promoted. A seed never carries the mark (nor the promotion,
    nor what the copy's own primary told it: REPLICA_META_QUORUM, the
    standbys and quorum this standby's primary tells in every HELLO and
    PING, which repl_status reports with the copy's incarnation for
    rlctl's choice).

    After the answer the socket stays open for REPLICA_PROMOTE_LINGER_MS
    (fenced to replication, ok to a repeated promote) before the process
    serves as the primary: libzmq may drop a message sent just before its
    socket closes, linger or not, and the operator must hear the answer.
    A promote whose answer was lost anyway is safe to repeat: the primary
    answers ok.

    THE LEDGER STATE IN MEMORY (journal.h, "a standby's warm state"). A
    primary's recovery costs three reads that grow with the shard: the
    accounts family, the scan of every stored id into the id filter, and
    the read of the transfers after the last checkpoint, which it replays
    onto the accounts. So once it holds a copy (after a seed, and at every
    start: rebuilt from its disk) the standby builds all three as recovery
    would, in a thread (journal_warm_start: the loop goes on applying and
    acknowledging events, which a side record keeps for the build until
    the loop takes it), and keeps them current with every event it
    applies: it walks each WriteBatch (replica_batch_each) and each
    ingest, and an account record put or deleted goes into or out of its
    table of accounts, a transfer record joins the transfers after the
    checkpoint, a new checkpoint_ts drops those it covers, an index entry
    or an imported id joins the filter (journal_warm_write,
    journal_warm_ingest); a filter that fills up is
    built again, bigger, from a scan in a thread, the old one answering
    meanwhile (journal_warm_settle, after each event and at each tick). A
    promotion, a fence or a seed's beginning ends a build that runs (a
    first one leaves no state: the promotion reads the disk). A write it
    cannot follow (a transfer record deleted or out of order, checkpoint_ts
    moving back or deleted, an account record a recovery could not load)
    or memory running out drops the state, logged:
    the promotion then recovers from disk as before. At the promotion the
    state goes with the store (replica_promoted_warm, ledger_open_warm):
    journal_open checks it against the disk (its checkpoint_ts, its first
    and last transfer after it), takes its accounts over and replays its
    transfers onto them from memory instead of reading either; timestamps,
    the two-phase records, the pending transfers and the new incarnation
    are recovered from disk as before (small reads). The result is the
    state a recovery of that disk builds: test_replication_warm checks it
    with journal.warm.verify, which reads what was taken from memory from
    the disk as well.

    THE HANDOVER. The loop ends as soon as promote is answered, and the
    standby is handed to main.c (replica_promoted_t) with its store still
    open and its socket still bound: the primary path takes the store as
    it is (no close and reopen, which would replay RocksDB's WAL: the
    standby's writes since its last flush) and runs recovery and the new
    incarnation while the lease runs out. Only then does
    replica_promoted_serve run the loop again until the end of the linger
    and of the lease (answering what came meanwhile, as above) and close
    the socket, so that the server binds it. Nothing is served before the
    lease ends, exactly as before; the work of opening overlaps the wait.
*/
#include "replica.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "events.h"
#include "failpoint.h"
#include "log.h"
#include "rl_limits.h"

typedef struct {
    const replica_standby_options_t *o; //  &options: main.c's may be gone by the handover
    replica_standby_options_t options;  //  (its strings are the command line's, which stay)
    store_t *store;                     //  NULL between a seed's close and open
    journal_warm_t *warm;               //  the copy's ledger state in memory (or NULL)
    rl_auth_t *auth;
    zsock_t *router;
    zloop_t *loop;
    char own_key[RL_KEY_TEXT_SIZE];
    uint64_t stream;   //  0: no copy yet
    uint64_t position; //  the last event applied
    //  THE ACKNOWLEDGED HEAD: the highest its primary told in the copy's
    //  stream (HELLO, PING: seq; BATCH: count), kept with the position
    uint64_t acked_head;
    uint64_t applied; //  events applied since start
    uint64_t refused; //  replication messages refused
    uint64_t requests;
    int64_t started_ms;
    bool promoted;
    bool withdrawn;          //  fenced by `fence`: answers replication standby_fenced
    uint64_t told_standbys;  //  what its primary told (HELLO, PING): its standbys
    uint64_t told_quorum;    //  and its quorum (0: never told)
    long primary_timeout_ms; //  the largest the primary told (HELLO, PING): its lease
    int64_t last_ok_ms;      //  when it last answered ok to its primary (0: never)
    int result;              //  what run returns: 0 signal, 1 promoted, -1 failed
    int64_t promoted_ms;     //  when promote was answered (0: at start, a promoted directory)
    int64_t serve_ms;        //  the primary serves no sooner: the linger, the old primary's lease
    //  THE STREAM OF ITS PRIMARY: the one --standby-of confirmed (0: none)
    zsock_t *query;          //  a DEALER to --standby-of (CURVE, the shard's key pinned)
    uint64_t confirmed;      //  the stream it said it ships
    uint64_t query_id;       //  the last QUERY sent
    bool query_inflight;     //  it awaits its answer
    int64_t query_sent_ms;   //  when it went (0: never)
    uint64_t logged_stream;  //  the last stream whose refusal was logged
    bool query_silent;       //  a QUERY went unanswered (logged once until one is answered)
    int64_t query_opened_ms; //  when the query socket was last opened (or tried)
    uint64_t bad_answers;    //  answers to QUERY dropped (not well-formed, or not ours)
    //  the seed being received
    bool seeding;
    uint64_t seed_stream;
    uint64_t seed_pos;
    uint64_t seed_files;
    char seed_name[REPLICA_SEED_NAME_SIZE_MAX];
    int seed_fd;
    uint64_t seed_size;
    char seed_dir[4200];
    char old_dir[4200];
} s_standby_t;

static int
s_remove_tree (const char *path)
{
    char cmd[9000];
    struct stat st;
    if (stat (path, &st) != 0) {
        return 0;
    }
    //  Paths come from --data (an operator's), quoted.
    snprintf (cmd, sizeof cmd, "rm -rf -- '%s'", path);
    return system (cmd) == 0 ? 0 : -1;
}

static int
s_open_store (s_standby_t *self)
{
    char err[512];
    self->store = store_open (self->o->data_dir, self->o->durability, err, sizeof err);
    if (!self->store) {
        rl_error ("standby: cannot open %s: %s", self->o->data_dir, err);
        return -1;
    }
    uint8_t value[REPLICA_POSITION_SIZE];
    size_t size = 0;
    self->stream = self->position = self->acked_head = 0;
    int rc = store_get (self->store, STORE_CF_META, REPLICA_META_POSITION,
                        strlen (REPLICA_META_POSITION), value, sizeof value, &size);
    if (rc == 1 && (size == REPLICA_POSITION_SIZE || size == REPLICA_POSITION_SIZE_OLD)) {
        self->stream = codec_get_u64 (value);
        self->position = codec_get_u64 (value + 8);
        self->acked_head = size == REPLICA_POSITION_SIZE ? codec_get_u64 (value + 16) : 0;
    }
    rc = store_get (self->store, STORE_CF_META, REPLICA_META_PROMOTED,
                    strlen (REPLICA_META_PROMOTED), value, sizeof value, &size);
    self->promoted = rc == 1;
    rc = store_get (self->store, STORE_CF_META, REPLICA_META_WITHDRAWN,
                    strlen (REPLICA_META_WITHDRAWN), value, sizeof value, &size);
    self->withdrawn = rc == 1;
    self->told_standbys = self->told_quorum = 0;
    rc = store_get (self->store, STORE_CF_META, REPLICA_META_QUORUM, strlen (REPLICA_META_QUORUM),
                    value, sizeof value, &size);
    if (rc == 1 && size == 16) {
        self->told_standbys = codec_get_u64 (value);
        self->told_quorum = codec_get_u64 (value + 8);
    }
    rc = store_get (self->store, STORE_CF_META, REPLICA_META_LEASE, strlen (REPLICA_META_LEASE),
                    value, sizeof value, &size);
    if (rc == 1 && size == 8 && codec_get_u64 (value) <= REPLICA_TIMEOUT_MS_MAX) {
        //  An ok answer may have gone just before this start: the lease
        //  runs from here.
        self->primary_timeout_ms = (long) codec_get_u64 (value);
        self->last_ok_ms = zclock_mono ();
    }
    rc = store_get (self->store, STORE_CF_META, REPLICA_META_FENCED, strlen (REPLICA_META_FENCED),
                    value, sizeof value, &size);
    if (rc == 1) {
        //  A former primary that a promotion fenced: its un-replicated tail
        //  must never come back. Wiped; it waits for a seed.
        rl_log_event (RL_LOG_WARN, "fence",
                      "%s is a former primary fenced by a promotion: wiped, waiting for a seed",
                      self->o->data_dir);
        store_close (&self->store);
        if (s_remove_tree (self->o->data_dir) != 0
            || (mkdir (self->o->data_dir, 0755) != 0 && errno != EEXIST)) {
            rl_error ("standby: cannot wipe %s", self->o->data_dir);
            return -1;
        }
        return s_open_store (self);
    }
    return 0;
}

static void
s_position_value (uint64_t stream, uint64_t position, uint64_t acked_head,
                  uint8_t out[REPLICA_POSITION_SIZE])
{
    codec_put_u64 (out, stream);
    codec_put_u64 (out + 8, position);
    codec_put_u64 (out + 16, acked_head);
}

//  The acknowledged head its primary tells (THE ACKNOWLEDGED HEAD), of a
//  message of the copy's stream, kept when it moved: written, not synced
//  (a ping comes after each release the link is quiet for, and a sync
//  there would wait in front of the next event); the next event's synced write makes it
//  durable, and its position value carries it again. A failed write
//  keeps the old one.
static void
s_acked_head_told (s_standby_t *self, const replica_header_t *h, uint64_t head)
{
    if (!self->store || self->seeding || self->stream == 0 || h->stream != self->stream
        || head <= self->acked_head) {
        return;
    }
    uint8_t value[REPLICA_POSITION_SIZE];
    s_position_value (self->stream, self->position, head, value);
    store_batch_t *batch = store_batch_new ();
    if (!batch) {
        return; //  out of memory: the next event's write carries it
    }
    store_batch_put_into (self->store, batch, STORE_CF_META, REPLICA_META_POSITION,
                          strlen (REPLICA_META_POSITION), value, sizeof value);
    if (store_batch_write (self->store, batch) == 0) {
        self->acked_head = head;
    }
    store_batch_destroy (&batch);
}

//  What the copy holds of what its primary acknowledged (THE ACKNOWLEDGED
//  HEAD): the head told, capped by the last timestamp the copy's own
//  writes stored (a standby behind the quorum, or in async mode, may hold
//  less than its primary acknowledged). 0: nothing to guard.
static uint64_t
s_acked_held (const s_standby_t *self)
{
    uint8_t value[8];
    size_t size = 0;
    if (self->acked_head == 0 || !self->store
        || store_get (self->store, STORE_CF_META, JOURNAL_META_LAST_TS,
                      strlen (JOURNAL_META_LAST_TS), value, sizeof value, &size)
               != 1
        || size != sizeof value) {
        return 0;
    }
    uint64_t stored = codec_get_u64 (value);
    return stored < self->acked_head ? stored : self->acked_head;
}

//  The warm state ----------------------------------------------------------------

//  Begins building the warm state of the copy held (journal_warm_start:
//  recovery's read of the accounts, scan of the ids and read of the
//  transfers after the checkpoint, in a thread; the loop goes on applying and acknowledging
//  events, which the build takes when it is done). One that cannot begin is
//  logged: a promotion then recovers from disk.
static void
s_warm_build (s_standby_t *self)
{
    journal_warm_destroy (&self->warm);
    if (!self->store || self->stream == 0) {
        return; //  no copy yet
    }
    char err[256];
    size_t keys_min = IDFILTER_KEYS_MIN, extra = 2 * (size_t) RL_SHARD_CHECKPOINT_TRANSFERS;
    if (RL_FAILPOINT (REPL_STANDBY_WARM_SMALL) != 0) {
        keys_min = IDFILTER_KEYS_FLOOR;
        extra = 0;
    }
    self->warm = journal_warm_start (self->store, keys_min, extra, err, sizeof err);
    if (!self->warm) {
        rl_warn ("standby: cannot keep the copy's ledger state in memory (%s): a promotion will "
                 "recover it from the disk",
                 err);
        return;
    }
    rl_info ("standby: the copy's id filter, transfers after the checkpoint and accounts being "
             "built in the background");
}

//  A build done or abandoned, a filter to grow (journal_warm_settle): after
//  each event and at each tick. A state that no longer follows the disk is
//  dropped, logged: a promotion then recovers from disk.
static void
s_warm_settle (s_standby_t *self, uint64_t seq)
{
    char err[256];
    if (self->warm && journal_warm_settle (self->warm, err, sizeof err) != 0) {
        rl_warn ("standby: the copy's ledger state in memory dropped at event %" PRIu64
                 " (%s): a promotion will recover it from the disk",
                 seq, err);
        journal_warm_destroy (&self->warm);
    }
}

static void
s_warm_op (void *arg, const replica_op_t *op)
{
    journal_warm_write (arg, op->cf, op->key, op->key_size, op->value, op->value_size,
                        op->kind == REPLICA_OP_DELETE_RANGE);
}

//  An event just applied: into the warm state (or a build's side record).
//  One it cannot follow drops it, logged: a promotion then recovers from disk.
static void
s_warm_event (s_standby_t *self, const replica_header_t *h, const uint8_t *data, size_t size)
{
    if (!self->warm) {
        return;
    }
    if (h->kind == REPLICA_BATCH) {
        bool valid = replica_batch_each (data, size, s_warm_op, self->warm);
        assert (valid); //  checked before it was applied
        (void) valid;
    } else {
        journal_warm_ingest (self->warm, (store_cf_t) h->cf, data, h->entry_size, h->key_size,
                             h->count);
    }
    s_warm_settle (self, h->seq);
}

//  Replies ----------------------------------------------------------------------

static bool s_incarnation (store_t *store, uint64_t *counter_p, uint64_t *nonce_p);

static void
s_ack (s_standby_t *self, zframe_t **id_p, const replica_header_t *req, replica_status_t status)
{
    replica_header_t h = {
        .magic = REPLICA_MAGIC,
        .version = REPLICA_VERSION,
        .kind = REPLICA_ACK,
        .stream = self->stream,
        .seq = self->position,
        .status = status,
        .session = req ? req->session : 0,
        .cf = req ? req->kind : 0,
        .count = req && (req->kind == REPLICA_PING || req->kind == REPLICA_QUERY) ? req->count : 0};
    uint64_t counter = 0, nonce = 0;
    uint8_t told[8];
    if (req && req->kind == REPLICA_HELLO && self->stream != 0
        && (status == REPLICA_ST_OK || status == REPLICA_ST_UNCONFIRMED)
        && s_incarnation (self->store, &counter, &nonce)) {
        //  A standby's copy tells its incarnation with every answer to a
        //  HELLO (confirmed or not), and, as the data, the acknowledged
        //  head its primary told it: the primary checks at once that its
        //  data descends from the copy and kept everything acknowledged
        //  in it, before any seed (THE OLDER SEED).
        h.entry_size = counter;
        h.count = nonce;
        h.data_size = sizeof told;
        codec_put_u64 (told, s_acked_held (self));
    }
    if (status != REPLICA_ST_OK) {
        self->refused++;
    } else {
        self->last_ok_ms = zclock_mono (); //  the primary's lease may run from here
    }
    uint8_t raw[REPLICA_HEADER_SIZE];
    replica_header_encode (&h, raw);
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, id_p);
    zmsg_addmem (msg, raw, sizeof raw);
    zmsg_addmem (msg, h.data_size ? told : NULL, h.data_size);
    if (zmsg_send (&msg, self->router) != 0) {
        zmsg_destroy (&msg);
    }
}

static void
s_client_reply (s_standby_t *self, zframe_t **id_p, const rl_header_t *req, uint32_t status,
                const rl_status_rec_t *rec)
{
    rl_header_t h = codec_reply_header (req, status, rec ? 1 : 0, 0);
    size_t body = rec ? RL_STATUS_SIZE : 0;
    zframe_t *frame = zframe_new (NULL, codec_frame_size (body));
    zmsg_t *msg = zmsg_new ();
    if (!frame || !msg) {
        zframe_destroy (&frame);
        zmsg_destroy (&msg);
        zframe_destroy (id_p);
        return;
    }
    uint8_t *out = codec_encode_frame (&h, NULL, body, zframe_data (frame));
    if (rec) {
        codec_encode_status (rec, out);
    }
    zmsg_append (msg, id_p);
    zmsg_append (msg, &frame);
    if (zmsg_send (&msg, self->router) != 0) {
        zmsg_destroy (&msg);
    }
}

static void s_seed_abandon (s_standby_t *self);

//  The promotion's linger and the old primary's lease are over: the loop
//  ends, the primary serves.
static int
s_on_promoted (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_standby_t *self = arg;
    assert (self->promoted);
    if (self->result == 0) {
        self->result = 1;
    }
    return -1;
}

//  The end of the old primary's lease through this standby (monotonic ms;
//  0: none): the timeout it told, plus the margin, after the last ok answer.
static int64_t
s_lease_end (const s_standby_t *self)
{
    if (!self->last_ok_ms) {
        return 0;
    }
    return self->last_ok_ms + self->primary_timeout_ms + self->primary_timeout_ms / 16
           + REPLICA_LEASE_MARGIN_MS;
}

//  The incarnation (counter, nonce) a store holds (coordinator.c's meta
//  key): true when there is one.
static bool
s_incarnation (store_t *store, uint64_t *counter_p, uint64_t *nonce_p)
{
    uint8_t value[16];
    size_t size = 0;
    if (!store
        || store_get (store, STORE_CF_META, "incarnation", strlen ("incarnation"), value,
                      sizeof value, &size)
               != 1
        || size != sizeof value) {
        return false;
    }
    *counter_p = codec_get_u64 (value);
    *nonce_p = codec_get_u64 (value + 8);
    return true;
}

//  repl_status: the copy this standby holds, what its primary told it, and
//  what is left of that primary's lease through it.
static void
s_repl_status (s_standby_t *self, zframe_t **id_p, const rl_header_t *req)
{
    rl_repl_rec_t rec = {.role = RL_REPL_STANDBY,
                         .state = self->promoted    ? RL_REPL_PROMOTED
                                  : self->withdrawn ? RL_REPL_FENCED
                                  : self->seeding   ? RL_REPL_SEEDING
                                  : self->stream    ? RL_REPL_STREAMING
                                                    : RL_REPL_HELLO,
                         .stream = self->stream,
                         .position = self->position,
                         .quorum = (uint32_t) self->told_quorum,
                         .standbys = (uint32_t) self->told_standbys,
                         .timeout_ms = (uint64_t) self->primary_timeout_ms};
    int64_t left = s_lease_end (self) - zclock_mono ();
    rec.lease_ms = left > 0 ? (uint64_t) left : 0;
    //  The incarnation of the copy (coordinator.c's meta key): a promotion
    //  picks the newest copy by (incarnation, position).
    if (self->stream) {
        (void) s_incarnation (self->store, &rec.incarnation, &rec.nonce);
    }
    snprintf (rec.endpoint, sizeof rec.endpoint, "%s", self->o->primary ? self->o->primary : "");
    rl_header_t h = codec_reply_header (req, RL_STATUS_OK, 1, 0);
    zframe_t *frame = zframe_new (NULL, codec_frame_size (RL_REPL_SIZE));
    zmsg_t *msg = zmsg_new ();
    if (!frame || !msg) {
        zframe_destroy (&frame);
        zmsg_destroy (&msg);
        zframe_destroy (id_p);
        return;
    }
    uint8_t *out = codec_encode_frame (&h, NULL, RL_REPL_SIZE, zframe_data (frame));
    codec_encode_repl (&rec, out);
    zmsg_append (msg, id_p);
    zmsg_append (msg, &frame);
    if (zmsg_send (&msg, self->router) != 0) {
        zmsg_destroy (&msg);
    }
}

//  fence (rlctl promote with several standbys): from now on, and across
//  restarts, every replication message is answered standby_fenced, so the
//  old primary can no longer count this standby towards its quorum. The
//  copy stays as it is: it may be the one promoted next.
static void
s_fence (s_standby_t *self, zframe_t **id_p, const rl_header_t *h)
{
    if (self->promoted || self->withdrawn) {
        s_client_reply (self, id_p, h, RL_STATUS_OK, NULL); //  a repeat
        return;
    }
    if (!self->store) {
        s_client_reply (self, id_p, h, RL_STATUS_UNAVAILABLE, NULL);
        return;
    }
    if (self->seeding) {
        //  The copy held stays (promote drops a seed too): a seed's files
        //  would only be wiped at the next start.
        s_seed_abandon (self);
    }
    uint8_t value[8];
    codec_put_u64 (value, self->stream);
    store_batch_put (self->store, STORE_CF_META, REPLICA_META_WITHDRAWN,
                     strlen (REPLICA_META_WITHDRAWN), value, sizeof value);
    if (store_commit (self->store) != 0) {
        rl_error ("standby: fence: cannot write the mark: %s", store_error (self->store));
        s_client_reply (self, id_p, h, RL_STATUS_STORAGE_ERROR, NULL);
        self->result = -1;
        return;
    }
    self->withdrawn = true;
    if (self->warm && !journal_warm_stop (self->warm)) {
        journal_warm_destroy (&self->warm); //  no events any more: no build either
    }
    int64_t left = s_lease_end (self) - zclock_mono ();
    rl_log_event (RL_LOG_WARN, "fence",
                  "FENCED by a promotion at position %" PRIu64 " of stream %016" PRIx64
                  ": acknowledges no primary any more (the old primary's lease through it "
                  "ends in %" PRId64 " ms); wipe the directory to make it a standby again",
                  self->position, self->stream, left > 0 ? left : 0);
    s_client_reply (self, id_p, h, RL_STATUS_OK, NULL);
}

//  Client-protocol requests: status, promote; others unavailable.
static void
s_on_client (s_standby_t *self, zframe_t **id_p, zframe_t *payload)
{
    self->requests++;
    rl_header_t h;
    rl_status_t st = codec_check_request (zframe_data (payload), zframe_size (payload), &h);
    if (!codec_frame_has_header (zframe_size (payload))) {
        zframe_destroy (id_p); //  no request id to answer to
        return;
    }
    const char *key = "";
    unsigned roles = rl_auth_roles (self->auth, payload, &key);
    if (st != RL_STATUS_OK) {
        s_client_reply (self, id_p, &h, st, NULL);
        return;
    }
    if (!(roles & rl_op_roles (h.operation))) {
        s_client_reply (self, id_p, &h, RL_STATUS_UNAUTHORIZED, NULL);
        return;
    }
    if (h.operation == RL_OP_STATUS) {
        rl_status_rec_t rec = {0};
        snprintf (rec.name, sizeof rec.name, "%s", self->o->name);
        rec.state = RL_SHARD_STANDBY; //  promoted too: serving begins after the reopen
        rec.durability = self->o->durability;
        rec.commits = self->position;
        rec.requests = self->requests;
        rec.malformed = self->refused;
        rec.pid = (uint32_t) getpid ();
        rec.uptime_ms = (uint64_t) (zclock_mono () - self->started_ms);
        rec.insecure = self->o->insecure;
        rec.keys = (uint32_t) rl_auth_key_count (self->auth);
        rec.handshakes_refused = rl_auth_refused (self->auth);
        s_client_reply (self, id_p, &h, RL_STATUS_OK, &rec);
        return;
    }
    if (h.operation == RL_OP_REPL_STATUS) {
        s_repl_status (self, id_p, &h);
        return;
    }
    if (h.operation == RL_OP_FENCE) {
        s_fence (self, id_p, &h);
        return;
    }
    if (h.operation != RL_OP_PROMOTE) {
        s_client_reply (self, id_p, &h, RL_STATUS_UNAVAILABLE, NULL);
        return;
    }
    if (self->promoted) {
        s_client_reply (self, id_p, &h, RL_STATUS_OK, NULL); //  a repeat: already done
        return;
    }
    if (self->stream == 0 || !self->store) {
        rl_error ("standby: promote refused: this standby holds no complete copy (never "
                  "seeded, or its first seed is in progress)");
        s_client_reply (self, id_p, &h, RL_STATUS_UNAVAILABLE, NULL);
        return;
    }
    if (self->told_quorum != 0 && self->told_quorum < self->told_standbys && !self->withdrawn) {
        //  Its primary acknowledged a write once q of its k standbys held
        //  it: a write may be on the others only. The rule (rlctl promote
        //  SHARD A,B,...) fences k - q + 1 first and promotes the most
        //  advanced of them; promoting this one alone could lose writes.
        rl_error ("standby: promote refused: its primary's quorum is %" PRIu64 " of %" PRIu64
                  " standbys, so an acknowledged write may be on another standby only: fence "
                  "%" PRIu64 " standbys and promote the most advanced (rlctl promote SHARD "
                  "A,B,...)",
                  self->told_quorum, self->told_standbys,
                  self->told_standbys - self->told_quorum + 1);
        s_client_reply (self, id_p, &h, RL_STATUS_UNAVAILABLE, NULL);
        return;
    }
    if (self->seeding) {
        //  A re-seed (its primary restarted, or it fell behind) left the
        //  copy it holds intact: in semi mode nothing was acknowledged
        //  beyond it (docs/replication.md). The seed is dropped.
        rl_warn ("standby: promote during a seed: the seed is dropped, the copy held (stream "
                 "%016" PRIx64 " position %" PRIu64 ") is promoted",
                 self->stream, self->position);
        s_seed_abandon (self);
    }
    //  The old primary's lease (replica.c) ran from at most our last ok
    //  answer: it has stopped answering before this one starts.
    int64_t linger = REPLICA_PROMOTE_LINGER_MS;
    if (self->last_ok_ms) {
        int64_t lease_end = self->last_ok_ms + self->primary_timeout_ms
                            + self->primary_timeout_ms / 16 + REPLICA_LEASE_MARGIN_MS;
        int64_t left = lease_end - zclock_mono ();
        linger = left > linger ? left : linger;
    }
    uint8_t value[8];
    codec_put_u64 (value, self->stream);
    store_batch_put (self->store, STORE_CF_META, REPLICA_META_PROMOTED,
                     strlen (REPLICA_META_PROMOTED), value, sizeof value);
    //  With the fence, when serving may begin: a restart before then
    //  (replica_serve_wait) waits out the rest of the lease.
    uint8_t serve_at[16];
    codec_put_u64 (serve_at, (uint64_t) (zclock_time () + linger));
    codec_put_u64 (serve_at + 8, (uint64_t) linger);
    store_batch_put (self->store, STORE_CF_META, REPLICA_META_SERVE_AT,
                     strlen (REPLICA_META_SERVE_AT), serve_at, sizeof serve_at);
    if (store_commit (self->store) != 0) {
        rl_error ("standby: promote: cannot write the fence: %s", store_error (self->store));
        s_client_reply (self, id_p, &h, RL_STATUS_STORAGE_ERROR, NULL);
        self->result = -1;
        return;
    }
    self->promoted = true;
    rl_log_event (RL_LOG_WARN, "promote",
                  "PROMOTED at position %" PRIu64 " of stream %016" PRIx64
                  ": fenced, the old primary gets no more acknowledgements; opening as the "
                  "primary",
                  self->position, self->stream);
    s_client_reply (self, id_p, &h, RL_STATUS_OK, NULL);
    self->promoted_ms = zclock_mono ();
    self->serve_ms = self->promoted_ms + linger;
    rl_info ("promote: serving in %" PRId64 " ms (the old primary's lease: %ld ms); opening "
             "as the primary meanwhile",
             linger, self->primary_timeout_ms);
    self->result = 1; //  the loop ends: main.c opens the primary while the lease runs out
}

//  Events -----------------------------------------------------------------------

static replica_status_t
s_apply (s_standby_t *self, const replica_header_t *h, const uint8_t *data, size_t size)
{
    if (self->seeding || h->stream != self->stream || self->stream == 0) {
        return REPLICA_ST_WRONG_STREAM;
    }
    //  Bytes that do not check are refused whatever their position.
    bool marks = false;
    if (h->kind == REPLICA_BATCH ? !replica_batch_valid_marks (data, size, &marks)
                                 : !replica_ingest_valid (h, data, size)) {
        return REPLICA_ST_MALFORMED;
    }
    if (marks) {
        //  Only this standby writes its marks (its position, a promotion,
        //  a withdrawal, a fence): taken from a stream, they would make it
        //  a primary, or wipe it, at its next start.
        rl_error ("standby: refused event %" PRIu64 ": it writes this standby's own marks "
                  "(meta keys " REPLICA_META_PREFIX "*)",
                  h->seq);
        return REPLICA_ST_MALFORMED;
    }
    if (h->seq <= self->position) {
        return REPLICA_ST_OK; //  a repeat: already applied
    }
    if (h->seq != self->position + 1) {
        return REPLICA_ST_OUT_OF_ORDER;
    }
    if (RL_FAILPOINT (REPL_STANDBY_REFUSE) != 0) {
        return REPLICA_ST_MALFORMED; //  test only: an event this standby will never take
    }
    RL_FAILPOINT (REPL_STANDBY_BEFORE_APPLY); //  delay: the primary must wait
    uint8_t value[REPLICA_POSITION_SIZE];
    uint64_t acked_head = h->kind == REPLICA_BATCH && h->count > self->acked_head
                              ? h->count
                              : self->acked_head;
    s_position_value (self->stream, h->seq, acked_head, value);
    int rc;
    if (h->kind == REPLICA_BATCH) {
        rc = store_apply_batch (self->store, data, size, REPLICA_META_POSITION,
                                strlen (REPLICA_META_POSITION), value, sizeof value);
    } else {
        rc = store_ingest_sorted (self->store, (store_cf_t) h->cf, data, h->entry_size, h->key_size,
                                  h->count);
        if (rc == 0) {
            store_batch_put (self->store, STORE_CF_META, REPLICA_META_POSITION,
                             strlen (REPLICA_META_POSITION), value, sizeof value);
            rc = store_commit (self->store);
        }
    }
    if (rc != 0) {
        rl_error ("standby: applying event %" PRIu64 " failed: %s; stopping (a restart "
                  "recovers from the disk)",
                  h->seq, store_error (self->store));
        self->result = -1;
        return REPLICA_ST_STORAGE;
    }
    self->position = h->seq;
    self->acked_head = acked_head;
    self->applied++;
    s_warm_event (self, h, data, size);
    RL_FAILPOINT (REPL_STANDBY_APPLIED); //  crash: applied, never acknowledged
    return REPLICA_ST_OK;
}

//  The seed -----------------------------------------------------------------------

static void
s_seed_close_file (s_standby_t *self)
{
    if (self->seed_fd >= 0) {
        fsync (self->seed_fd);
        close (self->seed_fd);
        self->seed_fd = -1;
    }
}

static void
s_seed_abandon (s_standby_t *self)
{
    s_seed_close_file (self);
    s_remove_tree (self->seed_dir);
    self->seeding = false;
    self->seed_name[0] = '\0';
}

static replica_status_t
s_seed_begin (s_standby_t *self, const replica_header_t *h)
{
    s_seed_abandon (self);
    if (self->warm && !journal_warm_stop (self->warm)) {
        journal_warm_destroy (&self->warm); //  the copy held is about to be replaced
    }
    if (h->stream == 0 || mkdir (self->seed_dir, 0755) != 0) {
        rl_error ("standby: cannot begin a seed in %s: %s", self->seed_dir, strerror (errno));
        return h->stream == 0 ? REPLICA_ST_MALFORMED : REPLICA_ST_STORAGE;
    }
    self->seeding = true;
    self->seed_stream = h->stream;
    self->seed_pos = h->seq;
    self->seed_files = 0;
    self->seed_size = 0;
    rl_info ("standby: seed of stream %016" PRIx64 " at position %" PRIu64 " begins", h->stream,
             h->seq);
    return REPLICA_ST_OK;
}

static replica_status_t
s_seed_file (s_standby_t *self, const replica_header_t *h, const uint8_t *data, size_t size)
{
    if (!self->seeding || h->stream != self->seed_stream) {
        return REPLICA_ST_WRONG_STREAM;
    }
    size_t name_size = h->cf;
    if (name_size > size || !replica_seed_name_valid ((const char *) data, name_size)) {
        return REPLICA_ST_MALFORMED;
    }
    bool same = strlen (self->seed_name) == name_size
                && memcmp (self->seed_name, data, name_size) == 0;
    if (!same) {
        if (h->count != 0) {
            return REPLICA_ST_OUT_OF_ORDER;
        }
        if (self->seed_files >= REPLICA_SEED_FILES_MAX) {
            return REPLICA_ST_OVERSIZE;
        }
        s_seed_close_file (self);
        memcpy (self->seed_name, data, name_size);
        self->seed_name[name_size] = '\0';
        char path[8400];
        snprintf (path, sizeof path, "%s/%s", self->seed_dir, self->seed_name);
        self->seed_fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (self->seed_fd < 0) {
            rl_error ("standby: seed file %s: %s", path, strerror (errno));
            return errno == EEXIST ? REPLICA_ST_OUT_OF_ORDER : REPLICA_ST_STORAGE;
        }
        self->seed_files++;
        self->seed_size = 0;
    } else if (h->count != self->seed_size) {
        return REPLICA_ST_OUT_OF_ORDER;
    }
    RL_FAILPOINT (REPL_STANDBY_SEED_FILE); //  delay: a seed held in progress
    const uint8_t *bytes = data + name_size;
    size_t n = size - name_size;
    while (n > 0) {
        ssize_t w = write (self->seed_fd, bytes, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rl_error ("standby: writing the seed: %s", strerror (errno));
            s_seed_abandon (self);
            return REPLICA_ST_STORAGE;
        }
        bytes += w;
        n -= (size_t) w;
        self->seed_size += (uint64_t) w;
    }
    return REPLICA_ST_OK;
}

//  Syncs the directory holding path (its renames).
static void
s_sync_parent (const char *path)
{
    char parent[4200];
    snprintf (parent, sizeof parent, "%s", path);
    char *slash = strrchr (parent, '/');
    if (!slash) {
        snprintf (parent, sizeof parent, ".");
    } else if (slash == parent) {
        parent[1] = '\0';
    } else {
        *slash = '\0';
    }
    int dfd = open (parent, O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || fsync (dfd) != 0) {
        rl_warn ("standby: cannot sync the directory %s: %s", parent, strerror (errno));
    }
    if (dfd >= 0) {
        close (dfd);
    }
}

//  Opens the seed where it was received and sets a standby's marks in
//  it, synced: its position (the seed's stream and position), the lease
//  and what its primary told it; no promotion, no withdrawal. 0, or -1.
//  THE OLDER SEED: does the seed descend from the copy held? Every start
//  of a shard (a counter one higher, a new random nonce; a promoted
//  standby's one above its copy's) is remembered in its store's table of
//  incarnations (events.c), which seeds carry along. A seed of this
//  copy's future holds the copy's incarnation in that table (or is of that
//  very start: a seed again within one run). One that does not is a
//  primary whose data is not this copy's future: a lost or replaced data
//  directory (a new shard's history, however often it restarted), or one
//  restored from a backup older than the copy's start. Taking it would
//  replace what may be the only copy of acknowledged transfers with less.
//  Only a standby's copy (a position in a stream) is guarded: a former
//  primary's own directory is seeded as before (the runbook wipes it).
//  A table that begins after the copy's start cannot tell: taken. The
//  copy's incarnation also goes with every answer to a HELLO (s_ack), so
//  that the primary finds an older copy before it ships any seed (replica.c,
//  "THE OLDER COPY"); this check at the seed's end stays the standby's own.
static bool
s_seed_older (s_standby_t *self, store_t *seed)
{
    uint64_t have = 0, have_nonce = 0, got = 0, got_nonce = 0;
    if (self->stream == 0 || !s_incarnation (self->store, &have, &have_nonce)) {
        return false; //  no standby's copy held: any seed
    }
    bool known = s_incarnation (seed, &got, &got_nonce);
    if (known && got == have && got_nonce == have_nonce) {
        return false;
    }
    int descends = events_history_has (seed, have, have_nonce);
    uint64_t end = UINT64_MAX, held = s_acked_held (self);
    if (descends == 1 && held != 0 && events_history_end (seed, have, &end) == 0 && end < held) {
        rl_log_event (RL_LOG_ERROR, "replication",
                      "standby: refused a seed of incarnation %" PRIu64 " (nonce %016" PRIx64
                      ") whose history ends this copy's incarnation %" PRIu64 " at ts %" PRIu64
                      ", before ts %" PRIu64 ", up to which this copy holds writes the "
                      "primary acknowledged: the primary's data was rolled back (restored from a "
                      "snapshot or backup taken while this copy streamed?); this copy is kept: "
                      "promote this standby (rlctl promote), or wipe its data directory to take "
                      "the primary's",
                      got, got_nonce, have, end, held);
        return true;
    }
    if (descends == 1 || descends == 2) {
        return false;
    }
    rl_log_event (RL_LOG_ERROR, "replication",
                  "standby: refused a seed of incarnation %" PRIu64 " (nonce %016" PRIx64
                  ") whose history %s this copy's incarnation %" PRIu64 " (nonce %016" PRIx64
                  "): the primary's data is not this copy's future (its data directory lost, "
                  "replaced or restored?); this copy is kept: promote this standby (rlctl "
                  "promote), or wipe its data directory to take the primary's",
                  got, got_nonce, descends < 0 ? "cannot be read for" : "does not hold", have,
                  have_nonce);
    return true;
}

//  -1 storage; -2 the seed is older than the copy (THE OLDER SEED).
static int
s_seed_marks (s_standby_t *self, const replica_header_t *h, long lease, uint64_t told_standbys,
              uint64_t told_quorum)
{
    char err[512];
    store_t *seed = store_open (self->seed_dir, self->o->durability, err, sizeof err);
    if (!seed) {
        rl_error ("standby: cannot open the seed in %s: %s", self->seed_dir, err);
        return -1;
    }
    if (s_seed_older (self, seed)) {
        store_close (&seed);
        return -2;
    }
    uint8_t value[REPLICA_POSITION_SIZE];
    s_position_value (h->stream, h->seq, 0, value); //  a new copy: told again
    store_batch_put (seed, STORE_CF_META, REPLICA_META_POSITION, strlen (REPLICA_META_POSITION),
                     value, sizeof value);
    codec_put_u64 (value, (uint64_t) lease);
    store_batch_put (seed, STORE_CF_META, REPLICA_META_LEASE, strlen (REPLICA_META_LEASE), value,
                     8);
    uint8_t told[16];
    codec_put_u64 (told, told_standbys);
    codec_put_u64 (told + 8, told_quorum);
    store_batch_put (seed, STORE_CF_META, REPLICA_META_QUORUM, strlen (REPLICA_META_QUORUM), told,
                     sizeof told);
    store_batch_delete (seed, STORE_CF_META, REPLICA_META_PROMOTED, strlen (REPLICA_META_PROMOTED));
    store_batch_delete (seed, STORE_CF_META, REPLICA_META_WITHDRAWN,
                        strlen (REPLICA_META_WITHDRAWN));
    store_batch_delete (seed, STORE_CF_META, REPLICA_META_FENCED, strlen (REPLICA_META_FENCED));
    int rc = store_commit (seed);
    if (rc == 0) {
        rc = store_sync (seed); //  durable in every mode, before the renames
    }
    if (rc != 0) {
        rl_error ("standby: cannot set the seed's marks: %s", store_error (seed));
    }
    store_close (&seed);
    return rc;
}

static replica_status_t
s_seed_end (s_standby_t *self, const replica_header_t *h)
{
    if (!self->seeding || h->stream != self->seed_stream || h->seq != self->seed_pos) {
        return REPLICA_ST_WRONG_STREAM;
    }
    if (h->count != self->seed_files || h->count == 0) {
        return REPLICA_ST_MALFORMED;
    }
    s_seed_close_file (self);
    int dfd = open (self->seed_dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync (dfd);
        close (dfd);
    }
    long lease = self->primary_timeout_ms;
    uint64_t told_standbys = self->told_standbys, told_quorum = self->told_quorum;
    //  The copy is of a primary: its own marks (a promotion, a position of
    //  another stream, a lease, what its own primary told it, a fence) are
    //  not this standby's. They are set in the seed, synced, before it
    //  takes the copy's place: a crash after the renames must find a
    //  standby's copy, never a promoted primary's (which a start opens as
    //  the primary, whatever its command line).
    int marked = s_seed_marks (self, h, lease, told_standbys, told_quorum);
    if (marked == -2) {
        s_seed_abandon (self); //  the copy stays as it is
        return REPLICA_ST_OLDER;
    }
    if (marked != 0) {
        return REPLICA_ST_STORAGE;
    }
    journal_warm_destroy (&self->warm); //  of the copy replaced
    store_close (&self->store);
    s_remove_tree (self->old_dir);
    if (rename (self->o->data_dir, self->old_dir) != 0 && errno != ENOENT) {
        rl_error ("standby: cannot move %s aside: %s", self->o->data_dir, strerror (errno));
        return REPLICA_ST_STORAGE;
    }
    RL_FAILPOINT (REPL_STANDBY_SEED_ASIDE);
    if (rename (self->seed_dir, self->o->data_dir) != 0) {
        rl_error ("standby: cannot install the seed: %s", strerror (errno));
        return REPLICA_ST_STORAGE;
    }
    s_sync_parent (self->o->data_dir); //  both renames are durable before the copy counts
    RL_FAILPOINT (REPL_STANDBY_SEED_INSTALLED);
    s_remove_tree (self->old_dir);
    self->seeding = false;
    self->seed_name[0] = '\0';
    if (s_open_store (self) != 0) {
        return REPLICA_ST_STORAGE;
    }
    assert (!self->promoted && !self->withdrawn);
    self->primary_timeout_ms = lease;
    self->told_standbys = told_standbys;
    self->told_quorum = told_quorum;
    self->promoted = false;
    self->withdrawn = false;
    self->stream = h->stream;
    self->position = h->seq;
    rl_info ("standby: seeded, stream %016" PRIx64 " at position %" PRIu64 " (%" PRIu64 " files)",
             self->stream, self->position, h->count);
    s_warm_build (self);
    return REPLICA_ST_OK;
}

//  At a start: a crash between a seed's two renames (THE SEED) left DATA
//  missing, DATA.old and a complete seed. The seed takes DATA's place, as
//  the second rename would have; what is left is removed by the caller.
static void
s_install_interrupted (s_standby_t *self)
{
    struct stat st;
    if (stat (self->o->data_dir, &st) == 0 || errno != ENOENT || stat (self->old_dir, &st) != 0
        || stat (self->seed_dir, &st) != 0) {
        return;
    }
    if (rename (self->seed_dir, self->o->data_dir) != 0) {
        rl_error ("standby: cannot install the seed a crash left in %s: %s (removed: seeded "
                  "again)",
                  self->seed_dir, strerror (errno));
        return;
    }
    s_sync_parent (self->o->data_dir);
    rl_info ("standby: a crash came between the renames of a complete seed: it is installed in "
             "%s",
             self->o->data_dir);
}

//  The stream of its primary ------------------------------------------------------

//  Asks --standby-of which stream it ships (for `stream`, the one that made
//  it ask): one QUERY in flight, at most one sent per
//  REPLICA_QUERY_INTERVAL_MS; one unanswered for REPLICA_QUERY_TIMEOUT_MS is
//  forgotten (a late answer is dropped by its id).
static void
s_query (s_standby_t *self, uint64_t stream)
{
    int64_t now = zclock_mono ();
    if (!self->query
        || (self->query_inflight && now - self->query_sent_ms < REPLICA_QUERY_TIMEOUT_MS)
        || (self->query_sent_ms && now - self->query_sent_ms < REPLICA_QUERY_INTERVAL_MS)) {
        return;
    }
    replica_header_t h = {.magic = REPLICA_MAGIC,
                          .version = REPLICA_VERSION,
                          .kind = REPLICA_QUERY,
                          .stream = stream,
                          .count = ++self->query_id};
    uint8_t raw[REPLICA_HEADER_SIZE];
    replica_header_encode (&h, raw);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, raw, sizeof raw);
    zmsg_addmem (msg, NULL, 0);
    self->query_sent_ms = now; //  a send that fails (the queue is full) waits the interval too
    if (zmsg_send (&msg, self->query) != 0) {
        zmsg_destroy (&msg);
        return;
    }
    self->query_inflight = true;
}

//  The answer of --standby-of: the stream it ships becomes the only one
//  this standby takes. Anything else that arrives there is dropped
//  (counted, logged once a query): the query times out and is asked again.
static int
s_on_query_answer (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_standby_t *self = arg;
    for (int n = 0; n < 16; n++) {
        zmsg_t *msg = zmsg_recv (sock); //  rcvtimeo 0
        if (!msg) {
            break;
        }
        zframe_t *head = zmsg_first (msg);
        zframe_t *body = zmsg_next (msg);
        replica_header_t h;
        bool well_formed = zmsg_size (msg) == 2 && head && body && zframe_size (body) == 0
                           && replica_header_decode (zframe_data (head), zframe_size (head), &h)
                                  == REPLICA_ST_OK
                           && h.kind == REPLICA_ACK && h.cf == REPLICA_QUERY && h.data_size == 0;
        zmsg_destroy (&msg);
        if (!well_formed || !self->query_inflight || h.count != self->query_id) {
            self->bad_answers++;
            if (self->bad_answers == 1 || self->bad_answers % 1000 == 0) {
                rl_warn (
                    "standby: %s answer from %s to its stream query: dropped (%" PRIu64 " so far)",
                    well_formed ? "a late" : "a malformed", self->o->primary, self->bad_answers);
            }
            continue;
        }
        self->query_inflight = false;
        self->query_silent = false;
        uint64_t stream = h.status == REPLICA_ST_OK ? h.stream : 0;
        if (stream != self->confirmed) {
            if (stream) {
                rl_log_event (RL_LOG_INFO, "replication",
                              "standby: %s ships stream %016" PRIx64
                              ": this standby takes that stream only",
                              self->o->primary, stream);
            } else {
                rl_log_event (RL_LOG_WARN, "replication",
                              "standby: %s ships no stream (answered %s): this standby takes "
                              "none until it does",
                              self->o->primary, replica_status_name (h.status));
            }
            self->confirmed = stream;
            self->logged_stream = 0; //  a refusal is logged again
        }
    }
    return 0;
}

//  Opens the query socket (again: a query unanswered within its timeout
//  closes it, so that nothing stale stays queued and a connection that a
//  hostile answer broke is made anew); ask: asks at once (at start: the
//  answer is usually in before the primary's first hello). On a failure
//  (an endpoint that does not resolve, no sockets) query stays NULL: no
//  stream is taken, and the tick tries again.
static int
s_query_open (s_standby_t *self, bool ask)
{
    if (self->query) {
        zloop_reader_end (self->loop, self->query);
        zsock_destroy (&self->query);
    }
    self->query_opened_ms = zclock_mono ();
    self->query = zsock_new (ZMQ_DEALER);
    if (!self->query || rl_auth_client (self->auth, self->query, self->own_key) != 0) {
        zsock_destroy (&self->query);
        return -1;
    }
    zsock_set_rcvtimeo (self->query, 0);
    zsock_set_sndtimeo (self->query, 0);
    zsock_set_sndhwm (self->query, 4);
    zsock_set_rcvhwm (self->query, 16);
    zsock_set_linger (self->query, 0);
    zsock_set_maxmsgsize (self->query, 4 * REPLICA_HEADER_SIZE); //  an answer is 64 bytes
    //  A restarted primary is asked as soon as it binds (libzmq's 100 ms
    //  by default), less and less often while it stays away.
    zsock_set_reconnect_ivl (self->query, 10);
    zsock_set_reconnect_ivl_max (self->query, REPLICA_QUERY_TIMEOUT_MS);
    if (zsock_connect (self->query, "%s", self->o->primary) != 0) {
        zsock_destroy (&self->query);
        return -1;
    }
    if (zloop_reader (self->loop, self->query, s_on_query_answer, self) != 0) {
        zsock_destroy (&self->query);
        return -1;
    }
    if (ask) {
        s_query (self, 0);
    }
    return 0;
}

//  A replication message of `stream` from the shard's key: taken only when
//  --standby-of confirmed that it ships it. Otherwise asks it (again) and
//  says why once per stream; the message is answered unconfirmed.
static bool
s_stream_confirmed (s_standby_t *self, const replica_header_t *h)
{
    if (self->confirmed != 0 && h->stream == self->confirmed) {
        return true;
    }
    s_query (self, h->stream);
    if (h->stream != self->logged_stream) {
        self->logged_stream = h->stream;
        char why[96];
        if (self->confirmed) {
            snprintf (why, sizeof why, "it ships stream %016" PRIx64, self->confirmed);
        } else {
            snprintf (why, sizeof why, "%s",
                      self->query_inflight ? "asked, no answer yet" : "it ships no stream");
        }
        rl_log_event (RL_LOG_WARN, "replication",
                      "standby: refused stream %016" PRIx64
                      " (unconfirmed): this standby takes only the stream of its --standby-of "
                      "%s, and %s",
                      h->stream, self->o->primary, why);
    }
    return false;
}

//  Dispatch ---------------------------------------------------------------------

static void
s_on_repl (s_standby_t *self, zframe_t **id_p, zframe_t *head, zframe_t *body)
{
    replica_header_t h;
    const char *key = "";
    unsigned roles = rl_auth_roles (self->auth, head, &key);
    bool own = self->o->insecure || strcmp (key, self->own_key) == 0;
    if (!(roles & RL_ROLE_SHARD) || !own) {
        rl_warn ("standby: a replication message from key %s, not this shard's: refused", key);
        replica_header_decode (zframe_data (head), zframe_size (head), &h);
        s_ack (self, id_p, &h, REPLICA_ST_UNAUTHORIZED);
        return;
    }
    if (replica_header_decode (zframe_data (head), zframe_size (head), &h) != REPLICA_ST_OK
        || h.kind == REPLICA_ACK || h.status != 0) {
        rl_warn ("standby: a malformed replication header: refused");
        s_ack (self, id_p, &h, REPLICA_ST_MALFORMED);
        return;
    }
    if (h.data_size > REPLICA_EVENT_BYTES_MAX) {
        s_ack (self, id_p, &h, REPLICA_ST_OVERSIZE);
        return;
    }
    if (h.data_size != zframe_size (body)) {
        s_ack (self, id_p, &h, REPLICA_ST_MALFORMED);
        return;
    }
    if (h.kind == REPLICA_QUERY) {
        //  Another standby asks which stream this process ships: none (a
        //  promoted standby in its handover too: that one asks again).
        s_ack (self, id_p, &h, REPLICA_ST_NO_STREAM);
        return;
    }
    if (self->promoted) {
        s_ack (self, id_p, &h, REPLICA_ST_FENCED);
        return;
    }
    if (self->withdrawn) {
        s_ack (self, id_p, &h, REPLICA_ST_STANDBY_FENCED); //  counts for no primary's quorum
        return;
    }
    if (!s_stream_confirmed (self, &h)) {
        //  Not the stream of the primary its --standby-of names: an old
        //  primary that never heard of the promotion (docs/replication.md,
        //  "A standby takes only its primary's stream"). Nothing changes:
        //  no seed, no event, no lease, no abandoned seed.
        s_ack (self, id_p, &h, REPLICA_ST_UNCONFIRMED);
        return;
    }
    if ((h.kind == REPLICA_HELLO || h.kind == REPLICA_PING) && h.key_size <= REPLICA_TIMEOUT_MS_MAX
        && (long) h.key_size > self->primary_timeout_ms && self->store && !self->seeding) {
        //  The lease a promotion waits out; kept for a restart, which may
        //  follow an answer within the old primary's lease.
        uint8_t value[8];
        codec_put_u64 (value, h.key_size);
        store_batch_put (self->store, STORE_CF_META, REPLICA_META_LEASE,
                         strlen (REPLICA_META_LEASE), value, sizeof value);
        if (store_commit (self->store) == 0) {
            self->primary_timeout_ms = (long) h.key_size;
        }
    }
    uint64_t told_standbys = h.entry_size >> 32, told_quorum = h.entry_size & UINT32_MAX;
    if ((h.kind == REPLICA_HELLO || h.kind == REPLICA_PING) && told_quorum >= 1
        && told_quorum <= told_standbys && told_standbys <= REPLICA_STANDBYS_MAX && self->store
        && !self->seeding
        && (told_standbys != self->told_standbys || told_quorum != self->told_quorum)) {
        //  What rlctl promote needs to fence enough standbys (k - q + 1).
        uint8_t value[16];
        codec_put_u64 (value, told_standbys);
        codec_put_u64 (value + 8, told_quorum);
        store_batch_put (self->store, STORE_CF_META, REPLICA_META_QUORUM,
                         strlen (REPLICA_META_QUORUM), value, sizeof value);
        if (store_commit (self->store) == 0) {
            self->told_standbys = told_standbys;
            self->told_quorum = told_quorum;
        }
    }
    if (h.kind == REPLICA_HELLO || h.kind == REPLICA_PING) {
        s_acked_head_told (self, &h, h.seq);
    }
    const uint8_t *data = zframe_data (body);
    size_t size = zframe_size (body);
    replica_status_t st = REPLICA_ST_OK;
    switch (h.kind) {
        case REPLICA_HELLO:
            if (self->seeding) {
                s_seed_abandon (self); //  the primary began again
            }
            break;
        case REPLICA_PING:
            break; //  ok: not promoted (the primary's lease)
        case REPLICA_BATCH:
        case REPLICA_INGEST:
            st = s_apply (self, &h, data, size);
            break;
        case REPLICA_SEED_BEGIN:
            st = s_seed_begin (self, &h);
            break;
        case REPLICA_SEED_FILE:
            st = s_seed_file (self, &h, data, size);
            break;
        case REPLICA_SEED_END:
            st = s_seed_end (self, &h);
            if (st == REPLICA_ST_STORAGE) {
                self->result = -1;
            }
            break;
        default:
            st = REPLICA_ST_MALFORMED;
    }
    if (st != REPLICA_ST_OK) {
        rl_warn ("standby: %s event %" PRIu64 " refused: %s (position %" PRIu64 ")",
                 h.kind == REPLICA_BATCH ? "batch" : "replication", h.seq, replica_status_name (st),
                 self->position);
    }
    s_ack (self, id_p, &h, st);
    if (st == REPLICA_ST_OK && (h.kind == REPLICA_BATCH || h.kind == REPLICA_INGEST)) {
        RL_FAILPOINT (REPL_STANDBY_ACKED); //  crash: acknowledged, maybe not received
    }
}

static int
s_on_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    s_standby_t *self = arg;
    for (size_t n = 0; n < RL_SHARD_REQUESTS_PER_TURN_MAX && self->result == 0; n++) {
        zmsg_t *msg = zmsg_recv (router);
        if (!msg) {
            break;
        }
        zframe_t *id = zmsg_pop (msg);
        size_t frames = zmsg_size (msg);
        zframe_t *first = zmsg_first (msg);
        if (!id || !first) {
            self->refused++;
        } else if (frames == 1) {
            s_on_client (self, &id, first);
        } else if (frames == 2) {
            s_on_repl (self, &id, first, zmsg_next (msg));
        } else {
            self->refused++;
            rl_warn ("standby: a message of %zu frames: dropped", frames);
        }
        zframe_destroy (&id);
        zmsg_destroy (&msg);
    }
    return self->result == 0 ? 0 : -1; //  -1 ends the loop: promoted or failed
}

static int
s_on_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_standby_t *self = arg;
    int64_t now = zclock_mono ();
    rl_auth_tick (self->auth, now, false);
    s_warm_settle (self, self->position); //  a build done while no event came
    if (!self->query && now - self->query_opened_ms >= REPLICA_QUERY_TIMEOUT_MS) {
        s_query_open (self, true); //  it failed before (logged): tried again
    }
    if (self->query_inflight && now - self->query_sent_ms >= REPLICA_QUERY_TIMEOUT_MS) {
        self->query_inflight = false;
        s_query_open (self, false);
        if (!self->query_silent) {
            self->query_silent = true;
            rl_log_event (RL_LOG_WARN, "replication",
                          "standby: %s did not answer which stream it ships within %d ms: no "
                          "stream is taken but one it confirmed; asking again",
                          self->o->primary, REPLICA_QUERY_TIMEOUT_MS);
        }
    }
    return 0;
}

//  Frees what the standby holds (its store too, unless the primary path took it).
static void
s_standby_destroy (s_standby_t **self_p)
{
    s_standby_t *self = *self_p;
    if (!self) {
        return;
    }
    s_seed_abandon (self);
    if (self->query && self->loop) {
        zloop_reader_end (self->loop, self->query);
    }
    zsock_destroy (&self->query);
    zsock_destroy (&self->router);
    zloop_destroy (&self->loop);
    rl_auth_destroy (&self->auth);
    journal_warm_destroy (&self->warm); //  before the store it reads
    store_close (&self->store);
    free (self);
    *self_p = NULL;
}

int
replica_standby_run (const replica_standby_options_t *o, replica_promoted_t **promoted_p)
{
    assert (o && o->name && o->bind && o->data_dir && o->primary && promoted_p);
    *promoted_p = NULL;
    s_standby_t *self = calloc (1, sizeof *self);
    if (!self) {
        rl_error ("standby: out of memory");
        return -1;
    }
    self->options = *o;
    self->o = &self->options;
    self->seed_fd = -1;
    self->started_ms = zclock_mono ();
    snprintf (self->seed_dir, sizeof self->seed_dir, "%s.seed-tmp", o->data_dir);
    snprintf (self->old_dir, sizeof self->old_dir, "%s.old", o->data_dir);
    s_install_interrupted (self);
    s_remove_tree (self->seed_dir); //  a seed a crash interrupted
    s_remove_tree (self->old_dir);
    if (mkdir (o->data_dir, 0755) != 0 && errno != EEXIST) {
        rl_error ("standby: cannot create %s: %s", o->data_dir, strerror (errno));
        s_standby_destroy (&self);
        return -1;
    }
    if (s_open_store (self) != 0) {
        s_standby_destroy (&self);
        return -1;
    }
    if (self->promoted) {
        //  Promoted before this start: no socket; what is left of the old
        //  primary's lease, if the restart came within it, is waited out
        //  before the server binds (replica_serve_wait).
        rl_info ("standby: %s was promoted: opening it as the primary", o->data_dir);
        self->serve_ms = self->started_ms;
        *promoted_p = (replica_promoted_t *) self;
        return 1;
    }
    s_warm_build (self); //  a restart: rebuilt from the copy on disk
    char err[768] = "out of memory";
    self->auth = o->insecure ? rl_auth_new_insecure ()
                             : rl_auth_new (o->keys_dir, o->cert, err, sizeof err);
    if (!self->auth) {
        rl_error ("standby: %s", err);
        s_standby_destroy (&self);
        return -1;
    }
    zcert_t *cert = rl_auth_cert (self->auth);
    snprintf (self->own_key, sizeof self->own_key, "%s", cert ? zcert_public_txt (cert) : "");
    self->loop = zloop_new ();
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->loop || !self->router || rl_auth_server (self->auth, self->router) != 0
        || rl_auth_attach (self->auth, self->loop) != 0) {
        rl_error ("standby: out of memory or sockets");
        s_standby_destroy (&self);
        return -1;
    }
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_linger (self->router, 500); //  the answer to promote leaves before the close
    zsock_set_maxmsgsize (self->router, (int) (REPLICA_EVENT_BYTES_MAX + 4096u));
    zsock_set_rcvhwm (self->router, 4 * REPLICA_WINDOW_EVENTS_MAX);
    if (zsock_bind (self->router, "%s", o->bind) < 0) {
        rl_error ("standby: cannot bind %s: %s", o->bind, zmq_strerror (zmq_errno ()));
        s_standby_destroy (&self);
        return -1;
    }
    zloop_reader (self->loop, self->router, s_on_readable, self);
    zloop_timer (self->loop, 100, 0, s_on_tick, self);
    if (s_query_open (self, true) != 0) {
        rl_error ("standby: cannot connect to %s to ask which stream it ships: no stream is "
                  "taken until it can (tried again every %d ms)",
                  o->primary, REPLICA_QUERY_TIMEOUT_MS);
    }
    rl_info ("standby of %s: serving replication on %s, data %s, stream %016" PRIx64
             " position %" PRIu64 "%s",
             o->primary ? o->primary : "?", o->bind, o->data_dir, self->stream, self->position,
             self->stream ? "" : " (empty: waits for a seed)");
    zloop_start (self->loop);
    int rc = self->result;
    if (rc == 1) {
        *promoted_p = (replica_promoted_t *) self; //  its store and socket go on (the handover)
        return 1;
    }
    s_standby_destroy (&self);
    return rc;
}

store_t *
replica_promoted_store (replica_promoted_t *promoted)
{
    s_standby_t *self = (s_standby_t *) promoted;
    assert (self && self->store);
    store_t *store = self->store;
    self->store = NULL;
    return store;
}

journal_warm_t *
replica_promoted_warm (replica_promoted_t *promoted)
{
    s_standby_t *self = (s_standby_t *) promoted;
    assert (self);
    //  A build done is taken; one that runs is ended: a first one leaves
    //  nothing (recovery reads the disk), a growth leaves the old filter,
    //  which holds every id.
    s_warm_settle (self, self->position);
    if (self->warm && !journal_warm_stop (self->warm)) {
        rl_info ("standby: the copy's ledger state in memory was not built yet: recovery reads "
                 "the disk");
        journal_warm_destroy (&self->warm);
    }
    journal_warm_t *warm = self->warm;
    self->warm = NULL;
    return warm;
}

void
replica_promoted_serve (replica_promoted_t **promoted_p)
{
    assert (promoted_p);
    s_standby_t *self = (s_standby_t *) *promoted_p;
    if (!self) {
        return;
    }
    *promoted_p = NULL;
    int64_t now = zclock_mono ();
    if (self->router && self->loop) {
        int64_t left = self->serve_ms - now;
        rl_info ("promote: the primary opened in %" PRId64 " ms; serving %s",
                 now - self->promoted_ms, left > 0 ? "after the rest of the lease" : "now");
        //  What came meanwhile is answered as during the linger (fenced,
        //  ok, standby, unavailable), then the loop waits out the rest.
        self->result = 0;
        if (zloop_timer (self->loop, (size_t) (left > 0 ? left : 1), 1, s_on_promoted, self) >= 0
            && !zsys_interrupted) {
            zloop_start (self->loop);
        }
    }
    s_standby_destroy (&self);
}

void
replica_serve_wait (store_t *store)
{
    assert (store);
    uint8_t value[16];
    size_t size = 0;
    if (store_get (store, STORE_CF_META, REPLICA_META_SERVE_AT, strlen (REPLICA_META_SERVE_AT),
                   value, sizeof value, &size)
            != 1
        || size != sizeof value) {
        return; //  never promoted (or promoted before the time was kept)
    }
    int64_t left = (int64_t) codec_get_u64 (value) - zclock_time ();
    int64_t lease = (int64_t) codec_get_u64 (value + 8);
    const int64_t max = REPLICA_TIMEOUT_MS_MAX + REPLICA_TIMEOUT_MS_MAX / 16
                        + REPLICA_LEASE_MARGIN_MS + REPLICA_PROMOTE_LINGER_MS;
    if (left <= 0) {
        return;
    }
    if (lease < 0 || lease > max) {
        lease = max;
    }
    if (left > lease) {
        left = lease; //  the wall clock went back: the wait is never longer than the lease
    }
    rl_warn ("promote: restarted within the old primary's lease: serving in %" PRId64 " ms", left);
    int64_t end = zclock_mono () + left;
    while (!zsys_interrupted && zclock_mono () < end) {
        int64_t step = end - zclock_mono ();
        zclock_sleep ((int) (step > 50 ? 50 : step > 0 ? step : 0));
    }
}
