// dev/cuda/encoder.cu: checks and benchmarks the token + position embedding
// kernels of llmc/encoder.cuh against a CPU reference; exits 1 on any mismatch.
//
//   encoder            check: (B,T,C,V) in (1,1,8,3) (one position, one
//                      lane), (2,37,264,40) (B*T not a multiple of the
//                      4-warp block, a last 256-channel chunk of one lane),
//                      (3,50,1000,97) (a last chunk of 29 lanes), (4,64,768,
//                      1000) (whole chunks, many absent tokens), (8,100,
//                      16,20) (token 0's ~400 positions in 7 segments of
//                      ENCODER_BWD_SEGMENT, the last short); forward
//                      (also with bad token ids -1 and V: NaN rows, nothing
//                      read outside wte), then backward twice (two
//                      micro-steps accumulating into the same gradients);
//                      forward and the second backward also by blocks of
//                      rows of wte (encoder_forward_rows,
//                      encoder_backward_wte_rows: the trainer's vocabulary
//                      chunks), the same bits.
//                      Per shape one line with a checksum (FNV-1a) of the
//                      result bits, which tests/kernels/encoder.sh compares
//                      across thread orders
//   encoder bench      also time forward and backward at (B,T,C) =
//                      (8,1024,768), V = 50257, Zipf-like token ids (real
//                      GPU only): the whole launcher (host bucketing, copy,
//                      kernels) and its device half alone
//   encoder badc       encoder_forward with C % 8 != 0: must fail with a message
//   encoder badcbwd    the same for encoder_backward
//   encoder badtoken   encoder_backward with a token id = V: must fail with a message
//
// Tolerance: none, every result must be the same bits as the reference.
// Forward: the kernel adds two bf16 values in fp32 (one IEEE rounding,
// usually exact: each has 8 significant bits, fp32 24) and rounds that once
// to bf16 (nearest even); the host does the same two operations. Backward:
// the kernels promise a fixed order of fp32 additions per element (the
// existing bf16 gradient, then the contributions in increasing b*T+t, in
// segments of ENCODER_BWD_SEGMENT positions whose sums are added in order:
// see llmc/encoder.cuh) and
// one rounding to bf16; the host does the same additions in the same order,
// IEEE on both sides (additions only, so no fused multiply-add can change a
// rounding). The inputs make the order matter: token 0 takes about half the
// positions, its row of dwte and one row of dwpe start at 2^32 and one of its
// dout rows is -2^32 (see plant_cancellation), so in any other order those
// sums come out different by far more than a bf16 ulp; dout spans magnitudes
// 2^-8 .. 2^4 (sums that round in fp32); one token occurs exactly once, and
// most of the V rows of dwte never occur and must keep their bits.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef CUDA_EMU
#include <chrono>
#endif
#include "../../llmc/encoder.cuh"
#include "common.cuh"

#define MAXT_EXTRA 3   // wpe/dwpe have T + 3 rows in the check: rows past T must stay untouched

// ----------------------------------------------------------------------------
// inputs, reference

// ids (N,): about half are 0 (a token occurring many times), the last is
// V-1 and no other is (a token occurring once), the rest uniform in [1, V-2]
static void fill_tokens(int* inp, int N, int V, uint32_t seed) {
    for (int i = 0; i < N; i++) {
        float r = lcg_uniform(&seed);   // [-1, 1)
        float s = lcg_uniform(&seed);
        if (V < 3 || r < 0.0f) inp[i] = 0;
        else inp[i] = 1 + (int)((s + 1.0f) * 0.5f * (float)(V - 2)) % (V - 2);
    }
    if (N > 0) inp[N - 1] = V - 1;
}

// x (n,) bf16 of magnitudes 2^-8 .. 2^4 with random signs: fp32 sums of
// such values round, so their order shows in the bits
static void fill_wide(floatX* x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        float m = lcg_uniform(&seed);
        int e = (int)((lcg_uniform(&seed) + 1.0f) * 6.5f) - 8;   // -8 .. 4
        x[i] = __float2bfloat16(ldexpf(m, e));
    }
}

// makes the order of the sums show in the bf16 results: the middle of the
// K >= 3 occurrences of token 0 in inp (B*T,) gets dout = -HUGE (all C
// channels) and dwte's row 0 starts at +HUGE. In the promised order (the old
// value, then increasing b*T+t) every contribution before that position is
// absorbed by HUGE (below half its fp32 ulp, 2^8), the two HUGEs cancel
// exactly, and the row ends as the sum of the later contributions; any other
// order (reversed bucket, old value last) keeps other terms. dwpe's row at
// that position's t starts at +HUGE too, for the same effect on its sum over b.
#define HUGE_GRAD 4294967296.0f   // 2^32, exact in bf16
static void plant_cancellation(floatX* dout, floatX* dwte, floatX* dwpe, const int* inp, int N, int T, int C) {
    int k = 0, mid = -1;
    for (int i = 0; i < N; i++) k += inp[i] == 0;
    if (k < 3) return;
    for (int i = 0, j = 0; i < N; i++)
        if (inp[i] == 0 && j++ == k / 2) mid = i;
    for (int c = 0; c < C; c++) {
        dout[(size_t)mid * C + c] = __float2bfloat16(-HUGE_GRAD);
        dwte[c] = __float2bfloat16(HUGE_GRAD);
        dwpe[(size_t)(mid % T) * C + c] = __float2bfloat16(HUGE_GRAD);
    }
}

static uint64_t fnv1a(uint64_t h, const floatX* x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned short u = __bfloat16_as_ushort(x[i]);
        h = (h ^ (u & 0xFFu)) * 1099511628211ull;
        h = (h ^ (u >> 8)) * 1099511628211ull;
    }
    return h;
}

// 0 if got (n,) has the bits of want (n,); else one error line naming the first mismatch
static int compare_bits(const char* what, int B, int T, int C, int V, const floatX* got, const floatX* want,
                        size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (__bfloat16_as_ushort(got[i]) != __bfloat16_as_ushort(want[i])) {
            fprintf(stderr,
                    "error: %s B=%d T=%d C=%d V=%d: mismatch at %zu (row %zu, channel %zu): got %.9g (0x%04x), "
                    "want %.9g (0x%04x), tolerance 0 (bit for bit)\n",
                    what, B, T, C, V, i, i / C, i % C, __bfloat162float(got[i]), __bfloat16_as_ushort(got[i]),
                    __bfloat162float(want[i]), __bfloat16_as_ushort(want[i]));
            return 1;
        }
    }
    return 0;
}

// reference of one encoder_backward: per element of dwte (V,C), fp32 sum of
// the old bf16 value then the contributions of dout (B,T,C) in increasing
// b*T+t; a token with more than ENCODER_BWD_SEGMENT positions in segments of
// that many (the first onto the old value, each later one from 0, the
// segments' sums added in order); per element of dwpe (maxT,C) the old value
// then increasing b; each rounded once; untouched rows keep their bits
static void encoder_backward_ref(floatX* dwte, floatX* dwpe, const floatX* dout, const int* inp, int B, int T, int C,
                                 int V, float* acc_wte, float* acc_wpe, char* touched) {
    int N = B * T;
    float* seg = (float*)xmalloc((size_t)C * sizeof(float));
    for (size_t i = 0; i < (size_t)T * C; i++) acc_wpe[i] = __bfloat162float(dwpe[i]);
    for (int i = 0; i < N; i++)   // increasing b*T+t
        for (int c = 0; c < C; c++) acc_wpe[(size_t)(i % T) * C + c] += __bfloat162float(dout[(size_t)i * C + c]);
    for (size_t i = 0; i < (size_t)T * C; i++) dwpe[i] = __float2bfloat16(acc_wpe[i]);
    memset(touched, 0, V);
    for (int v = 0; v < V; v++) {
        float* aw = acc_wte + (size_t)v * C;
        for (int c = 0; c < C; c++) aw[c] = __bfloat162float(dwte[(size_t)v * C + c]);
        int j = 0;   // v's occurrences so far
        for (int i = 0; i < N; i++) {
            if (inp[i] != v) continue;
            const floatX* d = dout + (size_t)i * C;
            if (j < ENCODER_BWD_SEGMENT) {   // the first segment: onto the old value
                for (int c = 0; c < C; c++) aw[c] += __bfloat162float(d[c]);
            } else {   // a later one: from 0, added when it ends
                if (j % ENCODER_BWD_SEGMENT == 0) memset(seg, 0, (size_t)C * sizeof(float));
                for (int c = 0; c < C; c++) seg[c] += __bfloat162float(d[c]);
            }
            j++;
            if (j > ENCODER_BWD_SEGMENT && j % ENCODER_BWD_SEGMENT == 0)
                for (int c = 0; c < C; c++) aw[c] += seg[c];
        }
        if (j > ENCODER_BWD_SEGMENT && j % ENCODER_BWD_SEGMENT != 0)   // the last, short segment
            for (int c = 0; c < C; c++) aw[c] += seg[c];
        touched[v] = j > 0;
        if (j > 0)
            for (int c = 0; c < C; c++) dwte[(size_t)v * C + c] = __float2bfloat16(aw[c]);
    }
    free(seg);
}

// ----------------------------------------------------------------------------
// check

static int check(int B, int T, int C, int V, uint32_t seed) {
    int N = B * T, maxT = T + MAXT_EXTRA;
    size_t NC = (size_t)N * C, VC = (size_t)V * C, TC = (size_t)maxT * C;
    int *inp = (int*)xmalloc(N * sizeof(int)), *inp2 = (int*)xmalloc(N * sizeof(int));
    floatX *wte = (floatX*)xmalloc(VC * sizeof(floatX)), *wpe = (floatX*)xmalloc(TC * sizeof(floatX));
    floatX *out = (floatX*)xmalloc(NC * sizeof(floatX)), *want = (floatX*)xmalloc(NC * sizeof(floatX));
    floatX *dout = (floatX*)xmalloc(NC * sizeof(floatX));
    floatX *dwte = (floatX*)xmalloc(VC * sizeof(floatX)), *dwpe = (floatX*)xmalloc(TC * sizeof(floatX));
    floatX *got_wte = (floatX*)xmalloc(VC * sizeof(floatX)), *got_wpe = (floatX*)xmalloc(TC * sizeof(floatX));
    float *acc_wte = (float*)xmalloc(VC * sizeof(float)), *acc_wpe = (float*)xmalloc(TC * sizeof(float));
    char* touched = (char*)xmalloc(V);
    int* host_scratch = (int*)xmalloc(encoder_backward_host_scratch_bytes(B, T, V));
    fill_tokens(inp, N, V, seed);
    fill_tokens(inp2, N, V, seed + 1);
    fill_bf16(wte, NULL, VC, 0.0f, 1.0f, seed + 2);
    fill_bf16(wpe, NULL, TC, 0.0f, 0.5f, seed + 3);
    fill_wide(dout, NC, seed + 4);
    fill_wide(dwte, VC, seed + 5);   // gradients of an earlier micro-step
    fill_wide(dwpe, TC, seed + 6);
    plant_cancellation(dout, dwte, dwpe, inp, N, T, C);
    int* d_inp;
    floatX *d_wte, *d_wpe, *d_out, *d_dout, *d_dwte, *d_dwpe;
    void* d_scratch;
    cudaCheck(cudaMalloc(&d_inp, N * sizeof(int)));
    cudaCheck(cudaMalloc(&d_wte, VC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_wpe, TC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dout, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dwte, VC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dwpe, TC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_scratch, encoder_backward_scratch_bytes(B, T, C)));
    cudaCheck(cudaMemcpy(d_inp, inp, N * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_wte, wte, VC * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_wpe, wpe, TC * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dout, dout, NC * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dwte, dwte, VC * sizeof(floatX), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_dwpe, dwpe, TC * sizeof(floatX), cudaMemcpyHostToDevice));
    int bad = 0;
    uint64_t h = 14695981039346656037ull;

    // forward
    encoder_forward(d_out, d_inp, d_wte, d_wpe, B, T, C, V, 0);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(out, d_out, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++)
            want[(size_t)i * C + c] = __float2bfloat16(__bfloat162float(wte[(size_t)inp[i] * C + c]) +
                                                       __bfloat162float(wpe[(size_t)(i % T) * C + c]));
    bad |= compare_bits("encoder_forward", B, T, C, V, out, want, NC);
    h = fnv1a(h, out, NC);
    // the same by blocks of rows of wte (the trainer's vocabulary chunks),
    // each from its own copy of its rows, over a NaN-filled out: every
    // position written once, the same bits
    int rows = (V + 2) / 3;
    cudaCheck(cudaMemset(d_out, 0xFF, NC * sizeof(floatX)));
    for (int v0 = 0; v0 < V; v0 += rows) {
        int v1 = v0 + rows < V ? v0 + rows : V;
        floatX* d_rows;
        cudaCheck(cudaMalloc(&d_rows, (size_t)(v1 - v0) * C * sizeof(floatX)));
        cudaCheck(cudaMemcpy(d_rows, wte + (size_t)v0 * C, (size_t)(v1 - v0) * C * sizeof(floatX),
                             cudaMemcpyHostToDevice));
        encoder_forward_rows(d_out, d_inp, d_rows, d_wpe, v0, v1, B, T, C, V, 0);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaFree(d_rows));
    }
    cudaCheck(cudaMemcpy(out, d_out, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
    bad |= compare_bits("encoder_forward_rows, blocks of rows", B, T, C, V, out, want, NC);

    // forward with bad ids at the first and last position: NaN rows there
    // (under ASan a read outside wte would be reported), the others as before
    if (N >= 2) {
        int i0 = inp[0], i1 = inp[N - 1];
        inp[0] = -1;
        inp[N - 1] = V;
        cudaCheck(cudaMemcpy(d_inp, inp, N * sizeof(int), cudaMemcpyHostToDevice));
        encoder_forward(d_out, d_inp, d_wte, d_wpe, B, T, C, V, 0);
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaMemcpy(out, d_out, NC * sizeof(floatX), cudaMemcpyDeviceToHost));
        for (int c = 0; c < C; c++) {
            want[c] = __ushort_as_bfloat16((unsigned short)ENCODER_NAN_BITS);
            want[(size_t)(N - 1) * C + c] = __ushort_as_bfloat16((unsigned short)ENCODER_NAN_BITS);
        }
        bad |= compare_bits("encoder_forward with bad token ids", B, T, C, V, out, want, NC);
        inp[0] = i0;
        inp[N - 1] = i1;
    }

    // backward, two micro-steps with different tokens, the same dout; both
    // compared (the second buries dwpe's row at the planted t under -2^32)
    // Step 2 by blocks of rows of dwte (the trainer's vocabulary chunks at
    // ZeRO-2/3): each block's rows in a buffer of their own, the same bits
    for (int step = 0; step < 2; step++) {
        const int* ids = step ? inp2 : inp;
        if (step == 0) {
            encoder_backward(d_dwte, d_dwpe, d_scratch, host_scratch, d_dout, ids, B, T, C, V, 0);
        } else {
            EncoderBuckets bk = encoder_backward_prepare(d_scratch, host_scratch, ids, B, T, V, 0);
            for (int v0 = 0; v0 < V; v0 += rows) {
                int v1 = v0 + rows < V ? v0 + rows : V;
                size_t bytes = (size_t)(v1 - v0) * C * sizeof(floatX);
                floatX* d_rows;
                cudaCheck(cudaMalloc(&d_rows, bytes));
                cudaCheck(cudaMemcpy(d_rows, d_dwte + (size_t)v0 * C, bytes, cudaMemcpyDeviceToDevice));
                encoder_backward_wte_rows(d_rows, v0, v1, d_scratch, d_dout, bk, B, T, C, 0);
                cudaCheck(cudaMemcpy(d_dwte + (size_t)v0 * C, d_rows, bytes, cudaMemcpyDeviceToDevice));
                cudaCheck(cudaFree(d_rows));
            }
            encoder_backward_wpe(d_dwpe, d_dout, B, T, C, 0);
        }
        cudaCheck(cudaDeviceSynchronize());
        encoder_backward_ref(dwte, dwpe, dout, ids, B, T, C, V, acc_wte, acc_wpe, touched);
        cudaCheck(cudaMemcpy(got_wte, d_dwte, VC * sizeof(floatX), cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(got_wpe, d_dwpe, TC * sizeof(floatX), cudaMemcpyDeviceToHost));
        bad |= compare_bits(step ? "encoder_backward dwte, step 2" : "encoder_backward dwte, step 1", B, T, C, V,
                            got_wte, dwte, VC);
        bad |= compare_bits(step ? "encoder_backward dwpe, step 2" : "encoder_backward dwpe, step 1", B, T, C, V,
                            got_wpe, dwpe, TC);
        h = fnv1a(h, got_wte, VC);
        h = fnv1a(h, got_wpe, TC);
    }
    if (!bad) {
        int ones = 0, most = 0;
        for (int v = 0; v < V; v++) {
            int n = 0;
            for (int i = 0; i < N; i++) n += inp[i] == v;
            ones += n == 1;
            if (n > most) most = n;
        }
        printf("encoder_forward, encoder_backward B=%d T=%d C=%d V=%d (most frequent token %d times, %d tokens "
               "once): bit for bit equal to the CPU reference, result bits fnv1a %016llx\n",
               B, T, C, V, most, ones, (unsigned long long)h);
    }

    cudaCheck(cudaFree(d_inp));
    cudaCheck(cudaFree(d_wte));
    cudaCheck(cudaFree(d_wpe));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_dwte));
    cudaCheck(cudaFree(d_dwpe));
    cudaCheck(cudaFree(d_scratch));
    free(inp); free(inp2); free(wte); free(wpe); free(out); free(want); free(dout);
    free(dwte); free(dwpe); free(got_wte); free(got_wpe); free(acc_wte); free(acc_wpe); free(touched);
    free(host_scratch);
    return bad;
}

// ----------------------------------------------------------------------------
// bench

#ifndef CUDA_EMU
static void bench(void) {
    int B = 8, T = 1024, C = 768, V = 50257, Vp = 50304, N = B * T;
    int* inp = (int*)xmalloc(N * sizeof(int));
    int* host_scratch = (int*)xmalloc(encoder_backward_host_scratch_bytes(B, T, V));
    // Zipf-like ids, as in text: log-uniform over [1, V], so a few tokens
    // occur hundreds of times and most once or never
    uint32_t seed = 42;
    for (int i = 0; i < N; i++) {
        int v = (int)expf((lcg_uniform(&seed) + 1.0f) * 0.5f * logf((float)V)) - 1;
        inp[i] = v < 0 ? 0 : v >= V ? V - 1 : v;
    }
    int* d_inp;
    floatX *d_wte, *d_wpe, *d_out, *d_dout, *d_dwte, *d_dwpe;
    void* d_scratch;
    size_t NC = (size_t)N * C, VC = (size_t)Vp * C, TC = (size_t)T * C;
    cudaCheck(cudaMalloc(&d_inp, N * sizeof(int)));
    cudaCheck(cudaMalloc(&d_wte, VC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_wpe, TC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_out, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dout, NC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dwte, VC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_dwpe, TC * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_scratch, encoder_backward_scratch_bytes(B, T, C)));
    cudaCheck(cudaMemcpy(d_inp, inp, N * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemset(d_wte, 0, VC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_wpe, 0, TC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dout, 0, NC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dwte, 0, VC * sizeof(floatX)));
    cudaCheck(cudaMemset(d_dwpe, 0, TC * sizeof(floatX)));

    auto t0 = std::chrono::steady_clock::now();
    EncoderBuckets bk = {0, 0, 0};
    for (int r = 0; r < 20; r++) bk = encoder_backward_buckets(host_scratch, inp, N, V);
    int U = bk.U;
    double host_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20.0;
    printf("encoder_backward host bucketing (B*T=%d, %d distinct tokens): %.4f ms on the CPU\n", N, U, host_ms);

    float f = bench_ms([&] { encoder_forward(d_out, d_inp, d_wte, d_wpe, B, T, C, V, 0); }, 100);
    float b = bench_ms([&] {
        encoder_backward(d_dwte, d_dwpe, d_scratch, host_scratch, d_dout, inp, B, T, C, V, 0);
    }, 100);
    // the device half alone, on buckets copied once (what the launcher costs
    // the GPU when the host half overlaps earlier GPU work)
    cudaCheck(cudaMemcpy(d_scratch, host_scratch, encoder_backward_used_ints(N, bk) * sizeof(int),
                         cudaMemcpyHostToDevice));
    float k = bench_ms([&] {
        encoder_backward_kernels(d_dwte, d_dwpe, d_scratch, d_dout, bk, B, T, C, 0);
    }, 100);
    // bytes from/to DRAM: forward reads the ids, a wte row per position (a
    // repeated token's row may come from cache; counted each time) and wpe,
    // writes out; backward reads dout twice (dwte and dwpe kernels), reads
    // and writes the touched rows of dwte and dwpe, and the buckets
    double bwd = 2.0 * NC * sizeof(floatX) + 2.0 * ((double)U * C + TC) * sizeof(floatX) +
                 encoder_backward_used_ints(N, bk) * 4.0;
    bench_report("encoder_forward", f, N * 4.0 + 2.0 * NC * sizeof(floatX) + TC * sizeof(floatX), 0);
    bench_report("encoder_backward", b, bwd, 0);
    bench_report("encoder_backward_kernels", k, bwd, 0);
    cudaCheck(cudaFree(d_inp));
    cudaCheck(cudaFree(d_wte));
    cudaCheck(cudaFree(d_wpe));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_dout));
    cudaCheck(cudaFree(d_dwte));
    cudaCheck(cudaFree(d_dwpe));
    cudaCheck(cudaFree(d_scratch));
    free(inp);
    free(host_scratch);
}
#endif

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "check";
    if (argc > 2 || (strcmp(mode, "check") && strcmp(mode, "bench") && strcmp(mode, "badc") &&
                     strcmp(mode, "badcbwd") && strcmp(mode, "badtoken"))) {
        fprintf(stderr, "error: usage: encoder [check|bench|badc|badcbwd|badtoken]\n");
        return 2;
    }
    if (!strcmp(mode, "badc") || !strcmp(mode, "badcbwd") || !strcmp(mode, "badtoken")) {
        int B = 1, T = 4, V = 5, C = strcmp(mode, "badtoken") ? 12 : 16;
        int ids[4] = {0, 1, 2, V};   // the last is bad
        floatX* d;
        int* di;
        void* s;
        int* hs = (int*)xmalloc(encoder_backward_host_scratch_bytes(B, T, V));
        cudaCheck(cudaMalloc(&d, 256 * sizeof(floatX)));
        cudaCheck(cudaMalloc(&di, 4 * sizeof(int)));
        cudaCheck(cudaMalloc(&s, encoder_backward_scratch_bytes(B, T, C)));
        cudaCheck(cudaMemset(di, 0, 4 * sizeof(int)));
        if (!strcmp(mode, "badc")) encoder_forward(d, di, d, d, B, T, C, V, 0);   // exits 1
        else encoder_backward(d, d + 128, s, hs, d, ids, B, T, C, V, 0);          // exits 1
        return 0;
    }
    int shapes[][4] = {{1, 1, 8, 3}, {2, 37, 264, 40}, {3, 50, 1000, 97}, {4, 64, 768, 1000}, {8, 100, 16, 20}};
    int bad = 0;
    for (int i = 0; i < 5; i++) bad |= check(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], 1234u + 10 * i);
    if (bad) return 1;
#ifndef CUDA_EMU
    if (!strcmp(mode, "bench")) bench();
#else
    emulated_bench_note(mode);
#endif
    return 0;
}
