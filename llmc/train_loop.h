// llmc/train_loop.h: the training program both trainers share: flags,
// checkpoints in the output dir, resume, validation, samples, progress and
// the log. train_gpt2.c (CPU, fp32) and train_gpt2.cu (GPU, bf16) each
// define the model and include this file last, so the two take the same
// flags, read and write the same files and print the same lines.
//
// What the including trainer provides, before the #include:
//   TRAINER_SUMMARY                 a one-line description for --help
//   TRAINER_GPU                     defined by the GPU trainer: its own flags
//   gpt2_configure(&TrainConfig, &Comm)   takes the trainer's own settings (the GPU's:
//                                   -r, -w, -ge, -at, -aw, -as, -gr, -pk, -pi/-ps/-pf)
//                                   and this process's rank (the GPU to use), before
//                                   any model is built
//   GPT2                            the model: fields config (GPT2Config),
//                                   num_parameters and max_T (the longest T its
//                                   activations hold)
//   gpt2_build(&m, source, seed, B, T, &comm, zero_stage)   from a model file or
//                                   descriptor, spread over the ranks (llmc/zero.h;
//                                   comm NULL: one process): a rank allocates only
//                                   what it keeps; zero_stage GPT2_FORWARD_ONLY (comm
//                                   NULL): for sampling, no gradients or AdamW state
//   gpt2_free(&m)
//   gpt2_forward(&m, inputs, targets, B, T)   targets may be NULL
//   gpt2_mean_loss(&m)              the mean loss of that forward (with targets),
//                                   also after its backward
//   gpt2_position_losses(&m)        host pointer to that forward's B*T losses
//   gpt2_logits_row(&m, t)          host pointer to the Vp logits of row t
//                                   (of the B*T) after a forward
//   gpt2_params_checksum(&m)        with several ranks: CRC-32 of the parameters as
//                                   built, before sharding
//   gpt2_zero_grad, gpt2_backward(&m, loss_scale),
//   gpt2_reduce_gradients(&m)       sum the ranks' gradients
//   gpt2_clip_grad_norm(&m, max_norm) -> norm before clipping,
//   gpt2_update(&m, lr, beta1, beta2, eps, weight_decay, t)
//   gpt2_weights_finite(&m)         1 if the weights this rank holds (those a model
//                                   file gets) are all finite
//   gpt2_save(&m, model_path, state_path, &TrainState)   a collective: this rank's
//                                   state file, then (rank 0) the model file, atomically
//   gpt2_load_state(&m, dir, step, &TrainState)   AdamW moments and position of a
//                                   checkpoint written on any number of ranks
//   gpt2_describe_device(buf, size) e.g. "CPU, 2 threads" or the GPU's name
//   gpt2_peak_flops(&m)             the device's peak FLOP/s for MFU, or -1
//   gpt2_gpu_info(buf, size)        (GPU only) a line on the GPU's utilization, clocks,
//                                   power and temperature, for -lg
#ifndef LLMC_TRAIN_LOOP_H
#define LLMC_TRAIN_LOOP_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "args.h"
#include "checkpoint.h"
#include "comm.h"
#include "dataloader.h"
#include "hellaswag.h"
#include "logger.h"
#include "mfu.h"
#include "outlier.h"
#include "rand.h"
#include "rendezvous.h"
#include "sampler.h"
#include "schedulers.h"
#include "tokenizer.h"
#include "utils.h"
// ----------------------------------------------------------------------------
// the training program

typedef struct {
    const char *train_pattern, *val_pattern, *model_source, *output_dir, *tokenizer_path;
    const char *schedule, *prompt, *merges_path;
    const char *hellaswag_path;  // llm.c's hellaswag_val.bin: accuracy at every val step ("": off)
    int checkpoint_every, checkpoints_keep, checkpoints_major, resume;
    int B, T, total_batch, max_steps;
    float lr, final_frac, weight_decay, grad_clip, beta1, beta2;
    int warmup;
    int val_every, val_batches, sample_every, gen_tokens;
    float temperature;
    int top_k;
    int overfit, shuffle, seed;
    int zero_stage;      // ZeRO stage over the ranks of an mpirun (llmc/zero.h)
    float comm_timeout;  // seconds a collective may take before the job is ended
    const char *init_method;  // GPU only: how ranks meet: mpi, tcp (-ps host:port) or fs (-pf file)
    const char *rendezvous_server, *rendezvous_file;
    int num_processes, process_rank, gpus_per_node;  // GPU only, -pi tcp/fs: the ranks as given (-1: from the environment)
    float skip_loss_z, skip_norm_z;  // skip the update above these z-scores (0: never)
    int recompute;       // GPU only: 1 = recompute GELU's output in the backward, 2 = also the layernorms
    int master_weights;  // GPU only: 1 = fp32 master weights
    int profile;         // GPU only: 1 = GPU time per kernel family, printed at the end
    int gelu_fusion;     // GPU only: 1 = GELU, gelu' and dbias in matmul epilogues, 0 = their own kernels
    int matmul_autotune; // GPU only: 1 = time cuBLASLt's candidate algorithms per matmul shape, keep the fastest
    int attention_wgmma; // GPU only: 1 = our attention on Hopper's wgmma (llmc/attention_wgmma.cuh), 0 = mma.sync
    int attention_stored_ds; // GPU only: 1 = our attention's dq reads the dS its dkdv stores, 0 = dq recomputes dS
    int reduce_fp32;     // GPU only: 1 = gradients summed over the ranks in fp32, 0 = in bf16
    int log_gpu_every;   // GPU only: a line on the GPU's state every N steps (0: never)
    int tf32;            // GPU only: llm.c's -f, accepted; no fp32 matmul here for it to act on
} TrainConfig;

// defined by the including trainer, after this file (it needs TrainConfig)
void gpt2_configure(const TrainConfig *cfg, const Comm *comm);

static TrainConfig train_defaults(void) {
    TrainConfig c;
    memset(&c, 0, sizeof(c));
    c.train_pattern = "data/mobydick/mobydick_train_*.bin";
    c.val_pattern = "data/mobydick/mobydick_val_*.bin";
    c.model_source = "d6";
    c.output_dir = "";
    c.tokenizer_path = "build/gpt2_tokenizer.bin";
    c.schedule = "cosine";
    c.prompt = NULL;  // -p not given (-p "": a sample from the start token alone)
    c.merges_path = "build/gpt2_merges.bin";
    c.checkpoint_every = 0;
    c.checkpoints_keep = 0;
    c.checkpoints_major = 0;
    c.resume = 0;
    c.B = 4;
    c.T = 64;
    c.total_batch = -1;
    c.max_steps = -1;
    c.lr = 3e-4f;
    c.warmup = 0;
    c.final_frac = 0.1f;
    c.weight_decay = 0.1f;
    c.grad_clip = 1.0f;
    c.beta1 = 0.9f;
    c.beta2 = 0.95f;
    c.val_every = 20;
    c.val_batches = 20;
    c.sample_every = 20;
    c.gen_tokens = 64;
    c.temperature = 1.0f;
    c.top_k = 0;
    c.gelu_fusion = 1;
    c.attention_stored_ds = 1;
    c.tf32 = 1;
    c.skip_loss_z = 0.0f;
    c.skip_norm_z = 0.0f;
    c.overfit = 0;
    c.shuffle = 1;
    c.seed = 1337;
    c.zero_stage = 0;
    c.comm_timeout = 60.0f;
    c.init_method = "mpi";
    c.rendezvous_server = "";
    c.rendezvous_file = "";
    c.hellaswag_path = "";
    c.num_processes = c.process_rank = c.gpus_per_node = -1;
    return c;
}

#define MAX_INT 2147483647.0

static int train_flag_table(TrainConfig *c, ArgSpec *s) {
    ArgSpec table[] = {
        {"-i", "--train", ARG_STRING, &c->train_pattern, 0, 0, "train token shards (glob)"},
        {"-j", "--val", ARG_STRING, &c->val_pattern, 0, 0, "val token shards (glob; empty: no val)"},
        {"-e", "--model", ARG_STRING, &c->model_source, 0, 0, "model file, or descriptor d1..d64 (d12 = 124M)"},
        {"-o", "--output-dir", ARG_STRING, &c->output_dir, 0, 0, "output dir for log and checkpoints (empty: none)"},
        {"-n", "--checkpoint-every", ARG_INT, &c->checkpoint_every, 0, MAX_INT, "checkpoint every N steps (0: only at the end)"},
        {"-nk", "--checkpoints-keep", ARG_INT, &c->checkpoints_keep, 0, MAX_INT, "keep the last N checkpoints (0: all)"},
        {"-nm", "--checkpoints-major", ARG_INT, &c->checkpoints_major, 0, MAX_INT, "with -nk, also keep every checkpoint whose step is a multiple of N"},
        {"-y", "--resume", ARG_INT, &c->resume, 0, 1, "resume from the latest checkpoint in -o"},
        {"-b", "--batch-size", ARG_INT, &c->B, 1, 65536, "micro-batch size B"},
        {"-t", "--seq-len", ARG_INT, &c->T, 1, 1048576, "sequence length T (at most the model's)"},
        {"-d", "--total-batch", ARG_INT, &c->total_batch, -1, MAX_INT, "total batch in tokens, a multiple of B*T*ranks (-1: B*T*ranks)"},
        {"-x", "--max-steps", ARG_INT, &c->max_steps, -1, MAX_INT, "optimizer steps (-1: one epoch)"},
        {"-k", "--schedule", ARG_STRING, &c->schedule, 0, 0, "LR schedule: cosine, linear, constant, wsd"},
        {"-l", "--lr", ARG_FLOAT, &c->lr, 0, 10, "peak learning rate"},
        {"-u", "--warmup", ARG_INT, &c->warmup, 0, MAX_INT, "warmup steps"},
        {"-q", "--final-lr-frac", ARG_FLOAT, &c->final_frac, 0, 1, "final LR as a fraction of the peak"},
        {"-c", "--weight-decay", ARG_FLOAT, &c->weight_decay, 0, 10, "AdamW weight decay (2-D weights)"},
        {"-sl", "--skip-loss-z", ARG_FLOAT, &c->skip_loss_z, 0, 1e6, "skip the update when the loss z-score (last 128 steps) exceeds this (0: off)"},
        {"-sg", "--skip-norm-z", ARG_FLOAT, &c->skip_norm_z, 0, 1e6, "skip the update when the grad norm z-score exceeds this (0: off)"},
        {"-gc", "--grad-clip", ARG_FLOAT, &c->grad_clip, 0, 1e6, "clip gradients to this global norm (0: off)"},
        {"-b1", "--beta1", ARG_FLOAT, &c->beta1, 0, 0.999999, "AdamW beta1"},
        {"-b2", "--beta2", ARG_FLOAT, &c->beta2, 0, 0.999999, "AdamW beta2"},
        {"-v", "--val-every", ARG_INT, &c->val_every, 1, MAX_INT, "val loss every N steps"},
        {"-m", "--val-batches", ARG_INT, &c->val_batches, 1, MAX_INT, "batches per val loss"},
        {"-hs", "--hellaswag", ARG_STRING, &c->hellaswag_path, 0, 0, "HellaSwag file (llm.c's hellaswag_val.bin): its accuracy every -v steps (needs B >= 4)"},
        {"-s", "--sample-every", ARG_INT, &c->sample_every, 1, MAX_INT, "text sample every N steps"},
        {"-g", "--gen-tokens", ARG_INT, &c->gen_tokens, 0, 1048576, "tokens per sample (0: no samples)"},
        {"-tp", "--temperature", ARG_FLOAT, &c->temperature, 0, 100, "sampling temperature"},
        {"-tk", "--top-k", ARG_INT, &c->top_k, 0, MAX_INT, "sample from the top k tokens (0: all)"},
        {"-a", "--overfit", ARG_INT, &c->overfit, 0, 1, "train on the first batch only (debugging)"},
        {"-sh", "--shuffle", ARG_INT, &c->shuffle, 0, 1, "shuffle shards and batches each epoch"},
        {"-sd", "--seed", ARG_INT, &c->seed, 0, MAX_INT, "seed for init, shuffling and sampling"},
        {"-tz", "--tokenizer", ARG_STRING, &c->tokenizer_path, 0, 0, "tokenizer file for decoding samples"},
        {"-p", "--prompt", ARG_STRING, &c->prompt, 0, 0, "no training: continue this text by -g tokens and exit (\"\": a sample from nothing)"},
        {"-tm", "--merges", ARG_STRING, &c->merges_path, 0, 0, "BPE merges file, to encode -p"},
        {"-z", "--zero", ARG_INT, &c->zero_stage, 0, 3, "ZeRO stage with several ranks: 0 all-reduce, 1 shard AdamW, 2 + gradients, 3 + parameters"},
        {"-ct", "--comm-timeout", ARG_FLOAT, &c->comm_timeout, 0.1, 1e6, "seconds a collective may wait for the other ranks before the job ends"},
#ifdef TRAINER_GPU
        {"-r", "--recompute", ARG_INT, &c->recompute, 0, 2, "1: recompute GELU in the backward, not store it (less memory); 2: also ln1, ln2"},
        {"-w", "--master-weights", ARG_INT, &c->master_weights, 0, 1, "1: fp32 master weights for AdamW; model files in fp32"},
        {"-ge", "--gelu-fusion", ARG_INT, &c->gelu_fusion, 0, 1, "1: GELU, its gradient and the bias gradients in matmul epilogues; 0: separate kernels"},
        {"-at", "--matmul-autotune", ARG_INT, &c->matmul_autotune, 0, 1, "1: time cuBLASLt's candidate algorithms at each matmul shape's first call and keep the fastest, saved with the checkpoints in -o and used again by a run there (its resume keeps the bits; two fresh runs may differ); 0: its heuristic's first"},
        {"-aw", "--attention-wgmma", ARG_INT, &c->attention_wgmma, 0, 1, "1: our attention kernels on Hopper's wgmma (compute capability 9.0 only; new, see docs/gpu-validation.md); 0: on mma.sync, any GPU from sm_80"},
        {"-as", "--attention-stored-ds", ARG_INT, &c->attention_stored_ds, 0, 1, "1: our attention backward's dq reads the dS its dkdv stores (one matmul; B*NH*T*T/2 bf16 in the logits buffer, free then); 0: dq recomputes dS (three matmuls, no buffer)"},
        {"-f", "--tf32", ARG_INT, &c->tf32, 0, 1, "TF32 for fp32 matmuls (llm.c's flag): every matmul here takes bf16, so, as in llm.c's bf16 build, no effect"},
        {"-gr", "--grad-reduce-fp32", ARG_INT, &c->reduce_fp32, 0, 1, "several ranks: 1 sums gradients over them in fp32 (one rounding, twice the traffic); 0 in bf16"},
        {"-pk", "--profile-kernels", ARG_INT, &c->profile, 0, 1, "1: time each kernel family per step, print a table at the end"},
        {"-lg", "--log-gpu-every", ARG_INT, &c->log_gpu_every, 0, MAX_INT, "every N steps, print the GPU's utilization, clocks, power, temperature and what holds its clocks down (0: never)"},
        {"-pi", "--init-method", ARG_STRING, &c->init_method, 0, 0, "how the ranks meet: mpi, tcp (rank 0 at -ps) or fs (a file, -pf); without MPI the ranks come from the environment"},
        {"-ps", "--rendezvous-server", ARG_STRING, &c->rendezvous_server, 0, 0, "-pi tcp: rank 0's host:port"},
        {"-pf", "--rendezvous-file", ARG_STRING, &c->rendezvous_file, 0, 0, "-pi fs: a fresh file path every rank sees"},
        {"-pn", "--num-processes", ARG_INT, &c->num_processes, -1, 1 << 20, "-pi tcp or fs: the number of ranks (-1: from the launcher's environment)"},
        {"-pr", "--process-rank", ARG_INT, &c->process_rank, -1, 1 << 20, "-pi tcp or fs: this process's rank, below -pn (-1: from the environment)"},
        {"-pg", "--gpus-per-node", ARG_INT, &c->gpus_per_node, -1, 1 << 16, "-pi tcp or fs: GPUs per machine; a rank takes GPU rank % this (-1: its local rank from the environment)"},
#endif
    };
    int n = (int)(sizeof(table) / sizeof(table[0]));
    if (s) memcpy(s, table, sizeof(table));
    return n;
}

// ---- checkpoints in the output dir (llmc/checkpoint.h names the files)

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

// The steps of the complete checkpoints (the model file and the state file
// of every rank that wrote it) in dir, ascending, into *steps (malloc'ed);
// returns how many, and counts the incomplete ones into *incomplete when
// that is not NULL. Lists the directory itself, so names with glob
// characters are no problem.
static int checkpoint_steps(const char *dir, int **steps, int *incomplete) {
    int n = 0, cap = 16;
    if (incomplete) *incomplete = 0;
    *steps = (int *)malloc_check((size_t)cap * sizeof(int));
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int step, len = 0;
        if (sscanf(e->d_name, "model_%8d.bin%n", &step, &len) != 1 || len != 18 || step < 0) continue;
        if (checkpoint_ranks(dir, step) == 0) {  // a state file missing: not resumable
            if (incomplete) (*incomplete)++;
            continue;
        }
        if (n == cap) *steps = (int *)realloc(*steps, (size_t)(cap *= 2) * sizeof(int));
        if (!*steps) fatal("out of memory listing '%s'", dir);
        (*steps)[n++] = step;
    }
    closedir(d);
    qsort(*steps, (size_t)n, sizeof(int), compare_ints);
    return n;
}

// Latest complete checkpoint's step in dir, or -1; counts the incomplete
// ones as checkpoint_steps does.
static int latest_checkpoint(const char *dir, int *incomplete) {
    int *steps, n = checkpoint_steps(dir, &steps, incomplete);
    int latest = n > 0 ? steps[n - 1] : -1;
    free(steps);
    return latest;
}

// -nk: keeps the newest `keep` checkpoints (0: all), and (-nm) every one
// whose step is a multiple of `major`; removes the rest: the model file
// first (the checkpoint is then incomplete), then every rank's state file.
static void remove_old_checkpoints(const char *dir, int keep, int major) {
    if (keep <= 0) return;
    int *steps, n = checkpoint_steps(dir, &steps, NULL);
    for (int i = 0; i < n - keep; i++) {
        if (major > 0 && steps[i] % major == 0) continue;
        char mp[4200], sp[4200];
        int ranks = checkpoint_ranks(dir, steps[i]);
        checkpoint_paths(mp, sp, sizeof(mp), dir, steps[i], 0);
        remove(mp);
        for (int rank = 0; rank < ranks; rank++) {
            checkpoint_paths(mp, sp, sizeof(mp), dir, steps[i], rank);
            remove(sp);
        }
    }
    free(steps);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The tokenizer file is optional: without it samples print as token ids.
static int tokenizer_load_optional(Tokenizer *tok, const char *path) {
    struct stat st;
    if (path[0] == '\0' || stat(path, &st) != 0) return 0;
    tokenizer_init(tok, path);
    return 1;
}

static void print_token(const Tokenizer *tok, int have_tok, int id) {
    size_t len = 0;
    const uint8_t *bytes = have_tok ? tokenizer_decode(tok, id, &len) : NULL;
    if (bytes) {
        fwrite(bytes, 1, len, stdout);
    } else {
        printf("%d ", id);
    }
    fflush(stdout);
}

// Continues prompt[0..n_prompt) by n tokens, printing them as they come.
// The context is the last max_T tokens (the activations' allocated length).
static void generate(GPT2 *model, const int *prompt, int n_prompt, int n, float temperature,
                     int top_k, Rng64 *rng, const Tokenizer *tok, int have_tok) {
    int *tokens = (int *)malloc_check(((size_t)n_prompt + n) * sizeof(int));
    float *work = alloc_floats((size_t)model->config.vocab_size);
    memcpy(tokens, prompt, (size_t)n_prompt * sizeof(int));
    for (int i = n_prompt; i < n_prompt + n; i++) {
        int len = i < model->max_T ? i : model->max_T;
        gpt2_forward(model, tokens + i - len, NULL, 1, len);
        const float *logits = gpt2_logits_row(model, len - 1);
        tokens[i] = sample_token(logits, model->config.vocab_size, temperature, top_k, work, rng);
        print_token(tok, have_tok, tokens[i]);
    }
    printf("\n");
    free(tokens);
    free(work);
}

// -p: encodes the prompt (after start_token, as a new document), prints it
// and continues it by cfg->gen_tokens sampled tokens.
static void continue_prompt(const TrainConfig *cfg, const char *source, int max_seq_len,
                            int vocab_size, int start_token, Tokenizer *tok, Rng64 *rng) {
    tokenizer_init_encoder(tok, cfg->merges_path);
    TokenBuf ids;
    memset(&ids, 0, sizeof(ids));
    tokbuf_push(&ids, start_token);
    tokenizer_encode(tok, cfg->prompt, strlen(cfg->prompt), 0, &ids);
    for (size_t i = 1; i < ids.n; i++) {  // a model with a smaller vocabulary than the tokenizer's
        if (ids.ids[i] >= vocab_size) {
            fatal("-p encodes to token %d, outside the model's vocabulary of %d (tokenizer '%s')",
                  ids.ids[i], vocab_size, cfg->tokenizer_path);
        }
    }
    int context = (int)ids.n + cfg->gen_tokens;
    if (context > max_seq_len) context = max_seq_len;
    GPT2 model;
    gpt2_build(&model, source, (uint32_t)cfg->seed, 1, context, NULL, GPT2_FORWARD_ONLY);
    fputs(cfg->prompt, stdout);
    generate(&model, ids.ids, (int)ids.n, cfg->gen_tokens, cfg->temperature, cfg->top_k, rng,
             tok, 1);
    tokbuf_free(&ids);
    gpt2_free(&model);
}

// Mean loss over the first batches of the val set; with several ranks each
// takes its share (`batches` per rank), so every rank count sees the same data.
static float val_loss(GPT2 *model, DataLoader *val, int batches, Comm *comm) {
    dataloader_reset(val);
    double sum = 0.0;
    for (int i = 0; i < batches; i++) {
        dataloader_next_batch(val);
        gpt2_forward(model, val->inputs, val->targets, val->B, val->T);
        sum += gpt2_mean_loss(model);
    }
    comm_allreduce_sum_f64(comm, &sum, 1, "all-reduce of the val loss");
    return (float)(sum / ((double)batches * comm->world));
}

// HellaSwag accuracy (llmc/hellaswag.h) over hs's examples (those that fit
// T), B/4 per forward: each rank takes its share, and every rank runs the
// same number of forwards (ZeRO-3 gathers parameters in them), padding
// with empty rows. *counted: the examples scored, over all ranks.
static double hellaswag_accuracy(GPT2 *model, const HellaSwag *hs, int B, int T, Comm *comm, int *counted) {
    int n = hs->num_examples;
    int per_batch = B / HELLASWAG_COMPLETIONS, per_round = per_batch * comm->world;
    // (rows past the last 4 when B % 4 != 0 stay token 0, unscored)
    int *inputs = (int *)calloc_check((size_t)B * T, sizeof(int)), *targets = (int *)calloc_check((size_t)B * T, sizeof(int));
    char *mask = (char *)calloc_check((size_t)B * T, 1);
    double tally[2] = {0.0, 0.0};  // right, scored
    double t0 = comm_now(), shown = t0;
    for (int first = 0; first < n; first += per_round) {
        int mine = first + comm->rank * per_batch;   // this rank's first example of the round
        double now = comm_now();
        if (now - shown >= 10.0) {  // long (all of HellaSwag on a CPU): show progress
            double done = (double)first / n;
            printf("hellaswag: %d of %d examples, about %.0f s left\n", first, n, (now - t0) * (1 - done) / done);
            fflush(stdout);
            shown = now;
        }
        for (int r = 0; r < per_batch; r++) {
            hellaswag_rows(mine + r < n ? &hs->examples[mine + r] : NULL, r, T, inputs, targets, mask);
        }
        gpt2_forward(model, inputs, targets, B, T);
        const float *losses = gpt2_position_losses(model);
        for (int r = 0; r < per_batch && mine + r < n; r++) {
            tally[0] += hellaswag_pick(losses, mask, r, T) == hs->examples[mine + r].label;
            tally[1] += 1.0;
        }
    }
    comm_allreduce_sum_f64(comm, tally, 2, "all-reduce of the HellaSwag counts");
    free(inputs), free(targets), free(mask);
    *counted = (int)tally[1];
    return tally[1] > 0 ? tally[0] / tally[1] : 0.0;
}

// Every rank must run the same configuration on the same model and data: a
// rank started with other flags or files would train something else, or
// hang in a collective. Compares what matters with rank 0's, at start.
static void check_ranks_agree(Comm *comm, const TrainConfig *cfg, const GPT2Config *mc,
                              uint32_t params_crc, const DataLoader *train, int resume_step,
                              int argc, char **argv) {
    float lr = cfg->lr;
    uint32_t lr_bits;
    memcpy(&lr_bits, &lr, sizeof(lr_bits));
    uint32_t flags_crc = 0;  // every other flag: the command line, argument by argument
    for (int i = 1; i < argc; i++) flags_crc = crc32_update(flags_crc, argv[i], strlen(argv[i]) + 1);
    const char *names[] = {"model config (L, C, V)", "model parameters (checksum)", "-b", "-t", "-d",
                           "-x", "-z", "-l", "-sd", "train data (tokens)", "checkpoint to resume",
                           "the command line (checksum)"};
    enum { N_CHECKS = 12 };
    int64_t mine[N_CHECKS] = {
        ((int64_t)mc->num_layers << 40) ^ ((int64_t)mc->channels << 24) ^ mc->vocab_size,
        params_crc, cfg->B, cfg->T, cfg->total_batch, cfg->max_steps, cfg->zero_stage,
        lr_bits, cfg->seed, train->total_tokens, resume_step, flags_crc};
    int64_t *all = (int64_t *)malloc_check(sizeof(mine) * (size_t)comm->world);
    comm_allgather_bytes(comm, mine, all, sizeof(mine), "all-gather of the configuration");
    for (int q = 1; q < comm->world; q++) {
        for (int i = 0; i < N_CHECKS; i++) {
            if (all[q * N_CHECKS + i] != all[i]) {
                fatal("ranks disagree on %s: rank %d has %lld, rank 0 %lld; every rank must get "
                      "the same flags and files", names[i], q, (long long)all[q * N_CHECKS + i],
                      (long long)all[i]);
            }
        }
    }
    free(all);
}

static void format_eta(char *out, size_t size, double seconds) {
    if (!(seconds < 3.6e8)) seconds = 3.6e8;  // 100,000 hours: clamp before int
    int s = (int)(seconds + 0.5);
    if (s >= 3600) snprintf(out, size, "%dh%02dm", s / 3600, (s / 60) % 60);
    else snprintf(out, size, "%dm%02ds", s / 60, s % 60);
}

int main(int argc, char **argv) {
    check_omp_num_threads();
    TrainConfig cfg = train_defaults();
    ArgSpec specs[64];
    int nspecs = train_flag_table(&cfg, specs);
    args_parse(argc, argv, TRAINER_SUMMARY, specs, nspecs);
    Comm comm;
    if (cfg.rendezvous_server[0] && strcmp(cfg.init_method, "tcp") != 0) fatal("-ps is for -pi tcp");
    if (cfg.rendezvous_file[0] && strcmp(cfg.init_method, "fs") != 0) fatal("-pf is for -pi fs");
    char host[256];
    int port;
    if (strcmp(cfg.init_method, "tcp") == 0 && !rendezvous_parse_server(cfg.rendezvous_server, host, &port)) {
        fatal("-pi tcp needs -ps host:port (port 1..65535), got '%s'", cfg.rendezvous_server);
    }
    if (strcmp(cfg.init_method, "mpi") == 0) {
        if (cfg.num_processes >= 0 || cfg.process_rank >= 0 || cfg.gpus_per_node >= 0) {
            fatal("-pn, -pr and -pg are for -pi tcp or fs: under -pi mpi, mpirun numbers the ranks");
        }
        comm_init(&comm, &argc, &argv);
    } else if (strcmp(cfg.init_method, "tcp") == 0 || strcmp(cfg.init_method, "fs") == 0) {
        // (the GPU trainer's model carries the collectives over NCCL)
        comm_init_without_mpi(&comm, cfg.num_processes, cfg.process_rank, cfg.gpus_per_node);
    } else {
        fatal("-pi must be mpi, tcp or fs, got '%s'", cfg.init_method);
    }
    comm.timeout_s = cfg.comm_timeout;
    int rank = comm.rank, world_size = comm.world;
    if (rank > 0 && !freopen("/dev/null", "w", stdout)) {  // rank 0 reports; errors still show
        fatal("cannot silence stdout");
    }
    gpt2_configure(&cfg, &comm);

    LRScheduler sched;
    int schedule_type = lr_schedule_from_name(cfg.schedule);
    if (schedule_type < 0) fatal("-k must be cosine, linear, constant or wsd, got '%s'", cfg.schedule);
    if ((cfg.resume || cfg.checkpoints_keep || cfg.checkpoint_every) && cfg.output_dir[0] == '\0') {
        fatal("-y, -n and -nk need an output dir (-o)");
    }
    if (strlen(cfg.output_dir) > 4000) fatal("-o is longer than 4000 characters");
    if (cfg.total_batch == 0) fatal("-d must be -1 (= B*T) or a number of tokens, got 0");
    if (cfg.output_dir[0]) {
        struct stat st;
        if (stat(cfg.output_dir, &st) != 0 && mkdir(cfg.output_dir, 0755) != 0 &&
            stat(cfg.output_dir, &st) != 0) {  // (another rank may have made it meanwhile)
            fatal("cannot create output dir '%s'", cfg.output_dir);
        }
    }

    // model, possibly from the latest checkpoint
    int incomplete = 0;
    int resume_step = cfg.resume ? latest_checkpoint(cfg.output_dir, &incomplete) : -1;
    if (cfg.resume && resume_step < 0) {
        fatal("-y 1: no checkpoint (model + state file of every rank) in '%s' to resume from%s",
              cfg.output_dir, incomplete ? ": the model files there lack a rank's state file" : "");
    }
    if (!cfg.resume && cfg.output_dir[0] && latest_checkpoint(cfg.output_dir, NULL) >= 0) {
        fatal("'%s' already holds checkpoints: resume them with -y 1, or choose another -o",
              cfg.output_dir);
    }
    char model_path[4200], state_path[4200];
    if (resume_step >= 0) {
        checkpoint_paths(model_path, state_path, sizeof(model_path), cfg.output_dir, resume_step, 0);
    }
    const char *source = resume_step >= 0 ? model_path : cfg.model_source;
    GPT2Config probe;
    gpt2_read_config(source, &probe);
    // documents (and samples) start with <|endoftext|>; a model with a
    // smaller vocabulary than GPT-2's starts from token 0 instead
    int start_token = GPT2_EOT < probe.vocab_size ? GPT2_EOT : 0;
    Tokenizer tok;
    int have_tok = tokenizer_load_optional(&tok, cfg.tokenizer_path);
    Rng64 sample_rng = {(uint64_t)cfg.seed * 0x2545f4914f6cdd1dull + 1};
    if (cfg.prompt) {  // generation only
        if (!have_tok) fatal("-p needs the tokenizer file (-tz '%s' not found; make vocab)", cfg.tokenizer_path);
        continue_prompt(&cfg, source, probe.max_seq_len, probe.vocab_size, start_token, &tok, &sample_rng);
        tokenizer_free(&tok);
        comm_finalize(&comm);
        return 0;
    }
    // the batch is checked against the model and the data before allocating
    if (cfg.T > probe.max_seq_len) {
        fatal("-t %d exceeds the model's maximum sequence length %d", cfg.T, probe.max_seq_len);
    }
    int B = cfg.B, T = cfg.T;
    if ((int64_t)B * T * world_size > INT32_MAX) {
        fatal("-b %d x -t %d x %d ranks is more than 2^31 tokens per micro-batch", B, T, world_size);
    }
    if (cfg.total_batch == -1) cfg.total_batch = B * T * world_size;
    if (cfg.total_batch % (B * T * world_size) != 0) {
        fatal("-d %d is not a multiple of B*T*ranks = %d", cfg.total_batch, B * T * world_size);
    }
    int accum_steps = cfg.total_batch / (B * T * world_size);

    DataLoader train_loader, val_loader;
    dataloader_init(&train_loader, cfg.train_pattern, B, T, rank, world_size, cfg.shuffle,
                    (uint64_t)cfg.seed, probe.vocab_size);
    int use_val = cfg.val_pattern[0] != '\0';
    if (use_val) {
        dataloader_init(&val_loader, cfg.val_pattern, B, T, rank, world_size, 0, 0, probe.vocab_size);
        // -m counts batches over all ranks: each rank takes its share
        // (rounded up: the same data on any number of ranks when -m divides)
        int64_t avail = dataloader_batches_per_epoch(&val_loader);
        int64_t share = ((int64_t)cfg.val_batches + world_size - 1) / world_size;
        cfg.val_batches = (int)(share < avail ? share : avail);
    }

    GPT2 model;
    gpt2_build(&model, source, (uint32_t)cfg.seed, B, T, &comm, cfg.zero_stage);  // (and the GPUs' communication)
    const GPT2Config *mc = &model.config;
    if (world_size > 1) {
        check_ranks_agree(&comm, &cfg, mc, gpt2_params_checksum(&model), &train_loader, resume_step, argc, argv);
    }
    int64_t epoch_steps = dataloader_batches_per_epoch(&train_loader) / accum_steps;
    if (cfg.max_steps == -1) {
        if (epoch_steps == 0) {
            fatal("-x -1 (one epoch): the training data (%lld tokens) is less than one step of -d %lld tokens",
                  (long long)train_loader.total_tokens, (long long)accum_steps * B * T * world_size);
        }
        cfg.max_steps = (int)epoch_steps;
    }
    sched = (LRScheduler){(LRScheduleType)schedule_type, cfg.lr, cfg.warmup, cfg.max_steps, cfg.final_frac};

    int start_step = 0;
    if (resume_step >= 0) {
        TrainState st;
        gpt2_load_state(&model, cfg.output_dir, resume_step, &st);
        if (st.B != B || st.T != T) {
            fatal("'%s' was written with B=%d T=%d, this run has B=%d T=%d", state_path, st.B, st.T, B, T);
        }
        if (st.step != resume_step) {
            fatal("'%s' says step %d, its name says %d", state_path, st.step, resume_step);
        }
        if (st.step >= cfg.max_steps) {
            fatal("checkpoint step %d is already at or past -x %d", st.step, cfg.max_steps);
        }
        start_step = st.step;
        // st.group_pos groups of st.world_size slots are used up: on another
        // number of ranks, continue at the first group not yet started
        if (st.group_pos < 0 || st.group_pos > ((int64_t)1 << 40) || st.epoch < 0 ||
            st.epoch > ((int64_t)1 << 40)) {
            fatal("'%s' holds an invalid data position: epoch %lld, batch %lld", state_path,
                  (long long)st.epoch, (long long)st.group_pos);
        }
        int64_t group_pos = st.group_pos;
        if (st.world_size != world_size) {
            int64_t slots = st.group_pos * st.world_size;
            group_pos = (slots + world_size - 1) / world_size;
            dataloader_seek(&train_loader, st.epoch, st.shard_pos, 0);
            if (group_pos > train_loader.num_groups) group_pos = train_loader.num_groups;
            if (group_pos * world_size > slots) {
                printf("resuming on %d ranks from %d: %lld batch(es) of this shard skipped\n",
                       world_size, st.world_size, (long long)(group_pos * world_size - slots));
            }
        }
        dataloader_seek(&train_loader, st.epoch, st.shard_pos, group_pos);
        sample_rng.state = st.rng_state;
        printf("resuming from step %d (%s, written on %d rank%s)\n", start_step, model_path,
               st.world_size, st.world_size == 1 ? "" : "s");
    }
    Logger logger;
    logger_init(&logger, rank == 0 ? cfg.output_dir : "", resume_step >= 0);

    char device[256];
    gpt2_describe_device(device, sizeof(device));
    printf("model: L=%d NH=%d C=%d maxT=%d V=%d (Vp=%d), %.2fM parameters\n", mc->num_layers,
           mc->num_heads, mc->channels, mc->max_seq_len, mc->vocab_size, mc->padded_vocab_size,
           model.num_parameters / 1e6);
    printf("train: %lld tokens in %d shard(s), %lld steps per epoch; val: %s\n",
           (long long)train_loader.total_tokens, train_loader.num_shards, (long long)epoch_steps,
           use_val ? cfg.val_pattern : "off");
    printf("batch: B=%d T=%d, %d accumulation step(s), %d tokens per step; %d steps; %s\n",
           B, T, accum_steps, cfg.total_batch, cfg.max_steps, device);
    if (world_size > 1) printf("ranks: %d, ZeRO stage %d\n", world_size, cfg.zero_stage);
    HellaSwag hs;
    memset(&hs, 0, sizeof(hs));
    if (cfg.hellaswag_path[0]) {
        if (B < HELLASWAG_COMPLETIONS) fatal("-hs scores 4 completions per forward: it needs -b 4 or more, got %d", B);
        hellaswag_load(&hs, cfg.hellaswag_path, mc->vocab_size, T);
        if (hs.num_examples == 0) fatal("-hs: none of the %d examples of '%s' fits T=%d", hs.num_in_file, cfg.hellaswag_path, T);
        printf("hellaswag: %d examples, %d of them fit T=%d\n", hs.num_in_file, hs.num_examples, T);
    }

    double train_seconds = 0.0;
    int timed_steps = 0;
    OutlierDetector loss_outliers, norm_outliers;
    memset(&loss_outliers, 0, sizeof(loss_outliers));
    memset(&norm_outliers, 0, sizeof(norm_outliers));
    for (int step = start_step; step <= cfg.max_steps; step++) {
        int last = step == cfg.max_steps;
        comm.step = step + 1;
        if (use_val && (step % cfg.val_every == 0 || last)) {
            float vl = val_loss(&model, &val_loader, cfg.val_batches, &comm);
            if (!isfinite(vl)) fatal("step %d: val loss %f is not finite", step, vl);
            printf("step %d/%d | val loss %.4f\n", step, cfg.max_steps, vl);
            logger_val(&logger, step, vl);
        }
        if (hs.num_examples > 0 && (step % cfg.val_every == 0 || last)) {
            int counted;
            double acc = hellaswag_accuracy(&model, &hs, B, T, &comm, &counted);
            printf("step %d/%d | hellaswag %.4f (%d examples)\n", step, cfg.max_steps, acc, counted);
            logger_hellaswag(&logger, step, acc);
        }
        if (cfg.gen_tokens > 0 && step > start_step && (step % cfg.sample_every == 0 || last)) {
            printf("sample: ");
            generate(&model, &start_token, 1, cfg.gen_tokens, cfg.temperature, cfg.top_k, &sample_rng, &tok,
                     have_tok);
        }
        if (cfg.output_dir[0] && step > start_step &&
            (last || (cfg.checkpoint_every > 0 && step % cfg.checkpoint_every == 0))) {
            checkpoint_paths(model_path, state_path, sizeof(model_path), cfg.output_dir, step, rank);
            // checked on every rank before any file is written: a bad update leaves no
            // state files without their model file, and no rank waits for the others' files
            double bad = !gpt2_weights_finite(&model);
            comm_allreduce_sum_f64(&comm, &bad, 1, "all-reduce of the weights check");
            if (bad > 0) {  // (the last good checkpoint stays the latest)
                fatal("step %d: the weights hold NaN or inf; not writing '%s'; try a lower -l", step, model_path);
            }
            TrainState st = {step, world_size, rank, B, T, (int64_t)model.num_parameters,
                             train_loader.epoch, train_loader.shard_pos, train_loader.group_pos,
                             sample_rng.state};
            gpt2_save(&model, model_path, state_path, &st);
            if (rank == 0) remove_old_checkpoints(cfg.output_dir, cfg.checkpoints_keep, cfg.checkpoints_major);
            printf("checkpoint: %s\n", model_path);
        }
        if (last) break;

        // one optimizer step: accumulate gradients over micro-batches
        double t0 = now_seconds();
        gpt2_zero_grad(&model);
        double loss_sum = 0.0;
        for (int micro = 0; micro < accum_steps; micro++) {
            if (!cfg.overfit) {
                dataloader_next_batch(&train_loader);
            } else if (step == start_step && micro == 0) {  // -a: always the first batch
                dataloader_reset(&train_loader);
                dataloader_next_batch(&train_loader);
            }
            gpt2_forward(&model, train_loader.inputs, train_loader.targets, B, T);
            gpt2_backward(&model, 1.0f / ((float)accum_steps * world_size));
            loss_sum += gpt2_mean_loss(&model);   // (the GPU trainer computes it in the backward)
        }
        gpt2_reduce_gradients(&model);
        comm_allreduce_sum_f64(&comm, &loss_sum, 1, "all-reduce of the loss");
        float loss = (float)(loss_sum / ((double)accum_steps * world_size));
        float norm = gpt2_clip_grad_norm(&model, cfg.grad_clip);
        if (!isfinite(loss) || !isfinite(norm)) {
            fatal("step %d: loss %f, grad norm %f is not finite; try a lower -l", step + 1, loss, norm);
        }
        float lr = lr_at_step(&sched, step);
        // an outlier step (a bad batch, a loss spike) is better skipped than learned from
        double loss_z = outlier_update(&loss_outliers, loss), norm_z = outlier_update(&norm_outliers, norm);
        if (cfg.skip_loss_z > 0 && loss_z > cfg.skip_loss_z) {
            printf("step %d: loss z-score %.2f > -sl %.2f: update skipped\n", step + 1, loss_z, cfg.skip_loss_z);
        } else if (cfg.skip_norm_z > 0 && norm_z > cfg.skip_norm_z) {
            printf("step %d: grad norm z-score %.2f > -sg %.2f: update skipped\n", step + 1, norm_z, cfg.skip_norm_z);
        } else {
            gpt2_update(&model, lr, cfg.beta1, cfg.beta2, 1e-8f, cfg.weight_decay, step + 1);
        }
        double dt = now_seconds() - t0;
        if (step > start_step) {  // the first step warms caches: leave it out of the ETA
            train_seconds += dt;
            timed_steps++;
        }
        double tok_s = cfg.total_batch / dt;
        char eta[32] = "?";
        if (timed_steps > 0) {
            format_eta(eta, sizeof(eta), train_seconds / timed_steps * (cfg.max_steps - step - 1));
        }
        // model FLOPs utilisation, where the device's peak is known (llmc/mfu.h)
        char mfu[32] = "";
        double peak = gpt2_peak_flops(&model);
        if (peak > 0) {
            double flops = gpt2_flops_per_token(mc, model.num_parameters, T) * tok_s;
            snprintf(mfu, sizeof(mfu), " | MFU %.1f%%", 100.0 * flops / peak);
        }
        printf("step %d/%d | loss %.4f | lr %.2e | norm %.3f | %.1f ms | %.0f tok/s%s | ETA %s\n",
               step + 1, cfg.max_steps, loss, lr, norm, dt * 1e3, tok_s, mfu, eta);
#ifdef TRAINER_GPU
        if (cfg.log_gpu_every > 0 && (step + 1) % cfg.log_gpu_every == 0) {
            char gpu[320];
            gpt2_gpu_info(gpu, sizeof(gpu));
            printf("%s\n", gpu);
        }
#endif
        fflush(stdout);
        logger_train(&logger, step + 1, loss, lr, norm, dt * 1e3, tok_s);
    }

    logger_close(&logger);
    hellaswag_free(&hs);
    if (have_tok) tokenizer_free(&tok);
    dataloader_free(&train_loader);
    if (use_val) dataloader_free(&val_loader);
    gpt2_free(&model);
    comm_finalize(&comm);
    return 0;
}

#endif  // LLMC_TRAIN_LOOP_H
