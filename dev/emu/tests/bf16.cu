// dev/emu/tests/bf16.cu: bf16 conversions and the 128-bit vector types of the
// emulation (dev/emu/emu_bf16.h) against a reference of our own. Real CUDA:
// nvcc compiles it against <cuda_bf16.h>, so the emulated API is the real one.
//
//   bf16            every float whose low 16 bits are a boundary pattern
//                   (0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, ...) for all 2^16
//                   high halves, plus 2^22 random floats, plus all 2^16 bf16
//                   values back to float; then operators and a kernel that
//                   moves bf16 through int4/float4 128-bit loads and stores
//   bf16 all        every one of the 2^32 float bit patterns (minutes under ASan)
//
// The reference rounds by comparing the distances, in double, from the float
// to the two bf16 values around it, decoded from their fields (no bit tricks).
#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif
#include <stdint.h>
#include <string.h>
#include "common.cuh"

// value of the bf16 fields (sign, 8-bit exponent E, 7-bit mantissa M); E = 255
// with M = 0 gives 2^128, the "next value" past the largest finite bf16
static double decode_bf16(unsigned b) {
    unsigned s = b >> 15 & 1, e = b >> 7 & 0xff, m = b & 0x7f;
    double v = e == 0 ? ldexp((double)m, -133) : ldexp((double)(128 + m), (int)e - 134);
    return s ? -v : v;
}

// the device's float -> bf16, by distances: the bf16 values below and above
// |f| in magnitude are the truncation t and t+1 (same sign)
static unsigned ref_float2bf16(uint32_t u) {
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return 0x7fff;   // NaN
    if ((u & 0x7fffffffu) == 0x7f800000u) return u >> 16;                     // +-inf
    float f;
    memcpy(&f, &u, 4);
    unsigned t = u >> 16;
    double x = fabs((double)f), lo = fabs(decode_bf16(t)), hi = fabs(decode_bf16(t + 1));
    double dlo = x - lo, dhi = hi - x;
    unsigned r = dlo < dhi ? t : dhi < dlo ? t + 1 : (t & 1) ? t + 1 : t;
    return r;   // t + 1 with E = 255, M = 0 is infinity, the right overflow
}

static float from_u(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static unsigned bits(__nv_bfloat16 h) { return __bfloat16_as_ushort(h); }

static long long bad = 0;
static void check_one(uint32_t u) {
    unsigned got = bits(__float2bfloat16(from_u(u))), want = ref_float2bf16(u);
    unsigned got_rn = bits(__float2bfloat16_rn(from_u(u)));
    if ((got != want || got_rn != want) && bad++ < 5)
        fprintf(stderr, "error: bf16: __float2bfloat16(0x%08x = %.9g) = 0x%04x (_rn 0x%04x), want 0x%04x\n",
                (unsigned)u, from_u(u), got, got_rn, want);
}

// copies n bf16 (n % 8 == 0) as 128-bit chunks: int4 for the load, float4
// for the store, as the kernels do
__global__ void copy128_kernel(__nv_bfloat16* out, const __nv_bfloat16* in, int n) {
    int i = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i >= n) return;
    int4 v = *reinterpret_cast<const int4*>(in + i);
    float4 f;
    memcpy(&f, &v, sizeof f);
    *reinterpret_cast<float4*>(out + i) = f;
}

int main(int argc, char** argv) {
    int all = argc > 1 && !strcmp(argv[1], "all");
    if (argc > 1 && !all) { fprintf(stderr, "error: usage: bf16 [all]\n"); return 2; }
    long long n = 0;
    if (all) {
        for (uint64_t u = 0; u <= 0xffffffffull; u++, n++) check_one((uint32_t)u);
    } else {
        static const unsigned lows[] = {0x0000, 0x0001, 0x3fff, 0x4000, 0x7ffe, 0x7fff, 0x8000,
                                        0x8001, 0xbfff, 0xc000, 0xfffe, 0xffff};
        for (unsigned hi = 0; hi < 0x10000; hi++)
            for (unsigned lo : lows) { check_one(hi << 16 | lo); n++; }
        uint32_t s = 12345;
        for (int i = 0; i < 1 << 22; i++, n++) { s = s * 1664525u + 1013904223u; check_one(s ^ (s >> 13) << 7); }
    }
    // bf16 -> float: exact, by the fields (NaNs stay NaN)
    for (unsigned b = 0; b < 0x10000; b++) {
        float f = __bfloat162float(__ushort_as_bfloat16((unsigned short)b));
        int is_nan = (b & 0x7f80) == 0x7f80 && (b & 0x7f);
        int ok = is_nan ? f != f : (b & 0x7fff) == 0x7f80 ? f == ((b & 0x8000) ? -INFINITY : INFINITY)
                                                         : (double)f == decode_bf16(b);
        if (!ok && bad++ < 5) fprintf(stderr, "error: bf16: __bfloat162float(0x%04x) = %g\n", b, f);
    }
    // the operators compute in float and round once
    __nv_bfloat16 a = __float2bfloat16(1.5f), b = __float2bfloat16(3.0f / 1024);
    float fa = __bfloat162float(a), fb = __bfloat162float(b);
    if (bits(a + b) != bits(__float2bfloat16(fa + fb)) || bits(a * b) != bits(__float2bfloat16(fa * fb)) ||
        bits(a - b) != bits(__float2bfloat16(fa - fb)) || bits(a / b) != bits(__float2bfloat16(fa / fb)) ||
        (float)a != 1.5f || !(b < a) || bits(-a) != (bits(a) ^ 0x8000)) {
        fprintf(stderr, "error: bf16: operators\n");
        bad++;
    }
    // 128-bit packed copies
    const int N = 8 * 300;
    static __nv_bfloat16 h_in[N], h_out[N];
    for (int i = 0; i < N; i++) h_in[i] = __float2bfloat16((float)(i - N / 2) / 64.0f);
    __nv_bfloat16 *d_in, *d_out;
    cuda_check(cudaMalloc(&d_in, N * sizeof(__nv_bfloat16)));
    cuda_check(cudaMalloc(&d_out, N * sizeof(__nv_bfloat16)));
    cuda_check(cudaMemcpy(d_in, h_in, sizeof h_in, cudaMemcpyHostToDevice));
    copy128_kernel<<<(N / 8 + 63) / 64, 64>>>(d_out, d_in, N);
    cuda_check(cudaGetLastError());
    cuda_check(cudaMemcpy(h_out, d_out, sizeof h_out, cudaMemcpyDeviceToHost));
    if (memcmp(h_in, h_out, sizeof h_in)) { fprintf(stderr, "error: bf16: copy128_kernel mismatch\n"); bad++; }
    cuda_check(cudaFree(d_in));
    cuda_check(cudaFree(d_out));
    if (bad) { fprintf(stderr, "error: bf16: %lld mismatches\n", bad); return 1; }
    printf("bf16: %lld conversions match the reference\n", n);
    return 0;
}
