/*  test_pending_crash.c: the crash matrix of pending transfers. A real
    shard (--durability manual-wal: its WAL stays in process memory until
    each group commit flushes and syncs it, so SIGKILL drops whatever was
    not group-committed) is killed at each step of a pending transfer's
    life, at each point of the group commit, and restarted.

    Steps: the pending transfer's create; its post (of part of it); its
    void; its expiry at a tick (a timeout of 3 s, while the shard runs);
    its expiry at recovery (a timeout of 1 s, the shard down meanwhile).
    Points: the failpoints shard.before_commit, shard.after_write,
    shard.after_sync and shard.after_reply at the first turn that writes
    (the step's), and a SIGKILL from outside while the step's request is in
    flight (for the expiry: around its time); for the expiry at recovery,
    the failpoint pending.recovery_expired (before the recovery's commit)
    and a SIGKILL right after the start.

    After each crash the shard restarts without failpoints and the step is
    settled: the record is looked up (found: it was applied), and sent
    again with the same id, which either applies it then or answers exists
    (never applied twice); an expired transfer can never be posted or
    voided, and its amount is released. The model takes every post once.
    At the end every pending transfer has been posted, voided or has
    expired, and the strong conservation check runs: balances equal the
    model, nothing pending or reserved, histories sum to the balances.
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

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "testkit.h"

#define TAG             0x50454e44ull //  "PEND"
#define LEDGER          979
#define ACCOUNTS        8
#define CALL_TIMEOUT_MS 4000

typedef enum { STEP_PENDING, STEP_POST, STEP_VOID, STEP_EXPIRY, STEP_EXPIRY_DOWN, STEPS } s_step_t;
static const char *s_step_names[STEPS] = {"pending", "post", "void", "expiry at a tick",
                                          "expiry at recovery"};
static const char *s_points[] = {
    "shard.before_commit", "shard.after_write", "shard.after_sync", "shard.after_reply", NULL,
};
#define POINTS (sizeof (s_points) / sizeof (s_points[0]))
static const char *s_recovery_points[] = {"pending.recovery_expired", NULL};
#define RECOVERY_POINTS (sizeof (s_recovery_points) / sizeof (s_recovery_points[0]))

static uint64_t s_next = 1;
static tk_model_t s_model;

static rl_transfer_t
s_pending (uint64_t credit, uint64_t amount, uint32_t timeout)
{
    rl_transfer_t t = tk_transfer (tk_id (1000 + s_next++, TAG), tk_id (1, TAG),
                                   tk_id (credit, TAG), amount, LEDGER);
    t.flags = RL_TRANSFER_PENDING;
    t.timeout = timeout;
    return t;
}

static rl_transfer_t
s_resolve (uint16_t flag, const rl_transfer_t *p, uint64_t amount)
{
    rl_transfer_t t = {.id = tk_id (1000 + s_next++, TAG),
                       .debit_account_id = p->debit_account_id,
                       .pending_id = p->id,
                       .amount = amount,
                       .flags = flag};
    return t;
}

static uint32_t
s_send (rl_client_t *client, const rl_transfer_t *t)
{
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (client, t, 1, &r, CALL_TIMEOUT_MS), 0);
    return r.result;
}

//  The model takes an applied post once, with the amount it posted.
static void
s_model_post (const rl_transfer_t *p, uint64_t amount)
{
    rl_transfer_t posted = *p;
    posted.amount = amount;
    tk_model_apply (&s_model, &posted);
}

static bool
s_found (rl_client_t *client, rl_id_t id)
{
    rl_transfer_t out;
    assert_int_equal (rl_client_lookup_transfers (client, &id, 1, &out, CALL_TIMEOUT_MS), 0);
    return out.timestamp != 0;
}

static rl_account_t
s_account (rl_client_t *client, uint64_t a)
{
    rl_id_t id = tk_id (a, TAG);
    rl_account_t out;
    assert_int_equal (rl_client_lookup_accounts (client, &id, 1, &out, CALL_TIMEOUT_MS), 0);
    return out;
}

//  Sends t while the shard may die (failpoint armed, or killed from outside
//  right after the send): the answer, if any, is ignored; what counts is
//  what the restarted shard holds.
static void
s_send_dying (harness_t *h, tk_shard_t *shard, const rl_transfer_t *t, bool external)
{
    rl_client_t *client = rl_client_new (shard->endpoint);
    assert_non_null (client);
    if (t && external) {
        uint8_t body[RL_TRANSFER_SIZE];
        codec_encode_transfer (t, body);
        rl_header_t rh;
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        //  In flight: queued before the kill, maybe read, maybe committed.
        rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, RL_TRANSFER_SIZE, 1, 20, &rh, &reply,
                        &reply_size);
        free (reply);
        harness_kill (h, shard->pid, SIGKILL);
    } else if (t) {
        rl_result_rec_t r;
        (void) rl_client_create_transfers (client, t, 1, &r, 2000);
    } else if (external) {
        zclock_sleep (2900 + (int) (s_next % 200)); //  the expiry is due at about 3 s
        harness_kill (h, shard->pid, SIGKILL);
    }
    rl_client_destroy (&client);
    int wstatus = 0;
    //  An expiry's failpoint fires at the tick after the timeout, unless a
    //  start slower than the timeout (a loaded machine) expired it at
    //  recovery, whose commit is not this point's (the case of the expiry
    //  at recovery covers it): then it is killed here.
    if (harness_wait_exit (h, shard->pid, 20000, &wstatus) != 0 && !t && !external) {
        printf ("  the start outlasted the timeout: expired at recovery; killed\n");
        harness_kill (h, shard->pid, SIGKILL);
        assert_int_equal (harness_wait_exit (h, shard->pid, 20000, &wstatus), 0);
    }
    shard->pid = -1;
    if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL) {
        harness_keep (h);
        fail_msg ("the shard did not die by SIGKILL (status 0x%x)", wstatus);
    }
}

static void
s_case (harness_t *h, tk_shard_t *shard, s_step_t step, const char *point)
{
    static char fp_env[128];
    bool external = point == NULL;
    printf ("case %s at %s\n", s_step_names[step], external ? "external SIGKILL" : point);
    uint64_t credit = 2 + s_next % (ACCOUNTS - 1);
    rl_transfer_t p = s_pending (credit, 100, step == STEP_EXPIRY ? 3 : step == STEP_EXPIRY_DOWN);
    //  1. Before: the pending transfer exists (except when it is the step).
    assert_true (tk_shard_start (h, shard) > 0);
    rl_client_t *client = rl_client_new (shard->endpoint);
    if (step != STEP_PENDING) {
        assert_int_equal (s_send (client, &p), RL_OK);
    }
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, shard, SIGTERM), 0);
    if (step == STEP_EXPIRY_DOWN) {
        zclock_sleep (1100); //  down while its time passes
    }

    //  2. The step, with the crash point armed at its first write.
    if (!external) {
        snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=%s=crash@1", point);
        shard->env[0] = fp_env;
        shard->env[1] = NULL;
    }
    uint64_t post_amount = 40;
    rl_transfer_t q = step == STEP_POST   ? s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 40)
                      : step == STEP_VOID ? s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0)
                                          : p;
    if (step == STEP_EXPIRY_DOWN && !external) {
        int wstatus = tk_shard_run_to_exit (h, shard, 20000); //  dies in its recovery
        assert_true (WIFSIGNALED (wstatus) && WTERMSIG (wstatus) == SIGKILL);
        shard->pid = -1;
    } else if (step == STEP_EXPIRY_DOWN) {
        assert_true (tk_shard_start (h, shard) > 0); //  recovered: its expiry committed
        harness_kill (h, shard->pid, SIGKILL);
        int wstatus = 0;
        assert_int_equal (harness_wait_exit (h, shard->pid, 20000, &wstatus), 0);
        shard->pid = -1;
    } else {
        assert_true (tk_shard_start (h, shard) > 0);
        s_send_dying (h, shard, step == STEP_EXPIRY ? NULL : &q, external);
    }
    shard->env[0] = NULL;

    //  3. Restart, settle: applied once, whatever the crash took.
    assert_true (tk_shard_start (h, shard) > 0);
    client = rl_client_new (shard->endpoint);
    switch (step) {
        case STEP_PENDING: {
            bool found = s_found (client, p.id);
            assert_int_equal (s_send (client, &p), found ? RL_EXISTS : RL_OK);
            assert_int_equal (s_account (client, credit).credits_pending, 100);
            rl_transfer_t post = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
            assert_int_equal (s_send (client, &post), RL_OK);
            s_model_post (&p, 100);
            break;
        }
        case STEP_POST: {
            bool found = s_found (client, q.id);
            assert_int_equal (s_send (client, &q), found ? RL_EXISTS : RL_OK);
            assert_int_equal (s_send (client, &q), RL_EXISTS);
            s_model_post (&p, post_amount);
            rl_transfer_t again = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
            assert_int_equal (s_send (client, &again), RL_PENDING_TRANSFER_ALREADY_POSTED);
            break;
        }
        case STEP_VOID: {
            bool found = s_found (client, q.id);
            assert_int_equal (s_send (client, &q), found ? RL_EXISTS : RL_OK);
            rl_transfer_t post = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
            assert_int_equal (s_send (client, &post), RL_PENDING_TRANSFER_ALREADY_VOIDED);
            break;
        }
        default: {
            //  Expired at the tick before the crash, at recovery, or at the
            //  post itself: never posted, its amount released.
            rl_transfer_t post = s_resolve (RL_TRANSFER_POST_PENDING_TRANSFER, &p, 0);
            assert_int_equal (s_send (client, &post), RL_PENDING_TRANSFER_EXPIRED);
            rl_transfer_t void_ = s_resolve (RL_TRANSFER_VOID_PENDING_TRANSFER, &p, 0);
            assert_int_equal (s_send (client, &void_), RL_PENDING_TRANSFER_EXPIRED);
            break;
        }
    }
    rl_account_t a = s_account (client, credit);
    assert_int_equal (a.credits_pending, 0);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, shard, SIGTERM), 0);
}

static int
s_setup (void **state)
{
    *state = harness_new ("pending_crash");
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

static void
test_pending_crash_matrix (void **state)
{
    harness_t *h = *state;
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    shard.durability = "manual-wal";
    shard.checkpoint_transfers = 3; //  checkpoints between the steps
    tk_shard_prepare_accounts (h, &shard, TAG, LEDGER, ACCOUNTS);
    tk_model_init (&s_model, TAG, ACCOUNTS);
    size_t cases = 0;
    for (int step = 0; step < STEPS; step++) {
        bool down = step == STEP_EXPIRY_DOWN;
        for (size_t point = 0; point < (down ? RECOVERY_POINTS : POINTS); point++) {
            s_case (h, &shard, (s_step_t) step, down ? s_recovery_points[point] : s_points[point]);
            cases++;
        }
    }
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    tk_check_conservation (client, &s_model, 2 * POINTS);
    printf ("test_pending_crash: %zu cases, %lu posts\n", cases, (unsigned long) s_model.ok);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_pending_crash_matrix, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
