#!/usr/bin/env python3
"""test_reverse_py.py BUILD_DIR: reversals through the Python client
(ringledger.reversal, docs/payments.md), as installed in the test venv.

1. The id derivation equals the vectors of docs/payments.md (which
   tests/test_reverse.c checks in C).
2. Bad input to reverse() raises ValueError or TypeError before anything is
   sent: an original id of 0, all ones or not an int, k out of range, an
   amount of 0, above 2^64 - 1 or not an int.
3. A cluster of 2 shards and a router (tools/cluster.sh, CURVE): full and
   partial reversals, a retry of the same k (exists, applied once),
   exceeds_original, k_not_next, a reversal burned by exceeds_credits that
   leaves the next k free, an unknown and a failed original
   (original_not_found), a reversal id taken outside the rules (disorder);
   then the conservation check against a model of what was answered.

Prints 'N passed, N failed'; a missing tool or program fails, never skips.
"""
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import ringledger as rl
from ringledger import reversal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAYMENTS_MD = os.path.join(ROOT, "docs", "payments.md")
LEDGER = 978
TAG = 0x5245 << 64  # "RE": this test's account and transfer ids
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


def vectors():
    with open(PAYMENTS_MD) as f:
        text = f.read()
    rows = re.findall(r"^\| `(0x[0-9a-f]+)` \| (\d+) \| `(0x[0-9a-f]+)` \|$", text, re.M)
    check(len(rows) >= 4, "payments.md has the reversal id vectors (%d rows)" % len(rows))
    for original, k, want in rows:
        got = reversal.reversal_id(int(original, 16), int(k))
        check(got == int(want, 16), "reversal %s of %s: %#x, the doc says %s"
              % (k, original, got, want))
    check(reversal.reversal_id(1, 0) != reversal.reversal_id(1 << 64, 0), "ids differ")


class Untouchable:
    """A client that fails the test if reverse() uses it."""

    def __getattr__(self, name):
        raise Failure("reverse() called %s before checking its arguments" % name)


def bad_input():
    c = Untouchable()
    bad = [
        (ValueError, dict(original=0)), (ValueError, dict(original=rl.ID_INT_MAX)),
        (TypeError, dict(original="12")), (TypeError, dict(original=None)),
        (ValueError, dict(original=5, k=256)), (ValueError, dict(original=5, k=-1)),
        (ValueError, dict(original=5, k="0")), (ValueError, dict(original=5, amount=0)),
        (ValueError, dict(original=5, amount=1 << 64)), (ValueError, dict(original=5, amount=1.5)),
        (ValueError, dict(original=5, code=0)), (ValueError, dict(original=5, user_data_32=-1)),
    ]
    for kind, kw in bad:
        original = kw.pop("original")
        try:
            reversal.reverse(c, original, **kw)
        except kind:
            continue
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001
            raise Failure("%r %r: %s, expected %s" % (original, kw, type(e).__name__,
                                                       kind.__name__))
        raise Failure("%r %r: accepted" % (original, kw))
    for args in ((0, 0), (1, 256), (1, -1)):
        try:
            reversal.reversal_id(*args)
            raise Failure("reversal_id%r accepted" % (args,))
        except ValueError:
            pass


def free_base(count):
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


def live(cluster):
    keys = cluster.keys
    pair = rl.Keypair.load(os.path.join(keys, "private", "client.key_secret"),
                           os.path.join(keys, "client", "client.key"))
    client = rl.Client("tcp://127.0.0.1:%d" % cluster.base, keypair=pair,
                       server_key=os.path.join(keys, "router", "router.key"))
    debits, credits = {}, {}
    next_id = [TAG | 1000]

    def paid(t):
        debits[t.debit_account_id] = debits.get(t.debit_account_id, 0) + t.amount
        credits[t.credit_account_id] = credits.get(t.credit_account_id, 0) + t.amount

    def pay(debit, credit, amount):
        next_id[0] += 1
        t = rl.Transfer(id=next_id[0], debit_account_id=TAG | debit, credit_account_id=TAG | credit,
                        amount=amount, ledger=LEDGER, code=1)
        r = client.create_transfers([t])[0]  # retried with its id: exists is ok too
        if r.result.is_success:
            paid(t)
            return t.id, rl.ResultCode.OK
        return t.id, r.result

    def reverse(original, want, result=None, **kw):
        deadline = time.monotonic() + 20
        r = reversal.reverse(client, original, **kw)
        while r.outcome is reversal.Outcome.OPEN and time.monotonic() < deadline:
            time.sleep(0.05)  # a reversal in flight (a loaded machine): ask again
            r = reversal.reverse(client, original, **kw)
        check(r.outcome is want, "reverse %#x %r: %s, expected %s"
              % (original, kw, r.outcome.value, want.value))
        if want is reversal.Outcome.SENT:
            # The create is retried with its id: after an open outcome (a
            # loaded machine), exists is the first send applied.
            got = r.result.result
            check(got == result or (result == rl.ResultCode.OK and got.is_success),
                  "reverse %#x %r: %s, expected %s" % (original, kw, got.wire_name,
                                                       result.wire_name))
            if result == rl.ResultCode.OK:
                paid(r.transfer)
        return r

    accounts = [rl.Account(id=TAG | n, ledger=LEDGER, code=1,
                           flags=rl.AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS if n >= 10
                           else rl.AccountFlags(0)) for n in range(1, 13)]
    check(all(r.result == rl.ResultCode.OK for r in client.create_accounts(accounts)),
          "accounts created")
    OK, EXISTS = rl.ResultCode.OK, rl.ResultCode.EXISTS
    Out = reversal.Outcome

    # Full, then nothing left; the same k again: exists.
    t1, r = pay(1, 2, 1000)
    check(r == OK, "payment 1")
    got = reverse(t1, Out.SENT, OK)
    check(got.k == 0 and got.transfer.amount == 1000, "k 0, the whole amount")
    check(got.transfer.debit_account_id == TAG | 2 and got.transfer.credit_account_id == TAG | 1,
          "the money goes back")
    check(got.transfer.user_data_128 == t1 and got.transfer.user_data_64 == 0,
          "the original and k in user data")
    check(got.transfer.id == reversal.reversal_id(t1, 0), "the derived id")
    reverse(t1, Out.EXCEEDS_ORIGINAL)
    reverse(t1, Out.SENT, EXISTS, k=0)
    reverse(t1, Out.SENT, rl.ResultCode.EXISTS_WITH_DIFFERENT_AMOUNT, k=0, amount=3)

    # Partial refunds over several payments (some cross-shard, by placement).
    for n, (a, b) in enumerate(((1, 3), (4, 5), (6, 7), (8, 9))):
        t, r = pay(a, b, 900)
        check(r == OK, "payment %d" % n)
        reverse(t, Out.SENT, OK, amount=400)
        reverse(t, Out.SENT, OK, k=1, amount=100)
        reverse(t, Out.EXCEEDS_ORIGINAL, amount=401)
        reverse(t, Out.K_NOT_NEXT, k=3, amount=1)
        got = reverse(t, Out.SENT, OK)
        check(got.k == 2 and got.transfer.amount == 400 and got.reversed == 500, "the rest")
        reverse(t, Out.SENT, EXISTS, k=1, amount=100)

    # A burned reversal keeps its k; the next one takes k + 1.
    t3, r = pay(1, 10, 500)
    check(r == OK, "payment to a customer")
    _, r = pay(10, 11, 500)
    check(r == OK, "the customer spends it")
    got = reverse(t3, Out.SENT, rl.ResultCode.EXCEEDS_CREDITS)
    check(got.k == 0, "k 0 burned")
    _, r = pay(1, 10, 500)
    got = reverse(t3, Out.SENT, OK)
    check(got.k == 1 and got.reversed == 0, "k 1 after the burned one")
    reverse(t3, Out.SENT, rl.ResultCode.EXCEEDS_CREDITS, k=0, amount=500)

    # Bad originals, and a reversal id taken outside the rules.
    failed, r = pay(12, 1, 10 ** 9)
    check(r == rl.ResultCode.EXCEEDS_CREDITS, "a failed payment")
    reverse(failed, Out.ORIGINAL_NOT_FOUND)
    reverse(TAG | 999999, Out.ORIGINAL_NOT_FOUND)
    t4, r = pay(1, 2, 70)
    rogue = rl.Transfer(id=reversal.reversal_id(t4, 2), debit_account_id=TAG | 2,
                        credit_account_id=TAG | 1, amount=1, ledger=LEDGER, code=1)
    check(client.create_transfers([rogue])[0].result == OK, "rogue")
    paid(rogue)
    got = reverse(t4, Out.DISORDER)
    check(got.k == 2, "disorder names k 2")

    # Conservation: every account equals the model, debits equal credits.
    ring = rl.Ring.load(os.path.join(cluster.dir, "ring"))
    shards = [rl.Client(s.endpoint, keypair=pair, server_keys=ring) for s in ring.shards]
    deadline = time.monotonic() + 15
    while any(s.status().inflight or s.status().in_doubt for s in shards):
        check(time.monotonic() < deadline, "two-phase attempts still live after 15 s")
        time.sleep(0.05)
    found = client.lookup_accounts([a.id for a in accounts])
    check(sum(a.debits_posted for a in found) == sum(a.credits_posted for a in found) > 0,
          "debits equal credits")
    for a in found:
        check((a.debits_posted, a.credits_posted) == (debits.get(a.id, 0), credits.get(a.id, 0)),
              "account %#x: %d/%d, the answers say %d/%d" % (
                  a.id, a.debits_posted, a.credits_posted, debits.get(a.id, 0),
                  credits.get(a.id, 0)))
        check(a.debits_reserved == a.credits_reserved == 0, "nothing in escrow")
    for s in shards:
        s.close()
    client.close()


def main():
    if len(sys.argv) != 2:
        print("usage: test_reverse_py.py BUILD_DIR", file=sys.stderr)
        return 2
    case("the reversal id vectors of docs/payments.md", vectors)
    case("bad input raises before anything is sent", bad_input)
    tmp = tempfile.mkdtemp(prefix="rl-reverse-py-")
    cluster = Cluster(sys.argv[1], tmp)
    try:
        case("cluster.sh start", cluster.start)
        case("reversals against a cluster, then conservation", live, cluster)
    finally:
        cluster.stop()
        if RESULTS["failed"] == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept %s" % tmp)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
