/*
 * comm.h: the collectives data parallelism needs, and a watchdog on each.
 *
 * Backends: MPI when built with USE_MPI (the Makefile turns it on where
 * OpenMPI is installed), else one process. A run of several ranks starts
 * from `mpirun -np N` (OpenMPI) or Slurm's `srun`; started without either,
 * the program is one rank and never touches MPI. The GPU trainer can also
 * run without MPI (comm_init_without_mpi: ranks from its flags or the
 * launcher's environment); it then carries the host collectives over NCCL
 * itself (CommOps, llmc/comm_gpu.cuh).
 *
 * Every collective is started non-blocking and waited for by comm_wait,
 * which gives up after the timeout (-ct, default 60 s): it then asks every
 * other rank which collective it is in, prints one line naming the ranks
 * that did not answer (dead, or hung outside communication) and the ones
 * waiting elsewhere, and aborts the whole job. A run never hangs silently.
 * (A rank that dies outright is noticed by mpirun itself, which ends the job
 * and names the rank.) A call that blocks inside, out of reach of polling
 * (NCCL's communicator setup, a launch that first connects to its peers),
 * runs under comm_deadline_arm: an alarm ends the process if it has not
 * returned in time.
 *
 * Buffers are host memory; counts are elements. Sums are in the buffer's
 * type: fp32 for gradients, fp64 for losses and norms.
 */
#ifndef LLMC_COMM_H
#define LLMC_COMM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef USE_MPI
#define OMPI_SKIP_MPICXX 1  // C only, also from C++ (the emulated GPU trainer)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include "utils.h"

// Host collectives carried by another transport (the GPU trainer without MPI)
typedef struct {
    void (*allreduce_sum_f64)(void *ctx, double *buf, int n, const char *what);
    void (*allgather_bytes)(void *ctx, const void *send, void *recv, size_t bytes, const char *what);
    void (*barrier)(void *ctx, const char *what);
} CommOps;

typedef struct {
    int rank, world;
    int local_rank;    // among the ranks on this machine (picks the GPU)
    int use_mpi;       // the ranks talk over MPI
    const CommOps *ops;  // else (world > 1) over these
    void *ops_ctx;
    double timeout_s;  // a collective that takes longer ends the job
    int step;          // the training step, for messages
    long long seq;     // collectives started so far (ranks agree on it)
#ifdef USE_MPI
    MPI_Comm comm;        // the collectives
    MPI_Comm probe_comm;  // the watchdog's questions and answers
#endif
} Comm;

typedef struct {
    long long seq;
    const char *what;
#ifdef USE_MPI
    MPI_Request req;
#endif
} CommRequest;

// Whether mpirun or srun started this process as one of its ranks (srun
// sets SLURM_STEP_NUM_TASKS; a batch script of sbatch does not).
static inline int comm_launched(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "SLURM_STEP_NUM_TASKS"};
    for (int i = 0; i < 4; i++) {
        if (getenv(vars[i])) return 1;
    }
    return 0;
}

static inline double comm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---- a deadline on a blocking call that cannot be polled: if it has not
// returned (comm_deadline_disarm) `seconds` after comm_deadline_arm, SIGALRM
// prints one line naming it and ends the process (exit 1). The handler only
// write()s and _exit()s, the signal-safe part of fatal().
static char comm_deadline_line[320];
static int comm_deadline_length;

static void comm_deadline_expired(int sig) {
    (void)sig;
    ssize_t written = write(STDERR_FILENO, comm_deadline_line, (size_t)comm_deadline_length);
    (void)written;
    _exit(1);
}

static inline void comm_deadline_arm(double seconds, const char *what) {
    char rank[32] = "";
    if (error_rank >= 0) snprintf(rank, sizeof(rank), "rank %d: ", error_rank);
    int n = snprintf(comm_deadline_line, sizeof(comm_deadline_line),
                     "error: %s%s did not return in %.0f s (-ct): a rank is dead or hung; ending the job\n",
                     rank, what, seconds);
    comm_deadline_length = n;
    if (n >= (int)sizeof(comm_deadline_line)) {  // cut, still one line
        comm_deadline_length = (int)sizeof(comm_deadline_line) - 1;
        comm_deadline_line[comm_deadline_length - 1] = '\n';
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = comm_deadline_expired;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval t;
    memset(&t, 0, sizeof(t));
    t.it_value.tv_sec = (time_t)seconds;
    t.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_usec == 0) t.it_value.tv_usec = 1;
    if (setitimer(ITIMER_REAL, &t, NULL) != 0) fatal("setitimer for the deadline of %s failed", what);
}

static inline void comm_deadline_disarm(void) {
    struct itimerval t;
    memset(&t, 0, sizeof(t));
    setitimer(ITIMER_REAL, &t, NULL);
}

// The first of the environment variables `names` that is set, as an int in
// [lo, hi]; -1 when none is set. A malformed value is an error.
static inline int comm_env_int(const char *const *names, int count, int lo, int hi) {
    for (int i = 0; i < count; i++) {
        const char *v = getenv(names[i]);
        if (!v) continue;
        char *end;
        long x = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
            fatal("environment variable %s=%s is not a number in %d..%d", names[i], v, lo, hi);
        }
        return (int)x;
    }
    return -1;
}

// The number of ranks the launcher says it started: the first of mpirun's,
// MPICH Hydra's (or Slurm's PMI) and srun's variables that is set, named in
// *name (in that order: an srun step's count is stale for an mpirun run
// inside it); -1 when none is.
static inline int comm_launcher_size(const char **name) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (int i = 0; i < 3; i++) {
        int n = comm_env_int(vars + i, 1, 1, 1 << 20);
        if (n > 0) {
            *name = vars[i];
            return n;
        }
    }
    return -1;
}

static inline void comm_init_single(Comm *c) {
    memset(c, 0, sizeof(*c));
    c->world = 1;
    c->timeout_s = 60.0;
}

// Over MPI, when mpirun or srun started this process; else one rank.
static inline void comm_init(Comm *c, int *argc, char ***argv) {
    comm_init_single(c);
#ifdef USE_MPI
    if (!comm_launched()) return;
    MPI_Init(argc, argv);
    c->use_mpi = 1;
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    MPI_Comm_dup(MPI_COMM_WORLD, &c->probe_comm);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->world);
    // an MPI that cannot talk to the launcher starts each rank alone: N
    // copies of one training, all writing to -o
    const char *var = NULL;
    int launched = comm_launcher_size(&var);
    if (launched > 0 && launched != c->world) {
        fatal("%s says %d ranks, but MPI sees %d: start the ranks with this MPI's mpirun (or srun "
              "--mpi=pmix)", var, launched, c->world);
    }
    MPI_Comm node;
    MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_free(&node);
    if (c->world > 1) error_rank = c->rank;
#else
    (void)argc;
    (void)argv;
    const char *var = NULL;
    int size = comm_launcher_size(&var);
    if (size > 1) {
        fatal("started as one of %d ranks (%s), but this build has no MPI: install OpenMPI (make deps) "
              "and rebuild", size, var);
    }
#endif
}

// Without MPI: the ranks as given (llm.c's -pn ranks, -pr this rank, -pg
// GPUs per machine, the local rank then being rank % per_node; -1: not
// given) or else from the launcher's environment (OpenMPI's mpirun, Slurm's
// srun, or LLMC_RANK, LLMC_WORLD_SIZE, LLMC_LOCAL_RANK for any other). The
// caller must set ops before any collective of more than one rank.
static inline void comm_init_without_mpi(Comm *c, int world, int rank, int per_node) {
    comm_init_single(c);
    if ((world < 0) != (rank < 0)) fatal("-pn (ranks) and -pr (this rank) go together");
    if (world == 0 || per_node == 0) fatal("-pn and -pg count ranks and GPUs: at least 1 (or -1: from the environment)");
    const char *world_vars[] = {"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "LLMC_WORLD_SIZE"};
    const char *rank_vars[] = {"OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "LLMC_RANK"};
    const char *local_vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LLMC_LOCAL_RANK"};
    c->world = world >= 0 ? world : comm_env_int(world_vars, 3, 1, 1 << 20);
    c->rank = rank >= 0 ? rank : comm_env_int(rank_vars, 3, 0, 1 << 20);
    c->local_rank = per_node > 0 ? c->rank % per_node : comm_env_int(local_vars, 3, 0, 1 << 20);
    if (c->world < 0 || c->rank < 0) {
        fatal("without MPI, the ranks come from -pn and -pr or the environment: set LLMC_WORLD_SIZE and "
              "LLMC_RANK (or start them with mpirun or srun)");
    }
    if (c->rank >= c->world) fatal("rank %d is not below the number of ranks %d", c->rank, c->world);
    if (c->local_rank < 0 && c->world > 1) {  // (every rank on GPU 0 would hang NCCL)
        fatal("%d ranks without MPI: which GPU is rank %d's? Give -pg (GPUs per machine) or set LLMC_LOCAL_RANK",
              c->world, c->rank);
    }
    if (c->local_rank < 0) c->local_rank = 0;
    if (c->world > 1) error_rank = c->rank;
}

static inline void comm_finalize(Comm *c) {
#ifdef USE_MPI
    if (c->use_mpi) {
        MPI_Comm_free(&c->probe_comm);
        MPI_Comm_free(&c->comm);
        MPI_Finalize();
    }
#else
    (void)c;
#endif
}

// ----------------------------------------------------------------------------
// the watchdog (MPI)

#ifdef USE_MPI
#define COMM_TAG_QUESTION 7301
#define COMM_TAG_ANSWER 7302

// where a rank is, as the watchdog reports it
typedef struct {
    long long seq;
    int step;
    char what[52];
} CommWhere;

// Answers other ranks' watchdogs: "which collective are you waiting in?"
static inline void comm_answer_questions(Comm *c, long long seq, const char *what) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, COMM_TAG_QUESTION, c->probe_comm, &flag, &st);
        if (!flag) return;
        long long their_seq;
        MPI_Recv(&their_seq, 1, MPI_LONG_LONG, st.MPI_SOURCE, COMM_TAG_QUESTION, c->probe_comm,
                 MPI_STATUS_IGNORE);
        CommWhere w = {seq, c->step, ""};
        snprintf(w.what, sizeof(w.what), "%s", what);
        MPI_Send(&w, (int)sizeof(w), MPI_BYTE, st.MPI_SOURCE, COMM_TAG_ANSWER, c->probe_comm);
    }
}

// A collective timed out: asks every rank where it is (a few seconds for
// answers), prints what it learnt, and aborts the job.
static inline void comm_timed_out(Comm *c, const CommRequest *r) {
    MPI_Request *asked = (MPI_Request *)calloc_check((size_t)c->world, sizeof(MPI_Request));
    for (int q = 0; q < c->world; q++) {
        asked[q] = MPI_REQUEST_NULL;
        if (q != c->rank) MPI_Isend(&r->seq, 1, MPI_LONG_LONG, q, COMM_TAG_QUESTION, c->probe_comm, &asked[q]);
    }
    CommWhere *where = (CommWhere *)calloc_check((size_t)c->world, sizeof(CommWhere));
    for (int q = 0; q < c->world; q++) where[q].seq = -1;
    int answers = 0;
    double grace = c->timeout_s < 5.0 ? c->timeout_s : 5.0, t0 = comm_now();
    while (answers < c->world - 1 && comm_now() - t0 < grace) {
        comm_answer_questions(c, r->seq, r->what);
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, COMM_TAG_ANSWER, c->probe_comm, &flag, &st);
        if (!flag) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        MPI_Recv(&where[st.MPI_SOURCE], (int)sizeof(CommWhere), MPI_BYTE, st.MPI_SOURCE,
                 COMM_TAG_ANSWER, c->probe_comm, MPI_STATUS_IGNORE);
        answers++;
    }
    char msg[4096];
    int len = snprintf(msg, sizeof(msg),
                       "error: rank %d: %s (collective #%lld, step %d) did not complete in %.0f s "
                       "(-ct);",
                       c->rank, r->what, r->seq, c->step, c->timeout_s);
    for (int q = 0; q < c->world && len < (int)sizeof(msg) - 200; q++) {
        if (q == c->rank) continue;
        if (where[q].seq < 0) {
            len += snprintf(msg + len, sizeof(msg) - len,
                            " rank %d does not answer (dead, or hung outside communication);", q);
        } else if (where[q].seq != r->seq) {
            where[q].what[sizeof(where[q].what) - 1] = '\0';
            len += snprintf(msg + len, sizeof(msg) - len, " rank %d waits in %s (#%lld, step %d);",
                            q, where[q].what, where[q].seq, where[q].step);
        }
    }
    fprintf(stderr, "%s ending the job\n", msg);
    fflush(stderr);
    free(where);
    free(asked);  // (questions to dead ranks stay pending: the job ends now)
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);  // not reached
}
#endif

// Waits for a collective to complete, or ends the job after the timeout.
static inline void comm_wait(Comm *c, CommRequest *r) {
#ifdef USE_MPI
    if (!c->use_mpi || c->world == 1) return;  // (then nothing was started)
    double t0 = comm_now();
    for (long polls = 0;; polls++) {
        int done = 0;
        MPI_Test(&r->req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        comm_answer_questions(c, r->seq, r->what);
        if (comm_now() - t0 > c->timeout_s) comm_timed_out(c, r);
        // spin briefly, then sleep: ranks may share cores with each other
        struct timespec ts = {0, polls < 1000 ? 0 : 100000};
        nanosleep(&ts, NULL);
    }
#else
    (void)c;
    (void)r;
#endif
}

// Lets in-flight collectives advance (MPI moves non-blocking operations
// only inside MPI calls): a cheap call between pieces of compute.
static inline void comm_progress(Comm *c, CommRequest *reqs, int n) {
#ifdef USE_MPI
    if (!c->use_mpi || c->world == 1) return;
    for (int i = 0; i < n; i++) {
        int done;
        MPI_Test(&reqs[i].req, &done, MPI_STATUS_IGNORE);
    }
#else
    (void)c, (void)reqs, (void)n;
#endif
}

static inline CommRequest comm_begin(Comm *c, const char *what) {
    CommRequest r;
    memset(&r, 0, sizeof(r));
    r.seq = ++c->seq;
    r.what = what;
    return r;
}

// MPI counts are int: one collective moves at most this many elements
#define COMM_MAX_COUNT (1 << 30)

static inline int comm_count(size_t n, const char *what) {
    if (n > COMM_MAX_COUNT) fatal("%s: %zu elements is more than one collective moves", what, n);
    return (int)n;
}

// Whether this collective goes over MPI: 0 with one rank (nothing to do)
static inline int comm_mpi(const Comm *c, const char *what) {
    if (c->world == 1) return 0;
    if (!c->use_mpi) fatal("%s: the ranks have no MPI between them", what);
    return 1;
}

// ----------------------------------------------------------------------------
// the collectives

// buf (n,) = the sum over ranks, in place. fp32.
static inline void comm_allreduce_sum_f32(Comm *c, float *buf, size_t n, const char *what) {
#ifdef USE_MPI
    if (!comm_mpi(c, what)) return;
    for (size_t done = 0; done < n; done += COMM_MAX_COUNT) {
        size_t k = n - done < COMM_MAX_COUNT ? n - done : COMM_MAX_COUNT;
        CommRequest r = comm_begin(c, what);
        MPI_Iallreduce(MPI_IN_PLACE, buf + done, (int)k, MPI_FLOAT, MPI_SUM, c->comm, &r.req);
        comm_wait(c, &r);
    }
#else
    (void)c, (void)buf, (void)n, (void)what;
#endif
}

// buf (n,) = the sum over ranks, in place. fp64, for losses and norms.
static inline void comm_allreduce_sum_f64(Comm *c, double *buf, int n, const char *what) {
    if (c->world > 1 && c->ops) {
        c->ops->allreduce_sum_f64(c->ops_ctx, buf, n, what);
        return;
    }
#ifdef USE_MPI
    if (!comm_mpi(c, what)) return;
    CommRequest r = comm_begin(c, what);
    MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, c->comm, &r.req);
    comm_wait(c, &r);
#else
    (void)c, (void)buf, (void)n, (void)what;
#endif
}

// recv (world, bytes) = every rank's send (bytes), in rank order.
static inline void comm_allgather_bytes(Comm *c, const void *send, void *recv, size_t bytes,
                                        const char *what) {
    if (c->world > 1 && c->ops) {
        c->ops->allgather_bytes(c->ops_ctx, send, recv, bytes, what);
        return;
    }
#ifdef USE_MPI
    if (comm_mpi(c, what)) {
        CommRequest r = comm_begin(c, what);
        MPI_Iallgather(send, comm_count(bytes, what), MPI_BYTE, recv, (int)bytes, MPI_BYTE, c->comm,
                       &r.req);
        comm_wait(c, &r);
        return;
    }
#endif
    (void)what;
    memcpy(recv, send, bytes);
    (void)c;
}

// buf (bytes) = rank root's buf, on every rank.
static inline void comm_broadcast_bytes(Comm *c, void *buf, size_t bytes, int root, const char *what) {
#ifdef USE_MPI
    if (!comm_mpi(c, what)) return;
    CommRequest r = comm_begin(c, what);
    MPI_Ibcast(buf, comm_count(bytes, what), MPI_BYTE, root, c->comm, &r.req);
    comm_wait(c, &r);
#else
    (void)c, (void)buf, (void)bytes, (void)root, (void)what;
#endif
}

static inline void comm_barrier(Comm *c, const char *what);

// A barrier after file writes (checkpoints), which may take minutes on a
// slow filesystem: ten times the timeout.
static inline void comm_barrier_after_io(Comm *c, const char *what) {
    double timeout = c->timeout_s;
    c->timeout_s = 10.0 * timeout;
    comm_barrier(c, what);
    c->timeout_s = timeout;
}

static inline void comm_barrier(Comm *c, const char *what) {
    if (c->world > 1 && c->ops) {
        c->ops->barrier(c->ops_ctx, what);
        return;
    }
#ifdef USE_MPI
    if (!comm_mpi(c, what)) return;
    CommRequest r = comm_begin(c, what);
    MPI_Ibarrier(c->comm, &r.req);
    comm_wait(c, &r);
#else
    (void)c, (void)what;
#endif
}

// Starts: recv (slice,) = the sum over ranks of send's rank-th slice; send
// (world * slice,) is one padded ZeRO unit. comm_wait completes it.
static inline CommRequest comm_reduce_scatter_f32(Comm *c, const float *send, float *recv,
                                                  size_t slice, const char *what) {
    CommRequest r = comm_begin(c, what);
#ifdef USE_MPI
    if (comm_mpi(c, what)) {
        MPI_Ireduce_scatter_block(send, recv, comm_count(slice, what), MPI_FLOAT, MPI_SUM, c->comm,
                                  &r.req);
        return r;
    }
#endif
    memcpy(recv, send, slice * sizeof(float));
    return r;
}

// Starts: buf (world * slice,) gets every rank's slice, in place (this
// rank's is already at rank * slice). comm_wait completes it.
static inline CommRequest comm_all_gather_f32(Comm *c, float *buf, size_t slice, const char *what) {
    CommRequest r = comm_begin(c, what);
#ifdef USE_MPI
    if (comm_mpi(c, what)) {
        MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, comm_count(slice, what), MPI_FLOAT,
                       c->comm, &r.req);
        return r;
    }
#endif
    (void)buf, (void)slice;
    return r;
}

// Elements of rank q's slice of an unpadded unit of n elements
static inline size_t comm_slice_length(size_t n, size_t slice, int q) {
    size_t start = (size_t)q * slice;
    return start >= n ? 0 : (n - start < slice ? n - start : slice);
}

// Rank q's part [*lo, *hi) of the range [a, b) of an unpadded unit of n
// elements: where the range meets q's slice (*lo == *hi: none of it)
static inline void comm_range_part(size_t n, size_t slice, size_t a, size_t b, int q, size_t *lo,
                                   size_t *hi) {
    size_t s0 = (size_t)q * slice, s1 = s0 + comm_slice_length(n, slice, q);
    *lo = a > s0 ? a : s0;
    *hi = b < s1 ? b : s1;
    if (*hi < *lo) *hi = *lo;
}

#ifdef USE_MPI
// counts, displs (world,): every rank's part of the range [a, b) of an
// unpadded unit of n elements, relative to a
static inline void comm_range_counts(const Comm *c, size_t n, size_t slice, size_t a, size_t b,
                                     int *counts, int *displs, const char *what) {
    for (int q = 0; q < c->world; q++) {
        size_t lo, hi;
        comm_range_part(n, slice, a, b, q, &lo, &hi);
        counts[q] = comm_count(hi - lo, what);
        displs[q] = counts[q] ? comm_count(lo - a, what) : 0;
    }
}
#endif

// Starts: buf (b - a,) gets the elements [a, b) of an unpadded unit of n
// elements whose rank q's slice is [q * slice, min((q + 1) * slice, n)):
// every rank sends its part (this rank's is already in place). counts,
// displs (world,) stay in use until comm_wait completes it.
static inline CommRequest comm_all_gather_range_f32(Comm *c, float *buf, size_t n, size_t slice,
                                                    size_t a, size_t b, int *counts, int *displs,
                                                    const char *what) {
    CommRequest r = comm_begin(c, what);
#ifdef USE_MPI
    if (comm_mpi(c, what)) {
        comm_range_counts(c, n, slice, a, b, counts, displs, what);
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, c->comm,
                        &r.req);
        return r;
    }
#endif
    (void)buf, (void)n, (void)slice, (void)a, (void)b, (void)counts, (void)displs;
    return r;
}

// Starts: the whole unpadded unit, buf (n,), gathered the same way
static inline CommRequest comm_all_gather_unpadded_f32(Comm *c, float *buf, size_t n, size_t slice,
                                                       int *counts, int *displs, const char *what) {
    return comm_all_gather_range_f32(c, buf, n, slice, 0, n, counts, displs, what);
}

// Starts: recv (this rank's part of the range [a, b) of such a unit,) = the
// sum over ranks of that part of their send (b - a,), the range's values.
// counts (world,) stays in use until comm_wait completes it.
static inline CommRequest comm_reduce_scatter_range_f32(Comm *c, const float *send, float *recv,
                                                        size_t n, size_t slice, size_t a, size_t b,
                                                        int *counts, const char *what) {
    CommRequest r = comm_begin(c, what);
#ifdef USE_MPI
    if (comm_mpi(c, what)) {
        for (int q = 0; q < c->world; q++) {  // (the parts follow each other in rank order)
            size_t lo, hi;
            comm_range_part(n, slice, a, b, q, &lo, &hi);
            counts[q] = comm_count(hi - lo, what);
        }
        MPI_Ireduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, c->comm, &r.req);
        return r;
    }
#endif
    (void)n, (void)slice, (void)counts;
    memcpy(recv, send, (b - a) * sizeof(float));
    return r;
}

// The same as comm_all_gather_unpadded_f32, to rank 0 only: rank 0's buf
// (n,) gets every rank's slice, sent from `send` (slice,).
static inline CommRequest comm_gather_unpadded_f32(Comm *c, const float *send, float *buf, size_t n,
                                                   size_t slice, int *counts, int *displs,
                                                   const char *what) {
    CommRequest r = comm_begin(c, what);
    size_t own = comm_slice_length(n, slice, c->rank);
#ifdef USE_MPI
    if (comm_mpi(c, what)) {
        comm_range_counts(c, n, slice, 0, n, counts, displs, what);
        MPI_Igatherv(send, (int)own, MPI_FLOAT, buf, counts, displs, MPI_FLOAT, 0, c->comm, &r.req);
        return r;
    }
#endif
    (void)counts, (void)displs;
    memcpy(buf, send, own * sizeof(float));
    return r;
}

#endif  // LLMC_COMM_H
