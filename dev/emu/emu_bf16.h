// dev/emu/emu_bf16.h: vector types and bf16 (cuda_bf16.h's subset), rounding as
// the device.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_BF16_H
#define EMU_BF16_H

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

#endif // EMU_BF16_H
