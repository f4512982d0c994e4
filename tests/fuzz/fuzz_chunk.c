/*  fuzz_chunk.c: libFuzzer target of the migration chunk (common/chunk.c),
    the blob a shard takes from the network in migrate_import.

    PROPERTIES (beyond "no crash")
    1. A refusal is MALFORMED or TOO_MANY_RECORDS, nothing else.
    2. An accepted chunk is exactly its header plus its entries, and every
       entry is well formed (a known kind, usable ids, a timestamp, an
       origin for a transfer and none for an account).
    3. It is canonical: encoding the decoded chunk gives the input bytes.
*/
#include <string.h>

#include "chunk.h"
#include "fuzz_check.h"

static bool
s_usable (rl_id_t id)
{
    return !rl_id_is_zero (id) && !rl_id_is_max (id);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    chunk_t chunk;
    rl_status_t status = chunk_decode (data, size, &chunk);
    if (status != RL_STATUS_OK) {
        FUZZ_CHECK (status == RL_STATUS_MALFORMED || status == RL_STATUS_TOO_MANY_RECORDS); //  1
        return 0;
    }
    FUZZ_CHECK (size == chunk_size (chunk.entry_count)); //  2
    FUZZ_CHECK (chunk.entry_count <= RL_MIGRATE_ENTRIES_MAX);
    uint8_t *out = malloc (size);
    FUZZ_CHECK (out != NULL);
    chunk_encode_header (&chunk, out);
    for (uint32_t i = 0; i < chunk.entry_count; i++) {
        chunk_entry_t e;
        chunk_entry (&chunk, i, &e);
        if (e.kind == RL_CHUNK_TRANSFER) {
            FUZZ_CHECK (e.origin != 0 && s_usable (e.transfer.id)); //  2
            FUZZ_CHECK (s_usable (e.transfer.debit_account_id));
            FUZZ_CHECK (s_usable (e.transfer.credit_account_id) && e.transfer.timestamp != 0);
        } else if (e.kind == RL_CHUNK_PENDING) {
            uint64_t state = e.transfer.reserved & 0xff;
            FUZZ_CHECK (e.origin == 0 && s_usable (e.transfer.id)); //  2
            FUZZ_CHECK ((e.transfer.flags & RL_TRANSFER_PENDING) && state >= 1 && state <= 4);
            FUZZ_CHECK ((e.transfer.reserved >> 8) <= 2 && e.transfer.amount != 0);
        } else {
            FUZZ_CHECK (e.kind == RL_CHUNK_ACCOUNT); //  2
            FUZZ_CHECK (e.origin == 0 && s_usable (e.account.id) && e.account.timestamp != 0);
        }
        chunk_put_entry (out, i, &e);
    }
    FUZZ_CHECK (memcmp (out, data, size) == 0); //  3
    free (out);
    return 0;
}
