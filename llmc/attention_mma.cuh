// llmc/attention_mma.cuh: the causal self-attention of llmc/attention.cuh on
// the tensor cores with its tiles in registers (PTX mma.sync m16n8k16,
// ldmatrix and cp.async, llmc/ptx.cuh), forward and backward,
// FlashAttention-2 style.
// Same layouts, arguments and outputs as attention_forward /
// attention_backward there (qkv (B,T,3C), out (B,T,C), lse (B,NH,T)
// natural-log, D (B,NH,T) = rowsum(dout * out) by attention_rowdot), the
// backward with one more scratch buffer, for dS (B,NH,T,T)'s causal half. Where
// the score-shaped (16,64) products live is the point: the first tensor-core
// version here, on nvcuda::wmma, had to store each one to shared memory for
// the softmax and load it back as bf16 for the next matmul (wmma's fragments
// are opaque; this one was 2.7x faster forward and 3.4x backward on an H200,
// which retired it); here the accumulators' documented layout (a
// lane holds rows g = lane/4 and g + 8, columns 2t, 2t+1 of each 8-column
// tile, t = lane % 4) lets each lane do the elementwise work in place, and
// the same registers rounded to bf16 are the A operand of the next matmul.
// Shared memory holds only the staged (64,HS) tiles of the other side, read
// with ldmatrix (rows padded to HS + 8 values: the 8 row addresses of one
// 8x8 matrix fall in different banks). They arrive by cp.async into two
// buffers each: tile i + 1 is loading while tile i is computed, so a block
// does not stall on each tile's global loads (1.13x forward, 1.07x backward
// against load, wait, compute in one buffer, sixth GPU run).
//
// Blocks of ATTNM_WARPS = 4 warps own a tile of ATTN_TILE = 64 rows of one
// (b,h), warp w rows 16w..16w+15.
// - forward: Q (16,HS) as A fragments; per key tile at or left of the
//   diagonal: S (16,64) = Q K^T, the online softmax in base 2 (running max m
//   and per-lane partial sums l of each row; a row's max is shared by its 4
//   lanes with two shuffles), out *= 2^(m_old - m_new) (skipped when no
//   row's max moved), out += P V with P the scores' registers as bf16. In
//   the diagonal tile warp w only computes key chunks 0..w of 16.
// - backward, in two kernels and without atomics, one chunk of 16 rows of the
//   other side at a time (few registers: 16 scores and 16 dP per lane):
//   dkdv: a block owns 64 keys, warp w 16 (K, V as A fragments); per query
//   chunk at or below the diagonal: S^T = K Q^T, P^T = 2^(S^T - lse), dV +=
//   P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D), dK += dS^T Q, and dS^T
//   (as rounded to bf16 for dK) is stored to a scratch buffer.
//   dq: a block owns 64 queries, warp w 16; per key chunk at or left of the
//   diagonal: dQ += dS K, dS read back from the scratch (one matmul; see
//   "dS, stored" below). Without the scratch, dq recomputes S, P, dP = dO
//   V^T and dS itself (Q and dO as A fragments): three matmuls. P is
//   recomputed from lse in fp32 (never stored).
// Forward and dq blocks take their tiles from the last (the longest rows) to
// the first, so the long blocks start first.
// Each kernel's per-tile work is one function templated on whether the tile
// needs a mask (attnm_*_tile): only the diagonal tile (and in dkdv a last
// partial one) evaluates one, the others are straight-line tensor and
// softmax work. The first profile of these kernels (docs/gpu-validation.md,
// sixth run) found about ten instructions issued per mma.sync, most of them
// the mask, the staging loop's address arithmetic and exp2f's denormal
// handling, now gone (ex2.approx.ftz, a staging loop of fixed trip count).
// FlashAttention-2's larger warp tile (two 16-row chunks per warp, each B
// fragment used twice) was measured slower here: ptxas needed 241 registers
// for the forward, so half the warps per SM (same run).
//
// Precision: P (for out and dV) and dS (for dQ and dK, stored or not)
// are rounded to bf16 before their matmuls (a relative error of up to 2^-8
// per term, in dev/cuda/attention.cu's tolerances); everything else in fp32.
// Each output value is summed by one lane in a fixed order, so results are
// bitwise reproducible run to run.
//
// Constraints (checked by the launchers): those of the fused version (HS =
// C / NH in {32, 64}, B, NH <= 65535, 16-byte aligned bf16 pointers); the
// instructions need sm_80 or later.
#ifndef LLMC_ATTENTION_MMA_CUH
#define LLMC_ATTENTION_MMA_CUH

#include "attention.cuh"
#include "ptx.cuh"

#define ATTNM_WARPS 4   // warps per block, 16 rows of the tile each

// one thread's share of staging a tile: rows row0 .. row0 + 63 of a (T,HS)
// bf16 matrix whose rows are `stride` apart at src, by cp.async (in flight
// until a cp_async_wait; rows >= T are stored as zeros at once). The thread
// copies PIECES 16-byte pieces, the k-th holding values 8c..8c+7 of the
// tile's row r + k ROW_STEP, to dst + k DST_STEP. A whole tile (every one
// but a ragged last) skips the row checks and one pointer walks the rows:
// a piece costs an add and its cp.async, where the checked loop spends
// about 20 instructions (PTX) on a piece's bounds and 64-bit address. (The
// checked loop keeps that address arithmetic: walking the pointer there
// too made ptxas spill in dq and dkdv, which sit at 128 registers.)
template <int PIECES, int ROW_STEP, int DST_STEP>
__device__ __forceinline__ void attn_stage_pieces(floatX* dst, const floatX* src, size_t stride, int row0, int r,
                                                  int c, int T) {
    static_assert(PIECES * ROW_STEP == ATTN_TILE, "r < ROW_STEP: a thread's rows r + k ROW_STEP stay in the tile");
    if (row0 + ATTN_TILE <= T) {
        const floatX* s = src + (size_t)(row0 + r) * stride + 8 * c;
        const size_t step = (size_t)ROW_STEP * stride;
#pragma unroll
        for (int k = 0; k < PIECES; k++) {
            cp_async16(dst + k * DST_STEP, s);
            if (k + 1 < PIECES) s += step;   // (not past the tile's last row)
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < PIECES; k++) {
        if (row0 + r + k * ROW_STEP < T) {
            cp_async16(dst + k * DST_STEP, src + (size_t)(row0 + r + k * ROW_STEP) * stride + 8 * c);
        } else {
            Pack128<floatX> zero;
#pragma unroll
            for (int e = 0; e < 8; e++) zero[e] = (floatX)0.0f;
            store128(dst + k * DST_STEP, zero);
        }
    }
}

// rows row0 .. row0 + 63 of a (T,HS) bf16 matrix whose rows are `stride`
// apart at src -> dst (64, HS + 8) in shared memory, as attn_stage_pieces.
// The block's 32 * ATTNM_WARPS threads (as every launcher here starts) take
// 16-byte chunks, coalesced: thread i chunk i % (HS/8) of rows i / (HS/8) +
// k * ROWS.
template <int HS>
__device__ __forceinline__ void attnm_stage(floatX* dst, const floatX* src, size_t stride, int row0, int T) {
    constexpr int CHUNKS = HS / 8, ROWS = 32 * ATTNM_WARPS / CHUNKS;
    static_assert(32 * ATTNM_WARPS % CHUNKS == 0 && ATTN_TILE % ROWS == 0, "whole rows per pass, whole passes");
    const int r = (int)threadIdx.x / CHUNKS, c = (int)threadIdx.x % CHUNKS;
    attn_stage_pieces<ATTN_TILE / ROWS, ROWS, ROWS * (HS + 8)>(dst + r * (HS + 8) + 8 * c, src, stride, row0, r, c, T);
}

// the same for 64 floats, one per row: src[row0 ..] -> dst (0 past T)
__device__ __forceinline__ void attnm_stage_rows(float* dst, const float* src, int row0, int T) {
    static_assert(32 * ATTNM_WARPS >= ATTN_TILE, "one thread per row");
    const int i = (int)threadIdx.x;
    if (i < ATTN_TILE) {
        if (row0 + i < T) cp_async4(dst + i, src + row0 + i);
        else dst[i] = 0.0f;
    }
}

// key tile kt's K and V rows (qkv's at base + C and base + 2C, rows C3
// apart) by cp.async into buffer kt % 2 of tile_k and tile_v (each (2, 64,
// HS + 8)); not committed
template <int HS>
__device__ __forceinline__ void attnm_load_kv(floatX* tile_k, floatX* tile_v, const floatX* base, size_t C3, int C,
                                              int kt, int T) {
    const size_t buf = (size_t)(kt % 2) * ATTN_TILE * (HS + 8);
    attnm_stage<HS>(tile_k + buf, base + C, C3, kt * ATTN_TILE, T);
    attnm_stage<HS>(tile_v + buf, base + 2 * C, C3, kt * ATTN_TILE, T);
}

// query tile qt's rows for dkdv (Q, dout, lse, D) by cp.async into
// buffer (qt - kt) % 2 of tile_q, tile_g (each (2, 64, HS + 8)), lse_s and
// D_s (each (2, 64)); not committed
template <int HS>
__device__ __forceinline__ void attnm_load_queries(floatX* tile_q, floatX* tile_g, float* lse_s, float* D_s,
                                                   const floatX* base, const floatX* gbase, size_t C3, int C,
                                                   const float* lse_bh, const float* D_bh, int qt, int kt, int T) {
    const int k = (qt - kt) % 2;
    attnm_stage<HS>(tile_q + (size_t)k * ATTN_TILE * (HS + 8), base, C3, qt * ATTN_TILE, T);
    attnm_stage<HS>(tile_g + (size_t)k * ATTN_TILE * (HS + 8), gbase, C, qt * ATTN_TILE, T);
    attnm_stage_rows(lse_s + k * ATTN_TILE, lse_bh, qt * ATTN_TILE, T);
    attnm_stage_rows(D_s + k * ATTN_TILE, D_bh, qt * ATTN_TILE, T);
}

// The pipeline's step before tile i is computed (key tiles in the forward
// and dq, query tiles in dkdv), before the loads of tile i + 1 are issued
// (and committed as one group): every copy issued so far (tile i) is in, and
// every warp is done with tile i - 1 (before tile 0: with the buffer its
// fragments came from), whose buffer tile i + 1 then loads into, while
// tile i is computed: one barrier per tile.
__device__ __forceinline__ void attnm_pipeline_wait() {
    cp_async_wait<0>();
    __syncthreads();
}

// the warp's 16 rows of a staged (64,HS) tile (warp w: rows 16w..16w+15),
// columns 16kd..16kd+15, as an A operand (16,16)
template <int HS>
__device__ __forceinline__ void attnm_load_row_fragment(uint32_t (&a)[4], const floatX* tile, int kd) {
    const int l = (int)threadIdx.x % 32, r0 = 16 * ((int)threadIdx.x / 32);
    ldmatrix_x4(a, tile + (r0 + l % 8 + 8 * (l / 8 % 2)) * (HS + 8) + 16 * kd + 8 * (l / 16));
}

// all HS/16 of them: x[kd]
template <int HS>
__device__ __forceinline__ void attnm_load_rows(uint32_t (&x)[HS / 16][4], const floatX* tile) {
#pragma unroll
    for (int kd = 0; kd < HS / 16; kd++) attnm_load_row_fragment<HS>(x[kd], tile, kd);
}

// B operands of Y^T for two 8-column tiles, Y a staged tile: the columns are
// Y's rows n0.. n0+15, k runs over Y's columns k0..k0+15; b[0..1] is the
// tile of rows n0..n0+7, b[2..3] of n0+8..n0+15
template <int LDH>
__device__ __forceinline__ void attnm_load_bt(uint32_t (&b)[4], const floatX* tile, int n0, int k0) {
    const int l = (int)threadIdx.x % 32;
    ldmatrix_x4(b, tile + (n0 + l % 8 + 8 * (l / 16)) * LDH + k0 + 8 * (l / 8 % 2));
}

// B operands of Y itself for two 8-column tiles: k runs over Y's rows
// k0..k0+15, the columns are Y's columns n0..n0+15 (b[0..1]: n0..n0+7)
template <int LDH>
__device__ __forceinline__ void attnm_load_b(uint32_t (&b)[4], const floatX* tile, int k0, int n0) {
    const int l = (int)threadIdx.x % 32;
    ldmatrix_x4_trans(b, tile + (k0 + l % 8 + 8 * (l / 8 % 2)) * LDH + n0 + 8 * (l / 16));
}

// s (16,16) = X Y^T for Y's rows n0..n0+15: x holds X (16,HS) as HS/16 A
// fragments, Y (64,HS) is a staged tile; s[0] columns 0..7, s[1] 8..15
template <int HS>
__device__ __forceinline__ void attnm_times_t(float (&s)[2][4], const uint32_t (&x)[HS / 16][4], const floatX* tile,
                                              int n0) {
#pragma unroll
    for (int i = 0; i < 4; i++) s[0][i] = s[1][i] = 0.0f;
#pragma unroll
    for (int kd = 0; kd < HS / 16; kd++) {
        uint32_t b[4];
        attnm_load_bt<HS + 8>(b, tile, n0, 16 * kd);
        mma_bf16_16816(s[0], x[kd], b[0], b[1]);
        mma_bf16_16816(s[1], x[kd], b[2], b[3]);
    }
}

// the same with X the warp's 16 rows of a staged (64,HS) tile xs, each A
// fragment read as its k step needs it (4 registers live, not HS/4)
template <int HS>
__device__ __forceinline__ void attnm_times_t_staged(float (&s)[2][4], const floatX* xs, const floatX* tile, int n0) {
#pragma unroll
    for (int i = 0; i < 4; i++) s[0][i] = s[1][i] = 0.0f;
#pragma unroll
    for (int kd = 0; kd < HS / 16; kd++) {
        uint32_t a[4], b[4];
        attnm_load_row_fragment<HS>(a, xs, kd);
        attnm_load_bt<HS + 8>(b, tile, n0, 16 * kd);
        mma_bf16_16816(s[0], a, b[0], b[1]);
        mma_bf16_16816(s[1], a, b[2], b[3]);
    }
}

// the A operand (16,16) made of two accumulator tiles (columns 0..7, 8..15)
// rounded to bf16
__device__ __forceinline__ void attnm_as_a(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
    a[0] = pack_bf16x2(lo[0], lo[1]);
    a[1] = pack_bf16x2(lo[2], lo[3]);
    a[2] = pack_bf16x2(hi[0], hi[1]);
    a[3] = pack_bf16x2(hi[2], hi[3]);
}

// acc (16,HS) += W Y: W (16,16) an A operand, Y the staged tile's rows k0..k0+15
template <int HS>
__device__ __forceinline__ void attnm_accumulate(float (&acc)[HS / 8][4], const uint32_t (&w)[4], const floatX* tile,
                                                 int k0) {
#pragma unroll
    for (int n = 0; n < HS / 16; n++) {
        uint32_t b[4];
        attnm_load_b<HS + 8>(b, tile, k0, 16 * n);
        mma_bf16_16816(acc[2 * n], w, b[0], b[1]);
        mma_bf16_16816(acc[2 * n + 1], w, b[2], b[3]);
    }
}

// the warp's rows of acc (16,HS), times mul[0] (row g) and mul[1] (row g + 8),
// -> bf16 at dst + r * row_stride for the rows row0 + r < T
template <int HS>
__device__ __forceinline__ void attnm_write_rows(floatX* dst, size_t row_stride, int row0, int T,
                                                 const float (&acc)[HS / 8][4], const float (&mul)[2]) {
    const int lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (row0 + g + 8 * r >= T) continue;
        floatX* row = dst + (size_t)(g + 8 * r) * row_stride + 2 * t;
#pragma unroll
        for (int n = 0; n < HS / 8; n++)
            *(uint32_t*)(row + 8 * n) = pack_bf16x2(acc[n][2 * r] * mul[r], acc[n][2 * r + 1] * mul[r]);
    }
}

// the largest of a row's four values in an accumulator pair (16,16): row g
// (r = 0) or g + 8 (r = 1) of this lane, columns 2t, 2t+1, 8+2t, 9+2t
__device__ __forceinline__ float attnm_pair_max(const float (&s)[2][4], int r) {
    return fmaxf(fmaxf(s[0][2 * r], s[0][2 * r + 1]), fmaxf(s[1][2 * r], s[1][2 * r + 1]));
}

// the causal mask of the diagonal chunk: in a (16,16) pair of the warp's
// rows and the same 16 positions as keys, key > row -> `masked`
__device__ __forceinline__ void attnm_mask_diagonal(float (&s)[2][4], float masked) {
    const int lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < 8; i++)   // element i % 4 of tile i / 4: row g + 8 (i%4 / 2), key 8 (i / 4) + 2t + i%2
        if (8 * (i / 4) + 2 * t + i % 2 > g + 8 * (i % 4 / 2)) s[i / 4][i % 4] = masked;
}

// the online softmax's step at a new tile of scores, for the warp's rows:
// mx[j][r] the largest raw score of chunk j in this lane's row r (g, g + 8;
// -inf for chunks the rows do not see). Takes the rows' max over their 4
// lanes, moves m (the running max, base 2) to it and rescales out and l by
// 2^(m_old - m_new), skipped when no row's max moved (a multiply by 1).
template <int HS>
__device__ __forceinline__ void attnm_softmax_rescale(float (&o)[HS / 8][4], float (&m)[2], float (&l)[2],
                                                      const float (&mx)[4][2], float to_base2) {
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {   // the row's max over its 4 lanes; finite (key 0, or the row's own, is live)
        float x = fmaxf(fmaxf(mx[0][r], mx[1][r]), fmaxf(mx[2][r], mx[3][r]));
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
        x = fmaxf(m[r], x * to_base2);   // (scaling by a positive factor keeps the max)
        alpha[r] = ex2_approx(m[r] - x);   // 0 on the first tile, 1 where the max stayed
        m[r] = x;
    }
    // after the first tiles a row's max seldom moves: skip the rescaling (by 1, exact) unless one did
    if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
        l[0] *= alpha[0];
        l[1] *= alpha[1];
#pragma unroll
        for (int n = 0; n < HS / 8; n++) {
            o[n][0] *= alpha[0]; o[n][1] *= alpha[0];
            o[n][2] *= alpha[1]; o[n][3] *= alpha[1];
        }
    }
}

// a chunk's scores (16,16) -> P = 2^(s to_base2 - m) in place (0 where
// masked), this lane's part of the row sums added to l in pairs (not one
// chain of 16 adds)
__device__ __forceinline__ void attnm_softmax_chunk(float (&s)[2][4], const float (&m)[2], float (&l)[2],
                                                    float to_base2) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float& v = s[i / 4][i % 4];
        v = ex2_approx(fmaf(v, to_base2, -m[i % 4 / 2]));
    }
    l[0] += (s[0][0] + s[0][1]) + (s[1][0] + s[1][1]);
    l[1] += (s[0][2] + s[0][3]) + (s[1][2] + s[1][3]);
}

// one key tile (64 keys, K and V staged at kb, vb) of the forward for the
// warp's 16 rows: S = Q K^T, the online softmax, out += P V. Left of the
// diagonal every key is at or before every row: no mask is evaluated. In the
// diagonal tile (DIAG) warp w's rows see key chunks 0..w, chunk w masked.
template <int HS, bool DIAG>
__device__ __forceinline__ void attnm_forward_tile(float (&o)[HS / 8][4], float (&m)[2], float (&l)[2],
                                                   const uint32_t (&qa)[HS / 16][4], const floatX* kb,
                                                   const floatX* vb, float to_base2) {
    const int nj = DIAG ? (int)threadIdx.x / 32 + 1 : 4;   // key chunks of 16 the warp's rows see
    float s[4][2][4];                                      // S (16,64), unscaled: chunk j, its two 8-column tiles
    float mx[4][2];                                        // per chunk and row (g, g + 8): the largest score
#pragma unroll
    for (int j = 0; j < 4; j++) {
        mx[j][0] = mx[j][1] = -INFINITY;
        if (j >= nj) continue;
        attnm_times_t<HS>(s[j], qa, kb, 16 * j);
        if (DIAG && j == nj - 1) attnm_mask_diagonal(s[j], -INFINITY);
        mx[j][0] = attnm_pair_max(s[j], 0);
        mx[j][1] = attnm_pair_max(s[j], 1);
    }
    attnm_softmax_rescale<HS>(o, m, l, mx, to_base2);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        if (j >= nj) continue;
        attnm_softmax_chunk(s[j], m, l, to_base2);
        uint32_t pa[4];
        attnm_as_a(pa, s[j][0], s[j][1]);
        attnm_accumulate<HS>(o, pa, vb, 16 * j);   // out += P V
    }
}

// the forward's end for the warp's rows (its first row0 < T): each row's sum
// over its 4 lanes (all at the scale m), lse (natural log) into lse_bh[row],
// out = o / l into out_rows (the warp's first row, rows C apart)
template <int HS>
__device__ __forceinline__ void attnm_forward_finish(floatX* out_rows, float* lse_bh, int row0, int T, int C,
                                                     const float (&o)[HS / 8][4], const float (&m)[2], float (&l)[2]) {
    const int lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        inv[r] = 1.0f / l[r];
        const int row = row0 + g + 8 * r;
        if (t == 0 && row < T) lse_bh[row] = (m[r] + log2f(l[r])) * ATTN_LN2;
    }
    attnm_write_rows<HS>(out_rows, C, row0, T, o, inv);
}

// out (B,T,C), lse (B,NH,T) from qkv (B,T,3C); grid (ceil(T/64), NH, B),
// 128 threads. Four blocks per SM asked of ptxas (at most 128 registers):
// left alone it took 131 for HS = 64 on sm_90, three blocks.
template <int HS>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, 4)
    attention_forward_mma_kernel(floatX* out, float* lse, const floatX* qkv, int T, int NH, float scale) {
    constexpr int LDH = HS + 8;
    __shared__ __align__(16) floatX tile_k[2][ATTN_TILE * LDH];   // K tiles (Q first, in the last buffer)
    __shared__ __align__(16) floatX tile_v[2][ATTN_TILE * LDH];   // V tiles
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int row0 = qt * ATTN_TILE + 16 * ((int)threadIdx.x / 32);   // the warp's first query

    attnm_stage<HS>(tile_k[1], base, C3, qt * ATTN_TILE, T);   // Q
    cp_async_commit();
    attnm_load_kv<HS>(tile_k[0], tile_v[0], base, C3, C, 0, T);   // key tile 0 (always exists)
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();   // Q is in
    uint32_t qa[HS / 16][4];
    attnm_load_rows<HS>(qa, tile_k[1]);
    float o[HS / 8][4];   // out (16,HS), unnormalised
#pragma unroll
    for (int n = 0; n < HS / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};   // per row: running max (base 2), this lane's sum
    const float to_base2 = scale * LOG2E_F;
    for (int kt = 0; kt <= qt; kt++) {
        attnm_pipeline_wait();
        if (kt < qt) attnm_load_kv<HS>(tile_k[0], tile_v[0], base, C3, C, kt + 1, T);
        cp_async_commit();
        const floatX *kb = tile_k[kt % 2], *vb = tile_v[kt % 2];   // tile kt, in
        if (kt < qt) attnm_forward_tile<HS, false>(o, m, l, qa, kb, vb, to_base2);
        else attnm_forward_tile<HS, true>(o, m, l, qa, kb, vb, to_base2);
    }
    attnm_forward_finish<HS>(out + ((size_t)b * T + row0) * C + h * HS, lse + ((size_t)b * NH + h) * T, row0, T, C, o,
                             m, l);
}

// ----------------------------------------------------------------------------
// dS, stored. dkdv computes dS^T for every (key, query) pair anyway; dq
// needs only dS (dQ = dS K), and recomputing it costs dq two matmuls (S, dP)
// and the softmax's elementwise work, two thirds of its tensor work.
// FlashAttention-2 instead adds dQ's partial sums from dkdv with float
// atomics, in no fixed order; here dkdv stores dS^T (bf16, as rounded for dK)
// and dq reads it back, each dQ value still summed by one lane in a fixed
// order: B NH T^2 / 2 bf16 written and read once (0.8 GiB at B=64, T=1024,
// NH=12, in the trainer's logits buffer; 107 MB at the bench's B=8).
// Layout, per (b,h): the pairs of query tile qt and key tile kt <= qt in
// the order qt (qt + 1) / 2 + kt (a dq block's pairs one after another),
// each 64 x 64 values as 16 chunks, key chunk jk and query chunk jq (dkdv's
// warp jk, its chunk jq; dq's warp jq, its chunk jk) at 4 jk + jq, each
// the 32 lanes' A fragments of the chunk's dS^T (16 keys, 16 queries), 16
// bytes a lane: a warp stores and loads 512 contiguous bytes. dkdv indexes
// it with 32-bit offsets (a 64-bit pointer held through its loop made
// ptxas spill in the held variant), so it holds at most 2^32 values: B NH
// <= 7710 at T = 1024.
#define ATTNM_PAIR (ATTN_TILE * ATTN_TILE)   // values in one pair's tile of dS

__host__ __device__ inline size_t attention_dscores_pairs(int T) {
    const size_t nt = (size_t)(T + ATTN_TILE - 1) / ATTN_TILE;
    return nt * (nt + 1) / 2;
}

// the bytes of dS's scratch for attention_backward_mma at (B,T,NH), or 0
// where it would exceed 2^32 values (then dq recomputes dS: pass NULL)
static inline size_t attention_backward_mma_scratch_bytes(int B, int T, int NH) {
    const size_t values = (size_t)B * NH * attention_dscores_pairs(T) * ATTNM_PAIR;
    return values > 0xFFFFFFFFu ? 0 : values * sizeof(floatX);
}

// a launcher's check of dS's scratch (NULL: none)
static inline void attention_check_dscores(const char* who, const floatX* scratch_dS, int B, int T, int NH) {
    if (scratch_dS && (uintptr_t)scratch_dS % 16 != 0) {
        fprintf(stderr, "error: %s: dS's scratch is not 16-byte aligned\n", who);
        exit(1);
    }
    if (scratch_dS && !attention_backward_mma_scratch_bytes(B, T, NH)) {
        fprintf(stderr, "error: %s: B = %d, NH = %d, T = %d: dS would exceed 2^32 values (pass no scratch)\n", who, B,
                NH, T);
        exit(1);
    }
}

// the offset in dS of pair (qt, kt) of (b,h) number bh = b NH + h
__device__ __forceinline__ uint32_t attnm_ds_pair(int bh, int T, int qt, int kt) {
    return (uint32_t)(((size_t)bh * attention_dscores_pairs(T) + (size_t)qt * (qt + 1) / 2 + kt) * ATTNM_PAIR);
}

// the offset in a pair's dS of this lane's 8 values of chunk (jk, jq)
__device__ __forceinline__ int attnm_ds_chunk(int jk, int jq) {
    return (4 * jk + jq) * 256 + 8 * ((int)threadIdx.x % 32);
}

// dkdv's P^T = 2^(S^T to_base2 - lse) in place for query chunk j (16,16) of
// a tile (lse_t: the tile's lse, natural log), the warp's 16 keys. EDGE:
// masked to 0 where query q0 + qc (qc the column in the tile) is before key
// g or g + 8, or q0 + qc >= end (rows past T), both relative to the warp's
// first key.
template <bool EDGE>
__device__ __forceinline__ void attnm_dkdv_probs(float (&s)[2][4], const float* lse_t, int j, float to_base2, int q0,
                                                 int end) {
    const int lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {   // element i % 4 of tile i / 4: key g + 8 (i%4 / 2), query column qc
        const int qc = 16 * j + 8 * (i / 4) + 2 * t + i % 2;
        float& v = s[i / 4][i % 4];
        v = ex2_approx(fmaf(v, to_base2, -lse_t[qc] * LOG2E_F));   // lse in base 2
        if (EDGE && (q0 + qc < g + 8 * (i % 4 / 2) || q0 + qc >= end)) v = 0.0f;   // causal mask, rows past T
    }
}

// dS^T = P^T (dP^T - D) in place of P^T for query chunk j (D_t: the tile's
// D); masked entries (P = 0) stay 0 as long as dP^T and D are finite, as they
// are for finite inputs (with a non-finite dout the step's gradients are
// non-finite anyway: the trainer stops)
__device__ __forceinline__ void attnm_dkdv_dscores(float (&s)[2][4], const float (&dp)[2][4], const float* D_t, int j) {
    const int t = (int)threadIdx.x % 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float& v = s[i / 4][i % 4];
        v *= dp[i / 4][i % 4] - D_t[16 * j + 8 * (i / 4) + 2 * t + i % 2];
    }
}

// one query tile (Q, dout staged at qb, gb; lse, D of its rows at lse_t,
// D_t) of dK, dV for the warp's 16 keys (K, V as A fragments ka, va): per
// query chunk j of 16 in i0 <= j < i1, S^T = K Q^T, P^T = 2^(S^T - lse), dV +=
// P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D), dK += dS^T Q. Only EDGE tiles
// (the diagonal one, a last partial one) are masked: query q0 + c (c the
// column in the tile) against key g or g + 8 of the warp, and q0 + c < end
// (both relative to the warp's first key). HELD: K's and V's fragments are
// ka, va, held in registers for the whole kernel; else they are read from
// the staged tiles ks, vs as each k step needs them (32 registers fewer, 8
// ldmatrix more per chunk). dS^T is stored at dscores + ds_off (this
// lane's place for query chunk 0; chunk j 256 values on), unless dscores is
// NULL.
template <int HS, bool EDGE, bool HELD>
__device__ __forceinline__ void attnm_dkdv_tile(float (&dk)[HS / 8][4], float (&dv)[HS / 8][4],
                                                const uint32_t (&ka)[HS / 16][4], const uint32_t (&va)[HS / 16][4],
                                                const floatX* ks, const floatX* vs, const floatX* qb,
                                                const floatX* gb, const float* lse_t, const float* D_t,
                                                floatX* dscores, uint32_t ds_off, float to_base2, int i0, int i1,
                                                int q0, int end) {
#pragma unroll(HELD ? 4 : 1)   // (unrolled, ptxas hoists the chunks' loads past each other: over 128 registers)
    for (int j = 0; j < 4; j++) {
        if (j < i0 || j >= i1) continue;
        float s[2][4], dp[2][4];   // S^T, then P^T, then dS^T (16 keys, 16 queries); dP^T
        if (HELD) attnm_times_t<HS>(s, ka, qb, 16 * j);   // S^T = K Q^T
        else attnm_times_t_staged<HS>(s, ks, qb, 16 * j);
        attnm_dkdv_probs<EDGE>(s, lse_t, j, to_base2, q0, end);
        uint32_t a[4];
        attnm_as_a(a, s[0], s[1]);
        attnm_accumulate<HS>(dv, a, gb, 16 * j);   // dV += P^T dO
        if (HELD) attnm_times_t<HS>(dp, va, gb, 16 * j);   // dP^T = V dO^T
        else attnm_times_t_staged<HS>(dp, vs, gb, 16 * j);
        attnm_dkdv_dscores(s, dp, D_t, j);
        attnm_as_a(a, s[0], s[1]);
        if (dscores) *(uint4*)(dscores + ds_off + 256 * j) = make_uint4(a[0], a[1], a[2], a[3]);
        attnm_accumulate<HS>(dk, a, qb, 16 * j);   // dK += dS^T Q
    }
}

// dkdv's shared memory, in bytes: Q and dout tiles (two buffers each), lse
// and D of their rows, then (HELD = false only) the block's K and V tiles
template <int HS>
constexpr size_t attnm_dkdv_smem(bool held) {
    return (size_t)(held ? 4 : 6) * ATTN_TILE * (HS + 8) * sizeof(floatX) + 4 * ATTN_TILE * sizeof(float);
}

// dk, dv (key rows) of dqkv (B,T,3C), and dS into dscores (see "dS,
// stored"; none if NULL); grid (ceil(T/64), NH, B), 128
// threads, attnm_dkdv_smem<HS>(HELD) bytes of dynamic shared memory; block
// x owns key tile x (tile 0, with the most query tiles, first). HELD as in
// attnm_dkdv_tile: held (the trainer's), three blocks per SM asked of
// ptxas (without it, it aimed at 96 registers for HS = 32 on sm_80 and
// spilled), K and V staged in the second Q and dout buffers before those
// are needed; read as needed, at most 128 registers for four blocks per
// SM where shared memory allows (55 KB each: four in Hopper's 228 KB, two in
// an A100's 164 KB), for the next GPU run to time against it
// (dev/cuda/attention.cu bench).
template <int HS, bool HELD>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, HELD ? 3 : 4)
    attention_backward_dkdv_mma_kernel(floatX* dqkv, floatX* dscores, const floatX* dout, const floatX* qkv,
                                       const float* lse, const float* D, int T, int NH, float scale) {
    constexpr int LDH = HS + 8, TILE = ATTN_TILE * LDH;
    extern __shared__ __align__(16) floatX attnm_dkdv_shared[];
    floatX(*tile_q)[TILE] = (floatX(*)[TILE])attnm_dkdv_shared;   // Q tiles (HELD: K first, in buffer 1)
    floatX(*tile_g)[TILE] = tile_q + 2;                             // dout tiles (HELD: V first, in buffer 1)
    float(*lse_s)[ATTN_TILE] = (float(*)[ATTN_TILE])(tile_q + 4);    // lse and D of the query tile's rows
    float(*D_s)[ATTN_TILE] = lse_s + 2;
    floatX* tile_k = HELD ? tile_q[1] : (floatX*)(D_s + 2);          // K, V (HELD: until their fragments are read)
    floatX* tile_v = HELD ? tile_g[1] : tile_k + TILE;
    const int kt = (int)blockIdx.x, h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int warp = (int)threadIdx.x / 32;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const floatX* gbase = dout + (size_t)b * T * C + h * HS;
    const float* lse_bh = lse + ((size_t)b * NH + h) * T;
    const float* D_bh = D + ((size_t)b * NH + h) * T;
    const int key0 = kt * ATTN_TILE + 16 * warp;   // the warp's first key; this lane's: key0 + g, key0 + g + 8

    const int ntiles = (T + ATTN_TILE - 1) / ATTN_TILE;
    attnm_stage<HS>(tile_k, base + C, C3, kt * ATTN_TILE, T);       // K
    attnm_stage<HS>(tile_v, base + 2 * C, C3, kt * ATTN_TILE, T);   // V
    cp_async_commit();
    attnm_load_queries<HS>(tile_q[0], tile_g[0], lse_s[0], D_s[0], base, gbase, C3, C, lse_bh, D_bh, kt, kt,
                           T);   // query tile kt (always exists)
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();   // K and V are in
    uint32_t ka[HS / 16][4], va[HS / 16][4];   // (HELD only)
    if (HELD) {
        attnm_load_rows<HS>(ka, tile_k);
        attnm_load_rows<HS>(va, tile_v);
    }
    float dk[HS / 8][4], dv[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
        for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.0f;
    const float to_base2 = scale * LOG2E_F;
    for (int qt = kt; qt < ntiles; qt++) {   // query tiles above the diagonal see none of these keys
        attnm_pipeline_wait();
        if (qt + 1 < ntiles) {
            attnm_load_queries<HS>(tile_q[0], tile_g[0], lse_s[0], D_s[0], base, gbase, C3, C, lse_bh, D_bh, qt + 1,
                                   kt, T);
        }
        cp_async_commit();
        const int k = (qt - kt) % 2;   // query tile qt, in
        const uint32_t ds_off = attnm_ds_pair(b * NH + h, T, qt, kt) + attnm_ds_chunk(warp, 0);
        if (qt == kt || (qt + 1) * ATTN_TILE > T) {   // the diagonal tile, a last partial one: masked
            const int rows_left = T - qt * ATTN_TILE;
            attnm_dkdv_tile<HS, true, HELD>(dk, dv, ka, va, tile_k, tile_v, tile_q[k], tile_g[k], lse_s[k], D_s[k],
                                            dscores, ds_off, to_base2, qt == kt ? warp : 0,
                                            rows_left >= ATTN_TILE ? 4 : (rows_left + 15) / 16,
                                            qt * ATTN_TILE - key0, T - key0);
        } else {
            attnm_dkdv_tile<HS, false, HELD>(dk, dv, ka, va, tile_k, tile_v, tile_q[k], tile_g[k], lse_s[k], D_s[k],
                                             dscores, ds_off, to_base2, 0, 4, 0, 0);
        }
    }
    floatX* dst = dqkv + ((size_t)b * T + key0) * C3 + h * HS;
    const float mul_k[2] = {scale, scale}, mul_v[2] = {1.0f, 1.0f};
    attnm_write_rows<HS>(dst + C, C3, key0, T, dk, mul_k);
    attnm_write_rows<HS>(dst + 2 * C, C3, key0, T, dv, mul_v);
}

// dq's P = 2^(S to_base2 - lse) in place for a chunk (16,16) of the warp's
// rows, lse2 the lse of rows g, g + 8 in base 2
__device__ __forceinline__ void attnm_dq_probs(float (&s)[2][4], const float (&lse2)[2], float to_base2) {
#pragma unroll
    for (int i = 0; i < 8; i++) {   // element i % 4 of tile i / 4: row g + 8 (i%4 / 2)
        float& v = s[i / 4][i % 4];
        v = ex2_approx(fmaf(v, to_base2, -lse2[i % 4 / 2]));
    }
}

// dS = P (dP - D) in place of P; masked entries (P = 0) stay 0
__device__ __forceinline__ void attnm_dq_dscores(float (&s)[2][4], const float (&dp)[2][4], const float (&Dr)[2]) {
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float& v = s[i / 4][i % 4];
        v = v != 0.0f ? v * (dp[i / 4][i % 4] - Dr[i % 4 / 2]) : 0.0f;
    }
}

// one key tile (K, V staged at kb, vb) of dq for the warp's 16 rows (Q and
// dout as A fragments qa, ga; lse in base 2 and D of rows g, g + 8): per key
// chunk of 16 S = Q K^T, P, dP = dO V^T, dS = P (dP - D), dQ += dS K. DIAG as
// in attnm_forward_tile.
template <int HS, bool DIAG>
__device__ __forceinline__ void attnm_dq_tile(float (&dq)[HS / 8][4], const uint32_t (&qa)[HS / 16][4],
                                              const uint32_t (&ga)[HS / 16][4], const float (&lse2)[2],
                                              const float (&Dr)[2], const floatX* kb, const floatX* vb,
                                              float to_base2) {
    const int nj = DIAG ? (int)threadIdx.x / 32 + 1 : 4;   // key chunks of 16 the warp's rows see
#pragma unroll
    for (int j = 0; j < 4; j++) {
        if (j >= nj) continue;
        float s[2][4], dp[2][4];   // S, then P, then dS (16 queries, 16 keys); dP
        attnm_times_t<HS>(s, qa, kb, 16 * j);   // S = Q K^T
        attnm_dq_probs(s, lse2, to_base2);
        if (DIAG && j == nj - 1) attnm_mask_diagonal(s, 0.0f);
        attnm_times_t<HS>(dp, ga, vb, 16 * j);   // dP = dO V^T
        attnm_dq_dscores(s, dp, Dr);
        uint32_t a[4];
        attnm_as_a(a, s[0], s[1]);
        attnm_accumulate<HS>(dq, a, kb, 16 * j);   // dQ += dS K
    }
}

// lse (in base 2) and D (both (B,NH,T)) of this lane's rows row_g, row_g + 8
// (row0 + g and row0 + g + 8) of (b,h) number bh = b NH + h (rows >= T: 0,
// never stored)
__device__ __forceinline__ void attnm_dq_row_stats(float (&lse2)[2], float (&Dr)[2], const float* lse, const float* D,
                                                   size_t bh, int row_g, int T) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = row_g + 8 * r;
        const size_t i = bh * T + row;
        lse2[r] = row < T ? lse[i] * LOG2E_F : 0.0f;
        Dr[r] = row < T ? D[i] : 0.0f;
    }
}

// dq (query rows) of dqkv (B,T,3C); grid (ceil(T/64), NH, B), 128 threads;
// query tiles from the last (the most key tiles) to the first; four blocks
// per SM, as the forward
template <int HS>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, 4)
    attention_backward_dq_mma_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                     const float* D, int T, int NH, float scale) {
    constexpr int LDH = HS + 8;
    __shared__ __align__(16) floatX tile_k[2][ATTN_TILE * LDH];   // K tiles (Q first, in the last buffer)
    __shared__ __align__(16) floatX tile_v[2][ATTN_TILE * LDH];   // V tiles (dout first)
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int warp = (int)threadIdx.x / 32, g = (int)threadIdx.x % 32 / 4;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int row0 = qt * ATTN_TILE + 16 * warp;   // the warp's first query; this lane's: row0 + g, row0 + g + 8

    attnm_stage<HS>(tile_k[1], base, C3, qt * ATTN_TILE, T);   // Q
    attnm_stage<HS>(tile_v[1], dout + (size_t)b * T * C + h * HS, C, qt * ATTN_TILE, T);   // dout
    cp_async_commit();
    attnm_load_kv<HS>(tile_k[0], tile_v[0], base, C3, C, 0, T);   // key tile 0 (always exists)
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();   // Q and dout are in
    uint32_t qa[HS / 16][4], ga[HS / 16][4];
    attnm_load_rows<HS>(qa, tile_k[1]);
    attnm_load_rows<HS>(ga, tile_v[1]);
    float lse2[2], Dr[2];
    attnm_dq_row_stats(lse2, Dr, lse, D, (size_t)b * NH + h, row0 + g, T);
    float dq[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
    const float to_base2 = scale * LOG2E_F;
    for (int kt = 0; kt <= qt; kt++) {
        attnm_pipeline_wait();
        if (kt < qt) attnm_load_kv<HS>(tile_k[0], tile_v[0], base, C3, C, kt + 1, T);
        cp_async_commit();
        const floatX *kb = tile_k[kt % 2], *vb = tile_v[kt % 2];   // tile kt, in
        if (kt < qt) attnm_dq_tile<HS, false>(dq, qa, ga, lse2, Dr, kb, vb, to_base2);
        else attnm_dq_tile<HS, true>(dq, qa, ga, lse2, Dr, kb, vb, to_base2);
    }
    const float mul[2] = {scale, scale};
    attnm_write_rows<HS>(dqkv + ((size_t)b * T + row0) * C3 + h * HS, C3, row0, T, dq, mul);
}

// one key tile (K staged at kb, the pair's dS at dsb, both in shared
// memory) of dq for the warp's 16 rows from the stored dS: per key chunk j
// of 16 dQ += dS K, dS's A fragment the transpose of dkdv's dS^T fragment
// (chunk (j, warp)): each of its four 8x8 quarters transposed in registers,
// the two off the diagonal swapped. DIAG as in attnm_forward_tile.
template <int HS, bool DIAG>
__device__ __forceinline__ void attnm_dq_stored_tile(float (&dq)[HS / 8][4], const floatX* dsb, const floatX* kb) {
    const int warp = (int)threadIdx.x / 32;
    const int nj = DIAG ? warp + 1 : 4;   // key chunks of 16 the warp's rows see
#pragma unroll
    for (int j = 0; j < 4; j++) {
        if (j >= nj) continue;
        const uint4 f = *(const uint4*)(dsb + attnm_ds_chunk(j, warp));   // dS^T (16 keys, the warp's 16 rows)
        const uint32_t a[4] = {movmatrix_trans(f.x), movmatrix_trans(f.z), movmatrix_trans(f.y),
                               movmatrix_trans(f.w)};
        attnm_accumulate<HS>(dq, a, kb, 16 * j);   // dQ += dS K
    }
}

// key tile kt for dq from the stored dS: K's rows (kbase: K of the (b,h)'s
// row 0, rows C3 apart) and the pair (qt, kt)'s dS (ds_q: the pair (qt, 0))
// by cp.async into buffer kt % 2 of tile_k ((2, 64, HS + 8)) and tile_ds
// ((2, 64 * 64)); not committed. The pair's 8 KB are contiguous: thread i
// copies 16-byte pieces i + 128 k, coalesced (chunks dkdv never wrote, above
// the diagonal or past T, come along unread).
template <int HS>
__device__ __forceinline__ void attnm_load_k_dscores(floatX* tile_k, floatX* tile_ds, const floatX* kbase, size_t C3,
                                                     const floatX* ds_q, int kt, int T) {
    constexpr int PIECES = ATTNM_PAIR / 8 / (32 * ATTNM_WARPS);
    static_assert(ATTNM_PAIR % (8 * 32 * ATTNM_WARPS) == 0, "whole pieces per thread");
    attnm_stage<HS>(tile_k + (size_t)(kt % 2) * ATTN_TILE * (HS + 8), kbase, C3, kt * ATTN_TILE, T);
    floatX* dst = tile_ds + (kt % 2) * ATTNM_PAIR + 8 * (int)threadIdx.x;
    const floatX* src = ds_q + (size_t)kt * ATTNM_PAIR + 8 * (int)threadIdx.x;
#pragma unroll
    for (int k = 0; k < PIECES; k++) cp_async16(dst + k * 8 * 32 * ATTNM_WARPS, src + k * 8 * 32 * ATTNM_WARPS);
}

// dq (query rows) of dqkv (B,T,3C) from dS stored by dkdv (dscores, see
// "dS, stored") and K; grid (ceil(T/64), NH, B), 128 threads; query tiles
// from the last (the most key tiles) to the first; the same pipeline as
// the others, one tile ahead. Five blocks per SM asked of ptxas (96
// registers, 35 KB of shared memory each; at six it spilled): the kernel
// streams dS from memory, and more warps keep more of it in flight.
template <int HS>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, 5)
    attention_backward_dq_stored_mma_kernel(floatX* dqkv, const floatX* dscores, const floatX* qkv, int T, int NH,
                                            float scale) {
    constexpr int LDH = HS + 8;
    __shared__ __align__(16) floatX tile_k[2][ATTN_TILE * LDH];   // K tiles
    __shared__ __align__(16) floatX tile_ds[2][ATTNM_PAIR];       // dS of the pairs (qt, kt)
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* kbase = qkv + (size_t)b * T * C3 + C + h * HS;
    const floatX* ds_q = dscores + attnm_ds_pair(b * NH + h, T, qt, 0);   // pair (qt, 0); (qt, kt) kt pairs on
    const int row0 = qt * ATTN_TILE + 16 * ((int)threadIdx.x / 32);   // the warp's first query

    attnm_load_k_dscores<HS>(tile_k[0], tile_ds[0], kbase, C3, ds_q, 0, T);
    cp_async_commit();
    float dq[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
    for (int kt = 0; kt <= qt; kt++) {
        attnm_pipeline_wait();
        if (kt < qt) attnm_load_k_dscores<HS>(tile_k[0], tile_ds[0], kbase, C3, ds_q, kt + 1, T);
        cp_async_commit();
        if (row0 >= T) continue;   // (a warp wholly past T: its chunks of dS were never stored)
        if (kt < qt) attnm_dq_stored_tile<HS, false>(dq, tile_ds[kt % 2], tile_k[kt % 2]);
        else attnm_dq_stored_tile<HS, true>(dq, tile_ds[kt % 2], tile_k[kt % 2]);
    }
    const float mul[2] = {scale, scale};
    attnm_write_rows<HS>(dqkv + ((size_t)b * T + row0) * C3 + h * HS, C3, row0, T, dq, mul);
}

// ----------------------------------------------------------------------------
// launchers: the same contract as attention_forward / attention_backward
// (and dS's scratch)

static inline void attention_forward_mma(floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH,
                                         cudaStream_t stream) {
    attention_check_args("attention_forward_mma", 1, B, T, C, NH, out, qkv, qkv, qkv);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    const dim3 grid = attention_tile_grid(B, T, NH);
    if (HS == 64) attention_forward_mma_kernel<64><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(out, lse, qkv, T, NH, scale);
    else attention_forward_mma_kernel<32><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(out, lse, qkv, T, NH, scale);
    cudaCheck(cudaGetLastError());
}

template <int HS, bool HELD>
static inline void attention_backward_mma_launch(dim3 grid, floatX* dqkv, const float* D, floatX* dscores,
                                                 const floatX* dout, const floatX* qkv, const float* lse, int T, int NH,
                                                 float scale, cudaStream_t stream) {
    const size_t smem = attnm_dkdv_smem<HS>(HELD);
    attention_allow_dynamic_smem(attention_backward_dkdv_mma_kernel<HS, HELD>, smem);
    attention_backward_dkdv_mma_kernel<HS, HELD><<<grid, 32 * ATTNM_WARPS, smem, stream>>>(dqkv, dscores, dout, qkv,
                                                                                           lse, D, T, NH, scale);
    cudaCheck(cudaGetLastError());
    if (dscores) {
        attention_backward_dq_stored_mma_kernel<HS><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(dqkv, dscores, qkv, T, NH,
                                                                                            scale);
    } else {
        attention_backward_dq_mma_kernel<HS><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(dqkv, dout, qkv, lse, D, T, NH,
                                                                                     scale);
    }
    cudaCheck(cudaGetLastError());
}

// scratch_dS: attention_backward_mma_scratch_bytes(B, T, NH) bytes for dS
// (see "dS, stored"; the trainer's), or NULL: dq recomputes dS (no scratch,
// two more matmuls). HELD: dkdv's variant (attention_backward_dkdv_mma_kernel);
// the trainer's is the default.
template <bool HELD = true>
static inline void attention_backward_mma(floatX* dqkv, float* scratch_D, floatX* scratch_dS, const floatX* dout,
                                          const floatX* qkv, const floatX* out, const float* lse, int B, int T, int C,
                                          int NH, cudaStream_t stream) {
    attention_check_args("attention_backward_mma", 1, B, T, C, NH, dqkv, dout, qkv, out);
    attention_check_dscores("attention_backward_mma", scratch_dS, B, T, NH);
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    attention_rowdot(scratch_D, dout, out, B, T, NH, HS, stream);
    const dim3 grid = attention_tile_grid(B, T, NH);
    if (HS == 64) {
        attention_backward_mma_launch<64, HELD>(grid, dqkv, scratch_D, scratch_dS, dout, qkv, lse, T, NH, scale,
                                                stream);
    } else {
        attention_backward_mma_launch<32, HELD>(grid, dqkv, scratch_D, scratch_dS, dout, qkv, lse, T, NH, scale,
                                                stream);
    }
}

#endif // LLMC_ATTENTION_MMA_CUH
