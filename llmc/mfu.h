// llmc/mfu.h: model FLOPs utilisation: the FLOPs a GPT-2 training step
// needs per token, and how fast a GPU could go (its dense bf16 tensor-core
// peak, by name), so benches and the GPU trainer can report a fraction of
// it. Plain C; no CUDA needed to include it.
//
// The peaks are the vendors' datasheet numbers for dense (not 2:4 sparse)
// bf16 matmul with fp32 accumulation, in TFLOP/s. A GPU missing from the
// table gets -1 and callers print no percentage rather than a wrong one.
#ifndef LLMC_MFU_H
#define LLMC_MFU_H

#include <string.h>

#include "gpt2.h"

// FLOPs of one training step (forward + backward) per token at sequence
// length T: 6 per parameter (2 forward, 4 backward, for every weight a token
// meets: the matmuls) plus attention's two (T,T) matmuls, 2 * 2 * T * C per
// layer forward, times 3 for the backward, halved by the causal mask:
// 6 * L * C * T. (As PaLM's appendix B counts, and llm.c.)
static inline double gpt2_flops_per_token(const GPT2Config *c, size_t num_parameters, int T) {
    return 6.0 * (double)num_parameters + 6.0 * c->num_layers * (double)c->channels * T;
}

typedef struct {
    const char* name_part;   // matched as a substring of the device name
    double bf16_tflops;
} GpuPeak;

// more specific names first: "H100 PCIe" before "H100", "GH200" before "H200"
static const GpuPeak GPU_PEAKS[] = {
    {"GH200", 989.4},     {"H200", 989.4},     {"H100 PCIe", 756.0}, {"H100 NVL", 835.0},
    {"H100", 989.4},      {"H800", 989.4},      {"B200", 2250.0},     {"A100", 312.0},
    {"A800", 312.0},      {"A10G", 70.0},       {"A10", 125.0},       {"L40S", 362.0},
    {"L4", 121.0},        {"RTX 4090", 165.2},  {"RTX 3090", 71.0},
};

// dense bf16 peak in TFLOP/s of the GPU called name, or -1 if unknown
static inline double gpu_bf16_peak_tflops(const char* name) {
    for (size_t i = 0; i < sizeof(GPU_PEAKS) / sizeof(GPU_PEAKS[0]); i++)
        if (strstr(name, GPU_PEAKS[i].name_part)) return GPU_PEAKS[i].bf16_tflops;
    return -1.0;
}

#endif // LLMC_MFU_H
