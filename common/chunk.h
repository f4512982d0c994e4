/*  chunk.h: a migration chunk, the blob of migrate_export's reply and of
    migrate_import's request (docs/rebalance.md, "Chunks").

    A chunk carries the entries that move with the accounts of one arc,
    from the source's cursor `from` up to its cursor `to`, as the chunk
    numbered `seq` of migration `migration_id`:

        header (RL_MIGRATE_CHUNK_HEADER = 168 bytes, little-endian)
            0   u32  magic RL_CHUNK_MAGIC ("RLMC")
            4   u32  version (1)
            8   u64  migration_id (never 0)
            16  u64  seq (1, 2, ...: the target imports them in order)
            24  u32  entry_count (0..RL_MIGRATE_ENTRIES_MAX)
            28  u32  flags: RL_CHUNK_FINAL (bit 0) on the last chunk of the final
                     round (the source frozen and drained); other bits 0
            32  cursor from (64 bytes: the cursor layout of the migrate record)
            96  cursor to
            160 u64  reserved (0)
        entry_count entries (RL_MIGRATE_ENTRY_SIZE = 144 bytes each)
            0   u8   kind: 1 transfer record, 2 account, 3 pending transfer
            1   7 bytes zero
            8   u64  origin: the shard that assigned the record's timestamp
                     (transfer, never 0); 0 for an account and a pending transfer
            16  the record (128 bytes): a transfer with its stored result and
                leg in `reserved`, an account with its balances, or a
                pending transfer as the source's pending table holds it
                (flag pending; in `reserved` bits 0..7 its state, 1
                pending, 2 posted, 3 voided, 4 expired, and bits 8..15 the
                side the source holds, 0 both, 1 the debit, 2 the credit;
                the final round only)

    chunk_decode checks every byte that it can without the migration's
    state (sizes, magic, version, reserved fields, kinds, usable ids, non-zero
    timestamps, legs, pending states and sides, cursor phases); what depends on the state (the
    migration, the order, the arc) is the importing shard's business.
*/
#ifndef RL_CHUNK_H
#define RL_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define RL_CHUNK_MAGIC   0x434d4c52u //  bytes "RLMC" read as a little-endian u32
#define RL_CHUNK_VERSION 1

#define RL_CHUNK_FINAL 1u //  flags: the last chunk of the final round

#define RL_CHUNK_TRANSFER 1
#define RL_CHUNK_ACCOUNT  2
#define RL_CHUNK_PENDING  3 //  a pending transfer and its state (the final round)

typedef struct {
    uint64_t migration_id;
    uint64_t seq;
    uint32_t entry_count;
    uint32_t flags; //  RL_CHUNK_FINAL or 0
    rl_migrate_cursor_t from;
    rl_migrate_cursor_t to;
    const uint8_t *entries; //  into the decoded bytes: entry_count entries
} chunk_t;

typedef struct {
    uint32_t kind; //  RL_CHUNK_TRANSFER, RL_CHUNK_ACCOUNT or RL_CHUNK_PENDING
    uint64_t origin;
    rl_transfer_t transfer; //  kinds transfer and pending
    rl_account_t account;   //  kind account
} chunk_entry_t;

//  Bytes of a chunk of `count` entries.
size_t chunk_size (uint32_t count);
//  Writes the header of a chunk of chunk->entry_count entries into out (at
//  least chunk_size bytes); entries are written with chunk_put_entry.
void chunk_encode_header (const chunk_t *chunk, uint8_t *out);
void chunk_put_entry (uint8_t *out, uint32_t index, const chunk_entry_t *entry);
//  RL_STATUS_OK and *chunk filled, or MALFORMED (a rule above broken) or
//  TOO_MANY_RECORDS (more than RL_MIGRATE_ENTRIES_MAX entries); nothing is
//  kept of `in` but the entries pointer.
rl_status_t chunk_decode (const uint8_t *in, size_t size, chunk_t *chunk);
//  Entry `index` of a decoded chunk (index < entry_count).
void chunk_entry (const chunk_t *chunk, uint32_t index, chunk_entry_t *entry);

//  The 64 bytes of a cursor (the layout of its place in the migrate record).
void chunk_put_cursor (uint8_t *out, const rl_migrate_cursor_t *cursor);
void chunk_get_cursor (const uint8_t *in, rl_migrate_cursor_t *cursor);
bool chunk_cursor_eq (const rl_migrate_cursor_t *a, const rl_migrate_cursor_t *b);

#endif
