# tests/kernels/matmul.sh (sourced by tests/t_kernels.sh): the launchers
# refuse sizes they do not handle (and a call before matmul_init), and the
# results (hashed per check line on stdout, matmul_backward's dbias by a
# fixed-order reduction) have the same bits in every thread order and, once
# both builds ran, with and without ASan
expect_error "kernel_${BUILD}_matmul_refuses_bad_c" "error: matmul_forward: C = 12 is not a positive multiple of 8" \
    build/emu/$BUILD/cuda/matmul badc
expect_error "kernel_${BUILD}_matmul_refuses_bad_oc" "error: matmul_forward: OC = 20 is not a positive multiple of 8" \
    build/emu/$BUILD/cuda/matmul badoc
expect_error "kernel_${BUILD}_matmul_tiled_refuses_bad_c" \
    "error: matmul_forward_tiled: C = 12 is not a positive multiple of 8" build/emu/$BUILD/cuda/matmul badctiled
expect_error "kernel_${BUILD}_matmul_wmma_refuses_bad_c" \
    "error: matmul_forward_wmma: BT = 16, C = 24, OC = 16 must be multiples of 16" build/emu/$BUILD/cuda/matmul badwmma
expect_error "kernel_${BUILD}_matmul_refuses_no_init" "matmul_init() was not called" \
    build/emu/$BUILD/cuda/matmul noinit
same_bits_every_order matmul
