/*  log.h: one log line per event, to stderr, as text or as JSON.

    Text (the default):
        2026-11-25T14:25:01.123Z shard s1 WARN message
    JSON (rl_log_set_format, --log-format json), one object per line:
        {"time":"2026-11-25T14:25:01.123Z","level":"warn","process":"shard",
         "shard":"s1","request_id":42,"event":"admin.resolve","message":"..."}
    Every failure that a client sees as a code is also a log line here, so an
    operator can match a result code to its cause. Lines are written with
    one write(2) each, so that lines of concurrent processes never interleave
    inside a line.

    Every message is escaped whole (log.c): bytes below 0x20, 0x7f, bytes
    of 0x80 or more and the backslash are written as "\xNN", so bytes that
    came off the network reach a log as printable ASCII only (in JSON, that
    text is then a JSON string). Warnings and errors are rate-limited per
    call site: at most one line per RL_LOG_WARN_INTERVAL_MS, and the next
    line written says how many were suppressed meanwhile.

    Every line has an event: a stable short name of its kind, given by the
    call site (rl_log_event) or else named after it, "FILE.FUNCTION" (see
    log.c). A thread that handles a request sets it with
    rl_log_request_begin; its lines carry the request id until
    rl_log_request_end.
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

typedef enum {
    RL_LOG_FORMAT_TEXT = 0,
    RL_LOG_FORMAT_JSON = 1,
} rl_log_format_t;

//  component: "shard", "router", ...; name: the instance ("s1"). Both copied.
//  The level comes from RL_LOG_LEVEL (debug|info|warn|error), default info.
void rl_log_init (const char *component, const char *name);
void rl_log_set_level (rl_log_level_t level);
void rl_log_set_format (rl_log_format_t format);
//  "debug".."error" and "text"/"json": 0 and *out set, or -1.
int rl_log_level_parse (const char *text, rl_log_level_t *out);
int rl_log_format_parse (const char *text, rl_log_format_t *out);

//  The request this thread handles now: its lines carry request_id until
//  rl_log_request_end (thread-local; nothing to free).
void rl_log_request_begin (uint64_t request_id);
void rl_log_request_end (void);

//  One cause of rate-limited lines: zero-initialised, kept by its caller
//  (every call site of rl_warn and rl_error keeps one).
typedef struct {
    bool used;           //  a line was written
    int64_t last_ms;     //  when (monotonic clock)
    uint64_t suppressed; //  lines dropped since
} rl_log_cause_t;

//  A call site: made static by the macros below.
typedef struct {
    const char *file;     //  __FILE__
    const char *function; //  __func__
    const char *event;    //  the event's name, or NULL: "FILE.FUNCTION"
    bool limited;         //  one line per interval (rl_log_limited)
    rl_log_cause_t cause; //  when limited
} rl_log_site_t;

void rl_log_at (rl_log_site_t *site, rl_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  rl_log, at most one line per interval for `cause`; a line dropped is
//  counted, and the next line written ends with the count. Its event is
//  "-" (the sites of rl_warn and rl_error name theirs).
void rl_log_limited (rl_log_cause_t *cause, rl_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  The interval of the rate limit, default RL_LOG_WARN_INTERVAL_MS; 0 turns
//  the limit off (tests).
void rl_log_set_warn_interval_ms (int interval_ms);

//  Writes text_size bytes of text into out, escaped as in a log line, and
//  NUL-terminates it (out_size >= 1). Stops before a byte whose escape
//  would not fit; returns the bytes written (NUL excluded) and, when
//  used_p is not NULL, the bytes of text consumed.
size_t rl_log_escape (const char *text, size_t text_size, char *out, size_t out_size,
                      size_t *used_p);

#define RL_LOG_SITE_(event_, limited_)                                                             \
    static rl_log_site_t rl_log_site_here_ = {__FILE__, __func__, event_, limited_, {0}}

//  Not rate-limited, whatever the level (a budget of the caller's own).
#define rl_log(level, ...)                                                                         \
    do {                                                                                           \
        RL_LOG_SITE_ (NULL, false);                                                                \
        rl_log_at (&rl_log_site_here_, level, __VA_ARGS__);                                        \
    } while (0)
//  A line with a named event, not rate-limited (a budget of the caller's own).
#define rl_log_named(level, event, ...)                                                            \
    do {                                                                                           \
        RL_LOG_SITE_ (event, false);                                                               \
        rl_log_at (&rl_log_site_here_, level, __VA_ARGS__);                                        \
    } while (0)
//  A line with a named event; warnings and errors rate-limited.
#define rl_log_event(level, event, ...)                                                            \
    do {                                                                                           \
        RL_LOG_SITE_ (event, (level) >= RL_LOG_WARN);                                              \
        rl_log_at (&rl_log_site_here_, level, __VA_ARGS__);                                        \
    } while (0)
#define rl_debug(...) rl_log (RL_LOG_DEBUG, __VA_ARGS__)
#define rl_info(...)  rl_log (RL_LOG_INFO, __VA_ARGS__)
#define rl_warn(...)                                                                               \
    do {                                                                                           \
        RL_LOG_SITE_ (NULL, true);                                                                 \
        rl_log_at (&rl_log_site_here_, RL_LOG_WARN, __VA_ARGS__);                                  \
    } while (0)
#define rl_error(...)                                                                              \
    do {                                                                                           \
        RL_LOG_SITE_ (NULL, true);                                                                 \
        rl_log_at (&rl_log_site_here_, RL_LOG_ERROR, __VA_ARGS__);                                 \
    } while (0)

#endif
