/*  shard.c: the shard server process.

    One ROUTER socket, driven by a czmq reactor (zloop). Each time the
    socket becomes readable the shard runs one TURN:

        1. drain up to RL_SHARD_REQUESTS_PER_TURN_MAX requests, without
           blocking, and apply each in arrival order to the ledger (writes
           go into one WriteBatch, replies are built but held back);
        2. group commit: write the batch and sync the WAL, once;
        3. send every held reply;
        4. checkpoint if due (ledger.c).

    So nothing is answered before the write that justifies it is durable,
    and every request of a turn shares one sync. Reads are answered in the
    same turn, after the commit that precedes them.

    Errors: a request that does not decode gets a reply whose header names
    the problem (codec_check_request); a frame too short to carry even a
    request id is dropped and counted. A failed write or sync (store.c)
    answers storage_error to every request of the turn and stops the
    process with exit code 3: memory may be ahead of disk, so the only safe
    state is the one on disk, which a restart recovers.

    Ownership: the shard serves the accounts its ring gives it. A record for
    another shard's account gets wrong_shard, and the reply header carries
    the shard's epoch so that the router knows to refresh. load_ring is
    accepted only with a higher epoch, and the ring is persisted, so a
    restart never goes back to an older one.

    Usage: shard --name NAME --bind ENDPOINT --data DIR [--ring FILE]
                 [--durability sync|nosync|manual-wal]
*/
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "codec.h"
#include "failpoint.h"
#include "ledger.h"
#include "rl_limits.h"
#include "log.h"
#include "ring.h"
#include "store.h"

#define META_RING "ring"

typedef struct {
    const char *name;
    const char *bind;
    const char *data_dir;
    const char *ring_file;
    rl_durability_t durability;
    long checkpoint_transfers;  //  0: the default
} s_options_t;

typedef struct {
    s_options_t options;
    zsock_t *router;
    store_t *store;
    ledger_t *ledger;
    ring_t *ring;
    int self_index;             //  this shard in the ring, or -1 (owns nothing)
    bool failed;                //  storage failed: answer, then exit 3
    uint64_t started_ms;

    zmsg_t *held[RL_SHARD_REQUESTS_PER_TURN_MAX];   //  replies waiting for the commit
    bool held_writes[RL_SHARD_REQUESTS_PER_TURN_MAX];
    size_t held_count;

    //  scratch, sized for one full batch
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
} shard_t;

static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static bool
s_owns (void *ctx, rl_id_t account_id)
{
    shard_t *self = ctx;
    if (self->self_index < 0) {
        return false;
    }
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (account_id, bytes);
    return ring_lookup_id (self->ring, bytes) == self->self_index;
}

static void
s_ring_adopt (shard_t *self, ring_t *ring)
{
    ring_destroy (&self->ring);
    self->ring = ring;
    self->self_index = ring_shard_find (ring, self->options.name);
    if (self->self_index < 0) {
        rl_warn ("ring epoch %" PRIu64 " does not name this shard: it owns no accounts",
                 ring_epoch (ring));
    }
}

//  Reply frames --------------------------------------------------------------

//  Builds a reply message: envelope (moved from request) + header + body.
static zmsg_t *
s_reply_new (shard_t *self, zmsg_t *envelope, const rl_header_t *request, uint32_t status,
             uint32_t count, size_t record_size, uint8_t **body_p)
{
    rl_header_t header = {
        .magic = RL_MAGIC,
        .version = RL_VERSION,
        .operation = request->operation,
        .request_id = request->request_id,
        .record_count = status == RL_STATUS_OK ? count : 0,
        .status = status,
        .epoch = ring_epoch (self->ring),
    };
    size_t body_size = status == RL_STATUS_OK ? (size_t) count * record_size : 0;
    zframe_t *frame = zframe_new (NULL, RL_HEADER_SIZE + body_size);
    assert (frame);
    codec_encode_header (&header, zframe_data (frame));
    if (body_p) {
        *body_p = zframe_data (frame) + RL_HEADER_SIZE;
    }
    zmsg_append (envelope, &frame);
    return envelope;
}

static void
s_hold (shard_t *self, zmsg_t *reply, bool writes)
{
    assert (self->held_count < RL_SHARD_REQUESTS_PER_TURN_MAX);
    self->held[self->held_count] = reply;
    self->held_writes[self->held_count] = writes;
    self->held_count++;
}

//  Operations ----------------------------------------------------------------

static void
s_count_wrong_shard (shard_t *self, const rl_result_rec_t *results, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (results[i].result == RL_WRONG_SHARD) {
            self->wrong_shard++;
        }
    }
}

static zmsg_t *
s_do_create (shard_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    size_t count = h->record_count;
    if (h->operation == RL_OP_CREATE_ACCOUNTS) {
        for (size_t i = 0; i < count; i++) {
            codec_decode_account (body + i * RL_ACCOUNT_SIZE, &self->accounts[i]);
        }
        ledger_create_accounts (self->ledger, self->accounts, count, s_now_ns (), self->results);
    } else {
        for (size_t i = 0; i < count; i++) {
            codec_decode_transfer (body + i * RL_TRANSFER_SIZE, &self->transfers[i]);
        }
        ledger_create_transfers (self->ledger, self->transfers, count, s_now_ns (),
                                 self->results);
    }
    s_count_wrong_shard (self, self->results, count);
    uint8_t *out = NULL;
    zmsg_t *reply = s_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                 RL_RESULT_SIZE, &out);
    for (size_t i = 0; i < count; i++) {
        codec_encode_result (&self->results[i], out + i * RL_RESULT_SIZE);
    }
    return reply;
}

static zmsg_t *
s_do_lookup (shard_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    size_t count = h->record_count;
    for (size_t i = 0; i < count; i++) {
        self->ids[i] = codec_decode_id (body + i * RL_ID_SIZE);
    }
    uint8_t *out = NULL;
    if (h->operation == RL_OP_LOOKUP_ACCOUNTS) {
        ledger_lookup_accounts (self->ledger, self->ids, count, self->accounts);
        zmsg_t *reply = s_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                     RL_ACCOUNT_SIZE, &out);
        for (size_t i = 0; i < count; i++) {
            codec_encode_account (&self->accounts[i], out + i * RL_ACCOUNT_SIZE);
        }
        return reply;
    }
    if (ledger_lookup_transfers (self->ledger, self->ids, count, self->transfers) != 0) {
        return s_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    zmsg_t *reply = s_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                 RL_TRANSFER_SIZE, &out);
    for (size_t i = 0; i < count; i++) {
        codec_encode_transfer (&self->transfers[i], out + i * RL_TRANSFER_SIZE);
    }
    return reply;
}

static zmsg_t *
s_do_history (shard_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    rl_filter_t filter;
    codec_decode_filter (body, &filter);
    size_t count = 0;
    rl_status_t status = ledger_account_transfers (self->ledger, &filter, self->transfers, &count);
    if (status != RL_STATUS_OK) {
        return s_reply_new (self, envelope, h, status, 0, 0, NULL);
    }
    uint8_t *out = NULL;
    zmsg_t *reply = s_reply_new (self, envelope, h, RL_STATUS_OK, (uint32_t) count,
                                 RL_TRANSFER_SIZE, &out);
    for (size_t i = 0; i < count; i++) {
        codec_encode_transfer (&self->transfers[i], out + i * RL_TRANSFER_SIZE);
    }
    return reply;
}

static zmsg_t *
s_do_status (shard_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    rl_status_rec_t status = {0};
    snprintf (status.name, sizeof (status.name), "%s", self->options.name);
    status.epoch = ring_epoch (self->ring);
    status.accounts = ledger_account_count (self->ledger);
    status.transfers = ledger_transfer_count (self->ledger);
    status.requests = self->requests;
    status.commits = self->commits;
    status.durability = self->options.durability;
    status.ring_shards = (uint32_t) ring_shard_count (self->ring);
    status.last_timestamp = ledger_last_timestamp (self->ledger);
    status.dropped = self->dropped;
    status.malformed = self->malformed;
    status.wrong_shard = self->wrong_shard;
    status.pid = (uint32_t) getpid ();
    status.uptime_ms = (uint64_t) zclock_mono () - self->started_ms;
    status.checkpoints = ledger_checkpoint_count (self->ledger);
    store_write_stats (self->store, &status.store_keys_written, &status.store_bytes_written,
                       &status.wal_bytes, &status.wal_syncs);
    uint8_t *out = NULL;
    zmsg_t *reply = s_reply_new (self, envelope, h, RL_STATUS_OK, 1, RL_STATUS_SIZE, &out);
    codec_encode_status (&status, out);
    return reply;
}

static zmsg_t *
s_do_load_ring (shard_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body,
                size_t body_size)
{
    char err[256];
    ring_t *ring = ring_decode (body, body_size, err, sizeof (err));
    if (!ring) {
        rl_warn ("load_ring refused: %s", err);
        return s_reply_new (self, envelope, h, RL_STATUS_BAD_RING, 0, 0, NULL);
    }
    if (ring_epoch (ring) <= ring_epoch (self->ring)) {
        rl_warn ("load_ring refused: epoch %" PRIu64 " is not newer than %" PRIu64,
                 ring_epoch (ring), ring_epoch (self->ring));
        ring_destroy (&ring);
        return s_reply_new (self, envelope, h, RL_STATUS_EPOCH_NOT_NEWER, 0, 0, NULL);
    }
    store_batch_put (self->store, STORE_CF_META, META_RING, strlen (META_RING), body, body_size);
    rl_info ("ring epoch %" PRIu64 " -> %" PRIu64 " (%zu shards)", ring_epoch (self->ring),
             ring_epoch (ring), ring_shard_count (ring));
    s_ring_adopt (self, ring);
    return s_reply_new (self, envelope, h, RL_STATUS_OK, 0, 0, NULL);
}

static zmsg_t *
s_do_get_ring (shard_t *self, zmsg_t *envelope, const rl_header_t *h)
{
    size_t size = ring_encoded_size (self->ring);
    uint8_t *out = NULL;
    zmsg_t *reply = s_reply_new (self, envelope, h, RL_STATUS_OK, 1, size, &out);
    size_t written = ring_encode (self->ring, out, size);
    assert (written == size);
    return reply;
}

//  Decodes and applies one request; holds its reply. Takes msg.
static void
s_handle (shard_t *self, zmsg_t *msg)
{
    self->requests++;
    zframe_t *payload = zmsg_last (msg);
    if (!payload || zmsg_size (msg) < 2) {
        //  A ROUTER always prepends the peer identity; a payload is needed too.
        self->dropped++;
        zmsg_destroy (&msg);
        return;
    }
    zmsg_remove (msg, payload);      //  msg keeps the envelope
    const uint8_t *data = zframe_data (payload);
    size_t size = zframe_size (payload);
    rl_header_t h = {0};
    rl_status_t status = codec_check_request (data, size, &h);
    if (size < RL_HEADER_SIZE) {
        self->dropped++;           //  no request id to answer to
        rl_debug ("dropped a %zu-byte frame", size);
        zframe_destroy (&payload);
        zmsg_destroy (&msg);
        return;
    }
    zmsg_t *reply = NULL;
    bool writes = false;
    if (status != RL_STATUS_OK) {
        self->malformed++;
        rl_debug ("bad request %" PRIu64 ": %s", h.request_id, rl_status_name (status));
        reply = s_reply_new (self, msg, &h, status, 0, 0, NULL);
    } else {
        const uint8_t *body = data + RL_HEADER_SIZE;
        switch (h.operation) {
        case RL_OP_CREATE_ACCOUNTS:
        case RL_OP_CREATE_TRANSFERS:
            reply = s_do_create (self, msg, &h, body);
            writes = true;
            break;
        case RL_OP_LOOKUP_ACCOUNTS:
        case RL_OP_LOOKUP_TRANSFERS:
            reply = s_do_lookup (self, msg, &h, body);
            break;
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            reply = s_do_history (self, msg, &h, body);
            break;
        case RL_OP_STATUS:
            reply = s_do_status (self, msg, &h);
            break;
        case RL_OP_LOAD_RING:
            reply = s_do_load_ring (self, msg, &h, body, size - RL_HEADER_SIZE);
            writes = true;
            break;
        case RL_OP_GET_RING:
            reply = s_do_get_ring (self, msg, &h);
            break;
        default:
            assert (false && "codec_check_request passed an unserved operation");
        }
    }
    zframe_destroy (&payload);
    s_hold (self, reply, writes);
}

//  Replaces a held reply's payload by a storage_error header.
static void
s_fail_reply (shard_t *self, zmsg_t *reply)
{
    zframe_t *payload = zmsg_last (reply);
    zmsg_remove (reply, payload);
    rl_header_t h;
    codec_decode_header (zframe_data (payload), &h);
    zframe_destroy (&payload);
    s_reply_new (self, reply, &h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
}

//  One turn: drain, commit once, answer.
static int
s_on_readable (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    shard_t *self = arg;
    assert (self->held_count == 0);
    while (self->held_count < RL_SHARD_REQUESTS_PER_TURN_MAX) {
        zmsg_t *msg = zmsg_recv (router);   //  rcvtimeo 0: NULL when drained
        if (!msg) {
            break;
        }
        s_handle (self, msg);
    }
    if (self->held_count == 0) {
        return 0;
    }
    ledger_before_commit (self->ledger);
    //  Commit-path failpoints count only turns that write something.
    bool writes = store_batch_count (self->store) > 0;
    int rc = 0;
    if (writes) {
        rc = RL_FAILPOINT (SHARD_BEFORE_COMMIT) == 0 ? store_commit (self->store) : -1;
    }
    if (rc != 0) {
        rl_error ("group commit failed (%s): answering storage_error and stopping",
                  store_error (self->store));
        self->failed = true;
        for (size_t i = 0; i < self->held_count; i++) {
            s_fail_reply (self, self->held[i]);
        }
    } else if (writes) {
        self->commits++;
        RL_FAILPOINT (SHARD_AFTER_SYNC);
    }
    for (size_t i = 0; i < self->held_count; i++) {
        if (zmsg_send (&self->held[i], router) != 0) {
            self->dropped++;       //  peer gone or its queue full: the client retries
            zmsg_destroy (&self->held[i]);
        }
    }
    self->held_count = 0;
    if (writes) {
        RL_FAILPOINT (SHARD_AFTER_REPLY);
    }
    if (!self->failed && ledger_after_commit (self->ledger) != 0) {
        rl_error ("checkpoint failed (%s): stopping", store_error (self->store));
        self->failed = true;
    }
    return self->failed ? -1 : 0;
}

//  Start-up ------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: shard --name NAME --bind ENDPOINT --data DIR [--ring FILE]\n"
             "             [--durability sync|nosync|manual-wal]\n"
             "  --name        this shard's name in the ring (e.g. s1)\n"
             "  --bind        ZeroMQ endpoint to serve (e.g. tcp://127.0.0.1:7101)\n"
             "  --data        data directory (created if missing)\n"
             "  --ring        ring file; without it, a ring of this shard alone\n"
             "                (a ring stored by load_ring with a higher epoch wins)\n"
             "  --durability  sync (default): WAL synced before every reply;\n"
             "                nosync: benchmark only, NOT durable;\n"
             "                manual-wal: tests, WAL held in memory until each commit\n"
             "  --checkpoint-transfers N  checkpoint every N transfers (default %u)\n",
             RL_SHARD_CHECKPOINT_TRANSFERS);
}

static int
s_parse_options (int argc, char **argv, s_options_t *o)
{
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},  {"bind", required_argument, NULL, 'b'},
        {"data", required_argument, NULL, 'd'},  {"ring", required_argument, NULL, 'r'},
        {"durability", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'},
        {"checkpoint-transfers", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    *o = (s_options_t) {.durability = RL_DURABILITY_SYNC};
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'n': o->name = optarg; break;
        case 'b': o->bind = optarg; break;
        case 'd': o->data_dir = optarg; break;
        case 'r': o->ring_file = optarg; break;
        case 'D':
            if (strcmp (optarg, "sync") == 0) {
                o->durability = RL_DURABILITY_SYNC;
            } else if (strcmp (optarg, "nosync") == 0) {
                o->durability = RL_DURABILITY_NOSYNC;
            } else if (strcmp (optarg, "manual-wal") == 0) {
                o->durability = RL_DURABILITY_SYNC_MANUAL_WAL;
            } else {
                fprintf (stderr, "shard: unknown durability '%s'\n", optarg);
                return -1;
            }
            break;
        case 'C':
            o->checkpoint_transfers = strtol (optarg, NULL, 10);
            if (o->checkpoint_transfers < 1
                || o->checkpoint_transfers > (long) RL_SHARD_CHECKPOINT_TRANSFERS) {
                fprintf (stderr, "shard: --checkpoint-transfers must be 1..%u\n",
                         RL_SHARD_CHECKPOINT_TRANSFERS);
                return -1;
            }
            break;
        case 'h': s_usage (stdout); exit (0);
        default: return -1;
        }
    }
    if (!o->name || !o->bind || !o->data_dir || optind != argc) {
        fprintf (stderr, "shard: --name, --bind and --data are required\n");
        return -1;
    }
    if (strlen (o->name) >= RL_SHARD_NAME_SIZE_MAX) {
        fprintf (stderr, "shard: name longer than %d bytes\n", RL_SHARD_NAME_SIZE_MAX - 1);
        return -1;
    }
    return 0;
}

//  The ring: the file's (or a ring of this shard alone), unless the store
//  holds one with a higher epoch from an earlier load_ring.
static ring_t *
s_ring_initial (shard_t *self)
{
    char err[512];
    ring_t *ring = NULL;
    if (self->options.ring_file) {
        ring = ring_load_file (self->options.ring_file, err, sizeof (err));
        if (!ring) {
            rl_error ("ring file %s: %s", self->options.ring_file, err);
            return NULL;
        }
    } else {
        ring = ring_new (1);
        if (!ring || ring_add_shard (ring, self->options.name, self->options.bind, 1.0) != 0) {
            ring_destroy (&ring);
            return NULL;
        }
    }
    static uint8_t blob[RL_RING_BLOB_SIZE_MAX];
    size_t size = 0;
    int rc = store_get (self->store, STORE_CF_META, META_RING, strlen (META_RING), blob,
                        sizeof (blob), &size);
    if (rc == 1 && size <= sizeof (blob)) {
        ring_t *stored = ring_decode (blob, size, err, sizeof (err));
        if (!stored) {
            rl_error ("stored ring does not decode: %s", err);
        } else if (ring_epoch (stored) > ring_epoch (ring)) {
            rl_info ("using the stored ring (epoch %" PRIu64 ") over the file's (epoch %" PRIu64
                     ")", ring_epoch (stored), ring_epoch (ring));
            ring_destroy (&ring);
            ring = stored;
        } else {
            ring_destroy (&stored);
        }
    }
    return ring;
}

static int
s_open (shard_t *self)
{
    char err[512];
    if (mkdir (self->options.data_dir, 0755) != 0 && errno != EEXIST) {
        rl_error ("cannot create %s: %s", self->options.data_dir, strerror (errno));
        return -1;
    }
    self->store = store_open (self->options.data_dir, self->options.durability, err, sizeof (err));
    if (!self->store) {
        rl_error ("%s", err);
        return -1;
    }
    ring_t *ring = s_ring_initial (self);
    if (!ring) {
        return -1;
    }
    s_ring_adopt (self, ring);
    self->ledger = ledger_open (self->store, s_owns, self, err, sizeof (err));
    if (!self->ledger) {
        rl_error ("cannot recover the ledger: %s", err);
        return -1;
    }
    if (self->options.checkpoint_transfers > 0) {
        ledger_set_checkpoint_transfers (self->ledger, (size_t) self->options.checkpoint_transfers);
    }
    self->transfers = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_transfer_t));
    self->accounts = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_account_t));
    self->ids = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_id_t));
    self->results = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_result_rec_t));
    if (!self->transfers || !self->accounts || !self->ids || !self->results) {
        return -1;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router) {
        return -1;
    }
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndhwm (self->router, RL_SHARD_SNDHWM_MESSAGES);
    zsock_set_rcvhwm (self->router, RL_SHARD_RCVHWM_MESSAGES);
    zsock_set_linger (self->router, 0);
    if (zsock_bind (self->router, "%s", self->options.bind) < 0) {
        rl_error ("cannot bind %s: %s", self->options.bind, zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

static void
s_close (shard_t *self)
{
    if (self->ledger && !self->failed && !store_failed (self->store)) {
        ledger_checkpoint (self->ledger);   //  shorter recovery next start
    }
    zsock_destroy (&self->router);
    ledger_destroy (&self->ledger);
    store_close (&self->store);
    ring_destroy (&self->ring);
    free (self->transfers);
    free (self->accounts);
    free (self->ids);
    free (self->results);
}

int
main (int argc, char **argv)
{
    shard_t self = {0};
    if (s_parse_options (argc, argv, &self.options) != 0) {
        s_usage (stderr);
        return 2;
    }
    rl_log_init ("shard", self.options.name);
    char err[256];
    if (failpoint_init (err, sizeof (err)) != 0) {
        rl_error ("RL_FAILPOINTS: %s", err);
        return 2;
    }
    zsys_init ();
    self.started_ms = (uint64_t) zclock_mono ();
    if (s_open (&self) != 0) {
        s_close (&self);
        return 1;
    }
    rl_info ("serving %s, data %s, durability %s, ring epoch %" PRIu64 " (%zu shards)",
             self.options.bind, self.options.data_dir,
             rl_durability_name (self.options.durability), ring_epoch (self.ring),
             ring_shard_count (self.ring));
    zloop_t *loop = zloop_new ();
    zloop_reader (loop, self.router, s_on_readable, &self);
    zloop_start (loop);    //  returns on SIGINT/SIGTERM or when a turn fails
    zloop_destroy (&loop);
    int rc = self.failed ? 3 : 0;
    rl_info ("stopping (%s)", self.failed ? "storage failure" : "signal");
    s_close (&self);
    return rc;
}
