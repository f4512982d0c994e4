#!/bin/sh
# demo.sh BUILD_DIR: the main job of `./dev.sh run`.
#
# 1. The ring planner on the sample 4-shard ring: what moves when a fifth
#    shard joins.
# 2. A local cluster (tools/cluster.sh: 4 shards and a router on 127.0.0.1,
#    data under var/cluster, WAL synced), driven step by step with rlctl:
#    accounts, funding, transfers (one refused by a balance limit, one
#    retried), payment flows (an authorisation captured, one voided,
#    linked chains on one shard and across shards, each once applied and
#    once failed whole: docs/payments.md),
#    balances, history, cluster status.
# 3. A short benchmark through the router (bench/rlbench), watched live with
#    `rlctl top` for 3 s, or the single-shard benchmark when rlbench is not
#    built.
# The cluster is left running; `tools/cluster.sh stop` stops it.
#
# Running it again is fine: the accounts exist already (rlctl says
# `exists`) and every run uses fresh transfer ids (from the clock).
set -eu
BUILD=${1:?usage: demo.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
ROUTER=tcp://127.0.0.1:7100
RLCTL="$BUILD/tools/rlctl --connect $ROUTER"
LEDGER=1

step () { printf '\n== %s\n' "$*"; }

# run ARGS...: prints the rlctl command as a user would type it, then runs it.
# A failed record is part of the demo: its exit code 1 does not stop us.
run () {
    printf '$ rlctl %s\n' "$*"
    $RLCTL "$@" || true
}

step "ring planner: add shard s5 to the sample ring (tools/sample.ring)"
mkdir -p "$ROOT/var"
"$BUILD/tools/rebalance" plan --ring "$ROOT/tools/sample.ring" \
    --add s5=tcp://127.0.0.1:7105 --out "$ROOT/var/demo-proposed.ring" 2>&1 || exit 1
echo "(proposed ring written to var/demo-proposed.ring)"

if [ ! -x "$BUILD/router/router" ]; then
    step "one shard, same-shard transfers, WAL synced (data in var/demo)"
    echo "(the router is not built, so no cluster: the shard benchmark alone)"
    mkdir -p "$ROOT/var/demo"
    exec "$BUILD/bench/shard_bench" --batches 1,100,8190 --seconds 2 --runs 1 \
        --accounts 10000 --data "$ROOT/var/demo"
fi

step "a local cluster: 4 shards and a router (tools/cluster.sh start)"
# Metrics over HTTP on 127.0.0.1: the router on 9100, the shards on 9101..
# (docs/metrics.md).
"$ROOT/tools/cluster.sh" start --build "$BUILD" --metrics-port 9100
# The cluster speaks CURVE (docs/security.md): rlctl and rlbench use the
# operator key cluster.sh made, and the router's public key.
if [ -f "$ROOT/var/cluster/keys/private/admin.key_secret" ]; then
    export RL_CERT="$ROOT/var/cluster/keys/private/admin.key_secret"
    export RL_SERVER_KEY="$ROOT/var/cluster/keys/router/router.key"
fi

# Pick the accounts: alice, bob and the operator that funds them live on one
# shard; carol lives on another, so alice -> carol crosses shards.
$RLCTL locate $(seq 1 60) $(seq 101 160) >"$ROOT/var/demo-locate.txt"
shard_of () { awk -v id="$1" '$1 == id { print $3 }' "$ROOT/var/demo-locate.txt"; }
ALICE=101
HOME_SHARD=$(shard_of $ALICE)
OPERATOR=$(awk -v s="$HOME_SHARD" '$1 + 0 >= 1 && $1 + 0 <= 60 && $3 == s { print $1; exit }' \
    "$ROOT/var/demo-locate.txt")
BOB=$(awk -v s="$HOME_SHARD" '$1 + 0 > 101 && $3 == s { print $1; exit }' "$ROOT/var/demo-locate.txt")
CAROL=$(awk -v s="$HOME_SHARD" '$1 + 0 > 101 && $3 != s && $3 != "" { print $1; exit }' \
    "$ROOT/var/demo-locate.txt")
if [ -z "$OPERATOR" ] || [ -z "$BOB" ] || [ -z "$CAROL" ]; then
    echo "demo: could not place the demo accounts on the ring" >&2
    exit 1
fi

step "where the accounts live (rlctl locate: XXH3 of the id on the ring)"
run locate "$OPERATOR" "$ALICE" "$BOB" "$CAROL"

step "an operator account (no balance limit: money enters the ledger through it)"
run create-account "$OPERATOR" --ledger $LEDGER --code 1

step "customer accounts alice=$ALICE, bob=$BOB, carol=$CAROL (they cannot go negative)"
run create-account "$ALICE" "$BOB" "$CAROL" --ledger $LEDGER --code 2 \
    --flags debits-must-not-exceed-credits

RUN=$(date +%s)
T=$((RUN * 100))
step "fund alice and bob from the operator (transfer ids $((T + 1))... are new on every run)"
run transfer $((T + 1)) "$OPERATOR" "$ALICE" 10000 --ledger $LEDGER --code 1
run transfer $((T + 2)) "$OPERATOR" "$BOB" 5000 --ledger $LEDGER --code 1

step "alice pays bob 2500 (same shard: one atomic write)"
run transfer $((T + 3)) "$ALICE" "$BOB" 2500 --ledger $LEDGER --code 1

step "bob tries to pay alice 1000000: more than he has"
run transfer $((T + 4)) "$BOB" "$ALICE" 1000000 --ledger $LEDGER --code 1

step "the client did not hear the answer to $((T + 3)) and retries it with the SAME id"
run transfer $((T + 3)) "$ALICE" "$BOB" 2500 --ledger $LEDGER --code 1

step "alice pays carol 700: carol lives on another shard"
run transfer $((T + 5)) "$ALICE" "$CAROL" 700 --ledger $LEDGER --code 1

step "a card payment: alice authorises 3000 to bob (pending: reserved, not moved; expires in 1 h)"
run transfer $((T + 6)) "$ALICE" "$BOB" 3000 --ledger $LEDGER --code 1 --pending --timeout 3600
run balance "$ALICE" "$BOB"

step "the merchant captures 2000 of it (post); the other 1000 goes back to alice"
run post $((T + 7)) $((T + 6)) "$ALICE" 2000

step "another authorisation of 500, released (void): nothing moves"
run transfer $((T + 8)) "$ALICE" "$BOB" 500 --ledger $LEDGER --code 1 --pending
run void $((T + 9)) $((T + 8)) "$ALICE"

step "a payment with a fee, all or nothing (a linked chain; its accounts on one shard):"
echo "alice pays bob 1000 and the operator a fee of 50"
run transfer $((T + 10)) "$ALICE" "$BOB" 1000 $((T + 11)) "$ALICE" "$OPERATOR" 50 \
    --ledger $LEDGER --code 1 --linked

step "the same with a fee bob cannot pay: the chain fails whole, nothing moves, no id burned"
run transfer $((T + 12)) "$BOB" "$ALICE" 100 $((T + 13)) "$BOB" "$OPERATOR" 1000000 \
    --ledger $LEDGER --code 1 --linked

step "alice pays carol 400 with a fee of 20, all or nothing: a chain across shards"
echo "(carol's shard prepares her credit; alice's shard decides both members in one commit)"
run transfer $((T + 14)) "$ALICE" "$CAROL" 400 $((T + 15)) "$ALICE" "$OPERATOR" 20 \
    --ledger $LEDGER --code 1 --linked

step "the same chain across shards with a fee alice cannot pay: nothing moves on either shard"
run transfer $((T + 16)) "$ALICE" "$CAROL" 400 $((T + 17)) "$ALICE" "$OPERATOR" 1000000 \
    --ledger $LEDGER --code 1 --linked

step "balances (credits - debits; the operator's is negative: it is where money entered)"
run balance "$OPERATOR" "$ALICE" "$BOB" "$CAROL"

step "alice's history, newest first"
run history "$ALICE" --reverse --limit 10

step "cluster status: every shard of the ring, asked directly"
run status

if [ -x "$BUILD/bench/rlbench" ]; then
    step "benchmark: transfers in batches of 100 through the router for 5 s (bench/rlbench)"
    echo "(fresh accounts in ledger 2 on every run; WAL synced; ends with its conservation check)"
    "$BUILD/bench/rlbench" --connect $ROUTER --ledger 2 --accounts 10000 --batch 100 \
        --connections 2 --window 4 --warmup 1 --duration 5 >"$ROOT/var/demo-rlbench.txt" 2>&1 &
    BENCH=$!
    sleep 2
    step "the cluster under that load, live: rlctl top (3 views, one a second)"
    echo "(piped here, so each view prints under the last; on a terminal top redraws"
    echo " the screen every second until q or Ctrl-C; --json: one object a second)"
    printf '$ rlctl top --count 3\n'
    $RLCTL top --count 3 | cat || true
    step "the benchmark's report"
    wait $BENCH || echo "demo: rlbench failed" >&2
    cat "$ROOT/var/demo-rlbench.txt"
else
    step "benchmark: one shard, same-shard transfers, WAL synced (data in var/demo)"
    mkdir -p "$ROOT/var/demo"
    "$BUILD/bench/shard_bench" --batches 1,100,8190 --seconds 2 --runs 1 --accounts 10000 \
        --data "$ROOT/var/demo"
fi

step "the cluster is still running"
case "$BUILD" in "$ROOT"/*) SHOWN=${BUILD#"$ROOT"/} ;; *) SHOWN=$BUILD ;; esac
echo "try:  export RL_CERT=var/cluster/keys/private/admin.key_secret" \
    "RL_SERVER_KEY=var/cluster/keys/router/router.key"
echo "      $SHOWN/tools/rlctl status        (docs/cli.md, docs/security.md)"
echo "      $SHOWN/tools/rlctl top           (a live view; q quits)"
MPORT=$(sed -n 's/^METRICS_PORT=\([0-9][0-9]*\)$/\1/p' "$ROOT/var/cluster/cluster.conf" 2>/dev/null || true)
if [ -n "$MPORT" ]; then
    echo "metrics: curl http://127.0.0.1:$MPORT/metrics   (router; shards on $((MPORT + 1)).." \
        "$((MPORT + 4)); /healthz, /readyz; docs/metrics.md)"
else
    echo "metrics: off (var/cluster predates them: remove it to get them; docs/metrics.md)"
fi
echo "stop: tools/cluster.sh stop           (data kept in var/cluster; docs/cluster.md)"
