/*  rlctl_replica.c: the operator's replication commands (docs/replication.md).

        rlctl --connect STANDBY promote   the standby becomes the primary (fenced first)
        rlctl --connect PRIMARY degrade   a semi-synchronous primary goes async, by hand

    Each sends one admin operation with no records (promote 80, degrade 81)
    to the --connect endpoint and prints what the shard answered. Both are
    idempotent (a primary answers promote ok; a degraded primary answers
    degrade ok), so a call that timed out is sent again, on a new
    connection, up to S_ATTEMPTS_MAX times: a promoted standby closes its
    socket to open as the primary, and an answer can be lost with it. A
    promotion does not change the ring: load a ring that names the new
    primary's endpoint afterwards (docs/replication.md, "What is not done
    yet").
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonkit.h"
#include "rlctl.h"

static void
s_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("%s\n", jsonkit_text (tree, "message"));
}

#define S_ATTEMPTS_MAX 3 //  calls of an idempotent admin operation that timed out

static int
s_send (rlctl_ctx_t *ctx, uint16_t op, const char *what, const char *done)
{
    int rc = RL_CLIENT_TIMEOUT;
    for (int attempt = 0; attempt < S_ATTEMPTS_MAX && rc == RL_CLIENT_TIMEOUT; attempt++) {
        rl_client_t *client = rlctl_client (ctx);
        if (!client) {
            return RLCTL_EXIT_FAILED;
        }
        rl_header_t h;
        uint8_t *reply = NULL;
        size_t reply_size = 0;
        rc = rl_client_call (client, op, NULL, 0, 0, ctx->timeout_ms, &h, &reply, &reply_size);
        free (reply);
        rl_client_destroy (&client);
        if (rc == RL_CLIENT_TIMEOUT && attempt + 1 < S_ATTEMPTS_MAX) {
            fprintf (stderr, "rlctl: %s: no answer within %d ms; asking again\n", what,
                     ctx->timeout_ms);
        }
    }
    if (rc != 0) {
        return rlctl_call_failed (ctx, what, rc, false);
    }
    cJSON *tree = jsonkit_object ();
    jsonkit_add_string (tree, "shard", ctx->connect);
    jsonkit_add_string (tree, "message", done);
    return rlctl_emit (ctx, &tree, s_table, RLCTL_EXIT_OK);
}

int
rlctl_cmd_promote (rlctl_ctx_t *ctx)
{
    return s_send (ctx, RL_OP_PROMOTE, "promote",
                   "promoted: the standby is fenced and opens as the primary (rlctl status "
                   "shows it serving); load a ring that names its endpoint");
}

int
rlctl_cmd_degrade (rlctl_ctx_t *ctx)
{
    return s_send (ctx, RL_OP_DEGRADE, "degrade",
                   "degraded: replies no longer wait for the standby (async; invariant 9 "
                   "suspended until a restart in semi mode)");
}
