/*  replkit.h: the load of the replication tests (test_replication.c,
    test_replication_fence.c, test_replication_quorum.c;
    docs/replication.md, "Tests").

    A load is seeded transfers between test accounts 1..accounts of one tag
    and ledger on one shard (account 1 is the operator, free to go negative;
    a third of the transfers come from it): batches of 1..batch_max, each
    record's outcome kept in the load's outcome log (tk_outcomes_*), ids
    counted up from id_base. rk_load_start seeds it from RL_SEED, or the
    clock, and prints the seed so that a run can be replayed; rk_finish
    settles every open outcome on the shard given, retries a sample of the
    ids (each must keep its outcome), drives two more batches and runs the
    strong conservation check.

    rk_status and rk_repl ask an endpoint its status and its repl_status
    records, asserting that it answers. rk_promote_call promotes the standby
    at an endpoint as an operator does (an answer lost with the standby's
    socket is asked again; a primary answers ok): 0, or how it was refused
    (RL_CLIENT_TIMEOUT: no answer); rk_promote asserts 0; rk_wait_serving waits until the process
   there serves as the primary (a promoted standby answers status as a standby until it has
   reopened).
*/
#ifndef RL_REPLKIT_H
#define RL_REPLKIT_H

#include <stddef.h>
#include <stdint.h>

#include "testkit.h"

#define RK_BATCH_MAX       64
#define RK_CALL_TIMEOUT_MS 5000
#define RK_BUSY_WAIT_MS    20000 //  rk_drive sends a batch answered busy again this long

typedef struct {
    uint64_t tag;
    uint32_t ledger;
    uint64_t accounts; //  at least 3
    uint64_t id_base;
    size_t batch_max; //  1..RK_BATCH_MAX
    tk_outcomes_t log;
    uint64_t rng;
} rk_load_t;

void rk_load_start (rk_load_t *self, const char *test);
rl_transfer_t rk_new_transfer (rk_load_t *self);
//  Sends `batches` batches, each answered (status ok; a batch answered
//  busy, by a primary stalled a moment, is sent again for up to
//  RK_BUSY_WAIT_MS); the answers go into the log and the model.
void rk_drive (rk_load_t *self, rl_client_t *client, size_t batches, tk_model_t *model);
void rk_finish (rk_load_t *self, rl_client_t *client, tk_model_t *model);

rl_status_rec_t rk_status (const char *endpoint);
size_t rk_repl (const char *endpoint, rl_repl_rec_t recs[RL_REPL_RECORDS_MAX]);
int rk_promote_call (const char *endpoint);
void rk_promote (const char *endpoint);
void rk_wait_serving (const char *endpoint);

#endif
