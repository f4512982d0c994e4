/*  ring_text.c: the text form of a ring (docs/ring.md), and the atomic
    load and save of a ring file.

    The text form is line-oriented so that operators can read, edit and
    diff it; one point per line, sorted by position, so two rings diff
    cleanly:

        # comment                          (whole lines only)
        epoch 7                            (exactly once)
        points_per_weight 128              (at most once)
        shard NAME ENDPOINT weight W [key Z85]
                                           (before the points naming it; the
                                           key is the shard's CURVE public
                                           key, 40 Z85 characters, optional)
        point 0123456789abcdef NAME        (16 hex digits, any order)

    A ring with shards and no point lines is placed by adding its shards
    in file order, as ring_add_shard would.

    INVARIANTS
    1. The parser trusts nothing: every line is checked, and an error names
       its line ("line 7: ..."); a shard without points is named by its
       'shard' line, a missing epoch or shard by the last line.
    2. A loaded ring keeps the invariants of ring.c: shard records go
       through ring_i_append_shard, points are sorted and checked for
       duplicates before they are installed, owned[] is recounted.
    3. to_text -> from_text -> to_text is byte-identical: points sorted and
       lower-case, weights in the shortest form that reads back the same.
    4. ring_save_file is atomic: PATH.tmp is written, fsynced, renamed over
       PATH and the directory fsynced, so a crash leaves the old file or the
       new one; on failure PATH is untouched and PATH.tmp removed.

    LIMITS
    RING_TEXT_LINE_SIZE_MAX bytes per line, RING_TEXT_FILE_SIZE_MAX bytes
    per file (ring.h), S_TOKENS_MAX tokens per line (more is "extra
    tokens"), RING_POINTS_MAX points, RL_SHARDS_MAX shards, and paths below
    4096 bytes for the save. ring_load_file reads the whole file into one
    buffer that grows with the file, to at most RING_TEXT_FILE_SIZE_MAX + 2
    bytes.
*/
#include "ring.h"
#include "ring_internal.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_TOKENS_MAX 8

typedef struct {
    uint64_t position;
    uint16_t owner;
    int line;
} s_text_point_t;

typedef struct {
    char *err;
    size_t err_size;
    int line;               //  current line number, from 1
    int epoch_line;         //  line of the epoch key, 0 if none yet
    int ppw_line;           //  line of points_per_weight, 0 if none yet
    ring_t *ring;           //  shards as declared, no points yet
    int *shard_lines;       //  [RL_SHARDS_MAX] line of each shard
    s_text_point_t *points; //  points as read
    size_t point_count;
    size_t point_capacity;
} s_parser_t;

static int
s_parse_u64 (const char *token, uint64_t *value_p)
{
    if (!isdigit ((unsigned char) token[0])) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (token, &end, 10);
    if (errno || *end) {
        return -1;
    }
    *value_p = value;
    return 0;
}

static int
s_parse_hex64 (const char *token, uint64_t *value_p)
{
    if (strlen (token) != 16) {
        return -1;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < 16; i++) {
        int c = tolower ((unsigned char) token[i]);
        if (!isxdigit (c)) {
            return -1;
        }
        value = (value << 4) | (uint64_t) (isdigit (c) ? c - '0' : c - 'a' + 10);
    }
    *value_p = value;
    return 0;
}

static int
s_expect_tokens (s_parser_t *parser, size_t count, size_t expected, const char *usage)
{
    if (count < expected) {
        ring_i_error (parser->err, parser->err_size, parser->line, "truncated line, expected '%s'",
                      usage);
        return -1;
    }
    if (count > expected) {
        ring_i_error (parser->err, parser->err_size, parser->line, "extra tokens, expected '%s'",
                      usage);
        return -1;
    }
    return 0;
}

static int
s_parse_epoch (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 2, "epoch N")) {
        return -1;
    }
    uint64_t epoch;
    if (parser->epoch_line) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "duplicate 'epoch' (first on line %d)", parser->epoch_line);
        return -1;
    }
    if (s_parse_u64 (tokens[1], &epoch)) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "epoch '%s' is not a decimal number below 2^64", tokens[1]);
        return -1;
    }
    parser->epoch_line = parser->line;
    ring_set_epoch (parser->ring, epoch);
    return 0;
}

static int
s_parse_ppw (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 2, "points_per_weight N")) {
        return -1;
    }
    uint64_t value;
    if (parser->ppw_line) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "duplicate 'points_per_weight' (first on line %d)", parser->ppw_line);
        return -1;
    }
    if (s_parse_u64 (tokens[1], &value) || value < 1 || value > RING_POINTS_PER_WEIGHT_MAX) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "points_per_weight '%s' is not a number in 1..%d", tokens[1],
                      RING_POINTS_PER_WEIGHT_MAX);
        return -1;
    }
    parser->ppw_line = parser->line;
    ring_set_points_per_weight (parser->ring, (uint32_t) value);
    return 0;
}

static int
s_check_name (s_parser_t *parser, const char *name)
{
    if (strlen (name) >= RL_SHARD_NAME_SIZE_MAX) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "shard name '%.40s...' is longer than %d bytes", name,
                      RL_SHARD_NAME_SIZE_MAX - 1);
        return -1;
    }
    if (!ring_i_name_valid (name)) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "shard name '%s' may hold only letters, digits, '.', '_' and '-'", name);
        return -1;
    }
    return 0;
}

static int
s_parse_shard (s_parser_t *parser, char **tokens, size_t count)
{
    const char *usage = "shard NAME ENDPOINT weight W [key Z85]";
    if (s_expect_tokens (parser, count, count == 7 ? 7 : 5, usage)) {
        return -1;
    }
    if (s_check_name (parser, tokens[1])) {
        return -1;
    }
    int other = ring_shard_find (parser->ring, tokens[1]);
    if (other >= 0) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "duplicate shard '%s' (first on line %d)", tokens[1],
                      parser->shard_lines[other]);
        return -1;
    }
    //  The bytes only, as a binary ring's: every ring that decodes has a
    //  text form that reads back (the tools check the form where an
    //  endpoint is typed: ring_add_shard, ring_set_endpoint).
    if (!ring_i_endpoint_chars_valid (tokens[2])) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "endpoint of shard '%s' must be 1..%d printable bytes without quotes",
                      tokens[1], RL_ENDPOINT_SIZE_MAX - 1);
        return -1;
    }
    char *end = NULL;
    double weight = strtod (tokens[4], &end);
    if (strcmp (tokens[3], "weight") || *end || !ring_i_weight_valid (weight)) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "expected 'weight W' with W a number in %g..%g, got '%s %s'", RING_WEIGHT_MIN,
                      RL_RING_WEIGHT_MAX, tokens[3], tokens[4]);
        return -1;
    }
    if (ring_shard_count (parser->ring) >= RL_SHARDS_MAX) {
        ring_i_error (parser->err, parser->err_size, parser->line, "more than %d shards",
                      RL_SHARDS_MAX);
        return -1;
    }
    if (count == 7 && (strcmp (tokens[5], "key") || !ring_i_key_valid (tokens[6]))) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "expected 'key Z85' with %d Z85 characters, got '%.8s %.48s'", RING_KEY_SIZE,
                      tokens[5], tokens[6]);
        return -1;
    }
    parser->shard_lines[ring_shard_count (parser->ring)] = parser->line;
    int rc = ring_i_append_shard (parser->ring, tokens[1], tokens[2], weight);
    if (rc == 0 && count == 7) {
        rc = ring_set_key (parser->ring, tokens[1], tokens[6]);
    }
    if (rc) {
        ring_i_error (parser->err, parser->err_size, parser->line, "%s", ring_strerror (rc));
        return -1;
    }
    return 0;
}

static int
s_parse_point (s_parser_t *parser, char **tokens, size_t count)
{
    if (s_expect_tokens (parser, count, 3, "point HEX16 NAME")) {
        return -1;
    }
    uint64_t position;
    if (s_parse_hex64 (tokens[1], &position)) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "point position '%s' is not 16 hex digits", tokens[1]);
        return -1;
    }
    int owner = ring_shard_find (parser->ring, tokens[2]);
    if (owner < 0) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "point names unknown shard '%s' (declare it above with a 'shard' line)",
                      tokens[2]);
        return -1;
    }
    if (parser->point_count == parser->point_capacity) {
        if (parser->point_count >= RING_POINTS_MAX) {
            ring_i_error (parser->err, parser->err_size, parser->line, "more than %zu points",
                          (size_t) RING_POINTS_MAX);
            return -1;
        }
        size_t capacity = parser->point_capacity ? parser->point_capacity * 2 : 256;
        void *points = realloc (parser->points, capacity * sizeof (s_text_point_t));
        if (!points) {
            ring_i_error (parser->err, parser->err_size, parser->line, "out of memory");
            return -1;
        }
        parser->points = (s_text_point_t *) points;
        parser->point_capacity = capacity;
    }
    parser->points[parser->point_count++] = (s_text_point_t){position, (uint16_t) owner,
                                                             parser->line};
    return 0;
}

//  Splits a line in place into tokens; returns the count (S_TOKENS_MAX + 1
//  means "more than S_TOKENS_MAX").
static size_t
s_tokenize (char *line, char **tokens)
{
    size_t count = 0;
    char *cursor = line;
    while (*cursor) {
        while (*cursor == ' ' || *cursor == '\t') {
            *cursor++ = 0;
        }
        if (!*cursor) {
            break;
        }
        if (count == S_TOKENS_MAX) {
            return S_TOKENS_MAX + 1;
        }
        tokens[count++] = cursor;
        while (*cursor && *cursor != ' ' && *cursor != '\t') {
            cursor++;
        }
    }
    return count;
}

static int
s_parse_line (s_parser_t *parser, char *line)
{
    char *tokens[S_TOKENS_MAX];
    size_t count = s_tokenize (line, tokens);
    if (count == 0 || tokens[0][0] == '#') {
        return 0;
    }
    if (strcmp (tokens[0], "epoch") == 0) {
        return s_parse_epoch (parser, tokens, count);
    }
    if (strcmp (tokens[0], "points_per_weight") == 0) {
        return s_parse_ppw (parser, tokens, count);
    }
    if (strcmp (tokens[0], "shard") == 0) {
        return s_parse_shard (parser, tokens, count);
    }
    if (strcmp (tokens[0], "point") == 0) {
        return s_parse_point (parser, tokens, count);
    }
    ring_i_error (parser->err, parser->err_size, parser->line,
                  "unknown key '%.40s' (expected epoch, points_per_weight, shard or point)",
                  tokens[0]);
    return -1;
}

static int
s_text_point_compare (const void *left, const void *right)
{
    const s_text_point_t *a = (const s_text_point_t *) left;
    const s_text_point_t *b = (const s_text_point_t *) right;
    if (a->position != b->position) {
        return a->position < b->position ? -1 : 1;
    }
    return a->line < b->line ? -1 : a->line > b->line;
}

//  Moves the parsed points into the ring after checking them.
static int
s_install_points (s_parser_t *parser)
{
    ring_t *ring = parser->ring;
    qsort (parser->points, parser->point_count, sizeof (s_text_point_t), s_text_point_compare);
    if (ring_i_reserve_points (ring, parser->point_count)) {
        ring_i_error (parser->err, parser->err_size, parser->line, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < parser->point_count; i++) {
        const s_text_point_t *point = &parser->points[i];
        if (i > 0 && point->position == parser->points[i - 1].position) {
            ring_i_error (parser->err, parser->err_size, point->line,
                          "duplicate point position %016" PRIx64 " (also on line %d)",
                          point->position, parser->points[i - 1].line);
            return -1;
        }
        ring->positions[i] = point->position;
        ring->owners[i] = point->owner;
    }
    ring->point_count = parser->point_count;
    for (size_t x = 0; x < ring->shard_count; x++) {
        if (ring_shard_point_count (ring, x) == 0) {
            ring_i_error (parser->err, parser->err_size, parser->shard_lines[x],
                          "shard '%s' has no points", ring->shards[x].name);
            return -1;
        }
    }
    ring_i_recount (ring);
    return 0;
}

//  A ring file with shards and no point lines: add the shards in file order.
static int
s_build_points (s_parser_t *parser)
{
    ring_t *built = ring_new (ring_epoch (parser->ring));
    if (!built) {
        ring_i_error (parser->err, parser->err_size, parser->line, "out of memory");
        return -1;
    }
    built->points_per_weight = parser->ring->points_per_weight;
    for (size_t x = 0; x < parser->ring->shard_count; x++) {
        const ring_i_shard_t *shard = &parser->ring->shards[x];
        int rc = ring_add_shard (built, shard->name, shard->endpoint, shard->weight);
        if (rc == 0) {
            rc = ring_set_key (built, shard->name, shard->key);
        }
        if (rc) {
            ring_i_error (parser->err, parser->err_size, parser->shard_lines[x],
                          "cannot place shard '%s': %s", shard->name, ring_strerror (rc));
            ring_destroy (&built);
            return -1;
        }
    }
    ring_destroy (&parser->ring);
    parser->ring = built;
    return 0;
}

static int
s_parse_finish (s_parser_t *parser)
{
    if (!parser->epoch_line) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "end of ring without an 'epoch N' line");
        return -1;
    }
    if (parser->ring->shard_count == 0) {
        ring_i_error (parser->err, parser->err_size, parser->line,
                      "end of ring without shards (add 'shard NAME ENDPOINT weight W' lines)");
        return -1;
    }
    if (parser->point_count == 0) {
        return s_build_points (parser);
    }
    return s_install_points (parser);
}

static int
s_parse_lines (s_parser_t *parser, const char *text)
{
    char line[RING_TEXT_LINE_SIZE_MAX + 1];
    const char *cursor = text;
    while (*cursor) {
        parser->line++;
        const char *newline = strchr (cursor, '\n');
        size_t size = newline ? (size_t) (newline - cursor) : strlen (cursor);
        if (size > 0 && cursor[size - 1] == '\r') {
            size--;
        }
        if (size > RING_TEXT_LINE_SIZE_MAX) {
            ring_i_error (parser->err, parser->err_size, parser->line, "line longer than %d bytes",
                          RING_TEXT_LINE_SIZE_MAX);
            return -1;
        }
        memcpy (line, cursor, size);
        line[size] = 0;
        if (s_parse_line (parser, line)) {
            return -1;
        }
        cursor = newline ? newline + 1 : cursor + strlen (cursor);
    }
    return 0;
}

ring_t *
ring_from_text (const char *text, char *err, size_t err_size)
{
    assert (text);
    s_parser_t parser = {.err = err, .err_size = err_size};
    ring_i_error (err, err_size, 0, "no error");
    parser.ring = ring_new (0);
    parser.shard_lines = (int *) calloc (RL_SHARDS_MAX, sizeof (int));
    int rc = -1;
    if (!parser.ring || !parser.shard_lines) {
        ring_i_error (err, err_size, 0, "out of memory");
    } else if (s_parse_lines (&parser, text) == 0) {
        rc = s_parse_finish (&parser);
    }
    free (parser.shard_lines);
    free (parser.points);
    if (rc) {
        ring_destroy (&parser.ring);
    }
    return parser.ring;
}

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
    int failed;
} s_buffer_t;

static void
s_append (s_buffer_t *buffer, const char *format, ...)
{
    if (buffer->failed) {
        return;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list args;
        va_start (args, format);
        size_t room = buffer->capacity - buffer->size;
        int size = vsnprintf (buffer->data + buffer->size, room, format, args);
        va_end (args);
        if (size < 0) {
            buffer->failed = 1;
            return;
        }
        if ((size_t) size < room) {
            buffer->size += (size_t) size;
            return;
        }
        size_t capacity = buffer->capacity * 2 + (size_t) size + 1;
        char *data = (char *) realloc (buffer->data, capacity);
        if (!data) {
            buffer->failed = 1;
            return;
        }
        buffer->data = data;
        buffer->capacity = capacity;
    }
}

//  Shortest of %.15g and %.17g that reads back to the same double.
static void
s_format_weight (double weight, char *out, size_t out_size)
{
    snprintf (out, out_size, "%.15g", weight);
    if (strtod (out, NULL) != weight) {
        snprintf (out, out_size, "%.17g", weight);
    }
}

char *
ring_to_text (const ring_t *self)
{
    assert (self);
    s_buffer_t buffer = {NULL, 0, 0, 0};
    buffer.capacity = 256 + self->shard_count * 250 + self->point_count * 56;
    buffer.data = (char *) malloc (buffer.capacity);
    if (!buffer.data) {
        return NULL;
    }
    buffer.data[0] = 0;
    s_append (&buffer, "# ringledger ring: %zu shards, %zu points (docs/ring.md)\n",
              self->shard_count, self->point_count);
    s_append (&buffer, "epoch %" PRIu64 "\n", self->epoch);
    s_append (&buffer, "points_per_weight %" PRIu32 "\n", self->points_per_weight);
    for (size_t x = 0; x < self->shard_count; x++) {
        char weight[40];
        s_format_weight (self->shards[x].weight, weight, sizeof weight);
        const ring_i_shard_t *shard = &self->shards[x];
        s_append (&buffer, "shard %s %s weight %s%s%s\n", shard->name, shard->endpoint, weight,
                  *shard->key ? " key " : "", shard->key);
    }
    for (size_t i = 0; i < self->point_count; i++) {
        s_append (&buffer, "point %016" PRIx64 " %s\n", self->positions[i],
                  self->shards[self->owners[i]].name);
    }
    if (buffer.failed) {
        free (buffer.data);
        return NULL;
    }
    return buffer.data;
}

//  Reads a whole file, NUL-terminated; NULL with err set on failure. The
//  buffer grows with what is read (doubling from S_READ_SIZE_INITIAL), so
//  a small ring file costs a small buffer; reading stops one byte past
//  RING_TEXT_FILE_SIZE_MAX.
#define S_READ_SIZE_INITIAL (64u << 10)

static char *
s_read_file (const char *path, char *err, size_t err_size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        ring_i_error (err, err_size, 0, "%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    char *data = NULL;
    size_t capacity = 0; //  bytes of data, the NUL's included
    size_t size = 0;
    int failed = 0;
    //  Bounded: each turn reads into a larger buffer, up to the limit + 2.
    while (!failed && size <= RING_TEXT_FILE_SIZE_MAX && !feof (file)) {
        if (size + 1 >= capacity) {
            size_t grown = capacity ? capacity * 2 : S_READ_SIZE_INITIAL;
            if (grown > (size_t) RING_TEXT_FILE_SIZE_MAX + 2) {
                grown = (size_t) RING_TEXT_FILE_SIZE_MAX + 2;
            }
            char *larger = (char *) realloc (data, grown);
            if (!larger) {
                failed = 1;
                break;
            }
            data = larger;
            capacity = grown;
        }
        size += fread (data + size, 1, capacity - 1 - size, file);
        failed = ferror (file);
    }
    fclose (file);
    if (failed || size > RING_TEXT_FILE_SIZE_MAX || memchr (data, 0, size)) {
        ring_i_error (err, err_size, 0, "%s: %s", path,
                      failed ? "cannot read" : "larger than the limit or holds NUL bytes");
        free (data);
        return NULL;
    }
    assert (data && size < capacity); //  the loop ran at least once, and left room
    data[size] = 0;
    return data;
}

ring_t *
ring_load_file (const char *path, char *err, size_t err_size)
{
    assert (path);
    char *text = s_read_file (path, err, err_size);
    if (!text) {
        return NULL;
    }
    char message[256];
    ring_t *ring = ring_from_text (text, message, sizeof message);
    free (text);
    if (!ring) {
        ring_i_error (err, err_size, 0, "%s: %s", path, message);
    }
    return ring;
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            errno = written < 0 ? errno : EIO;
            return -1;
        }
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

static int
s_sync_directory (const char *path)
{
    char copy[4096];
    if (strlen (path) >= sizeof copy) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy (copy, path);
    int fd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync (fd);
    int saved = errno;
    close (fd);
    errno = saved;
    return rc;
}

//  Writes text to temp, syncs it and renames it to path; -1 with errno.
static int
s_replace_file (const char *temp, const char *path, const char *text)
{
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    int rc = s_write_all (fd, text, strlen (text));
    if (rc == 0) {
        rc = fsync (fd);
    }
    int saved = errno;
    if (close (fd) && rc == 0) {
        saved = errno;
        rc = -1;
    }
    if (rc == 0 && rename (temp, path)) {
        saved = errno;
        rc = -1;
    }
    if (rc) {
        unlink (temp);
        errno = saved;
        return -1;
    }
    return s_sync_directory (path);
}

int
ring_save_file (const ring_t *self, const char *path)
{
    assert (self);
    assert (path);
    if (self->shard_count == 0) {
        return RING_ERR_INVALID;
    }
    char temp[4096];
    if (snprintf (temp, sizeof temp, "%s.tmp", path) >= (int) sizeof temp) {
        errno = ENAMETOOLONG;
        return RING_ERR_IO;
    }
    char *text = ring_to_text (self);
    if (!text) {
        return RING_ERR_NOMEM;
    }
    int rc = s_replace_file (temp, path, text);
    int saved = errno;
    free (text);
    errno = saved;
    return rc ? RING_ERR_IO : RING_OK;
}
