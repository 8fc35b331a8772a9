# tests/kernels/fused_classifier.sh (sourced by tests/t_kernels.sh): the
# launcher refuses Vp % 8 != 0 and V > Vp (the columns' launchers a block
# not of whole chunks of 8); the kernel promises bitwise
# reproducible losses and dlogits: the same bits in every thread order
expect_error "kernel_${BUILD}_fused_classifier_refuses_bad_vp" "error: fused_classifier: V = 10, Vp = 12" \
    build/emu/$BUILD/cuda/fused_classifier badvp
expect_error "kernel_${BUILD}_fused_classifier_refuses_v_above_vp" "error: fused_classifier: V = 17, Vp = 16" \
    build/emu/$BUILD/cuda/fused_classifier badv
expect_error "kernel_${BUILD}_fused_classifier_columns_refuses_bad_w" \
    "error: fused_classifier_columns_stats: n = 2, W = 12" build/emu/$BUILD/cuda/fused_classifier badw
same_bits_every_order fused_classifier
