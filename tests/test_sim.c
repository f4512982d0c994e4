/*  test_sim.c: deterministic simulation of two shards' ledgers, with
    storage in memory, a simulated network and crashes.

    Each seed builds two ledgers (s1 owns odd accounts, s2 even ones) on an
    in-memory file system that survives a restart, and runs random steps:
    a client submits or retries a transfer at its debit shard; the network
    delivers one message (any due one: reordering), or drops or duplicates
    it; a shard's timer ticks; a shard crashes, before or after a commit,
    losing its uncommitted batch and unsent messages, and restarts with a
    new incarnation. Like the server, a node sends nothing and answers no
    client before the commit of its turn.

    After every step: each live shard's audit (reserved amounts equal live
    reservations and prepared records), and globally 0 <= debits posted -
    credits posted <= credits reserved (a credit is never applied before its
    debit commits). At the end the network heals, the shards settle, and:
    every transfer the client saw ok was applied, no business failure and no
    last-answer-aborted transfer was, retries got the original outcome,
    nothing is reserved, sum(debits) == sum(credits), and every balance
    equals the model built from what was applied.

    RL_SEED=n replays one seed; RL_SIM_SEEDS=n runs n seeds; otherwise seeds
    run for RL_SIM_SECONDS (default 20, at least 5 seeds). A failure prints
    its seed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rl_rand.h"
#include "ledger.h"
#include "store.h"

#define NODES        2
#define ACCOUNTS     8
#define LEDGER       1
#define SLOTS        200 //  distinct transfers per seed
#define STEPS        1500
#define NET_MAX      4096 //  messages in flight
#define OUT_MAX      4096 //  messages a node holds until its commit
#define SETTLE_STEPS 20000
#define SEEDS_MIN    5

typedef enum {
    M_PREPARE,
    M_PREPARE_REPLY,
    M_DECIDE,
    M_DECIDE_REPLY,
    M_QUERY,
    M_QUERY_REPLY
} s_kind_t;

typedef struct {
    int from, to;
    s_kind_t kind;
    rl_prepare_rec_t prepare; //  M_PREPARE
    rl_tp_rec_t tp;           //  the others
    uint64_t due_ns;
} s_msg_t;

typedef struct {
    rl_transfer_t t;
    bool used;
    bool applied_seen; //  the client saw ok or exists
    uint32_t final;    //  business failure seen, or 0
    bool aborted_last; //  the last answer was aborted (definitely not applied)
    bool in_flight;    //  a pending answer may still come
} s_slot_t;

typedef struct {
    store_env_t *env;
    store_t *store;
    ledger_t *ledger;
    bool up;
    uint64_t down_until_ns;
    s_msg_t out[OUT_MAX]; //  held until the commit of the turn
    size_t out_count;
    uint32_t answers[SLOTS]; //  results decided this turn, delivered at commit
    int answer_slots[SLOTS];
    size_t answer_count;
} s_node_t;

static s_node_t s_nodes[NODES];
static s_msg_t s_net[NET_MAX];
static size_t s_net_count;
static s_slot_t s_slots[SLOTS];
static uint64_t s_now;
static uint64_t s_rng;
static uint64_t s_seed;
static bool s_faults; //  false while settling

static uint64_t
s_rand (void)
{
    return rl_rand_next (&s_rng);
}

static bool
s_chance (unsigned percent)
{
    return s_rand () % 100 < percent;
}

static const char *s_names[NODES] = {"s1", "s2"};

static int
s_node_of (const char *name)
{
    return strcmp (name, "s1") == 0 ? 0 : 1;
}

static const char *
s_owner (void *ctx, rl_id_t id)
{
    (void) ctx;
    return s_names[(id.lo & 1) ? 0 : 1];
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error ("seed %lu: ", (unsigned long) s_seed);                                    \
            fail_msg (__VA_ARGS__);                                                                \
        }                                                                                          \
    } while (0)

//  Host callbacks: like the server, queue until the commit ---------------------------

static void
s_out (s_node_t *node, s_msg_t msg)
{
    CHECK (node->out_count < OUT_MAX, "outbox full");
    node->out[node->out_count++] = msg;
}

static void
s_io_prepare (void *ctx, const char *peer, const rl_prepare_rec_t *rec)
{
    s_node_t *node = ctx;
    s_out (node, (s_msg_t){.from = (int) (node - s_nodes),
                           .to = s_node_of (peer),
                           .kind = M_PREPARE,
                           .prepare = *rec});
}

static void
s_io_decide (void *ctx, const char *peer, const rl_tp_rec_t *rec)
{
    s_node_t *node = ctx;
    s_out (node, (s_msg_t){.from = (int) (node - s_nodes),
                           .to = s_node_of (peer),
                           .kind = M_DECIDE,
                           .tp = *rec});
}

static void
s_io_query (void *ctx, const char *coordinator, const rl_tp_rec_t *rec)
{
    s_node_t *node = ctx;
    s_out (node, (s_msg_t){.from = (int) (node - s_nodes),
                           .to = s_node_of (coordinator),
                           .kind = M_QUERY,
                           .tp = *rec});
}

static void
s_io_decided (void *ctx, uint64_t tag, uint32_t index, uint32_t result, uint64_t timestamp)
{
    (void) index;
    (void) timestamp;
    s_node_t *node = ctx;
    CHECK (node->answer_count < SLOTS, "too many answers");
    node->answer_slots[node->answer_count] = (int) tag;
    node->answers[node->answer_count++] = result;
}

static const ledger_io_t s_io = {s_io_prepare, s_io_decide, s_io_query, s_io_decided};

//  Nodes --------------------------------------------------------------------------------

static void
s_node_open (int i)
{
    s_node_t *node = &s_nodes[i];
    char err[256], dir[32];
    snprintf (dir, sizeof (dir), "/sim/%s", s_names[i]);
    node->store = store_open_env (dir, RL_DURABILITY_SYNC, node->env, err, sizeof (err));
    CHECK (node->store, "store: %s", err);
    node->ledger = ledger_open (node->store, s_names[i], s_owner, NULL, &s_io, node, s_rand (),
                                s_now, err, sizeof (err));
    CHECK (node->ledger, "ledger: %s", err);
    ledger_set_checkpoint_transfers (node->ledger, 16);
    ledger_set_tp_timeouts (node->ledger, 30, 40, 5, 80);
    //  Few markers: duplicates and late PREPAREs often find theirs evicted.
    ledger_set_tp_markers_max (node->ledger, 16);
    node->up = true;
    node->out_count = node->answer_count = 0;
}

static void
s_node_crash (int i)
{
    s_node_t *node = &s_nodes[i];
    store_batch_discard (node->store);
    //  In-flight answers of this node's pending requests are lost with it.
    for (size_t k = 0; k < SLOTS; k++) {
        if (s_slots[k].in_flight && (s_slots[k].t.debit_account_id.lo & 1) == (i == 0)) {
            s_slots[k].in_flight = false;
        }
    }
    ledger_destroy (&node->ledger);
    store_close (&node->store);
    node->up = false;
    node->out_count = node->answer_count = 0;
    node->down_until_ns = s_now + (s_rand () % 50) * 1000000ull;
}

static void
s_deliver_answer (int slot, uint32_t result)
{
    s_slot_t *s = &s_slots[slot];
    s->in_flight = false;
    if (result == RL_OK || result == RL_EXISTS) {
        CHECK (s->final == 0, "transfer %d: applied after a business failure", slot);
        s->applied_seen = true;
        s->aborted_last = false;
    } else if (!rl_result_is_retryable (result)) {
        CHECK (!s->applied_seen, "transfer %d: %s after ok", slot, rl_result_name (result));
        CHECK (s->final == 0 || s->final == result, "transfer %d: %s after %s", slot,
               rl_result_name (result), rl_result_name (s->final));
        s->final = result;
    } else {
        CHECK (!s->applied_seen || result == RL_IN_PROGRESS, "transfer %d: %s after ok", slot,
               rl_result_name (result));
        s->aborted_last = result == RL_ABORTED;
    }
}

//  The end of a turn: commit, then release messages and answers (or crash).
static void
s_turn_finish (int i)
{
    s_node_t *node = &s_nodes[i];
    if (s_faults && s_chance (2)) {
        s_node_crash (i); //  before the commit: the whole turn is lost
        return;
    }
    ledger_before_commit (node->ledger);
    CHECK (store_commit (node->store) == 0, "commit failed");
    CHECK (ledger_after_commit (node->ledger) == 0, "checkpoint failed");
    for (size_t k = 0; k < node->answer_count; k++) {
        s_deliver_answer (node->answer_slots[k], node->answers[k]);
    }
    node->answer_count = 0;
    for (size_t k = 0; k < node->out_count; k++) {
        s_msg_t msg = node->out[k];
        int copies = s_faults ? (s_chance (5) ? 0 : s_chance (5) ? 2 : 1) : 1;
        for (int c = 0; c < copies && s_net_count < NET_MAX; c++) {
            msg.due_ns = s_now + (s_rand () % 20) * 1000000ull;
            s_net[s_net_count++] = msg;
        }
    }
    node->out_count = 0;
    if (s_faults && s_chance (1)) {
        s_node_crash (i); //  after the commit: durable, but the process is gone
    }
}

//  Steps --------------------------------------------------------------------------------

static void
s_client_step (void)
{
    int k = (int) (s_rand () % SLOTS);
    s_slot_t *s = &s_slots[k];
    if (s->in_flight) {
        return;
    }
    if (!s->used) {
        uint64_t dr = 1 + s_rand () % ACCOUNTS, cr = 1 + s_rand () % ACCOUNTS;
        if (cr == dr) {
            cr = dr % ACCOUNTS + 1;
        }
        uint64_t amount = dr <= 2 ? 50 + s_rand () % 100 : 1 + s_rand () % 60;
        s->t = (rl_transfer_t){.id = {k + 1, 0x51},
                               .debit_account_id = {dr, 0},
                               .credit_account_id = {cr, 0},
                               .amount = amount,
                               .ledger = LEDGER,
                               .code = 1};
        s->used = true;
    }
    int i = (s->t.debit_account_id.lo & 1) ? 0 : 1;
    if (!s_nodes[i].up) {
        return;
    }
    rl_result_rec_t r;
    ledger_create_transfers (s_nodes[i].ledger, &s->t, 1, s_now, (uint64_t) k, &r);
    s->in_flight = true;
    s->aborted_last = false;
    if (r.result != LEDGER_PENDING) {
        s_io_decided (&s_nodes[i], (uint64_t) k, 0, r.result, r.timestamp);
    }
    s_turn_finish (i);
}

static void
s_deliver_step (void)
{
    size_t due[NET_MAX], ndue = 0;
    for (size_t k = 0; k < s_net_count; k++) {
        if (s_net[k].due_ns <= s_now) {
            due[ndue++] = k;
        }
    }
    if (ndue == 0) {
        return;
    }
    size_t at = due[s_rand () % ndue];
    s_msg_t msg = s_net[at];
    s_net[at] = s_net[--s_net_count];
    s_node_t *node = &s_nodes[msg.to];
    if (!node->up) {
        return; //  lost: the process is down
    }
    rl_tp_rec_t out;
    s_msg_t reply = {.from = msg.to, .to = msg.from};
    switch (msg.kind) {
        case M_PREPARE:
            ledger_prepare (node->ledger, &msg.prepare, 1, s_now, &out);
            reply.kind = M_PREPARE_REPLY, reply.tp = out;
            s_out (node, reply);
            break;
        case M_DECIDE:
            ledger_decide (node->ledger, &msg.tp, 1, s_now, &out);
            reply.kind = M_DECIDE_REPLY, reply.tp = out;
            s_out (node, reply);
            break;
        case M_QUERY:
            ledger_outcome_query (node->ledger, &msg.tp, 1, &out);
            reply.kind = M_QUERY_REPLY, reply.tp = out;
            s_out (node, reply);
            break;
        case M_PREPARE_REPLY:
            ledger_prepare_replies (node->ledger, &msg.tp, 1, s_now);
            break;
        case M_DECIDE_REPLY:
            ledger_decide_replies (node->ledger, &msg.tp, 1);
            break;
        case M_QUERY_REPLY:
            ledger_outcome_answers (node->ledger, &msg.tp, 1, s_now);
            break;
    }
    s_turn_finish (msg.to);
}

static void
s_check_step (void)
{
    char err[512];
    uint64_t dp = 0, cp = 0, cres = 0;
    bool all_up = true;
    for (int i = 0; i < NODES; i++) {
        if (!s_nodes[i].up) {
            all_up = false;
            continue;
        }
        CHECK (ledger_audit (s_nodes[i].ledger, err, sizeof (err)) == 0, "%s audit: %s", s_names[i],
               err);
        uint64_t a, b, c, d;
        ledger_sums (s_nodes[i].ledger, LEDGER, &a, &b, &c, &d);
        dp += a, cp += b, cres += d;
    }
    if (all_up) {
        CHECK (dp >= cp, "credits posted (%lu) ahead of debits posted (%lu)", (unsigned long) cp,
               (unsigned long) dp);
        CHECK (dp - cp <= cres, "debits posted exceed credits by %lu, more than reserved %lu",
               (unsigned long) (dp - cp), (unsigned long) cres);
    }
}

static void
s_setup_accounts (void)
{
    for (int i = 0; i < NODES; i++) {
        rl_account_t accounts[ACCOUNTS];
        rl_result_rec_t results[ACCOUNTS];
        size_t n = 0;
        for (uint64_t a = 1; a <= ACCOUNTS; a++) {
            if (((a & 1) ? 0 : 1) != i) {
                continue;
            }
            uint16_t flags = a <= 2          ? 0
                             : a == ACCOUNTS ? RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS
                                             : RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
            accounts[n++] = (rl_account_t){
                .id = {a, 0}, .ledger = LEDGER, .code = 1, .flags = flags};
        }
        ledger_create_accounts (s_nodes[i].ledger, accounts, n, s_now, results);
        for (size_t k = 0; k < n; k++) {
            CHECK (results[k].result == RL_OK, "account setup");
        }
        ledger_before_commit (s_nodes[i].ledger);
        CHECK (store_commit (s_nodes[i].store) == 0, "commit");
    }
}

static void
s_settle_and_check (void)
{
    s_faults = false;
    for (int step = 0; step < SETTLE_STEPS; step++) {
        s_now += 5000000ull;
        for (int i = 0; i < NODES; i++) {
            if (!s_nodes[i].up) {
                s_node_open (i);
            }
            ledger_tick (s_nodes[i].ledger, s_now);
            s_turn_finish (i);
        }
        while (s_net_count > 0) {
            s_deliver_step ();
            bool any_due = false;
            for (size_t k = 0; k < s_net_count; k++) {
                any_due |= s_net[k].due_ns <= s_now;
            }
            if (!any_due) {
                break;
            }
        }
        bool quiet = s_net_count == 0;
        for (int i = 0; i < NODES && quiet; i++) {
            uint64_t inflight, in_doubt, alarms;
            ledger_tp_counts (s_nodes[i].ledger, &inflight, &in_doubt, &alarms);
            CHECK (alarms == 0, "%s raised %lu alarms", s_names[i], (unsigned long) alarms);
            quiet = inflight == 0 && in_doubt == 0;
        }
        if (quiet) {
            break;
        }
        CHECK (step < SETTLE_STEPS - 1, "the shards never settled");
    }
    //  Settle every outcome by lookup at the debit shard; build the model.
    uint64_t debits[ACCOUNTS + 1] = {0}, credits[ACCOUNTS + 1] = {0};
    for (int k = 0; k < SLOTS; k++) {
        s_slot_t *s = &s_slots[k];
        if (!s->used) {
            continue;
        }
        int i = (s->t.debit_account_id.lo & 1) ? 0 : 1;
        rl_transfer_t found;
        CHECK (ledger_lookup_transfers (s_nodes[i].ledger, &s->t.id, 1, &found) == 0, "lookup");
        bool applied = found.timestamp != 0;
        CHECK (!s->applied_seen || applied, "transfer %d acknowledged but not applied", k);
        CHECK (!s->final || !applied, "transfer %d burned (%s) but applied", k,
               rl_result_name (s->final));
        CHECK (!s->aborted_last || !applied, "transfer %d answered aborted but applied", k);
        if (applied) {
            debits[s->t.debit_account_id.lo] += s->t.amount;
            credits[s->t.credit_account_id.lo] += s->t.amount;
        }
    }
    uint64_t dp = 0, cp = 0;
    for (uint64_t a = 1; a <= ACCOUNTS; a++) {
        int i = (a & 1) ? 0 : 1;
        rl_id_t id = {a, 0};
        rl_account_t acc;
        ledger_lookup_accounts (s_nodes[i].ledger, &id, 1, &acc);
        CHECK (acc.debits_posted == debits[a] && acc.credits_posted == credits[a],
               "account %lu: %lu/%lu, model %lu/%lu", (unsigned long) a,
               (unsigned long) acc.debits_posted, (unsigned long) acc.credits_posted,
               (unsigned long) debits[a], (unsigned long) credits[a]);
        CHECK (acc.debits_reserved == 0 && acc.credits_reserved == 0, "account %lu reserved",
               (unsigned long) a);
        dp += acc.debits_posted, cp += acc.credits_posted;
    }
    CHECK (dp == cp, "conservation: %lu != %lu", (unsigned long) dp, (unsigned long) cp);
}

static void
s_run_seed (uint64_t seed)
{
    s_seed = seed;
    s_rng = seed * 0x9E3779B97F4A7C15ull + 1;
    s_now = 1000000000ull;
    s_net_count = 0;
    s_faults = true;
    memset (s_slots, 0, sizeof (s_slots));
    for (int i = 0; i < NODES; i++) {
        memset (&s_nodes[i], 0, sizeof (s_nodes[i]));
        s_nodes[i].env = store_env_new_mem ();
        s_node_open (i);
    }
    s_setup_accounts ();
    for (int step = 0; step < STEPS; step++) {
        s_now += (s_rand () % 4) * 1000000ull;
        for (int i = 0; i < NODES; i++) {
            if (!s_nodes[i].up && s_now >= s_nodes[i].down_until_ns) {
                s_node_open (i);
            }
        }
        uint64_t r = s_rand () % 100;
        if (r < 35) {
            s_client_step ();
        } else if (r < 85) {
            s_deliver_step ();
        } else {
            int i = (int) (s_rand () % NODES);
            if (s_nodes[i].up) {
                ledger_tick (s_nodes[i].ledger, s_now);
                s_turn_finish (i);
            }
        }
        s_check_step ();
    }
    s_settle_and_check ();
    for (int i = 0; i < NODES; i++) {
        ledger_destroy (&s_nodes[i].ledger);
        store_close (&s_nodes[i].store);
        store_env_destroy (&s_nodes[i].env);
    }
}

static void
test_simulation (void **state)
{
    (void) state;
    if (getenv ("RL_SEED")) {
        uint64_t seed = strtoull (getenv ("RL_SEED"), NULL, 10);
        printf ("test_sim: RL_SEED=%lu\n", (unsigned long) seed);
        s_run_seed (seed);
        return;
    }
    //  Seeds until the time budget is spent (at least SEEDS_MIN), or exactly
    //  RL_SIM_SEEDS: every seed is deterministic, only their number varies.
    int seeds = getenv ("RL_SIM_SEEDS") ? atoi (getenv ("RL_SIM_SEEDS")) : 0;
    double budget_s = getenv ("RL_SIM_SECONDS") ? atof (getenv ("RL_SIM_SECONDS")) : 20.0;
    uint64_t base = (uint64_t) time (NULL);
    printf ("test_sim: seeds from %lu (replay one with RL_SEED=n)\n", (unsigned long) base);
    time_t start = time (NULL);
    int k = 0;
    while (seeds ? k < seeds : (k < SEEDS_MIN || difftime (time (NULL), start) < budget_s)) {
        s_run_seed (base + (uint64_t) k);
        k++;
    }
    printf ("test_sim: %d seeds passed\n", k);
}

int
main (void)
{
    setenv ("RL_LOG_LEVEL", "warn", 0); //  a restart logs its recovery: too many lines
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_simulation),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
