#!/bin/sh
# The smoke run of bench/rebalance_bench.sh (--smoke): a 3-shard cluster
# with a small history grows to 4 with `rebalance apply` under rlbench's
# closed loop; the script fails on a failed apply, rebalance check or
# conservation check (rlbench's check runs across the ring change). Here:
# the table has its header and a row with numbers in every figure (the
# source's drain and the handover from the shards' logs included), every
# check passed, and the medians line is there.
#
#   tests/test_bench_rebalance.sh BUILD_DIR
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
OUT=$(mktemp "${TMPDIR:-/tmp}/rl-bench-rebalance-XXXXXX")
trap 'rm -f "$OUT"' EXIT
if ! "$ROOT/bench/rebalance_bench.sh" --smoke "$BUILD" >"$OUT" 2>&1; then
    cat "$OUT"
    echo "FAIL: bench/rebalance_bench.sh --smoke exited non-zero"
    exit 1
fi
cat "$OUT"
fail () { echo "FAIL: $*"; exit 1; }
grep -q '^ringledger rebalancing: .* 3 -> 4 shards; 10,000 accounts, 20,000 transfers of history; .*durability sync (1 run)$' "$OUT" \
    || fail "no title line"
grep -q '^| run | steps | apply s | copy s | accounts/s | MB/s | before tps | during tps | during/before | before p99 ms | during p99 ms | freeze p50 ms | freeze p99 ms | freeze max ms | ' "$OUT" \
    || fail "no table header"
N='[0-9][0-9.]*'
grep -q "^| 1 | $N | $N | $N | $N | $N | $N | $N | $N | $N | $N | $N | $N | $N | $N/$N/$N | $N/$N/$N | $N/$N, $N, $N/$N | $N | passed/passed/passed | $N/$N/$N/$N |\$" "$OUT" \
    || fail "no row with numbers in every figure (apply's parts of the freeze and the shards' drain too) and three passed checks"
grep -q "^run 1: history of [0-9,]* transfers applied, loaded in $N s ($N transfers/s); $N accounts installed, $N records, $N bytes copied\$" "$OUT" \
    || fail "no copy line"
grep -q "^medians over 1 run: copy $N accounts/s, $N MB/s; foreground $N -> $N transfers/s (during/before $N; target >= 0.50: [A-Za-z ]*), p99 $N -> $N ms; freeze p50 $N ms, p99 $N ms (target <= 100: [A-Za-z ]*), max $N ms\$" "$OUT" \
    || fail "no medians line"
echo "bench/rebalance_bench.sh --smoke: 1 passed, 0 failed"
