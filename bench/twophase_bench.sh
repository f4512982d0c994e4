#!/bin/sh
# twophase_bench.sh [BUILD_DIR] [SECONDS]: cross-shard transfers against
# same-shard, and a hot merchant against uniform cross-shard, on a local
# 4-shard cluster with a router (tools/cluster.sh), all in one run, WAL
# synced. Prints transfers/s, request latency and CPU seconds per shard for
# each workload (rlbench's conservation check runs after each one).
#
#   bench/twophase_bench.sh build 5
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
SECONDS_RUN=${2:-5}
DIR=$(mktemp -d /var/tmp/rl-twophase-bench-XXXXXX)
PORT=$((20000 + $$ % 20000))
cleanup () {
    "$ROOT/tools/cluster.sh" stop --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
RL_LOG_LEVEL=warn "$ROOT/tools/cluster.sh" start --dir "$DIR" --base-port "$PORT" \
    --build "$BUILD" >/dev/null
ticks () {  # total CPU ticks of each shard, one per line
    for s in s1 s2 s3 s4; do awk '{print $14 + $15}' "/proc/$(cat "$DIR/$s.pid")/stat"; done
}
HZ=$(getconf CLK_TCK)
run () {  # run NAME rlbench-options...
    name=$1; shift
    before=$(ticks)
    out=$("$BUILD/bench/rlbench" --connect "tcp://127.0.0.1:$PORT" --duration "$SECONDS_RUN" \
        --warmup 1 --accounts 10000 --quiet "$@" 2>&1) || { echo "$out"; exit 1; }
    after=$(ticks)
    tps=$(echo "$out" | awk '/^throughput/ {print $2}')
    p50=$(echo "$out" | awk '/^latency ms/ {print $4}')
    p99=$(echo "$out" | awk '/^latency ms/ {print $8}')
    check=$(echo "$out" | awk '/^check/ {print $2}')
    cpu=$(printf '%s\n%s\n' "$before" "$after" | awk -v hz="$HZ" \
        '{v[NR]=$1} END {for (i=1;i<=4;i++) printf "%.1f ", (v[i+4]-v[i])/hz}')
    printf '%-34s %10s %9s %9s   %-22s %s\n' "$name" "$tps" "$p50" "$p99" "$cpu" "$check"
}
echo "4 shards + router + client on $(nproc) cores, WAL synced, ${SECONDS_RUN} s per row"
printf '%-34s %10s %9s %9s   %-22s %s\n' "workload" "transfers/s" "p50 ms" "p99 ms" \
    "CPU s per shard" "check"
run "same-shard, batch 8190"        --batch 8190 --connections 1 --window 2 --limits --cross-fraction 0
run "cross-shard, batch 8190"       --batch 8190 --connections 1 --window 2 --limits --cross-fraction 1
run "uniform cross-shard, batch 8190" --batch 8190 --connections 1 --window 2 --limits --cross-fraction 1
run "hot merchant 90%, batch 8190"  --batch 8190 --connections 1 --window 2 --limits --hot-credit 90
run "same-shard, batch 1"           --batch 1 --connections 1 --window 1 --cross-fraction 0
run "cross-shard, batch 1"          --batch 1 --connections 1 --window 1 --cross-fraction 1
