// dev/emu/tests/wmma.cu: the warp matrix multiply-accumulate subset of the
// emulation (nvcuda::wmma, m16n16k16, bf16 inputs, fp32 accumulators).
//   wmma          out (M,N) = A (M,K) @ W (N,K)^T + bias, one warp per 16x16
//                 output tile (A row-major, W read as a column-major B),
//                 against the CPU; also a row-major B and an accumulator
//                 loaded from memory
//   wmma layout   a kernel that assumes which tile elements a lane holds
//                 (writes x[i] of lane l to element 8 l + i): the result must
//                 be wrong (the layout is unspecified on the device, and
//                 scrambled in the emulation)
//   wmma halfwarp an mma_sync that only lanes 0..15 reach: the emulator must
//                 stop (inactive lanes)
//   wmma shared   A and B staged in __shared__ __align__(32) arrays: right
//   wmma misaligned, wmma badldm, wmma unaligned_shared
//                 a fragment loaded from a pointer 16 bytes off a 32-byte
//                 boundary, with a row stride of 12 bf16 (24 bytes), or from
//                 a __shared__ bf16 array without __align__(32) (the
//                 emulation places it 2 bytes past a 32-byte boundary, as
//                 the device may): the device requires 32-byte pointers and
//                 strides in multiples of 16 bytes, so the emulator must stop
// Real CUDA: compiles with nvcc too (sm_80 and up).
#include <string.h>
#include "common.cuh"
#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <mma.h>
#endif
using namespace nvcuda;

#define M 48
#define N 32
#define K 64

// one warp per 16x16 tile of out; grid (N/16, M/16); bias added through C
__global__ void wmma_linear_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* w, const float* bias_tile) {
    int tm = blockIdx.y * 16, tn = blockIdx.x * 16;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(acc, bias_tile + tn, N, wmma::mem_row_major);   // bias rows: (16,N), all rows equal
    for (int k = 0; k < K; k += 16) {
        wmma::load_matrix_sync(fa, a + (size_t)tm * K + k, K);
        wmma::load_matrix_sync(fb, w + (size_t)tn * K + k, K);   // B(k,n) = w[n][k]: column-major, ldm K
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(out + (size_t)tm * N + tn, acc, N, wmma::mem_row_major);
}

// out (16,16) = A (16,16) @ B (16,16), B row-major, stored column-major
__global__ void wmma_rowb_kernel(float* out_colmajor, const __nv_bfloat16* a, const __nv_bfloat16* b) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(out_colmajor, acc, 16, wmma::mem_col_major);
}

// wrong on purpose: assumes lane l holds row-major elements 8 l .. 8 l + 7
__global__ void wmma_layout_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    for (int i = 0; i < acc.num_elements; i++) out[threadIdx.x * acc.num_elements + i] = acc.x[i];
}

// wrong on purpose: half the warp skips the mma
__global__ void wmma_halfwarp_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    if (threadIdx.x >= 16) return;
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(out, acc, 16, wmma::mem_row_major);
}

// out (16,16) = A @ B with A loaded from a + a_offset with row stride ldm
// (the misaligned and badldm modes break the device's rules with them)
__device__ void mma16(float* out, const __nv_bfloat16* a, unsigned ldm, const __nv_bfloat16* b) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, ldm);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(out, acc, 16, wmma::mem_row_major);
}
__global__ void wmma_strided_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b, int a_offset,
                                    unsigned ldm) {
    mma16(out, a + a_offset, ldm, b);
}

// the same with A and B staged in shared memory, as the trainer's kernels
// do: declared __align__(32) for the fragments, or (wrong on purpose) with
// A's tile at a bf16 array's own alignment, which is all the device promises
__global__ void wmma_shared_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b) {
    __shared__ __align__(32) __nv_bfloat16 sa[256];
    __shared__ __align__(32) __nv_bfloat16 sb[256];
    for (int i = threadIdx.x; i < 256; i += 32) sa[i] = a[i], sb[i] = b[i];
    __syncwarp();
    mma16(out, sa, 16, sb);
}
__global__ void wmma_unaligned_shared_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b) {
    __shared__ __nv_bfloat16 sa[256];
    __shared__ __align__(32) __nv_bfloat16 sb[256];
    for (int i = threadIdx.x; i < 256; i += 32) sa[i] = a[i], sb[i] = b[i];
    __syncwarp();
    mma16(out, sa, 16, sb);
}

// bf16 copies of values in [-1, 1); xf gets the bf16 values as floats
static void fill_bf16(__nv_bfloat16* x, float* xf, int n, unsigned seed) {
    float* tmp = (float*)malloc(n * sizeof(float));
    fill_random(tmp, n, seed);
    for (int i = 0; i < n; i++) {
        x[i] = __float2bfloat16(tmp[i]);
        xf[i] = __bfloat162float(x[i]);
    }
    free(tmp);
}

template <class T>
static T* to_device(const T* h, int n) {
    T* d;
    cuda_check(cudaMalloc(&d, n * sizeof(T)));
    cuda_check(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    __nv_bfloat16 *a = (__nv_bfloat16*)malloc(M * K * sizeof(__nv_bfloat16));
    __nv_bfloat16 *w = (__nv_bfloat16*)malloc(N * K * sizeof(__nv_bfloat16));
    float *af = (float*)malloc(M * K * sizeof(float)), *wf = (float*)malloc(N * K * sizeof(float));
    float *bias = (float*)malloc(16 * N * sizeof(float)), *want = (float*)malloc(M * N * sizeof(float));
    float* got = (float*)malloc(M * N * sizeof(float));
    fill_bf16(a, af, M * K, 1);
    fill_bf16(w, wf, N * K, 2);
    fill_random(bias, N, 3);
    for (int r = 1; r < 16; r++) memcpy(bias + r * N, bias, N * sizeof(float));
    __nv_bfloat16 *da = to_device(a, M * K), *dw = to_device(w, N * K);
    float *dbias = to_device(bias, 16 * N), *dout;
    cuda_check(cudaMalloc(&dout, M * N * sizeof(float)));
    int rc = 2;
    // products of bf16 values are exact in fp32; sums of K of them round in
    // another order than the CPU's: SUM_TOL covers it
    if (!strcmp(mode, "check")) {
        wmma_linear_kernel<<<dim3(N / 16, M / 16), 32>>>(dout, da, dw, dbias);
        cuda_check(cudaGetLastError());
        cuda_check(cudaMemcpy(got, dout, M * N * sizeof(float), cudaMemcpyDeviceToHost));
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = bias[j];
                for (int k = 0; k < K; k++) s += af[i * K + k] * wf[j * K + k];
                want[i * N + j] = s;
            }
        rc = compare("wmma_linear", got, want, M * N, SUM_TOL);
        // A = the first 16x16 of a (ldm 16 rows of a's first 16 columns: copy), B = w's first 16x16 row-major
        __nv_bfloat16 a16[256], b16[256];
        float a16f[256], b16f[256], want16[256], got16[256];
        for (int i = 0; i < 256; i++) {
            a16[i] = a[(i / 16) * K + i % 16]; a16f[i] = af[(i / 16) * K + i % 16];
            b16[i] = w[(i / 16) * K + i % 16]; b16f[i] = wf[(i / 16) * K + i % 16];
        }
        __nv_bfloat16 *da16 = to_device(a16, 256), *db16 = to_device(b16, 256);
        wmma_rowb_kernel<<<1, 32>>>(dout, da16, db16);
        cuda_check(cudaGetLastError());
        cuda_check(cudaMemcpy(got16, dout, 256 * sizeof(float), cudaMemcpyDeviceToHost));
        cuda_check(cudaFree(da16));
        cuda_check(cudaFree(db16));
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) {
                float s = 0.0f;
                for (int k = 0; k < 16; k++) s += a16f[r * 16 + k] * b16f[k * 16 + c];
                want16[c * 16 + r] = s;   // stored column-major
            }
        rc |= compare("wmma_rowb", got16, want16, 256, SUM_TOL);
        if (!rc) printf("wmma: linear (%dx%dx%d, col-major B, bias through C) and row-major B match the CPU\n", M, N, K);
    }
    if (!strcmp(mode, "layout") || !strcmp(mode, "halfwarp") || !strcmp(mode, "shared")) {
        // A, B: the first 256 values, ldm 16
        if (!strcmp(mode, "layout")) wmma_layout_kernel<<<1, 32>>>(dout, da, dw);
        else if (!strcmp(mode, "shared")) wmma_shared_kernel<<<1, 32>>>(dout, da, dw);
        else wmma_halfwarp_kernel<<<1, 32>>>(dout, da, dw);
        cuda_check(cudaGetLastError());
        cuda_check(cudaMemcpy(got, dout, 256 * sizeof(float), cudaMemcpyDeviceToHost));
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) {
                float s = 0.0f;
                for (int k = 0; k < 16; k++) s += af[r * 16 + k] * wf[k * 16 + c];
                want[r * 16 + c] = s;
            }
        rc = compare(mode, got, want, 256, SUM_TOL);
    }
    if (!strcmp(mode, "misaligned") || !strcmp(mode, "badldm") || !strcmp(mode, "unaligned_shared")) {
        // the emulator stops inside the kernel
        if (!strcmp(mode, "misaligned")) wmma_strided_kernel<<<1, 32>>>(dout, da, dw, 8, 16);
        else if (!strcmp(mode, "badldm")) wmma_strided_kernel<<<1, 32>>>(dout, da, dw, 0, 12);
        else wmma_unaligned_shared_kernel<<<1, 32>>>(dout, da, dw);
        cuda_check(cudaGetLastError());
        cuda_check(cudaDeviceSynchronize());
        rc = 1;
    }
    if (rc == 2) fprintf(stderr, "error: usage: wmma [check|layout|halfwarp|shared|misaligned|badldm|unaligned_shared]\n");
    cuda_check(cudaFree(da));
    cuda_check(cudaFree(dw));
    cuda_check(cudaFree(dbias));
    cuda_check(cudaFree(dout));
    free(a); free(w); free(af); free(wf); free(bias); free(want); free(got);
    return rc;
}
