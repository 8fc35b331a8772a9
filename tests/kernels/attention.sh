# tests/kernels/attention.sh (sourced by tests/t_kernels.sh): the launchers
# refuse sizes their kernels cannot handle, and every attention kernel
# promises bitwise reproducibility (no atomics, one thread sums each value in
# a fixed order): the output hashes the check prints must be the same in
# every thread order and (once both builds ran) with and without ASan
expect_error "kernel_${BUILD}_attention_refuses_c_not_multiple_of_nh" \
    "error: attention_forward_simple: C = 100 is not a positive multiple of NH = 3" build/emu/$BUILD/cuda/attention badnh
expect_error "kernel_${BUILD}_attention_forward_refuses_hs_48" \
    "error: attention_forward: head size C / NH = 48 is not supported" build/emu/$BUILD/cuda/attention badhs
expect_error "kernel_${BUILD}_attention_backward_refuses_hs_48" \
    "error: attention_backward: head size C / NH = 48 is not supported" build/emu/$BUILD/cuda/attention badhsb
expect_error "kernel_${BUILD}_attention_mma_refuses_misaligned_ds_scratch" \
    "error: attention_backward_mma: dS's scratch is not 16-byte aligned" build/emu/$BUILD/cuda/attention dsmisaligned
expect_error "kernel_${BUILD}_attention_mma_refuses_ds_scratch_over_2_32_values" \
    "error: attention_backward_mma: B = 7711, NH = 1, T = 1024: dS would exceed 2^32 values (pass no scratch)" \
    build/emu/$BUILD/cuda/attention dstoolarge
same_bits_every_order attention
