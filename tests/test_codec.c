/*  test_codec.c: the wire codec and the names of every code.

    WHAT IS CHECKED
    1. Vectors: every ```hex name=...``` block of docs/protocol.md is the
       encoding of the structs written out below, decodes back to them, and
       passes codec_check_request / codec_check_reply (or fails with the
       status the doc names); no block is missing and none is unknown.
    2. Round trips of every record type with random contents, and field
       offsets spot-checked with the little-endian primitives; the frame
       and placement helpers.
    3. Every rejection path of codec_check_request and codec_check_reply,
       and the order in which the checks run.
    4. Fuzz: random frames (some with a valid header prefix) never crash,
       always get a defined status, and an ok is always consistent.
    5. Names: for every value of every enum in proto.h (parsed from the
       header itself), the name is the enum name in lower case; undefined
       values are "unknown"; the result and status tables of the doc list
       the rows of RL_RESULT_TABLE and RL_STATUS_TABLE, in order, with the
       same names, and the doc's "group" and "burns id" columns agree with
       each row's class and burns.
    6. rl_reply_burns: a linked chain's member never burns its id, any
       other record reads as its code.

    Randomized tests print their seed; RL_SEED=N reproduces a run. The doc
    and proto.h paths are compile definitions; argv[1] overrides the doc.
    Built twice: with the memcpy codec and with RL_CODEC_PORTABLE=1.
*/
#include <ctype.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "codec.h"
#include "proto.h"
#include "rl_rand.h"

#ifndef RL_PROTOCOL_MD_PATH
#error "RL_PROTOCOL_MD_PATH must name docs/protocol.md"
#endif
#ifndef RL_PROTO_H_PATH
#error "RL_PROTO_H_PATH must name common/proto.h"
#endif

#define FUZZ_FRAMES         100000
#define FUZZ_FRAME_SIZE_MAX 4096
#define ROUND_TRIPS         2000
#define VECTOR_SIZE_MAX     4096

static const char *s_doc_path = RL_PROTOCOL_MD_PATH;
static uint64_t s_seed;

//  Helpers ---------------------------------------------------------------

static uint64_t s_rng_state;

static uint64_t
s_rand (void)
{
    if (s_rng_state == 0) {
        s_rng_state = 1; //  RL_SEED=0: xorshift must not start from 0
    }
    return rl_rand_next (&s_rng_state);
}

static void
s_rand_fill (void *buf, size_t size)
{
    uint8_t *p = buf;
    while (size >= 8) {
        uint64_t v = s_rand ();
        memcpy (p, &v, 8);
        p += 8;
        size -= 8;
    }
    uint64_t v = s_rand ();
    memcpy (p, &v, size);
}

//  Reads a whole file into a NUL-terminated buffer; NULL if it cannot.
static char *
s_read_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        return NULL;
    }
    char *text = NULL;
    if (fseek (file, 0, SEEK_END) == 0) {
        long size = ftell (file);
        if (size >= 0 && fseek (file, 0, SEEK_SET) == 0) {
            text = malloc ((size_t) size + 1);
            if (text && fread (text, 1, (size_t) size, file) != (size_t) size) {
                free (text);
                text = NULL;
            }
            if (text) {
                text[size] = '\0';
            }
        }
    }
    fclose (file);
    return text;
}

static char *
s_read_or_fail (const char *path)
{
    char *text = s_read_file (path);
    if (!text) {
        fail_msg ("cannot read %s", path);
    }
    return text;
}

#define FENCE_OPEN "```hex name="

//  Finds the vector `name` in the doc and parses its bytes into out.
//  Returns the byte count, or -1 when there is no such block.
static long
s_doc_vector (const char *doc, const char *name, uint8_t *out, size_t out_size)
{
    const char *p = doc;
    size_t name_size = strlen (name);
    while ((p = strstr (p, FENCE_OPEN)) != NULL) {
        p += strlen (FENCE_OPEN);
        if (strncmp (p, name, name_size) == 0 && p[name_size] == '\n') {
            break;
        }
    }
    if (!p) {
        return -1;
    }
    p = strchr (p, '\n') + 1;
    size_t size = 0;
    while (strncmp (p, "```", 3) != 0) {
        if (*p == ' ' || *p == '\n') {
            p++;
            continue;
        }
        unsigned int byte;
        int used = 0;
        if (!isxdigit ((unsigned char) p[0]) || !isxdigit ((unsigned char) p[1])
            || sscanf (p, "%2x%n", &byte, &used) != 1 || used != 2) {
            fail_msg ("vector %s: bad hex near \"%.10s\"", name, p);
        }
        assert_true (size < out_size);
        out[size++] = (uint8_t) byte;
        p += 2;
    }
    return (long) size;
}

//  Vectors: the structs each doc block encodes ------------------------------

#define T0          1732550400000000000ull
#define TS_ACCOUNT  (T0 + 1)
#define TS_TRANSFER (T0 + 2)
#define RID(op)     (0x0807060504030200ull + (op))
#define ID(n)       ((rl_id_t){.lo = (n), .hi = 0})

typedef enum {
    KIND_NONE,
    KIND_ID,
    KIND_ACCOUNT,
    KIND_TRANSFER,
    KIND_RESULT,
    KIND_FILTER,
    KIND_STATUS,
    KIND_BLOB,
    KIND_EVENTS_REQ,
    KIND_EVENT,
} kind_t;

typedef struct {
    const char *name; //  the doc block
    bool is_request;
    rl_status_t check; //  what codec_check_* returns for it
    rl_header_t header;
    kind_t kind;
    const void *records; //  header.record_count of them, or the blob
    size_t blob_size;
} vector_t;

static const rl_account_t s_account_new[] = {{
    .id = ID (1),
    .user_data_128 = ID (42),
    .user_data_64 = 43,
    .user_data_32 = 44,
    .ledger = 700,
    .code = 10,
    .flags = RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
}};
static const rl_result_rec_t s_account_results[] = {
    {.index = 0, .result = RL_OK, .timestamp = TS_ACCOUNT}};
static const rl_transfer_t s_transfers_new[] = {
    {.id = ID (0x1000),
     .debit_account_id = ID (2),
     .credit_account_id = ID (1),
     .amount = 12345,
     .user_data_128 = ID (7),
     .user_data_64 = 8,
     .user_data_32 = 9,
     .ledger = 700,
     .code = 1},
    {.id = ID (0x1001),
     .debit_account_id = ID (1),
     .credit_account_id = ID (2),
     .amount = 1000000,
     .ledger = 700,
     .code = 1},
};
static const rl_result_rec_t s_transfer_results[] = {
    {.index = 0, .result = RL_OK, .timestamp = TS_TRANSFER},
    {.index = 1, .result = RL_EXCEEDS_CREDITS, .timestamp = 0},
};
static const rl_id_t s_account_ids[] = {ID (1), ID (99)};
static const rl_account_t s_accounts_found[] = {
    {.id = ID (1),
     .credits_posted = 12345,
     .user_data_128 = ID (42),
     .user_data_64 = 43,
     .user_data_32 = 44,
     .ledger = 700,
     .code = 10,
     .flags = RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
     .timestamp = TS_ACCOUNT},
    {.id = ID (99)},
};
static const rl_id_t s_transfer_ids[] = {ID (0x1000)};
static const rl_transfer_t s_transfers_found[] = {
    {.id = ID (0x1000),
     .debit_account_id = ID (2),
     .credit_account_id = ID (1),
     .amount = 12345,
     .user_data_128 = ID (7),
     .user_data_64 = 8,
     .user_data_32 = 9,
     .ledger = 700,
     .code = 1,
     .timestamp = TS_TRANSFER},
};
static const rl_filter_t s_filter[] = {{
    .account_id = ID (1),
    .limit = 10,
    .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS,
}};
static const rl_status_rec_t s_status[] = {{
    .name = "shard-a",
    .epoch = 3,
    .accounts = 2,
    .transfers = 1,
    .requests = 5,
    .commits = 3,
    .durability = RL_DURABILITY_SYNC,
    .ring_shards = 2,
    .last_timestamp = TS_TRANSFER,
    .malformed = 1,
    .pid = 4242,
    .uptime_ms = 60000,
}};
#define EVENTS_NONCE 0x1122334455667788ull
static const rl_events_req_t s_events_req[] = {{
    .incarnation = 2,
    .nonce = EVENTS_NONCE,
    .timestamp = TS_ACCOUNT,
    .limit = 100,
}};
static const rl_event_t s_events[] = {
    {.transfer = {.id = ID (0x1000),
                  .debit_account_id = ID (2),
                  .credit_account_id = ID (1),
                  .amount = 12345,
                  .user_data_128 = ID (7),
                  .user_data_64 = 8,
                  .user_data_32 = 9,
                  .ledger = 700,
                  .code = 1,
                  .timestamp = TS_TRANSFER},
     .incarnation = 3,
     .nonce = EVENTS_NONCE + 1,
     .result = RL_OK,
     .leg = RL_EVENT_LEG_BOTH},
    {.transfer = {.id = ID (0x1001),
                  .debit_account_id = ID (1),
                  .credit_account_id = ID (2),
                  .amount = 1000000,
                  .ledger = 700,
                  .code = 1,
                  .timestamp = TS_TRANSFER + 1},
     .incarnation = 3,
     .nonce = EVENTS_NONCE + 1,
     .result = RL_EXCEEDS_CREDITS,
     .leg = RL_EVENT_LEG_BOTH},
};
static const uint8_t s_blob[] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

#define HDR(op, count, status_, epoch_)                                                            \
    {                                                                                              \
        .magic = RL_MAGIC, .version = RL_VERSION, .operation = (op), .request_id = RID (op),       \
        .record_count = (count), .status = (status_), .epoch = (epoch_)                            \
    }

static const vector_t s_vectors[] = {
    {"create_accounts.request", true, RL_STATUS_OK, HDR (1, 1, 0, 0), KIND_ACCOUNT, s_account_new,
     0},
    {"create_accounts.reply", false, RL_STATUS_OK, HDR (1, 1, 0, 3), KIND_RESULT, s_account_results,
     0},
    {"create_transfers.request", true, RL_STATUS_OK, HDR (2, 2, 0, 0), KIND_TRANSFER,
     s_transfers_new, 0},
    {"create_transfers.reply", false, RL_STATUS_OK, HDR (2, 2, 0, 3), KIND_RESULT,
     s_transfer_results, 0},
    {"lookup_accounts.request", true, RL_STATUS_OK, HDR (3, 2, 0, 0), KIND_ID, s_account_ids, 0},
    {"lookup_accounts.reply", false, RL_STATUS_OK, HDR (3, 2, 0, 3), KIND_ACCOUNT, s_accounts_found,
     0},
    {"lookup_transfers.request", true, RL_STATUS_OK, HDR (4, 1, 0, 0), KIND_ID, s_transfer_ids, 0},
    {"lookup_transfers.reply", false, RL_STATUS_OK, HDR (4, 1, 0, 3), KIND_TRANSFER,
     s_transfers_found, 0},
    {"get_account_transfers.request", true, RL_STATUS_OK, HDR (5, 1, 0, 0), KIND_FILTER, s_filter,
     0},
    {"get_account_transfers.reply", false, RL_STATUS_OK, HDR (5, 1, 0, 3), KIND_TRANSFER,
     s_transfers_found, 0},
    {"status.request", true, RL_STATUS_OK, HDR (6, 0, 0, 0), KIND_NONE, NULL, 0},
    {"status.reply", false, RL_STATUS_OK, HDR (6, 1, 0, 3), KIND_STATUS, s_status, 0},
    {"load_ring.request", true, RL_STATUS_OK, HDR (7, 1, 0, 0), KIND_BLOB, s_blob, sizeof s_blob},
    {"load_ring.reply", false, RL_STATUS_OK, HDR (7, 0, 0, 4), KIND_NONE, NULL, 0},
    {"get_ring.request", true, RL_STATUS_OK, HDR (8, 0, 0, 0), KIND_NONE, NULL, 0},
    {"get_ring.reply", false, RL_STATUS_OK, HDR (8, 1, 0, 4), KIND_BLOB, s_blob, sizeof s_blob},
    {"events_read.request", true, RL_STATUS_OK, HDR (65, 1, 0, 0), KIND_EVENTS_REQ, s_events_req,
     0},
    {"events_read.reply", false, RL_STATUS_OK, HDR (65, 2, 0, 3), KIND_EVENT, s_events, 0},
    {"bad_version.request",
     true,
     RL_STATUS_BAD_VERSION,
     {.magic = RL_MAGIC, .version = 2, .operation = 2, .request_id = RID (2)},
     KIND_NONE,
     NULL,
     0},
    {"bad_version.reply", false, RL_STATUS_OK, HDR (2, 0, RL_STATUS_BAD_VERSION, 3), KIND_NONE,
     NULL, 0},
    {"unknown_operation.request", true, RL_STATUS_UNKNOWN_OPERATION, HDR (18, 0, 0, 0), KIND_NONE,
     NULL, 0},
    {"unknown_operation.reply", false, RL_STATUS_OK, HDR (18, 0, RL_STATUS_UNKNOWN_OPERATION, 3),
     KIND_NONE, NULL, 0},
};
#define VECTORS (sizeof s_vectors / sizeof s_vectors[0])

static size_t
s_kind_size (kind_t kind)
{
    switch (kind) {
        case KIND_ID:
            return RL_ID_SIZE;
        case KIND_ACCOUNT:
            return RL_ACCOUNT_SIZE;
        case KIND_TRANSFER:
            return RL_TRANSFER_SIZE;
        case KIND_RESULT:
            return RL_RESULT_SIZE;
        case KIND_FILTER:
            return RL_FILTER_SIZE;
        case KIND_STATUS:
            return RL_STATUS_SIZE;
        case KIND_EVENTS_REQ:
            return RL_EVENTS_REQ_SIZE;
        case KIND_EVENT:
            return RL_EVENT_SIZE;
        default:
            return 0;
    }
}

//  Encodes record i of `records` (of `kind`) into out.
static void
s_encode_record (kind_t kind, const void *records, size_t i, uint8_t *out)
{
    switch (kind) {
        case KIND_ID:
            codec_encode_id (((const rl_id_t *) records)[i], out);
            break;
        case KIND_ACCOUNT:
            codec_encode_account ((const rl_account_t *) records + i, out);
            break;
        case KIND_TRANSFER:
            codec_encode_transfer ((const rl_transfer_t *) records + i, out);
            break;
        case KIND_RESULT:
            codec_encode_result ((const rl_result_rec_t *) records + i, out);
            break;
        case KIND_FILTER:
            codec_encode_filter ((const rl_filter_t *) records + i, out);
            break;
        case KIND_STATUS:
            codec_encode_status ((const rl_status_rec_t *) records + i, out);
            break;
        case KIND_EVENTS_REQ:
            codec_encode_events_req ((const rl_events_req_t *) records + i, out);
            break;
        case KIND_EVENT:
            codec_encode_event ((const rl_event_t *) records + i, out);
            break;
        default:
            fail ();
    }
}

//  Decodes one record of `kind` from in into rec (sized for any record).
static void
s_decode_record (kind_t kind, const uint8_t *in, void *rec)
{
    switch (kind) {
        case KIND_ID: {
            rl_id_t id = codec_decode_id (in);
            memcpy (rec, &id, sizeof id);
            break;
        }
        case KIND_ACCOUNT:
            codec_decode_account (in, rec);
            break;
        case KIND_TRANSFER:
            codec_decode_transfer (in, rec);
            break;
        case KIND_RESULT:
            codec_decode_result (in, rec);
            break;
        case KIND_FILTER:
            codec_decode_filter (in, rec);
            break;
        case KIND_STATUS:
            codec_decode_status (in, rec);
            break;
        case KIND_EVENTS_REQ:
            codec_decode_events_req (in, rec);
            break;
        case KIND_EVENT:
            codec_decode_event (in, rec);
            break;
        default:
            fail ();
    }
}

//  Encodes a vector's structs into out; returns the frame size.
static size_t
s_encode_vector (const vector_t *v, uint8_t *out)
{
    codec_encode_header (&v->header, out);
    size_t size = RL_HEADER_SIZE;
    if (v->kind == KIND_BLOB) {
        memcpy (out + size, v->records, v->blob_size);
        return size + v->blob_size;
    }
    size_t record_size = s_kind_size (v->kind);
    for (size_t i = 0; i < v->header.record_count; i++) {
        s_encode_record (v->kind, v->records, i, out + size);
        size += record_size;
    }
    return size;
}

static void
s_check_vector (const char *doc, const vector_t *v)
{
    uint8_t wire[VECTOR_SIZE_MAX];
    uint8_t mine[VECTOR_SIZE_MAX];
    long wire_size = s_doc_vector (doc, v->name, wire, sizeof wire);
    if (wire_size < 0) {
        fail_msg ("docs/protocol.md has no vector %s", v->name);
    }
    //  Structs -> bytes: exactly the documented bytes.
    size_t mine_size = s_encode_vector (v, mine);
    assert_int_equal (mine_size, (size_t) wire_size);
    assert_memory_equal (mine, wire, mine_size);

    //  Bytes -> check -> structs: exactly the documented structs.
    rl_header_t header;
    rl_status_t status = v->is_request ? codec_check_request (wire, mine_size, &header)
                                       : codec_check_reply (wire, mine_size, &header);
    if (status != v->check) {
        fail_msg ("%s: check gave %s, expected %s", v->name, rl_status_name (status),
                  rl_status_name (v->check));
    }
    assert_memory_equal (&header, &v->header, sizeof header);
    if (v->kind == KIND_BLOB) {
        assert_memory_equal (wire + RL_HEADER_SIZE, v->records, v->blob_size);
        return;
    }
    size_t record_size = s_kind_size (v->kind);
    for (size_t i = 0; i < header.record_count; i++) {
        uint8_t rec[RL_STATUS_SIZE];
        uint8_t expected[RL_STATUS_SIZE];
        s_decode_record (v->kind, wire + RL_HEADER_SIZE + i * record_size, rec);
        memcpy (expected, (const uint8_t *) v->records + i * record_size, record_size);
        assert_memory_equal (rec, expected, record_size);
    }
}

static void
test_vectors (void **state)
{
    (void) state;
    char *doc = s_read_or_fail (s_doc_path);
    for (size_t i = 0; i < VECTORS; i++) {
        s_check_vector (doc, &s_vectors[i]);
    }
    //  Every block in the doc is one of ours, and appears once.
    size_t blocks = 0;
    for (const char *p = doc; (p = strstr (p, FENCE_OPEN)) != NULL; blocks++) {
        p += strlen (FENCE_OPEN);
        size_t name_size = strcspn (p, "\n");
        bool known = false;
        for (size_t i = 0; i < VECTORS; i++) {
            if (strlen (s_vectors[i].name) == name_size
                && strncmp (p, s_vectors[i].name, name_size) == 0) {
                known = true;
            }
        }
        if (!known) {
            fail_msg ("docs/protocol.md has an unknown vector %.*s", (int) name_size, p);
        }
    }
    assert_int_equal (blocks, VECTORS);
    //  Each operation served today has a request and a reply vector.
    for (uint32_t op = 1; op <= RL_OP_GET_RING; op++) {
        char name[64];
        uint8_t bytes[VECTOR_SIZE_MAX];
        snprintf (name, sizeof name, "%s.request", rl_op_name (op));
        assert_true (s_doc_vector (doc, name, bytes, sizeof bytes) >= RL_HEADER_SIZE);
        snprintf (name, sizeof name, "%s.reply", rl_op_name (op));
        assert_true (s_doc_vector (doc, name, bytes, sizeof bytes) >= RL_HEADER_SIZE);
    }
    free (doc);
}

//  Round trips ---------------------------------------------------------------

static void
test_primitives (void **state)
{
    (void) state;
    uint8_t b[8];
    codec_put_u16 (b, 0x0102);
    assert_memory_equal (b, "\x02\x01", 2);
    assert_int_equal (codec_get_u16 (b), 0x0102);
    codec_put_u32 (b, 0x01020304u);
    assert_memory_equal (b, "\x04\x03\x02\x01", 4);
    assert_int_equal (codec_get_u32 (b), 0x01020304u);
    codec_put_u64 (b, 0x0102030405060708ull);
    assert_memory_equal (b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    assert_true (codec_get_u64 (b) == 0x0102030405060708ull);
    codec_put_u64_be (b, 0x0102030405060708ull);
    assert_memory_equal (b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_true (codec_get_u64_be (b) == 0x0102030405060708ull);

    //  Big-endian keys sort like the numbers they hold.
    s_rng_state = s_seed;
    for (int i = 0; i < ROUND_TRIPS; i++) {
        uint64_t x = s_rand () >> (s_rand () % 64);
        uint64_t y = s_rand () >> (s_rand () % 64);
        uint8_t bx[8], by[8];
        codec_put_u64_be (bx, x);
        codec_put_u64_be (by, y);
        int order = memcmp (bx, by, 8);
        assert_true ((x < y && order < 0) || (x == y && order == 0) || (x > y && order > 0));
        codec_put_u64 (bx, x);
        assert_true (codec_get_u64 (bx) == x);
        codec_put_u32 (bx, (uint32_t) y);
        assert_true (codec_get_u32 (bx) == (uint32_t) y);
        codec_put_u16 (bx, (uint16_t) x);
        assert_true (codec_get_u16 (bx) == (uint16_t) x);
    }
}

//  Random record of `kind` (any bit pattern is a valid struct: all fields
//  are integers), encoded, decoded, compared; then a few fields are read
//  back from the wire bytes at their documented offsets.
static void
s_round_trip (kind_t kind)
{
    uint8_t rec[RL_STATUS_SIZE];
    uint8_t wire[RL_STATUS_SIZE + 1];
    uint8_t back[RL_STATUS_SIZE];
    size_t size = s_kind_size (kind);
    s_rand_fill (rec, size);
    if (kind == KIND_STATUS) {
        rec[RL_SHARD_NAME_SIZE_MAX - 1] = '\0';
    }
    wire[size] = 0xa5; //  canary: encode writes exactly `size` bytes
    s_encode_record (kind, rec, 0, wire);
    assert_int_equal (wire[size], 0xa5);
    s_decode_record (kind, wire, back);
    assert_memory_equal (rec, back, size);

    if (kind == KIND_ACCOUNT) {
        const rl_account_t *a = (const rl_account_t *) rec;
        assert_true (codec_get_u64 (wire) == a->id.lo && codec_get_u64 (wire + 8) == a->id.hi);
        assert_true (codec_get_u64 (wire + 40) == a->credits_posted);
        assert_true (codec_get_u32 (wire + 92) == a->ledger);
        assert_true (codec_get_u16 (wire + 98) == a->flags);
        assert_true (codec_get_u64 (wire + 104) == a->timestamp);
    } else if (kind == KIND_TRANSFER) {
        const rl_transfer_t *t = (const rl_transfer_t *) rec;
        assert_true (codec_get_u64 (wire + 24) == t->debit_account_id.hi);
        assert_true (codec_get_u64 (wire + 48) == t->amount);
        assert_true (codec_get_u32 (wire + 104) == t->ledger);
        assert_true (codec_get_u16 (wire + 108) == t->code);
        assert_true (codec_get_u64 (wire + 112) == t->timestamp);
    } else if (kind == KIND_RESULT) {
        const rl_result_rec_t *r = (const rl_result_rec_t *) rec;
        assert_true (codec_get_u32 (wire + 4) == r->result);
        assert_true (codec_get_u64 (wire + 8) == r->timestamp);
    } else if (kind == KIND_FILTER) {
        const rl_filter_t *f = (const rl_filter_t *) rec;
        assert_true (codec_get_u32 (wire + 32) == f->limit);
        assert_true (codec_get_u32 (wire + 36) == f->flags);
    } else if (kind == KIND_STATUS) {
        const rl_status_rec_t *s = (const rl_status_rec_t *) rec;
        assert_true (codec_get_u64 (wire + 32) == s->epoch);
        assert_true (codec_get_u32 (wire + 72) == s->durability);
        assert_true (codec_get_u64 (wire + 136) == s->uptime_ms);
        assert_true (codec_get_u32 (wire + 248) == s->turn_p99_us);
        assert_true (codec_get_u32 (wire + 252) == s->in_doubt_oldest_ms);
    }
}

static void
test_round_trips (void **state)
{
    (void) state;
    s_rng_state = s_seed;
    const kind_t kinds[] = {KIND_ID,     KIND_ACCOUNT, KIND_TRANSFER,
                            KIND_RESULT, KIND_FILTER,  KIND_STATUS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int i = 0; i < ROUND_TRIPS; i++) {
            s_round_trip (kinds[k]);
        }
    }
    //  Headers, with the offsets of the doc.
    for (int i = 0; i < ROUND_TRIPS; i++) {
        rl_header_t h, back;
        uint8_t wire[RL_HEADER_SIZE];
        s_rand_fill (&h, sizeof h);
        codec_encode_header (&h, wire);
        codec_decode_header (wire, &back);
        assert_memory_equal (&h, &back, sizeof h);
        assert_true (codec_get_u32 (wire) == h.magic);
        assert_true (codec_get_u16 (wire + 4) == h.version);
        assert_true (codec_get_u16 (wire + 6) == h.operation);
        assert_true (codec_get_u64 (wire + 8) == h.request_id);
        assert_true (codec_get_u32 (wire + 16) == h.record_count);
        assert_true (codec_get_u32 (wire + 20) == h.status);
        assert_true (codec_get_u64 (wire + 24) == h.epoch);
    }
}

//  The two-phase and admin records: random contents round trip (strings
//  NUL-terminated, as decode makes them), and fields sit at the offsets of
//  docs/protocol.md.
static void
test_two_phase_records (void **state)
{
    (void) state;
    s_rng_state = s_seed ^ 0x7470;
    for (int i = 0; i < ROUND_TRIPS; i++) {
        rl_in_doubt_rec_t rec, back;
        uint8_t wire[RL_IN_DOUBT_SIZE + 1];
        s_rand_fill (&rec, sizeof rec);
        rec.prepare.tp.coordinator[RL_SHARD_NAME_SIZE_MAX - 1] = '\0';
        rec.peer[RL_SHARD_NAME_SIZE_MAX - 1] = '\0';
        wire[RL_IN_DOUBT_SIZE] = 0xa5;
        codec_encode_in_doubt (&rec, wire);
        assert_int_equal (wire[RL_IN_DOUBT_SIZE], 0xa5);
        codec_decode_in_doubt (wire, &back);
        assert_memory_equal (&rec, &back, sizeof rec);
        const rl_tp_rec_t *tp = &rec.prepare.tp;
        const uint8_t *tp_wire = wire + RL_TRANSFER_SIZE; //  prepare: transfer, then tp
        assert_true (codec_get_u64 (wire + 48) == rec.prepare.transfer.amount);
        assert_true (codec_get_u64 (tp_wire + 16) == tp->attempt.counter);
        assert_true (codec_get_u64 (tp_wire + 32) == tp->attempt.seq);
        assert_true (codec_get_u32 (tp_wire + 40) == tp->state);
        assert_memory_equal (tp_wire + 48, tp->coordinator, RL_SHARD_NAME_SIZE_MAX);
        assert_true (codec_get_u64 (tp_wire + 96 + 8) == tp->debit_account_id.hi);
        assert_true (codec_get_u64 (wire + 240 + 8) == rec.prepare.reserved[1]);
        assert_memory_equal (wire + RL_PREPARE_SIZE, rec.peer, RL_SHARD_NAME_SIZE_MAX);

        rl_tp_rec_t tp_back;
        codec_encode_tp (tp, wire);
        codec_decode_tp (wire, &tp_back);
        assert_memory_equal (tp, &tp_back, sizeof tp_back);

        rl_audit_rec_t audit, audit_back;
        s_rand_fill (&audit, sizeof audit);
        audit.message[sizeof audit.message - 1] = '\0';
        codec_encode_audit (&audit, wire);
        codec_decode_audit (wire, &audit_back);
        assert_memory_equal (&audit, &audit_back, sizeof audit);
        assert_true (codec_get_u64 (wire + 24) == audit.prepared);
        assert_memory_equal (wire + 32, audit.message, sizeof audit.message);
    }
    //  Strings off the network come out NUL-terminated.
    uint8_t wire[RL_IN_DOUBT_SIZE];
    memset (wire, 'x', sizeof wire);
    rl_in_doubt_rec_t rec;
    codec_decode_in_doubt (wire, &rec);
    assert_int_equal (strlen (rec.peer), RL_SHARD_NAME_SIZE_MAX - 1);
    assert_int_equal (strlen (rec.prepare.tp.coordinator), RL_SHARD_NAME_SIZE_MAX - 1);
    rl_audit_rec_t audit;
    codec_decode_audit (wire, &audit);
    assert_int_equal (strlen (audit.message), sizeof audit.message - 1);
}

//  Frame helpers: a request built with them passes the check and reads back;
//  a reply header echoes the request; the request id can be patched.
static void
test_frames (void **state)
{
    (void) state;
    rl_transfer_t transfers[2] = {s_transfers_new[0], s_transfers_new[1]};
    uint8_t body[2 * RL_TRANSFER_SIZE];
    codec_encode_transfer (&transfers[0], body);
    codec_encode_transfer (&transfers[1], body + RL_TRANSFER_SIZE);
    rl_header_t h = codec_request_header (RL_OP_CREATE_TRANSFERS, 77, 2);
    size_t size = codec_frame_size (sizeof body);
    assert_int_equal (size, RL_HEADER_SIZE + sizeof body);
    uint8_t *frame = malloc (size);
    assert_non_null (frame);
    uint8_t *frame_body = codec_encode_frame (&h, body, sizeof body, frame);
    assert_ptr_equal (frame_body, frame + RL_HEADER_SIZE);
    rl_header_t back;
    const uint8_t *parsed = NULL;
    size_t parsed_size = 0;
    assert_int_equal (codec_parse_request (frame, size, &back, &parsed, &parsed_size),
                      RL_STATUS_OK);
    assert_memory_equal (&back, &h, sizeof h);
    assert_int_equal (parsed_size, sizeof body);
    assert_memory_equal (parsed, body, sizeof body);
    assert_true (codec_frame_request_id (frame, size) == 77);
    codec_frame_set_request_id (frame, size, 0x0102030405060708ull);
    assert_true (codec_frame_request_id (frame, size) == 0x0102030405060708ull);
    assert_true (codec_frame_request_id (frame, RL_HEADER_SIZE - 1) == 0);
    assert_false (codec_frame_has_header (RL_HEADER_SIZE - 1));
    assert_true (codec_frame_has_header (RL_HEADER_SIZE));

    //  Placement: the debit account of a transfer, the id of an account.
    assert_ptr_equal (codec_routing_id (RL_OP_CREATE_TRANSFERS, body), body + 16);
    assert_true (rl_id_eq (codec_decode_id (codec_routing_id (RL_OP_CREATE_TRANSFERS, body)),
                           transfers[0].debit_account_id));
    assert_true (rl_id_eq (codec_record_id (RL_OP_CREATE_TRANSFERS, body), transfers[0].id));
    assert_ptr_equal (codec_routing_id (RL_OP_CREATE_ACCOUNTS, body), body);
    assert_ptr_equal (codec_routing_id (RL_OP_GET_ACCOUNT_TRANSFERS, body), body);
    assert_ptr_equal (codec_routing_id (RL_OP_LOOKUP_ACCOUNTS, body), body);
    assert_null (codec_routing_id (RL_OP_STATUS, body));
    rl_transfer_t found = s_transfers_found[0];
    uint8_t record[RL_TRANSFER_SIZE];
    codec_encode_transfer (&found, record);
    assert_true (codec_transfer_timestamp (record) == found.timestamp);

    //  A reply: ok with records, and an error (a bare header whatever count).
    rl_header_t ok = codec_reply_header (&h, RL_STATUS_OK, 2, 9);
    assert_int_equal (ok.operation, RL_OP_CREATE_TRANSFERS);
    assert_true (ok.request_id == 77 && ok.epoch == 9 && ok.record_count == 2);
    rl_header_t busy = codec_reply_header (&h, RL_STATUS_BUSY, 2, 9);
    assert_int_equal (busy.record_count, 0);
    codec_encode_frame (&busy, NULL, 0, frame);
    assert_int_equal (codec_parse_reply (frame, RL_HEADER_SIZE, &back, &parsed, &parsed_size),
                      RL_STATUS_OK);
    assert_int_equal (back.status, RL_STATUS_BUSY);
    assert_int_equal (parsed_size, 0);
    //  A frame that fails the check has no body.
    assert_int_equal (codec_parse_reply (frame, RL_HEADER_SIZE - 1, &back, &parsed, &parsed_size),
                      RL_STATUS_MALFORMED);
    assert_null (parsed);
    assert_int_equal (parsed_size, 0);
    free (frame);
}

static void
test_status_name_is_terminated (void **state)
{
    (void) state;
    uint8_t wire[RL_STATUS_SIZE];
    memset (wire, 'x', sizeof wire); //  no NUL anywhere: bytes off the network
    rl_status_rec_t status;
    codec_decode_status (wire, &status);
    assert_int_equal (strlen (status.name), RL_SHARD_NAME_SIZE_MAX - 1);
}

static void
test_record_sizes (void **state)
{
    (void) state;
    static const struct {
        uint32_t op;
        size_t request;
        size_t reply;
    } sizes[] = {
        {RL_OP_CREATE_ACCOUNTS, RL_ACCOUNT_SIZE, RL_RESULT_SIZE},
        {RL_OP_CREATE_TRANSFERS, RL_TRANSFER_SIZE, RL_RESULT_SIZE},
        {RL_OP_LOOKUP_ACCOUNTS, RL_ID_SIZE, RL_ACCOUNT_SIZE},
        {RL_OP_LOOKUP_TRANSFERS, RL_ID_SIZE, RL_TRANSFER_SIZE},
        {RL_OP_GET_ACCOUNT_TRANSFERS, RL_FILTER_SIZE, RL_TRANSFER_SIZE},
        {RL_OP_STATUS, 0, RL_STATUS_SIZE},
        {RL_OP_LOAD_RING, RL_BLOB, 0},
        {RL_OP_GET_RING, 0, RL_BLOB},
        {0, 0, 0},
        {9, 0, 0},
        {RL_OP_PREPARE, RL_PREPARE_SIZE, RL_TP_SIZE},
        {RL_OP_DECIDE, RL_TP_SIZE, RL_TP_SIZE},
        {RL_OP_OUTCOME_QUERY, RL_TP_SIZE, RL_TP_SIZE},
        {RL_OP_ACK, 0, 0},
        {RL_OP_IN_DOUBT, 0, RL_IN_DOUBT_SIZE},
        {RL_OP_AUDIT, 0, RL_AUDIT_SIZE},
        {RL_OP_RESOLVE, RL_TP_SIZE, RL_TP_SIZE},
        {35, 0, 0},
        {RL_OP_MIGRATE_BEGIN, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_EXPORT, RL_MIGRATE_SIZE, RL_BLOB},
        {RL_OP_MIGRATE_IMPORT, RL_BLOB, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_FREEZE, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_DRAIN, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_UNFREEZE, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_COMMIT, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_ABORT, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_MIGRATE_CLEANUP, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {RL_OP_ARC_LOAD, 0, RL_ARC_LOAD_SIZE},
        {RL_OP_HOT_ACCOUNTS, 0, RL_HOT_ACCOUNTS_SIZE},
        {59, 0, 0},
        {RL_OP_BACKUP_HOLD, RL_BACKUP_SIZE, RL_BACKUP_SIZE},
        {RL_OP_BACKUP_CUT, RL_BACKUP_SIZE, RL_BACKUP_SIZE},
        {RL_OP_BACKUP_RELEASE, RL_BACKUP_SIZE, RL_BACKUP_SIZE},
        {RL_OP_BACKUP_STATUS, RL_BACKUP_SIZE, RL_BACKUP_SIZE},
        {64, 0, 0},
        {RL_OP_EVENTS_READ, RL_EVENTS_REQ_SIZE, RL_EVENT_SIZE},
        {RL_OP_MIGRATE_LEASE, RL_MIGRATE_SIZE, RL_MIGRATE_SIZE},
        {67, 0, 0},
        {RL_OP_PROMOTE, 0, 0},
        {RL_OP_DEGRADE, 0, 0},
        {RL_OP_FENCE, 0, 0},
        {RL_OP_REPL_STATUS, 0, RL_REPL_SIZE},
        {84, 0, 0},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_true (codec_request_record_size (sizes[i].op) == sizes[i].request);
        assert_true (codec_reply_record_size (sizes[i].op) == sizes[i].reply);
    }
    for (uint32_t op = 0; op < 300; op++) {
        bool shard_to_shard = op == RL_OP_PREPARE || op == RL_OP_DECIDE || op == RL_OP_OUTCOME_QUERY
                              || op == RL_OP_IN_DOUBT || op == RL_OP_AUDIT || op == RL_OP_RESOLVE
                              || (op >= RL_OP_MIGRATE_BEGIN && op <= RL_OP_HOT_ACCOUNTS)
                              || op == RL_OP_EVENTS_READ || op == RL_OP_MIGRATE_LEASE
                              || (op >= RL_OP_BACKUP_HOLD && op <= RL_OP_BACKUP_STATUS)
                              || (op >= RL_OP_PROMOTE && op <= RL_OP_REPL_STATUS);
        assert_int_equal (codec_op_is_known (op), (op >= 1 && op <= 8) || shard_to_shard);
    }
    assert_false (codec_op_is_known (UINT32_MAX));
}

//  Rejection paths -----------------------------------------------------------

//  A frame of `size` bytes (at least a header) with a valid header for op
//  and count; the body is left as zeros. Free with free().
static uint8_t *
s_frame (uint32_t op, uint32_t count, size_t size)
{
    assert_true (size >= RL_HEADER_SIZE);
    uint8_t *frame = calloc (1, size);
    assert_non_null (frame);
    rl_header_t header = {.magic = RL_MAGIC,
                          .version = RL_VERSION,
                          .operation = (uint16_t) op,
                          .request_id = 0x1122334455667788ull,
                          .record_count = count};
    codec_encode_header (&header, frame);
    return frame;
}

static rl_status_t
s_request (uint32_t op, uint32_t count, size_t body_size)
{
    uint8_t *frame = s_frame (op, count, RL_HEADER_SIZE + body_size);
    rl_header_t header;
    rl_status_t status = codec_check_request (frame, RL_HEADER_SIZE + body_size, &header);
    assert_true (header.request_id == 0x1122334455667788ull);
    free (frame);
    return status;
}

//  A reply frame: header status `server_status`, epoch 7.
static rl_status_t
s_reply (uint32_t op, uint32_t count, size_t body_size, uint32_t server_status)
{
    uint8_t *frame = s_frame (op, count, RL_HEADER_SIZE + body_size);
    codec_put_u32 (frame + 20, server_status);
    codec_put_u64 (frame + 24, 7);
    rl_header_t header;
    rl_status_t status = codec_check_reply (frame, RL_HEADER_SIZE + body_size, &header);
    assert_true (header.request_id == 0x1122334455667788ull);
    assert_int_equal (header.status, server_status);
    free (frame);
    return status;
}

//  Patches bytes of a valid create_transfers request, then checks it.
static rl_status_t
s_patched_request (size_t offset, const void *bytes, size_t size)
{
    uint8_t *frame = s_frame (RL_OP_CREATE_TRANSFERS, 1, RL_HEADER_SIZE + RL_TRANSFER_SIZE);
    memcpy (frame + offset, bytes, size);
    rl_header_t header;
    rl_status_t status = codec_check_request (frame, RL_HEADER_SIZE + RL_TRANSFER_SIZE, &header);
    free (frame);
    return status;
}

static void
test_request_short (void **state)
{
    (void) state;
    rl_header_t header;
    memset (&header, 0xab, sizeof header);
    assert_int_equal (codec_check_request (NULL, 0, &header), RL_STATUS_MALFORMED);
    rl_header_t zero = {0};
    assert_memory_equal (&header, &zero, sizeof header); //  zeroed, not left as garbage

    uint8_t *frame = s_frame (RL_OP_STATUS, 0, RL_HEADER_SIZE);
    for (size_t size = 1; size < RL_HEADER_SIZE; size++) {
        uint8_t *shorter = malloc (size); //  exact size: ASan sees any overread
        memcpy (shorter, frame, size);
        memset (&header, 0xab, sizeof header);
        assert_int_equal (codec_check_request (shorter, size, &header), RL_STATUS_MALFORMED);
        assert_memory_equal (&header, &zero, sizeof header);
        assert_int_equal (codec_check_reply (shorter, size, &header), RL_STATUS_MALFORMED);
        free (shorter);
    }
    free (frame);
}

static void
test_request_header_fields (void **state)
{
    (void) state;
    uint8_t u16[2], u32[4], u64[8];
    codec_put_u32 (u32, RL_MAGIC ^ 1);
    assert_int_equal (s_patched_request (0, u32, 4), RL_STATUS_BAD_MAGIC);
    codec_put_u16 (u16, 0);
    assert_int_equal (s_patched_request (4, u16, 2), RL_STATUS_BAD_VERSION);
    codec_put_u16 (u16, RL_VERSION + 1);
    assert_int_equal (s_patched_request (4, u16, 2), RL_STATUS_BAD_VERSION);
    const uint16_t unknown_ops[] = {0, 9, 15, RL_OP_ACK, 20, 31, 35, 47, 0xffff};
    for (size_t i = 0; i < sizeof unknown_ops / sizeof unknown_ops[0]; i++) {
        codec_put_u16 (u16, unknown_ops[i]);
        assert_int_equal (s_patched_request (6, u16, 2), RL_STATUS_UNKNOWN_OPERATION);
    }
    codec_put_u32 (u32, RL_STATUS_BUSY);
    assert_int_equal (s_patched_request (20, u32, 4), RL_STATUS_MALFORMED);
    codec_put_u64 (u64, 1);
    assert_int_equal (s_patched_request (24, u64, 8), RL_STATUS_MALFORMED);
    //  request_id is the client's: anything goes.
    codec_put_u64 (u64, UINT64_MAX);
    assert_int_equal (s_patched_request (8, u64, 8), RL_STATUS_OK);
    assert_int_equal (s_patched_request (0, "rldg", 4), RL_STATUS_OK);

    //  The order of the checks: the first failure wins.
    uint8_t *frame = s_frame (0xffff, RL_BATCH_RECORDS_MAX + 1, RL_HEADER_SIZE + 3);
    rl_header_t header;
    codec_put_u32 (frame + 20, 1);
    codec_put_u32 (frame + 4, 0x7777);
    assert_int_equal (codec_check_request (frame, RL_HEADER_SIZE + 3, &header),
                      RL_STATUS_BAD_VERSION);
    codec_put_u32 (frame, 0);
    assert_int_equal (codec_check_request (frame, RL_HEADER_SIZE + 3, &header),
                      RL_STATUS_BAD_MAGIC);
    assert_true (header.request_id == 0x1122334455667788ull); //  echoable
    codec_put_u32 (frame, RL_MAGIC);
    codec_put_u16 (frame + 4, RL_VERSION);
    assert_int_equal (codec_check_request (frame, RL_HEADER_SIZE + 3, &header),
                      RL_STATUS_UNKNOWN_OPERATION);
    codec_put_u16 (frame + 6, RL_OP_LOOKUP_ACCOUNTS);
    assert_int_equal (codec_check_request (frame, RL_HEADER_SIZE + 3, &header),
                      RL_STATUS_MALFORMED); //  status before count
    codec_put_u32 (frame + 20, 0);
    assert_int_equal (codec_check_request (frame, RL_HEADER_SIZE + 3, &header),
                      RL_STATUS_TOO_MANY_RECORDS); //  count before size
    codec_put_u32 (frame + 16, 1);
    assert_int_equal (codec_check_request (frame, RL_HEADER_SIZE + 3, &header),
                      RL_STATUS_MALFORMED);
    free (frame);
}

static void
test_request_sizes (void **state)
{
    (void) state;
    //  Creates and lookups: 0..max records, body exactly count * size.
    const uint32_t batch_ops[] = {RL_OP_CREATE_ACCOUNTS, RL_OP_CREATE_TRANSFERS,
                                  RL_OP_LOOKUP_ACCOUNTS, RL_OP_LOOKUP_TRANSFERS};
    for (size_t i = 0; i < 4; i++) {
        uint32_t op = batch_ops[i];
        size_t rs = codec_request_record_size (op);
        assert_int_equal (s_request (op, 0, 0), RL_STATUS_OK); //  empty batch
        assert_int_equal (s_request (op, 1, rs), RL_STATUS_OK);
        assert_int_equal (s_request (op, 3, 3 * rs), RL_STATUS_OK);
        assert_int_equal (s_request (op, 3, 3 * rs + 1), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (op, 3, 3 * rs - 1), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (op, 0, 1), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (op, 1, 0), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (op, RL_BATCH_RECORDS_MAX, RL_BATCH_RECORDS_MAX * rs),
                          RL_STATUS_OK);
        assert_int_equal (s_request (op, RL_BATCH_RECORDS_MAX + 1, 0), RL_STATUS_TOO_MANY_RECORDS);
        assert_int_equal (s_request (op, RL_BATCH_RECORDS_MAX + 1, (RL_BATCH_RECORDS_MAX + 1) * rs),
                          RL_STATUS_TOO_MANY_RECORDS);
        assert_int_equal (s_request (op, UINT32_MAX, 0), RL_STATUS_TOO_MANY_RECORDS);
    }
    //  A frame past the message limit, whatever its count says.
    assert_int_equal (
        s_request (RL_OP_CREATE_TRANSFERS, 1, RL_MESSAGE_SIZE_MAX - RL_HEADER_SIZE + 1),
        RL_STATUS_TOO_MANY_RECORDS);
    assert_int_equal (s_request (RL_OP_STATUS, 0, RL_MESSAGE_SIZE_MAX), RL_STATUS_TOO_MANY_RECORDS);

    //  get_account_transfers: exactly one filter.
    assert_int_equal (s_request (RL_OP_GET_ACCOUNT_TRANSFERS, 1, RL_FILTER_SIZE), RL_STATUS_OK);
    assert_int_equal (s_request (RL_OP_GET_ACCOUNT_TRANSFERS, 2, 2 * RL_FILTER_SIZE),
                      RL_STATUS_MALFORMED);
    assert_int_equal (s_request (RL_OP_GET_ACCOUNT_TRANSFERS, 0, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_request (RL_OP_GET_ACCOUNT_TRANSFERS, 1, RL_FILTER_SIZE + 1),
                      RL_STATUS_MALFORMED);
    assert_int_equal (s_request (RL_OP_GET_ACCOUNT_TRANSFERS, 1, RL_FILTER_SIZE - 1),
                      RL_STATUS_MALFORMED);

    //  status, get_ring, in_doubt and audit: a bare header (count 0; a
    //  count of records without records is malformed).
    const uint32_t bare_ops[] = {RL_OP_STATUS,  RL_OP_GET_RING, RL_OP_IN_DOUBT, RL_OP_AUDIT,
                                 RL_OP_PROMOTE, RL_OP_DEGRADE,  RL_OP_FENCE,    RL_OP_REPL_STATUS};
    for (size_t i = 0; i < sizeof bare_ops / sizeof bare_ops[0]; i++) {
        assert_int_equal (s_request (bare_ops[i], 0, 0), RL_STATUS_OK);
        assert_int_equal (s_request (bare_ops[i], 1, 0), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (bare_ops[i], 0, 1), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (bare_ops[i], 1, 16), RL_STATUS_MALFORMED);
        assert_int_equal (s_request (bare_ops[i], 319, 0), RL_STATUS_MALFORMED);
    }

    //  load_ring: count 1, 1..blob max bytes.
    assert_int_equal (s_request (RL_OP_LOAD_RING, 1, 1), RL_STATUS_OK);
    assert_int_equal (s_request (RL_OP_LOAD_RING, 1, RL_RING_BLOB_SIZE_MAX), RL_STATUS_OK);
    assert_int_equal (s_request (RL_OP_LOAD_RING, 1, RL_RING_BLOB_SIZE_MAX + 1),
                      RL_STATUS_TOO_MANY_RECORDS);
    assert_int_equal (s_request (RL_OP_LOAD_RING, 1, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_request (RL_OP_LOAD_RING, 0, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_request (RL_OP_LOAD_RING, 0, 10), RL_STATUS_MALFORMED);
    assert_int_equal (s_request (RL_OP_LOAD_RING, 2, 10), RL_STATUS_MALFORMED);
}

static void
test_reply_checks (void **state)
{
    (void) state;
    //  Creates: results; lookups: records; one per request record.
    assert_int_equal (s_reply (RL_OP_CREATE_TRANSFERS, 2, 2 * RL_RESULT_SIZE, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_CREATE_ACCOUNTS, 0, 0, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_CREATE_TRANSFERS, 2, 2 * RL_RESULT_SIZE + 1, 0),
                      RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_CREATE_TRANSFERS, 2, 2 * RL_RESULT_SIZE - 1, 0),
                      RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_LOOKUP_ACCOUNTS, 2, 2 * RL_ACCOUNT_SIZE, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_LOOKUP_TRANSFERS, 1, RL_ID_SIZE, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_LOOKUP_TRANSFERS, RL_BATCH_RECORDS_MAX + 1, 0, 0),
                      RL_STATUS_TOO_MANY_RECORDS);
    //  History: 0..RL_HISTORY_LIMIT_MAX transfers.
    assert_int_equal (s_reply (RL_OP_GET_ACCOUNT_TRANSFERS, 0, 0, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_GET_ACCOUNT_TRANSFERS, RL_HISTORY_LIMIT_MAX,
                               (size_t) RL_HISTORY_LIMIT_MAX * RL_TRANSFER_SIZE, 0),
                      RL_STATUS_OK);
    //  Status: exactly one record.
    assert_int_equal (s_reply (RL_OP_STATUS, 1, RL_STATUS_SIZE, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_STATUS, 0, 0, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_STATUS, 2, 2 * RL_STATUS_SIZE, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_STATUS, 1, RL_STATUS_SIZE - 1, 0), RL_STATUS_MALFORMED);
    //  load_ring: bare; get_ring: one blob.
    assert_int_equal (s_reply (RL_OP_LOAD_RING, 0, 0, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_LOAD_RING, 1, 8, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_GET_RING, 1, 8, 0), RL_STATUS_OK);
    assert_int_equal (s_reply (RL_OP_GET_RING, 1, 0, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_GET_RING, 0, 0, 0), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_GET_RING, 1, RL_RING_BLOB_SIZE_MAX + 1, 0),
                      RL_STATUS_TOO_MANY_RECORDS);
    //  An ok reply to an operation nobody serves.
    assert_int_equal (s_reply (RL_OP_ACK, 0, 0, 0), RL_STATUS_UNKNOWN_OPERATION);

    //  Error replies: bare headers with a defined status, any operation.
    for (uint32_t status = 1; status <= RL_STATUS_LAST; status++) {
        if (!rl_status_defined (status)) {
            //  A gap of the table: not a status a server sends.
            assert_int_equal (s_reply (RL_OP_STATUS, 0, 0, status), RL_STATUS_MALFORMED);
            continue;
        }
        assert_int_equal (s_reply (RL_OP_CREATE_TRANSFERS, 0, 0, status), RL_STATUS_OK);
        assert_int_equal (s_reply (0, 0, 0, status), RL_STATUS_OK);
        assert_int_equal (s_reply (RL_OP_PREPARE, 0, 0, status), RL_STATUS_OK);
        assert_int_equal (s_reply (RL_OP_CREATE_TRANSFERS, 1, RL_RESULT_SIZE, status),
                          RL_STATUS_MALFORMED);
        assert_int_equal (s_reply (RL_OP_CREATE_TRANSFERS, 0, 1, status), RL_STATUS_MALFORMED);
        assert_int_equal (s_reply (RL_OP_STATUS, 1, RL_STATUS_SIZE, status), RL_STATUS_MALFORMED);
    }
    assert_int_equal (s_reply (RL_OP_STATUS, 0, 0, RL_STATUS_LAST + 1), RL_STATUS_MALFORMED);
    assert_int_equal (s_reply (RL_OP_STATUS, 0, 0, UINT32_MAX), RL_STATUS_MALFORMED);

    //  Magic and version are checked in replies too.
    uint8_t *frame = s_frame (RL_OP_STATUS, 0, RL_HEADER_SIZE);
    rl_header_t header;
    codec_put_u16 (frame + 4, 9);
    assert_int_equal (codec_check_reply (frame, RL_HEADER_SIZE, &header), RL_STATUS_BAD_VERSION);
    codec_put_u32 (frame, 0);
    assert_int_equal (codec_check_reply (frame, RL_HEADER_SIZE, &header), RL_STATUS_BAD_MAGIC);
    free (frame);
}

//  Two-phase records (codec.c, invariant 5) -------------------------------------

static rl_prepare_rec_t
s_valid_prepare (void)
{
    rl_prepare_rec_t rec = {0};
    rec.transfer.id = (rl_id_t){.lo = 7, .hi = 1};
    rec.transfer.debit_account_id = (rl_id_t){.lo = 1, .hi = 1};
    rec.transfer.credit_account_id = (rl_id_t){.lo = 2, .hi = 1};
    rec.transfer.amount = 500;
    rec.transfer.ledger = 840;
    rec.transfer.code = 1;
    rec.tp.id = rec.transfer.id;
    rec.tp.debit_account_id = rec.transfer.debit_account_id;
    snprintf (rec.tp.coordinator, sizeof rec.tp.coordinator, "s1");
    return rec;
}

//  The status of a request (or reply) of op holding `count` copies of the
//  record `record` of record_size bytes, the one at `bad_at` replaced by
//  `bad` (when bad is not NULL).
static rl_status_t
s_two_phase (uint32_t op, bool request, const uint8_t *record, const uint8_t *bad, size_t bad_at,
             size_t count, size_t record_size)
{
    uint8_t *frame = s_frame (op, (uint32_t) count, RL_HEADER_SIZE + count * record_size);
    for (size_t i = 0; i < count; i++) {
        memcpy (frame + RL_HEADER_SIZE + i * record_size, bad && i == bad_at ? bad : record,
                record_size);
    }
    rl_header_t header;
    rl_status_t status = request ? codec_check_request (frame, RL_HEADER_SIZE + count * record_size,
                                                        &header)
                                 : codec_check_reply (frame, RL_HEADER_SIZE + count * record_size,
                                                      &header);
    free (frame);
    return status;
}

static void
test_two_phase_validation (void **state)
{
    (void) state;
    const rl_id_t zero = {0, 0};
    const rl_id_t max = {UINT64_MAX, UINT64_MAX};
    uint8_t good[RL_PREPARE_SIZE];
    uint8_t bad[RL_PREPARE_SIZE];
    rl_prepare_rec_t valid = s_valid_prepare ();
    codec_encode_prepare (&valid, good);
    assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, NULL, 0, 3, RL_PREPARE_SIZE),
                      RL_STATUS_OK);
    //  Each defect, in the middle record of three: the whole frame is malformed.
    for (int defect = 0; defect < 14; defect++) {
        rl_prepare_rec_t rec = valid;
        switch (defect) {
            case 0:
                rec.tp.id = zero;
                break;
            case 1:
                rec.tp.id = max;
                break;
            case 2:
                rec.transfer.id = zero;
                break;
            case 3:
                rec.transfer.id = max;
                break;
            case 4:
                rec.transfer.debit_account_id = zero;
                break;
            case 5:
                rec.transfer.debit_account_id = max;
                break;
            case 6:
                rec.transfer.credit_account_id = zero;
                break;
            case 7:
                rec.transfer.credit_account_id = max;
                break;
            case 8:
                rec.transfer.amount = 0;
                break;
            case 9:
                rec.transfer.flags = 0x0040;
                break;
            case 10:
                rec.transfer.pending_id.lo = 1;
                break;
            case 11:
                rec.transfer.timeout = 1;
                break;
            case 12:
                rec.transfer.reserved = 1;
                break;
            default:
                rec.reserved[defect - 13] = 1;
                break;
        }
        codec_encode_prepare (&rec, bad);
        if (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE)
            != RL_STATUS_MALFORMED) {
            fail_msg ("prepare defect %d accepted", defect);
        }
    }
    rl_prepare_rec_t second_reserved = valid;
    second_reserved.reserved[1] = 9;
    codec_encode_prepare (&second_reserved, bad);
    assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, bad, 2, 3, RL_PREPARE_SIZE),
                      RL_STATUS_MALFORMED);
    //  Known flags pass the codec (the shard answers for what it serves),
    //  of one pending kind at most.
    rl_prepare_rec_t flagged = valid;
    flagged.transfer.flags = RL_TRANSFER_FLAGS_KNOWN
                             & ~(RL_TRANSFER_POST_PENDING_TRANSFER
                                 | RL_TRANSFER_VOID_PENDING_TRANSFER);
    codec_encode_prepare (&flagged, bad);
    assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, bad, 0, 1, RL_PREPARE_SIZE),
                      RL_STATUS_OK);
    //  Pending kinds (docs/payments.md, "Across shards"): a pending transfer
    //  may carry a timeout; a post or void names another pending id.
    rl_prepare_rec_t kinds[3] = {valid, valid, valid};
    kinds[0].transfer.flags = RL_TRANSFER_PENDING;
    kinds[0].transfer.timeout = 60;
    kinds[1].transfer.flags = RL_TRANSFER_POST_PENDING_TRANSFER;
    kinds[1].transfer.pending_id = (rl_id_t){.lo = 77};
    kinds[2].transfer.flags = RL_TRANSFER_VOID_PENDING_TRANSFER;
    kinds[2].transfer.pending_id = (rl_id_t){.lo = 77};
    for (int k = 0; k < 3; k++) {
        codec_encode_prepare (&kinds[k], bad);
        if (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE) != RL_STATUS_OK) {
            fail_msg ("prepare of pending kind %d refused", k);
        }
    }
    //  ... and nothing else: each defect makes the frame malformed.
    for (int defect = 0; defect < 7; defect++) {
        rl_prepare_rec_t rec = kinds[1];
        switch (defect) {
            case 0:
                rec.transfer.flags |= RL_TRANSFER_VOID_PENDING_TRANSFER; //  two kinds
                break;
            case 1:
                rec.transfer.flags |= RL_TRANSFER_PENDING;
                break;
            case 2:
                rec.transfer.pending_id = zero; //  a post of nothing
                break;
            case 3:
                rec.transfer.pending_id = max;
                break;
            case 4:
                rec.transfer.pending_id = rec.transfer.id; //  a post of itself
                break;
            case 5:
                rec.transfer.timeout = 1; //  a timeout on a post
                break;
            default:
                rec = kinds[0];
                rec.transfer.pending_id.lo = 5; //  a pending transfer naming one
                break;
        }
        codec_encode_prepare (&rec, bad);
        if (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE)
            != RL_STATUS_MALFORMED) {
            fail_msg ("prepare of a pending kind, defect %d, accepted", defect);
        }
    }
    //  Debit legs (docs/two-phase.md, "Debit legs"): either leg flag alone
    //  passes, and beside `pending` (a chain's pending member, with its
    //  timeout) or a post or void (a post leg: docs/two-phase.md, "Post
    //  legs"); both pass too (a credit leg on a third shard, plain,
    //  pending, or of a post or void); a second kind beside a leg, a post
    //  leg without a pending id or with a timeout, a timeout without
    //  `pending` or a pending id make the frame malformed.
    const uint16_t legs[2] = {RL_TRANSFER_TP_DEBIT_LEG, RL_TRANSFER_TP_BOTH_LEGS};
    for (int k = 0; k < 2; k++) {
        rl_prepare_rec_t rec = valid;
        rec.transfer.flags = legs[k];
        codec_encode_prepare (&rec, bad);
        assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                          RL_STATUS_OK);
        rec = kinds[0];
        rec.transfer.flags |= legs[k];
        codec_encode_prepare (&rec, bad);
        assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                          RL_STATUS_OK);
        rec = valid;
        rec.transfer.flags = RL_TRANSFER_TP_CREDIT_THIRD;
        codec_encode_prepare (&rec, bad);
        assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                          RL_STATUS_OK);
        rec = kinds[0];
        rec.transfer.flags |= RL_TRANSFER_TP_CREDIT_THIRD;
        codec_encode_prepare (&rec, bad);
        assert_int_equal (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                          RL_STATUS_OK);
        //  A post or void with one leg bit or both (a post leg, or its
        //  credit leg on a third shard), of all of it (amount 0) too; a
        //  zero credit account with both legs only.
        const uint16_t post_legs[3] = {legs[k], legs[1 - k], RL_TRANSFER_TP_CREDIT_THIRD};
        for (int kind = 1; kind <= 2; kind++) {
            for (int b = 0; b < 3; b++) {
                rec = kinds[kind];
                rec.transfer.flags |= post_legs[b];
                codec_encode_prepare (&rec, bad);
                assert_int_equal (
                    s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                    RL_STATUS_OK);
                rec.transfer.amount = 0;
                codec_encode_prepare (&rec, bad);
                assert_int_equal (
                    s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                    RL_STATUS_OK);
                rec.transfer.credit_account_id = zero;
                codec_encode_prepare (&rec, bad);
                assert_int_equal (
                    s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                    post_legs[b] == RL_TRANSFER_TP_BOTH_LEGS ? RL_STATUS_OK : RL_STATUS_MALFORMED);
                rec.transfer.credit_account_id = max;
                codec_encode_prepare (&rec, bad);
                assert_int_equal (
                    s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE),
                    RL_STATUS_MALFORMED);
            }
        }
        for (int defect = 0; defect < 6; defect++) {
            rec = defect <= 3 ? kinds[defect == 0 ? 2 : 1] : valid;
            rec.transfer.flags |= legs[k];
            if (defect == 0 || defect == 1) {
                rec.transfer.flags |= RL_TRANSFER_PENDING; //  two kinds beside a leg
            } else if (defect == 2) {
                rec.transfer.pending_id = zero; //  a post leg of nothing
            } else if (defect == 3) {
                rec.transfer.timeout = 1; //  a post leg with a timeout
            } else if (defect == 4) {
                rec.transfer.timeout = 1;
            } else if (defect == 5) {
                rec.transfer.pending_id.lo = 5;
            }
            codec_encode_prepare (&rec, bad);
            if (s_two_phase (RL_OP_PREPARE, true, good, bad, 1, 3, RL_PREPARE_SIZE)
                != RL_STATUS_MALFORMED) {
                fail_msg ("prepare of leg kind %d, defect %d, accepted", k, defect);
            }
        }
    }

    //  Two-phase records, requests and replies: the transfer id.
    const uint32_t ops[] = {RL_OP_PREPARE, RL_OP_DECIDE, RL_OP_OUTCOME_QUERY, RL_OP_RESOLVE};
    uint8_t tp_good[RL_TP_SIZE];
    uint8_t tp_bad[RL_TP_SIZE];
    codec_encode_tp (&valid.tp, tp_good);
    for (size_t k = 0; k < 4; k++) {
        for (int request = 0; request < 2; request++) {
            if (request && ops[k] == RL_OP_PREPARE) {
                continue; //  a PREPARE request holds prepare records (above)
            }
            assert_int_equal (s_two_phase (ops[k], request, tp_good, NULL, 0, 2, RL_TP_SIZE),
                              RL_STATUS_OK);
            rl_tp_rec_t rec = valid.tp;
            rec.id = zero;
            codec_encode_tp (&rec, tp_bad);
            assert_int_equal (s_two_phase (ops[k], request, tp_good, tp_bad, 1, 2, RL_TP_SIZE),
                              RL_STATUS_MALFORMED);
            rec.id = max;
            codec_encode_tp (&rec, tp_bad);
            assert_int_equal (s_two_phase (ops[k], request, tp_good, tp_bad, 0, 2, RL_TP_SIZE),
                              RL_STATUS_MALFORMED);
        }
    }
    //  Other operations keep their records' checks in the shard.
    rl_transfer_t zero_id = valid.transfer;
    zero_id.id = zero;
    uint8_t transfer[RL_TRANSFER_SIZE];
    codec_encode_transfer (&zero_id, transfer);
    assert_int_equal (
        s_two_phase (RL_OP_CREATE_TRANSFERS, true, transfer, NULL, 0, 1, RL_TRANSFER_SIZE),
        RL_STATUS_OK);
}

//  Fuzz ------------------------------------------------------------------

//  An ok from a check must mean what the doc says it means.
static void
s_assert_consistent (const rl_header_t *h, size_t size, bool is_request)
{
    assert_int_equal (h->magic, RL_MAGIC);
    assert_int_equal (h->version, RL_VERSION);
    assert_true (h->record_count <= RL_BATCH_RECORDS_MAX);
    if (is_request || h->status == RL_STATUS_OK) {
        assert_true (codec_op_is_known (h->operation));
    }
    if (is_request) {
        assert_true (h->status == 0 && h->epoch == 0);
    } else if (h->status != RL_STATUS_OK) {
        assert_true (h->record_count == 0 && size == RL_HEADER_SIZE);
        return;
    }
    size_t rs = is_request ? codec_request_record_size (h->operation)
                           : codec_reply_record_size (h->operation);
    if (rs == RL_BLOB) {
        assert_int_equal (h->record_count, 1);
        assert_true (size > RL_HEADER_SIZE && size <= RL_HEADER_SIZE + RL_RING_BLOB_SIZE_MAX);
    } else {
        assert_true (size == RL_HEADER_SIZE + h->record_count * rs);
        assert_true (size <= RL_MESSAGE_SIZE_MAX);
    }
}

//  Returns how many of the two checks said ok (to prove the fuzz goes deep).
static int
s_fuzz_one (void)
{
    size_t size = (size_t) (s_rand () % 4 == 0 ? s_rand () % (RL_HEADER_SIZE + 8)
                                               : s_rand () % FUZZ_FRAME_SIZE_MAX);
    uint8_t *frame = malloc (size ? size : 1); //  exact size: ASan sees any overread
    assert_non_null (frame);
    s_rand_fill (frame, size);
    if (size >= RL_HEADER_SIZE && s_rand () % 2) {
        //  A plausible header, so that the deeper checks are reached.
        codec_put_u32 (frame, RL_MAGIC);
        codec_put_u16 (frame + 4, RL_VERSION);
        codec_put_u16 (frame + 6, (uint16_t) (s_rand () % 10));
        codec_put_u32 (frame + 16, (uint32_t) (s_rand () % 40));
        if (s_rand () % 4) {
            codec_put_u32 (frame + 20, s_rand () % 2 ? 0 : (uint32_t) (s_rand () % 16));
            codec_put_u64 (frame + 24, 0);
        }
        if (s_rand () % 2) {
            //  Make the count agree with the size when it can.
            rl_header_t h;
            codec_decode_header (frame, &h);
            size_t rs = s_rand () % 2 ? codec_request_record_size (h.operation)
                                      : codec_reply_record_size (h.operation);
            uint32_t count = rs == RL_BLOB ? 1
                             : rs == 0     ? 0
                                           : (uint32_t) ((size - RL_HEADER_SIZE) / rs);
            codec_put_u32 (frame + 16, count);
            if (rs != RL_BLOB) {
                size = RL_HEADER_SIZE + count * rs;
            }
        }
    }
    int oks = 0;
    rl_header_t header, direct;
    rl_status_t status = codec_check_request (size ? frame : NULL, size, &header);
    assert_true (status <= RL_STATUS_LAST);
    if (size >= RL_HEADER_SIZE) {
        codec_decode_header (frame, &direct);
        assert_memory_equal (&header, &direct, sizeof header);
    }
    if (status == RL_STATUS_OK) {
        s_assert_consistent (&header, size, true);
        oks++;
    }
    status = codec_check_reply (size ? frame : NULL, size, &header);
    assert_true (status <= RL_STATUS_LAST);
    if (status == RL_STATUS_OK) {
        s_assert_consistent (&header, size, false);
        oks++;
    }
    free (frame);
    return oks;
}

static void
test_fuzz (void **state)
{
    (void) state;
    s_rng_state = s_seed ^ 0x5eed;
    long oks = 0;
    for (int i = 0; i < FUZZ_FRAMES; i++) {
        oks += s_fuzz_one ();
    }
    printf ("test_fuzz: %d frames, %ld checks ok\n", FUZZ_FRAMES, oks);
    assert_true (oks > FUZZ_FRAMES / 100); //  the deep checks were reached
}

//  Names -----------------------------------------------------------------

typedef struct {
    uint32_t value;
    char name[80]; //  lower case, prefix removed
} enum_entry_t;

//  Parses `typedef enum { PREFIX_X = N, ... } type_name;` from proto.h.
static size_t
s_parse_enum (const char *text, const char *type_name, const char *prefix, enum_entry_t *entries,
              size_t entries_max)
{
    char closing[80];
    snprintf (closing, sizeof closing, "} %s;", type_name);
    const char *end = strstr (text, closing);
    assert_non_null (end);
    const char *start = end;
    while (start > text && strncmp (start, "typedef enum {", 14) != 0) {
        start--;
    }
    assert_true (start > text);
    size_t count = 0;
    size_t prefix_size = strlen (prefix);
    for (const char *p = start; p < end; p = strchr (p, '\n') + 1) {
        while (*p == ' ') {
            p++;
        }
        char ident[96];
        unsigned int value;
        if (strncmp (p, prefix, prefix_size) != 0
            || sscanf (p, "%95[A-Z0-9_] = %u", ident, &value) != 2) {
            continue;
        }
        assert_true (count < entries_max);
        entries[count].value = value;
        size_t i = 0;
        for (const char *c = ident + prefix_size; *c && i + 1 < sizeof entries[0].name; c++) {
            entries[count].name[i++] = (char) tolower ((unsigned char) *c);
        }
        entries[count].name[i] = '\0';
        count++;
    }
    return count;
}

static bool
s_defined (const enum_entry_t *entries, size_t count, uint32_t value)
{
    for (size_t i = 0; i < count; i++) {
        if (entries[i].value == value) {
            return true;
        }
    }
    return false;
}

//  Every value named like its enum; every other value "unknown"; distinct.
static void
s_check_names (const enum_entry_t *entries, size_t count, const char *(*name_of) (uint32_t),
               bool names_are_enum_names)
{
    for (size_t i = 0; i < count; i++) {
        const char *name = name_of (entries[i].value);
        assert_non_null (name);
        assert_string_not_equal (name, "unknown");
        if (names_are_enum_names) {
            assert_string_equal (name, entries[i].name);
        }
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal (name, name_of (entries[j].value));
        }
    }
    for (uint32_t v = 0; v < 1000; v++) {
        if (!s_defined (entries, count, v)) {
            assert_string_equal (name_of (v), "unknown");
        }
    }
    assert_string_equal (name_of (UINT32_MAX), "unknown");
}

//  The rows of a code table (RL_*_TABLE of proto.h): value, and the name its
//  identifier implies (lower case, prefix removed).
static void
s_entry (enum_entry_t *entry, uint32_t value, const char *ident, const char *prefix)
{
    assert_true (strncmp (ident, prefix, strlen (prefix)) == 0);
    entry->value = value;
    size_t i = 0;
    for (const char *c = ident + strlen (prefix); *c && i + 1 < sizeof entry->name; c++) {
        entry->name[i++] = (char) tolower ((unsigned char) *c);
    }
    entry->name[i] = '\0';
}

#define S_OP_ROW_(id, value, name) s_entry (&ops[op_count++], value, #id, "RL_OP_");
#define S_STATUS_ROW_(id, value, name, hint)                                                       \
    s_entry (&statuses[status_count++], value, #id, "RL_STATUS_");
#define S_RESULT_ROW_(id, value, name, class, burns, hint)                                         \
    s_entry (&results[result_count++], value, #id, "RL_");

//  One row "| value | `name` | ... |" of a table of the doc, and the text
//  of its cells 3 and 4 (0-based, trimmed), when asked for.
typedef struct {
    uint32_t value;
    char name[80];
    char cell3[64];
    char cell4[64];
} doc_row_t;

static void
s_cell (const char *row, int index, char *out, size_t out_size)
{
    const char *cell = row;
    for (int bars = 0; bars <= index; bars++) {
        cell = strchr (cell, '|') + 1;
    }
    while (*cell == ' ') {
        cell++;
    }
    size_t size = strcspn (cell, "|");
    while (size > 0 && cell[size - 1] == ' ') {
        size--;
    }
    snprintf (out, out_size, "%.*s", (int) size, cell);
}

//  The rows of one section of the doc.
static size_t
s_parse_doc_table (const char *doc, const char *section, doc_row_t *rows, size_t rows_max)
{
    const char *p = strstr (doc, section);
    assert_non_null (p);
    const char *end = strstr (p + strlen (section), "\n## ");
    size_t count = 0;
    for (; p && (!end || p < end); p = strchr (p, '\n'), p = p ? p + 1 : NULL) {
        unsigned int value;
        char name[80];
        if (sscanf (p, "| %u | `%79[a-z0-9_]` |", &value, name) != 2) {
            continue;
        }
        assert_true (count < rows_max);
        rows[count].value = value;
        snprintf (rows[count].name, sizeof rows[count].name, "%s", name);
        s_cell (p, 3, rows[count].cell3, sizeof rows[count].cell3);
        s_cell (p, 4, rows[count].cell4, sizeof rows[count].cell4);
        count++;
    }
    return count;
}

static void
test_names (void **state)
{
    (void) state;
    enum_entry_t results[128], statuses[32], ops[48], durabilities[8];
    size_t result_count = 0, status_count = 0, op_count = 0;
    RL_RESULT_TABLE (S_RESULT_ROW_)
    RL_STATUS_TABLE (S_STATUS_ROW_)
    RL_OP_TABLE (S_OP_ROW_)
    char *proto = s_read_or_fail (RL_PROTO_H_PATH);
    size_t durability_count = s_parse_enum (proto, "rl_durability_t", "RL_DURABILITY_",
                                            durabilities, 8);
    free (proto);
    assert_true (result_count > 70);
    assert_int_equal (statuses[status_count - 1].value, RL_STATUS_LAST); //  codec's last status
    for (uint32_t v = 0; v <= RL_STATUS_LAST + 1; v++) {
        assert_int_equal (rl_status_defined (v), s_defined (statuses, status_count, v));
    }
    assert_int_equal (op_count, 36);
    //  Every operation names the roles that may send it, and nothing else does.
    size_t roles_rows = 0;
#define S_ROLES_ROW_(id, roles)                                                                    \
    roles_rows++;                                                                                  \
    assert_true ((roles) != 0 && ((roles) & ~(unsigned) RL_ROLE_ALL) == 0);
    RL_OP_ROLES_TABLE (S_ROLES_ROW_)
#undef S_ROLES_ROW_
    assert_int_equal (roles_rows, op_count);
    for (size_t i = 0; i < op_count; i++) {
        assert_true (rl_op_roles (ops[i].value) != 0);
    }
    assert_int_equal (rl_op_roles (9), 0);
    assert_int_equal (durability_count, 3);

    s_check_names (results, result_count, rl_result_name, true);
    s_check_names (statuses, status_count, rl_status_name, true);
    s_check_names (ops, op_count, rl_op_name, true);
    s_check_names (durabilities, durability_count, rl_durability_name, false);
    assert_string_equal (rl_result_name (RL_EXCEEDS_CREDITS), "exceeds_credits");
    assert_string_equal (rl_status_name (RL_STATUS_BAD_VERSION), "bad_version");
    assert_string_equal (rl_op_name (RL_OP_GET_ACCOUNT_TRANSFERS), "get_account_transfers");
    assert_string_equal (rl_durability_name (RL_DURABILITY_SYNC), "sync");
    assert_string_equal (rl_durability_name (RL_DURABILITY_NOSYNC), "nosync (benchmark only)");
    assert_string_equal (rl_durability_name (RL_DURABILITY_SYNC_MANUAL_WAL),
                         "sync, manual WAL flush");

    //  The doc's result table lists exactly the rows of RL_RESULT_TABLE, in
    //  order, with their names, classes ("group", after its precedence
    //  number) and burns.
    char *doc = s_read_or_fail (s_doc_path);
    doc_row_t rows[128];
    size_t row_count = s_parse_doc_table (doc, "\n## Result codes", rows, 128);
    assert_int_equal (row_count, result_count);
    for (size_t i = 0; i < row_count; i++) {
        const doc_row_t *row = &rows[i];
        assert_int_equal (row->value, results[i].value);
        assert_string_equal (row->name, rl_result_name (row->value));
        const char *group = row->cell3 + strspn (row->cell3, "0123456789 ");
        const char *class_name = rl_result_class_name (rl_result_class (row->value));
        if (strcmp (group, class_name) != 0) {
            fail_msg ("%s: the doc's group is '%s', the table's class '%s'", row->name, group,
                      class_name);
        }
        const char *burns = rl_burns_name (rl_result_burns (row->value));
        if (strcmp (row->cell4, burns) != 0) {
            fail_msg ("%s: the doc says burns '%s', the table '%s'", row->name, row->cell4, burns);
        }
        //  Every code but ok tells the operator what to do next.
        assert_true (row->value == RL_OK || strlen (rl_result_hint (row->value)) > 10);
    }
    for (uint32_t v = 0; v < 1000; v++) {
        if (!s_defined (results, result_count, v)) {
            assert_true (rl_result_is_retryable (v)); //  unknown: never assume it is spent
            assert_int_equal (rl_result_burns (v), RL_BURNS_NO);
            assert_int_equal (rl_result_class (v), RL_RESULT_CLASS_UNKNOWN);
            assert_true (strlen (rl_result_hint (v)) > 10);
        }
    }
    row_count = s_parse_doc_table (doc, "\n## Message-level status", rows, 128);
    assert_int_equal (row_count, status_count);
    for (size_t i = 0; i < row_count; i++) {
        assert_int_equal (rows[i].value, statuses[i].value);
        assert_string_equal (rows[i].name, rl_status_name (rows[i].value));
        assert_true (rows[i].value == RL_STATUS_OK || strlen (rl_status_hint (rows[i].value)) > 10);
    }
    free (doc);
}

static void
test_retryable (void **state)
{
    (void) state;
    //  The id stays free: infrastructure, id and field validation.
    const uint32_t free_codes[] = {
        RL_WRONG_SHARD,
        RL_BUSY,
        RL_ABORTED,
        RL_OUTCOME_UNKNOWN,
        RL_IN_PROGRESS,
        RL_IN_DOUBT,
        RL_FROZEN,
        RL_STORAGE_ERROR,
        RL_LINKED_EVENT_FAILED,
        RL_LINKED_EVENT_CHAIN_OPEN,
        12,
        15,
        RL_ID_MUST_NOT_BE_ZERO,
        RL_ID_MUST_NOT_BE_INT_MAX,
        RL_TIMESTAMP_MUST_BE_ZERO,
        RL_RESERVED_FLAG,
        RL_ACCOUNTS_MUST_BE_DIFFERENT,
        RL_AMOUNT_MUST_NOT_BE_ZERO,
        RL_NOT_SUPPORTED,
        RL_DEBITS_PENDING_MUST_BE_ZERO,
        RL_CREDITS_POSTED_MUST_BE_ZERO,
        //  undefined values: never assume the id is spent
        18,
        31,
        58,
        62,
        79,
        89,
        99,
        104,
        UINT32_MAX,
    };
    //  Final for the id: success, taken, or a remembered business failure.
    const uint32_t final_codes[] = {
        RL_OK,
        RL_EXISTS,
        RL_EXISTS_WITH_DIFFERENT_FLAGS,
        RL_EXISTS_WITH_DIFFERENT_AMOUNT,
        RL_EXISTS_WITH_DIFFERENT_CODE,
        RL_DEBIT_ACCOUNT_NOT_FOUND,
        RL_CREDIT_ACCOUNT_NOT_FOUND,
        RL_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER,
        RL_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS,
        RL_PENDING_TRANSFER_NOT_FOUND,
        RL_PENDING_TRANSFER_EXPIRED,
        RL_OVERFLOWS_DEBITS_PENDING,
        RL_OVERFLOWS_CREDITS,
        RL_EXCEEDS_CREDITS,
        RL_EXCEEDS_DEBITS,
        RL_EXISTS_WITH_DIFFERENT_USER_DATA_128,
        RL_OVERFLOWS_TIMEOUT,
    };
    for (size_t i = 0; i < sizeof free_codes / sizeof free_codes[0]; i++) {
        assert_true (rl_result_is_retryable (free_codes[i]));
    }
    for (size_t i = 0; i < sizeof final_codes / sizeof final_codes[0]; i++) {
        assert_false (rl_result_is_retryable (final_codes[i]));
    }
}

//  rl_reply_burns: a member of a linked chain never burns (a failed chain
//  stores nothing), any other record reads as its code.
static void
test_reply_burns (void **state)
{
    (void) state;
    const uint16_t L = RL_TRANSFER_LINKED;
    //  One request: alone, a chain failed by its last member, alone right
    //  after a chain, an applied chain, a chain failed as taken, alone
    //  field validation, a chain left open at the end.
    const uint16_t flags[] = {0, L, 0, 0, L, L, 0, L, 0, 0, L, L};
    const uint32_t answer[] = {RL_EXCEEDS_CREDITS,
                               RL_LINKED_EVENT_FAILED,
                               RL_EXCEEDS_CREDITS,
                               RL_DEBIT_ACCOUNT_NOT_FOUND,
                               RL_OK,
                               RL_EXISTS,
                               RL_OK,
                               RL_EXISTS_WITH_DIFFERENT_AMOUNT,
                               RL_LINKED_EVENT_FAILED,
                               RL_AMOUNT_MUST_NOT_BE_ZERO,
                               RL_LINKED_EVENT_FAILED,
                               RL_LINKED_EVENT_CHAIN_OPEN};
    const rl_burns_t want[] = {RL_BURNS_YES,     RL_BURNS_NO,      RL_BURNS_NO,      RL_BURNS_YES,
                               RL_BURNS_SUCCESS, RL_BURNS_SUCCESS, RL_BURNS_SUCCESS, RL_BURNS_TAKEN,
                               RL_BURNS_NO,      RL_BURNS_NO,      RL_BURNS_NO,      RL_BURNS_NO};
    enum { N = sizeof flags / sizeof flags[0] };
    _Static_assert(sizeof answer / sizeof answer[0] == N, "one answer per record");
    _Static_assert(sizeof want / sizeof want[0] == N, "one expectation per record");
    rl_transfer_t t[N];
    rl_result_rec_t r[N];
    for (size_t i = 0; i < N; i++) {
        t[i] = (rl_transfer_t){.id = {.lo = i + 1}, .flags = flags[i]};
        r[i] = (rl_result_rec_t){.index = (uint32_t) i, .result = answer[i]};
    }
    for (size_t i = 0; i < N; i++) {
        if (rl_reply_burns (t, r, N, i) != want[i]) {
            fail_msg ("record %zu (%s): %s, expected %s", i, rl_result_name (answer[i]),
                      rl_burns_name (rl_reply_burns (t, r, N, i)), rl_burns_name (want[i]));
        }
        assert_int_equal (rl_reply_is_retryable (t, r, N, i), want[i] == RL_BURNS_NO);
    }
    //  Every value, in and out of a chain (the first, a middle and the last
    //  member of a chain of three; a record alone, and one after a chain).
    rl_transfer_t c[5] = {{.flags = L}, {.flags = L}, {.flags = 0}, {.flags = 0}, {.flags = 0}};
    for (uint32_t v = 0; v < 300; v++) {
        rl_result_rec_t rv[5];
        for (size_t i = 0; i < 5; i++) {
            rv[i] = (rl_result_rec_t){.index = (uint32_t) i, .result = v};
        }
        rl_burns_t alone = rl_result_burns (v);
        rl_burns_t member = alone == RL_BURNS_YES ? RL_BURNS_NO : alone;
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal (rl_reply_burns (c, rv, 5, i), member);
        }
        assert_int_equal (rl_reply_burns (c, rv, 5, 3), alone);
        assert_int_equal (rl_reply_burns (c, rv, 5, 4), alone);
        assert_int_equal (rl_reply_burns (&c[4], rv, 1, 0), alone);
    }
    //  A chain of one record (linked and last): a member too.
    rl_transfer_t one = {.flags = L};
    rl_result_rec_t burned = {.result = RL_EXCEEDS_CREDITS};
    assert_int_equal (rl_reply_burns (&one, &burned, 1, 0), RL_BURNS_NO);
}

int
main (int argc, char *argv[])
{
    if (argc > 1) {
        s_doc_path = argv[1];
    }
    const char *seed_text = getenv ("RL_SEED");
    s_seed = seed_text ? strtoull (seed_text, NULL, 0)
                       : (uint64_t) time (NULL) ^ ((uint64_t) clock () << 32);
    printf ("test_codec: seed %" PRIu64 " (RL_SEED=%" PRIu64 " reproduces), doc %s\n", s_seed,
            s_seed, s_doc_path);
    fflush (stdout);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_vectors),
        cmocka_unit_test (test_primitives),
        cmocka_unit_test (test_round_trips),
        cmocka_unit_test (test_status_name_is_terminated),
        cmocka_unit_test (test_two_phase_records),
        cmocka_unit_test (test_frames),
        cmocka_unit_test (test_record_sizes),
        cmocka_unit_test (test_request_short),
        cmocka_unit_test (test_request_header_fields),
        cmocka_unit_test (test_request_sizes),
        cmocka_unit_test (test_two_phase_validation),
        cmocka_unit_test (test_reply_checks),
        cmocka_unit_test (test_fuzz),
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_retryable),
        cmocka_unit_test (test_reply_burns),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
