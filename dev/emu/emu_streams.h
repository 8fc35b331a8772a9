// dev/emu/emu_streams.h: streams, events, and the kernel launches queued on
// them.
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_STREAMS_H
#define EMU_STREAMS_H

namespace emu {

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
// race check (see emu_races.h) needs no late stream: there a missing wait
// is a race in the default order, whatever the values.

// one operation of s runs (for the race check on s's fiber, after the
// host's work up to its submission; see emu_races.h; g.stream is written
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

} // namespace emu

#endif // EMU_STREAMS_H
