/*  rlbench_workload.c: what rlbench sends (bench/README.md, "Harness").

    Ids: every id of a run is (namespace, number), the namespace drawn from
    the seed, so each run has its own accounts and transfers. Accounts:
    customers 0..accounts-1, then with --limits one operator per shard (an
    id the ring maps onto that shard) that funds the customers of its
    shard. Draws: debit and credit accounts uniform, zipf (YCSB's
    generator) or hot (--hot-percent of draws among the first
    --hot-accounts), steered to another shard with --cross-fraction, or
    crediting the merchant (--hot-credit); amounts 1..RLB_AMOUNT_MAX.

    One generator, common/rl_rand.h, seeded from --seed: a run is
    reproducible from its printed seed.

    INVARIANTS
    1. A transfer's debit and credit accounts differ.
    2. Every set-up transfer that succeeded is in the check's model.

    LIMITS
    RLB_PICK_ATTEMPTS_MAX draws for a credit account of the wanted kind;
    operators searched among the first million ids after the customers.
*/
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "rl_rand.h"
#include "rlbench.h"

//  Random numbers ------------------------------------------------------------------

void
rlb_rand_seed (bench_t *b, uint64_t seed)
{
    //  xorshift64* needs a state other than zero.
    b->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    b->rng = b->rng ? b->rng : 1;
}

double
rlb_rand_unit (bench_t *b)
{
    return (double) (rl_rand_next (&b->rng) >> 11) * 0x1.0p-53;
}

uint64_t
rlb_rand_below (bench_t *b, uint64_t n)
{
    assert (n > 0);
    return rl_rand_next (&b->rng) % n;
}

//  Ids ---------------------------------------------------------------------
rl_id_t
rlb_account_id (const bench_t *b, uint64_t index)
{
    return (rl_id_t){.lo = index + 1, .hi = b->ns};
}

rl_id_t
rlb_transfer_id (const bench_t *b, uint64_t seq)
{
    return (rl_id_t){.lo = seq, .hi = b->ns ^ 0x7472616e73666572ull}; //  "transfer"
}

int
rlb_shard_of_id (const bench_t *b, rl_id_t id)
{
    if (!b->ring) {
        return -1;
    }
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    return ring_lookup_id (b->ring, bytes);
}

//  Accounts ------------------------------------------------------------------
//  Customers are indexes 0..accounts-1; with --limits, one operator per
//  shard follows (an id that the ring maps onto that shard), so that every
//  customer is funded by a same-shard transfer.
int
rlb_plan_accounts (bench_t *b)
{
    uint64_t n = b->o.accounts;
    size_t operators = b->o.limits ? (b->shard_count ? b->shard_count : 1) : 0;
    b->account_total = n + operators;
    b->account_shard = calloc (b->account_total + 1, sizeof (int));
    if (!b->account_shard) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        b->account_shard[i] = rlb_shard_of_id (b, rlb_account_id (b, i));
    }
    return 0;
}

//  The operator of shard k: the first id (ns, accounts + 1 + j) whose shard
//  is k. A bounded search: with a balanced ring, a few tries per shard.
int
rlb_find_operators (bench_t *b)
{
    size_t operators = b->account_total - b->o.accounts;
    size_t found = 0;
    bool have[RLB_SHARDS_MAX] = {false};
    for (uint64_t j = 0; j < 1000000 && found < operators; j++) {
        rl_id_t id = rlb_account_id (b, b->o.accounts + j);
        int k = b->ring ? rlb_shard_of_id (b, id) : 0;
        if (k >= 0 && (size_t) k < operators && !have[k]) {
            have[k] = true;
            b->operator_ids[k] = id;
            b->account_shard[b->o.accounts + (size_t) k] = k;
            found++;
        }
    }
    return found == operators ? 0 : -1;
}

rl_id_t
rlb_id_of_index (const bench_t *b, uint64_t index)
{
    if (index < b->o.accounts) {
        return rlb_account_id (b, index);
    }
    return b->operator_ids[index - b->o.accounts];
}

int
rlb_model_new (bench_t *b)
{
    b->check = rl_check_new (b->account_total);
    if (!b->check) {
        return -1;
    }
    for (uint64_t i = 0; i < b->account_total; i++) {
        int64_t index = rl_check_add_account (b->check, rlb_id_of_index (b, i), b->o.ledger);
        assert (index == (int64_t) i);
    }
    return 0;
}

int
rlb_create_accounts (bench_t *b, rl_client_t *client)
{
    static rl_account_t accounts[RL_BATCH_RECORDS_MAX];
    static rl_result_rec_t results[RL_BATCH_RECORDS_MAX];
    for (uint64_t first = 0; first < b->account_total; first += RL_BATCH_RECORDS_MAX) {
        size_t n = 0;
        for (uint64_t i = first; i < b->account_total && n < RL_BATCH_RECORDS_MAX; i++, n++) {
            bool customer = i < b->o.accounts;
            accounts[n] = (rl_account_t){
                .id = rlb_id_of_index (b, i),
                .ledger = b->o.ledger,
                .code = customer ? 1 : 2,
                .flags = (uint16_t) (customer && i == 0 && b->o.hot_credit > 0
                                         ? RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS
                                     : customer && b->o.limits
                                         ? RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS
                                         : 0)};
        }
        //  Retried (same ids: a created account answers exists): a router
        //  that has not reached a shard yet answers its records busy.
        int rc = rl_client_create_accounts_retry (client, accounts, n, results,
                                                  RLB_ADMIN_TIMEOUT_MS, RLB_CREATE_ATTEMPTS);
        if (rc != 0) {
            fprintf (stderr, "rlbench: create_accounts: %s\n",
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
                fprintf (stderr, "rlbench: create_accounts: account %" PRIu64 ": %s\n", first + i,
                         rl_result_name (results[i].result));
                return -1;
            }
        }
    }
    return 0;
}

//  --limits: each customer gets RLB_FUND_AMOUNT from its shard's operator.
int
rlb_fund_accounts (bench_t *b, rl_client_t *client)
{
    static rl_transfer_t transfers[RL_BATCH_RECORDS_MAX];
    static rl_result_rec_t results[RL_BATCH_RECORDS_MAX];
    for (uint64_t first = 0; first < b->o.accounts; first += RL_BATCH_RECORDS_MAX) {
        size_t n = 0;
        for (uint64_t i = first; i < b->o.accounts && n < RL_BATCH_RECORDS_MAX; i++, n++) {
            int k = b->account_shard[i] < 0 ? 0 : b->account_shard[i];
            transfers[n] = (rl_transfer_t){.id = rlb_transfer_id (b, b->next_seq++),
                                           .debit_account_id = b->operator_ids[k],
                                           .credit_account_id = rlb_account_id (b, i),
                                           .amount = RLB_FUND_AMOUNT,
                                           .ledger = b->o.ledger,
                                           .code = 2};
        }
        int rc = rl_client_create_transfers (client, transfers, n, results, RLB_ADMIN_TIMEOUT_MS);
        if (rc != 0) {
            fprintf (stderr, "rlbench: funding: %s\n",
                     rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t acct = first + i;
            int k = b->account_shard[acct] < 0 ? 0 : b->account_shard[acct];
            if (results[i].result != RL_OK && results[i].result != RL_EXISTS) {
                fprintf (stderr, "rlbench: funding account %" PRIu64 ": %s\n", acct,
                         rl_result_name (results[i].result));
                return -1;
            }
            rl_check_applied (b->check, transfers[i].id, b->o.accounts + (size_t) k, acct,
                              RLB_FUND_AMOUNT);
            b->ok_total++;
        }
    }
    return 0;
}

//  --hot-credit: the merchant (customer 0) may not be credited beyond its
//  debits, so it first pays customer 1 a large amount: its headroom.
#define RLB_MERCHANT_HEADROOM (1ull << 60)

int
rlb_merchant_setup (bench_t *b, rl_client_t *client)
{
    rl_transfer_t t = {.id = rlb_transfer_id (b, b->next_seq++),
                       .debit_account_id = rlb_account_id (b, 0),
                       .credit_account_id = rlb_account_id (b, 1),
                       .amount = RLB_MERCHANT_HEADROOM,
                       .ledger = b->o.ledger,
                       .code = 2};
    rl_result_rec_t r;
    int rc = rl_client_create_transfers (client, &t, 1, &r, RLB_ADMIN_TIMEOUT_MS);
    if (rc != 0 || (r.result != RL_OK && r.result != RL_EXISTS)) {
        fprintf (stderr, "rlbench: merchant set-up: %s\n",
                 rc ? rl_client_strerror (rc) : rl_result_name (r.result));
        return -1;
    }
    rl_check_applied (b->check, t.id, 0, 1, RLB_MERCHANT_HEADROOM);
    b->ok_total++;
    b->setup_ok++;
    return 0;
}

//  Workload: which accounts a transfer moves money between -------------------
void
rlb_zipf_init (bench_t *b)
{
    double n = (double) b->o.accounts, theta = b->o.theta, zetan = 0;
    for (uint64_t i = 1; i <= b->o.accounts; i++) {
        zetan += 1.0 / pow ((double) i, theta);
    }
    double zeta2 = 1.0 + 1.0 / pow (2.0, theta);
    b->zipf_zetan = zetan;
    b->zipf_alpha = 1.0 / (1.0 - theta);
    b->zipf_eta = (1.0 - pow (2.0 / n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
    b->zipf_half_pow = 1.0 + pow (0.5, theta);
}

uint32_t
rlb_pick (bench_t *b)
{
    uint64_t n = b->o.accounts;
    if (b->o.hot_percent > 0 && rlb_rand_unit (b) * 100.0 < b->o.hot_percent) {
        return (uint32_t) rlb_rand_below (b, b->o.hot_accounts);
    }
    if (b->o.workload == WORKLOAD_ZIPF) {
        double u = rlb_rand_unit (b), uz = u * b->zipf_zetan;
        if (uz < 1.0) {
            return 0;
        }
        if (uz < b->zipf_half_pow) {
            return 1;
        }
        uint64_t r = (uint64_t) ((double) n
                                 * pow (b->zipf_eta * u - b->zipf_eta + 1.0, b->zipf_alpha));
        return (uint32_t) (r < n ? r : n - 1);
    }
    return (uint32_t) rlb_rand_below (b, n);
}

int
rlb_build_buckets (bench_t *b)
{
    if (!b->ring || b->shard_count == 0) {
        return 0;
    }
    b->bucket = calloc (b->shard_count, sizeof (uint32_t *));
    b->bucket_size = calloc (b->shard_count, sizeof (uint64_t));
    if (!b->bucket || !b->bucket_size) {
        return -1;
    }
    for (size_t k = 0; k < b->shard_count; k++) {
        b->bucket[k] = malloc (b->o.accounts * sizeof (uint32_t));
        if (!b->bucket[k]) {
            return -1;
        }
    }
    for (uint64_t i = 0; i < b->o.accounts; i++) {
        int k = b->account_shard[i];
        if (k >= 0 && (size_t) k < b->shard_count) {
            b->bucket[k][b->bucket_size[k]++] = (uint32_t) i;
        }
    }
    return 0;
}

//  A credit account for debit account d: drawn from the workload, and on
//  another shard with probability --cross-fraction (when given). After
//  RLB_PICK_ATTEMPTS_MAX draws of the wrong kind, a uniform draw among the
//  accounts of the wanted kind.
uint32_t
rlb_pick_credit (bench_t *b, uint32_t d)
{
    bool constrained = b->o.cross_fraction >= 0 && b->bucket;
    bool want_cross = constrained && rlb_rand_unit (b) < b->o.cross_fraction;
    for (int attempt = 0; attempt < RLB_PICK_ATTEMPTS_MAX; attempt++) {
        uint32_t c = rlb_pick (b);
        if (c == d) {
            continue;
        }
        if (!constrained || (b->account_shard[c] != b->account_shard[d]) == want_cross) {
            return c;
        }
    }
    int kd = b->account_shard[d];
    if (want_cross) {
        size_t k = (size_t) rlb_rand_below (b, b->shard_count - 1);
        k += k >= (size_t) kd;
        if (b->bucket_size[k] > 0) {
            return b->bucket[k][rlb_rand_below (b, b->bucket_size[k])];
        }
    } else if (b->bucket_size[kd] > 1) {
        for (int attempt = 0; attempt < RLB_PICK_ATTEMPTS_MAX; attempt++) {
            uint32_t c = b->bucket[kd][rlb_rand_below (b, b->bucket_size[kd])];
            if (c != d) {
                return c;
            }
        }
    }
    return (uint32_t) ((d + 1) % b->o.accounts);
}

//  Resolutions (--transfer-pending) ----------------------------------------------

void
rlb_resolve_push (bench_t *b, rec_t rec, bool force_void)
{
    if (b->resolve_count == b->resolve_cap) {
        size_t cap = b->resolve_cap ? 2 * b->resolve_cap : RLB_RESOLVE_INITIAL;
        rec_t *grown = malloc (cap * sizeof (*grown));
        if (!grown) {
            b->resolve_lost = true; //  the check then fails: nothing pending may be left
            return;
        }
        for (size_t i = 0; i < b->resolve_count; i++) {
            grown[i] = b->resolve[(b->resolve_head + i) % b->resolve_cap];
        }
        free (b->resolve);
        b->resolve = grown;
        b->resolve_head = 0;
        b->resolve_cap = cap;
    }
    rec.kind = force_void ? REC_VOID : REC_PENDING;
    b->resolve[(b->resolve_head + b->resolve_count++) % b->resolve_cap] = rec;
}

size_t
rlb_resolve_queued (const bench_t *b)
{
    return b->resolve_count;
}

//  The oldest pending transfer to resolve, as its post (4 in 5) or void.
static rec_t
s_resolve_pop (bench_t *b)
{
    assert (b->resolve_count > 0);
    rec_t rec = b->resolve[b->resolve_head];
    b->resolve_head = (b->resolve_head + 1) % b->resolve_cap;
    b->resolve_count--;
    if (rec.kind == REC_PENDING) {
        rec.kind = rlb_rand_below (b, RLB_VOID_ONE_IN) == 0 ? REC_VOID : REC_POST;
    }
    return rec;
}

//  The next transfer of the workload (without its id).
rec_t
rlb_next_transfer (bench_t *b)
{
    if (b->resolve_count > 0
        && (b->resolve_only || rlb_rand_unit (b) * 100.0 < b->o.transfer_pending)) {
        return s_resolve_pop (b);
    }
    uint32_t d = rlb_pick (b);
    uint32_t cr = rlb_pick_credit (b, d);
    if (b->o.hot_credit > 0 && rlb_rand_unit (b) * 100.0 < b->o.hot_credit) {
        //  The merchant is credited, from an account on another shard.
        cr = 0;
        int home = b->account_shard[0];
        for (int attempt = 0; attempt < RLB_PICK_ATTEMPTS_MAX; attempt++) {
            if (d != 0 && (!b->bucket || b->account_shard[d] != home)) {
                break;
            }
            d = (uint32_t) rlb_rand_below (b, b->o.accounts);
        }
        if (d == 0) {
            d = 1;
        }
    }
    assert (d != cr);
    //  Any transfer may be pending: one whose accounts are on two shards
    //  reserves on both, and its post or void is a two-phase attempt
    //  (docs/payments.md, "Pending transfers across shards").
    bool pending = b->o.transfer_pending > 0 && rlb_rand_unit (b) * 100.0 < b->o.transfer_pending;
    return (rec_t){.debit = d,
                   .credit = cr,
                   .amount = (uint32_t) (1 + rlb_rand_below (b, RLB_AMOUNT_MAX)),
                   .kind = pending ? REC_PENDING : REC_PLAIN};
}
