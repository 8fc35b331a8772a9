// dev/emu/tests/bad_kernels.cu: deliberately broken kernels, one per class of
// bug the emulation must catch; tests/t_emu.sh asserts that each is caught.
//   bad_kernels nobarrier     shared-memory reduction without the barrier
//                             after the stores: a race, so in some thread
//                             order the result differs from the CPU
//                             reference (this program reports the mismatch)
//   bad_kernels divergent     __syncthreads inside a branch only some
//                             threads take: the emulator stops, naming the
//                             kernel
//   bad_kernels divergent2    if/else with a __syncthreads in each branch:
//                             the emulator stops (threads wait at
//                             different barriers)
//   bad_kernels shared_oob    writes one element past a __shared__ array
//   bad_kernels oob           index off by one: writes one element past the
//                             end (caught by ASan, or by the emulator's
//                             guard region without ASan)
//   bad_kernels shfl_exited   half the warp returns, the rest shuffle with
//                             the full mask: the emulator stops
//   bad_kernels shfl_partial  a block of 48 threads: its second warp has 16
//                             lanes, but shuffles with the full mask
//   bad_kernels shfl_barrier  lanes 0..15 shuffle with the full mask while
//                             lanes 16..31 wait at a __syncthreads: deadlock
//   bad_kernels shfl_ballot   lanes 0..15 shuffle with the full mask while
//                             lanes 16..31 take a ballot with it: the
//                             emulator stops (one mask, two collectives)
//   bad_kernels uninit_shared a block sum accumulated with atomicAdd into a
//                             __shared__ total nobody set to zero: the
//                             emulator fills shared memory with NaN bytes,
//                             so the result is wrong in every order
//   bad_kernels warp_partials each warp sums its values by shuffles and
//                             writes its partial to shared memory, then
//                             warp 0 adds the partials after a __syncwarp,
//                             not a __syncthreads: right while the warps
//                             move in lockstep, wrong when warp 0 runs
//                             ahead (EMU_WARPS=serial, forward order)
//   bad_kernels shared_over   the correct reduction (512 bytes of static
//                             shared memory) launched with 48 KB of dynamic
//                             shared memory and no opt-in: over the 48 KB a
//                             block gets, the emulator stops
//   bad_kernels optin_over    an opt-in of 16 KB, then a launch with 32 KB
//                             of dynamic shared memory: the launch fails
//   bad_kernels chained       each block adds the running total the block
//                             before it wrote in the same launch: right in
//                             every thread order, since the emulator runs
//                             the blocks in order, but a race on the device,
//                             where nothing orders two blocks of a launch;
//                             only the race check (build/emu/tsan) sees it
//   bad_kernels over_bounds   the correct reduction in a kernel declared
//                             __launch_bounds__(64), launched with 128
//                             threads per block: the emulator stops
//   bad_kernels good          the correct reduction, as a control
//   bad_kernels optin         the same with 100 KB of dynamic shared memory
//                             after the opt-in (cudaFuncSetAttribute) for
//                             it: the static part comes on top, as on the
//                             device, so it runs (a control)
// Real CUDA: compiles with nvcc too.
#include <string.h>
#include "common.cuh"

#define BLOCK 128

// the block's sum of x, correctly: into buf[0]
__device__ void block_sum(float* buf, const float* x) {
    buf[threadIdx.x] = x[blockIdx.x * BLOCK + threadIdx.x];
    __syncthreads();
    for (int stride = BLOCK / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
        __syncthreads();
    }
}

__global__ void __launch_bounds__(BLOCK) sum_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    block_sum(buf, x);
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

// BUG: declared for at most BLOCK / 2 threads (ptxas may give it twice the
// registers), launched with BLOCK: the device refuses the launch
__global__ void __launch_bounds__(BLOCK / 2, 2)
    sum_overbounds_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    block_sum(buf, x);
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

// BUG: no barrier between the stores and the first reads of buf
__global__ void sum_nobarrier_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    buf[threadIdx.x] = x[blockIdx.x * BLOCK + threadIdx.x];
    for (int stride = BLOCK / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

// BUG: block b reads out[b - 1], which block b - 1 writes in this launch
__global__ void prefix_chained_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    block_sum(buf, x);
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0] + (blockIdx.x > 0 ? out[blockIdx.x - 1] : 0.0f);
}

// BUG: the barrier of the reduction loop sits inside "if (threadIdx.x < stride)"
__global__ void sum_divergent_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    buf[threadIdx.x] = x[blockIdx.x * BLOCK + threadIdx.x];
    __syncthreads();
    for (int stride = BLOCK / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) {
            buf[threadIdx.x] += buf[threadIdx.x + stride];
            __syncthreads();
        }
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

// BUG: even and odd threads wait at different barriers
__global__ void sum_ifelse_barrier_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    buf[threadIdx.x] = x[blockIdx.x * BLOCK + threadIdx.x];
    if (threadIdx.x % 2 == 0) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0] + buf[1];
}

// BUG: stores to buf[threadIdx.x + 1], so the last thread writes buf[BLOCK]
__global__ void shift_shared_oob_kernel(float* out, const float* x) {
    __shared__ float buf[BLOCK];
    buf[threadIdx.x + 1] = x[blockIdx.x * BLOCK + threadIdx.x];
    __syncthreads();
    if (threadIdx.x > 0) out[blockIdx.x * BLOCK + threadIdx.x] = buf[threadIdx.x];
}

// BUG: "i <= n" writes out[n], one past the end
__global__ void scale_oob_kernel(float* out, const float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 2.0f * x[i < n ? i : 0];
}

// BUG: lanes 16..31 return, lanes 0..15 then shuffle with the full mask
__global__ void warp_sum_exited_kernel(float* out, const float* x) {
    int lane = threadIdx.x % 32;
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    if (lane >= 16) return;
    for (int offset = 8; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) out[blockIdx.x] = v;
}

// BUG: run with 48 threads per block, the full mask names 16 missing lanes
__global__ void warp_sum_partial_kernel(float* out, const float* x) {
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}

// BUG: half the warp shuffles, the other half waits at a barrier
__global__ void shfl_vs_barrier_kernel(float* out, const float* x) {
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    if (threadIdx.x % 32 < 16) {
        v += __shfl_xor_sync(0xffffffffu, v, 16);
    } else {
        __syncthreads();
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// BUG: under one full mask, half the warp shuffles and the other half votes
__global__ void shfl_vs_ballot_kernel(float* out, const float* x) {
    float v = x[blockIdx.x * blockDim.x + threadIdx.x];
    if (threadIdx.x % 32 < 16) v += __shfl_xor_sync(0xffffffffu, v, 16);
    else v += (float)__popc(__ballot_sync(0xffffffffu, v > 0.0f));
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// BUG: warp 0 reads the other warps' partials after a __syncwarp only
__global__ void sum_warp_partials_kernel(float* out, const float* x) {
    __shared__ float partial[BLOCK / 32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float v = x[blockIdx.x * BLOCK + threadIdx.x];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (lane == 0) partial[warp] = v;
    if (warp != 0) return;
    __syncwarp();
    if (lane == 0) {
        float s = 0.0f;
        for (int w = 0; w < BLOCK / 32; w++) s += partial[w];
        out[blockIdx.x] = s;
    }
}

// BUG: total is never set to zero
__global__ void sum_uninit_shared_kernel(float* out, const float* x) {
    __shared__ float total;
    atomicAdd(&total, x[blockIdx.x * BLOCK + threadIdx.x]);
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = total;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bad_kernels nobarrier|divergent|divergent2|shared_oob|shared_over|oob|shfl_exited|shfl_partial|shfl_barrier|shfl_ballot|uninit_shared|warp_partials|chained|over_bounds|good|optin|optin_over\n");
        return 2;
    }
    const char* which = argv[1];
    const int nblocks = 8, n = nblocks * BLOCK;
    float* x = (float*)malloc(n * sizeof(float));
    float got[nblocks], want[nblocks];
    fill_random(x, n, 7);
    for (int b = 0; b < nblocks; b++) {
        double s = 0.0;
        for (int i = 0; i < BLOCK; i++) s += x[b * BLOCK + i];
        want[b] = (float)s;
    }
    float *d_x, *d_out;
    cuda_check(cudaMalloc(&d_x, n * sizeof(float)));
    cuda_check(cudaMalloc(&d_out, n * sizeof(float)));
    cuda_check(cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice));
    int bad = 0;
    if (!strcmp(which, "good") || !strcmp(which, "nobarrier") || !strcmp(which, "divergent") ||
        !strcmp(which, "uninit_shared") || !strcmp(which, "warp_partials") || !strcmp(which, "shared_over") ||
        !strcmp(which, "optin") || !strcmp(which, "optin_over") || !strcmp(which, "chained") ||
        !strcmp(which, "over_bounds")) {
        if (!strcmp(which, "good")) sum_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        else if (!strcmp(which, "over_bounds")) sum_overbounds_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        else if (!strcmp(which, "chained")) {
            prefix_chained_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
            for (int b = 1; b < nblocks; b++) want[b] += want[b - 1];
        }
        else if (!strcmp(which, "shared_over")) sum_kernel<<<nblocks, BLOCK, 48 * 1024>>>(d_out, d_x);
        else if (!strcmp(which, "optin") || !strcmp(which, "optin_over")) {
            const int optin = !strcmp(which, "optin") ? 100 * 1024 : 16 * 1024;
            cuda_check(cudaFuncSetAttribute(sum_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
            sum_kernel<<<nblocks, BLOCK, !strcmp(which, "optin") ? optin : 32 * 1024>>>(d_out, d_x);
        }
        else if (!strcmp(which, "warp_partials")) sum_warp_partials_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        else if (!strcmp(which, "uninit_shared")) sum_uninit_shared_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        else if (!strcmp(which, "nobarrier")) sum_nobarrier_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        else sum_divergent_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
        cuda_check(cudaMemcpy(got, d_out, nblocks * sizeof(float), cudaMemcpyDeviceToHost));
        bad = compare(which, got, want, nblocks, SUM_TOL);
    } else if (!strcmp(which, "divergent2")) {
        sum_ifelse_barrier_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
    } else if (!strcmp(which, "shared_oob")) {
        shift_shared_oob_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
    } else if (!strcmp(which, "shfl_partial")) {
        warp_sum_partial_kernel<<<nblocks, 48>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
    } else if (!strcmp(which, "shfl_barrier")) {
        shfl_vs_barrier_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
    } else if (!strcmp(which, "shfl_ballot")) {
        shfl_vs_ballot_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
    } else if (!strcmp(which, "oob")) {
        // n outputs: the grid covers n + BLOCK threads
        scale_oob_kernel<<<nblocks + 1, BLOCK>>>(d_out, d_x, n);
        cuda_check(cudaGetLastError());
    } else if (!strcmp(which, "shfl_exited")) {
        warp_sum_exited_kernel<<<nblocks, BLOCK>>>(d_out, d_x);
        cuda_check(cudaGetLastError());
    } else {
        fprintf(stderr, "error: unknown case %s\n", which);
        return 2;
    }
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
    free(x);
    if (!bad) printf("%s: no error found\n", which);
    return bad;
}
