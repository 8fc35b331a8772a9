// llmc/reference_steps.h: the AdamW-steps part of the reference tests
// (test_gpt2.c, test_gpt2.cu): from the reference weights, the trainer takes
// the steps train_gpt2.py took (the same batch each time, its optimizer
// settings) and each loss and gradient norm is compared with the
// reference's. Included after the trainer: it uses the model interface of
// llmc/train_loop.h (gpt2_build, gpt2_forward, ...) and llmc/debug_state.h.
#ifndef LLMC_REFERENCE_STEPS_H
#define LLMC_REFERENCE_STEPS_H

#include "debug_state.h"

// the optimizer settings of `train_gpt2.py reference` (its defaults)
#define REF_LR 1e-4f
#define REF_BETA1 0.9f
#define REF_BETA2 0.95f
#define REF_EPS 1e-8f
#define REF_WEIGHT_DECAY 0.1f
#define REF_GRAD_CLIP 1.0f

// ref->steps AdamW steps of a model built from model_path (B,T as the
// reference batch); reports the largest loss error (absolute) and grad
// norm error (relative) against tol_loss and tol_norm, label after the names
static inline void check_reference_steps(const char *model_path, const DebugState *ref, const char *label,
                                         double tol_loss, double tol_norm) {
    if (ref->steps == 0) return;
    GPT2 model;
    gpt2_build(&model, model_path, 0, ref->B, ref->T, NULL, 0);
    double max_loss_err = 0.0, max_norm_err = 0.0;
    for (int s = 0; s < ref->steps; s++) {
        gpt2_forward(&model, ref->x, ref->y, ref->B, ref->T);
        gpt2_zero_grad(&model);
        gpt2_backward(&model, 1.0f);
        float loss = gpt2_mean_loss(&model);
        float norm = gpt2_clip_grad_norm(&model, REF_GRAD_CLIP);
        gpt2_update(&model, REF_LR, REF_BETA1, REF_BETA2, REF_EPS, REF_WEIGHT_DECAY, s + 1);
        double le = fabs(loss - ref->step_loss[s]), ne = fabs(norm - ref->step_norm[s]) / ref->step_norm[s];
        printf("     step %2d: loss %.6f (ref %.6f), norm %.5f (ref %.5f)\n", s, loss, ref->step_loss[s], norm,
               ref->step_norm[s]);
        if (!(le <= max_loss_err)) max_loss_err = le;   // NaN sticks
        if (!(ne <= max_norm_err)) max_norm_err = ne;
    }
    gpt2_free(&model);
    char what[64];
    snprintf(what, sizeof(what), "%d-step losses%s", ref->steps, label);
    report(what, max_loss_err, tol_loss);
    snprintf(what, sizeof(what), "%d-step grad norms%s", ref->steps, label);
    report(what, max_norm_err, tol_norm);
}

#endif  // LLMC_REFERENCE_STEPS_H
