/*  migrate.h: the shard's side of a migration (docs/rebalance.md):
    migrate_begin, migrate_export (source) and migrate_import (target).
    Served by the server's dispatch through migrate_handle; the state is
    kept in the server (server_internal.h) and in the store's meta.
*/
#ifndef RL_MIGRATE_H
#define RL_MIGRATE_H

#include <stdint.h>

//  The meta key of the migration this shard takes part in (a migrate
//  record, RL_MIGRATE_SIZE bytes, codec form). Absent: none.
#define MIGRATE_META_KEY "migration"

//  The meta key a target's handover writes when it adopts the arc's
//  accounts from their staged copies ('A' keys of the imported family)
//  instead of writing them into the accounts family: the migration id and
//  the arc (start, end], 8 bytes each (codec_put_u64). The checkpoint that
//  writes those accounts deletes it with the staged copies (ledger.c,
//  "ADOPTED ACCOUNTS"). Absent: every account is in the accounts family.
#define MIGRATE_ADOPTED_KEY  "migration.adopted"
#define MIGRATE_ADOPTED_SIZE 24

//  The origin of the records a shard assigns timestamps to: XXH3 of its
//  name (imported.c, KEYS). Never 0.
uint64_t migrate_origin (const char *shard_name);

#endif
