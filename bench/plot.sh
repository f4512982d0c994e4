#!/usr/bin/env bash
# plot.sh: ringledger's throughput against batch size and its open-loop
# latency against offered load, measured here with rlbench, then drawn
# with gnuplot (gnuplot-nox is installed if missing).
#
#   bench/plot.sh [--build DIR] [--connect EP | (spawn one shard)] [--label TEXT]
#                 [--runs R] [--seconds S] [--batches LIST] [--rates LIST]
#                 [--open-batch B] [--plot-only]
#
# Writes bench/results/throughput_vs_batch.{dat,png} (closed loop, 1
# connection, window 4, transfers/s against batch size, log x) and
# bench/results/latency_vs_load.{dat,png} (open loop, Poisson arrivals in
# batches of B, p50/p99 request latency from the intended send time
# against offered transfers/s). Every figure is the median of R runs; each
# run starts a fresh shard (WAL synced) unless --connect is given, and
# runs rlbench's conservation check (a failed check stops the script).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
CONNECT=""
LABEL=""
RUNS=3
SECS=5
BATCHES="1 10 100 1000 8190"
RATES="5000 10000 25000 50000 75000 100000"
OPEN_BATCH=100
PLOT_ONLY=0
RESULTS=$ROOT/bench/results

while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --connect) CONNECT=$2; shift 2 ;;
    --label) LABEL=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --batches) BATCHES=${2//,/ }; shift 2 ;;
    --rates) RATES=${2//,/ }; shift 2 ;;
    --open-batch) OPEN_BATCH=$2; shift 2 ;;
    --plot-only) PLOT_ONLY=1; shift ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
if [ -z "$LABEL" ]; then
    if [ -n "$CONNECT" ]; then LABEL="cluster at $CONNECT"; else LABEL="1 shard"; fi
fi
mkdir -p "$RESULTS"
RLBENCH=$BUILD/bench/rlbench
SHARD=$BUILD/shard/shard

if ! command -v gnuplot >/dev/null; then
    echo "plot.sh: installing gnuplot-nox" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi

# One rlbench run; prints its JSON line. Target: --connect or a fresh shard.
rl () {
    local target
    if [ -n "$CONNECT" ]; then target=(--connect "$CONNECT");
    else target=(--spawn-shard "$SHARD" --data "${TMPDIR:-/var/tmp}"); fi
    "$RLBENCH" "${target[@]}" --accounts 10000 --warmup 1 --duration "$SECS" \
        --probe-writes 50 --quiet --json "$@"
}

# Median of the given fields over R JSON lines on stdin.
med () {
    python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
out = []
for f in sys.argv[1:]:
    v = rows
    for k in f.split("."):
        v = [x[k] for x in v]
    out.append("%g" % statistics.median(float(x) for x in v))
print(" ".join(out))' "$@"
}

if [ "$PLOT_ONLY" = 0 ]; then
    command -v "$RLBENCH" >/dev/null || { echo "plot.sh: build $RLBENCH first" >&2; exit 1; }
    DUR=$(rl --batch 1 --count 1 --warmup 0 --no-check | python3 -c 'import json,sys; print(json.load(sys.stdin)["durability"])')
    {
        echo "# ringledger closed loop, $LABEL, durability $DUR, 1 connection, window 4, 10000 accounts"
        echo "# medians of $RUNS runs of $SECS s; columns: batch transfers_per_s p50_ms p99_ms"
    } >"$RESULTS/throughput_vs_batch.dat"
    for b in $BATCHES; do
        : >"$RESULTS/.runs"
        for _ in $(seq 1 "$RUNS"); do rl --batch "$b" --window 4 >>"$RESULTS/.runs"; done
        line="$b $(med transfers_per_s latency_ms.p50 latency_ms.p99 <"$RESULTS/.runs")"
        echo "$line" | tee -a "$RESULTS/throughput_vs_batch.dat"
    done
    {
        echo "# ringledger open loop, $LABEL, durability $DUR, Poisson arrivals in batches of $OPEN_BATCH, 1 connection, window 256"
        echo "# medians of $RUNS runs of $SECS s; latency from the intended send time"
        echo "# columns: offered_rate sent_per_s transfers_per_s p50_ms p99_ms p999_ms lag_p99_ms valid_runs"
    } >"$RESULTS/latency_vs_load.dat"
    for r in $RATES; do
        : >"$RESULTS/.runs"
        for _ in $(seq 1 "$RUNS"); do
            rl --mode open --rate "$r" --batch "$OPEN_BATCH" >>"$RESULTS/.runs"
        done
        valid=$(python3 -c 'import json,sys; print(sum(json.loads(l)["valid"] for l in sys.stdin if l.strip()))' <"$RESULTS/.runs")
        line="$r $(med sent_per_s transfers_per_s latency_ms.p50 latency_ms.p99 latency_ms.p999 lag_ms_p99 <"$RESULTS/.runs") $valid/$RUNS"
        echo "$line" | tee -a "$RESULTS/latency_vs_load.dat"
    done
    rm -f "$RESULTS/.runs"
fi

TITLE1=$(sed -n '1s/^# //p' "$RESULTS/throughput_vs_batch.dat")
TITLE2=$(sed -n '1s/^# //p' "$RESULTS/latency_vs_load.dat")
gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced font ",10"
set output "$RESULTS/throughput_vs_batch.png"
set title "$TITLE1"
set logscale x 10
set xlabel "transfers per request (batch)"
set ylabel "transfers/s (ok, median)"
set grid
set key top left
set format y "%.0f"
plot "$RESULTS/throughput_vs_batch.dat" using 1:2 with linespoints lw 2 pt 7 title "ringledger", \
     "" using 1:2:(sprintf("%.0f", \$2)) with labels offset 0,1 notitle
set output "$RESULTS/latency_vs_load.png"
set title "$TITLE2"
unset logscale x
set logscale y 10
set xlabel "offered load (transfers/s)"
set ylabel "request latency (ms, from intended send time)"
set format y "%g"
set key top left
plot "$RESULTS/latency_vs_load.dat" using 1:4 with linespoints lw 2 pt 7 title "p50", \
     "" using 1:5 with linespoints lw 2 pt 5 title "p99"
GP
echo "plot.sh: wrote $RESULTS/throughput_vs_batch.png and $RESULTS/latency_vs_load.png" >&2
