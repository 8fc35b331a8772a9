// dev/emu/tests/ptx.cu: the emulation of the PTX instructions llmc/ptx.cuh
// wraps. mma.sync m16n8k16 (bf16 -> fp32), ldmatrix x4 (with and without
// .trans) and movmatrix .trans against register layouts written out here
// from the PTX ISA's tables, independently of dev/emu/emu_ptx.h's code;
// cp.async in a two-buffer pipeline; wgmma (sm_90a) against the PTX ISA's
// wgmma register and shared-memory (no swizzle) layouts, written out here
// too.
//   ptx           one warp: fragments built by hand from A (16,16) and B
//                 (16,16) in shared memory, D = A B + C for both 8-column
//                 halves of B, against the CPU; ldmatrix_x4 of A's four 8x8
//                 quarters and ldmatrix_x4_trans of B's must give exactly
//                 the hand-built registers, movmatrix_trans of A's
//                 registers those of A's quarters transposed. Then the pipeline: 64 threads
//                 sum 6 tiles of (64,4) floats, each tile loaded by cp.async
//                 while the previous one is read, each thread reading a
//                 slot another warp copied: right in every mode. Then the
//                 scalar wrappers against values worked out from the PTX
//                 ISA: ex2_approx flushes results below 2^-126 to +0
//                 (.ftz), pack_bf16x2 rounds to nearest, ties to even.
//                 Then what ptx wgmma checks
//   ptx wgmma     one warpgroup (128 threads): wgmma_ss<64> D = A1 B1^T
//                 (accumulate 0) then += A2 B2^T, wgmma_ss<32> E = C + A2 B1^T
//                 (B1's first 32 n), A and B (n, k) K-major in shared memory
//                 at lbo, sbo that are not the packed ones, unused bytes NaN
//                 (A1 landed by cp.async, then fence_proxy_async); wgmma_rs_mn<64>
//                 and <32>, A registers built by hand, B (k, n) MN-major,
//                 onto C; each order fence, wgmmas, commit, wait<0>. Exact
//                 against the CPU (small integers). Emulation only: the
//                 accumulators read between commit and wait still hold their
//                 old values (an mma_async runs at its wait, the late end of
//                 its window; on a device they are undefined, not read)
//                 On a mismatch it runs the kernel again with lbo and sbo
//                 swapped in every descriptor and says which results that
//                 puts right: the K-major descriptors (SS) or the MN-major
//                 ones (RS's B) read the other way round, the likeliest
//                 wrong assumption, is named on the device's first run.
//                 Checked here with EMU_WGMMA_SWAPPED_STRIDES=k, mn, both
//                 (an emulated device that reads them so): the check must
//                 fail and name what is swapped
//   ptx wgmma_nofence
//                 the SS wgmmas with no wgmma_fence before them: the emulator
//                 must stop (without a wgmma.fence); the nvcc build fences
//   ptx wgmma_noproxy
//                 A1's cp.async landed with no fence_proxy_async before the
//                 wgmma reads it: the emulator must stop
//   ptx wgmma_block64
//                 the wgmma kernel launched with 64 threads: the emulator
//                 must stop (blocks of one warpgroup)
//   ptx wgmma_achange
//                 an A register of the RS wgmmas changed after their issue,
//                 before the wait (the device reads it until then): the
//                 emulator must stop
//   ptx halfwarp  an mma only lanes 0..15 reach: the emulator must stop
//                 (inactive lane)
//   ptx misaligned
//                 ldmatrix from row addresses 8 bytes off a 16-byte
//                 boundary: the device requires 16-byte rows, so the
//                 emulator must stop
//   ptx global_ldmatrix
//                 ldmatrix from the kernel's global input instead of its
//                 shared copy: the emulator must stop (shared memory only)
//   ptx nowait    the pipeline without its cp_async_wait: the sums must
//                 come out wrong (copies land at the wait, by default)
//   ptx norefill_barrier
//                 the pipeline without the barrier after each tile's reads,
//                 so a warp may refill a buffer the other still reads: wrong
//                 with EMU_CP_ASYNC=early EMU_WARPS=serial (forward order)
// Real CUDA: compiles with nvcc too (sm_80 and sm_90a: the wgmma wrappers
// trap on sm_80; the wgmma checks run on an sm_90 device only).
#include <string.h>
#include "common.cuh"
#include "../../../llmc/ptx.cuh"

// the hand-built fragments: with g = lane / 4, t = lane % 4, two bf16 per
// register, the lower column (or k) in the low half
__device__ uint32_t pair(const __nv_bfloat16* p, int stride) {   // p[0], p[stride]
    return (uint32_t)__bfloat16_as_ushort(p[0]) | (uint32_t)__bfloat16_as_ushort(p[stride]) << 16;
}

// out: D (16,16) row-major (columns 0..7 from B's first half, 8..15 its
// second), then (as 0/1 floats) whether ldmatrix gave the hand-built registers
__global__ void mma_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b, const float* c,
                           int half_warp, int bad_rows) {
    __shared__ __align__(16) __nv_bfloat16 sa[16 * 24];   // rows padded to 24 (48 bytes: 16-byte aligned rows)
    __shared__ __align__(16) __nv_bfloat16 sb[16 * 24];
    const int lane = (int)threadIdx.x, g = lane / 4, t = lane % 4;
    for (int i = lane; i < 256; i += 32) sa[i / 16 * 24 + i % 16] = a[i], sb[i / 16 * 24 + i % 16] = b[i];
    __syncwarp();
    // A: A[g][2t..], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]
    const uint32_t fa[4] = {pair(sa + g * 24 + 2 * t, 1), pair(sa + (g + 8) * 24 + 2 * t, 1),
                            pair(sa + g * 24 + 2 * t + 8, 1), pair(sa + (g + 8) * 24 + 2 * t + 8, 1)};
    // B (k,n) for columns n0 = 0 and 8: B[2t, 2t+1][n0+g], B[2t+8, 2t+9][n0+g]
    uint32_t fb[2][2];
    for (int h = 0; h < 2; h++) {
        fb[h][0] = pair(sb + 2 * t * 24 + 8 * h + g, 24);
        fb[h][1] = pair(sb + (2 * t + 8) * 24 + 8 * h + g, 24);
    }
    if (half_warp && lane >= 16) return;
    for (int h = 0; h < 2; h++) {
        // C, D: C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]
        float d[4] = {c[g * 16 + 8 * h + 2 * t], c[g * 16 + 8 * h + 2 * t + 1], c[(g + 8) * 16 + 8 * h + 2 * t],
                      c[(g + 8) * 16 + 8 * h + 2 * t + 1]};
        mma_bf16_16816(d, fa, fb[h][0], fb[h][1]);
        out[g * 16 + 8 * h + 2 * t] = d[0];
        out[g * 16 + 8 * h + 2 * t + 1] = d[1];
        out[(g + 8) * 16 + 8 * h + 2 * t] = d[2];
        out[(g + 8) * 16 + 8 * h + 2 * t + 1] = d[3];
    }
    // lane l gives row l % 8 of matrix l / 8: A's quarters in fragment order
    // (rows 0-7 | 8-15, then columns 0-7 | 8-15); B's (k rows 0-7 | 8-15,
    // then n columns 0-7 | 8-15), read transposed
    const int r = lane % 8 + 8 * (lane / 8 % 2), col = 8 * (lane / 16) + (bad_rows == 1 ? 4 : 0);
    uint32_t la[4], lb[4];
    ldmatrix_x4(la, bad_rows == 2 ? a + r * 16 + col : sa + r * 24 + col);
    ldmatrix_x4_trans(lb, sb + r * 24 + col);
    int same = 1;
    for (int i = 0; i < 4; i++) same &= la[i] == fa[i];
    for (int i = 0; i < 4; i++) same &= lb[i] == fb[i / 2][i % 2];
    // movmatrix of A's quarter i (rows R.., columns K..) gives A[R+2t, R+2t+1][K+g]
    for (int i = 0; i < 4; i++)
        same &= movmatrix_trans(fa[i]) == pair(sa + (8 * (i % 2) + 2 * t) * 24 + 8 * (i / 2) + g, 24);
    out[256 + lane] = (float)same;
}

#define PIPE_THREADS 64
#define PIPE_TILES 6

// out (64,4): out[i] = the sum over the tiles of in[t] (64,4)'s row (i + 32)
// % 64, a row the other warp copied; mode 1 drops the wait, mode 2 the
// barrier before a buffer is refilled
__global__ void pipeline_kernel(float* out, const float* in, int mode) {
    __shared__ __align__(16) float buf[2][PIPE_THREADS * 4];
    const int i = (int)threadIdx.x, j = (i + 32) % PIPE_THREADS;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    cp_async16(&buf[0][4 * i], in + 4 * i);
    cp_async_commit();
    for (int t = 0; t < PIPE_TILES; t++) {
        if (t + 1 < PIPE_TILES) cp_async16(&buf[(t + 1) % 2][4 * i], in + (t + 1) * PIPE_THREADS * 4 + 4 * i);
        cp_async_commit();
        if (mode != 1) cp_async_wait<1>();
        __syncthreads();
        for (int k = 0; k < 4; k++) acc[k] += buf[t % 2][4 * j + k];
        if (mode != 2) __syncthreads();
    }
    for (int k = 0; k < 4; k++) out[4 * i + k] = acc[k];
}

// out: ex2_approx at x[0..3], then pack_bf16x2 of (x[4], x[5]) and (x[6], x[7]) as bits
__global__ void scalar_kernel(uint32_t* out, const float* x) {
    for (int i = 0; i < 4; i++) {
        const float r = ex2_approx(x[i]);
        out[i] = *(const uint32_t*)&r;
    }
    out[4] = pack_bf16x2(x[4], x[5]);
    out[5] = pack_bf16x2(x[6], x[7]);
}

static int check_scalars(void) {
    // 2^-127.5 is a subnormal: flushed; 2^-125 is normal; 2^0 = 1; 2^-inf = 0.
    // bf16 keeps 8 significant bits: 1 + 2^-8 is halfway between 1 (0x3f80) and
    // 1 + 2^-7 (0x3f81), so it rounds to the even 0x3f80; 1 + 3 2^-9 is past it
    // (0x3f81); 3 is 0x4040, -2 is 0xc000
    const float x[8] = {-127.5f, -125.0f, 0.0f, -INFINITY, 1.0f + 0x1p-8f, 3.0f, 1.0f + 0x3p-9f, -2.0f};
    uint32_t got[6];
    float* d_x;
    uint32_t* d_out;
    cuda_check(cudaMalloc(&d_x, sizeof(x)));
    cuda_check(cudaMalloc(&d_out, sizeof(got)));
    cuda_check(cudaMemcpy(d_x, x, sizeof(x), cudaMemcpyHostToDevice));
    scalar_kernel<<<1, 1>>>(d_out, d_x);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
    float e[4];
    memcpy(e, got, sizeof(e));
    if (!(e[0] == 0.0f && !signbit(e[0])) || !(fabsf(e[1] / 0x1p-125f - 1.0f) <= 0x1p-20f) || e[2] != 1.0f ||
        !(e[3] == 0.0f)) {
        fprintf(stderr, "error: ex2_approx: 2^-127.5, 2^-125, 2^0, 2^-inf gave %g, %g, %g, %g; want 0, %g, 1, 0\n",
                e[0], e[1], e[2], e[3], 0x1p-125f);
        return 1;
    }
    if (got[4] != 0x40403f80u || got[5] != 0xc0003f81u) {
        fprintf(stderr, "error: pack_bf16x2 gave %08x, %08x; want 40403f80, c0003f81\n", got[4], got[5]);
        return 1;
    }
    printf("ptx: ex2_approx flushes subnormal results, pack_bf16x2 rounds to nearest even\n");
    return 0;
}

static int check_pipeline(int mode) {
    const int n = PIPE_TILES * PIPE_THREADS * 4;
    float in[n], want[PIPE_THREADS * 4], got[PIPE_THREADS * 4];
    fill_random(in, n, 21);
    for (int i = 0; i < PIPE_THREADS * 4; i++) {
        int j = ((i / 4 + 32) % PIPE_THREADS) * 4 + i % 4;
        want[i] = 0.0f;
        for (int t = 0; t < PIPE_TILES; t++) want[i] += in[t * PIPE_THREADS * 4 + j];
    }
    float *d_in, *d_out;
    cuda_check(cudaMalloc(&d_in, sizeof(in)));
    cuda_check(cudaMalloc(&d_out, sizeof(got)));
    cuda_check(cudaMemcpy(d_in, in, sizeof(in), cudaMemcpyHostToDevice));
    pipeline_kernel<<<1, PIPE_THREADS>>>(d_out, d_in, mode);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_in));
    cuda_check(cudaFree(d_out));
    for (int i = 0; i < PIPE_THREADS * 4; i++)
        if (!(got[i] == want[i])) {   // the same additions in the same order
            fprintf(stderr, "error: cp.async pipeline: mismatch vs the CPU reference at %d: %g, want %g\n", i,
                    got[i], want[i]);
            return 1;
        }
    printf("ptx: the cp.async pipeline matches the CPU\n");
    return 0;
}

// ----------------------------------------------------------------------------
// wgmma: layouts from the PTX ISA ("Register Fragments and Shared Memory
// Matrix Layouts" for wgmma), written out here. With thread i = 32w + 4g + t
// (warp w, g = lane / 4, t = lane % 4): accumulator v at row 16w + g +
// 8 ((v % 4) / 2), column 8 (v / 4) + 2t + v % 2; A register r (bf16 half h,
// low first) at row 16w + g + 8 (r % 2), k 8 (r / 2) + 2t + h. In shared
// memory (swizzle mode 0) an operand is core matrices of 8 rows of 16 bytes:
// element (mn, k) K-major at (mn / 8) sbo + (k / 8) lbo + 16 (mn % 8) +
// 2 (k % 8), MN-major at (mn / 8) sbo + (k / 8) lbo + 16 (k % 8) + 2 (mn % 8).
__device__ int acc_row(int i, int v) { return 16 * (i / 32) + i % 32 / 4 + 8 * (v % 4 / 2); }
__device__ int acc_col(int i, int v) { return 8 * (v / 4) + 2 * (i % 4) + v % 2; }
// this thread's accumulator d of a (64,N) result from / to the row-major
// (64,N) matrix m
template <int N>
__device__ void load_acc(float (&d)[N / 2], const float* m) {
    const int i = (int)threadIdx.x;
    for (int v = 0; v < N / 2; v++) d[v] = m[N * acc_row(i, v) + acc_col(i, v)];
}
template <int N>
__device__ void store_acc(float* m, const float (&d)[N / 2]) {
    const int i = (int)threadIdx.x;
    for (int v = 0; v < N / 2; v++) m[N * acc_row(i, v) + acc_col(i, v)] = d[v];
}
// the accumulators as read between commit and wait: under the emulation
// their old values; on a device they are undefined then, so not read (0)
template <int K>
__device__ void read_early(float (&early)[K], const float (&d)[K]) {
#ifdef CUDA_EMU
    for (int v = 0; v < K; v++) early[v] = d[v];
#else
    (void)d;
    for (int v = 0; v < K; v++) early[v] = 0.0f;
#endif
}
__device__ int core_offset(int mn, int k, int lbo, int sbo, int mn_major) {
    return mn / 8 * sbo + k / 8 * lbo + (mn_major ? 16 * (k % 8) + 2 * (mn % 8) : 16 * (mn % 8) + 2 * (k % 8));
}

#define WG_THREADS 128
// the operands' places in shared memory: byte offset in their buffer, lbo,
// sbo; none packed (core matrices 128 bytes apart along one dimension, all
// of them along the other), each with gaps, so lbo and sbo swapped (or
// either taken as the packed value) read other bytes (poison, or another
// operand). K-major, (mn, 16):
#define SS_A1 0, 144, 320      // k core matrices 144 apart (a 16-byte gap), mn 320 (32 more): ends at 2512
#define SS_B1 2560, 1040, 128  // n core matrices packed, the k halves 1040 apart: ends at 4624
#define SS_A2 4864, 1056, 128  // ends at 6944
#define SS_B2 7168, 160, 352   // ends at 9920
#define SS_BYTES 12544         // what the probe's swapped descriptors reach (A2's: 12512)
// MN-major, (16, n):
#define RS_B64 0, 144, 304     // ends at 2400
#define RS_B32 2448, 560, 128  // not 128-byte aligned (16 is what a descriptor needs): ends at 3520
#define RS_BYTES 4480          // swapped, B32 reaches 4384
constexpr int operand_end(int n, int offset, int lbo, int sbo) { return offset + (n / 8 - 1) * sbo + lbo + 128; }
constexpr int swapped_end(int n, int offset, int lbo, int sbo) { return operand_end(n, offset, sbo, lbo); }
static_assert(operand_end(64, SS_A1) <= 2560 && operand_end(64, SS_B1) <= 4864 && operand_end(64, SS_A2) <= 7168 &&
                  operand_end(64, SS_B2) <= SS_BYTES && operand_end(64, RS_B64) <= 2448 &&
                  operand_end(32, RS_B32) <= RS_BYTES,
              "wgmma operands overlap");
static_assert(swapped_end(64, SS_A1) <= SS_BYTES && swapped_end(64, SS_B1) <= SS_BYTES &&
                  swapped_end(64, SS_A2) <= SS_BYTES && swapped_end(64, SS_B2) <= SS_BYTES &&
                  swapped_end(64, RS_B64) <= RS_BYTES && swapped_end(32, RS_B32) <= RS_BYTES,
              "the probe's swapped descriptors reach past their buffer");

// the inputs, bf16 (in) and fp32 (c), at these element offsets; A1, B1, A2,
// B2 and AR (64,16) row-major (B1, B2 as (n, k)), B64 (16,64), B32 (16,32)
#define IN_A1 0
#define IN_B1 1024
#define IN_A2 2048
#define IN_B2 3072
#define IN_AR 4096
#define IN_B64 5120
#define IN_B32 6144
#define IN_N 6656
#define C_SS 0        // (64,64)
#define C_64 4096     // (64,64)
#define C_32 8192     // (64,32)
#define C_SS32 10240  // (64,32)
#define C_N 12288
// the outputs: each result and its copy taken between commit and wait
#define OUT_SS 0
#define OUT_SS_EARLY 4096
#define OUT_64 8192
#define OUT_64_EARLY 12288
#define OUT_32 16384
#define OUT_32_EARLY 18432
#define OUT_SS32 20480
#define OUT_SS32_EARLY 22528
#define OUT_N 24576

// the descriptor of an operand at base + offset (lbo and sbo exchanged if
// swapped: the probe of a device that reads them the other way round); the
// byte offset of its element (mn, k)
__device__ uint64_t desc_at(const char* base, int offset, int lbo, int sbo, int swapped) {
    return swapped ? wgmma_desc(base + offset, sbo, lbo) : wgmma_desc(base + offset, lbo, sbo);
}
__device__ int place_at(int offset, int lbo, int sbo, int mn, int k, int mn_major) {
    return offset + core_offset(mn, k, lbo, sbo, mn_major);
}

// places src (16 * n elements: (n, 16) row-major if K-major, (16, n) if
// MN-major) at base + offset in the core-matrix layout
__device__ void place(char* base, const __nv_bfloat16* src, int n, int mn_major, int offset, int lbo, int sbo) {
    for (int j = (int)threadIdx.x; j < 16 * n; j += WG_THREADS) {
        const int mn = mn_major ? j % n : j / 16, k = mn_major ? j / n : j % 16;
        *(unsigned short*)(base + place_at(offset, lbo, sbo, mn, k, mn_major)) = __bfloat16_as_ushort(src[j]);
    }
}

#define WG_GOOD 0
#define WG_NOFENCE 1   // no wgmma_fence before the first wgmma
#define WG_NOPROXY 2   // A1 read after its cp.async with no fence_proxy_async
#define WG_BLOCK64 3   // launched with 64 threads
#define WG_ACHANGE 4   // an A register of the RS wgmmas changed between their issue and the wait

// (1) SS: D = A1 B1^T (accumulate 0: D's old values, C_SS, ignored), then
// D += A2 B2^T; and N 32: E = C_SS32 + A2 B1[:32]^T (B1's first 4 core
// matrices along n, the same descriptor). (2) RS: D64 = C_64 + AR B64, D32 = C_32 + AR B32, AR's
// registers built by hand. A1 arrives by cp.async, the rest by plain
// stores; every byte of the buffers the operands do not use is NaN.
// swapped: bit 0 swaps lbo and sbo in the K-major descriptors, bit 1 in
// the MN-major ones (the operands stay where they are)
__global__ void wgmma_kernel(float* out, const __nv_bfloat16* in, const float* c, int mode, int swapped) {
    __shared__ __align__(128) unsigned short ss[SS_BYTES / 2];
    __shared__ __align__(128) unsigned short rs[RS_BYTES / 2];
    const int i = (int)threadIdx.x, w = i / 32, g = i % 32 / 4, t = i % 4;
    char *ssb = (char*)ss, *rsb = (char*)rs;
    for (int j = i; j < SS_BYTES / 2; j += WG_THREADS) ss[j] = 0xFFFF;   // bf16 NaN
    for (int j = i; j < RS_BYTES / 2; j += WG_THREADS) rs[j] = 0xFFFF;
    __syncthreads();
    // A1: thread i copies row i / 2's 8 k from 8 (i % 2), one core-matrix row
    cp_async16(ssb + place_at(SS_A1, i / 2, 8 * (i % 2), 0), in + IN_A1 + 16 * (i / 2) + 8 * (i % 2));
    cp_async_commit();
    place(ssb, in + IN_B1, 64, 0, SS_B1);
    place(ssb, in + IN_A2, 64, 0, SS_A2);
    place(ssb, in + IN_B2, 64, 0, SS_B2);
    place(rsb, in + IN_B64, 64, 1, RS_B64);
    place(rsb, in + IN_B32, 32, 1, RS_B32);
    cp_async_wait<0>();
    if (mode != WG_NOPROXY) fence_proxy_async();   // this thread's writes, for the wgmmas' async proxy
    __syncthreads();                               // everyone's

    // (1) SS
    float d[32], e[16], early[32], early_e[16];
    load_acc<64>(d, c + C_SS);
    load_acc<32>(e, c + C_SS32);
    wgmma_fence_operands(d);   // (llmc/ptx.cuh: keeps the compiler's register moves out of the batch)
    wgmma_fence_operands(e);
#ifdef CUDA_EMU
    if (mode != WG_NOFENCE) wgmma_fence();
#else   // wgmma_nofence is for the emulator; made conditional, ptxas adds the fence itself (note C7519)
    wgmma_fence();
#endif
    const int k_swapped = swapped & 1, mn_swapped = swapped & 2;
    wgmma_ss<64>(d, desc_at(ssb, SS_A1, k_swapped), desc_at(ssb, SS_B1, k_swapped), 0);
    wgmma_ss<64>(d, desc_at(ssb, SS_A2, k_swapped), desc_at(ssb, SS_B2, k_swapped), 1);
    wgmma_ss<32>(e, desc_at(ssb, SS_A2, k_swapped), desc_at(ssb, SS_B1, k_swapped), 1);
    wgmma_commit();
    read_early(early, d);
    read_early(early_e, e);
    wgmma_wait<0>();
    wgmma_fence_operands(d);
    wgmma_fence_operands(e);
    store_acc<64>(out + OUT_SS, d);
    store_acc<64>(out + OUT_SS_EARLY, early);
    store_acc<32>(out + OUT_SS32, e);
    store_acc<32>(out + OUT_SS32_EARLY, early_e);

    // (2) RS: register r holds AR[16w + g + 8 (r % 2)][8 (r / 2) + 2t + {0, 1}]
    uint32_t a[1][4];
    for (int r = 0; r < 4; r++) a[0][r] = pair(in + IN_AR + 16 * (16 * w + g + 8 * (r % 2)) + 8 * (r / 2) + 2 * t, 1);
    float d64[32], d32[16], early64[32], early32[16];
    load_acc<64>(d64, c + C_64);
    load_acc<32>(d32, c + C_32);
    wgmma_fence_operands(d64);
    wgmma_fence_operands(d32);
    wgmma_fence_operands(a);
    wgmma_fence();
    wgmma_rs_mn<64>(d64, a[0], desc_at(rsb, RS_B64, mn_swapped));
    wgmma_rs_mn<32>(d32, a[0], desc_at(rsb, RS_B32, mn_swapped));
    wgmma_commit();
#ifdef CUDA_EMU
    if (mode == WG_ACHANGE) a[0][3] ^= 1u;
#endif
    read_early(early64, d64);
    read_early(early32, d32);
    wgmma_wait<0>();
    wgmma_fence_operands(d64);
    wgmma_fence_operands(d32);
    wgmma_fence_operands(a);
    store_acc<64>(out + OUT_64, d64);
    store_acc<64>(out + OUT_64_EARLY, early64);
    store_acc<32>(out + OUT_32, d32);
    store_acc<32>(out + OUT_32_EARLY, early32);
}

// exact: got == want, both (64, cols) row-major; the first mismatch
// reported unless quiet
static int same_matrix(const char* what, const float* got, const float* want, int cols, int quiet = 0) {
    for (int j = 0; j < 64 * cols; j++)
        if (!(got[j] == want[j])) {
            if (!quiet)
                fprintf(stderr, "error: %s: mismatch vs the CPU reference at [%d][%d]: %g, want %g\n", what, j / cols,
                        j % cols, got[j], want[j]);
            return 1;
        }
    return 0;
}

// the kernel's results against the CPU's: whether the SS ones (N 64, 32)
// and the RS ones differ (bit 0, bit 1)
static int wgmma_mismatches(const float* got, const float* want, int quiet) {
    const int ss = same_matrix("wgmma m64n64k16 A, B in shared memory", got + OUT_SS, want + OUT_SS, 64, quiet) ||
                   same_matrix("wgmma m64n32k16 A, B in shared memory", got + OUT_SS32, want + OUT_SS32, 32, quiet);
    const int rs =
        same_matrix("wgmma m64n64k16 A in registers, B MN-major", got + OUT_64, want + OUT_64, 64, quiet) ||
        same_matrix("wgmma m64n32k16 A in registers, B MN-major", got + OUT_32, want + OUT_32, 32, quiet);
    return ss | rs << 1;
}

// wgmma_kernel once (mode, swapped as there) on the inputs in (IN_N) and c
// (C_N) -> got (OUT_N)
static void run_wgmma(float* got, const __nv_bfloat16* in, const float* c, int mode, int swapped) {
    __nv_bfloat16* d_in;
    float *d_c, *d_out;
    cuda_check(cudaMalloc(&d_in, IN_N * sizeof(*in)));
    cuda_check(cudaMalloc(&d_c, C_N * sizeof(*c)));
    cuda_check(cudaMalloc(&d_out, OUT_N * sizeof(*got)));
    cuda_check(cudaMemcpy(d_in, in, IN_N * sizeof(*in), cudaMemcpyHostToDevice));
    cuda_check(cudaMemcpy(d_c, c, C_N * sizeof(*c), cudaMemcpyHostToDevice));
    wgmma_kernel<<<1, mode == WG_BLOCK64 ? 64 : WG_THREADS>>>(d_out, d_in, d_c, mode, swapped);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, OUT_N * sizeof(*got), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_in));
    cuda_check(cudaFree(d_c));
    cuda_check(cudaFree(d_out));
}

// after a mismatch (bad: wgmma_mismatches' bits), the likeliest wrong
// assumption, checked on the spot: the same kernel with lbo and sbo swapped
// in every descriptor. The SS results depend only on the K-major
// descriptors, the RS ones only on the MN-major one, so one run tells
// which kind (if either) this device reads the other way round.
static void diagnose_wgmma_strides(int bad, const __nv_bfloat16* in, const float* c, const float* want) {
    static float got[OUT_N];
    run_wgmma(got, in, c, WG_GOOD, 3);
    const int still = wgmma_mismatches(got, want, 1);
    const char* kind[2] = {"K-major (the SS operands)", "MN-major (the RS B operand)"};
    for (int b = 0; b < 2; b++) {
        if (!(bad >> b & 1)) continue;
        if (still >> b & 1)
            fprintf(stderr, "error: wgmma probe: lbo and sbo swapped in the %s descriptors do not put it right "
                    "either: the layouts themselves (registers, core matrices, imm-trans-b) differ\n", kind[b]);
        else
            fprintf(stderr, "error: wgmma probe: with lbo and sbo swapped in the %s descriptors the results match: "
                    "this device reads them the other way round (swap them in llmc/attention_wgmma.cuh's "
                    "attnw_desc_%s, in dev/emu/emu_ptx.h's emu_wgmma_element_at and in this test's desc_at, "
                    "and say so where llmc/ptx.cuh defines lbo and sbo)\n", kind[b], b ? "mn_major" : "k_major");
    }
}

static int check_wgmma(int mode) {
    cudaDeviceProp prop;
    cuda_check(cudaGetDeviceProperties(&prop, 0));
    if (prop.major != 9 || prop.minor != 0) {   // the sm_90a build (the emulator says 9.0)
        printf("ptx: wgmma skipped (sm_%d%d, not sm_90)\n", prop.major, prop.minor);
        return 0;
    }
    // small integers: the bf16 inputs are exact, every fp32 sum too
    static float vals[IN_N], c[C_N], got[OUT_N], want[OUT_N];
    static __nv_bfloat16 in[IN_N];
    fill_random(vals, IN_N, 31);
    fill_random(c, C_N, 32);
    for (int j = 0; j < IN_N; j++) in[j] = __float2bfloat16(floorf(4.0f * vals[j])), vals[j] = __bfloat162float(in[j]);
    for (int j = 0; j < C_N; j++) c[j] = floorf(64.0f * c[j]);
    for (int m = 0; m < 64; m++) {
        for (int n = 0; n < 64; n++) {
            double s = 0.0, s64 = c[C_64 + 64 * m + n];
            for (int k = 0; k < 16; k++) {
                s += (double)vals[IN_A1 + 16 * m + k] * vals[IN_B1 + 16 * n + k] +
                     (double)vals[IN_A2 + 16 * m + k] * vals[IN_B2 + 16 * n + k];
                s64 += (double)vals[IN_AR + 16 * m + k] * vals[IN_B64 + 64 * k + n];
            }
            want[OUT_SS + 64 * m + n] = (float)s;
            want[OUT_64 + 64 * m + n] = (float)s64;
        }
        for (int n = 0; n < 32; n++) {
            double s = c[C_32 + 32 * m + n], e = c[C_SS32 + 32 * m + n];
            for (int k = 0; k < 16; k++) {
                s += (double)vals[IN_AR + 16 * m + k] * vals[IN_B32 + 32 * k + n];
                e += (double)vals[IN_A2 + 16 * m + k] * vals[IN_B1 + 16 * n + k];
            }
            want[OUT_32 + 32 * m + n] = (float)s;
            want[OUT_SS32 + 32 * m + n] = (float)e;
        }
    }
    run_wgmma(got, in, c, mode, 0);
    if (const int bad = wgmma_mismatches(got, want, 0)) {
        if (mode == WG_GOOD) diagnose_wgmma_strides(bad, in, c, want);
        return 1;
    }
#ifdef CUDA_EMU
    // the emulation runs an mma_async at the wait (the late end of its
    // window): read before it, the accumulators hold their old values
    if (same_matrix("wgmma accumulators read before the wait (SS, N 64)", got + OUT_SS_EARLY, c + C_SS, 64) ||
        same_matrix("wgmma accumulators read before the wait (SS, N 32)", got + OUT_SS32_EARLY, c + C_SS32, 32) ||
        same_matrix("wgmma accumulators read before the wait (RS, N 64)", got + OUT_64_EARLY, c + C_64, 64) ||
        same_matrix("wgmma accumulators read before the wait (RS, N 32)", got + OUT_32_EARLY, c + C_32, 32))
        return 1;
    printf("ptx: wgmma (A, B from shared memory; A in registers, B MN-major; N 64 and 32) matches the CPU, "
           "the accumulators hold their old values until the wait\n");
#else
    printf("ptx: wgmma (A, B from shared memory; A in registers, B MN-major; N 64 and 32) matches the CPU\n");
#endif
    return 0;
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    const int half_warp = !strcmp(mode, "halfwarp");
    // ldmatrix rows: 1 misaligned, 2 in global memory
    const int bad_rows = !strcmp(mode, "misaligned") ? 1 : !strcmp(mode, "global_ldmatrix") ? 2 : 0;
    if (!strcmp(mode, "nowait")) return check_pipeline(1);
    if (!strcmp(mode, "norefill_barrier")) return check_pipeline(2);
    if (!strcmp(mode, "wgmma")) return check_wgmma(WG_GOOD);
    if (!strcmp(mode, "wgmma_nofence")) return check_wgmma(WG_NOFENCE);
    if (!strcmp(mode, "wgmma_noproxy")) return check_wgmma(WG_NOPROXY);
    if (!strcmp(mode, "wgmma_block64")) return check_wgmma(WG_BLOCK64);
    if (!strcmp(mode, "wgmma_achange")) return check_wgmma(WG_ACHANGE);
    if (!half_warp && !bad_rows && strcmp(mode, "check")) {
        fprintf(stderr, "error: usage: ptx [check|halfwarp|misaligned|global_ldmatrix|nowait|norefill_barrier|wgmma|"
                        "wgmma_nofence|wgmma_noproxy|wgmma_block64|wgmma_achange]\n");
        return 2;
    }
    float af[256], bf[256], c[256], want[256], got[256 + 32];
    __nv_bfloat16 a[256], b[256];
    fill_random(af, 256, 11);
    fill_random(bf, 256, 12);
    fill_random(c, 256, 13);
    for (int i = 0; i < 256; i++) {
        a[i] = __float2bfloat16(af[i]), af[i] = __bfloat162float(a[i]);
        b[i] = __float2bfloat16(bf[i]), bf[i] = __bfloat162float(b[i]);
    }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double s = c[i * 16 + j];
            for (int k = 0; k < 16; k++) s += (double)af[i * 16 + k] * bf[k * 16 + j];
            want[i * 16 + j] = (float)s;
        }
    __nv_bfloat16 *d_a, *d_b;
    float *d_c, *d_out;
    cuda_check(cudaMalloc(&d_a, sizeof(a)));
    cuda_check(cudaMalloc(&d_b, sizeof(b)));
    cuda_check(cudaMalloc(&d_c, sizeof(c)));
    cuda_check(cudaMalloc(&d_out, sizeof(got)));
    cuda_check(cudaMemcpy(d_a, a, sizeof(a), cudaMemcpyHostToDevice));
    cuda_check(cudaMemcpy(d_b, b, sizeof(b), cudaMemcpyHostToDevice));
    cuda_check(cudaMemcpy(d_c, c, sizeof(c), cudaMemcpyHostToDevice));
    mma_kernel<<<1, 32>>>(d_out, d_a, d_b, d_c, half_warp, bad_rows);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_a));
    cuda_check(cudaFree(d_b));
    cuda_check(cudaFree(d_c));
    cuda_check(cudaFree(d_out));
    for (int i = 0; i < 256; i++)
        if (!(fabsf(got[i] - want[i]) <= SUM_TOL)) {
            fprintf(stderr, "error: mma: mismatch vs the CPU reference at D[%d][%d]: %g, want %g\n", i / 16, i % 16, got[i],
                    want[i]);
            return 1;
        }
    for (int l = 0; l < 32; l++)
        if (got[256 + l] != 1.0f) {
            fprintf(stderr, "error: ldmatrix or movmatrix: lane %d did not get the documented fragment registers\n", l);
            return 1;
        }
    printf("ptx: mma D = A B + C matches the CPU, ldmatrix and movmatrix give the documented fragments\n");
    return check_pipeline(0) || check_scalars() || check_wgmma(WG_GOOD);
}
