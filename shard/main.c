/*  main.c: the shard program: options, open and close.

    Usage: shard --name NAME --bind ENDPOINT --data DIR
                 (--keys KEYDIR [--cert FILE] | --insecure) [--ring FILE]
                 [--durability sync|nosync|manual-wal] [timeouts, see --help]
                 [--metrics-bind IPV4:PORT] [--log-format text|json]
                 [--log-level LEVEL] [--config FILE] [--check-config]

    Options come from the command line and from --config FILE, whose keys
    are the long options' names (options.c reads the file into the command
    line, before the flags, so a flag overrides the file). --check-config
    stops after the options are checked (exit 0). Opens, in this order: the data directory and the
   store (store.c); the ring (the file's, or a ring of this shard alone, unless the store holds one
   of a higher epoch from an earlier load_ring); the arcs whose data the shard holds (arcs.c: all of
   them in a new cluster; a newer ring file than the stored ring is a ring change, whose gained arcs
   are not received), committed with that ring; the output queue and the ledger, which recovers
   accounts, transfers and two-phase state and commits a new incarnation (ledger.c); then the
   server, which binds the socket and runs turns (server.c). A standby (--standby-of) runs
   replica_standby_run first; once promoted, its open store is the one opened here (and its
   accounts, id filter and transfers after the checkpoint, kept in memory as it streamed, spare
   recovery the reads of them: ledger_open_warm), and the
   old primary's lease is waited out (replica_promoted_serve) between the ledger and the
   server, so that recovery overlaps the wait. Closes in the reverse order, with a
    checkpoint first when the store is healthy (shorter recovery next start).

    INVARIANTS
    1. The two-phase timeouts are ordered: 0 < prepare (--prepare-timeout-ms)
       < the shard's deadline (--deadline-ms, RL_SHARD_DEADLINE_MS by
       default), and prepare + tick < deadline (a timeout is noticed at the
       next tick), so an unreachable credit shard gives a definite aborted
       before the shard's deadline; retry-min <= retry-max; tick 1..1000 ms.
       Every number is parsed whole (no trailing text, no overflow) and
       checked against its range. Options that break any of this are
       refused with a message saying why (exit code 2). The router checks
       the next link of the order (shard deadline <= its
       --shard-deadline-ms) from the deadline this shard reports in status.
    2. The ring is owned by exactly one holder at a time: this program until
       server_new takes it, then the server.

    LIMITS: a name of at most RL_SHARD_NAME_SIZE_MAX - 1 bytes; a stored
    ring of at most RL_RING_BLOB_SIZE_MAX bytes; a coordinator log of
    1..RL_TP_LOG_ENTRIES_MAX entries (--tp-log-capacity; others refused).

    Exit codes: 0 on SIGINT/SIGTERM (and after --check-config), 1 when the
    store, the ring, the ledger or the socket cannot be opened, 2 on bad
    options, a refused --config file or RL_FAILPOINTS, 3 after a storage
    failure (server.c).
*/
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <czmq.h>

#include "arcs.h"
#include "checkpoint.h"
#include "failpoint.h"
#include "keys.h"
#include "ledger.h"
#include "log.h"
#include "metrics_http.h"
#include "options.h"
#include "outq.h"
#include "participant.h"
#include "replica.h"
#include "ring.h"
#include "rl_limits.h"
#include "server.h"
#include "store.h"

//  The two-phase tables' bounds (docs/two-phase.md, "Limits").
typedef struct {
    long log_capacity;   //  entries of the coordinator log (--tp-log-capacity)
    long reserve_max;    //  amount one coordinator may hold reserved here (--tp-reserve-max)
    long prepared_share; //  % of the prepared table one coordinator may hold (--tp-prepared-share)
} s_tp_limits_t;

typedef struct {
    server_options_t options;
    store_t *store;
    ring_t *ring; //  ours until the server takes it
    arcs_t *arcs; //  the arcs whose data is here (the ledger and server borrow them)
    outq_t *outq;
    ledger_t *ledger;
    server_t *server;
    s_tp_limits_t tp;
    options_args_t args; //  the command line with --config's options (owns their text)
    rl_log_format_t log_format;
    int log_level;                //  an rl_log_level_t, or -1: RL_LOG_LEVEL's
    bool check_config;            //  --check-config: check the options, open nothing
    const char *standby_of;       //  --standby-of ENDPOINT: run as that primary's standby
    replica_promoted_t *promoted; //  a standby just promoted: its store, its socket (replica.h)
} s_main_t;

static void
s_usage (FILE *out)
{
    assert (out);
    fprintf (out,
             "usage: shard --name NAME --bind ENDPOINT --data DIR (--keys KEYDIR | --insecure)\n"
             "             [--cert FILE] [--ring FILE] [--durability sync|nosync|manual-wal]\n"
             "  --name        this shard's name in the ring (e.g. s1)\n"
             "  --bind        ZeroMQ endpoint to serve (e.g. tcp://127.0.0.1:7101)\n"
             "  --data        data directory (created if missing)\n"
             "  --ring        ring file; without it, a ring of this shard alone\n"
             "                (a ring stored by load_ring with a higher epoch wins)\n"
             "  --keys KEYDIR the role key sets (KEYDIR/ROLE/*.key, docs/security.md): CURVE\n"
             "                on every connection, only keys in a role admitted\n"
             "  --cert FILE   this shard's secret certificate (default\n"
             "                KEYDIR/private/NAME.key_secret; mode 0600)\n"
             "  --insecure    no CURVE, no authentication: anyone who reaches the port may do\n"
             "                anything (instead of --keys; tests and benchmarks only)\n"
             "  --durability  sync (default): WAL synced before every reply;\n"
             "                nosync: benchmark only, NOT durable;\n"
             "                manual-wal: tests, WAL held in memory until each commit\n"
             "  --checkpoint-transfers N  checkpoint every N transfers (default %u)\n"
             "  --checkpoint-piece-accounts N  a checkpoint writes its accounts N at a\n"
             "                            time (default %d; docs/storage.md)\n"
             "  --prepare-timeout-ms N    coordinator aborts an unprepared attempt (default %d)\n"
             "  --deadline-ms N           this shard answers a request within this; must exceed\n"
             "                            --prepare-timeout-ms (default %d, 2..%d)\n"
             "  --query-after-ms N        participant asks about a prepared record (default %d)\n"
             "  --retry-min-ms N, --retry-max-ms N  resend backoff (default %d..%d)\n"
             "  --tick-ms N               timer period (default %d)\n"
             "  --tp-log-capacity N       coordinator log entries: live attempts + unacknowledged\n"
             "                            decisions; beyond them busy (1..%d, default %d)\n"
             "  --tp-reserve-max N        amount one coordinator may hold reserved here in\n"
             "                            prepared records; beyond it busy (default %llu)\n"
             "  --tp-prepared-share P     %% of the prepared records one coordinator may hold\n"
             "                            here; beyond it busy (1..100, default %d)\n"
             "  --metrics-bind IPV4:PORT  serve /metrics, /healthz, /readyz over HTTP there\n"
             "                            (e.g. 127.0.0.1:9101; default off; docs/metrics.md)\n"
             "  --max-epoch-jump N        load_ring refuses a ring whose epoch is more than N\n"
             "                            above the one served (1..%ld, default %d)\n"
             "  --log-format text|json    log lines as text (default) or one JSON object each\n"
             "  --log-level debug|info|warn|error  (default info, or RL_LOG_LEVEL)\n"
             "  --config FILE             read options from FILE (KEY = VALUE, the long options'\n"
             "                            names; docs/config.md); flags override the file\n"
             "  --check-config            check the options and the file, start nothing, exit 0\n"
             "  --reply-queue-bytes N     reply bytes one connection may make the shard hold;\n"
             "                            beyond, replies are dropped (%ld..%ld, default %ld)\n"
             "  --events-bind ENDPOINT    publish the durable head of the change stream there\n"
             "                            (ZeroMQ PUB, CURVE with --keys; default off;\n"
             "                            docs/events.md)\n"
             "  --standby ENDPOINT[,ENDPOINT...]  replicate every write to these standbys\n"
             "                            (docs/replication.md)\n"
             "  --repl-mode semi|async    semi (default): replies wait for every standby's\n"
             "                            synced write; async: they do not (invariant 9 off)\n"
             "  --repl-timeout-ms N       a standby silent this long is asked again; semi: new\n"
             "                            writes and reads are answered busy meanwhile, and a\n"
             "                            promoted standby waits it out (default %d)\n"
             "  --repl-quorum Q           semi: a write waits for Q standbys' synced writes\n"
             "                            (1..the standbys, default all of them)\n"
             "  --standby-of ENDPOINT     run as the standby of that primary: bind --bind,\n"
             "                            apply its stream, serve status and promote only\n"
             "                            (its writes synced: not with --durability nosync)\n",
             RL_SHARD_CHECKPOINT_TRANSFERS, CHECKPOINT_PIECE_ACCOUNTS, RL_PREPARE_TIMEOUT_MS,
             RL_SHARD_DEADLINE_MS, RL_SHARD_DEADLINE_MS_MAX, RL_TP_QUERY_AFTER_MS,
             RL_TP_RETRY_MIN_MS, RL_TP_RETRY_MAX_MS, RL_SHARD_TICK_MS, RL_TP_LOG_ENTRIES_MAX,
             RL_TP_LOG_ENTRIES_MAX, (unsigned long long) RL_TP_RESERVE_PER_COORDINATOR_MAX,
             RL_TP_PREPARED_SHARE_PERCENT, RL_RING_EPOCH_JUMP_MAX, RL_RING_EPOCH_JUMP_DEFAULT,
             RL_REPLY_QUEUE_BYTES_MIN, RL_REPLY_QUEUE_BYTES_MAX, RL_REPLY_QUEUE_BYTES_DEFAULT,
             REPLICA_TIMEOUT_MS_DEFAULT);
}

//  --standby: a comma-separated list of endpoints.
static int
s_parse_standbys (char *list, replica_options_t *r)
{
    for (char *save = NULL, *e = strtok_r (list, ",", &save); e; e = strtok_r (NULL, ",", &save)) {
        if (r->standby_count == REPLICA_STANDBYS_MAX || !ring_endpoint_valid (e)) {
            fprintf (stderr,
                     "shard: --standby takes at most %d ZeroMQ endpoints such as "
                     "tcp://127.0.0.1:7111, comma-separated; not '%s'\n",
                     REPLICA_STANDBYS_MAX, e);
            return -1;
        }
        for (size_t i = 0; i < r->standby_count; i++) {
            if (strcmp (r->standbys[i], e) == 0) {
                //  Two links to one standby would cancel each other's seed.
                fprintf (stderr, "shard: --standby names %s twice\n", e);
                return -1;
            }
        }
        r->standbys[r->standby_count++] = e;
    }
    if (r->standby_count == 0) {
        fprintf (stderr, "shard: --standby takes at least one ZeroMQ endpoint such as "
                         "tcp://127.0.0.1:7111\n");
        return -1;
    }
    return 0;
}

static int
s_parse_options (int argc, char **argv, s_main_t *self)
{
    assert (argv && self);
    server_options_t *o = &self->options;
    s_tp_limits_t *tp = &self->tp;
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},
        {"bind", required_argument, NULL, 'b'},
        {"data", required_argument, NULL, 'd'},
        {"ring", required_argument, NULL, 'r'},
        {"durability", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {"checkpoint-transfers", required_argument, NULL, 'C'},
        {"checkpoint-piece-accounts", required_argument, NULL, 'k'},
        {"prepare-timeout-ms", required_argument, NULL, 'P'},
        {"deadline-ms", required_argument, NULL, 'E'},
        {"query-after-ms", required_argument, NULL, 'Q'},
        {"retry-min-ms", required_argument, NULL, 'm'},
        {"retry-max-ms", required_argument, NULL, 'M'},
        {"tick-ms", required_argument, NULL, 'T'},
        {"tp-log-capacity", required_argument, NULL, 'L'},
        {"tp-reserve-max", required_argument, NULL, 'R'},
        {"tp-prepared-share", required_argument, NULL, 'S'},
        {"keys", required_argument, NULL, 'K'},
        {"cert", required_argument, NULL, 'c'},
        {"insecure", no_argument, NULL, 'I'},
        {"metrics-bind", required_argument, NULL, 'X'},
        {"max-epoch-jump", required_argument, NULL, 'J'},
        {"log-format", required_argument, NULL, OPTIONS_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPTIONS_LOG_LEVEL},
        {"check-config", no_argument, NULL, OPTIONS_CHECK_CONFIG},
        {"reply-queue-bytes", required_argument, NULL, 'B'},
        {"events-bind", required_argument, NULL, 'V'},
        {"standby", required_argument, NULL, 'Y'},
        {"standby-of", required_argument, NULL, 'O'},
        {"repl-mode", required_argument, NULL, 'Z'},
        {"repl-timeout-ms", required_argument, NULL, 'W'},
        {"repl-quorum", required_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    if (options_args_new (&self->args, "shard", argc, argv, longs) != 0) {
        return -1;
    }
    argc = self->args.argc;
    argv = self->args.argv;
    self->log_level = -1;
    *o = (server_options_t){
        .durability = RL_DURABILITY_SYNC,
        .prepare_timeout_ms = RL_PREPARE_TIMEOUT_MS,
        .deadline_ms = RL_SHARD_DEADLINE_MS,
        .query_after_ms = RL_TP_QUERY_AFTER_MS,
        .retry_min_ms = RL_TP_RETRY_MIN_MS,
        .retry_max_ms = RL_TP_RETRY_MAX_MS,
        .tick_ms = RL_SHARD_TICK_MS,
        .max_epoch_jump = RL_RING_EPOCH_JUMP_DEFAULT,
        .reply_queue_bytes = RL_REPLY_QUEUE_BYTES_DEFAULT,
        .replica = {.mode = REPLICA_MODE_SEMI, .timeout_ms = REPLICA_TIMEOUT_MS_DEFAULT}};
    *tp = (s_tp_limits_t){.log_capacity = RL_TP_LOG_ENTRIES_MAX,
                          .reserve_max = (long) RL_TP_RESERVE_PER_COORDINATOR_MAX,
                          .prepared_share = RL_TP_PREPARED_SHARE_PERCENT};
    int c;
    int rc = 0;
    int at = optind;
    long quorum = 0; //  --repl-quorum (0: not given)
    while (rc == 0 && (c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        at = optind - 1; //  the option just read (one entry when from the file)
        switch (c) {
            case 'n':
                o->name = optarg;
                break;
            case 'b':
                if (!ring_endpoint_valid (optarg)) {
                    fprintf (stderr,
                             "shard: --bind must be an endpoint such as tcp://127.0.0.1:7101 "
                             "(a port 1..65535), not '%s'\n",
                             optarg);
                    rc = -1;
                }
                o->bind = optarg;
                break;
            case 'd':
                o->data_dir = optarg;
                break;
            case 'r':
                o->ring_file = optarg;
                break;
            case 'D':
                if (strcmp (optarg, "sync") == 0) {
                    o->durability = RL_DURABILITY_SYNC;
                } else if (strcmp (optarg, "nosync") == 0) {
                    o->durability = RL_DURABILITY_NOSYNC;
                } else if (strcmp (optarg, "manual-wal") == 0) {
                    o->durability = RL_DURABILITY_SYNC_MANUAL_WAL;
                } else {
                    fprintf (stderr, "shard: unknown durability '%s'\n", optarg);
                    rc = -1;
                }
                break;
            case 'C':
                rc = options_long ("shard", "--checkpoint-transfers", optarg, 1,
                                   (long) RL_SHARD_CHECKPOINT_TRANSFERS, &o->checkpoint_transfers);
                break;
            case 'k':
                rc = options_long ("shard", "--checkpoint-piece-accounts", optarg, 1,
                                   (long) RL_SHARD_ACCOUNTS_MAX, &o->checkpoint_piece_accounts);
                break;
            case 'P':
                //  Its upper bound is the deadline, checked once both are known.
                rc = options_long ("shard", "--prepare-timeout-ms", optarg, 1,
                                   RL_SHARD_DEADLINE_MS_MAX - 1, &o->prepare_timeout_ms);
                break;
            case 'E':
                rc = options_long ("shard", "--deadline-ms", optarg, 2, RL_SHARD_DEADLINE_MS_MAX,
                                   &o->deadline_ms);
                break;
            case 'Q':
                rc = options_long ("shard", "--query-after-ms", optarg, 1, RL_SHARD_TIMER_MS_MAX,
                                   &o->query_after_ms);
                break;
            case 'm':
                rc = options_long ("shard", "--retry-min-ms", optarg, 1, RL_SHARD_TIMER_MS_MAX,
                                   &o->retry_min_ms);
                break;
            case 'M':
                rc = options_long ("shard", "--retry-max-ms", optarg, 1, RL_SHARD_TIMER_MS_MAX,
                                   &o->retry_max_ms);
                break;
            case 'T':
                rc = options_long ("shard", "--tick-ms", optarg, 1, 1000, &o->tick_ms);
                break;
            case 'L':
                rc = options_long ("shard", "--tp-log-capacity", optarg, 1, RL_TP_LOG_ENTRIES_MAX,
                                   &tp->log_capacity);
                break;
            case 'R':
                rc = options_long ("shard", "--tp-reserve-max", optarg, 1, LONG_MAX,
                                   &tp->reserve_max);
                break;
            case 'S':
                rc = options_long ("shard", "--tp-prepared-share", optarg, 1, 100,
                                   &tp->prepared_share);
                break;
            case 'J':
                rc = options_long ("shard", "--max-epoch-jump", optarg, 1, RL_RING_EPOCH_JUMP_MAX,
                                   &o->max_epoch_jump);
                break;
            case 'B':
                rc = options_long ("shard", "--reply-queue-bytes", optarg, RL_REPLY_QUEUE_BYTES_MIN,
                                   RL_REPLY_QUEUE_BYTES_MAX, &o->reply_queue_bytes);
                break;
            case 'V':
                //  A ZeroMQ endpoint: what zsock_bind takes is checked at bind.
                if (optarg[0] == '\0' || strlen (optarg) > 255 || !strstr (optarg, "://")) {
                    fprintf (stderr,
                             "shard: --events-bind must be a ZeroMQ endpoint such as "
                             "tcp://127.0.0.1:7201, not '%s'\n",
                             optarg);
                    rc = -1;
                }
                o->events_bind = optarg;
                break;
            case 'Y':
                if (s_parse_standbys (optarg, &o->replica) != 0) {
                    rc = -1;
                }
                break;
            case 'O':
                if (!ring_endpoint_valid (optarg)) {
                    fprintf (stderr,
                             "shard: --standby-of must be an endpoint such as "
                             "tcp://127.0.0.1:7101 (a port 1..65535), not '%s'\n",
                             optarg);
                    rc = -1;
                }
                self->standby_of = optarg;
                break;
            case 'Z':
                if (strcmp (optarg, "semi") == 0) {
                    o->replica.mode = REPLICA_MODE_SEMI;
                } else if (strcmp (optarg, "async") == 0) {
                    o->replica.mode = REPLICA_MODE_ASYNC;
                } else {
                    fprintf (stderr, "shard: --repl-mode must be semi or async, not '%s'\n",
                             optarg);
                    rc = -1;
                }
                break;
            case 'W':
                rc = options_long ("shard", "--repl-timeout-ms", optarg, REPLICA_TIMEOUT_MS_MIN,
                                   REPLICA_TIMEOUT_MS_MAX, &o->replica.timeout_ms);
                break;
            case 'U':
                //  Checked against the number of standbys once all are read.
                rc = options_long ("shard", "--repl-quorum", optarg, 1, REPLICA_STANDBYS_MAX,
                                   &quorum);
                break;
            case 'K':
                o->keys_dir = optarg;
                break;
            case 'c':
                o->cert = optarg;
                break;
            case 'I':
                o->insecure = true;
                break;
            case 'X': {
                char err[160];
                if (metrics_http_check_bind (optarg, err, sizeof err) != 0) {
                    fprintf (stderr, "shard: --metrics-bind %s\n", err);
                    rc = -1;
                }
                o->metrics_bind = optarg;
                break;
            }
            case OPTIONS_LOG_FORMAT:
                if (rl_log_format_parse (optarg, &self->log_format) != 0) {
                    fprintf (stderr, "shard: --log-format must be text or json, not '%s'\n",
                             optarg);
                    rc = -1;
                }
                break;
            case OPTIONS_LOG_LEVEL: {
                rl_log_level_t level;
                if (rl_log_level_parse (optarg, &level) != 0) {
                    fprintf (stderr,
                             "shard: --log-level must be debug, info, warn or error, not '%s'\n",
                             optarg);
                    rc = -1;
                }
                self->log_level = (int) level;
                break;
            }
            case OPTIONS_CHECK_CONFIG:
                self->check_config = true;
                break;
            case 'h':
                s_usage (stdout);
                exit (0);
            default:
                return -1;
        }
    }
    if (rc != 0) {
        options_args_blame (&self->args, "shard", at);
        return -1;
    }
    if (!o->name || !o->bind || !o->data_dir || optind != argc) {
        fprintf (stderr, "shard: --name, --bind and --data are required\n");
        return -1;
    }
    //  Ordered timeouts (DESIGN, "Results"): a coordinator aborts an
    //  unprepared attempt at the prepare timeout, so that an unreachable
    //  credit shard gives a definite aborted before this shard's deadline
    //  (and so before the router's outcome_unknown).
    if (o->prepare_timeout_ms >= o->deadline_ms) {
        fprintf (stderr,
                 "shard: --prepare-timeout-ms %ld must be below the shard's deadline "
                 "(--deadline-ms %ld): otherwise a cross-shard transfer whose credit shard is "
                 "unreachable is not aborted before the shard's deadline passes (order: prepare "
                 "< shard deadline < router deadline < client timeout)\n",
                 o->prepare_timeout_ms, o->deadline_ms);
        return -1;
    }
    //  A prepare timeout is noticed at the next tick: it must come before
    //  the deadline too, or the deadline is a promise the shard cannot keep.
    if (o->prepare_timeout_ms + o->tick_ms >= o->deadline_ms) {
        fprintf (stderr,
                 "shard: --prepare-timeout-ms %ld plus --tick-ms %ld must be below the shard's "
                 "deadline (--deadline-ms %ld): a prepare timeout is noticed at the next tick, "
                 "and the aborted answer must leave before the deadline passes\n",
                 o->prepare_timeout_ms, o->tick_ms, o->deadline_ms);
        return -1;
    }
    if (o->retry_max_ms < o->retry_min_ms) {
        fprintf (stderr, "shard: --retry-min-ms %ld must not exceed --retry-max-ms %ld\n",
                 o->retry_min_ms, o->retry_max_ms);
        return -1;
    }
    if (strlen (o->name) >= RL_SHARD_NAME_SIZE_MAX) {
        fprintf (stderr, "shard: name longer than %d bytes\n", RL_SHARD_NAME_SIZE_MAX - 1);
        return -1;
    }
    if (o->insecure == (o->keys_dir != NULL) || (o->insecure && o->cert)) {
        fprintf (stderr, "shard: give --keys KEYDIR (CURVE; docs/security.md), or --insecure to "
                         "run without any authentication, not both\n");
        return -1;
    }
    //  A standby acknowledges an event only after its own synced write, and
    //  a semi-synchronous primary releases replies on that acknowledgement
    //  (invariant 9: an acknowledged transfer is on two disks). A standby
    //  that does not sync would acknowledge what a power cut loses, while
    //  its primary's status says semi-sync.
    if (self->standby_of && o->durability == RL_DURABILITY_NOSYNC) {
        fprintf (stderr,
                 "shard: --standby-of cannot run with --durability nosync: a standby "
                 "acknowledges each event of its primary as written to its disk, and a "
                 "semi-synchronous primary answers its clients on that acknowledgement; give "
                 "--durability sync (docs/replication.md)\n");
        return -1;
    }
    //  --repl-quorum: 1..the standbys; without it, every standby (as
    //  before the option existed).
    if (quorum && o->replica.standby_count == 0) {
        fprintf (stderr, "shard: --repl-quorum needs --standby (it counts standbys' "
                         "acknowledgements)\n");
        return -1;
    }
    if (quorum > (long) o->replica.standby_count) {
        fprintf (stderr,
                 "shard: --repl-quorum %ld exceeds the %zu standby(s) of --standby: a write "
                 "could never gather that many acknowledgements; give 1..%zu\n",
                 quorum, o->replica.standby_count, o->replica.standby_count);
        return -1;
    }
    o->replica.quorum = quorum ? (size_t) quorum : o->replica.standby_count;
    if (o->keys_dir && !o->cert) {
        //  The default: the secret certificate rlctl keygen wrote for this name.
        static char cert[4096];
        snprintf (cert, sizeof cert, "%s/private/%s.key_secret", o->keys_dir, o->name);
        o->cert = cert;
    }
    if (o->keys_dir) {
        //  The certificate is checked with the options (exit 2, before the
        //  store is opened and recovered), not at the socket's creation.
        char err[1024];
        zcert_t *own = rl_cert_load (o->cert, err, sizeof err);
        if (!own) {
            fprintf (stderr, "shard: --cert: %s\n", err);
            return -1;
        }
        zcert_destroy (&own);
    }
    o->replica.data_dir = o->data_dir;
    assert (o->name && o->bind && o->data_dir); //  what the server relies on
    assert (o->prepare_timeout_ms + o->tick_ms < o->deadline_ms
            && o->retry_min_ms <= o->retry_max_ms);
    return 0;
}

//  The ring: the file's, unless the store holds one with a higher epoch
//  from an earlier load_ring. Without a file, a ring of this shard alone
//  at --bind, unless the stored ring is newer or names other shards (or
//  not this one): a shard of a cluster restarted without --ring keeps its
//  cluster's ring whatever its epoch, since a ring of itself alone would
//  make it own every account and create accounts its peers hold. (A
//  single shard's stored ring at an equal epoch gives way: a standby
//  promoted in a cluster of one serves its own endpoint.) *stored_p: the
//  stored ring, or NULL (the caller destroys it).
static ring_t *
s_ring_initial (s_main_t *self, ring_t **stored_p)
{
    *stored_p = NULL;
    assert (self->store && !self->ring && !self->ledger);
    char err[512];
    ring_t *ring = NULL;
    if (self->options.ring_file) {
        ring = ring_load_file (self->options.ring_file, err, sizeof (err));
        if (!ring) {
            rl_error ("ring file %s: %s", self->options.ring_file, err);
            return NULL;
        }
    } else {
        ring = ring_new (1);
        if (!ring || ring_add_shard (ring, self->options.name, self->options.bind, 1.0) != 0) {
            ring_destroy (&ring);
            return NULL;
        }
    }
    static uint8_t blob[RL_RING_BLOB_SIZE_MAX];
    size_t size = 0;
    int rc = store_get (self->store, STORE_CF_META, SERVER_META_RING, strlen (SERVER_META_RING),
                        blob, sizeof (blob), &size);
    if (rc == 1 && size <= sizeof (blob)) {
        ring_t *stored = ring_decode (blob, size, err, sizeof (err));
        if (!stored) {
            rl_error ("stored ring does not decode: %s", err);
        } else if (ring_epoch (stored) > ring_epoch (ring)
                   || (!self->options.ring_file
                       && (ring_shard_count (stored) > 1
                           || ring_shard_find (stored, self->options.name) < 0))) {
            rl_info ("using the stored ring (epoch %" PRIu64 ") over %s (epoch %" PRIu64 ")",
                     ring_epoch (stored),
                     self->options.ring_file ? "the file's" : "a ring of this shard alone",
                     ring_epoch (ring));
            ring_destroy (&ring);
            ring = ring_dup (stored);
            *stored_p = stored;
        } else {
            *stored_p = stored;
        }
        if (!ring) {
            ring_destroy (stored_p);
        }
    }
    return ring;
}

//  Stores the ring served with the arcs computed for it (arcs_open put
//  them into the batch), durably, before anything is served.
static int
s_ring_store (s_main_t *self)
{
    size_t size = ring_encoded_size (self->ring);
    uint8_t *blob = malloc (size);
    if (!blob) {
        rl_error ("out of memory storing the ring");
        return -1;
    }
    size_t written = ring_encode (self->ring, blob, size);
    assert (written == size);
    store_batch_put (self->store, STORE_CF_META, SERVER_META_RING, strlen (SERVER_META_RING), blob,
                     size);
    free (blob);
    if (store_commit (self->store) != 0) {
        rl_error ("cannot store the ring and its arcs: %s", store_error (self->store));
        return -1;
    }
    return 0;
}

static int
s_open (s_main_t *self)
{
    assert (!self->store && !self->ledger && !self->server);
    char err[512];
    const server_options_t *o = &self->options;
    if (mkdir (o->data_dir, 0755) != 0 && errno != EEXIST) {
        rl_error ("cannot create %s: %s", o->data_dir, strerror (errno));
        return -1;
    }
    //  A promoted standby's store is open: taken as it is (a reopen would
    //  replay RocksDB's WAL of everything since the standby's last flush).
    self->store = self->promoted ? replica_promoted_store (self->promoted)
                                 : store_open (o->data_dir, o->durability, err, sizeof (err));
    if (!self->store) {
        rl_error ("%s", err);
        return -1;
    }
    ring_t *stored = NULL;
    self->ring = s_ring_initial (self, &stored);
    if (!self->ring) {
        return -1;
    }
    bool ring_write = false;
    self->arcs = arcs_open (self->store, o->name, self->ring, stored, &ring_write, err,
                            sizeof (err));
    ring_destroy (&stored);
    if (!self->arcs) {
        rl_error ("%s", err);
        return -1;
    }
    if (ring_write && s_ring_store (self) != 0) {
        return -1;
    }
    if (ring_shard_find (self->ring, o->name) < 0) {
        rl_warn ("ring epoch %" PRIu64 " does not name this shard: it owns no accounts",
                 ring_epoch (self->ring));
    }
    uint64_t nonce = 0;
    if (getrandom (&nonce, sizeof (nonce), 0) != (ssize_t) sizeof (nonce)) {
        rl_error ("cannot draw the incarnation nonce: %s", strerror (errno));
        return -1;
    }
    self->outq = outq_new ();
    if (!self->outq) {
        rl_error ("out of memory");
        return -1;
    }
    //  A promoted standby's accounts, id filter and transfers after the checkpoint,
    //  kept current as it streamed, stand in for recovery's reads of them.
    journal_warm_t *warm = self->promoted ? replica_promoted_warm (self->promoted) : NULL;
    self->ledger = ledger_open_warm (self->store, self->outq, o->name, self->ring, nonce,
                                     now_read (), &warm, err, sizeof (err));
    if (!self->ledger) {
        rl_error ("cannot recover the ledger: %s", err);
        return -1;
    }
    if (store_failed (self->store)) {
        //  A scan of recovery ended on a read error: what it built is part
        //  of the ledger (store_iter_valid).
        rl_error ("cannot recover the ledger: %s", store_error (self->store));
        return -1;
    }
    //  Recovery queues nothing: logged decisions and prepared records are
    //  sent from the first tick, after the first group commit.
    assert (outq_count (self->outq) == 0);
    if (o->checkpoint_transfers > 0) {
        ledger_set_checkpoint_transfers (self->ledger, (size_t) o->checkpoint_transfers);
    }
    if (o->checkpoint_piece_accounts > 0) {
        ledger_set_checkpoint_piece_accounts (self->ledger, (size_t) o->checkpoint_piece_accounts);
    }
    ledger_set_arcs (self->ledger, self->arcs);
    coordinator_set_log_capacity (ledger_coordinator (self->ledger),
                                  (size_t) self->tp.log_capacity);
    size_t share = RL_TP_PREPARED_MAX * (size_t) self->tp.prepared_share / 100;
    participant_set_bounds (ledger_participant (self->ledger), (uint64_t) self->tp.reserve_max,
                            share > 0 ? share : 1);
    ledger_set_tp_timeouts (self->ledger, (uint64_t) o->prepare_timeout_ms,
                            (uint64_t) o->query_after_ms, (uint64_t) o->retry_min_ms,
                            (uint64_t) o->retry_max_ms);
    //  Recovered, the new incarnation written: a promoted standby waits out
    //  the old primary's lease (and the linger of its answer) here, and
    //  releases its socket for the server's.
    replica_promoted_serve (&self->promoted);
    replica_serve_wait (self->store); //  restarted within the old primary's lease: its rest
    self->server = server_new (o, self->store, &self->ring, self->outq, self->ledger);
    if (!self->server) {
        return -1;
    }
    assert (!self->ring); //  invariant 2: the server holds it now
    return 0;
}

static void
s_close (s_main_t *self, bool failed)
{
    assert (!self->ring || !self->server); //  invariant 2: one holder of the ring
    if (self->ledger && !failed && !store_failed (self->store)) {
        ledger_checkpoint (self->ledger); //  shorter recovery next start
    }
    replica_promoted_serve (&self->promoted); //  an open that failed: the standby's socket
    server_destroy (&self->server);           //  before the ledger: it drops waiting requests
    ledger_destroy (&self->ledger);
    arcs_destroy (&self->arcs); //  after the ledger, which borrows them
    outq_destroy (&self->outq);
    store_close (&self->store);
    ring_destroy (&self->ring);
    assert (!self->server && !self->ledger && !self->store && !self->outq);
}

int
main (int argc, char **argv)
{
    s_main_t self = {0};
    if (s_parse_options (argc, argv, &self) != 0) {
        //  The reason was said in one line; the whole usage would bury it
        //  in a service manager's journal.
        fprintf (stderr, "(run 'shard --help' for usage)\n");
        options_args_free (&self.args);
        return 2;
    }
    if (self.check_config) {
        printf ("shard: the options%s%s are valid\n", self.args.path ? " and " : "",
                self.args.path ? self.args.path : "");
        options_args_free (&self.args);
        return 0;
    }
    rl_log_set_format (self.log_format);
    rl_log_init ("shard", self.options.name);
    if (self.log_level >= 0) {
        rl_log_set_level ((rl_log_level_t) self.log_level);
    }
    char err[256];
    if (failpoint_init (err, sizeof (err)) != 0) {
        rl_error ("RL_FAILPOINTS: %s", err);
        options_args_free (&self.args);
        return 2;
    }
    zsys_init ();
    if (self.standby_of) {
        //  A standby until promoted (docs/replication.md); then its open
        //  store becomes the primary's, by the normal recovery path.
        const server_options_t *o = &self.options;
        if (o->metrics_bind) {
            //  A standby serves no HTTP metrics: its state is read with
            //  rlctl repl-status; the primary's link shows its position.
            rl_log_event (RL_LOG_WARN, "metrics",
                          "--metrics-bind %s is served once this standby is promoted, not "
                          "before (a scrape of it fails until then; see docs/metrics.md)",
                          o->metrics_bind);
        }
        replica_standby_options_t so = {.name = o->name,
                                        .bind = o->bind,
                                        .data_dir = o->data_dir,
                                        .primary = self.standby_of,
                                        .durability = o->durability,
                                        .keys_dir = o->keys_dir,
                                        .cert = o->cert,
                                        .insecure = o->insecure};
        int rc = replica_standby_run (&so, &self.promoted);
        if (rc != 1) {
            options_args_free (&self.args);
            return rc == 0 ? 0 : 3;
        }
        if (zsys_interrupted) {
            replica_promoted_serve (&self.promoted);
            options_args_free (&self.args);
            return 0;
        }
    }
    if (s_open (&self) != 0) {
        s_close (&self, false);
        options_args_free (&self.args);
        return 1;
    }
    assert (self.server && self.ledger && !self.ring);
    bool failed = server_run (self.server) != 0;
    rl_log_event (RL_LOG_INFO, "stop", "stopping (%s)",
                  !failed                       ? "signal"
                  : server_fenced (self.server) ? "fenced by a promotion"
                                                : "storage failure");
    s_close (&self, failed);
    options_args_free (&self.args);
    return failed ? 3 : 0;
}
