/*
 * comm_gpu.cuh: the GPU trainer's collectives on device memory.
 *
 * On a GPU: NCCL (USE_NCCL). Its unique id goes from rank 0 to the others
 * over MPI (-pi mpi), or without MPI over TCP (-pi tcp -ps host:port) or a
 * file (-pi fs -pf path; llmc/rendezvous.h); without MPI the host's own
 * collectives (losses, checks, barriers) travel over NCCL too, through a
 * small device buffer (CommOps). Operations run on a stream of their own,
 * after the work queued so far on the trainer's (compute) stream, so that
 * ZeRO-2's reductions overlap the backward; device_wait waits for them under
 * comm.h's timeout: with MPI, a peer that never joins is named; without,
 * the job still ends, saying a rank is missing. NCCL calls that may block
 * on the host (setup, launches) run under comm.h's deadline.
 * Under the CUDA emulation (CUDA_EMU) device memory is host memory, and MPI
 * itself stands in for NCCL, with a bf16 sum of its own that rounds as
 * NCCL's does (fp32 add, round to nearest even); each MPI collective is
 * queued on the communication stream as NCCL's kernel would be, so dev/emu's
 * late streams (EMU_LATE_STREAM) and its race check (the buffers each one
 * reads and writes declared) check the waits between the two streams.
 *
 * Every function is a collective: all ranks call it in the same order.
 */
#ifndef LLMC_COMM_GPU_CUH
#define LLMC_COMM_GPU_CUH

#include <stdint.h>
#include <string.h>

#include "comm.h"
#include "cuda_common.cuh"
#include "rendezvous.h"

#ifdef USE_NCCL
#include <nccl.h>
#endif

typedef enum { DEVICE_BF16, DEVICE_F32 } DeviceType;

static inline size_t device_type_size(DeviceType t) { return t == DEVICE_BF16 ? 2 : 4; }

#define DEVICE_STAGING_BYTES 65536  // the host collectives' device buffer, without MPI

typedef struct {
    Comm *host;
    cudaStream_t stream;   // the collectives' own
    cudaStream_t compute;  // the trainer's, which they follow
    cudaEvent_t computed;  // recorded on compute for stream to wait on
    int in_group;  // between device_group_start and device_group_end
#ifdef USE_NCCL
    ncclComm_t nccl;
    cudaEvent_t done;
    void *staging;  // without MPI: DEVICE_STAGING_BYTES for the host collectives
#endif
} DeviceComm;

#ifdef USE_NCCL
#define ncclCheck(call)                                                                        \
    do {                                                                                       \
        ncclResult_t r_ = (call);                                                              \
        if (r_ != ncclSuccess) fatal("NCCL: %s: %s", #call, ncclGetErrorString(r_));          \
    } while (0)

// An NCCL call that may block on the host until the peers answer (the
// communicator's setup; a launch that first connects to them), under the
// deadline of llmc/comm.h: a dead peer ends the job instead of hanging it.
#define ncclCheckDeadline(comm, what, call)       \
    do {                                          \
        comm_deadline_arm((comm)->timeout_s, what); \
        ncclCheck(call);                          \
        comm_deadline_disarm();                   \
    } while (0)

static inline ncclDataType_t nccl_type(DeviceType t) { return t == DEVICE_BF16 ? ncclBfloat16 : ncclFloat32; }
#endif

// Waits for the collectives queued on the stream, under the timeout.
static inline void device_wait(DeviceComm *d, const char *what) {
    if (d->host->world == 1) return;  // (one rank: everything runs on the compute stream)
#ifdef USE_NCCL
    Comm *c = d->host;
    CommRequest r = comm_begin(c, what);
    cudaCheck(cudaEventRecord(d->done, d->stream));
    double t0 = comm_now();
    for (long polls = 0;; polls++) {
        cudaError_t e = cudaEventQuery(d->done);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) cudaCheck(e);
        ncclResult_t async;
        ncclCheck(ncclCommGetAsyncError(d->nccl, &async));
        if (async != ncclSuccess) {
            ncclCommAbort(d->nccl);   // (its kernels would spin on, and the exit wait for them)
            fatal("NCCL: %s failed: %s", what, ncclGetErrorString(async));
        }
#ifdef USE_MPI
        if (c->use_mpi) comm_answer_questions(c, r.seq, what);
#endif
        if (comm_now() - t0 > c->timeout_s) {
            ncclCommAbort(d->nccl);
#ifdef USE_MPI
            if (c->use_mpi) comm_timed_out(c, &r);
#endif
            fatal("%s (collective #%lld, step %d) did not complete in %.0f s (-ct): a rank is dead or hung "
                  "(without MPI the others cannot tell which); ending the job", what, r.seq, c->step, c->timeout_s);
        }
        struct timespec ts = {0, polls < 1000 ? 0 : 100000};
        nanosleep(&ts, NULL);
    }
#elif defined(CUDA_EMU)
    (void)what;
    cudaCheck(cudaStreamSynchronize(d->stream));
#else
    (void)d, (void)what;
#endif
}

// The collectives queued next start after the compute stream's work so far
static inline void device_follow_compute(DeviceComm *d) {
    if (d->host->world == 1) return;
    cudaCheck(cudaEventRecord(d->computed, d->compute));
    cudaCheck(cudaStreamWaitEvent(d->stream, d->computed, 0));
}

// Between these, collectives are queued together (one NCCL group) and
// waited for once at the end.
static inline void device_group_start(DeviceComm *d) {
    if (d->host->world == 1) return;
    device_follow_compute(d);
#ifdef USE_NCCL
    ncclCheck(ncclGroupStart());
#endif
    d->in_group = 1;
}

static inline void device_group_end(DeviceComm *d, const char *what) {
    if (d->host->world == 1) return;
    d->in_group = 0;
#ifdef USE_NCCL
    ncclCheckDeadline(d->host, what, ncclGroupEnd());
#endif
    device_wait(d, what);
}

// before a collective: outside a group, it follows the compute stream
static inline void device_begin(DeviceComm *d) {
    if (!d->in_group) device_follow_compute(d);
}

// after a collective: outside a group, wait for it
static inline void device_done(DeviceComm *d, const char *what) {
    if (!d->in_group) device_wait(d, what);
}

#ifdef USE_NCCL
// ---- the host's collectives over NCCL (no MPI): through the staging buffer

static inline void nccl_host_allreduce_sum_f64(void *ctx, double *buf, int n, const char *what) {
    DeviceComm *d = (DeviceComm *)ctx;
    size_t bytes = (size_t)n * sizeof(double);
    if (bytes > DEVICE_STAGING_BYTES) fatal("%s: %zu bytes is more than the staging buffer", what, bytes);
    cudaCheck(cudaMemcpyAsync(d->staging, buf, bytes, cudaMemcpyHostToDevice, d->stream));
    ncclCheckDeadline(d->host, what, ncclAllReduce(d->staging, d->staging, (size_t)n, ncclFloat64, ncclSum, d->nccl, d->stream));
    device_wait(d, what);
    cudaCheck(cudaMemcpy(buf, d->staging, bytes, cudaMemcpyDeviceToHost));
}

static inline void nccl_host_allgather_bytes(void *ctx, const void *send, void *recv, size_t bytes, const char *what) {
    DeviceComm *d = (DeviceComm *)ctx;
    size_t total = bytes * (size_t)d->host->world;
    if (total > DEVICE_STAGING_BYTES) fatal("%s: %zu bytes is more than the staging buffer", what, total);
    char *at = (char *)d->staging + bytes * (size_t)d->host->rank;
    cudaCheck(cudaMemcpyAsync(at, send, bytes, cudaMemcpyHostToDevice, d->stream));
    ncclCheckDeadline(d->host, what, ncclAllGather(at, d->staging, bytes, ncclUint8, d->nccl, d->stream));
    device_wait(d, what);
    cudaCheck(cudaMemcpy(recv, d->staging, total, cudaMemcpyDeviceToHost));
}

static inline void nccl_host_barrier(void *ctx, const char *what) {
    double one = 1.0;
    nccl_host_allreduce_sum_f64(ctx, &one, 1, what);
}

static const CommOps nccl_host_ops = {nccl_host_allreduce_sum_f64, nccl_host_allgather_bytes, nccl_host_barrier};
#endif

// Sets up the device collectives over host's ranks. method: "mpi" (NCCL's
// id broadcast over MPI), "tcp" (rank 0 serves it at server "host:port") or
// "fs" (rank 0 writes it to the fresh file `path`).
static inline void device_comm_init(DeviceComm *d, Comm *host, cudaStream_t stream, const char *method,
                                    const char *server, const char *path) {
    memset(d, 0, sizeof(*d));
    d->host = host;
    d->stream = stream;
    d->compute = stream;
    if (host->world == 1) return;
    // non-blocking: the legacy default stream, the trainer's, and this one
    // order only by the events between them, so collectives overlap compute
    cudaCheck(cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&d->computed, cudaEventDisableTiming));
#ifdef USE_NCCL
    // bf16 needs 2.10, and up to 2.11 a group holds at most 2048 operations
    // (the parameters' all-gather broadcasts every unit from every rank in one)
    int version;
    ncclCheck(ncclGetVersion(&version));
    if (version < 21200) fatal("NCCL %d.%d is too old: this trainer needs 2.12 or newer", version / 10000, version / 100 % 100);
    ncclUniqueId id;
    if (host->rank == 0) ncclCheck(ncclGetUniqueId(&id));
    if (strcmp(method, "tcp") == 0) {
        char name[256];
        int port;
        if (!rendezvous_parse_server(server, name, &port)) {
            fatal("-ps must be host:port for -pi tcp, got '%s'", server);
        }
        rendezvous_tcp(name, port, host->rank, host->world, &id, sizeof(id), host->timeout_s);
    } else if (strcmp(method, "fs") == 0) {
        if (path[0] == '\0') fatal("-pi fs needs -pf, a fresh file path every rank sees");
        rendezvous_file(path, host->rank, &id, sizeof(id), host->timeout_s);
    } else {
#ifdef USE_MPI
        comm_broadcast_bytes(host, &id, sizeof(id), 0, "broadcast of the NCCL id");
#else
        fatal("%d ranks without MPI: choose -pi tcp or -pi fs", host->world);
#endif
    }
    double timeout = host->timeout_s;   // setting up many nodes' links takes longer than a collective
    host->timeout_s = 10.0 * timeout;
    ncclCheckDeadline(host, "NCCL's communicator setup (ncclCommInitRank)", ncclCommInitRank(&d->nccl, host->world, id, host->rank));
    host->timeout_s = timeout;
    if (strcmp(method, "fs") == 0) rendezvous_file_done(path, host->rank);  // every rank has read it
    cudaCheck(cudaEventCreateWithFlags(&d->done, cudaEventDisableTiming));
    if (!host->use_mpi) {  // the host's collectives over NCCL too
        cudaCheck(cudaMalloc(&d->staging, DEVICE_STAGING_BYTES));
        host->ops = &nccl_host_ops;
        host->ops_ctx = d;
    }
#elif defined(CUDA_EMU)
    if (!host->use_mpi) fatal("-pi %s: the emulated GPU trainer's ranks talk over MPI only (-pi mpi)", method);
    (void)server, (void)path;
#else
    (void)method, (void)server, (void)path;
    fatal("%d ranks need NCCL: this build has none (make train_gpt2cu finds it with MPI)", host->world);
#endif
}

static inline void device_comm_free(DeviceComm *d) {
    if (!d->host || d->host->world == 1) return;
#ifdef USE_NCCL
    ncclCheck(ncclCommDestroy(d->nccl));
    cudaCheck(cudaEventDestroy(d->done));
    if (d->staging) cudaCheck(cudaFree(d->staging));
    if (d->host->ops_ctx == d) d->host->ops = NULL;
#endif
    cudaCheck(cudaEventDestroy(d->computed));
    cudaCheck(cudaStreamDestroy(d->stream));
}

#if defined(CUDA_EMU) && defined(USE_MPI)
// bf16 (as uint16 bits) summed in fp32 and rounded to nearest even, as NCCL does
static void emu_bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = (const uint16_t *)in;
    uint16_t *b = (uint16_t *)inout;
    for (int i = 0; i < *len; i++) {
        uint32_t ua = (uint32_t)a[i] << 16, ub = (uint32_t)b[i] << 16, u;
        float fa, fb, sum;
        memcpy(&fa, &ua, 4);
        memcpy(&fb, &ub, 4);
        sum = fa + fb;
        memcpy(&u, &sum, 4);
        b[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)0x7fc0 : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

static inline MPI_Op emu_sum_op(DeviceType t) {
    static MPI_Op bf16_sum = MPI_OP_NULL;
    if (bf16_sum == MPI_OP_NULL) MPI_Op_create(emu_bf16_sum, 1, &bf16_sum);
    return t == DEVICE_BF16 ? bf16_sum : MPI_SUM;
}
#endif

// buf (n,) of type t on the device = its sum over the ranks, in place.
static inline void device_all_reduce_sum(DeviceComm *d, void *buf, size_t n, DeviceType t, const char *what) {
    if (d->host->world == 1) return;
    device_begin(d);
#ifdef USE_NCCL
    ncclCheckDeadline(d->host, what, ncclAllReduce(buf, buf, n, nccl_type(t), ncclSum, d->nccl, d->stream));
    device_done(d, what);
#elif defined(CUDA_EMU) && defined(USE_MPI)
    emu::submit(d->stream, [=] {
        emu::op_writes(buf, n * device_type_size(t));
        for (size_t done = 0; done < n; done += COMM_MAX_COUNT) {
            size_t k = n - done < COMM_MAX_COUNT ? n - done : COMM_MAX_COUNT;
            CommRequest r = comm_begin(d->host, what);
            char *at = (char *)buf + done * device_type_size(t);
            MPI_Iallreduce(MPI_IN_PLACE, at, (int)k, t == DEVICE_BF16 ? MPI_UINT16_T : MPI_FLOAT, emu_sum_op(t),
                           d->host->comm, &r.req);
            comm_wait(d->host, &r);
        }
    });
    device_done(d, what);
#else
    (void)buf, (void)n, (void)t, (void)what;
#endif
}

// buf (b - a,) of type t on the device: the elements [a, b) of an unpadded
// unit of n elements whose rank q's slice is [q * slice, min((q + 1) *
// slice, n)): every rank's part of the range (llmc/comm.h's comm_range_part;
// this rank's already in place) goes to every rank (parts may be empty).
// Queued like device_reduce_scatter.
static inline void device_all_gather_range(DeviceComm *d, void *buf, size_t n, size_t slice, size_t a, size_t b,
                                           DeviceType t, const char *what) {
    Comm *c = d->host;
    if (c->world == 1) return;
    size_t es = device_type_size(t);
#ifdef USE_NCCL
    ncclCheck(ncclGroupStart());
    for (int q = 0; q < c->world; q++) {
        size_t lo, hi;
        comm_range_part(n, slice, a, b, q, &lo, &hi);
        if (hi == lo) continue;
        char *at = (char *)buf + (lo - a) * es;
        ncclCheck(ncclBroadcast(at, at, hi - lo, nccl_type(t), q, d->nccl, d->stream));
    }
    ncclCheckDeadline(c, what, ncclGroupEnd());
#elif defined(CUDA_EMU) && defined(USE_MPI)
    emu::submit(d->stream, [=] {
        emu::op_writes(buf, (b - a) * es);
        int *counts = (int *)malloc_check((size_t)c->world * sizeof(int));
        int *displs = (int *)malloc_check((size_t)c->world * sizeof(int));
        comm_range_counts(c, n * es, slice * es, a * es, b * es, counts, displs, what);
        CommRequest r = comm_begin(c, what);
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_BYTE, c->comm, &r.req);
        comm_wait(c, &r);
        free(counts);
        free(displs);
    });
#else
    (void)buf, (void)n, (void)slice, (void)a, (void)b, (void)es, (void)what;
#endif
}

// buf (n,) of type t: rank q's slice buf[q * slice, min((q + 1) * slice, n))
// goes to every rank, in place (slices may be short or empty); after the
// compute stream's work so far, waited for (outside a group).
static inline void device_all_gather_unpadded(DeviceComm *d, void *buf, size_t n, size_t slice, DeviceType t,
                                              const char *what) {
    if (d->host->world == 1) return;
    device_begin(d);
    device_all_gather_range(d, buf, n, slice, 0, n, t, what);
    device_done(d, what);
}

// recv = this rank's part [lo, hi) (comm_range_part) of the sum over the
// ranks of send (b - a,), the elements [a, b) of an unpadded unit of n
// elements sliced as in device_all_gather_range. Queued like
// device_reduce_scatter: device_wait, or the stream, completes it.
static inline void device_reduce_scatter_range(DeviceComm *d, const void *send, void *recv, size_t n, size_t slice,
                                               size_t a, size_t b, DeviceType t, const char *what) {
    Comm *c = d->host;
    size_t es = device_type_size(t);
    if (c->world == 1) {
        cudaCheck(cudaMemcpyAsync(recv, send, (b - a) * es, cudaMemcpyDeviceToDevice, d->compute));
        return;
    }
#ifdef USE_NCCL
    ncclCheck(ncclGroupStart());
    for (int q = 0; q < c->world; q++) {   // a sum to each part's owner
        size_t lo, hi;
        comm_range_part(n, slice, a, b, q, &lo, &hi);
        if (hi == lo) continue;
        ncclCheck(ncclReduce((const char *)send + (lo - a) * es, recv, hi - lo, nccl_type(t), ncclSum, q, d->nccl,
                             d->stream));
    }
    ncclCheckDeadline(c, what, ncclGroupEnd());
#elif defined(CUDA_EMU) && defined(USE_MPI)
    emu::submit(d->stream, [=] {
        size_t lo, hi;
        comm_range_part(n, slice, a, b, c->rank, &lo, &hi);
        emu::op_reads(send, (b - a) * es);
        emu::op_writes(recv, (hi - lo) * es);
        int *counts = (int *)malloc_check((size_t)c->world * sizeof(int));
        int *displs = (int *)malloc_check((size_t)c->world * sizeof(int));
        comm_range_counts(c, n, slice, a, b, counts, displs, what);
        CommRequest r = comm_begin(c, what);
        MPI_Ireduce_scatter(send, recv, counts, t == DEVICE_BF16 ? MPI_UINT16_T : MPI_FLOAT, emu_sum_op(t), c->comm,
                            &r.req);
        comm_wait(c, &r);
        free(counts);
        free(displs);
    });
#else
    (void)send, (void)recv, (void)n, (void)slice, (void)a, (void)b, (void)es, (void)what;
#endif
}

// recv (slice,) of type t = the sum over the ranks of send's rank-th slice;
// send (world * slice,) is one padded ZeRO unit. Queued (ZeRO-2 overlaps
// it with the backward): device_wait, or the stream, completes it.
static inline void device_reduce_scatter(DeviceComm *d, const void *send, void *recv, size_t slice, DeviceType t,
                                         const char *what) {
    if (d->host->world == 1) {
        cudaCheck(cudaMemcpyAsync(recv, send, slice * device_type_size(t), cudaMemcpyDeviceToDevice, d->compute));
        return;
    }
#ifdef USE_NCCL
    ncclCheckDeadline(d->host, what, ncclReduceScatter(send, recv, slice, nccl_type(t), ncclSum, d->nccl, d->stream));
#elif defined(CUDA_EMU) && defined(USE_MPI)
    emu::submit(d->stream, [=] {
        emu::op_reads(send, (size_t)d->host->world * slice * device_type_size(t));
        emu::op_writes(recv, slice * device_type_size(t));
        CommRequest r = comm_begin(d->host, what);
        MPI_Ireduce_scatter_block(send, recv, comm_count(slice, what), t == DEVICE_BF16 ? MPI_UINT16_T : MPI_FLOAT,
                                  emu_sum_op(t), d->host->comm, &r.req);
        comm_wait(d->host, &r);
    });
#else
    (void)send, (void)recv, (void)slice, (void)t, (void)what;
#endif
}

// buf (world * slice,) of type t: every rank's slice (rank q's at q *
// slice, this rank's already in place) to every rank; one padded ZeRO unit.
// Queued like device_reduce_scatter.
static inline void device_all_gather(DeviceComm *d, void *buf, size_t slice, DeviceType t, const char *what) {
    Comm *c = d->host;
    if (c->world == 1) return;
    size_t es = device_type_size(t);
#ifdef USE_NCCL
    ncclCheckDeadline(c, what, ncclAllGather((char *)buf + (size_t)c->rank * slice * es, buf, slice, nccl_type(t), d->nccl, d->stream));
#elif defined(CUDA_EMU) && defined(USE_MPI)
    emu::submit(d->stream, [=] {
        emu::op_writes(buf, (size_t)c->world * slice * es);
        CommRequest r = comm_begin(c, what);
        MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, comm_count(slice * es, what), MPI_BYTE, c->comm,
                       &r.req);
        comm_wait(c, &r);
    });
#else
    (void)buf, (void)slice, (void)es, (void)what;
#endif
}

#endif  // LLMC_COMM_GPU_CUH
