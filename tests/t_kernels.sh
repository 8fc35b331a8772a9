#!/usr/bin/env bash
# tests/t_kernels.sh: the GPU kernels of llmc/*.cuh, through their check
# programs dev/cuda/*.cu, run under the CUDA emulation (dev/emu) against the
# CPU reference: threads in forward, reverse and random order, and each warp
# running alone between barriers (EMU_WARPS=serial, warps first to last and
# last to first, cp.async copies landing at issue), under ASan + UBSan and
# without, and under ThreadSanitizer for the race check (forward order: it
# needs no other); nvcc compiles every dev/cuda/*.cu (warnings as
# errors), so they are real CUDA. Every dev/cuda/NAME.cu is picked up by
# itself; checks that only concern one family (bad arguments refused,
# bitwise determinism) live in tests/kernels/NAME.sh, sourced after that
# family's runs with BUILD (asan or plain) and OUTS (its outputs, one file
# per thread order: $OUTS_forward.out, ...) set.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

ORDERS="forward reverse random serial serial_reverse"
KERNELS=$(ls dev/cuda/*.cu | sed 's,.*/,,; s,\.cu$,,')
export EMU_SEED=7

# saving FILE CMD...: CMD with its stdout in FILE
saving() { local f=$1; shift; "$@" >"$f"; }

# same_bits_every_order K (for tests/kernels/K.sh, whose kernels promise
# bitwise reproducibility and print their result bits): every thread order
# printed the same, and, once both builds ran, ASan and plain too
same_bits_every_order() {
    local k=$1 o same=1
    [ -s "$OUTS"_forward.out ] || same=0
    for o in $ORDERS; do cmp -s "$OUTS"_forward.out "$OUTS"_$o.out || same=0; done
    if [ $same = 1 ]; then pass "kernel_${BUILD}_${k}_same_bits_every_order"
    else
        fail "kernel_${BUILD}_${k}_same_bits_every_order" "results differ between thread orders (or a run failed)"
        for o in $ORDERS; do diff "$OUTS"_forward.out "$OUTS"_$o.out | head -10 | sed 's/^/    /'; done
    fi
    if [ "$BUILD" = plain ]; then
        if [ -s "$TMP/asan_${k}_forward.out" ] && cmp -s "$TMP/asan_${k}_forward.out" "$OUTS"_forward.out
        then pass "kernel_${k}_same_bits_asan_plain"
        else fail "kernel_${k}_same_bits_asan_plain" "ASan and plain builds give different results (or a run failed)"; fi
    fi
}

if ! out=$(make -s -j"$(nproc)" emu 2>&1); then
    fail kernels_build "make emu failed"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    exit 0
fi

for BUILD in asan plain; do
    for k in $KERNELS; do
        OUTS=$TMP/${BUILD}_$k
        for o in $ORDERS; do
            case $o in
                serial) how="EMU_ORDER=forward EMU_WARPS=serial EMU_CP_ASYNC=early" ;;
                serial_reverse) how="EMU_ORDER=reverse EMU_WARPS=serial EMU_CP_ASYNC=early" ;;
                *) how="EMU_ORDER=$o" ;;
            esac
            # shellcheck disable=SC2086 # $how: the variables, split on purpose
            check "kernel_${BUILD}_${k}_$o" saving "${OUTS}_$o.out" env $how timeout 300 build/emu/$BUILD/cuda/$k
        done
        [ -f tests/kernels/$k.sh ] && source tests/kernels/$k.sh
    done
done

# the race check (ThreadSanitizer, build/emu/tsan; see
# dev/emu/emu_races.h): every check passes with no two threads' accesses to
# one address, one a write, left unordered by a barrier, in one block or
# across blocks; its result bits are the plain build's
for k in $KERNELS; do
    check "kernel_tsan_${k}_no_race" saving "$TMP/tsan_$k.out" env EMU_ORDER=forward timeout 600 build/emu/tsan/cuda/$k
    if cmp -s "$TMP/tsan_$k.out" "$TMP/plain_${k}_forward.out"; then pass "kernel_${k}_same_output_tsan_plain"
    else fail "kernel_${k}_same_output_tsan_plain" "the race check's run printed other results than the plain build's"; fi
done

for k in $KERNELS; do
    if out=$(make -s build/emu/nvcc/cuda/$k.o 2>&1); then pass "kernel_nvcc_compiles_$k"
    else
        fail "kernel_nvcc_compiles_$k" "nvcc failed on dev/cuda/$k.cu"
        printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    fi
done

# every kernel of llmc/ declares __launch_bounds__: ptxas then budgets its
# registers so that many threads per block fit on an SM, and the emulation
# stops a launch of more (emu::launch_bounds in dev/emu/emu_kernel.h), so no
# launch the tests make can fail on the device for want of registers
unbounded=$(grep -n '__global__' llmc/*.cuh | grep -v '__launch_bounds__')
if [ -z "$unbounded" ]; then pass kernels_declare_launch_bounds
else fail kernels_declare_launch_bounds "no __launch_bounds__ on: $unbounded"; fi
