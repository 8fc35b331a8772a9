// dev/emu/emu_kernel.h: what kernels see: their indices, shared memory, warp
// collectives, device addresses, atomics and integer intrinsics.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_KERNEL_H
#define EMU_KERNEL_H

namespace emu {

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

// (orders_memory: a __syncwarp of the kernel's, see emu_races.h)
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

#endif // EMU_KERNEL_H
