// llmc/mfu.h: how fast a GPU could go: its dense bf16 tensor-core peak, by
// name, so benches and the GPU trainer can report a fraction of it (model
// FLOPs utilisation). Plain C; no CUDA needed to include it.
//
// The peaks are the vendors' datasheet numbers for dense (not 2:4 sparse)
// bf16 matmul with fp32 accumulation, in TFLOP/s. A GPU missing from the
// table gets -1 and callers print no percentage rather than a wrong one.
#ifndef LLMC_MFU_H
#define LLMC_MFU_H

#include <string.h>

typedef struct {
    const char* name_part;   // matched as a substring of the device name
    double bf16_tflops;
} GpuPeak;

// more specific names first: "H100 PCIe" before "H100"
static const GpuPeak GPU_PEAKS[] = {
    {"H200", 989.4},      {"GH200", 989.4},     {"H100 PCIe", 756.0}, {"H100 NVL", 835.0},
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
