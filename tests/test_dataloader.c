/*
 * test_dataloader.c: llmc/dataloader.h on shards whose tokens encode their
 * own position, so every batch tells where it came from.
 *
 * Checks: targets are inputs shifted by one; without shuffling, batches come
 * in file order; with shuffling, every epoch visits every slot exactly once
 * and epochs differ; ranks of a distributed run read disjoint slots that
 * together cover the data; a seek to a saved position replays the same
 * batches; a sparse shard over 2 GiB reads correctly at its end (64-bit
 * offsets). Prints one line per check; exits 1 on any failure.
 *
 * usage: test_dataloader SCRATCH_DIR
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../llmc/dataloader.h"
#include "../llmc/gpt2.h"

#define SHARD_TOKENS 1000  // token i of shard s is s * SHARD_TOKENS + i
#define NUM_SHARDS 3
#define B 2
#define T 8
#define TOTAL_SLOTS (NUM_SHARDS * ((SHARD_TOKENS - 1) / (B * T)))  // 3 x 62

static int failures = 0;

static void expect(int ok, const char *what) {
    printf("%-4s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

static void write_shard(const char *path, int shard) {
    int32_t header[HEADER_INTS] = {SHARD_MAGIC, SHARD_VERSION, SHARD_TOKENS};
    uint16_t tokens[SHARD_TOKENS];
    for (int i = 0; i < SHARD_TOKENS; i++) tokens[i] = (uint16_t)(shard * SHARD_TOKENS + i);
    FILE *f = fopen_check(path, "wb");
    fwrite_check(header, sizeof(int32_t), HEADER_INTS, f);
    fwrite_check(tokens, sizeof(uint16_t), SHARD_TOKENS, f);
    fclose_check(f);
}

// Global slot id of the loaded batch (shard * slots + slot), or -1 when the
// batch is not one contiguous, correctly shifted slot.
static int batch_slot(const DataLoader *dl) {
    int first = dl->inputs[0];
    for (int i = 0; i < B * T; i++) {
        if (dl->inputs[i] != first + i || dl->targets[i] != first + i + 1) return -1;
    }
    int shard = first / SHARD_TOKENS, offset = first % SHARD_TOKENS;
    if (offset % (B * T) != 0) return -1;
    return shard * ((SHARD_TOKENS - 1) / (B * T)) + offset / (B * T);
}

int main(int argc, char **argv) {
    if (argc != 2) fatal("usage: test_dataloader SCRATCH_DIR");
    char path[4096], pattern[4096];
    for (int s = 0; s < NUM_SHARDS; s++) {
        snprintf(path, sizeof(path), "%s/dl_train_%03d.bin", argv[1], s);
        write_shard(path, s);
    }
    snprintf(pattern, sizeof(pattern), "%s/dl_train_*.bin", argv[1]);
    const int total_slots = TOTAL_SLOTS;

    // in order, without shuffling
    DataLoader dl;
    dataloader_init(&dl, pattern, B, T, 0, 1, 0, 0, GPT2_VOCAB_SIZE);
    int in_order = 1;
    for (int k = 0; k < total_slots + 5; k++) {
        dataloader_next_batch(&dl);
        in_order &= batch_slot(&dl) == k % total_slots;
    }
    expect(in_order, "unshuffled: slots in file order, wrapping to the next epoch");
    dataloader_free(&dl);

    // shuffled: each epoch a permutation of all slots, epochs differ
    dataloader_init(&dl, pattern, B, T, 0, 1, 1, 42, GPT2_VOCAB_SIZE);
    int seen[2][TOTAL_SLOTS], order[2][TOTAL_SLOTS], valid = 1;
    memset(seen, 0, sizeof(seen));
    for (int e = 0; e < 2; e++) {
        for (int k = 0; k < total_slots; k++) {
            dataloader_next_batch(&dl);
            int s = batch_slot(&dl);
            valid &= s >= 0;
            if (s >= 0) seen[e][s]++;
            order[e][k] = s;
        }
    }
    int each_once = valid;
    for (int e = 0; e < 2; e++)
        for (int s = 0; s < total_slots; s++) each_once &= seen[e][s] == 1;
    expect(each_once, "shuffled: every epoch reads every slot exactly once");
    expect(memcmp(order[0], order[1], sizeof(order[0])) != 0, "shuffled: epochs in different orders");
    int shuffled = 0;
    for (int k = 0; k < total_slots; k++) shuffled += order[0][k] != k;
    expect(shuffled > total_slots / 2, "shuffled: order differs from file order");

    // resume: a seek to a saved position replays the same batches
    dataloader_reset(&dl);
    for (int k = 0; k < 100; k++) dataloader_next_batch(&dl);  // into the second epoch
    int64_t epoch = dl.epoch, shard_pos = dl.shard_pos, group_pos = dl.group_pos;
    int expected[80];
    for (int k = 0; k < 80; k++) {
        dataloader_next_batch(&dl);
        expected[k] = batch_slot(&dl);
    }
    DataLoader resumed;
    dataloader_init(&resumed, pattern, B, T, 0, 1, 1, 42, GPT2_VOCAB_SIZE);
    dataloader_seek(&resumed, epoch, shard_pos, group_pos);
    int same = 1;
    for (int k = 0; k < 80; k++) {
        dataloader_next_batch(&resumed);
        same &= batch_slot(&resumed) == expected[k];
    }
    expect(same, "seek to a saved position replays the same 80 batches");
    dataloader_free(&resumed);
    dataloader_free(&dl);

    // distributed: 2 ranks read disjoint slots that together cover the data,
    // in the order one rank reads them (shuffled the same on any number of
    // ranks, so a run can resume on another number of ranks)
    DataLoader r0, r1, one;
    dataloader_init(&r0, pattern, B, T, 0, 2, 1, 7, GPT2_VOCAB_SIZE);
    dataloader_init(&r1, pattern, B, T, 1, 2, 1, 7, GPT2_VOCAB_SIZE);
    dataloader_init(&one, pattern, B, T, 0, 1, 1, 7, GPT2_VOCAB_SIZE);
    int owner[TOTAL_SLOTS];
    for (int s = 0; s < total_slots; s++) owner[s] = 0;
    int disjoint = 1, per_rank = (int)dataloader_batches_per_epoch(&r0);
    for (int k = 0; k < per_rank; k++) {
        dataloader_next_batch(&r0);
        dataloader_next_batch(&r1);
        int a = batch_slot(&r0), b = batch_slot(&r1);
        dataloader_next_batch(&one);
        int one_a = batch_slot(&one);
        dataloader_next_batch(&one);
        int one_b = batch_slot(&one);
        if (a < 0 || b < 0) { disjoint = 0; continue; }
        disjoint &= owner[a] == 0 && owner[b] == 0 && a != b && a == one_a && b == one_b;
        owner[a] = 1;
        owner[b] = 2;
    }
    int covered = 0;
    for (int s = 0; s < total_slots; s++) covered += owner[s] != 0;
    expect(disjoint, "2 ranks: disjoint slots, rank r takes slot r of each pair one rank reads");
    expect(covered == total_slots, "2 ranks: together they cover every slot in one epoch");
    dataloader_free(&r0);
    dataloader_free(&r1);
    dataloader_free(&one);

    // 64-bit offsets: a sparse shard of 1.2e9 tokens (2.4 GB), read at its end
    snprintf(path, sizeof(path), "%s/big_000.bin", argv[1]);
    const int64_t big = 1200000000;
    int32_t header[HEADER_INTS] = {SHARD_MAGIC, SHARD_VERSION, (int32_t)big};
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)HEADER_BYTES + 2 * big) != 0) fatal("cannot make '%s'", path);
    if (write(fd, header, HEADER_BYTES) != (ssize_t)HEADER_BYTES) fatal("cannot write '%s'", path);
    int64_t last_slot = (big - 1) / (B * T) - 1;
    uint16_t marks[B * T + 1];
    for (int i = 0; i <= B * T; i++) marks[i] = (uint16_t)(1000 + i);
    off_t at = (off_t)HEADER_BYTES + 2 * last_slot * B * T;
    if (pwrite(fd, marks, sizeof(marks), at) != (ssize_t)sizeof(marks)) fatal("cannot write '%s'", path);
    close(fd);
    DataLoader bigdl;
    dataloader_init(&bigdl, path, B, T, 0, 1, 0, 0, GPT2_VOCAB_SIZE);
    dataloader_seek(&bigdl, 0, 0, last_slot);
    dataloader_next_batch(&bigdl);
    expect(bigdl.inputs[0] == 1000 && bigdl.targets[B * T - 1] == 1000 + B * T,
           "a shard over 2 GiB reads its last batch (64-bit offsets)");
    dataloader_free(&bigdl);
    remove(path);

    printf("%s: %d check(s) failed\n", failures ? "FAILED" : "all ok", failures);
    return failures ? 1 : 0;
}
