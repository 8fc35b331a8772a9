// llmc/layernorm.cuh: layer normalisation on the GPU, bf16 in and out with
// fp32 statistics (as layernorm_forward/_backward in train_gpt2.c, eps 1e-5):
// the forward alone or fused with the residual addition before it (as
// residual_forward then layernorm_forward, which is how GPT-2's blocks use
// it), and the backward, deterministic (no float atomics).
//
// Forward: one warp (a 32-thread cooperative-groups tile) per row of C
// values; lane l handles the 128-bit chunks of 8 bf16 at l*8, l*8 + 256, ...
// Two passes over the row for the statistics, as the CPU reference: the mean
// (fp32 sums per lane, then cg::reduce), then the variance of (x - mean) the
// same way (not E[x^2] - mean^2, which cancels catastrophically when |mean| >>
// std); a third pass writes (x - mean) * rstd * weight + bias. Passes 2 and 3
// re-read the row (C * 2 bytes, normally still in cache).
//
// Backward: the same warp-per-row layout, rows strided over a grid of G
// blocks fixed by (N, C) alone (layernorm_backward_blocks), so the summation
// order, and with it every bit of the result, is the same on every run and
// device. Per row: pass 1 sums dnorm = dout * weight and dnorm * xhat over
// the row (lane sums, then cg::reduce); pass 2 writes dinp += dx (up to
// C = 2048, dinp's chunks are read in pass 1 and held in registers, so a row
// waits on DRAM once). Each lane
// also adds dout * xhat and dout of its columns into its warp's own fp32
// accumulators in shared memory (no other thread touches them); at the end the
// block adds its warps' accumulators in warp order into its slice of the
// caller's fp32 scratch (G, 2, Cp), and a second kernel adds the G slices in a
// fixed order into dweight and dbias.
//
// Constraints (checked by the launchers): C % 8 == 0 and C > 0 (whole 128-bit
// chunks per row), N >= 0, and the bf16 pointers 16-byte aligned (cudaMalloc
// gives 256 bytes; row offsets are multiples of C * 2 bytes). GPT-2's
// C = 768, 1024, 1280, 1600 all meet them. The backward's accumulators take
// 64 bytes per column (8 warps x 2 x fp32, C rounded up to 256) of shared
// memory, over the 48 KiB default above C = 768 (opted into, up to 163 KiB,
// A100's limit); above C = 2560 it runs fewer warps per block, up to
// C = 20736 (one warp; the launcher refuses larger C).
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

// backward: column c of a row is lane (c / 8) % 32's value c % 8 of its
// chunk c / 256; its accumulators sit at slot ((c / 256) * 8 + c % 8) * 32 +
// (c / 8) % 32 of a (Cp,) array, Cp = C rounded up to 256, so the 32 lanes
// of a warp touch 32 consecutive floats (no bank conflicts)
__host__ __device__ inline int layernorm_backward_cpad(int C) { return (C + 255) / 256 * 256; }
__device__ inline int layernorm_backward_column(int slot) {
    return ((slot / 256) * 32 + slot % 32) * 8 + (slot / 32) % 8;
}

// pass 1 over one chunk of a row (8 columns; x, dout, weight): adds to the
// row's sums of dnorm = dout * weight and dnorm * xhat, and to the lane's
// accumulators of dout * xhat and dout (dw_acc, db_acc: its slots for the
// chunk, 32 apart)
__device__ __forceinline__ void layernorm_backward_chunk_sums(const Pack128<floatX>& x, const Pack128<floatX>& dy,
                                                              const Pack128<floatX>& w, float m, float r,
                                                              float* dw_acc, float* db_acc, float& sum_dn,
                                                              float& sum_dnx) {
#pragma unroll
    for (int k = 0; k < Pack128<floatX>::N; k++) {
        float xhat = ((float)x[k] - m) * r, g = (float)dy[k];
        float dn = g * (float)w[k];   // exact: a product of two bf16 fits in fp32
        sum_dn += dn;
        sum_dnx += dn * xhat;
        dw_acc[32 * k] += g * xhat;
        db_acc[32 * k] += g;
    }
}

// pass 2 over one chunk: d += dx from the row's means a = mean(dnorm), b =
// mean(dnorm * xhat) (added in fp32, rounded once)
__device__ __forceinline__ void layernorm_backward_chunk_dx(Pack128<floatX>& d, const Pack128<floatX>& x,
                                                            const Pack128<floatX>& dy, const Pack128<floatX>& w,
                                                            float m, float r, float a, float b) {
#pragma unroll
    for (int k = 0; k < Pack128<floatX>::N; k++) {
        float xhat = ((float)x[k] - m) * r, dn = (float)dy[k] * (float)w[k];
        d[k] = (floatX)((float)d[k] + r * ((dn - a) - xhat * b));
    }
}

// dinp (N,C) += dx, the gradient of the layernorm input (added in fp32 and
// rounded once); scratch (gridDim.x, 2, Cp) = this block's sums over its rows
// of dout * xhat (the dweight part) and of dout (dbias), by slot. dout (N,C),
// inp (N,C), weight (C,), mean (N,), rstd (N,) as written by the forward.
// Dynamic shared memory: (warps per block, 2, Cp) floats. Lane l's chunks of
// a row: columns l * 8 + i * 256 .. + 7 for i = 0, 1, ..., their accumulator
// slots l + i * 256 + 32 k. NCH = 0: any C, dinp read in pass 2 (after the
// row's sums: a second wait on DRAM per row). NCH > 0, for C <= 256 NCH: the
// row's dinp chunks read in pass 1 with x and dout and held in registers
// (NCH known at compile time), so a row waits on DRAM once; pass 2's x,
// dout and weight were just read (cache hits). The same operations in the
// same order either way: the same bits.
template <int NCH>
__global__ void __launch_bounds__(LAYERNORM_BLOCK_SIZE)
    layernorm_backward_kernel(floatX* dinp, float* scratch, const floatX* dout, const floatX* inp,
                              const floatX* weight, const float* mean, const float* rstd, int N, int C) {
    namespace cg = cooperative_groups;
    extern __shared__ float ln_bwd_acc[];
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> warp = cg::tiled_partition<32>(block);
    const int P = Pack128<floatX>::N;
    const int W = (int)warp.meta_group_size(), lane = (int)warp.thread_rank();
    const int Cp = layernorm_backward_cpad(C);
    const int chunks = NCH > 0 ? NCH : (C + 32 * P - 1) / (32 * P);   // per lane (the last may start past C)
    float* dw_acc = ln_bwd_acc + (size_t)warp.meta_group_rank() * 2 * Cp;   // (Cp,) this warp's
    float* db_acc = dw_acc + Cp;
    for (int c = lane * P, s = lane; c < C; c += 32 * P, s += 32 * P) {
#pragma unroll
        for (int k = 0; k < P; k++) dw_acc[s + 32 * k] = db_acc[s + 32 * k] = 0.0f;
    }
    // warps without a row still reach the barrier below
    for (int row = (int)(blockIdx.x * W + warp.meta_group_rank()); row < N; row += (int)gridDim.x * W) {
        size_t off = (size_t)row * C;
        float m = mean[row], r = rstd[row];
        Pack128<floatX> d[NCH > 0 ? NCH : 1];   // NCH > 0: the row's dinp chunks
        float sum_dn = 0.0f, sum_dnx = 0.0f;
#pragma unroll
        for (int i = 0; i < chunks; i++) {
            int c = lane * P + i * 32 * P, s = lane + i * 32 * P;
            if (c >= C) break;
            Pack128<floatX> x = load128(inp + off + c), dy = load128(dout + off + c), w = load128(weight + c);
            if (NCH > 0) d[i] = load128(dinp + off + c);
            layernorm_backward_chunk_sums(x, dy, w, m, r, dw_acc + s, db_acc + s, sum_dn, sum_dnx);
        }
        float a = cg::reduce(warp, sum_dn, cg::plus<float>()) / (float)C;    // mean_c(dnorm)
        float b = cg::reduce(warp, sum_dnx, cg::plus<float>()) / (float)C;   // mean_c(dnorm * xhat)
#pragma unroll
        for (int i = 0; i < chunks; i++) {
            int c = lane * P + i * 32 * P;
            if (c >= C) break;
            Pack128<floatX> x = load128(inp + off + c), dy = load128(dout + off + c), w = load128(weight + c);
            Pack128<floatX>& di = d[NCH > 0 ? i : 0];
            if (NCH == 0) di = load128(dinp + off + c);
            layernorm_backward_chunk_dx(di, x, dy, w, m, r, a, b);
            store128(dinp + off + c, di);
        }
    }
    block.sync();   // every warp's accumulators are complete
    float* out = scratch + (size_t)blockIdx.x * 2 * Cp;
    for (int s = (int)threadIdx.x; s < Cp; s += (int)blockDim.x) {
        if (layernorm_backward_column(s) >= C) continue;   // a slot no lane uses (C % 256 != 0)
        float dw = 0.0f, db = 0.0f;
        for (int w = 0; w < W; w++) {   // warp order: fixed
            dw += ln_bwd_acc[(size_t)w * 2 * Cp + s];
            db += ln_bwd_acc[(size_t)w * 2 * Cp + Cp + s];
        }
        out[s] = dw;
        out[Cp + s] = db;
    }
}

#define LAYERNORM_BWD_REDUCE_ROWS 8   // blockDim.y of the reduce kernel; blockDim.x = 32

// dweight (C,) += the sum of the G blocks' dweight parts in scratch (G, 2, Cp)
// and dbias (C,) += that of their dbias parts (each added in fp32, rounded
// once). A block takes 32 slots (Cp is a multiple of 256, so all of them in
// the dweight or all in the dbias half): 2 Cp / 32 blocks, 48 at C = 768
// (256 slots a block made 6 blocks whose threads loaded 512 values each,
// one after another: 63 us on an H100, 25 times a step). Thread (x, y) sums
// slot x's blocks y, y + 8, ... in that order; then lane x of warp 0 adds
// the 8 partial sums of slot x in y order: a fixed order for given G.
__global__ void __launch_bounds__(32 * LAYERNORM_BWD_REDUCE_ROWS)
    layernorm_backward_reduce_kernel(floatX* dweight, floatX* dbias, const float* scratch, int G, int C) {
    const int ROWS = LAYERNORM_BWD_REDUCE_ROWS;
    __shared__ float part[LAYERNORM_BWD_REDUCE_ROWS][32];
    const int Cp = layernorm_backward_cpad(C);
    int base = (int)blockIdx.x * 32;   // in [0, 2 Cp): dweight slots, then dbias slots
    int which = base / Cp, slot = base % Cp + (int)threadIdx.x;
    int c = layernorm_backward_column(slot);
    const float* src = scratch + (size_t)which * Cp + slot;
    float sum = 0.0f;
    if (c < C) {
#pragma unroll 4
        for (int g = (int)threadIdx.y; g < G; g += ROWS) sum += src[(size_t)g * 2 * Cp];
    }
    part[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float total = part[0][threadIdx.x];
        for (int y = 1; y < ROWS; y++) total += part[y][threadIdx.x];
        floatX* d = which ? dbias : dweight;
        d[c] = (floatX)((float)d[c] + total);
    }
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

#define LAYERNORM_BWD_ROWS_PER_WARP 4          // rows per warp before the grid grows
#define LAYERNORM_BWD_MAX_BLOCKS 512            // grid cap: more rows per warp beyond it
#define LAYERNORM_BWD_SMEM_MAX (163 * 1024)     // shared memory opt-in limit of sm_80 (sm_90: 227 KiB)

// warps per block of the backward: 8, fewer where their accumulators
// (2 Cp floats each) would exceed LAYERNORM_BWD_SMEM_MAX; 0 if even one would
static inline int layernorm_backward_warps(int C) {
    size_t per_warp = 2 * (size_t)layernorm_backward_cpad(C) * sizeof(float);
    size_t w = LAYERNORM_BWD_SMEM_MAX / per_warp;
    return w < (size_t)(LAYERNORM_BLOCK_SIZE / 32) ? (int)w : LAYERNORM_BLOCK_SIZE / 32;
}

// the backward's grid G: a function of N and C only (not of the device), so
// its results are the same bits everywhere
static inline int layernorm_backward_blocks(int N, int C) {
    int W = layernorm_backward_warps(C);
    if (N <= 0 || W <= 0) return 0;
    int rows_per_block = W * LAYERNORM_BWD_ROWS_PER_WARP;
    int g = (N + rows_per_block - 1) / rows_per_block;
    return g < LAYERNORM_BWD_MAX_BLOCKS ? g : LAYERNORM_BWD_MAX_BLOCKS;
}

// bytes of fp32 scratch layernorm_backward needs for (N,C): (G, 2, Cp) floats
static inline size_t layernorm_backward_scratch_bytes(int N, int C) {
    if (C <= 0) return 0;
    return (size_t)layernorm_backward_blocks(N, C) * 2 * layernorm_backward_cpad(C) * sizeof(float);
}

typedef void (*LayernormBackwardKernel)(floatX*, float*, const floatX*, const floatX*, const floatX*, const float*,
                                        const float*, int, int);

static int layernorm_backward_general;   // 1: layernorm_backward_kernel<0> for every C (tests, benches: the same bits)

// the backward's kernel for C: NCH = the chunks per lane C needs, up to 8
// (C <= 2048: GPT-2's 768 .. 1600 take 3 .. 7); the general NCH = 0 above
static inline LayernormBackwardKernel layernorm_backward_kernel_for(int C) {
    if (layernorm_backward_general) return layernorm_backward_kernel<0>;
    switch ((C + 255) / 256) {
        case 1: return layernorm_backward_kernel<1>;
        case 2: return layernorm_backward_kernel<2>;
        case 3: return layernorm_backward_kernel<3>;
        case 4: return layernorm_backward_kernel<4>;
        case 5: return layernorm_backward_kernel<5>;
        case 6: return layernorm_backward_kernel<6>;
        case 7: return layernorm_backward_kernel<7>;
        case 8: return layernorm_backward_kernel<8>;
        default: return layernorm_backward_kernel<0>;
    }
}

// dinp (N,C) += the gradient of the layernorm input; dweight (C,) += and
// dbias (C,) += the sums over the N rows of dout * xhat and dout; from dout
// (N,C), inp (N,C) (the forward's input), weight (C,), mean (N,), rstd (N,)
// (the forward's). scratch: layernorm_backward_scratch_bytes(N, C) bytes of
// fp32 device memory, any contents (overwritten). Deterministic: the same bits
// on every run. No output may alias an input or scratch.
static inline void layernorm_backward(floatX* dinp, floatX* dweight, floatX* dbias, float* scratch,
                                      const floatX* dout, const floatX* inp, const floatX* weight, const float* mean,
                                      const float* rstd, int N, int C, cudaStream_t stream) {
    layernorm_check_args("layernorm_backward", N, C, dinp, dweight, dbias, dout, inp, weight);
    int W = layernorm_backward_warps(C);
    if (W <= 0) {
        fprintf(stderr, "error: layernorm_backward: C = %d needs %zu bytes of shared memory per warp, over %d\n", C,
                2 * (size_t)layernorm_backward_cpad(C) * sizeof(float), LAYERNORM_BWD_SMEM_MAX);
        exit(1);
    }
    if (N == 0) return;
    int G = layernorm_backward_blocks(N, C), Cp = layernorm_backward_cpad(C);
    size_t smem = (size_t)W * 2 * Cp * sizeof(float);
    LayernormBackwardKernel kernel = layernorm_backward_kernel_for(C);
    if (smem > 48 * 1024)
        cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    kernel<<<G, W * 32, smem, stream>>>(dinp, scratch, dout, inp, weight, mean, rstd, N, C);
    cudaCheck(cudaGetLastError());
    dim3 rblock(32, LAYERNORM_BWD_REDUCE_ROWS);
    layernorm_backward_reduce_kernel<<<2 * Cp / 32, rblock, 0, stream>>>(dweight, dbias, scratch, G, C);
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_LAYERNORM_CUH
