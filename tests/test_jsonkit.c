/*  test_jsonkit.c: the JSON output of the tools and benchmarks
    (tools/jsonkit.h): exact 64-bit integers, fixed decimals, escaping by
    cJSON, the readers that the table printers use, and a tree that lost
    an item is never printed.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonkit.h"

//  Prints tree into a malloc'd string (through a temporary file).
static char *
s_print (const cJSON *tree, bool pretty, int *rc_p)
{
    FILE *out = tmpfile ();
    assert_non_null (out);
    *rc_p = jsonkit_print (out, tree, pretty);
    long size = ftell (out);
    rewind (out);
    char *text = calloc (1, (size_t) size + 1);
    assert_non_null (text);
    assert_int_equal (fread (text, 1, (size_t) size, out), (size_t) size);
    fclose (out);
    return text;
}

static void
test_u64_exact (void **state)
{
    (void) state;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_u64 (tree, "max", UINT64_MAX);
    jsonkit_add_u64 (tree, "ts", 1795619312367426601ull);
    jsonkit_add_integer_text (tree, "balance", "-15000");
    int rc = 0;
    char *text = s_print (tree, false, &rc);
    assert_int_equal (rc, 0);
    assert_string_equal (text, "{\"max\":18446744073709551615,\"ts\":1795619312367426601,"
                               "\"balance\":-15000}\n");
    //  The readers give back what went in, as the table printers need it.
    assert_true (jsonkit_u64 (tree, "max") == UINT64_MAX);
    assert_true (jsonkit_u64 (tree, "ts") == 1795619312367426601ull);
    assert_string_equal (jsonkit_text (tree, "balance"), "-15000");
    //  What cJSON parses back is a valid number.
    cJSON *parsed = cJSON_Parse (text);
    assert_non_null (parsed);
    assert_true (cJSON_IsNumber (cJSON_GetObjectItem (parsed, "ts")));
    cJSON_Delete (parsed);
    free (text);
    cJSON_Delete (tree);
}

static void
test_fixed_and_null (void **state)
{
    (void) state;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_fixed (tree, "ownership", 0.25, 9);
    jsonkit_add_fixed (tree, "tps", 1234.5678, 1);
    jsonkit_add_fixed (tree, "nan", NAN, 3);
    jsonkit_add_null (tree, "out");
    int rc = 0;
    char *text = s_print (tree, false, &rc);
    assert_int_equal (rc, 0);
    assert_string_equal (text,
                         "{\"ownership\":0.250000000,\"tps\":1234.6,\"nan\":null,\"out\":null}\n");
    assert_true (fabs (jsonkit_double (tree, "ownership") - 0.25) < 1e-12);
    free (text);
    cJSON_Delete (tree);
}

static void
test_strings_escaped (void **state)
{
    (void) state;
    cJSON *tree = jsonkit_object ();
    cJSON *list = jsonkit_add_array (tree, "shards");
    cJSON *shard = jsonkit_add_object (list, NULL);
    jsonkit_add_string (shard, "name", "a\"b\\c\n");
    jsonkit_add_bool (shard, "up", true);
    int rc = 0;
    char *text = s_print (tree, false, &rc);
    assert_int_equal (rc, 0);
    assert_string_equal (text, "{\"shards\":[{\"name\":\"a\\\"b\\\\c\\n\",\"up\":true}]}\n");
    assert_true (jsonkit_true (shard, "up"));
    assert_string_equal (jsonkit_text (shard, "name"), "a\"b\\c\n");
    //  Missing keys read as nothing, never as a crash.
    assert_string_equal (jsonkit_text (shard, "nope"), "");
    assert_true (jsonkit_u64 (shard, "nope") == 0);
    assert_false (jsonkit_has (shard, "nope"));
    free (text);
    cJSON_Delete (tree);
}

static void
test_incomplete_tree_refused (void **state)
{
    (void) state;
    cJSON *tree = jsonkit_object ();
    jsonkit_add_u64 (tree, "kept", 1);
    //  An add under a parent that failed (NULL) is a lost item.
    assert_null (jsonkit_add_u64 (NULL, "lost", 2));
    assert_true (jsonkit_failed ());
    int rc = 0;
    char *text = s_print (tree, false, &rc);
    assert_int_equal (rc, -1);
    assert_string_equal (text, "");
    free (text);
    cJSON_Delete (tree);
    //  A new tree starts clean.
    tree = jsonkit_object ();
    assert_false (jsonkit_failed ());
    cJSON_Delete (tree);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_u64_exact),
        cmocka_unit_test (test_fixed_and_null),
        cmocka_unit_test (test_strings_escaped),
        cmocka_unit_test (test_incomplete_tree_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
