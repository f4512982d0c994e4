/*  log.c: one line per event on stderr, in one write(2).

    DESIGN
    A line is formatted whole into a buffer on the stack, then written with
    a single write(2) to fd 2. The buffer is at most PIPE_BUF bytes, so when
    stderr is a pipe or a file opened for append (the test harness captures
    children that way) lines of concurrent threads and processes never
    interleave inside a line.

        2026-11-25T14:25:01.123Z shard s1 WARN message

    Messages carry bytes that came off the network (names, endpoints, ring
    errors). The whole formatted message is therefore escaped before it is
    written: a byte below 0x20, 0x7f, a byte of 0x80 or more, and the
    backslash itself become "\xNN" (two lowercase hex digits). A line holds
    printable ASCII only, so no peer can move a terminal's cursor, colour
    it, forge a second line or hide text from an operator; and since a
    literal backslash is escaped too, "\x1b" in a line always means that
    the message held the byte 0x1b.

    Warnings are rate-limited per cause: rl_warn keeps one rl_log_cause_t
    per call site, and a call site writes at most one line per interval
    (RL_LOG_WARN_INTERVAL_MS). The lines it drops meanwhile are counted,
    and the next line it writes ends with "[N similar lines suppressed]".
    A peer that makes a shard warn once per message therefore costs one
    line a second, whatever its rate. Errors and the lower levels are not
    limited: an error needs an operator, and info and debug lines are not
    caused by a peer's bytes alone.

    INVARIANTS
    1. Every line ends with exactly one '\n' and holds no other byte below
       0x20 and no byte of 0x7f or more; a message too long for the buffer
       (after escaping) is cut and ends with "..." so a reader sees that it
       was cut. The suppressed count is never cut away.
    2. rl_log keeps errno, so a caller can log and then still use errno.
    3. The level is read from RL_LOG_LEVEL by rl_log_init, or lazily by the
       first line when nobody called rl_log_init; rl_log_set_level wins
       over both.
    4. A cause writes at most one line per interval; a line below the level
       is neither written nor counted as suppressed.

    LIMITS
    RL_LOG_LINE_SIZE_MAX bytes per line; RL_LOG_NAME_SIZE_MAX bytes of the
    component and of the instance name (longer ones are cut).

    rl_log_init copies component and name without a lock: call it at
    start, before threads log. The causes share one mutex.
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

#define RL_LOG_LINE_SIZE_MAX 1024 //  bytes of one line, '\n' included
#define RL_LOG_NAME_SIZE_MAX 32   //  bytes of component or name, NUL included

_Static_assert(RL_LOG_LINE_SIZE_MAX <= PIPE_BUF, "a line is one atomic write to a pipe");

#define RL_LOG_LEVEL_UNSET (-1)

static atomic_int s_level = RL_LOG_LEVEL_UNSET;
static atomic_int s_warn_interval_ms = RL_LOG_WARN_INTERVAL_MS;
static pthread_mutex_t s_causes_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_component[RL_LOG_NAME_SIZE_MAX] = "-";
static char s_name[RL_LOG_NAME_SIZE_MAX] = "-";

static const char *s_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

//  Reads RL_LOG_LEVEL; an unknown value gives info and a warning line.
static rl_log_level_t
s_level_from_env (bool *bad_p)
{
    const char *value = getenv ("RL_LOG_LEVEL");
    *bad_p = false;
    if (value == NULL || *value == '\0') {
        return RL_LOG_INFO;
    }
    const char *names[] = {"debug", "info", "warn", "error"};
    for (int level = RL_LOG_DEBUG; level <= RL_LOG_ERROR; level++) {
        if (strcasecmp (value, names[level]) == 0) {
            return (rl_log_level_t) level;
        }
    }
    *bad_p = true;
    return RL_LOG_INFO;
}

static void
s_copy_name (char *target, const char *source)
{
    assert (source);
    snprintf (target, RL_LOG_NAME_SIZE_MAX, "%s", *source ? source : "-");
    for (char *cursor = target; *cursor; cursor++) {
        if (*cursor == ' ' || *cursor == '\n') {
            *cursor = '_'; //  keep the line's fields split by spaces
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

//  Formats and writes one line; suppressed > 0 appends the count.
static void
s_write_line (rl_log_level_t level, uint64_t suppressed, int saved_errno, const char *format,
              va_list args)
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
    char suffix[64] = "";
    if (suppressed > 0) {
        snprintf (suffix, sizeof suffix, " [%" PRIu64 " similar lines suppressed]", suppressed);
    }
    const char *ellipsis = "...";

    char line[RL_LOG_LINE_SIZE_MAX];
    int size = s_format_time (line, sizeof line);
    size += snprintf (line + size, sizeof line - (size_t) size, " %s %s %s ", s_component, s_name,
                      s_level_names[level]);
    assert (size > 0 && (size_t) size < sizeof line);
    size_t header_size = (size_t) size;
    //  Room for the escaped message: the line less the header, the "...",
    //  the suffix and the '\n' (its NUL is not written).
    size_t room = sizeof line - header_size - strlen (ellipsis) - strlen (suffix) - 1;
    size_t used = 0;
    size_t line_size = header_size
                       + rl_log_escape (message, (size_t) message_size, line + header_size,
                                        room + 1, &used);
    if (cut || used < (size_t) message_size) {
        memcpy (line + line_size, ellipsis, strlen (ellipsis));
        line_size += strlen (ellipsis);
    }
    memcpy (line + line_size, suffix, strlen (suffix));
    line_size += strlen (suffix);
    assert (line_size < sizeof line);
    line[line_size] = '\n';
    s_write_all (line, line_size + 1);
}

void
rl_log (rl_log_level_t level, const char *format, ...)
{
    assert (level >= RL_LOG_DEBUG && level <= RL_LOG_ERROR);
    assert (format);
    if (level < s_current_level ()) {
        return;
    }
    int saved_errno = errno;
    va_list args;
    va_start (args, format);
    s_write_line (level, 0, saved_errno, format, args);
    va_end (args);
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
    int64_t now_ms = s_now_mono_ms ();
    int interval_ms = atomic_load (&s_warn_interval_ms);
    uint64_t suppressed = 0;
    pthread_mutex_lock (&s_causes_lock);
    bool allowed = !cause->used || now_ms - cause->last_ms >= interval_ms;
    if (allowed) {
        suppressed = cause->suppressed;
        cause->suppressed = 0;
        cause->last_ms = now_ms;
        cause->used = true;
    } else {
        cause->suppressed++;
    }
    pthread_mutex_unlock (&s_causes_lock);
    if (allowed) {
        va_list args;
        va_start (args, format);
        s_write_line (level, suppressed, saved_errno, format, args);
        va_end (args);
    }
    errno = saved_errno;
}
