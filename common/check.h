/*  check.h: the conservation check, one for the tests and the benchmarks.

    Invariant 1 of the design in its strong form ("a conservation check in a
    test means ..."): a program that moves money records what the cluster
    told it, and at the end rl_check_run verifies that the cluster agrees.

    The model: every account of the run (id and ledger), and per account
    the debits and credits of every transfer acknowledged ok or exists. A
    transfer whose outcome the program does not know (no reply, a record
    answered outcome_unknown or storage_error, or a code it does not know)
    is recorded as unknown and settled at the end by lookup_transfers, asked
    of its debit account's shard: found with the same fields means applied.

    rl_check_run, in order:
      1. waits (bounded) until every shard reports no live two-phase
         attempt and no prepared record, and its request count has stopped
         moving (a late request of the run could still change a balance);
         fails when attempts are still live at the deadline;
      2. settles the unknown transfers (lookups retried with backoff);
      3. reads every account (batched per client): found, on its ledger,
         debits and credits posted equal the model, nothing pending or
         reserved;
      4. per ledger, sum(debits_posted) == sum(credits_posted);
      5. with history on: each account's history (paged) sums to its
         balances, and the histories hold every applied transfer twice
         (debit and credit side); a pending transfer and a void post
         nothing and are not counted, a post counts with the amount it
         posted;
      6. a sample of the applied transfers is found again, with its fields;
      7. at least ok_min transfers took effect, and ok_min > 0: a check
         that would pass on an empty cluster is not a check.
    Each failure is printed on options->report (up to S_FAILURES_SHOWN
    lines for account mismatches) and the run returns false.

    INVARIANTS
    1. The model only grows: rl_check_applied and the settlement add, nothing
       subtracts.
    2. An unknown transfer is counted applied only when found with the
       debit, credit and amount it was sent with; found with other fields
       fails the check.

    LIMITS
    accounts_max accounts (rl_check_new); unknown transfers as memory
    allows (the list doubles); RL_CHECK_SAMPLE_MAX sampled transfers;
    RL_CHECK_LEDGERS_MAX ledgers; lookups of one unknown batch at most
    RL_CHECK_SETTLE_ATTEMPTS_MAX times.
*/
#ifndef RL_CHECK_H
#define RL_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "proto.h"

#define RL_CHECK_SAMPLE_MAX            1024 //  applied transfers looked up again
#define RL_CHECK_LEDGERS_MAX           64   //  distinct ledgers of one model
#define RL_CHECK_SETTLE_ATTEMPTS_MAX   20   //  lookups of a batch of unknown transfers
#define RL_CHECK_SETTLE_BACKOFF_MS_MAX 1000
#define RL_CHECK_QUIET_POLL_MS         20 //  interval of the wait for a quiet cluster

typedef struct rl_check_t rl_check_t;

//  The client to ask about an account: its shard, or a router. Never NULL.
typedef rl_client_t *(rl_check_client_fn) (void *arg, rl_id_t account_id);

typedef struct {
    //  Every shard of the cluster, for the wait (step 1). At least one.
    const char *const *shard_endpoints;
    size_t shard_count;
    rl_check_client_fn *client_for; //  reads and lookups
    void *client_arg;
    int timeout_ms;       //  per call
    int quiet_timeout_ms; //  step 1
    uint64_t ok_min;      //  step 7; must be > 0
    bool history;         //  step 5
    FILE *report;         //  failures are printed here
    const char *prefix;   //  before every line printed, e.g. "rlbench: CHECK: "
} rl_check_options_t;

#define RL_CHECK_LEDGER_ANY 0 //  an account whose ledger the check takes as it reads it

//  A model for up to accounts_max accounts; NULL when out of memory.
rl_check_t *rl_check_new (size_t accounts_max);
void rl_check_destroy (rl_check_t **self_p);

//  Adds an account; its index (0, 1, ...), or -1 when the model is full.
//  ledger: the one it must be on, or RL_CHECK_LEDGER_ANY (then the sums of
//  step 4 are per ledger the account reports).
int64_t rl_check_add_account (rl_check_t *self, rl_id_t id, uint32_t ledger);
size_t rl_check_account_count (const rl_check_t *self);
rl_id_t rl_check_account_id (const rl_check_t *self, size_t index);

//  A transfer acknowledged ok or exists, between accounts of the model.
void rl_check_applied (rl_check_t *self, rl_id_t transfer_id, size_t debit, size_t credit,
                       uint64_t amount);
//  A transfer whose outcome is unknown. 0, or -1 when out of memory.
int rl_check_unknown (rl_check_t *self, rl_id_t transfer_id, size_t debit, size_t credit,
                      uint64_t amount);

//  For a caller that keeps its own model (the tests): adds to an account's
//  expected debits and credits posted, and to the count of transfers that
//  took effect. Transfers given this way are not sampled (step 6).
void rl_check_expect (rl_check_t *self, size_t index, uint64_t debits, uint64_t credits);
void rl_check_expect_applied (rl_check_t *self, uint64_t transfers);

//  Runs the check (see above). True when every step passed.
bool rl_check_run (rl_check_t *self, const rl_check_options_t *options);

//  Counts: transfers applied (acknowledged, plus unknown found applied),
//  unknown transfers recorded, and how the settlement found them.
uint64_t rl_check_applied_count (const rl_check_t *self);
size_t rl_check_unknown_count (const rl_check_t *self);
uint64_t rl_check_settled_applied (const rl_check_t *self);
uint64_t rl_check_settled_absent (const rl_check_t *self);

#endif
