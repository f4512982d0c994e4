#!/usr/bin/env python3
"""test_events_py.py BUILD_DIR SOURCE_DIR: the change stream's consumer
(clients/python/examples/rebuild_balances.py, ringledger.events) against a
cluster under load while shards and the consumer are SIGKILLed
(docs/events.md).

1. Bad input to the consumer's API and to events_read: ValueError before
   anything is sent; bad_position and resync as StatusError, nothing
   changed.
2. A cluster of 2 shards (CURVE, --events-bind, the WAL held in memory
   until each group commit, so that SIGKILL drops what is not synced) and
   a router; accounts through the router; then for LOAD_S seconds a client
   pays between random accounts (same-shard and cross-shard, some
   overdrafts that burn their ids) while a chaos thread SIGKILLs and
   restarts a shard, then the consumer, in turns. The consumer runs all
   along, persisting its state.
3. Once the load has stopped and the shards are quiet (no live attempt, no
   prepared record): the consumer is stopped and run once more from its
   persisted state up to every shard's head; the balances it rebuilt
   equal the shards' (every account), which equal the model of the
   client's answers (unknown outcomes settled by lookup); per ledger
   debits equal credits, nothing reserved, and at least MIN_OK transfers
   took effect, cross-shard ones included.

Prints 'N passed, N failed'; a missing program fails, never skips.
"""
import ctypes
import json
import os
import random
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
from ringledger import events

LEDGER = 978
ACCOUNTS = 24  # customers; account 1 is the operator
LOAD_S = 8.0
MIN_OK = 150
RESULTS = {"passed": 0, "failed": 0}
SEED = int(os.environ.get("RL_SEED", random.randrange(1 << 30)))


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
        return True
    except Exception as e:  # noqa: BLE001 - every error of a case is a failure of that case
        RESULTS["failed"] += 1
        detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
        print("FAILED  %s: %s" % (name, detail), flush=True)
        return False


def _die_with_parent():
    """In the child: SIGKILL when the test dies (PR_SET_PDEATHSIG), even by
    SIGKILL at ctest's TIMEOUT. The death signal follows the spawning
    thread: every child is spawned from the main thread."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def free_ports(count):
    for _ in range(200):
        base = random.randrange(20000, 32000)  # below the ephemeral range (common/proc.h)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return list(range(base, base + count))
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise Failure("no free ports")


class Cluster:
    """2 shards and a router, spawned here (each in its own process group,
    logs in DIR/NAME.log), stopped with SIGKILL at the end."""

    SHARDS = ("s1", "s2")

    def __init__(self, build, tmp):
        self.build, self.dir = build, tmp
        self.keys = os.path.join(tmp, "keys")
        self.procs = {}
        ports = free_ports(5)
        self.router = "tcp://127.0.0.1:%d" % ports[0]
        self.endpoint = {n: "tcp://127.0.0.1:%d" % ports[1 + i] for i, n in enumerate(self.SHARDS)}
        self.events = {n: "tcp://127.0.0.1:%d" % ports[3 + i] for i, n in enumerate(self.SHARDS)}
        self.ring = os.path.join(tmp, "ring")

    def _run(self, *argv):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(r.returncode == 0, "%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stdout))

    def make(self):
        rlctl = os.path.join(self.build, "tools", "rlctl")
        for role, name in [("shard", n) for n in self.SHARDS] + [("router", "router"),
                                                                  ("client", "client")]:
            self._run(rlctl, "keygen", "--role", role, "--name", name, "--dir", self.keys)
        args = [os.path.join(self.build, "tools", "rebalance"), "init", "--epoch", "1"]
        for n in self.SHARDS:
            args += ["--shard", "%s=%s" % (n, self.endpoint[n])]
        self._run(*args, "--keys", self.keys, "--out", self.ring)

    def spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        log.close()

    def start_shard(self, name):
        self.spawn(name, [os.path.join(self.build, "shard", "shard"), "--name", name,
                          "--bind", self.endpoint[name], "--data", os.path.join(self.dir, name),
                          "--ring", self.ring, "--keys", self.keys, "--durability", "manual-wal",
                          "--events-bind", self.events[name], "--query-after-ms", "200",
                          "--retry-max-ms", "200"])

    def start(self):
        for n in self.SHARDS:
            self.start_shard(n)
        self.spawn("router", [os.path.join(self.build, "router", "router"), "--bind",
                              self.router, "--ring", self.ring, "--keys", self.keys])

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(10)

    def stop(self):
        for name in list(self.procs):
            self.kill(name)

    def alive(self, name):
        return self.procs[name].poll() is None

    def tail(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""


class Run:
    def __init__(self, cluster, source):
        self.c = cluster
        self.source = source
        self.pair = rl.Keypair.load(os.path.join(cluster.keys, "private", "client.key_secret"))
        self.ring_obj = rl.Ring.load(cluster.ring)
        self.router_key = os.path.join(cluster.keys, "router", "router.key")
        self.client = rl.Client(cluster.router, keypair=self.pair, server_key=self.router_key,
                                timeout_ms=3000)
        self.shard = {n: rl.Client(cluster.endpoint[n], keypair=self.pair,
                                   server_keys=self.ring_obj, timeout_ms=1000)
                      for n in cluster.SHARDS}
        self.state = os.path.join(cluster.dir, "consumer.json")
        self.debits, self.credits = {}, {}
        self.unknown = []
        self.ok = 0
        self.stop_load = threading.Event()
        self.kills = {"shard": 0, "consumer": 0}
        self.consumer = None
        self.consumer_starts = 0
        self.tag = 0xE5 << 64
        self.accounts = [self.tag | i for i in range(1, ACCOUNTS + 2)]

    def close(self):
        self.client.close()
        for c in self.shard.values():
            c.close()

    def consumer_argv(self, once=False):
        argv = [sys.executable, os.path.join(self.source, "clients", "python", "examples",
                                             "rebuild_balances.py"),
                "--ring", self.c.ring, "--cert",
                os.path.join(self.c.keys, "private", "client.key_secret"), "--state", self.state,
                "--page", "37"]
        for n in self.c.SHARDS:
            argv += ["--events", "%s=%s" % (n, self.c.events[n])]
        return argv + (["--once"] if once else [])

    def start_consumer(self):
        log = open(os.path.join(self.c.dir, "consumer.log"), "ab")
        self.consumer = subprocess.Popen(self.consumer_argv(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        log.close()
        self.consumer_starts += 1

    def wait_consumer(self):
        """Until the last consumer started has its SIGTERM handler (it says
        so in its log): a SIGTERM before that would kill it."""
        deadline = time.monotonic() + 30
        path = os.path.join(self.c.dir, "consumer.log")
        while True:
            with open(path, "rb") as f:
                if f.read().count(b"rebuild_balances: following") >= self.consumer_starts:
                    return
            check(self.consumer.poll() is None, "the consumer exited: %s" % self.c.tail("consumer"))
            check(time.monotonic() < deadline, "the consumer did not start within 30 s")
            time.sleep(0.05)

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while True:
            try:
                if all(self.shard[n].status(retry=False, timeout_ms=500).name == n
                       for n in self.c.SHARDS):
                    self.client.status(retry=False, timeout_ms=500)
                    return
            except rl.RingledgerError:
                pass
            for n in list(self.c.procs):
                check(self.c.alive(n), "%s exited at start: %s" % (n, self.c.tail(n)))
            check(time.monotonic() < deadline, "the cluster did not answer within 30 s")
            time.sleep(0.05)

    def accounts_and_funding(self):
        op = self.accounts[0]
        accounts = [rl.Account(id=op, ledger=LEDGER, code=1)]
        accounts += [rl.Account(id=a, ledger=LEDGER, code=2,
                                flags=rl.AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
                     for a in self.accounts[1:]]
        results = self.client.create_accounts(accounts)
        check(all(r.ok for r in results), "accounts: %s" % [r.name for r in results])
        funding = [rl.Transfer(id=self.tag | 0x10000 | i, debit_account_id=op,
                               credit_account_id=a, amount=5000, ledger=LEDGER, code=1)
                   for i, a in enumerate(self.accounts[1:])]
        self.record(funding, self.client.create_transfers(funding))
        check(self.ok == ACCOUNTS, "funding: %d ok" % self.ok)

    def record(self, transfers, results):
        for t, r in zip(transfers, results):
            if r.result.is_success:
                self.paid(t)
            elif r.result.is_open:
                self.unknown.append(t)

    def paid(self, t):
        self.ok += 1
        self.debits[t.debit_account_id] = self.debits.get(t.debit_account_id, 0) + t.amount
        self.credits[t.credit_account_id] = self.credits.get(t.credit_account_id, 0) + t.amount

    def load(self):
        rnd = random.Random(SEED)
        n = 0
        customers = self.accounts[1:]
        with rl.Client(self.c.router, keypair=self.pair, server_key=self.router_key) as client:
            while not self.stop_load.is_set():
                batch = []
                for _ in range(16):
                    n += 1
                    d, c = rnd.sample(customers, 2)
                    amount = rnd.randrange(1, 40) if n % 10 else 10 ** 9  # an overdraft burns
                    batch.append(rl.Transfer(id=self.tag | 0x100000 | n, debit_account_id=d,
                                             credit_account_id=c, amount=amount, ledger=LEDGER,
                                             code=3))
                try:
                    self.record(batch, client.create_transfers(batch, deadline_s=10))
                except rl.Incomplete as e:
                    self.record(batch, e.results)
                except rl.RingledgerError:
                    self.unknown.extend(batch)

    def chaos(self):
        rnd = random.Random(SEED + 1)
        end = time.monotonic() + LOAD_S
        turn = 0
        while time.monotonic() < end:
            time.sleep(rnd.uniform(0.3, 0.8))
            turn += 1
            if turn % 3 == 0:
                self.consumer.kill()
                self.consumer.wait(10)
                self.kills["consumer"] += 1
                time.sleep(0.1)
                self.start_consumer()
            else:
                name = rnd.choice(self.c.SHARDS)
                self.c.kill(name)
                self.kills["shard"] += 1
                time.sleep(rnd.uniform(0.05, 0.4))
                self.c.start_shard(name)

    def quiet(self):
        deadline = time.monotonic() + 30
        while True:
            try:
                statuses = [self.shard[n].status(retry=False, timeout_ms=1000)
                            for n in self.c.SHARDS]
                if all(s.inflight == 0 and s.in_doubt == 0 for s in statuses):
                    return
            except rl.RingledgerError:
                pass
            check(time.monotonic() < deadline, "two-phase work still live after 30 s")
            time.sleep(0.1)

    def settle(self):
        """Unknown outcomes: applied exactly when the debit shard finds the id."""
        ids = [t.id for t in self.unknown]
        found = self.client.lookup_transfers(ids) if ids else []
        for t, f in zip(self.unknown, found):
            if f.found:
                check(f.amount == t.amount and f.debit_account_id == t.debit_account_id,
                      "lookup of %#x: another transfer" % t.id)
                self.paid(t)
        self.unknown = []


def bad_input(run):
    s1 = run.shard["s1"]
    head = s1.events_read((0, 0, 0), 1)
    for what, fn in [("page 0", lambda: events.Consumer({"s1": ("tcp://127.0.0.1:1",)},
                                                        state_path="/nonexistent/x", page=0)),
                     ("no shards", lambda: events.Consumer({}, state_path="x")),
                     ("limit past u32", lambda: rl.codec.EventsRequest(limit=1 << 32)),
                     ("a negative timestamp", lambda: s1.events_read((0, 0, -1), 1)),
                     ("a note of 10 bytes", lambda: events.decode_note(b"x" * 10)),
                     ("a note with another magic", lambda: events.decode_note(bytes(64)))]:
        try:
            fn()
        except (ValueError, TypeError) as e:
            check(str(e), "%s: an exception without a message" % what)
            continue
        raise Failure("%s: no ValueError" % what)
    for position, limit, status in [((0, 1, 0), 1, rl.StatusCode.BAD_POSITION),
                                    ((0, 0, 7), 1, rl.StatusCode.BAD_POSITION),
                                    ((0, 0, 0), 0, rl.StatusCode.BAD_POSITION),
                                    ((0, 0, 0), 8191, rl.StatusCode.BAD_POSITION),
                                    ((1 << 63, 5, 5), 1, rl.StatusCode.RESYNC)]:
        try:
            s1.events_read(position, limit)
            raise Failure("events_read %s limit %d: no error" % (position, limit))
        except rl.StatusError as e:
            check(e.status is status, "events_read %s limit %d: %s, expected %s"
                  % (position, limit, e.status, status))
    check(s1.events_read((0, 0, 0), 1) == head, "the refusals changed the stream")
    # Through a router: not served there.
    try:
        run.client.events_read((0, 0, 0), 1, retry=False)
        raise Failure("a router served events_read")
    except rl.StatusError as e:
        check(e.status is rl.StatusCode.UNKNOWN_OPERATION, "router: %s" % e.status)
    # A state file that is not ours is refused, not overwritten.
    path = os.path.join(run.c.dir, "foreign.json")
    with open(path, "w") as f:
        json.dump({"version": 99}, f)
    try:
        events.Consumer({"s1": ("tcp://127.0.0.1:1",)}, state_path=path)
        raise Failure("a foreign state file was taken")
    except ValueError:
        pass
    with open(path) as f:
        check(json.load(f) == {"version": 99}, "the foreign state file was changed")


def under_load(run):
    run.start_consumer()
    loader = threading.Thread(target=run.load)
    loader.start()
    try:
        run.chaos()
    finally:
        run.stop_load.set()
        loader.join(60)
    for n in run.c.SHARDS:
        if not run.c.alive(n):
            run.c.start_shard(n)
    run.wait_ready()
    check(run.kills["shard"] >= 4 and run.kills["consumer"] >= 2, "kills: %s" % run.kills)


def rebuilt(run):
    run.quiet()
    run.settle()
    run.quiet()
    # The running consumer stops; one more run from its persisted state reads
    # every shard up to its head.
    run.wait_consumer()
    run.consumer.send_signal(signal.SIGTERM)
    check(run.consumer.wait(20) == 0, "the consumer did not stop cleanly")
    with open(run.state) as f:
        state = json.load(f)
    check(sum(s["applied"] for s in state["shards"].values()) > 0,
          "the consumer applied nothing while the cluster ran")
    r = subprocess.run(run.consumer_argv(once=True), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    check(r.returncode == 0, "consumer --once: exit %d: %s" % (r.returncode, r.stderr))
    balances = {int(a, 16): tuple(v) for a, v in json.loads(r.stdout).items()}
    accounts = run.client.lookup_accounts(run.accounts)
    check(all(a.found for a in accounts), "every account found")
    debits = sum(a.debits_posted for a in accounts)
    credits = sum(a.credits_posted for a in accounts)
    check(debits == credits and debits > 0, "ledger %d: debits %d, credits %d"
          % (LEDGER, debits, credits))
    check(all(a.debits_reserved == a.credits_reserved == 0 for a in accounts),
          "something left in escrow")
    for a in accounts:
        shard = (a.debits_posted, a.credits_posted)
        model = (run.debits.get(a.id, 0), run.credits.get(a.id, 0))
        got = balances.get(a.id, (0, 0))
        check(shard == model, "account %#x: shard %s, the answers say %s" % (a.id, shard, model))
        check(got == shard, "account %#x: rebuilt %s, shard %s" % (a.id, got, shard))
    check(set(balances) <= set(run.accounts), "rebuilt accounts nobody made")
    check(run.ok >= MIN_OK, "only %d transfers took effect" % run.ok)
    # Each shard's stream, read here: every ok debit leg of a cross-shard
    # transfer has its ok credit leg on the other shard, once.
    legs = {}
    for name, shard in run.shard.items():
        position = (0, 0, 0)
        while True:
            got = shard.events_read(position, 8190)
            for e in got:
                if e.result is rl.ResultCode.OK and e.leg != events.LEG_BOTH:
                    key = (e.transfer.id, e.transfer.debit_account_id, e.leg)
                    check(key not in legs, "leg %s twice" % (key,))
                    legs[key] = name
            if len(got) < 8190:
                break
            position = got[-1].position
    debit = {k[:2]: v for k, v in legs.items() if k[2] == events.LEG_DEBIT}
    credit = {k[:2]: v for k, v in legs.items() if k[2] == events.LEG_CREDIT}
    check(debit and set(debit) == set(credit), "cross-shard legs: %d debit, %d credit"
          % (len(debit), len(credit)))
    check(all(debit[k] != credit[k] for k in debit), "both legs of a transfer on one shard")
    print("        %d ok transfers (%d cross-shard), kills %s, seed %d"
          % (run.ok, len(debit), run.kills, SEED), flush=True)


def main():
    build, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    print("RL_SEED=%d" % SEED, flush=True)
    for program in ("shard/shard", "router/router", "tools/rlctl", "tools/rebalance"):
        if not os.access(os.path.join(build, program), os.X_OK):
            print("FAILED  %s is not built in %s" % (program, build))
            return 1
    tmp = tempfile.mkdtemp(prefix="rl-test_events_py-")
    cluster = Cluster(build, tmp)
    run = None
    try:
        cluster.make()
        cluster.start()
        run = Run(cluster, source)
        if case("cluster: 2 shards with --events-bind and a router", run.wait_ready):
            case("accounts and funding", run.accounts_and_funding)
            case("bad input: the consumer's API, events_read's positions", bad_input, run)
            if case("load while shards and the consumer are SIGKILLed", under_load, run):
                case("rebuilt balances equal the shards', conservation", rebuilt, run)
    except Failure as e:
        RESULTS["failed"] += 1
        print("FAILED  %s" % e)
    finally:
        if run:
            if run.consumer and run.consumer.poll() is None:
                run.consumer.kill()
            run.close()
        cluster.stop()
        if RESULTS["failed"]:
            for name in list(cluster.procs) + ["consumer"]:
                print("--- %s.log (end)\n%s" % (name, cluster.tail(name)))
        if RESULTS["failed"] or os.environ.get("RL_KEEP_TEST_DIRS") == "1":
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
