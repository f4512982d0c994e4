#!/usr/bin/env bash
# backup_bench.sh: cluster backups under a saturating load, then a restore
# (bench/README.md, "Backups").
#
#   bench/backup_bench.sh [options] BUILD_DIR [--vs BUILD_DIR_B]
#
# Each run: a fresh local cluster of 4 shards and a router (tools/cluster.sh,
# CURVE on, WAL synced); rlbench through the router as a closed loop
# (--accounts accounts, batches of --batch, --cross-fraction 0.5, window 4,
# 2 connections) for --duration seconds, checked at its end; once its
# warm-up is over, --backups cluster backups (`rlctl --json backup DIR
# --cluster`) one second apart; then `rlctl restore` of the last set into
# a fresh root, timed.
# Figures per run, from the JSON rlctl prints:
#   hold     the pause of the cluster: per backup, the longest held_us of
#            its shards (a request that arrives during a hold waits this
#            long at most); p50 and max over the run's backups
#   cut      the cut per shard (cut_us), p50 and max over every shard cut
#   backup   the copy rate per shard: new bytes (not yet in the backup
#            directory) over the copy's time, summed over the run, and
#            the whole backup's bytes over the copy's time of the first
#            (full) backup
#   restore  bytes of the restored data directories over restore's wall time
#   failed   backups that failed (e.g. a hold past its 2 s limit: no set),
#            counted and left out of the figures above
# rlbench's transfers/s and the result of its check are printed beside them.
# With --vs, runs of the two builds alternate (A B A B ...) on the same
# command, and the medians of each and their ratios (A / B) are printed.
#
# Options:
#   --runs N        runs of each build (1)
#   --backups N     backups per run (10)
#   --duration S    seconds of load (25); the backups start after 3 s
#   --accounts N    rlbench's accounts (100000)
#   --batch N       transfers per request (1000)
#   --smoke         a short run: 2 backups, 6 s, 10,000 accounts, batches of 100
#   --keep DIR      keep every run's cluster, backups and outputs under DIR
#
# Exit: 0 done, 1 a run, the check or the restore failed (or no backup of a
# run succeeded), 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=1
BACKUPS=10
DURATION=25
ACCOUNTS=100000
BATCH=1000
START_S=3
KEEP=""
BUILD_A=""
BUILD_B=""

usage () {
    sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
is_number () { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
need_number () {
    is_number "$2" && [ "$2" -ge "$3" ] || { echo "backup_bench.sh: $1 '$2': expected an integer >= $3" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) BACKUPS=2; DURATION=6; ACCOUNTS=10000; BATCH=100; START_S=2; shift ;;
    --runs | --backups | --duration | --accounts | --batch | --keep | --vs)
        [ $# -ge 2 ] || { echo "backup_bench.sh: $1 needs a value" >&2; exit 2; }
        case "$1" in
        --runs) need_number "$1" "$2" 1; RUNS=$2 ;;
        --backups) need_number "$1" "$2" 1; BACKUPS=$2 ;;
        --duration) need_number "$1" "$2" 5; DURATION=$2 ;;
        --accounts) need_number "$1" "$2" 100; ACCOUNTS=$2 ;;
        --batch) need_number "$1" "$2" 1; BATCH=$2 ;;
        --keep) KEEP=$2 ;;
        --vs) BUILD_B=$2 ;;
        esac
        shift 2 ;;
    -h | --help) usage ;;
    -*) echo "backup_bench.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$BUILD_A" ] || usage; BUILD_A=$1; shift ;;
    esac
done
[ -n "$BUILD_A" ] || usage
for b in "$BUILD_A" ${BUILD_B:+"$BUILD_B"}; do
    for p in shard/shard router/router bench/rlbench tools/rlctl tools/rebalance; do
        [ -x "$b/$p" ] || { echo "backup_bench.sh: no $b/$p (build first)" >&2; exit 2; }
    done
done
BUILD_A=$(cd "$BUILD_A" && pwd)
[ -z "$BUILD_B" ] || BUILD_B=$(cd "$BUILD_B" && pwd)

if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP"
    WORK=$(cd "$KEEP" && pwd)
else
    WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/rl-backup-XXXXXX")
fi
CLUSTER=""
cleanup () {
    if [ -n "${LOAD_PID:-}" ]; then kill -KILL "$LOAD_PID" 2>/dev/null || true; fi
    if [ -n "$CLUSTER" ]; then "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true; fi
    if [ -z "$KEEP" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# SIGKILL runs no trap and the cluster's processes are daemons: a detached
# watcher stops whatever is left under WORK once this script is gone.
( (while kill -0 $$ 2>/dev/null; do sleep 1; done
   for d in "$WORK"/run-*/cluster; do
       [ -d "$d" ] && "$ROOT/tools/cluster.sh" stop --dir "$d"
   done
   if [ -z "$KEEP" ]; then rm -rf "$WORK"; fi) </dev/null >/dev/null 2>&1 & )

say () { echo "backup_bench.sh: $*" >&2; }
load () { cut -d' ' -f1 /proc/loadavg; }
free_port () {
    python3 -c '
import random, socket
for _ in range(200):
    p = random.randint(20000, 60000)
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

# one_run NAME BUILD: a whole run into WORK/run-NAME; its figures in
# WORK/run-NAME/figures.json.
one_run () {
    local name=$1 build=$2 run=$WORK/run-$1 port=""
    rm -rf "$run"
    mkdir -p "$run/backups" "$run/restored"
    CLUSTER=$run/cluster
    for _ in 1 2 3; do # a port taken meanwhile: another one
        rm -rf "$CLUSTER"
        port=$(free_port)
        if "$ROOT/tools/cluster.sh" start --shards 4 --dir "$CLUSTER" --base-port "$port" \
            --build "$build" >"$run/cluster.out" 2>&1; then
            break
        fi
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
        port=""
    done
    [ -n "$port" ] || { say "run $name: the cluster did not start"; tail -n 5 "$run/cluster.out" >&2; return 1; }
    local keys=$CLUSTER/keys
    local l0
    l0=$(load)
    say "run $name ($build): load for $DURATION s, $BACKUPS backups (load average $l0)"
    "$build/bench/rlbench" --connect "tcp://127.0.0.1:$port" --cert "$keys/private/client.key_secret" \
        --server-key "$keys/router/router.key" --accounts "$ACCOUNTS" --batch "$BATCH" \
        --cross-fraction 0.5 --window 4 --connections 2 --warmup 1 --duration "$DURATION" \
        --quiet --json >"$run/rlbench.json" 2>"$run/rlbench.err" &
    LOAD_PID=$!
    sleep "$START_S"
    local rlctl=("$build/tools/rlctl" --connect "tcp://127.0.0.1:$port"
        --cert "$keys/private/admin.key_secret" --server-key "$keys/router/router.key"
        --timeout-ms 10000)
    local i
    for i in $(seq 1 "$BACKUPS"); do
        if ! "${rlctl[@]}" --json backup "$run/backups" --cluster >"$run/backup-$i.json" 2>"$run/backup-$i.err"; then
            # Counted, not fatal: a hold past its limit is a figure of the build.
            say "run $name: backup $i failed: $(head -c 300 "$run/backup-$i.err")"
        fi
        sleep 1
    done
    if ! wait "$LOAD_PID"; then
        LOAD_PID=""
        say "run $name: rlbench failed:"; tail -n 5 "$run/rlbench.err" >&2; return 1
    fi
    LOAD_PID=""
    "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    CLUSTER=""
    local t0 t1
    t0=$(date +%s.%N)
    if ! "$build/tools/rlctl" --json restore "$run/backups" "$run/restored" >"$run/restore.json" 2>"$run/restore.err"; then
        say "run $name: restore failed:"; cat "$run/restore.err" >&2; return 1
    fi
    t1=$(date +%s.%N)
    local restored_bytes
    restored_bytes=$(du -sb "$run/restored" | cut -f1)
    python3 - "$run" "$BACKUPS" "$t0" "$t1" "$restored_bytes" "$l0" "$(load)" <<'EOF'
import json, statistics, sys
run, n, t0, t1, rbytes, l0, l1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
held, cuts, new_b, copy_ms, full, failed = [], [], 0, 0, None, 0
for i in range(1, n + 1):
    j = json.load(open("%s/backup-%d.json" % (run, i)))
    if "error" in j:
        failed += 1
        continue
    held.append(int(j["held_us_max"]) / 1000.0)
    shards = j["shards"]
    cuts += [int(s["cut_us"]) / 1000.0 for s in shards]
    new_b += sum(int(s["new_bytes"]) for s in shards)
    copy_ms += sum(int(s["copy_ms"]) for s in shards)
    if full is None:
        full = sum(int(s["bytes"]) for s in shards) / 1e6 / max(sum(int(s["copy_ms"]) for s in shards) / 1000.0, 1e-3)
b = json.load(open("%s/rlbench.json" % run))
if not held:
    sys.exit("no backup succeeded")
out = {"failed": failed, "held_p50_ms": statistics.median(held), "held_max_ms": max(held),
       "cut_p50_ms": statistics.median(cuts), "cut_max_ms": max(cuts),
       "copy_new_mb_s": new_b / 1e6 / max(copy_ms / 1000.0, 1e-3), "copy_full_mb_s": full,
       "restore_mb_s": rbytes / 1e6 / max(t1 - t0, 1e-3), "restore_mb": rbytes / 1e6,
       "restore_s": t1 - t0, "tps": b["transfers_per_s"], "check": b["check"],
       "load": "%s-%s" % (l0, l1), "held_ms": held}
json.dump(out, open("%s/figures.json" % run, "w"))
print("  %d of %d backups failed | hold p50 %.1f ms max %.1f ms | cut p50 %.1f ms max %.1f ms | copy %.1f MB/s (new), %.1f MB/s (full) | restore %.1f MB in %.2f s = %.1f MB/s | %.0f transfers/s, check %s | load %s" % (
    failed, n, out["held_p50_ms"], out["held_max_ms"], out["cut_p50_ms"], out["cut_max_ms"], out["copy_new_mb_s"],
    out["copy_full_mb_s"], out["restore_mb"], out["restore_s"], out["restore_mb_s"], out["tps"], out["check"], out["load"]))
print("  holds (ms): " + " ".join("%.1f" % h for h in held))
EOF
    [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["check"])' "$run/figures.json")" != False ] \
        || { say "run $name: rlbench's check failed"; return 1; }
}

for r in $(seq 1 "$RUNS"); do
    echo "run $r, A = $BUILD_A"
    one_run "a$r" "$BUILD_A"
    if [ -n "$BUILD_B" ]; then
        echo "run $r, B = $BUILD_B"
        one_run "b$r" "$BUILD_B"
    fi
done
python3 - "$WORK" "$RUNS" "${BUILD_B:+1}" <<'EOF'
import json, statistics, sys
work, runs, vs = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
keys = ["failed", "held_p50_ms", "held_max_ms", "cut_p50_ms", "cut_max_ms", "copy_new_mb_s", "copy_full_mb_s", "restore_mb_s", "tps"]
def med(prefix, k):
    return statistics.median(json.load(open("%s/run-%s%d/figures.json" % (work, prefix, r)))[k] for r in range(1, runs + 1))
print("\nmedians over %d run(s)%s" % (runs, " (A / B: ratio of the medians)" if vs else ""))
for k in keys:
    a = med("a", k)
    line = "  %-16s A %10.1f" % (k, a)
    if vs:
        b = med("b", k)
        line += "   B %10.1f   A/B %.2f" % (b, a / b if b else float("nan"))
    print(line)
EOF
