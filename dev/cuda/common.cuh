// dev/cuda/common.cuh: what the kernel checks and benches of dev/cuda share:
// deterministic bf16 test inputs, tolerance arithmetic and, on a real GPU,
// timing and one report line per kernel version against the GPU's peak.
//
// Bench lines of one kernel version have one fixed form, read by
// scripts/gpu_validate.sh (with the comparisons' "bench A vs B: ... x" lines):
//   bench NAME: MS ms, X GB/s (P% of peak)       memory-bound kernels
//   bench NAME: MS ms, X TFLOP/s (P% of peak)    compute-bound kernels
// where the peak is the device's DRAM bandwidth (from its clock and bus
// width) or its dense bf16 tensor-core rate (llmc/mfu.h); "(peak unknown)"
// replaces the percentage where it cannot be known.
#ifndef DEV_CUDA_COMMON_CUH
#define DEV_CUDA_COMMON_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/cuda_common.cuh"
#include "../../llmc/mfu.h"

static inline void* xmalloc(size_t n) {
    void* p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    return p;
}

// gamma(k) = k u / (1 - k u), u = 2^-24: the relative error bound of k fp32
// roundings in a row (Higham, "Accuracy and Stability of Numerical
// Algorithms", sec. 3.1)
static inline double gamma_u(double k) {
    double u = ldexp(1.0, -24);
    return k * u / (1.0 - k * u);
}

// one bf16 ulp at |w|: bf16 keeps 8 significant bits, so 2^(e-8) for
// |w| = m 2^e with m in [0.5, 1)
static inline float bf16_ulp(float w) {
    int e;
    frexpf(w, &e);
    return w == 0.0f ? 0.0f : ldexpf(1.0f, e - 8);
}

// next value of a 32-bit LCG, as a float in [-1, 1)
static inline float lcg_uniform(uint32_t* state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

// x[i] = bf16(offset + [-spread, spread)); xf[i] (if not NULL) the same value as float
static inline void fill_bf16(floatX* x, float* xf, size_t n, float offset, float spread, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        x[i] = __float2bfloat16(offset + lcg_uniform(&seed) * spread);
        if (xf) xf[i] = __bfloat162float(x[i]);
    }
}

#ifdef CUDA_EMU
// "bench" under the emulation: the checks ran, but there is no device to time
static inline void emulated_bench_note(const char* mode) {
    if (!strcmp(mode, "bench")) printf("bench: not timed (emulated build; the checks above ran)\n");
}
#else
// mean milliseconds of one call of launch(), over reps calls after as many
// warm-up calls
template <class F>
static inline float bench_ms(F launch, int reps) {
    cudaEvent_t e0, e1;
    cudaCheck(cudaEventCreate(&e0));
    cudaCheck(cudaEventCreate(&e1));
    for (int i = 0; i < reps; i++) launch();
    cudaCheck(cudaEventRecord(e0, 0));
    for (int i = 0; i < reps; i++) launch();
    cudaCheck(cudaEventRecord(e1, 0));
    cudaCheck(cudaEventSynchronize(e1));
    cudaCheck(cudaGetLastError());
    float ms;
    cudaCheck(cudaEventElapsedTime(&ms, e0, e1));
    cudaCheck(cudaEventDestroy(e0));
    cudaCheck(cudaEventDestroy(e1));
    return ms / reps;
}

// DRAM bandwidth of the current device in GB/s: double data rate x memory
// clock x bus width (what the datasheets quote); -1 if the driver does not say
static inline double peak_gbps(void) {
    int dev, khz = 0, bits = 0;
    cudaCheck(cudaGetDevice(&dev));
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) != cudaSuccess || khz <= 0 || bits <= 0) {
        cudaGetLastError();   // clear the error; the report says the peak is unknown
        return -1.0;
    }
    return 2.0 * khz * 1e3 * (bits / 8.0) / 1e9;
}

static inline double peak_tflops(void) {
    int dev;
    cudaDeviceProp p;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaGetDeviceProperties(&p, dev));
    return gpu_bf16_peak_tflops(p.name);
}

// one "bench NAME: ..." line: bytes moved from/to DRAM (memory-bound
// kernels) or, if flops > 0, floating-point operations (compute-bound)
static inline void bench_report(const char* name, float ms, double bytes, double flops) {
    double rate = flops > 0 ? flops / (ms * 1e9) : bytes / (ms * 1e6);   // TFLOP/s or GB/s
    double peak = flops > 0 ? peak_tflops() : peak_gbps();
    printf("bench %s: %.4f ms, %.1f %s", name, ms, rate, flops > 0 ? "TFLOP/s" : "GB/s");
    if (peak > 0) printf(" (%.0f%% of peak)\n", 100.0 * rate / peak);
    else printf(" (peak unknown)\n");
}
#endif

#endif // DEV_CUDA_COMMON_CUH
