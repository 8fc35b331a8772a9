// dev/emu/emu_types.h: the keywords and runtime types of CUDA C++ that emulated
// code names (dim3, error codes, streams and events as the host holds them).
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_TYPES_H
#define EMU_TYPES_H

// ----------------------------------------------------------------------------
// keywords

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// declarations are rewritten by dev/emu/rewrite.py; one it missed fails to
// compile with this name in the message
#define __shared__ emu_shared_declaration_not_rewritten_by_dev_emu_rewrite_py
#define warpSize 32

// ----------------------------------------------------------------------------
// runtime types

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

// (values as in the CUDA runtime)
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
};
typedef cudaError_t cudaError;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
// how a stream's work runs: its kernels' thread stacks, and the race
// check's view of the stream (see emu_races.h): its ThreadSanitizer
// fiber, which runs the stream's operations in order (and schedules the
// blocks' threads), and the addresses its orderings go through
struct emu_stream_exec {
    // the threads' stacks; with the race check, two sets taken in turns by
    // the blocks, with a ThreadSanitizer fiber per stack
    std::vector<char*> stacks[2];
    std::vector<void*> thread_fibers[2];
    int thread_set = 0;
    void* fiber = nullptr;
    // the host's work before an operation is queued (submitted), the
    // stream's operations so far (done), a launch's start (block_start) and
    // end (launch_done), each thread set's __syncthreads and per warp
    // __syncwarp
    uint64_t submitted, done, block_start, launch_done, sync_objects[2][33];
};
// a stream made by cudaStreamCreate: the work queued on it, not run yet (see
// emu_streams.h)
struct emu_stream {
    std::deque<std::function<void()>> work;
    uint64_t queued = 0, done = 0;   // operations ever queued / run
    bool running = false;
    bool blocking = true;            // orders with the legacy default stream (not cudaStreamNonBlocking)
    bool late = false;               // EMU_LATE_STREAM: runs only when something waits for it (or by chance)
    long index = 0;                  // 0 the legacy stream, k the k-th made
    emu_stream_exec exec;
};
typedef emu_stream* cudaStream_t;
struct emu_event {
    emu_stream* stream = nullptr;   // where it was last recorded (nullptr: happened)
    uint64_t at = 0;                // it has happened when stream->done >= at
    uint64_t records = 0;           // the time is that of the latest record
    std::chrono::steady_clock::time_point t;
    std::shared_ptr<uint64_t> recorded;   // the race check's: the stream's work up to the latest record
};
typedef emu_event* cudaEvent_t;
typedef void (*cudaHostFn_t)(void*);

#endif // EMU_TYPES_H
