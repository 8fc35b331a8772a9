/*
 * zero.h: the shard arithmetic of ZeRO data parallelism, for both trainers.
 *
 * The parameters are cut into units: one per tensor for wte, wpe, lnfw,
 * lnfb, and one per (tensor, layer) for the 12 stacked block tensors, listed
 * in checkpoint order (wte, wpe, ln1w[0], ln1w[1], ..., lnfb). Each unit of
 * n elements is padded to world * slice, slice = ceil(n / world) rounded up
 * to a multiple of ZERO_ALIGN elements with several ranks, and rank r owns
 * elements [r * slice, (r + 1) * slice) of it; what lies past n is padding,
 * zero and never used. A rank's shard is its slices of every unit, in unit
 * order: with one rank it is the whole model in checkpoint order.
 *
 * Units are grouped in buckets, the unit of communication: bucket 0 holds
 * the embedding units (wte, wpe, lnfw, lnfb; needed at both ends of the
 * model), bucket 1 + l the 12 units of block l. A bucket buffer holds its
 * units one after the other, each padded to world * slice, so that one
 * reduce-scatter or all-gather per unit works in place on it.
 *
 * Vocabulary chunks (a layout made with vocab_chunked): the token embedding
 * wte (Vp,C), tied to the classifier and a third of GPT-2 small, is left out
 * of bucket 0 and moves instead in chunks of chunk_rows rows (the last one
 * shorter), so that no rank ever holds all of it unsharded: chunk e is the
 * elements [e R C, min((e + 1) R, Vp) C) of the wte unit, and each rank's
 * part of it is where that range meets its slice, possibly nothing
 * (comm_range_part in llmc/comm.h; the chunk's collectives). The
 * units, slices and shards are the same either way: only what travels
 * together changes.
 *
 * ZeRO stages (-z): 0 all-reduces gradients; 1 shards the AdamW moments
 * (each rank updates its own slices, then the parameters are all-gathered);
 * 2 also shards the gradients (reduce-scattered bucket by bucket during the
 * backward); 3 also shards the parameters (gathered bucket by bucket just
 * before use).
 */
#ifndef LLMC_ZERO_H
#define LLMC_ZERO_H

#include <stddef.h>

#include "gpt2.h"
#include "utils.h"

#define BLOCK_TENSORS 12  // per-layer tensors: ln1w .. fcprojb, table entries 2..13
// slices of several ranks are multiples of this many elements, so that every
// slice in a shard and every unit in a bucket buffer starts on a 256-byte
// boundary (bf16; 512 in fp32): cuBLASLt and 128-bit loads need aligned
// pointers (C = 768 on 5 ranks would otherwise start qkvw 3080 bytes in)
#define ZERO_ALIGN 128
// vocabulary chunks are a multiple of this many rows: the CPU gemm's k block
// (GEMM_KC), so that a product summed over the vocabulary chunk by chunk adds
// the same k blocks in the same order as the whole one, bit for bit
#define ZERO_VOCAB_ROWS 256

typedef struct {
    int world, rank;
    int num_layers;  // L
    int num_units;   // 4 + 12 L
    int num_buckets; // 1 + L
    size_t *offset;        // (num_units,) unit start in the checkpoint-ordered parameters
    size_t *count;         // (num_units,) its elements
    size_t *slice;         // (num_units,) elements each rank owns: ceil(count / world), rounded
                           // up to ZERO_ALIGN with several ranks
    size_t *shard_offset;  // (num_units,) start of this rank's slice in its shard
    size_t *bucket_offset; // (num_units,) start of the unit in its bucket's buffer
    int *tensor;           // (num_units,) its parameter tensor (0..15)
    size_t shard_size;     // elements of a rank's shard (padding included)
    size_t *bucket_size;   // (num_buckets,) elements of a bucket buffer
    int vocab_chunks;      // wte's chunks, 0: wte travels in bucket 0
    int chunk_rows;        // rows of wte in a chunk (the last may have fewer)
    int vocab_rows, channels;  // wte is (Vp, C)
} ZeroLayout;

// The unit of tensor t (0..15) at layer l (ignored for the unstacked tensors)
static inline int zero_unit(const ZeroLayout *z, int t, int l) {
    int L = z->num_layers;
    if (t < 2) return t;                                   // wte, wpe
    if (t < 2 + BLOCK_TENSORS) return 2 + (t - 2) * L + l;  // ln1w[l] .. fcprojb[l]
    return 2 + BLOCK_TENSORS * L + (t - 2 - BLOCK_TENSORS); // lnfw, lnfb
}

// The units of bucket b, in table order, into units; returns how many (4 or 12)
static inline int zero_bucket_units(const ZeroLayout *z, int b, int *units) {
    if (b == 0) {
        const int tensors[4] = {0, 1, 14, 15};
        int skip = z->vocab_chunks > 0;  // wte moves in its own chunks
        for (int i = skip; i < 4; i++) units[i - skip] = zero_unit(z, tensors[i], 0);
        return 4 - skip;
    }
    for (int i = 0; i < BLOCK_TENSORS; i++) units[i] = zero_unit(z, 2 + i, b - 1);
    return BLOCK_TENSORS;
}

// The layout of a model of config c for rank `rank` of `world`; with
// vocab_chunked, wte in vocabulary chunks of about half a block's elements
// (two chunk buffers hold what one block's bucket does).
static inline void zero_layout_init(ZeroLayout *z, const GPT2Config *c, int world, int rank,
                                    int vocab_chunked) {
    size_t sizes[NUM_PARAMETER_TENSORS];
    gpt2_parameter_sizes(c, sizes);
    int L = c->num_layers;
    z->world = world;
    z->rank = rank;
    z->num_layers = L;
    z->vocab_rows = c->padded_vocab_size;
    z->channels = c->channels;
    z->vocab_chunks = 0;
    z->chunk_rows = z->vocab_rows;
    if (vocab_chunked) {
        size_t block = 0;
        for (int t = 2; t < 2 + BLOCK_TENSORS; t++) block += sizes[t] / L;
        size_t rows = block / 2 / (size_t)c->channels / ZERO_VOCAB_ROWS * ZERO_VOCAB_ROWS;
        if (rows < ZERO_VOCAB_ROWS) rows = ZERO_VOCAB_ROWS;
        z->chunk_rows = rows > (size_t)z->vocab_rows ? z->vocab_rows : (int)rows;
        z->vocab_chunks = (z->vocab_rows + z->chunk_rows - 1) / z->chunk_rows;
    }
    z->num_units = 4 + BLOCK_TENSORS * L;
    z->num_buckets = 1 + L;
    int U = z->num_units, NB = z->num_buckets;
    z->offset = (size_t *)calloc_check((size_t)U, sizeof(size_t));
    z->count = (size_t *)calloc_check((size_t)U, sizeof(size_t));
    z->slice = (size_t *)calloc_check((size_t)U, sizeof(size_t));
    z->shard_offset = (size_t *)calloc_check((size_t)U, sizeof(size_t));
    z->bucket_offset = (size_t *)calloc_check((size_t)U, sizeof(size_t));
    z->tensor = (int *)calloc_check((size_t)U, sizeof(int));
    z->bucket_size = (size_t *)calloc_check((size_t)NB, sizeof(size_t));
    // units in checkpoint order
    int u = 0;
    size_t offset = 0;
    for (int t = 0; t < NUM_PARAMETER_TENSORS; t++) {
        int layers = parameter_layers(c, t);
        for (int l = 0; l < layers; l++, u++) {
            z->tensor[u] = t;
            z->count[u] = sizes[t] / layers;
            z->offset[u] = offset;
            offset += z->count[u];
            z->slice[u] = (z->count[u] + world - 1) / world;
            if (world > 1) z->slice[u] = (z->slice[u] + ZERO_ALIGN - 1) / ZERO_ALIGN * ZERO_ALIGN;
        }
    }
    z->shard_size = 0;
    for (u = 0; u < U; u++) {
        z->shard_offset[u] = z->shard_size;
        z->shard_size += z->slice[u];
    }
    // bucket buffers: their units in table order
    for (int b = 0; b < NB; b++) {
        int units[BLOCK_TENSORS], n = zero_bucket_units(z, b, units);
        for (int i = 0; i < n; i++) {
            z->bucket_offset[units[i]] = z->bucket_size[b];
            z->bucket_size[b] += z->slice[units[i]] * world;
        }
    }
}

static inline void zero_layout_free(ZeroLayout *z) {
    free(z->offset);
    free(z->count);
    free(z->slice);
    free(z->shard_offset);
    free(z->bucket_offset);
    free(z->tensor);
    free(z->bucket_size);
}

// Elements of unit u that rank r really owns (0..slice: the last ranks' slices may be padding)
static inline size_t zero_owned(const ZeroLayout *z, int u, int r) {
    size_t start = (size_t)r * z->slice[u];
    if (start >= z->count[u]) return 0;
    size_t n = z->count[u] - start;
    return n < z->slice[u] ? n : z->slice[u];
}

// shard (shard_size,) = this rank's slices of the checkpoint-ordered full (num_parameters,)
static inline void zero_pack_shard(const ZeroLayout *z, float *shard, const float *full) {
    for (int u = 0; u < z->num_units; u++) {
        size_t own = zero_owned(z, u, z->rank);
        float *dst = shard + z->shard_offset[u];
        memcpy(dst, full + z->offset[u] + (size_t)z->rank * z->slice[u], own * sizeof(float));
        memset(dst + own, 0, (z->slice[u] - own) * sizeof(float));
    }
}

// The first and one-past-last element of unit u that rank r owns
static inline void zero_owned_range(const ZeroLayout *z, int u, size_t *lo, size_t *hi) {
    *lo = (size_t)z->rank * z->slice[u];
    *hi = *lo + zero_owned(z, u, z->rank);
}

// Vocabulary chunk e: rows [*v0, *v1) of wte
static inline void zero_vocab_chunk(const ZeroLayout *z, int e, int *v0, int *v1) {
    *v0 = e * z->chunk_rows;
    *v1 = *v0 + z->chunk_rows < z->vocab_rows ? *v0 + z->chunk_rows : z->vocab_rows;
}

// Whether two ranks' shards (of two layouts) share any element
static inline int zero_overlap(const ZeroLayout *a, const ZeroLayout *b) {
    for (int u = 0; u < a->num_units; u++) {
        size_t a0, a1, b0, b1;
        zero_owned_range(a, u, &a0, &a1);
        zero_owned_range(b, u, &b0, &b1);
        if ((a0 > b0 ? a0 : b0) < (a1 < b1 ? a1 : b1)) return 1;
    }
    return 0;
}

// Copies the elements that two ranks' shards have in common: from `src`,
// the shard src_layout describes (a rank of another rank count), into `dst`,
// this layout's shard. Re-shards a checkpoint written on a different number of ranks.
static inline void zero_copy_overlap(const ZeroLayout *z, float *dst, const float *src,
                                     const ZeroLayout *src_layout) {
    for (int u = 0; u < z->num_units; u++) {
        size_t a0, a1, b0, b1;
        zero_owned_range(z, u, &a0, &a1);
        zero_owned_range(src_layout, u, &b0, &b1);
        size_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
        if (lo >= hi) continue;
        memcpy(dst + z->shard_offset[u] + (lo - a0), src + src_layout->shard_offset[u] + (lo - b0),
               (hi - lo) * sizeof(float));
    }
}

#endif  // LLMC_ZERO_H
