/*  router_metrics.h: the router's metrics (docs/metrics.md), fed by its
    loop and served over HTTP by common/metrics_http.c when --metrics-bind
    is given. See router_metrics.c.
*/
#ifndef RL_ROUTER_METRICS_H
#define RL_ROUTER_METRICS_H

#include <stdint.h>

typedef struct router_metrics_t router_metrics_t;
typedef struct router_s router_t;

//  Serves bind (IPV4:PORT). NULL (logged) when it cannot.
router_metrics_t *router_metrics_new (const char *bind);
void router_metrics_destroy (router_metrics_t **self_p);
//  Each accepts self NULL (metrics off). A reply to a client.
void router_metrics_reply (router_metrics_t *self, uint32_t operation, uint32_t status);
//  A request admitted into the table was answered after duration_us.
void router_metrics_request (router_metrics_t *self, uint32_t operation, int64_t duration_us);
//  Once per tick, on the loop thread: copies the counters, publishes.
void router_metrics_tick (router_metrics_t *self, router_t *router);

#endif
