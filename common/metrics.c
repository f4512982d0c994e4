/*  metrics.c: counters, gauges and histograms, with a snapshot handed
    from the loop thread to the HTTP thread.

    The shard and the router are one loop thread each; reading metrics
    must never stall it. So the registry holds two copies of one plain
    struct (s_data_t): WORK, which only the loop thread touches (it sets
    values and observes histograms as it goes, without locking), and
    PUBLISHED, which metrics_publish overwrites once per tick under a
    mutex. The HTTP thread (metrics_http.c) copies PUBLISHED under the same
    mutex and formats its copy after releasing it, so the loop waits at
    most for one memcpy of the used part of the struct, never for a
    client or for the formatting.

    INVARIANTS
    1. Only the loop thread calls metrics_family, metrics_series,
       metrics_set, metrics_observe, metrics_set_ready, metrics_publish.
    2. The mutex guards PUBLISHED, its publish time and nothing else; it is
       never held across I/O or formatting.
    3. Families and series are only added, never removed: an id stays
       valid for the life of the registry. Series of one family are
       printed together, under one HELP and TYPE, in the order added.
    4. A histogram series holds bound_count + 1 bucket counts (the last for
       +Inf), then the sum, then the count; buckets are printed cumulative.

    The shard and the router share two kinds of table on top: a table of
    unlabelled scalars (metrics_scalars) and the counter of replies by
    operation and status (metrics_replies_t), which counts in plain
    integers as the loop goes and sets its series once per tick.

    LIMITS: METRICS_FAMILIES_MAX families, METRICS_SERIES_MAX series,
    METRICS_VALUES_MAX values (a histogram takes bound_count + 3), labels of
    METRICS_LABELS_SIZE_MAX - 1 bytes. Past them registration returns -1
    and the updates of series -1 are ignored: a metric goes missing, the
    loop goes on.

    Values are doubles: counters are exact up to 2^53.
*/
#include "metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "proto.h"

#define S_REASON_SIZE 128
#define S_UNSET       (-2) //  a replies series not yet added

typedef struct {
    metrics_type_t type;
    const char *name;
    const char *help;
    const double *bounds;
    size_t bound_count;
} s_family_t;

typedef struct {
    int family;
    uint32_t at; //  first value
    char labels[METRICS_LABELS_SIZE_MAX];
} s_series_t;

typedef struct {
    size_t family_count;
    size_t series_count;
    size_t value_count;
    bool ready;
    char reason[S_REASON_SIZE];
    s_family_t families[METRICS_FAMILIES_MAX];
    s_series_t series[METRICS_SERIES_MAX];
    double values[METRICS_VALUES_MAX];
} s_data_t;

struct metrics_t {
    s_data_t *work; //  the loop thread's
    pthread_mutex_t mutex;
    s_data_t *published;  //  under mutex
    int64_t published_ms; //  under mutex; -1: never
};

metrics_t *
metrics_new (void)
{
    metrics_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->work = calloc (1, sizeof (s_data_t));
    self->published = calloc (1, sizeof (s_data_t));
    if (!self->work || !self->published) {
        free (self->work);
        free (self->published);
        free (self);
        return NULL;
    }
    snprintf (self->work->reason, S_REASON_SIZE, "starting");
    snprintf (self->published->reason, S_REASON_SIZE, "starting");
    self->published_ms = -1;
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
metrics_destroy (metrics_t **self_p)
{
    assert (self_p);
    metrics_t *self = *self_p;
    if (!self) {
        return;
    }
    pthread_mutex_destroy (&self->mutex);
    free (self->work);
    free (self->published);
    free (self);
    *self_p = NULL;
}

int
metrics_family (metrics_t *self, metrics_type_t type, const char *name, const char *help,
                const double *bounds, size_t bound_count)
{
    assert (self && name && help);
    assert ((type == METRICS_HISTOGRAM) == (bounds != NULL));
    assert (bound_count <= METRICS_BUCKETS_MAX);
    s_data_t *d = self->work;
    if (d->family_count == METRICS_FAMILIES_MAX) {
        return -1;
    }
    d->families[d->family_count] = (s_family_t){type, name, help, bounds, bound_count};
    return (int) d->family_count++;
}

int
metrics_series (metrics_t *self, int family, const char *labels)
{
    assert (self && labels);
    s_data_t *d = self->work;
    if (family < 0 || strlen (labels) >= METRICS_LABELS_SIZE_MAX) {
        return -1;
    }
    assert ((size_t) family < d->family_count);
    for (size_t i = 0; i < d->series_count; i++) {
        if (d->series[i].family == family && strcmp (d->series[i].labels, labels) == 0) {
            return (int) i;
        }
    }
    const s_family_t *f = &d->families[family];
    size_t need = f->type == METRICS_HISTOGRAM ? f->bound_count + 3 : 1;
    if (d->series_count == METRICS_SERIES_MAX || d->value_count + need > METRICS_VALUES_MAX) {
        return -1;
    }
    s_series_t *s = &d->series[d->series_count];
    s->family = family;
    s->at = (uint32_t) d->value_count;
    snprintf (s->labels, sizeof (s->labels), "%s", labels);
    memset (&d->values[d->value_count], 0, need * sizeof (double));
    d->value_count += need;
    return (int) d->series_count++;
}

void
metrics_set (metrics_t *self, int series, double value)
{
    assert (self);
    if (series < 0) {
        return;
    }
    s_data_t *d = self->work;
    assert ((size_t) series < d->series_count);
    assert (d->families[d->series[series].family].type != METRICS_HISTOGRAM);
    d->values[d->series[series].at] = value;
}

void
metrics_observe (metrics_t *self, int series, double value)
{
    assert (self);
    if (series < 0) {
        return;
    }
    s_data_t *d = self->work;
    assert ((size_t) series < d->series_count);
    const s_family_t *f = &d->families[d->series[series].family];
    assert (f->type == METRICS_HISTOGRAM);
    double *v = &d->values[d->series[series].at];
    size_t b = 0;
    while (b < f->bound_count && value > f->bounds[b]) {
        b++;
    }
    v[b] += 1;                      //  bucket b (bound_count: +Inf)
    v[f->bound_count + 1] += value; //  sum
    v[f->bound_count + 2] += 1;     //  count
}

void
metrics_set_ready (metrics_t *self, bool ready, const char *reason)
{
    assert (self && reason);
    self->work->ready = ready;
    snprintf (self->work->reason, S_REASON_SIZE, "%s", reason);
}

//  Copies the used part of src into dst.
static void
s_copy (s_data_t *dst, const s_data_t *src)
{
    dst->family_count = src->family_count;
    dst->series_count = src->series_count;
    dst->value_count = src->value_count;
    dst->ready = src->ready;
    memcpy (dst->reason, src->reason, S_REASON_SIZE);
    memcpy (dst->families, src->families, src->family_count * sizeof (s_family_t));
    memcpy (dst->series, src->series, src->series_count * sizeof (s_series_t));
    memcpy (dst->values, src->values, src->value_count * sizeof (double));
}

void
metrics_publish (metrics_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    s_copy (self->published, self->work);
    self->published_ms = zclock_mono ();
    pthread_mutex_unlock (&self->mutex);
}

//  Tables -------------------------------------------------------------------------

void
metrics_scalars (metrics_t *self, const metrics_scalar_t *table, size_t count, int *series)
{
    assert (self && (count == 0 || (table && series)));
    for (size_t i = 0; i < count; i++) {
        const metrics_scalar_t *s = &table[i];
        assert (s->type != METRICS_HISTOGRAM);
        series[i] = metrics_series (self, metrics_family (self, s->type, s->name, s->help, NULL, 0),
                                    "");
    }
}

struct metrics_replies_t {
    metrics_t *metrics; //  borrowed
    int family;
    int series[METRICS_CODES_MAX][METRICS_CODES_MAX]; //  [operation][status]; S_UNSET: not yet
    uint64_t counts[METRICS_CODES_MAX][METRICS_CODES_MAX];
};

metrics_replies_t *
metrics_replies_new (metrics_t *metrics, const char *name, const char *help)
{
    assert (metrics && name && help);
    metrics_replies_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->metrics = metrics;
    self->family = metrics_family (metrics, METRICS_COUNTER, name, help, NULL, 0);
    for (size_t op = 0; op < METRICS_CODES_MAX; op++) {
        for (size_t st = 0; st < METRICS_CODES_MAX; st++) {
            self->series[op][st] = S_UNSET;
        }
    }
    return self;
}

void
metrics_replies_destroy (metrics_replies_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
metrics_replies_count (metrics_replies_t *self, uint32_t operation, uint32_t status)
{
    assert (self);
    self->counts[operation < METRICS_CODES_MAX ? operation : 0]
                [status < METRICS_CODES_MAX ? status : METRICS_CODES_MAX - 1]++;
}

void
metrics_replies_update (metrics_replies_t *self)
{
    assert (self);
    char labels[METRICS_LABELS_SIZE_MAX];
    for (uint32_t op = 0; op < METRICS_CODES_MAX; op++) {
        for (uint32_t st = 0; st < METRICS_CODES_MAX; st++) {
            if (self->counts[op][st] == 0) {
                continue;
            }
            if (self->series[op][st] == S_UNSET) {
                snprintf (labels, sizeof labels, "operation=\"%s\",status=\"%s\"", rl_op_name (op),
                          rl_status_name (st));
                self->series[op][st] = metrics_series (self->metrics, self->family, labels);
            }
            metrics_set (self->metrics, self->series[op][st], (double) self->counts[op][st]);
        }
    }
}

//  Formatting -----------------------------------------------------------------------

//  A number as Prometheus reads it: integers without a fraction.
static void
s_print_number (FILE *f, double v)
{
    if (isinf (v)) {
        fputs (v > 0 ? "+Inf" : "-Inf", f);
    } else if (isnan (v)) {
        fputs ("NaN", f);
    } else if (v == floor (v) && fabs (v) < 1e15) {
        fprintf (f, "%.0f", v);
    } else {
        fprintf (f, "%.9g", v);
    }
}

//  name{labels,extra} or name{extra} or name{labels} or name.
static void
s_print_name (FILE *f, const char *name, const char *suffix, const char *labels, const char *extra)
{
    fprintf (f, "%s%s", name, suffix);
    bool has_labels = labels[0] != '\0';
    bool has_extra = extra && extra[0] != '\0';
    if (has_labels || has_extra) {
        fprintf (f, "{%s%s%s}", labels, has_labels && has_extra ? "," : "", has_extra ? extra : "");
    }
    fputc (' ', f);
}

static void
s_format (FILE *f, const s_data_t *d)
{
    static const char *type_names[] = {"counter", "gauge", "histogram"};
    for (size_t fi = 0; fi < d->family_count; fi++) {
        const s_family_t *fam = &d->families[fi];
        bool any = false;
        for (size_t si = 0; si < d->series_count; si++) {
            const s_series_t *s = &d->series[si];
            if (s->family != (int) fi) {
                continue;
            }
            if (!any) {
                fprintf (f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                         type_names[fam->type]);
                any = true;
            }
            const double *v = &d->values[s->at];
            if (fam->type != METRICS_HISTOGRAM) {
                s_print_name (f, fam->name, "", s->labels, NULL);
                s_print_number (f, v[0]);
                fputc ('\n', f);
                continue;
            }
            double cumulative = 0;
            for (size_t b = 0; b <= fam->bound_count; b++) {
                cumulative += v[b];
                char le[48];
                if (b == fam->bound_count) {
                    snprintf (le, sizeof le, "le=\"+Inf\"");
                } else {
                    snprintf (le, sizeof le, "le=\"%.9g\"", fam->bounds[b]);
                }
                s_print_name (f, fam->name, "_bucket", s->labels, le);
                s_print_number (f, cumulative);
                fputc ('\n', f);
            }
            s_print_name (f, fam->name, "_sum", s->labels, NULL);
            s_print_number (f, v[fam->bound_count + 1]);
            fputc ('\n', f);
            s_print_name (f, fam->name, "_count", s->labels, NULL);
            s_print_number (f, v[fam->bound_count + 2]);
            fputc ('\n', f);
        }
    }
}

char *
metrics_text (metrics_t *self, size_t *size_p)
{
    assert (self && size_p);
    s_data_t *copy = malloc (sizeof (s_data_t));
    if (!copy) {
        return NULL;
    }
    pthread_mutex_lock (&self->mutex);
    s_copy (copy, self->published);
    pthread_mutex_unlock (&self->mutex);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (f) {
        s_format (f, copy);
        if (fclose (f) != 0) {
            free (text);
            text = NULL;
        }
    }
    free (copy);
    *size_p = text ? size : 0;
    return text;
}

int64_t
metrics_age_ms (metrics_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    int64_t at = self->published_ms;
    pthread_mutex_unlock (&self->mutex);
    return at < 0 ? -1 : zclock_mono () - at;
}

bool
metrics_ready (metrics_t *self, char *reason, size_t reason_size)
{
    assert (self && reason && reason_size > 0);
    pthread_mutex_lock (&self->mutex);
    bool ready = self->published->ready;
    snprintf (reason, reason_size, "%s", self->published->reason);
    pthread_mutex_unlock (&self->mutex);
    return ready;
}
