// dev/emu/tests/coop_groups.cu: the cooperative-groups subset of the
// emulation (this_thread_block, tiled_partition<32>, tile shuffles, sync and
// cooperative_groups::reduce with plus and greater).
//   coop_groups           tile and block sums and maxima vs the CPU (blocks of
//                         256 threads, and of 48: a partial second warp)
//   coop_groups halfwarp  a tile reduce that only lanes 0..15 call: the
//                         emulator must stop (inactive lanes)
// Real CUDA: compiles with nvcc too.
#include <string.h>
#include "common.cuh"
#ifdef __CUDACC__
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#endif
namespace cg = cooperative_groups;

#define BLOCK 256

// per tile of 32 consecutive x: sum and max (reduce), sum again by shfl_down
// and by shfl_xor; per block: the sum of the tile sums through shared memory
__global__ void tile_stats_kernel(float* tsum, float* tmax, float* tsum2, float* bsum, const float* x) {
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> tile = cg::tiled_partition<32>(block);
    __shared__ float partial[BLOCK / 32];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    float s = cg::reduce(tile, v, cg::plus<float>());
    float m = cg::reduce(tile, v, cg::greater<float>());
    float d = v, e = v;
    for (int offset = 16; offset > 0; offset /= 2) {
        d += tile.shfl_down(d, offset);
        e += tile.shfl_xor(e, offset);
    }
    tile.sync();
    int t = i / 32;
    if (tile.thread_rank() == 0) {
        tsum[t] = s;
        tmax[t] = m;
        tsum2[t] = (d + e) * 0.5f;   // both must agree with s
        partial[tile.meta_group_rank()] = s;
    }
    block.sync();
    if (tile.meta_group_rank() == 0) {
        float p = tile.thread_rank() < tile.meta_group_size() ? partial[tile.thread_rank()] : 0.0f;
        p = cg::reduce(tile, p, cg::plus<float>());
        if (tile.thread_rank() == 0) bsum[blockIdx.x] = p;
    }
}

// blocks of 48 threads: the second tile has 16 lanes; out[2b], out[2b+1] =
// the two tiles' sums, out[2b+1] counting only the 16 lanes that exist
__global__ void partial_tile_kernel(float* out, const float* x) {
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> tile = cg::tiled_partition<32>(block);
    float s = cg::reduce(tile, x[blockIdx.x * 48 + threadIdx.x], cg::plus<float>());
    if (tile.thread_rank() == 0) out[blockIdx.x * 2 + tile.meta_group_rank()] = s;
}

// BUG: only half of each tile takes part in the reduce
__global__ void halfwarp_reduce_kernel(float* out, const float* x) {
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> tile = cg::tiled_partition<32>(block);
    if (tile.thread_rank() < 16) {
        float s = cg::reduce(tile, x[blockIdx.x * blockDim.x + threadIdx.x], cg::plus<float>());
        if (tile.thread_rank() == 0) out[blockIdx.x * 8 + tile.meta_group_rank()] = s;
    }
}

int main(int argc, char** argv) {
    const char* which = argc > 1 ? argv[1] : "good";
    const int nblocks = 4, n = nblocks * BLOCK, ntiles = n / 32;
    float* x = (float*)malloc(n * sizeof(float));
    float want[3][n / 32], got[4][n / 32];
    fill_random(x, n, 99);
    float *d_x, *d_out[4];
    cuda_check(cudaMalloc(&d_x, n * sizeof(float)));
    for (int k = 0; k < 4; k++) cuda_check(cudaMalloc(&d_out[k], n * sizeof(float)));   // room for partial_tile_kernel
    cuda_check(cudaMemcpy(d_x, x, n * sizeof(float), cudaMemcpyHostToDevice));
    int bad = 0;
    if (!strcmp(which, "halfwarp")) {
        halfwarp_reduce_kernel<<<nblocks, BLOCK>>>(d_out[0], d_x);
        cuda_check(cudaGetLastError());
        cuda_check(cudaDeviceSynchronize());
    } else if (!strcmp(which, "good")) {
        tile_stats_kernel<<<nblocks, BLOCK>>>(d_out[0], d_out[1], d_out[2], d_out[3], d_x);
        cuda_check(cudaGetLastError());
        for (int k = 0; k < 4; k++)
            cuda_check(cudaMemcpy(got[k], d_out[k], ntiles * sizeof(float), cudaMemcpyDeviceToHost));
        float bwant[nblocks] = {0};
        for (int t = 0; t < ntiles; t++) {
            want[0][t] = 0.0f;
            want[1][t] = x[t * 32];
            for (int l = 0; l < 32; l++) {
                want[0][t] += x[t * 32 + l];
                if (x[t * 32 + l] > want[1][t]) want[1][t] = x[t * 32 + l];
            }
            bwant[t * 32 / BLOCK] += want[0][t];
        }
        bad |= compare("reduce plus", got[0], want[0], ntiles, SUM_TOL);
        // the maximum is one of the inputs: exact
        bad |= compare("reduce greater", got[1], want[1], ntiles, 0.0f);
        bad |= compare("shfl_down/shfl_xor sums", got[2], want[0], ntiles, SUM_TOL);
        bad |= compare("block sum of tile sums", got[3], bwant, nblocks, SUM_TOL);

        int pb = n / 48;   // blocks of 48 threads
        partial_tile_kernel<<<pb, 48>>>(d_out[0], d_x);
        cuda_check(cudaGetLastError());
        float* pgot = (float*)malloc(2 * pb * sizeof(float));
        float* pwant = (float*)malloc(2 * pb * sizeof(float));
        cuda_check(cudaMemcpy(pgot, d_out[0], 2 * pb * sizeof(float), cudaMemcpyDeviceToHost));
        for (int b = 0; b < pb; b++) {
            pwant[2 * b] = pwant[2 * b + 1] = 0.0f;
            for (int l = 0; l < 48; l++) pwant[2 * b + l / 32] += x[b * 48 + l];
        }
        bad |= compare("reduce over a partial tile", pgot, pwant, 2 * pb, SUM_TOL);
        free(pgot);
        free(pwant);
    } else {
        fprintf(stderr, "error: unknown case %s\n", which);
        return 2;
    }
    cuda_check(cudaFree(d_x));
    for (int k = 0; k < 4; k++) cuda_check(cudaFree(d_out[k]));
    free(x);
    if (!bad) printf("%s: no error found\n", which);
    return bad;
}
