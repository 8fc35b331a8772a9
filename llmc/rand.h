/*
 * rand.h: deterministic random numbers, identical in C and in train_gpt2.py.
 *
 * Two generators:
 * - Mt19937: the Mersenne Twister (standard init_genrand seeding), used for
 *   weight initialisation. normal_fill() turns its output into normal samples
 *   with a Box-Muller transform written down exactly (below), so the
 *   PyTorch reference, which runs the same recipe with numpy's legacy
 *   RandomState (also init_genrand + raw 32-bit outputs), gets the same
 *   weights from the same seed.
 * - splitmix64 (Rng64): small, fast, state is one uint64 that a training-state
 *   file can store; used for sampling and data shuffling.
 */
#ifndef LLMC_RAND_H
#define LLMC_RAND_H

#include <math.h>
#include <stdint.h>

// ----------------------------------------------------------------------------
// Mersenne Twister MT19937

#define MT_N 624
#define MT_M 397

typedef struct {
    uint32_t state[MT_N];
    int index;
} Mt19937;

static inline void mt_seed(Mt19937 *mt, uint32_t seed) {
    mt->state[0] = seed;
    for (int i = 1; i < MT_N; i++) {
        uint32_t prev = mt->state[i - 1];
        mt->state[i] = 1812433253u * (prev ^ (prev >> 30)) + (uint32_t)i;
    }
    mt->index = MT_N;
}

static inline uint32_t mt_next_u32(Mt19937 *mt) {
    if (mt->index >= MT_N) {  // regenerate the whole state block ("twist")
        for (int i = 0; i < MT_N; i++) {
            uint32_t y = (mt->state[i] & 0x80000000u) | (mt->state[(i + 1) % MT_N] & 0x7fffffffu);
            uint32_t next = mt->state[(i + MT_M) % MT_N] ^ (y >> 1);
            mt->state[i] = (y & 1u) ? next ^ 0x9908b0dfu : next;
        }
        mt->index = 0;
    }
    uint32_t y = mt->state[mt->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

// uniform in [0, 1) with 24 random bits (exact in float and double)
static inline double mt_uniform(Mt19937 *mt) {
    return (double)(mt_next_u32(mt) >> 8) * (1.0 / 16777216.0);
}

// Fills out[0..n) with normal(0, std) samples. Recipe (mirrored in
// train_gpt2.py): for each pair i, i+1: u1 = 1 - uniform() in (0,1],
// u2 = uniform(); r = sqrt(-2 ln u1); out[i] = (float)(r cos(2 pi u2) * std),
// out[i+1] = (float)(r sin(2 pi u2) * std); for odd n the last sine is
// dropped. All in double, rounded to float once.
static inline void normal_fill(Mt19937 *mt, float *out, long n, double std) {
    const double two_pi = 6.283185307179586;
    for (long i = 0; i < n; i += 2) {
        double u1 = 1.0 - mt_uniform(mt);
        double u2 = mt_uniform(mt);
        double r = sqrt(-2.0 * log(u1));
        out[i] = (float)(r * cos(two_pi * u2) * std);
        if (i + 1 < n) out[i + 1] = (float)(r * sin(two_pi * u2) * std);
    }
}

// ----------------------------------------------------------------------------
// splitmix64: one-word state, for sampling and shuffling

typedef struct {
    uint64_t state;
} Rng64;

static inline uint64_t rng_next_u64(Rng64 *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// uniform float in [0, 1)
static inline float rng_uniform_f32(Rng64 *r) {
    return (float)(rng_next_u64(r) >> 40) * (1.0f / 16777216.0f);
}

// uniform integer in [0, n), n > 0 (rejection sampling: no modulo bias)
static inline uint64_t rng_below(Rng64 *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rng_next_u64(r);
    } while (x >= limit);
    return x % n;
}

// Fisher-Yates shuffle of idx[0..n)
static inline void rng_shuffle(Rng64 *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

#endif  // LLMC_RAND_H
