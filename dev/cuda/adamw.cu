// dev/cuda/adamw.cu: checks and benchmarks the AdamW kernel of
// llmc/adamw.cuh against an fp32 CPU reference of the same formula; exits 1
// on any mismatch.
//
//   adamw         check: both kernels (scalar, 128-bit) on n in {1, 37,
//                 1000, 4097} (only the tail, partial warps, a partial block,
//                 several blocks with a partial last one, tails of 1 and 5),
//                 with and without master weights, at t = 1 and 5; then the
//                 unbiasedness of the stochastic rounding (adamw_update)
//   adamw bench   also time both kernels at n = 124,439,808 (GPT-2 124M)
//                 and print GB/s (real GPU only)
//   adamw badt    t = 0: must fail with a message
// Each check line ends with a hash of the result bits: the rounding's random
// bits depend only on (seed, index), so every thread order gives the same
// bits (tests/kernels/adamw.sh compares them).
//
// Inputs: params in [-1, 1) (bf16), grads in [-0.5, 0.5) (bf16), m in
// [-0.05, 0.05), v in [0, 0.01) (fp32), master = params plus a random
// fraction of a bf16 ulp (not representable in bf16); lr = 0.01, beta1 =
// 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, grad_scale = 0.7.
//
// Tolerances. The device may fuse multiply-adds (and round sqrt and / the
// same way, IEEE), so its fp32 results may differ from the CPU's in the
// last bits; both are within the same bound B of the exact value of the
// formula, so the check allows 2B, with u = 2^-24, gamma(k) = k u / (1 - k u)
// and one extra rounding per line for second-order terms:
// - m: B = gamma(4) (|beta1 m0| + |(1 - beta1) g|) (g, the two products, the
//   sum); absolute, because the terms may cancel;
// - v: B = gamma(6) v (all terms non-negative);
// - master (and the fp32 value behind params): B propagated through mhat,
//   vhat, sqrt, + eps, the division, + weight_decay w and w - lr (...), each
//   step adding the error it inherits (first order) and gamma(1 or 2) of its
//   magnitude; a few fp32 ulps of w. A missing bias correction (mhat off by
//   1 / 0.41 at t = 5), weight decay put into m (m off by ~(1 - beta1) 0.1
//   |w|) are off by orders of magnitude more.
// - params (bf16): stochastic rounding is monotone in its input for fixed
//   random bits, so got must lie in [SR(w - 2B), SR(w + 2B)] with the same
//   hash bits (w the reference fp32 value): a single value, checked exactly,
//   except where w is within 2B of the rounding boundary those bits put in
//   its bf16 interval; both ends are neighbours of w in bf16.
// - unbiasedness: 100000 elements all with master = x (lr = 0, so master
//   stays x exactly) round to bf16 with their own random bits: the mean of
//   the results must be within 5 sigma of x, sigma = ulp sqrt(f (1 - f) / N)
//   with f = 0.3 the fraction of a bf16 ulp above the lower neighbour, about
//   0.0014 ulp; round to nearest would be 0.3 ulp (200 sigma) off. Done for
//   x > 0 and x < 0 (rounding works on the magnitude).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/adamw.cuh"
#include "common.cuh"

#define LR 0.01f
#define BETA1 0.9f
#define BETA2 0.95f
#define EPS 1e-8f
#define WEIGHT_DECAY 0.1f
#define GRAD_SCALE 0.7f
#define SR_N 100000        // elements of the unbiasedness test
#define SR_FRACTION 0.3    // where x sits between its bf16 neighbours
#define SR_SIGMAS 5.0      // allowed distance of the mean from x

static uint64_t fnv1a(uint64_t h, const void* p, size_t n) {
    const unsigned char* b = (const unsigned char*)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

// ----------------------------------------------------------------------------
// CPU reference and its error bounds

struct Ref {
    float m, v, w;      // fp32 results, computed as the kernel does
    double bm, bv, bw;  // error bounds B of each (see the top of the file)
};

static Ref adamw_ref(float w, float grad, float m0, float v0, float bc1, float bc2) {
    Ref r;
    float g = grad * GRAD_SCALE;
    r.m = BETA1 * m0 + (1.0f - BETA1) * g;
    r.v = BETA2 * v0 + (1.0f - BETA2) * g * g;
    float mhat = r.m / bc1, vhat = r.v / bc2;
    float upd = mhat / (sqrtf(vhat) + EPS) + WEIGHT_DECAY * w;
    r.w = w - LR * upd;
    // the bounds, propagated step by step (first order, one extra rounding each)
    r.bm = gamma_u(4) * (fabs(BETA1 * (double)m0) + fabs((1.0 - BETA1) * g));
    r.bv = gamma_u(6) * fabs((double)r.v);
    double bmh = r.bm / bc1 + gamma_u(2) * fabs(mhat), bvh = r.bv / bc2 + gamma_u(2) * vhat;
    double s = sqrt((double)vhat);
    double bs = (s > 0 ? bvh / s : 0) + gamma_u(2) * s;   // |d sqrt| <= |d vhat| / (2 s), doubled
    double den = s + EPS, bden = bs + gamma_u(2) * den;
    double ratio = fabs((double)mhat) / den;
    double bratio = (bmh + ratio * bden) / den + gamma_u(2) * ratio;
    double bupd = bratio + gamma_u(3) * (ratio + fabs(WEIGHT_DECAY * (double)w));
    r.bw = LR * bupd + gamma_u(3) * (fabs((double)w) + LR * fabs((double)upd));
    return r;
}

static float bf(floatX x) { return __bfloat162float(x); }

// ----------------------------------------------------------------------------
// check, bench

// one step at t on n elements, with master weights or without; 0 if all match
static int check(int vectorized, size_t n, int use_master, int t, uint32_t seed) {
    floatX *p = (floatX*)xmalloc(n * sizeof(floatX)), *gr = (floatX*)xmalloc(n * sizeof(floatX));
    floatX* got_p = (floatX*)xmalloc(n * sizeof(floatX));
    float *m = (float*)xmalloc(n * sizeof(float)), *v = (float*)xmalloc(n * sizeof(float));
    float *w = (float*)xmalloc(n * sizeof(float)), *got_m = (float*)xmalloc(n * sizeof(float));
    float *got_v = (float*)xmalloc(n * sizeof(float)), *got_w = (float*)xmalloc(n * sizeof(float));
    fill_bf16(p, NULL, n, 0.0f, 1.0f, seed);
    fill_bf16(gr, NULL, n, 0.0f, 0.5f, seed + 1);
    uint32_t s = seed + 2;
    for (size_t i = 0; i < n; i++) {
        m[i] = 0.05f * lcg_uniform(&s);
        v[i] = 0.005f * (1.0f + lcg_uniform(&s));
        // master: the bf16 value plus a fraction of its ulp, so fp32 bits below bf16's are set
        w[i] = use_master ? bf(p[i]) + 0.5f * (1.0f + lcg_uniform(&s)) * bf16_ulp(bf(p[i])) : bf(p[i]);
    }
    floatX *d_p, *d_g;
    float *d_m, *d_v, *d_w = NULL;
    cudaCheck(cudaMalloc(&d_p, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_g, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_m, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_v, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d_p, p, n * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_g, gr, n * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_m, m, n * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_v, v, n * sizeof(float), cudaMemcpyHostToDevice));
    if (use_master) {
        cudaCheck(cudaMalloc(&d_w, n * sizeof(float)));
        cudaCheck(cudaMemcpy(d_w, w, n * sizeof(float), cudaMemcpyHostToDevice));
    }
    uint32_t rseed = seed * 2654435761u;
    adamw_launch(vectorized, d_p, d_w, d_g, d_m, d_v, n, LR, BETA1, BETA2, t, EPS, WEIGHT_DECAY, GRAD_SCALE, rseed, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(got_p, d_p, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(got_m, d_m, n * sizeof(float), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(got_v, d_v, n * sizeof(float), cudaMemcpyDeviceToHost));
    if (use_master) cudaCheck(cudaMemcpy(got_w, d_w, n * sizeof(float), cudaMemcpyDeviceToHost));

    const char* what = vectorized ? (use_master ? "adamw_vec_kernel with master" : "adamw_vec_kernel without master")
                                  : (use_master ? "adamw_kernel with master" : "adamw_kernel without master");
    float bc1 = adamw_bias_correction(BETA1, t), bc2 = adamw_bias_correction(BETA2, t);
    double max_m = 0, max_v = 0, max_w = 0;
    size_t exact = 0;   // params checked for the exact stochastic rounding
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        Ref r = adamw_ref(w[i], bf(gr[i]), m[i], v[i], bc1, bc2);
        double em = fabs((double)got_m[i] - r.m), ev = fabs((double)got_v[i] - r.v);
        if (!(em <= 2 * r.bm) || !(ev <= 2 * r.bv)) {
            fprintf(stderr, "error: %s n=%zu t=%d: m[%zu], v[%zu] = %.9g, %.9g, want %.9g, %.9g (tolerances %.3g, %.3g)\n",
                    what, n, t, i, i, got_m[i], got_v[i], r.m, r.v, 2 * r.bm, 2 * r.bv);
            bad = 1;
            break;
        }
        max_m = fmax(max_m, em / (2 * r.bm));
        max_v = fmax(max_v, ev / (2 * r.bv));
        double tw = 2 * r.bw;
        if (use_master) {
            double ew = fabs((double)got_w[i] - r.w);
            if (!(ew <= tw)) {
                fprintf(stderr, "error: %s n=%zu t=%d: master[%zu] = %.9g, want %.9g: error %.3g > %.3g\n", what, n,
                        t, i, got_w[i], r.w, ew, tw);
                bad = 1;
                break;
            }
            max_w = fmax(max_w, ew / tw);
        }
        // the params: between the stochastic roundings of w -+ tw with this element's bits
        uint32_t bits = adamw_random_bits(rseed, i);
        float lo = bf(adamw_stochastic_round(nextafterf((float)(r.w - tw), -INFINITY), bits));
        float hi = bf(adamw_stochastic_round(nextafterf((float)(r.w + tw), INFINITY), bits));
        float gp = bf(got_p[i]);
        if (!(gp >= lo && gp <= hi)) {
            fprintf(stderr, "error: %s n=%zu t=%d: params[%zu] = %.9g, want %.9g (stochastic rounding of %.9g with "
                    "random bits 0x%04x%s)\n", what, n, t, i, gp, lo, r.w, bits & 0xffffu,
                    lo == hi ? "" : ", or the value above: w is near the boundary");
            bad = 1;
            break;
        }
        if (lo == hi) exact++;
    }
    if (!bad) {
        uint64_t h = fnv1a(14695981039346656037ull, got_p, n * sizeof(floatX));
        h = fnv1a(h, got_m, n * sizeof(float));
        h = fnv1a(h, got_v, n * sizeof(float));
        if (use_master) h = fnv1a(h, got_w, n * sizeof(float));
        printf("%s n=%zu t=%d: matches the CPU reference (largest error / tolerance: m %.2f, v %.2f, master %.2f; "
               "params: %zu of %zu exactly the stochastic rounding), bits %016llx\n", what, n, t, max_m, max_v, max_w,
               exact, n, (unsigned long long)h);
    }
    cudaCheck(cudaFree(d_p));
    cudaCheck(cudaFree(d_g));
    cudaCheck(cudaFree(d_m));
    cudaCheck(cudaFree(d_v));
    cudaCheck(cudaFree(d_w));
    free(p); free(gr); free(got_p); free(m); free(v); free(w); free(got_m); free(got_v); free(got_w);
    return bad;
}

// SR_N elements whose master weight is x, lr = 0: the mean of the bf16
// params must be within SR_SIGMAS sigma of x (see the top of the file)
static int check_unbiased(float sign, uint32_t seed) {
    size_t n = SR_N;
    float base = sign * 1.5f, ulp = bf16_ulp(base);   // 1.5 and its bf16 neighbour 1.5 + 2^-7 (or the negatives)
    float x = base + sign * (float)SR_FRACTION * ulp;
    floatX* p = (floatX*)xmalloc(n * sizeof(floatX));
    float* w = (float*)xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) { p[i] = __float2bfloat16(x); w[i] = x; }
    floatX *d_p, *d_g;
    float *d_m, *d_v, *d_w;
    cudaCheck(cudaMalloc(&d_p, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_g, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_m, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_v, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_w, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d_p, p, n * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_w, w, n * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemset(d_g, 0, n * sizeof(floatX)));
    cudaCheck(cudaMemset(d_m, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_v, 0, n * sizeof(float)));
    adamw_update(d_p, d_w, d_g, d_m, d_v, n, 0.0f, BETA1, BETA2, 1, EPS, WEIGHT_DECAY, GRAD_SCALE, seed, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(p, d_p, n * sizeof(floatX), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(w, d_w, n * sizeof(float), cudaMemcpyDeviceToHost));
    double sum = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float g = bf(p[i]);
        if (w[i] != x || (g != base && g != base + sign * ulp)) {
            fprintf(stderr, "error: adamw_update unbiasedness: master[%zu] = %.9g (want %.9g), params[%zu] = %.9g "
                    "(want %.9g or %.9g)\n", i, w[i], x, i, g, base, base + sign * ulp);
            bad = 1;
            break;
        }
        sum += g;
    }
    double mean = sum / n, sigma = ulp * sqrt(SR_FRACTION * (1 - SR_FRACTION) / n);
    if (!bad && !(fabs(mean - x) <= SR_SIGMAS * sigma)) {
        fprintf(stderr, "error: adamw_update unbiasedness: mean of %zu stochastic roundings of %.9g is %.9g, "
                "%.1f sigma away (at most %.0f allowed)\n", n, x, mean, fabs(mean - x) / sigma, SR_SIGMAS);
        bad = 1;
    }
    uint64_t h = fnv1a(14695981039346656037ull, p, n * sizeof(floatX));
    if (!bad)
        printf("adamw_update unbiasedness x=%.9g: mean of %zu stochastic roundings %.1f sigma from x, bits %016llx\n",
               x, n, fabs(mean - x) / sigma, (unsigned long long)h);
    cudaCheck(cudaFree(d_p));
    cudaCheck(cudaFree(d_g));
    cudaCheck(cudaFree(d_m));
    cudaCheck(cudaFree(d_v));
    cudaCheck(cudaFree(d_w));
    free(p);
    free(w);
    return bad;
}

#ifndef CUDA_EMU
static void bench(void) {
    size_t n = 124439808;   // parameters of GPT-2 124M
    floatX *d_p, *d_g;
    float *d_m, *d_v, *d_w;
    cudaCheck(cudaMalloc(&d_p, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_g, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_m, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_v, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_w, n * sizeof(float)));
    cudaCheck(cudaMemset(d_p, 0, n * sizeof(floatX)));
    cudaCheck(cudaMemset(d_g, 0, n * sizeof(floatX)));
    cudaCheck(cudaMemset(d_m, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_v, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_w, 0, n * sizeof(float)));
    int t = 0;   // a new step (and seed) per call, as in training
    const char* names[2][2] = {{"adamw_kernel_bf16", "adamw_kernel_master"}, {"adamw_vec_kernel_bf16", "adamw_vec_kernel_master"}};
    for (int vec = 0; vec < 2; vec++)
        for (int master = 0; master < 2; master++) {
            float* w = master ? d_w : NULL;
            float ms = bench_ms([&] {
                t++;
                adamw_launch(vec, d_p, w, d_g, d_m, d_v, n, LR, BETA1, BETA2, t, EPS, WEIGHT_DECAY, GRAD_SCALE,
                             (uint32_t)t, 0);
            }, 20);
            // bytes per element: params 2 + 2, grads 2, m and v 8 + 8; with
            // master: master 4 + 4 instead of reading params
            bench_report(names[vec][master], ms, (master ? 28.0 : 22.0) * n, 0);
        }
    cudaCheck(cudaFree(d_p));
    cudaCheck(cudaFree(d_g));
    cudaCheck(cudaFree(d_m));
    cudaCheck(cudaFree(d_v));
    cudaCheck(cudaFree(d_w));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 || (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badt"))) {
        fprintf(stderr, "error: usage: adamw [check|bench|badt]\n");
        return 2;
    }
    if (!strcmp(mode, "badt")) {
        floatX* d;
        float* f;
        cudaCheck(cudaMalloc(&d, 16 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&f, 16 * sizeof(float)));
        adamw_update(d, f, d, f, f, 16, LR, BETA1, BETA2, 0, EPS, WEIGHT_DECAY, 1.0f, 1, 0);   // exits 1
        return 0;
    }
    size_t sizes[] = {1, 37, 1000, 4097};
    int bad = 0;
    for (int vec = 0; vec < 2; vec++)
        for (int i = 0; i < 4; i++)
            for (int master = 0; master < 2; master++)
                for (int t = 1; t <= 5; t += 4) bad |= check(vec, sizes[i], master, t, 99u + 10 * i + 2 * master + t);
    bad |= check_unbiased(1.0f, 2024u);
    bad |= check_unbiased(-1.0f, 2025u);
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
