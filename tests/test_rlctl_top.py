#!/usr/bin/env python3
"""test_rlctl_top.py BUILD_DIR: `rlctl top` against a live cluster (docs/cli.md).

  1. bad arguments exit 2 and send nothing (no cluster is running yet);
  2. a 2-shard cluster with a router and CURVE (tools/cluster.sh) under a
     short rlbench load: `rlctl top --json --count 3` prints 3 lines, each
     one JSON object with the documented fields, every shard serving, and
     transfers per second above zero; the table fits 80 columns;
  3. on a terminal (a pseudo-terminal here): the screen is cleared and
     redrawn, q or SIGINT (Ctrl-C) quits with exit 0 and the terminal's
     mode is restored; with the terminal's output suspended (Ctrl-S), top
     blocks in a write and a first SIGINT cannot be served: a second one
     ends it (exit 130) with the terminal's mode restored;
  4. one shard killed (SIGKILL): top shows it down, goes on to the end of
     --count, and exits 1; the other shard still serves.

Everything started is stopped at the end.
"""
import json
import os
import pty
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time

SHARDS = 2
LOAD_S = 5
INTERVAL_MS = 500
SHARD_FIELDS = ("name", "address", "up", "state", "transfers_per_s", "requests_per_s",
                "turn_p99_ms", "in_doubt", "in_doubt_oldest_s", "inflight", "alarms",
                "arcs_unreceived", "epoch")
TOTAL_FIELDS = ("shards", "up", "down", "transfers_per_s", "requests_per_s", "turn_p99_ms",
                "in_doubt", "in_doubt_oldest_s", "inflight", "alarms", "arcs_unreceived")


def fail(message):
    print("FAILED  " + message, flush=True)
    sys.exit(1)


def ok(message):
    print("ok      " + message, flush=True)


def free_base(count):
    """A base port P with P..P+count-1 free on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(20000, 32000)  # below the ephemeral range (common/proc.h)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    fail("no free ports")


def run(args, env, timeout=60):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, timeout=timeout)


def views(out, count):
    """The JSON objects of top --json: exactly count lines, one object each."""
    lines = out.splitlines()
    if len(lines) != count:
        print(out)
        fail("top --json --count %d printed %d lines" % (count, len(lines)))
    objects = []
    for line in lines:
        try:
            objects.append(json.loads(line))
        except ValueError:
            fail("not one JSON object on a line: %r" % line)
    return objects


def check_fields(view):
    for key in ("time", "view", "interval_ms", "connect", "ring_epoch", "shards", "totals"):
        if key not in view:
            fail("view without %s: %s" % (key, view))
    for field in TOTAL_FIELDS:
        if field not in view["totals"]:
            fail("totals without %s: %s" % (field, view["totals"]))
    for shard in view["shards"]:
        fields = SHARD_FIELDS if shard["up"] else ("name", "address", "up", "state", "error")
        for field in fields:
            if field not in shard:
                fail("shard without %s: %s" % (field, shard))


def check_terminal(rlctl, env, how):
    """top on a pseudo-terminal: two redraws, then q, SIGINT, or (blocked)
    the output suspended and SIGINT twice; the mode restored."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    top = subprocess.Popen([rlctl, "top", "--interval-ms", "200"], stdin=slave, stdout=slave,
                           stderr=subprocess.PIPE, env=env, close_fds=True)
    seen = b""
    deadline = time.time() + 15
    try:
        while seen.count(b"\033[H\033[2J") < 2 and time.time() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 65536)
        if seen.count(b"\033[H\033[2J") < 2 or b"q quits" not in seen:
            fail("top on a terminal: no two redraws within 15 s: %r" % seen[-400:])
        expected = 0
        if how == "q":
            os.write(master, b"q")
        elif how == "SIGINT":
            top.send_signal(signal.SIGINT)
        else:
            os.write(master, b"\x13")  # XOFF: the terminal's output stops
            time.sleep(1.0)  # five intervals: top blocks in its next redraw
            top.send_signal(signal.SIGINT)
            try:
                top.wait(timeout=1.0)
                fail("top on a terminal: the output suspended, the first SIGINT ended it "
                     "(exit %d): the case did not block" % top.returncode)
            except subprocess.TimeoutExpired:
                pass
            top.send_signal(signal.SIGINT)
            expected = 128 + signal.SIGINT
        rc = top.wait(timeout=10)
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
    after = termios.tcgetattr(slave)
    os.close(master)
    os.close(slave)
    if rc != expected:
        fail("top on a terminal: %s gave exit %d: %s" % (how, rc, top.stderr.read()))
    if after[3] != before[3]:
        fail("top on a terminal: the terminal's mode was not restored after %s" % how)


def main():
    build = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rlctl = os.path.join(build, "tools/rlctl")
    cluster_sh = os.path.join(root, "tools/cluster.sh")
    env = dict(os.environ)

    # 1. usage errors, before any cluster exists: exit 2, nothing sent.
    for bad in (["--count", "0"], ["--count", "x"], ["--interval-ms", "99"],
                ["--interval-ms", "3600001"], ["extra"], ["--limit", "3"], ["--count"]):
        r = run([rlctl, "--insecure", "--connect", "tcp://127.0.0.1:1", "top"] + bad, env)
        if r.returncode != 2:
            fail("top %s: exit %d, expected 2 (%s)" % (" ".join(bad), r.returncode, r.stderr))
    ok("bad arguments exit 2")

    tmp = tempfile.mkdtemp(prefix="rl-test_rlctl_top-")
    cluster = os.path.join(tmp, "cluster")
    load = None
    failed = True
    try:
        base = None
        for _ in range(3):
            base = free_base(SHARDS + 1)
            r = run([cluster_sh, "start", "--dir", cluster, "--shards", str(SHARDS),
                     "--base-port", str(base), "--build", build, "--wait-s", "60"], env, 120)
            if r.returncode == 0:
                break
            print(r.stdout, r.stderr)
            run([cluster_sh, "stop", "--dir", cluster], env)
            shutil.rmtree(cluster, ignore_errors=True)
        else:
            fail("cluster.sh start (3 attempts)")
        router = "tcp://127.0.0.1:%d" % base
        keys = os.path.join(cluster, "keys")
        env["RL_CERT"] = os.path.join(keys, "private/admin.key_secret")
        env["RL_SERVER_KEY"] = os.path.join(keys, "router/router.key")
        env["RL_CONNECT"] = router
        ok("cluster: %d shards and a router with CURVE at %s" % (SHARDS, router))

        # 2. under load
        load = subprocess.Popen([os.path.join(build, "bench/rlbench"), "--connect", router,
                                 "--accounts", "200",
                                 "--batch", "20", "--cross-fraction", "0.5", "--warmup", "0",
                                 "--duration", str(LOAD_S), "--quiet"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 30
        while True:  # the load has begun: transfers applied somewhere
            r = run([rlctl, "--json", "status"], env)
            shards = json.loads(r.stdout)["shards"] if r.stdout.startswith("{") else []
            # ... and every shard has lived a full second: the turn p99 is
            # that of the last full second, 0 before one has passed.
            if sum(s.get("transfers", 0) for s in shards) > 0 \
                    and min(s.get("uptime_ms", 0) for s in shards) >= 1500:
                break
            if time.time() > deadline or load.poll() is not None:
                print(load.communicate()[0] if load.poll() is not None else "")
                fail("no transfer applied within 30 s of the load's start")
            time.sleep(0.2)
        r = run([rlctl, "top", "--json", "--count", "3", "--interval-ms", str(INTERVAL_MS)], env)
        if r.returncode != 0:
            fail("top --json --count 3: exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))
        for view in views(r.stdout, 3):
            check_fields(view)
            totals = view["totals"]
            if totals["up"] != SHARDS or totals["down"] != 0:
                fail("view %d: not every shard up: %s" % (view["view"], totals))
            if not totals["transfers_per_s"] or totals["transfers_per_s"] <= 0:
                fail("view %d: no transfers per second under load: %s" % (view["view"], totals))
            for shard in view["shards"]:
                # A second without turns has p99 0; by the last view the load
                # has run for more than a full second on every shard.
                if shard["state"] != "serving" or shard["turn_p99_ms"] < 0 \
                        or (view["view"] == 3 and shard["turn_p99_ms"] <= 0):
                    fail("view %d: %s" % (view["view"], shard))
        ok("top --json --count 3 under load: 3 objects, every field, %s transfers/s at the end"
           % totals["transfers_per_s"])
        r = run([rlctl, "top", "--count", "1", "--interval-ms", str(INTERVAL_MS)], env)
        lines = r.stdout.splitlines()
        if r.returncode != 0 or not any(l.startswith("shard") for l in lines) \
                or not any(l.startswith("total") for l in lines):
            fail("top --count 1 (table): exit %d\n%s" % (r.returncode, r.stdout))
        wide = [l for l in lines if len(l) > 80]
        if wide or "\033" in r.stdout:
            fail("the table is wider than 80 columns, or has escapes off a terminal: %s" % wide)
        ok("top --count 1: a table of %d lines within 80 columns" % len(lines))
        for how in ("q", "SIGINT", "blocked"):
            check_terminal(rlctl, env, how)
        ok("top on a terminal: cleared and redrawn; q and SIGINT quit, a second SIGINT ends "
           "it while its output is suspended; the terminal's mode restored")
        out, _ = load.communicate(timeout=60)
        if load.returncode != 0:
            print(out)
            fail("rlbench exited %d" % load.returncode)
        load = None

        # 4. a shard killed: shown down, the view goes on, exit 1 at the end.
        pid = int(open(os.path.join(cluster, "s2.pid")).read().split()[0])
        os.kill(pid, signal.SIGKILL)
        r = run([rlctl, "top", "--json", "--count", "2", "--interval-ms", str(INTERVAL_MS)], env)
        if r.returncode != 1:
            fail("top with a shard down: exit %d, expected 1 (%s)" % (r.returncode, r.stderr))
        for view in views(r.stdout, 2):
            check_fields(view)
            state = {s["name"]: s["state"] for s in view["shards"]}
            if state != {"s1": "serving", "s2": "down"} or view["totals"]["down"] != 1:
                fail("view %d with s2 killed: %s" % (view["view"], view))
        ok("s2 killed: top shows it down in 2 views, s1 serving, exit 1")
        failed = False
    finally:
        if load:
            load.kill()
            load.wait()
        if os.path.isdir(cluster):
            run([cluster_sh, "stop", "--dir", cluster, "--wait-s", "10"], env)
        if failed or os.environ.get("RL_KEEP_TEST_DIRS") == "1":
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("all passed")


if __name__ == "__main__":
    main()
