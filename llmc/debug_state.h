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

#include "checkpoint.h"
#include "formats.h"
#include "gpt2.h"
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

// the "step loss grad_norm" lines of DIR/NAME, steps 0, 1, ... in order, each
// whole (ending in a newline) and finite; returns how many
static inline int read_steps(const char *dir, const char *name, float *loss, float *norm) {
    char path[4096], line[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen_check(path, "r");
    int steps = 0;
    while (fgets(line, sizeof(line), f)) {
        int idx, used = -1;
        if (steps == MAX_REF_STEPS) fatal("'%s' holds more than %d steps", path, MAX_REF_STEPS);
        if (sscanf(line, "%d %f %f%n", &idx, &loss[steps], &norm[steps], &used) != 3 || line[used] != '\n' ||
            !isfinite(loss[steps]) || !isfinite(norm[steps])) {
            fatal("'%s': line %d is not \"step loss grad_norm\" (finite numbers)", path, steps + 1);
        }
        if (idx != steps) fatal("'%s': line %d has step %d", path, steps + 1, idx);
        steps++;
    }
    fclose_check(f);
    if (steps == 0) fatal("'%s' holds no steps", path);
    return steps;
}

// Opens DIR/debug_state.bin for a model of config c: checks its header, its
// batch (against the model's maxT too) and size; returns it positioned at
// the inputs, and B, T.
static inline FILE *debug_state_open(const char *dir, const GPT2Config *c, int *B, int *T) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/debug_state.bin", dir);
    int32_t header[HEADER_INTS];
    const int versions[] = {DEBUG_STATE_VERSION};
    FILE *f = open_with_header(path, "debug state", DEBUG_STATE_MAGIC, versions, 1, header);
    *B = header[2];
    *T = header[3];
    if (*B < 1 || *T < 1 || *B > 1024 || *T > 65536) fatal("'%s' has B=%d T=%d", path, *B, *T);
    gpt2_check_batch_shape(c, *B, *T);
    long long BT = (long long)*B * *T, n = (long long)gpt2_num_parameters(c);
    check_file_size(f, path, "debug state", (long long)HEADER_BYTES + 4LL * (2 * BT + BT * c->vocab_size + 1 + n));
    return f;
}

// Checks the reference in DIR before a model is sized from it:
// model_fp32.bin and model_bf16.bin (v5) hold one config, and debug_state.bin
// the size that config and its batch make. Returns the batch shape B, T.
static inline void reference_check(const char *dir, int *B, int *T) {
    char fp32_path[4096], bf16_path[4096];
    snprintf(fp32_path, sizeof(fp32_path), "%s/model_fp32.bin", dir);
    snprintf(bf16_path, sizeof(bf16_path), "%s/model_bf16.bin", dir);
    GPT2Config c, bf16_c;
    int32_t header[HEADER_INTS];
    fclose_check(model_file_open(fp32_path, &c, header));
    fclose_check(model_file_open(bf16_path, &bf16_c, header));
    if (header[1] != MODEL_VERSION_BF16) fatal("'%s' is not a bf16 (v5) model file: version %d", bf16_path, header[1]);
    if (memcmp(&c, &bf16_c, sizeof(c)) != 0) {  // (six ints: no padding)
        fatal("'%s' and '%s' are models of different shapes", fp32_path, bf16_path);
    }
    fclose_check(debug_state_open(dir, &c, B, T));
}

// Reads DIR/debug_state.bin and the steps files for a model of config c.
static inline void debug_state_read(const char *dir, const GPT2Config *c, DebugState *d) {
    FILE *f = debug_state_open(dir, c, &d->B, &d->T);
    size_t V = (size_t)c->vocab_size, n = gpt2_num_parameters(c);
    char path[4096];
    snprintf(path, sizeof(path), "%s/debug_state.bin", dir);
    size_t BT = (size_t)d->B * d->T;
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

// --perturb NAME: the index of the parameter tensor NAME (checked before the
// forward and backward, which may take long)
static inline int perturbed_tensor(const char *name) {
    for (int k = 0; k < NUM_PARAMETER_TENSORS; k++) {
        if (strcmp(name, parameter_names[k]) == 0) return k;
    }
    fatal("--perturb: no parameter tensor named '%s'", name);
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
