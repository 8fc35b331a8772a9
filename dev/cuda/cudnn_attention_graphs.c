/*
 * cudnn_attention_graphs.c: do cuDNN's engines take our attention graphs?
 * Checked without a GPU (llmc/attention_cudnn.cuh builds the graphs).
 *
 * cuDNN (9.8 and later) picks engines and compiles plans for a device
 * described by its properties in JSON (a DEVICEPROP descriptor), so this
 * runs where there is no GPU: for each shape, the forward and backward
 * graphs of llmc/attention_cudnn.cuh must get at least one engine
 * configuration from cuDNN's heuristics for that device, and the first one
 * must compile. Without a GPU driver, cuDNN needs libcuda.so.1 to compile
 * at all: the CUDA toolkit's stub library serves (tests/t_cudnn.sh puts it
 * first on LD_LIBRARY_PATH); the stub cannot load the compiled kernel, so
 * here a plan counts as built when only that load fails
 * (CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER). On a GPU machine the plan
 * finalizes and runs: build/cudnn/attention checks its numbers there.
 *
 * usage: build/cudnn/attention_graphs DEVICE.json   (dev/cuda/h100.json, a100.json:
 *        the properties cuDNN reads, with these GPUs' published figures)
 * Prints one line per check; exits 1 if any fails.
 */
#include <stdio.h>
#include <stdlib.h>

#define CUDNN_GRAPHS_ONLY
#include "../../llmc/attention_cudnn.cuh"

static int failures = 0;

// The device from its JSON properties file (a few hundred bytes)
static CudnnDesc device_from_json(const char *path) {
    FILE *f = fopen_check(path, "rb");
    char json[8192];
    size_t n = fread(json, 1, sizeof(json), f);
    if (ferror(f)) fatal("cannot read '%s'", path);
    if (n == sizeof(json)) fatal("'%s' is not a device properties file: over %zu bytes", path, sizeof(json) - 1);
    fclose_check(f);
    json[n] = '\0';
    CudnnDesc device;
    cudnnCheck(cudnnBackendCreateDescriptor(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, &device));
    cudnn_set(device, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, (int64_t)n + 1, json);
    cudnnCheck(cudnnBackendFinalize(device));
    return device;
}

// How many engine configurations cuDNN offers for the graph, and whether
// the first that compiles does (*built)
static int check_graph(CudnnDesc device, int backward, int B, int T, int NH, int HS, int *built) {
    CudnnGraph g;
    if (backward) cudnn_backward_graph(&g, B, T, NH, HS);
    else cudnn_forward_graph(&g, B, T, NH, HS);
    CudnnDesc graph = cudnn_operation_graph(&g, NULL), configs[CUDNN_MAX_CONFIGS];
    int n = cudnn_engine_configs(&g, graph, device, configs, CUDNN_MAX_CONFIGS);
    *built = 0;
    for (int i = 0; i < n && !*built; i++) {
        CudnnDesc plan;
        cudnnStatus_t status = cudnn_try_plan(configs[i], device, NULL, &plan);
        if (plan) cudnnBackendDestroyDescriptor(plan);
        *built = status == CUDNN_STATUS_SUCCESS || status == CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER;
    }
    cudnn_graph_free(&g);
    return n;
}

static void expect(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "error: usage: %s DEVICE.json\n", argv[0]);
        return 2;
    }
    CudnnDesc device = device_from_json(argv[1]);
    // GPT-2 124M at the shape gpu_validate.sh trains, then the shapes
    // dev/cuda/attention.cu checks (one row, ragged tiles, head size 32, four
    // whole tiles) and, on a GPU, also benches
    const int shapes[][4] = {{64, 1024, 12, 64}, {1, 1, 1, 64},   {2, 13, 2, 64},   {1, 64, 2, 64},
                             {1, 70, 1, 64},     {1, 33, 2, 32},  {1, 150, 1, 32},  {1, 256, 1, 64},
                             {1, 1024, 2, 64},   {2, 257, 3, 64}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        for (int backward = 0; backward < 2; backward++) {
            const int *d = shapes[s];
            int built, n = check_graph(device, backward, d[0], d[1], d[2], d[3], &built);
            char what[160];
            snprintf(what, sizeof(what), "%s B=%d T=%d NH=%d HS=%d: %d engine configuration(s), %s",
                     backward ? "backward" : "forward ", d[0], d[1], d[2], d[3], n, built ? "one compiles" : "none compiles");
            expect(n > 0 && built, what);
        }
    }
    // the control: the backward at a head size past cuDNN's fused attention's (256) gets no engine
    int built, n = check_graph(device, 1, 2, 64, 2, 264, &built);
    char what[160];
    snprintf(what, sizeof(what), "control: backward at head size 264: %d engine configuration(s), %s", n,
             built ? "one compiles" : "none compiles");
    expect(!built, what);
    cudnnBackendDestroyDescriptor(device);
    printf("%s: %d check(s) failed\n", failures ? "FAILED" : "all ok", failures);
    return failures ? 1 : 0;
}
