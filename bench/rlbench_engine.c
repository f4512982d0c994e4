/*  rlbench_engine.c: the requests in flight of rlbench (bench/README.md,
    "Harness").

    N connections, each a client of the client library (client.h) with up
    to --window requests in flight (slots). Closed loop: every free slot
    sends at once. Open loop: batches arrive as a Poisson process at --rate
    transfers/s, and a request's latency counts from its arrival (its
    intended send time), so time queued in the generator is not hidden.

    DESIGN
    Requests go through the library's pipelined calls without copies: the
    records are encoded straight into the request frame
    (rl_client_send_begin/end), a reply is read where it arrived
    (rl_client_recv_borrow), and one rl_client_wait_any covers every
    connection. A reply finds its slot by the request id the library gave
    (a scan of the connection's window). A request that times out is
    cancelled in the library, so its late reply is dropped there. Every
    outcome goes into the check's model: ok or exists applied, no reply,
    a reply that does not decode or an unknown result unknown (settled at
    the end).

    INVARIANTS
    1. A slot is busy from its send until its reply or its timeout, never
       both: the transfers of a request are counted once.
    2. A connection's busy slots are exactly its requests in the library's
       window (rl_client_inflight).
    3. Transfer ids are consecutive per request; a request that could not
       be sent gives its ids back.

    LIMITS
    At most one window of replies per connection per loop turn; the drain
    at the end is bounded by --timeout-ms.
*/
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "rlbench.h"

//  Connections ---------------------------------------------------------------
int
rlb_connect (bench_t *b)
{
    for (int i = 0; i < b->o.connections; i++) {
        conn_t *c = &b->conns[i];
        const char *endpoint = b->o.endpoints[(size_t) i % b->o.endpoint_count];
        b->clients[i] = rl_client_new (endpoint);
        if (!b->clients[i]) {
            fprintf (stderr, "rlbench: cannot connect to %s\n", endpoint);
            return -1;
        }
        if (rl_client_set_window (b->clients[i], (size_t) b->window) != 0) {
            return -1;
        }
        //  A send waits for its connection no longer than a reply would.
        rl_client_set_send_timeout (b->clients[i], b->o.timeout_ms);
        c->slots = calloc ((size_t) b->window, sizeof (slot_t));
        if (!c->slots) {
            return -1;
        }
        for (int s = 0; s < b->window; s++) {
            c->slots[s].recs = malloc (b->o.batch * sizeof (rec_t));
            if (!c->slots[s].recs) {
                return -1;
            }
        }
        c->free_slots = b->window;
    }
    return 0;
}

void
rlb_disconnect (bench_t *b)
{
    for (int i = 0; i < b->o.connections; i++) {
        conn_t *c = &b->conns[i];
        if (c->slots) {
            for (int s = 0; s < b->window; s++) {
                free (c->slots[s].recs);
            }
            free (c->slots);
            c->slots = NULL;
        }
        rl_client_destroy (&b->clients[i]);
    }
}

//  A transfer whose outcome is unknown: the check settles it by lookup. A
//  pending transfer, post or void whose outcome is unknown is voided later
//  (applied or not, a void leaves nothing pending and posts nothing).
static void
s_add_unknown (bench_t *b, uint64_t seq, rec_t rec)
{
    if (rec.kind != REC_PLAIN) {
        if (rec.kind == REC_PENDING) {
            rec.pending_seq = seq;
        }
        rlb_resolve_push (b, rec, true);
        if (rec.kind != REC_POST) {
            return; //  posts nothing, whatever happened
        }
    }
    if (rl_check_unknown (b->check, rlb_transfer_id (b, seq), rec.debit, rec.credit, rec.amount)
        != 0) {
        b->model_lost = true; //  out of memory: the check must fail, not guess
    }
}

//  A transfer acknowledged ok or exists. A pending transfer posts nothing
//  (it waits for its post or void), a post posts the pending transfer's
//  amount (it posts all of it), a void nothing.
static void
s_apply_model (bench_t *b, uint64_t seq, rec_t rec)
{
    switch (rec.kind) {
        case REC_PENDING:
            rec.pending_seq = seq;
            rlb_resolve_push (b, rec, false);
            b->pending_ok++;
            b->pending_cross_ok += b->account_shard[rec.debit] != b->account_shard[rec.credit];
            return;
        case REC_VOID:
            b->voids_ok++;
            return;
        case REC_POST:
            b->posts_ok++;
            break;
        default:
            break;
    }
    rl_check_applied (b->check, rlb_transfer_id (b, seq), rec.debit, rec.credit, rec.amount);
    b->ok_total++;
}

//  A pending transfer, post or void that definitely did not apply: a post
//  or void is tried again as a void (unless its pending transfer is settled
//  for good), so that nothing stays pending.
static void
s_not_applied (bench_t *b, rec_t rec, uint32_t result)
{
    bool settled = result >= RL_PENDING_TRANSFER_NOT_FOUND && result <= RL_PENDING_TRANSFER_EXPIRED;
    if ((rec.kind == REC_POST || rec.kind == REC_VOID) && !settled) {
        rlb_resolve_push (b, rec, true);
    }
}

//  Builds and sends one request on a free slot of connection ci. Returns 0
//  when sent; the slot stays free otherwise.
static int
s_send (bench_t *b, int ci, uint64_t intended_ns, bool measured)
{
    conn_t *c = &b->conns[ci];
    int si = 0;
    while (c->slots[si].busy) {
        si++;
    }
    assert (si < b->window);
    slot_t *slot = &c->slots[si];
    bool lookup = b->o.lookup_percent > 0 && rlb_rand_unit (b) * 100.0 < b->o.lookup_percent;
    uint16_t op = lookup ? RL_OP_LOOKUP_ACCOUNTS : RL_OP_CREATE_TRANSFERS;
    uint32_t n = b->o.batch;
    if (b->resolve_only) {
        size_t queued = rlb_resolve_queued (b);
        n = queued < n ? (uint32_t) queued : n;
        lookup = false;
        op = RL_OP_CREATE_TRANSFERS;
        if (n == 0) {
            return -1; //  nothing to resolve now
        }
    }
    size_t record_size = lookup ? RL_ID_SIZE : RL_TRANSFER_SIZE;
    uint8_t *out = NULL;
    if (rl_client_send_begin (b->clients[ci], n * record_size, &out) != 0) {
        return -1; //  out of memory: nothing sent, the slot stays free
    }
    uint64_t first_seq = b->next_seq;
    uint64_t cross = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (lookup) {
            codec_encode_id (rlb_account_id (b, rlb_pick (b)), out + (size_t) i * RL_ID_SIZE);
            continue;
        }
        rec_t rec = rlb_next_transfer (b);
        uint32_t d = rec.debit, cr = rec.credit;
        slot->recs[i] = rec;
        cross += b->account_shard[d] != b->account_shard[cr];
        rl_transfer_t t = {.id = rlb_transfer_id (b, b->next_seq++),
                           .debit_account_id = rlb_account_id (b, d),
                           .credit_account_id = rlb_account_id (b, cr),
                           .amount = rec.amount,
                           .ledger = b->o.ledger,
                           .code = 1,
                           .flags = rec.kind == REC_PENDING ? RL_TRANSFER_PENDING : 0};
        if (rec.kind == REC_POST || rec.kind == REC_VOID) {
            //  All of it: the rest (accounts, ledger, code) is inherited.
            t = (rl_transfer_t){.id = t.id,
                                .debit_account_id = t.debit_account_id,
                                .pending_id = rlb_transfer_id (b, rec.pending_seq),
                                .flags = rec.kind == REC_POST ? RL_TRANSFER_POST_PENDING_TRANSFER
                                                              : RL_TRANSFER_VOID_PENDING_TRANSFER};
        }
        codec_encode_transfer (&t, out + (size_t) i * RL_TRANSFER_SIZE);
    }
    uint64_t request_id = 0;
    if (rl_client_send_end (b->clients[ci], op, n, &request_id) != 0) {
        if (!lookup) {
            //  Never sent: the ids were not used on the wire; give them up.
            b->next_seq = first_seq;
        }
        return -1;
    }
    *slot = (slot_t){.busy = true,
                     .measured = measured,
                     .op = op,
                     .count = n,
                     .request_id = request_id,
                     .first_seq = first_seq,
                     .intended_ns = intended_ns,
                     .recs = slot->recs};
    c->free_slots--;
    if (measured) {
        if (lookup) {
            b->lookup_requests_measured++;
        } else {
            b->create_requests_measured++;
            b->sent_transfers_measured += n;
            b->cross_sent_measured += cross;
        }
    }
    return 0;
}

//  The reply of a create_transfers request: results into the model.
static void
s_on_create_reply (bench_t *b, slot_t *slot, const rl_header_t *h, const uint8_t *body)
{
    if (h->status != RL_STATUS_OK) {
        if (slot->measured && h->status < 32) {
            b->statuses[h->status]++;
        }
        b->tick_errors += slot->count;
        for (uint32_t i = 0; i < slot->count; i++) {
            //  storage_error: the outcome is unknown. Every other status: nothing applied.
            if (h->status == RL_STATUS_STORAGE_ERROR) {
                s_add_unknown (b, slot->first_seq + i, slot->recs[i]);
            } else {
                s_not_applied (b, slot->recs[i], RL_BUSY);
            }
        }
        return;
    }
    for (uint32_t i = 0; i < slot->count; i++) {
        rl_result_rec_t r;
        codec_decode_result (body + (size_t) i * RL_RESULT_SIZE, &r);
        uint32_t idx = r.index < slot->count ? r.index : i;
        if (slot->measured) {
            if (r.result < 256) {
                b->results[r.result]++;
            } else {
                b->results_other++;
            }
        }
        if (r.result == RL_OK || r.result == RL_EXISTS) {
            s_apply_model (b, slot->first_seq + idx, slot->recs[idx]);
            b->tick_ok++;
            b->ok_measured += slot->measured;
        } else {
            b->tick_errors++;
            const char *name = rl_result_name (r.result);
            bool known = name && strcmp (name, "unknown") != 0;
            if (r.result == RL_OUTCOME_UNKNOWN || r.result == RL_STORAGE_ERROR
                || r.result == RL_IN_PROGRESS || r.result == RL_IN_DOUBT || !known) {
                s_add_unknown (b, slot->first_seq + idx, slot->recs[idx]);
            } else {
                s_not_applied (b, slot->recs[idx], r.result);
            }
        }
    }
}

//  Frees a busy slot whose request left the library's window.
static void
s_slot_free (conn_t *c, slot_t *slot)
{
    assert (slot->busy);
    slot->busy = false;
    c->free_slots++;
}

//  A request with no usable answer (no reply in time, or a reply that does
//  not decode or match it): its transfers are unknown.
static void
s_slot_unknown (bench_t *b, conn_t *c, slot_t *slot)
{
    if (slot->op == RL_OP_CREATE_TRANSFERS) {
        for (uint32_t i = 0; i < slot->count; i++) {
            s_add_unknown (b, slot->first_seq + i, slot->recs[i]);
        }
    }
    b->tick_errors += slot->count;
    s_slot_free (c, slot);
}

//  The busy slot of connection ci that sent request_id (in the library's
//  window, invariant 2).
static slot_t *
s_slot_of (bench_t *b, int ci, uint64_t request_id)
{
    conn_t *c = &b->conns[ci];
    for (int si = 0; si < b->window; si++) {
        if (c->slots[si].busy && c->slots[si].request_id == request_id) {
            return &c->slots[si];
        }
    }
    assert (false); //  the library answers only requests in its window
    return NULL;
}

//  The answer `rc` of rl_client_recv_borrow to one of connection ci's requests.
static void
s_on_reply (bench_t *b, int ci, int rc, const rl_header_t *h, const uint8_t *body, uint64_t now)
{
    conn_t *c = &b->conns[ci];
    slot_t *slot = s_slot_of (b, ci, h->request_id);
    if (!slot) {
        return;
    }
    bool size_ok = h->status != RL_STATUS_OK || h->record_count == slot->count;
    if (rc == RL_CLIENT_ERR_REPLY || !size_ok) {
        b->bad_replies++;
        s_slot_unknown (b, c, slot);
        return;
    }
    if (slot->op == RL_OP_CREATE_TRANSFERS) {
        s_on_create_reply (b, slot, h, body);
    } else if (h->status != RL_STATUS_OK) {
        b->tick_errors++;
        if (slot->measured && h->status < 32) {
            b->statuses[h->status]++;
        }
    }
    if (slot->measured) {
        uint64_t latency = now > slot->intended_ns ? now - slot->intended_ns : 0;
        hist_record (slot->op == RL_OP_CREATE_TRANSFERS ? &b->latency : &b->lookup_latency,
                     latency);
        b->last_reply_ns = now;
    }
    b->tick_requests++;
    s_slot_free (c, slot);
}

//  Requests with no reply after --timeout-ms: their transfers are unknown.
static void
s_expire (bench_t *b, uint64_t now)
{
    uint64_t timeout_ns = (uint64_t) b->o.timeout_ms * 1000000ull;
    for (int ci = 0; ci < b->o.connections; ci++) {
        conn_t *c = &b->conns[ci];
        for (int si = 0; si < b->window; si++) {
            slot_t *slot = &c->slots[si];
            if (slot->busy && now - slot->intended_ns > timeout_ns) {
                int rc = rl_client_cancel (b->clients[ci], slot->request_id);
                assert (rc == 0); //  invariant 2
                (void) rc;
                b->timeouts++;
                s_slot_unknown (b, c, slot);
            }
        }
    }
}

static int
s_inflight (const bench_t *b)
{
    int n = 0;
    for (int ci = 0; ci < b->o.connections; ci++) {
        n += b->window - b->conns[ci].free_slots;
    }
    return n;
}

//  Receives every reply that is ready; waits up to wait_ns for the first.
static void
s_poll (bench_t *b, uint64_t wait_ns)
{
    bool ready[RLB_CONNECTIONS_MAX];
    size_t count = (size_t) b->o.connections;
    int timeout_ms = 0;
    if (wait_ns >= RLB_OPEN_SPIN_NS) {
        timeout_ms = (int) (wait_ns / 1000000ull) - 1;
    }
    int rc = rl_client_wait_any (b->clients, count, timeout_ms, ready);
    if (rc == 0 && wait_ns > 0 && wait_ns < RLB_OPEN_SPIN_NS) {
        rlb_sleep_ns (wait_ns < RLB_OPEN_NAP_NS ? wait_ns : RLB_OPEN_NAP_NS);
        rc = rl_client_wait_any (b->clients, count, 0, ready);
    }
    if (rc <= 0) {
        return;
    }
    for (int i = 0; i < b->o.connections; i++) {
        if (!ready[i]) {
            continue;
        }
        //  Bounded: at most one window of replies per connection per turn.
        for (int k = 0; k < b->window; k++) {
            rl_header_t h;
            const uint8_t *body = NULL;
            size_t body_size = 0;
            rc = rl_client_recv_borrow (b->clients[i], 0, &h, &body, &body_size);
            if (rc == RL_CLIENT_TIMEOUT || rc == RL_CLIENT_ERR_ARGS) {
                break; //  nothing more has arrived, or nothing is in flight
            }
            s_on_reply (b, i, rc, &h, body, rlb_now_ns ());
        }
    }
}

//  A free connection, round robin; -1 if every slot is busy.
static int
s_free_conn (bench_t *b)
{
    for (int k = 0; k < b->o.connections; k++) {
        int ci = (b->next_conn + k) % b->o.connections;
        if (b->conns[ci].free_slots > 0) {
            b->next_conn = (ci + 1) % b->o.connections;
            return ci;
        }
    }
    return -1;
}

static void
s_progress (bench_t *b, uint64_t now, uint64_t start)
{
    if (!b->o.quiet) {
        fprintf (rlb_out (b),
                 "rlbench: t=%5.1fs %10" PRIu64 " transfers/s ok %8" PRIu64 " requests/s %8" PRIu64
                 " errors %5d in flight%s\n",
                 (double) (now - start) / 1e9, b->tick_ok, b->tick_requests, b->tick_errors,
                 s_inflight (b), now < b->measure_start_ns ? " (warm-up)" : "");
        fflush (rlb_out (b));
    }
    b->tick_ok = b->tick_errors = b->tick_requests = 0;
}

//  The run ---------------------------------------------------------------------
void
rlb_run (bench_t *b)
{
    uint64_t start = rlb_now_ns ();
    b->measure_start_ns = start + (uint64_t) (b->o.warmup_s * 1e9);
    uint64_t end = b->o.count ? UINT64_MAX
                              : b->measure_start_ns + (uint64_t) (b->o.duration_s * 1e9);
    uint64_t next_tick = start + 1000000000ull;
    //  Open loop: arrivals of fixed-size batches, Poisson at rate / batch per second.
    double mean_gap_ns = b->o.mode == MODE_OPEN ? 1e9 * b->o.batch / b->o.rate : 0;
    uint64_t next_arrival = start;
    uint64_t arrivals_measured = 0;
    while (!rlb_interrupted) {
        uint64_t now = rlb_now_ns ();
        bool counted_out = b->o.count && b->sent_transfers_measured >= b->o.count;
        if (now >= end || counted_out) {
            break;
        }
        if (b->o.mode == MODE_CLOSED) {
            for (int ci; (ci = s_free_conn (b)) >= 0;) {
                if (b->o.count && b->sent_transfers_measured >= b->o.count) {
                    break;
                }
                if (s_send (b, ci, rlb_now_ns (), now >= b->measure_start_ns) != 0) {
                    break;
                }
            }
        } else {
            while (next_arrival <= now) {
                bool measured = next_arrival >= b->measure_start_ns;
                int ci = s_free_conn (b);
                if (ci < 0 || s_send (b, ci, next_arrival, measured) != 0) {
                    break; //  every slot busy: the arrival waits, and its lag grows
                }
                if (measured) {
                    hist_record (&b->lag, now - next_arrival);
                    b->sent_requests++;
                }
                double u = rlb_rand_unit (b);
                next_arrival += (uint64_t) (-log (1.0 - u) * mean_gap_ns) + 1;
            }
        }
        now = rlb_now_ns ();
        uint64_t wake = next_tick < end ? next_tick : end;
        if (b->o.mode == MODE_OPEN && next_arrival < wake) {
            wake = next_arrival;
        }
        if (b->o.mode == MODE_OPEN && s_free_conn (b) < 0) {
            wake = now + 100000000ull; //  nothing can be sent until a reply
        }
        s_poll (b, wake > now ? wake - now : 0);
        now = rlb_now_ns ();
        if (now >= next_tick) {
            s_expire (b, now);
            s_progress (b, now, start);
            next_tick += 1000000000ull;
        }
    }
    b->measure_end_ns = rlb_now_ns ();
    if (b->o.mode == MODE_OPEN) {
        //  Offered: every arrival due in the measured window, sent or not.
        arrivals_measured = b->sent_requests;
        uint64_t t = next_arrival;
        //  Arrivals still queued at the end: count them by the arrival process.
        while (t < b->measure_end_ns) {
            if (t >= b->measure_start_ns) {
                arrivals_measured++;
            }
            t += (uint64_t) (-log (1.0 - rlb_rand_unit (b)) * mean_gap_ns) + 1;
        }
        b->offered_requests = arrivals_measured;
    }
    //  Drain: wait for every reply (bounded by the request timeout).
    while (s_inflight (b) > 0) {
        uint64_t now = rlb_now_ns ();
        s_expire (b, now);
        if (s_inflight (b) == 0) {
            break;
        }
        s_poll (b, 50000000ull);
    }
    //  --transfer-pending: the pending transfers not resolved yet are posted
    //  or voided now (not measured), so that nothing is left pending.
    b->resolve_only = true;
    uint64_t deadline = rlb_now_ns () + RLB_RESOLVE_DRAIN_MS * 1000000ull;
    while ((rlb_resolve_queued (b) > 0 || s_inflight (b) > 0) && rlb_now_ns () < deadline) {
        for (int ci; rlb_resolve_queued (b) > 0 && (ci = s_free_conn (b)) >= 0;) {
            if (s_send (b, ci, rlb_now_ns (), false) != 0) {
                break;
            }
        }
        uint64_t now = rlb_now_ns ();
        s_expire (b, now);
        s_poll (b, 50000000ull);
    }
    if (rlb_resolve_queued (b) > 0) {
        fprintf (stderr, "rlbench: %zu pending transfers not resolved in %d ms\n",
                 rlb_resolve_queued (b), RLB_RESOLVE_DRAIN_MS);
        b->resolve_lost = true;
    }
}
