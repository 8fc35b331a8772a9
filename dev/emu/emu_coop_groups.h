// dev/emu/emu_coop_groups.h: cooperative groups on the warp collectives.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_COOP_GROUPS_H
#define EMU_COOP_GROUPS_H

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

#endif // EMU_COOP_GROUPS_H
