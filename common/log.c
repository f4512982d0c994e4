/*  log.c: one line per event on stderr, in one write(2), as text or JSON.

    DESIGN
    A line is formatted whole into a buffer on the stack, then written with
    a single write(2) to fd 2. The buffer is at most PIPE_BUF bytes, so when
    stderr is a pipe or a file opened for append (the test harness captures
    children that way) lines of concurrent threads and processes never
    interleave inside a line. Two formats (rl_log_set_format):

        2026-11-25T14:25:01.123Z shard s1 WARN message
        {"time":"2026-11-25T14:25:01.123Z","level":"warn","process":"shard",
         "shard":"s1","request_id":42,"event":"admin.resolve","message":"message"}

    In JSON the instance's name is under a key named after the process
    ("shard", "router", ...); "request_id" appears when the thread has a
    current request (rl_log_request_begin), "suppressed" when lines of the
    call site were dropped by the rate limit.

    Messages carry bytes that came off the network (names, endpoints, ring
    errors). The whole formatted message is therefore escaped before it is
    written: a byte below 0x20, 0x7f, a byte of 0x80 or more, and the
    backslash itself become "\xNN" (two lowercase hex digits). A line holds
    printable ASCII only, so no peer can move a terminal's cursor, colour
    it, forge a second line or hide text from an operator; and since a
    literal backslash is escaped too, "\x1b" in a line always means that
    the message held the byte 0x1b. In JSON that escaped text is written
    as a JSON string (its '"' and '\' escaped once more), so a JSON reader
    gets exactly the message of the text format.

    Events. A call site names its event (rl_log_event), or its event is
    "FILE.FUNCTION": the source file's name without directory and ".c",
    and the function's without a leading "s_" (static helpers) or the
    file's own prefix, e.g. "admin.resolve" (admin_resolve in admin.c) or
    "server.enter_failed" (s_enter_failed in server.c). It stays as long as the code
    that writes the line does, so it can be counted and filtered on.

    Warnings and errors are rate-limited per cause: rl_warn and rl_error
    keep one rl_log_cause_t per call site, and a call site writes at most
    one line per interval (RL_LOG_WARN_INTERVAL_MS). The lines it drops
    meanwhile are counted, and the next line it writes ends with "[N
    similar lines suppressed]" (JSON: "suppressed":N). A peer that makes a
    process warn or fail once per message therefore costs one line a
    second per cause, whatever its rate. Info and debug lines are not
    limited: they are not caused by a peer's bytes alone; nor is rl_log,
    for callers with a budget of their own.

    INVARIANTS
    1. Every line ends with exactly one '\n' and holds no other byte below
       0x20 and no byte of 0x7f or more; a message too long for the buffer
       (after escaping) is cut and ends with "..." so a reader sees that it
       was cut. The suppressed count is never cut away. A JSON line is one
       valid JSON object whatever the message.
    2. rl_log_at keeps errno, so a caller can log and then still use errno.
    3. The level is read from RL_LOG_LEVEL by rl_log_init, or lazily by the
       first line when nobody called rl_log_init; rl_log_set_level wins
       over both.
    4. A cause writes at most one line per interval; a line below the level
       is neither written nor counted as suppressed.

    LIMITS
    RL_LOG_LINE_SIZE_MAX bytes per line; RL_LOG_NAME_SIZE_MAX bytes of the
    component and of the instance name (longer ones are cut);
    RL_LOG_EVENT_SIZE_MAX bytes of an event.

    rl_log_init and rl_log_set_format set their globals without a lock:
    call them at start, before threads log. The causes share one mutex.
*/
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "rl_limits.h"

#define RL_LOG_LINE_SIZE_MAX  1024 //  bytes of one line, '\n' included
#define RL_LOG_NAME_SIZE_MAX  32   //  bytes of component or name, NUL included
#define RL_LOG_EVENT_SIZE_MAX 64   //  bytes of an event, NUL included

_Static_assert(RL_LOG_LINE_SIZE_MAX <= PIPE_BUF, "a line is one atomic write to a pipe");

#define RL_LOG_LEVEL_UNSET (-1)

static atomic_int s_level = RL_LOG_LEVEL_UNSET;
static atomic_int s_warn_interval_ms = RL_LOG_WARN_INTERVAL_MS;
static atomic_int s_format = RL_LOG_FORMAT_TEXT;
static pthread_mutex_t s_causes_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_component[RL_LOG_NAME_SIZE_MAX] = "-";
static char s_name[RL_LOG_NAME_SIZE_MAX] = "-";
static _Thread_local bool s_request_set;
static _Thread_local uint64_t s_request_id;

static const char *s_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *s_level_names_lower[] = {"debug", "info", "warn", "error"};

int
rl_log_level_parse (const char *text, rl_log_level_t *out)
{
    assert (text && out);
    for (int level = RL_LOG_DEBUG; level <= RL_LOG_ERROR; level++) {
        if (strcasecmp (text, s_level_names_lower[level]) == 0) {
            *out = (rl_log_level_t) level;
            return 0;
        }
    }
    return -1;
}

int
rl_log_format_parse (const char *text, rl_log_format_t *out)
{
    assert (text && out);
    if (strcmp (text, "text") == 0) {
        *out = RL_LOG_FORMAT_TEXT;
    } else if (strcmp (text, "json") == 0) {
        *out = RL_LOG_FORMAT_JSON;
    } else {
        return -1;
    }
    return 0;
}

//  Reads RL_LOG_LEVEL; an unknown value gives info and a warning line.
static rl_log_level_t
s_level_from_env (bool *bad_p)
{
    const char *value = getenv ("RL_LOG_LEVEL");
    *bad_p = false;
    if (value == NULL || *value == '\0') {
        return RL_LOG_INFO;
    }
    rl_log_level_t level = RL_LOG_INFO;
    if (rl_log_level_parse (value, &level) != 0) {
        *bad_p = true;
        return RL_LOG_INFO;
    }
    return level;
}

//  The name, escaped like a message, with spaces as '_' (the text format's
//  fields are split by spaces).
static void
s_copy_name (char *target, const char *source)
{
    assert (source);
    if (*source == '\0') {
        source = "-";
    }
    rl_log_escape (source, strlen (source), target, RL_LOG_NAME_SIZE_MAX, NULL);
    for (char *cursor = target; *cursor; cursor++) {
        if (*cursor == ' ') {
            *cursor = '_';
        }
    }
}

void
rl_log_init (const char *component, const char *name)
{
    assert (component);
    assert (name);
    s_copy_name (s_component, component);
    s_copy_name (s_name, name);
    bool bad;
    rl_log_level_t level = s_level_from_env (&bad);
    atomic_store (&s_level, (int) level);
    if (bad) {
        rl_warn ("RL_LOG_LEVEL '%s' is not debug, info, warn or error; using info",
                 getenv ("RL_LOG_LEVEL"));
    }
}

void
rl_log_set_level (rl_log_level_t level)
{
    assert (level >= RL_LOG_DEBUG && level <= RL_LOG_ERROR);
    atomic_store (&s_level, (int) level);
}

void
rl_log_set_format (rl_log_format_t format)
{
    assert (format == RL_LOG_FORMAT_TEXT || format == RL_LOG_FORMAT_JSON);
    atomic_store (&s_format, (int) format);
}

void
rl_log_request_begin (uint64_t request_id)
{
    s_request_id = request_id;
    s_request_set = true;
}

void
rl_log_request_end (void)
{
    s_request_set = false;
}

static rl_log_level_t
s_current_level (void)
{
    int level = atomic_load_explicit (&s_level, memory_order_relaxed);
    if (level == RL_LOG_LEVEL_UNSET) {
        bool bad;
        int expected = RL_LOG_LEVEL_UNSET;
        level = (int) s_level_from_env (&bad);
        //  Another thread may have set it meanwhile: theirs wins.
        if (!atomic_compare_exchange_strong (&s_level, &expected, level)) {
            level = expected;
        }
    }
    return (rl_log_level_t) level;
}

//  Writes "2026-11-25T14:25:01.123Z" (24 characters) into buffer.
static int
s_format_time (char *buffer, size_t buffer_size)
{
    struct timespec now;
    struct tm utc;
    clock_gettime (CLOCK_REALTIME, &now);
    gmtime_r (&now.tv_sec, &utc);
    size_t size = strftime (buffer, buffer_size, "%Y-%m-%dT%H:%M:%S", &utc);
    int more = snprintf (buffer + size, buffer_size - size, ".%03ldZ", now.tv_nsec / 1000000L);
    return (int) size + more;
}

static void
s_write_all (const char *line, size_t line_size)
{
    size_t done = 0;
    //  Bounded: a short write can only happen on a non-pipe fd, and each
    //  turn either writes at least one byte or gives up.
    while (done < line_size) {
        ssize_t written = write (STDERR_FILENO, line + done, line_size - done);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            return; //  nowhere left to report it
        }
        done += (size_t) written;
    }
}

static int64_t
s_now_mono_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool
s_byte_is_plain (unsigned char byte)
{
    return byte >= 0x20 && byte < 0x7f && byte != '\\';
}

size_t
rl_log_escape (const char *text, size_t text_size, char *out, size_t out_size, size_t *used_p)
{
    assert (text || text_size == 0);
    assert (out && out_size > 0);
    static const char hex[] = "0123456789abcdef";
    size_t written = 0;
    size_t index = 0;
    for (; index < text_size; index++) {
        unsigned char byte = (unsigned char) text[index];
        if (s_byte_is_plain (byte)) {
            if (written + 1 >= out_size) {
                break;
            }
            out[written++] = (char) byte;
        } else {
            if (written + 4 >= out_size) {
                break;
            }
            out[written++] = '\\';
            out[written++] = 'x';
            out[written++] = hex[byte >> 4];
            out[written++] = hex[byte & 0x0f];
        }
    }
    out[written] = '\0';
    if (used_p) {
        *used_p = index;
    }
    return written;
}

void
rl_log_set_warn_interval_ms (int interval_ms)
{
    assert (interval_ms >= 0);
    atomic_store (&s_warn_interval_ms, interval_ms);
}

//  The event of a site: its own, or "FILE.FUNCTION" (see DESIGN).
static void
s_site_event (const rl_log_site_t *site, char *event, size_t event_size)
{
    if (!site) {
        snprintf (event, event_size, "-");
        return;
    }
    if (site->event) {
        snprintf (event, event_size, "%s", site->event);
        return;
    }
    const char *file = strrchr (site->file, '/');
    file = file ? file + 1 : site->file;
    const char *dot = strrchr (file, '.');
    int file_size = (int) (dot ? (size_t) (dot - file) : strlen (file));
    const char *function = site->function;
    if (strncmp (function, "s_", 2) == 0 && function[2] != '\0') {
        function += 2;
    } else if (strncmp (function, file, (size_t) file_size) == 0 && function[file_size] == '_'
               && function[file_size + 1] != '\0') {
        function += file_size + 1; //  "ledger_open" in ledger.c: "ledger.open"
    }
    snprintf (event, event_size, "%.*s.%s", file_size, file, function);
}

//  Appends text (printable ASCII: escaped by rl_log_escape) to line as the
//  inside of a JSON string, stopping before a character whose escape does
//  not fit below `limit`. Returns the new size; *done_p: all of it fit.
static size_t
s_json_append (char *line, size_t size, size_t limit, const char *text, bool *done_p)
{
    for (; *text; text++) {
        bool quoted = *text == '"' || *text == '\\';
        if (size + (quoted ? 2u : 1u) > limit) {
            *done_p = false;
            return size;
        }
        if (quoted) {
            line[size++] = '\\';
        }
        line[size++] = *text;
    }
    *done_p = true;
    return size;
}

//  Formats and writes one line; suppressed > 0 adds the count.
static void
s_write_line (const rl_log_site_t *site, rl_log_level_t level, uint64_t suppressed, int saved_errno,
              const char *format, va_list args)
{
    char message[RL_LOG_LINE_SIZE_MAX]; //  before escaping
    errno = saved_errno;                //  so that %m prints the caller's errno
    int message_size = vsnprintf (message, sizeof message, format, args);
    bool cut = false;
    if (message_size < 0) {
        message_size = 0;
        message[0] = '\0';
    } else if ((size_t) message_size >= sizeof message) {
        message_size = (int) sizeof message - 1;
        cut = true;
    }
    const char *ellipsis = "...";
    char line[RL_LOG_LINE_SIZE_MAX];
    size_t line_size = 0;
    char time_text[40];
    s_format_time (time_text, sizeof time_text);

    if (atomic_load_explicit (&s_format, memory_order_relaxed) == RL_LOG_FORMAT_TEXT) {
        char suffix[64] = "";
        if (suppressed > 0) {
            snprintf (suffix, sizeof suffix, " [%" PRIu64 " similar lines suppressed]", suppressed);
        }
        int size = snprintf (line, sizeof line, "%s %s %s %s ", time_text, s_component, s_name,
                             s_level_names[level]);
        assert (size > 0 && (size_t) size < sizeof line);
        size_t header_size = (size_t) size;
        //  Room for the escaped message: the line less the header, the "...",
        //  the suffix and the '\n' (its NUL is not written).
        size_t room = sizeof line - header_size - strlen (ellipsis) - strlen (suffix) - 1;
        size_t used = 0;
        line_size = header_size
                    + rl_log_escape (message, (size_t) message_size, line + header_size, room + 1,
                                     &used);
        if (cut || used < (size_t) message_size) {
            memcpy (line + line_size, ellipsis, strlen (ellipsis));
            line_size += strlen (ellipsis);
        }
        memcpy (line + line_size, suffix, strlen (suffix));
        line_size += strlen (suffix);
    } else {
        char event[RL_LOG_EVENT_SIZE_MAX];
        s_site_event (site, event, sizeof event);
        bool done = true;
        //  The header: every field but the message, whose size is bounded.
        line_size = (size_t) snprintf (line, sizeof line,
                                       "{\"time\":\"%s\",\"level\":\"%s\","
                                       "\"process\":\"",
                                       time_text, s_level_names_lower[level]);
        line_size = s_json_append (line, line_size, sizeof line, s_component, &done);
        line_size += (size_t) snprintf (line + line_size, sizeof line - line_size, "\",\"");
        line_size = s_json_append (line, line_size, sizeof line, s_component, &done);
        line_size += (size_t) snprintf (line + line_size, sizeof line - line_size, "\":\"");
        line_size = s_json_append (line, line_size, sizeof line, s_name, &done);
        line_size += (size_t) snprintf (line + line_size, sizeof line - line_size, "\"");
        if (s_request_set) {
            line_size += (size_t) snprintf (line + line_size, sizeof line - line_size,
                                            ",\"request_id\":%" PRIu64, s_request_id);
        }
        line_size += (size_t) snprintf (line + line_size, sizeof line - line_size,
                                        ",\"event\":\"%s\",\"message\":\"", event);
        char tail[64];
        int tail_size = suppressed > 0 ? snprintf (tail, sizeof tail,
                                                   "\",\"suppressed\":%" PRIu64 "}", suppressed)
                                       : snprintf (tail, sizeof tail, "\"}");
        assert (line_size + strlen (ellipsis) + (size_t) tail_size + 1 < sizeof line);
        //  The message: escaped, then quoted for JSON, within what is left.
        size_t limit = sizeof line - strlen (ellipsis) - (size_t) tail_size - 1;
        char escaped[RL_LOG_LINE_SIZE_MAX];
        size_t used = 0;
        rl_log_escape (message, (size_t) message_size, escaped, sizeof escaped, &used);
        line_size = s_json_append (line, line_size, limit, escaped, &done);
        if (cut || used < (size_t) message_size || !done) {
            memcpy (line + line_size, ellipsis, strlen (ellipsis));
            line_size += strlen (ellipsis);
        }
        memcpy (line + line_size, tail, (size_t) tail_size);
        line_size += (size_t) tail_size;
    }
    assert (line_size < sizeof line);
    line[line_size] = '\n';
    s_write_all (line, line_size + 1);
}

//  Whether a line of this cause may be written now; *suppressed_p: the
//  count to report with it.
static bool
s_cause_allows (rl_log_cause_t *cause, uint64_t *suppressed_p)
{
    int64_t now_ms = s_now_mono_ms ();
    int interval_ms = atomic_load (&s_warn_interval_ms);
    pthread_mutex_lock (&s_causes_lock);
    bool allowed = !cause->used || now_ms - cause->last_ms >= interval_ms;
    if (allowed) {
        *suppressed_p = cause->suppressed;
        cause->suppressed = 0;
        cause->last_ms = now_ms;
        cause->used = true;
    } else {
        cause->suppressed++;
    }
    pthread_mutex_unlock (&s_causes_lock);
    return allowed;
}

void
rl_log_at (rl_log_site_t *site, rl_log_level_t level, const char *format, ...)
{
    assert (site);
    assert (level >= RL_LOG_DEBUG && level <= RL_LOG_ERROR);
    assert (format);
    if (level < s_current_level ()) {
        return;
    }
    int saved_errno = errno;
    uint64_t suppressed = 0;
    if (!site->limited || s_cause_allows (&site->cause, &suppressed)) {
        va_list args;
        va_start (args, format);
        s_write_line (site, level, suppressed, saved_errno, format, args);
        va_end (args);
    }
    errno = saved_errno;
}

void
rl_log_limited (rl_log_cause_t *cause, rl_log_level_t level, const char *format, ...)
{
    assert (cause);
    assert (level >= RL_LOG_DEBUG && level <= RL_LOG_ERROR);
    assert (format);
    if (level < s_current_level ()) {
        return;
    }
    int saved_errno = errno;
    uint64_t suppressed = 0;
    if (s_cause_allows (cause, &suppressed)) {
        va_list args;
        va_start (args, format);
        s_write_line (NULL, level, suppressed, saved_errno, format, args);
        va_end (args);
    }
    errno = saved_errno;
}
