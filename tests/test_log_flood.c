/*  test_log_flood.c: a peer that makes a shard warn on every message
    cannot flood or pollute the shard's log.

    One real shard. For about two seconds the test sends, as fast as the
    shard answers, admin requests that are refused and logged: resolve
    batches without the force flag whose coordinator names carry ESC and
    other control bytes, load_ring blobs of noise with ESC bytes, and a ring
    whose epoch is not newer. Then it checks the shard's log:

    1. no raw ESC (nor any other byte outside printable ASCII and '\n');
    2. the escaped coordinator name is there, so the bytes were escaped,
       not dropped;
    3. each warning cause wrote at most one line per second of the flood
       (plus one), and a later line says how many were suppressed;
    4. the log stays small, whatever was sent;

    and that nothing changed: the balances are those of the one transfer,
    and the conservation check passes.
*/
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "ring.h"
#include "testkit.h"

#define TAG             0x464c4f4f44ull //  "FLOOD"
#define LEDGER          840
#define FLOOD_MS        2000
#define RESOLVE_RECORDS 64   //  records per resolve request
#define IN_FLIGHT       8    //  requests sent before the first reply is read
#define LOG_SIZE_MAX    8192 //  bytes of the whole log after the flood
#define HOSTILE_NAME    "ev\x1b[2J\x1b]0;pwn\x07il"
#define HOSTILE_ESCAPED "ev\\x1b[2J\\x1b]0;pwn\\x07il"

typedef struct {
    uint64_t resolve_records; //  refused resolve records sent
    uint64_t bad_rings;       //  load_ring of noise
    uint64_t old_rings;       //  load_ring of an epoch not newer
} s_sent_t;

static size_t
s_resolve_frame (uint8_t *frame, uint64_t request_id)
{
    size_t size = tk_request_header (frame, RL_OP_RESOLVE, request_id, RESOLVE_RECORDS);
    for (size_t i = 0; i < RESOLVE_RECORDS; i++) {
        rl_tp_rec_t rec = {.id = tk_id (1000 + i, TAG), .state = RL_TP_COMMIT, .result = 0};
        memcpy (rec.coordinator, HOSTILE_NAME, sizeof HOSTILE_NAME);
        codec_encode_tp (&rec, frame + size);
        size += RL_TP_SIZE;
    }
    return size;
}

static size_t
s_noise_ring_frame (uint8_t *frame, uint64_t request_id)
{
    size_t size = tk_request_header (frame, RL_OP_LOAD_RING, request_id, 1);
    for (size_t i = 0; i < 48; i++) {
        frame[size++] = (uint8_t) (i % 3 == 0 ? 0x1b : 0x80 + i);
    }
    return size;
}

//  Sends the hostile requests for FLOOD_MS, IN_FLIGHT at a time, and checks
//  that each is answered as refused.
static s_sent_t
s_flood (const char *endpoint, const uint8_t *old_ring, size_t old_ring_size, int flood_ms)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    tk_connect (dealer, endpoint);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    static uint8_t frame[RL_HEADER_SIZE + RESOLVE_RECORDS * RL_TP_SIZE + 4096];
    s_sent_t sent = {0};
    int64_t end_ms = zclock_mono () + flood_ms;
    uint64_t request_id = 1;
    while (zclock_mono () < end_ms) {
        for (int k = 0; k < IN_FLIGHT; k++, request_id++) {
            size_t size = 0;
            switch (request_id % 4) {
                case 0:
                    size = s_noise_ring_frame (frame, request_id);
                    sent.bad_rings++;
                    break;
                case 1:
                    size = tk_request_header (frame, RL_OP_LOAD_RING, request_id, 1);
                    memcpy (frame + size, old_ring, old_ring_size);
                    size += old_ring_size;
                    sent.old_rings++;
                    break;
                default:
                    size = s_resolve_frame (frame, request_id);
                    sent.resolve_records += RESOLVE_RECORDS;
                    break;
            }
            assert_int_equal (zsock_send (dealer, "b", frame, size), 0);
        }
        for (int k = 0; k < IN_FLIGHT; k++) {
            zframe_t *reply = zframe_recv (dealer);
            assert_non_null (reply);
            rl_header_t h;
            const uint8_t *body = NULL;
            size_t body_size = 0;
            assert_int_equal (
                codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &body, &body_size),
                RL_STATUS_OK);
            if (h.operation == RL_OP_RESOLVE) {
                assert_int_equal (h.status, RL_STATUS_OK);
                assert_int_equal (h.record_count, RESOLVE_RECORDS);
                rl_tp_rec_t answer;
                codec_decode_tp (body, &answer);
                assert_int_equal (answer.state, RL_TP_REFUSED);
                assert_int_equal (answer.result, RL_RESOLVE_NOT_FORCED);
            } else {
                assert_int_equal (h.operation, RL_OP_LOAD_RING);
                assert_true (h.status == RL_STATUS_BAD_RING
                             || h.status == RL_STATUS_EPOCH_NOT_NEWER);
            }
            zframe_destroy (&reply);
        }
    }
    zsock_destroy (&dealer);
    return sent;
}

static size_t
s_count_lines (const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr (line, '\n');
        size_t size = end ? (size_t) (end - line) : strlen (line);
        char *copy = strndup (line, size);
        assert_non_null (copy);
        count += strstr (copy, needle) != NULL;
        free (copy);
        line += size + (end ? 1 : 0);
    }
    return count;
}

static void
test_log_flood (void **state)
{
    (void) state;
    harness_t *h = harness_new ("log_flood");
    assert_non_null (h);
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    assert_true (tk_shard_start (h, &shard) > 0);
    rl_client_t *client = rl_client_new (shard.endpoint);
    assert_non_null (client);

    rl_account_t accounts[2] = {tk_account (1, TAG, LEDGER, 0), tk_account (2, TAG, LEDGER, 0)};
    rl_result_rec_t results[2];
    assert_int_equal (rl_client_create_accounts (client, accounts, 2, results, TK_TIMEOUT_MS), 0);
    assert_int_equal (results[0].result, RL_OK);
    assert_int_equal (results[1].result, RL_OK);
    rl_transfer_t transfer = tk_transfer (tk_id (7, TAG), tk_id (1, TAG), tk_id (2, TAG), 500,
                                          LEDGER);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_transfers (client, &transfer, 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (result.result, RL_OK);

    //  A valid ring of the shard's own epoch (1): refused as not newer.
    ring_t *ring = ring_new (1);
    assert_non_null (ring);
    assert_int_equal (ring_add_shard (ring, "s1", shard.endpoint, 1.0), 0);
    size_t ring_size = ring_encoded_size (ring);
    assert_true (ring_size <= 4096);
    uint8_t *ring_blob = malloc (ring_size);
    assert_non_null (ring_blob);
    assert_int_equal (ring_encode (ring, ring_blob, ring_size), ring_size);
    ring_destroy (&ring);

    int64_t start_ms = zclock_mono ();
    s_sent_t sent = s_flood (shard.endpoint, ring_blob, ring_size, FLOOD_MS);
    //  One more of each cause after the interval: it carries the count.
    zclock_sleep (1100);
    s_flood (shard.endpoint, ring_blob, ring_size, 1);
    int64_t elapsed_s = (zclock_mono () - start_ms) / 1000 + 1;
    free (ring_blob);
    assert_true (sent.resolve_records >= 1000);
    assert_true (sent.bad_rings >= 10 && sent.old_rings >= 10);

    //  Nothing changed.
    rl_id_t ids[2] = {tk_id (1, TAG), tk_id (2, TAG)};
    rl_account_t after[2];
    assert_int_equal (rl_client_lookup_accounts (client, ids, 2, after, TK_TIMEOUT_MS), 0);
    assert_int_equal (after[0].debits_posted, 500);
    assert_int_equal (after[1].credits_posted, 500);
    tk_model_t model;
    tk_model_init (&model, TAG, 2);
    tk_model_apply (&model, &transfer);
    tk_check_conservation (client, &model, 1);
    rl_client_destroy (&client);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);

    char *log_path = harness_path (h, "s1.log");
    assert_non_null (log_path);
    size_t size = 0;
    char *text = harness_read_file (log_path, &size);
    assert_non_null (text);
    for (size_t i = 0; i < size; i++) {
        unsigned char byte = (unsigned char) text[i];
        if (byte != '\n' && (byte < 0x20 || byte >= 0x7f)) {
            fail_msg ("raw byte 0x%02x at offset %zu of the log:\n%s", byte, i, text);
        }
    }
    assert_non_null (strstr (text, HOSTILE_ESCAPED));
    size_t resolve_lines = s_count_lines (text, "resolve refused");
    size_t epoch_lines = s_count_lines (text, "is not newer than");
    size_t ring_lines = s_count_lines (text, "load_ring refused") - epoch_lines;
    if (resolve_lines > (size_t) elapsed_s + 1 || ring_lines > (size_t) elapsed_s + 1
        || epoch_lines > (size_t) elapsed_s + 1 || size > LOG_SIZE_MAX) {
        fail_msg ("log not bounded after %" PRIu64 " refused records in %" PRId64 " s:\n%s",
                  sent.resolve_records + sent.bad_rings + sent.old_rings, elapsed_s, text);
    }
    assert_true (resolve_lines >= 2 && ring_lines >= 2 && epoch_lines >= 2);
    assert_true (s_count_lines (text, "similar lines suppressed]") >= 3);
    free (text);
    free (log_path);
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_log_flood),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
