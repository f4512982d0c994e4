#!/bin/sh
# The smoke runs of bench/repl_bench.sh (--smoke) and bench/backup_bench.sh
# (--smoke): each script fails on a failed run, a failed rlbench check or
# restore; here, every figure line is there with numbers.
#
#   tests/test_bench_repl.sh repl|backup BUILD_DIR
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHICH=$1
BUILD=$2
OUT=$(mktemp "${TMPDIR:-/tmp}/rl-bench-$WHICH-XXXXXX")
trap 'rm -f "$OUT"' EXIT
fail () { cat "$OUT"; echo "FAIL: $*"; exit 1; }
N='[0-9][0-9.]*'
case "$WHICH" in
repl)
    bash "$ROOT/bench/repl_bench.sh" --smoke "$BUILD" >"$OUT" 2>&1 \
        || fail "bench/repl_bench.sh --smoke exited non-zero"
    grep -q "^ringledger replication: 1 shard, durability sync, standby on the same machine; 1 round(s) of 1 s at batch 1000; " "$OUT" \
        || fail "no title line"
    grep -q "^round 1 alone batch 1000: $N transfers/s, CPU us/transfer primary $N | batch 1: p50 $N ms p99 $N ms | backup $N MB at $N MB/s | sync\$" "$OUT" \
        || fail "no round line alone"
    grep -q "^round 1 semi  batch 1000: $N transfers/s, CPU us/transfer primary $N standby $N | batch 1: p50 $N ms p99 $N ms | backup $N MB at $N MB/s | sync + semi-sync standby\$" "$OUT" \
        || fail "no round line replicated"
    grep -q "^round 1 catch-up: $N events ($N MB) in $N s: $N events/s, $N MB/s; made at $N events/s, $N MB/s\$" "$OUT" \
        || fail "no catch-up line"
    grep -q "^round 1 alone: restart -> first acknowledged transfer $N ms\$" "$OUT" || fail "no restart line"
    grep -q "^round 1 semi: promote -> first acknowledged transfer $N ms\$" "$OUT" || fail "no promote line"
    grep -q "^round 1 late: promote 1.2 s after the SIGKILL -> first acknowledged transfer $N ms\$" "$OUT" \
        || fail "no late promote line"
    grep -q "^  promote -> first write ms  *- | *$N | " "$OUT" || fail "no late promote medians line"
    grep -q "^round 1 late: the promoted process: $N ms of CPU from the promote until then, opened as the primary in $N ms\$" "$OUT" \
        || fail "no promoted process line"
    grep -q "^  promoted: CPU ms, opened ms  *- | *$N, *$N | " "$OUT" || fail "no promoted medians line"
    for f in "batch 1000  transfers/s" "primary CPU us/transfer" "batch 1 p50 ms" "batch 1 p99 ms" \
        "fail-over -> first write ms" "backup MB/s (round 1)"; do
        grep -q "^  $f  *$N | *$N | " "$OUT" || fail "no medians line '$f'"
    done
    grep -q "^  standby CPU us/transfer  *- | *$N |" "$OUT" || fail "no standby CPU line"
    grep -q "^  catch-up (async standby)  *$N events/s, $N MB/s; " "$OUT" || fail "no catch-up medians"
    grep -q "^durability: alone sync; replicated sync + semi-sync standby\$" "$OUT" || fail "no durability labels"
    ;;
backup)
    "$ROOT/bench/backup_bench.sh" --smoke "$BUILD" >"$OUT" 2>&1 \
        || fail "bench/backup_bench.sh --smoke exited non-zero"
    grep -q "^  0 of 2 backups failed | hold p50 $N ms max $N ms | cut p50 $N ms max $N ms | copy $N MB/s (new), $N MB/s (full) | restore $N MB in $N s = $N MB/s | $N transfers/s, check passed | load " "$OUT" \
        || fail "no run line with every figure, no failed backup and a passed check"
    for k in held_p50_ms held_max_ms cut_p50_ms copy_new_mb_s copy_full_mb_s restore_mb_s tps; do
        grep -q "^  $k  *A  *$N\$" "$OUT" || fail "no median of $k"
    done
    ;;
*) echo "usage: test_bench_repl.sh repl|backup BUILD_DIR" >&2; exit 2 ;;
esac
cat "$OUT"
echo "bench/${WHICH}_bench.sh --smoke: 1 passed, 0 failed"
