/*  main.c: the router program: options, start-up and shut-down.

    START-UP
    1. Options (s_parse_options); a bad one exits 2 with the usage. So
       does a deadline that breaks the order of timeouts (DESIGN,
       "Results"): prepare < shard deadline < router deadline < client
       timeout. The router's --deadline-ms must exceed the shards' deadline
       (--shard-deadline-ms, RL_SHARD_DEADLINE_MS by default), so that a
       cross-shard transfer whose credit shard is unreachable comes back a
       definite `aborted` from its shard before the router gives up with
       `outcome_unknown`.
    2. The first ring: --ring FILE, or --shard EP,... asked in turn, with a
       growing pause between rounds, until one answers get_ring (or a
       signal stops the process: exit 0).
    3. One DEALER per shard of the ring (shards.c), and a bounded wait
       (RL_ROUTER_CONNECT_GRACE_MS) for them to connect, so that the first
       requests are not refused busy.
    4. The clients' ROUTER socket is bound, the tick is armed (every
       RL_ROUTER_TICK_MS, or a quarter of a short test deadline), and the
       loop runs.

    SIGNALS
    czmq's handler (zsys_init) turns SIGINT and SIGTERM into
    zsys_interrupted, which ends zloop_start. Shut-down then answers every
    request still open (creates outcome_unknown, reads timeout), so that no
    client waits for its own timeout, closes every socket and frees
    everything: with sanitizers, a leak makes the exit status non-zero.

    INVARIANTS
    1. The router serves clients only with a ring installed and the shards'
       sockets opened; any start-up failure exits 1 before binding.
    2. Everything s_open allocated is freed by s_close, also after a
       partial s_open.

    Usage: router --bind ENDPOINT (--ring FILE | --shard EP[,EP...])
                  (--keys KEYDIR [--cert FILE] [--shard-key KEY] | --insecure)
                  [--deadline-ms N] [--shard-deadline-ms N] [--name NAME]
                  [--ring-refresh-ms N] [--metrics-bind IPV4:PORT]
                  [--log-format text|json] [--log-level LEVEL]
                  [--config FILE] [--check-config]
    Options come from the command line and from --config FILE, whose keys
    are the long options' names; a flag overrides the file (options.c).
    --check-config stops after the options are checked (exit 0).
    See docs/router.md and docs/config.md.
*/
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "client.h"
#include "failpoint.h"
#include "keys.h"
#include "log.h"
#include "ring.h"
#include "metrics_http.h"
#include "options.h"
#include "router.h"

//  Start-up --------------------------------------------------------------------

//  What the command line says beyond the router's own options.
typedef struct {
    options_args_t args; //  the command line with --config's options (owns their text)
    rl_log_format_t log_format;
    int log_level;     //  an rl_log_level_t, or -1: RL_LOG_LEVEL's
    bool check_config; //  --check-config: check the options, start nothing
} s_cli_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: router --bind ENDPOINT (--ring FILE | --shard ENDPOINT[,ENDPOINT...])\n"
             "              (--keys KEYDIR [--cert FILE] [--shard-key KEY] | --insecure)\n"
             "              [--deadline-ms N] [--shard-deadline-ms N] [--name NAME]\n"
             "              [--ring-refresh-ms N] [--metrics-bind IPV4:PORT]\n"
             "  --bind         ZeroMQ endpoint to serve clients on (e.g. tcp://127.0.0.1:7001)\n"
             "  --ring         ring file to start from\n"
             "  --shard        shards to fetch the ring from (the first that answers)\n"
             "  --deadline-ms  answer within this (default %d): open creates outcome_unknown,\n"
             "                 reads timeout; must exceed --shard-deadline-ms\n"
             "  --shard-deadline-ms N  the shards' answer bound, above their prepare timeout\n"
             "                 (default %d)\n"
             "  --keys KEYDIR  the role key sets (KEYDIR/ROLE/*.key, docs/security.md): CURVE on\n"
             "                 every connection, only keys in a role admitted\n"
             "  --cert FILE    this router's secret certificate (default\n"
             "                 KEYDIR/private/NAME.key_secret; mode 0600)\n"
             "  --shard-key K  the public key (Z85, or a certificate file) of the --shard\n"
             "                 endpoints, to fetch the first ring (--ring carries the keys)\n"
             "  --insecure     no CURVE, no authentication (instead of --keys)\n"
             "  --name         this router's name in status (default router)\n"
             "  --ring-refresh-ms N  ask a shard for its ring this often (default %d)\n"
             "  --metrics-bind IPV4:PORT  serve /metrics, /healthz, /readyz over HTTP there\n"
             "                 (e.g. 127.0.0.1:9100; default off; docs/metrics.md)\n"
             "  --max-epoch-jump N  refuse a fetched ring whose epoch is more than N above\n"
             "                 the one served (1..%ld, default %d)\n"
             "  --log-format text|json  log lines as text (default) or one JSON object each\n"
             "  --log-level debug|info|warn|error  (default info, or RL_LOG_LEVEL)\n"
             "  --config FILE  read options from FILE (KEY = VALUE, the long options' names;\n"
             "                 docs/config.md); flags override the file\n"
             "  --check-config check the options and the file, start nothing, exit 0\n"
             "  --reply-queue-bytes N  reply bytes one client connection may make the router\n"
             "                 hold; beyond, replies are dropped (%ld..%ld, default %ld)\n",
             RL_ROUTER_DEADLINE_MS, RL_SHARD_DEADLINE_MS, RL_ROUTER_RING_REFRESH_MS,
             RL_RING_EPOCH_JUMP_MAX, RL_RING_EPOCH_JUMP_DEFAULT, RL_REPLY_QUEUE_BYTES_MIN,
             RL_REPLY_QUEUE_BYTES_MAX, RL_REPLY_QUEUE_BYTES_DEFAULT);
}

static int
s_parse_options (int argc, char **argv, r_options_t *o, s_cli_t *cli)
{
    static const struct option longs[] = {
        {"bind", required_argument, NULL, 'b'},
        {"ring", required_argument, NULL, 'r'},
        {"shard", required_argument, NULL, 's'},
        {"deadline-ms", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"ring-refresh-ms", required_argument, NULL, 'R'},
        {"shard-deadline-ms", required_argument, NULL, 'S'},
        {"keys", required_argument, NULL, 'K'},
        {"cert", required_argument, NULL, 'c'},
        {"shard-key", required_argument, NULL, 'k'},
        {"insecure", no_argument, NULL, 'I'},
        {"metrics-bind", required_argument, NULL, 'X'},
        {"max-epoch-jump", required_argument, NULL, 'J'},
        {"log-format", required_argument, NULL, OPTIONS_LOG_FORMAT},
        {"log-level", required_argument, NULL, OPTIONS_LOG_LEVEL},
        {"check-config", no_argument, NULL, OPTIONS_CHECK_CONFIG},
        {"reply-queue-bytes", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    if (options_args_new (&cli->args, "router", argc, argv, longs) != 0) {
        return -1;
    }
    argc = cli->args.argc;
    argv = cli->args.argv;
    cli->log_level = -1;
    *o = (r_options_t){.name = "router",
                       .deadline_ms = RL_ROUTER_DEADLINE_MS,
                       .shard_deadline_ms = RL_SHARD_DEADLINE_MS,
                       .refresh_ms = RL_ROUTER_RING_REFRESH_MS,
                       .max_epoch_jump = RL_RING_EPOCH_JUMP_DEFAULT,
                       .reply_queue_bytes = RL_REPLY_QUEUE_BYTES_DEFAULT};
    int c;
    int rc = 0;
    int at = optind;
    while (rc == 0 && (c = getopt_long (argc, argv, "", longs, NULL)) != -1) {
        at = optind - 1; //  the option just read (one entry when from the file)
        switch (c) {
            case 'b':
                if (!ring_endpoint_valid (optarg)) {
                    fprintf (stderr,
                             "router: --bind must be an endpoint such as tcp://127.0.0.1:7100 "
                             "(a port 1..65535), not '%s'\n",
                             optarg);
                    rc = -1;
                }
                o->bind = optarg;
                break;
            case 'r':
                o->ring_file = optarg;
                break;
            case 's':
                o->shards = optarg;
                break;
            case 'n':
                o->name = optarg;
                break;
            case 'K':
                o->keys_dir = optarg;
                break;
            case 'c':
                o->cert = optarg;
                break;
            case 'k':
                o->shard_key = optarg;
                break;
            case 'I':
                o->insecure = true;
                break;
            case 'X': {
                char err[160];
                if (metrics_http_check_bind (optarg, err, sizeof err) != 0) {
                    fprintf (stderr, "router: --metrics-bind %s\n", err);
                    rc = -1;
                }
                o->metrics_bind = optarg;
                break;
            }
            case 'd':
                if (options_long ("router", "--deadline-ms", optarg, RL_ROUTER_DEADLINE_MS_MIN,
                                  RL_ROUTER_DEADLINE_MS_MAX, &o->deadline_ms)
                    != 0) {
                    rc = -1;
                }
                break;
            case 'S':
                if (options_long ("router", "--shard-deadline-ms", optarg, 1,
                                  RL_ROUTER_DEADLINE_MS_MAX - 1, &o->shard_deadline_ms)
                    != 0) {
                    rc = -1;
                }
                break;
            case 'R':
                if (options_long ("router", "--ring-refresh-ms", optarg, RL_ROUTER_TICK_MS,
                                  RL_ROUTER_DEADLINE_MS_MAX, &o->refresh_ms)
                    != 0) {
                    rc = -1;
                }
                break;
            case 'J':
                if (options_long ("router", "--max-epoch-jump", optarg, 1, RL_RING_EPOCH_JUMP_MAX,
                                  &o->max_epoch_jump)
                    != 0) {
                    rc = -1;
                }
                break;
            case OPTIONS_LOG_FORMAT:
                if (rl_log_format_parse (optarg, &cli->log_format) != 0) {
                    fprintf (stderr, "router: --log-format must be text or json, not '%s'\n",
                             optarg);
                    rc = -1;
                }
                break;
            case OPTIONS_LOG_LEVEL: {
                rl_log_level_t level;
                if (rl_log_level_parse (optarg, &level) != 0) {
                    fprintf (stderr,
                             "router: --log-level must be debug, info, warn or error, not '%s'\n",
                             optarg);
                    rc = -1;
                }
                cli->log_level = (int) level;
                break;
            }
            case OPTIONS_CHECK_CONFIG:
                cli->check_config = true;
                break;
            case 'B':
                if (options_long ("router", "--reply-queue-bytes", optarg, RL_REPLY_QUEUE_BYTES_MIN,
                                  RL_REPLY_QUEUE_BYTES_MAX, &o->reply_queue_bytes)
                    != 0) {
                    rc = -1;
                }
                break;
            case 'h':
                s_usage (stdout);
                exit (0);
            default:
                return -1;
        }
    }
    if (rc != 0) {
        options_args_blame (&cli->args, "router", at);
        return -1;
    }
    if (!o->bind || optind != argc || (!o->ring_file == !o->shards)) {
        fprintf (stderr, "router: --bind and one of --ring or --shard are required\n");
        return -1;
    }
    if (o->deadline_ms <= o->shard_deadline_ms) {
        fprintf (stderr,
                 "router: --deadline-ms %ld must exceed the shards' deadline (%ld ms, "
                 "--shard-deadline-ms): otherwise a cross-shard transfer whose credit shard is "
                 "unreachable is answered outcome_unknown by the router before its shard can "
                 "answer a definite aborted (order: prepare < shard deadline < router deadline "
                 "< client timeout)\n",
                 o->deadline_ms, o->shard_deadline_ms);
        return -1;
    }
    if (strlen (o->name) >= RL_SHARD_NAME_SIZE_MAX) {
        fprintf (stderr, "router: name longer than %d bytes\n", RL_SHARD_NAME_SIZE_MAX - 1);
        return -1;
    }
    if (o->insecure == (o->keys_dir != NULL) || (o->insecure && (o->cert || o->shard_key))) {
        fprintf (stderr, "router: give --keys KEYDIR (CURVE; docs/security.md), or --insecure to "
                         "run without any authentication, not both\n");
        return -1;
    }
    if (o->keys_dir && !o->cert) {
        //  The default: the secret certificate rlctl keygen wrote for this name.
        static char cert[4096];
        snprintf (cert, sizeof cert, "%s/private/%s.key_secret", o->keys_dir, o->name);
        o->cert = cert;
    }
    if (o->keys_dir) {
        char err[1024]; //  checked with the options: exit 2
        zcert_t *own = rl_cert_load (o->cert, err, sizeof err);
        if (!own) {
            fprintf (stderr, "router: --cert: %s\n", err);
            return -1;
        }
        zcert_destroy (&own);
    }
    return 0;
}

//  --shard: asks each shard in turn for its ring, with a growing pause
//  between rounds, until one answers (or a signal stops the process).
static ring_t *
s_ring_fetch (const char *list)
{
    int pause_ms = RL_ROUTER_RECONNECT_MS;
    while (!zsys_interrupted) {
        char *copy = strdup (list);
        if (!copy) {
            rl_error ("out of memory reading the shard list");
            return NULL;
        }
        char *save = NULL;
        for (char *ep = strtok_r (copy, ",", &save); ep && !zsys_interrupted;
             ep = strtok_r (NULL, ",", &save)) {
            rl_client_t *client = rl_client_new (ep);
            if (!client) {
                rl_error ("cannot connect to %s", ep);
                continue;
            }
            uint8_t *blob = NULL;
            size_t size = 0;
            int rc = rl_client_get_ring (client, &blob, &size, RL_ROUTER_RING_FETCH_TIMEOUT_MS);
            rl_client_destroy (&client);
            if (rc == 0) {
                char err[256];
                ring_t *ring = ring_decode (blob, size, err, sizeof (err));
                free (blob);
                if (ring) {
                    rl_info ("ring epoch %" PRIu64 " from %s", ring_epoch (ring), ep);
                    free (copy);
                    return ring;
                }
                rl_warn ("ring from %s does not decode: %s", ep, err);
            } else {
                rl_info ("no ring from %s yet: %s", ep, rl_client_strerror (rc));
            }
        }
        free (copy);
        zclock_sleep (pause_ms);
        pause_ms = pause_ms * 2 > RL_ROUTER_RING_FETCH_BACKOFF_MS_MAX
                       ? RL_ROUTER_RING_FETCH_BACKOFF_MS_MAX
                       : pause_ms * 2;
    }
    return NULL;
}

//  Gives the connections to the shards a moment (bounded) to come up before
//  clients are served, so that the first requests are not refused busy.
static void
s_wait_connected (router_t *self)
{
    int64_t until = zclock_mono () + RL_ROUTER_CONNECT_GRACE_MS;
    size_t up = 0;
    while (!zsys_interrupted && zclock_mono () < until) {
        up = 0;
        for (size_t i = 0; i < self->shard_count; i++) {
            up += (zsock_events (self->shards[i]->dealer) & ZMQ_POLLOUT) != 0;
        }
        if (up == self->shard_count) {
            return;
        }
        zclock_sleep (RL_ROUTER_TICK_MS);
    }
    rl_warn ("%zu of %zu shards connected; serving anyway", up, self->shard_count);
}

static int
s_open (router_t *self)
{
    self->subs = calloc (RL_ROUTER_SUBS_MAX, sizeof (r_sub_t));
    self->sub_free = calloc (RL_ROUTER_SUBS_MAX, sizeof (uint32_t));
    self->pending = calloc (RL_ROUTER_PENDING_MAX, sizeof (r_pending_t));
    self->pending_free = calloc (RL_ROUTER_PENDING_MAX, sizeof (uint32_t));
    self->owners = calloc (RL_BATCH_RECORDS_MAX, sizeof (int32_t));
    self->ids = calloc (RL_BATCH_RECORDS_MAX, sizeof (rl_id_t));
    self->group_count = calloc (RL_SHARDS_MAX, sizeof (uint32_t));
    self->frame_buf = malloc (RL_MESSAGE_SIZE_MAX);
    if (!self->subs || !self->sub_free || !self->pending || !self->pending_free || !self->owners
        || !self->ids || !self->group_count || !self->frame_buf) {
        return -1;
    }
    for (uint32_t i = 0; i < RL_ROUTER_SUBS_MAX; i++) {
        self->sub_free[i] = RL_ROUTER_SUBS_MAX - 1 - i;
    }
    self->sub_free_count = RL_ROUTER_SUBS_MAX;
    for (uint32_t i = 0; i < RL_ROUTER_PENDING_MAX; i++) {
        self->pending_free[i] = RL_ROUTER_PENDING_MAX - 1 - i;
    }
    self->pending_free_count = RL_ROUTER_PENDING_MAX;
    self->sub_head = self->sub_tail = self->pending_head = self->pending_tail = -1;
    char err[768] = "out of memory";
    self->auth = self->options.insecure
                     ? rl_auth_new_insecure ()
                     : rl_auth_new (self->options.keys_dir, self->options.cert, err, sizeof err);
    if (!self->auth) {
        rl_error ("%s", err);
        return -1;
    }
    if (!self->options.insecure) {
        //  The first ring, asked of --shard: CURVE to the key given.
        char shard_key[RL_KEY_TEXT_SIZE] = "";
        if (self->options.shard_key
            && rl_key_resolve (self->options.shard_key, shard_key, err, sizeof err) != 0) {
            rl_error ("--shard-key: %s", err);
            return -1;
        }
        rl_client_set_curve (rl_auth_cert (self->auth), shard_key[0] ? shard_key : NULL);
    }
    self->loop = zloop_new ();
    if (!self->loop || rl_auth_attach (self->auth, self->loop) != 0) {
        return -1;
    }
    ring_t *ring = NULL;
    if (self->options.ring_file) {
        ring = ring_load_file (self->options.ring_file, err, sizeof (err));
        if (!ring) {
            rl_error ("ring file %s: %s", self->options.ring_file, err);
            return -1;
        }
    } else {
        ring = s_ring_fetch (self->options.shards);
        if (!ring) {
            return -1; //  interrupted, or out of memory (logged)
        }
    }
    if (router_ring_adopt (self, ring) != 0) {
        rl_error ("cannot open the connections of ring epoch %" PRIu64, ring_epoch (ring));
        ring_destroy (&ring);
        return -1;
    }
    s_wait_connected (self);
    self->clients = zsock_new (ZMQ_ROUTER);
    if (!self->clients || rl_auth_server (self->auth, self->clients) != 0) {
        return -1;
    }
    //  ROUTER_MANDATORY, sndtimeo 0, and the reply bytes one client may
    //  make the router hold (common/replyq.h).
    self->replies = replyq_new (self->clients, (size_t) self->options.reply_queue_bytes);
    if (!self->replies) {
        return -1;
    }
    zsock_set_rcvtimeo (self->clients, 0);
    zsock_set_sndhwm (self->clients, RL_ROUTER_SNDHWM_MESSAGES);
    zsock_set_rcvhwm (self->clients, RL_ROUTER_RCVHWM_MESSAGES);
    zsock_set_maxmsgsize (self->clients, (int) RL_FRAME_SIZE_MAX);
    zsock_set_linger (self->clients, 0);
    if (zsock_bind (self->clients, "%s", self->options.bind) < 0) {
        rl_error ("cannot bind %s: %s", self->options.bind, zmq_strerror (zmq_errno ()));
        return -1;
    }
    if (self->options.metrics_bind
        && !(self->metrics = router_metrics_new (self->options.metrics_bind))) {
        return -1;
    }
    zloop_reader (self->loop, self->clients, router_on_client_readable, self);
    int tick_ms = RL_ROUTER_TICK_MS;
    if (self->options.deadline_ms / 4 < tick_ms) {
        tick_ms = (int) (self->options.deadline_ms / 4); //  short test deadlines
    }
    zloop_timer (self->loop, (size_t) (tick_ms > 0 ? tick_ms : 1), 0, router_on_tick, self);
    self->refresh_next_ms = zclock_mono () + self->options.refresh_ms;
    return 0;
}

static void
s_close (router_t *self)
{
    //  Answer what is still open, so that no client waits for its timeout.
    while (self->pending && self->pending_head >= 0) {
        router_pending_expire (self, &self->pending[self->pending_head]);
    }
    router_metrics_destroy (&self->metrics); //  stops the HTTP thread
    zloop_destroy (&self->loop);
    for (size_t i = 0; i < self->shard_count; i++) {
        router_shard_destroy (&self->shards[i]);
    }
    while (self->retired) {
        r_shard_t *next = self->retired->next;
        router_shard_destroy (&self->retired);
        self->retired = next;
    }
    replyq_destroy (&self->replies);
    zsock_destroy (&self->clients);
    rl_client_clear_curve ();
    rl_auth_destroy (&self->auth);
    if (self->subs) {
        for (uint32_t i = 0; i < RL_ROUTER_SUBS_MAX; i++) {
            free (self->subs[i].positions);
        }
    }
    free (self->shards);
    ring_destroy (&self->ring);
    free (self->subs);
    free (self->sub_free);
    free (self->pending);
    free (self->pending_free);
    free (self->owners);
    free (self->ids);
    free (self->group_count);
    free (self->frame_buf);
}

int
main (int argc, char **argv)
{
    router_t self = {0};
    s_cli_t cli = {0};
    if (s_parse_options (argc, argv, &self.options, &cli) != 0) {
        fprintf (stderr, "(run 'router --help' for usage)\n"); //  the reason: one line above
        options_args_free (&cli.args);
        return 2;
    }
    if (cli.check_config) {
        printf ("router: the options%s%s are valid\n", cli.args.path ? " and " : "",
                cli.args.path ? cli.args.path : "");
        options_args_free (&cli.args);
        return 0;
    }
    rl_log_set_format (cli.log_format);
    rl_log_init ("router", self.options.name);
    if (cli.log_level >= 0) {
        rl_log_set_level ((rl_log_level_t) cli.log_level);
    }
    char err[256];
    if (failpoint_init (err, sizeof (err)) != 0) {
        rl_error ("RL_FAILPOINTS: %s", err);
        options_args_free (&cli.args);
        return 2;
    }
    zsys_init ();
    self.started_ms = zclock_mono ();
    self.sub_head = self.sub_tail = self.pending_head = self.pending_tail = -1;
    if (s_open (&self) != 0) {
        s_close (&self);
        options_args_free (&cli.args);
        return zsys_interrupted ? 0 : 1;
    }
    rl_log_event (
        RL_LOG_INFO, "start", "serving %s, ring epoch %" PRIu64 " (%zu shards), deadline %ld ms",
        self.options.bind, ring_epoch (self.ring), self.shard_count, self.options.deadline_ms);
    if (rl_auth_insecure (self.auth)) {
        rl_warn ("INSECURE (--insecure): no CURVE, no authentication, no roles: anyone who "
                 "reaches %s can send anything",
                 self.options.bind);
    } else {
        rl_info ("CURVE on, public key %s, %zu keys in the role key sets of %s",
                 zcert_public_txt (rl_auth_cert (self.auth)), rl_auth_key_count (self.auth),
                 self.options.keys_dir);
    }
    zloop_start (self.loop); //  returns on SIGINT/SIGTERM
    rl_log_event (RL_LOG_INFO, "stop",
                  "stopping: %" PRIu64 " requests, %" PRIu64 " dropped, %" PRIu64
                  " refused, %" PRIu64 " busy, %" PRIu64 " wrong_shard, %" PRIu64
                  " frozen, %" PRIu64 " late replies, %" PRIu64 " expired sub-requests, %" PRIu64
                  " bad replies, %" PRIu64 " ring refreshes, %" PRIu64 " failed allocations",
                  self.requests, self.dropped, self.malformed, self.busy, self.wrong_shard,
                  self.frozen, self.late, self.expired_subs, self.bad_replies, self.refreshes,
                  self.nomem);
    s_close (&self);
    options_args_free (&cli.args);
    return 0;
}
