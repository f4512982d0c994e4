/*  metrics_http.c: /metrics, /healthz and /readyz over HTTP/1.1, served
    by libmicrohttpd with its own polling thread.

    The thread reads only what the loop thread published (metrics.c): it
    never touches the loop's state, and the loop never waits for it but
    for one memcpy under the registry's mutex.

        GET /metrics   200, the Prometheus text format (version 0.0.4)
        GET /healthz   200 "ok" while the loop publishes (at least once
                       every METRICS_STALE_MS), else 503: the loop is stuck
        GET /readyz    200 "ready" when the program says so (a shard:
                       recovered, serving its ring epoch, store healthy;
                       a router: holding a ring), else 503 and the reason
        other paths    404; other methods 405 (with Allow: GET)

    INVARIANTS
    1. Bound to the address given, 127.0.0.1 in every default: the
       endpoints are unauthenticated and say what the process is doing
       (docs/security.md).
    2. A request never holds the registry's mutex across I/O.

    LIMITS: S_CONNECTIONS_MAX connections at a time (more are refused),
    S_TIMEOUT_S idle seconds per connection, S_MEMORY_BYTES_MAX of request
    per connection (a larger request line or header is refused by
    libmicrohttpd with a 4xx status and the connection closed).
*/
#include "metrics_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define S_CONNECTIONS_MAX  16
#define S_TIMEOUT_S        5
#define S_MEMORY_BYTES_MAX 16384
#define S_BIND_SIZE_MAX    64

struct metrics_http_t {
    struct MHD_Daemon *daemon;
    metrics_t *metrics;
};

//  IPV4:PORT into *sa: 0, or -1 with the reason in err. The one parser of
//  --metrics-bind: the check of the options and the server use it alike.
static int
s_parse_bind (const char *bind, struct sockaddr_in *sa, char *err, size_t err_size)
{
    assert (bind && sa && err);
    *sa = (struct sockaddr_in){.sin_family = AF_INET};
    char host[S_BIND_SIZE_MAX];
    const char *colon = strrchr (bind, ':');
    if (!colon || (size_t) (colon - bind) >= sizeof host || colon == bind) {
        snprintf (err, err_size, "'%s': expected IPV4:PORT (e.g. 127.0.0.1:9101)", bind);
        return -1;
    }
    memcpy (host, bind, (size_t) (colon - bind));
    host[colon - bind] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    if (inet_pton (AF_INET, host, &sa->sin_addr) != 1) {
        snprintf (err, err_size, "'%s': '%s' is not an IPv4 address", bind, host);
        return -1;
    }
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
        snprintf (err, err_size, "'%s': the port must be 1..65535", bind);
        return -1;
    }
    sa->sin_port = htons ((uint16_t) port);
    return 0;
}

int
metrics_http_check_bind (const char *bind, char *err, size_t err_size)
{
    struct sockaddr_in sa;
    return s_parse_bind (bind, &sa, err, err_size);
}

static enum MHD_Result
s_answer (struct MHD_Connection *connection, unsigned int code, const char *content_type,
          void *body, size_t size, enum MHD_ResponseMemoryMode mode, bool allow_get)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, body, mode);
    if (!response) {
        if (mode == MHD_RESPMEM_MUST_FREE) {
            free (body);
        }
        return MHD_NO; //  out of memory: the connection is closed
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (allow_get) {
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, "GET");
    }
    enum MHD_Result rc = MHD_queue_response (connection, code, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_text (struct MHD_Connection *connection, unsigned int code, const char *text)
{
    return s_answer (connection, code, "text/plain; charset=utf-8", (void *) text, strlen (text),
                     MHD_RESPMEM_PERSISTENT, code == MHD_HTTP_METHOD_NOT_ALLOWED);
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) con_cls;
    metrics_http_t *self = cls;
    assert (self && url && method);
    if (strcmp (method, MHD_HTTP_METHOD_GET) != 0) {
        return s_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
    }
    if (strcmp (url, "/metrics") == 0) {
        size_t size = 0;
        char *text = metrics_text (self->metrics, &size);
        if (!text) {
            return s_text (connection, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
        }
        return s_answer (connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                         size, MHD_RESPMEM_MUST_FREE, false);
    }
    if (strcmp (url, "/healthz") == 0) {
        int64_t age_ms = metrics_age_ms (self->metrics);
        bool live = age_ms >= 0 && age_ms <= METRICS_STALE_MS;
        return s_text (connection, live ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                       live ? "ok\n" : "the loop has not published recently\n");
    }
    if (strcmp (url, "/readyz") == 0) {
        char reason[160];
        char body[200];
        int64_t age_ms = metrics_age_ms (self->metrics);
        bool ready = metrics_ready (self->metrics, reason, sizeof reason);
        if (age_ms < 0 || age_ms > METRICS_STALE_MS) {
            ready = false;
            snprintf (reason, sizeof reason, "the loop has not published recently");
        }
        snprintf (body, sizeof body, "%s\n", ready ? "ready" : reason);
        char *copy = strdup (body);
        if (!copy) {
            return MHD_NO;
        }
        return s_answer (connection, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                         "text/plain; charset=utf-8", copy, strlen (copy), MHD_RESPMEM_MUST_FREE,
                         false);
    }
    return s_text (connection, MHD_HTTP_NOT_FOUND, "not found: /metrics, /healthz, /readyz\n");
}

metrics_http_t *
metrics_http_new (const char *bind, metrics_t *metrics, char *err, size_t err_size)
{
    assert (bind && metrics && err);
    struct sockaddr_in sa;
    if (s_parse_bind (bind, &sa, err, err_size) != 0) {
        return NULL;
    }
    metrics_http_t *self = calloc (1, sizeof (*self));
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->metrics = metrics;
    self->daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, s_handle, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int) S_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_MEMORY_BYTES_MAX, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, err_size, "cannot serve HTTP on %s (address in use?)", bind);
        free (self);
        return NULL;
    }
    return self;
}

void
metrics_http_destroy (metrics_http_t **self_p)
{
    assert (self_p);
    metrics_http_t *self = *self_p;
    if (!self) {
        return;
    }
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}
