/*  rl_limits.h: every bound in ringledger, in one place.

    Each limit is a named default with its unit last in the name. Related
    limits are tied together by _Static_assert so that a change to one that
    breaks another fails the build, not a production cluster.

    Timeouts are ordered (see DESIGN, "Results"):
        prepare < shard deadline < router deadline < client timeout
    so that an unreachable credit shard yields a definite `aborted` from the
    shard rather than the router's `outcome_unknown`.
*/
#ifndef RL_RL_LIMITS_H
#define RL_RL_LIMITS_H

#include <stdint.h>

//  Wire protocol ---------------------------------------------------------
#define RL_HEADER_SIZE          32      //  bytes in every message header
#define RL_ACCOUNT_SIZE         128     //  bytes per account record
#define RL_TRANSFER_SIZE        128     //  bytes per transfer record
#define RL_ID_SIZE              16      //  bytes per lookup id
#define RL_RESULT_SIZE          16      //  bytes per create result
#define RL_FILTER_SIZE          64      //  bytes per account-history filter
#define RL_STATUS_SIZE          256     //  bytes of the status record
#define RL_BATCH_RECORDS_MAX    8190    //  records in one request
#define RL_MESSAGE_SIZE_MAX     (RL_HEADER_SIZE + RL_BATCH_RECORDS_MAX * RL_TRANSFER_SIZE)
#define RL_RING_BLOB_SIZE_MAX   (4u << 20)  //  bytes of a binary ring
#define RL_HISTORY_LIMIT_MAX    RL_BATCH_RECORDS_MAX  //  transfers per history reply

//  Ring ------------------------------------------------------------------
#define RL_SHARDS_MAX           1024    //  shards in one ring
#define RL_SHARD_NAME_SIZE_MAX  32      //  bytes, including the terminating NUL
#define RL_ENDPOINT_SIZE_MAX    128     //  bytes, including the terminating NUL
#define RL_RING_POINTS_PER_WEIGHT 128   //  default points per unit of weight
#define RL_RING_POINTS_MAX      (1u << 20)  //  points in one ring
#define RL_RING_WEIGHT_MAX      1000.0  //  largest weight of one shard

//  Shard -----------------------------------------------------------------
#define RL_SHARD_REQUESTS_PER_TURN_MAX 256  //  requests gathered into one group commit
#define RL_SHARD_ACCOUNTS_MAX   (16u << 20) //  accounts held by one shard
#define RL_SHARD_SNDHWM_MESSAGES 10000      //  ZeroMQ high-water mark of shard sockets
#define RL_SHARD_RCVHWM_MESSAGES 10000
#define RL_SHARD_CHECKPOINT_TRANSFERS (1u << 18) //  transfers between two checkpoints
#define RL_SHARD_ACCOUNTS_INITIAL (1u << 16)     //  account slots allocated at start

//  Timeouts (ms), ordered ------------------------------------------------
#define RL_PREPARE_TIMEOUT_MS   1000    //  coordinator waits this long for PREPARE-OK
#define RL_SHARD_DEADLINE_MS    2000    //  shard answers a request within this
#define RL_ROUTER_DEADLINE_MS   4000    //  router answers outcome_unknown after this
#define RL_CLIENT_TIMEOUT_MS    8000    //  client gives up waiting (then retries)

_Static_assert (RL_PREPARE_TIMEOUT_MS < RL_SHARD_DEADLINE_MS, "prepare < shard deadline");
_Static_assert (RL_SHARD_DEADLINE_MS < RL_ROUTER_DEADLINE_MS, "shard < router deadline");
_Static_assert (RL_ROUTER_DEADLINE_MS < RL_CLIENT_TIMEOUT_MS, "router deadline < client");
_Static_assert (RL_ACCOUNT_SIZE == RL_TRANSFER_SIZE, "one record size for both creates");
_Static_assert (RL_MESSAGE_SIZE_MAX < (1u << 24), "a full batch fits one ZeroMQ message");
_Static_assert (RL_HISTORY_LIMIT_MAX <= RL_BATCH_RECORDS_MAX, "a history reply fits");
_Static_assert (RL_SHARDS_MAX <= UINT16_MAX, "shard index fits a u16 on the wire");

#endif
