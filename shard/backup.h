/*  backup.h: the shard's part of a backup (docs/backup.md): the hold, the
    cut (a RocksDB checkpoint whose files are listed while held and linked
    or copied after) and the copy of the cut into a RocksDB backup engine,
    on a thread of its own. Served by server.c through the
    backup_* operations (60..63); see backup.c for the design.
*/
#ifndef RL_BACKUP_H
#define RL_BACKUP_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "proto.h"

typedef struct server_t server_t;
typedef struct backup_t backup_t;

//  The name of the cut's checkpoint inside the data directory (removed at
//  start, and after each copy).
#define BACKUP_CUT_DIR "backup-cut"
//  Requests that wait while the shard is held; one more is answered busy.
#define BACKUP_DEFERRED_MAX 4096
//  A cut never flushes the memtables (RocksDB's log_size_for_flush: no WAL
//  is that large): the WAL is copied, after the hold, up to its listed size.
#define BACKUP_CUT_NEVER_FLUSH UINT64_MAX
//  How often the held loop looks whether the cut's files are listed.
#define BACKUP_LIST_POLL_US 100
//  Failpoint backup.unheld: longest wait of its checkpoint for a write.
#define BACKUP_UNHELD_WAIT_MS 5000

//  At start: a cut left by a stop during a copy is removed. 0, or -1
//  (logged) when it cannot be.
int backup_start (server_t *server);
//  Waits for a copy in progress to end, then frees everything; safe twice.
void backup_stop (server_t *server);

//  True while the shard is held: requests other than backup operations and
//  status wait (backup_defer), peers' messages stay on their sockets, and
//  the timers do nothing. A hold past its hold_ms ends here, by itself.
bool backup_holding (server_t *server);
//  Whether operation op is served while held.
bool backup_serves_held (uint16_t op);
//  Keeps msg (the whole request: envelope and payload) until the hold ends.
//  NULL when it took msg; a busy reply when BACKUP_DEFERRED_MAX wait already.
zmsg_t *backup_defer (server_t *server, zmsg_t *msg, const rl_header_t *h);
//  True when the hold has ended and requests still wait (the tick then runs a turn).
bool backup_deferred_waiting (server_t *server);
//  Once the hold has ended: the oldest request that waited, else NULL.
zmsg_t *backup_next_deferred (server_t *server);

//  backup_hold, backup_cut, backup_release, backup_status: the reply (NULL:
//  out of memory), taking envelope.
zmsg_t *backup_handle (server_t *server, zmsg_t *envelope, const rl_header_t *h,
                       const uint8_t *body);

#endif
