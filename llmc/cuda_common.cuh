// llmc/cuda_common.cuh: what every CUDA kernel header of llmc/ shares: the
// check macro for CUDA calls, the activation type floatX (bf16) and Pack128,
// the 16-byte chunk of floatX a thread loads or stores in one 128-bit access.
// Real CUDA; also compiles under the CUDA emulation (dev/emu), which provides
// __nv_bfloat16 and int4 itself.
#ifndef LLMC_CUDA_COMMON_CUH
#define LLMC_CUDA_COMMON_CUH

#include <stdio.h>
#include <stdlib.h>
#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

// ----------------------------------------------------------------------------
// error checks

// every fallible CUDA call: names the call, file:line and cause on stderr, exits 1
#define cudaCheck(call) llmc_cuda_check((call), #call, __FILE__, __LINE__)
static inline void llmc_cuda_check(cudaError_t err, const char* what, const char* file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "error: CUDA: %s failed at %s:%d: %s\n", what, file, line, cudaGetErrorString(err));
        exit(1);
    }
}

// log2(e) in fp32: e^x = 2^(x LOG2E_F), the form the special-function unit
// computes (ex2), in the attention kernels' softmax and the classifier's
#define LOG2E_F 1.4426950408889634f

// ----------------------------------------------------------------------------
// activation type and 128-bit packs

typedef __nv_bfloat16 floatX;

// Pack128<T>::N values of T in 16 bytes; load/store need 16-byte-aligned pointers
// (cudaMalloc gives 256-byte alignment, so offsets must be multiples of
// 16 bytes, e.g. of 8 bf16)
template <class T>
struct __align__(16) Pack128 {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
    __device__ __forceinline__ T& operator[](int i) { return v[i]; }
    __device__ __forceinline__ const T& operator[](int i) const { return v[i]; }
};
template <class T>
__device__ __forceinline__ Pack128<T> load128(const T* p) {
    Pack128<T> r;
    *reinterpret_cast<int4*>(r.v) = *reinterpret_cast<const int4*>(p);
    return r;
}
template <class T>
__device__ __forceinline__ void store128(T* p, const Pack128<T>& x) {
    *reinterpret_cast<int4*>(p) = *reinterpret_cast<const int4*>(x.v);
}

#endif // LLMC_CUDA_COMMON_CUH
