/*  test_send_sync.c: the shard's "sent <= synced" assertion can fire.

    Every message a shard sends carries the sequence of the group commit
    that justifies it, and the server asserts, as it sends, that this
    commit is synced. The test-only failpoint shard.send_before_sync makes
    the server send a writing turn's messages before its commit: the shard
    must stop on the assertion (SIGABRT) rather than send the reply.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "testkit.h"

static void
test_send_before_sync_aborts (void **state)
{
    (void) state;
    harness_t *h = harness_new ("send_sync");
    assert_non_null (h);
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    static char fp[] = "RL_FAILPOINTS=shard.send_before_sync=error";
    shard.env[0] = fp;
    //  Read-only turns (the readiness check) write nothing and do not hit it.
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    assert_non_null (client);
    rl_account_t account = tk_account (1, 0x5e, 1, 0);
    rl_result_rec_t result;
    int rc = rl_client_create_accounts (client, &account, 1, &result, 2000);
    assert_int_not_equal (rc, 0); //  no reply: the shard stopped before sending it
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, shard.pid, 10000, &wstatus), 0);
    assert_true (WIFSIGNALED (wstatus));
    assert_int_equal (WTERMSIG (wstatus), SIGABRT);
    rl_client_destroy (&client);
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_send_before_sync_aborts),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
