/*  test_xlog.c: the coordinator log's values (shard/xlog.c).

    A decision is logged in format 2 (only the fields an entry needs, about
    130 bytes) and loads back with every field the coordinator uses: the
    transfer, the attempt, the decision, the names, the creation date. An
    entry of the old format (a whole 288-byte in-doubt record, as earlier
    builds wrote) still loads the same, and bytes that are neither refuse
    the load.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attempts.h"
#include "codec.h"
#include "store.h"
#include "xlog.h"

#define CAP 64

typedef struct {
    store_env_t *env;
    store_t *store;
} s_ctx_t;

static int
s_setup (void **state)
{
    s_ctx_t *ctx = calloc (1, sizeof (*ctx));
    char err[256];
    ctx->env = store_env_new_mem ();
    ctx->store = store_open_env ("/xlog", RL_DURABILITY_SYNC, ctx->env, err, sizeof (err));
    assert_non_null (ctx->store);
    *state = ctx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_ctx_t *ctx = *state;
    store_close (&ctx->store);
    store_env_destroy (&ctx->env);
    free (ctx);
    return 0;
}

//  A live attempt with every field of its transfer set.
static attempt_t
s_live (uint64_t n, const char *coordinator, const char *peer)
{
    attempt_t e = {.state = ATTEMPT_LIVE, .created_ns = 1700000000000000000ull + n};
    e.transfer = (rl_transfer_t){.id = {n, 0x1d},
                                 .debit_account_id = {n + 1, 7},
                                 .credit_account_id = {n + 2, 8},
                                 .amount = 1000 + n,
                                 .user_data_128 = {0xabcdef, n},
                                 .user_data_64 = 0x6464 + n,
                                 .user_data_32 = 0x3232,
                                 .ledger = 7,
                                 .code = 65000};
    e.tp.id = e.transfer.id;
    e.tp.attempt = (rl_attempt_t){.counter = 3, .nonce = 0x5eed5eed5eedull, .seq = n};
    e.tp.amount = e.transfer.amount;
    e.tp.debit_account_id = e.transfer.debit_account_id;
    snprintf (e.tp.coordinator, sizeof (e.tp.coordinator), "%s", coordinator);
    snprintf (e.peer, sizeof (e.peer), "%s", peer);
    return e;
}

//  The loaded entry of `want` equals it, field by field that the log keeps.
static void
s_check_loaded (xlog_t *xlog, const attempt_t *want, uint32_t decision)
{
    int32_t i = xlog_find (xlog, want->tp.id, want->tp.attempt);
    assert_true (i >= 0);
    const attempt_t *e = attempts_at (xlog_entries (xlog), i);
    assert_int_equal (e->state, ATTEMPT_DECIDED);
    assert_memory_equal (&e->transfer, &want->transfer, sizeof (rl_transfer_t));
    assert_int_equal (e->tp.state, decision);
    assert_true (attempt_eq (e->tp.attempt, want->tp.attempt));
    assert_true (rl_id_eq (e->tp.id, want->tp.id));
    assert_true (rl_id_eq (e->tp.debit_account_id, want->tp.debit_account_id));
    assert_int_equal (e->tp.amount, want->tp.amount);
    assert_string_equal (e->tp.coordinator, want->tp.coordinator);
    assert_string_equal (e->peer, want->peer);
    assert_int_equal (e->created_ns, want->created_ns);
}

static void
test_round_trip (void **state)
{
    s_ctx_t *ctx = *state;
    xlog_t *xlog = xlog_new (ctx->store, CAP);
    assert_non_null (xlog);
    char err[256];
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    char longest[RL_SHARD_NAME_SIZE_MAX];
    memset (longest, 'z', sizeof (longest) - 1);
    longest[sizeof (longest) - 1] = '\0';
    attempt_t a = s_live (1, "s1", "s2");
    attempt_t b = s_live (2, longest, longest); //  the longest names
    attempt_t c = s_live (3, "s1", "s4");
    xlog_append (xlog, &a, RL_TP_COMMIT, 1);
    xlog_append (xlog, &b, RL_TP_ABORT, 1);
    xlog_append (xlog, &c, RL_TP_COMMIT, 1);
    xlog_remove (xlog, xlog_find (xlog, c.tp.id, c.tp.attempt)); //  acknowledged
    assert_int_equal (store_commit (ctx->store), 0);
    //  The values are the slim ones.
    store_iter_t *it = store_iter_new (ctx->store, STORE_CF_XLOG);
    size_t entries = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        size_t size = 0;
        store_iter_value (it, &size);
        assert_true (size < 200 && size != RL_IN_DOUBT_SIZE);
        entries++;
    }
    store_iter_destroy (&it);
    assert_int_equal (entries, 2);
    xlog_destroy (&xlog);
    //  A restart loads both, due at once.
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 77, 50, err, sizeof (err)), 0);
    assert_int_equal (xlog_count (xlog), 2);
    s_check_loaded (xlog, &a, RL_TP_COMMIT);
    s_check_loaded (xlog, &b, RL_TP_ABORT);
    assert_true (xlog_find (xlog, c.tp.id, c.tp.attempt) < 0);
    const attempt_t *e = attempts_at (xlog_entries (xlog), xlog_find (xlog, a.tp.id, a.tp.attempt));
    assert_int_equal (e->next_ns, 77);
    //  New keys go above the loaded ones.
    attempt_t d = s_live (4, "s1", "s3");
    int32_t x = xlog_append (xlog, &d, RL_TP_COMMIT, 1);
    assert_true (attempts_at (xlog_entries (xlog), x)->key_seq > e->key_seq);
    store_batch_discard (ctx->store);
    xlog_destroy (&xlog);
}

//  An entry of the old format: a whole in-doubt record under its key.
static void
s_put_old (s_ctx_t *ctx, uint64_t key_seq, const attempt_t *e, uint32_t decision)
{
    rl_in_doubt_rec_t rec = {.prepare = {.transfer = e->transfer, .tp = e->tp}};
    rec.prepare.tp.state = decision;
    rec.prepare.reserved[0] = e->created_ns;
    memcpy (rec.peer, e->peer, sizeof (rec.peer));
    uint8_t key[8];
    uint8_t value[RL_IN_DOUBT_SIZE];
    codec_put_u64_be (key, key_seq);
    codec_encode_in_doubt (&rec, value);
    store_batch_put (ctx->store, STORE_CF_XLOG, key, sizeof (key), value, sizeof (value));
}

static void
test_old_format_loads (void **state)
{
    s_ctx_t *ctx = *state;
    attempt_t a = s_live (10, "s1", "s2");
    attempt_t b = s_live (11, "s1", "s3");
    s_put_old (ctx, 5, &a, RL_TP_COMMIT);
    s_put_old (ctx, 9, &b, RL_TP_ABORT);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_t *xlog = xlog_new (ctx->store, CAP);
    char err[256];
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    assert_int_equal (xlog_count (xlog), 2);
    s_check_loaded (xlog, &a, RL_TP_COMMIT);
    s_check_loaded (xlog, &b, RL_TP_ABORT);
    //  An old entry is removed by its key like any other; a new one lands above.
    xlog_remove (xlog, xlog_find (xlog, a.tp.id, a.tp.attempt));
    attempt_t c = s_live (12, "s1", "s2");
    int32_t x = xlog_append (xlog, &c, RL_TP_COMMIT, 1);
    assert_int_equal (attempts_at (xlog_entries (xlog), x)->key_seq, 10);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    assert_int_equal (xlog_count (xlog), 2);
    s_check_loaded (xlog, &b, RL_TP_ABORT);
    s_check_loaded (xlog, &c, RL_TP_COMMIT);
    xlog_destroy (&xlog);
}

//  Bytes that are neither format refuse the load (the shard does not start).
static void
test_corrupt_refused (void **state)
{
    s_ctx_t *ctx = *state;
    attempt_t a = s_live (20, "s1", "s2");
    xlog_t *xlog = xlog_new (ctx->store, CAP);
    char err[256];
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    xlog_append (xlog, &a, RL_TP_COMMIT, 1);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    store_iter_t *it = store_iter_new (ctx->store, STORE_CF_XLOG);
    store_iter_seek_first (it);
    assert_true (store_iter_valid (it));
    size_t key_size = 0, size = 0;
    uint8_t key[8], good[256];
    memcpy (key, store_iter_key (it, &key_size), sizeof (key));
    memcpy (good, store_iter_value (it, &size), size);
    store_iter_destroy (&it);
    uint8_t bad[256];
    const size_t cuts[] = {0, 1, 125, size - 1, size + 1};
    for (size_t k = 0; k < sizeof (cuts) / sizeof (cuts[0]); k++) {
        memcpy (bad, good, size);
        store_batch_put (ctx->store, STORE_CF_XLOG, key, sizeof (key), bad, cuts[k]);
        assert_int_equal (store_commit (ctx->store), 0);
        xlog = xlog_new (ctx->store, CAP);
        assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), -1);
        xlog_destroy (&xlog);
    }
    memcpy (bad, good, size);
    bad[0] = 3; //  an unknown format
    store_batch_put (ctx->store, STORE_CF_XLOG, key, sizeof (key), bad, size);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), -1);
    xlog_destroy (&xlog);
    memcpy (bad, good, size);
    bad[2] = 200; //  a name longer than the value
    store_batch_put (ctx->store, STORE_CF_XLOG, key, sizeof (key), bad, size);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), -1);
    xlog_destroy (&xlog);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_old_format_loads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
