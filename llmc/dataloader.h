/*
 * dataloader.h: batches of (inputs, targets) from token shards.
 *
 * A shard (llm.c format) is a 256-int32 header ([0] SHARD_MAGIC, [1] version,
 * [2] number of tokens) followed by uint16 tokens. Shards are found by a glob
 * pattern and sorted by name. Each shard is cut into "slots" of B*T+1 tokens
 * starting every B*T tokens; one batch is one slot: inputs = slot[0..B*T),
 * targets = slot[1..B*T]. Rank r of N takes slot r of every group of N
 * consecutive slots (in the epoch's slot order), so ranks read disjoint data.
 *
 * With shuffling on, every epoch visits the shards in a fresh order and each
 * shard's slots in a fresh order, both derived from (seed, epoch, shard)
 * alone, not from the number of ranks: the position (epoch, shard_pos,
 * group_pos) is all that a training state file needs to resume exactly, and
 * group_pos * ranks slots of the shard are used up, on any number of ranks. Offsets are 64-bit: shards over 2 GiB
 * work.
 */
#ifndef LLMC_DATALOADER_H
#define LLMC_DATALOADER_H

#include <glob.h>
#include <stdint.h>

#include "formats.h"
#include "rand.h"
#include "utils.h"

typedef struct {
    // configuration
    int B, T;
    int rank, world_size;
    int shuffle;
    uint64_t seed;
    int vocab_size;  // every token must be below this
    // the shards
    glob_t glob_result;
    int num_shards;
    int64_t *shard_tokens;  // (num_shards,) tokens in each shard
    int64_t total_tokens;
    // position: exactly what resume needs
    int64_t epoch;
    int64_t shard_pos;  // index into shard_order
    int64_t group_pos;  // groups of world_size slots used in the current shard
    // derived from the position
    int64_t *shard_order;  // (num_shards,) permutation for this epoch
    int64_t *slot_order;   // (num_slots,) permutation of the current shard's slots
    int64_t num_slots;
    int64_t num_groups;    // groups of world_size slots in the current shard
    FILE *file;            // the current shard, open
    // output buffers
    uint16_t *buffer;  // (B*T+1,)
    int *inputs;       // (B,T)
    int *targets;      // (B,T)
} DataLoader;

// Reads and checks a shard's header; returns its number of tokens.
static inline int64_t shard_read_header(const char *path, FILE **out_file) {
    int32_t header[HEADER_INTS];
    const int versions[] = {SHARD_VERSION};
    FILE *f = open_with_header(path, "token shard", SHARD_MAGIC, versions, 1, header);
    if (header[2] <= 0) {
        fatal("token shard '%s' declares %d tokens", path, header[2]);
    }
    int64_t ntok = header[2];
    check_file_size(f, path, "token shard", (long long)HEADER_BYTES + 2 * ntok);
    if (out_file) {
        *out_file = f;
    } else {
        fclose_check(f);
    }
    return ntok;
}

static inline int64_t dataloader_slots(const DataLoader *dl, int64_t ntok) {
    return (ntok - 1) / ((int64_t)dl->B * dl->T);
}

// Opens shard_order[shard_pos] and builds its slot order for this epoch.
static inline void dataloader_open_shard(DataLoader *dl) {
    if (dl->file) fclose_check(dl->file);
    int64_t s = dl->shard_order[dl->shard_pos];
    shard_read_header(dl->glob_result.gl_pathv[s], &dl->file);
    dl->num_slots = dataloader_slots(dl, dl->shard_tokens[s]);
    dl->num_groups = dl->num_slots / dl->world_size;
    free(dl->slot_order);
    dl->slot_order = (int64_t *)malloc_check((size_t)dl->num_slots * sizeof(int64_t));
    for (int64_t g = 0; g < dl->num_slots; g++) dl->slot_order[g] = g;
    if (dl->shuffle) {
        Rng64 rng = {dl->seed ^ (0x5851f42d4c957f2dull * (uint64_t)(dl->epoch + 1)) ^
                     (0x14057b7ef767814full * (uint64_t)(s + 1))};
        rng_shuffle(&rng, dl->slot_order, dl->num_slots);
    }
}

// Sets the shard order for dl->epoch.
static inline void dataloader_start_epoch(DataLoader *dl) {
    for (int s = 0; s < dl->num_shards; s++) dl->shard_order[s] = s;
    if (dl->shuffle) {
        Rng64 rng = {dl->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(dl->epoch + 1))};
        rng_shuffle(&rng, dl->shard_order, dl->num_shards);
    }
}

// Moves to (epoch, shard_pos, group_pos), e.g. from a training state file.
static inline void dataloader_seek(DataLoader *dl, int64_t epoch, int64_t shard_pos,
                                   int64_t group_pos) {
    if (epoch < 0 || shard_pos < 0 || shard_pos >= dl->num_shards || group_pos < 0) {
        fatal("dataloader position (%lld, %lld, %lld) is out of range for %d shards",
              (long long)epoch, (long long)shard_pos, (long long)group_pos, dl->num_shards);
    }
    dl->epoch = epoch;
    dl->shard_pos = shard_pos;
    dataloader_start_epoch(dl);
    dataloader_open_shard(dl);
    if (group_pos > dl->num_groups) {
        fatal("dataloader position %lld is past the end of shard '%s' (%lld batches)",
              (long long)group_pos, dl->glob_result.gl_pathv[dl->shard_order[shard_pos]],
              (long long)dl->num_groups);
    }
    dl->group_pos = group_pos;
}

static inline void dataloader_reset(DataLoader *dl) { dataloader_seek(dl, 0, 0, 0); }

static inline void dataloader_init(DataLoader *dl, const char *pattern, int B, int T, int rank,
                                   int world_size, int shuffle, uint64_t seed, int vocab_size) {
    memset(dl, 0, sizeof(*dl));
    dl->vocab_size = vocab_size;
    dl->B = B;
    dl->T = T;
    dl->rank = rank;
    dl->world_size = world_size;
    dl->shuffle = shuffle;
    dl->seed = seed;
    int rc = glob(pattern, 0, NULL, &dl->glob_result);
    if (rc == GLOB_NOMATCH) {
        fatal("no token shards match '%s'", pattern);
    } else if (rc != 0) {
        fatal("cannot expand the shard pattern '%s' (glob error %d)", pattern, rc);
    }
    dl->num_shards = (int)dl->glob_result.gl_pathc;
    dl->shard_tokens = (int64_t *)malloc_check((size_t)dl->num_shards * sizeof(int64_t));
    dl->shard_order = (int64_t *)malloc_check((size_t)dl->num_shards * sizeof(int64_t));
    int64_t need = (int64_t)B * T * world_size + 1;
    for (int s = 0; s < dl->num_shards; s++) {
        const char *path = dl->glob_result.gl_pathv[s];
        dl->shard_tokens[s] = shard_read_header(path, NULL);
        if (dl->shard_tokens[s] < need) {
            fatal("token shard '%s' has %lld tokens, fewer than one batch needs (B*T*ranks+1 = "
                  "%lld)",
                  path, (long long)dl->shard_tokens[s], (long long)need);
        }
        dl->total_tokens += dl->shard_tokens[s];
    }
    dl->buffer = (uint16_t *)malloc_check(((size_t)B * T + 1) * sizeof(uint16_t));
    dl->inputs = (int *)malloc_check((size_t)B * T * sizeof(int));
    dl->targets = (int *)malloc_check((size_t)B * T * sizeof(int));
    dataloader_reset(dl);
}

// Loads the next batch into dl->inputs and dl->targets, both (B,T).
static inline void dataloader_next_batch(DataLoader *dl) {
    while (dl->group_pos >= dl->num_groups) {  // current shard used up
        dl->shard_pos++;
        dl->group_pos = 0;
        if (dl->shard_pos == dl->num_shards) {
            dl->epoch++;
            dl->shard_pos = 0;
            dataloader_start_epoch(dl);
        }
        dataloader_open_shard(dl);
    }
    int64_t BT = (int64_t)dl->B * dl->T;
    int64_t slot = dl->slot_order[dl->group_pos * dl->world_size + dl->rank];
    fseek_check(dl->file, (long long)HEADER_BYTES + 2 * slot * BT, SEEK_SET);
    fread_check(dl->buffer, sizeof(uint16_t), (size_t)BT + 1, dl->file, "token shard");
    for (int64_t i = 0; i <= BT; i++) {
        if (dl->buffer[i] >= dl->vocab_size) {
            fatal("token shard '%s' holds token %d at position %lld, outside the vocabulary (%d)",
                  dl->glob_result.gl_pathv[dl->shard_order[dl->shard_pos]], dl->buffer[i],
                  (long long)(slot * BT + i), dl->vocab_size);
        }
    }
    for (int64_t i = 0; i < BT; i++) {
        dl->inputs[i] = dl->buffer[i];
        dl->targets[i] = dl->buffer[i + 1];
    }
    dl->group_pos++;
}

// Batches per epoch for one rank (over all shards).
static inline int64_t dataloader_batches_per_epoch(const DataLoader *dl) {
    int64_t n = 0;
    for (int s = 0; s < dl->num_shards; s++) {
        n += dataloader_slots(dl, dl->shard_tokens[s]) / dl->world_size;
    }
    return n;
}

static inline void dataloader_free(DataLoader *dl) {
    if (dl->file) fclose_check(dl->file);
    globfree(&dl->glob_result);
    free(dl->shard_tokens);
    free(dl->shard_order);
    free(dl->slot_order);
    free(dl->buffer);
    free(dl->inputs);
    free(dl->targets);
}

#endif  // LLMC_DATALOADER_H
