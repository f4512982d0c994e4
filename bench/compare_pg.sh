#!/usr/bin/env bash
# compare_pg.sh: ringledger against PostgreSQL on the same transfer
# workload, side by side, in one run.
#
#   bench/compare_pg.sh [--build DIR] [--seconds S] [--runs R] [--accounts N]
#                       [--pg-batch B] [--out FILE] [--keep]
#                       [--batch1-only] [--ab OLD_BUILD NEW_BUILD]
#
# 1. Installs PostgreSQL from Debian if it is missing (apt-get).
# 2. Starts a private PostgreSQL: initdb into a temporary directory on the
#    real disk (under $TMPDIR or /var/tmp), a free port, its unix socket in
#    that directory, run as the `postgres` OS user; fsync on,
#    synchronous_commit on (every commit waits for its WAL flush).
# 3. Loads N accounts and runs pgbench:
#      - one transfer per transaction (plpgsql `transfer`: debit with its
#        balance check, credit only if the debit passed, a transfers row
#        whose primary key is the id) at 1, 8 and 32 clients;
#      - B transfers per transaction (`transfer_batch`, arrays, the same
#        checks) at 1 and 2 clients, and 8190 per transaction at 1 client.
# 4. Runs ringledger on the same workload with rlbench (same accounts, WAL
#    synced before every reply): batch 1 with the same client counts (one
#    connection per client, one request in flight each), batch B and 8190.
#    Against a 4-shard cluster when tools/cluster.sh works, else against
#    one shard started here (rows say which).
# 5. Prints one table with both figures and the ratio (medians of R runs),
#    every row labelled with its durability and its batching.
# --batch1-only: only the batch-1 rows (1, 8 and 32 clients).
# --ab OLD NEW: the batch-1 rows for two builds of ringledger, alternately
#    in R rounds (each round: PostgreSQL, a fresh cluster of OLD, a fresh
#    cluster of NEW, every client count), then one table of the medians
#    with new/old and new/PostgreSQL. Needs tools/cluster.sh.
# RL_BENCH_PORTS=LO-HI: the ports the clusters may take (20000-60000).
# Everything started here is stopped on exit (trap), whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
SECONDS_PER_RUN=15
RUNS=3
ACCOUNTS=10000
PG_BATCH=100
OUT=""
KEEP=0
BATCH1_ONLY=0
AB_OLD=""
AB_NEW=""

usage () {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --accounts) ACCOUNTS=$2; shift 2 ;;
    --pg-batch) PG_BATCH=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --batch1-only) BATCH1_ONLY=1; shift ;;
    --ab) AB_OLD=$(cd "$2" && pwd); AB_NEW=$(cd "$3" && pwd); BUILD=$AB_NEW; shift 3 ;;
    -h|--help) usage ;;
    *) echo "compare_pg.sh: unknown option $1" >&2; usage ;;
    esac
done

RLBENCH=$BUILD/bench/rlbench
SHARD=$BUILD/shard/shard
for bin in "$RLBENCH" "$SHARD"; do
    if [ ! -x "$bin" ]; then
        echo "compare_pg.sh: $bin not found: build first (cmake --build $BUILD)" >&2
        exit 1
    fi
done

log () { echo "compare_pg.sh: $*" >&2; }

# 1. PostgreSQL from Debian ---------------------------------------------------
pg_bindir () { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/initdb" ] || ! command -v pgbench >/dev/null; then
    log "installing PostgreSQL (apt-get install -y postgresql postgresql-contrib)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi
PGBIN=$(pg_bindir)
PGBENCH=$PGBIN/pgbench
PSQL=$PGBIN/psql
PG_VERSION=$("$PGBIN/postgres" --version | grep -o '[0-9][0-9]*\.[0-9][0-9]*' | head -n 1)

free_port () {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Run as the postgres OS user when we are root (postgres refuses root).
as_pg () {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# 2. A private instance, stopped by the trap ------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/rl-compare-pg.XXXXXX")
PGDATA=$WORK/pgdata
PGSOCK=$WORK/sock
PG_STARTED=0
SHARD_PID=""
CLUSTER_DIR=""
cleanup () {
    set +e
    if [ "$PG_STARTED" = 1 ]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1
    fi
    if [ -n "$SHARD_PID" ]; then
        kill "$SHARD_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$SHARD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SHARD_PID" 2>/dev/null
    fi
    if [ -n "$CLUSTER_DIR" ]; then
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER_DIR" >/dev/null 2>&1
    fi
    if [ "$KEEP" = 1 ]; then
        echo "compare_pg.sh: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$PGSOCK"
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$WORK"; fi
PGPORT=$(free_port)
log "PostgreSQL $PG_VERSION: initdb in $WORK, port $PGPORT"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1
# Durable settings (the defaults, stated), and room so that no checkpoint
# or WAL recycling lands inside a timed run.
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/postgres.log" -w -t 60 start -o \
    "-p $PGPORT -k $PGSOCK -c listen_addresses='' -c fsync=on -c synchronous_commit=on \
     -c full_page_writes=on -c shared_buffers=1GB -c max_connections=100 \
     -c max_wal_size=8GB -c checkpoint_timeout=1h" >/dev/null
PG_STARTED=1
psql_q () { as_pg "$PSQL" -X -q -h "$PGSOCK" -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_q -c "CREATE DATABASE bench" postgres
psql_q -f "$ROOT/bench/pg/schema.sql" bench >/dev/null
PG_DURABILITY="fsync $(psql_q -At -c 'SHOW fsync' bench), synchronous_commit $(psql_q -At -c 'SHOW synchronous_commit' bench), wal_sync_method $(psql_q -At -c 'SHOW wal_sync_method' bench)"
log "PostgreSQL durability: $PG_DURABILITY"

# pgbench scripts are read by the postgres user: copy them into WORK.
cp "$ROOT/bench/pg/"*.pgbench "$WORK/"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$WORK"/*.pgbench; fi

median () { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print("%.0f" % statistics.median(v)) if v else print("nan")' "$@"; }

# pg_run CLIENTS BATCH: transfers/s of one pgbench run (fresh accounts).
pg_run () {
    local clients=$1 batch=$2 script tps jobs
    psql_q -v accounts="$ACCOUNTS" -f "$ROOT/bench/pg/load.sql" bench >/dev/null
    psql_q -c "CHECKPOINT" bench >/dev/null
    jobs=$(( clients < 2 ? clients : 2 ))
    if [ "$batch" = 1 ]; then script=$WORK/transfer.pgbench; else script=$WORK/transfer_batch.pgbench; fi
    as_pg "$PGBENCH" -n -h "$PGSOCK" -p "$PGPORT" -U postgres -c "$clients" -j "$jobs" \
        -T "$SECONDS_PER_RUN" --max-tries=100 -D accounts="$ACCOUNTS" -D batch="$batch" \
        -f "$script" bench >"$WORK/pgbench.out" 2>"$WORK/pgbench.err" || {
        log "pgbench failed:"; tail -n 5 "$WORK/pgbench.err" >&2; echo 0; return; }
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$WORK/pgbench.out")
    local check
    check=$(psql_q -At -c "SELECT sum(debits) = sum(credits) FROM accounts" bench)
    if [ "$check" != t ]; then
        log "PostgreSQL conservation check FAILED after clients=$clients batch=$batch"
        exit 1
    fi
    python3 -c "print('%.0f' % (float('${tps:-0}') * $batch))"
}

# 3. The ringledger side ---------------------------------------------------------
RL_LABEL="1 shard"
RL_ENDPOINT=""
# A base port with the next 4 free too (router on P, shards on P+1..P+4).
RL_PORT=$(python3 -c '
import os, random, socket
for _ in range(200):
    lo, hi = (int(x) for x in os.environ.get("RL_BENCH_PORTS", "20000-60000").split("-"))
    p = random.randint(lo, hi - 5)
    try:
        socks = []
        for q in range(p, p + 5):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        for s in socks: s.close()
        print(p); break
    except OSError:
        for s in socks: s.close()
')
# rl_cluster_start BUILD: a fresh 4-shard cluster of BUILD (tools/cluster.sh,
# CURVE on) at RL_PORT; rlbench speaks to its router as the cluster's client.
rl_cluster_start () {
    CLUSTER_DIR=$WORK/cluster
    rm -rf "$CLUSTER_DIR"
    if "$ROOT/tools/cluster.sh" start --shards 4 --dir "$CLUSTER_DIR" --base-port "$RL_PORT" \
        --build "$1" >"$WORK/cluster.out" 2>&1; then
        RL_ENDPOINT=tcp://127.0.0.1:$RL_PORT
        RL_LABEL="4 shards + router"
        export RL_CERT=$CLUSTER_DIR/keys/private/client.key_secret
        export RL_SERVER_KEY=$CLUSTER_DIR/keys/router/router.key
        return 0
    fi
    log "tools/cluster.sh did not start a cluster of $1 (below)"
    tail -n 5 "$WORK/cluster.out" >&2 || true
    rl_cluster_stop
    return 1
}
rl_cluster_stop () {
    if [ -n "$CLUSTER_DIR" ]; then
        "$ROOT/tools/cluster.sh" stop --dir "$CLUSTER_DIR" >/dev/null 2>&1 || true
    fi
    CLUSTER_DIR=""
}
if [ -n "$AB_OLD" ]; then
    if [ ! -x "$ROOT/tools/cluster.sh" ]; then
        echo "compare_pg.sh: --ab needs tools/cluster.sh" >&2
        exit 1
    fi
elif [ -x "$ROOT/tools/cluster.sh" ]; then
    if ! rl_cluster_start "$BUILD"; then
        log "using one shard"
    fi
fi
if [ -z "$RL_ENDPOINT" ] && [ -z "$AB_OLD" ]; then
    RL_ENDPOINT=tcp://127.0.0.1:$RL_PORT
    "$SHARD" --name s1 --bind "$RL_ENDPOINT" --data "$WORK/rl-s1" --durability sync \
        >"$WORK/shard.log" 2>&1 &
    SHARD_PID=$!
fi
if [ -z "$AB_OLD" ]; then
    log "ringledger: $RL_LABEL at $RL_ENDPOINT"
fi

# rl_run CONNECTIONS BATCH: transfers/s of one rlbench run (check on).
rl_run () {
    local conns=$1 batch=$2 json seed
    seed=$RANDOM$RANDOM
    if ! json=$("$RLBENCH" --connect "$RL_ENDPOINT" --connections "$conns" --window 1 \
        --batch "$batch" --accounts "$ACCOUNTS" --warmup 1 --duration "$SECONDS_PER_RUN" \
        --probe-dir "$WORK" --probe-writes 50 --seed "$seed" --json 2>"$WORK/rlbench.err"); then
        log "rlbench failed (check or run): seed $seed"; tail -n 5 "$WORK/rlbench.err" >&2
        exit 1
    fi
    python3 -c 'import json,sys; print(json.loads(sys.argv[1])["durability"])' "$json" \
        >"$WORK/rl_durability"
    python3 -c 'import json,sys; print("%.0f" % json.loads(sys.argv[1])["transfers_per_s"])' "$json"
}

# Readiness of the cluster or shard: rlbench itself waits on status; give it a moment.
rl_ready () {
    for _ in $(seq 1 100); do
        if "$RLBENCH" --connect "$RL_ENDPOINT" --accounts 2 --count 1 --batch 1 --warmup 0 \
            --probe-writes 0 --quiet --json >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "ringledger at $RL_ENDPOINT never answered"
    return 1
}

# 4. The configurations ------------------------------------------------------------
# key: "pg|rl CLIENTS BATCH" -> median transfers/s
declare -A FIG
measure () {
    local side=$1 clients=$2 batch=$3 vals=()
    for _ in $(seq 1 "$RUNS"); do
        if [ "$side" = pg ]; then vals+=("$(pg_run "$clients" "$batch")");
        else vals+=("$(rl_run "$clients" "$batch")"); fi
    done
    for v in "${vals[@]}"; do
        if [ -z "$v" ]; then log "$side clients=$clients batch=$batch: a run failed"; exit 1; fi
    done
    FIG["$side $clients $batch"]=$(median "${vals[@]}")
    log "$side clients=$clients batch=$batch: runs ${vals[*]} -> median ${FIG["$side $clients $batch"]}"
}

# --ab: the batch-1 rows, PostgreSQL and two builds alternately, round by round.
if [ -n "$AB_OLD" ]; then
    declare -A ABV # "pg|old|new CLIENTS" -> the runs' figures
    for r in $(seq 1 "$RUNS"); do
        for c in 1 8 32; do ABV["pg $c"]+=" $(pg_run "$c" 1)"; done
        for side in old new; do
            b=$AB_OLD
            if [ "$side" = new ]; then b=$AB_NEW; fi
            RLBENCH=$b/bench/rlbench
            rl_cluster_start "$b" || exit 1
            rl_ready || exit 1
            for c in 1 8 32; do ABV["$side $c"]+=" $(rl_run "$c" 1)"; done
            rl_cluster_stop
        done
        log "round $r: $(for k in "pg 1" "pg 8" "pg 32" "old 1" "old 8" "old 32" "new 1" "new 8" "new 32"; do printf '%s:%s ' "$k" "${ABV[$k]##* }"; done)"
    done
    {
        echo "PostgreSQL $PG_VERSION ($PG_DURABILITY) against ringledger (4 shards + router, durability $(cat "$WORK/rl_durability"))"
        echo "batch 1, one request in flight per client; $ACCOUNTS accounts, uniform pairs (about 3/4 cross shards);"
        echo "$RUNS rounds of $SECONDS_PER_RUN s, each round PostgreSQL, then a fresh cluster of OLD, then of NEW; medians (runs in brackets)."
        echo "OLD: $AB_OLD; NEW: $AB_NEW"
        echo
        echo "| clients | PostgreSQL | ringledger OLD | ringledger NEW | NEW / OLD | NEW / PostgreSQL |"
        echo "|---|---|---|---|---|---|"
        for c in 1 8 32; do
            for side in pg old new; do
                # shellcheck disable=SC2086
                for v in ${ABV["$side $c"]}; do
                    if [ -z "$v" ] || [ "$v" = 0 ]; then log "$side clients=$c: a run failed"; exit 1; fi
                done
            done
            # shellcheck disable=SC2086
            pg=$(median ${ABV["pg $c"]}); old=$(median ${ABV["old $c"]}); new=$(median ${ABV["new $c"]})
            python3 -c "import sys; pg,o,n=map(float,sys.argv[1:4]); print('| %s | %.0f [%s] | %.0f [%s] | %.0f [%s] | %.2f | %.2f |' % (sys.argv[4], pg, sys.argv[5], o, sys.argv[6], n, sys.argv[7], n/o, n/pg))" \
                "$pg" "$old" "$new" "$c" "${ABV["pg $c"]# }" "${ABV["old $c"]# }" "${ABV["new $c"]# }"
        done
    } | tee ${OUT:+"$OUT"}
    exit 0
fi

rl_ready || exit 1
for c in 1 8 32; do measure pg "$c" 1; measure rl "$c" 1; done
if [ "$BATCH1_ONLY" = 0 ]; then
    for c in 1 2; do measure pg "$c" "$PG_BATCH"; measure rl "$c" "$PG_BATCH"; done
    measure pg 1 8190
    measure rl 1 8190
    measure rl 2 8190
fi

RL_DURABILITY=$(cat "$WORK/rl_durability")

# 5. The table ---------------------------------------------------------------------
ratio () { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.1fx' % (b/a) if a > 0 else 'n/a')" "$1" "$2"; }
row () { # label clients pg_key rl_key batching
    local pg=${FIG[$3]} rl=${FIG[$4]}
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$pg" "$rl" "$(ratio "$pg" "$rl")" "$5"
}
{
    echo "PostgreSQL $PG_VERSION ($PG_DURABILITY) against ringledger ($RL_LABEL, durability $RL_DURABILITY)"
    echo "$ACCOUNTS accounts, uniform random pairs, amounts 1..100, no limit flags (the balance check still runs);"
    echo "medians of $RUNS runs of $SECONDS_PER_RUN s; transfers/s counts applied transfers only."
    echo "ringledger: one connection per PostgreSQL client, one request in flight per connection."
    echo
    echo "| workload | clients | PostgreSQL transfers/s | ringledger transfers/s | ringledger / PostgreSQL | batching |"
    echo "|---|---|---|---|---|---|"
    row "1 transfer per transaction / request" 1 "pg 1 1" "rl 1 1" "unbatched against unbatched"
    row "1 transfer per transaction / request" 8 "pg 8 1" "rl 8 1" "unbatched against unbatched"
    row "1 transfer per transaction / request" 32 "pg 32 1" "rl 32 1" "unbatched against unbatched"
    if [ "$BATCH1_ONLY" = 0 ]; then
        row "$PG_BATCH per transaction / request" 1 "pg 1 $PG_BATCH" "rl 1 $PG_BATCH" "batched against batched (same size)"
        row "$PG_BATCH per transaction / request" 2 "pg 2 $PG_BATCH" "rl 2 $PG_BATCH" "batched against batched (same size)"
        row "8190 per transaction / request" 1 "pg 1 8190" "rl 1 8190" "batched against batched (same size)"
        row "ringledger 8190 per request vs PostgreSQL 1 per transaction (32 clients)" "1 vs 32" "pg 32 1" "rl 1 8190" "batched against unbatched"
        row "ringledger 8190 per request (2 conns) vs PostgreSQL $PG_BATCH per transaction (2 clients)" 2 "pg 2 $PG_BATCH" "rl 2 8190" "batched (8190) against batched ($PG_BATCH)"
    fi
    echo
    echo "durability: PostgreSQL $PG_DURABILITY; ringledger $RL_DURABILITY (WAL synced before every reply), $RL_LABEL"
} | tee ${OUT:+"$OUT"}
