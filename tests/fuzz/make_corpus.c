/*  make_corpus.c: writes the seed corpus of the fuzz targets.

    Usage: fuzz_make_corpus DIR   (writes DIR/codec, DIR/chunk,
    DIR/ring_blob, DIR/ring_text and DIR/config; the directories must exist)

    The seeds are small valid inputs, built with the codec and the ring
    library themselves, so that the fuzzer starts past the first checks:
    one request and one reply frame of every operation (events_read: a
    position and the beginning; events, none, resync and bad_position),
    one input per record decoder, small rings in both forms, failpoint specs and ring
    files, option values. The committed corpus (tests/fuzz/corpus/) was written by this
    program; files named crash-* or regress-* there are inputs that once
    failed, kept as regression tests, and are not written here.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "codec.h"
#include "failpoint.h"
#include "keys.h"
#include "ring.h"

#define S_MODE_REQUEST 0
#define S_MODE_REPLY   1
#define S_MODE_RECORDS 2

//  A fixed public key (Z85), so that the seeds are the same every run.
#define S_KEY_A "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define S_KEY_B "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

static const char *s_dir;

static void
s_write (const char *target, const char *name, uint8_t mode, bool with_mode, const void *data,
         size_t size)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/%s/%s", s_dir, target, name);
    FILE *file = fopen (path, "wb");
    if (!file) {
        perror (path);
        exit (1);
    }
    if (with_mode) {
        fputc (mode, file);
    }
    if (size && fwrite (data, 1, size, file) != size) {
        perror (path);
        exit (1);
    }
    fclose (file);
}

static rl_id_t
s_id (uint64_t lo)
{
    rl_id_t id = {.lo = lo, .hi = 0x5345454400000000ull};
    return id;
}

//  A frame of `count` records of `record_size` bytes that `encode` fills.
static void
s_frame (const char *name, uint8_t mode, uint16_t op, uint32_t status, uint32_t count,
         size_t record_size, void (*encode) (size_t index, uint8_t *out))
{
    static uint8_t frame[8192];
    rl_header_t header = codec_request_header (op, 42, count);
    if (mode == S_MODE_REPLY) {
        header = codec_reply_header (&header, status, status ? 0 : count, 7);
    }
    size_t body_size = status ? 0 : count * record_size;
    uint8_t *body = codec_encode_frame (&header, NULL, body_size, frame);
    for (size_t i = 0; i < (status ? 0 : count); i++) {
        encode (i, body + i * record_size);
    }
    s_write ("codec", name, mode, true, frame, codec_frame_size (body_size));
}

static void
s_account (size_t i, uint8_t *out)
{
    rl_account_t account = {.id = s_id (i + 1), .ledger = 840, .code = 1, .flags = (uint16_t) i};
    codec_encode_account (&account, out);
}

static void
s_transfer (size_t i, uint8_t *out)
{
    rl_transfer_t transfer = {.id = s_id (100 + i),
                              .debit_account_id = s_id (1),
                              .credit_account_id = s_id (2),
                              .amount = 500 + i,
                              .ledger = 840,
                              .code = 1};
    codec_encode_transfer (&transfer, out);
}

static void
s_id_record (size_t i, uint8_t *out)
{
    codec_encode_id (s_id (i + 1), out);
}

static void
s_filter (size_t i, uint8_t *out)
{
    rl_filter_t filter = {.account_id = s_id (i + 1), .limit = 10, .flags = 3};
    codec_encode_filter (&filter, out);
}

static void
s_result (size_t i, uint8_t *out)
{
    rl_result_rec_t result = {.index = (uint32_t) i, .result = 0, .timestamp = 1000 + i};
    codec_encode_result (&result, out);
}

static rl_tp_rec_t
s_tp_rec (size_t i)
{
    rl_tp_rec_t tp = {.id = s_id (100 + i),
                      .attempt = {.counter = 3, .nonce = 0xabcdef, .seq = i + 1},
                      .state = RL_TP_COMMIT,
                      .amount = 500,
                      .timestamp = 1000,
                      .debit_account_id = s_id (1)};
    snprintf (tp.coordinator, sizeof tp.coordinator, "s1");
    return tp;
}

static void
s_tp (size_t i, uint8_t *out)
{
    rl_tp_rec_t tp = s_tp_rec (i);
    codec_encode_tp (&tp, out);
}

static void
s_prepare (size_t i, uint8_t *out)
{
    rl_prepare_rec_t prepare = {.tp = s_tp_rec (i)};
    prepare.transfer.id = prepare.tp.id;
    prepare.transfer.debit_account_id = s_id (1);
    prepare.transfer.credit_account_id = s_id (2);
    prepare.transfer.amount = 500;
    prepare.transfer.ledger = 840;
    prepare.transfer.code = 1;
    codec_encode_prepare (&prepare, out);
}

//  PREPAREs of the pending kinds (docs/payments.md, "Pending transfers
//  across shards"): a pending transfer with a timeout, a post, a void.
static void
s_prepare_pending (size_t i, uint8_t *out)
{
    rl_prepare_rec_t prepare = {.tp = s_tp_rec (i)};
    prepare.transfer.id = prepare.tp.id;
    prepare.transfer.debit_account_id = s_id (1);
    prepare.transfer.credit_account_id = s_id (2);
    prepare.transfer.amount = 500;
    prepare.transfer.ledger = 840;
    prepare.transfer.code = 1;
    static const uint16_t flags[3] = {RL_TRANSFER_PENDING, RL_TRANSFER_POST_PENDING_TRANSFER,
                                      RL_TRANSFER_VOID_PENDING_TRANSFER};
    prepare.transfer.flags = flags[i % 3];
    if (i % 3 == 0) {
        prepare.transfer.timeout = 60;
    } else {
        prepare.transfer.pending_id = s_id (50);
    }
    codec_encode_prepare (&prepare, out);
}

static void
s_status (size_t i, uint8_t *out)
{
    rl_status_rec_t status = {.epoch = 3 + i};
    snprintf (status.name, sizeof status.name, "s1");
    codec_encode_status (&status, out);
}

static void
s_in_doubt (size_t i, uint8_t *out)
{
    rl_in_doubt_rec_t rec = {.prepare = {.tp = s_tp_rec (i)}};
    snprintf (rec.peer, sizeof rec.peer, "s2");
    codec_encode_in_doubt (&rec, out);
}

static void
s_audit (size_t i, uint8_t *out)
{
    rl_audit_rec_t audit = {.ok = 1, .accounts = 4 + i};
    snprintf (audit.message, sizeof audit.message, "ok");
    codec_encode_audit (&audit, out);
}

//  A primary's record, then its links (repl_status replies).
static void
s_repl (size_t i, uint8_t *out)
{
    rl_repl_rec_t rec = {.role = i == 0 ? RL_REPL_PRIMARY : RL_REPL_LINK,
                         .state = i == 0 ? 0 : RL_REPL_STREAMING,
                         .standbys = 2,
                         .incarnation = 5,
                         .nonce = 0x1234 + i,
                         .lease_ms = i == 0 ? UINT64_MAX : 40,
                         .mode = 1,
                         .timeout_ms = 2000};
    if (i > 0) {
        snprintf (rec.endpoint, sizeof rec.endpoint, "tcp://127.0.0.1:%zu", 7000 + i);
    }
    codec_encode_repl (&rec, out);
}

static void
s_blob_byte (size_t i, uint8_t *out)
{
    out[0] = (uint8_t) (0x52 + i);
}

static void
s_migrate (size_t i, uint8_t *out)
{
    rl_migrate_rec_t rec = {.migration_id = 7 + i, .arc_start = 10, .arc_end = 20, .role = 2};
    snprintf (rec.source, sizeof rec.source, "s1");
    snprintf (rec.target, sizeof rec.target, "s2");
    rec.cursor.phase = RL_MIGRATE_PHASE_ACCOUNTS;
    rec.cursor.ts = 1000;
    rec.entries_max = 100;
    codec_encode_migrate (&rec, out);
}

//  migrate_lease (op 66): an acquire for a plan (its low 20 bits zero).
static void
s_migrate_lease (size_t i, uint8_t *out)
{
    rl_migrate_rec_t rec = {.migration_id = (uint64_t) (0x1234 + i) << RL_MIGRATE_STEP_BITS,
                            .param = RL_MIGRATE_LEASE_ACQUIRE};
    codec_encode_migrate (&rec, out);
}

//  events_read (op 65): a position in the middle, and the beginning.
static void
s_events_req (size_t i, uint8_t *out)
{
    rl_events_req_t req = {.incarnation = 3, .nonce = 0xabcdef, .timestamp = 1000 + i, .limit = 50};
    codec_encode_events_req (&req, out);
}

static void
s_events_req_begin (size_t i, uint8_t *out)
{
    (void) i;
    rl_events_req_t req = {.limit = RL_EVENTS_LIMIT_MAX};
    codec_encode_events_req (&req, out);
}

//  Events of each leg; the second one burned (exceeds_credits).
static void
s_event (size_t i, uint8_t *out)
{
    rl_event_t event = {.incarnation = 3,
                        .nonce = 0xabcdef,
                        .result = i == 1 ? RL_EXCEEDS_CREDITS : RL_OK,
                        .leg = (uint32_t) (i % 3)};
    event.transfer = (rl_transfer_t){.id = s_id (100 + i),
                                     .debit_account_id = s_id (1),
                                     .credit_account_id = s_id (2),
                                     .amount = 500 + i,
                                     .ledger = 840,
                                     .code = 1,
                                     .timestamp = 1001 + i};
    codec_encode_event (&event, out);
}

static void
s_codec (void)
{
    s_frame ("req_create_accounts", S_MODE_REQUEST, RL_OP_CREATE_ACCOUNTS, 0, 2, RL_ACCOUNT_SIZE,
             s_account);
    s_frame ("req_create_transfers", S_MODE_REQUEST, RL_OP_CREATE_TRANSFERS, 0, 2, RL_TRANSFER_SIZE,
             s_transfer);
    s_frame ("req_lookup_accounts", S_MODE_REQUEST, RL_OP_LOOKUP_ACCOUNTS, 0, 3, RL_ID_SIZE,
             s_id_record);
    s_frame ("req_lookup_transfers", S_MODE_REQUEST, RL_OP_LOOKUP_TRANSFERS, 0, 2, RL_ID_SIZE,
             s_id_record);
    s_frame ("req_get_account_transfers", S_MODE_REQUEST, RL_OP_GET_ACCOUNT_TRANSFERS, 0, 1,
             RL_FILTER_SIZE, s_filter);
    s_frame ("req_status", S_MODE_REQUEST, RL_OP_STATUS, 0, 0, 0, NULL);
    s_frame ("req_load_ring", S_MODE_REQUEST, RL_OP_LOAD_RING, 0, 1, 1, s_blob_byte);
    s_frame ("req_get_ring", S_MODE_REQUEST, RL_OP_GET_RING, 0, 0, 0, NULL);
    s_frame ("req_prepare", S_MODE_REQUEST, RL_OP_PREPARE, 0, 1, RL_PREPARE_SIZE, s_prepare);
    s_frame ("req_prepare_pending", S_MODE_REQUEST, RL_OP_PREPARE, 0, 3, RL_PREPARE_SIZE,
             s_prepare_pending);
    s_frame ("req_decide", S_MODE_REQUEST, RL_OP_DECIDE, 0, 2, RL_TP_SIZE, s_tp);
    s_frame ("req_outcome_query", S_MODE_REQUEST, RL_OP_OUTCOME_QUERY, 0, 1, RL_TP_SIZE, s_tp);
    s_frame ("req_in_doubt", S_MODE_REQUEST, RL_OP_IN_DOUBT, 0, 0, 0, NULL);
    s_frame ("req_audit", S_MODE_REQUEST, RL_OP_AUDIT, 0, 0, 0, NULL);
    s_frame ("req_resolve", S_MODE_REQUEST, RL_OP_RESOLVE, 0, 1, RL_TP_SIZE, s_tp);
    s_frame ("req_promote", S_MODE_REQUEST, RL_OP_PROMOTE, 0, 0, 0, NULL);
    s_frame ("req_degrade", S_MODE_REQUEST, RL_OP_DEGRADE, 0, 0, 0, NULL);
    s_frame ("rep_promote", S_MODE_REPLY, RL_OP_PROMOTE, 0, 0, 0, NULL);
    s_frame ("rep_degrade", S_MODE_REPLY, RL_OP_DEGRADE, 0, 0, 0, NULL);
    s_frame ("rep_create_accounts", S_MODE_REPLY, RL_OP_CREATE_ACCOUNTS, 0, 2, RL_RESULT_SIZE,
             s_result);
    s_frame ("rep_lookup_accounts", S_MODE_REPLY, RL_OP_LOOKUP_ACCOUNTS, 0, 2, RL_ACCOUNT_SIZE,
             s_account);
    s_frame ("rep_get_account_transfers", S_MODE_REPLY, RL_OP_GET_ACCOUNT_TRANSFERS, 0, 2,
             RL_TRANSFER_SIZE, s_transfer);
    s_frame ("rep_status", S_MODE_REPLY, RL_OP_STATUS, 0, 1, RL_STATUS_SIZE, s_status);
    s_frame ("rep_get_ring", S_MODE_REPLY, RL_OP_GET_RING, 0, 1, 1, s_blob_byte);
    s_frame ("rep_prepare", S_MODE_REPLY, RL_OP_PREPARE, 0, 1, RL_TP_SIZE, s_tp);
    s_frame ("rep_in_doubt", S_MODE_REPLY, RL_OP_IN_DOUBT, 0, 1, RL_IN_DOUBT_SIZE, s_in_doubt);
    s_frame ("req_repl_status", S_MODE_REQUEST, RL_OP_REPL_STATUS, 0, 0, 0, NULL);
    s_frame ("rep_repl_status", S_MODE_REPLY, RL_OP_REPL_STATUS, 0, 3, RL_REPL_SIZE, s_repl);
    s_frame ("rep_audit", S_MODE_REPLY, RL_OP_AUDIT, 0, 1, RL_AUDIT_SIZE, s_audit);
    s_frame ("req_migrate_begin", S_MODE_REQUEST, RL_OP_MIGRATE_BEGIN, 0, 1, RL_MIGRATE_SIZE,
             s_migrate);
    s_frame ("req_migrate_commit", S_MODE_REQUEST, RL_OP_MIGRATE_COMMIT, 0, 1, RL_MIGRATE_SIZE,
             s_migrate);
    s_frame ("req_migrate_lease", S_MODE_REQUEST, RL_OP_MIGRATE_LEASE, 0, 1, RL_MIGRATE_SIZE,
             s_migrate_lease);
    s_frame ("rep_migrate_lease", S_MODE_REPLY, RL_OP_MIGRATE_LEASE, 0, 2, RL_MIGRATE_SIZE,
             s_migrate);
    s_frame ("req_migrate_import", S_MODE_REQUEST, RL_OP_MIGRATE_IMPORT, 0, 1, 1, s_blob_byte);
    s_frame ("rep_migrate_import", S_MODE_REPLY, RL_OP_MIGRATE_IMPORT, 0, 1, RL_MIGRATE_SIZE,
             s_migrate);
    s_frame ("rep_error", S_MODE_REPLY, RL_OP_CREATE_TRANSFERS, RL_STATUS_BUSY, 0, 0, NULL);
    s_frame ("req_events_read", S_MODE_REQUEST, RL_OP_EVENTS_READ, 0, 1, RL_EVENTS_REQ_SIZE,
             s_events_req);
    s_frame ("req_events_read_begin", S_MODE_REQUEST, RL_OP_EVENTS_READ, 0, 1, RL_EVENTS_REQ_SIZE,
             s_events_req_begin);
    s_frame ("rep_events_read", S_MODE_REPLY, RL_OP_EVENTS_READ, 0, 3, RL_EVENT_SIZE, s_event);
    s_frame ("rep_events_read_empty", S_MODE_REPLY, RL_OP_EVENTS_READ, 0, 0, RL_EVENT_SIZE,
             s_event);
    s_frame ("rep_events_resync", S_MODE_REPLY, RL_OP_EVENTS_READ, RL_STATUS_RESYNC, 0, 0, NULL);
    s_frame ("rep_events_bad_position", S_MODE_REPLY, RL_OP_EVENTS_READ, RL_STATUS_BAD_POSITION, 0,
             0, NULL);
    uint8_t event[RL_EVENT_SIZE];
    s_event (2, event);
    s_write ("codec", "records_event", S_MODE_RECORDS, true, event, sizeof event);
    uint8_t records[RL_IN_DOUBT_SIZE];
    s_in_doubt (0, records);
    s_write ("codec", "records", S_MODE_RECORDS, true, records, sizeof records);
}

//  Migration chunks: empty, one transfer and one account, pending transfers,
//  a cursor in each phase.
static void
s_chunks (void)
{
    static uint8_t out[RL_MIGRATE_CHUNK_HEADER + 4 * RL_MIGRATE_ENTRY_SIZE];
    chunk_t chunk = {.migration_id = 7, .seq = 1};
    chunk.to.phase = RL_MIGRATE_PHASE_IMPORTED;
    chunk.to.ts = 1000;
    chunk_encode_header (&chunk, out);
    s_write ("chunk", "empty", 0, false, out, chunk_size (0));
    chunk.seq = 2;
    chunk.from = chunk.to;
    chunk.to.phase = RL_MIGRATE_PHASE_DONE;
    chunk.to.round = 1;
    chunk.to.imported_key[0] = 0x11;
    chunk.to.account_key[3] = 0x22;
    chunk.entry_count = 3;
    chunk_encode_header (&chunk, out);
    chunk_entry_t t = {.kind = RL_CHUNK_TRANSFER, .origin = 0xabcdef};
    t.transfer.id = s_id (0x1000);
    t.transfer.debit_account_id = s_id (2);
    t.transfer.credit_account_id = s_id (1);
    t.transfer.amount = 12345;
    t.transfer.ledger = 700;
    t.transfer.code = 1;
    t.transfer.timestamp = 1001;
    t.transfer.reserved = (uint64_t) 2 << 32; //  a credit leg, ok
    chunk_put_entry (out, 0, &t);
    t.transfer.id = s_id (0x1001);
    t.transfer.reserved = 87; //  burned: exceeds_credits, both legs
    chunk_put_entry (out, 1, &t);
    chunk_entry_t a = {.kind = RL_CHUNK_ACCOUNT};
    a.account.id = s_id (2);
    a.account.ledger = 700;
    a.account.code = 10;
    a.account.credits_posted = 12345;
    a.account.timestamp = 999;
    chunk_put_entry (out, 2, &a);
    s_write ("chunk", "entries", 0, false, out, chunk_size (3));
    //  The final round's pending phase: a transfer still pending (its
    //  state 1, the source's side 2: the credit) and a posted one.
    chunk.seq = 3;
    chunk.from = chunk.to;
    chunk.to.phase = RL_MIGRATE_PHASE_PENDING;
    chunk.to.account_key[0] = 0x33;
    chunk.entry_count = 2;
    chunk_encode_header (&chunk, out);
    chunk_entry_t p = {.kind = RL_CHUNK_PENDING};
    p.transfer = t.transfer;
    p.transfer.id = s_id (0x1002);
    p.transfer.flags = RL_TRANSFER_PENDING;
    p.transfer.timeout = 60;
    p.transfer.reserved = 1 | (uint64_t) 2 << 8;
    chunk_put_entry (out, 0, &p);
    p.transfer.id = s_id (0x1003);
    p.transfer.reserved = 2; //  posted, both sides
    chunk_put_entry (out, 1, &p);
    s_write ("chunk", "pending", 0, false, out, chunk_size (2));
}

//  A ring of `shards` shards with few points, so that its seeds stay small.
static ring_t *
s_ring (size_t shards, uint32_t points_per_weight)
{
    ring_t *ring = ring_new (3);
    if (!ring || ring_set_points_per_weight (ring, points_per_weight) != 0) {
        exit (1);
    }
    for (size_t x = 0; x < shards; x++) {
        char name[32];
        char endpoint[64];
        snprintf (name, sizeof name, "s%zu", x + 1);
        snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%zu", 7101 + x);
        if (ring_add_shard (ring, name, endpoint, 1.0 + (double) x / 2) != 0) {
            exit (1);
        }
    }
    return ring;
}

static void
s_rings (void)
{
    const struct {
        const char *name;
        size_t shards;
        uint32_t points_per_weight;
        bool keyed;
    } rings[] = {{"one_shard", 1, 1, false},
                 {"two_shards", 2, 2, false},
                 {"three_shards", 3, 4, false},
                 {"keyed", 2, 2, true}};
    for (size_t k = 0; k < sizeof rings / sizeof rings[0]; k++) {
        ring_t *ring = s_ring (rings[k].shards, rings[k].points_per_weight);
        if (rings[k].keyed
            && (ring_set_key (ring, "s1", S_KEY_A) != 0
                || ring_set_key (ring, "s2", S_KEY_B) != 0)) {
            exit (1);
        }
        size_t size = ring_encoded_size (ring);
        uint8_t *blob = malloc (size);
        if (!blob || ring_encode (ring, blob, size) != size) {
            exit (1);
        }
        s_write ("ring_blob", rings[k].name, 0, false, blob, size);
        char *text = ring_to_text (ring);
        if (!text) {
            exit (1);
        }
        s_write ("ring_text", rings[k].name, 0, false, text, strlen (text));
        s_write ("config", rings[k].name, 1, true, text, strlen (text));
        free (text);
        free (blob);
        ring_destroy (&ring);
    }
    const char *placed = "# placed by the loader\n"
                         "epoch 9\n"
                         "points_per_weight 2\n"
                         "shard a tcp://127.0.0.1:7001 weight 1\n"
                         "shard b tcp://127.0.0.1:7002 weight 0.5\n";
    s_write ("ring_text", "placed", 0, false, placed, strlen (placed));
    s_write ("config", "ring_placed", 1, true, placed, strlen (placed));
}

static void
s_failpoints (void)
{
    char spec[1024];
    snprintf (spec, sizeof spec, "%s=crash", failpoint_name (0));
    s_write ("config", "failpoint_crash", 0, true, spec, strlen (spec));
    snprintf (spec, sizeof spec, "%s=error@3,%s=delay:10", failpoint_name (0),
              failpoint_name ((rl_fp_t) (failpoint_count () - 1)));
    s_write ("config", "failpoints_two", 0, true, spec, strlen (spec));
    s_write ("config", "failpoints_empty", 0, true, "", 0);
}

static void
s_keys (void)
{
    s_write ("config", "key_text", 2, true, S_KEY_A, strlen (S_KEY_A));
    //  A certificate in czmq's zcert format (ZPL), public and secret keys.
    const char *cert = "#   ZeroMQ CURVE **Secret** Certificate\n"
                       "metadata\n"
                       "    name = \"s1\"\n"
                       "curve\n"
                       "    public-key = \"" S_KEY_A "\"\n"
                       "    secret-key = \"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs\"\n";
    s_write ("config", "cert_secret", 3, true, cert, strlen (cert));
}

static void
s_options (void)
{
    uint8_t option[16 + 8];
    int64_t bounds[2] = {1, 600000};
    memcpy (option, bounds, sizeof bounds);
    memcpy (option + 16, "2000", 4);
    s_write ("config", "option_in_range", 4, true, option, 16 + 4);
    memcpy (option + 16, "99x", 3);
    s_write ("config", "option_trailing_text", 4, true, option, 16 + 3);
}

//  Config files (common/config.c): a good one with every form of value,
//  and refused ones.
static void
s_config_files (void)
{
    const char *good = "#   a shard (docs/config.md)\n"
                       "name = s1\n"
                       "bind\t=\ttcp://127.0.0.1:7101   # a comment\n"
                       "deadline-ms = \"3000\"\n"
                       "insecure = true\n"
                       "\n"
                       "  \n"
                       "data = '/var/lib/ringledger/s 1'#\n";
    s_write ("config", "file_good", 5, true, good, strlen (good));
    const char *unknown = "name = s1\nbogus = 1\n";
    s_write ("config", "file_unknown_key", 5, true, unknown, strlen (unknown));
    const char *flags = "insecure = false\nname = \"x y\"\n";
    s_write ("config", "file_flag_false", 5, true, flags, strlen (flags));
    const char *bad = "name = s1\n    deadline-ms = 1\nname = s2\r\nbind = \"a\n";
    s_write ("config", "file_refused", 5, true, bad, strlen (bad));
}

int
main (int argc, char *argv[])
{
    if (argc != 2) {
        fprintf (stderr, "usage: fuzz_make_corpus DIR\n");
        return 2;
    }
    s_dir = argv[1];
    s_codec ();
    s_chunks ();
    s_rings ();
    s_failpoints ();
    s_keys ();
    s_options ();
    s_config_files ();
    return 0;
}
