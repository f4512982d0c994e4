#!/bin/sh
# repl_bench.sh BUILD_DIR [ROUNDS] [SECONDS]: batch 8190 throughput of one
# shard replicated semi-synchronously to a standby against the same shard
# alone, side by side in one run (rounds alternate: alone, replicated, ...),
# plus the CPU per transfer of the primary and of the standby
# (docs/replication.md, bench/README.md "Replication").
#
# Both shards run --insecure on 127.0.0.1 with --durability sync, on the
# same machine: the standby repeats the primary's writes on the same cores.
# Prints one line per round and the medians and their ratio.
set -eu
build=${1:?usage: repl_bench.sh BUILD_DIR [ROUNDS] [SECONDS]}
rounds=${2:-3}
seconds=${3:-10}
shard=$build/shard/shard
rlbench=$build/bench/rlbench
work=$(mktemp -d /var/tmp/rl-repl-bench.XXXXXX)
pids=""
cleanup () {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port () { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks () { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_ready () {
    i=0
    until "$build/tools/rlctl" --insecure --connect "$1" status >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "repl_bench: $1 never answered" >&2; exit 1; }
        sleep 0.1
    done
}

# One round: prints "transfers/s primary_us standby_us" (CPU per transfer).
round () {
    mode=$1 n=$2
    p=$(port); s=$(port)
    standby_pid=""
    args=""
    if [ "$mode" = repl ]; then
        "$shard" --name s1 --bind "tcp://127.0.0.1:$s" --data "$work/sb$n" --insecure \
            --standby-of "tcp://127.0.0.1:$p" --log-level warn 2>>"$work/log" &
        standby_pid=$!; pids="$pids $standby_pid"
        args="--standby tcp://127.0.0.1:$s"
    fi
    # shellcheck disable=SC2086
    "$shard" --name s1 --bind "tcp://127.0.0.1:$p" --data "$work/p$n" --insecure $args \
        --log-level warn 2>>"$work/log" &
    primary_pid=$!; pids="$pids $primary_pid"
    wait_ready "tcp://127.0.0.1:$p"
    "$rlbench" --connect "tcp://127.0.0.1:$p" --insecure --batch 8190 --window 4 \
        --accounts 10000 --warmup 1 --duration "$seconds" --seed "$n" --json --quiet \
        --no-check > "$work/warm$n.json" 2>>"$work/log" || true
    p0=$(cpu_ticks $primary_pid); s0=0; [ -z "$standby_pid" ] || s0=$(cpu_ticks "$standby_pid")
    "$rlbench" --connect "tcp://127.0.0.1:$p" --insecure --batch 8190 --window 4 \
        --accounts 10000 --no-create-accounts --warmup 0 --duration "$seconds" --seed "$n" \
        --json --quiet --no-check > "$work/r$n.json" 2>>"$work/log"
    p1=$(cpu_ticks $primary_pid); s1=0; [ -z "$standby_pid" ] || s1=$(cpu_ticks "$standby_pid")
    python3 - "$work/r$n.json" "$((p1 - p0))" "$((s1 - s0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
tps = float(r["transfers_per_s"])
hz = int(sys.argv[4])
pt, st = int(sys.argv[2]) / hz * 1e6, int(sys.argv[3]) / hz * 1e6
n = max(tps * float(r["seconds"]), 1.0)
print("%.0f %.2f %.2f" % (tps, pt / n, st / n))
PY
    kill $primary_pid; wait $primary_pid 2>/dev/null || true
    [ -z "$standby_pid" ] || { kill "$standby_pid"; wait "$standby_pid" 2>/dev/null || true; }
}

echo "repl_bench: batch 8190, window 4, 10000 accounts, durability sync, ${seconds} s a round, load $(cut -d' ' -f1 /proc/loadavg)"
: > "$work/alone"; : > "$work/repl"
i=0
while [ $i -lt "$rounds" ]; do
    a=$(round alone $((2 * i + 1))); echo "round $i alone:      $a (transfers/s, primary CPU us/transfer)"; echo "$a" >> "$work/alone"
    r=$(round repl $((2 * i + 2))); echo "round $i replicated: $r (transfers/s, primary and standby CPU us/transfer)"; echo "$r" >> "$work/repl"
    i=$((i + 1))
done
python3 - "$work/alone" "$work/repl" <<'PY'
import statistics, sys
a = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
r = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
ma, mr = statistics.median(x[0] for x in a), statistics.median(x[0] for x in r)
print("median alone %.0f transfers/s, replicated (semi-sync) %.0f: ratio %.2f" % (ma, mr, mr / ma))
print("primary CPU us/transfer: alone %.2f, replicated %.2f" % (
    statistics.median(x[1] for x in a), statistics.median(x[1] for x in r)))
# The standby's column (the third of each round) read about 0 in the first
# runs although the standby applied every event: not trusted until checked.
PY
