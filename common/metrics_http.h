/*  metrics_http.h: the HTTP endpoints of a shard or a router: /metrics,
    /healthz and /readyz, served by libmicrohttpd on a thread of its own
    from a registry's published snapshot (metrics.h). See metrics_http.c.
*/
#ifndef RL_METRICS_HTTP_H
#define RL_METRICS_HTTP_H

#include <stddef.h>

#include "metrics.h"

typedef struct metrics_http_t metrics_http_t;

//  Checks an --metrics-bind value: IPV4:PORT, port 1..65535. 0, or -1
//  with the reason in err.
int metrics_http_check_bind (const char *bind, char *err, size_t err_size);
//  Listens on bind (checked) and serves from metrics (borrowed: it must
//  outlive the server). NULL, with the reason in err, when it cannot.
metrics_http_t *metrics_http_new (const char *bind, metrics_t *metrics, char *err, size_t err_size);
//  Stops the thread and closes the socket.
void metrics_http_destroy (metrics_http_t **self_p);

#endif
