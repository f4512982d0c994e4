/*  options.h: reading the numbers of a program's command line, one way for
    every program (shard, router).

    options_long accepts one whole number in min..max, in decimal: no
    trailing text, no overflow. Otherwise it says why on stderr, as
    "PROGRAM: OPTION must be a whole number in MIN..MAX, not 'TEXT'", and
    returns -1; the caller then prints its usage and exits 2.
*/
#ifndef RL_OPTIONS_H
#define RL_OPTIONS_H

//  0 and *out set, or -1 (said on stderr) with *out untouched.
int options_long (const char *program, const char *option, const char *text, long min, long max,
                  long *out);

#endif
