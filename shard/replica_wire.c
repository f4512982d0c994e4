/*  replica_wire.c: the replication socket's frames and the checks of what
    arrives on it (replica.h, docs/replication.md "Wire").

    Every byte here came off the network: nothing is asserted about it,
    everything is checked and answered with a REPLICA_ST_* code.

    The WriteBatch check follows RocksDB's format (db/write_batch.cc): a
    12-byte header (sequence u64, count u32), then `count` records, each a
    tag byte, a column family varint for the *ColumnFamily* tags, then
    length-prefixed key (and value, or range end). The store writes only
    the tags accepted here.
*/
#include "replica.h"

#include <assert.h>
#include <string.h>

#include "codec.h"

static void
s_put_u16 (uint8_t *out, uint16_t v)
{
    out[0] = (uint8_t) v;
    out[1] = (uint8_t) (v >> 8);
}

static uint16_t
s_get_u16 (const uint8_t *in)
{
    return (uint16_t) (in[0] | (in[1] << 8));
}

void
replica_header_encode (const replica_header_t *h, uint8_t out[REPLICA_HEADER_SIZE])
{
    assert (h && out);
    codec_put_u32 (out + 0, h->magic);
    s_put_u16 (out + 4, h->version);
    s_put_u16 (out + 6, h->kind);
    codec_put_u64 (out + 8, h->stream);
    codec_put_u64 (out + 16, h->seq);
    codec_put_u32 (out + 24, h->status);
    codec_put_u32 (out + 28, h->session);
    codec_put_u32 (out + 32, h->cf);
    codec_put_u32 (out + 36, h->key_size);
    codec_put_u64 (out + 40, h->entry_size);
    codec_put_u64 (out + 48, h->count);
    codec_put_u64 (out + 56, h->data_size);
}

replica_status_t
replica_header_decode (const uint8_t *in, size_t size, replica_header_t *h)
{
    assert (h);
    memset (h, 0, sizeof *h);
    if (!in || size != REPLICA_HEADER_SIZE) {
        return REPLICA_ST_MALFORMED;
    }
    h->magic = codec_get_u32 (in + 0);
    h->version = s_get_u16 (in + 4);
    h->kind = s_get_u16 (in + 6);
    h->stream = codec_get_u64 (in + 8);
    h->seq = codec_get_u64 (in + 16);
    h->status = codec_get_u32 (in + 24);
    h->session = codec_get_u32 (in + 28);
    h->cf = codec_get_u32 (in + 32);
    h->key_size = codec_get_u32 (in + 36);
    h->entry_size = codec_get_u64 (in + 40);
    h->count = codec_get_u64 (in + 48);
    h->data_size = codec_get_u64 (in + 56);
    if (h->magic != REPLICA_MAGIC || h->version != REPLICA_VERSION) {
        return REPLICA_ST_MALFORMED;
    }
    switch (h->kind) {
        case REPLICA_HELLO:
        case REPLICA_BATCH:
        case REPLICA_INGEST:
        case REPLICA_SEED_BEGIN:
        case REPLICA_SEED_FILE:
        case REPLICA_SEED_END:
        case REPLICA_PING:
        case REPLICA_QUERY:
        case REPLICA_ACK:
            return REPLICA_ST_OK;
        default:
            return REPLICA_ST_MALFORMED;
    }
}

const char *
replica_status_name (uint32_t status)
{
    switch (status) {
        case REPLICA_ST_OK:
            return "ok";
        case REPLICA_ST_MALFORMED:
            return "malformed";
        case REPLICA_ST_OVERSIZE:
            return "oversize";
        case REPLICA_ST_OUT_OF_ORDER:
            return "out_of_order";
        case REPLICA_ST_UNAUTHORIZED:
            return "unauthorized";
        case REPLICA_ST_WRONG_STREAM:
            return "wrong_stream";
        case REPLICA_ST_STORAGE:
            return "storage_error";
        case REPLICA_ST_FENCED:
            return "fenced";
        case REPLICA_ST_NOT_STANDBY:
            return "not_standby";
        case REPLICA_ST_STANDBY_FENCED:
            return "standby_fenced";
        case REPLICA_ST_NO_STREAM:
            return "no_stream";
        case REPLICA_ST_UNCONFIRMED:
            return "unconfirmed";
        case REPLICA_ST_OLDER:
            return "older";
        default:
            return "unknown";
    }
}

const char *
replica_mode_name (replica_mode_t mode)
{
    switch (mode) {
        case REPLICA_MODE_SEMI:
            return "semi";
        case REPLICA_MODE_ASYNC:
            return "async";
        default:
            return "none";
    }
}

//  A varint32 at *pos; false past end or beyond 32 bits.
static bool
s_varint32 (const uint8_t *data, size_t size, size_t *pos, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift <= 28; shift += 7) {
        if (*pos >= size) {
            return false;
        }
        uint8_t b = data[(*pos)++];
        v |= (uint32_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

//  A slice at *pos (its bytes in *out, *out_size); false past the end.
static bool
s_slice (const uint8_t *data, size_t size, size_t *pos, const uint8_t **out, size_t *out_size)
{
    uint32_t len = 0;
    if (!s_varint32 (data, size, pos, &len) || len > size - *pos) {
        return false;
    }
    *out = data + *pos;
    *out_size = len;
    *pos += len;
    return true;
}

//  RocksDB's bytewise order of two keys (every column family of the store
//  uses it): <0, 0, >0.
static int
s_key_cmp (const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size)
{
    int c = memcmp (a, b, a_size < b_size ? a_size : b_size);
    if (c != 0) {
        return c;
    }
    return a_size < b_size ? -1 : a_size > b_size;
}

//  RocksDB's record tags (db/dbformat.h) that the store's batches hold.
//  Never a SingleDelete (0x7, 0x8): the store writes none, and one behaves
//  as a delete only while no older put of its key is compacted beneath it
//  (an older version can come back), which no follower of the stream (the
//  standby's warm state) could model.
enum {
    S_TAG_DELETION = 0x0,
    S_TAG_VALUE = 0x1,
    S_TAG_CF_DELETION = 0x4,
    S_TAG_CF_VALUE = 0x5,
    S_TAG_CF_RANGE_DELETION = 0xE,
    S_TAG_RANGE_DELETION = 0xF,
};

bool
replica_batch_each (const uint8_t *data, size_t size, replica_batch_fn *fn, void *arg)
{
    if (!data || size < 12) {
        return false;
    }
    uint32_t count = codec_get_u32 (data + 8);
    size_t pos = 12;
    uint32_t seen = 0;
    while (pos < size) {
        uint8_t tag = data[pos++];
        uint32_t cf = 0;
        bool has_cf = tag == S_TAG_CF_DELETION || tag == S_TAG_CF_VALUE
                      || tag == S_TAG_CF_RANGE_DELETION;
        if (has_cf && (!s_varint32 (data, size, &pos, &cf) || cf >= STORE_CF_COUNT)) {
            return false;
        }
        replica_op_t op = {.cf = (store_cf_t) cf};
        switch (tag) {
            case S_TAG_DELETION:
            case S_TAG_CF_DELETION:
                op.kind = REPLICA_OP_DELETE;
                break;
            case S_TAG_VALUE:
            case S_TAG_CF_VALUE:
                op.kind = REPLICA_OP_PUT;
                break;
            case S_TAG_RANGE_DELETION:
            case S_TAG_CF_RANGE_DELETION:
                op.kind = REPLICA_OP_DELETE_RANGE;
                break;
            default:
                return false; //  single deletes, merges, log data, transactions: never the store's
        }
        if (!s_slice (data, size, &pos, &op.key, &op.key_size)
            || (op.kind != REPLICA_OP_DELETE
                && !s_slice (data, size, &pos, &op.value, &op.value_size))) {
            return false;
        }
        //  RocksDB refuses a range that ends before it begins, but only
        //  after the records before it are in its WAL and memtable: a
        //  batch applied in part, on disk after a restart.
        if (op.kind == REPLICA_OP_DELETE_RANGE
            && s_key_cmp (op.value, op.value_size, op.key, op.key_size) < 0) {
            return false;
        }
        if (++seen > count) {
            return false;
        }
        if (fn) {
            fn (arg, &op);
        }
    }
    return pos == size && seen == count && count > 0;
}

bool
replica_batch_valid (const uint8_t *data, size_t size)
{
    return replica_batch_each (data, size, NULL, NULL);
}

static void
s_marks_fn (void *arg, const replica_op_t *op)
{
    bool *writes = arg;
    if (op->cf != STORE_CF_META) {
        return;
    }
    const uint8_t *prefix = (const uint8_t *) REPLICA_META_PREFIX;
    size_t prefix_size = strlen (REPLICA_META_PREFIX);
    if (op->kind == REPLICA_OP_DELETE_RANGE) {
        //  [key, end) reaches the prefix unless it ends at or before its
        //  first key, or begins past its last (every key of the prefix is
        //  below the prefix with its last byte one higher).
        uint8_t past[16];
        assert (prefix_size <= sizeof past);
        memcpy (past, prefix, prefix_size);
        past[prefix_size - 1]++;
        *writes |= s_key_cmp (op->value, op->value_size, prefix, prefix_size) > 0
                   && s_key_cmp (op->key, op->key_size, past, prefix_size) < 0;
        return;
    }
    bool marked = op->key_size >= prefix_size && memcmp (op->key, prefix, prefix_size) == 0;
    bool primary = op->key_size == strlen (REPLICA_META_PRIMARY)
                   && memcmp (op->key, REPLICA_META_PRIMARY, op->key_size) == 0;
    *writes |= marked && !primary;
}

bool
replica_batch_valid_marks (const uint8_t *data, size_t size, bool *writes_marks)
{
    assert (writes_marks);
    *writes_marks = false;
    return replica_batch_each (data, size, s_marks_fn, writes_marks);
}

bool
replica_ingest_valid (const replica_header_t *h, const uint8_t *data, size_t size)
{
    assert (h);
    //  The three shapes a checkpoint ingests (checkpoint.c): an id and its
    //  timestamp; an account, a timestamp (the whole entry is the key); a
    //  leg (pending id, debit account) and its timestamp. A key of another
    //  size would be stored, and the next recovery's scan of the index
    //  would refuse it (journal.c).
    static const struct {
        uint32_t cf, key_size, entry_size;
    } shapes[] = {{STORE_CF_TX_INDEX, RL_ID_SIZE, RL_ID_SIZE + 8},
                  {STORE_CF_HISTORY, RL_ID_SIZE + 8, RL_ID_SIZE + 8},
                  {STORE_CF_LEGS, 2 * RL_ID_SIZE, 2 * RL_ID_SIZE + 8}};
    bool shaped = false;
    for (size_t i = 0; i < sizeof (shapes) / sizeof (shapes[0]); i++) {
        shaped |= h->cf == shapes[i].cf && h->key_size == shapes[i].key_size
                  && h->entry_size == shapes[i].entry_size;
    }
    if (!shaped || h->count == 0 || h->count > size || !data) {
        return false;
    }
    if (h->count * h->entry_size != size) {
        return false;
    }
    for (uint64_t i = 1; i < h->count; i++) {
        const uint8_t *a = data + (i - 1) * h->entry_size;
        if (memcmp (a, a + h->entry_size, h->key_size) >= 0) {
            return false; //  unsorted or a duplicate key
        }
    }
    return true;
}

bool
replica_seed_name_valid (const char *name, size_t size)
{
    if (!name || size == 0 || size >= REPLICA_SEED_NAME_SIZE_MAX) {
        return false;
    }
    if ((size == 1 && name[0] == '.') || (size == 2 && name[0] == '.' && name[1] == '.')) {
        return false;
    }
    for (size_t i = 0; i < size; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}
