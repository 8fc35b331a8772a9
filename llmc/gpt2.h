/*
 * gpt2.h: GPT-2 shapes, shared by both trainers and the tests.
 *
 * The model config, the depth descriptors (-e d12 ...), and the table of the
 * 16 parameter tensors in checkpoint order: name, shape, whether AdamW decays
 * it, and how it is initialised. Every parameter lives in one contiguous
 * buffer carved up by this table.
 */
#ifndef LLMC_GPT2_H
#define LLMC_GPT2_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "utils.h"

#define GPT2_MAX_SEQ_LEN 1024
#define GPT2_VOCAB_SIZE 50257
#define GPT2_EOT 50256
#define VOCAB_PAD_MULTIPLE 128  // padded vocab rows make the classifier matmul tile evenly
#define NUM_PARAMETER_TENSORS 16
#define INIT_STD 0.02
#define GPT2_FORWARD_ONLY (-1)  // gpt2_build's stage for sampling (-p): no gradients or AdamW state

typedef struct {
    int max_seq_len;        // maxT, 1024
    int vocab_size;         // V, 50257
    int padded_vocab_size;  // Vp, V rounded up to a multiple of 128
    int num_layers;         // L
    int num_heads;          // NH
    int channels;           // C
} GPT2Config;

static inline int pad_vocab(int V) {
    return ((V + VOCAB_PAD_MULTIPLE - 1) / VOCAB_PAD_MULTIPLE) * VOCAB_PAD_MULTIPLE;
}

// "d12" -> 124M. d12/d24/d36/d48 are GPT-2's four sizes; any other dN
// (1 <= N <= 64) has N layers, N heads and 64*N channels (head size 64).
// Returns 0 when `desc` is not a descriptor.
static inline int gpt2_config_from_descriptor(const char *desc, GPT2Config *c) {
    if (desc[0] != 'd' || desc[1] < '1' || desc[1] > '9') return 0;  // "d" and digits, no sign or 0
    char *end = NULL;
    long depth = strtol(desc + 1, &end, 10);
    if (*end != '\0' || depth < 1 || depth > 64) return 0;
    c->max_seq_len = GPT2_MAX_SEQ_LEN;
    c->vocab_size = GPT2_VOCAB_SIZE;
    c->padded_vocab_size = pad_vocab(GPT2_VOCAB_SIZE);
    c->num_layers = (int)depth;
    switch (depth) {
        case 12: c->num_heads = 12; c->channels = 768; break;   // 124M
        case 24: c->num_heads = 16; c->channels = 1024; break;  // 350M
        case 36: c->num_heads = 20; c->channels = 1280; break;  // 774M
        case 48: c->num_heads = 25; c->channels = 1600; break;  // 1558M
        default: c->num_heads = (int)depth; c->channels = 64 * (int)depth; break;
    }
    return 1;
}

// Checks a config read from a file; `source` names it in the error.
static inline void gpt2_config_validate(const GPT2Config *c, const char *source) {
    if (c->max_seq_len < 1 || c->max_seq_len > 1 << 20 || c->vocab_size < 1 ||
        c->vocab_size > 1 << 24 || c->num_layers < 1 || c->num_layers > 1024 ||
        c->num_heads < 1 || c->channels < 1 || c->channels > 1 << 16 ||
        c->channels % c->num_heads != 0 || c->padded_vocab_size < c->vocab_size ||
        c->padded_vocab_size > c->vocab_size + (1 << 16)) {
        fatal("%s holds an invalid model config: maxT=%d V=%d Vp=%d L=%d NH=%d C=%d", source,
              c->max_seq_len, c->vocab_size, c->padded_vocab_size, c->num_layers, c->num_heads,
              c->channels);
    }
}

// A batch shape (B,T) to build a model for: T at most max_seq_len, the rows of
// the position embedding wpe (the encoder reads row t for every t < T).
static inline void gpt2_check_batch_shape(const GPT2Config *c, int B, int T) {
    if (B < 1 || T < 1) fatal("batch (B,T) = (%d,%d): both must be at least 1", B, T);
    if (T > c->max_seq_len) {
        fatal("T=%d exceeds the model's maximum sequence length %d", T, c->max_seq_len);
    }
}

// Token ids of a batch (n inputs and, if not NULL, n targets) must index the
// vocabulary: the embedding and the classifier read rows by them.
static inline void gpt2_check_tokens(const int *inputs, const int *targets, int n, int V) {
    for (int i = 0; i < n; i++) {
        if (inputs[i] < 0 || inputs[i] >= V || (targets && (targets[i] < 0 || targets[i] >= V))) {
            fatal("token %d at position %d is outside the vocabulary (%d)",
                  inputs[i] < 0 || inputs[i] >= V ? inputs[i] : targets[i], i, V);
        }
    }
}

// ----------------------------------------------------------------------------
// the parameter table

typedef struct {
    float *wte;       // (Vp, C) token embedding, also the output head
    float *wpe;       // (maxT, C) position embedding
    float *ln1w;      // (L, C)
    float *ln1b;      // (L, C)
    float *qkvw;      // (L, 3*C, C)
    float *qkvb;      // (L, 3*C)
    float *attprojw;  // (L, C, C)
    float *attprojb;  // (L, C)
    float *ln2w;      // (L, C)
    float *ln2b;      // (L, C)
    float *fcw;       // (L, 4*C, C)
    float *fcb;       // (L, 4*C)
    float *fcprojw;   // (L, C, 4*C)
    float *fcprojb;   // (L, C)
    float *lnfw;      // (C)
    float *lnfb;      // (C)
} ParameterTensors;

static const char *const parameter_names[NUM_PARAMETER_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

// How each tensor starts: normal(0, 0.02), normal(0, 0.02/sqrt(2L)) for the
// projections into the residual stream, ones, or zeros.
typedef enum { INIT_NORMAL, INIT_NORMAL_RESIDUAL, INIT_ONES, INIT_ZEROS } ParamInit;
static const ParamInit parameter_init[NUM_PARAMETER_TENSORS] = {
    INIT_NORMAL, INIT_NORMAL, INIT_ONES, INIT_ZEROS, INIT_NORMAL, INIT_ZEROS,
    INIT_NORMAL_RESIDUAL, INIT_ZEROS, INIT_ONES, INIT_ZEROS, INIT_NORMAL, INIT_ZEROS,
    INIT_NORMAL_RESIDUAL, INIT_ZEROS, INIT_ONES, INIT_ZEROS};

// AdamW's weight decay applies to the 2-D weight matrices only
static inline int parameter_decays(int i) {
    return parameter_init[i] == INIT_NORMAL || parameter_init[i] == INIT_NORMAL_RESIDUAL;
}

// Layers each stacked tensor holds (1 for wte, wpe, lnfw, lnfb)
static inline int parameter_layers(const GPT2Config *c, int i) {
    return (i <= 1 || i >= 14) ? 1 : c->num_layers;
}

static inline void gpt2_parameter_sizes(const GPT2Config *c, size_t sizes[NUM_PARAMETER_TENSORS]) {
    size_t Vp = c->padded_vocab_size, C = c->channels, maxT = c->max_seq_len, L = c->num_layers;
    sizes[0] = Vp * C;           // wte
    sizes[1] = maxT * C;         // wpe
    sizes[2] = L * C;            // ln1w
    sizes[3] = L * C;            // ln1b
    sizes[4] = L * 3 * C * C;    // qkvw
    sizes[5] = L * 3 * C;        // qkvb
    sizes[6] = L * C * C;        // attprojw
    sizes[7] = L * C;            // attprojb
    sizes[8] = L * C;            // ln2w
    sizes[9] = L * C;            // ln2b
    sizes[10] = L * 4 * C * C;   // fcw
    sizes[11] = L * 4 * C;       // fcb
    sizes[12] = L * C * 4 * C;   // fcprojw
    sizes[13] = L * C;           // fcprojb
    sizes[14] = C;               // lnfw
    sizes[15] = C;               // lnfb
}

static inline size_t gpt2_num_parameters(const GPT2Config *c) {
    size_t sizes[NUM_PARAMETER_TENSORS], n = 0;
    gpt2_parameter_sizes(c, sizes);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) n += sizes[i];
    return n;
}

// The field of p that points at tensor i (checkpoint order)
static inline float **parameter_field(ParameterTensors *p, int i) {
    float **fields[NUM_PARAMETER_TENSORS] = {
        &p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb,
        &p->ln2w, &p->ln2b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb};
    return fields[i];
}

// Points the 16 tensors into `memory` (laid out in checkpoint order).
static inline void gpt2_point_parameters(ParameterTensors *p, float *memory,
                                         const size_t sizes[NUM_PARAMETER_TENSORS]) {
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        *parameter_field(p, i) = memory;
        memory += sizes[i];
    }
}

// GPT-2 initialisation from a seed, into the checkpoint-ordered buffer
// `params`. Tensors are visited in checkpoint order, stacked ones layer by
// layer; each normal tensor (slice) draws from one Mt19937 in turn. wte's
// padding rows stay zero. train_gpt2.py follows the same recipe.
static inline void gpt2_init_parameters(const GPT2Config *c, float *params, uint32_t seed) {
    size_t sizes[NUM_PARAMETER_TENSORS];
    gpt2_parameter_sizes(c, sizes);
    Mt19937 mt;
    mt_seed(&mt, seed);
    double residual_std = INIT_STD / sqrt(2.0 * c->num_layers);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        int layers = parameter_layers(c, i);
        size_t per_layer = sizes[i] / layers;
        for (int l = 0; l < layers; l++) {
            float *t = params + l * per_layer;
            size_t n = per_layer;
            if (i == 0) n = (size_t)c->vocab_size * c->channels;  // wte: real rows only
            switch (parameter_init[i]) {
                case INIT_NORMAL: normal_fill(&mt, t, (long)n, INIT_STD); break;
                case INIT_NORMAL_RESIDUAL: normal_fill(&mt, t, (long)n, residual_std); break;
                case INIT_ONES: for (size_t k = 0; k < n; k++) t[k] = 1.0f; break;
                case INIT_ZEROS: memset(t, 0, n * sizeof(float)); break;
            }
        }
        params += sizes[i];
    }
}

#endif  // LLMC_GPT2_H
