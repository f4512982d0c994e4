/*  test_keys.c: the CURVE keys of a process and the role key sets
    (common/keys.h): key generation, the secret file's mode check, key
    resolution, and key sets that follow their folders.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys.h"

static char s_dir[256];

static int
s_setup (void **state)
{
    (void) state;
    const char *tmp = getenv ("TMPDIR");
    snprintf (s_dir, sizeof s_dir, "%s/test_keys.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp (s_dir) ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    char command[512];
    snprintf (command, sizeof command, "rm -rf '%s'", s_dir);
    return system (command) == 0 ? 0 : -1;
}

static void
s_path (char *out, size_t size, const char *tail)
{
    snprintf (out, size, "%s/%s", s_dir, tail);
}

static void
test_roles (void **state)
{
    (void) state;
    assert_int_equal (rl_role_parse ("client"), RL_ROLE_CLIENT);
    assert_int_equal (rl_role_parse ("admin"), RL_ROLE_ADMIN);
    assert_int_equal (rl_role_parse ("root"), 0);
    assert_string_equal (rl_role_name (RL_ROLE_SHARD), "shard");
    char text[64];
    assert_string_equal (rl_roles_text (RL_ROLE_CLIENT | RL_ROLE_ADMIN, text, sizeof text),
                         "client,admin");
    assert_string_equal (rl_roles_text (0, text, sizeof text), "-");
}

static void
test_keygen_and_load (void **state)
{
    (void) state;
    char err[512];
    char key[RL_KEY_TEXT_SIZE];
    assert_int_equal (rl_keygen (s_dir, "shard", "s1", key, err, sizeof err), 0);
    assert_true (rl_key_valid (key));
    //  Never overwrites a secret.
    assert_int_equal (rl_keygen (s_dir, "shard", "s1", NULL, err, sizeof err), -1);
    assert_non_null (strstr (err, "exists"));
    assert_int_equal (rl_keygen (s_dir, "root", "x", NULL, err, sizeof err), -1);
    assert_int_equal (rl_keygen (s_dir, "client", "../x", NULL, err, sizeof err), -1);

    char secret[512];
    char public_path[512];
    s_path (secret, sizeof secret, "private/s1.key_secret");
    s_path (public_path, sizeof public_path, "shard/s1.key");
    struct stat st;
    assert_int_equal (stat (secret, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    zcert_t *cert = rl_cert_load (secret, err, sizeof err);
    assert_non_null (cert);
    assert_string_equal (zcert_public_txt (cert), key);
    zcert_destroy (&cert);

    //  A public certificate is not a secret one.
    chmod (public_path, 0600);
    assert_null (rl_cert_load (public_path, err, sizeof err));
    assert_non_null (strstr (err, "no secret key"));
    chmod (public_path, 0644);

    //  Group- or world-readable secrets are refused with the fix in the message.
    chmod (secret, 0640);
    assert_null (rl_cert_load (secret, err, sizeof err));
    assert_non_null (strstr (err, "chmod 600"));
    chmod (secret, 0604);
    assert_null (rl_cert_load (secret, err, sizeof err));
    chmod (secret, 0600);
    s_path (secret, sizeof secret, "private/none.key_secret");
    assert_null (rl_cert_load (secret, err, sizeof err));

    //  Server keys: Z85 text or a certificate file.
    char resolved[RL_KEY_TEXT_SIZE];
    assert_int_equal (rl_key_resolve (public_path, resolved, err, sizeof err), 0);
    assert_string_equal (resolved, key);
    assert_int_equal (rl_key_resolve (key, resolved, err, sizeof err), 0);
    assert_string_equal (resolved, key);
    assert_int_equal (rl_key_resolve ("nonsense", resolved, err, sizeof err), -1);
}

static void
test_keyset (void **state)
{
    (void) state;
    char err[512];
    char client_key[RL_KEY_TEXT_SIZE];
    char admin_key[RL_KEY_TEXT_SIZE];
    char shard_key[RL_KEY_TEXT_SIZE];
    assert_int_equal (rl_keygen (s_dir, "client", "c1", client_key, err, sizeof err), 0);
    assert_int_equal (rl_keygen (s_dir, "admin", "ops", admin_key, err, sizeof err), 0);
    assert_int_equal (rl_keygen (s_dir, "shard", "s2", shard_key, err, sizeof err), 0);
    rl_keyset_t *set = rl_keyset_new (s_dir, err, sizeof err);
    assert_non_null (set);
    assert_int_equal (rl_keyset_roles (set, client_key), RL_ROLE_CLIENT);
    assert_int_equal (rl_keyset_roles (set, admin_key), RL_ROLE_ADMIN);
    assert_int_equal (rl_keyset_roles (set, shard_key), RL_ROLE_SHARD);
    assert_int_equal (rl_keyset_roles (set, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"), 0);
    assert_int_equal (rl_keyset_refresh (set, 0, err, sizeof err), 0); //  unchanged

    //  One key in two roles: the same certificate copied.
    char from[512];
    char to[512];
    char command[1200];
    s_path (from, sizeof from, "admin/ops.key");
    s_path (to, sizeof to, "client/ops.key");
    snprintf (command, sizeof command, "cp '%s' '%s'", from, to);
    assert_int_equal (system (command), 0);
    //  Removing a key takes effect at the next refresh.
    s_path (from, sizeof from, "client/c1.key");
    assert_int_equal (unlink (from), 0);
    //  Folder times may not have moved on a coarse clock: force then.
    int rc = rl_keyset_refresh (set, 0, err, sizeof err);
    if (rc == 0) {
        rc = rl_keyset_refresh (set, 1, err, sizeof err);
    }
    assert_int_equal (rc, 1);
    assert_int_equal (rl_keyset_roles (set, client_key), 0);
    assert_int_equal (rl_keyset_roles (set, admin_key), RL_ROLE_ADMIN | RL_ROLE_CLIENT);
    rl_keyset_destroy (&set);
    rl_keyset_destroy (&set);

    s_path (from, sizeof from, "missing");
    assert_null (rl_keyset_new (from, err, sizeof err));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_keygen_and_load),
        cmocka_unit_test (test_keyset),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
