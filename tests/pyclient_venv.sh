#!/bin/sh
# pyclient_venv.sh BUILD_DIR SOURCE_DIR: installs the Python client package
# (clients/python, docs/client-python.md) into BUILD_DIR/pyclient/venv the
# way its README says, offline: a venv that sees Debian's packages
# (--system-site-packages: pyzmq, setuptools, wheel, pip), then
# `pip install --no-build-isolation --no-index` (and --isolated: no pip
# configuration of the machine takes part). The Python tests run with
# that venv's python, so they use the package as installed, not the
# sources. The venv is made without a pip of its own (--without-pip): the
# pip of Debian's python3-pip, seen through the system site, installs into
# it, which saves the seconds of ensurepip.
#
# A missing tool fails (exit 1) with the Debian package to install; it
# never skips. ./dev.sh installs them all.
set -eu
BUILD=$1
SOURCE=$2
PY=/usr/bin/python3
DIR=$BUILD/pyclient

fail () {
    echo "FAILED  pyclient venv: $*" >&2
    exit 1
}

[ -x "$PY" ] || fail "$PY is missing: apt-get install python3"
"$PY" -c 'import venv' 2>/dev/null || fail "no venv module: apt-get install python3-venv"
"$PY" -m pip --version >/dev/null 2>&1 || fail "no pip: apt-get install python3-pip"
"$PY" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 61)' \
    2>/dev/null || fail "no setuptools >= 61 (pyproject.toml metadata): apt-get install python3-setuptools"
"$PY" -c 'import wheel' 2>/dev/null || fail "no wheel: apt-get install python3-wheel"
"$PY" -c 'import zmq' 2>/dev/null || fail "no pyzmq: apt-get install python3-zmq"

rm -rf "$DIR"
mkdir -p "$DIR"
# setuptools builds next to the sources (build/, *.egg-info): build a copy,
# so that the source tree stays clean and two build directories never share
# a build.
cp -R "$SOURCE/clients/python" "$DIR/src"
"$PY" -m venv --system-site-packages --without-pip "$DIR/venv" || fail "python3 -m venv"
# --isolated: no pip configuration of this machine or user (an index, links)
# takes part.
"$DIR/venv/bin/python" -m pip install --isolated --disable-pip-version-check --quiet \
    --no-index --no-build-isolation --no-cache-dir "$DIR/src" || fail "pip install clients/python"
"$DIR/venv/bin/python" - <<'PYEOF' || fail "the installed package does not import from the venv"
import sys, ringledger, ringledger.aio
assert ringledger.__file__.startswith(sys.prefix), ringledger.__file__
print("ok      ringledger %s installed in %s" % (ringledger.__version__, sys.prefix))
PYEOF
echo "1 passed, 0 failed"
