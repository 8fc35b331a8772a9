# tests/kernels/encoder.sh (sourced by tests/t_kernels.sh): bad sizes and bad
# token ids are refused with a message; encoder_backward promises
# deterministic gradients: the same result bits (the checksums the check
# prints) in every thread order, and with and without ASan
expect_error "kernel_${BUILD}_encoder_forward_refuses_bad_c" \
    "error: encoder_forward: C = 12 is not a positive multiple of 8" build/emu/$BUILD/cuda/encoder badc
expect_error "kernel_${BUILD}_encoder_backward_refuses_bad_c" \
    "error: encoder_backward: C = 12 is not a positive multiple of 8" build/emu/$BUILD/cuda/encoder badcbwd
expect_error "kernel_${BUILD}_encoder_backward_refuses_bad_token" \
    "error: encoder_backward: token id 5 at position 3 is not in [0, V = 5)" build/emu/$BUILD/cuda/encoder badtoken
same_bits_every_order encoder
