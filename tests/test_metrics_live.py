#!/usr/bin/env python3
"""test_metrics_live.py BUILD_DIR: the HTTP metrics of a live cluster, checked
with the real Prometheus tools (docs/metrics.md).

Starts a 2-shard cluster and a router (tools/cluster.sh, --metrics-port) on
free ports of 127.0.0.1, puts it under load (rlbench through the router,
cross-shard transfers included) until Prometheus has seen the expected
series, and checks:

  1. every endpoint's /metrics passes `promtool check metrics`; /healthz and
     /readyz answer 200; an unknown path 404, a POST 405;
  2. every metric named in the dashboard (ops/grafana/*.json) and in the
     rules (ops/prometheus/rules.yml, alerts.yml) exists in the live output;
  3. Debian's `prometheus`, with a temporary config and storage directory on
     its own port, scrapes the cluster and evaluates the rules: its HTTP API
     is queried until the expected series appear (bounded wait), and no
     alert fires. The series names it saw are printed;
  4. after the load, each shard's metrics agree with its binary status
     record, read with the Python client package (the test runs in the
     venv where the pyclient_venv fixture installed it);
  5. the change stream's counters (the cluster runs with --events-port):
     notifications sent under the load, and an events_read, a resync and
     a bad position of the test's own counted by the shard that served them;
  6. the payment flows' counters of a shard: three pending transfers (one
     posted, one voided, one left to expire), a chain applied and a chain
     left open, each counted once (a retry answered exists is not), and
     the pending gauge back where it was once the third has expired.

Everything started is stopped at the end. A missing tool fails the test.
"""
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
import urllib.error
import urllib.parse
import urllib.request

import ringledger

SHARDS = 2
WAIT_SERIES_S = 30
LOAD_S = 60  # at most: the load stops once the series are seen


def fail(message):
    print("FAILED  " + message, flush=True)
    sys.exit(1)


def ok(message):
    print("ok      " + message, flush=True)


def free_ports(count):
    """A base port P with P..P+count-1 free on 127.0.0.1."""
    import random
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


def http(method, url, timeout=5):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample_names(text):
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def gauge(text, name):
    """The value of an unlabelled sample, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def metrics_match_status(endpoints, base):
    """Each shard's accounts and ring epoch, in /metrics and in the status
    record (the metrics are a snapshot of the last tick: bounded wait)."""
    for i in range(SHARDS):
        name = "s%d" % (i + 1)
        with ringledger.Client("tcp://127.0.0.1:%d" % (base + 1 + i), timeout_ms=2000,
                               deadline_s=10) as client:
            deadline = time.time() + 10
            while True:
                status = client.status()
                text = http("GET", "http://127.0.0.1:%d/metrics" % endpoints[name])[1]
                got = (gauge(text, "ringledger_shard_accounts"),
                       gauge(text, "ringledger_ring_epoch"))
                if got == (status.accounts, status.epoch) and status.accounts > 0:
                    break
                if time.time() > deadline:
                    fail("%s: metrics say accounts, epoch = %s; its status record %d, %d"
                         % (name, got, status.accounts, status.epoch))
                time.sleep(0.2)
        ok("%s: /metrics agrees with the status record (%d accounts, epoch %d)"
           % (name, status.accounts, status.epoch))


def counter(text, name):
    value = gauge(text, name)
    return 0 if value is None else value


def events_metrics(endpoints, base):
    """Each shard counts the change stream: notifications on --events-bind
    under the load, and the test's own reads, resync and bad position."""
    for i in range(SHARDS):
        name = "s%d" % (i + 1)
        url = "http://127.0.0.1:%d/metrics" % endpoints[name]
        before = http("GET", url)[1]
        with ringledger.Client("tcp://127.0.0.1:%d" % (base + 1 + i), timeout_ms=2000,
                               deadline_s=10) as client:
            events = client.events_read((0, 0, 0), limit=50)
            if not events:
                fail("%s: no events after the load" % name)
            for position, want in (((1 << 62, 1, 0), ringledger.StatusCode.RESYNC),
                                   ((0, 7, 0), ringledger.StatusCode.BAD_POSITION)):
                try:
                    client.events_read(position, limit=1, retry=False)
                    fail("%s: events_read %s answered" % (name, position))
                except ringledger.StatusError as e:
                    if e.status != want:
                        fail("%s: events_read %s: %s, expected %s" % (name, position, e.status,
                                                                     want))
        names = ("reads", "served", "resyncs", "bad_positions")
        want = [counter(before, "ringledger_shard_events_%s_total" % n) + d
                for n, d in zip(names, (1, len(events), 1, 1))]
        deadline = time.time() + 10
        while True:
            text = http("GET", url)[1]
            got = [counter(text, "ringledger_shard_events_%s_total" % n) for n in names]
            notes = counter(text, "ringledger_shard_events_notifications_total")
            if all(g >= w for g, w in zip(got, want)) and notes > 0:
                break
            if time.time() > deadline:
                fail("%s: events counters %s and %d notifications, expected at least %s and 1"
                     % (name, dict(zip(names, got)), notes, dict(zip(names, want))))
            time.sleep(0.2)
        ok("%s: the change stream's counters (%d events served, %d notifications)"
           % (name, got[1], notes))


PAY_LEDGER = 7703
PAY_TAG = 0x9A7 << 64


def pay_metrics(url):
    text = http("GET", url)[1]
    names = ("pending_created", "pending_posted", "pending_voided", "pending_expired",
             "chains_committed", "chains_failed")
    got = {n: counter(text, "ringledger_shard_%s_total" % n) for n in names}
    got["pending"] = counter(text, "ringledger_shard_pending_transfers")
    return got


def payments_metrics(endpoints, base):
    """s1 counts pending transfers, posts, voids, expiries and chains."""
    url = "http://127.0.0.1:%d/metrics" % endpoints["s1"]
    T, F = ringledger.Transfer, ringledger.TransferFlags
    with ringledger.Client("tcp://127.0.0.1:%d" % (base + 1), timeout_ms=2000,
                           deadline_s=10) as client:
        # Accounts of s1: the others are answered wrong_shard by it.
        mine = []
        for n in range(1, 64):
            r = client.create_accounts([ringledger.Account(id=PAY_TAG | n, ledger=PAY_LEDGER,
                                                           code=1)], retry=False)[0]
            if r.ok:
                mine.append(PAY_TAG | n)
            if len(mine) == 2:
                break
        if len(mine) != 2:
            fail("s1: no two accounts of its own among 63")
        a, b = mine
        before = pay_metrics(url)

        def t(n, amount, flags=F(0), pending_id=0, timeout=0):
            return T(id=PAY_TAG | 0x1000 | n, debit_account_id=a, credit_account_id=b,
                     amount=amount, pending_id=pending_id, timeout=timeout, ledger=PAY_LEDGER,
                     code=1, flags=flags)

        pend = [t(1, 10, F.PENDING), t(2, 20, F.PENDING), t(3, 30, F.PENDING, timeout=1)]
        settle = [t(4, 6, F.POST_PENDING_TRANSFER, pending_id=pend[0].id),
                  t(5, 0, F.VOID_PENDING_TRANSFER, pending_id=pend[1].id)]
        chain = [t(6, 1, F.LINKED), t(7, 2)]
        for batch in (pend, settle, chain, pend + settle + chain):  # the last: all exists
            results = client.create_transfers(batch)
            if not all(r.ok for r in results):
                fail("s1 payments: %s" % [r.name for r in results])
        results = client.create_transfers([t(8, 1, F.LINKED)], retry=False)
        if [r.result for r in results] != [ringledger.ResultCode.LINKED_EVENT_CHAIN_OPEN]:
            fail("s1: an open chain answered %s" % [r.name for r in results])
    want = dict(before)
    for n, d in (("pending_created", 3), ("pending_posted", 1), ("pending_voided", 1),
                 ("pending_expired", 1), ("chains_committed", 1), ("chains_failed", 1)):
        want[n] += d
    deadline = time.time() + 15  # the expiry after 1 s, and the next tick's snapshot
    while True:
        got = pay_metrics(url)
        if got == want:
            break
        if time.time() > deadline:
            fail("s1: payment counters %s, expected %s" % (got, want))
        time.sleep(0.2)
    ok("s1: pending, posts, voids, the expiry and chains counted once each (%s)" % got)


def named_metrics(root):
    """Metric names in the dashboard's queries and in the rules' expressions
    (not the jobs' names in quotes, not the recording rules' own names)."""
    names = {}
    pattern = re.compile(r"(?<![\w:\"])ringledger_[a-z0-9_]+")
    for f in ("rules.yml", "alerts.yml"):
        for line in open(os.path.join(root, "ops/prometheus", f)):
            line = line.split("#", 1)[0]
            if "record:" in line or "alert:" in line or "name:" in line:
                continue
            for n in pattern.findall(line):
                names.setdefault(n, f)
    grafana = os.path.join(root, "ops/grafana")
    for f in sorted(os.listdir(grafana)):
        if f.endswith(".json"):
            dash = json.load(open(os.path.join(grafana, f)))
            for panel in dash["panels"]:
                for target in panel.get("targets", []):
                    for n in pattern.findall(target["expr"]):
                        names.setdefault(n, f)
    if len(names) < 10:
        fail("only %d metric names found in the dashboard and the rules" % len(names))
    return names


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this test dies (prctl
    PR_SET_PDEATHSIG), so a killed test leaves no rlbench or prometheus."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def reaper(pid, stop):
    """A detached watcher that stops the cluster once this process is gone.

    ctest ends a test that overruns its TIMEOUT with SIGKILL, which runs no
    finally block, and the cluster's processes are daemons (not children), so
    nothing else would stop them. The watcher is started through a shell that
    exits at once, so it is nobody's child and survives the kill."""
    quoted = " ".join("'%s'" % a.replace("'", "'\\''") for a in stop)
    script = ("(while kill -0 %d 2>/dev/null; do sleep 1; done; %s)"
              " </dev/null >/dev/null 2>&1 &" % (pid, quoted))
    subprocess.run(["/bin/sh", "-c", script], check=True)


def main():
    build = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for tool in ("promtool", "prometheus"):
        if not shutil.which(tool):
            fail("%s is missing: install Debian's prometheus package (./dev.sh does)" % tool)
    tmp = tempfile.mkdtemp(prefix="rl-test_metrics_live-")
    cluster = os.path.join(tmp, "cluster")
    prom = None
    load = None
    started = False
    failed = True
    try:
        for attempt in range(3):
            base = free_ports(SHARDS + 1)
            mbase = free_ports(SHARDS + 2)  # router, shards, prometheus
            ebase = free_ports(SHARDS)  # the shards' change-stream notifications
            r = subprocess.run([os.path.join(root, "tools/cluster.sh"), "start", "--dir", cluster,
                                "--shards", str(SHARDS), "--base-port", str(base), "--build",
                                build, "--insecure", "--metrics-port", str(mbase),
                                "--events-port", str(ebase), "--wait-s", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0:
                started = True
                break
            print(r.stdout)
            subprocess.run([os.path.join(root, "tools/cluster.sh"), "stop", "--dir", cluster],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(cluster, ignore_errors=True)
        if not started:
            fail("cluster.sh start (3 attempts)")
        reaper(os.getpid(), [os.path.join(root, "tools/cluster.sh"), "stop", "--dir", cluster,
                             "--wait-s", "10"])
        # Bad --metrics-bind values: refused before anything opens (exit 2).
        for program in ("router", "shard"):
            for bad in ("localhost:9100", "127.0.0.1:0", "127.0.0.1", ""):
                args = [os.path.join(build, program, program), "--bind", "tcp://127.0.0.1:1",
                        "--ring", os.path.join(cluster, "ring"), "--insecure",
                        "--metrics-bind", bad]
                if program == "shard":
                    args += ["--name", "s1", "--data", os.path.join(tmp, "never")]
                bad_run = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
                if bad_run.returncode != 2 or "--metrics-bind" not in bad_run.stdout:
                    print(bad_run.stdout)
                    fail("%s --metrics-bind '%s': exit %d, expected 2"
                         % (program, bad, bad_run.returncode))
        ok("router and shard: bad --metrics-bind values refused (exit 2)")
        if "metrics http://127.0.0.1:%d/metrics" % mbase not in r.stdout:
            print(r.stdout)
            fail("cluster.sh start does not print where the metrics are")
        ok("cluster: %d shards and a router, metrics on 127.0.0.1:%d.." % (SHARDS, mbase))
        listed = open(os.path.join(cluster, "events")).read().split()
        if (listed != ["s%d=tcp://127.0.0.1:%d" % (i + 1, ebase + i) for i in range(SHARDS)]
                or "events tcp://127.0.0.1:%d" % ebase not in r.stdout):
            print(r.stdout)
            fail("cluster.sh --events-port: %s lists %s" % (os.path.join(cluster, "events"), listed))
        ok("cluster.sh --events-port: every shard's notifications listed in DIR/events")
        endpoints = {"router": mbase}
        for i in range(SHARDS):
            endpoints["s%d" % (i + 1)] = mbase + 1 + i
        prom_port = mbase + SHARDS + 1

        # Load through the router, in the background while Prometheus starts.
        load = subprocess.Popen([os.path.join(build, "bench/rlbench"), "--connect",
                                 "tcp://127.0.0.1:%d" % base, "--insecure", "--accounts", "200",
                                 "--batch", "20", "--cross-fraction", "0.5", "--warmup", "0",
                                 "--duration", str(LOAD_S), "--quiet"],
                                preexec_fn=die_with_parent, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

        # 3. Prometheus with the rules, scraping every second.
        rules = open(os.path.join(root, "ops/prometheus/rules.yml")).read()
        rules = re.sub(r"\n\s+interval: \S+", "", rules)  # evaluated every second here
        open(os.path.join(tmp, "rules.yml"), "w").write(rules)
        shutil.copy(os.path.join(root, "ops/prometheus/alerts.yml"), tmp)
        targets = lambda names: ", ".join('"127.0.0.1:%d"' % endpoints[n] for n in names)
        config = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml, alerts.yml]
scrape_configs:
  - job_name: ringledger_router
    static_configs: [{targets: [%s]}]
  - job_name: ringledger_shard
    static_configs: [{targets: [%s]}]
""" % (targets(["router"]), targets(["s%d" % (i + 1) for i in range(SHARDS)]))
        open(os.path.join(tmp, "prometheus.yml"), "w").write(config)
        r = subprocess.run(["promtool", "check", "config", os.path.join(tmp, "prometheus.yml")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            fail("promtool check config")
        prom_log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % prom_port,
                                 "--log.level=warn"], stdout=prom_log, stderr=subprocess.STDOUT,
                                cwd=tmp, preexec_fn=die_with_parent)
        api = "http://127.0.0.1:%d/api/v1/" % prom_port

        def query(expr):
            try:
                code, body = http("GET", api + "query?" + urllib.parse.urlencode({"query": expr}))
            except (urllib.error.URLError, OSError):
                return None
            if code != 200:
                return None
            return json.loads(body)["data"]["result"]

        # 1. the endpoints, while the load runs
        time.sleep(1)
        for name, port in endpoints.items():
            url = "http://127.0.0.1:%d" % port
            code, text = http("GET", url + "/metrics")
            if code != 200:
                fail("%s /metrics: %d" % (name, code))
            r = subprocess.run(["promtool", "check", "metrics"], input=text,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0 or r.stdout.strip():
                print(r.stdout)
                fail("%s: promtool check metrics" % name)
            for path, want in (("/healthz", 200), ("/readyz", 200), ("/nothing", 404)):
                code, _ = http("GET", url + path)
                if code != want:
                    fail("%s GET %s: %d, expected %d" % (name, path, code, want))
            code, _ = http("POST", url + "/metrics")
            if code != 405:
                fail("%s POST /metrics: %d, expected 405" % (name, code))
            ok("%s: promtool check metrics (%d lines), /healthz, /readyz, 404, 405"
               % (name, len(text.splitlines())))

        # The series that must appear in Prometheus.
        expected = {
            "every target up": ('count(up{job=~"ringledger_.*"} == 1)', SHARDS + 1),
            "transfers created on every shard":
                ("count(ringledger_shard_transfers_created_total > 0)", SHARDS),
            "creates answered ok by the router":
                ('count(ringledger_router_requests_total{operation="create_transfers",'
                 'status="ok"} > 0)', 1),
            "router latency histogram":
                ('count(ringledger_router_request_duration_seconds_count{operation='
                 '"create_transfers"} > 0)', 1),
            "group commits and syncs observed":
                ("count(ringledger_shard_sync_duration_seconds_count > 0)", SHARDS),
            "cross-shard two-phase (prepare replies)":
                ('count(ringledger_shard_requests_total{operation="prepare"} > 0)', 1),
            "recording rule: transfers per second by shard":
                ("count(instance:ringledger_shard_transfers_created:rate1m > 0)", SHARDS),
            "recording rule: router p99 latency":
                ("count(job:ringledger_router_request_duration_seconds:p99_1m)", 1),
            "RocksDB properties":
                ("count(ringledger_store_memtable_bytes > 0)", SHARDS),
        }
        deadline = time.time() + WAIT_SERIES_S
        pending = dict(expected)
        while pending and time.time() < deadline:
            for what, (expr, want) in list(pending.items()):
                result = query(expr)
                if result and float(result[0]["value"][1]) >= want:
                    ok("prometheus: %s (%s)" % (what, expr))
                    del pending[what]
            if pending:
                time.sleep(0.5)
        # The load ran until now, so that a rate had two scrapes to see; it
        # stops on SIGINT and still runs its conservation check.
        load.send_signal(signal.SIGINT)
        if pending:
            for what, (expr, want) in pending.items():
                print("missing: %s: %s -> %s" % (what, expr, query(expr)))
            prom_log.flush()
            print(open(os.path.join(tmp, "prometheus.log")).read()[-3000:])
            fail("prometheus: expected series did not appear within %d s" % WAIT_SERIES_S)
        firing = query('ALERTS{alertstate="firing"}') or []
        if firing:
            fail("alerts firing on a healthy cluster: %s" % [a["metric"] for a in firing])
        ok("prometheus: no alert fires on the healthy cluster")
        code, body = http("GET", api + "label/__name__/values")
        seen = sorted(n for n in json.loads(body)["data"]
                      if n.startswith("ringledger") or n.startswith(("instance:", "job:")))
        print("prometheus saw %d ringledger series names: %s" % (len(seen), " ".join(seen)))

        # 2. the dashboard's and the rules' metrics exist in the live output
        live = set()
        for name, port in endpoints.items():
            live |= sample_names(http("GET", "http://127.0.0.1:%d/metrics" % port)[1])
        named = named_metrics(root)
        # Registered only on a primary with --standby (this cluster has
        # none): test_replication_fence reads them live on a stalled one.
        only_replicated = {"ringledger_shard_repl_stalled"}
        missing = sorted("%s (%s)" % (n, where) for n, where in named.items()
                         if n not in live and n not in only_replicated)
        if missing:
            fail("named in the dashboard or the rules but not in any live /metrics: %s"
                 % ", ".join(missing))
        ok("every one of %d metrics named by the dashboard and the rules is live" % len(named))
        out, _ = load.communicate(timeout=60)
        if load.returncode != 0:
            print(out)
            fail("rlbench exited %d" % load.returncode)
        load = None
        metrics_match_status(endpoints, base)
        events_metrics(endpoints, base)
        payments_metrics(endpoints, base)
        failed = False
    finally:
        if load:
            load.kill()
            load.wait()
        if prom:
            prom.terminate()
            try:
                prom.wait(timeout=15)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        if started or os.path.isdir(cluster):
            subprocess.run([os.path.join(root, "tools/cluster.sh"), "stop", "--dir", cluster,
                            "--wait-s", "10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if failed or os.environ.get("RL_KEEP_TEST_DIRS") == "1":
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("all passed")


if __name__ == "__main__":
    main()
