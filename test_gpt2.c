/*
 * test_gpt2.c: checks the CPU trainer against the PyTorch reference.
 *
 * Reads the files `train_gpt2.py reference --out DIR` writes (model_fp32.bin,
 * model_bf16.bin, debug_state.bin, steps.txt) and checks, for the same
 * weights and batch: the logits, the loss, every parameter gradient, and
 * the losses and gradient norms of the first AdamW steps. Each comparison
 * prints its error; any error above its tolerance fails the test (exit 1).
 *
 * usage: test_gpt2 DIR [--init dN SEED] [--perturb TENSOR]
 *   --init dN SEED  also check that our init from descriptor dN and SEED is
 *                   bit for bit the reference's model_fp32.bin
 *   --perturb NAME  add an error to our gradient of NAME before comparing:
 *                   the test must then fail (proves it can)
 */
#define TESTING
#include "train_gpt2.c"
#include "llmc/debug_state.h"
#include "llmc/reference_steps.h"

// Errors are normalised by the largest magnitude in the reference tensor:
// max|ours - ref| / max|ref|. Both sides are fp32 and differ only in the
// order of their sums (blocked matmuls, OpenMP chunks vs MKL-DNN/OpenBLAS),
// so agreement is about sqrt(K) * 2^-24 relative for reductions of length K.
// fp32 forward: K <= 3072 -> ~1e-5 worst case; gradients go through more
// reductions in series (L layers of backward).
#define TOL_LOGITS 1e-5  // normalised; observed 5e-7 (d2), 1.1e-6 (d12)
#define TOL_LOSS 1e-5    // absolute, on a loss of ~10.8 (1e-6 relative)
#define TOL_GRAD 2e-5    // normalised, per tensor; observed <= 1e-6 (d2), 1.7e-6 (d12)
// AdamW divides by sqrt(v): for gradient elements near zero, tiny sum-order
// differences can change the update direction, so losses may drift apart
// over the steps; at lr 1e-4 over 10 steps the drift stays near fp32 noise.
#define TOL_STEP_LOSS 2e-5  // absolute; observed 1e-6
#define TOL_STEP_NORM 2e-5  // relative; observed 8e-7

static uint16_t bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    return (uint16_t)(u >> 16);
}

// --init's SEED: a whole number in 0..2^32-1, digits only
static uint32_t parse_seed(const char *text) {
    char *end = NULL;
    errno = 0;
    unsigned long long seed = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (!end || *end || errno || seed > UINT32_MAX) fatal("--init: seed '%s' is not a number in 0..4294967295", text);
    return (uint32_t)seed;
}

int main(int argc, char **argv) {
    check_omp_num_threads();
    if (argc < 2 || argv[1][0] == '-') fatal("usage: test_gpt2 DIR [--init dN SEED] [--perturb TENSOR]");
    const char *dir = argv[1];
    const char *init_desc = NULL;
    uint32_t init_seed = 0;
    int perturb = -1;  // the parameter tensor --perturb names
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--init") == 0) {
            GPT2Config unused;
            if (init_desc) fatal("--init given twice");
            if (i + 2 >= argc) fatal("--init needs a descriptor and a seed: --init dN SEED");
            init_desc = argv[++i];
            if (!gpt2_config_from_descriptor(init_desc, &unused)) {
                fatal("--init: '%s' is not a descriptor like d12", init_desc);
            }
            init_seed = parse_seed(argv[++i]);
        } else if (strcmp(argv[i], "--perturb") == 0) {
            if (perturb >= 0) fatal("--perturb given twice");
            if (i + 1 >= argc) fatal("--perturb needs a tensor name, e.g. --perturb wpe");
            perturb = perturbed_tensor(argv[++i]);
        } else {
            fatal("unknown argument '%s'", argv[i]);
        }
    }
    char path[4096];

    // the model, then the debug state (batch, logits, loss, gradients) and steps
    int B, T;
    reference_check(dir, &B, &T);
    char model_path[4096];
    snprintf(model_path, sizeof(model_path), "%s/model_fp32.bin", dir);
    GPT2 model;
    gpt2_build(&model, model_path, 0, B, T, NULL, 0);
    const GPT2Config *c = &model.config;
    int V = c->vocab_size, Vp = c->padded_vocab_size;
    size_t BT = (size_t)B * T, n = model.num_parameters;
    printf("reference %s: L=%d NH=%d C=%d, %.2fM parameters, B=%d T=%d\n", dir, c->num_layers,
           c->num_heads, c->channels, n / 1e6, B, T);
    DebugState ref;
    debug_state_read(dir, c, &ref);
    const int *x = ref.x, *y = ref.y;
    int failures = 0;

    // our init from the same seed must be the reference's weights, bit for bit
    if (init_desc) {
        GPT2 fresh;
        gpt2_build(&fresh, init_desc, init_seed, 1, 1, NULL, 0);
        if (memcmp(&fresh.config, c, sizeof(*c)) != 0) {
            printf("FAIL init %s: another shape than the reference's (%zu parameters, it has %zu)\n", init_desc,
                   fresh.num_parameters, n);
            failures++;
        } else {
            size_t diffs = 0;
            for (size_t i = 0; i < n; i++) diffs += memcmp(&fresh.params_memory[i], &model.params_memory[i], 4) != 0;
            printf("%-4s init %s seed %u == reference weights (%zu of %zu differ)\n", diffs ? "FAIL" : "ok",
                   init_desc, init_seed, diffs, n);
            failures += diffs != 0;
        }
        gpt2_free(&fresh);
    }

    // the bf16 file loads as the fp32 weights rounded to nearest even
    snprintf(path, sizeof(path), "%s/model_bf16.bin", dir);
    GPT2 bf;
    gpt2_build(&bf, path, 0, 1, 1, NULL, 0);
    size_t bf_bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t want = (uint32_t)bf16_round(model.params_memory[i]) << 16, got;
        memcpy(&got, &bf.params_memory[i], 4);
        bf_bad += got != want;
    }
    printf("%-4s bf16 checkpoint == rounded fp32 weights (%zu differ)\n", bf_bad ? "FAIL" : "ok", bf_bad);
    failures += bf_bad != 0;
    gpt2_free(&bf);

    // forward and backward on the reference batch
    gpt2_forward(&model, x, y, B, T);
    report("logits", normalised_error(model.acts.logits, Vp, ref.logits, V, BT), TOL_LOGITS);
    report("loss", fabs(gpt2_mean_loss(&model) - ref.loss), TOL_LOSS);
    printf("     loss: ours %.7f, reference %.7f\n", gpt2_mean_loss(&model), ref.loss);
    gpt2_zero_grad(&model);
    gpt2_backward(&model, 1.0f);
    size_t off = 0;
    for (int k = 0; k < NUM_PARAMETER_TENSORS; k++) {
        size_t size = model.param_sizes[k];
        if (k == perturb) model.grads_memory[off + size / 2] += 1e-2f;  // a plausible-looking bug
        char what[64];
        snprintf(what, sizeof(what), "grad %s", parameter_names[k]);
        report(what, normalised_error(model.grads_memory + off, size, ref.grads + off, size, 1),
               TOL_GRAD);
        off += size;
    }

    // the first AdamW steps, all on the same batch, from the reference
    // weights (the gradient above may be perturbed)
    gpt2_free(&model);
    check_reference_steps(model_path, &ref, "", TOL_STEP_LOSS, TOL_STEP_NORM);

    debug_state_free(&ref);
    failures += reference_failures;
    printf("%s: %d check(s) failed\n", failures ? "FAILED" : "all ok", failures);
    return failures ? 1 : 0;
}
