// dev/emu/tests/ptx.cu: the emulation of the PTX instructions llmc/ptx.cuh
// wraps. mma.sync m16n8k16 (bf16 -> fp32) and ldmatrix x4 (with and without
// .trans) against register layouts written out here from the PTX ISA's
// tables, independently of dev/emu/cuda_emu.h's code; cp.async in a
// two-buffer pipeline.
//   ptx           one warp: fragments built by hand from A (16,16) and B
//                 (16,16) in shared memory, D = A B + C for both 8-column
//                 halves of B, against the CPU; ldmatrix_x4 of A's four 8x8
//                 quarters and ldmatrix_x4_trans of B's must give exactly
//                 the hand-built registers. Then the pipeline: 64 threads
//                 sum 6 tiles of (64,4) floats, each tile loaded by cp.async
//                 while the previous one is read, each thread reading a
//                 slot another warp copied: right in every mode. Then the
//                 scalar wrappers against values worked out from the PTX
//                 ISA: ex2_approx flushes results below 2^-126 to +0
//                 (.ftz), pack_bf16x2 rounds to nearest, ties to even
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
// Real CUDA: compiles with nvcc too (sm_80 and up).
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

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    const int half_warp = !strcmp(mode, "halfwarp");
    // ldmatrix rows: 1 misaligned, 2 in global memory
    const int bad_rows = !strcmp(mode, "misaligned") ? 1 : !strcmp(mode, "global_ldmatrix") ? 2 : 0;
    if (!strcmp(mode, "nowait")) return check_pipeline(1);
    if (!strcmp(mode, "norefill_barrier")) return check_pipeline(2);
    if (!half_warp && !bad_rows && strcmp(mode, "check")) {
        fprintf(stderr, "error: usage: ptx [check|halfwarp|misaligned|global_ldmatrix|nowait|norefill_barrier]\n");
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
            fprintf(stderr, "error: ldmatrix: lane %d did not get the documented fragment registers\n", l);
            return 1;
        }
    printf("ptx: mma D = A B + C matches the CPU, ldmatrix gives the documented fragments\n");
    return check_pipeline(0) || check_scalars();
}
