// dev/cuda/matmul.cu: checks and benchmarks llmc/matmul.cuh (cuBLASLt
// wrapper, or its CPU stand-in under the emulation, and our tiled kernel)
// against a CPU reference in double; exits 1 on any mismatch.
//
//   matmul            check: (BT, C, OC) = (7, 8, 24) (one partial tile
//                     everywhere), (70, 96, 136) (a partial second column
//                     tile, 3 k steps), (130, 40, 48) (two row tiles, a
//                     partial k step), and for the tiled kernel also
//                     (65, 72, 130) and (33, 16, 1) (OC not a multiple of 8);
//                     on a real GPU also (512, 768, 1024) and (2048, 256,
//                     384) (long k for tensor-core blocking and split-k).
//                     Forward: matmul_forward and matmul_forward_tiled, each
//                     without and with bias, without and with GELU (and
//                     matmul_forward_wmma on (16, 16, 16), (96, 48, 144),
//                     (64, 32, 80): partial block tiles and warp quarters);
//                     backward: matmul_backward with dbias, with dbias and
//                     dinp times gelu' (DGELU), with gelu' and no dbias, and
//                     with gelu' by gelu_backward apart (-ge 0, or no DGELU
//                     in cuBLASLt), each run twice to show it gives the same
//                     bits; matmul_backward_dweight_f32 (an
//                     fp32 dweight, no bf16 rounding) and
//                     matmul_backward_dinp_f32 (an fp32 dinp added to). Each line ends with a hash of the
//                     result bits (tests/kernels/matmul.sh compares them
//                     across thread orders and builds).
//   matmul bench      also time cuBLASLt (forward, backward), the tiled and
//                     the wmma kernel at GPT-2 124M shapes, TFLOP/s (real GPU only)
//   matmul badc       matmul_forward with C % 8 != 0: must fail with a message
//   matmul badoc      matmul_forward with OC % 8 != 0: the same
//   matmul badctiled  matmul_forward_tiled with C % 8 != 0: the same
//   matmul badwmma    matmul_forward_wmma with C % 16 != 0: the same
//   matmul noinit     matmul_forward before matmul_init(): the same
//
// Tolerances. Products of two bf16 values (8-bit significands) are exact in
// fp32, so the only errors of a dot product of n terms are the additions:
// any summation order has |error| <= gamma(n-1) * sum |terms| (Higham,
// "Accuracy and Stability of Numerical Algorithms", sec. 4.2), gamma(k) =
// k u / (1 - k u), u = 2^-24. Tensor cores may truncate instead of rounding
// in their internal additions (Fasi et al., "Numerical behavior of NVIDIA
// tensor cores", 2021), which doubles u: so E = 2 gamma(n) * sum |terms| for
// every cuBLASLt / tiled result (n counts the bias or the old dweight as a
// term), and gamma(n) without the 2 for our fp32 dbias kernel. The bf16
// output then adds half an ulp (round to nearest even) of a value within E
// of the reference: tol = E + bf16_ulp(|want| + E) / 2. With GELU, out =
// gelu(fp32 value): |gelu'| <= 1.13 (the tanh form's maximum, at x = 2.4),
// so 1.2 E, plus GELU_ABS_TOL for the fp32 evaluation of tanh (as in
// dev/cuda/gelu.cu). The backward's dinp times gelu'(pre-GELU input) (the
// fc_proj's: cuBLASLt's DGELU epilogue, or gelu_backward after the GEMM
// where there is none): |gelu'| E, plus GELU_GRAD_TOL |dinp| for cuBLASLt's
// evaluation of gelu' (closed code), plus half a bf16 ulp of dinp times
// |gelu'| for the GEMM's rounding when gelu_backward runs apart (allowed on
// both paths). dweight += dout^T @ inp: cuBLASLt
// (seen on an H200, CUDA 13, at BT=7) rounds dout^T @ inp to bf16 before it
// adds the old dweight (beta = 1) and rounds again, so dweight's E also has
// half a bf16 ulp of |dout^T @ inp|; the fp32 dweight of
// matmul_backward_dweight_f32 has E alone (nothing is rounded to bf16: a
// rounding would be 4e-3 of the value). These bounds are 1e-5..1e-4 of
// the sums; a wrong kernel (missing bias: |bias| up to 0.5; a transposed
// weight; GELU applied twice; dweight overwritten: the old value is up to 1;
// a missed partial tile) is off by 1e-2..1 at some index.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/matmul.cuh"
#include "common.cuh"

// fp32 tanh on host and device may differ by a few fp32 ulps of 1 (2^-23
// each) times |x| / 2 <= 3 here: far below 2^-16 (see dev/cuda/gelu.cu)
#define GELU_ABS_TOL (1.0f / 65536.0f)
#define GELU_SLOPE_MAX 1.2   // >= max |gelu'(x)| = 1.129 (tanh form)
// gelu' as cuBLASLt's DGELU epilogue may compute it (a faster tanh, say)
// against our fp32 formula: 2^-10 absolute, where a missing or doubled
// gelu' is off by 0.1..1 over most of the range of x
#define GELU_GRAD_TOL (1.0 / 1024.0)

// ----------------------------------------------------------------------------
// helpers

static uint32_t hash_bits(const floatX* x, size_t n, uint32_t h) {   // FNV-1a over the bf16 bits
    const unsigned char* p = (const unsigned char*)x;
    for (size_t i = 0; i < n * sizeof(floatX); i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static floatX* to_device(const floatX* h, size_t n) {
    floatX* d;
    cudaCheck(cudaMalloc(&d, n * sizeof(floatX)));
    cudaCheck(cudaMemcpy(d, h, n * sizeof(floatX), cudaMemcpyHostToDevice));
    return d;
}

static void to_host(floatX* h, const floatX* d, size_t n) {
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(h, d, n * sizeof(floatX), cudaMemcpyDeviceToHost));
}

static double gelu_d(double x) {
    return 0.5 * x * (1.0 + tanh(GELU_SCALE * (x + GELU_CUBIC * x * x * x)));
}

// compares got (rows, cols) with want (double) within err[i] (the fp32
// bound E before the bf16 rounding; see the top); prints nothing on success,
// one error line on the first failure. *worst: largest error / tolerance.
static int compare(const char* what, const char* name, int BT, int C, int OC, const floatX* got, const double* want,
                   const double* err, int rows, int cols, double* worst) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            double g = __bfloat162float(got[i]), w = want[i], e = err[i];
            double tol = e + 0.5 * bf16_ulp((float)(fabs(w) + e));
            double d = fabs(g - w);
            if (!(d <= tol)) {
                fprintf(stderr, "error: %s BT=%d C=%d OC=%d: %s[%d][%d] = %.7g, want %.7g (tolerance %.3g)\n", what,
                        BT, C, OC, name, r, c, g, w, tol);
                return 1;
            }
            if (d / tol > *worst) *worst = d / tol;
        }
    return 0;
}

// ----------------------------------------------------------------------------
// forward check

// version 0: matmul_forward (cuBLASLt or its stand-in); 1: matmul_forward_tiled;
// 2: matmul_forward_wmma
static int check_forward(int version, int BT, int C, int OC, uint32_t seed) {
    const char* names[] = {"matmul_forward", "matmul_forward_tiled", "matmul_forward_wmma"};
    const char* what = names[version];
    size_t nin = (size_t)BT * C, nw = (size_t)OC * C, nout = (size_t)BT * OC;
    floatX *inp = (floatX*)xmalloc(nin * sizeof(floatX)), *w = (floatX*)xmalloc(nw * sizeof(floatX));
    floatX* b = (floatX*)xmalloc(OC * sizeof(floatX));
    floatX *out = (floatX*)xmalloc(nout * sizeof(floatX)), *pre = (floatX*)xmalloc(nout * sizeof(floatX));
    float *inpf = (float*)xmalloc(nin * sizeof(float)), *wf = (float*)xmalloc(nw * sizeof(float));
    float* bf = (float*)xmalloc(OC * sizeof(float));
    double *mm = (double*)xmalloc(nout * sizeof(double)), *mabs = (double*)xmalloc(nout * sizeof(double));
    double *want = (double*)xmalloc(nout * sizeof(double)), *err = (double*)xmalloc(nout * sizeof(double));
    double *want_g = (double*)xmalloc(nout * sizeof(double)), *err_g = (double*)xmalloc(nout * sizeof(double));
    fill_bf16(inp, inpf, nin, 0.0f, 1.0f, seed);
    fill_bf16(w, wf, nw, 0.0f, 1.0f, seed + 1);
    fill_bf16(b, bf, OC, 0.0f, 0.5f, seed + 2);
    for (int r = 0; r < BT; r++)
        for (int o = 0; o < OC; o++) {
            double s = 0, a = 0;
            for (int c = 0; c < C; c++) {
                double p = (double)inpf[(size_t)r * C + c] * wf[(size_t)o * C + c];
                s += p;
                a += fabs(p);
            }
            mm[(size_t)r * OC + o] = s;
            mabs[(size_t)r * OC + o] = a;
        }
    floatX *d_inp = to_device(inp, nin), *d_w = to_device(w, nw), *d_b = to_device(b, OC);
    floatX *d_out, *d_pre;
    cudaCheck(cudaMalloc(&d_out, nout * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_pre, nout * sizeof(floatX)));
    int bad = 0;
    for (int variant = 0; variant < 4 && !bad; variant++) {
        int has_bias = variant & 1, has_gelu = variant >> 1;
        for (size_t i = 0; i < nout; i++) {
            int o = (int)(i % OC);
            double bias = has_bias ? bf[o] : 0.0;
            want[i] = mm[i] + bias;
            err[i] = 2.0 * gamma_u(C + 1) * (mabs[i] + fabs(bias));
            want_g[i] = gelu_d(want[i]);
            err_g[i] = GELU_SLOPE_MAX * err[i] + GELU_ABS_TOL;
        }
        char label[64];   // names the variant in error lines
        snprintf(label, sizeof label, "%s%s%s", what, has_bias ? " bias" : "", has_gelu ? " gelu" : "");
        floatX* bias_ptr = has_bias ? d_b : NULL;
        floatX* pre_ptr = has_gelu ? d_pre : NULL;
        if (version == 0) matmul_forward(d_out, pre_ptr, d_inp, d_w, bias_ptr, BT, C, OC, 0);
        else if (version == 1) matmul_forward_tiled(d_out, pre_ptr, d_inp, d_w, bias_ptr, BT, C, OC, 0);
        else matmul_forward_wmma(d_out, pre_ptr, d_inp, d_w, bias_ptr, BT, C, OC, 0);
        to_host(out, d_out, nout);
        double worst = 0, worst_pre = 0;
        uint32_t h = hash_bits(out, nout, 2166136261u);
        if (has_gelu) {
            to_host(pre, d_pre, nout);
            h = hash_bits(pre, nout, h);
            bad |= compare(label, "pre_gelu", BT, C, OC, pre, want, err, BT, OC, &worst_pre);
            if (!bad) bad |= compare(label, "out", BT, C, OC, out, want_g, err_g, BT, OC, &worst);
        } else {
            bad |= compare(label, "out", BT, C, OC, out, want, err, BT, OC, &worst);
        }
        if (!bad)
            printf("%s BT=%d C=%d OC=%d: matches the CPU reference (largest error / tolerance: out %.2f, "
                   "pre_gelu %.2f) bits %08x\n",
                   label, BT, C, OC, worst, worst_pre, h);
    }
    cudaCheck(cudaFree(d_inp));
    cudaCheck(cudaFree(d_w));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_pre));
    free(inp); free(w); free(b); free(out); free(pre); free(inpf); free(wf); free(bf);
    free(mm); free(mabs); free(want); free(err); free(want_g); free(err_g);
    return bad;
}

// ----------------------------------------------------------------------------
// backward check

// An fp32 product added by `run` into out (rows,cols) on the device, which
// starts as out0: out[i][j] = out0[i][j] + the sum over k < K of term(i, j,
// k), within E = 2 gamma(K + 1) sum |terms|
template <class Run, class Term>
static int check_f32_sum(const char* what, int BT, int C, int OC, int rows, int cols, int K, const float* out0,
                         Run run, Term term) {
    size_t n = (size_t)rows * cols;
    float *d_out, *got = (float*)xmalloc(n * sizeof(float));
    cudaCheck(cudaMalloc(&d_out, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d_out, out0, n * sizeof(float), cudaMemcpyHostToDevice));
    run(d_out);
    cudaCheck(cudaMemcpy(got, d_out, n * sizeof(float), cudaMemcpyDeviceToHost));
    double worst = 0;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        int r = (int)(i / cols), c = (int)(i % cols);
        double s = out0[i], a = fabs(s);
        for (int k = 0; k < K; k++) {
            double p = term(r, c, k);
            s += p;
            a += fabs(p);
        }
        double tol = 2.0 * gamma_u(K + 1) * a, e = fabs(got[i] - s);
        if (!(e <= tol)) {
            fprintf(stderr, "error: %s BT=%d C=%d OC=%d: [%d][%d] = %.9g, want %.9g (error %.3g > tolerance %.3g)\n",
                    what, BT, C, OC, r, c, got[i], s, e, tol);
            bad = 1;
        }
        if (tol > 0 && e / tol > worst) worst = e / tol;
    }
    if (!bad)
        printf("%s BT=%d C=%d OC=%d: matches the CPU reference (largest error / tolerance %.2f)\n", what, BT, C, OC,
               worst);
    cudaCheck(cudaFree(d_out));
    free(got);
    return bad;
}

// matmul_backward_dweight_f32 (dweight (OC,C) += dout^T @ inp) and
// matmul_backward_dinp_f32 (dinp (BT,C) += dout @ weight) on the device's
// dout (BT,OC), inp (BT,C), weight (OC,C), from dw0f and (some values) inpf
static int check_f32_products(int BT, int C, int OC, const floatX* d_dout, const floatX* d_inp, const floatX* d_w,
                              const float* doutf, const float* inpf, const float* wf, const float* dw0f) {
    int bad = check_f32_sum("matmul_backward_dweight_f32", BT, C, OC, OC, C, BT, dw0f,
                            [&](float* d) { matmul_backward_dweight_f32(d, d_dout, d_inp, BT, C, OC, 0); },
                            [&](int o, int c, int r) { return (double)doutf[(size_t)r * OC + o] * inpf[(size_t)r * C + c]; });
    return bad | check_f32_sum("matmul_backward_dinp_f32", BT, C, OC, BT, C, OC, inpf,
                               [&](float* d) { matmul_backward_dinp_f32(d, d_dout, d_w, BT, C, OC, 0); },
                               [&](int r, int c, int o) { return (double)doutf[(size_t)r * OC + o] * wf[(size_t)o * C + c]; });
}

static int check_backward(int BT, int C, int OC, uint32_t seed) {
    const char* what = "matmul_backward";
    size_t nin = (size_t)BT * C, nw = (size_t)OC * C, nout = (size_t)BT * OC;
    floatX *inp = (floatX*)xmalloc(nin * sizeof(floatX)), *w = (floatX*)xmalloc(nw * sizeof(floatX));
    floatX *dout = (floatX*)xmalloc(nout * sizeof(floatX)), *pre = (floatX*)xmalloc(nin * sizeof(floatX));
    floatX *dw0 = (floatX*)xmalloc(nw * sizeof(floatX)), *db0 = (floatX*)xmalloc(OC * sizeof(floatX));
    floatX* dinp = (floatX*)xmalloc(nin * sizeof(floatX));
    floatX *dw = (floatX*)xmalloc(nw * sizeof(floatX)), *db = (floatX*)xmalloc(OC * sizeof(floatX));
    floatX *dinp2 = (floatX*)xmalloc(nin * sizeof(floatX)), *dw2 = (floatX*)xmalloc(nw * sizeof(floatX));
    floatX* db2 = (floatX*)xmalloc(OC * sizeof(floatX));
    float *inpf = (float*)xmalloc(nin * sizeof(float)), *wf = (float*)xmalloc(nw * sizeof(float));
    float *doutf = (float*)xmalloc(nout * sizeof(float)), *pref = (float*)xmalloc(nin * sizeof(float));
    float *dw0f = (float*)xmalloc(nw * sizeof(float)), *db0f = (float*)xmalloc(OC * sizeof(float));
    size_t nmax = nin > nw ? nin : nw;
    double *want = (double*)xmalloc(nmax * sizeof(double)), *err = (double*)xmalloc(nmax * sizeof(double));
    fill_bf16(inp, inpf, nin, 0.0f, 1.0f, seed);
    fill_bf16(w, wf, nw, 0.0f, 1.0f, seed + 1);
    fill_bf16(dout, doutf, nout, 0.0f, 1.0f, seed + 2);
    fill_bf16(pre, pref, nin, 0.0f, 4.0f, seed + 3);
    fill_bf16(dw0, dw0f, nw, 0.0f, 1.0f, seed + 4);   // non-zero: dweight must be accumulated into
    fill_bf16(db0, db0f, OC, 0.0f, 1.0f, seed + 5);
    floatX *d_inp = to_device(inp, nin), *d_w = to_device(w, nw), *d_dout = to_device(dout, nout);
    floatX *d_pre = to_device(pre, nin), *d_dw = to_device(dw0, nw), *d_db = to_device(db0, OC);
    floatX* d_dinp;
    float* d_scratch;
    size_t scratch_bytes = matmul_backward_scratch_bytes(BT, OC);
    cudaCheck(cudaMalloc(&d_dinp, nin * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_scratch, scratch_bytes));
    int bad = 0;
    // variants: dbias without gelu', dbias with gelu', gelu' without dbias,
    // dbias with gelu' by gelu_backward apart (as without DGELU), and dbias
    // by our kernels apart (as without BGRADB)
    for (int variant = 0; variant < 5 && !bad; variant++) {
        int has_dbias = variant != 2, has_gelu = variant > 0 && variant < 4;
        matmul_ctx.dgelu_apart = variant == 3;
        matmul_ctx.dbias_apart = variant == 4;
        for (int run = 0; run < 2; run++) {   // twice from the same state: the same bits
            cudaCheck(cudaMemcpy(d_dw, dw0, nw * sizeof(floatX), cudaMemcpyHostToDevice));
            cudaCheck(cudaMemcpy(d_db, db0, OC * sizeof(floatX), cudaMemcpyHostToDevice));
            cudaCheck(cudaMemset(d_dinp, 0xFF, nin * sizeof(floatX)));   // NaN: dinp must be written
            matmul_backward(d_dinp, d_dw, has_dbias ? d_db : NULL, d_dout, d_inp, d_w, has_gelu ? d_pre : NULL,
                            d_scratch, BT, C, OC, 0);
            to_host(run ? dinp2 : dinp, d_dinp, nin);
            to_host(run ? dw2 : dw, d_dw, nw);
            to_host(run ? db2 : db, d_db, OC);
        }
        if (memcmp(dinp, dinp2, nin * sizeof(floatX)) || memcmp(dw, dw2, nw * sizeof(floatX)) ||
            memcmp(db, db2, OC * sizeof(floatX))) {
            fprintf(stderr, "error: %s BT=%d C=%d OC=%d: two runs gave different bits\n", what, BT, C, OC);
            bad = 1;
            break;
        }
        double worst_i = 0, worst_w = 0, worst_b = 0;
        // dinp (BT,C) = dout (BT,OC) @ w (OC,C), times gelu'(pre) (fp32 formula)
        for (int r = 0; r < BT; r++)
            for (int c = 0; c < C; c++) {
                double s = 0, a = 0;
                for (int o = 0; o < OC; o++) {
                    double p = (double)doutf[(size_t)r * OC + o] * wf[(size_t)o * C + c];
                    s += p;
                    a += fabs(p);
                }
                double e = 2.0 * gamma_u(OC) * a;
                if (has_gelu) {
                    double g = gelu_grad_tanh(pref[(size_t)r * C + c]);
                    e = fabs(g) * (e + 0.5 * bf16_ulp((float)(fabs(s) + e))) + GELU_GRAD_TOL * (fabs(s) + e);
                    s *= g;
                }
                want[(size_t)r * C + c] = s;
                err[(size_t)r * C + c] = e;
            }
        bad |= compare(what, "dinp", BT, C, OC, dinp, want, err, BT, C, &worst_i);
        // dweight (OC,C) = old + d^T @ inp
        for (int o = 0; o < OC && !bad; o++)
            for (int c = 0; c < C; c++) {
                double s = dw0f[(size_t)o * C + c], a = fabs(s);
                for (int r = 0; r < BT; r++) {
                    double p = (double)doutf[(size_t)r * OC + o] * inpf[(size_t)r * C + c];
                    s += p;
                    a += fabs(p);
                }
                // cuBLASLt rounds the product sum (s - old) to bf16 before it adds
                // the old value (see the top): half a bf16 ulp of that sum more
                double e = 2.0 * gamma_u(BT + 1) * a;
                want[(size_t)o * C + c] = s;
                err[(size_t)o * C + c] = e + 0.5 * bf16_ulp((float)(fabs(s - dw0f[(size_t)o * C + c]) + e));
            }
        if (!bad) bad |= compare(what, "dweight", BT, C, OC, dw, want, err, OC, C, &worst_w);
        // dbias (OC,) = old + column sums of d, untouched without dbias. Our
        // kernels sum in fp32 with the old value (gamma without the 2); the
        // BGRADB epilogue sums the column in fp32 in its own order and rounds
        // it to bf16 before it is added (half a bf16 ulp of the sum more)
        for (int o = 0; o < OC; o++) {
            double s = 0, a = 0;
            if (has_dbias)
                for (int r = 0; r < BT; r++) {
                    s += doutf[(size_t)r * OC + o];
                    a += fabs(doutf[(size_t)r * OC + o]);
                }
            want[o] = db0f[o] + s;
            if (!has_dbias) err[o] = 0.0;
            else if (matmul_ctx.dbias_apart) err[o] = gamma_u(BT + 1) * (a + fabs(db0f[o]));
            else {   // (and the fp32 addition of the rounded sum to the old value)
                double e = gamma_u(BT) * a;
                e += 0.5 * bf16_ulp((float)(fabs(s) + e));
                err[o] = e + gamma_u(1) * (fabs(db0f[o]) + fabs(s) + e);
            }
        }
        if (!bad) bad |= compare(what, "dbias", BT, C, OC, db, want, err, 1, OC, &worst_b);
        uint32_t h = hash_bits(dinp, nin, hash_bits(dw, nw, hash_bits(db, OC, 2166136261u)));
        if (!bad)
            printf("%s BT=%d C=%d OC=%d%s%s: matches the CPU reference, same bits twice (largest error / tolerance: "
                   "dinp %.2f, dweight %.2f, dbias %.2f) bits %08x\n",
                   what, BT, C, OC, has_dbias ? (matmul_ctx.dbias_apart ? " dbias apart" : " dbias") : "",
                   has_gelu ? (matmul_ctx.dgelu_apart ? " gelu' apart" : " gelu'") : "", worst_i, worst_w, worst_b, h);
    }
    matmul_ctx.dgelu_apart = 0;
    matmul_ctx.dbias_apart = 0;
    if (!bad) bad = check_f32_products(BT, C, OC, d_dout, d_inp, d_w, doutf, inpf, wf, dw0f);
    cudaCheck(cudaFree(d_inp));
    cudaCheck(cudaFree(d_w));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_pre));
    cudaCheck(cudaFree(d_dw));
    cudaCheck(cudaFree(d_db));
    cudaCheck(cudaFree(d_dinp));
    cudaCheck(cudaFree(d_scratch));
    free(inp); free(w); free(dout); free(pre); free(dw0); free(db0); free(dinp); free(dw); free(db);
    free(dinp2); free(dw2); free(db2); free(inpf); free(wf); free(doutf); free(pref); free(dw0f); free(db0f);
    free(want); free(err);
    return bad;
}

// ----------------------------------------------------------------------------
// bench

#ifndef CUDA_EMU
static void bench(void) {
    const int BT = 8 * 1024;   // B*T of GPT-2 124M at B=8, T=1024
    // (C, OC): qkv, fc (GELU after it), fc_proj (gelu' on its dinp), attention proj, classifier (no bias)
    const int shapes[5][2] = {{768, 2304}, {768, 3072}, {3072, 768}, {768, 768}, {768, 50304}};
    for (int s = 0; s < 5; s++) {
        int C = shapes[s][0], OC = shapes[s][1];
        int gelu = s == 1, dgelu = s == 2, classifier = s == 4;
        size_t nin = (size_t)BT * C, nw = (size_t)OC * C, nout = (size_t)BT * OC;
        floatX *inp, *w, *b, *out, *pre, *dinp, *dw, *db;
        float* scratch;
        cudaCheck(cudaMalloc(&inp, nin * sizeof(floatX)));
        cudaCheck(cudaMalloc(&w, nw * sizeof(floatX)));
        cudaCheck(cudaMalloc(&b, OC * sizeof(floatX)));
        cudaCheck(cudaMalloc(&out, nout * sizeof(floatX)));
        cudaCheck(cudaMalloc(&pre, (nout > nin ? nout : nin) * sizeof(floatX)));
        cudaCheck(cudaMemset(pre, 0, (nout > nin ? nout : nin) * sizeof(floatX)));
        cudaCheck(cudaMalloc(&dinp, nin * sizeof(floatX)));
        cudaCheck(cudaMalloc(&dw, nw * sizeof(floatX)));
        cudaCheck(cudaMalloc(&db, OC * sizeof(floatX)));
        cudaCheck(cudaMalloc(&scratch, matmul_backward_scratch_bytes(BT, OC)));
        cudaCheck(cudaMemset(inp, 0, nin * sizeof(floatX)));
        cudaCheck(cudaMemset(w, 0, nw * sizeof(floatX)));
        cudaCheck(cudaMemset(b, 0, OC * sizeof(floatX)));
        cudaCheck(cudaMemset(dw, 0, nw * sizeof(floatX)));
        cudaCheck(cudaMemset(db, 0, OC * sizeof(floatX)));
        floatX* bias = classifier ? NULL : b;
        floatX* pre_gelu = gelu ? pre : NULL;
        double flops = 2.0 * BT * C * OC;
        int reps = classifier ? 5 : 20;
        char name[128];
        float ms = bench_ms([&] { matmul_forward(out, pre_gelu, inp, w, bias, BT, C, OC, 0); }, reps * 5);
        snprintf(name, sizeof name, "matmul_forward_cublaslt_%dx%dx%d%s", BT, C, OC, gelu ? "_gelu" : "");
        bench_report(name, ms, 0, flops);
        ms = bench_ms([&] { matmul_forward_tiled(out, pre_gelu, inp, w, bias, BT, C, OC, 0); }, reps);
        snprintf(name, sizeof name, "matmul_forward_tiled_%dx%dx%d%s", BT, C, OC, gelu ? "_gelu" : "");
        bench_report(name, ms, 0, flops);
        ms = bench_ms([&] { matmul_forward_wmma(out, pre_gelu, inp, w, bias, BT, C, OC, 0); }, reps);
        snprintf(name, sizeof name, "matmul_forward_wmma_%dx%dx%d%s", BT, C, OC, gelu ? "_gelu" : "");
        bench_report(name, ms, 0, flops);
        // dinp and dweight: 2 GEMMs (the dbias and gelu' passes are not counted as flops)
        auto backward = [&] { matmul_backward(dinp, dw, classifier ? NULL : db, out, inp, w, dgelu ? pre : NULL,
                                              scratch, BT, C, OC, 0); };
        ms = bench_ms(backward, reps * 5);
        snprintf(name, sizeof name, "matmul_backward_cublaslt_%dx%dx%d%s", BT, C, OC, dgelu ? "_dgelu" : "");
        bench_report(name, ms, 0, 2.0 * flops);
        if (!classifier) {   // the same with dbias by our kernels, a pass over dout of their own, side by side
            matmul_ctx.dbias_apart = 1;
            float ms_apart = bench_ms(backward, reps * 5);
            matmul_ctx.dbias_apart = 0;
            snprintf(name, sizeof name, "matmul_backward_cublaslt_%dx%dx%d%s_dbias_apart", BT, C, OC,
                     dgelu ? "_dgelu" : "");
            bench_report(name, ms_apart, 0, 2.0 * flops);
            printf("bench matmul_backward %dx%dx%d: dbias in the epilogue %.2fx the speed of dbias apart\n", BT, C, OC,
                   ms_apart / ms);
        }
        // the forward and backward again with the algorithms autotune picks, side by side
        auto forward = [&] { matmul_forward(out, pre_gelu, inp, w, bias, BT, C, OC, 0); };
        float ms_fwd = bench_ms(forward, reps * 5);
        matmul_ctx.autotune = 1;
        float ms_fwd_tuned = bench_ms(forward, reps * 5), ms_bwd_tuned = bench_ms(backward, reps * 5);
        matmul_ctx.autotune = 0;
        printf("bench matmul %dx%dx%d: autotuned forward %.2fx, backward %.2fx the speed of the heuristic's first\n",
               BT, C, OC, ms_fwd / ms_fwd_tuned, ms / ms_bwd_tuned);
        cudaCheck(cudaFree(inp));
        cudaCheck(cudaFree(w));
        cudaCheck(cudaFree(b));
        cudaCheck(cudaFree(out));
        cudaCheck(cudaFree(pre));
        cudaCheck(cudaFree(dinp));
        cudaCheck(cudaFree(dw));
        cudaCheck(cudaFree(db));
        cudaCheck(cudaFree(scratch));
    }
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    const char* modes[] = {"check", "bench", "badc", "badoc", "badctiled", "badwmma", "noinit"};
    int known = 0;
    for (int i = 0; i < 7; i++) known |= !strcmp(mode, modes[i]);
    if (argc > 2 || !known) {
        fprintf(stderr, "error: usage: matmul [check|bench|badc|badoc|badctiled|badwmma|noinit]\n");
        return 2;
    }
    if (strcmp(mode, "check") && strcmp(mode, "bench")) {   // a bad call: must exit 1 with a message
        floatX* d;
        cudaCheck(cudaMalloc(&d, 1024 * sizeof(floatX)));
        if (!strcmp(mode, "noinit")) matmul_forward(d, NULL, d, d, NULL, 4, 8, 8, 0);
        matmul_init();
        if (!strcmp(mode, "badc")) matmul_forward(d, NULL, d, d, NULL, 4, 12, 8, 0);
        if (!strcmp(mode, "badoc")) matmul_forward(d, NULL, d, d, NULL, 4, 8, 20, 0);
        if (!strcmp(mode, "badctiled")) matmul_forward_tiled(d, NULL, d, d, NULL, 4, 12, 8, 0);
        if (!strcmp(mode, "badwmma")) matmul_forward_wmma(d, NULL, d, d, NULL, 16, 24, 16, 0);
        return 0;
    }
    matmul_init();
    // (BT, C, OC); OC % 8 != 0 only for the tiled kernel
    int shapes[][3] = {{7, 8, 24}, {70, 96, 136}, {130, 40, 48}, {65, 72, 130}, {33, 16, 1},
#ifndef CUDA_EMU
                       {512, 768, 1024}, {2048, 256, 384},
#endif
    };
    int bad = 0;
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]) && !bad; i++) {
        int BT = shapes[i][0], C = shapes[i][1], OC = shapes[i][2];
        uint32_t seed = 1234u + 100u * i;
        if (OC % 8 == 0) {
            bad |= check_forward(0, BT, C, OC, seed);
            if (!bad) bad |= check_backward(BT, C, OC, seed + 10);
        }
        if (!bad) bad |= check_forward(1, BT, C, OC, seed + 20);
    }
#ifndef CUDA_EMU
    // cuBLASLt again with autotune (the emulation has no algorithms to
    // choose): whichever algorithm wins, the same bounds; and the timing runs,
    // which add into dweight, must leave it as it was. The five small shapes
    // only: under racecheck, timing 8 algorithms at the large ones takes minutes
    matmul_ctx.autotune = 1;
    for (int i = 0; i < 5 && !bad; i++)
        if (shapes[i][2] % 8 == 0) {
            bad |= check_forward(0, shapes[i][0], shapes[i][1], shapes[i][2], 5678u + 100u * i);
            if (!bad) bad |= check_backward(shapes[i][0], shapes[i][1], shapes[i][2], 5688u + 100u * i);
        }
    matmul_ctx.autotune = 0;
#endif
    // the wmma kernel: multiples of 16, with partial 64x64 block tiles and
    // 32x32 warp quarters that lie partly or wholly outside (BT, OC)
    int wmma_shapes[][3] = {{16, 16, 16}, {96, 48, 144}, {64, 32, 80},
#ifndef CUDA_EMU
                            {512, 768, 1024},
#endif
    };
    for (int i = 0; i < (int)(sizeof wmma_shapes / sizeof wmma_shapes[0]) && !bad; i++)
        bad |= check_forward(2, wmma_shapes[i][0], wmma_shapes[i][1], wmma_shapes[i][2], 4321u + 100u * i);
#ifndef CUDA_EMU
    if (!bad && !strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    matmul_destroy();
    return bad;
}
