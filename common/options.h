/*  options.h: reading a program's command line and its config file, one
    way for every program (shard, router).

    options_long accepts one whole number in min..max, in decimal: no
    trailing text, no overflow. Otherwise it says why on stderr, as
    "PROGRAM: OPTION must be a whole number in MIN..MAX, not 'TEXT'", and
    returns -1; the caller then prints its usage and exits 2.

    options_args_new reads --config FILE (config.h) into the command line:
    every key of the file is the long name of an option, so every option
    has a key, and the program parses the file's options and its flags with
    one getopt_long loop. The file's options come first, so a flag given on
    the command line overrides the file's value (the last one wins). A key
    of a flag (an option without a value, such as insecure) takes true (the
    flag is given) or false (it is not). help, config and check-config are
    not keys.
*/
#ifndef RL_OPTIONS_H
#define RL_OPTIONS_H

#include <getopt.h>

//  getopt_long values of the options every program has, above any
//  character a program's own options use.
#define OPTIONS_LOG_FORMAT   0x101 //  --log-format text|json
#define OPTIONS_LOG_LEVEL    0x102 //  --log-level debug|info|warn|error
#define OPTIONS_CHECK_CONFIG 0x103 //  --check-config

//  0 and *out set, or -1 (said on stderr) with *out untouched.
int options_long (const char *program, const char *option, const char *text, long min, long max,
                  long *out);

typedef struct {
    int argc;
    char **argv;      //  argv[0], "--KEY=VALUE" per key of the file, then the flags
    int *lines;       //  per argv entry: the file's line it came from, or 0
    const char *path; //  the config file, or NULL
    char *storage;    //  the file's options (one allocation)
} options_args_t;

//  Fills self from argv and, with --config FILE (or --config=FILE) in argv,
//  the file; longs: the program's options (without config). 0, or -1 after
//  saying why on stderr ("PROGRAM: --config FILE: why"): no such file, not
//  readable, too large, a syntax error, a key that names no option, a flag
//  whose value is not true or false, --config given twice.
int options_args_new (options_args_t *self, const char *program, int argc, char **argv,
                      const struct option *longs);
void options_args_free (options_args_t *self);
//  After getopt_long refused the option at argv index `index`: when it
//  came from the file, says so on stderr ("... line N of FILE").
void options_args_blame (const options_args_t *self, const char *program, int index);

#endif
