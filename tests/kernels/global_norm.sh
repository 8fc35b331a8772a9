# tests/kernels/global_norm.sh (sourced by tests/t_kernels.sh): global_norm
# promises bitwise reproducibility: the same bits in every thread order, and
# (once both builds ran) with and without ASan
same_bits_every_order global_norm
expect_error "kernel_${BUILD}_global_norm_refuses_misaligned" "error: global_norm_squared: the values must be 16-byte aligned" \
    build/emu/$BUILD/cuda/global_norm misaligned
