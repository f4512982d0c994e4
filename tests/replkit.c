/*  replkit.c: the load of the replication tests (replkit.h). */
#include "replkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>

#include "rl_rand.h"

void
rk_load_start (rk_load_t *self, const char *test)
{
    assert_true (self->accounts >= 3 && self->batch_max >= 1 && self->batch_max <= RK_BATCH_MAX);
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("%s: RL_SEED=%lu\n", test, (unsigned long) seed);
    self->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    self->log.count = 0;
}

rl_transfer_t
rk_new_transfer (rk_load_t *self)
{
    uint64_t n = self->accounts;
    uint64_t from = rl_rand_next (&self->rng) % 3 == 0 ? 1
                                                       : 2 + rl_rand_next (&self->rng) % (n - 1);
    uint64_t to = 2 + rl_rand_next (&self->rng) % (n - 1);
    if (to == from) {
        to = to == n ? 2 : to + 1;
    }
    return tk_transfer (tk_id (self->id_base + self->log.count, self->tag), tk_id (from, self->tag),
                        tk_id (to, self->tag), 1 + rl_rand_next (&self->rng) % 100, self->ledger);
}

void
rk_drive (rk_load_t *self, rl_client_t *client, size_t batches, tk_model_t *model)
{
    for (size_t b = 0; b < batches; b++) {
        rl_transfer_t ts[RK_BATCH_MAX];
        rl_result_rec_t rs[RK_BATCH_MAX];
        size_t first = self->log.count;
        size_t n = 1 + rl_rand_next (&self->rng) % self->batch_max;
        for (size_t i = 0; i < n; i++) {
            ts[i] = rk_new_transfer (self);
            tk_outcomes_sent (&self->log, &ts[i]);
        }
        //  A semi-synchronous primary stalled a moment (its standby
        //  reconnecting or re-seeded) answers busy: nothing applied, the
        //  ids not burned (docs/replication.md, "Stalled"); sent again.
        int64_t deadline = zclock_mono () + RK_BUSY_WAIT_MS;
        int rc = 0;
        while ((rc = rl_client_create_transfers (client, ts, n, rs, RK_CALL_TIMEOUT_MS))
                   == RL_STATUS_BUSY
               && zclock_mono () < deadline) {
            zclock_sleep (50);
        }
        assert_int_equal (rc, 0);
        tk_outcomes_answered (&self->log, first, rs, n, false, model);
    }
}

void
rk_finish (rk_load_t *self, rl_client_t *client, tk_model_t *model)
{
    size_t applied = 0;
    tk_outcomes_settle (&self->log, client, model, RK_CALL_TIMEOUT_MS, &applied);
    tk_outcomes_retry_sample (&self->log, client, 32, &self->rng, RK_CALL_TIMEOUT_MS);
    rk_drive (self, client, 2, model);
    tk_check_conservation (client, model, 10);
}

rl_status_rec_t
rk_status (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_status_rec_t st;
    assert_int_equal (rl_client_status (c, &st, RK_CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    return st;
}

size_t
rk_repl (const char *endpoint, rl_repl_rec_t recs[RL_REPL_RECORDS_MAX])
{
    rl_client_t *c = rl_client_new (endpoint);
    size_t count = 0;
    assert_int_equal (rl_client_repl_status (c, recs, &count, RK_CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    return count;
}

int
rk_promote_call (const char *endpoint)
{
    int rc = RL_CLIENT_TIMEOUT;
    for (int attempt = 0; attempt < 3 && rc == RL_CLIENT_TIMEOUT; attempt++) {
        rl_client_t *client = rl_client_new (endpoint);
        rl_header_t rh;
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        rc = rl_client_call (client, RL_OP_PROMOTE, NULL, 0, 0, RK_CALL_TIMEOUT_MS, &rh, &reply,
                             &reply_size);
        free (reply);
        rl_client_destroy (&client);
        if (rc == 0 && rh.status != RL_STATUS_OK) {
            rc = (int) rh.status; //  refused
        }
    }
    return rc;
}

void
rk_promote (const char *endpoint)
{
    assert_int_equal (rk_promote_call (endpoint), 0);
}

void
rk_wait_serving (const char *endpoint)
{
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    rl_status_rec_t st = {.state = RL_SHARD_STANDBY};
    while (zclock_mono () < deadline) {
        rl_client_t *client = rl_client_new (endpoint); //  new: the socket it knew closed
        int rc = rl_client_status (client, &st, 200);
        rl_client_destroy (&client);
        if (rc == 0 && st.state == RL_SHARD_SERVING) {
            break;
        }
        zclock_sleep (10);
    }
    assert_int_equal (st.state, RL_SHARD_SERVING);
}
