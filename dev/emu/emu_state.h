// dev/emu/emu_state.h: the emulator's state (one OS thread runs everything),
// its error reports, its configuration from EMU_* variables, guarded buffers.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_STATE_H
#define EMU_STATE_H

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

} // namespace emu

namespace emu {

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
    void* tsan;         // its ThreadSanitizer fiber (see emu_races.h)
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

// The number in an EMU_* variable: digits only, in [lo, hi]
inline unsigned long long env_number(const char* name, const char* s, unsigned long long lo, unsigned long long hi) {
    char* end = nullptr;
    errno = 0;
    unsigned long long x = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno || x < lo || x > hi) fail("%s=%s: expected a number in %llu..%llu", name, s, lo, hi);
    return x;
}

inline void configure() {
    if (g.configured) return;
    g.configured = true;
    const char* o = getenv("EMU_ORDER");
    if (!o || !*o || !strcmp(o, "forward")) g.order = Order::forward;
    else if (!strcmp(o, "reverse")) g.order = Order::reverse;
    else if (!strcmp(o, "random")) g.order = Order::random;
    else fail("EMU_ORDER=%s: expected forward, reverse or random", o);
    if (const char* s = getenv("EMU_SEED")) g.seed = env_number("EMU_SEED", s, 0, ~0ull);
    if (const char* s = getenv("EMU_LATE_STREAM"); s && !strcmp(s, "random")) {
        g.late_random = g.legacy.late = true;
        g.stream_rng = g.seed * 0x9e3779b97f4a7c15ull + 1;
    } else if (s && *s) {
        if (*s < '0' || *s > '9')
            fail("EMU_LATE_STREAM=%s: expected 0 (the default stream), k (the k-th made) or random", s);
        g.late_stream = (long)env_number("EMU_LATE_STREAM", s, 0, 1 << 20);
        g.legacy.late = g.late_stream == 0;
        atexit([] {   // a stream never made held nothing back: the run proved nothing
            if (g.late_stream > g.created)
                fail("EMU_LATE_STREAM=%ld: the program made %ld stream(s)", g.late_stream, g.created);
        });
    }
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    size_t kb = EMU_ASAN ? 256 : 64;   // ASan's redzones make frames bigger
    if (const char* s = getenv("EMU_STACK_KB")) kb = env_number("EMU_STACK_KB", s, 16, 1 << 20);
    g.stack_bytes = (kb * 1024 + g.page - 1) / g.page * g.page;
    if (const char* s = getenv("EMU_DEVICE_MIB")) {
        g.device_bytes = (size_t)env_number("EMU_DEVICE_MIB", s, 1, 1ull << 30) << 20;
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
    if (const char* s = getenv("EMU_REPORT_MEMORY"); s && env_number("EMU_REPORT_MEMORY", s, 0, 1)) {
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

} // namespace emu

#endif // EMU_STATE_H
