#!/usr/bin/env bash
# tests/run.sh: runs every tests/t_*.sh (or those named as arguments), counts
# their PASS/FAIL lines and ends with "N passed, N failed"; exits non-zero on
# any failure. A script that exits non-zero without printing a FAIL line
# counts as one failure, so a crash is never silent.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export ROOT
scripts=("$@")
[ ${#scripts[@]} -eq 0 ] && scripts=(tests/t_*.sh)
passed=0; failed=0
for s in "${scripts[@]}"; do
    echo "== $s"
    TMP=$(mktemp -d); export TMP
    start=$(date +%s)
    out=$(bash "$s" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | grep -c '^PASS ')
    f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $s: exited $rc"; f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    echo "   ($((p)) passed, $((f)) failed, $(( $(date +%s) - start )) s)"
    rm -rf "$TMP"
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
