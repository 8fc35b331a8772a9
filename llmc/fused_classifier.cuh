// llmc/fused_classifier.cuh: softmax + cross-entropy loss + its gradient in
// one kernel, the classifier at the end of GPT-2 (as crossentropy_forward
// and crossentropy_backward in train_gpt2.c, in one pass over the logits).
//
// One block per row i of the logits (BT, Vp) bf16 (V real columns, then
// Vp - V padding columns that never count):
// - pass 1: each thread walks its 128-bit chunks of 8 logits (chunk k at
//   k * 8 for k = threadIdx.x, + blockDim.x, ...) keeping an online max m and
//   sum s of exp(x - m) in fp32 (rescaling s when m grows, once per chunk;
//   every exp by fused_classifier_exp, below);
//   the (m, s) pairs are combined by a warp butterfly (__shfl_xor_sync), then
//   across the block's warps through shared memory by a second butterfly in
//   every warp, so every thread holds the same bits (the combine is
//   commutative) and the order of every operation is fixed: the results are
//   bitwise reproducible;
// - losses[i] = m + log(s) - x[target] (fp32);
// - pass 2 (if write_dlogits): each thread OVERWRITES its chunks with
//   dlogits = (exp(x - m) / s - [c == target]) * dloss in bf16; the padding
//   columns V..Vp-1 get 0. The logit of the target is read before the
//   block's barrier, so before any thread overwrites it. Up to Vp = 53248
//   (FUSED_CLASSIFIER_HELD chunks a thread) the chunks stay in registers
//   from pass 1, so the row crosses DRAM once each way; above, pass 2 reads
//   them again (normally from L2: a row is Vp * 2 bytes).
// - staged (bench only, to be timed against the held rows): the row is
//   first copied into shared memory by cp.async and both passes read it
//   there. Holding no row in registers, a block fits in 64 of them, so two
//   blocks share an SM where its shared memory allows (Hopper: 2 x 98 KB of
//   227 KB at GPT-2's Vp) and one block's copies overlap the other's
//   arithmetic; held rows allow one block per SM, which loads, then
//   computes, then loads again.
//
// Constraints (checked by the launcher): 0 < V <= Vp, Vp % 8 == 0 (whole
// chunks per row), BT >= 0, logits 16-byte aligned. The caller guarantees
// 0 <= targets[i] < V (not checked on the device: an out-of-range target
// reads another column or row). GPT-2: V = 50257, Vp = 50304.
#ifndef LLMC_FUSED_CLASSIFIER_CUH
#define LLMC_FUSED_CLASSIFIER_CUH

#include <math.h>
#include <stdint.h>
#include "cuda_common.cuh"
#include "ptx.cuh"

#define FUSED_CLASSIFIER_BLOCK_SIZE 512   // threads per block (one row each): Vp = 50304 is 6288 chunks, ~12 a thread
#define FUSED_CLASSIFIER_HELD 13           // the most chunks a thread holds in registers (GPT-2's Vp: 12.3)

// ----------------------------------------------------------------------------
// kernels

// e^d for d = a logit minus a max (d <= 0), as every exp here is taken:
// 2^(d log2 e) by ex2.approx.ftz (llmc/ptx.cuh), a multiply and one
// special-function instruction where expf spends eight (its range
// reduction, an integer shift among them). Relative error within 2 ulps +
// 3 u |d| (u = 2^-24: the rounding of d, of the product and of log2 e)
// while e^d >= 2^-126 (d > -87); below, 0 (ftz): an absolute error under
// 2^-126, nothing to a sum of at least 1, and to a gradient (e^d dloss / s)
// at most one bf16 subnormal's worth, where dloss / s > 2^-7.
__device__ __forceinline__ float fused_classifier_exp(float d) { return ex2_approx(d * LOG2E_F); }

// (m, s) = the pair for the union of the values of (m1, s1) and (m2, s2):
// s rescaled to the larger max; m == -inf means no values yet (s == 0).
// Commutative bit for bit (max, * and + are; the _rn forms keep nvcc from
// fusing one product into the sum, which would not be), so both lanes of a
// butterfly step get the same result.
__device__ __forceinline__ void fused_classifier_combine(float& m, float& s, float m2, float s2) {
    float mm = fmaxf(m, m2);
    if (mm == -INFINITY) return;   // both empty
    s = __fadd_rn(__fmul_rn(s, fused_classifier_exp(m - mm)), __fmul_rn(s2, fused_classifier_exp(m2 - mm)));
    m = mm;
}

// the butterfly over a warp's 32 lanes: every lane ends with the warp's pair
__device__ __forceinline__ void fused_classifier_warp_combine(float& m, float& s) {
    for (int offset = 16; offset > 0; offset /= 2) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        fused_classifier_combine(m, s, m2, s2);
    }
}

// pass 1's step over one chunk v of 8 logits, of which the first n count (n
// = 8 but in the chunk that holds column V - 1): (m, s) grows by them, s
// rescaled once to the chunk's new max
__device__ __forceinline__ void fused_classifier_chunk(float& m, float& s, const Pack128<floatX>& v, int n) {
    float cm = -INFINITY;
#pragma unroll
    for (int k = 0; k < Pack128<floatX>::N; k++)
        if (k < n) cm = fmaxf(cm, (float)v[k]);
    float mm = fmaxf(m, cm);
    s *= fused_classifier_exp(m - mm);   // exp(-inf) = 0 for the first chunk (s is 0 then anyway)
#pragma unroll
    for (int k = 0; k < Pack128<floatX>::N; k++)
        if (k < n) s += fused_classifier_exp((float)v[k] - mm);
    m = mm;
}

// every thread's (m, s) -> the block's, in every thread (bitwise the same:
// the combine is commutative); warp_m, warp_s: (32,) shared
__device__ __forceinline__ void fused_classifier_block_combine(float& m, float& s, float* warp_m, float* warp_s) {
    fused_classifier_warp_combine(m, s);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
    if (lane == 0) {
        warp_m[warp] = m;
        warp_s[warp] = s;
    }
    __syncthreads();
    m = lane < nwarps ? warp_m[lane] : -INFINITY;
    s = lane < nwarps ? warp_s[lane] : 0.0f;
    fused_classifier_warp_combine(m, s);
}

// pass 2's step: the chunk of logits v at column c -> its dlogits: e^(x -
// m) dloss_s (dloss_s = (1 / s) dloss, rounded twice) but at the target,
// (e^(x - m) (1 / s) - 1) dloss, and 0 from V on. Most chunks are whole, inside V and without the
// target: no per-value checks there, the same bits.
__device__ __forceinline__ Pack128<floatX> fused_classifier_chunk_dlogits(const Pack128<floatX>& v, int c, float m,
                                                                          float inv_s, float dloss_s, float dloss,
                                                                          int target, int V) {
    const int P = Pack128<floatX>::N;
    Pack128<floatX> d;
    if (c + P <= V && (target < c || target >= c + P)) {
#pragma unroll
        for (int k = 0; k < P; k++) d[k] = (floatX)(fused_classifier_exp((float)v[k] - m) * dloss_s);
    } else {
#pragma unroll
        for (int k = 0; k < P; k++) {
            float e = fused_classifier_exp((float)v[k] - m);
            float g = c + k == target ? (e * inv_s - 1.0f) * dloss : e * dloss_s;
            d[k] = c + k < V ? (floatX)g : (floatX)0.0f;
        }
    }
    return d;
}

// pass 1 over a thread's chunks of a row (global or shared memory): the
// chunks at first, first + stride, ... below V
__device__ __forceinline__ void fused_classifier_row_stats(float& m, float& s, const floatX* row, int first, int stride,
                                                           int V) {
    const int P = Pack128<floatX>::N;
    for (int c = first; c < V; c += stride) {
        Pack128<floatX> v = load128(row + c);
        if (c + P <= V) fused_classifier_chunk(m, s, v, P);
        else fused_classifier_chunk(m, s, v, V - c);
    }
}

// pass 2 over a thread's chunks of the row x (Vp,): their logits read from
// `row` (x itself, or its copy in shared memory), their dlogits written to x
__device__ __forceinline__ void fused_classifier_row_dlogits(floatX* x, const floatX* row, int first, int stride,
                                                             int Vp, float m, float inv_s, float dloss_s, float dloss,
                                                             int target, int V) {
    for (int c = first; c < Vp; c += stride)
        store128(x + c, fused_classifier_chunk_dlogits(load128(row + c), c, m, inv_s, dloss_s, dloss, target, V));
}

// logits (BT,Vp) -> losses (BT,) and, if write_dlogits, dlogits (BT,Vp) in
// place of the logits; targets (BT,); one block per row; blockDim.x a
// multiple of 32, at most 1024. With CH > 0 each thread holds its (at most
// CH) chunks of the row in registers between the passes, so the row is
// read once; with CH = 0 (any Vp) pass 2 reads it again (from L2, mostly),
// or with STAGED both passes read the row's copy in shared memory (Vp bf16
// of dynamic shared memory). The arithmetic, and so every bit, is the same
// in all three.
template <int CH, bool STAGED = false>
__global__ void __launch_bounds__(FUSED_CLASSIFIER_BLOCK_SIZE, STAGED ? 2 : 1)
    fused_classifier_kernel(floatX* logits, float* losses, float dloss, const int* targets, int V, int Vp,
                            int write_dlogits) {
    static_assert(!(STAGED && CH > 0), "a staged row is not also held in registers");
    __shared__ float warp_m[32];   // each warp's (m, s), at most 32 warps
    __shared__ float warp_s[32];
    extern __shared__ __align__(16) floatX row_s[];   // STAGED: the row (Vp,)
    const int P = Pack128<floatX>::N, stride = (int)blockDim.x * P, first = (int)threadIdx.x * P;
    int row = blockIdx.x;
    floatX* x = logits + (size_t)row * Vp;
    int target = targets[row];
    // read before the barrier below: pass 2 may overwrite this column
    float x_target = threadIdx.x == 0 ? (float)x[target] : 0.0f;

    // pass 1: online max and sum of exp over the thread's chunks (only c < V)
    Pack128<floatX> held[CH > 0 ? CH : 1];
    float m = -INFINITY, s = 0.0f;
    if (CH > 0) {
#pragma unroll
        for (int j = 0; j < CH; j++)   // every load first: CH requests in flight
            if (first + j * stride < Vp) held[j] = load128(x + first + j * stride);
#pragma unroll
        for (int j = 0; j < CH; j++) {
            int c = first + j * stride;
            if (c + P <= V) fused_classifier_chunk(m, s, held[j], P);   // a whole chunk: no per-value bounds check
            else if (c < V) fused_classifier_chunk(m, s, held[j], V - c);   // the last, partial one
        }
    } else if (STAGED) {
        for (int c = first; c < Vp; c += stride) cp_async16(row_s + c, x + c);
        cp_async_commit();
        cp_async_wait<0>();   // (this thread's copies: it reads back no other thread's)
        fused_classifier_row_stats(m, s, row_s, first, stride, V);
    } else {
        fused_classifier_row_stats(m, s, x, first, stride, V);
    }
    fused_classifier_block_combine(m, s, warp_m, warp_s);   // every thread now holds the row's (m, s)

    if (threadIdx.x == 0) losses[row] = m + logf(s) - x_target;
    if (!write_dlogits) return;

    // pass 2: dlogits in place, 0 in the padding
    const float inv_s = 1.0f / s, dloss_s = inv_s * dloss;
    if (CH > 0) {
#ifndef CUDA_EMU
        // the held bits may have changed, as far as the compiler knows: it
        // converts them to fp32 again here instead of keeping pass 1's
        // conversions (8 registers a chunk) alive across the block's barrier
#pragma unroll
        for (int j = 0; j < CH; j++) {
            int4* w = reinterpret_cast<int4*>(held[j].v);
            asm volatile("" : "+r"(w->x), "+r"(w->y), "+r"(w->z), "+r"(w->w));
        }
#endif
#pragma unroll
        for (int j = 0; j < CH; j++) {
            int c = first + j * stride;
            if (c < Vp)
                store128(x + c, fused_classifier_chunk_dlogits(held[j], c, m, inv_s, dloss_s, dloss, target, V));
        }
    } else {
        fused_classifier_row_dlogits(x, STAGED ? row_s : x, first, stride, Vp, m, inv_s, dloss_s, dloss, target, V);
    }
}


// ----------------------------------------------------------------------------
// the classifier over blocks of columns (the GPU trainer's vocabulary chunks
// at ZeRO-2/3, where no rank holds all of wte's gradient): the logits of a row arrive a
// block of W columns [v0, v0 + W) at a time, in a (n, W) tile. Pass 1 runs
// over every block in turn, carrying each row's (m, s) across them in
// row_max, row_sum (n,) fp32; the last block's call writes the losses. Pass
// 2 then turns each block's logits, recomputed, into its dlogits. One warp
// per row in pass 1 (a block is a few thousand columns), one thread per
// chunk of 8 in pass 2; the same steps as the kernels above, in a fixed
// order: bitwise reproducible.

#define FUSED_CLASSIFIER_COLUMN_WARPS 4   // pass 1: rows (warps) per block

// pass 1 over the columns [v0, v0 + W) of n rows: tile (n,W); first: the
// first block of columns (row_max, row_sum start from it), last: the last
// (losses[i] = m + log(s) - x[target]); in between losses[i] keeps the
// target's logit once its block has passed
__global__ void __launch_bounds__(FUSED_CLASSIFIER_COLUMN_WARPS * 32)
    fused_classifier_columns_stats_kernel(const floatX* tile, float* row_max, float* row_sum, float* losses,
                                          const int* targets, int n, int W, int v0, int V, int first, int last) {
    const int P = Pack128<floatX>::N;
    int row = (int)(blockIdx.x * FUSED_CLASSIFIER_COLUMN_WARPS + threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    if (row >= n) return;   // whole warps; no block barrier in this kernel
    const floatX* x = tile + (size_t)row * W;
    int valid = V - v0 < W ? V - v0 : W;   // the columns below V (may be none: all padding)
    int target = targets[row] - v0;        // its column in this block, if it is in it
    float m = -INFINITY, s = 0.0f, x_target = 0.0f;
    for (int c = lane * P; c < valid; c += 32 * P) {
        Pack128<floatX> v = load128(x + c);
        fused_classifier_chunk(m, s, v, valid - c < P ? valid - c : P);
#pragma unroll
        for (int k = 0; k < P; k++)   // (a constant index: a register, not local memory)
            if (c + k == target) x_target = (float)v[k];
    }
    fused_classifier_warp_combine(m, s);
    int has_target = target >= 0 && target < valid;
    x_target = __shfl_sync(0xffffffffu, x_target, has_target ? target / P % 32 : 0);
    if (lane != 0) return;
    if (!first) {
        float m_block = m, s_block = s;
        m = row_max[row];
        s = row_sum[row];
        fused_classifier_combine(m, s, m_block, s_block);
    }
    row_max[row] = m;   // (the last block's: the row's, for pass 2)
    row_sum[row] = s;
    if (!has_target) x_target = losses[row];   // (stored when its block passed)
    if (last) losses[row] = m + logf(s) - x_target;
    else if (has_target) losses[row] = x_target;
}

// pass 2: tile (n,W), the logits of columns [v0, v0 + W), overwritten by
// their dlogits, with each row's (m, s) from pass 1; one thread per chunk
__global__ void __launch_bounds__(256)
    fused_classifier_columns_dlogits_kernel(floatX* tile, const float* row_max, const float* row_sum,
                                            const int* targets, float dloss, int n, int W, int v0, int V) {
    const int P = Pack128<floatX>::N;
    int chunks = W / P;
    int idx = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (idx >= n * chunks) return;   // no barrier in this kernel
    int row = idx / chunks, c = (idx - row * chunks) * P;
    floatX* x = tile + (size_t)row * W + c;
    const float inv_s = 1.0f / row_sum[row];
    store128(x, fused_classifier_chunk_dlogits(load128(x), v0 + c, row_max[row], inv_s, inv_s * dloss, dloss,
                                               targets[row], V));
}

// ----------------------------------------------------------------------------
// launchers

// which kernel fused_classifier runs with dlogits (tests and benches; the
// same bits): the launcher's choice (rows held in registers where they
// fit, else the general kernel), the general kernel, or the staged one
// (where fused_classifier_staged_fits, else the launcher's choice)
enum { FUSED_CLASSIFIER_CHOICE, FUSED_CLASSIFIER_GENERAL, FUSED_CLASSIFIER_STAGED };
static int fused_classifier_variant = FUSED_CLASSIFIER_CHOICE;

// whether this device lets the staged kernel take a row of Vp bf16 of
// shared memory (and lets it, from now on; asked once per Vp)
static inline int fused_classifier_staged_fits(int Vp) {
    static int asked_vp = -1, fits = 0;
    if (Vp == asked_vp) return fits;
    asked_vp = Vp;
    fits = cudaFuncSetAttribute(fused_classifier_kernel<0, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)(Vp * sizeof(floatX))) == cudaSuccess;
    if (!fits) (void)cudaGetLastError();   // (not sticky: the device is fine, the row too large for it)
    return fits;
}

// logits (BT,Vp) bf16, overwritten by dlogits (BT,Vp) if write_dlogits (then
// padding columns V..Vp-1 are 0, else logits are left as they are); losses
// (BT,) fp32; targets (BT,), each in [0, V) (the caller's job); dloss the
// gradient of the mean loss with respect to each row's loss (1 / (B*T) for
// a mean over the batch)
static inline void fused_classifier(floatX* logits, float* losses, float dloss, const int* targets, int BT, int V,
                                    int Vp, int write_dlogits, cudaStream_t stream) {
    if (V <= 0 || V > Vp || Vp % Pack128<floatX>::N != 0) {
        fprintf(stderr, "error: fused_classifier: V = %d, Vp = %d: need 0 < V <= Vp and Vp %% %d == 0\n", V, Vp,
                Pack128<floatX>::N);
        exit(1);
    }
    if (BT < 0) {
        fprintf(stderr, "error: fused_classifier: BT = %d is negative\n", BT);
        exit(1);
    }
    if ((uintptr_t)logits % 16 != 0) {
        fprintf(stderr, "error: fused_classifier: logits must be 16-byte aligned\n");
        exit(1);
    }
    if (BT == 0) return;
    int per_thread = (Vp / Pack128<floatX>::N + FUSED_CLASSIFIER_BLOCK_SIZE - 1) / FUSED_CLASSIFIER_BLOCK_SIZE;
    // rows held in registers pay off when pass 2 runs (1.14x on an H100 at
    // GPT-2's Vp); losses alone read the row once anyway, and there the
    // general kernel's four blocks per SM stream faster (0.30 against 0.38 ms)
    auto kernel = fused_classifier_kernel<0>;
    size_t smem = 0;
    if (write_dlogits && fused_classifier_variant == FUSED_CLASSIFIER_STAGED && fused_classifier_staged_fits(Vp)) {
        kernel = fused_classifier_kernel<0, true>;
        smem = (size_t)Vp * sizeof(floatX);
    } else if (fused_classifier_variant != FUSED_CLASSIFIER_GENERAL && write_dlogits &&
               per_thread <= FUSED_CLASSIFIER_HELD) {
        kernel = per_thread <= 4 ? fused_classifier_kernel<4> : fused_classifier_kernel<FUSED_CLASSIFIER_HELD>;
    }
    kernel<<<BT, FUSED_CLASSIFIER_BLOCK_SIZE, smem, stream>>>(logits, losses, dloss, targets, V, Vp, write_dlogits);
    cudaCheck(cudaGetLastError());
}

// exits with a message when a block of columns breaks the kernels' constraints
static inline void fused_classifier_columns_check(const char* who, const void* tile, int n, int W, int v0, int V) {
    if (n < 0 || W <= 0 || W % Pack128<floatX>::N != 0 || v0 < 0 || V <= 0 || (long long)n * W / 8 > 0x7FFFFFFFLL - 255) {
        fprintf(stderr, "error: %s: n = %d, W = %d, v0 = %d, V = %d: need n >= 0, W > 0 a multiple of %d, "
                "v0 >= 0, V > 0, n * W / 8 + 255 within int\n", who, n, W, v0, V, Pack128<floatX>::N);
        exit(1);
    }
    if ((uintptr_t)tile % 16 != 0) {
        fprintf(stderr, "error: %s: the tile must be 16-byte aligned\n", who);
        exit(1);
    }
}

// Pass 1 of the classifier over blocks of columns: tile (n,W) bf16, the
// logits of the columns [v0, v0 + W) of n rows (columns from V on are
// padding); row_max, row_sum (n,) fp32 carry each row's max and sum of exp
// from block to block, starting at the first; the last writes losses (n,)
// (till then they hold the target's logit). Call it for each block of
// columns in turn, each column once (the first call first, the last last);
// targets (n,) in [0, V).
static inline void fused_classifier_columns_stats(const floatX* tile, float* row_max, float* row_sum, float* losses,
                                                  const int* targets, int n, int W, int v0, int V, int first,
                                                  int last, cudaStream_t stream) {
    fused_classifier_columns_check("fused_classifier_columns_stats", tile, n, W, v0, V);
    if (n == 0) return;
    int grid = (n + FUSED_CLASSIFIER_COLUMN_WARPS - 1) / FUSED_CLASSIFIER_COLUMN_WARPS;
    fused_classifier_columns_stats_kernel<<<grid, FUSED_CLASSIFIER_COLUMN_WARPS * 32, 0, stream>>>(
        tile, row_max, row_sum, losses, targets, n, W, v0, V, first, last);
    cudaCheck(cudaGetLastError());
}

// Pass 2: the tile's logits (as pass 1 saw them) -> dlogits = (exp(x - m) /
// s - [c == target]) * dloss in place, 0 in the padding columns
static inline void fused_classifier_columns_dlogits(floatX* tile, const float* row_max, const float* row_sum,
                                                    const int* targets, float dloss, int n, int W, int v0, int V,
                                                    cudaStream_t stream) {
    fused_classifier_columns_check("fused_classifier_columns_dlogits", tile, n, W, v0, V);
    int threads = n * (W / Pack128<floatX>::N);
    if (threads == 0) return;
    fused_classifier_columns_dlogits_kernel<<<(threads + 255) / 256, 256, 0, stream>>>(tile, row_max, row_sum, targets,
                                                                                       dloss, n, W, v0, V);
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_FUSED_CLASSIFIER_CUH
