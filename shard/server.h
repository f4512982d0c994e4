/*  server.h: the shard's server: the turn loop and the dispatch of
    operations.

    main.c parses the options and opens the store, the ring and the ledger;
    the server binds the ROUTER socket and runs turns until a signal or a
    failed turn. See server.c for the turn, its invariants and limits.
*/
#ifndef RL_SERVER_H
#define RL_SERVER_H

#include <stdbool.h>

#include "ledger.h"
#include "outq.h"
#include "proto.h"
#include "replica.h"
#include "ring.h"
#include "store.h"

//  The meta key of the ring installed by load_ring (read back at start).
#define SERVER_META_RING "ring"

typedef struct {
    const char *name;
    const char *bind;
    const char *data_dir;
    const char *ring_file;
    rl_durability_t durability;
    long checkpoint_transfers;      //  0: the default
    long checkpoint_piece_accounts; //  0: the default (CHECKPOINT_PIECE_ACCOUNTS)
    long prepare_timeout_ms;
    long deadline_ms; //  the shard answers a request within this (> prepare_timeout_ms)
    long query_after_ms;
    long retry_min_ms;
    long retry_max_ms;
    long tick_ms;
    const char *keys_dir;      //  role key sets (docs/security.md); NULL only with insecure
    const char *cert;          //  this shard's secret certificate
    bool insecure;             //  --insecure: no CURVE, no roles
    const char *metrics_bind;  //  --metrics-bind IPV4:PORT (docs/metrics.md); NULL: off
    long max_epoch_jump;       //  --max-epoch-jump: load_ring refuses a larger epoch step
    long reply_queue_bytes;    //  --reply-queue-bytes: reply bytes one connection may queue
    const char *events_bind;   //  --events-bind ENDPOINT: the events PUB socket (NULL: none)
    replica_options_t replica; //  --standby, --repl-mode, --repl-timeout-ms (standby_count 0: none)
} server_options_t;

typedef struct server_t server_t;

//  Binds options->bind. Takes *ring_p (the server replaces it on
//  load_ring, and the ledger follows); store, outq and ledger are borrowed
//  and must outlive the server. NULL (logged) when the socket cannot be
//  bound or memory ran out; *ring_p is then still the caller's.
server_t *server_new (const server_options_t *options, store_t *store, ring_t **ring_p,
                      outq_t *outq, ledger_t *ledger);
//  Closes the sockets; client requests still waiting for cross-shard
//  decisions are dropped (their clients retry).
void server_destroy (server_t **self_p);
//  Runs turns until SIGINT/SIGTERM (0) or a failed turn (-1).
int server_run (server_t *self);
//  A write, sync or checkpoint failed: memory may be ahead of disk.
bool server_failed (const server_t *self);
//  FAILED because a promotion of its standby fenced this primary (replica.h).
bool server_fenced (const server_t *self);

#endif
