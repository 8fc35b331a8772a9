// llmc/global_norm.cuh: the squared global norm sum_i v_i^2 of a gradient
// vector (fp32 or bf16) on the GPU, accumulated in fp32 and bitwise
// reproducible: the same inputs give the same bits on every run and on every
// GPU model (as sum_of_squares in train_gpt2.c, which gpt2_clip_grad_norm
// takes the square root of).
//
// Two kernels, no atomics:
// - stage 1, a fixed grid of GLOBAL_NORM_BLOCKS blocks of GLOBAL_NORM_THREADS
//   threads, whatever the GPU (not sized from the SM count, which would change
//   the summation order between GPUs), reading 16 bytes at a time (N = 8
//   bf16 or 4 fp32 values; one value per load kept too few bytes in flight:
//   15% of an H200's bandwidth in bf16): thread g = b * GLOBAL_NORM_THREADS + t
//   of block b sums, in increasing order, the squares of the N values of
//   each pack p = g + k * GLOBAL_NORM_BLOCKS * GLOBAL_NORM_THREADS, and
//   thread g < count % N of block 0 then the square of the ragged end's
//   value g; a warp reduce (cooperative_groups::reduce) then a reduce over
//   the block's warps give one partial per block, written to scratch[b];
// - stage 2, one block, sums the GLOBAL_NORM_BLOCKS partials in the same
//   fixed pattern and writes *out.
// The order of every addition is fixed by the two grids, hence the bits.
// 512 x 256 = 131072 threads, each with 4 loads of 16 bytes in flight
// before it adds their squares, keep 8 MB in flight: an H200 needs about 4
// MB (4.8 TB/s times a DRAM latency of roughly 800 ns).
#ifndef LLMC_GLOBAL_NORM_CUH
#define LLMC_GLOBAL_NORM_CUH

#include <stddef.h>
#include <stdint.h>
#include "cuda_common.cuh"
#ifdef __CUDACC__
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#endif

#define GLOBAL_NORM_BLOCKS 512    // stage-1 grid; scratch holds this many floats
#define GLOBAL_NORM_THREADS 256   // threads per block (a multiple of 32, at most 1024)

// ----------------------------------------------------------------------------
// kernels

// the sum of v over the block, valid in thread 0; every thread must call it
__device__ inline float global_norm_block_sum(float v) {
    namespace cg = cooperative_groups;
    __shared__ float warp_sums[GLOBAL_NORM_THREADS / 32];
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> warp = cg::tiled_partition<32>(block);
    v = cg::reduce(warp, v, cg::plus<float>());
    if (warp.thread_rank() == 0) warp_sums[warp.meta_group_rank()] = v;
    block.sync();
    if (warp.meta_group_rank() == 0) {
        v = warp.thread_rank() < warp.meta_group_size() ? warp_sums[warp.thread_rank()] : 0.0f;
        v = cg::reduce(warp, v, cg::plus<float>());
    }
    return v;
}

// acc += the squares of a pack's values, in order
template <class T>
__device__ __forceinline__ void global_norm_add_squares(float& acc, const Pack128<T>& pack) {
#pragma unroll
    for (int k = 0; k < Pack128<T>::N; k++) {
        float v = (float)pack[k];
        acc += v * v;
    }
}

// scratch[blockIdx.x] = sum of the squares of the block's strided packs
// (and, in block 0, of the ragged end); values 16-byte aligned
template <class T>
__global__ void __launch_bounds__(GLOBAL_NORM_THREADS)
    global_norm_partials_kernel(float* scratch, const T* values, size_t count) {
    constexpr int N = Pack128<T>::N;
    const size_t packs = count / N;
    if (blockIdx.x > 0 && (size_t)blockIdx.x * blockDim.x >= packs) {   // no values here (uniform: no barrier skipped)
        if (threadIdx.x == 0) scratch[blockIdx.x] = 0.0f;
        return;
    }
    float acc = 0.0f;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; p + 3 * stride < packs; p += 4 * stride) {   // four loads in flight, then their sums in order
        Pack128<T> q[4];
#pragma unroll
        for (int j = 0; j < 4; j++) q[j] = load128(values + (p + j * stride) * N);
#pragma unroll
        for (int j = 0; j < 4; j++) global_norm_add_squares(acc, q[j]);
    }
    for (; p < packs; p += stride) global_norm_add_squares(acc, load128(values + p * N));
    if (blockIdx.x == 0 && threadIdx.x < count - packs * N) {   // the ragged end
        float v = (float)values[packs * N + threadIdx.x];
        acc += v * v;
    }
    acc = global_norm_block_sum(acc);
    if (threadIdx.x == 0) scratch[blockIdx.x] = acc;
}

// *out = sum of the n partials; one block
__global__ void __launch_bounds__(GLOBAL_NORM_THREADS)
    global_norm_final_kernel(float* out, const float* scratch, int n) {
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += scratch[i];
    acc = global_norm_block_sum(acc);
    if (threadIdx.x == 0) *out = acc;
}

// ----------------------------------------------------------------------------
// launcher

// *out (device, one float) = sum of values[i]^2 over count values (device,
// 16-byte aligned); scratch: GLOBAL_NORM_BLOCKS floats of device memory,
// overwritten. Enqueued on stream; count == 0 gives 0.
template <class T>
static inline void global_norm_squared(float* out, const T* values, size_t count, float* scratch,
                                       cudaStream_t stream) {
    static_assert(GLOBAL_NORM_THREADS >= Pack128<T>::N, "block 0 takes the ragged end, a value a thread");
    if ((uintptr_t)values % 16 != 0) {
        fprintf(stderr, "error: global_norm_squared: the values must be 16-byte aligned\n");
        exit(1);
    }
    global_norm_partials_kernel<T><<<GLOBAL_NORM_BLOCKS, GLOBAL_NORM_THREADS, 0, stream>>>(scratch, values, count);
    cudaCheck(cudaGetLastError());
    global_norm_final_kernel<<<1, GLOBAL_NORM_THREADS, 0, stream>>>(out, scratch, GLOBAL_NORM_BLOCKS);
    cudaCheck(cudaGetLastError());
}

#endif // LLMC_GLOBAL_NORM_CUH
