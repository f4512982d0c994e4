#!/bin/sh
# dev.sh: the two set-up commands of the README, for a fresh Debian machine.
#
#   ./dev.sh run    install what is missing, build, run the main job
#   ./dev.sh test   install what is missing, build normal + sanitizer, run ctest on both,
#                   then build the libFuzzer targets (clang) and run each for 20 s
#
# Installing is idempotent: when every package is present it costs one dpkg query.
set -eu
cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=${RL_JOBS:-2}

PACKAGES="build-essential cmake pkg-config libzmq3-dev libczmq-dev librocksdb-dev libmicrohttpd-dev \
libxxhash-dev libsodium-dev libcmocka-dev libcjson-dev python3 python3-zmq python3-venv python3-pip \
python3-setuptools procps clang-format git \
clang libclang-rt-14-dev prometheus systemd"

install_missing () {
    missing=""
    for p in $PACKAGES; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    if [ -n "$missing" ]; then
        echo "dev.sh: installing:$missing"
        SUDO=""
        if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
}

build () {  # build DIR [cmake args...]
    dir=$1; shift
    cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$ROOT/$dir" -j "$JOBS"
}

cmd=${1:-}
case "$cmd" in
run)
    install_missing
    build build
    shift
    exec "$ROOT/tools/demo.sh" "$ROOT/build" "$@"
    ;;
test)
    install_missing
    build build
    echo "dev.sh: ctest (normal build)"
    (cd build && ctest -j "$JOBS" --output-on-failure)
    build build-asan -DRL_SANITIZE=ON
    echo "dev.sh: ctest (address + undefined sanitizer build)"
    (cd build-asan && ctest -j "$JOBS" --output-on-failure)
    # The fuzz build: clang, libFuzzer + ASan + UBSan, the fuzz targets alone
    # (tests/fuzz/). The normal and sanitizer builds above replayed the corpus.
    build build-fuzz -DCMAKE_C_COMPILER=clang -DRL_FUZZ=ON
    echo "dev.sh: ctest (libFuzzer targets, label fuzz)"
    (cd build-fuzz && ctest -j "$JOBS" -L fuzz --no-tests=error --output-on-failure)
    ;;
*)
    echo "usage: ./dev.sh run | test" >&2
    exit 2
    ;;
esac
