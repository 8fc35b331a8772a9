// llmc/attention_wgmma.cuh: the causal self-attention of
// llmc/attention_mma.cuh, forward and backward, on Hopper's warpgroup matrix
// multiply (wgmma, sm_90a; llmc/ptx.cuh). A block's 4 warps are one
// warpgroup, owning 64 rows of one (b,h) as there, and each product of a
// 64 by 64 tile is HS/16 or 4 wgmma instructions for the whole block, where
// each mma.sync warp issues HS/2 mma.sync and HS/4 ldmatrix (32 and 16 at
// HS 64): the tensor cores read the staged tiles straight from shared memory. The accumulators'
// layout is mma.sync's (warp w rows 16w..16w+15), so the online softmax,
// the masks, P and dS and the epilogues are attention_mma.cuh's functions.
// - forward: S = Q K^T (Q, K from shared memory), the softmax, out += P V
//   (P from registers, as mma.sync's A fragments).
// - dkdv: per half of a query tile, S^T = K Q^T and dP^T = V dO^T, P^T and
//   dS^T, dV += P^T dO and dK += dS^T Q; dS^T stored as attention_mma.cuh's
//   dkdv stores it ("dS, stored"), for its dq kernel (mma.sync: one matmul).
// - dq without that scratch: per half of a key tile (32 keys: half the
//   registers; whole tiles as a variant the bench times), S = Q K^T and dP
//   = dO V^T, P and dS, dQ += dS K.
// The same division of work as the mma.sync kernels, without atomics: the
// same determinism.
//
// What differs from the mma.sync kernels:
// - The tiles are staged in the layout a wgmma descriptor describes
//   (attnw_stage): 16-byte pieces (8 values of one row) grouped into core
//   matrices of 8 rows, 128 contiguous bytes each; no padding (the tensor
//   cores read whole core matrices). One staged tile serves both ways: Q, K,
//   V, dout as K-major operands (k along the head dimension: S, dP), and
//   as MN-major ones (k along the rows: out += P V, dQ += dS K, dV, dK).
// - Diagonal tiles are computed whole, the entries past a row's position
//   masked to 0 (the mma.sync kernels skip a warp's chunks there).
// - Between cp.async landing a tile and a wgmma reading it, each thread
//   fences the async proxy (fence_proxy_async) before the block's barrier.
// - Products are issued as committed groups (attnw_times_t,
//   attnw_accumulate). dq and dkdv wait one group behind, so their
//   elementwise work overlaps the products still running; the forward waits
//   for each (its softmax does not yet overlap the next tile's products;
//   the 4 blocks resident on an SM overlap each other).
// Under the emulation these kernels give exactly the mma.sync kernels' bits
// (dev/cuda/attention.cu checks that); on a GPU the two instructions may
// add their products in different orders, so the bits may differ there,
// within the same bf16 tolerances.
//
// Launch only where attention_wgmma_supported() (compute capability 9.0,
// and code built for sm_90a: on other targets the kernels trap); the
// launchers check. Same arguments, outputs and precision as
// attention_forward_mma and attention_backward_mma.
#ifndef LLMC_ATTENTION_WGMMA_CUH
#define LLMC_ATTENTION_WGMMA_CUH

#include "attention_mma.cuh"

// rows row0 .. row0 + 63 of a (T,HS) bf16 matrix whose rows are `stride`
// apart at src -> dst (64 * HS values) in core matrices, as
// attn_stage_pieces: 16-byte piece p (at byte 16p) holds row 8 (p / HS) +
// p % 8, values 8c..8c+7 with c = p / 8 % (HS / 8). So core matrix (row
// group G, piece column c) starts at byte G 16 HS + 128 c. Thread i takes
// pieces i, i + 128, ... (rows 8 (i / HS) + i % 8 + k 1024 / HS, the same
// c): a warp reads 8 rows x 64 bytes of global memory and writes 512
// contiguous bytes of shared memory.
template <int HS>
__device__ __forceinline__ void attnw_stage(floatX* dst, const floatX* src, size_t stride, int row0, int T) {
    constexpr int THREADS = 32 * ATTNM_WARPS, PIECES = ATTN_TILE * HS / 8;
    static_assert(PIECES % THREADS == 0 && THREADS % HS == 0, "whole passes, the same column in each");
    const int i = (int)threadIdx.x, r = 8 * (i / HS) + i % 8, c = i / 8 % (HS / 8);
    attn_stage_pieces<PIECES / THREADS, 8 * THREADS / HS, 8 * THREADS>(dst + 8 * i, src, stride, row0, r, c, T);
}

// descriptors of a staged tile: k step kd (k = 16kd..16kd+15) of a K-major
// operand (rows are m or n, k along the head dimension: lbo one piece
// column, 128 bytes; sbo one row group, 16 HS bytes), and of the MN-major
// one (V: rows are k, n along the head dimension: lbo one row group, sbo
// one piece column)
template <int HS>
__device__ __forceinline__ uint64_t attnw_desc_k_major(const floatX* tile, int kd) {
    return wgmma_desc(tile + 2 * 64 * kd, 128, 16 * HS);
}
template <int HS>
__device__ __forceinline__ uint64_t attnw_desc_mn_major(const floatX* tile, int kd) {
    return wgmma_desc(tile + 2 * 8 * HS * kd, 16 * HS, 128);
}

// key tile kt's K and V rows (qkv's at base + C and base + 2C, rows C3
// apart) by cp.async into tk, tv; not committed
template <int HS>
__device__ __forceinline__ void attnw_load_kv(floatX* tk, floatX* tv, const floatX* base, size_t C3, int C, int kt,
                                              int T) {
    attnw_stage<HS>(tk, base + C, C3, kt * ATTN_TILE, T);
    attnw_stage<HS>(tv, base + 2 * C, C3, kt * ATTN_TILE, T);
}

// query tile qt's rows for dkdv (Q, dout, lse, D) by cp.async into tq, tg
// (staged), lse_t, D_t (64 floats each); not committed
template <int HS>
__device__ __forceinline__ void attnw_load_queries(floatX* tq, floatX* tg, float* lse_t, float* D_t,
                                                   const floatX* base, const floatX* gbase, size_t C3, int C,
                                                   const float* lse_bh, const float* D_bh, int qt, int T) {
    attnw_stage<HS>(tq, base, C3, qt * ATTN_TILE, T);
    attnw_stage<HS>(tg, gbase, C, qt * ATTN_TILE, T);
    attnm_stage_rows(lse_t, lse_bh, qt * ATTN_TILE, T);
    attnm_stage_rows(D_t, D_bh, qt * ATTN_TILE, T);
}

// attnm_pipeline_wait with the fence between the landed copies and the
// wgmmas that read them: every copy issued so far is in and visible to the
// async proxy, and every thread is done with the previous tile
__device__ __forceinline__ void attnw_pipeline_wait() {
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();
}

// one committed wgmma group: d (64,N) = X Y^T over the head dimension, X
// (64,HS) and Y (N,HS) staged tiles (K-major), N = 64 or 32 (Y's first N
// rows). Its results are in d after a wgmma_wait that covers the group
// (then wgmma_fence_operands(d)).
template <int HS, int N>
__device__ __forceinline__ void attnw_times_t(float (&d)[N / 2], const floatX* x, const floatX* y) {
    wgmma_fence();
#pragma unroll
    for (int kd = 0; kd < HS / 16; kd++)
        wgmma_ss<N>(d, attnw_desc_k_major<HS>(x, kd), attnw_desc_k_major<HS>(y, kd), kd > 0);
    wgmma_commit();
}

// one committed wgmma group: acc (64,HS) += W Y, W (64,16 NJ) as NJ register
// A operands w[j] (rows as the accumulators'), Y's rows 0..16 NJ - 1 of a
// staged tile (MN-major: its rows are k). acc and w are pinned here; after
// the wait that covers the group, pin them again before touching them.
template <int HS, int NJ>
__device__ __forceinline__ void attnw_accumulate(float (&acc)[HS / 2], uint32_t (&w)[NJ][4], const floatX* y) {
    wgmma_fence_operands(acc);
    wgmma_fence_operands(w);
    wgmma_fence();
#pragma unroll
    for (int j = 0; j < NJ; j++) wgmma_rs_mn<HS>(acc, w[j], attnw_desc_mn_major<HS>(y, j));
    wgmma_commit();
}

// one key tile (Q, K, V staged at qs, kb, vb) of the forward for the block's
// 64 rows, this thread's part of them as in attnm_forward_tile. DIAG: the
// diagonal tile, in which warp w's rows see key chunks 0..w, chunk w masked
template <int HS, bool DIAG>
__device__ __forceinline__ void attnw_forward_tile(float (&o)[HS / 8][4], float (&m)[2], float (&l)[2],
                                                   const floatX* qs, const floatX* kb, const floatX* vb,
                                                   float to_base2) {
    float s[4][2][4];   // S (64,64), unscaled: this thread's 32 values, chunk j of 16 keys, its two 8-column tiles
    float(&sf)[32] = reinterpret_cast<float(&)[32]>(s);
    float(&of)[HS / 2] = reinterpret_cast<float(&)[HS / 2]>(o);
    attnw_times_t<HS, 64>(sf, qs, kb);   // S = Q K^T
    wgmma_wait<0>();
    wgmma_fence_operands(sf);
    const int w = (int)threadIdx.x / 32;
    float mx[4][2];   // per chunk and row (g, g + 8): the largest score
#pragma unroll
    for (int j = 0; j < 4; j++) {
        if (DIAG && j > w) {
#pragma unroll
            for (int i = 0; i < 8; i++) s[j][i / 4][i % 4] = -INFINITY;
        }
        if (DIAG && j == w) attnm_mask_diagonal(s[j], -INFINITY);
        mx[j][0] = attnm_pair_max(s[j], 0);
        mx[j][1] = attnm_pair_max(s[j], 1);
    }
    attnm_softmax_rescale<HS>(o, m, l, mx, to_base2);
    uint32_t pa[4][4];   // P as the A operand of each k step (16 keys)
#pragma unroll
    for (int j = 0; j < 4; j++) {
        attnm_softmax_chunk(s[j], m, l, to_base2);
        attnm_as_a(pa[j], s[j][0], s[j][1]);
    }
    attnw_accumulate<HS, 4>(of, pa, vb);   // out += P V (o rescaled above)
    wgmma_wait<0>();
    wgmma_fence_operands(of);
    wgmma_fence_operands(pa);
}

// out (B,T,C), lse (B,NH,T) from qkv (B,T,3C); grid (ceil(T/64), NH, B),
// 128 threads (one warpgroup); 40 KB of shared memory at HS = 64
template <int HS>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, 4)
    attention_forward_wgmma_kernel(floatX* out, float* lse, const floatX* qkv, int T, int NH, float scale) {
    static_assert(ATTNM_WARPS == 4, "a block is one warpgroup");
    __shared__ __align__(128) floatX tile_q[ATTN_TILE * HS];
    __shared__ __align__(128) floatX tile_k[2][ATTN_TILE * HS];
    __shared__ __align__(128) floatX tile_v[2][ATTN_TILE * HS];
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int row0 = qt * ATTN_TILE + 16 * ((int)threadIdx.x / 32);   // the warp's first query

    attnw_stage<HS>(tile_q, base, C3, qt * ATTN_TILE, T);
    attnw_load_kv<HS>(tile_k[0], tile_v[0], base, C3, C, 0, T);   // key tile 0 (always exists)
    cp_async_commit();
    float o[HS / 8][4];   // out (16,HS) of the warp, unnormalised
#pragma unroll
    for (int n = 0; n < HS / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};   // per row: running max (base 2), this lane's sum
    const float to_base2 = scale * LOG2E_F;
    for (int kt = 0; kt <= qt; kt++) {
        attnw_pipeline_wait();
        if (kt < qt) attnw_load_kv<HS>(tile_k[(kt + 1) % 2], tile_v[(kt + 1) % 2], base, C3, C, kt + 1, T);
        cp_async_commit();
        if (kt < qt) attnw_forward_tile<HS, false>(o, m, l, tile_q, tile_k[kt % 2], tile_v[kt % 2], to_base2);
        else attnw_forward_tile<HS, true>(o, m, l, tile_q, tile_k[kt % 2], tile_v[kt % 2], to_base2);
    }
    attnm_forward_finish<HS>(out + ((size_t)b * T + row0) * C + h * HS, lse + ((size_t)b * NH + h) * T, row0, T, C, o,
                             m, l);
}

// one key tile (K, V staged at kb, vb; Q, dout at qs, gs) of dq for the
// block's 64 rows, in parts of KEYS keys (64: the whole tile; 32: halves,
// S and dP of a part 16 values each per thread): S = Q K^T and dP = dO V^T
// (two groups: P is computed while dP's run), dS = P (dP - D) as in
// attnm_dq_tile, dQ += dS K (K read MN-major: its rows are k here). DIAG as
// in attnw_forward_tile.
template <int HS, int KEYS, bool DIAG>
__device__ __forceinline__ void attnw_dq_tile(float (&dq)[HS / 8][4], const float (&lse2)[2], const float (&Dr)[2],
                                              const floatX* qs, const floatX* gs, const floatX* kb, const floatX* vb,
                                              float to_base2) {
    static_assert(KEYS == 32 || KEYS == 64, "whole tiles or halves");
    constexpr int NJ = KEYS / 16;   // key chunks of 16 in a part
    const int w = (int)threadIdx.x / 32;
#pragma unroll
    for (int part = 0; part < ATTN_TILE / KEYS; part++) {
        const floatX *kh = kb + KEYS * HS * part, *vh = vb + KEYS * HS * part;   // keys KEYS part.. (row groups)
        float s[NJ][2][4], dp[NJ][2][4];   // S, then P, then dS; dP: chunk j (keys KEYS part + 16 j..), 2 n-tiles
        float(&sf)[KEYS / 2] = reinterpret_cast<float(&)[KEYS / 2]>(s);
        float(&dpf)[KEYS / 2] = reinterpret_cast<float(&)[KEYS / 2]>(dp);
        attnw_times_t<HS, KEYS>(sf, qs, kh);    // S = Q K^T
        attnw_times_t<HS, KEYS>(dpf, gs, vh);   // dP = dO V^T
        wgmma_wait<1>();   // S is in; P while dP is computed
        wgmma_fence_operands(sf);
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            const int chunk = NJ * part + j;   // of the tile's 4: the warp's rows see chunks 0..w of the diagonal
            attnm_dq_probs(s[j], lse2, to_base2);
            if (DIAG && chunk > w) {
#pragma unroll
                for (int i = 0; i < 8; i++) s[j][i / 4][i % 4] = 0.0f;
            }
            if (DIAG && chunk == w) attnm_mask_diagonal(s[j], 0.0f);
        }
        wgmma_wait<0>();
        wgmma_fence_operands(dpf);
        uint32_t a[NJ][4];   // dS as the A operand of each k step (16 keys)
#pragma unroll
        for (int j = 0; j < NJ; j++) {
            attnm_dq_dscores(s[j], dp[j], Dr);
            attnm_as_a(a[j], s[j][0], s[j][1]);
        }
        float(&dqf)[HS / 2] = reinterpret_cast<float(&)[HS / 2]>(dq);
        attnw_accumulate<HS, NJ>(dqf, a, kh);   // dQ += dS K
        wgmma_wait<0>();
        wgmma_fence_operands(dqf);
        wgmma_fence_operands(a);
    }
}

// dq (query rows) of dqkv (B,T,3C); grid (ceil(T/64), NH, B), 128 threads
// (one warpgroup); 48 KB of shared memory at HS = 64 (Q, dout, and K, V
// twice); KEYS as in attnw_dq_tile
template <int HS, int KEYS>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, 4)
    attention_backward_dq_wgmma_kernel(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                       const float* D, int T, int NH, float scale) {
    static_assert(ATTNM_WARPS == 4, "a block is one warpgroup");
    __shared__ __align__(128) floatX tile_q[ATTN_TILE * HS];
    __shared__ __align__(128) floatX tile_g[ATTN_TILE * HS];   // dout
    __shared__ __align__(128) floatX tile_k[2][ATTN_TILE * HS];
    __shared__ __align__(128) floatX tile_v[2][ATTN_TILE * HS];
    const int qt = (int)(gridDim.x - 1 - blockIdx.x), h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const int row0 = qt * ATTN_TILE + 16 * ((int)threadIdx.x / 32);   // the warp's first query

    attnw_stage<HS>(tile_q, base, C3, qt * ATTN_TILE, T);
    attnw_stage<HS>(tile_g, dout + (size_t)b * T * C + h * HS, C, qt * ATTN_TILE, T);
    attnw_load_kv<HS>(tile_k[0], tile_v[0], base, C3, C, 0, T);   // key tile 0 (always exists)
    cp_async_commit();
    float lse2[2], Dr[2];
    attnm_dq_row_stats(lse2, Dr, lse, D, (size_t)b * NH + h, row0 + (int)threadIdx.x % 32 / 4, T);
    float dq[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
    const float to_base2 = scale * LOG2E_F;
    for (int kt = 0; kt <= qt; kt++) {
        attnw_pipeline_wait();
        if (kt < qt) attnw_load_kv<HS>(tile_k[(kt + 1) % 2], tile_v[(kt + 1) % 2], base, C3, C, kt + 1, T);
        cp_async_commit();
        if (kt < qt)
            attnw_dq_tile<HS, KEYS, false>(dq, lse2, Dr, tile_q, tile_g, tile_k[kt % 2], tile_v[kt % 2], to_base2);
        else attnw_dq_tile<HS, KEYS, true>(dq, lse2, Dr, tile_q, tile_g, tile_k[kt % 2], tile_v[kt % 2], to_base2);
    }
    const float mul[2] = {scale, scale};
    attnm_write_rows<HS>(dqkv + ((size_t)b * T + row0) * C3 + h * HS, C3, row0, T, dq, mul);
}

// one query tile (Q, dout staged at qs, gs; lse, D of its rows at lse_t,
// D_t) of dK, dV for the block's 64 keys (K, V staged at ks, vs), in two
// halves of 32 queries: S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T
// Q (dout and Q read MN-major: their rows are k here), P^T and dS^T as in
// attnm_dkdv_tile, each computed while the products before it still run
// (four groups, waited for one behind). EDGE (the diagonal tile, a last
// partial one): q0, end as in attnm_dkdv_probs; every query chunk is
// computed, the ones before the warp's keys masked to 0 with the rest.
// dS^T is stored as attnm_dkdv_tile stores it (dscores + ds_off, unless
// dscores is NULL): the accumulators' layout is mma.sync's.
template <int HS, bool EDGE>
__device__ __forceinline__ void attnw_dkdv_tile(float (&dk)[HS / 8][4], float (&dv)[HS / 8][4], const floatX* ks,
                                                const floatX* vs, const floatX* qs, const floatX* gs,
                                                const float* lse_t, const float* D_t, floatX* dscores,
                                                uint32_t ds_off, float to_base2, int q0, int end) {
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const floatX *qh = qs + 32 * HS * half, *gh = gs + 32 * HS * half;   // queries 32 half.. (4 row groups)
        float s[2][2][4], dp[2][2][4];   // S^T, then P^T, then dS^T; dP^T: query chunk 2 half + j, two 8-column tiles
        float(&sf)[16] = reinterpret_cast<float(&)[16]>(s);
        float(&dpf)[16] = reinterpret_cast<float(&)[16]>(dp);
        float(&dkf)[HS / 2] = reinterpret_cast<float(&)[HS / 2]>(dk);
        float(&dvf)[HS / 2] = reinterpret_cast<float(&)[HS / 2]>(dv);
        attnw_times_t<HS, 32>(sf, ks, qh);    // S^T = K Q^T
        attnw_times_t<HS, 32>(dpf, vs, gh);   // dP^T = V dO^T
        wgmma_wait<1>();   // S^T is in; P^T and dV's products while dP^T is computed
        wgmma_fence_operands(sf);
        uint32_t pa[2][4], da[2][4];   // P^T and dS^T as the A operands of each k step (16 queries)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            attnm_dkdv_probs<EDGE>(s[j], lse_t, 2 * half + j, to_base2, q0, end);
            attnm_as_a(pa[j], s[j][0], s[j][1]);
        }
        attnw_accumulate<HS, 2>(dvf, pa, gh);   // dV += P^T dO
        wgmma_wait<1>();   // dP^T is in (dV's may still run: dv and pa untouched until the last wait)
        wgmma_fence_operands(dpf);
#pragma unroll
        for (int j = 0; j < 2; j++) {
            attnm_dkdv_dscores(s[j], dp[j], D_t, 2 * half + j);
            attnm_as_a(da[j], s[j][0], s[j][1]);
            if (dscores) {
                *(uint4*)(dscores + ds_off + 256 * (2 * half + j)) = make_uint4(da[j][0], da[j][1], da[j][2],
                                                                                da[j][3]);
            }
        }
        attnw_accumulate<HS, 2>(dkf, da, qh);   // dK += dS^T Q
        wgmma_wait<0>();
        wgmma_fence_operands(dkf);
        wgmma_fence_operands(dvf);
        wgmma_fence_operands(pa);
        wgmma_fence_operands(da);
    }
}

// dkdv's shared memory, in bytes: K, V, two buffers each of Q and dout, lse
// and D of the query tiles' rows (49 KB at HS = 64: dynamic, over the 48 KB
// a block gets without asking)
template <int HS>
constexpr size_t attnw_dkdv_smem() {
    return (size_t)6 * ATTN_TILE * HS * sizeof(floatX) + 4 * ATTN_TILE * sizeof(float);
}

// dk, dv (key rows) of dqkv (B,T,3C), and dS into dscores as
// attention_backward_dkdv_mma_kernel (none if NULL); grid (ceil(T/64), NH,
// B), 128 threads (one warpgroup), attnw_dkdv_smem<HS>() bytes of dynamic
// shared memory; block x owns key tile x, as
// attention_backward_dkdv_mma_kernel. Four blocks per SM asked of ptxas:
// 128 registers at HS = 64 without spills (148 when asked for three)
template <int HS>
__global__ void __launch_bounds__(32 * ATTNM_WARPS, 4)
    attention_backward_dkdv_wgmma_kernel(floatX* dqkv, floatX* dscores, const floatX* dout, const floatX* qkv,
                                         const float* lse, const float* D, int T, int NH, float scale) {
    static_assert(ATTNM_WARPS == 4, "a block is one warpgroup");
    constexpr int TILE = ATTN_TILE * HS;
    extern __shared__ __align__(128) floatX attnw_dkdv_shared[];
    floatX* tile_k = attnw_dkdv_shared;
    floatX* tile_v = tile_k + TILE;
    floatX(*tile_q)[TILE] = (floatX(*)[TILE])(tile_v + TILE);
    floatX(*tile_g)[TILE] = tile_q + 2;
    float(*lse_s)[ATTN_TILE] = (float(*)[ATTN_TILE])(tile_g + 2);
    float(*D_s)[ATTN_TILE] = lse_s + 2;
    const int kt = (int)blockIdx.x, h = (int)blockIdx.y, b = (int)blockIdx.z;
    const int C = NH * HS;
    const size_t C3 = 3 * (size_t)C;
    const floatX* base = qkv + (size_t)b * T * C3 + h * HS;
    const floatX* gbase = dout + (size_t)b * T * C + h * HS;
    const float* lse_bh = lse + ((size_t)b * NH + h) * T;
    const float* D_bh = D + ((size_t)b * NH + h) * T;
    const int warp = (int)threadIdx.x / 32;
    const int key0 = kt * ATTN_TILE + 16 * warp;   // the warp's first key

    const int ntiles = (T + ATTN_TILE - 1) / ATTN_TILE;
    attnw_load_kv<HS>(tile_k, tile_v, base, C3, C, kt, T);
    attnw_load_queries<HS>(tile_q[0], tile_g[0], lse_s[0], D_s[0], base, gbase, C3, C, lse_bh, D_bh, kt, T);
    cp_async_commit();
    float dk[HS / 8][4], dv[HS / 8][4];
#pragma unroll
    for (int n = 0; n < HS / 8; n++)
        for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.0f;
    const float to_base2 = scale * LOG2E_F;
    for (int qt = kt; qt < ntiles; qt++) {   // query tiles above the diagonal see none of these keys
        attnw_pipeline_wait();
        const int k = (qt - kt) % 2;   // query tile qt, in
        if (qt + 1 < ntiles) {
            attnw_load_queries<HS>(tile_q[1 - k], tile_g[1 - k], lse_s[1 - k], D_s[1 - k], base, gbase, C3, C,
                                   lse_bh, D_bh, qt + 1, T);
        }
        cp_async_commit();
        const uint32_t ds_off = attnm_ds_pair(b * NH + h, T, qt, kt) + attnm_ds_chunk(warp, 0);
        if (qt == kt || (qt + 1) * ATTN_TILE > T) {   // the diagonal tile, a last partial one: masked
            attnw_dkdv_tile<HS, true>(dk, dv, tile_k, tile_v, tile_q[k], tile_g[k], lse_s[k], D_s[k], dscores, ds_off,
                                      to_base2, qt * ATTN_TILE - key0, T - key0);
        } else {
            attnw_dkdv_tile<HS, false>(dk, dv, tile_k, tile_v, tile_q[k], tile_g[k], lse_s[k], D_s[k], dscores,
                                       ds_off, to_base2, 0, 0);
        }
    }
    floatX* dst = dqkv + ((size_t)b * T + key0) * C3 + h * HS;
    const float mul_k[2] = {scale, scale}, mul_v[2] = {1.0f, 1.0f};
    attnm_write_rows<HS>(dst + C, C3, key0, T, dk, mul_k);
    attnm_write_rows<HS>(dst + 2 * C, C3, key0, T, dv, mul_v);
}

// 1 into *out where the code the device runs was built for sm_90a
// (wgmma's target; the kernels above trap in code built for others)
__global__ void __launch_bounds__(1)
    attnw_sm90a_probe_kernel(int* out) {
#if defined(CUDA_EMU) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
    *out = 1;
#else
    *out = 0;
#endif
}

// whether the device runs these kernels: compute capability 9.0 and code
// built for sm_90a (the Makefile's NVCC_FLAGS; the emulation reports 9.0).
// Asked once: a process uses one device.
static inline bool attention_wgmma_supported() {
    static int supported = -1;
    if (supported < 0) {
        int device = 0, sm90a = 0, *d_flag = NULL;
        cudaDeviceProp prop;
        cudaCheck(cudaGetDevice(&device));
        cudaCheck(cudaGetDeviceProperties(&prop, device));
        if (prop.major == 9 && prop.minor == 0) {
            cudaCheck(cudaMalloc(&d_flag, sizeof(int)));
            attnw_sm90a_probe_kernel<<<1, 1>>>(d_flag);
            cudaCheck(cudaGetLastError());
            cudaCheck(cudaMemcpy(&sm90a, d_flag, sizeof(int), cudaMemcpyDeviceToHost));
            cudaCheck(cudaFree(d_flag));
        }
        supported = sm90a;
    }
    return supported == 1;
}

// a one-line error and exit where the device cannot run these kernels
static inline void attnw_require(const char* who) {
    if (!attention_wgmma_supported()) {
        fprintf(stderr, "error: %s needs a GPU of compute capability 9.0 and a build for sm_90a\n", who);
        exit(EXIT_FAILURE);
    }
}

// the same contract as attention_forward_mma
static inline void attention_forward_wgmma(floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH,
                                           cudaStream_t stream) {
    attention_check_args("attention_forward_wgmma", 1, B, T, C, NH, out, qkv, qkv, qkv);
    attnw_require("attention_forward_wgmma");
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    const dim3 grid = attention_tile_grid(B, T, NH);
    if (HS == 64) attention_forward_wgmma_kernel<64><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(out, lse, qkv, T, NH, scale);
    else attention_forward_wgmma_kernel<32><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(out, lse, qkv, T, NH, scale);
    cudaCheck(cudaGetLastError());
}

template <int HS, int DQ_KEYS>
static inline void attention_backward_wgmma_launch(dim3 grid, floatX* dqkv, const float* D, floatX* dscores,
                                                   const floatX* dout, const floatX* qkv, const float* lse, int T,
                                                   int NH, float scale, cudaStream_t stream) {
    constexpr size_t smem = attnw_dkdv_smem<HS>();
    attention_allow_dynamic_smem(attention_backward_dkdv_wgmma_kernel<HS>, smem);
    attention_backward_dkdv_wgmma_kernel<HS><<<grid, 32 * ATTNM_WARPS, smem, stream>>>(dqkv, dscores, dout, qkv, lse,
                                                                                       D, T, NH, scale);
    cudaCheck(cudaGetLastError());
    if (dscores) {
        attention_backward_dq_stored_mma_kernel<HS><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(dqkv, dscores, qkv, T, NH,
                                                                                            scale);
    } else {
        attention_backward_dq_wgmma_kernel<HS, DQ_KEYS><<<grid, 32 * ATTNM_WARPS, 0, stream>>>(dqkv, dout, qkv, lse,
                                                                                               D, T, NH, scale);
    }
    cudaCheck(cudaGetLastError());
}

// the same contract as attention_backward_mma: dk, dv (and dS into
// scratch_dS, unless NULL) by attention_backward_dkdv_wgmma_kernel; dq from
// the stored dS by attention_backward_dq_stored_mma_kernel (one matmul per
// chunk: mma.sync does), or without it by attention_backward_dq_wgmma_kernel
// in parts of DQ_KEYS keys (32, halves; 64, whole tiles: the bench times it
// against halves, the same bits under the emulation)
template <int DQ_KEYS = 32>
static inline void attention_backward_wgmma(floatX* dqkv, float* scratch_D, floatX* scratch_dS, const floatX* dout,
                                            const floatX* qkv, const floatX* out, const float* lse, int B, int T, int C,
                                            int NH, cudaStream_t stream) {
    attention_check_args("attention_backward_wgmma", 1, B, T, C, NH, dqkv, dout, qkv, out);
    attention_check_dscores("attention_backward_wgmma", scratch_dS, B, T, NH);
    attnw_require("attention_backward_wgmma");
    const int HS = C / NH;
    const float scale = 1.0f / sqrtf((float)HS);
    attention_rowdot(scratch_D, dout, out, B, T, NH, HS, stream);
    const dim3 grid = attention_tile_grid(B, T, NH);
    if (HS == 64) {
        attention_backward_wgmma_launch<64, DQ_KEYS>(grid, dqkv, scratch_D, scratch_dS, dout, qkv, lse, T, NH, scale,
                                                     stream);
    } else {
        attention_backward_wgmma_launch<32, DQ_KEYS>(grid, dqkv, scratch_D, scratch_dS, dout, qkv, lse, T, NH, scale,
                                                     stream);
    }
}

#endif // LLMC_ATTENTION_WGMMA_CUH
