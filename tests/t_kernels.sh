#!/usr/bin/env bash
# tests/t_kernels.sh: the GPU kernels of llmc/*.cuh, through their check
# programs dev/cuda/*.cu, run under the CUDA emulation (dev/emu) against the
# CPU reference: threads in forward, reverse and random order, under
# ASan + UBSan and without. Each launcher refuses arguments that break its
# kernel's constraints, and nvcc compiles every dev/cuda/*.cu (warnings as
# errors), so they are real CUDA. global_norm must give the same bits in
# every thread order (it promises bitwise reproducibility).
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

ORDERS="forward reverse random"
KERNELS="gelu global_norm layernorm"
export EMU_SEED=7

# saving FILE CMD...: CMD with its stdout in FILE
saving() { local f=$1; shift; "$@" >"$f"; }

if ! out=$(make -s emu 2>&1); then
    fail kernels_build "make emu failed"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    exit 0
fi

for build in asan plain; do
    for k in $KERNELS; do
        for o in $ORDERS; do
            check "kernel_${build}_${k}_$o" saving "$TMP/${build}_${k}_$o.out" \
                env EMU_ORDER=$o timeout 120 build/emu/$build/cuda/$k
        done
    done
    # global_norm is deterministic: the same bits in every thread order
    gn=$TMP/${build}_global_norm
    if [ -s "$gn"_forward.out ] && cmp -s "$gn"_forward.out "$gn"_reverse.out && cmp -s "$gn"_forward.out "$gn"_random.out
    then pass "kernel_${build}_global_norm_same_bits_every_order"
    else
        fail "kernel_${build}_global_norm_same_bits_every_order" "results differ between thread orders (or a run failed)"
        diff "$gn"_forward.out "$gn"_reverse.out | head -10 | sed 's/^/    /'
        diff "$gn"_forward.out "$gn"_random.out | head -10 | sed 's/^/    /'
    fi
    # N % 8 != 0: the launcher says so instead of reading past the end
    expect_error "kernel_${build}_gelu_refuses_bad_n" "not a non-negative multiple of 8" build/emu/$build/cuda/gelu badn
    # C % 8 != 0: both layernorm launchers refuse it (rows are read in 8-value chunks)
    expect_error "kernel_${build}_layernorm_refuses_bad_c" "error: layernorm_forward: C = 12 is not a positive multiple of 8" \
        build/emu/$build/cuda/layernorm badc
    expect_error "kernel_${build}_fused_residual_layernorm_refuses_bad_c" \
        "fused_residual_layernorm_forward: C = 12 is not a positive multiple of 8" build/emu/$build/cuda/layernorm badcfused
done

# and the same bits with and without ASan
if [ -s "$TMP"/asan_global_norm_forward.out ] && cmp -s "$TMP"/asan_global_norm_forward.out "$TMP"/plain_global_norm_forward.out
then pass kernel_global_norm_same_bits_asan_plain
else fail kernel_global_norm_same_bits_asan_plain "ASan and plain builds give different results (or a run failed)"; fi

for k in $KERNELS; do
    if out=$(make -s build/emu/nvcc/cuda/$k.o 2>&1); then pass "kernel_nvcc_compiles_$k"
    else
        fail "kernel_nvcc_compiles_$k" "nvcc failed on dev/cuda/$k.cu"
        printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    fi
done
