/*  test_repl_rlctl.c: the operator's replication commands, run as the
    real rlctl program against a real primary and standby
    (docs/replication.md, docs/cli.md).

    test_unseeded_standby: a standby whose primary never comes holds no
    copy: `rlctl promote` is answered unavailable (exit 1) and it stays a
    standby; `rlctl status` shows it (state standby, no ring: exit 1).

    test_promote_degrade: a primary replicating semi-synchronously to its
    standby, under transfers through the client library.
    - Bad input: promote and degrade with a key that is not in the admin
      role are unauthorized (exit 1) and change nothing; degrade sent to
      the standby is unavailable; extra arguments and options a command
      does not take are usage errors (exit 2, nothing sent).
    - promote sent to the primary is ok (idempotent: a primary is already
      promoted) and changes nothing.
    - The standby is SIGSTOPped with a write in flight: `rlctl status`
      still shows the primary (its own status is answered after the local
      sync, its ring read is held): first while the ring read times out,
      then stalled (state, replication link, the STALLED paragraph). When
      the standby continues, the held write is answered ok and status is
      whole again (exit 0).
    - `rlctl degrade` switches the primary to async, shown by status.
    - The primary is SIGKILLed; `rlctl promote` on the standby makes it
      the primary (the time to its first acknowledged write is printed);
      a second promote is ok. Every acknowledged transfer is there, and
      the strong conservation check passes after more transfers.
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

#include <cJSON.h>
#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "testkit.h"

#define TAG             0x52504c43ull //  "RPLC"
#define LEDGER          841
#define ACCOUNTS        12
#define TRANSFERS_MAX   2048
#define BATCH_MAX       32
#define CALL_TIMEOUT_MS 10000
#define RLCTL_WAIT_MS   30000 //  an rlctl run ends within this
#define REPL_TIMEOUT_MS 3000  //  the primary's --repl-timeout-ms: long enough to see a held read
#define RING_WAIT_MS    500   //  rlctl status --timeout-ms while the ring read is held
#define ARGS_MAX        24

static tk_outcome_t s_records[TRANSFERS_MAX];
static tk_outcomes_t s_log = {.records = s_records, .capacity = TRANSFERS_MAX};
static uint64_t s_next_id = 300000;

static rl_transfer_t
s_new_transfer (void)
{
    //  From the operator's account 1 (free to go negative) to one of the
    //  others: every transfer is ok, whatever the order.
    uint64_t to = 2 + s_next_id % (ACCOUNTS - 1);
    rl_transfer_t t = tk_transfer (tk_id (s_next_id, TAG), tk_id (1, TAG), tk_id (to, TAG),
                                   1 + s_next_id % 50, LEDGER);
    s_next_id++;
    return t;
}

//  `batches` batches of transfers, each answered ok into the model.
static void
s_drive (rl_client_t *client, size_t batches, tk_model_t *model)
{
    for (size_t b = 0; b < batches; b++) {
        rl_transfer_t ts[BATCH_MAX];
        rl_result_rec_t rs[BATCH_MAX];
        size_t first = s_log.count;
        size_t n = 1 + (b * 7) % BATCH_MAX;
        for (size_t i = 0; i < n; i++) {
            ts[i] = s_new_transfer ();
            tk_outcomes_sent (&s_log, &ts[i]);
        }
        assert_int_equal (rl_client_create_transfers (client, ts, n, rs, CALL_TIMEOUT_MS), 0);
        tk_outcomes_answered (&s_log, first, rs, n, false, model);
    }
}

//  Runs rlctl at `endpoint` as key NAME (its secret certificate in the
//  test's key sets) with the arguments that follow (NULL-terminated);
//  returns its exit code and, in *out_p (when not NULL), its output
//  (stdout and stderr, malloc'd).
static int
s_rlctl (harness_t *h, const char *log, const char *endpoint, const char *name, char **out_p, ...)
{
    char rlctl[512], cert[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/%s.key_secret", tk_keys_dir (h), name);
    snprintf (key, sizeof key, "%s", tk_key (h, "shard", "s1"));
    char *argv[ARGS_MAX] = {rlctl,          "--connect", (char *) endpoint, "--cert", cert,
                            "--server-key", key};
    size_t argc = 7;
    va_list ap;
    va_start (ap, out_p);
    const char *arg;
    while ((arg = va_arg (ap, const char *)) && argc < ARGS_MAX - 1) {
        argv[argc++] = (char *) arg;
    }
    va_end (ap);
    argv[argc] = NULL;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (h), log);
    unlink (path);
    pid_t pid = harness_spawn (h, log, argv, NULL);
    assert_true (pid > 0);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, pid, RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    char *text = harness_read_file (path, NULL);
    assert_non_null (text);
    if (out_p) {
        *out_p = text;
    } else {
        free (text);
    }
    return WEXITSTATUS (wstatus);
}

//  rlctl as `name` exits `want` and says `needle`.
static void
s_rlctl_expect (harness_t *h, const char *log, const char *endpoint, const char *name, int want,
                const char *needle, const char *command, const char *arg)
{
    char *out = NULL;
    int rc = s_rlctl (h, log, endpoint, name, &out, command, arg, NULL);
    if (rc != want || !strstr (out, needle)) {
        fail_msg ("rlctl %s (%s): exit %d, want %d and '%s'; said:\n%s", command, log, rc, want,
                  needle, out);
    }
    free (out);
}

//  rlctl --json status at endpoint: its exit code and the first shard's
//  object of its answer (in *tree_p, the whole tree: the caller deletes it).
static int
s_status_json (harness_t *h, const char *log, const char *endpoint, const char *timeout_ms,
               cJSON **tree_p, const cJSON **shard_p)
{
    char *out = NULL;
    int rc = s_rlctl (h, log, endpoint, "tester", &out, "--json", "--timeout-ms", timeout_ms,
                      "status", NULL);
    *tree_p = cJSON_Parse (out);
    if (!*tree_p) {
        fail_msg ("rlctl status (%s): not JSON:\n%s", log, out);
    }
    free (out);
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive (*tree_p, "shards");
    *shard_p = cJSON_GetArrayItem (shards, 0);
    assert_non_null (*shard_p);
    return rc;
}

static const char *
s_text (const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (object, key);
    assert_true (cJSON_IsString (item));
    return item->valuestring;
}

static const cJSON *
s_replication (const cJSON *shard)
{
    const cJSON *repl = cJSON_GetObjectItemCaseSensitive (shard, "replication");
    assert_non_null (repl);
    return repl;
}

static rl_status_rec_t
s_status (const char *endpoint)
{
    rl_client_t *c = rl_client_new (endpoint);
    rl_status_rec_t st = {0};
    assert_int_equal (rl_client_status (c, &st, CALL_TIMEOUT_MS), 0);
    rl_client_destroy (&c);
    return st;
}

static int
s_setup (void **state)
{
    harness_t *h = harness_new ("repl_rlctl");
    *state = h;
    if (!h) {
        return -1;
    }
    //  Every key before the first shard starts: "tester" is in every role,
    //  "teller" in the client role only.
    (void) tk_key (h, "shard", "s1");
    (void) tk_key (h, "client", "teller");
    return 0;
}

static int
s_teardown (void **state)
{
    harness_t *h = *state;
    harness_destroy (&h);
    return 0;
}

static void
test_unseeded_standby (void **state)
{
    harness_t *h = *state;
    tk_shard_t lone;
    tk_shard_init (h, &lone, "s1");
    snprintf (lone.data_dir, sizeof lone.data_dir, "%s/lone", harness_dir (h));
    lone.durability = "sync";
    char nowhere[64];
    snprintf (nowhere, sizeof nowhere, "tcp://127.0.0.1:%d", harness_free_port ());
    lone.args[0] = "--standby-of";
    lone.args[1] = nowhere;
    assert_true (tk_shard_start (h, &lone) > 0);
    s_rlctl_expect (h, "promote-unseeded", lone.endpoint, "tester", 1, "answered unavailable",
                    "promote", NULL);
    cJSON *tree = NULL;
    const cJSON *shard = NULL;
    assert_int_equal (s_status_json (h, "status-unseeded", lone.endpoint, "5000", &tree, &shard),
                      1);
    assert_string_equal (s_text (shard, "state"), "standby");
    assert_string_equal (s_text (s_replication (shard), "role"), "standby");
    assert_non_null (strstr (s_text (tree, "ring_error"), "standby"));
    cJSON_Delete (tree);
    assert_int_equal (s_status (lone.endpoint).state, RL_SHARD_STANDBY);
    assert_int_equal (tk_shard_stop (h, &lone, SIGTERM), 0);
}

static void
test_promote_degrade (void **state)
{
    harness_t *h = *state;
    s_log.count = 0;
    tk_shard_t primary, standby;
    tk_shard_init (h, &primary, "s1");
    primary.durability = "sync";
    tk_shard_prepare_accounts (h, &primary, TAG, LEDGER, ACCOUNTS);
    tk_shard_init (h, &standby, "s1");
    snprintf (standby.data_dir, sizeof standby.data_dir, "%s/s1-standby", harness_dir (h));
    standby.durability = "sync";
    standby.args[0] = "--standby-of";
    standby.args[1] = primary.endpoint;
    assert_true (tk_shard_start (h, &standby) > 0);
    char repl_timeout[16];
    snprintf (repl_timeout, sizeof repl_timeout, "%d", REPL_TIMEOUT_MS);
    primary.args[0] = "--standby";
    primary.args[1] = standby.endpoint;
    primary.args[2] = "--repl-timeout-ms";
    primary.args[3] = repl_timeout;
    assert_true (tk_shard_start (h, &primary) > 0);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    rl_client_t *client = rl_client_new (primary.endpoint);
    s_drive (client, 12, &model);

    //  Bad input: not an admin key, the wrong shard, bad usage.
    s_rlctl_expect (h, "promote-teller", standby.endpoint, "teller", 1, "answered unauthorized",
                    "promote", NULL);
    s_rlctl_expect (h, "degrade-teller", primary.endpoint, "teller", 1, "answered unauthorized",
                    "degrade", NULL);
    s_rlctl_expect (h, "degrade-standby", standby.endpoint, "tester", 1, "answered unavailable",
                    "degrade", NULL);
    s_rlctl_expect (h, "promote-extra", standby.endpoint, "tester", 2, "promote takes", "promote",
                    "now");
    s_rlctl_expect (h, "degrade-force", primary.endpoint, "tester", 2, "--force", "degrade",
                    "--force");
    assert_int_equal (s_status (standby.endpoint).state, RL_SHARD_STANDBY);
    rl_status_rec_t st = s_status (primary.endpoint);
    assert_int_equal (st.state, RL_SHARD_SERVING);
    assert_true ((st.durability & RL_DURABILITY_REPL_SEMI) != 0);
    //  promote of a primary: ok, nothing changes.
    s_rlctl_expect (h, "promote-primary", primary.endpoint, "tester", 0, "promoted", "promote",
                    NULL);
    st = s_status (primary.endpoint);
    assert_int_equal (st.state, RL_SHARD_SERVING);
    assert_true ((st.durability & RL_DURABILITY_REPL_SEMI) != 0);
    s_drive (client, 4, &model);
    cJSON *tree = NULL;
    const cJSON *shard = NULL;
    assert_int_equal (s_status_json (h, "status-whole", primary.endpoint, "5000", &tree, &shard),
                      0);
    assert_string_equal (s_text (shard, "state"), "serving");
    assert_string_equal (s_text (s_replication (shard), "mode"), "semi");
    assert_string_equal (s_text (s_replication (shard), "link"), "acknowledging");
    cJSON_Delete (tree);

    //  The standby stops with a write in flight: its reply is held.
    assert_int_equal (harness_kill (h, standby.pid, SIGSTOP), 0);
    rl_transfer_t held = s_new_transfer ();
    tk_outcomes_sent (&s_log, &held);
    uint64_t request_id = 0;
    assert_int_equal (rl_client_send_transfers (client, &held, 1, &request_id), 0);
    //  The ring read waits: status shows the primary from its own answer.
    char ring_wait[16];
    snprintf (ring_wait, sizeof ring_wait, "%d", RING_WAIT_MS);
    assert_int_equal (s_status_json (h, "status-held", primary.endpoint, ring_wait, &tree, &shard),
                      1);
    assert_true (cJSON_HasObjectItem (tree, "ring_error"));
    const char *seen = s_text (shard, "state");
    //  serving: the ring read timed out; stalled: a loaded machine took
    //  longer than the repl timeout to get there.
    assert_true (strcmp (seen, "serving") == 0 || strcmp (seen, "stalled") == 0);
    cJSON_Delete (tree);
    for (int i = 0; i < 400 && s_status (primary.endpoint).state != RL_SHARD_STALLED; i++) {
        zclock_sleep (25);
    }
    assert_int_equal (s_status (primary.endpoint).state, RL_SHARD_STALLED);
    assert_int_equal (s_status_json (h, "status-stalled", primary.endpoint, "5000", &tree, &shard),
                      1);
    assert_string_equal (s_text (shard, "state"), "stalled");
    assert_string_equal (s_text (s_replication (shard), "link"), "stalled");
    assert_non_null (strstr (s_text (tree, "ring_error"), "stalled"));
    cJSON_Delete (tree);
    s_rlctl_expect (h, "status-stalled-table", primary.endpoint, "tester", 1, "STALLED: s1",
                    "status", NULL);
    //  The table's durability column: a short word with the replication
    //  mode (the whole label is on the replication line and in --json).
    s_rlctl_expect (h, "status-stalled-mode", primary.endpoint, "tester", 1, " sync+semi ",
                    "status", NULL);
    //  The standby goes on: the held write is answered, status is whole.
    assert_int_equal (harness_kill (h, standby.pid, SIGCONT), 0);
    rl_header_t rh;
    uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal (rl_client_recv (client, CALL_TIMEOUT_MS, &rh, &body, &body_size), 0);
    assert_int_equal (rh.request_id, request_id);
    assert_int_equal (rh.status, RL_STATUS_OK);
    assert_int_equal (body_size, RL_RESULT_SIZE);
    rl_result_rec_t r;
    codec_decode_result (body, &r);
    free (body);
    tk_outcomes_answered (&s_log, s_log.count - 1, &r, 1, false, &model);
    for (int i = 0; i < 400 && s_status (primary.endpoint).state != RL_SHARD_SERVING; i++) {
        zclock_sleep (25);
    }
    assert_int_equal (s_status_json (h, "status-back", primary.endpoint, "5000", &tree, &shard), 0);
    assert_string_equal (s_text (shard, "state"), "serving");
    cJSON_Delete (tree);
    s_drive (client, 4, &model);

    //  degrade: async, labelled. No write follows on the old primary, so
    //  the standby holds every acknowledged transfer when it is promoted.
    s_rlctl_expect (h, "degrade", primary.endpoint, "tester", 0, "degraded", "degrade", NULL);
    assert_int_equal (s_status_json (h, "status-async", primary.endpoint, "5000", &tree, &shard),
                      0);
    assert_string_equal (s_text (s_replication (shard), "mode"), "async");
    assert_non_null (strstr (s_text (shard, "durability"), "ASYNC"));
    cJSON_Delete (tree);
    rl_client_destroy (&client);

    //  The primary is lost; the standby is promoted by rlctl.
    assert_int_equal (tk_shard_stop (h, &primary, SIGKILL) >= 0, 1);
    int64_t t0 = zclock_usecs ();
    s_rlctl_expect (h, "promote", standby.endpoint, "tester", 0, "promoted", "promote", NULL);
    //  The promoted standby answers status `standby` until it serves as
    //  the primary (after its recovery and new incarnation).
    bool serving = false;
    for (int i = 0; i < 800 && !serving; i++) {
        rl_client_t *c = rl_client_new (standby.endpoint);
        rl_status_rec_t now = {0};
        serving = rl_client_status (c, &now, 1000) == 0 && now.state == RL_SHARD_SERVING;
        rl_client_destroy (&c);
        if (!serving) {
            zclock_sleep (25);
        }
    }
    assert_true (serving);
    client = rl_client_new (standby.endpoint);
    s_drive (client, 1, &model);
    printf ("test_repl_rlctl: rlctl promote -> first acknowledged write %.1f ms\n",
            (double) (zclock_usecs () - t0) / 1000.0);
    s_rlctl_expect (h, "promote-again", standby.endpoint, "tester", 0, "promoted", "promote", NULL);
    assert_int_equal (s_status_json (h, "status-new", standby.endpoint, "5000", &tree, &shard), 0);
    assert_string_equal (s_text (shard, "state"), "serving");
    assert_string_equal (s_text (s_replication (shard), "role"), "none");
    cJSON_Delete (tree);
    //  Every acknowledged transfer is there (none was unknown).
    size_t applied = 0;
    assert_int_equal (tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, &applied), 0);
    s_drive (client, 6, &model);
    tk_check_conservation (client, &model, 40);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &standby, SIGTERM), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_unseeded_standby, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_promote_degrade, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
