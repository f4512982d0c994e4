#!/bin/sh
# pending_bench.sh [--smoke] [BUILD_DIR] [ROUNDS] [SECONDS]: pending
# transfers beside plain transfers on a local cluster of 4 shards and a
# router (tools/cluster.sh: CURVE, WAL synced), uniform workload, closed
# loop, batch 100, window 4, 10,000 accounts. A is rlbench with
# `--transfer-pending 20` (20% of the new transfers pending, cross-shard
# ones included, each posted or voided by a later request), B the same
# without it. They run in turn on one cluster, A B A B ..., ROUNDS pairs
# (default 5) of SECONDS measured (default 5, after 1 s of warm-up), each
# run with a seed of its own (its own accounts and ids). Prints each run,
# then the medians of records/s (every record applied: transfers, pending
# transfers, posts, voids), p50 and p99 of the request latency, the median
# of the pair ratios A/B with their range, and the load average before and
# after. Exit 1 when a run fails or its conservation check does not pass.
#
#   bench/pending_bench.sh build 5 5
#   bench/pending_bench.sh --smoke build     # 1 round of 1 s, 2,000 accounts
#
# RL_BENCH_PORTS=LO-HI: the ports the cluster may take (20000-60000).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then
    SMOKE=1
    shift
fi
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ROUNDS=${2:-5}
SECONDS_RUN=${3:-5}
ACCOUNTS=10000
WARMUP=1
PENDING=20
if [ "$SMOKE" = 1 ]; then
    ROUNDS=1 SECONDS_RUN=1 ACCOUNTS=2000 WARMUP=0.5
fi
case "$ROUNDS" in '' | *[!0-9]*) echo "pending_bench.sh: ROUNDS must be a number" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] || { echo "pending_bench.sh: ROUNDS must be at least 1" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rl-pending-bench-XXXXXX")
CLUSTER=$WORK/cluster
cleanup () {
    "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# SIGKILL (ctest's answer to a test past its TIMEOUT) runs no trap, and the
# cluster's processes are daemons: a detached watcher stops the cluster
# once this script is gone. The outer subshell exits at once, so the
# watcher is nobody's child and outlives a kill of this script's tree.
( (while kill -0 $$ 2>/dev/null; do sleep 1; done
   [ -d "$CLUSTER" ] && "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER"
   rm -rf "$WORK") </dev/null >/dev/null 2>&1 & )

# A base port with the next 4 free too (router on P, shards on P+1..P+4).
free_port () {
    python3 -c '
import os, random, socket
lo, hi = (int(x) for x in os.environ.get("RL_BENCH_PORTS", "20000-60000").split("-"))
for _ in range(200):
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

# A port found free may be taken before the shards bind it: try again.
started=0
for attempt in 1 2 3; do
    PORT=$(free_port)
    if RL_LOG_LEVEL=warn "$ROOT/tools/cluster.sh" start --dir "$CLUSTER" --base-port "$PORT" \
        --build "$BUILD" >"$WORK/cluster.out" 2>&1; then
        started=1
        break
    fi
    "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$CLUSTER"
done
if [ "$started" != 1 ]; then
    echo "pending_bench.sh: the cluster did not start (3 attempts):" >&2
    tail -n 5 "$WORK/cluster.out" >&2
    exit 1
fi

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# run NAME SEED [rlbench options]: one run, its JSON appended to $WORK/NAME.json.
run () {
    name=$1 seed=$2
    shift 2
    if ! "$BUILD/bench/rlbench" --connect "tcp://127.0.0.1:$PORT" \
        --cert "$CLUSTER/keys/private/client.key_secret" \
        --server-key "$CLUSTER/keys/router/router.key" --accounts "$ACCOUNTS" --batch 100 \
        --window 4 --connections 1 --warmup "$WARMUP" --duration "$SECONDS_RUN" \
        --seed "$seed" --quiet --json "$@" >"$WORK/run.json" 2>"$WORK/run.err"; then
        cat "$WORK/run.err" "$WORK/run.json" >&2
        echo "pending_bench.sh: run $name (seed $seed) failed" >&2
        exit 1
    fi
    cat "$WORK/run.json" >>"$WORK/$name.json"
}
i=1
while [ "$i" -le "$ROUNDS" ]; do
    run A $((1000 + 2 * i)) --transfer-pending "$PENDING"
    run B $((1001 + 2 * i))
    i=$((i + 1))
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$WORK/A.json" "$WORK/B.json" "$LOAD0" "$LOAD1" "$PENDING" "$SECONDS_RUN" "$ACCOUNTS" <<'EOF'
import json, statistics, sys

def runs(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

a, b = runs(sys.argv[1]), runs(sys.argv[2])
load0, load1, pending, secs, accounts = sys.argv[3:8]
bad = [r for r in a + b if r["check"] != "passed"]
print("ringledger pending transfers: 4 shards + router, uniform, closed loop, batch 100, "
      "window 4, %s accounts, %s s a run, %d pair(s), A --transfer-pending %s, B plain; "
      "load average %s -> %s" % (accounts, secs, len(a), pending, load0, load1))
for k, (ra, rb) in enumerate(zip(a, b), 1):
    for name, r in (("A", ra), ("B", rb)):
        print("pair %d %s: %.0f records/s, p50 %.2f ms, p99 %.2f ms, cross-shard %.2f, "
              "pending %d authorised (%d cross-shard), %d posted, %d voided, check %s"
              % (k, name, r["transfers_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"],
                 r["cross_fraction"] or 0, r["pending_authorised"], r["pending_cross_shard"],
                 r["pending_posted"], r["pending_voided"], r["check"]))
med = lambda rs, f: statistics.median(f(r) for r in rs)
ratios = [ra["transfers_per_s"] / rb["transfers_per_s"] for ra, rb in zip(a, b)
          if rb["transfers_per_s"] > 0]
print("| run | records/s (median of %d) | p50 ms | p99 ms |" % len(a))
print("|---|---|---|---|")
for name, rs in (("B: plain transfers", b), ("A: `--transfer-pending %s`" % pending, a)):
    print("| %s | %s | %.2f | %.1f |"
          % (name, format(round(med(rs, lambda r: r["transfers_per_s"])), ","),
             med(rs, lambda r: r["latency_ms"]["p50"]), med(rs, lambda r: r["latency_ms"]["p99"])))
if ratios:
    print("| A/B (median of the %d pair ratios) | %.2f (%.2f .. %.2f) | | |"
          % (len(ratios), statistics.median(ratios), min(ratios), max(ratios)))
if bad:
    print("pending_bench.sh: %d run(s) did not pass the check" % len(bad))
    sys.exit(1)
EOF
