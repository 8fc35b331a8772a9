// llmc/profile.cuh: where a training step's GPU time goes, by kernel
// family, for the GPU trainer's -pk 1 and scripts/gpu_validate.sh.
//
// A step runs from profile_begin_step to profile_end_step (what runs between
// steps, validation and samples, is not counted). Inside it the trainer calls
// profile_mark(p, FAMILY, stream) before the launches of each family; the
// device time between one mark and the next is charged to the first one's
// family (CUDA events on the stream, so it is device time, idle gaps
// included). Events are recorded without synchronising; the pool is drained
// (one synchronisation) when full and at the end of each step, so the cost is
// a few microseconds per mark. The first step (warm-up: cuBLASLt picks its
// algorithms) is left out of the means.
#ifndef LLMC_PROFILE_CUH
#define LLMC_PROFILE_CUH

#include <stdio.h>
#include "cuda_common.cuh"

#define PROFILE_MAX_MARKS 1024
#define PROFILE_MAX_FAMILIES 16

typedef struct {
    int enabled;
    int active;                            // inside a step
    int n;                                 // marks recorded and not yet drained
    cudaEvent_t events[PROFILE_MAX_MARKS];
    int family[PROFILE_MAX_MARKS];
    double ms[PROFILE_MAX_FAMILIES];       // summed over the steps after the first
    int steps;                             // ended steps, the first included
} Profile;

static inline void profile_init(Profile *p, int enabled) {
    memset(p, 0, sizeof(*p));
    p->enabled = enabled;
    if (!enabled) return;
    for (int i = 0; i < PROFILE_MAX_MARKS; i++) cudaCheck(cudaEventCreate(&p->events[i]));
}

static inline void profile_free(Profile *p) {
    if (!p->enabled) return;
    for (int i = 0; i < PROFILE_MAX_MARKS; i++) cudaCheck(cudaEventDestroy(p->events[i]));
    p->enabled = 0;
}

// charges the intervals between the recorded marks to their families and
// keeps the last mark as the start of the next interval
static inline void profile_drain(Profile *p) {
    if (p->n < 2) return;
    cudaCheck(cudaEventSynchronize(p->events[p->n - 1]));
    for (int i = 0; i + 1 < p->n; i++) {
        float ms;
        cudaCheck(cudaEventElapsedTime(&ms, p->events[i], p->events[i + 1]));
        p->ms[p->family[i]] += ms;
    }
    cudaEvent_t last = p->events[p->n - 1];
    p->events[p->n - 1] = p->events[0];
    p->events[0] = last;
    p->family[0] = p->family[p->n - 1];
    p->n = 1;
}

static inline void profile_begin_step(Profile *p) { p->active = p->enabled; }

// what follows on the stream, up to the next mark, belongs to family
static inline void profile_mark(Profile *p, int family, cudaStream_t stream) {
    if (!p->active) return;
    if (p->n == PROFILE_MAX_MARKS) profile_drain(p);
    p->family[p->n] = family;
    cudaCheck(cudaEventRecord(p->events[p->n], stream));
    p->n++;
}

// ends a step: the time since the last mark goes to that mark's family
static inline void profile_end_step(Profile *p, cudaStream_t stream) {
    if (!p->active || p->n == 0) return;
    int last_family = p->family[p->n - 1];
    profile_mark(p, last_family, stream);
    profile_drain(p);
    p->n = 0;   // the next step starts at its own first mark
    p->active = 0;
    if (p->steps++ == 0) memset(p->ms, 0, sizeof(p->ms));   // the warm-up step
}

// one line per family with time: ms per step and share of the total
static inline void profile_print(const Profile *p, const char *const *names, int families) {
    int steps = p->steps - 1;   // after the warm-up
    if (!p->enabled) return;
    if (steps < 1) {
        printf("profile: none: -pk 1 times the steps after the first, and this run made %d\n", p->steps);
        return;
    }
    double total = 0.0;
    for (int f = 0; f < families; f++) total += p->ms[f];
    printf("profile: GPU time per step by kernel family, mean of %d steps after the first: %.3f ms\n", steps,
           total / steps);
    for (int f = 0; f < families; f++) {
        if (p->ms[f] == 0.0) continue;
        printf("profile: %-16s %10.3f ms %5.1f%%\n", names[f], p->ms[f] / steps, 100.0 * p->ms[f] / total);
    }
}

#endif // LLMC_PROFILE_CUH
