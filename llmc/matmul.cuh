// llmc/matmul.cuh: GPT-2's linear layers on the GPU, bf16 in and out with
// fp32 accumulation: out (BT,OC) = inp (BT,C) @ weight (OC,C)^T + bias (OC,),
// optionally followed by tanh-GELU (the MLP's fc), and the backward pass.
//
// Two implementations of the forward pass:
// - matmul_forward: cuBLASLt (tensor cores), bias and GELU fused into its
//   epilogue (CUBLASLT_EPILOGUE_BIAS, _GELU_AUX, _GELU_AUX_BIAS; the aux
//   output is the pre-GELU value). Under the CUDA emulation (CUDA_EMU) the
//   same functions run a CPU stand-in on the host-resident "device" memory
//   (fp32 accumulation in order of k, epilogue in fp32, one round to
//   nearest even to bf16), queued on the stream as cuBLASLt's kernel would
//   be, so the trainer runs emulated.
// - matmul_forward_tiled: our own kernel on the CUDA cores (the baseline
//   cuBLASLt is benched against in dev/cuda/matmul.cu; the trainer never calls it): 128x128 output tiles per block
//   of 256 threads, k in steps of 32 through shared memory (converted to fp32
//   once on the way in), each thread an 8x8 register tile; bias + GELU in the
//   epilogue.
// - matmul_forward_wmma: our own kernel on the tensor cores (nvcuda::wmma,
//   bf16 m16n16k16, fp32 accumulators; the CUDA emulation models wmma):
//   64x64 output tiles per block of 4 warps, each warp 32x32 as 2x2
//   fragments, A and B fragments loaded straight from global memory (no
//   shared-memory staging yet: the first step towards tensor-core kernels,
//   attention next, and a baseline to improve against cuBLASLt); the
//   epilogue goes through shared memory (fragment layouts are opaque).
// matmul_backward_dweight_f32: dweight += dout^T @ inp into an fp32 dweight
// (cuBLASLt with an fp32 output), for gradients summed over several calls.
// matmul_backward: dinp and dweight through cuBLASLt (beta = 1 accumulates
// dweight). For the fc_proj, whose input is GELU's output, dinp comes out
// already multiplied by gelu'(pre-GELU value): the fc's dout, from
// cuBLASLt's DGELU epilogue (rounded to bf16 once, and no separate pass over
// the (B,T,4C) tensors; where cuBLASLt offers no such algorithm,
// gelu_backward (llmc/gelu.cuh) in place afterwards). dbias, the column sums
// of dout, comes from the dweight GEMM's BGRADB epilogue, which sums dout's
// columns as the GEMM reads them (no pass of its own over dout: 9 C rows of
// B*T bf16 per layer): it overwrites a bf16 (OC,) vector, then added to
// dbias (the trainer accumulates over micro-steps), so dbias is rounded
// twice per call, as dweight is. Where that is off (dbias_apart, -ge 0) or
// cuBLASLt has no such algorithm, our own two-kernel fixed-order fp32 column
// sum (rounded once). Either way no atomics: bitwise reproducible.
//
// Which cuBLASLt algorithm: by default its heuristic's first, fixed for a
// shape, so two runs give the same bits. With matmul_ctx.autotune (the
// trainer's -at 1), the first call of each distinct call (shape, epilogue,
// alignment, beta) times the heuristic's first MATMUL_TUNE_CANDIDATES
// algorithms on the call's own operands and keeps the fastest for the rest of
// the run: faster where the heuristic guesses wrong, but the choice follows
// the timings, so two fresh runs may differ in bits. The trainer saves the
// choices with its checkpoints (llmc/autotune_file.h, matmul_autotune_save)
// and a run in the same output dir reads them back (matmul_autotune_load),
// so a resume runs the same algorithms as the run it continues.
//
// cuBLASLt is column-major: a row-major (R,K) matrix is a column-major
// (K,R) one. The context (handle + 32 MiB workspace) is one file-static
// MatmulContext, created by matmul_init() and freed by matmul_destroy(); the
// workspace is shared, so calls must not run concurrently on two streams.
//
// Constraints (checked by the launchers, which exit with a message):
// - cuBLASLt path (matmul_forward, matmul_backward): C and OC positive
//   multiples of 8 (16-byte rows for the tensor cores; the GELU aux leading
//   dimension must be a multiple of 8; gelu_backward works in 8-value
//   chunks), BT >= 0, bf16 pointers and scratch 16-byte aligned.
// - matmul_forward_tiled: C a positive multiple of 8 (128-bit loads along
//   k), any OC > 0 and BT >= 0 (partial tiles are bounds-checked), inp and
//   weight 16-byte aligned; BT <= 65535 * 128.
// - matmul_forward_wmma: BT, C, OC multiples of 16 (whole 16x16x16
//   fragments; wmma loads need 32-byte-aligned rows), pointers 32-byte
//   aligned; BT <= 65535 * 64.
// GPT-2's C = 768 .. 1600, OC = 3C, 4C, C, Vp all meet them.
#ifndef LLMC_MATMUL_CUH
#define LLMC_MATMUL_CUH

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "autotune_file.h"
#include "cast.cuh"
#include "cuda_common.cuh"
#include "gelu.cuh"
#ifndef CUDA_EMU
#include <cublasLt.h>
#include <mma.h>
#endif

#define MATMUL_WORKSPACE_BYTES (32u << 20)   // cuBLASLt workspace: 32 MiB (enough for its split-k on H100)
#define MATMUL_TUNE_CANDIDATES AUTOTUNE_MAX_CANDIDATES   // autotune: the heuristic's first 8, timed per call
#define MATMUL_TUNE_CALLS 64       // distinct calls remembered (a GPT-2 step makes about 20)
#define MATMUL_TUNE_REPEATS 5      // timed runs of each candidate, after one untimed
#define MATMUL_TILE_M 128       // rows of inp (BT) per block of the tiled kernel
#define MATMUL_TILE_N 128       // rows of weight (OC) per block
#define MATMUL_TILE_K 32        // k (C) per shared-memory step
#define MATMUL_TILED_THREADS 256   // 16 x 16 threads, each 8 x 8 outputs
#define MATMUL_DBIAS_ROWS 64    // rows of dout per block of the dbias partial sums
#define MATMUL_DBIAS_THREADS 256   // 8 warps; a lane sums 8 columns: 256 columns per block, one per thread
#define MATMUL_DBIAS_COLS (32 * 8)   // columns per block of the dbias partial sums (= MATMUL_DBIAS_THREADS)
#define MATMUL_DBIAS_FINISH_THREADS 256   // the finish kernel: one thread per column

// tanh-GELU as llmc/gelu.cuh (GPT-2), in fp32, host and device (the CPU
// stand-in and the tiled kernel's epilogue)
__host__ __device__ inline float matmul_gelu_tanh(float x) {
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

// ----------------------------------------------------------------------------
// context (cuBLASLt handle and workspace)

#ifndef CUDA_EMU
// every cuBLASLt call: names the call, file:line and the status, exits 1
#define cublasCheck(call) matmul_cublas_check((call), #call, __FILE__, __LINE__)
static inline void matmul_cublas_check(cublasStatus_t status, const char* what, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "error: cuBLASLt: %s failed at %s:%d: status %d\n", what, file, line, (int)status);
        exit(1);
    }
}
#endif

typedef struct {
    // autotune's choices (llmc/autotune_file.h): timed here, or read from the
    // file of an earlier run and resolved to an algorithm at the call's first use
    TunedChoice choices[MATMUL_TUNE_CALLS];
    int choice_count;
#ifndef CUDA_EMU
    cublasLtHandle_t handle;
    cublasLtMatmulAlgo_t algos[MATMUL_TUNE_CALLS];   // choices[i]'s algorithm, once resolved[i]
    int resolved[MATMUL_TUNE_CALLS];
#endif
    void* workspace;   // MATMUL_WORKSPACE_BYTES of device memory (emulated: unused, held as on a GPU)
    int ready;         // 1 between matmul_init() and matmul_destroy()
    int dgelu_apart;   // 1: gelu' by gelu_backward after the GEMM, as where cuBLASLt has no DGELU (-ge 0, tests)
    int dbias_apart;   // 1: dbias by our column-sum kernels, as where cuBLASLt has no BGRADB (-ge 0, tests)
    int autotune;      // 1: time the heuristic's candidates at each distinct call's first use (-at 1; no-op emulated)
} MatmulContext;

static MatmulContext matmul_ctx;

static inline void matmul_init(void) {
#ifndef CUDA_EMU
    cublasCheck(cublasLtCreate(&matmul_ctx.handle));
#endif
    cudaCheck(cudaMalloc(&matmul_ctx.workspace, MATMUL_WORKSPACE_BYTES));
    matmul_ctx.ready = 1;
}

static inline void matmul_destroy(void) {
    if (matmul_ctx.ready) {
        cudaCheck(cudaFree(matmul_ctx.workspace));
#ifndef CUDA_EMU
        cublasCheck(cublasLtDestroy(matmul_ctx.handle));
#endif
    }
    matmul_ctx.ready = 0;
    matmul_ctx.choice_count = 0;
}

// what an autotune file's choices are valid for: this GPU and cuBLASLt
// (emulated: the emulator's device name, library 0)
static inline void matmul_autotune_identity(char* device, size_t size, int* library) {
    int dev;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    snprintf(device, size, "%s", prop.name);
#ifndef CUDA_EMU
    *library = (int)cublasLtGetVersion();
#else
    *library = 0;
#endif
}

// -at 1: the choices of the run that wrote path (if it exists and was made
// on this GPU and cuBLASLt) are used instead of timing those calls again
static inline void matmul_autotune_load(const char* path) {
    char device[256];
    int library;
    matmul_autotune_identity(device, sizeof(device), &library);
    matmul_ctx.choice_count = autotune_file_read(path, device, library, matmul_ctx.choices, MATMUL_TUNE_CALLS);
#ifndef CUDA_EMU
    for (int i = 0; i < matmul_ctx.choice_count; i++) matmul_ctx.resolved[i] = 0;
#endif
    if (matmul_ctx.choice_count) printf("matmul autotune: %d choices read from %s\n", matmul_ctx.choice_count, path);
}

// -at 1: writes the choices made so far (and those read) to path
static inline void matmul_autotune_save(const char* path) {
    char device[256];
    int library;
    matmul_autotune_identity(device, sizeof(device), &library);
    autotune_file_write(path, device, library, matmul_ctx.choices, matmul_ctx.choice_count);
}

// ----------------------------------------------------------------------------
// kernels

// out (BT,OC) = inp (BT,C) @ weight (OC,C)^T + bias (OC,) (bias may be NULL);
// if pre_gelu != NULL, pre_gelu (BT,OC) = that and out = gelu(it) (GELU of the
// fp32 value; each output rounded to bf16 once). Block (x, y): rows
// y*128.. of out, columns x*128..; thread (tx, ty) = (tid % 16, tid / 16)
// owns rows ty*4 + {0..3} and 64 + ty*4 + {0..3}, columns tx*4 + {0..3}
// and 64 + tx*4 + {0..3} of the tile (two float4 reads per operand per k
// from shared memory).
__global__ void __launch_bounds__(MATMUL_TILED_THREADS)
    matmul_forward_tiled_kernel(floatX* out, floatX* pre_gelu, const floatX* inp, const floatX* weight,
                                const floatX* bias, int BT, int C, int OC) {
    // k-major tiles in fp32: a thread's 4 consecutive rows are one float4
    __shared__ __align__(16) float As[MATMUL_TILE_K][MATMUL_TILE_M];
    __shared__ __align__(16) float Bs[MATMUL_TILE_K][MATMUL_TILE_N];
    const int P = Pack128<floatX>::N;
    const int tid = (int)threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int m0 = (int)blockIdx.y * MATMUL_TILE_M, n0 = (int)blockIdx.x * MATMUL_TILE_N;
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < C; k0 += MATMUL_TILE_K) {
        // each tile is 128 rows x 4 chunks of 8 bf16 = 512 chunks: 2 per
        // thread per operand; row = chunk % 128 so a warp's shared stores
        // go to 32 different banks. Out-of-range rows and k chunks read as
        // zeros (C % 8 == 0: a chunk is all in or all out).
#pragma unroll
        for (int h = 0; h < (MATMUL_TILE_M * MATMUL_TILE_K / P) / MATMUL_TILED_THREADS; h++) {
            int chunk = tid + h * MATMUL_TILED_THREADS;
            int r = chunk % MATMUL_TILE_M, kc = (chunk / MATMUL_TILE_M) * P;
            int k = k0 + kc;
            Pack128<floatX> a, b;
            if (m0 + r < BT && k < C) a = load128(inp + (size_t)(m0 + r) * C + k);
            else
#pragma unroll
                for (int q = 0; q < P; q++) a[q] = __float2bfloat16(0.0f);
            if (n0 + r < OC && k < C) b = load128(weight + (size_t)(n0 + r) * C + k);
            else
#pragma unroll
                for (int q = 0; q < P; q++) b[q] = __float2bfloat16(0.0f);
#pragma unroll
            for (int q = 0; q < P; q++) {
                As[kc + q][r] = __bfloat162float(a[q]);
                Bs[kc + q][r] = __bfloat162float(b[q]);
            }
        }
        __syncthreads();
#pragma unroll 4
        for (int k = 0; k < MATMUL_TILE_K; k++) {
            float4 a0 = *reinterpret_cast<const float4*>(&As[k][ty * 4]);
            float4 a1 = *reinterpret_cast<const float4*>(&As[k][64 + ty * 4]);
            float4 b0 = *reinterpret_cast<const float4*>(&Bs[k][tx * 4]);
            float4 b1 = *reinterpret_cast<const float4*>(&Bs[k][64 + tx * 4]);
            float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();   // the tiles are overwritten by the next step
    }

#pragma unroll
    for (int i = 0; i < 8; i++) {
        int row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
        if (row >= BT) continue;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
            if (col >= OC) continue;
            float v = acc[i][j];
            if (bias != NULL) v += __bfloat162float(bias[col]);
            size_t idx = (size_t)row * OC + col;
            if (pre_gelu != NULL) {
                pre_gelu[idx] = __float2bfloat16(v);
                v = matmul_gelu_tanh(v);
            }
            out[idx] = __float2bfloat16(v);
        }
    }
}

#define MATMUL_WMMA_TILE 64      // output rows and columns per block of the wmma kernel
#define MATMUL_WMMA_THREADS 128  // 4 warps, each a 32x32 quarter of the tile

// out (BT,OC) = inp (BT,C) @ weight (OC,C)^T (+ bias, GELU) on the tensor
// cores. Block (x, y) owns the 64x64 tile at rows y*64, columns x*64; warp w
// its quarter (w / 2, w % 2), as 2x2 fragments of 16x16. B(k,n) =
// weight[n][k] is weight read column-major. A warp whose quarter lies past
// BT or OC skips it whole (warp-uniform: wmma is warp-wide).
__global__ void __launch_bounds__(MATMUL_WMMA_THREADS)
    matmul_forward_wmma_kernel(floatX* out, floatX* pre_gelu, const floatX* inp, const floatX* weight,
                               const floatX* bias, int BT, int C, int OC) {
    using namespace nvcuda;
    __shared__ __align__(32) float tile[4][32 * 32];   // each warp's accumulators, for the epilogue
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int m0 = (int)blockIdx.y * MATMUL_WMMA_TILE + (warp / 2) * 32;
    const int n0 = (int)blockIdx.x * MATMUL_WMMA_TILE + (warp % 2) * 32;
    if (m0 >= BT || n0 >= OC) return;   // whole warp: no barrier below, wmma is per warp
    // fragments inside (BT, OC): the loops below run to 2, unrolled, so the
    // fragment arrays stay in registers; the conditions skip the others
    const int mi = m0 + 16 < BT ? 2 : 1, nj = n0 + 16 < OC ? 2 : 1;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    for (int k = 0; k < C; k += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, floatX, wmma::row_major> a[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, floatX, wmma::col_major> b[2];
#pragma unroll
        for (int i = 0; i < 2; i++)
            if (i < mi) wmma::load_matrix_sync(a[i], inp + (size_t)(m0 + 16 * i) * C + k, C);
#pragma unroll
        for (int j = 0; j < 2; j++)
            if (j < nj) wmma::load_matrix_sync(b[j], weight + (size_t)(n0 + 16 * j) * C + k, C);
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 2; j++)
                if (i < mi && j < nj) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    float* t = tile[warp];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            if (i < mi && j < nj) wmma::store_matrix_sync(t + 16 * i * 32 + 16 * j, acc[i][j], 32, wmma::mem_row_major);
    __syncwarp();
    // epilogue: lane l handles column l of the warp's 32x32 quarter
    for (int r = 0; r < 16 * mi; r++) {
        int row = m0 + r, col = n0 + lane;
        if (lane >= 16 * nj) continue;
        float v = t[r * 32 + lane];
        if (bias != NULL) v += __bfloat162float(bias[col]);
        size_t idx = (size_t)row * OC + col;
        if (pre_gelu != NULL) {
            pre_gelu[idx] = __float2bfloat16(v);
            v = matmul_gelu_tanh(v);
        }
        out[idx] = __float2bfloat16(v);
    }
}

// partial[y][o] (gridDim.y, OC) fp32 = sum of dout[r][o] (BT,OC) over the
// rows r of chunk y (MATMUL_DBIAS_ROWS rows); block (x, y) sums columns
// x*256..: lane l of warp w sums the 8 columns x*256 + l*8.. over rows
// y*64 + w, + 8, ..., in order; then thread t adds the 8 warps' sums of
// column x*256 + t in warp order. Fixed order, no atomics.
__global__ void __launch_bounds__(MATMUL_DBIAS_THREADS)
    matmul_dbias_partial_kernel(float* partial, const floatX* dout, int BT, int OC) {
    const int P = Pack128<floatX>::N, WARPS = MATMUL_DBIAS_THREADS / 32;
    __shared__ float sums[MATMUL_DBIAS_THREADS / 32][MATMUL_DBIAS_COLS];
    int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32;
    int col0 = (int)blockIdx.x * MATMUL_DBIAS_COLS;
    int col = col0 + lane * P;
    float s[Pack128<floatX>::N];
#pragma unroll
    for (int k = 0; k < P; k++) s[k] = 0.0f;
    if (col < OC) {   // OC % 8 == 0: the chunk is all in or all out
        int r_end = ((int)blockIdx.y + 1) * MATMUL_DBIAS_ROWS;
        if (r_end > BT) r_end = BT;
        for (int r = (int)blockIdx.y * MATMUL_DBIAS_ROWS + warp; r < r_end; r += WARPS) {
            Pack128<floatX> d = load128(dout + (size_t)r * OC + col);
#pragma unroll
            for (int k = 0; k < P; k++) s[k] += __bfloat162float(d[k]);
        }
    }
#pragma unroll
    for (int k = 0; k < P; k++) sums[warp][lane * P + k] = s[k];
    __syncthreads();
    int c = (int)threadIdx.x;
    if (col0 + c < OC) {
        float t = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) t += sums[w][c];
        partial[(size_t)blockIdx.y * OC + col0 + c] = t;
    }
}

// dbias[o] (OC,) = bf16(dbias[o] + sum over the chunks y of partial[y][o]
// (chunks, OC)), in order of y; one thread per column
__global__ void __launch_bounds__(MATMUL_DBIAS_FINISH_THREADS)
    matmul_dbias_finish_kernel(floatX* dbias, const float* partial, int chunks, int OC) {
    int o = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (o >= OC) return;
    float t = 0.0f;
    for (int y = 0; y < chunks; y++) t += partial[(size_t)y * OC + o];
    dbias[o] = __float2bfloat16(__bfloat162float(dbias[o]) + t);
}

// ----------------------------------------------------------------------------
// cuBLASLt calls (column-major), or their CPU stand-in under the emulation

#ifndef CUDA_EMU
// autotune (matmul_ctx.autotune): the fastest of the heuristic's first
// MATMUL_TUNE_CANDIDATES algorithms for `call`, timed on its own operands
// once, then remembered; or, for a call whose choice was read from an
// earlier run's file, that candidate, if the heuristic lists as many as it
// did then. With beta != 0 each run adds into d, so d is saved first and put
// back after; an epilogue's bias or aux output is rewritten by the call that
// follows. `first` (the heuristic's first) where no memory is left to save d
// (remembered too: not tried again at every call), or MATMUL_TUNE_CALLS
// calls are already remembered.
static inline cublasLtMatmulAlgo_t matmul_tuned_algo(const MatmulCall* call, cublasLtMatmulDesc_t desc,
                                                     cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                                     cublasLtMatrixLayout_t ld, cublasLtMatmulPreference_t pref,
                                                     const void* a, const void* b, void* d, float beta,
                                                     cublasLtMatmulAlgo_t first, cudaStream_t stream) {
    int slot = 0;   // the call's place in the choices
    while (slot < matmul_ctx.choice_count && memcmp(&matmul_ctx.choices[slot].call, call, sizeof(*call)) != 0) slot++;
    if (slot < matmul_ctx.choice_count && matmul_ctx.resolved[slot]) return matmul_ctx.algos[slot];
    if (slot == MATMUL_TUNE_CALLS) return first;
    cublasLtMatmulHeuristicResult_t cand[MATMUL_TUNE_CANDIDATES];
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(matmul_ctx.handle, desc, la, lb, ld, ld, pref, MATMUL_TUNE_CANDIDATES,
                                               cand, &found));
    TunedChoice* t = &matmul_ctx.choices[slot];
    matmul_ctx.resolved[slot] = 1;
    if (slot < matmul_ctx.choice_count) {   // read from a file
        if (t->found == found) {
            matmul_ctx.algos[slot] = cand[t->candidate].algo;
            printf("matmul autotune: m %d n %d k %d epilogue %d: candidate %d of %d, as read\n", call->m, call->n,
                   call->k, call->epilogue, t->candidate + 1, found);
            return matmul_ctx.algos[slot];
        }
        printf("matmul autotune: m %d n %d k %d epilogue %d: %d candidates where the file had %d: timing again\n",
               call->m, call->n, call->k, call->epilogue, found, t->found);
    } else {
        matmul_ctx.choice_count++;
        t->call = *call;
    }
    t->candidate = 0;
    t->found = found > 0 ? found : 1;
    matmul_ctx.algos[slot] = first;
    size_t d_bytes = (size_t)call->m * call->n * (call->d_fp32 ? sizeof(float) : sizeof(floatX));
    void* saved = NULL;
    if (beta != 0.0f) {
        if (cudaMalloc(&saved, d_bytes) != cudaSuccess) {
            (void)cudaGetLastError();   // out of memory: not an error, just no tuning for this call
            return first;
        }
        cudaCheck(cudaMemcpyAsync(saved, d, d_bytes, cudaMemcpyDeviceToDevice, stream));
    }
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    float alpha = 1.0f, first_ms = 0.0f, best_ms = 0.0f;
    int best = -1;
    for (int i = 0; i < found; i++) {
        // one untimed run; an algorithm that cannot run here is passed over
        if (cublasLtMatmul(matmul_ctx.handle, desc, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &cand[i].algo,
                           matmul_ctx.workspace, MATMUL_WORKSPACE_BYTES, stream) != CUBLAS_STATUS_SUCCESS)
            continue;
        cudaCheck(cudaEventRecord(start, stream));
        for (int r = 0; r < MATMUL_TUNE_REPEATS; r++)
            cublasCheck(cublasLtMatmul(matmul_ctx.handle, desc, &alpha, a, la, b, lb, &beta, d, ld, d, ld,
                                       &cand[i].algo, matmul_ctx.workspace, MATMUL_WORKSPACE_BYTES, stream));
        cudaCheck(cudaEventRecord(stop, stream));
        cudaCheck(cudaEventSynchronize(stop));
        float ms;
        cudaCheck(cudaEventElapsedTime(&ms, start, stop));
        if (i == 0) first_ms = ms;
        if (best < 0 || ms < best_ms) best = i, best_ms = ms;
    }
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    if (saved != NULL) {
        cudaCheck(cudaMemcpyAsync(d, saved, d_bytes, cudaMemcpyDeviceToDevice, stream));
        cudaCheck(cudaStreamSynchronize(stream));
        cudaCheck(cudaFree(saved));
    }
    if (best >= 0) {
        t->candidate = best;
        matmul_ctx.algos[slot] = cand[best].algo;
        printf("matmul autotune: m %d n %d k %d epilogue %d: candidate %d of %d, %.2fx the speed of the heuristic's first\n",
               call->m, call->n, call->k, call->epilogue, best + 1, found, first_ms / best_ms);
    }
    return matmul_ctx.algos[slot];
}

// d (m,n) = op(a) (m,k) @ op(b) (k,n) + beta * d, column-major, op = transpose
// where asked, with the epilogue epi (bias (m,) and aux (m,n), ld m, where it
// uses them: GELU_AUX writes aux, DGELU reads it); d is bf16, or fp32 with
// d_fp32. Returns 1; where cuBLASLt has no algorithm for it, 0 without doing
// anything if may_fail (the caller has another way), else exits.
static inline int matmul_cublaslt(void* d, const floatX* a, const floatX* b, const floatX* bias, const floatX* aux,
                                  int m, int n, int k, int transa, int transb, float beta, cublasLtEpilogue_t epi,
                                  cudaStream_t stream, int d_fp32 = 0, int may_fail = 0) {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulPreference_t pref;
    cublasOperation_t opa = transa ? CUBLAS_OP_T : CUBLAS_OP_N, opb = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (bias != NULL)
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    if (aux != NULL) {
        int64_t aux_ld = m;
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux,
                                                   sizeof(aux)));
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld,
                                                   sizeof(aux_ld)));
    }
    // stored shapes: op(x) transposed means x is stored (k,m) / (n,k)
    cublasCheck(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, transa ? k : m, transa ? m : k, transa ? k : m));
    cublasCheck(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, transb ? n : k, transb ? k : n, transb ? n : k));
    cublasCheck(cublasLtMatrixLayoutCreate(&ld, d_fp32 ? CUDA_R_32F : CUDA_R_16BF, m, n, m));
    uint64_t ws = MATMUL_WORKSPACE_BYTES;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    // split-k partial sums only in fp32: INPLACE and OUTPUT_TYPE would add
    // them in the output type (bf16), rounding more than once
    uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                     sizeof(schemes)));
    // the heuristic assumes 256-byte aligned matrices unless told (a row of
    // a matrix, or a chunk of rows, may start only 16 bytes in)
    const void* mats[4] = {a, b, d, d};   // (C is D)
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    MatmulCall call = {m, n, k, transa, transb, (int)epi, d_fp32, beta != 0.0f, bias != NULL, aux != NULL, {0}};
    for (int i = 0; i < 4; i++) {
        uint32_t align = 256;
        while ((uintptr_t)mats[i] % align) align /= 2;
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &align, sizeof(align)));
        call.align[i] = align;
    }
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(matmul_ctx.handle, desc, la, lb, ld, ld, pref, 1, &heur, &found);
    int ok = status == CUBLAS_STATUS_SUCCESS && found > 0;   // (none fits: NOT_SUPPORTED, or SUCCESS and 0 found)
    if (!ok && !may_fail) {
        fprintf(stderr, "error: cuBLASLt: no algorithm for m = %d n = %d k = %d transa = %d transb = %d epilogue %d\n",
                m, n, k, transa, transb, (int)epi);
        exit(1);
    }
    if (ok && matmul_ctx.autotune)
        heur.algo = matmul_tuned_algo(&call, desc, la, lb, ld, pref, a, b, d, beta, heur.algo, stream);
    float alpha = 1.0f;
    if (ok)
        cublasCheck(cublasLtMatmul(matmul_ctx.handle, desc, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &heur.algo,
                                   matmul_ctx.workspace, MATMUL_WORKSPACE_BYTES, stream));
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    cublasCheck(cublasLtMatrixLayoutDestroy(la));
    cublasCheck(cublasLtMatrixLayoutDestroy(lb));
    cublasCheck(cublasLtMatrixLayoutDestroy(ld));
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    return ok;
}
#else
// What a stand-in reads and writes, n elements at p (none if p is NULL), for
// the emulation's race check: it runs on the host, in its stream's name
template <class T> static inline void matmul_emu_reads(const T* p, size_t n) { if (p) emu::op_reads(p, n * sizeof(T)); }
template <class T> static inline void matmul_emu_writes(T* p, size_t n) { if (p) emu::op_writes(p, n * sizeof(T)); }

// The stand-ins work on fp32 copies of their bf16 operands (the conversion is
// exact), laid out so that every sum runs along contiguous memory: the same
// sums in the same order as over the bf16 arrays, without a conversion per
// product. x (rows,cols) in fp32, or transposed (cols,rows).
static inline std::vector<float> matmul_emu_floats(const floatX* x, int rows, int cols, int transpose) {
    std::vector<float> f((size_t)rows * cols);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            f[transpose ? (size_t)j * rows + i : (size_t)i * cols + j] = __bfloat162float(x[(size_t)i * cols + j]);
    return f;
}

// out (n,m) fp32: out[i][j] = the sum over k of a[i][k] * b[j][k] (a (n,K), b
// (m,K)), each in order of k; four j at a time, four independent sums the
// CPU overlaps (each still in order)
static inline std::vector<float> matmul_emu_dots(const std::vector<float>& a, const std::vector<float>& b, int n,
                                                 int m, int K) {
    std::vector<float> out((size_t)n * m);
    for (int i = 0; i < n; i++) {
        const float* ai = &a[(size_t)i * K];
        float* oi = &out[(size_t)i * m];
        int j = 0;
        for (; j + 4 <= m; j += 4) {
            const float *b0 = &b[(size_t)j * K], *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
            float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
            for (int k = 0; k < K; k++) {
                float x = ai[k];
                v0 += x * b0[k];
                v1 += x * b1[k];
                v2 += x * b2[k];
                v3 += x * b3[k];
            }
            oi[j] = v0, oi[j + 1] = v1, oi[j + 2] = v2, oi[j + 3] = v3;
        }
        for (; j < m; j++) {
            const float* bj = &b[(size_t)j * K];
            float v = 0.0f;
            for (int k = 0; k < K; k++) v += ai[k] * bj[k];
            oi[j] = v;
        }
    }
    return out;
}

// the stand-in, row-major: out (BT,OC) = inp (BT,C) @ weight (OC,C)^T (+ bias
// (OC,)), fp32 sum in order of c; pre_gelu as in matmul_forward
static inline void matmul_emu_forward(floatX* out, floatX* pre_gelu, const floatX* inp, const floatX* weight,
                               const floatX* bias, int BT, int C, int OC) {
    matmul_emu_reads(inp, (size_t)BT * C);
    matmul_emu_reads(weight, (size_t)OC * C);
    matmul_emu_reads(bias, OC);
    matmul_emu_writes(pre_gelu, (size_t)BT * OC);
    matmul_emu_writes(out, (size_t)BT * OC);
    std::vector<float> y = matmul_emu_dots(matmul_emu_floats(inp, BT, C, 0), matmul_emu_floats(weight, OC, C, 0), BT,
                                           OC, C);
    for (int r = 0; r < BT; r++)
        for (int o = 0; o < OC; o++) {
            float v = y[(size_t)r * OC + o];
            if (bias != NULL) v += __bfloat162float(bias[o]);
            if (pre_gelu != NULL) {
                pre_gelu[(size_t)r * OC + o] = __float2bfloat16(v);
                v = matmul_gelu_tanh(v);
            }
            out[(size_t)r * OC + o] = __float2bfloat16(v);
        }
}

// the stand-in's dweight product (OC,C): for each o, c the sum over r of
// dout[r][o] * inp[r][c] (dout (BT,OC), inp (BT,C)), fp32 in order of r
static inline std::vector<float> matmul_emu_dweight(const floatX* dout, const floatX* inp, int BT, int C, int OC) {
    return matmul_emu_dots(matmul_emu_floats(dout, BT, OC, 1), matmul_emu_floats(inp, BT, C, 1), OC, C, BT);
}
#endif

// ----------------------------------------------------------------------------
// launchers

// exits with a message when the sizes or the bf16 pointers break the
// constraints of the cuBLASLt path (oc_multiple 8) or the tiled kernel (1)
static inline void matmul_check_args(const char* who, int BT, int C, int OC, int oc_multiple, const void* a,
                                     const void* b, const void* c, const void* d, const void* e) {
    const int P = Pack128<floatX>::N;
    if (!matmul_ctx.ready && oc_multiple > 1) {
        fprintf(stderr, "error: %s: matmul_init() was not called\n", who);
        exit(1);
    }
    if (C <= 0 || C % P != 0) {
        fprintf(stderr, "error: %s: C = %d is not a positive multiple of %d\n", who, C, P);
        exit(1);
    }
    if (OC <= 0 || OC % oc_multiple != 0) {
        fprintf(stderr, "error: %s: OC = %d is not a positive multiple of %d\n", who, OC, oc_multiple);
        exit(1);
    }
    if (BT < 0) {
        fprintf(stderr, "error: %s: BT = %d is negative\n", who, BT);
        exit(1);
    }
    if (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d | (uintptr_t)e) % 16 != 0) {
        fprintf(stderr, "error: %s: bf16 pointers must be 16-byte aligned\n", who);
        exit(1);
    }
}

// out (BT,OC) = inp (BT,C) @ weight (OC,C)^T + bias (OC,) (bias may be NULL);
// if pre_gelu != NULL: pre_gelu (BT,OC) = that, out = GELU(pre_gelu), tanh form
// (of the fp32 value). cuBLASLt (CPU stand-in under the emulation).
static inline void matmul_forward(floatX* out, floatX* pre_gelu, const floatX* inp, const floatX* weight,
                           const floatX* bias, int BT, int C, int OC, cudaStream_t stream) {
    matmul_check_args("matmul_forward", BT, C, OC, 8, out, pre_gelu, inp, weight, bias);
    if (BT == 0) return;
#ifndef CUDA_EMU
    cublasLtEpilogue_t epi = pre_gelu != NULL ? (bias != NULL ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                                              : (bias != NULL ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    // column-major: out^T (OC,BT) = (W^T (C,OC))^T @ X^T (C,BT), bias per row of out^T
    matmul_cublaslt(out, weight, inp, bias, pre_gelu, OC, BT, C, 1, 0, 0.0f, epi, stream);
#else
    emu::submit(stream, [=] { matmul_emu_forward(out, pre_gelu, inp, weight, bias, BT, C, OC); });
#endif
}

// the same with our tiled CUDA-core kernel; any OC > 0 (see the top)
static inline void matmul_forward_tiled(floatX* out, floatX* pre_gelu, const floatX* inp, const floatX* weight,
                                 const floatX* bias, int BT, int C, int OC, cudaStream_t stream) {
    matmul_check_args("matmul_forward_tiled", BT, C, OC, 1, inp, weight, inp, inp, inp);
    if (BT > 65535 * MATMUL_TILE_M) {
        fprintf(stderr, "error: matmul_forward_tiled: BT = %d is over %d\n", BT, 65535 * MATMUL_TILE_M);
        exit(1);
    }
    if (BT == 0) return;
    dim3 grid((OC + MATMUL_TILE_N - 1) / MATMUL_TILE_N, (BT + MATMUL_TILE_M - 1) / MATMUL_TILE_M);
    matmul_forward_tiled_kernel<<<grid, MATMUL_TILED_THREADS, 0, stream>>>(out, pre_gelu, inp, weight, bias, BT, C,
                                                                          OC);
    cudaCheck(cudaGetLastError());
}

// the same on the tensor cores through our wmma kernel; BT, C, OC multiples
// of 16 (see the top)
static inline void matmul_forward_wmma(floatX* out, floatX* pre_gelu, const floatX* inp, const floatX* weight,
                                       const floatX* bias, int BT, int C, int OC, cudaStream_t stream) {
    if (BT < 0 || BT % 16 || C <= 0 || C % 16 || OC <= 0 || OC % 16) {
        fprintf(stderr, "error: matmul_forward_wmma: BT = %d, C = %d, OC = %d must be multiples of 16 (C, OC > 0)\n",
                BT, C, OC);
        exit(1);
    }
    if (((uintptr_t)out | (uintptr_t)pre_gelu | (uintptr_t)inp | (uintptr_t)weight) % 32) {
        fprintf(stderr, "error: matmul_forward_wmma: pointers must be 32-byte aligned\n");
        exit(1);
    }
    if (BT > 65535 * MATMUL_WMMA_TILE) {
        fprintf(stderr, "error: matmul_forward_wmma: BT = %d is over %d\n", BT, 65535 * MATMUL_WMMA_TILE);
        exit(1);
    }
    if (BT == 0) return;
    dim3 grid((OC + MATMUL_WMMA_TILE - 1) / MATMUL_WMMA_TILE, (BT + MATMUL_WMMA_TILE - 1) / MATMUL_WMMA_TILE);
    matmul_forward_wmma_kernel<<<grid, MATMUL_WMMA_THREADS, 0, stream>>>(out, pre_gelu, inp, weight, bias, BT, C, OC);
    cudaCheck(cudaGetLastError());
}

// bytes of the scratch matmul_backward needs: the dbias partial sums
// (ceil(BT/64), OC) fp32 of our kernels (cuBLASLt's bf16 (OC,) dbias takes
// less)
static inline size_t matmul_backward_scratch_bytes(int BT, int OC) {
    size_t chunks = ((size_t)BT + MATMUL_DBIAS_ROWS - 1) / MATMUL_DBIAS_ROWS;
    return chunks * OC * sizeof(float);
}

// dbias (OC,) += the column sums of dout (BT,OC) by our two kernels: fp32
// partial sums over 64-row chunks into scratch, then added in chunk order
static inline void matmul_dbias_apart(floatX* dbias, float* scratch, const floatX* dout, int BT, int OC,
                                      cudaStream_t stream) {
    if (BT > 65535 * MATMUL_DBIAS_ROWS) {   // the chunks are the grid's y
        fprintf(stderr, "error: matmul_dbias_apart: BT = %d is over %d\n", BT, 65535 * MATMUL_DBIAS_ROWS);
        exit(1);
    }
    int chunks = (BT + MATMUL_DBIAS_ROWS - 1) / MATMUL_DBIAS_ROWS;
    dim3 grid((OC + MATMUL_DBIAS_COLS - 1) / MATMUL_DBIAS_COLS, chunks);
    matmul_dbias_partial_kernel<<<grid, MATMUL_DBIAS_THREADS, 0, stream>>>(scratch, dout, BT, OC);
    cudaCheck(cudaGetLastError());
    matmul_dbias_finish_kernel<<<(OC + MATMUL_DBIAS_FINISH_THREADS - 1) / MATMUL_DBIAS_FINISH_THREADS,
                                 MATMUL_DBIAS_FINISH_THREADS, 0, stream>>>(dbias, scratch, chunks, OC);
    cudaCheck(cudaGetLastError());
}

// dinp (BT,C) = dout (BT,OC) @ weight (OC,C) (overwritten), times
// gelu'(inp_pre_gelu) (BT,C) element by element if inp_pre_gelu != NULL (the
// fc_proj: inp = gelu(inp_pre_gelu), so dinp is the fc's dout); dweight
// (OC,C) += dout^T @ inp (BT,C) (if dweight != NULL; matmul_backward_dweight_f32
// adds it into fp32 instead); dbias (OC,) += column sums of dout (if dbias !=
// NULL; in the dweight GEMM's epilogue, or by our kernels without dweight or
// with dbias_apart: see the top). scratch: 16-byte aligned,
// matmul_backward_scratch_bytes(BT, OC) bytes. cuBLASLt for dinp (gelu' in
// its epilogue) and dweight (CPU stand-in under the emulation), our kernels
// for the rest. Bitwise reproducible.
static inline void matmul_backward(floatX* dinp, floatX* dweight, floatX* dbias, const floatX* dout, const floatX* inp,
                            const floatX* weight, const floatX* inp_pre_gelu, float* scratch, int BT, int C, int OC,
                            cudaStream_t stream) {
    matmul_check_args("matmul_backward", BT, C, OC, 8, dinp, dweight, dout, inp, weight);
    matmul_check_args("matmul_backward", BT, C, OC, 8, dbias, inp_pre_gelu, scratch, inp, inp);
    if (scratch == NULL) {
        fprintf(stderr, "error: matmul_backward: scratch is NULL\n");
        exit(1);
    }
    if (BT == 0) return;
    // the epilogue's dbias: cuBLASLt's sums of dout's columns, (OC,) bf16 at the start of scratch
    int dbias_fused = dbias != NULL && dweight != NULL && !matmul_ctx.dbias_apart;
    floatX* bgrad = (floatX*)scratch;
#ifndef CUDA_EMU
    // column-major: dinp^T (C,BT) = W (C,OC) @ dout^T (OC,BT), times
    // gelu'(inp_pre_gelu^T (C,BT), ld C) in the DGELU epilogue
    if (inp_pre_gelu == NULL) {
        matmul_cublaslt(dinp, weight, dout, NULL, NULL, C, BT, OC, 0, 0, 0.0f, CUBLASLT_EPILOGUE_DEFAULT, stream);
    } else if (matmul_ctx.dgelu_apart || !matmul_cublaslt(dinp, weight, dout, NULL, inp_pre_gelu, C, BT, OC, 0, 0,
                                                          0.0f, CUBLASLT_EPILOGUE_DGELU, stream, 0, 1)) {
        static int told = 0;
        if (!matmul_ctx.dgelu_apart && !told++)
            printf("note: cuBLASLt has no DGELU epilogue for this shape: GELU's backward runs apart\n");
        matmul_cublaslt(dinp, weight, dout, NULL, NULL, C, BT, OC, 0, 0, 0.0f, CUBLASLT_EPILOGUE_DEFAULT, stream);
        gelu_backward(dinp, inp_pre_gelu, dinp, BT * C, stream);   // (dinp rounded twice)
    }
    // dweight^T (C,OC) += X (C,BT) @ (dout^T (OC,BT))^T, and with BGRADB
    // bgrad (OC,) = the sums of that B operand, dout, over k = BT. cuBLASLt
    // (seen on H200, CUDA 13) rounds the product to bf16 before it adds
    // beta * C, so dweight gets two roundings per call (dev/cuda/matmul.cu
    // allows for it)
    if (dbias_fused && !matmul_cublaslt(dweight, inp, dout, bgrad, NULL, C, OC, BT, 0, 1, 1.0f,
                                        CUBLASLT_EPILOGUE_BGRADB, stream, 0, 1)) {
        static int told = 0;
        if (!told++) printf("note: cuBLASLt has no BGRADB epilogue for this shape: dbias runs apart\n");
        dbias_fused = 0;
    }
    if (dweight != NULL && !dbias_fused)
        matmul_cublaslt(dweight, inp, dout, NULL, NULL, C, OC, BT, 0, 1, 1.0f, CUBLASLT_EPILOGUE_DEFAULT, stream);
#else
    int dgelu_apart = matmul_ctx.dgelu_apart;
    emu::submit(stream, [=] {
        matmul_emu_reads(dout, (size_t)BT * OC);
        matmul_emu_reads(weight, (size_t)OC * C);
        matmul_emu_reads(inp_pre_gelu, (size_t)BT * C);
        matmul_emu_writes(dinp, (size_t)BT * C);
        if (dweight != NULL) matmul_emu_reads(inp, (size_t)BT * C);
        matmul_emu_writes(dweight, (size_t)OC * C);
        if (dbias_fused) matmul_emu_writes(bgrad, OC);
        std::vector<float> di = matmul_emu_dots(matmul_emu_floats(dout, BT, OC, 0), matmul_emu_floats(weight, OC, C, 1),
                                                BT, C, OC);
        for (int r = 0; r < BT; r++)
            for (int c = 0; c < C; c++) {
                float v = di[(size_t)r * C + c];
                if (inp_pre_gelu != NULL) {   // apart: the GEMM's bf16 output times gelu'
                    float g = gelu_grad_tanh(__bfloat162float(inp_pre_gelu[(size_t)r * C + c]));
                    v = (dgelu_apart ? __bfloat162float(__float2bfloat16(v)) : v) * g;
                }
                dinp[(size_t)r * C + c] = __float2bfloat16(v);
            }
        if (dweight != NULL) {
            std::vector<float> dw = matmul_emu_dweight(dout, inp, BT, C, OC);
            for (size_t i = 0; i < dw.size(); i++)   // beta = 1, one rounding
                dweight[i] = __float2bfloat16(dw[i] + __bfloat162float(dweight[i]));
        }
        for (int o = 0; o < OC && dbias_fused; o++) {   // BGRADB: fp32 in order of r, one rounding
            float v = 0.0f;
            for (int r = 0; r < BT; r++) v += __bfloat162float(dout[(size_t)r * OC + o]);
            bgrad[o] = __float2bfloat16(v);
        }
    });
#endif
    if (dbias_fused) accumulate_bf16(dbias, bgrad, OC, stream);
    else if (dbias != NULL) matmul_dbias_apart(dbias, scratch, dout, BT, OC, stream);
}

// dweight (OC,C) fp32 += dout (BT,OC)^T @ inp (BT,C), summed and added in
// fp32 (no bf16 rounding: for a gradient accumulated over several calls, as
// the trainer's classifier does over its row chunks). cuBLASLt (CPU
// stand-in under the emulation); BT, C, OC and pointers as matmul_backward.
static inline void matmul_backward_dweight_f32(float* dweight, const floatX* dout, const floatX* inp, int BT, int C,
                                               int OC, cudaStream_t stream) {
    matmul_check_args("matmul_backward_dweight_f32", BT, C, OC, 8, dweight, dout, inp, inp, inp);
    if (BT == 0) return;
#ifndef CUDA_EMU
    matmul_cublaslt(dweight, inp, dout, NULL, NULL, C, OC, BT, 0, 1, 1.0f, CUBLASLT_EPILOGUE_DEFAULT, stream, 1);
#else
    emu::submit(stream, [=] {
        matmul_emu_reads(dout, (size_t)BT * OC);
        matmul_emu_reads(inp, (size_t)BT * C);
        matmul_emu_writes(dweight, (size_t)OC * C);
        std::vector<float> dw = matmul_emu_dweight(dout, inp, BT, C, OC);
        for (size_t i = 0; i < dw.size(); i++) dweight[i] += dw[i];
    });
#endif
}

// dinp (BT,C) fp32 += dout (BT,OC) @ weight (OC,C), summed and added in fp32
// (for an input gradient summed over several calls, as the trainer's
// classifier does over its vocabulary chunks at ZeRO-2/3). cuBLASLt (CPU
// stand-in under the emulation); BT, C, OC and pointers as matmul_backward.
static inline void matmul_backward_dinp_f32(float* dinp, const floatX* dout, const floatX* weight, int BT, int C,
                                            int OC, cudaStream_t stream) {
    matmul_check_args("matmul_backward_dinp_f32", BT, C, OC, 8, dinp, dout, weight, weight, weight);
    if (BT == 0) return;
#ifndef CUDA_EMU
    // column-major: dinp^T (C,BT) += W (C,OC) @ dout^T (OC,BT)
    matmul_cublaslt(dinp, weight, dout, NULL, NULL, C, BT, OC, 0, 0, 1.0f, CUBLASLT_EPILOGUE_DEFAULT, stream, 1);
#else
    emu::submit(stream, [=] {
        matmul_emu_reads(dout, (size_t)BT * OC);
        matmul_emu_reads(weight, (size_t)OC * C);
        matmul_emu_writes(dinp, (size_t)BT * C);
        std::vector<float> di = matmul_emu_dots(matmul_emu_floats(dout, BT, OC, 0), matmul_emu_floats(weight, OC, C, 1),
                                                BT, C, OC);
        for (size_t i = 0; i < di.size(); i++) dinp[i] += di[i];
    });
#endif
}

#endif // LLMC_MATMUL_CUH
