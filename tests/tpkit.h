/*  tpkit.h: a few shards on one ring, for the tests of cross-shard
    transfers that talk to the shards directly, without a router
    (test_twophase.c, test_bank.c, test_tp_senders.c,
    test_chains_across_crash.c; docs/testing.md).

    tpk_init names n shards PREFIX1..PREFIXn in the harness, each with the
    fast two-phase timers these tests want (prepare timeout and outcome
    query as given, resend 20..200 ms, tick 5 ms), writes one ring file
    that names them all with weight 1, and points every shard at it. It
    starts nothing: tpk_start starts shard i and opens the test's client
    to it (clients[i]); tpk_restart stops it first (SIGTERM), with the
    environment given. The harness stops the processes; tpk_close frees
    the clients and the ring.

    tpk_owner and tpk_client_for route by that ring, as a router would;
    tpk_find_tag finds the tag that puts test accounts 1..n on the shards
    a scenario needs. tpk_quiet waits until no shard holds a live attempt
    or a prepared record, then asserts that none raised a two-phase alarm
    and that every shard's audit holds (tpk_audit_ok).
*/
#ifndef RL_TPKIT_H
#define RL_TPKIT_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "testkit.h"

#define TPK_SHARDS_MAX 4

typedef struct {
    harness_t *h;
    int n; //  shards named in the ring
    tk_shard_t shards[TPK_SHARDS_MAX];
    rl_client_t *clients[TPK_SHARDS_MAX]; //  NULL until started
    ring_t *ring;
} tpk_t;

//  prepare_ms and query_after_ms are the shards' --prepare-timeout-ms and
//  --query-after-ms, as text. A second init of the same kit replaces the
//  ring (the clients of the shards it had are kept until restarted).
void tpk_init (tpk_t *self, harness_t *h, const char *prefix, int n, const char *prepare_ms,
               const char *query_after_ms);
void tpk_start (tpk_t *self, int i);
//  env: NULL-terminated, at most 3 entries, or NULL for none.
void tpk_restart (tpk_t *self, int i, char **env);
void tpk_close (tpk_t *self);

int tpk_owner (const tpk_t *self, rl_id_t id);
//  The client of the shard that owns id (a tk_client_for_fn: self is a tpk_t).
rl_client_t *tpk_client_for (void *self, rl_id_t id);
//  The first tag from `from` on such that account i + 1 lives on owners[i].
uint64_t tpk_find_tag (const tpk_t *self, uint64_t from, const int *owners, size_t n);

void tpk_audit_ok (tpk_t *self, int i);
void tpk_quiet (tpk_t *self);

#endif
