/*  fuzz_codec.c: libFuzzer target of the wire codec (common/codec.c).

    The first input byte picks what the rest is fed to:
        0  codec_parse_request, then every record of the body
        1  codec_parse_reply, then every record of the body
        2  every record decoder directly (id, account, transfer, result,
           filter, status, tp, prepare, in_doubt, audit, migrate, events,
           arc_load, hot_accounts, repl, backup) and the header

    PROPERTIES (beyond "no crash")
    1. parse and check agree: same status, same header; a frame of at
       least a header has its header filled and its request id readable.
    2. A well-formed frame's body is the frame past the header, and holds
       record_count records of the operation's size (or one blob).
    3. Round trip: a record decoded then encoded gives the input bytes,
       except for the string fields that decode NUL-terminates; encoding
       is then a fixed point (decode(encode(r)) encodes the same bytes).
       The header round-trips exactly.
    4. A frame rebuilt from the decoded header and records parses to the
       same status and header.
    5. An error reply is a bare header (of any operation); any other
       well-formed frame is of a known operation.
    6. A well-formed two-phase frame (prepare, decide, outcome_query,
       resolve) names no transfer by the zero or the all-ones id; a
       well-formed PREPARE request names no such account, moves a non-zero
       amount, has no unknown flag and no reserved field set, is of one
       kind at most (pending, post or void; a chain's leg never a post or
       void), and carries only its kind's pending fields.
*/
#include <string.h>

#include "codec.h"
#include "fuzz_check.h"
#include "rl_limits.h"

typedef enum { S_MODE_REQUEST = 0, S_MODE_REPLY = 1, S_MODE_RECORDS = 2, S_MODES } s_mode_t;

//  One record kind: its size and its round trip, which writes the
//  normalised encoding into out and checks properties 3.
typedef struct {
    size_t size;
    void (*round_trip) (const uint8_t *in, uint8_t *out);
} s_kind_t;

#define S_ROUND_TRIP(name, T, record_size, exact)                                                  \
    static void s_round_trip_##name (const uint8_t *in, uint8_t *out)                              \
    {                                                                                              \
        T first;                                                                                   \
        memset (&first, 0, sizeof first);                                                          \
        codec_decode_##name (in, &first);                                                          \
        codec_encode_##name (&first, out);                                                         \
        if (exact) {                                                                               \
            FUZZ_CHECK (memcmp (in, out, record_size) == 0);                                       \
        }                                                                                          \
        T second;                                                                                  \
        memset (&second, 0, sizeof second);                                                        \
        codec_decode_##name (out, &second);                                                        \
        uint8_t again[record_size];                                                                \
        codec_encode_##name (&second, again);                                                      \
        FUZZ_CHECK (memcmp (out, again, record_size) == 0);                                        \
    }

S_ROUND_TRIP (account, rl_account_t, RL_ACCOUNT_SIZE, 1)
S_ROUND_TRIP (transfer, rl_transfer_t, RL_TRANSFER_SIZE, 1)
S_ROUND_TRIP (result, rl_result_rec_t, RL_RESULT_SIZE, 1)
S_ROUND_TRIP (filter, rl_filter_t, RL_FILTER_SIZE, 1)
S_ROUND_TRIP (status, rl_status_rec_t, RL_STATUS_SIZE, 0)
S_ROUND_TRIP (tp, rl_tp_rec_t, RL_TP_SIZE, 0)
S_ROUND_TRIP (prepare, rl_prepare_rec_t, RL_PREPARE_SIZE, 0)
S_ROUND_TRIP (in_doubt, rl_in_doubt_rec_t, RL_IN_DOUBT_SIZE, 0)
S_ROUND_TRIP (audit, rl_audit_rec_t, RL_AUDIT_SIZE, 0)
S_ROUND_TRIP (migrate, rl_migrate_rec_t, RL_MIGRATE_SIZE, 0)
S_ROUND_TRIP (events_req, rl_events_req_t, RL_EVENTS_REQ_SIZE, 0)
S_ROUND_TRIP (event, rl_event_t, RL_EVENT_SIZE, 0)
S_ROUND_TRIP (arc_load, rl_arc_load_rec_t, RL_ARC_LOAD_SIZE, 0)
S_ROUND_TRIP (hot_account, rl_hot_account_rec_t, RL_HOT_ACCOUNTS_SIZE, 0)
S_ROUND_TRIP (repl, rl_repl_rec_t, RL_REPL_SIZE, 0)

//  A backup record is read by the shard's backup code alone (shard/backup.c),
//  not by the codec: its bytes go through unchanged.
static void
s_round_trip_backup (const uint8_t *in, uint8_t *out)
{
    memcpy (out, in, RL_BACKUP_SIZE);
}

static void
s_round_trip_id (const uint8_t *in, uint8_t *out)
{
    codec_encode_id (codec_decode_id (in), out);
    FUZZ_CHECK (memcmp (in, out, RL_ID_SIZE) == 0);
}

static void
s_round_trip_header (const uint8_t *in, uint8_t *out)
{
    rl_header_t header;
    memset (&header, 0, sizeof header);
    codec_decode_header (in, &header);
    codec_encode_header (&header, out);
    FUZZ_CHECK (memcmp (in, out, RL_HEADER_SIZE) == 0);
}

static const s_kind_t s_id = {RL_ID_SIZE, s_round_trip_id};
static const s_kind_t s_account = {RL_ACCOUNT_SIZE, s_round_trip_account};
static const s_kind_t s_transfer = {RL_TRANSFER_SIZE, s_round_trip_transfer};
static const s_kind_t s_result = {RL_RESULT_SIZE, s_round_trip_result};
static const s_kind_t s_filter = {RL_FILTER_SIZE, s_round_trip_filter};
static const s_kind_t s_status = {RL_STATUS_SIZE, s_round_trip_status};
static const s_kind_t s_tp = {RL_TP_SIZE, s_round_trip_tp};
static const s_kind_t s_prepare = {RL_PREPARE_SIZE, s_round_trip_prepare};
static const s_kind_t s_in_doubt = {RL_IN_DOUBT_SIZE, s_round_trip_in_doubt};
static const s_kind_t s_audit = {RL_AUDIT_SIZE, s_round_trip_audit};
static const s_kind_t s_migrate = {RL_MIGRATE_SIZE, s_round_trip_migrate};
static const s_kind_t s_events_req = {RL_EVENTS_REQ_SIZE, s_round_trip_events_req};
static const s_kind_t s_event = {RL_EVENT_SIZE, s_round_trip_event};
static const s_kind_t s_arc_load = {RL_ARC_LOAD_SIZE, s_round_trip_arc_load};
static const s_kind_t s_hot_account = {RL_HOT_ACCOUNTS_SIZE, s_round_trip_hot_account};
static const s_kind_t s_repl = {RL_REPL_SIZE, s_round_trip_repl};
static const s_kind_t s_backup = {RL_BACKUP_SIZE, s_round_trip_backup};
static const s_kind_t s_header = {RL_HEADER_SIZE, s_round_trip_header};

//  The record kind of a request or reply body of `op`; NULL for a blob or
//  an empty body.
static const s_kind_t *
s_kind_of (uint32_t op, bool request)
{
    switch (op) {
        case RL_OP_CREATE_ACCOUNTS:
            return request ? &s_account : &s_result;
        case RL_OP_CREATE_TRANSFERS:
            return request ? &s_transfer : &s_result;
        case RL_OP_LOOKUP_ACCOUNTS:
            return request ? &s_id : &s_account;
        case RL_OP_LOOKUP_TRANSFERS:
            return request ? &s_id : &s_transfer;
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            return request ? &s_filter : &s_transfer;
        case RL_OP_STATUS:
            return request ? NULL : &s_status;
        case RL_OP_PREPARE:
            return request ? &s_prepare : &s_tp;
        case RL_OP_DECIDE:
        case RL_OP_OUTCOME_QUERY:
        case RL_OP_RESOLVE:
            return &s_tp;
        case RL_OP_IN_DOUBT:
            return request ? NULL : &s_in_doubt;
        case RL_OP_AUDIT:
            return request ? NULL : &s_audit;
        case RL_OP_MIGRATE_BEGIN:
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_MIGRATE_CLEANUP:
        case RL_OP_MIGRATE_LEASE: //  the reply: two (the stored migration, the lease)
            return &s_migrate;
        case RL_OP_MIGRATE_EXPORT:
            return request ? &s_migrate : NULL; //  the reply: a chunk blob
        case RL_OP_MIGRATE_IMPORT:
            return request ? NULL : &s_migrate;
        case RL_OP_EVENTS_READ:
            return request ? &s_events_req : &s_event;
        case RL_OP_ARC_LOAD:
            return request ? NULL : &s_arc_load;
        case RL_OP_HOT_ACCOUNTS:
            return request ? NULL : &s_hot_account;
        case RL_OP_REPL_STATUS:
            return request ? NULL : &s_repl;
        case RL_OP_BACKUP_HOLD:
        case RL_OP_BACKUP_CUT:
        case RL_OP_BACKUP_RELEASE:
        case RL_OP_BACKUP_STATUS:
            return &s_backup;
        default:
            return NULL; //  load_ring, get_ring: a blob, opaque to the codec
    }
}

//  Property 2 for every operation at once, before any input: each known
//  operation's request and reply record size has its kind here (so that a
//  new operation cannot wait for the fuzzer to stumble on it), and an
//  unknown one has no size.
static void
s_check_kinds (void)
{
    static bool checked = false;
    if (checked) {
        return;
    }
    checked = true;
    for (uint32_t op = 0; op < 256; op++) {
        for (int request = 0; request < 2; request++) {
            size_t size = request ? codec_request_record_size (op) : codec_reply_record_size (op);
            const s_kind_t *kind = s_kind_of (op, request);
            if (!codec_op_is_known (op) || size == RL_BLOB) {
                FUZZ_CHECK (kind == NULL);
            } else if (kind) {
                FUZZ_CHECK (kind->size == size);
            } else {
                FUZZ_CHECK (size == 0);
            }
        }
    }
}

static bool
s_id_usable (rl_id_t id)
{
    return !rl_id_is_zero (id) && !rl_id_is_max (id);
}

//  Property 6, on one record of a well-formed frame.
static void
s_check_two_phase (uint32_t op, bool request, const uint8_t *record)
{
    if (op != RL_OP_PREPARE && op != RL_OP_DECIDE && op != RL_OP_OUTCOME_QUERY
        && op != RL_OP_RESOLVE) {
        return;
    }
    if (request && op == RL_OP_PREPARE) {
        rl_prepare_rec_t rec;
        codec_decode_prepare (record, &rec);
        const rl_transfer_t *t = &rec.transfer;
        //  The pending fields of its kind only: a pending transfer may have
        //  a timeout, a post or void names another usable pending id. A
        //  post or void with a leg bit (or both) may leave its amount zero,
        //  and of both legs its credit account too (as the client gave it);
        //  nothing else may.
        uint16_t resolve = RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER;
        uint16_t kinds = t->flags & (RL_TRANSFER_PENDING | resolve);
        uint16_t legs = t->flags & RL_TRANSFER_TP_LEGS;
        bool post_leg = legs && (kinds & resolve);
        bool as_given = legs == RL_TRANSFER_TP_BOTH_LEGS && (kinds & resolve);
        FUZZ_CHECK (s_id_usable (rec.tp.id) && s_id_usable (t->id));
        FUZZ_CHECK (s_id_usable (t->debit_account_id));
        FUZZ_CHECK (s_id_usable (t->credit_account_id)
                    || (as_given && rl_id_is_zero (t->credit_account_id)));
        FUZZ_CHECK ((t->amount != 0 || post_leg)
                    && (t->flags & ~(RL_TRANSFER_FLAGS_KNOWN | RL_TRANSFER_TP_LEGS)) == 0);
        FUZZ_CHECK ((kinds & (kinds - 1)) == 0);
        if (kinds & resolve) {
            FUZZ_CHECK (s_id_usable (t->pending_id) && !rl_id_eq (t->pending_id, t->id));
        } else {
            FUZZ_CHECK (rl_id_is_zero (t->pending_id));
        }
        FUZZ_CHECK ((t->timeout == 0 || kinds == RL_TRANSFER_PENDING) && t->reserved == 0);
        FUZZ_CHECK (rec.reserved[0] == 0 && rec.reserved[1] == 0);
    } else {
        rl_tp_rec_t rec;
        codec_decode_tp (record, &rec);
        FUZZ_CHECK (s_id_usable (rec.id));
    }
}

static bool
s_headers_equal (const rl_header_t *a, const rl_header_t *b)
{
    uint8_t bytes_a[RL_HEADER_SIZE];
    uint8_t bytes_b[RL_HEADER_SIZE];
    codec_encode_header (a, bytes_a);
    codec_encode_header (b, bytes_b);
    return memcmp (bytes_a, bytes_b, RL_HEADER_SIZE) == 0;
}

static rl_status_t
s_parse (bool request, const uint8_t *frame, size_t size, rl_header_t *header,
         const uint8_t **body_p, size_t *body_size_p)
{
    return request ? codec_parse_request (frame, size, header, body_p, body_size_p)
                   : codec_parse_reply (frame, size, header, body_p, body_size_p);
}

static void
s_frame (const uint8_t *frame, size_t size, bool request)
{
    rl_header_t header;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    rl_status_t status = s_parse (request, frame, size, &header, &body, &body_size);
    rl_header_t checked;
    rl_status_t check = request ? codec_check_request (frame, size, &checked)
                                : codec_check_reply (frame, size, &checked);
    FUZZ_CHECK (status == check);                     //  1
    FUZZ_CHECK (s_headers_equal (&header, &checked)); //  1
    FUZZ_CHECK (codec_frame_has_header (size) == (size >= RL_HEADER_SIZE));
    if (size >= RL_HEADER_SIZE) {
        uint8_t out[RL_HEADER_SIZE];
        s_round_trip_header (frame, out);
        FUZZ_CHECK (codec_frame_request_id (frame, size) == header.request_id);
    } else {
        FUZZ_CHECK (codec_frame_request_id (frame, size) == 0);
    }
    if (status != RL_STATUS_OK) {
        FUZZ_CHECK (body == NULL && body_size == 0);
        return;
    }
    FUZZ_CHECK (size >= RL_HEADER_SIZE);             //  2
    FUZZ_CHECK (body == frame + RL_HEADER_SIZE);     //  2
    FUZZ_CHECK (body_size == size - RL_HEADER_SIZE); //  2
    FUZZ_CHECK (header.record_count <= RL_BATCH_RECORDS_MAX);
    if (!request && header.status != RL_STATUS_OK) {
        FUZZ_CHECK (header.record_count == 0 && body_size == 0); //  5
        return;
    }
    FUZZ_CHECK (codec_op_is_known (header.operation));
    size_t record_size = request ? codec_request_record_size (header.operation)
                                 : codec_reply_record_size (header.operation);
    if (record_size == RL_BLOB) {
        FUZZ_CHECK (header.record_count == 1 && body_size >= 1);
        FUZZ_CHECK (body_size <= RL_RING_BLOB_SIZE_MAX);
        return;
    }
    FUZZ_CHECK (body_size == (size_t) header.record_count * record_size); //  2
    const s_kind_t *kind = s_kind_of (header.operation, request);
    FUZZ_CHECK (kind ? kind->size == record_size : body_size == 0);
    FUZZ_CHECK (kind || header.record_count == 0); //  2: no count of nothing
    //  4: the frame rebuilt from its decoded header and records.
    uint8_t *rebuilt = malloc (codec_frame_size (body_size));
    FUZZ_CHECK (rebuilt != NULL);
    uint8_t *out = codec_encode_frame (&header, NULL, body_size, rebuilt);
    FUZZ_CHECK (out == rebuilt + RL_HEADER_SIZE);
    for (size_t i = 0; i < header.record_count; i++) {
        const uint8_t *record = body + i * record_size;
        kind->round_trip (record, out + i * record_size);      //  3
        s_check_two_phase (header.operation, request, record); //  6
        if (request) {
            const uint8_t *routing = codec_routing_id (header.operation, record);
            FUZZ_CHECK (!routing
                        || (routing >= record && routing + RL_ID_SIZE <= record + record_size));
            rl_id_t id = codec_record_id (header.operation, record);
            (void) id;
        } else if (record_size == RL_TRANSFER_SIZE && kind == &s_transfer) {
            (void) codec_transfer_timestamp (record);
        }
    }
    rl_header_t again;
    const uint8_t *again_body = NULL;
    size_t again_size = 0;
    rl_status_t again_status = s_parse (request, rebuilt, codec_frame_size (body_size), &again,
                                        &again_body, &again_size);
    FUZZ_CHECK (again_status == RL_STATUS_OK);      //  4
    FUZZ_CHECK (s_headers_equal (&header, &again)); //  4
    FUZZ_CHECK (again_size == body_size);           //  4
    size_t frame_body_size = 0;
    FUZZ_CHECK (codec_frame_body (rebuilt, codec_frame_size (body_size), &frame_body_size) == out);
    FUZZ_CHECK (frame_body_size == body_size);
    free (rebuilt);
}

static void
s_records (const uint8_t *data, size_t size)
{
    static const s_kind_t *const kinds[] = {
        &s_id,         &s_account, &s_transfer, &s_result,      &s_filter, &s_status,
        &s_tp,         &s_prepare, &s_in_doubt, &s_audit,       &s_header, &s_migrate,
        &s_events_req, &s_event,   &s_arc_load, &s_hot_account, &s_repl,   &s_backup};
    uint8_t out[RL_BACKUP_SIZE];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        FUZZ_CHECK (kinds[k]->size <= sizeof out);
        if (size >= kinds[k]->size) {
            //  An exact-size copy: a read past the record is caught.
            uint8_t *copy = malloc (kinds[k]->size);
            FUZZ_CHECK (copy != NULL);
            memcpy (copy, data, kinds[k]->size);
            kinds[k]->round_trip (copy, out);
            free (copy);
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_check_kinds ();
    if (size < 1) {
        return 0;
    }
    s_mode_t mode = (s_mode_t) (data[0] % S_MODES);
    const uint8_t *rest = size > 1 ? data + 1 : NULL;
    switch (mode) {
        case S_MODE_REQUEST:
            s_frame (rest, size - 1, true);
            break;
        case S_MODE_REPLY:
            s_frame (rest, size - 1, false);
            break;
        default:
            s_records (rest, size - 1);
            break;
    }
    return 0;
}
