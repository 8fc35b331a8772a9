/*
 * dev/cpu/gemm_rev.c: llmc/gemm.h of another git revision, as gemm_rev(), the
 * baseline of a -DBENCH_GEMM_REV build of bench_gemm.c (make bench-gemm-rev
 * REV=...). Compiled with -I naming that revision's copy of llmc/, so that
 * "gemm.h" (and the "utils.h" it includes) are the old ones; its functions are
 * static, so the two versions live side by side in one program.
 */
#include "gemm.h"

void gemm_rev(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

void gemm_rev(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
