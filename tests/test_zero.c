/*
 * test_zero.c: the shard arithmetic of llmc/zero.h, for many model shapes
 * and rank counts, including units smaller than the number of ranks.
 *
 * Checks: the ranks' slices of every unit are contiguous, disjoint and cover
 * it exactly; one rank's shard is the whole model in checkpoint order; the
 * shards of all ranks put together give back the model; re-sharding from N
 * ranks' shards to M ranks (as a resume on another number of ranks does)
 * gives exactly the M-rank shards; bucket buffers hold each unit once,
 * padded, without overlaps (with wte in bucket 0 or in vocabulary chunks);
 * with several ranks every slice and every unit in a bucket starts a
 * multiple of ZERO_ALIGN elements in; vocabulary chunks tile wte in whole
 * multiples of ZERO_VOCAB_ROWS rows, each about half a block, and the ranks'
 * parts of a chunk tile it in rank order, each inside the rank's own slice.
 * Prints one line per check; exits 1 on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../llmc/comm.h"
#include "../llmc/zero.h"

static int failures = 0;

static void expect(int ok, const char *what, const GPT2Config *c, int world) {
    if (!ok) {
        failures++;
        printf("FAIL %s (L=%d C=%d V=%d maxT=%d, %d ranks)\n", what, c->num_layers, c->channels,
               c->vocab_size, c->max_seq_len, world);
    }
}

// slices partition every unit; the shard size is the sum of the slices
static void check_slices(const GPT2Config *c, int world) {
    ZeroLayout z;
    zero_layout_init(&z, c, world, 0, 0);
    int ok = 1;
    size_t shard = 0, next = 0;
    for (int u = 0; u < z.num_units; u++) {
        ok &= z.offset[u] == next;  // units tile the model in checkpoint order
        next += z.count[u];
        size_t covered = 0;
        for (int r = 0; r < world; r++) {
            size_t own = zero_owned(&z, u, r);
            ok &= own <= z.slice[u];
            ok &= own == 0 || (size_t)r * z.slice[u] == covered;  // contiguous, in rank order
            covered += own;
        }
        ok &= covered == z.count[u];
        size_t step = world > 1 ? ZERO_ALIGN : 1;   // (one rank: no padding at all)
        ok &= z.slice[u] % step == 0 && z.slice[u] * world >= z.count[u] && z.slice[u] < (z.count[u] + world - 1) / world + step;
        shard += z.slice[u];
    }
    ok &= next == gpt2_num_parameters(c) && shard == z.shard_size;
    expect(ok, "slices partition every unit, each the least multiple of ZERO_ALIGN elements (1 on one rank)", c, world);
    zero_layout_free(&z);
}

// buckets: each unit inside its bucket once, padded to world * slice, no
// overlaps; with vocabulary chunks, bucket 0 without wte
static void check_buckets(const GPT2Config *c, int world, int vocab_chunked) {
    ZeroLayout z;
    zero_layout_init(&z, c, world, 0, vocab_chunked);
    int ok = z.num_buckets == 1 + c->num_layers && (z.vocab_chunks > 0) == vocab_chunked;
    for (int b = 0; b < z.num_buckets; b++) {
        int units[BLOCK_TENSORS], n = zero_bucket_units(&z, b, units);
        ok &= n == (b == 0 ? 4 - vocab_chunked : BLOCK_TENSORS);
        size_t next = 0;
        for (int i = 0; i < n; i++) {
            int u = units[i];
            int stacked = z.tensor[u] >= 2 && z.tensor[u] < 2 + BLOCK_TENSORS;
            ok &= stacked == (b > 0) && z.bucket_offset[u] == next && !(vocab_chunked && u == 0);
            ok &= world == 1 || (z.bucket_offset[u] % ZERO_ALIGN == 0 && z.shard_offset[u] % ZERO_ALIGN == 0);
            next += z.slice[u] * world;
        }
        ok &= next == z.bucket_size[b];
    }
    expect(ok, vocab_chunked ? "bucket buffers (wte in vocabulary chunks) hold their units once, padded, aligned"
                             : "bucket buffers hold their units once, padded, in table order, each (and each slice) aligned",
           c, world);
    zero_layout_free(&z);
}

// vocabulary chunks tile wte's rows; every rank's part of a chunk (as
// comm.h's range collectives cut it) lies in its own slice, and the parts of
// all ranks tile the chunk in rank order
static void check_vocab_chunks(const GPT2Config *c, int world) {
    ZeroLayout z;
    zero_layout_init(&z, c, world, 0, 1);
    size_t block = 0, sizes[NUM_PARAMETER_TENSORS];
    gpt2_parameter_sizes(c, sizes);
    for (int t = 2; t < 2 + BLOCK_TENSORS; t++) block += sizes[t] / c->num_layers;
    size_t chunk = (size_t)z.chunk_rows * c->channels;
    int ok = z.chunk_rows % ZERO_VOCAB_ROWS == 0 || z.chunk_rows == c->padded_vocab_size;
    // about half a block: no more, unless one multiple of ZERO_VOCAB_ROWS is already more
    ok &= chunk <= block / 2 || z.chunk_rows == ZERO_VOCAB_ROWS || z.vocab_chunks == 1;
    ok &= z.vocab_chunks == 1 || chunk + (size_t)ZERO_VOCAB_ROWS * c->channels > block / 2;
    int rows = 0;
    for (int e = 0; e < z.vocab_chunks; e++) {
        int v0, v1;
        zero_vocab_chunk(&z, e, &v0, &v1);
        ok &= v0 == rows && v1 > v0;
        rows = v1;
        size_t next = (size_t)v0 * c->channels;
        for (int r = 0; r < world; r++) {
            size_t lo, hi;
            comm_range_part(z.count[0], z.slice[0], (size_t)v0 * c->channels, (size_t)v1 * c->channels, r, &lo, &hi);
            size_t own0 = (size_t)r * z.slice[0], own1 = own0 + zero_owned(&z, 0, r);
            if (hi == lo) continue;
            ok &= lo == next && own0 <= lo && hi <= own1;
            next = hi;
        }
        ok &= next == (size_t)v1 * c->channels;
    }
    ok &= rows == c->padded_vocab_size;
    expect(ok, "vocabulary chunks tile wte, about half a block each; ranks' parts tile each chunk", c, world);
    zero_layout_free(&z);
}

// shards: one rank's is the model; all ranks' together give it back; N -> M re-sharding
static void check_shards(const GPT2Config *c, int world, int other) {
    size_t n = gpt2_num_parameters(c);
    float *full = (float *)malloc_check(n * sizeof(float));
    for (size_t i = 0; i < n; i++) full[i] = (float)(i + 1);  // distinct, never zero
    ZeroLayout *z = (ZeroLayout *)malloc_check((size_t)world * sizeof(ZeroLayout));
    float **shards = (float **)malloc_check((size_t)world * sizeof(float *));
    float *rebuilt = (float *)calloc_check(n, sizeof(float));
    for (int r = 0; r < world; r++) {
        zero_layout_init(&z[r], c, world, r, 0);
        shards[r] = (float *)malloc_check(z[r].shard_size * sizeof(float));
        zero_pack_shard(&z[r], shards[r], full);
        for (int u = 0; u < z[r].num_units; u++) {  // unpack by hand
            memcpy(rebuilt + z[r].offset[u] + (size_t)r * z[r].slice[u],
                   shards[r] + z[r].shard_offset[u], zero_owned(&z[r], u, r) * sizeof(float));
        }
    }
    expect(memcmp(rebuilt, full, n * sizeof(float)) == 0, "all ranks' shards give back the model", c,
           world);
    if (world == 1) {
        expect(z[0].shard_size == n && memcmp(shards[0], full, n * sizeof(float)) == 0,
               "one rank's shard is the model in checkpoint order", c, world);
    }
    // re-shard onto `other` ranks: each target shard from the overlaps of all
    int same = 1;
    for (int r = 0; r < other; r++) {
        ZeroLayout t;
        zero_layout_init(&t, c, other, r, 0);
        float *want = (float *)malloc_check(t.shard_size * sizeof(float));
        float *got = (float *)calloc_check(t.shard_size, sizeof(float));
        zero_pack_shard(&t, want, full);
        for (int q = 0; q < world; q++) zero_copy_overlap(&t, got, shards[q], &z[q]);
        same &= memcmp(want, got, t.shard_size * sizeof(float)) == 0;
        free(want);
        free(got);
        zero_layout_free(&t);
    }
    char what[96];
    snprintf(what, sizeof(what), "shards of %d ranks re-shard exactly onto %d", world, other);
    expect(same, what, c, world);
    for (int r = 0; r < world; r++) {
        free(shards[r]);
        zero_layout_free(&z[r]);
    }
    free(z);
    free(shards);
    free(rebuilt);
    free(full);
}

int main(void) {
    // (maxT, V, Vp, L, NH, C): GPT-2 small's shape, and tiny ones whose
    // units (C = 3 elements for a layernorm) are smaller than the rank count
    GPT2Config shapes[] = {
        {1024, 50257, 50304, 12, 12, 768},
        {64, 500, 512, 2, 2, 50},
        {8, 7, 128, 3, 1, 3},
        {5, 11, 128, 1, 1, 2},
    };
    int checks = 0;
    for (int s = 0; s < 4; s++) {
        for (int world = 1; world <= 7; world++) {
            check_slices(&shapes[s], world);
            check_buckets(&shapes[s], world, 0);
            check_buckets(&shapes[s], world, 1);
            check_vocab_chunks(&shapes[s], world);
            checks += 4;
            if (s == 0) continue;  // (the tiny shapes re-shard fast; the arithmetic is the same)
            for (int other = 1; other <= 7; other++, checks++) {
                check_shards(&shapes[s], world, other);
            }
        }
    }
    printf("%s: %d check(s), %d failed\n", failures ? "FAILED" : "all ok", checks, failures);
    return failures ? 1 : 0;
}
