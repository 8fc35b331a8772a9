// dev/emu/tests/good_kernels.cu: correct kernels that use each feature of the
// emulation (static and dynamic shared memory, __syncthreads, warp shuffles,
// ballot/any/all, atomics, 2-D blocks), each checked against a CPU
// reference. Exits 1 with an "error: ..." line on any mismatch. Real CUDA:
// compiles with nvcc too (tests/t_emu.sh checks that).
#include "common.cuh"

#define BLOCK 256

// out[blockIdx.x] = sum of the block's slice of x: tree reduction in shared memory
__global__ void block_sum_kernel(float* out, const float* x, int n) {
    __shared__ float buf[BLOCK];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    buf[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if ((int)threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

// per warp of 32 consecutive x: the sum (shuffle xor: every lane gets it),
// lane 0's value broadcast, the count of positives (ballot), any > 0.9, all > -1
__global__ void warp_stats_kernel(float* sum, float* first, int* npos, int* anybig, int* allgt, const float* x) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int w = i / 32;
    float v = x[i];
    float s = v;
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    float d = v;
    for (int offset = 16; offset > 0; offset /= 2) d += __shfl_down_sync(0xffffffffu, d, offset);
    float f = __shfl_sync(0xffffffffu, v, 0);
    unsigned pos = __ballot_sync(0xffffffffu, v > 0.0f);
    int big = __any_sync(0xffffffffu, v > 0.9f);
    int gt = __all_sync(0xffffffffu, v > -1.0f);
    int iv = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
    if (iv != ((int)threadIdx.x ^ 1)) s = -1000.0f;   // int shuffle: lanes swap pairwise
    __syncwarp();
    if (threadIdx.x % 32 == 0) {
        sum[w] = (s + d) * 0.5f;   // both reductions must agree
        first[w] = f;
        npos[w] = __popc(pos);
        anybig[w] = big;
        allgt[w] = gt;
    }
}

// histogram of x over nbins equal bins of [-1, 1): counts (int atomics on a
// shared-memory block histogram, then global) and per-bin sums (float atomics)
__global__ void histogram_kernel(int* counts, float* sums, const float* x, int n, int nbins) {
    __shared__ int local[64];
    for (int b = threadIdx.x; b < nbins; b += blockDim.x) local[b] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int b = (int)((x[i] + 1.0f) * 0.5f * nbins);
        b = b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
        atomicAdd(&local[b], 1);
        atomicAdd(&sums[b], x[i]);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < nbins; b += blockDim.x) atomicAdd(&counts[b], local[b]);
}

// reverses each block's slice of x (2-D blocks, dynamic shared memory)
__global__ void reverse_kernel(float* out, const float* x) {
    extern __shared__ float tile[];
    int nt = blockDim.x * blockDim.y;
    int t = threadIdx.y * blockDim.x + threadIdx.x;
    tile[t] = x[blockIdx.x * nt + t];
    __syncthreads();
    out[blockIdx.x * nt + t] = tile[nt - 1 - t];
}

// y = a * x for a template type and unroll factor (launch with template
// arguments, a stream and a launch spread over lines)
template <typename T, int UNROLL>
__global__ void scale_kernel(T* y, const T* x, T a, int n) {
    int base = (blockIdx.x * blockDim.x + threadIdx.x) * UNROLL;
#pragma unroll
    for (int u = 0; u < UNROLL; u++)
        if (base + u < n) y[base + u] = a * x[base + u];
}

// out = x^T for a (rows, cols) matrix, through a padded shared tile
// (2-D __shared__ array with __align__, a template parameter in its size)
template <int TILE>
__global__ void transpose_kernel(float* out, const float* x, int rows, int cols) {
    __shared__ __align__(16) float tile[TILE][TILE + 1];
    int c = blockIdx.x * TILE + threadIdx.x, r = blockIdx.y * TILE + threadIdx.y;
    if (r < rows && c < cols) tile[threadIdx.y][threadIdx.x] = x[r * cols + c];
    __syncthreads();
    int oc = blockIdx.y * TILE + threadIdx.x, orow = blockIdx.x * TILE + threadIdx.y;
    if (orow < cols && oc < rows) out[orow * rows + oc] = tile[threadIdx.x][threadIdx.y];
}

// inclusive prefix sums over segments of 8 (shuffle up with width 8); the
// launch in this comment is not rewritten: scan8_kernel<<<1, 32>>>(out, x)
__global__ void scan8_kernel(float* out, const float* x) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    for (int d = 1; d < 8; d *= 2) {
        float u = __shfl_up_sync(0xffffffffu, v, d, 8);
        if ((int)(threadIdx.x % 8) >= d) v += u;
    }
    out[i] = v;
}

int main(void) {
    const int n = 4096, nbins = 37;
    float* x = (float*)malloc(n * sizeof(float));
    float* got = (float*)malloc(n * sizeof(float));
    float* want = (float*)malloc(n * sizeof(float));
    fill_random(x, n, 42);
    float *d_x, *d_out, *d_out2;
    int *d_i1, *d_i2, *d_i3;
    cuda_check(cudaMalloc(&d_x, n * sizeof(float)));
    cuda_check(cudaMalloc(&d_out, n * sizeof(float)));
    cuda_check(cudaMalloc(&d_out2, n * sizeof(float)));
    cuda_check(cudaMalloc(&d_i1, n * sizeof(int)));
    cuda_check(cudaMalloc(&d_i2, n * sizeof(int)));
    cuda_check(cudaMalloc(&d_i3, n * sizeof(int)));
    cuda_check(cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice));
    int bad = 0;

    // block reduction: n - 100 elements, so the last block is partial
    int m = n - 100, nblocks = (m + BLOCK - 1) / BLOCK;
    block_sum_kernel<<<nblocks, BLOCK>>>(d_out, d_x, m);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, nblocks * sizeof(float), cudaMemcpyDeviceToHost));
    for (int b = 0; b < nblocks; b++) {
        double s = 0.0;
        for (int i = b * BLOCK; i < (b + 1) * BLOCK && i < m; i++) s += x[i];
        want[b] = (float)s;
    }
    bad |= compare("block_sum_kernel", got, want, nblocks, SUM_TOL);

    // warp collectives: 4 warps per block
    int nwarps = n / 32;
    warp_stats_kernel<<<n / 128, 128>>>(d_out, d_out2, d_i1, d_i2, d_i3, d_x);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, nwarps * sizeof(float), cudaMemcpyDeviceToHost));
    for (int w = 0; w < nwarps; w++) {
        double s = 0.0;
        for (int l = 0; l < 32; l++) s += x[w * 32 + l];
        want[w] = (float)s;
    }
    bad |= compare("warp_stats_kernel sum", got, want, nwarps, SUM_TOL);
    cuda_check(cudaMemcpy(got, d_out2, nwarps * sizeof(float), cudaMemcpyDeviceToHost));
    for (int w = 0; w < nwarps; w++) want[w] = x[w * 32];
    bad |= compare("warp_stats_kernel broadcast", got, want, nwarps, 0.0f);
    int* hi = (int*)malloc(3 * nwarps * sizeof(int));
    cuda_check(cudaMemcpy(hi, d_i1, nwarps * sizeof(int), cudaMemcpyDeviceToHost));
    cuda_check(cudaMemcpy(hi + nwarps, d_i2, nwarps * sizeof(int), cudaMemcpyDeviceToHost));
    cuda_check(cudaMemcpy(hi + 2 * nwarps, d_i3, nwarps * sizeof(int), cudaMemcpyDeviceToHost));
    for (int w = 0; w < nwarps && !bad; w++) {
        int pos = 0, big = 0, gt = 1;
        for (int l = 0; l < 32; l++) {
            float v = x[w * 32 + l];
            pos += v > 0.0f;
            big |= v > 0.9f;
            gt &= v > -1.0f;
        }
        if (hi[w] != pos || hi[nwarps + w] != big || hi[2 * nwarps + w] != gt) {
            fprintf(stderr, "error: warp_stats_kernel: warp %d: ballot/any/all gave %d %d %d, want %d %d %d\n",
                    w, hi[w], hi[nwarps + w], hi[2 * nwarps + w], pos, big, gt);
            bad = 1;
        }
    }

    // histogram: 3 blocks of 96 threads stride over all of x
    cuda_check(cudaMemset(d_i1, 0, nbins * sizeof(int)));
    cuda_check(cudaMemset(d_out, 0, nbins * sizeof(float)));
    histogram_kernel<<<3, 96>>>(d_i1, d_out, d_x, n, nbins);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(hi, d_i1, nbins * sizeof(int), cudaMemcpyDeviceToHost));
    cuda_check(cudaMemcpy(got, d_out, nbins * sizeof(float), cudaMemcpyDeviceToHost));
    int counts[64] = {0};
    double sums[64] = {0};
    for (int i = 0; i < n; i++) {
        int b = (int)((x[i] + 1.0f) * 0.5f * nbins);
        b = b < 0 ? 0 : b >= nbins ? nbins - 1 : b;
        counts[b]++;
        sums[b] += x[i];
    }
    for (int b = 0; b < nbins; b++) {
        if (hi[b] != counts[b] && !bad) {
            fprintf(stderr, "error: histogram_kernel: bin %d: count %d, want %d\n", b, hi[b], counts[b]);
            bad = 1;
        }
        want[b] = (float)sums[b];
    }
    bad |= compare("histogram_kernel sums", got, want, nbins, SUM_TOL);

    // reverse: 2-D blocks of 16 x 8, dynamic shared memory
    dim3 block(16, 8);
    int nt = 16 * 8;
    reverse_kernel<<<n / nt, block, nt * sizeof(float)>>>(d_out, d_x);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) want[i] = x[(i / nt) * nt + nt - 1 - i % nt];
    bad |= compare("reverse_kernel", got, want, n, 0.0f);

    // template kernel on a stream
    cudaStream_t stream;
    cuda_check(cudaStreamCreate(&stream));
    int m2 = n - 3;
    scale_kernel<float, 2><<<(m2 / 2 + 63) / 64, 64, 0,
                             stream>>>(d_out, d_x,
                                       0.5f, m2);
    cuda_check(cudaGetLastError());
    cuda_check(cudaStreamSynchronize(stream));
    cuda_check(cudaStreamDestroy(stream));
    cuda_check(cudaMemcpy(got, d_out, m2 * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < m2; i++) want[i] = 0.5f * x[i];
    bad |= compare("scale_kernel<float, 2>", got, want, m2, 0.0f);

    // transpose of a 45 x 70 matrix in 16 x 16 tiles
    const int rows = 45, cols = 70;
    dim3 tgrid((cols + 15) / 16, (rows + 15) / 16);
    transpose_kernel<16><<<tgrid, dim3(16, 16)>>>(d_out, d_x, rows, cols);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, rows * cols * sizeof(float), cudaMemcpyDeviceToHost));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) want[c * rows + r] = x[r * cols + c];
    bad |= compare("transpose_kernel<16>", got, want, rows * cols, 0.0f);

    // segmented scans
    scan8_kernel<<<n / 64, 64>>>(d_out, d_x);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) want[i] = (i % 8 ? want[i - 1] : 0.0f) + x[i];
    bad |= compare("scan8_kernel", got, want, n, SUM_TOL);

    // a bad launch configuration is reported by cudaGetLastError, as on the device
    reverse_kernel<<<1, 2048>>>(d_out, d_x);
    if (cudaGetLastError() != cudaErrorInvalidConfiguration) {
        fprintf(stderr, "error: a launch of 2048 threads per block was not refused\n");
        bad = 1;
    }
    cuda_check(cudaGetLastError());

    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
    cuda_check(cudaFree(d_out2));
    cuda_check(cudaFree(d_i1));
    cuda_check(cudaFree(d_i2));
    cuda_check(cudaFree(d_i3));
    free(x);
    free(got);
    free(want);
    free(hi);
    if (!bad) printf("good_kernels: all match the CPU reference\n");
    return bad;
}
