// dev/emu/emu_wmma.h: nvcuda::wmma with a scrambled fragment layout.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_WMMA_H
#define EMU_WMMA_H

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

#endif // EMU_WMMA_H
