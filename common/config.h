/*  config.h: a program's config file (--config FILE), read into key/value
    pairs that options.c turns into command-line options.

    The format is czmq's ZPL (zconfig, rfc.zeromq.org spec 4), one level
    deep: a file czmq's zconfig_load reads to the same pairs.

        #   shard s1 (docs/config.md)
        name = s1
        bind = tcp://0.0.0.0:7101
        data = "/var/lib/ringledger/s1"   # a comment

    Lines are "KEY = VALUE", a comment starting with '#' in the first
    column, or blank. A key starts its line and is made of a-z, 0-9 and
    '-' (the option's long name). A value is a word (no space, tab, '#' or
    quote), or quoted with '"' or '\'' (any bytes but the quote and control
    bytes); a '#' after the value starts a comment. Refused, each with the
    line's number: indented lines (ZPL sections: not used), a key without
    "= VALUE", an empty value, a key given twice, text after the value,
    control bytes (a CR too: Windows line endings), a NUL byte. Bytes of
    0x80 and more are kept as they are (UTF-8 paths).

    Why not zconfig itself: zconfig_load prints its syntax errors to stdout
    through czmq's log, without the file's name; it keeps a key given twice
    silently; and it reads files of any size. This parser gives one clear
    refusal on stderr, and tests/fuzz/fuzz_config.c checks that every file
    it accepts reads the same through zconfig.

    LIMITS: RL_CONFIG_SIZE_MAX bytes per file, RL_CONFIG_ENTRIES_MAX keys,
    RL_CONFIG_KEY_SIZE_MAX and RL_CONFIG_VALUE_SIZE_MAX bytes (NUL
    included) per key and value.
*/
#ifndef RL_CONFIG_H
#define RL_CONFIG_H

#include <stddef.h>

#define RL_CONFIG_SIZE_MAX       (64 * 1024)
#define RL_CONFIG_ENTRIES_MAX    128
#define RL_CONFIG_KEY_SIZE_MAX   64
#define RL_CONFIG_VALUE_SIZE_MAX 1024

typedef struct {
    char key[RL_CONFIG_KEY_SIZE_MAX];
    char value[RL_CONFIG_VALUE_SIZE_MAX];
    int line; //  1-based
} config_entry_t;

typedef struct config_t config_t;

//  The pairs of text (text_size bytes, no NUL needed), in file order; NULL
//  with err set ("line N: why") when refused or out of memory.
config_t *config_parse (const char *text, size_t text_size, char *err, size_t err_size);
//  Reads and parses the file at path: a regular file of at most
//  RL_CONFIG_SIZE_MAX bytes. NULL with err set ("cannot read: why" or
//  "line N: why").
config_t *config_load (const char *path, char *err, size_t err_size);
void config_destroy (config_t **self_p);

size_t config_count (const config_t *self);
const config_entry_t *config_entry (const config_t *self, size_t index);

#endif
