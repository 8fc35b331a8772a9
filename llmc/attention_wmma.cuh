// llmc/attention_wmma.cuh: the causal self-attention of llmc/attention.cuh
// on the tensor cores (nvcuda::wmma, bf16 m16n16k16 with fp32 accumulators),
// forward and backward, flash-attention style. Same layouts, arguments and
// outputs as attention_forward / attention_backward there (qkv (B,T,3C), out
// (B,T,C), lse (B,NH,T) natural-log, D (B,NH,T) = rowsum(dout * out) by the
// same attention_rowdot_kernel), so the two are interchangeable. The
// trainer used these until llmc/attention_mma.cuh, the same algorithm with
// the score tiles kept in registers; dev/cuda/attention.cu still checks and
// times them beside it, as its baseline, until a GPU run has compared the two.
//
// Blocks of ATTNW_WARPS = 4 warps own a tile of ATTN_TILE = 64 rows of one
// (b,h), warp w rows 16w..16w+15; tiles of the other side (64,HS) are staged
// in shared memory as bf16, rows padded to HS + 8 values (wmma's strides must
// be multiples of 16 bytes; the pad spreads rows over the banks). Fragment
// layouts are opaque, so a warp's score-sized results (16,64) go through its
// own fp32 scratch in shared memory, where two lanes per row (lane l: row
// l/2, columns 8i + 4(l%2) + 0..3) do the elementwise work in fp32; what a
// matmul needs next (P or dS) goes back into the same scratch as bf16.
// - forward: Q (16,HS) as A fragments in registers; per key tile at or left
//   of the diagonal: S = Q K^T, then the online softmax (base 2, running max
//   m and per-lane partial sums l), P (bf16), P V into fresh accumulators,
//   which the lanes add to their fp32 out after rescaling by 2^(m_old -
//   m_new). In the diagonal tile warp w only computes key chunks 0..w (the
//   others lie above the diagonal for all its rows).
// - backward, as the fused version, in two kernels and without atomics:
//   dkdv: a block owns 64 keys, warp w 16 (K, V as A fragments); per query
//   tile at or below the diagonal: S^T = K Q^T, P^T = 2^(S^T - lse) (bf16),
//   dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D) (bf16), dK += dS^T Q.
//   dq: a block owns 64 queries, warp w 16 (Q, dO as A fragments); per key
//   tile at or left of the diagonal: S = Q K^T, P, dP = dO V^T, dS (bf16),
//   dQ += dS K. P is recomputed from lse in fp32 (never stored).
// Forward blocks take query tiles from the last (the longest rows) to the
// first, so the long blocks start first.
//
// Precision: as the fused version, except that P (for out and dV) and dS (for
// dQ and dK) are rounded to bf16 before their matmuls, as FlashAttention does:
// a relative error of up to 2^-8 per term of those sums, which the check in
// dev/cuda/attention.cu adds to its tolerances. Each output value is summed by
// one warp in a fixed order, so results are bitwise reproducible run to run
// (and in every thread order under the emulation).
//
// Constraints (checked by the launchers): those of the fused version (HS =
// C / NH in {32, 64}, B, NH <= 65535, 16-byte aligned bf16 pointers).
#ifndef LLMC_ATTENTION_WMMA_CUH
#define LLMC_ATTENTION_WMMA_CUH

#include "attention.cuh"
#ifndef CUDA_EMU
#include <mma.h>
#endif

#define ATTNW_WARPS 4                 // warps per block, 16 rows of the tile each
#define ATTNW_LDS (ATTN_TILE + 4)     // fp32 row stride of a warp's (16,64) scratch
#define ATTNW_LDP (ATTN_TILE + 8)     // bf16 row stride of P or dS in the same scratch

// rows row0 .. row0 + 63 of a (T,HS) bf16 matrix whose rows are `stride`
// apart at src -> dst (64, HS + 8) in shared memory; rows >= T become zeros.
// Every thread of the block takes part (16-byte chunks, coalesced).
template <int HS>
__device__ __forceinline__ void attnw_stage(floatX* dst, const floatX* src, size_t stride, int row0, int T) {
    constexpr int CHUNKS = HS / 8;
    for (int i = (int)threadIdx.x; i < ATTN_TILE * CHUNKS; i += (int)blockDim.x) {
        const int r = i / CHUNKS, c = i % CHUNKS;
        Pack128<floatX> v;
        if (row0 + r < T) v = load128(src + (size_t)(row0 + r) * stride + 8 * c);
        else {
#pragma unroll
            for (int k = 0; k < 8; k++) v[k] = (floatX)0.0f;
        }
        store128(dst + r * (HS + 8) + 8 * c, v);
    }
}

// the scratch column of element k (0..31) of a lane's half row: 8 (k/4) +
// 4 hf + k%4 (the pair's halves interleave in 16-byte pieces)
__device__ __forceinline__ int attnw_col(int k, int hf) { return 8 * (k / 4) + 4 * hf + k % 4; }

// v[0..n) -> bf16 at dst's columns attnw_col(k, hf), row stride irrelevant (one row)
__device__ __forceinline__ void attnw_put_row(floatX* row, const float* v, int n, int hf, float mul) {
    for (int k = 0; k < n; k++) row[attnw_col(k, hf)] = (floatX)(v[k] * mul);
}

typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, floatX, nvcuda::wmma::row_major> AttnwRows;
typedef nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> AttnwAcc;

// the warp's score-shaped product X Y^T (16,64) for Y's 16-row chunks c0 ..
// c1-1: x holds X (16,HS) as HS/16 A fragments, Y (64,HS) is a staged tile
// (read column-major: B(d, row) = Y[row][d]); chunk c goes to columns 16c ..
// 16c+15 of the fp32 scratch sc
template <int HS>
__device__ __forceinline__ void attnw_times_tile_t(float* sc, const AttnwRows* x, const floatX* tile, int c0, int c1) {
    using namespace nvcuda;
    for (int c = c0; c < c1; c++) {
        AttnwAcc acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int d = 0; d < HS / 16; d++) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, floatX, wmma::col_major> y;
            wmma::load_matrix_sync(y, tile + 16 * c * (HS + 8) + 16 * d, HS + 8);
            wmma::mma_sync(acc, x[d], y, acc);
        }
        wmma::store_matrix_sync(sc + 16 * c, acc, ATTNW_LDS, wmma::mem_row_major);
    }
}

// acc (16,HS) += W Y over W's 16-column chunks c0 .. c1-1: W (16,64) bf16 in
// the scratch (row stride ATTNW_LDP), Y (64,HS) a staged tile (row-major)
template <int HS>
__device__ __forceinline__ void attnw_accumulate(AttnwAcc* acc, const floatX* w, const floatX* tile, int c0, int c1) {
    using namespace nvcuda;
    for (int c = c0; c < c1; c++) {
        AttnwRows wc;
        wmma::load_matrix_sync(wc, w + 16 * c, ATTNW_LDP);
#pragma unroll
        for (int d = 0; d < HS / 16; d++) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, floatX, wmma::row_major> y;
            wmma::load_matrix_sync(y, tile + 16 * c * (HS + 8) + 16 * d, HS + 8);
            wmma::mma_sync(acc[d], wc, y, acc[d]);
        }
    }
}

// the warp's (16,HS) accumulators -> its scratch -> bf16 rows of dst (row r
// of the warp at dst + r * row_stride) for rows whose index row0 + r < T,
// times mul; every lane of the warp takes part
template <int HS>
__device__ __forceinline__ void attnw_write_rows(floatX* dst, size_t row_stride, int row0, int T, float* sc,
                                                 const AttnwAcc* acc, float mul) {
    using namespace nvcuda;
    const int lane = (int)threadIdx.x % 32, r = lane / 2, hf = lane % 2;
    __syncwarp();   // the warp is done reading the scratch
#pragma unroll
    for (int d = 0; d < HS / 16; d++) wmma::store_matrix_sync(sc + 16 * d, acc[d], ATTNW_LDS, wmma::mem_row_major);
    __syncwarp();
    if (row0 + r < T) {
        float v[HS / 2];
#pragma unroll
        for (int k = 0; k < HS / 2; k++) v[k] = sc[r * ATTNW_LDS + attnw_col(k, hf)];
        attnw_put_row(dst + (size_t)r * row_stride, v, HS / 2, hf, mul);
    }
}

// out (B,T,C), lse (B,NH,T) from qkv (B,T,3C); grid (ceil(T/64), NH, B),
// 128 threads
template <int HS>
__global__ void __launch_bounds__(32 * ATTNW_WARPS)
    attention_forward_wmma_kernel(floatX* out, float* lse, const floatX* qkv, int T, int NH, float scale) {
    using namespace nvcuda;
    constexpr int LDH = HS + 8, NF = HS / 16;
    __shared__ __align__(32) floatX tile_a[ATTN_TILE * LDH];   // Q, then each K tile
    __shared__ __align__(32) floatX tile_b[ATTN_TILE * LDH];   // each V tile
    __shared__ __align__(32) float scratch[ATTNW_WARPS][16 * ATTNW_LDS];
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32, r = lane / 2, hf = lane % 2;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int t = qt * ATTN_TILE + 16 * warp + r;   // this lane's query row (rows >= T: zeros, not stored)
    float* sc = scratch[warp];
    floatX* pb = (floatX*)sc;   // P (16,64) bf16, written over the scores once they are read

    attnw_stage<HS>(tile_a, base, C3, qt * ATTN_TILE, T);
    __syncthreads();
    AttnwRows qf[NF];
#pragma unroll
    for (int d = 0; d < NF; d++) wmma::load_matrix_sync(qf[d], tile_a + 16 * warp * LDH + 16 * d, LDH);
    float o[HS / 2];   // this lane's half of its row of out, unnormalised
#pragma unroll
    for (int k = 0; k < HS / 2; k++) o[k] = 0.0f;
    float m = -INFINITY, l = 0.0f;   // running max (base 2) and this lane's part of the sum of 2^(s - m)
    const float to_base2 = scale * ATTN_LOG2E;
    for (int kt = 0; kt <= qt; kt++) {
        __syncthreads();   // every warp has its Q fragments and is done with the previous tile
        attnw_stage<HS>(tile_a, base + C, C3, kt * ATTN_TILE, T);
        attnw_stage<HS>(tile_b, base + 2 * C, C3, kt * ATTN_TILE, T);
        __syncthreads();
        const int nj = kt == qt ? warp + 1 : 4;   // key chunks of 16 with a key <= one of the warp's rows
        attnw_times_tile_t<HS>(sc, qf, tile_a, 0, nj);   // S (16,64) = Q K^T
        __syncwarp();
        float p[32], tmax = -INFINITY;
#pragma unroll
        for (int k = 0; k < 32; k++) {
            const int c = attnw_col(k, hf);
            const bool live = c / 16 < nj && kt * ATTN_TILE + c <= t;   // causal mask
            p[k] = live ? sc[r * ATTNW_LDS + c] * to_base2 : -INFINITY;
            tmax = fmaxf(tmax, p[k]);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));   // the pair's max: the same in both
        const float mnew = fmaxf(m, tmax);   // finite: key 0 of tile 0, or the row's own key, is live
        const float alpha = exp2f(m - mnew);   // 0 on the first tile
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < 32; k++) {
            p[k] = exp2f(p[k] - mnew);   // 0 where masked
            sum += p[k];
        }
        l = l * alpha + sum;
        m = mnew;
        __syncwarp();   // every lane has read its scores: P goes over them
        attnw_put_row(pb + r * ATTNW_LDP, p, 32, hf, 1.0f);
        __syncwarp();
        AttnwAcc pv[NF];   // P V (16,HS)
#pragma unroll
        for (int d = 0; d < NF; d++) wmma::fill_fragment(pv[d], 0.0f);
        attnw_accumulate<HS>(pv, pb, tile_b, 0, nj);
        __syncwarp();   // every lane's loads of P are done: P V goes over it
#pragma unroll
        for (int d = 0; d < NF; d++) wmma::store_matrix_sync(sc + 16 * d, pv[d], ATTNW_LDS, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int k = 0; k < HS / 2; k++) o[k] = o[k] * alpha + sc[r * ATTNW_LDS + attnw_col(k, hf)];
    }
    l += __shfl_xor_sync(0xffffffffu, l, 1);   // the pair's partial sums (same scale m): the same in both
    if (t < T) {
        attnw_put_row(out + ((size_t)b * T + t) * C + h * HS, o, HS / 2, hf, 1.0f / l);
        if (hf == 0) lse[((size_t)b * NH + h) * T + t] = (m + log2f(l)) * ATTN_LN2;
    }
}

// dk, dv (key rows) of dqkv (B,T,3C); grid (ceil(T/64), NH, B), 128 threads;
// block x owns key tile x (tile 0, with the most query tiles, first)
template <int HS>
__global__ void __launch_bounds__(32 * ATTNW_WARPS)
    attention_backward_dkdv_wmma_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                        const float* D, int T, int NH, float scale) {
    using namespace nvcuda;
    constexpr int LDH = HS + 8, NF = HS / 16;
    __shared__ __align__(32) floatX tile_a[ATTN_TILE * LDH];   // K, then each Q tile
    __shared__ __align__(32) floatX tile_b[ATTN_TILE * LDH];   // V, then each dout tile
    __shared__ __align__(32) float scratch[ATTNW_WARPS][16 * ATTNW_LDS];
    __shared__ float lse2s[ATTN_TILE];   // lse in base 2 of the query tile's rows
    __shared__ float Ds[ATTN_TILE];
    const int kt = (int)blockIdx.x, h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32, r = lane / 2, hf = lane % 2;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const floatX* gbase = dout + (size_t)b * T * C + h * HS;
    const float* lse_bh = lse + ((size_t)b * NH + h) * T;
    const float* D_bh = D + ((size_t)b * NH + h) * T;
    const int key0 = kt * ATTN_TILE + 16 * warp, j = key0 + r;   // the warp's first key, this lane's key
    float* sc = scratch[warp];
    floatX* pb = (floatX*)sc;   // P^T, then dS^T (16,64) bf16

    attnw_stage<HS>(tile_a, base + C, C3, kt * ATTN_TILE, T);
    attnw_stage<HS>(tile_b, base + 2 * C, C3, kt * ATTN_TILE, T);
    __syncthreads();
    AttnwRows kf[NF], vf[NF];
#pragma unroll
    for (int d = 0; d < NF; d++) {
        wmma::load_matrix_sync(kf[d], tile_a + 16 * warp * LDH + 16 * d, LDH);
        wmma::load_matrix_sync(vf[d], tile_b + 16 * warp * LDH + 16 * d, LDH);
    }
    AttnwAcc dk[NF], dv[NF];
#pragma unroll
    for (int d = 0; d < NF; d++) {
        wmma::fill_fragment(dk[d], 0.0f);
        wmma::fill_fragment(dv[d], 0.0f);
    }
    const float to_base2 = scale * ATTN_LOG2E;
    const int ntiles = (T + ATTN_TILE - 1) / ATTN_TILE;
    for (int qt = kt; qt < ntiles; qt++) {   // query tiles above the diagonal see none of these keys
        __syncthreads();   // every warp has its K, V fragments and is done with the previous tile
        attnw_stage<HS>(tile_a, base, C3, qt * ATTN_TILE, T);
        attnw_stage<HS>(tile_b, gbase, C, qt * ATTN_TILE, T);
        for (int i = (int)threadIdx.x; i < ATTN_TILE; i += (int)blockDim.x) {
            const int row = qt * ATTN_TILE + i;
            lse2s[i] = row < T ? lse_bh[row] * ATTN_LOG2E : 0.0f;
            Ds[i] = row < T ? D_bh[row] : 0.0f;
        }
        __syncthreads();
        // query chunks of 16: before i0 all lie before the warp's keys (diagonal tile), from i1 past T
        const int i0 = qt == kt ? warp : 0;
        const int rows_left = T - qt * ATTN_TILE, i1 = rows_left >= ATTN_TILE ? 4 : (rows_left + 15) / 16;
        attnw_times_tile_t<HS>(sc, kf, tile_a, i0, i1);   // S^T (16,64) = K Q^T
        __syncwarp();
        float p[32];   // P^T of this lane's key and half of the tile's queries, then dS^T
#pragma unroll
        for (int k = 0; k < 32; k++) {
            const int c = attnw_col(k, hf), query = qt * ATTN_TILE + c;
            const bool live = c / 16 >= i0 && c / 16 < i1 && query >= j && query < T;   // causal mask
            p[k] = live ? exp2f(sc[r * ATTNW_LDS + c] * to_base2 - lse2s[c]) : 0.0f;
        }
        __syncwarp();   // every lane has read its scores: P^T goes over them
        attnw_put_row(pb + r * ATTNW_LDP, p, 32, hf, 1.0f);
        __syncwarp();
        attnw_accumulate<HS>(dv, pb, tile_b, i0, i1);   // dV (16,HS) += P^T dO
        __syncwarp();   // every lane's loads of P^T are done: dP^T goes over it
        attnw_times_tile_t<HS>(sc, vf, tile_b, i0, i1);   // dP^T (16,64) = V dO^T
        __syncwarp();
#pragma unroll
        for (int k = 0; k < 32; k++) {   // dS^T = P^T (dP^T - D); masked entries (p = 0) stay 0
            const int c = attnw_col(k, hf);
            p[k] = p[k] != 0.0f ? p[k] * (sc[r * ATTNW_LDS + c] - Ds[c]) : 0.0f;
        }
        __syncwarp();   // every lane has read its dP^T: dS^T goes over it
        attnw_put_row(pb + r * ATTNW_LDP, p, 32, hf, 1.0f);
        __syncwarp();
        attnw_accumulate<HS>(dk, pb, tile_a, i0, i1);   // dK (16,HS) += dS^T Q
    }
    floatX* dst = dqkv + ((size_t)b * T + key0) * C3 + h * HS;
    attnw_write_rows<HS>(dst + C, C3, key0, T, sc, dk, scale);
    attnw_write_rows<HS>(dst + 2 * C, C3, key0, T, sc, dv, 1.0f);
}

// dq (query rows) of dqkv (B,T,3C); grid (ceil(T/64), NH, B), 128 threads;
// query tiles from the last (the most key tiles) to the first
template <int HS>
__global__ void __launch_bounds__(32 * ATTNW_WARPS)
    attention_backward_dq_wmma_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                      const float* D, int T, int NH, float scale) {
    using namespace nvcuda;
    constexpr int LDH = HS + 8, NF = HS / 16;
    __shared__ __align__(32) floatX tile_a[ATTN_TILE * LDH];   // Q, then each K tile
    __shared__ __align__(32) floatX tile_b[ATTN_TILE * LDH];   // dout, then each V tile
    __shared__ __align__(32) float scratch[ATTNW_WARPS][16 * ATTNW_LDS];
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32, r = lane / 2, hf = lane % 2;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int q0 = qt * ATTN_TILE + 16 * warp, t = q0 + r;   // the warp's first query, this lane's
    float* sc = scratch[warp];
    floatX* pb = (floatX*)sc;   // dS (16,64) bf16

    attnw_stage<HS>(tile_a, base, C3, qt * ATTN_TILE, T);
    attnw_stage<HS>(tile_b, dout + (size_t)b * T * C + h * HS, C, qt * ATTN_TILE, T);
    __syncthreads();
    AttnwRows qf[NF], gf[NF];
#pragma unroll
    for (int d = 0; d < NF; d++) {
        wmma::load_matrix_sync(qf[d], tile_a + 16 * warp * LDH + 16 * d, LDH);
        wmma::load_matrix_sync(gf[d], tile_b + 16 * warp * LDH + 16 * d, LDH);
    }
    const size_t row_bh = ((size_t)b * NH + h) * T + t;
    const float lse2 = t < T ? lse[row_bh] * ATTN_LOG2E : 0.0f, Dt = t < T ? D[row_bh] : 0.0f;
    AttnwAcc dq[NF];
#pragma unroll
    for (int d = 0; d < NF; d++) wmma::fill_fragment(dq[d], 0.0f);
    const float to_base2 = scale * ATTN_LOG2E;
    for (int kt = 0; kt <= qt; kt++) {
        __syncthreads();   // every warp has its Q, dO fragments and is done with the previous tile
        attnw_stage<HS>(tile_a, base + C, C3, kt * ATTN_TILE, T);
        attnw_stage<HS>(tile_b, base + 2 * C, C3, kt * ATTN_TILE, T);
        __syncthreads();
        const int nj = kt == qt ? warp + 1 : 4;   // key chunks with a key <= one of the warp's rows
        attnw_times_tile_t<HS>(sc, qf, tile_a, 0, nj);   // S (16,64) = Q K^T
        __syncwarp();
        float p[32];   // P of this lane's query and half of the tile's keys, then dS
#pragma unroll
        for (int k = 0; k < 32; k++) {
            const int c = attnw_col(k, hf);
            const bool live = c / 16 < nj && kt * ATTN_TILE + c <= t;   // causal mask
            p[k] = live ? exp2f(sc[r * ATTNW_LDS + c] * to_base2 - lse2) : 0.0f;
        }
        __syncwarp();   // every lane has read its scores: dP goes over them
        attnw_times_tile_t<HS>(sc, gf, tile_b, 0, nj);   // dP (16,64) = dO V^T
        __syncwarp();
#pragma unroll
        for (int k = 0; k < 32; k++) {   // dS = P (dP - D); masked entries (p = 0) stay 0
            const int c = attnw_col(k, hf);
            p[k] = p[k] != 0.0f ? p[k] * (sc[r * ATTNW_LDS + c] - Dt) : 0.0f;
        }
        __syncwarp();   // every lane has read its dP: dS goes over it
        attnw_put_row(pb + r * ATTNW_LDP, p, 32, hf, 1.0f);
        __syncwarp();
        attnw_accumulate<HS>(dq, pb, tile_a, 0, nj);   // dQ (16,HS) += dS K
    }
    attnw_write_rows<HS>(dqkv + ((size_t)b * T + q0) * C3 + h * HS, C3, q0, T, sc, dq, scale);
}

// ----------------------------------------------------------------------------
// launchers: the same contract as attention_forward / attention_backward

static inline void attention_forward_wmma(floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH,
                                          cudaStream_t stream) {
    attention_check_args("attention_forward_wmma", 1, B, T, C, NH, out, qkv, qkv, qkv);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    dim3 grid((unsigned)((T + ATTN_TILE - 1) / ATTN_TILE), (unsigned)NH, (unsigned)B);
    if (HS == 64) attention_forward_wmma_kernel<64><<<grid, 32 * ATTNW_WARPS, 0, stream>>>(out, lse, qkv, T, NH, scale);
    else attention_forward_wmma_kernel<32><<<grid, 32 * ATTNW_WARPS, 0, stream>>>(out, lse, qkv, T, NH, scale);
    cudaCheck(cudaGetLastError());
}

static inline void attention_backward_wmma(floatX* dqkv, float* scratch_D, const floatX* dout, const floatX* qkv,
                                           const floatX* out, const float* lse, int B, int T, int C, int NH,
                                           cudaStream_t stream) {
    attention_check_args("attention_backward_wmma", 1, B, T, C, NH, dqkv, dout, qkv, out);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    attention_rowdot(scratch_D, dout, out, B, T, NH, HS, stream);
    dim3 grid((unsigned)((T + ATTN_TILE - 1) / ATTN_TILE), (unsigned)NH, (unsigned)B);
    if (HS == 64) {
        attention_backward_dkdv_wmma_kernel<64><<<grid, 32 * ATTNW_WARPS, 0, stream>>>(dqkv, dout, qkv, lse,
                                                                                       scratch_D, T, NH, scale);
        cudaCheck(cudaGetLastError());
        attention_backward_dq_wmma_kernel<64><<<grid, 32 * ATTNW_WARPS, 0, stream>>>(dqkv, dout, qkv, lse,
                                                                                     scratch_D, T, NH, scale);
    } else {
        attention_backward_dkdv_wmma_kernel<32><<<grid, 32 * ATTNW_WARPS, 0, stream>>>(dqkv, dout, qkv, lse,
                                                                                       scratch_D, T, NH, scale);
        cudaCheck(cudaGetLastError());
        attention_backward_dq_wmma_kernel<32><<<grid, 32 * ATTNW_WARPS, 0, stream>>>(dqkv, dout, qkv, lse,
                                                                                     scratch_D, T, NH, scale);
    }
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_ATTENTION_WMMA_CUH
