// dev/cuda/attention.cu: checks and benchmarks the causal self-attention
// kernels of llmc/attention.cuh (simple, fused), llmc/attention_mma.cuh
// (tensor cores: mma.sync with the tiles in registers) and
// llmc/attention_wgmma.cuh (the same on Hopper's wgmma), and with
// -DUSE_CUDNN cuDNN's (llmc/attention_cudnn.cuh),
// against a CPU reference; exits 1 on any mismatch.
//
//   attention          check, for (B,T,NH,HS) in (1,1,1,64) (one row),
//                      (2,13,2,64) (a partial tile, two batches and heads),
//                      (1,64,2,64) (one whole tile), (1,70,1,64) (two tiles,
//                      the second ragged), (1,33,2,32) (HS = 32) and
//                      (1,150,1,32) (three tiles, the last ragged), (1,256,1,64)
//                      (four whole tiles): every version, forward then backward
//                      (the fused, mma and cuDNN backward are fed their own
//                      forward's out and lse; the wgmma kernels run on
//                      compute capability 9.0 and under the emulation, where
//                      their bits must be the mma kernels', and those of
//                      dq's whole-tile variant the halves'; there too the
//                      mma backward with dq recomputing dS must give the
//                      bits of the one reading dkdv's stored dS). Each line
//                      ends with the FNV-1a hash of the output bits, which
//                      tests/kernels/attention.sh compares across thread
//                      orders (the kernels promise bitwise reproducibility;
//                      the hashes differ between the emulation and a GPU,
//                      whose compiler fuses multiply-adds and whose ex2.approx
//                      differs from the host's exp2f in the last bits, but
//                      not between runs).
//   attention bench    also checks (1,1024,2,64) and (2,257,3,64), then times
//                      each at B=8, T=1024, NH=12, HS=64 and prints
//                      TFLOP/s and the ratios side by side (real GPU only;
//                      under the emulation `bench` runs check's shapes
//                      only). FLOPs counted: forward 4 B NH T^2 HS / 2 (two matmuls of 2 T^2 HS
//                      each, half of them under the causal mask), backward
//                      2.5 times that (five matmuls: dV, dP, dQ, dK, and the
//                      recomputed scores in the fused and mma versions; the
//                      simple one does four, and the mma one with dq
//                      recomputing dS seven: S and dP again), all counted
//                      alike.
//   attention badnh    attention_forward_simple with C % NH != 0: must fail
//   attention badhs    attention_forward with HS = 48: must fail
//   attention badhsb   attention_backward with HS = 48: must fail
//   attention dsmisaligned
//                      attention_backward_mma with dS's scratch 2 bytes off
//                      16-byte alignment: must fail
//   attention dstoolarge
//                      attention_backward_mma with dS's scratch at B = 7711,
//                      T = 1024, NH = 1 (136 pairs of 4096 values each: over
//                      2^32 values; 7710 is the last that fits, checked in
//                      check): must fail
//
// Inputs: q, k in [-2, 2) (scores of std about 1.3 at HS = 64, so softmax
// rows are neither flat nor one-hot), v and dout in [-1, 1), all bf16. The
// reference takes the same bf16 values and computes everything in double.
//
// Tolerances (u = 2^-24, gamma(k) = k u / (1 - k u), the bound on k fp32
// roundings in a row; every bound is multiplied by TOL_MARGIN = 2):
// - scores: the fp32 dot product of HS terms (plus the scale, log2(e) and
//   the subtraction of the running max) is off by at most
//   E_s = 2 gamma(HS + 8) Sabs_t in natural-log units, where Sabs_t =
//   max_t2 sum_d |q_td k_t2d| / sqrt(HS) (the dot product's absolute sum);
// - probabilities: P = exp(s - max) / sum (or exp(s - lse) recomputed in
//   the fused backward) has relative error e_P(t) = 2 E_s + gamma(2T + 16)
//   + 2^-20 (the sum over <= T keys, the online rescalings, exp/log ulps);
// - out (B,T,C): one bf16 ulp of the reference rounded to bf16 plus
//   e_P(t) sum_t2 P |v_t2d|: each term of the weighted sum is off by e_P
//   relative. Nothing is rounded to bf16 before out in the simple version (P
//   in fp32 in global memory) and the fused one (in registers); the mma
//   (and cuDNN's) version rounds P to bf16 for its tensor-core matmul P V, which adds
//   e_R = 2^-8 (bf16's unit roundoff) to e_P here;
// - lse (fused only): E_s + gamma(2T + 16) + 2^-20 (1 + |lse|);
// - dqkv (B,T,3C): one bf16 ulp plus e_g times the absolute sum of the
//   terms of each gradient, with e_g = 2 max_t e_P(t) + gamma(2T + HS + 16)
//   (P, then the dot products dP of HS terms and the sums over <= T rows):
//   dv_t2d: sum_t P |dout_td|; dq_td: sum_t2 P (|dP|+|D|) |k_t2d| / sqrt(HS)
//   and dk likewise with |q_td|, where |dP|_tt2 = sum_d |dout_td v_t2d| and
//   |D|_t = sum_t2 P |dP|_tt2; plus, for the fused backward only, the effect
//   of the bf16 out it is given in D = rowsum(dout * out): with errD_t =
//   sum_d |dout_td| |out_td - out_ref_td| (out as the fused forward gave it,
//   rounded to bf16), dq_td gets sum_t2 P errD_t |k_t2d| / sqrt(HS) more and
//   dk likewise (dv does not use D); for the mma (and cuDNN's) version e_g gets e_R more:
//   P (for dv) and dS (for dq, dk) are rounded to bf16 before their matmuls,
//   a relative error of at most 2^-8 in each term of those sums.
// These bounds are relative to each value's own condition (the absolute sum
// of its terms), about 1e-4 of it at these sizes; the errors they must catch
// are of order one: attending t2 == t + 1 or dropping t2 == t changes a row's
// probabilities by 1/(t+2) or more, a missing 1/sqrt(HS) multiplies the
// scores by 8, a missing tile barrier or lse leaves NaN (poisoned memory) or
// another tile's values in the sums.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/attention_wgmma.cuh"
#include "common.cuh"

#define QK_SPREAD 2.0f      // q, k in [-QK_SPREAD, QK_SPREAD)
#define V_SPREAD 1.0f       // v and dout in [-V_SPREAD, V_SPREAD)
#define TOL_MARGIN 2.0      // factor on every error bound (see the top of the file)
#define BF16_ROUNDOFF 0.00390625   // e_R = 2^-8: P or dS rounded to bf16 (tensor-core versions)

// built with -DUSE_CUDNN (make cudnn: build/cudnn/attention), cuDNN's fused
// attention (llmc/attention_cudnn.cuh) is a fifth version: P and dS rounded
// to bf16 for its matmuls as in ours on the tensor cores, so e_R applies to it too
#ifdef USE_CUDNN
#include "../../llmc/attention_cudnn.cuh"
enum { SIMPLE, FUSED, MMA, MMA_RECOMPUTE, MMA_STAGED, WGMMA, WGMMA_RECOMPUTE, WGMMA_WHOLE, CUDNN, N_VERSIONS };
#else
enum { SIMPLE, FUSED, MMA, MMA_RECOMPUTE, MMA_STAGED, WGMMA, WGMMA_RECOMPUTE, WGMMA_WHOLE, N_VERSIONS };
#endif
#define ROUNDS_P_TO_BF16(version) ((version) >= MMA)
// MMA: the trainer's, dq reading the dS dkdv stored; MMA_RECOMPUTE: dq
// recomputing dS instead (no scratch), the same bits under the emulation
// (where S^T = K Q^T and S = Q K^T add the same products in the same
// order); MMA_STAGED: dkdv's K and V fragments read from shared memory as
// needed instead of held (attention_backward_mma<false>), which must give
// MMA's bits. Their forward is MMA's.
// WGMMA: llmc/attention_wgmma.cuh, the same kernels on Hopper's wgmma
// (skipped on other GPUs; dq from the stored dS, as MMA's);
// WGMMA_RECOMPUTE: its backward with dq recomputing dS on wgmma, in halves
// of key tiles, WGMMA_WHOLE in whole ones (attention_backward_wgmma<64>),
// the same bits under the emulation; their forward is WGMMA's.
static const char* const forward_name[] = {"attention_forward_simple", "attention_forward", "attention_forward_mma",
                                           "attention_forward_mma", "attention_forward_mma", "attention_forward_wgmma",
                                           "attention_forward_wgmma", "attention_forward_wgmma",
                                           "attention_forward_cudnn"};
static const char* const backward_name[] = {"attention_backward_simple", "attention_backward",
                                            "attention_backward_mma", "attention_backward_mma_dq_recomputed",
                                            "attention_backward_mma_kv_staged",
                                            "attention_backward_wgmma", "attention_backward_wgmma_dq_recomputed",
                                            "attention_backward_wgmma_dq_recomputed_whole",
                                            "attention_backward_cudnn"};

// version's forward: out, and lse (all but the simple one; it uses scratch)
static void run_forward(int version, floatX* out, float* lse, float* scratch, const floatX* qkv, int B, int T, int C,
                        int NH) {
#ifdef USE_CUDNN
    if (version == CUDNN) {
        attention_forward_cudnn(out, lse, qkv, B, T, C, NH, 0);
        return;
    }
#endif
    if (version == WGMMA || version == WGMMA_RECOMPUTE || version == WGMMA_WHOLE)
        attention_forward_wgmma(out, lse, qkv, B, T, C, NH, 0);
    else if (version == MMA || version == MMA_RECOMPUTE || version == MMA_STAGED)
        attention_forward_mma(out, lse, qkv, B, T, C, NH, 0);
    else if (version == FUSED) attention_forward(out, lse, qkv, B, T, C, NH, 0);
    else attention_forward_simple(out, scratch, qkv, B, T, C, NH, 0);
}

// scratch_dS: attention_backward_mma_scratch_bytes(B, T, NH)
static void run_backward(int version, floatX* dqkv, float* D, float* scratch, floatX* scratch_dS, const floatX* dout,
                         const floatX* qkv, const floatX* out, const float* lse, int B, int T, int C, int NH) {
#ifdef USE_CUDNN
    if (version == CUDNN) {
        attention_backward_cudnn(dqkv, D, dout, qkv, out, lse, B, T, C, NH, 0);
        return;
    }
#endif
    if (version == MMA) attention_backward_mma(dqkv, D, scratch_dS, dout, qkv, out, lse, B, T, C, NH, 0);
    else if (version == MMA_RECOMPUTE) attention_backward_mma(dqkv, D, NULL, dout, qkv, out, lse, B, T, C, NH, 0);
    else if (version == WGMMA) attention_backward_wgmma(dqkv, D, scratch_dS, dout, qkv, out, lse, B, T, C, NH, 0);
    else if (version == WGMMA_RECOMPUTE) attention_backward_wgmma(dqkv, D, NULL, dout, qkv, out, lse, B, T, C, NH, 0);
    else if (version == WGMMA_WHOLE) attention_backward_wgmma<64>(dqkv, D, NULL, dout, qkv, out, lse, B, T, C, NH, 0);
    else if (version == MMA_STAGED)
        attention_backward_mma<false>(dqkv, D, scratch_dS, dout, qkv, out, lse, B, T, C, NH, 0);
    else if (version == FUSED) attention_backward(dqkv, D, dout, qkv, out, lse, B, T, C, NH, 0);
    else attention_backward_simple(dqkv, scratch, dout, qkv, B, T, C, NH, 0);
}

typedef struct {
    int B, T, NH, HS;
} Shape;

// ----------------------------------------------------------------------------
// CPU reference (double)

// out (B,T,C), its magnitude sum_t2 P |v_t2d| (for the tolerance), lse and
// its tolerance (B,NH,T), P (B,NH,T,T) and e_P (B,NH,T) from qkv (B,T,3C) as
// floats; see the top of the file
static void reference_forward(Shape s, const float* qkv, double* out, double* out_mag, double* lse, double* lse_tol,
                              double* P, double* eP) {
    int B = s.B, T = s.T, NH = s.NH, HS = s.HS, C = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    double* sc = (double*)xmalloc(T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float* q = qkv + ((size_t)b * T + t) * 3 * C + h * HS;
                double m = -INFINITY, sabs = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * HS;
                    double d = 0, a = 0;
                    for (int i = 0; i < HS; i++) {
                        d += (double)q[i] * k[i];
                        a += fabs((double)q[i] * k[i]);
                    }
                    sc[t2] = d * scale;
                    if (sc[t2] > m) m = sc[t2];
                    if (a * scale > sabs) sabs = a * scale;
                }
                double l = 0;
                for (int t2 = 0; t2 <= t; t2++) l += exp(sc[t2] - m);
                size_t row = ((size_t)b * NH + h) * T + t;
                double* p = P + row * T;
                for (int t2 = 0; t2 < T; t2++) p[t2] = t2 <= t ? exp(sc[t2] - m) / l : 0.0;
                double Es = 2 * gamma_u(HS + 8) * sabs;
                eP[row] = 2 * Es + gamma_u(2.0 * T + 16) + ldexp(1.0, -20);
                lse[row] = m + log(l);
                lse_tol[row] = TOL_MARGIN * (Es + gamma_u(2.0 * T + 16) + ldexp(1.0, -20) * (1 + fabs(lse[row])));
                for (int i = 0; i < HS; i++) {
                    double o = 0, mag = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        double v = qkv[((size_t)b * T + t2) * 3 * C + 2 * C + h * HS + i];
                        o += p[t2] * v;
                        mag += p[t2] * fabs(v);
                    }
                    size_t idx = ((size_t)b * T + t) * C + h * HS + i;
                    out[idx] = o;
                    out_mag[idx] = mag;
                }
            }
    free(sc);
}

// dqkv (B,T,3C) and its tolerance from qkv (B,T,3C), dout (B,T,C), P and e_P
// of reference_forward, errD (B,NH,T) (0 for the simple version) and e_R (0,
// or 2^-8 for the tensor-core versions); see the top of the file
static void reference_backward(Shape s, const float* qkv, const float* dout, const double* P, const double* eP,
                               const double* errD, double eR, double* dqkv, double* tol) {
    int B = s.B, T = s.T, NH = s.NH, HS = s.HS, C = NH * HS;
    double scale = 1.0 / sqrt((double)HS);
    size_t n = (size_t)B * T * 3 * C;
    double* mag = (double*)xmalloc(n * sizeof(double));    // the e_g part
    double* magD = (double*)xmalloc(n * sizeof(double));   // the errD part
    double *dP = (double*)xmalloc(T * sizeof(double)), *dPabs = (double*)xmalloc(T * sizeof(double));
    for (size_t i = 0; i < n; i++) dqkv[i] = mag[i] = magD[i] = 0;
    double eg = 0;
    for (size_t r = 0; r < (size_t)B * NH * T; r++)
        if (eP[r] > eg) eg = eP[r];
    eg = 2 * eg + gamma_u(2.0 * T + HS + 16) + eR;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                size_t row = ((size_t)b * NH + h) * T + t;
                const double* p = P + row * T;
                const float* g = dout + ((size_t)b * T + t) * C + h * HS;
                const float* q = qkv + ((size_t)b * T + t) * 3 * C + h * HS;
                double D = 0, Dabs = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * HS;
                    dP[t2] = dPabs[t2] = 0;
                    for (int i = 0; i < HS; i++) {
                        dP[t2] += (double)g[i] * v[i];
                        dPabs[t2] += fabs((double)g[i] * v[i]);
                    }
                    D += p[t2] * dP[t2];
                    Dabs += p[t2] * dPabs[t2];
                }
                size_t dq_row = ((size_t)b * T + t) * 3 * C + h * HS;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * HS;
                    size_t dk_row = ((size_t)b * T + t2) * 3 * C + C + h * HS, dv_row = dk_row + C;
                    double dS = p[t2] * (dP[t2] - D), w = p[t2] * (dPabs[t2] + Dabs), wD = p[t2] * errD[row];
                    for (int i = 0; i < HS; i++) {
                        dqkv[dq_row + i] += scale * dS * k[i];
                        mag[dq_row + i] += scale * w * fabs(k[i]);
                        magD[dq_row + i] += scale * wD * fabs(k[i]);
                        dqkv[dk_row + i] += scale * dS * q[i];
                        mag[dk_row + i] += scale * w * fabs(q[i]);
                        magD[dk_row + i] += scale * wD * fabs(q[i]);
                        dqkv[dv_row + i] += p[t2] * g[i];
                        mag[dv_row + i] += p[t2] * fabs(g[i]);
                    }
                }
            }
    for (size_t i = 0; i < n; i++)
        tol[i] = bf16_ulp(__bfloat162float(__float2bfloat16((float)dqkv[i]))) + TOL_MARGIN * (eg * mag[i] + magD[i]);
    free(mag); free(magD); free(dP); free(dPabs);
}

// ----------------------------------------------------------------------------
// comparison

static uint32_t fnv1a(const void* p, size_t n, uint32_t h) {
    const unsigned char* c = (const unsigned char*)p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 16777619u;
    return h;
}

// largest |got - want| / tol over n values, or -1 (after an error line) at
// the first value outside its tolerance; row_len names the index as
// [row][col] (e.g. (B*T, 3C))
static double compare(const char* what, Shape s, const char* name, const floatX* got_bf16, const float* got_f32,
                      const double* want, const double* tol, size_t n, size_t row_len) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got_bf16 ? (double)__bfloat162float(got_bf16[i]) : (double)got_f32[i];
        double e = fabs(g - want[i]);
        if (!(e <= tol[i])) {
            fprintf(stderr,
                    "error: %s B=%d T=%d NH=%d HS=%d: %s[%zu][%zu] = %.7g, want %.7g (error %.3g > tolerance %.3g)\n",
                    what, s.B, s.T, s.NH, s.HS, name, i / row_len, i % row_len, g, want[i], e, tol[i]);
            return -1;
        }
        if (e / tol[i] > worst) worst = e / tol[i];
    }
    return worst;
}

// ----------------------------------------------------------------------------
// check, bench

// whether backward version v gave the bits of version w (else an error line)
static int same_bits(const uint32_t* bits, int v, int w, Shape s) {
    if (bits[v] == bits[w]) return 1;
    fprintf(stderr, "error: %s B=%d T=%d NH=%d HS=%d: bits %08x, not those of %s (%08x)\n", backward_name[v], s.B, s.T,
            s.NH, s.HS, bits[v], backward_name[w], bits[w]);
    return 0;
}

static int check(Shape s, uint32_t seed) {
    int B = s.B, T = s.T, NH = s.NH, HS = s.HS, C = NH * HS;
    size_t n_qkv = (size_t)B * T * 3 * C, n_out = (size_t)B * T * C, n_row = (size_t)B * NH * T;
    floatX* qkv = (floatX*)xmalloc(n_qkv * sizeof(floatX));
    floatX* dout = (floatX*)xmalloc(n_out * sizeof(floatX));
    float* qkvf = (float*)xmalloc(n_qkv * sizeof(float));
    float* doutf = (float*)xmalloc(n_out * sizeof(float));
    // q and k wider than v: see the top of the file
    fill_bf16(qkv, qkvf, n_qkv, 0.0f, QK_SPREAD, seed);
    for (size_t i = 0; i < n_qkv; i++)
        if (i % (3 * C) >= 2 * (size_t)C) {
            qkv[i] = __float2bfloat16(qkvf[i] * (V_SPREAD / QK_SPREAD));
            qkvf[i] = __bfloat162float(qkv[i]);
        }
    fill_bf16(dout, doutf, n_out, 0.0f, V_SPREAD, seed + 1);

    double* out = (double*)xmalloc(n_out * sizeof(double));
    double* out_mag = (double*)xmalloc(n_out * sizeof(double));
    double* out_tol = (double*)xmalloc(n_out * sizeof(double));
    double* lse = (double*)xmalloc(n_row * sizeof(double));
    double* lse_tol = (double*)xmalloc(n_row * sizeof(double));
    double* P = (double*)xmalloc(n_row * T * sizeof(double));
    double* eP = (double*)xmalloc(n_row * sizeof(double));
    double* errD = (double*)xmalloc(n_row * sizeof(double));
    double* dqkv = (double*)xmalloc(n_qkv * sizeof(double));
    double* dqkv_tol = (double*)xmalloc(n_qkv * sizeof(double));
    reference_forward(s, qkvf, out, out_mag, lse, lse_tol, P, eP);

    floatX *d_qkv = NULL, *d_dout = NULL, *d_out = NULL, *d_dqkv = NULL, *d_dS = NULL;
    float *d_scratch = NULL, *d_lse = NULL, *d_D = NULL;   // set by cudaMalloc (NULL: for -Wmaybe-uninitialized)
    cudaCheck(cudaMalloc(&d_qkv, n_qkv * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dS, attention_backward_mma_scratch_bytes(B, T, NH)));
    cudaCheck(cudaMalloc(&d_dout, n_out * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, n_out * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dqkv, n_qkv * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_scratch, attention_simple_scratch_bytes(B, T, NH)));
    cudaCheck(cudaMalloc(&d_lse, n_row * sizeof(float)));
    cudaCheck(cudaMalloc(&d_D, n_row * sizeof(float)));
    cudaCheck(cudaMemcpy(d_qkv, qkv, n_qkv * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dout, dout, n_out * sizeof(floatX), cudaMemcpyHostToDevice));
    floatX* got = (floatX*)xmalloc(n_qkv * sizeof(floatX));
    float* got_lse = (float*)xmalloc(n_row * sizeof(float));
    int bad = 0;
    uint32_t bwd_bits[N_VERSIONS] = {0};   // each version's backward hash

#ifdef CUDA_EMU
    uint32_t fwd_bits[N_VERSIONS] = {0};   // each version's forward hash (on a device only bwd_bits are compared)
#endif
    for (int version = 0; version < N_VERSIONS; version++) {
        const char *fwd = forward_name[version], *bwd = backward_name[version];
        if ((version == WGMMA || version == WGMMA_RECOMPUTE || version == WGMMA_WHOLE) &&
            !attention_wgmma_supported()) {
            printf("%s B=%d T=%d NH=%d HS=%d: skipped (needs compute capability 9.0, sm_90a code)\n", fwd, B, T, NH, HS);
            continue;
        }
        const int fused = version != SIMPLE;   // writes lse; its backward recomputes P from it
        const double eR = ROUNDS_P_TO_BF16(version) ? BF16_ROUNDOFF : 0.0;
        for (size_t i = 0; i < n_out; i++) {
            int t = (int)(i / C % T), hh = (int)(i % C / HS), b = (int)(i / C / T);
            double eP_row = eP[((size_t)b * NH + hh) * T + t] + eR;
            out_tol[i] = bf16_ulp(__bfloat162float(__float2bfloat16((float)out[i]))) + TOL_MARGIN * eP_row * out_mag[i];
        }
        // poison the outputs again (cudaMalloc did it once): a value a kernel fails to write shows
        cudaCheck(cudaMemset(d_out, 0xFF, n_out * sizeof(floatX)));
        cudaCheck(cudaMemset(d_dqkv, 0xFF, n_qkv * sizeof(floatX)));
        cudaCheck(cudaMemset(d_lse, 0xFF, n_row * sizeof(float)));
        cudaCheck(cudaMemset(d_dS, 0xFF, attention_backward_mma_scratch_bytes(B, T, NH)));   // (each writes its own)
        run_forward(version, d_out, d_lse, d_scratch, d_qkv, B, T, C, NH);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(got, d_out, n_out * sizeof(floatX), cudaMemcpyDeviceToHost));
        double w_out = compare(fwd, s, "out", got, NULL, out, out_tol, n_out, C), w_lse = 0;
        uint32_t h = fnv1a(got, n_out * sizeof(floatX), 2166136261u);
        if (w_out >= 0 && fused) {
            cudaCheck(cudaMemcpy(got_lse, d_lse, n_row * sizeof(float), cudaMemcpyDeviceToHost));
            w_lse = compare(fwd, s, "lse", NULL, got_lse, lse, lse_tol, n_row, T);
            h = fnv1a(got_lse, n_row * sizeof(float), h);
        }
        if (w_out < 0 || w_lse < 0) {
            bad = 1;
            continue;
        }
#ifdef CUDA_EMU
        fwd_bits[version] = h;
#endif
        printf("%s B=%d T=%d NH=%d HS=%d: matches the CPU reference (largest error / tolerance: out %.3f", fwd, B,
               T, NH, HS, w_out);
        if (fused) printf(", lse %.3f", w_lse);
        printf("), bits %08x\n", h);

        // errD: what the bf16 out given to the fused backward does to D (see the top of the file)
        for (size_t r = 0; r < n_row; r++) {
            int t = (int)(r % T), hh = (int)(r / T % NH), b = (int)(r / T / NH);
            errD[r] = 0;
            for (int i = 0; fused && i < HS; i++) {
                size_t idx = ((size_t)b * T + t) * C + hh * HS + i;
                errD[r] += fabs(doutf[idx]) * fabs((double)__bfloat162float(got[idx]) - out[idx]);
            }
        }
        reference_backward(s, qkvf, doutf, P, eP, errD, eR, dqkv, dqkv_tol);
        run_backward(version, d_dqkv, d_D, d_scratch, d_dS, d_dout, d_qkv, d_out, d_lse, B, T, C, NH);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(got, d_dqkv, n_qkv * sizeof(floatX), cudaMemcpyDeviceToHost));
        double w = compare(bwd, s, "dqkv", got, NULL, dqkv, dqkv_tol, n_qkv, 3 * C);
        if (w < 0) {
            bad = 1;
            continue;
        }
        bwd_bits[version] = fnv1a(got, n_qkv * sizeof(floatX), 2166136261u);
        printf("%s B=%d T=%d NH=%d HS=%d: matches the CPU reference (largest error / tolerance: dqkv %.3f), "
               "bits %08x\n", bwd, B, T, NH, HS, w, bwd_bits[version]);
    }
#ifdef CUDA_EMU
    // the emulation sums wgmma's products as mma.sync's (k in order, fp32), so
    // there the wgmma kernels compute exactly what the mma ones do
    if (!bad && (fwd_bits[WGMMA] != fwd_bits[MMA] || bwd_bits[WGMMA] != bwd_bits[MMA])) {
        fprintf(stderr, "error: %s, %s B=%d T=%d NH=%d HS=%d: bits %08x, %08x, not those of the mma kernels (%08x, "
                "%08x)\n", forward_name[WGMMA], backward_name[WGMMA], B, T, NH, HS, fwd_bits[WGMMA], bwd_bits[WGMMA],
                fwd_bits[MMA], bwd_bits[MMA]);
        bad = 1;
    }
    // S^T = K Q^T adds the same products as S = Q K^T (so dkdv's stored dS
    // is what dq would recompute), and dq's whole key tiles the same products
    // in the same order as its halves
    bad = bad || !same_bits(bwd_bits, MMA_RECOMPUTE, MMA, s) || !same_bits(bwd_bits, WGMMA_RECOMPUTE, WGMMA, s) ||
          !same_bits(bwd_bits, WGMMA_WHOLE, WGMMA_RECOMPUTE, s);
#endif
    // where dkdv's fragments come from changes no arithmetic
    bad = bad || !same_bits(bwd_bits, MMA_STAGED, MMA, s);

    cudaCheck(cudaFree(d_qkv));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_dqkv));
    cudaCheck(cudaFree(d_dS));
    cudaCheck(cudaFree(d_scratch));
    cudaCheck(cudaFree(d_lse));
    cudaCheck(cudaFree(d_D));
    free(qkv); free(dout); free(qkvf); free(doutf); free(out); free(out_mag); free(out_tol); free(lse); free(lse_tol);
    free(P); free(eP); free(errD); free(dqkv); free(dqkv_tol); free(got); free(got_lse);
    return bad;
}

#ifndef CUDA_EMU
static void bench(void) {
    const int B = 8, T = 1024, NH = 12, HS = 64, C = NH * HS;   // GPT-2 124M
    size_t n_qkv = (size_t)B * T * 3 * C, n_out = (size_t)B * T * C, n_row = (size_t)B * NH * T;
    floatX* h = (floatX*)xmalloc(n_qkv * sizeof(floatX));
    floatX *d_qkv, *d_dout, *d_out, *d_dqkv, *d_dS;
    float *d_scratch, *d_lse, *d_D;
    cudaCheck(cudaMalloc(&d_qkv, n_qkv * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dS, attention_backward_mma_scratch_bytes(B, T, NH)));
    cudaCheck(cudaMalloc(&d_dout, n_out * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, n_out * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dqkv, n_qkv * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_scratch, attention_simple_scratch_bytes(B, T, NH)));
    cudaCheck(cudaMalloc(&d_lse, n_row * sizeof(float)));
    cudaCheck(cudaMalloc(&d_D, n_row * sizeof(float)));
    fill_bf16(h, NULL, n_qkv, 0.0f, 1.0f, 99u);
    cudaCheck(cudaMemcpy(d_qkv, h, n_qkv * sizeof(floatX), cudaMemcpyHostToDevice));
    fill_bf16(h, NULL, n_out, 0.0f, 1.0f, 98u);
    cudaCheck(cudaMemcpy(d_dout, h, n_out * sizeof(floatX), cudaMemcpyHostToDevice));
    double fwd_flops = 4.0 * B * NH * (double)T * T * HS / 2, bwd_flops = 2.5 * fwd_flops;
    float ms;
    ms = bench_ms([&] { attention_forward_simple(d_out, d_scratch, d_qkv, B, T, C, NH, 0); }, 5);
    bench_report("attention_forward_simple", ms, 0, fwd_flops);
    ms = bench_ms([&] { attention_backward_simple(d_dqkv, d_scratch, d_dout, d_qkv, B, T, C, NH, 0); }, 5);
    bench_report("attention_backward_simple", ms, 0, bwd_flops);
    float fwd = bench_ms([&] { attention_forward(d_out, d_lse, d_qkv, B, T, C, NH, 0); }, 20);
    bench_report("attention_forward", fwd, 0, fwd_flops);
    float bwd = bench_ms([&] { attention_backward(d_dqkv, d_D, d_dout, d_qkv, d_out, d_lse, B, T, C, NH, 0); }, 20);
    bench_report("attention_backward", bwd, 0, bwd_flops);
    float fwd_m = bench_ms([&] { attention_forward_mma(d_out, d_lse, d_qkv, B, T, C, NH, 0); }, 20);
    bench_report("attention_forward_mma", fwd_m, 0, fwd_flops);
    float bwd_m = bench_ms([&] { attention_backward_mma(d_dqkv, d_D, d_dS, d_dout, d_qkv, d_out, d_lse, B, T, C, NH,
                                                        0); }, 20);
    bench_report("attention_backward_mma", bwd_m, 0, bwd_flops);
    float bwd_r = bench_ms([&] { attention_backward_mma(d_dqkv, d_D, NULL, d_dout, d_qkv, d_out, d_lse, B, T, C, NH,
                                                        0); }, 20);
    bench_report("attention_backward_mma_dq_recomputed", bwd_r, 0, bwd_flops);
    float bwd_s = bench_ms([&] { attention_backward_mma<false>(d_dqkv, d_D, d_dS, d_dout, d_qkv, d_out, d_lse, B, T, C,
                                                               NH, 0); }, 20);
    bench_report("attention_backward_mma_kv_staged", bwd_s, 0, bwd_flops);
    // the tensor-core kernels against the CUDA-core fused ones, and the mma variants, timed side by side above
    printf("bench attention mma vs fused: forward %.2fx, backward %.2fx faster\n", fwd / fwd_m, bwd / bwd_m);
    printf("bench attention mma dq from dkdv's stored dS vs recomputed: backward %.2fx faster\n", bwd_r / bwd_m);
    printf("bench attention mma dkdv K,V staged (4 blocks per SM on Hopper) vs held (3): backward %.2fx faster\n",
           bwd_m / bwd_s);
    float fwd_w = 0.0f, bwd_w = 0.0f;   // Hopper only
    if (attention_wgmma_supported()) {
        fwd_w = bench_ms([&] { attention_forward_wgmma(d_out, d_lse, d_qkv, B, T, C, NH, 0); }, 20);
        bench_report("attention_forward_wgmma", fwd_w, 0, fwd_flops);
        bwd_w = bench_ms([&] { attention_backward_wgmma(d_dqkv, d_D, d_dS, d_dout, d_qkv, d_out, d_lse, B, T, C, NH,
                                                        0); }, 20);
        bench_report("attention_backward_wgmma", bwd_w, 0, bwd_flops);
        printf("bench attention wgmma vs mma: forward %.2fx, backward %.2fx faster\n", fwd_m / fwd_w, bwd_m / bwd_w);
        float bwd_wr = bench_ms([&] { attention_backward_wgmma(d_dqkv, d_D, NULL, d_dout, d_qkv, d_out, d_lse, B, T, C,
                                                               NH, 0); }, 20);
        bench_report("attention_backward_wgmma_dq_recomputed", bwd_wr, 0, bwd_flops);
        float bwd_ww = bench_ms([&] { attention_backward_wgmma<64>(d_dqkv, d_D, NULL, d_dout, d_qkv, d_out, d_lse, B, T,
                                                                   C, NH, 0); }, 20);
        bench_report("attention_backward_wgmma_dq_recomputed_whole", bwd_ww, 0, bwd_flops);
        printf("bench attention wgmma dq from dkdv's stored dS vs recomputed: backward %.2fx faster\n", bwd_wr / bwd_w);
        printf("bench attention wgmma dq recomputed, whole key tiles vs halves: backward %.2fx faster\n",
               bwd_wr / bwd_ww);
    }
#ifdef USE_CUDNN
    float fwd_c = bench_ms([&] { attention_forward_cudnn(d_out, d_lse, d_qkv, B, T, C, NH, 0); }, 20);
    bench_report("attention_forward_cudnn", fwd_c, 0, fwd_flops);
    float bwd_c = bench_ms([&] { attention_backward_cudnn(d_dqkv, d_D, d_dout, d_qkv, d_out, d_lse, B, T, C, NH, 0); },
                           20);
    bench_report("attention_backward_cudnn", bwd_c, 0, bwd_flops);
    printf("bench attention cudnn vs mma: forward %.2fx, backward %.2fx faster\n", fwd_m / fwd_c, bwd_m / bwd_c);
    if (fwd_w > 0.0f)
        printf("bench attention cudnn vs wgmma: forward %.2fx, backward %.2fx faster\n", fwd_w / fwd_c, bwd_w / bwd_c);
#endif
    cudaCheck(cudaFree(d_qkv));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_dqkv));
    cudaCheck(cudaFree(d_dS));
    cudaCheck(cudaFree(d_scratch));
    cudaCheck(cudaFree(d_lse));
    cudaCheck(cudaFree(d_D));
    free(h);
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    const char* const modes[] = {"check", "bench", "badnh", "badhs", "badhsb", "dsmisaligned", "dstoolarge"};
    int known = 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) known |= !strcmp(mode, modes[i]);
    if (argc > 2 || !known) {
        fprintf(stderr, "error: usage: attention [check|bench|badnh|badhs|badhsb|dsmisaligned|dstoolarge]\n");
        return 2;
    }
    if (strcmp(mode, "check") && strcmp(mode, "bench")) {
        floatX* d;
        float* f;
        cudaCheck(cudaMalloc(&d, 4 * 3 * 96 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&f, 4 * 96 * sizeof(float)));
        // each exits 1
        if (!strcmp(mode, "badnh")) attention_forward_simple(d, f, d, 1, 4, 100, 3, 0);
        else if (!strcmp(mode, "badhs")) attention_forward(d, f, d, 1, 4, 96, 2, 0);
        else if (!strcmp(mode, "badhsb")) attention_backward(d, f, d, d, d, f, 1, 4, 96, 2, 0);
        else if (!strcmp(mode, "dsmisaligned")) attention_backward_mma(d, f, d + 1, d, d, d, f, 1, 4, 128, 2, 0);
        else attention_backward_mma(d, f, d, d, d, d, f, 7711, 1024, 64, 1, 0);   // (refused before any launch)
        return 0;
    }
    // the largest dS scratch: 7710 * 136 * 4096 values <= 2^32 < 7711 * 136 * 4096
    if (!attention_backward_mma_scratch_bytes(7710, 1024, 1) || attention_backward_mma_scratch_bytes(7711, 1024, 1)) {
        fprintf(stderr, "error: attention_backward_mma_scratch_bytes: not 0 exactly past 2^32 values\n");
        return 1;
    }
    const Shape shapes[] = {{1, 1, 1, 64}, {2, 13, 2, 64}, {1, 64, 2, 64}, {1, 70, 1, 64}, {1, 33, 2, 32},
                            {1, 150, 1, 32}, {1, 256, 1, 64}};
    int bad = 0;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) bad |= check(shapes[i], 4321u + 17u * (uint32_t)i);
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) {
        const Shape big[] = {{1, 1024, 2, 64}, {2, 257, 3, 64}};
        for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) bad |= check(big[i], 777u + (uint32_t)i);
        if (bad) return 1;
        bench();
    }
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
