/*  rlbench.c: a high-volume client for ringledger, with a strong check:
    options, signals, the spawned shard, the fsync probe, the ring and the
    shards' status, and main. The parts are listed in rlbench.h.

    rlbench drives one or more endpoints (routers, or a shard directly: a
    shard speaks the same protocol) with batches of transfers from N
    connections of the client library, each keeping up to W requests in
    flight, and
    reports throughput, latency, result codes and the durability mode of
    every shard it reached. At the end it checks that the money adds up.

    DESIGN NOTES
    - Closed loop (--mode closed): every connection keeps --window requests
      in flight; a reply frees its slot and the next request goes out. This
      measures capacity, not latency under a given load.
    - Open loop (--mode open --rate R): batches arrive as a Poisson process
      at a mean of R transfers/s, whatever the cluster does. Each request
      has an INTENDED send time (its arrival), and its latency is measured
      from that time, so time spent queued in the generator (because every
      slot was busy) is counted, not hidden. The generator's lag (actual
      minus intended send time) is reported; a run that sent fewer than
      99% of the offered requests is marked INVALID.
    - A reply is matched to its slot by the request id the client library
      gave it; a request that timed out is cancelled in the library, which
      drops its late reply.
    - Every transfer id is fresh: (namespace, sequence), the namespace drawn
      from the seed. Account ids are (namespace, 1..N), so each run has its
      own accounts and the sums it checks are its own.

    THE CHECK (on by default; DESIGN, "Invariants", 1)
    The project's one conservation check (common/check.h), the same the
    tests run: the engine records every acknowledged transfer in its model
    and every unknown outcome (a request that timed out, a record answered
    outcome_unknown, storage_error, in_progress or in_doubt, a code this
    version does not know), which the check settles by lookup. After every
    shard reports no live two-phase attempt it checks each account against
    the model, the sums per ledger, (--history, automatic for at most
    RLB_HISTORY_AUTO_ACCOUNTS_MAX accounts) the history sums, a sample of
    acknowledged transfers, and that some transfer succeeded; rlbench adds
    that the shards applied at least as many transfers as were
    acknowledged (rlbench_report.c). Any failure prints why and exits 1.
    A ring change during the run (`rebalance apply`) moves accounts: the
    check then takes the newest ring that the cluster serves and asks each
    account of its owner there, and waits for the quiet of the shards of
    both rings (rlb_refresh_ring).

    LIMITS
    Every bound is a named constant below (RLB_*). Work per loop turn is
    bounded by the window; timeouts are checked each turn; the whole run
    is bounded by an alarm (RLB_HARD_DEADLINE_EXTRA_S after the planned
    end), which stops a spawned shard and exits.

    Usage: see s_usage () or bench/README.md, "Harness".
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "keys.h"
#include "rl_rand.h"
#include "rlbench.h"
#include "proc.h"
#include "spawn.h"

volatile sig_atomic_t rlb_interrupted = 0;
static volatile pid_t s_spawned_pid = 0;

//  A percentage (no trailing text), or -1, which the option check refuses.
static double
s_parse_percent (const char *text)
{
    char *end = NULL;
    double value = strtod (text, &end);
    return end != text && *end == '\0' ? value : -1;
}

//  --timeout-ms: a whole number of ms (no trailing text, no overflow), or
//  -1, which the option check refuses with the reason.
static int
s_parse_timeout (const char *text)
{
    errno = 0;
    char *end = NULL;
    long value = strtol (text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || value < 1 || value > INT_MAX) {
        return -1;
    }
    return (int) value;
}

static void
s_on_signal (int sig)
{
    (void) sig;
    rlb_interrupted = 1;
}

static void
s_on_alarm (int sig)
{
    (void) sig;
    if (s_spawned_pid > 0) {
        kill (s_spawned_pid, SIGKILL);
    }
    static const char msg[] = "rlbench: hard deadline passed, exiting\n";
    ssize_t rc = write (2, msg, sizeof (msg) - 1);
    (void) rc;
    _exit (1);
}

FILE *
rlb_out (const bench_t *b)
{
    return b->o.json ? stderr : stdout;
}

//  Time ----------------------------------------------------------------------------

uint64_t
rlb_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

void
rlb_sleep_ns (uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t) (ns / 1000000000ull),
                          .tv_nsec = (long) (ns % 1000000000ull)};
    nanosleep (&ts, NULL);
}

//  Options -----------------------------------------------------------------
static void
s_usage (void)
{
    fprintf (
        stderr,
        "usage: rlbench (--connect EP[,EP...] | --spawn-shard PATH) [options]\n"
        "  --connections N      client connections, requests spread round robin (1)\n"
        "  --window N           requests in flight per connection (closed 4, open %d)\n"
        "  --batch N            transfers per request, 1..%d (100)\n"
        "  --accounts N         customer accounts (10000)\n"
        "  --ledger L           ledger of every account and transfer (1)\n"
        "  --workload uniform|zipf [--theta T]   account draws (uniform; theta 0.99)\n"
        "  --hot-accounts N --hot-percent P      P%% of draws among the first N accounts\n"
        "  --cross-fraction F   fraction of transfers whose accounts are on two shards\n"
        "  --lookup-percent P   P%% of requests are lookup_accounts of --batch ids\n"
        "  --mode closed|open   closed loop, or Poisson arrivals at --rate R transfers/s\n"
        "  --warmup S --duration S | --count N   (1 s, 10 s)\n"
        "  --seed N --json --timeout-ms MS --quiet\n"
        "  --no-check           skip the conservation check\n"
        "  --no-create-accounts use accounts created by an earlier run (same --seed)\n"
        "  --limits             customers may not overdraw; one operator per shard funds them\n"
        "  --transfer-pending P P%% of new transfers are pending, cross-shard ones too (each\n"
        "                       is posted, 4 in 5, or voided in a later request)\n"
        "  --hot-credit P       P%% of transfers credit one merchant (customer 0) from\n"
        "                       accounts on other shards; the merchant's credits may not\n"
        "                       exceed its debits (a limit checked on every reservation)\n"
        "  --history auto|on|off  check every account's history sums (auto: <= %d accounts)\n"
        "  --probe-dir DIR --probe-writes N   fdatasync latency of 4 KiB writes (/var/tmp, %d)\n"
        "  --spawn-shard PATH [--data DIR] [--durability sync|nosync] [--keep]\n"
        "                       (the spawned shard gets fresh keys, unless --insecure)\n"
        "  --cert FILE --server-key KEY   CURVE: this client's secret certificate and the\n"
        "                       public key of --connect (default $RL_CERT, $RL_SERVER_KEY)\n"
        "  --insecure           plain TCP, for shards and routers started --insecure\n",
        RLB_OPEN_WINDOW_DEFAULT, RL_BATCH_RECORDS_MAX, RLB_HISTORY_AUTO_ACCOUNTS_MAX,
        RLB_PROBE_WRITES_DEFAULT);
}

static int
s_parse_endpoints (options_t *o, const char *arg)
{
    char *list = strdup (arg);
    if (!list) {
        fprintf (stderr, "rlbench: out of memory reading --endpoints\n");
        return -1;
    }
    char *save = NULL;
    o->endpoint_count = 0;
    for (char *ep = strtok_r (list, ",", &save); ep; ep = strtok_r (NULL, ",", &save)) {
        if (o->endpoint_count == RLB_ENDPOINTS_MAX || strlen (ep) >= RL_ENDPOINT_SIZE_MAX) {
            free (list);
            return -1;
        }
        snprintf (o->endpoints[o->endpoint_count++], RL_ENDPOINT_SIZE_MAX, "%s", ep);
    }
    free (list);
    return o->endpoint_count > 0 ? 0 : -1;
}

static int
s_check_options (options_t *o)
{
    const char *why = NULL;
    if (o->endpoint_count == 0 && !o->spawn_shard) {
        why = "give --connect or --spawn-shard";
    } else if (o->connections < 1 || o->connections > RLB_CONNECTIONS_MAX) {
        why = "--connections out of range";
    } else if (o->window < 0 || o->window > RLB_WINDOW_MAX) {
        why = "--window out of range";
    } else if (o->batch < 1 || o->batch > RL_BATCH_RECORDS_MAX) {
        why = "--batch out of 1..8190";
    } else if (o->accounts < 2 || o->accounts > RLB_ACCOUNTS_MAX) {
        why = "--accounts out of range";
    } else if (o->ledger == 0) {
        why = "--ledger must not be 0";
    } else if (o->workload == WORKLOAD_ZIPF && !(o->theta > 0 && o->theta < 1)) {
        why = "--theta must be in (0, 1)";
    } else if (o->hot_credit < 0 || o->hot_credit > 100) {
        why = "--hot-credit out of 0..100";
    } else if (!(o->transfer_pending >= 0 && o->transfer_pending <= 100)) {
        why = "--transfer-pending out of 0..100";
    } else if (o->hot_accounts > o->accounts || o->hot_percent < 0 || o->hot_percent > 100
               || (o->hot_percent > 0 && o->hot_accounts < 1)) {
        why = "--hot-accounts/--hot-percent out of range";
    } else if (o->cross_fraction > 1) {
        why = "--cross-fraction out of 0..1";
    } else if (o->lookup_percent < 0 || o->lookup_percent > 100) {
        why = "--lookup-percent out of 0..100";
    } else if (o->mode == MODE_OPEN && !(o->rate > 0)) {
        why = "--mode open needs --rate > 0";
    } else if (o->warmup_s < 0 || (o->count == 0 && !(o->duration_s > 0))) {
        why = "--duration must be > 0 (or give --count)";
    } else if (o->probe_writes < 0 || o->probe_writes > RLB_PROBE_WRITES_MAX) {
        why = "--probe-writes out of range";
    } else if (o->timeout_ms <= RL_ROUTER_DEADLINE_MS) {
        //  The order of timeouts ends with the client's: a request must
        //  wait longer than the router's deadline to hear its answer.
        static char text[256];
        snprintf (text, sizeof text,
                  "--timeout-ms must be a whole number above the router's deadline (%d ms): a "
                  "shorter one gives up before the router answers, and the outcome stays unknown "
                  "(order: prepare < shard deadline < router deadline < client timeout)",
                  RL_ROUTER_DEADLINE_MS);
        why = text;
    }
    if (!why) {
        int window = o->window ? o->window : 1;
        if ((uint64_t) o->connections * (uint64_t) window * o->batch > RLB_INFLIGHT_RECORDS_MAX) {
            why = "connections x window x batch exceeds the in-flight bound";
        }
    }
    if (why) {
        fprintf (stderr, "rlbench: %s\n", why);
        return -1;
    }
    return 0;
}

static int
s_parse (int argc, char **argv, options_t *o)
{
    enum {
        O_CONNECT = 256,
        O_CONNS,
        O_WINDOW,
        O_BATCH,
        O_ACCOUNTS,
        O_LEDGER,
        O_WORKLOAD,
        O_THETA,
        O_HOT_ACC,
        O_HOT_PCT,
        O_CROSS,
        O_LOOKUP,
        O_MODE,
        O_RATE,
        O_WARMUP,
        O_DURATION,
        O_COUNT,
        O_SEED,
        O_JSON,
        O_NOCHECK,
        O_CREATE,
        O_NOCREATE,
        O_LIMITS,
        O_HISTORY,
        O_TIMEOUT,
        O_HOT_CREDIT,
        O_PENDING,
        O_PROBE_DIR,
        O_PROBE_N,
        O_SPAWN,
        O_DATA,
        O_DURABILITY,
        O_KEEP,
        O_QUIET,
        O_CERT,
        O_SERVER_KEY,
        O_INSECURE,
        O_HELP
    };
    static const struct option longs[] = {
        {"connect", required_argument, NULL, O_CONNECT},
        {"connections", required_argument, NULL, O_CONNS},
        {"window", required_argument, NULL, O_WINDOW},
        {"batch", required_argument, NULL, O_BATCH},
        {"accounts", required_argument, NULL, O_ACCOUNTS},
        {"ledger", required_argument, NULL, O_LEDGER},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"theta", required_argument, NULL, O_THETA},
        {"hot-accounts", required_argument, NULL, O_HOT_ACC},
        {"hot-percent", required_argument, NULL, O_HOT_PCT},
        {"cross-fraction", required_argument, NULL, O_CROSS},
        {"lookup-percent", required_argument, NULL, O_LOOKUP},
        {"mode", required_argument, NULL, O_MODE},
        {"rate", required_argument, NULL, O_RATE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"duration", required_argument, NULL, O_DURATION},
        {"count", required_argument, NULL, O_COUNT},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        {"no-check", no_argument, NULL, O_NOCHECK},
        {"create-accounts", no_argument, NULL, O_CREATE},
        {"no-create-accounts", no_argument, NULL, O_NOCREATE},
        {"limits", no_argument, NULL, O_LIMITS},
        {"hot-credit", required_argument, NULL, O_HOT_CREDIT},
        {"transfer-pending", required_argument, NULL, O_PENDING},
        {"history", required_argument, NULL, O_HISTORY},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"probe-dir", required_argument, NULL, O_PROBE_DIR},
        {"probe-writes", required_argument, NULL, O_PROBE_N},
        {"spawn-shard", required_argument, NULL, O_SPAWN},
        {"data", required_argument, NULL, O_DATA},
        {"durability", required_argument, NULL, O_DURABILITY},
        {"keep", no_argument, NULL, O_KEEP},
        {"quiet", no_argument, NULL, O_QUIET},
        {"cert", required_argument, NULL, O_CERT},
        {"server-key", required_argument, NULL, O_SERVER_KEY},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (options_t){.connections = 1,
                     .batch = 100,
                     .accounts = 10000,
                     .ledger = 1,
                     .theta = 0.99,
                     .cross_fraction = -1,
                     .warmup_s = 1,
                     .duration_s = 10,
                     .check = true,
                     .create_accounts = true,
                     .timeout_ms = RLB_TIMEOUT_MS_DEFAULT,
                     .probe_dir = "/var/tmp",
                     .probe_writes = RLB_PROBE_WRITES_DEFAULT,
                     .data_dir = "/var/tmp",
                     .durability = "sync",
                     .cert = getenv ("RL_CERT"),
                     .server_key = getenv ("RL_SERVER_KEY")};
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
            case O_CERT:
                o->cert = optarg;
                break;
            case O_SERVER_KEY:
                o->server_key = optarg;
                break;
            case O_INSECURE:
                o->insecure = true;
                break;
            case O_CONNECT:
                if (s_parse_endpoints (o, optarg) != 0) {
                    fprintf (stderr, "rlbench: bad --connect list\n");
                    return -1;
                }
                break;
            case O_CONNS:
                o->connections = atoi (optarg);
                break;
            case O_WINDOW:
                o->window = atoi (optarg);
                break;
            case O_BATCH:
                o->batch = (uint32_t) strtoul (optarg, NULL, 10);
                break;
            case O_ACCOUNTS:
                o->accounts = strtoull (optarg, NULL, 10);
                break;
            case O_LEDGER:
                o->ledger = (uint32_t) strtoul (optarg, NULL, 10);
                break;
            case O_WORKLOAD:
                if (strcmp (optarg, "uniform") == 0) {
                    o->workload = WORKLOAD_UNIFORM;
                } else if (strcmp (optarg, "zipf") == 0) {
                    o->workload = WORKLOAD_ZIPF;
                } else {
                    fprintf (stderr, "rlbench: --workload uniform|zipf\n");
                    return -1;
                }
                break;
            case O_THETA:
                o->theta = atof (optarg);
                break;
            case O_HOT_ACC:
                o->hot_accounts = strtoull (optarg, NULL, 10);
                break;
            case O_HOT_PCT:
                o->hot_percent = atof (optarg);
                break;
            case O_CROSS:
                o->cross_fraction = atof (optarg);
                break;
            case O_LOOKUP:
                o->lookup_percent = atof (optarg);
                break;
            case O_MODE:
                if (strcmp (optarg, "closed") == 0) {
                    o->mode = MODE_CLOSED;
                } else if (strcmp (optarg, "open") == 0) {
                    o->mode = MODE_OPEN;
                } else {
                    fprintf (stderr, "rlbench: --mode closed|open\n");
                    return -1;
                }
                break;
            case O_RATE:
                o->rate = atof (optarg);
                break;
            case O_WARMUP:
                o->warmup_s = atof (optarg);
                break;
            case O_DURATION:
                o->duration_s = atof (optarg);
                break;
            case O_COUNT:
                o->count = strtoull (optarg, NULL, 10);
                break;
            case O_SEED:
                o->seed = strtoull (optarg, NULL, 0), o->seed_given = true;
                break;
            case O_JSON:
                o->json = true;
                break;
            case O_NOCHECK:
                o->check = false;
                break;
            case O_CREATE:
                o->create_accounts = true;
                break;
            case O_NOCREATE:
                o->create_accounts = false;
                break;
            case O_LIMITS:
                o->limits = true;
                break;
            case O_HOT_CREDIT:
                o->hot_credit = atof (optarg);
                break;
            case O_PENDING:
                o->transfer_pending = s_parse_percent (optarg);
                break;
            case O_HISTORY:
                o->history = strcmp (optarg, "on") == 0    ? HISTORY_ON
                             : strcmp (optarg, "off") == 0 ? HISTORY_OFF
                                                           : HISTORY_AUTO;
                break;
            case O_TIMEOUT:
                o->timeout_ms = s_parse_timeout (optarg);
                break;
            case O_PROBE_DIR:
                o->probe_dir = optarg;
                break;
            case O_PROBE_N:
                o->probe_writes = atoi (optarg);
                break;
            case O_SPAWN:
                o->spawn_shard = optarg;
                break;
            case O_DATA:
                o->data_dir = optarg;
                break;
            case O_DURABILITY:
                if (strcmp (optarg, "sync") != 0 && strcmp (optarg, "nosync") != 0) {
                    fprintf (stderr, "rlbench: --durability sync|nosync\n");
                    return -1;
                }
                o->durability = optarg;
                break;
            case O_KEEP:
                o->keep = true;
                break;
            case O_QUIET:
                o->quiet = true;
                break;
            default:
                s_usage ();
                return -1;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "rlbench: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    return s_check_options (o);
}

//  fsync probe: the disk's own latency for a 4 KiB write + fdatasync -------
static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

static void
s_probe_fsync (bench_t *b, const char *dir)
{
    int n = b->o.probe_writes;
    if (n == 0) {
        return;
    }
    char path[PATH_MAX];
    snprintf (path, sizeof (path), "%s/rlbench-probe-XXXXXX", dir);
    int fd = mkstemp (path);
    if (fd < 0) {
        fprintf (stderr, "rlbench: fsync probe: cannot create a file in %s: %s\n", dir,
                 strerror (errno));
        return;
    }
    unlink (path);
    uint64_t *ns = calloc ((size_t) n, sizeof (uint64_t));
    if (!ns) {
        fprintf (stderr, "rlbench: fsync probe: out of memory for %d samples\n", n);
        close (fd);
        return;
    }
    uint8_t block[RLB_PROBE_BLOCK_BYTES];
    memset (block, 0x5a, sizeof (block));
    int done = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = rlb_now_ns ();
        if (pwrite (fd, block, sizeof (block), (off_t) i * RLB_PROBE_BLOCK_BYTES)
                != (ssize_t) sizeof (block)
            || fdatasync (fd) != 0) {
            break;
        }
        ns[done++] = rlb_now_ns () - t0;
    }
    close (fd);
    if (done > 0) {
        qsort (ns, (size_t) done, sizeof (uint64_t), s_cmp_u64);
        b->probe_p50_ms = (double) ns[(size_t) (0.50 * (done - 1))] / 1e6;
        b->probe_p99_ms = (double) ns[(size_t) (0.99 * (done - 1))] / 1e6;
    }
    b->probe_done = done;
    free (ns);
}

//  CURVE for --connect (unless --insecure): this client's keypair and the
//  key of the endpoints; shards reached directly take theirs from the ring.
static int
s_security (bench_t *b)
{
    if (b->o.insecure) {
        return 0;
    }
    if (!b->o.cert || !*b->o.cert || !b->o.server_key || !*b->o.server_key) {
        fprintf (stderr, "rlbench: give --cert FILE and --server-key KEY (or $RL_CERT and "
                         "$RL_SERVER_KEY), or --insecure (docs/security.md)\n");
        return -1;
    }
    char err[768];
    char key[RL_KEY_TEXT_SIZE];
    b->cert = rl_cert_load (b->o.cert, err, sizeof err);
    if (!b->cert || rl_key_resolve (b->o.server_key, key, err, sizeof err) != 0) {
        fprintf (stderr, "rlbench: %s\n", err);
        zcert_destroy (&b->cert);
        return -1;
    }
    rl_client_set_curve (b->cert, key);
    return 0;
}

//  A shard of our own (--spawn-shard) ----------------------------------------
static int
s_spawn_shard (bench_t *b)
{
    snprintf (b->spawn_dir, sizeof (b->spawn_dir), "%s/rlbench-XXXXXX", b->o.data_dir);
    if (!mkdtemp (b->spawn_dir)) {
        fprintf (stderr, "rlbench: cannot create a directory in %s: %s\n", b->o.data_dir,
                 strerror (errno));
        b->spawn_dir[0] = '\0';
        return -1;
    }
    char data[PATH_MAX + 8], log[PATH_MAX + 16], keys[PATH_MAX + 8];
    snprintf (data, sizeof (data), "%s/s1", b->spawn_dir);
    snprintf (log, sizeof (log), "%s/s1.log", b->spawn_dir);
    snprintf (keys, sizeof (keys), "%s/keys", b->spawn_dir);
    if (!b->o.insecure && spawn_keys_make (keys, "s1", &b->cert) != 0) {
        return -1;
    }
    int rc = spawn_shard_start (&b->shard, b->o.spawn_shard, "s1", data, b->o.durability,
                                b->o.insecure ? NULL : keys, log, RLB_READY_TIMEOUT_MS,
                                &rlb_interrupted);
    s_spawned_pid = b->shard.pid;
    if (rc == 0) {
        snprintf (b->o.endpoints[0], RL_ENDPOINT_SIZE_MAX, "%s", b->shard.endpoint);
        b->o.endpoint_count = 1;
    }
    return rc;
}

static void
s_stop_shard (bench_t *b)
{
    spawn_shard_stop (&b->shard, RLB_STOP_TIMEOUT_MS);
    s_spawned_pid = 0;
    if (b->spawn_dir[0] && !b->o.keep) {
        if (proc_remove_tree (b->spawn_dir) != 0) {
            fprintf (stderr, "rlbench: could not remove %s\n", b->spawn_dir);
        }
    } else if (b->spawn_dir[0]) {
        fprintf (stderr, "rlbench: kept %s\n", b->spawn_dir);
    }
}

//  The ring and the shards' status ------------------------------------------

//  The ring that endpoint serves, or NULL (says why when loud).
static ring_t *
s_get_ring (const char *endpoint, bool loud)
{
    ring_t *ring = NULL;
    rl_client_t *client = rl_client_new (endpoint);
    uint8_t *blob = NULL;
    size_t size = 0;
    if (client && rl_client_get_ring (client, &blob, &size, RLB_ADMIN_TIMEOUT_MS) == 0) {
        char err[256];
        ring = ring_decode (blob, size, err, sizeof (err));
        if (!ring && loud) {
            fprintf (stderr, "rlbench: get_ring: the ring of %s does not decode: %s\n", endpoint,
                     err);
        }
    } else if (loud) {
        fprintf (stderr, "rlbench: get_ring failed: no ring, cross-shard fraction unknown\n");
    }
    free (blob);
    rl_client_destroy (&client);
    return ring;
}

static void
s_fetch_ring (bench_t *b)
{
    b->ring = s_get_ring (b->o.endpoints[0], true);
    if (b->ring) {
        b->shard_count = ring_shard_count (b->ring);
        if (b->shard_count > RLB_SHARDS_MAX) {
            b->shard_count = RLB_SHARDS_MAX;
        }
        for (size_t i = 0; i < b->shard_count; i++) {
            snprintf (b->shards[i].name, sizeof (b->shards[i].name), "%s",
                      ring_shard_name (b->ring, i));
            snprintf (b->shards[i].endpoint, sizeof (b->shards[i].endpoint), "%s",
                      ring_shard_endpoint (b->ring, i));
            if (*ring_shard_key (b->ring, i)) {
                rl_client_add_server_key (ring_shard_endpoint (b->ring, i),
                                          ring_shard_key (b->ring, i));
            }
        }
    } else {
        //  No ring: ask the endpoints themselves.
        b->shard_count = b->o.endpoint_count;
        for (size_t i = 0; i < b->shard_count; i++) {
            snprintf (b->shards[i].endpoint, sizeof (b->shards[i].endpoint), "%s",
                      b->o.endpoints[i]);
        }
    }
}

//  After the run: the newest ring that the first endpoint or any shard
//  serves. A ring change during the run (a rebalance) moves accounts to
//  other shards, so the check must ask each account of its owner in the
//  newest ring, and wait for the quiet of every shard of both rings (a
//  shard that left may still hold two-phase work). The shards' list
//  becomes the new ring's shards (ring indexes, as rlb_shard_of_id gives
//  them), then the shards that left; each keeps its status from before
//  the run. A shard new to the run gets zero counters before it (what it
//  applied since its start counts as applied during the run: the check
//  of the applied counts stays a lower bound, never a false failure).
void
rlb_refresh_ring (bench_t *b)
{
    if (!b->ring) {
        return; //  no ring at the start: the endpoints are the shards
    }
    ring_t *newest = s_get_ring (b->o.endpoints[0], false);
    for (size_t i = 0; i < b->shard_count; i++) {
        ring_t *ring = s_get_ring (b->shards[i].endpoint, false);
        if (ring && (!newest || ring_epoch (ring) > ring_epoch (newest))) {
            ring_destroy (&newest);
            newest = ring;
        } else {
            ring_destroy (&ring);
        }
    }
    if (!newest || ring_epoch (newest) <= ring_epoch (b->ring)) {
        ring_destroy (&newest);
        return;
    }
    static shard_info_t shards[RLB_SHARDS_MAX];
    size_t count = 0;
    size_t in_ring = ring_shard_count (newest);
    for (size_t i = 0; i < in_ring && count < RLB_SHARDS_MAX; i++) {
        shard_info_t *s = &shards[count++];
        *s = (shard_info_t){0};
        snprintf (s->name, sizeof (s->name), "%s", ring_shard_name (newest, i));
        snprintf (s->endpoint, sizeof (s->endpoint), "%s", ring_shard_endpoint (newest, i));
        if (*ring_shard_key (newest, i)) {
            rl_client_add_server_key (ring_shard_endpoint (newest, i), ring_shard_key (newest, i));
        }
        int old = ring_shard_find (b->ring, s->name);
        if (old >= 0 && (size_t) old < b->shard_count) {
            *s = b->shards[old];
            snprintf (s->endpoint, sizeof (s->endpoint), "%s", ring_shard_endpoint (newest, i));
        } else {
            s->reached = true; //  new to the run: zero counters before it
            rl_client_t *client = rl_client_new (s->endpoint);
            rl_status_rec_t status;
            if (client && rl_client_status (client, &status, RLB_ADMIN_TIMEOUT_MS) == 0) {
                s->durability = status.durability;
            }
            rl_client_destroy (&client);
        }
    }
    for (size_t i = 0; i < b->shard_count && count < RLB_SHARDS_MAX; i++) {
        if (ring_shard_find (newest, b->shards[i].name) < 0) {
            shards[count++] = b->shards[i]; //  it left the ring
        }
    }
    if (!b->o.quiet) {
        fprintf (rlb_out (b),
                 "rlbench: the ring changed during the run (epoch %" PRIu64 " -> %" PRIu64
                 ", %zu -> %zu shards): the check asks each account's owner in the new ring\n",
                 ring_epoch (b->ring), ring_epoch (newest), ring_shard_count (b->ring), in_ring);
    }
    memcpy (b->shards, shards, count * sizeof (shard_info_t));
    b->shard_count = count;
    ring_destroy (&b->ring);
    b->ring = newest;
}

//  Reads every shard's status into before or after; returns the number
//  that answered.
size_t
rlb_read_status (bench_t *b, bool after)
{
    size_t reached = 0;
    for (size_t i = 0; i < b->shard_count; i++) {
        shard_info_t *s = &b->shards[i];
        rl_client_t *client = rl_client_new (s->endpoint);
        rl_status_rec_t status;
        if (client && rl_client_status (client, &status, RLB_ADMIN_TIMEOUT_MS) == 0) {
            if (after) {
                s->after = status;
            } else {
                s->before = status;
                s->durability = status.durability;
                if (!s->name[0]) {
                    snprintf (s->name, sizeof (s->name), "%s", status.name);
                }
            }
            s->reached = after ? s->reached : true;
            reached++;
        } else if (!after) {
            s->reached = false;
        }
        rl_client_destroy (&client);
    }
    return reached;
}

const char *
rlb_durability_name (uint32_t d)
{
    return d == 0 ? "unknown (not a shard)" : rl_durability_name (d);
}

//  One summary of all shards' modes: the common one, or "mixed".
const char *
rlb_durability_summary (const bench_t *b)
{
    uint32_t d = 0;
    for (size_t i = 0; i < b->shard_count; i++) {
        if (!b->shards[i].reached) {
            return "unknown (a shard did not answer)";
        }
        if (d && b->shards[i].durability != d) {
            return "mixed";
        }
        d = b->shards[i].durability;
    }
    return rlb_durability_name (d);
}

//  main ------------------------------------------------------------------------
static int
s_setup (bench_t *b)
{
    s_fetch_ring (b);
    if (rlb_read_status (b, false) == b->shard_count && b->shard_count > 0) {
        b->status_complete = true;
    }
    if (b->o.cross_fraction >= 0 && (!b->ring || b->shard_count < 2)) {
        fprintf (stderr, "rlbench: --cross-fraction needs a ring of at least 2 shards (have %zu)\n",
                 b->ring ? b->shard_count : 0);
        return -1;
    }
    if (rlb_plan_accounts (b) != 0 || rlb_build_buckets (b) != 0) {
        fprintf (stderr, "rlbench: out of memory\n");
        return -1;
    }
    if (b->o.limits && rlb_find_operators (b) != 0) {
        fprintf (stderr, "rlbench: could not find an operator id for every shard\n");
        return -1;
    }
    if (rlb_model_new (b) != 0) {
        fprintf (stderr, "rlbench: out of memory\n");
        return -1;
    }
    if (b->o.workload == WORKLOAD_ZIPF) {
        rlb_zipf_init (b);
    }
    if (b->o.create_accounts) {
        rl_client_t *client = rl_client_new (b->o.endpoints[0]);
        int rc = client ? rlb_create_accounts (b, client) : -1;
        if (rc == 0 && b->o.hot_credit > 0) {
            rc = rlb_merchant_setup (b, client); //  before funding credits the merchant
        }
        if (rc == 0 && b->o.limits) {
            rc = rlb_fund_accounts (b, client);
        }
        rl_client_destroy (&client);
        if (rc != 0) {
            return -1;
        }
    }
    return rlb_connect (b);
}

int
main (int argc, char **argv)
{
    static bench_t bench;
    bench_t *b = &bench;
    if (s_parse (argc, argv, &b->o) != 0) {
        return 2;
    }
    if (!b->o.seed_given) {
        b->o.seed = rlb_now_ns () ^ ((uint64_t) getpid () << 32);
    }
    //  The namespace of the run's ids, then the workload, from one generator.
    rlb_rand_seed (b, b->o.seed ^ 0x6e616d657370ull); //  "namesp"
    b->ns = rl_rand_next (&b->rng) | 1;
    rlb_rand_seed (b, b->o.seed);
    b->next_seq = 1;
    b->window = b->o.window ? b->o.window : (b->o.mode == MODE_OPEN ? RLB_OPEN_WINDOW_DEFAULT : 4);
    zsys_init ();
    zsys_handler_set (NULL);
    signal (SIGINT, s_on_signal);
    signal (SIGTERM, s_on_signal);
    signal (SIGALRM, s_on_alarm);
    double planned_s = b->o.warmup_s + (b->o.count ? RLB_COUNT_MODE_BUDGET_S : b->o.duration_s);
    alarm ((unsigned) planned_s + RLB_HARD_DEADLINE_EXTRA_S);
    if (!b->o.quiet) {
        fprintf (rlb_out (b), "rlbench: seed %" PRIu64 " (replay with --seed %" PRIu64 ")\n",
                 b->o.seed, b->o.seed);
    }
    int rc = 0;
    if (b->o.spawn_shard && s_spawn_shard (b) != 0) {
        s_stop_shard (b);
        rl_client_clear_curve ();
        zcert_destroy (&b->cert);
        return 1;
    }
    if (!b->o.spawn_shard && s_security (b) != 0) {
        return 2;
    }
    s_probe_fsync (b, b->o.spawn_shard ? b->spawn_dir : b->o.probe_dir);
    if (s_setup (b) != 0) {
        rc = 1;
    } else {
        rlb_run (b);
        rlb_refresh_ring (b);
        if (b->status_complete && rlb_read_status (b, true) != b->shard_count) {
            b->status_complete = false;
        }
        const char *check = "skipped (--no-check)";
        if (b->o.check) {
            bool passed = rlb_check (b);
            check = passed ? "passed" : "FAILED";
            rc = passed ? 0 : 1;
        }
        if (rlb_interrupted) {
            fprintf (stderr, "rlbench: interrupted\n");
        }
        if (b->o.json) {
            rc = rlb_report_json (b, check) ? 1 : rc;
        } else {
            rlb_report_text (b, check);
        }
    }
    rlb_disconnect (b);
    free (b->resolve);
    b->resolve = NULL;
    ring_destroy (&b->ring);
    rl_check_destroy (&b->check);
    s_stop_shard (b);
    rl_client_clear_curve ();
    zcert_destroy (&b->cert);
    return rc;
}
