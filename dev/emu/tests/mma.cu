// dev/emu/tests/mma.cu: the emulation of the PTX instructions llmc/mma.cuh
// wraps (mma.sync m16n8k16 bf16 -> fp32, ldmatrix x4 with and without
// .trans), against register layouts written out here from the PTX ISA's
// tables, independently of dev/emu/cuda_emu.h's code.
//   mma           one warp: fragments built by hand from A (16,16) and B
//                 (16,16) in shared memory, D = A B + C for both 8-column
//                 halves of B, against the CPU; ldmatrix_x4 of A's four 8x8
//                 quarters and ldmatrix_x4_trans of B's must give exactly
//                 the hand-built registers
//   mma halfwarp  an mma only lanes 0..15 reach: the emulator must stop
//                 (inactive lane)
//   mma misaligned
//                 ldmatrix from row addresses 8 bytes off a 16-byte
//                 boundary: the device requires 16-byte rows, so the
//                 emulator must stop
// Real CUDA: compiles with nvcc too (sm_80 and up).
#include <string.h>
#include "common.cuh"
#include "../../../llmc/mma.cuh"

// the hand-built fragments: with g = lane / 4, t = lane % 4, two bf16 per
// register, the lower column (or k) in the low half
__device__ uint32_t pair(const __nv_bfloat16* p, int stride) {   // p[0], p[stride]
    return (uint32_t)__bfloat16_as_ushort(p[0]) | (uint32_t)__bfloat16_as_ushort(p[stride]) << 16;
}

// out: D (16,16) row-major (columns 0..7 from B's first half, 8..15 its
// second), then (as 0/1 floats) whether ldmatrix gave the hand-built registers
__global__ void mma_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b, const float* c,
                           int half_warp, int misaligned) {
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
        mma_bf16_16816(d, fa, fb[h]);
        out[g * 16 + 8 * h + 2 * t] = d[0];
        out[g * 16 + 8 * h + 2 * t + 1] = d[1];
        out[(g + 8) * 16 + 8 * h + 2 * t] = d[2];
        out[(g + 8) * 16 + 8 * h + 2 * t + 1] = d[3];
    }
    // lane l gives row l % 8 of matrix l / 8: A's quarters in fragment order
    // (rows 0-7 | 8-15, then columns 0-7 | 8-15); B's (k rows 0-7 | 8-15,
    // then n columns 0-7 | 8-15), read transposed
    const int r = lane % 8 + 8 * (lane / 8 % 2), col = 8 * (lane / 16) + (misaligned ? 4 : 0);
    uint32_t la[4], lb[4];
    ldmatrix_x4(la, sa + r * 24 + col);
    ldmatrix_x4_trans(lb, sb + r * 24 + col);
    int same = 1;
    for (int i = 0; i < 4; i++) same &= la[i] == fa[i];
    for (int i = 0; i < 4; i++) same &= lb[i] == fb[i / 2][i % 2];
    out[256 + lane] = (float)same;
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    const int half_warp = !strcmp(mode, "halfwarp"), misaligned = !strcmp(mode, "misaligned");
    if (!half_warp && !misaligned && strcmp(mode, "check")) {
        fprintf(stderr, "error: usage: mma [check|halfwarp|misaligned]\n");
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
    mma_kernel<<<1, 32>>>(d_out, d_a, d_b, d_c, half_warp, misaligned);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(got, d_out, sizeof(got), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_a));
    cuda_check(cudaFree(d_b));
    cuda_check(cudaFree(d_c));
    cuda_check(cudaFree(d_out));
    for (int i = 0; i < 256; i++)
        if (!(fabsf(got[i] - want[i]) <= SUM_TOL)) {
            fprintf(stderr, "mma: mismatch vs the CPU reference at D[%d][%d]: %g, want %g\n", i / 16, i % 16, got[i],
                    want[i]);
            return 1;
        }
    for (int l = 0; l < 32; l++)
        if (got[256 + l] != 1.0f) {
            fprintf(stderr, "mma: lane %d: ldmatrix did not give the documented fragment registers\n", l);
            return 1;
        }
    printf("mma: D = A B + C matches the CPU, ldmatrix gives the documented fragments\n");
    return 0;
}
