/*
 * sampler.h: picking the next token from logits, with temperature and top-k.
 *
 * Only the first V (real) entries of a logits row are considered: padded
 * vocabulary entries never appear in samples.
 */
#ifndef LLMC_SAMPLER_H
#define LLMC_SAMPLER_H

#include <math.h>
#include <stdlib.h>

#include "rand.h"
#include "utils.h"

// logits (V,), temperature > 0 (values near 0 approach greedy), top_k <= 0
// means the whole vocabulary. work is scratch of V floats. A logit that is
// not finite (weights that hold NaN or inf, or so large the forward
// overflows) is a fatal error, not a token picked from garbage.
static inline int sample_token(const float *logits, int V, float temperature, int top_k,
                               float *work, Rng64 *rng) {
    float maxv = -INFINITY;
    int argmax = 0;
    for (int i = 0; i < V; i++) {
        if (!isfinite(logits[i])) {
            fatal("sampling: logit %d is %g: the weights hold NaN or inf, or overflow the forward", i, logits[i]);
        }
        if (logits[i] > maxv) {
            maxv = logits[i];
            argmax = i;
        }
    }
    if (temperature <= 1e-6f || top_k == 1) return argmax;
    // threshold = the k-th largest logit (found by partial selection in work)
    float threshold = -INFINITY;
    if (top_k > 0 && top_k < V) {
        for (int i = 0; i < V; i++) work[i] = logits[i];
        int lo = 0, hi = V - 1, k = top_k - 1;  // quickselect for index k, descending
        while (lo < hi) {
            float pivot = work[(lo + hi) / 2];
            int i = lo, j = hi;
            while (i <= j) {
                while (work[i] > pivot) i++;
                while (work[j] < pivot) j--;
                if (i <= j) {
                    float t = work[i];
                    work[i] = work[j];
                    work[j] = t;
                    i++;
                    j--;
                }
            }
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else break;
        }
        threshold = work[k];
    }
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        work[i] = logits[i] >= threshold ? expf((logits[i] - maxv) / temperature) : 0.0f;
        sum += work[i];
    }
    double r = rng_uniform_f32(rng) * sum, cdf = 0.0;
    for (int i = 0; i < V; i++) {
        cdf += work[i];
        if (r < cdf) return i;
    }
    return argmax;  // rounding left r at the very top
}

#endif  // LLMC_SAMPLER_H
