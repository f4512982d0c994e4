/*  ledger_internal.h: the ledger's state, shared by ledger.c (accounts,
    transfers, checkpoints) and twophase.c (cross-shard transfers). Not for
    use outside shard/ledger*.c and shard/twophase.c.
*/
#ifndef RL_LEDGER_INTERNAL_H
#define RL_LEDGER_INTERNAL_H

#include "accounts.h"
#include "idmap.h"
#include "ledger.h"

//  The `reserved` field of a stored transfer: the result in bits 0..31, the
//  leg in bits 32..39. A same-shard transfer moves both accounts; a
//  cross-shard one is stored on each side as one leg.
#define LEDGER_LEG_BOTH            0u
#define LEDGER_LEG_DEBIT           1u //  on the coordinator: debits the local debit account
#define LEDGER_LEG_CREDIT          2u //  on the participant: credits the local credit account
#define LEDGER_STORED(result, leg) ((uint64_t) (result) | ((uint64_t) (leg) << 32))
#define LEDGER_RESULT(reserved)    ((uint32_t) (reserved))
#define LEDGER_LEG(reserved)       ((uint32_t) (((reserved) >> 32) & 0xff))

typedef struct twophase_t twophase_t;

struct ledger_t {
    store_t *store;
    ledger_owner_fn *owner; //  name of the shard that owns an account
    void *owner_ctx;
    char name[RL_SHARD_NAME_SIZE_MAX]; //  this shard's name

    accounts_t *accounts; //  the account table (accounts.c)

    rl_transfer_t *recent; //  transfers since the checkpoint, ts order; reserved = stored
    size_t recent_count;
    size_t recent_cap;
    idmap_t *recent_ids;  //  id -> index in recent (credit legs are not indexed)
    idmap_t *recent_legs; //  leg key (id, debit account) -> index in recent: credit legs

    uint64_t last_ts;            //  last timestamp assigned (ns)
    uint64_t checkpoint_ts;      //  transfers up to here are in accounts + indexes
    uint64_t transfers_ok;       //  ok transfers since open (status)
    size_t checkpoint_transfers; //  checkpoint once recent holds this many
    uint64_t checkpoints;        //  since open

    twophase_t *tp; //  cross-shard state (twophase.c)
};

bool ledger_i_owns (ledger_t *self, rl_id_t account_id);
uint64_t ledger_i_next_ts (ledger_t *self, uint64_t now_ns);
//  Stores a transfer record (batch + recent); index_id: add to the id index.
int ledger_i_store_transfer (ledger_t *self, const rl_transfer_t *record, bool index_id);
int ledger_i_transfer_find (ledger_t *self, rl_id_t id, rl_transfer_t *out);
//  Was the credit leg of (transfer id, debit account) applied here? The pair
//  names a transfer uniquely across the cluster (ids are scoped to the debit
//  account's shard). 1 yes, 0 no, -1 storage error.
int ledger_i_leg_applied (ledger_t *self, rl_id_t id, rl_id_t debit_account_id);

//  twophase.c
twophase_t *twophase_new (ledger_t *ledger);
void twophase_destroy (twophase_t **self_p);
void twophase_set_io (twophase_t *self, const ledger_io_t *io, void *io_ctx);
//  Recovery: incarnation, xlog and prepared records. 0, or -1 with err.
int twophase_open (twophase_t *self, uint64_t nonce, uint64_t now_ns, char *err, size_t err_size);
//  A create_transfers record whose credit account lives on `peer`.
rl_result_rec_t twophase_begin (twophase_t *self, const rl_transfer_t *t, const char *peer,
                                uint64_t now_ns, uint64_t tag, uint32_t index);
bool twophase_is_live (const twophase_t *self, rl_id_t id);

#endif
