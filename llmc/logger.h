/*
 * logger.h: the metrics log of a run, as JSON lines in <output dir>/log.jsonl
 * (one object per event: {"step":..,"train_loss":..} or {"step":..,
 * "val_loss":..}), for plotting and for comparing runs. Appends on resume.
 * With no output dir, logging is off.
 */
#ifndef LLMC_LOGGER_H
#define LLMC_LOGGER_H

#include <stdio.h>

#include "utils.h"

typedef struct {
    FILE *f;  // NULL when logging is off
} Logger;

static inline void logger_init(Logger *lg, const char *output_dir, int resuming) {
    lg->f = NULL;
    if (output_dir == NULL || output_dir[0] == '\0') return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/log.jsonl", output_dir);
    lg->f = fopen_check(path, resuming ? "a" : "w");
}

static inline void logger_train(Logger *lg, int step, float loss, float lr, float norm, double ms,
                                double tokens_per_s) {
    if (!lg->f) return;
    fprintf(lg->f,
            "{\"step\":%d,\"train_loss\":%.6f,\"lr\":%.6e,\"grad_norm\":%.6f,\"ms\":%.2f,"
            "\"tokens_per_s\":%.1f}\n",
            step, loss, lr, norm, ms, tokens_per_s);
    fflush(lg->f);
}

static inline void logger_val(Logger *lg, int step, float val_loss) {
    if (!lg->f) return;
    fprintf(lg->f, "{\"step\":%d,\"val_loss\":%.6f}\n", step, val_loss);
    fflush(lg->f);
}

static inline void logger_hellaswag(Logger *lg, int step, double accuracy) {
    if (!lg->f) return;
    fprintf(lg->f, "{\"step\":%d,\"hellaswag_acc\":%.6f}\n", step, accuracy);
    fflush(lg->f);
}

static inline void logger_close(Logger *lg) {
    if (lg->f) fclose_check(lg->f);
    lg->f = NULL;
}

#endif  // LLMC_LOGGER_H
