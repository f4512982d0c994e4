/*  rlctl_text.c: the text forms of rlctl (docs/cli.md): ids, numbers,
    times and account flags, parsed and printed. What to do next after a
    result or a status comes from the code tables of common/proto.h
    (rl_result_hint, rl_status_hint).

    IDS
    An id is a 128-bit number. On the command line it is decimal (up to
    2^64 - 1), 0x-prefixed hex (up to 32 digits) or a UUID
    (8-4-4-4-12 hex digits, read as one 128-bit big-endian number, the
    way it is written). On the wire the number is 16 little-endian bytes:
    lo = bits 0..63 (bytes 0..7), hi = bits 64..127 (bytes 8..15). So
    "1", "0x1" and "00000000-0000-0000-0000-000000000001" are the same id.
    Ids print in decimal when hi is 0, else as 0x and 32 hex digits.

    INVARIANTS
    1. rlctl_parse_id of the text of rlctl_id_text gives the same id.
    2. A parser accepts the whole text or returns -1.
*/
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rlctl.h"

//  Numbers and ids ------------------------------------------------------------

static int
s_hex_digit (char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

//  Up to 32 hex digits, most significant first, into a 128-bit number.
static int
s_parse_hex128 (const char *digits, size_t count, rl_id_t *id)
{
    if (count == 0 || count > 32) {
        return -1;
    }
    rl_id_t value = {0, 0};
    for (size_t i = 0; i < count; i++) {
        int d = s_hex_digit (digits[i]);
        if (d < 0) {
            return -1;
        }
        value.hi = (value.hi << 4) | (value.lo >> 60);
        value.lo = (value.lo << 4) | (uint64_t) d;
    }
    *id = value;
    return 0;
}

static int
s_parse_decimal_u64 (const char *text, uint64_t *value_p)
{
    if (!*text) {
        return -1;
    }
    uint64_t value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        uint64_t digit = (uint64_t) (*p - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            return -1;
        }
        value = value * 10 + digit;
    }
    *value_p = value;
    return 0;
}

//  Decimal or 0x-hex u64.
int
rlctl_parse_u64 (const char *text, uint64_t *value_p)
{
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        rl_id_t id;
        if (s_parse_hex128 (text + 2, strlen (text + 2), &id) || id.hi) {
            return -1;
        }
        *value_p = id.lo;
        return 0;
    }
    return s_parse_decimal_u64 (text, value_p);
}

//  Decimal (u64), 0x-hex (u128) or a UUID (8-4-4-4-12): see IDS above.
int
rlctl_parse_id (const char *text, rl_id_t *id)
{
    size_t size = strlen (text);
    if (size > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        return s_parse_hex128 (text + 2, size - 2, id);
    }
    if (size == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-') {
        char digits[32];
        size_t count = 0;
        for (size_t i = 0; i < size; i++) {
            if (i != 8 && i != 13 && i != 18 && i != 23) {
                digits[count++] = text[i];
            }
        }
        return s_parse_hex128 (digits, count, id);
    }
    id->hi = 0;
    return s_parse_decimal_u64 (text, &id->lo);
}

const char *
rlctl_id_text (rl_id_t id, char out[RLCTL_ID_TEXT_SIZE])
{
    if (id.hi == 0) {
        snprintf (out, RLCTL_ID_TEXT_SIZE, "%" PRIu64, id.lo);
    } else {
        snprintf (out, RLCTL_ID_TEXT_SIZE, "0x%016" PRIx64 "%016" PRIx64, id.hi, id.lo);
    }
    return out;
}

//  credits - debits, as text with a sign.
const char *
rlctl_balance_text (uint64_t credits, uint64_t debits, char out[RLCTL_NUMBER_TEXT_SIZE])
{
    if (credits >= debits) {
        snprintf (out, RLCTL_NUMBER_TEXT_SIZE, "%" PRIu64, credits - debits);
    } else {
        snprintf (out, RLCTL_NUMBER_TEXT_SIZE, "-%" PRIu64, debits - credits);
    }
    return out;
}

//  ns since the epoch -> "2026-11-25T14:25:01.123Z"; "-" for 0.
const char *
rlctl_time_text (uint64_t ns, char *out, size_t size)
{
    if (ns == 0) {
        snprintf (out, size, "-");
        return out;
    }
    time_t seconds = (time_t) (ns / 1000000000u);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char date[32];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out, size, "%s.%03uZ", date, (unsigned) (ns % 1000000000u / 1000000u));
    return out;
}

//  Account flags: names separated by commas, '-' or '_' between words.
int
rlctl_parse_account_flags (const char *text, uint16_t *flags_p)
{
    static const struct {
        const char *name;
        uint16_t bit;
    } known[] = {
        {"debits_must_not_exceed_credits", RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS},
        {"credits_must_not_exceed_debits", RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS},
        {"none", 0},
    };
    char word[64];
    uint16_t flags = 0;
    const char *p = text;
    while (true) {
        size_t size = strcspn (p, ",");
        if (size == 0 || size >= sizeof word) {
            return -1;
        }
        for (size_t i = 0; i < size; i++) {
            word[i] = p[i] == '-' ? '_' : p[i];
        }
        word[size] = 0;
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp (known[k].name, word)) {
            k++;
        }
        if (k == sizeof known / sizeof known[0]) {
            return -1;
        }
        flags |= known[k].bit;
        if (p[size] == 0) {
            break;
        }
        p += size + 1;
    }
    *flags_p = flags;
    return 0;
}

const char *
rlctl_account_flags_text (uint16_t flags)
{
    switch (flags) {
        case 0:
            return "none";
        case RL_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS:
            return "debits-must-not-exceed-credits";
        case RL_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS:
            return "credits-must-not-exceed-debits";
        default:
            return "other";
    }
}
