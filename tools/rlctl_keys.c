/*  rlctl_keys.c: rlctl keygen, which writes a CURVE keypair for one
    process of a cluster (docs/security.md, common/keys.h).

        rlctl keygen --role ROLE --name NAME --dir KEYDIR

    writes KEYDIR/ROLE/NAME.key (the public certificate: copy it to every
    process that must admit NAME in ROLE) and KEYDIR/private/NAME.key_secret
    (the secret certificate, mode 0600: it stays on NAME's host), and prints
    the public key (Z85). A shard's public key also goes into the ring
    (rebalance init --keys KEYDIR).

    INVARIANTS
    1. Nothing is sent; an existing secret is never overwritten.
    2. Exit codes of rlctl.h: a missing option is a usage error, a refused
       or failed write exits RLCTL_EXIT_FAILED.
*/
#include <stdio.h>
#include <stdlib.h>

#include "keys.h"
#include "rlctl.h"

static void
s_keygen_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%s %s: public key %s\n  public  %s\n  secret  %s (mode 0600; keep it on this "
            "host)\n",
            jsonkit_text (tree, "role"), jsonkit_text (tree, "name"),
            jsonkit_text (tree, "public_key"), jsonkit_text (tree, "public_file"),
            jsonkit_text (tree, "secret_file"));
}

int
rlctl_cmd_keygen (rlctl_ctx_t *ctx)
{
    if (!ctx->role || !ctx->name || !ctx->dir) {
        return rlctl_usage_error ("keygen needs %s", "--role, --name and --dir");
    }
    if (!rl_role_parse (ctx->role)) {
        return rlctl_usage_error ("bad --role '%s': expected client, router, shard or admin",
                                  ctx->role);
    }
    char key[RL_KEY_TEXT_SIZE];
    char err[768];
    if (rl_keygen (ctx->dir, ctx->role, ctx->name, key, err, sizeof err)) {
        fprintf (stderr, "rlctl: keygen: %s\n", err);
        return RLCTL_EXIT_FAILED;
    }
    char public_file[1024];
    char secret_file[1024];
    snprintf (public_file, sizeof public_file, "%s/%s/%s.key", ctx->dir, ctx->role, ctx->name);
    snprintf (secret_file, sizeof secret_file, "%s/private/%s.key_secret", ctx->dir, ctx->name);
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "role", ctx->role);
    jsonkit_add_string (tree, "name", ctx->name);
    jsonkit_add_string (tree, "public_key", key);
    jsonkit_add_string (tree, "public_file", public_file);
    jsonkit_add_string (tree, "secret_file", secret_file);
    return rlctl_emit (ctx, &tree, s_keygen_table, RLCTL_EXIT_OK);
}
