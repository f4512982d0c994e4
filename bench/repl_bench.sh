#!/usr/bin/env bash
# repl_bench.sh [--smoke] [--accounts N] [--failover-only|--throughput-only] BUILD_DIR [ROUNDS] [SECONDS]:
# replication's figures,
# each against no replication in the same run (docs/replication.md,
# bench/README.md "Replication"). One shard s1, --insecure on 127.0.0.1,
# --durability sync; the standby (--standby-of, its own data directory) on
# the same machine, so it repeats the primary's writes on the same cores.
# Rounds alternate: alone, replicated, alone, ...
#
#  1. throughput: rlbench at batch 8190, window 4, 10,000 accounts, SECONDS
#     a round; transfers/s, and CPU per transfer of the primary and of the
#     standby (utime + stime of the whole process from /proc/PID/stat,
#     every thread, over the whole rlbench run: its accounts, warm-up and
#     measured part, per transfer the primary applied over the same span,
#     read from its status) -- semi-synchronous. Each side of each round
#     starts on data directories of its own, empty: a replicated side that
#     opened the database the alone side had just filled (2-4 million
#     transfers) paid for that larger database and for seeding its standby
#     with it, not for replication.
#  2. batch 1: rlbench at batch 1, one connection, window 1 (one request
#     at a time): p50 and p99 of the request latency -- semi-synchronous.
#  3. catch-up (replicated rounds only): an ASYNC primary (so that it goes
#     on while its standby is gone) with its standby SIGSTOPped during
#     SECONDS of load at batch 8190, then SIGCONTed: events applied per
#     second until the standby's position stops moving, and MB/s by the
#     primary's WAL bytes written over the same span (the WriteBatches the
#     events carry; ingests of index SSTs not counted); against the rate at
#     which the primary made those events.
#  4. fail-over: after a load of SECONDS at batch 8190, the primary is
#     SIGKILLed; replicated: `rlctl promote` of its standby, alone: the
#     primary restarted on its data directory; then the time until the
#     first `rlctl transfer` acknowledged by the shard (rlctl runs: each
#     start of rlctl, a few ms, is in the figure). Promoted at once, the
#     standby waits out the old primary's lease (--repl-timeout-ms, 1000
#     ms, plus 1/16 and 20 ms, from its last answer): so a second
#     replicated figure, "late", promotes once the primary has been dead
#     for 1.2 s (monitoring noticed it) and measures from the promote.
#     Each replicated round also gives the CPU the promoted process spent
#     from the promote to that first write (utime + stime, 10 ms ticks:
#     its recovery, mostly) and, from its log (info level), the time from
#     the promote's answer until it had opened as the primary
#     ("promote: the primary opened in N ms"). The alone round gives the
#     restarted process's CPU until its first write.
#  5. backup: `rlctl backup DIR --name s1` of the primary after round 1's
#     load: bytes over the backup engine's copy time.
# Prints one line per round and figure, then the medians of each side and
# their ratios. Exit 0 done, 1 a run failed, 2 usage.
#
#   --smoke   a short run (1 round of 1 s at batch 1000 instead of 8190,
#             500 accounts, batch 1 for 0.5 s, no load before the
#             fail-over): checks that every figure comes out (ctest
#             bench_repl_smoke)
#   --accounts N      rlbench's accounts (10,000; 500 with --smoke): the
#             shard holds N accounts, which a recovery reads
#   --failover-only   the fail-over rounds (4) alone: the promotion's figures
#             at a size, without the throughput, batch 1, catch-up and backup
#   --throughput-only the throughput rounds (1, 2, 5) alone: the standby's
#             CPU per transfer at a size, without the catch-up and fail-over
set -euo pipefail
smoke=0
accounts_opt=""
failover_only=0
throughput_only=0
usage="usage: repl_bench.sh [--smoke] [--accounts N] [--failover-only|--throughput-only] BUILD_DIR [ROUNDS] [SECONDS]"
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) smoke=1; shift ;;
    --accounts) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; accounts_opt=$2; shift 2 ;;
    --failover-only) failover_only=1; shift ;;
    --throughput-only) throughput_only=1; shift ;;
    --*) echo "repl_bench: unknown option $1" >&2; echo "$usage" >&2; exit 2 ;;
    *) break ;;
    esac
done
build=${1:?$usage}
if [ $failover_only = 1 ] && [ $throughput_only = 1 ]; then echo "$usage" >&2; exit 2; fi
rounds=${2:-3}
seconds=${3:-10}
accounts=10000
warmup=1
lat_seconds=$seconds
batch=8190
if [ $smoke = 1 ]; then rounds=1; seconds=1; accounts=500; warmup=0.2; lat_seconds=0.5; batch=1000; fi
if [ -n "$accounts_opt" ]; then
    case "$accounts_opt" in ''|*[!0-9]*) echo "repl_bench: --accounts takes a whole number" >&2; exit 2 ;; esac
    [ "$accounts_opt" -ge 2 ] || { echo "repl_bench: --accounts is at least 2" >&2; exit 2; }
    accounts=$accounts_opt
fi
case "$rounds$seconds" in *[!0-9]*) echo "repl_bench: ROUNDS and SECONDS are whole numbers" >&2; exit 2 ;; esac
if [ "$rounds" -lt 1 ] || [ "$seconds" -lt 1 ]; then echo "repl_bench: ROUNDS and SECONDS are at least 1" >&2; exit 2; fi
shard=$build/shard/shard
rlbench=$build/bench/rlbench
rlctl=$build/tools/rlctl
for p in "$shard" "$rlbench" "$rlctl"; do
    [ -x "$p" ] || { echo "repl_bench: no $p (build first)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/rl-repl-bench.XXXXXX")
pids=""
cleanup () {
    for p in $pids; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say () { echo "repl_bench: $*" >&2; }
port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks () { awk '{print $14 + $15}' "/proc/$1/stat"; }
now () { date +%s.%N; }
ctl () { "$rlctl" --insecure --connect "$@"; }
# Waits until ENDPOINT answers a ring read (the primary serves: a replicated
# one only once its standby streams).
wait_ready () {
    local k=0
    until ctl "$1" --timeout-ms 300 ring >/dev/null 2>&1; do
        k=$((k + 1)); [ $k -lt 200 ] || { say "$1 never served"; exit 1; }
        sleep 0.1
    done
}
# The standby's position in its primary's stream (its status' commits).
position () { { ctl "$1" --json --timeout-ms 2000 status 2>/dev/null || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["shards"][0]["commits"])'; }
# A field of a shard's status record.
status_field () { { ctl "$1" --json --timeout-ms 5000 status 2>/dev/null || true; } | python3 -c 'import json,sys; print(json.load(sys.stdin)["shards"][0][sys.argv[1]])' "$2"; }
# Starts s1 (MODE: alone, semi or async) into $work/NAME; sets P (primary
# endpoint), S (standby endpoint), primary_pid and standby_pid.
# A fail-over round's standby logs at info level into $work/NAME-standby.log
# (STANDBY_LOG=1), where the promotion's "opened in" line is read.
start_pair () {
    local mode=$1 name=$2 args="" slog=$work/log slevel=warn
    if [ "${STANDBY_LOG:-0}" = 1 ]; then slog=$work/$name-standby.log; slevel=info; fi
    P=tcp://127.0.0.1:$(port); S=tcp://127.0.0.1:$(port)
    pair_dirs="$work/$name $work/$name-standby"
    standby_pid=""
    if [ "$mode" != alone ]; then
        "$shard" --name s1 --bind "$S" --data "$work/$name-standby" --insecure \
            --standby-of "$P" --log-level "$slevel" 2>>"$slog" &
        standby_pid=$!; pids="$pids $standby_pid"
        args="--standby $S --repl-mode $mode"
    fi
    # shellcheck disable=SC2086
    "$shard" --name s1 --bind "$P" --data "$work/$name" --insecure $args \
        --log-level warn 2>>"$work/log" &
    primary_pid=$!; pids="$pids $primary_pid"
    wait_ready "$P"
}
stop_pair () {
    kill "$primary_pid" 2>/dev/null || true; wait "$primary_pid" 2>/dev/null || true
    if [ -n "$standby_pid" ]; then
        kill -CONT "$standby_pid" 2>/dev/null || true
        kill "$standby_pid" 2>/dev/null || true; wait "$standby_pid" 2>/dev/null || true
    fi
    # A round's gigabytes deleted with it: left behind, they made each later
    # round slower than the one before (the page cache's writeback of them
    # competing with the round's own syncs), the replicated side more.
    # shellcheck disable=SC2086
    rm -rf $pair_dirs
}
# rlbench at $P: BATCH SECONDS OUT [extra...]. Each run has a seed of its
# own, so its own accounts (created first, before its warm-up) and its own
# transfer ids: a run that reused an earlier run's seed would send the same
# ids again, answered `exists` without a write (nothing to replicate).
seed=100
load () {
    local b=$1 d=$2 out=$3 allowed='{"ok"}'; shift 3
    # --fill: the load only fills the shard (before a fail-over): a
    # semi-synchronous primary stalled by a loaded machine may answer busy.
    if [ "${1:-}" = --fill ]; then allowed='{"ok", "status:busy"}'; shift; fi
    seed=$((seed + 1))
    "$rlbench" --connect "$P" --insecure --batch "$b" --window 4 --accounts "$accounts" \
        --warmup "$warmup" --duration "$d" --seed "$seed" --json --quiet --no-check "$@" \
        > "$out" 2>>"$work/log" || { say "rlbench failed:"; tail -n 5 "$work/log" >&2; exit 1; }
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
if "ok" not in r["results"] or not set(r["results"]) <= eval(sys.argv[2]): sys.exit("repl_bench: rlbench results %s: not all ok" % r["results"])' "$out" "$allowed"
}
# 1 and 2, and 5 in the first round: one side of a round.
throughput_round () {
    local mode=$1 n=$2 p0 p1 s0 s1 t0 t1 backup=""
    # Its own empty data directories (t-alone-N, t-semi-N and its standby).
    start_pair "$mode" "t-$mode-$n"
    # CPU over the whole run (its accounts, warm-up and measured part), per
    # transfer the primary applied over the same span.
    t0=$(status_field "$P" transfers)
    p0=$(cpu_ticks "$primary_pid"); s0=0; [ -z "$standby_pid" ] || s0=$(cpu_ticks "$standby_pid")
    load "$batch" "$seconds" "$work/tp-$mode-$n.json"
    p1=$(cpu_ticks "$primary_pid"); s1=0; [ -z "$standby_pid" ] || s1=$(cpu_ticks "$standby_pid")
    t1=$(status_field "$P" transfers)
    seed=$((seed + 1))
    "$rlbench" --connect "$P" --insecure --batch 1 --window 1 --connections 1 \
        --accounts "$accounts" --warmup "$warmup" --duration "$lat_seconds" --seed "$seed" --json --quiet \
        --no-check > "$work/lat-$mode-$n.json" 2>>"$work/log" \
        || { say "rlbench (batch 1) failed"; exit 1; }
    if [ "$n" = 1 ]; then
        mkdir -p "$work/backup-$mode"
        ctl "$P" --json --timeout-ms 60000 backup "$work/backup-$mode" --name s1 \
            > "$work/backup-$mode.json" 2>>"$work/log" || { say "backup failed"; cat "$work/backup-$mode.json" >&2; exit 1; }
        backup=$work/backup-$mode.json
        rm -rf "$work/backup-$mode"
    fi
    stop_pair
    python3 - "$work/tp-$mode-$n.json" "$((p1 - p0))" "$((s1 - s0))" "$(getconf CLK_TCK)" \
        "$work/lat-$mode-$n.json" "$backup" "$mode" "$((t1 - t0))" <<'PY' >> "$work/rounds-$mode"
import json, sys
r = json.load(open(sys.argv[1]))
hz = int(sys.argv[4])
n = max(float(sys.argv[8]), 1.0)
lj = json.load(open(sys.argv[5]))
lat = lj["latency_ms"]
row = {"tps": float(r["transfers_per_s"]), "primary_us": int(sys.argv[2]) / hz * 1e6 / n,
       "standby_us": int(sys.argv[3]) / hz * 1e6 / n, "p50": lat["p50"], "p99": lat["p99"],
       "fsync_p50": lj["fsync_p50_ms"],
       "durability": r["durability"]}
if sys.argv[6]:
    b = json.load(open(sys.argv[6]))["shards"][0]
    row["backup_mb"] = int(b["bytes"]) / 1e6
    row["backup_mb_s"] = int(b["bytes"]) / 1e6 / max(int(b["copy_ms"]) / 1000.0, 1e-3)
print(json.dumps(row))
PY
    tail -n 1 "$work/rounds-$mode" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); mode = sys.argv[1]
line = "round %s %-5s batch %s: %.0f transfers/s, CPU us/transfer primary %.2f" % (sys.argv[2], mode, sys.argv[3], r["tps"], r["primary_us"])
if mode != "alone": line += " standby %.2f" % r["standby_us"]
line += " | batch 1: p50 %.2f ms p99 %.2f ms" % (r["p50"], r["p99"])
if "backup_mb" in r: line += " | backup %.1f MB at %.1f MB/s" % (r["backup_mb"], r["backup_mb_s"])
print(line + " | " + r["durability"])' "$mode" "$n" "$batch"
}

# 3: catch-up of a standby SIGSTOPped during the load.
catchup_round () {
    local n=$1 last pos pos0 wal0 wal1 t0 t1 t2 tn moved
    start_pair async "c$n"
    # The standby holds everything written so far once its position rests.
    last=-1; pos=$(position "$S")
    while [ "$pos" != "$last" ]; do last=$pos; sleep 0.3; pos=$(position "$S"); done
    pos0=$pos
    wal0=$(status_field "$P" wal_bytes)
    kill -STOP "$standby_pid"
    t0=$(now)
    load "$batch" "$seconds" "$work/cu-$n.json"
    t1=$(now)
    wal1=$(status_field "$P" wal_bytes)
    kill -CONT "$standby_pid"
    t2=$(now)
    # Until the position rests for 0.5 s: the time of its last move.
    last=-1; moved=$t2; pos=$pos0
    while :; do
        pos=$(position "$S" || echo "$last")
        tn=$(now)
        if [ "$pos" != "$last" ]; then last=$pos; moved=$tn
        elif python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) - float(sys.argv[2]) > 0.5 else 1)' "$tn" "$moved"; then break
        fi
        sleep 0.05
    done
    stop_pair
    python3 - "$pos0" "$last" "$t0" "$t1" "$t2" "$moved" "$wal0" "$wal1" <<'PY' | tee -a "$work/catchup"
import json, sys
p0, p1 = int(sys.argv[1]), int(sys.argv[2])
t0, t1, t2, tm = map(float, sys.argv[3:7])
wal = (int(sys.argv[8]) - int(sys.argv[7])) / 1e6
ev = p1 - p0
cs = max(tm - t2, 1e-3)
print(json.dumps({"events": ev, "mb": wal, "catchup_s": cs, "catchup_ev_s": ev / cs,
                  "catchup_mb_s": wal / cs, "made_ev_s": ev / max(t1 - t0, 1e-3),
                  "made_mb_s": wal / max(t1 - t0, 1e-3)}))
PY
}

# 4: fail-over (replicated) against a restart (alone).
failover_round () {
    local mode=$1 n=$2 target k t0 t1 c0 c1 opened
    STANDBY_LOG=1 start_pair "$( [ "$mode" = late ] && echo semi || echo "$mode")" "f$mode$n"
    ctl "$P" --timeout-ms 10000 create-account 990000001 990000002 --ledger 1 --code 1 >/dev/null 2>>"$work/log" \
        || { say "create-account failed"; exit 1; }
    [ $smoke = 1 ] || load "$batch" "$seconds" "$work/fo-$mode-$n.json" --fill
    kill -KILL "$primary_pid"; wait "$primary_pid" 2>/dev/null || true
    [ "$mode" != late ] || sleep 1.2 # past the dead primary's lease
    t0=$(now)
    c0=0
    if [ "$mode" = alone ]; then
        target=$P
        "$shard" --name s1 --bind "$P" --data "$work/f$mode$n" --insecure --log-level warn 2>>"$work/log" &
        primary_pid=$!; pids="$pids $primary_pid"
    else
        target=$S
        c0=$(cpu_ticks "$standby_pid")
        k=0
        until ctl "$S" --timeout-ms 2000 promote >/dev/null 2>>"$work/log"; do
            k=$((k + 1)); [ $k -lt 10 ] || { say "promote failed"; exit 1; }
        done
        primary_pid=$standby_pid; standby_pid=""
    fi
    k=0
    until ctl "$target" --timeout-ms 5000 transfer $((880000000 + n)) 990000001 990000002 1 \
        --ledger 1 --code 1 >/dev/null 2>&1; do
        k=$((k + 1)); [ $k -lt 600 ] || { say "no write acknowledged after the fail-over"; exit 1; }
        sleep 0.01
    done
    t1=$(now)
    c1=$(cpu_ticks "$primary_pid")
    stop_pair
    opened=-
    if [ "$mode" != alone ]; then
        opened=$(sed -n 's/.*promote: the primary opened in \([0-9][0-9]*\) ms.*/\1/p' "$work/f$mode$n-standby.log" | tail -n 1)
        [ -n "$opened" ] || { say "no 'primary opened' line in the promoted standby's log"; exit 1; }
    fi
    python3 -c 'import sys; print("%.1f" % ((float(sys.argv[2]) - float(sys.argv[1])) * 1000))' "$t0" "$t1" >> "$work/failover-$mode"
    echo "$(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) $opened" >> "$work/failover-cpu-$mode"
    echo "round $n $mode: $(case $mode in alone) echo "restart" ;; semi) echo "promote" ;; *) echo "promote 1.2 s after the SIGKILL" ;; esac) -> first acknowledged transfer $(tail -n 1 "$work/failover-$mode") ms"
    if [ "$mode" = alone ]; then
        echo "round $n $mode: the restarted process: $(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) ms of CPU until then"
    else
        echo "round $n $mode: the promoted process: $(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) ms of CPU from the promote until then, opened as the primary in $opened ms"
    fi
}

# The three fail-over figures of round N.
failover_rounds () {
    failover_round alone "$1"
    failover_round semi "$1"
    failover_round late "$1"
}

echo "ringledger replication: 1 shard, durability sync, standby on the same machine; $rounds round(s) of $seconds s at batch $batch; $accounts accounts; load average $(cut -d' ' -f1 /proc/loadavg)"
: > "$work/rounds-alone"; : > "$work/rounds-semi"; : > "$work/catchup"; : > "$work/failover-alone"; : > "$work/failover-semi"; : > "$work/failover-late"
: > "$work/failover-cpu-alone"; : > "$work/failover-cpu-semi"; : > "$work/failover-cpu-late"
if [ $failover_only = 1 ]; then
    i=1
    while [ $i -le "$rounds" ]; do
        failover_rounds $i
        i=$((i + 1))
    done
    echo "load average at the end $(cut -d' ' -f1 /proc/loadavg)"
    python3 - "$work" <<'PY'
import statistics as st, sys
w = sys.argv[1]
def col(name, k): return [float(l.split()[k]) for l in open("%s/%s" % (w, name)) if l.strip()]
print("\nmedians over %d round(s): restart (alone) | promote at once (semi) | promote 1.2 s after the SIGKILL (late)" % len(col("failover-alone", 0)))
print("  -> first acknowledged write ms   %10.1f | %10.1f | %10.1f" % tuple(st.median([float(l) for l in open("%s/failover-%s" % (w, m)) if l.strip()]) for m in ("alone", "semi", "late")))
print("  CPU of that process ms           %10.0f | %10.0f | %10.0f" % tuple(st.median(col("failover-cpu-" + m, 0)) for m in ("alone", "semi", "late")))
print("  promote -> opened as primary ms  %10s | %10.0f | %10.0f" % ("-", st.median(col("failover-cpu-semi", 1)), st.median(col("failover-cpu-late", 1))))
PY
    exit 0
fi
i=1
while [ $i -le "$rounds" ]; do
    throughput_round alone $i
    throughput_round semi $i
    i=$((i + 1))
done
if [ $throughput_only = 1 ]; then
    echo "load average at the end $(cut -d' ' -f1 /proc/loadavg)"
    python3 - "$work" "$batch" <<'PY'
import json, statistics as st, sys
w = sys.argv[1]
def rows(name): return [json.loads(l) for l in open("%s/%s" % (w, name)) if l.strip()]
a, r = rows("rounds-alone"), rows("rounds-semi")
def m(xs, k): return st.median(x[k] for x in xs)
print("\nmedians over %d round(s): alone | replicated (semi-sync) | replicated / alone" % len(a))
print("  batch %-5s transfers/s      %10.0f | %10.0f | %.2f" % (sys.argv[2], m(a, "tps"), m(r, "tps"), m(r, "tps") / m(a, "tps")))
print("  primary CPU us/transfer      %10.2f | %10.2f | %.2f" % (m(a, "primary_us"), m(r, "primary_us"), m(r, "primary_us") / m(a, "primary_us")))
print("  standby CPU us/transfer      %10s | %10.2f | (rounds: %s)" % ("-", m(r, "standby_us"), " ".join("%.2f" % x["standby_us"] for x in r)))
PY
    exit 0
fi
i=1
while [ $i -le "$rounds" ]; do
    catchup_round $i >/dev/null
    tail -n 1 "$work/catchup" | python3 -c '
import json, sys
c = json.loads(sys.stdin.read())
print("round %s catch-up: %d events (%.1f MB) in %.2f s: %.0f events/s, %.1f MB/s; made at %.0f events/s, %.1f MB/s" % (
    sys.argv[1], c["events"], c["mb"], c["catchup_s"], c["catchup_ev_s"], c["catchup_mb_s"], c["made_ev_s"], c["made_mb_s"]))' $i
    failover_rounds $i
    i=$((i + 1))
done
echo "load average at the end $(cut -d' ' -f1 /proc/loadavg)"
python3 - "$work" "$batch" <<'PY'
import json, statistics as st, sys
w = sys.argv[1]
def rows(name): return [json.loads(l) for l in open("%s/%s" % (w, name)) if l.strip()]
a, r, c = rows("rounds-alone"), rows("rounds-semi"), rows("catchup")
fa = [float(l) for l in open(w + "/failover-alone") if l.strip()]
fr = [float(l) for l in open(w + "/failover-semi") if l.strip()]
fl = [float(l) for l in open(w + "/failover-late") if l.strip()]
def m(xs, k): return st.median(x[k] for x in xs)
print("\nmedians over %d round(s): alone | replicated (semi-sync) | replicated / alone" % len(a))
print("  batch %-5s transfers/s      %10.0f | %10.0f | %.2f" % (sys.argv[2], m(a, "tps"), m(r, "tps"), m(r, "tps") / m(a, "tps")))
print("  primary CPU us/transfer      %10.2f | %10.2f | %.2f" % (m(a, "primary_us"), m(r, "primary_us"), m(r, "primary_us") / m(a, "primary_us")))
print("  standby CPU us/transfer      %10s | %10.2f |" % ("-", m(r, "standby_us")))
print("  batch 1 p50 ms               %10.2f | %10.2f | +%.2f ms (one sync of this disk: p50 %.2f ms, rlbench's probe)" % (
    m(a, "p50"), m(r, "p50"), m(r, "p50") - m(a, "p50"), st.median(x["fsync_p50"] for x in a + r)))
print("  batch 1 p99 ms               %10.2f | %10.2f | +%.2f ms" % (m(a, "p99"), m(r, "p99"), m(r, "p99") - m(a, "p99")))
print("  fail-over -> first write ms  %10.1f | %10.1f | %.2f  (from the SIGKILL; alone: restart; replicated: promote at once, the lease included)" % (st.median(fa), st.median(fr), st.median(fr) / st.median(fa)))
print("  promote -> first write ms    %10s | %10.1f |       (promoted 1.2 s after the SIGKILL: no lease left)" % ("-", st.median(fl)))
fc = [l.split() for l in open(w + "/failover-cpu-late") if l.strip()]
print("  promoted: CPU ms, opened ms  %10s | %4.0f, %4.0f |       (late: the promoted process's CPU until its first write; promote -> opened as the primary)" % (
    "-", st.median(float(x[0]) for x in fc), st.median(float(x[1]) for x in fc)))
ba = [x["backup_mb_s"] for x in a if "backup_mb_s" in x]
br = [x["backup_mb_s"] for x in r if "backup_mb_s" in x]
print("  backup MB/s (round 1)        %10.1f | %10.1f | %.2f" % (ba[0], br[0], br[0] / ba[0] if ba[0] else float("nan")))
print("  catch-up (async standby)     %.0f events/s, %.1f MB/s; the primary made them at %.0f events/s, %.1f MB/s (catch-up / made %.2f)" % (
    m(c, "catchup_ev_s"), m(c, "catchup_mb_s"), m(c, "made_ev_s"), m(c, "made_mb_s"), m(c, "catchup_ev_s") / m(c, "made_ev_s")))
print("durability: alone %s; replicated %s" % (a[0]["durability"], r[0]["durability"]))
PY
