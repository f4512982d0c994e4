/*  codec.c: bytes on the wire <-> records in memory.

    DESIGN
    Every record on the wire is the struct of proto.h laid out at its natural
    offsets, little-endian, with no padding. One table per record
    (S_ACCOUNT_FIELDS, ...) lists each field with its wire offset, once;
    from the tables come the _Static_asserts that pin each offset and each
    size (a field moved in proto.h breaks the build rather than the
    protocol) and the portable codecs.

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
       except the status name, which decode always NUL-terminates, and
       invariant 5.
    3. codec_check_* visit the header only, O(1) per frame, whatever its
       size; except for the two-phase operations (invariant 5), whose
       records they visit once each.
    4. The header size and the wire offsets are known here only: programs
       go through the frame and placement helpers (codec.h).
    5. A well-formed frame of a two-phase operation (prepare, decide,
       outcome_query, resolve; request or reply) names no transfer by the
       zero or the all-ones id; a PREPARE also names no such account, moves
       a non-zero amount (but a post or void with a leg bit, which
       travels as the client gave it: its amount may be zero, and with
       both legs its credit account too), and has no unknown flag and no
       non-zero reserved field (reserved, the record's reserved words),
       and the pending fields of its kind only (docs/payments.md, "Pending
       transfers across shards"): at most one of pending, post and void,
       beside at most a debit leg, both legs, or both leg bits (a credit
       leg on a third shard) (docs/two-phase.md, "Debit legs" and "Post
       legs": the two leg flags are known in a PREPARE only); a timeout
       only on a pending transfer;
       a pending_id (usable, not the transfer's own) exactly on a post or
       void.
       A peer that sends one gets `malformed` for the whole frame: no
       record of it reaches the ledger. (Client creates keep their result
       codes per record: they are checked by the shard.)

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

//  The wire layout: one table per record -----------------------------------
//  X (type, field, offset, kind): each field of a record, at its wire
//  offset, written once. The pins, the portable codecs and the placement
//  helpers below are all generated from these rows. kind says how the
//  field goes on the wire: U16, U32, U64 (little-endian), ID (lo then hi),
//  U64S (an array of u64), BYTES (a char array, as is), or a nested record
//  (TRANSFER, TP, PREPARE).

// clang-format off
#define S_HEADER_FIELDS(X, T)                                                                      \
    X (T, magic, 0, U32)                                                                           \
    X (T, version, 4, U16)                                                                         \
    X (T, operation, 6, U16)                                                                       \
    X (T, request_id, 8, U64)                                                                      \
    X (T, record_count, 16, U32)                                                                   \
    X (T, status, 20, U32)                                                                         \
    X (T, epoch, 24, U64)

#define S_ACCOUNT_FIELDS(X, T)                                                                     \
    X (T, id, 0, ID)                                                                               \
    X (T, debits_pending, 16, U64)                                                                 \
    X (T, debits_posted, 24, U64)                                                                  \
    X (T, credits_pending, 32, U64)                                                                \
    X (T, credits_posted, 40, U64)                                                                 \
    X (T, debits_reserved, 48, U64)                                                                \
    X (T, credits_reserved, 56, U64)                                                               \
    X (T, user_data_128, 64, ID)                                                                   \
    X (T, user_data_64, 80, U64)                                                                   \
    X (T, user_data_32, 88, U32)                                                                   \
    X (T, ledger, 92, U32)                                                                         \
    X (T, code, 96, U16)                                                                           \
    X (T, flags, 98, U16)                                                                          \
    X (T, reserved, 100, U32)                                                                      \
    X (T, timestamp, 104, U64)                                                                     \
    X (T, reserved2, 112, U64S)

#define S_TRANSFER_FIELDS(X, T)                                                                    \
    X (T, id, 0, ID)                                                                               \
    X (T, debit_account_id, 16, ID)                                                                \
    X (T, credit_account_id, 32, ID)                                                               \
    X (T, amount, 48, U64)                                                                         \
    X (T, pending_id, 56, ID)                                                                      \
    X (T, user_data_128, 72, ID)                                                                   \
    X (T, user_data_64, 88, U64)                                                                   \
    X (T, user_data_32, 96, U32)                                                                   \
    X (T, timeout, 100, U32)                                                                       \
    X (T, ledger, 104, U32)                                                                        \
    X (T, code, 108, U16)                                                                          \
    X (T, flags, 110, U16)                                                                         \
    X (T, timestamp, 112, U64)                                                                     \
    X (T, reserved, 120, U64)

#define S_RESULT_FIELDS(X, T)                                                                      \
    X (T, index, 0, U32)                                                                           \
    X (T, result, 4, U32)                                                                          \
    X (T, timestamp, 8, U64)

#define S_FILTER_FIELDS(X, T)                                                                      \
    X (T, account_id, 0, ID)                                                                       \
    X (T, timestamp_min, 16, U64)                                                                  \
    X (T, timestamp_max, 24, U64)                                                                  \
    X (T, limit, 32, U32)                                                                          \
    X (T, flags, 36, U32)                                                                          \
    X (T, reserved, 40, U64S)

#define S_STATUS_FIELDS(X, T)                                                                      \
    X (T, name, 0, BYTES)                                                                          \
    X (T, epoch, 32, U64)                                                                          \
    X (T, accounts, 40, U64)                                                                       \
    X (T, transfers, 48, U64)                                                                      \
    X (T, requests, 56, U64)                                                                       \
    X (T, commits, 64, U64)                                                                        \
    X (T, durability, 72, U32)                                                                     \
    X (T, ring_shards, 76, U32)                                                                    \
    X (T, inflight, 80, U64)                                                                       \
    X (T, in_doubt, 88, U64)                                                                       \
    X (T, last_timestamp, 96, U64)                                                                 \
    X (T, dropped, 104, U64)                                                                       \
    X (T, malformed, 112, U64)                                                                     \
    X (T, wrong_shard, 120, U64)                                                                   \
    X (T, pid, 128, U32)                                                                           \
    X (T, state, 132, U32)                                                                         \
    X (T, uptime_ms, 136, U64)                                                                     \
    X (T, store_keys_written, 144, U64)                                                            \
    X (T, store_bytes_written, 152, U64)                                                           \
    X (T, wal_bytes, 160, U64)                                                                     \
    X (T, wal_syncs, 168, U64)                                                                     \
    X (T, checkpoints, 176, U64)                                                                   \
    X (T, alarms, 184, U64)                                                                        \
    X (T, deadline_ms, 192, U32)                                                                   \
    X (T, prepare_timeout_ms, 196, U32)                                                            \
    X (T, deadline_errors, 200, U64)                                                               \
    X (T, arcs_unreceived, 208, U64)                                                               \
    X (T, insecure, 216, U32)                                                                      \
    X (T, keys, 220, U32)                                                                          \
    X (T, handshakes_refused, 224, U64)                                                            \
    X (T, unauthorized, 232, U64)                                                                  \
    X (T, epoch_jumps_refused, 240, U64)                                                           \
    X (T, turn_p99_us, 248, U32)                                                                   \
    X (T, in_doubt_oldest_ms, 252, U32)

#define S_TP_FIELDS(X, T)                                                                          \
    X (T, id, 0, ID)                                                                               \
    X (T, attempt.counter, 16, U64)                                                                \
    X (T, attempt.nonce, 24, U64)                                                                  \
    X (T, attempt.seq, 32, U64)                                                                    \
    X (T, state, 40, U32)                                                                          \
    X (T, result, 44, U32)                                                                         \
    X (T, coordinator, 48, BYTES)                                                                  \
    X (T, amount, 80, U64)                                                                         \
    X (T, timestamp, 88, U64)                                                                      \
    X (T, debit_account_id, 96, ID)

#define S_PREPARE_FIELDS(X, T)                                                                     \
    X (T, transfer, 0, TRANSFER)                                                                   \
    X (T, tp, 128, TP)                                                                             \
    X (T, reserved, 240, U64S)

#define S_IN_DOUBT_FIELDS(X, T)                                                                    \
    X (T, prepare, 0, PREPARE)                                                                     \
    X (T, peer, 256, BYTES)

#define S_AUDIT_FIELDS(X, T)                                                                       \
    X (T, ok, 0, U32)                                                                              \
    X (T, reserved0, 4, U32)                                                                       \
    X (T, accounts, 8, U64)                                                                        \
    X (T, live, 16, U64)                                                                           \
    X (T, prepared, 24, U64)                                                                       \
    X (T, message, 32, BYTES)

#define S_MIGRATE_FIELDS(X, T)                                                                     \
    X (T, migration_id, 0, U64)                                                                    \
    X (T, arc_start, 8, U64)                                                                       \
    X (T, arc_end, 16, U64)                                                                        \
    X (T, role, 24, U32)                                                                           \
    X (T, state, 28, U32)                                                                          \
    X (T, source, 32, BYTES)                                                                       \
    X (T, target, 64, BYTES)                                                                       \
    X (T, cursor.phase, 96, U32)                                                                   \
    X (T, cursor.round, 100, U32)                                                                  \
    X (T, cursor.ts, 104, U64)                                                                     \
    X (T, cursor.imported_key, 112, BYTES)                                                         \
    X (T, cursor.account_key, 144, BYTES)                                                          \
    X (T, chunks, 160, U64)                                                                        \
    X (T, records, 168, U64)                                                                       \
    X (T, accounts, 176, U64)                                                                      \
    X (T, entries_max, 184, U32)                                                                   \
    X (T, param, 188, U32)

#define S_EVENTS_REQ_FIELDS(X, T)                                                                  \
    X (T, incarnation, 0, U64)                                                                     \
    X (T, nonce, 8, U64)                                                                           \
    X (T, timestamp, 16, U64)                                                                      \
    X (T, limit, 24, U32)                                                                          \
    X (T, flags, 28, U32)                                                                          \
    X (T, reserved, 32, U64S)

#define S_EVENT_FIELDS(X, T)                                                                       \
    X (T, transfer, 0, TRANSFER)                                                                   \
    X (T, incarnation, 128, U64)                                                                   \
    X (T, nonce, 136, U64)                                                                         \
    X (T, result, 144, U32)                                                                        \
    X (T, leg, 148, U32)                                                                           \
    X (T, reserved, 152, U64)

#define S_BACKUP_FIELDS(X, T)                                                                      \
    X (T, token, 0, U64)                                                                           \
    X (T, hold_ms, 8, U32)                                                                         \
    X (T, state, 12, U32)                                                                          \
    X (T, result, 16, U32)                                                                         \
    X (T, backup_id, 20, U32)                                                                      \
    X (T, accounts, 24, U64)                                                                       \
    X (T, transfers, 32, U64)                                                                      \
    X (T, last_timestamp, 40, U64)                                                                 \
    X (T, epoch, 48, U64)                                                                          \
    X (T, held_us, 56, U64)                                                                        \
    X (T, cut_us, 64, U64)                                                                         \
    X (T, copy_ms, 72, U64)                                                                        \
    X (T, files, 80, U64)                                                                          \
    X (T, bytes, 88, U64)                                                                          \
    X (T, new_bytes, 96, U64)                                                                      \
    X (T, reserved, 104, U64)                                                                      \
    X (T, dir, 112, BYTES)                                                                         \
    X (T, message, 368, BYTES)

#define S_REPL_FIELDS(X, T)                                                                        \
    X (T, role, 0, U32)                                                                            \
    X (T, state, 4, U32)                                                                           \
    X (T, stream, 8, U64)                                                                          \
    X (T, position, 16, U64)                                                                       \
    X (T, quorum_position, 24, U64)                                                                \
    X (T, quorum, 32, U32)                                                                         \
    X (T, standbys, 36, U32)                                                                       \
    X (T, incarnation, 40, U64)                                                                    \
    X (T, nonce, 48, U64)                                                                          \
    X (T, lease_ms, 56, U64)                                                                       \
    X (T, mode, 64, U32)                                                                           \
    X (T, flags, 68, U32)                                                                          \
    X (T, timeout_ms, 72, U64)                                                                     \
    X (T, reserved, 80, U64S)                                                                      \
    X (T, endpoint, 128, BYTES)

//  R (name, type, wire size, fields): every record, nested ones first.
#define S_RECORDS(R)                                                                               \
    R (header, rl_header_t, RL_HEADER_SIZE, S_HEADER_FIELDS)                                       \
    R (account, rl_account_t, RL_ACCOUNT_SIZE, S_ACCOUNT_FIELDS)                                   \
    R (transfer, rl_transfer_t, RL_TRANSFER_SIZE, S_TRANSFER_FIELDS)                               \
    R (result, rl_result_rec_t, RL_RESULT_SIZE, S_RESULT_FIELDS)                                   \
    R (filter, rl_filter_t, RL_FILTER_SIZE, S_FILTER_FIELDS)                                       \
    R (status, rl_status_rec_t, RL_STATUS_SIZE, S_STATUS_FIELDS)                                   \
    R (tp, rl_tp_rec_t, RL_TP_SIZE, S_TP_FIELDS)                                                   \
    R (prepare, rl_prepare_rec_t, RL_PREPARE_SIZE, S_PREPARE_FIELDS)                               \
    R (in_doubt, rl_in_doubt_rec_t, RL_IN_DOUBT_SIZE, S_IN_DOUBT_FIELDS)                           \
    R (audit, rl_audit_rec_t, RL_AUDIT_SIZE, S_AUDIT_FIELDS)                                       \
    R (migrate, rl_migrate_rec_t, RL_MIGRATE_SIZE, S_MIGRATE_FIELDS)                               \
    R (events_req, rl_events_req_t, RL_EVENTS_REQ_SIZE, S_EVENTS_REQ_FIELDS)                       \
    R (event, rl_event_t, RL_EVENT_SIZE, S_EVENT_FIELDS)                                           \
    R (backup, rl_backup_rec_t, RL_BACKUP_SIZE, S_BACKUP_FIELDS)                                   \
    R (repl, rl_repl_rec_t, RL_REPL_SIZE, S_REPL_FIELDS)
// clang-format on

//  Layout pins: wire offset == struct offset, and the fields tile the record
//  (their sizes add up to the wire size, which is sizeof: no padding, no
//  gap). A field moved in proto.h breaks the build rather than the protocol.
#define S_PIN_FIELD(T, field, offset, kind)                                                        \
    _Static_assert(offsetof (T, field) == (offset), #T "." #field " offset");
#define S_FIELD_SIZE(T, field, offset, kind) +sizeof (((T *) 0)->field)
#define S_PIN_RECORD(name, T, size, FIELDS)                                                        \
    _Static_assert(sizeof (T) == (size), #name " size");                                           \
    FIELDS (S_PIN_FIELD, T)                                                                        \
    _Static_assert(0 FIELDS (S_FIELD_SIZE, T) == (size), #name " fields tile the record");

_Static_assert(sizeof (rl_id_t) == RL_ID_SIZE, "id size");
_Static_assert(offsetof (rl_id_t, lo) == 0 && offsetof (rl_id_t, hi) == 8, "id layout");
S_RECORDS (S_PIN_RECORD)

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
//  s_put_<name> / s_get_<name> for every record, generated from its table.

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

#define S_PUT_U16(out, f)   codec_put_u16 (out, f)
#define S_PUT_U32(out, f)   codec_put_u32 (out, f)
#define S_PUT_U64(out, f)   codec_put_u64 (out, f)
#define S_PUT_ID(out, f)    s_put_id (out, f)
#define S_PUT_BYTES(out, f) memcpy (out, f, sizeof (f))
#define S_PUT_U64S(out, f)                                                                         \
    for (size_t i_ = 0; i_ < sizeof (f) / sizeof (f)[0]; i_++) {                                   \
        codec_put_u64 ((out) + 8 * i_, (f)[i_]);                                                   \
    }
#define S_PUT_TRANSFER(out, f) s_put_transfer (&(f), out)
#define S_PUT_TP(out, f)       s_put_tp (&(f), out)
#define S_PUT_PREPARE(out, f)  s_put_prepare (&(f), out)

#define S_GET_U16(in, f)   (f) = codec_get_u16 (in)
#define S_GET_U32(in, f)   (f) = codec_get_u32 (in)
#define S_GET_U64(in, f)   (f) = codec_get_u64 (in)
#define S_GET_ID(in, f)    (f) = s_get_id (in)
#define S_GET_BYTES(in, f) memcpy (f, in, sizeof (f))
#define S_GET_U64S(in, f)                                                                          \
    for (size_t i_ = 0; i_ < sizeof (f) / sizeof (f)[0]; i_++) {                                   \
        (f)[i_] = codec_get_u64 ((in) + 8 * i_);                                                   \
    }
#define S_GET_TRANSFER(in, f) s_get_transfer (in, &(f))
#define S_GET_TP(in, f)       s_get_tp (in, &(f))
#define S_GET_PREPARE(in, f)  s_get_prepare (in, &(f))

#define S_PUT_FIELD(T, field, offset, kind) S_PUT_##kind (out + (offset), rec->field);
#define S_GET_FIELD(T, field, offset, kind) S_GET_##kind (in + (offset), rec->field);
#define S_DEFINE_PORTABLE(name, T, size, FIELDS)                                                   \
    static void s_put_##name (const T *rec, uint8_t *out)                                          \
    {                                                                                              \
        FIELDS (S_PUT_FIELD, T)                                                                    \
    }                                                                                              \
    static void s_get_##name (const uint8_t *in, T *rec)                                           \
    {                                                                                              \
        FIELDS (S_GET_FIELD, T)                                                                    \
    }

S_RECORDS (S_DEFINE_PORTABLE)
#endif

//  Public record codecs: one memcpy on little-endian hosts -----------------
//  codec_encode_<name> and codec_decode_<name> for every record, on top of
//  memcpy or of s_put_<name> / s_get_<name>. s_check_<name> states what an
//  encoder expects of its input; s_fix_<name> makes the strings of a
//  decoded record C strings, whatever came in (invariant 2).

#if RL_CODEC_COPY
#define S_ENCODE(name, rec, out, size) memcpy (out, rec, size)
#define S_DECODE(name, in, rec, size)  memcpy (rec, in, size)
#else
#define S_ENCODE(name, rec, out, size) s_put_##name (rec, out)
#define S_DECODE(name, in, rec, size)  s_get_##name (in, rec)
#endif

#define S_TERMINATE(chars) (chars)[sizeof (chars) - 1] = '\0'

static void
s_check_status (const rl_status_rec_t *rec)
{
    assert (memchr (rec->name, '\0', RL_SHARD_NAME_SIZE_MAX));
    (void) rec;
}

static void
s_fix_status (rl_status_rec_t *rec)
{
    S_TERMINATE (rec->name);
}

static void
s_fix_tp (rl_tp_rec_t *rec)
{
    S_TERMINATE (rec->coordinator);
}

static void
s_fix_prepare (rl_prepare_rec_t *rec)
{
    s_fix_tp (&rec->tp);
}

static void
s_fix_in_doubt (rl_in_doubt_rec_t *rec)
{
    s_fix_prepare (&rec->prepare);
    S_TERMINATE (rec->peer);
}

static void
s_fix_audit (rl_audit_rec_t *rec)
{
    S_TERMINATE (rec->message);
}

static void
s_fix_migrate (rl_migrate_rec_t *rec)
{
    S_TERMINATE (rec->source);
    S_TERMINATE (rec->target);
}

//  The backup directory is not terminated here: a shard refuses one that
//  fills its field (truncating it would name another directory).
static void
s_fix_backup (rl_backup_rec_t *rec)
{
    S_TERMINATE (rec->message);
}

static void
s_fix_repl (rl_repl_rec_t *rec)
{
    S_TERMINATE (rec->endpoint);
}

//  The records with nothing to check or fix.
#define S_NOTHING(name, T)                                                                         \
    static void s_check_##name (const T *rec)                                                      \
    {                                                                                              \
        (void) rec;                                                                                \
    }
#define S_NOTHING_TO_FIX(name, T)                                                                  \
    static void s_fix_##name (T *rec)                                                              \
    {                                                                                              \
        (void) rec;                                                                                \
    }
S_NOTHING (header, rl_header_t)
S_NOTHING (account, rl_account_t)
S_NOTHING (transfer, rl_transfer_t)
S_NOTHING (result, rl_result_rec_t)
S_NOTHING (filter, rl_filter_t)
S_NOTHING (tp, rl_tp_rec_t)
S_NOTHING (prepare, rl_prepare_rec_t)
S_NOTHING (in_doubt, rl_in_doubt_rec_t)
S_NOTHING (backup, rl_backup_rec_t)
S_NOTHING (repl, rl_repl_rec_t)
S_NOTHING (audit, rl_audit_rec_t)
S_NOTHING (migrate, rl_migrate_rec_t)
S_NOTHING (events_req, rl_events_req_t)
S_NOTHING (event, rl_event_t)
S_NOTHING_TO_FIX (header, rl_header_t)
S_NOTHING_TO_FIX (account, rl_account_t)
S_NOTHING_TO_FIX (transfer, rl_transfer_t)
S_NOTHING_TO_FIX (result, rl_result_rec_t)
S_NOTHING_TO_FIX (filter, rl_filter_t)
S_NOTHING_TO_FIX (events_req, rl_events_req_t)
S_NOTHING_TO_FIX (event, rl_event_t)

#define S_DEFINE_PUBLIC(name, T, size, FIELDS)                                                     \
    void codec_encode_##name (const T *rec, uint8_t *out)                                          \
    {                                                                                              \
        assert (rec);                                                                              \
        assert (out);                                                                              \
        s_check_##name (rec);                                                                      \
        S_ENCODE (name, rec, out, size);                                                           \
    }                                                                                              \
    void codec_decode_##name (const uint8_t *in, T *rec)                                           \
    {                                                                                              \
        assert (in);                                                                               \
        assert (rec);                                                                              \
        S_DECODE (name, in, rec, size);                                                            \
        s_fix_##name (rec);                                                                        \
    }

S_RECORDS (S_DEFINE_PUBLIC)

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

//  arc_load reply record (proto.h, docs/protocol.md): written by hand, it
//  has no layout table row.
void
codec_encode_arc_load (const rl_arc_load_rec_t *rec, uint8_t *out)
{
    assert (rec && out);
    codec_put_u64 (out, rec->arc_start);
    codec_put_u64 (out + 8, rec->arc_end);
    codec_put_u64 (out + 16, rec->accounts);
    codec_put_u64 (out + 24, rec->account_bytes);
    codec_put_u64 (out + 32, rec->transfers_window);
    codec_put_u32 (out + 40, rec->window_ms);
    codec_put_u32 (out + 44, rec->transfers_per_s);
    codec_put_u64 (out + 48, rec->transfers_total);
    codec_put_u64 (out + 56, rec->record_bytes);
}

void
codec_decode_arc_load (const uint8_t *in, rl_arc_load_rec_t *rec)
{
    assert (in && rec);
    rec->arc_start = codec_get_u64 (in);
    rec->arc_end = codec_get_u64 (in + 8);
    rec->accounts = codec_get_u64 (in + 16);
    rec->account_bytes = codec_get_u64 (in + 24);
    rec->transfers_window = codec_get_u64 (in + 32);
    rec->window_ms = codec_get_u32 (in + 40);
    rec->transfers_per_s = codec_get_u32 (in + 44);
    rec->transfers_total = codec_get_u64 (in + 48);
    rec->record_bytes = codec_get_u64 (in + 56);
}

//  hot_accounts reply record (proto.h, docs/rebalance.md): by hand too.
void
codec_encode_hot_account (const rl_hot_account_rec_t *rec, uint8_t *out)
{
    assert (rec && out);
    codec_encode_id (rec->id, out);
    codec_put_u64 (out + 16, rec->transfers_window);
    codec_put_u64 (out + 24, rec->error);
    codec_put_u64 (out + 32, rec->others_max);
    codec_put_u32 (out + 40, rec->window_ms);
    codec_put_u32 (out + 44, 0);
    codec_put_u64 (out + 48, rec->counted);
    codec_put_u64 (out + 56, 0);
}

void
codec_decode_hot_account (const uint8_t *in, rl_hot_account_rec_t *rec)
{
    assert (in && rec);
    rec->id = codec_decode_id (in);
    rec->transfers_window = codec_get_u64 (in + 16);
    rec->error = codec_get_u64 (in + 24);
    rec->others_max = codec_get_u64 (in + 32);
    rec->window_ms = codec_get_u32 (in + 40);
    rec->reserved = codec_get_u32 (in + 44);
    rec->counted = codec_get_u64 (in + 48);
    rec->reserved2 = codec_get_u64 (in + 56);
}

bool
codec_op_is_known (uint32_t op)
{
    return (op >= RL_OP_CREATE_ACCOUNTS && op <= RL_OP_GET_RING) || op == RL_OP_PREPARE
           || op == RL_OP_DECIDE || op == RL_OP_OUTCOME_QUERY || op == RL_OP_IN_DOUBT
           || op == RL_OP_AUDIT || op == RL_OP_RESOLVE || op == RL_OP_MIGRATE_BEGIN
           || (op >= RL_OP_MIGRATE_BEGIN && op <= RL_OP_HOT_ACCOUNTS) || op == RL_OP_EVENTS_READ
           || (op >= RL_OP_BACKUP_HOLD && op <= RL_OP_BACKUP_STATUS) || op == RL_OP_MIGRATE_LEASE
           || (op >= RL_OP_PROMOTE && op <= RL_OP_REPL_STATUS);
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
        case RL_OP_EVENTS_READ:
            return RL_EVENTS_REQ_SIZE;
        case RL_OP_LOAD_RING:
        case RL_OP_MIGRATE_IMPORT:
            return RL_BLOB;
        case RL_OP_MIGRATE_BEGIN:
        case RL_OP_MIGRATE_EXPORT:
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_MIGRATE_CLEANUP:
        case RL_OP_MIGRATE_LEASE:
            return RL_MIGRATE_SIZE;
        case RL_OP_BACKUP_HOLD:
        case RL_OP_BACKUP_CUT:
        case RL_OP_BACKUP_RELEASE:
        case RL_OP_BACKUP_STATUS:
            return RL_BACKUP_SIZE;
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
        case RL_OP_MIGRATE_EXPORT:
            return RL_BLOB;
        case RL_OP_MIGRATE_BEGIN:
        case RL_OP_MIGRATE_IMPORT:
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_MIGRATE_CLEANUP:
        case RL_OP_MIGRATE_LEASE:
            return RL_MIGRATE_SIZE;
        case RL_OP_BACKUP_HOLD:
        case RL_OP_BACKUP_CUT:
        case RL_OP_BACKUP_RELEASE:
        case RL_OP_BACKUP_STATUS:
            return RL_BACKUP_SIZE;
        case RL_OP_PREPARE:
        case RL_OP_DECIDE:
        case RL_OP_OUTCOME_QUERY:
        case RL_OP_RESOLVE:
            return RL_TP_SIZE;
        case RL_OP_IN_DOUBT:
            return RL_IN_DOUBT_SIZE;
        case RL_OP_ARC_LOAD:
            return RL_ARC_LOAD_SIZE;
        case RL_OP_HOT_ACCOUNTS:
            return RL_HOT_ACCOUNTS_SIZE;
        case RL_OP_AUDIT:
            return RL_AUDIT_SIZE;
        case RL_OP_EVENTS_READ:
            return RL_EVENT_SIZE;
        case RL_OP_REPL_STATUS:
            return RL_REPL_SIZE;
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
    if (record_size == 0 && header->record_count != 0) {
        return RL_STATUS_MALFORMED; //  no records: a count would be a count of nothing
    }
    if (header->record_count < count_min || header->record_count > count_max) {
        return RL_STATUS_MALFORMED;
    }
    return RL_STATUS_OK;
}

//  Invariant 5 -----------------------------------------------------------------

static bool
s_id_usable (rl_id_t id)
{
    return !rl_id_is_zero (id) && !rl_id_is_max (id);
}

//  The pending fields of a PREPARE's transfer fit its kind (invariant 5).
static bool
s_prepare_kind_valid (const rl_transfer_t *t)
{
    uint16_t resolve = RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER;
    uint16_t kinds = t->flags & (RL_TRANSFER_PENDING | resolve);
    //  More than one kind: a chain's leg (a debit leg, both legs, or a
    //  credit leg on a third shard: both bits) may be a pending transfer,
    //  or a post or void (a post leg, or the credit leg of one whose
    //  pending transfer credits a third shard).
    if (kinds & (kinds - 1)) {
        return false;
    }
    if (kinds & resolve) {
        return s_id_usable (t->pending_id) && !rl_id_eq (t->pending_id, t->id) && t->timeout == 0;
    }
    return rl_id_is_zero (t->pending_id) && (kinds == RL_TRANSFER_PENDING || t->timeout == 0);
}

//  A post or void with a leg bit (a post leg, or its credit leg on a third
//  shard) may travel as the client gave it: its amount may be zero (all of
//  it), and of both legs its credit account too (inherited, docs/protocol.md).
static bool
s_prepare_valid (const rl_prepare_rec_t *rec)
{
    const rl_transfer_t *t = &rec->transfer;
    uint16_t legs = t->flags & RL_TRANSFER_TP_LEGS;
    bool post_leg = legs
                    && (t->flags
                        & (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER));
    bool as_given = post_leg && legs == RL_TRANSFER_TP_BOTH_LEGS;
    return s_id_usable (rec->tp.id) && s_id_usable (t->id) && s_id_usable (t->debit_account_id)
           && (s_id_usable (t->credit_account_id)
               || (as_given && rl_id_is_zero (t->credit_account_id)))
           && (t->amount != 0 || post_leg)
           && (t->flags & ~(RL_TRANSFER_FLAGS_KNOWN | RL_TRANSFER_TP_LEGS)) == 0
           && s_prepare_kind_valid (t) && t->reserved == 0 && rec->reserved[0] == 0
           && rec->reserved[1] == 0;
}

//  The records of a well-formed two-phase frame (body of count records of
//  record_size bytes): MALFORMED when one breaks invariant 5.
static rl_status_t
s_check_two_phase (uint32_t op, bool request, const uint8_t *body, uint32_t count)
{
    bool is_two_phase = op == RL_OP_PREPARE || op == RL_OP_DECIDE || op == RL_OP_OUTCOME_QUERY
                        || op == RL_OP_RESOLVE;
    if (!is_two_phase) {
        return RL_STATUS_OK;
    }
    for (uint32_t i = 0; i < count; i++) {
        bool valid;
        if (request && op == RL_OP_PREPARE) {
            rl_prepare_rec_t rec;
            codec_decode_prepare (body + (size_t) i * RL_PREPARE_SIZE, &rec);
            valid = s_prepare_valid (&rec);
        } else {
            rl_tp_rec_t rec;
            codec_decode_tp (body + (size_t) i * RL_TP_SIZE, &rec);
            valid = s_id_usable (rec.id);
        }
        if (!valid) {
            return RL_STATUS_MALFORMED;
        }
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
        case RL_OP_EVENTS_READ:
        case RL_OP_MIGRATE_BEGIN:
        case RL_OP_MIGRATE_EXPORT:
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_MIGRATE_CLEANUP:
        case RL_OP_MIGRATE_LEASE:
        case RL_OP_BACKUP_HOLD:
        case RL_OP_BACKUP_CUT:
        case RL_OP_BACKUP_RELEASE:
        case RL_OP_BACKUP_STATUS:
            count_min = count_max = 1;
            break;
        case RL_OP_STATUS:
        case RL_OP_GET_RING:
        case RL_OP_ARC_LOAD:
        case RL_OP_HOT_ACCOUNTS:
        case RL_OP_PROMOTE:
        case RL_OP_DEGRADE:
        case RL_OP_FENCE:
        case RL_OP_REPL_STATUS:
            count_max = 0;
            break;
        default:
            break; //  creates and lookups: 0..max (an empty batch, an empty reply)
    }
    rl_status_t status = s_check_body (header, size, codec_request_record_size (header->operation),
                                       count_min, count_max);
    if (status != RL_STATUS_OK) {
        return status;
    }
    return s_check_two_phase (header->operation, true, frame + RL_HEADER_SIZE,
                              header->record_count);
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
        bool is_defined = rl_status_defined (header->status);
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
        case RL_OP_EVENTS_READ:
            count_max = RL_EVENTS_LIMIT_MAX;
            break;
        case RL_OP_STATUS:
        case RL_OP_MIGRATE_BEGIN:
        case RL_OP_MIGRATE_IMPORT:
        case RL_OP_MIGRATE_FREEZE:
        case RL_OP_MIGRATE_DRAIN:
        case RL_OP_MIGRATE_UNFREEZE:
        case RL_OP_MIGRATE_COMMIT:
        case RL_OP_MIGRATE_ABORT:
        case RL_OP_MIGRATE_CLEANUP:
        case RL_OP_BACKUP_HOLD:
        case RL_OP_BACKUP_CUT:
        case RL_OP_BACKUP_RELEASE:
        case RL_OP_BACKUP_STATUS:
            count_min = count_max = 1;
            break;
        case RL_OP_MIGRATE_LEASE:
            count_min = count_max = 2; //  the stored migration, the lease
            break;
        case RL_OP_LOAD_RING:
        case RL_OP_PROMOTE:
        case RL_OP_DEGRADE:
        case RL_OP_FENCE:
            count_max = 0;
            break;
        case RL_OP_REPL_STATUS:
            count_min = 1;
            count_max = RL_REPL_RECORDS_MAX;
            break;
        default:
            break; //  creates and lookups: one per request record, 0..max
    }
    rl_status_t status = s_check_body (header, size, codec_reply_record_size (header->operation),
                                       count_min, count_max);
    if (status != RL_STATUS_OK) {
        return status;
    }
    return s_check_two_phase (header->operation, false, frame + RL_HEADER_SIZE,
                              header->record_count);
}

//  Frames ----------------------------------------------------------------------

rl_header_t
codec_request_header (uint16_t operation, uint64_t request_id, uint32_t record_count)
{
    return (rl_header_t){
        .magic = RL_MAGIC,
        .version = RL_VERSION,
        .operation = operation,
        .request_id = request_id,
        .record_count = record_count,
    };
}

rl_header_t
codec_reply_header (const rl_header_t *request, uint32_t status, uint32_t record_count,
                    uint64_t epoch)
{
    assert (request);
    return (rl_header_t){
        .magic = RL_MAGIC,
        .version = RL_VERSION,
        .operation = request->operation,
        .request_id = request->request_id,
        .record_count = status == RL_STATUS_OK ? record_count : 0,
        .status = status,
        .epoch = epoch,
    };
}

bool
codec_frame_has_header (size_t size)
{
    return size >= RL_HEADER_SIZE;
}

size_t
codec_frame_size (size_t body_size)
{
    return RL_HEADER_SIZE + body_size;
}

uint8_t *
codec_encode_frame (const rl_header_t *header, const void *body, size_t body_size, uint8_t *frame)
{
    assert (header && frame);
    codec_encode_header (header, frame);
    uint8_t *frame_body = frame + RL_HEADER_SIZE;
    if (body && body_size > 0) {
        memcpy (frame_body, body, body_size);
    }
    return frame_body;
}

const uint8_t *
codec_frame_body (const uint8_t *frame, size_t size, size_t *body_size_p)
{
    assert (frame && body_size_p);
    assert (size >= RL_HEADER_SIZE);
    *body_size_p = size - RL_HEADER_SIZE;
    return frame + RL_HEADER_SIZE;
}

static rl_status_t
s_parse (rl_status_t check, const uint8_t *frame, size_t size, const uint8_t **body_p,
         size_t *body_size_p)
{
    *body_p = NULL;
    *body_size_p = 0;
    if (check == RL_STATUS_OK) {
        *body_p = codec_frame_body (frame, size, body_size_p);
    }
    return check;
}

rl_status_t
codec_parse_request (const uint8_t *frame, size_t size, rl_header_t *header, const uint8_t **body_p,
                     size_t *body_size_p)
{
    assert (body_p && body_size_p);
    return s_parse (codec_check_request (frame, size, header), frame, size, body_p, body_size_p);
}

rl_status_t
codec_parse_reply (const uint8_t *frame, size_t size, rl_header_t *header, const uint8_t **body_p,
                   size_t *body_size_p)
{
    assert (body_p && body_size_p);
    return s_parse (codec_check_reply (frame, size, header), frame, size, body_p, body_size_p);
}

uint64_t
codec_frame_request_id (const uint8_t *frame, size_t size)
{
    assert (frame || size == 0);
    if (size < RL_HEADER_SIZE) {
        return 0;
    }
    return codec_get_u64 (frame + offsetof (rl_header_t, request_id));
}

void
codec_frame_set_request_id (uint8_t *frame, size_t size, uint64_t request_id)
{
    assert (frame);
    assert (size >= RL_HEADER_SIZE);
    (void) size;
    codec_put_u64 (frame + offsetof (rl_header_t, request_id), request_id);
}

//  Placement -------------------------------------------------------------------

const uint8_t *
codec_routing_id (uint32_t op, const uint8_t *record)
{
    assert (record);
    switch (op) {
        case RL_OP_CREATE_ACCOUNTS:
            return record + offsetof (rl_account_t, id);
        case RL_OP_CREATE_TRANSFERS:
            return record + offsetof (rl_transfer_t, debit_account_id);
        case RL_OP_LOOKUP_ACCOUNTS:
        case RL_OP_LOOKUP_TRANSFERS:
            return record; //  the record is the id
        case RL_OP_GET_ACCOUNT_TRANSFERS:
            return record + offsetof (rl_filter_t, account_id);
        default:
            return NULL;
    }
}

bool
codec_transfer_places_chain (const rl_transfer_t *member)
{
    assert (member);
    return (member->flags & (RL_TRANSFER_POST_PENDING_TRANSFER | RL_TRANSFER_VOID_PENDING_TRANSFER))
           && !rl_id_is_zero (member->debit_account_id) && !rl_id_is_max (member->debit_account_id);
}

rl_id_t
codec_record_id (uint32_t op, const uint8_t *record)
{
    assert (record);
    switch (op) {
        case RL_OP_CREATE_ACCOUNTS:
            return codec_decode_id (record + offsetof (rl_account_t, id));
        case RL_OP_CREATE_TRANSFERS:
            return codec_decode_id (record + offsetof (rl_transfer_t, id));
        case RL_OP_LOOKUP_ACCOUNTS:
        case RL_OP_LOOKUP_TRANSFERS:
            return codec_decode_id (record);
        default:
            return (rl_id_t){0};
    }
}

uint64_t
codec_transfer_timestamp (const uint8_t *record)
{
    assert (record);
    return codec_get_u64 (record + offsetof (rl_transfer_t, timestamp));
}
