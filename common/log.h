/*  log.h: one log line per event, to stderr.

    Format:  2026-11-25T14:25:01.123Z shard s1 WARN message
    Every failure that a client sees as a code is also a log line here, so an
    operator can match a result code to its cause. Lines are written with
    one write(2) each, so that lines of concurrent processes never interleave
    inside a line.

    Every message is escaped whole (log.c): bytes below 0x20, 0x7f, bytes
    of 0x80 or more and the backslash are written as "\xNN", so bytes that
    came off the network reach a log as printable ASCII only. Warnings are
    rate-limited per call site: at most one line per RL_LOG_WARN_INTERVAL_MS,
    and the next line written says how many were suppressed meanwhile.
*/
#ifndef RL_LOG_H
#define RL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RL_LOG_DEBUG = 0,
    RL_LOG_INFO = 1,
    RL_LOG_WARN = 2,
    RL_LOG_ERROR = 3,
} rl_log_level_t;

//  component: "shard", "router", ...; name: the instance ("s1"). Both copied.
//  The level comes from RL_LOG_LEVEL (debug|info|warn|error), default info.
void rl_log_init (const char *component, const char *name);
void rl_log_set_level (rl_log_level_t level);
void rl_log (rl_log_level_t level, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  One cause of rate-limited lines: zero-initialised, kept by its caller
//  (rl_warn keeps a static one per call site).
typedef struct {
    bool used;           //  a line was written
    int64_t last_ms;     //  when (monotonic clock)
    uint64_t suppressed; //  lines dropped since
} rl_log_cause_t;

//  rl_log, at most one line per interval for `cause`; a line dropped is
//  counted, and the next line written ends with the count.
void rl_log_limited (rl_log_cause_t *cause, rl_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  The interval of rl_log_limited, default RL_LOG_WARN_INTERVAL_MS; 0 turns
//  the limit off (tests).
void rl_log_set_warn_interval_ms (int interval_ms);

//  Writes text_size bytes of text into out, escaped as in a log line, and
//  NUL-terminates it (out_size >= 1). Stops before a byte whose escape
//  would not fit; returns the bytes written (NUL excluded) and, when
//  used_p is not NULL, the bytes of text consumed.
size_t rl_log_escape (const char *text, size_t text_size, char *out, size_t out_size,
                      size_t *used_p);

#define rl_debug(...) rl_log (RL_LOG_DEBUG, __VA_ARGS__)
#define rl_info(...)  rl_log (RL_LOG_INFO, __VA_ARGS__)
#define rl_warn(...)                                                                               \
    do {                                                                                           \
        static rl_log_cause_t rl_log_cause_here_;                                                  \
        rl_log_limited (&rl_log_cause_here_, RL_LOG_WARN, __VA_ARGS__);                            \
    } while (0)
#define rl_error(...) rl_log (RL_LOG_ERROR, __VA_ARGS__)

#endif
