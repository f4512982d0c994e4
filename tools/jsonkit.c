/*  jsonkit.c: JSON output of the tools and benchmarks (see jsonkit.h). */
#include "jsonkit.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool s_failed = false;

//  Attaches item under parent (by key, or appended when key is NULL).
//  Takes item in every case: frees it when it cannot be attached.
static cJSON *
s_attach (cJSON *parent, const char *key, cJSON *item)
{
    bool attached = false;
    if (parent && item) {
        attached = key ? cJSON_AddItemToObject (parent, key, item)
                       : cJSON_AddItemToArray (parent, item);
    }
    if (!attached) {
        cJSON_Delete (item);
        s_failed = true;
        return NULL;
    }
    return item;
}

cJSON *
jsonkit_object (void)
{
    s_failed = false;
    cJSON *object = cJSON_CreateObject ();
    s_failed = object == NULL;
    return object;
}

cJSON *
jsonkit_add_object (cJSON *parent, const char *key)
{
    return s_attach (parent, key, cJSON_CreateObject ());
}

cJSON *
jsonkit_add_array (cJSON *parent, const char *key)
{
    return s_attach (parent, key, cJSON_CreateArray ());
}

cJSON *
jsonkit_add_string (cJSON *parent, const char *key, const char *text)
{
    assert (text);
    return s_attach (parent, key, cJSON_CreateString (text));
}

cJSON *
jsonkit_add_bool (cJSON *parent, const char *key, bool value)
{
    return s_attach (parent, key, cJSON_CreateBool (value));
}

cJSON *
jsonkit_add_null (cJSON *parent, const char *key)
{
    return s_attach (parent, key, cJSON_CreateNull ());
}

cJSON *
jsonkit_add_number (cJSON *parent, const char *key, double value)
{
    return s_attach (parent, key, cJSON_CreateNumber (value));
}

cJSON *
jsonkit_add_u64 (cJSON *parent, const char *key, uint64_t value)
{
    char literal[JSONKIT_LITERAL_SIZE_MAX];
    snprintf (literal, sizeof literal, "%" PRIu64, value);
    return s_attach (parent, key, cJSON_CreateRaw (literal));
}

cJSON *
jsonkit_add_integer_text (cJSON *parent, const char *key, const char *digits)
{
    assert (digits);
    size_t start = digits[0] == '-' ? 1 : 0;
    assert (digits[start] && strspn (digits + start, "0123456789") == strlen (digits + start));
    return s_attach (parent, key, cJSON_CreateRaw (digits));
}

cJSON *
jsonkit_add_fixed (cJSON *parent, const char *key, double value, int decimals)
{
    assert (decimals >= 0 && decimals <= 17);
    if (!isfinite (value)) {
        return jsonkit_add_null (parent, key);
    }
    char literal[JSONKIT_LITERAL_SIZE_MAX];
    int size = snprintf (literal, sizeof literal, "%.*f", decimals, value);
    if (size < 0 || (size_t) size >= sizeof literal) {
        //  Too large for a fixed literal: cJSON's own form of the double.
        return jsonkit_add_number (parent, key, value);
    }
    return s_attach (parent, key, cJSON_CreateRaw (literal));
}

int
jsonkit_print (FILE *out, const cJSON *tree, bool pretty)
{
    if (!tree || s_failed) {
        return -1;
    }
    char *text = pretty ? cJSON_Print (tree) : cJSON_PrintUnformatted (tree);
    if (!text) {
        return -1;
    }
    fprintf (out, "%s\n", text);
    cJSON_free (text);
    return 0;
}

bool
jsonkit_failed (void)
{
    return s_failed;
}

const cJSON *
jsonkit_get (const cJSON *object, const char *key)
{
    return object ? cJSON_GetObjectItemCaseSensitive (object, key) : NULL;
}

const char *
jsonkit_text (const cJSON *object, const char *key)
{
    const cJSON *item = jsonkit_get (object, key);
    if (item && (cJSON_IsString (item) || cJSON_IsRaw (item)) && item->valuestring) {
        return item->valuestring;
    }
    return "";
}

uint64_t
jsonkit_u64 (const cJSON *object, const char *key)
{
    const cJSON *item = jsonkit_get (object, key);
    if (item && cJSON_IsRaw (item) && item->valuestring) {
        return strtoull (item->valuestring, NULL, 10);
    }
    if (item && cJSON_IsNumber (item) && item->valuedouble > 0
        && item->valuedouble < 18446744073709551616.0) {
        return (uint64_t) item->valuedouble;
    }
    return 0;
}

double
jsonkit_double (const cJSON *object, const char *key)
{
    const cJSON *item = jsonkit_get (object, key);
    if (item && cJSON_IsRaw (item) && item->valuestring) {
        return strtod (item->valuestring, NULL);
    }
    return item && cJSON_IsNumber (item) ? item->valuedouble : 0;
}

bool
jsonkit_true (const cJSON *object, const char *key)
{
    return cJSON_IsTrue (jsonkit_get (object, key));
}

bool
jsonkit_has (const cJSON *object, const char *key)
{
    return jsonkit_get (object, key) != NULL;
}
