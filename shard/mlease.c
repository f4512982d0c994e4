/*  mlease.c: a shard's migration lease (mlease.h; docs/rebalance.md, "The
    plan's lease").

    WHY
    The tool's state directory is one process's lock; two `rebalance
    apply` runs with different directories once drove two plans into one
    cluster at once, each loading its own rings (a shard takes any higher
    epoch) and each replacing the other's handed-over migration, which
    could leave shards on different rings at one epoch and an arc frozen
    for good. The lease puts the fence in the cluster: one plan at a time
    may begin, freeze or commit a migration on a shard.

    INVARIANTS
    1. The lease changes only in a batch of its own request (acquire,
       release) or of the migrate_begin that takes it, so it is durable
       when the reply is sent (replies wait for their group commit).
    2. A plan acquires only while no migration of another plan is in
       progress here (COPYING, FROZEN, SHIPPED, ABORTING), and releases
       only while none of its own is: a release never leaves a migration
       without the lease that admitted it.
    3. The holder is a plan and, in its low bits, the run of the tool that
       acquired it (0: a begin took it). Begin, freeze and commit compare
       plans; acquire compares holders, so a second run of one plan (from
       another state directory) is refused as another plan is, until a
       takeover (recover: the operator's word that the first run is dead).
    4. Nothing is written for a refused request.
*/
#include "mlease.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "codec.h"
#include "log.h"

#define S_VALUE_SIZE 8 //  bytes of the stored plan

static int
s_holder (server_t *self, uint64_t *holder)
{
    if (!self->migration_lease_loaded) {
        uint8_t value[S_VALUE_SIZE];
        size_t size = 0;
        int rc = store_get (self->store, STORE_CF_META, MLEASE_META_KEY, strlen (MLEASE_META_KEY),
                            value, sizeof (value), &size);
        if (rc < 0 || (rc == 1 && size != S_VALUE_SIZE)) {
            rl_error ("migration lease: the stored value does not read");
            return -1;
        }
        self->migration_lease = rc == 1 ? codec_get_u64 (value) : 0;
        self->migration_lease_loaded = true;
    }
    *holder = self->migration_lease;
    return 0;
}

static void
s_put (server_t *self, uint64_t plan)
{
    assert (self->migration_lease_loaded);
    if (plan == 0) {
        store_batch_delete (self->store, STORE_CF_META, MLEASE_META_KEY, strlen (MLEASE_META_KEY));
    } else {
        uint8_t value[S_VALUE_SIZE];
        codec_put_u64 (value, plan);
        store_batch_put (self->store, STORE_CF_META, MLEASE_META_KEY, strlen (MLEASE_META_KEY),
                         value, sizeof (value));
    }
    self->migration_lease = plan;
}

rl_status_t
mlease_check (server_t *self, uint64_t migration_id, const char *what)
{
    uint64_t holder = 0;
    if (s_holder (self, &holder) != 0) {
        return RL_STATUS_STORAGE_ERROR;
    }
    if (holder == 0 || mlease_plan (holder) == mlease_plan (migration_id)) {
        return RL_STATUS_OK;
    }
    rl_warn ("migration %" PRIu64 ": %s refused: plan %016" PRIx64
             " holds the migration lease, not plan %016" PRIx64
             " (let that change finish, or 'rebalance abort' it)",
             migration_id, what, mlease_plan (holder), mlease_plan (migration_id));
    return RL_STATUS_LEASE_HELD;
}

void
mlease_take (server_t *self, uint64_t migration_id)
{
    uint64_t plan = mlease_plan (migration_id), holder = 0;
    if (plan != 0 && s_holder (self, &holder) == 0 && holder == 0) {
        s_put (self, plan);
        rl_info ("migration lease: taken by plan %016" PRIx64 " (its first begin here)", plan);
    }
}

static bool
s_in_progress (const rl_migrate_rec_t *m)
{
    return m->state != RL_MIGRATE_NONE && m->state != RL_MIGRATE_HANDED_OVER;
}

zmsg_t *
mlease_op (server_t *self, zmsg_t *envelope, const rl_header_t *h, const uint8_t *body)
{
    rl_migrate_rec_t req;
    codec_decode_migrate (body, &req);
    //  Only the holder and the action: every other byte zero.
    rl_migrate_rec_t bare = {.migration_id = req.migration_id, .param = req.param};
    uint8_t expect[RL_MIGRATE_SIZE];
    codec_encode_migrate (&bare, expect);
    uint64_t asker = req.migration_id, plan = mlease_plan (asker);
    uint32_t action = req.param;
    if (memcmp (expect, body, RL_MIGRATE_SIZE) != 0 || action > RL_MIGRATE_LEASE_TAKEOVER
        || (plan == 0 && action != RL_MIGRATE_LEASE_READ)) {
        return server_reply_new (self, envelope, h, RL_STATUS_MALFORMED, 0, 0, NULL);
    }
    rl_migrate_rec_t *stored = NULL;
    uint64_t holder = 0;
    if (migrate_stored (self, &stored) != 0 || s_holder (self, &holder) != 0) {
        return server_reply_new (self, envelope, h, RL_STATUS_STORAGE_ERROR, 0, 0, NULL);
    }
    bool other_busy = s_in_progress (stored) && mlease_plan (stored->migration_id) != plan;
    bool takes = (action == RL_MIGRATE_LEASE_ACQUIRE || action == RL_MIGRATE_LEASE_TAKEOVER)
                 && holder != asker;
    if (takes) {
        //  Acquire: only from nobody. Takeover: from nobody or from a run of
        //  the same plan (the operator's word that it is dead: recover).
        bool held = holder != 0
                    && (action == RL_MIGRATE_LEASE_ACQUIRE || mlease_plan (holder) != plan);
        if (held || other_busy) {
            rl_warn ("migration lease: %s by %016" PRIx64 " refused: %s %016" PRIx64,
                     action == RL_MIGRATE_LEASE_ACQUIRE ? "acquire" : "takeover", asker,
                     held ? "held by" : "a migration in progress of plan",
                     held ? holder : mlease_plan (stored->migration_id));
            return server_reply_new (self, envelope, h, RL_STATUS_LEASE_HELD, 0, 0, NULL);
        }
        s_put (self, asker);
        rl_info ("migration lease: %s by %016" PRIx64 " (was %016" PRIx64 ")",
                 action == RL_MIGRATE_LEASE_ACQUIRE ? "acquired" : "taken over", asker, holder);
    } else if (action == RL_MIGRATE_LEASE_RELEASE && holder != 0) {
        if (mlease_plan (holder) != plan) {
            rl_warn ("migration lease: release by plan %016" PRIx64 " refused: held by %016" PRIx64,
                     plan, holder);
            return server_reply_new (self, envelope, h, RL_STATUS_LEASE_HELD, 0, 0, NULL);
        }
        if (s_in_progress (stored)) {
            rl_warn ("migration lease: release by plan %016" PRIx64
                     " refused: its migration %" PRIu64
                     " is in progress here (abort it or finish it first)",
                     plan, stored->migration_id);
            return server_reply_new (self, envelope, h, RL_STATUS_MIGRATION_REFUSED, 0, 0, NULL);
        }
        s_put (self, 0);
        rl_info ("migration lease: released by plan %016" PRIx64, plan);
    }
    uint8_t *out = NULL;
    zmsg_t *reply = server_reply_new (self, envelope, h, RL_STATUS_OK, 2, RL_MIGRATE_SIZE, &out);
    if (reply) {
        rl_migrate_rec_t lease = {.migration_id = self->migration_lease};
        codec_encode_migrate (stored, out);
        codec_encode_migrate (&lease, out + RL_MIGRATE_SIZE);
    }
    return reply;
}
