/*  options.c: reading the numbers of a command line, and a config file
    into it. See options.h.

    INVARIANTS
    1. *out changes only when the whole text is a number within the bounds.
    2. Every refusal names the program, the option, the bounds and the text.
    3. In the merged argv the file's options come before every flag of the
       command line, in file order, each as one "--KEY=VALUE" entry (or
       "--KEY" for a flag set true), so getopt_long reads them as it reads
       flags, with the same checks, and a later flag wins.
    4. Every key of the file names an option of the program; an unknown key
       is refused before any option is read.
*/
#include "options.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int
options_long (const char *program, const char *option, const char *text, long min, long max,
              long *out)
{
    assert (program && option && text && out && min <= max);
    errno = 0;
    char *end = NULL;
    long value = strtol (text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || value < min || value > max) {
        fprintf (stderr, "%s: %s must be a whole number in %ld..%ld, not '%s'\n", program, option,
                 min, max, text);
        return -1;
    }
    *out = value;
    return 0;
}

//  The option named exactly `name` (name_size bytes), or NULL.
static const struct option *
s_find (const struct option *longs, const char *name, size_t name_size)
{
    for (const struct option *o = longs; o->name; o++) {
        if (strlen (o->name) == name_size && strncmp (o->name, name, name_size) == 0) {
            return o;
        }
    }
    return NULL;
}

//  The option `arg` ("--NAME" or "--NAME=...", NAME perhaps abbreviated as
//  getopt_long allows) names, or NULL when none or several.
static const struct option *
s_match (const struct option *longs, const char *arg)
{
    const char *name = arg + 2;
    const char *equals = strchr (name, '=');
    size_t name_size = equals ? (size_t) (equals - name) : strlen (name);
    const struct option *exact = s_find (longs, name, name_size);
    if (exact) {
        return exact;
    }
    const struct option *found = NULL;
    for (const struct option *o = longs; o->name; o++) {
        if (strncmp (o->name, name, name_size) == 0) {
            if (found) {
                return NULL; //  ambiguous: getopt_long refuses it later
            }
            found = o;
        }
    }
    return found;
}

//  Finds --config in argv: *path_p and the indices it takes (*at_p, and
//  *count_p of 1 or 2 entries); 0 when none, 1 when found, -1 when given
//  twice or without a file.
static int
s_find_config (const char *program, int argc, char **argv, const struct option *longs,
               const char **path_p, int *at_p, int *count_p)
{
    int found = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "--") == 0) {
            break;
        }
        if (strncmp (arg, "--", 2) != 0) {
            continue;
        }
        bool is_config = strcmp (arg, "--config") == 0 || strncmp (arg, "--config=", 9) == 0;
        if (!is_config) {
            const struct option *o = s_match (longs, arg);
            if (o && o->has_arg == required_argument && !strchr (arg, '=')) {
                i++; //  its value, whatever it looks like
            }
            continue;
        }
        if (found) {
            fprintf (stderr, "%s: --config given twice\n", program);
            return -1;
        }
        found = 1;
        *at_p = i;
        if (arg[8] == '=') {
            *path_p = arg + 9;
            *count_p = 1;
        } else if (i + 1 < argc) {
            *path_p = argv[i + 1];
            *count_p = 2;
            i++;
        } else {
            fprintf (stderr, "%s: --config needs a FILE\n", program);
            return -1;
        }
        if (**path_p == '\0') {
            fprintf (stderr, "%s: --config needs a FILE\n", program);
            return -1;
        }
    }
    return found;
}

//  The file's entries as options: checks every key, and writes the
//  "--KEY=VALUE" texts into self->storage. 0, or -1 (said).
static int
s_entries_to_args (options_args_t *self, const char *program, const config_t *config,
                   const struct option *longs, char **args, int *lines, int *count_p)
{
    size_t total = 0;
    for (size_t i = 0; i < config_count (config); i++) {
        const config_entry_t *e = config_entry (config, i);
        total += strlen (e->key) + strlen (e->value) + 4;
    }
    self->storage = malloc (total + 1);
    if (!self->storage) {
        fprintf (stderr, "%s: out of memory reading --config %s\n", program, self->path);
        return -1;
    }
    char *cursor = self->storage;
    int count = 0;
    for (size_t i = 0; i < config_count (config); i++) {
        const config_entry_t *e = config_entry (config, i);
        const struct option *o = s_find (longs, e->key, strlen (e->key));
        if (!o || strcmp (e->key, "help") == 0 || strcmp (e->key, "check-config") == 0) {
            fprintf (stderr,
                     "%s: --config %s: line %d: unknown key '%s' (the keys are the long "
                     "options of '%s --help', without the dashes; docs/config.md)\n",
                     program, self->path, e->line, e->key, program);
            return -1;
        }
        if (o->has_arg == no_argument) {
            if (strcmp (e->value, "true") == 0) {
                args[count] = cursor;
                cursor += sprintf (cursor, "--%s", e->key) + 1;
                lines[count++] = e->line;
            } else if (strcmp (e->value, "false") != 0) {
                fprintf (stderr, "%s: --config %s: line %d: %s must be true or false, not '%s'\n",
                         program, self->path, e->line, e->key, e->value);
                return -1;
            }
            continue;
        }
        args[count] = cursor;
        cursor += sprintf (cursor, "--%s=%s", e->key, e->value) + 1;
        lines[count++] = e->line;
    }
    *count_p = count;
    return 0;
}

int
options_args_new (options_args_t *self, const char *program, int argc, char **argv,
                  const struct option *longs)
{
    assert (self && program && argc >= 1 && argv && longs);
    *self = (options_args_t){0};
    const char *path = NULL;
    int at = 0;
    int taken = 0;
    int found = s_find_config (program, argc, argv, longs, &path, &at, &taken);
    if (found < 0) {
        return -1;
    }
    config_t *config = NULL;
    if (found) {
        char err[256];
        config = config_load (path, err, sizeof err);
        if (!config) {
            fprintf (stderr, "%s: --config %s: %s\n", program, path, err);
            return -1;
        }
        self->path = path;
    }
    size_t entries = config ? config_count (config) : 0;
    //  argv[0], the file's options, the flags, and getopt's NULL.
    size_t capacity = 1 + entries + (size_t) argc + 1;
    self->argv = calloc (capacity, sizeof (char *));
    self->lines = calloc (capacity, sizeof (int));
    if (!self->argv || !self->lines) {
        fprintf (stderr, "%s: out of memory\n", program);
        config_destroy (&config);
        options_args_free (self);
        return -1;
    }
    int count = 0;
    self->argv[count++] = argv[0];
    if (config) {
        int added = 0;
        if (s_entries_to_args (self, program, config, longs, self->argv + count,
                               self->lines + count, &added)
            != 0) {
            config_destroy (&config);
            options_args_free (self);
            return -1;
        }
        count += added;
        config_destroy (&config);
    }
    for (int i = 1; i < argc; i++) {
        if (found && i >= at && i < at + taken) {
            continue; //  --config FILE itself
        }
        self->argv[count++] = argv[i];
    }
    self->argv[count] = NULL;
    self->argc = count;
    return 0;
}

void
options_args_free (options_args_t *self)
{
    assert (self);
    free (self->argv);
    free (self->lines);
    free (self->storage);
    *self = (options_args_t){0};
}

void
options_args_blame (const options_args_t *self, const char *program, int index)
{
    assert (self && program);
    if (self->path && index > 0 && index < self->argc && self->lines[index] > 0) {
        fprintf (stderr, "%s: (that value is line %d of --config %s)\n", program,
                 self->lines[index], self->path);
    }
}
