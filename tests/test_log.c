/*  test_log.c: the hygiene of log lines (common/log.c).

    1. Escaping: every byte a message can hold reaches the line as printable
       ASCII; the escape is reversible; a line cut by the size limit still
       holds no raw control byte and ends with "...".
    2. Rate limit: one line per call site per interval, the count of what
       was suppressed on the next line of that site; sites are independent,
       warnings and errors are limited alike, info lines and rl_log are
       not, lines below the level are not counted.
    3. JSON lines: each line is one JSON object (parsed with cJSON) with
       time (RFC 3339 UTC, ms), level, process, the instance under the
       process's key, event (named or FILE.FUNCTION) and message; the
       request id while one is set; the suppressed count; a hostile or cut
       message stays valid JSON and its text is the text format's.

    Each test sends stderr to a temporary file and reads it back.
*/
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "log.h"
#include "rl_limits.h"

#define CAPTURE_SIZE_MAX (1u << 20)

typedef struct {
    char path[64];
    int saved_fd;
} capture_t;

static void
s_capture_start (capture_t *capture)
{
    snprintf (capture->path, sizeof capture->path, "/tmp/rl_test_log_XXXXXX");
    int fd = mkstemp (capture->path);
    assert_true (fd >= 0);
    fflush (stderr);
    capture->saved_fd = dup (STDERR_FILENO);
    assert_true (capture->saved_fd >= 0);
    assert_true (dup2 (fd, STDERR_FILENO) >= 0);
    close (fd);
}

//  Restores stderr; returns what was written (malloc'd, NUL-terminated).
static char *
s_capture_end (capture_t *capture, size_t *size_p)
{
    assert_true (dup2 (capture->saved_fd, STDERR_FILENO) >= 0);
    close (capture->saved_fd);
    FILE *file = fopen (capture->path, "rb");
    assert_non_null (file);
    char *text = malloc (CAPTURE_SIZE_MAX + 1);
    assert_non_null (text);
    size_t size = fread (text, 1, CAPTURE_SIZE_MAX, file);
    fclose (file);
    unlink (capture->path);
    text[size] = '\0';
    if (size_p) {
        *size_p = size;
    }
    return text;
}

static size_t
s_count (const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *at = strstr (text, needle); at; at = strstr (at + 1, needle)) {
        count++;
    }
    return count;
}

//  Every byte is printable ASCII or the '\n' that ends a line.
static void
s_assert_printable (const char *text, size_t size)
{
    for (size_t index = 0; index < size; index++) {
        unsigned char byte = (unsigned char) text[index];
        if (byte != '\n' && (byte < 0x20 || byte >= 0x7f)) {
            fail_msg ("raw byte 0x%02x at offset %zu", byte, index);
        }
    }
}

static void
s_sleep_ms (int ms)
{
    struct timespec pause = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep (&pause, NULL);
}

//  Escaping --------------------------------------------------------------------

static int
s_hex_value (char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void
test_escape_every_byte (void **state)
{
    (void) state;
    char text[256];
    for (int byte = 0; byte < 256; byte++) {
        text[byte] = (char) byte;
    }
    char out[256 * 4 + 1];
    size_t used = 0;
    size_t size = rl_log_escape (text, sizeof text, out, sizeof out, &used);
    assert_int_equal (used, sizeof text);
    assert_int_equal (strlen (out), size);
    s_assert_printable (out, size);
    assert_null (strchr (out, '\n'));
    //  Reversible: "\xNN" is the only use of a backslash.
    char back[256];
    size_t back_size = 0;
    for (size_t index = 0; index < size; back_size++) {
        if (out[index] == '\\') {
            assert_true (index + 3 < size + 1 && out[index + 1] == 'x');
            int high = s_hex_value (out[index + 2]);
            int low = s_hex_value (out[index + 3]);
            assert_true (high >= 0 && low >= 0);
            back[back_size] = (char) (high * 16 + low);
            index += 4;
        } else {
            back[back_size] = out[index];
            index += 1;
        }
    }
    assert_int_equal (back_size, sizeof text);
    assert_memory_equal (back, text, sizeof text);
    //  A full buffer stops before an escape that does not fit.
    char small[6];
    size = rl_log_escape ("ab\x1b"
                          "c",
                          4, small, sizeof small, &used);
    assert_int_equal (size, 2);
    assert_int_equal (used, 2);
    assert_string_equal (small, "ab");
}

static void
test_escape_line (void **state)
{
    (void) state;
    capture_t capture;
    s_capture_start (&capture);
    rl_warn ("name '%s' from the wire", "ev\x1b[2Jil\\x\x7f\xff\ttab\nline");
    size_t size = 0;
    char *text = s_capture_end (&capture, &size);
    s_assert_printable (text, size);
    assert_int_equal (s_count (text, "\n"), 1);
    assert_non_null (strstr (text,
                             " WARN name 'ev\\x1b[2Jil\\x5cx\\x7f\\xff\\x09tab\\x0aline' from "
                             "the wire\n"));
    free (text);
}

static void
test_escape_cut_line (void **state)
{
    (void) state;
    static char message[3000];
    memset (message, 0x1b, sizeof message - 1);
    capture_t capture;
    s_capture_start (&capture);
    rl_error ("%s", message);
    rl_error ("after");
    size_t size = 0;
    char *text = s_capture_end (&capture, &size);
    s_assert_printable (text, size);
    char *newline = strchr (text, '\n');
    assert_non_null (newline);
    size_t line_size = (size_t) (newline - text) + 1;
    assert_true (line_size <= 1024);
    assert_true (line_size > 900);
    assert_memory_equal (newline - 7, "\\x1b...", 7); //  whole escapes only
    assert_non_null (strstr (newline + 1, " ERROR after\n"));
    free (text);
}

//  Rate limit -----------------------------------------------------------------

static void
s_warn_site_a (int n)
{
    rl_warn ("site a %d", n);
}

static void
s_warn_site_b (int n)
{
    rl_warn ("site b %d", n);
}

static void
s_error_site (int n)
{
    rl_error ("error %d", n);
}

static void
s_unlimited_site (int n)
{
    rl_log (RL_LOG_ERROR, "unlimited %d", n);
    rl_info ("info %d", n);
}

static void
test_rate_limit (void **state)
{
    (void) state;
    rl_log_set_warn_interval_ms (300);
    capture_t capture;
    s_capture_start (&capture);
    for (int n = 0; n < 1000; n++) {
        s_warn_site_a (n);
        if (n < 10) {
            s_warn_site_b (n);
        }
        if (n < 3) {
            s_error_site (n); //  limited like a warning
            s_unlimited_site (n);
        }
    }
    s_sleep_ms (350);
    s_warn_site_a (1000);
    s_warn_site_a (1001);
    s_warn_site_b (1000);
    s_error_site (1000);
    size_t size = 0;
    char *text = s_capture_end (&capture, &size);
    s_assert_printable (text, size);
    assert_int_equal (s_count (text, " WARN site a "), 2);
    assert_int_equal (s_count (text, " WARN site b "), 2);
    assert_int_equal (s_count (text, " ERROR error "), 2);
    assert_non_null (strstr (text, " ERROR error 0\n"));
    assert_non_null (strstr (text, " ERROR error 1000 [2 similar lines suppressed]\n"));
    assert_int_equal (s_count (text, " ERROR unlimited "), 3);
    assert_int_equal (s_count (text, " INFO info "), 3);
    assert_non_null (strstr (text, " WARN site a 0\n"));
    assert_non_null (strstr (text, " WARN site a 1000 [999 similar lines suppressed]\n"));
    assert_non_null (strstr (text, " WARN site b 0\n"));
    assert_non_null (strstr (text, " WARN site b 1000 [9 similar lines suppressed]\n"));
    assert_null (strstr (text, "site a 1001"));
    free (text);
    rl_log_set_warn_interval_ms (RL_LOG_WARN_INTERVAL_MS);
}

static void
test_rate_limit_level_and_off (void **state)
{
    (void) state;
    rl_log_set_warn_interval_ms (300);
    capture_t capture;
    s_capture_start (&capture);
    rl_log_cause_t cause = {0};
    rl_log_set_level (RL_LOG_ERROR);
    for (int n = 0; n < 5; n++) {
        rl_log_limited (&cause, RL_LOG_WARN, "hidden %d", n); //  not counted
    }
    rl_log_set_level (RL_LOG_INFO);
    rl_log_limited (&cause, RL_LOG_WARN, "first");
    rl_log_limited (&cause, RL_LOG_WARN, "dropped");
    s_sleep_ms (350);
    rl_log_limited (&cause, RL_LOG_WARN, "second");
    rl_log_set_warn_interval_ms (0); //  off
    rl_log_cause_t other = {0};
    for (int n = 0; n < 4; n++) {
        rl_log_limited (&other, RL_LOG_WARN, "unlimited %d", n);
    }
    char *text = s_capture_end (&capture, NULL);
    assert_null (strstr (text, "hidden"));
    assert_null (strstr (text, "dropped"));
    assert_non_null (strstr (text, " WARN first\n"));
    assert_non_null (strstr (text, " WARN second [1 similar lines suppressed]\n"));
    assert_int_equal (s_count (text, " WARN unlimited "), 4);
    free (text);
    rl_log_set_warn_interval_ms (RL_LOG_WARN_INTERVAL_MS);
}

//  JSON --------------------------------------------------------------------------

//  Parses one JSON line of text (from *cursor_p, advanced past it): an
//  object with every field of every line, checked.
static cJSON *
s_json_line (const char **cursor_p)
{
    const char *line = *cursor_p;
    const char *end = strchr (line, '\n');
    assert_non_null (end);
    assert_true (end - line < 1024);
    char *copy = strndup (line, (size_t) (end - line));
    assert_non_null (copy);
    cJSON *object = cJSON_Parse (copy);
    if (!object || !cJSON_IsObject (object)) {
        fail_msg ("not a JSON object: %s", copy);
    }
    free (copy);
    *cursor_p = end + 1;
    const char *time_text = cJSON_GetStringValue (cJSON_GetObjectItem (object, "time"));
    assert_non_null (time_text);
    //  2026-11-25T14:25:01.123Z
    assert_int_equal (strlen (time_text), 24);
    assert_true (time_text[4] == '-' && time_text[7] == '-' && time_text[10] == 'T'
                 && time_text[13] == ':' && time_text[16] == ':' && time_text[19] == '.'
                 && time_text[23] == 'Z');
    const char *level = cJSON_GetStringValue (cJSON_GetObjectItem (object, "level"));
    assert_non_null (level);
    assert_true (strcmp (level, "debug") == 0 || strcmp (level, "info") == 0
                 || strcmp (level, "warn") == 0 || strcmp (level, "error") == 0);
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (object, "process")), "test");
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (object, "test")), "t1");
    assert_non_null (cJSON_GetStringValue (cJSON_GetObjectItem (object, "event")));
    assert_non_null (cJSON_GetStringValue (cJSON_GetObjectItem (object, "message")));
    return object;
}

static void
s_json_site (int n)
{
    rl_warn ("json site %d", n);
}

static void
test_json_lines (void **state)
{
    (void) state;
    static char long_message[3000];
    memset (long_message, '"', sizeof long_message - 1);
    rl_log_set_warn_interval_ms (300);
    rl_log_set_format (RL_LOG_FORMAT_JSON);
    capture_t capture;
    s_capture_start (&capture);
    rl_warn ("name '%s' from the wire", "ev\x1b[2Jil\\x\"q\x7f\xff\ttab\nline");
    rl_log_request_begin (18446744073709551615ull);
    rl_log_event (RL_LOG_ERROR, "two_phase_alarm", "alarm");
    rl_log_request_end ();
    rl_info ("no request");
    rl_error ("%s", long_message);
    for (int n = 0; n < 5; n++) {
        s_json_site (n);
    }
    s_sleep_ms (350);
    s_json_site (5);
    size_t size = 0;
    char *text = s_capture_end (&capture, &size);
    rl_log_set_format (RL_LOG_FORMAT_TEXT);
    rl_log_set_warn_interval_ms (RL_LOG_WARN_INTERVAL_MS);
    s_assert_printable (text, size);
    assert_int_equal (s_count (text, "\n"), 6);
    const char *cursor = text;

    cJSON *line = s_json_line (&cursor);
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "level")), "warn");
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "event")),
                         "test_log.test_json_lines");
    //  The text format's message: escaped bytes, then JSON on top.
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "message")),
                         "name 'ev\\x1b[2Jil\\x5cx\"q\\x7f\\xff\\x09tab\\x0aline' from the wire");
    assert_null (cJSON_GetObjectItem (line, "request_id"));
    assert_null (cJSON_GetObjectItem (line, "suppressed"));
    cJSON_Delete (line);

    line = s_json_line (&cursor);
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "level")), "error");
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "event")),
                         "two_phase_alarm");
    //  64-bit exact in the text (cJSON reads numbers as doubles).
    assert_non_null (strstr (text, "\"request_id\":18446744073709551615,"));
    assert_true (cJSON_IsNumber (cJSON_GetObjectItem (line, "request_id")));
    cJSON_Delete (line);

    line = s_json_line (&cursor);
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "message")),
                         "no request");
    assert_null (cJSON_GetObjectItem (line, "request_id"));
    cJSON_Delete (line);

    line = s_json_line (&cursor); //  cut: still one object, ends with "..."
    const char *message = cJSON_GetStringValue (cJSON_GetObjectItem (line, "message"));
    assert_true (strlen (message) > 400);
    assert_string_equal (message + strlen (message) - 4, "\"...");
    cJSON_Delete (line);

    line = s_json_line (&cursor);
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "message")),
                         "json site 0");
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "event")),
                         "test_log.json_site");
    cJSON_Delete (line);

    line = s_json_line (&cursor);
    assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (line, "message")),
                         "json site 5");
    assert_int_equal (cJSON_GetNumberValue (cJSON_GetObjectItem (line, "suppressed")), 4);
    cJSON_Delete (line);
    free (text);
}

int
main (void)
{
    unsetenv ("RL_LOG_LEVEL");
    rl_log_init ("test", "t1");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_escape_every_byte),        cmocka_unit_test (test_escape_line),
        cmocka_unit_test (test_escape_cut_line),          cmocka_unit_test (test_rate_limit),
        cmocka_unit_test (test_rate_limit_level_and_off), cmocka_unit_test (test_json_lines),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
