# tests/kernels/layernorm.sh (sourced by tests/t_kernels.sh): C % 8 != 0:
# both layernorm launchers refuse it (rows are read in 8-value chunks)
expect_error "kernel_${BUILD}_layernorm_refuses_bad_c" "error: layernorm_forward: C = 12 is not a positive multiple of 8" \
    build/emu/$BUILD/cuda/layernorm badc
expect_error "kernel_${BUILD}_fused_residual_layernorm_refuses_bad_c" \
    "fused_residual_layernorm_forward: C = 12 is not a positive multiple of 8" build/emu/$BUILD/cuda/layernorm badcfused
