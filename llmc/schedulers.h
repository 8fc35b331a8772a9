/*
 * schedulers.h: learning-rate schedules.
 *
 * All schedules warm up linearly over `warmup` steps from lr/warmup to lr,
 * then go from lr down to lr * final_frac by step max_steps - 1:
 *   cosine   - half a cosine wave
 *   linear   - a straight line
 *   constant - no decay (final_frac ignored)
 *   wsd      - warmup-stable-decay: constant, then linear decay over the last
 *              20% of the steps
 */
#ifndef LLMC_SCHEDULERS_H
#define LLMC_SCHEDULERS_H

#include <math.h>
#include <string.h>

#define WSD_DECAY_FRACTION 0.2f

typedef enum { LR_COSINE, LR_LINEAR, LR_CONSTANT, LR_WSD } LRScheduleType;

static const char *const lr_schedule_names[] = {"cosine", "linear", "constant", "wsd"};

// Returns the schedule named `name`, or -1 when there is none.
static inline int lr_schedule_from_name(const char *name) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, lr_schedule_names[i]) == 0) return i;
    }
    return -1;
}

typedef struct {
    LRScheduleType type;
    float lr;
    int warmup;
    int max_steps;
    float final_frac;
} LRScheduler;

static inline float lr_at_step(const LRScheduler *s, int step) {
    if (step < s->warmup) {
        return s->lr * (float)(step + 1) / (float)s->warmup;
    }
    float lr_min = s->lr * s->final_frac;
    int decay_start = s->warmup;
    if (s->type == LR_CONSTANT) return s->lr;
    if (s->type == LR_WSD) {
        int d = (int)(s->max_steps * (1.0f - WSD_DECAY_FRACTION));
        decay_start = d > s->warmup ? d : s->warmup;
        if (step < decay_start) return s->lr;
    }
    int span = s->max_steps - 1 - decay_start;
    // a one-step decay phase has nothing to decay over: it runs at the peak
    float progress = span > 0 ? (float)(step - decay_start) / (float)span : 0.0f;
    if (progress > 1.0f) progress = 1.0f;
    if (s->type == LR_COSINE) {
        return lr_min + 0.5f * (s->lr - lr_min) * (1.0f + cosf((float)M_PI * progress));
    }
    return s->lr - (s->lr - lr_min) * progress;  // linear, and the decay of wsd
}

#endif  // LLMC_SCHEDULERS_H
