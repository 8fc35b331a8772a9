// llmc/adamw.cuh: one AdamW step (decoupled weight decay, bias-corrected
// moments) on a contiguous tensor on the GPU, as gpt2_update in
// train_gpt2.c, with bf16 parameters and gradients, fp32 moments m and v and
// optional fp32 master weights:
//   g = grad * grad_scale                  (grad_scale < 1 clips by global norm)
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
//   mhat = m / (1 - beta1^t),  vhat = v / (1 - beta2^t)
//   w -= lr (mhat / (sqrt(vhat) + eps) + weight_decay w)
// where w is the fp32 master weight if there is one (then params =
// stochastic_round(master)), else the bf16 parameter read as fp32 (then
// params = stochastic_round(w)).
//
// Stochastic rounding to bf16 rounds up with probability (dropped part) /
// (bf16 spacing), so the rounding is unbiased and small updates are not lost
// (round to nearest would drop every update below half a bf16 ulp). Its 16
// random bits come from adamw_random_bits(seed, index), a counter-based hash
// of the seed and the element's index in the tensor: the same on the CPU and
// the device, and independent of the thread layout, so results are bitwise
// reproducible. Use a different seed per step (and per tensor, if tensors
// are updated by separate calls).
//
// Two kernels: adamw_vec_kernel, one thread per 8 elements with 128-bit
// accesses and a scalar tail (n arbitrary, pointers 16-byte aligned), and
// adamw_kernel, one thread per element with scalar accesses (any pointers);
// adamw_update picks. Memory-bound: 22 bytes of DRAM traffic per element, 28
// with master weights. Constraints (checked by the
// launcher): t >= 1 (the bias correction divides by 1 - beta^t), n small
// enough for one grid.
#ifndef LLMC_ADAMW_CUH
#define LLMC_ADAMW_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cuda_common.cuh"

#define ADAMW_BLOCK_SIZE 512   // threads per block: a memory-bound kernel, any multiple of 32 does

// ----------------------------------------------------------------------------
// stochastic rounding (host and device, so the CPU reference reproduces it)

// the murmur3 32-bit finaliser: every input bit flips each output bit with
// probability about 1/2
__host__ __device__ inline uint32_t adamw_mix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

// 32 random bits for element index of a tensor under seed: a hash of both,
// the same whatever thread computes it
__host__ __device__ inline uint32_t adamw_random_bits(uint32_t seed, uint64_t index) {
    uint32_t h = adamw_mix32(seed ^ 0x9e3779b9u ^ adamw_mix32((uint32_t)(index >> 32) + 0x7f4a7c15u));
    return adamw_mix32(h ^ (uint32_t)index);
}

__host__ __device__ inline uint32_t adamw_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// x rounded to bf16 stochastically with the low 16 bits of random: adding r
// in [0, 2^16) to the fp32 bits and dropping the low 16 rounds the magnitude
// up exactly when r >= 2^16 - (dropped bits), i.e. with probability
// (dropped bits) / 2^16. Infinities stay (their low bits are 0); NaN
// becomes the canonical 0x7FFF (its bits plus r could carry into the sign)
__host__ __device__ inline floatX adamw_stochastic_round(float x, uint32_t random) {
    uint32_t u = adamw_float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16((unsigned short)0x7fff);
    return __ushort_as_bfloat16((unsigned short)((u + (random & 0xffffu)) >> 16));
}

// 1 - beta^t, on the host in double, then rounded to fp32 once (the same
// value for the kernel and any reference)
static inline float adamw_bias_correction(float beta, int t) { return (float)(1.0 - pow((double)beta, (double)t)); }

// ----------------------------------------------------------------------------
// kernels

// the hyperparameters of one step, as the kernels take them; bc1, bc2 =
// 1 - beta1^t, 1 - beta2^t
struct AdamwStep {
    float lr, beta1, beta2, bc1, bc2, eps, weight_decay, grad_scale;
    uint32_t seed;
    uint64_t first;  // the index of element 0 in its tensor: the random bits follow the tensor's indices
};

// one element: updates m, v (fp32) from grad, returns the new weight w
// (fp32); the formula at the top of the file
__device__ __forceinline__ float adamw_element(float w, float grad, float& m, float& v, const AdamwStep& a) {
    float g = grad * a.grad_scale;
    m = a.beta1 * m + (1.0f - a.beta1) * g;
    v = a.beta2 * v + (1.0f - a.beta2) * g * g;
    float mhat = m / a.bc1, vhat = v / a.bc2;
    return w - a.lr * (mhat / (sqrtf(vhat) + a.eps) + a.weight_decay * w);
}

// element i of params (n,) bf16, master (n,) fp32 or NULL, grads (n,) bf16,
// m, v (n,) fp32, with scalar accesses
__device__ __forceinline__ void adamw_scalar(floatX* params, float* master, const floatX* grads, float* m, float* v,
                                             size_t i, const AdamwStep& a) {
    float mi = m[i], vi = v[i];
    float w = adamw_element(master ? master[i] : (float)params[i], (float)grads[i], mi, vi, a);
    m[i] = mi;
    v[i] = vi;
    if (master) master[i] = w;
    params[i] = adamw_stochastic_round(w, adamw_random_bits(a.seed, a.first + i));
}

// one thread per element, scalar accesses: any n, any alignment
__global__ void __launch_bounds__(ADAMW_BLOCK_SIZE)
    adamw_kernel(floatX* params, float* master, const floatX* grads, float* m, float* v, size_t n, AdamwStep a) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) adamw_scalar(params, master, grads, m, v, i, a);
}

// one thread per chunk of 8 elements with 128-bit accesses (one for 8 bf16,
// two for 8 fp32); the thread of chunk n / 8 does the n % 8 tail with scalar
// accesses. All pointers 16-byte aligned.
__global__ void __launch_bounds__(ADAMW_BLOCK_SIZE)
    adamw_vec_kernel(floatX* params, float* master, const floatX* grads, float* m, float* v, size_t n, AdamwStep a) {
    const int P = Pack128<floatX>::N, F = Pack128<float>::N;   // 8 bf16, 4 fp32 per access
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * P;
    if (i + P <= n) {
        Pack128<floatX> g = load128(grads + i), p;
        Pack128<float> m4[2] = {load128(m + i), load128(m + i + F)};
        Pack128<float> v4[2] = {load128(v + i), load128(v + i + F)};
        Pack128<float> w4[2];
        if (master) {
            w4[0] = load128(master + i);
            w4[1] = load128(master + i + F);
        } else {
            p = load128(params + i);
#pragma unroll
            for (int k = 0; k < P; k++) w4[k / F][k % F] = (float)p[k];
        }
#pragma unroll
        for (int k = 0; k < P; k++) {
            float w = adamw_element(w4[k / F][k % F], (float)g[k], m4[k / F][k % F], v4[k / F][k % F], a);
            w4[k / F][k % F] = w;
            p[k] = adamw_stochastic_round(w, adamw_random_bits(a.seed, a.first + i + k));
        }
        store128(m + i, m4[0]);
        store128(m + i + F, m4[1]);
        store128(v + i, v4[0]);
        store128(v + i + F, v4[1]);
        if (master) {
            store128(master + i, w4[0]);
            store128(master + i + F, w4[1]);
        }
        store128(params + i, p);
    } else if (i < n) {
        for (size_t k = i; k < n; k++) adamw_scalar(params, master, grads, m, v, k, a);
    }
}

// ----------------------------------------------------------------------------
// launchers

// one step with the scalar kernel (vectorized == 0) or the 128-bit one
// (vectorized == 1: all pointers must be 16-byte aligned); adamw_update
// picks. Both compute the same formula with the same random bits; results
// may differ in the last fp32 bits where the compiler fuses multiply-adds
// differently in the two.
static inline void adamw_launch(int vectorized, floatX* params, float* master, const floatX* grads, float* m,
                                float* v, size_t n, float lr, float beta1, float beta2, int t, float eps,
                                float weight_decay, float grad_scale, uint32_t seed, cudaStream_t stream,
                                uint64_t first = 0) {
    if (t < 1) {
        fprintf(stderr, "error: adamw_update: t = %d: steps count from 1\n", t);
        exit(1);
    }
    if (vectorized && ((uintptr_t)params | (uintptr_t)master | (uintptr_t)grads | (uintptr_t)m | (uintptr_t)v) % 16) {
        fprintf(stderr, "error: adamw_update: the vectorized kernel needs 16-byte-aligned pointers\n");
        exit(1);
    }
    size_t per_block = (size_t)ADAMW_BLOCK_SIZE * (vectorized ? Pack128<floatX>::N : 1);
    size_t blocks = (n + per_block - 1) / per_block;
    if (blocks > 0x7fffffffu) {
        fprintf(stderr, "error: adamw_update: n = %zu is too large for one launch\n", n);
        exit(1);
    }
    if (n == 0) return;
    AdamwStep a = {lr, beta1, beta2, adamw_bias_correction(beta1, t), adamw_bias_correction(beta2, t), eps,
                   weight_decay, grad_scale, seed, first};
    if (vectorized) adamw_vec_kernel<<<(unsigned)blocks, ADAMW_BLOCK_SIZE, 0, stream>>>(params, master, grads, m, v, n, a);
    else adamw_kernel<<<(unsigned)blocks, ADAMW_BLOCK_SIZE, 0, stream>>>(params, master, grads, m, v, n, a);
    cudaCheck(cudaGetLastError());
}

// one AdamW step at step t (1, 2, ...) on params (n,) bf16, master (n,) fp32
// (or NULL: then the update is computed on the bf16 params), grads (n,)
// bf16, m, v (n,) fp32 (zero before step 1); params, master, m, v are
// updated in place. The 128-bit kernel when every pointer is 16-byte aligned
// (cudaMalloc'ed buffers at offsets that are multiples of 8 elements), else
// the scalar one. `first`: the index in its tensor of element 0, when the
// update covers a slice of a tensor (ZeRO), so its random bits are the
// same as in an update of the whole tensor.
static inline void adamw_update(floatX* params, float* master, const floatX* grads, float* m, float* v, size_t n,
                                float lr, float beta1, float beta2, int t, float eps, float weight_decay,
                                float grad_scale, uint32_t seed, cudaStream_t stream, uint64_t first = 0) {
    int aligned = ((uintptr_t)params | (uintptr_t)master | (uintptr_t)grads | (uintptr_t)m | (uintptr_t)v) % 16 == 0;
    adamw_launch(aligned, params, master, grads, m, v, n, lr, beta1, beta2, t, eps, weight_decay, grad_scale, seed,
                 stream, first);
}

#endif // LLMC_ADAMW_CUH
