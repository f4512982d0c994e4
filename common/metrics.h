/*  metrics.h: a registry of counters, gauges and histograms, published
    once per tick by the loop thread and formatted in the Prometheus text
    format by any other thread (the HTTP server of metrics_http.h).

    See metrics.c for the design, invariants and limits; docs/metrics.md
    for the metrics of the shard and the router.
*/
#ifndef RL_METRICS_H
#define RL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type_t;

//  Labels of one series: at most this many bytes, NUL included.
#define METRICS_LABELS_SIZE_MAX 112
//  Capacities of one registry (registration past them returns -1).
#define METRICS_FAMILIES_MAX 96
#define METRICS_SERIES_MAX   768
#define METRICS_VALUES_MAX   4096
#define METRICS_BUCKETS_MAX  24
//  /healthz fails when the loop has not published for this long.
#define METRICS_STALE_MS 5000

typedef struct metrics_t metrics_t;

metrics_t *metrics_new (void);
void metrics_destroy (metrics_t **self_p);

//  The loop thread's side -------------------------------------------------------
//  name and help are static strings (kept by pointer), bounds too
//  (histograms: ascending upper bounds, +Inf implied; others NULL, 0).
//  Returns the family's id, or -1 when the registry is full.
int metrics_family (metrics_t *self, metrics_type_t type, const char *name, const char *help,
                    const double *bounds, size_t bound_count);
//  The series of `family` with these labels (`k="v",k2="v2"` or ""),
//  added at its first use. -1 when full or family is -1 (the other calls
//  ignore series -1).
int metrics_series (metrics_t *self, int family, const char *labels);
void metrics_set (metrics_t *self, int series, double value);
void metrics_observe (metrics_t *self, int series, double value);
//  Readiness as /readyz reports it; reason says why not (copied).
void metrics_set_ready (metrics_t *self, bool ready, const char *reason);
//  Copies the registry into the published snapshot (under the mutex).
void metrics_publish (metrics_t *self);

//  Tables the shard and the router share (loop thread) -----------------------------
//  One unlabelled metric of a table, registered by metrics_scalars.
typedef struct {
    metrics_type_t type; //  counter or gauge
    const char *name;    //  static
    const char *help;    //  static
} metrics_scalar_t;
//  A family and its one series for each of count entries: series[i] is the
//  series of table[i] (-1 when the registry is full).
void metrics_scalars (metrics_t *self, const metrics_scalar_t *table, size_t count, int *series);

//  Replies by operation and message status: a counter family labelled
//  operation="...",status="..." (common/proto.h names), counted as they go
//  and copied into the registry once per tick, a series at its first
//  non-zero count. Codes from METRICS_CODES_MAX on are counted under
//  operation 0 or the last status (named "unknown").
#define METRICS_CODES_MAX 64
typedef struct metrics_replies_t metrics_replies_t;
//  NULL when memory ran out. name and help are static.
metrics_replies_t *metrics_replies_new (metrics_t *metrics, const char *name, const char *help);
void metrics_replies_destroy (metrics_replies_t **self_p);
void metrics_replies_count (metrics_replies_t *self, uint32_t operation, uint32_t status);
//  Once per tick, before metrics_publish.
void metrics_replies_update (metrics_replies_t *self);

//  Any thread ---------------------------------------------------------------------
//  The published snapshot in the text format (version 0.0.4): a string the
//  caller frees, *size_p its length. NULL when memory ran out.
char *metrics_text (metrics_t *self, size_t *size_p);
//  Milliseconds (zclock_mono) since the last publish; -1 before the first.
int64_t metrics_age_ms (metrics_t *self);
//  The published readiness; reason (if not ready) copied into reason.
bool metrics_ready (metrics_t *self, char *reason, size_t reason_size);

#endif
