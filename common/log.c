/*  log.c: one line per event on stderr, in one write(2).

    DESIGN
    A line is formatted whole into a buffer on the stack, then written with
    a single write(2) to fd 2. The buffer is at most PIPE_BUF bytes, so when
    stderr is a pipe or a file opened for append (the test harness captures
    children that way) lines of concurrent threads and processes never
    interleave inside a line.

        2026-11-25T14:25:01.123Z shard s1 WARN message

    INVARIANTS
    1. Every line ends with exactly one '\n': newlines inside the message
       become spaces, and a message too long for the buffer is cut and ends
       with "..." so a reader sees that it was cut.
    2. rl_log keeps errno, so a caller can log and then still use errno.
    3. The level is read from RL_LOG_LEVEL by rl_log_init, or lazily by the
       first line when nobody called rl_log_init; rl_log_set_level wins
       over both.

    LIMITS
    RL_LOG_LINE_SIZE_MAX bytes per line; RL_LOG_NAME_SIZE_MAX bytes of the
    component and of the instance name (longer ones are cut).

    rl_log_init copies component and name without a lock: call it at
    start, before threads log.
*/
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define RL_LOG_LINE_SIZE_MAX 1024 //  bytes of one line, '\n' included
#define RL_LOG_NAME_SIZE_MAX 32   //  bytes of component or name, NUL included

_Static_assert(RL_LOG_LINE_SIZE_MAX <= PIPE_BUF, "a line is one atomic write to a pipe");

#define RL_LOG_LEVEL_UNSET (-1)

static atomic_int s_level = RL_LOG_LEVEL_UNSET;
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

void
rl_log (rl_log_level_t level, const char *format, ...)
{
    assert (level >= RL_LOG_DEBUG && level <= RL_LOG_ERROR);
    assert (format);
    if (level < s_current_level ()) {
        return;
    }
    int saved_errno = errno;
    char line[RL_LOG_LINE_SIZE_MAX];
    const size_t text_size_max = sizeof line - 1; //  room for the '\n'
    int size = s_format_time (line, text_size_max);
    size += snprintf (line + size, text_size_max - (size_t) size, " %s %s %s ", s_component, s_name,
                      s_level_names[level]);
    assert (size > 0 && (size_t) size < text_size_max);
    size_t header_size = (size_t) size;

    va_list args;
    va_start (args, format);
    errno = saved_errno; //  so that %m prints the caller's errno
    int message_size = vsnprintf (line + header_size, text_size_max - header_size, format, args);
    va_end (args);
    if (message_size < 0) {
        message_size = 0;
    }
    size_t line_size = header_size + (size_t) message_size;
    if (line_size >= text_size_max) {
        line_size = text_size_max - 1; //  what vsnprintf kept
        memcpy (line + line_size - 3, "...", 3);
    }
    for (size_t index = header_size; index < line_size; index++) {
        if (line[index] == '\n' || line[index] == '\r') {
            line[index] = ' ';
        }
    }
    line[line_size] = '\n';
    s_write_all (line, line_size + 1);
    errno = saved_errno;
}
