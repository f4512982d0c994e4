#!/usr/bin/env bash
# table.sh: ringledger's performance table in one run (bench/README.md,
# "The table").
#
#   bench/table.sh [options] BUILD_DIR
#   bench/table.sh [options] --ab OLD_BUILD_DIR NEW_BUILD_DIR [--rounds N]
#
# Rows, each on a fresh local cluster (tools/cluster.sh, CURVE on, WAL
# synced), closed loop, 10,000 accounts, batches of 8190, window 4:
#   one       one shard, the client connected to it directly
#   uniform   4 shards + router, uniform pairs (about 75% cross-shard)
#   cross     4 shards + router, every pair on two shards
#   same      4 shards + router, every pair on one shard
# and the open-loop lines (Poisson arrivals, batches of 100, latency from
# each request's scheduled send time, with the same run's fsync p99):
#   open1     one shard at --rate (50,000/s) for --open-seconds (20 s: at
#             the default checkpoint interval that crosses 3 checkpoints)
#   open4     4 shards + router, uniform, at --cluster-rate (25,000/s)
# Figures: transfers/s (ok results only), request p99, and CPU µs per
# applied transfer: client plus every server process (utime + stime from
# /proc), over the whole run (warm-up and check included) divided by every
# transfer the run applied. rlbench's conservation check runs after each
# row; a failed check fails the script.
#
# Options:
#   --quick            smoke run: rows one, uniform, same and open1 for about
#                      a second each, batches of 1000, small rates, one cluster
#   --rows LIST        rows to run, comma separated (default: all of them)
#   --seconds S        measured seconds per closed-loop row (10)
#   --batch N          transfers per request in closed-loop rows (8190)
#   --rate R --open-seconds S --cluster-rate R
#   --ab OLD NEW       alternate the two builds for --rounds N (2) rounds,
#                      print every round's table, then medians and NEW/OLD
#   --out FILE         also write the machine-readable rows (one per line)
#
# RL_BENCH_PORTS=LO-HI: the ports the clusters may take (20000-60000).
# The machine is shared and noisy: every table prints the load average
# before and after. Exit: 0 done, 1 a run or a check failed, 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
ROWS=""
SECS=10
WARMUP=1
BATCH=8190
WINDOW=4
ACCOUNTS=10000
RATE=50000
OPEN_SECS=20
CLUSTER_RATE=25000
OPEN_BATCH=100
PROBES=50
ROUNDS=2
AB=0
OUT=""
BUILDS=()

usage () {
    sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1; shift ;;
    --rows) ROWS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --open-seconds) OPEN_SECS=$2; shift 2 ;;
    --cluster-rate) CLUSTER_RATE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --ab) AB=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "table.sh: unknown option $1" >&2; usage ;;
    *) BUILDS+=("$1"); shift ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    SECS=0.5; WARMUP=0.2; BATCH=1000; RATE=5000; OPEN_SECS=1; CLUSTER_RATE=2000; PROBES=5
    ROWS=${ROWS:-one,uniform,same,open1}
fi
ROWS=${ROWS:-one,uniform,cross,same,open1,open4}
if [ "$AB" = 1 ] && [ ${#BUILDS[@]} != 2 ]; then usage; fi
if [ "$AB" = 0 ] && [ ${#BUILDS[@]} != 1 ]; then usage; fi
for i in "${!BUILDS[@]}"; do
    BUILDS[$i]=$(cd "${BUILDS[$i]}" && pwd) || exit 2
    for p in shard/shard router/router bench/rlbench; do
        [ -x "${BUILDS[$i]}/$p" ] || { echo "table.sh: no ${BUILDS[$i]}/$p" >&2; exit 2; }
    done
done

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/rl-table-XXXXXX")
CLUSTER=""
cleanup () {
    if [ -n "$CLUSTER" ]; then
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# SIGKILL (ctest's answer to a test past its TIMEOUT) runs no trap, and the
# clusters' processes are daemons: a detached watcher stops whatever is left
# under WORK once this script is gone. The outer subshell exits at once, so
# the watcher is nobody's child and outlives a kill of this script's tree.
( (while kill -0 $$ 2>/dev/null; do sleep 1; done
   for d in "$WORK"/cluster-*; do
       [ -d "$d" ] && "$ROOT/tools/cluster.sh" stop --dir "$d"
   done
   rm -rf "$WORK") </dev/null >/dev/null 2>&1 & )
HZ=$(getconf CLK_TCK)

has_row () { case ",$ROWS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
load () { cut -d' ' -f1 /proc/loadavg; }

# A base port with the next 4 free too (router on P, shards on P+1..P+4).
free_port () {
    python3 -c '
import os, random, socket
for _ in range(200):
    lo, hi = (int(x) for x in os.environ.get("RL_BENCH_PORTS", "20000-60000").split("-"))
    p = random.randint(lo, hi - 5)
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

# cluster_start BUILD SHARDS: a fresh cluster; sets CLUSTER and PORT.
# A port found free may be taken by another program before the shards bind
# it, so a failed start is stopped and tried again on other ports.
cluster_start () {
    local attempt
    for attempt in 1 2 3; do
        CLUSTER=$WORK/cluster-$RANDOM$attempt
        PORT=$(free_port)
        if RL_LOG_LEVEL=warn "$ROOT/tools/cluster.sh" start --shards "$2" --dir "$CLUSTER" \
            --base-port "$PORT" --build "$1" >"$WORK/cluster.out" 2>&1; then
            return 0
        fi
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
        rm -rf "$CLUSTER"
    done
    CLUSTER=""
    echo "table.sh: the cluster did not start (3 attempts):" >&2
    tail -n 5 "$WORK/cluster.out" >&2
    return 1
}
cluster_stop () {
    "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$CLUSTER"
    CLUSTER=""
}
# A smoke run lets a cluster stop while the next one runs (a shard takes a
# second or more to close); the table waits for it before it prints.
cluster_stop_quick () {
    if [ "$QUICK" = 0 ]; then cluster_stop; return; fi
    local dir=$CLUSTER
    ( "$ROOT/tools/cluster.sh" stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir" ) &
    STOPPING="$STOPPING $!"
    CLUSTER=""
}
STOPPING=""
# CPU ticks of every process of the cluster (router and shards).
server_ticks () {
    local total=0 f pid
    for f in "$CLUSTER"/*.pid; do
        pid=$(cat "$f")
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
# CPU ticks of the waited-for children of this shell (cutime + cstime).
child_ticks () { awk '{print $16 + $17}' "/proc/$$/stat"; }

# run_rlbench NAME ENDPOINT SERVER_KEY rlbench-options...: one run against
# the cluster; appends "NAME key=value..." to $WORK/rows.
run_rlbench () {
    local name=$1 ep=$2 key=$3 build=$4; shift 4
    local s0 c0 s1 c1 json
    s0=$(server_ticks); c0=$(child_ticks)
    if ! RL_CERT=$CLUSTER/keys/private/client.key_secret RL_SERVER_KEY=$key \
        "$build/bench/rlbench" --connect "$ep" --accounts "$ACCOUNTS" --warmup "$WARMUP" \
        --probe-dir "$WORK" --probe-writes "$PROBES" --quiet --json --seed "$RANDOM$RANDOM" "$@" \
        >"$WORK/$name.json" 2>"$WORK/$name.err"; then
        echo "table.sh: $name: rlbench failed (run or conservation check):" >&2
        tail -n 5 "$WORK/$name.err" >&2
        return 1
    fi
    s1=$(server_ticks); c1=$(child_ticks)
    python3 - "$name" "$WORK/$name.json" $((s1 - s0 + c1 - c0)) "$HZ" >>"$WORK/rows" <<'PY'
import json, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
j = json.load(open(path))
ok = j["ok_total"]
cpu_us = ticks / hz * 1e6 / ok if ok else float("nan")
lat = j["latency_ms"]
print(name, "tps=%.0f" % j["transfers_per_s"], "p50=%.2f" % lat["p50"], "p99=%.2f" % lat["p99"],
      "max=%.2f" % lat["max"], "cpu_us=%.2f" % cpu_us,
      "cross=%s" % ("-" if j["cross_fraction"] is None else "%.2f" % j["cross_fraction"]),
      "sent=%.0f" % j.get("sent_per_s", 0), "fsync_p99=%.2f" % j["fsync_p99_ms"],
      "valid=%d" % j["valid"], "check=%s" % j["check"], "durability=%s" % j["durability"])
PY
}

# table BUILD: every chosen row on BUILD; prints the table, rows in $WORK/rows.
table () {
    local build=$1 load0
    : >"$WORK/rows"
    load0=$(load)
    local closed=(--mode closed --batch "$BATCH" --window "$WINDOW" --duration "$SECS")
    if has_row one || has_row open1; then
        cluster_start "$build" 1
        local shard_ep=tcp://127.0.0.1:$((PORT + 1)) shard_key=$CLUSTER/keys/shard/s1.key
        if has_row one; then run_rlbench one "$shard_ep" "$shard_key" "$build" "${closed[@]}"; fi
        if has_row open1; then
            run_rlbench open1 "$shard_ep" "$shard_key" "$build" --mode open --rate "$RATE" \
                --batch "$OPEN_BATCH" --duration "$OPEN_SECS"
        fi
        cluster_stop_quick
    fi
    #  A fresh cluster per row; a smoke run shares one (each rlbench run
    #  has accounts and ids of its own).
    local row
    for row in uniform cross same open4; do
        has_row "$row" || continue
        if [ -z "$CLUSTER" ]; then cluster_start "$build" 4; fi
        local ep=tcp://127.0.0.1:$PORT key=$CLUSTER/keys/router/router.key
        case $row in
        uniform) run_rlbench uniform "$ep" "$key" "$build" "${closed[@]}" ;;
        cross) run_rlbench cross "$ep" "$key" "$build" "${closed[@]}" --cross-fraction 1 ;;
        same) run_rlbench same "$ep" "$key" "$build" "${closed[@]}" --cross-fraction 0 ;;
        open4) run_rlbench open4 "$ep" "$key" "$build" --mode open --rate "$CLUSTER_RATE" \
            --batch "$OPEN_BATCH" --duration "$OPEN_SECS" ;;
        esac
        if [ "$QUICK" = 0 ]; then cluster_stop; fi
    done
    if [ -n "$CLUSTER" ]; then cluster_stop; fi
    local p
    for p in $STOPPING; do wait "$p" || true; done
    STOPPING=""
    python3 - "$WORK/rows" "$build" "$load0" "$(load)" "$ACCOUNTS" "$BATCH" "$WINDOW" "$SECS" \
        "$RATE" "$CLUSTER_RATE" "$OPEN_BATCH" "$OPEN_SECS" <<'PY'
import sys
path, build, l0, l1, accounts, batch, window, secs, rate, crate, obatch, osecs = sys.argv[1:]
rows = {}
for line in open(path):
    f = line.split()
    rows[f[0]] = dict(kv.split("=", 1) for kv in f[1:])
dur = sorted({r["durability"] for r in rows.values()})
print("ringledger table: %s; %s accounts, batch %s, window %s, %s s per row, durability %s;"
      " load average %s -> %s (%s cores)" % (build, accounts, batch, window, secs, ",".join(dur),
                                            l0, l1, __import__("os").cpu_count()))
print()
print("| system | transfers/s | batch p99 ms | CPU µs per transfer | cross-shard | check |")
print("| --- | --- | --- | --- | --- | --- |")
names = {"one": "ringledger, one shard",
         "uniform": "ringledger, 4 shards + router, uniform",
         "cross": "ringledger, 4 shards + router, all cross-shard",
         "same": "ringledger, 4 shards + router, same-shard pairs"}
for k in ("one", "uniform", "cross", "same"):
    if k in rows:
        r = rows[k]
        print("| %s | %s | %s | %s | %s | %s |" % (names[k], format(int(r["tps"]), ","), r["p99"],
                                                    r["cpu_us"], r["cross"], r["check"]))
if "cross" in rows and "same" in rows:
    print()
    print("CPU per transfer, all cross-shard / same-shard: %.2fx"
          % (float(rows["cross"]["cpu_us"]) / float(rows["same"]["cpu_us"])))
for k, what, r_ in (("open1", "one shard", rate), ("open4", "4 shards + router, uniform", crate)):
    if k in rows:
        r = rows[k]
        print("open loop, %s: offered %s/s in batches of %s for %s s, sent %s/s: p50 %s ms,"
              " p99 %s ms, max %s ms (from the scheduled send time); fsync p99 %s ms; %s; check %s"
              % (what, r_, obatch, osecs, r["sent"], r["p50"], r["p99"], r["max"],
                 r["fsync_p99"], "valid" if r["valid"] == "1" else "INVALID", r["check"]))
PY
}

if [ "$AB" = 0 ]; then
    table "${BUILDS[0]}"
    if [ -n "$OUT" ]; then cp "$WORK/rows" "$OUT"; fi
    exit 0
fi

# A/B: OLD then NEW, ROUNDS times; every row tagged with its build and round.
: >"$WORK/ab"
for r in $(seq 1 "$ROUNDS"); do
    for side in old new; do
        b=${BUILDS[0]}
        if [ "$side" = new ]; then b=${BUILDS[1]}; fi
        echo "== round $r, $side"
        table "$b"
        echo
        sed "s/^/$side $r /" "$WORK/rows" >>"$WORK/ab"
    done
done
if [ -n "$OUT" ]; then cp "$WORK/ab" "$OUT"; fi
python3 - "$WORK/ab" "$ROUNDS" <<'PY'
import statistics, sys
path, rounds = sys.argv[1], sys.argv[2]
vals = {}
for line in open(path):
    f = line.split()
    side, row = f[0], f[2]
    for kv in f[3:]:
        k, v = kv.split("=", 1)
        try:
            vals.setdefault((row, k), {}).setdefault(side, []).append(float(v))
        except ValueError:
            pass
print("A/B: medians of %s rounds, old and new alternating; new/old" % rounds)
print()
print("| row | figure | old | new | new/old | old runs | new runs |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for row in ("one", "uniform", "cross", "same", "open1", "open4"):
    figs = ("tps", "p99", "cpu_us") if row in ("one", "uniform", "cross", "same") \
        else ("sent", "p50", "p99", "max", "fsync_p99")
    for k in figs:
        v = vals.get((row, k))
        if not v or "old" not in v or "new" not in v:
            continue
        o, n = statistics.median(v["old"]), statistics.median(v["new"])
        print("| %s | %s | %.2f | %.2f | %s | %s | %s |" % (
            row, k, o, n, "%.2f" % (n / o) if o else "n/a",
            " ".join("%g" % x for x in v["old"]), " ".join("%g" % x for x in v["new"])))
for side in ("old", "new"):
    c, s = vals.get(("cross", "cpu_us"), {}).get(side), vals.get(("same", "cpu_us"), {}).get(side)
    if c and s:
        print("%s: CPU per transfer all cross-shard / same-shard: %.2fx"
              % (side, statistics.median(c) / statistics.median(s)))
PY
