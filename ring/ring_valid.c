/*  ring_valid.c: what a ring may hold, and the words for what went wrong.

    Every shard record reaches a ring through one of three doors:
    ring_add_shard and the edits of ring.c, the text loader (ring_text.c)
    and the binary loader (ring_blob.c). All three check each field with
    the functions below, so a ring file or a wire blob cannot hold what
    ring_add_shard would refuse. The messages (ring_strerror for the
    RING_ERR_ codes, ring_i_error for the loaders' "line N: ..." texts)
    live here too.

    INVARIANTS
    1. Pure: no state, no allocation; the same field gets the same answer
       everywhere (no locale: the character classes are ASCII).
    2. A name, endpoint or key that passes is safe in the text form, in
       JSON and on a command line: no space, quote, backslash or control
       byte.
    3. ring_i_error never writes past err_size and always terminates err
       when err_size > 0.

    LIMITS
    Names below RL_SHARD_NAME_SIZE_MAX bytes, endpoints below
    RL_ENDPOINT_SIZE_MAX bytes, keys exactly RING_KEY_SIZE characters,
    weights in RING_WEIGHT_MIN..RL_RING_WEIGHT_MAX.
*/
#include "ring.h"
#include "ring_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

//  Messages ------------------------------------------------------------------

const char *
ring_strerror (int rc)
{
    switch (rc) {
        case RING_OK:
            return "ok";
        case RING_ERR_NOMEM:
            return "out of memory";
        case RING_ERR_EXISTS:
            return "a shard of that name already exists";
        case RING_ERR_NOT_FOUND:
            return "no shard of that name";
        case RING_ERR_INVALID:
            return "invalid name, endpoint or weight";
        case RING_ERR_FULL:
            return "too many shards or points";
        case RING_ERR_PARSE:
            return "malformed ring";
        case RING_ERR_IO:
            return "input/output error (see errno)";
        default:
            return "unknown error";
    }
}

//  Validation of one field, shared with the loaders (ring_internal.h) -----

//  Shard names: 1..31 bytes of [A-Za-z0-9._-], so they are safe in the
//  text form, in JSON, and on a command line.
int
ring_i_name_valid (const char *name)
{
    size_t size = strnlen (name, RL_SHARD_NAME_SIZE_MAX);
    if (size == 0 || size >= RL_SHARD_NAME_SIZE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) name[i];
        if (!isalnum (c) && c != '.' && c != '_' && c != '-') {
            return 0;
        }
    }
    return 1;
}

//  The bytes of an endpoint: 1..127 of printable ASCII, no space, quote
//  or backslash. What every shard record must hold, however it arrives
//  (ring_i_append_shard): a binary ring (stored, on the wire, in a backup
//  set) made before the form below was checked still decodes.
int
ring_i_endpoint_chars_valid (const char *endpoint)
{
    size_t size = strnlen (endpoint, RL_ENDPOINT_SIZE_MAX);
    if (size == 0 || size >= RL_ENDPOINT_SIZE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) endpoint[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\') {
            return 0;
        }
    }
    return 1;
}

//  Endpoints where they are typed (ring_add_shard, ring_set_endpoint, the
//  programs' options): those bytes, in one of ZeroMQ's forms a shard serves:
//  tcp://HOST:PORT (HOST not empty, PORT 1..65535 in decimal: ZeroMQ itself would take 99999 as
//  34463, and a missing port as none), ipc://PATH or inproc://NAME (not empty).
int
ring_i_endpoint_valid (const char *endpoint)
{
    if (!ring_i_endpoint_chars_valid (endpoint)) {
        return 0;
    }
    if (strncmp (endpoint, "ipc://", 6) == 0 || strncmp (endpoint, "inproc://", 9) == 0) {
        return strstr (endpoint, "://")[3] != '\0';
    }
    if (strncmp (endpoint, "tcp://", 6) != 0) {
        return 0;
    }
    const char *colon = strrchr (endpoint + 6, ':');
    if (!colon || colon == endpoint + 6) {
        return 0; //  no port, or no host
    }
    unsigned long port = 0;
    const char *p = colon + 1;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++) {
        port = port * 10 + (unsigned long) (*p - '0');
    }
    return *p == '\0' && p > colon + 1 && port >= 1 && port <= 65535;
}

int
ring_endpoint_valid (const char *endpoint)
{
    return endpoint && ring_i_endpoint_valid (endpoint);
}

//  Keys: exactly RING_KEY_SIZE characters of the Z85 alphabet (ZeroMQ RFC
//  32), the text form of a 32-byte CURVE public key.
int
ring_i_key_valid (const char *key)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (strnlen (key, RING_KEY_SIZE + 1) != RING_KEY_SIZE) {
        return 0;
    }
    for (size_t i = 0; i < RING_KEY_SIZE; i++) {
        if (!key[i] || !strchr (alphabet, key[i])) {
            return 0;
        }
    }
    return 1;
}

int
ring_i_weight_valid (double weight)
{
    return isfinite (weight) && weight >= RING_WEIGHT_MIN && weight <= RL_RING_WEIGHT_MAX;
}

void
ring_i_error (char *err, size_t err_size, int line, const char *format, ...)
{
    if (!err || err_size == 0) {
        return;
    }
    int size = line > 0 ? snprintf (err, err_size, "line %d: ", line) : 0;
    if (size < 0 || (size_t) size >= err_size) {
        return;
    }
    va_list args;
    va_start (args, format);
    vsnprintf (err + size, err_size - (size_t) size, format, args);
    va_end (args);
}
