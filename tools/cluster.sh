#!/bin/sh
# cluster.sh: a local ringledger cluster on 127.0.0.1 (docs/cluster.md).
#
#   cluster.sh start  [--shards N] [--dir DIR] [--base-port P] [--build DIR] [--wait-s S]
#                     [--insecure] [--metrics-port M] [--events-port E]
#   cluster.sh stop   [--dir DIR] [--wait-s S]
#   cluster.sh status [--dir DIR] [--build DIR]
#
# start: writes CURVE keys into DIR/keys (rlctl keygen) and DIR/ring with
# `rebalance init --keys` (shards s1..sN at tcp://127.0.0.1:P+1..P+N, each
# with its public key) unless DIR/ring exists, starts every shard and a
# router at tcp://127.0.0.1:P in the background (pid files and logs in DIR),
# then waits until `rlctl status` sees every shard up and the router reaches
# every one of them.
# Every process runs with CURVE and the role key sets of DIR/keys
# (docs/security.md), unless the cluster was created with --insecure.
# --metrics-port M: every process serves /metrics, /healthz and /readyz on
# 127.0.0.1 (docs/metrics.md), the router on M, the shards on M+1..M+N in
# the ring's order; remembered in DIR/cluster.conf (off when never given).
# --events-port E: every shard publishes its change stream's notifications
# (--events-bind, docs/events.md) on tcp://127.0.0.1:E+i-1 for the i-th
# shard of the ring; remembered in DIR/cluster.conf, and listed one
# NAME=ENDPOINT a line in DIR/events (what a consumer subscribes to).
# A restart keeps the data and the ring: the ring file, not --shards, says
# which shards there are, and DIR/cluster.conf remembers the ports.
# stop: SIGTERM to the router and the shards, wait, SIGKILL after a deadline.
# status: which processes are alive, then `rlctl status`.
#
# Defaults: --shards 4, --dir var/cluster, --base-port 7100, --build build
# (the last two relative to the repository), --wait-s 30.
# Exit codes: 0 done (status: everything up), 1 failed (status: something
# is down or not started, or needs an operator: rlctl status's ATTENTION
# lines), 2 usage.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARDS_DEFAULT=4
SHARDS_MAX=64
BASE_PORT_DEFAULT=7100
WAIT_S_DEFAULT=30
POLL_TIMEOUT_MS=500     # one `rlctl status` attempt while waiting for start

usage () {
    cat <<EOF
usage: cluster.sh start  [--shards N] [--dir DIR] [--base-port P] [--build DIR] [--wait-s S]
                         [--insecure] [--metrics-port M] [--events-port E]
       cluster.sh stop   [--dir DIR] [--wait-s S]
       cluster.sh status [--dir DIR] [--build DIR]
defaults: --shards $SHARDS_DEFAULT, --dir var/cluster, --base-port $BASE_PORT_DEFAULT (router;
shards on the next ports), --build build, --wait-s $WAIT_S_DEFAULT; CURVE with keys in
DIR/keys unless --insecure (kept for the life of DIR); --metrics-port M: HTTP metrics
on 127.0.0.1:M (router) and M+1.. (shards), see docs/metrics.md; --events-port E: the
shards' change-stream notifications on tcp://127.0.0.1:E.. (docs/events.md). See docs/cluster.md.
EOF
}

die_usage () {
    echo "cluster.sh: $*" >&2
    echo "(run 'tools/cluster.sh --help' for usage)" >&2
    exit 2
}

fail () {
    echo "cluster.sh: $*" >&2
    exit 1
}

is_number () {
    case "$1" in
    ''|*[!0-9]*) return 1 ;;
    *) return 0 ;;
    esac
}

abspath () {  # abspath PATH: absolute, relative paths taken from the current directory
    case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
    esac
}

# Arguments --------------------------------------------------------------------
cmd=${1:-}
case "$cmd" in
start|stop|status) shift ;;
-h|--help|help) usage; exit 0 ;;
'') usage >&2; exit 2 ;;
*) die_usage "unknown command '$cmd'" ;;
esac

SHARDS=""
DIR=$ROOT/var/cluster
BASE_PORT=""
BUILD=$ROOT/build
WAIT_S=$WAIT_S_DEFAULT
INSECURE_ARG=""
METRICS_PORT_ARG=""
EVENTS_PORT_ARG=""
while [ $# -gt 0 ]; do
    case "$1" in
    --insecure) INSECURE_ARG=1; shift ;;
    --shards|--dir|--base-port|--build|--wait-s|--metrics-port|--events-port)
        [ $# -ge 2 ] || die_usage "option '$1' needs a value"
        opt=$1; val=$2; shift 2
        case "$opt" in
        --shards)
            is_number "$val" && [ "$val" -ge 1 ] && [ "$val" -le $SHARDS_MAX ] \
                || die_usage "--shards '$val': expected 1..$SHARDS_MAX"
            SHARDS=$val ;;
        --dir) DIR=$(abspath "$val") ;;
        --base-port)
            is_number "$val" && [ "$val" -ge 1024 ] && [ "$val" -le 65000 ] \
                || die_usage "--base-port '$val': expected 1024..65000"
            BASE_PORT=$val ;;
        --build) BUILD=$(abspath "$val") ;;
        --metrics-port)
            is_number "$val" && [ "$val" -ge 1024 ] && [ "$val" -le 65000 ] \
                || die_usage "--metrics-port '$val': expected 1024..65000"
            METRICS_PORT_ARG=$val ;;
        --events-port)
            is_number "$val" && [ "$val" -ge 1024 ] && [ "$val" -le 65000 ] \
                || die_usage "--events-port '$val': expected 1024..65000"
            EVENTS_PORT_ARG=$val ;;
        --wait-s)
            is_number "$val" && [ "$val" -ge 1 ] || die_usage "--wait-s '$val': expected seconds"
            WAIT_S=$val ;;
        esac ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
    esac
done

SHARD_BIN=$BUILD/shard/shard
ROUTER_BIN=$BUILD/router/router
RLCTL=$BUILD/tools/rlctl
REBALANCE=$BUILD/tools/rebalance
RING=$DIR/ring
CONF=$DIR/cluster.conf
KEYS=$DIR/keys

# Processes ----------------------------------------------------------------------

# pid_of NAME: the pid in DIR/NAME.pid if that process is alive and is ours
# (its command line names this cluster's directory), else nothing.
pid_of () {
    f=$DIR/$1.pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    is_number "$pid" || return 0
    if kill -0 "$pid" 2>/dev/null; then
        case "$(ps -o args= -p "$pid" 2>/dev/null || true)" in
        *"$DIR"*) echo "$pid" ;;
        esac
    fi
}

# shard_names: s1 s2 ... from the ring file.
shard_names () {
    awk '$1 == "shard" { print $2 }' "$RING"
}

shard_endpoint () {
    awk -v n="$1" '$1 == "shard" && $2 == n { print $3 }' "$RING"
}

router_endpoint () {
    echo "tcp://127.0.0.1:$BASE_PORT"
}

log_tail () {
    echo "--- last lines of $DIR/$1.log:" >&2
    tail -n 15 "$DIR/$1.log" >&2 2>/dev/null || true
}

# spawn NAME PROGRAM ARGS...: in the background, detached from the terminal,
# stdout and stderr appended to DIR/NAME.log, pid in DIR/NAME.pid.
spawn () {
    name=$1; shift
    if command -v setsid >/dev/null 2>&1; then
        setsid "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
    else
        "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
    fi
    echo $! >"$DIR/$name.pid"
}

load_conf () {
    [ -f "$CONF" ] \
        || fail "no cluster in $DIR (no cluster.conf): start one with tools/cluster.sh start"
    INSECURE=""
    METRICS_PORT=""
    EVENTS_PORT=""
    # shellcheck disable=SC1090
    . "$CONF"
    security
}

# security: the arguments of every process, from INSECURE (cluster.conf).
# rlctl speaks as the operator key "admin" to the router.
security () {
    if [ -n "$INSECURE" ]; then
        SEC_ARGS="--insecure"
        RLCTL_SEC="--insecure"
    else
        SEC_ARGS="--keys $KEYS"
        RLCTL_SEC="--cert $KEYS/private/admin.key_secret --server-key $KEYS/router/router.key"
    fi
}

# metrics_port NAME: the HTTP port of the router or a shard ("" when off).
metrics_port () {
    [ -n "${METRICS_PORT:-}" ] || return 0
    if [ "$1" = router ]; then
        echo "$METRICS_PORT"
    else
        echo $((METRICS_PORT + $(shard_names | awk -v n="$1" '$1 == n { print NR }')))
    fi
}

metrics_args () {  # metrics_args NAME: --metrics-bind 127.0.0.1:PORT, or nothing
    port=$(metrics_port "$1")
    [ -n "$port" ] && echo "--metrics-bind 127.0.0.1:$port"
    return 0
}

# events_endpoint NAME: the shard's --events-bind ("" when off).
events_endpoint () {
    [ -n "${EVENTS_PORT:-}" ] || return 0
    echo "tcp://127.0.0.1:$((EVENTS_PORT - 1 + $(shard_names | awk -v n="$1" '$1 == n { print NR }')))"
}

events_args () {  # events_args NAME: --events-bind ENDPOINT, or nothing
    endpoint=$(events_endpoint "$1")
    [ -n "$endpoint" ] && echo "--events-bind $endpoint"
    return 0
}

rlctl () {  # rlctl ARGS...: the cluster's rlctl, as the operator
    # shellcheck disable=SC2086
    "$RLCTL" $RLCTL_SEC "$@"
}

# make_keys NAME...: CURVE keypairs in DIR/keys (docs/security.md): one per
# shard NAME (role shard), the router (role router), an operator key
# "admin" (roles admin and client, for rlctl) and a key "client" (role
# client, for applications). Existing keys are kept.
make_keys () {
    for name in "$@"; do
        keygen shard "$name"
    done
    keygen router router
    keygen admin admin
    keygen client client
    if [ ! -f "$KEYS/client/admin.key" ]; then
        cp "$KEYS/admin/admin.key" "$KEYS/client/admin.key"
    fi
}

keygen () {  # keygen ROLE NAME
    [ -f "$KEYS/private/$2.key_secret" ] && return 0
    "$RLCTL" keygen --role "$1" --name "$2" --dir "$KEYS" >/dev/null \
        || fail "rlctl keygen could not write a key for $2 in $KEYS"
}

# Commands -----------------------------------------------------------------------

start () {
    for bin in "$SHARD_BIN" "$RLCTL" "$REBALANCE"; do
        [ -x "$bin" ] || fail "$bin is missing: build first (cmake --build $BUILD, or ./dev.sh run)"
    done
    [ -x "$ROUTER_BIN" ] || fail "$ROUTER_BIN is missing: the router is not built (yet); a \
cluster needs it in front of the shards. Build it, or start a single shard by hand (docs/shard.md)"
    mkdir -p "$DIR"
    if [ -f "$RING" ]; then
        [ -f "$CONF" ] || fail "$RING exists but $CONF does not: remove $DIR or restore it"
        given_port=$BASE_PORT
        load_conf
        if [ -n "$given_port" ] && [ "$given_port" != "$BASE_PORT" ]; then
            echo "cluster.sh: $DIR was created with --base-port $BASE_PORT; keeping it" >&2
        fi
        if [ -z "$INSECURE" ] && [ ! -d "$KEYS" ]; then
            # A cluster made before keys existed: its shards' keys by name.
            # shellcheck disable=SC2046
            make_keys $(shard_names)
        fi
        count=$(shard_names | wc -l)
        if [ -n "$SHARDS" ] && [ "$SHARDS" != "$count" ]; then
            echo "cluster.sh: $RING has $count shards; keeping them (--shards $SHARDS ignored)" >&2
        fi
        running=0
        for name in router $(shard_names); do
            [ -n "$(pid_of "$name")" ] && running=$((running + 1))
        done
        if [ "$running" -eq $((count + 1)) ]; then
            echo "cluster.sh: already running in $DIR"
        else
            echo "cluster.sh: restarting the cluster in $DIR (data and ring kept)"
        fi
    else
        SHARDS=${SHARDS:-$SHARDS_DEFAULT}
        BASE_PORT=${BASE_PORT:-$BASE_PORT_DEFAULT}
        set --
        i=1
        while [ "$i" -le "$SHARDS" ]; do
            set -- "$@" --shard "s$i=tcp://127.0.0.1:$((BASE_PORT + i))"
            i=$((i + 1))
        done
        INSECURE=$INSECURE_ARG
        if [ -n "$INSECURE" ]; then
            "$REBALANCE" init --epoch 1 "$@" --out "$RING" >/dev/null \
                || fail "rebalance init could not write $RING"
        else
            # shellcheck disable=SC2046
            make_keys $(i=1; while [ "$i" -le "$SHARDS" ]; do echo "s$i"; i=$((i + 1)); done)
            "$REBALANCE" init --epoch 1 "$@" --keys "$KEYS" --out "$RING" >/dev/null \
                || fail "rebalance init could not write $RING"
        fi
        METRICS_PORT=$METRICS_PORT_ARG
        EVENTS_PORT=$EVENTS_PORT_ARG
        printf 'BASE_PORT=%s\nINSECURE=%s\nMETRICS_PORT=%s\nEVENTS_PORT=%s\n' "$BASE_PORT" \
            "$INSECURE" "$METRICS_PORT" "$EVENTS_PORT" >"$CONF"
        security
        echo "cluster.sh: new cluster in $DIR: $SHARDS shards, ring epoch 1"
    fi
    for name in $(shard_names); do
        if [ -n "$(pid_of "$name")" ]; then
            continue
        fi
        mkdir -p "$DIR/$name"
        # shellcheck disable=SC2086
        spawn "$name" "$SHARD_BIN" --name "$name" --bind "$(shard_endpoint "$name")" \
            --data "$DIR/$name" --ring "$RING" $SEC_ARGS $(metrics_args "$name") \
            $(events_args "$name")
    done
    if [ -n "${EVENTS_PORT:-}" ]; then
        for name in $(shard_names); do
            echo "$name=$(events_endpoint "$name")"
        done >"$DIR/events"
    fi
    if [ -z "$(pid_of router)" ]; then
        # shellcheck disable=SC2086
        spawn router "$ROUTER_BIN" --bind "$(router_endpoint)" --ring "$RING" $SEC_ARGS \
            $(metrics_args router)
    fi
    wait_ready
    print_where
}

# True when the router reaches every shard: a lookup through it of one
# account id owned by each shard (found or not) is answered without a
# request-level error. `rlctl status` asks the shards directly, and the
# router may connect to a shard that started after it up to its longest
# reconnect pause later (RL_ROUTER_RECONNECT_MS_MAX); until then requests
# for that shard are answered unavailable.
router_reaches_shards () {
    ids=$(rlctl --connect "$(router_endpoint)" locate $(seq 1 1024) 2>/dev/null \
        | awk 'NR > 2 && !seen[$3]++ { print $1 }')
    [ -n "$ids" ] || return 1
    # shellcheck disable=SC2086
    out=$(rlctl --connect "$(router_endpoint)" --json balance $ids 2>/dev/null) || true
    case $out in
        *'"accounts"'*) return 0 ;;
        *) return 1 ;;
    esac
}

# True when `rlctl status` got the ring and every shard of it answered. Its
# exit code says more: it is 1 too when a shard that answered needs an
# operator (a failed store, a frozen arc), which `status` then shows.
every_shard_answers () {
    out=$(rlctl --connect "$(router_endpoint)" --timeout-ms $POLL_TIMEOUT_MS --json status \
        2>/dev/null) || true
    printf '%s' "$out" | grep -q '"ring_epoch":' \
        && printf '%s' "$out" | grep -q '"down":[[:space:]]*0,'
}

# Polls `rlctl status` until every shard answers and the router reaches
# them all, a process dies, or WAIT_S passes.
wait_ready () {
    deadline=$(( $(date +%s) + WAIT_S ))
    while :; do
        for name in router $(shard_names); do
            if [ -z "$(pid_of "$name")" ]; then
                log_tail "$name"
                fail "$name exited during start (is its port taken? see $DIR/$name.log)"
            fi
        done
        if every_shard_answers && router_reaches_shards; then
            return 0
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            rlctl --connect "$(router_endpoint)" --timeout-ms $POLL_TIMEOUT_MS status >&2 || true
            fail "the cluster did not answer within $WAIT_S s; logs are in $DIR"
        fi
    done
}

print_where () {
    echo "cluster.sh: up. router $(router_endpoint) (pid $(pid_of router), log $DIR/router.log)"
    for name in $(shard_names); do
        echo "    shard $name $(shard_endpoint "$name") (pid $(pid_of "$name")," \
            "data $DIR/$name, log $DIR/$name.log)"
    done
    echo "    ring  $RING"
    if [ -n "${METRICS_PORT:-}" ]; then
        echo "    metrics http://127.0.0.1:$(metrics_port router)/metrics (router)," \
            "http://127.0.0.1:$((METRICS_PORT + 1))/metrics .. (shards in ring order);" \
            "also /healthz and /readyz (docs/metrics.md)"
    fi
    if [ -n "${EVENTS_PORT:-}" ]; then
        echo "    events $(events_endpoint "$(shard_names | head -n 1)") .. (shards in ring" \
            "order, listed in $DIR/events): change-stream notifications (docs/events.md)"
    fi
    if [ -n "$INSECURE" ]; then
        echo "    INSECURE: started with --insecure: no CURVE, no authentication"
        echo "try:  $RLCTL --insecure status"
    else
        echo "    keys  $KEYS (CURVE; the operator's key: $KEYS/private/admin.key_secret)"
        echo "try:  export RL_CERT=$KEYS/private/admin.key_secret" \
            "RL_SERVER_KEY=$KEYS/router/router.key"
        echo "      $RLCTL status"
    fi
    if [ "$BASE_PORT" != "$BASE_PORT_DEFAULT" ]; then
        echo "      (with --connect $(router_endpoint), or RL_CONNECT=$(router_endpoint))"
    fi
    echo "stop: tools/cluster.sh stop${DIR_ARG:-}"
}

stop () {
    [ -d "$DIR" ] || fail "no cluster in $DIR"
    pids=""
    names=""
    for f in "$DIR"/*.pid; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .pid)
        pid=$(pid_of "$name")
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids="$pids $pid"
            names="$names $name"
        fi
    done
    if [ -z "$pids" ]; then
        rm -f "$DIR"/*.pid
        echo "cluster.sh: nothing was running in $DIR"
        return 0
    fi
    deadline=$(( $(date +%s) + WAIT_S ))
    while :; do
        alive=""
        for pid in $pids; do
            if kill -0 "$pid" 2>/dev/null; then alive="$alive $pid"; fi
        done
        [ -z "$alive" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "cluster.sh: still alive after $WAIT_S s, sending SIGKILL:$alive" >&2
            for pid in $alive; do kill -KILL "$pid" 2>/dev/null || true; done
            break
        fi
        sleep 0.05 2>/dev/null || sleep 1
    done
    rm -f "$DIR"/*.pid
    echo "cluster.sh: stopped$names (data kept in $DIR)"
}

status () {
    [ -d "$DIR" ] || fail "no cluster in $DIR: start one with tools/cluster.sh start"
    load_conf
    [ -f "$RING" ] || fail "no ring in $DIR"
    rc=0
    running=0
    for name in router $(shard_names); do
        pid=$(pid_of "$name")
        if [ -n "$pid" ]; then
            echo "$name: running (pid $pid)"
            running=$((running + 1))
        else
            echo "$name: NOT running (log $DIR/$name.log)"
            rc=1
        fi
    done
    if [ "$running" -eq 0 ]; then
        echo "the cluster in $DIR is not running: start it with tools/cluster.sh start${DIR_ARG:-}"
        return 1
    fi
    echo
    [ -x "$RLCTL" ] || fail "$RLCTL is missing: build first"
    out=$(rlctl --connect "$(router_endpoint)" --timeout-ms 2000 status 2>&1) || rc=1
    if printf '%s\n' "$out" | grep -q '^ring epoch'; then
        printf '%s\n' "$out"
    else
        printf '%s\n' "$out"
        first=$(shard_names | head -n 1)
        echo "(the router did not answer; asking shard $first for the ring)"
        if [ -n "$INSECURE" ]; then
            rlctl --connect "$(shard_endpoint "$first")" --timeout-ms 2000 status || rc=1
        else
            rlctl --connect "$(shard_endpoint "$first")" --server-key "$KEYS/shard/$first.key" \
                --timeout-ms 2000 status || rc=1
        fi
    fi
    return $rc
}

if [ "$DIR" != "$ROOT/var/cluster" ]; then
    DIR_ARG=" --dir $DIR"
fi
case "$cmd" in
start) start ;;
stop) stop ;;
status) status ;;
esac
