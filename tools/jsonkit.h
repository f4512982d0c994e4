/*  jsonkit.h: JSON output of the tools and benchmarks, through cJSON.

    Every program of tools/ and bench/ builds its output as one cJSON tree
    and prints it with jsonkit_print; rlctl's tables are printed from the
    same tree, so the table and the JSON cannot disagree. No program writes
    JSON punctuation or escapes strings itself.

    DESIGN
    A cJSON number is a double: it holds integers exactly only up to 2^53,
    and prints with up to 17 significant digits. Timestamps in ns, amounts
    and counters are 64-bit, so they go in as number literals that cJSON
    copies verbatim (cJSON_CreateRaw): jsonkit_add_u64 writes the decimal
    value, jsonkit_add_fixed a double with a fixed count of decimals (the
    precision a report promises). The literals are made by printf of a
    number, so they are always valid JSON numbers (or null).

    INVARIANTS
    1. A tree that lost an item to a failed allocation is never printed:
       every jsonkit_add_* records a failure in the failure flag, and
       jsonkit_print refuses to print while it is set. The flag is one per
       process (a program builds one tree at a time); jsonkit_object
       clears it.
    2. Readers (jsonkit_u64, jsonkit_text, ...) accept a missing key and
       answer 0 or "", so a table printer never dereferences NULL.

    LIMITS
    Literals up to JSONKIT_LITERAL_SIZE_MAX - 1 characters.
*/
#ifndef RL_JSONKIT_H
#define RL_JSONKIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define JSONKIT_LITERAL_SIZE_MAX 64 //  a number literal, with its sign and NUL

//  A new object; NULL when out of memory.
cJSON *jsonkit_object (void);
//  Adds to object (or to an array when key is NULL). Each returns the new
//  item, or NULL after marking the failure (invariant 1).
cJSON *jsonkit_add_object (cJSON *parent, const char *key);
cJSON *jsonkit_add_array (cJSON *parent, const char *key);
cJSON *jsonkit_add_string (cJSON *parent, const char *key, const char *text);
cJSON *jsonkit_add_bool (cJSON *parent, const char *key, bool value);
cJSON *jsonkit_add_null (cJSON *parent, const char *key);
//  An integer up to 2^53 exactly, or any double (cJSON's own formatting).
cJSON *jsonkit_add_number (cJSON *parent, const char *key, double value);
//  Decimal literal of a 64-bit value, exact.
cJSON *jsonkit_add_u64 (cJSON *parent, const char *key, uint64_t value);
//  A literal already formatted as a JSON number by the caller's printf
//  (for signed differences of two u64, ...); must match -?[0-9]+.
cJSON *jsonkit_add_integer_text (cJSON *parent, const char *key, const char *digits);
//  value with `decimals` digits after the point; null when not finite.
cJSON *jsonkit_add_fixed (cJSON *parent, const char *key, double value, int decimals);

//  Prints the tree (formatted when pretty) and a newline to out.
//  0, or -1 when the tree is incomplete or printing ran out of memory.
int jsonkit_print (FILE *out, const cJSON *tree, bool pretty);
//  True when an add has failed since the last jsonkit_object.
bool jsonkit_failed (void);

//  Readers (invariant 2).
const cJSON *jsonkit_get (const cJSON *object, const char *key);
//  A string's text or a literal's digits; "" when missing.
const char *jsonkit_text (const cJSON *object, const char *key);
uint64_t jsonkit_u64 (const cJSON *object, const char *key);
double jsonkit_double (const cJSON *object, const char *key);
bool jsonkit_true (const cJSON *object, const char *key);
bool jsonkit_has (const cJSON *object, const char *key);

#endif
