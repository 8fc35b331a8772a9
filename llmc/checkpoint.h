/*
 * checkpoint.h: model files and training-state files, atomic and checksummed.
 *
 * Model file (llm.c's format): header [0] MODEL_MAGIC, [1] 3 (fp32) or 5
 * (bf16), [2..7] maxT, V, L, NH, C, Vp, then the 16 tensors in checkpoint
 * order (wte padded to (Vp,C)). Our addition: [8] = CHECKSUM_CRC32_CONFIG and
 * [9] = CRC-32 of header slots 0..7 (magic, version, the config) then the
 * tensor bytes, so an edited config is caught like a flipped weight. llm.c
 * leaves those slots zero, so its files load unchecked and ours load in
 * llm.c unchanged; [8] = CHECKSUM_CRC32 (files written before the config
 * was covered) checks the tensor bytes alone; any other value is an error.
 *
 * Training-state file (ours, STATE_MAGIC), one per rank: everything beyond
 * the weights that an exact resume needs: step, data position, sampler RNG,
 * AdamW moments. header [2] step [3] world_size [4] rank [5] B [6] T [7]
 * checksum kind [8] CRC-32 of the header (slot 8 as 0) and the payload;
 * int64 fields as (low, high) int32 pairs at [16] num_params [18] epoch [20]
 * shard_pos [22] group_pos [24] rng state [26] shard size (0: num_params);
 * payload: m then v, fp32, this rank's ZeRO shard of each (llmc/zero.h: with
 * one rank, the whole model in checkpoint order).
 *
 * A checkpoint in an output dir is model_<step>.bin plus state_<step>_<rank>.bin
 * for every rank of the run that wrote it; the model file is written last.
 *
 * Both are written to "<path>.tmp", fsync'ed and renamed, so a crash never
 * leaves a half-written file under the final name.
 */
#ifndef LLMC_CHECKPOINT_H
#define LLMC_CHECKPOINT_H

#include <stdint.h>

#include <sys/stat.h>

#include "formats.h"
#include "gpt2.h"
#include "utils.h"
#include "zero.h"

#define CHECKSUM_CRC32 1         // state files; model files: the tensor bytes
#define CHECKSUM_CRC32_CONFIG 2  // model files: header slots 0..7, then the tensor bytes
#define MODEL_CHECKSUMMED_INTS 8
#define CHECKPOINT_CHUNK (1 << 20)  // floats per read/write chunk

// ----------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, as zlib)

static inline uint32_t crc32_update(uint32_t crc, const void *data, size_t n) {
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static inline void put_i64(int32_t *header, int slot, int64_t v) {
    uint64_t u = (uint64_t)v;
    header[slot] = (int32_t)(uint32_t)(u & 0xffffffffu);
    header[slot + 1] = (int32_t)(uint32_t)(u >> 32);
}

static inline int64_t get_i64(const int32_t *header, int slot) {
    return (int64_t)(((uint64_t)(uint32_t)header[slot + 1] << 32) | (uint32_t)header[slot]);
}

// ----------------------------------------------------------------------------
// model files

// Opens a model file, checks magic, version, config and size; returns the
// file positioned at the tensors. header receives the 256 header ints.
static inline FILE *model_file_open(const char *path, GPT2Config *c, int32_t *header) {
    const int versions[] = {MODEL_VERSION_FP32, MODEL_VERSION_BF16};
    FILE *f = open_with_header(path, "model checkpoint", MODEL_MAGIC, versions, 2, header);
    c->max_seq_len = header[2];
    c->vocab_size = header[3];
    c->num_layers = header[4];
    c->num_heads = header[5];
    c->channels = header[6];
    c->padded_vocab_size = header[7];
    gpt2_config_validate(c, path);
    if (header[8] != 0 && header[8] != CHECKSUM_CRC32 && header[8] != CHECKSUM_CRC32_CONFIG) {
        fatal("model checkpoint '%s': unknown checksum kind %d in header slot 8 (0 none, %d, %d)", path,
              header[8], CHECKSUM_CRC32, CHECKSUM_CRC32_CONFIG);
    }
    long long elem = header[1] == MODEL_VERSION_FP32 ? 4 : 2;
    check_file_size(f, path, "model checkpoint",
                    (long long)HEADER_BYTES + elem * (long long)gpt2_num_parameters(c));
    return f;
}

// The index of the first of n parameters (fp32, or bf16 bits) that is NaN or
// inf, or -1: such weights are not loaded (nor saved: llmc/train_loop.h checks
// every rank's before a checkpoint's first file).
static inline long long first_nonfinite(const void *params, size_t n, int bf16) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        if (bf16) {
            bits = (uint32_t)((const uint16_t *)params)[i] << 16;
        } else {
            memcpy(&bits, (const float *)params + i, sizeof(bits));
        }
        if ((bits & 0x7f800000u) == 0x7f800000u) return (long long)i;  // exponent all ones
    }
    return -1;
}

// Reads the tensors of an open model file into params (fp32), converting
// bf16 (v5) on the way, and verifies the checksum when the file has one.
static inline void model_file_read(FILE *f, const char *path, const int32_t *header,
                                   float *params, size_t n) {
    int bf16 = header[1] == MODEL_VERSION_BF16;
    uint16_t *chunk16 = bf16 ? (uint16_t *)malloc_check(CHECKPOINT_CHUNK * sizeof(uint16_t)) : NULL;
    uint32_t crc = header[8] == CHECKSUM_CRC32_CONFIG
                       ? crc32_update(0, header, MODEL_CHECKSUMMED_INTS * sizeof(int32_t)) : 0;
    for (size_t done = 0; done < n; done += CHECKPOINT_CHUNK) {
        size_t k = n - done < CHECKPOINT_CHUNK ? n - done : CHECKPOINT_CHUNK;
        if (bf16) {
            fread_check(chunk16, sizeof(uint16_t), k, f, path);
            crc = crc32_update(crc, chunk16, k * sizeof(uint16_t));
            for (size_t i = 0; i < k; i++) {
                uint32_t bits = (uint32_t)chunk16[i] << 16;
                memcpy(&params[done + i], &bits, sizeof(float));
            }
        } else {
            fread_check(params + done, sizeof(float), k, f, path);
            crc = crc32_update(crc, params + done, k * sizeof(float));
        }
    }
    free(chunk16);
    if (header[8] != 0 && (uint32_t)header[9] != crc) {
        fatal("model checkpoint '%s' is corrupt: checksum %08x, header says %08x", path, crc,
              (uint32_t)header[9]);
    }
    long long bad = first_nonfinite(params, n, 0);
    if (bad >= 0) fatal("model checkpoint '%s': its weights hold NaN or inf (parameter %lld)", path, bad);
}

// Writes a model file atomically, with its checksum: fp32 (v3) from float
// params, or bf16 (v5) from the raw bf16 bits (uint16_t) the GPU trainer keeps.
static inline void model_file_write_version(const char *path, const GPT2Config *c, int version,
                                            const void *params) {
    size_t bytes = gpt2_num_parameters(c) * (version == MODEL_VERSION_BF16 ? 2 : 4);
    int32_t header[HEADER_INTS] = {0};
    header[0] = MODEL_MAGIC;
    header[1] = version;
    header[2] = c->max_seq_len;
    header[3] = c->vocab_size;
    header[4] = c->num_layers;
    header[5] = c->num_heads;
    header[6] = c->channels;
    header[7] = c->padded_vocab_size;
    header[8] = CHECKSUM_CRC32_CONFIG;
    uint32_t crc = crc32_update(0, header, MODEL_CHECKSUMMED_INTS * sizeof(int32_t));
    header[9] = (int32_t)crc32_update(crc, params, bytes);
    AtomicFile af;
    atomic_open(&af, path);
    write_header(af.f, header);
    fwrite_check(params, 1, bytes, af.f);
    atomic_commit(&af);
}

static inline void model_file_write(const char *path, const GPT2Config *c, const float *params) {
    model_file_write_version(path, c, MODEL_VERSION_FP32, params);
}

// The config of a model source: a descriptor such as "d12" or a model file.
static inline void gpt2_read_config(const char *source, GPT2Config *config) {
    if (gpt2_config_from_descriptor(source, config)) return;
    struct stat st;
    if (stat(source, &st) != 0) {
        fatal("-e '%s' is neither a model file nor a descriptor like d12", source);
    }
    int32_t header[HEADER_INTS];
    fclose_check(model_file_open(source, config, header));
}

// ----------------------------------------------------------------------------
// training-state files

typedef struct {
    int step;        // optimizer steps done
    int world_size;  // ranks that wrote the run
    int rank;
    int B, T;
    int64_t num_params;
    int64_t epoch, shard_pos, group_pos;  // train dataloader position
    uint64_t rng_state;                   // sampler RNG
} TrainState;

// Writes a state file whose payload is m and v, n floats each.
static inline void state_file_write(const char *path, const TrainState *s, const float *m,
                                    const float *v, size_t n) {
    int32_t header[HEADER_INTS] = {0};
    header[0] = STATE_MAGIC;
    header[1] = STATE_VERSION;
    header[2] = s->step;
    header[3] = s->world_size;
    header[4] = s->rank;
    header[5] = s->B;
    header[6] = s->T;
    header[7] = CHECKSUM_CRC32;
    put_i64(header, 16, s->num_params);
    put_i64(header, 18, s->epoch);
    put_i64(header, 20, s->shard_pos);
    put_i64(header, 22, s->group_pos);
    put_i64(header, 24, (int64_t)s->rng_state);
    put_i64(header, 26, (int64_t)n);
    uint32_t crc = crc32_update(0, header, HEADER_BYTES);  // with slot 8 still 0
    crc = crc32_update(crc, m, n * sizeof(float));
    header[8] = (int32_t)crc32_update(crc, v, n * sizeof(float));
    AtomicFile af;
    atomic_open(&af, path);
    write_header(af.f, header);
    fwrite_check(m, sizeof(float), n, af.f);
    fwrite_check(v, sizeof(float), n, af.f);
    atomic_commit(&af);
}

// Opens a state file written for a model of num_params parameters: its
// header into s and the length of each of m and v into *n; returns the file
// positioned at the payload. header receives the raw header (for the checksum).
static inline FILE *state_file_open(const char *path, TrainState *s, size_t *n, int64_t num_params,
                                    int32_t *header) {
    const int versions[] = {STATE_VERSION};
    FILE *f = open_with_header(path, "training state", STATE_MAGIC, versions, 1, header);
    s->step = header[2];
    s->world_size = header[3];
    s->rank = header[4];
    s->B = header[5];
    s->T = header[6];
    s->num_params = get_i64(header, 16);
    s->epoch = get_i64(header, 18);
    s->shard_pos = get_i64(header, 20);
    s->group_pos = get_i64(header, 22);
    s->rng_state = (uint64_t)get_i64(header, 24);
    int64_t shard = get_i64(header, 26);
    if (shard == 0) shard = s->num_params;  // files from before sharding: the whole model
    if (s->num_params != num_params) {
        fatal("training state '%s' is for a model of %lld parameters, this one has %lld", path,
              (long long)s->num_params, (long long)num_params);
    }
    // (a rank's slice of a unit is never longer than the unit: shard <= num_params)
    if (s->step < 0 || s->world_size < 1 || s->rank < 0 || s->rank >= s->world_size || shard < 0 ||
        shard > num_params) {
        fatal("training state '%s' has an invalid header (step %d, rank %d of %d, shard %lld)", path,
              s->step, s->rank, s->world_size, (long long)shard);
    }
    check_file_size(f, path, "training state", (long long)HEADER_BYTES + 8LL * shard);
    *n = (size_t)shard;
    return f;
}

// Reads the payload of a state file opened by state_file_open into *m, *v
// (malloc'ed, n floats each) and verifies its checksum, and that the moments
// are ones AdamW can have made: finite, the second ones not negative (a NaN
// there would reach every weight it touches at the first update).
static inline void state_file_read_payload(FILE *f, const char *path, const int32_t *header, size_t n,
                                           float **m, float **v) {
    *m = alloc_floats(n);
    *v = alloc_floats(n);
    fread_check(*m, sizeof(float), n, f, path);
    fread_check(*v, sizeof(float), n, f, path);
    int32_t unsummed[HEADER_INTS];  // the header as summed: slot 8 zero
    memcpy(unsummed, header, HEADER_BYTES);
    unsummed[8] = 0;
    uint32_t crc = crc32_update(0, unsummed, HEADER_BYTES);
    crc = crc32_update(crc, *m, n * sizeof(float));
    crc = crc32_update(crc, *v, n * sizeof(float));
    if (header[7] != CHECKSUM_CRC32) {
        fatal("training state '%s': checksum kind %d in header slot 7, want %d", path, header[7], CHECKSUM_CRC32);
    }
    if ((uint32_t)header[8] != crc) {
        fatal("training state '%s' is corrupt: checksum %08x, header says %08x", path, crc,
              (uint32_t)header[8]);
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite((*m)[i]) || !isfinite((*v)[i]) || (*v)[i] < 0.0f) {
            fatal("training state '%s': AdamW moments at element %zu are m=%g v=%g (not finite, or v < 0)",
                  path, i, (*m)[i], (*v)[i]);
        }
    }
}

// ---- checkpoints in an output dir: model_%08d.bin, state_%08d_%05d.bin

static inline void checkpoint_paths(char *model_path, char *state_path, size_t size,
                                    const char *dir, int step, int rank) {
    snprintf(model_path, size, "%s/model_%08d.bin", dir, step);
    snprintf(state_path, size, "%s/state_%08d_%05d.bin", dir, step, rank);
}

// The number of ranks that wrote the checkpoint at `step` in dir (rank 0's
// state file says), or 0 when the checkpoint is incomplete: a state file missing.
static inline int checkpoint_ranks(const char *dir, int step) {
    char model_path[4200], path[4200];
    checkpoint_paths(model_path, path, sizeof(path), dir, step, 0);
    struct stat st;
    if (stat(model_path, &st) != 0 || stat(path, &st) != 0) return 0;
    int32_t header[HEADER_INTS];
    const int versions[] = {STATE_VERSION};
    fclose_check(open_with_header(path, "training state", STATE_MAGIC, versions, 1, header));
    int world = header[3];
    if (world < 1 || world > 1 << 20) fatal("training state '%s' says %d ranks", path, world);
    for (int q = 1; q < world; q++) {
        checkpoint_paths(model_path, path, sizeof(path), dir, step, q);
        if (stat(path, &st) != 0) return 0;
    }
    return world;
}

// Reads the AdamW moments of the checkpoint at `step` in dir, written by
// however many ranks, into m and v: the slices that `target` (this rank's
// layout) holds. st receives rank 0's header. Every old rank's header is
// checked; the payloads that share elements with the target are read
// (whole, one rank's shard each, to verify their checksums) and copied.
static inline void state_files_read(const char *dir, int step, const GPT2Config *c,
                                    const ZeroLayout *target, float *m, float *v, TrainState *st) {
    char model_path[4200], path[4200];
    int64_t num_params = (int64_t)gpt2_num_parameters(c);
    int world = 1;
    for (int q = 0; q < world; q++) {
        checkpoint_paths(model_path, path, sizeof(path), dir, step, q);
        TrainState s;
        size_t n;
        int32_t header[HEADER_INTS];
        FILE *f = state_file_open(path, &s, &n, num_params, header);
        if (q == 0) {
            *st = s;
            world = s.world_size;
        }
        if (s.rank != q || s.world_size != world || s.step != st->step || s.B != st->B ||
            s.T != st->T || s.epoch != st->epoch || s.shard_pos != st->shard_pos ||
            s.group_pos != st->group_pos) {
            fatal("training state '%s' (rank %d of %d, step %d) does not fit rank 0's checkpoint",
                  path, s.rank, s.world_size, s.step);
        }
        ZeroLayout old;
        zero_layout_init(&old, c, world, q, 0);
        if (n != old.shard_size) {
            fatal("training state '%s' holds %zu moments, rank %d of %d holds %zu", path, n, q,
                  world, old.shard_size);
        }
        if (zero_overlap(target, &old)) {
            float *m_old, *v_old;
            state_file_read_payload(f, path, header, n, &m_old, &v_old);
            zero_copy_overlap(target, m, m_old, &old);
            zero_copy_overlap(target, v, v_old, &old);
            free(m_old);
            free(v_old);
        }
        fclose_check(f);
        zero_layout_free(&old);
    }
}

#endif  // LLMC_CHECKPOINT_H
