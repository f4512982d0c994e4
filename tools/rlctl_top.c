/*  rlctl_top.c: `rlctl top`, a live view of the cluster (docs/cli.md).

    rlctl top [--interval-ms MS] [--count N] [--json]

    Every interval: the ring from --connect, then every shard of it asked
    directly for its status record, all at once (rl_client_status_all,
    like `status`). Per shard it shows transfers and requests per second
    (the difference of the record's counters over the shard's own uptime,
    so the rates hold whatever the delays of the network), the p99 of its
    turns over its last full second (turn_p99_us), in-doubt records and the
    age of the oldest, alarms, frozen arcs, the ring epoch it serves and a
    state; then the cluster's totals. Everything comes from the status
    record: no --metrics-bind is needed.

    DESIGN
    One cJSON tree per interval, like every rlctl command: printed on one
    line with --json, or drawn as a table of at most 80 columns. On a
    terminal the screen is cleared and redrawn (plain ANSI: cursor home,
    erase display), and stdin is read without echo for q; otherwise each
    view is printed below the last. No curses: two escape sequences work
    in every terminal reached over SSH.

    STATES (per shard, per interval)
        serving   answered, store healthy, no frozen arc
        frozen    answered; arcs it gained in a ring change await their data
        failed    answered; its store failed (it answers storage_error)
        error     answered the status request with an error status
        down      no answer within the probe timeout: stopped, unreachable,
                  or still recovering (a shard opens its port only when
                  recovery is over)

    INVARIANTS
    1. A rate is shown only between two records of the same process (same
       pid, growing uptime and counters); else it is null ("-"), so a
       restart never shows as a burst or a negative rate.
    2. A shard that does not answer, or a ring that cannot be fetched, is
       shown and the view goes on (the last ring is kept); only a ring
       missing at the start ends top (exit 1).
    3. The terminal's mode is restored on every exit path: q, --count,
       Ctrl-C, SIGTERM, SIGHUP, a closed output.

    LIMITS
    RL_SHARDS_MAX shards; the probe waits at most the interval (and
    RLCTL_PROBE_TIMEOUT_MS, and --timeout-ms); --count up to
    RLCTL_TOP_COUNT_MAX; --interval-ms RLCTL_TOP_INTERVAL_MS_MIN..MAX.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <czmq.h>

#include "ring.h"
#include "rlctl.h"

#define S_LINE_SIZE     81 //  80 columns and the NUL
#define S_KEYS_SIZE     16 //  keys read from the terminal at a time
#define S_CLEAR_SCREEN  "\033[H\033[2J"
#define S_NAME_COLUMNS  10
#define S_RATE_DECIMALS 1

static volatile sig_atomic_t s_stop;
//  The terminal's mode before top changed it, for a stop from the handler.
static struct termios s_saved_mode;
static volatile sig_atomic_t s_saved_valid;

//  The first signal asks the loop to stop. A second one while the first
//  is not served yet (top blocked in a write to a terminal that nobody
//  reads, e.g. output suspended with Ctrl-S) ends the process here:
//  tcsetattr and _exit are async-signal-safe (signal-safety(7)).
static void
s_on_signal (int signal)
{
    if (s_stop) {
        if (s_saved_valid) {
            tcsetattr (STDIN_FILENO, TCSANOW, &s_saved_mode);
        }
        _exit (128 + signal);
    }
    s_stop = 1;
}

//  One shard's last record, to take the rates from.
typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    bool valid;
    rl_status_rec_t rec;
} s_prev_t;

typedef struct {
    rlctl_ctx_t *ctx;
    rl_client_t *client; //  to --connect, for the ring
    ring_t *ring;        //  the last ring fetched
    bool ring_fresh;     //  fetched this interval
    bool tty_out;        //  redraw in place
    bool tty_in;         //  q quits
    struct termios saved;
    int probe_ms;
    uint64_t view; //  views shown
    s_prev_t prev[RL_SHARDS_MAX];
    size_t prev_count;
    rl_status_rec_t records[RL_SHARDS_MAX];
    int rcs[RL_SHARDS_MAX];
} s_top_t;

//  The terminal ------------------------------------------------------------------

static void
s_signals (void)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    //  SA_RESTART: a write to the terminal that the signal lands in goes
    //  on, instead of failing with EINTR; poll is never restarted (signal(7)),
    //  so the wait still ends at once.
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);
    signal (SIGPIPE, SIG_IGN); //  a closed output is a failed write: top stops
}

//  stdin without echo and line buffering, so that q is read at once;
//  Ctrl-C still raises SIGINT.
static void
s_terminal_raw (s_top_t *self)
{
    self->tty_in = isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &self->saved) == 0;
    if (!self->tty_in) {
        return;
    }
    s_saved_mode = self->saved;
    s_saved_valid = 1;
    struct termios raw = self->saved;
    raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr (STDIN_FILENO, TCSANOW, &raw) != 0) {
        self->tty_in = false;
    }
}

static void
s_terminal_restore (s_top_t *self)
{
    if (self->tty_in) {
        s_saved_valid = 0;
        tcsetattr (STDIN_FILENO, TCSANOW, &self->saved);
        self->tty_in = false;
    }
}

//  Waits until deadline_ms (zclock_mono), or a q, or a signal.
static void
s_wait (s_top_t *self, int64_t deadline_ms)
{
    while (!s_stop) {
        int64_t left_ms = deadline_ms - zclock_mono ();
        if (left_ms <= 0) {
            return;
        }
        struct pollfd fd = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll (&fd, self->tty_in ? 1 : 0, (int) left_ms);
        if (n <= 0 || !(fd.revents & (POLLIN | POLLHUP))) {
            continue; //  the deadline, or a signal (s_stop)
        }
        char keys[S_KEYS_SIZE];
        ssize_t got = read (STDIN_FILENO, keys, sizeof keys);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            s_terminal_restore (self); //  hung up: no more keys, stdin no longer polled
            continue;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (keys[i] == 'q' || keys[i] == 'Q') {
                s_stop = 1;
            }
        }
    }
}

//  One interval ------------------------------------------------------------------

//  The previous record of the shard named name; NULL if none.
static const s_prev_t *
s_prev_find (const s_top_t *self, const char *name)
{
    for (size_t i = 0; i < self->prev_count; i++) {
        if (strcmp (self->prev[i].name, name) == 0) {
            return &self->prev[i];
        }
    }
    return NULL;
}

//  A counter's growth per second between two records of one shard, by the
//  shard's own uptime; -1 when unknown (invariant 1).
static double
s_rate (const rl_status_rec_t *then, const rl_status_rec_t *now, uint64_t then_count,
        uint64_t now_count)
{
    if (!then || then->pid != now->pid || now->uptime_ms <= then->uptime_ms
        || now_count < then_count) {
        return -1;
    }
    return (double) (now_count - then_count) * 1000.0 / (double) (now->uptime_ms - then->uptime_ms);
}

static void
s_add_rate (cJSON *s, const char *key, double rate)
{
    if (rate < 0) {
        jsonkit_add_null (s, key);
    } else {
        jsonkit_add_fixed (s, key, rate, S_RATE_DECIMALS);
    }
}

static const char *
s_state (int rc, const rl_status_rec_t *r)
{
    if (rc > 0) {
        return "error";
    }
    if (rc < 0) {
        return "down";
    }
    if (r->state == RL_SHARD_FAILED) {
        return "failed";
    }
    return r->arcs_unreceived ? "frozen" : "serving";
}

//  Sums over the shards that answered.
typedef struct {
    size_t up;
    double transfers_per_s; //  -1: no shard had a rate
    double requests_per_s;
    uint64_t turn_p99_us; //  the largest
    uint64_t in_doubt;
    uint64_t in_doubt_oldest_ms; //  the largest
    uint64_t inflight;
    uint64_t alarms;
    uint64_t arcs_unreceived;
} s_totals_t;

static void
s_add_shard (s_top_t *self, cJSON *list, size_t i, s_totals_t *t)
{
    const rl_status_rec_t *r = &self->records[i];
    int rc = self->rcs[i];
    cJSON *s = jsonkit_add_object (list, NULL);
    jsonkit_add_string (s, "name", ring_shard_name (self->ring, i));
    jsonkit_add_string (s, "address", ring_shard_endpoint (self->ring, i));
    jsonkit_add_bool (s, "up", rc == 0);
    jsonkit_add_string (s, "state", s_state (rc, r));
    if (rc != 0) {
        char why[256];
        if (rc > 0) {
            snprintf (why, sizeof why, "answered %s", rl_status_name ((uint32_t) rc));
        } else if (rc == RL_CLIENT_TIMEOUT) {
            snprintf (why, sizeof why, "no answer within %d ms", self->probe_ms);
        } else {
            snprintf (why, sizeof why, "%s", rl_client_strerror (rc));
        }
        jsonkit_add_string (s, "error", why);
        return;
    }
    const s_prev_t *prev = s_prev_find (self, ring_shard_name (self->ring, i));
    const rl_status_rec_t *then = prev && prev->valid ? &prev->rec : NULL;
    double transfers = s_rate (then, r, then ? then->transfers : 0, r->transfers);
    double requests = s_rate (then, r, then ? then->requests : 0, r->requests);
    s_add_rate (s, "transfers_per_s", transfers);
    s_add_rate (s, "requests_per_s", requests);
    jsonkit_add_fixed (s, "turn_p99_ms", r->turn_p99_us / 1000.0, 3);
    jsonkit_add_u64 (s, "in_doubt", r->in_doubt);
    jsonkit_add_fixed (s, "in_doubt_oldest_s", r->in_doubt_oldest_ms / 1000.0, 3);
    jsonkit_add_u64 (s, "inflight", r->inflight);
    jsonkit_add_u64 (s, "alarms", r->alarms);
    jsonkit_add_u64 (s, "arcs_unreceived", r->arcs_unreceived);
    jsonkit_add_u64 (s, "epoch", r->epoch);
    jsonkit_add_string (s, "reported_name", r->name);
    jsonkit_add_u64 (s, "transfers", r->transfers);
    jsonkit_add_u64 (s, "requests", r->requests);
    jsonkit_add_u64 (s, "pid", r->pid);
    jsonkit_add_u64 (s, "uptime_ms", r->uptime_ms);
    t->up++;
    if (transfers >= 0) {
        t->transfers_per_s = (t->transfers_per_s < 0 ? 0 : t->transfers_per_s) + transfers;
    }
    if (requests >= 0) {
        t->requests_per_s = (t->requests_per_s < 0 ? 0 : t->requests_per_s) + requests;
    }
    t->turn_p99_us = r->turn_p99_us > t->turn_p99_us ? r->turn_p99_us : t->turn_p99_us;
    t->in_doubt += r->in_doubt;
    t->in_doubt_oldest_ms = r->in_doubt_oldest_ms > t->in_doubt_oldest_ms ? r->in_doubt_oldest_ms
                                                                          : t->in_doubt_oldest_ms;
    t->inflight += r->inflight;
    t->alarms += r->alarms;
    t->arcs_unreceived += r->arcs_unreceived;
}

static void
s_add_totals (cJSON *tree, size_t shards, const s_totals_t *t)
{
    cJSON *o = jsonkit_add_object (tree, "totals");
    jsonkit_add_u64 (o, "shards", shards);
    jsonkit_add_u64 (o, "up", t->up);
    jsonkit_add_u64 (o, "down", shards - t->up);
    s_add_rate (o, "transfers_per_s", t->transfers_per_s);
    s_add_rate (o, "requests_per_s", t->requests_per_s);
    jsonkit_add_fixed (o, "turn_p99_ms", (double) t->turn_p99_us / 1000.0, 3);
    jsonkit_add_u64 (o, "in_doubt", t->in_doubt);
    jsonkit_add_fixed (o, "in_doubt_oldest_s", (double) t->in_doubt_oldest_ms / 1000.0, 3);
    jsonkit_add_u64 (o, "inflight", t->inflight);
    jsonkit_add_u64 (o, "alarms", t->alarms);
    jsonkit_add_u64 (o, "arcs_unreceived", t->arcs_unreceived);
}

//  A fresh ring if --connect answers; else the last one stays.
static void
s_refresh_ring (s_top_t *self)
{
    ring_t *ring = NULL;
    char err[256];
    self->ring_fresh = rlctl_ring_get (self->client, self->probe_ms, &ring, err, sizeof err) == 0;
    if (self->ring_fresh) {
        ring_destroy (&self->ring);
        self->ring = ring;
    }
}

//  Asks every shard, builds the view's tree, keeps the records for the
//  next rates. NULL when out of memory.
static cJSON *
s_sample (s_top_t *self)
{
    s_refresh_ring (self);
    size_t shards = ring_shard_count (self->ring);
    const char *endpoints[RL_SHARDS_MAX];
    for (size_t i = 0; i < shards; i++) {
        endpoints[i] = ring_shard_endpoint (self->ring, i);
    }
    rl_client_status_all (endpoints, shards, self->probe_ms, self->records, self->rcs);
    char now_text[40];
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (
        tree, "time",
        rlctl_time_text ((uint64_t) zclock_time () * 1000000ull, now_text, sizeof now_text));
    jsonkit_add_u64 (tree, "view", self->view + 1);
    jsonkit_add_u64 (tree, "interval_ms", (uint64_t) self->ctx->interval_ms);
    jsonkit_add_string (tree, "connect", self->ctx->connect);
    jsonkit_add_u64 (tree, "ring_epoch", ring_epoch (self->ring));
    jsonkit_add_bool (tree, "ring_fresh", self->ring_fresh);
    s_totals_t totals = {.transfers_per_s = -1, .requests_per_s = -1};
    cJSON *list = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < shards; i++) {
        s_add_shard (self, list, i, &totals);
    }
    s_add_totals (tree, shards, &totals);
    for (size_t i = 0; i < shards; i++) {
        s_prev_t *p = &self->prev[i];
        snprintf (p->name, sizeof p->name, "%s", ring_shard_name (self->ring, i));
        p->valid = self->rcs[i] == 0;
        p->rec = self->records[i];
    }
    self->prev_count = shards;
    return tree;
}

//  The table ---------------------------------------------------------------------

//  One line of at most 80 columns (longer text is cut).
static void s_line (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static void
s_line (const char *format, ...)
{
    char line[S_LINE_SIZE];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    printf ("%s\n", line);
}

//  A rate, a duration or an age in its column: "-" when unknown.
static const char *
s_number (const cJSON *o, const char *key, char *out, size_t size)
{
    const cJSON *item = jsonkit_get (o, key);
    if (!item || cJSON_IsNull (item)) {
        snprintf (out, size, "-");
    } else {
        double v = jsonkit_double (o, key);
        snprintf (out, size, v >= 100 || v == 0 ? "%.0f" : (v >= 10 ? "%.1f" : "%.2f"), v);
    }
    return out;
}

#define S_ROW_FORMAT "%-10.10s %-9s %9s %9s %7s %8s %8s %6s %5s"

static void
s_row (const char *name, const char *state, const cJSON *o, const char *epoch)
{
    char transfers[16], requests[16], p99[16], oldest[16];
    s_line (S_ROW_FORMAT, name, state, s_number (o, "transfers_per_s", transfers, sizeof transfers),
            s_number (o, "requests_per_s", requests, sizeof requests),
            s_number (o, "turn_p99_ms", p99, sizeof p99), jsonkit_text (o, "in_doubt"),
            s_number (o, "in_doubt_oldest_s", oldest, sizeof oldest), jsonkit_text (o, "alarms"),
            epoch);
}

//  What needs an operator, one line each, under the table.
static void
s_notes (const cJSON *tree)
{
    const cJSON *s;
    cJSON_ArrayForEach (s, jsonkit_get (tree, "shards"))
    {
        const char *name = jsonkit_text (s, "name");
        const char *state = jsonkit_text (s, "state");
        if (!jsonkit_true (s, "up")) {
            s_line ("%s %s: %s", strcmp (state, "down") == 0 ? "DOWN" : "ERROR", name,
                    jsonkit_text (s, "error"));
            continue;
        }
        if (strcmp (state, "failed") == 0) {
            s_line ("FAILED %s: its store failed; restart it (docs/shard.md)", name);
        }
        if (jsonkit_u64 (s, "arcs_unreceived")) {
            s_line ("FROZEN %s: %s arcs await their data (docs/rebalance.md)", name,
                    jsonkit_text (s, "arcs_unreceived"));
        }
        if (jsonkit_u64 (s, "alarms")) {
            s_line ("ALARM %s: %s two-phase alarms (docs/two-phase.md, \"Admin\")", name,
                    jsonkit_text (s, "alarms"));
        }
        if (jsonkit_u64 (s, "epoch") != jsonkit_u64 (tree, "ring_epoch")) {
            s_line ("EPOCH %s serves ring epoch %s, not %s", name, jsonkit_text (s, "epoch"),
                    jsonkit_text (tree, "ring_epoch"));
        }
    }
    if (!jsonkit_true (tree, "ring_fresh")) {
        s_line ("RING: no ring from %s this time: the shards of epoch %s are shown",
                jsonkit_text (tree, "connect"), jsonkit_text (tree, "ring_epoch"));
    }
}

static void
s_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    const cJSON *totals = jsonkit_get (tree, "totals");
    const char *time_text = jsonkit_text (tree, "time");
    //  "2026-11-25T14:25:01.123Z": the time of day is enough on screen.
    const char *clock = strlen (time_text) > 11 ? time_text + 11 : time_text;
    s_line ("rlctl top: ring epoch %s, %s shards, %s down  %.8s UTC  every %.1f s%s",
            jsonkit_text (tree, "ring_epoch"), jsonkit_text (totals, "shards"),
            jsonkit_text (totals, "down"), clock, ctx->interval_ms / 1000.0,
            isatty (STDIN_FILENO) ? "  q quits" : "");
    s_line ("%s", "");
    s_line (S_ROW_FORMAT, "shard", "state", "xfers/s", "reqs/s", "p99 ms", "in-doubt", "oldest s",
            "alarms", "epoch");
    const cJSON *s;
    cJSON_ArrayForEach (s, jsonkit_get (tree, "shards"))
    {
        if (jsonkit_true (s, "up")) {
            s_row (jsonkit_text (s, "name"), jsonkit_text (s, "state"), s,
                   jsonkit_text (s, "epoch"));
        } else {
            s_line ("%-10.10s %-9s %9s %9s %7s %8s %8s %6s %5s", jsonkit_text (s, "name"),
                    strcmp (jsonkit_text (s, "state"), "down") == 0 ? "DOWN" : "ERROR", "-", "-",
                    "-", "-", "-", "-", "-");
        }
    }
    char state[16];
    snprintf (state, sizeof state, "%s up", jsonkit_text (totals, "up"));
    s_row ("total", state, totals, jsonkit_text (tree, "ring_epoch"));
    s_line ("%s", "");
    s_notes (tree);
}

//  The command -------------------------------------------------------------------

//  Shows one view; false when the output is gone or memory ran out.
static bool
s_show (s_top_t *self, cJSON **tree_p)
{
    cJSON *tree = *tree_p;
    *tree_p = NULL;
    bool ok = tree && !jsonkit_failed ();
    if (ok && self->ctx->json) {
        ok = jsonkit_print (stdout, tree, false) == 0;
    } else if (ok) {
        if (self->tty_out) {
            fputs (S_CLEAR_SCREEN, stdout);
        } else if (self->view > 0) {
            putchar ('\n');
        }
        s_table (self->ctx, tree);
    } else {
        fprintf (stderr, "rlctl: top: out of memory\n");
    }
    cJSON_Delete (tree);
    self->view++;
    return fflush (stdout) == 0 && !ferror (stdout) && ok;
}

//  The shards that did not answer in the last view.
static size_t
s_down (const s_top_t *self)
{
    size_t down = 0;
    for (size_t i = 0; i < self->prev_count; i++) {
        down += !self->prev[i].valid;
    }
    return down;
}

int
rlctl_cmd_top (rlctl_ctx_t *ctx)
{
    static s_top_t top;
    s_top_t *self = &top;
    self->ctx = ctx;
    self->probe_ms = ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms
                                                              : RLCTL_PROBE_TIMEOUT_MS;
    self->probe_ms = self->probe_ms < ctx->interval_ms ? self->probe_ms : ctx->interval_ms;
    self->client = rlctl_client (ctx);
    if (!self->client) {
        return RLCTL_EXIT_USAGE;
    }
    char err[256];
    int rc = rlctl_ring_get (self->client, ctx->timeout_ms, &self->ring, err, sizeof err);
    if (rc) {
        if (err[0]) {
            fprintf (stderr, "rlctl: top: the ring from %s does not decode: %s\n", ctx->connect,
                     err);
        } else {
            rlctl_call_failed (ctx, "top", rc, false);
        }
        rl_client_destroy (&self->client);
        return RLCTL_EXIT_FAILED;
    }
    s_stop = 0;
    s_signals ();
    self->tty_out = !ctx->json && isatty (STDOUT_FILENO);
    s_terminal_raw (self);
    if (self->tty_out) {
        printf ("rlctl top: sampling every %.1f s ...\n", ctx->interval_ms / 1000.0);
        fflush (stdout);
    }
    //  The first record of every shard: the rates need two.
    int64_t next_ms = zclock_mono () + ctx->interval_ms;
    cJSON *tree = s_sample (self);
    cJSON_Delete (tree);
    self->view = 0;
    bool output_ok = true;
    while (output_ok && !s_stop && (ctx->count == 0 || self->view < ctx->count)) {
        s_wait (self, next_ms);
        if (s_stop) {
            break;
        }
        next_ms += ctx->interval_ms;
        int64_t now_ms = zclock_mono ();
        if (next_ms < now_ms) {
            next_ms = now_ms + ctx->interval_ms; //  the shards took longer than the interval
        }
        tree = s_sample (self);
        output_ok = s_show (self, &tree);
    }
    s_terminal_restore (self);
    bool complete = ctx->count != 0 && self->view == ctx->count;
    size_t down = s_down (self);
    ring_destroy (&self->ring);
    rl_client_destroy (&self->client);
    //  A write that failed after a stop was asked for (a terminal hung up
    //  with SIGHUP, or a write a signal broke off) is how top was stopped.
    if (!output_ok && !s_stop) {
        return RLCTL_EXIT_FAILED;
    }
    //  Ended by q or a signal: as asked. By --count: like status, 1 when a
    //  shard did not answer in the last view.
    return complete && down ? RLCTL_EXIT_FAILED : RLCTL_EXIT_OK;
}
