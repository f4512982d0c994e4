#!/usr/bin/env python3
"""test_pyclient.py BUILD_DIR: the Python client package (clients/python,
docs/client-python.md), as installed in the test venv, against a real
cluster.

1. The codec: every hex vector of docs/protocol.md decodes into typed
   records and encodes back to its bytes; the package's enums (operations,
   statuses, result codes with what each does to the id, and the three
   flag tables) and its records (every field's offset and size) equal the
   document's tables.
2. Bad input to the package's own API raises ValueError or TypeError
   naming the problem, before anything is sent.
3. The retry rule, against a server that answers from a script: busy,
   frozen, in_progress, a lost reply and a message-level busy are resent
   (only the open records, with their ids, in order) until a definite
   answer; frozen to the deadline gives Incomplete; malformed is raised
   at once; a read is retried the same way. reply_burns reads a linked
   chain's members as never burned, any other record as its code.
4. A cluster of 2 shards and a router (tools/cluster.sh, CURVE, on free
   ports): the client's keypair from its certificate files, the router's
   key from its certificate, the shards' keys from the ring (file and
   get_ring); accounts placed by asking a shard directly (wrong_shard: a
   StatusError for a read, data for a create, with retry=False); transfers
   same-shard and cross-shard through the router, a call split into
   batches, the same ids again (exists), a burned id, a failed linked
   chain that burned no id (its failing member, fixed, applies alone; and
   reply_burns says so), a retry across a
   stopped router (SIGSTOP) that applies the transfer exactly once;
   transport failures (nothing listening), a refusal (a key without the
   role: StatusError), the asyncio client; then the conservation check
   against a model of what was answered.

Prints 'N passed, N failed'; a missing tool or program fails, never skips.
"""
import asyncio
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import ringledger as rl
from ringledger.aio import AsyncClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOCOL_MD = os.environ.get("RL_PROTOCOL_MD", os.path.join(ROOT, "docs", "protocol.md"))
LEDGER = 840
RESULTS = {"passed": 0, "failed": 0}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def case(name, fn, *args):
    start = time.monotonic()
    try:
        fn(*args)
        RESULTS["passed"] += 1
        print("ok      %s (%.1f s)" % (name, time.monotonic() - start), flush=True)
    except Exception as e:  # noqa: BLE001 - every error of a case is a failure of that case
        RESULTS["failed"] += 1
        detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
        print("FAILED  %s: %s" % (name, detail), flush=True)


def raises(kinds, fn, what):
    try:
        fn()
    except kinds as e:
        return e
    except Exception as e:  # noqa: BLE001
        raise Failure("%s: raised %s (%s), expected %s" % (what, type(e).__name__, e, kinds))
    raise Failure("%s: no exception, expected %s" % (what, kinds))


# 1. The codec and the tables ------------------------------------------------

def doc_table(text, heading, end="\n## "):
    section = text.split(heading, 1)[1].split(end, 1)[0]
    return [[c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if re.match(r"^\| `?\d", line)]


def vectors(text):
    T0 = 1732550400000000000
    found = {m.group(1): bytes.fromhex(m.group(2).replace("\n", " "))
             for m in re.finditer(r"^```hex name=(\S+)\n(.*?)^```", text, re.S | re.M)}
    check(len(found) >= 20, "only %d vectors in protocol.md" % len(found))
    for name, data in found.items():
        header, records = rl.decode_message(data, name.endswith(".reply"))
        again = rl.encode_message(header, records, name.endswith(".reply"))
        check(again == data, "%s: decode + encode differs" % name)
    _, results = rl.decode_message(found["create_transfers.reply"], True)
    check(results == [rl.Result(0, rl.ResultCode.OK, T0 + 2),
                      rl.Result(1, rl.ResultCode.EXCEEDS_CREDITS, 0)], "typed results")
    check(results[1].result.burns is rl.Burns.YES and not results[1].ok and results[0].ok,
          "exceeds_credits burns the id")
    _, accounts = rl.decode_message(found["lookup_accounts.reply"], True)
    check(accounts[0].flags is rl.AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
          and accounts[0].balance == 12345 and not accounts[1].found, "typed accounts")
    _, (status,) = rl.decode_message(found["status.reply"], True)
    check(status.name == "shard-a" and status.durability is rl.Durability.SYNC, "status")
    header = rl.Header.decode(found["bad_version.reply"])
    check(rl.StatusCode(header.status) is rl.StatusCode.BAD_VERSION, "bad_version")


def tables(text):
    codes = {int(r[0]): (r[1], r[4]) for r in doc_table(text, "## Result codes")}
    ours = {int(c): (c.wire_name, c.burns.value) for c in rl.ResultCode}
    check(len(codes) > 60 and codes == ours, "result codes (value, name, burns id) differ: "
          "doc-only %s, package-only %s" % (sorted(set(codes.items()) - set(ours.items())),
                                            sorted(set(ours.items()) - set(codes.items()))))
    statuses = {int(r[0]): r[1] for r in doc_table(text, "## Message-level status", "\n### ")}
    check(statuses == {int(c): c.wire_name for c in rl.StatusCode}, "statuses differ")
    ops = {int(r[0]): r[1] for r in doc_table(text, "## Operations")}
    check(ops == {int(c): c.wire_name for c in rl.Operation}, "operations differ")
    for heading, enum in (("### Account flags", rl.AccountFlags),
                          ("### Transfer flags", rl.TransferFlags),
                          ("### Filter flags", rl.FilterFlags)):
        doc = {int(r[1], 16): r[2] for r in doc_table(text, heading, "\n#")}
        check(doc == {int(f): f.name.lower() for f in enum}, "%s differ" % heading)
    # Every record's fields, in order, at the document's offsets and sizes.
    sizes = {"u16": 2, "u32": 4, "u64": 8, "u128": 16}
    for heading, record in (("### account (", rl.Account), ("### transfer (", rl.Transfer),
                            ("### result (", rl.Result), ("### filter (", rl.Filter),
                            ("### status record (", rl.StatusRecord)):
        doc = [(int(r[0]), int(r[1]), r[3]) for r in doc_table(text, heading, "\n#")]
        ours, offset = [], 0
        kinds = record._KINDS if record is not rl.StatusRecord else \
            (("name", ("u8", 32)),) + record._KINDS
        for name, kind in kinds:
            if isinstance(kind, tuple):
                size = kind[1] * (1 if kind[0] == "u8" else 8)
            elif isinstance(kind, type):  # an enum: u16 flags, u32 codes
                size = 2 if kind in (rl.AccountFlags, rl.TransferFlags) else 4
            else:
                size = sizes[kind]
            ours.append((offset, size, name))
            offset += size
        check(doc == ours, "%s: the document's fields %s, the package's %s"
              % (record.__name__, [d for d in doc if d not in ours],
                 [o for o in ours if o not in doc]))
        check([n for _, _, n in ours] == [f.name for f in dataclasses.fields(record)],
              "%s: the dataclass's fields are in wire order" % record.__name__)
    check(rl.ResultCode(4242).is_open and rl.ResultCode.FROZEN.is_open
          and not rl.ResultCode.EXISTS.is_open, "unknown and infrastructure codes are open")


# 2. Bad input to the API ------------------------------------------------------

def bad_arguments(keys_dir):
    T, A, V = rl.Transfer, rl.Account, (ValueError, TypeError)
    for what, fn in [
            ("negative id", lambda: T(id=-1)),
            ("id of 129 bits", lambda: A(id=1 << 128)),
            ("amount past u64", lambda: T(id=1, amount=1 << 64)),
            ("ledger as text", lambda: A(id=1, ledger="840")),
            ("code past u16", lambda: A(id=1, code=70000)),
            ("a bool", lambda: T(id=True)),
            ("reserved words", lambda: A(id=1, reserved2=(0,))),
            ("filter limit", lambda: rl.Filter(account_id=1, limit=-1)),
            ("status name", lambda: rl.StatusRecord(name="x" * 32)),
            ("short frame", lambda: rl.decode_message(b"rldg", True)),
            ("body of the wrong size", lambda: rl.decode_message(
                rl.Header(3, 1, record_count=1).encode() + bytes(100), True)),
            ("not a ring", lambda: rl.Ring.from_text("hello")),
            ("not a ring blob", lambda: rl.Ring.decode(b"RLRG" + bytes(40))),
            ("no endpoint", lambda: rl.Client("")),
            ("bad endpoint", lambda: rl.Client("nowhere")),
            ("batch size", lambda: rl.Client("tcp://127.0.0.1:1", batch_size=9000)),
            ("server key without keypair",
             lambda: rl.Client("tcp://127.0.0.1:1", server_key="x" * 40)),
            ("keypair without server key", lambda: rl.Client(
                "tcp://127.0.0.1:1", keypair=rl.Keypair.load(
                    os.path.join(keys_dir, "private", "client.key_secret")))),
            ("a public file as keypair", lambda: rl.Keypair.load(
                os.path.join(keys_dir, "client", "client.key"))),
            ("keypairs that differ", lambda: rl.Keypair.load(
                os.path.join(keys_dir, "private", "client.key_secret"),
                os.path.join(keys_dir, "router", "router.key"))),
            ("a server key of 39 characters", lambda: rl.load_public_key("x" * 39)),
    ]:
        e = raises(V, fn, what)
        check(str(e), "%s: an exception without a message" % what)
    with rl.Client("tcp://127.0.0.1:1", timeout_ms=100) as c:  # nothing is sent below
        raises(TypeError, lambda: c.create_transfers([A(id=1)]), "an account as a transfer")
        e = raises(ValueError, lambda: c.create_transfers([T(id=7), T(id=7)]), "same id twice")
        check("twice" in str(e), "the message says why: %s" % e)
        raises(V, lambda: c.lookup_accounts(["1"]), "an id as text")
        raises(ValueError, lambda: c.create_accounts([A(id=1)], deadline_s=0), "deadline 0")


# 3. The retry rule against a scripted server ---------------------------------------

class Scripted:
    """A ROUTER on 127.0.0.1 that answers each request with the next answer
    of a script (a function of the request's header and records, giving
    a reply frame, or None for no reply), in a thread; it records what it
    was sent, and stops after the script or 2 s without a request."""

    def __init__(self, answers):
        import zmq
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.endpoint = "tcp://127.0.0.1:%d" % self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.answers, self.seen, self.stop = list(answers), [], False
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self):
        idle_ms = 0
        while self.answers and not self.stop and idle_ms < 2000:
            if not self.sock.poll(50):
                idle_ms += 50
                continue
            idle_ms = 0
            answer = self.answers.pop(0)
            ident, frame = self.sock.recv_multipart()
            header, records = rl.decode_message(frame, False)
            self.seen.append(records)
            reply = answer(header, records)
            if reply is not None:
                self.sock.send_multipart([ident, reply])

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close(0)


def results_reply(*codes):
    def answer(header, records):
        check(len(records) == len(codes), "%d records resent, expected %d"
              % (len(records), len(codes)))
        return rl.encode_message(rl.Header(header.operation, header.request_id),
                                 [rl.Result(k, c, 7 if c == 0 else 0)
                                  for k, c in enumerate(codes)], True)
    return answer


def status_reply(status):
    return lambda h, _: rl.Header(h.operation, h.request_id, status=status).encode()


def retry_rule():
    R = rl.ResultCode
    ts = [rl.Transfer(id=0x51 + k, debit_account_id=1, credit_account_id=2, amount=1,
                      ledger=LEDGER, code=1) for k in range(3)]
    # busy and frozen are resent (alone, with their ids, in order), a lost
    # reply is resent after the timeout, a message-level busy after a pause.
    server = Scripted([results_reply(R.OK, R.BUSY, R.FROZEN),
                       results_reply(R.IN_PROGRESS, R.OK),
                       lambda h, r: None,
                       status_reply(rl.StatusCode.BUSY),
                       results_reply(R.EXISTS)])
    try:
        with rl.Client(server.endpoint, timeout_ms=300) as c:
            results = c.create_transfers(ts, deadline_s=10)
            sent = c.requests_sent
    finally:
        server.close()
    expect(results, [R.OK, R.EXISTS, R.OK], "after the retries")
    check([[t.id for t in s] for s in server.seen] ==
          [[0x51, 0x52, 0x53], [0x52, 0x53], [0x52], [0x52], [0x52]] and sent == 5,
          "sent: %s" % [[hex(t.id) for t in s] for s in server.seen])
    # Still frozen at the deadline: Incomplete, the open record says frozen.
    server = Scripted([results_reply(R.OK, R.FROZEN)] + [results_reply(R.FROZEN)] * 200)
    try:
        with rl.Client(server.endpoint, timeout_ms=300) as c:
            e = raises(rl.Incomplete, lambda: c.create_transfers(ts[:2], deadline_s=0.5),
                       "frozen until the deadline")
    finally:
        server.close()
    check(e.open == [1] and [r.result for r in e.results] == [R.OK, R.FROZEN]
          and "frozen" in str(e.cause), "Incomplete: %s, %s" % (e, e.results))
    # A refusal of the request as a whole is not retried: StatusError at once.
    server = Scripted([status_reply(rl.StatusCode.MALFORMED)])
    try:
        with rl.Client(server.endpoint, timeout_ms=300) as c:
            e = raises(rl.StatusError, lambda: c.create_transfers(ts), "malformed")
            check(c.requests_sent == 1 and e.status is rl.StatusCode.MALFORMED, "sent once")
    finally:
        server.close()
    # A read: timeouts and a retryable status are retried, then the answer.
    record = rl.StatusRecord(name="fake", epoch=9)
    server = Scripted([lambda h, r: None, status_reply(rl.StatusCode.FROZEN),
                       lambda h, r: rl.encode_message(rl.Header(6, h.request_id, epoch=9),
                                                      [record], True)])
    try:
        with rl.Client(server.endpoint, timeout_ms=300) as c:
            check(c.status(deadline_s=10) == record and c.epoch == 9, "status after retries")
    finally:
        server.close()


def chain_rule():
    """A linked chain is resent whole or not at all, and never split
    between two requests (docs/payments.md, "Linked chains")."""
    R = rl.ResultCode
    L = rl.TransferFlags.LINKED
    ts = [rl.Transfer(id=0x61 + k, debit_account_id=1, credit_account_id=2, amount=1,
                      ledger=LEDGER, code=1, flags=L if k < 2 else 0) for k in range(4)]
    # A member busy: the whole chain goes again, the record after it does not.
    server = Scripted([results_reply(R.LINKED_EVENT_FAILED, R.BUSY, R.LINKED_EVENT_FAILED, R.OK),
                       results_reply(R.OK, R.OK, R.OK)])
    try:
        with rl.Client(server.endpoint, timeout_ms=300) as c:
            results = c.create_transfers(ts, deadline_s=10)
    finally:
        server.close()
    expect(results, [R.OK, R.OK, R.OK, R.OK], "the chain resent whole")
    check([[t.id for t in s] for s in server.seen] == [[0x61, 0x62, 0x63, 0x64],
                                                       [0x61, 0x62, 0x63]],
          "sent: %s" % [[hex(t.id) for t in s] for s in server.seen])
    # A business failure decides the chain: its answers are final, nothing resent.
    server = Scripted([results_reply(R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS,
                                     R.LINKED_EVENT_FAILED)])
    try:
        with rl.Client(server.endpoint, timeout_ms=300) as c:
            results = c.create_transfers(ts[:3], deadline_s=10)
            check(c.requests_sent == 1, "sent once")
    finally:
        server.close()
    expect(results, [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS, R.LINKED_EVENT_FAILED],
           "a failed chain")
    # Batches end before a chain, never inside one; a chain longer than a batch is refused.
    server = Scripted([results_reply(R.OK), results_reply(R.OK, R.OK, R.OK)])
    try:
        with rl.Client(server.endpoint, timeout_ms=300, batch_size=3) as c:
            c.create_transfers([ts[3]] + ts[:3], deadline_s=10)
        with rl.Client(server.endpoint, timeout_ms=300, batch_size=2) as c:
            raises(ValueError, lambda: c.create_transfers(ts[:3]), "a chain longer than a batch")
    finally:
        server.close()
    check([[t.id for t in s] for s in server.seen] == [[0x64], [0x61, 0x62, 0x63]],
          "batches: %s" % [[hex(t.id) for t in s] for s in server.seen])


def burns_rule():
    """reply_burns: a member of a linked chain never burns its id (a failed
    chain stores nothing); any other record reads as its code."""
    R, B = rl.ResultCode, rl.Burns
    L = rl.TransferFlags.LINKED
    # Alone; a chain failed by its last member; alone right after a chain;
    # an applied chain; a chain failed as taken; alone field validation; a
    # chain left open at the end.
    rows = [(0, R.EXCEEDS_CREDITS, B.YES), (L, R.LINKED_EVENT_FAILED, B.NO),
            (0, R.EXCEEDS_CREDITS, B.NO), (0, R.DEBIT_ACCOUNT_NOT_FOUND, B.YES),
            (L, R.OK, B.SUCCESS), (L, R.EXISTS, B.SUCCESS), (0, R.OK, B.SUCCESS),
            (L, R.EXISTS_WITH_DIFFERENT_AMOUNT, B.TAKEN), (0, R.LINKED_EVENT_FAILED, B.NO),
            (0, R.AMOUNT_MUST_NOT_BE_ZERO, B.NO), (L, R.LINKED_EVENT_FAILED, B.NO),
            (L, R.LINKED_EVENT_CHAIN_OPEN, B.NO)]
    ts = [rl.Transfer(id=k + 1, flags=f) for k, (f, _, _) in enumerate(rows)]
    rs = [rl.Result(k, code, 0) for k, (_, code, _) in enumerate(rows)]
    got = rl.reply_burns(ts, rs)
    check(got == [want for _, _, want in rows], "reply_burns: %s" % [b.value for b in got])
    # Every code, in a chain of three and alone after it (unknown ones too).
    chain = [rl.Transfer(id=1, flags=L), rl.Transfer(id=2, flags=L), rl.Transfer(id=3),
             rl.Transfer(id=4)]
    for v in range(256):
        code = R(v)
        got = rl.reply_burns(chain, [rl.Result(k, code, 0) for k in range(4)])
        member = B.NO if code.burns is B.YES else code.burns
        check(got == [member] * 3 + [code.burns], "%s: %s" % (code.wire_name, got))
    raises(ValueError, lambda: rl.reply_burns(ts, rs[:-1]), "fewer results than transfers")
    raises(TypeError, lambda: rl.reply_burns([1], [rs[0]]), "not a Transfer")
    raises(TypeError, lambda: rl.reply_burns(ts[:1], [R.OK]), "not a Result")


# 4. A cluster -------------------------------------------------------------------

def free_base(count):
    import random
    for _ in range(200):
        base = random.randrange(20000, 32000)  # below the ephemeral range (common/proc.h)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise Failure("no free ports")


class Model:
    """Balances from the answers the client got."""

    def __init__(self):
        self.debits, self.credits, self.accounts = {}, {}, set()

    def paid(self, t):
        self.debits[t.debit_account_id] = self.debits.get(t.debit_account_id, 0) + t.amount
        self.credits[t.credit_account_id] = self.credits.get(t.credit_account_id, 0) + t.amount


def expect(results, want, what):
    got = [r.result for r in results]
    check([r.index for r in results] == list(range(len(results))), "%s: indices" % what)
    check(got == want, "%s: %s, expected %s" % (what, [c.wire_name for c in got],
                                                 [c.wire_name for c in want]))


class Cluster:
    def __init__(self, build, tmp):
        self.build, self.dir = build, os.path.join(tmp, "cluster")
        self.keys = os.path.join(self.dir, "keys")
        self.base = None

    def start(self):
        for _ in range(3):
            self.base = free_base(3)
            r = subprocess.run([os.path.join(ROOT, "tools", "cluster.sh"), "start", "--shards",
                                "2", "--dir", self.dir, "--base-port", str(self.base),
                                "--build", self.build, "--wait-s", "40"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0:
                return
            print(r.stdout)
            self.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
        raise Failure("cluster.sh start failed 3 times")

    def stop(self):
        subprocess.run([os.path.join(ROOT, "tools", "cluster.sh"), "stop", "--dir", self.dir,
                        "--wait-s", "10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read())

    @property
    def router(self):
        return "tcp://127.0.0.1:%d" % self.base


def live(cluster):
    keys = cluster.keys
    pair = rl.Keypair.load(os.path.join(keys, "private", "client.key_secret"),
                           os.path.join(keys, "client", "client.key"))
    router_key = os.path.join(keys, "router", "router.key")
    ring = rl.Ring.load(os.path.join(cluster.dir, "ring"))
    client = rl.Client(cluster.router, keypair=pair, server_key=router_key)
    shards = {s.name: rl.Client(s.endpoint, keypair=pair, server_keys=ring) for s in ring.shards}
    model = Model()
    tag = 0x9C << 64
    state = {}

    def keys_and_ring():
        check(len(ring.shards) == 2 and all(s.key for s in ring.shards), "a ring with keys")
        served = client.get_ring()
        check(served.epoch == ring.epoch and served.shards == ring.shards,
              "get_ring through the router: %r" % (served,))
        for name, c in shards.items():
            check(c.status().name == name, "status of %s over CURVE, its key from the ring"
                  % name)

    def placement():
        # Which shard owns an id: a read of it on s1 says wrong_shard as a
        # StatusError (retry=False: not retried) unless s1 owns it.
        mine, other = [], []
        for i in range(1, 25):
            try:
                found = shards["s1"].lookup_accounts([tag | i], retry=False)
                check(not found[0].found, "a fresh id is not found")
                mine.append(tag | i)
            except rl.StatusError as e:
                check(e.status is rl.StatusCode.WRONG_SHARD, "a read on s1: %s" % e)
                other.append(tag | i)
        check(len(mine) >= 3 and len(other) >= 3, "placement: %d on s1, %d elsewhere"
              % (len(mine), len(other)))
        ops = [mine[0], other[0]]
        customers = mine[1:3] + other[1:3]
        accounts = [rl.Account(id=i, ledger=LEDGER, code=10) for i in ops]
        accounts += [rl.Account(id=i, ledger=LEDGER, code=20,
                                flags=rl.AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
                     for i in customers]
        # s1 directly: its operator is created; s2's is answered wrong_shard,
        # per record, as data.
        direct = shards["s1"].create_accounts(accounts[:2], retry=False)
        expect(direct, [rl.ResultCode.OK, rl.ResultCode.WRONG_SHARD], "accounts on s1 directly")
        check(direct[1].result.is_open and direct[1].result.burns is rl.Burns.NO,
              "wrong_shard leaves the id free")
        # Through the router: the one s1 made answers exists (the same id
        # again), the others are created.
        results = client.create_accounts(accounts)
        expect(results, [rl.ResultCode.EXISTS] + [rl.ResultCode.OK] * 5,
               "accounts through the router")
        model.accounts.update(ops + customers)
        state.update(s1_ops=ops[0], s2_ops=ops[1], s1=mine[1:3], s2=other[1:3])

    def transfers():
        s1, s2 = state["s1"], state["s2"]
        funding = [rl.Transfer(id=tag | 0x100 | k, debit_account_id=op, credit_account_id=c,
                               amount=1000 * (k + 1), ledger=LEDGER, code=1)
                   for k, (op, c) in enumerate([(state["s1_ops"], s1[0]), (state["s1_ops"], s1[1]),
                                                (state["s2_ops"], s2[0]),
                                                (state["s2_ops"], s2[1]),
                                                (state["s1_ops"], s2[0]),  # cross-shard
                                                (state["s2_ops"], s1[0])])]  # cross-shard
        pay = [rl.Transfer(id=tag | 0x200 | k, debit_account_id=d, credit_account_id=c,
                           amount=10 + k, ledger=LEDGER, code=2)
               for k, (d, c) in enumerate([(s1[0], s1[1]), (s2[0], s2[1]), (s1[0], s2[1]),
                                           (s2[0], s1[1]), (s1[1], s1[0]), (s2[1], s2[0])])]
        # Batches of 4: the call is split, the results come back in order.
        with rl.Client(cluster.router, keypair=pair, server_key=router_key,
                       batch_size=4) as small:
            results = small.create_transfers(funding + pay)
        expect(results, [rl.ResultCode.OK] * 12, "12 transfers in batches of 4")
        check(all(r.timestamp for r in results), "every ok has its timestamp")
        for t in funding + pay:
            model.paid(t)
        again = client.create_transfers(funding + pay)
        expect(again, [rl.ResultCode.EXISTS] * 12, "the same ids again")
        check([r.timestamp for r in again] == [r.timestamp for r in results],
              "exists carries the original timestamps")
        check(all(r.ok for r in again), "exists counts as success")
        burned = rl.Transfer(id=tag | 0x300, debit_account_id=s2[1], credit_account_id=s1[0],
                             amount=10 ** 9, ledger=LEDGER, code=2)
        for what in ("overdraft", "its retry"):
            (r,) = client.create_transfers([burned])
            check(r.result is rl.ResultCode.EXCEEDS_CREDITS and r.result.burns is rl.Burns.YES,
                  "%s: %s" % (what, r.name))
        found = client.lookup_transfers([t.id for t in funding + pay] + [burned.id])
        check(all(f.found and f.amount == t.amount for f, t in zip(found, funding + pay))
              and not found[-1].found, "lookup_transfers: the paid ones, not the burned one")
        # The same failure in a linked chain burns nothing: the failing
        # member, its amount fixed, then applies alone under its id.
        chain = [rl.Transfer(id=tag | 0x310, debit_account_id=s1[0], credit_account_id=s1[1],
                             amount=1, ledger=LEDGER, code=2, flags=rl.TransferFlags.LINKED),
                 rl.Transfer(id=tag | 0x311, debit_account_id=s1[1], credit_account_id=s1[0],
                             amount=10 ** 9, ledger=LEDGER, code=2)]
        got = client.create_transfers(chain)
        expect(got, [rl.ResultCode.LINKED_EVENT_FAILED, rl.ResultCode.EXCEEDS_CREDITS],
               "a failed chain")
        check(rl.reply_burns(chain, got) == [rl.Burns.NO, rl.Burns.NO]
              and got[1].result.burns is rl.Burns.YES, "reply_burns of a failed chain")
        fixed = [dataclasses.replace(chain[1], amount=5),
                 dataclasses.replace(chain[0], flags=rl.TransferFlags(0))]
        expect(client.create_transfers(fixed), [rl.ResultCode.OK] * 2,
               "its members alone, the failing one fixed")
        for t in fixed:
            model.paid(t)

    def retry_across_a_stopped_router():
        # The router stops: the first sends time out; the client resends
        # the same id until the router, resumed, answers. Paid once.
        t = rl.Transfer(id=tag | 0x400, debit_account_id=state["s1"][0],
                        credit_account_id=state["s2"][0], amount=7, ledger=LEDGER, code=3)
        before = client.lookup_accounts([t.debit_account_id])[0].debits_posted
        pid = cluster.pid("router")
        os.kill(pid, signal.SIGSTOP)
        timer = threading.Timer(1.0, os.kill, (pid, signal.SIGCONT))
        timer.start()
        try:
            with rl.Client(cluster.router, keypair=pair, server_key=router_key,
                           timeout_ms=300) as impatient:
                (r,) = impatient.create_transfers([t], deadline_s=30)
                check(impatient.requests_sent >= 2, "sent %d times: no retry"
                      % impatient.requests_sent)
        finally:
            timer.join()
            os.kill(pid, signal.SIGCONT)
        check(r.ok, "after the router resumed: %s" % r.name)
        model.paid(t)
        after = client.lookup_accounts([t.debit_account_id])[0].debits_posted
        check(after - before == 7, "paid exactly once: debits %d -> %d" % (before, after))
        (again,) = client.create_transfers([t])
        check(again.result is rl.ResultCode.EXISTS, "a retry later: %s" % again.name)

    def failures():
        port = free_base(1)
        nowhere = "tcp://127.0.0.1:%d" % port
        t = rl.Transfer(id=tag | 0x500, debit_account_id=state["s1"][0],
                        credit_account_id=state["s1"][1], amount=1, ledger=LEDGER, code=4)
        with rl.Client(nowhere, keypair=pair, server_key=router_key, timeout_ms=200) as dead:
            e = raises(rl.Incomplete, lambda: dead.create_transfers([t], deadline_s=0.6),
                       "create with nothing listening")
            check(e.open == [0] and e.results[0].result is rl.ResultCode.OUTCOME_UNKNOWN
                  and isinstance(e.cause, rl.Timeout), "Incomplete: %s" % e)
            raises(rl.Timeout, lambda: dead.status(deadline_s=0.5), "status, nothing listening")
            raises(rl.TransportError, lambda: dead.lookup_accounts([1], retry=False),
                   "a lookup without retry")
        # A key of the shard role may not create transfers through the router.
        shard_pair = rl.Keypair.load(os.path.join(keys, "private", "s1.key_secret"))
        with rl.Client(cluster.router, keypair=shard_pair, server_key=router_key) as wrong:
            e = raises(rl.StatusError, lambda: wrong.create_transfers([t]), "a shard's key")
            check(e.status is rl.StatusCode.UNAUTHORIZED and not e.status.is_retryable,
                  "refused: %s" % e)
        check(not client.lookup_transfers([t.id])[0].found, "nothing of it was applied")
        # A router's own bad-filter answer is a StatusError, not a retry.
        e = raises(rl.StatusError, lambda: client.get_account_transfers(
            state["s1"][0], flags=rl.FilterFlags.REVERSED), "a filter without debits/credits")
        check(e.status is rl.StatusCode.BAD_FILTER, "bad filter: %s" % e)

    def async_client():
        async def run():
            async with AsyncClient(cluster.router, keypair=pair, server_key=router_key) as ac:
                ids = sorted(model.accounts)
                reads = await asyncio.gather(*(ac.lookup_accounts([i]) for i in ids),
                                             ac.status())
                check([r[0].id for r in reads[:-1]] == ids and all(r[0].found for r in reads[:-1]),
                      "concurrent lookups on one AsyncClient")
                t = rl.Transfer(id=tag | 0x600, debit_account_id=state["s2_ops"],
                                credit_account_id=state["s1"][1], amount=5, ledger=LEDGER,
                                code=5)
                first = await ac.create_transfers([t])
                second = await ac.create_transfers([t])
                check(first[0].result is rl.ResultCode.OK and
                      second[0].result is rl.ResultCode.EXISTS, "async create, then its retry")
                model.paid(t)
                history = await ac.history(state["s1"][1])
                check(t.id in [h.id for h in history], "async history")
        asyncio.run(run())

    def conservation():
        deadline = time.monotonic() + 15
        while any(c.status().inflight or c.status().in_doubt for c in shards.values()):
            check(time.monotonic() < deadline, "two-phase attempts still live after 15 s")
            time.sleep(0.05)
        ids = sorted(model.accounts)
        accounts = client.lookup_accounts(ids)
        check(all(a.found for a in accounts), "every account found")
        debits = sum(a.debits_posted for a in accounts)
        credits = sum(a.credits_posted for a in accounts)
        check(debits == credits and debits > 0, "ledger %d: debits %d, credits %d"
              % (LEDGER, debits, credits))
        check(all(a.debits_reserved == a.credits_reserved == 0 for a in accounts),
              "nothing left in escrow")
        for a in accounts:
            check((a.debits_posted, a.credits_posted) == (model.debits.get(a.id, 0),
                                                          model.credits.get(a.id, 0)),
                  "account %#x: %d/%d, the answers say %d/%d" % (
                      a.id, a.debits_posted, a.credits_posted, model.debits.get(a.id, 0),
                      model.credits.get(a.id, 0)))
            if a.flags & rl.AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS:
                check(a.balance >= 0, "a customer went negative")
            history = client.history(a.id)
            check(sum(t.amount for t in history if t.debit_account_id == a.id) ==
                  a.debits_posted, "account %#x: history and balance agree" % a.id)

    try:
        case("cluster: keys from certificate files and from the ring", keys_and_ring)
        case("cluster: placement by wrong_shard, accounts through the router", placement)
        case("cluster: transfers (same-shard, cross-shard, batches split, exists, burned)",
             transfers)
        case("cluster: a retry across a stopped router pays once", retry_across_a_stopped_router)
        case("cluster: transport failures and refusals are exceptions", failures)
        case("cluster: the asyncio client", async_client)
        case("cluster: conservation", conservation)
    finally:
        client.close()
        for c in shards.values():
            c.close()


def main():
    build = os.path.abspath(sys.argv[1])
    with open(PROTOCOL_MD, encoding="utf-8") as f:
        text = f.read()
    case("codec: the hex vectors of protocol.md, typed", vectors, text)
    case("codec: the package's enums equal protocol.md's tables", tables, text)
    case("retry rule: a scripted server answers busy, frozen, nothing, then ok", retry_rule)
    case("chain rule: a linked chain is resent whole or not at all, never split", chain_rule)
    case("burns rule: reply_burns reads a failed chain's members as not burned", burns_rule)
    for program in ("shard/shard", "router/router", "tools/rlctl", "tools/rebalance"):
        if not os.access(os.path.join(build, program), os.X_OK):
            print("FAILED  %s is not built in %s" % (program, build))
            RESULTS["failed"] += 1
            return 1
    tmp = tempfile.mkdtemp(prefix="rl-test_pyclient-")
    cluster = Cluster(build, tmp)
    try:
        start = time.monotonic()
        cluster.start()
        print("ok      cluster: 2 shards and a router on 127.0.0.1:%d.. (%.1f s)"
              % (cluster.base, time.monotonic() - start), flush=True)
        case("api: bad arguments raise before anything is sent", bad_arguments, cluster.keys)
        live(cluster)
    except Failure as e:
        RESULTS["failed"] += 1
        print("FAILED  %s" % e)
    finally:
        cluster.stop()
        if RESULTS["failed"] or os.environ.get("RL_KEEP_TEST_DIRS") == "1":
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
