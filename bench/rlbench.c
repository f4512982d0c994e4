/*  rlbench.c: a high-volume client for ringledger, with a strong check.

    rlbench drives one or more endpoints (routers, or a shard directly: a
    shard speaks the same protocol) with batches of transfers from N
    ZeroMQ DEALER sockets, each keeping up to W requests in flight, and
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
    - Request ids carry the connection and slot of the request, so a reply
      is matched in O(1); a reply whose id does not match a busy slot is a
      late reply to a request that timed out, and is counted and dropped.
    - Every transfer id is fresh: (namespace, sequence), the namespace drawn
      from the seed. Account ids are (namespace, 1..N), so each run has its
      own accounts and the sums it checks are its own.

    THE CHECK (on by default; DESIGN, "Invariants", 1)
    The client keeps a model: per account, the debits and credits of every
    transfer acknowledged ok (or exists). A request that timed out, a
    record answered outcome_unknown or storage_error, and any code this
    version does not know, leave their transfers "unknown"; at the end they
    are settled by lookup_transfers (retried), asked of the debit account's
    shard: a found record means applied. Then, after every shard reports
    no live two-phase attempt, rlbench checks:
      1. per ledger, sum(debits_posted) == sum(credits_posted) over the
         run's accounts, and nothing is pending or reserved;
      2. every account equals the model;
      3. (--history, automatic for at most RLB_HISTORY_AUTO_ACCOUNTS_MAX
         accounts) the sum of each account's history equals its balances;
      4. some transfers succeeded, the shards applied at least as many as
         were acknowledged, and a sample of acknowledged ids is found.
    Any failure prints why and exits 1. A run with no ok transfer fails:
    a check that passes on an empty cluster is not a check.

    LIMITS
    Every bound is a named constant below (RLB_*). Work per loop turn is
    bounded by the window; timeouts are checked each turn; the whole run
    is bounded by an alarm (RLB_HARD_DEADLINE_EXTRA_S after the planned
    end), which stops a spawned shard and exits.

    Usage: see s_usage () or bench/README.md, "Harness".
*/
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <czmq.h>

#include "benchkit.h"
#include "jsonkit.h"
#include "client.h"
#include "codec.h"
#include "ring.h"

//  Limits --------------------------------------------------------------------
#define RLB_ENDPOINTS_MAX        64          //  --connect endpoints
#define RLB_CONNECTIONS_MAX      256         //  DEALER sockets
#define RLB_WINDOW_MAX           4096        //  requests in flight per connection
#define RLB_INFLIGHT_RECORDS_MAX (16u << 20) //  connections x window x batch
#define RLB_ACCOUNTS_MAX         (8u << 20)  //  accounts of one run
#define RLB_SHARDS_MAX           64          //  shards whose status is read
#define RLB_PROBE_WRITES_MAX     100000      //  fdatasync probe writes
#define RLB_PROBE_WRITES_DEFAULT 200
#define RLB_PROBE_BLOCK_BYTES    4096
#define RLB_TIMEOUT_MS_DEFAULT                                                                     \
    RL_CLIENT_TIMEOUT_MS                    //  a request with no reply after this is unknown
#define RLB_ADMIN_TIMEOUT_MS          10000 //  status, ring, account creation, check reads
#define RLB_READY_TIMEOUT_MS          20000 //  a spawned shard must answer status within this
#define RLB_SETTLE_ATTEMPTS_MAX       20    //  lookups of unknown transfers before giving up
#define RLB_SETTLE_BACKOFF_MS_MAX     1000
#define RLB_QUIESCE_TIMEOUT_MS        15000 //  wait for no live two-phase attempts
#define RLB_SAMPLE_MAX                1024  //  acknowledged ids looked up again at the end
#define RLB_HISTORY_AUTO_ACCOUNTS_MAX 64    //  --history auto: on up to this many accounts
#define RLB_PICK_ATTEMPTS_MAX         64    //  draws for a credit account of the wanted kind
#define RLB_HARD_DEADLINE_EXTRA_S     300   //  the process exits this long after the planned end
#define RLB_COUNT_MODE_BUDGET_S       3600  //  planned length of a --count run, for the alarm
#define RLB_FUND_AMOUNT               1000000000ull //  minor units given to each customer (--limits)
#define RLB_AMOUNT_MAX                100           //  transfer amounts are 1..this
#define RLB_OPEN_WINDOW_DEFAULT       256           //  window when --mode open and none given
#define RLB_OPEN_SPIN_NS              2000000       //  open loop: sleep-poll below this gap
#define RLB_OPEN_NAP_NS               50000         //  ... in naps of this length
#define RLB_INVALID_SENT_FRACTION     0.99 //  open loop: sent / offered below this is INVALID
#define RLB_HIST_SUB_BITS             6    //  log-linear histogram: 64 sub-buckets per octave
#define RLB_HIST_SUB                  (1u << RLB_HIST_SUB_BITS)
#define RLB_HIST_BUCKETS              (RLB_HIST_SUB * (64 - RLB_HIST_SUB_BITS + 1))

_Static_assert(RLB_CONNECTIONS_MAX <= 256 && RLB_WINDOW_MAX <= 4096,
               "connection and slot fit the 20 low bits of a request id");
_Static_assert(RLB_TIMEOUT_MS_DEFAULT > RL_ROUTER_DEADLINE_MS,
               "the client gives up after the router would answer outcome_unknown");

//  Log-linear latency histogram (values in ns) --------------------------------
//  Values below RLB_HIST_SUB are exact; above, each power of two is split
//  into RLB_HIST_SUB buckets, so a percentile is within 1/64 (1.6%) of the
//  true value. Percentiles report the bucket's highest value, capped at the
//  exact maximum, like HdrHistogram's "highest equivalent value".
typedef struct {
    uint64_t counts[RLB_HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} hist_t;

static size_t
s_hist_index (uint64_t v)
{
    if (v < RLB_HIST_SUB) {
        return (size_t) v;
    }
    int msb = 63 - __builtin_clzll (v);
    int shift = msb - RLB_HIST_SUB_BITS;
    return RLB_HIST_SUB + (size_t) shift * RLB_HIST_SUB
           + (size_t) ((v >> shift) & (RLB_HIST_SUB - 1));
}

static uint64_t
s_hist_highest (size_t index)
{
    if (index < RLB_HIST_SUB) {
        return index;
    }
    size_t shift = (index - RLB_HIST_SUB) / RLB_HIST_SUB;
    uint64_t sub = (index - RLB_HIST_SUB) % RLB_HIST_SUB;
    return ((RLB_HIST_SUB + sub + 1) << shift) - 1;
}

static void
s_hist_record (hist_t *h, uint64_t v)
{
    size_t i = s_hist_index (v);
    assert (i < RLB_HIST_BUCKETS);
    h->counts[i]++;
    h->total++;
    if (v > h->max) {
        h->max = v;
    }
}

static double
s_hist_ms (const hist_t *h, double p)
{
    if (h->total == 0) {
        return 0;
    }
    uint64_t target = (uint64_t) ceil (p * (double) h->total);
    target = target < 1 ? 1 : target;
    uint64_t seen = 0;
    for (size_t i = 0; i < RLB_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= target) {
            uint64_t v = s_hist_highest (i);
            return (double) (v < h->max ? v : h->max) / 1e6;
        }
    }
    return (double) h->max / 1e6;
}

//  Random numbers: xoshiro256**, seeded by splitmix64 ----------------------
static uint64_t s_rng[4];

static uint64_t
s_splitmix (uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void
s_rng_seed (uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        s_rng[i] = s_splitmix (&seed);
    }
}

static uint64_t
s_rand (void)
{
    uint64_t *s = s_rng;
    uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

static double
s_rand_unit (void) //  [0, 1)
{
    return (double) (s_rand () >> 11) * 0x1.0p-53;
}

static uint64_t
s_rand_below (uint64_t n)
{
    assert (n > 0);
    return s_rand () % n;
}

//  Time --------------------------------------------------------------------
static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void
s_sleep_ns (uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t) (ns / 1000000000ull),
                          .tv_nsec = (long) (ns % 1000000000ull)};
    nanosleep (&ts, NULL);
}

//  Options -----------------------------------------------------------------
typedef enum { WORKLOAD_UNIFORM, WORKLOAD_ZIPF } workload_t;
typedef enum { MODE_CLOSED, MODE_OPEN } run_mode_t;
typedef enum { HISTORY_AUTO, HISTORY_ON, HISTORY_OFF } history_t;

typedef struct {
    char endpoints[RLB_ENDPOINTS_MAX][RL_ENDPOINT_SIZE_MAX];
    size_t endpoint_count;
    char endpoints_joined[RLB_ENDPOINTS_MAX * RL_ENDPOINT_SIZE_MAX];
    int connections;
    int window; //  0: the mode's default
    uint32_t batch;
    uint64_t accounts;
    uint32_t ledger;
    workload_t workload;
    double theta;
    uint64_t hot_accounts;
    double hot_percent;
    double hot_credit;     //  % of transfers crediting the merchant (customer 0)
    double cross_fraction; //  < 0: whatever the account draws give
    double lookup_percent;
    run_mode_t mode;
    double rate; //  open loop: transfers/s offered
    double warmup_s;
    double duration_s;
    uint64_t count; //  > 0: send this many measured transfers instead of duration
    uint64_t seed;
    bool seed_given;
    bool json;
    bool check;
    bool create_accounts;
    bool limits;
    history_t history;
    int timeout_ms;
    const char *probe_dir;
    int probe_writes;
    const char *spawn_shard; //  path of a shard binary to start
    const char *data_dir;    //  where a spawned shard keeps its data
    const char *durability;  //  of a spawned shard
    bool keep;
    bool quiet;
} options_t;

//  State -------------------------------------------------------------------
typedef struct {
    uint32_t debit;  //  account index
    uint32_t credit; //  account index
    uint32_t amount; //  minor units
} rec_t;

typedef struct {
    bool busy;
    bool measured; //  sent after the warm-up (or its arrival was)
    uint16_t op;
    uint32_t count;
    uint64_t request_id;
    uint64_t first_seq;   //  transfer id (lo) of record 0; ids are consecutive
    uint64_t intended_ns; //  latency is measured from here
    rec_t *recs;          //  count records (create_transfers)
} slot_t;

typedef struct {
    zsock_t *sock;
    void *handle;
    slot_t *slots;
    int free_slots;
} conn_t;

typedef struct {
    uint64_t seq;
    rec_t rec;
} pending_t; //  a transfer whose outcome is unknown (or a sampled ok one)

typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    uint32_t durability;
    bool reached;
    rl_status_rec_t before;
    rl_status_rec_t after;
} shard_info_t;

typedef struct {
    options_t o;
    uint64_t ns;            //  namespace: the hi half of every id of the run
    uint64_t account_total; //  customers + operators
    uint64_t *model_debits; //  per account index
    uint64_t *model_credits;
    int *account_shard; //  ring shard index per account, -1 without a ring
    uint32_t **bucket;  //  customer account indexes per shard
    uint64_t *bucket_size;
    ring_t *ring;
    size_t shard_count;
    shard_info_t shards[RLB_SHARDS_MAX];
    bool status_complete; //  every ring shard answered status before and after
    //  zipf (YCSB's generator, Gray et al.)
    double zipf_zetan, zipf_alpha, zipf_eta, zipf_half_pow;
    //  connections
    conn_t conns[RLB_CONNECTIONS_MAX];
    int window;
    int next_conn;
    uint64_t request_gen;
    uint64_t next_seq;
    //  results
    hist_t latency;         //  create_transfers requests, measured
    hist_t lookup_latency;  //  lookup_accounts requests, measured
    hist_t lag;             //  open loop: actual - intended send time
    uint64_t results[256];  //  per-record result codes, measured
    uint64_t results_other; //  codes >= 256
    uint64_t statuses[32];  //  message-level statuses other than ok, measured
    uint64_t timeouts;      //  requests with no reply in time (all)
    uint64_t late_replies;
    uint64_t bad_replies;
    uint64_t ok_measured;     //  transfers ok or exists, measured
    uint64_t ok_total;        //  acknowledged ok or exists, all (model)
    uint64_t setup_ok;        //  of those, set-up transfers (not the workload's)
    uint64_t settled_applied; //  unknown at first, found applied at the end
    uint64_t settled_absent;
    uint64_t create_requests_measured;
    uint64_t lookup_requests_measured;
    uint64_t sent_transfers_measured;
    uint64_t cross_sent_measured;
    uint64_t offered_requests; //  open loop: arrivals in the measured window
    uint64_t sent_requests;    //  open loop: of those, sent before the end
    uint64_t measure_start_ns, measure_end_ns, last_reply_ns;
    //  progress of the current second
    uint64_t tick_ok, tick_errors, tick_requests;
    //  unknown outcomes and a sample of acknowledged transfers
    pending_t *unknown;
    size_t unknown_count, unknown_cap;
    pending_t sample[RLB_SAMPLE_MAX];
    uint64_t sample_seen;
    //  fsync probe
    double probe_p50_ms, probe_p99_ms;
    int probe_done;
    //  spawned shard
    pid_t shard_pid;
    char spawn_dir[PATH_MAX];
} bench_t;

static volatile sig_atomic_t s_interrupted = 0;
static volatile pid_t s_spawned_pid = 0;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_interrupted = 1;
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

static FILE *
s_out (const bench_t *b)
{
    return b->o.json ? stderr : stdout;
}

//  Ids ---------------------------------------------------------------------
static rl_id_t
s_account_id (const bench_t *b, uint64_t index)
{
    return (rl_id_t){.lo = index + 1, .hi = b->ns};
}

static rl_id_t
s_transfer_id (const bench_t *b, uint64_t seq)
{
    return (rl_id_t){.lo = seq, .hi = b->ns ^ 0x7472616e73666572ull}; //  "transfer"
}

static int
s_shard_of_id (const bench_t *b, rl_id_t id)
{
    if (!b->ring) {
        return -1;
    }
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    return ring_lookup_id (b->ring, bytes);
}

//  Options -----------------------------------------------------------------
static void
s_usage (void)
{
    fprintf (
        stderr,
        "usage: rlbench (--connect EP[,EP...] | --spawn-shard PATH) [options]\n"
        "  --connections N      DEALER sockets, requests spread round robin (1)\n"
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
        "  --hot-credit P       P%% of transfers credit one merchant (customer 0) from\n"
        "                       accounts on other shards; the merchant's credits may not\n"
        "                       exceed its debits (a limit checked on every reservation)\n"
        "  --history auto|on|off  check every account's history sums (auto: <= %d accounts)\n"
        "  --probe-dir DIR --probe-writes N   fdatasync latency of 4 KiB writes (/var/tmp, %d)\n"
        "  --spawn-shard PATH [--data DIR] [--durability sync|nosync] [--keep]\n",
        RLB_OPEN_WINDOW_DEFAULT, RL_BATCH_RECORDS_MAX, RLB_HISTORY_AUTO_ACCOUNTS_MAX,
        RLB_PROBE_WRITES_DEFAULT);
}

static int
s_parse_endpoints (options_t *o, const char *arg)
{
    char *list = strdup (arg);
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
    } else if (o->timeout_ms < 1) {
        why = "--timeout-ms must be >= 1";
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
        O_PROBE_DIR,
        O_PROBE_N,
        O_SPAWN,
        O_DATA,
        O_DURABILITY,
        O_KEEP,
        O_QUIET,
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
        {"history", required_argument, NULL, O_HISTORY},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"probe-dir", required_argument, NULL, O_PROBE_DIR},
        {"probe-writes", required_argument, NULL, O_PROBE_N},
        {"spawn-shard", required_argument, NULL, O_SPAWN},
        {"data", required_argument, NULL, O_DATA},
        {"durability", required_argument, NULL, O_DURABILITY},
        {"keep", no_argument, NULL, O_KEEP},
        {"quiet", no_argument, NULL, O_QUIET},
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
                     .durability = "sync"};
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
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
            case O_HISTORY:
                o->history = strcmp (optarg, "on") == 0    ? HISTORY_ON
                             : strcmp (optarg, "off") == 0 ? HISTORY_OFF
                                                           : HISTORY_AUTO;
                break;
            case O_TIMEOUT:
                o->timeout_ms = atoi (optarg);
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
    uint8_t block[RLB_PROBE_BLOCK_BYTES];
    memset (block, 0x5a, sizeof (block));
    int done = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = s_now_ns ();
        if (pwrite (fd, block, sizeof (block), (off_t) i * RLB_PROBE_BLOCK_BYTES)
                != (ssize_t) sizeof (block)
            || fdatasync (fd) != 0) {
            break;
        }
        ns[done++] = s_now_ns () - t0;
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
    int port = bench_free_port ();
    if (port <= 0) {
        return -1;
    }
    char endpoint[64], data[PATH_MAX + 8], log[PATH_MAX + 16];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port);
    snprintf (data, sizeof (data), "%s/s1", b->spawn_dir);
    snprintf (log, sizeof (log), "%s/s1.log", b->spawn_dir);
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (!freopen (log, "a", stderr) || !freopen ("/dev/null", "w", stdout)) {
            _exit (127);
        }
        execl (b->o.spawn_shard, b->o.spawn_shard, "--name", "s1", "--bind", endpoint, "--data",
               data, "--durability", b->o.durability, (char *) NULL);
        _exit (127);
    }
    b->shard_pid = pid;
    s_spawned_pid = pid;
    snprintf (b->o.endpoints[0], RL_ENDPOINT_SIZE_MAX, "%s", endpoint);
    b->o.endpoint_count = 1;
    rl_client_t *client = rl_client_new (endpoint);
    uint64_t deadline = s_now_ns () + RLB_READY_TIMEOUT_MS * 1000000ull;
    int rc = -1;
    while (client && s_now_ns () < deadline && !s_interrupted) {
        if (waitpid (pid, NULL, WNOHANG) == pid) {
            b->shard_pid = 0, s_spawned_pid = 0;
            break;
        }
        rl_status_rec_t status;
        if (rl_client_status (client, &status, 200) == 0) {
            rc = 0;
            break;
        }
    }
    rl_client_destroy (&client);
    if (rc != 0) {
        fprintf (stderr, "rlbench: the spawned shard did not start (log: %s)\n", log);
    }
    return rc;
}

static void
s_stop_shard (bench_t *b)
{
    if (b->shard_pid > 0) {
        kill (b->shard_pid, SIGTERM);
        uint64_t deadline = s_now_ns () + 10000000000ull;
        while (waitpid (b->shard_pid, NULL, WNOHANG) == 0) {
            if (s_now_ns () > deadline) {
                kill (b->shard_pid, SIGKILL);
                waitpid (b->shard_pid, NULL, 0);
                break;
            }
            s_sleep_ns (10000000);
        }
        b->shard_pid = 0;
        s_spawned_pid = 0;
    }
    if (b->spawn_dir[0] && !b->o.keep) {
        char cmd[PATH_MAX + 16];
        snprintf (cmd, sizeof (cmd), "rm -rf '%s'", b->spawn_dir);
        if (system (cmd) != 0) {
            fprintf (stderr, "rlbench: could not remove %s\n", b->spawn_dir);
        }
    } else if (b->spawn_dir[0]) {
        fprintf (stderr, "rlbench: kept %s\n", b->spawn_dir);
    }
}

//  The ring and the shards' status ------------------------------------------
static void
s_fetch_ring (bench_t *b)
{
    rl_client_t *client = rl_client_new (b->o.endpoints[0]);
    uint8_t *blob = NULL;
    size_t size = 0;
    if (client && rl_client_get_ring (client, &blob, &size, RLB_ADMIN_TIMEOUT_MS) == 0) {
        char err[256];
        b->ring = ring_decode (blob, size, err, sizeof (err));
        if (!b->ring) {
            fprintf (stderr, "rlbench: get_ring: the ring does not decode: %s\n", err);
        }
    } else {
        fprintf (stderr, "rlbench: get_ring failed: no ring, cross-shard fraction unknown\n");
    }
    free (blob);
    rl_client_destroy (&client);
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

//  Reads every shard's status into before or after; returns the number
//  that answered.
static size_t
s_read_status (bench_t *b, bool after)
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

static const char *
s_durability_name (uint32_t d)
{
    return d == 0 ? "unknown (not a shard)" : rl_durability_name (d);
}

//  One summary of all shards' modes: the common one, or "mixed".
static const char *
s_durability_summary (const bench_t *b)
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
    return s_durability_name (d);
}

//  Accounts ------------------------------------------------------------------
//  Customers are indexes 0..accounts-1; with --limits, one operator per
//  shard follows (an id that the ring maps onto that shard), so that every
//  customer is funded by a same-shard transfer.
static int
s_plan_accounts (bench_t *b)
{
    uint64_t n = b->o.accounts;
    size_t operators = b->o.limits ? (b->shard_count ? b->shard_count : 1) : 0;
    b->account_total = n + operators;
    b->model_debits = calloc (b->account_total, sizeof (uint64_t));
    b->model_credits = calloc (b->account_total, sizeof (uint64_t));
    b->account_shard = calloc (b->account_total + 1, sizeof (int));
    if (!b->model_debits || !b->model_credits || !b->account_shard) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        b->account_shard[i] = s_shard_of_id (b, s_account_id (b, i));
    }
    return 0;
}

static rl_id_t s_operator_ids[RLB_SHARDS_MAX];

//  The operator of shard k: the first id (ns, accounts + 1 + j) whose shard
//  is k. A bounded search: with a balanced ring, a few tries per shard.
static int
s_find_operators (bench_t *b)
{
    size_t operators = b->account_total - b->o.accounts;
    size_t found = 0;
    bool have[RLB_SHARDS_MAX] = {false};
    for (uint64_t j = 0; j < 1000000 && found < operators; j++) {
        rl_id_t id = s_account_id (b, b->o.accounts + j);
        int k = b->ring ? s_shard_of_id (b, id) : 0;
        if (k >= 0 && (size_t) k < operators && !have[k]) {
            have[k] = true;
            s_operator_ids[k] = id;
            b->account_shard[b->o.accounts + (size_t) k] = k;
            found++;
        }
    }
    return found == operators ? 0 : -1;
}

static rl_id_t
s_id_of_index (const bench_t *b, uint64_t index)
{
    if (index < b->o.accounts) {
        return s_account_id (b, index);
    }
    return s_operator_ids[index - b->o.accounts];
}

static int
s_create_accounts (bench_t *b, rl_client_t *client)
{
    static rl_account_t accounts[RL_BATCH_RECORDS_MAX];
    static rl_result_rec_t results[RL_BATCH_RECORDS_MAX];
    for (uint64_t first = 0; first < b->account_total; first += RL_BATCH_RECORDS_MAX) {
        size_t n = 0;
        for (uint64_t i = first; i < b->account_total && n < RL_BATCH_RECORDS_MAX; i++, n++) {
            bool customer = i < b->o.accounts;
            accounts[n] = (rl_account_t){
                .id = s_id_of_index (b, i),
                .ledger = b->o.ledger,
                .code = customer ? 1 : 2,
                .flags = (uint16_t) (customer && i == 0 && b->o.hot_credit > 0
                                         ? RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS
                                     : customer && b->o.limits
                                         ? RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS
                                         : 0)};
        }
        int rc = rl_client_create_accounts (client, accounts, n, results, RLB_ADMIN_TIMEOUT_MS);
        if (rc != 0) {
            fprintf (stderr, "rlbench: create_accounts: %s\n",
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
                fprintf (stderr, "rlbench: create_accounts: account %" PRIu64 ": %s\n", first + i,
                         rl_result_name (results[i].result));
                return -1;
            }
        }
    }
    return 0;
}

//  --limits: each customer gets RLB_FUND_AMOUNT from its shard's operator.
static int
s_fund_accounts (bench_t *b, rl_client_t *client)
{
    static rl_transfer_t transfers[RL_BATCH_RECORDS_MAX];
    static rl_result_rec_t results[RL_BATCH_RECORDS_MAX];
    for (uint64_t first = 0; first < b->o.accounts; first += RL_BATCH_RECORDS_MAX) {
        size_t n = 0;
        for (uint64_t i = first; i < b->o.accounts && n < RL_BATCH_RECORDS_MAX; i++, n++) {
            int k = b->account_shard[i] < 0 ? 0 : b->account_shard[i];
            transfers[n] = (rl_transfer_t){.id = s_transfer_id (b, b->next_seq++),
                                           .debit_account_id = s_operator_ids[k],
                                           .credit_account_id = s_account_id (b, i),
                                           .amount = RLB_FUND_AMOUNT,
                                           .ledger = b->o.ledger,
                                           .code = 2};
        }
        int rc = rl_client_create_transfers (client, transfers, n, results, RLB_ADMIN_TIMEOUT_MS);
        if (rc != 0) {
            fprintf (stderr, "rlbench: funding: %s\n",
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t acct = first + i;
            int k = b->account_shard[acct] < 0 ? 0 : b->account_shard[acct];
            if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
                fprintf (stderr, "rlbench: funding account %" PRIu64 ": %s\n", acct,
                         rl_result_name (results[i].result));
                return -1;
            }
            b->model_debits[b->o.accounts + (size_t) k] += RLB_FUND_AMOUNT;
            b->model_credits[acct] += RLB_FUND_AMOUNT;
            b->ok_total++;
        }
    }
    return 0;
}

//  --hot-credit: the merchant (customer 0) may not be credited beyond its
//  debits, so it first pays customer 1 a large amount: its headroom.
#define RLB_MERCHANT_HEADROOM (1ull << 60)

static int
s_merchant_setup (bench_t *b, rl_client_t *client)
{
    rl_transfer_t t = {.id = s_transfer_id (b, b->next_seq++),
                       .debit_account_id = s_account_id (b, 0),
                       .credit_account_id = s_account_id (b, 1),
                       .amount = RLB_MERCHANT_HEADROOM,
                       .ledger = b->o.ledger,
                       .code = 2};
    rl_result_rec_t r;
    int rc = rl_client_create_transfers (client, &t, 1, &r, RLB_ADMIN_TIMEOUT_MS);
    if (rc != 0 || (r.result != RL_OK && r.result != RL_EXISTS)) {
        fprintf (stderr, "rlbench: merchant set-up: %s\n",
                 rc ? rl_client_strerror (rc) : rl_result_name (r.result));
        return -1;
    }
    b->model_debits[0] += RLB_MERCHANT_HEADROOM;
    b->model_credits[1] += RLB_MERCHANT_HEADROOM;
    b->ok_total++;
    b->setup_ok++;
    return 0;
}

//  Workload: which accounts a transfer moves money between -------------------
static void
s_zipf_init (bench_t *b)
{
    double n = (double) b->o.accounts, theta = b->o.theta, zetan = 0;
    for (uint64_t i = 1; i <= b->o.accounts; i++) {
        zetan += 1.0 / pow ((double) i, theta);
    }
    double zeta2 = 1.0 + 1.0 / pow (2.0, theta);
    b->zipf_zetan = zetan;
    b->zipf_alpha = 1.0 / (1.0 - theta);
    b->zipf_eta = (1.0 - pow (2.0 / n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
    b->zipf_half_pow = 1.0 + pow (0.5, theta);
}

static uint32_t
s_pick (bench_t *b)
{
    uint64_t n = b->o.accounts;
    if (b->o.hot_percent > 0 && s_rand_unit () * 100.0 < b->o.hot_percent) {
        return (uint32_t) s_rand_below (b->o.hot_accounts);
    }
    if (b->o.workload == WORKLOAD_ZIPF) {
        double u = s_rand_unit (), uz = u * b->zipf_zetan;
        if (uz < 1.0) {
            return 0;
        }
        if (uz < b->zipf_half_pow) {
            return 1;
        }
        uint64_t r = (uint64_t) ((double) n
                                 * pow (b->zipf_eta * u - b->zipf_eta + 1.0, b->zipf_alpha));
        return (uint32_t) (r < n ? r : n - 1);
    }
    return (uint32_t) s_rand_below (n);
}

static int
s_build_buckets (bench_t *b)
{
    if (!b->ring || b->shard_count == 0) {
        return 0;
    }
    b->bucket = calloc (b->shard_count, sizeof (uint32_t *));
    b->bucket_size = calloc (b->shard_count, sizeof (uint64_t));
    if (!b->bucket || !b->bucket_size) {
        return -1;
    }
    for (size_t k = 0; k < b->shard_count; k++) {
        b->bucket[k] = malloc (b->o.accounts * sizeof (uint32_t));
        if (!b->bucket[k]) {
            return -1;
        }
    }
    for (uint64_t i = 0; i < b->o.accounts; i++) {
        int k = b->account_shard[i];
        if (k >= 0 && (size_t) k < b->shard_count) {
            b->bucket[k][b->bucket_size[k]++] = (uint32_t) i;
        }
    }
    return 0;
}

//  A credit account for debit account d: drawn from the workload, and on
//  another shard with probability --cross-fraction (when given). After
//  RLB_PICK_ATTEMPTS_MAX draws of the wrong kind, a uniform draw among the
//  accounts of the wanted kind.
static uint32_t
s_pick_credit (bench_t *b, uint32_t d)
{
    bool constrained = b->o.cross_fraction >= 0 && b->bucket;
    bool want_cross = constrained && s_rand_unit () < b->o.cross_fraction;
    for (int attempt = 0; attempt < RLB_PICK_ATTEMPTS_MAX; attempt++) {
        uint32_t c = s_pick (b);
        if (c == d) {
            continue;
        }
        if (!constrained || (b->account_shard[c] != b->account_shard[d]) == want_cross) {
            return c;
        }
    }
    int kd = b->account_shard[d];
    if (want_cross) {
        size_t k = (size_t) s_rand_below (b->shard_count - 1);
        k += k >= (size_t) kd;
        if (b->bucket_size[k] > 0) {
            return b->bucket[k][s_rand_below (b->bucket_size[k])];
        }
    } else if (b->bucket_size[kd] > 1) {
        for (int attempt = 0; attempt < RLB_PICK_ATTEMPTS_MAX; attempt++) {
            uint32_t c = b->bucket[kd][s_rand_below (b->bucket_size[kd])];
            if (c != d) {
                return c;
            }
        }
    }
    return (uint32_t) ((d + 1) % b->o.accounts);
}

//  Connections ---------------------------------------------------------------
static int
s_connect (bench_t *b)
{
    for (int i = 0; i < b->o.connections; i++) {
        conn_t *c = &b->conns[i];
        c->sock = zsock_new (ZMQ_DEALER);
        if (!c->sock) {
            return -1;
        }
        zsock_set_linger (c->sock, 0);
        zsock_set_sndhwm (c->sock, RLB_WINDOW_MAX * 2);
        zsock_set_rcvhwm (c->sock, RLB_WINDOW_MAX * 2);
        if (zsock_connect (c->sock, "%s", b->o.endpoints[(size_t) i % b->o.endpoint_count]) != 0) {
            fprintf (stderr, "rlbench: cannot connect to %s\n",
                     b->o.endpoints[(size_t) i % b->o.endpoint_count]);
            return -1;
        }
        c->handle = zsock_resolve (c->sock);
        c->slots = calloc ((size_t) b->window, sizeof (slot_t));
        if (!c->slots) {
            return -1;
        }
        for (int s = 0; s < b->window; s++) {
            c->slots[s].recs = malloc (b->o.batch * sizeof (rec_t));
            if (!c->slots[s].recs) {
                return -1;
            }
        }
        c->free_slots = b->window;
    }
    return 0;
}

static void
s_disconnect (bench_t *b)
{
    for (int i = 0; i < b->o.connections; i++) {
        conn_t *c = &b->conns[i];
        if (c->slots) {
            for (int s = 0; s < b->window; s++) {
                free (c->slots[s].recs);
            }
            free (c->slots);
            c->slots = NULL;
        }
        zsock_destroy (&c->sock);
    }
}

static void
s_add_unknown (bench_t *b, uint64_t seq, rec_t rec)
{
    if (b->unknown_count == b->unknown_cap) {
        size_t cap = b->unknown_cap ? b->unknown_cap * 2 : 1024;
        pending_t *grown = realloc (b->unknown, cap * sizeof (pending_t));
        assert (grown);
        b->unknown = grown, b->unknown_cap = cap;
    }
    b->unknown[b->unknown_count++] = (pending_t){.seq = seq, .rec = rec};
}

static void
s_apply_model (bench_t *b, uint64_t seq, rec_t rec)
{
    b->model_debits[rec.debit] += rec.amount;
    b->model_credits[rec.credit] += rec.amount;
    b->ok_total++;
    //  Reservoir sample of acknowledged transfers, looked up at the end.
    b->sample_seen++;
    if (b->sample_seen <= RLB_SAMPLE_MAX) {
        b->sample[b->sample_seen - 1] = (pending_t){.seq = seq, .rec = rec};
    } else {
        uint64_t j = s_rand_below (b->sample_seen);
        if (j < RLB_SAMPLE_MAX) {
            b->sample[j] = (pending_t){.seq = seq, .rec = rec};
        }
    }
}

//  Builds and sends one request on a free slot of connection ci. Returns 0
//  when sent; the slot stays free otherwise.
static int
s_send (bench_t *b, int ci, uint64_t intended_ns, bool measured)
{
    conn_t *c = &b->conns[ci];
    int si = 0;
    while (c->slots[si].busy) {
        si++;
    }
    assert (si < b->window);
    slot_t *slot = &c->slots[si];
    bool lookup = b->o.lookup_percent > 0 && s_rand_unit () * 100.0 < b->o.lookup_percent;
    uint32_t n = b->o.batch;
    size_t record_size = lookup ? RL_ID_SIZE : RL_TRANSFER_SIZE;
    zframe_t *frame = zframe_new (NULL, RL_HEADER_SIZE + n * record_size);
    uint8_t *out = zframe_data (frame);
    uint64_t request_id = (++b->request_gen << 20) | ((uint64_t) ci << 12) | (uint64_t) si;
    rl_header_t h = {.magic = RL_MAGIC,
                     .version = RL_VERSION,
                     .operation = lookup ? RL_OP_LOOKUP_ACCOUNTS : RL_OP_CREATE_TRANSFERS,
                     .request_id = request_id,
                     .record_count = n};
    codec_encode_header (&h, out);
    out += RL_HEADER_SIZE;
    uint64_t first_seq = b->next_seq;
    uint64_t cross = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (lookup) {
            codec_encode_id (s_account_id (b, s_pick (b)), out + (size_t) i * RL_ID_SIZE);
            continue;
        }
        uint32_t d = s_pick (b);
        uint32_t cr = s_pick_credit (b, d);
        if (b->o.hot_credit > 0 && s_rand_unit () * 100.0 < b->o.hot_credit) {
            //  The merchant is credited, from an account on another shard.
            cr = 0;
            int home = b->account_shard[0];
            for (int attempt = 0; attempt < RLB_PICK_ATTEMPTS_MAX; attempt++) {
                if (d != 0 && (!b->bucket || b->account_shard[d] != home)) {
                    break;
                }
                d = (uint32_t) s_rand_below (b->o.accounts);
            }
            if (d == 0) {
                d = 1;
            }
        }
        rec_t rec = {
            .debit = d, .credit = cr, .amount = (uint32_t) (1 + s_rand_below (RLB_AMOUNT_MAX))};
        slot->recs[i] = rec;
        cross += b->account_shard[d] != b->account_shard[cr];
        rl_transfer_t t = {.id = s_transfer_id (b, b->next_seq++),
                           .debit_account_id = s_account_id (b, d),
                           .credit_account_id = s_account_id (b, cr),
                           .amount = rec.amount,
                           .ledger = b->o.ledger,
                           .code = 1};
        codec_encode_transfer (&t, out + (size_t) i * RL_TRANSFER_SIZE);
    }
    if (zframe_send (&frame, c->sock, ZFRAME_DONTWAIT) != 0) {
        zframe_destroy (&frame);
        if (!lookup) {
            //  Never sent: the ids were not used on the wire; give them up.
            b->next_seq = first_seq;
        }
        return -1;
    }
    *slot = (slot_t){.busy = true,
                     .measured = measured,
                     .op = h.operation,
                     .count = n,
                     .request_id = request_id,
                     .first_seq = first_seq,
                     .intended_ns = intended_ns,
                     .recs = slot->recs};
    c->free_slots--;
    if (measured) {
        if (lookup) {
            b->lookup_requests_measured++;
        } else {
            b->create_requests_measured++;
            b->sent_transfers_measured += n;
            b->cross_sent_measured += cross;
        }
    }
    return 0;
}

//  The reply of a create_transfers request: results into the model.
static void
s_on_create_reply (bench_t *b, slot_t *slot, const rl_header_t *h, const uint8_t *body)
{
    if (h->status != RL_STATUS_OK) {
        if (slot->measured && h->status < 32) {
            b->statuses[h->status]++;
        }
        b->tick_errors += slot->count;
        for (uint32_t i = 0; i < slot->count; i++) {
            //  storage_error: the outcome is unknown. Every other status: nothing applied.
            if (h->status == RL_STATUS_STORAGE_ERROR) {
                s_add_unknown (b, slot->first_seq + i, slot->recs[i]);
            }
        }
        return;
    }
    for (uint32_t i = 0; i < slot->count; i++) {
        rl_result_rec_t r;
        codec_decode_result (body + (size_t) i * RL_RESULT_SIZE, &r);
        uint32_t idx = r.index < slot->count ? r.index : i;
        if (slot->measured) {
            if (r.result < 256) {
                b->results[r.result]++;
            } else {
                b->results_other++;
            }
        }
        if (r.result == RL_OK || r.result == RL_EXISTS) {
            s_apply_model (b, slot->first_seq + idx, slot->recs[idx]);
            b->tick_ok++;
            b->ok_measured += slot->measured;
        } else {
            b->tick_errors++;
            const char *name = rl_result_name (r.result);
            bool known = name && strcmp (name, "unknown") != 0;
            if (r.result == RL_OUTCOME_UNKNOWN || r.result == RL_STORAGE_ERROR
                || r.result == RL_IN_PROGRESS || r.result == RL_IN_DOUBT || !known) {
                s_add_unknown (b, slot->first_seq + idx, slot->recs[idx]);
            }
        }
    }
}

static void
s_on_reply (bench_t *b, zframe_t *frame, uint64_t now)
{
    rl_header_t h;
    if (codec_check_reply (zframe_data (frame), zframe_size (frame), &h) != RL_STATUS_OK) {
        b->bad_replies++;
        return;
    }
    uint64_t ci = (h.request_id >> 12) & 0xff, si = h.request_id & 0xfff;
    if (ci >= (uint64_t) b->o.connections || si >= (uint64_t) b->window) {
        b->late_replies++;
        return;
    }
    conn_t *c = &b->conns[ci];
    slot_t *slot = &c->slots[si];
    if (!slot->busy || slot->request_id != h.request_id) {
        b->late_replies++;
        return;
    }
    bool size_ok = h.status != RL_STATUS_OK || h.record_count == slot->count;
    if (!size_ok) {
        b->bad_replies++; //  the slot stays busy and times out: its outcome is unknown
        return;
    }
    const uint8_t *body = zframe_data (frame) + RL_HEADER_SIZE;
    if (slot->op == RL_OP_CREATE_TRANSFERS) {
        s_on_create_reply (b, slot, &h, body);
    } else if (h.status != RL_STATUS_OK) {
        b->tick_errors++;
        if (slot->measured && h.status < 32) {
            b->statuses[h.status]++;
        }
    }
    if (slot->measured) {
        uint64_t latency = now > slot->intended_ns ? now - slot->intended_ns : 0;
        s_hist_record (slot->op == RL_OP_CREATE_TRANSFERS ? &b->latency : &b->lookup_latency,
                       latency);
        b->last_reply_ns = now;
    }
    b->tick_requests++;
    slot->busy = false;
    c->free_slots++;
}

//  Requests with no reply after --timeout-ms: their transfers are unknown.
static void
s_expire (bench_t *b, uint64_t now)
{
    uint64_t timeout_ns = (uint64_t) b->o.timeout_ms * 1000000ull;
    for (int ci = 0; ci < b->o.connections; ci++) {
        conn_t *c = &b->conns[ci];
        for (int si = 0; si < b->window; si++) {
            slot_t *slot = &c->slots[si];
            if (slot->busy && now - slot->intended_ns > timeout_ns) {
                if (slot->op == RL_OP_CREATE_TRANSFERS) {
                    for (uint32_t i = 0; i < slot->count; i++) {
                        s_add_unknown (b, slot->first_seq + i, slot->recs[i]);
                    }
                }
                b->timeouts++;
                b->tick_errors += slot->count;
                slot->busy = false;
                c->free_slots++;
            }
        }
    }
}

static int
s_inflight (const bench_t *b)
{
    int n = 0;
    for (int ci = 0; ci < b->o.connections; ci++) {
        n += b->window - b->conns[ci].free_slots;
    }
    return n;
}

//  Receives every reply that is ready; waits up to wait_ns for the first.
static void
s_poll (bench_t *b, uint64_t wait_ns)
{
    zmq_pollitem_t items[RLB_CONNECTIONS_MAX];
    for (int i = 0; i < b->o.connections; i++) {
        items[i] = (zmq_pollitem_t){.socket = b->conns[i].handle, .events = ZMQ_POLLIN};
    }
    long timeout_ms = 0;
    if (wait_ns >= RLB_OPEN_SPIN_NS) {
        timeout_ms = (long) (wait_ns / 1000000ull) - 1;
    }
    int rc = zmq_poll (items, b->o.connections, timeout_ms);
    if (rc == 0 && wait_ns > 0 && wait_ns < RLB_OPEN_SPIN_NS) {
        s_sleep_ns (wait_ns < RLB_OPEN_NAP_NS ? wait_ns : RLB_OPEN_NAP_NS);
        rc = zmq_poll (items, b->o.connections, 0);
    }
    if (rc <= 0) {
        return;
    }
    for (int i = 0; i < b->o.connections; i++) {
        if (!(items[i].revents & ZMQ_POLLIN)) {
            continue;
        }
        //  Bounded: at most one window of replies per socket per turn.
        for (int k = 0; k < b->window; k++) {
            zframe_t *frame = zframe_recv_nowait (b->conns[i].sock);
            if (!frame) {
                break;
            }
            s_on_reply (b, frame, s_now_ns ());
            zframe_destroy (&frame);
        }
    }
}

//  A free connection, round robin; -1 if every slot is busy.
static int
s_free_conn (bench_t *b)
{
    for (int k = 0; k < b->o.connections; k++) {
        int ci = (b->next_conn + k) % b->o.connections;
        if (b->conns[ci].free_slots > 0) {
            b->next_conn = (ci + 1) % b->o.connections;
            return ci;
        }
    }
    return -1;
}

static void
s_progress (bench_t *b, uint64_t now, uint64_t start)
{
    if (!b->o.quiet) {
        fprintf (s_out (b),
                 "rlbench: t=%5.1fs %10" PRIu64 " transfers/s ok %8" PRIu64 " requests/s %8" PRIu64
                 " errors %5d in flight%s\n",
                 (double) (now - start) / 1e9, b->tick_ok, b->tick_requests, b->tick_errors,
                 s_inflight (b), now < b->measure_start_ns ? " (warm-up)" : "");
        fflush (s_out (b));
    }
    b->tick_ok = b->tick_errors = b->tick_requests = 0;
}

//  The run ---------------------------------------------------------------------
static void
s_run (bench_t *b)
{
    uint64_t start = s_now_ns ();
    b->measure_start_ns = start + (uint64_t) (b->o.warmup_s * 1e9);
    uint64_t end = b->o.count ? UINT64_MAX
                              : b->measure_start_ns + (uint64_t) (b->o.duration_s * 1e9);
    uint64_t next_tick = start + 1000000000ull;
    //  Open loop: arrivals of fixed-size batches, Poisson at rate / batch per second.
    double mean_gap_ns = b->o.mode == MODE_OPEN ? 1e9 * b->o.batch / b->o.rate : 0;
    uint64_t next_arrival = start;
    uint64_t arrivals_measured = 0;
    while (!s_interrupted) {
        uint64_t now = s_now_ns ();
        bool counted_out = b->o.count && b->sent_transfers_measured >= b->o.count;
        if (now >= end || counted_out) {
            break;
        }
        if (b->o.mode == MODE_CLOSED) {
            for (int ci; (ci = s_free_conn (b)) >= 0;) {
                if (b->o.count && b->sent_transfers_measured >= b->o.count) {
                    break;
                }
                if (s_send (b, ci, s_now_ns (), now >= b->measure_start_ns) != 0) {
                    break;
                }
            }
        } else {
            while (next_arrival <= now) {
                bool measured = next_arrival >= b->measure_start_ns;
                int ci = s_free_conn (b);
                if (ci < 0 || s_send (b, ci, next_arrival, measured) != 0) {
                    break; //  every slot busy: the arrival waits, and its lag grows
                }
                if (measured) {
                    s_hist_record (&b->lag, now - next_arrival);
                    b->sent_requests++;
                }
                double u = s_rand_unit ();
                next_arrival += (uint64_t) (-log (1.0 - u) * mean_gap_ns) + 1;
            }
        }
        now = s_now_ns ();
        uint64_t wake = next_tick < end ? next_tick : end;
        if (b->o.mode == MODE_OPEN && next_arrival < wake) {
            wake = next_arrival;
        }
        if (b->o.mode == MODE_OPEN && s_free_conn (b) < 0) {
            wake = now + 100000000ull; //  nothing can be sent until a reply
        }
        s_poll (b, wake > now ? wake - now : 0);
        now = s_now_ns ();
        if (now >= next_tick) {
            s_expire (b, now);
            s_progress (b, now, start);
            next_tick += 1000000000ull;
        }
    }
    b->measure_end_ns = s_now_ns ();
    if (b->o.mode == MODE_OPEN) {
        //  Offered: every arrival due in the measured window, sent or not.
        arrivals_measured = b->sent_requests;
        uint64_t t = next_arrival;
        //  Arrivals still queued at the end: count them by the arrival process.
        while (t < b->measure_end_ns) {
            if (t >= b->measure_start_ns) {
                arrivals_measured++;
            }
            t += (uint64_t) (-log (1.0 - s_rand_unit ()) * mean_gap_ns) + 1;
        }
        b->offered_requests = arrivals_measured;
    }
    //  Drain: wait for every reply (bounded by the request timeout).
    while (s_inflight (b) > 0) {
        uint64_t now = s_now_ns ();
        s_expire (b, now);
        if (s_inflight (b) == 0) {
            break;
        }
        s_poll (b, 50000000ull);
    }
}

//  The check -----------------------------------------------------------------
//  The endpoint to ask about a transfer: its debit account's shard when the
//  ring is known and reachable, else the first endpoint.
static const char *
s_endpoint_of_account (const bench_t *b, uint32_t index)
{
    int k = b->account_shard[index];
    if (b->ring && k >= 0 && (size_t) k < b->shard_count && b->shards[k].reached) {
        return b->shards[k].endpoint;
    }
    return b->o.endpoints[0];
}

//  Looks up `count` transfers (all on one endpoint); found[i] is set when
//  the record exists with the fields we sent. Retries failed calls.
static int
s_lookup_transfers (bench_t *b, const char *endpoint, const pending_t *list, size_t count,
                    bool *found)
{
    static rl_id_t ids[RL_BATCH_RECORDS_MAX];
    static rl_transfer_t out[RL_BATCH_RECORDS_MAX];
    rl_client_t *client = rl_client_new (endpoint);
    if (!client) {
        return -1;
    }
    int rc = 0;
    for (size_t first = 0; first < count && rc == 0; first += RL_BATCH_RECORDS_MAX) {
        size_t n = count - first < RL_BATCH_RECORDS_MAX ? count - first : RL_BATCH_RECORDS_MAX;
        for (size_t i = 0; i < n; i++) {
            ids[i] = s_transfer_id (b, list[first + i].seq);
        }
        rc = -1;
        uint64_t backoff_ms = 10;
        for (int attempt = 0; attempt < RLB_SETTLE_ATTEMPTS_MAX && rc != 0; attempt++) {
            rc = rl_client_lookup_transfers (client, ids, n, out, RLB_ADMIN_TIMEOUT_MS);
            if (rc != 0) {
                s_sleep_ns (backoff_ms * 1000000ull);
                backoff_ms = backoff_ms * 2 < RLB_SETTLE_BACKOFF_MS_MAX ? backoff_ms * 2
                                                                        : RLB_SETTLE_BACKOFF_MS_MAX;
            }
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            const rec_t *r = &list[first + i].rec;
            found[first + i] = out[i].timestamp != 0;
            if (found[first + i]
                && (!rl_id_eq (out[i].debit_account_id, s_id_of_index (b, r->debit))
                    || !rl_id_eq (out[i].credit_account_id, s_id_of_index (b, r->credit))
                    || out[i].amount != r->amount)) {
                fprintf (stderr, "rlbench: CHECK: transfer %" PRIu64 " found with other fields\n",
                         list[first + i].seq);
                rc = -2;
            }
        }
    }
    rl_client_destroy (&client);
    return rc;
}

//  Looks up every transfer of `list`, grouped by the debit account's shard.
static int
s_lookup_grouped (bench_t *b, pending_t *list, size_t count, bool *found)
{
    //  Sort by endpoint: a stable partition per shard (count is bounded by
    //  the run; O(shards x count)).
    size_t groups = b->ring ? b->shard_count : 1;
    pending_t *tmp = malloc ((count ? count : 1) * sizeof (pending_t));
    bool *tmp_found = calloc (count ? count : 1, sizeof (bool));
    size_t *origin = malloc ((count ? count : 1) * sizeof (size_t));
    int rc = tmp && tmp_found && origin ? 0 : -1;
    for (size_t g = 0; g < groups && rc == 0; g++) {
        size_t n = 0;
        const char *endpoint = NULL;
        for (size_t i = 0; i < count; i++) {
            int k = b->account_shard[list[i].rec.debit];
            if (groups == 1 || k == (int) g || (k < 0 && g == 0)) {
                endpoint = s_endpoint_of_account (b, list[i].rec.debit);
                origin[n] = i;
                tmp[n++] = list[i];
            }
        }
        if (n == 0) {
            continue;
        }
        rc = s_lookup_transfers (b, endpoint, tmp, n, tmp_found);
        for (size_t i = 0; i < n && rc == 0; i++) {
            found[origin[i]] = tmp_found[i];
        }
    }
    free (tmp);
    free (tmp_found);
    free (origin);
    return rc;
}

static int
s_settle (bench_t *b)
{
    if (b->unknown_count == 0) {
        return 0;
    }
    bool *found = calloc (b->unknown_count, sizeof (bool));
    int rc = found ? s_lookup_grouped (b, b->unknown, b->unknown_count, found) : -1;
    for (size_t i = 0; i < b->unknown_count && rc == 0; i++) {
        if (found[i]) {
            s_apply_model (b, b->unknown[i].seq, b->unknown[i].rec);
            b->settled_applied++;
        } else {
            b->settled_absent++;
        }
    }
    free (found);
    if (rc != 0) {
        fprintf (stderr, "rlbench: CHECK: could not settle %zu unknown transfers\n",
                 b->unknown_count);
    }
    return rc;
}

//  Waits (bounded) until every shard reports no live attempt and its
//  request count has stopped moving.
static void
s_quiesce (bench_t *b)
{
    uint64_t deadline = s_now_ns () + RLB_QUIESCE_TIMEOUT_MS * 1000000ull;
    uint64_t last_requests = UINT64_MAX;
    while (s_now_ns () < deadline) {
        s_read_status (b, true);
        uint64_t live = 0, requests = 0;
        for (size_t i = 0; i < b->shard_count; i++) {
            live += b->shards[i].after.inflight + b->shards[i].after.in_doubt;
            requests += b->shards[i].after.requests;
        }
        //  Our own status requests add one per shard per round.
        if (live == 0 && requests == last_requests + b->shard_count) {
            return;
        }
        last_requests = requests;
        s_sleep_ns (100000000ull);
    }
    fprintf (stderr, "rlbench: shards still busy after %d ms; checking anyway\n",
             RLB_QUIESCE_TIMEOUT_MS);
}

//  Sums of one account's history (paged by timestamp).
static int
s_history_sums (bench_t *b, rl_client_t *client, uint64_t index, uint64_t *debits,
                uint64_t *credits)
{
    static rl_transfer_t out[RL_HISTORY_LIMIT_MAX];
    rl_id_t id = s_id_of_index (b, index);
    rl_filter_t f = {.account_id = id,
                     .limit = RL_HISTORY_LIMIT_MAX,
                     .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
    *debits = *credits = 0;
    for (int page = 0; page < 100000; page++) {
        size_t n = 0;
        if (rl_client_get_account_transfers (client, &f, out, &n, RLB_ADMIN_TIMEOUT_MS) != 0) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            *debits += rl_id_eq (out[i].debit_account_id, id) ? out[i].amount : 0;
            *credits += rl_id_eq (out[i].credit_account_id, id) ? out[i].amount : 0;
        }
        if (n < RL_HISTORY_LIMIT_MAX) {
            return 0;
        }
        f.timestamp_min = out[n - 1].timestamp + 1;
    }
    return -1;
}

static bool
s_check_accounts (bench_t *b, rl_client_t *client, uint64_t *ledger_debits,
                  uint64_t *ledger_credits)
{
    static rl_id_t ids[RL_BATCH_RECORDS_MAX];
    static rl_account_t out[RL_BATCH_RECORDS_MAX];
    bool ok = true;
    uint64_t mismatches = 0;
    bool history = b->o.history == HISTORY_ON
                   || (b->o.history == HISTORY_AUTO
                       && b->o.accounts <= RLB_HISTORY_AUTO_ACCOUNTS_MAX);
    for (uint64_t first = 0; first < b->account_total; first += RL_BATCH_RECORDS_MAX) {
        size_t n = 0;
        for (uint64_t i = first; i < b->account_total && n < RL_BATCH_RECORDS_MAX; i++) {
            ids[n++] = s_id_of_index (b, i);
        }
        int rc = rl_client_lookup_accounts (client, ids, n, out, RLB_ADMIN_TIMEOUT_MS);
        if (rc != 0) {
            fprintf (stderr, "rlbench: CHECK: lookup_accounts: %s\n",
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t index = first + i;
            const rl_account_t *a = &out[i];
            *ledger_debits += a->debits_posted;
            *ledger_credits += a->credits_posted;
            bool equal = a->timestamp != 0 && a->ledger == b->o.ledger
                         && a->debits_posted == b->model_debits[index]
                         && a->credits_posted == b->model_credits[index] && a->debits_pending == 0
                         && a->credits_pending == 0 && a->debits_reserved == 0
                         && a->credits_reserved == 0;
            if (!equal && mismatches++ < 10) {
                fprintf (stderr,
                         "rlbench: CHECK: account %" PRIu64 ": debits %" PRIu64 " credits %" PRIu64
                         " reserved %" PRIu64 "/%" PRIu64 ", model %" PRIu64 "/%" PRIu64 "%s\n",
                         index, a->debits_posted, a->credits_posted, a->debits_reserved,
                         a->credits_reserved, b->model_debits[index], b->model_credits[index],
                         a->timestamp ? "" : " (not found)");
            }
            ok = ok && equal;
            uint64_t hd = 0, hc = 0;
            if (history && equal) {
                if (s_history_sums (b, client, index, &hd, &hc) != 0 || hd != a->debits_posted
                    || hc != a->credits_posted) {
                    fprintf (stderr,
                             "rlbench: CHECK: account %" PRIu64 ": history sums %" PRIu64
                             "/%" PRIu64 " differ from its balances\n",
                             index, hd, hc);
                    ok = false;
                }
            }
        }
    }
    if (mismatches) {
        fprintf (stderr, "rlbench: CHECK: %" PRIu64 " accounts differ from the model\n",
                 mismatches);
    }
    return ok;
}

//  Returns true when every check passes; prints why otherwise.
static bool
s_check (bench_t *b)
{
    bool ok = true;
    s_quiesce (b);
    if (s_settle (b) != 0) {
        ok = false;
    }
    rl_client_t *client = rl_client_new (b->o.endpoints[0]);
    uint64_t debits = 0, credits = 0;
    if (!client || !s_check_accounts (b, client, &debits, &credits)) {
        ok = false;
    }
    rl_client_destroy (&client);
    if (debits != credits) {
        fprintf (stderr,
                 "rlbench: CHECK: ledger %u: sum(debits_posted) %" PRIu64
                 " != sum(credits_posted) %" PRIu64 "\n",
                 b->o.ledger, debits, credits);
        ok = false;
    }
    if (b->ok_total == 0) {
        fprintf (stderr, "rlbench: CHECK: no transfer succeeded: nothing was checked\n");
        ok = false;
    }
    //  The shards applied at least what they acknowledged to us.
    if (b->status_complete) {
        uint64_t applied = 0;
        for (size_t i = 0; i < b->shard_count; i++) {
            applied += b->shards[i].after.transfers - b->shards[i].before.transfers;
        }
        uint64_t ours = b->ok_total - b->setup_ok - (b->o.limits ? b->o.accounts : 0);
        if (applied < ours) {
            fprintf (stderr,
                     "rlbench: CHECK: the shards applied %" PRIu64
                     " transfers, fewer than the %" PRIu64 " acknowledged\n",
                     applied, ours);
            ok = false;
        }
    }
    //  A sample of acknowledged transfers is there, with its fields.
    size_t sampled = b->sample_seen < RLB_SAMPLE_MAX ? (size_t) b->sample_seen : RLB_SAMPLE_MAX;
    bool found[RLB_SAMPLE_MAX] = {false};
    if (sampled > 0) {
        if (s_lookup_grouped (b, b->sample, sampled, found) != 0) {
            ok = false;
        }
        for (size_t i = 0; i < sampled; i++) {
            if (!found[i]) {
                fprintf (stderr, "rlbench: CHECK: acknowledged transfer %" PRIu64 " not found\n",
                         b->sample[i].seq);
                ok = false;
                break;
            }
        }
    }
    return ok;
}

//  Report --------------------------------------------------------------------
static double
s_measured_s (const bench_t *b)
{
    uint64_t end = b->o.mode == MODE_CLOSED && b->last_reply_ns > b->measure_end_ns
                       ? b->last_reply_ns
                       : b->measure_end_ns;
    return end > b->measure_start_ns ? (double) (end - b->measure_start_ns) / 1e9 : 0;
}

static bool
s_valid (const bench_t *b)
{
    return b->o.mode != MODE_OPEN
           || (double) b->sent_requests >= RLB_INVALID_SENT_FRACTION * (double) b->offered_requests;
}

static double
s_cross_fraction (const bench_t *b)
{
    return b->sent_transfers_measured
               ? (double) b->cross_sent_measured / (double) b->sent_transfers_measured
               : 0;
}

static void
s_report_text (const bench_t *b, const char *check)
{
    FILE *out = stdout;
    double secs = s_measured_s (b);
    double tps = secs > 0 ? (double) b->ok_measured / secs : 0;
    double rps = secs > 0
                     ? (double) (b->create_requests_measured + b->lookup_requests_measured) / secs
                     : 0;
    fprintf (out, "\n== rlbench summary\n");
    fprintf (out,
             "mode           %s, batch %u, connections %d, window %d, accounts %" PRIu64
             " (%s%s), seed %" PRIu64 "\n",
             b->o.mode == MODE_CLOSED ? "closed loop" : "open loop", b->o.batch, b->o.connections,
             b->window, b->o.accounts, b->o.workload == WORKLOAD_ZIPF ? "zipf" : "uniform",
             b->o.limits ? ", limits" : "", b->o.seed);
    fprintf (out, "durability     %s:", s_durability_summary (b));
    for (size_t i = 0; i < b->shard_count; i++) {
        fprintf (out, " %s=%s", b->shards[i].name[0] ? b->shards[i].name : b->shards[i].endpoint,
                 b->shards[i].reached ? s_durability_name (b->shards[i].durability) : "?");
    }
    fprintf (out, "\n");
    if (b->probe_done) {
        fprintf (out,
                 "disk           4 KiB write + fdatasync: p50 %.3f ms, p99 %.3f ms (%d writes)\n",
                 b->probe_p50_ms, b->probe_p99_ms, b->probe_done);
    }
    fprintf (out,
             "throughput     %.0f transfers/s ok, %.0f requests/s (%.2f s measured after %.1f s "
             "warm-up)\n",
             tps, rps, secs, b->o.warmup_s);
    if (b->o.mode == MODE_OPEN) {
        double offered_tps = secs > 0 ? (double) b->offered_requests * b->o.batch / secs : 0;
        double sent_tps = secs > 0 ? (double) b->sent_requests * b->o.batch / secs : 0;
        fprintf (out,
                 "open loop      offered %.0f transfers/s (rate %.0f), sent %.0f/s (%.1f%%), "
                 "generator lag p99 %.3f ms, max %.3f ms%s\n",
                 offered_tps, b->o.rate, sent_tps,
                 b->offered_requests ? 100.0 * b->sent_requests / b->offered_requests : 0,
                 s_hist_ms (&b->lag, 0.99), (double) b->lag.max / 1e6,
                 s_valid (b) ? ""
                             : "  ** INVALID: fewer than 99% of the offered requests were sent **");
    }
    fprintf (out,
             "latency ms     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%" PRIu64
             " create requests%s)\n",
             s_hist_ms (&b->latency, 0.5), s_hist_ms (&b->latency, 0.9),
             s_hist_ms (&b->latency, 0.99), s_hist_ms (&b->latency, 0.999),
             (double) b->latency.max / 1e6, b->latency.total,
             b->o.mode == MODE_OPEN ? ", from the intended send time" : "");
    if (b->lookup_latency.total) {
        fprintf (out,
                 "lookup ms      p50 %.3f  p99 %.3f  max %.3f  (%" PRIu64 " lookup requests)\n",
                 s_hist_ms (&b->lookup_latency, 0.5), s_hist_ms (&b->lookup_latency, 0.99),
                 (double) b->lookup_latency.max / 1e6, b->lookup_latency.total);
    }
    fprintf (out, "results       ");
    for (int r = 0; r < 256; r++) {
        if (b->results[r]) {
            fprintf (out, " %s=%" PRIu64, rl_result_name ((uint32_t) r), b->results[r]);
        }
    }
    if (b->results_other) {
        fprintf (out, " (undefined codes)=%" PRIu64, b->results_other);
    }
    for (int s = 1; s < 32; s++) {
        if (b->statuses[s]) {
            fprintf (out, " status:%s=%" PRIu64, rl_status_name ((uint32_t) s), b->statuses[s]);
        }
    }
    fprintf (out, " timeouts=%" PRIu64 "\n", b->timeouts);
    if (b->ring) {
        fprintf (out, "cross-shard    %.4f of the transfers sent (%zu shard%s in the ring%s)\n",
                 s_cross_fraction (b), b->shard_count, b->shard_count == 1 ? "" : "s",
                 b->o.cross_fraction >= 0 ? "" : ", not steered");
    } else {
        fprintf (out, "cross-shard    unknown (no ring)\n");
    }
    fprintf (out,
             "check          %s (%" PRIu64
             " transfers acknowledged ok, %zu unknown settled: %" PRIu64 " applied, %" PRIu64
             " not)\n",
             check, b->ok_total, b->unknown_count, b->settled_applied, b->settled_absent);
}

static void
s_add_latency (cJSON *parent, const char *key, const hist_t *h)
{
    cJSON *latency = jsonkit_add_object (parent, key);
    jsonkit_add_fixed (latency, "p50", s_hist_ms (h, 0.5), 4);
    jsonkit_add_fixed (latency, "p90", s_hist_ms (h, 0.9), 4);
    jsonkit_add_fixed (latency, "p99", s_hist_ms (h, 0.99), 4);
    jsonkit_add_fixed (latency, "p999", s_hist_ms (h, 0.999), 4);
    jsonkit_add_fixed (latency, "max", (double) h->max / 1e6, 4);
    jsonkit_add_u64 (latency, "count", h->total);
}

//  The report as one JSON object on one line; 0, or -1 when out of memory.
static int
s_report_json (const bench_t *b, const char *check)
{
    double secs = s_measured_s (b);
    double tps = secs > 0 ? (double) b->ok_measured / secs : 0;
    double rps = secs > 0
                     ? (double) (b->create_requests_measured + b->lookup_requests_measured) / secs
                     : 0;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "mode", b->o.mode == MODE_CLOSED ? "closed" : "open");
    jsonkit_add_u64 (tree, "batch", b->o.batch);
    jsonkit_add_number (tree, "connections", b->o.connections);
    jsonkit_add_number (tree, "window", b->window);
    jsonkit_add_u64 (tree, "accounts", b->o.accounts);
    jsonkit_add_string (tree, "workload", b->o.workload == WORKLOAD_ZIPF ? "zipf" : "uniform");
    jsonkit_add_bool (tree, "limits", b->o.limits);
    jsonkit_add_u64 (tree, "seed", b->o.seed);
    jsonkit_add_string (tree, "durability", s_durability_summary (b));
    cJSON *shards = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < b->shard_count; i++) {
        cJSON *shard = jsonkit_add_object (shards, NULL);
        jsonkit_add_string (shard, "name", b->shards[i].name);
        jsonkit_add_string (shard, "endpoint", b->shards[i].endpoint);
        jsonkit_add_string (shard, "durability",
                            b->shards[i].reached ? s_durability_name (b->shards[i].durability)
                                                 : "?");
    }
    jsonkit_add_fixed (tree, "fsync_p50_ms", b->probe_p50_ms, 4);
    jsonkit_add_fixed (tree, "fsync_p99_ms", b->probe_p99_ms, 4);
    jsonkit_add_number (tree, "fsync_writes", b->probe_done);
    jsonkit_add_fixed (tree, "seconds", secs, 3);
    jsonkit_add_fixed (tree, "transfers_per_s", tps, 1);
    jsonkit_add_fixed (tree, "requests_per_s", rps, 1);
    s_add_latency (tree, "latency_ms", &b->latency);
    if (b->o.mode == MODE_OPEN) {
        jsonkit_add_fixed (tree, "rate", b->o.rate, 1);
        jsonkit_add_fixed (tree, "offered_per_s",
                           secs > 0 ? (double) b->offered_requests * b->o.batch / secs : 0, 1);
        jsonkit_add_fixed (tree, "sent_per_s",
                           secs > 0 ? (double) b->sent_requests * b->o.batch / secs : 0, 1);
        jsonkit_add_fixed (tree, "lag_ms_p99", s_hist_ms (&b->lag, 0.99), 4);
        jsonkit_add_fixed (tree, "lag_ms_max", (double) b->lag.max / 1e6, 4);
    }
    jsonkit_add_bool (tree, "valid", s_valid (b));
    cJSON *results = jsonkit_add_object (tree, "results");
    for (int r = 0; r < 256; r++) {
        if (b->results[r]) {
            jsonkit_add_u64 (results, rl_result_name ((uint32_t) r), b->results[r]);
        }
    }
    for (int st = 1; st < 32; st++) {
        if (b->statuses[st]) {
            char key[64];
            snprintf (key, sizeof key, "status:%s", rl_status_name ((uint32_t) st));
            jsonkit_add_u64 (results, key, b->statuses[st]);
        }
    }
    jsonkit_add_u64 (tree, "timeouts", b->timeouts);
    if (b->ring) {
        jsonkit_add_fixed (tree, "cross_fraction", s_cross_fraction (b), 4);
    } else {
        jsonkit_add_null (tree, "cross_fraction");
    }
    jsonkit_add_string (tree, "check", check);
    jsonkit_add_u64 (tree, "ok_total", b->ok_total);
    jsonkit_add_u64 (tree, "unknown", b->unknown_count);
    int rc = jsonkit_print (stdout, tree, false);
    cJSON_Delete (tree);
    if (rc) {
        fprintf (stderr, "rlbench: out of memory\n");
    }
    return rc;
}

//  main ------------------------------------------------------------------------
static int
s_setup (bench_t *b)
{
    s_fetch_ring (b);
    if (s_read_status (b, false) == b->shard_count && b->shard_count > 0) {
        b->status_complete = true;
    }
    if (b->o.cross_fraction >= 0 && (!b->ring || b->shard_count < 2)) {
        fprintf (stderr, "rlbench: --cross-fraction needs a ring of at least 2 shards (have %zu)\n",
                 b->ring ? b->shard_count : 0);
        return -1;
    }
    if (s_plan_accounts (b) != 0 || s_build_buckets (b) != 0) {
        fprintf (stderr, "rlbench: out of memory\n");
        return -1;
    }
    if (b->o.limits && s_find_operators (b) != 0) {
        fprintf (stderr, "rlbench: could not find an operator id for every shard\n");
        return -1;
    }
    if (b->o.workload == WORKLOAD_ZIPF) {
        s_zipf_init (b);
    }
    if (b->o.create_accounts) {
        rl_client_t *client = rl_client_new (b->o.endpoints[0]);
        int rc = client ? s_create_accounts (b, client) : -1;
        if (rc == 0 && b->o.hot_credit > 0) {
            rc = s_merchant_setup (b, client); //  before funding credits the merchant
        }
        if (rc == 0 && b->o.limits) {
            rc = s_fund_accounts (b, client);
        }
        rl_client_destroy (&client);
        if (rc != 0) {
            return -1;
        }
    }
    return s_connect (b);
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
        b->o.seed = s_now_ns () ^ ((uint64_t) getpid () << 32);
    }
    s_rng_seed (b->o.seed);
    uint64_t seed_copy = b->o.seed ^ 0x6e616d657370ull;
    b->ns = s_splitmix (&seed_copy) | 1;
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
        fprintf (s_out (b), "rlbench: seed %" PRIu64 " (replay with --seed %" PRIu64 ")\n",
                 b->o.seed, b->o.seed);
    }
    int rc = 0;
    if (b->o.spawn_shard && s_spawn_shard (b) != 0) {
        s_stop_shard (b);
        return 1;
    }
    s_probe_fsync (b, b->o.spawn_shard ? b->spawn_dir : b->o.probe_dir);
    if (s_setup (b) != 0) {
        rc = 1;
    } else {
        s_run (b);
        if (b->status_complete && s_read_status (b, true) != b->shard_count) {
            b->status_complete = false;
        }
        const char *check = "skipped (--no-check)";
        if (b->o.check) {
            bool passed = s_check (b);
            check = passed ? "passed" : "FAILED";
            rc = passed ? 0 : 1;
        }
        if (s_interrupted) {
            fprintf (stderr, "rlbench: interrupted\n");
        }
        if (b->o.json) {
            rc = s_report_json (b, check) ? 1 : rc;
        } else {
            s_report_text (b, check);
        }
    }
    s_disconnect (b);
    ring_destroy (&b->ring);
    s_stop_shard (b);
    return rc;
}
