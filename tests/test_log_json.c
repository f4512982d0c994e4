/*  test_log_json.c: the JSON logs of a real shard and a real router
    (--log-format json, docs/logging.md).

    One shard, and a router in front of it, both with --log-format json.
    The test sends the shard resolve requests whose coordinator names carry
    ESC and other control bytes (refused: not forced), and the router a
    batch with a duplicate id (refused), each with a request id of its own;
    then stops both and reads their logs:

    1. every line is one JSON object (cJSON) with time (RFC 3339 UTC with
       ms), level, process, the instance's name under the process's key,
       event and message; no byte outside printable ASCII;
    2. the shard's refusal line carries the request's id and the hostile
       name escaped ("\x1b", not the byte), and the stop line its event;
    3. the router's refusal line carries the client's request id and the
       event client_error, and the router's start and stop lines their
       events;
    4. the hostile requests were refused and changed nothing.
*/
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <czmq.h>

#include "codec.h"
#include "routerkit.h"
#include "testkit.h"

#define TAG               0x4a534f4eull //  "JSON"
#define LEDGER            841
#define RESOLVE_REQUESTS  20
#define RESOLVE_ID_FIRST  9000
#define ROUTER_REQUEST_ID 777777
#define HOSTILE_NAME      "ev\x1b[2J\x1b]0;pwn\x07il"
#define HOSTILE_ESCAPED   "ev\\x1b[2J\\x1b]0;pwn\\x07il"

//  Sends `count` refused resolve requests (ids from RESOLVE_ID_FIRST) and
//  checks each answer.
static void
s_send_resolves (const char *endpoint, size_t count)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    tk_connect (dealer, endpoint);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    for (size_t n = 0; n < count; n++) {
        uint8_t frame[RL_HEADER_SIZE + RL_TP_SIZE];
        size_t size = tk_request_header (frame, RL_OP_RESOLVE, RESOLVE_ID_FIRST + n, 1);
        rl_tp_rec_t rec = {.id = tk_id (100 + n, TAG), .state = RL_TP_COMMIT};
        memcpy (rec.coordinator, HOSTILE_NAME, sizeof HOSTILE_NAME);
        codec_encode_tp (&rec, frame + size);
        size += RL_TP_SIZE;
        assert_int_equal (zsock_send (dealer, "b", frame, size), 0);
        zframe_t *reply = zframe_recv (dealer);
        assert_non_null (reply);
        rl_header_t h;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        assert_int_equal (
            codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &body, &body_size),
            RL_STATUS_OK);
        assert_int_equal (h.request_id, RESOLVE_ID_FIRST + n);
        rl_tp_rec_t answer;
        codec_decode_tp (body, &answer);
        assert_int_equal (answer.state, RL_TP_REFUSED);
        zframe_destroy (&reply);
    }
    zsock_destroy (&dealer);
}

//  A batch with one transfer twice, through the router: refused whole.
static void
s_send_duplicate (const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    tk_connect (dealer, endpoint);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, TK_TIMEOUT_MS);
    static uint8_t frame[TK_BAD_FRAME_SIZE_MAX];
    rl_transfer_t transfer = tk_transfer (tk_id (5, TAG), tk_id (1, TAG), tk_id (2, TAG), 10,
                                          LEDGER);
    size_t size = tk_bad_frame (TK_BAD_DUPLICATE_ID, &transfer, ROUTER_REQUEST_ID, frame,
                                sizeof frame);
    assert_int_equal (zsock_send (dealer, "b", frame, size), 0);
    zframe_t *reply = zframe_recv (dealer);
    assert_non_null (reply);
    rl_header_t h;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal (
        codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &body, &body_size),
        RL_STATUS_OK);
    assert_int_equal (h.request_id, ROUTER_REQUEST_ID);
    assert_int_equal (h.status, RL_STATUS_DUPLICATE_ID);
    zframe_destroy (&reply);
    zsock_destroy (&dealer);
}

typedef struct {
    size_t lines;
    size_t request_lines; //  lines with the request id looked for
    bool hostile_escaped; //  a message held the escaped hostile name
    bool start_seen;      //  event "start"
    bool stop_seen;       //  event "stop"
    bool client_error;    //  event "client_error" with the request id looked for
} s_seen_t;

//  Checks every line of the log at path (property 1) and what it saw.
static s_seen_t
s_check_log (harness_t *h, const char *log_name, const char *process, const char *name,
             uint64_t request_first, uint64_t request_last)
{
    char file[64];
    snprintf (file, sizeof file, "%s.log", log_name);
    char *path = harness_path (h, file);
    assert_non_null (path);
    size_t size = 0;
    char *text = harness_read_file (path, &size);
    assert_non_null (text);
    free (path);
    s_seen_t seen = {0};
    for (size_t i = 0; i < size; i++) {
        unsigned char byte = (unsigned char) text[i];
        if (byte != '\n' && (byte < 0x20 || byte >= 0x7f)) {
            fail_msg ("raw byte 0x%02x at offset %zu of %s's log:\n%s", byte, i, name, text);
        }
    }
    for (char *line = text; *line;) {
        char *end = strchr (line, '\n');
        assert_non_null (end); //  every line ends with '\n'
        *end = '\0';
        cJSON *object = cJSON_Parse (line);
        if (!object || !cJSON_IsObject (object)) {
            fail_msg ("not a JSON object in %s's log: %s", name, line);
        }
        const char *time_text = cJSON_GetStringValue (cJSON_GetObjectItem (object, "time"));
        assert_non_null (time_text);
        assert_int_equal (strlen (time_text), 24);
        assert_true (time_text[10] == 'T' && time_text[19] == '.' && time_text[23] == 'Z');
        const char *level = cJSON_GetStringValue (cJSON_GetObjectItem (object, "level"));
        assert_non_null (level);
        assert_non_null (strstr ("debug info warn error", level));
        assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (object, "process")),
                             process);
        assert_string_equal (cJSON_GetStringValue (cJSON_GetObjectItem (object, process)), name);
        const char *event = cJSON_GetStringValue (cJSON_GetObjectItem (object, "event"));
        const char *message = cJSON_GetStringValue (cJSON_GetObjectItem (object, "message"));
        assert_non_null (event);
        assert_non_null (message);
        assert_true (event[0] != '\0');
        cJSON *request = cJSON_GetObjectItem (object, "request_id");
        if (request) {
            assert_true (cJSON_IsNumber (request));
            double id = cJSON_GetNumberValue (request);
            if (id >= (double) request_first && id <= (double) request_last) {
                seen.request_lines++;
                seen.client_error |= strcmp (event, "client_error") == 0;
            }
        }
        seen.hostile_escaped |= strstr (message, HOSTILE_ESCAPED) != NULL;
        seen.start_seen |= strcmp (event, "start") == 0;
        seen.stop_seen |= strcmp (event, "stop") == 0;
        seen.lines++;
        cJSON_Delete (object);
        line = end + 1;
    }
    free (text);
    return seen;
}

static void
test_log_json (void **state)
{
    (void) state;
    harness_t *h = harness_new ("log_json");
    assert_non_null (h);
    tk_shard_t shard;
    tk_shard_init (h, &shard, "s1");
    shard.args[0] = "--log-format";
    shard.args[1] = "json";
    shard.args[2] = NULL;
    assert_true (tk_shard_start (h, &shard) > 0);
    rk_router_t router;
    rk_router_init (&router, "r1");
    snprintf (router.shards, sizeof router.shards, "%s", shard.endpoint);
    snprintf (router.shard_key_name, sizeof router.shard_key_name, "s1");
    router.args[0] = "--log-format=json";
    assert_true (rk_router_start (h, &router) > 0);

    rl_client_t *client = rl_client_new (router.endpoint);
    assert_non_null (client);
    rl_account_t accounts[2] = {tk_account (1, TAG, LEDGER, 0), tk_account (2, TAG, LEDGER, 0)};
    rl_result_rec_t results[2];
    assert_int_equal (rl_client_create_accounts (client, accounts, 2, results, TK_TIMEOUT_MS), 0);
    assert_int_equal (results[0].result, RL_OK);
    assert_int_equal (results[1].result, RL_OK);

    s_send_resolves (shard.endpoint, RESOLVE_REQUESTS);
    s_send_duplicate (router.endpoint);

    //  Nothing changed (4).
    tk_model_t model;
    tk_model_init (&model, TAG, 2);
    rl_transfer_t transfer = tk_transfer (tk_id (7, TAG), tk_id (1, TAG), tk_id (2, TAG), 500,
                                          LEDGER);
    rl_result_rec_t result;
    assert_int_equal (rl_client_create_transfers (client, &transfer, 1, &result, TK_TIMEOUT_MS), 0);
    assert_int_equal (result.result, RL_OK);
    tk_model_apply (&model, &transfer);
    tk_check_conservation (client, &model, 1);
    rl_client_destroy (&client);
    rk_router_stop (h, &router);
    assert_int_equal (tk_shard_stop (h, &shard, SIGTERM), 0);

    s_seen_t seen = s_check_log (h, "s1", "shard", "s1", RESOLVE_ID_FIRST,
                                 RESOLVE_ID_FIRST + RESOLVE_REQUESTS - 1);
    assert_true (seen.lines >= 3);
    assert_true (seen.request_lines >= 1); //  rate-limited: at least the first
    assert_true (seen.hostile_escaped);
    assert_true (seen.stop_seen);
    seen = s_check_log (h, "r1", "router", "r1", ROUTER_REQUEST_ID, ROUTER_REQUEST_ID);
    assert_int_equal (seen.request_lines, 1);
    assert_true (seen.client_error);
    assert_true (seen.start_seen && seen.stop_seen);
    harness_destroy (&h);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_log_json),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
