/*  chunk.c: the bytes of a migration chunk (chunk.h has the layout).

    INVARIANTS
    1. chunk_decode reads nothing outside [in, in + size) and accepts only
       a chunk whose size is exactly its header plus entry_count entries.
    2. A decoded chunk's entries are well formed on their own: chunk_entry
       never meets an unknown kind, a zero or all-ones id, a zero
       timestamp or origin, a leg outside 0..2, or a pending transfer
       without the pending flag, a state 1..4 and a side 0..2.
    3. Encoding then decoding gives the same chunk (tests/fuzz/fuzz_chunk.c).
*/
#include "chunk.h"

#include <assert.h>
#include <string.h>

#include "codec.h"

#define S_CURSOR_SIZE 64
#define S_LEG_MAX     2 //  journal.h: both, debit, credit

_Static_assert(32 + 2 * S_CURSOR_SIZE + 8 == RL_MIGRATE_CHUNK_HEADER, "chunk header layout");
_Static_assert(16 + RL_TRANSFER_SIZE == RL_MIGRATE_ENTRY_SIZE, "entry layout");
_Static_assert(RL_ACCOUNT_SIZE == RL_TRANSFER_SIZE, "one entry size for both kinds");

size_t
chunk_size (uint32_t count)
{
    return RL_MIGRATE_CHUNK_HEADER + (size_t) count * RL_MIGRATE_ENTRY_SIZE;
}

void
chunk_put_cursor (uint8_t *out, const rl_migrate_cursor_t *c)
{
    codec_put_u32 (out, c->phase);
    codec_put_u32 (out + 4, c->round);
    codec_put_u64 (out + 8, c->ts);
    memcpy (out + 16, c->imported_key, sizeof (c->imported_key));
    memcpy (out + 48, c->account_key, sizeof (c->account_key));
}

void
chunk_get_cursor (const uint8_t *in, rl_migrate_cursor_t *c)
{
    c->phase = codec_get_u32 (in);
    c->round = codec_get_u32 (in + 4);
    c->ts = codec_get_u64 (in + 8);
    memcpy (c->imported_key, in + 16, sizeof (c->imported_key));
    memcpy (c->account_key, in + 48, sizeof (c->account_key));
}

bool
chunk_cursor_eq (const rl_migrate_cursor_t *a, const rl_migrate_cursor_t *b)
{
    return a->phase == b->phase && a->round == b->round && a->ts == b->ts
           && memcmp (a->imported_key, b->imported_key, sizeof (a->imported_key)) == 0
           && memcmp (a->account_key, b->account_key, sizeof (a->account_key)) == 0;
}

void
chunk_encode_header (const chunk_t *chunk, uint8_t *out)
{
    assert (chunk && out);
    assert (chunk->entry_count <= RL_MIGRATE_ENTRIES_MAX);
    assert ((chunk->flags & ~RL_CHUNK_FINAL) == 0);
    memset (out, 0, RL_MIGRATE_CHUNK_HEADER);
    codec_put_u32 (out, RL_CHUNK_MAGIC);
    codec_put_u32 (out + 4, RL_CHUNK_VERSION);
    codec_put_u64 (out + 8, chunk->migration_id);
    codec_put_u64 (out + 16, chunk->seq);
    codec_put_u32 (out + 24, chunk->entry_count);
    codec_put_u32 (out + 28, chunk->flags);
    chunk_put_cursor (out + 32, &chunk->from);
    chunk_put_cursor (out + 96, &chunk->to);
}

void
chunk_put_entry (uint8_t *out, uint32_t index, const chunk_entry_t *entry)
{
    assert (out && entry);
    assert (entry->kind == RL_CHUNK_TRANSFER || entry->kind == RL_CHUNK_ACCOUNT
            || entry->kind == RL_CHUNK_PENDING);
    uint8_t *e = out + chunk_size (index);
    memset (e, 0, 16);
    e[0] = (uint8_t) entry->kind;
    codec_put_u64 (e + 8, entry->origin);
    if (entry->kind == RL_CHUNK_TRANSFER || entry->kind == RL_CHUNK_PENDING) {
        codec_encode_transfer (&entry->transfer, e + 16);
    } else {
        codec_encode_account (&entry->account, e + 16);
    }
}

static bool
s_usable (rl_id_t id)
{
    return !rl_id_is_zero (id) && !rl_id_is_max (id);
}

static bool
s_zero (const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

//  Invariant 2 for one entry in wire form.
static bool
s_entry_valid (const uint8_t *e)
{
    if (!s_zero (e + 1, 7)) {
        return false;
    }
    uint64_t origin = codec_get_u64 (e + 8);
    if (e[0] == RL_CHUNK_TRANSFER) {
        rl_transfer_t t;
        codec_decode_transfer (e + 16, &t);
        uint32_t leg = (uint32_t) ((t.reserved >> 32) & 0xff);
        return origin != 0 && s_usable (t.id) && s_usable (t.debit_account_id)
               && s_usable (t.credit_account_id) && t.timestamp != 0 && leg <= S_LEG_MAX
               && (t.reserved >> 40) == 0;
    }
    if (e[0] == RL_CHUNK_PENDING) {
        //  As the source's pending table holds it: a state 1..4 (pending,
        //  posted, voided, expired), a side 0..2, nothing else in `reserved`.
        rl_transfer_t t;
        codec_decode_transfer (e + 16, &t);
        uint64_t state = t.reserved & 0xff;
        return origin == 0 && s_usable (t.id) && s_usable (t.debit_account_id)
               && s_usable (t.credit_account_id) && t.timestamp != 0 && t.amount != 0
               && (t.flags & RL_TRANSFER_PENDING) && state >= 1 && state <= 4
               && ((t.reserved >> 8) & 0xff) <= 2 && (t.reserved >> 16) == 0
               && !rl_id_eq (t.debit_account_id, t.credit_account_id);
    }
    if (e[0] == RL_CHUNK_ACCOUNT) {
        rl_account_t a;
        codec_decode_account (e + 16, &a);
        return origin == 0 && s_usable (a.id) && a.timestamp != 0;
    }
    return false;
}

rl_status_t
chunk_decode (const uint8_t *in, size_t size, chunk_t *chunk)
{
    assert (in || size == 0);
    assert (chunk);
    memset (chunk, 0, sizeof (*chunk));
    if (size < RL_MIGRATE_CHUNK_HEADER) {
        return RL_STATUS_MALFORMED;
    }
    uint32_t count = codec_get_u32 (in + 24);
    if (codec_get_u32 (in) != RL_CHUNK_MAGIC || codec_get_u32 (in + 4) != RL_CHUNK_VERSION
        || (codec_get_u32 (in + 28) & ~RL_CHUNK_FINAL) != 0 || codec_get_u64 (in + 160) != 0) {
        return RL_STATUS_MALFORMED;
    }
    if (count > RL_MIGRATE_ENTRIES_MAX) {
        return RL_STATUS_TOO_MANY_RECORDS;
    }
    if (size != chunk_size (count)) {
        return RL_STATUS_MALFORMED;
    }
    rl_migrate_cursor_t from, to;
    chunk_get_cursor (in + 32, &from);
    chunk_get_cursor (in + 96, &to);
    uint64_t migration_id = codec_get_u64 (in + 8);
    uint64_t seq = codec_get_u64 (in + 16);
    if (migration_id == 0 || seq == 0 || from.phase > RL_MIGRATE_PHASE_MAX
        || to.phase > RL_MIGRATE_PHASE_MAX) {
        return RL_STATUS_MALFORMED;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!s_entry_valid (in + chunk_size (i))) {
            return RL_STATUS_MALFORMED;
        }
    }
    chunk->migration_id = migration_id;
    chunk->seq = seq;
    chunk->entry_count = count;
    chunk->flags = codec_get_u32 (in + 28);
    chunk->from = from;
    chunk->to = to;
    chunk->entries = in + RL_MIGRATE_CHUNK_HEADER;
    return RL_STATUS_OK;
}

void
chunk_entry (const chunk_t *chunk, uint32_t index, chunk_entry_t *entry)
{
    assert (chunk && entry && index < chunk->entry_count);
    const uint8_t *e = chunk->entries + (size_t) index * RL_MIGRATE_ENTRY_SIZE;
    memset (entry, 0, sizeof (*entry));
    entry->kind = e[0];
    entry->origin = codec_get_u64 (e + 8);
    if (entry->kind == RL_CHUNK_TRANSFER || entry->kind == RL_CHUNK_PENDING) {
        codec_decode_transfer (e + 16, &entry->transfer);
    } else {
        codec_decode_account (e + 16, &entry->account);
    }
}
