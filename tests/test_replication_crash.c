/*  test_replication_crash.c: the crash matrix of replication under
    cross-shard transfers (docs/replication.md, "Tests").

    A cluster of shard s1, a semi-synchronous primary, and s2 without a
    standby, every process with --durability manual-wal (a SIGKILL drops
    what was not group-committed). The test is the client: it sends each
    transfer to the shard of its debit account, which coordinates it, so
    s1 coordinates the transfers from its accounts to s2's and takes part
    in those from s2's accounts to its own. Each case:

    1. Pending transfers across shards both ways (long ones, and ones of
       1 s that expire during the case: s1's in every case, s2's towards
       s1 in a third of them), plain transfers both ways; all acknowledged.
    2. A new standby (an empty directory, its own port) and the primary
       restarted with it; one of the two is armed to crash at the case's
       point. After one write of s1's own is acknowledged (the standby
       holds a complete copy), a load runs until the armed process dies by
       SIGKILL (checked, and the point's record in RL_FAILPOINT_FILE):
       batches to both shards at once, each with cross-shard transfers, a
       transfer of the shard's own, a post or a void of a pending transfer
       and, every other round, a new pending transfer.
    3. The primary died: its standby is promoted (the admin op) and a ring
       of the next epoch that gives s1 the standby's endpoint is loaded
       into it and s2; the promoted shard is the next case's primary. (If
       the primary died at its start, before its new standby held a
       complete copy, promote is refused and the primary restarts, as an
       operator would.) The standby died: the primary says stalled and
       answers a new write busy, and serves again once the standby is
       back and caught up.
    4. Settled: the two-phase records end; every acknowledged transfer is
       on its debit shard; every unknown outcome is looked up, and sent
       again with its id (found: `exists`; else it executes now or fails
       for good); every known outcome is sent again and gets its original
       answer (exactly-once over every id); the accounts' pending amounts
       are exactly the pending transfers still pending once those of 1 s
       have expired, the posted amounts the model's; then every pending
       transfer is posted or voided, and the strong conservation check
       runs (nothing pending or reserved, balances as the model, histories
       that sum), with the audit and no two-phase alarm on either shard.

    Points: the six replication points on the path of a write
    (repl.primary.before_write (the standbys may hold a batch the primary
    never wrote), .written, .shipped, .released at a hit drawn in 3..16:
    the primary dies; repl.standby.applied, .acked: the standby dies), and
    the two-phase points of s1 as coordinator and as participant (tp.*,
    at the first hit: the primary dies). RL_SEED=<n> replays a run,
    RL_CASE=<k> runs case k alone. The cluster, the load's records and
    steps 3 and 4 are tests/replxkit.h's.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "replkit.h"
#include "replxkit.h"
#include "rl_rand.h"
#include "testkit.h"

#define LEDGER         743
#define LOAD_WAIT_MS   1000  //  a batch's answer in the load (then its outcome is unknown)
#define DEATH_WAIT_MS  15000 //  the armed process dies within this under load
#define EXPIRY_WAIT_MS 15000 //  pending transfers of 1 s expire within this

typedef enum { ARM_PRIMARY, ARM_STANDBY } s_arm_t;

typedef struct {
    const char *point;
    s_arm_t arm;
    unsigned nth_max; //  0: crash at the first hit; else at a hit drawn in 3..nth_max (the load
                      //  makes 4-9 a round)
} s_case_t;

static const s_case_t s_cases[] = {
    {"repl.primary.before_write", ARM_PRIMARY, 16},
    {"repl.primary.written", ARM_PRIMARY, 16},
    {"repl.primary.shipped", ARM_PRIMARY, 16},
    {"repl.primary.released", ARM_PRIMARY, 16},
    {"repl.standby.applied", ARM_STANDBY, 16},
    {"repl.standby.acked", ARM_STANDBY, 16},
    {"tp.coord.prepare_sent", ARM_PRIMARY, 0},
    {"tp.coord.decided", ARM_PRIMARY, 0},
    {"tp.coord.decision_synced", ARM_PRIMARY, 0},
    {"tp.coord.decision_sent", ARM_PRIMARY, 0},
    {"tp.coord.acked", ARM_PRIMARY, 0},
    {"tp.part.prepared", ARM_PRIMARY, 0},
    {"tp.part.prepare_synced", ARM_PRIMARY, 0},
    {"tp.part.applied", ARM_PRIMARY, 0},
    {"tp.part.apply_synced", ARM_PRIMARY, 0},
};
#define CASES (sizeof (s_cases) / sizeof (s_cases[0]))

//  Step 1: pending transfers both ways (long ones, and one of 1 s each
//  way that expires during the case), plain transfers; all acknowledged.
static void
s_before (rx_t *ctx, size_t k)
{
    ctx->count = 0;
    for (int s = 0; s < 2; s++) {
        size_t first = ctx->count;
        for (int i = 0; i < 2; i++) {
            rx_pending (ctx, s, 1 - s, RX_LONG_TIMEOUT_S);
        }
        if (s == 0 || k % 3 == 0) {
            //  s2's expiry, s1 its participant, waits out s1's fail-over
            //  (tried again 1 s, then 2 s later): in a third of the cases.
            rx_pending (ctx, s, 1 - s, 1);
        }
        rx_plain (ctx, s, 1 - s);
        rx_plain (ctx, s, s);
        rx_send (ctx, s == 0 ? ctx->c1 : ctx->c2, first, ctx->count - first);
    }
    rx_quiet (ctx); //  their decisions delivered: the restart below starts clean
}

//  Step 3 when the standby died: semi-synchronous, the primary stalls and
//  a new write is busy; the standby comes back, catches up, and the
//  primary serves again.
static void
s_standby_back (rx_t *ctx)
{
    rx_wait_state (ctx->primary.endpoint, RL_SHARD_STALLED, 5000);
    size_t i = rx_plain (ctx, 0, 1);
    rl_header_t rh;
    uint8_t body[RL_TRANSFER_SIZE];
    codec_encode_transfer (&ctx->recs[i].t, body);
    uint8_t *reply = NULL;
    size_t reply_size = 0;
    int rc = rl_client_call (ctx->c1, RL_OP_CREATE_TRANSFERS, body, RL_TRANSFER_SIZE, 1,
                             RX_CALL_TIMEOUT_MS, &rh, &reply, &reply_size);
    assert_true (rc == RL_STATUS_BUSY || (rc == 0 && rh.status == RL_STATUS_BUSY));
    free (reply);
    assert_int_equal (rx_spawn (ctx, &ctx->standby, false), -1);
    rx_wait_state (ctx->primary.endpoint, RL_SHARD_SERVING, TK_READY_TIMEOUT_MS);
}

static void
s_case (rx_t *ctx, size_t k)
{
    const s_case_t *c = &s_cases[k];
    harness_t *h = ctx->h;
    int64_t t0 = zclock_mono ();
    //  1. Before.
    s_before (ctx, k);
    //  2. A new standby (its own directory and port), the primary restarted
    //  with it; the armed one of the two runs until it dies under load.
    char spec[96], fp_name[32], dir_name[32];
    unsigned nth = c->nth_max ? 3 + (unsigned) (rl_rand_next (&ctx->rng) % (c->nth_max - 2)) : 0;
    if (nth) {
        snprintf (spec, sizeof spec, "%s=crash@%u", c->point, nth);
    } else {
        snprintf (spec, sizeof spec, "%s=crash", c->point);
    }
    snprintf (fp_name, sizeof fp_name, "c%zu-fp.log", k);
    rx_arm (ctx, spec, fp_name);
    printf ("case %zu: %s at %s\n", k, c->arm == ARM_PRIMARY ? "primary" : "standby", spec);
    if (ctx->standby.pid > 0) {
        tk_shard_stop (h, &ctx->standby, SIGKILL); //  the last case's: replaced
    }
    snprintf (dir_name, sizeof dir_name, "s1-c%zu", k);
    rx_standby_init (ctx, dir_name);
    tk_shard_t *armed = c->arm == ARM_PRIMARY ? &ctx->primary : &ctx->standby;
    int wstatus = rx_spawn (ctx, &ctx->standby, c->arm == ARM_STANDBY);
    assert_int_equal (tk_shard_stop (h, &ctx->primary, SIGTERM), 0);
    if (c->arm == ARM_PRIMARY) {
        wstatus = rx_spawn (ctx, &ctx->primary, true);
    } else if (rx_spawn (ctx, &ctx->primary, false) != -1) {
        fail_msg ("case %zu: the primary died at its start", k);
    }
    bool dead = wstatus != -1;
    int64_t t_armed = zclock_mono ();
    rl_client_set_send_timeout (ctx->c1, 200);
    rl_client_set_send_timeout (ctx->c2, 200);
    if (!dead) {
        //  One write of s1's own first: acknowledged once the standby holds
        //  a complete copy (or the armed one died meanwhile), so that the
        //  load's points come with a standby to promote.
        size_t i = rx_plain (ctx, 0, 0);
        uint64_t req;
        if (rx_send_batch (ctx, ctx->c1, i, 1, &req)) {
            rx_recv_batch (ctx, ctx->c1, i, 1, req, armed->pid, TK_READY_TIMEOUT_MS);
        }
    }
    int64_t deadline = zclock_mono () + DEATH_WAIT_MS;
    unsigned round = 0;
    while (!dead && !(dead = harness_wait_exit (h, armed->pid, 0, &wstatus) == 0)) {
        if (zclock_mono () > deadline) {
            harness_keep (h);
            fail_msg ("case %zu: %s never died at %s", k, armed->data_dir, c->point);
        }
        rx_round (ctx, round++, armed->pid, NULL, LOAD_WAIT_MS);
    }
    armed->pid = -1;
    char *hits = harness_read_file (ctx->fp_file, NULL);
    if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL || !hits
        || !strstr (hits, c->point)) {
        harness_keep (h);
        fail_msg ("case %zu: status 0x%x, failpoint record '%s'", k, wstatus, hits ? hits : "");
    }
    free (hits);
    size_t before = ctx->count;
    int64_t t_dead = zclock_mono ();
    //  3. Fail-over, or the primary without its standby.
    int promoted = c->arm == ARM_PRIMARY ? rk_promote_call (ctx->standby.endpoint) : -1;
    if (promoted == RL_STATUS_UNAVAILABLE) {
        //  It died before its new standby held a complete copy (its point
        //  came at its start): in semi mode it acknowledged nothing since,
        //  and the operator restarts it.
        printf ("  the standby was not seeded yet: the primary restarts\n");
        assert_int_equal (rx_spawn (ctx, &ctx->primary, false), -1);
        rl_client_destroy (&ctx->c1);
        ctx->c1 = rl_client_new (ctx->primary.endpoint);
    } else if (c->arm == ARM_PRIMARY) {
        assert_int_equal (promoted, 0);
        rx_fail_over (ctx); //  the next case's primary
    } else {
        s_standby_back (ctx);
    }
    int64_t t_back = zclock_mono ();
    //  4. Settle; exactly-once; pending amounts; conservation.
    rl_client_set_send_timeout (ctx->c1, RX_CALL_TIMEOUT_MS);
    rl_client_set_send_timeout (ctx->c2, RX_CALL_TIMEOUT_MS);
    rx_quiet (ctx);
    rx_settle (ctx);
    rx_quiet (ctx);
    rx_check_pending (ctx, EXPIRY_WAIT_MS);
    int64_t t_settled = zclock_mono ();
    rx_finish (ctx, EXPIRY_WAIT_MS);
    printf ("  %u rounds, %zu records before the crash; ms: restarts %ld, load %ld, back %ld, "
            "settled %ld, case %ld\n",
            round, before, (long) (t_armed - t0), (long) (t_dead - t_armed),
            (long) (t_back - t_dead), (long) (t_settled - t_back), (long) (zclock_mono () - t0));
}

static int
s_setup (void **state)
{
    *state = rx_new ("replication_crash");
    return *state ? 0 : -1;
}

static void
test_replication_crash_matrix (void **state)
{
    rx_t *ctx = *state;
    rx_start (ctx, "test_replication_crash", LEDGER, 0x52434d00000ull, 0);
    const char *only = getenv ("RL_CASE"); //  one case by index, to replay it
    for (size_t k = 0; k < CASES; k++) {
        if (!only || (size_t) atoi (only) == k) {
            s_case (ctx, k);
        }
    }
    tk_shard_t *all[] = {&ctx->primary, &ctx->standby, &ctx->s2};
    for (size_t i = 0; i < 3; i++) {
        if (all[i]->pid > 0) {
            tk_shard_stop (ctx->h, all[i], SIGTERM);
        }
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_replication_crash_matrix, s_setup, rx_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
