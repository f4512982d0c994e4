/*  failpoint.c: the registry of failpoints, the parser of RL_FAILPOINTS and
    the slow path that crashes, fails or stalls at an armed point.

    DESIGN
    Every point named in failpoint_list.h has one slot in s_points. A slot
    holds its action (none, crash, error, delay), the delay in ms, the hit
    it acts on (0: every hit) and a hit counter. The fields are atomics, so
    hits may come from any thread while a test re-initialises; a hit that
    races a re-initialisation sees either the old or the new setting of
    each field, never a torn value.

    failpoint_init parses the whole of RL_FAILPOINTS into a scratch table
    first and installs it only when every entry parsed, so a bad variable
    leaves no point armed (the process is expected to refuse to start).

    INVARIANTS
    1. rl_failpoints_enabled is false only after an initialisation that
       armed nothing; before the first initialisation it is true, so the
       first hit of any point takes the slow path and initialises lazily.
    2. A point acts only while armed; its counter counts hits since the
       last initialisation, so "@N" means the Nth hit after failpoint_init.
    3. When RL_FAILPOINT_FILE is set, the record "name action\n" is written
       and fsynced before the action is taken: a test that finds no record
       knows the point was never reached, even after a crash.

    LIMITS
    RL_FP_SPEC_SIZE_MAX bytes of RL_FAILPOINTS, RL_FP_DELAY_MS_MAX per
    delay, RL_FP_PATH_SIZE_MAX bytes of RL_FAILPOINT_FILE.
*/
#include "failpoint.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RL_FP_SPEC_SIZE_MAX   4096   //  bytes of RL_FAILPOINTS, NUL included
#define RL_FP_DELAY_MS_MAX    600000 //  longest delay: ten minutes
#define RL_FP_PATH_SIZE_MAX   4096   //  bytes of RL_FAILPOINT_FILE, NUL included
#define RL_FP_NAME_SIZE_MAX   128    //  bytes of a name in RL_FAILPOINTS, NUL included
#define RL_FP_RECORD_SIZE_MAX 256    //  bytes of one record line, "name action\n"
#define RL_FP_ERR_SIZE        512    //  bytes of a lazy-initialisation message
#define RL_FP_ECHO_SIZE_MAX   64     //  bytes of a bad entry quoted in a message

typedef enum {
    FP_ACTION_NONE = 0,
    FP_ACTION_CRASH,
    FP_ACTION_ERROR,
    FP_ACTION_DELAY,
} fp_action_t;

typedef struct {
    const char *name;     //  stable name, "shard.after_sync"
    const char *where;    //  one-line description
    atomic_int action;    //  fp_action_t
    atomic_uint delay_ms; //  for FP_ACTION_DELAY
    atomic_ulong nth;     //  act on this hit only (1-based); 0: every hit
    atomic_ulong hits;    //  hits since the last initialisation, while armed
} fp_slot_t;

typedef struct { //  one parsed entry, before installing
    fp_action_t action;
    unsigned delay_ms;
    unsigned long nth;
} fp_setting_t;

static fp_slot_t s_points[RL_FP_COUNT] = {
#define RL_FP_X(id, fp_name, fp_where) [RL_FP_##id] = {.name = fp_name, .where = fp_where},
#include "failpoint_list.h"
#undef RL_FP_X
};

//  Every registered name fits a record line with any action.
#define RL_FP_X(id, fp_name, fp_where)                                                             \
    _Static_assert(sizeof (fp_name) <= RL_FP_NAME_SIZE_MAX, "failpoint name too long: " fp_name);
#include "failpoint_list.h"
#undef RL_FP_X
_Static_assert(RL_FP_NAME_SIZE_MAX + 32 <= RL_FP_RECORD_SIZE_MAX, "a record fits its line");

atomic_bool rl_failpoints_enabled = true; //  invariant 1
static atomic_bool s_initialised = false;
static pthread_mutex_t s_init_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_record_path[RL_FP_PATH_SIZE_MAX]; //  empty: no record file

size_t
failpoint_count (void)
{
    return RL_FP_COUNT;
}

const char *
failpoint_name (rl_fp_t fp)
{
    assert ((unsigned) fp < RL_FP_COUNT);
    return s_points[fp].name;
}

const char *
failpoint_where (rl_fp_t fp)
{
    assert ((unsigned) fp < RL_FP_COUNT);
    return s_points[fp].where;
}

int
failpoint_find (const char *name)
{
    assert (name);
    for (int index = 0; index < RL_FP_COUNT; index++) {
        if (strcmp (s_points[index].name, name) == 0) {
            return index;
        }
    }
    return -1;
}

static void
s_err (char *err, size_t err_size, const char *format, ...)
{
    if (err == NULL || err_size == 0) {
        return;
    }
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

//  Parses a decimal number in [min, max] that fills [text, end). 0 or -1.
//  At most 10 digits, so the value fits a uint64_t before the range check.
static int
s_parse_number (const char *text, const char *end, uint64_t min, uint64_t max,
                unsigned long *value_p)
{
    if (text == end || end - text > 10) {
        return -1;
    }
    uint64_t value = 0;
    for (const char *cursor = text; cursor < end; cursor++) {
        if (*cursor < '0' || *cursor > '9') {
            return -1;
        }
        value = value * 10 + (uint64_t) (*cursor - '0');
    }
    if (value < min || value > max) {
        return -1;
    }
    *value_p = (unsigned long) value;
    return 0;
}

//  Parses "crash", "error" or "delay:MS", each with an optional "@N", from
//  [text, end) into setting. 0 or -1.
static int
s_parse_action (const char *text, const char *end, fp_setting_t *setting)
{
    const char *at = memchr (text, '@', (size_t) (end - text));
    const char *action_end = at ? at : end;
    size_t action_size = (size_t) (action_end - text);
    memset (setting, 0, sizeof *setting);
    if (at && s_parse_number (at + 1, end, 1, UINT32_MAX, &setting->nth) != 0) {
        return -1;
    }
    if (action_size == 5 && memcmp (text, "crash", 5) == 0) {
        setting->action = FP_ACTION_CRASH;
    } else if (action_size == 5 && memcmp (text, "error", 5) == 0) {
        setting->action = FP_ACTION_ERROR;
    } else if (action_size > 6 && memcmp (text, "delay:", 6) == 0) {
        unsigned long delay_ms;
        if (s_parse_number (text + 6, action_end, 0, RL_FP_DELAY_MS_MAX, &delay_ms) != 0) {
            return -1;
        }
        setting->action = FP_ACTION_DELAY;
        setting->delay_ms = (unsigned) delay_ms;
    } else {
        return -1;
    }
    return 0;
}

//  Parses one "name=action" entry in [text, end) into settings. 0 or -1.
static int
s_parse_entry (const char *text, const char *end, fp_setting_t *settings, char *err,
               size_t err_size)
{
    //  Echo at most RL_FP_ECHO_SIZE_MAX bytes of a bad entry.
    int entry_size = end - text > RL_FP_ECHO_SIZE_MAX ? RL_FP_ECHO_SIZE_MAX : (int) (end - text);
    const char *equals = memchr (text, '=', (size_t) (end - text));
    if (equals == NULL) {
        s_err (err, err_size, "RL_FAILPOINTS: not name=action: '%.*s'", entry_size, text);
        return -1;
    }
    char name[RL_FP_NAME_SIZE_MAX];
    size_t name_size = (size_t) (equals - text);
    if (name_size == 0 || name_size >= sizeof name) {
        s_err (err, err_size, "RL_FAILPOINTS: no valid name in '%.*s'", entry_size, text);
        return -1;
    }
    memcpy (name, text, name_size);
    name[name_size] = '\0';
    int index = failpoint_find (name);
    if (index < 0) {
        s_err (err, err_size, "RL_FAILPOINTS: unknown failpoint '%s'", name);
        return -1;
    }
    if (settings[index].action != FP_ACTION_NONE) {
        s_err (err, err_size, "RL_FAILPOINTS: failpoint '%s' named twice", name);
        return -1;
    }
    if (s_parse_action (equals + 1, end, &settings[index]) != 0) {
        int action_size = end - equals - 1 > RL_FP_ECHO_SIZE_MAX ? RL_FP_ECHO_SIZE_MAX
                                                                 : (int) (end - equals - 1);
        s_err (err, err_size,
               "RL_FAILPOINTS: bad action '%.*s' for '%s' (crash, error or delay:MS, "
               "with an optional @N)",
               action_size, equals + 1, name);
        return -1;
    }
    return 0;
}

//  Parses the whole spec into settings (zeroed first). 0 or -1.
static int
s_parse_spec (const char *spec, fp_setting_t *settings, char *err, size_t err_size)
{
    memset (settings, 0, sizeof (fp_setting_t) * RL_FP_COUNT);
    size_t spec_size = strlen (spec);
    if (spec_size >= RL_FP_SPEC_SIZE_MAX) {
        s_err (err, err_size, "RL_FAILPOINTS: longer than %d bytes", RL_FP_SPEC_SIZE_MAX - 1);
        return -1;
    }
    if (spec_size == 0) {
        return 0; //  set but empty: nothing armed
    }
    const char *text = spec;
    const char *spec_end = spec + spec_size;
    while (text <= spec_end) { //  bounded: each turn moves past one comma
        const char *comma = memchr (text, ',', (size_t) (spec_end - text));
        const char *end = comma ? comma : spec_end;
        if (end == text) {
            s_err (err, err_size, "RL_FAILPOINTS: empty entry in '%s'", spec);
            return -1;
        }
        if (s_parse_entry (text, end, settings, err, err_size) != 0) {
            return -1;
        }
        text = end + 1;
    }
    return 0;
}

//  Installs settings into the registry; returns true when any point is armed.
static bool
s_install (const fp_setting_t *settings)
{
    bool armed = false;
    for (int index = 0; index < RL_FP_COUNT; index++) {
        fp_slot_t *slot = &s_points[index];
        atomic_store (&slot->action, FP_ACTION_NONE); //  disarm while changing
        atomic_store (&slot->hits, 0);
        atomic_store (&slot->delay_ms, settings[index].delay_ms);
        atomic_store (&slot->nth, settings[index].nth);
        atomic_store (&slot->action, (int) settings[index].action);
        armed = armed || settings[index].action != FP_ACTION_NONE;
    }
    return armed;
}

//  The body of failpoint_init; the caller holds s_init_lock.
static int
s_init_locked (char *err, size_t err_size)
{
    static fp_setting_t settings[RL_FP_COUNT]; //  guarded by s_init_lock
    int rc = 0;
    const char *spec = getenv ("RL_FAILPOINTS");
    if (spec && s_parse_spec (spec, settings, err, err_size) != 0) {
        rc = -1;
    }
    if (spec == NULL || rc != 0) {
        memset (settings, 0, sizeof settings);
    }
    const char *path = getenv ("RL_FAILPOINT_FILE");
    s_record_path[0] = '\0';
    if (rc == 0 && path && *path) {
        if (strlen (path) >= sizeof s_record_path) {
            s_err (err, err_size, "RL_FAILPOINT_FILE: longer than %zu bytes",
                   sizeof s_record_path - 1);
            memset (settings, 0, sizeof settings);
            rc = -1;
        } else {
            strcpy (s_record_path, path);
        }
    }
    bool armed = s_install (settings);
    atomic_store (&s_initialised, true);
    atomic_store (&rl_failpoints_enabled, armed);
    return rc;
}

int
failpoint_init (char *err, size_t err_size)
{
    assert (err || err_size == 0);
    if (err_size > 0) {
        err[0] = '\0';
    }
    pthread_mutex_lock (&s_init_lock);
    int rc = s_init_locked (err, err_size);
    pthread_mutex_unlock (&s_init_lock);
    return rc;
}

//  First hit in a program that never called failpoint_init.
static void
s_init_lazily (void)
{
    pthread_mutex_lock (&s_init_lock);
    if (!atomic_load (&s_initialised)) {
        char err[RL_FP_ERR_SIZE];
        if (s_init_locked (err, sizeof err) != 0) {
            rl_error ("failpoint: %s; stopping", err);
            abort ();
        }
    }
    pthread_mutex_unlock (&s_init_lock);
}

static int
s_format_action (char *buffer, size_t buffer_size, fp_action_t action, unsigned delay_ms)
{
    switch (action) {
        case FP_ACTION_CRASH:
            return snprintf (buffer, buffer_size, "crash");
        case FP_ACTION_ERROR:
            return snprintf (buffer, buffer_size, "error");
        case FP_ACTION_DELAY:
            return snprintf (buffer, buffer_size, "delay:%u", delay_ms);
        default:
            assert (false);
            return -1;
    }
}

//  Appends "name action\n" to the record file and syncs it (invariant 3).
//  A failure is logged; the action is taken anyway.
static void
s_record (const char *name, const char *action_text)
{
    if (s_record_path[0] == '\0') {
        return;
    }
    char line[RL_FP_RECORD_SIZE_MAX];
    int line_size = snprintf (line, sizeof line, "%s %s\n", name, action_text);
    assert (line_size > 0 && (size_t) line_size < sizeof line);
    int fd = open (s_record_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rl_error ("failpoint %s: cannot open %s: %s", name, s_record_path, strerror (errno));
        return;
    }
    ssize_t written;
    do {
        written = write (fd, line, (size_t) line_size);
    } while (written < 0 && errno == EINTR);
    if (written != line_size || fsync (fd) != 0) {
        rl_error ("failpoint %s: cannot write %s: %s", name, s_record_path, strerror (errno));
    }
    close (fd);
}

//  Sleeps delay_ms in full, across interruptions by signals.
static void
s_delay (unsigned delay_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += delay_ms / 1000;
    deadline.tv_nsec += (long) (delay_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR) {
    }
}

int
failpoint_hit_slow (rl_fp_t fp)
{
    assert ((unsigned) fp < RL_FP_COUNT);
    if (!atomic_load_explicit (&s_initialised, memory_order_acquire)) {
        s_init_lazily ();
    }
    fp_slot_t *slot = &s_points[fp];
    fp_action_t action = (fp_action_t) atomic_load_explicit (&slot->action, memory_order_relaxed);
    if (action == FP_ACTION_NONE) {
        return 0;
    }
    unsigned long hit = atomic_fetch_add (&slot->hits, 1) + 1;
    unsigned long nth = atomic_load (&slot->nth);
    if (nth != 0 && hit != nth) {
        return 0;
    }
    unsigned delay_ms = atomic_load (&slot->delay_ms);
    char action_text[32];
    s_format_action (action_text, sizeof action_text, action, delay_ms);
    s_record (slot->name, action_text);
    if (action == FP_ACTION_CRASH) {
        rl_error ("failpoint %s: crash (hit %lu), raising SIGKILL", slot->name, hit);
        raise (SIGKILL);
        abort (); //  not reached: SIGKILL cannot be caught
    }
    if (action == FP_ACTION_DELAY) {
        rl_warn ("failpoint %s: delay %u ms (hit %lu)", slot->name, delay_ms, hit);
        s_delay (delay_ms);
        return 0;
    }
    rl_warn ("failpoint %s: error (hit %lu)", slot->name, hit);
    return -1;
}
