// llmc/attention.cuh: causal multi-head self-attention of GPT-2 on the GPU,
// forward and backward, bf16 in and out, fp32 arithmetic inside.
//
// Layouts (as llm.c's train_gpt2.cu): qkv (B,T,3C) bf16 holds, for position
// (b,t), [q (NH heads x HS) | k (NH x HS) | v (NH x HS)], C = NH * HS; out
// (B,T,C) bf16 holds the heads side by side; dqkv (B,T,3C) like qkv. The
// attention of head h at row t is out_t = sum_{t2 <= t} P[t][t2] v_t2 with
// P[t] = softmax_t2(q_t . k_t2 / sqrt(HS)) over t2 <= t (causal mask).
//
// Two versions of each direction:
// - simple: materialises the (B,NH,T,T) probabilities P in an fp32 scratch
//   buffer (attention_simple_scratch_bytes): a kernel for the scores (one
//   thread per (b,h,t,t2), t2 <= t), a row softmax (one warp per row), the
//   weighted sum of v (one thread per output value). Backward: dP = dout v^T
//   (one thread per (b,h,t,t2)) into the second half of the scratch, dS =
//   P (dP - rowsum(dP P)) / sqrt(HS) in place (one warp per row), then one
//   thread per dqkv value sums over its row or column of dS or P. No atomics,
//   no shared memory: the reference version on the GPU, slow at large T.
// - fused (flash-attention style), HS = 32 or 64 (templated): never stores a
//   (T,T) matrix. Forward: a block of ATTN_TILE threads owns ATTN_TILE query
//   rows of one (b,h), a thread one row (q and the fp32 accumulator of out in
//   registers); it loops over the key tiles at or left of the diagonal (tiles
//   above it are skipped), staging K and V (ATTN_TILE,HS) as fp32 in shared
//   memory, and keeps a running max and sum (online softmax, fp32, base 2
//   with log2(e) folded into q). Writes out and lse (B,NH,T) fp32, the
//   natural-log logsumexp of each row's scaled scores. Backward: a small
//   kernel computes D = rowsum(dout * out) (B,NH,T) first; then one kernel
//   per key tile (a block of 2 ATTN_TILE threads, two per key, each owning
//   half of the HS dims) loops over the query tiles at or below the diagonal
//   and accumulates dK, dV in registers; another per query tile (same shape)
//   loops over the key tiles and accumulates dQ. P is recomputed in fp32 as
//   exp(s - lse) and never rounded to bf16. Each output value is summed by one
//   thread in a fixed order (the two halves of a dot product are combined by
//   one xor shuffle, a + b == b + a), so the results are bitwise reproducible
//   whatever the thread scheduling. Only fp32 FMA units (no tensor cores).
//
// Constraints (checked by the launchers, "error: <launcher>: ..."): B, T,
// NH >= 1, C % NH == 0; fused: HS = C / NH in {32, 64}, B and NH <= 65535
// (grid dimensions) and the bf16 pointers 16-byte aligned (128-bit loads;
// rows are multiples of 3C * 2 bytes). The simple version takes any HS.
//
// Speed (H200, B=8 T=1024 NH=12 HS=64, FLOPs as in dev/cuda/attention.cu):
// fused forward 1.12 ms (11.5 TFLOP/s), fused backward 2.08 ms (15.5);
// simple 14.6 and 17.9 ms. The fused kernels are bound by fp32 FMA and
// shared-memory loads (one 16-byte load per 4 FMA); llmc/attention_mma.cuh
// runs the same algorithm on the tensor cores.
#ifndef LLMC_ATTENTION_CUH
#define LLMC_ATTENTION_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "cuda_common.cuh"

#define ATTN_TILE 64            // fused kernels: query rows per block and keys per shared-memory tile
#define ATTN_CHUNK 16           // fused forward: keys scored at once (registers) before the softmax update
#define ATTN_SIMPLE_BLOCK 256   // simple kernels: threads per block (a multiple of 32)
#define ATTN_LN2 0.6931471805599453f

// ----------------------------------------------------------------------------
// simple version: kernels

// att (B,NH,T,T) = q_t . k_t2 * scale for t2 <= t (entries t2 > t untouched);
// one thread per (b,h,t,t2)
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_scores_kernel(float* att, const floatX* qkv, int B, int T, int C, int NH, float scale) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * NH * T * T) return;
    int t2 = (int)(idx % T), t = (int)(idx / T % T), h = (int)(idx / T / T % NH), b = (int)(idx / T / T / NH);
    if (t2 > t) return;   // masked: never read
    int HS = C / NH;
    const floatX* q = qkv + ((size_t)b * T + t) * 3 * C + h * HS;
    const floatX* k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * HS;
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += (float)q[d] * (float)k[d];
    att[idx] = s * scale;
}

__device__ inline float attention_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float attention_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// att (rows,T), rows = B*NH*T, row r holding the scores of t = r % T: in
// place, P = softmax over t2 <= t (max subtracted), 0 for t2 > t; one warp
// per row
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_softmax_kernel(float* att, int rows, int T) {
    int row = (int)(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    if (row >= rows) return;   // uniform over the warp
    int t = row % T;
    float* a = att + (size_t)row * T;
    float m = -INFINITY;
    for (int t2 = lane; t2 <= t; t2 += 32) m = fmaxf(m, a[t2]);
    m = attention_warp_max(m);
    float sum = 0.0f;
    for (int t2 = lane; t2 <= t; t2 += 32) {
        float e = expf(a[t2] - m);
        a[t2] = e;
        sum += e;
    }
    float inv = 1.0f / attention_warp_sum(sum);
    for (int t2 = lane; t2 < T; t2 += 32) a[t2] = t2 <= t ? a[t2] * inv : 0.0f;
}

// out (B,T,C) = sum_{t2 <= t} P[b,h,t,t2] v[b,t2,h,:]; one thread per output value
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_weighted_sum_kernel(floatX* out, const float* att, const floatX* qkv, int B, int T, int C, int NH) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * T * C) return;
    int c = (int)(idx % C), t = (int)(idx / C % T), b = (int)(idx / C / T), h = c / (C / NH);
    const float* p = att + (((size_t)b * NH + h) * T + t) * T;
    const floatX* v = qkv + (size_t)b * T * 3 * C + 2 * C + c;
    float acc = 0.0f;
    for (int t2 = 0; t2 <= t; t2++) acc += p[t2] * (float)v[(size_t)t2 * 3 * C];
    out[idx] = (floatX)acc;
}

// datt (B,NH,T,T) = dout_t . v_t2 for t2 <= t; one thread per (b,h,t,t2)
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_dp_kernel(float* datt, const floatX* dout, const floatX* qkv, int B, int T, int C, int NH) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * NH * T * T) return;
    int t2 = (int)(idx % T), t = (int)(idx / T % T), h = (int)(idx / T / T % NH), b = (int)(idx / T / T / NH);
    if (t2 > t) return;
    int HS = C / NH;
    const floatX* g = dout + ((size_t)b * T + t) * C + h * HS;
    const floatX* v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * HS;
    float s = 0.0f;
    for (int d = 0; d < HS; d++) s += (float)g[d] * (float)v[d];
    datt[idx] = s;
}

// datt (rows,T) in place: dS = P (dP - sum_{t2 <= t} dP P) * scale for
// t2 <= t, from att = P (rows,T); one warp per row
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_softmax_backward_kernel(float* datt, const float* att, int rows, int T, float scale) {
    int row = (int)(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    if (row >= rows) return;   // uniform over the warp
    int t = row % T;
    float* g = datt + (size_t)row * T;
    const float* p = att + (size_t)row * T;
    float dsum = 0.0f;
    for (int t2 = lane; t2 <= t; t2 += 32) dsum += g[t2] * p[t2];
    dsum = attention_warp_sum(dsum);
    for (int t2 = lane; t2 <= t; t2 += 32) g[t2] = p[t2] * (g[t2] - dsum) * scale;
}

// dqkv (B,T,3C), overwritten: dq_t = sum_{t2 <= t} dS[t][t2] k_t2, dk_t =
// sum_{t1 >= t} dS[t1][t] q_t1, dv_t = sum_{t1 >= t} P[t1][t] dout_t1; one
// thread per dqkv value
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_dqkv_kernel(floatX* dqkv, const float* att, const float* datt, const floatX* dout, const floatX* qkv,
                          int B, int T, int C, int NH) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * T * 3 * C) return;
    int j = (int)(idx % (3 * C)), t = (int)(idx / (3 * C) % T), b = (int)(idx / (3 * C) / T);
    int part = j / C, c = j % C, h = c / (C / NH);
    size_t head = ((size_t)b * NH + h) * T * T;   // (t1,t2) of this head at head + t1 * T + t2
    const floatX* x = qkv + (size_t)b * T * 3 * C + c;   // q of (b, t1, c) at x[t1 * 3C]
    float acc = 0.0f;
    if (part == 0) {
        for (int t2 = 0; t2 <= t; t2++) acc += datt[head + (size_t)t * T + t2] * (float)x[(size_t)t2 * 3 * C + C];
    } else if (part == 1) {
        for (int t1 = t; t1 < T; t1++) acc += datt[head + (size_t)t1 * T + t] * (float)x[(size_t)t1 * 3 * C];
    } else {
        const floatX* g = dout + (size_t)b * T * C + c;
        for (int t1 = t; t1 < T; t1++) acc += att[head + (size_t)t1 * T + t] * (float)g[(size_t)t1 * C];
    }
    dqkv[idx] = (floatX)acc;
}

// ----------------------------------------------------------------------------
// fused version: kernels

// bf16 x[0..7] (16-byte aligned) -> fp32 y[0..7] * mul
__device__ __forceinline__ void attention_load8(float* y, const floatX* x, float mul) {
    Pack128<floatX> p = load128(x);
#pragma unroll
    for (int k = 0; k < 8; k++) y[k] = (float)p[k] * mul;
}

// out (B,T,C), lse (B,NH,T) from qkv (B,T,3C); grid (ceil(T/ATTN_TILE), NH,
// B), ATTN_TILE threads, thread r owning query row t = blockIdx.x * ATTN_TILE + r
template <int HS>
__global__ void __launch_bounds__(ATTN_TILE)
    attention_forward_kernel(floatX* out, float* lse, const floatX* qkv, int T, int NH, float scale) {
    static_assert(HS % 8 == 0, "HS must be a multiple of 8");
    __shared__ float4 ks[ATTN_TILE * HS / 4];   // key tile (ATTN_TILE,HS) fp32
    __shared__ float4 vs[ATTN_TILE * HS / 4];   // value tile (ATTN_TILE,HS) fp32
    const int qt = (int)blockIdx.x, h = (int)blockIdx.y, b = (int)blockIdx.z, r = (int)threadIdx.x;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int t = qt * ATTN_TILE + r;   // rows t >= T compute on zeros and store nothing
    float q[HS], acc[HS];
#pragma unroll
    for (int c = 0; c < HS / 8; c++) {
        if (t < T) attention_load8(q + 8 * c, base + t * C3 + 8 * c, scale * LOG2E_F);   // scores in base 2
        else {
#pragma unroll
            for (int k = 0; k < 8; k++) q[8 * c + k] = 0.0f;
        }
    }
#pragma unroll
    for (int d = 0; d < HS; d++) acc[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;   // running max (base 2) and sum of 2^(s - m)
    for (int kt = 0; kt <= qt; kt++) {   // key tiles right of the diagonal are skipped
        __syncthreads();                 // everyone is done with the previous tile
        const int j = kt * ATTN_TILE + r;   // thread r stages key row j
#pragma unroll
        for (int c = 0; c < HS / 8; c++) {
            float kk[8], vv[8];
            if (j < T) {
                attention_load8(kk, base + j * C3 + C + 8 * c, 1.0f);
                attention_load8(vv, base + j * C3 + 2 * C + 8 * c, 1.0f);
            } else {
#pragma unroll
                for (int k = 0; k < 8; k++) kk[k] = vv[k] = 0.0f;
            }
            ks[r * (HS / 4) + 2 * c] = make_float4(kk[0], kk[1], kk[2], kk[3]);
            ks[r * (HS / 4) + 2 * c + 1] = make_float4(kk[4], kk[5], kk[6], kk[7]);
            vs[r * (HS / 4) + 2 * c] = make_float4(vv[0], vv[1], vv[2], vv[3]);
            vs[r * (HS / 4) + 2 * c + 1] = make_float4(vv[4], vv[5], vv[6], vv[7]);
        }
        __syncthreads();   // the tile is complete
        // chunks of keys all after t are skipped (the first chunk of tile 0
        // always holds key 0 <= t, so m is finite after it)
        for (int c0 = 0; c0 < ATTN_TILE && kt * ATTN_TILE + c0 <= t; c0 += ATTN_CHUNK) {
            float s[ATTN_CHUNK];
            float cmax = -INFINITY;
#pragma unroll
            for (int jj = 0; jj < ATTN_CHUNK; jj++) {
                const float4* kr = ks + (c0 + jj) * (HS / 4);
                float d = 0.0f;
#pragma unroll
                for (int e = 0; e < HS / 4; e++) {
                    float4 kv = kr[e];
                    d += q[4 * e] * kv.x + q[4 * e + 1] * kv.y + q[4 * e + 2] * kv.z + q[4 * e + 3] * kv.w;
                }
                s[jj] = kt * ATTN_TILE + c0 + jj <= t ? d : -INFINITY;   // causal mask
                cmax = fmaxf(cmax, s[jj]);
            }
            const float mnew = fmaxf(m, cmax);
            const float corr = exp2f(m - mnew);   // 0 on the first chunk (m = -inf)
            l *= corr;
#pragma unroll
            for (int d = 0; d < HS; d++) acc[d] *= corr;
#pragma unroll
            for (int jj = 0; jj < ATTN_CHUNK; jj++) {
                const float p = exp2f(s[jj] - mnew);   // 0 where masked
                l += p;
                const float4* vr = vs + (c0 + jj) * (HS / 4);
#pragma unroll
                for (int e = 0; e < HS / 4; e++) {
                    float4 vv = vr[e];
                    acc[4 * e] += p * vv.x;
                    acc[4 * e + 1] += p * vv.y;
                    acc[4 * e + 2] += p * vv.z;
                    acc[4 * e + 3] += p * vv.w;
                }
            }
            m = mnew;
        }
    }
    if (t < T) {
        const float inv = 1.0f / l;
        floatX* o = out + ((size_t)b * T + t) * C + h * HS;
#pragma unroll
        for (int c = 0; c < HS / 8; c++) {
            Pack128<floatX> y;
#pragma unroll
            for (int k = 0; k < 8; k++) y[k] = (floatX)(acc[8 * c + k] * inv);
            store128(o + 8 * c, y);
        }
        lse[((size_t)b * NH + h) * T + t] = (m + log2f(l)) * ATTN_LN2;
    }
}

// D (B,NH,T) = sum over the head's HS values of dout * out (both (B,T,C));
// one thread per (b,h,t)
__global__ void __launch_bounds__(ATTN_SIMPLE_BLOCK)
    attention_rowdot_kernel(float* D, const floatX* dout, const floatX* out, int B, int T, int NH, int HS) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)B * NH * T) return;
    int t = (int)(idx % T), h = (int)(idx / T % NH), b = (int)(idx / T / NH);
    size_t off = ((size_t)b * T + t) * NH * HS + h * HS;
    float s = 0.0f;
    for (int c = 0; c < HS; c += 8) {
        Pack128<floatX> g = load128(dout + off + c), o = load128(out + off + c);
#pragma unroll
        for (int k = 0; k < 8; k++) s += (float)g[k] * (float)o[k];
    }
    D[idx] = s;
}

// the HS dims of a row are split between the two threads of a pair: half hf
// owns the 8-value packs p = 2 i + hf (i < HS / 16), so at each step the pair
// reads 16-byte chunks 8 floats apart from shared memory (different banks)

// dk, dv (key rows) of dqkv (B,T,3C); grid (ceil(T/ATTN_TILE), NH, B),
// 2 ATTN_TILE threads, pair r owning key row j = blockIdx.x * ATTN_TILE + r;
// loops over the query tiles at or below the diagonal
template <int HS>
__global__ void __launch_bounds__(2 * ATTN_TILE)
    attention_backward_dkdv_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                   const float* D, int T, int NH, float scale) {
    static_assert(HS % 16 == 0, "HS must be a multiple of 16");
    constexpr int H2 = HS / 2;                  // dims per thread
    __shared__ float4 qs[ATTN_TILE * HS / 4];   // query tile (ATTN_TILE,HS) fp32
    __shared__ float4 gs[ATTN_TILE * HS / 4];   // dout tile (ATTN_TILE,HS) fp32
    __shared__ float lse2s[ATTN_TILE];          // lse in base 2 of the tile's rows
    __shared__ float Ds[ATTN_TILE];
    const int kt = (int)blockIdx.x, h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int r = (int)threadIdx.x / 2, hf = (int)threadIdx.x % 2;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const floatX* gbase = dout + (size_t)b * T * C + h * HS;
    const float* lse_bh = lse + ((size_t)b * NH + h) * T;
    const float* D_bh = D + ((size_t)b * NH + h) * T;
    const int j = kt * ATTN_TILE + r;   // rows j >= T compute on zeros and store nothing
    float k[H2], v[H2], dk[H2], dv[H2];
#pragma unroll
    for (int i = 0; i < HS / 16; i++) {
        const int p = 2 * i + hf;
        if (j < T) {
            attention_load8(k + 8 * i, base + j * C3 + C + 8 * p, scale * LOG2E_F);   // scores in base 2
            attention_load8(v + 8 * i, base + j * C3 + 2 * C + 8 * p, 1.0f);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) k[8 * i + e] = v[8 * i + e] = 0.0f;
        }
    }
#pragma unroll
    for (int d = 0; d < H2; d++) dk[d] = dv[d] = 0.0f;
    const int ntiles = (T + ATTN_TILE - 1) / ATTN_TILE;
    for (int qt = kt; qt < ntiles; qt++) {   // query tiles above the diagonal see no key of this tile
        __syncthreads();   // everyone is done with the previous tile
        const int i_row = qt * ATTN_TILE + r;   // pair r stages query row i_row, half hf its packs
#pragma unroll
        for (int i = 0; i < HS / 16; i++) {
            const int p = 2 * i + hf;
            float qq[8], gg[8];
            if (i_row < T) {
                attention_load8(qq, base + i_row * C3 + 8 * p, 1.0f);
                attention_load8(gg, gbase + (size_t)i_row * C + 8 * p, 1.0f);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) qq[e] = gg[e] = 0.0f;
            }
            qs[r * (HS / 4) + 2 * p] = make_float4(qq[0], qq[1], qq[2], qq[3]);
            qs[r * (HS / 4) + 2 * p + 1] = make_float4(qq[4], qq[5], qq[6], qq[7]);
            gs[r * (HS / 4) + 2 * p] = make_float4(gg[0], gg[1], gg[2], gg[3]);
            gs[r * (HS / 4) + 2 * p + 1] = make_float4(gg[4], gg[5], gg[6], gg[7]);
        }
        if (hf == 0) lse2s[r] = i_row < T ? lse_bh[i_row] * LOG2E_F : 0.0f;
        else Ds[r] = i_row < T ? D_bh[i_row] : 0.0f;
        __syncthreads();   // the tile is complete
        const int n = T - qt * ATTN_TILE < ATTN_TILE ? T - qt * ATTN_TILE : ATTN_TILE;   // uniform over the block
        for (int ii = 0; ii < n; ii++) {
            const float4* qr = qs + ii * (HS / 4);
            const float4* gr = gs + ii * (HS / 4);
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int i = 0; i < HS / 16; i++) {
                const int p = 2 * i + hf;
                float4 a = qr[2 * p], a2 = qr[2 * p + 1], g = gr[2 * p], g2 = gr[2 * p + 1];
                s += a.x * k[8 * i] + a.y * k[8 * i + 1] + a.z * k[8 * i + 2] + a.w * k[8 * i + 3] +
                     a2.x * k[8 * i + 4] + a2.y * k[8 * i + 5] + a2.z * k[8 * i + 6] + a2.w * k[8 * i + 7];
                dp += g.x * v[8 * i] + g.y * v[8 * i + 1] + g.z * v[8 * i + 2] + g.w * v[8 * i + 3] +
                      g2.x * v[8 * i + 4] + g2.y * v[8 * i + 5] + g2.z * v[8 * i + 6] + g2.w * v[8 * i + 7];
            }
            s += __shfl_xor_sync(0xffffffffu, s, 1);   // the pair's halves; the same bits in both
            dp += __shfl_xor_sync(0xffffffffu, dp, 1);
            const float pr = qt * ATTN_TILE + ii >= j ? exp2f(s - lse2s[ii]) : 0.0f;   // causal mask
            const float ds = pr * (dp - Ds[ii]);
#pragma unroll
            for (int i = 0; i < HS / 16; i++) {
                const int p = 2 * i + hf;
                float4 a = qr[2 * p], a2 = qr[2 * p + 1], g = gr[2 * p], g2 = gr[2 * p + 1];
                dv[8 * i] += pr * g.x; dv[8 * i + 1] += pr * g.y; dv[8 * i + 2] += pr * g.z; dv[8 * i + 3] += pr * g.w;
                dv[8 * i + 4] += pr * g2.x; dv[8 * i + 5] += pr * g2.y; dv[8 * i + 6] += pr * g2.z; dv[8 * i + 7] += pr * g2.w;
                dk[8 * i] += ds * a.x; dk[8 * i + 1] += ds * a.y; dk[8 * i + 2] += ds * a.z; dk[8 * i + 3] += ds * a.w;
                dk[8 * i + 4] += ds * a2.x; dk[8 * i + 5] += ds * a2.y; dk[8 * i + 6] += ds * a2.z; dk[8 * i + 7] += ds * a2.w;
            }
        }
    }
    if (j < T) {
        floatX* dst = dqkv + ((size_t)b * T + j) * C3 + h * HS;
#pragma unroll
        for (int i = 0; i < HS / 16; i++) {
            const int p = 2 * i + hf;
            Pack128<floatX> yk, yv;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                yk[e] = (floatX)(dk[8 * i + e] * scale);
                yv[e] = (floatX)dv[8 * i + e];
            }
            store128(dst + C + 8 * p, yk);
            store128(dst + 2 * C + 8 * p, yv);
        }
    }
}

// dq (query rows) of dqkv (B,T,3C); grid (ceil(T/ATTN_TILE), NH, B),
// 2 ATTN_TILE threads, pair r owning query row i = blockIdx.x * ATTN_TILE + r;
// loops over the key tiles at or left of the diagonal
template <int HS>
__global__ void __launch_bounds__(2 * ATTN_TILE)
    attention_backward_dq_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                 const float* D, int T, int NH, float scale) {
    static_assert(HS % 16 == 0, "HS must be a multiple of 16");
    constexpr int H2 = HS / 2;
    __shared__ float4 ks[ATTN_TILE * HS / 4];   // key tile (ATTN_TILE,HS) fp32
    __shared__ float4 vs[ATTN_TILE * HS / 4];   // value tile (ATTN_TILE,HS) fp32
    const int qt = (int)blockIdx.x, h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int r = (int)threadIdx.x / 2, hf = (int)threadIdx.x % 2;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int i_row = qt * ATTN_TILE + r;   // rows >= T compute on zeros and store nothing
    float q[H2], g[H2], dq[H2];
#pragma unroll
    for (int i = 0; i < HS / 16; i++) {
        const int p = 2 * i + hf;
        if (i_row < T) {
            attention_load8(q + 8 * i, base + i_row * C3 + 8 * p, scale * LOG2E_F);   // scores in base 2
            attention_load8(g + 8 * i, dout + ((size_t)b * T + i_row) * C + h * HS + 8 * p, 1.0f);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) q[8 * i + e] = g[8 * i + e] = 0.0f;
        }
    }
#pragma unroll
    for (int d = 0; d < H2; d++) dq[d] = 0.0f;
    const size_t row_bh = ((size_t)b * NH + h) * T + i_row;
    const float lse2 = i_row < T ? lse[row_bh] * LOG2E_F : 0.0f;
    const float Di = i_row < T ? D[row_bh] : 0.0f;
    for (int kt = 0; kt <= qt; kt++) {
        __syncthreads();   // everyone is done with the previous tile
        const int jr = kt * ATTN_TILE + r;   // pair r stages key row jr, half hf its packs
#pragma unroll
        for (int i = 0; i < HS / 16; i++) {
            const int p = 2 * i + hf;
            float kk[8], vv[8];
            if (jr < T) {
                attention_load8(kk, base + jr * C3 + C + 8 * p, 1.0f);
                attention_load8(vv, base + jr * C3 + 2 * C + 8 * p, 1.0f);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) kk[e] = vv[e] = 0.0f;
            }
            ks[r * (HS / 4) + 2 * p] = make_float4(kk[0], kk[1], kk[2], kk[3]);
            ks[r * (HS / 4) + 2 * p + 1] = make_float4(kk[4], kk[5], kk[6], kk[7]);
            vs[r * (HS / 4) + 2 * p] = make_float4(vv[0], vv[1], vv[2], vv[3]);
            vs[r * (HS / 4) + 2 * p + 1] = make_float4(vv[4], vv[5], vv[6], vv[7]);
        }
        __syncthreads();   // the tile is complete
        const int n = T - kt * ATTN_TILE < ATTN_TILE ? T - kt * ATTN_TILE : ATTN_TILE;   // uniform over the block
        for (int jj = 0; jj < n; jj++) {
            const float4* kr = ks + jj * (HS / 4);
            const float4* vr = vs + jj * (HS / 4);
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int i = 0; i < HS / 16; i++) {
                const int p = 2 * i + hf;
                float4 a = kr[2 * p], a2 = kr[2 * p + 1], w = vr[2 * p], w2 = vr[2 * p + 1];
                s += a.x * q[8 * i] + a.y * q[8 * i + 1] + a.z * q[8 * i + 2] + a.w * q[8 * i + 3] +
                     a2.x * q[8 * i + 4] + a2.y * q[8 * i + 5] + a2.z * q[8 * i + 6] + a2.w * q[8 * i + 7];
                dp += w.x * g[8 * i] + w.y * g[8 * i + 1] + w.z * g[8 * i + 2] + w.w * g[8 * i + 3] +
                      w2.x * g[8 * i + 4] + w2.y * g[8 * i + 5] + w2.z * g[8 * i + 6] + w2.w * g[8 * i + 7];
            }
            s += __shfl_xor_sync(0xffffffffu, s, 1);   // the pair's halves; the same bits in both
            dp += __shfl_xor_sync(0xffffffffu, dp, 1);
            const float pr = kt * ATTN_TILE + jj <= i_row ? exp2f(s - lse2) : 0.0f;   // causal mask
            const float ds = pr * (dp - Di);
#pragma unroll
            for (int i = 0; i < HS / 16; i++) {
                const int p = 2 * i + hf;
                float4 a = kr[2 * p], a2 = kr[2 * p + 1];
                dq[8 * i] += ds * a.x; dq[8 * i + 1] += ds * a.y; dq[8 * i + 2] += ds * a.z; dq[8 * i + 3] += ds * a.w;
                dq[8 * i + 4] += ds * a2.x; dq[8 * i + 5] += ds * a2.y; dq[8 * i + 6] += ds * a2.z; dq[8 * i + 7] += ds * a2.w;
            }
        }
    }
    if (i_row < T) {
        floatX* dst = dqkv + ((size_t)b * T + i_row) * C3 + h * HS;
#pragma unroll
        for (int i = 0; i < HS / 16; i++) {
            Pack128<floatX> y;
#pragma unroll
            for (int e = 0; e < 8; e++) y[e] = (floatX)(dq[8 * i + e] * scale);
            store128(dst + 8 * (2 * i + hf), y);
        }
    }
}

// ----------------------------------------------------------------------------
// launchers

// exits with a message when the sizes or the bf16 pointers break the kernels'
// constraints; fused: HS in {32, 64}, B and NH <= 65535 (grid dimensions)
// and 16-byte aligned bf16 pointers
static inline void attention_check_args(const char* who, int fused, int B, int T, int C, int NH, const void* a,
                                        const void* b, const void* c, const void* d) {
    if (B < 1 || T < 1 || NH < 1) {
        fprintf(stderr, "error: %s: B = %d, T = %d, NH = %d must all be >= 1\n", who, B, T, NH);
        exit(1);
    }
    if (C < 1 || C % NH != 0) {
        fprintf(stderr, "error: %s: C = %d is not a positive multiple of NH = %d\n", who, C, NH);
        exit(1);
    }
    if (fused && C / NH != 32 && C / NH != 64) {
        fprintf(stderr, "error: %s: head size C / NH = %d is not supported (32 or 64)\n", who, C / NH);
        exit(1);
    }
    if (fused && (B > 65535 || NH > 65535)) {   // gridDim.z and gridDim.y of the fused kernels
        fprintf(stderr, "error: %s: B = %d or NH = %d exceeds 65535\n", who, B, NH);
        exit(1);
    }
    if (fused && ((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d) % 16 != 0) {
        fprintf(stderr, "error: %s: bf16 pointers must be 16-byte aligned\n", who);
        exit(1);
    }
}

static inline unsigned attention_blocks(size_t threads, int per_block) {
    return (unsigned)((threads + per_block - 1) / per_block);
}

// D (B,NH,T) = rowsum(dout * out), the first step of both flash-style backwards
static inline void attention_rowdot(float* D, const floatX* dout, const floatX* out, int B, int T, int NH, int HS,
                                    cudaStream_t stream) {
    attention_rowdot_kernel<<<attention_blocks((size_t)B * NH * T, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0,
                              stream>>>(D, dout, out, B, T, NH, HS);
    cudaCheck(cudaGetLastError());
}

// bytes of fp32 scratch the simple version needs: P (B,NH,T,T), then dS
// (B,NH,T,T) for the backward
static inline size_t attention_simple_scratch_bytes(int B, int T, int NH) {
    return 2 * (size_t)B * NH * T * T * sizeof(float);
}

// out (B,T,C) from qkv (B,T,3C); leaves P (B,NH,T,T) at the start of scratch
// (attention_simple_scratch_bytes) for attention_backward_simple
static inline void attention_forward_simple(floatX* out, float* scratch, const floatX* qkv, int B, int T, int C, int NH,
                                     cudaStream_t stream) {
    attention_check_args("attention_forward_simple", 0, B, T, C, NH, out, qkv, qkv, qkv);
    const size_t n_att = (size_t)B * NH * T * T;
    const float scale = 1.0f / sqrtf((float)(C / NH));
    attention_scores_kernel<<<attention_blocks(n_att, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0, stream>>>(
        scratch, qkv, B, T, C, NH, scale);
    cudaCheck(cudaGetLastError());
    const int rows = B * NH * T;
    attention_softmax_kernel<<<attention_blocks((size_t)rows * 32, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0,
                               stream>>>(scratch, rows, T);
    cudaCheck(cudaGetLastError());
    attention_weighted_sum_kernel<<<attention_blocks((size_t)B * T * C, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0,
                                    stream>>>(out, scratch, qkv, B, T, C, NH);
    cudaCheck(cudaGetLastError());
}

// dqkv (B,T,3C), overwritten, from dout (B,T,C), qkv (B,T,3C) and the P
// that attention_forward_simple left in scratch (the second half of scratch
// is overwritten with dS)
static inline void attention_backward_simple(floatX* dqkv, float* scratch, const floatX* dout, const floatX* qkv, int B,
                                      int T, int C, int NH, cudaStream_t stream) {
    attention_check_args("attention_backward_simple", 0, B, T, C, NH, dqkv, dout, qkv, qkv);
    const size_t n_att = (size_t)B * NH * T * T;
    const float scale = 1.0f / sqrtf((float)(C / NH));
    float* att = scratch;
    float* datt = scratch + n_att;
    attention_dp_kernel<<<attention_blocks(n_att, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0, stream>>>(
        datt, dout, qkv, B, T, C, NH);
    cudaCheck(cudaGetLastError());
    const int rows = B * NH * T;
    attention_softmax_backward_kernel<<<attention_blocks((size_t)rows * 32, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0,
                                        stream>>>(datt, att, rows, T, scale);
    cudaCheck(cudaGetLastError());
    attention_dqkv_kernel<<<attention_blocks((size_t)B * T * 3 * C, ATTN_SIMPLE_BLOCK), ATTN_SIMPLE_BLOCK, 0,
                            stream>>>(dqkv, att, datt, dout, qkv, B, T, C, NH);
    cudaCheck(cudaGetLastError());
}

// the tiled kernels' grid (here and in attention_mma.cuh,
// attention_wgmma.cuh): a block per tile of ATTN_TILE rows of one (b, h)
static inline dim3 attention_tile_grid(int B, int T, int NH) {
    return dim3((unsigned)((T + ATTN_TILE - 1) / ATTN_TILE), (unsigned)NH, (unsigned)B);
}

// lets kernel take smem bytes of dynamic shared memory (over 48 KB a block
// must ask for it)
template <class Kernel>
static inline void attention_allow_dynamic_smem(Kernel* kernel, size_t smem) {
    if (smem > 48 * 1024)
        cudaCheck(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
}

// out (B,T,C) and lse (B,NH,T) (natural-log logsumexp of each row's scaled
// scores, for attention_backward) from qkv (B,T,3C)
static inline void attention_forward(floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH,
                              cudaStream_t stream) {
    attention_check_args("attention_forward", 1, B, T, C, NH, out, qkv, qkv, qkv);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    const dim3 grid = attention_tile_grid(B, T, NH);
    if (HS == 64) attention_forward_kernel<64><<<grid, ATTN_TILE, 0, stream>>>(out, lse, qkv, T, NH, scale);
    else attention_forward_kernel<32><<<grid, ATTN_TILE, 0, stream>>>(out, lse, qkv, T, NH, scale);
    cudaCheck(cudaGetLastError());
}

// dqkv (B,T,3C), overwritten, from dout (B,T,C), qkv (B,T,3C) and what
// attention_forward wrote: out (B,T,C), lse (B,NH,T); scratch_D (B,NH,T) fp32
// receives rowsum(dout * out)
static inline void attention_backward(floatX* dqkv, float* scratch_D, const floatX* dout, const floatX* qkv,
                               const floatX* out, const float* lse, int B, int T, int C, int NH, cudaStream_t stream) {
    attention_check_args("attention_backward", 1, B, T, C, NH, dqkv, dout, qkv, out);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    attention_rowdot(scratch_D, dout, out, B, T, NH, HS, stream);
    const dim3 grid = attention_tile_grid(B, T, NH);
    if (HS == 64) {
        attention_backward_dkdv_kernel<64><<<grid, 2 * ATTN_TILE, 0, stream>>>(dqkv, dout, qkv, lse, scratch_D, T,
                                                                                NH, scale);
        cudaCheck(cudaGetLastError());
        attention_backward_dq_kernel<64><<<grid, 2 * ATTN_TILE, 0, stream>>>(dqkv, dout, qkv, lse, scratch_D, T, NH,
                                                                              scale);
    } else {
        attention_backward_dkdv_kernel<32><<<grid, 2 * ATTN_TILE, 0, stream>>>(dqkv, dout, qkv, lse, scratch_D, T,
                                                                                NH, scale);
        cudaCheck(cudaGetLastError());
        attention_backward_dq_kernel<32><<<grid, 2 * ATTN_TILE, 0, stream>>>(dqkv, dout, qkv, lse, scratch_D, T, NH,
                                                                              scale);
    }
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_ATTENTION_CUH
