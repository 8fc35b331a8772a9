# tests/kernels/gelu.sh (sourced by tests/t_kernels.sh): N % 8 != 0: the
# launcher says so instead of reading past the end
expect_error "kernel_${BUILD}_gelu_refuses_bad_n" "not a non-negative multiple of 8" build/emu/$BUILD/cuda/gelu badn
