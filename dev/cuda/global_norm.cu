// dev/cuda/global_norm.cu: checks and benchmarks global_norm_squared of
// llmc/global_norm.cuh against a CPU reference; exits 1 on any mismatch.
//
//   global_norm        check: fp32 and bf16 vectors of several lengths (0, 1,
//                      a partial warp, a partial grid, several strides of
//                      the grid with a ragged end); each is computed twice
//                      (scratch refilled with garbage in between) and the two
//                      results must be the same bits; one line per case with
//                      the result's bits, which tests/t_kernels.sh compares
//                      across thread orders
//   global_norm bench  also time both types on 124M values (GPT-2 124M's
//                      parameter count) and print GB/s (real GPU only)
//   global_norm misaligned  values not 16-byte aligned: must fail with a
//                      message
//
// Tolerance: the reference sums the same values' squares in double (its own
// error, about count * 2^-53 relative, is negligible). The kernels' fp32 result
// is a sum of non-negative terms in which each term goes through at most
// d = 1 + K + 23 roundings (its square; K = N ceil(count / N / (BLOCKS *
// THREADS)) + 1 additions in its thread, N values per 16-byte pack and one
// of the ragged end; 5 + 5 levels of warp reduces in stage 1; 2
// sequential additions and 5 + 5 levels in stage 2, where 512 partials / 256
// threads = 2), each a factor (1 + delta) with |delta| <= u = 2^-24. For
// non-negative terms that bounds the relative error by d u / (1 - d u)
// (Higham, "Accuracy and Stability of Numerical Algorithms", sec. 4.2),
// far tighter than count * u. The last value of every vector is large
// (16, square 256) so that dropping it breaks the bound by orders of magnitude.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/global_norm.cuh"
#include "common.cuh"

#define LAST_VALUE 16.0f

static void fill(float* x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = lcg_uniform(&seed) * 2.0f;   // [-2, 2)
    if (n) x[n - 1] = LAST_VALUE;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// relative error bound of the kernels' fp32 sum over count values of type T
// (see the top of the file)
template <class T>
static double rel_bound(size_t count) {
    const size_t threads = (size_t)GLOBAL_NORM_BLOCKS * GLOBAL_NORM_THREADS, N = Pack128<T>::N;
    const size_t K = N * ((count / N + threads - 1) / threads) + 1;
    return gamma_u(1.0 + (double)K + 23.0);
}

// runs global_norm_squared on the host values hv (converted to T), twice; 0 if
// both results match the CPU and each other bit for bit
template <class T>
static int check(const char* type, size_t count, uint32_t seed) {
    float* x = (float*)xmalloc((count + 1) * sizeof(float));
    T* hv = (T*)xmalloc((count + 1) * sizeof(T));
    fill(x, count, seed);
    double want = 0.0;
    for (size_t i = 0; i < count; i++) {
        hv[i] = (T)x[i];
        double v = (double)(float)hv[i];   // the value the GPU sees (bf16-rounded for bf16)
        want += v * v;
    }
    T* d_v;
    float *d_out, *d_scratch;
    cudaCheck(cudaMalloc(&d_v, (count + 1) * sizeof(T)));
    cudaCheck(cudaMalloc(&d_out, sizeof(float)));
    cudaCheck(cudaMalloc(&d_scratch, GLOBAL_NORM_BLOCKS * sizeof(float)));
    if (count) cudaCheck(cudaMemcpy(d_v, hv, count * sizeof(T), cudaMemcpyHostToDevice));
    float got[2];
    for (int run = 0; run < 2; run++) {
        // garbage in scratch and out: the result must not depend on them
        cudaCheck(cudaMemset(d_scratch, run ? 0x7F : 0xFF, GLOBAL_NORM_BLOCKS * sizeof(float)));
        cudaCheck(cudaMemset(d_out, 0xFF, sizeof(float)));
        global_norm_squared(d_out, d_v, count, d_scratch, 0);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(&got[run], d_out, sizeof(float), cudaMemcpyDeviceToHost));
    }
    int bad = 0;
    double tol = rel_bound<T>(count) * want;
    if (!(fabs((double)got[0] - want) <= tol)) {
        fprintf(stderr, "error: global_norm %s count=%zu: got %.9g, want %.9g (CPU, double): error %.3g > bound %.3g\n",
                type, count, got[0], want, fabs((double)got[0] - want), tol);
        bad = 1;
    }
    if (float_bits(got[0]) != float_bits(got[1])) {
        fprintf(stderr, "error: global_norm %s count=%zu: not reproducible: 0x%08x then 0x%08x\n", type, count,
                float_bits(got[0]), float_bits(got[1]));
        bad = 1;
    }
    if (!bad)
        printf("global_norm %s count=%zu: %.9g bits 0x%08x (CPU %.9g, rel error %.2e <= %.2e)\n", type, count, got[0],
               float_bits(got[0]), want, want ? fabs((double)got[0] - want) / want : 0.0, rel_bound<T>(count));
    cudaCheck(cudaFree(d_v));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_scratch));
    free(x);
    free(hv);
    return bad;
}

#ifndef CUDA_EMU
template <class T>
static void bench(const char* type) {
    size_t count = 124475904;   // GPT-2 124M's parameters (padded vocab)
    T* d_v;
    float *d_out, *d_scratch;
    cudaCheck(cudaMalloc(&d_v, count * sizeof(T)));
    cudaCheck(cudaMalloc(&d_out, sizeof(float)));
    cudaCheck(cudaMalloc(&d_scratch, GLOBAL_NORM_BLOCKS * sizeof(float)));
    cudaCheck(cudaMemset(d_v, 0, count * sizeof(T)));
    float ms = bench_ms([&] { global_norm_squared(d_out, d_v, count, d_scratch, 0); }, 50);
    char name[64];
    snprintf(name, sizeof name, "global_norm_squared_%s", type);
    bench_report(name, ms, (double)count * sizeof(T), 0);
    cudaCheck(cudaFree(d_v));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_scratch));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 || (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "misaligned"))) {
        fprintf(stderr, "error: usage: global_norm [check|bench|misaligned]\n");
        return 2;
    }
    if (!strcmp(mode, "misaligned")) {
        floatX* d_v;
        float* d_scratch;
        cudaCheck(cudaMalloc(&d_v, 64 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&d_scratch, (GLOBAL_NORM_BLOCKS + 1) * sizeof(float)));
        global_norm_squared(d_scratch + GLOBAL_NORM_BLOCKS, d_v + 1, 32, d_scratch, 0);   // exits
        return 0;
    }
    size_t grid = (size_t)GLOBAL_NORM_BLOCKS * GLOBAL_NORM_THREADS;
    // empty; one value; a partial warp; a partial grid; 2+ strides of 16-byte
    // packs (8 bf16, 4 fp32 values), ragged end
    size_t sizes[] = {0, 1, 17, 1000 * 37 + 3, 2 * grid * 8 + 12345};
    int bad = 0;
    for (int i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++) {
        bad |= check<float>("fp32", sizes[i], 1234u + i);
        bad |= check<floatX>("bf16", sizes[i], 4321u + i);
    }
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) {
        bench<float>("fp32");
        bench<floatX>("bf16");
    }
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
