// llmc/ptx.cuh: the PTX instructions (sm_80 and later) that let a kernel
// keep its tiles in registers and load the next tile while it computes,
// wrapped as functions: mma.sync m16n8k16 (bf16 inputs, fp32 accumulators),
// ldmatrix x4 (four 8x8 bf16 matrices from shared memory into the warp's
// registers), movmatrix (one transposed in registers) and cp.async (global -> shared copies that run in the
// background until a cp_async_wait); also two scalar ones a softmax tile
// issues per element (cvt to a bf16 pair, ex2.approx). Unlike wmma's opaque fragments, the
// register layouts of mma are documented (PTX ISA, "Matrix Fragments for
// mma.m16n8k16"), so a kernel can work on the accumulators in place; with
// g = lane / 4 and t = lane % 4 (each 32-bit register holds two bf16, the
// lower column in the low half):
//   A (16,16) row-major, 4 registers: A[g][2t..], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]
//   B (16,8), 2 registers:            B[2t..][g], B[2t+8..][g]
//   C, D (16,8) fp32, 4 floats:       C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]
// So an accumulator pair for columns 16k..16k+15 (n tiles 2k, 2k+1),
// rounded to bf16, is exactly the A operand for k step k of the next
// matmul (FlashAttention's P V without a trip through shared memory):
// pack_bf16x2 of c[0,1], c[2,3] of tile 2k, then of tile 2k+1.
// Under the emulation (CUDA_EMU) these call dev/emu/emu_ptx.h's versions,
// which implement the same layouts.
#ifndef LLMC_PTX_CUH
#define LLMC_PTX_CUH

#include <stdint.h>
#include "cuda_common.cuh"

// d (16,8) += a (16,16) b (16,8), b as its two registers (scalars: a
// braced array temporary could cost a stack slot)
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#ifdef CUDA_EMU
    const uint32_t b[2] = {b0, b1};
    emu_mma_m16n8k16_bf16(d, a, b);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// four 8x8 bf16 matrices from shared memory: lane l gives `row`, the address
// (16-byte aligned) of row l % 8 of matrix l / 8; register j gets matrix j's
// M[g][2t, 2t+1] (ldmatrix_x4) or M[2t, 2t+1][g] (ldmatrix_x4_trans)
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const floatX* row) {
#ifdef CUDA_EMU
    emu_ldmatrix_x4(r, row, false);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"((unsigned)__cvta_generic_to_shared(row)));
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const floatX* row) {
#ifdef CUDA_EMU
    emu_ldmatrix_x4(r, row, true);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"((unsigned)__cvta_generic_to_shared(row)));
#endif
}

// an 8x8 bf16 matrix in the warp's registers, transposed: lane l holds
// M[g][2t, 2t+1] and gets M[2t, 2t+1][g] (one instruction, no shared
// memory; a fragment of X^T from one of X, e.g. dS from dkdv's dS^T)
__device__ __forceinline__ uint32_t movmatrix_trans(uint32_t m) {
#ifdef CUDA_EMU
    return emu_movmatrix_trans(m);
#else
    uint32_t r;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(r) : "r"(m));
    return r;
#endif
}

// two floats rounded to bf16 (nearest even) in one register, lo in the low
// half (one cvt instruction on the device, not two and a shift)
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
#ifdef CUDA_EMU
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16(lo)) |
           (uint32_t)__bfloat16_as_ushort(__float2bfloat16(hi)) << 16;
#else
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#endif
}

// 2^x by the special-function unit alone (ex2.approx.ftz: results below
// 2^-126 are 0). exp2f without fast math adds a rescaling around it for
// such denormal results, three more instructions per softmax element for
// values that vanish in bf16 and fp32 sums anyway.
__device__ __forceinline__ float ex2_approx(float x) {
#ifdef CUDA_EMU
    const float r = exp2f(x);
    return r < 0x1p-126f ? 0.0f : r;
#else
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
#endif
}

// cp.async: 16 bytes global -> shared (both 16-byte aligned), or 4 bytes
// (4-byte aligned), in the background. cp_async_commit closes the group of
// the copies issued since the last one; cp_async_wait<N> waits until at most
// the newest N groups are still in flight. The copies are then visible to
// this thread, and to the block after a __syncthreads.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
#ifdef CUDA_EMU
    emu_cp_async(smem, gmem, 16);
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"((unsigned)__cvta_generic_to_shared(smem)),
                 "l"(gmem));
#endif
}

__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
#ifdef CUDA_EMU
    emu_cp_async(smem, gmem, 4);
#else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"((unsigned)__cvta_generic_to_shared(smem)),
                 "l"(gmem));
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#ifdef CUDA_EMU
    emu_cp_async_commit();
#else
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef CUDA_EMU
    emu_cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

// ----------------------------------------------------------------------------
// wgmma (Hopper, sm_90a only): one warpgroup (4 warps, 128 threads, all of
// them, uniformly) multiplies D (64,N) += A (64,16) B (16,N) asynchronously,
// B (and A in the _ss form) read by the tensor cores straight from shared
// memory through a matrix descriptor, no ldmatrix. The accumulators' layout
// is mma.sync's, warp w holding rows 16w..16w+15: d[4n + i] is 8-column
// tile n's c[i] of an m16n8 accumulator (see the top of this file); an A
// operand in registers (the _rs form) is mma.sync's A fragment of the warp's
// 16 rows. So a kernel written for mma.sync keeps its elementwise code.
// The order: wgmma_fence() (the accumulator and A registers written before
// it are what the wgmmas read), the wgmmas, wgmma_commit(), and
// wgmma_wait<N>() before the registers are read or written again (at most N
// newest groups still running), the accumulators pinned on both sides by
// wgmma_fence_operands. Shared memory written by this thread in the
// ordinary way (st.shared, cp.async once landed) is seen by a later wgmma
// only after fence_proxy_async() (wgmmas read through the "async proxy"),
// and, for another thread's writes, a barrier after that fence.
//
// Shared-memory layout without swizzling (PTX ISA, "Shared Memory Matrix
// Layout", the layout a descriptor with swizzle mode 0 describes): the
// operand is made of core matrices of 8 rows of 16 bytes (8 bf16), each core
// matrix 128 contiguous bytes. For an operand stored K-major (each row a
// row of A, or a column of B, along the k dimension: Q, K as stored) a
// core-matrix row holds 8 consecutive k of one m (or n); stored MN-major
// (V as B: its rows are k, its columns n) 8 consecutive n of one k. lbo:
// the bytes between core matrices adjacent along k; sbo: along m or n.
__device__ __forceinline__ uint64_t wgmma_desc(const void* smem, unsigned lbo, unsigned sbo) {
#ifdef CUDA_EMU
    const uint32_t addr = emu_shared_address(smem);
#else
    const uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem);
#endif
    // bits 0-13 address, 16-29 lbo, 32-45 sbo, all in 16-byte units; swizzle (62-63) 0
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (uint64_t)((lbo >> 4) & 0x3FFF) << 16 |
           (uint64_t)((sbo >> 4) & 0x3FFF) << 32;
}

// the sm_90a instructions, or (other targets: never launched there) a trap
#if defined(__CUDA_ARCH__) && !defined(CUDA_EMU) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LLMC_WGMMA_TRAP() __trap()
#else
#define LLMC_WGMMA_TRAP()
#endif
#if defined(CUDA_EMU) || (defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL))
#define LLMC_WGMMA_ASM 1
#endif

// an accumulator array as the operand of an empty asm: to the compiler, a
// wgmma writes its accumulators when issued, and wgmma_fence and wgmma_wait
// (asm with no register operands) order memory, not registers, so without
// this it may move a read of the results above the wait, or a write meant
// for the next wgmma below its fence. Each batch: wgmma_fence_operands(d)
// for accumulators it adds to, wgmma_fence(), the wgmmas, wgmma_commit(),
// wgmma_wait<N>(), wgmma_fence_operands(d) for every accumulator it wrote
// (and the same for A operands held in registers, on both sides).
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(float (&d)[N]) {
#ifdef CUDA_EMU
    (void)d;
#else
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
#endif
}

// the same for A operands in registers (wgmma_rs_mn), read by the tensor
// cores until the wait: pinned before wgmma_fence and after the wait
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(uint32_t (&a)[N][4]) {
#ifdef CUDA_EMU
    (void)a;
#else
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int r = 0; r < 4; r++) asm volatile("" : "+r"(a[i][r])::"memory");
#endif
}

__device__ __forceinline__ void wgmma_fence() {
#ifdef CUDA_EMU
    emu_wgmma_fence();
#elif defined(LLMC_WGMMA_ASM)
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#else
    LLMC_WGMMA_TRAP();
#endif
}

__device__ __forceinline__ void wgmma_commit() {
#ifdef CUDA_EMU
    emu_wgmma_commit();
#elif defined(LLMC_WGMMA_ASM)
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#else
    LLMC_WGMMA_TRAP();
#endif
}

template <int N>
__device__ __forceinline__ void wgmma_wait() {
#ifdef CUDA_EMU
    emu_wgmma_wait(N);
#elif defined(LLMC_WGMMA_ASM)
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
#else
    LLMC_WGMMA_TRAP();
#endif
}

__device__ __forceinline__ void fence_proxy_async() {
#ifdef CUDA_EMU
    emu_fence_proxy_async();
#elif defined(LLMC_WGMMA_ASM)
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#else
    LLMC_WGMMA_TRAP();
#endif
}

// D (64,N) (= or +=) A (64,16) B (16,N), N = 64 or 32, fp32 accumulators,
// bf16 A and B both from shared memory, both K-major; accumulate 0: D = A B
template <int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t a_desc, uint64_t b_desc, int accumulate) {
    static_assert(N == 64 || N == 32, "wgmma_ss: N is 64 or 32");
#ifdef CUDA_EMU
    emu_wgmma(d, N, nullptr, a_desc, b_desc, accumulate, 0);
#elif defined(LLMC_WGMMA_ASM)
    if constexpr (N == 64) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                     "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                     "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                     "%32, %33, p, 1, 1, 0, 0;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
                       "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
                       "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
                       "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
                       "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                     : "l"(a_desc), "l"(b_desc), "r"(accumulate));
    } else {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
                     "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
                     "%16, %17, p, 1, 1, 0, 0;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
                       "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
                       "+f"(d[14]), "+f"(d[15])
                     : "l"(a_desc), "l"(b_desc), "r"(accumulate));
    }
#else
    (void)d, (void)a_desc, (void)b_desc, (void)accumulate;
    LLMC_WGMMA_TRAP();
#endif
}

// D (64,N) += A (64,16) B (16,N), N = 64 or 32: A in registers (the warp's
// mma.sync A fragment), B from shared memory stored MN-major (transposed
// against the K-major default: imm-trans-b 1)
template <int N>
__device__ __forceinline__ void wgmma_rs_mn(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b_desc) {
    static_assert(N == 64 || N == 32, "wgmma_rs_mn: N is 64 or 32");
#ifdef CUDA_EMU
    emu_wgmma(d, N, a, 0, b_desc, 1, 1);
#elif defined(LLMC_WGMMA_ASM)
    if constexpr (N == 64) {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
                     "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                     "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                     "{%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
                       "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
                       "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
                       "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
                       "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "n"(1));
    } else {
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 "
                     "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, "
                     "{%16, %17, %18, %19}, %20, p, 1, 1, 1;\n}"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
                       "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
                       "+f"(d[14]), "+f"(d[15])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "n"(1));
    }
#else
    (void)d, (void)a, (void)b_desc;
    LLMC_WGMMA_TRAP();
#endif
}

#endif // LLMC_PTX_CUH
