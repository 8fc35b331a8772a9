// dev/emu/emu_blocks.h: a block's threads as fibers, the block scheduler, a
// launch's checks.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_BLOCKS_H
#define EMU_BLOCKS_H

namespace emu {

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

} // namespace emu

#endif // EMU_BLOCKS_H
