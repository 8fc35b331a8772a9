/*
 * utils.h: checked I/O and allocation, fatal errors that name file:line.
 *
 * The project's fallible libc calls go through these helpers (the few that
 * do not check their result themselves, on the spot).
 * On failure they print one line to stderr naming the call, the caller's
 * file:line and the cause, then exit(1). Nothing here uses assert(): release
 * builds keep every check.
 *
 * Files that must survive a crash (checkpoints, state) are written through
 * atomic_open/atomic_commit: data goes to "<path>.tmp", is fsync'ed, then
 * renamed over <path>, so a crash leaves either the old or the new file.
 */
#ifndef LLMC_UTILS_H
#define LLMC_UTILS_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// fatal errors

// in a run of several ranks, errors name the rank (set by llmc/comm.h)
static int error_rank = -1;

// printf-style one-line error on stderr, then exit(1)
static inline void fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
static inline void fatal_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    if (error_rank >= 0) fprintf(stderr, "rank %d: ", error_rank);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    va_end(ap);
    fflush(stdout);
    exit(1);
}
#define fatal(...) fatal_at(__FILE__, __LINE__, __VA_ARGS__)

// ----------------------------------------------------------------------------
// checked file I/O

// Every file opened through here is a regular file: anything else at the path
// is refused before the open (a FIFO would block it forever, a folder fail
// later with a worse message).
static inline FILE *fopen_check_at(const char *path, const char *mode, const char *file, int line) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fatal_at(file, line, "cannot open '%s': not a regular file", path);
    }
    FILE *f = fopen(path, mode);
    if (f == NULL) {
        fatal_at(file, line, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    }
    return f;
}
#define fopen_check(path, mode) fopen_check_at(path, mode, __FILE__, __LINE__)

// reads exactly n items or fails naming what was short; `what` names the data
static inline void fread_check_at(void *ptr, size_t size, size_t n, FILE *f, const char *what,
                                  const char *file, int line) {
    size_t got = fread(ptr, size, n, f);
    if (got != n) {
        if (ferror(f)) {
            fatal_at(file, line, "read error in %s: %s", what, strerror(errno));
        }
        fatal_at(file, line, "%s is truncated: expected %zu bytes, got %zu", what, size * n,
                 size * got);
    }
}
#define fread_check(ptr, size, n, f, what) fread_check_at(ptr, size, n, f, what, __FILE__, __LINE__)

static inline void fwrite_check_at(const void *ptr, size_t size, size_t n, FILE *f, const char *file,
                                   int line) {
    if (fwrite(ptr, size, n, f) != n) {
        fatal_at(file, line, "write failed: %s", strerror(errno));
    }
}
#define fwrite_check(ptr, size, n, f) fwrite_check_at(ptr, size, n, f, __FILE__, __LINE__)

static inline void fseek_check_at(FILE *f, long long off, int whence, const char *file, int line) {
    if (fseeko(f, (off_t)off, whence) != 0) {
        fatal_at(file, line, "seek failed: %s", strerror(errno));
    }
}
#define fseek_check(f, off, whence) fseek_check_at(f, off, whence, __FILE__, __LINE__)

static inline void fclose_check_at(FILE *f, const char *file, int line) {
    if (fclose(f) != 0) {
        fatal_at(file, line, "close failed: %s", strerror(errno));
    }
}
#define fclose_check(f) fclose_check_at(f, __FILE__, __LINE__)

// size of an open file in bytes
static inline long long file_size_of(FILE *f) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fatal("fstat failed: %s", strerror(errno));
    }
    return (long long)st.st_size;
}

// ----------------------------------------------------------------------------
// atomic file replacement: write <path>.tmp, fsync, rename over <path>

typedef struct {
    FILE *f;
    char final_path[4096];
    char tmp_path[4100];
} AtomicFile;

static inline void atomic_open(AtomicFile *af, const char *path) {
    if (strlen(path) >= sizeof(af->final_path)) {
        fatal("path too long: '%.64s...'", path);
    }
    strcpy(af->final_path, path);
    snprintf(af->tmp_path, sizeof(af->tmp_path), "%s.tmp", path);
    // a new file, not the old one truncated: a leftover .tmp may be mapped
    // or open elsewhere (./tokenize reading its own output folder)
    if (unlink(af->tmp_path) != 0 && errno != ENOENT) {
        fatal("cannot remove '%s': %s", af->tmp_path, strerror(errno));
    }
    af->f = fopen_check(af->tmp_path, "wb");
}

static inline void atomic_commit(AtomicFile *af) {
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) {
        fatal("cannot flush '%s': %s", af->tmp_path, strerror(errno));
    }
    fclose_check(af->f);
    af->f = NULL;
    if (rename(af->tmp_path, af->final_path) != 0) {
        fatal("cannot rename '%s' to '%s': %s", af->tmp_path, af->final_path, strerror(errno));
    }
}

// ----------------------------------------------------------------------------
// checked allocation

static inline void *malloc_check_at(size_t size, const char *file, int line) {
    void *p = malloc(size);
    if (p == NULL && size > 0) {
        fatal_at(file, line, "out of memory allocating %zu bytes", size);
    }
    return p;
}
#define malloc_check(size) malloc_check_at(size, __FILE__, __LINE__)

static inline void *calloc_check_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n, size);
    if (p == NULL && n > 0 && size > 0) {
        fatal_at(file, line, "out of memory allocating %zu x %zu bytes", n, size);
    }
    return p;
}
#define calloc_check(n, size) calloc_check_at(n, size, __FILE__, __LINE__)

// 64-byte aligned, zeroed: for the big parameter/gradient/activation buffers
static inline float *alloc_floats_at(size_t n, const char *file, int line) {
    void *p = NULL;
    size_t bytes = ((n * sizeof(float)) + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes == 0 ? 64 : bytes) != 0) {
        fatal_at(file, line, "out of memory allocating %zu floats", n);
    }
    memset(p, 0, bytes);
    return (float *)p;
}
#define alloc_floats(n) alloc_floats_at(n, __FILE__, __LINE__)

// ----------------------------------------------------------------------------
// checked environment

// libgomp reads OMP_NUM_THREADS as the program loads and trusts it: 2^31
// becomes -2^31 threads, 10^8 a crash at the first parallel region. Checked
// before that region: a thread count in 1..4096, or a comma-separated list of
// them (one per nesting level, as OpenMP allows), spaces around each allowed;
// empty is unset, as for libgomp.
static inline void check_omp_num_threads(void) {
    const char *v = getenv("OMP_NUM_THREADS");
    if (v == NULL || v[strspn(v, " \t")] == '\0') return;
    for (const char *p = v;; p++) {  // (the loop steps over the comma)
        p += strspn(p, " \t");
        char *end = (char *)p;
        long n = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : 0;
        end += strspn(end, " \t");
        if (n < 1 || n > 4096 || (*end != ',' && *end != '\0')) {
            fatal("environment variable OMP_NUM_THREADS=%s is not a thread count in 1..4096", v);
        }
        if (*end == '\0') return;
        p = end;
    }
}

#endif  // LLMC_UTILS_H
