// dev/cuda/cast.cu: checks and benchmarks the fp32 <-> bf16 conversion
// kernels of llmc/cast.cuh, and its bf16 accumulation; exits 1 on any mismatch.
//
//   cast            check: n in {0, 1, 7, 8, 1000, 4097, 4103} (no chunk, only
//                   the scalar tail, one chunk, whole chunks, a full block plus
//                   a tail of 1, a tail of 7) for both directions, plus all
//                   65536 bf16 bit patterns for bf16 -> fp32
//   cast bench      also time both at n = 124,439,808 (the parameter count of
//                   GPT-2 124M) and print GB/s (real GPU only)
//   cast badalign   cast_float_to_bf16 with a pointer that is not 16-byte
//                   aligned: must fail with a message
//
// Tolerance: none. Both conversions are exactly defined, so the results must
// match bit for bit: fp32 -> bf16 against the host's __float2bfloat16 (round
// to nearest even, every NaN to 0x7FFF), which is itself checked against an
// independent integer implementation of the rounding (rne_bits below), on
// inputs that include NaNs (quiet, signalling, negative), infinities, +-0,
// denormals, exact halfway cases with even and odd kept parts, one above and
// below halfway, FLT_MAX (rounds to infinity) and random bit patterns; bf16 ->
// fp32 is the 16-bit pattern shifted left by 16; accumulate_bf16 (acc += in,
// in bf16 or fp32) against the host's __float2bfloat16 of the fp32 sum, also on pointers
// that are not 16-byte aligned (ZeRO slices start anywhere). A skipped chunk or tail
// value shows as cudaMalloc's 0xFF poison, a wrong index as a wrong value.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/cast.cuh"
#include "common.cuh"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// round-to-nearest-even of fp32 bits u to bf16 bits, written independently of
// __float2bfloat16: keep the top 16 bits, round up when the dropped 16 bits
// are above half, or exactly half and the kept part is odd
static uint16_t rne_bits(uint32_t u) {
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fff;   // NaN: canonical
    uint32_t keep = u >> 16, rest = u & 0xffffu;
    if (rest > 0x8000u || (rest == 0x8000u && (keep & 1u))) keep++;   // may carry into the exponent: correct
    return (uint16_t)keep;
}

// n fp32 inputs: the special values first (as many as fit), then random bit
// patterns, half of them with the dropped 16 bits near 0x8000
static void fill_inputs(float* x, size_t n, uint32_t seed) {
    static const uint32_t special[] = {
        0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fbfffffu, 0xffffffffu, 0x7fffffffu,   // NaNs
        0x7f800000u, 0xff800000u, 0x00000000u, 0x80000000u,                           // +-inf, +-0
        0x00000001u, 0x80000001u, 0x00008000u, 0x00018000u, 0x00008001u, 0x007fffffu,   // denormals
        0x807fffffu, 0x007f8000u, 0x00017fffu,
        0x3f808000u, 0x3f818000u, 0xbf808000u, 0xbf818000u,   // halfway: kept part even / odd
        0x3f807fffu, 0x3f808001u, 0x3f80ffffu, 0x3f800000u,   // just below / above halfway, exact
        0x7f7fffffu, 0xff7fffffu, 0x7f7f7fffu, 0x7f7f8000u,   // FLT_MAX (-> inf), largest finite bf16
        0x00800000u, 0x007fffffu, 0x3f7fffffu, 0x4b7fffffu,   // smallest normal, carries
    };
    size_t ns = sizeof special / sizeof special[0];
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (i < ns) u = special[i];
        else {
            s = s * 1664525u + 1013904223u;
            u = s ^ (s >> 13) * 2654435761u;
            if (i & 1) u = (u & 0xffff0000u) | ((0x8000u + (u & 7u) - 3u) & 0xffffu);   // near halfway
        }
        x[i] = u2f(u);
    }
}

// ----------------------------------------------------------------------------
// check, bench

static int check_to_bf16(size_t n, uint32_t seed) {
    float* in = (float*)xmalloc(n * sizeof(float));
    floatX* got = (floatX*)xmalloc(n * sizeof(floatX));
    fill_inputs(in, n, seed);
    float* d_in;
    floatX* d_out;
    cudaCheck(cudaMalloc(&d_in, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_out, n * sizeof(floatX)));
    cudaCheck(cudaMemcpy(d_in, in, n * sizeof(float), cudaMemcpyHostToDevice));
    cast_float_to_bf16(d_out, d_in, n, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got, d_out, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        uint16_t want = __bfloat16_as_ushort(__float2bfloat16(in[i])), g = __bfloat16_as_ushort(got[i]);
        if (want != rne_bits(f2u(in[i]))) {
            fprintf(stderr, "error: cast reference n=%zu: host __float2bfloat16(0x%08x) = 0x%04x, rounding gives 0x%04x\n",
                    n, f2u(in[i]), want, rne_bits(f2u(in[i])));
            bad = 1;
        } else if (g != want) {
            fprintf(stderr, "error: cast_float_to_bf16 n=%zu: out[%zu] = 0x%04x for in 0x%08x, want 0x%04x (bit for bit)\n",
                    n, i, g, f2u(in[i]), want);
            bad = 1;
        }
    }
    if (!bad) printf("cast_float_to_bf16 n=%zu: bit for bit as the host's __float2bfloat16\n", n);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
    free(in);
    free(got);
    return bad;
}

// n bf16 inputs: all bit patterns in turn from a seed-dependent start
static int check_to_float(size_t n, uint32_t seed) {
    floatX* in = (floatX*)xmalloc(n * sizeof(floatX));
    float* got = (float*)xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) in[i] = __ushort_as_bfloat16((unsigned short)(seed + i * 40503u));
    floatX* d_in;
    float* d_out;
    cudaCheck(cudaMalloc(&d_in, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d_in, in, n * sizeof(floatX), cudaMemcpyHostToDevice));
    cast_bf16_to_float(d_out, d_in, n, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got, d_out, n * sizeof(float), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        uint32_t want = (uint32_t)__bfloat16_as_ushort(in[i]) << 16, g = f2u(got[i]);
        if (g != want) {
            fprintf(stderr, "error: cast_bf16_to_float n=%zu: out[%zu] = 0x%08x for in 0x%04x, want 0x%08x (bit for bit)\n",
                    n, i, g, __bfloat16_as_ushort(in[i]), want);
            bad = 1;
        }
    }
    if (!bad) printf("cast_bf16_to_float n=%zu: bit for bit (bf16 bits << 16)\n", n);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
    free(in);
    free(got);
    return bad;
}

static float to_float(floatX x) { return __bfloat162float(x); }
static float to_float(float x) { return x; }

// acc (bf16) += in (T: bf16 or fp32) on n values (finite ones: from
// fill_inputs, NaNs made 1), starting off 16-byte alignment by `skew` elements
template <class T>
static int check_accumulate(size_t n, uint32_t seed, size_t skew) {
    const char* type = sizeof(T) == 2 ? "bf16" : "fp32";
    float* f = (float*)xmalloc(2 * n * sizeof(float) + 1);
    floatX* acc = (floatX*)xmalloc(n * sizeof(floatX) + 1);
    T* in = (T*)xmalloc(n * sizeof(T) + 1);
    fill_inputs(f, 2 * n, seed);
    for (size_t i = 0; i < 2 * n; i++) f[i] = f[i] == f[i] ? f[i] : 1.0f;
    for (size_t i = 0; i < n; i++) {
        acc[i] = __float2bfloat16(f[i]);
        in[i] = (T)f[n + i];   // (fp32: kept whole, bits below bf16's included)
    }
    char* d;
    cudaCheck(cudaMalloc(&d, n * (sizeof(floatX) + sizeof(T)) + 4 * skew * sizeof(T) + 32));
    floatX* d_acc = (floatX*)d + skew;
    T* d_in = (T*)(d + (n + skew) * sizeof(floatX) / 16 * 16 + 16) + skew;
    cudaCheck(cudaMemcpy(d_acc, acc, n * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_in, in, n * sizeof(T), cudaMemcpyHostToDevice));
    accumulate_bf16(d_acc, d_in, n, 0);
    cudaCheck(cudaDeviceSynchronize());
    floatX* got = (floatX*)xmalloc(n * sizeof(floatX) + 1);
    cudaCheck(cudaMemcpy(got, d_acc, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        floatX want = __float2bfloat16(__bfloat162float(acc[i]) + to_float(in[i]));
        if (__bfloat16_as_ushort(got[i]) != __bfloat16_as_ushort(want)) {
            fprintf(stderr, "error: accumulate_bf16 (%s in) n=%zu skew=%zu: acc[%zu] = 0x%04x, want 0x%04x (bit for bit)\n",
                    type, n, skew, i, __bfloat16_as_ushort(got[i]), __bfloat16_as_ushort(want));
            bad = 1;
        }
    }
    if (!bad)
        printf("accumulate_bf16 (%s in) n=%zu skew=%zu: bit for bit as the host's rounding of the fp32 sum\n", type,
               n, skew);
    cudaCheck(cudaFree(d));
    free(f);
    free(acc);
    free(in);
    free(got);
    return bad;
}

#ifndef CUDA_EMU
static void bench(void) {
    size_t n = 124439808;   // parameters of GPT-2 124M
    float* d_f;
    floatX* d_b;
    cudaCheck(cudaMalloc(&d_f, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_b, n * sizeof(floatX)));
    cudaCheck(cudaMemset(d_f, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_b, 0, n * sizeof(floatX)));
    float a = bench_ms([&] { cast_float_to_bf16(d_b, d_f, n, 0); }, 50);
    float b = bench_ms([&] { cast_bf16_to_float(d_f, d_b, n, 0); }, 50);
    // bytes moved: 4 read + 2 written per value, or 2 read + 4 written
    bench_report("cast_float_to_bf16", a, 6.0 * n, 0);
    bench_report("cast_bf16_to_float", b, 6.0 * n, 0);
    cudaCheck(cudaFree(d_f));
    cudaCheck(cudaFree(d_b));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 || (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badalign"))) {
        fprintf(stderr, "error: usage: cast [check|bench|badalign]\n");
        return 2;
    }
    if (!strcmp(mode, "badalign")) {
        float* f;
        floatX* b;
        cudaCheck(cudaMalloc(&f, 64 * sizeof(float)));
        cudaCheck(cudaMalloc(&b, 64 * sizeof(floatX)));
        cast_float_to_bf16(b + 1, f, 16, 0);   // exits 1
        return 0;
    }
    size_t sizes[] = {0, 1, 7, 8, 1000, 4097, 4103};
    int bad = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        bad |= check_to_bf16(sizes[i], 1234u + (uint32_t)i);
        bad |= check_to_float(sizes[i], 77u * (uint32_t)i);
        bad |= check_accumulate<floatX>(sizes[i], 99u + (uint32_t)i, i % 3);
        bad |= check_accumulate<float>(sizes[i], 199u + (uint32_t)i, i % 3);
    }
    bad |= check_to_float(65536, 0);   // every bf16 bit pattern once (40503 is odd)
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
