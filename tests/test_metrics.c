/*  test_metrics.c: the metrics registry (common/metrics.c) and its HTTP
    endpoints (common/metrics_http.c), in one process.

    The registry: the text format of counters, gauges and labelled
    histograms (cumulative buckets, +Inf, sum, count), nothing visible
    before a publish, the shared tables (scalars; replies by operation and
    status, with codes past their bound counted as "unknown"), the limits (a full registry gives -1
   and the updates of -1 are ignored). The server: /metrics, /healthz and /readyz, and bad input: an
   unknown path (404), other methods (405 with Allow: GET), a request larger than its limit (4xx,
   and the server still answers), bad
    --metrics-bind values, a port taken.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "metrics_http.h"
#include "proc.h"
#include "proto.h"

static const double s_bounds[] = {0.001, 0.01, 0.1};

static void
test_text_format (void **state)
{
    (void) state;
    metrics_t *m = metrics_new ();
    assert_non_null (m);
    int c = metrics_series (
        m, metrics_family (m, METRICS_COUNTER, "t_requests_total", "Requests.", NULL, 0), "");
    int fam = metrics_family (m, METRICS_GAUGE, "t_depth", "Depth.", NULL, 0);
    int g1 = metrics_series (m, fam, "queue=\"a\"");
    int g2 = metrics_series (m, fam, "queue=\"b\"");
    assert_int_equal (metrics_series (m, fam, "queue=\"a\""), g1); //  found, not added
    int h = metrics_series (
        m, metrics_family (m, METRICS_HISTOGRAM, "t_sync_seconds", "Syncs.", s_bounds, 3),
        "op=\"x\"");
    assert_true (c >= 0 && g1 >= 0 && g2 >= 0 && h >= 0);
    size_t size = 0;
    char *text = metrics_text (m, &size);
    assert_non_null (text);
    assert_int_equal (size, 0); //  nothing published yet
    free (text);
    metrics_set (m, c, 12345678);
    metrics_set (m, g1, 0.5);
    metrics_set (m, g2, 3);
    metrics_observe (m, h, 0.0005);
    metrics_observe (m, h, 0.05);
    metrics_observe (m, h, 0.05);
    metrics_observe (m, h, 7);
    metrics_set (m, -1, 1); //  ignored
    metrics_observe (m, -1, 1);
    metrics_publish (m);
    text = metrics_text (m, &size);
    assert_non_null (text);
    assert_int_equal (strlen (text), size);
    const char *want = "# HELP t_requests_total Requests.\n"
                       "# TYPE t_requests_total counter\n"
                       "t_requests_total 12345678\n"
                       "# HELP t_depth Depth.\n"
                       "# TYPE t_depth gauge\n"
                       "t_depth{queue=\"a\"} 0.5\n"
                       "t_depth{queue=\"b\"} 3\n"
                       "# HELP t_sync_seconds Syncs.\n"
                       "# TYPE t_sync_seconds histogram\n"
                       "t_sync_seconds_bucket{op=\"x\",le=\"0.001\"} 1\n"
                       "t_sync_seconds_bucket{op=\"x\",le=\"0.01\"} 1\n"
                       "t_sync_seconds_bucket{op=\"x\",le=\"0.1\"} 3\n"
                       "t_sync_seconds_bucket{op=\"x\",le=\"+Inf\"} 4\n"
                       "t_sync_seconds_sum{op=\"x\"} 7.1005\n"
                       "t_sync_seconds_count{op=\"x\"} 4\n";
    assert_string_equal (text, want);
    free (text);
    //  Changes are invisible until the next publish.
    metrics_set (m, c, 1);
    text = metrics_text (m, &size);
    assert_non_null (strstr (text, "t_requests_total 12345678\n"));
    free (text);
    metrics_destroy (&m);
    assert_null (m);
}

static void
test_tables (void **state)
{
    (void) state;
    metrics_t *m = metrics_new ();
    assert_non_null (m);
    static const metrics_scalar_t table[] = {
        {METRICS_COUNTER, "t_drops_total", "Drops."},
        {METRICS_GAUGE, "t_waiting", "Waiting."},
    };
    int series[2] = {-1, -1};
    metrics_scalars (m, table, 2, series);
    assert_true (series[0] >= 0 && series[1] >= 0 && series[0] != series[1]);
    metrics_replies_t *replies = metrics_replies_new (m, "t_replies_total", "Replies.");
    assert_non_null (replies);
    metrics_set (m, series[0], 2);
    metrics_set (m, series[1], 7);
    metrics_replies_update (replies); //  nothing counted: no series
    metrics_publish (m);
    size_t size = 0;
    char *text = metrics_text (m, &size);
    assert_non_null (text);
    assert_null (strstr (text, "t_replies_total"));
    free (text);
    metrics_replies_count (replies, RL_OP_CREATE_TRANSFERS, RL_STATUS_OK);
    metrics_replies_count (replies, RL_OP_CREATE_TRANSFERS, RL_STATUS_OK);
    metrics_replies_count (replies, RL_OP_STATUS, RL_STATUS_BUSY);
    metrics_replies_count (replies, RL_OP_STATUS, METRICS_CODES_MAX + 5); //  the last slot
    metrics_replies_update (replies);
    metrics_publish (m);
    text = metrics_text (m, &size);
    assert_non_null (text);
    const char *want = "# HELP t_drops_total Drops.\n"
                       "# TYPE t_drops_total counter\n"
                       "t_drops_total 2\n"
                       "# HELP t_waiting Waiting.\n"
                       "# TYPE t_waiting gauge\n"
                       "t_waiting 7\n"
                       "# HELP t_replies_total Replies.\n"
                       "# TYPE t_replies_total counter\n"
                       "t_replies_total{operation=\"create_transfers\",status=\"ok\"} 2\n"
                       "t_replies_total{operation=\"status\",status=\"busy\"} 1\n"
                       "t_replies_total{operation=\"status\",status=\"unknown\"} 1\n";
    assert_string_equal (text, want);
    free (text);
    metrics_replies_destroy (&replies);
    assert_null (replies);
    metrics_replies_destroy (&replies); //  safe twice
    metrics_destroy (&m);
}

static void
test_limits (void **state)
{
    (void) state;
    metrics_t *m = metrics_new ();
    assert_non_null (m);
    int fam = metrics_family (m, METRICS_GAUGE, "t_many", "Many.", NULL, 0);
    char labels[METRICS_LABELS_SIZE_MAX + 8];
    int last = 0;
    for (int i = 0; i < METRICS_SERIES_MAX + 5; i++) {
        snprintf (labels, sizeof labels, "i=\"%d\"", i);
        last = metrics_series (m, fam, labels);
        assert_true (i < METRICS_SERIES_MAX ? last == i : last == -1);
    }
    metrics_set (m, last, 1); //  -1: ignored
    memset (labels, 'a', sizeof labels - 1);
    labels[sizeof labels - 1] = '\0';
    assert_int_equal (metrics_series (m, fam, labels), -1); //  labels too long
    assert_int_equal (metrics_series (m, -1, ""), -1);
    for (int i = 1; i < METRICS_FAMILIES_MAX; i++) {
        assert_true (metrics_family (m, METRICS_GAUGE, "t_f", "F.", NULL, 0) >= 0);
    }
    assert_int_equal (metrics_family (m, METRICS_GAUGE, "t_f", "F.", NULL, 0), -1);
    metrics_destroy (&m);
}

//  One HTTP exchange: sends request (raw bytes), returns the status code
//  and copies the answer into out.
static int
s_http (int port, const char *request, size_t request_size, char *out, size_t out_size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal (connect (fd, (struct sockaddr *) &sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t sent = 0;
    while (sent < request_size) {
        ssize_t n = send (fd, request + sent, request_size - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            break; //  the server may close early on an oversize request
        }
        sent += (size_t) n;
    }
    size_t got = 0;
    ssize_t n;
    while (got + 1 < out_size && (n = recv (fd, out + got, out_size - 1 - got, 0)) > 0) {
        got += (size_t) n;
    }
    out[got] = '\0';
    close (fd);
    int code = 0;
    if (sscanf (out, "HTTP/1.%*d %d", &code) != 1) {
        return -1;
    }
    return code;
}

static int
s_get (int port, const char *method, const char *path, char *out, size_t out_size)
{
    char request[256];
    int n = snprintf (request, sizeof request,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method,
                      path);
    return s_http (port, request, (size_t) n, out, out_size);
}

static void
test_http (void **state)
{
    (void) state;
    metrics_t *m = metrics_new ();
    assert_non_null (m);
    int g = metrics_series (m, metrics_family (m, METRICS_GAUGE, "t_up", "Up.", NULL, 0), "");
    int port = proc_free_port ();
    assert_true (port > 0);
    char bind[64];
    snprintf (bind, sizeof bind, "127.0.0.1:%d", port);
    char err[256];
    metrics_http_t *http = metrics_http_new (bind, m, err, sizeof err);
    assert_non_null (http);
    static char out[65536];

    //  Before the first publish: not live, not ready.
    assert_int_equal (s_get (port, "GET", "/healthz", out, sizeof out), 503);
    assert_int_equal (s_get (port, "GET", "/readyz", out, sizeof out), 503);
    metrics_set (m, g, 1);
    metrics_set_ready (m, false, "recovering");
    metrics_publish (m);
    assert_int_equal (s_get (port, "GET", "/healthz", out, sizeof out), 200);
    assert_int_equal (s_get (port, "GET", "/readyz", out, sizeof out), 503);
    assert_non_null (strstr (out, "recovering"));
    metrics_set_ready (m, true, "");
    metrics_publish (m);
    assert_int_equal (s_get (port, "GET", "/readyz", out, sizeof out), 200);
    assert_int_equal (s_get (port, "GET", "/metrics", out, sizeof out), 200);
    assert_non_null (strstr (out, "\r\n\r\n# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n"));
    assert_non_null (strstr (out, "text/plain; version=0.0.4"));
    //  A query string is not part of the path.
    assert_int_equal (s_get (port, "GET", "/metrics?x=1", out, sizeof out), 200);

    //  Bad input.
    assert_int_equal (s_get (port, "GET", "/", out, sizeof out), 404);
    assert_int_equal (s_get (port, "GET", "/metrics/x", out, sizeof out), 404);
    assert_int_equal (s_get (port, "GET", "/../etc/passwd", out, sizeof out), 404);
    assert_int_equal (s_get (port, "POST", "/metrics", out, sizeof out), 405);
    assert_non_null (strstr (out, "Allow: GET"));
    assert_int_equal (s_get (port, "DELETE", "/healthz", out, sizeof out), 405);
    assert_int_equal (s_get (port, "PUT", "/nothing", out, sizeof out), 405);
    const char *body = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal (s_http (port, body, strlen (body), out, sizeof out), 405);
    //  Oversize: a header of 64 KiB, then a path of 64 KiB.
    size_t big_size = 70000;
    char *big = malloc (big_size);
    assert_non_null (big);
    int n = snprintf (big, big_size, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset (big + n, 'a', big_size - (size_t) n - 4);
    memcpy (big + big_size - 4, "\r\n\r\n", 4);
    int code = s_http (port, big, big_size, out, sizeof out);
    assert_true (code >= 400 && code < 500);
    n = snprintf (big, big_size, "GET /");
    memset (big + n, 'b', big_size - (size_t) n - 30);
    memcpy (big + big_size - 30, " HTTP/1.1\r\nHost: x\r\n\r\n\0\0\0\0\0\0\0", 30);
    code = s_http (port, big, strlen (big), out, sizeof out);
    assert_true (code >= 400 && code < 500);
    free (big);
    //  Garbage is refused, and the server still answers afterwards.
    const char *garbage = "\x01\x02 not http at all\r\n\r\n";
    code = s_http (port, garbage, strlen (garbage), out, sizeof out);
    assert_true (code == -1 || (code >= 400 && code < 500));
    assert_int_equal (s_get (port, "GET", "/metrics", out, sizeof out), 200);

    //  The port is taken now: a second server cannot start.
    metrics_http_t *second = metrics_http_new (bind, m, err, sizeof err);
    assert_null (second);
    assert_non_null (strstr (err, bind));
    metrics_http_destroy (&http);
    assert_null (http);
    metrics_destroy (&m);
}

static void
test_check_bind (void **state)
{
    (void) state;
    char err[256];
    assert_int_equal (metrics_http_check_bind ("127.0.0.1:9100", err, sizeof err), 0);
    assert_int_equal (metrics_http_check_bind ("0.0.0.0:65535", err, sizeof err), 0);
    const char *bad[] = {"",
                         "9100",
                         ":9100",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "127.0.0.1:91x",
                         "127.0.0.1:-1",
                         "localhost:9100",
                         "::1:9100",
                         "127.0.0.1.5:9100",
                         "tcp://127.0.0.1:9100",
                         "127.0.0.1:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal (metrics_http_check_bind (bad[i], err, sizeof err), -1);
        assert_true (strlen (err) > 0);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_text_format), cmocka_unit_test (test_tables),
        cmocka_unit_test (test_limits),      cmocka_unit_test (test_http),
        cmocka_unit_test (test_check_bind),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
