#!/bin/sh
# demo.sh BUILD_DIR: the main job of `./dev.sh run`.
#
# 1. The ring planner on the sample 4-shard ring: what moves when a fifth
#    shard joins.
# 2. A real shard process on 127.0.0.1 (data under ./var/demo, WAL synced),
#    driven by the shard benchmark for a few seconds: accounts created,
#    transfers in batches of 1, 100 and 8190, throughput and latency
#    printed next to the raw RocksDB ceiling.
#
# The router, the client CLI and the local cluster launcher replace step 2
# with a whole cluster (docs/ issue plan in README).
set -eu
BUILD=${1:?usage: demo.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

echo "== ring planner: add shard s5 to the sample ring (tools/sample.ring)"
"$BUILD/tools/rebalance" plan --ring "$ROOT/tools/sample.ring" \
    --add s5=tcp://127.0.0.1:7105 --out "$ROOT/var/demo-proposed.ring" 2>&1 || exit 1
echo "(proposed ring written to var/demo-proposed.ring)"
echo
echo "== one shard, same-shard transfers, WAL synced (data in var/demo)"
mkdir -p "$ROOT/var/demo"
"$BUILD/bench/shard_bench" --batches 1,100,8190 --seconds 2 --runs 1 --accounts 10000 \
    --data "$ROOT/var/demo"
