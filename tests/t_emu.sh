#!/usr/bin/env bash
# tests/t_emu.sh: the CUDA emulation (dev/emu). Correct kernels match the CPU
# reference in forward, reverse and random thread order, under ASan + UBSan
# and without; each deliberately broken kernel of dev/emu/tests/bad_kernels.cu
# is caught (a race that changes the result in some order, a barrier in
# divergent code, out-of-bounds writes to global and shared memory, a shuffle
# naming exited lanes, a cooperative-groups tile reduce called by half a
# warp, a PTX mma half the warp skips, an ldmatrix from misaligned rows, a
# cp.async pipeline without its wait or its refill barrier, per-warp partials
# read without a barrier, seen when each warp runs alone: EMU_WARPS=serial;
# a wgmma with no wgmma.fence before it, one reading an operand a cp.async
# landed with no fence.proxy.async after it, one in a block of 64 threads,
# one whose A registers change before its wait; and on an emulated device
# that reads wgmma descriptors' lbo and sbo the other way round, the wgmma
# check fails and its probe names which descriptors);
# and nvcc compiles the same sources (warnings as
# errors), so they are real CUDA. bf16 conversions (dev/emu/tests/bf16.cu)
# round as the device does. Streams (dev/emu/tests/streams.cu): with one of
# them held back (EMU_LATE_STREAM), a missing wait between two reads stale data.
# The race check (build/emu/tsan) reports races within a block, between the
# blocks of a launch and between streams, in the default order.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

ORDERS="forward reverse random"
export EMU_SEED=1

# dev/emu/rewrite.py's own input errors: one "error:" line each, OUT written
# atomically, the #line path a valid C string (checked first: no build needed)
RW=(/usr/bin/python3 dev/emu/rewrite.py)
expect_error emu_rewrite_usage "usage" "${RW[@]}" only_one_argument
expect_error emu_rewrite_missing_input "cannot read" "${RW[@]}" "$TMP/nope.cu" "$TMP/out.cu"
expect_error emu_rewrite_folder_input "not a regular file" "${RW[@]}" "$TMP" "$TMP/out.cu"
printf 'int x; // \xff\n' > "$TMP/latin1.cu"
expect_error emu_rewrite_not_utf8 "not UTF-8" "${RW[@]}" "$TMP/latin1.cu" "$TMP/out.cu"
expect_error emu_rewrite_out_in_missing_folder "cannot write" "${RW[@]}" dev/emu/tests/common.cuh "$TMP/nodir/out.cu"
mkdir -p "$TMP/out_dir"
expect_error emu_rewrite_out_a_folder "cannot write" "${RW[@]}" dev/emu/tests/common.cuh "$TMP/out_dir"
# a write that fails part way (a 1 KiB file size limit): OUT keeps what it
# held, not a truncated file with a fresh time make would take as up to date
printf '%4000s\n' 'int x;' > "$TMP/big.cu"; echo old > "$TMP/big.cpp"
expect_error emu_rewrite_failed_write "cannot write" bash -c 'ulimit -f 1; "$@"' _ "${RW[@]}" "$TMP/big.cu" "$TMP/big.cpp"
check emu_rewrite_failed_write_keeps_out_and_no_tmp test "$(cat "$TMP/big.cpp")" = old -a ! -e "$TMP/big.cpp.tmp"
mkdir -p "$TMP/a\"b\\c"; echo 'int x = ;' > "$TMP/a\"b\\c/q.cu"
"${RW[@]}" "$TMP/a\"b\\c/q.cu" "$TMP/q.cpp"
check emu_rewrite_line_names_a_path_with_quote_and_backslash \
    bash -c 'g++ -fsyntax-only -x c++ "$1" 2>&1 | grep -qF "$2:1:"' _ "$TMP/q.cpp" "$TMP/a\"b\\c/q.cu"

if ! out=$(make -s -j"$(nproc)" emu 2>&1); then
    fail emu_build "make emu failed"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    exit 0
fi

# caught NAME CMD... -- SUBSTRING...: like expect_error (non-zero exit, not a
# signal, an "error: " line), and stderr holds every SUBSTRING (and none
# given as !SUBSTRING)
caught() {
    local name=$1; shift
    local cmd=() want=() err rc s
    while [ "$1" != "--" ]; do cmd+=("$1"); shift; done; shift
    want=("$@")
    err=$(timeout 60 "${cmd[@]}" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 0 ]; then fail "$name" "exited 0: the bug was not caught"; return; fi
    if [ $rc -eq 124 ]; then fail "$name" "hung (timeout)"; return; fi
    if [ $rc -ge 128 ]; then fail "$name" "killed by signal $((rc-128))"; return; fi
    if ! printf '%s\n' "$err" | grep -q '^error: '; then fail "$name" "no 'error:' line in: $(printf '%s' "$err" | tail -3)"; return; fi
    for s in "${want[@]}"; do
        if [ "${s#!}" != "$s" ]; then
            if printf '%s' "$err" | grep -qiF -- "${s#!}"; then fail "$name" "message has '${s#!}'"; return; fi
        elif ! printf '%s' "$err" | grep -qiF -- "$s"; then
            fail "$name" "message lacks '$s': $(printf '%s\n' "$err" | grep '^error: ' | head -2)"; return
        fi
    done
    pass "$name"
}

for build in asan plain; do
    for o in $ORDERS; do
        check "emu_${build}_good_kernels_$o" env EMU_ORDER=$o build/emu/$build/good_kernels
        check "emu_${build}_bad_kernels_control_$o" env EMU_ORDER=$o build/emu/$build/bad_kernels good
        # dynamic shared memory past 48 KB after the opt-in, static on top
        check "emu_${build}_shared_optin_$o" env EMU_ORDER=$o build/emu/$build/bad_kernels optin
        # cooperative groups: tile reduce (plus, greater), tile shuffles, partial tiles
        check "emu_${build}_coop_groups_$o" env EMU_ORDER=$o build/emu/$build/coop_groups
        # warp matrix multiply-accumulate (nvcuda::wmma, bf16 m16n16k16)
        check "emu_${build}_wmma_$o" env EMU_ORDER=$o build/emu/$build/wmma
        # PTX mma.sync m16n8k16, ldmatrix and movmatrix (llmc/ptx.cuh) against the documented register
        # layouts, a cp.async pipeline, and wgmma (SS and RS, N 64 and 32) against the PTX ISA's
        # register and shared-memory layouts, with copies landing late (at the wait) and early
        # (at issue, each warp running alone between barriers)
        check "emu_${build}_ptx_$o" env EMU_ORDER=$o build/emu/$build/ptx
        check "emu_${build}_ptx_early_serial_$o" env EMU_ORDER=$o EMU_CP_ASYNC=early EMU_WARPS=serial build/emu/$build/ptx
        check "emu_${build}_good_kernels_serial_$o" env EMU_ORDER=$o EMU_WARPS=serial build/emu/$build/good_kernels
    done
    [ $build = plain ] && for o in $ORDERS; do   # the fibers on ucontext (other machines than x86-64)
        check "emu_ucontext_good_kernels_$o" env EMU_ORDER=$o build/emu/ucontext/good_kernels
    done
    # bf16 rounding vs our reference: boundary patterns + a sample here; all
    # 2^32 floats with EMU_BF16_ALL=1 (about a minute, plain build)
    check "emu_${build}_bf16" build/emu/$build/bf16
    # streams: the right waits hold with either stream late (EMU_LATE_STREAM);
    # each missing wait passes when work runs as queued, and is caught with
    # one of the streams late, and with all of them late by chance
    for late in "" 1 2; do
        check "emu_${build}_streams_waits_hold_late_${late:-none}" env EMU_LATE_STREAM=$late build/emu/$build/streams good
    done
    check "emu_${build}_streams_missing_wait_unseen_in_order" build/emu/$build/streams no-wait
    caught "emu_${build}_streams_missing_wait_caught_producer_late" env EMU_LATE_STREAM=1 build/emu/$build/streams no-wait \
        -- "round 0" "stale data"
    caught "emu_${build}_streams_overwrite_before_read_caught_consumer_late" env EMU_LATE_STREAM=2 \
        build/emu/$build/streams no-free -- "stale data"
    caught "emu_${build}_streams_memcpy_skips_nonblocking_stream" env EMU_LATE_STREAM=1 build/emu/$build/streams legacy \
        -- "does not wait for a non-blocking stream"
    caught "emu_${build}_late_stream_bad_value" env EMU_LATE_STREAM=x build/emu/$build/streams good -- "EMU_LATE_STREAM=x"
    caught "emu_${build}_late_stream_too_big" env EMU_LATE_STREAM=99999999999999999999 build/emu/$build/streams good \
        -- "expected a number"
    # a stream the program never made holds nothing back: the run proves nothing
    caught "emu_${build}_late_stream_never_made" env EMU_LATE_STREAM=500 build/emu/$build/streams good \
        -- "EMU_LATE_STREAM=500: the program made"
    # numbers are digits in range, not what strtoull makes of anything
    # (EMU_STACK_KB=18014398509481985 wrapped round to a 4 KiB stack)
    for bad in EMU_STACK_KB=abc EMU_STACK_KB=18014398509481985 EMU_SEED=-1 EMU_REPORT_MEMORY=2; do
        caught "emu_${build}_env_${bad%%=*}_${bad#*=}_refused" env "$bad" build/emu/$build/streams good -- "$bad: expected a number"
    done
    # EMU_LATE_STREAM=random: every stream lags by chance (the draws from
    # EMU_SEED): the right waits hold for every seed; each missing wait is
    # caught by some seed of eight (the first that catches it is named)
    for seed in 1 2 3 4 5 6 7 8; do
        check "emu_${build}_streams_waits_hold_random_seed_$seed" env EMU_LATE_STREAM=random EMU_SEED=$seed \
            build/emu/$build/streams good
    done
    for mode in no-wait no-free legacy; do
        by=""
        for seed in 1 2 3 4 5 6 7 8; do
            if ! EMU_LATE_STREAM=random EMU_SEED=$seed build/emu/$build/streams $mode >/dev/null 2>"$TMP/random.err" \
                && grep -q 'stale data' "$TMP/random.err"; then by=$seed; break; fi
        done
        if [ -n "$by" ]; then pass "emu_${build}_streams_${mode}_caught_random_late (seed $by)"
        else fail "emu_${build}_streams_${mode}_caught_random_late" "no seed of 1..8 caught it"; fi
    done

    # (a) missing barrier: a race; the result must differ from the CPU in some order
    wrong=""
    for o in $ORDERS; do
        err=$(EMU_ORDER=$o build/emu/$build/bad_kernels nobarrier 2>&1 >/dev/null); rc=$?
        if [ $rc -ne 0 ] && [ $rc -lt 128 ] && printf '%s' "$err" | grep -q '^error: nobarrier: mismatch vs the CPU reference'; then
            wrong="$wrong $o"
        fi
    done
    if [ -n "$wrong" ]; then pass "emu_${build}_catches_missing_barrier"; echo "    wrong result in:$wrong"
    else fail "emu_${build}_catches_missing_barrier" "the racy reduction matched the CPU in every order"; fi
    # per-warp partials read by warp 0 after a __syncwarp only: right while the warps move in
    # lockstep, so only a warp running ahead of the others (EMU_WARPS=serial) shows it
    caught "emu_${build}_catches_missing_barrier_between_warps" env EMU_ORDER=forward EMU_WARPS=serial \
        build/emu/$build/bad_kernels warp_partials -- "warp_partials: mismatch vs the CPU reference"

    for o in $ORDERS; do
        run=(env EMU_ORDER=$o build/emu/$build/bad_kernels)
        # shared memory nobody initialised reads as NaN, whatever the order
        caught "emu_${build}_catches_uninit_shared_$o" "${run[@]}" uninit_shared -- \
            "uninit_shared: mismatch vs the CPU reference"
        # (b) barrier in divergent code: some threads exit, others wait; or threads at different barriers
        caught "emu_${build}_catches_divergent_barrier_$o" "${run[@]}" divergent -- \
            "kernel sum_divergent_kernel" "exited without reaching __syncthreads" "__syncthreads at dev/emu/tests/bad_kernels.cu:"
        caught "emu_${build}_catches_ifelse_barrier_$o" "${run[@]}" divergent2 -- \
            "kernel sum_ifelse_barrier_kernel" "waits at __syncthreads" "barrier in divergent code"
        # (d) a shuffle whose mask names lanes that returned
        caught "emu_${build}_catches_shfl_exited_lanes_$o" "${run[@]}" shfl_exited -- \
            "kernel warp_sum_exited_kernel" "__shfl_down_sync" "inactive lane"
        # a full mask in a warp of 16 threads; half a warp shuffling while the other half waits at a barrier
        caught "emu_${build}_catches_shfl_missing_lanes_$o" "${run[@]}" shfl_partial -- \
            "kernel warp_sum_partial_kernel" "names lanes 0xffff0000 that do not exist"
        caught "emu_${build}_catches_shfl_vs_barrier_$o" "${run[@]}" shfl_barrier -- \
            "kernel shfl_vs_barrier_kernel" "divergent warp collective"
        # half a warp shuffles, the other half takes a ballot, under one mask
        caught "emu_${build}_catches_shfl_vs_ballot_$o" "${run[@]}" shfl_ballot -- \
            "kernel shfl_vs_ballot_kernel" "must join the same collective"
        # a cooperative_groups::reduce that only half of each tile calls
        caught "emu_${build}_catches_halfwarp_tile_reduce_$o" env EMU_ORDER=$o build/emu/$build/coop_groups halfwarp -- \
            "kernel halfwarp_reduce_kernel" "dev/emu/tests/coop_groups.cu:" "inactive lane"
        # an mma_sync half the warp skips; a kernel that assumes the fragment layout
        caught "emu_${build}_catches_halfwarp_mma_$o" env EMU_ORDER=$o build/emu/$build/wmma halfwarp -- \
            "kernel wmma_halfwarp_kernel" "dev/emu/tests/wmma.cu:" "inactive lane"
        caught "emu_${build}_catches_halfwarp_ptx_mma_$o" env EMU_ORDER=$o build/emu/$build/ptx halfwarp -- \
            "kernel mma_kernel" "llmc/ptx.cuh:" "inactive lane"
        caught "emu_${build}_catches_misaligned_ldmatrix_$o" env EMU_ORDER=$o build/emu/$build/ptx misaligned -- \
            "kernel mma_kernel" "ldmatrix at llmc/ptx.cuh:" "is not 16-byte aligned"
        caught "emu_${build}_catches_ldmatrix_from_global_$o" env EMU_ORDER=$o build/emu/$build/ptx global_ldmatrix -- \
            "kernel mma_kernel" "ldmatrix at llmc/ptx.cuh:" "is not in shared memory"
        # a cp.async pipeline that reads before its wait, or refills a buffer without the barrier
        # after the other warp's reads (seen when copies land at issue and warps run apart)
        caught "emu_${build}_catches_cp_async_without_wait_$o" env EMU_ORDER=$o build/emu/$build/ptx nowait -- \
            "cp.async pipeline: mismatch vs the CPU reference"
        caught "emu_${build}_catches_cp_async_refill_race_$o" env EMU_ORDER=$o EMU_CP_ASYNC=early EMU_WARPS=serial \
            build/emu/$build/ptx norefill_barrier -- "cp.async pipeline: mismatch vs the CPU reference"
        # wgmma: an mma_async with no wgmma.fence since the last commit; an operand a cp.async landed
        # (at the wait, or at issue) with no fence.proxy.async after it; a block that is not one
        # warpgroup; A registers changed while the wgmma may still read them
        caught "emu_${build}_catches_wgmma_without_fence_$o" env EMU_ORDER=$o build/emu/$build/ptx wgmma_nofence -- \
            "kernel wgmma_kernel" "wgmma.mma_async at llmc/ptx.cuh:" "without a wgmma.fence"
        caught "emu_${build}_catches_wgmma_without_proxy_fence_$o" env EMU_ORDER=$o build/emu/$build/ptx wgmma_noproxy \
            -- "kernel wgmma_kernel" "wgmma at llmc/ptx.cuh:" "no fence.proxy.async"
        caught "emu_${build}_catches_wgmma_without_proxy_fence_early_$o" env EMU_ORDER=$o EMU_CP_ASYNC=early \
            build/emu/$build/ptx wgmma_noproxy -- "kernel wgmma_kernel" "no fence.proxy.async"
        caught "emu_${build}_catches_wgmma_block64_$o" env EMU_ORDER=$o build/emu/$build/ptx wgmma_block64 -- \
            "kernel wgmma_kernel" "blocks of one warpgroup" "not 64"
        caught "emu_${build}_catches_wgmma_a_registers_changed_$o" env EMU_ORDER=$o build/emu/$build/ptx wgmma_achange \
            -- "kernel wgmma_kernel" "its A registers changed before the wgmma.wait_group"
        # a device that reads the descriptors' lbo and sbo the other way round: the check fails and
        # its probe (the kernel again with them swapped) names which descriptors
        mn_named="swapped in the MN-major (the RS B operand) descriptors the results match"
        k_named="swapped in the K-major (the SS operands) descriptors the results match"
        caught "emu_${build}_wgmma_probe_names_swapped_mn_strides_$o" env EMU_ORDER=$o EMU_WGMMA_SWAPPED_STRIDES=mn \
            build/emu/$build/ptx wgmma -- "A in registers, B MN-major: mismatch" "$mn_named" "attnw_desc_mn_major" \
            "!$k_named" "!A, B in shared memory: mismatch"
        caught "emu_${build}_wgmma_probe_names_swapped_k_strides_$o" env EMU_ORDER=$o EMU_WGMMA_SWAPPED_STRIDES=k \
            build/emu/$build/ptx wgmma -- "A, B in shared memory: mismatch" "$k_named" "attnw_desc_k_major" \
            "!$mn_named" "!A in registers, B MN-major: mismatch"
        caught "emu_${build}_wgmma_probe_names_both_swapped_$o" env EMU_ORDER=$o EMU_WGMMA_SWAPPED_STRIDES=both \
            build/emu/$build/ptx wgmma -- "$k_named" "$mn_named"
        caught "emu_${build}_catches_wmma_layout_assumption_$o" env EMU_ORDER=$o build/emu/$build/wmma layout -- \
            "layout: mismatch vs the CPU reference"
        caught "emu_${build}_catches_wmma_misaligned_pointer_$o" env EMU_ORDER=$o build/emu/$build/wmma misaligned -- \
            "kernel wmma_strided_kernel" "wmma::load_matrix_sync at dev/emu/tests/wmma.cu:" "is not 32-byte aligned"
        caught "emu_${build}_catches_wmma_bad_ldm_$o" env EMU_ORDER=$o build/emu/$build/wmma badldm -- \
            "kernel wmma_strided_kernel" "ldm 12 is not a multiple of 16 bytes"
        check "emu_${build}_wmma_from_aligned_shared_$o" env EMU_ORDER=$o build/emu/$build/wmma shared
        caught "emu_${build}_catches_wmma_unaligned_shared_$o" env EMU_ORDER=$o build/emu/$build/wmma unaligned_shared -- \
            "kernel wmma_unaligned_shared_kernel" "is not 32-byte aligned"
    done

    # (c) off-by-one writes: ASan/UBSan, or the emulator's guard regions
    if [ $build = asan ]; then
        caught emu_asan_catches_global_oob build/emu/asan/bad_kernels oob -- \
            "kernel scale_oob_kernel" "thread (0,0,0)" "heap-buffer-overflow"
        caught emu_asan_catches_shared_oob build/emu/asan/bad_kernels shared_oob -- \
            "kernel shift_shared_oob_kernel" "thread (127,0,0)" "out of bounds"
    else
        caught emu_plain_catches_global_oob build/emu/plain/bad_kernels oob -- \
            "kernel scale_oob_kernel" "wrote past the end of the 4096-byte cudaMalloc buffer"
        caught emu_plain_catches_shared_oob build/emu/plain/bad_kernels shared_oob -- \
            "kernel shift_shared_oob_kernel" "wrote past the end of __shared__ buf"
    fi
    # static + dynamic shared memory over 48 KB without the opt-in
    caught "emu_${build}_catches_shared_memory_over_48k" build/emu/$build/bad_kernels shared_over -- \
        "kernel sum_kernel" "__shared__ buf: 512 bytes of static shared memory with 49152 of dynamic (opt-in: 0)"
    # dynamic shared memory over the opt-in (16 KB), though under 48 KB: the launch fails
    caught "emu_${build}_catches_shared_memory_over_optin" build/emu/$build/bad_kernels optin_over -- \
        "invalid argument"
    # more threads per block than the kernel's __launch_bounds__: refused on the device
    caught "emu_${build}_catches_launch_over_bounds" build/emu/$build/bad_kernels over_bounds -- \
        "kernel sum_overbounds_kernel" "launched with 128 threads per block, over its __launch_bounds__ of 64"
done

# the race check (build/emu/tsan: ThreadSanitizer sees every access; see
# dev/emu/emu_races.h): the correct kernels and the warp
# instructions' emulation run with no race reported (thread order does not
# matter to it: forward only)
for t in good_kernels coop_groups wmma ptx bf16; do check "emu_tsan_${t}_no_race" build/emu/tsan/$t; done
check emu_tsan_ptx_early_serial_no_race env EMU_CP_ASYNC=early EMU_WARPS=serial build/emu/tsan/ptx
check emu_tsan_bad_kernels_control_no_race build/emu/tsan/bad_kernels good
check emu_tsan_shared_optin_no_race build/emu/tsan/bad_kernels optin
check emu_tsan_streams_no_race env EMU_LATE_STREAM=random build/emu/tsan/streams good
check emu_tsan_streams_no_race_in_order build/emu/tsan/streams good
# on two streams, each bug that only a late stream shows by its stale data
# above is a race in the default order, where every value read is right:
# the consumer's missing wait, the producer overwriting what the consumer
# has yet to read, and cudaMemcpy reading a non-blocking stream's work
caught emu_tsan_catches_missing_wait_between_streams build/emu/tsan/streams no-wait -- \
    "ThreadSanitizer: data race" "twice(float*, float const*, int) dev/emu/tests/streams.cu:" \
    "fill(float*, float, int) dev/emu/tests/streams.cu:" "'stream 1 block" "'stream 2 block" "kernel twice"
caught emu_tsan_catches_overwrite_before_read_on_another_stream build/emu/tsan/streams no-free -- \
    "ThreadSanitizer: data race" "Previous read of size 4" "kernel fill"
caught emu_tsan_catches_memcpy_skipping_nonblocking_stream build/emu/tsan/streams legacy -- \
    "ThreadSanitizer: data race" "fill(float*, float, int) dev/emu/tests/streams.cu:" \
    "a copy, memset or library call on stream 0"
# EMU_DROP_WAITS=1 (every cudaStreamWaitEvent ignored) turns the good program into a racy one
caught emu_tsan_catches_dropped_waits env EMU_DROP_WAITS=1 build/emu/tsan/streams good -- "ThreadSanitizer: data race"
# each race is reported in the first order, with both lines and the kernel: the missing barrier,
# the warps' partials read after a __syncwarp only (without the race check, only
# EMU_WARPS=serial shows it), and a block reading what the block before it wrote in the same
# launch, which is right in every thread order without the race check (the blocks run in order)
caught emu_tsan_catches_missing_barrier build/emu/tsan/bad_kernels nobarrier -- \
    "ThreadSanitizer: data race" "sum_nobarrier_kernel(float*, float const*) dev/emu/tests/bad_kernels.cu:" \
    "kernel sum_nobarrier_kernel (block (0,0,0)"
caught emu_tsan_catches_missing_barrier_between_warps build/emu/tsan/bad_kernels warp_partials -- \
    "ThreadSanitizer: data race" "kernel sum_warp_partials_kernel"
for o in $ORDERS; do check "emu_plain_chained_blocks_right_in_order_$o" env EMU_ORDER=$o build/emu/plain/bad_kernels chained; done
caught emu_tsan_catches_blocks_of_one_launch_in_sequence build/emu/tsan/bad_kernels chained -- \
    "ThreadSanitizer: data race" "prefix_chained_kernel(float*, float const*) dev/emu/tests/bad_kernels.cu:" \
    "kernel prefix_chained_kernel (block (1,0,0) thread (0,0,0)" "'stream 0 block (0,0,0) thread (0,0,0)'"

if [ "${EMU_BF16_ALL:-0}" = 1 ]; then check emu_bf16_all_2pow32 build/emu/plain/bf16 all; fi

# a bad EMU_ORDER, EMU_WARPS, EMU_CP_ASYNC, EMU_DROP_WAITS or EMU_WGMMA_SWAPPED_STRIDES is refused, not ignored
caught emu_rejects_bad_order env EMU_ORDER=sideways build/emu/plain/good_kernels -- "EMU_ORDER=sideways"
caught emu_rejects_bad_warps env EMU_WARPS=parallel build/emu/plain/good_kernels -- "EMU_WARPS=parallel" "lockstep or serial"
caught emu_rejects_bad_cp_async env EMU_CP_ASYNC=never build/emu/plain/good_kernels -- "EMU_CP_ASYNC=never" "late or early"
caught emu_rejects_bad_drop_waits env EMU_DROP_WAITS=yes build/emu/plain/good_kernels -- "EMU_DROP_WAITS=yes" "0 or 1"
caught emu_rejects_bad_wgmma_swapped_strides env EMU_WGMMA_SWAPPED_STRIDES=m build/emu/plain/good_kernels -- \
    "EMU_WGMMA_SWAPPED_STRIDES=m" "k, mn or both"

# the same sources are real CUDA: nvcc, compile only, warnings as errors
if out=$(make -s -j"$(nproc)" emu-nvcc 2>&1); then pass emu_nvcc_compiles_test_kernels
else
    fail emu_nvcc_compiles_test_kernels "make emu-nvcc failed"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
fi
