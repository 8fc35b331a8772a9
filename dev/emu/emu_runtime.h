// dev/emu/emu_runtime.h: the CUDA runtime API (host memory; streams as in
// emu_streams.h).
// One part of the CUDA emulation: dev/emu/cuda_emu.h includes the parts in
// order, each after those it builds on; not a header of its own.
#ifndef EMU_RUNTIME_H
#define EMU_RUNTIME_H

// ----------------------------------------------------------------------------
// CUDA runtime (host memory; streams as in emu_streams.h)

inline const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    }
    return "unrecognized error code";
}
inline cudaError_t cudaGetLastError() { cudaError_t e = emu::g.last_error; emu::g.last_error = cudaSuccess; return e; }
inline cudaError_t cudaPeekAtLastError() { return emu::g.last_error; }
inline cudaError_t cudaDeviceSynchronize() { emu::synchronize_device(); return cudaSuccess; }

inline cudaError_t cudaMalloc(void** p, size_t n) {
    emu::configure();
    if (emu::g.device_bytes && n > emu::g.device_bytes - emu::g.allocated) return emu::g.last_error = cudaErrorMemoryAllocation;
    char* q = emu::alloc_guarded(n);
    if (!q) return emu::g.last_error = cudaErrorMemoryAllocation;
    emu::g.allocs[(uintptr_t)q] = n;
    emu::g.allocated += n;
    if (emu::g.allocated > emu::g.peak) emu::g.peak = emu::g.allocated;
    *p = q;
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMalloc(T** p, size_t n) { return cudaMalloc((void**)p, n); }
inline cudaError_t cudaFree(void* p) {
    if (!p) return cudaSuccess;
    auto it = emu::g.allocs.find((uintptr_t)p);
    if (it == emu::g.allocs.end()) return emu::g.last_error = cudaErrorInvalidDevicePointer;
    emu::synchronize_device();   // as on the device, cudaFree waits for the work queued so far
    if (!emu::guard_intact((const char*)p, it->second))
        emu::fail("cudaFree: something wrote past the end of the %zu-byte buffer at %p", it->second, p);
    emu::g.allocated -= it->second;
    emu::g.allocs.erase(it);
    free(p);
    return cudaSuccess;
}
// copies and memsets: checked when called, done in stream order. Host memory
// is pageable (no cudaMallocHost here), so, as on the device, a copy reads
// its host source before it returns and one into host memory returns when
// it is done; cudaMemcpy also waits for its stream, 0.
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s = nullptr) {
    bool dd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;   // src on device
    bool ds = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;   // dst on device
    if ((int)kind < 0 || (int)kind > 4) return emu::g.last_error = cudaErrorInvalidMemcpyDirection;
    if ((dd && !emu::device_range(src, n)) || (ds && !emu::device_range(dst, n)))
        return emu::g.last_error = cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (dd) {
        emu::submit(s, [=] {
            emu::op_reads(src, n);
            emu::op_writes(dst, n);
            memmove(dst, src, n);
        });
    } else {
        auto staged = std::make_shared<std::vector<char>>((const char*)src, (const char*)src + n);
        emu::submit(s, [=] {
            emu::op_writes(dst, n);
            memmove(dst, staged->data(), n);
        });
    }
    if (!ds) {
        emu::drain(emu::stream_of(s));
        emu::host_follows(emu::stream_of(s));
    }
    return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
    cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, nullptr);
    emu::drain(&emu::g.legacy);
    emu::host_follows(&emu::g.legacy);
    return e;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t s = nullptr) {
    if (!emu::device_range(p, n)) return emu::g.last_error = cudaErrorInvalidValue;
    emu::submit(s, [=] {
        emu::op_writes(p, n);
        memset(p, v, n);
    });
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) { return cudaMemsetAsync(p, v, n, nullptr); }
inline cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* data) {
    emu::submit(s, [=] { fn(data); });
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaFuncSetAttribute(T* f, cudaFuncAttribute attr, int v) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || v < 0 || (size_t)v > emu::kSharedOptinMax)
        return emu::g.last_error = cudaErrorInvalidValue;
    emu::g.smem_optin[(const void*)f] = (size_t)v;
    return cudaSuccess;
}

#define cudaStreamNonBlocking 0x1
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
    emu::configure();
    static std::vector<emu_stream*>* made = new std::vector<emu_stream*>;   // never freed (see cudaStreamDestroy)
    made->push_back(*s = new emu_stream);
    (*s)->blocking = !(flags & cudaStreamNonBlocking);
    (*s)->index = ++emu::g.created;
    (*s)->late = (*s)->index == emu::g.late_stream || emu::g.late_random;
    emu::g.streams.push_back(*s);
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
// (a destroyed stream's memory is kept: events recorded on it, and other
// streams' waits for them, may still name it)
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
    emu::drain(s);
    emu::g.streams.erase(std::find(emu::g.streams.begin(), emu::g.streams.end(), s));
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (!s) emu::submit(nullptr, [] {});   // the legacy stream: after the blocking streams' work
    emu::drain(emu::stream_of(s));
    emu::host_follows(emu::stream_of(s));
    return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { *e = new emu_event; return cudaSuccess; }
#define cudaEventDisableTiming 0x2
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
// As on the device, it waits for nothing (a late stream stays late, the host
// is not ordered after any work); its memory is kept, as a destroyed
// stream's, for the records queued before, which still name it
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
    static std::vector<emu_event*>* kept = new std::vector<emu_event*>;   // never freed
    kept->push_back(e);
    return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr) {
    uint64_t record = ++e->records;
    std::shared_ptr<uint64_t> recorded = EMU_TSAN ? std::make_shared<uint64_t>() : nullptr;
    emu::submit(s, [e, record, recorded] {
        if (e->records == record) e->t = std::chrono::steady_clock::now();
        emu::hb_release(recorded.get());
    });
    e->stream = emu::stream_of(s);
    e->at = e->stream->queued;
    e->recorded = recorded;
    return cudaSuccess;
}
// the event's stream runs up to it (as if the device had got there)
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (e->stream) emu::run_until(e->stream, e->at);
    if (e->recorded) emu::hb_acquire(e->recorded.get());
    return cudaSuccess;
}
inline cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
// s's later work waits for the event's latest record, as on the device
inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned = 0) {
    emu::configure();
    emu_stream* q = emu::stream_of(s);
    if (!e->stream || emu::g.drop_waits) return cudaSuccess;
    emu::push_wait(q, e->stream, e->at, e->recorded);
    if (!q->late) emu::drain(q);
    emu::advance_random();
    return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
    cudaEventSynchronize(a);
    cudaEventSynchronize(b);
    *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
    return cudaSuccess;
}

// one emulated device, 0, named so that reports say what ran; its memory is
// EMU_DEVICE_MIB or the host's physical RAM (see cudaMemGetInfo for what is free)
struct cudaDeviceProp {
    char name[256];
    int major, minor;
    int multiProcessorCount;
    size_t totalGlobalMem;
};
inline size_t emu_device_memory() {
    emu::configure();
    return emu::g.device_bytes ? emu::g.device_bytes : (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
}
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : (emu::g.last_error = cudaErrorInvalidValue); }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
    if (d != 0) return emu::g.last_error = cudaErrorInvalidValue;
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "emulated GPU (dev/emu)");
    p->major = 9;
    p->multiProcessorCount = 1;
    p->totalGlobalMem = emu_device_memory();
    return cudaSuccess;
}
// Without EMU_DEVICE_MIB, "device" memory is the host's: what is free is
// what the host has available now (MemAvailable; what cudaMalloc took is
// already in use there, its poison written), so a memory plan too big for
// the machine is an error, not a kill by the OOM killer (a container's
// cgroup limit, which MemAvailable does not see, aside).
inline size_t emu_host_available_memory() {
    size_t kib = 0;
    char line[256];
    if (FILE* f = fopen("/proc/meminfo", "r")) {
        while (fgets(line, sizeof(line), f)) {
            if (sscanf(line, "MemAvailable: %zu kB", &kib) == 1) break;
        }
        fclose(f);
    }
    return kib ? kib * 1024 : (size_t)sysconf(_SC_AVPHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    *total_bytes = emu_device_memory();
    *free_bytes = emu::g.device_bytes ? *total_bytes - emu::g.allocated : emu_host_available_memory();
    return cudaSuccess;
}

#endif // EMU_RUNTIME_H
