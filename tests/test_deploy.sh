#!/bin/sh
# test_deploy.sh: the systemd units of ops/systemd and the example config
# files of ops/config (docs/deploy.md, docs/config.md).
#
#   test_deploy.sh SOURCE_DIR BUILD_DIR
#
# 1. `systemd-analyze verify` on an instance of each unit, with ExecStart's
#    program replaced by the one just built (verify needs it to exist): it
#    must exit 0 and print nothing (an unknown key or a bad value prints);
#    and `systemd-analyze security` must rate its exposure 2.0 or less
#    (1.4 today; 10 is a unit without any hardening).
# 2. Each unit is templated: it reads /etc/ringledger/PROGRAM-%i.conf in
#    ExecStart, checks it in ExecStartPre (--check-config), and has
#    User=, Restart=on-failure, LimitNOFILE= and the hardening options.
# 3. Every example file ops/config/PROGRAM-NAME.conf is valid for its
#    program (--check-config) and names the instance NAME (name = NAME).
# 4. Every long option of `PROGRAM --help` has its row (its key) in
#    PROGRAM's table of docs/config.md, so a new option is documented.
# Exit 0 when everything holds, 1 otherwise (each failure said).
set -eu

SRC=$1
BUILD=$(cd "$2" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rl-deploy-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0

fail () {
    echo "test_deploy: FAIL: $*" >&2
    failures=$((failures + 1))
}

command -v systemd-analyze >/dev/null 2>&1 \
    || { echo "test_deploy: systemd-analyze is missing (dev.sh installs systemd)" >&2; exit 1; }

for program in shard router; do
    unit=$SRC/ops/systemd/ringledger-$program@.service
    [ -f "$unit" ] || { fail "$unit is missing"; continue; }
    conf="/etc/ringledger/$program-%i.conf"
    bin=/usr/local/bin/ringledger-$program

    # 2. What the unit must say.
    grep -qx "ExecStart=$bin --config $conf" "$unit" || fail "$unit: ExecStart does not read $conf"
    grep -qx "ExecStartPre=$bin --config $conf --check-config" "$unit" \
        || fail "$unit: ExecStartPre does not check $conf"
    for line in "User=ringledger" "Restart=on-failure" "RestartPreventExitStatus=2" \
        "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
        "CapabilityBoundingSet=" "[Unit]" "[Service]" "[Install]"; do
        grep -qxF "$line" "$unit" || fail "$unit: no '$line'"
    done
    grep -q '^LimitNOFILE=[0-9][0-9]*$' "$unit" || fail "$unit: no LimitNOFILE"
    # Every line is a comment, a section, or KEY=VALUE.
    awk '!/^(#.*|\[[A-Za-z]+\]|[A-Za-z]+=.*|)$/ { print FILENAME ":" NR ": " $0; bad = 1 }
         END { exit bad }' "$unit" || fail "$unit: a line is not ini"

    # 1. systemd's own check, on an instance with the built program.
    instance=$TMP/ringledger-$program@x1.service
    sed "s#$bin#$BUILD/$program/$program#g" "$unit" >"$instance"
    if ! out=$(systemd-analyze verify "$instance" 2>&1); then
        fail "systemd-analyze verify $unit: $out"
    elif [ -n "$out" ]; then
        fail "systemd-analyze verify $unit said: $out"
    fi
    if ! out=$(systemd-analyze security --offline=yes --threshold=20 "$instance" 2>&1); then
        fail "systemd-analyze security $unit: exposure above 2.0: $(printf '%s' "$out" | tail -n 1)"
    fi

    # 3. The example files.
    found=0
    for file in "$SRC"/ops/config/"$program"-*.conf; do
        [ -f "$file" ] || continue
        found=$((found + 1))
        name=$(basename "$file" .conf)
        name=${name#"$program"-}
        # --check-config checks the secret certificate too: the file's
        # keys live on the deployed host, so a keypair of the name made
        # here stands in for them (a flag overrides the file's key).
        "$BUILD/tools/rlctl" keygen --role "$program" --name "$name" --dir "$TMP/keys" >/dev/null \
            || fail "rlctl keygen for $name"
        if ! out=$("$BUILD/$program/$program" --config "$file" --keys "$TMP/keys" \
            --cert "$TMP/keys/private/$name.key_secret" --check-config 2>&1); then
            fail "$file is refused: $out"
        fi
        # ... and without it, the missing certificate is the reason given.
        if out=$("$BUILD/$program/$program" --config "$file" --keys "$TMP/keys" \
            --cert "$TMP/keys/private/nobody.key_secret" --check-config 2>&1) \
            || ! printf '%s' "$out" | grep -q -- "--cert: secret key file"; then
            fail "$file with a missing certificate: $out"
        fi
        grep -qx "name = $name" "$file" || fail "$file does not say 'name = $name'"
    done
    [ "$found" -ge 1 ] || fail "no example file ops/config/$program-*.conf"

    # 4. Every option has its key documented.
    table=$(awk -v p="## $program" '$0 == p { on = 1; next } /^## / { on = 0 } on' \
        "$SRC/docs/config.md")
    for option in $("$BUILD/$program/$program" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        key=${option#--}
        case "$key" in help|config|check-config) continue ;; esac
        printf '%s\n' "$table" | grep -q "^| \`$key\` |" \
            || fail "docs/config.md: no row for $program's key '$key'"
    done
done

if [ "$failures" -gt 0 ]; then
    echo "test_deploy: $failures failures" >&2
    exit 1
fi
echo "test_deploy: units verified, example files valid"
