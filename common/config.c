/*  config.c: reading a config file into key/value pairs. See config.h.

    DESIGN
    One pass over the text, a line at a time; each line is a comment, blank,
    or one entry, checked whole before the next line is read. The first
    refusal stops the parse and names the line. The file is read whole
    (bounded) before it is parsed, so a file that grows while it is read
    cannot make the parse unbounded.

    INVARIANTS
    1. An accepted file has at most RL_CONFIG_ENTRIES_MAX entries, each key
       unique, of a-z, 0-9 and '-', each value non-empty and without control
       bytes; keys and values are NUL-terminated and fit their arrays.
    2. Every refusal says why and on which line (or why the file could not
       be read); nothing is kept from a refused file.
    3. What is accepted, czmq's zconfig reads to the same pairs (checked by
       the fuzz target): the format is a subset of ZPL.
*/
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct config_t {
    size_t count;
    config_entry_t entries[RL_CONFIG_ENTRIES_MAX];
};

static bool
s_is_blank (char c)
{
    return c == ' ' || c == '\t';
}

static bool
s_is_key_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

//  A byte a value may hold: not a control byte (tab included) nor DEL.
static bool
s_is_value_byte (unsigned char c)
{
    return c >= 0x20 && c != 0x7f;
}

//  The first control byte of the line (tab allowed), or -1.
static int
s_control_byte (const char *line, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return c;
        }
    }
    return -1;
}

//  One line (without its '\n'): 0 and *entry filled, 1 for a comment or
//  blank line, -1 with err set.
static int
s_parse_line (const char *line, size_t size, int number, config_entry_t *entry, char *err,
              size_t err_size)
{
    int control = s_control_byte (line, size);
    if (control >= 0) {
        snprintf (err, err_size, "line %d: control byte 0x%02x%s", number, control,
                  control == '\r' ? " (a CR: Windows line endings? save the file with \\n only)"
                  : control == 0  ? " (a NUL byte)"
                                  : "");
        return -1;
    }
    size_t at = 0;
    while (at < size && s_is_blank (line[at])) {
        at++;
    }
    if (at == size) {
        return 1; //  blank
    }
    if (line[0] == '#') {
        return 1; //  comment
    }
    if (at > 0) {
        snprintf (err, err_size,
                  "line %d: indented; every KEY = VALUE starts its line (sections are not used)",
                  number);
        return -1;
    }
    size_t key_size = 0;
    while (at < size && s_is_key_char (line[at])) {
        at++;
        key_size++;
    }
    if (key_size == 0 || (at < size && !s_is_blank (line[at]) && line[at] != '=')) {
        snprintf (err, err_size,
                  "line %d: expected KEY = VALUE, a KEY of a-z, 0-9 and '-' (an option's name)",
                  number);
        return -1;
    }
    if (key_size >= sizeof entry->key) {
        snprintf (err, err_size, "line %d: a key longer than %zu bytes", number,
                  sizeof entry->key - 1);
        return -1;
    }
    memcpy (entry->key, line, key_size);
    entry->key[key_size] = '\0';
    while (at < size && s_is_blank (line[at])) {
        at++;
    }
    if (at == size || line[at] != '=') {
        snprintf (err, err_size, "line %d: '%s' needs '= VALUE'", number, entry->key);
        return -1;
    }
    at++;
    while (at < size && s_is_blank (line[at])) {
        at++;
    }
    size_t value_start = at;
    size_t value_size = 0;
    if (at < size && (line[at] == '"' || line[at] == '\'')) {
        char quote = line[at++];
        value_start = at;
        while (at < size && line[at] != quote) {
            if (!s_is_value_byte ((unsigned char) line[at])) {
                snprintf (err, err_size, "line %d: a tab inside the value of '%s'", number,
                          entry->key);
                return -1;
            }
            at++;
        }
        if (at == size) {
            snprintf (err, err_size, "line %d: the value of '%s' misses its closing %c", number,
                      entry->key, quote);
            return -1;
        }
        value_size = at - value_start;
        at++; //  the closing quote
    } else {
        while (at < size && !s_is_blank (line[at]) && line[at] != '#') {
            if (line[at] == '"' || line[at] == '\'') {
                snprintf (err, err_size,
                          "line %d: a quote inside the value of '%s': quote the whole value",
                          number, entry->key);
                return -1;
            }
            at++;
        }
        value_size = at - value_start;
    }
    while (at < size && s_is_blank (line[at])) {
        at++;
    }
    if (at < size && line[at] != '#') {
        snprintf (err, err_size,
                  "line %d: text after the value of '%s' (quote a value that holds spaces)", number,
                  entry->key);
        return -1;
    }
    if (value_size == 0) {
        snprintf (err, err_size, "line %d: '%s' has no value", number, entry->key);
        return -1;
    }
    if (value_size >= sizeof entry->value) {
        snprintf (err, err_size, "line %d: the value of '%s' is longer than %zu bytes", number,
                  entry->key, sizeof entry->value - 1);
        return -1;
    }
    memcpy (entry->value, line + value_start, value_size);
    entry->value[value_size] = '\0';
    entry->line = number;
    return 0;
}

config_t *
config_parse (const char *text, size_t text_size, char *err, size_t err_size)
{
    assert ((text || text_size == 0) && err && err_size > 0);
    if (text_size > RL_CONFIG_SIZE_MAX) {
        snprintf (err, err_size, "larger than %d bytes", RL_CONFIG_SIZE_MAX);
        return NULL;
    }
    config_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    size_t at = 0;
    int number = 0;
    while (at < text_size) {
        number++;
        const char *newline = memchr (text + at, '\n', text_size - at);
        size_t line_size = newline ? (size_t) (newline - (text + at)) : text_size - at;
        config_entry_t entry;
        int rc = s_parse_line (text + at, line_size, number, &entry, err, err_size);
        at += line_size + (newline ? 1 : 0);
        if (rc < 0) {
            config_destroy (&self);
            return NULL;
        }
        if (rc > 0) {
            continue;
        }
        for (size_t i = 0; i < self->count; i++) {
            if (strcmp (self->entries[i].key, entry.key) == 0) {
                snprintf (err, err_size, "line %d: '%s' was given on line %d already", number,
                          entry.key, self->entries[i].line);
                config_destroy (&self);
                return NULL;
            }
        }
        if (self->count == RL_CONFIG_ENTRIES_MAX) {
            snprintf (err, err_size, "line %d: more than %d keys", number, RL_CONFIG_ENTRIES_MAX);
            config_destroy (&self);
            return NULL;
        }
        self->entries[self->count++] = entry;
    }
    return self;
}

config_t *
config_load (const char *path, char *err, size_t err_size)
{
    assert (path && err && err_size > 0);
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf (err, err_size, "cannot open: %s", strerror (errno));
        return NULL;
    }
    struct stat info;
    if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode)) {
        snprintf (err, err_size, "not a regular file");
        close (fd);
        return NULL;
    }
    //  One byte more than the limit, to tell a file at the limit from a
    //  larger one whatever its size says.
    char *text = malloc (RL_CONFIG_SIZE_MAX + 1);
    if (!text) {
        snprintf (err, err_size, "out of memory");
        close (fd);
        return NULL;
    }
    size_t size = 0;
    while (size < RL_CONFIG_SIZE_MAX + 1) {
        ssize_t got = read (fd, text + size, RL_CONFIG_SIZE_MAX + 1 - size);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf (err, err_size, "cannot read: %s", strerror (errno));
            free (text);
            close (fd);
            return NULL;
        }
        if (got == 0) {
            break;
        }
        size += (size_t) got;
    }
    close (fd);
    config_t *self = config_parse (text, size, err, err_size);
    free (text);
    return self;
}

void
config_destroy (config_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

size_t
config_count (const config_t *self)
{
    assert (self);
    return self->count;
}

const config_entry_t *
config_entry (const config_t *self, size_t index)
{
    assert (self && index < self->count);
    return &self->entries[index];
}
