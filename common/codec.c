/*  codec.c: bytes on the wire <-> records in memory.

    DESIGN
    Every record on the wire is the struct of proto.h laid out at its natural
    offsets, little-endian, with no padding. The _Static_asserts below pin
    each offset and each size, so a field moved in proto.h breaks the build
    rather than the protocol.

    Two implementations of every record codec live here:
      - copy:     on a little-endian host the wire bytes ARE the struct, so
                  encode and decode are one memcpy (the shard decodes up to
                  RL_BATCH_RECORDS_MAX transfers per request: this matters);
      - portable: field by field through codec_put_* / codec_get_*, for
                  big-endian hosts, and for tests (-DRL_CODEC_PORTABLE=1
                  forces it so that both are checked against the vectors).
    Both produce the same bytes; tests/test_codec.c checks both builds
    against the hex vectors of docs/protocol.md.

    INVARIANTS
    1. Nothing here trusts bytes from the network: the check functions
       read only within `size` and return a named status for every input.
       Asserts guard API misuse only (NULL pointers).
    2. Decoding never fails: any RL_*_SIZE bytes decode to some struct.
       Whether the fields make sense is the shard's business (result codes),
       except the status name, which decode always NUL-terminates.
    3. codec_check_* visit the header only: O(1) per frame, whatever its size.

    LIMITS
    A request body is at most RL_BATCH_RECORDS_MAX records and the frame at
    most RL_MESSAGE_SIZE_MAX bytes; a blob body at most RL_RING_BLOB_SIZE_MAX.
*/
#include "codec.h"

#include <assert.h>
#include <string.h>

#if !defined(RL_CODEC_PORTABLE) && defined(__BYTE_ORDER__)                                         \
    && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RL_CODEC_COPY 1
#else
#define RL_CODEC_COPY 0
#endif

//  Layout pins: wire offset == struct offset, wire size == sizeof ---------
_Static_assert(sizeof (rl_id_t) == RL_ID_SIZE, "id size");
_Static_assert(offsetof (rl_id_t, lo) == 0 && offsetof (rl_id_t, hi) == 8, "id layout");

_Static_assert(sizeof (rl_header_t) == RL_HEADER_SIZE, "header size");
_Static_assert(offsetof (rl_header_t, magic) == 0, "header.magic");
_Static_assert(offsetof (rl_header_t, version) == 4, "header.version");
_Static_assert(offsetof (rl_header_t, operation) == 6, "header.operation");
_Static_assert(offsetof (rl_header_t, request_id) == 8, "header.request_id");
_Static_assert(offsetof (rl_header_t, record_count) == 16, "header.record_count");
_Static_assert(offsetof (rl_header_t, status) == 20, "header.status");
_Static_assert(offsetof (rl_header_t, epoch) == 24, "header.epoch");

_Static_assert(sizeof (rl_account_t) == RL_ACCOUNT_SIZE, "account size");
_Static_assert(offsetof (rl_account_t, id) == 0, "account.id");
_Static_assert(offsetof (rl_account_t, debits_pending) == 16, "account.debits_pending");
_Static_assert(offsetof (rl_account_t, debits_posted) == 24, "account.debits_posted");
_Static_assert(offsetof (rl_account_t, credits_pending) == 32, "account.credits_pending");
_Static_assert(offsetof (rl_account_t, credits_posted) == 40, "account.credits_posted");
_Static_assert(offsetof (rl_account_t, debits_reserved) == 48, "account.debits_reserved");
_Static_assert(offsetof (rl_account_t, credits_reserved) == 56, "account.credits_reserved");
_Static_assert(offsetof (rl_account_t, user_data_128) == 64, "account.user_data_128");
_Static_assert(offsetof (rl_account_t, user_data_64) == 80, "account.user_data_64");
_Static_assert(offsetof (rl_account_t, user_data_32) == 88, "account.user_data_32");
_Static_assert(offsetof (rl_account_t, ledger) == 92, "account.ledger");
_Static_assert(offsetof (rl_account_t, code) == 96, "account.code");
_Static_assert(offsetof (rl_account_t, flags) == 98, "account.flags");
_Static_assert(offsetof (rl_account_t, reserved) == 100, "account.reserved");
_Static_assert(offsetof (rl_account_t, timestamp) == 104, "account.timestamp");
_Static_assert(offsetof (rl_account_t, reserved2) == 112, "account.reserved2");

_Static_assert(sizeof (rl_transfer_t) == RL_TRANSFER_SIZE, "transfer size");
_Static_assert(offsetof (rl_transfer_t, id) == 0, "transfer.id");
_Static_assert(offsetof (rl_transfer_t, debit_account_id) == 16, "transfer.debit_account_id");
_Static_assert(offsetof (rl_transfer_t, credit_account_id) == 32, "transfer.credit_account_id");
_Static_assert(offsetof (rl_transfer_t, amount) == 48, "transfer.amount");
_Static_assert(offsetof (rl_transfer_t, pending_id) == 56, "transfer.pending_id");
_Static_assert(offsetof (rl_transfer_t, user_data_128) == 72, "transfer.user_data_128");
_Static_assert(offsetof (rl_transfer_t, user_data_64) == 88, "transfer.user_data_64");
_Static_assert(offsetof (rl_transfer_t, user_data_32) == 96, "transfer.user_data_32");
_Static_assert(offsetof (rl_transfer_t, timeout) == 100, "transfer.timeout");
_Static_assert(offsetof (rl_transfer_t, ledger) == 104, "transfer.ledger");
_Static_assert(offsetof (rl_transfer_t, code) == 108, "transfer.code");
_Static_assert(offsetof (rl_transfer_t, flags) == 110, "transfer.flags");
_Static_assert(offsetof (rl_transfer_t, timestamp) == 112, "transfer.timestamp");
_Static_assert(offsetof (rl_transfer_t, reserved) == 120, "transfer.reserved");

_Static_assert(sizeof (rl_result_rec_t) == RL_RESULT_SIZE, "result size");
_Static_assert(offsetof (rl_result_rec_t, index) == 0, "result.index");
_Static_assert(offsetof (rl_result_rec_t, result) == 4, "result.result");
_Static_assert(offsetof (rl_result_rec_t, timestamp) == 8, "result.timestamp");

_Static_assert(sizeof (rl_filter_t) == RL_FILTER_SIZE, "filter size");
_Static_assert(offsetof (rl_filter_t, account_id) == 0, "filter.account_id");
_Static_assert(offsetof (rl_filter_t, timestamp_min) == 16, "filter.timestamp_min");
_Static_assert(offsetof (rl_filter_t, timestamp_max) == 24, "filter.timestamp_max");
_Static_assert(offsetof (rl_filter_t, limit) == 32, "filter.limit");
_Static_assert(offsetof (rl_filter_t, flags) == 36, "filter.flags");
_Static_assert(offsetof (rl_filter_t, reserved) == 40, "filter.reserved");

_Static_assert(sizeof (rl_status_rec_t) == RL_STATUS_SIZE, "status size");
_Static_assert(sizeof (rl_tp_rec_t) == RL_TP_SIZE, "two-phase record size");
_Static_assert(sizeof (rl_prepare_rec_t) == RL_PREPARE_SIZE, "prepare record size");
_Static_assert(sizeof (rl_in_doubt_rec_t) == RL_IN_DOUBT_SIZE, "in-doubt record size");
_Static_assert(sizeof (rl_audit_rec_t) == RL_AUDIT_SIZE, "audit record size");
_Static_assert(offsetof (rl_status_rec_t, name) == 0, "status.name");
_Static_assert(offsetof (rl_status_rec_t, epoch) == 32, "status.epoch");
_Static_assert(offsetof (rl_status_rec_t, accounts) == 40, "status.accounts");
_Static_assert(offsetof (rl_status_rec_t, transfers) == 48, "status.transfers");
_Static_assert(offsetof (rl_status_rec_t, requests) == 56, "status.requests");
_Static_assert(offsetof (rl_status_rec_t, commits) == 64, "status.commits");
_Static_assert(offsetof (rl_status_rec_t, durability) == 72, "status.durability");
_Static_assert(offsetof (rl_status_rec_t, ring_shards) == 76, "status.ring_shards");
_Static_assert(offsetof (rl_status_rec_t, inflight) == 80, "status.inflight");
_Static_assert(offsetof (rl_status_rec_t, in_doubt) == 88, "status.in_doubt");
_Static_assert(offsetof (rl_status_rec_t, last_timestamp) == 96, "status.last_timestamp");
_Static_assert(offsetof (rl_status_rec_t, dropped) == 104, "status.dropped");
_Static_assert(offsetof (rl_status_rec_t, malformed) == 112, "status.malformed");
_Static_assert(offsetof (rl_status_rec_t, wrong_shard) == 120, "status.wrong_shard");
_Static_assert(offsetof (rl_status_rec_t, pid) == 128, "status.pid");
_Static_assert(offsetof (rl_status_rec_t, reserved0) == 132, "status.reserved0");
_Static_assert(offsetof (rl_status_rec_t, uptime_ms) == 136, "status.uptime_ms");
_Static_assert(offsetof (rl_status_rec_t, store_keys_written) == 144, "status.keys");
_Static_assert(offsetof (rl_status_rec_t, store_bytes_written) == 152, "status.bytes");
_Static_assert(offsetof (rl_status_rec_t, wal_bytes) == 160, "status.wal_bytes");
_Static_assert(offsetof (rl_status_rec_t, wal_syncs) == 168, "status.wal_syncs");
_Static_assert(offsetof (rl_status_rec_t, checkpoints) == 176, "status.checkpoints");
_Static_assert(offsetof (rl_status_rec_t, alarms) == 184, "status.alarms");
_Static_assert(offsetof (rl_status_rec_t, reserved) == 192, "status.reserved");

//  The size checks below multiply a count by a record size: no overflow.
_Static_assert((uint64_t) RL_BATCH_RECORDS_MAX *RL_STATUS_SIZE < SIZE_MAX / 2, "no overflow");
_Static_assert(RL_HEADER_SIZE + (uint64_t) RL_RING_BLOB_SIZE_MAX < SIZE_MAX / 2, "no overflow");

//  Little-endian primitives ----------------------------------------------

void
codec_put_u16 (uint8_t *out, uint16_t v)
{
    out[0] = (uint8_t) v;
    out[1] = (uint8_t) (v >> 8);
}

void
codec_put_u32 (uint8_t *out, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t) (v >> (8 * i));
    }
}

void
codec_put_u64 (uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t) (v >> (8 * i));
    }
}

uint16_t
codec_get_u16 (const uint8_t *in)
{
    return (uint16_t) (in[0] | (in[1] << 8));
}

uint32_t
codec_get_u32 (const uint8_t *in)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | in[i];
    }
    return v;
}

uint64_t
codec_get_u64 (const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | in[i];
    }
    return v;
}

void
codec_put_u64_be (uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t) (v >> (56 - 8 * i));
    }
}

uint64_t
codec_get_u64_be (const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

//  Portable field-by-field codecs (used when RL_CODEC_COPY is 0) -----------

#if !RL_CODEC_COPY
static void
s_put_id (uint8_t *out, rl_id_t id)
{
    codec_put_u64 (out, id.lo);
    codec_put_u64 (out + 8, id.hi);
}

static rl_id_t
s_get_id (const uint8_t *in)
{
    rl_id_t id = {.lo = codec_get_u64 (in), .hi = codec_get_u64 (in + 8)};
    return id;
}

static void
s_put_header (const rl_header_t *h, uint8_t *out)
{
    codec_put_u32 (out + 0, h->magic);
    codec_put_u16 (out + 4, h->version);
    codec_put_u16 (out + 6, h->operation);
    codec_put_u64 (out + 8, h->request_id);
    codec_put_u32 (out + 16, h->record_count);
    codec_put_u32 (out + 20, h->status);
    codec_put_u64 (out + 24, h->epoch);
}

static void
s_get_header (const uint8_t *in, rl_header_t *h)
{
    h->magic = codec_get_u32 (in + 0);
    h->version = codec_get_u16 (in + 4);
    h->operation = codec_get_u16 (in + 6);
    h->request_id = codec_get_u64 (in + 8);
    h->record_count = codec_get_u32 (in + 16);
    h->status = codec_get_u32 (in + 20);
    h->epoch = codec_get_u64 (in + 24);
}

static void
s_put_account (const rl_account_t *a, uint8_t *out)
{
    s_put_id (out + 0, a->id);
    codec_put_u64 (out + 16, a->debits_pending);
    codec_put_u64 (out + 24, a->debits_posted);
    codec_put_u64 (out + 32, a->credits_pending);
    codec_put_u64 (out + 40, a->credits_posted);
    codec_put_u64 (out + 48, a->debits_reserved);
    codec_put_u64 (out + 56, a->credits_reserved);
    s_put_id (out + 64, a->user_data_128);
    codec_put_u64 (out + 80, a->user_data_64);
    codec_put_u32 (out + 88, a->user_data_32);
    codec_put_u32 (out + 92, a->ledger);
    codec_put_u16 (out + 96, a->code);
    codec_put_u16 (out + 98, a->flags);
    codec_put_u32 (out + 100, a->reserved);
    codec_put_u64 (out + 104, a->timestamp);
    codec_put_u64 (out + 112, a->reserved2[0]);
    codec_put_u64 (out + 120, a->reserved2[1]);
}

static void
s_get_account (const uint8_t *in, rl_account_t *a)
{
    a->id = s_get_id (in + 0);
    a->debits_pending = codec_get_u64 (in + 16);
    a->debits_posted = codec_get_u64 (in + 24);
    a->credits_pending = codec_get_u64 (in + 32);
    a->credits_posted = codec_get_u64 (in + 40);
    a->debits_reserved = codec_get_u64 (in + 48);
    a->credits_reserved = codec_get_u64 (in + 56);
    a->user_data_128 = s_get_id (in + 64);
    a->user_data_64 = codec_get_u64 (in + 80);
    a->user_data_32 = codec_get_u32 (in + 88);
    a->ledger = codec_get_u32 (in + 92);
    a->code = codec_get_u16 (in + 96);
    a->flags = codec_get_u16 (in + 98);
    a->reserved = codec_get_u32 (in + 100);
    a->timestamp = codec_get_u64 (in + 104);
    a->reserved2[0] = codec_get_u64 (in + 112);
    a->reserved2[1] = codec_get_u64 (in + 120);
}

static void
s_put_transfer (const rl_transfer_t *t, uint8_t *out)
{
    s_put_id (out + 0, t->id);
    s_put_id (out + 16, t->debit_account_id);
    s_put_id (out + 32, t->credit_account_id);
    codec_put_u64 (out + 48, t->amount);
    s_put_id (out + 56, t->pending_id);
    s_put_id (out + 72, t->user_data_128);
    codec_put_u64 (out + 88, t->user_data_64);
    codec_put_u32 (out + 96, t->user_data_32);
    codec_put_u32 (out + 100, t->timeout);
    codec_put_u32 (out + 104, t->ledger);
    codec_put_u16 (out + 108, t->code);
    codec_put_u16 (out + 110, t->flags);
    codec_put_u64 (out + 112, t->timestamp);
    codec_put_u64 (out + 120, t->reserved);
}

static void
s_get_transfer (const uint8_t *in, rl_transfer_t *t)
{
    t->id = s_get_id (in + 0);
    t->debit_account_id = s_get_id (in + 16);
    t->credit_account_id = s_get_id (in + 32);
    t->amount = codec_get_u64 (in + 48);
    t->pending_id = s_get_id (in + 56);
    t->user_data_128 = s_get_id (in + 72);
    t->user_data_64 = codec_get_u64 (in + 88);
    t->user_data_32 = codec_get_u32 (in + 96);
    t->timeout = codec_get_u32 (in + 100);
    t->ledger = codec_get_u32 (in + 104);
    t->code = codec_get_u16 (in + 108);
    t->flags = codec_get_u16 (in + 110);
    t->timestamp = codec_get_u64 (in + 112);
    t->reserved = codec_get_u64 (in + 120);
}

static void
s_put_result (const rl_result_rec_t *r, uint8_t *out)
{
    codec_put_u32 (out + 0, r->index);
    codec_put_u32 (out + 4, r->result);
    codec_put_u64 (out + 8, r->timestamp);
}

static void
s_get_result (const uint8_t *in, rl_result_rec_t *r)
{
    r->index = codec_get_u32 (in + 0);
    r->result = codec_get_u32 (in + 4);
    r->timestamp = codec_get_u64 (in + 8);
}

static void
s_put_filter (const rl_filter_t *f, uint8_t *out)
{
    s_put_id (out + 0, f->account_id);
    codec_put_u64 (out + 16, f->timestamp_min);
    codec_put_u64 (out + 24, f->timestamp_max);
    codec_put_u32 (out + 32, f->limit);
    codec_put_u32 (out + 36, f->flags);
    for (int i = 0; i < 3; i++) {
        codec_put_u64 (out + 40 + 8 * i, f->reserved[i]);
    }
}

static void
s_get_filter (const uint8_t *in, rl_filter_t *f)
{
    f->account_id = s_get_id (in + 0);
    f->timestamp_min = codec_get_u64 (in + 16);
    f->timestamp_max = codec_get_u64 (in + 24);
    f->limit = codec_get_u32 (in + 32);
    f->flags = codec_get_u32 (in + 36);
    for (int i = 0; i < 3; i++) {
        f->reserved[i] = codec_get_u64 (in + 40 + 8 * i);
    }
}

static void
s_put_status (const rl_status_rec_t *s, uint8_t *out)
{
    memcpy (out, s->name, RL_SHARD_NAME_SIZE_MAX);
    codec_put_u64 (out + 32, s->epoch);
    codec_put_u64 (out + 40, s->accounts);
    codec_put_u64 (out + 48, s->transfers);
    codec_put_u64 (out + 56, s->requests);
    codec_put_u64 (out + 64, s->commits);
    codec_put_u32 (out + 72, s->durability);
    codec_put_u32 (out + 76, s->ring_shards);
    codec_put_u64 (out + 80, s->inflight);
    codec_put_u64 (out + 88, s->in_doubt);
    codec_put_u64 (out + 96, s->last_timestamp);
    codec_put_u64 (out + 104, s->dropped);
    codec_put_u64 (out + 112, s->malformed);
    codec_put_u64 (out + 120, s->wrong_shard);
    codec_put_u32 (out + 128, s->pid);
    codec_put_u32 (out + 132, s->reserved0);
    codec_put_u64 (out + 136, s->uptime_ms);
    codec_put_u64 (out + 144, s->store_keys_written);
    codec_put_u64 (out + 152, s->store_bytes_written);
    codec_put_u64 (out + 160, s->wal_bytes);
    codec_put_u64 (out + 168, s->wal_syncs);
    codec_put_u64 (out + 176, s->checkpoints);
    codec_put_u64 (out + 184, s->alarms);
    for (int i = 0; i < 8; i++) {
        codec_put_u64 (out + 192 + 8 * i, s->reserved[i]);
    }
}

static void
s_get_status (const uint8_t *in, rl_status_rec_t *s)
{
    memcpy (s->name, in, RL_SHARD_NAME_SIZE_MAX);
    s->epoch = codec_get_u64 (in + 32);
    s->accounts = codec_get_u64 (in + 40);
    s->transfers = codec_get_u64 (in + 48);
    s->requests = codec_get_u64 (in + 56);
    s->commits = codec_get_u64 (in + 64);
    s->durability = codec_get_u32 (in + 72);
    s->ring_shards = codec_get_u32 (in + 76);
    s->inflight = codec_get_u64 (in + 80);
    s->in_doubt = codec_get_u64 (in + 88);
    s->last_timestamp = codec_get_u64 (in + 96);
    s->dropped = codec_get_u64 (in + 104);
    s->malformed = codec_get_u64 (in + 112);
    s->wrong_shard = codec_get_u64 (in + 120);
    s->pid = codec_get_u32 (in + 128);
    s->reserved0 = codec_get_u32 (in + 132);
    s->uptime_ms = codec_get_u64 (in + 136);
    s->store_keys_written = codec_get_u64 (in + 144);
    s->store_bytes_written = codec_get_u64 (in + 152);
    s->wal_bytes = codec_get_u64 (in + 160);
    s->wal_syncs = codec_get_u64 (in + 168);
    s->checkpoints = codec_get_u64 (in + 176);
    s->alarms = codec_get_u64 (in + 184);
    for (int i = 0; i < 8; i++) {
        s->reserved[i] = codec_get_u64 (in + 192 + 8 * i);
    }
}
#endif

//  Public record codecs: one memcpy on little-endian hosts -----------------
//  RL_CODEC_DEFINE (name, type, size) defines codec_encode_<name> and
//  codec_decode_<name>, on top of memcpy or of s_put_<name> / s_get_<name>.

#if RL_CODEC_COPY
#define RL_CODEC_PUT(name, rec, out, size) memcpy (out, rec, size)
#define RL_CODEC_GET(name, in, rec, size)  memcpy (rec, in, size)
#else
#define RL_CODEC_PUT(name, rec, out, size) s_put_##name (rec, out)
#define RL_CODEC_GET(name, in, rec, size)  s_get_##name (in, rec)
#endif

#define RL_CODEC_DEFINE(name, type, size)                                                          \
    void codec_encode_##name (const type *rec, uint8_t *out)                                       \
    {                                                                                              \
        assert (rec);                                                                              \
        assert (out);                                                                              \
        RL_CODEC_PUT (name, rec, out, size);                                                       \
    }                                                                                              \
    void codec_decode_##name (const uint8_t *in, type *rec)                                        \
    {                                                                                              \
        assert (in);                                                                               \
        assert (rec);                                                                              \
        RL_CODEC_GET (name, in, rec, size);                                                        \
    }

RL_CODEC_DEFINE (header, rl_header_t, RL_HEADER_SIZE)
RL_CODEC_DEFINE (account, rl_account_t, RL_ACCOUNT_SIZE)
RL_CODEC_DEFINE (transfer, rl_transfer_t, RL_TRANSFER_SIZE)
RL_CODEC_DEFINE (result, rl_result_rec_t, RL_RESULT_SIZE)
RL_CODEC_DEFINE (filter, rl_filter_t, RL_FILTER_SIZE)

void
codec_encode_status (const rl_status_rec_t *status, uint8_t *out)
{
    assert (status);
    assert (out);
    assert (memchr (status->name, '\0', RL_SHARD_NAME_SIZE_MAX));
#if RL_CODEC_COPY
    memcpy (out, status, RL_STATUS_SIZE);
#else
    s_put_status (status, out);
#endif
}

void
codec_decode_status (const uint8_t *in, rl_status_rec_t *status)
{
    assert (in);
    assert (status);
#if RL_CODEC_COPY
    memcpy (status, in, RL_STATUS_SIZE);
#else
    s_get_status (in, status);
#endif
    //  Bytes from the network: the name is a C string after this.
    status->name[RL_SHARD_NAME_SIZE_MAX - 1] = '\0';
}

void
codec_encode_id (rl_id_t id, uint8_t *out)
{
    assert (out);
#if RL_CODEC_COPY
    memcpy (out, &id, RL_ID_SIZE);
#else
    s_put_id (out, id);
#endif
}

rl_id_t
codec_decode_id (const uint8_t *in)
{
    assert (in);
#if RL_CODEC_COPY
    rl_id_t id;
    memcpy (&id, in, RL_ID_SIZE);
    return id;
#else
    return s_get_id (in);
#endif
}

//  Operations and their record sizes ---------------------------------------

bool
codec_op_is_known (uint32_t op)
{
    return (op >= RL_OP_CREATE_ACCOUNTS && op <= RL_OP_GET_RING) || op == RL_OP_PREPARE
           || op == RL_OP_DECIDE || op == RL_OP_OUTCOME_QUERY || op == RL_OP_IN_DOUBT
           || op == RL_OP_AUDIT || op == RL_OP_RESOLVE;
}

size_t
codec_request_record_size (uint32_t op)
{
    switch (op) {
        case RL_OP_CREATE_ACCOUNTS:
            return RL_ACCOUNT_SIZE;
        case RL_OP_CREATE_TRANSFERS:
            return RL_TRANSFER_SIZE;
        case RL_OP_LOOKUP_ACCOUNTS:
        case RL_OP_LOOKUP_TRANSFERS:
            return RL_ID_SIZE;
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            return RL_FILTER_SIZE;
        case RL_OP_LOAD_RING:
            return RL_BLOB;
        case RL_OP_PREPARE:
            return RL_PREPARE_SIZE;
        case RL_OP_DECIDE:
        case RL_OP_OUTCOME_QUERY:
        case RL_OP_RESOLVE:
            return RL_TP_SIZE;
        default:
            return 0; //  status, get_ring: empty; unknown operations
    }
}

size_t
codec_reply_record_size (uint32_t op)
{
    switch (op) {
        case RL_OP_CREATE_ACCOUNTS:
        case RL_OP_CREATE_TRANSFERS:
            return RL_RESULT_SIZE;
        case RL_OP_LOOKUP_ACCOUNTS:
            return RL_ACCOUNT_SIZE;
        case RL_OP_LOOKUP_TRANSFERS:
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            return RL_TRANSFER_SIZE;
        case RL_OP_STATUS:
            return RL_STATUS_SIZE;
        case RL_OP_GET_RING:
            return RL_BLOB;
        case RL_OP_PREPARE:
        case RL_OP_DECIDE:
        case RL_OP_OUTCOME_QUERY:
        case RL_OP_RESOLVE:
            return RL_TP_SIZE;
        case RL_OP_IN_DOUBT:
            return RL_IN_DOUBT_SIZE;
        case RL_OP_AUDIT:
            return RL_AUDIT_SIZE;
        default:
            return 0; //  load_ring: empty; unknown operations
    }
}

//  Frame checks -------------------------------------------------------------

//  Reads the header if there is one; zeroes it otherwise.
static bool
s_read_header (const uint8_t *frame, size_t size, rl_header_t *header)
{
    if (size < RL_HEADER_SIZE) {
        memset (header, 0, sizeof *header);
        return false;
    }
    codec_decode_header (frame, header);
    return true;
}

//  The checks that follow the header: limits, body size, and the count
//  rule of the operation. record_size and count_* come from the caller,
//  which knows whether this is a request or a reply.
static rl_status_t
s_check_body (const rl_header_t *header, size_t size, size_t record_size, uint32_t count_min,
              uint32_t count_max)
{
    size_t body_size = size - RL_HEADER_SIZE;
    bool is_blob = record_size == RL_BLOB;
    size_t frame_size_max = is_blob ? RL_HEADER_SIZE + (size_t) RL_RING_BLOB_SIZE_MAX
                                    : (size_t) RL_MESSAGE_SIZE_MAX;
    if (header->record_count > RL_BATCH_RECORDS_MAX || size > frame_size_max) {
        return RL_STATUS_TOO_MANY_RECORDS;
    }
    if (is_blob) {
        //  One opaque record that fills the body; its format is not ours.
        if (header->record_count != 1 || body_size == 0) {
            return RL_STATUS_MALFORMED;
        }
        return RL_STATUS_OK;
    }
    if (body_size != (size_t) header->record_count * record_size) {
        return RL_STATUS_MALFORMED;
    }
    if (header->record_count < count_min || header->record_count > count_max) {
        return RL_STATUS_MALFORMED;
    }
    return RL_STATUS_OK;
}

rl_status_t
codec_check_request (const uint8_t *frame, size_t size, rl_header_t *header)
{
    assert (frame || size == 0);
    assert (header);
    if (!s_read_header (frame, size, header)) {
        return RL_STATUS_MALFORMED;
    }
    if (header->magic != RL_MAGIC) {
        return RL_STATUS_BAD_MAGIC;
    }
    if (header->version != RL_VERSION) {
        return RL_STATUS_BAD_VERSION;
    }
    if (!codec_op_is_known (header->operation)) {
        return RL_STATUS_UNKNOWN_OPERATION;
    }
    if (header->status != 0 || header->epoch != 0) {
        return RL_STATUS_MALFORMED;
    }
    uint32_t count_min = 0;
    uint32_t count_max = RL_BATCH_RECORDS_MAX;
    switch (header->operation) {
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            count_min = count_max = 1;
            break;
        case RL_OP_STATUS:
        case RL_OP_GET_RING:
            count_max = 0;
            break;
        default:
            break; //  creates and lookups: 0..max (an empty batch, an empty reply)
    }
    return s_check_body (header, size, codec_request_record_size (header->operation), count_min,
                         count_max);
}

rl_status_t
codec_check_reply (const uint8_t *frame, size_t size, rl_header_t *header)
{
    assert (frame || size == 0);
    assert (header);
    if (!s_read_header (frame, size, header)) {
        return RL_STATUS_MALFORMED;
    }
    if (header->magic != RL_MAGIC) {
        return RL_STATUS_BAD_MAGIC;
    }
    if (header->version != RL_VERSION) {
        return RL_STATUS_BAD_VERSION;
    }
    if (header->status != RL_STATUS_OK) {
        //  An error reply echoes whatever operation the request carried.
        bool is_defined = header->status <= RL_STATUS_LAST;
        bool is_bare = header->record_count == 0 && size == RL_HEADER_SIZE;
        return is_defined && is_bare ? RL_STATUS_OK : RL_STATUS_MALFORMED;
    }
    if (!codec_op_is_known (header->operation)) {
        return RL_STATUS_UNKNOWN_OPERATION;
    }
    uint32_t count_min = 0;
    uint32_t count_max = RL_BATCH_RECORDS_MAX;
    switch (header->operation) {
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            count_max = RL_HISTORY_LIMIT_MAX;
            break;
        case RL_OP_STATUS:
            count_min = count_max = 1;
            break;
        case RL_OP_LOAD_RING:
            count_max = 0;
            break;
        default:
            break; //  creates and lookups: one per request record, 0..max
    }
    return s_check_body (header, size, codec_reply_record_size (header->operation), count_min,
                         count_max);
}

//  Two-phase records -------------------------------------------------------------

void
codec_encode_tp (const rl_tp_rec_t *tp, uint8_t *out)
{
    assert (tp && out);
    codec_encode_id (tp->id, out);
    codec_put_u64 (out + 16, tp->attempt.counter);
    codec_put_u64 (out + 24, tp->attempt.nonce);
    codec_put_u64 (out + 32, tp->attempt.seq);
    codec_put_u32 (out + 40, tp->state);
    codec_put_u32 (out + 44, tp->result);
    memcpy (out + 48, tp->coordinator, RL_SHARD_NAME_SIZE_MAX);
    codec_put_u64 (out + 80, tp->amount);
    codec_put_u64 (out + 88, tp->timestamp);
    codec_encode_id (tp->debit_account_id, out + 96);
}

void
codec_decode_tp (const uint8_t *in, rl_tp_rec_t *tp)
{
    assert (in && tp);
    tp->id = codec_decode_id (in);
    tp->attempt.counter = codec_get_u64 (in + 16);
    tp->attempt.nonce = codec_get_u64 (in + 24);
    tp->attempt.seq = codec_get_u64 (in + 32);
    tp->state = codec_get_u32 (in + 40);
    tp->result = codec_get_u32 (in + 44);
    memcpy (tp->coordinator, in + 48, RL_SHARD_NAME_SIZE_MAX);
    tp->coordinator[RL_SHARD_NAME_SIZE_MAX - 1] = '\0';
    tp->amount = codec_get_u64 (in + 80);
    tp->timestamp = codec_get_u64 (in + 88);
    tp->debit_account_id = codec_decode_id (in + 96);
}

void
codec_encode_prepare (const rl_prepare_rec_t *prepare, uint8_t *out)
{
    assert (prepare && out);
    codec_encode_transfer (&prepare->transfer, out);
    codec_encode_tp (&prepare->tp, out + RL_TRANSFER_SIZE);
    for (int i = 0; i < 2; i++) {
        codec_put_u64 (out + RL_TRANSFER_SIZE + RL_TP_SIZE + 8 * i, prepare->reserved[i]);
    }
}

void
codec_decode_prepare (const uint8_t *in, rl_prepare_rec_t *prepare)
{
    assert (in && prepare);
    codec_decode_transfer (in, &prepare->transfer);
    codec_decode_tp (in + RL_TRANSFER_SIZE, &prepare->tp);
    for (int i = 0; i < 2; i++) {
        prepare->reserved[i] = codec_get_u64 (in + RL_TRANSFER_SIZE + RL_TP_SIZE + 8 * i);
    }
}

void
codec_encode_in_doubt (const rl_in_doubt_rec_t *rec, uint8_t *out)
{
    assert (rec && out);
    codec_encode_prepare (&rec->prepare, out);
    memcpy (out + RL_PREPARE_SIZE, rec->peer, RL_SHARD_NAME_SIZE_MAX);
}

void
codec_decode_in_doubt (const uint8_t *in, rl_in_doubt_rec_t *rec)
{
    assert (in && rec);
    codec_decode_prepare (in, &rec->prepare);
    memcpy (rec->peer, in + RL_PREPARE_SIZE, RL_SHARD_NAME_SIZE_MAX);
    rec->peer[RL_SHARD_NAME_SIZE_MAX - 1] = '\0';
}

void
codec_encode_audit (const rl_audit_rec_t *rec, uint8_t *out)
{
    assert (rec && out);
    codec_put_u32 (out, rec->ok);
    codec_put_u32 (out + 4, rec->reserved0);
    codec_put_u64 (out + 8, rec->accounts);
    codec_put_u64 (out + 16, rec->live);
    codec_put_u64 (out + 24, rec->prepared);
    memcpy (out + 32, rec->message, sizeof (rec->message));
}

void
codec_decode_audit (const uint8_t *in, rl_audit_rec_t *rec)
{
    assert (in && rec);
    rec->ok = codec_get_u32 (in);
    rec->reserved0 = codec_get_u32 (in + 4);
    rec->accounts = codec_get_u64 (in + 8);
    rec->live = codec_get_u64 (in + 16);
    rec->prepared = codec_get_u64 (in + 24);
    memcpy (rec->message, in + 32, sizeof (rec->message));
    rec->message[sizeof (rec->message) - 1] = '\0';
}
