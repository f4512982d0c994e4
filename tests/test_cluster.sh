#!/bin/sh
# test_cluster.sh BUILD_DIR: tools/cluster.sh and rlctl end to end.
#
# Starts a 4-shard cluster with a router in a private directory on free
# ports, drives it with rlctl (tables and --json), checks exit codes (0 ok,
# 1 a record failed, 2 usage), stops it, starts it again and checks that
# the data is still there, and ends each phase with the conservation check
# (inline Python below, fed by rlctl --json): sums of debits and credits,
# balances against the model built from the ok results, history sums
# against balances. Exit 77 (skipped) when the router is not built.
set -u
BUILD=${1:?usage: test_cluster.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
SHARDS=4
START_ATTEMPTS=3
CALL_TIMEOUT_MS=5000

if [ ! -x "$BUILD/router/router" ]; then
    echo "SKIPPED: $BUILD/router/router is not built"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rl-test_cluster_sh-XXXXXX")
DIR=$TMP/cluster
FAILED=0
PASSED=0
WATCHDOG=""

cleanup () {
    [ -d "$DIR" ] && "$ROOT/tools/cluster.sh" stop --dir "$DIR" --wait-s 10 >/dev/null 2>&1
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
    if [ "$FAILED" -ne 0 ] || [ "${RL_KEEP_TEST_DIRS:-0}" = 1 ]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pass () { PASSED=$((PASSED + 1)); echo "ok      $*"; }
fail () {
    FAILED=$((FAILED + 1))
    echo "FAILED  $*"
    echo "$PASSED passed, $FAILED failed"
    for f in "$DIR"/*.log; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    exit 1
}

# A base port P with P..P+SHARDS free on 127.0.0.1.
free_base_port () {
    $PY - "$SHARDS" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 32000)  # below the ephemeral range (common/proc.h)
    socks = []
    try:
        for p in range(base, base + n + 1):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
sys.exit(1)
EOF
}

# expect_rc WANT DESCRIPTION COMMAND...: runs it, output in $TMP/out.
expect_rc () {
    want=$1; what=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "--- stdout:"; cat "$TMP/out"; echo "--- stderr:"; cat "$TMP/err"
        fail "$what: exit $rc, expected $want"
    fi
    pass "$what"
}

expect_out () {  # expect_out PATTERN DESCRIPTION: grep -E in the last output
    grep -Eq "$1" "$TMP/out" || { cat "$TMP/out"; fail "$2: no '$1' in the output"; }
}

json_get () {  # json_get EXPR: evaluates EXPR on j = the last output as JSON
    $PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$TMP/out"
}

# 1. start on free ports ---------------------------------------------------------
started=0
for _ in $(seq 1 $START_ATTEMPTS); do
    BASE=$(free_base_port) || fail "no free ports"
    if "$ROOT/tools/cluster.sh" start --dir "$DIR" --shards $SHARDS --base-port "$BASE" \
        --build "$BUILD" --wait-s 60 >"$TMP/start.out" 2>&1; then
        started=1
        break
    fi
    cat "$TMP/start.out"
    "$ROOT/tools/cluster.sh" stop --dir "$DIR" >/dev/null 2>&1
    rm -rf "$DIR"
done
[ $started = 1 ] || fail "cluster.sh start (3 attempts)"
pass "cluster.sh start: $SHARDS shards and a router from port $BASE"
# If this script is killed without running its traps, stop the cluster anyway.
( parent=$$
  while kill -0 "$parent" 2>/dev/null; do sleep 1; done
  "$ROOT/tools/cluster.sh" stop --dir "$DIR" >/dev/null 2>&1 ) >/dev/null 2>&1 &
WATCHDOG=$!

RLCTL="$BUILD/tools/rlctl --connect tcp://127.0.0.1:$BASE --timeout-ms $CALL_TIMEOUT_MS"
# The cluster runs with CURVE: rlctl speaks as the operator key cluster.sh made.
export RL_CERT="$DIR/keys/private/admin.key_secret" RL_SERVER_KEY="$DIR/keys/router/router.key"
TRANSFERS=$TMP/transfers.txt
: >"$TRANSFERS"

# 2. status, ring, usage -----------------------------------------------------------
expect_rc 0 "cluster.sh status" "$ROOT/tools/cluster.sh" status --dir "$DIR" --build "$BUILD"
expect_out "^router: running" "cluster.sh status"
expect_rc 0 "rlctl status" $RLCTL status
expect_out "$SHARDS shards, 0 down" "rlctl status"
expect_out "state alarms epoch" "rlctl status"
expect_out "wal syncs" "rlctl status"
expect_rc 0 "rlctl status --json" $RLCTL --json status
[ "$(json_get 'len([s for s in j["shards"] if s["up"]])')" = $SHARDS ] || fail "status --json: shards up"
# Every counter of the status record, alarms first (docs/cli.md).
[ "$(json_get 'all(list(s)[3:5] == ["alarms", "reported_name"] and {"state", "commits", "inflight", "wrong_shard", "ring_shards", "checkpoints", "store_keys_written", "store_bytes_written", "wal_bytes", "wal_syncs", "pid", "uptime_ms", "last_timestamp", "deadline_ms", "prepare_timeout_ms", "arcs_unreceived", "turn_p99_us", "in_doubt_oldest_ms", "epoch_jumps_refused"} <= set(s) and s["deadline_ms"] > s["prepare_timeout_ms"] > 0 for s in j["shards"]) and j["router"]["deadline_errors"] == 0 and j["router"]["deadline_ms"] > 0')" = True ] \
    || fail "status --json: every counter of the status record, alarms first"
# Security (docs/security.md): every process runs CURVE; a client without a
# key fails at the handshake, and the failure is counted.
[ "$(json_get 'all(s["security"] == "curve" and s["keys"] >= 7 for s in j["shards"]) and j["router"]["security"] == "curve"')" = True ] \
    || fail "status --json: every process runs CURVE"
[ "$(stat -c %a "$DIR/keys/private/admin.key_secret")" = 600 ] || fail "secret key not at mode 0600"
expect_rc 1 "rlctl --insecure against a secure router" $BUILD/tools/rlctl \
    --connect "tcp://127.0.0.1:$BASE" --timeout-ms 300 --insecure status
grep -q "cannot reach" "$TMP/err" || fail "a plain client is not served"
expect_rc 0 "rlctl status --json" $RLCTL --json status
[ "$(json_get 'j["router"]["handshakes_refused"] >= 1')" = True ] \
    || fail "status --json: the refused handshake is counted"
# A wrong server key and a key the cluster does not know are named as such,
# not as a cluster that is down (docs/cli.md, "Results, errors and exit codes").
expect_rc 1 "rlctl with a shard's key for the router" env RL_SERVER_KEY="$DIR/keys/shard/s1.key" \
    $RLCTL --timeout-ms 500 status
grep -q "the CURVE handshake failed: the public key given" "$TMP/err" \
    || fail "a wrong server key is not named: $(cat "$TMP/err")"
expect_rc 0 "rlctl keygen of a stranger" $BUILD/tools/rlctl keygen --role admin --name stranger \
    --dir "$TMP/stranger"
expect_rc 1 "rlctl with a key the cluster does not know" \
    env RL_CERT="$TMP/stranger/private/stranger.key_secret" $RLCTL --timeout-ms 500 --json status
grep -q "refused this client's key" "$TMP/err" || fail "a refused key is not named: $(cat "$TMP/err")"
[ "$(json_get 'j["error"]')" = key_refused ] || fail "status --json: error is not key_refused"
# A second process on a running shard's data directory is refused, and
# says why (RocksDB's own words name only its LOCK file).
expect_rc 1 "a second shard on s1's data directory" $BUILD/shard/shard --name s1 \
    --bind "ipc://$TMP/second.ipc" --data "$DIR/s1" --insecure
grep -q "another process has it open (is this shard already running?" "$TMP/out" "$TMP/err" \
    || fail "a second start does not say why: $(cat "$TMP/out" "$TMP/err")"
expect_rc 0 "rlctl ring" $RLCTL ring
expect_out "^ring epoch 1: $SHARDS shards" "rlctl ring"
expect_rc 0 "rlctl ring --json" $RLCTL --json ring
[ "$(json_get 'round(sum(s["ownership"] for s in j["shards"]), 6)')" = 1.0 ] || fail "ownership sums to 1"
expect_rc 0 "rlctl ring --text" $RLCTL ring --text
cmp -s "$TMP/out" "$DIR/ring" || fail "ring --text differs from the ring file"
expect_rc 2 "usage: transfer with too few arguments" $RLCTL transfer 1 2
expect_rc 2 "usage: unknown option" $RLCTL --bogus status
expect_rc 2 "usage: bad id" $RLCTL balance not-an-id
expect_rc 2 "usage: option of another command" $RLCTL balance 1 --ledger 1
expect_rc 2 "usage: missing --ledger" $RLCTL create-account 5 --code 1
expect_rc 2 "usage: no command" $RLCTL

# 3. accounts: one operator per shard, customers that cannot go negative ------------
OPERATORS=$(seq 1001 1032)
CUSTOMERS=$(seq 2001 2016)
# shellcheck disable=SC2086
expect_rc 0 "create operators" $RLCTL --json create-account $OPERATORS --ledger 1 --code 1
[ "$(json_get 'all(r["result"] == "ok" for r in j["results"])')" = True ] || fail "operators ok"
# shellcheck disable=SC2086
expect_rc 0 "create customers" $RLCTL create-account $CUSTOMERS --ledger 1 --code 2 \
    --flags debits-must-not-exceed-credits
expect_out "^2016 +ok" "create customers"
expect_rc 0 "create again: exists" $RLCTL create-account 1001 --ledger 1 --code 1
expect_out "^1001 +exists" "create again"
expect_rc 1 "create with other fields" $RLCTL create-account 1001 --ledger 1 --code 9
expect_out "exists_with_different_code" "create with other fields"
# shellcheck disable=SC2086
expect_rc 0 "locate" $RLCTL --json locate $OPERATORS $CUSTOMERS
cp "$TMP/out" "$TMP/locate.json"
# For each customer: the operator on its shard; pairs of customers on one shard.
$PY - "$TMP/locate.json" >"$TMP/plan" <<'EOF' || fail "an operator on every shard"
import json, sys
accounts = json.load(open(sys.argv[1]))["accounts"]
ops, customers = {}, {}
for a in accounts:
    i = int(a["id"])
    if i < 2000:
        ops.setdefault(a["shard"], i)
    else:
        customers.setdefault(a["shard"], []).append(i)
for shard, cs in customers.items():
    if shard not in ops:
        sys.exit("no operator on %s" % shard)
    for c in cs:
        print("fund", ops[shard], c)
    if len(cs) >= 2:
        print("pair", cs[0], cs[1])
shards = sorted(customers)
print("cross", customers[shards[0]][0], customers[shards[-1]][-1])
EOF

# 4. transfers -----------------------------------------------------------------------
RUN=$(date +%s)
N=0
# xfer WANT_RC EXPECTED DEBIT CREDIT AMOUNT [ID]: one transfer, its result
# appended to the model file.
xfer () {
    want=$1; expected=$2; debit=$3; credit=$4; amount=$5
    if [ $# -ge 6 ]; then id=$6; else N=$((N + 1)); id=$((RUN * 1000 + N)); fi
    expect_rc "$want" "transfer $id $debit -> $credit $amount: $expected" \
        $RLCTL --json transfer "$id" "$debit" "$credit" "$amount" --ledger 1 --code 1
    res=$(json_get 'j["results"][0]["result"]')
    echo "$id $debit $credit $amount $res" >>"$TRANSFERS"
    case "|$expected|" in
    *"|$res|"*) ;;
    *) fail "transfer $id: $res, expected $expected" ;;
    esac
    LAST_ID=$id
}
while read -r kind a b; do
    case "$kind" in
    fund) xfer 0 ok "$a" "$b" 1000 ;;
    pair)
        xfer 0 ok "$a" "$b" 250
        first=$LAST_ID
        xfer 0 exists "$a" "$b" 250 "$first"
        xfer 1 exceeds_credits "$b" "$a" 1000000
        burned=$LAST_ID
        xfer 1 exceeds_credits "$b" "$a" 1000000 "$burned"
        ;;
    cross)
        # ok once cross-shard transfers are served; not_supported before.
        out_rc=0
        $RLCTL --json transfer $((RUN * 1000 + 900)) "$a" "$b" 10 --ledger 1 --code 1 \
            >"$TMP/out" 2>"$TMP/err" || out_rc=$?
        res=$(json_get 'j["results"][0]["result"]')
        echo "$((RUN * 1000 + 900)) $a $b 10 $res" >>"$TRANSFERS"
        case "$res/$out_rc" in
        ok/0|not_supported/1) pass "cross-shard transfer $a -> $b: $res" ;;
        *) fail "cross-shard transfer: $res, exit $out_rc" ;;
        esac
        ;;
    esac
done <"$TMP/plan"
read -r _ FIRST_DEBIT _ <"$TMP/plan"
expect_rc 0 "balance (table)" $RLCTL balance 2001 1001
expect_out "^2001 " "balance table"
expect_rc 1 "balance of a missing account" $RLCTL balance 9999
expect_out "not found" "balance of a missing account"
expect_rc 0 "history (table)" $RLCTL history "$FIRST_DEBIT" --limit 5
expect_rc 0 "history --json --debits" $RLCTL --json history "$FIRST_DEBIT" --debits
[ "$(json_get 'all(t["direction"] == "debit" for t in j["transfers"]) and len(j["transfers"]) > 0')" = True ] \
    || fail "history --debits"
expect_rc 0 "transfer-get" $RLCTL transfer-get "$((RUN * 1000 + 1))"
expect_rc 1 "transfer-get of a missing id" $RLCTL transfer-get 0x77777777777777777777
expect_out "not found" "transfer-get of a missing id"

# 5. conservation -----------------------------------------------------------------------
# conservation LABEL: waits until no shard has live attempts, then sums,
# model and history, through rlctl --json.
conservation () {
    # shellcheck disable=SC2086
    $PY - "$BUILD/tools/rlctl" "tcp://127.0.0.1:$BASE" "$TRANSFERS" $OPERATORS $CUSTOMERS <<'EOF' \
        >"$TMP/conservation.out" 2>&1 || { cat "$TMP/conservation.out"; fail "conservation: $1"; }
import json, subprocess, sys, time
rlctl, connect, transfers, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def ctl(*args):
    out = subprocess.run([rlctl, "--connect", connect, "--timeout-ms", "5000", "--json"]
                         + list(args), capture_output=True, text=True, timeout=30)
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else None

deadline, pause = time.monotonic() + 10, 0.001
while True:
    rc, status = ctl("status")
    if rc == 0 and all(s["inflight"] == 0 and s["in_doubt"] == 0 for s in status["shards"]):
        break
    if time.monotonic() > deadline:
        sys.exit("shards still have live two-phase attempts: %s" % status)
    time.sleep(pause)
    pause = min(pause * 2, 0.05)
model, ok = {}, 0
for line in open(transfers):
    tid, debit, credit, amount, result = line.split()
    if result == "ok":
        ok += 1
        model.setdefault(debit, [0, 0])[0] += int(amount)
        model.setdefault(credit, [0, 0])[1] += int(amount)
rc, balances = ctl("balance", *ids)
assert rc == 0, "balance exit %d" % rc
sums = [0, 0, 0, 0, 0, 0]
for a in balances["accounts"]:
    assert a["found"], a
    for k, f in enumerate(("debits_posted", "credits_posted", "debits_pending",
                           "credits_pending", "debits_reserved", "credits_reserved")):
        sums[k] += a[f]
    want = model.get(a["id"], [0, 0])
    assert [a["debits_posted"], a["credits_posted"]] == want, (a, want)
    assert a["balance"] == a["credits_posted"] - a["debits_posted"], a
    rc, h = ctl("history", a["id"], "--limit", "8190")
    assert rc == 0, "history exit %d" % rc
    d = sum(t["amount"] for t in h["transfers"] if t["debit_account_id"] == a["id"])
    c = sum(t["amount"] for t in h["transfers"] if t["credit_account_id"] == a["id"])
    assert (d, c) == (a["debits_posted"], a["credits_posted"]), (a["id"], d, c)
assert sums[0] == sums[1] and sums[2] == sums[3] and sums[4] == sums[5], sums
assert sums[0] > 0 and ok >= 16, "only %d ok transfers, %d moved" % (ok, sums[0])
print("conservation: %d accounts, %d ok transfers, %d moved" % (len(ids), ok, sums[0]))
EOF
    pass "conservation $1: $(cat "$TMP/conservation.out")"
}
conservation "after the transfers"
expect_rc 0 "balances before the restart" $RLCTL --json balance 2001 2002 1001
cp "$TMP/out" "$TMP/before.json"

# 6. stop, start again: the data is kept ----------------------------------------------
expect_rc 0 "cluster.sh stop" "$ROOT/tools/cluster.sh" stop --dir "$DIR"
expect_rc 1 "cluster.sh status of a stopped cluster" "$ROOT/tools/cluster.sh" status --dir "$DIR" \
    --build "$BUILD"
expect_rc 1 "rlctl status of a stopped cluster" $BUILD/tools/rlctl \
    --connect "tcp://127.0.0.1:$BASE" --timeout-ms 300 status
[ -s "$TMP/out" ] && fail "rlctl status of a stopped cluster printed a table"
grep -q "cannot reach" "$TMP/err" || fail "the error says the cluster cannot be reached"
expect_rc 0 "cluster.sh start again" "$ROOT/tools/cluster.sh" start --dir "$DIR" \
    --build "$BUILD" --wait-s 60
expect_out "restarting" "start again keeps the ring"
expect_rc 0 "balances after the restart" $RLCTL --json balance 2001 2002 1001
cmp -s "$TMP/out" "$TMP/before.json" || { diff "$TMP/before.json" "$TMP/out"; fail "balances changed"; }
conservation "after the restart"
expect_rc 0 "cluster.sh stop again" "$ROOT/tools/cluster.sh" stop --dir "$DIR"
echo "$PASSED passed, $FAILED failed"
exit 0
