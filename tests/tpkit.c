/*  tpkit.c: a few shards on one ring for the cross-shard tests (tpkit.h). */
#include "tpkit.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

void
tpk_init (tpk_t *self, harness_t *h, const char *prefix, int n, const char *prepare_ms,
          const char *query_after_ms)
{
    assert_true (n >= 1 && n <= TPK_SHARDS_MAX);
    self->h = h;
    self->n = n;
    ring_destroy (&self->ring);
    self->ring = ring_new (1);
    assert_non_null (self->ring);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf (name, sizeof name, "%s%d", prefix, i + 1);
        tk_shard_init (h, &self->shards[i], name);
        tk_shard_t *s = &self->shards[i];
        s->durability = "manual-wal";
        char *args[] = {"--prepare-timeout-ms",
                        (char *) prepare_ms,
                        "--query-after-ms",
                        (char *) query_after_ms,
                        "--retry-min-ms",
                        "20",
                        "--retry-max-ms",
                        "200",
                        "--tick-ms",
                        "5",
                        NULL};
        memcpy (s->args, args, sizeof args);
        assert_int_equal (ring_add_shard (self->ring, name, s->endpoint, 1.0), 0);
    }
    char ring_file[512];
    snprintf (ring_file, sizeof ring_file, "%s/%s.ring", harness_dir (h), prefix);
    assert_int_equal (ring_save_file (self->ring, ring_file), 0);
    for (int i = 0; i < n; i++) {
        snprintf (self->shards[i].ring_file, sizeof self->shards[i].ring_file, "%s", ring_file);
    }
}

void
tpk_start (tpk_t *self, int i)
{
    assert_true (i >= 0 && i < self->n);
    assert_true (tk_shard_start (self->h, &self->shards[i]) > 0);
    rl_client_destroy (&self->clients[i]);
    self->clients[i] = rl_client_new (self->shards[i].endpoint);
    assert_non_null (self->clients[i]);
}

void
tpk_restart (tpk_t *self, int i, char **env)
{
    if (self->shards[i].pid > 0) {
        assert_int_equal (tk_shard_stop (self->h, &self->shards[i], SIGTERM), 0);
    }
    int e = 0;
    while (env && env[e] && e < 3) {
        self->shards[i].env[e] = env[e];
        e++;
    }
    self->shards[i].env[e] = NULL;
    tpk_start (self, i);
}

void
tpk_close (tpk_t *self)
{
    for (int i = 0; i < TPK_SHARDS_MAX; i++) {
        rl_client_destroy (&self->clients[i]);
    }
    ring_destroy (&self->ring);
}

int
tpk_owner (const tpk_t *self, rl_id_t id)
{
    uint8_t bytes[RL_ID_SIZE];
    codec_encode_id (id, bytes);
    return ring_lookup_id (self->ring, bytes);
}

rl_client_t *
tpk_client_for (void *arg, rl_id_t id)
{
    tpk_t *self = arg;
    return self->clients[tpk_owner (self, id)];
}

uint64_t
tpk_find_tag (const tpk_t *self, uint64_t from, const int *owners, size_t n)
{
    for (uint64_t tag = from;; tag++) {
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            ok = tpk_owner (self, tk_id (i + 1, tag)) == owners[i];
        }
        if (ok) {
            return tag;
        }
    }
}

void
tpk_audit_ok (tpk_t *self, int i)
{
    rl_header_t h;
    uint8_t *body = NULL;
    size_t size = 0;
    assert_int_equal (
        rl_client_call (self->clients[i], RL_OP_AUDIT, NULL, 0, 0, TK_TIMEOUT_MS, &h, &body, &size),
        0);
    assert_int_equal (h.record_count, 1);
    rl_audit_rec_t audit;
    codec_decode_audit (body, &audit);
    free (body);
    if (!audit.ok) {
        fail_msg ("audit of shard %d: %s", i, audit.message);
    }
}

void
tpk_quiet (tpk_t *self)
{
    if (!tk_wait_quiet (self->clients, (size_t) self->n, 15000)) {
        harness_keep (self->h);
        fail_msg ("shards did not settle: live attempts or prepared records remain");
    }
    for (int i = 0; i < self->n; i++) {
        rl_status_rec_t status;
        assert_int_equal (rl_client_status (self->clients[i], &status, TK_TIMEOUT_MS), 0);
        if (status.alarms != 0) {
            harness_keep (self->h);
            fail_msg ("%s raised %lu two-phase alarms", status.name, (unsigned long) status.alarms);
        }
        tpk_audit_ok (self, i);
    }
}
