#!/usr/bin/env bash
# tests/t_gemm.sh: llmc/gemm.h against a double-precision reference (all four
# transposes, beta 0 and 1, odd sizes, strided leading dimensions, the
# trainer's shapes scaled down) and bitwise equal results on 1, 2 and 3
# threads for the trainer's full GPT-2 124M shapes. Three builds, all through
# make: the default (AVX-512 or AVX2, as the machine has), the portable path
# on AVX2 (-mno-avx512f), and one on SSE4.2 (4-float vectors) without OpenMP;
# and make bench-gemm-rev (the benchmark against another revision) builds and runs.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

for bin in test_gemm test_gemm_noavx512 test_gemm_sse_noomp; do
    if ! out=$(make -s "tests/$bin" 2>&1); then
        fail "gemm_build_$bin" "make tests/$bin failed"
        printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
        continue
    fi
    check "gemm_$bin" "./tests/$bin" -q
done

# make bench-gemm-rev: builds against llmc/gemm.h of a git revision and prints
# the side-by-side table (a smoke run: one call per turn, the d1 shapes); a
# revision git does not know stops make with an error
if out=$(make -s bench-gemm-rev REV=HEAD BENCH_ARGS="-r 1 -n 1 -s d1" 2>&1) &&
    printf '%s\n' "$out" | grep -q '^shape .* ours *rev *ratio$' &&
    printf '%s\n' "$out" | grep -Eq '^overall \(by total time\) +[0-9.]+ +[0-9.]+ +[0-9.]+$'; then
    pass bench_gemm_rev_table
else
    fail bench_gemm_rev_table "no ours/rev table from make bench-gemm-rev"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
fi
if make -s bench-gemm-rev REV=no-such-revision BENCH_ARGS="-r 1 -n 1 -s d1" >"$TMP/rev.log" 2>&1; then
    fail bench_gemm_rev_bad_revision "make exited 0 for REV=no-such-revision"
else
    pass bench_gemm_rev_bad_revision
fi
