// dev/cuda/layernorm.cu: checks and benchmarks the kernels of
// llmc/layernorm.cuh against a CPU reference; exits 1 on any mismatch.
//
//   layernorm            check: N in {1, 7, 64} (one row, a partial block,
//                        several blocks) times C in {8, 64, 768, 1000} (one
//                        lane busy, a partial warp, whole sweeps of the warp,
//                        a ragged last sweep): the forward kernels, the
//                        fused one also in place (residual == inp1), then the
//                        backward on the forward's mean and rstd, twice (the
//                        two results must be the same bits); its line ends
//                        with a checksum of the output bits, which
//                        tests/kernels/layernorm.sh compares across thread
//                        orders; then N = 300 with C = 64 and 1000 (a backward
//                        grid of 10 blocks, more than the reduce kernel's 8
//                        rows), without the fused forward (emulation time)
//   layernorm bench      also time the three launchers on (B*T, C) =
//                        (8*1024, 768): one bench line each (real GPU only;
//                        under the emulation it only checks)
//   layernorm badc       layernorm_forward with C % 8 != 0: must fail with a message
//   layernorm badcfused  the same for fused_residual_layernorm_forward
//   layernorm badcbwd    the same for layernorm_backward
//
// Forward. Inputs have mean about 3 and spread +-0.5 (std about 0.29): a
// one-pass variance E[x^2] - mean^2 cancels about 7 of fp32's 24 bits there,
// which the rstd tolerance below catches, and eps (1e-5) is 1.2e-4 of the
// variance, so dropping it moves rstd by 6e-5 relative, 20 to 50 times the
// tolerance.
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
//
// Backward. dout in +-1, dinp, dweight and dbias start random in +-0.5 (so a
// kernel that overwrites instead of adding is off by ~0.25). The reference
// uses the forward's fp32 mean and rstd (as the kernel does) and the same bf16
// values, in double: xhat = (x - mean) rstd, dnorm = dout w, a = mean_c(dnorm),
// b = mean_c(dnorm xhat), dx = rstd (dnorm - a - xhat b). In fp32, xhat has
// relative error gamma(2) (x - mean, * rstd), dnorm is exact (a product of two
// bf16 has 16 significant bits), so
//   |error of a| <= ea = gamma(d + 1) mean_c |dnorm| (sum as above, / C),
//   |error of b| <= eb = gamma(d + 4) mean_c |dnorm xhat| (+ 3 per term),
// and dx and the addition to the old dinp add at most gamma(6) (rstd (|dnorm|
// + |a| + |xhat b|) + |old| + |dx|) (xhat's 2, 4 more roundings). So
// - dinp: one bf16 ulp of the reference sum rounded to bf16 + 2 E, E =
//   rstd (ea + |xhat| eb) + the gamma(6) term (the factor 2 covers the
//   second-order terms and the rounding of a value in the binade above);
//   E is ~1e-6, far under an ulp except where dinp crosses zero. Dropping the
//   xhat b term is off by rstd |xhat| |b|, ~1e-2 at C = 1000 and ~1e-1 at
//   C = 8, against an ulp of ~4e-3 at |dinp| ~ 1.
// - dweight, dbias: sums over the N rows; a term goes through at most k =
//   N + W + ceil(G/8) + 12 roundings (3 for dout xhat, <= N additions in its
//   warp, W = 8 warps of the block, ceil(G/8) and 8 in the reduce kernel with
//   G blocks, 1 with the old value), so the fp32 error is at most gamma(k)
//   (sum_n |term| + |old|); tolerance: one bf16 ulp of the reference + 2 x
//   that. A block's partial sums left out are off by about half the sum.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/layernorm.cuh"
#include "common.cuh"

#define INPUT_MEAN 3.0f
#define INPUT_SPREAD 0.5f                // x in INPUT_MEAN + [-INPUT_SPREAD, INPUT_SPREAD)
#define OUT_ABS_TOL (1.0f / 8192.0f)     // 1.2e-4, over 3x the worst-case fp32 error above

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

// FNV-1a over the bits of n bf16 values, continuing from h
static uint32_t bits_hash(uint32_t h, const floatX* x, size_t n) {
    const unsigned char* p = (const unsigned char*)x;
    for (size_t i = 0; i < n * sizeof(floatX); i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

// compares one accumulated bf16 output with its reference: want = bf16 of the
// exact value, fp32_err its fp32 error bound (see the top of the file); updates
// *max_ratio; 0 if within tolerance
static int compare_acc(const char* name, int N, int C, int n, int c, float got, double exact, double fp32_err,
                       double* max_ratio) {
    float want = __bfloat162float(__float2bfloat16((float)exact));
    double tol = bf16_ulp(want) + 2.0 * fp32_err;
    double err = fabs((double)got - want);
    if (!(err <= tol)) {
        if (n >= 0)
            fprintf(stderr, "error: layernorm_backward N=%d C=%d: %s[%d][%d] = %.6g, want %.6g (tolerance %.3g)\n", N,
                    C, name, n, c, got, want, tol);
        else
            fprintf(stderr, "error: layernorm_backward N=%d C=%d: %s[%d] = %.6g, want %.6g (tolerance %.3g)\n", N, C,
                    name, c, got, want, tol);
        return 1;
    }
    if (err / tol > *max_ratio) *max_ratio = err / tol;
    return 0;
}

// layernorm_backward on x (N,C) (d_x on the device), weight w (C,) and the
// forward's mean, rstd (N,) (host copies; d_mean, d_rstd on the device),
// from random dout and random starting dinp, dweight, dbias; run twice, then
// with the general kernel, NCH = 0 (where C picks NCH > 0): the results must
// be the same bits all three times and match the double reference. 0 if all
// good.
static int check_backward(int N, int C, uint32_t seed, const floatX* d_x, const float* x, const floatX* d_w,
                          const float* w, const float* d_mean, const float* d_rstd, const float* mean,
                          const float* rstd) {
    size_t NC = (size_t)N * C;
    floatX *dy = (floatX*)xmalloc(NC * sizeof(floatX)), *dx0 = (floatX*)xmalloc(NC * sizeof(floatX));
    floatX *dw0 = (floatX*)xmalloc(C * sizeof(floatX)), *db0 = (floatX*)xmalloc(C * sizeof(floatX));
    floatX* got[3][3];   // per run: dinp (N,C), dweight (C,), dbias (C,)
    for (int run = 0; run < 3; run++) {
        got[run][0] = (floatX*)xmalloc(NC * sizeof(floatX));
        got[run][1] = (floatX*)xmalloc(C * sizeof(floatX));
        got[run][2] = (floatX*)xmalloc(C * sizeof(floatX));
    }
    float* dyf = (float*)xmalloc(NC * sizeof(float));
    fill_bf16(dy, dyf, NC, 0.0f, 1.0f, seed + 4);
    fill_bf16(dx0, NULL, NC, 0.0f, 0.5f, seed + 5);   // other branches' gradients, already in dinp
    fill_bf16(dw0, NULL, C, 0.0f, 0.5f, seed + 6);    // earlier micro-steps' gradients
    fill_bf16(db0, NULL, C, 0.0f, 0.5f, seed + 7);
    size_t scratch_bytes = layernorm_backward_scratch_bytes(N, C);
    floatX *d_dy, *d_dinp, *d_dw, *d_db;
    float* d_scratch;
    cudaCheck(cudaMalloc(&d_dy, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dinp, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dw, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_db, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_scratch, scratch_bytes ? scratch_bytes : 4));
    cudaCheck(cudaMemcpy(d_dy, dy, NC * sizeof(floatX), cudaMemcpyHostToDevice));
    for (int run = 0; run < 3; run++) {
        layernorm_backward_general = run == 2;
        cudaCheck(cudaMemcpy(d_dinp, dx0, NC * sizeof(floatX), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(d_dw, dw0, C * sizeof(floatX), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemcpy(d_db, db0, C * sizeof(floatX), cudaMemcpyHostToDevice));
        // garbage (NaN, then large) in scratch: the result must not depend on it
        cudaCheck(cudaMemset(d_scratch, run == 1 ? 0x7F : 0xFF, scratch_bytes));
        layernorm_backward(d_dinp, d_dw, d_db, d_scratch, d_dy, d_x, d_w, d_mean, d_rstd, N, C, 0);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(got[run][0], d_dinp, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(got[run][1], d_dw, C * sizeof(floatX), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(got[run][2], d_db, C * sizeof(floatX), cudaMemcpyDeviceToHost));
    }
    layernorm_backward_general = 0;
    int bad = 0;
    for (int run = 1; run < 3 && !bad; run++)
        if (memcmp(got[0][0], got[run][0], NC * sizeof(floatX)) ||
            memcmp(got[0][1], got[run][1], C * sizeof(floatX)) || memcmp(got[0][2], got[run][2], C * sizeof(floatX))) {
            fprintf(stderr, "error: layernorm_backward N=%d C=%d: %s\n", N, C,
                    run == 1 ? "not reproducible: two runs give different bits"
                             : "the general kernel (NCH = 0) gives other bits");
            bad = 1;
        }

    double d = 8.0 * ((C + 255) / 256) + 5.0;   // see the top of the file
    int G = layernorm_backward_blocks(N, C), W = layernorm_backward_warps(C);
    double k_sum = N + W + (G + 7) / 8 + 12.0;
    double* dw_sum = (double*)xmalloc(C * sizeof(double));   // sum_n dout xhat, then its |.| sum
    double* dw_abs = (double*)xmalloc(C * sizeof(double));
    double* db_sum = (double*)xmalloc(C * sizeof(double));
    double* db_abs = (double*)xmalloc(C * sizeof(double));
    for (int c = 0; c < C; c++) dw_sum[c] = dw_abs[c] = db_sum[c] = db_abs[c] = 0.0;
    double max_dinp = 0, max_dw = 0, max_db = 0;
    for (int n = 0; n < N && !bad; n++) {
        const float *xr = x + (size_t)n * C, *gr = dyf + (size_t)n * C;
        double m = mean[n], r = rstd[n], a = 0, b = 0, a_abs = 0, b_abs = 0;
        for (int c = 0; c < C; c++) {
            double xhat = (xr[c] - m) * r, dn = (double)gr[c] * w[c];
            a += dn;
            b += dn * xhat;
            a_abs += fabs(dn);
            b_abs += fabs(dn * xhat);
            dw_sum[c] += gr[c] * xhat;
            dw_abs[c] += fabs(gr[c] * xhat);
            db_sum[c] += gr[c];
            db_abs[c] += fabs(gr[c]);
        }
        a /= C;
        b /= C;
        double ea = gamma_u(d + 1) * a_abs / C, eb = gamma_u(d + 4) * b_abs / C;
        for (int c = 0; c < C && !bad; c++) {
            size_t i = (size_t)n * C + c;
            double xhat = (xr[c] - m) * r, dn = (double)gr[c] * w[c];
            double dx = r * (dn - a - xhat * b), old = __bfloat162float(dx0[i]);
            double e = r * (ea + fabs(xhat) * eb) +
                       gamma_u(6) * (r * (fabs(dn) + fabs(a) + fabs(xhat * b)) + fabs(old) + fabs(dx));
            bad |= compare_acc("dinp", N, C, n, c, __bfloat162float(got[0][0][i]), old + dx, e, &max_dinp);
        }
    }
    for (int c = 0; c < C && !bad; c++) {
        double old = __bfloat162float(dw0[c]);
        bad |= compare_acc("dweight", N, C, -1, c, __bfloat162float(got[0][1][c]), old + dw_sum[c],
                           gamma_u(k_sum) * (dw_abs[c] + fabs(old)), &max_dw);
        old = __bfloat162float(db0[c]);
        bad |= compare_acc("dbias", N, C, -1, c, __bfloat162float(got[0][2][c]), old + db_sum[c],
                           gamma_u(k_sum) * (db_abs[c] + fabs(old)), &max_db);
    }
    if (!bad) {
        uint32_t h = bits_hash(2166136261u, got[0][0], NC);
        h = bits_hash(h, got[0][1], C);
        h = bits_hash(h, got[0][2], C);
        printf("layernorm_backward N=%d C=%d: matches the CPU reference (largest error / tolerance: dinp %.2f, "
               "dweight %.2f, dbias %.2f), same bits twice and from the general kernel, bits 0x%08x\n",
               N, C, max_dinp, max_dw, max_db, h);
    }

    cudaCheck(cudaFree(d_dy));
    cudaCheck(cudaFree(d_dinp));
    cudaCheck(cudaFree(d_dw));
    cudaCheck(cudaFree(d_db));
    cudaCheck(cudaFree(d_scratch));
    for (int run = 0; run < 3; run++)
        for (int j = 0; j < 3; j++) free(got[run][j]);
    free(dy); free(dx0); free(dw0); free(db0); free(dyf);
    free(dw_sum); free(dw_abs); free(db_sum); free(db_abs);
    return bad;
}

// ----------------------------------------------------------------------------
// check, bench

// checks the kernels at (N, C); fused = 0 skips the fused forward (cost of the
// emulation at large N)
static int check(int N, int C, uint32_t seed, int fused) {
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
    // the backward of that forward, on its mean and rstd (before the fused runs overwrite them)
    bad |= check_backward(N, C, seed, d_a, af, d_w, wf, d_mean, d_rstd, mean, rstd);

    // the residual as the CPU computes it: fp32 sum of the bf16 values, rounded once
    for (size_t i = 0; i < NC; i++) resf[i] = __bfloat162float(__float2bfloat16(af[i] + rf[i]));
    for (int inplace = 0; inplace < 2 * fused; inplace++) {
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
static void bench(void) {
    int N = 8 * 1024, C = 768;   // (B*T, C) of GPT-2 124M at B=8, T=1024
    size_t NC = (size_t)N * C;
    floatX *d_a, *d_r, *d_w, *d_b, *d_out, *d_res, *d_dy, *d_dinp, *d_dw, *d_db;
    float *d_mean, *d_rstd, *d_scratch;
    size_t scratch_bytes = layernorm_backward_scratch_bytes(N, C);
    cudaCheck(cudaMalloc(&d_a, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_r, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_res, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dy, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dinp, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_w, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_b, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dw, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_db, C * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_mean, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_rstd, N * sizeof(float)));
    cudaCheck(cudaMalloc(&d_scratch, scratch_bytes));
    // zeros: the timing does not depend on the values, and the backward's
    // repeated accumulation into zeros stays zero
    cudaCheck(cudaMemset(d_a, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_r, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dy, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dinp, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_w, 0, C * sizeof(floatX)));
    cudaCheck(cudaMemset(d_b, 0, C * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dw, 0, C * sizeof(floatX)));
    cudaCheck(cudaMemset(d_db, 0, C * sizeof(floatX)));
    // bytes moved from/to DRAM, counting each (N,C) tensor once (the re-reads
    // of a row hit the caches) and the (C,) and (N,) ones and the scratch too
    double small = 2.0 * C * sizeof(floatX) + 2.0 * N * sizeof(float);
    float ms = bench_ms([&] { layernorm_forward(d_out, d_mean, d_rstd, d_a, d_w, d_b, N, C, 0); }, 100);
    bench_report("layernorm_forward", ms, 2.0 * NC * sizeof(floatX) + small, 0);
    ms = bench_ms([&] { fused_residual_layernorm_forward(d_res, d_out, d_mean, d_rstd, d_a, d_r, d_w, d_b, N, C, 0); },
                  100);
    bench_report("fused_residual_layernorm_forward", ms, 4.0 * NC * sizeof(floatX) + small, 0);
    // dout, inp, dinp read, dinp written; weight read, dweight, dbias read and
    // written; mean, rstd read; scratch written and read
    // the kernel for C = 768 (NCH = 3), then the general one (NCH = 0) side by side
    double bwd_bytes =
        4.0 * NC * sizeof(floatX) + 5.0 * C * sizeof(floatX) + 2.0 * N * sizeof(float) + 2.0 * scratch_bytes;
    auto backward = [&] { layernorm_backward(d_dinp, d_dw, d_db, d_scratch, d_dy, d_a, d_w, d_mean, d_rstd, N, C, 0); };
    ms = bench_ms(backward, 100);
    bench_report("layernorm_backward", ms, bwd_bytes, 0);
    layernorm_backward_general = 1;
    float ms_general = bench_ms(backward, 100);
    layernorm_backward_general = 0;
    bench_report("layernorm_backward_general", ms_general, bwd_bytes, 0);
    printf("bench layernorm_backward: NCH = 3 %.2fx the speed of the general kernel\n", ms_general / ms);
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_r));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_res));
    cudaCheck(cudaFree(d_dy));
    cudaCheck(cudaFree(d_dinp));
    cudaCheck(cudaFree(d_w));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_dw));
    cudaCheck(cudaFree(d_db));
    cudaCheck(cudaFree(d_mean));
    cudaCheck(cudaFree(d_rstd));
    cudaCheck(cudaFree(d_scratch));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 || (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badc") &&
                     strcmp(mode, "badcfused") && strcmp(mode, "badcbwd"))) {
        fprintf(stderr, "error: usage: layernorm [check|bench|badc|badcfused|badcbwd]\n");
        return 2;
    }
    if (!strcmp(mode, "badc") || !strcmp(mode, "badcfused") || !strcmp(mode, "badcbwd")) {
        floatX* d;
        float* s;
        cudaCheck(cudaMalloc(&d, 64 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&s, 64 * sizeof(float)));
        if (!strcmp(mode, "badc")) layernorm_forward(d, s, s, d, d, d, 4, 12, 0);   // exits 1
        else if (!strcmp(mode, "badcfused")) fused_residual_layernorm_forward(d, d, s, s, d, d, d, d, 4, 12, 0);
        else layernorm_backward(d, d, d, s, d, d, d, s, s, 4, 12, 0);   // exits 1
        return 0;
    }
    // (N, C): every N of {1, 7, 64} with every C of {8, 64, 768, 1000}, all
    // kernels; then N = 300 (a backward grid of 10 blocks) and C = 2056
    // without the fused forward
    int Ns[] = {1, 7, 64}, Cs[] = {8, 64, 768, 1000};
    int bad = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) bad |= check(Ns[i], Cs[j], 1234u + 10 * i + j, 1);
    bad |= check(300, 64, 1264u, 0);
    bad |= check(300, 1000, 1265u, 0);
    bad |= check(7, 2056, 1266u, 0);   // over 2048: the general backward kernel only
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
