/*  test_chains_crash.c: a linked chain in flight when its shard dies. A
    real shard (--durability manual-wal: its WAL stays in process memory
    until each group commit flushes and syncs it, so SIGKILL drops whatever
    was not group-committed) is killed while it applies a chain of four
    members (a transfer, a pending transfer, a post of part of it, and a
    transfer closing the chain), at each point of the group commit (the
    failpoints shard.before_commit, shard.after_write, shard.after_sync and
    shard.after_reply at the chain's turn) and by a SIGKILL from outside
    while the request is in flight.

    After each crash the shard restarts without failpoints, and the chain
    is all or nothing: every member is found by lookup, or none is. Then
    the same chain is sent again: exists for every member when it was
    applied, ok for every member when it was not, so it is applied exactly
    once. At the end the strong conservation check runs (balances equal the
    model, nothing pending or reserved once the rest is voided).
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

#define TAG             0x434841494eull //  "CHAIN"
#define LEDGER          980
#define ACCOUNTS        8
#define MEMBERS         4
#define CALL_TIMEOUT_MS 4000

static const char *s_points[] = {
    "shard.before_commit", "shard.after_write", "shard.after_sync", "shard.after_reply", NULL,
};
#define POINTS (sizeof (s_points) / sizeof (s_points[0]))

static uint64_t s_next = 1;
static tk_model_t s_model;

//  The chain of one case: 1 pays c1, 1 authorises 50 to c2, captures 20 of
//  it, and pays c3; the pending transfer is members[1].
static void
s_chain (rl_transfer_t *members)
{
    uint64_t c = 2 + s_next % (ACCOUNTS - 3);
    uint64_t base = 1000 + 10 * s_next++;
    members[0] = tk_transfer (tk_id (base, TAG), tk_id (1, TAG), tk_id (c, TAG), 10, LEDGER);
    members[1] = tk_transfer (tk_id (base + 1, TAG), tk_id (1, TAG), tk_id (c + 1, TAG), 50,
                              LEDGER);
    members[1].flags = RL_TRANSFER_PENDING;
    members[2] = (rl_transfer_t){.id = tk_id (base + 2, TAG),
                                 .debit_account_id = tk_id (1, TAG),
                                 .pending_id = members[1].id,
                                 .amount = 20,
                                 .flags = RL_TRANSFER_POST_PENDING_TRANSFER};
    members[3] = tk_transfer (tk_id (base + 3, TAG), tk_id (1, TAG), tk_id (c + 2, TAG), 7, LEDGER);
    for (int i = 0; i < MEMBERS - 1; i++) {
        members[i].flags |= RL_TRANSFER_LINKED;
    }
}

static void
s_send (rl_client_t *client, const rl_transfer_t *members, uint32_t want)
{
    rl_result_rec_t r[MEMBERS];
    assert_int_equal (rl_client_create_transfers (client, members, MEMBERS, r, CALL_TIMEOUT_MS), 0);
    for (int i = 0; i < MEMBERS; i++) {
        if (r[i].result != want) {
            fail_msg ("member %d: %s, expected %s", i, rl_result_name (r[i].result),
                      rl_result_name (want));
        }
    }
}

//  How many members lookup finds.
static int
s_found (rl_client_t *client, const rl_transfer_t *members)
{
    rl_id_t ids[MEMBERS];
    rl_transfer_t out[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        ids[i] = members[i].id;
    }
    assert_int_equal (rl_client_lookup_transfers (client, ids, MEMBERS, out, CALL_TIMEOUT_MS), 0);
    int found = 0;
    for (int i = 0; i < MEMBERS; i++) {
        found += out[i].timestamp != 0;
    }
    return found;
}

static void
s_case (harness_t *h, tk_shard_t *shard, const char *point)
{
    static char fp_env[128];
    bool external = point == NULL;
    printf ("case %s\n", external ? "external SIGKILL" : point);
    rl_transfer_t members[MEMBERS];
    s_chain (members);
    if (!external) {
        snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=%s=crash@1", point);
        shard->env[0] = fp_env;
        shard->env[1] = NULL;
    }
    assert_true (tk_shard_start (h, shard) > 0);
    rl_client_t *client = rl_client_new (shard->endpoint);
    assert_non_null (client);
    if (external) {
        uint8_t body[MEMBERS * RL_TRANSFER_SIZE];
        for (int i = 0; i < MEMBERS; i++) {
            codec_encode_transfer (&members[i], body + i * RL_TRANSFER_SIZE);
        }
        rl_header_t rh;
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        //  In flight: queued before the kill, maybe read, maybe committed.
        rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, sizeof (body), MEMBERS,
                        10 + (int) (s_next % 20), &rh, &reply, &reply_size);
        free (reply);
        harness_kill (h, shard->pid, SIGKILL);
    } else {
        rl_result_rec_t r[MEMBERS];
        (void) rl_client_create_transfers (client, members, MEMBERS, r, 2000);
    }
    rl_client_destroy (&client);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, shard->pid, 20000, &wstatus), 0);
    shard->pid = -1;
    if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL) {
        harness_keep (h);
        fail_msg ("the shard did not die by SIGKILL (status 0x%x)", wstatus);
    }
    shard->env[0] = NULL;

    //  Restart: all or nothing, then applied exactly once.
    assert_true (tk_shard_start (h, shard) > 0);
    client = rl_client_new (shard->endpoint);
    int found = s_found (client, members);
    printf ("  %d of %d members found after the restart\n", found, MEMBERS);
    if (found != 0 && found != MEMBERS) {
        harness_keep (h);
        fail_msg ("a chain applied in part: %d of %d members", found, MEMBERS);
    }
    s_send (client, members, found ? RL_EXISTS : RL_OK);
    s_send (client, members, RL_EXISTS);
    assert_int_equal (s_found (client, members), MEMBERS);
    tk_model_apply (&s_model, &members[0]);
    rl_transfer_t posted = members[1];
    posted.amount = 20;
    tk_model_apply (&s_model, &posted);
    tk_model_apply (&s_model, &members[3]);
    //  The pending transfer's rest was released by the post: nothing pending.
    rl_id_t pending_credit = members[1].credit_account_id;
    rl_account_t a;
    assert_int_equal (rl_client_lookup_accounts (client, &pending_credit, 1, &a, CALL_TIMEOUT_MS),
                      0);
    assert_int_equal (a.credits_pending, 0);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, shard, SIGTERM), 0);
}

static int
s_setup (void **state)
{
    *state = harness_new ("chains_crash");
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
test_chains_crash_matrix (void **state)
{
    harness_t *h = *state;
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    shard.durability = "manual-wal";
    shard.checkpoint_transfers = 3; //  checkpoints between the cases
    tk_shard_prepare_accounts (h, &shard, TAG, LEDGER, ACCOUNTS);
    tk_model_init (&s_model, TAG, ACCOUNTS);
    for (int round = 0; round < 2; round++) {
        for (size_t point = 0; point < POINTS; point++) {
            s_case (h, &shard, s_points[point]);
        }
    }
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    tk_check_conservation (client, &s_model, 3 * 2 * POINTS);
    printf ("test_chains_crash: %zu cases, %lu transfers\n", 2 * POINTS,
            (unsigned long) s_model.ok);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_chains_crash_matrix, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
