// dev/cuda/gelu.cu: checks and benchmarks the GELU kernels of llmc/gelu.cuh
// against a CPU reference; exits 1 on any mismatch.
//
//   gelu          check: several sizes (one chunk, a partial block, many
//                 blocks), forward and backward, random bf16 inputs
//   gelu bench    also time both kernels on (B,T,4C) = (8,1024,3072) and print
//                 GB/s (real GPU only; under the emulation it only checks)
//   gelu badn     calls gelu_forward with N % 8 != 0: must fail with a message
//
// The reference is the kernels' formula in fp32 on the bf16-rounded inputs,
// rounded to bf16. The two can differ in fp32 (the device's tanhf is not the
// host's, and the compiler may fuse multiply-adds), which can move a result
// across a bf16 rounding boundary: hence one bf16 ulp of tolerance, plus an
// absolute floor where fp32 cancellation makes relative error meaningless.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/gelu.cuh"
#include "common.cuh"

// inputs are drawn from [-INPUT_RANGE, INPUT_RANGE): past +-5 GELU is x or 0
#define INPUT_RANGE 6.0f
// 1 + tanh(u) loses absolute, not relative, accuracy near u << 0: a few fp32
// ulps of 1 (2^-23 each), times |x| / 2 <= 3, stays far below 2^-16; a wrong
// formula (sigmoid approximation, a missing factor) is off by ~1e-2
#define GELU_ABS_TOL (1.0f / 65536.0f)

// ----------------------------------------------------------------------------
// CPU reference

static float gelu_ref(float x) {
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}
static float gelu_grad_ref(float x) {
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    float th = tanhf(u);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
}

// 0 when every got[i] is within one bf16 ulp of want[i] plus GELU_ABS_TOL
static int compare_bf16(const char* what, int N, const floatX* got, const float* want) {
    for (int i = 0; i < N; i++) {
        float g = __bfloat162float(got[i]), w = __bfloat162float(__float2bfloat16(want[i]));
        if (!(fabsf(g - w) <= bf16_ulp(w) + GELU_ABS_TOL)) {
            fprintf(stderr, "error: %s N=%d: mismatch vs the CPU reference at %d: got %.6g, want %.6g\n",
                    what, N, i, g, w);
            return 1;
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// check, bench

static int check(int N, uint32_t seed) {
    floatX *inp = (floatX*)xmalloc(N * sizeof(floatX)), *dout = (floatX*)xmalloc(N * sizeof(floatX));
    floatX* got = (floatX*)xmalloc(N * sizeof(floatX));
    float *inpf = (float*)xmalloc(N * sizeof(float)), *doutf = (float*)xmalloc(N * sizeof(float));
    float* want = (float*)xmalloc(N * sizeof(float));
    fill_bf16(inp, inpf, N, 0.0f, INPUT_RANGE, seed);
    fill_bf16(dout, doutf, N, 0.0f, INPUT_RANGE, seed + 1);
    floatX *d_inp, *d_dout, *d_out;
    cudaCheck(cudaMalloc(&d_inp, N * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dout, N * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, N * sizeof(floatX)));
    cudaCheck(cudaMemcpy(d_inp, inp, N * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dout, dout, N * sizeof(floatX), cudaMemcpyHostToDevice));
    int bad = 0;

    gelu_forward(d_out, d_inp, N, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got, d_out, N * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++) want[i] = gelu_ref(inpf[i]);
    bad |= compare_bf16("gelu_forward", N, got, want);

    gelu_backward(d_out, d_inp, d_dout, N, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got, d_out, N * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++) want[i] = doutf[i] * gelu_grad_ref(inpf[i]);
    bad |= compare_bf16("gelu_backward", N, got, want);

    // in place, as the trainer calls it: dinp == dout
    gelu_backward(d_dout, d_inp, d_dout, N, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got, d_dout, N * sizeof(floatX), cudaMemcpyDeviceToHost));
    bad |= compare_bf16("gelu_backward in place", N, got, want);

    cudaCheck(cudaFree(d_inp));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_out));
    free(inp); free(dout); free(got); free(inpf); free(doutf); free(want);
    if (!bad) printf("gelu N=%d: forward and backward match the CPU reference\n", N);
    return bad;
}

#ifndef CUDA_EMU
static void bench(void) {
    int N = 8 * 1024 * 4 * 768;   // (B,T,4C) of GPT-2 124M at B=8, T=1024
    floatX *d_inp, *d_dout, *d_out;
    cudaCheck(cudaMalloc(&d_inp, N * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dout, N * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, N * sizeof(floatX)));
    cudaCheck(cudaMemset(d_inp, 0, N * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dout, 0, N * sizeof(floatX)));
    float f = bench_ms([&] { gelu_forward(d_out, d_inp, N, 0); }, 100);
    float b = bench_ms([&] { gelu_backward(d_out, d_inp, d_dout, N, 0); }, 100);
    // bytes moved: forward reads inp and writes out; backward reads two, writes one
    bench_report("gelu_forward", f, 2.0 * N * sizeof(floatX), 0);
    bench_report("gelu_backward", b, 3.0 * N * sizeof(floatX), 0);
    cudaCheck(cudaFree(d_inp));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_out));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 || (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badn"))) {
        fprintf(stderr, "error: usage: gelu [check|bench|badn]\n");
        return 2;
    }
    if (!strcmp(mode, "badn")) {
        floatX* d;
        cudaCheck(cudaMalloc(&d, 16 * sizeof(floatX)));
        gelu_forward(d, d, 12, 0);   // exits 1
        return 0;
    }
    // one chunk; a partial block; several blocks with a partial last one
    int sizes[] = {8, 8 * 300, GELU_BLOCK_SIZE * 8 * 64 + 8 * 37};
    int bad = 0;
    for (int i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++) bad |= check(sizes[i], 1234u + i);
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
