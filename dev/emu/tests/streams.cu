// dev/emu/tests/streams.cu: the emulation's streams (dev/emu/emu_streams.h).
// Real CUDA: nvcc compiles it too.
//
//   streams good      a producer and a consumer on two streams, ordered by
//                     events both ways: the consumer reads what the producer
//                     wrote, and the producer overwrites its buffer only after
//                     the consumer has read it; a blocking stream's work is
//                     seen by cudaMemcpy (the legacy stream waits for it)
//   streams no-wait   the same without the consumer's cudaStreamWaitEvent
//   streams no-free   the same without the producer's wait before it overwrites
//   streams legacy    a non-blocking stream's work read by cudaMemcpy without
//                     a synchronization (cudaMemcpy does not wait for it)
//
// Each prints "ok" and exits 0 when the data read is right, or exits 1 with
// an "error:" line. Every mode is right when work runs as it is queued (the
// default), as a racy program may be on a GPU too. "good" stays right with
// either stream late; a late producer (EMU_LATE_STREAM=1) shows no-wait and
// legacy reading stale data, a late consumer (EMU_LATE_STREAM=2) no-free.
#include <string.h>
#include "common.cuh"

#define N 256

__global__ void fill(float* x, float v, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = v + (float)i;
}

__global__ void twice(float* y, const float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 2.0f * x[i];
}

// 0 if got[i] == scale * (v + i) for all i, else prints the first mismatch
// and why it would happen, 1
static int expect(const char* what, const float* got, float scale, float v, const char* why) {
    for (int i = 0; i < N; i++) {
        if (got[i] != scale * (v + (float)i)) {
            fprintf(stderr, "error: %s: [%d] = %g, want %g (stale data: %s)\n", what, i, got[i], scale * (v + (float)i),
                    why);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char** argv) {
    const char* mode = argc == 2 ? argv[1] : "";
    int no_wait = !strcmp(mode, "no-wait"), no_free = !strcmp(mode, "no-free"), legacy = !strcmp(mode, "legacy");
    if (!no_wait && !no_free && !legacy && strcmp(mode, "good")) {
        fprintf(stderr, "usage: %s good|no-wait|no-free|legacy\n", argv[0]);
        return 2;
    }
    cudaStream_t producer, consumer;
    cudaEvent_t written, read;
    float *x, *y, host[N];
    cuda_check(cudaStreamCreateWithFlags(&producer, legacy ? cudaStreamNonBlocking : 0));   // EMU_LATE_STREAM=1
    cuda_check(cudaStreamCreate(&consumer));                                                // EMU_LATE_STREAM=2
    cuda_check(cudaEventCreateWithFlags(&written, cudaEventDisableTiming));
    cuda_check(cudaEventCreateWithFlags(&read, cudaEventDisableTiming));
    cuda_check(cudaMalloc(&x, N * sizeof(float)));
    cuda_check(cudaMalloc(&y, 2 * N * sizeof(float)));
    cuda_check(cudaMemset(x, 0, N * sizeof(float)));
    cuda_check(cudaDeviceSynchronize());
    int bad = 0;
    if (legacy) {   // cudaMemcpy runs on the legacy stream, which waits for blocking streams only
        fill<<<(N + 63) / 64, 64, 0, producer>>>(x, 1.0f, N);
        cuda_check(cudaGetLastError());
        cuda_check(cudaMemcpy(host, x, N * sizeof(float), cudaMemcpyDeviceToHost));
        bad = expect("legacy: x", host, 1.0f, 1.0f, "cudaMemcpy does not wait for a non-blocking stream");
    } else {
        for (int round = 0; round < 2; round++) {   // round 1 reuses x: after round 0's consumer has read it
            if (round == 1 && !no_free) cuda_check(cudaStreamWaitEvent(producer, read, 0));
            fill<<<(N + 63) / 64, 64, 0, producer>>>(x, 100.0f * round, N);
            cuda_check(cudaGetLastError());
            cuda_check(cudaEventRecord(written, producer));
            cudaEvent_t unused;   // destroyed between the streams, it orders nothing on the device
            cuda_check(cudaEventCreate(&unused));
            cuda_check(cudaEventDestroy(unused));
            if (!no_wait) cuda_check(cudaStreamWaitEvent(consumer, written, 0));
            twice<<<(N + 63) / 64, 64, 0, consumer>>>(y + round * N, x, N);
            cuda_check(cudaGetLastError());
            cuda_check(cudaEventRecord(read, consumer));
        }
        cuda_check(cudaStreamSynchronize(consumer));
        cuda_check(cudaDeviceSynchronize());
        float out[2 * N];
        cuda_check(cudaMemcpy(out, y, sizeof(out), cudaMemcpyDeviceToHost));
        const char* why = "a missing wait between streams";
        bad = expect("round 0: y", out, 2.0f, 0.0f, why) || expect("round 1: y", out + N, 2.0f, 100.0f, why);
        // a blocking stream's work is in what cudaMemcpy reads
        fill<<<(N + 63) / 64, 64, 0, producer>>>(x, 7.0f, N);
        cuda_check(cudaGetLastError());
        cuda_check(cudaMemcpy(host, x, N * sizeof(float), cudaMemcpyDeviceToHost));
        bad = bad || expect("blocking: x", host, 1.0f, 7.0f, "cudaMemcpy did not wait for a blocking stream");
    }
    cuda_check(cudaDeviceSynchronize());
    cuda_check(cudaFree(x));
    cuda_check(cudaFree(y));
    cuda_check(cudaEventDestroy(written));
    cuda_check(cudaEventDestroy(read));
    cuda_check(cudaStreamDestroy(producer));
    cuda_check(cudaStreamDestroy(consumer));
    if (!bad) printf("ok\n");
    return bad;
}
