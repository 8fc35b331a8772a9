/*
 * train_gpt2.c: GPT-2 training on the CPU, in fp32, parallel with OpenMP.
 *
 * This file is the readable specification of the model: every layer's
 * forward and backward pass is written out below as a plain function, and the
 * GPU trainer's training steps are tested against this trainer's. It is also
 * a real trainer for small models: from token shards to checkpoints, with resume.
 *
 * Conventions: B batch, T sequence length, C channels, NH heads, hs = C/NH,
 * L layers, V vocab, Vp padded vocab, OC output channels. Tensor shapes are
 * given in comments as (B,T,C). Layer functions take outputs first, then
 * inputs, then weights, then sizes; gradients carry a d prefix. Backward
 * functions accumulate (+=) into parameter gradients.
 *
 * Build: make train_gpt2. Usage: ./train_gpt2 --help.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "llmc/args.h"
#include "llmc/checkpoint.h"
#include "llmc/comm.h"
#include "llmc/dataloader.h"
#include "llmc/gemm.h"
#include "llmc/gpt2.h"
#include "llmc/logger.h"
#include "llmc/rand.h"
#include "llmc/sampler.h"
#include "llmc/schedulers.h"
#include "llmc/tokenizer.h"
#include "llmc/utils.h"
#include "llmc/zero.h"

#define LAYERNORM_EPS 1e-5f
// ZeRO-3's classifier sums dinp over the vocabulary a chunk at a time: whole
// k blocks of gemm, so that the result is the unchunked one's bits
_Static_assert(ZERO_VOCAB_ROWS % GEMM_KC == 0, "vocabulary chunks must be whole gemm k blocks");
#define REDUCE_CHUNK 65536  // fixed-size partial sums keep reductions thread-count independent

// ----------------------------------------------------------------------------
// layers: forward and backward

// out (B,T,C) = wte[token] + wpe[position], at the positions whose token is
// one of the rows [v0, v1) that wte holds (all of them: 0, Vp); the others
// are left as they are (ZeRO-3 fills them chunk by chunk of the vocabulary).
void encoder_forward(float *out, const int *inp, const float *wte, int v0, int v1,
                     const float *wpe, int B, int T, int C) {
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            int id = inp[b * T + t];
            if (id < v0 || id >= v1) continue;
            float *o = out + ((size_t)b * T + t) * C;
            const float *tok = wte + (size_t)(id - v0) * C;
            const float *pos = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = tok[c] + pos[c];
        }
    }
}

// dwte (rows [v0, v1) of (Vp,C); NULL: none), dwpe (maxT,C; NULL: none) +=
// scatter of dout (B,T,C). Serial: several positions may hold the same
// token, and the order of the sums stays fixed (the same for every chunk).
void encoder_backward(float *dwte, int v0, int v1, float *dwpe, const float *dout, const int *inp,
                      int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            int id = inp[b * T + t];
            float *dtok = dwte && id >= v0 && id < v1 ? dwte + (size_t)(id - v0) * C : NULL;
            float *dpos = dwpe ? dwpe + (size_t)t * C : NULL;
            for (int c = 0; c < C && dtok; c++) dtok[c] += d[c];
            for (int c = 0; c < C && dpos; c++) dpos[c] += d[c];
        }
    }
}

// out (N,C) = (inp - mean) * rstd * weight + bias, per row; N = B*T.
// mean, rstd (N,) are kept for the backward pass.
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
        var /= C;
        float s = 1.0f / sqrtf(var + LAYERNORM_EPS);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

// dinp (N,C) += gradient through the normalisation; dweight, dbias (C,) +=.
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        const float *x = inp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        // the two means that the gradient of the normalisation subtracts
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            float dnorm = weight[c] * d[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * (x[c] - m) * s;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            dx[c] += (weight[c] * d[c] - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
    // parameter gradients: parallel over channels, each summed over rows in order
#pragma omp parallel for
    for (int c = 0; c < C; c++) {
        float dw = 0.0f, db = 0.0f;
        for (int n = 0; n < N; n++) {
            float dv = dout[(size_t)n * C + c];
            dw += (inp[(size_t)n * C + c] - mean[n]) * rstd[n] * dv;
            db += dv;
        }
        dweight[c] += dw;
        dbias[c] += db;
    }
}

// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC,); bias may be NULL
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int C, int OC) {
    if (bias) {
#pragma omp parallel for
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, OC * sizeof(float));
    }
    gemm(0, 1, N, OC, C, inp, C, weight, C, bias ? 1.0f : 0.0f, out, OC);
}

// dinp (N,C) = dout (N,OC) @ weight (OC,C)    (overwrites dinp)
// dweight (OC,C) += dout^T @ inp (N,C);  dbias (OC,) += column sums of dout
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    gemm(0, 0, N, C, OC, dout, OC, weight, C, 0.0f, dinp, C);
    gemm(1, 0, OC, C, N, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
#pragma omp parallel for
        for (int o = 0; o < OC; o++) {
            float sum = 0.0f;
            for (int n = 0; n < N; n++) sum += dout[(size_t)n * OC + o];
            dbias[o] += sum;
        }
    }
}

// The tied classifier (the head shares wte (Vp,C) with the encoder), over
// the vocabulary rows [v0, v1) that wte points at (all of them: 0, Vp;
// ZeRO-3 goes chunk by chunk): logits (N,Vp) columns v0..v1-1 = inp (N,C)
// @ wte^T. As matmul_forward without a bias; a chunk's columns are the
// whole product's bits (each element sums over C alone).
void classifier_forward(float *logits, const float *inp, const float *wte, int v0, int v1, int N,
                        int C, int Vp) {
    gemm(0, 1, N, v1 - v0, C, inp, C, wte, C, 0.0f, logits + v0, Vp);
}

// dinp (N,C) = dlogits (N,Vp) @ wte, its vocabulary rows [v0, v1) at a
// time: the chunk at v0 = 0 overwrites dinp, the next ones add to it. The
// chunks are whole k blocks of gemm (ZERO_VOCAB_ROWS), added in order, so
// the sum is the unchunked one's bit for bit.
void classifier_backward_dinp(float *dinp, const float *dlogits, const float *wte, int v0, int v1,
                              int N, int C, int Vp) {
    gemm(0, 0, N, C, v1 - v0, dlogits + v0, Vp, wte, C, v0 == 0 ? 0.0f : 1.0f, dinp, C);
}

// dwte rows [v0, v1) (dwte points at row v0) += dlogits columns [v0, v1)^T @ inp (N,C)
void classifier_backward_dwte(float *dwte, const float *dlogits, const float *inp, int v0, int v1,
                              int N, int C, int Vp) {
    gemm(1, 0, v1 - v0, C, N, dlogits + v0, Vp, inp, C, 1.0f, dwte, C);
}

// Causal self-attention. qkv (B,T,3C) holds q, k, v side by side, each split
// into NH heads of hs = C/NH channels. att (B,NH,T,T) keeps the softmax
// probabilities for backward (zero above the diagonal). out (B,T,C).
void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                float *a = att + (((size_t)b * NH + h) * T + t) * T;
                // scores against keys 0..t, and their max for a stable softmax
                float maxv = -INFINITY;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    float s = 0.0f;
                    for (int i = 0; i < hs; i++) s += q[i] * k[i];
                    a[t2] = s * scale;
                    if (a[t2] > maxv) maxv = a[t2];
                }
                float sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    a[t2] = expf(a[t2] - maxv);
                    sum += a[t2];
                }
                for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
                for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
                // weighted sum of the values
                float *o = out + ((size_t)b * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                    for (int i = 0; i < hs; i++) o[i] += a[t2] * v[i];
                }
            }
        }
    }
}

// dqkv (B,T,3C) = gradient of attention_forward (overwrites dqkv).
// Parallel over (b, h) only: within a head, every query position adds into
// the same key and value rows, and a fixed order keeps the sums reproducible.
// scratch: (B,NH,T)
void attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                        const float *att, int B, int T, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                float *dq = dqkv + ((size_t)b * T + t) * 3 * C + h * hs;
                float *dk = dqkv + ((size_t)b * T + t) * 3 * C + C + h * hs;
                float *dv = dqkv + ((size_t)b * T + t) * 3 * C + 2 * C + h * hs;
                for (int i = 0; i < hs; i++) dq[i] = dk[i] = dv[i] = 0.0f;
            }
            float *datt = scratch + ((size_t)b * NH + h) * T;  // (T,) one row at a time
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                const float *d = dout + ((size_t)b * T + t) * C + h * hs;
                const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                float *dq = dqkv + ((size_t)b * T + t) * 3 * C + h * hs;
                // through the weighted sum: datt = d . v, dv += att * d
                for (int t2 = 0; t2 <= t; t2++) {
                    const float *v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                    float *dv = dqkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
                    float s = 0.0f;
                    for (int i = 0; i < hs; i++) {
                        s += d[i] * v[i];
                        dv[i] += a[t2] * d[i];
                    }
                    datt[t2] = s;
                }
                // through the softmax: dpre = att * (datt - sum(att * datt))
                float dot = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) dot += a[t2] * datt[t2];
                // through the scores: dq += dpre k scale, dk += dpre q scale
                for (int t2 = 0; t2 <= t; t2++) {
                    float dpre = a[t2] * (datt[t2] - dot) * scale;
                    const float *k = qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    float *dk = dqkv + ((size_t)b * T + t2) * 3 * C + C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        dq[i] += dpre * k[i];
                        dk[i] += dpre * q[i];
                    }
                }
            }
        }
    }
}

// exp(x) for x <= 0 (a stable softmax's arguments), within 2 ulp of expf,
// and written so the compiler vectorises it: libm's expf is a scalar call,
// and the softmax runs it over 50257 logits per position. x = n ln2 + r with |r| <= ln2/2; exp(r) by its degree-7 Taylor series
// (truncation error < 8e-9 relative); 2^n put into the exponent bits.
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;  // keeps n + 127 >= 1 below (exp(-87) = 1.6e-38, near FLT_MIN)
    float t = x * 1.44269504f + 12582912.0f;  // adding 1.5*2^23 rounds to an integer
    float n = t - 12582912.0f;
    float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two: exact first product
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
              r * (1.0f / 720 + r * (1.0f / 5040)))))));
    n = n == n ? n : 0.0f;  // x NaN: p is NaN, and a NaN cast to int would be undefined
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2|u|) <= 1: vectorisable
// like exp_nonpositive, within ~1e-7 absolute of tanhf (the cancellation in
// 1 - e for tiny |u| costs relative, not absolute, accuracy; GELU adds the
// result to 1, so only absolute accuracy matters there).
static inline float tanh_fast(float u) {
    float e = exp_nonpositive(-2.0f * fabsf(u));
    float t = (1.0f - e) / (1.0f + e);
    return u < 0.0f ? -t : t;
}

#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)

// out (N,) = the tanh approximation of GELU, as GPT-2
void gelu_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanh_fast(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

// dinout (N,): gradient wrt gelu's output in, wrt its input out (in place)
void gelu_backward(float *dinout, const float *inp, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + 0.044715f * x * x * x);
        float th = tanh_fast(u);
        float sech2 = 1.0f - th * th;
        float local = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinout[i] *= local;
    }
}

// out (N,) = a + b
void residual_forward(float *out, const float *a, const float *b, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

// The largest of x[0..n), NaNs skipped. `v > m ? v : m` over an array of
// lanes stays scalar: the compiler may not turn it into a vector max (its
// NaN rule differs) unless told the math is finite. So the lanes are one
// GCC/clang vector and the select is spelled out with the comparison's mask.
// The vector is one register wide (__BIGGEST_ALIGNMENT__ bytes: 16 for SSE or
// NEON, 32 for AVX, 64 for AVX-512): gcc splits a wider one into scalars, not
// registers (3x slower on AVX2, 5x on SSE).
#define MAX_LANES (__BIGGEST_ALIGNMENT__ / 4)
typedef float f32_lanes __attribute__((vector_size(MAX_LANES * sizeof(float))));
typedef int32_t i32_lanes __attribute__((vector_size(MAX_LANES * sizeof(int32_t))));
static float max_of(const float *x, int n) {
    f32_lanes m;
    for (int j = 0; j < MAX_LANES; j++) m[j] = -INFINITY;
    int i = 0;
    for (; i + MAX_LANES <= n; i += MAX_LANES) {
        f32_lanes v;
        memcpy(&v, x + i, sizeof(v));
        i32_lanes greater = v > m;  // all ones where v[j] > m[j]
        m = (f32_lanes)((greater & (i32_lanes)v) | (~greater & (i32_lanes)m));
    }
    float maxv = -INFINITY;
    for (int j = 0; j < MAX_LANES; j++) maxv = m[j] > maxv ? m[j] : maxv;
    for (; i < n; i++) maxv = x[i] > maxv ? x[i] : maxv;
    return maxv;
}

#define SIMD_LANES 16  // independent partial sums: vectorisable, and a fixed order

// Softmax + cross-entropy over the V real entries of each logits row
// (B*T rows of Vp). losses (BT,) = logsumexp - logit[target]; lse (BT,) is
// kept so that backward needs one pass. Padded entries are never read.
void crossentropy_forward(float *losses, float *lse, const float *logits, const int *targets,
                          int BT, int V, int Vp) {
#pragma omp parallel for
    for (int n = 0; n < BT; n++) {
        const float *row = logits + (size_t)n * Vp;
        float maxv = max_of(row, V);
        float lane[SIMD_LANES];
        for (int j = 0; j < SIMD_LANES; j++) lane[j] = 0.0f;
        // the row is in L2 after max_of; meanwhile bring in the next one, so max_of
        // reads it from L2 too and its wait for memory overlaps this pass's exps
        const float *next = n + 1 < BT ? row + Vp : row;
        int i = 0;
        for (; i + SIMD_LANES <= V; i += SIMD_LANES) {
            __builtin_prefetch(next + i, 0, 2);
            for (int j = 0; j < SIMD_LANES; j++) lane[j] += exp_nonpositive(row[i + j] - maxv);
        }
        double sum = 0.0;
        for (int j = 0; j < SIMD_LANES; j++) sum += lane[j];
        for (int k = i; k < V; k++) sum += exp_nonpositive(row[k] - maxv);
        lse[n] = maxv + (float)log(sum);
        losses[n] = lse[n] - row[targets[n]];
    }
}

// logits (BT,Vp) become dlogits in place: (softmax - onehot(target)) * dloss,
// zero in the padding, where dloss is d(mean loss)/d(loss of one position).
void crossentropy_backward(float *logits, const float *lse, const int *targets, float dloss,
                           int BT, int V, int Vp) {
#pragma omp parallel for
    for (int n = 0; n < BT; n++) {
        float *row = logits + (size_t)n * Vp;
        float m = lse[n];
        for (int i = 0; i < V; i++) row[i] = exp_nonpositive(row[i] - m) * dloss;
        row[targets[n]] -= dloss;
        for (int i = V; i < Vp; i++) row[i] = 0.0f;
    }
}

// ----------------------------------------------------------------------------
// the model

// Activations of a forward pass, one buffer carved by this table; the
// per-layer ones are stacked (L,...). Sized for the largest (B,T) at build;
// a forward at a smaller (B,T) uses a prefix of each.
#define NUM_ACTIVATION_TENSORS 20
typedef struct {
    float *encoded;    // (B,T,C)
    float *ln1;        // (L,B,T,C)
    float *ln1_mean;   // (L,B,T)
    float *ln1_rstd;   // (L,B,T)
    float *qkv;        // (L,B,T,3C)
    float *atty;       // (L,B,T,C)
    float *att;        // (L,B,NH,T,T)
    float *attproj;    // (L,B,T,C)
    float *residual2;  // (L,B,T,C)
    float *ln2;        // (L,B,T,C)
    float *ln2_mean;   // (L,B,T)
    float *ln2_rstd;   // (L,B,T)
    float *fch;        // (L,B,T,4C)
    float *fch_gelu;   // (L,B,T,4C)
    float *fcproj;     // (L,B,T,C)
    float *residual3;  // (L,B,T,C)
    float *lnf;        // (B,T,C)
    float *lnf_mean;   // (B,T)
    float *lnf_rstd;   // (B,T)
    float *logits;     // (B,T,Vp); becomes dlogits during backward
} ActivationTensors;

// Gradients of activations: backward goes layer by layer, so one layer's
// worth of scratch is enough, reused for every layer.
#define NUM_GRAD_SCRATCH_TENSORS 6
typedef struct {
    float *dresidual;  // (B,T,C) gradient flowing down the residual stream
    float *dln;        // (B,T,C) wrt a layernorm output
    float *datty;      // (B,T,C) wrt the attention output
    float *dqkv;       // (B,T,3C)
    float *dfch;       // (B,T,4C) wrt the MLP hidden layer (before and after GELU)
    float *datt_row;   // (B,NH,T) attention backward scratch
} GradScratch;

// Data parallelism over ranks with ZeRO (llmc/zero.h explains the stages,
// units, buckets and vocabulary chunks). Bucket buffers come in three slots:
// slot 0 holds the embeddings' bucket, slots 1 and 2 the blocks' in turn
// (block l in slot 1 + l % 2), so one block's communication overlaps the
// next one's compute. At ZeRO-2/3 the token embedding wte moves apart, in
// vocabulary chunks through two chunk slots (chunk e in slot e % 2).
#define DP_SLOTS 3
#define DP_CHUNK_SLOTS 2
typedef struct {
    Comm *comm;
    Comm solo;          // the communicator of a single-process model
    int stage;          // ZeRO stage, 0..3
    ZeroLayout shards;  // this rank's slices (the state files' layout)
    ZeroLayout optim;   // the layout of the AdamW moments: shards, or (stage 0) the whole model
    float *grad_shard;  // stage >= 2: (shard_size,) this rank's reduced gradients
    float *param_shard; // stage 3: (shard_size,) this rank's parameters
    float *bucket_grads[DP_SLOTS];   // stage >= 2: a bucket's gradients, before reduction
    float *bucket_reduced[DP_SLOTS]; // stage >= 2: their reduced slices for this rank
    float *bucket_params[DP_SLOTS];  // stage 3: a bucket's gathered parameters
    int grads_of[DP_SLOTS];   // the bucket whose reduction a slot has in flight, or -1
    int params_of[DP_SLOTS];  // the bucket whose parameters a slot holds, or -1
    CommRequest grad_reqs[DP_SLOTS][BLOCK_TENSORS], param_reqs[DP_SLOTS][BLOCK_TENSORS];
    int params_pending[DP_SLOTS];  // gathers in flight into a slot
    int *counts, *displs;  // (num_units, world): the uneven collectives' slices, a row per unit
    float *chunk_params[DP_CHUNK_SLOTS];   // stage 3: (chunk_rows, C) a gathered vocabulary chunk of wte
    float *chunk_grads[DP_CHUNK_SLOTS];    // stage >= 2: (chunk_rows, C) its gradient, before reduction
    float *chunk_reduced[DP_CHUNK_SLOTS];  // stage >= 2: this rank's part of it, reduced
    int chunk_params_of[DP_CHUNK_SLOTS], chunk_grads_of[DP_CHUNK_SLOTS];  // the chunk a slot holds / reduces, or -1
    int chunk_gathering[DP_CHUNK_SLOTS];   // its gather is in flight
    CommRequest chunk_param_req[DP_CHUNK_SLOTS], chunk_grad_req[DP_CHUNK_SLOTS];
    int *chunk_counts;  // (DP_CHUNK_SLOTS, 3, world): a slot's gather counts, displs, reduction counts
} DataParallel;

typedef struct {
    GPT2Config config;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    size_t num_parameters;
    ParameterTensors params;
    float *params_memory;
    ParameterTensors grads;
    float *grads_memory;
    float *m_memory;  // AdamW first moment, (num_parameters,), or this rank's shard of it
    float *v_memory;  // AdamW second moment
    int max_B, max_T;  // activation buffers are sized for these
    size_t num_activations;  // floats of activations and backward scratch
    ActivationTensors acts;
    float *acts_memory;
    GradScratch scratch;
    float *scratch_memory;
    float *losses;  // (B,T) per-position loss of the last forward
    float *lse;     // (B,T) logsumexp of each logits row
    int B, T;       // shape of the last forward
    const int *inputs, *targets;  // of the last forward (caller-owned)
    float mean_loss;  // of the last forward with targets, else -1
    int backward_done;  // a backward of the last forward ran (the logits are gone)
    uint32_t params_crc;  // with several ranks: CRC-32 of the parameters as built
    DataParallel dp;
} GPT2;

static void gpt2_distribute(GPT2 *model, Comm *comm, int stage);

// Carves `memory` by `sizes`; returns the total when memory is NULL.
static size_t carve(float ***ptrs, const size_t *sizes, int n, float *memory) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (memory) *ptrs[i] = memory + total;
        total += sizes[i];
    }
    return total;
}

// Memory a new allocation can have: Linux's MemAvailable (free memory and
// reclaimable caches), else the machine's total; 0 when neither is known
static double available_memory_gib(void) {
    double total = (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / (1 << 30);
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return total > 0 ? total : 0;
    char line[256];
    long long kib = -1;
    while (kib < 0 && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemAvailable: %lld kB", &kib) != 1) kib = -1;
    }
    fclose(f);
    return kib >= 0 ? (double)kib / (1 << 20) : (total > 0 ? total : 0);
}

// forward_only: for sampling, no gradients, AdamW moments or backward scratch
static void gpt2_allocate(GPT2 *model, int B, int T, int forward_only) {
    const GPT2Config *c = &model->config;
    gpt2_check_batch_shape(c, B, T);
    size_t L = c->num_layers, C = c->channels, NH = c->num_heads, Vp = c->padded_vocab_size;
    size_t BT = (size_t)B * T;
    gpt2_parameter_sizes(c, model->param_sizes);
    model->num_parameters = gpt2_num_parameters(c);

    ActivationTensors *a = &model->acts;
    size_t act_sizes[NUM_ACTIVATION_TENSORS] = {
        BT * C, L * BT * C, L * BT, L * BT, L * BT * 3 * C, L * BT * C, L * B * NH * T * T,
        L * BT * C, L * BT * C, L * BT * C, L * BT, L * BT, L * BT * 4 * C, L * BT * 4 * C,
        L * BT * C, L * BT * C, BT * C, BT, BT, BT * Vp};
    float **act_ptrs[NUM_ACTIVATION_TENSORS] = {
        &a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->att,
        &a->attproj, &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->fch_gelu,
        &a->fcproj, &a->residual3, &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits};
    GradScratch *g = &model->scratch;
    size_t scratch_sizes[NUM_GRAD_SCRATCH_TENSORS] = {BT * C, BT * C, BT * C, BT * 3 * C,
                                                      BT * 4 * C, B * NH * T};
    float **scratch_ptrs[NUM_GRAD_SCRATCH_TENSORS] = {&g->dresidual, &g->dln, &g->datty,
                                                      &g->dqkv, &g->dfch, &g->datt_row};
    size_t num_acts = carve(act_ptrs, act_sizes, NUM_ACTIVATION_TENSORS, NULL);
    size_t num_scratch = carve(scratch_ptrs, scratch_sizes, NUM_GRAD_SCRATCH_TENSORS, NULL);

    if (forward_only) num_scratch = 0;
    // a clear error rather than the OOM killer: parameters, gradients and
    // two AdamW moments, activations, scratch, losses and lse
    double gib = ((forward_only ? 1.0 : 4.0) * model->num_parameters + num_acts + num_scratch + 2.0 * BT) *
                 sizeof(float) / (1 << 30);
    double ram = available_memory_gib();
    if (ram > 0 && gib > ram) {
        fatal("the model needs %.1f GiB at B=%d T=%d, this machine has %.1f GiB available: lower -b or -t",
              gib, B, T, ram);
    }

    model->params_memory = alloc_floats(model->num_parameters);
    gpt2_point_parameters(&model->params, model->params_memory, model->param_sizes);
    if (!forward_only) {
        model->grads_memory = alloc_floats(model->num_parameters);
        model->m_memory = alloc_floats(model->num_parameters);
        model->v_memory = alloc_floats(model->num_parameters);
        gpt2_point_parameters(&model->grads, model->grads_memory, model->param_sizes);
        model->scratch_memory = alloc_floats(num_scratch);
        carve(scratch_ptrs, scratch_sizes, NUM_GRAD_SCRATCH_TENSORS, model->scratch_memory);
    }
    model->acts_memory = alloc_floats(num_acts);
    carve(act_ptrs, act_sizes, NUM_ACTIVATION_TENSORS, model->acts_memory);
    model->losses = alloc_floats(BT);
    model->lse = alloc_floats(BT);
    model->max_B = B;
    model->max_T = T;
    model->num_activations = num_acts + num_scratch + 2 * BT;
    model->mean_loss = -1.0f;
}

// Builds a model from a checkpoint file or a descriptor such as "d12"
// (GPT-2 init from seed), with activations for batches up to (B,T), spread
// over comm's ranks at ZeRO stage `stage` (comm NULL: one process), or
// GPT2_FORWARD_ONLY: for the forward alone, on one process.
void gpt2_build(GPT2 *model, const char *source, uint32_t seed, int B, int T, Comm *comm, int stage) {
    memset(model, 0, sizeof(*model));
    int forward_only = stage == GPT2_FORWARD_ONLY;
    if (forward_only) stage = 0;
    if (gpt2_config_from_descriptor(source, &model->config)) {
        gpt2_allocate(model, B, T, forward_only);
        gpt2_init_parameters(&model->config, model->params_memory, seed);
    } else {
        gpt2_read_config(source, &model->config);
        int32_t header[HEADER_INTS];
        FILE *f = model_file_open(source, &model->config, header);
        gpt2_allocate(model, B, T, forward_only);
        model_file_read(f, source, header, model->params_memory, model->num_parameters);
        fclose_check(f);
    }
    if (comm && comm->world > 1) {  // for the ranks to compare, before ZeRO-3 keeps a shard
        model->params_crc = crc32_update(0, model->params_memory, model->num_parameters * sizeof(float));
    }
    gpt2_distribute(model, comm, stage);
}

void gpt2_free(GPT2 *model) {
    free(model->params_memory);
    free(model->grads_memory);
    free(model->m_memory);
    free(model->v_memory);
    free(model->acts_memory);
    free(model->scratch_memory);
    free(model->losses);
    free(model->lse);
    DataParallel *dp = &model->dp;
    zero_layout_free(&dp->shards);
    zero_layout_free(&dp->optim);
    free(dp->grad_shard);
    free(dp->param_shard);
    for (int k = 0; k < DP_SLOTS; k++) {
        free(dp->bucket_grads[k]);
        free(dp->bucket_reduced[k]);
        free(dp->bucket_params[k]);
    }
    for (int k = 0; k < DP_CHUNK_SLOTS; k++) {
        free(dp->chunk_params[k]);
        free(dp->chunk_grads[k]);
        free(dp->chunk_reduced[k]);
    }
    free(dp->counts);
    free(dp->displs);
    free(dp->chunk_counts);
}

// ----------------------------------------------------------------------------
// data parallelism: where each layer's weights and gradients live

// The tensors of block l (the stacked ones, at layer l's slice) and of the
// embeddings, in `flat` (checkpoint order) or, when flat is NULL, in the
// bucket buffers `emb` (bucket 0) and `block` (bucket 1 + l).
static ParameterTensors tensors_at(const ZeroLayout *z, float *flat, float *emb, float *block,
                                   int l) {
    ParameterTensors t;
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        int stacked = i >= 2 && i < 2 + BLOCK_TENSORS;
        if (stacked && l < 0) continue;
        if (!flat && i == 0 && z->vocab_chunks) continue;  // wte: in vocabulary chunks (dp_chunk_params)
        int u = zero_unit(z, i, l);
        float *base = flat ? flat : stacked ? block : emb;
        *parameter_field(&t, i) = base + (flat ? z->offset[u] : z->bucket_offset[u]);
    }
    return t;
}

static int dp_slot(int bucket) { return bucket == 0 ? 0 : 1 + (bucket - 1) % 2; }

// Lets the collectives in flight advance while the next layer computes
static void dp_progress(GPT2 *model) {
    DataParallel *dp = &model->dp;
    for (int k = 0; k < DP_SLOTS; k++) {
        comm_progress(dp->comm, dp->param_reqs[k], dp->params_pending[k]);
        if (dp->grads_of[k] >= 0) {
            int units[BLOCK_TENSORS];
            comm_progress(dp->comm, dp->grad_reqs[k], zero_bucket_units(&dp->shards, dp->grads_of[k], units));
        }
    }
    for (int k = 0; k < DP_CHUNK_SLOTS; k++) {
        if (dp->chunk_gathering[k]) comm_progress(dp->comm, &dp->chunk_param_req[k], 1);
        if (dp->chunk_grads_of[k] >= 0) comm_progress(dp->comm, &dp->chunk_grad_req[k], 1);
    }
}

// ZeRO-3: starts gathering bucket b's parameters into its slot (unless the
// slot holds them already): each rank puts in its own slices.
static void dp_gather_start(GPT2 *model, int b) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    int k = dp_slot(b);
    if (dp->params_of[k] == b) return;
    for (int i = 0; i < dp->params_pending[k]; i++) comm_wait(dp->comm, &dp->param_reqs[k][i]);
    int units[BLOCK_TENSORS], n = zero_bucket_units(z, b, units);
    for (int i = 0; i < n; i++) {
        int u = units[i];
        float *unit = dp->bucket_params[k] + z->bucket_offset[u];
        memcpy(unit + (size_t)z->rank * z->slice[u], dp->param_shard + z->shard_offset[u],
               z->slice[u] * sizeof(float));
        dp->param_reqs[k][i] = comm_all_gather_f32(dp->comm, unit, z->slice[u], "all-gather of parameters");
    }
    dp->params_pending[k] = n;
    dp->params_of[k] = b;
}

// The parameters block l uses (l = -1: only the embeddings and the final
// layernorm). ZeRO-3 gathers them here, and starts gathering block `next`'s
// (if 0 <= next < L) so that it arrives while block l computes.
static ParameterTensors gpt2_params(GPT2 *model, int l, int next) {
    DataParallel *dp = &model->dp;
    if (dp->stage < 3) return tensors_at(&dp->shards, model->params_memory, NULL, NULL, l);
    dp_progress(model);
    int b = 1 + l;  // l = -1: bucket 0
    dp_gather_start(model, b);
    int k = dp_slot(b);
    for (int i = 0; i < dp->params_pending[k]; i++) comm_wait(dp->comm, &dp->param_reqs[k][i]);
    dp->params_pending[k] = 0;
    if (next >= 0 && next < model->config.num_layers) dp_gather_start(model, 1 + next);
    return tensors_at(&dp->shards, NULL, dp->bucket_params[0], dp->bucket_params[k], l);
}

// ZeRO-2/3: waits for the reduction a slot has in flight and adds this
// rank's reduced slices into its gradient shard.
static void dp_reduce_finish(GPT2 *model, int k) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    if (dp->grads_of[k] < 0) return;
    int units[BLOCK_TENSORS], n = zero_bucket_units(z, dp->grads_of[k], units);
    for (int i = 0; i < n; i++) {
        int u = units[i];
        comm_wait(dp->comm, &dp->grad_reqs[k][i]);
        const float *reduced = dp->bucket_reduced[k] + z->bucket_offset[u] / z->world;
        float *g = dp->grad_shard + z->shard_offset[u];
        for (size_t j = 0; j < z->slice[u]; j++) g[j] += reduced[j];
    }
    dp->grads_of[k] = -1;
}

// ZeRO-2/3: bucket b's gradients are complete: starts reduce-scattering them.
static void dp_reduce_start(GPT2 *model, int b) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    if (dp->stage < 2) return;
    int k = dp_slot(b), units[BLOCK_TENSORS], n = zero_bucket_units(z, b, units);
    for (int i = 0; i < n; i++) {
        int u = units[i];
        dp->grad_reqs[k][i] = comm_reduce_scatter_f32(
            dp->comm, dp->bucket_grads[k] + z->bucket_offset[u],
            dp->bucket_reduced[k] + z->bucket_offset[u] / z->world, z->slice[u],
            "reduce-scatter of gradients");
    }
    dp->grads_of[k] = b;
}

// Where block l's gradients (l = -1: the embeddings') accumulate during the
// backward: the full gradient buffer, or (ZeRO-2/3) its zeroed bucket slot.
static ParameterTensors gpt2_grads(GPT2 *model, int l) {
    DataParallel *dp = &model->dp;
    if (dp->stage < 2) return tensors_at(&dp->shards, model->grads_memory, NULL, NULL, l);
    dp_progress(model);
    int b = 1 + l, k = dp_slot(b);
    dp_reduce_finish(model, k);  // the slot's last bucket (block l + 2) is on its way
    memset(dp->bucket_grads[k], 0, dp->shards.bucket_size[b] * sizeof(float));
    return tensors_at(&dp->shards, NULL, dp->bucket_grads[0], dp->bucket_grads[k], l);
}

// ZeRO-2/3, the token embedding wte in vocabulary chunks (llmc/zero.h).

// The elements [*a, *b) of the wte unit that vocabulary chunk e spans, and
// [*lo, *hi), this rank's part of them (in its slice, at lo - rank * slice).
static void dp_chunk_range(const ZeroLayout *z, int e, size_t *a, size_t *b, size_t *lo, size_t *hi) {
    int v0, v1;
    zero_vocab_chunk(z, e, &v0, &v1);
    *a = (size_t)v0 * z->channels;
    *b = (size_t)v1 * z->channels;
    comm_range_part(z->count[0], z->slice[0], *a, *b, z->rank, lo, hi);
}

// ZeRO-3: starts gathering vocabulary chunk e (if there is one) into its
// slot, unless the slot holds it already: this rank puts in its own part.
static void dp_chunk_gather_start(GPT2 *model, int e) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    int k = e % DP_CHUNK_SLOTS;
    if (e < 0 || e >= z->vocab_chunks || dp->chunk_params_of[k] == e) return;
    if (dp->chunk_gathering[k]) comm_wait(dp->comm, &dp->chunk_param_req[k]);
    size_t a, b, lo, hi;
    dp_chunk_range(z, e, &a, &b, &lo, &hi);
    const float *own = dp->param_shard + z->shard_offset[0] + (lo - (size_t)z->rank * z->slice[0]);
    memcpy(dp->chunk_params[k] + (lo - a), own, (hi - lo) * sizeof(float));
    int *counts = dp->chunk_counts + (size_t)k * 3 * z->world;
    dp->chunk_param_req[k] = comm_all_gather_range_f32(dp->comm, dp->chunk_params[k], z->count[0],
                                                       z->slice[0], a, b, counts, counts + z->world,
                                                       "all-gather of parameters");
    dp->chunk_gathering[k] = 1;
    dp->chunk_params_of[k] = e;
}

// ZeRO-3: vocabulary chunk e of wte (its rows (v1 - v0, C)), gathered; starts
// gathering chunk e + 1 so that it arrives while this one is used.
static const float *dp_chunk_params(GPT2 *model, int e) {
    DataParallel *dp = &model->dp;
    int k = e % DP_CHUNK_SLOTS;
    dp_progress(model);
    dp_chunk_gather_start(model, e);
    if (dp->chunk_gathering[k]) comm_wait(dp->comm, &dp->chunk_param_req[k]);
    dp->chunk_gathering[k] = 0;
    dp_chunk_gather_start(model, e + 1);
    return dp->chunk_params[k];
}

// The pieces in which the forward and the classifier's backward use wte:
// at ZeRO-3 its vocabulary chunks, gathered in turn, else all of it at once.
static int wte_pieces(const GPT2 *model) {
    return model->dp.stage == 3 ? model->dp.shards.vocab_chunks : 1;
}

// Piece e of wte (p: the parameters in use): its rows [*v0, *v1), (v1 - v0, C)
static const float *wte_piece(GPT2 *model, const ParameterTensors *p, int e, int *v0, int *v1) {
    if (model->dp.stage < 3) {
        *v0 = 0;
        *v1 = model->config.padded_vocab_size;
        return p->wte;
    }
    zero_vocab_chunk(&model->dp.shards, e, v0, v1);
    return dp_chunk_params(model, e);
}

// ZeRO-2/3: waits for the reduction chunk slot k has in flight and adds
// this rank's reduced part into its gradient shard.
static void dp_chunk_reduce_finish(GPT2 *model, int k) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    if (dp->chunk_grads_of[k] < 0) return;
    size_t a, b, lo, hi;
    dp_chunk_range(z, dp->chunk_grads_of[k], &a, &b, &lo, &hi);
    comm_wait(dp->comm, &dp->chunk_grad_req[k]);
    float *g = dp->grad_shard + z->shard_offset[0] + (lo - (size_t)z->rank * z->slice[0]);
    for (size_t j = 0; j < hi - lo; j++) g[j] += dp->chunk_reduced[k][j];
    dp->chunk_grads_of[k] = -1;
}

// ZeRO-2/3: a zeroed buffer for vocabulary chunk e's wte gradient (rows
// (v1 - v0, C)), once the reduction its slot had in flight is done.
static float *dp_chunk_grads(GPT2 *model, int e) {
    DataParallel *dp = &model->dp;
    int k = e % DP_CHUNK_SLOTS;
    dp_progress(model);
    dp_chunk_reduce_finish(model, k);
    memset(dp->chunk_grads[k], 0, (size_t)dp->shards.chunk_rows * dp->shards.channels * sizeof(float));
    return dp->chunk_grads[k];
}

// ZeRO-2/3: chunk e's gradient is complete: starts reduce-scattering it.
static void dp_chunk_reduce_start(GPT2 *model, int e) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    int k = e % DP_CHUNK_SLOTS;
    size_t a, b, lo, hi;
    dp_chunk_range(z, e, &a, &b, &lo, &hi);
    int *counts = dp->chunk_counts + ((size_t)k * 3 + 2) * z->world;
    dp->chunk_grad_req[k] = comm_reduce_scatter_range_f32(dp->comm, dp->chunk_grads[k], dp->chunk_reduced[k],
                                                          z->count[0], z->slice[0], a, b, counts,
                                                          "reduce-scatter of gradients");
    dp->chunk_grads_of[k] = e;
}

// Spreads a model just built over comm's ranks at ZeRO stage `stage` (comm
// NULL: one process), freeing what this rank does not keep whole.
static void gpt2_distribute(GPT2 *model, Comm *comm, int stage) {
    DataParallel *dp = &model->dp;
    if (!comm) {
        comm_init_single(&dp->solo);
        comm = &dp->solo;
    }
    dp->comm = comm;
    dp->stage = stage;
    int world = comm->world, rank = comm->rank;
    zero_layout_init(&dp->shards, &model->config, world, rank, stage >= 2);
    zero_layout_init(&dp->optim, &model->config, stage == 0 ? 1 : world, stage == 0 ? 0 : rank, 0);
    size_t rows = (size_t)dp->shards.num_units * world;  // (MPI reads them until the collective ends)
    dp->counts = (int *)calloc_check(rows, sizeof(int));
    dp->displs = (int *)calloc_check(rows, sizeof(int));
    dp->chunk_counts = (int *)calloc_check((size_t)DP_CHUNK_SLOTS * 3 * world, sizeof(int));
    for (int k = 0; k < DP_SLOTS; k++) dp->grads_of[k] = dp->params_of[k] = -1;
    for (int k = 0; k < DP_CHUNK_SLOTS; k++) dp->chunk_grads_of[k] = dp->chunk_params_of[k] = -1;
    const ZeroLayout *z = &dp->shards;
    size_t chunk = (size_t)z->chunk_rows * z->channels;  // a vocabulary chunk's elements
    size_t part = chunk < z->slice[0] ? chunk : z->slice[0];  // the most of one a rank owns
    if (stage >= 1) {  // the AdamW moments: this rank's shard only
        free(model->m_memory);
        free(model->v_memory);
        model->m_memory = alloc_floats(z->shard_size);
        model->v_memory = alloc_floats(z->shard_size);
    }
    if (stage >= 2) {  // the gradients: a shard, and bucket buffers to reduce from
        free(model->grads_memory);
        model->grads_memory = NULL;
        dp->grad_shard = alloc_floats(z->shard_size);
        for (int k = 0; k < DP_SLOTS; k++) {
            size_t n = z->bucket_size[k == 0 ? 0 : 1];  // (every block's bucket has one size)
            dp->bucket_grads[k] = alloc_floats(n);
            dp->bucket_reduced[k] = alloc_floats(n / world);
        }
        for (int k = 0; k < DP_CHUNK_SLOTS; k++) {
            dp->chunk_grads[k] = alloc_floats(chunk);
            dp->chunk_reduced[k] = alloc_floats(part);
        }
    }
    if (stage == 3) {  // the parameters: a shard, and bucket buffers to gather into
        dp->param_shard = alloc_floats(z->shard_size);
        zero_pack_shard(z, dp->param_shard, model->params_memory);
        free(model->params_memory);
        model->params_memory = NULL;
        for (int k = 0; k < DP_SLOTS; k++) {
            dp->bucket_params[k] = alloc_floats(z->bucket_size[k == 0 ? 0 : 1]);
        }
        for (int k = 0; k < DP_CHUNK_SLOTS; k++) dp->chunk_params[k] = alloc_floats(chunk);
    }
    if (world > 1) {  // say where each rank's memory goes
        double mib = sizeof(float) / (double)(1 << 20);
        size_t buckets = z->bucket_size[0] + 2 * z->bucket_size[1];  // the three slots
        size_t params = stage == 3 ? z->shard_size : model->num_parameters;
        size_t grads = stage >= 2 ? z->shard_size : model->num_parameters;
        size_t buffers = (stage >= 2 ? buckets + buckets / world + DP_CHUNK_SLOTS * (chunk + part) : 0) +
                         (stage == 3 ? buckets + DP_CHUNK_SLOTS * chunk : 0);
        printf("memory per rank (ZeRO-%d, %d rank%s): parameters %.1f MiB, gradients %.1f MiB, "
               "AdamW %.1f MiB, bucket buffers %.1f MiB, activations %.1f MiB\n", stage, world,
               world == 1 ? "" : "s", params * mib, grads * mib, 2.0 * dp->optim.shard_size * mib,
               buffers * mib, model->num_activations * mib);
    }
}

// ----------------------------------------------------------------------------
// forward, backward, update

// Forward pass over inputs (B,T). With targets (B,T), also the loss:
// model->losses per position and the mean (gpt2_mean_loss). Without, logits only.
void gpt2_forward(GPT2 *model, const int *inputs, const int *targets, int B, int T) {
    const GPT2Config *c = &model->config;
    int L = c->num_layers, C = c->channels, NH = c->num_heads, V = c->vocab_size;
    int Vp = c->padded_vocab_size;
    if (B < 1 || T < 1 || B > model->max_B || T > model->max_T) {
        fatal("forward with (B,T) = (%d,%d) exceeds the allocation (%d,%d)", B, T, model->max_B,
              model->max_T);
    }
    gpt2_check_tokens(inputs, targets, B * T, V);
    model->B = B;
    model->T = T;
    model->inputs = inputs;
    model->targets = targets;
    ActivationTensors a = model->acts;
    size_t BT = (size_t)B * T;

    ParameterTensors p = gpt2_params(model, -1, 0);  // the embeddings and the final layernorm
    for (int e = 0; e < wte_pieces(model); e++) {  // (each fills the positions of its tokens)
        int v0, v1;
        const float *wte = wte_piece(model, &p, e, &v0, &v1);
        encoder_forward(a.encoded, inputs, wte, v0, v1, p.wpe, B, T, C);
    }
    for (int l = 0; l < L; l++) {
        ParameterTensors w = gpt2_params(model, l, l + 1);  // block l's weights
        float *residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * BT * C;
        // this layer's weights and activations
        float *ln1 = a.ln1 + l * BT * C, *ln1_mean = a.ln1_mean + l * BT;
        float *ln1_rstd = a.ln1_rstd + l * BT, *qkv = a.qkv + l * BT * 3 * C;
        float *atty = a.atty + l * BT * C, *att = a.att + (size_t)l * B * NH * T * T;
        float *attproj = a.attproj + l * BT * C, *residual2 = a.residual2 + l * BT * C;
        float *ln2 = a.ln2 + l * BT * C, *ln2_mean = a.ln2_mean + l * BT;
        float *ln2_rstd = a.ln2_rstd + l * BT, *fch = a.fch + l * BT * 4 * C;
        float *fch_gelu = a.fch_gelu + l * BT * 4 * C, *fcproj = a.fcproj + l * BT * C;
        float *residual3 = a.residual3 + l * BT * C;

        layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, w.ln1w, w.ln1b, BT, C);
        matmul_forward(qkv, ln1, w.qkvw, w.qkvb, BT, C, 3 * C);
        attention_forward(atty, att, qkv, B, T, C, NH);
        matmul_forward(attproj, atty, w.attprojw, w.attprojb, BT, C, C);
        residual_forward(residual2, residual, attproj, BT * C);
        layernorm_forward(ln2, ln2_mean, ln2_rstd, residual2, w.ln2w, w.ln2b, BT, C);
        matmul_forward(fch, ln2, w.fcw, w.fcb, BT, C, 4 * C);
        gelu_forward(fch_gelu, fch, BT * 4 * C);
        matmul_forward(fcproj, fch_gelu, w.fcprojw, w.fcprojb, BT, 4 * C, C);
        residual_forward(residual3, residual2, fcproj, BT * C);
    }
    float *last = a.residual3 + (L - 1) * BT * C;
    layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, last, p.lnfw, p.lnfb, BT, C);
    for (int e = 0; e < wte_pieces(model); e++) {  // the tied output head
        int v0, v1;
        const float *wte = wte_piece(model, &p, e, &v0, &v1);
        classifier_forward(a.logits, a.lnf, wte, v0, v1, BT, C, Vp);
    }

    model->mean_loss = -1.0f;
    model->backward_done = 0;
    if (targets) {
        crossentropy_forward(model->losses, model->lse, a.logits, targets, BT, V, Vp);
        double sum = 0.0;
        for (size_t i = 0; i < BT; i++) sum += model->losses[i];
        model->mean_loss = (float)(sum / BT);
    }
}

void gpt2_zero_grad(GPT2 *model) {
    if (model->dp.stage >= 2) {
        memset(model->dp.grad_shard, 0, model->dp.shards.shard_size * sizeof(float));
    } else {
        memset(model->grads_memory, 0, model->num_parameters * sizeof(float));
    }
}

// Backward pass of the last forward (which must have had targets); adds
// into the parameter gradients. loss_scale weighs this batch's mean loss in
// the objective (1 / (accumulation steps x ranks): the ranks' gradients are
// summed). Destroys the logits.
void gpt2_backward(GPT2 *model, float loss_scale) {
    if (model->mean_loss < 0.0f || model->backward_done) {
        fatal("gpt2_backward needs a forward pass with targets first (one backward per forward)");
    }
    const GPT2Config *c = &model->config;
    int B = model->B, T = model->T;
    int L = c->num_layers, C = c->channels, NH = c->num_heads, V = c->vocab_size;
    int Vp = c->padded_vocab_size;
    size_t BT = (size_t)B * T;
    ActivationTensors a = model->acts;
    GradScratch s = model->scratch;
    ParameterTensors p = gpt2_params(model, -1, L - 1), g = gpt2_grads(model, -1);

    // classifier and final layernorm. ZeRO-2/3 keep dlogits (in a.logits)
    // until the end, where wte's gradient is made a vocabulary chunk at a time
    const ZeroLayout *z = &model->dp.shards;
    int stage = model->dp.stage;
    crossentropy_backward(a.logits, model->lse, model->targets, loss_scale / BT, BT, V, Vp);
    for (int e = 0; e < wte_pieces(model); e++) {
        int v0, v1;
        const float *wte = wte_piece(model, &p, e, &v0, &v1);
        classifier_backward_dinp(s.dln, a.logits, wte, v0, v1, BT, C, Vp);
    }
    if (stage < 2) classifier_backward_dwte(g.wte, a.logits, a.lnf, 0, Vp, BT, C, Vp);
    memset(s.dresidual, 0, BT * C * sizeof(float));
    layernorm_backward(s.dresidual, g.lnfw, g.lnfb, s.dln, a.residual3 + (L - 1) * BT * C, p.lnfw,
                       a.lnf_mean, a.lnf_rstd, BT, C);

    // the blocks, last to first. s.dresidual holds the gradient wrt the
    // block's output; residual adds pass it through unchanged, so it keeps
    // accumulating in place and ends as the gradient wrt the block's input.
    for (int l = L - 1; l >= 0; l--) {
        float *residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * BT * C;
        float *ln1 = a.ln1 + l * BT * C, *ln1_mean = a.ln1_mean + l * BT;
        float *ln1_rstd = a.ln1_rstd + l * BT, *qkv = a.qkv + l * BT * 3 * C;
        float *atty = a.atty + l * BT * C, *att = a.att + (size_t)l * B * NH * T * T;
        float *residual2 = a.residual2 + l * BT * C, *ln2 = a.ln2 + l * BT * C;
        float *ln2_mean = a.ln2_mean + l * BT, *ln2_rstd = a.ln2_rstd + l * BT;
        float *fch = a.fch + l * BT * 4 * C, *fch_gelu = a.fch_gelu + l * BT * 4 * C;
        ParameterTensors w = gpt2_params(model, l, l - 1), dw = gpt2_grads(model, l);

        // MLP: residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
        matmul_backward(s.dfch, dw.fcprojw, dw.fcprojb, s.dresidual, fch_gelu, w.fcprojw, BT, 4 * C, C);
        gelu_backward(s.dfch, fch, BT * 4 * C);
        matmul_backward(s.dln, dw.fcw, dw.fcb, s.dfch, ln2, w.fcw, BT, C, 4 * C);
        layernorm_backward(s.dresidual, dw.ln2w, dw.ln2b, s.dln, residual2, w.ln2w, ln2_mean,
                           ln2_rstd, BT, C);
        // attention: residual2 = residual + attproj(attention(qkv(ln1(residual))))
        matmul_backward(s.datty, dw.attprojw, dw.attprojb, s.dresidual, atty, w.attprojw, BT, C, C);
        attention_backward(s.dqkv, s.datt_row, s.datty, qkv, att, B, T, C, NH);
        matmul_backward(s.dln, dw.qkvw, dw.qkvb, s.dqkv, ln1, w.qkvw, BT, C, 3 * C);
        layernorm_backward(s.dresidual, dw.ln1w, dw.ln1b, s.dln, residual, w.ln1w, ln1_mean,
                           ln1_rstd, BT, C);
        dp_reduce_start(model, 1 + l);  // ZeRO-2/3: block l's gradients are complete
    }
    encoder_backward(stage < 2 ? g.wte : NULL, 0, Vp, g.wpe, s.dresidual, model->inputs, B, T, C);
    dp_reduce_start(model, 0);
    // ZeRO-2/3: wte's gradient (the classifier's, then the encoder's, as
    // above) a vocabulary chunk at a time, each reduced while the next is made
    for (int e = 0; stage >= 2 && e < z->vocab_chunks; e++) {
        int v0, v1;
        zero_vocab_chunk(z, e, &v0, &v1);
        float *dwte = dp_chunk_grads(model, e);
        classifier_backward_dwte(dwte, a.logits, a.lnf, v0, v1, BT, C, Vp);
        encoder_backward(dwte, v0, v1, NULL, s.dresidual, model->inputs, B, T, C);
        dp_chunk_reduce_start(model, e);
    }
    for (int k = 0; k < DP_SLOTS; k++) dp_reduce_finish(model, k);
    for (int k = 0; k < DP_CHUNK_SLOTS; k++) dp_chunk_reduce_finish(model, k);
    model->backward_done = 1;  // the logits are gone: a second backward needs a new forward
}

// Mean loss of the last forward (which had targets), also after its backward
float gpt2_mean_loss(GPT2 *model) {
    if (model->mean_loss < 0.0f) fatal("gpt2_mean_loss: the last forward had no targets");
    return model->mean_loss;
}

const float *gpt2_position_losses(GPT2 *model) {
    gpt2_mean_loss(model);   // (fails without targets)
    return model->losses;
}

// Sum of squares of x (n,) in double, summed in fixed chunks so the result
// does not depend on the number of threads.
static double sum_of_squares(const float *x, size_t n) {
    size_t chunks = (n + REDUCE_CHUNK - 1) / REDUCE_CHUNK;
    double *partial = (double *)malloc_check(chunks * sizeof(double));
#pragma omp parallel for
    for (size_t k = 0; k < chunks; k++) {
        size_t end = (k + 1) * REDUCE_CHUNK < n ? (k + 1) * REDUCE_CHUNK : n;
        double s = 0.0;
        for (size_t i = k * REDUCE_CHUNK; i < end; i++) s += (double)x[i] * x[i];
        partial[k] = s;
    }
    double total = 0.0;
    for (size_t k = 0; k < chunks; k++) total += partial[k];
    free(partial);
    return total;
}

// After the micro-batches' backward passes: every rank's gradients summed
// (ZeRO-0/1: all-reduced here; ZeRO-2/3: reduce-scattered during backward).
void gpt2_reduce_gradients(GPT2 *model) {
    if (model->dp.stage < 2) {
        comm_allreduce_sum_f32(model->dp.comm, model->grads_memory, model->num_parameters,
                               "all-reduce of gradients");
    }
}

// Global L2 norm of all gradients; if above max_norm (> 0), scales the
// gradients down to it (as torch.nn.utils.clip_grad_norm_). Returns the norm
// before clipping. ZeRO-2/3: each rank holds a shard; the squares are summed
// over ranks.
float gpt2_clip_grad_norm(GPT2 *model, float max_norm) {
    DataParallel *dp = &model->dp;
    int sharded = dp->stage >= 2;
    float *grads = sharded ? dp->grad_shard : model->grads_memory;
    size_t n = sharded ? dp->shards.shard_size : model->num_parameters;
    double squares = sum_of_squares(grads, n);
    if (sharded) comm_allreduce_sum_f64(dp->comm, &squares, 1, "all-reduce of the gradient norm");
    float norm = (float)sqrt(squares);
    if (max_norm > 0.0f) {
        float coef = max_norm / (norm + 1e-6f);
        if (coef < 1.0f) {
#pragma omp parallel for
            for (size_t i = 0; i < n; i++) grads[i] *= coef;
        }
    }
    return norm;
}

// AdamW on n parameters p with gradients g and moments m, v; decay is the
// weight decay factor 1 - lr * weight_decay (1: none).
static void adamw(float *p, const float *g, float *m, float *v, size_t n, float beta1, float beta2,
                  float eps, float step_size, float bc2_sqrt, float decay) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] * decay - step_size * m[i] / denom;
    }
}

// AdamW with decoupled weight decay on the 2-D weights only, as
// torch.optim.AdamW. t is the 1-based step number. Each rank updates the
// slices whose moments it holds (all of them at ZeRO-0); ZeRO-1/2 then
// all-gather the parameters, ZeRO-3 keeps its shard until the next forward.
void gpt2_update(GPT2 *model, float lr, float beta1, float beta2, float eps, float weight_decay,
                 int t) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->optim;
    float bc1 = 1.0f - powf(beta1, (float)t);
    float bc2_sqrt = sqrtf(1.0f - powf(beta2, (float)t));
    for (int u = 0; u < z->num_units; u++) {
        size_t own = zero_owned(z, u, z->rank), so = z->shard_offset[u];
        size_t flat = z->offset[u] + (size_t)z->rank * z->slice[u];
        float *p = dp->stage == 3 ? dp->param_shard + so : model->params_memory + flat;
        float *g = dp->stage >= 2 ? dp->grad_shard + so : model->grads_memory + flat;
        float decay = parameter_decays(z->tensor[u]) ? 1.0f - lr * weight_decay : 1.0f;
        adamw(p, g, model->m_memory + so, model->v_memory + so, own, beta1, beta2, eps, lr / bc1,
              bc2_sqrt, decay);
    }
    if (dp->stage == 1 || dp->stage == 2) {
        CommRequest *reqs = (CommRequest *)malloc_check((size_t)z->num_units * sizeof(CommRequest));
        for (int u = 0; u < z->num_units; u++) {
            size_t row = (size_t)u * z->world;
            reqs[u] = comm_all_gather_unpadded_f32(dp->comm, model->params_memory + z->offset[u],
                                                   z->count[u], z->slice[u], dp->counts + row,
                                                   dp->displs + row, "all-gather of parameters");
        }
        for (int u = 0; u < z->num_units; u++) comm_wait(dp->comm, &reqs[u]);
        free(reqs);
    }
    for (int k = 0; k < DP_SLOTS; k++) dp->params_of[k] = -1;  // ZeRO-3: gathered copies are stale
    for (int k = 0; k < DP_CHUNK_SLOTS; k++) dp->chunk_params_of[k] = -1;
}

// ----------------------------------------------------------------------------
// what the training program (llmc/train_loop.h) needs of the model

// the Vp logits of row t (of the B*T) of the last forward
const float *gpt2_logits_row(GPT2 *model, int t) {
    return model->acts.logits + (size_t)t * model->config.padded_vocab_size;
}

// Writes a checkpoint: every rank its state file (its slices of the AdamW
// moments), then rank 0 the model file, which marks the checkpoint complete.
void gpt2_save(GPT2 *model, const char *model_path, const char *state_path, const TrainState *st) {
    DataParallel *dp = &model->dp;
    const ZeroLayout *z = &dp->shards;
    if (dp->stage == 0 && z->world > 1) {  // every rank holds all moments: write its slices
        float *m = alloc_floats(z->shard_size), *v = alloc_floats(z->shard_size);
        zero_pack_shard(z, m, model->m_memory);
        zero_pack_shard(z, v, model->v_memory);
        state_file_write(state_path, st, m, v, z->shard_size);
        free(m);
        free(v);
    } else {
        state_file_write(state_path, st, model->m_memory, model->v_memory, z->shard_size);
    }
    comm_barrier_after_io(dp->comm, "checkpoint: state files written");
    float *params = model->params_memory;
    if (dp->stage == 3) {  // gather the parameters on rank 0
        params = z->rank == 0 ? alloc_floats(model->num_parameters) : NULL;
        for (int u = 0; u < z->num_units; u++) {
            CommRequest r = comm_gather_unpadded_f32(
                dp->comm, dp->param_shard + z->shard_offset[u], params ? params + z->offset[u] : NULL,
                z->count[u], z->slice[u], dp->counts, dp->displs, "gather of parameters to rank 0");
            comm_wait(dp->comm, &r);
        }
    }
    if (z->rank == 0) model_file_write(model_path, &model->config, params);
    if (params != model->params_memory) free(params);
    comm_barrier_after_io(dp->comm, "checkpoint: model file written");
}

int gpt2_weights_finite(GPT2 *model) {
    const DataParallel *dp = &model->dp;
    if (dp->stage == 3) return first_nonfinite(dp->param_shard, dp->shards.shard_size, 0) < 0;
    return first_nonfinite(model->params_memory, model->num_parameters, 0) < 0;
}

uint32_t gpt2_params_checksum(GPT2 *model) { return model->params_crc; }

// Reads the AdamW moments of the checkpoint at `step` in dir, written on any
// number of ranks: this rank takes the slices it holds.
void gpt2_load_state(GPT2 *model, const char *dir, int step, TrainState *st) {
    state_files_read(dir, step, &model->config, &model->dp.optim, model->m_memory,
                     model->v_memory, st);
}

void gpt2_describe_device(char *out, size_t size) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(out, size, "CPU, %d thread%s", threads, threads == 1 ? "" : "s");
}

// no MFU on the CPU: its peak is not in the table
double gpt2_peak_flops(GPT2 *model) {
    (void)model;
    return -1.0;
}

#ifndef TESTING
#define TRAINER_SUMMARY "Trains GPT-2 on the CPU (fp32) from token shards; writes checkpoints to -o."
#include "llmc/train_loop.h"

// the CPU trainer has no settings of its own
void gpt2_configure(const TrainConfig *cfg, const Comm *comm) {
    (void)cfg;
    (void)comm;
}
#endif

