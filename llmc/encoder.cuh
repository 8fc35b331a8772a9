// llmc/encoder.cuh: GPT-2's input embedding on the GPU, forward and backward:
// out[b,t,:] = wte[inp[b,t],:] + wpe[t,:] (token plus position embedding),
// and the gradients of both tables, deterministically (as
// encoder_forward/encoder_backward in train_gpt2.c, bf16 in and out).
//
// Forward: one thread per 128-bit chunk of 8 bf16 of out; the two bf16 values
// are added in fp32 and rounded once to bf16 (round to nearest even), so the
// result is exactly what the host computes from the same bf16 values.
//
// Backward, deterministic (no float atomics; the same bits whatever order
// the threads run in): dwte[v] += the sum of dout[b,t] over the positions
// with inp[b,t] == v, dwpe[t] += the sum over b of dout[b,t]. Gradients
// accumulate across micro-steps, so each touched row is summed in fp32 in a
// fixed order and rounded once to bf16: its existing bf16 value first, then
// the contributions in increasing b*T+t order -- a token with more than
// ENCODER_BWD_SEGMENT positions in segments of that many: the first summed
// onto the existing value, each later one from 0, and the segments' sums
// added in order. Rows of dwte whose token does not occur are not touched
// (same bits as before). The positions are grouped by token on the host (a
// stable counting sort of the inputs, which the trainer has on the host
// anyway: the data loader fills them there), the buckets and their segments
// are copied to a device scratch buffer, and then one warp per (segment,
// 256-channel chunk) sums its positions sequentially: each of the 32 lanes
// owns 8 channels (one 128-bit chunk); a token of one segment is written
// there, the others' segment sums go to fp32 scratch and a second kernel
// adds them, a warp per (token, chunk). dwpe gets one thread per (t, 8
// channels), looping over b. A sum must be sequential for its fixed order,
// so a chain of dependent loads is as long as a segment, not as the most
// frequent token (in GPT-2 124M's batch of 65536 positions of text, a few
// thousand; the benchmark's 64 distinct ids: 1024 each, 0.9 ms of an H100's
// step with one warp per token).
//
// Constraints (checked by the launchers, "error: <launcher>: ..." and exit 1):
// C % 8 == 0 and C > 0 (whole 128-bit chunks), B, T >= 0, V > 0, B*T*C
// within int range for the indices, bf16 pointers 16-byte aligned (cudaMalloc
// gives 256 bytes; row offsets are multiples of C * 2 bytes). NOT checked:
// T <= maxT (the rows of wpe/dwpe; the caller knows maxT), and in the forward
// pass the token ids, which live on the device: validating them (0 <= id < V)
// is the caller's job on the host (e.g. where the data loader reads them). The forward kernel still never reads outside wte: a position whose
// id is not in [0, V) gets a NaN row, so the bad id shows in the loss. The
// backward launcher reads the ids on the host and exits on one outside
// [0, V).
#ifndef LLMC_ENCODER_CUH
#define LLMC_ENCODER_CUH

#include <stdint.h>
#include <string.h>
#include "cuda_common.cuh"

#define ENCODER_BLOCK_SIZE 256           // threads per block, forward and dwpe kernels
#define ENCODER_BWD_WARPS 4              // warps per block of the dwte kernel (128 threads)
#define ENCODER_BWD_CHUNK (32 * 8)       // channels per warp in the dwte kernel: 32 lanes x 8 bf16
#define ENCODER_BWD_PREFETCH 4           // dout chunks a lane loads before it adds them (in order)
#define ENCODER_BWD_SEGMENT 64           // positions of one token one warp sums (a part of the summation order)
#define ENCODER_NAN_BITS 0x7FC0u         // bf16 quiet NaN, written for a token id outside [0, V)

// ----------------------------------------------------------------------------
// kernels

// out (B,T,C) = wte (V,C) [inp (B,T)] + wpe (maxT,C) [t] at the positions
// whose token is in the rows [v0, v1) of wte, which wte_rows holds (row v at
// (v - v0) * C); one thread per 8 channels of one position; N = B*T
__global__ void __launch_bounds__(ENCODER_BLOCK_SIZE)
    encoder_forward_kernel(floatX* out, const int* inp, const floatX* wte_rows, const floatX* wpe, int N, int T,
                           int C, int V, int v0, int v1) {
    const int P = Pack128<floatX>::N;
    int C8 = C / P;
    int idx = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (idx >= N * C8) return;   // no barrier in this kernel
    int bt = idx / C8, c = (idx - bt * C8) * P, t = bt % T;
    int tok = inp[bt];
    int bad = tok < 0 || tok >= V;
    if ((bad && v0 != 0) || (!bad && (tok < v0 || tok >= v1))) return;   // (another block of rows writes it)
    Pack128<floatX> y;
    if (!bad) {
        Pack128<floatX> w = load128(wte_rows + (size_t)(tok - v0) * C + c), p = load128(wpe + (size_t)t * C + c);
#pragma unroll
        for (int k = 0; k < P; k++) y[k] = (floatX)((float)w[k] + (float)p[k]);
    } else {
        // a bad id: nothing is read from wte (see the top of the file)
#pragma unroll
        for (int k = 0; k < P; k++) y[k] = __ushort_as_bfloat16((unsigned short)ENCODER_NAN_BITS);
    }
    store128(out + (size_t)bt * C + c, y);
}

// The buckets and segments of encoder_backward, on the device as built by
// encoder_backward_buckets on the host: pos (N,), the b*T+t of every
// position grouped by token, in increasing order within a token; starts
// (U+1,), token u's range pos[starts[u]] .. pos[starts[u+1]-1]; tokens (U,)
// their ids; segments (3S,): per segment (u, k, p), the k-th
// ENCODER_BWD_SEGMENT positions of token u and the index p of its fp32 sum
// in the partial sums (-1: the token's only segment, written to dwte
// directly); splits (2M,): per token of several segments (u, its first
// segment's p).
typedef struct {
    int U, S, M;   // tokens, segments, tokens of several segments
} EncoderBuckets;

// dwte row chunk += one segment's positions of dout (B,T,C) (see above).
// Warp w of the grid does segment w / nchunks, channels (w % nchunks) * 256
// + lane * 8 .. + 8, nchunks = ceil(C / 256), if its token is in the rows
// [v0, v1) of dwte that dwte_rows holds (row v at (v - v0) * C).
__global__ void __launch_bounds__(ENCODER_BWD_WARPS * 32)
    encoder_backward_wte_kernel(floatX* dwte_rows, float* partial, const floatX* dout, const int* pos,
                                const int* starts, const int* tokens, const int* segments, int S, int C, int v0,
                                int v1) {
    const int P = Pack128<floatX>::N;
    int nchunks = (C + ENCODER_BWD_CHUNK - 1) / ENCODER_BWD_CHUNK;
    int w = (int)(blockIdx.x * ENCODER_BWD_WARPS + threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    if (w >= S * nchunks) return;   // the ragged last block; no barrier in this kernel
    int s = w / nchunks, u = segments[3 * s], k = segments[3 * s + 1], p = segments[3 * s + 2];
    int c = (w - s * nchunks) * ENCODER_BWD_CHUNK + lane * P;
    if (c >= C || tokens[u] < v0 || tokens[u] >= v1) return;   // (C % 256 != 0: a short last chunk)
    floatX* row = dwte_rows + (size_t)(tokens[u] - v0) * C + c;
    float acc[P];
#pragma unroll
    for (int j = 0; j < P; j++) acc[j] = 0.0f;
    if (k == 0) {   // the existing gradient first
        Pack128<floatX> old = load128(row);
#pragma unroll
        for (int j = 0; j < P; j++) acc[j] = (float)old[j];
    }
    int i = starts[u] + k * ENCODER_BWD_SEGMENT, end = i + ENCODER_BWD_SEGMENT;
    if (end > starts[u + 1]) end = starts[u + 1];
    // ENCODER_BWD_PREFETCH loads in flight before their additions, which
    // still happen one position after the other, in bucket order
    for (; i + ENCODER_BWD_PREFETCH <= end; i += ENCODER_BWD_PREFETCH) {
        Pack128<floatX> d[ENCODER_BWD_PREFETCH];
#pragma unroll
        for (int q = 0; q < ENCODER_BWD_PREFETCH; q++) d[q] = load128(dout + (size_t)pos[i + q] * C + c);
#pragma unroll
        for (int q = 0; q < ENCODER_BWD_PREFETCH; q++)
#pragma unroll
            for (int j = 0; j < P; j++) acc[j] += (float)d[q][j];
    }
    for (; i < end; i++) {
        Pack128<floatX> d = load128(dout + (size_t)pos[i] * C + c);
#pragma unroll
        for (int j = 0; j < P; j++) acc[j] += (float)d[j];
    }
    if (p >= 0) {   // one of several segments: its fp32 sum, added by encoder_backward_wte_split_kernel
        float* out = partial + (size_t)p * C + c;
#pragma unroll
        for (int j = 0; j < P; j++) out[j] = acc[j];
        return;
    }
    Pack128<floatX> y;
#pragma unroll
    for (int j = 0; j < P; j++) y[j] = (floatX)acc[j];
    store128(row, y);
}

// dwte row chunk = the sum, in segment order, of a token's segments' fp32
// sums (the first holds the existing value); warp w does split token w /
// nchunks, channels as above, rows as above
__global__ void __launch_bounds__(ENCODER_BWD_WARPS * 32)
    encoder_backward_wte_split_kernel(floatX* dwte_rows, const float* partial, const int* starts, const int* tokens,
                                      const int* splits, int M, int C, int v0, int v1) {
    const int P = Pack128<floatX>::N;
    int nchunks = (C + ENCODER_BWD_CHUNK - 1) / ENCODER_BWD_CHUNK;
    int w = (int)(blockIdx.x * ENCODER_BWD_WARPS + threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    if (w >= M * nchunks) return;   // no barrier in this kernel
    int m = w / nchunks, u = splits[2 * m], p = splits[2 * m + 1];
    int c = (w - m * nchunks) * ENCODER_BWD_CHUNK + lane * P;
    if (c >= C || tokens[u] < v0 || tokens[u] >= v1) return;
    int segs = (starts[u + 1] - starts[u] + ENCODER_BWD_SEGMENT - 1) / ENCODER_BWD_SEGMENT;
    float acc[P];
#pragma unroll
    for (int j = 0; j < P; j++) acc[j] = partial[(size_t)p * C + c + j];
    for (int k = 1; k < segs; k++)
#pragma unroll
        for (int j = 0; j < P; j++) acc[j] += partial[(size_t)(p + k) * C + c + j];
    Pack128<floatX> y;
#pragma unroll
    for (int j = 0; j < P; j++) y[j] = (floatX)acc[j];
    store128(dwte_rows + (size_t)(tokens[u] - v0) * C + c, y);
}

// dwpe (maxT,C) rows 0..T-1 += the sum over b of dout (B,T,C) [b,t], in
// increasing b; one thread per 8 channels of one t
__global__ void __launch_bounds__(ENCODER_BLOCK_SIZE)
    encoder_backward_wpe_kernel(floatX* dwpe, const floatX* dout, int B, int T, int C) {
    const int P = Pack128<floatX>::N;
    int C8 = C / P;
    int idx = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (idx >= T * C8) return;   // no barrier in this kernel
    int t = idx / C8, c = (idx - t * C8) * P;
    floatX* row = dwpe + (size_t)t * C + c;
    Pack128<floatX> old = load128(row);
    float acc[P];
#pragma unroll
    for (int k = 0; k < P; k++) acc[k] = (float)old[k];
    for (int b = 0; b < B; b++) {
        Pack128<floatX> d = load128(dout + ((size_t)b * T + t) * C + c);
#pragma unroll
        for (int k = 0; k < P; k++) acc[k] += (float)d[k];
    }
    Pack128<floatX> y;
#pragma unroll
    for (int k = 0; k < P; k++) y[k] = (floatX)acc[k];
    store128(row, y);
}

// ----------------------------------------------------------------------------
// launchers

// exits with a message when the sizes or the bf16 pointers break the
// kernels' constraints
static inline void encoder_check_args(const char* who, int B, int T, int C, int V, const void* a, const void* b,
                                      const void* c) {
    if (C <= 0 || C % Pack128<floatX>::N != 0) {
        fprintf(stderr, "error: %s: C = %d is not a positive multiple of %d\n", who, C, Pack128<floatX>::N);
        exit(1);
    }
    if (B < 0 || T < 0 || V <= 0) {
        fprintf(stderr, "error: %s: B = %d, T = %d, V = %d: B and T must be >= 0, V > 0\n", who, B, T, V);
        exit(1);
    }
    if ((long long)B * T * C > 0x7FFFFFFFLL) {
        fprintf(stderr, "error: %s: B*T*C = %lld is too large for int indices\n", who, (long long)B * T * C);
        exit(1);
    }
    if (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) % 16 != 0) {
        fprintf(stderr, "error: %s: bf16 pointers must be 16-byte aligned\n", who);
        exit(1);
    }
}

// The forward over a block of rows of wte: out (B,T,C) at the positions
// whose token is in [v0, v1), with wte_rows holding those rows of wte (its
// row v at (v - v0) * C); the other positions are left as they are. Called
// for blocks of rows that cover [0, V) once each, it writes what
// encoder_forward does, bit for bit (a bad id's NaN row with the block at
// v0 = 0). (The GPU trainer's vocabulary chunks at ZeRO-2/3.)
static inline void encoder_forward_rows(floatX* out, const int* inp, const floatX* wte_rows, const floatX* wpe,
                                        int v0, int v1, int B, int T, int C, int V, cudaStream_t stream) {
    encoder_check_args("encoder_forward", B, T, C, V, out, wte_rows, wpe);
    int n = B * T * (C / Pack128<floatX>::N);
    if (n == 0) return;
    int grid = (n + ENCODER_BLOCK_SIZE - 1) / ENCODER_BLOCK_SIZE;
    encoder_forward_kernel<<<grid, ENCODER_BLOCK_SIZE, 0, stream>>>(out, inp, wte_rows, wpe, B * T, T, C, V, v0, v1);
    cudaCheck(cudaGetLastError());
}

// out (B,T,C), inp (B,T) on the device, wte (V,C), wpe (maxT,C) with
// T <= maxT. Token ids must be in [0, V): the caller validates them on the
// host; a bad one gives a NaN row of out, never a read outside wte.
static inline void encoder_forward(floatX* out, const int* inp, const floatX* wte, const floatX* wpe, int B, int T,
                                   int C, int V, cudaStream_t stream) {
    encoder_forward_rows(out, inp, wte, wpe, 0, V, B, T, C, V, stream);
}

// ints of the buckets and segments for N positions, at most: pos (N,),
// starts (U+1,), tokens (U,) with U <= N, segments (3S,) with S <= U + N /
// ENCODER_BWD_SEGMENT, splits (2M,) with M <= N / ENCODER_BWD_SEGMENT
static inline size_t encoder_backward_ints(int N) {
    size_t n = (size_t)N, per = n / ENCODER_BWD_SEGMENT;
    return n + (2 * n + 1) + 3 * (n + per) + 2 * per;
}

// fp32 values of the partial sums: a token of n > ENCODER_BWD_SEGMENT
// positions has ceil(n / seg) < 2 n / seg segments, so fewer than 2 N / seg
// rows of C
static inline size_t encoder_backward_partials(int N, int C) {
    return (2 * (size_t)N / ENCODER_BWD_SEGMENT + 1) * (size_t)C;
}

// where the partial sums start in the device scratch (16-byte aligned)
static inline size_t encoder_backward_partials_at(int N) {
    return (encoder_backward_ints(N) * sizeof(int) + 15) / 16 * 16;
}

// bytes of the device scratch of encoder_backward: the buckets and
// segments, then the partial sums
static inline size_t encoder_backward_scratch_bytes(int B, int T, int C) {
    return encoder_backward_partials_at(B * T) + encoder_backward_partials(B * T, C) * sizeof(float);
}

// bytes of the host scratch of encoder_backward: the buckets and segments,
// built there and copied over, plus a count per token (V,)
static inline size_t encoder_backward_host_scratch_bytes(int B, int T, int V) {
    return (encoder_backward_ints(B * T) + (size_t)V) * sizeof(int);
}

// the host half of encoder_backward: a stable counting sort of the
// positions i = b*T+t of inp_host (N,) by token, into host_scratch = pos (N,)
// | starts (U+1,) | tokens (U,) | segments (3S,) | splits (2M,) (see
// EncoderBuckets), back to back so that one copy moves them, then counts
// (V,) at encoder_backward_ints(N). tokens lists the distinct ids in order
// of first occurrence (any order of the buckets gives the same sums: each
// row is summed by itself), pos the positions of each token in increasing
// order. O(N) plus clearing counts. Exits on an id outside [0, V).
static inline EncoderBuckets encoder_backward_buckets(int* host_scratch, const int* inp_host, int N, int V) {
    int* pos = host_scratch;
    int* counts = host_scratch + encoder_backward_ints(N);
    int* tokens = pos + N;   // for now; moved behind starts once U is known
    memset(counts, 0, (size_t)V * sizeof(int));
    EncoderBuckets bk = {0, 0, 0};
    int U = 0;
    for (int i = 0; i < N; i++) {
        int v = inp_host[i];
        if (v < 0 || v >= V) {
            fprintf(stderr, "error: encoder_backward: token id %d at position %d is not in [0, V = %d)\n", v, i, V);
            exit(1);
        }
        if (counts[v]++ == 0) tokens[U++] = v;
    }
    // starts (U+1,) at pos + N, tokens (U,) after it: move tokens up first
    // (from the end: the ranges overlap)
    int* starts = pos + N;
    for (int u = U - 1; u >= 0; u--) starts[U + 1 + u] = tokens[u];
    tokens = starts + U + 1;
    int off = 0;
    for (int u = 0; u < U; u++) {
        int v = tokens[u], n = counts[v];
        starts[u] = off;
        counts[v] = off;   // from here on: the next free slot of v in pos
        off += n;
    }
    starts[U] = off;
    for (int i = 0; i < N; i++) pos[counts[inp_host[i]]++] = i;   // increasing i: stable
    // the segments, then the splits behind them (written at the end of the
    // scratch first, moved down once the segments' count is known)
    int* segments = tokens + U;
    int* splits = host_scratch + encoder_backward_ints(N) - 2 * ((size_t)N / ENCODER_BWD_SEGMENT);
    int S = 0, M = 0, partials = 0;
    for (int u = 0; u < U; u++) {
        int segs = (starts[u + 1] - starts[u] + ENCODER_BWD_SEGMENT - 1) / ENCODER_BWD_SEGMENT;
        if (segs > 1) {
            splits[2 * M] = u;
            splits[2 * M + 1] = partials;
            M++;
        }
        for (int k = 0; k < segs; k++, S++) {
            segments[3 * S] = u;
            segments[3 * S + 1] = k;
            segments[3 * S + 2] = segs > 1 ? partials++ : -1;
        }
    }
    memmove(segments + 3 * S, splits, 2 * (size_t)M * sizeof(int));
    bk.U = U;
    bk.S = S;
    bk.M = M;
    return bk;
}

// ints of the built buckets and segments (what is copied to the device)
static inline size_t encoder_backward_used_ints(int N, EncoderBuckets bk) {
    return (size_t)N + 2 * (size_t)bk.U + 1 + 3 * (size_t)bk.S + 2 * (size_t)bk.M;
}

// the dwte kernels on the buckets in scratch (as built by
// encoder_backward_buckets and copied there by encoder_backward_prepare),
// for the tokens in the rows [v0, v1) of dwte, which dwte_rows holds (row v
// at (v - v0) * C; the GPU trainer's vocabulary chunks at ZeRO-2/3)
static inline void encoder_backward_wte_rows(floatX* dwte_rows, int v0, int v1, void* scratch, const floatX* dout,
                                             EncoderBuckets bk, int B, int T, int C, cudaStream_t stream) {
    encoder_check_args("encoder_backward", B, T, C, 1, dwte_rows, dout, scratch);
    int N = B * T;
    const int* pos = (const int*)scratch;
    const int *starts = pos + N, *tokens = starts + bk.U + 1, *segments = tokens + bk.U;
    const int* splits = segments + 3 * bk.S;
    float* partial = (float*)((char*)scratch + encoder_backward_partials_at(N));
    int nchunks = (C + ENCODER_BWD_CHUNK - 1) / ENCODER_BWD_CHUNK;
    int grid = (bk.S * nchunks + ENCODER_BWD_WARPS - 1) / ENCODER_BWD_WARPS;
    if (grid == 0) return;
    encoder_backward_wte_kernel<<<grid, ENCODER_BWD_WARPS * 32, 0, stream>>>(dwte_rows, partial, dout, pos, starts,
                                                                              tokens, segments, bk.S, C, v0, v1);
    cudaCheck(cudaGetLastError());
    grid = (bk.M * nchunks + ENCODER_BWD_WARPS - 1) / ENCODER_BWD_WARPS;
    if (grid == 0) return;
    encoder_backward_wte_split_kernel<<<grid, ENCODER_BWD_WARPS * 32, 0, stream>>>(dwte_rows, partial, starts, tokens,
                                                                                    splits, bk.M, C, v0, v1);
    cudaCheck(cudaGetLastError());
}

// the dwpe kernel; sizes already checked
static inline void encoder_backward_wpe(floatX* dwpe, const floatX* dout, int B, int T, int C, cudaStream_t stream) {
    encoder_check_args("encoder_backward", B, T, C, 1, dwpe, dout, dout);
    int n = T * (C / Pack128<floatX>::N);
    if (n == 0) return;
    encoder_backward_wpe_kernel<<<(n + ENCODER_BLOCK_SIZE - 1) / ENCODER_BLOCK_SIZE, ENCODER_BLOCK_SIZE, 0,
                                  stream>>>(dwpe, dout, B, T, C);
    cudaCheck(cudaGetLastError());
}

// the device half of encoder_backward: the kernels, all of dwte
static inline void encoder_backward_kernels(floatX* dwte, floatX* dwpe, void* scratch, const floatX* dout,
                                            EncoderBuckets bk, int B, int T, int C, cudaStream_t stream) {
    encoder_backward_wte_rows(dwte, 0, 0x7FFFFFFF, scratch, dout, bk, B, T, C, stream);
    encoder_backward_wpe(dwpe, dout, B, T, C, stream);
}

// encoder_backward's buckets of inp_host (B,T) built in host_scratch and
// copied to scratch on stream (as below). Then encoder_backward_wte_rows
// for each block of rows of dwte and encoder_backward_wpe do what
// encoder_backward does.
static inline EncoderBuckets encoder_backward_prepare(void* scratch, int* host_scratch, const int* inp_host, int B,
                                                      int T, int V, cudaStream_t stream) {
    if ((uintptr_t)scratch % 16 != 0) {
        fprintf(stderr, "error: encoder_backward: scratch must be 16-byte aligned\n");
        exit(1);
    }
    int N = B * T;
    EncoderBuckets bk = {0, 0, 0};
    if (N == 0) return bk;
    bk = encoder_backward_buckets(host_scratch, inp_host, N, V);
    cudaCheck(cudaMemcpyAsync(scratch, host_scratch, encoder_backward_used_ints(N, bk) * sizeof(int),
                              cudaMemcpyHostToDevice, stream));
    return bk;
}

// dwte (V,C) += the sums of dout (B,T,C) per token of inp_host (B,T), dwpe
// (maxT,C) rows 0..T-1 += the sums of dout over b; deterministic (see the
// top of the file). inp_host: the same ids as the forward pass's, on the
// host; each must be in [0, V) (checked: exits with a message otherwise).
// scratch: device memory of encoder_backward_scratch_bytes(B, T, C) bytes;
// host_scratch: host memory of encoder_backward_host_scratch_bytes(B, T, V)
// bytes. The buckets go from
// host_scratch to scratch with cudaMemcpyAsync on stream: the caller must
// keep host_scratch alive and unchanged, and scratch unused by others, until
// the stream has synchronized after this call (from pageable memory CUDA
// copies to a staging buffer before it returns, but from pinned memory the
// copy reads host_scratch later, while the stream runs). dout must not alias
// dwte or dwpe.
static inline void encoder_backward(floatX* dwte, floatX* dwpe, void* scratch, int* host_scratch,
                                    const floatX* dout, const int* inp_host, int B, int T, int C, int V,
                                    cudaStream_t stream) {
    encoder_check_args("encoder_backward", B, T, C, V, dwte, dwpe, dout);
    EncoderBuckets bk = encoder_backward_prepare(scratch, host_scratch, inp_host, B, T, V, stream);
    encoder_backward_kernels(dwte, dwpe, scratch, dout, bk, B, T, C, stream);
}

#endif // LLMC_ENCODER_CUH
