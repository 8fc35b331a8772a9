/*
 * tests/test_gemm.c: checks llmc/gemm.h against a double-precision reference.
 *
 * Covers all four transpose combinations, beta 0 and 1 (beta 0 with NaN in C,
 * which must not leak through), odd sizes around the tile edges, leading
 * dimensions larger than the rows, C's padding columns left untouched, and
 * the trainer's three call shapes scaled down; an edge tile's elements get the
 * bits they get inside a full tile. Then checks bitwise
 * determinism: the trainer's full GPT-2 124M shapes give the same bits on 1,
 * 2 and 3 threads. Prints one line per failing case; exits non-zero on any.
 *
 * usage: test_gemm [-q]   (-q: only failures and the summary)
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../llmc/gemm.h"
#include "../llmc/utils.h"

// error bound per element, relative to sum_k |a||b| (+ |C| when beta = 1): a
// float sum of K products rounds K times at most, each by FLT_EPSILON/2 of the
// running magnitude; two extra terms cover the add into C
#define GEMM_TOL(K) (((double)(K) + 2.0) * FLT_EPSILON)
#define PAD_SENTINEL 12345.0f  // fills C's padding columns; must survive every call

static int n_failed = 0, n_checked = 0, quiet = 0;

static unsigned rng_state = 1;
static float rand_float(void) {  // uniform in [-1, 1)
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] = rand_float();
    }
}

// op(X)[r][c] for X stored with leading dimension ld, transposed or not
static double at(const float *X, int trans, int ld, int r, int c) {
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

// one case: pad_* are the extra elements per row beyond the logical width
static void check_case(int ta, int tb, int M, int N, int K, float beta, int pad_a, int pad_b,
                       int pad_c) {
    int lda = (ta ? M : K) + pad_a, ldb = (tb ? K : N) + pad_b, ldc = N + pad_c;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc_check((na + 1) * sizeof(float));
    float *B = malloc_check((nb + 1) * sizeof(float));
    float *C = malloc_check((nc + 1) * sizeof(float));
    float *C0 = malloc_check((nc + 1) * sizeof(float));
    fill(A, na);
    fill(B, nb);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < ldc; j++) {
            C[(size_t)i * ldc + j] = j >= N ? PAD_SENTINEL : beta == 0.0f ? NAN : rand_float();
        }
    }
    memcpy(C0, C, nc * sizeof(float));

    gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);

    int bad = 0;
    double worst = 0;
    for (int i = 0; i < M && bad < 3; i++) {
        for (int j = 0; j < ldc && bad < 3; j++) {
            float got = C[(size_t)i * ldc + j];
            if (j >= N) {
                if (got != PAD_SENTINEL) {
                    printf("FAIL case ta=%d tb=%d M=%d N=%d K=%d beta=%g: padding C[%d][%d] "
                           "overwritten (%g)\n", ta, tb, M, N, K, beta, i, j, got);
                    bad++;
                }
                continue;
            }
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = at(A, ta, lda, i, k) * at(B, tb, ldb, k, j);
                ref += p;
                mag += fabs(p);
            }
            if (beta != 0.0f) {
                double c0 = (double)beta * C0[(size_t)i * ldc + j];
                ref += c0;
                mag += fabs(c0);
            }
            double err = fabs(got - ref), tol = GEMM_TOL(K) * mag + FLT_MIN;
            if (err / (mag + FLT_MIN) > worst) {
                worst = err / (mag + FLT_MIN);
            }
            if (!(err <= tol)) {  // also catches NaN
                printf("FAIL case ta=%d tb=%d M=%d N=%d K=%d beta=%g lda=%d ldb=%d ldc=%d: "
                       "C[%d][%d] = %.9g, expected %.9g (error %.3g > tolerance %.3g)\n",
                       ta, tb, M, N, K, beta, lda, ldb, ldc, i, j, got, ref, err, tol);
                bad++;
            }
        }
    }
    n_checked++;
    if (bad) {
        n_failed++;
    } else if (!quiet) {
        printf("ok   case ta=%d tb=%d M=%d N=%d K=%d beta=%g lda=%d ldb=%d ldc=%d "
               "(worst error %.2g of sum|ab|)\n", ta, tb, M, N, K, beta, lda, ldb, ldc, worst);
    }
    free(A);
    free(B);
    free(C);
    free(C0);
}

// An element gets the same bits whether it lies in an edge tile or a full one (gemm.h's
// edge kernels do the full kernel's arithmetic): C (M x N) against the top-left corner of
// the same product widened to whole tiles (Mw x Nw, the extra rows and columns random).
static void check_edge_bits(int ta, int tb, int M, int N, int K) {
    int Mw = (M + GEMM_MR - 1) / GEMM_MR * GEMM_MR, Nw = (N + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    // wide operands; the narrow call reads their corner through the same leading dimensions
    int lda = ta ? Mw : K, ldb = tb ? K : Nw;
    size_t na = (size_t)(ta ? K : Mw) * lda, nb = (size_t)(tb ? Nw : K) * ldb, nc = (size_t)Mw * Nw;
    float *A = malloc_check(na * sizeof(float)), *B = malloc_check(nb * sizeof(float));
    float *Cw = malloc_check(nc * sizeof(float)), *Cn = malloc_check(nc * sizeof(float));
    fill(A, na);
    fill(B, nb);
    fill(Cw, nc);
    memcpy(Cn, Cw, nc * sizeof(float));
    gemm(ta, tb, Mw, Nw, K, A, lda, B, ldb, 1.0f, Cw, Nw);
    gemm(ta, tb, M, N, K, A, lda, B, ldb, 1.0f, Cn, Nw);
    int bad = 0;
    for (int i = 0; i < M && !bad; i++) {
        bad = memcmp(Cw + (size_t)i * Nw, Cn + (size_t)i * Nw, (size_t)N * sizeof(float)) != 0;
    }
    n_checked++;
    if (bad) {
        printf("FAIL edge bits ta=%d tb=%d M=%d N=%d K=%d: an edge tile's result differs from "
               "the same element's in a full tile\n", ta, tb, M, N, K);
        n_failed++;
    } else if (!quiet) {
        printf("ok   edge bits ta=%d tb=%d M=%d N=%d K=%d\n", ta, tb, M, N, K);
    }
    free(A);
    free(B);
    free(Cw);
    free(Cn);
}

#ifdef _OPENMP
// the trainer's call at full size: same bits on 1, 2 and 3 threads
static void check_determinism(const char *name, int ta, int tb, int M, int N, int K, float beta) {
    int lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *A = malloc_check(na * sizeof(float)), *B = malloc_check(nb * sizeof(float));
    float *C0 = malloc_check(nc * sizeof(float)), *C1 = malloc_check(nc * sizeof(float));
    float *Cn = malloc_check(nc * sizeof(float));
    fill(A, na);
    fill(B, nb);
    fill(C0, nc);
    memcpy(C1, C0, nc * sizeof(float));
    omp_set_num_threads(1);
    gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C1, ldc);
    for (int threads = 2; threads <= 3; threads++) {
        memcpy(Cn, C0, nc * sizeof(float));
        omp_set_num_threads(threads);
        gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, Cn, ldc);
        n_checked++;
        if (memcmp(C1, Cn, nc * sizeof(float)) != 0) {
            size_t i = 0;
            while (memcmp(&C1[i], &Cn[i], sizeof(float)) == 0) {
                i++;
            }
            printf("FAIL determinism %s (M=%d N=%d K=%d): 1 vs %d threads differ first at "
                   "C[%zu][%zu]: %.9g vs %.9g\n", name, M, N, K, threads, i / N, i % N, C1[i], Cn[i]);
            n_failed++;
        } else if (!quiet) {
            printf("ok   determinism %s (M=%d N=%d K=%d): 1 and %d threads bitwise equal\n", name,
                   M, N, K, threads);
        }
    }
    free(A);
    free(B);
    free(C0);
    free(C1);
    free(Cn);
}
#endif

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else {
            fatal("unknown flag '%s' (usage: test_gemm [-q])", argv[i]);
        }
    }
    printf("gemm test: tile %dx%d, KC=%d, %s, %s\n", GEMM_MR, GEMM_NR, GEMM_KC,
#ifdef __AVX512F__
           "AVX-512 path",
#else
           "portable path",
#endif
#ifdef _OPENMP
           "OpenMP"
#else
           "no OpenMP"
#endif
    );

    // odd sizes around the tile edges, every transpose and beta, with padding
    static const int sizes[] = {1, 3, 17, 40, 65, 255, 257};
    const int ns = sizeof(sizes) / sizeof(sizes[0]);
    for (int t = 0; t < 4; t++) {
        int ta = t >> 1, tb = t & 1;
        for (int im = 0; im < ns; im++) {
            for (int in = 0; in < ns; in++) {
                // K walks the sizes too (offset so every (M, N) meets several K)
                int K = sizes[(im + 2 * in + t) % ns];
                float beta = (im + in + t) % 2 ? 1.0f : 0.0f;
                int pad = (im + in) % 3 == 0 ? 0 : 1 + (im * 7 + in * 3) % 13;
                check_case(ta, tb, sizes[im], sizes[in], K, beta, pad, pad + 2, pad + 5);
            }
        }
        // K spanning several KC blocks, and K = 0
        check_case(ta, tb, 17, 65, 3 * GEMM_KC + 5, 1.0f, 3, 0, 1);
        check_case(ta, tb, 65, 17, 2 * GEMM_KC, 0.0f, 0, 3, 0);
        check_case(ta, tb, 9, 50, 0, 0.0f, 1, 1, 1);
        check_case(ta, tb, 9, 50, 0, 1.0f, 1, 1, 1);
        check_case(ta, tb, 33, 97, 40, 0.5f, 2, 0, 3);  // a general beta
    }
    // edge tiles of one, two and three vectors of columns (C = 64: 48 + 16), short rows,
    // K over several blocks
    for (int t = 0; t < 4; t++) {
        check_edge_bits(t >> 1, t & 1, 13, 64, 300);
        check_edge_bits(t >> 1, t & 1, 16, 80, 70);
        check_edge_bits(t >> 1, t & 1, 5, 45, 257);
    }
    // operands too big to keep packed whole: repacked per block, several row and
    // column blocks, next-block prefetch; C split by columns, then by rows
    check_case(0, 1, 300, 301, 1000, 0.0f, 0, 1, 2);
    check_case(1, 0, 300, 301, 1000, 1.0f, 3, 0, 0);
    check_case(0, 0, 700, 400, 900, 1.0f, 1, 0, 1);
    check_case(1, 1, 700, 400, 900, 0.0f, 0, 2, 0);
    // the trainer's three calls, scaled down (BT=64, C=96, OC in {288, 96, 384, 1000})
    static const int ocs[] = {288, 96, 384, 1000};
    const int BT = 64, C = 96;
    for (int i = 0; i < 4; i++) {
        int OC = ocs[i];
        check_case(0, 1, BT, OC, C, 0.0f, 0, 0, 0);  // forward: out = inp @ W^T
        check_case(0, 0, BT, C, OC, 1.0f, 0, 0, 0);  // dinp += dout @ W
        check_case(1, 0, OC, C, BT, 1.0f, 0, 0, 0);  // dW += dout^T @ inp
    }
    check_case(0, 1, BT, C, 4 * C, 0.0f, 0, 0, 0);  // MLP projection 4C -> C
    check_case(0, 0, BT, 4 * C, C, 1.0f, 0, 0, 0);
    check_case(1, 0, C, 4 * C, BT, 1.0f, 0, 0, 0);
    // threads split the longer side of C: exercise both with 3 threads (uneven shares)
#ifdef _OPENMP
    omp_set_num_threads(3);
    check_case(0, 0, 301, 53, 70, 1.0f, 1, 2, 3);
    check_case(1, 1, 53, 301, 70, 0.0f, 1, 2, 3);
    omp_set_num_threads(omp_get_num_procs());
#endif

#ifdef _OPENMP
    // bitwise determinism on the GPT-2 124M shapes (BT=256, C=768)
    static const int full_ocs[] = {2304, 768, 3072, 50304};
    for (int i = 0; i < 4; i++) {
        int OC = full_ocs[i];
        char name[64];
        snprintf(name, sizeof(name), "forward OC=%d", OC);
        check_determinism(name, 0, 1, 256, OC, 768, 0.0f);
        snprintf(name, sizeof(name), "dinp OC=%d", OC);
        check_determinism(name, 0, 0, 256, 768, OC, 1.0f);
        snprintf(name, sizeof(name), "dweight OC=%d", OC);
        check_determinism(name, 1, 0, OC, 768, 256, 1.0f);
    }
    check_determinism("forward 3072->768", 0, 1, 256, 768, 3072, 0.0f);
    check_determinism("dinp 3072->768", 0, 0, 256, 3072, 768, 1.0f);
    check_determinism("dweight 3072->768", 1, 0, 768, 3072, 256, 1.0f);
#else
    printf("note: built without OpenMP, determinism across threads not checked\n");
#endif

    printf("%d of %d checks failed\n", n_failed, n_checked);
    return n_failed ? 1 : 0;
}
