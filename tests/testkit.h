/*  testkit.h: shared pieces of the integration tests that move money.

    - tk_shard_*: start a real shard process through the harness, on a free
      port and in the harness directory, and wait until it answers status.
    - tk_model_*: what the balances must be, built from the results the
      client saw (ok, or an unknown outcome settled by lookup).
    - tk_outcomes_*: the transfers a crash or storage-fault test sent, their
      outcomes, and their settling by lookup and retry after a restart.
    - tk_check_conservation: invariant 1 in its strong form, through the
      one conservation check of the project (common/check.h, also used by
      rlbench): waits for the cluster to be quiet, then every account
      equals the model (posted; nothing pending or reserved) and the sum of
      its own history, per ledger sum(debits) == sum(credits), the
      histories hold every transfer twice, and at least `ok_min` transfers
      took effect. It fails the cmocka test loudly otherwise, and it cannot
      pass on an empty cluster (ok_min > 0 is required).

    Test accounts are numbered: account i has id {lo = i, hi = tag}, where
    the tag keeps the accounts of different tests apart.
*/
#ifndef RL_TESTKIT_H
#define RL_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"
#include "harness.h"
#include "proto.h"

#define TK_TIMEOUT_MS       5000  //  per call in tests
#define TK_READY_TIMEOUT_MS 20000 //  a shard answers status within this after start
#define TK_ACCOUNTS_MAX     4096
#define TK_START_ATTEMPTS   3     //  fresh ports tried when a bind fails
#define TK_QUIET_TIMEOUT_MS 20000 //  the conservation check waits this long for no live attempt

typedef struct {
    char name[32];
    int port;
    char endpoint[64];
    char data_dir[512];
    char ring_file[512];       //  empty: none
    const char *durability;    //  "sync", "nosync", "manual-wal"
    long checkpoint_transfers; //  0: default
    char *env[8];              //  extra environment, NULL-terminated
    char *args[12];            //  extra arguments, NULL-terminated
    bool insecure;             //  start with --insecure instead of the test's keys
    pid_t pid;
} tk_shard_t;

//  Security of a test (docs/security.md): every harness gets a key-set
//  directory, harness_dir/keys, with a key per shard and router name (made
//  on first use) and the test's own key "tester" in every role; the test
//  process speaks CURVE with it (rl_client_set_curve), and every shard and
//  router it starts runs with --keys. tk_keys_dir makes
//  the directory (and switches the client library to it) if needed.
const char *tk_keys_dir (harness_t *h);
//  Makes the client library speak CURVE as the test's own key again, after
//  a test switched it (rl_client_set_curve) to another.
void tk_curve_restore (void);
//  The public key of NAME in ROLE (made if missing); Z85, static storage
//  of the last call.
const char *tk_key (harness_t *h, const char *role, const char *name);
//  Connects a DEALER of a test like the client library does (CURVE with
//  the endpoint's key); asserts on failure.
void tk_connect (void *dealer, const char *endpoint);
//  A new DEALER (a zsock_t *) connected to endpoint that speaks CURVE as
//  NAME (its secret certificate in the key sets, KEYDIR/private/NAME.key_secret,
//  made with tk_key) and pins the key of shard SERVER (KEYDIR/shard/SERVER.key):
//  a test that acts as a given peer shard. Receives within TK_TIMEOUT_MS.
void *tk_dealer_as (harness_t *h, const char *name, const char *server, const char *endpoint);

//  Fills name, port, endpoint, data_dir (under the harness dir).
void tk_shard_init (harness_t *h, tk_shard_t *shard, const char *name);
//  Spawns the shard and waits until it answers status. pid, or -1.
pid_t tk_shard_start (harness_t *h, tk_shard_t *shard);
//  Sends sig and waits for the exit; returns the wait status, or -1.
int tk_shard_stop (harness_t *h, tk_shard_t *shard, int sig);
//  Spawns the shard and returns at once (pid, or -1): for a shard armed to
//  die at a point that its start may reach, where tk_shard_start would
//  take the death for a taken port and start it again elsewhere.
pid_t tk_shard_spawn (harness_t *h, tk_shard_t *shard);
//  Runs the shard expecting it to exit by itself (a crash failpoint at
//  start, say) within timeout_ms: its wait status, or -1 (then it is killed).
int tk_shard_run_to_exit (harness_t *h, tk_shard_t *shard, int timeout_ms);
bool tk_wait_ready (const char *endpoint, int timeout_ms);
//  Does the log of process NAME (HARNESS_DIR/NAME.log) hold needle?
bool tk_log_contains (harness_t *h, const char *name, const char *needle);
//  How often needle is in the log of process name (0 when there is none).
size_t tk_log_count (harness_t *h, const char *name, const char *needle);
//  Starts the shard, creates accounts 1..count (account 1 free to go
//  negative, the others limited by their credits: debits must not exceed
//  credits), each ok, and stops it with SIGTERM (exit 0).
void tk_shard_prepare_accounts (harness_t *h, tk_shard_t *shard, uint64_t tag, uint32_t ledger,
                                size_t count);

rl_id_t tk_id (uint64_t lo, uint64_t tag);
rl_account_t tk_account (uint64_t i, uint64_t tag, uint32_t ledger, uint16_t flags);
rl_transfer_t tk_transfer (rl_id_t id, rl_id_t debit, rl_id_t credit, uint64_t amount,
                           uint32_t ledger);

typedef struct {
    uint64_t tag;
    size_t count; //  accounts 1..count
    uint64_t debits[TK_ACCOUNTS_MAX + 1];
    uint64_t credits[TK_ACCOUNTS_MAX + 1];
    uint64_t ok; //  transfers that took effect
} tk_model_t;

void tk_model_init (tk_model_t *model, uint64_t tag, size_t count);
//  Account numbers are the `lo` of the ids.
void tk_model_apply (tk_model_t *model, const rl_transfer_t *transfer);

//  Checks invariant 1 against `model`, through `client` (a shard or router).
void tk_check_conservation (rl_client_t *client, const tk_model_t *model, uint64_t ok_min);

//  The same, asking each account's own shard: client_for(ctx, id) picks it.
typedef rl_client_t *(tk_client_for_fn) (void *ctx, rl_id_t account_id);
void tk_check_conservation_by (tk_client_for_fn *client_for, void *ctx, const tk_model_t *model,
                               uint64_t ok_min);

//  The same, with the quiet wait (step 1) also covering `also` (endpoints
//  of shards the cluster's ring no longer names, such as a shard a
//  rebalance removed: a two-phase entry left there must end too).
void tk_check_conservation_also (rl_client_t *client, const tk_model_t *model, uint64_t ok_min,
                                 const char *const *also, size_t also_count);

//  Rings ------------------------------------------------------------------------
typedef struct ring_t ring_t;
//  The ring the process at endpoint serves (get_ring, within timeout_ms:
//  a replicated primary's answer waits for its standby); fails the test
//  when it cannot be read. The caller destroys it.
ring_t *tk_ring_of (const char *endpoint, int timeout_ms);
//  load_ring of ring into the process at endpoint with the test's key:
//  the call's result (0, a refusal's status, or a client error).
int tk_ring_load (const char *endpoint, const ring_t *ring, int timeout_ms);

//  Waits (bounded) until no shard has live attempts, undelivered decisions
//  or prepared records. False on timeout.
bool tk_wait_quiet (rl_client_t **shards, size_t count, int timeout_ms);
//  The same for every shard of the ring that `client` (a router or a shard)
//  serves: the ring is fetched with get_ring.
bool tk_wait_cluster_quiet (rl_client_t *client, int timeout_ms);

//  Outcomes -------------------------------------------------------------------
//  The transfers a crash or storage-fault test sent, and what became of
//  each: unknown when sent, then its answer. After a restart,
//  tk_outcomes_settle looks every one up: an acknowledged transfer must be
//  found, a refused one must not, an unknown one that is found was applied
//  (into the model); the unknown ones not found are sent again with the same
//  ids and execute afresh. tk_outcomes_retry_sample then checks that ids
//  keep their outcome (ok answers exists). Failures fail the cmocka test.
#define TK_OUTCOME_UNKNOWN UINT32_MAX

typedef struct {
    rl_transfer_t t;
    uint32_t result; //  final outcome; TK_OUTCOME_UNKNOWN while unknown
} tk_outcome_t;

typedef struct {
    tk_outcome_t *records; //  the test's array of `capacity` records
    size_t capacity;
    size_t count;
} tk_outcomes_t;

//  A failure a retry would repeat: neither ok nor retryable.
bool tk_result_is_business (uint32_t result);
//  Records t as sent, its outcome unknown (count < capacity).
void tk_outcomes_sent (tk_outcomes_t *self, const rl_transfer_t *t);
//  The answers rs[0..n) to the n transfers recorded from `first`: each ok
//  (applied to the model) or a business failure; storage_error stays
//  unknown when storage_error_unknown; anything else fails the test.
void tk_outcomes_answered (tk_outcomes_t *self, size_t first, const rl_result_rec_t *rs, size_t n,
                           bool storage_error_unknown, tk_model_t *model);
//  Settles every unknown outcome (see above) and checks every known one.
//  Returns how many were unknown; *applied_p: how many of those were found.
size_t tk_outcomes_settle (tk_outcomes_t *self, rl_client_t *client, tk_model_t *model,
                           int timeout_ms, size_t *applied_p);
//  Sends `samples` settled transfers again, drawn with rl_rand from *rng:
//  each gets its original outcome.
void tk_outcomes_retry_sample (const tk_outcomes_t *self, rl_client_t *client, size_t samples,
                               uint64_t *rng, int timeout_ms);

//  Bad input ------------------------------------------------------------------
//  One table of hostile frames, for every program that takes client
//  requests (the shard and the router). Each test says what it expects of
//  each case: the status of the error reply, TK_BAD_DROPPED (no reply at
//  all), or TK_BAD_SKIPPED (not sent: the case means something else there).
//  Each bad frame is followed by a valid status request (request id 1), so
//  that the first reply tells whether the bad frame was answered or dropped.
typedef enum {
    TK_BAD_EMPTY_FRAME,
    TK_BAD_SHORT_FRAME,       //  10 bytes, less than a header
    TK_BAD_WRONG_MAGIC,       //  status request with a wrong magic
    TK_BAD_WRONG_VERSION,     //  status request of version 9
    TK_BAD_UNKNOWN_OPERATION, //  operation 99
    TK_BAD_RESERVED_ACK,      //  a shard-to-shard operation (two-phase ack)
    TK_BAD_RESERVED_PREPARE,  //  a shard-to-shard operation (two-phase prepare)
    TK_BAD_COUNT_OVER_BODY,   //  create_transfers: count 2, one record
    TK_BAD_COUNT_UNDER_BODY,  //  create_transfers: count 1, one record and a byte
    TK_BAD_OVERSIZE_BATCH,    //  create_transfers: RL_BATCH_RECORDS_MAX + 1 records
    TK_BAD_REQUEST_STATUS,    //  status request with a non-zero status field
    TK_BAD_REQUEST_EPOCH,     //  status request with a non-zero epoch field
    TK_BAD_GARBAGE,           //  200 bytes of noise that carry the request id
    TK_BAD_DUPLICATE_ID,      //  create_transfers: the same transfer twice
    TK_BAD_LOAD_RING,         //  load_ring with 16 bytes of noise
    TK_BAD_CASES
} tk_bad_case_t;

#define TK_BAD_DROPPED UINT32_MAX        //  expect no reply: the frame is dropped
#define TK_BAD_SKIPPED (UINT32_MAX - 1u) //  not sent

typedef struct {
    uint32_t status[TK_BAD_CASES]; //  per case: a status, TK_BAD_DROPPED or TK_BAD_SKIPPED
    bool epoch_checked;            //  every error reply must carry `epoch`
    uint64_t epoch;
} tk_bad_want_t;

typedef struct {
    size_t dropped;  //  cases sent and expected (and seen) dropped
    size_t answered; //  cases sent and answered with their error status
} tk_bad_counts_t;

const char *tk_bad_name (tk_bad_case_t bad);
//  Writes a valid request header into out (RL_HEADER_SIZE bytes); returns
//  its size. The raw-frame tests build on it.
size_t tk_request_header (uint8_t *out, uint16_t op, uint64_t request_id, uint32_t count);
//  Writes a lookup_accounts of the ids 1..RL_BATCH_RECORDS_MAX (with tag)
//  into out (TK_LOOKUP_ALL_FRAME_SIZE bytes): the largest reply, one account
//  record per id, for the reply-queue tests.
#define TK_LOOKUP_ALL_FRAME_SIZE (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_ID_SIZE)
void tk_lookup_all_frame (uint8_t *out, uint64_t request_id, uint64_t tag);
//  A field of /proc/PID/status ("VmRSS:", "VmHWM:"), in bytes.
long tk_proc_status_bytes (pid_t pid, const char *field);
//  Resets pid's peak resident size (VmHWM) to its current size.
void tk_proc_reset_peak (pid_t pid);
//  Writes the frame of one case into out (of out_size bytes, at least
//  TK_BAD_FRAME_SIZE_MAX); `transfer` is the record the frames carry.
//  Returns the frame's size.
#define TK_BAD_FRAME_SIZE_MAX (RL_HEADER_SIZE + (RL_BATCH_RECORDS_MAX + 2) * RL_TRANSFER_SIZE)
size_t tk_bad_frame (tk_bad_case_t bad, const rl_transfer_t *transfer, uint64_t request_id,
                     uint8_t *out, size_t out_size);
//  Sends every case not skipped to `endpoint` on a fresh DEALER, in table
//  order, and fails the cmocka test on the first reply that differs from
//  `want`. Case c goes with request id 9000 + c.
tk_bad_counts_t tk_bad_input_run (const char *endpoint, const rl_transfer_t *transfer,
                                  const tk_bad_want_t *want);

//  An oversize frame: a first frame one byte over RL_FRAME_SIZE_MAX before
//  a valid status request, on a fresh DEALER. True when no answer came
//  within a second (the process dropped the connection before it held the
//  frame), false when the request was answered.
bool tk_oversize_dropped (const char *endpoint);

#endif
