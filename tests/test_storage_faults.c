/*  test_storage_faults.c: faults of the disk under a shard, beyond kill -9.

    test_disk_full: the shard's data directory is a small tmpfs, mounted in
    a mount namespace private to this test (nothing outlives the test).
    Batches of transfers run until the disk is full. Then:
      - the shard enters its FAILED state: the failing request is answered
        storage_error, and so is every later request but status (reads too:
        memory may be ahead of disk); status answers with state `failed`;
        SIGTERM then stops it with exit code 3;
      - with the disk still full, a restart refuses to serve and says why;
      - once the file system has grown, a restart recovers: every transfer
        acknowledged ok is there, every unknown outcome is settled by
        lookup, retries of settled ids are never applied twice, and the
        strong conservation check passes.

    test_sync_error: the failpoint store.sync=error makes a group commit
    fail as an fsync that returns EIO would, under load. The batch whose
    sync failed is answered storage_error (its outcome is unknown: the write
    may or may not be on disk), the shard is FAILED as above, and the
    restart recovers as above. Its last round sends batches of 2,048, so
    that the failing sync is one a large turn waits for (it used to stop
    the shard on an assertion instead of making it FAILED).

    test_read_error: the failpoint store.iter=error ends a scan as a read
    error would (EIO, a checksum mismatch). A scan of recovery: the shard
    refuses to serve what it built from part of its store ("cannot
    recover the ledger"). A history read while serving: answered
    storage_error, not a part of the history, and the shard is FAILED as
    above. Without the fault, the restart recovers everything.

    test_disk_full needs CAP_SYS_ADMIN for the mount (CI and ./dev.sh test run as
    root); test_disk_full is skipped, loudly, where it is missing.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <czmq.h>

#include "rl_limits.h"
#include "rl_rand.h"
#include "testkit.h"

#define TAG                0x4449534bull //  "DISK"
#define LEDGER             4242
#define ACCOUNTS           12
#define BATCH              1000
#define BATCH_LARGE        2048 //  a turn of RL_SHARD_INLINE_SYNC_WRITES or more waits for its sync
#define TRANSFERS_MAX      400000 //  bound on the load: the disk must fill before
#define DISK_SMALL         "size=12m"
#define DISK_LARGE         "size=512m"
#define CALL_TIMEOUT_MS    10000
#define SHARD_EXIT_STORAGE 3

static tk_outcome_t s_records[TRANSFERS_MAX];
static tk_outcomes_t s_log = {.records = s_records, .capacity = TRANSFERS_MAX};
static uint64_t s_rng;

typedef struct {
    harness_t *h;
    char *disk; //  tmpfs mount point, or NULL
    bool mounted;
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    assert_non_null (ctx);
    ctx->h = harness_new ("storage_faults");
    *state = ctx;
    return ctx->h ? 0 : -1;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    if (ctx->mounted) {
        umount2 (ctx->disk, MNT_DETACH);
    }
    free (ctx->disk);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

//  A tmpfs of `options` at <harness>/disk, in a private mount namespace.
//  false when this process may not mount (not root).
static bool
s_mount_disk (s_ctx_t *ctx, const char *options)
{
    if (unshare (CLONE_NEWNS) != 0) {
        return false;
    }
    //  Mounts made from now on stay in this namespace (and its children).
    if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        return false;
    }
    ctx->disk = harness_path (ctx->h, "disk");
    assert_non_null (ctx->disk);
    assert_int_equal (mkdir (ctx->disk, 0755), 0);
    if (mount ("tmpfs", ctx->disk, "tmpfs", 0, options) != 0) {
        return false;
    }
    ctx->mounted = true;
    return true;
}

static void
s_grow_disk (s_ctx_t *ctx, const char *options)
{
    assert_true (ctx->mounted);
    if (mount ("tmpfs", ctx->disk, "tmpfs", MS_REMOUNT, options) != 0) {
        fail_msg ("cannot grow the test file system: %s", strerror (errno));
    }
}

static rl_transfer_t
s_new_transfer (void)
{
    //  From the operator (1) to a customer, or between customers.
    uint64_t from = rl_rand_next (&s_rng) % 4 == 0 ? 1 : 2 + rl_rand_next (&s_rng) % (ACCOUNTS - 1);
    uint64_t to = 2 + rl_rand_next (&s_rng) % (ACCOUNTS - 1);
    if (to == from) {
        to = to == ACCOUNTS ? 2 : to + 1;
    }
    return tk_transfer (tk_id (1000000 + s_log.count, TAG), tk_id (from, TAG), tk_id (to, TAG),
                        1 + rl_rand_next (&s_rng) % 50, LEDGER);
}

//  Sends batches of `batch` until one fails at the storage level (an
//  error status or no reply). Returns the message-level status of the
//  failing call.
static int
s_drive_until_failure (rl_client_t *client, tk_model_t *model, size_t batch)
{
    static rl_transfer_t ts[BATCH_LARGE];
    static rl_result_rec_t rs[BATCH_LARGE];
    assert_true (batch <= BATCH_LARGE);
    while (s_log.count + batch <= TRANSFERS_MAX) {
        size_t first = s_log.count;
        for (size_t i = 0; i < batch; i++) {
            ts[i] = s_new_transfer ();
            tk_outcomes_sent (&s_log, &ts[i]);
        }
        int rc = rl_client_create_transfers (client, ts, batch, rs, CALL_TIMEOUT_MS);
        if (rc != 0) {
            return rc; //  the whole batch's outcome is unknown
        }
        tk_outcomes_answered (&s_log, first, rs, batch, true, model);
    }
    fail_msg ("the storage never failed within %d transfers", TRANSFERS_MAX);
    return 0;
}

//  After a restart: every known outcome holds, every unknown one is settled
//  by lookup (present: applied), and a retry of each settled id changes
//  nothing (ok: exists; failure: the same failure; absent: executes once).
static void
s_settle (rl_client_t *client, tk_model_t *model)
{
    size_t applied = 0;
    size_t unknown = tk_outcomes_settle (&s_log, client, model, CALL_TIMEOUT_MS, &applied);
    //  A sample of retries of settled ids: never applied twice.
    tk_outcomes_retry_sample (&s_log, client, 64, &s_rng, CALL_TIMEOUT_MS);
    printf ("settled: %zu unknown outcomes, %zu of them applied\n", unknown, applied);
}

//  The shard is FAILED: status answers with that state, every other
//  request (writes and reads) gets storage_error, and SIGTERM stops it with
//  the storage exit code.
static void
s_expect_failed_state (harness_t *h, tk_shard_t *shard)
{
    rl_client_t *client = rl_client_new (shard->endpoint);
    assert_non_null (client);
    rl_status_rec_t status;
    assert_int_equal (rl_client_status (client, &status, CALL_TIMEOUT_MS), 0);
    assert_int_equal (status.state, RL_SHARD_FAILED);
    rl_id_t id = tk_id (1, TAG);
    rl_account_t account;
    assert_int_equal (rl_client_lookup_accounts (client, &id, 1, &account, CALL_TIMEOUT_MS),
                      RL_STATUS_STORAGE_ERROR);
    rl_transfer_t t = tk_transfer (tk_id (999, TAG), tk_id (1, TAG), tk_id (2, TAG), 1, LEDGER);
    rl_result_rec_t r;
    int rc = rl_client_create_transfers (client, &t, 1, &r, CALL_TIMEOUT_MS);
    if (rc != RL_STATUS_STORAGE_ERROR) {
        harness_dump_log (h, shard->name); //  -1: no answer within the timeout
        fail_msg ("a write to the failed shard was answered %d", rc);
    }
    assert_int_equal (rl_client_status (client, &status, CALL_TIMEOUT_MS), 0);
    assert_int_equal (status.state, RL_SHARD_FAILED);
    rl_client_destroy (&client);
    int wstatus = tk_shard_stop (h, shard, SIGTERM);
    if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != SHARD_EXIT_STORAGE) {
        harness_dump_log (h, shard->name);
        fail_msg ("the failed shard did not stop with exit code %d (status 0x%x)",
                  SHARD_EXIT_STORAGE, wstatus);
    }
}

static void
test_disk_full (void **state)
{
    s_ctx_t *ctx = *state;
    if (!s_mount_disk (ctx, DISK_SMALL)) {
        printf ("test_disk_full: SKIPPED: cannot mount a tmpfs here (%s); run as root\n",
                strerror (errno));
        skip ();
    }
    s_rng = 0xd15cull;
    s_log.count = 0;
    tk_shard_t shard;
    tk_shard_init (ctx->h, &shard, "s1");
    snprintf (shard.data_dir, sizeof (shard.data_dir), "%s/s1", ctx->disk);
    shard.checkpoint_transfers = 20000;
    tk_shard_prepare_accounts (ctx->h, &shard, TAG, LEDGER, ACCOUNTS);
    assert_true (tk_shard_start (ctx->h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    int rc = s_drive_until_failure (client, &model, BATCH);
    printf ("test_disk_full: the disk filled after %zu transfers\n", s_log.count);
    if (rc != RL_STATUS_STORAGE_ERROR) {
        harness_dump_log (ctx->h, shard.name); //  -1: no answer within the timeout
        fail_msg ("the batch that filled the disk was answered %d", rc);
    }
    rl_client_destroy (&client);
    s_expect_failed_state (ctx->h, &shard);
    assert_true (tk_log_contains (ctx->h, "s1", "No space left on device"));

    //  Still full: the restart refuses to serve and says why.
    assert_true (tk_shard_start (ctx->h, &shard) < 0);
    assert_true (tk_log_contains (ctx->h, "s1", "cannot open database"));

    //  Room again: the restart recovers everything acknowledged.
    s_grow_disk (ctx, DISK_LARGE);
    assert_true (tk_shard_start (ctx->h, &shard) > 0);
    client = rl_client_new (shard.endpoint);
    s_settle (client, &model);
    tk_check_conservation (client, &model, s_log.count / 2);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (ctx->h, &shard, SIGTERM), 0);
}

static void
test_sync_error (void **state)
{
    s_ctx_t *ctx = *state;
    s_rng = 0x5e4cull;
    s_log.count = 0;
    tk_shard_t shard;
    tk_shard_init (ctx->h, &shard, "s2");
    shard.checkpoint_transfers = 3000;
    tk_shard_prepare_accounts (ctx->h, &shard, TAG, LEDGER, ACCOUNTS);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    //  The last round's batches are large: the turn waits for its own sync
    //  (server.c, s_sync_inline), and the failure comes inside that wait.
    for (int round = 0; round < 4; round++) {
        static char fp_env[64];
        snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=store.sync=error@%d", 2 + round * 3);
        shard.env[0] = fp_env;
        shard.env[1] = NULL;
        assert_true (tk_shard_start (ctx->h, &shard) > 0);
        shard.env[0] = NULL;
        rl_client_t *client = rl_client_new (shard.endpoint);
        //  The batch whose sync failed is answered storage_error: its
        //  outcome is unknown until the lookup after the restart.
        int rc = s_drive_until_failure (client, &model, round == 3 ? BATCH_LARGE : BATCH);
        if (rc != RL_STATUS_STORAGE_ERROR) {
            harness_dump_log (ctx->h, shard.name);
            fail_msg ("round %d: the failed sync was answered %d", round, rc);
        }
        rl_client_destroy (&client);
        s_expect_failed_state (ctx->h, &shard);
        assert_true (tk_log_contains (ctx->h, "s2", "Input/output error"));
        assert_true (tk_shard_start (ctx->h, &shard) > 0);
        client = rl_client_new (shard.endpoint);
        s_settle (client, &model);
        rl_client_destroy (&client);
        assert_int_equal (tk_shard_stop (ctx->h, &shard, SIGTERM), 0);
    }
    assert_true (tk_shard_start (ctx->h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    tk_check_conservation (client, &model, s_log.count / 2);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (ctx->h, &shard, SIGTERM), 0);
}

//  The lines of the failpoint record at path (0 when there is none).
static size_t
s_record_lines (const char *path)
{
    char *text = harness_read_file (path, NULL);
    size_t lines = 0;
    for (const char *c = text; c && *c; c++) {
        lines += *c == '\n';
    }
    free (text);
    return lines;
}

static void
test_read_error (void **state)
{
    s_ctx_t *ctx = *state;
    s_rng = 0x4eadull;
    s_log.count = 0;
    tk_shard_t shard;
    tk_shard_init (ctx->h, &shard, "s3");
    shard.checkpoint_transfers = 1000; //  history in the store's index, not only in memory
    tk_shard_prepare_accounts (ctx->h, &shard, TAG, LEDGER, ACCOUNTS);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    assert_true (tk_shard_start (ctx->h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    static rl_transfer_t ts[BATCH];
    static rl_result_rec_t rs[BATCH];
    for (int batch = 0; batch < 3; batch++) {
        for (size_t i = 0; i < BATCH; i++) {
            ts[i] = s_new_transfer ();
            tk_outcomes_sent (&s_log, &ts[i]);
        }
        assert_int_equal (rl_client_create_transfers (client, ts, BATCH, rs, CALL_TIMEOUT_MS), 0);
        tk_outcomes_answered (&s_log, s_log.count - BATCH, rs, BATCH, false, &model);
    }
    rl_client_destroy (&client);
    assert_true (tk_shard_stop (ctx->h, &shard, SIGKILL) >= 0); //  recovery replays
    //  From here on no checkpoint runs: one started after a recovery scans
    //  the store in the background, so the reads of a start would depend on
    //  how far it got before the next kill, and the count below would not
    //  tell where the next start's recovery ends.
    shard.checkpoint_transfers = RL_SHARD_CHECKPOINT_TRANSFERS;

    //  A read of recovery fails: the shard does not serve what it built
    //  from part of its store.
    static char fp_env[64], file_env[600];
    char *record = harness_path (ctx->h, "s3-fp.log");
    snprintf (file_env, sizeof (file_env), "RL_FAILPOINT_FILE=%s", record);
    snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=store.iter=error@1");
    shard.env[0] = fp_env;
    shard.env[1] = NULL;
    assert_true (tk_shard_start (ctx->h, &shard) < 0);
    assert_true (tk_log_contains (ctx->h, "s3", "read: Input/output error (failpoint)"));
    assert_true (tk_log_contains (ctx->h, "s3", "cannot recover the ledger"));

    //  A read while serving fails: the reads of recovery counted first
    //  (delay:0 records every step), then the one after them fails.
    snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=store.iter=delay:0");
    shard.env[1] = file_env;
    shard.env[2] = NULL;
    unlink (record);
    assert_true (tk_shard_start (ctx->h, &shard) > 0);
    size_t steps = s_record_lines (record);
    assert_true (steps > 0);
    assert_true (tk_shard_stop (ctx->h, &shard, SIGKILL) >= 0);
    shard.env[1] = NULL;
    bool failed_read = false;
    for (size_t n = steps + 1; n <= steps + 8 && !failed_read; n++) {
        snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=store.iter=error@%zu", n);
        if (tk_shard_start (ctx->h, &shard) < 0) {
            continue; //  this start read a little more (its own last stop's writes)
        }
        client = rl_client_new (shard.endpoint);
        rl_filter_t filter = {.account_id = tk_id (1, TAG),
                              .limit = 100,
                              .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
        static rl_transfer_t history[100];
        size_t count = 0;
        int rc = rl_client_get_account_transfers (client, &filter, history, &count,
                                                  CALL_TIMEOUT_MS);
        rl_client_destroy (&client);
        if (rc != RL_STATUS_STORAGE_ERROR) {
            harness_dump_log (ctx->h, shard.name);
            fail_msg ("a history read whose scan failed was answered %d (%zu transfers)", rc,
                      count);
        }
        s_expect_failed_state (ctx->h, &shard);
        failed_read = true;
    }
    assert_true (failed_read);
    free (record);

    //  Without the fault: everything acknowledged is there.
    shard.env[0] = NULL;
    assert_true (tk_shard_start (ctx->h, &shard) > 0);
    client = rl_client_new (shard.endpoint);
    s_settle (client, &model);
    tk_check_conservation (client, &model, s_log.count / 2);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (ctx->h, &shard, SIGTERM), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_sync_error, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_error, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_disk_full, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
