/*  reversal.c: see reversal.h (docs/payments.md).

    DESIGN
    rl_client_reverse is four blocking calls of the library and a decision
    between them, all in memory of this call:
      1. lookup_transfers (original): found means it took effect (a lookup
         never shows a burned id), and gives its accounts, ledger, amount.
      2. the probe: one create_transfers of the reversing record with
         amount 0, once per k in 0..RL_REVERSAL_K_MAX - 1 (one request, one
         shard: they share the debit account). The shard checks the id
         (idempotency, group 2) before the fields (group 3), so a taken id
         answers exists_with_different_* and a free one
         amount_must_not_be_zero: field validation is never remembered, so
         the probe applies nothing and burns nothing. Any other answer
         (in_progress, in_doubt, busy, frozen, ...) leaves that k open.
      3. lookup_transfers of the taken ids, asked after the probe: an id
         that the probe saw taken holds its final outcome, so found is
         applied (its amount counts) and not found is burned.
      4. the create, sent once when the rules hold (reversal.h).
    Why this is safe when callers race: ids are never freed, so every k
    below the chosen one stays taken with the outcome step 3 saw; a caller
    that chooses a larger k must have seen ours taken first; two callers
    that choose the same k send the same id, and the debit shard applies it
    at most once. Money stays conserved whatever a client does: a reversal
    is one double-entry transfer, checked by the shard like any other.

    INVARIANTS
    1. At most one record that can apply is sent per call (step 4), with
       id rl_reversal_id (original, k); the probe's records cannot apply.
    2. A refusal (any outcome but SENT) sent no create that can apply.
    3. Nothing read from the network is asserted on.

    LIMITS
    RL_REVERSAL_K_MAX reversals per original; the probe is that many
    records (RL_REVERSAL_K_MAX * 128 bytes) in one request.
*/
#include "reversal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(sizeof (RL_REVERSAL_PERSONAL) - 1 == crypto_generichash_blake2b_PERSONALBYTES,
               "the domain tag fills BLAKE2b's personalisation");
_Static_assert(crypto_generichash_blake2b_BYTES_MIN <= 16, "BLAKE2b gives a 16-byte digest");

static void
s_put_u64 (uint8_t *out, uint64_t value)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t) (value >> (8 * i));
    }
}

static uint64_t
s_get_u64 (const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) {
        value = value << 8 | in[i];
    }
    return value;
}

int
rl_reversal_id (rl_id_t original, uint32_t k, rl_id_t *out)
{
    assert (out);
    if (k >= RL_REVERSAL_K_MAX) {
        return -1;
    }
    uint8_t input[20];
    s_put_u64 (input, original.lo);
    s_put_u64 (input + 8, original.hi);
    for (int i = 0; i < 4; i++) {
        input[16 + i] = (uint8_t) (k >> (8 * i));
    }
    uint8_t digest[16];
    int rc = crypto_generichash_blake2b_salt_personal (
        digest, sizeof digest, input, sizeof input, NULL, 0, NULL,
        (const unsigned char *) RL_REVERSAL_PERSONAL);
    assert (rc == 0); //  only bad sizes fail, and these are constant
    *out = (rl_id_t){.lo = s_get_u64 (digest), .hi = s_get_u64 (digest + 8)};
    return rl_id_is_zero (*out) || rl_id_is_max (*out) ? -1 : 0;
}

static const struct {
    const char *name;
    const char *hint;
} s_outcomes[RL_REVERSAL_OUTCOMES] = {
    [RL_REVERSAL_SENT] = {"sent", "the reversal was sent: its result says what the cluster did"},
    [RL_REVERSAL_ORIGINAL_NOT_FOUND] = {"original_not_found",
                                        "no transfer took effect under that id (unknown, or "
                                        "burned by a failure): there is nothing to reverse"},
    [RL_REVERSAL_NOT_REVERSIBLE] = {"not_reversible",
                                    "the original is a pending transfer or a void: void or "
                                    "reverse what posted it instead"},
    [RL_REVERSAL_K_NOT_NEXT] = {"k_not_next",
                                "a smaller k is still free: reversals of one original take "
                                "their k in order (leave k out to take the next)"},
    [RL_REVERSAL_EXCEEDS_ORIGINAL] = {"exceeds_original",
                                      "the reversals of this original would sum above its "
                                      "amount: reverse less"},
    [RL_REVERSAL_OPEN] = {"open", "a reversal of this original is still in flight or unanswered: "
                                  "retry later (the same k if it was yours)"},
    [RL_REVERSAL_EXHAUSTED] = {"exhausted", "every reversal id of this original is taken"},
    [RL_REVERSAL_DISORDER] = {"disorder",
                              "a reversal id above a free one is taken: someone made reversal "
                              "ids outside the rules; refused, ask an operator"},
};

const char *
rl_reversal_outcome_name (rl_reversal_outcome_t outcome)
{
    return (unsigned) outcome < RL_REVERSAL_OUTCOMES ? s_outcomes[outcome].name : "unknown";
}

const char *
rl_reversal_outcome_hint (rl_reversal_outcome_t outcome)
{
    return (unsigned) outcome < RL_REVERSAL_OUTCOMES ? s_outcomes[outcome].hint : "";
}

//  The state of one k after the probe.
typedef enum { S_FREE, S_TAKEN, S_OPEN } s_slot_t;

//  What the probe's result says of its id.
static s_slot_t
s_slot_of (uint32_t result)
{
    if (result == RL_AMOUNT_MUST_NOT_BE_ZERO) {
        return S_FREE;
    }
    rl_burns_t burns = rl_result_burns (result);
    if (burns == RL_BURNS_TAKEN || burns == RL_BURNS_SUCCESS) {
        return S_TAKEN;
    }
    return S_OPEN; //  in flight, busy, frozen, or anything unexpected
}

//  The scratch of one call (RL_REVERSAL_K_MAX records each: kept off the stack).
typedef struct {
    rl_transfer_t probe[RL_REVERSAL_K_MAX];
    rl_result_rec_t results[RL_REVERSAL_K_MAX];
    rl_id_t ids[RL_REVERSAL_K_MAX];
    rl_transfer_t found[RL_REVERSAL_K_MAX];
    uint32_t taken_k[RL_REVERSAL_K_MAX];
    s_slot_t slot[RL_REVERSAL_K_MAX];
} s_scratch_t;

//  Steps 2 and 3: the slot of every k, and the amount of each applied one
//  (into scratch->found, by position in taken_k).
static int
s_probe (rl_client_t *self, const rl_transfer_t *reversal, s_scratch_t *s, rl_reversal_t *out,
         int timeout_ms)
{
    for (uint32_t k = 0; k < RL_REVERSAL_K_MAX; k++) {
        s->probe[k] = *reversal;
        s->probe[k].amount = 0;
        s->probe[k].user_data_64 = k;
        int rc = rl_reversal_id (reversal->user_data_128, k, &s->probe[k].id);
        assert (rc == 0); //  a digest of 0 or all ones: 2^-127, never seen
    }
    int rc = rl_client_create_transfers (self, s->probe, RL_REVERSAL_K_MAX, s->results, timeout_ms);
    if (rc != 0) {
        return rc;
    }
    out->taken = 0;
    for (uint32_t k = 0; k < RL_REVERSAL_K_MAX; k++) {
        s->slot[k] = s_slot_of (s->results[k].result);
        if (s->slot[k] == S_TAKEN) {
            s->taken_k[out->taken] = k;
            s->ids[out->taken++] = s->probe[k].id;
        }
    }
    if (out->taken == 0) {
        return 0;
    }
    return rl_client_lookup_transfers (self, s->ids, out->taken, s->found, timeout_ms);
}

//  Step 4's decision: the k to use and the amount, or a refusal in out->outcome.
static void
s_decide (const rl_reversal_request_t *request, const s_scratch_t *s, rl_reversal_t *out)
{
    uint32_t first_free = RL_REVERSAL_K_MAX;
    for (uint32_t k = 0; k < RL_REVERSAL_K_MAX; k++) {
        if (s->slot[k] == S_OPEN) {
            out->outcome = RL_REVERSAL_OPEN;
            out->open_k = k;
            out->open_result = s->results[k].result;
            return;
        }
        if (s->slot[k] == S_FREE && first_free == RL_REVERSAL_K_MAX) {
            first_free = k;
        }
        if (s->slot[k] == S_TAKEN && first_free < k) {
            out->outcome = RL_REVERSAL_DISORDER;
            out->k = k;
            return;
        }
    }
    uint32_t k = request->k == RL_REVERSAL_K_NEXT ? first_free : request->k;
    out->k = k;
    if (k == RL_REVERSAL_K_MAX) {
        out->outcome = RL_REVERSAL_EXHAUSTED;
        return;
    }
    //  What took effect below k (every k below a free one is final).
    out->reversed = 0;
    for (uint32_t i = 0; i < out->taken; i++) {
        if (s->taken_k[i] < k && s->found[i].timestamp != 0) {
            out->reversed += s->found[i].amount; //  <= the original: cannot overflow
        }
    }
    if (s->slot[k] == S_TAKEN) {
        //  A retry of reversal k: the cluster answers its outcome (exists,
        //  the failure that burned it, or exists_with_different_*), and
        //  applies nothing whatever the amount.
        out->transfer.amount = request->amount ? request->amount
                                               : out->original.amount - out->reversed;
        out->outcome = RL_REVERSAL_SENT;
        return;
    }
    if (k != first_free) {
        out->outcome = RL_REVERSAL_K_NOT_NEXT;
        return;
    }
    uint64_t rest = out->original.amount - out->reversed;
    uint64_t amount = request->amount ? request->amount : rest;
    out->transfer.amount = amount;
    out->outcome = amount == 0 || amount > rest ? RL_REVERSAL_EXCEEDS_ORIGINAL : RL_REVERSAL_SENT;
}

int
rl_client_reverse (rl_client_t *self, const rl_reversal_request_t *request, rl_reversal_t *out,
                   int timeout_ms)
{
    assert (self && request && out);
    memset (out, 0, sizeof (*out));
    out->k = request->k;
    if (rl_id_is_zero (request->original) || rl_id_is_max (request->original)
        || (request->k >= RL_REVERSAL_K_MAX && request->k != RL_REVERSAL_K_NEXT)) {
        return RL_CLIENT_ERR_ARGS;
    }
    //  1. The original.
    int rc = rl_client_lookup_transfers (self, &request->original, 1, &out->original, timeout_ms);
    if (rc != 0) {
        return rc;
    }
    if (out->original.timestamp == 0) {
        out->outcome = RL_REVERSAL_ORIGINAL_NOT_FOUND;
        return 0;
    }
    const rl_transfer_t *o = &out->original;
    if (o->flags & (RL_TRANSFER_PENDING | RL_TRANSFER_VOID_PENDING_TRANSFER)) {
        out->outcome = RL_REVERSAL_NOT_REVERSIBLE;
        return 0;
    }
    out->transfer = (rl_transfer_t){
        .debit_account_id = o->credit_account_id,
        .credit_account_id = o->debit_account_id,
        .user_data_128 = o->id,
        .user_data_32 = request->user_data_32,
        .ledger = o->ledger,
        .code = request->code ? request->code : o->code,
    };
    //  2, 3. Every k's state.
    s_scratch_t *scratch = calloc (1, sizeof (*scratch));
    if (!scratch) {
        return RL_CLIENT_ERR_NOMEM;
    }
    rc = s_probe (self, &out->transfer, scratch, out, timeout_ms);
    if (rc == 0) {
        s_decide (request, scratch, out);
    }
    free (scratch);
    if (rc != 0 || out->outcome != RL_REVERSAL_SENT) {
        return rc; //  a refusal is data, like a result: the caller reports it
    }
    //  4. The reversal, once.
    out->transfer.user_data_64 = out->k;
    rc = rl_reversal_id (o->id, out->k, &out->transfer.id);
    assert (rc == 0);
    out->sent = true;
    return rl_client_create_transfers (self, &out->transfer, 1, &out->result, timeout_ms);
}
