// llmc/cast.cuh: element-wise conversion between fp32 and bf16 on the GPU:
// fp32 -> bf16 rounds to nearest, ties to even (as __float2bfloat16: NaN
// becomes the canonical 0x7FFF, overflow rounds to infinity, denormals are
// kept), bf16 -> fp32 is exact. Used for -gr 1's gradient sums in fp32 (a
// bucket widened, reduced, rounded back) and to round fp32 gradient sums
// (wte's chunks, dlnf) to bf16.
// Also bf16 += bf16 or fp32 (the sum in fp32, rounded to nearest even once):
// ZeRO-2 adds each micro-batch's reduced gradient slice into a rank's shard.
//
// Each thread converts one chunk of 8 values with 128-bit accesses (two
// float4 + one Pack128<floatX>); the thread with chunk index n / 8 converts
// the last n % 8 values one by one (the scalar tail), so n is arbitrary.
// Constraints (checked by the launchers): both pointers 16-byte aligned
// (cudaMalloc gives 256 bytes), n < 2^31 * CAST_BLOCK_SIZE * 8 (grid limit).
#ifndef LLMC_CAST_CUH
#define LLMC_CAST_CUH

#include <stddef.h>
#include <stdint.h>
#include "cuda_common.cuh"

#define CAST_BLOCK_SIZE 512   // threads per block: a memory-bound kernel, any multiple of 32 does

// ----------------------------------------------------------------------------
// kernels

// out (n,) bf16 = RNE(in (n,) fp32)
__global__ void __launch_bounds__(CAST_BLOCK_SIZE)
    cast_float_to_bf16_kernel(floatX* out, const float* in, size_t n) {
    const int P = Pack128<floatX>::N;   // 8 values: 32 bytes of fp32 in, 16 bytes of bf16 out
    size_t chunk = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t i = chunk * P;
    if (i + P <= n) {
        float4 a = *reinterpret_cast<const float4*>(in + i);
        float4 b = *reinterpret_cast<const float4*>(in + i + 4);
        Pack128<floatX> y;
        y[0] = __float2bfloat16_rn(a.x);
        y[1] = __float2bfloat16_rn(a.y);
        y[2] = __float2bfloat16_rn(a.z);
        y[3] = __float2bfloat16_rn(a.w);
        y[4] = __float2bfloat16_rn(b.x);
        y[5] = __float2bfloat16_rn(b.y);
        y[6] = __float2bfloat16_rn(b.z);
        y[7] = __float2bfloat16_rn(b.w);
        store128(out + i, y);
    } else if (i < n) {   // the one thread whose chunk is partial: the n % 8 tail
        for (size_t k = i; k < n; k++) out[k] = __float2bfloat16_rn(in[k]);
    }
}

// out (n,) fp32 = in (n,) bf16 (exact)
__global__ void __launch_bounds__(CAST_BLOCK_SIZE)
    cast_bf16_to_float_kernel(float* out, const floatX* in, size_t n) {
    const int P = Pack128<floatX>::N;
    size_t chunk = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t i = chunk * P;
    if (i + P <= n) {
        Pack128<floatX> x = load128(in + i);
        *reinterpret_cast<float4*>(out + i) =
            make_float4(__bfloat162float(x[0]), __bfloat162float(x[1]), __bfloat162float(x[2]), __bfloat162float(x[3]));
        *reinterpret_cast<float4*>(out + i + 4) =
            make_float4(__bfloat162float(x[4]), __bfloat162float(x[5]), __bfloat162float(x[6]), __bfloat162float(x[7]));
    } else if (i < n) {
        for (size_t k = i; k < n; k++) out[k] = __bfloat162float(in[k]);
    }
}

// acc (n,) bf16 = RNE(acc + in), in (n,) bf16 or fp32; one element per
// thread, any alignment (ZeRO slices start anywhere)
template <class T>
__global__ void __launch_bounds__(CAST_BLOCK_SIZE)
    accumulate_bf16_kernel(floatX* acc, const T* in, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) acc[i] = __float2bfloat16_rn(__bfloat162float(acc[i]) + (float)in[i]);
}

// ----------------------------------------------------------------------------
// launchers

// exits with a message when the pointers are not 16-byte aligned or n is too
// large for the grid; returns the number of blocks (0 when n == 0)
static inline unsigned cast_grid(const char* who, const void* out, const void* in, size_t n) {
    if (((uintptr_t)out | (uintptr_t)in) % 16 != 0) {
        fprintf(stderr, "error: %s: pointers must be 16-byte aligned (out = %p, in = %p)\n", who, out, in);
        exit(1);
    }
    size_t per_block = (size_t)CAST_BLOCK_SIZE * Pack128<floatX>::N;
    size_t blocks = (n + per_block - 1) / per_block;   // covers the partial last chunk too
    if (blocks > 0x7fffffffu) {
        fprintf(stderr, "error: %s: n = %zu is too large for one launch\n", who, n);
        exit(1);
    }
    return (unsigned)blocks;
}

// out (n,) bf16, in (n,) fp32
static inline void cast_float_to_bf16(floatX* out, const float* in, size_t n, cudaStream_t stream) {
    unsigned blocks = cast_grid("cast_float_to_bf16", out, in, n);
    if (blocks == 0) return;
    cast_float_to_bf16_kernel<<<blocks, CAST_BLOCK_SIZE, 0, stream>>>(out, in, n);
    cudaCheck(cudaGetLastError());
}

// out (n,) fp32, in (n,) bf16
static inline void cast_bf16_to_float(float* out, const floatX* in, size_t n, cudaStream_t stream) {
    unsigned blocks = cast_grid("cast_bf16_to_float", out, in, n);
    if (blocks == 0) return;
    cast_bf16_to_float_kernel<<<blocks, CAST_BLOCK_SIZE, 0, stream>>>(out, in, n);
    cudaCheck(cudaGetLastError());
}

// acc (n,) bf16 += in (n,), bf16 or fp32
template <class T>
static inline void accumulate_bf16(floatX* acc, const T* in, size_t n, cudaStream_t stream) {
    size_t blocks = (n + CAST_BLOCK_SIZE - 1) / CAST_BLOCK_SIZE;
    if (blocks > 0x7fffffffu) {
        fprintf(stderr, "error: accumulate_bf16: n = %zu is too large for one launch\n", n);
        exit(1);
    }
    if (blocks == 0) return;
    accumulate_bf16_kernel<T><<<(unsigned)blocks, CAST_BLOCK_SIZE, 0, stream>>>(acc, in, n);
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_CAST_CUH
