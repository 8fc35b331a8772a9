/*
 * gemm.h: fp32 matrix multiply for the CPU trainer, parallel and deterministic.
 *
 *   gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc)
 *   C(M,N) = beta*C + op(A)(M,K) @ op(B)(K,N), all matrices row-major,
 *   op(A) = A (stored M x K, row stride lda) or A^T (A stored K x M),
 *   op(B) = B (stored K x N, row stride ldb) or B^T (B stored N x K).
 *   beta == 0 never reads C (C may hold garbage, NaN included); other values
 *   than 0 and 1 scale C first. Negative sizes or leading dimensions shorter
 *   than a row are fatal errors.
 *
 * The trainer's three calls (BT = B*T, C channels, OC output channels):
 *   forward   out(BT,OC)  = inp(BT,C) @ W(OC,C)^T   gemm(0,1, BT,OC,C, inp,C, W,C, 0, out,OC)
 *   dinp      dinp(BT,C) += dout(BT,OC) @ W(OC,C)   gemm(0,0, BT,C,OC, dout,OC, W,C, 1, dinp,C)
 *   dweight   dW(OC,C)   += dout(BT,OC)^T @ inp     gemm(1,0, OC,C,BT, dout,OC, inp,C, 1, dW,C)
 *
 * Method (the classic packed design): op(A) is copied into panels of GEMM_MR
 * rows and op(B) into panels of GEMM_NR columns, both k-major, so that the
 * micro-kernel reads two contiguous streams whatever the transposes; it keeps
 * a GEMM_MR x GEMM_NR tile of C in registers over a block of GEMM_KC values of
 * k. Loops: row block (MC) > k block (KC) > column block (NC) > tiles, so an A
 * micro-panel (MR x KC, 8 KiB) stays in L1 while the kernel walks a packed B
 * block (KC x NC, 384 KiB) in L2. While one block is computed, the source of
 * the next one is prefetched, so that reading the weights from memory overlaps
 * the arithmetic: a slice of it per micro-kernel call, one line every few
 * values of k. Edge tiles read zero-padded panels; on AVX-512 a narrower
 * kernel computes only the 16-column vectors they cover (C = 64 channels is a
 * tile and a third, not two), with the full kernel's arithmetic.
 *
 * Threads: C is cut along its longer side into chunks of whole tiles, handed
 * out as threads come free (one slowed by another process takes fewer). Each
 * chunk needs all of the other operand: when that fits a thread's buffer it is
 * packed once per thread and kept, and chunks are small (4 per thread).
 * On a machine shared with other busy processes, OpenMP's default waiting
 * (spinning) can queue a thread behind them for a scheduler slice (ms) per
 * call: OMP_WAIT_POLICY=passive avoids that (see dev/cpu/bench_gemm.c).
 *
 * Determinism: K is never split. Every element of C is summed in the same
 * order (k ascending within each KC block, blocks added to C in ascending
 * order), fixed by K and GEMM_KC alone, so results are bitwise identical for
 * any number of threads. (They differ between the AVX-512 and portable paths.)
 * C must not overlap A or B.
 *
 * Paths: AVX-512F intrinsics (8 x 48 tile) when compiled with __AVX512F__,
 * otherwise GCC vector extensions (6 x 16 tile, AVX2/FMA when available, any
 * target gcc or clang supports otherwise). OpenMP pragmas are only seen under
 * _OPENMP; without it gemm runs on one thread.
 *
 * Memory: each thread that runs gemm keeps its packing buffers (2 MiB, in
 * gemm_tls_pack), allocated on its first call and freed when the thread
 * exits, so calls allocate nothing. The only globals are that thread-local
 * pointer and the pthread key (gemm_tls_key) whose destructor frees it.
 */
#ifndef LLMC_GEMM_H
#define LLMC_GEMM_H

#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "utils.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __AVX512F__
#include <immintrin.h>
#endif

// ----------------------------------------------------------------------------
// blocking parameters

#ifdef __AVX512F__
// 8 x 48: 24 zmm accumulators of 32 registers, 24 FMAs per 3 loads + 8 broadcasts; and it
// divides every trainer size (B*T = 256 = 32 x 8; 768, 2304, 3072, 50304 = 48 x ...), no edges
#define GEMM_MR 8    // rows of the register tile
#define GEMM_NR 48   // columns of the register tile: 3 zmm of 16 floats
#else
#define GEMM_MR 6    // AVX: 6 x 2 vectors of 8 floats = 12 of 16 ymm registers
#define GEMM_NR 16   // (SSE, NEON: 6 x 4 vectors of 4 floats)
#endif
#define GEMM_KC 256              // k block: an A micro-panel is MR*KC floats (8 KiB), kept in L1
#define GEMM_MC (GEMM_MR * 32)   // rows of A packed at once: 256 (AVX-512), all of B*T = 256
#define GEMM_NC (GEMM_NR * 8)    // columns of B packed at once: KC x NC = 384 KiB, kept in L2
// each of a thread's two packing buffers: 1 MiB. It keeps a whole packed operand when that fits
// (op(A) of 256 rows for K <= 1024; op(B) of 768 columns for K <= 341, as in dweight's K = 256),
// otherwise one MC x KC or KC x NC block
#define GEMM_PACK_FLOATS (256 * 1024)
#define GEMM_PREFETCH_ROWS 4     // packing a k-major source prefetches this many rows ahead
#define GEMM_CHUNKS_PER_THREAD 4 // when the other operand is kept, chunks per thread (balance)
// below this many multiply-adds a call runs on one thread (a thread team costs a few microseconds)
#define GEMM_PARALLEL_MIN_FMAS (1 << 18)
#define GEMM_SPIN_SECONDS 50e-6  // a thread out of chunks spins this long for its teammates,
#define GEMM_NAP_NS 20000        // then naps this long between looks (see gemm_team_wait)

// ----------------------------------------------------------------------------
// micro-kernels: c(MR,NR) = (load_c ? c : 0) + a(kc,MR)-panel^T @ b(kc,NR)-panel
// a holds kc groups of MR floats (one per k), b holds kc groups of NR floats.

// The cache lines of the next blocks' sources that one micro-kernel call
// prefetches, one every few values of k. Issued together (tens of lines per
// tile), they filled the core's line-fill buffers, and the kernel behind them
// stalled until memory answered; spread over the k loop, they overlap its
// arithmetic (4.6% faster over the trainer's shapes, 8% on the quickstart's
// dwte: Xeon, 2 threads, interleaved with the burst version).
#define GEMM_PREFETCH_MAX 256
typedef struct {
    const void *line[GEMM_PREFETCH_MAX];
    int n;
} GemmPrefetch;

// the k loop's schedule, in the kernel's locals: line pf_next is due at
// k == pf_due, one every kc/n values of k (those left at the end: after the loop).
// With no line left pf_due is -1, so the loop tests one condition per k. (With
// two, gcc's order of the tests varied with the code around the kernel: after
// the portable pack was vectorised it tested pf_next < n first, and the
// kernel's loop ran 5-12% slower on the dinp shapes, Zen 3.)
#define GEMM_PREFETCH_START(pf, kc) \
    int pf_every = (pf)->n > 0 && (kc) / (pf)->n > 1 ? (kc) / (pf)->n : 1; \
    int pf_due = (pf)->n > 0 ? 0 : -1, pf_next = 0
#define GEMM_PREFETCH_STEP(pf, k)                                          \
    do {                                                                   \
        if ((k) == pf_due) {                                               \
            __builtin_prefetch((pf)->line[pf_next++]);                     \
            pf_due = pf_next < (pf)->n ? pf_due + pf_every : -1;           \
        }                                                                  \
    } while (0)
#define GEMM_PREFETCH_REST(pf) \
    while (pf_next < (pf)->n) __builtin_prefetch((pf)->line[pf_next++])

#ifdef __AVX512F__

#define GEMM_ROW_DECL_(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0
#define GEMM_ROW_FMA_(i)                              \
    do {                                              \
        __m512 ai = _mm512_set1_ps(a[i]);             \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);   \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);   \
        c##i##2 = _mm512_fmadd_ps(ai, b2, c##i##2);   \
    } while (0)
#define GEMM_ROW_STORE_(i)                                                                  \
    do {                                                                                    \
        float *ci = c + (size_t)(i) * ldc;                                                  \
        if (load_c) {                                                                       \
            c##i##0 = _mm512_add_ps(_mm512_loadu_ps(ci), c##i##0);                          \
            c##i##1 = _mm512_add_ps(_mm512_loadu_ps(ci + 16), c##i##1);                     \
            c##i##2 = _mm512_add_ps(_mm512_loadu_ps(ci + 32), c##i##2);                     \
        }                                                                                   \
        _mm512_storeu_ps(ci, c##i##0);                                                      \
        _mm512_storeu_ps(ci + 16, c##i##1);                                                 \
        _mm512_storeu_ps(ci + 32, c##i##2);                                                 \
    } while (0)

static inline void gemm_kernel(int kc, const float *restrict a, const float *restrict b,
                               float *restrict c, size_t ldc, int load_c, const GemmPrefetch *pf) {
    // ask for the C tile now (for writing), so it is near by the end of the k loop
    for (int i = 0; i < GEMM_MR; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_ET0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_ET0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 32), _MM_HINT_ET0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 47), _MM_HINT_ET0);
    }
    GEMM_ROW_DECL_(0); GEMM_ROW_DECL_(1); GEMM_ROW_DECL_(2); GEMM_ROW_DECL_(3);
    GEMM_ROW_DECL_(4); GEMM_ROW_DECL_(5); GEMM_ROW_DECL_(6); GEMM_ROW_DECL_(7);
    GEMM_PREFETCH_START(pf, kc);
    for (int k = 0; k < kc; k++) {
        GEMM_PREFETCH_STEP(pf, k);
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32);
        GEMM_ROW_FMA_(0); GEMM_ROW_FMA_(1); GEMM_ROW_FMA_(2); GEMM_ROW_FMA_(3);
        GEMM_ROW_FMA_(4); GEMM_ROW_FMA_(5); GEMM_ROW_FMA_(6); GEMM_ROW_FMA_(7);
        a += GEMM_MR;
        b += GEMM_NR;
    }
    GEMM_PREFETCH_REST(pf);
    GEMM_ROW_STORE_(0); GEMM_ROW_STORE_(1); GEMM_ROW_STORE_(2); GEMM_ROW_STORE_(3);
    GEMM_ROW_STORE_(4); GEMM_ROW_STORE_(5); GEMM_ROW_STORE_(6); GEMM_ROW_STORE_(7);
}

// An edge tile (mr <= MR rows, nr <= NR columns) with the arithmetic of gemm_kernel on only
// the nv = ceil(nr/16) vectors of columns it needs, storing the mr x nr corner under masks.
// So C = 64 (16 past one tile) costs 4/3 of a tile's work, not 2, and every element still gets
// gemm_kernel's bits. nv must be a constant (1..3): the loops unroll, acc stays in registers.
static inline __attribute__((always_inline)) void gemm_kernel_edge_nv(
    const int nv, int kc, const float *restrict a, const float *restrict b, float *restrict c,
    size_t ldc, int load_c, int mr, int nr, const GemmPrefetch *pf) {
    __m512 acc[GEMM_MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++) {
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    }
    GEMM_PREFETCH_START(pf, kc);
    for (int k = 0; k < kc; k++) {
        GEMM_PREFETCH_STEP(pf, k);
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < GEMM_MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += GEMM_MR;
        b += GEMM_NR;
    }
    GEMM_PREFETCH_REST(pf);
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++) {
        if (i >= mr) break;
        float *ci = c + (size_t)i * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            int n = nr - 16 * v;
            __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
            __m512 r = acc[i][v];
            if (load_c) r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, ci + 16 * v), r);
            _mm512_mask_storeu_ps(ci + 16 * v, m, r);
        }
    }
}

// the kernels ask for their C tile themselves (for writing, read or not)
static inline void gemm_prefetch_c_tile(const float *c, size_t ldc, int mr, int nr) {
    (void)c, (void)ldc, (void)mr, (void)nr;
}

static inline void gemm_kernel_edge(int kc, const float *restrict a, const float *restrict b,
                                    float *restrict c, size_t ldc, int load_c, int mr, int nr,
                                    const GemmPrefetch *pf) {
    if (nr <= 16) {
        gemm_kernel_edge_nv(1, kc, a, b, c, ldc, load_c, mr, nr, pf);
    } else if (nr <= 32) {
        gemm_kernel_edge_nv(2, kc, a, b, c, ldc, load_c, mr, nr, pf);
    } else {
        gemm_kernel_edge_nv(3, kc, a, b, c, ldc, load_c, mr, nr, pf);
    }
}

#undef GEMM_ROW_DECL_
#undef GEMM_ROW_FMA_
#undef GEMM_ROW_STORE_

#else  // portable path: GCC vector extensions, one register of floats per vector

// The vectors are one register wide (__BIGGEST_ALIGNMENT__ bytes: 32 for AVX,
// 16 for SSE or NEON): gcc splits a wider vector into scalars through memory,
// not into registers (3.4 GFLOP/s on SSE with 8-float vectors). Each element of
// C still sums over k in the same order, so the width changes no result.
#define GEMM_VF (__BIGGEST_ALIGNMENT__ / 4)  // floats per vector
#define GEMM_NV (GEMM_NR / GEMM_VF)           // vectors per row of the tile
typedef float gemm_vec __attribute__((vector_size(GEMM_VF * sizeof(float))));

// acc[i][v] += a[i] * b[v]: a[i] * bv broadcasts a[i] from memory into the
// multiply. Writing the broadcast as (gemm_vec){0} + a[i] cost a scalar add
// per row and k (x + 0 is not x for x = -0): AVX2 at 0.6x OpenBLAS, not 0.8x.
// The loops unroll fully, so acc stays in registers.
static inline void gemm_kernel(int kc, const float *restrict a, const float *restrict b,
                               float *restrict c, size_t ldc, int load_c, const GemmPrefetch *pf) {
    gemm_vec acc[GEMM_MR][GEMM_NV];
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < GEMM_NV; v++) acc[i][v] = (gemm_vec){0};
    }
    GEMM_PREFETCH_START(pf, kc);
    for (int k = 0; k < kc; k++) {
        GEMM_PREFETCH_STEP(pf, k);
        gemm_vec bv[GEMM_NV];
#pragma GCC unroll 4
        for (int v = 0; v < GEMM_NV; v++) memcpy(&bv[v], b + v * GEMM_VF, sizeof(bv[v]));
#pragma GCC unroll 8
        for (int i = 0; i < GEMM_MR; i++) {
#pragma GCC unroll 4
            for (int v = 0; v < GEMM_NV; v++) acc[i][v] += a[i] * bv[v];
        }
        a += GEMM_MR;
        b += GEMM_NR;
    }
    GEMM_PREFETCH_REST(pf);
#pragma GCC unroll 8
    for (int i = 0; i < GEMM_MR; i++) {
        float *ci = c + (size_t)i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < GEMM_NV; v++) {
            if (load_c) {
                gemm_vec old;
                memcpy(&old, ci + v * GEMM_VF, sizeof(old));
                acc[i][v] = old + acc[i][v];
            }
            memcpy(ci + v * GEMM_VF, &acc[i][v], sizeof(acc[i][v]));
        }
    }
}

// Asks for a C tile (mr x nr) that the kernel will read and add to, before it
// runs: its rows are then near when the k loop ends, where the adds would
// otherwise wait for memory (bench-gemm-rev, Zen 3: the 124M shapes 1.2-4.4%
// faster overall in each of seven runs; the d1 shapes within the +-5% that
// noise moves them between runs). A tile only written is not asked for: its
// stores drain through the store buffer.
static inline void gemm_prefetch_c_tile(const float *c, size_t ldc, int mr, int nr) {
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(c + (size_t)i * ldc, 1);
        __builtin_prefetch(c + (size_t)i * ldc + nr - 1, 1);
    }
}

// an edge tile (mr <= MR rows, nr <= NR columns): the same kernel on a full-size copy
static inline void gemm_kernel_edge(int kc, const float *restrict a, const float *restrict b,
                                    float *restrict c, size_t ldc, int load_c, int mr, int nr,
                                    const GemmPrefetch *pf) {
    float tile_c[GEMM_MR * GEMM_NR] = {0};
    if (load_c) {
        for (int i = 0; i < mr; i++) {
            memcpy(tile_c + i * GEMM_NR, c + (size_t)i * ldc, (size_t)nr * sizeof(float));
        }
    }
    gemm_kernel(kc, a, b, tile_c, GEMM_NR, load_c, pf);
    for (int i = 0; i < mr; i++) {
        memcpy(c + (size_t)i * ldc, tile_c + i * GEMM_NR, (size_t)nr * sizeof(float));
    }
}

#endif  // __AVX512F__

// ----------------------------------------------------------------------------
// packing: copy a (rows x kc) block of a matrix into panels of w rows, k-major.
// Element (r,k) of the block lives at src[r*rs + k*cs] with rs == 1 or cs == 1;
// it goes to dst[(r/w)*w*kc + k*w + r%w]. Rows from `rows` up to the next
// multiple of w are zero. On AVX-512, w is a multiple of 8.

// rows contiguous in the source (cs = stride between k): a straight copy, panel
// by panel so the writes run sequentially, prefetching GEMM_PREFETCH_ROWS
// values of k ahead (for the first block of a chunk, whose source nobody has
// prefetched)
static inline void gemm_pack_cols(float *restrict dst, int w, const float *restrict src, size_t cs,
                                  int rows, int kc) {
    int rows_padded = (rows + w - 1) / w * w;
#ifdef __AVX512F__
    if (w % 16 == 0) {  // whole panels, w/16 vectors per k
        for (int r0 = 0; r0 < rows_padded; r0 += w) {
            float *d = dst + (size_t)r0 * kc;
            const float *s = src + r0;
            for (int k = 0; k < kc; k++) {
                if (k + GEMM_PREFETCH_ROWS < kc) {
                    for (int r = 0; r < w && r0 + r < rows; r += 16) {
                        _mm_prefetch((const char *)(s + (k + GEMM_PREFETCH_ROWS) * cs + r), _MM_HINT_T0);
                    }
                }
                for (int r = 0; r < w; r += 16) {
                    int n = rows - (r0 + r);
                    __mmask16 m = n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
                    _mm512_storeu_ps(d + (size_t)k * w + r, _mm512_maskz_loadu_ps(m, s + k * cs + r));
                }
            }
        }
        return;
    }
    // 16 rows at a time: rows r0..r0+7 and r0+8..r0+15 each lie inside one panel
    for (int r0 = 0; r0 < rows_padded; r0 += 16) {
        float *dlo = dst + (size_t)(r0 / w) * w * kc + r0 % w;
        float *dhi = dst + (size_t)((r0 + 8) / w) * w * kc + (r0 + 8) % w;
        int has_hi = r0 + 8 < rows_padded;
        int n = rows - r0;
        __mmask16 m = n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
        const float *s = src + r0;
        for (int k = 0; k < kc; k++) {
            if (k + GEMM_PREFETCH_ROWS < kc) {
                _mm_prefetch((const char *)(s + (k + GEMM_PREFETCH_ROWS) * cs), _MM_HINT_T0);
            }
            __m512 v = _mm512_maskz_loadu_ps(m, s + k * cs);
            _mm256_storeu_ps(dlo + (size_t)k * w, _mm512_castps512_ps256(v));
            if (has_hi) {
                _mm256_storeu_ps(dhi + (size_t)k * w, _mm512_extractf32x8_ps(v, 1));
            }
        }
    }
#else
    for (int r0 = 0; r0 < rows_padded; r0 += w) {
        float *d = dst + (size_t)r0 * kc;
        const float *s = src + r0;
        int n = rows - r0 < w ? rows - r0 : w;
        for (int k = 0; k < kc; k++) {
            if (k + GEMM_PREFETCH_ROWS < kc) {
                __builtin_prefetch(s + (k + GEMM_PREFETCH_ROWS) * cs);
            }
            if (n == w) {  // a whole panel: one straight copy per k
                memcpy(d + (size_t)k * w, s + k * cs, (size_t)w * sizeof(float));
                continue;
            }
            for (int r = 0; r < w; r++) {
                d[(size_t)k * w + r] = r < n ? s[k * cs + r] : 0.0f;
            }
        }
    }
#endif
}

#ifdef __AVX512F__
// transposes 16 rows of 16 floats in registers: on return v[j][i] = old v[i][j]
static inline void gemm_transpose16(__m512 v[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    // u[4g+c], 128-bit lane L: column 4L+c of rows 4g..4g+3
    for (int g = 0; g < 16; g += 4) {
        __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
        __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
        u[g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int c = 0; c < 4; c++) {
        __m512 p = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 q = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 r = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 s = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        v[c] = _mm512_shuffle_f32x4(p, r, 0x88);
        v[8 + c] = _mm512_shuffle_f32x4(p, r, 0xdd);
        v[4 + c] = _mm512_shuffle_f32x4(q, s, 0x88);
        v[12 + c] = _mm512_shuffle_f32x4(q, s, 0xdd);
    }
}
#endif

#ifndef __AVX512F__
_Static_assert(GEMM_MR % 2 == 0 && GEMM_NR % 2 == 0, "gemm_pack_rows packs a panel's rows in pairs");
typedef float gemm_v4 __attribute__((vector_size(4 * sizeof(float))));

// 4 floats from p (any alignment), or zeros when !valid (a padding row, p not read)
static inline gemm_v4 gemm_load4(const float *p, int valid) {
    gemm_v4 v = {0};
    if (valid) {
        memcpy(&v, p, sizeof(v));
    }
    return v;
}

// packs g (4 or 2, a constant once inlined) rows of a panel, the first at s, for k up to
// kc4 (a multiple of 4): 4 x 4 blocks transposed in registers, g floats stored per k.
// n: how many of the g rows lie inside the matrix (the others are zeros)
static inline void gemm_pack_row_group(float *d, int w, const float *s, size_t rs, int g, int n,
                                       int kc4) {
    for (int k = 0; k < kc4; k += 4, s += 4) {
        gemm_v4 a = gemm_load4(s, n > 0), b = gemm_load4(s + rs, n > 1);
        gemm_v4 c = gemm_load4(s + 2 * rs, g > 2 && n > 2), e = gemm_load4(s + 3 * rs, g > 3 && n > 3);
        gemm_v4 ab01 = __builtin_shufflevector(a, b, 0, 4, 1, 5);  // a0 b0 a1 b1
        gemm_v4 ab23 = __builtin_shufflevector(a, b, 2, 6, 3, 7);
        gemm_v4 ce01 = __builtin_shufflevector(c, e, 0, 4, 1, 5);
        gemm_v4 ce23 = __builtin_shufflevector(c, e, 2, 6, 3, 7);
        gemm_v4 t[4] = {__builtin_shufflevector(ab01, ce01, 0, 1, 4, 5),   // a0 b0 c0 e0
                        __builtin_shufflevector(ab01, ce01, 2, 3, 6, 7),
                        __builtin_shufflevector(ab23, ce23, 0, 1, 4, 5),
                        __builtin_shufflevector(ab23, ce23, 2, 3, 6, 7)};
        for (int j = 0; j < 4; j++) {
            memcpy(d + (size_t)(k + j) * w, &t[j], (size_t)g * sizeof(float));
        }
    }
}
#endif

// k contiguous in the source (rs = stride between rows): a transpose, done in
// 16 x 16 register blocks on AVX-512, 4 x 4 blocks otherwise
static inline void gemm_pack_rows(float *restrict dst, int w, const float *restrict src, size_t rs,
                                  int rows, int kc) {
    int rows_padded = (rows + w - 1) / w * w;
#ifdef __AVX512F__
    for (int r0 = 0; r0 < rows_padded; r0 += 16) {
        // rows r0..r0+7 and r0+8..r0+15 each lie inside one panel (w is a multiple of 8)
        float *dlo = dst + (size_t)(r0 / w) * w * kc + r0 % w;
        float *dhi = dst + (size_t)((r0 + 8) / w) * w * kc + (r0 + 8) % w;
        int has_hi = r0 + 8 < rows_padded;
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int nk = kc - k0 < 16 ? kc - k0 : 16;
            __mmask16 kmask = (__mmask16)((1u << nk) - 1);
            // the next group of 16 rows, same k: a group's worth of work ahead
            for (int i = 16; i < 32 && r0 + i < rows; i++) {
                _mm_prefetch((const char *)(src + (size_t)(r0 + i) * rs + k0), _MM_HINT_T0);
            }
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                v[i] = r0 + i < rows ? _mm512_maskz_loadu_ps(kmask, src + (size_t)(r0 + i) * rs + k0)
                                     : _mm512_setzero_ps();
            }
            gemm_transpose16(v);
            for (int k = 0; k < nk; k++) {
                _mm256_storeu_ps(dlo + (size_t)(k0 + k) * w, _mm512_castps512_ps256(v[k]));
                if (has_hi) {
                    _mm256_storeu_ps(dhi + (size_t)(k0 + k) * w, _mm512_extractf32x8_ps(v[k], 1));
                }
            }
        }
    }
#else
    // Blocks of 4 rows x 4 values of k are transposed in registers (4-float vectors: native on
    // SSE, AVX and NEON), so that a store writes 4 floats, not 1. A panel's rows go 4 at a
    // time, then (w = 6) a pair; values of k past the last multiple of 4 one at a time.
    int kc4 = kc / 4 * 4;
    for (int r0 = 0; r0 < rows_padded; r0 += w) {
        float *d = dst + (size_t)r0 * kc;
        int r = 0;
        for (; r + 4 <= w; r += 4) {
            gemm_pack_row_group(d + r, w, src + (size_t)(r0 + r) * rs, rs, 4, rows - (r0 + r), kc4);
        }
        for (; r + 2 <= w; r += 2) {
            gemm_pack_row_group(d + r, w, src + (size_t)(r0 + r) * rs, rs, 2, rows - (r0 + r), kc4);
        }
        for (r = 0; r < w; r++) {
            for (int k = kc4; k < kc; k++) {
                d[(size_t)k * w + r] = r0 + r < rows ? src[(size_t)(r0 + r) * rs + k] : 0.0f;
            }
        }
    }
#endif
}

// A source block that a later gemm_pack will read (src NULL: none). Its lines are
// prefetched a slice at a time between micro-kernel calls, so that reading it
// from memory overlaps the arithmetic instead of stalling the packing.
typedef struct {
    const float *src;
    size_t rs, cs;
    int rows, kc;
} GemmBlock;

static inline void gemm_prefetch_add(GemmPrefetch *pf, const float *line) {
    if (pf->n < GEMM_PREFETCH_MAX) {
        pf->line[pf->n++] = line;
    } else {
        __builtin_prefetch(line);
    }
}

// adds slice `part` of `parts` of the block's lines to pf (past its room: prefetched now)
static inline void gemm_prefetch_slice(const GemmBlock *blk, int part, int parts, GemmPrefetch *pf) {
    if (blk->src == NULL) {
        return;
    }
    // the block is `outer` contiguous runs of `len` floats, `stride` apart
    int k_runs = blk->cs == 1;
    size_t outer = k_runs ? (size_t)blk->rows : (size_t)blk->kc;
    size_t len = k_runs ? (size_t)blk->kc : (size_t)blk->rows;
    size_t stride = k_runs ? blk->rs : blk->cs;
    for (size_t o = outer * part / parts; o < outer * (part + 1) / parts; o++) {
        const float *p = blk->src + o * stride;
        for (size_t l = 0; l < len; l += 16) {
            gemm_prefetch_add(pf, p + l);
        }
        gemm_prefetch_add(pf, p + len - 1);
    }
}

static inline void gemm_pack(float *dst, int w, const float *src, size_t rs, size_t cs, int rows,
                             int kc) {
    if (rs == 1) {
        gemm_pack_cols(dst, w, src, cs, rows, kc);
    } else {
        gemm_pack_rows(dst, w, src, rs, rows, kc);
    }
}

// ----------------------------------------------------------------------------
// one chunk of C: C[m0:m1, n0:n1] over all of K, on the calling thread

// per-thread packing buffers (see the opening comment): one allocation of
// 2 x GEMM_PACK_FLOATS per thread, made on its first call and freed by a
// thread-exit destructor (OpenMP drops and makes threads when the team size
// changes), so nothing leaks
static pthread_key_t gemm_tls_key;
static pthread_once_t gemm_tls_once = PTHREAD_ONCE_INIT;

static inline void gemm_tls_make_key(void) {
    if (pthread_key_create(&gemm_tls_key, free) != 0) {
        fatal("gemm: pthread_key_create failed");
    }
}

// which == 0: the packed-A buffer, 1: the packed-B buffer
static inline float *gemm_thread_buffer(int which) {
    static _Thread_local float *gemm_tls_pack = NULL;
    if (gemm_tls_pack == NULL) {
        pthread_once(&gemm_tls_once, gemm_tls_make_key);
        gemm_tls_pack = alloc_floats((size_t)2 * GEMM_PACK_FLOATS);
        if (pthread_setspecific(gemm_tls_key, gemm_tls_pack) != 0) {
            fatal("gemm: pthread_setspecific failed");
        }
    }
    return gemm_tls_pack + (size_t)which * GEMM_PACK_FLOATS;
}

// what a thread's packing buffers hold during one call: op(A) rows [a_m0,a_m1)
// (or op(B) columns [b_n0,b_n1)) for all of K, or nothing (-1)
typedef struct {
    int a_m0, a_m1, b_n0, b_n1;
} GemmPacked;

// op(A)[i][k] = A[i*ars + k*acs], op(B)[k][j] = B[k*brs + j*bcs]; load_c0: add to C at pc == 0
static inline void gemm_chunk(int m0, int m1, int n0, int n1, int K, const float *A, size_t ars,
                              size_t acs, const float *B, size_t brs, size_t bcs, int load_c0,
                              float *C, size_t ldc, GemmPacked *held) {
    float *apack = gemm_thread_buffer(0);
    float *bpack = gemm_thread_buffer(1);
    // an operand whose whole chunk-wide slice fits its buffer is packed once and
    // kept, for later k blocks, column blocks and chunks with the same range
    int a_keep = (size_t)((m1 - m0 + GEMM_MR - 1) / GEMM_MR * GEMM_MR) * K <= GEMM_PACK_FLOATS;
    int b_keep = (size_t)((n1 - n0 + GEMM_NR - 1) / GEMM_NR * GEMM_NR) * K <= GEMM_PACK_FLOATS;
    int a_have = a_keep && held->a_m0 == m0 && held->a_m1 == m1;
    int b_have = b_keep && held->b_n0 == n0 && held->b_n1 == n1;
    for (int ic = m0; ic < m1; ic += GEMM_MC) {
        int mc = m1 - ic < GEMM_MC ? m1 - ic : GEMM_MC;
        int mcp = (mc + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
        for (int pc = 0; pc < K; pc += GEMM_KC) {
            int kc = K - pc < GEMM_KC ? K - pc : GEMM_KC;
            // the A block is packed once per (ic, pc) and serves every column block
            float *ap = a_keep ? apack + (size_t)(ic - m0) * K + (size_t)pc * mcp : apack;
            if (!a_have) {
                gemm_pack(ap, GEMM_MR, A + (size_t)ic * ars + (size_t)pc * acs, ars, acs, mc, kc);
            }
            for (int jc = n0; jc < n1; jc += GEMM_NC) {
                int nc = n1 - jc < GEMM_NC ? n1 - jc : GEMM_NC;
                int ncp = (nc + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
                float *bp = b_keep ? bpack + (size_t)(jc - n0) * K + (size_t)pc * ncp : bpack;
                if (b_keep ? !b_have && ic == m0 : 1) {
                    gemm_pack(bp, GEMM_NR, B + (size_t)pc * brs + (size_t)jc * bcs, bcs, brs, nc, kc);
                }
                // the blocks the next step of this loop nest will pack, to prefetch meanwhile
                int njc = jc + GEMM_NC, npc = pc, nic = ic;
                if (njc >= n1) {
                    njc = n0;
                    npc += GEMM_KC;
                    if (npc >= K) {
                        npc = 0;
                        nic += GEMM_MC;
                    }
                }
                GemmBlock next_a = {0}, next_b = {0};
                if (nic < m1) {
                    int nkc = K - npc < GEMM_KC ? K - npc : GEMM_KC;
                    if (!a_have && njc == n0) {
                        next_a = (GemmBlock){A + (size_t)nic * ars + (size_t)npc * acs, ars, acs,
                                             m1 - nic < GEMM_MC ? m1 - nic : GEMM_MC, nkc};
                    }
                    if (b_keep ? !b_have && nic == m0 : 1) {
                        next_b = (GemmBlock){B + (size_t)npc * brs + (size_t)njc * bcs, bcs, brs,
                                             n1 - njc < GEMM_NC ? n1 - njc : GEMM_NC, nkc};
                    }
                }
                int load_c = pc > 0 || load_c0;
                int tiles = (mc + GEMM_MR - 1) / GEMM_MR * ((nc + GEMM_NR - 1) / GEMM_NR), tile = 0;
                for (int ir = 0; ir < mc; ir += GEMM_MR) {
                    int mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                    const float *a = ap + (size_t)ir * kc;
                    for (int jr = 0; jr < nc; jr += GEMM_NR, tile++) {
                        int nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                        const float *b = bp + (size_t)jr * kc;
                        float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                        GemmPrefetch pf;
                        pf.n = 0;
                        gemm_prefetch_slice(&next_a, tile, tiles, &pf);
                        gemm_prefetch_slice(&next_b, tile, tiles, &pf);
                        if (load_c) {
                            gemm_prefetch_c_tile(c, ldc, mr, nr);
                        }
                        if (mr == GEMM_MR && nr == GEMM_NR) {
                            gemm_kernel(kc, a, b, c, ldc, load_c, &pf);
                        } else {
                            gemm_kernel_edge(kc, a, b, c, ldc, load_c, mr, nr, &pf);
                        }
                    }
                }
            }
        }
    }
    if (a_keep) {
        held->a_m0 = m0;
        held->a_m1 = m1;
    }
    if (b_keep) {
        held->b_n0 = n0;
        held->b_n1 = n1;
    }
}

// ----------------------------------------------------------------------------
// entry point

#ifdef _OPENMP
// Waits until every thread of the team has finished its chunks: a short spin,
// then naps. OpenMP's own barrier would spin for milliseconds, keeping this
// core busy; when a teammate is queued behind another process on the other
// core, an idle core here lets the kernel move it over at once. On a quiet
// machine teammates finish within the spin and nothing sleeps. (Correctness
// does not depend on this: the region's closing barrier still synchronises.)
static inline void gemm_team_wait(int *finished) {
    int done, team = omp_get_num_threads();
#pragma omp atomic capture
    done = ++*finished;
    double spin_until = omp_get_wtime() + GEMM_SPIN_SECONDS;
    while (done < team) {
        if (omp_get_wtime() > spin_until) {
            struct timespec nap = {0, GEMM_NAP_NS};
            nanosleep(&nap, NULL);
        }
#pragma omp atomic read
        done = *finished;
    }
}
#endif

static inline void gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    if (M < 0 || N < 0 || K < 0) {
        fatal("gemm: negative size M=%d N=%d K=%d", M, N, K);
    }
    if (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N) || ldc < N) {
        fatal("gemm: leading dimension too small: lda=%d ldb=%d ldc=%d for M=%d N=%d K=%d "
              "trans_a=%d trans_b=%d", lda, ldb, ldc, M, N, K, trans_a, trans_b);
    }
    if (M == 0 || N == 0) {
        return;
    }
    if (beta != 0.0f && beta != 1.0f) {  // general beta: scale first, then accumulate
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                C[(size_t)i * ldc + j] *= beta;
            }
        }
    }
    if (K == 0) {
        if (beta == 0.0f) {
            for (int i = 0; i < M; i++) {
                memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
            }
        }
        return;
    }
    size_t ars = trans_a ? 1 : (size_t)lda, acs = trans_a ? (size_t)lda : 1;
    size_t brs = trans_b ? 1 : (size_t)ldb, bcs = trans_b ? (size_t)ldb : 1;
    int load_c0 = beta != 0.0f;

    // Chunks: C is cut along its longer side into strips of whole tiles, handed
    // to threads as they come free (a thread slowed by another process just
    // takes fewer). Every chunk needs all of the other operand; when that fits
    // a thread's buffer it is packed once per thread, so small chunks cost
    // nothing and there are several per thread; otherwise a chunk is a full
    // packing block, so the repacking is amortised over NC columns (MC rows).
    int split_n = N >= M;
    int unit = split_n ? GEMM_NR : GEMM_MR;
    int units = ((split_n ? N : M) + unit - 1) / unit;
    int other = split_n ? (M + GEMM_MR - 1) / GEMM_MR * GEMM_MR : (N + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    int kept = (size_t)other * K <= GEMM_PACK_FLOATS;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    int per_thread = kept ? GEMM_CHUNKS_PER_THREAD : 1;
    int chunk = (units + per_thread * threads - 1) / (per_thread * threads);
    int min_chunk = split_n ? GEMM_NC / GEMM_NR : GEMM_MC / GEMM_MR;
    if (!kept && chunk < min_chunk) {
        chunk = min_chunk;
    }
    int chunks = (units + chunk - 1) / chunk;
    int parallel = (double)M * N * K >= GEMM_PARALLEL_MIN_FMAS && chunks > 1;
    int finished = 0;  // threads done with their chunks
    (void)parallel;
    (void)finished;
#ifdef _OPENMP
#pragma omp parallel if (parallel)
#endif
    {
        GemmPacked held = {-1, -1, -1, -1};
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1) nowait
#endif
        for (int ch = 0; ch < chunks; ch++) {
            int lo = ch * chunk * unit, hi = (ch + 1) * chunk * unit;
            if (split_n) {
                gemm_chunk(0, M, lo, hi < N ? hi : N, K, A, ars, acs, B, brs, bcs, load_c0, C, ldc, &held);
            } else {
                gemm_chunk(lo, hi < M ? hi : M, 0, N, K, A, ars, acs, B, brs, bcs, load_c0, C, ldc, &held);
            }
        }
#ifdef _OPENMP
        gemm_team_wait(&finished);
#endif
    }
}

#endif  // LLMC_GEMM_H
