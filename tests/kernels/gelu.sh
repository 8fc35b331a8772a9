# tests/kernels/gelu.sh (sourced by tests/t_kernels.sh): N % 8 != 0: the
# launcher says so instead of reading past the end
expect_error "kernel_${BUILD}_gelu_refuses_bad_n" "not a non-negative multiple of 8" build/emu/$BUILD/cuda/gelu badn
# "bench" under the emulation runs the checks and says it timed nothing
# (it used to print the checks alone, as if no bench existed)
if out=$(build/emu/$BUILD/cuda/gelu bench 2>&1) && printf '%s' "$out" | grep -q '^bench: not timed (emulated build'; then
    pass "kernel_${BUILD}_gelu_bench_says_not_timed"
else fail "kernel_${BUILD}_gelu_bench_says_not_timed" "$(printf '%s' "$out" | tail -2)"; fi
