/*  test_xlog.c: the coordinator log's values (shard/xlog.c), the
    participant's records (shard/participant.c) and the keys of both
    (shard/attempts.c, "Keys").

    A decision is logged in format 2 (only the fields an entry needs, about
    130 bytes) and loads back with every field the coordinator uses: the
    transfer, the attempt, the decision, the names, the creation date. An
    entry of the old format (a whole 288-byte in-doubt record, as earlier
    builds wrote) still loads the same, and bytes that are neither refuse
    the load.

    Keys: an acknowledged entry is not deleted one by one; a range drops
    the keys below the lowest one still needed, never that one: a pinned
    entry loads again after any number of later entries were acknowledged,
    and once it goes too, nothing loads. An entry that holds the bound back
    too long moves to a new key, so that the column family keeps at most
    the window of entries not needed.

    Prepared records: the slim format (126 bytes + the coordinator's name)
    and the old 256-byte PREPARE record both load, with their reservation;
    a heuristic record and a tombstone load as such; a prepared record whose
    credit leg was applied (committed, not dropped yet) is not restored;
    bytes that are no record refuse the load.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accounts.h"
#include "attempts.h"
#include "codec.h"
#include "journal.h"
#include "outq.h"
#include "participant.h"
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

//  Records stored in cf.
static size_t
s_stored (s_ctx_t *ctx, store_cf_t cf)
{
    store_iter_t *it = store_iter_new (ctx->store, cf);
    size_t n = 0;
    for (store_iter_seek_first (it); store_iter_valid (it); store_iter_next (it)) {
        n++;
    }
    store_iter_destroy (&it);
    return n;
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
    //  c stays on disk: its key lies above the lowest still needed (a's).
    assert_int_equal (entries, 3);
    xlog_destroy (&xlog);
    //  A restart loads all three, due at once: c is sent again, as a
    //  decision whose delete was lost in a crash would be.
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 77, 50, err, sizeof (err)), 0);
    assert_int_equal (xlog_count (xlog), 3);
    s_check_loaded (xlog, &a, RL_TP_COMMIT);
    s_check_loaded (xlog, &b, RL_TP_ABORT);
    s_check_loaded (xlog, &c, RL_TP_COMMIT);
    const attempt_t *e = attempts_at (xlog_entries (xlog), xlog_find (xlog, a.tp.id, a.tp.attempt));
    assert_int_equal (e->next_ns, 77);
    //  New keys go above the loaded ones.
    attempt_t d = s_live (4, "s1", "s3");
    int32_t x = xlog_append (xlog, &d, RL_TP_COMMIT, 1);
    assert_true (attempts_at (xlog_entries (xlog), x)->key_seq > e->key_seq);
    store_batch_discard (ctx->store);
    xlog_destroy (&xlog);
}

//  Appends a decision for s_live (n) and, unless kept, acknowledges it.
static void
s_decide (xlog_t *xlog, uint64_t n, bool kept)
{
    attempt_t e = s_live (n, "s1", "s2");
    xlog_append (xlog, &e, RL_TP_COMMIT, 1);
    if (!kept) {
        xlog_remove (xlog, xlog_find (xlog, e.tp.id, e.tp.attempt));
    }
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
    //  An old entry goes like any other; a new one lands above.
    xlog_remove (xlog, xlog_find (xlog, a.tp.id, a.tp.attempt));
    attempt_t c = s_live (12, "s1", "s2");
    int32_t x = xlog_append (xlog, &c, RL_TP_COMMIT, 1);
    assert_int_equal (attempts_at (xlog_entries (xlog), x)->key_seq, 10);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    assert_int_equal (xlog_count (xlog), 3); //  a is below b, still needed: not dropped yet
    s_check_loaded (xlog, &b, RL_TP_ABORT);
    s_check_loaded (xlog, &c, RL_TP_COMMIT);
    //  Once c goes too, nothing is needed: a range drops all three.
    xlog_remove (xlog, xlog_find (xlog, a.tp.id, a.tp.attempt));
    xlog_remove (xlog, xlog_find (xlog, b.tp.id, b.tp.attempt));
    assert_int_equal (store_commit (ctx->store), 0);
    assert_int_equal (s_stored (ctx, STORE_CF_XLOG), 3); //  c, above them, still needed
    xlog_remove (xlog, xlog_find (xlog, c.tp.id, c.tp.attempt));
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    assert_int_equal (s_stored (ctx, STORE_CF_XLOG), 0);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    assert_true (xlog_find (xlog, a.tp.id, a.tp.attempt) < 0);
    assert_true (xlog_find (xlog, b.tp.id, b.tp.attempt) < 0);
    assert_true (xlog_find (xlog, c.tp.id, c.tp.attempt) < 0);
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

//  The bound: a decision not acknowledged is never dropped, however many
//  later ones were; it loads again with its fields (a wrong bound would
//  turn the participant's next query into a presumed abort).
#define PINNED 100000
static void
test_keys_bound (void **state)
{
    s_ctx_t *ctx = *state;
    char err[256];
    xlog_t *xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    attempts_t *t = xlog_entries (xlog);
    for (uint64_t n = 1; n <= 2 * ATTEMPTS_KEYS_STEP; n++) {
        s_decide (xlog, n, false);
    }
    uint64_t drops = t->keys.range_drops; //  nothing needed after each: a range each
    assert_true (drops >= 2);
    s_decide (xlog, PINNED, true); //  its participant never answers
    uint64_t pinned_key = t->keys.key_seq;
    for (uint64_t n = 1; n <= 4 * ATTEMPTS_KEYS_STEP; n++) {
        s_decide (xlog, PINNED + n, false);
    }
    assert_int_equal (attempts_key_low (t), pinned_key);
    assert_int_equal (t->keys.range_drops, drops); //  nothing above the pinned entry goes
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    //  A restart: the pinned entry, and the acknowledged ones above it
    //  (sent again: acknowledged again), not those below.
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    //  (Below it, at most the keys since the last range: less than a step.)
    assert_in_range (xlog_count (xlog), 1 + 4 * ATTEMPTS_KEYS_STEP, 5 * ATTEMPTS_KEYS_STEP);
    attempt_t pinned = s_live (PINNED, "s1", "s2");
    s_check_loaded (xlog, &pinned, RL_TP_COMMIT);
    t = xlog_entries (xlog);
    for (size_t i = 0; i < attempts_span (t); i++) {
        const attempt_t *e = attempts_at (t, (int32_t) i);
        if (e->state == ATTEMPT_DECIDED && e->tp.attempt.seq != PINNED) {
            xlog_remove (xlog, (int32_t) i);
        }
    }
    assert_int_equal (attempts_key_low (t), pinned_key);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    s_check_loaded (xlog, &pinned, RL_TP_COMMIT);
    //  Acknowledged at last: everything goes, by range.
    t = xlog_entries (xlog);
    for (size_t i = 0; i < attempts_span (t); i++) {
        if (attempts_at (t, (int32_t) i)->state == ATTEMPT_DECIDED) {
            xlog_remove (xlog, (int32_t) i);
        }
    }
    assert_true (t->keys.range_drops >= 1);
    assert_int_equal (store_commit (ctx->store), 0);
    xlog_destroy (&xlog);
    assert_int_equal (s_stored (ctx, STORE_CF_XLOG), 0);
}

//  An entry that holds the bound back for more than half the window moves
//  to a new key, and the column family stays within the window.
static void
test_keys_move (void **state)
{
    s_ctx_t *ctx = *state;
    char err[256];
    xlog_t *xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    s_decide (xlog, 1, true);
    uint64_t n = 2;
    for (; n < 2 + ATTEMPTS_KEYS_WINDOW / 2 + 2 * ATTEMPTS_KEYS_STEP; n++) {
        s_decide (xlog, n, false);
        if (n % 4096 == 0) {
            assert_int_equal (store_commit (ctx->store), 0);
        }
    }
    assert_int_equal (store_commit (ctx->store), 0);
    attempts_t *t = xlog_entries (xlog);
    assert_int_equal (t->keys.moves, 1);
    assert_true (t->keys.range_drops >= 1);
    assert_true (attempts_key_low (t) > ATTEMPTS_KEYS_WINDOW / 2);
    size_t stored = s_stored (ctx, STORE_CF_XLOG);
    //  The moved entry and the acknowledged ones above its new key: the
    //  last two steps' worth at most (the moved entry holds them).
    assert_true (stored >= 1 && stored <= 2 * ATTEMPTS_KEYS_STEP + 1);
    xlog_destroy (&xlog);
    xlog = xlog_new (ctx->store, CAP);
    assert_int_equal (xlog_load (xlog, 1, 50, err, sizeof (err)), 0);
    attempt_t pinned = s_live (1, "s1", "s2");
    s_check_loaded (xlog, &pinned, RL_TP_COMMIT);
    xlog_destroy (&xlog);
}

//  Participant records ------------------------------------------------------------

#define CREDIT_ACCOUNT 0xc0ffee

typedef struct {
    accounts_t *accounts;
    journal_t *journal;
    outq_t *outq;
    participant_t *participant;
} s_part_t;

static int
s_part_open (s_ctx_t *ctx, s_part_t *p, char *err, size_t err_size)
{
    p->accounts = accounts_new (ctx->store);
    p->journal = journal_new (ctx->store);
    p->outq = outq_new ();
    assert_true (p->accounts && p->journal && p->outq);
    rl_account_t a = {.id = {CREDIT_ACCOUNT, 8}, .ledger = 7, .code = 1, .timestamp = 1};
    assert_int_equal (accounts_insert (p->accounts, &a), 0);
    store_batch_discard (ctx->store); //  memory only: the account need not be stored
    p->participant = participant_new (ctx->store, p->accounts, p->journal, p->outq);
    assert_non_null (p->participant);
    return participant_open (p->participant, (now_t){.wall_ns = 1, .mono_ns = 1}, err, err_size);
}

static void
s_part_close (s_part_t *p)
{
    participant_destroy (&p->participant);
    outq_destroy (&p->outq);
    journal_destroy (&p->journal);
    accounts_destroy (&p->accounts);
}

//  A participant's record of s_live (n), in state `state`, stored at key_seq.
static attempt_t
s_record (uint64_t n, uint32_t state)
{
    attempt_t e = s_live (n, "s1", "");
    e.transfer.credit_account_id = (rl_id_t){CREDIT_ACCOUNT, 8};
    e.tp.state = state;
    e.state = state == RL_TP_PREPARED ? ATTEMPT_PREPARED : ATTEMPT_ABORTED;
    return e;
}

static void
s_put_record (s_ctx_t *ctx, uint64_t key_seq, const attempt_t *e, uint8_t format)
{
    uint8_t key[8], value[ATTEMPT_VALUE_SIZE_MAX];
    codec_put_u64_be (key, key_seq);
    size_t size = attempt_value_encode (e, format, value);
    store_batch_put (ctx->store, STORE_CF_PREPARED, key, sizeof (key), value, size);
}

static void
test_prepared_records (void **state)
{
    s_ctx_t *ctx = *state;
    //  3: the old 256-byte record, prepared; 4: slim, prepared, but its leg
    //  was applied (committed); 5: slim, prepared; 6: a heuristic record;
    //  7: a tombstone.
    attempt_t old = s_record (30, RL_TP_PREPARED);
    rl_prepare_rec_t rec = {.transfer = old.transfer, .tp = old.tp};
    rec.reserved[0] = old.created_ns;
    uint8_t key[8], value[RL_PREPARE_SIZE];
    codec_put_u64_be (key, 3);
    codec_encode_prepare (&rec, value);
    store_batch_put (ctx->store, STORE_CF_PREPARED, key, sizeof (key), value, sizeof (value));
    attempt_t committed = s_record (31, RL_TP_PREPARED);
    s_put_record (ctx, 4, &committed, ATTEMPT_VALUE_RECORD);
    uint8_t leg[2 * RL_ID_SIZE], ts[8] = {0};
    codec_encode_id (committed.transfer.id, leg);
    codec_encode_id (committed.transfer.debit_account_id, leg + RL_ID_SIZE);
    codec_put_u64 (ts, 99);
    store_batch_put (ctx->store, STORE_CF_LEGS, leg, sizeof (leg), ts, sizeof (ts));
    attempt_t slim = s_record (32, RL_TP_PREPARED);
    s_put_record (ctx, 5, &slim, ATTEMPT_VALUE_RECORD);
    attempt_t heuristic = s_record (33, RL_TP_COMMIT);
    s_put_record (ctx, 6, &heuristic, ATTEMPT_VALUE_HEURISTIC);
    attempt_t tombstone = s_record (34, RL_TP_ABORT);
    s_put_record (ctx, 7, &tombstone, ATTEMPT_VALUE_RECORD);
    assert_int_equal (store_commit (ctx->store), 0);
    s_part_t p = {0};
    char err[256];
    assert_int_equal (s_part_open (ctx, &p, err, sizeof (err)), 0);
    uint64_t prepared = 0, alarms = 0;
    participant_counts (p.participant, &prepared, &alarms);
    assert_int_equal (prepared, 2); //  old and slim; not the committed one
    rl_in_doubt_rec_t listed[4];
    assert_int_equal (participant_in_doubt (p.participant, listed, 4), 2);
    const attempt_t *want[2] = {&old, &slim};
    for (int k = 0; k < 2; k++) {
        const rl_in_doubt_rec_t *r = &listed[k];
        const attempt_t *w = rl_id_eq (r->prepare.tp.id, old.tp.id) ? want[0] : want[1];
        assert_memory_equal (&r->prepare.transfer, &w->transfer, sizeof (rl_transfer_t));
        assert_true (attempt_eq (r->prepare.tp.attempt, w->tp.attempt));
        assert_string_equal (r->prepare.tp.coordinator, "s1");
        assert_int_equal (r->prepare.reserved[0], w->created_ns);
    }
    const rl_account_t *credit = accounts_get (p.accounts, (rl_id_t){CREDIT_ACCOUNT, 8});
    assert_int_equal (credit->credits_reserved, old.transfer.amount + slim.transfer.amount);
    //  The heuristic record is kept as such: resolving it again finds nothing prepared.
    rl_tp_rec_t again = heuristic.tp;
    assert_int_equal (participant_resolve (p.participant, &again, (now_t){1, 1}),
                      RL_RESOLVE_NOT_FOUND);
    s_part_close (&p);
    store_batch_discard (ctx->store);
    //  Bytes that are no record refuse the load.
    uint8_t good[ATTEMPT_VALUE_SIZE_MAX];
    size_t size = attempt_value_encode (&slim, ATTEMPT_VALUE_RECORD, good);
    attempt_t named = slim;
    snprintf (named.peer, sizeof (named.peer), "s9");
    uint8_t bad[ATTEMPT_VALUE_SIZE_MAX];
    for (int k = 0; k < 4; k++) {
        memcpy (bad, good, size);
        size_t bad_size = size;
        if (k == 0) {
            bad[0] = ATTEMPT_VALUE_LOG; //  a log entry's format
        } else if (k == 1) {
            bad_size = size - 1;
        } else if (k == 2) {
            bad_size = attempt_value_encode (&named, ATTEMPT_VALUE_RECORD, bad); //  names a peer
        } else {
            bad[2] = 200; //  a name longer than the value
        }
        codec_put_u64_be (key, 5);
        store_batch_put (ctx->store, STORE_CF_PREPARED, key, sizeof (key), bad, bad_size);
        assert_int_equal (store_commit (ctx->store), 0);
        memset (&p, 0, sizeof (p));
        assert_int_equal (s_part_open (ctx, &p, err, sizeof (err)), -1);
        s_part_close (&p);
        store_batch_discard (ctx->store);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_old_format_loads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_keys_bound, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_keys_move, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_prepared_records, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
