# tests/kernels/layernorm.sh (sourced by tests/t_kernels.sh): C % 8 != 0:
# every layernorm launcher refuses it (rows are read in 8-value chunks); the
# backward promises bitwise reproducibility: the same bits (its lines' output
# checksums, and all other lines) in every thread order, and (once both
# builds ran) with and without ASan
expect_error "kernel_${BUILD}_layernorm_refuses_bad_c" "error: layernorm_forward: C = 12 is not a positive multiple of 8" \
    build/emu/$BUILD/cuda/layernorm badc
expect_error "kernel_${BUILD}_fused_residual_layernorm_refuses_bad_c" \
    "fused_residual_layernorm_forward: C = 12 is not a positive multiple of 8" build/emu/$BUILD/cuda/layernorm badcfused
expect_error "kernel_${BUILD}_layernorm_backward_refuses_bad_c" \
    "error: layernorm_backward: C = 12 is not a positive multiple of 8" build/emu/$BUILD/cuda/layernorm badcbwd
same_bits_every_order layernorm
