/*  rebalance_state.c: the steps of a live ring change, their rings, and
    the state directory that makes `rebalance apply` resumable
    (docs/rebalance.md, "Live migration"; rebalance.h).

    WHY
    A router that adopts the ring of a step must never send an arc that has
    not moved yet to its new owner (it would be answered frozen for the
    whole change). So every handover gets a ring of its own, at an epoch of
    its own, which differs from the ring before it by that step's arc
    alone; and all of them are derived and written before the first shard
    hears of any, so a tool restarted at any point loads exactly the same
    rings again.

    DERIVATION
    The arcs whose owner changes are those of ring_diff_arcs (adjacent
    arcs of one (from, to) pair merged): step k moves arc k. Ring k holds
    every point of both rings (the union of positions, so that every arc
    boundary of either ring is a point), each owned as in the current ring
    unless its arc is among the first k, then as in the planned ring. A
    shard is in ring k when it owns a point there (the ring format holds
    no shard without points): a new shard enters at its first step, and a
    removed shard leaves at the handover of its last arc. The last ring is
    the planned ring itself, at base + n.

    Nothing in the derivation is random: the plan id is a hash of ring 0
    and the last ring (rb_plan_id_of) and step k's migration id is plan id
    + k, so the same two rings always derive the same plan, and a state
    directory lost in the middle of a change is rebuilt from them and the
    shards' migration records (rebalance recover, rebalance_apply.c).

    STATE FILE (text, one key a line; docs/rebalance.md)
        rebalance-state 1
        plan_id HEX16        base_epoch N        freeze_max_ms N
        run HEX5             (optional: the run of this directory, its lease's low bits)
        aborted 0|1          steps N
        step K STATE id HEX16 source NAME target NAME start HEX16 end HEX16
             chunks N records N accounts N bytes N rounds N lag N
             retries N frozen_at N started N finished N         (one line)

    INVARIANTS
    1. Every file of the directory is replaced atomically (write, fsync,
       rename, fsync of the directory); the state file is written last
       when the directory is made.
    2. A loaded state is checked whole before it is used: the version,
       every bound, the steps in order, done steps a prefix, at most one
       step in progress, and every step's arc owned by its source in the
       ring before it and by its target in its own ring.
    3. rings[k] has epoch base + k.

    LIMITS
    RB_STEPS_MAX steps; RB_STATE_SIZE_MAX bytes of state file; the union of
    both rings' points within RING_POINTS_MAX.
*/
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "failpoint.h"
#include "proto.h"
#include "rebalance.h"

#define S_LINE_SIZE_MAX 1024 //  bytes of one line of the state file
#define S_TOKENS_MAX    40

static const char *s_state_names[] = {"pending",  "copying", "frozen",
                                      "handover", "done",    "rolled_back"};

const char *
rb_step_state_name (uint32_t state)
{
    return state <= RB_ROLLED_BACK ? s_state_names[state] : "?";
}

uint64_t
rb_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

size_t
rb_plan_current (const rb_plan_t *plan)
{
    size_t k = 0;
    while (k < plan->step_count && plan->steps[k].state == RB_DONE) {
        k++;
    }
    return k;
}

static void
s_err (char *err, size_t err_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

//  Is point p in the arc (start, end] (wrapping when start >= end)?
static bool
s_in_arc (uint64_t start, uint64_t end, uint64_t p)
{
    return start < end ? (p > start && p <= end) : (p > start || p <= end);
}

static int
s_u64_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

void
rb_plan_free (rb_plan_t *plan)
{
    ring_destroy (&plan->rollback);
    if (plan->rings) {
        for (size_t k = 0; k <= plan->step_count; k++) {
            ring_destroy (&plan->rings[k]);
        }
    }
    free (plan->rings);
    free (plan->steps);
    memset (plan, 0, sizeof (*plan));
}

//  Derivation ----------------------------------------------------------------

//  A growing text buffer; `failed` once an append did not fit memory.
typedef struct {
    char *text;
    size_t size, capacity;
    bool failed;
} s_text_t;

static void
s_append (s_text_t *t, const char *format, ...)
{
    if (t->failed) {
        return;
    }
    for (;;) {
        va_list args;
        va_start (args, format);
        int n = vsnprintf (t->text ? t->text + t->size : NULL, t->text ? t->capacity - t->size : 0,
                           format, args);
        va_end (args);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->text && t->size + (size_t) n < t->capacity) {
            t->size += (size_t) n;
            return;
        }
        size_t capacity = (t->capacity ? t->capacity * 2 : 4096) + (size_t) n;
        char *text = realloc (t->text, capacity);
        if (!text) {
            t->failed = true;
            return;
        }
        t->text = text;
        t->capacity = capacity;
    }
}

//  The owner's name of point p: in `planned` when p is in one of the first
//  `moved` steps' arcs, else in `current`.
static const char *
s_owner_at (const ring_t *current, const ring_t *planned, const rb_step_t *steps, size_t moved,
            uint64_t p)
{
    for (size_t i = 0; i < moved; i++) {
        if (s_in_arc (steps[i].start, steps[i].end, p)) {
            return ring_shard_name (planned, (size_t) ring_lookup (planned, p));
        }
    }
    return ring_shard_name (current, (size_t) ring_lookup (current, p));
}

//  The shard record of NAME (planned first: its endpoint and key are the
//  newest), as a 'shard' line.
static void
s_shard_line (s_text_t *t, const ring_t *current, const ring_t *planned, const char *name)
{
    const ring_t *ring = ring_shard_find (planned, name) >= 0 ? planned : current;
    int x = ring_shard_find (ring, name);
    assert (x >= 0);
    s_append (t, "shard %s %s weight %.17g", name, ring_shard_endpoint (ring, (size_t) x),
              ring_shard_weight (ring, (size_t) x));
    if (*ring_shard_key (ring, (size_t) x)) {
        s_append (t, " key %s", ring_shard_key (ring, (size_t) x));
    }
    s_append (t, "\n");
}

//  Ring k (0 < k < n) from the union of positions.
static ring_t *
s_step_ring (const ring_t *current, const ring_t *planned, const rb_step_t *steps, size_t k,
             uint64_t epoch, const uint64_t *positions, size_t position_count, char *err,
             size_t err_size)
{
    s_text_t t = {0};
    s_append (&t, "epoch %" PRIu64 "\npoints_per_weight %" PRIu32 "\n", epoch,
              ring_points_per_weight (planned));
    //  The shards that own a point in this ring: the current ring's in
    //  order, then the planned ring's new ones.
    const ring_t *lists[2] = {current, planned};
    for (size_t l = 0; l < 2; l++) {
        for (size_t x = 0; x < ring_shard_count (lists[l]); x++) {
            const char *name = ring_shard_name (lists[l], x);
            if (l == 1 && ring_shard_find (current, name) >= 0) {
                continue;
            }
            bool owns = false;
            for (size_t i = 0; i < position_count && !owns; i++) {
                owns = strcmp (s_owner_at (current, planned, steps, k, positions[i]), name) == 0;
            }
            if (owns) {
                s_shard_line (&t, current, planned, name);
            }
        }
    }
    for (size_t i = 0; i < position_count; i++) {
        s_append (&t, "point %016" PRIx64 " %s\n", positions[i],
                  s_owner_at (current, planned, steps, k, positions[i]));
    }
    if (t.failed) {
        free (t.text);
        s_err (err, err_size, "out of memory");
        return NULL;
    }
    char perr[256];
    ring_t *ring = ring_from_text (t.text, perr, sizeof perr);
    free (t.text);
    if (!ring) {
        s_err (err, err_size, "the ring of step %zu does not build: %s", k, perr);
    }
    return ring;
}

int
rb_plan_derive (const ring_t *current, const ring_t *planned, uint32_t freeze_max_ms,
                rb_plan_t *plan, char *err, size_t err_size)
{
    memset (plan, 0, sizeof (*plan));
    ring_arc_t *arcs = NULL;
    size_t count = 0;
    if (ring_diff_arcs (current, planned, &arcs, &count) != RING_OK) {
        s_err (err, err_size, "the rings cannot be compared (empty, or out of memory)");
        return RB_EXIT_USAGE;
    }
    if (count == 0) {
        s_err (err, err_size, "nothing moves: both rings give every account the same owner");
        return RB_EXIT_USAGE;
    }
    if (count > RB_STEPS_MAX) {
        free (arcs);
        s_err (err, err_size, "%zu arcs move: more than %zu steps", count, (size_t) RB_STEPS_MAX);
        return RB_EXIT_USAGE;
    }
    //  Each shard that leaves gets one more step: its last one.
    size_t leaving = 0;
    for (size_t x = 0; x < ring_shard_count (current); x++) {
        leaving += ring_shard_find (planned, ring_shard_name (current, x)) < 0;
    }
    size_t pa = ring_point_count (current), pb = ring_point_count (planned);
    uint64_t *positions = malloc ((pa + pb + leaving) * sizeof (uint64_t));
    plan->steps = calloc (count + leaving, sizeof (rb_step_t));
    plan->rings = calloc (count + leaving + 1, sizeof (ring_t *));
    if (!positions || !plan->steps || !plan->rings) {
        free (arcs);
        free (positions);
        rb_plan_free (plan);
        s_err (err, err_size, "out of memory");
        return RB_EXIT_USAGE;
    }
    plan->step_count = count;
    uint64_t id_base = 0; //  ids are numbered from 1 here, the plan added at the end
    plan->version = RB_STATE_VERSION;
    plan->base_epoch = ring_epoch (current);
    plan->freeze_max_ms = freeze_max_ms;
    for (size_t i = 0; i < count; i++) {
        rb_step_t *s = &plan->steps[i];
        if (arcs[i].start == arcs[i].end) {
            free (arcs);
            free (positions);
            rb_plan_free (plan);
            s_err (err, err_size,
                   "the whole hash space changes owner: add the new shard first, then remove "
                   "the old one, in two changes");
            return RB_EXIT_USAGE;
        }
        s->migration_id = id_base + i + 1;
        snprintf (s->source, sizeof s->source, "%s",
                  ring_shard_name (current, (size_t) arcs[i].from));
        snprintf (s->target, sizeof s->target, "%s",
                  ring_shard_name (planned, (size_t) arcs[i].to));
        s->start = arcs[i].start;
        s->end = arcs[i].end;
    }
    free (arcs);
    size_t n = 0;
    //  A shard that leaves keeps the last point of its last arc, (end - 1,
    //  end], until a step of its own at the end of the change: the ring
    //  holds no shard without points, and a leaving shard must stay in
    //  the ring (so that decisions still reach it) until nothing
    //  two-phase names it any more (s_leaving_quiet in rebalance_apply.c).
    for (size_t x = 0; x < ring_shard_count (current); x++) {
        const char *name = ring_shard_name (current, x);
        if (ring_shard_find (planned, name) >= 0) {
            continue;
        }
        size_t last = count;
        for (size_t i = 0; i < count; i++) {
            if (strcmp (plan->steps[i].source, name) == 0) {
                last = i;
            }
        }
        assert (last < count); //  a shard that leaves gives away what it owned
        rb_step_t *leave = &plan->steps[plan->step_count];
        *leave = plan->steps[last];
        leave->migration_id = id_base + plan->step_count + 1;
        plan->step_count++;
        uint64_t keep = leave->end - 1; //  wraps with the hash space
        if (keep == leave->start) {
            //  An arc of one point: the whole step moves to the end.
            memmove (&plan->steps[last], &plan->steps[last + 1],
                     (plan->step_count - last - 1) * sizeof (rb_step_t));
            plan->step_count--;
            count--;
            for (size_t i = 0; i < plan->step_count; i++) {
                plan->steps[i].migration_id = id_base + i + 1;
            }
            continue;
        }
        leave->start = keep;
        plan->steps[last].end = keep;
        positions[n++] = keep;
    }
    count = plan->step_count;
    for (size_t i = 0; i < pa; i++) {
        positions[n++] = ring_point_position (current, i);
    }
    for (size_t i = 0; i < pb; i++) {
        positions[n++] = ring_point_position (planned, i);
    }
    qsort (positions, n, sizeof (uint64_t), s_u64_compare);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++) {
        if (unique == 0 || positions[unique - 1] != positions[i]) {
            positions[unique++] = positions[i];
        }
    }
    if (unique > RING_POINTS_MAX) {
        free (positions);
        rb_plan_free (plan);
        s_err (err, err_size, "the two rings hold %zu points together: more than %zu", unique,
               (size_t) RING_POINTS_MAX);
        return RB_EXIT_USAGE;
    }
    plan->rings[0] = ring_dup (current);
    plan->rings[count] = ring_dup (planned);
    if (!plan->rings[0] || !plan->rings[count]) {
        free (positions);
        rb_plan_free (plan);
        s_err (err, err_size, "out of memory");
        return RB_EXIT_USAGE;
    }
    ring_set_epoch (plan->rings[count], plan->base_epoch + count);
    plan->plan_id = rb_plan_id_of (plan->rings[0], plan->rings[count]);
    if (plan->plan_id == 0) {
        free (positions);
        rb_plan_free (plan);
        s_err (err, err_size, "out of memory");
        return RB_EXIT_USAGE;
    }
    for (size_t i = 0; i < count; i++) {
        plan->steps[i].migration_id = plan->plan_id + i + 1;
    }
    //  The run of this directory: random, never 0 (a begin's lease).
    uint32_t run = 0;
    while (run == 0) {
        if (getrandom (&run, sizeof run, 0) != (ssize_t) sizeof run) {
            run = (uint32_t) time (NULL) ^ (uint32_t) getpid ();
        }
        run &= (1u << RL_MIGRATE_STEP_BITS) - 1;
    }
    plan->run = run;
    for (size_t k = 1; k < count; k++) {
        plan->rings[k] = s_step_ring (current, planned, plan->steps, k, plan->base_epoch + k,
                                      positions, unique, err, err_size);
        if (!plan->rings[k]) {
            free (positions);
            rb_plan_free (plan);
            return RB_EXIT_USAGE;
        }
    }
    free (positions);
    return 0;
}

uint64_t
rb_plan_id_of (const ring_t *first, const ring_t *last)
{
    size_t a = ring_encoded_size (first), b = ring_encoded_size (last);
    uint8_t *blob = malloc (a + b);
    if (!blob) {
        return 0;
    }
    ring_encode (first, blob, a);
    ring_encode (last, blob + a, b);
    uint64_t id = XXH3_64bits (blob, a + b) & RL_MIGRATE_PLAN_MASK;
    free (blob);
    return id ? id : (uint64_t) 1 << RL_MIGRATE_STEP_BITS;
}

//  Files -----------------------------------------------------------------------

static int
s_fsync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync (fd);
    close (fd);
    return rc;
}

//  DIR/NAME replaced atomically by `size` bytes of text.
static int
s_write_atomic (const char *dir, const char *name, const char *text, size_t size, char *err,
                size_t err_size)
{
    char path[RB_PATH_SIZE_MAX], tmp[RB_PATH_SIZE_MAX + 8];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_err (err, err_size, "%s: %s", tmp, strerror (errno));
        return -1;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t w = write (fd, text + done, size - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            s_err (err, err_size, "%s: %s", tmp, strerror (errno));
            close (fd);
            unlink (tmp);
            return -1;
        }
        done += (size_t) w;
    }
    if (fsync (fd) != 0) {
        s_err (err, err_size, "%s: fsync: %s", tmp, strerror (errno));
        close (fd);
        unlink (tmp);
        return -1;
    }
    close (fd);
    if (RL_FAILPOINT (REBALANCE_STATE_WRITE) != 0) {
        unlink (tmp);
        s_err (err, err_size, "%s: failpoint rebalance.state_write", tmp);
        return -1;
    }
    if (rename (tmp, path) != 0 || s_fsync_dir (dir) != 0) {
        s_err (err, err_size, "%s: %s", path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    return 0;
}

int
rb_state_save (const rb_plan_t *plan, char *err, size_t err_size)
{
    s_text_t t = {0};
    s_append (&t, "# ringledger rebalance state (docs/rebalance.md): written by rebalance apply\n");
    s_append (&t, "rebalance-state %u\n", RB_STATE_VERSION);
    s_append (&t, "plan_id %016" PRIx64 "\nbase_epoch %" PRIu64 "\nfreeze_max_ms %" PRIu32 "\n",
              plan->plan_id, plan->base_epoch - plan->shift, plan->freeze_max_ms);
    s_append (&t, "run %05" PRIx32 "\n", plan->run);
    if (plan->shift) {
        s_append (&t, "failover_shift %" PRIu64 "\n", plan->shift);
    }
    for (size_t i = 0; i < plan->moved_count; i++) {
        s_append (&t, "endpoint %s %s\n", plan->moved[i].name, plan->moved[i].endpoint);
    }
    s_append (&t, "aborted %d\nsteps %zu\n", plan->aborted ? 1 : 0, plan->step_count);
    for (size_t i = 0; i < plan->step_count; i++) {
        const rb_step_t *s = &plan->steps[i];
        s_append (&t,
                  "step %zu %s id %016" PRIx64 " source %s target %s start %016" PRIx64
                  " end %016" PRIx64 " chunks %" PRIu64 " records %" PRIu64 " accounts %" PRIu64
                  " bytes %" PRIu64 " rounds %" PRIu64 " lag %" PRIu64 " retries %" PRIu64
                  " frozen_at %" PRIu64 " started %" PRIu64 " finished %" PRIu64 "\n",
                  i + 1, rb_step_state_name (s->state), s->migration_id, s->source, s->target,
                  s->start, s->end, s->chunks, s->records, s->accounts, s->bytes, s->rounds, s->lag,
                  s->retries, s->frozen_at, s->started, s->finished);
    }
    if (t.failed) {
        free (t.text);
        s_err (err, err_size, "out of memory");
        return -1;
    }
    int rc = s_write_atomic (plan->dir, "state", t.text, t.size, err, err_size);
    free (t.text);
    return rc;
}

int
rb_rollback_save (rb_plan_t *plan, size_t index, char *err, size_t err_size)
{
    assert (index < plan->step_count);
    ring_destroy (&plan->rollback);
    plan->rollback = ring_dup (plan->rings[index]);
    if (!plan->rollback) {
        s_err (err, err_size, "out of memory");
        return -1;
    }
    ring_set_epoch (plan->rollback, plan->base_epoch + index + 2);
    char *text = ring_to_text (plan->rollback);
    if (!text) {
        s_err (err, err_size, "out of memory");
        return -1;
    }
    int rc = s_write_atomic (plan->dir, "rollback.ring", text, strlen (text), err, err_size);
    free (text);
    return rc;
}

int
rb_plan_save_new (rb_plan_t *plan, ring_t *const *derived, const char *dir, char *err,
                  size_t err_size)
{
    //  A followed plan's own rings hold the shift and the moved endpoints,
    //  which the state file's lines apply again at every load.
    assert (derived || (plan->shift == 0 && plan->moved_count == 0));
    ring_t *const *rings = derived ? derived : plan->rings;
    if (strlen (dir) + 32 >= RB_PATH_SIZE_MAX) {
        s_err (err, err_size, "--state: path too long");
        return RB_EXIT_USAGE;
    }
    snprintf (plan->dir, sizeof plan->dir, "%s", dir);
    if (mkdir (dir, 0755) != 0 && errno != EEXIST) {
        s_err (err, err_size, "%s: %s", dir, strerror (errno));
        return RB_EXIT_BAD_FILE;
    }
    for (size_t k = 0; k <= plan->step_count; k++) {
        char name[64];
        snprintf (name, sizeof name, "ring.%zu", k);
        assert (ring_epoch (rings[k]) == plan->base_epoch - plan->shift + k);
        char *text = ring_to_text (rings[k]);
        if (!text) {
            s_err (err, err_size, "out of memory");
            return RB_EXIT_BAD_FILE;
        }
        int rc = s_write_atomic (dir, name, text, strlen (text), err, err_size);
        free (text);
        if (rc != 0) {
            return RB_EXIT_BAD_FILE;
        }
    }
    return rb_state_save (plan, err, err_size) == 0 ? 0 : RB_EXIT_BAD_FILE;
}

static int s_apply_moved (rb_plan_t *plan, char *err, size_t err_size);

//  Parsing -------------------------------------------------------------------

static int
s_tokens (char *line, char **tokens, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r (line, " \t", &save); t;
         t = strtok_r (NULL, " \t", &save)) {
        if (n == max) {
            return -1;
        }
        tokens[n++] = t;
    }
    return (int) n;
}

static bool
s_u64 (const char *text, int base, uint64_t *value)
{
    if (!*text || *text == '-' || *text == '+' || strlen (text) > (base == 16 ? 16u : 20u)) {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull (text, &end, base);
    if (errno || *end) {
        return false;
    }
    *value = (uint64_t) v;
    return true;
}

static bool
s_name (const char *text, char *out)
{
    size_t n = strlen (text);
    if (n == 0 || n >= RL_SHARD_NAME_SIZE_MAX) {
        return false;
    }
    memcpy (out, text, n + 1);
    return true;
}

//  One 'step' line into s; false when it does not parse.
static bool
s_parse_step (char **tok, int count, size_t expect, rb_step_t *s)
{
    static const char *keys[] = {"chunks", "records", "accounts",  "bytes",   "rounds",
                                 "lag",    "retries", "frozen_at", "started", "finished"};
    uint64_t *values[] = {&s->chunks, &s->records, &s->accounts,  &s->bytes,   &s->rounds,
                          &s->lag,    &s->retries, &s->frozen_at, &s->started, &s->finished};
    if (count != 13 + 20 || strcmp (tok[0], "step") != 0) {
        return false;
    }
    uint64_t k = 0;
    if (!s_u64 (tok[1], 10, &k) || k != expect) {
        return false;
    }
    s->state = UINT32_MAX;
    for (uint32_t st = 0; st <= RB_ROLLED_BACK; st++) {
        if (strcmp (tok[2], s_state_names[st]) == 0) {
            s->state = st;
        }
    }
    if (s->state == UINT32_MAX || strcmp (tok[3], "id") || !s_u64 (tok[4], 16, &s->migration_id)
        || s->migration_id == 0 || strcmp (tok[5], "source") || !s_name (tok[6], s->source)
        || strcmp (tok[7], "target") || !s_name (tok[8], s->target)
        || strcmp (s->source, s->target) == 0 || strcmp (tok[9], "start")
        || !s_u64 (tok[10], 16, &s->start) || strcmp (tok[11], "end")
        || !s_u64 (tok[12], 16, &s->end) || s->start == s->end) {
        return false;
    }
    for (size_t i = 0; i < 10; i++) {
        if (strcmp (tok[13 + 2 * i], keys[i]) || !s_u64 (tok[14 + 2 * i], 10, values[i])) {
            return false;
        }
    }
    return true;
}

//  The lines of the state file; err names the line that is wrong.
static int
s_parse_state (rb_plan_t *plan, char *text, const char *path, char *err, size_t err_size)
{
    int line_no = 0;
    size_t steps_read = 0;
    bool have[6] = {false};
    bool have_run = false;
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        line_no++;
        if (strlen (line) >= S_LINE_SIZE_MAX) {
            s_err (err, err_size, "%s: line %d: longer than %d bytes", path, line_no,
                   S_LINE_SIZE_MAX);
            return RB_EXIT_BAD_FILE;
        }
        if (line[0] == '#') {
            continue;
        }
        char *tok[S_TOKENS_MAX];
        int count = s_tokens (line, tok, S_TOKENS_MAX);
        if (count == 0) {
            continue;
        }
        bool ok = count == 2;
        uint64_t v = 0;
        if (count < 0) {
            ok = false;
        } else if (strcmp (tok[0], "endpoint") == 0) {
            //  Optional, repeated: a shard a fail-over moved (rb_plan_failover).
            ok = count == 3 && plan->moved_count < RB_MOVED_MAX
                 && s_name (tok[1], plan->moved[plan->moved_count].name)
                 && strlen (tok[2]) < RL_ENDPOINT_SIZE_MAX;
            if (ok) {
                for (size_t i = 0; i < plan->moved_count; i++) {
                    ok = ok && strcmp (plan->moved[i].name, tok[1]) != 0;
                }
                snprintf (plan->moved[plan->moved_count].endpoint, RL_ENDPOINT_SIZE_MAX, "%s",
                          tok[2]);
                plan->moved_count += ok;
            }
        } else if (strcmp (tok[0], "step") == 0) {
            ok = have[5] && steps_read < plan->step_count
                 && s_parse_step (tok, count, steps_read + 1, &plan->steps[steps_read]);
            steps_read += ok;
        } else if (!ok) {
        } else if (strcmp (tok[0], "rebalance-state") == 0) {
            ok = !have[0] && s_u64 (tok[1], 10, &v) && v == RB_STATE_VERSION;
            plan->version = (uint32_t) v;
            have[0] = true;
        } else if (strcmp (tok[0], "plan_id") == 0) {
            ok = !have[1] && s_u64 (tok[1], 16, &plan->plan_id) && plan->plan_id != 0;
            have[1] = true;
        } else if (strcmp (tok[0], "base_epoch") == 0) {
            ok = !have[2] && s_u64 (tok[1], 10, &plan->base_epoch) && plan->base_epoch > 0
                 && plan->base_epoch < UINT64_MAX / 2;
            have[2] = true;
        } else if (strcmp (tok[0], "freeze_max_ms") == 0) {
            ok = !have[3] && s_u64 (tok[1], 10, &v) && v >= 1 && v <= RB_FREEZE_MS_MAX;
            plan->freeze_max_ms = (uint32_t) v;
            have[3] = true;
        } else if (strcmp (tok[0], "failover_shift") == 0) {
            //  Optional (no fail-over during the change: 0).
            ok = plan->shift == 0 && s_u64 (tok[1], 10, &plan->shift) && plan->shift > 0
                 && plan->shift < UINT64_MAX / 4;
        } else if (strcmp (tok[0], "run") == 0) {
            //  Optional (a directory written before runs existed: 0).
            ok = !have_run && s_u64 (tok[1], 16, &v) && v > 0
                 && v < ((uint64_t) 1 << RL_MIGRATE_STEP_BITS);
            plan->run = (uint32_t) v;
            have_run = true;
        } else if (strcmp (tok[0], "aborted") == 0) {
            ok = !have[4] && s_u64 (tok[1], 10, &v) && v <= 1;
            plan->aborted = v == 1;
            have[4] = true;
        } else if (strcmp (tok[0], "steps") == 0) {
            ok = !have[5] && s_u64 (tok[1], 10, &v) && v >= 1 && v <= RB_STEPS_MAX;
            if (ok) {
                plan->step_count = (size_t) v;
                plan->steps = calloc (plan->step_count, sizeof (rb_step_t));
                plan->rings = calloc (plan->step_count + 1, sizeof (ring_t *));
                if (!plan->steps || !plan->rings) {
                    s_err (err, err_size, "out of memory");
                    return RB_EXIT_BAD_FILE;
                }
            }
            have[5] = true;
        } else {
            ok = false;
        }
        if (!ok) {
            s_err (err, err_size, "%s: line %d: not a valid line of a state file (version %d)",
                   path, line_no, RB_STATE_VERSION);
            return RB_EXIT_BAD_FILE;
        }
    }
    for (size_t i = 0; i < 6; i++) {
        if (!have[i]) {
            s_err (err, err_size,
                   "%s: a key is missing (rebalance-state, plan_id, base_epoch, "
                   "freeze_max_ms, aborted, steps)",
                   path);
            return RB_EXIT_BAD_FILE;
        }
    }
    if (steps_read != plan->step_count) {
        s_err (err, err_size, "%s: %zu step lines for 'steps %zu'", path, steps_read,
               plan->step_count);
        return RB_EXIT_BAD_FILE;
    }
    //  Done steps first, then at most one in progress, then pending ones.
    size_t k = rb_plan_current (plan);
    for (size_t i = k + 1; i < plan->step_count; i++) {
        if (plan->steps[i].state != RB_PENDING) {
            s_err (err, err_size, "%s: step %zu is %s while step %zu is not done", path, i + 1,
                   rb_step_state_name (plan->steps[i].state), k + 1);
            return RB_EXIT_BAD_FILE;
        }
    }
    for (size_t i = 0; i < plan->step_count; i++) {
        if (plan->steps[i].migration_id != plan->plan_id + i + 1) {
            s_err (err, err_size, "%s: step %zu: id is not the plan's", path, i + 1);
            return RB_EXIT_BAD_FILE;
        }
    }
    return 0;
}

int
rb_plan_load (rb_plan_t *plan, const char *dir, char *err, size_t err_size)
{
    memset (plan, 0, sizeof (*plan));
    if (strlen (dir) + 32 >= RB_PATH_SIZE_MAX) {
        s_err (err, err_size, "--state: path too long");
        return RB_EXIT_BAD_FILE;
    }
    snprintf (plan->dir, sizeof plan->dir, "%s", dir);
    char path[RB_PATH_SIZE_MAX + 16];
    snprintf (path, sizeof path, "%s/state", dir);
    FILE *f = fopen (path, "re");
    if (!f) {
        if (errno == ENOENT) {
            return RB_NO_PLAN;
        }
        s_err (err, err_size, "%s: %s", path, strerror (errno));
        return RB_EXIT_BAD_FILE;
    }
    char *text = malloc (RB_STATE_SIZE_MAX + 1);
    size_t size = text ? fread (text, 1, RB_STATE_SIZE_MAX + 1, f) : 0;
    bool read_error = ferror (f);
    fclose (f);
    if (!text || read_error || size > RB_STATE_SIZE_MAX || memchr (text, 0, size)) {
        free (text);
        s_err (err, err_size, "%s: unreadable, larger than %u bytes, or not text", path,
               RB_STATE_SIZE_MAX);
        return RB_EXIT_BAD_FILE;
    }
    text[size] = 0;
    int rc = s_parse_state (plan, text, path, err, err_size);
    free (text);
    if (rc != 0) {
        rb_plan_free (plan);
        snprintf (plan->dir, sizeof plan->dir, "%s", dir);
        return rc;
    }
    for (size_t k = 0; k <= plan->step_count; k++) {
        char ring_path[RB_PATH_SIZE_MAX + 32], rerr[256];
        snprintf (ring_path, sizeof ring_path, "%s/ring.%zu", dir, k);
        plan->rings[k] = ring_load_file (ring_path, rerr, sizeof rerr);
        if (!plan->rings[k] || ring_epoch (plan->rings[k]) != plan->base_epoch + k) {
            if (plan->rings[k]) {
                snprintf (rerr, sizeof rerr, "epoch %" PRIu64 ", not %" PRIu64,
                          ring_epoch (plan->rings[k]), plan->base_epoch + k);
            }
            s_err (err, err_size, "%s: %s", ring_path, rerr);
            rb_plan_free (plan);
            snprintf (plan->dir, sizeof plan->dir, "%s", dir);
            return RB_EXIT_BAD_FILE;
        }
    }
    //  Fail-overs during the change: the rings as the steps load them.
    if (s_apply_moved (plan, err, err_size) != 0) {
        rb_plan_free (plan);
        snprintf (plan->dir, sizeof plan->dir, "%s", dir);
        return RB_EXIT_BAD_FILE;
    }
    //  A rolled back step: the ring that undid it (written as loaded).
    size_t current = rb_plan_current (plan);
    if (current < plan->step_count && plan->steps[current].state == RB_ROLLED_BACK) {
        char ring_path[RB_PATH_SIZE_MAX + 32], rerr[256];
        snprintf (ring_path, sizeof ring_path, "%s/rollback.ring", dir);
        plan->rollback = ring_load_file (ring_path, rerr, sizeof rerr);
        if (!plan->rollback || ring_epoch (plan->rollback) != plan->base_epoch + current + 2) {
            if (plan->rollback) {
                snprintf (rerr, sizeof rerr, "epoch %" PRIu64 ", not %" PRIu64,
                          ring_epoch (plan->rollback), plan->base_epoch + current + 2);
            }
            s_err (err, err_size, "%s: %s", ring_path, rerr);
            rb_plan_free (plan);
            snprintf (plan->dir, sizeof plan->dir, "%s", dir);
            return RB_EXIT_BAD_FILE;
        }
    }
    //  Each step moves its arc from its source (ring before) to its target.
    for (size_t i = 0; i < plan->step_count; i++) {
        const rb_step_t *s = &plan->steps[i];
        int before = ring_lookup (plan->rings[i], s->end);
        int after = ring_lookup (plan->rings[i + 1], s->end);
        if (before < 0 || after < 0
            || strcmp (ring_shard_name (plan->rings[i], (size_t) before), s->source) != 0
            || strcmp (ring_shard_name (plan->rings[i + 1], (size_t) after), s->target) != 0) {
            s_err (err, err_size, "%s/state: step %zu does not match ring.%zu and ring.%zu", dir,
                   i + 1, i, i + 1);
            rb_plan_free (plan);
            snprintf (plan->dir, sizeof plan->dir, "%s", dir);
            return RB_EXIT_BAD_FILE;
        }
    }
    return 0;
}

//  Fail-overs -----------------------------------------------------------------

//  The moved endpoints into every ring of the plan that names the shard,
//  and the shift into the epochs and base_epoch (the ring files hold the
//  epochs derived). 0, or -1 (err).
static int
s_apply_moved (rb_plan_t *plan, char *err, size_t err_size)
{
    if (plan->base_epoch > UINT64_MAX / 2 - plan->shift) {
        s_err (err, err_size, "failover_shift %" PRIu64 ": epochs out of range", plan->shift);
        return -1;
    }
    plan->base_epoch += plan->shift;
    for (size_t k = 0; k <= plan->step_count; k++) {
        ring_set_epoch (plan->rings[k], plan->base_epoch + k);
    }
    for (size_t i = 0; i < plan->moved_count; i++) {
        bool named = false;
        for (size_t k = 0; k <= plan->step_count; k++) {
            if (ring_shard_find (plan->rings[k], plan->moved[i].name) < 0) {
                continue;
            }
            named = true;
            int rc = ring_set_endpoint (plan->rings[k], plan->moved[i].name,
                                        plan->moved[i].endpoint);
            if (rc != 0) {
                s_err (err, err_size, "endpoint %s %s: %s", plan->moved[i].name,
                       plan->moved[i].endpoint, ring_strerror (rc));
                return -1;
            }
        }
        if (!named) {
            s_err (err, err_size, "endpoint %s: no ring of the plan names that shard",
                   plan->moved[i].name);
            return -1;
        }
    }
    return 0;
}

int
rb_plan_failover (rb_plan_t *plan, const char *name, const char *endpoint, uint64_t shift,
                  char *err, size_t err_size)
{
    size_t at = plan->moved_count;
    for (size_t i = 0; i < plan->moved_count; i++) {
        if (strcmp (plan->moved[i].name, name) == 0) {
            at = i;
        }
    }
    if (at == RB_MOVED_MAX) {
        s_err (err, err_size, "more than %d fail-overs of different shards in one change",
               RB_MOVED_MAX);
        return -1;
    }
    if (strlen (name) >= RL_SHARD_NAME_SIZE_MAX || strlen (endpoint) >= RL_ENDPOINT_SIZE_MAX
        || plan->shift > UINT64_MAX / 4 - shift
        || plan->base_epoch > UINT64_MAX / 2 - shift - plan->step_count) {
        s_err (err, err_size, "the fail-over of %s to %s is out of range", name, endpoint);
        return -1;
    }
    size_t current = rb_plan_current (plan);
    if (current < plan->step_count && plan->steps[current].state == RB_ROLLED_BACK) {
        s_err (err, err_size, "step %zu was rolled back: a fail-over is not followed after it",
               current + 1);
        return -1;
    }
    //  Checked on a copy first, so that a refusal leaves the plan as it
    //  was; then in place (the callers hold pointers to the rings).
    int rc = RING_ERR_NOT_FOUND;
    for (size_t k = 0; k <= plan->step_count && rc == RING_ERR_NOT_FOUND; k++) {
        if (ring_shard_find (plan->rings[k], name) >= 0) {
            ring_t *copy = ring_dup (plan->rings[k]);
            rc = copy ? ring_set_endpoint (copy, name, endpoint) : RING_ERR_NOMEM;
            ring_destroy (&copy);
        }
    }
    if (rc != 0) {
        s_err (err, err_size, "the fail-over of %s to %s: %s", name, endpoint,
               rc == RING_ERR_NOT_FOUND ? "no ring of the plan names that shard"
                                        : ring_strerror (rc));
        return -1;
    }
    for (size_t k = 0; k <= plan->step_count; k++) {
        ring_set_epoch (plan->rings[k], ring_epoch (plan->rings[k]) + shift);
        if (ring_shard_find (plan->rings[k], name) >= 0) {
            rc = ring_set_endpoint (plan->rings[k], name, endpoint);
            assert (rc == 0);
        }
    }
    plan->shift += shift;
    plan->base_epoch += shift;
    snprintf (plan->moved[at].name, sizeof plan->moved[at].name, "%s", name);
    snprintf (plan->moved[at].endpoint, sizeof plan->moved[at].endpoint, "%s", endpoint);
    plan->moved_count += at == plan->moved_count;
    return 0;
}

//  The lock --------------------------------------------------------------------

int
rb_lock (const char *dir, bool wait, char *err, size_t err_size)
{
    char path[RB_PATH_SIZE_MAX + 16];
    snprintf (path, sizeof path, "%s/lock", dir);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_err (err, err_size, "%s: %s", path, strerror (errno));
        return -2;
    }
    if (flock (fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        int e = errno;
        close (fd);
        if (e == EWOULDBLOCK) {
            s_err (err, err_size, "%s: another rebalance apply runs on this state directory", path);
            return -1;
        }
        s_err (err, err_size, "%s: %s", path, strerror (e));
        return -2;
    }
    return fd;
}

bool
rb_locked_by_other (const char *dir)
{
    char err[64];
    int fd = rb_lock (dir, false, err, sizeof err);
    if (fd >= 0) {
        close (fd);
        return false;
    }
    return fd == -1;
}
