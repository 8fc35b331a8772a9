# tests/kernels/global_norm.sh (sourced by tests/t_kernels.sh): global_norm
# promises bitwise reproducibility: the same bits in every thread order, and
# (once both builds ran) with and without ASan
if [ -s "$OUTS"_forward.out ] && cmp -s "$OUTS"_forward.out "$OUTS"_reverse.out && cmp -s "$OUTS"_forward.out "$OUTS"_random.out
then pass "kernel_${BUILD}_global_norm_same_bits_every_order"
else
    fail "kernel_${BUILD}_global_norm_same_bits_every_order" "results differ between thread orders (or a run failed)"
    diff "$OUTS"_forward.out "$OUTS"_reverse.out | head -10 | sed 's/^/    /'
    diff "$OUTS"_forward.out "$OUTS"_random.out | head -10 | sed 's/^/    /'
fi
if [ "$BUILD" = plain ]; then
    if [ -s "$TMP"/asan_global_norm_forward.out ] && cmp -s "$TMP"/asan_global_norm_forward.out "$OUTS"_forward.out
    then pass kernel_global_norm_same_bits_asan_plain
    else fail kernel_global_norm_same_bits_asan_plain "ASan and plain builds give different results (or a run failed)"; fi
fi
