/*  rlbench.h: what the parts of rlbench share (bench/README.md, "Harness").

    rlbench.c          options, signals, the spawned shard, the fsync probe,
                       the ring and the shards' status, main
    rlbench_workload.c ids, accounts and their set-up, the random draws of
                       accounts and amounts (uniform, zipf, hot, cross-shard)
    rlbench_engine.c   the connections, requests in flight, replies,
                       timeouts and the closed and open loops
    rlbench_report.c   the conservation check (common/check.h) and the text
                       and JSON reports
    histogram.c        the latency histogram (shared with shard_bench)
    spawn.c            the shard of --spawn-shard (shared with shard_bench)

    The design notes, the check and the limits are in rlbench.c's top
    comment. Every part works on the one bench_t of the run, from one
    thread.
*/
#ifndef RL_RLBENCH_H
#define RL_RLBENCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <czmq.h>

#include "check.h"
#include "client.h"
#include "histogram.h"
#include "ring.h"
#include "spawn.h"

//  Limits ------------------------------------------------------------------------
#define RLB_ENDPOINTS_MAX        64                   //  --connect endpoints
#define RLB_CONNECTIONS_MAX      256                  //  clients (connections)
#define RLB_WINDOW_MAX           RL_CLIENT_WINDOW_MAX //  requests in flight per connection
#define RLB_INFLIGHT_RECORDS_MAX (16u << 20)          //  connections x window x batch
#define RLB_ACCOUNTS_MAX         (8u << 20)           //  accounts of one run
#define RLB_SHARDS_MAX           64                   //  shards whose status is read
#define RLB_PROBE_WRITES_MAX     100000               //  fdatasync probe writes
#define RLB_PROBE_WRITES_DEFAULT 200
#define RLB_PROBE_BLOCK_BYTES    4096
#define RLB_TIMEOUT_MS_DEFAULT                                                                     \
    RL_CLIENT_TIMEOUT_MS                    //  a request with no reply after this is unknown
#define RLB_ADMIN_TIMEOUT_MS          10000 //  status, ring, account creation, check reads
#define RLB_CREATE_ATTEMPTS           8     //  sends of one create_accounts batch (busy is retried)
#define RLB_STOP_TIMEOUT_MS           10000 //  a spawned shard gets this long to exit on SIGTERM
#define RLB_READY_TIMEOUT_MS          20000 //  a spawned shard must answer status within this
#define RLB_QUIESCE_TIMEOUT_MS        15000 //  wait for no live two-phase attempts
#define RLB_HISTORY_AUTO_ACCOUNTS_MAX 64    //  --history auto: on up to this many accounts
#define RLB_PICK_ATTEMPTS_MAX         64    //  draws for a credit account of the wanted kind
#define RLB_HARD_DEADLINE_EXTRA_S     300   //  the process exits this long after the planned end
#define RLB_COUNT_MODE_BUDGET_S       3600  //  planned length of a --count run, for the alarm
#define RLB_FUND_AMOUNT               1000000000ull //  minor units given to each customer (--limits)
#define RLB_AMOUNT_MAX                100           //  transfer amounts are 1..this
#define RLB_RESOLVE_INITIAL           1024    //  --transfer-pending: first room for resolutions
#define RLB_VOID_ONE_IN               5       //  a resolution is a void 1 in this many times
#define RLB_RESOLVE_DRAIN_MS          60000   //  the end of the run: the last resolutions' bound
#define RLB_OPEN_WINDOW_DEFAULT       256     //  window when --mode open and none given
#define RLB_OPEN_SPIN_NS              2000000 //  open loop: sleep-poll below this gap
#define RLB_OPEN_NAP_NS               50000   //  ... in naps of this length
#define RLB_INVALID_SENT_FRACTION     0.99    //  open loop: sent / offered below this is INVALID

_Static_assert(RLB_CONNECTIONS_MAX <= RL_CLIENT_WAIT_MAX, "one wait covers every connection");
_Static_assert(RLB_TIMEOUT_MS_DEFAULT > RL_ROUTER_DEADLINE_MS,
               "the client gives up after the router would answer outcome_unknown");

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
    double hot_credit;       //  % of transfers crediting the merchant (customer 0)
    double transfer_pending; //  % of new transfers created pending (posted or voided later)
    double cross_fraction;   //  < 0: whatever the account draws give
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
    const char *cert;       //  --cert (or $RL_CERT): this client's secret certificate
    const char *server_key; //  --server-key (or $RL_SERVER_KEY): the key of --connect
    bool insecure;          //  --insecure: plain TCP
} options_t;

//  State -------------------------------------------------------------------------
//  What a workload record is (--transfer-pending).
typedef enum {
    REC_PLAIN = 0, //  a transfer
    REC_PENDING,   //  a pending transfer (authorised; posted or voided later)
    REC_POST,      //  the post of pending transfer pending_seq, all of it
    REC_VOID,      //  its void
} rec_kind_t;

typedef struct {
    uint32_t debit;       //  account index
    uint32_t credit;      //  account index
    uint32_t amount;      //  minor units (a post or void: the pending transfer's)
    uint32_t kind;        //  rec_kind_t
    uint64_t pending_seq; //  a post or void: its pending transfer's id (lo)
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
    slot_t *slots; //  its client is bench_t's clients[i]
    int free_slots;
} conn_t;

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
    uint64_t ns;                          //  namespace: the hi half of every id of the run
    uint64_t account_total;               //  customers + operators
    rl_id_t operator_ids[RLB_SHARDS_MAX]; //  --limits: the operator of each shard
    rl_check_t *check;                    //  the model of the conservation check
    bool model_lost;                      //  an unknown outcome could not be recorded
    uint64_t rng;                         //  rl_rand state of the workload
    int *account_shard;                   //  ring shard index per account, -1 without a ring
    uint32_t **bucket;                    //  customer account indexes per shard
    uint64_t *bucket_size;
    ring_t *ring;
    size_t shard_count;
    shard_info_t shards[RLB_SHARDS_MAX];
    bool status_complete; //  every ring shard answered status before and after
    //  zipf (YCSB's generator, Gray et al.)
    double zipf_zetan, zipf_alpha, zipf_eta, zipf_half_pow;
    //  connections
    conn_t conns[RLB_CONNECTIONS_MAX];
    rl_client_t *clients[RLB_CONNECTIONS_MAX];
    int window;
    int next_conn;
    uint64_t next_seq;
    //  results
    hist_t latency;         //  create_transfers requests, measured
    hist_t lookup_latency;  //  lookup_accounts requests, measured
    hist_t lag;             //  open loop: actual - intended send time
    uint64_t results[256];  //  per-record result codes, measured
    uint64_t results_other; //  codes >= 256
    uint64_t statuses[32];  //  message-level statuses other than ok, measured
    uint64_t timeouts;      //  requests with no reply in time (all)
    uint64_t bad_replies;   //  replies that did not decode or match their request
    uint64_t ok_measured;   //  transfers ok or exists, measured
    uint64_t ok_total;      //  acknowledged ok or exists, all (model)
    uint64_t setup_ok;      //  of those, set-up transfers (not the workload's)
    //  --transfer-pending: the pending transfers to post or void, a FIFO
    //  (kind REC_PENDING: post or void by the draw; REC_VOID: void it)
    rec_t *resolve;
    size_t resolve_head, resolve_count, resolve_cap;
    bool resolve_only;         //  the end of the run: requests of resolutions alone
    bool resolve_lost;         //  out of memory: a pending transfer may stay pending
    uint64_t pending_ok;       //  pending transfers applied (all, not only measured)
    uint64_t pending_cross_ok; //  of those, cross-shard ones (accounts on two shards)
    uint64_t posts_ok;         //  posts applied
    uint64_t voids_ok;         //  voids applied
    uint64_t create_requests_measured;
    uint64_t lookup_requests_measured;
    uint64_t sent_transfers_measured;
    uint64_t cross_sent_measured;
    uint64_t offered_requests; //  open loop: arrivals in the measured window
    uint64_t sent_requests;    //  open loop: of those, sent before the end
    uint64_t measure_start_ns, measure_end_ns, last_reply_ns;
    //  progress of the current second
    uint64_t tick_ok, tick_errors, tick_requests;
    //  fsync probe
    double probe_p50_ms, probe_p99_ms;
    int probe_done;
    //  spawned shard
    spawn_shard_t shard;
    zcert_t *cert; //  this client's keypair (NULL: --insecure)
    char spawn_dir[PATH_MAX];
} bench_t;

//  rlbench.c -----------------------------------------------------------------------
extern volatile sig_atomic_t rlb_interrupted; //  SIGINT or SIGTERM: stop the run
uint64_t rlb_now_ns (void);                   //  CLOCK_MONOTONIC
void rlb_sleep_ns (uint64_t ns);
FILE *rlb_out (const bench_t *b); //  progress: stderr with --json, else stdout
//  After the run: adopts the newest ring of the cluster when it changed
//  during the run (a rebalance), so that the check asks each account's
//  owner; the shards of both rings are kept (rlbench.c).
void rlb_refresh_ring (bench_t *b);
//  Reads every shard's status into before or after; the number that answered.
size_t rlb_read_status (bench_t *b, bool after);
const char *rlb_durability_name (uint32_t durability);
//  One summary of all shards' modes: the common one, or "mixed".
const char *rlb_durability_summary (const bench_t *b);

//  rlbench_workload.c ----------------------------------------------------------------
void rlb_rand_seed (bench_t *b, uint64_t seed);
double rlb_rand_unit (bench_t *b);                //  [0, 1)
uint64_t rlb_rand_below (bench_t *b, uint64_t n); //  [0, n), n > 0
rl_id_t rlb_account_id (const bench_t *b, uint64_t index);
rl_id_t rlb_transfer_id (const bench_t *b, uint64_t seq);
//  The ring shard of an id; -1 without a ring.
int rlb_shard_of_id (const bench_t *b, rl_id_t id);
rl_id_t rlb_id_of_index (const bench_t *b, uint64_t index);
int rlb_plan_accounts (bench_t *b);
int rlb_find_operators (bench_t *b);
//  The check's model of every account of the run; 0, or -1 when out of memory.
int rlb_model_new (bench_t *b);
int rlb_create_accounts (bench_t *b, rl_client_t *client);
int rlb_fund_accounts (bench_t *b, rl_client_t *client);
int rlb_merchant_setup (bench_t *b, rl_client_t *client);
void rlb_zipf_init (bench_t *b);
uint32_t rlb_pick (bench_t *b);
int rlb_build_buckets (bench_t *b);
uint32_t rlb_pick_credit (bench_t *b, uint32_t debit);
//  The next transfer of the workload: debit, credit, amount and kind (a
//  resolution due takes the place of a new transfer, --transfer-pending).
rec_t rlb_next_transfer (bench_t *b);
//  A pending transfer (rec, pending_seq its id) to post or void later;
//  force_void: void it (its outcome was unknown, or a resolution failed).
void rlb_resolve_push (bench_t *b, rec_t rec, bool force_void);
size_t rlb_resolve_queued (const bench_t *b);

//  rlbench_engine.c ------------------------------------------------------------------
int rlb_connect (bench_t *b);
void rlb_disconnect (bench_t *b);
//  The warm-up and the measured run, then the drain of every reply.
void rlb_run (bench_t *b);

//  rlbench_report.c ------------------------------------------------------------------
//  The conservation check of the run; true when it passed (prints why not).
bool rlb_check (bench_t *b);
void rlb_report_text (const bench_t *b, const char *check);
//  0, or -1 when out of memory.
int rlb_report_json (const bench_t *b, const char *check);

#endif
