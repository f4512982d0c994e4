/*  testkit.c: see testkit.h. */
#include "testkit.h"

#include <assert.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "ring.h"

void
tk_shard_init (harness_t *h, tk_shard_t *shard, const char *name)
{
    memset (shard, 0, sizeof (*shard));
    snprintf (shard->name, sizeof (shard->name), "%s", name);
    shard->port = harness_free_port ();
    assert (shard->port > 0);
    snprintf (shard->endpoint, sizeof (shard->endpoint), "tcp://127.0.0.1:%d", shard->port);
    snprintf (shard->data_dir, sizeof (shard->data_dir), "%s/%s", harness_dir (h), name);
    shard->durability = "sync";
    shard->pid = -1;
}

bool
tk_wait_ready (const char *endpoint, int timeout_ms)
{
    rl_client_t *client = rl_client_new (endpoint);
    if (!client) {
        return false;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    bool ready = false;
    while (!ready && zclock_mono () < deadline) {
        rl_status_rec_t status;
        ready = rl_client_status (client, &status, 200) == 0;
    }
    rl_client_destroy (&client);
    return ready;
}

//  Waits for status answers; false as soon as the process exits.
static bool
s_wait_ready_or_exit (harness_t *h, tk_shard_t *shard, int *wstatus)
{
    rl_client_t *client = rl_client_new (shard->endpoint);
    assert (client);
    int64_t deadline = zclock_mono () + TK_READY_TIMEOUT_MS;
    bool ready = false;
    while (!ready && zclock_mono () < deadline) {
        if (harness_wait_exit (h, shard->pid, 0, wstatus) == 0) {
            shard->pid = -1;
            break;
        }
        rl_status_rec_t status;
        ready = rl_client_status (client, &status, 200) == 0
                && strcmp (status.name, shard->name) == 0;
    }
    rl_client_destroy (&client);
    return ready;
}

pid_t
tk_shard_start (harness_t *h, tk_shard_t *shard)
{
    char path[1024];
    char checkpoint[32];
    snprintf (path, sizeof (path), "%s/shard/shard", harness_bin_dir ());
    snprintf (checkpoint, sizeof (checkpoint), "%ld", shard->checkpoint_transfers);
    //  A port can be taken between harness_free_port and the bind (by another
    //  test's connection): then the shard exits at once and we try another.
    for (int attempt = 0; attempt < TK_START_ATTEMPTS; attempt++) {
        char *argv[32];
        int n = 0;
        argv[n++] = path;
        argv[n++] = "--name";
        argv[n++] = shard->name;
        argv[n++] = "--bind";
        argv[n++] = shard->endpoint;
        argv[n++] = "--data";
        argv[n++] = shard->data_dir;
        argv[n++] = "--durability";
        argv[n++] = (char *) shard->durability;
        if (shard->ring_file[0]) {
            argv[n++] = "--ring";
            argv[n++] = shard->ring_file;
        }
        if (shard->checkpoint_transfers > 0) {
            argv[n++] = "--checkpoint-transfers";
            argv[n++] = checkpoint;
        }
        for (int k = 0; shard->args[k] && k < 12; k++) {
            argv[n++] = shard->args[k];
        }
        argv[n] = NULL;
        shard->pid = harness_spawn (h, shard->name, argv, shard->env);
        if (shard->pid < 0) {
            return -1;
        }
        int wstatus = 0;
        if (s_wait_ready_or_exit (h, shard, &wstatus)) {
            return shard->pid;
        }
        if (shard->pid > 0) {
            break; //  alive but not answering: a real failure
        }
        shard->port = harness_free_port ();
        snprintf (shard->endpoint, sizeof (shard->endpoint), "tcp://127.0.0.1:%d", shard->port);
    }
    harness_dump_log (h, shard->name);
    return -1;
}

int
tk_shard_stop (harness_t *h, tk_shard_t *shard, int sig)
{
    if (shard->pid < 0) {
        return -1;
    }
    int wstatus = 0;
    harness_kill (h, shard->pid, sig);
    int rc = harness_wait_exit (h, shard->pid, 20000, &wstatus);
    shard->pid = -1;
    return rc == 0 ? wstatus : -1;
}

rl_id_t
tk_id (uint64_t lo, uint64_t tag)
{
    return (rl_id_t){.lo = lo, .hi = tag};
}

rl_account_t
tk_account (uint64_t i, uint64_t tag, uint32_t ledger, uint16_t flags)
{
    return (rl_account_t){.id = tk_id (i, tag), .ledger = ledger, .code = 10, .flags = flags};
}

rl_transfer_t
tk_transfer (rl_id_t id, rl_id_t debit, rl_id_t credit, uint64_t amount, uint32_t ledger)
{
    return (rl_transfer_t){
        .id = id,
        .debit_account_id = debit,
        .credit_account_id = credit,
        .amount = amount,
        .ledger = ledger,
        .code = 1,
    };
}

void
tk_model_init (tk_model_t *model, uint64_t tag, size_t count)
{
    assert (count <= TK_ACCOUNTS_MAX);
    memset (model, 0, sizeof (*model));
    model->tag = tag;
    model->count = count;
}

void
tk_model_apply (tk_model_t *model, const rl_transfer_t *t)
{
    assert (t->debit_account_id.lo >= 1 && t->debit_account_id.lo <= model->count);
    assert (t->credit_account_id.lo >= 1 && t->credit_account_id.lo <= model->count);
    model->debits[t->debit_account_id.lo] += t->amount;
    model->credits[t->credit_account_id.lo] += t->amount;
    model->ok++;
}

//  Sums one account's history by paging through get_account_transfers.
static void
s_history_sums (rl_client_t *client, rl_id_t id, uint64_t *debits_p, uint64_t *credits_p,
                uint64_t *count_p)
{
    static rl_transfer_t page[RL_HISTORY_LIMIT_MAX];
    rl_filter_t filter = {
        .account_id = id,
        .limit = RL_HISTORY_LIMIT_MAX,
        .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS,
    };
    *debits_p = *credits_p = *count_p = 0;
    uint64_t last_ts = 0;
    while (true) {
        size_t count = 0;
        int rc = rl_client_get_account_transfers (client, &filter, page, &count, TK_TIMEOUT_MS);
        assert_int_equal (rc, 0);
        for (size_t i = 0; i < count; i++) {
            assert_true (page[i].timestamp > last_ts); //  ascending, no duplicates
            last_ts = page[i].timestamp;
            if (rl_id_eq (page[i].debit_account_id, id)) {
                *debits_p += page[i].amount;
            }
            if (rl_id_eq (page[i].credit_account_id, id)) {
                *credits_p += page[i].amount;
            }
        }
        *count_p += count;
        if (count < filter.limit) {
            break;
        }
        filter.timestamp_min = last_ts + 1;
    }
}

static rl_client_t *
s_single (void *ctx, rl_id_t id)
{
    (void) id;
    return ctx;
}

void
tk_check_conservation (rl_client_t *client, const tk_model_t *model, uint64_t ok_min)
{
    tk_check_conservation_by (s_single, client, model, ok_min);
}

bool
tk_wait_quiet (rl_client_t **shards, size_t count, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        bool quiet = true;
        for (size_t i = 0; i < count && quiet; i++) {
            rl_status_rec_t status;
            quiet = rl_client_status (shards[i], &status, 1000) == 0 && status.inflight == 0
                    && status.in_doubt == 0;
        }
        if (quiet) {
            return true;
        }
        zclock_sleep (5); //  polling interval of a bounded wait, not a fixed delay
    }
    return false;
}

bool
tk_wait_cluster_quiet (rl_client_t *client, int timeout_ms)
{
    uint8_t *blob = NULL;
    size_t size = 0;
    if (rl_client_get_ring (client, &blob, &size, TK_TIMEOUT_MS) != 0) {
        free (blob);
        return false;
    }
    char err[256];
    ring_t *ring = ring_decode (blob, size, err, sizeof (err));
    free (blob);
    if (!ring) {
        return false;
    }
    size_t count = ring_shard_count (ring);
    rl_client_t **shards = calloc (count, sizeof (*shards));
    assert (shards);
    for (size_t i = 0; i < count; i++) {
        shards[i] = rl_client_new (ring_shard_endpoint (ring, i));
        assert (shards[i]);
    }
    bool quiet = tk_wait_quiet (shards, count, timeout_ms);
    for (size_t i = 0; i < count; i++) {
        rl_client_destroy (&shards[i]);
    }
    free (shards);
    ring_destroy (&ring);
    return quiet;
}

void
tk_check_conservation_by (tk_client_for_fn *client_for, void *ctx, const tk_model_t *model,
                          uint64_t ok_min)
{
    assert_true (ok_min > 0);
    assert_true (model->ok >= ok_min);
    //  Invariant 1 holds once nothing is in flight: the credit side of a
    //  committed cross-shard transfer shows as reserved until it lands.
    if (!tk_wait_cluster_quiet (client_for (ctx, tk_id (1, model->tag)), 20000)) {
        fail_msg ("the cluster did not settle: transfers still in flight");
    }
    //  One ledger per test model; sums over the model's accounts.
    uint64_t debits = 0, credits = 0, history_transfers = 0;
    for (size_t i = 0; i < model->count; i++) {
        size_t n = i + 1;
        rl_id_t id = tk_id (n, model->tag);
        rl_client_t *client = client_for (ctx, id);
        rl_account_t account;
        assert_int_equal (rl_client_lookup_accounts (client, &id, 1, &account, TK_TIMEOUT_MS), 0);
        const rl_account_t *a = &account;
        if (a->timestamp == 0) {
            fail_msg ("account %zu not found", n);
        }
        if (a->debits_posted != model->debits[n] || a->credits_posted != model->credits[n]) {
            fail_msg ("account %zu: debits %lu credits %lu, model says %lu and %lu", n,
                      (unsigned long) a->debits_posted, (unsigned long) a->credits_posted,
                      (unsigned long) model->debits[n], (unsigned long) model->credits[n]);
        }
        if (a->debits_pending || a->credits_pending || a->debits_reserved || a->credits_reserved) {
            fail_msg ("account %zu: pending or reserved left: %lu %lu %lu %lu", n,
                      (unsigned long) a->debits_pending, (unsigned long) a->credits_pending,
                      (unsigned long) a->debits_reserved, (unsigned long) a->credits_reserved);
        }
        uint64_t hd = 0, hc = 0, hn = 0;
        s_history_sums (client, a->id, &hd, &hc, &hn);
        if (hd != a->debits_posted || hc != a->credits_posted) {
            fail_msg ("account %zu: history sums to %lu/%lu, balances are %lu/%lu", n,
                      (unsigned long) hd, (unsigned long) hc, (unsigned long) a->debits_posted,
                      (unsigned long) a->credits_posted);
        }
        debits += a->debits_posted;
        credits += a->credits_posted;
        history_transfers += hn;
    }
    if (debits != credits) {
        fail_msg ("conservation broken: debits %lu != credits %lu", (unsigned long) debits,
                  (unsigned long) credits);
    }
    //  Every ok transfer appears in two histories (debit and credit side).
    assert_int_equal (history_transfers, 2 * model->ok);
}
