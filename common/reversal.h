/*  reversal.h: reversals (refunds) of transfers, in the client library
    (docs/payments.md).

    A reversal of an original transfer O is an ordinary transfer that moves
    money back: debit O's credit account, credit O's debit account, O's
    ledger. Its id is derived from (O's id, k), k in 0..RL_REVERSAL_K_MAX - 1,
    by rl_reversal_id, so that anyone can compute it: BLAKE2b with a 16-byte
    digest, no key, the personalisation "ringledger.rev.1" (16 ASCII bytes,
    the domain tag), over the 20 bytes of O's id in wire form (16 bytes,
    little-endian) followed by k (u32, little-endian); the digest is the
    reversal's id in wire form. Its user_data_128 is O's id and its
    user_data_64 is k, so every reversal names its original and can be
    checked: id == rl_reversal_id (user_data_128, user_data_64).

    The cluster knows nothing of reversals: the rules below are kept by the
    clients that follow them (this library, rlctl, the Python client).
    1. Only an original that took effect (lookup_transfers finds it) is
       reversed; a pending transfer or a void is not (it moved no posted
       money).
    2. k is the smallest k whose id is free (neither applied nor burned):
       the ids of one original are taken in order. Two callers that reverse
       the same original at once so pick the same id, and the cluster's
       idempotency lets only one of them apply.
    3. The reversals that took effect, this one included, sum at most to
       the original's amount. With rule 2 this holds however many callers
       race, because the reversals below k are all final when k is chosen.
    4. A reversal burned by a business failure (exceeds_credits, ...) keeps
       its k; the next attempt takes k + 1. A reversal whose outcome is open
       (outcome_unknown, a timeout) is retried with the SAME k, never k + 1.

    rl_client_reverse does it in four requests: look the original up; probe
    every k at once (a create_transfers of RL_REVERSAL_K_MAX records with
    amount 0: the shard checks the id before the fields, so a taken id
    answers exists_with_different_amount and a free one
    amount_must_not_be_zero, and nothing is applied or burned); look up the
    taken ids (found: applied, with its amount; not found: burned); then,
    if every rule holds, create the reversal once.
*/
#ifndef RL_REVERSAL_H
#define RL_REVERSAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "proto.h"

#define RL_REVERSAL_PERSONAL "ringledger.rev.1" //  the domain tag: 16 bytes, no NUL
#define RL_REVERSAL_K_NEXT   UINT32_MAX         //  rl_client_reverse: the smallest free k

//  What rl_client_reverse did. SENT: the reversing transfer was sent once,
//  and the cluster's answer is in result (ok, exists, or a failure: a
//  business failure burns k, retry with the next k; an open outcome:
//  retry with the same k). Every other outcome sent no create.
typedef enum {
    RL_REVERSAL_SENT = 0,
    RL_REVERSAL_ORIGINAL_NOT_FOUND, //  no transfer took effect under that id (unknown, or burned)
    RL_REVERSAL_NOT_REVERSIBLE,     //  the original is a pending transfer or a void
    RL_REVERSAL_K_NOT_NEXT,         //  k is free, but a smaller k is free too
    RL_REVERSAL_EXCEEDS_ORIGINAL,   //  the reversals would sum above the original's amount
    RL_REVERSAL_OPEN,               //  a reversal of the original is still open: retry later
    RL_REVERSAL_EXHAUSTED,          //  every k is taken
    RL_REVERSAL_DISORDER,           //  a k above a free one is taken: ids made outside the rules
    RL_REVERSAL_OUTCOMES
} rl_reversal_outcome_t;

//  What to reverse. amount 0: what is left of the original (its whole
//  amount when nothing was reversed yet). code 0: the original's.
typedef struct {
    rl_id_t original;
    uint32_t k;      //  0..RL_REVERSAL_K_MAX - 1, or RL_REVERSAL_K_NEXT
    uint64_t amount; //  minor units; 0: the rest
    uint16_t code;   //  0: the original's code
    uint32_t user_data_32;
} rl_reversal_request_t;

//  The answer.
typedef struct {
    rl_reversal_outcome_t outcome;
    uint32_t k;             //  the k used (or that would have been)
    rl_transfer_t original; //  as looked up; timestamp 0: not found
    rl_transfer_t transfer; //  the reversing transfer (sent when SENT)
    rl_result_rec_t result; //  SENT: the cluster's answer to it
    uint64_t reversed;      //  minor units: the reversals before k that took effect
    uint32_t taken;         //  reversal ids of the original taken (applied or burned)
    uint32_t open_k;        //  OPEN: a k whose outcome is open
    uint32_t open_result;   //  OPEN: what the probe of open_k answered
    bool sent;              //  the reversing transfer was sent (unanswered if the call failed)
} rl_reversal_t;

//  The id of reversal k of original: 0, or -1 when k >= RL_REVERSAL_K_MAX
//  or the digest is 0 or all ones (never seen: 2^-127).
int rl_reversal_id (rl_id_t original, uint32_t k, rl_id_t *out);

//  Reverses request->original by the rules above, through self (a router;
//  the probe and the create go to the reversal's debit shard, the lookups
//  to every shard). Returns like any call (client.h): 0 when every request
//  was answered, and then out->outcome says what happened; a status or a
//  client error otherwise (if the create itself was sent and not
//  answered, RL_CLIENT_TIMEOUT: retry with the same k). RL_CLIENT_ERR_ARGS,
//  nothing sent: an original id 0 or all ones, k out of range.
int rl_client_reverse (rl_client_t *self, const rl_reversal_request_t *request, rl_reversal_t *out,
                       int timeout_ms);

//  The name of an outcome ("sent", "original_not_found", ...) and what to do.
const char *rl_reversal_outcome_name (rl_reversal_outcome_t outcome);
const char *rl_reversal_outcome_hint (rl_reversal_outcome_t outcome);

#endif
