/*  test_shard_crash.c: SIGKILL a shard at seeded random points, restart it,
    and check that nothing acknowledged was lost and nothing was applied
    twice.

    The shard runs with --durability manual-wal: its WAL stays in process
    memory until each group commit flushes and syncs it, so SIGKILL really
    drops whatever was not group-committed (with an ordinary WAL the page
    cache would keep it and hide a missing sync).

    Each round arms one crash point (a failpoint at its Nth hit, N seeded)
    or kills the shard from outside while a request is in flight, and drives
    batches of transfers until the shard dies. Then:
      - every transfer acknowledged ok is present after the restart;
      - an unanswered transfer is settled by lookup: present means applied;
        absent means not applied, and a retry with the same id executes;
      - retries of old ids (ingested into the index by earlier checkpoints,
        and from before the restart) get their original outcome;
      - at the end, the strong conservation check: balances equal the model
        built from the outcomes, and the sum of each account's history.

    With the argument `pipelined`, the group commit's own states instead:
    several clients at once and a slow sync, so that a kill finds a sync in
    flight, later batches written behind it and their replies held (see
    test_pipelined_crash).

    Seed: RL_SEED=<n> replays a run; the seed is printed first.
*/
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <czmq.h>

#include "rl_rand.h"
#include "codec.h"
#include "journal.h"
#include "store.h"
#include "testkit.h"

#define TAG             0x4352415348ull //  "CRASH"
#define LEDGER          978
#define ACCOUNTS        16
#define ROUNDS          8
#define TRANSFERS_MAX   20000
#define BATCH_MAX       64
#define CALL_TIMEOUT_MS 4000
#define PIECE_ACCOUNTS  "4"

static tk_outcome_t s_records[TRANSFERS_MAX];
static tk_outcomes_t s_log = {.records = s_records, .capacity = TRANSFERS_MAX};
static uint64_t s_rng;

static uint64_t
s_rand (void)
{
    return rl_rand_next (&s_rng);
}

static rl_transfer_t
s_new_transfer (void)
{
    uint64_t from = s_rand () % 3 == 0 ? 1 : 2 + s_rand () % (ACCOUNTS - 1);
    uint64_t to = 2 + s_rand () % (ACCOUNTS - 1);
    if (to == from) {
        to = to == ACCOUNTS ? 2 : to + 1;
    }
    return tk_transfer (tk_id (100000 + s_log.count, TAG), tk_id (from, TAG), tk_id (to, TAG),
                        1 + s_rand () % 100, LEDGER);
}

//  A batch of 1..BATCH_MAX new transfers, recorded with outcome unknown.
//  Returns its size.
static size_t
s_new_batch (rl_transfer_t *ts)
{
    size_t n = 1 + s_rand () % BATCH_MAX;
    for (size_t i = 0; i < n; i++) {
        ts[i] = s_new_transfer ();
        tk_outcomes_sent (&s_log, &ts[i]);
    }
    return n;
}

static const char *s_points[] = {
    "shard.before_commit", "shard.after_write", "shard.after_sync", "shard.after_reply", NULL,
};

//  Drives batches until the shard dies. Returns the wait status.
static int
s_drive_until_death (harness_t *h, tk_shard_t *shard, tk_model_t *model, bool external)
{
    rl_client_t *client = rl_client_new (shard->endpoint);
    size_t kill_after = 1 + s_rand () % 12;
    for (size_t batch = 0; s_log.count + BATCH_MAX < TRANSFERS_MAX; batch++) {
        rl_transfer_t ts[BATCH_MAX];
        rl_result_rec_t rs[BATCH_MAX];
        size_t first = s_log.count;
        size_t n = s_new_batch (ts);
        if (external && batch == kill_after) {
            //  Kill while this batch is in flight: send it, then SIGKILL at once.
            rl_header_t rh;
            uint8_t *reply = NULL;
            size_t reply_size = 0;
            uint8_t body[BATCH_MAX * RL_TRANSFER_SIZE];
            for (size_t i = 0; i < n; i++) {
                codec_encode_transfer (&ts[i], body + i * RL_TRANSFER_SIZE);
            }
            harness_kill (h, shard->pid, SIGKILL);
            rl_client_call (client, RL_OP_CREATE_TRANSFERS, body, n * RL_TRANSFER_SIZE,
                            (uint32_t) n, 200, &rh, &reply, &reply_size);
            free (reply);
            break;
        }
        int rc = rl_client_create_transfers (client, ts, n, rs, CALL_TIMEOUT_MS);
        if (rc != 0) {
            break; //  the shard died: the batch's outcome is unknown
        }
        tk_outcomes_answered (&s_log, first, rs, n, false, model);
    }
    rl_client_destroy (&client);
    int wstatus = 0;
    assert_int_equal (harness_wait_exit (h, shard->pid, 20000, &wstatus), 0);
    shard->pid = -1;
    return wstatus;
}

//  Shard s1 (manual-wal: the WAL held in memory until each commit, a
//  checkpoint every 50 transfers) with the accounts, stopped.
static void
s_shard_prepare (harness_t *h, tk_shard_t *shard)
{
    tk_shard_init (h, shard, "s1");
    shard->durability = "manual-wal";
    shard->checkpoint_transfers = 50;
    //  A checkpoint writes its 16 accounts in pieces of PIECE_ACCOUNTS:
    //  every crash here may also land between two pieces.
    shard->args[0] = "--checkpoint-piece-accounts";
    shard->args[1] = PIECE_ACCOUNTS;
    shard->args[2] = NULL;
    tk_shard_prepare_accounts (h, shard, TAG, LEDGER, ACCOUNTS);
}

static int
s_setup (void **state)
{
    *state = harness_new ("shard_crash");
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
test_crash_restart (void **state)
{
    harness_t *h = *state;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("test_shard_crash: RL_SEED=%lu\n", (unsigned long) seed);
    s_rng = seed * 0x9E3779B97F4A7C15ull + 1;
    tk_shard_t shard;
    s_shard_prepare (h, &shard);
    rl_client_t *client = NULL;
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    static char fp_env[128];
    for (int round = 0; round < ROUNDS; round++) {
        size_t p = s_rand () % 5;
        bool external = s_points[p] == NULL;
        unsigned hit = 1 + (unsigned) (s_rand () % 8);
        snprintf (fp_env, sizeof (fp_env), "RL_FAILPOINTS=%s=crash@%u",
                  external ? "test.alpha" : s_points[p], hit);
        shard.env[0] = fp_env;
        shard.env[1] = NULL;
        printf ("round %d: %s\n", round, external ? "external SIGKILL" : fp_env + 14);
        assert_true (tk_shard_start (h, &shard) > 0);
        int wstatus = s_drive_until_death (h, &shard, &model, external);
        if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL) {
            harness_keep (h);
            fail_msg ("round %d: shard did not die by SIGKILL (status 0x%x)", round, wstatus);
        }
        shard.env[0] = NULL;
        assert_true (tk_shard_start (h, &shard) > 0);
        client = rl_client_new (shard.endpoint);
        tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, NULL);
        tk_outcomes_retry_sample (&s_log, client, 32, &s_rng, CALL_TIMEOUT_MS);
        rl_client_destroy (&client);
        tk_shard_stop (h, &shard, SIGTERM);
    }
    assert_true (tk_shard_start (h, &shard) > 0);
    client = rl_client_new (shard.endpoint);
    tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, NULL);
    tk_check_conservation (client, &model, ROUNDS);
    printf ("test_shard_crash: %zu transfers, %lu ok, %d crashes\n", s_log.count,
            (unsigned long) model.ok, ROUNDS);
    rl_client_destroy (&client);
}

//  The checkpoint's ingest window ----------------------------------------
//
//  A checkpoint ingests each sorted index as an SST file. A crash anywhere
//  in that window must leave a shard that restarts and whose later
//  checkpoints and lookups work. The worst spot is inside RocksDB, after it
//  has linked the staged file into the database and before it unlinks the
//  staged name: that name is then a second link to a live SST, and a next
//  process that wrote a new SST under the same name would truncate the live
//  file through it. The kill_at_unlink shim kills the shard exactly there;
//  failpoints cover the steps around it.
//
//  The checkpoint runs on a thread of its own while the loop serves new
//  transfers into a fresh generation (shard/checkpoint.c). The cases with
//  checkpoint.* points crash the shard at each state of that thread:
//  just started, with SSTs written or ingested, before its batch, and
//  after its batch but before the loop has dropped the frozen generation.
//  A delay at checkpoint.started holds the background back, so that the
//  loop has served (and acknowledged) transfers of the new generation
//  when the crash comes.
//
//  The accounts go in pieces (checkpoint.c, "PIECES"), and checkpoint.piece
//  crashes between two of them. With --durability sync the pieces written
//  before the crash are in the WAL file (the page cache keeps them), so the
//  restart finds the piece key and must post to the accounts it covers only
//  the transfers after that checkpoint: a replay that posted them again, or
//  skipped too many, fails the final check of every account's balance.
//  Each such case asserts that its restart found the pieces (the shard's
//  log says so). Under manual-wal the pieces not yet synced die with the
//  process (a loop's sync between two pieces may have kept some).
//  A case marked `chain` is followed at once by the next case on the disk
//  it left, with the piece key of a checkpoint stopped after three
//  pieces: the next run's first checkpoint must go whole (the replay
//  honours one piece key), and its crash comes in a later checkpoint's
//  second piece. A build that wrote that first checkpoint in pieces over
//  the stale key would stop after two, over fewer keys: the accounts
//  between the two keys would keep the older checkpoint's balances under
//  the newer one's key, and the replay would post those transfers twice.
//  Before the first sync case restarts, its piece key is made hostile on
//  disk (s_piece_key_hostile): every start is refused until it is put back.

typedef struct {
    const char *failpoint;    //  RL_FAILPOINTS entry, or NULL: the unlink shim
    const char *unlink_match; //  with the shim: the staged name's column family
    const char *durability;   //  of the run that crashes; NULL: manual-wal
    bool chain;               //  the next case starts on this one's crashed disk
    bool hostile;             //  its piece key made hostile before the restart
} s_window_case_t;

//  How many times the shard's log says a restart found a checkpoint's pieces.
static size_t
s_piece_restarts (harness_t *h)
{
    char *path = harness_path (h, "s1.log");
    FILE *f = fopen (path, "r");
    free (path);
    if (!f) {
        return 0;
    }
    size_t count = 0;
    char line[4096];
    while (fgets (line, sizeof (line), f)) {
        count += strstr (line, "wrote part of its accounts") != NULL;
    }
    fclose (f);
    return count;
}

//  Hostile piece keys (bad input on disk): the key a crash between two
//  pieces left, put back one byte short, one byte long and empty. Each
//  start is refused with a message naming the key and its size, and
//  changes nothing: the key put back as the crash left it then recovers
//  as if nothing had happened (the case's checks follow).
//  Puts the piece key of the stopped shard's store: `size` bytes of value.
static void
s_piece_key_put (const tk_shard_t *shard, const uint8_t *value, size_t size)
{
    const char *name = JOURNAL_META_CHECKPOINT_PIECE;
    char err[256] = "";
    store_t *store = store_open (shard->data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    store_batch_put (store, STORE_CF_META, name, strlen (name), value, size);
    assert_int_equal (store_commit (store), 0);
    store_close (&store);
}

static void
s_piece_key_hostile (harness_t *h, tk_shard_t *shard)
{
    const char *name = JOURNAL_META_CHECKPOINT_PIECE;
    char err[256] = "";
    store_t *store = store_open (shard->data_dir, RL_DURABILITY_SYNC, err, sizeof (err));
    assert_non_null (store);
    uint8_t value[JOURNAL_PIECE_SIZE + 1] = {0}, bad[JOURNAL_PIECE_SIZE + 1];
    size_t size = 0;
    assert_int_equal (
        store_get (store, STORE_CF_META, name, strlen (name), value, sizeof (value), &size), 1);
    assert_int_equal (size, JOURNAL_PIECE_SIZE);
    store_close (&store);
    const size_t sizes[] = {JOURNAL_PIECE_SIZE - 1, JOURNAL_PIECE_SIZE + 1, 0};
    for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
        memcpy (bad, value, sizeof (bad));
        bad[JOURNAL_PIECE_SIZE] = 0xff;
        s_piece_key_put (shard, bad, sizes[i]);
        char why[128];
        snprintf (why, sizeof (why), "corrupt %s (%zu bytes)", name, sizes[i]);
        if (tk_shard_start (h, shard) > 0 || !tk_log_contains (h, shard->name, why)) {
            harness_keep (h);
            fail_msg ("a piece key of %zu bytes was not refused with \"%s\"", sizes[i], why);
        }
        shard->pid = -1;
    }
    s_piece_key_put (shard, value, JOURNAL_PIECE_SIZE);
}

static const s_window_case_t s_window_cases[] = {
    {NULL, "-tx_index-"},
    {NULL, "-history-"},
    {"store.ingest.staged=crash@1", NULL},
    {"store.ingest.done=crash@1", NULL},
    {"store.ingest.done=crash@2", NULL},
    {"checkpoint.started=crash@2", NULL},
    {"checkpoint.started=delay:300,store.ingest.staged=crash@4", NULL},
    {"checkpoint.started=delay:300,store.ingest.done=crash@5", NULL},
    {"checkpoint.started=delay:300,checkpoint.ingested=crash@2", NULL},
    {"checkpoint.started=delay:300,checkpoint.committed=crash@2", NULL},
    {"checkpoint.piece=crash@1", NULL, "sync", false, true},
    {"checkpoint.started=delay:300,checkpoint.piece=crash@5", NULL, "sync"},
    {"checkpoint.piece=crash@2", NULL, NULL}, //  manual-wal
    {"checkpoint.piece=crash@3", NULL, "sync", true},
    {"checkpoint.started=delay:300,checkpoint.piece=crash@2", NULL, "sync"},
};
#define WINDOW_PIECE_RESTARTS 4 //  the cases with "sync" above

#define WINDOW_CASES           (sizeof (s_window_cases) / sizeof (s_window_cases[0]))
#define WINDOW_AFTER_TRANSFERS 400 //  after each restart: several checkpoints' worth

//  Staged ingest files in the data directory that are a second link to a
//  file inside the database.
static size_t
s_linked_staged_files (const char *data_dir)
{
    DIR *dir = opendir (data_dir);
    assert_non_null (dir);
    size_t linked = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL) {
        if (strncmp (entry->d_name, "ingest-", 7) != 0) {
            continue;
        }
        char path[1024];
        snprintf (path, sizeof (path), "%s/%s", data_dir, entry->d_name);
        struct stat st;
        if (stat (path, &st) == 0 && st.st_nlink > 1) {
            linked++;
        }
    }
    closedir (dir);
    return linked;
}

//  Lines of the shim's hit file that name a path containing `match` (0 when
//  the file does not exist yet).
static size_t
s_hits_matching (const char *hit_file, const char *match)
{
    FILE *file = fopen (hit_file, "r");
    if (!file) {
        return 0;
    }
    size_t hits = 0;
    char line[2048];
    while (fgets (line, sizeof (line), file)) {
        if (strstr (line, match)) {
            hits++;
        }
    }
    fclose (file);
    return hits;
}

//  The staged ingest files in the data directory, by name (at most cap).
#define STAGED_MAX 16
static size_t
s_staged_names (const char *data_dir, char names[][1024], size_t cap)
{
    DIR *dir = opendir (data_dir);
    assert_non_null (dir);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL && count < cap) {
        if (strncmp (entry->d_name, "ingest-", 7) == 0) {
            snprintf (names[count++], 1024, "%s/%s", data_dir, entry->d_name);
        }
    }
    closedir (dir);
    return count;
}

//  Drives `count` transfers in batches; every batch must be answered.
static void
s_drive_answered (rl_client_t *client, tk_model_t *model, size_t count)
{
    for (size_t done = 0; done < count && s_log.count + BATCH_MAX < TRANSFERS_MAX;) {
        rl_transfer_t ts[BATCH_MAX];
        rl_result_rec_t rs[BATCH_MAX];
        size_t first = s_log.count;
        size_t n = s_new_batch (ts);
        int rc = rl_client_create_transfers (client, ts, n, rs, CALL_TIMEOUT_MS);
        if (rc != 0) {
            fail_msg ("a batch after the restart was not answered (rc %d)", rc);
        }
        tk_outcomes_answered (&s_log, first, rs, n, false, model);
        done += n;
    }
}

static void
test_checkpoint_window (void **state)
{
    harness_t *h = *state;
    s_log.count = 0;
    tk_shard_t shard;
    s_shard_prepare (h, &shard);
    rl_client_t *client = NULL;
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);

    static char env[4][1100];
    static char hit_file[1024];
    char *hit_path = harness_path (h, "unlink-hits");
    snprintf (hit_file, sizeof (hit_file), "%s", hit_path);
    free (hit_path);
    for (size_t c = 0; c < WINDOW_CASES; c++) {
        const s_window_case_t *wc = &s_window_cases[c];
        shard.durability = wc->durability ? wc->durability : "manual-wal";
        if (wc->failpoint) {
            snprintf (env[0], sizeof (env[0]), "RL_FAILPOINTS=%s", wc->failpoint);
            shard.env[0] = env[0];
            shard.env[1] = NULL;
        } else {
            snprintf (env[0], sizeof (env[0]), "LD_PRELOAD=%s", RL_KILL_AT_UNLINK_SO);
            snprintf (env[1], sizeof (env[1]), "RL_TEST_KILL_AT_UNLINK=%s", wc->unlink_match);
            snprintf (env[2], sizeof (env[2]), "RL_TEST_KILL_AT_UNLINK_FILE=%s", hit_file);
            snprintf (env[3], sizeof (env[3]), "ASAN_OPTIONS=verify_asan_link_order=0");
            for (int i = 0; i < 4; i++) {
                shard.env[i] = env[i];
            }
            shard.env[4] = NULL;
        }
        printf ("window case %zu: %s%s\n", c, wc->failpoint ? wc->failpoint : "kill at unlink ",
                wc->failpoint ? "" : wc->unlink_match);
        size_t hits_before = wc->failpoint ? 0 : s_hits_matching (hit_file, wc->unlink_match);
        assert_true (tk_shard_start (h, &shard) > 0);
        int wstatus = s_drive_until_death (h, &shard, &model, false);
        if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL) {
            harness_keep (h);
            fail_msg ("window case %zu: shard did not die by SIGKILL (status 0x%x)", c, wstatus);
        }
        if (!wc->failpoint) {
            //  The dangerous state was really reached: the shim saw a
            //  staged name of this column family that still linked to a
            //  file of the database, and killed the shard there. It
            //  usually still does after the kill; a compaction running on
            //  another thread of the shard may have deleted the database's
            //  name in between (the staged name is then a plain leftover,
            //  which the restart must remove all the same).
            size_t hits = s_hits_matching (hit_file, wc->unlink_match);
            if (hits != hits_before + 1) {
                harness_keep (h);
                fail_msg ("window case %zu: the shim recorded %zu kills at %s, expected %zu", c,
                          hits, wc->unlink_match, hits_before + 1);
            }
            printf ("window case %zu: %zu staged names still linked\n", c,
                    s_linked_staged_files (shard.data_dir));
        }
        //  What the crash left staged; the restart must remove it. (The new
        //  process stages files of its own, under other names, while its
        //  background checkpoint ingests them: those may be seen linked.)
        shard.env[0] = NULL;
        shard.durability = "manual-wal";
        if (wc->chain) {
            continue;
        }
        size_t found_before = s_piece_restarts (h);
        if (wc->hostile) {
            s_piece_key_hostile (h, &shard);
        }
        static char left[STAGED_MAX][1024];
        size_t left_count = s_staged_names (shard.data_dir, left, STAGED_MAX);
        //  Restart, settle, and run several checkpoints (they write new
        //  staged files); then restart again, so that every SST is opened.
        for (int pass = 0; pass < 2; pass++) {
            assert_true (tk_shard_start (h, &shard) > 0);
            client = rl_client_new (shard.endpoint);
            tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, NULL);
            tk_outcomes_retry_sample (&s_log, client, 32, &s_rng, CALL_TIMEOUT_MS);
            if (pass == 0 && wc->durability && s_piece_restarts (h) == found_before) {
                harness_keep (h);
                fail_msg ("window case %zu: the restart found no checkpoint's pieces", c);
            }
            if (pass == 0) {
                for (size_t k = 0; k < left_count; k++) {
                    struct stat st;
                    if (stat (left[k], &st) == 0) {
                        fail_msg ("window case %zu: %s left after the restart", c, left[k]);
                    }
                }
                s_drive_answered (client, &model, WINDOW_AFTER_TRANSFERS);
            }
            rl_client_destroy (&client);
            tk_shard_stop (h, &shard, SIGTERM);
        }
    }
    assert_true (tk_shard_start (h, &shard) > 0);
    client = rl_client_new (shard.endpoint);
    tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, NULL);
    tk_check_conservation (client, &model, WINDOW_CASES * WINDOW_AFTER_TRANSFERS / 2);
    size_t piece_restarts = s_piece_restarts (h);
    printf ("test_checkpoint_window: %zu transfers, %lu ok, %zu crashes, %zu restarts found "
            "pieces\n",
            s_log.count, (unsigned long) model.ok, WINDOW_CASES, piece_restarts);
    if (piece_restarts < WINDOW_PIECE_RESTARTS) {
        harness_keep (h);
        fail_msg ("only %zu restarts found a checkpoint's pieces, expected %d", piece_restarts,
                  WINDOW_PIECE_RESTARTS);
    }
    rl_client_destroy (&client);
}

//  The pipelined group commit ---------------------------------------------
//
//  The loop writes a turn's batch and goes on while a thread of its own
//  syncs it; replies wait across turns for their sync (shard/server.c).
//  Each case holds every sync back (shard.sync_in_flight=delay) while
//  PIPE_CLIENTS clients send at once, so that the loop writes turn after
//  turn behind a sync in flight with their replies held, and then kills
//  the shard: in the sync thread with a sync in flight, on the loop right
//  after a write behind one, right after a sync with later batches still
//  unsynced, or from outside. With manual-wal the kill drops every write
//  not synced, so a reply sent one sync too early would show as an
//  acknowledged transfer missing after the restart.

#define PIPE_CLIENTS    4
#define PIPE_TIMEOUT_MS 1500

static const char *s_pipe_cases[] = {
    "shard.sync_in_flight=crash@%u",
    "shard.sync_in_flight=delay:20,shard.after_write=crash@%u",
    "shard.sync_in_flight=delay:20,shard.after_sync=crash@%u",
    "shard.sync_in_flight=delay:20,shard.after_reply=crash@%u",
    "shard.sync_in_flight=delay:20", //  killed from outside
};
#define PIPE_CASES (sizeof (s_pipe_cases) / sizeof (s_pipe_cases[0]))

typedef struct {
    const char *endpoint;
    tk_model_t *model;
    pthread_mutex_t *lock; //  guards s_log, s_rng and the model
    atomic_bool *stop;
    size_t answered;
} s_pipe_client_t;

//  One client: batches one after the other until told to stop; a batch
//  not answered (the shard died, or is slow) stays unknown.
static void *
s_pipe_client (void *arg)
{
    s_pipe_client_t *c = arg;
    rl_client_t *client = rl_client_new (c->endpoint);
    while (!atomic_load (c->stop)) {
        rl_transfer_t ts[BATCH_MAX];
        rl_result_rec_t rs[BATCH_MAX];
        pthread_mutex_lock (c->lock);
        bool room = s_log.count + BATCH_MAX < TRANSFERS_MAX;
        size_t first = s_log.count;
        size_t n = room ? s_new_batch (ts) : 0;
        pthread_mutex_unlock (c->lock);
        if (!room) {
            break;
        }
        if (rl_client_create_transfers (client, ts, n, rs, PIPE_TIMEOUT_MS) != 0) {
            //  Unknown: a new connection, so that a late reply is not taken
            //  for the next batch's.
            rl_client_destroy (&client);
            client = rl_client_new (c->endpoint);
            zclock_sleep (20);
            continue;
        }
        pthread_mutex_lock (c->lock);
        tk_outcomes_answered (&s_log, first, rs, n, false, c->model);
        c->answered++;
        pthread_mutex_unlock (c->lock);
    }
    rl_client_destroy (&client);
    return NULL;
}

static void
test_pipelined_crash (void **state)
{
    harness_t *h = *state;
    uint64_t seed = getenv ("RL_SEED") ? strtoull (getenv ("RL_SEED"), NULL, 10)
                                       : (uint64_t) time (NULL);
    printf ("test_pipelined_crash: RL_SEED=%lu\n", (unsigned long) seed);
    s_rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s_log.count = 0;
    tk_shard_t shard;
    s_shard_prepare (h, &shard);
    tk_model_t model;
    tk_model_init (&model, TAG, ACCOUNTS);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char fp_env[160];
    size_t answered = 0;
    for (size_t c = 0; c < PIPE_CASES; c++) {
        bool external = c == PIPE_CASES - 1;
        unsigned hit = 4 + (unsigned) (s_rand () % 12);
        memcpy (fp_env, "RL_FAILPOINTS=", 14);
        snprintf (fp_env + 14, sizeof (fp_env) - 14, s_pipe_cases[c], hit);
        shard.env[0] = fp_env;
        shard.env[1] = NULL;
        printf ("pipelined case %zu: %s%s\n", c, fp_env + 14, external ? ", external SIGKILL" : "");
        assert_true (tk_shard_start (h, &shard) > 0);
        atomic_bool stop = false;
        s_pipe_client_t clients[PIPE_CLIENTS];
        pthread_t threads[PIPE_CLIENTS];
        for (size_t i = 0; i < PIPE_CLIENTS; i++) {
            clients[i] = (s_pipe_client_t){shard.endpoint, &model, &lock, &stop, 0};
            assert_int_equal (pthread_create (&threads[i], NULL, s_pipe_client, &clients[i]), 0);
        }
        if (external) {
            zclock_sleep (150 + (int) (s_rand () % 400));
            harness_kill (h, shard.pid, SIGKILL);
        }
        int wstatus = 0;
        int waited = harness_wait_exit (h, shard.pid, 30000, &wstatus);
        atomic_store (&stop, true);
        for (size_t i = 0; i < PIPE_CLIENTS; i++) {
            pthread_join (threads[i], NULL);
            answered += clients[i].answered;
        }
        assert_int_equal (waited, 0);
        shard.pid = -1;
        if (!WIFSIGNALED (wstatus) || WTERMSIG (wstatus) != SIGKILL) {
            harness_keep (h);
            fail_msg ("pipelined case %zu: shard did not die by SIGKILL (status 0x%x)", c, wstatus);
        }
        shard.env[0] = NULL;
        assert_true (tk_shard_start (h, &shard) > 0);
        rl_client_t *client = rl_client_new (shard.endpoint);
        tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, NULL);
        tk_outcomes_retry_sample (&s_log, client, 32, &s_rng, CALL_TIMEOUT_MS);
        rl_client_destroy (&client);
        tk_shard_stop (h, &shard, SIGTERM);
    }
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    tk_outcomes_settle (&s_log, client, &model, CALL_TIMEOUT_MS, NULL);
    tk_check_conservation (client, &model, PIPE_CASES);
    printf ("test_pipelined_crash: %zu transfers, %lu ok, %zu batches answered, %zu crashes\n",
            s_log.count, (unsigned long) model.ok, answered, PIPE_CASES);
    rl_client_destroy (&client);
    assert_true (answered > PIPE_CASES); //  the clients were served between the kills
}

int
main (int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_crash_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_checkpoint_window, s_setup, s_teardown),
    };
    const struct CMUnitTest pipelined[] = {
        cmocka_unit_test_setup_teardown (test_pipelined_crash, s_setup, s_teardown),
    };
    if (argc > 1 && strcmp (argv[1], "pipelined") == 0) {
        return cmocka_run_group_tests (pipelined, NULL, NULL);
    }
    return cmocka_run_group_tests (tests, NULL, NULL);
}
