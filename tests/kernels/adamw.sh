# tests/kernels/adamw.sh (sourced by tests/t_kernels.sh): the launcher
# refuses t < 1; the stochastic rounding's bits depend only on (seed, index),
# so every thread order (and both builds) must give the same result bits
expect_error "kernel_${BUILD}_adamw_refuses_bad_t" "error: adamw_update: t = 0" build/emu/$BUILD/cuda/adamw badt
same_bits_every_order adamw
