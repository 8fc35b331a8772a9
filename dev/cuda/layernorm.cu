// dev/cuda/layernorm.cu: checks and benchmarks the kernels of
// llmc/layernorm.cuh against a CPU reference; exits 1 on any mismatch.
//
//   layernorm            check: N in {1, 7, 64} (one row, a partial block,
//                        several blocks) times C in {8, 64, 768, 1000} (one
//                        lane busy, a partial warp, whole sweeps of the warp,
//                        a ragged last sweep), both kernels, the fused one
//                        also in place (residual == inp1)
//   layernorm bench      also time both on (B*T, C) = (8*1024, 768) and print
//                        GB/s (real GPU only; under the emulation it only checks)
//   layernorm badc       layernorm_forward with C % 8 != 0: must fail with a message
//   layernorm badcfused  the same for fused_residual_layernorm_forward
//
// Inputs have mean about 3 and spread +-0.5 (std about 0.29): a one-pass
// variance E[x^2] - mean^2 cancels about 7 of fp32's 24 bits there, which the
// rstd tolerance below catches, and eps (1e-5) is 1.2e-4 of the variance,
// so dropping it moves rstd by 6e-5 relative, 20 to 50 times the tolerance.
//
// The reference takes the same bf16 values (for the fused kernel, the bf16
// residual, which must match bit for bit: both add in fp32 and round once) and
// computes mean, variance (two-pass), rstd and out in double. Tolerances, with
// u = 2^-24 and d = 8 ceil(C/256) + 5 (a lane sums at most 8 ceil(C/256)
// values, one fp32 addition after another, then 5 levels of warp reduce):
// - mean: |error| <= gamma(d + 1) * mean |x|, gamma(k) = k u / (1 - k u), the
//   bound on a floating-point sum (Higham, "Accuracy and Stability of
//   Numerical Algorithms", sec. 4.2) plus the division by C;
// - rstd: relative gamma(d + 8) + (mean bound)^2 / var: the variance sums
//   non-negative terms (one rounding for x - mean, one for the square, d for
//   the sum, one for / C), its relative error is at most gamma(d + 3) plus the
//   second-order effect of the mean's error; + eps, the sqrt and the
//   division add 3 more roundings and sqrt halves the rest, so d + 8 leaves
//   room;
// - out: one bf16 ulp of the reference rounded to bf16 (fp32 error may cross
//   a rounding boundary) plus OUT_ABS_TOL: the fp32 error before rounding is
//   at most |w| rstd (mean error + |x - mean| rstd error) + a few u
//   (|x_hat w| + |b|), about 3.5e-5 for these inputs at C = 1000 (mean
//   error <= 7.9e-6, rstd about 3.5, |x_hat| <= 3, |w| <= 1, |b| <= 0.5; at
//   C = 8 rstd can be larger but the mean bound is 3 times smaller); near
//   zero crossings of out a bf16 ulp is tiny, so this absolute floor is what
//   covers them. A wrong formula (missing bias, weight or rstd) is off by
//   ~1e-1.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/layernorm.cuh"

#define INPUT_MEAN 3.0f
#define INPUT_SPREAD 0.5f                // x in INPUT_MEAN + [-INPUT_SPREAD, INPUT_SPREAD)
#define OUT_ABS_TOL (1.0f / 8192.0f)     // 1.2e-4, over 3x the worst-case fp32 error above

static double gamma_u(double k) {
    double u = ldexp(1.0, -24);
    return k * u / (1.0 - k * u);
}

// one bf16 ulp at |w|: bf16 keeps 8 significant bits, so 2^(e-8) for
// |w| = m 2^e with m in [0.5, 1)
static float bf16_ulp(float w) {
    int e;
    frexpf(w, &e);
    return w == 0.0f ? 0.0f : ldexpf(1.0f, e - 8);
}

// x[i] = bf16(offset + [-spread, spread)), xf[i] the same value as float
static void fill_bf16(floatX* x, float* xf, size_t n, float offset, float spread, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = __float2bfloat16(offset + ((float)(seed >> 8) / (float)(1u << 23) - 1.0f) * spread);
        xf[i] = __bfloat162float(x[i]);
    }
}

static void* xmalloc(size_t n) {
    void* p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    return p;
}

// compares the device's out (N,C) bf16, mean, rstd (N,) with the double
// reference of layernorm over x (N,C) (float copies of the bf16 inputs); 0 if
// all are within the tolerances at the top of the file
static int compare_layernorm(const char* what, int N, int C, const float* x, const float* w, const float* b,
                             const floatX* out, const float* mean, const float* rstd) {
    double d = 8.0 * ((C + 255) / 256) + 5.0;   // see the top of the file
    double max_mean = 0, max_rstd = 0, max_out = 0;   // errors relative to their tolerances
    for (int n = 0; n < N; n++) {
        const float* xr = x + (size_t)n * C;
        double m = 0, abs_sum = 0, var = 0;
        for (int c = 0; c < C; c++) { m += xr[c]; abs_sum += fabs(xr[c]); }
        m /= C;
        for (int c = 0; c < C; c++) var += (xr[c] - m) * (xr[c] - m);
        var /= C;
        double s = 1.0 / sqrt(var + 1e-5);
        double mean_tol = gamma_u(d + 1) * abs_sum / C;
        double rstd_tol = (gamma_u(d + 8) + mean_tol * mean_tol / var) * s;
        double em = fabs(mean[n] - m), es = fabs(rstd[n] - s);
        if (!(em <= mean_tol)) {
            fprintf(stderr, "error: %s N=%d C=%d: mean[%d] = %.9g, want %.9g: error %.3g > %.3g\n", what, N, C, n,
                    mean[n], m, em, mean_tol);
            return 1;
        }
        if (!(es <= rstd_tol)) {
            fprintf(stderr, "error: %s N=%d C=%d: rstd[%d] = %.9g, want %.9g: error %.3g > %.3g\n", what, N, C, n,
                    rstd[n], s, es, rstd_tol);
            return 1;
        }
        if (em / mean_tol > max_mean) max_mean = em / mean_tol;
        if (es / rstd_tol > max_rstd) max_rstd = es / rstd_tol;
        for (int c = 0; c < C; c++) {
            float want = __bfloat162float(__float2bfloat16((float)((xr[c] - m) * s * w[c] + b[c])));
            float got = __bfloat162float(out[(size_t)n * C + c]);
            float tol = bf16_ulp(want) + OUT_ABS_TOL;
            if (!(fabsf(got - want) <= tol)) {
                fprintf(stderr, "error: %s N=%d C=%d: out[%d][%d] = %.6g, want %.6g (tolerance %.3g)\n", what, N, C,
                        n, c, got, want, tol);
                return 1;
            }
            if (fabsf(got - want) / tol > max_out) max_out = fabsf(got - want) / tol;
        }
    }
    printf("%s N=%d C=%d: matches the CPU reference (largest error / tolerance: mean %.2f, rstd %.2f, out %.2f)\n",
           what, N, C, max_mean, max_rstd, max_out);
    return 0;
}

// ----------------------------------------------------------------------------
// check, bench

static int check(int N, int C, uint32_t seed) {
    size_t NC = (size_t)N * C;
    floatX *a = (floatX*)xmalloc(NC * sizeof(floatX)), *r = (floatX*)xmalloc(NC * sizeof(floatX));
    floatX *w = (floatX*)xmalloc(C * sizeof(floatX)), *b = (floatX*)xmalloc(C * sizeof(floatX));
    floatX *got = (floatX*)xmalloc(NC * sizeof(floatX)), *got_res = (floatX*)xmalloc(NC * sizeof(floatX));
    float *af = (float*)xmalloc(NC * sizeof(float)), *rf = (float*)xmalloc(NC * sizeof(float));
    float *resf = (float*)xmalloc(NC * sizeof(float));
    float *wf = (float*)xmalloc(C * sizeof(float)), *bf = (float*)xmalloc(C * sizeof(float));
    float *mean = (float*)xmalloc(N * sizeof(float)), *rstd = (float*)xmalloc(N * sizeof(float));
    fill_bf16(a, af, NC, INPUT_MEAN, INPUT_SPREAD, seed);    // the residual stream / layernorm input
    fill_bf16(r, rf, NC, 0.0f, 0.25f, seed + 1);             // a block's update added to it
    fill_bf16(w, wf, C, 0.0f, 1.0f, seed + 2);
    fill_bf16(b, bf, C, 0.0f, 0.5f, seed + 3);
    floatX *d_a, *d_r, *d_w, *d_b, *d_out, *d_res;
    float *d_mean, *d_rstd;
    cudaCheck(cudaMalloc(&d_a, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_r, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_w, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_b, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_res, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_mean, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_rstd, N * sizeof(float)));
    cudaCheck(cudaMemcpy(d_a, a, NC * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_r, r, NC * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_w, w, C * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_b, b, C * sizeof(floatX), cudaMemcpyHostToDevice));
    int bad = 0;

    layernorm_forward(d_out, d_mean, d_rstd, d_a, d_w, d_b, N, C, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got, d_out, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(mean, d_mean, N * sizeof(float), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(rstd, d_rstd, N * sizeof(float), cudaMemcpyDeviceToHost));
    bad |= compare_layernorm("layernorm_forward", N, C, af, wf, bf, got, mean, rstd);

    // the residual as the CPU computes it: fp32 sum of the bf16 values, rounded once
    for (size_t i = 0; i < NC; i++) resf[i] = __bfloat162float(__float2bfloat16(af[i] + rf[i]));
    for (int inplace = 0; inplace < 2; inplace++) {
        const char* what = inplace ? "fused_residual_layernorm_forward in place" : "fused_residual_layernorm_forward";
        floatX* res = inplace ? d_a : d_res;   // in place: residual == inp1
        fused_residual_layernorm_forward(res, d_out, d_mean, d_rstd, d_a, d_r, d_w, d_b, N, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(got_res, res, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(got, d_out, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(mean, d_mean, N * sizeof(float), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(rstd, d_rstd, N * sizeof(float), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < NC; i++) {
            if (__bfloat162float(got_res[i]) != resf[i]) {
                fprintf(stderr, "error: %s N=%d C=%d: residual[%zu] = %.6g, want %.6g (bit for bit)\n", what, N, C,
                        i, __bfloat162float(got_res[i]), resf[i]);
                bad = 1;
                break;
            }
        }
        bad |= compare_layernorm(what, N, C, resf, wf, bf, got, mean, rstd);
    }

    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_r));
    cudaCheck(cudaFree(d_w));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_res));
    cudaCheck(cudaFree(d_mean));
    cudaCheck(cudaFree(d_rstd));
    free(a); free(r); free(w); free(b); free(got); free(got_res);
    free(af); free(rf); free(resf); free(wf); free(bf); free(mean); free(rstd);
    return bad;
}

#ifndef CUDA_EMU
// mean milliseconds of reps calls of the fused kernel (1) or the plain one (0)
static float time_ms(int fused, floatX* res, floatX* out, float* mean, float* rstd, const floatX* a,
                     const floatX* r, const floatX* w, const floatX* b, int N, int C, int reps) {
    cudaEvent_t e0, e1;
    cudaCheck(cudaEventCreate(&e0));
    cudaCheck(cudaEventCreate(&e1));
    for (int k = 0; k < 2; k++) {   // warm-up, then timed
        cudaCheck(cudaEventRecord(e0, 0));
        for (int i = 0; i < reps; i++) {
            if (fused) fused_residual_layernorm_forward(res, out, mean, rstd, a, r, w, b, N, C, 0);
            else layernorm_forward(out, mean, rstd, a, w, b, N, C, 0);
        }
        cudaCheck(cudaEventRecord(e1, 0));
        cudaCheck(cudaEventSynchronize(e1));
    }
    float ms;
    cudaCheck(cudaEventElapsedTime(&ms, e0, e1));
    cudaCheck(cudaEventDestroy(e0));
    cudaCheck(cudaEventDestroy(e1));
    return ms / reps;
}

static void bench(void) {
    int N = 8 * 1024, C = 768;   // (B*T, C) of GPT-2 124M at B=8, T=1024
    size_t NC = (size_t)N * C;
    floatX *d_a, *d_r, *d_w, *d_b, *d_out, *d_res;
    float *d_mean, *d_rstd;
    cudaCheck(cudaMalloc(&d_a, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_r, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_res, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_w, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_b, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_mean, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_rstd, N * sizeof(float)));
    cudaCheck(cudaMemset(d_a, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_r, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_w, 0, C * sizeof(floatX)));
    cudaCheck(cudaMemset(d_b, 0, C * sizeof(floatX)));
    float p = time_ms(0, d_res, d_out, d_mean, d_rstd, d_a, d_r, d_w, d_b, N, C, 100);
    float f = time_ms(1, d_res, d_out, d_mean, d_rstd, d_a, d_r, d_w, d_b, N, C, 100);
    // bytes moved from/to DRAM, counting each (N,C) tensor once (the re-reads
    // of a row hit the caches) and the (C,) and (N,) ones too
    double small = 2.0 * C * sizeof(floatX) + 2.0 * N * sizeof(float);
    printf("layernorm_forward                N=%d C=%d: %.4f ms, %.1f GB/s\n", N, C, p,
           (2.0 * NC * sizeof(floatX) + small) / (p * 1e6));
    printf("fused_residual_layernorm_forward N=%d C=%d: %.4f ms, %.1f GB/s\n", N, C, f,
           (4.0 * NC * sizeof(floatX) + small) / (f * 1e6));
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_r));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_res));
    cudaCheck(cudaFree(d_w));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_mean));
    cudaCheck(cudaFree(d_rstd));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 ||
        (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badc") && strcmp(mode, "badcfused"))) {
        fprintf(stderr, "error: usage: layernorm [check|bench|badc|badcfused]\n");
        return 2;
    }
    if (!strcmp(mode, "badc") || !strcmp(mode, "badcfused")) {
        floatX* d;
        float* s;
        cudaCheck(cudaMalloc(&d, 64 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&s, 4 * sizeof(float)));
        if (!strcmp(mode, "badc")) layernorm_forward(d, s, s, d, d, d, 4, 12, 0);   // exits 1
        else fused_residual_layernorm_forward(d, d, s, s, d, d, d, d, 4, 12, 0);  // exits 1
        return 0;
    }
    int Ns[] = {1, 7, 64}, Cs[] = {8, 64, 768, 1000};
    int bad = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) bad |= check(Ns[i], Cs[j], 1234u + 10 * i + j);
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#endif
    return 0;
}
