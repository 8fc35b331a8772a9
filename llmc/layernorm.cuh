// llmc/layernorm.cuh: layer normalisation forward on the GPU, bf16 in and
// out with fp32 statistics (as layernorm_forward in train_gpt2.c, eps 1e-5),
// alone or fused with the residual addition before it (as residual_forward
// then layernorm_forward, which is how GPT-2's blocks use it).
//
// One warp (a 32-thread cooperative-groups tile) per row of C values; lane l
// handles the 128-bit chunks of 8 bf16 at l*8, l*8 + 256, ... Two passes over
// the row for the statistics, as the CPU reference: the mean (fp32 sums per
// lane, then cg::reduce), then the variance of (x - mean) the same way (not
// E[x^2] - mean^2, which cancels catastrophically when |mean| >> std); a
// third pass writes (x - mean) * rstd * weight + bias. Passes 2 and 3 re-read
// the row (C * 2 bytes, normally still in cache).
//
// Constraints (checked by the launchers): C % 8 == 0 and C > 0 (whole 128-bit
// chunks per row), N >= 0, and the bf16 pointers 16-byte aligned (cudaMalloc
// gives 256 bytes; row offsets are multiples of C * 2 bytes). GPT-2's
// C = 768, 1024, 1280, 1600 all meet them.
#ifndef LLMC_LAYERNORM_CUH
#define LLMC_LAYERNORM_CUH

#include <stdint.h>
#include "cuda_common.cuh"
#ifdef __CUDACC__
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#endif

#define LAYERNORM_EPS_F 1e-5f      // as LAYERNORM_EPS in train_gpt2.c
#define LAYERNORM_BLOCK_SIZE 256   // threads per block: 8 warps, so 8 rows per block (a multiple of 32)

// ----------------------------------------------------------------------------
// kernels

// passes 2 and 3 of row `row`: from sum, the lane's part of the sum of x_row
// (C,) (pass 1), writes mean[row], rstd[row] and out_row (C,); all 32 lanes of
// the tile call it
__device__ inline void layernorm_finish_row(cooperative_groups::thread_block_tile<32> warp, floatX* out_row,
                                            float* mean, float* rstd, int row, const floatX* x_row,
                                            const floatX* weight, const floatX* bias, float sum, int C) {
    namespace cg = cooperative_groups;
    const int P = Pack128<floatX>::N;
    float m = cg::reduce(warp, sum, cg::plus<float>()) / (float)C;
    float var = 0.0f;
    for (int c = (int)warp.thread_rank() * P; c < C; c += 32 * P) {
        Pack128<floatX> x = load128(x_row + c);
#pragma unroll
        for (int k = 0; k < P; k++) {
            float d = (float)x[k] - m;
            var += d * d;
        }
    }
    var = cg::reduce(warp, var, cg::plus<float>()) / (float)C;
    float s = 1.0f / sqrtf(var + LAYERNORM_EPS_F);   // IEEE sqrt and division, as the CPU
    for (int c = (int)warp.thread_rank() * P; c < C; c += 32 * P) {
        Pack128<floatX> x = load128(x_row + c), w = load128(weight + c), b = load128(bias + c), y;
#pragma unroll
        for (int k = 0; k < P; k++) y[k] = (floatX)(((float)x[k] - m) * s * (float)w[k] + (float)b[k]);
        store128(out_row + c, y);
    }
    if (warp.thread_rank() == 0) {
        mean[row] = m;
        rstd[row] = s;
    }
}

// out (N,C), mean (N,), rstd (N,) = layernorm of inp (N,C) with weight,
// bias (C,); one warp per row
__global__ void __launch_bounds__(LAYERNORM_BLOCK_SIZE)
    layernorm_forward_kernel(floatX* out, float* mean, float* rstd, const floatX* inp, const floatX* weight,
                             const floatX* bias, int N, int C) {
    namespace cg = cooperative_groups;
    cg::thread_block_tile<32> warp = cg::tiled_partition<32>(cg::this_thread_block());
    int row = (int)(blockIdx.x * warp.meta_group_size() + warp.meta_group_rank());
    if (row >= N) return;   // uniform over the warp; no block-wide barrier follows
    const int P = Pack128<floatX>::N;
    const floatX* x_row = inp + (size_t)row * C;
    float sum = 0.0f;
    for (int c = (int)warp.thread_rank() * P; c < C; c += 32 * P) {
        Pack128<floatX> x = load128(x_row + c);
#pragma unroll
        for (int k = 0; k < P; k++) sum += (float)x[k];
    }
    layernorm_finish_row(warp, out + (size_t)row * C, mean, rstd, row, x_row, weight, bias, sum, C);
}

// residual (N,C) = inp1 + inp2 (added in fp32, rounded to bf16 once); then
// out (N,C), mean (N,), rstd (N,) = layernorm of that bf16 residual with
// weight, bias (C,); one warp per row. Each lane reads its chunks of inp1 and
// inp2 before it writes the same chunk of residual, and only it reads that
// chunk back, so residual may alias inp1 or inp2.
__global__ void __launch_bounds__(LAYERNORM_BLOCK_SIZE)
    fused_residual_layernorm_forward_kernel(floatX* residual, floatX* out, float* mean, float* rstd,
                                            const floatX* inp1, const floatX* inp2, const floatX* weight,
                                            const floatX* bias, int N, int C) {
    namespace cg = cooperative_groups;
    cg::thread_block_tile<32> warp = cg::tiled_partition<32>(cg::this_thread_block());
    int row = (int)(blockIdx.x * warp.meta_group_size() + warp.meta_group_rank());
    if (row >= N) return;   // uniform over the warp; no block-wide barrier follows
    const int P = Pack128<floatX>::N;
    size_t off = (size_t)row * C;
    float sum = 0.0f;
    for (int c = (int)warp.thread_rank() * P; c < C; c += 32 * P) {
        Pack128<floatX> a = load128(inp1 + off + c), b = load128(inp2 + off + c), r;
#pragma unroll
        for (int k = 0; k < P; k++) {
            r[k] = (floatX)((float)a[k] + (float)b[k]);
            sum += (float)r[k];   // the statistics are of the rounded residual
        }
        store128(residual + off + c, r);
    }
    layernorm_finish_row(warp, out + off, mean, rstd, row, residual + off, weight, bias, sum, C);
}

// ----------------------------------------------------------------------------
// launchers

// exits with a message when N, C or the bf16 pointers break the kernels'
// constraints (the fp32 mean and rstd need only their natural alignment)
static inline void layernorm_check_args(const char* who, int N, int C, const void* a, const void* b,
                                        const void* c, const void* d, const void* e, const void* f) {
    if (C <= 0 || C % Pack128<floatX>::N != 0) {
        fprintf(stderr, "error: %s: C = %d is not a positive multiple of %d\n", who, C, Pack128<floatX>::N);
        exit(1);
    }
    if (N < 0) {
        fprintf(stderr, "error: %s: N = %d is negative\n", who, N);
        exit(1);
    }
    if (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e | (uintptr_t)f) % 16 != 0) {
        fprintf(stderr, "error: %s: bf16 pointers must be 16-byte aligned\n", who);
        exit(1);
    }
}

static inline int layernorm_grid(int N) {
    int rows_per_block = LAYERNORM_BLOCK_SIZE / 32;
    return (N + rows_per_block - 1) / rows_per_block;
}

// out (N,C), mean (N,), rstd (N,), inp (N,C), weight (C,), bias (C,); out
// must not alias inp (not tested in place)
static inline void layernorm_forward(floatX* out, float* mean, float* rstd, const floatX* inp,
                                     const floatX* weight, const floatX* bias, int N, int C,
                                     cudaStream_t stream) {
    layernorm_check_args("layernorm_forward", N, C, out, inp, weight, bias, inp, inp);
    if (N == 0) return;
    layernorm_forward_kernel<<<layernorm_grid(N), LAYERNORM_BLOCK_SIZE, 0, stream>>>(out, mean, rstd, inp, weight,
                                                                                       bias, N, C);
    cudaCheck(cudaGetLastError());
}

// residual (N,C) = inp1 (N,C) + inp2 (N,C); out (N,C), mean (N,), rstd (N,) =
// layernorm of residual with weight, bias (C,). residual may alias inp1 or
// inp2 (tested with inp1); out must alias none of the others.
static inline void fused_residual_layernorm_forward(floatX* residual, floatX* out, float* mean, float* rstd,
                                                    const floatX* inp1, const floatX* inp2,
                                                    const floatX* weight, const floatX* bias, int N, int C,
                                                    cudaStream_t stream) {
    layernorm_check_args("fused_residual_layernorm_forward", N, C, residual, out, inp1, inp2, weight, bias);
    if (N == 0) return;
    fused_residual_layernorm_forward_kernel<<<layernorm_grid(N), LAYERNORM_BLOCK_SIZE, 0, stream>>>(
        residual, out, mean, rstd, inp1, inp2, weight, bias, N, C);
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_LAYERNORM_CUH
