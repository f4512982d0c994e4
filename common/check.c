/*  check.c: the conservation check (see check.h). */
#include "check.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "rl_rand.h"

#define S_FAILURES_SHOWN    10                  //  account mismatches printed
#define S_HISTORY_PAGES_MAX 100000              //  pages of one account's history
#define S_CLIENTS_MAX       (RL_SHARDS_MAX + 1) //  distinct clients of one run
#define S_SAMPLE_SEED       0x636865636b73ull   //  reservoir sampling is reproducible

typedef struct {
    rl_id_t id;
    size_t debit;
    size_t credit;
    uint64_t amount;
} s_transfer_t;

struct rl_check_t {
    size_t accounts_max;
    size_t account_count;
    rl_id_t *ids;
    uint32_t *ledgers;
    uint64_t *debits;  //  model: debits posted per account
    uint64_t *credits; //  model: credits posted per account
    uint64_t applied;
    s_transfer_t *unknown;
    size_t unknown_count;
    size_t unknown_cap;
    s_transfer_t sample[RL_CHECK_SAMPLE_MAX];
    uint64_t sample_seen;
    uint64_t rand_state;
    uint64_t settled_applied;
    uint64_t settled_absent;
};

//  Accounts or transfers grouped by the client that serves them.
typedef struct {
    rl_client_t *client;
    size_t *members; //  indexes
    size_t count;
} s_group_t;

typedef struct {
    s_group_t groups[S_CLIENTS_MAX];
    size_t group_count;
    size_t *storage; //  one index per member, all groups
} s_groups_t;

static void
s_fail (const rl_check_options_t *options, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (options->report, "%s", options->prefix ? options->prefix : "");
    vfprintf (options->report, format, args);
    fprintf (options->report, "\n");
    va_end (args);
}

rl_check_t *
rl_check_new (size_t accounts_max)
{
    assert (accounts_max > 0);
    rl_check_t *self = calloc (1, sizeof (rl_check_t));
    if (!self) {
        return NULL;
    }
    self->accounts_max = accounts_max;
    self->ids = calloc (accounts_max, sizeof (rl_id_t));
    self->ledgers = calloc (accounts_max, sizeof (uint32_t));
    self->debits = calloc (accounts_max, sizeof (uint64_t));
    self->credits = calloc (accounts_max, sizeof (uint64_t));
    self->rand_state = S_SAMPLE_SEED;
    if (!self->ids || !self->ledgers || !self->debits || !self->credits) {
        rl_check_destroy (&self);
    }
    return self;
}

void
rl_check_destroy (rl_check_t **self_p)
{
    assert (self_p);
    rl_check_t *self = *self_p;
    if (self) {
        free (self->ids);
        free (self->ledgers);
        free (self->debits);
        free (self->credits);
        free (self->unknown);
        free (self);
        *self_p = NULL;
    }
}

int64_t
rl_check_add_account (rl_check_t *self, rl_id_t id, uint32_t ledger)
{
    assert (self);
    if (self->account_count == self->accounts_max) {
        return -1;
    }
    size_t index = self->account_count++;
    self->ids[index] = id;
    self->ledgers[index] = ledger;
    return (int64_t) index;
}

size_t
rl_check_account_count (const rl_check_t *self)
{
    assert (self);
    return self->account_count;
}

rl_id_t
rl_check_account_id (const rl_check_t *self, size_t index)
{
    assert (self && index < self->account_count);
    return self->ids[index];
}

static void
s_apply (rl_check_t *self, const s_transfer_t *t)
{
    assert (t->debit < self->account_count && t->credit < self->account_count);
    self->debits[t->debit] += t->amount;
    self->credits[t->credit] += t->amount;
    self->applied++;
    //  Reservoir sample of the applied transfers, looked up again at the end.
    self->sample_seen++;
    if (self->sample_seen <= RL_CHECK_SAMPLE_MAX) {
        self->sample[self->sample_seen - 1] = *t;
    } else {
        uint64_t j = rl_rand_next (&self->rand_state) % self->sample_seen;
        if (j < RL_CHECK_SAMPLE_MAX) {
            self->sample[j] = *t;
        }
    }
}

void
rl_check_applied (rl_check_t *self, rl_id_t transfer_id, size_t debit, size_t credit,
                  uint64_t amount)
{
    assert (self);
    s_transfer_t t = {transfer_id, debit, credit, amount};
    s_apply (self, &t);
}

int
rl_check_unknown (rl_check_t *self, rl_id_t transfer_id, size_t debit, size_t credit,
                  uint64_t amount)
{
    assert (self);
    assert (debit < self->account_count && credit < self->account_count);
    if (self->unknown_count == self->unknown_cap) {
        size_t cap = self->unknown_cap ? self->unknown_cap * 2 : 1024;
        s_transfer_t *grown = realloc (self->unknown, cap * sizeof (s_transfer_t));
        if (!grown) {
            return -1;
        }
        self->unknown = grown;
        self->unknown_cap = cap;
    }
    self->unknown[self->unknown_count++] = (s_transfer_t){transfer_id, debit, credit, amount};
    return 0;
}

void
rl_check_expect (rl_check_t *self, size_t index, uint64_t debits, uint64_t credits)
{
    assert (self && index < self->account_count);
    self->debits[index] += debits;
    self->credits[index] += credits;
}

void
rl_check_expect_applied (rl_check_t *self, uint64_t transfers)
{
    assert (self);
    self->applied += transfers;
}

uint64_t
rl_check_applied_count (const rl_check_t *self)
{
    return self->applied;
}

size_t
rl_check_unknown_count (const rl_check_t *self)
{
    return self->unknown_count;
}

uint64_t
rl_check_settled_applied (const rl_check_t *self)
{
    return self->settled_applied;
}

uint64_t
rl_check_settled_absent (const rl_check_t *self)
{
    return self->settled_absent;
}

//  Grouping by client --------------------------------------------------------------

//  Puts each of `count` items into the group of its client (by the account
//  id that account_of gives). -1 when out of memory or too many clients.
static int
s_group (s_groups_t *groups, const rl_check_options_t *options, size_t count,
         rl_id_t (*account_of) (const void *arg, size_t i), const void *arg)
{
    memset (groups, 0, sizeof (*groups));
    rl_client_t **of = malloc ((count ? count : 1) * sizeof (rl_client_t *));
    groups->storage = malloc ((count ? count : 1) * sizeof (size_t));
    if (!of || !groups->storage) {
        free (of);
        free (groups->storage);
        groups->storage = NULL;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        of[i] = options->client_for (options->client_arg, account_of (arg, i));
        assert (of[i]);
        size_t g = 0;
        while (g < groups->group_count && groups->groups[g].client != of[i]) {
            g++;
        }
        if (g == groups->group_count) {
            if (g == S_CLIENTS_MAX) {
                rc = -1;
                break;
            }
            groups->groups[g].client = of[i];
            groups->group_count++;
        }
        groups->groups[g].count++;
    }
    //  Lay the groups out one after the other in storage.
    size_t offset = 0;
    for (size_t g = 0; g < groups->group_count; g++) {
        groups->groups[g].members = groups->storage + offset;
        offset += groups->groups[g].count;
        groups->groups[g].count = 0;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t g = 0;
        while (groups->groups[g].client != of[i]) {
            g++;
        }
        groups->groups[g].members[groups->groups[g].count++] = i;
    }
    free (of);
    return rc;
}

static void
s_groups_free (s_groups_t *groups)
{
    free (groups->storage);
    groups->storage = NULL;
}

//  1. A quiet cluster -----------------------------------------------------------------

static bool
s_wait_quiet (const rl_check_options_t *options)
{
    size_t n = options->shard_count;
    assert (n > 0 && n <= RL_SHARDS_MAX);
    rl_client_t *clients[RL_SHARDS_MAX] = {NULL};
    for (size_t i = 0; i < n; i++) {
        clients[i] = rl_client_new (options->shard_endpoints[i]);
        if (!clients[i]) {
            s_fail (options, "cannot use shard endpoint '%s'", options->shard_endpoints[i]);
            for (size_t k = 0; k < i; k++) {
                rl_client_destroy (&clients[k]);
            }
            return false;
        }
    }
    int64_t deadline = zclock_mono () + options->quiet_timeout_ms;
    uint64_t last_requests = UINT64_MAX;
    uint64_t live = 0;
    size_t answered = 0;
    bool quiet = false;
    while (!quiet) {
        uint64_t requests = 0;
        live = 0;
        answered = 0;
        for (size_t i = 0; i < n; i++) {
            rl_status_rec_t status;
            if (rl_client_status (clients[i], &status, options->timeout_ms) == 0) {
                answered++;
                live += status.inflight + status.in_doubt;
                requests += status.requests;
            }
        }
        //  Each round adds our own status request to every shard's count.
        quiet = answered == n && live == 0 && requests == last_requests + n;
        last_requests = answered == n ? requests : UINT64_MAX;
        if (quiet || zclock_mono () >= deadline) {
            break;
        }
        zclock_sleep (RL_CHECK_QUIET_POLL_MS);
    }
    for (size_t i = 0; i < n; i++) {
        rl_client_destroy (&clients[i]);
    }
    if (quiet) {
        return true;
    }
    if (answered < n || live > 0) {
        s_fail (options,
                "the cluster did not settle within %d ms: %zu of %zu shards answered, %" PRIu64
                " live attempts or prepared records",
                options->quiet_timeout_ms, answered, n, live);
        return false;
    }
    //  No live attempt, but requests still arrive (another client, a router's
    //  ring refresh): the balances read below are still a valid check.
    fprintf (options->report,
             "%srequests still arriving after %d ms with no live attempt; checking anyway\n",
             options->prefix ? options->prefix : "", options->quiet_timeout_ms);
    return true;
}

//  2 and 6. Lookups of transfers ------------------------------------------------------

typedef struct {
    const rl_check_t *self;
    const s_transfer_t *list;
} s_list_t;

static rl_id_t
s_list_debit (const void *arg, size_t i)
{
    const s_list_t *l = arg;
    return l->self->ids[l->list[i].debit];
}

//  Looks up the transfers of `list` (each on its debit account's client);
//  found[i] is set when list[i] exists with the fields it was sent with.
//  0; -1 when a lookup kept failing; -2 when a transfer has other fields.
static int
s_lookup_list (const rl_check_t *self, const rl_check_options_t *options, const s_transfer_t *list,
               size_t count, bool *found)
{
    static rl_id_t ids[RL_BATCH_RECORDS_MAX];
    static rl_transfer_t out[RL_BATCH_RECORDS_MAX];
    s_list_t arg = {self, list};
    s_groups_t groups;
    if (s_group (&groups, options, count, s_list_debit, &arg) != 0) {
        s_fail (options, "out of memory (or clients) grouping %zu transfers", count);
        return -1;
    }
    int rc = 0;
    for (size_t g = 0; g < groups.group_count && rc == 0; g++) {
        const s_group_t *group = &groups.groups[g];
        for (size_t first = 0; first < group->count && rc == 0; first += RL_BATCH_RECORDS_MAX) {
            size_t n = group->count - first;
            n = n < RL_BATCH_RECORDS_MAX ? n : RL_BATCH_RECORDS_MAX;
            for (size_t i = 0; i < n; i++) {
                ids[i] = list[group->members[first + i]].id;
            }
            int call = -1;
            int backoff_ms = 10;
            for (int attempt = 0; attempt < RL_CHECK_SETTLE_ATTEMPTS_MAX && call != 0; attempt++) {
                call = rl_client_lookup_transfers (group->client, ids, n, out, options->timeout_ms);
                if (call != 0) {
                    zclock_sleep (backoff_ms);
                    backoff_ms = backoff_ms * 2 < RL_CHECK_SETTLE_BACKOFF_MS_MAX
                                     ? backoff_ms * 2
                                     : RL_CHECK_SETTLE_BACKOFF_MS_MAX;
                }
            }
            if (call != 0) {
                s_fail (options, "lookup_transfers kept failing: %s",
                        call > 0 ? rl_status_name ((uint32_t) call) : rl_client_strerror (call));
                rc = -1;
                break;
            }
            for (size_t i = 0; i < n; i++) {
                size_t k = group->members[first + i];
                const s_transfer_t *t = &list[k];
                found[k] = out[i].timestamp != 0;
                if (found[k]
                    && (!rl_id_eq (out[i].debit_account_id, self->ids[t->debit])
                        || !rl_id_eq (out[i].credit_account_id, self->ids[t->credit])
                        || out[i].amount != t->amount)) {
                    s_fail (options,
                            "transfer 0x%016" PRIx64 "%016" PRIx64 " found with other fields",
                            t->id.hi, t->id.lo);
                    rc = -2;
                }
            }
        }
    }
    s_groups_free (&groups);
    return rc;
}

static bool
s_settle (rl_check_t *self, const rl_check_options_t *options)
{
    if (self->unknown_count == 0) {
        return true;
    }
    bool *found = calloc (self->unknown_count, sizeof (bool));
    if (!found) {
        s_fail (options, "out of memory settling %zu unknown transfers", self->unknown_count);
        return false;
    }
    int rc = s_lookup_list (self, options, self->unknown, self->unknown_count, found);
    for (size_t i = 0; i < self->unknown_count && rc == 0; i++) {
        if (found[i]) {
            s_apply (self, &self->unknown[i]);
            self->settled_applied++;
        } else {
            self->settled_absent++;
        }
    }
    free (found);
    if (rc != 0) {
        s_fail (options, "could not settle %zu unknown transfers", self->unknown_count);
    }
    return rc == 0;
}

static bool
s_check_sample (const rl_check_t *self, const rl_check_options_t *options)
{
    size_t count = self->sample_seen < RL_CHECK_SAMPLE_MAX ? (size_t) self->sample_seen
                                                           : RL_CHECK_SAMPLE_MAX;
    bool found[RL_CHECK_SAMPLE_MAX] = {false};
    if (count == 0) {
        return true;
    }
    if (s_lookup_list (self, options, self->sample, count, found) != 0) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (!found[i]) {
            s_fail (options, "applied transfer 0x%016" PRIx64 "%016" PRIx64 " not found",
                    self->sample[i].id.hi, self->sample[i].id.lo);
            return false;
        }
    }
    return true;
}

//  3, 4 and 5. Accounts, ledgers and histories -----------------------------------------

typedef struct {
    uint32_t ledger;
    uint64_t debits;
    uint64_t credits;
} s_ledger_sum_t;

typedef struct {
    s_ledger_sum_t ledgers[RL_CHECK_LEDGERS_MAX];
    size_t ledger_count;
    uint64_t history_transfers;
    uint64_t mismatches;
    bool ok;
} s_tally_t;

static rl_id_t
s_account_of (const void *arg, size_t i)
{
    const rl_check_t *self = arg;
    return self->ids[i];
}

//  Sums one account's history (paged by timestamp, strictly ascending).
static int
s_history_sums (rl_client_t *client, rl_id_t id, int timeout_ms, uint64_t *debits_p,
                uint64_t *credits_p, uint64_t *count_p)
{
    static rl_transfer_t page[RL_HISTORY_LIMIT_MAX];
    rl_filter_t filter = {
        .account_id = id,
        .limit = RL_HISTORY_LIMIT_MAX,
        .flags = RL_FILTER_DEBITS | RL_FILTER_CREDITS,
    };
    *debits_p = *credits_p = *count_p = 0;
    uint64_t last_timestamp = 0;
    for (int pages = 0; pages < S_HISTORY_PAGES_MAX; pages++) {
        size_t count = 0;
        if (rl_client_get_account_transfers (client, &filter, page, &count, timeout_ms) != 0) {
            return -1;
        }
        for (size_t i = 0; i < count; i++) {
            if (page[i].timestamp <= last_timestamp) {
                return -2; //  not ascending, or a duplicate
            }
            last_timestamp = page[i].timestamp;
            //  A pending transfer and a void post nothing; a post's record
            //  holds the amount it posted (docs/protocol.md).
            if (page[i].flags & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER)) {
                continue;
            }
            *debits_p += rl_id_eq (page[i].debit_account_id, id) ? page[i].amount : 0;
            *credits_p += rl_id_eq (page[i].credit_account_id, id) ? page[i].amount : 0;
            *count_p += 1;
        }
        if (count < filter.limit) {
            return 0;
        }
        filter.timestamp_min = last_timestamp + 1;
    }
    return -1;
}

static void
s_tally_account (const rl_check_t *self, const rl_check_options_t *options, rl_client_t *client,
                 size_t index, const rl_account_t *a, s_tally_t *tally)
{
    uint32_t ledger = self->ledgers[index] == RL_CHECK_LEDGER_ANY ? a->ledger
                                                                  : self->ledgers[index];
    bool equal = a->timestamp != 0 && a->ledger == ledger && a->debits_posted == self->debits[index]
                 && a->credits_posted == self->credits[index] && a->debits_pending == 0
                 && a->credits_pending == 0 && a->debits_reserved == 0 && a->credits_reserved == 0;
    if (!equal && tally->mismatches++ < S_FAILURES_SHOWN) {
        s_fail (options,
                "account %zu: ledger %" PRIu32 ", debits %" PRIu64 " credits %" PRIu64
                " pending %" PRIu64 "/%" PRIu64 " reserved %" PRIu64 "/%" PRIu64
                ", model: ledger %" PRIu32 ", %" PRIu64 "/%" PRIu64 "%s",
                index, a->ledger, a->debits_posted, a->credits_posted, a->debits_pending,
                a->credits_pending, a->debits_reserved, a->credits_reserved, self->ledgers[index],
                self->debits[index], self->credits[index], a->timestamp ? "" : " (not found)");
    }
    tally->ok = tally->ok && equal;
    size_t l = 0;
    while (l < tally->ledger_count && tally->ledgers[l].ledger != ledger) {
        l++;
    }
    if (l == tally->ledger_count) {
        if (l == RL_CHECK_LEDGERS_MAX) {
            s_fail (options, "more than %d ledgers in one model", RL_CHECK_LEDGERS_MAX);
            tally->ok = false;
            return;
        }
        tally->ledgers[l].ledger = ledger;
        tally->ledger_count++;
    }
    tally->ledgers[l].debits += a->debits_posted;
    tally->ledgers[l].credits += a->credits_posted;
    if (options->history && a->timestamp) {
        uint64_t debits = 0, credits = 0, count = 0;
        int rc = s_history_sums (client, self->ids[index], options->timeout_ms, &debits, &credits,
                                 &count);
        if (rc != 0 || debits != a->debits_posted || credits != a->credits_posted) {
            s_fail (options,
                    "account %zu: history %s: sums %" PRIu64 "/%" PRIu64 ", balances %" PRIu64
                    "/%" PRIu64,
                    index,
                    rc == -1   ? "could not be read"
                    : rc == -2 ? "not strictly ascending"
                               : "differs",
                    debits, credits, a->debits_posted, a->credits_posted);
            tally->ok = false;
        }
        tally->history_transfers += count;
    }
}

static bool
s_check_accounts (const rl_check_t *self, const rl_check_options_t *options)
{
    static rl_id_t ids[RL_BATCH_RECORDS_MAX];
    static rl_account_t out[RL_BATCH_RECORDS_MAX];
    s_groups_t groups;
    if (s_group (&groups, options, self->account_count, s_account_of, self) != 0) {
        s_fail (options, "out of memory (or clients) grouping %zu accounts", self->account_count);
        return false;
    }
    s_tally_t tally = {.ok = true};
    bool read_all = true;
    for (size_t g = 0; g < groups.group_count; g++) {
        const s_group_t *group = &groups.groups[g];
        for (size_t first = 0; first < group->count; first += RL_BATCH_RECORDS_MAX) {
            size_t n = group->count - first;
            n = n < RL_BATCH_RECORDS_MAX ? n : RL_BATCH_RECORDS_MAX;
            for (size_t i = 0; i < n; i++) {
                ids[i] = self->ids[group->members[first + i]];
            }
            int rc = rl_client_lookup_accounts (group->client, ids, n, out, options->timeout_ms);
            if (rc != 0) {
                s_fail (options, "lookup_accounts: %s",
                        rc > 0 ? rl_status_name ((uint32_t) rc) : rl_client_strerror (rc));
                tally.ok = false;
                read_all = false;
                break;
            }
            for (size_t i = 0; i < n; i++) {
                s_tally_account (self, options, group->client, group->members[first + i], &out[i],
                                 &tally);
            }
        }
    }
    s_groups_free (&groups);
    if (tally.mismatches) {
        s_fail (options, "%" PRIu64 " accounts differ from the model", tally.mismatches);
    }
    for (size_t l = 0; l < tally.ledger_count && read_all; l++) {
        if (tally.ledgers[l].debits != tally.ledgers[l].credits) {
            s_fail (options,
                    "ledger %" PRIu32 ": sum(debits_posted) %" PRIu64
                    " != sum(credits_posted) %" PRIu64,
                    tally.ledgers[l].ledger, tally.ledgers[l].debits, tally.ledgers[l].credits);
            tally.ok = false;
        }
    }
    //  Every applied transfer is in two histories: its debit and its credit side.
    if (tally.ok && options->history && tally.history_transfers != 2 * self->applied) {
        s_fail (options, "the histories hold %" PRIu64 " entries, not 2 x %" PRIu64 " applied",
                tally.history_transfers, self->applied);
        tally.ok = false;
    }
    return tally.ok;
}

//  The run ------------------------------------------------------------------------------

bool
rl_check_run (rl_check_t *self, const rl_check_options_t *options)
{
    assert (self && options);
    assert (options->client_for && options->report && options->shard_count > 0);
    assert (options->ok_min > 0); //  a check that passes on an empty cluster is not a check
    bool ok = s_wait_quiet (options);
    ok = s_settle (self, options) && ok;
    ok = s_check_accounts (self, options) && ok;
    ok = s_check_sample (self, options) && ok;
    if (self->applied < options->ok_min) {
        s_fail (options, "%" PRIu64 " transfers took effect, fewer than the %" PRIu64 " expected",
                self->applied, options->ok_min);
        ok = false;
    }
    return ok;
}
