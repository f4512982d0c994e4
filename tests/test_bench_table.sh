#!/bin/sh
# The smoke run of bench/table.sh (--quick): the table has its header, one
# row per system with numbers in every column, and the open-loop line; every
# conservation check passed (the script fails on a failed one, and the rows
# say "passed").
#
#   tests/test_bench_table.sh BUILD_DIR
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
OUT=$(mktemp "${TMPDIR:-/tmp}/rl-bench-table-XXXXXX")
trap 'rm -f "$OUT"' EXIT
if ! "$ROOT/bench/table.sh" --quick "$BUILD" >"$OUT" 2>&1; then
    cat "$OUT"
    echo "FAIL: bench/table.sh --quick exited non-zero"
    exit 1
fi
cat "$OUT"
fail () { echo "FAIL: $*"; exit 1; }
grep -q '^ringledger table: .* durability sync; load average [0-9.]* -> [0-9.]*' "$OUT" \
    || fail "no title line with the durability and the load"
grep -q '^| system | transfers/s | batch p99 ms | CPU µs per transfer | cross-shard | check |$' "$OUT" \
    || fail "no table header"
NUM='[0-9][0-9,.]*'
for row in "one shard" "4 shards + router, uniform" "4 shards + router, same-shard pairs"; do
    grep -q "^| ringledger, $row | $NUM | $NUM | $NUM | $NUM | passed |\$" "$OUT" \
        || fail "no row '$row' with numbers and a passed check"
done
grep -q "^| ringledger, 4 shards + router, uniform | $NUM | $NUM | $NUM | 0\.7[0-9] | passed |\$" "$OUT" \
    || fail "the uniform row is not about 75% cross-shard"
grep -q "^open loop, one shard: offered 5000/s .* p50 $NUM ms, p99 $NUM ms, max $NUM ms .*; fsync p99 $NUM ms; [A-Z]*[a-z]*; check passed\$" "$OUT" \
    || fail "no open-loop line with its latencies, fsync p99 and a passed check"
echo "bench/table.sh --quick: 1 passed, 0 failed"
