/*  fuzz_config.c: libFuzzer target of what configures a process: the
    numbers of its command line (common/options.c), its config file
    (common/config.c, and options.c turning it into options), the RL_FAILPOINTS
    variable (common/failpoint.c), the ring file named by --ring
    (ring_load_file, ring/ring_text.c), and the keys (common/keys.c): a
    public key given as Z85 text, and a certificate file.

    The first input byte picks the parser; the rest is its input:
        0  RL_FAILPOINTS="rest" (cut at the first NUL), failpoint_init
        1  a ring file holding rest, through ring_load_file (a memfd, read
           through /proc/self/fd)
        2  rest (cut at the first NUL) as a key: rl_key_valid, rl_key_resolve
        3  a certificate file holding rest (mode 0600, in a private
           directory): rl_cert_load and rl_key_resolve
        4  an option's value: bounds from the first 16 bytes of rest, the
           text (cut at the first NUL) after them, to options_long
        5  a config file holding rest: config_parse, then options_args_new
           and getopt_long over a table of options like a program's

    PROPERTIES (beyond "no crash")
    1. failpoint_init accepts a spec only when every entry names a known
       failpoint; a refusal says why (err is a non-empty C string).
    2. A refused spec arms nothing, and a later init without the variable
       disarms everything.
    3. ring_load_file and ring_from_text agree on a file without NUL bytes:
       both refuse it, or both give the same ring (the same blob); a file
       with a NUL byte is refused.
    4. A key text that rl_key_valid accepts is canonical: it is 40
       characters, and its 32 bytes encode back to the same text (so one
       key has one text, and key sets compare texts safely).
    5. A certificate that rl_cert_load accepts has a valid public key and
       a secret key, and rl_key_resolve gives that public key; a key or
       file that rl_key_resolve accepts gives a valid key.
    6. options_long accepts a value only within its bounds, as strtol
       reads the whole text; a refused value leaves the output untouched.
    7. config_parse accepts only files whose every entry has a unique key
       of a-z, 0-9 and '-' and a non-empty value without control bytes; a
       file it accepts, czmq's zconfig reads to the same pairs in the same
       order, without sections; a refusal names a line ("line N: ...") or
       the size. A file of known keys becomes exactly one option per
       entry (flags set false: none), read back by getopt_long.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include <czmq.h>
#include <getopt.h>

#include "config.h"
#include "failpoint.h"
#include "fuzz_check.h"
#include "keys.h"
#include "options.h"
#include "ring.h"

#define S_MODES 6

//  Property 1: every comma-separated entry's name (before '=') is known.
static bool
s_names_known (const char *spec)
{
    const char *entry = spec;
    while (*entry) {
        const char *comma = strchr (entry, ',');
        size_t entry_size = comma ? (size_t) (comma - entry) : strlen (entry);
        const char *equals = memchr (entry, '=', entry_size);
        size_t name_size = equals ? (size_t) (equals - entry) : entry_size;
        char name[256];
        if (name_size >= sizeof name) {
            return false;
        }
        memcpy (name, entry, name_size);
        name[name_size] = '\0';
        if (failpoint_find (name) < 0) {
            return false;
        }
        entry += entry_size + (comma ? 1 : 0);
    }
    return true;
}

static void
s_failpoints (const uint8_t *data, size_t size)
{
    char *spec = malloc (size + 1);
    FUZZ_CHECK (spec != NULL);
    if (size) {
        memcpy (spec, data, size);
    }
    spec[size] = '\0';
    FUZZ_CHECK (setenv ("RL_FAILPOINTS", spec, 1) == 0);
    unsetenv ("RL_FAILPOINT_FILE");
    char err[512];
    memset (err, 'x', sizeof err);
    int rc = failpoint_init (err, sizeof err);
    FUZZ_CHECK (memchr (err, '\0', sizeof err) != NULL);
    if (rc == 0) {
        FUZZ_CHECK (s_names_known (spec)); //  1
    } else {
        FUZZ_CHECK (rc == -1 && err[0] != '\0');            //  1
        FUZZ_CHECK (!atomic_load (&rl_failpoints_enabled)); //  2
    }
    unsetenv ("RL_FAILPOINTS");
    FUZZ_CHECK (failpoint_init (err, sizeof err) == 0);
    FUZZ_CHECK (!atomic_load (&rl_failpoints_enabled)); //  2
    free (spec);
}

static uint8_t *
s_encode (const ring_t *ring, size_t *size_p)
{
    *size_p = ring_encoded_size (ring);
    uint8_t *blob = malloc (*size_p);
    FUZZ_CHECK (blob != NULL);
    FUZZ_CHECK (ring_encode (ring, blob, *size_p) == *size_p);
    return blob;
}

static void
s_ring_file (const uint8_t *data, size_t size)
{
    int fd = memfd_create ("fuzz_ring", MFD_CLOEXEC);
    FUZZ_CHECK (fd >= 0);
    FUZZ_CHECK (size == 0 || write (fd, data, size) == (ssize_t) size);
    char path[64];
    snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
    char err[512];
    memset (err, 'x', sizeof err);
    ring_t *loaded = ring_load_file (path, err, sizeof err);
    close (fd);
    if (!loaded) {
        FUZZ_CHECK (memchr (err, '\0', sizeof err) != NULL && err[0] != '\0');
    }
    bool has_nul = size > 0 && memchr (data, '\0', size) != NULL;
    if (has_nul) {
        FUZZ_CHECK (loaded == NULL); //  3
        return;
    }
    char *text = malloc (size + 1);
    FUZZ_CHECK (text != NULL);
    if (size) {
        memcpy (text, data, size);
    }
    text[size] = '\0';
    ring_t *parsed = ring_from_text (text, err, sizeof err);
    free (text);
    FUZZ_CHECK ((loaded == NULL) == (parsed == NULL)); //  3
    if (loaded) {
        size_t loaded_size = 0;
        size_t parsed_size = 0;
        uint8_t *loaded_blob = s_encode (loaded, &loaded_size);
        uint8_t *parsed_blob = s_encode (parsed, &parsed_size);
        FUZZ_CHECK (loaded_size == parsed_size);
        FUZZ_CHECK (memcmp (loaded_blob, parsed_blob, loaded_size) == 0); //  3
        free (loaded_blob);
        free (parsed_blob);
    }
    ring_destroy (&loaded);
    ring_destroy (&parsed);
}

//  Property 4, and rl_key_resolve of a key text.
static void
s_key_text (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    FUZZ_CHECK (text != NULL);
    if (size) {
        memcpy (text, data, size);
    }
    text[size] = '\0';
    char resolved[RL_KEY_TEXT_SIZE];
    char err[512];
    if (rl_key_valid (text)) {
        FUZZ_CHECK (strlen (text) == RL_KEY_TEXT_SIZE - 1);
        uint8_t key[32];
        FUZZ_CHECK (zmq_z85_decode (key, text) != NULL);
        char again[RL_KEY_TEXT_SIZE];
        FUZZ_CHECK (zmq_z85_encode (again, key, sizeof key) != NULL);
        FUZZ_CHECK (strcmp (again, text) == 0); //  4
        FUZZ_CHECK (rl_key_resolve (text, resolved, err, sizeof err) == 0);
        FUZZ_CHECK (strcmp (resolved, text) == 0);
    }
    free (text);
}

static char s_cert_dir[64];
static char s_config_path[64];

static void
s_config_file_remove (void)
{
    if (s_config_path[0]) {
        unlink (s_config_path);
    }
}

static void
s_cert_dir_remove (void)
{
    char path[128];
    snprintf (path, sizeof path, "%s/cert", s_cert_dir);
    unlink (path);
    rmdir (s_cert_dir);
}

//  Property 5, on a certificate file of mode 0600 in a private directory.
static void
s_cert_file (const uint8_t *data, size_t size)
{
    if (!s_cert_dir[0]) {
        snprintf (s_cert_dir, sizeof s_cert_dir, "/tmp/rl_fuzz_config_XXXXXX");
        FUZZ_CHECK (mkdtemp (s_cert_dir) != NULL);
        atexit (s_cert_dir_remove);
    }
    char path[128];
    snprintf (path, sizeof path, "%s/cert", s_cert_dir);
    FILE *file = fopen (path, "wb");
    FUZZ_CHECK (file != NULL);
    FUZZ_CHECK (size == 0 || fwrite (data, 1, size, file) == size);
    fclose (file);
    FUZZ_CHECK (chmod (path, 0600) == 0);
    char err[512];
    char resolved[RL_KEY_TEXT_SIZE];
    zcert_t *cert = rl_cert_load (path, err, sizeof err);
    int rc = rl_key_resolve (path, resolved, err, sizeof err);
    if (rc == 0) {
        FUZZ_CHECK (rl_key_valid (resolved)); //  5
    }
    if (cert) {
        FUZZ_CHECK (rl_key_valid (zcert_public_txt (cert))); //  5
        FUZZ_CHECK (strspn (zcert_secret_txt (cert), "0") != strlen (zcert_secret_txt (cert)));
        FUZZ_CHECK (rc == 0 && strcmp (resolved, zcert_public_txt (cert)) == 0); //  5
        zcert_destroy (&cert);
    }
}

//  Property 6.
static void
s_option (const uint8_t *data, size_t size)
{
    if (size < 16) {
        return;
    }
    int64_t bounds[2];
    memcpy (bounds, data, sizeof bounds);
    long min = (long) (bounds[0] < bounds[1] ? bounds[0] : bounds[1]);
    long max = (long) (bounds[0] < bounds[1] ? bounds[1] : bounds[0]);
    size_t text_size = size - 16;
    char *text = malloc (text_size + 1);
    FUZZ_CHECK (text != NULL);
    if (text_size) {
        memcpy (text, data + 16, text_size);
    }
    text[text_size] = '\0';
    long out = 0x5a5a5a5a;
    if (options_long ("fuzz", "--value", text, min, max, &out) == 0) {
        FUZZ_CHECK (out >= min && out <= max); //  6
        errno = 0;
        char *end = NULL;
        long value = strtol (text, &end, 10);
        FUZZ_CHECK (errno == 0 && end != text && *end == '\0' && value == out); //  6
    } else {
        FUZZ_CHECK (out == 0x5a5a5a5a); //  6
    }
    free (text);
}

//  Property 7: the key/value pairs against zconfig's reading.
static void
s_config_zconfig (const config_t *config, const char *text)
{
    zconfig_t *root = zconfig_str_load (text);
    FUZZ_CHECK (root != NULL); //  7: zconfig reads what we accept
    size_t index = 0;
    for (zconfig_t *child = zconfig_child (root); child; child = zconfig_next (child), index++) {
        FUZZ_CHECK (index < config_count (config));
        const config_entry_t *e = config_entry (config, index);
        FUZZ_CHECK (zconfig_child (child) == NULL);
        FUZZ_CHECK (strcmp (zconfig_name (child), e->key) == 0);
        const char *value = zconfig_value (child);
        FUZZ_CHECK (value && strcmp (value, e->value) == 0);
    }
    FUZZ_CHECK (index == config_count (config));
    zconfig_destroy (&root);
}

//  Property 7: the file as options of a program.
static void
s_config_options (const config_t *config, const uint8_t *data, size_t size)
{
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},
        {"bind", required_argument, NULL, 'b'},
        {"deadline-ms", required_argument, NULL, 'd'},
        {"insecure", no_argument, NULL, 'I'},
        {"data", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static char path[64];
    if (!path[0]) {
        snprintf (path, sizeof path, "/tmp/rl_fuzz_config_file_%d", (int) getpid ());
        atexit (s_config_file_remove);
    }
    FILE *file = fopen (path, "wb");
    FUZZ_CHECK (file != NULL);
    FUZZ_CHECK (size == 0 || fwrite (data, 1, size, file) == size);
    fclose (file);
    snprintf (s_config_path, sizeof s_config_path, "%s", path);
    char *argv[] = {"fuzz", "--config", path, NULL};
    options_args_t args;
    int rc = options_args_new (&args, "fuzz", 3, argv, longs);
    bool known = true;
    size_t expected = 0;
    for (size_t i = 0; i < config_count (config); i++) {
        const config_entry_t *e = config_entry (config, i);
        bool flag = strcmp (e->key, "insecure") == 0;
        bool valued = strcmp (e->key, "name") == 0 || strcmp (e->key, "bind") == 0
                      || strcmp (e->key, "deadline-ms") == 0 || strcmp (e->key, "data") == 0;
        if (flag && strcmp (e->value, "true") == 0) {
            expected++;
        } else if (flag && strcmp (e->value, "false") != 0) {
            known = false;
        } else if (valued) {
            expected++;
        } else if (!flag) {
            known = false;
        }
    }
    FUZZ_CHECK ((rc == 0) == known); //  7
    if (rc != 0) {
        return;
    }
    FUZZ_CHECK (args.argc == (int) expected + 1 && args.argv[args.argc] == NULL);
    opterr = 0;
    optind = 0; //  a full reset of GNU getopt
    int count = 0;
    int c;
    while ((c = getopt_long (args.argc, args.argv, "", longs, NULL)) != -1) {
        FUZZ_CHECK (c != '?');
        FUZZ_CHECK (args.lines[optind - 1] > 0);
        count++;
    }
    FUZZ_CHECK (count == (int) expected && optind == args.argc); //  7
    options_args_free (&args);
}

//  Property 7.
static void
s_config (const uint8_t *data, size_t size)
{
    char err[256];
    memset (err, 'x', sizeof err);
    config_t *config = config_parse ((const char *) data, size, err, sizeof err);
    if (!config) {
        FUZZ_CHECK (memchr (err, '\0', sizeof err) != NULL);
        FUZZ_CHECK (strncmp (err, "line ", 5) == 0 || strncmp (err, "larger than", 11) == 0);
        return;
    }
    for (size_t i = 0; i < config_count (config); i++) {
        const config_entry_t *e = config_entry (config, i);
        FUZZ_CHECK (e->key[0]
                    && strspn (e->key, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen (e->key));
        FUZZ_CHECK (e->value[0] != '\0');
        for (const char *c = e->value; *c; c++) {
            FUZZ_CHECK ((unsigned char) *c >= 0x20 && *c != 0x7f);
        }
        for (size_t j = 0; j < i; j++) {
            FUZZ_CHECK (strcmp (config_entry (config, j)->key, e->key) != 0);
        }
    }
    char *text = malloc (size + 1);
    FUZZ_CHECK (text != NULL);
    if (size) {
        memcpy (text, data, size);
    }
    text[size] = '\0';
    s_config_zconfig (config, text);
    free (text);
    s_config_options (config, data, size);
    config_destroy (&config);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t *rest = size > 1 ? data + 1 : NULL;
    switch (data[0] % S_MODES) {
        case 0:
            s_failpoints (rest, size - 1);
            break;
        case 1:
            s_ring_file (rest, size - 1);
            break;
        case 2:
            s_key_text (rest, size - 1);
            break;
        case 3:
            s_cert_file (rest, size - 1);
            break;
        case 4:
            s_option (rest, size - 1);
            break;
        default:
            s_config (rest, size - 1);
            break;
    }
    return 0;
}
