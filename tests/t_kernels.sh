#!/usr/bin/env bash
# tests/t_kernels.sh: the GPU kernels of llmc/*.cuh, through their check
# programs dev/cuda/*.cu, run under the CUDA emulation (dev/emu) against the
# CPU reference: threads in forward, reverse and random order, under
# ASan + UBSan and without. Each launcher refuses arguments that break its
# kernel's constraints, and nvcc compiles every dev/cuda/*.cu (warnings as
# errors), so they are real CUDA.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

ORDERS="forward reverse random"
KERNELS="gelu"
export EMU_SEED=7

if ! out=$(make -s emu 2>&1); then
    fail kernels_build "make emu failed"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    exit 0
fi

for build in asan plain; do
    for k in $KERNELS; do
        for o in $ORDERS; do
            check "kernel_${build}_${k}_$o" env EMU_ORDER=$o timeout 120 build/emu/$build/cuda/$k
        done
    done
    # N % 8 != 0: the launcher says so instead of reading past the end
    expect_error "kernel_${build}_gelu_refuses_bad_n" "not a non-negative multiple of 8" build/emu/$build/cuda/gelu badn
done

for k in $KERNELS; do
    if out=$(make -s build/emu/nvcc/cuda/$k.o 2>&1); then pass "kernel_nvcc_compiles_$k"
    else
        fail "kernel_nvcc_compiles_$k" "nvcc failed on dev/cuda/$k.cu"
        printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    fi
done
