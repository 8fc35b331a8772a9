#!/usr/bin/env bash
# tests/t_gemm.sh: llmc/gemm.h against a double-precision reference (all four
# transposes, beta 0 and 1, odd sizes, strided leading dimensions, the
# trainer's shapes scaled down) and bitwise equal results on 1, 2 and 3
# threads for the trainer's full GPT-2 124M shapes. Three builds, all through
# make: the default (AVX-512 or AVX2, as the machine has), the portable path
# on AVX2 (-mno-avx512f), and one on SSE4.2 (4-float vectors) without OpenMP.
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
