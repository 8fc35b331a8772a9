// dev/emu/emu_ptx.h: the PTX instructions llmc/ptx.cuh wraps: mma.sync,
// ldmatrix, movmatrix, cp.async, wgmma.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_PTX_H
#define EMU_PTX_H

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

#endif // EMU_PTX_H
