#!/usr/bin/env bash
# tests/run.sh: runs every tests/t_*.sh (or those named as arguments), counts
# their PASS/FAIL lines and ends with "N passed, N failed"; exits non-zero on
# any failure. A script that exits non-zero without printing a FAIL line, or
# that checks nothing, counts as one failure, so a crash is never silent.
# Each script's lines show as they come (a long test shows its progress).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
scripts=()
for s in "$@"; do   # (named from the repository's root, or from here)
    if [ ! -f "$ROOT/$s" ] && [ -f "$s" ] && [ "${s#/}" = "$s" ]; then scripts+=("$PWD/$s"); else scripts+=("$s"); fi
done
cd "$ROOT"
export ROOT
[ ${#scripts[@]} -eq 0 ] && scripts=(tests/t_*.sh)
passed=0; failed=0
TMP=
trap '[ -n "$TMP" ] && rm -rf "$TMP" "$TMP.out"; exit 130' INT TERM
for s in "${scripts[@]}"; do
    echo "== $s"
    TMP=$(mktemp -d); export TMP
    start=$(date +%s)
    bash "$s" 2>&1 | tee "$TMP.out"; rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS ' "$TMP.out")
    f=$(grep -c '^FAIL ' "$TMP.out")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $s: exited $rc"; f=1
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $s: checked nothing"; f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    echo "   ($((p)) passed, $((f)) failed, $(( $(date +%s) - start )) s)"
    rm -rf "$TMP" "$TMP.out"
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
