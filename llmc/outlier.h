// llmc/outlier.h: z-scores of a value against its recent history, for
// skipping the update of a step whose loss or gradient norm is an outlier
// (-sl / -sg, as llm.c's): z = (x - mean) / std over the last
// OUTLIER_WINDOW values before x. NaN until the window is full, so nothing
// is skipped early in a run (or right after a resume: the window is not in
// the state file and starts empty again).
#ifndef LLMC_OUTLIER_H
#define LLMC_OUTLIER_H

#include <math.h>

#define OUTLIER_WINDOW 128

typedef struct {
    double values[OUTLIER_WINDOW];
    int count;  // values seen, up to OUTLIER_WINDOW
    int next;   // where the next value goes
} OutlierDetector;

// the z-score of x against the window, then x joins the window
static inline double outlier_update(OutlierDetector *d, double x) {
    double z = NAN;
    if (d->count == OUTLIER_WINDOW) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < OUTLIER_WINDOW; i++) mean += d->values[i];
        mean /= OUTLIER_WINDOW;
        for (int i = 0; i < OUTLIER_WINDOW; i++) var += (d->values[i] - mean) * (d->values[i] - mean);
        double std = sqrt(var / OUTLIER_WINDOW);
        z = std > 0.0 ? (x - mean) / std : 0.0;
    }
    d->values[d->next] = x;
    d->next = (d->next + 1) % OUTLIER_WINDOW;
    if (d->count < OUTLIER_WINDOW) d->count++;
    return z;
}

#endif  // LLMC_OUTLIER_H
