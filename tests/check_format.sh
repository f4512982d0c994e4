#!/bin/sh
# check_format.sh: every C file of the repository is as .clang-format says.
# Fails, naming the first differences, when one is not; `clang-format -i FILE`
# mends it. Run from ctest (test_format) with the source root as argument.
set -eu
cd "$1"
command -v clang-format >/dev/null || { echo "check_format: clang-format is not installed" >&2; exit 1; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common ring shard router tools bench tests -name '*.[ch]')
[ -n "$files" ] || { echo "check_format: no C files found under $1" >&2; exit 1; }
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files; then
    echo "check_format: the files above differ from .clang-format; run clang-format -i on them" >&2
    exit 1
fi
echo "check_format: $(echo "$files" | wc -w) files formatted"
