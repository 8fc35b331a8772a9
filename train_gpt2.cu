/*
 * train_gpt2.cu: GPT-2 training on NVIDIA GPUs (one per rank; NCCL and ZeRO
 * 0-3 across them), in bf16 mixed precision.
 *
 * The same model as train_gpt2.c (the readable fp32 reference), with the
 * layers as the GPU kernels of the llmc .cuh headers: parameters, gradients and
 * activations in bf16, one contiguous buffer each; AdamW moments in fp32;
 * matmuls through cuBLASLt with the bias and GELU in its epilogue
 * (llmc/matmul.cuh); our own flash-style attention on the tensor cores
 * with its tiles in registers (llmc/attention_mma.cuh; with -aw 1 on Hopper's
 * wgmma, llmc/attention_wgmma.cuh), or built with USE_CUDNN=1 cuDNN's
 * (llmc/attention_cudnn.cuh); the classifier's softmax, loss and gradient
 * in one pass over the logits (at ZeRO-2/3, where wte moves in vocabulary
 * chunks, two passes over the chunks). Every kernel of ours is deterministic, so two
 * runs with the same flags give the same bits (cuDNN's attention backward
 * is not: it adds dQ with atomics).
 *
 * The program around the model (flags, data, schedules, validation,
 * samples, checkpoints, resume, the log) is llmc/train_loop.h, shared with
 * the CPU trainer: same flags, same files. Model files are written in bf16
 * (version 5), or with -w 1 as the fp32 master weights (version 3); each
 * trainer reads the other's.
 *
 * Conventions as in train_gpt2.c: B batch, T sequence length, C channels,
 * NH heads, L layers, V vocab, Vp padded vocab; shapes like (B,T,C).
 *
 * Build: make train_gpt2cu (nvcc; USE_CUDNN=1 for cuDNN's attention), or
 * make build/emu/plain/train_gpt2cu (the CUDA emulation of dev/emu: the
 * same code on the CPU, for tests).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmc/checkpoint.h"
#include "llmc/comm.h"
#include "llmc/gpt2.h"
#include "llmc/gpu_info.h"
#include "llmc/mfu.h"
#include "llmc/utils.h"
#include "llmc/zero.h"

#include "llmc/cuda_common.cuh"
#include "llmc/comm_gpu.cuh"
#include "llmc/adamw.cuh"
#include "llmc/attention_wgmma.cuh"
#ifdef USE_CUDNN
#include "llmc/attention_cudnn.cuh"
#endif
#include "llmc/cast.cuh"
#include "llmc/encoder.cuh"
#include "llmc/fused_classifier.cuh"
#include "llmc/gelu.cuh"
#include "llmc/global_norm.cuh"
#include "llmc/layernorm.cuh"
#include "llmc/matmul.cuh"
#include "llmc/profile.cuh"

// ----------------------------------------------------------------------------
// the model's buffers on the GPU

// the GPU trainer's own settings from the command line (gpt2_configure)
static struct {
    int recompute;        // -r: 1 keeps one layer's GELU output, recomputed in the backward; 2 also ln1, ln2
    int master_weights;   // 1: fp32 master weights, updated by AdamW, rounded into the bf16 ones (-w)
    int profile;          // 1: time each kernel family per step, print a table at the end (-pk)
    int gelu_fusion;      // 1: GELU (gelu') in the fc (fc_proj) matmul's cuBLASLt epilogue, dbias in the dweight
                          // matmul's; 0: separate kernels (-ge)
    int reduce_fp32;      // 1: gradients summed over the ranks in fp32, rounded to bf16 once (-gr)
    int attention_wgmma;  // 1: our attention on wgmma (llmc/attention_wgmma.cuh), 0: on mma.sync (-aw)
    int attention_stored_ds;  // 1: our attention's dq reads the dS its dkdv stores, 0: dq recomputes dS (-as)
    const char *init_method, *rendezvous_server, *rendezvous_file;  // how the ranks meet (-pi, -ps, -pf)
} gpu_options = {0, 0, 0, 1, 0, 0, 1, "mpi", "", ""};

// the kernel families -pk 1 times (llmc/profile.cuh)
enum { K_COPY, K_ENCODER, K_LAYERNORM, K_MATMUL, K_ATTENTION, K_GELU, K_CLASSIFIER, K_NORM, K_ADAMW, K_COMM,
       K_FAMILIES };
static const char *const kernel_family_names[K_FAMILIES] = {
    "copies + idle", "encoder", "layernorm", "matmul", "attention", "gelu", "classifier", "global norm", "adamw",
    "communication"};

// the 16 parameter tensors of llmc/gpt2.h, in bf16 on the device
typedef struct {
    floatX *wte, *wpe, *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb;
    floatX *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb, *lnfw, *lnfb;
} ParameterTensorsGPU;

// What the forward pass keeps for the backward pass; per-layer tensors are
// stacked (L,...). Sized for (max_B, max_T); a smaller forward uses a prefix.
typedef struct {
    floatX *encoded;              // (B,T,C) token + position embedding
    floatX *ln1;                  // (L,B,T,C); (B,T,C), one layer's, with -r 2
    float *ln1_mean, *ln1_rstd;   // (L,B,T)
    floatX *qkv;                  // (L,B,T,3C)
    floatX *atty;                 // (L,B,T,C) attention output, heads side by side
    float *att_lse;               // (L,B,NH,T) logsumexp of each attention row
    floatX *residual2;            // (L,B,T,C) residual + attention branch
    floatX *ln2;                  // (L,B,T,C); (B,T,C), one layer's, with -r 2
    float *ln2_mean, *ln2_rstd;   // (L,B,T)
    floatX *fch;                  // (L,B,T,4C) MLP hidden, before GELU
    floatX *fch_gelu;             // (L,B,T,4C) after GELU; (B,T,4C), one layer's, with -r 1
    floatX *residual3;            // (L,B,T,C) residual2 + MLP branch: the block's output
    floatX *lnf;                  // (B,T,C) final layernorm
    float *lnf_mean, *lnf_rstd;   // (B,T)
    floatX *logits;               // (ceil(B*T/HEAD_CHUNKS),Vp): one chunk of rows' logits, then dlogits; in the
                                  // blocks' backward, attention's dS (Scratch.att_dS; at least its size)
    float *losses;                // (B,T)
    float *head_max, *head_sum;   // (B,T) ZeRO-2/3: each row's max logit and sum of exp over the vocabulary chunks
    int *inputs, *targets;        // (B,T) token ids
} Activations;

// One layer's worth of gradients of activations and the kernels' scratch:
// the backward goes layer by layer and reuses them.
typedef struct {
    floatX *dresidual;   // (B,T,C) gradient flowing down the residual stream
    floatX *dln;         // (B,T,C) wrt a layernorm output
    floatX *datty;       // (B,T,C) wrt the attention output
    floatX *dqkv;        // (B,T,3C)
    floatX *dfch;        // (B,T,4C) wrt the fc's output (before GELU)
    floatX *branch;      // (B,T,C) forward: a branch's output before the residual add
    float *matmul;       // matmul_backward's scratch (dbias partials)
    float *layernorm;    // layernorm_backward's partial sums
    float *att_D;        // (B,NH,T) attention backward's rowsum(dout * out)
    floatX *att_dS;      // our attention backward's dS (attention_dS_bytes): Activations.logits, free from the
                         // head's backward to the next forward; NULL where dq recomputes dS instead
    int *encoder;        // encoder_backward's token buckets
    float *norm;         // global_norm_squared's partials, then the result
    float *head_dwte;    // (Vp,C) fp32, or (ZeRO-2/3) one vocabulary chunk's (chunk_rows,C): the classifier's
                         // wte gradient, summed over its row chunks
} Scratch;

typedef struct {
    GPT2Config config;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    size_t num_parameters;
    floatX *params_memory, *grads_memory;
    float *m_memory, *v_memory;  // AdamW moments, fp32 (num_parameters,)
    float *master_memory;        // fp32 master weights with -w 1 (as m, v: all, or ZeRO-1+ this rank's shard), else NULL
    Activations acts;
    Scratch scratch;
    void *acts_memory, *scratch_memory;
    int max_B, max_T;    // activation buffers are sized for these
    int B, T;            // shape of the last forward
    int *inputs_host;    // (B,T) the last forward's inputs (encoder backward buckets on the host)
    int *encoder_host;   // encoder_backward's host scratch
    float *losses_host;  // (B,T)
    floatX *row_bf16;    // (Vp,) one logits row as on the device
    float *row_host;     // (Vp,) the same in fp32, for sampling
    int has_targets;     // the last forward had targets: its loss may be asked for
    int backward_done;   // a backward of the last forward ran: another needs a new forward
    float mean_loss;     // of the last forward with targets once computed (gpt2_mean_loss), else -1
    float grad_scale;    // from gpt2_clip_grad_norm, applied by gpt2_update
    Profile profile;     // -pk 1: GPU time per kernel family
    uint32_t seed;       // stochastic rounding in AdamW
    uint32_t params_crc; // with several ranks: CRC-32 of the bf16 parameters as built
    double peak_flops;   // the device's dense bf16 FLOP/s, -1 if unknown (llmc/mfu.h)
    cudaStream_t stream;
    // data parallelism (llmc/zero.h): ZeRO-0 to 3 on the GPU
    Comm *comm;
    Comm solo;           // the communicator of a single-process model
    DeviceComm dcomm;    // NCCL (or its emulated stand-in) over comm's ranks
    int zero_stage;
    int forward_only;    // built for sampling (GPT2_FORWARD_ONLY): no gradients, AdamW moments or master weights
    ZeroLayout shards;   // this rank's slices (the state files' layout)
    ZeroLayout optim;    // the layout of m_memory, v_memory: shards, or (ZeRO-0) the whole model
    // ZeRO-2/3: the gradients are this rank's shard; the backward writes a
    // bucket's (embeddings: slot 0; block l: slot 1 + l % 2) into a slot,
    // whose reduce-scatter then runs on the communication stream while the
    // next block computes
    floatX *grad_shard;                    // (shard_size,)
    floatX *bucket_grads[3], *bucket_reduced[3];
    float *reduce_f32;                     // -gr 1: the fp32 copy of what is being summed over the ranks
    float *reduced_f32;                    // -gr 1, ZeRO-2/3: this rank's fp32 slice of the sum
    cudaEvent_t slot_free[3];              // recorded when a slot's reduction is done
    // ZeRO-3: the parameters are this rank's shard too; a bucket's are
    // gathered into a slot just before use (the next one meanwhile)
    floatX *param_shard;                   // (shard_size,)
    floatX *bucket_params[3];
    int params_of[3];                      // the bucket whose parameters a slot holds, or -1
    cudaEvent_t params_ready[3];           // recorded when a slot's gather is done
    // ZeRO-2/3: the tied wte moves in vocabulary chunks (llmc/zero.h), so no
    // rank holds its gradient (ZeRO-3: nor its parameters) whole: chunk e's gradient is made in slot e % 2 and
    // reduce-scattered from there, (ZeRO-3) its parameters gathered into one
    floatX *wte_grads[2], *wte_reduced[2]; // (chunk_rows,C); this rank's part of a chunk's sum
    cudaEvent_t wte_grads_free[2];         // recorded when a slot's reduction is done
    floatX *wte_params[2];                 // (chunk_rows,C) ZeRO-3
    int wte_params_of[2];                  // the chunk a slot holds, or -1
    cudaEvent_t wte_params_ready[2];       // recorded when a slot's gather is done
} GPT2;

// ZeRO-2/3: wte in vocabulary chunks
static int vocab_chunked(const GPT2 *model) { return model->shards.vocab_chunks > 0; }

// Carves `memory` into tensors of the given byte sizes, each starting on a
// 256-byte boundary (the 128-bit kernels need 16); returns the total bytes,
// and only counts when memory is NULL.
static size_t carve_bytes(void **ptrs[], const size_t *bytes, int n, char *memory) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (memory) *ptrs[i] = memory + total;
        total += (bytes[i] + 255) / 256 * 256;
    }
    return total;
}

// The classifier (the tied head: logits, softmax, loss and their backward)
// runs over the B*T rows in HEAD_CHUNKS pieces, so its (rows,Vp) logits
// buffer, the largest activation, holds an eighth of them (GPT-2 124M at
// B=64, T=1024: 0.77 GiB, not 6.1). It runs after the forward proper, in
// gpt2_backward (fused with its gradient) or gpt2_mean_loss (losses only).
// The blocks' backward, after it, uses the same buffer for our attention's
// dS where it stores one (attention_dS_bytes: NH (T/2 + 32) bf16 per token
// against the head's Vp/8: 0.80 GiB there, 2.2 times the head's at NH =
// 25), so it takes the larger of the two sizes.
#define HEAD_CHUNKS 8
static int head_chunk_rows(int BT) { return (BT + HEAD_CHUNKS - 1) / HEAD_CHUNKS; }

#ifdef USE_CUDNN
// whether cuDNN's attention takes a (B,T) (see cudnn_attention_shape)
static int cudnn_attention_takes(int B, int T, int NH) { return T > 1 && (size_t)B * T * NH % 4 == 0; }
#endif

// the bytes of our attention backward's dS at (B,T) (llmc/attention_mma.cuh,
// "dS, stored"), in the logits buffer; 0 where dq recomputes dS instead:
// with -as 0, past 2^32 values of dS (B NH > 7710 at T = 1024), and in the
// cuDNN build where cuDNN's attention takes the training shape's backward
static size_t attention_dS_bytes(int B, int T, int NH) {
#ifdef USE_CUDNN
    if (cudnn_attention_takes(B, T, NH)) return 0;
#endif
    return gpu_options.attention_stored_ds ? attention_backward_mma_scratch_bytes(B, T, NH) : 0;
}

static size_t logits_bytes(int B, int T, int NH, int Vp) {
    size_t head = (size_t)head_chunk_rows(B * T) * Vp * sizeof(floatX);
    size_t dS = attention_dS_bytes(B, T, NH);
    return head > dS ? head : dS;
}

static size_t activation_layout(GPT2 *model, int B, int T, char *memory) {
    const GPT2Config *c = &model->config;
    size_t L = c->num_layers, C = c->channels, NH = c->num_heads, Vp = c->padded_vocab_size;
    size_t BT = (size_t)B * T, X = sizeof(floatX), F = sizeof(float);
    Activations *a = &model->acts;
    void **ptrs[] = {(void **)&a->encoded, (void **)&a->ln1, (void **)&a->ln1_mean, (void **)&a->ln1_rstd,
                     (void **)&a->qkv, (void **)&a->atty, (void **)&a->att_lse, (void **)&a->residual2,
                     (void **)&a->ln2, (void **)&a->ln2_mean, (void **)&a->ln2_rstd, (void **)&a->fch,
                     (void **)&a->fch_gelu, (void **)&a->residual3, (void **)&a->lnf, (void **)&a->lnf_mean,
                     (void **)&a->lnf_rstd, (void **)&a->logits, (void **)&a->losses, (void **)&a->head_max,
                     (void **)&a->head_sum, (void **)&a->inputs, (void **)&a->targets};
    size_t Lln = gpu_options.recompute >= 2 ? 1 : L;   // layers whose ln1, ln2 outputs are kept
    size_t bytes[] = {BT * C * X, Lln * BT * C * X, L * BT * F, L * BT * F,
                      L * BT * 3 * C * X, L * BT * C * X, L * BT * NH * F, L * BT * C * X,
                      Lln * BT * C * X, L * BT * F, L * BT * F, L * BT * 4 * C * X,
                      (gpu_options.recompute ? 1 : L) * BT * 4 * C * X, L * BT * C * X, BT * C * X, BT * F,
                      BT * F, logits_bytes(B, T, (int)NH, (int)Vp), BT * F, BT * F, BT * F, BT * sizeof(int),
                      BT * sizeof(int)};
    return carve_bytes(ptrs, bytes, (int)(sizeof(bytes) / sizeof(bytes[0])), memory);
}

static size_t scratch_layout(GPT2 *model, int B, int T, char *memory) {
    const GPT2Config *c = &model->config;
    size_t C = c->channels, NH = c->num_heads, BT = (size_t)B * T, X = sizeof(floatX);
    size_t head_rows = model->shards.chunk_rows;   // Vp, or (ZeRO-2/3) a vocabulary chunk's
    Scratch *s = &model->scratch;
    void **ptrs[] = {(void **)&s->dresidual, (void **)&s->dln, (void **)&s->datty, (void **)&s->dqkv,
                     (void **)&s->dfch, (void **)&s->branch, (void **)&s->matmul, (void **)&s->layernorm,
                     (void **)&s->att_D, (void **)&s->encoder, (void **)&s->norm, (void **)&s->head_dwte};
    size_t bytes[] = {BT * C * X, BT * C * X, BT * C * X, BT * 3 * C * X, BT * 4 * C * X, BT * C * X,
                      matmul_backward_scratch_bytes((int)BT, (int)(4 * C)),
                      layernorm_backward_scratch_bytes((int)BT, (int)C), BT * NH * sizeof(float),
                      encoder_backward_scratch_bytes(B, T, (int)C), (GLOBAL_NORM_BLOCKS + 1) * sizeof(float),
                      head_rows * C * sizeof(float)};
    return carve_bytes(ptrs, bytes, (int)(sizeof(bytes) / sizeof(bytes[0])), memory);
}

#define REDUCE_F32_CHUNK ((size_t)1 << 24)   // -gr 1, ZeRO-0/1: gradients converted and summed at a time (64 MiB)

static double gib(size_t bytes) { return bytes / (double)(1 << 30); }

// Allocates everything on the device for batches up to (B,T), after printing
// the memory plan and checking it against the free device memory. A rank
// allocates only what it keeps at its ZeRO stage (model->shards, optim): a
// model too big for one GPU trains on several with ZeRO-3.
static void gpt2_allocate(GPT2 *model, int B, int T) {
    const GPT2Config *c = &model->config;
    gpt2_check_batch_shape(c, B, T);
    if (c->channels % 8 != 0 || (c->channels / c->num_heads != 32 && c->channels / c->num_heads != 64)) {
        fatal("the GPU trainer needs C a multiple of 8 and head size 32 or 64; this model has C=%d, NH=%d",
              c->channels, c->num_heads);
    }
    if (c->padded_vocab_size % 8 != 0) {  // (the classifier's matmuls take 8 bf16 rows, 16 bytes, at a time)
        fatal("the GPU trainer needs the padded vocabulary Vp a multiple of 8; this model has Vp=%d",
              c->padded_vocab_size);
    }
    // the kernels index a layer's (B,T,4C) activations with ints (and round their grids up by a block)
    if ((size_t)B * T * 4 * c->channels > 0x7FFFFFFF - 65536) {
        fatal("B*T*4C = %d*%d*%d is over 2^31 - 2^16, which the kernels' int indices allow; use a smaller -b or -t",
              B, T, 4 * c->channels);
    }
    gpt2_parameter_sizes(c, model->param_sizes);
    model->num_parameters = gpt2_num_parameters(c);
    int stage = model->zero_stage, world = model->comm->world;
    const ZeroLayout *z = &model->shards;
    size_t n = model->num_parameters, X = sizeof(floatX), F = sizeof(float);
    size_t slots = z->bucket_size[0] + 2 * z->bucket_size[1];  // ZeRO-2/3's three bucket slots (llmc/zero.h)
    // ZeRO-2/3: two slots of a vocabulary chunk of wte, and this rank's part of one
    size_t chunk = z->vocab_chunks ? (size_t)z->chunk_rows * z->channels : 0, wte_slice = z->slice[zero_unit(z, 0, 0)];
    size_t chunk_part = chunk < wte_slice ? chunk : wte_slice;
    size_t param_bytes = (stage == 3 ? z->shard_size + slots + 2 * chunk : n) * X;
    size_t grad_bytes = (stage >= 2 ? z->shard_size + slots + slots / world + 2 * (chunk + chunk_part) : n) * X;
    size_t moment_bytes = 2 * model->optim.shard_size * F;
    size_t master_bytes = gpu_options.master_weights ? model->optim.shard_size * F : 0;
    if (model->forward_only) grad_bytes = moment_bytes = master_bytes = 0;
    // -gr 1 on several ranks: the fp32 copy of what is summed over them
    size_t bucket = z->bucket_size[0] > z->bucket_size[1] ? z->bucket_size[0] : z->bucket_size[1];
    size_t reduce_n = world == 1 || !gpu_options.reduce_fp32 ? 0 : stage >= 2 ? (bucket > chunk ? bucket : chunk) :
                      n < REDUCE_F32_CHUNK ? n : REDUCE_F32_CHUNK;
    size_t reduced_n = reduce_n && stage >= 2 ? (bucket / world > chunk_part ? bucket / world : chunk_part) : 0;
    size_t act_bytes = activation_layout(model, B, T, NULL), scratch_bytes = scratch_layout(model, B, T, NULL);
    scratch_bytes += (reduce_n + reduced_n) * F + MATMUL_WORKSPACE_BYTES;
#ifdef USE_CUDNN
    scratch_bytes += (size_t)B * T * c->channels * F;   // cuDNN attention's fp32 dQ (its workspace, allocated at first use)
    printf("attention: cuDNN's fused kernels (USE_CUDNN=1; their backward is not bitwise reproducible)\n");
#else
    printf("attention: ours on %s; its dq %s\n", gpu_options.attention_wgmma ? "wgmma (-aw 1)" : "mma.sync",
           attention_dS_bytes(B, T, c->num_heads) ? "reads the dS its dkdv stores (in the logits buffer)"
           : gpu_options.attention_stored_ds ? "recomputes dS (storing it would pass 2^32 values)"
                                             : "recomputes dS (-as 0)");
#endif
    size_t total = param_bytes + grad_bytes + moment_bytes + master_bytes + act_bytes + scratch_bytes;
    size_t free_bytes, total_bytes;
    cudaCheck(cudaMemGetInfo(&free_bytes, &total_bytes));
    char share[128] = "";
    if (world > 1) {  // against one GPU's plan: all parameters, gradients and moments
        size_t one_gpu = 2 * n * X + 2 * n * F + (master_bytes ? n * F : 0) + act_bytes + scratch_bytes
                         - (reduce_n + reduced_n) * F;
        snprintf(share, sizeof(share), " (this rank's at ZeRO-%d on %d ranks; one GPU: %.3f)", stage, world, gib(one_gpu));
    }
    printf("memory: parameters %.3f GiB (bf16) + gradients %.3f + AdamW m,v %.3f (fp32) + master weights %.3f "
           "+ activations %.3f (B=%d T=%d%s) + scratch %.3f = %.3f GiB%s of %.3f GiB free\n",
           gib(param_bytes), gib(grad_bytes), gib(moment_bytes), gib(master_bytes), gib(act_bytes), B, T,
           gpu_options.recompute == 2 ? ", GELU and layernorms recomputed" :
           gpu_options.recompute ? ", GELU recomputed" : "",
           gib(scratch_bytes), gib(total), share, gib(free_bytes));
    if (chunk) printf("wte in %d vocabulary chunks of %d rows at ZeRO-%d%s\n", z->vocab_chunks, z->chunk_rows, stage,
                      world == 1 ? "" : stage >= 3 ? ": no rank holds its gradient or its parameters whole"
                                                   : ": no rank holds its gradient whole");
    if (reduce_n) printf("gradients summed over the ranks in fp32 (-gr 1): %.3f GiB of fp32 buffers\n",
                         gib((reduce_n + reduced_n) * F));
    if (total > free_bytes) {
        char hint[96] = "";
        if (gpu_options.recompute < 2) snprintf(hint, sizeof(hint), " or recompute with -r %d", gpu_options.recompute + 1);
        if (stage < 3) snprintf(hint + strlen(hint), sizeof(hint) - strlen(hint), "%s spread it over more GPUs with -z 3",
                                hint[0] ? ", or" : " or");
        fatal("the model needs %.3f GiB at B=%d T=%d, the GPU has %.3f GiB free: lower %s (activations grow "
              "with B*T)%s", gib(total), B, T, gib(free_bytes), B > 1 ? "-b" : "-t", hint);
    }
    model->stream = 0;
    if (stage == 3) {  // the parameters: a shard, and the bucket slots they are gathered into
        cudaCheck(cudaMalloc(&model->param_shard, z->shard_size * X));
        for (int k = 0; k < 3; k++) {
            cudaCheck(cudaMalloc(&model->bucket_params[k], z->bucket_size[k == 0 ? 0 : 1] * X));
            cudaCheck(cudaEventCreateWithFlags(&model->params_ready[k], cudaEventDisableTiming));
            model->params_of[k] = -1;
        }
        for (int k = 0; k < 2 && chunk; k++) {
            cudaCheck(cudaMalloc(&model->wte_params[k], chunk * X));
            cudaCheck(cudaEventCreateWithFlags(&model->wte_params_ready[k], cudaEventDisableTiming));
            model->wte_params_of[k] = -1;
        }
    } else {
        cudaCheck(cudaMalloc(&model->params_memory, n * X));
    }
    if (stage >= 2) {  // the gradients: a shard, and the bucket slots the backward fills
        cudaCheck(cudaMalloc(&model->grad_shard, z->shard_size * X));
        for (int k = 0; k < 3; k++) {
            size_t bn = z->bucket_size[k == 0 ? 0 : 1];  // (every block's bucket has one size)
            cudaCheck(cudaMalloc(&model->bucket_grads[k], bn * X));
            cudaCheck(cudaMalloc(&model->bucket_reduced[k], bn / world * X));
            cudaCheck(cudaEventCreateWithFlags(&model->slot_free[k], cudaEventDisableTiming));
            cudaCheck(cudaEventRecord(model->slot_free[k], model->stream));
        }
        for (int k = 0; k < 2 && chunk; k++) {
            cudaCheck(cudaMalloc(&model->wte_grads[k], chunk * X));
            cudaCheck(cudaMalloc(&model->wte_reduced[k], chunk_part * X));
            cudaCheck(cudaEventCreateWithFlags(&model->wte_grads_free[k], cudaEventDisableTiming));
            cudaCheck(cudaEventRecord(model->wte_grads_free[k], model->stream));
        }
    } else if (grad_bytes) {
        cudaCheck(cudaMalloc(&model->grads_memory, n * X));
        cudaCheck(cudaMemset(model->grads_memory, 0, n * X));
    }
    if (moment_bytes) {
        cudaCheck(cudaMalloc(&model->m_memory, moment_bytes / 2));
        cudaCheck(cudaMalloc(&model->v_memory, moment_bytes / 2));
        cudaCheck(cudaMemset(model->m_memory, 0, moment_bytes / 2));
        cudaCheck(cudaMemset(model->v_memory, 0, moment_bytes / 2));
    }
    if (master_bytes) cudaCheck(cudaMalloc(&model->master_memory, master_bytes));
    if (reduce_n) cudaCheck(cudaMalloc(&model->reduce_f32, reduce_n * F));
    if (reduced_n) cudaCheck(cudaMalloc(&model->reduced_f32, reduced_n * F));
    cudaCheck(cudaMalloc(&model->acts_memory, act_bytes));
    activation_layout(model, B, T, (char *)model->acts_memory);
    cudaCheck(cudaMalloc(&model->scratch_memory, scratch_layout(model, B, T, NULL)));
    scratch_layout(model, B, T, (char *)model->scratch_memory);
    model->scratch.att_dS = attention_dS_bytes(B, T, c->num_heads) ? model->acts.logits : NULL;   // NULL: dq recomputes
    model->inputs_host = (int *)malloc_check((size_t)B * T * sizeof(int));
    model->encoder_host = (int *)malloc_check(encoder_backward_host_scratch_bytes(B, T, c->vocab_size));
    model->losses_host = (float *)malloc_check((size_t)B * T * sizeof(float));
    model->row_bf16 = (floatX *)malloc_check((size_t)c->padded_vocab_size * sizeof(floatX));
    model->row_host = (float *)malloc_check((size_t)c->padded_vocab_size * sizeof(float));
    model->max_B = B;
    model->max_T = T;
    model->mean_loss = -1.0f;
    model->grad_scale = 1.0f;
    int dev;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    double tflops = gpu_bf16_peak_tflops(prop.name);
    model->peak_flops = tflops > 0 ? tflops * 1e12 : -1.0;
    profile_init(&model->profile, gpu_options.profile);
    matmul_init();
}

// fp32 host values to bf16 on the device, rounded to nearest even
static void upload_bf16(floatX *dst, const float *src, size_t n) {
    floatX *tmp = (floatX *)malloc_check(n * sizeof(floatX));
    for (size_t i = 0; i < n; i++) tmp[i] = __float2bfloat16(src[i]);
    cudaCheck(cudaMemcpy(dst, tmp, n * sizeof(floatX), cudaMemcpyHostToDevice));
    free(tmp);
}

// Builds a model from a model file (fp32 or bf16) or a descriptor such as
// "d12" (GPT-2 init from seed, the same numbers as the CPU trainer's, then
// rounded to bf16), with activations for batches up to (B,T), spread over
// comm's ranks, one GPU each, at ZeRO stage `stage` (comm NULL: one process).
// The parameters are read or made whole on the host; the GPU receives only
// what this rank keeps. GPT2_FORWARD_ONLY as the stage: for the forward
// alone, on one GPU.
void gpt2_build(GPT2 *model, const char *source, uint32_t seed, int B, int T, Comm *comm, int stage) {
    memset(model, 0, sizeof(*model));
    model->forward_only = stage == GPT2_FORWARD_ONLY;
    if (model->forward_only) stage = 0;
    gpt2_read_config(source, &model->config);
    if (!comm) {
        comm_init_single(&model->solo);
        comm = &model->solo;
    }
    model->comm = comm;
    model->zero_stage = stage;
    model->seed = seed;
    zero_layout_init(&model->shards, &model->config, comm->world, comm->rank, stage >= 2);
    zero_layout_init(&model->optim, &model->config, stage == 0 ? 1 : comm->world, stage == 0 ? 0 : comm->rank, 0);
    gpt2_allocate(model, B, T);
    size_t n = model->num_parameters;
    float *host = (float *)malloc_check(n * sizeof(float));
    if (gpt2_config_from_descriptor(source, &model->config)) {
        gpt2_init_parameters(&model->config, host, seed);
    } else {
        int32_t header[HEADER_INTS];
        FILE *f = model_file_open(source, &model->config, header);
        model_file_read(f, source, header, host, n);
        fclose_check(f);
    }
    if (comm->world > 1) {  // of the bf16 parameters, for the ranks to compare
        floatX *rounded = (floatX *)malloc_check(n * sizeof(floatX));
        for (size_t i = 0; i < n; i++) rounded[i] = __float2bfloat16(host[i]);
        model->params_crc = crc32_update(0, rounded, n * sizeof(floatX));
        free(rounded);
    }
    size_t most = model->shards.shard_size > model->optim.shard_size ? model->shards.shard_size : model->optim.shard_size;
    float *shard = (float *)malloc_check(most * sizeof(float));
    if (stage == 3) {
        zero_pack_shard(&model->shards, shard, host);
        upload_bf16(model->param_shard, shard, model->shards.shard_size);
    } else {
        upload_bf16(model->params_memory, host, n);
    }
    if (model->master_memory) {  // as the moments are held: all, or (ZeRO-1+) this rank's slices
        zero_pack_shard(&model->optim, shard, host);
        cudaCheck(cudaMemcpy(model->master_memory, shard, model->optim.shard_size * sizeof(float),
                             cudaMemcpyHostToDevice));
    }
    free(shard);
    free(host);
    device_comm_init(&model->dcomm, comm, model->stream, gpu_options.init_method, gpu_options.rendezvous_server,
                     gpu_options.rendezvous_file);
}

void gpt2_free(GPT2 *model) {
    for (int k = 0; k < 3 && model->zero_stage >= 2; k++) {
        cudaCheck(cudaFree(model->bucket_grads[k]));
        cudaCheck(cudaFree(model->bucket_reduced[k]));
        cudaCheck(cudaEventDestroy(model->slot_free[k]));
    }
    for (int k = 0; k < 3 && model->zero_stage == 3; k++) {
        cudaCheck(cudaFree(model->bucket_params[k]));
        cudaCheck(cudaEventDestroy(model->params_ready[k]));
    }
    for (int k = 0; k < 2 && vocab_chunked(model); k++) {
        cudaCheck(cudaFree(model->wte_grads[k]));
        cudaCheck(cudaFree(model->wte_reduced[k]));
        cudaCheck(cudaEventDestroy(model->wte_grads_free[k]));
        if (model->zero_stage < 3) continue;
        cudaCheck(cudaFree(model->wte_params[k]));
        cudaCheck(cudaEventDestroy(model->wte_params_ready[k]));
    }
    if (model->grad_shard) cudaCheck(cudaFree(model->grad_shard));
    if (model->param_shard) cudaCheck(cudaFree(model->param_shard));
    if (model->reduce_f32) cudaCheck(cudaFree(model->reduce_f32));
    if (model->reduced_f32) cudaCheck(cudaFree(model->reduced_f32));
    device_comm_free(&model->dcomm);
    zero_layout_free(&model->shards);
    zero_layout_free(&model->optim);
    profile_print(&model->profile, kernel_family_names, K_FAMILIES);
    profile_free(&model->profile);
    matmul_destroy();
#ifdef USE_CUDNN
    attention_cudnn_destroy();
#endif
    cudaCheck(cudaFree(model->params_memory));
    cudaCheck(cudaFree(model->grads_memory));
    cudaCheck(cudaFree(model->m_memory));
    cudaCheck(cudaFree(model->v_memory));
    if (model->master_memory) cudaCheck(cudaFree(model->master_memory));
    cudaCheck(cudaFree(model->acts_memory));
    cudaCheck(cudaFree(model->scratch_memory));
    free(model->inputs_host);
    free(model->encoder_host);
    free(model->losses_host);
    free(model->row_bf16);
    free(model->row_host);
}

// ----------------------------------------------------------------------------
// ZeRO-2/3: where each block's parameters and gradients are, and moving them

static int bucket_slot(int bucket) { return bucket == 0 ? 0 : 1 + (bucket - 1) % 2; }

// The tensors of block l (the stacked ones at layer l's slice; l = -1: the
// embeddings and the final layernorm) in `flat` (checkpoint order) or, when
// flat is NULL, in the bucket buffer `slot` (llmc/zero.h's bucket layout;
// with vocabulary chunks wte is not in it: NULL).
static ParameterTensorsGPU tensors_at(const ZeroLayout *z, floatX *flat, floatX *slot, int l) {
    ParameterTensorsGPU t;
    memset(&t, 0, sizeof(t));
    floatX **fields[NUM_PARAMETER_TENSORS] = {
        &t.wte, &t.wpe, &t.ln1w, &t.ln1b, &t.qkvw, &t.qkvb, &t.attprojw, &t.attprojb,
        &t.ln2w, &t.ln2b, &t.fcw, &t.fcb, &t.fcprojw, &t.fcprojb, &t.lnfw, &t.lnfb};
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        int stacked = i >= 2 && i < 2 + BLOCK_TENSORS;
        if (stacked != (l >= 0)) continue;
        if (i == 0 && !flat && z->vocab_chunks) continue;   // (wte: not in bucket 0; NULL)
        int u = zero_unit(z, i, l);
        *fields[i] = flat ? flat + z->offset[u] : slot + z->bucket_offset[u];
    }
    return t;
}

// ZeRO-3: starts gathering bucket b's parameters into its slot on the
// communication stream, after the compute stream's work so far (which may
// still read the slot's previous block), unless the slot holds them.
static void params_gather_start(GPT2 *model, int b) {
    int k = bucket_slot(b);
    if (model->params_of[k] == b) return;
    const ZeroLayout *z = &model->shards;
    DeviceComm *d = &model->dcomm;
    device_follow_compute(d);
    int units[BLOCK_TENSORS], n = zero_bucket_units(z, b, units);
    for (int i = 0; i < n; i++) {
        int u = units[i];
        floatX *unit = model->bucket_params[k] + z->bucket_offset[u];
        cudaCheck(cudaMemcpyAsync(unit + (size_t)z->rank * z->slice[u], model->param_shard + z->shard_offset[u],
                                  z->slice[u] * sizeof(floatX), cudaMemcpyDeviceToDevice, d->stream));
        device_all_gather(d, unit, z->slice[u], DEVICE_BF16, "all-gather of parameters");
    }
    cudaCheck(cudaEventRecord(model->params_ready[k], d->stream));
    model->params_of[k] = b;
}

// The parameters block l uses (l = -1: the embeddings and the final
// layernorm). ZeRO-3 gathers them (the compute stream waits for them) and
// starts gathering block `next`'s (if 0 <= next < L) meanwhile.
static ParameterTensorsGPU gpt2_params(GPT2 *model, int l, int next) {
    const ZeroLayout *z = &model->shards;
    if (model->zero_stage < 3) return tensors_at(z, model->params_memory, NULL, l);
    int b = 1 + l, k = bucket_slot(b);
    params_gather_start(model, b);
    cudaCheck(cudaStreamWaitEvent(model->stream, model->params_ready[k], 0));
    if (next >= 0 && next < model->config.num_layers) params_gather_start(model, 1 + next);
    return tensors_at(z, NULL, model->bucket_params[k], l);
}

// Where block l's gradients accumulate in the backward: the full gradient
// buffer, or (ZeRO-2/3) the bucket's slot, zeroed once its last reduction is done.
static ParameterTensorsGPU gpt2_grads(GPT2 *model, int l) {
    const ZeroLayout *z = &model->shards;
    if (model->zero_stage < 2) return tensors_at(z, model->grads_memory, NULL, l);
    int b = 1 + l, k = bucket_slot(b);
    cudaCheck(cudaStreamWaitEvent(model->stream, model->slot_free[k], 0));
    cudaCheck(cudaMemsetAsync(model->bucket_grads[k], 0, z->bucket_size[b] * sizeof(floatX), model->stream));
    return tensors_at(z, NULL, model->bucket_grads[k], l);
}

// ZeRO-2/3: bucket b's gradients are complete: reduce-scatter them on the
// communication stream and add this rank's slices into its shard there.
static void grads_reduce_start(GPT2 *model, int b) {
    if (model->zero_stage < 2) return;
    const ZeroLayout *z = &model->shards;
    DeviceComm *d = &model->dcomm;
    int k = bucket_slot(b), units[BLOCK_TENSORS], n = zero_bucket_units(z, b, units);
    device_follow_compute(d);
    // -gr 1 (several ranks): the whole bucket to fp32 first (one buffer: the
    // comm stream runs the buckets in turn)
    int fp32 = model->reduce_f32 != NULL;
    if (fp32) cast_bf16_to_float(model->reduce_f32, model->bucket_grads[k], z->bucket_size[b], d->stream);
    for (int i = 0; i < n; i++) {
        int u = units[i];
        size_t at = z->bucket_offset[u], slice_at = z->bucket_offset[u] / z->world;
        if (fp32) {
            device_reduce_scatter(d, model->reduce_f32 + at, model->reduced_f32 + slice_at, z->slice[u], DEVICE_F32,
                                  "reduce-scatter of gradients");
            accumulate_bf16(model->grad_shard + z->shard_offset[u], model->reduced_f32 + slice_at, z->slice[u], d->stream);
        } else {
            floatX *reduced = model->bucket_reduced[k] + slice_at;
            device_reduce_scatter(d, model->bucket_grads[k] + at, reduced, z->slice[u], DEVICE_BF16,
                                  "reduce-scatter of gradients");
            accumulate_bf16(model->grad_shard + z->shard_offset[u], reduced, z->slice[u], d->stream);
        }
    }
    cudaCheck(cudaEventRecord(model->slot_free[k], d->stream));
}

// ZeRO-2/3, at the end of the backward: waits for the reductions in flight
// (under the watchdog)
static void grads_reduce_finish(GPT2 *model) {
    if (model->zero_stage >= 2) device_wait(&model->dcomm, "reduce-scatter of gradients");
}

// ZeRO-2/3, vocabulary chunk e of wte: its rows [*v0, *v1), as elements
// [*a, *b) of the wte unit, and this rank's part [*lo, *hi) of those
// (llmc/comm.h's comm_range_part; possibly none)
static void wte_chunk_range(const GPT2 *model, int e, int *v0, int *v1, size_t *a, size_t *b, size_t *lo,
                            size_t *hi) {
    const ZeroLayout *z = &model->shards;
    int u = zero_unit(z, 0, 0);
    zero_vocab_chunk(z, e, v0, v1);
    *a = (size_t)*v0 * z->channels;
    *b = (size_t)*v1 * z->channels;
    comm_range_part(z->count[u], z->slice[u], *a, *b, z->rank, lo, hi);
}

// ZeRO-3: starts gathering chunk e's parameters into its slot on the
// communication stream, after the compute stream's work so far (which may
// still read the slot's previous chunk), unless the slot holds them.
static void wte_gather_start(GPT2 *model, int e) {
    int k = e % 2, v0, v1;
    if (model->wte_params_of[k] == e) return;
    const ZeroLayout *z = &model->shards;
    DeviceComm *d = &model->dcomm;
    int u = zero_unit(z, 0, 0);
    size_t a, b, lo, hi;
    wte_chunk_range(model, e, &v0, &v1, &a, &b, &lo, &hi);
    device_follow_compute(d);
    floatX *own = model->param_shard + z->shard_offset[u] + (lo - (size_t)z->rank * z->slice[u]);
    if (hi > lo) cudaCheck(cudaMemcpyAsync(model->wte_params[k] + (lo - a), own, (hi - lo) * sizeof(floatX),
                                           cudaMemcpyDeviceToDevice, d->stream));
    device_all_gather_range(d, model->wte_params[k], z->count[u], z->slice[u], a, b, DEVICE_BF16,
                            "all-gather of parameters");
    cudaCheck(cudaEventRecord(model->wte_params_ready[k], d->stream));
    model->wte_params_of[k] = e;
}

// ZeRO-2/3: the rows of vocabulary chunk e of wte (chunk_rows, C) for the
// compute stream: in the parameters, or (ZeRO-3) gathered (the compute
// stream waits for them), chunk e + 1's gathered meanwhile.
static const floatX *wte_chunk(GPT2 *model, int e) {
    const ZeroLayout *z = &model->shards;
    if (model->zero_stage < 3) return model->params_memory + (size_t)e * z->chunk_rows * z->channels;
    wte_gather_start(model, e);
    cudaCheck(cudaStreamWaitEvent(model->stream, model->wte_params_ready[e % 2], 0));
    if (e + 1 < z->vocab_chunks) wte_gather_start(model, e + 1);
    return model->wte_params[e % 2];
}

// ZeRO-2/3: the slot where chunk e's wte gradient is made, once the
// reduction of what it held before is done
static floatX *wte_grads_slot(GPT2 *model, int e) {
    cudaCheck(cudaStreamWaitEvent(model->stream, model->wte_grads_free[e % 2], 0));
    return model->wte_grads[e % 2];
}

// ZeRO-2/3: chunk e's wte gradient (in its slot) is complete: reduce-scatter
// it over the ranks' parts on the communication stream and add this rank's
// part into its shard there (as grads_reduce_start does a bucket's)
static void wte_grads_reduce_start(GPT2 *model, int e) {
    const ZeroLayout *z = &model->shards;
    DeviceComm *d = &model->dcomm;
    int k = e % 2, u = zero_unit(z, 0, 0), v0, v1;
    size_t a, b, lo, hi;
    wte_chunk_range(model, e, &v0, &v1, &a, &b, &lo, &hi);
    floatX *shard = model->grad_shard + z->shard_offset[u] + (lo - (size_t)z->rank * z->slice[u]);
    device_follow_compute(d);
    if (model->reduce_f32) {   // -gr 1: summed in fp32
        cast_bf16_to_float(model->reduce_f32, model->wte_grads[k], b - a, d->stream);
        device_reduce_scatter_range(d, model->reduce_f32, model->reduced_f32, z->count[u], z->slice[u], a, b,
                                    DEVICE_F32, "reduce-scatter of gradients");
        if (hi > lo) accumulate_bf16(shard, model->reduced_f32, hi - lo, d->stream);
    } else {
        device_reduce_scatter_range(d, model->wte_grads[k], model->wte_reduced[k], z->count[u], z->slice[u], a, b,
                                    DEVICE_BF16, "reduce-scatter of gradients");
        if (hi > lo) accumulate_bf16(shard, model->wte_reduced[k], hi - lo, d->stream);
    }
    cudaCheck(cudaEventRecord(model->wte_grads_free[k], d->stream));
}

// ----------------------------------------------------------------------------
// forward, backward, update

// Forward pass over inputs (B,T) (host) up to the final layernorm; with
// targets (B,T), gpt2_mean_loss or gpt2_backward then run the classifier
// (gpt2_head), and without, gpt2_logits_row computes the rows asked for.
#ifdef USE_CUDNN
// cuDNN's attention runs at the shape the activations were sized for
// (training and validation: one plan each way, built once); other shapes,
// such as sampling's growing T, take ours (cuDNN would compile a plan for
// every length). Both write lse as the natural-log log-sum-exp, so either
// backward may follow either forward. Not at T = 1 (cuDNN 9.18's notes: no
// backward there), nor where a layer's lse (B,NH,T) fp32 slice would not
// start 16 bytes aligned.
static int cudnn_attention_shape(const GPT2 *model, int B, int T) {
    return B == model->max_B && T == model->max_T && cudnn_attention_takes(B, T, model->config.num_heads);
}
#endif

void gpt2_forward(GPT2 *model, const int *inputs, const int *targets, int B, int T) {
    const GPT2Config *c = &model->config;
    int L = c->num_layers, C = c->channels, NH = c->num_heads, V = c->vocab_size;
    if (B < 1 || T < 1 || B > model->max_B || T > model->max_T) {
        fatal("forward with (B,T) = (%d,%d) exceeds the allocation (%d,%d)", B, T, model->max_B, model->max_T);
    }
    int BT = B * T;
    gpt2_check_tokens(inputs, targets, BT, V);
    cudaStream_t st = model->stream;
    Activations a = model->acts;
    Scratch s = model->scratch;
    model->B = B;
    model->T = T;
    Profile *pf = &model->profile;
    memcpy(model->inputs_host, inputs, (size_t)BT * sizeof(int));
    profile_mark(pf, K_COPY, st);
    // before any gather is queued: cudaMemcpy waits for the compute stream,
    // which then would wait for the gather, outside the watchdog
    cudaCheck(cudaMemcpy(a.inputs, inputs, (size_t)BT * sizeof(int), cudaMemcpyHostToDevice));
    if (targets) cudaCheck(cudaMemcpy(a.targets, targets, (size_t)BT * sizeof(int), cudaMemcpyHostToDevice));
    ParameterTensorsGPU p = gpt2_params(model, -1, 0);   // the embeddings and the final layernorm

    profile_mark(pf, K_ENCODER, st);
    if (!vocab_chunked(model)) encoder_forward(a.encoded, a.inputs, p.wte, p.wpe, B, T, C, V, st);
    for (int e = 0; e < model->shards.vocab_chunks; e++) {   // ZeRO-2/3: the positions of each chunk's tokens
        int v0, v1;
        zero_vocab_chunk(&model->shards, e, &v0, &v1);
        encoder_forward_rows(a.encoded, a.inputs, wte_chunk(model, e), p.wpe, v0, v1, B, T, C, V, st);
    }
    profile_mark(pf, K_LAYERNORM, st);
    ParameterTensorsGPU w = gpt2_params(model, 0, 1);   // block l's weights, here block 0's
    layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, a.encoded, w.ln1w, w.ln1b, BT, C, st);
    const size_t ln_stride = gpu_options.recompute >= 2 ? 0 : (size_t)BT * C;   // -r 2: one layer's ln1, ln2
    for (int l = 0; l < L; l++) {
        size_t btc = (size_t)l * BT * C;
        const floatX *residual = l == 0 ? a.encoded : a.residual3 + btc - (size_t)BT * C;
        floatX *ln1 = a.ln1 + l * ln_stride, *qkv = a.qkv + 3 * btc, *atty = a.atty + btc;
        floatX *residual2 = a.residual2 + btc, *ln2 = a.ln2 + l * ln_stride;
        floatX *fch = a.fch + 4 * btc, *fch_gelu = gpu_options.recompute ? a.fch_gelu : a.fch_gelu + 4 * btc;
        float *lse = a.att_lse + (size_t)l * BT * NH;
        // attention: residual2 = residual + attproj(attention(qkv(ln1)))
        profile_mark(pf, K_MATMUL, st);
        matmul_forward(qkv, NULL, ln1, w.qkvw, w.qkvb, BT, C, 3 * C, st);
        profile_mark(pf, K_ATTENTION, st);
#ifdef USE_CUDNN
        if (cudnn_attention_shape(model, B, T)) attention_forward_cudnn(atty, lse, qkv, B, T, C, NH, st);
        else
#endif
        if (gpu_options.attention_wgmma) attention_forward_wgmma(atty, lse, qkv, B, T, C, NH, st);
        else attention_forward_mma(atty, lse, qkv, B, T, C, NH, st);
        profile_mark(pf, K_MATMUL, st);
        matmul_forward(s.branch, NULL, atty, w.attprojw, w.attprojb, BT, C, C, st);
        profile_mark(pf, K_LAYERNORM, st);
        fused_residual_layernorm_forward(residual2, ln2, a.ln2_mean + l * BT, a.ln2_rstd + l * BT, residual,
                                         s.branch, w.ln2w, w.ln2b, BT, C, st);
        // MLP: residual3 = residual2 + fcproj(gelu(fc(ln2))), GELU in fc's
        // epilogue, or (-ge 0) by its own kernel from the bf16 fch
        profile_mark(pf, K_MATMUL, st);
        if (gpu_options.gelu_fusion) {
            matmul_forward(fch_gelu, fch, ln2, w.fcw, w.fcb, BT, C, 4 * C, st);
        } else {
            matmul_forward(fch, NULL, ln2, w.fcw, w.fcb, BT, C, 4 * C, st);
            profile_mark(pf, K_GELU, st);
            gelu_forward(fch_gelu, fch, BT * 4 * C, st);
            profile_mark(pf, K_MATMUL, st);
        }
        matmul_forward(s.branch, NULL, fch_gelu, w.fcprojw, w.fcprojb, BT, 4 * C, C, st);
        // the residual add fused with the next layernorm: the next block's
        // ln1, or the final lnf after the last block
        int last = l == L - 1;
        if (!last) w = gpt2_params(model, l + 1, l + 2);   // (ZeRO-3: block l + 1 arrived meanwhile)
        profile_mark(pf, K_LAYERNORM, st);
        fused_residual_layernorm_forward(a.residual3 + btc, last ? a.lnf : a.ln1 + (l + 1) * ln_stride,
                                         last ? a.lnf_mean : a.ln1_mean + (l + 1) * BT,
                                         last ? a.lnf_rstd : a.ln1_rstd + (l + 1) * BT, residual2, s.branch,
                                         last ? p.lnfw : w.ln1w, last ? p.lnfb : w.ln1b,
                                         BT, C, st);
    }
    model->has_targets = targets != NULL;
    model->backward_done = 0;
    model->mean_loss = -1.0f;
}

// The classifier over the last forward's rows, a chunk of head_chunk_rows at
// a time through the one chunk-sized logits buffer: logits = lnf wte^T (the
// tied head, no bias), then the per-position losses (B,T); with g_wte (the
// backward) also dlogits = dloss * d(loss)/d(logits) in place of the
// logits, dlnf (B,T,C) into scratch.dln and g_wte += dlogits^T lnf, summed
// over the chunks in fp32 and rounded into g_wte once.
static void gpt2_head(GPT2 *model, ParameterTensorsGPU p, floatX *g_wte, float dloss) {
    int C = model->config.channels, V = model->config.vocab_size, Vp = model->config.padded_vocab_size;
    int BT = model->B * model->T, rows = head_chunk_rows(BT);
    Activations a = model->acts;
    cudaStream_t st = model->stream;
    Profile *pf = &model->profile;
    float *dwte = model->scratch.head_dwte;
    if (g_wte) cudaCheck(cudaMemsetAsync(dwte, 0, (size_t)Vp * C * sizeof(float), st));
    for (int r0 = 0; r0 < BT; r0 += rows) {
        int n = BT - r0 < rows ? BT - r0 : rows;
        const floatX *lnf = a.lnf + (size_t)r0 * C;
        profile_mark(pf, K_MATMUL, st);
        matmul_forward(a.logits, NULL, lnf, p.wte, NULL, n, C, Vp, st);
        profile_mark(pf, K_CLASSIFIER, st);
        fused_classifier(a.logits, a.losses + r0, dloss, a.targets + r0, n, V, Vp, g_wte != NULL, st);
        if (g_wte) {
            profile_mark(pf, K_MATMUL, st);
            matmul_backward(model->scratch.dln + (size_t)r0 * C, NULL, NULL, a.logits, lnf, p.wte, NULL,
                            model->scratch.matmul, n, C, Vp, st);
            matmul_backward_dweight_f32(dwte, a.logits, lnf, n, C, Vp, st);
        }
    }
    if (g_wte) accumulate_bf16(g_wte, dwte, (size_t)Vp * C, st);
}

// The classifier at ZeRO-2/3, where wte moves in vocabulary chunks (llmc/zero.h)
// and no rank holds its gradient whole (ZeRO-3: nor its parameters): pass 1 runs each chunk's logits (W = its rows
// of columns; rows of head_chunk_rows at a time) through
// fused_classifier_columns_stats, which carries each row's max and sum of
// exp from chunk to chunk and ends with the losses. With the backward pass
// 2 gathers the chunks again and recomputes their logits into dlogits:
// dlnf (B,T,C) is summed over the chunks in fp32 (in scratch.dfch, free
// until the blocks' backward) and rounded into scratch.dln once, and each
// chunk's wte gradient, complete after its row chunks (fp32 in head_dwte),
// is rounded into its slot and reduce-scattered while the next is made.
// One more logits matmul than gpt2_head, and two more gathers of wte.
static void gpt2_head_chunked(GPT2 *model, int backward, float dloss) {
    const ZeroLayout *z = &model->shards;
    int C = model->config.channels, V = model->config.vocab_size;
    int BT = model->B * model->T, rows = head_chunk_rows(BT);
    Activations a = model->acts;
    Scratch s = model->scratch;
    cudaStream_t st = model->stream;
    Profile *pf = &model->profile;
    float *dlnf = (float *)s.dfch;
    if (backward) cudaCheck(cudaMemsetAsync(dlnf, 0, (size_t)BT * C * sizeof(float), st));
    for (int pass = 1; pass <= 1 + backward; pass++) {
        for (int e = 0; e < z->vocab_chunks; e++) {
            int v0, v1;
            zero_vocab_chunk(z, e, &v0, &v1);
            int W = v1 - v0;
            const floatX *wte = wte_chunk(model, e);
            if (pass == 2) cudaCheck(cudaMemsetAsync(s.head_dwte, 0, (size_t)W * C * sizeof(float), st));
            for (int r0 = 0; r0 < BT; r0 += rows) {
                int n = BT - r0 < rows ? BT - r0 : rows;
                const floatX *lnf = a.lnf + (size_t)r0 * C;
                profile_mark(pf, K_MATMUL, st);
                matmul_forward(a.logits, NULL, lnf, wte, NULL, n, C, W, st);   // (n,W)
                profile_mark(pf, K_CLASSIFIER, st);
                if (pass == 1) {
                    fused_classifier_columns_stats(a.logits, a.head_max + r0, a.head_sum + r0, a.losses + r0,
                                                   a.targets + r0, n, W, v0, V, e == 0, e == z->vocab_chunks - 1, st);
                    continue;
                }
                fused_classifier_columns_dlogits(a.logits, a.head_max + r0, a.head_sum + r0, a.targets + r0, dloss, n,
                                                 W, v0, V, st);
                profile_mark(pf, K_MATMUL, st);
                matmul_backward_dinp_f32(dlnf + (size_t)r0 * C, a.logits, wte, n, C, W, st);
                matmul_backward_dweight_f32(s.head_dwte, a.logits, lnf, n, C, W, st);
            }
            if (pass == 1) continue;
            profile_mark(pf, K_CLASSIFIER, st);
            cast_float_to_bf16(wte_grads_slot(model, e), s.head_dwte, (size_t)W * C, st);
            wte_grads_reduce_start(model, e);
        }
    }
    if (backward) cast_float_to_bf16(s.dln, dlnf, (size_t)BT * C, st);
}

// Mean loss of the last forward (which had targets), also after its
// backward; runs the classifier (losses only) if the backward has not.
float gpt2_mean_loss(GPT2 *model) {
    if (!model->has_targets) fatal("gpt2_mean_loss: the last forward had no targets");
    if (model->mean_loss >= 0.0f) return model->mean_loss;
    if (!model->backward_done && vocab_chunked(model)) gpt2_head_chunked(model, 0, 0.0f);
    else if (!model->backward_done) gpt2_head(model, gpt2_params(model, -1, -1), NULL, 0.0f);
    int BT = model->B * model->T;
    profile_mark(&model->profile, K_COPY, model->stream);
    if (model->zero_stage == 3) device_wait(&model->dcomm, "all-gather of parameters");   // (under the watchdog)
    cudaCheck(cudaMemcpy(model->losses_host, model->acts.losses, (size_t)BT * sizeof(float), cudaMemcpyDeviceToHost));
    double sum = 0.0;
    for (int i = 0; i < BT; i++) sum += model->losses_host[i];
    model->mean_loss = (float)(sum / BT);
    return model->mean_loss;
}

const float *gpt2_position_losses(GPT2 *model) {
    gpt2_mean_loss(model);   // (copies them to the host)
    return model->losses_host;
}

void gpt2_zero_grad(GPT2 *model) {
    // a training step starts here (and the last one ended, if its update was skipped: -sl/-sg)
    profile_end_step(&model->profile, model->stream);
    profile_begin_step(&model->profile);
    profile_mark(&model->profile, K_COPY, model->stream);
    if (model->zero_stage >= 2) {
        cudaCheck(cudaMemsetAsync(model->grad_shard, 0, model->shards.shard_size * sizeof(floatX), model->stream));
    } else {
        cudaCheck(cudaMemsetAsync(model->grads_memory, 0, model->num_parameters * sizeof(floatX), model->stream));
    }
}

// Backward pass of the last forward (which had targets), accumulating into
// the gradients; loss_scale weighs this micro-batch (1/accumulation steps).
void gpt2_backward(GPT2 *model, float loss_scale) {
    if (!model->has_targets || model->backward_done) {
        fatal("gpt2_backward needs a forward pass with targets first (one backward per forward)");
    }
    const GPT2Config *c = &model->config;
    int L = c->num_layers, C = c->channels, NH = c->num_heads, V = c->vocab_size;
    int B = model->B, T = model->T, BT = B * T;
    cudaStream_t st = model->stream;
    ParameterTensorsGPU p = gpt2_params(model, -1, L - 1), g = gpt2_grads(model, -1);
    Activations a = model->acts;
    Scratch s = model->scratch;

    Profile *pf = &model->profile;

    const size_t ln_stride = gpu_options.recompute >= 2 ? 0 : (size_t)BT * C;   // as in the forward
    // the classifier and its backward (dlnf into s.dln), then lnf's
    if (vocab_chunked(model)) gpt2_head_chunked(model, 1, loss_scale / BT);
    else gpt2_head(model, p, g.wte, loss_scale / BT);
    profile_mark(pf, K_LAYERNORM, st);
    cudaCheck(cudaMemsetAsync(s.dresidual, 0, (size_t)BT * C * sizeof(floatX), st));
    layernorm_backward(s.dresidual, g.lnfw, g.lnfb, s.layernorm, s.dln, a.residual3 + (size_t)(L - 1) * BT * C,
                       p.lnfw, a.lnf_mean, a.lnf_rstd, BT, C, st);

    // the blocks, last to first: s.dresidual accumulates the gradient wrt the
    // residual stream, from the block's output down to its input
    for (int l = L - 1; l >= 0; l--) {
        size_t btc = (size_t)l * BT * C;
        const floatX *residual = l == 0 ? a.encoded : a.residual3 + btc - (size_t)BT * C;
        // MLP; the fc_proj's backward multiplies its dinp by gelu'(fch), so
        // s.dfch is the fc's dout (cuBLASLt's DGELU epilogue).
        // With -r 1 the GELU output is recomputed from fch (in bf16: its bits
        // can differ from the fused epilogue's, which rounds once from fp32)
        floatX *fch_gelu = a.fch_gelu + 4 * btc;
        if (gpu_options.recompute) {
            fch_gelu = a.fch_gelu;
            profile_mark(pf, K_GELU, st);
            gelu_forward(fch_gelu, a.fch + 4 * btc, BT * 4 * C, st);
        }
        ParameterTensorsGPU w = gpt2_params(model, l, l - 1), dw = gpt2_grads(model, l);   // block l's
        // With -r 2 ln2 (and below ln1) is recomputed from the stored residual:
        // the forward's kernels normalise the same bf16 values in the same
        // order, so these are its bits (and its mean, rstd, rewritten)
        floatX *ln1 = a.ln1 + l * ln_stride, *ln2 = a.ln2 + l * ln_stride;
        if (gpu_options.recompute >= 2) {
            profile_mark(pf, K_LAYERNORM, st);
            layernorm_forward(ln2, a.ln2_mean + l * BT, a.ln2_rstd + l * BT, a.residual2 + btc, w.ln2w, w.ln2b,
                              BT, C, st);
        }
        profile_mark(pf, K_MATMUL, st);
        matmul_backward(s.dfch, dw.fcprojw, dw.fcprojb, s.dresidual,
                        fch_gelu, w.fcprojw, a.fch + 4 * btc, s.matmul, BT, 4 * C, C, st);
        matmul_backward(s.dln, dw.fcw, dw.fcb, s.dfch, ln2,
                        w.fcw, NULL, s.matmul, BT, C, 4 * C, st);
        profile_mark(pf, K_LAYERNORM, st);
        layernorm_backward(s.dresidual, dw.ln2w, dw.ln2b, s.layernorm, s.dln, a.residual2 + btc,
                           w.ln2w, a.ln2_mean + l * BT, a.ln2_rstd + l * BT, BT, C, st);
        // attention
        profile_mark(pf, K_MATMUL, st);
        matmul_backward(s.datty, dw.attprojw, dw.attprojb, s.dresidual, a.atty + btc,
                        w.attprojw, NULL, s.matmul, BT, C, C, st);
        profile_mark(pf, K_ATTENTION, st);
#ifdef USE_CUDNN
        if (cudnn_attention_shape(model, B, T)) {
            attention_backward_cudnn(s.dqkv, s.att_D, s.datty, a.qkv + 3 * btc, a.atty + btc,
                                     a.att_lse + (size_t)l * BT * NH, B, T, C, NH, st);
        } else
#endif
        if (gpu_options.attention_wgmma) {
            attention_backward_wgmma(s.dqkv, s.att_D, s.att_dS, s.datty, a.qkv + 3 * btc, a.atty + btc,
                                     a.att_lse + (size_t)l * BT * NH, B, T, C, NH, st);
        } else {
            attention_backward_mma(s.dqkv, s.att_D, s.att_dS, s.datty, a.qkv + 3 * btc, a.atty + btc,
                                   a.att_lse + (size_t)l * BT * NH, B, T, C, NH, st);
        }
        if (gpu_options.recompute >= 2) {
            profile_mark(pf, K_LAYERNORM, st);
            layernorm_forward(ln1, a.ln1_mean + l * BT, a.ln1_rstd + l * BT, residual, w.ln1w, w.ln1b, BT, C, st);
        }
        profile_mark(pf, K_MATMUL, st);
        matmul_backward(s.dln, dw.qkvw, dw.qkvb, s.dqkv, ln1,
                        w.qkvw, NULL, s.matmul, BT, C, 3 * C, st);
        profile_mark(pf, K_LAYERNORM, st);
        layernorm_backward(s.dresidual, dw.ln1w, dw.ln1b, s.layernorm, s.dln, residual,
                           w.ln1w, a.ln1_mean + l * BT, a.ln1_rstd + l * BT, BT, C, st);
        grads_reduce_start(model, 1 + l);   // ZeRO-2/3: block l's gradients are complete
    }
    profile_mark(pf, K_ENCODER, st);
    if (!vocab_chunked(model)) {
        encoder_backward(g.wte, g.wpe, s.encoder, model->encoder_host, s.dresidual, model->inputs_host, B, T, C, V,
                         st);
    } else {   // ZeRO-2/3: wte's part chunk by chunk, each reduce-scattered while the next is made
        EncoderBuckets bk = encoder_backward_prepare(s.encoder, model->encoder_host, model->inputs_host, B, T, V, st);
        encoder_backward_wpe(g.wpe, s.dresidual, B, T, C, st);
        for (int e = 0; e < model->shards.vocab_chunks; e++) {
            int v0, v1;
            zero_vocab_chunk(&model->shards, e, &v0, &v1);
            floatX *slot = wte_grads_slot(model, e);
            cudaCheck(cudaMemsetAsync(slot, 0, (size_t)(v1 - v0) * C * sizeof(floatX), st));
            encoder_backward_wte_rows(slot, v0, v1, s.encoder, s.dresidual, bk, B, T, C, st);
            wte_grads_reduce_start(model, e);
        }
    }
    grads_reduce_start(model, 0);
    grads_reduce_finish(model);
    model->backward_done = 1;
}

// Global L2 norm of all gradients; if above max_norm (> 0), gpt2_update
// scales the gradients down to it (as torch.nn.utils.clip_grad_norm_).
// Returns the norm before clipping.
float gpt2_clip_grad_norm(GPT2 *model, float max_norm) {
    float *out = model->scratch.norm + GLOBAL_NORM_BLOCKS, sq;
    int sharded = model->zero_stage >= 2;   // then each rank holds a shard: sum the squares over ranks
    profile_mark(&model->profile, K_NORM, model->stream);
    global_norm_squared(out, sharded ? model->grad_shard : model->grads_memory,
                        sharded ? model->shards.shard_size : model->num_parameters, model->scratch.norm, model->stream);
    cudaCheck(cudaMemcpy(&sq, out, sizeof(float), cudaMemcpyDeviceToHost));
    double squares = sq;
    if (sharded) comm_allreduce_sum_f64(model->comm, &squares, 1, "all-reduce of the gradient norm");
    float norm = (float)sqrt(squares);
    float coef = max_norm / (norm + 1e-6f);
    model->grad_scale = max_norm > 0.0f && coef < 1.0f ? coef : 1.0f;
    return norm;
}

// where each of the 16 tensors starts in the checkpoint-ordered parameters
static void tensor_starts(const GPT2 *model, size_t start[NUM_PARAMETER_TENSORS]) {
    size_t offset = 0;
    for (int k = 0; k < NUM_PARAMETER_TENSORS; k++) {
        start[k] = offset;
        offset += model->param_sizes[k];
    }
}

// the seed of tensor k's stochastic rounding at step t (1-based)
static uint32_t rounding_seed(const GPT2 *model, int t, int k) {
    return model->seed * 0x9E3779B9u ^ (uint32_t)t * 0x85EBCA6Bu ^ (uint32_t)k * 0xC2B2AE35u;
}

// AdamW with decoupled weight decay on the 2-D weights only; t is the
// 1-based step. Each tensor's stochastic rounding gets its own seed. With
// master weights the update is computed on them, and the bf16 parameters
// are their stochastic rounding.
void gpt2_update(GPT2 *model, float lr, float beta1, float beta2, float eps, float weight_decay, int t) {
    profile_mark(&model->profile, K_ADAMW, model->stream);
    if (model->zero_stage == 0) {  // every rank updates everything, the same way
        size_t offset = 0;
        for (int k = 0; k < NUM_PARAMETER_TENSORS; k++) {
            size_t n = model->param_sizes[k];
            uint32_t seed = rounding_seed(model, t, k);
            float *master = model->master_memory ? model->master_memory + offset : NULL;
            adamw_update(model->params_memory + offset, master, model->grads_memory + offset,
                         model->m_memory + offset, model->v_memory + offset, n, lr, beta1, beta2, t, eps,
                         parameter_decays(k) ? weight_decay : 0.0f, model->grad_scale, seed, model->stream);
            offset += n;
        }
    } else {  // ZeRO-1/2/3: this rank's slices (with the whole tensor's random bits)
        const ZeroLayout *z = &model->optim;
        size_t tensor_start[NUM_PARAMETER_TENSORS];
        tensor_starts(model, tensor_start);
        for (int u = 0; u < z->num_units; u++) {
            int k = z->tensor[u];
            size_t own = zero_owned(z, u, z->rank), so = z->shard_offset[u];
            size_t flat = z->offset[u] + (size_t)z->rank * z->slice[u];
            const floatX *grads = model->zero_stage >= 2 ? model->grad_shard + so : model->grads_memory + flat;
            floatX *params = model->zero_stage == 3 ? model->param_shard + so : model->params_memory + flat;
            float *master = model->master_memory ? model->master_memory + so : NULL;
            adamw_update(params, master, grads, model->m_memory + so,
                         model->v_memory + so, own, lr, beta1, beta2, t, eps,
                         parameter_decays(k) ? weight_decay : 0.0f, model->grad_scale, rounding_seed(model, t, k),
                         model->stream, flat - tensor_start[k]);
        }
        if (model->zero_stage < 3) {  // every rank needs every parameter again (ZeRO-3: at the next use)
            profile_mark(&model->profile, K_COMM, model->stream);
            device_group_start(&model->dcomm);
            for (int u = 0; u < z->num_units; u++) {
                device_all_gather_unpadded(&model->dcomm, model->params_memory + z->offset[u], z->count[u],
                                           z->slice[u], DEVICE_BF16, "all-gather of parameters");
            }
            device_group_end(&model->dcomm, "all-gather of parameters");
        }
        for (int k = 0; k < 3; k++) model->params_of[k] = -1;   // ZeRO-3: gathered copies are stale
        for (int k = 0; k < 2; k++) model->wte_params_of[k] = -1;
    }
    profile_end_step(&model->profile, model->stream);
    cudaCheck(cudaStreamSynchronize(model->stream));
}

// ----------------------------------------------------------------------------
// what the training program (llmc/train_loop.h) needs of the model

// the Vp logits of row t (of the B*T) of the last forward, computed here (one
// row of the tied head into the logits buffer)
const float *gpt2_logits_row(GPT2 *model, int t) {
    int C = model->config.channels, Vp = model->config.padded_vocab_size;
    if (t < 0 || t >= model->B * model->T) fatal("gpt2_logits_row: row %d is not in the last forward", t);
    const floatX *lnf = model->acts.lnf + (size_t)t * C;
    if (!vocab_chunked(model)) matmul_forward(model->acts.logits, NULL, lnf, gpt2_params(model, -1, -1).wte, NULL, 1, C, Vp,
                                              model->stream);
    for (int e = 0; e < model->shards.vocab_chunks; e++) {   // ZeRO-2/3: a vocabulary chunk at a time
        int v0, v1;
        zero_vocab_chunk(&model->shards, e, &v0, &v1);
        matmul_forward(model->acts.logits + v0, NULL, lnf, wte_chunk(model, e), NULL, 1, C, v1 - v0, model->stream);
    }
    if (model->zero_stage == 3) device_wait(&model->dcomm, "all-gather of parameters");
    cudaCheck(cudaMemcpy(model->row_bf16, model->acts.logits, (size_t)Vp * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (int i = 0; i < Vp; i++) model->row_host[i] = __bfloat162float(model->row_bf16[i]);
    return model->row_host;
}

static void *download(const void *src, size_t bytes) {
    void *host = malloc_check(bytes);
    cudaCheck(cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost));
    return host;
}

// -at 1's choices of this rank (each times its own at first), beside the
// checkpoints in the first dir_len characters of dir (llmc/autotune_file.h)
static void autotune_path(char *out, size_t size, const char *dir, int dir_len, int rank) {
    snprintf(out, size, "%.*s/matmul_autotune_%05d.txt", dir_len, dir, rank);
}

// The model file holds the master weights (fp32) when there are some, else
// the bf16 parameters; each rank's state file its slices of the AdamW
// moments. State files first: rank 0's model file marks the checkpoint complete.
void gpt2_save(GPT2 *model, const char *model_path, const char *state_path, const TrainState *st) {
    size_t n = model->num_parameters;
    const ZeroLayout *z = &model->shards;
    if (matmul_ctx.autotune) {  // (before the model file, which completes the checkpoint)
        char path[4096];
        const char *slash = strrchr(model_path, '/');
        if (slash) autotune_path(path, sizeof(path), model_path, (int)(slash - model_path), z->rank);
        else autotune_path(path, sizeof(path), ".", 1, z->rank);
        matmul_autotune_save(path);
    }
    float *m, *v;
    if (model->optim.shard_size == z->shard_size) {  // the moments are this rank's shard
        m = (float *)download(model->m_memory, z->shard_size * sizeof(float));
        v = (float *)download(model->v_memory, z->shard_size * sizeof(float));
    } else {  // ZeRO-0 on several ranks: every rank holds all moments; write its slices
        m = (float *)calloc_check(z->shard_size, sizeof(float));
        v = (float *)calloc_check(z->shard_size, sizeof(float));
        for (int u = 0; u < z->num_units; u++) {
            size_t from = z->offset[u] + (size_t)z->rank * z->slice[u], bytes = zero_owned(z, u, z->rank) * sizeof(float);
            if (bytes == 0) continue;   // (a slice wholly past a small unit: `from` may lie past the moments)
            cudaCheck(cudaMemcpy(m + z->shard_offset[u], model->m_memory + from, bytes, cudaMemcpyDeviceToHost));
            cudaCheck(cudaMemcpy(v + z->shard_offset[u], model->v_memory + from, bytes, cudaMemcpyDeviceToHost));
        }
    }
    state_file_write(state_path, st, m, v, z->shard_size);
    free(m);
    free(v);
    comm_barrier_after_io(model->comm, "checkpoint: state files written");
    if (model->master_memory && model->zero_stage >= 1) {  // gathered unit by unit; rank 0 keeps them
        float *master = z->rank == 0 ? (float *)malloc_check(n * sizeof(float)) : NULL, *unit;
        size_t most = 0;
        for (int u = 0; u < z->num_units; u++) most = z->slice[u] > most ? z->slice[u] : most;
        cudaCheck(cudaMalloc(&unit, most * z->world * sizeof(float)));
        for (int u = 0; u < z->num_units; u++) {
            cudaCheck(cudaMemcpy(unit + (size_t)z->rank * z->slice[u], model->master_memory + z->shard_offset[u],
                                 z->slice[u] * sizeof(float), cudaMemcpyDeviceToDevice));
            device_follow_compute(&model->dcomm);
            device_all_gather(&model->dcomm, unit, z->slice[u], DEVICE_F32, "all-gather of master weights");
            device_wait(&model->dcomm, "all-gather of master weights");
            cudaCheck(cudaStreamSynchronize(model->dcomm.stream));
            if (master) {
                cudaCheck(cudaMemcpy(master + z->offset[u], unit, z->count[u] * sizeof(float), cudaMemcpyDeviceToHost));
            }
        }
        cudaCheck(cudaFree(unit));
        if (master) model_file_write_version(model_path, &model->config, MODEL_VERSION_FP32, master);
        free(master);
    } else if (model->zero_stage == 3) {  // every rank gathers bucket by bucket; rank 0 keeps the whole
        floatX *params = z->rank == 0 ? (floatX *)malloc_check(n * sizeof(floatX)) : NULL;
        for (int b = 0; b < z->num_buckets; b++) {
            params_gather_start(model, b);
            device_wait(&model->dcomm, "all-gather of parameters");
            cudaCheck(cudaStreamSynchronize(model->dcomm.stream));
            int units[BLOCK_TENSORS], k = bucket_slot(b), count = zero_bucket_units(z, b, units);
            for (int i = 0; params && i < count; i++) {
                int u = units[i];
                cudaCheck(cudaMemcpy(params + z->offset[u], model->bucket_params[k] + z->bucket_offset[u],
                                     z->count[u] * sizeof(floatX), cudaMemcpyDeviceToHost));
            }
        }
        for (int e = 0; e < z->vocab_chunks; e++) {   // wte (not in the buckets): chunk by chunk
            wte_gather_start(model, e);
            device_wait(&model->dcomm, "all-gather of parameters");
            cudaCheck(cudaStreamSynchronize(model->dcomm.stream));
            int v0, v1;
            zero_vocab_chunk(z, e, &v0, &v1);
            size_t at = (size_t)v0 * z->channels;
            if (params) cudaCheck(cudaMemcpy(params + at, model->wte_params[e % 2], ((size_t)v1 * z->channels - at) *
                                             sizeof(floatX), cudaMemcpyDeviceToHost));
        }
        if (params) model_file_write_version(model_path, &model->config, MODEL_VERSION_BF16, params);
        free(params);
    } else if (z->rank == 0 && model->master_memory) {
        void *master = download(model->master_memory, n * sizeof(float));
        model_file_write_version(model_path, &model->config, MODEL_VERSION_FP32, master);
        free(master);
    } else if (z->rank == 0) {
        void *params = download(model->params_memory, n * sizeof(floatX));
        model_file_write_version(model_path, &model->config, MODEL_VERSION_BF16, params);
        free(params);
    }
    comm_barrier_after_io(model->comm, "checkpoint: model file written");
}

// what gpt2_save writes: the master weights (all, or ZeRO-1+ this rank's shard)
// when there are some, else the bf16 parameters (all, or ZeRO-3 this rank's shard)
int gpt2_weights_finite(GPT2 *model) {
    const void *weights = model->master_memory;
    size_t n = model->optim.shard_size, bytes = n * sizeof(float);
    if (!weights) {
        weights = model->zero_stage == 3 ? (const void *)model->param_shard : (const void *)model->params_memory;
        n = model->zero_stage == 3 ? model->shards.shard_size : model->num_parameters;
        bytes = n * sizeof(floatX);
    }
    void *host = download(weights, bytes);
    int finite = first_nonfinite(host, n, !model->master_memory) < 0;
    free(host);
    return finite;
}

uint32_t gpt2_params_checksum(GPT2 *model) { return model->params_crc; }

// After the micro-batches' backward passes: every rank's gradients summed
// (bf16, as the backward keeps them; ZeRO-2/3 reduce-scattered them already).
void gpt2_reduce_gradients(GPT2 *model) {
    if (model->comm->world == 1 || model->zero_stage >= 2) return;   // (ZeRO-2/3: reduced in the backward)
    profile_mark(&model->profile, K_COMM, model->stream);
    if (!model->reduce_f32) {   // (allocated with -gr 1 and several ranks)
        device_all_reduce_sum(&model->dcomm, model->grads_memory, model->num_parameters, DEVICE_BF16,
                              "all-reduce of gradients");
        return;
    }
    // -gr 1: REDUCE_F32_CHUNK gradients at a time to fp32, summed, rounded back once
    for (size_t at = 0; at < model->num_parameters; at += REDUCE_F32_CHUNK) {
        size_t n = model->num_parameters - at < REDUCE_F32_CHUNK ? model->num_parameters - at : REDUCE_F32_CHUNK;
        cast_bf16_to_float(model->reduce_f32, model->grads_memory + at, n, model->stream);
        device_all_reduce_sum(&model->dcomm, model->reduce_f32, n, DEVICE_F32, "all-reduce of gradients");
        cast_float_to_bf16(model->grads_memory + at, model->reduce_f32, n, model->stream);
    }
}

// Reads the AdamW moments of the checkpoint at `step` in dir (written on
// any number of ranks: the whole model is gathered from their shards).
void gpt2_load_state(GPT2 *model, const char *dir, int step, TrainState *st) {
    size_t held = model->optim.shard_size;
    float *m = (float *)malloc_check(held * sizeof(float)), *v = (float *)malloc_check(held * sizeof(float));
    state_files_read(dir, step, &model->config, &model->optim, m, v, st);
    cudaCheck(cudaMemcpy(model->m_memory, m, held * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->v_memory, v, held * sizeof(float), cudaMemcpyHostToDevice));
    free(m);
    free(v);
    // with master weights (loaded from the fp32 model file), the bf16
    // parameters are what the last step's stochastic rounding made of them,
    // not their nearest rounding: redo it, so a resume is exact
    // (each rank its slices of the master weights, ZeRO-1+; then the
    // parameters are all-gathered, or at ZeRO-3 kept as the shard)
    if (model->master_memory && st->step > 0) {
        const ZeroLayout *z = &model->optim;
        float *master = (float *)download(model->master_memory, z->shard_size * sizeof(float));
        floatX *params = (floatX *)calloc_check(z->shard_size, sizeof(floatX));
        size_t tensor_start[NUM_PARAMETER_TENSORS];
        tensor_starts(model, tensor_start);
        for (int u = 0; u < z->num_units; u++) {
            int k = z->tensor[u];
            size_t so = z->shard_offset[u], flat = z->offset[u] + (size_t)z->rank * z->slice[u];
            uint32_t seed = rounding_seed(model, st->step, k);
            for (size_t i = 0; i < zero_owned(z, u, z->rank); i++) {
                params[so + i] = adamw_stochastic_round(master[so + i], adamw_random_bits(seed, flat - tensor_start[k] + i));
            }
            if (model->zero_stage < 3 && zero_owned(z, u, z->rank) > 0) {   // (else `flat` may lie past the end)
                cudaCheck(cudaMemcpy(model->params_memory + flat, params + so, zero_owned(z, u, z->rank) * sizeof(floatX),
                                     cudaMemcpyHostToDevice));
            }
        }
        if (model->zero_stage == 3) {
            cudaCheck(cudaMemcpy(model->param_shard, params, z->shard_size * sizeof(floatX), cudaMemcpyHostToDevice));
        } else if (model->zero_stage >= 1) {
            device_group_start(&model->dcomm);
            for (int u = 0; u < z->num_units; u++) {
                device_all_gather_unpadded(&model->dcomm, model->params_memory + z->offset[u], z->count[u],
                                           z->slice[u], DEVICE_BF16, "all-gather of parameters");
            }
            device_group_end(&model->dcomm, "all-gather of parameters");
        }
        free(master);
        free(params);
    }
}

void gpt2_describe_device(char *out, size_t size) {
    int dev;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    snprintf(out, size, "%s (sm_%d%d), bf16", prop.name, prop.major, prop.minor);
}

// the device's dense bf16 peak in FLOP/s (llmc/mfu.h), or -1 if unknown
double gpt2_peak_flops(GPT2 *model) { return model->peak_flops; }

// -lg: one line on what the GPU is doing now (llmc/gpu_info.h)
void gpt2_gpu_info(char *out, size_t size) {
#ifdef CUDA_EMU
    gpu_info_open(NULL, "an emulated device");
#else
    char bus_id[32];
    int dev;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaDeviceGetPCIBusId(bus_id, (int)sizeof(bus_id), dev));
    gpu_info_open(bus_id, NULL);
#endif
    gpu_info_line(out, size);
}

#ifndef TESTING
#define TRAINER_SUMMARY "Trains GPT-2 on NVIDIA GPUs (bf16, one per rank) from token shards; writes checkpoints to -o."
#define TRAINER_GPU
#include "llmc/train_loop.h"

void gpt2_configure(const TrainConfig *cfg, const Comm *comm) {
    if (comm->world > 1) {  // one GPU per rank, by the rank's place on its machine
        int devices;
        cudaCheck(cudaGetDeviceCount(&devices));
        cudaCheck(cudaSetDevice(comm->local_rank % devices));
    }
    gpu_options.recompute = cfg->recompute;
    gpu_options.master_weights = cfg->master_weights;
    gpu_options.profile = cfg->profile;
    gpu_options.gelu_fusion = cfg->gelu_fusion;
    gpu_options.attention_wgmma = cfg->attention_wgmma;
    gpu_options.attention_stored_ds = cfg->attention_stored_ds;
    if (cfg->attention_wgmma && !attention_wgmma_supported()) {
        fprintf(stderr, "error: -aw 1: wgmma needs a GPU of compute capability 9.0 (H100, H200) and a build for "
                        "sm_90a (the Makefile's); this device or build is not\n");
        exit(EXIT_FAILURE);
    }
    matmul_ctx.dgelu_apart = !cfg->gelu_fusion;   // and gelu' in the backward (llmc/matmul.cuh),
    matmul_ctx.dbias_apart = !cfg->gelu_fusion;   // and dbias
    matmul_ctx.autotune = cfg->matmul_autotune;
    if (cfg->matmul_autotune && cfg->output_dir[0]) {  // an earlier run's choices: the same algorithms, the same bits
        char path[4096];
        autotune_path(path, sizeof(path), cfg->output_dir, (int)strlen(cfg->output_dir), comm->rank);
        matmul_autotune_load(path);
    }
    gpu_options.reduce_fp32 = cfg->reduce_fp32;
    gpu_options.init_method = cfg->init_method;
    gpu_options.rendezvous_server = cfg->rendezvous_server;
    gpu_options.rendezvous_file = cfg->rendezvous_file;
}
#endif
