// llmc/ptx.cuh: the PTX instructions (sm_80 and later) that let a kernel
// keep its tiles in registers and load the next tile while it computes,
// wrapped as functions: mma.sync m16n8k16 (bf16 inputs, fp32 accumulators),
// ldmatrix x4 (four 8x8 bf16 matrices from shared memory into the warp's
// registers) and cp.async (global -> shared copies that run in the
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
// Under the emulation (CUDA_EMU) these call dev/emu/cuda_emu.h's versions,
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

#endif // LLMC_PTX_CUH
