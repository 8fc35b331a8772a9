# tests/kernels/cast.sh (sourced by tests/t_kernels.sh): the cast launchers
# refuse pointers that are not 16-byte aligned (they use 128-bit accesses)
expect_error "kernel_${BUILD}_cast_refuses_misaligned" "error: cast_float_to_bf16: pointers must be 16-byte aligned" \
    build/emu/$BUILD/cuda/cast badalign
