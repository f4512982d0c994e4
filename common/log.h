/*  log.h: one log line per event, to stderr.

    Format:  2026-11-25T14:25:01.123Z shard s1 WARN message
    Every failure that a client sees as a code is also a log line here, so an
    operator can match a result code to its cause. Lines are written with
    one write(2) each, so that lines of concurrent processes never interleave
    inside a line.
*/
#ifndef RL_LOG_H
#define RL_LOG_H

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

#define rl_debug(...) rl_log (RL_LOG_DEBUG, __VA_ARGS__)
#define rl_info(...)  rl_log (RL_LOG_INFO, __VA_ARGS__)
#define rl_warn(...)  rl_log (RL_LOG_WARN, __VA_ARGS__)
#define rl_error(...) rl_log (RL_LOG_ERROR, __VA_ARGS__)

#endif
