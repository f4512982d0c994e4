/*  shard_bench.c: same-shard transfers into one shard, against the raw
    RocksDB ceiling, measured side by side in one run.

    For each batch size B:
      1. start a fresh shard process (durability as asked, sync by default)
         with a data directory on the real disk, create the accounts;
      2. drive it from this one client process: B transfers per request, a
         window of W requests in flight (closed loop), for S seconds; every
         request's latency is recorded from send to reply;
      3. read the shard's RocksDB statistics before and after, for keys,
         bytes and WAL bytes written per transfer, and syncs per transfer;
      4. the ceiling: this process opens its own RocksDB and writes
         WriteBatches of B random 16-byte keys with 128-byte values, WAL
         synced, for S seconds: one put per transfer and no protocol.
    Report: transfers/s, request latency p50/p99, the ceiling's puts/s and
    the ratio. Medians of --runs runs.

    Usage: shard_bench [--batches 1,100,8190] [--seconds 5] [--runs 3]
                       [--window 4] [--accounts 10000] [--data DIR]
                       [--durability sync|nosync] [--quick] [--json] [--insecure]
    The shard gets fresh CURVE keys for each run (docs/security.md), unless
    --insecure.
*/
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
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
#include <rocksdb/c.h>

#include "histogram.h"
#include "proc.h"
#include "spawn.h"
#include "jsonkit.h"
#include "rl_rand.h"
#include "client.h"
#include "codec.h"

#define BENCH_BATCHES_MAX      8
#define BENCH_RUNS_MAX         9
#define BENCH_READY_TIMEOUT_MS 20000
#define BENCH_STOP_TIMEOUT_MS  30000 //  the shard gets this long to exit on SIGTERM
#define BENCH_REPLY_TIMEOUT_MS 30000 //  --quick: 5000

typedef struct {
    size_t batches[BENCH_BATCHES_MAX];
    size_t batch_count;
    double seconds;
    int runs;
    int window;
    uint64_t accounts;
    char data[PATH_MAX];
    const char *durability;
    bool json;
    bool insecure; //  --insecure: plain TCP
    int reply_timeout_ms;
    char shard_bin[PATH_MAX];
} s_options_t;

typedef struct {
    double transfers_per_s;
    double p50_ms;
    double p99_ms;
    double ceiling_puts_per_s;
    double keys_per_transfer;
    double bytes_per_transfer;
    double wal_bytes_per_transfer;
    double syncs_per_transfer;
} s_result_t;

static uint64_t s_rng = 0x9E3779B97F4A7C15ull;

static uint64_t
s_rand (void)
{
    return rl_rand_next (&s_rng);
}

static double
s_now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  The shard under test ----------------------------------------------------------

static int
s_create_accounts (rl_client_t *client, uint64_t count, int timeout_ms)
{
    static rl_account_t accounts[RL_BATCH_RECORDS_MAX];
    static rl_result_rec_t results[RL_BATCH_RECORDS_MAX];
    for (uint64_t first = 1; first <= count; first += RL_BATCH_RECORDS_MAX) {
        size_t n = 0;
        for (uint64_t i = first; i <= count && n < RL_BATCH_RECORDS_MAX; i++, n++) {
            accounts[n] = (rl_account_t){.id = {i, 0}, .ledger = 1, .code = 1};
        }
        if (rl_client_create_accounts (client, accounts, n, results, timeout_ms)) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
                return -1;
            }
        }
    }
    return 0;
}

//  Sends one request of `batch` fresh transfers, encoded straight into its
//  frame. Returns like rl_client_send.
static int
s_request (rl_client_t *client, size_t batch, uint64_t accounts, uint64_t *next_id,
           uint64_t *request_id_p)
{
    uint8_t *body = NULL;
    int rc = rl_client_send_begin (client, batch * RL_TRANSFER_SIZE, &body);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < batch; i++) {
        uint64_t dr = 1 + s_rand () % accounts;
        uint64_t cr = 1 + s_rand () % accounts;
        if (cr == dr) {
            cr = dr % accounts + 1;
        }
        rl_transfer_t t = {.id = {(*next_id)++, 0xBE4C},
                           .debit_account_id = {dr, 0},
                           .credit_account_id = {cr, 0},
                           .amount = 1,
                           .ledger = 1,
                           .code = 1};
        codec_encode_transfer (&t, body + i * RL_TRANSFER_SIZE);
    }
    return rl_client_send_end (client, RL_OP_CREATE_TRANSFERS, (uint32_t) batch, request_id_p);
}

//  Closed loop with `window` requests in flight for `seconds`.
static int
s_drive (const s_options_t *o, const char *endpoint, size_t batch, s_result_t *r)
{
    rl_client_t *client = rl_client_new (endpoint);
    if (!client || rl_client_set_window (client, (size_t) o->window) != 0) {
        fprintf (stderr, "shard_bench: cannot connect to %s\n", endpoint);
        rl_client_destroy (&client);
        return -1;
    }
    rl_client_set_send_timeout (client, o->reply_timeout_ms);
    //  Send times by request id: the client's ids are consecutive, and far
    //  fewer than 2^16 are ever in flight.
    static double send_s[1u << 16];
    static hist_t latency; //  of every request, in ns
    memset (&latency, 0, sizeof (latency));
    uint64_t next_id = 1, ok = 0;
    double start = s_now_s (), end = start + o->seconds;
    int rc = 0;
    while (true) {
        while (rl_client_inflight (client) < (size_t) o->window && s_now_s () < end) {
            uint64_t request_id = 0;
            int sent = s_request (client, batch, o->accounts, &next_id, &request_id);
            if (sent != 0) {
                fprintf (stderr, "shard_bench: not sent: %s\n", rl_client_strerror (sent));
                rc = -1;
                break;
            }
            send_s[request_id % (1u << 16)] = s_now_s ();
        }
        if (rc != 0 || rl_client_inflight (client) == 0) {
            break;
        }
        rl_header_t h;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        int got = rl_client_recv_borrow (client, o->reply_timeout_ms, &h, &body, &body_size);
        if (got == RL_CLIENT_TIMEOUT) {
            fprintf (stderr, "shard_bench: no reply within %d ms (%zu in flight)\n",
                     o->reply_timeout_ms, rl_client_inflight (client));
            rc = -1;
            break;
        }
        if (got != 0 || h.record_count != batch) {
            fprintf (stderr, "shard_bench: a failed reply: %s\n", rl_client_strerror (got));
            rc = -1;
            break;
        }
        for (uint32_t i = 0; i < h.record_count; i++) {
            rl_result_rec_t res;
            codec_decode_result (body + i * RL_RESULT_SIZE, &res);
            ok += res.result == RL_OK;
        }
        double waited_s = s_now_s () - send_s[h.request_id % (1u << 16)];
        hist_record (&latency, waited_s > 0 ? (uint64_t) (waited_s * 1e9) : 0);
    }
    double elapsed = s_now_s () - start;
    rl_client_destroy (&client);
    r->transfers_per_s = (double) ok / elapsed;
    r->p50_ms = hist_ms (&latency, 0.50);
    r->p99_ms = hist_ms (&latency, 0.99);
    return rc;
}

static int
s_run_shard (const s_options_t *o, size_t batch, int run, s_result_t *r)
{
    char dir[PATH_MAX + 64];
    snprintf (dir, sizeof (dir), "%s/shard-b%zu-r%d", o->data, batch, run);
    char log[PATH_MAX + 128];
    snprintf (log, sizeof (log), "%s.log", dir);
    if (proc_remove_tree (dir) != 0) {
        return -1;
    }
    char keys[PATH_MAX + 128];
    snprintf (keys, sizeof (keys), "%s.keys", dir);
    zcert_t *cert = NULL;
    if (proc_remove_tree (keys) != 0 || (!o->insecure && spawn_keys_make (keys, "bench", &cert))) {
        return -1;
    }
    spawn_shard_t shard;
    const char *phase = "start";
    if (spawn_shard_start (&shard, o->shard_bin, "bench", dir, o->durability,
                           o->insecure ? NULL : keys, log, BENCH_READY_TIMEOUT_MS, NULL)
        != 0) {
        fprintf (stderr, "shard_bench: batch %zu: failed at %s (shard log: %s)\n", batch, phase,
                 log);
        rl_client_clear_curve ();
        zcert_destroy (&cert);
        return -1;
    }
    const char *endpoint = shard.endpoint;
    rl_client_t *client = rl_client_new (endpoint);
    int rc = -1;
    rl_status_rec_t before, after;
    if ((phase = "create accounts") && client
        && s_create_accounts (client, o->accounts, o->reply_timeout_ms) == 0 && (phase = "status")
        && rl_client_status (client, &before, o->reply_timeout_ms) == 0 && (phase = "transfers")
        && s_drive (o, endpoint, batch, r) == 0 && (phase = "status")
        && rl_client_status (client, &after, o->reply_timeout_ms) == 0) {
        double n = (double) (after.transfers - before.transfers);
        r->keys_per_transfer = (double) (after.store_keys_written - before.store_keys_written) / n;
        r->bytes_per_transfer = (double) (after.store_bytes_written - before.store_bytes_written)
                                / n;
        r->wal_bytes_per_transfer = (double) (after.wal_bytes - before.wal_bytes) / n;
        r->syncs_per_transfer = (double) (after.commits - before.commits) / n;
        rc = 0;
    } else {
        fprintf (stderr, "shard_bench: batch %zu: failed at %s (shard log: %s)\n", batch, phase,
                 log);
    }
    rl_client_destroy (&client);
    spawn_shard_stop (&shard, BENCH_STOP_TIMEOUT_MS);
    rl_client_clear_curve ();
    zcert_destroy (&cert);
    if (proc_remove_tree (dir) != 0 || proc_remove_tree (keys) != 0) {
        rc = -1;
    }
    return rc;
}

//  The ceiling: raw RocksDB, one random-key put per transfer ----------------------

static double
s_ceiling (const s_options_t *o, size_t batch, int run)
{
    char dir[PATH_MAX + 64];
    snprintf (dir, sizeof (dir), "%s/ceiling-b%zu-r%d", o->data, batch, run);
    rocksdb_options_t *options = rocksdb_options_create ();
    rocksdb_options_set_create_if_missing (options, 1);
    rocksdb_options_set_compression (options, rocksdb_no_compression);
    rocksdb_options_set_write_buffer_size (options, 64u << 20);
    char *err = NULL;
    rocksdb_t *db = rocksdb_open (options, dir, &err);
    if (err) {
        fprintf (stderr, "shard_bench: ceiling: %s\n", err);
        rocksdb_free (err);
        rocksdb_options_destroy (options);
        return 0;
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create ();
    rocksdb_writeoptions_set_sync (wo, strcmp (o->durability, "nosync") != 0);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create ();
    uint8_t key[16], value[128];
    memset (value, 0xab, sizeof (value));
    uint64_t puts = 0;
    double start = s_now_s (), end = start + o->seconds;
    while (s_now_s () < end) {
        for (size_t i = 0; i < batch; i++) {
            uint64_t a = s_rand (), b = s_rand ();
            memcpy (key, &a, 8);
            memcpy (key + 8, &b, 8);
            rocksdb_writebatch_put (wb, (const char *) key, sizeof (key), (const char *) value,
                                    sizeof (value));
        }
        rocksdb_write (db, wo, wb, &err);
        assert (!err);
        rocksdb_writebatch_clear (wb);
        puts += batch;
    }
    double rate = (double) puts / (s_now_s () - start);
    rocksdb_writebatch_destroy (wb);
    rocksdb_writeoptions_destroy (wo);
    rocksdb_close (db);
    rocksdb_options_destroy (options);
    if (proc_remove_tree (dir) != 0) {
        return 0;
    }
    return rate;
}

//  Options and report -----------------------------------------------------------

static int
s_parse (int argc, char **argv, s_options_t *o)
{
    static const struct option longs[] = {
        {"batches", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {"runs", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, 'w'},
        {"accounts", required_argument, NULL, 'a'},
        {"data", required_argument, NULL, 'd'},
        {"durability", required_argument, NULL, 'D'},
        {"quick", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, 'j'},
        {"shard-bin", required_argument, NULL, 'S'},
        {"insecure", no_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    *o = (s_options_t){.seconds = 5,
                       .runs = 3,
                       .window = 4,
                       .accounts = 10000,
                       .durability = "sync",
                       .reply_timeout_ms = BENCH_REPLY_TIMEOUT_MS};
    o->batches[0] = 1, o->batches[1] = 100, o->batches[2] = RL_BATCH_RECORDS_MAX;
    o->batch_count = 3;
    snprintf (o->data, sizeof (o->data), "%s", "/var/tmp/ringledger-bench");
    char self[PATH_MAX] = "";
    ssize_t len = readlink ("/proc/self/exe", self, sizeof (self) - 1);
    self[len > 0 ? len : 0] = '\0';
    snprintf (o->shard_bin, sizeof (o->shard_bin), "%s/../shard/shard", dirname (self));
    int c;
    while ((c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
            case 'b': {
                o->batch_count = 0;
                for (char *tok = strtok (optarg, ","); tok && o->batch_count < BENCH_BATCHES_MAX;
                     tok = strtok (NULL, ",")) {
                    long b = strtol (tok, NULL, 10);
                    if (b < 1 || b > RL_BATCH_RECORDS_MAX) {
                        fprintf (stderr, "shard_bench: batch %s not in 1..%d\n", tok,
                                 RL_BATCH_RECORDS_MAX);
                        return -1;
                    }
                    o->batches[o->batch_count++] = (size_t) b;
                }
                break;
            }
            case 's':
                o->seconds = atof (optarg);
                break;
            case 'r':
                o->runs = atoi (optarg);
                break;
            case 'w':
                o->window = atoi (optarg);
                break;
            case 'a':
                o->accounts = strtoull (optarg, NULL, 10);
                break;
            case 'd':
                snprintf (o->data, sizeof (o->data), "%s", optarg);
                break;
            case 'D':
                o->durability = strcmp (optarg, "nosync") == 0 ? "nosync" : "sync";
                break;
            case 'q':
                o->seconds = 0.5, o->runs = 1, o->accounts = 1000, o->reply_timeout_ms = 5000;
                break;
            case 'j':
                o->json = true;
                break;
            case 'S':
                snprintf (o->shard_bin, sizeof (o->shard_bin), "%s", optarg);
                break;
            case 'I':
                o->insecure = true;
                break;
            default:
                return -1;
        }
    }
    if (o->runs < 1 || o->runs > BENCH_RUNS_MAX || o->window < 1 || o->window > 1024
        || o->accounts < 2 || o->seconds <= 0) {
        fprintf (stderr, "shard_bench: runs 1..%d, window 1..1024, accounts >= 2\n",
                 BENCH_RUNS_MAX);
        return -1;
    }
    return 0;
}

static double
s_median (double *v, int n)
{
    qsort (v, (size_t) n, sizeof (double), s_cmp_double);
    return v[n / 2];
}

int
main (int argc, char **argv)
{
    s_options_t o;
    if (s_parse (argc, argv, &o) != 0) {
        return 2;
    }
    zsys_init ();
    if (mkdir (o.data, 0755) != 0 && errno != EEXIST) {
        fprintf (stderr, "shard_bench: cannot create %s\n", o.data);
        return 1;
    }
    if (!o.json) {
        printf ("shard_bench: durability %s%s, window %d, %" PRIu64
                " accounts, %.1f s x %d runs (medians), data in %s\n",
                o.durability, strcmp (o.durability, "nosync") == 0 ? " (BENCHMARK ONLY)" : "",
                o.window, o.accounts, o.seconds, o.runs, o.data);
        printf ("%6s %12s %9s %9s %14s %7s %6s %7s %8s %8s\n", "batch", "transfers/s", "p50 ms",
                "p99 ms", "ceiling put/s", "ratio", "keys/t", "bytes/t", "walB/t", "syncs/t");
    }
    //  --json: one object, printed when every row is measured.
    cJSON *tree = NULL;
    cJSON *rows = NULL;
    if (o.json) {
        tree = jsonkit_object ();
        jsonkit_add_string (tree, "durability", o.durability);
        jsonkit_add_number (tree, "window", o.window);
        jsonkit_add_u64 (tree, "accounts", o.accounts);
        rows = jsonkit_add_array (tree, "rows");
    }
    for (size_t b = 0; b < o.batch_count; b++) {
        double tps[BENCH_RUNS_MAX], p50[BENCH_RUNS_MAX], p99[BENCH_RUNS_MAX], ceil[BENCH_RUNS_MAX];
        s_result_t r = {0};
        for (int run = 0; run < o.runs; run++) {
            if (s_run_shard (&o, o.batches[b], run, &r) != 0) {
                fprintf (stderr, "shard_bench: the shard run failed (see %s/*.log)\n", o.data);
                cJSON_Delete (tree);
                return 1;
            }
            tps[run] = r.transfers_per_s, p50[run] = r.p50_ms, p99[run] = r.p99_ms;
            ceil[run] = s_ceiling (&o, o.batches[b], run);
        }
        double t = s_median (tps, o.runs), c = s_median (ceil, o.runs);
        double m50 = s_median (p50, o.runs), m99 = s_median (p99, o.runs);
        if (o.json) {
            cJSON *row = jsonkit_add_object (rows, NULL);
            jsonkit_add_u64 (row, "batch", o.batches[b]);
            jsonkit_add_fixed (row, "transfers_per_s", t, 0);
            jsonkit_add_fixed (row, "p50_ms", m50, 3);
            jsonkit_add_fixed (row, "p99_ms", m99, 3);
            jsonkit_add_fixed (row, "ceiling_puts_per_s", c, 0);
            jsonkit_add_fixed (row, "ratio", c > 0 ? t / c : 0, 3);
            jsonkit_add_fixed (row, "keys_per_transfer", r.keys_per_transfer, 2);
            jsonkit_add_fixed (row, "bytes_per_transfer", r.bytes_per_transfer, 1);
            jsonkit_add_fixed (row, "wal_bytes_per_transfer", r.wal_bytes_per_transfer, 1);
            jsonkit_add_fixed (row, "syncs_per_transfer", r.syncs_per_transfer, 4);
        } else {
            printf ("%6zu %12.0f %9.3f %9.3f %14.0f %7.2f %6.2f %7.1f %8.1f %8.4f\n", o.batches[b],
                    t, m50, m99, c, c > 0 ? t / c : 0, r.keys_per_transfer, r.bytes_per_transfer,
                    r.wal_bytes_per_transfer, r.syncs_per_transfer);
        }
        fflush (stdout);
    }
    if (o.json) {
        int rc = jsonkit_print (stdout, tree, false);
        cJSON_Delete (tree);
        if (rc) {
            fprintf (stderr, "shard_bench: out of memory\n");
            return 1;
        }
    }
    return 0;
}
