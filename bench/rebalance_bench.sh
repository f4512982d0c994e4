#!/usr/bin/env bash
# rebalance_bench.sh: live rebalancing under a saturating load, in one run
# (bench/README.md, "Rebalancing").
#
#   bench/rebalance_bench.sh [options] BUILD_DIR
#   bench/rebalance_bench.sh [options] --ab OLD_BUILD_DIR BUILD_DIR
#
# Each run: a fresh local cluster of 3 shards and a router (tools/cluster.sh,
# CURVE on, WAL synced) and a fourth shard s4 started with the cluster's
# ring (it owns nothing yet); --accounts accounts and --transfers transfers
# of history loaded through the router (rlbench, conservation checked);
# `rebalance plan --add s4`; then
#   before   rlbench, closed loop (window 4, batches of --batch, its own
#            --fg-accounts accounts), for --before seconds, check;
#   during   the same load (fresh accounts) started again; once its
#            warm-up is over, `rebalance apply` grows the ring 3 -> 4; when
#            apply is done, rlbench is stopped (SIGINT) and runs its check,
#            which asks each account of its owner in the new ring.
# Figures per run: the copy rate (accounts installed on the targets and
# bytes copied through the tool, over the time from each step's begin to
# its freeze, summed over the steps), apply's wall time, foreground
# transfers/s and request p99 during against before, and every step's
# write-freeze window: from the source's freeze ("arc frozen" in its log)
# to the target's commit ("handed over": the arc serves again), which is
# what a writer of the arc waits for; beside it the freeze apply prints
# (freeze to the final chunk, the handover not counted), and from the
# shards' logs the source's drain ("the final round begins, N ms after the
# freeze", builds that log it), the final round out, and from there to the
# target's commit. p50, p99 and max over the steps of the run. With --runs N, every run's table, then the
# medians over the runs. The load average is printed with every figure.
# With --ab OLD, each of the --runs rounds runs OLD and BUILD one after the
# other (OLD first in odd rounds, BUILD first in even ones), and the medians
# of each build and their ratios BUILD/OLD follow.
#
# Options:
#   --smoke            the ctest smoke run: 10,000 accounts, 20,000 transfers,
#                      2 s before, batches of 1000 (about 15 s in all)
#   --runs N           whole runs, each on a fresh cluster (1; with --ab: rounds)
#   --ab OLD_BUILD     compare: OLD_BUILD's runs alternate with BUILD_DIR's
#   --accounts N       preloaded accounts (1,000,000)
#   --transfers N      preloaded transfers (5,000,000)
#   --pending PCT      PCT% of the preloaded transfers are pending, each posted
#                      or voided later in the load (rlbench --transfer-pending):
#                      the shards' pending tables hold their states (0); the
#                      header names it
#   --fg-accounts N    accounts of each foreground run (100,000)
#   --batch N          foreground transfers per request (1000)
#   --before S         measured seconds of the before run (20)
#   --freeze-max-ms N  apply's --freeze-max-ms (1000)
#   --entries N        apply's --entries, entries per chunk (apply's default: 1024)
#   --copy-share PCT   apply's --copy-share, the copy's pace before a freeze (100:
#                      apply's default, no pause); the header names it
#   --base-port P      router on P, shards on P+1..P+4 (default: free ports,
#                      within RL_BENCH_PORTS=LO-HI if set, else 20000-60000)
#   --keep DIR         keep every run's cluster, logs and outputs under DIR
#   --out FILE         also write the machine-readable rows (one per run)
#
# Exit: 0 done, 1 a run, a check or apply failed, 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
RUNS=1
ACCOUNTS=1000000
TRANSFERS=5000000
PENDING=0
FG_ACCOUNTS=100000
BATCH=1000
LOAD_BATCH=8190
BEFORE=20
WARMUP=1
FREEZE_MS=1000
ENTRIES=""
COPY_SHARE=100
BASE_PORT=""
KEEP=""
OUT=""
BUILD=""
OLD_BUILD=""
STEP_WAIT_S=3600 # apply's own bound: a run that takes longer has failed

usage () {
    sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

is_number () { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
need_number () {
    is_number "$2" && [ "$2" -ge "$3" ] || { echo "rebalance_bench.sh: $1 '$2': expected an integer >= $3" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) SMOKE=1; shift ;;
    --runs | --accounts | --transfers | --pending | --fg-accounts | --batch | --before | --freeze-max-ms \
        | --entries | --copy-share | --base-port | --keep | --out | --ab)
        [ $# -ge 2 ] || { echo "rebalance_bench.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --runs) need_number "$1" "$2" 1; RUNS=$2 ;;
        --accounts) need_number "$1" "$2" 100; ACCOUNTS=$2 ;;
        --transfers) need_number "$1" "$2" 1; TRANSFERS=$2 ;;
        --pending) need_number "$1" "$2" 0; [ "$2" -le 100 ] || { echo "rebalance_bench.sh: --pending '$2': expected 0..100" >&2; exit 2; }; PENDING=$2 ;;
        --fg-accounts) need_number "$1" "$2" 100; FG_ACCOUNTS=$2 ;;
        --batch) need_number "$1" "$2" 1; BATCH=$2 ;;
        --before) need_number "$1" "$2" 1; BEFORE=$2 ;;
        --freeze-max-ms) need_number "$1" "$2" 1; FREEZE_MS=$2 ;;
        --entries) need_number "$1" "$2" 1; ENTRIES="--entries $2" ;;
        --copy-share) need_number "$1" "$2" 1; [ "$2" -le 100 ] || { echo "rebalance_bench.sh: --copy-share '$2': expected 1..100" >&2; exit 2; }; COPY_SHARE=$2 ;;
        --base-port) need_number "$1" "$2" 1024; BASE_PORT=$2 ;;
        --keep) KEEP=$2 ;;
        --out) OUT=$2 ;;
        --ab) OLD_BUILD=$2 ;;
        esac
        shift 2 ;;
    -h | --help) usage ;;
    -*) echo "rebalance_bench.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$BUILD" ] || usage; BUILD=$1; shift ;;
    esac
done
[ -n "$BUILD" ] || usage
if [ "$SMOKE" = 1 ]; then
    ACCOUNTS=10000; TRANSFERS=20000; FG_ACCOUNTS=2000; LOAD_BATCH=1000
    BATCH=100; BEFORE=2; WARMUP=0.5
fi
BUILD=$(cd "$BUILD" && pwd) || exit 2
NEW_BUILD=$BUILD
if [ -n "$OLD_BUILD" ]; then
    OLD_BUILD=$(cd "$OLD_BUILD" && pwd) || exit 2
fi
for b in "$BUILD" "$OLD_BUILD"; do
    [ -n "$b" ] || continue
    for p in shard/shard router/router bench/rlbench tools/rebalance tools/rlctl; do
        [ -x "$b/$p" ] || { echo "rebalance_bench.sh: no $b/$p (build first)" >&2; exit 2; }
    done
done

if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP"
    WORK=$(cd "$KEEP" && pwd)
else
    WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/rl-rebalance-XXXXXX")
fi
CLUSTER=""
cleanup () {
    # A run cut short: its rlbench and apply are stopped without their end.
    if [ -n "${FG_PID:-}" ]; then kill -KILL "$FG_PID" 2>/dev/null || true; fi
    if [ -n "${APPLY_PID:-}" ]; then kill -KILL "$APPLY_PID" 2>/dev/null || true; fi
    if [ -n "$CLUSTER" ]; then
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    fi
    if [ -z "$KEEP" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# SIGKILL (ctest's answer to a test past its TIMEOUT) runs no trap, and the
# cluster's processes are daemons: a detached watcher stops whatever is left
# under WORK once this script is gone (as bench/table.sh does).
( (while kill -0 $$ 2>/dev/null; do sleep 1; done
   for d in "$WORK"/run-*/cluster; do
       [ -d "$d" ] && "$ROOT/tools/cluster.sh" stop --dir "$d"
   done
   if [ -z "$KEEP" ]; then rm -rf "$WORK"; fi) </dev/null >/dev/null 2>&1 & )

load () { cut -d' ' -f1 /proc/loadavg; }
say () { echo "rebalance_bench.sh: $*" >&2; }

# A base port with the next 4 free too (router on P, shards on P+1..P+4),
# within RL_BENCH_PORTS (LO-HI) when set.
free_port () {
    python3 -c '
import os, random, socket
lo, hi = (int(x) for x in os.environ.get("RL_BENCH_PORTS", "20000-60000").split("-"))
for _ in range(200):
    p = random.randint(lo, hi - 4)
    socks = []
    try:
        for q in range(p, p + 5):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
'
}

# rlbench against the router as the client key; NAME.json and NAME.err in RUN.
rlbench_args () {
    echo --connect "tcp://127.0.0.1:$PORT" --cert "$CLUSTER/keys/private/client.key_secret" \
        --server-key "$CLUSTER/keys/router/router.key" --probe-dir "$RUN" --probe-writes 5
}

# cluster_start: 3 shards and a router, plus s4 owning nothing; sets CLUSTER, PORT.
cluster_start () {
    local attempt
    for attempt in 1 2 3; do
        CLUSTER=$RUN/cluster
        rm -rf "$CLUSTER"
        mkdir -p "$CLUSTER"
        PORT=${BASE_PORT:-$(free_port)}
        # s4's key first: cluster.sh keeps existing keys, and every process
        # then knows s4 as a shard from its start.
        "$BUILD/tools/rlctl" keygen --role shard --name s4 --dir "$CLUSTER/keys" >/dev/null
        if "$ROOT/tools/cluster.sh" start --shards 3 --dir "$CLUSTER" --base-port "$PORT" \
            --build "$BUILD" >"$RUN/cluster.out" 2>&1 && s4_start; then
            return 0
        fi
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
        if [ -n "$BASE_PORT" ]; then break; fi
    done
    say "the cluster did not start:"
    tail -n 5 "$RUN/cluster.out" >&2
    CLUSTER=""
    return 1
}

# s4 with the cluster's ring (which does not name it), its pid file beside
# the others' so that cluster.sh stop stops it too.
s4_start () {
    mkdir -p "$CLUSTER/s4"
    setsid "$BUILD/shard/shard" --name s4 --bind "tcp://127.0.0.1:$((PORT + 4))" \
        --data "$CLUSTER/s4" --ring "$CLUSTER/ring" --keys "$CLUSTER/keys" \
        </dev/null >>"$CLUSTER/s4.log" 2>&1 &
    echo $! >"$CLUSTER/s4.pid"
    local i
    for i in $(seq 1 100); do
        if "$BUILD/tools/rlctl" --cert "$CLUSTER/keys/private/admin.key_secret" \
            --server-key "$CLUSTER/keys/shard/s4.key" --connect "tcp://127.0.0.1:$((PORT + 4))" \
            --timeout-ms 500 status >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$CLUSTER/s4.pid")" 2>/dev/null || { tail -n 5 "$CLUSTER/s4.log" >&2; return 1; }
        sleep 0.1
    done
    return 1
}

# figures NAME: "tps p99" of RUN/NAME.json.
figures () {
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("%.0f %.2f %s" % (j["transfers_per_s"], j["latency_ms"]["p99"], j["check"]))' "$RUN/$1.json"
}

# one_run N BUILD LABEL: a whole run of BUILD; appends one line of key=value
# figures to WORK/rows.
one_run () {
    BUILD=$2
    RUN=$WORK/run-$1-$3
    rm -rf "$RUN"
    mkdir -p "$RUN"
    cluster_start || return 1
    local rb="$BUILD/tools/rebalance" admin="$CLUSTER/keys/private/admin.key_secret"
    local l0 l1 l2 l3 t0 t1
    # The history: ACCOUNTS accounts, TRANSFERS transfers, checked.
    l0=$(load)
    say "run $1: loading $ACCOUNTS accounts and $TRANSFERS transfers (load $l0)"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    if ! "$BUILD/bench/rlbench" $(rlbench_args) --accounts "$ACCOUNTS" --count "$TRANSFERS" \
        --cross-fraction 0 --warmup 0 --batch "$LOAD_BATCH" --window 2 --connections 1 \
        --transfer-pending "$PENDING" --seed "1$1" --quiet --json \
        >"$RUN/load.json" 2>"$RUN/load.err"; then
        say "run $1: the load failed:"; tail -n 5 "$RUN/load.err" >&2; return 1
    fi
    t1=$(date +%s.%N)
    local load_s
    load_s=$(python3 -c "print('%.1f' % ($t1 - $t0))")
    "$rb" plan --ring "$CLUSTER/ring" --add "s4=tcp://127.0.0.1:$((PORT + 4))" \
        --keys "$CLUSTER/keys" --out "$CLUSTER/new.ring" >"$RUN/plan.out" 2>&1 \
        || { say "run $1: plan failed:"; cat "$RUN/plan.out" >&2; return 1; }
    # Before: the foreground load alone.
    l1=$(load)
    say "run $1: before, $BEFORE s (load $l1)"
    # shellcheck disable=SC2046
    if ! "$BUILD/bench/rlbench" $(rlbench_args) --accounts "$FG_ACCOUNTS" --batch "$BATCH" --connections 2 \
        --window 4 --warmup "$WARMUP" --duration "$BEFORE" --seed "2$1" --quiet --json \
        >"$RUN/before.json" 2>"$RUN/before.err"; then
        say "run $1: the before run failed:"; tail -n 5 "$RUN/before.err" >&2; return 1
    fi
    # During: the same load, then apply once its warm-up is over.
    l2=$(load)
    say "run $1: during apply (load $l2)"
    # shellcheck disable=SC2046
    "$BUILD/bench/rlbench" $(rlbench_args) --accounts "$FG_ACCOUNTS" --batch "$BATCH" --connections 2 --window 4 \
        --warmup "$WARMUP" --duration "$STEP_WAIT_S" --seed "3$1" --json \
        >"$RUN/during.json" 2>"$RUN/during.err" &
    FG_PID=$!
    local waited=0
    until grep -q 't=.*in flight$' "$RUN/during.err" 2>/dev/null; do
        if ! kill -0 "$FG_PID" 2>/dev/null || [ "$waited" -gt 1200 ]; then
            say "run $1: the during run did not start:"; tail -n 5 "$RUN/during.err" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$rb" apply "$CLUSTER/ring" "$CLUSTER/new.ring" --state "$RUN/state" --cert "$admin" \
        --freeze-max-ms "$FREEZE_MS" --copy-share "$COPY_SHARE" $ENTRIES \
        >"$RUN/apply.out" 2>"$RUN/apply.err" &
    APPLY_PID=$!
    local apply_rc=0
    wait "$APPLY_PID" || apply_rc=$?
    APPLY_PID=""
    t1=$(date +%s.%N)
    l3=$(load)
    kill -INT "$FG_PID" 2>/dev/null || true
    local fg_rc=0
    wait "$FG_PID" || fg_rc=$?
    FG_PID=""
    if [ "$apply_rc" != 0 ]; then
        say "run $1: apply failed (exit $apply_rc):"; tail -n 5 "$RUN/apply.err" >&2; return 1
    fi
    if [ "$fg_rc" != 0 ]; then
        say "run $1: the during run failed (exit $fg_rc: run or conservation check):"
        grep -v 't=.*in flight' "$RUN/during.err" | tail -n 8 >&2
        return 1
    fi
    "$rb" status --state "$RUN/state" --json >"$RUN/status.json" 2>"$RUN/status.err" \
        || { say "run $1: status failed:"; cat "$RUN/status.err" >&2; return 1; }
    if ! "$rb" check --state "$RUN/state" --cert "$admin" >"$RUN/check.out" 2>&1; then
        say "run $1: rebalance check is not clean:"; cat "$RUN/check.out" >&2; return 1
    fi
    python3 - "$RUN" "$1" "$t0" "$t1" "$load_s" "$l0" "$l1" "$l2" "$l3" "$3" >>"$WORK/rows" <<'PY'
import json, re, sys, glob, datetime, os
run, n, t0, t1, load_s, l0, l1, l2, l3, label = sys.argv[1:]
st = json.load(open(os.path.join(run, "status.json")))
steps = st["steps"]
def ms(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000
# Every migration event of every shard's log, by migration id.
ev = {}
pat = re.compile(r"^(\S+Z) .*migration (\d+): (source of arc|arc frozen|the final round is out"
                 r"|handed over at epoch \d+, (\d+) accounts installed|arc unfrozen"
                 r"|the final round begins, (\d+) ms after the freeze)")
for path in glob.glob(os.path.join(run, "cluster", "s*.log")):
    for line in open(path, errors="replace"):
        m = pat.search(line)
        if not m:
            continue
        e = ev.setdefault(int(m.group(2)), {})
        what, t = m.group(3), ms(m.group(1))
        if what == "source of arc":
            e["begin"] = t
        elif what == "arc frozen":
            e["frozen"] = t  # the last freeze: one that did not drain was undone
        elif what == "arc unfrozen":
            e["unfrozen"] = e.get("unfrozen", 0) + 1
        elif what.startswith("the final round begins"):
            e["drain"] = int(m.group(5))  # the source's own clock (builds that log it)
        elif what.startswith("the final round"):
            e["shipped"] = t
        else:
            e["handed"] = t
            e["installed"] = int(m.group(4))
apply_out = open(os.path.join(run, "apply.out")).read()
tool = [int(x) for x in re.findall(r"frozen (\d+) ms", apply_out)]
# apply's own parts of each freeze (builds that print them): drain seen,
# final chunk in, target's commit answered, ms after the freeze answered.
parts = [tuple(int(v) for v in m) for m in re.findall(
    r"drained (\d+), shipped (\d+), target committed (\d+) ms after the freeze", apply_out)]
freezes, copy_ms, installed, nbytes, records = [], 0.0, 0, 0, 0
drains, outs, hands = [], [], []  # freeze to the final round begun / out, out to handed over
for s in steps:
    mid = int(s["migration_id"], 16) if isinstance(s["migration_id"], str) else s["migration_id"]
    e = ev.get(mid, {})
    if not all(k in e for k in ("begin", "frozen", "handed")):
        sys.exit("step %s: migration %d: events missing from the shards' logs: %s" % (
            s.get("step"), mid, sorted(e)))
    freezes.append(e["handed"] - e["frozen"])
    if "drain" in e:
        drains.append(e["drain"])
    if "shipped" in e:
        outs.append(e["shipped"] - e["frozen"])
        hands.append(e["handed"] - e["shipped"])
    copy_ms += e["frozen"] - e["begin"]
    installed += e["installed"]
    nbytes += s["bytes"]
    records += s["records"]
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))] if v else float("nan")
bj, dj = (json.load(open(os.path.join(run, k + ".json"))) for k in ("before", "during"))
lj = json.load(open(os.path.join(run, "load.json")))
apply_s = float(t1) - float(t0)
def part(i):
    return "%.0f" % pct([p[i] for p in parts], 0.5) if parts else "-"
print(" ".join("%s=%s" % kv for kv in [
    ("run", n), ("build", label), ("steps", len(steps)), ("load_s", load_s),
    ("load_tps", "%.0f" % lj["transfers_per_s"]), ("history", lj["ok_total"]), ("apply_s", "%.1f" % apply_s),
    ("copy_s", "%.2f" % (copy_ms / 1000)), ("installed", installed), ("records", records),
    ("bytes", nbytes),
    ("acc_per_s", "%.0f" % (installed / (copy_ms / 1000))),
    ("mb_per_s", "%.1f" % (nbytes / 1e6 / (copy_ms / 1000))),
    ("before_tps", "%.0f" % bj["transfers_per_s"]), ("before_p99", "%.1f" % bj["latency_ms"]["p99"]),
    ("during_tps", "%.0f" % dj["transfers_per_s"]), ("during_p99", "%.1f" % dj["latency_ms"]["p99"]),
    ("during_max", "%.1f" % dj["latency_ms"]["max"]),
    ("ratio", "%.2f" % (dj["transfers_per_s"] / bj["transfers_per_s"])),
    ("freeze_p50", "%.0f" % pct(freezes, 0.5)), ("freeze_p99", "%.0f" % pct(freezes, 0.99)),
    ("freeze_max", "%.0f" % max(freezes)),
    ("tool_p50", "%.0f" % pct(tool, 0.5)), ("tool_p99", "%.0f" % pct(tool, 0.99)),
    ("tool_max", "%.0f" % (max(tool) if tool else float("nan"))),
    ("retries", sum(int(s.get("retries", 0)) for s in steps)),
    ("drain_p50", "%.0f" % pct(drains, 0.5) if drains else "-"),
    ("drain_max", "%.0f" % max(drains) if drains else "-"),
    ("out_p50", "%.0f" % pct(outs, 0.5) if outs else "-"),
    ("hand_p50", "%.0f" % pct(hands, 0.5) if hands else "-"),
    ("hand_max", "%.0f" % max(hands) if hands else "-"),
    ("part_drained", part(0)), ("part_shipped", part(1)), ("part_committed", part(2)),
    ("checks", "%s/%s/%s" % (lj["check"], bj["check"], dj["check"])),
    ("l_load", l0), ("l_before", l1), ("l_during", l2), ("l_after", l3)]))
PY
    "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    if [ -z "$KEEP" ]; then rm -rf "$CLUSTER"; fi
    CLUSTER=""
}

: >"$WORK/rows"
for r in $(seq 1 "$RUNS"); do
    if [ -z "$OLD_BUILD" ]; then
        one_run "$r" "$NEW_BUILD" new || exit 1
    elif [ $((r % 2)) = 1 ]; then
        one_run "$r" "$OLD_BUILD" old || exit 1
        one_run "$r" "$NEW_BUILD" new || exit 1
    else
        one_run "$r" "$NEW_BUILD" new || exit 1
        one_run "$r" "$OLD_BUILD" old || exit 1
    fi
done
if [ -n "$OUT" ]; then cp "$WORK/rows" "$OUT"; fi
python3 - "$WORK/rows" "$ACCOUNTS" "$TRANSFERS" "$FG_ACCOUNTS" "$BATCH" "$NEW_BUILD" "$OLD_BUILD" "$COPY_SHARE" "$PENDING" <<'PY'
import statistics, sys
path, accounts, transfers, fg, batch, build, old, share, pending = sys.argv[1:]
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(path) if line.strip()]
print("ringledger rebalancing: %s%s; 3 -> 4 shards; %s accounts, %s transfers of history%s; "
      "foreground closed loop, %s accounts, batch %s, window 4, durability sync%s (%d run%s)"
      % (build, " against %s (old)" % old if old else "", format(int(accounts), ","),
         format(int(transfers), ","),
         "" if pending == "0" else " (%s%% pending, each posted or voided)" % pending,
         format(int(fg), ","),
         batch, "" if share == "100" else "; apply --copy-share %s" % share,
         len(rows), "" if len(rows) == 1 else "s"))
print()
cols = [("run", "run")] + ([("build", "build")] if old else []) + [("steps", "steps"), ("apply s", "apply_s"), ("copy s", "copy_s"),
        ("accounts/s", "acc_per_s"), ("MB/s", "mb_per_s"), ("before tps", "before_tps"),
        ("during tps", "during_tps"), ("during/before", "ratio"), ("before p99 ms", "before_p99"),
        ("during p99 ms", "during_p99"), ("freeze p50 ms", "freeze_p50"),
        ("freeze p99 ms", "freeze_p99"), ("freeze max ms", "freeze_max"),
        ("apply's freeze p50/p99/max ms", None),
        ("apply's drained/shipped/committed p50 ms", None),
        ("shards' drain p50/max, final out p50, out to handed over p50/max ms", None),
        ("retries", "retries"),
        ("checks", "checks"),
        ("load average: load/before/during/after", None)]
print("| " + " | ".join(c[0] for c in cols) + " |")
print("|" + " --- |" * len(cols))
for r in rows:
    vals = []
    for title, k in cols:
        if k:
            vals.append(r[k])
        elif title.startswith("apply's freeze"):
            vals.append("%s/%s/%s" % (r["tool_p50"], r["tool_p99"], r["tool_max"]))
        elif title.startswith("apply's drained"):
            vals.append("%s/%s/%s" % (r.get("part_drained", "-"), r.get("part_shipped", "-"),
                                      r.get("part_committed", "-")))
        elif title.startswith("shards' drain"):
            vals.append("%s/%s, %s, %s/%s" % (r.get("drain_p50", "-"), r.get("drain_max", "-"),
                                              r.get("out_p50", "-"), r.get("hand_p50", "-"),
                                              r.get("hand_max", "-")))
        else:
            vals.append("%s/%s/%s/%s" % (r["l_load"], r["l_before"], r["l_during"], r["l_after"]))
    print("| " + " | ".join(vals) + " |")
print()
for r in rows:
    print("run %s%s: history of %s transfers applied, loaded in %s s (%s transfers/s); %s "
          "accounts installed, %s records, %s bytes copied"
          % (r["run"], " (%s)" % r["build"] if old else "", format(int(r["history"]), ","),
             r["load_s"], r["load_tps"], r["installed"], r["records"], r["bytes"]))
keys = ["acc_per_s", "mb_per_s", "before_tps", "during_tps", "ratio", "before_p99", "during_p99",
        "freeze_p50", "freeze_p99", "freeze_max", "records", "apply_s"]
meds = {}
for label in ("old", "new"):
    group = [r for r in rows if r["build"] == label]
    if not group:
        continue
    med = lambda k: statistics.median(float(r[k]) for r in group)
    meds[label] = {k: med(k) for k in keys}
    print()
    print("%smedians over %d run%s: copy %.0f accounts/s, %.1f MB/s; foreground %.0f -> %.0f "
          "transfers/s (during/before %.2f; target >= 0.50: %s), p99 %.1f -> %.1f ms; freeze "
          "p50 %.0f ms, p99 %.0f ms (target <= 100: %s), max %.0f ms"
          % ("%s: " % label if old else "", len(group), "" if len(group) == 1 else "s",
             med("acc_per_s"), med("mb_per_s"), med("before_tps"), med("during_tps"),
             med("ratio"), "met" if med("ratio") >= 0.5 else "NOT met", med("before_p99"),
             med("during_p99"), med("freeze_p50"), med("freeze_p99"),
             "met" if med("freeze_p99") <= 100 else "NOT met", med("freeze_max")))
if "old" in meds and "new" in meds:
    print()
    print("new/old (ratio of the medians): " + ", ".join(
        "%s %.2f" % (k, meds["new"][k] / meds["old"][k]) if meds["old"][k] else "%s -" % k
        for k in keys))
PY
