/*  rebalance.c: the ring planner for capacity planners (docs/rebalance.md).

    rebalance init --shard NAME=ENDPOINT[@WEIGHT]... [--epoch N]
                   [--points-per-weight N] [--keys KEYDIR] [--out FILE]
        Builds a fresh ring by adding the shards in the order given.
        --keys writes every shard's CURVE public key into the ring, from
        KEYDIR/shard/NAME.key (docs/security.md); plan takes it too.

    rebalance plan --ring FILE [--add NAME=ENDPOINT[@WEIGHT]]...
                   [--remove NAME]... [--reweight NAME=WEIGHT]...
                   [--out FILE] [--sample N] [--seed S] [--ids FILE] [--keys KEYDIR] [--json]
        Applies the changes in the order given to a copy of the ring and
        prints what moves: ownership before and after, the flows between
        shards (hash space, and accounts of a sample of ids), imbalance and
        points, as a table or (--json) one JSON object built with cJSON
        (tools/jsonkit.h). With --out, writes the proposed ring at epoch + 1.

    rebalance plan --live ROUTER ... and rebalance suggest --live ROUTER ...
        Plan from the load the shards measured (rebalance_live_cmd.c,
        rebalance_live.h): dispatched from here.

    INVARIANTS
    1. The current ring file is never written; --out is written atomically.
    2. Exit codes: 0 done, 1 a ring or ids file is bad or cannot be
       written, 2 a usage error (bad option, or a change the ring refuses).
    3. The sample is seeded (--seed, default 1), so a plan is reproducible.

    LIMITS
    At most RL_SHARDS_MAX changes of each kind; --sample up to
    S_SAMPLE_IDS_MAX ids; an ids file up to the same number of lines.
    apply, status, check, fix and abort (a running cluster) are in
    rebalance_apply.c, the steps and the state directory in
    rebalance_state.c (rebalance.h).
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "jsonkit.h"
#include "keys.h"
#include "rebalance.h"
#include "ring.h"
#include "rl_rand.h"

#define S_EXIT_BAD_FILE      1
#define S_EXIT_USAGE         2
#define S_SAMPLE_IDS_DEFAULT 100000    //  synthetic ids when --ids is absent
#define S_SAMPLE_IDS_MAX     100000000 //  ids sampled or read, upper bound
#define S_CHANGES_MAX        RL_SHARDS_MAX
#define S_ID_LINE_SIZE_MAX   256 //  bytes of one line of an ids file

typedef enum { S_ADD, S_REMOVE, S_REWEIGHT } s_change_kind_t;

typedef struct {
    s_change_kind_t kind;
    char name[RL_SHARD_NAME_SIZE_MAX];
    char endpoint[RL_ENDPOINT_SIZE_MAX];
    double weight;
} s_change_t;

typedef struct {
    const char *ring_path;
    const char *out_path;
    const char *ids_path;
    const char *keys_dir;
    uint64_t sample_count;
    uint64_t seed;
    int json;
    s_change_t *changes;
    size_t change_count;
} s_plan_args_t;

//  What the sample says: accounts per shard and per (from, to) pair.
typedef struct {
    uint64_t ids;     //  ids looked up
    uint64_t *before; //  [shards of a] ids owned before
    uint64_t *after;  //  [shards of b] ids owned after
    uint64_t *moves;  //  [shards of a x shards of b] ids moved
} s_counts_t;

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage:\n"
        "  rebalance plan --ring CURRENT.ring [--add NAME=ENDPOINT[@WEIGHT]]...\n"
        "                 [--remove NAME]... [--reweight NAME=WEIGHT]...\n"
        "                 [--out NEW.ring] [--sample N] [--seed S] [--ids FILE] [--keys KEYDIR]\n"
        "                 [--json]\n"
        "      show what a change of the ring moves; --out writes the new ring (epoch + 1)\n"
        "  rebalance init --shard NAME=ENDPOINT[@WEIGHT]... [--epoch N]\n"
        "                 [--points-per-weight N] [--keys KEYDIR] [--out FILE]\n"
        "      build a fresh ring (to stdout without --out)\n"
        "--keys KEYDIR  (init, plan) every shard's public key from KEYDIR/shard/NAME.key\n"
        "  rebalance plan --live ROUTER [--add ...]... [--remove ...]... [--reweight ...]...\n"
        "                 [--to NEW.ring] [--out NEW.ring] [--target X] [--json]\n"
        "      predict each shard's load after the change from the load the shards measured\n"
        "  rebalance suggest --live ROUTER [--target X] [--spare NAME=ENDPOINT[@WEIGHT]]...\n"
        "                 [--max-steps N] [--out NEW.ring] [--json]\n"
        "      propose reweights or additions that bring the predicted max/mean load to\n"
        "      the target (default 1.10); names the accounts no placement can balance\n"
        "plan --live, suggest: --cert FILE [--server-key KEY] | --insecure; [--timeout-ms N]\n"
        "  rebalance apply CURRENT.ring NEW.ring --state DIR [--freeze-max-ms N]\n"
        "                 [--max-retries N] [--catchup-records N] [--entries N]\n"
        "                 [--freeze-entries N] [--copy-share PERCENT]\n"
        "                 [--failover-wait-s N] [--heuristics-reconciled]\n"
        "      move every arc whose owner changes, one step (and one epoch) each,\n"
        "      resumable: run it again with the same DIR after a crash\n"
        "  rebalance status --state DIR [--json]\n"
        "  rebalance check  --state DIR [--json]   shards against the state file\n"
        "  rebalance fix    --state DIR            resolve what check finds\n"
        "  rebalance abort  --state DIR            stop a step not handed over yet; releases\n"
        "                                          the plan's lease on the shards\n"
        "  rebalance recover --from RING0 --to FINAL --state NEWDIR\n"
        "      rebuild a lost state directory of the change RING0 -> FINAL from the\n"
        "      shards; then apply (or abort) with it\n"
        "apply, check, fix, abort, recover: --cert FILE [--server-key KEY] | --insecure;\n"
        "[--timeout-ms N]\n"
        "\n"
        "--sample N   synthetic random ids to count accounts moved (default %d)\n"
        "--ids FILE   count real accounts instead: one 32-hex-digit id per line\n"
        "exit: 0 done, 1 bad ring, ids or state file, 2 usage error, 3 the cluster did\n"
        "not answer or refused (rerun), 4 check found problems, 5 suggest found no ring\n"
        "within the target, 6 fenced: another plan holds a shard's lease, or a shard\n"
        "serves a ring this plan does not expect at this step. See docs/rebalance.md.\n",
        S_SAMPLE_IDS_DEFAULT);
}

static int
s_usage_error (const char *format, const char *detail)
{
    fprintf (stderr, "rebalance: ");
    fprintf (stderr, format, detail);
    fprintf (stderr, "\n(run 'rebalance --help' for usage)\n");
    return S_EXIT_USAGE;
}

//  Arguments ------------------------------------------------------------------

static int
s_parse_number (const char *text, double *value_p)
{
    char *end = NULL;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || end == text || *end || !isfinite (value)) {
        return -1;
    }
    *value_p = value;
    return 0;
}

static int
s_parse_u64 (const char *text, uint64_t *value_p)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (text, &end, 0);
    if (errno || end == text || *end || text[0] == '-') {
        return -1;
    }
    *value_p = value;
    return 0;
}

//  NAME=ENDPOINT[@WEIGHT] (with_endpoint) or NAME=WEIGHT.
static int
s_parse_shard_spec (const char *spec, int with_endpoint, s_change_t *change)
{
    const char *equals = strchr (spec, '=');
    if (!equals || equals == spec || (size_t) (equals - spec) >= sizeof change->name) {
        return -1;
    }
    memcpy (change->name, spec, (size_t) (equals - spec));
    change->name[equals - spec] = 0;
    const char *rest = equals + 1;
    change->weight = 1.0;
    if (!with_endpoint) {
        return s_parse_number (rest, &change->weight);
    }
    const char *at = strrchr (rest, '@');
    size_t endpoint_size = at ? (size_t) (at - rest) : strlen (rest);
    if (endpoint_size == 0 || endpoint_size >= sizeof change->endpoint) {
        return -1;
    }
    memcpy (change->endpoint, rest, endpoint_size);
    change->endpoint[endpoint_size] = 0;
    return at ? s_parse_number (at + 1, &change->weight) : 0;
}

static int
s_push_change (s_plan_args_t *args, s_change_kind_t kind, const char *value)
{
    if (args->change_count == S_CHANGES_MAX) {
        return s_usage_error ("too many changes (at most %s)", "RL_SHARDS_MAX");
    }
    s_change_t *change = &args->changes[args->change_count];
    memset (change, 0, sizeof *change);
    change->kind = kind;
    if (kind == S_REMOVE) {
        if (strlen (value) >= sizeof change->name) {
            return s_usage_error ("shard name '%s' is too long", value);
        }
        strcpy (change->name, value);
    } else if (s_parse_shard_spec (value, kind == S_ADD, change)) {
        return s_usage_error (kind == S_ADD ? "--add '%s': expected NAME=ENDPOINT[@WEIGHT]"
                                            : "--reweight '%s': expected NAME=WEIGHT",
                              value);
    }
    args->change_count++;
    return 0;
}

static int
s_parse_plan_option (s_plan_args_t *args, const char *option, const char *value)
{
    if (strcmp (option, "--ring") == 0) {
        args->ring_path = value;
    } else if (strcmp (option, "--out") == 0) {
        args->out_path = value;
    } else if (strcmp (option, "--ids") == 0) {
        args->ids_path = value;
    } else if (strcmp (option, "--keys") == 0) {
        args->keys_dir = value;
    } else if (strcmp (option, "--sample") == 0 || strcmp (option, "--seed") == 0) {
        uint64_t *target = option[3] == 'a' ? &args->sample_count : &args->seed;
        if (s_parse_u64 (value, target)
            || (target == &args->sample_count && *target > S_SAMPLE_IDS_MAX)) {
            return s_usage_error ("bad number '%s' (--sample is 0..100000000)", value);
        }
    } else if (strcmp (option, "--add") == 0) {
        return s_push_change (args, S_ADD, value);
    } else if (strcmp (option, "--remove") == 0) {
        return s_push_change (args, S_REMOVE, value);
    } else if (strcmp (option, "--reweight") == 0) {
        return s_push_change (args, S_REWEIGHT, value);
    } else {
        return s_usage_error ("unknown option '%s'", option);
    }
    return 0;
}

static int
s_parse_plan_args (int argc, char **argv, s_plan_args_t *args)
{
    args->sample_count = S_SAMPLE_IDS_DEFAULT;
    args->seed = 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp (argv[i], "--json") == 0) {
            args->json = 1;
            continue;
        }
        if (strncmp (argv[i], "--", 2) != 0) {
            return s_usage_error ("unexpected argument '%s'", argv[i]);
        }
        static const char *known[] = {"--ring", "--out",    "--ids",      "--sample", "--seed",
                                      "--add",  "--remove", "--reweight", "--keys"};
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp (known[k], argv[i])) {
            k++;
        }
        if (k == sizeof known / sizeof known[0]) {
            return s_usage_error ("unknown option '%s'", argv[i]);
        }
        if (i + 1 >= argc) {
            return s_usage_error ("option '%s' needs a value", argv[i]);
        }
        int rc = s_parse_plan_option (args, argv[i], argv[i + 1]);
        if (rc) {
            return rc;
        }
        i++;
    }
    if (!args->ring_path) {
        return s_usage_error ("%s", "plan needs --ring CURRENT.ring");
    }
    return 0;
}

//  Applying the changes ---------------------------------------------------------

//  --keys: every shard's public key from KEYDIR/shard/NAME.key.
static int
s_set_keys (ring_t *ring, const char *keydir)
{
    for (size_t x = 0; x < ring_shard_count (ring); x++) {
        const char *name = ring_shard_name (ring, x);
        char path[4096];
        char key[RL_KEY_TEXT_SIZE];
        char err[512];
        snprintf (path, sizeof path, "%s/shard/%s.key", keydir, name);
        if (rl_key_resolve (path, key, err, sizeof err) || ring_set_key (ring, name, key)) {
            fprintf (stderr,
                     "rebalance: no public key for shard '%s' in %s (make one with rlctl keygen "
                     "--role shard --name %s --dir %s)\n",
                     name, path, name, keydir);
            return S_EXIT_BAD_FILE;
        }
    }
    return 0;
}

static int
s_apply_change (ring_t *ring, const s_change_t *change)
{
    int rc = RING_OK;
    const char *verb = "add";
    if (change->kind == S_ADD) {
        rc = ring_add_shard (ring, change->name, change->endpoint, change->weight);
    } else if (change->kind == S_REMOVE) {
        verb = "remove";
        rc = ring_remove_shard (ring, change->name);
        if (rc == RING_OK && ring_shard_count (ring) == 0) {
            fprintf (stderr, "rebalance: cannot remove '%s': a ring needs a shard\n", change->name);
            return S_EXIT_USAGE;
        }
    } else {
        verb = "reweight";
        rc = ring_reweight_shard (ring, change->name, change->weight);
    }
    if (rc) {
        fprintf (stderr, "rebalance: cannot %s shard '%s': %s", verb, change->name,
                 ring_strerror (rc));
        if (rc == RING_ERR_INVALID) {
            fprintf (stderr,
                     " (names: letters, digits, '.', '_', '-', up to %d bytes; "
                     "weights %g..%g)",
                     RL_SHARD_NAME_SIZE_MAX - 1, RING_WEIGHT_MIN, RL_RING_WEIGHT_MAX);
        }
        if (rc == RING_ERR_NOT_FOUND || rc == RING_ERR_EXISTS) {
            fprintf (stderr, " (shards now:");
            for (size_t x = 0; x < ring_shard_count (ring); x++) {
                fprintf (stderr, " %s", ring_shard_name (ring, x));
            }
            fprintf (stderr, ")");
        }
        fprintf (stderr, "\n");
        return S_EXIT_USAGE;
    }
    return 0;
}

int
rb_ring_change (ring_t *ring, const char *option, const char *value)
{
    s_change_t change = {0};
    s_change_kind_t kind = strcmp (option, "--add") == 0      ? S_ADD
                           : strcmp (option, "--remove") == 0 ? S_REMOVE
                                                              : S_REWEIGHT;
    change.kind = kind;
    if (kind == S_REMOVE) {
        if (strlen (value) >= sizeof change.name) {
            return s_usage_error ("shard name '%s' is too long", value);
        }
        strcpy (change.name, value);
    } else if (s_parse_shard_spec (value, kind == S_ADD, &change)) {
        return s_usage_error (kind == S_ADD ? "--add '%s': expected NAME=ENDPOINT[@WEIGHT]"
                                            : "--reweight '%s': expected NAME=WEIGHT",
                              value);
    }
    return s_apply_change (ring, &change);
}

//  Counting accounts --------------------------------------------------------------

static void
s_count_point (s_counts_t *counts, const ring_t *a, const ring_t *b, uint64_t point)
{
    size_t from = (size_t) ring_lookup (a, point);
    size_t to = (size_t) ring_lookup (b, point);
    counts->before[from]++;
    counts->after[to]++;
    counts->moves[from * ring_shard_count (b) + to]++;
    counts->ids++;
}

//  One id: exactly 32 hex digits, then the end of the line.
static int
s_parse_id_line (const char *line, uint8_t *id)
{
    static const char digits[] = "0123456789abcdefABCDEF";
    if (strspn (line, digits) != 2 * RL_ID_SIZE) {
        return -1;
    }
    const char *rest = line + 2 * RL_ID_SIZE;
    if (strspn (rest, "\r\n") != strlen (rest)) {
        return -1;
    }
    for (size_t i = 0; i < RL_ID_SIZE; i++) {
        char pair[3] = {line[2 * i], line[2 * i + 1], 0};
        id[i] = (uint8_t) strtoul (pair, NULL, 16);
    }
    return 0;
}

static int
s_count_ids_file (s_counts_t *counts, const ring_t *a, const ring_t *b, const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "rebalance: cannot open ids file %s: %s\n", path, strerror (errno));
        return S_EXIT_BAD_FILE;
    }
    char line[S_ID_LINE_SIZE_MAX];
    int rc = 0;
    for (uint64_t number = 1; fgets (line, sizeof line, file); number++) {
        uint8_t id[RL_ID_SIZE];
        if (line[0] == '\n' || line[0] == '#') {
            continue;
        }
        if (s_parse_id_line (line, id) || number > S_SAMPLE_IDS_MAX) {
            fprintf (stderr,
                     "rebalance: %s line %" PRIu64 ": expected 32 hex digits "
                     "(one account id per line)\n",
                     path, number);
            rc = S_EXIT_BAD_FILE;
            break;
        }
        s_count_point (counts, a, b, ring_point_of_id (id));
    }
    fclose (file);
    return rc;
}

static void
s_count_sample (s_counts_t *counts, const ring_t *a, const ring_t *b, uint64_t count, uint64_t seed)
{
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1; //  rl_rand: any state but zero
    state = state ? state : 1;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t words[2] = {rl_rand_next (&state), rl_rand_next (&state)};
        uint8_t id[RL_ID_SIZE];
        memcpy (id, words, sizeof id);
        s_count_point (counts, a, b, ring_point_of_id (id));
    }
}

//  Output ---------------------------------------------------------------------------

//  Ownership of a shard by name, or -1 when the ring lacks it.
static double
s_ownership_of (const ring_t *ring, const char *name, double *weight_p)
{
    int index = ring_shard_find (ring, name);
    *weight_p = index < 0 ? -1 : ring_shard_weight (ring, (size_t) index);
    return index < 0 ? -1 : ring_shard_ownership (ring, (size_t) index);
}

static uint64_t
s_count_of (const s_counts_t *counts, const ring_t *ring, const uint64_t *per_shard,
            const char *name)
{
    int index = ring_shard_find (ring, name);
    (void) counts;
    return index < 0 ? 0 : per_shard[index];
}

static uint64_t
s_flow_accounts (const s_counts_t *counts, const ring_t *a, const ring_t *b,
                 const ring_flow_t *flow)
{
    int from = ring_shard_find (a, flow->from);
    int to = ring_shard_find (b, flow->to);
    assert (from >= 0 && to >= 0);
    return counts->moves[(size_t) from * ring_shard_count (b) + (size_t) to];
}

//  Every shard of a, then those only in b, calling back with its name.
typedef void (s_shard_fn) (const char *name, void *arg, int first);

static void
s_each_shard (const ring_t *a, const ring_t *b, s_shard_fn *fn, void *arg)
{
    int first = 1;
    for (size_t x = 0; x < ring_shard_count (a); x++, first = 0) {
        fn (ring_shard_name (a, x), arg, first);
    }
    for (size_t x = 0; x < ring_shard_count (b); x++) {
        if (ring_shard_find (a, ring_shard_name (b, x)) < 0) {
            fn (ring_shard_name (b, x), arg, first);
            first = 0;
        }
    }
}

typedef struct {
    const ring_t *a;
    const ring_t *b;
    const s_counts_t *counts;
} s_report_t;

//  What s_add_json_shard needs: the report and the array to fill.
typedef struct {
    const s_report_t *report;
    cJSON *shards;
} s_json_report_t;

static void
s_format_cell (char *out, size_t size, double value, const char *format)
{
    if (value < 0) {
        snprintf (out, size, "-");
    } else {
        snprintf (out, size, format, value);
    }
}

static void
s_print_shard_row (const char *name, void *arg, int first)
{
    const s_report_t *report = (const s_report_t *) arg;
    (void) first;
    double weight_a, weight_b;
    double own_a = s_ownership_of (report->a, name, &weight_a);
    double own_b = s_ownership_of (report->b, name, &weight_b);
    char cells[4][32];
    s_format_cell (cells[0], sizeof cells[0], weight_a, "%g");
    s_format_cell (cells[1], sizeof cells[1], weight_b, "%g");
    s_format_cell (cells[2], sizeof cells[2], own_a < 0 ? -1 : own_a * 100, "%.3f%%");
    s_format_cell (cells[3], sizeof cells[3], own_b < 0 ? -1 : own_b * 100, "%.3f%%");
    printf ("%-16s %8s %8s %10s %10s %12" PRIu64 " %12" PRIu64 "\n", name, cells[0], cells[1],
            cells[2], cells[3],
            s_count_of (report->counts, report->a, report->counts->before, name),
            s_count_of (report->counts, report->b, report->counts->after, name));
}

static void
s_print_table (const s_report_t *report, const ring_flow_t *flows, size_t flow_count,
               size_t arc_count, const char *sample_label)
{
    const ring_t *a = report->a;
    const ring_t *b = report->b;
    printf ("ring plan: epoch %" PRIu64 " -> %" PRIu64 ", %zu -> %zu shards\n\n", ring_epoch (a),
            ring_epoch (b), ring_shard_count (a), ring_shard_count (b));
    printf ("%-16s %8s %8s %10s %10s %12s %12s\n", "shard", "weight", "weight", "ownership",
            "ownership", "accounts", "accounts");
    printf ("%-16s %8s %8s %10s %10s %12s %12s\n", "", "before", "after", "before", "after",
            "before", "after");
    s_each_shard (a, b, s_print_shard_row, (void *) report);
    printf ("\nmoves: %zu flows in %zu arcs; accounts from %s\n", flow_count, arc_count,
            sample_label);
    printf ("%-16s %-16s %12s %12s\n", "from", "to", "hash space", "accounts");
    double fraction = 0;
    uint64_t accounts = 0;
    for (size_t f = 0; f < flow_count; f++) {
        uint64_t moved = s_flow_accounts (report->counts, a, b, &flows[f]);
        printf ("%-16s %-16s %11.3f%% %12" PRIu64 "\n", flows[f].from, flows[f].to,
                flows[f].fraction * 100, moved);
        fraction += flows[f].fraction;
        accounts += moved;
    }
    printf ("%-16s %-16s %11.3f%% %12" PRIu64 "\n\n", "total", "", fraction * 100, accounts);
    printf ("imbalance (max/mean ownership by weight): before %.4f, after %.4f\n",
            ring_imbalance (a), ring_imbalance (b));
    printf ("points: before %zu, after %zu\n", ring_point_count (a), ring_point_count (b));
}

static void
s_add_json_shard (const char *name, void *arg, int first)
{
    const s_json_report_t *json = (const s_json_report_t *) arg;
    const s_report_t *report = json->report;
    (void) first;
    double weight_a, weight_b;
    double own_a = s_ownership_of (report->a, name, &weight_a);
    double own_b = s_ownership_of (report->b, name, &weight_b);
    cJSON *shard = jsonkit_add_object (json->shards, NULL);
    jsonkit_add_string (shard, "name", name);
    if (weight_a < 0) {
        jsonkit_add_null (shard, "weight_before");
        jsonkit_add_null (shard, "ownership_before");
    } else {
        jsonkit_add_number (shard, "weight_before", weight_a);
        jsonkit_add_fixed (shard, "ownership_before", own_a, 9);
    }
    if (weight_b < 0) {
        jsonkit_add_null (shard, "weight_after");
        jsonkit_add_null (shard, "ownership_after");
    } else {
        jsonkit_add_number (shard, "weight_after", weight_b);
        jsonkit_add_fixed (shard, "ownership_after", own_b, 9);
    }
    jsonkit_add_u64 (shard, "accounts_before",
                     s_count_of (report->counts, report->a, report->counts->before, name));
    jsonkit_add_u64 (shard, "accounts_after",
                     s_count_of (report->counts, report->b, report->counts->after, name));
}

//  The plan as one JSON object on stdout; 0, or S_EXIT_BAD_FILE when out of memory.
static int
s_print_json (const s_report_t *report, const ring_flow_t *flows, size_t flow_count,
              size_t arc_count, const s_plan_args_t *args)
{
    const ring_t *a = report->a;
    const ring_t *b = report->b;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_u64 (tree, "epoch_before", ring_epoch (a));
    jsonkit_add_u64 (tree, "epoch_after", ring_epoch (b));
    cJSON *sample = jsonkit_add_object (tree, "sample");
    jsonkit_add_string (sample, "source", args->ids_path ? "ids_file" : "random");
    jsonkit_add_u64 (sample, "ids", report->counts->ids);
    jsonkit_add_u64 (sample, "seed", args->seed);
    s_json_report_t json = {report, jsonkit_add_array (tree, "shards")};
    s_each_shard (a, b, s_add_json_shard, &json);
    cJSON *list = jsonkit_add_array (tree, "flows");
    double fraction = 0;
    uint64_t accounts = 0;
    for (size_t f = 0; f < flow_count; f++) {
        uint64_t moved = s_flow_accounts (report->counts, a, b, &flows[f]);
        cJSON *flow = jsonkit_add_object (list, NULL);
        jsonkit_add_string (flow, "from", flows[f].from);
        jsonkit_add_string (flow, "to", flows[f].to);
        jsonkit_add_fixed (flow, "fraction", flows[f].fraction, 9);
        jsonkit_add_u64 (flow, "accounts", moved);
        fraction += flows[f].fraction;
        accounts += moved;
    }
    jsonkit_add_fixed (tree, "moved_fraction", fraction, 9);
    jsonkit_add_u64 (tree, "moved_accounts", accounts);
    jsonkit_add_u64 (tree, "arcs_moved", arc_count);
    jsonkit_add_fixed (tree, "imbalance_before", ring_imbalance (a), 6);
    jsonkit_add_fixed (tree, "imbalance_after", ring_imbalance (b), 6);
    jsonkit_add_u64 (tree, "points_before", ring_point_count (a));
    jsonkit_add_u64 (tree, "points_after", ring_point_count (b));
    if (args->out_path) {
        jsonkit_add_string (tree, "out", args->out_path);
    } else {
        jsonkit_add_null (tree, "out");
    }
    int rc = jsonkit_print (stdout, tree, true);
    cJSON_Delete (tree);
    if (rc) {
        fprintf (stderr, "rebalance: out of memory\n");
        return S_EXIT_BAD_FILE;
    }
    return 0;
}

//  plan -------------------------------------------------------------------------

static int
s_report (const ring_t *a, const ring_t *b, const s_counts_t *counts, const s_plan_args_t *args)
{
    ring_flow_t *flows = NULL;
    size_t flow_count = 0;
    ring_arc_t *arcs = NULL;
    size_t arc_count = 0;
    if (ring_diff_flows (a, b, &flows, &flow_count) || ring_diff_arcs (a, b, &arcs, &arc_count)) {
        fprintf (stderr, "rebalance: out of memory\n");
        free (flows);
        return S_EXIT_BAD_FILE;
    }
    free (arcs);
    s_report_t report = {a, b, counts};
    char label[128];
    if (args->ids_path) {
        snprintf (label, sizeof label, "%" PRIu64 " ids of %s", counts->ids, args->ids_path);
    } else {
        snprintf (label, sizeof label, "%" PRIu64 " random ids (seed %" PRIu64 ")", counts->ids,
                  args->seed);
    }
    int rc = 0;
    if (args->json) {
        rc = s_print_json (&report, flows, flow_count, arc_count, args);
    } else {
        s_print_table (&report, flows, flow_count, arc_count, label);
        if (args->out_path) {
            printf ("wrote %s (epoch %" PRIu64 ")\n", args->out_path, ring_epoch (b));
        }
    }
    free (flows);
    return rc;
}

static int
s_plan_rings (const ring_t *a, ring_t *b, const s_plan_args_t *args)
{
    s_counts_t counts = {0};
    size_t shards_a = ring_shard_count (a);
    size_t shards_b = ring_shard_count (b);
    counts.before = (uint64_t *) calloc (shards_a, sizeof (uint64_t));
    counts.after = (uint64_t *) calloc (shards_b, sizeof (uint64_t));
    counts.moves = (uint64_t *) calloc (shards_a * shards_b, sizeof (uint64_t));
    int rc = 0;
    if (!counts.before || !counts.after || !counts.moves) {
        fprintf (stderr, "rebalance: out of memory\n");
        rc = S_EXIT_BAD_FILE;
    } else if (args->ids_path) {
        rc = s_count_ids_file (&counts, a, b, args->ids_path);
    } else {
        s_count_sample (&counts, a, b, args->sample_count, args->seed);
    }
    if (rc == 0 && args->out_path) {
        if (ring_save_file (b, args->out_path)) {
            fprintf (stderr, "rebalance: cannot write %s: %s\n", args->out_path, strerror (errno));
            rc = S_EXIT_BAD_FILE;
        }
    }
    if (rc == 0) {
        rc = s_report (a, b, &counts, args);
    }
    free (counts.before);
    free (counts.after);
    free (counts.moves);
    return rc;
}

static int
s_plan (int argc, char **argv)
{
    s_plan_args_t args = {0};
    args.changes = (s_change_t *) calloc (S_CHANGES_MAX, sizeof (s_change_t));
    if (!args.changes) {
        fprintf (stderr, "rebalance: out of memory\n");
        return S_EXIT_BAD_FILE;
    }
    int rc = s_parse_plan_args (argc, argv, &args);
    char err[512];
    ring_t *current = NULL;
    ring_t *proposed = NULL;
    if (rc == 0) {
        current = ring_load_file (args.ring_path, err, sizeof err);
        if (!current) {
            fprintf (stderr, "rebalance: bad ring file: %s\n", err);
            rc = S_EXIT_BAD_FILE;
        }
    }
    if (rc == 0) {
        proposed = ring_dup (current);
        rc = proposed ? 0 : S_EXIT_BAD_FILE;
    }
    for (size_t k = 0; rc == 0 && k < args.change_count; k++) {
        rc = s_apply_change (proposed, &args.changes[k]);
    }
    if (rc == 0 && args.keys_dir) {
        rc = s_set_keys (proposed, args.keys_dir);
    }
    if (rc == 0) {
        ring_set_epoch (proposed, ring_epoch (current) + 1);
        rc = s_plan_rings (current, proposed, &args);
    }
    ring_destroy (&current);
    ring_destroy (&proposed);
    free (args.changes);
    return rc;
}

//  init -------------------------------------------------------------------------

static int
s_init_option (ring_t *ring, const char *option, const char *value, const char **out_p,
               const char **keys_p)
{
    uint64_t number = 0;
    if (strcmp (option, "--shard") == 0) {
        s_change_t change = {S_ADD};
        if (s_parse_shard_spec (value, 1, &change)) {
            return s_usage_error ("--shard '%s': expected NAME=ENDPOINT[@WEIGHT]", value);
        }
        return s_apply_change (ring, &change);
    }
    if (strcmp (option, "--out") == 0) {
        *out_p = value;
        return 0;
    }
    if (strcmp (option, "--keys") == 0) {
        *keys_p = value;
        return 0;
    }
    if (s_parse_u64 (value, &number)) {
        return s_usage_error ("bad number '%s'", value);
    }
    if (strcmp (option, "--epoch") == 0) {
        ring_set_epoch (ring, number);
        return 0;
    }
    if (strcmp (option, "--points-per-weight") == 0) {
        if (ring_shard_count (ring) > 0) {
            return s_usage_error ("%s", "--points-per-weight must come before the first --shard");
        }
        if (number > RING_POINTS_PER_WEIGHT_MAX
            || ring_set_points_per_weight (ring, (uint32_t) number)) {
            return s_usage_error ("--points-per-weight '%s' is out of 1..4096", value);
        }
        return 0;
    }
    return s_usage_error ("unknown option '%s'", option);
}

static int
s_init (int argc, char **argv)
{
    ring_t *ring = ring_new (1);
    if (!ring) {
        return S_EXIT_BAD_FILE;
    }
    const char *out_path = NULL;
    const char *keys_dir = NULL;
    int rc = 0;
    for (int i = 2; rc == 0 && i < argc; i += 2) {
        if (i + 1 >= argc) {
            rc = s_usage_error ("option '%s' needs a value", argv[i]);
        } else {
            rc = s_init_option (ring, argv[i], argv[i + 1], &out_path, &keys_dir);
        }
    }
    if (rc == 0 && ring_shard_count (ring) == 0) {
        rc = s_usage_error ("%s", "init needs at least one --shard NAME=ENDPOINT[@WEIGHT]");
    }
    if (rc == 0 && keys_dir) {
        rc = s_set_keys (ring, keys_dir);
    }
    if (rc == 0 && out_path) {
        if (ring_save_file (ring, out_path)) {
            fprintf (stderr, "rebalance: cannot write %s: %s\n", out_path, strerror (errno));
            rc = S_EXIT_BAD_FILE;
        }
    } else if (rc == 0) {
        char *text = ring_to_text (ring);
        rc = text ? 0 : S_EXIT_BAD_FILE;
        fputs (text ? text : "", stdout);
        free (text);
    }
    ring_destroy (&ring);
    return rc;
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return S_EXIT_USAGE;
    }
    if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
        || strcmp (argv[1], "help") == 0) {
        s_usage (stdout);
        return 0;
    }
    if (strcmp (argv[1], "plan") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcmp (argv[i], "--live") == 0) {
                return rb_cmd_plan_live (argc, argv);
            }
        }
        return s_plan (argc, argv);
    }
    if (strcmp (argv[1], "suggest") == 0) {
        return rb_cmd_suggest (argc, argv);
    }
    if (strcmp (argv[1], "init") == 0) {
        return s_init (argc, argv);
    }
    static const struct {
        const char *name;
        int (*run) (int, char **);
    } live[] = {{"apply", rb_cmd_apply}, {"status", rb_cmd_status}, {"check", rb_cmd_check},
                {"fix", rb_cmd_fix},     {"abort", rb_cmd_abort},   {"recover", rb_cmd_recover}};
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
        if (strcmp (argv[1], live[i].name) == 0) {
            char err[512];
            if (failpoint_init (err, sizeof err) != 0) {
                fprintf (stderr, "rebalance: %s\n", err);
                return S_EXIT_USAGE;
            }
            return live[i].run (argc, argv);
        }
    }
    fprintf (stderr,
             "rebalance: unknown command '%s' (commands: plan, suggest, init, apply, status, "
             "check, fix, abort, recover)\n\n",
             argv[1]);
    s_usage (stderr);
    return S_EXIT_USAGE;
}
