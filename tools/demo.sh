#!/bin/sh
# demo.sh BUILD_DIR: the main job of `./dev.sh run`: the ring planner on the
# sample 4-shard ring (what moves when a fifth shard joins). Later steps
# start a local cluster here.
set -eu
BUILD=${1:?usage: demo.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$ROOT/var"
echo "== ring planner: add shard s5 to the sample ring (tools/sample.ring)"
"$BUILD/tools/rebalance" plan --ring "$ROOT/tools/sample.ring" \
    --add s5=tcp://127.0.0.1:7105 --out "$ROOT/var/demo-proposed.ring"
echo "(proposed ring written to var/demo-proposed.ring)"
