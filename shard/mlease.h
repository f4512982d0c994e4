/*  mlease.h: a shard's migration lease (docs/rebalance.md, "The plan's
    lease"): the rebalancing plan that may run migrations on this shard.

    A plan is a migration id's high bits (RL_MIGRATE_PLAN_MASK); the tool
    numbers a plan's steps in the low bits. The lease is a durable meta
    value (MLEASE_META_KEY, the plan as 8 bytes little-endian; absent: no
    plan holds it), taken by migrate_lease (ACQUIRE) or by the first
    migrate_begin of a plan while none holds it (in the begin's batch),
    and cleared by migrate_lease (RELEASE) of the plan that holds it. The
    stored holder also names the run of the tool that acquired it (the low
    bits): a second run of the same plan cannot ACQUIRE it, only TAKEOVER.
    While a plan holds it, migrate_begin, migrate_freeze and
    migrate_commit of a migration of any other plan are refused with
    RL_STATUS_LEASE_HELD and a log line naming both plans. Plan 0 (ids
    below 2^20: migrations driven by hand) takes no lease.
*/
#ifndef RL_MLEASE_H
#define RL_MLEASE_H

#include <stdint.h>

#include "server_internal.h"

#define MLEASE_META_KEY "migration_lease"

//  The plan of a migration id.
static inline uint64_t
mlease_plan (uint64_t migration_id)
{
    return migration_id & RL_MIGRATE_PLAN_MASK;
}

//  RL_STATUS_OK when the lease lets `what` (an operation's name) of
//  migration_id go on, RL_STATUS_LEASE_HELD (logged) when another plan
//  holds it, RL_STATUS_STORAGE_ERROR when it does not read.
rl_status_t mlease_check (server_t *self, uint64_t migration_id, const char *what);
//  Takes the lease for migration_id's plan when no plan holds it (plan 0:
//  nothing); the write joins the store's batch. After mlease_check said OK.
void mlease_take (server_t *self, uint64_t migration_id);
//  migrate_lease (op 66): returns the reply (NULL: out of memory), taking
//  envelope.
zmsg_t *mlease_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body);

#endif
