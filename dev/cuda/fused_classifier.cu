// dev/cuda/fused_classifier.cu: checks and benchmarks the fused softmax +
// cross-entropy + gradient kernel of llmc/fused_classifier.cuh against a
// double-precision CPU reference; exits 1 on any mismatch.
//
//   fused_classifier         check: (BT, V, Vp) in {(20, 1000, 1024),
//                            (7, 37, 40), (1, 8, 8), (2, 50257, 50304)}:
//                            partial warps, a ragged last chunk with padding,
//                            one chunk per row, rows of 12 sweeps of the
//                            block with a ragged last sweep and chunk;
//                            each first without dlogits (logits must stay
//                            unchanged), then with them (in place); with
//                            the launcher's choice (with dlogits, the
//                            kernel that holds a row in registers, up to
//                            Vp = 53248), then the general kernel and
//                            the one staging its rows in shared memory,
//                            which must give the same bits
//                            and fused_classifier_columns, the same row
//                            in blocks of about a third of Vp
//   fused_classifier bench   also time both modes on (B*T, V, Vp) =
//                            (8*1024, 50257, 50304) (real GPU only), and
//                            the general and staged kernels' dlogits
//                            beside them
//   fused_classifier badvp   Vp % 8 != 0: must fail with a message
//   fused_classifier badv    V > Vp: must fail with a message
//   fused_classifier badw    fused_classifier_columns_stats with a block of
//                            W = 12 columns (not whole chunks of 8): the same
// Each check line ends with a hash of the result bits: the kernel promises
// the same bits in every thread order (tests/kernels/fused_classifier.sh).
//
// Inputs: logits uniform in [-4, 4) in bf16; the padding columns hold +30
// (a kernel that let them into the max or the sum would be off by ~26 in the
// loss; one that left them unwritten fails the exact-zero check); every
// third row has its target logit raised to +12, so p[target] is near 1 and
// (p - 1) cancels. dloss = 0.75 / BT (not a power of two). The reference
// takes the same bf16 values and computes everything in double.
//
// Tolerances, with u = 2^-24, gamma(k) = k u / (1 - k u), cpt = the most
// chunks of 8 a thread sums (ceil(V / 8 / 512)) and R = max |x - max| of
// the row (the kernels' exp, 2^(d log2 e) by ex2.approx, is within 2 ulps =
// 4u, plus 3u |d| (EXP_ARG_ROUNDINGS) from the roundings of d = x - m, of
// log2 e and of the product, while e^d >= 2^-126; below it is flushed to 0,
// an absolute error under 2^-126, which R <= 16 here never reaches but the
// dlogits bound allows for):
// - s (the sum of exp): relative error at most gamma(Ks) with
//   Ks = 8 cpt (additions of a thread) + (cpt + 1)(5 + 3R) (each term's exp,
//   each rescaling) + 10 (6 + 3R) (the 10 butterfly levels: an exp, a
//   product and a sum each);
// - loss = m + log(s) - x[target]: |error| <= gamma(Ks) (log of s) +
//   gamma(4) (|m| + |log s| + |x[target]|) (logf within 1 ulp, two sums);
//   about 1e-4 for these inputs, while a wrong target column moves the loss
//   by ~1 and counting the padding by ~26;
// - dlogits: one bf16 ulp of the reference rounded to bf16 (the fp32 value
//   may sit across a rounding boundary) plus the fp32 error floor
//   |dloss| (gamma(Ks + 3R + 6) p + gamma(2) |p - [c == target]|) (p's
//   exp, 1/s and the products; at the target the difference and the
//   scaling, elsewhere e^d times (1/s) dloss, two roundings that gamma(2) p
//   covers) plus |dloss| 2^-126 / s (a flushed exp); a missing dloss
//   (factor 1 / 0.75 BT) or a wrong target column (off by dloss) exceeds
//   it by orders of magnitude. Padding columns must be exactly +0.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../llmc/fused_classifier.cuh"
#include "common.cuh"

#define LOGIT_SPREAD 4.0f     // logits in [-LOGIT_SPREAD, LOGIT_SPREAD)
#define TARGET_SPIKE 12.0f    // every third row's target logit
#define PADDING_LOGIT 30.0f   // what the padding columns hold before the kernel
#define EXP_ARG_ROUNDINGS 3   // the kernels' exp: relative error 2 ulps + this many u |d| (see the top)

// FNV-1a over n bytes, continuing from h
static uint64_t fnv1a(uint64_t h, const void* p, size_t n) {
    const unsigned char* b = (const unsigned char*)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

// compares losses (BT,) and, if dlogits != NULL, dlogits (BT,Vp) with the
// double reference over x (BT,Vp) (the bf16 logits as float); 0 if all are
// within the tolerances at the top of the file
// cpt: the most chunks of 8 a thread sums; levels: the combines of (m, s)
// pairs one after the other (butterfly levels, blocks of columns merged)
static int compare(const char* what, int BT, int V, int Vp, float dloss, const float* x, const int* targets,
                   const float* losses, const floatX* dlogits, int cpt, int levels) {
    double max_loss = 0, max_d = 0;   // errors relative to their tolerances
    for (int i = 0; i < BT; i++) {
        const float* xr = x + (size_t)i * Vp;
        double m = -INFINITY, mn = INFINITY;
        for (int c = 0; c < V; c++) { m = fmax(m, xr[c]); mn = fmin(mn, xr[c]); }
        double s = 0;
        for (int c = 0; c < V; c++) s += exp(xr[c] - m);
        double R = m - mn;
        double Ks = 8.0 * cpt + (cpt + 1) * (5 + EXP_ARG_ROUNDINGS * R) + levels * (6 + EXP_ARG_ROUNDINGS * R);
        double loss = m + log(s) - xr[targets[i]];
        double tol = gamma_u(Ks) + gamma_u(4) * (fabs(m) + fabs(log(s)) + fabs(xr[targets[i]]));
        double e = fabs(losses[i] - loss);
        if (!(e <= tol)) {
            fprintf(stderr, "error: %s BT=%d V=%d Vp=%d: losses[%d] = %.9g, want %.9g: error %.3g > %.3g\n", what,
                    BT, V, Vp, i, losses[i], loss, e, tol);
            return 1;
        }
        if (e / tol > max_loss) max_loss = e / tol;
        if (!dlogits) continue;
        for (int c = 0; c < Vp; c++) {
            floatX gb = dlogits[(size_t)i * Vp + c];
            float got = __bfloat162float(gb);
            if (c >= V) {
                if (__bfloat16_as_ushort(gb) != 0) {
                    fprintf(stderr, "error: %s BT=%d V=%d Vp=%d: dlogits[%d][%d] (padding) = %.6g, want +0 exactly\n",
                            what, BT, V, Vp, i, c, got);
                    return 1;
                }
                continue;
            }
            double p = exp(xr[c] - m) / s, ind = c == targets[i] ? 1.0 : 0.0;
            float want = __bfloat162float(__float2bfloat16((float)((p - ind) * dloss)));
            double dt = bf16_ulp(want) +
                        fabs(dloss) * (gamma_u(Ks + EXP_ARG_ROUNDINGS * R + 6) * p + gamma_u(2) * fabs(p - ind) +
                                       0x1p-126 / s);
            double ed = fabs((double)got - want);
            if (!(ed <= dt)) {
                fprintf(stderr, "error: %s BT=%d V=%d Vp=%d: dlogits[%d][%d] = %.6g, want %.6g (tolerance %.3g)\n",
                        what, BT, V, Vp, i, c, got, want, dt);
                return 1;
            }
            if (ed / dt > max_d) max_d = ed / dt;
        }
    }
    uint64_t h = fnv1a(14695981039346656037ull, losses, BT * sizeof(float));
    if (dlogits) h = fnv1a(h, dlogits, (size_t)BT * Vp * sizeof(floatX));
    printf("%s BT=%d V=%d Vp=%d: matches the CPU reference (largest error / tolerance: loss %.2f, dlogits %.2f), "
           "bits %016llx\n", what, BT, V, Vp, max_loss, max_d, (unsigned long long)h);
    return 0;
}

// ----------------------------------------------------------------------------
// check, bench

// the classifier over blocks of W columns (about a third of Vp; the last
// block ragged, and at (20, 1000, 1024) all padding), as the GPU trainer
// runs it at ZeRO-2/3: pass 1 over the blocks in turn, then pass 2 on each
// block's logits again; the blocks' dlogits put side by side must match the
// same reference as the whole-row kernel's, within the bound of a warp's
// butterfly plus one combine per block
static int check_columns(int BT, int V, int Vp, float dloss, const floatX* logits, const float* xf,
                         const int* targets, const int* d_targets) {
    int W = Vp / 3 / 8 * 8 > 8 ? Vp / 3 / 8 * 8 : 8, blocks = (Vp + W - 1) / W;
    floatX *tile = (floatX*)xmalloc((size_t)BT * W * sizeof(floatX));
    floatX *got = (floatX*)xmalloc((size_t)BT * Vp * sizeof(floatX));
    float* losses = (float*)xmalloc(BT * sizeof(float));
    floatX* d_tile;
    float *d_max, *d_sum, *d_losses;
    cudaCheck(cudaMalloc(&d_tile, (size_t)BT * W * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_max, BT * sizeof(float)));
    cudaCheck(cudaMalloc(&d_sum, BT * sizeof(float)));
    cudaCheck(cudaMalloc(&d_losses, BT * sizeof(float)));
    for (int pass = 1; pass <= 2; pass++) {
        for (int b = 0; b < blocks; b++) {
            int v0 = b * W, w = Vp - v0 < W ? Vp - v0 : W;
            for (int i = 0; i < BT; i++) memcpy(tile + (size_t)i * w, logits + (size_t)i * Vp + v0, w * sizeof(floatX));
            cudaCheck(cudaMemcpy(d_tile, tile, (size_t)BT * w * sizeof(floatX), cudaMemcpyHostToDevice));
            if (pass == 1) {
                fused_classifier_columns_stats(d_tile, d_max, d_sum, d_losses, d_targets, BT, w, v0, V, b == 0,
                                               b == blocks - 1, 0);
                continue;
            }
            fused_classifier_columns_dlogits(d_tile, d_max, d_sum, d_targets, dloss, BT, w, v0, V, 0);
            cudaCheck(cudaMemcpy(tile, d_tile, (size_t)BT * w * sizeof(floatX), cudaMemcpyDeviceToHost));
            for (int i = 0; i < BT; i++) memcpy(got + (size_t)i * Vp + v0, tile + (size_t)i * w, w * sizeof(floatX));
        }
    }
    cudaCheck(cudaMemcpy(losses, d_losses, BT * sizeof(float), cudaMemcpyDeviceToHost));
    char what[96];
    snprintf(what, sizeof what, "fused_classifier_columns (%d blocks of %d)", blocks, W);
    int bad = compare(what, BT, V, Vp, dloss, xf, targets, losses, got, (W / 8 + 31) / 32, 5 + blocks);
    cudaCheck(cudaFree(d_tile));
    cudaCheck(cudaFree(d_max));
    cudaCheck(cudaFree(d_sum));
    cudaCheck(cudaFree(d_losses));
    free(tile); free(got); free(losses);
    return bad;
}

static int check(int BT, int V, int Vp, uint32_t seed) {
    size_t n = (size_t)BT * Vp;
    floatX *logits = (floatX*)xmalloc(n * sizeof(floatX)), *got = (floatX*)xmalloc(n * sizeof(floatX));
    float* xf = (float*)xmalloc(n * sizeof(float));
    float* losses = (float*)xmalloc(BT * sizeof(float));
    int* targets = (int*)xmalloc(BT * sizeof(int));
    fill_bf16(logits, xf, n, 0.0f, LOGIT_SPREAD, seed);
    uint32_t s = seed ^ 0x5bd1e995u;
    for (int i = 0; i < BT; i++) {
        s = s * 1664525u + 1013904223u;
        targets[i] = (int)((s >> 8) % (uint32_t)V);
        if (i % 3 == 2) logits[(size_t)i * Vp + targets[i]] = __float2bfloat16(TARGET_SPIKE);
        for (int c = V; c < Vp; c++) logits[(size_t)i * Vp + c] = __float2bfloat16(PADDING_LOGIT);
    }
    for (size_t j = 0; j < n; j++) xf[j] = __bfloat162float(logits[j]);
    float dloss = 0.75f / BT;
    floatX* d_logits;
    float* d_losses;
    int* d_targets;
    cudaCheck(cudaMalloc(&d_logits, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_losses, BT * sizeof(float)));
    cudaCheck(cudaMalloc(&d_targets, BT * sizeof(int)));
    cudaCheck(cudaMemcpy(d_logits, logits, n * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_targets, targets, BT * sizeof(int), cudaMemcpyHostToDevice));
    int bad = 0;
    int cpt = ((V + 7) / 8 + FUSED_CLASSIFIER_BLOCK_SIZE - 1) / FUSED_CLASSIFIER_BLOCK_SIZE;
    // the launcher's choice (with dlogits at these Vp: the kernel holding
    // its rows in registers), then the general kernel and the staged one:
    // the same checks, and the same bits
    floatX* held_dlogits = (floatX*)xmalloc(n * sizeof(floatX));
    float* held_losses = (float*)xmalloc(BT * sizeof(float));
    const int variants[] = {FUSED_CLASSIFIER_CHOICE, FUSED_CLASSIFIER_GENERAL, FUSED_CLASSIFIER_STAGED};
    const char* names[] = {"fused_classifier", "fused_classifier (general kernel)",
                           "fused_classifier (rows staged in shared memory)"};
    for (int k = 0; k < 3; k++) {
        if (variants[k] == FUSED_CLASSIFIER_STAGED && !fused_classifier_staged_fits(Vp)) {
            fprintf(stderr, "error: fused_classifier Vp=%d: the staged kernel does not fit the device's shared "
                    "memory\n", Vp);   // (every Vp checked here fits an sm_80 or later, and the emulation)
            bad = 1;
            continue;
        }
        fused_classifier_variant = variants[k];
        const char* which = names[k];
        char what[96];
        cudaCheck(cudaMemcpy(d_logits, logits, n * sizeof(floatX), cudaMemcpyHostToDevice));

        // losses only: the logits must come back unchanged (the staged
        // variant's losses alone run the general kernel, checked above)
        if (variants[k] != FUSED_CLASSIFIER_STAGED) {
            fused_classifier(d_logits, d_losses, dloss, d_targets, BT, V, Vp, 0, 0);
            cudaCheck(cudaDeviceSynchronize());
            cudaCheck(cudaMemcpy(got, d_logits, n * sizeof(floatX), cudaMemcpyDeviceToHost));
            cudaCheck(cudaMemcpy(losses, d_losses, BT * sizeof(float), cudaMemcpyDeviceToHost));
            if (memcmp(got, logits, n * sizeof(floatX)) != 0) {
                fprintf(stderr, "error: %s BT=%d V=%d Vp=%d: write_dlogits = 0 changed the logits\n", which, BT, V, Vp);
                bad = 1;
            }
            snprintf(what, sizeof what, "%s losses only", which);
            bad |= compare(what, BT, V, Vp, dloss, xf, targets, losses, NULL, cpt, 10);
        }

        // losses and dlogits in place
        fused_classifier(d_logits, d_losses, dloss, d_targets, BT, V, Vp, 1, 0);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(got, d_logits, n * sizeof(floatX), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(losses, d_losses, BT * sizeof(float), cudaMemcpyDeviceToHost));
        snprintf(what, sizeof what, "%s with dlogits", which);
        bad |= compare(what, BT, V, Vp, dloss, xf, targets, losses, got, cpt, 10);
        if (k == 0) {
            memcpy(held_dlogits, got, n * sizeof(floatX));
            memcpy(held_losses, losses, BT * sizeof(float));
        } else if (memcmp(held_dlogits, got, n * sizeof(floatX)) || memcmp(held_losses, losses, BT * sizeof(float))) {
            fprintf(stderr, "error: %s BT=%d V=%d Vp=%d: other bits than the launcher's choice\n", which, BT, V, Vp);
            bad = 1;
        }
    }
    fused_classifier_variant = FUSED_CLASSIFIER_CHOICE;
    free(held_dlogits);
    free(held_losses);
    bad |= check_columns(BT, V, Vp, dloss, logits, xf, targets, d_targets);

    cudaCheck(cudaFree(d_logits));
    cudaCheck(cudaFree(d_losses));
    cudaCheck(cudaFree(d_targets));
    free(logits); free(got); free(xf); free(losses); free(targets);
    return bad;
}

#ifndef CUDA_EMU
static void bench(void) {
    int BT = 8 * 1024, V = 50257, Vp = 50304;   // GPT-2 124M at B=8, T=1024
    size_t n = (size_t)BT * Vp;
    floatX* d_logits;
    float* d_losses;
    int* d_targets;
    cudaCheck(cudaMalloc(&d_logits, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_losses, BT * sizeof(float)));
    cudaCheck(cudaMalloc(&d_targets, BT * sizeof(int)));
    cudaCheck(cudaMemset(d_logits, 0, n * sizeof(floatX)));   // zeros stay finite under repeated in-place runs
    cudaCheck(cudaMemset(d_targets, 0, BT * sizeof(int)));
    float f = bench_ms([&] { fused_classifier(d_logits, d_losses, 1.0f / BT, d_targets, BT, V, Vp, 0, 0); }, 20);
    float b = bench_ms([&] { fused_classifier(d_logits, d_losses, 1.0f / BT, d_targets, BT, V, Vp, 1, 0); }, 20);
    fused_classifier_variant = FUSED_CLASSIFIER_GENERAL;   // side by side: pass 2 reading the row again
    float bg = bench_ms([&] { fused_classifier(d_logits, d_losses, 1.0f / BT, d_targets, BT, V, Vp, 1, 0); }, 20);
    float bs = -1.0f;   // the row staged in shared memory, where it fits
    if (fused_classifier_staged_fits(Vp)) {
        fused_classifier_variant = FUSED_CLASSIFIER_STAGED;
        bs = bench_ms([&] { fused_classifier(d_logits, d_losses, 1.0f / BT, d_targets, BT, V, Vp, 1, 0); }, 20);
    }
    fused_classifier_variant = FUSED_CLASSIFIER_CHOICE;
    // bytes moved from/to DRAM: the logits read once (the general kernel's
    // re-read hits L2), written once with dlogits; losses and targets
    bench_report("fused_classifier_losses", f, n * sizeof(floatX) + 8.0 * BT, 0);
    bench_report("fused_classifier_dlogits", b, 2.0 * n * sizeof(floatX) + 8.0 * BT, 0);
    bench_report("fused_classifier_dlogits_general", bg, 2.0 * n * sizeof(floatX) + 8.0 * BT, 0);
    printf("bench fused_classifier: rows held in registers %.2fx the speed of the general kernel\n", bg / b);
    if (bs > 0.0f) {
        bench_report("fused_classifier_dlogits_staged", bs, 2.0 * n * sizeof(floatX) + 8.0 * BT, 0);
        printf("bench fused_classifier: rows staged in shared memory (2 blocks per SM on Hopper) vs held in "
               "registers (1): %.2fx faster\n", b / bs);
    } else {
        printf("bench fused_classifier: rows staged in shared memory: n/a (a row of Vp = %d does not fit)\n", Vp);
    }
    cudaCheck(cudaFree(d_logits));
    cudaCheck(cudaFree(d_losses));
    cudaCheck(cudaFree(d_targets));
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 ||
        (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badvp") && strcmp(mode, "badv") &&
         strcmp(mode, "badw"))) {
        fprintf(stderr, "error: usage: fused_classifier [check|bench|badvp|badv|badw]\n");
        return 2;
    }
    if (!strcmp(mode, "badvp") || !strcmp(mode, "badv") || !strcmp(mode, "badw")) {
        floatX* d;
        float* l;
        int* t;
        cudaCheck(cudaMalloc(&d, 64 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&l, 4 * sizeof(float)));
        cudaCheck(cudaMalloc(&t, 4 * sizeof(int)));
        cudaCheck(cudaMemset(t, 0, 4 * sizeof(int)));
        if (!strcmp(mode, "badvp")) fused_classifier(d, l, 1.0f, t, 2, 10, 12, 1, 0);   // exits 1
        else if (!strcmp(mode, "badv")) fused_classifier(d, l, 1.0f, t, 2, 17, 16, 1, 0);   // exits 1
        else fused_classifier_columns_stats(d, l, l + 1, l + 2, t, 2, 12, 0, 17, 1, 1, 0);  // W = 12: exits 1
        return 0;
    }
    int shapes[][3] = {{20, 1000, 1024}, {7, 37, 40}, {1, 8, 8}, {2, 50257, 50304}};
    int bad = 0;
    for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++)
        bad |= check(shapes[i][0], shapes[i][1], shapes[i][2], 4321u + 17 * i);
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
