/*  options.c: reading the numbers of a command line. See options.h.

    INVARIANTS
    1. *out changes only when the whole text is a number within the bounds.
    2. Every refusal names the program, the option, the bounds and the text.
*/
#include "options.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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
