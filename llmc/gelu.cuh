// llmc/gelu.cuh: GELU forward and backward on the GPU, bf16 in and out,
// computed in fp32 (the tanh approximation of GPT-2, as gelu_forward /
// gelu_backward in train_gpt2.c). Each thread handles one 128-bit chunk of
// 8 bf16 values. Constraints (checked by the launchers): N % 8 == 0 and
// 16-byte-aligned pointers; GPT-2's (B,T,4C) always meets them (C % 8 == 0).
#ifndef LLMC_GELU_CUH
#define LLMC_GELU_CUH

#include <stdint.h>
#include "cuda_common.cuh"

#define GELU_SCALE 0.7978845608028654f   // sqrt(2/pi), as in train_gpt2.c
#define GELU_CUBIC 0.044715f
#define GELU_BLOCK_SIZE 512   // threads per block: a memory-bound kernel, any multiple of 32 does

// gelu'(x) of the tanh form, in fp32 (host and device: gelu_backward and
// the CPU stand-in of cuBLASLt's DGELU epilogue in llmc/matmul.cuh)
__host__ __device__ inline float gelu_grad_tanh(float x) {
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    float th = tanhf(u);
    float sech2 = 1.0f - th * th;
    return 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
}

// ----------------------------------------------------------------------------
// kernels

// out (N,) = gelu(inp (N,)); one thread per 8 values
__global__ void __launch_bounds__(GELU_BLOCK_SIZE)
    gelu_forward_kernel(floatX* out, const floatX* inp, int N) {
    int i = (blockIdx.x * blockDim.x + threadIdx.x) * Pack128<floatX>::N;
    if (i >= N) return;
    Pack128<floatX> x = load128(inp + i), y;
#pragma unroll
    for (int k = 0; k < Pack128<floatX>::N; k++) {
        float xk = (float)x[k];
        float u = GELU_SCALE * (xk + GELU_CUBIC * xk * xk * xk);
        y[k] = (floatX)(0.5f * xk * (1.0f + tanhf(u)));
    }
    store128(out + i, y);
}

// dinp (N,) = dout (N,) * gelu'(inp (N,)); one thread per 8 values
__global__ void __launch_bounds__(GELU_BLOCK_SIZE)
    gelu_backward_kernel(floatX* dinp, const floatX* inp, const floatX* dout, int N) {
    int i = (blockIdx.x * blockDim.x + threadIdx.x) * Pack128<floatX>::N;
    if (i >= N) return;
    Pack128<floatX> x = load128(inp + i), d = load128(dout + i), r;
#pragma unroll
    for (int k = 0; k < Pack128<floatX>::N; k++) r[k] = (floatX)(gelu_grad_tanh((float)x[k]) * (float)d[k]);
    store128(dinp + i, r);
}

// ----------------------------------------------------------------------------
// launchers

// exits with a message when the pointers or N break the kernels' constraints
static inline void gelu_check_args(const char* who, int N, const void* a, const void* b, const void* c) {
    // (the grid's rounding up must stay within int too)
    if (N < 0 || N % Pack128<floatX>::N != 0 || N > 0x7FFFFFFF - (GELU_BLOCK_SIZE * Pack128<floatX>::N - 1)) {
        fprintf(stderr, "error: %s: N = %d is not a non-negative multiple of %d below 2^31 - %d\n", who, N,
                Pack128<floatX>::N, GELU_BLOCK_SIZE * Pack128<floatX>::N);
        exit(1);
    }
    if (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) % 16 != 0) {
        fprintf(stderr, "error: %s: pointers must be 16-byte aligned\n", who);
        exit(1);
    }
}

static inline int gelu_grid(int N) {
    int per_block = GELU_BLOCK_SIZE * Pack128<floatX>::N;
    return (N + per_block - 1) / per_block;
}

// out (N,), inp (N,)
static inline void gelu_forward(floatX* out, const floatX* inp, int N, cudaStream_t stream) {
    gelu_check_args("gelu_forward", N, out, inp, inp);
    if (N == 0) return;
    gelu_forward_kernel<<<gelu_grid(N), GELU_BLOCK_SIZE, 0, stream>>>(out, inp, N);
    cudaCheck(cudaGetLastError());
}

// dinp (N,), inp (N,), dout (N,); dinp may alias dout (each thread reads its
// chunk before it writes it)
static inline void gelu_backward(floatX* dinp, const floatX* inp, const floatX* dout, int N, cudaStream_t stream) {
    gelu_check_args("gelu_backward", N, dinp, inp, dout);
    if (N == 0) return;
    gelu_backward_kernel<<<gelu_grid(N), GELU_BLOCK_SIZE, 0, stream>>>(dinp, inp, dout, N);
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_GELU_CUH
