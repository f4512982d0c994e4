#!/bin/sh
# The smoke run of bench/pending_bench.sh (--smoke: 4 shards and a router,
# one pair of 1 s runs): the script fails on a failed run or check; here,
# every line is there with numbers, A's pending transfers include
# cross-shard ones, each authorised one was posted or voided, B has none,
# and both checks passed.
#
#   tests/test_bench_pending.sh BUILD_DIR
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
OUT=$(mktemp "${TMPDIR:-/tmp}/rl-bench-pending-XXXXXX")
trap 'rm -f "$OUT"' EXIT
fail () { cat "$OUT"; echo "FAIL: $*"; exit 1; }
"$ROOT/bench/pending_bench.sh" --smoke "$BUILD" >"$OUT" 2>&1 \
    || fail "bench/pending_bench.sh --smoke exited non-zero"
N='[0-9][0-9.,]*'
grep -q "^ringledger pending transfers: 4 shards + router, uniform, .* 1 pair(s), A --transfer-pending 20, B plain; load average $N $N $N -> $N $N $N\$" "$OUT" \
    || fail "no title line with the load average"
line=$(grep "^pair 1 A: " "$OUT") || fail "no line of run A"
echo "$line" | grep -q "^pair 1 A: $N records/s, p50 $N ms, p99 $N ms, cross-shard 0\.[67][0-9], pending $N authorised ($N cross-shard), $N posted, $N voided, check passed\$" \
    || fail "run A: $line"
# Pending transfers on two shards among them, and every one resolved.
echo "$line" | python3 -c '
import re, sys
m = re.search(r"pending (\d+) authorised \((\d+) cross-shard\), (\d+) posted, (\d+) voided", sys.stdin.read())
auth, cross, posted, voided = (int(x) for x in m.groups())
sys.exit(0 if auth > 0 and 0 < cross < auth and posted + voided >= auth and posted > voided > 0 else 1)
' || fail "run A: no cross-shard pending transfer, or some not posted nor voided: $line"
grep -q "^pair 1 B: $N records/s, p50 $N ms, p99 $N ms, cross-shard 0\.[67][0-9], pending 0 authorised (0 cross-shard), 0 posted, 0 voided, check passed\$" "$OUT" \
    || fail "no line of run B without pending transfers"
grep -q "^| B: plain transfers | $N | $N | $N |\$" "$OUT" || fail "no row B"
grep -q "^| A: \`--transfer-pending 20\` | $N | $N | $N |\$" "$OUT" || fail "no row A"
grep -q "^| A/B (median of the 1 pair ratios) | $N ($N \.\. $N) | | |\$" "$OUT" || fail "no ratio row"
cat "$OUT"
echo "bench/pending_bench.sh --smoke: 1 passed, 0 failed"
