/*  shard_metrics.h: the shard's metrics (docs/metrics.md), fed by the turn
    loop (server.c) and served over HTTP by common/metrics_http.c when
    --metrics-bind is given. See shard_metrics.c.
*/
#ifndef RL_SHARD_METRICS_H
#define RL_SHARD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct shard_metrics_t shard_metrics_t;
typedef struct server_t server_t;

//  Serves bind (IPV4:PORT); bind NULL: no registry and no HTTP server, the
//  status figures alone. NULL (logged) when it cannot.
shard_metrics_t *shard_metrics_new (const char *bind);
void shard_metrics_destroy (shard_metrics_t **self_p);

//  Each of these accepts self NULL (metrics off) and does nothing then.
//  A reply built for `operation` with message status `status`.
void shard_metrics_reply (shard_metrics_t *self, uint32_t operation, uint32_t status);
//  The per-record results of a create.
void shard_metrics_results (shard_metrics_t *self, uint32_t operation,
                            const rl_result_rec_t *results, size_t count);
//  A turn took turn_us; a group commit of `writes` operations synced in sync_us.
void shard_metrics_turn (shard_metrics_t *self, int64_t turn_us);
void shard_metrics_commit (shard_metrics_t *self, size_t writes, int64_t sync_us);
//  A checkpoint ran for checkpoint_us.
void shard_metrics_checkpoint (shard_metrics_t *self, int64_t checkpoint_us);
//  Once per tick, on the loop thread: reads the server's counters and
//  publishes the snapshot (RocksDB properties and the disk at most once a
//  second).
void shard_metrics_tick (shard_metrics_t *self, server_t *server);
//  The status record's figures over time: turn_p99_us, in_doubt_oldest_ms
//  (0 when status->in_doubt is; the oldest record is looked for once a
//  second, and at once when records come into doubt).
void shard_metrics_status (const shard_metrics_t *self, rl_status_rec_t *status);

#endif
