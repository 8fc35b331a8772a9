/*
 * hellaswag.h: HellaSwag accuracy during training (-hs FILE), as llm.c
 * measures it, from the file llm.c's dev/data/hellaswag.py writes.
 *
 * Each example is a context and 4 completions, one of them right. Each
 * completion becomes a row, context followed by completion; the model's
 * pick is the completion with the lowest mean loss over its own tokens (the
 * targets of positions ctx-1 .. ctx+len-2), and the accuracy is the fraction
 * of examples it picks right (chance: 25%).
 *
 * The file (GPT-2 tokens): a header of 256 int32 (magic 20240522, version 1,
 * number of examples, longest example in bytes), then the examples, each a
 * stream of uint16: 65535 (start), the example's size in bytes (all of it,
 * these two included), its index, the right completion (0..3), the number
 * of completions (4), the context length and tokens, then each completion's
 * length and tokens. Everything is checked on load; a bad file is a
 * one-line error.
 */
#ifndef LLMC_HELLASWAG_H
#define LLMC_HELLASWAG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

#define HELLASWAG_MAGIC 20240522
#define HELLASWAG_VERSION 1
#define HELLASWAG_COMPLETIONS 4

typedef struct {
    int label;                                 // the right completion
    int context_len;
    const uint16_t *context;                   // (context_len,)
    int len[HELLASWAG_COMPLETIONS];
    const uint16_t *completion[HELLASWAG_COMPLETIONS];
} HellaSwagExample;

typedef struct {
    int num_examples;             // those whose rows fit T: the ones scored
    int num_in_file;
    HellaSwagExample *examples;   // (num_examples,)
    uint16_t *data;  // the file's examples; the pointers above point into it
} HellaSwag;

// Whether e's longest row fits T tokens
static inline int hellaswag_fits(const HellaSwagExample *e, int T) {
    for (int c = 0; c < HELLASWAG_COMPLETIONS; c++) {
        if (e->context_len + e->len[c] - 1 > T) return 0;
    }
    return 1;
}

// The first of tokens (n,) at or past vocab_size, or -1
static inline int hellaswag_bad_token(const uint16_t *tokens, int n, int vocab_size) {
    for (int j = 0; j < n; j++) {
        if (tokens[j] >= vocab_size) return tokens[j];
    }
    return -1;
}

// Loads and checks path (every token below vocab_size); keeps the examples
// whose rows fit T
static inline void hellaswag_load(HellaSwag *h, const char *path, int vocab_size, int T) {
    memset(h, 0, sizeof(*h));
    FILE *f = fopen_check(path, "rb");
    int32_t header[256];
    if (fread(header, sizeof(header), 1, f) != 1) fatal("'%s' is shorter than a HellaSwag header", path);
    if (header[0] != HELLASWAG_MAGIC || header[1] != HELLASWAG_VERSION) {
        fatal("'%s' is not a HellaSwag file (magic %d, version %d; want %d, %d)", path, header[0], header[1],
              HELLASWAG_MAGIC, HELLASWAG_VERSION);
    }
    if (header[2] < 1) fatal("'%s' says it holds %d examples", path, header[2]);
    long long bytes = file_size_of(f) - (long long)sizeof(header);
    if (bytes <= 0 || bytes % 2) fatal("'%s': %lld bytes of examples, not whole uint16s", path, bytes);
    size_t n = (size_t)bytes / 2;
    h->data = (uint16_t *)malloc_check(n * sizeof(uint16_t));
    if (fread(h->data, sizeof(uint16_t), n, f) != n) fatal("'%s': short read", path);
    fclose_check(f);
    if ((size_t)header[2] > n / 6) {  // an example is at least its 6-value header
        fatal("'%s' says it holds %d examples, but its %zu values hold at most %zu", path, header[2], n, n / 6);
    }
    h->num_in_file = header[2];
    h->examples = (HellaSwagExample *)calloc_check((size_t)h->num_in_file, sizeof(HellaSwagExample));
    size_t at = 0;
    for (int i = 0; i < h->num_in_file; i++) {
        HellaSwagExample *e = &h->examples[h->num_examples];   // (kept if it fits T)
        memset(e, 0, sizeof(*e));
        const uint16_t *x = h->data + at;
        if (n - at < 6 || x[0] != 65535) fatal("'%s': example %d does not start where the one before ends", path, i);
        size_t size = x[1] / 2, k = 6;
        if (x[1] % 2 || size < 6 || size > n - at) fatal("'%s': example %d has a bad size (%d bytes)", path, i, x[1]);
        e->label = x[3];
        if (x[4] != HELLASWAG_COMPLETIONS || e->label >= HELLASWAG_COMPLETIONS) {
            fatal("'%s': example %d has %d completions and label %d (want 4 and 0..3)", path, i, x[4], e->label);
        }
        e->context_len = x[5];
        e->context = x + k;
        k += (size_t)e->context_len;
        for (int c = 0; c < HELLASWAG_COMPLETIONS && k < size; c++) {
            e->len[c] = x[k];
            e->completion[c] = x + k + 1;
            k += 1 + (size_t)e->len[c];
        }
        int empty = e->context_len == 0;
        for (int c = 0; c < HELLASWAG_COMPLETIONS; c++) empty |= e->len[c] == 0;
        if (k != size || empty) fatal("'%s': example %d's lengths do not add up to its %zu tokens", path, i, size);
        int bad = hellaswag_bad_token(e->context, e->context_len, vocab_size);
        for (int c = 0; c < HELLASWAG_COMPLETIONS && bad < 0; c++) bad = hellaswag_bad_token(e->completion[c], e->len[c], vocab_size);
        if (bad >= 0) fatal("'%s': example %d has token %d, outside the vocabulary (%d)", path, i, bad, vocab_size);
        h->num_examples += hellaswag_fits(e, T);
        at += size;
    }
    if (at != n) fatal("'%s': %zu bytes after its %d examples", path, (n - at) * 2, h->num_in_file);
}

static inline void hellaswag_free(HellaSwag *h) {
    free(h->examples);
    free(h->data);
    memset(h, 0, sizeof(*h));
}

// Rows 4r .. 4r+3 of inputs, targets (B,T) for e (e NULL: padding rows),
// and mask (B,T): 1 where the target is a completion's token
static inline void hellaswag_rows(const HellaSwagExample *e, int r, int T, int *inputs, int *targets, char *mask) {
    for (int c = 0; c < HELLASWAG_COMPLETIONS; c++) {
        size_t row = (size_t)(HELLASWAG_COMPLETIONS * r + c) * T;
        memset(inputs + row, 0, (size_t)T * sizeof(int));
        memset(targets + row, 0, (size_t)T * sizeof(int));
        memset(mask + row, 0, (size_t)T);
        if (!e) continue;
        int n = e->context_len + e->len[c];   // the row's tokens; inputs are the first n - 1
        for (int t = 0; t < n - 1; t++) {
            int next = t + 1 < e->context_len ? e->context[t + 1] : e->completion[c][t + 1 - e->context_len];
            inputs[row + t] = t < e->context_len ? e->context[t] : e->completion[c][t - e->context_len];
            targets[row + t] = next;
            mask[row + t] = t >= e->context_len - 1;
        }
    }
}

// The completion of rows 4r .. 4r+3 with the lowest mean masked loss
static inline int hellaswag_pick(const float *losses, const char *mask, int r, int T) {
    int best = 0;
    double best_loss = 0.0;
    for (int c = 0; c < HELLASWAG_COMPLETIONS; c++) {
        size_t row = (size_t)(HELLASWAG_COMPLETIONS * r + c) * T;
        double sum = 0.0;
        int count = 0;
        for (int t = 0; t < T; t++) {
            if (!mask[row + t]) continue;
            sum += losses[row + t];
            count++;
        }
        double mean = sum / count;
        if (c == 0 || mean < best_loss) best = c, best_loss = mean;
    }
    return best;
}

#endif  // LLMC_HELLASWAG_H
