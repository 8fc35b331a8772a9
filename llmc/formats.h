/*
 * formats.h: the binary file formats, named once.
 *
 * Every file starts with a 256 x int32 little-endian header: [0] magic,
 * [1] version, then fields. The magics and versions are llm.c's, so files
 * llm.c writes load here unchanged. open_with_header() checks magic and
 * version and reads the whole header; check_file_size() checks that the file
 * is exactly as long as its header implies; each fails with a one-line error
 * naming the file, what was expected and what was found.
 */
#ifndef LLMC_FORMATS_H
#define LLMC_FORMATS_H

#include "utils.h"

#define HEADER_INTS 256
#define HEADER_BYTES (HEADER_INTS * sizeof(int32_t))

// model checkpoint: [2] max_seq_len [3] vocab_size [4] num_layers
// [5] num_heads [6] channels [7] padded_vocab_size, then the 16 tensors
#define MODEL_MAGIC 20240326
#define MODEL_VERSION_FP32 3
#define MODEL_VERSION_BF16 5

// tokenizer: [2] vocab_size [3] EOT id (v2); then per token: uint8 len, bytes
#define TOKENIZER_MAGIC 20240328
#define TOKENIZER_VERSION_1 1
#define TOKENIZER_VERSION_2 2

// BPE merges (ours): [2] number of merges; then per merge, in rank order,
// three int32: left token id, right token id, merged token id
#define MERGES_MAGIC 20241125
#define MERGES_VERSION 1

// token shard: [2] number of tokens, then uint16 tokens
#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1

// debug state: [2] B [3] T, then x, y (int32), logits (B,T,V) fp32, loss,
// every parameter gradient in checkpoint order (wte padded to (Vp,C))
#define DEBUG_STATE_MAGIC 20240327
#define DEBUG_STATE_VERSION 2

// training state (ours): see llmc/checkpoint.h state_file_write()
#define STATE_MAGIC 20240527
#define STATE_VERSION 1

// Reads the header of `path` into header[HEADER_INTS] and checks magic and
// version (one of `versions`, n_versions of them). Returns the open file,
// positioned just after the header.
static inline FILE *open_with_header(const char *path, const char *kind, int32_t magic,
                                     const int *versions, int n_versions, int32_t *header) {
    FILE *f = fopen_check(path, "rb");
    long long size = file_size_of(f);
    if (size < (long long)HEADER_BYTES) {
        fatal("%s '%s' is truncated: %lld bytes, shorter than its %zu-byte header", kind, path,
              size, HEADER_BYTES);
    }
    fread_check(header, sizeof(int32_t), HEADER_INTS, f, path);
    if (header[0] != magic) {
        fatal("'%s' is not a %s file: magic %d, expected %d", path, kind, header[0], magic);
    }
    for (int i = 0; i < n_versions; i++) {
        if (header[1] == versions[i]) return f;
    }
    char want[64] = "";
    for (int i = 0; i < n_versions; i++) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof(want) - len, i ? " or %d" : "%d", versions[i]);
    }
    fatal("%s '%s' has version %d, expected %s", kind, path, header[1], want);
}

// Fails unless the file holds exactly `expected` bytes (header included).
static inline void check_file_size(FILE *f, const char *path, const char *kind,
                                   long long expected) {
    long long size = file_size_of(f);
    if (size != expected) {
        fatal("%s '%s' has %lld bytes but its header implies %lld", kind, path, size, expected);
    }
}

static inline void write_header(FILE *f, const int32_t *header) {
    fwrite_check(header, sizeof(int32_t), HEADER_INTS, f);
}

#endif  // LLMC_FORMATS_H
