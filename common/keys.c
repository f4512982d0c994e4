/*  keys.c: CURVE keys of a process, and the key sets of the four roles.
    The contract, the folder layout and the invariants are in keys.h.

    DESIGN
    Certificates are czmq's zcert files (ZPL text: a "curve" section with
    public-key and, in a secret file, secret-key, both Z85). A key set is a
    hash from the Z85 public key to a mask of roles, built by reading every
    "*.key" file of the four role folders. A refresh compares the
    modification times of the four folders with those of the last read
    (adding, removing or renaming a file changes its folder's time) and
    builds a whole new hash before it replaces the old one.

    LIMITS
    RL_KEYS_MAX keys in all; a certificate file is read by zcert_load
    (czmq), whose size czmq bounds by what it parses; file names up to
    PATH_MAX.
*/
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define S_ROLES 4

static const char *s_role_names[S_ROLES] = {"client", "router", "shard", "admin"};

struct rl_keyset_t {
    char *keydir;
    zhashx_t *keys;                 //  Z85 public key -> (void *) (uintptr_t) role mask
    struct timespec mtime[S_ROLES]; //  of each role folder at the last read; 0 if missing
};

static void
s_error (char *err, size_t err_size, const char *format, ...)
{
    if (!err || err_size == 0) {
        return;
    }
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

const char *
rl_role_name (unsigned role)
{
    for (int i = 0; i < S_ROLES; i++) {
        if (role == 1u << i) {
            return s_role_names[i];
        }
    }
    return "?";
}

unsigned
rl_role_parse (const char *name)
{
    for (int i = 0; i < S_ROLES; i++) {
        if (name && strcmp (name, s_role_names[i]) == 0) {
            return 1u << i;
        }
    }
    return 0;
}

const char *
rl_roles_text (unsigned mask, char *out, size_t size)
{
    out[0] = 0;
    for (int i = 0; i < S_ROLES; i++) {
        if (mask & (1u << i)) {
            size_t used = strlen (out);
            snprintf (out + used, size - used, "%s%s", used ? "," : "", s_role_names[i]);
        }
    }
    if (!out[0]) {
        snprintf (out, size, "-");
    }
    return out;
}

int
rl_key_valid (const char *text)
{
    uint8_t key[32];
    return text && strlen (text) == RL_KEY_TEXT_SIZE - 1 && zmq_z85_decode (key, text) != NULL;
}

zcert_t *
rl_cert_load (const char *path, char *err, size_t err_size)
{
    assert (path);
    struct stat st;
    if (stat (path, &st) != 0) {
        s_error (err, err_size, "secret key file %s: %s", path, strerror (errno));
        return NULL;
    }
    if (!S_ISREG (st.st_mode)) {
        s_error (err, err_size, "secret key file %s is not a regular file", path);
        return NULL;
    }
    //  The mode first, before anything is parsed: a public certificate
    //  (mode 0644 by design) given by mistake is refused here too, and
    //  the message says which file to give instead.
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        s_error (err, err_size,
                 "secret key file %s may be read or written by group or others (mode %04o): "
                 "refusing to use it; if it is a public certificate (KEYDIR/ROLE/NAME.key), give "
                 "the secret one (KEYDIR/private/NAME.key_secret); else chmod 600 it, and "
                 "replace the key if others read it",
                 path, (unsigned) (st.st_mode & 07777));
        return NULL;
    }
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        s_error (err, err_size, "%s is not a certificate file (expected czmq zcert format)", path);
        return NULL;
    }
    const char *secret = zcert_secret_txt (cert);
    if (strspn (secret, "0") == strlen (secret) || !rl_key_valid (zcert_public_txt (cert))) {
        s_error (err, err_size, "%s holds no secret key (give the secret certificate file)", path);
        zcert_destroy (&cert);
        return NULL;
    }
    return cert;
}

int
rl_key_resolve (const char *spec, char out[RL_KEY_TEXT_SIZE], char *err, size_t err_size)
{
    assert (spec);
    //  A file first: a 40-byte path may well be valid Z85 text too.
    if (access (spec, F_OK) != 0 && rl_key_valid (spec)) {
        memcpy (out, spec, RL_KEY_TEXT_SIZE);
        return 0;
    }
    zcert_t *cert = zcert_load (spec);
    if (!cert || !rl_key_valid (zcert_public_txt (cert))) {
        s_error (err, err_size, "'%s' is neither a Z85 public key nor a certificate file", spec);
        zcert_destroy (&cert);
        return -1;
    }
    memcpy (out, zcert_public_txt (cert), RL_KEY_TEXT_SIZE);
    zcert_destroy (&cert);
    return 0;
}

//  Names: 1..31 bytes of [A-Za-z0-9._-], not starting with a dot.
static int
s_name_valid (const char *name)
{
    size_t size = strlen (name);
    if (size == 0 || size > 31 || name[0] == '.') {
        return 0;
    }
    return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
           == size;
}

static int
s_mkdir (const char *path, mode_t mode, char *err, size_t err_size)
{
    if (mkdir (path, mode) != 0 && errno != EEXIST) {
        s_error (err, err_size, "cannot create %s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

int
rl_keygen (const char *keydir, const char *role, const char *name, char key_out[RL_KEY_TEXT_SIZE],
           char *err, size_t err_size)
{
    assert (keydir && role && name);
    if (!rl_role_parse (role)) {
        s_error (err, err_size, "role '%s' is not one of client, router, shard, admin", role);
        return -1;
    }
    if (!s_name_valid (name)) {
        s_error (err, err_size, "name '%s' must be 1..31 bytes of letters, digits, '.', '_', '-'",
                 name);
        return -1;
    }
    char role_dir[PATH_MAX];
    char private_dir[PATH_MAX];
    char public_path[PATH_MAX];
    char secret_path[PATH_MAX];
    if (snprintf (role_dir, sizeof role_dir, "%s/%s", keydir, role) >= (int) sizeof role_dir
        || snprintf (private_dir, sizeof private_dir, "%s/private", keydir)
               >= (int) sizeof private_dir
        || snprintf (public_path, sizeof public_path, "%s/%s.key", role_dir, name)
               >= (int) sizeof public_path
        || snprintf (secret_path, sizeof secret_path, "%s/%s.key_secret", private_dir, name)
               >= (int) sizeof secret_path) {
        s_error (err, err_size, "key directory path too long");
        return -1;
    }
    if (s_mkdir (keydir, 0755, err, err_size) || s_mkdir (role_dir, 0755, err, err_size)
        || s_mkdir (private_dir, 0700, err, err_size)) {
        return -1;
    }
    //  Claim the secret file first, at mode 0600: never overwrite a key.
    int fd = open (secret_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        s_error (err, err_size, "cannot create %s: %s%s", secret_path, strerror (errno),
                 errno == EEXIST ? " (a key of that name exists; remove it first)" : "");
        return -1;
    }
    close (fd);
    zcert_t *cert = zcert_new ();
    if (!cert) {
        unlink (secret_path);
        s_error (err, err_size, "cannot make a keypair (out of memory?)");
        return -1;
    }
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "role", "%s", role);
    int rc = zcert_save_secret (cert, secret_path);
    if (rc == 0) {
        rc = zcert_save_public (cert, public_path);
    }
    if (rc == 0 && chmod (secret_path, 0600) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        s_error (err, err_size, "cannot write %s or %s: %s", secret_path, public_path,
                 strerror (errno));
        unlink (secret_path);
        unlink (public_path);
    } else if (key_out) {
        memcpy (key_out, zcert_public_txt (cert), RL_KEY_TEXT_SIZE);
    }
    zcert_destroy (&cert);
    return rc == 0 ? 0 : -1;
}

//  Key sets -------------------------------------------------------------------

static void
s_folder_mtime (const char *keydir, int role, struct timespec *mtime)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf (path, sizeof path, "%s/%s", keydir, s_role_names[role]);
    if (stat (path, &st) == 0) {
        *mtime = st.st_mtim;
    } else {
        *mtime = (struct timespec){0, 0};
    }
}

//  Reads one role folder into keys; -1 with err set past RL_KEYS_MAX.
static int
s_read_folder (const char *keydir, int role, zhashx_t *keys, char *err, size_t err_size)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/%s", keydir, s_role_names[role]);
    DIR *dir = opendir (path);
    if (!dir) {
        return 0; //  a missing folder is an empty role
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir)) != NULL) {
        size_t size = strlen (entry->d_name);
        if (size < 5 || strcmp (entry->d_name + size - 4, ".key") != 0 || entry->d_name[0] == '.') {
            continue;
        }
        char file[PATH_MAX];
        if (snprintf (file, sizeof file, "%s/%s", path, entry->d_name) >= (int) sizeof file) {
            continue;
        }
        zcert_t *cert = zcert_load (file);
        if (!cert || !rl_key_valid (zcert_public_txt (cert))) {
            zcert_destroy (&cert);
            continue; //  not a certificate: skipped, as any other file
        }
        const char *key = zcert_public_txt (cert);
        uintptr_t mask = (uintptr_t) zhashx_lookup (keys, key);
        if (!mask && zhashx_size (keys) >= RL_KEYS_MAX) {
            s_error (err, err_size, "more than %d keys in %s", RL_KEYS_MAX, keydir);
            rc = -1;
        } else {
            mask |= 1u << role;
            zhashx_update (keys, key, (void *) mask);
        }
        zcert_destroy (&cert);
    }
    closedir (dir);
    return rc;
}

static zhashx_t *
s_read_all (const char *keydir, char *err, size_t err_size)
{
    zhashx_t *keys = zhashx_new ();
    if (!keys) {
        s_error (err, err_size, "out of memory");
        return NULL;
    }
    for (int role = 0; role < S_ROLES; role++) {
        if (s_read_folder (keydir, role, keys, err, err_size)) {
            zhashx_destroy (&keys);
            return NULL;
        }
    }
    return keys;
}

rl_keyset_t *
rl_keyset_new (const char *keydir, char *err, size_t err_size)
{
    assert (keydir);
    struct stat st;
    if (stat (keydir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        s_error (err, err_size, "key directory %s: %s", keydir,
                 errno ? strerror (errno) : "not a directory");
        return NULL;
    }
    rl_keyset_t *self = (rl_keyset_t *) calloc (1, sizeof *self);
    if (!self || !(self->keydir = strdup (keydir))) {
        free (self);
        s_error (err, err_size, "out of memory");
        return NULL;
    }
    if (rl_keyset_refresh (self, 1, err, err_size) < 0) {
        rl_keyset_destroy (&self);
    }
    return self;
}

void
rl_keyset_destroy (rl_keyset_t **self_p)
{
    assert (self_p);
    rl_keyset_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->keys);
        free (self->keydir);
        free (self);
        *self_p = NULL;
    }
}

unsigned
rl_keyset_roles (rl_keyset_t *self, const char *key)
{
    assert (self);
    if (!key || !self->keys) {
        return 0;
    }
    return (unsigned) (uintptr_t) zhashx_lookup (self->keys, key);
}

size_t
rl_keyset_size (rl_keyset_t *self)
{
    assert (self);
    return self->keys ? zhashx_size (self->keys) : 0;
}

int
rl_keyset_refresh (rl_keyset_t *self, int force, char *err, size_t err_size)
{
    assert (self);
    struct timespec mtime[S_ROLES];
    int changed = force || !self->keys;
    for (int role = 0; role < S_ROLES; role++) {
        s_folder_mtime (self->keydir, role, &mtime[role]);
        changed |= mtime[role].tv_sec != self->mtime[role].tv_sec
                   || mtime[role].tv_nsec != self->mtime[role].tv_nsec;
    }
    if (!changed) {
        return 0;
    }
    zhashx_t *keys = s_read_all (self->keydir, err, err_size);
    if (!keys) {
        return -1;
    }
    zhashx_destroy (&self->keys);
    self->keys = keys;
    memcpy (self->mtime, mtime, sizeof mtime);
    return 1;
}
