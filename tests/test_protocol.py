#!/usr/bin/python3
"""test_protocol.py: the wire protocol, checked by a second implementation.

1. Vectors: every ```hex name=...``` block of docs/protocol.md decodes with
   the Python client package (clients/python, written from the document
   alone, as installed in the test venv) and encodes back to exactly its
   bytes; the vectors the document describes in words are also built field
   by field and must come out byte for byte. The tables of result codes and
   statuses in the document must equal the package's enums.
2. A real shard (free port on 127.0.0.1, private directory): accounts,
   transfers, result codes by number, lookups, history, bad filters and
   malformed frames, then the conservation check.
3. The same through a router in front of two shards, when the router
   program is built (skipped with a message otherwise).
4. A hostile peer: a process bound at a peer shard's endpoint answers the
   shard's PREPARE with replies that are well-formed but of the wrong
   kind (a create_transfers reply of many 16-byte results, an error
   status, a short frame). The shard drops them (counted as malformed),
   keeps serving, and the transfer ends aborted with nothing reserved.

Environment: RL_BIN_DIR (the CMake build directory: shard/shard,
router/router), RL_PROTOCOL_MD (docs/protocol.md), RL_KEEP_TEST_DIRS=1 to
keep the private directory. Prints 'N passed, N failed' and exits non-zero
on any failure.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import ringledger as rl

HERE = os.path.dirname(os.path.abspath(__file__))

BIN_DIR = os.environ.get("RL_BIN_DIR", os.path.join(HERE, "..", "build"))
PROTOCOL_MD = os.environ.get("RL_PROTOCOL_MD", os.path.join(HERE, "..", "docs", "protocol.md"))
CALL_TIMEOUT_MS = 5000
READY_TIMEOUT_S = 20.0
QUIET_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
LEDGER = 700

RESULTS = {"passed": 0, "failed": 0, "skipped": 0}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def case(name, fn, *args):
    try:
        fn(*args)
        RESULTS["passed"] += 1
        print("ok      %s" % name, flush=True)
    except Failure as e:
        RESULTS["failed"] += 1
        print("FAILED  %s: %s" % (name, e), flush=True)
    except Exception:  # noqa: BLE001 - every error of a case is a failure of that case
        RESULTS["failed"] += 1
        print("FAILED  %s: exception\n%s" % (name, traceback.format_exc()), flush=True)


def wait_until(cond, timeout_s, what):
    """Polls cond with a backoff (1 ms up to 50 ms) until it holds."""
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure("timed out after %.1f s waiting for %s" % (timeout_s, what))
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


# 1. Vectors ---------------------------------------------------------------

def parse_vectors(text):
    vectors = {}
    for m in re.finditer(r"^```hex name=(\S+)\n(.*?)^```", text, re.S | re.M):
        name, body = m.group(1), m.group(2)
        check(name not in vectors, "vector %s appears twice" % name)
        data = bytes(int(b, 16) for b in body.split())
        vectors[name] = data
    return vectors


T0 = 1732550400000000000


def rid(op):
    return 0x0807060504030200 | op


def described_vectors():
    """The vectors as the document describes them in words."""
    a1 = rl.Account(id=1, ledger=700, code=10, flags=2, user_data_128=42, user_data_64=43,
                    user_data_32=44)
    a1_after = rl.Account(id=1, ledger=700, code=10, flags=2, user_data_128=42,
                          user_data_64=43, user_data_32=44, credits_posted=12345,
                          timestamp=T0 + 1)
    t1000 = rl.Transfer(id=0x1000, debit_account_id=2, credit_account_id=1, amount=12345,
                        user_data_128=7, user_data_64=8, user_data_32=9, ledger=700, code=1)
    t1001 = rl.Transfer(id=0x1001, debit_account_id=1, credit_account_id=2, amount=1000000,
                        ledger=700, code=1)
    t1000_after = rl.Transfer(**{**t1000.__dict__, "timestamp": T0 + 2})
    blob = bytes(range(0x10, 0x20))
    status = rl.StatusRecord(name="shard-a", epoch=3, accounts=2, transfers=1, requests=5,
                             commits=3,
                       durability=1, ring_shards=2, last_timestamp=T0 + 2, malformed=1,
                       pid=4242, uptime_ms=60000)
    H = rl.Header
    return {
        "create_accounts.request": (H(1, rid(1)), [a1], False),
        "create_accounts.reply": (H(1, rid(1), epoch=3), [rl.Result(0, 0, T0 + 1)], True),
        "create_transfers.request": (H(2, rid(2)), [t1000, t1001], False),
        "create_transfers.reply": (H(2, rid(2), epoch=3),
                                   [rl.Result(0, rl.ResultCode.OK, T0 + 2),
                                    rl.Result(1, rl.ResultCode.EXCEEDS_CREDITS, 0)], True),
        "lookup_accounts.request": (H(3, rid(3)), [1, 99], False),
        "lookup_accounts.reply": (H(3, rid(3), epoch=3), [a1_after, rl.Account(id=99)], True),
        "lookup_transfers.request": (H(4, rid(4)), [0x1000], False),
        "lookup_transfers.reply": (H(4, rid(4), epoch=3), [t1000_after], True),
        "get_account_transfers.request":
            (H(5, rid(5)), [rl.Filter(account_id=1, limit=10, flags=3)], False),
        "get_account_transfers.reply": (H(5, rid(5), epoch=3), [t1000_after], True),
        "status.request": (H(6, rid(6)), [], False),
        "status.reply": (H(6, rid(6), epoch=3), [status], True),
        "load_ring.request": (H(7, rid(7)), blob, False),
        "load_ring.reply": (H(7, rid(7), epoch=4), [], True),
        "get_ring.request": (H(8, rid(8)), [], False),
        "get_ring.reply": (H(8, rid(8), epoch=4), blob, True),
        "bad_version.request": (H(2, rid(2), version=2), [], False),
        "bad_version.reply": (H(2, rid(2), status=rl.StatusCode.BAD_VERSION, epoch=3), [], True),
    }


def vector_round_trip(name, data):
    is_reply = name.endswith(".reply")
    header, records = rl.decode_message(data, is_reply)
    check(header.magic == rl.MAGIC, "magic")
    again = rl.encode_message(header, records, is_reply)
    check(again == data, "decode -> encode differs:\n  doc  %s\n  ours %s"
          % (data.hex(" "), again.hex(" ")))


def vector_from_words(name, data, spec):
    header, records, is_reply = spec
    ours = rl.encode_message(header, records, is_reply)
    check(ours == data, "encoder differs from the document:\n  doc  %s\n  ours %s"
          % (data.hex(" "), ours.hex(" ")))
    got_header, got_records = rl.decode_message(data, is_reply)
    check(got_header.operation == header.operation and got_header.epoch == header.epoch,
          "decoded header %r" % (got_header,))
    if isinstance(records, list):
        check(got_records == records, "decoded records %r" % (got_records,))


def unknown_operation_vectors(vectors):
    req, rep = vectors["unknown_operation.request"], vectors["unknown_operation.reply"]
    h_req = rl.Header.decode(req)
    check(not rl.Operation(h_req.operation).known,
          "the request's operation %d is one served" % h_req.operation)
    # Built from the words: the reply echoes the operation and request id,
    # status unknown_operation, count 0, epoch 3.
    check(rl.Header(h_req.operation, rid(h_req.operation & 0xFF)).encode() == req,
          "request bytes")
    check(rl.Header(h_req.operation, rid(h_req.operation & 0xFF),
                    status=rl.StatusCode.UNKNOWN_OPERATION, epoch=3).encode() == rep,
          "reply bytes")


def doc_tables_match(text):
    codes = {}
    section = text.split("## Result codes", 1)[1].split("\n## ", 1)[0]
    for m in re.finditer(r"^\| (\d+) \| `([a-z_0-9]+)` \|", section, re.M):
        codes[m.group(2)] = int(m.group(1))
    check(len(codes) > 60, "found only %d result codes in the document" % len(codes))
    ours = {c.wire_name: int(c) for c in rl.ResultCode}
    check(codes == ours, "result codes differ: doc-only %s, client-only %s"
          % (sorted(set(codes.items()) - set(ours.items())),
             sorted(set(ours.items()) - set(codes.items()))))
    statuses = {}
    section = text.split("## Message-level status", 1)[1].split("\n### ", 1)[0]
    for m in re.finditer(r"^\| (\d+) \| `([a-z_0-9]+)` \|", section, re.M):
        statuses[m.group(2)] = int(m.group(1))
    check(statuses == {c.wire_name: int(c) for c in rl.StatusCode},
          "statuses differ: doc %s" % statuses)
    ops = {}
    section = text.split("## Operations", 1)[1].split("\n## ", 1)[0]
    for m in re.finditer(r"^\| (\d+) \| `([a-z_0-9]+)` \|", section, re.M):
        ops[m.group(2)] = int(m.group(1))
    check(ops == {c.wire_name: int(c) for c in rl.Operation}, "operations differ: doc %s" % ops)


def run_vector_tests():
    with open(PROTOCOL_MD, encoding="utf-8") as f:
        text = f.read()
    vectors = parse_vectors(text)
    case("vectors: found in %s" % os.path.basename(PROTOCOL_MD),
         lambda: check(len(vectors) >= 20 and all(
             n.replace(".request", ".reply") in vectors for n in vectors
             if n.endswith(".request")), "expected >= 20 vectors in request/reply pairs, got %s"
             % sorted(vectors)))
    for name, data in vectors.items():
        case("vector %s: decode + encode round trip" % name, vector_round_trip, name, data)
    for name, spec in described_vectors().items():
        if name not in vectors:
            case("vector %s: present" % name, lambda n=name: check(False, "%s missing" % n))
            continue
        case("vector %s: built from its description" % name, vector_from_words, name,
             vectors[name], spec)
    if "unknown_operation.request" in vectors:
        case("vector unknown_operation: built from its description",
             unknown_operation_vectors, vectors)
    case("doc tables: result codes, statuses, operations", doc_tables_match, text)


# Processes ----------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    os.setsid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Children in their own process groups, logs in the private directory;
    every one is stopped by stop_all (SIGTERM, then SIGKILL after a deadline),
    and dies with this process (PR_SET_PDEATHSIG) if it is killed."""

    def __init__(self, directory):
        self.dir = directory
        self.children = {}

    def spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=_child_setup)
        log.close()
        self.children[name] = proc
        return proc

    def stop(self, name):
        proc = self.children.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()

    def stop_all(self):
        for name in list(self.children):
            self.stop(name)

    def log_tail(self, name, size=2000):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""


def connect(endpoint, timeout_ms=CALL_TIMEOUT_MS):
    """A client of the package with the test's keypair, pinning the key
    recorded for the endpoint."""
    return rl.Client(endpoint, keypair=KEYS["pair"], server_keys=KEYS["servers"],
                     timeout_ms=timeout_ms)


def answers(endpoint, probe):
    with connect(endpoint, timeout_ms=200) as c:
        try:
            probe(c)
            return True
        except rl.Timeout:
            return False


KEYS = {"dir": None, "pair": None, "servers": {}}


def keygen(role, name):
    """A key of NAME in ROLE in the test's key-set directory (made once)."""
    path = os.path.join(KEYS["dir"], role, name + ".key")
    if not os.path.exists(path):
        out = subprocess.run([os.path.join(BIN_DIR, "tools", "rlctl"), "keygen", "--role", role,
                              "--name", name, "--dir", KEYS["dir"]], capture_output=True,
                             text=True, timeout=30)
        check(out.returncode == 0, "rlctl keygen: %s" % out.stderr)
    return path


def make_keys(tmp):
    """The key sets of the live tests: this test as "tester" (admin and
    client), every shard and the router; the client library speaks CURVE."""
    KEYS["dir"] = os.path.join(tmp, "keys")
    tester = keygen("admin", "tester")
    os.makedirs(os.path.join(KEYS["dir"], "client"), exist_ok=True)
    shutil.copy(tester, os.path.join(KEYS["dir"], "client", "tester.key"))
    for name in ("s1", "s2"):
        keygen("shard", name)
    keygen("router", "router")
    KEYS["pair"] = rl.Keypair.load(os.path.join(KEYS["dir"], "private", "tester.key_secret"))


def start_shard(procs, name, data_dir, ring=None, port=None):
    """Spawns a shard and waits until it answers status. Returns its endpoint."""
    for _ in range(START_ATTEMPTS if port is None else 1):
        p = port or free_port()
        endpoint = "tcp://127.0.0.1:%d" % p
        KEYS["servers"][endpoint] = rl.load_public_key(keygen("shard", name))
        argv = [os.path.join(BIN_DIR, "shard", "shard"), "--name", name, "--bind", endpoint,
                "--data", data_dir, "--keys", KEYS["dir"]]
        if ring:
            argv += ["--ring", ring]
        proc = procs.spawn(name, argv)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if answers(endpoint, lambda c: c.status(retry=False)):
                return endpoint
        procs.stop(name)
    raise Failure("shard %s did not start; log:\n%s" % (name, procs.log_tail(name)))


# 2. and 3. A scenario that moves money --------------------------------------

class Model:
    """Balances built from the results the client saw."""

    def __init__(self):
        self.debits, self.credits, self.ok = {}, {}, []
        self.accounts = set()

    def apply(self, t):
        self.debits[t.debit_account_id] = self.debits.get(t.debit_account_id, 0) + t.amount
        self.credits[t.credit_account_id] = self.credits.get(t.credit_account_id, 0) + t.amount
        self.ok.append(t)


def expect_results(results, expected, what):
    got = [r.result for r in results]
    check(got == expected, "%s: results %s, expected %s"
          % (what, [rl.ResultCode(c).wire_name for c in got],
             [rl.ResultCode(c).wire_name for c in expected]))


def owner_map(endpoint, ids):
    """Which shard owns each id by the ring served at endpoint, as
    `rlctl locate` computes it (XXH3 of the 16 id bytes, docs/ring.md)."""
    rlctl = os.path.join(BIN_DIR, "tools", "rlctl")
    out = subprocess.run([rlctl, "--connect", endpoint, "--json",
                          "--cert", os.path.join(KEYS["dir"], "private", "tester.key_secret"),
                          "--server-key", KEYS["servers"][endpoint].decode(), "locate"]
                         + ["0x%x" % i for i in ids], capture_output=True, text=True,
                         timeout=CALL_TIMEOUT_MS / 1000.0 * 2)
    check(out.returncode == 0, "rlctl locate: %s" % out.stderr)
    owners = {int(a["id"], 0): a["shard"] for a in json.loads(out.stdout)["accounts"]}
    check(sorted(owners) == sorted(ids), "rlctl locate answered other ids")
    return owners


def transfer(model, client, tid, debit, credit, amount, expected, ledger=LEDGER, what=""):
    t = rl.Transfer(id=tid, debit_account_id=debit, credit_account_id=credit, amount=amount,
                    ledger=ledger, code=1)
    r = client.create_transfers([t])[0]
    if isinstance(expected, int):
        expected = (expected,)
    check(r.result in expected, "%s transfer %x: %s (%d), expected %s" % (
        what, tid, r.name, r.result, [rl.ResultCode(c).wire_name for c in expected]))
    if r.result == rl.ResultCode.OK:
        check(r.timestamp != 0, "ok without a timestamp")
        model.apply(t)
    return r


def scenario_accounts(client, groups, model):
    operators = [op for op, _ in groups]
    customers = [c for _, cs in groups for c in cs]
    accounts = [rl.Account(id=i, ledger=LEDGER, code=10) for i in operators]
    accounts += [rl.Account(id=i, ledger=LEDGER, code=10,
                            flags=rl.AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
                 for i in customers]
    expect_results(client.create_accounts(accounts), [0] * len(accounts), "create accounts")
    model.accounts.update(operators + customers)
    again = client.create_accounts(accounts[:1])
    expect_results(again, [rl.ResultCode.EXISTS], "create again")
    tag = operators[0] & ~0xFFFF
    bad = [
        (rl.Account(id=0, ledger=LEDGER, code=10), "id_must_not_be_zero"),
        (rl.Account(id=rl.ID_INT_MAX, ledger=LEDGER, code=10), "id_must_not_be_int_max"),
        (rl.Account(id=tag | 0xF001, ledger=0, code=10), "ledger_must_not_be_zero"),
        (rl.Account(id=tag | 0xF002, ledger=LEDGER, code=0), "code_must_not_be_zero"),
        (rl.Account(id=tag | 0xF003, ledger=LEDGER, code=10, flags=6),
         "flags_are_mutually_exclusive"),
        (rl.Account(id=tag | 0xF004, ledger=LEDGER, code=10, flags=0x100), "reserved_flag"),
        (rl.Account(id=tag | 0xF005, ledger=LEDGER, code=10, timestamp=5),
         "timestamp_must_be_zero"),
        (rl.Account(id=tag | 0xF006, ledger=LEDGER, code=10, credits_posted=5),
         "credits_posted_must_be_zero"),
        (rl.Account(id=operators[0], ledger=LEDGER, code=11), "exists_with_different_code"),
    ]
    for account, name in bad:
        expect_results(client.create_accounts([account]), [rl.ResultCode[name.upper()]], name)


def scenario_transfers(client, groups, model, tag, cross_pairs):
    R = {c.wire_name: c for c in rl.ResultCode}
    n = [tag | 0x1000]

    def tid():
        n[0] += 1
        return n[0]

    for op, customers in groups:
        for k, c in enumerate(customers):
            transfer(model, client, tid(), op, c, 1000 * (k + 1), R["ok"], what="fund")
    for _, (c0, c1, c2) in groups:
        first = tid()
        r = transfer(model, client, first, c0, c1, 300, R["ok"], what="customer")
        again = transfer(model, client, first, c0, c1, 300, R["exists"], what="retry")
        check(again.timestamp == r.timestamp, "exists carries the original timestamp")
        transfer(model, client, first, c0, c1, 301, R["exists_with_different_amount"])
        burned = tid()
        transfer(model, client, burned, c1, c2, 10 ** 9, R["exceeds_credits"], what="overdraft")
        transfer(model, client, burned, c1, c2, 10 ** 9, R["exceeds_credits"], what="burned retry")
        missing = tid()
        transfer(model, client, missing, c2, c0 | 0xEEEE, 1, R["credit_account_not_found"])
        transfer(model, client, missing, c2, c0 | 0xEEEE, 1, R["credit_account_not_found"])
        transfer(model, client, tid(), c2, c2, 1, R["accounts_must_be_different"])
        transfer(model, client, tid(), c2, c0, 0, R["amount_must_not_be_zero"])
        transfer(model, client, tid(), c2, c0, 1,
                 R["transfer_must_have_the_same_ledger_as_accounts"], ledger=LEDGER + 1)
        # A batch: applied in order, one result per record, by index.
        batch = [rl.Transfer(id=tid(), debit_account_id=c2, credit_account_id=c0, amount=a,
                             ledger=LEDGER, code=1) for a in (100, 10 ** 9, 200)]
        results = client.create_transfers(batch)
        expect_results(results, [R["ok"], R["exceeds_credits"], R["ok"]], "batch")
        for t, r in zip(batch, results):
            if r.result == R["ok"]:
                model.apply(t)
    outcomes = []
    for debit, credit in cross_pairs:
        # Cross-shard: ok once two-phase transfers ship; until then
        # not_supported, which never burns the id.
        r = transfer(model, client, tid(), debit, credit, 50, (R["ok"], R["not_supported"]),
                     what="cross-shard")
        outcomes.append(r.name)
    return outcomes


def scenario_pending(client, groups, model, tag):
    """Pending transfers (docs/protocol.md, "Pending transfers"): a partial
    post, a void, an expiry, and their codes, with the helpers of the
    package (Transfer.post_pending, Transfer.void_pending)."""
    R = {c.wire_name: c for c in rl.ResultCode}
    op, (c0, c1, _) = groups[0]
    n = [tag | 0x7000]

    def tid():
        n[0] += 1
        return n[0]

    def send(t, expected, what):
        r = client.create_transfers([t])[0]
        check(r.result == expected, "%s: %s, expected %s" % (what, r.name,
                                                             rl.ResultCode(expected).wire_name))
        return r

    def pending_of(account):
        a = client.lookup_accounts([account])[0]
        return a.debits_pending, a.credits_pending

    before = pending_of(c0)
    p = rl.Transfer(id=tid(), debit_account_id=op, credit_account_id=c0, amount=500,
                    ledger=LEDGER, code=1, flags=rl.TransferFlags.PENDING)
    send(p, R["ok"], "pending")
    check(pending_of(c0) == (before[0], before[1] + 500), "credits_pending holds it")
    post = rl.Transfer.post_pending(tid(), p, 200)
    send(post, R["ok"], "partial post")
    model.apply(rl.Transfer(id=post.id, debit_account_id=op, credit_account_id=c0, amount=200,
                            ledger=LEDGER, code=1))
    check(pending_of(c0) == before, "the rest released")
    send(post, R["exists"], "post retried")
    send(rl.Transfer.post_pending(tid(), p), R["pending_transfer_already_posted"], "post twice")
    stored = client.lookup_transfers([post.id])[0]
    check(stored.found and stored.amount == 200 and stored.credit_account_id == c0
          and stored.flags == rl.TransferFlags.POST_PENDING_TRANSFER, "the stored post: %r"
          % (stored,))
    check(client.lookup_transfers([p.id])[0].is_pending, "the pending transfer is found")
    p2 = rl.Transfer(id=tid(), debit_account_id=c0, credit_account_id=c1, amount=100,
                     ledger=LEDGER, code=1, flags=rl.TransferFlags.PENDING)
    send(p2, R["ok"], "pending 2")
    send(rl.Transfer.void_pending(tid(), p2), R["ok"], "void")
    send(rl.Transfer.void_pending(tid(), p2), R["pending_transfer_already_voided"], "void twice")
    send(rl.Transfer.post_pending(tid(), p2, 101), R["exceeds_pending_transfer_amount"],
         "post more than pending")
    send(rl.Transfer.post_pending(tid(), rl.Transfer(id=tag | 0x7FFF, debit_account_id=op)),
         R["pending_transfer_not_found"], "post of an unknown id")
    both = rl.Transfer(id=tid(), debit_account_id=op, credit_account_id=c1, amount=1,
                       ledger=LEDGER, code=1,
                       flags=rl.TransferFlags.PENDING | rl.TransferFlags.VOID_PENDING_TRANSFER)
    send(both, R["flags_are_mutually_exclusive"], "pending and void")
    # A timeout of 1 s: the shard expires it, releases it, and refuses a post.
    p3 = rl.Transfer(id=tid(), debit_account_id=op, credit_account_id=c1, amount=50,
                     ledger=LEDGER, code=1, timeout=1, flags=rl.TransferFlags.PENDING)
    base = pending_of(c1)
    send(p3, R["ok"], "pending with a timeout")
    check(pending_of(c1)[1] == base[1] + 50, "pending before expiry")
    wait_until(lambda: pending_of(c1) == base, 10, "the expiry of a pending transfer")
    send(rl.Transfer.post_pending(tid(), p3), R["pending_transfer_expired"], "post after expiry")


def scenario_reads(client, model, tag):
    ok_ids = [t.id for t in model.ok]
    found = client.lookup_transfers(ok_ids + [tag | 0xDEAD])
    check(len(found) == len(ok_ids) + 1, "one record per id")
    for t, got in zip(model.ok, found):
        check(got.found and got.amount == t.amount and got.debit_account_id ==
              t.debit_account_id and got.credit_account_id == t.credit_account_id,
              "lookup_transfers %x: %r" % (t.id, got))
    check(not found[-1].found and found[-1].id == tag | 0xDEAD and found[-1].amount == 0,
          "an unknown transfer id comes back with its id and zeros")
    missing = client.lookup_accounts([tag | 0xBEEF])[0]
    check(missing.id == tag | 0xBEEF and not missing.found, "an unknown account id")
    account = sorted(model.accounts)[-1]
    history = client.history(account)
    expected = [t.id for t in model.ok if account in (t.debit_account_id, t.credit_account_id)]
    check([t.id for t in history] == expected, "history of %x in order" % account)
    newest = client.get_account_transfers(account, limit=2,
                                          flags=rl.FilterFlags.DEBITS | rl.FilterFlags.CREDITS
                                          | rl.FilterFlags.REVERSED)
    check([t.id for t in newest] == expected[::-1][:2], "reversed history, limit 2")
    debits = client.get_account_transfers(account, flags=rl.FilterFlags.DEBITS)
    check(all(t.debit_account_id == account for t in debits), "debits only")
    ts = [t.timestamp for t in history]
    check(ts == sorted(ts) and len(set(ts)) == len(ts), "timestamps strictly increase")
    if len(history) >= 2:
        window = client.get_account_transfers(account, timestamp_min=ts[1], timestamp_max=ts[1])
        check([t.id for t in window] == [expected[1]], "timestamp window")
    for bad in (rl.Filter(account_id=account, limit=0, flags=3),
                rl.Filter(account_id=account, limit=10, flags=0),
                rl.Filter(account_id=account, limit=10, flags=3, timestamp_min=5,
                          timestamp_max=4),
                rl.Filter(account_id=account, limit=10, flags=3, reserved=(1, 0, 0))):
        try:
            client.call(rl.Operation.GET_ACCOUNT_TRANSFERS, [bad])
            raise Failure("filter %r accepted" % (bad,))
        except rl.StatusError as e:
            check(e.status == rl.StatusCode.BAD_FILTER, "bad filter answered %s" % e)


def bad_frames(endpoint, is_shard):
    """Malformed requests get an error reply (or are dropped and counted)
    and never a crash; the balances are checked afterwards."""
    with connect(endpoint) as c:
        before = c.status() if is_shard else None
        H = rl.Header
        account = rl.Account(id=1, ledger=LEDGER, code=10).encode()
        cases = [
            (H(6, 77, magic=0x12345678).encode(), "bad_magic"),
            (H(6, 78, version=2).encode(), "bad_version"),
            (H(99, 79).encode(), "unknown_operation"),
            (H(18, 80).encode(), "unknown_operation"),
            (H(35, 89).encode(), "unknown_operation"),
            (H(1, 81, record_count=2).encode() + account, "malformed"),
            (H(1, 82, record_count=1).encode() + account[:100], "malformed"),
            (H(6, 83, epoch=5).encode(), "malformed"),
            (H(6, 84, status=1).encode(), "malformed"),
            (H(6, 85, record_count=1).encode() + bytes(256), "malformed"),
            (H(5, 86, record_count=2).encode() + bytes(128), "malformed"),
            # An empty blob. A router does not take load_ring at all (rings
            # are loaded into shards by an admin): unknown_operation there.
            (H(7, 87, record_count=1).encode(), "malformed" if is_shard else
             ("malformed", "unknown_operation")),
            (H(3, 88, record_count=8191).encode() + bytes(16 * 8191), "too_many_records"),
        ]
        for frame, name in cases:
            name = name if isinstance(name, tuple) else (name,)
            c.send_raw(frame)
            reply = c.recv_raw(CALL_TIMEOUT_MS)
            check(reply is not None, "no reply to a %s frame" % "/".join(name))
            h = rl.Header.decode(reply)
            sent = rl.Header.decode(frame)
            check(len(reply) == rl.HEADER_SIZE, "request %d: error reply has a body"
                  % sent.request_id)
            check(rl.StatusCode(h.status).wire_name in name, "request %d, a %s frame, answered %s"
                  % (sent.request_id, "/".join(name), rl.StatusCode(h.status).wire_name))
            check(h.request_id == sent.request_id and h.operation == sent.operation
                  and h.version == rl.VERSION and h.magic == rl.MAGIC and h.record_count == 0,
                  "request %d: error reply header %r" % (sent.request_id, h))
        # Shorter than a header: dropped, counted, no reply. The status that
        # follows is answered after it, on the same connection.
        c.send_raw(b"\x72\x6c\x64\x67\x01")
        after = c.status()
        check(c.stale_replies == 0, "a short frame got a reply")
        if is_shard:
            check(after.dropped == before.dropped + 1, "dropped %d -> %d" % (before.dropped,
                                                                            after.dropped))
            check(after.malformed == before.malformed + len(cases),
                  "malformed %d -> %d" % (before.malformed, after.malformed))


def conservation(client, model, shard_endpoints, ok_min):
    """Invariant 1: wait until no shard has live attempts, then sums, then
    every account against the model and its own history."""
    def quiet():
        for endpoint in shard_endpoints.values():
            with connect(endpoint) as c:
                s = c.status()
                if s.inflight or s.in_doubt:
                    return False
        return True
    wait_until(quiet, QUIET_TIMEOUT_S, "no shard with live two-phase attempts")
    ids = sorted(model.accounts)
    accounts = client.lookup_accounts(ids)
    check(all(a.found for a in accounts), "every account is found")
    sums = {}
    for a in accounts:
        s = sums.setdefault(a.ledger, [0] * 6)
        for k, v in enumerate((a.debits_posted, a.credits_posted, a.debits_pending,
                               a.credits_pending, a.debits_reserved, a.credits_reserved)):
            s[k] += v
    for ledger, s in sums.items():
        check(s[0] == s[1], "ledger %d: debits posted %d != credits posted %d" % (ledger, s[0],
                                                                                    s[1]))
        check(s[2] == s[3], "ledger %d: pending %d != %d" % (ledger, s[2], s[3]))
        check(s[4] == s[5], "ledger %d: reserved %d != %d" % (ledger, s[4], s[5]))
    check(sums[LEDGER][0] > 0, "money moved (the check must not pass on an empty ledger)")
    for a in accounts:
        check(a.debits_posted == model.debits.get(a.id, 0) and
              a.credits_posted == model.credits.get(a.id, 0),
              "account %x: %d/%d, model %d/%d" % (a.id, a.debits_posted, a.credits_posted,
                                                  model.debits.get(a.id, 0),
                                                  model.credits.get(a.id, 0)))
        history = client.history(a.id)
        # A pending transfer and a void post nothing (docs/protocol.md).
        d = sum(t.amount for t in history if t.debit_account_id == a.id and t.posts)
        cr = sum(t.amount for t in history if t.credit_account_id == a.id and t.posts)
        check((d, cr) == (a.debits_posted, a.credits_posted),
              "account %x: history %d/%d, balances %d/%d" % (a.id, d, cr, a.debits_posted,
                                                             a.credits_posted))
    check(len(model.ok) >= ok_min, "only %d transfers succeeded, expected >= %d"
          % (len(model.ok), ok_min))


def run_single_shard(tmp):
    procs = Processes(tmp)
    try:
        endpoint = start_shard(procs, "s1", os.path.join(tmp, "s1"))
        client = connect(endpoint)
        tag = 0x5A << 64
        model = Model()
        groups = [(tag | 1, [tag | 2, tag | 3, tag | 4])]
        case("shard: create accounts, result codes", scenario_accounts, client, groups, model)
        case("shard: transfers, result codes", scenario_transfers, client, groups, model, tag,
             [])
        case("shard: lookups, history, bad filters", scenario_reads, client, model, tag)
        case("shard: pending transfers, post, void, expiry", scenario_pending, client, groups,
             model, tag)
        case("shard: malformed frames", bad_frames, endpoint, True)
        case("shard: status", lambda: check(client.status().name == "s1", "status name"))
        case("shard: conservation", conservation, client, model, {"s1": endpoint}, 6)
        # Restart: everything acknowledged is still there.
        procs.stop("s1")
        client.close()
        start_shard(procs, "s1", os.path.join(tmp, "s1"), port=int(endpoint.rsplit(":", 1)[1]))
        client = connect(endpoint)
        case("shard: conservation after restart", conservation, client, model,
             {"s1": endpoint}, 6)
        client.close()
    finally:
        procs.stop_all()


def run_router(tmp):
    router_bin = os.path.join(BIN_DIR, "router", "router")
    if not os.access(router_bin, os.X_OK):
        RESULTS["skipped"] += 1
        print("SKIPPED router + 2 shards: %s is not built yet" % router_bin, flush=True)
        return
    procs = Processes(tmp)
    try:
        shards, ring = None, os.path.join(tmp, "ring")
        for _ in range(START_ATTEMPTS):
            ports = {"s1": free_port(), "s2": free_port()}
            with open(ring, "w") as f:
                f.write("epoch 1\n")
                for name, p in ports.items():
                    f.write("shard %s tcp://127.0.0.1:%d weight 1\n" % (name, p))
            try:
                shards = {name: start_shard(procs, name, os.path.join(tmp, name), ring, p)
                          for name, p in ports.items()}
                break
            except Failure:
                procs.stop_all()
        check(shards, "the shards did not start")
        endpoint = None
        for _ in range(START_ATTEMPTS):
            endpoint = "tcp://127.0.0.1:%d" % free_port()
            KEYS["servers"][endpoint] = rl.load_public_key(keygen("router", "router"))
            proc = procs.spawn("router", [router_bin, "--bind", endpoint, "--ring", ring,
                                          "--keys", KEYS["dir"]])
            deadline = time.monotonic() + READY_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                if answers(endpoint, lambda c: c.call(rl.Operation.LOOKUP_ACCOUNTS, [])):
                    break
            else:
                procs.stop("router")
                endpoint = None
                continue
            break
        check(endpoint, "the router did not start; log:\n%s" % procs.log_tail("router"))
        client = connect(endpoint)
        tag = 0x7B << 64
        candidates = [tag | i for i in range(1, 61)]
        owners = owner_map(endpoint, candidates)
        by_shard = {name: [i for i in candidates if owners[i] == name] for name in shards}
        check(all(len(v) >= 4 for v in by_shard.values()), "ids per shard: %s" % {
            k: len(v) for k, v in by_shard.items()})
        groups = [(v[0], v[1:4]) for v in by_shard.values()]
        cross = [(groups[0][1][0], groups[1][1][0]), (groups[1][0], groups[0][1][1])]
        model = Model()
        outcomes = []
        case("router: create accounts, result codes", scenario_accounts, client, groups, model)
        case("router: transfers, result codes (same shard and cross-shard)",
             lambda: outcomes.extend(scenario_transfers(client, groups, model, tag, cross)))
        print("        cross-shard transfers answered: %s" % (outcomes,), flush=True)
        case("router: lookups, history, bad filters", scenario_reads, client, model, tag)
        case("router: malformed frames", bad_frames, endpoint, False)
        case("router: duplicate id in one batch", duplicate_batch, client, groups, model)
        case("router: conservation", conservation, client, model, shards, 12)
        client.close()
    finally:
        procs.stop_all()


def duplicate_batch(client, groups, model):
    op, (c0, _, _) = groups[0]
    t = rl.Transfer(id=op | 0xD00D, debit_account_id=op, credit_account_id=c0, amount=1,
                    ledger=LEDGER, code=1)
    try:
        # Sent as it is: the package refuses such a batch before sending it.
        client.call(rl.Operation.CREATE_TRANSFERS, [t, t])
        raise Failure("a batch with a duplicate id was accepted")
    except rl.StatusError as e:
        check(e.status == rl.StatusCode.DUPLICATE_ID, "answered %s" % e)
    check(client.lookup_transfers([t.id])[0].found is False, "nothing of it was applied")


OP_PREPARE = 16  # shard to shard (protocol.md, "Operations"); the client does not send it


def run_hostile_peer(tmp):
    """A shard whose peer s2 is impersonated by this test (section 4)."""
    import zmq
    procs = Processes(tmp)
    ctx = zmq.Context.instance()
    fake = ctx.socket(zmq.ROUTER)
    fake.setsockopt(zmq.LINGER, 0)
    # The peer is impersonated with s2's own keypair: a compromised peer.
    fake.curve_server = True
    s2_pair = rl.Keypair.load(os.path.join(KEYS["dir"], "private", "s2.key_secret"))
    fake.curve_publickey, fake.curve_secretkey = s2_pair.public, s2_pair.secret
    try:
        s1_port, s2_port = free_port(), free_port()
        fake.bind("tcp://127.0.0.1:%d" % s2_port)
        ring = os.path.join(tmp, "hostile.ring")
        with open(ring, "w") as f:
            f.write("epoch 1\npoints_per_weight 128\n"
                    "shard s1 tcp://127.0.0.1:%d weight 1\n"
                    "shard s2 tcp://127.0.0.1:%d weight 1\n"
                    "point 7fffffffffffffff s1\npoint ffffffffffffffff s2\n" % (s1_port, s2_port))
        endpoint = start_shard(procs, "s1", os.path.join(tmp, "hs1"), ring=ring, port=s1_port)
        client = connect(endpoint)
        tag = 0x7E << 64
        ids = [tag | i for i in range(1, 33)]
        results = client.create_accounts([rl.Account(id=i, ledger=LEDGER, code=1) for i in ids],
                                         retry=False)
        mine = [i for i, r in zip(ids, results) if r.result == rl.ResultCode.OK]
        theirs = [i for i, r in zip(ids, results) if r.result == rl.ResultCode.WRONG_SHARD]
        check(mine and theirs, "accounts on both sides of the ring")
        before = client.status().malformed

        def hostile_replies():
            t = rl.Transfer(id=tag | 9001, debit_account_id=mine[0], credit_account_id=theirs[0],
                            amount=5, ledger=LEDGER, code=1)
            client.send_raw(rl.Header(operation=rl.Operation.CREATE_TRANSFERS, request_id=4242,
                                      record_count=1).encode() + t.encode())
            check(fake.poll(5000), "the PREPARE reached the impersonated peer")
            ident, payload = fake.recv_multipart()
            h = rl.Header.decode(payload)
            check(h.operation == OP_PREPARE, "the shard sent a PREPARE (operation %d)" % h.operation)
            n = 8190  # an out-of-bounds read of 112 bytes a record would crash
            wrong_kind = rl.Header(operation=rl.Operation.CREATE_TRANSFERS, request_id=h.request_id,
                                   record_count=n).encode()
            wrong_kind += b"".join(rl.Result(index=i).encode() for i in range(n))
            error = rl.Header(operation=OP_PREPARE, request_id=h.request_id,
                              status=rl.StatusCode.BUSY).encode()
            for frame in (wrong_kind, error, b"\x00" * 7):
                fake.send_multipart([ident, frame])
            reply = client.recv_raw(CALL_TIMEOUT_MS)
            check(reply is not None, "the client got an answer")
            header = rl.Header.decode(reply)
            check(header.request_id == 4242 and header.record_count == 1, "the reply's header")
            got = rl.Result.decode(reply, rl.HEADER_SIZE).result
            check(got == rl.ResultCode.ABORTED,
                  "an unanswered PREPARE ends aborted, got %s" % rl.ResultCode(got).wire_name)
            status = client.status()
            check(status.malformed >= before + 3, "the bad replies are counted (%d -> %d)"
                  % (before, status.malformed))
            # The ABORT decision waits for the (impersonated) peer's acknowledgement.
            check(status.inflight == 1, "one undelivered decision, got %d" % status.inflight)
            account = client.lookup_accounts([mine[0]])[0]
            check(account.debits_reserved == 0 and account.debits_posted == 0,
                  "nothing reserved or posted on the debit account")

        case("hostile peer: wrong replies dropped, the shard keeps serving", hostile_replies)
        client.close()
    finally:
        fake.close(0)
        procs.stop_all()


def main():
    run_vector_tests()
    shard_bin = os.path.join(BIN_DIR, "shard", "shard")
    if not os.access(shard_bin, os.X_OK):
        print("FAILED  live tests: %s is missing (set RL_BIN_DIR to the build directory)"
              % shard_bin)
        RESULTS["failed"] += 1
    else:
        tmp = tempfile.mkdtemp(prefix="rl-test_protocol_py-")
        failed_before = RESULTS["failed"]
        try:
            make_keys(tmp)
            run_single_shard(tmp)
            run_router(tmp)
            run_hostile_peer(tmp)
        finally:
            if os.environ.get("RL_KEEP_TEST_DIRS") == "1" or RESULTS["failed"] > failed_before:
                print("kept %s" % tmp)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed%s" % (RESULTS["passed"], RESULTS["failed"],
                                      ", %d skipped" % RESULTS["skipped"]
                                      if RESULTS["skipped"] else ""))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
