// dev/emu/cuda_emu.h: CUDA on the CPU, so kernels are tested without a GPU.
//
// A .cu file goes through dev/emu/rewrite.py (launch syntax and __shared__
// declarations) and is then compiled by g++ -std=c++17 with this header
// force-included (-include dev/emu/cuda_emu.h). Everything runs on one OS
// thread, in host memory:
//
// - Streams keep their work in order; by default it runs when queued, and
//   EMU_LATE_STREAM=k holds one stream back until something waits for it,
//   or =random lets every stream lag by a random part of its work, so a
//   missing cudaStreamWaitEvent between streams shows (see "streams").
//   EMU_DROP_WAITS=1 ignores every cudaStreamWaitEvent: a program whose
//   streams the race check passes must then fail it.
// - A launch runs the blocks one after another. The threads of a block are
//   cooperative fibers (see "context switches") that switch only
//   at __syncthreads, __syncwarp and the warp collectives (shuffles, ballot,
//   any, all). Between two such points a thread runs alone, so the order in
//   which the threads are swept decides what a racy kernel computes:
//   EMU_ORDER=forward|reverse|random (default forward), EMU_SEED=N for the
//   random order (reshuffled at every sweep, reproducible from the seed).
//   Each sweep takes every thread to its next switch, so the warps move in
//   lockstep; EMU_WARPS=serial instead runs one warp at a time from one
//   __syncthreads to the next (warps in the sweep's order), as a device may,
//   so a warp that overwrites shared memory another warp has yet to read
//   (a missing barrier between warps that only warp collectives separate)
//   shows.
// - Static __shared__ variables and extern __shared__ (dynamic) memory live
//   in a per-block arena: rewrite.py turns each declaration into a lookup
//   keyed by the address of a static tag unique to that declaration site, so
//   all fibers of a block get the same storage. Each variable sits at just
//   the alignment it declares (its type's, or __align__'s): the device
//   promises no more, so a wmma fragment or vector load that needs more
//   fails here too. The arena is freed at the end
//   of each block and every allocation is filled with 0xFF bytes (float NaN,
//   int -1), so reading shared memory nobody wrote in this block shows.
//   cudaMalloc memory is poisoned the same way.
// - Errors end the program with exit status 1 and one line
//   "error: emu: kernel NAME (block (x,y,z) thread (x,y,z)): ..." on stderr:
//   a __syncthreads that some threads of the block exited without reaching,
//   threads waiting at different __syncthreads, a warp collective whose mask
//   names a lane that exited, does not exist, waits at a barrier or joins
//   with another mask or collective. (A source lane outside the mask of a
//   shuffle reads as 0xFF bytes: undefined on the device.) A bad launch
//   configuration is returned by cudaGetLastError, as on the device; a
//   launch of more threads per block than the kernel's __launch_bounds__
//   stops the program (the device refuses it).
// - Data races: built with -fsanitize=thread (build/emu/tsan/), each thread
//   is a ThreadSanitizer fiber and only what orders threads on the device
//   (__syncthreads, __syncwarp, the launch) orders them there, so any two
//   accesses to one address, one a write, by two threads of a block with no
//   barrier between, or by threads of two blocks of one launch, or by the
//   work of two streams with no event wait between, stop the program with
//   ThreadSanitizer's report (both source lines, both threads as "stream s
//   block (x,y,z) thread (x,y,z)") and an "error: emu: ..." line, in any
//   thread and stream order, whether or not the result changes (see "data
//   races").
// - Out-of-bounds accesses: under AddressSanitizer every cudaMalloc buffer
//   and shared variable is its own heap block, and an ASan or UBSan report
//   gets the same "error: emu: kernel ..." line (through ASan's report
//   callback and UBSan's __ubsan_on_report hook). Without ASan a guard
//   region after each buffer is checked after every block (shared memory)
//   and launch (cudaMalloc), so writes just past the end are caught, and a
//   segfault in a kernel is reported with the kernel's name.
// - ASan and the fibers: the fiber switches are annotated with
//   __sanitizer_start/finish_switch_fiber, so ASan + UBSan work with the
//   fibers (also with detect_stack_use_after_return=1; on ucontext ASan
//   still prints its one-line "doesn't fully support makecontext/swapcontext"
//   notice per run). Fiber stacks: 64 KiB, 256 KiB under ASan (EMU_STACK_KB=N to
//   change), mmap'ed with a guard page below, reused across blocks.
// - cooperative groups: this_thread_block, tiled_partition<32>, tile
//   shuffles and sync, cooperative_groups::reduce with plus/less/greater,
//   all on the warp collectives above (same checks; see that section).
// - nvcuda::wmma, m16n16k16 with bf16 inputs and fp32 accumulators
//   (fragments, load/store/fill, mma_sync) as warp collectives, with a
//   scrambled fragment layout so kernels cannot depend on one (see that
//   section).
// - PTX mma.sync m16n8k16 (bf16 in, fp32 out) and ldmatrix x4, the
//   instructions llmc/ptx.cuh wraps, with the documented register layouts,
//   and cp.async, whose copies land at the cp.async.wait_group that covers
//   them (a read before it sees the old bytes), or with EMU_CP_ASYNC=early
//   at issue (a refill before the other warps' reads shows); see that
//   section.
// - PTX wgmma (Hopper's warpgroup mma, m64nNk16, bf16 in, fp32 out, swizzle
//   mode 0) in blocks of one warpgroup, run at the wgmma.wait_group that
//   covers it, with the documented layouts, and shared-memory addresses as
//   a descriptor holds them (emu_shared_address); a wgmma without a
//   wgmma.fence, or reading cp.async data no fence.proxy.async made
//   visible to it, stops the program; EMU_WGMMA_SWAPPED_STRIDES=k|mn|both
//   reads descriptors' lbo and sbo the other way round; see that section.
// - __nv_bfloat16 (conversions round to nearest even as the device, NaN to
//   the canonical 0x7FFF; operators compute in float) and the vector types
//   float2/float4/int2/int4/uint4 with 16-byte alignment for 128-bit packed
//   loads; checked bit for bit by dev/emu/tests/bf16.cu.
// - Device memory is the host's RAM unless EMU_DEVICE_MIB=N gives the device
//   N MiB: then cudaMemGetInfo and cudaGetDeviceProperties say so and a
//   cudaMalloc past it fails with cudaErrorMemoryAllocation, so a program's
//   plan for a GPU of that size is tested. EMU_REPORT_MEMORY=1 prints the
//   most that was allocated at once when the program exits.
//
// Limits: the kernel of a <<<>>> launch must be a plain function or a
// template with explicit arguments (no deduction of template arguments from
// the call); without the race check a race is seen only when thread order
// changes the result, and with it, between two blocks only when they are an
// odd number of blocks apart (see "data races"); reads past the end are seen
// only under ASan; every thread of a block is a
// fiber with its own stack, fine for tests, slow for big grids.
#ifndef CUDA_EMU_H
#define CUDA_EMU_H

#include <ucontext.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifndef EMU_ASAN
#define EMU_ASAN 0
#endif
#if EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EMU_TSAN 1
#endif
#endif
#ifndef EMU_TSAN
#define EMU_TSAN 0
#endif
#if EMU_TSAN
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/tsan_interface.h>
// (in the runtime, not in its header)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
extern "C" void __tsan_func_exit();
extern "C" void __tsan_read_range(void* addr, unsigned long size);
extern "C" void __tsan_write_range(void* addr, unsigned long size);
// the first race ends the program (its report names both accesses' kernel
// lines and the threads as "block (x,y,z) thread (x,y,z)"); weak: the header
// may be in several units
extern "C" __attribute__((weak)) const char* __tsan_default_options() {
    return "halt_on_error=1 exitcode=1 history_size=4";
}
#endif

#define CUDA_EMU 1

#if EMU_ASAN
// UBSan (built with ASan in the tests) calls this hook before its report and
// then exits 1: add the kernel's name. Weak: the header may be in several
// units, and a build without UBSan never calls it.
extern "C" __attribute__((weak)) void __ubsan_get_current_report_data(const char**, const char**, const char**,
                                                                      unsigned*, unsigned*, char**);
namespace emu { inline void ubsan_report(); }
extern "C" __attribute__((weak)) void __ubsan_on_report() { emu::ubsan_report(); }
#endif

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
// check's view of the stream (see "data races" below): its ThreadSanitizer
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
// "streams" below)
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

namespace emu {

// ----------------------------------------------------------------------------
// state (one OS thread runs everything)

enum class Order { forward, reverse, random };
enum class Wait { runnable, barrier, warp, exited };
enum class Op { shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all, syncwarp };

inline const char* op_name(Op op) {
    switch (op) {
    case Op::shfl_idx: return "__shfl_sync";
    case Op::shfl_up: return "__shfl_up_sync";
    case Op::shfl_down: return "__shfl_down_sync";
    case Op::shfl_xor: return "__shfl_xor_sync";
    case Op::ballot: return "__ballot_sync";
    case Op::any: return "__any_sync";
    case Op::all: return "__all_sync";
    case Op::syncwarp: return "__syncwarp";
    }
    return "?";
}

// ----------------------------------------------------------------------------
// context switches
//
// On x86-64 our own: a few instructions and no system call (glibc's
// swapcontext saves and restores the signal mask with a sigprocmask call at
// every switch: three quarters of an emulated trainer's time went there).
// emu_context_switch pushes the callee-saved registers (the SysV ABI's rbp,
// rbx, r12-r15) and the SSE and x87 control words on the stack it leaves,
// stores that stack pointer in *save_sp, and pops the same from load_sp's
// stack; a new context's stack is laid out as if it had been left that way,
// with its entry function as the return address. Elsewhere, or built with
// -DEMU_UCONTEXT: ucontext. (.weak: the header is in every unit of a program.)
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
extern "C" void emu_context_switch(void** save_sp, void* load_sp);
asm(R"(
    .pushsection .text
    .weak emu_context_switch
    .type emu_context_switch, @function
emu_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_context_switch, .-emu_context_switch
    .popsection
)");

struct Context { void* sp = nullptr; };

inline void context_switch(Context& save, const Context& load) { emu_context_switch(&save.sp, load.sp); }

// c: entry() on the stack [stack, stack + size), with the caller's control words
inline void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
    // entry is "returned" into from x (16-byte aligned), so that it starts
    // with the stack as after a call (rsp = 8 mod 16), over a null return address
    uintptr_t x = ((uintptr_t)stack + size - 16) & ~(uintptr_t)15;
    uint64_t* sp = (uint64_t*)x;
    sp[1] = 0;
    sp[0] = (uint64_t)(uintptr_t)entry;
    sp -= 7;   // rbp, rbx, r12..r15: zero; then the control words
    memset(sp, 0, 7 * sizeof *sp);
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    memcpy((char*)sp, &mxcsr, 4);
    memcpy((char*)sp + 4, &fpucw, 2);
    c.sp = sp;
}
#else
struct Context { ucontext_t uc; };

inline void context_switch(Context& save, const Context& load) { swapcontext(&save.uc, &load.uc); }

inline void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
    Context ctx;
    char* stack;        // usable stack (the guard page lies below it)
    uint3 tid;
    int lane, warp;
    Wait state;
    const char* file;   // where it waits
    int line;
    Op op;              // the collective it waits at
    unsigned mask;
    int arg, width, pred;
    uint64_t in, out;   // value posted, value returned
    // cp.async: the copies this thread issued that have not landed (their
    // bytes, read at issue; group -1 until committed), and the groups
    // committed so far
    struct AsyncCopy { char* dst; unsigned char bytes[16]; int size; long group; };
    std::vector<AsyncCopy> async_copies;
    long async_groups;
    // wgmma: the operations this thread issued that have not completed (they
    // run at the wgmma.wait_group that covers them; group -1 until
    // committed), the groups committed so far, whether a wgmma.fence came
    // since the last commit, and the shared bytes its cp.async copies wrote
    // since its last fence.proxy.async (a wgmma must not read them yet)
    struct Wgmma { float* d; int n; bool a_in_regs; uint32_t a[4]; const uint32_t* a_src; uint64_t a_desc, b_desc;
                   int accumulate, b_mn_major; long group; const char* file; int line; };
    std::vector<Wgmma> wgmmas;
    long wgmma_groups;
    bool wgmma_fenced;
    std::vector<std::pair<const char*, int>> unfenced_writes;
    void* tsan;         // its ThreadSanitizer fiber (see "data races")
    int quiet;          // nesting of Quiet scopes
};

struct SharedVar { const void* key; const char* name; char* ptr; size_t size; char* block; };

constexpr size_t kGuard = EMU_ASAN ? 0 : 64;   // bytes of 0xA5 after each buffer
constexpr unsigned char kGuardByte = 0xA5;
constexpr unsigned char kPoisonByte = 0xFF;
constexpr size_t kSharedLimit = 48 * 1024;     // default per block, as on the device
constexpr size_t kSharedOptinMax = 227 * 1024; // sm_90 maximum with the opt-in

struct State {
    bool configured = false;
    Order order = Order::forward;
    uint64_t seed = 1, rng = 0;
    size_t stack_bytes = 0, page = 4096;
    // the launch in progress
    const char* kernel = nullptr;
    dim3 grid, block;
    uint3 block_idx{0, 0, 0};
    bool in_block = false;
    size_t dyn_bytes = 0, static_bytes = 0;
    bool shared_optin_set = false;   // the running kernel's cudaFuncAttributeMaxDynamicSharedMemorySize: set,
    size_t shared_optin = 0;         // and its value
    std::vector<Fiber> fibers;
    std::vector<unsigned> warp_waiting, warp_exited;   // per warp: lanes at a collective, lanes exited
    emu_stream* stream = nullptr;   // whose operation runs (nullptr: none, the host)
    Fiber* cur = nullptr;
    Context sched;
    void (*invoke)(void*) = nullptr;
    void* invoke_ctx = nullptr;
    std::vector<SharedVar> shared;
    char* dyn = nullptr;
    const void* main_stack_bottom = nullptr;
    size_t main_stack_size = 0;
    // memory and errors
    std::map<uintptr_t, size_t> allocs;   // cudaMalloc: start -> size
    size_t device_bytes = 0;              // EMU_DEVICE_MIB in bytes, 0: the host's RAM
    size_t allocated = 0, peak = 0;       // cudaMalloc bytes now and at most
    std::map<const void*, size_t> smem_optin;
    cudaError_t last_error = cudaSuccess;
    uint64_t launches = 0;
    // streams
    emu_stream legacy;                  // the legacy default stream, 0
    std::vector<emu_stream*> streams;   // made by cudaStreamCreate*, not destroyed
    long created = 0;                   // streams made so far
    long late_stream = -1;              // EMU_LATE_STREAM: 0 the legacy stream, k the k-th made; -1 none
    bool late_random = false;           // EMU_LATE_STREAM=random: every stream late, advanced by chance
    uint64_t stream_rng = 0;            // its random numbers (from EMU_SEED)
    bool warps_serial = false;          // EMU_WARPS=serial: each warp runs alone between barriers
    bool cp_async_early = false;        // EMU_CP_ASYNC=early: cp.async copies land at issue
    bool drop_waits = false;            // EMU_DROP_WAITS=1: cudaStreamWaitEvent does nothing
    int wgmma_swapped = 0;              // EMU_WGMMA_SWAPPED_STRIDES: lbo, sbo swapped (1 K-major, 2 MN-major)
    char altstack[1 << 16];
};
inline State g;

inline const char* order_name(Order o) {
    return o == Order::forward ? "forward" : o == Order::reverse ? "reverse" : "random";
}

// one line on stderr naming the kernel, block and thread
inline void vreport(const char* fmt, va_list ap) {
    fflush(stdout);
    fprintf(stderr, "error: emu: ");
    if (g.kernel) {
        fprintf(stderr, "kernel %s (", g.kernel);
        if (g.in_block) fprintf(stderr, "block (%u,%u,%u)", g.block_idx.x, g.block_idx.y, g.block_idx.z);
        if (g.cur) fprintf(stderr, " thread (%u,%u,%u)", g.cur->tid.x, g.cur->tid.y, g.cur->tid.z);
        fprintf(stderr, "%sorder %s", g.in_block ? ", " : "", order_name(g.order));
        if (g.order == Order::random) fprintf(stderr, " seed %llu", (unsigned long long)g.seed);
        fprintf(stderr, "): ");
    }
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    fflush(stderr);
}
// that line, then exit(1)
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    _exit(1);   // not exit(): we may be on a fiber stack
}
__attribute__((format(printf, 1, 2))) inline void report(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
}

inline uint64_t next_random(uint64_t& state = g.rng) {   // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#if EMU_ASAN
inline void asan_report(const char* report) {
    const char* s = strstr(report, "SUMMARY: ");
    int n = 0;
    if (s) { s += 9; while (s[n] && s[n] != '\n') n++; }
    fprintf(stderr, "\n");
    if (g.kernel) fail("%.*s", n, s ? s : "AddressSanitizer error (report above)");
    fprintf(stderr, "error: emu: outside any kernel: %.*s\n", n, s ? s : "AddressSanitizer error");
}
inline void ubsan_report() {
    const char *kind = "", *msg = "", *file = "?";
    unsigned line = 0, col = 0;
    char* addr = nullptr;
    if (__ubsan_get_current_report_data) __ubsan_get_current_report_data(&kind, &msg, &file, &line, &col, &addr);
    if (g.kernel) report("UBSan: %s at %s:%u", msg, file, line);
}
#else
inline void on_segv(int sig) {
    // async-signal-safe enough for a crash report: fail() uses stdio, but the
    // program dies right after
    if (g.kernel) fail("signal %d (segfault: a wild pointer or a fiber stack overflow; EMU_STACK_KB=%zu)",
                       sig, g.stack_bytes / 1024);
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

inline void configure() {
    if (g.configured) return;
    g.configured = true;
    const char* o = getenv("EMU_ORDER");
    if (!o || !*o || !strcmp(o, "forward")) g.order = Order::forward;
    else if (!strcmp(o, "reverse")) g.order = Order::reverse;
    else if (!strcmp(o, "random")) g.order = Order::random;
    else fail("EMU_ORDER=%s: expected forward, reverse or random", o);
    if (const char* s = getenv("EMU_SEED")) g.seed = strtoull(s, nullptr, 10);
    if (const char* s = getenv("EMU_LATE_STREAM"); s && !strcmp(s, "random")) {
        g.late_random = g.legacy.late = true;
        g.stream_rng = g.seed * 0x9e3779b97f4a7c15ull + 1;
    } else if (s && *s) {
        char* end = nullptr;
        g.late_stream = strtol(s, &end, 10);
        if (*end || g.late_stream < 0)
            fail("EMU_LATE_STREAM=%s: expected 0 (the default stream), k (the k-th made) or random", s);
        g.legacy.late = g.late_stream == 0;
    }
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    size_t kb = EMU_ASAN ? 256 : 64;   // ASan's redzones make frames bigger
    if (const char* s = getenv("EMU_STACK_KB")) kb = strtoull(s, nullptr, 10);
    if (kb < 16) fail("EMU_STACK_KB=%zu: at least 16", kb);
    g.stack_bytes = (kb * 1024 + g.page - 1) / g.page * g.page;
    if (const char* s = getenv("EMU_DEVICE_MIB")) {
        char* end = nullptr;
        unsigned long long mib = strtoull(s, &end, 10);
        if (!*s || *end || mib == 0 || mib > (1ull << 30)) fail("EMU_DEVICE_MIB=%s: expected a positive number of MiB", s);
        g.device_bytes = (size_t)mib << 20;
    }
    if (const char* s = getenv("EMU_WARPS"); s && *s) {
        if (strcmp(s, "lockstep") && strcmp(s, "serial")) fail("EMU_WARPS=%s: expected lockstep or serial", s);
        g.warps_serial = !strcmp(s, "serial");
    }
    if (const char* s = getenv("EMU_CP_ASYNC"); s && *s) {
        if (strcmp(s, "late") && strcmp(s, "early")) fail("EMU_CP_ASYNC=%s: expected late or early", s);
        g.cp_async_early = !strcmp(s, "early");
    }
    if (const char* s = getenv("EMU_DROP_WAITS"); s && *s) {
        if (strcmp(s, "0") && strcmp(s, "1")) fail("EMU_DROP_WAITS=%s: expected 0 or 1", s);
        g.drop_waits = !strcmp(s, "1");
    }
    if (const char* s = getenv("EMU_WGMMA_SWAPPED_STRIDES"); s && *s) {
        if (strcmp(s, "k") && strcmp(s, "mn") && strcmp(s, "both"))
            fail("EMU_WGMMA_SWAPPED_STRIDES=%s: expected k, mn or both", s);
        g.wgmma_swapped = !strcmp(s, "k") ? 1 : !strcmp(s, "mn") ? 2 : 3;
    }
    if (const char* s = getenv("EMU_REPORT_MEMORY"); s && !strcmp(s, "1")) {
        atexit([] { fprintf(stderr, "emu: device memory peak %zu bytes\n", g.peak); });
    }
#if EMU_TSAN
    // after its report (halt_on_error), the line that names the kernel
    __sanitizer_set_death_callback([] {
        const char* what = "ThreadSanitizer's report above: a data race (two accesses to one address, one a write, "
                           "with nothing between them that orders them on the device: a barrier, the launch, "
                           "the stream's order or an event wait)";
        if (g.kernel) report("%s", what);
        else if (g.stream) report("a copy, memset or library call on stream %ld: %s", g.stream->index, what);
    });
#endif
#if EMU_ASAN
    __asan_set_error_report_callback(asan_report);
#else
    stack_t ss;
    ss.ss_sp = g.altstack;
    ss.ss_size = sizeof g.altstack;
    ss.ss_flags = 0;
    sigaltstack(&ss, nullptr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
#endif
}

// ----------------------------------------------------------------------------
// guarded buffers (cudaMalloc and shared memory)

inline char* alloc_guarded(size_t n) {
    // exactly n bytes (+ the guard), so ASan sees the true end
    void* q = nullptr;
    if (posix_memalign(&q, 256, n + kGuard + (n + kGuard == 0))) return nullptr;
    char* p = (char*)q;
    memset(p, kPoisonByte, n);
    memset(p + n, kGuardByte, kGuard);
    return p;
}
inline bool guard_intact(const char* p, size_t n) {
    for (size_t i = 0; i < kGuard; i++)
        if ((unsigned char)p[n + i] != kGuardByte) return false;
    return true;
}

// ----------------------------------------------------------------------------
// data races (built with -fsanitize=thread: build/emu/tsan/)
//
// ThreadSanitizer sees every memory access of the kernel's code. Each
// thread of a block runs on a ThreadSanitizer fiber, and the host's
// scheduling does not order the fibers (switches with no_sync). What orders
// the accesses of two threads is what orders them on the device:
// - __syncthreads: each thread releases the block's barrier object on
//   arriving and acquires it on leaving;
// - __syncwarp(mask) (and a tile's sync): the same with its warp's object;
//   shuffles, ballots and the warp instructions (wmma, mma.sync, ldmatrix,
//   movmatrix, wgmma) converge the lanes but order no memory, as on the
//   device;
// - a launch: a block's threads start after the stream's work so far
//   (block_start) and end before its later work (launch_done);
// - atomics are __atomic operations (relaxed), which it knows;
// - streams, as on the device: each stream has a fiber of its own, which
//   runs its operations in order, each after the host's work up to its
//   submission; another stream's work is ordered before them only by what
//   orders it on the device (cudaStreamWaitEvent up to the event's latest
//   record, the legacy stream's waits for the blocking streams), and the
//   host sees a stream's work only after a synchronization
//   (cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize, a
//   synchronous copy). Copies, memsets and the libraries' stand-ins run on
//   the host's code but in the stream's name: their fiber ignores the code
//   and declares the memory they read and write (op_reads, op_writes).
// Two accesses by different threads, one a write, with none of these between
// them are a race: in one block (a missing barrier), in two (one block reads
// or writes what another writes), or on two streams (a missing event wait).
// A fiber cannot forget what it has seen, and making one per thread of
// every block costs about half a millisecond each, so each stream has two
// sets of fibers (and of stacks), taken by its blocks in turn: block b's
// threads follow block b - 2's in program order, so a race between two
// blocks is seen when they are an odd number of blocks apart in the launch
// (neighbours always are). The emulator's own bookkeeping (the Fiber
// records, scratch shared between lanes, reused from block to block) runs
// in Quiet scopes, which it does not see; the data a warp instruction moves
// for a thread (cp.async, ldmatrix, wgmma operands, wmma loads and stores)
// it does see, as that thread's accesses. Under EMU_LATE_STREAM a wait may
// order more than it does on the device (a stream's work up to where it has
// run, not up to the event): races are looked for in the default order.
#if EMU_TSAN
inline void hb_release(const void* a) { __tsan_release(const_cast<void*>(a)); }
inline void hb_acquire(const void* a) { __tsan_acquire(const_cast<void*>(a)); }
// a stream operation run by host code (a copy, a library's stand-in)
// accesses [p, p + n), in the name of the stream's fiber, which ignores the
// code itself
inline void op_access(const void* p, size_t n, bool write) {
    if (!g.stream || !n) return;
    __tsan_ignore_thread_end();
    if (write) __tsan_write_range(const_cast<void*>(p), n);
    else __tsan_read_range(const_cast<void*>(p), n);
    __tsan_ignore_thread_begin();
}
// emulator bookkeeping on a fiber: not the kernel's accesses (the nesting
// count is kept with atomics, which never race, being outside the scope)
inline int quiet_add(Fiber* f, int d) { return f ? __atomic_add_fetch(&f->quiet, d, __ATOMIC_RELAXED) : -1; }
struct Quiet {
    Fiber* f = g.cur;
    Quiet() { if (quiet_add(f, 1) == 1) __tsan_ignore_thread_begin(); }
    ~Quiet() { if (quiet_add(f, -1) == 0) __tsan_ignore_thread_end(); }
    Quiet(const Quiet&) = delete;
};
// inside a Quiet scope, the kernel's own access again (e.g. the bytes a
// warp instruction reads for this thread)
struct Loud {
    Fiber* f = g.cur;
    int depth = f ? __atomic_exchange_n(&f->quiet, 0, __ATOMIC_RELAXED) : 0;
    Loud() { if (depth) __tsan_ignore_thread_end(); }
    ~Loud() { if (depth) { __atomic_store_n(&f->quiet, depth, __ATOMIC_RELAXED); __tsan_ignore_thread_begin(); } }
    Loud(const Loud&) = delete;
};
#else
inline void hb_release(const void*) {}
inline void hb_acquire(const void*) {}
inline void op_access(const void*, size_t, bool) {}
struct Quiet { Quiet() {} Quiet(const Quiet&) = delete; };
struct Loud { Loud() {} Loud(const Loud&) = delete; };
#endif
inline void op_reads(const void* p, size_t n) { op_access(p, n, false); }
inline void op_writes(void* p, size_t n) { op_access(p, n, true); }

// ----------------------------------------------------------------------------
// fibers and the block scheduler

inline void fiber_entry();

inline void switch_to(Fiber& f) {
    g.cur = &f;
#if EMU_TSAN
    __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#if EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack, g.stack_bytes);
#endif
    context_switch(g.sched, f.ctx);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    g.cur = nullptr;
}

// the current fiber gives control back to the scheduler
inline void yield() {
    Fiber* f = g.cur;
#if EMU_TSAN
    __tsan_switch_to_fiber(g.stream->exec.fiber, __tsan_switch_to_fiber_no_sync);
#endif
#if EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, g.main_stack_bottom, g.main_stack_size);
#endif
    context_switch(f->ctx, g.sched);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

inline void collective_check_exit(Fiber& f);

// (not inlined into fiber_entry, which never returns: its locals' stack
// would stay poisoned for ASan)
__attribute__((noinline)) inline void mark_exited(Fiber& f) {
    Quiet quiet;
    f.state = Wait::exited;
    g.warp_exited[f.warp] |= 1u << f.lane;
    collective_check_exit(f);
}

inline void fiber_entry() {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g.main_stack_bottom, &g.main_stack_size);
#endif
    hb_acquire(&g.stream->exec.block_start);
    g.invoke(g.invoke_ctx);
    Fiber& f = *g.cur;
    mark_exited(f);
    hb_release(&g.stream->exec.launch_done);
#if EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, g.main_stack_bottom, g.main_stack_size);
#endif
#if EMU_TSAN
    // this function never returns: leave its frame on the fiber's call
    // stack and every block would add one
    __tsan_func_exit();
    __tsan_switch_to_fiber(g.stream->exec.fiber, __tsan_switch_to_fiber_no_sync);
#endif
    context_switch(f.ctx, g.sched);   // never resumed
}

// "file:line" where f waits; a few buffers in turn, so one message can hold two
inline const char* where(const Fiber& f) {
    static char buf[4][512];
    static int next = 0;
    char* b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s:%d", f.file, f.line);
    return b;
}

// no fiber can run: release a barrier all threads reached, or fail with why
inline void resolve_stuck() {
    std::vector<Fiber>& fs = g.fibers;
    for (Fiber& f : fs) {
        if (f.state != Wait::warp) continue;
        for (int l = 0; l < 32; l++) {
            if (!(f.mask >> l & 1)) continue;
            Fiber& o = fs[f.warp * 32 + l];
            if (o.state == Wait::barrier) {
                g.cur = &f;
                fail("%s at %s waits for lane %d (thread (%u,%u,%u)), which waits at __syncthreads at %s: "
                     "divergent warp collective", op_name(f.op), where(f), l, o.tid.x, o.tid.y, o.tid.z, where(o));
            }
        }
        // (lanes that exited or joined another collective failed already)
        g.cur = &f;
        fail("%s at %s with mask 0x%08x: deadlock", op_name(f.op), where(f), f.mask);
    }
    const Fiber* first = nullptr;
    const Fiber* gone = nullptr;
    int waiting = 0;
    for (const Fiber& f : fs) {
        if (f.state == Wait::exited) { if (!gone) gone = &f; continue; }
        waiting++;
        if (!first) { first = &f; continue; }
        if (f.line != first->line || strcmp(f.file, first->file)) {
            g.cur = const_cast<Fiber*>(&f);
            fail("waits at __syncthreads at %s while thread (%u,%u,%u) waits at the one at %s: "
                 "barrier in divergent code", where(f), first->tid.x, first->tid.y, first->tid.z, where(*first));
        }
    }
    if (gone) {
        g.cur = const_cast<Fiber*>(gone);
        fail("exited without reaching __syncthreads at %s, where %d of the block's %zu threads wait: "
             "barrier in divergent code", where(*first), waiting, fs.size());
    }
    for (Fiber& f : fs) f.state = Wait::runnable;
}

inline void release_shared() {
    for (SharedVar& v : g.shared) {
        if (!guard_intact(v.ptr, v.size))
            fail("wrote past the end of __shared__ %s (%zu bytes)", v.name, v.size);
        free(v.block);
    }
    g.shared.clear();
    if (g.dyn) {
        if (!guard_intact(g.dyn, g.dyn_bytes))
            fail("wrote past the end of extern __shared__ memory (%zu bytes)", g.dyn_bytes);
        free(g.dyn);
        g.dyn = nullptr;
    }
    g.static_bytes = 0;
}

inline void run_block() {
    size_t n = (size_t)g.block.x * g.block.y * g.block.z;
    g.fibers.assign(n, Fiber{});
    g.warp_waiting.assign((n + 31) / 32, 0);
    g.warp_exited.assign((n + 31) / 32, 0);
    emu_stream_exec& exec = g.stream->exec;
    if (EMU_TSAN) exec.thread_set ^= 1;
    std::vector<char*>& stacks = exec.stacks[exec.thread_set];
    while (stacks.size() < n) {
        // a guard page below each stack: an overflow faults instead of
        // overwriting the neighbour
        size_t len = g.stack_bytes + g.page;
        void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) fail("mmap of a %zu-byte fiber stack failed", len);
        mprotect(p, g.page, PROT_NONE);
        stacks.push_back((char*)p + g.page);
#if EMU_TSAN
        exec.thread_fibers[exec.thread_set].push_back(__tsan_create_fiber(0));
#endif
    }
    for (size_t i = 0; i < n; i++) {
        Fiber& f = g.fibers[i];
        f.tid = uint3{(unsigned)(i % g.block.x), (unsigned)(i / g.block.x % g.block.y),
                      (unsigned)(i / ((size_t)g.block.x * g.block.y))};
        f.lane = (int)(i % 32);
        f.warp = (int)(i / 32);
        f.state = Wait::runnable;
        f.stack = stacks[i];
        context_make(f.ctx, f.stack, g.stack_bytes, fiber_entry);
#if EMU_TSAN
        f.tsan = exec.thread_fibers[exec.thread_set][i];
        char name[80];
        snprintf(name, sizeof name, "stream %ld block (%u,%u,%u) thread (%u,%u,%u)", g.stream->index, g.block_idx.x,
                 g.block_idx.y, g.block_idx.z, f.tid.x, f.tid.y, f.tid.z);
        __tsan_set_fiber_name(f.tsan, name);
#endif
    }
    g.dyn = alloc_guarded(g.dyn_bytes);
    if (!g.dyn) fail("out of memory for %zu bytes of dynamic shared memory", g.dyn_bytes);
    hb_release(&exec.block_start);
    std::vector<size_t> order(n);
    for (;;) {
        for (size_t i = 0; i < n; i++) order[i] = g.order == Order::reverse ? n - 1 - i : i;
        if (g.order == Order::random)
            for (size_t i = n - 1; i > 0; i--) std::swap(order[i], order[next_random() % (i + 1)]);
        if (!g.warps_serial) {
            for (size_t i : order)
                if (g.fibers[i].state == Wait::runnable) switch_to(g.fibers[i]);
        } else {
            // EMU_WARPS=serial: one warp at a time (in the order of the
            // threads' sweep) runs on until its threads wait at a barrier or
            // have exited, its collectives completing among themselves
            std::vector<char> done((n + 31) / 32, 0);
            for (size_t first : order) {
                size_t w = first / 32;
                if (done[w]) continue;
                done[w] = 1;
                for (bool ran = true; ran;) {
                    ran = false;
                    for (size_t i : order)
                        if (i / 32 == w && g.fibers[i].state == Wait::runnable) {
                            switch_to(g.fibers[i]);
                            ran = true;
                        }
                }
            }
        }
        bool alive = false, runnable = false;
        for (const Fiber& f : g.fibers) {
            alive |= f.state != Wait::exited;
            runnable |= f.state == Wait::runnable;
        }
        if (!alive) break;
        if (!runnable) resolve_stuck();
    }
    release_shared();
}

// ----------------------------------------------------------------------------
// launch

inline void check_allocs() {
    for (const auto& a : g.allocs)
        if (!guard_intact((const char*)a.first, a.second))
            fail("wrote past the end of the %zu-byte cudaMalloc buffer at %p", a.second, (void*)a.first);
}

inline bool launch_config_ok(dim3 grid, dim3 block) {
    size_t threads = (size_t)block.x * block.y * block.z;
    return threads >= 1 && threads <= 1024 && block.z <= 64 && grid.x >= 1 && grid.y >= 1 &&
           grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 && grid.z <= 65535;
}

template <class F, class Args>
struct Call {
    F* k;
    Args* args;
    static void run(void* c) {
        Call* x = (Call*)c;
        // each thread gets its own copy of the parameters (not an access of
        // the kernel's: the launch's record is the stream's)
        Args local = [x] { Quiet quiet; return *x->args; }();
        F* k = [x] { Quiet quiet; return x->k; }();
        std::apply(k, local);
    }
};

// ----------------------------------------------------------------------------
// streams
//
// Each stream, the legacy default stream (0) included, keeps a queue of its
// work (kernels, copies, memsets, host functions, the libraries' stand-ins),
// run in order. By default every operation runs as soon as it is queued,
// which is a valid order on the device. EMU_LATE_STREAM=k makes one stream
// late (0: the default stream; k > 0: the k-th stream made): its work runs
// only when something needs it (cudaStreamSynchronize, a synchronous copy,
// an event that is synchronized, queried or waited for by another stream,
// cudaDeviceSynchronize), so the other streams run ahead of it as far as
// the program lets them. A program that reads across streams without a
// cudaStreamWaitEvent then computes with stale data, as it may on a GPU,
// instead of passing by luck; running it with each of its streams late
// shows a missing wait on either side. EMU_LATE_STREAM=random makes every
// stream late and, after each operation queued, one time in four runs a
// random part of one stream's queue, the stream drawn at random (EMU_SEED
// picks the draws): any stream may lag any other at any point, in turns, as
// a bug that needs two streams to lag at different moments would. As on
// the device, the legacy stream and the blocking streams (cudaStreamCreate
// without cudaStreamNonBlocking) wait for each other's earlier work. The
// race check (see "data races") needs no late stream: there a missing wait
// is a race in the default order, whatever the values.

// one operation of s runs (for the race check on s's fiber, after the
// host's work up to its submission; see "data races"; g.stream is written
// on the stream's fiber, which ignores it)
struct OnStream {
    emu_stream* s;
    emu_stream* outer = g.stream;
#if EMU_TSAN
    void* from = __tsan_get_current_fiber();
    explicit OnStream(emu_stream* s) : s(s) {
        bool first = !s->exec.fiber;
        if (first) {
            __tsan_ignore_thread_begin();   // (bookkeeping the blocks' threads read)
            s->exec.fiber = __tsan_create_fiber(0);
            __tsan_ignore_thread_end();
            char name[32];
            snprintf(name, sizeof name, "stream %ld", s->index);
            __tsan_set_fiber_name(s->exec.fiber, name);
        }
        __tsan_switch_to_fiber(s->exec.fiber, __tsan_switch_to_fiber_no_sync);
        if (first) __tsan_ignore_thread_begin();   // for good: the operations declare their accesses
        g.stream = s;
        hb_acquire(&s->exec.submitted);
    }
    ~OnStream() {
        hb_release(&s->exec.done);
        g.stream = outer;
        __tsan_switch_to_fiber(from, __tsan_switch_to_fiber_no_sync);
    }
#else
    explicit OnStream(emu_stream* s) : s(s) { g.stream = s; }
    ~OnStream() { g.stream = outer; }
#endif
    OnStream(const OnStream&) = delete;
};

// runs s's queued work until `at` operations are done
inline void run_until(emu_stream* s, uint64_t at) {
    if (s->done >= at) return;
    if (s->running)
        fail("a stream waits for its own later work (cudaStreamWaitEvent in a cycle: a deadlock on the device)");
    s->running = true;
    while (s->done < at) {
        std::function<void()> op = std::move(s->work.front());
        s->work.pop_front();
        {
            OnStream on(s);
            op();
        }
        s->done++;
    }
    s->running = false;
}
inline void drain(emu_stream* s) { run_until(s, s->queued); }
// EMU_LATE_STREAM=random: one time in four, one stream with queued work,
// drawn at random, runs a random part of that work (not from inside a
// stream's work, nor into a stream already running)
inline void advance_random() {
    if (!g.late_random || g.stream || next_random(g.stream_rng) % 4) return;   // mostly none: queues grow
    std::vector<emu_stream*> ready;
    if (g.legacy.queued > g.legacy.done && !g.legacy.running) ready.push_back(&g.legacy);
    for (emu_stream* s : g.streams)
        if (s->queued > s->done && !s->running) ready.push_back(s);
    if (ready.empty()) return;
    emu_stream* s = ready[next_random(g.stream_rng) % ready.size()];
    run_until(s, s->done + 1 + next_random(g.stream_rng) % (s->queued - s->done));
}
inline emu_stream* stream_of(cudaStream_t s) { return s ? s : &g.legacy; }
inline void push(emu_stream* q, std::function<void()> op) {
    q->work.push_back(std::move(op));
    q->queued++;
    hb_release(&q->exec.submitted);
}
// q's later work waits until `from` has done `at` operations (for the race
// check: ordered after the clock at `recorded`, or else after from's work)
inline void push_wait(emu_stream* q, emu_stream* from, uint64_t at, std::shared_ptr<uint64_t> recorded = nullptr) {
    if (from == q) return;
    if (from->done < at) push(q, [from, at] { run_until(from, at); });
    if (EMU_TSAN) push(q, [from, recorded] { hb_acquire(recorded ? recorded.get() : &from->exec.done); });
}
// the host has seen s's work so far (the race check's ordering)
inline void host_follows(emu_stream* s) { hb_acquire(&s->exec.done); }
// op in s's order (the legacy and blocking streams after each other's
// earlier work); runs now unless s is the late stream
inline void submit(cudaStream_t s, std::function<void()> op) {
    configure();
    emu_stream* q = stream_of(s);
    if (!s) {
        for (emu_stream* b : g.streams)
            if (b->blocking) push_wait(q, b, b->queued);
    } else if (s->blocking) {
        push_wait(q, &g.legacy, g.legacy.queued);
    }
    push(q, std::move(op));
    if (!q->late) drain(q);
    advance_random();
}
inline void synchronize_device() {
    configure();
    drain(&g.legacy);
    host_follows(&g.legacy);
    for (emu_stream* s : g.streams) {
        drain(s);
        host_follows(s);
    }
}

template <class... P, class Args>
void run_kernel(const std::string& name, void (*k)(P...), dim3 grid, dim3 block, size_t shmem, bool optin_set,
                size_t optin, Args* args) {
    Call<void(P...), Args> call{k, args};
    g.kernel = name.c_str();
    g.grid = grid;
    g.block = block;
    g.dyn_bytes = shmem;
    g.shared_optin_set = optin_set;
    g.shared_optin = optin;
    g.invoke = &decltype(call)::run;
    g.invoke_ctx = &call;
    g.rng = g.seed * 0x2545f4914f6cdd1dull + (++g.launches);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                g.block_idx = uint3{x, y, z};
                g.in_block = true;
                run_block();
                g.in_block = false;
            }
    g.block_idx = uint3{0, 0, 0};
    check_allocs();
    g.kernel = nullptr;
    hb_acquire(&g.stream->exec.launch_done);
}

// a launch: its configuration is checked now (cudaGetLastError), the kernel
// runs in stream order with the arguments as they were at the launch
template <class... P, class... A>
void launch(const char* name, void (*k)(P...), dim3 grid, dim3 block, size_t shmem, cudaStream_t stream, A&&... a) {
    static_assert(sizeof...(P) == sizeof...(A), "emu_launch: wrong number of kernel arguments");
    configure();
    if (!launch_config_ok(grid, block)) { g.last_error = cudaErrorInvalidConfiguration; return; }
    auto it = g.smem_optin.find((const void*)k);
    const bool optin_set = it != g.smem_optin.end();
    const size_t optin = optin_set ? it->second : 0;
    if (shmem > (optin_set ? optin : kSharedLimit)) { g.last_error = cudaErrorInvalidValue; return; }
    std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
    // "(name)" from the rewrite: drop the parentheses
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '(' && name[len - 1] == ')') { name++; len -= 2; }
    std::string kname(name, len);
    submit(stream, [=]() mutable { run_kernel(kname, k, grid, block, shmem, optin_set, optin, &args); });
}

// ----------------------------------------------------------------------------
// what kernels see

inline Fiber& self() {
    if (!g.cur) {
        fprintf(stderr, "error: emu: threadIdx or a device intrinsic used outside a kernel\n");
        _exit(1);
    }
    return *g.cur;
}
// the first statement of a kernel declared __launch_bounds__(max_threads,
// min_blocks) (put there by rewrite.py): the device refuses a launch of more
// threads per block than max_threads, since ptxas budgeted the kernel's
// registers for that many; min_blocks only steers that budget
inline void launch_bounds(unsigned max_threads, unsigned = 0) {
    const unsigned threads = g.block.x * g.block.y * g.block.z;
    if (threads > max_threads)
        fail("launched with %u threads per block, over its __launch_bounds__ of %u: the device refuses the launch",
             threads, max_threads);
}

inline const uint3& thread_idx() { return self().tid; }
inline const uint3& block_idx() { return g.block_idx; }
inline const dim3& block_dim() { return g.block; }
inline const dim3& grid_dim() { return g.grid; }

// a static __shared__ variable of type T, declared __align__(Align) (0: not):
// placed at exactly the alignment it asks for and no more (an address that
// is not a multiple of twice that), since the device promises no more; so a
// vector load or wmma fragment that needs more shows (UBSan, the wmma checks)
template <class T, size_t Align>
T* shared_var(const void* key, const char* name) {
    Quiet quiet;   // (the first thread to get here allocates it)
    for (const SharedVar& v : g.shared)
        if (v.key == key) return (T*)v.ptr;
    g.static_bytes += sizeof(T);
    // as on the device: without the opt-in (cudaFuncSetAttribute) a block's
    // static and dynamic shared memory share 48 KB; with it the dynamic part
    // may take up to the attribute (checked at the launch), the static part
    // 48 KB, and the two together (static + attribute) 227 KB
    if (g.shared_optin_set ? g.static_bytes > kSharedLimit || g.static_bytes + g.shared_optin > kSharedOptinMax
                           : g.static_bytes + g.dyn_bytes > kSharedLimit)
        fail("__shared__ %s: %zu bytes of static shared memory with %zu of dynamic (opt-in: %zu) exceed the "
             "block's limits", name, g.static_bytes, g.dyn_bytes, g.shared_optin);
    constexpr size_t align = Align > alignof(T) ? Align : alignof(T);
    static_assert(align <= 256, "__shared__ alignment over 256 bytes");
    size_t skip = align % 256;   // alloc_guarded's blocks are 256-byte aligned
    char* block = alloc_guarded(skip + sizeof(T));
    if (!block) fail("out of memory for __shared__ %s", name);
    g.shared.push_back(SharedVar{key, name, block + skip, sizeof(T), block});
    return (T*)(block + skip);
}
template <class T>
T* dynamic_shared() { self(); return (T*)g.dyn; }

// lanes of f's warp that exist in this block
inline unsigned lanes_present(const Fiber& f) {
    size_t n = g.fibers.size(), first = (size_t)f.warp * 32;
    return n - first >= 32 ? 0xffffffffu : (1u << (n - first)) - 1;
}

// a lane that exits while lanes of its warp wait for it at a collective
inline void collective_check_exit(Fiber& f) {
    for (int l = 0; l < 32; l++) {
        size_t i = (size_t)f.warp * 32 + l;
        if (i >= g.fibers.size()) break;
        Fiber& o = g.fibers[i];
        if (o.state == Wait::warp && (o.mask >> f.lane & 1)) {
            g.cur = &o;
            fail("%s at %s with mask 0x%08x names lane %d, which exited without joining (inactive lane)",
                 op_name(o.op), where(o), o.mask, f.lane);
        }
    }
}

inline uint64_t poison64() { return ~0ull; }

// complete the collective of the lanes in mask when all have arrived
inline void collective_try_complete(Fiber& f) {
    Fiber* w = &g.fibers[(size_t)f.warp * 32];
    unsigned& waiting = g.warp_waiting[f.warp];
    if (f.mask & ~waiting) return;   // some still running (an exited one failed already)
    for (int l = 0; l < 32; l++) {
        if (!(f.mask >> l & 1)) continue;
        Fiber& o = w[l];
        if (o.mask != f.mask || o.op != f.op || o.width != f.width) {
            fail("%s at %s with mask 0x%08x meets lane %d at %s at %s with mask 0x%08x: "
                 "lanes of one mask must join the same collective", op_name(f.op), where(f), f.mask, l,
                 op_name(o.op), where(o), o.mask);
        }
    }
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
        if ((f.mask >> l & 1) && w[l].pred) ballot |= 1u << l;
    for (int l = 0; l < 32; l++) {
        if (!(f.mask >> l & 1)) continue;
        Fiber& o = w[l];
        int width = o.width, base = l & ~(width - 1), src = l;
        switch (o.op) {
        case Op::shfl_idx: src = base + (o.arg & (width - 1)); break;
        case Op::shfl_up: src = l - o.arg >= base ? l - o.arg : l; break;
        case Op::shfl_down: src = l + o.arg < base + width ? l + o.arg : l; break;
        case Op::shfl_xor: src = (l ^ o.arg) < base + width ? (l ^ o.arg) : l; break;
        default: break;
        }
        switch (o.op) {
        case Op::ballot: o.out = ballot; break;
        case Op::any: o.out = ballot != 0; break;
        case Op::all: o.out = ballot == f.mask; break;
        case Op::syncwarp: o.out = 0; break;
        default:
            // a source lane outside the mask gives an undefined value on the
            // device: poison it here
            o.out = (f.mask >> src & 1) ? w[src].in : poison64();
        }
        o.state = Wait::runnable;
    }
    waiting &= ~f.mask;
}

// (orders_memory: a __syncwarp of the kernel's, see "data races")
inline uint64_t collective(const char* file, int line, Op op, unsigned mask, uint64_t in, int arg, int width,
                           int pred, bool orders_memory = false) {
    Fiber& f = self();
    Quiet quiet;
    f.file = file;
    f.line = line;
    f.op = op;
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail("%s at %s: width %d is not a power of two in [1, 32]", op_name(op), where(f), width);
    if (!(mask >> f.lane & 1))
        fail("%s at %s: mask 0x%08x does not name the calling lane %d", op_name(op), where(f), mask, f.lane);
    unsigned missing = mask & ~lanes_present(f);
    if (missing)
        fail("%s at %s: mask 0x%08x names lanes 0x%08x that do not exist (the block has %zu threads)",
             op_name(op), where(f), mask, missing, g.fibers.size());
    if (unsigned gone = mask & g.warp_exited[f.warp])
        fail("%s at %s: mask 0x%08x names lane %d, which has exited (inactive lane)", op_name(op), where(f), mask,
             __builtin_ctz(gone));
    f.mask = mask;
    f.in = in;
    f.arg = arg;
    f.width = width;
    f.pred = pred;
    f.state = Wait::warp;
    g.warp_waiting[f.warp] |= 1u << f.lane;
    const emu_stream_exec& exec = g.stream->exec;
    const void* warp_object = &exec.sync_objects[exec.thread_set][1 + f.warp];
    if (orders_memory) hb_release(warp_object);
    collective_try_complete(f);
    yield();
    if (orders_memory) hb_acquire(warp_object);
    return f.out;
}

template <class T>
uint64_t to_bits(T v) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffle of an unsupported type");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    return b;
}
template <class T>
T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof v);
    return v;
}

// the intrinsics, as members so a macro can add the call site
struct Site {
    const char* file;
    int line;
    void syncthreads() const { barrier(true); }
    void syncwarp(unsigned mask = 0xffffffffu) const {
        collective(file, line, Op::syncwarp, mask, 0, 0, 32, 0, true);
    }
    // the emulator's own: all threads of the block (or the warp's lanes)
    // meet, with the checks of __syncthreads (__syncwarp), but no memory is
    // ordered for the race check, as with the device instruction it emulates
    void barrier(bool orders_memory) const {
        Fiber& f = self();
        {
            Quiet quiet;
            f.file = file;
            f.line = line;
            f.state = Wait::barrier;
        }
        const emu_stream_exec& exec = g.stream->exec;
        if (orders_memory) hb_release(&exec.sync_objects[exec.thread_set][0]);
        yield();
        if (orders_memory) hb_acquire(&exec.sync_objects[exec.thread_set][0]);
    }
    void converge(unsigned mask = 0xffffffffu) const { collective(file, line, Op::syncwarp, mask, 0, 0, 32, 0); }
    template <class T> T shfl(unsigned mask, T v, int src, int width = 32) const {
        return from_bits<T>(collective(file, line, Op::shfl_idx, mask, to_bits(v), src, width, 0));
    }
    template <class T> T shfl_up(unsigned mask, T v, unsigned delta, int width = 32) const {
        return from_bits<T>(collective(file, line, Op::shfl_up, mask, to_bits(v), (int)delta, width, 0));
    }
    template <class T> T shfl_down(unsigned mask, T v, unsigned delta, int width = 32) const {
        return from_bits<T>(collective(file, line, Op::shfl_down, mask, to_bits(v), (int)delta, width, 0));
    }
    template <class T> T shfl_xor(unsigned mask, T v, int lane_mask, int width = 32) const {
        return from_bits<T>(collective(file, line, Op::shfl_xor, mask, to_bits(v), lane_mask, width, 0));
    }
    unsigned ballot(unsigned mask, int pred) const {
        return (unsigned)collective(file, line, Op::ballot, mask, 0, 0, 32, pred != 0);
    }
    int any(unsigned mask, int pred) const { return (int)collective(file, line, Op::any, mask, 0, 0, 32, pred != 0); }
    int all(unsigned mask, int pred) const { return (int)collective(file, line, Op::all, mask, 0, 0, 32, pred != 0); }
};

// ----------------------------------------------------------------------------
// memory

// the live cudaMalloc buffer holding [p, p+n), if any
inline bool device_range(const void* p, size_t n) {
    auto it = g.allocs.upper_bound((uintptr_t)p);
    if (it == g.allocs.begin()) return false;
    --it;
    return (uintptr_t)p + n <= it->first + it->second;
}

// whether [p, p + n) lies in one __shared__ variable of the running block
// or in its dynamic shared memory
inline bool shared_range(const void* p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    for (const SharedVar& v : g.shared)
        if (a >= (uintptr_t)v.ptr && a + n <= (uintptr_t)v.ptr + v.size) return true;
    return g.dyn && a >= (uintptr_t)g.dyn && a + n <= (uintptr_t)g.dyn + g.dyn_bytes;
}

// shared-memory addresses as a kernel sees them (cvta.to.shared, what a
// wgmma descriptor holds): the block's shared variables laid out one after
// another in a 256 KB window, each at its own address modulo 256 (the
// dynamic memory first), so 16-byte units and alignments are as on the device
inline uint32_t shared_address(const void* p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    uint32_t base = 0;
    auto window = [&](const char* start, const char* block, size_t size, uint32_t& next) -> bool {
        if (a >= (uintptr_t)start && a + n <= (uintptr_t)start + size) {
            base = next + (uint32_t)(a - (uintptr_t)block);
            return true;
        }
        next += (uint32_t)((start - block + size + 255) / 256 * 256);
        return false;
    };
    uint32_t next = 0;
    bool found = g.dyn && window(g.dyn, g.dyn, g.dyn_bytes, next);
    for (size_t i = 0; !found && i < g.shared.size(); i++)
        found = window(g.shared[i].ptr, g.shared[i].block, g.shared[i].size, next);
    if (!found) fail("%p (%zu bytes) is not in the block's shared memory", p, n);
    if (base + n > (1u << 18)) fail("shared memory past the 256 KB a descriptor addresses");
    return base;
}

// the inverse: the pointer behind shared address addr, whose n bytes must
// lie in one shared variable (or the dynamic memory)
inline char* shared_pointer(uint32_t addr, size_t n) {
    uint32_t next = 0;
    auto window = [&](char* start, const char* block, size_t size) -> char* {
        const uint32_t lo = next + (uint32_t)(start - block);
        next += (uint32_t)((start - block + size + 255) / 256 * 256);
        return addr >= lo && addr + n <= lo + size ? start + (addr - lo) : nullptr;
    };
    char* p = g.dyn ? window(g.dyn, g.dyn, g.dyn_bytes) : nullptr;
    for (size_t i = 0; !p && i < g.shared.size(); i++) p = window(g.shared[i].ptr, g.shared[i].block, g.shared[i].size);
    return p;
}

} // namespace emu

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
#define __syncthreads ::emu::Site{__FILE__, __LINE__}.syncthreads
#define __syncwarp ::emu::Site{__FILE__, __LINE__}.syncwarp
#define __shfl_sync ::emu::Site{__FILE__, __LINE__}.shfl
#define __shfl_up_sync ::emu::Site{__FILE__, __LINE__}.shfl_up
#define __shfl_down_sync ::emu::Site{__FILE__, __LINE__}.shfl_down
#define __shfl_xor_sync ::emu::Site{__FILE__, __LINE__}.shfl_xor
#define __ballot_sync ::emu::Site{__FILE__, __LINE__}.ballot
#define __any_sync ::emu::Site{__FILE__, __LINE__}.any
#define __all_sync ::emu::Site{__FILE__, __LINE__}.all
// the rewrite of k<<<grid, block, shmem>>>(args); k may be "(f<T, 4>)"
#define emu_launch(k, ...) ::emu::launch(#k, k, __VA_ARGS__)

// ----------------------------------------------------------------------------
// cooperative groups (the subset of cooperative_groups.h and
// cooperative_groups/reduce.h the kernels use): the block, its warp-sized
// tiles and tile reductions, built on the warp collectives above, so the same
// checks apply (a tile collective that a lane of the tile skips or exited
// from is an inactive-lane error). The call site of each operation is its
// caller's (__builtin_FILE/LINE), so error messages point at the kernel. A
// tile of a warp the block only partly fills covers the lanes that exist.
// reduce is a butterfly of shfl_xor: every lane gets the same bits (float +
// and max are commutative); the device's order of the additions may differ,
// so emulated and device sums can differ in the last bits.

namespace cooperative_groups {

class thread_block {
public:
    unsigned thread_rank() const {
        const uint3& t = ::emu::thread_idx();
        const dim3& b = ::emu::block_dim();
        return t.x + b.x * (t.y + b.y * t.z);
    }
    unsigned size() const { const dim3& b = ::emu::block_dim(); return b.x * b.y * b.z; }
    unsigned num_threads() const { return size(); }
    dim3 group_dim() const { return ::emu::block_dim(); }
    uint3 group_index() const { return ::emu::block_idx(); }
    uint3 thread_index() const { return ::emu::thread_idx(); }
    void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        ::emu::Site{file, line}.syncthreads();
    }
};
inline thread_block this_thread_block() { ::emu::self(); return thread_block{}; }
inline void sync(const thread_block& b, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    b.sync(file, line);
}

template <unsigned Size, class Parent = void>
class thread_block_tile {
    static_assert(Size == 32, "the emulation has tiles of a whole warp only (tiled_partition<32>)");
public:
    thread_block_tile() = default;
    template <class P> thread_block_tile(const thread_block_tile<Size, P>&) {}
    unsigned thread_rank() const { return (unsigned)::emu::self().lane; }
    unsigned meta_group_rank() const { return (unsigned)::emu::self().warp; }
    unsigned meta_group_size() const { return (unsigned)((::emu::g.fibers.size() + 31) / 32); }
    static constexpr unsigned size() { return Size; }
    static constexpr unsigned num_threads() { return Size; }
    // the tile's lanes: the whole warp, or those that exist in a partial one
    unsigned mask() const { return ::emu::lanes_present(::emu::self()); }
    void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        ::emu::Site{file, line}.syncwarp(mask());
    }
    template <class T> T shfl(T v, int src, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return ::emu::Site{file, line}.shfl(mask(), v, src, 32);
    }
    template <class T>
    T shfl_xor(T v, int lane_mask, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return ::emu::Site{file, line}.shfl_xor(mask(), v, lane_mask, 32);
    }
    template <class T>
    T shfl_down(T v, unsigned delta, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return ::emu::Site{file, line}.shfl_down(mask(), v, delta, 32);
    }
    template <class T>
    T shfl_up(T v, unsigned delta, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return ::emu::Site{file, line}.shfl_up(mask(), v, delta, 32);
    }
};

template <unsigned Size>
inline thread_block_tile<Size, thread_block> tiled_partition(const thread_block&) {
    ::emu::self();
    return thread_block_tile<Size, thread_block>{};
}

template <class T> struct plus { T operator()(const T& a, const T& b) const { return a + b; } };
template <class T> struct less { T operator()(const T& a, const T& b) const { return b < a ? b : a; } };
template <class T> struct greater { T operator()(const T& a, const T& b) const { return a < b ? b : a; } };

// every lane of the tile gets op over the tile's values (all lanes must call it)
template <unsigned Size, class P, class T, class Op>
T reduce(const thread_block_tile<Size, P>& tile, T v, Op op, const char* file = __builtin_FILE(),
         int line = __builtin_LINE()) {
    unsigned m = tile.mask();
    if (m != 0xffffffffu) {
        // a partial warp: every lane folds the present lanes' values in lane order
        T r = ::emu::Site{file, line}.shfl(m, v, 0, 32);
        for (int l = 1; l < 32 && (m >> l & 1); l++) r = op(r, ::emu::Site{file, line}.shfl(m, v, l, 32));
        return r;
    }
    for (int offset = 16; offset > 0; offset /= 2) v = op(v, ::emu::Site{file, line}.shfl_xor(m, v, offset, 32));
    return v;
}

} // namespace cooperative_groups

// ----------------------------------------------------------------------------
// atomics: fibers switch only at barriers and collectives, so any
// read-modify-write is atomic here; it is one __atomic compare-and-swap
// (relaxed, as CUDA's atomics) so that the race check knows it is atomic

template <class T, class F> inline T emu_atomic(T* p, F f) {
    using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    static_assert(sizeof(T) == sizeof(Bits), "atomics on 4- and 8-byte values");
    Bits old_bits = __atomic_load_n((Bits*)p, __ATOMIC_RELAXED), new_bits;
    T old, v;
    do {
        memcpy(&old, &old_bits, sizeof old);
        v = f(old);
        memcpy(&new_bits, &v, sizeof v);
    } while (!__atomic_compare_exchange_n((Bits*)p, &old_bits, new_bits, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
template <class T> inline T emu_atomic_add(T* p, T v) { return emu_atomic(p, [v](T old) { return (T)(old + v); }); }
inline float atomicAdd(float* p, float v) { return emu_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return emu_atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return emu_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return emu_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return emu_atomic_add(p, v); }
inline int atomicSub(int* p, int v) { return emu_atomic_add(p, -v); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return emu_atomic_add(p, 0u - v); }
template <class T> inline T atomicExch(T* p, T v) { return emu_atomic(p, [v](T) { return v; }); }
template <class T> inline T atomicMax(T* p, T v) { return emu_atomic(p, [v](T old) { return v > old ? v : old; }); }
template <class T> inline T atomicMin(T* p, T v) { return emu_atomic(p, [v](T old) { return v < old ? v : old; }); }
template <class T> inline T atomicCAS(T* p, T cmp, T v) {
    return emu_atomic(p, [cmp, v](T old) { return old == cmp ? v : old; });
}

// bit intrinsics
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }

// ----------------------------------------------------------------------------
// vector types (as in vector_types.h: 16-byte alignment makes a float4/int4
// load or store one 128-bit access, e.g. *reinterpret_cast<const int4*>(p))

struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

// the rounded float operations nvcc never contracts into a fused multiply-add
// (the host build has no FMA instructions to contract into: plain operators)
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }

// ----------------------------------------------------------------------------
// bf16 (the subset of cuda_bf16.h the kernels use): 16-bit storage, the top
// half of a float. float -> bf16 rounds to nearest, ties to even, as the
// device's cvt.rn.bf16.f32; every NaN becomes the canonical 0x7FFF (as
// cuda_bf16.hpp); overflow rounds to infinity. Arithmetic goes through float
// and rounds the result once, as the cuda_bf16.h operators.

struct __align__(2) __nv_bfloat16 {
    unsigned short __x;
    __nv_bfloat16() = default;
    inline __nv_bfloat16(float f);   // rounds, as __float2bfloat16
    inline operator float() const;
};
static_assert(sizeof(__nv_bfloat16) == 2, "bf16 is 16 bits");
typedef __nv_bfloat16 nv_bfloat16;

inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { __nv_bfloat16 h; h.__x = u; return h; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(0x7fff);
    // add just under half a bf16 ulp, plus one when the kept part is odd:
    // a tie then carries only into an odd value, i.e. rounds to even
    u += 0x7fffu + ((u >> 16) & 1u);
    return __ushort_as_bfloat16((unsigned short)(u >> 16));
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.__x << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline __nv_bfloat16::__nv_bfloat16(float f) : __x(__float2bfloat16_rn(f).__x) {}
inline __nv_bfloat16::operator float() const { return __bfloat162float(*this); }

#define EMU_BF16_BINARY(op) \
    inline __nv_bfloat16 operator op(__nv_bfloat16 a, __nv_bfloat16 b) { \
        return __float2bfloat16_rn(__bfloat162float(a) op __bfloat162float(b)); \
    } \
    inline __nv_bfloat16& operator op##=(__nv_bfloat16& a, __nv_bfloat16 b) { return a = a op b; }
EMU_BF16_BINARY(+)
EMU_BF16_BINARY(-)
EMU_BF16_BINARY(*)
EMU_BF16_BINARY(/)
#undef EMU_BF16_BINARY
inline __nv_bfloat16 operator-(__nv_bfloat16 a) { return __ushort_as_bfloat16((unsigned short)(a.__x ^ 0x8000u)); }
inline __nv_bfloat16 operator+(__nv_bfloat16 a) { return a; }
#define EMU_BF16_COMPARE(op) \
    inline bool operator op(__nv_bfloat16 a, __nv_bfloat16 b) { return __bfloat162float(a) op __bfloat162float(b); }
EMU_BF16_COMPARE(==)
EMU_BF16_COMPARE(!=)
EMU_BF16_COMPARE(<)
EMU_BF16_COMPARE(<=)
EMU_BF16_COMPARE(>)
EMU_BF16_COMPARE(>=)
#undef EMU_BF16_COMPARE
inline __nv_bfloat16 __hadd(__nv_bfloat16 a, __nv_bfloat16 b) { return a + b; }
inline __nv_bfloat16 __hsub(__nv_bfloat16 a, __nv_bfloat16 b) { return a - b; }
inline __nv_bfloat16 __hmul(__nv_bfloat16 a, __nv_bfloat16 b) { return a * b; }
inline __nv_bfloat16 __hdiv(__nv_bfloat16 a, __nv_bfloat16 b) { return a / b; }

// ----------------------------------------------------------------------------
// CUDA runtime (host memory; streams as above)

inline const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    }
    return "unrecognized error code";
}
inline cudaError_t cudaGetLastError() { cudaError_t e = emu::g.last_error; emu::g.last_error = cudaSuccess; return e; }
inline cudaError_t cudaPeekAtLastError() { return emu::g.last_error; }
inline cudaError_t cudaDeviceSynchronize() { emu::synchronize_device(); return cudaSuccess; }

inline cudaError_t cudaMalloc(void** p, size_t n) {
    emu::configure();
    if (emu::g.device_bytes && n > emu::g.device_bytes - emu::g.allocated) return emu::g.last_error = cudaErrorMemoryAllocation;
    char* q = emu::alloc_guarded(n);
    if (!q) return emu::g.last_error = cudaErrorMemoryAllocation;
    emu::g.allocs[(uintptr_t)q] = n;
    emu::g.allocated += n;
    if (emu::g.allocated > emu::g.peak) emu::g.peak = emu::g.allocated;
    *p = q;
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMalloc(T** p, size_t n) { return cudaMalloc((void**)p, n); }
inline cudaError_t cudaFree(void* p) {
    if (!p) return cudaSuccess;
    auto it = emu::g.allocs.find((uintptr_t)p);
    if (it == emu::g.allocs.end()) return emu::g.last_error = cudaErrorInvalidDevicePointer;
    emu::synchronize_device();   // as on the device, cudaFree waits for the work queued so far
    if (!emu::guard_intact((const char*)p, it->second))
        emu::fail("cudaFree: something wrote past the end of the %zu-byte buffer at %p", it->second, p);
    emu::g.allocated -= it->second;
    emu::g.allocs.erase(it);
    free(p);
    return cudaSuccess;
}
// copies and memsets: checked when called, done in stream order. Host memory
// is pageable (no cudaMallocHost here), so, as on the device, a copy reads
// its host source before it returns and one into host memory returns when
// it is done; cudaMemcpy also waits for its stream, 0.
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s = nullptr) {
    bool dd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;   // src on device
    bool ds = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;   // dst on device
    if ((int)kind < 0 || (int)kind > 4) return emu::g.last_error = cudaErrorInvalidMemcpyDirection;
    if ((dd && !emu::device_range(src, n)) || (ds && !emu::device_range(dst, n)))
        return emu::g.last_error = cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (dd) {
        emu::submit(s, [=] {
            emu::op_reads(src, n);
            emu::op_writes(dst, n);
            memmove(dst, src, n);
        });
    } else {
        auto staged = std::make_shared<std::vector<char>>((const char*)src, (const char*)src + n);
        emu::submit(s, [=] {
            emu::op_writes(dst, n);
            memmove(dst, staged->data(), n);
        });
    }
    if (!ds) {
        emu::drain(emu::stream_of(s));
        emu::host_follows(emu::stream_of(s));
    }
    return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
    cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, nullptr);
    emu::drain(&emu::g.legacy);
    emu::host_follows(&emu::g.legacy);
    return e;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t s = nullptr) {
    if (!emu::device_range(p, n)) return emu::g.last_error = cudaErrorInvalidValue;
    emu::submit(s, [=] {
        emu::op_writes(p, n);
        memset(p, v, n);
    });
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) { return cudaMemsetAsync(p, v, n, nullptr); }
inline cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data) {
    emu::submit(s, [=] { fn(data); });
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaFuncSetAttribute(T* f, cudaFuncAttribute attr, int v) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || v < 0 || (size_t)v > emu::kSharedOptinMax)
        return emu::g.last_error = cudaErrorInvalidValue;
    emu::g.smem_optin[(const void*)f] = (size_t)v;
    return cudaSuccess;
}

#define cudaStreamNonBlocking 0x1
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
    emu::configure();
    static std::vector<emu_stream*>* made = new std::vector<emu_stream*>;   // never freed (see cudaStreamDestroy)
    made->push_back(*s = new emu_stream);
    (*s)->blocking = !(flags & cudaStreamNonBlocking);
    (*s)->index = ++emu::g.created;
    (*s)->late = (*s)->index == emu::g.late_stream || emu::g.late_random;
    emu::g.streams.push_back(*s);
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
// (a destroyed stream's memory is kept: events recorded on it, and other
// streams' waits for them, may still name it)
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
    emu::drain(s);
    emu::g.streams.erase(std::find(emu::g.streams.begin(), emu::g.streams.end(), s));
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (!s) emu::submit(nullptr, [] {});   // the legacy stream: after the blocking streams' work
    emu::drain(emu::stream_of(s));
    emu::host_follows(emu::stream_of(s));
    return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = new emu_event; return cudaSuccess; }
#define cudaEventDisableTiming 0x2
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
// As on the device, it waits for nothing (a late stream stays late, the host
// is not ordered after any work); its memory is kept, as a destroyed
// stream's, for the records queued before, which still name it
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
    static std::vector<emu_event*>* kept = new std::vector<emu_event*>;   // never freed
    kept->push_back(e);
    return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr) {
    uint64_t record = ++e->records;
    std::shared_ptr<uint64_t> recorded = EMU_TSAN ? std::make_shared<uint64_t>() : nullptr;
    emu::submit(s, [e, record, recorded] {
        if (e->records == record) e->t = std::chrono::steady_clock::now();
        emu::hb_release(recorded.get());
    });
    e->stream = emu::stream_of(s);
    e->at = e->stream->queued;
    e->recorded = recorded;
    return cudaSuccess;
}
// the event's stream runs up to it (as if the device had got there)
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (e->stream) emu::run_until(e->stream, e->at);
    if (e->recorded) emu::hb_acquire(e->recorded.get());
    return cudaSuccess;
}
inline cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
// s's later work waits for the event's latest record, as on the device
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned = 0) {
    emu::configure();
    emu_stream* q = emu::stream_of(s);
    if (!e->stream || emu::g.drop_waits) return cudaSuccess;
    emu::push_wait(q, e->stream, e->at, e->recorded);
    if (!q->late) emu::drain(q);
    emu::advance_random();
    return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
    cudaEventSynchronize(a);
    cudaEventSynchronize(b);
    *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
    return cudaSuccess;
}

// one emulated device, 0, named so that reports say what ran; its memory is
// EMU_DEVICE_MIB or the host's physical RAM (then all of it free)
struct cudaDeviceProp {
    char name[256];
    int major, minor;
    int multiProcessorCount;
    size_t totalGlobalMem;
};
inline size_t emu_device_memory() {
    emu::configure();
    return emu::g.device_bytes ? emu::g.device_bytes : (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
}
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : (emu::g.last_error = cudaErrorInvalidValue); }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
    if (d != 0) return emu::g.last_error = cudaErrorInvalidValue;
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "emulated GPU (dev/emu)");
    p->major = 9;
    p->multiProcessorCount = 1;
    p->totalGlobalMem = emu_device_memory();
    return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    *total_bytes = emu_device_memory();
    *free_bytes = emu::g.device_bytes ? *total_bytes - emu::g.allocated : *total_bytes;
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// warp matrix multiply-accumulate (the subset of mma.h's nvcuda::wmma that
// bf16 kernels use): m16n16k16 tiles, bf16 A and B (row- or column-major),
// fp32 accumulators. Each operation is warp-wide, as on the device: all 32
// lanes must call it (a __syncwarp with the full mask, so the usual
// inactive-lane checks apply). Which tile elements a lane's x[] holds is
// unspecified on the device; here it is a scrambled order (element i of lane
// l is tile element ((32 i + l) * 167) mod 256, row-major), so a kernel that
// assumes a layout computes garbage rather than passing by luck.
// mma_sync gathers the warp's fragments in a per-warp scratch between two
// syncs, then each lane computes its elements of D = A B + C in fp32, k in
// increasing order (the device's order of the additions is its own, so
// emulated and device results can differ in the last bits).

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "emulated wmma: m16n16k16 only");
    static constexpr int num_elements = 8;   // 256 tile elements over 32 lanes
    T x[num_elements];
};

// the tile element (row-major index in 0..255) that x[i] of lane `lane` holds
inline int emu_wmma_element(int lane, int i) { return ((32 * i + lane) * 167) % 256; }

// per-warp scratch for mma_sync: A, B, C as fp32, row-major 16x16 each
inline float (&emu_wmma_scratch(int warp))[3][256] {
    static float scratch[32][3][256];
    return scratch[warp];
}

template <class T>
inline float emu_wmma_float(T v) { return (float)v; }

// the device's rules for a fragment's memory: a 256-bit aligned pointer and
// a row stride (ldm) that is a multiple of 16 bytes; breaking them is
// undefined there (wrong values or a fault), so the emulation stops
template <class T>
inline void emu_wmma_check_memory(const char* what, const T* p, unsigned ldm, const char* file, int line) {
    if ((uintptr_t)p % 32 != 0)
        ::emu::fail("%s at %s:%d: pointer %p is not 32-byte aligned", what, file, line, (const void*)p);
    if (ldm * sizeof(T) % 16 != 0)
        ::emu::fail("%s at %s:%d: ldm %u is not a multiple of 16 bytes", what, file, line, ldm);
}

template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& a, const T* p, unsigned ldm,
                             const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    static_assert(!std::is_same<Use, accumulator>::value, "an accumulator load needs a layout_t");
    ::emu::Site{file, line}.converge();
    emu_wmma_check_memory("wmma::load_matrix_sync", p, ldm, file, line);
    int lane = ::emu::self().lane;
    for (int i = 0; i < 8; i++) {
        int e = emu_wmma_element(lane, i), r = e / 16, c = e % 16;
        a.x[i] = std::is_same<Layout, row_major>::value ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    }
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& a, const float* p, unsigned ldm,
                             layout_t layout, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Site{file, line}.converge();
    emu_wmma_check_memory("wmma::load_matrix_sync", p, ldm, file, line);
    int lane = ::emu::self().lane;
    for (int i = 0; i < 8; i++) {
        int e = emu_wmma_element(lane, i), r = e / 16, c = e % 16;
        a.x[i] = layout == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    }
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& a, unsigned ldm,
                              layout_t layout, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Site{file, line}.converge();
    emu_wmma_check_memory("wmma::store_matrix_sync", p, ldm, file, line);
    int lane = ::emu::self().lane;
    for (int i = 0; i < 8; i++) {
        int e = emu_wmma_element(lane, i), r = e / 16, c = e % 16;
        (layout == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]) = a.x[i];
    }
}

template <class Use, class T, class Layout>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& a, T v) {
    for (int i = 0; i < 8; i++) a.x[i] = v;
}

template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;   // the scratch (the fragments are this thread's registers)
    float (&s)[3][256] = emu_wmma_scratch(f.warp);
    for (int i = 0; i < 8; i++) {
        int e = emu_wmma_element(f.lane, i);
        s[0][e] = emu_wmma_float(a.x[i]);   // A (m,k), row-major whatever the fragment's layout
        s[1][e] = emu_wmma_float(b.x[i]);   // B (k,n)
        s[2][e] = c.x[i];
    }
    ::emu::Site{file, line}.converge();   // every lane's fragments are in
    float out[8];
    for (int i = 0; i < 8; i++) {
        int e = emu_wmma_element(f.lane, i), r = e / 16, col = e % 16;
        float acc = s[2][e];
        for (int k = 0; k < 16; k++) acc += s[0][r * 16 + k] * s[1][k * 16 + col];
        out[i] = acc;
    }
    ::emu::Site{file, line}.converge();   // every lane has read the scratch
    for (int i = 0; i < 8; i++) d.x[i] = out[i];
}

} // namespace wmma
} // namespace nvcuda

// ----------------------------------------------------------------------------
// the PTX instructions that llmc/ptx.cuh wraps (inline assembly on the
// device). First the three warp instructions, with the layouts the PTX ISA
// documents, since kernels depend on them: g = lane / 4, t = lane % 4, and a 32-bit register holds two bf16,
// the lower column (or k) index in the low half.
// - mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D (16,8) = A (16,16)
//   B (16,8) + C. A: a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1], a[2] =
//   A[g][2t+8, 2t+9], a[3] = A[g+8][2t+8, 2t+9]; B: b[0] = B[2t, 2t+1][g],
//   b[1] = B[2t+8, 2t+9][g]; C, D: c[0..1] = C[g][2t, 2t+1], c[2..3] =
//   C[g+8][2t, 2t+1]. Each D element is summed in fp32, k in increasing
//   order (the device's order is its own, as for wmma above).
// - ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lane l gives the
//   address of row l % 8 of 8x8 matrix l / 8 (16 bytes of shared memory,
//   16-byte aligned);
//   register j of lane l gets matrix j's M[g][2t, 2t+1], or with .trans
//   M[2t, 2t+1][g] (the matrix read column-major).
// - movmatrix.sync.aligned.m8n8.trans.b16: lane l's register holds
//   M[g][2t, 2t+1] of an 8x8 matrix and gets M[2t, 2t+1][g].
// All are warp collectives: all 32 lanes must take part (full-mask
// __syncwarps inside, with their checks).

// per-warp scratch: A (16,16), B (16,8), C (16,8) as fp32 row-major, or 32
// row addresses, or an 8x8 matrix of 16-bit values
struct EmuMmaScratch {
    float a[256], b[128], c[128];
    const unsigned short* rows[32];
    unsigned short m[64];
};
inline EmuMmaScratch& emu_mma_scratch(int warp) {
    static EmuMmaScratch scratch[32];
    return scratch[warp];
}

inline float emu_bf16_half(uint32_t r, int hi) { return __bfloat162float(__ushort_as_bfloat16((unsigned short)(r >> (16 * hi)))); }

inline void emu_mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;   // the scratch (the fragments are this thread's registers)
    EmuMmaScratch& s = emu_mma_scratch(f.warp);
    const int g = f.lane / 4, t = f.lane % 4;
    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < 4; i++) s.a[(g + 8 * (i % 2)) * 16 + 2 * t + 8 * (i / 2) + h] = emu_bf16_half(a[i], h);
        for (int i = 0; i < 2; i++) s.b[(2 * t + 8 * i + h) * 8 + g] = emu_bf16_half(b[i], h);
        s.c[g * 8 + 2 * t + h] = d[h];
        s.c[(g + 8) * 8 + 2 * t + h] = d[2 + h];
    }
    ::emu::Site{file, line}.converge();   // every lane's fragments are in
    float out[4];
    for (int i = 0; i < 4; i++) {
        const int r = g + 8 * (i / 2), col = 2 * t + i % 2;
        float acc = s.c[r * 8 + col];
        for (int k = 0; k < 16; k++) acc += s.a[r * 16 + k] * s.b[k * 8 + col];
        out[i] = acc;
    }
    ::emu::Site{file, line}.converge();   // every lane has read the scratch
    for (int i = 0; i < 4; i++) d[i] = out[i];
}

inline void emu_ldmatrix_x4(uint32_t (&r)[4], const void* row, bool trans, const char* file = __builtin_FILE(),
                            int line = __builtin_LINE()) {
    ::emu::Fiber& f = ::emu::self();
    EmuMmaScratch& s = emu_mma_scratch(f.warp);
    if ((uintptr_t)row % 16 != 0)
        ::emu::fail("ldmatrix at %s:%d: row address %p is not 16-byte aligned", file, line, row);
    if (!::emu::shared_range(row, 16))
        ::emu::fail("ldmatrix at %s:%d: row address %p is not in shared memory", file, line, row);
    ::emu::Quiet quiet;   // the scratch; the shared memory read is this thread's
    s.rows[f.lane] = (const unsigned short*)row;
    ::emu::Site{file, line}.converge();   // every lane's row address is in
    const int g = f.lane / 4, t = f.lane % 4;
    for (int j = 0; j < 4; j++) {
        const unsigned short* const* m = s.rows + 8 * j;   // matrix j's rows
        const unsigned short *lo = trans ? &m[2 * t][g] : &m[g][2 * t], *hi = trans ? &m[2 * t + 1][g] : &m[g][2 * t + 1];
        ::emu::Loud loud;
        r[j] = (uint32_t)*lo | (uint32_t)*hi << 16;
    }
    ::emu::Site{file, line}.converge();   // every lane has read the addresses
}

inline uint32_t emu_movmatrix_trans(uint32_t m, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;   // the scratch
    EmuMmaScratch& s = emu_mma_scratch(f.warp);
    const int g = f.lane / 4, t = f.lane % 4;
    s.m[g * 8 + 2 * t] = (unsigned short)m;
    s.m[g * 8 + 2 * t + 1] = (unsigned short)(m >> 16);
    ::emu::Site{file, line}.converge();   // every lane's pair is in
    const uint32_t r = (uint32_t)s.m[2 * t * 8 + g] | (uint32_t)s.m[(2 * t + 1) * 8 + g] << 16;
    ::emu::Site{file, line}.converge();   // every lane has read the scratch
    return r;
}

// cp.async.{ca,cg}.shared.global [dst], [src], size (size 4, 8 or 16;
// both pointers aligned to it; src in a cudaMalloc buffer, dst in shared
// memory), cp.async.commit_group and
// cp.async.wait_group N. On the device a copy lands at some moment between
// its issue and the wait_group that covers it, and only then may the thread
// read it (other threads: after a __syncthreads too). Here it lands at one
// end of that window, and tests run both:
// - by default (EMU_CP_ASYNC=late) at that wait, with the source bytes read
//   at issue: a kernel that reads a buffer before waiting for the copy into
//   it, or before the barrier that makes another thread's copy visible,
//   sees the old contents (0xFF poison or the previous tile);
// - with EMU_CP_ASYNC=early at issue: a kernel that refills a buffer other
//   warps may still be reading (no barrier since their last read)
//   overwrites it under them when they run later (EMU_WARPS=serial).
// Copies still pending when the block ends are dropped with its shared
// memory.
inline void emu_cp_async(void* dst, const void* src, int size, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
    if (size != 4 && size != 8 && size != 16) ::emu::fail("cp.async at %s:%d: size %d (4, 8 or 16)", file, line, size);
    if ((uintptr_t)dst % size != 0 || (uintptr_t)src % size != 0)
        ::emu::fail("cp.async at %s:%d: %p -> %p is not %d-byte aligned", file, line, src, dst, size);
    if (!::emu::device_range(src, (size_t)size))
        ::emu::fail("cp.async at %s:%d: source %p is not in a cudaMalloc buffer", file, line, src);
    if (!::emu::shared_range(dst, (size_t)size))
        ::emu::fail("cp.async at %s:%d: destination %p is not in shared memory", file, line, dst);
    if (::emu::g.cp_async_early) {
        memcpy(dst, src, (size_t)size);
        ::emu::Quiet quiet;
        ::emu::self().unfenced_writes.emplace_back((const char*)dst, size);
        return;
    }
    ::emu::Fiber::AsyncCopy c{(char*)dst, {}, size, -1};
    memcpy(c.bytes, src, (size_t)size);
    ::emu::Quiet quiet;
    ::emu::self().async_copies.push_back(c);
}

inline void emu_cp_async_commit() {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;
    for (auto& c : f.async_copies)
        if (c.group < 0) c.group = f.async_groups;
    f.async_groups++;
}

// lands every committed copy but those of the newest n groups
inline void emu_cp_async_wait(int n) {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;   // the bookkeeping; the copy's store is this thread's
    size_t kept = 0;      // the copies still in flight, kept in order in place
    for (const auto& c : f.async_copies) {
        if (c.group >= 0 && c.group < f.async_groups - n) {
            ::emu::Loud(), memcpy(c.dst, c.bytes, (size_t)c.size);
            f.unfenced_writes.emplace_back(c.dst, c.size);
        } else {
            f.async_copies[kept++] = c;
        }
    }
    f.async_copies.resize(kept);
}

// ----------------------------------------------------------------------------
// wgmma (sm_90a), the instructions llmc/ptx.cuh wraps: wgmma.fence,
// wgmma.mma_async m64nNk16 (bf16 in, fp32 accumulators; A from registers or
// a descriptor, B from a descriptor), wgmma.commit_group,
// wgmma.wait_group N, and fence.proxy.async. Here a warpgroup is the whole
// block, which must have 128 threads (what the kernels using it launch).
// - An mma_async runs at the wait_group that covers it (the late end of
//   its window on the device): accumulators read before that wait hold
//   their old values, and shared memory overwritten before it gives the
//   wrong product, so a missing or early wait shows.
// - Checks: every thread issues the same operations (kind, N, descriptors);
//   a thread's mma_async needs a wgmma.fence since its last commit_group;
//   A operands in registers must keep their values until the wait;
//   no operand byte may be one that a cp.async of any thread landed since
//   that thread's last fence.proxy.async (plain stores are not tracked).
// - Layouts (PTX ISA, "Register Fragments and Shared Memory Matrix Layouts"
//   for wgmma, swizzle mode 0 only): thread 32w + 4g + t holds
//   accumulator v at row 16w + g + 8 (v % 4 / 2), column 8 (v / 4) + 2t +
//   v % 2; A register r (half h) at row 16w + g + 8 (r % 2), k 8 (r / 2) +
//   2t + h. In shared memory an operand is core matrices of 8 rows of 16
//   bytes: element (mn, k) of a K-major operand at start + (mn / 8) sbo +
//   (k / 8) lbo + 16 (mn % 8) + 2 (k % 8), of an MN-major one at start +
//   (mn / 8) sbo + (k / 8) lbo + 16 (k % 8) + 2 (mn % 8).
//   EMU_WGMMA_SWAPPED_STRIDES=k, mn or both makes a device that reads the
//   K-major, the MN-major or all descriptors' lbo and sbo the other way
//   round, so that dev/emu/tests/ptx.cu's diagnosis of such a device (its
//   probes with swapped descriptors) is tested too.
// Each D element is summed in fp32, k in increasing order, as emu_mma above.

inline uint32_t emu_shared_address(const void* p) { return ::emu::shared_address(p, 1); }

struct EmuWgmmaScratch {
    float a[64 * 16], b[16 * 256];
    long count;                 // operations the first thread runs at this wait
    ::emu::Fiber::Wgmma first;  // its first, to compare with
};
inline EmuWgmmaScratch& emu_wgmma_scratch() {
    static EmuWgmmaScratch scratch;
    return scratch;
}

inline void emu_wgmma_block_check(const char* what, const char* file, int line) {
    if (::emu::g.fibers.size() != 128)
        ::emu::fail("%s at %s:%d: the emulation runs wgmma in blocks of one warpgroup (128 threads), not %zu", what,
                    file, line, ::emu::g.fibers.size());
}

inline void emu_wgmma_fence() { ::emu::Quiet quiet; ::emu::self().wgmma_fenced = true; }
inline void emu_fence_proxy_async() { ::emu::Quiet quiet; ::emu::self().unfenced_writes.clear(); }

inline void emu_wgmma_commit() {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;
    for (auto& w : f.wgmmas)
        if (w.group < 0) w.group = f.wgmma_groups;
    f.wgmma_groups++;
    f.wgmma_fenced = false;
}

// where element (mn, k) of an operand a descriptor describes lies
inline const char* emu_wgmma_element_at(uint64_t desc, int mn, int k, int mn_major, const char* file, int line) {
    const uint32_t start = (uint32_t)(desc & 0x3FFF) << 4;
    uint32_t lbo = (uint32_t)(desc >> 16 & 0x3FFF) << 4, sbo = (uint32_t)(desc >> 32 & 0x3FFF) << 4;
    if (::emu::g.wgmma_swapped & (mn_major ? 2 : 1)) std::swap(lbo, sbo);
    if (desc >> 62) ::emu::fail("wgmma at %s:%d: descriptor %016llx: a swizzle mode (emulated: none)", file, line,
                                (unsigned long long)desc);
    const uint32_t addr = start + (uint32_t)(mn / 8) * sbo + (uint32_t)(k / 8) * lbo +
                          (mn_major ? 16u * (k % 8) + 2u * (mn % 8) : 16u * (mn % 8) + 2u * (k % 8));
    const char* p = ::emu::shared_pointer(addr, 2);
    if (!p) ::emu::fail("wgmma at %s:%d: descriptor %016llx: element (%d,%d) at shared address %u is not in shared "
                        "memory", file, line, (unsigned long long)desc, mn, k, addr);
    return p;
}

inline float emu_wgmma_element(uint64_t desc, int mn, int k, int mn_major, const char* file, int line) {
    const char* p = emu_wgmma_element_at(desc, mn, k, mn_major, file, line);
    unsigned short bits;
    ::emu::Loud(), memcpy(&bits, p, 2);   // this thread's share of the operand
    return __bfloat162float(__ushort_as_bfloat16(bits));
}

// fails if a byte of the operand's (rows, 16) elements is one a cp.async
// of some thread landed since that thread's last fence.proxy.async
inline void emu_wgmma_check_fenced(uint64_t desc, int rows, int mn_major, const char* file, int line) {
    std::vector<const char*> at;
    for (int mn = 0; mn < rows; mn++)
        for (int k = 0; k < 16; k++) at.push_back(emu_wgmma_element_at(desc, mn, k, mn_major, file, line));
    std::sort(at.begin(), at.end());
    for (const ::emu::Fiber& o : ::emu::g.fibers)
        for (const auto& w : o.unfenced_writes) {   // an element starting in [w - 1, w + size) overlaps
            auto it = std::lower_bound(at.begin(), at.end(), w.first - 1);
            if (it != at.end() && *it < w.first + w.second)
                ::emu::fail("wgmma at %s:%d reads shared memory that thread (%u,%u,%u)'s cp.async wrote with no "
                            "fence.proxy.async after it", file, line, o.tid.x, o.tid.y, o.tid.z);
        }
}

// d (64,n) (+)= A (64,16) B (16,n): a in registers (a_regs) or at a_desc
// (K-major), B at b_desc (K-major, or MN-major if b_mn_major)
inline void emu_wgmma(float* d, int n, const uint32_t* a_regs, uint64_t a_desc, uint64_t b_desc, int accumulate,
                      int b_mn_major, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;
    emu_wgmma_block_check("wgmma.mma_async", file, line);
    if (!f.wgmma_fenced)
        ::emu::fail("wgmma.mma_async at %s:%d without a wgmma.fence since the last wgmma.commit_group", file, line);
    ::emu::Fiber::Wgmma w{d, n, a_regs != nullptr, {0, 0, 0, 0}, a_regs, a_desc, b_desc, accumulate, b_mn_major, -1,
                          file, line};
    if (a_regs) memcpy(w.a, a_regs, sizeof w.a);
    if (f.tid.x == 0) {   // once per operation: its operands' bytes are fenced
        if (!a_regs) emu_wgmma_check_fenced(a_desc, 64, 0, file, line);
        emu_wgmma_check_fenced(b_desc, n, b_mn_major, file, line);
    }
    f.wgmmas.push_back(w);
}

// runs every committed operation but those of the newest n groups
inline void emu_wgmma_wait(int n, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::emu::Fiber& f = ::emu::self();
    ::emu::Quiet quiet;   // the bookkeeping and scratch; the operands' bytes are read as this thread's
    emu_wgmma_block_check("wgmma.wait_group", file, line);
    EmuWgmmaScratch& s = emu_wgmma_scratch();
    const ::emu::Site site{file, line};
    long count = 0;
    while (count < (long)f.wgmmas.size() && f.wgmmas[count].group >= 0 && f.wgmmas[count].group < f.wgmma_groups - n)
        count++;
    if (f.tid.x == 0) {
        s.count = count;
        if (count) s.first = f.wgmmas[0];
    }
    site.barrier(false);
    if (count != s.count)
        ::emu::fail("wgmma.wait_group at %s:%d completes %ld operations in this thread, %ld in thread 0", file, line,
                    count, s.count);
    site.barrier(false);   // every thread has compared (thread 0 may post the next wait's count after this)
    const int w = (int)f.tid.x / 32, g = (int)f.tid.x % 32 / 4, t = (int)f.tid.x % 4;
    for (long i = 0; i < count; i++) {
        const ::emu::Fiber::Wgmma& op = f.wgmmas[i];
        if ((op.n != s.first.n || op.a_in_regs != s.first.a_in_regs || op.b_desc != s.first.b_desc ||
                       op.a_desc != s.first.a_desc || op.b_mn_major != s.first.b_mn_major ||
                       op.accumulate != s.first.accumulate))
            ::emu::fail("wgmma.mma_async at %s:%d: this thread's operation differs from thread 0's (at %s:%d)",
                        op.file, op.line, s.first.file, s.first.line);
        // this thread's share of the operands into the scratch: its A
        // registers, or (A from shared memory) 8 of A's elements; 16 n / 128 of B's
        if (op.a_in_regs && memcmp(op.a, op.a_src, sizeof op.a))   // the device reads them until now
            ::emu::fail("wgmma.mma_async at %s:%d: its A registers changed before the wgmma.wait_group at %s:%d",
                        op.file, op.line, file, line);
        for (int e = 0; e < 8; e++) {
            const int r = e / 2, h = e % 2, m = 16 * w + g + 8 * (r % 2), k = 8 * (r / 2) + 2 * t + h;
            if (op.a_in_regs) {
                s.a[m * 16 + k] = emu_bf16_half(op.a[r], h);
            } else {
                const int j = 8 * (int)f.tid.x + e;   // element j of A (64,16), row-major
                s.a[j] = emu_wgmma_element(op.a_desc, j / 16, j % 16, 0, op.file, op.line);
            }
        }
        for (int j = (int)f.tid.x; j < 16 * op.n; j += 128)   // element j of B (16,n), row-major
            s.b[j] = emu_wgmma_element(op.b_desc, j % op.n, j / op.n, op.b_mn_major, op.file, op.line);
        site.barrier(false);   // the operands are in
        std::vector<float> out((size_t)op.n / 2);
        for (int v = 0; v < op.n / 2; v++) {
            const int m = 16 * w + g + 8 * (v % 4 / 2), col = 8 * (v / 4) + 2 * t + v % 2;
            float acc = op.accumulate ? op.d[v] : 0.0f;
            for (int k = 0; k < 16; k++) acc += s.a[m * 16 + k] * s.b[k * op.n + col];
            out[(size_t)v] = acc;
        }
        site.barrier(false);   // every thread has read the scratch
        for (int v = 0; v < op.n / 2; v++) op.d[v] = out[(size_t)v];
        if (i + 1 < count && f.tid.x == 0) s.first = f.wgmmas[i + 1];
        if (i + 1 < count) site.barrier(false);   // thread 0's next operation is posted
    }
    f.wgmmas.erase(f.wgmmas.begin(), f.wgmmas.begin() + count);
}

#endif // CUDA_EMU_H
