// dev/emu/emu_races.h: the race check: what orders accesses under
// ThreadSanitizer.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_RACES_H
#define EMU_RACES_H

namespace emu {

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

} // namespace emu

#endif // EMU_RACES_H
