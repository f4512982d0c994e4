/*  test_backup.c: backups of a cluster and their restore (docs/backup.md).

    test_backup_restore: two shards (secure, WAL in memory) take same- and
    cross-shard transfers from a load thread while `rlctl backup --cluster`
    takes a set. Then:
    - the source passes the strong conservation check;
    - a second backup of the same directory is incremental (each shard's
      new bytes are fewer than its backup's bytes) and verifies;
    - the first set restores into fresh data directories; a cluster of new
      shard processes with the same names (new ports, a ring of the same
      epoch) starts on them, recovers, and passes the strong conservation
      check against a model of the transfers it holds; every transfer
      acknowledged before the backup began is there, none sent after its
      release is, every transfer there equals the source's (lookup), and
      each account's history there is the source's history of the
      transfers the cut holds (a credit leg applied after the cut is
      applied again, at a new timestamp); each restored coordinator
      started a new incarnation (another nonce);
    - a damaged table file in the backup is detected by verify-backup and
      refused by restore, which leaves the data root as it was.
    test_backup_between_pieces: a set cut while b1's checkpoint is held
    between two pieces of its accounts restores to exactly the balances
    of every transfer acknowledged before it (restored b1 finds the piece
    key, and its replay honours it).
    test_backup_bad_input: the backup operations refuse hostile records
    (token 0, hold_ms out of range, fields not zeroed, cut without a hold,
    relative paths, "..", control bytes, a path filling its field, a
    missing directory, a link in place of <dir>/<shard>), a hold ends by
    itself after its hold_ms (a transfer sent during it waits, then is
    served), a cut whose files are listed after its release (failpoint
    backup.unheld) is refused by the copy's sequence check, and rlctl
    refuses bad commands (a relative or missing directory, neither or both
    of --cluster and --name, a single-shard restore, a damaged set file, a
    set that is not a whole cluster, which verify-backup calls not
    restorable, a data root that is not fresh) with
    clear errors; nothing changes (no set file, the root untouched) and the
    shards serve on, with conservation.
    test_backup_purge: three sets, then `rlctl backup-purge`: bad KEEP
    values (0, negative, garbage, too large, missing) and a bad or missing
    directory are refused; so is a purge while a restore or verify holds
    the directory (its lock, shared), with a damaged set file, with a kept
    set that does not verify, and while a backup is being written into an
    engine; each time nothing is deleted. Keeping 1 then deletes the two
    older set files and their backups (fewer bytes), and the kept set
    verifies and restores while a purged one is refused; keeping more sets
    than there are deletes nothing; the next backup numbers on; a newer
    set of one shard (not restorable) does not count toward KEEP, so
    keeping 1 keeps it and the cluster set before it, which restores; two
    backups of different shards at once that pick the same set number
    (failpoint backup.set_number) each get a set file of their own; a
    restore whose second move into the root fails (backup.restore_move)
    leaves the root as it was (an empty shard directory there kept, with
    its mode); and
    the cluster passes its conservation check.
    test_backup_stale_ring: a backup asked of a shard serving an older
    ring than its peers, whose newer ring added a shard holding accounts,
    takes the newest ring and every shard of it (it lacked the new shard
    before, and restore accepted that set); the set verifies and restores.
*/
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "ring.h"
#include "rl_rand.h"
#include "store.h"
#include "testkit.h"

#define LEDGER        761
#define ACCOUNTS      48
#define SENT_MAX      20000
#define BATCH         40
#define RLCTL_WAIT_MS 30000

typedef struct {
    harness_t *h;
    tk_shard_t shards[2];
    rl_client_t *clients[2];
    ring_t *ring;
    uint64_t tag;
    //  the load
    pthread_t thread;
    atomic_bool stop;
    atomic_size_t acked_before; //  transfers acknowledged before the backup began
    rl_transfer_t sent[SENT_MAX];
    uint32_t answer[SENT_MAX]; //  result, or TK_OUTCOME_UNKNOWN
    size_t sent_count;
    size_t acked_mark; //  sent[0..acked_mark) were answered before the backup began
} s_ctx_t;

static s_ctx_t *s_ctx;

static int
s_owner (ring_t *ring, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    return ring_lookup_id (ring, bytes);
}

static rl_client_t *
s_client_for (void *arg, rl_id_t id)
{
    s_ctx_t *ctx = arg;
    return ctx->clients[s_owner (ctx->ring, id)];
}

//  Two shards named b1, b2 under data root `root` (NULL: the harness dir),
//  with a ring file `prefix`.ring of epoch 1; b1_env (NULL-terminated, at
//  most 3; NULL: none) is b1's extra environment.
static void
s_cluster_init (s_ctx_t *ctx, const char *root, const char *prefix, char *const *b1_env)
{
    ring_destroy (&ctx->ring);
    ctx->ring = ring_new (1);
    for (int i = 0; i < 2; i++) {
        char name[8];
        snprintf (name, sizeof name, "b%d", i + 1);
        tk_shard_t *s = &ctx->shards[i];
        tk_shard_init (ctx->h, s, name);
        if (root) {
            snprintf (s->data_dir, sizeof s->data_dir, "%s/%s", root, name);
        }
        s->durability = "manual-wal";
        s->checkpoint_transfers = 200; //  table files that backups share
        for (int e = 0; e < 4; e++) {
            s->env[e] = i == 0 && b1_env ? b1_env[e] : NULL;
            if (!s->env[e]) {
                break;
            }
        }
        char *args[] = {"--prepare-timeout-ms",
                        "300",
                        "--query-after-ms",
                        "200",
                        "--retry-min-ms",
                        "20",
                        "--retry-max-ms",
                        "200",
                        "--tick-ms",
                        "5",
                        "--checkpoint-piece-accounts", //  about 24 accounts a shard
                        "4",
                        NULL};
        memcpy (s->args, args, sizeof args);
        assert_int_equal (ring_add_shard (ctx->ring, name, s->endpoint, 1.0), 0);
        assert_int_equal (ring_set_key (ctx->ring, name, tk_key (ctx->h, "shard", name)), 0);
    }
    char ring_file[512];
    snprintf (ring_file, sizeof ring_file, "%s/%s.ring", harness_dir (ctx->h), prefix);
    assert_int_equal (ring_save_file (ctx->ring, ring_file), 0);
    for (int i = 0; i < 2; i++) {
        snprintf (ctx->shards[i].ring_file, sizeof ctx->shards[i].ring_file, "%s", ring_file);
        assert_true (tk_shard_start (ctx->h, &ctx->shards[i]) > 0);
        rl_client_destroy (&ctx->clients[i]);
        ctx->clients[i] = rl_client_new (ctx->shards[i].endpoint);
        assert_non_null (ctx->clients[i]);
    }
}

static void
s_cluster_stop (s_ctx_t *ctx)
{
    for (int i = 0; i < 2; i++) {
        rl_client_destroy (&ctx->clients[i]);
        assert_int_equal (tk_shard_stop (ctx->h, &ctx->shards[i], SIGTERM), 0);
    }
}

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    ctx->h = harness_new ("backup");
    s_ctx = ctx;
    *state = ctx;
    return ctx->h ? 0 : -1;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    for (int i = 0; i < 2; i++) {
        rl_client_destroy (&ctx->clients[i]);
    }
    ring_destroy (&ctx->ring);
    harness_destroy (&ctx->h);
    free (ctx);
    return 0;
}

//  Accounts 1..ACCOUNTS, no limits (no business failure: every answer is
//  ok or retryable), spread over both shards.
static void
s_accounts (s_ctx_t *ctx)
{
    for (uint64_t i = 1; i <= ACCOUNTS; i++) {
        rl_account_t a = tk_account (i, ctx->tag, LEDGER, 0);
        rl_result_rec_t r;
        assert_int_equal (
            rl_client_create_accounts (s_client_for (ctx, a.id), &a, 1, &r, TK_TIMEOUT_MS), 0);
        assert_int_equal (r.result, RL_OK);
    }
}

//  The load: batches of random transfers (about half cross-shard), each
//  batch to the shard of its debit accounts.
static void *
s_load (void *arg)
{
    s_ctx_t *ctx = arg;
    uint64_t rng = 0xbac0b;
    rl_client_t *clients[2] = {rl_client_new (ctx->shards[0].endpoint),
                               rl_client_new (ctx->shards[1].endpoint)};
    while (!atomic_load (&ctx->stop) && ctx->sent_count + BATCH <= SENT_MAX) {
        int shard = (int) (rl_rand_next (&rng) % 2);
        rl_transfer_t batch[BATCH];
        size_t n = 0;
        while (n < BATCH) {
            uint64_t d = 1 + rl_rand_next (&rng) % ACCOUNTS, c = 1 + rl_rand_next (&rng) % ACCOUNTS;
            rl_id_t debit = tk_id (d, ctx->tag);
            if (d == c || s_owner (ctx->ring, debit) != shard) {
                continue;
            }
            batch[n] = tk_transfer (tk_id (ctx->sent_count + n + 1, ctx->tag ^ 0x7700), debit,
                                    tk_id (c, ctx->tag), 1 + rl_rand_next (&rng) % 100, LEDGER);
            n++;
        }
        size_t first = ctx->sent_count;
        memcpy (&ctx->sent[first], batch, sizeof batch);
        for (size_t i = 0; i < BATCH; i++) {
            ctx->answer[first + i] = TK_OUTCOME_UNKNOWN;
        }
        ctx->sent_count += BATCH;
        rl_result_rec_t rs[BATCH];
        if (rl_client_create_transfers (clients[shard], batch, BATCH, rs, TK_TIMEOUT_MS) == 0) {
            for (size_t i = 0; i < BATCH; i++) {
                ctx->answer[first + i] = rs[i].result;
            }
        }
    }
    rl_client_destroy (&clients[0]);
    rl_client_destroy (&clients[1]);
    return NULL;
}

//  Starts rlctl with args against shard b1 (secure), with env (NULL, or
//  NULL-terminated "K=V"), its output into <harness>/<log>.log; its pid.
static pid_t
s_rlctl_vstart (s_ctx_t *ctx, const char *log, bool json, char *const *env, va_list ap)
{
    char rlctl[512], cert[512], key[64];
    snprintf (rlctl, sizeof rlctl, "%s/tools/rlctl", harness_bin_dir ());
    snprintf (cert, sizeof cert, "%s/private/tester.key_secret", tk_keys_dir (ctx->h));
    snprintf (key, sizeof key, "%s", tk_key (ctx->h, "shard", ctx->shards[0].name));
    char *argv[32] = {rlctl,          "--connect", ctx->shards[0].endpoint, "--cert", cert,
                      "--server-key", key,         "--timeout-ms",          "10000"};
    size_t argc = 9;
    if (json) {
        argv[argc++] = "--json";
    }
    const char *arg;
    while ((arg = va_arg (ap, const char *)) && argc < 31) {
        argv[argc++] = (char *) arg;
    }
    argv[argc] = NULL;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (ctx->h), log);
    unlink (path);
    pid_t pid = harness_spawn (ctx->h, log, argv, env);
    assert_true (pid > 0);
    return pid;
}

static pid_t
s_rlctl_start (s_ctx_t *ctx, const char *log, char *const *env, ...)
{
    va_list ap;
    va_start (ap, env);
    pid_t pid = s_rlctl_vstart (ctx, log, false, env, ap);
    va_end (ap);
    return pid;
}

//  Waits for an rlctl started by s_rlctl_start; its exit code.
static int
s_rlctl_wait (s_ctx_t *ctx, pid_t pid)
{
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (ctx->h, pid, RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    return WEXITSTATUS (wstatus);
}

//  Runs rlctl with args against shard b1 (secure); returns its exit code.
//  The output goes to <harness>/<log>.log; *json_p (if given): the parsed
//  stdout of a --json run.
static int
s_rlctl (s_ctx_t *ctx, const char *log, cJSON **json_p, ...)
{
    va_list ap;
    va_start (ap, json_p);
    pid_t pid = s_rlctl_vstart (ctx, log, json_p != NULL, NULL, ap);
    va_end (ap);
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (ctx->h), log);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (ctx->h, pid, RLCTL_WAIT_MS, &wstatus), 0);
    assert_true (WIFEXITED (wstatus));
    if (json_p) {
        char *text = harness_read_file (path, NULL);
        assert_non_null (text);
        *json_p = cJSON_Parse (text);
        if (!*json_p) {
            fail_msg ("rlctl %s: not JSON: %s", log, text);
        }
        free (text);
    }
    return WEXITSTATUS (wstatus);
}

static bool
s_log_says (s_ctx_t *ctx, const char *log, const char *text)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s.log", harness_dir (ctx->h), log);
    char *all = harness_read_file (path, NULL);
    bool found = all && strstr (all, text);
    if (!found) {
        print_message ("%s.log lacks '%s': %s\n", log, text, all ? all : "(none)");
    }
    free (all);
    return found;
}

static uint64_t
s_num (const cJSON *tree, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (tree, key);
    assert_non_null (item);
    if (cJSON_IsString (item)) {
        return strtoull (item->valuestring, NULL, 10);
    }
    assert_true (cJSON_IsNumber (item));
    return (uint64_t) item->valuedouble;
}

static size_t
s_entries (const char *dir)
{
    DIR *d = opendir (dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir (d))) {
        n += strcmp (e->d_name, ".") && strcmp (e->d_name, "..");
    }
    if (d) {
        closedir (d);
    }
    return n;
}

//  The incarnation stored in a shard's data directory (counter, nonce).
static void
s_incarnation (const char *data_dir, uint64_t out[2])
{
    char err[256];
    store_t *store = store_open (data_dir, RL_DURABILITY_SYNC, err, sizeof err);
    if (!store) {
        fail_msg ("open %s: %s", data_dir, err);
    }
    uint8_t value[16];
    size_t size = 0;
    assert_int_equal (
        store_get (store, STORE_CF_META, "incarnation", 11, value, sizeof value, &size), 1);
    assert_int_equal (size, 16);
    out[0] = codec_get_u64 (value);
    out[1] = codec_get_u64 (value + 8);
    store_close (&store);
}

//  Flips one byte in the middle of the largest table file that backup 1
//  of the backup engine in dir holds (its meta file lists them).
static void
s_damage_sst (const char *dir)
{
    char meta[700];
    snprintf (meta, sizeof meta, "%.600s/meta/1", dir);
    char *text = harness_read_file (meta, NULL);
    assert_non_null (text);
    char best[1024] = "";
    off_t best_size = 0;
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        char *space = strchr (line, ' ');
        if (!space || !strstr (line, ".sst")) {
            continue;
        }
        *space = 0;
        char path[1024];
        snprintf (path, sizeof path, "%.600s/%.300s", dir, line);
        struct stat st;
        if (stat (path, &st) == 0 && st.st_size > best_size) {
            best_size = st.st_size;
            snprintf (best, sizeof best, "%s", path);
        }
    }
    free (text);
    assert_true (best_size > 0);
    FILE *f = fopen (best, "r+b");
    assert_non_null (f);
    fseek (f, best_size / 2, SEEK_SET);
    int c = fgetc (f);
    fseek (f, best_size / 2, SEEK_SET);
    fputc (c ^ 0x5a, f);
    fclose (f);
}

static void
test_backup_restore (void **state)
{
    s_ctx_t *ctx = *state;
    ctx->tag = 0xbac1;
    s_cluster_init (ctx, NULL, "source", NULL);
    s_accounts (ctx);
    char dir[600];
    snprintf (dir, sizeof dir, "%s/backups", harness_dir (ctx->h));
    assert_int_equal (mkdir (dir, 0700), 0);

    //  The backup, under load.
    atomic_store (&ctx->stop, false);
    assert_int_equal (pthread_create (&ctx->thread, NULL, s_load, ctx), 0);
    while (ctx->sent_count < 20 * BATCH) {
        zclock_sleep (5);
    }
    size_t mark = ctx->sent_count - BATCH; //  the batches before it were answered
    cJSON *first = NULL;
    assert_int_equal (s_rlctl (ctx, "backup1", &first, "backup", dir, "--cluster", NULL), 0);
    size_t during = ctx->sent_count;
    while (ctx->sent_count < during + 10 * BATCH) {
        zclock_sleep (5); //  load after the cut, which the restore must not hold
    }
    atomic_store (&ctx->stop, true);
    pthread_join (ctx->thread, NULL);
    char *printed = cJSON_PrintUnformatted (first);
    print_message ("backup under load: %zu transfers sent, %zu before the backup; %s\n",
                   ctx->sent_count, mark, printed);
    free (printed);

    //  Settle every answer on the source, then its conservation check.
    assert_true (tk_wait_quiet (ctx->clients, 2, TK_QUIET_TIMEOUT_MS));
    static tk_model_t model;
    tk_model_init (&model, ctx->tag, ACCOUNTS);
    static rl_transfer_t found[SENT_MAX];
    for (size_t i = 0; i < ctx->sent_count; i++) {
        assert_int_equal (
            rl_client_lookup_transfers (s_client_for (ctx, ctx->sent[i].debit_account_id),
                                        &ctx->sent[i].id, 1, &found[i], TK_TIMEOUT_MS),
            0);
        if (ctx->answer[i] == RL_OK) {
            assert_true (found[i].timestamp != 0);
        }
        if (found[i].timestamp != 0) {
            tk_model_apply (&model, &ctx->sent[i]);
        }
    }
    for (size_t i = 0; i < mark; i++) {
        assert_true (ctx->answer[i] == RL_OK || ctx->answer[i] == TK_OUTCOME_UNKNOWN
                     || !tk_result_is_business (ctx->answer[i]));
    }
    tk_check_conservation_by (s_client_for, ctx, &model, mark / 2);

    //  The second backup: incremental, and it verifies.
    cJSON *second = NULL;
    assert_int_equal (s_rlctl (ctx, "backup2", &second, "backup", dir, "--cluster", NULL), 0);
    const cJSON *item;
    cJSON_ArrayForEach (item, cJSON_GetObjectItem (second, "shards"))
    {
        assert_true (s_num (item, "new_bytes") < s_num (item, "bytes"));
        assert_true (s_num (item, "backup_id") == 2);
    }
    assert_true (s_num (first, "held_us_max") > 0);
    cJSON_Delete (second);
    assert_int_equal (s_rlctl (ctx, "verify2", NULL, "verify-backup", dir, NULL), 0);
    assert_int_equal (s_rlctl (ctx, "verify1", NULL, "verify-backup", dir, "1", NULL), 0);

    //  Keep the source's answers, then restore set 1 into a fresh root.
    static rl_transfer_t source[SENT_MAX];
    memcpy (source, found, sizeof (found[0]) * ctx->sent_count);
    static rl_transfer_t history_src[2][RL_HISTORY_LIMIT_MAX];
    size_t history_src_count[2] = {0};
    for (int k = 0; k < 2; k++) {
        rl_filter_t filter = {.account_id = tk_id ((uint64_t) k + 2, ctx->tag),
                              .limit = RL_HISTORY_LIMIT_MAX,
                              .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
        assert_int_equal (rl_client_get_account_transfers (s_client_for (ctx, filter.account_id),
                                                           &filter, history_src[k],
                                                           &history_src_count[k], TK_TIMEOUT_MS),
                          0);
    }
    s_cluster_stop (ctx);
    char root[600];
    snprintf (root, sizeof root, "%s/restored", harness_dir (ctx->h));
    assert_int_equal (mkdir (root, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "restore1", NULL, "restore", dir, root, "1", NULL), 0);
    uint64_t before[2][2], after[2][2];
    for (int i = 0; i < 2; i++) {
        char data[700];
        snprintf (data, sizeof data, "%s/b%d", root, i + 1);
        s_incarnation (data, before[i]);
    }
    s_cluster_init (ctx, root, "restored", NULL);
    assert_true (tk_wait_quiet (ctx->clients, 2, TK_QUIET_TIMEOUT_MS));
    tk_model_init (&model, ctx->tag, ACCOUNTS);
    size_t held = 0;
    for (size_t i = 0; i < ctx->sent_count; i++) {
        rl_transfer_t t;
        assert_int_equal (
            rl_client_lookup_transfers (s_client_for (ctx, ctx->sent[i].debit_account_id),
                                        &ctx->sent[i].id, 1, &t, TK_TIMEOUT_MS),
            0);
        if (i < mark && ctx->answer[i] == RL_OK) {
            assert_true (t.timestamp != 0); //  acknowledged before the backup began
        }
        if (i >= during) {
            assert_true (t.timestamp == 0); //  sent after the backup's release
        }
        if (t.timestamp != 0) {
            assert_memory_equal (&t, &source[i], sizeof t); //  as the source holds it
            tk_model_apply (&model, &ctx->sent[i]);
            held++;
        }
    }
    print_message ("restored: %zu of %zu transfers (%zu sent before the backup)\n", held,
                   ctx->sent_count, mark);
    assert_true (held >= mark / 2 && held < ctx->sent_count);
    tk_check_conservation_by (s_client_for, ctx, &model, mark / 2);
    //  Histories: the source's, less what came after the cut.
    for (int k = 0; k < 2; k++) {
        rl_filter_t filter = {.account_id = tk_id ((uint64_t) k + 2, ctx->tag),
                              .limit = RL_HISTORY_LIMIT_MAX,
                              .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS};
        static rl_transfer_t got[RL_HISTORY_LIMIT_MAX];
        size_t count = 0;
        assert_int_equal (rl_client_get_account_transfers (s_client_for (ctx, filter.account_id),
                                                           &filter, got, &count, TK_TIMEOUT_MS),
                          0);
        size_t j = 0;
        for (size_t i = 0; i < history_src_count[k]; i++) {
            rl_transfer_t t;
            assert_int_equal (
                rl_client_lookup_transfers (s_client_for (ctx, history_src[k][i].debit_account_id),
                                            &history_src[k][i].id, 1, &t, TK_TIMEOUT_MS),
                0);
            if (t.timestamp == 0) {
                continue; //  after the cut
            }
            //  The same record, but a credit leg decided before the cut and
            //  applied after it is applied again by the restored cluster, at a
            //  new timestamp of the credit shard: the timestamp may differ.
            size_t at = 0;
            while (at < count && !rl_id_eq (got[at].id, history_src[k][i].id)) {
                at++;
            }
            assert_true (at < count);
            assert_memory_equal (&got[at], &history_src[k][i], offsetof (rl_transfer_t, timestamp));
            assert_int_equal (got[at].reserved, history_src[k][i].reserved);
            j++;
        }
        assert_int_equal (j, count);
        assert_true (count > 0);
    }
    s_cluster_stop (ctx);
    for (int i = 0; i < 2; i++) {
        char data[700];
        snprintf (data, sizeof data, "%s/b%d", root, i + 1);
        s_incarnation (data, after[i]);
        assert_true (after[i][0] > before[i][0]);  //  a new incarnation
        assert_true (after[i][1] != before[i][1]); //  with another nonce
    }

    //  A damaged backup: verify says so, restore refuses and writes nothing.
    char engine[700];
    snprintf (engine, sizeof engine, "%s/b1", dir);
    s_damage_sst (engine);
    assert_int_equal (s_rlctl (ctx, "verify_bad", NULL, "verify-backup", dir, "1", NULL), 1);
    assert_true (s_log_says (ctx, "verify_bad", "DAMAGED"));
    char root2[600];
    snprintf (root2, sizeof root2, "%s/restored2", harness_dir (ctx->h));
    assert_int_equal (mkdir (root2, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "restore_bad", NULL, "restore", dir, root2, "1", NULL), 1);
    assert_int_equal (s_entries (root2), 0);
    cJSON_Delete (first);
}

//  A cut between two pieces of a checkpoint's accounts. b1's first
//  checkpoint stops for 4 s after its first piece (checkpoint.piece=delay),
//  and the backup is taken then. The load is the test's own and stops
//  first, because a loop whose next checkpoint falls due waits for the one
//  running, and the hold would then be served after it. The restored b1
//  finds the piece key (its log says so), and its balances are exactly the
//  model of every transfer sent, each acknowledged before the cut: a
//  replay that posted again what the piece holds, or skipped the accounts
//  after its key, fails the conservation check.
static void
test_backup_between_pieces (void **state)
{
    s_ctx_t *ctx = *state;
    ctx->tag = 0xbac4;
    static char fp[] = "RL_FAILPOINTS=checkpoint.piece=delay:4000@1";
    static char fp_file[700];
    char *hits = harness_path (ctx->h, "pieces-fp.log");
    snprintf (fp_file, sizeof fp_file, "RL_FAILPOINT_FILE=%s", hits);
    char *b1_env[] = {fp, fp_file, NULL};
    s_cluster_init (ctx, NULL, "pieces", b1_env);
    s_accounts (ctx);
    static tk_model_t model;
    tk_model_init (&model, ctx->tag, ACCOUNTS);
    //  Transfers from b1's accounts (same- and cross-shard) until its
    //  checkpoint stops between two pieces.
    uint64_t rng = 0xbac4;
    size_t sent = 0;
    char *hit = NULL;
    int64_t deadline = zclock_mono () + RLCTL_WAIT_MS;
    while (!(hit = harness_read_file (hits, NULL)) && zclock_mono () < deadline) {
        rl_transfer_t batch[BATCH];
        rl_result_rec_t rs[BATCH];
        for (size_t n = 0; n < BATCH;) {
            uint64_t d = 1 + rl_rand_next (&rng) % ACCOUNTS, c = 1 + rl_rand_next (&rng) % ACCOUNTS;
            if (d == c || s_owner (ctx->ring, tk_id (d, ctx->tag)) != 0) {
                continue;
            }
            batch[n] = tk_transfer (tk_id (sent + n + 1, ctx->tag ^ 0x7700), tk_id (d, ctx->tag),
                                    tk_id (c, ctx->tag), 1 + rl_rand_next (&rng) % 100, LEDGER);
            n++;
        }
        assert_int_equal (
            rl_client_create_transfers_retry (ctx->clients[0], batch, BATCH, rs, TK_TIMEOUT_MS, 10),
            0);
        for (size_t i = 0; i < BATCH; i++) {
            assert_int_equal (rs[i].result, RL_OK);
            tk_model_apply (&model, &batch[i]);
        }
        sent += BATCH;
    }
    assert_non_null (hit);
    assert_non_null (strstr (hit, "checkpoint.piece"));
    free (hit);
    free (hits);
    int64_t paused = zclock_mono ();
    char dir[600], root[600];
    snprintf (dir, sizeof dir, "%s/pieces-backups", harness_dir (ctx->h));
    snprintf (root, sizeof root, "%s/pieces-restored", harness_dir (ctx->h));
    assert_int_equal (mkdir (dir, 0700), 0);
    assert_int_equal (mkdir (root, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "backup_pieces", NULL, "backup", dir, "--cluster", NULL), 0);
    print_message ("%zu transfers; the backup done %" PRId64 " ms into b1's pause\n", sent,
                   zclock_mono () - paused);
    s_cluster_stop (ctx); //  b1's stop waits for its checkpoint
    assert_false (tk_log_contains (ctx->h, "b1", "wrote part of its accounts"));
    assert_int_equal (s_rlctl (ctx, "restore_pieces", NULL, "restore", dir, root, "1", NULL), 0);
    s_cluster_init (ctx, root, "pieces-restored", NULL);
    assert_true (tk_log_contains (ctx->h, "b1", "wrote part of its accounts"));
    tk_check_conservation_by (s_client_for, ctx, &model, sent);
    s_cluster_stop (ctx);
}

//  One backup operation, raw; returns the answer's result.
static uint32_t
s_op (rl_client_t *client, uint16_t op, const rl_backup_rec_t *rec, rl_backup_rec_t *out)
{
    uint8_t body[RL_BACKUP_SIZE];
    codec_encode_backup (rec, body);
    rl_header_t h;
    uint8_t *reply = NULL;
    size_t size = 0;
    assert_int_equal (
        rl_client_call (client, op, body, sizeof body, 1, TK_TIMEOUT_MS, &h, &reply, &size), 0);
    assert_int_equal (size, RL_BACKUP_SIZE);
    codec_decode_backup (reply, out);
    free (reply);
    if (out->result != 0) {
        assert_true (out->message[0] != 0); //  every refusal says why
    }
    return out->result;
}

static void
test_backup_bad_input (void **state)
{
    s_ctx_t *ctx = *state;
    ctx->tag = 0xbac2;
    static char fp[] = "RL_FAILPOINTS=backup.cut=error@1,backup.copy=error@1,backup.unheld=error@1";
    char *b1_env[] = {fp, NULL};
    s_cluster_init (ctx, NULL, "bad", b1_env);
    s_accounts (ctx);
    static tk_model_t model;
    tk_model_init (&model, ctx->tag, ACCOUNTS);
    rl_client_t *c = ctx->clients[0];
    char dir[600];
    snprintf (dir, sizeof dir, "%s/bad-backups", harness_dir (ctx->h));
    assert_int_equal (mkdir (dir, 0700), 0);
    rl_backup_rec_t rec, out;

    //  Hostile records.
    rec = (rl_backup_rec_t){.token = 0, .hold_ms = 100};
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), RL_BACKUP_BAD_REQUEST);
    rec = (rl_backup_rec_t){.token = 7, .hold_ms = 0};
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), RL_BACKUP_BAD_REQUEST);
    rec = (rl_backup_rec_t){.token = 7, .hold_ms = RL_BACKUP_HOLD_MS_MAX + 1};
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), RL_BACKUP_BAD_REQUEST);
    rec = (rl_backup_rec_t){.token = 7, .hold_ms = 100, .reserved = 1};
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), RL_BACKUP_BAD_REQUEST);
    rec = (rl_backup_rec_t){.token = 7};
    snprintf (rec.dir, sizeof rec.dir, "%.200s", dir);
    assert_int_equal (s_op (c, RL_OP_BACKUP_CUT, &rec, &out), RL_BACKUP_NOT_HELD);
    assert_int_equal (s_op (c, RL_OP_BACKUP_RELEASE, &(rl_backup_rec_t){.token = 7}, &out),
                      RL_BACKUP_NOT_HELD);
    assert_int_equal (s_op (c, RL_OP_BACKUP_STATUS, &(rl_backup_rec_t){.token = 7}, &out),
                      RL_BACKUP_UNKNOWN);
    rec = (rl_backup_rec_t){.token = 8, .hold_ms = 5000};
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), 0);
    assert_int_equal (out.state, RL_BACKUP_HELD);
    assert_int_equal (
        s_op (c, RL_OP_BACKUP_HOLD, &(rl_backup_rec_t){.token = 9, .hold_ms = 5}, &out),
        RL_BACKUP_BUSY);
    char link_dir[600];
    snprintf (link_dir, sizeof link_dir, "%s/linked", harness_dir (ctx->h));
    assert_int_equal (mkdir (link_dir, 0700), 0);
    char link_target[700];
    snprintf (link_target, sizeof link_target, "%s/b1", link_dir);
    assert_int_equal (symlink ("/tmp", link_target), 0);
    const char *paths[] = {"relative/dir", "",      "/tmp/../etc", "/nonexistent-backup-dir",
                           "/tmp/a\x01b",  link_dir};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        rec = (rl_backup_rec_t){.token = 8};
        snprintf (rec.dir, sizeof rec.dir, "%s", paths[i]);
        assert_int_equal (s_op (c, RL_OP_BACKUP_CUT, &rec, &out), RL_BACKUP_BAD_PATH);
    }
    rec = (rl_backup_rec_t){.token = 8};
    memset (rec.dir, 'a', sizeof rec.dir); //  no terminating NUL
    rec.dir[0] = '/';
    assert_int_equal (s_op (c, RL_OP_BACKUP_CUT, &rec, &out), RL_BACKUP_BAD_PATH);
    assert_int_equal (s_op (c, RL_OP_BACKUP_RELEASE, &(rl_backup_rec_t){.token = 8}, &out), 0);
    assert_true (out.held_us > 0);

    //  A hold ends by itself: a transfer sent during it waits, then is served.
    rec = (rl_backup_rec_t){.token = 10, .hold_ms = 300};
    int64_t held_at = zclock_mono ();
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), 0);
    rl_transfer_t t = tk_transfer (tk_id (1, ctx->tag ^ 0x5500), tk_id (1, ctx->tag),
                                   tk_id (2, ctx->tag), 5, LEDGER);
    rl_result_rec_t r;
    assert_int_equal (rl_client_create_transfers (s_client_for (ctx, t.debit_account_id), &t, 1, &r,
                                                  TK_TIMEOUT_MS),
                      0);
    assert_int_equal (r.result, RL_OK);
    tk_model_apply (&model, &t);
    if (s_owner (ctx->ring, t.debit_account_id) == 0) {
        assert_true (zclock_mono () - held_at >= 250); //  it waited for the hold's end
    }
    rec = (rl_backup_rec_t){.token = 10};
    snprintf (rec.dir, sizeof rec.dir, "%.200s", dir);
    assert_int_equal (s_op (c, RL_OP_BACKUP_CUT, &rec, &out), RL_BACKUP_NOT_HELD);

    //  rlctl's refusals.
    assert_int_equal (s_rlctl (ctx, "rel", NULL, "backup", "relative", "--cluster", NULL), 2);
    assert_int_equal (s_rlctl (ctx, "both", NULL, "backup", dir, "--cluster", "--name", "b1", NULL),
                      2);
    assert_int_equal (s_rlctl (ctx, "neither", NULL, "backup", dir, NULL), 2);
    assert_int_equal (
        s_rlctl (ctx, "missing", NULL, "backup", "/nonexistent-backup-dir", "--cluster", NULL), 1);
    assert_true (s_log_says (ctx, "missing", "does not exist"));
    assert_int_equal (s_rlctl (ctx, "noshard", NULL, "backup", dir, "--name", "b9", NULL), 1);
    assert_int_equal (s_entries (dir), 0); //  no set file, nothing copied
    //  A failed cut, then a failed copy (failpoints on b1): no set file.
    assert_int_equal (s_rlctl (ctx, "cut_fails", NULL, "backup", dir, "--name", "b1", NULL), 1);
    assert_true (s_log_says (ctx, "cut_fails", "failpoint backup.cut"));
    //  A cut whose files are listed after the hold (failpoint backup.unheld:
    //  the held loop does not wait for the listing, and the checkpoint waits
    //  for a write made after the release) holds that write: the copy refuses it.
    rec = (rl_backup_rec_t){.token = 11, .hold_ms = 5000};
    assert_int_equal (s_op (c, RL_OP_BACKUP_HOLD, &rec, &out), 0);
    rec = (rl_backup_rec_t){.token = 11};
    snprintf (rec.dir, sizeof rec.dir, "%.200s", dir);
    assert_int_equal (s_op (c, RL_OP_BACKUP_CUT, &rec, &out), 0);
    assert_int_equal (out.state, RL_BACKUP_COPYING);
    assert_int_equal (s_op (c, RL_OP_BACKUP_RELEASE, &(rl_backup_rec_t){.token = 11}, &out), 0);
    uint64_t debit = 1;
    while (s_owner (ctx->ring, tk_id (debit, ctx->tag)) != 0) {
        debit++; //  a write on b1, after its release
    }
    t = tk_transfer (tk_id (3, ctx->tag ^ 0x5500), tk_id (debit, ctx->tag),
                     tk_id (debit % ACCOUNTS + 1, ctx->tag), 3, LEDGER);
    assert_int_equal (rl_client_create_transfers (c, &t, 1, &r, TK_TIMEOUT_MS), 0);
    assert_int_equal (r.result, RL_OK);
    tk_model_apply (&model, &t);
    int64_t until = zclock_mono () + RLCTL_WAIT_MS;
    do {
        zclock_sleep (20);
        s_op (c, RL_OP_BACKUP_STATUS, &(rl_backup_rec_t){.token = 11}, &out);
    } while (out.state == RL_BACKUP_COPYING && zclock_mono () < until);
    assert_int_equal (out.state, RL_BACKUP_FAILED);
    if (!strstr (out.message, "holds writes made after the hold")) {
        fail_msg ("the copy of a cut after the hold says: %s", out.message);
    }
    assert_int_equal (s_rlctl (ctx, "copy_fails", NULL, "backup", dir, "--name", "b1", NULL), 1);
    assert_true (s_log_says (ctx, "copy_fails", "failpoint backup.copy"));
    char set_one[700];
    snprintf (set_one, sizeof set_one, "%s/set-000001", dir);
    assert_true (access (set_one, F_OK) != 0);
    //  A backup of one shard is not a cluster: restore refuses it.
    assert_int_equal (s_rlctl (ctx, "one", NULL, "backup", dir, "--name", "b1", NULL), 0);
    char root[600];
    snprintf (root, sizeof root, "%s/bad-root", harness_dir (ctx->h));
    assert_int_equal (mkdir (root, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "restore_one", NULL, "restore", dir, root, NULL), 1);
    assert_true (s_log_says (ctx, "restore_one", "whole cluster"));
    //  Its backup verifies, but verify-backup says restore refuses the set.
    assert_int_equal (s_rlctl (ctx, "verify_one", NULL, "verify-backup", dir, NULL), 1);
    assert_true (s_log_says (ctx, "verify_one", "NOT RESTORABLE"));
    assert_true (s_log_says (ctx, "verify_one", "restore refuses it"));
    assert_int_equal (
        s_rlctl (ctx, "restore_name", NULL, "restore", dir, root, "--name", "b1", NULL), 1);
    assert_true (s_log_says (ctx, "restore_name", "never restored into a running cluster"));
    //  A cluster set, then: a damaged set file, a root not fresh, bad paths.
    assert_int_equal (s_rlctl (ctx, "cluster", NULL, "backup", dir, "--cluster", NULL), 0);
    char set[700];
    snprintf (set, sizeof set, "%s/set-000002", dir);
    assert_true (access (set, F_OK) == 0);
    char *text = harness_read_file (set, NULL);
    assert_non_null (text);
    char *shard = strstr (text, "shard b1 ");
    assert_non_null (shard);
    shard[9] = shard[9] == '1' ? '2' : '1'; //  another backup id
    FILE *f = fopen (set, "wb");
    fputs (text, f);
    fclose (f);
    assert_int_equal (s_rlctl (ctx, "tampered", NULL, "restore", dir, root, "2", NULL), 1);
    assert_true (s_log_says (ctx, "tampered", "damaged"));
    shard[9] = shard[9] == '1' ? '2' : '1';
    f = fopen (set, "wb");
    fputs (text, f);
    fclose (f);
    free (text);
    char occupied[700];
    snprintf (occupied, sizeof occupied, "%s/b2", root);
    assert_int_equal (mkdir (occupied, 0700), 0);
    char stone[800];
    snprintf (stone, sizeof stone, "%s/keep", occupied);
    f = fopen (stone, "w");
    fclose (f);
    assert_int_equal (s_rlctl (ctx, "occupied", NULL, "restore", dir, root, "2", NULL), 1);
    assert_true (s_log_says (ctx, "occupied", "not empty"));
    assert_int_equal (s_entries (root), 1);
    assert_int_equal (s_entries (occupied), 1);
    assert_int_equal (s_rlctl (ctx, "dotdot", NULL, "restore", dir, "/tmp/../tmp", NULL), 2);
    assert_int_equal (
        s_rlctl (ctx, "noset", NULL, "restore", "/nonexistent-backup-dir", root, NULL), 1);
    assert_int_equal (
        s_rlctl (ctx, "noverify", NULL, "verify-backup", "/nonexistent-backup-dir", NULL), 1);

    //  The shards serve on; nothing else moved.
    t = tk_transfer (tk_id (2, ctx->tag ^ 0x5500), tk_id (3, ctx->tag), tk_id (4, ctx->tag), 7,
                     LEDGER);
    assert_int_equal (rl_client_create_transfers (s_client_for (ctx, t.debit_account_id), &t, 1, &r,
                                                  TK_TIMEOUT_MS),
                      0);
    assert_int_equal (r.result, RL_OK);
    tk_model_apply (&model, &t);
    tk_check_conservation_by (s_client_for, ctx, &model, 2);
    s_cluster_stop (ctx);
}

//  n transfers between random accounts, one request each; the ok ones go
//  into the model.
static void
s_transfers (s_ctx_t *ctx, tk_model_t *model, uint64_t first, size_t n)
{
    uint64_t rng = 0x9a59e ^ first;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = 1 + rl_rand_next (&rng) % ACCOUNTS;
        uint64_t c = d % ACCOUNTS + 1;
        rl_transfer_t t = tk_transfer (tk_id (first + i, ctx->tag ^ 0x3300), tk_id (d, ctx->tag),
                                       tk_id (c, ctx->tag), 1 + i % 50, LEDGER);
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_transfers (s_client_for (ctx, t.debit_account_id), &t, 1,
                                                      &r, TK_TIMEOUT_MS),
                          0);
        assert_int_equal (r.result, RL_OK);
        tk_model_apply (model, &t);
    }
}

//  Backups in the backup engine of shard name in dir (its meta/ files).
static size_t
s_backups (const char *dir, const char *name)
{
    char meta[700];
    snprintf (meta, sizeof meta, "%.600s/%s/meta", dir, name);
    return s_entries (meta);
}

static bool
s_set_exists (const char *dir, unsigned number)
{
    char path[700];
    snprintf (path, sizeof path, "%.600s/set-%06u", dir, number);
    return access (path, F_OK) == 0;
}

//  Nothing was deleted: sets 1..3 and three backups of each shard.
static void
s_purge_nothing (const char *dir)
{
    for (unsigned n = 1; n <= 3; n++) {
        assert_true (s_set_exists (dir, n));
    }
    assert_int_equal (s_backups (dir, "b1"), 3);
    assert_int_equal (s_backups (dir, "b2"), 3);
}

static void
test_backup_purge (void **state)
{
    s_ctx_t *ctx = *state;
    ctx->tag = 0xbac3;
    s_cluster_init (ctx, NULL, "purge", NULL);
    s_accounts (ctx);
    static tk_model_t model;
    tk_model_init (&model, ctx->tag, ACCOUNTS);
    char dir[600];
    snprintf (dir, sizeof dir, "%s/purge-backups", harness_dir (ctx->h));
    assert_int_equal (mkdir (dir, 0700), 0);
    //  Three sets, with transfers before each (each adds table files).
    for (int k = 0; k < 3; k++) {
        s_transfers (ctx, &model, 1 + (uint64_t) k * 1000, 300);
        char log[32];
        snprintf (log, sizeof log, "purge_backup%d", k + 1);
        assert_int_equal (s_rlctl (ctx, log, NULL, "backup", dir, "--cluster", NULL), 0);
    }
    s_purge_nothing (dir);

    //  Bad input: usage errors, and nothing deleted.
    const char *keeps[] = {"0", "-1", "abc", "1x", "", "99999999999999999999", "1000000"};
    for (size_t i = 0; i < sizeof keeps / sizeof keeps[0]; i++) {
        assert_int_equal (s_rlctl (ctx, "purge_bad", NULL, "backup-purge", dir, keeps[i], NULL), 2);
    }
    assert_true (s_log_says (ctx, "purge_bad", "bad KEEP"));
    assert_int_equal (s_rlctl (ctx, "purge_noarg", NULL, "backup-purge", dir, NULL), 2);
    assert_int_equal (s_rlctl (ctx, "purge_dotdot", NULL, "backup-purge", "/tmp/../tmp", "1", NULL),
                      2);
    assert_int_equal (
        s_rlctl (ctx, "purge_missing", NULL, "backup-purge", "/nonexistent-backup-dir", "1", NULL),
        1);
    s_purge_nothing (dir);
    //  DIR in use (a restore or verify holds its lock shared): refused.
    char lock_path[700];
    snprintf (lock_path, sizeof lock_path, "%s/.rlctl-lock", dir);
    int fd = open (lock_path, O_RDWR | O_CREAT, 0600);
    assert_true (fd >= 0);
    assert_int_equal (flock (fd, LOCK_SH), 0);
    assert_int_equal (s_rlctl (ctx, "purge_in_use", NULL, "backup-purge", dir, "1", NULL), 1);
    assert_true (s_log_says (ctx, "purge_in_use", "in use"));
    //  ... while a verify (shared) goes on beside it.
    assert_int_equal (s_rlctl (ctx, "purge_verify_shared", NULL, "verify-backup", dir, NULL), 0);
    close (fd);
    s_purge_nothing (dir);
    //  A damaged set file: refused, whichever set it is.
    char set1[700];
    snprintf (set1, sizeof set1, "%s/set-000001", dir);
    char *text = harness_read_file (set1, NULL);
    assert_non_null (text);
    FILE *f = fopen (set1, "wb");
    fputs ("ringledger-backup-set 1\ntoken 0\n", f);
    fclose (f);
    assert_int_equal (s_rlctl (ctx, "purge_damaged", NULL, "backup-purge", dir, "1", NULL), 1);
    assert_true (s_log_says (ctx, "purge_damaged", "damaged"));
    f = fopen (set1, "wb");
    fputs (text, f);
    fclose (f);
    free (text);
    s_purge_nothing (dir);
    //  A kept set that does not verify (its private files gone): refused.
    char private3[700], hidden[720];
    snprintf (private3, sizeof private3, "%s/b2/private/3", dir);
    snprintf (hidden, sizeof hidden, "%s.hidden", private3);
    assert_int_equal (rename (private3, hidden), 0);
    assert_int_equal (s_rlctl (ctx, "purge_unverified", NULL, "backup-purge", dir, "1", NULL), 1);
    assert_true (s_log_says (ctx, "purge_unverified", "does not verify"));
    assert_int_equal (rename (hidden, private3), 0);
    s_purge_nothing (dir);
    //  A backup being written into an engine (a shard still copies): refused.
    char writing[700];
    snprintf (writing, sizeof writing, "%s/b1/private/4.tmp", dir);
    assert_int_equal (mkdir (writing, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "purge_writing", NULL, "backup-purge", dir, "1", NULL), 1);
    assert_true (s_log_says (ctx, "purge_writing", "being written"));
    assert_int_equal (rmdir (writing), 0);
    s_purge_nothing (dir);

    //  Keep 1: sets 1 and 2 and their backups go, set 3 verifies and restores.
    cJSON *json = NULL;
    assert_int_equal (s_rlctl (ctx, "purge1", &json, "backup-purge", dir, "1", NULL), 0);
    assert_int_equal (s_num (json, "sets_deleted"), 2);
    const cJSON *item;
    size_t shards = 0;
    cJSON_ArrayForEach (item, cJSON_GetObjectItem (json, "shards"))
    {
        assert_int_equal (s_num (item, "backups_before"), 3);
        assert_int_equal (s_num (item, "backups_after"), 1);
        assert_true (s_num (item, "bytes_after") < s_num (item, "bytes_before"));
        shards++;
    }
    assert_int_equal (shards, 2);
    cJSON_Delete (json);
    assert_false (s_set_exists (dir, 1));
    assert_false (s_set_exists (dir, 2));
    assert_true (s_set_exists (dir, 3));
    assert_int_equal (s_backups (dir, "b1"), 1);
    assert_int_equal (s_backups (dir, "b2"), 1);
    assert_int_equal (s_rlctl (ctx, "purge_verify3", NULL, "verify-backup", dir, NULL), 0);
    char root[600];
    snprintf (root, sizeof root, "%s/purge-root", harness_dir (ctx->h));
    assert_int_equal (mkdir (root, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "purge_restore1", NULL, "restore", dir, root, "1", NULL), 1);
    assert_int_equal (s_rlctl (ctx, "purge_restore3", NULL, "restore", dir, root, "3", NULL), 0);
    assert_int_equal (s_entries (root), 2);
    //  Keeping more sets than there are deletes nothing.
    assert_int_equal (s_rlctl (ctx, "purge5", &json, "backup-purge", dir, "5", NULL), 0);
    assert_int_equal (s_num (json, "sets_deleted"), 0);
    cJSON_Delete (json);
    assert_true (s_set_exists (dir, 3));
    assert_int_equal (s_backups (dir, "b1"), 1);
    //  The next backup numbers on (set 4, backup 4) and the shards serve on.
    s_transfers (ctx, &model, 5000, 50);
    assert_int_equal (s_rlctl (ctx, "purge_backup4", NULL, "backup", dir, "--cluster", NULL), 0);
    assert_true (s_set_exists (dir, 4));
    assert_int_equal (s_backups (dir, "b1"), 2);
    //  A set of one shard (5) restores nothing alone: keeping 1 keeps it
    //  and the newest set that restores (4), and deletes set 3 only.
    assert_int_equal (s_rlctl (ctx, "purge_backup5", NULL, "backup", dir, "--name", "b1", NULL), 0);
    assert_int_equal (s_rlctl (ctx, "purge_one", &json, "backup-purge", dir, "1", NULL), 0);
    assert_int_equal (s_num (json, "sets_deleted"), 1);
    cJSON_Delete (json);
    assert_false (s_set_exists (dir, 3));
    assert_true (s_set_exists (dir, 4));
    assert_true (s_set_exists (dir, 5));
    assert_int_equal (s_rlctl (ctx, "purge_verify4", NULL, "verify-backup", dir, "4", NULL), 0);
    char root4[600];
    snprintf (root4, sizeof root4, "%s/purge-root4", harness_dir (ctx->h));
    assert_int_equal (mkdir (root4, 0700), 0);
    //  The second shard's move into the root fails: the first goes back,
    //  and the empty directory it replaced is there again, as it was.
    char empty1[700];
    snprintf (empty1, sizeof empty1, "%s/b1", root4);
    assert_int_equal (mkdir (empty1, 0700), 0);
    assert_int_equal (chmod (empty1, 0750), 0);
    char *move_fails[] = {"RL_FAILPOINTS=backup.restore_move=error@2", NULL};
    pid_t mover = s_rlctl_start (ctx, "purge_restore_fails", move_fails, "restore", dir, root4, "4",
                                 NULL);
    assert_int_equal (s_rlctl_wait (ctx, mover), 1);
    assert_true (s_log_says (ctx, "purge_restore_fails", "cannot move"));
    assert_int_equal (s_entries (root4), 1);
    assert_int_equal (s_entries (empty1), 0);
    struct stat st;
    assert_int_equal (stat (empty1, &st), 0);
    assert_true (S_ISDIR (st.st_mode));
    assert_int_equal (st.st_mode & 07777, 0750);
    assert_int_equal (s_rlctl (ctx, "purge_restore4", NULL, "restore", dir, root4, "4", NULL), 0);
    assert_int_equal (s_entries (root4), 2);
    //  Backups of b1 and b2 at once pick the same number (the failpoint
    //  holds each after it): each set still gets a file (6 and 7), none
    //  replaced by the other.
    char *slow[] = {"RL_FAILPOINTS=backup.set_number=delay:1500", NULL};
    pid_t one = s_rlctl_start (ctx, "purge_race1", slow, "backup", dir, "--name", "b1", NULL);
    pid_t two = s_rlctl_start (ctx, "purge_race2", slow, "backup", dir, "--name", "b2", NULL);
    assert_int_equal (s_rlctl_wait (ctx, one), 0);
    assert_int_equal (s_rlctl_wait (ctx, two), 0);
    assert_true (s_set_exists (dir, 6));
    assert_true (s_set_exists (dir, 7));
    assert_false (s_set_exists (dir, 8));
    char set6[700], set7[700];
    snprintf (set6, sizeof set6, "%s/set-000006", dir);
    snprintf (set7, sizeof set7, "%s/set-000007", dir);
    char *text6 = harness_read_file (set6, NULL), *text7 = harness_read_file (set7, NULL);
    assert_non_null (text6);
    assert_non_null (text7);
    bool b1_in_6 = strstr (text6, "shard b1 ") != NULL;
    assert_true (b1_in_6 ? strstr (text7, "shard b2 ") != NULL
                         : strstr (text6, "shard b2 ") && strstr (text7, "shard b1 "));
    free (text6);
    free (text7);
    //  Files whose names only look like set files are no sets: the next
    //  backup is set 8, and verify-backup finds it as the last. ("set--00001"
    //  read as the highest number made a backup write set-000000.)
    const char *strays[] = {"set--00001", "set-7", "set-0000009", "set-00001x", "set-+00009"};
    for (size_t i = 0; i < sizeof strays / sizeof strays[0]; i++) {
        char stray[700];
        snprintf (stray, sizeof stray, "%s/%s", dir, strays[i]);
        FILE *file = fopen (stray, "w");
        assert_non_null (file);
        fclose (file);
    }
    assert_int_equal (s_rlctl (ctx, "stray_backup", NULL, "backup", dir, "--cluster", NULL), 0);
    assert_true (s_set_exists (dir, 8));
    assert_false (s_set_exists (dir, 0));
    assert_int_equal (s_rlctl (ctx, "stray_verify", NULL, "verify-backup", dir, NULL), 0);
    tk_check_conservation_by (s_client_for, ctx, &model, 950);
    s_cluster_stop (ctx);
}

//  A backup asked of a shard that serves an older ring than the others
//  (as a router does until its next refresh): b1 stays on epoch 1 (b1,
//  b2) while b2 and a new shard b3 serve epoch 2, which adds b3, and b3
//  holds accounts. The set must take the newest ring and every shard of
//  it: taken from b1's ring it held b1 and b2 alone, and restore accepted
//  it without b3's accounts.
static void
test_backup_stale_ring (void **state)
{
    s_ctx_t *ctx = *state;
    ctx->tag = 0xbac4;
    s_cluster_init (ctx, NULL, "stale", NULL);
    static tk_shard_t b3;
    tk_shard_init (ctx->h, &b3, "b3");
    b3.durability = "manual-wal";
    ring_t *ring2 = ring_dup (ctx->ring);
    assert_non_null (ring2);
    ring_set_epoch (ring2, 2);
    assert_int_equal (ring_add_shard (ring2, "b3", b3.endpoint, 1.0), 0);
    assert_int_equal (ring_set_key (ring2, "b3", tk_key (ctx->h, "shard", "b3")), 0);
    snprintf (b3.ring_file, sizeof b3.ring_file, "%s/stale2.ring", harness_dir (ctx->h));
    assert_int_equal (ring_save_file (ring2, b3.ring_file), 0);
    assert_true (tk_shard_start (ctx->h, &b3) > 0); //  its first ring: its arcs are its own
    size_t size = ring_encoded_size (ring2);
    uint8_t *blob = malloc (size);
    assert_non_null (blob);
    assert_int_equal (ring_encode (ring2, blob, size), size);
    assert_int_equal (rl_client_load_ring (ctx->clients[1], blob, size, TK_TIMEOUT_MS), 0);
    free (blob);
    //  Accounts on b3 (the ids epoch 2 gives it).
    rl_client_t *c3 = rl_client_new (b3.endpoint);
    assert_non_null (c3);
    size_t on_b3 = 0;
    for (uint64_t i = 1; i <= ACCOUNTS; i++) {
        rl_account_t a = tk_account (i, ctx->tag, LEDGER, 0);
        if (s_owner (ring2, a.id) != 2) {
            continue;
        }
        rl_result_rec_t r;
        assert_int_equal (rl_client_create_accounts (c3, &a, 1, &r, TK_TIMEOUT_MS), 0);
        assert_int_equal (r.result, RL_OK);
        on_b3++;
    }
    assert_true (on_b3 > 0);
    rl_client_destroy (&c3);

    char dir[600];
    snprintf (dir, sizeof dir, "%s/stale-backups", harness_dir (ctx->h));
    assert_int_equal (mkdir (dir, 0700), 0);
    cJSON *json = NULL;
    assert_int_equal (s_rlctl (ctx, "stale_backup", &json, "backup", dir, "--cluster", NULL), 0);
    assert_int_equal (s_num (json, "epoch"), 2);
    bool has_b3 = false;
    size_t shards = 0;
    const cJSON *item;
    cJSON_ArrayForEach (item, cJSON_GetObjectItem (json, "shards"))
    {
        const cJSON *name = cJSON_GetObjectItem (item, "shard");
        if (cJSON_IsString (name) && strcmp (name->valuestring, "b3") == 0) {
            has_b3 = true;
            assert_int_equal (s_num (item, "accounts"), on_b3);
        }
        shards++;
    }
    cJSON_Delete (json);
    assert_true (has_b3);
    assert_int_equal (shards, 3);
    assert_int_equal (s_rlctl (ctx, "stale_verify", &json, "verify-backup", dir, NULL), 0);
    assert_true (cJSON_IsTrue (cJSON_GetObjectItem (json, "restorable")));
    cJSON_Delete (json);
    char root[600];
    snprintf (root, sizeof root, "%s/stale-root", harness_dir (ctx->h));
    assert_int_equal (mkdir (root, 0700), 0);
    assert_int_equal (s_rlctl (ctx, "stale_restore", NULL, "restore", dir, root, NULL), 0);
    assert_int_equal (s_entries (root), 3);
    ring_destroy (&ring2);
    assert_int_equal (tk_shard_stop (ctx->h, &b3, SIGTERM), 0);
    s_cluster_stop (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_backup_restore, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_between_pieces, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_purge, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_stale_ring, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
