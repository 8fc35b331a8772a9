// dev/emu/tests/common.cuh: helpers shared by the emulator's test programs.
// Real CUDA: compiles with nvcc as well as under dev/emu.
#ifndef EMU_TESTS_COMMON_CUH
#define EMU_TESTS_COMMON_CUH

#include <stdio.h>
#include <stdlib.h>
#include <math.h>

// every CUDA call: name the call, file:line and cause, then exit 1
#define cuda_check(call) cuda_check_at((call), #call, __FILE__, __LINE__)
static inline void cuda_check_at(cudaError_t e, const char* what, const char* file, int line) {
    if (e != cudaSuccess) {
        fprintf(stderr, "error: %s failed at %s:%d: %s\n", what, file, line, cudaGetErrorString(e));
        exit(1);
    }
}

// fills x with reproducible values in [-1, 1)
static inline void fill_random(float* x, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
}

// sums of up to a few thousand values in [-1, 1) in another order: float
// rounding differs by far less than this
#define SUM_TOL 1e-4f

// 0 when got matches want within tol (relative to max(1, |want|)), else prints
// the first mismatch and returns 1
static inline int compare(const char* what, const float* got, const float* want, int n, float tol) {
    for (int i = 0; i < n; i++) {
        float scale = fabsf(want[i]) > 1.0f ? fabsf(want[i]) : 1.0f;
        if (!(fabsf(got[i] - want[i]) <= tol * scale)) {
            fprintf(stderr, "error: %s: mismatch vs the CPU reference at %d: got %g, want %g\n",
                    what, i, got[i], want[i]);
            return 1;
        }
    }
    return 0;
}

#endif
