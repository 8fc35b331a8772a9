// llmc/debug_state.h: the reference files `train_gpt2.py reference --out DIR`
// writes, read for the tests that hold a trainer to PyTorch (test_gpt2.c for
// the CPU, test_gpt2.cu for the GPU), and the comparisons they share.
//
//   DIR/debug_state.bin  header (magic, version, B, T), then inputs x (B,T)
//                        int32, targets y (B,T), logits (B,T,V) fp32, the
//                        loss, and every parameter's gradient (checkpoint
//                        order) fp32
//   DIR/steps.txt        "step loss grad_norm" of the first AdamW steps
//   DIR/steps_bf16.txt   the same steps with PyTorch's forward autocast to
//                        bf16: its own drift from steps.txt in bf16 (read
//                        where present: only the bf16 GPU test needs it)
#ifndef LLMC_DEBUG_STATE_H
#define LLMC_DEBUG_STATE_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "formats.h"
#include "utils.h"

#define MAX_REF_STEPS 100

typedef struct {
    int B, T;
    int *x, *y;      // (B,T) inputs and targets
    float *logits;   // (B,T,V)
    float loss;
    float *grads;    // (num_parameters,)
    int steps;       // lines of steps.txt
    float step_loss[MAX_REF_STEPS], step_norm[MAX_REF_STEPS];
    int bf16_steps;  // lines of steps_bf16.txt: as many, or 0 where there is none
    float bf16_step_loss[MAX_REF_STEPS], bf16_step_norm[MAX_REF_STEPS];
} DebugState;

// the "step loss grad_norm" lines of DIR/NAME; returns how many
static inline int read_steps(const char *dir, const char *name, float *loss, float *norm) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen_check(path, "r");
    int idx, steps = 0;
    while (steps < MAX_REF_STEPS && fscanf(f, "%d %f %f", &idx, &loss[steps], &norm[steps]) == 3) {
        if (idx != steps) fatal("'%s': line %d has step %d", path, steps + 1, idx);
        steps++;
    }
    fclose_check(f);
    if (steps == 0) fatal("'%s' holds no steps", path);
    return steps;
}

// B and T of DIR/debug_state.bin (to size a model before reading the rest)
static inline void debug_state_shape(const char *dir, int *B, int *T) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/debug_state.bin", dir);
    int32_t header[HEADER_INTS];
    const int versions[] = {DEBUG_STATE_VERSION};
    fclose_check(open_with_header(path, "debug state", DEBUG_STATE_MAGIC, versions, 1, header));
    *B = header[2];
    *T = header[3];
    if (*B < 1 || *T < 1 || *B > 1024 || *T > 65536) fatal("'%s' has B=%d T=%d", path, *B, *T);
}

// Reads DIR/debug_state.bin and the steps files for a model of V (unpadded)
// vocabulary and n parameters.
static inline void debug_state_read(const char *dir, int V, size_t n, DebugState *d) {
    debug_state_shape(dir, &d->B, &d->T);
    char path[4096];
    snprintf(path, sizeof(path), "%s/debug_state.bin", dir);
    int32_t header[HEADER_INTS];
    const int versions[] = {DEBUG_STATE_VERSION};
    FILE *f = open_with_header(path, "debug state", DEBUG_STATE_MAGIC, versions, 1, header);
    size_t BT = (size_t)d->B * d->T;
    check_file_size(f, path, "debug state", (long long)HEADER_BYTES + 4LL * (2 * BT + BT * V + 1 + n));
    d->x = (int *)malloc_check(BT * sizeof(int));
    d->y = (int *)malloc_check(BT * sizeof(int));
    d->logits = (float *)malloc_check(BT * V * sizeof(float));
    d->grads = (float *)malloc_check(n * sizeof(float));
    fread_check(d->x, sizeof(int), BT, f, path);
    fread_check(d->y, sizeof(int), BT, f, path);
    fread_check(d->logits, sizeof(float), BT * V, f, path);
    fread_check(&d->loss, sizeof(float), 1, f, path);
    fread_check(d->grads, sizeof(float), n, f, path);
    fclose_check(f);

    d->steps = read_steps(dir, "steps.txt", d->step_loss, d->step_norm);
    snprintf(path, sizeof(path), "%s/steps_bf16.txt", dir);
    d->bf16_steps = access(path, F_OK) == 0 ? read_steps(dir, "steps_bf16.txt", d->bf16_step_loss, d->bf16_step_norm) : 0;
    if (d->bf16_steps && d->bf16_steps != d->steps) {
        fatal("'%s': steps_bf16.txt and steps.txt hold different numbers of steps", dir);
    }
}

static inline void debug_state_free(DebugState *d) {
    free(d->x);
    free(d->y);
    free(d->logits);
    free(d->grads);
}

// ----------------------------------------------------------------------------
// comparing against the reference

static int reference_failures = 0;

// one line "ok|FAIL what error E (tolerance T)"; counts failures (NaN fails)
static inline void report(const char *what, double err, double tol) {
    int ok = err <= tol;
    printf("%-4s %-22s error %.3e (tolerance %.1e)\n", ok ? "ok" : "FAIL", what, err, tol);
    if (!ok) reference_failures++;
}

// max|a-b| / max|b| over rows of b_row values; a's rows may be longer than
// b's (logits are (B,T,Vp) ours vs (B,T,V) reference)
static inline double normalised_error(const float *a, size_t a_row, const float *b, size_t b_row, size_t rows) {
    double max_diff = 0.0, max_ref = 0.0;
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < b_row; i++) {
            double d = fabs((double)a[r * a_row + i] - b[r * b_row + i]);
            if (!(d <= max_diff)) max_diff = d;  // catches NaN
            double m = fabs((double)b[r * b_row + i]);
            if (m > max_ref) max_ref = m;
        }
    }
    return max_diff / (max_ref > 0 ? max_ref : 1.0);
}

#endif  // LLMC_DEBUG_STATE_H
