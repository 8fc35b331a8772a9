/*
 * dev/cpu/bench_gemm.c: times llmc/gemm.h on the CPU trainer's matmul shapes and,
 * in the same run, PyTorch's CPU matmul on the same shapes (via
 * dev/cpu/bench_gemm_torch.py), then prints GFLOP/s for both and their ratio.
 *
 * Shapes: GPT-2 124M at B*T = 256 tokens, C = 768, for OC in {2304 (qkv),
 * 768 (attention projection), 3072 (MLP fc), 50304 (lm head)}, plus the MLP
 * projection (C = 3072 -> OC = 768); and the quickstart's classifier (d1:
 * C = 64, B*T = 512), whose K = 64 leaves little work per packed block; for
 * each, the forward, dinp and dweight calls. PyTorch runs in a helper process
 * that stays up; shape by shape the two libraries take turns for several
 * rounds, so that both see the same load on a shared machine. Each number is
 * the median of all timed runs of that shape; "overall" divides all the flops
 * by the sum of the medians. It ends by saying how much CPU other processes
 * took meanwhile, since that skews the numbers. No assertion on time: it
 * reports, it does not judge.
 *
 * Built with -DBENCH_GEMM_REV (make bench-gemm-rev REV=...), the baseline is
 * not PyTorch but llmc/gemm.h as it was at a git revision, linked in under
 * another name (dev/cpu/gemm_rev.c): two versions of our gemm taking turns in
 * one process, the way to see a change of a few percent on a noisy machine.
 *
 * usage: bench_gemm [-t threads] [-r rounds] [-n reps] [-p python] [-s name]   (make bench-gemm)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../llmc/gemm.h"
#include "../../llmc/utils.h"

#define BENCH_BT 256  // B*T tokens per step (B=4, T=64)
#define BENCH_BT_D1 512  // the quickstart's B*T (B=8, T=64)
#define BENCH_MAX_SHAPES 24
#define BENCH_MAX_SAMPLES 256
// pause before each turn: after a call, OpenBLAS's threads keep spinning for
// tens of ms and OpenMP's for a few; they would steal the other side's cores
#define BENCH_PAUSE_US 200000

typedef struct {
    char name[32];
    int ta, tb, M, N, K;
    float beta;
    double ours[BENCH_MAX_SAMPLES], base[BENCH_MAX_SAMPLES];  // seconds per call; base: the baseline's
    int n_ours, n_base;
} Shape;

typedef void GemmFn(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc);
#ifdef BENCH_GEMM_REV
GemmFn gemm_rev;  // llmc/gemm.h of another revision (dev/cpu/gemm_rev.c)
#endif

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// adds the trainer's three calls for one linear layer C -> OC
static void add_layer(Shape *s, int *n, const char *layer, int BT, int C, int OC) {
    Shape fwd = {.ta = 0, .tb = 1, .M = BT, .N = OC, .K = C, .beta = 0.0f};
    Shape dinp = {.ta = 0, .tb = 0, .M = BT, .N = C, .K = OC, .beta = 1.0f};
    Shape dw = {.ta = 1, .tb = 0, .M = OC, .N = C, .K = BT, .beta = 1.0f};
    snprintf(fwd.name, sizeof(fwd.name), "%s fwd", layer);
    snprintf(dinp.name, sizeof(dinp.name), "%s dinp", layer);
    snprintf(dw.name, sizeof(dw.name), "%s dW", layer);
    s[(*n)++] = fwd;
    s[(*n)++] = dinp;
    s[(*n)++] = dw;
}

static void fill_random(float *x, size_t n, unsigned *seed) {
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        x[i] = (float)((*seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
}

// times `reps` runs of f (after one warm-up) on one shape's matrices, into samples[*n...]
static void time_gemm(GemmFn *f, const Shape *s, const float *A, const float *B, float *C, int reps,
                      double *samples, int *n) {
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    f(s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, s->beta, C, s->N);  // warm-up
    for (int r = 0; r < reps && *n < BENCH_MAX_SAMPLES; r++) {
        double t0 = now_seconds();
        f(s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, s->beta, C, s->N);
        samples[(*n)++] = now_seconds() - t0;
    }
}

// the PyTorch side: a child process that serves timing requests over pipes
typedef struct {
    pid_t pid;
    FILE *to, *from;
} Torch;

// the helper script lives next to this program's source: dev/cpu/bench_gemm_torch.py
static void torch_start(Torch *t, const char *python, const char *script, int threads) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        fatal("pipe failed: %s", strerror(errno));
    }
    char nthreads[16];
    snprintf(nthreads, sizeof(nthreads), "%d", threads);
    t->pid = fork();
    if (t->pid < 0) {
        fatal("fork failed: %s", strerror(errno));
    }
    if (t->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        setenv("OMP_NUM_THREADS", nthreads, 1);
        setenv("OPENBLAS_NUM_THREADS", nthreads, 1);
        execl(python, python, script, nthreads, (char *)NULL);
        fprintf(stderr, "error: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->to = fdopen(in[1], "w");
    t->from = fdopen(out[0], "r");
    char ready[16];
    if (t->to == NULL || t->from == NULL || fscanf(t->from, "%15s", ready) != 1 ||
        strcmp(ready, "ready") != 0) {
        fatal("PyTorch helper (%s %s) did not start", python, script);
    }
}

static void time_torch(Torch *t, Shape *s, int reps) {
    fprintf(t->to, "%d %d %d %d %d %d %d\n", s->ta, s->tb, s->M, s->N, s->K, (int)s->beta, reps);
    fflush(t->to);
    for (int r = 0; r < reps; r++) {
        double x;
        if (fscanf(t->from, "%lf", &x) != 1) {
            fatal("PyTorch helper stopped answering (shape %s)", s->name);
        }
        if (s->n_base < BENCH_MAX_SAMPLES) {
            s->base[s->n_base++] = x;
        }
    }
}

static void torch_stop(Torch *t) {
    fclose(t->to);
    fclose(t->from);
    int status;
    if (waitpid(t->pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fatal("PyTorch helper failed");
    }
}

// busy and total CPU seconds of the whole machine so far (all CPUs), from /proc/stat;
// returns 0 where that is missing
static int machine_cpu_seconds(double *busy, double *total) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        return 0;
    }
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got != 8) {
        return 0;
    }
    double tick = 1.0 / (double)sysconf(_SC_CLK_TCK);
    // user nice system idle iowait irq softirq steal
    *total = (double)(v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]) * tick;
    *busy = *total - (double)(v[3] + v[4]) * tick;
    return 1;
}

// CPU seconds used by this process and its waited-for children (the PyTorch helper)
static double own_cpu_seconds(void) {
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    return self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
           kids.ru_stime.tv_sec +
           (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
            kids.ru_stime.tv_usec) * 1e-6;
}

static int parse_int(const char *flag, const char *v, int lo, int hi) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
        fatal("%s wants an integer in [%d, %d], got '%s'", flag, lo, hi, v);
    }
    return (int)x;
}

static void usage(void) {
    printf("usage: bench_gemm [-t threads] [-r rounds] [-n reps] [-p python] [-s name]\n"
           "  -t threads  threads for both libraries (default 2)\n"
           "  -r rounds   turns each library takes per shape, alternating (default 5)\n"
           "  -n reps     timed runs per turn (default 5)\n"
           "  -p python   interpreter with torch, or 'none' to skip PyTorch (default /usr/bin/python3;\n"
           "              a -DBENCH_GEMM_REV build compares with another revision's gemm instead)\n"
           "  -s name     only the shapes whose name contains this, e.g. 'lmhead' or 'dW'\n");
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 5, reps = 5;
    const char *python = "/usr/bin/python3";
    const char *select = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        }
        if (i + 1 >= argc) {
            usage();
            fatal("unknown flag or missing value: '%s'", argv[i]);
        }
        if (strcmp(argv[i], "-t") == 0) {
            threads = parse_int("-t", argv[++i], 1, 1024);
        } else if (strcmp(argv[i], "-r") == 0) {
            rounds = parse_int("-r", argv[++i], 1, 100);
        } else if (strcmp(argv[i], "-n") == 0) {
            reps = parse_int("-n", argv[++i], 1, 100);
        } else if (strcmp(argv[i], "-p") == 0) {
            python = argv[++i];
        } else if (strcmp(argv[i], "-s") == 0) {
            select = argv[++i];
        } else {
            usage();
            fatal("unknown flag: '%s'", argv[i]);
        }
    }
    if (rounds * reps > BENCH_MAX_SAMPLES) {
        fatal("rounds * reps must be at most %d", BENCH_MAX_SAMPLES);
    }
#ifdef BENCH_GEMM_REV
    const char *base_name = "rev";
    int use_torch = 0, use_base = 1;
#else
    const char *base_name = "torch";
    int use_torch = strcmp(python, "none") != 0, use_base = use_torch;
#endif
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    if (threads != 1) {
        printf("built without OpenMP: ours runs on 1 thread\n");
    }
#endif

    static Shape shapes[BENCH_MAX_SHAPES];
    int n = 0;
    add_layer(shapes, &n, "qkv 768->2304", BENCH_BT, 768, 2304);
    add_layer(shapes, &n, "attproj 768->768", BENCH_BT, 768, 768);
    add_layer(shapes, &n, "fc 768->3072", BENCH_BT, 768, 3072);
    add_layer(shapes, &n, "fcproj 3072->768", BENCH_BT, 3072, 768);
    add_layer(shapes, &n, "lmhead 768->50304", BENCH_BT, 768, 50304);
    add_layer(shapes, &n, "d1 lmhead 64->50304", BENCH_BT_D1, 64, 50304);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (strstr(shapes[i].name, select) != NULL) {
            shapes[kept++] = shapes[i];
        }
    }
    n = kept;
    if (n == 0) {
        fatal("no shape name contains '%s'", select);
    }

    const char *wait_policy = getenv("OMP_WAIT_POLICY");
    printf("gemm bench: B*T=%d (d1: %d), %d threads, %d rounds x %d reps, tile %dx%d, KC=%d, "
           "OMP_WAIT_POLICY=%s\n", BENCH_BT, BENCH_BT_D1, threads, rounds, reps, GEMM_MR, GEMM_NR, GEMM_KC,
           wait_policy ? wait_policy : "(unset)");
    double busy0 = 0, total0 = 0, own0 = own_cpu_seconds();
    int have_stat = machine_cpu_seconds(&busy0, &total0);
    Torch torch = {0};
    if (use_torch) {
        signal(SIGPIPE, SIG_IGN);  // a helper that dies shows up as a failed read, with a message
        // bench_gemm_torch.py sits in the directory of this binary
        char script[4096];
        const char *slash = strrchr(argv[0], '/');
        int dir_len = slash ? (int)(slash - argv[0]) + 1 : 0;
        snprintf(script, sizeof(script), "%.*sbench_gemm_torch.py", dir_len, argv[0]);
        torch_start(&torch, python, script, threads);
    }
    // shape by shape, the two take turns `rounds` times, so both see the same load (with
    // PyTorch, a pause before each turn: see BENCH_PAUSE_US)
    for (int i = 0; i < n; i++) {
        Shape *s = &shapes[i];
        size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
        float *A = alloc_floats(na), *B = alloc_floats(nb), *C = alloc_floats(nc);
        unsigned seed = 42;
        fill_random(A, na, &seed);
        fill_random(B, nb, &seed);
        for (int r = 0; r < rounds; r++) {
            if (use_torch) {
                usleep(BENCH_PAUSE_US);
            }
            time_gemm(gemm, s, A, B, C, reps, s->ours, &s->n_ours);
            if (use_torch) {
                usleep(BENCH_PAUSE_US);
                time_torch(&torch, s, reps);
            }
#ifdef BENCH_GEMM_REV
            time_gemm(gemm_rev, s, A, B, C, reps, s->base, &s->n_base);
#endif
        }
        free(A);
        free(B);
        free(C);
    }
    if (use_torch) {
        torch_stop(&torch);
    }

    printf("%-26s %5s %6s %6s %6s %9s %9s %7s\n", "shape", "op", "M", "N", "K", "ours", base_name,
           "ratio");
    double t_ours = 0, t_base = 0, flops_total = 0;
    for (int i = 0; i < n; i++) {
        Shape *s = &shapes[i];
        double flops = 2.0 * s->M * s->N * s->K;
        double mo = median(s->ours, s->n_ours);
        t_ours += mo;
        flops_total += flops;
        char op[8];
        snprintf(op, sizeof(op), "%c%c", s->ta ? 'T' : 'N', s->tb ? 'T' : 'N');
        if (use_base) {
            double mt = median(s->base, s->n_base);
            t_base += mt;
            printf("%-26s %5s %6d %6d %6d %9.1f %9.1f %7.3f\n", s->name, op, s->M, s->N, s->K,
                   flops / mo * 1e-9, flops / mt * 1e-9, mt / mo);
        } else {
            printf("%-26s %5s %6d %6d %6d %9.1f\n", s->name, op, s->M, s->N, s->K, flops / mo * 1e-9);
        }
    }
    if (use_base) {
        printf("%-26s %5s %6s %6s %6s %9.1f %9.1f %7.3f\n", "overall (by total time)", "", "", "",
               "", flops_total / t_ours * 1e-9, flops_total / t_base * 1e-9, t_base / t_ours);
    } else {
        printf("%-26s %5s %6s %6s %6s %9.1f\n", "overall (by total time)", "", "", "", "",
               flops_total / t_ours * 1e-9);
    }
    printf("GFLOP/s; ratio = ours/%s in speed (> 1: ours faster)\n", base_name);
    double busy1, total1;
    if (have_stat && machine_cpu_seconds(&busy1, &total1) && total1 > total0) {
        // other processes on the machine skew both columns (ours more): say how busy it was
        double others = (busy1 - busy0 - (own_cpu_seconds() - own0)) / (total1 - total0);
        others = others < 0 ? 0 : others;
        printf("other processes used %.0f%% of the machine's CPU time during the run\n",
               100 * others);
        if (others > 0.1 && wait_policy == NULL) {
            // measured with a busy loop on one of 2 cores: ours 0.24-0.9x torch on the
            // smaller shapes under the default policy, 0.98-1.27x with passive
            printf("note: OpenMP's default spin-waiting leaves a thread queued behind other\n"
                   "processes, so ours suffers more than OpenBLAS; try OMP_WAIT_POLICY=passive\n");
        }
    }
    return 0;
}
