/*  codec.h: bytes on the wire <-> records in memory.

    The only module that reads raw bytes from the network. Every decode
    checks sizes first and returns a named status; nothing here asserts on
    input that came off a socket (asserts are for misuse of the API: NULL
    pointers, an output buffer too small).

    A message is one frame: header (RL_HEADER_SIZE) + record_count records.
    Record sizes per operation, in bytes (docs/protocol.md, "Operations"):

        op                       request record       reply record
        create_accounts          account 128, 0..N    result 16, one per account
        create_transfers         transfer 128, 0..N   result 16, one per transfer
        lookup_accounts          id 16, 0..N          account 128, one per id
        lookup_transfers         id 16, 0..N          transfer 128, one per id
        get_account_transfers    filter 64, exactly 1 transfer 128, 0..limit
        status                   none, 0              status 256, exactly 1
        load_ring                blob, count 1        none, 0
        get_ring                 none, 0              blob, count 1
        prepare                  prepare 256, 0..N    two-phase 112, one each
        decide, outcome_query    two-phase 112, 0..N  two-phase 112, one each
        in_doubt                 none                 in-doubt 288, 0..N
        audit                    none                 audit 256, one
        resolve                  two-phase 112, 0..N  two-phase 112, one each
        migrate_begin            migrate 192, 1       migrate 192, 1
        migrate_export           migrate 192, 1       chunk blob, count 1
        migrate_import           chunk blob, count 1  migrate 192, 1
        migrate_freeze, _drain,
        _unfreeze, _commit       migrate 192, 1       migrate 192, 1
        migrate_lease            migrate 192, 1       migrate 192, 2
        events_read              events_req 64, 1     event 160, 0..limit
        backup_hold, _cut,
        _release, _status        backup 512, 1        backup 512, 1
        promote, degrade, fence  none                 none
        repl_status              none                 repl 256, 1..5

    N is RL_BATCH_RECORDS_MAX. A blob body (load_ring request, get_ring
    reply, a migration chunk: common/chunk.h) is opaque to the codec: 1..RL_RING_BLOB_SIZE_MAX
   bytes, with record_count 1. A reply whose status is not RL_STATUS_OK has no body.

    Programs build and read frames with the frame helpers below
    (codec_request_header, codec_encode_frame, codec_parse_reply, ...) and
    records with codec_encode_* / codec_decode_*: the header size and the
    wire offsets stay inside codec.c.
*/
#ifndef RL_CODEC_H
#define RL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

//  Record size of a blob body (load_ring request, get_ring reply): the body
//  is one variable-sized record of 1..RL_RING_BLOB_SIZE_MAX bytes.
#define RL_BLOB SIZE_MAX

//  Header --------------------------------------------------------------------
void codec_encode_header (const rl_header_t *header, uint8_t *out); //  writes RL_HEADER_SIZE bytes
void codec_decode_header (const uint8_t *in, rl_header_t *header);  //  reads RL_HEADER_SIZE bytes

//  Checks a request frame, in this order, and returns the first failure:
//      size < RL_HEADER_SIZE                          MALFORMED
//      magic != RL_MAGIC                              BAD_MAGIC
//      version != RL_VERSION                          BAD_VERSION
//      !codec_op_is_known (operation)                 UNKNOWN_OPERATION
//      status or epoch not zero                       MALFORMED
//      record_count > RL_BATCH_RECORDS_MAX, or size
//        > RL_MESSAGE_SIZE_MAX (blob: header + blob max) TOO_MANY_RECORDS
//      body != count * record size; per-operation
//        count rules (table above; an operation
//        without records takes count 0); empty blob  MALFORMED
//      a record of prepare, decide, outcome_query or
//        resolve names a transfer by the zero or the
//        all-ones id; a PREPARE record also names
//        such an account, or has amount 0, an unknown
//        flag or a non-zero reserved field         MALFORMED
//  Fills *header whenever size >= RL_HEADER_SIZE, so that the caller can
//  echo request_id in an error reply; zeroes it otherwise. `frame` may be
//  NULL when size is 0.
rl_status_t codec_check_request (const uint8_t *frame, size_t size, rl_header_t *header);

//  Checks a reply frame the same way, with reply record sizes. The return
//  value says whether the frame is well formed, not what the server said:
//  a well-formed error reply returns RL_STATUS_OK with header->status set.
//  A reply with a non-zero status must be a bare header (count 0) and may
//  carry any operation (it echoes the request's), but its status must be a
//  defined rl_status_t value. Reply epochs are not checked. The two-phase
//  records of a reply (prepare, decide, outcome_query, resolve) must not
//  name the zero or the all-ones transfer id.
rl_status_t codec_check_reply (const uint8_t *frame, size_t size, rl_header_t *header);

//  Record size of a request or reply of `op`, in bytes: RL_BLOB for a blob
//  body, 0 when the body is empty (and for an unknown operation: check
//  codec_op_is_known first).
size_t codec_request_record_size (uint32_t op);
size_t codec_reply_record_size (uint32_t op);
//  Operations 1..8, served by shards and routers today; the two-phase and
//  admin operations of proto.h are reserved and answer unknown_operation.
bool codec_op_is_known (uint32_t op);

//  Records: encode writes exactly the record size; decode reads exactly it.
void codec_encode_id (rl_id_t id, uint8_t *out);
rl_id_t codec_decode_id (const uint8_t *in);
void codec_encode_account (const rl_account_t *account, uint8_t *out);
void codec_decode_account (const uint8_t *in, rl_account_t *account);
void codec_encode_transfer (const rl_transfer_t *transfer, uint8_t *out);
void codec_decode_transfer (const uint8_t *in, rl_transfer_t *transfer);
void codec_encode_result (const rl_result_rec_t *result, uint8_t *out);
void codec_decode_result (const uint8_t *in, rl_result_rec_t *result);
void codec_encode_filter (const rl_filter_t *filter, uint8_t *out);
void codec_decode_filter (const uint8_t *in, rl_filter_t *filter);
//  encode_status asserts that name holds a NUL; decode_status always
//  NUL-terminates name (its last byte is forced to 0, whatever came in).
void codec_encode_status (const rl_status_rec_t *status, uint8_t *out);
void codec_decode_status (const uint8_t *in, rl_status_rec_t *status);

void codec_encode_in_doubt (const rl_in_doubt_rec_t *rec, uint8_t *out);
void codec_decode_in_doubt (const uint8_t *in, rl_in_doubt_rec_t *rec);
void codec_encode_audit (const rl_audit_rec_t *rec, uint8_t *out);
void codec_decode_audit (const uint8_t *in, rl_audit_rec_t *rec);
void codec_encode_tp (const rl_tp_rec_t *tp, uint8_t *out);
void codec_decode_tp (const uint8_t *in, rl_tp_rec_t *tp);
void codec_encode_migrate (const rl_migrate_rec_t *rec, uint8_t *out);
void codec_decode_migrate (const uint8_t *in, rl_migrate_rec_t *rec);
void codec_encode_arc_load (const rl_arc_load_rec_t *rec, uint8_t *out);
void codec_decode_arc_load (const uint8_t *in, rl_arc_load_rec_t *rec);
void codec_encode_hot_account (const rl_hot_account_rec_t *rec, uint8_t *out);
void codec_decode_hot_account (const uint8_t *in, rl_hot_account_rec_t *rec);
void codec_encode_events_req (const rl_events_req_t *rec, uint8_t *out);
void codec_decode_events_req (const uint8_t *in, rl_events_req_t *rec);
void codec_encode_event (const rl_event_t *rec, uint8_t *out);
void codec_decode_event (const uint8_t *in, rl_event_t *rec);
void codec_encode_backup (const rl_backup_rec_t *rec, uint8_t *out);
void codec_decode_backup (const uint8_t *in, rl_backup_rec_t *rec);
void codec_encode_repl (const rl_repl_rec_t *rec, uint8_t *out);
void codec_decode_repl (const uint8_t *in, rl_repl_rec_t *rec);
void codec_encode_prepare (const rl_prepare_rec_t *prepare, uint8_t *out);
void codec_decode_prepare (const uint8_t *in, rl_prepare_rec_t *prepare);

//  Frames ------------------------------------------------------------------------
//  A frame is a header followed by its body. With these, no code outside the
//  codec needs to know the header's size or where a field sits on the wire.
//
//  A request header: magic, version, operation, request_id, record_count;
//  status and epoch 0.
rl_header_t codec_request_header (uint16_t operation, uint64_t request_id, uint32_t record_count);
//  The header of a reply to `request`: its operation and request id, with
//  `status`, `record_count` (0 unless status is ok: an error reply is a bare
//  header) and the answering server's `epoch`.
rl_header_t codec_reply_header (const rl_header_t *request, uint32_t status, uint32_t record_count,
                                uint64_t epoch);
//  True when `size` bytes can hold a header (a shorter frame has no request
//  id to answer to: it is dropped).
bool codec_frame_has_header (size_t size);
//  Bytes of a frame whose body is body_size bytes.
size_t codec_frame_size (size_t body_size);
//  Writes the header, then body_size bytes of body, into frame (which holds
//  codec_frame_size (body_size) bytes); returns where the body starts in
//  frame. body may be NULL: the caller then fills the body in place.
uint8_t *codec_encode_frame (const rl_header_t *header, const void *body, size_t body_size,
                             uint8_t *frame);
//  The body of a frame that holds a header (asserted: check the frame
//  first): a pointer into frame, and its size in *body_size_p.
const uint8_t *codec_frame_body (const uint8_t *frame, size_t size, size_t *body_size_p);
//  codec_check_request / codec_check_reply, and when the frame is well
//  formed (RL_STATUS_OK) its body; *body_p NULL and *body_size_p 0 otherwise.
rl_status_t codec_parse_request (const uint8_t *frame, size_t size, rl_header_t *header,
                                 const uint8_t **body_p, size_t *body_size_p);
rl_status_t codec_parse_reply (const uint8_t *frame, size_t size, rl_header_t *header,
                               const uint8_t **body_p, size_t *body_size_p);
//  The request id of a frame (0 when it is too short for a header), and its
//  replacement in place (the frame must hold a header), e.g. to resend a
//  prepared frame under a new id.
uint64_t codec_frame_request_id (const uint8_t *frame, size_t size);
void codec_frame_set_request_id (uint8_t *frame, size_t size, uint64_t request_id);

//  Placement -------------------------------------------------------------------
//  The 16 wire bytes of the id that places a request record of `op` on the
//  ring: the account id of create_accounts, the debit account id of
//  create_transfers, the id of a lookup, the account id of a filter. NULL
//  for an operation whose records are not placed.
const uint8_t *codec_routing_id (uint32_t op, const uint8_t *record);

//  Does this member of a linked chain place its chain? A chain runs on the
//  shard of its first post or void whose debit account id is usable (its
//  pending transfer is decided there, by its debit shard), else on the
//  shard of its first member (docs/payments.md, "Linked chains"). The
//  router and the shards place a chain by this one rule.
bool codec_transfer_places_chain (const rl_transfer_t *member);
//  The id of a request record of a create or a lookup (the idempotency key
//  of a create); zero for other operations.
rl_id_t codec_record_id (uint32_t op, const uint8_t *record);
//  The timestamp of a transfer record in wire form (0: not found, in a
//  lookup reply).
uint64_t codec_transfer_timestamp (const uint8_t *record);

//  Little-endian primitives, for modules that lay out their own storage.
void codec_put_u16 (uint8_t *out, uint16_t v);
void codec_put_u32 (uint8_t *out, uint32_t v);
void codec_put_u64 (uint8_t *out, uint64_t v);
uint16_t codec_get_u16 (const uint8_t *in);
uint32_t codec_get_u32 (const uint8_t *in);
uint64_t codec_get_u64 (const uint8_t *in);
//  Big-endian u64, for RocksDB keys that must sort by number.
void codec_put_u64_be (uint8_t *out, uint64_t v);
uint64_t codec_get_u64_be (const uint8_t *in);

#endif
