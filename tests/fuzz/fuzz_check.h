/*  fuzz_check.h: what the fuzz targets share.

    FUZZ_CHECK states a property of a decoder beyond "no crash" (a round
    trip, a size rule); when it does not hold, the target prints it and
    aborts, which libFuzzer reports as a crash with the input that caused
    it, and which fails a corpus replay (replay_main.c).

    Every target defines LLVMFuzzerTestOneInput and nothing else global,
    so that one source builds both the libFuzzer binary (clang) and the
    replay program (any compiler).
*/
#ifndef RL_FUZZ_CHECK_H
#define RL_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf (stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #condition);      \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#endif
