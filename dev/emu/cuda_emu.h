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
//   missing cudaStreamWaitEvent between streams shows (see emu_streams.h).
//   EMU_DROP_WAITS=1 ignores every cudaStreamWaitEvent: a program whose
//   streams the race check passes must then fail it.
// - A launch runs the blocks one after another. The threads of a block are
//   cooperative fibers (see emu_context.h) that switch only
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
//   thread and stream order, whether or not the result changes (see
//   emu_races.h).
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
//   all on the warp collectives above (same checks; see emu_coop_groups.h).
// - nvcuda::wmma, m16n16k16 with bf16 inputs and fp32 accumulators
//   (fragments, load/store/fill, mma_sync) as warp collectives, with a
//   scrambled fragment layout so kernels cannot depend on one (see
//   emu_wmma.h).
// - PTX mma.sync m16n8k16 (bf16 in, fp32 out) and ldmatrix x4, the
//   instructions llmc/ptx.cuh wraps, with the documented register layouts,
//   and cp.async, whose copies land at the cp.async.wait_group that covers
//   them (a read before it sees the old bytes), or with EMU_CP_ASYNC=early
//   at issue (a refill before the other warps' reads shows); see
//   emu_ptx.h.
// - PTX wgmma (Hopper's warpgroup mma, m64nNk16, bf16 in, fp32 out, swizzle
//   mode 0) in blocks of one warpgroup, run at the wgmma.wait_group that
//   covers it, with the documented layouts, and shared-memory addresses as
//   a descriptor holds them (emu_shared_address); a wgmma without a
//   wgmma.fence, or reading cp.async data no fence.proxy.async made
//   visible to it, stops the program; EMU_WGMMA_SWAPPED_STRIDES=k|mn|both
//   reads descriptors' lbo and sbo the other way round; see emu_ptx.h.
// - __nv_bfloat16 (conversions round to nearest even as the device, NaN to
//   the canonical 0x7FFF; operators compute in float) and the vector types
//   float2/float4/int2/int4/uint4 with 16-byte alignment for 128-bit packed
//   loads; checked bit for bit by dev/emu/tests/bf16.cu.
// - Device memory is the host's RAM (free: what the host has available now)
//   unless EMU_DEVICE_MIB=N gives the device
//   N MiB: then cudaMemGetInfo and cudaGetDeviceProperties say so and a
//   cudaMalloc past it fails with cudaErrorMemoryAllocation, so a program's
//   plan for a GPU of that size is tested. EMU_REPORT_MEMORY=1 prints the
//   most that was allocated at once when the program exits.
//
// Limits: the kernel of a <<<>>> launch must be a plain function or a
// template with explicit arguments (no deduction of template arguments from
// the call); without the race check a race is seen only when thread order
// changes the result, and with it, between two blocks only when they are an
// odd number of blocks apart (see emu_races.h); reads past the end are seen
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
#include <cerrno>
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

// the parts, each one concern, each after those it builds on
#include "emu_types.h"
#include "emu_context.h"
#include "emu_state.h"
#include "emu_races.h"
#include "emu_blocks.h"
#include "emu_streams.h"
#include "emu_kernel.h"
#include "emu_coop_groups.h"
#include "emu_bf16.h"
#include "emu_runtime.h"
#include "emu_wmma.h"
#include "emu_ptx.h"

#endif // CUDA_EMU_H
