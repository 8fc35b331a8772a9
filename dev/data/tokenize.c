/*
 * tokenize: text in, GPT-2 token ids or llm.c token shards out.
 *
 *   ./tokenize -o OUTDIR [--name NAME] [--val-docs N | --val-fraction F] INPUT...
 *   ./tokenize --ids [--allow-special] < text.txt      (ids, space-separated)
 *   ./tokenize --decode < ids.txt                       (ids back to text)
 *
 * Shards: each INPUT is a text file or a folder (its files in name order,
 * subfolders included); each file is a document, or several with --split-on.
 * Every document is preceded by <|endoftext|> (llm.c's convention), goes
 * whole to train or to val, and shards hold at most --shard-tokens tokens:
 * OUTDIR/NAME_val_000000.bin, OUTDIR/NAME_train_000000.bin, ... in llm.c's
 * shard format, each written atomically; stale shards of an earlier run with
 * a higher index are removed.
 *
 * Threads (OpenMP) encode chunks of a batch in parallel and the main thread
 * writes them in input order, so the output is the same for any thread count.
 * A document longer than a chunk is cut only where the pre-split pattern is
 * certain to cut too: after a "\n" that has a printable ASCII byte on each
 * side (no piece spans it, and the pieces on each side do not look across).
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../llmc/tokenizer.h"

#define CHUNK_BYTES (1 << 20)       // a thread's unit of work
#define BATCH_BYTES (32 << 20)      // encoded in parallel, then written in order
#define BATCH_CHUNKS 4096
#define DEFAULT_SHARD_TOKENS 100000000LL
#define DEFAULT_VAL_FRACTION 0.1

// ----------------------------------------------------------------------------
// command line: one table drives parsing and --help

typedef struct {
    const char *out_dir, *name, *vocab, *merges, *split_on;
    int ids, decode, allow_special, quiet, time, help;
    long long val_docs, shard_tokens, threads;
    double val_fraction;
    int val_docs_set, val_fraction_set;
} Options;

typedef enum { FLAG_BOOL, FLAG_STR, FLAG_INT, FLAG_REAL } FlagKind;

typedef struct {
    const char *short_name, *long_name;
    FlagKind kind;
    void *dest;
    int *set;            // set to 1 when the flag is given (may be NULL)
    double lo, hi;       // range of FLAG_INT / FLAG_REAL values
    const char *meta, *help;
} Flag;

#define N_FLAGS 15

static void flag_table(Options *o, Flag *f) {
    Flag t[N_FLAGS] = {
        {"-o", "--output", FLAG_STR, &o->out_dir, NULL, 0, 0, "DIR",
         "write train/val shards into DIR (created if missing)"},
        {NULL, "--name", FLAG_STR, &o->name, NULL, 0, 0, "NAME",
         "shard name prefix (default: the last part of DIR)"},
        {NULL, "--val-docs", FLAG_INT, &o->val_docs, &o->val_docs_set, 0, 1e15, "N",
         "the first N documents are validation (instead of --val-fraction)"},
        {NULL, "--val-fraction", FLAG_REAL, &o->val_fraction, &o->val_fraction_set, 0, 1, "F",
         "a fraction F of the documents, spread evenly, are validation"},
        {NULL, "--split-on", FLAG_STR, &o->split_on, NULL, 0, 0, "LINE",
         "a line equal to LINE separates documents within a file"},
        {NULL, "--shard-tokens", FLAG_INT, &o->shard_tokens, NULL, 1, 2147483647.0, "N",
         "tokens per shard at most"},
        {"-t", "--threads", FLAG_INT, &o->threads, NULL, 1, 1024, "N",
         "encoding threads (default: all cores)"},
        {NULL, "--ids", FLAG_BOOL, &o->ids, NULL, 0, 0, NULL,
         "print the token ids of standard input, space-separated, on one line"},
        {NULL, "--decode", FLAG_BOOL, &o->decode, NULL, 0, 0, NULL,
         "read token ids from standard input and print their text"},
        {NULL, "--allow-special", FLAG_BOOL, &o->allow_special, NULL, 0, 0, NULL,
         "<|endoftext|> in the text becomes the EOT token (default: ordinary text)"},
        {NULL, "--vocab", FLAG_STR, &o->vocab, NULL, 0, 0, "FILE",
         "tokenizer file (default build/gpt2_tokenizer.bin)"},
        {NULL, "--merges", FLAG_STR, &o->merges, NULL, 0, 0, "FILE",
         "merges file (default build/gpt2_merges.bin)"},
        {NULL, "--time", FLAG_BOOL, &o->time, NULL, 0, 0, NULL,
         "with --ids: print the encoding time and MB/s on stderr"},
        {"-q", "--quiet", FLAG_BOOL, &o->quiet, NULL, 0, 0, NULL,
         "no progress line or summary"},
        {"-h", "--help", FLAG_BOOL, &o->help, NULL, 0, 0, NULL, "show this help"},
    };
    memcpy(f, t, sizeof(t));
}

static void default_options(Options *o) {
    memset(o, 0, sizeof(*o));
    o->val_fraction = DEFAULT_VAL_FRACTION;
    o->shard_tokens = DEFAULT_SHARD_TOKENS;
}

static void usage(FILE *out) {
    Options o;
    default_options(&o);
    Flag flags[N_FLAGS];
    flag_table(&o, flags);
    fprintf(out,
            "usage: ./tokenize -o DIR [options] INPUT...   text files/folders -> token shards\n"
            "       ./tokenize --ids [--allow-special] < text    token ids of the text\n"
            "       ./tokenize --decode < ids                     text of the token ids\n"
            "options:\n");
    for (int i = 0; i < N_FLAGS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s%s%s%s%s", flags[i].short_name ? flags[i].short_name : "",
                 flags[i].short_name ? ", " : "    ", flags[i].long_name,
                 flags[i].meta ? " " : "", flags[i].meta ? flags[i].meta : "");
        fprintf(out, "  %-26s %s", left, flags[i].help);
        // defaults come from default_options(), so help and parser cannot disagree
        if (flags[i].kind == FLAG_INT && *(long long *)flags[i].dest != 0) {
            fprintf(out, " (default %lld)", *(long long *)flags[i].dest);
        } else if (flags[i].kind == FLAG_REAL && *(double *)flags[i].dest != 0) {
            fprintf(out, " (default %g)", *(double *)flags[i].dest);
        }
        fprintf(out, "\n");
    }
}

// parses argv into o; returns the number of positional arguments, moved to the front of argv
static int parse_args(int argc, char **argv, Options *o) {
    Flag flags[N_FLAGS];
    flag_table(o, flags);
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            argv[npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            while (++i < argc) argv[npos++] = argv[i];
            break;
        }
        Flag *f = NULL;
        for (int k = 0; k < N_FLAGS; k++) {
            if ((flags[k].short_name && strcmp(a, flags[k].short_name) == 0) ||
                strcmp(a, flags[k].long_name) == 0) {
                f = &flags[k];
            }
        }
        if (f == NULL) fatal("unknown flag '%s' (see ./tokenize --help)", a);
        if (f->set) *f->set = 1;
        if (f->kind == FLAG_BOOL) {
            *(int *)f->dest = 1;
            continue;
        }
        if (i + 1 >= argc) fatal("flag %s needs a value (%s)", a, f->meta);
        const char *v = argv[++i];
        char *end = NULL;
        errno = 0;
        if (f->kind == FLAG_STR) {
            if (v[0] == 0) fatal("flag %s needs a non-empty %s", a, f->meta);
            *(const char **)f->dest = v;
        } else if (f->kind == FLAG_INT) {
            long long x = strtoll(v, &end, 10);
            if (errno || end == v || *end || x < f->lo || x > f->hi) {
                fatal("flag %s: '%s' is not an integer in %.0f..%.0f", a, v, f->lo, f->hi);
            }
            *(long long *)f->dest = x;
        } else {
            double x = strtod(v, &end);
            if (errno || end == v || *end || !(x >= f->lo && x < f->hi)) {
                fatal("flag %s: '%s' is not a number in [%g, %g)", a, v, f->lo, f->hi);
            }
            *(double *)f->dest = x;
        }
    }
    return npos;
}

// ----------------------------------------------------------------------------
// small helpers

// stderr is a terminal: the progress line is redrawn in place
static int g_tty;

static const char *clear_line(void) { return g_tty ? "\r\033[K" : ""; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// reads all of fd into a malloc'ed buffer
static uint8_t *read_all(int fd, const char *what, size_t *len) {
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = (uint8_t *)malloc_check(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *b = (uint8_t *)realloc(buf, cap);
            if (b == NULL) fatal("out of memory reading %s (%zu bytes so far)", what, n);
            buf = b;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0) {
            if (errno == EINTR) continue;
            fatal("cannot read %s: %s", what, strerror(errno));
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    *len = n;
    return buf;
}

// a default vocabulary file: build/NAME here, else next to the executable
static const char *default_path(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "build/%s", name);
    if (access(buf, R_OK) == 0) return buf;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, cap, "%s/build/%s", exe, name);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    fatal("cannot find build/%s: run `make vocab` in the repository, or pass its path", name);
}

static void load_tokenizer(Tokenizer *t, const Options *o, int encode) {
    char vb[4200], mb[4200];
    tokenizer_init(t, o->vocab ? o->vocab : default_path("gpt2_tokenizer.bin", vb, sizeof(vb)));
    if (encode) {
        tokenizer_init_encoder(t, o->merges ? o->merges : default_path("gpt2_merges.bin", mb, sizeof(mb)));
    }
}

// ----------------------------------------------------------------------------
// --ids and --decode

static void write_ids(const TokenBuf *b) {
    static char out[1 << 16];
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (n > sizeof(out) - 16) {
            fwrite_check(out, 1, n, stdout);
            n = 0;
        }
        char digits[12];
        int k = 0;
        uint32_t v = (uint32_t)b->ids[i];
        do digits[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
        if (i > 0) out[n++] = ' ';
        while (k > 0) out[n++] = digits[--k];
    }
    out[n++] = '\n';
    fwrite_check(out, 1, n, stdout);
}

static int run_ids(const Options *o) {
    Tokenizer t;
    load_tokenizer(&t, o, 1);
    size_t len;
    uint8_t *text = read_all(0, "standard input", &len);
    TokenBuf ids = {0};
    double t0 = now_s();
    tokenizer_encode(&t, text, len, o->allow_special, &ids);
    double dt = now_s() - t0;
    write_ids(&ids);
    if (fflush(stdout) != 0) fatal("cannot write standard output: %s", strerror(errno));
    if (o->time) {
        fprintf(stderr, "encoded %zu bytes into %zu tokens in %.3f s: %.2f MB/s (1 thread, %s)\n",
                len, ids.n, dt, dt > 0 ? (double)len / 1e6 / dt : 0.0,
                t.jit ? "PCRE2 JIT" : "PCRE2 interpreter");
    }
    tokbuf_free(&ids);
    free(text);
    tokenizer_free(&t);
    return 0;
}

static int run_decode(const Options *o) {
    Tokenizer t;
    load_tokenizer(&t, o, 0);
    size_t len;
    uint8_t *text = read_all(0, "standard input", &len);
    size_t i = 0;
    while (i < len) {
        if (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r') {
            i++;
            continue;
        }
        long long id = 0;  // saturates: any id past the vocab is reported as such
        size_t start = i;
        for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
            id = id > TOKENIZER_MAX_VOCAB ? id : id * 10 + (text[i] - '0');
        }
        if (i == start) {
            fatal("--decode: expected token ids on standard input, found '%c' at byte %zu",
                  text[i] >= 32 && text[i] < 127 ? text[i] : '?', i);
        }
        size_t n;
        const uint8_t *bytes = tokenizer_decode(&t, (int)id, &n);
        if (i < len && text[i] > ' ') {
            fatal("--decode: expected token ids on standard input, found '%c' at byte %zu",
                  text[i] < 127 ? text[i] : '?', i);
        }
        if (bytes == NULL) {
            fatal("--decode: token id %s%lld at byte %zu is not in the vocab of %d",
                  id > TOKENIZER_MAX_VOCAB ? "over " : "", id > TOKENIZER_MAX_VOCAB ? (long long)TOKENIZER_MAX_VOCAB : id,
                  start, t.vocab_size);
        }
        fwrite_check(bytes, 1, n, stdout);
    }
    if (fflush(stdout) != 0) fatal("cannot write standard output: %s", strerror(errno));
    free(text);
    tokenizer_free(&t);
    return 0;
}

// ----------------------------------------------------------------------------
// inputs: a flat list of files, folders expanded in name order

// a regular file's identity: the same file reached by two paths has one
typedef struct {
    dev_t dev;
    ino_t ino;
    int index;  // in the FileList, the order of reading
} FileId;

typedef struct {
    char **paths;
    long long *sizes;  // -1: not a regular file (read whole when reached)
    FileId *ids;
    int n, cap;
} FileList;

static void filelist_add(FileList *l, const char *path, const struct stat *st) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->paths = (char **)realloc(l->paths, (size_t)l->cap * sizeof(char *));
        l->sizes = (long long *)realloc(l->sizes, (size_t)l->cap * sizeof(long long));
        l->ids = (FileId *)realloc(l->ids, (size_t)l->cap * sizeof(FileId));
        if (l->paths == NULL || l->sizes == NULL || l->ids == NULL) fatal("out of memory listing inputs");
    }
    l->paths[l->n] = strdup(path);
    if (l->paths[l->n] == NULL) fatal("out of memory listing inputs");
    l->sizes[l->n] = S_ISREG(st->st_mode) ? (long long)st->st_size : -1;
    l->ids[l->n] = (FileId){st->st_dev, st->st_ino, l->n};
    l->n++;
}

static int cmp_file_ids(const void *a, const void *b) {
    const FileId *x = (const FileId *)a, *y = (const FileId *)b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

// A regular file reached twice (named twice, or through a link to it or to
// its folder) is read once, where it comes first: a corpus should not count a
// document double because a folder links to it. Says so on stderr.
static void drop_repeated_files(FileList *l) {
    FileId *sorted = (FileId *)malloc_check((size_t)l->n * sizeof(FileId));
    memcpy(sorted, l->ids, (size_t)l->n * sizeof(FileId));
    qsort(sorted, (size_t)l->n, sizeof(FileId), cmp_file_ids);  // (l->n >= 1)
    int dropped = 0, example = 0, example_of = 0;
    for (int i = 1, first = 0; i < l->n; i++) {
        if (sorted[i].dev != sorted[first].dev || sorted[i].ino != sorted[first].ino) {
            first = i;
            continue;
        }
        int keep = sorted[first].index, drop = sorted[i].index;
        if (l->sizes[drop] < 0) continue;  // a pipe or device: read as often as named
        if (dropped++ == 0) example = drop, example_of = keep;
        l->sizes[drop] = -2;
    }
    free(sorted);
    if (dropped == 0) return;
    fprintf(stderr, "tokenize: %d input file%s reached a second time (e.g. '%s', the same file as '%s'): "
            "each file is read once\n", dropped, dropped == 1 ? " was" : "s were", l->paths[example],
            l->paths[example_of]);
    int n = 0;
    for (int i = 0; i < l->n; i++) {
        if (l->sizes[i] == -2) {
            free(l->paths[i]);
            continue;
        }
        l->paths[n] = l->paths[i];
        l->ids[n] = l->ids[i];
        l->sizes[n++] = l->sizes[i];
    }
    l->n = n;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// the folders add_input is inside, innermost first: a link back to one of
// them would make the walk endless
typedef struct Folder {
    dev_t dev;
    ino_t ino;
    const char *path;
    const struct Folder *outer;
} Folder;

static void add_input(FileList *l, const char *path, int top, const Folder *outer) {
    struct stat st;
    if (stat(path, &st) != 0) fatal("input '%s': %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        filelist_add(l, path, &st);
    } else if (S_ISDIR(st.st_mode)) {
        for (const Folder *f = outer; f; f = f->outer) {
            if (f->dev == st.st_dev && f->ino == st.st_ino) {
                fatal("folder '%s' is a link back to '%s': a loop", path, f->path);
            }
        }
        const Folder here = {st.st_dev, st.st_ino, path, outer};
        DIR *d = opendir(path);
        if (d == NULL) fatal("cannot open folder '%s': %s", path, strerror(errno));
        char **names = NULL;
        int n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;  // hidden files, "." and ".."
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = (char **)realloc(names, (size_t)cap * sizeof(char *));
                if (names == NULL) fatal("out of memory listing '%s'", path);
            }
            names[n] = strdup(e->d_name);
            if (names[n++] == NULL) fatal("out of memory listing '%s'", path);
        }
        closedir(d);
        if (n > 1) qsort(names, (size_t)n, sizeof(char *), cmp_str);  // (names is NULL when n is 0)
        for (int i = 0; i < n; i++) {
            size_t len = strlen(path) + strlen(names[i]) + 2;
            char *child = (char *)malloc_check(len);
            snprintf(child, len, "%s/%s", path, names[i]);
            add_input(l, child, 0, &here);
            free(child);
            free(names[i]);
        }
        free(names);
    } else if (top) {
        filelist_add(l, path, &st);  // a pipe or device named on the command line
    }
}

// ----------------------------------------------------------------------------
// shard writer: NAME_SPLIT_%06d.bin, at most `limit` tokens each

typedef struct {
    const char *dir, *name, *split;
    long long limit;
    int index;            // shards finished
    int open;
    AtomicFile af;
    long long count;      // tokens in the open shard
    long long total;
    uint16_t buf[1 << 15];
} ShardWriter;

static void shard_path(const ShardWriter *w, int index, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s_%s_%06d.bin", w->dir, w->name, w->split, index);
}

static void shard_finish(ShardWriter *w, int quiet) {
    if (!w->open) return;
    int32_t header[HEADER_INTS] = {SHARD_MAGIC, SHARD_VERSION, (int32_t)w->count};
    fseek_check(w->af.f, 0, SEEK_SET);
    write_header(w->af.f, header);
    atomic_commit(&w->af);
    if (!quiet) fprintf(stderr, "%swrote %s (%lld tokens)\n", clear_line(), w->af.final_path, w->count);
    w->open = 0;
    w->index++;
}

static void shard_write(ShardWriter *w, const int32_t *ids, size_t n, int quiet) {
    while (n > 0) {
        if (!w->open) {
            char path[4096];
            shard_path(w, w->index, path, sizeof(path));
            atomic_open(&w->af, path);
            int32_t header[HEADER_INTS] = {SHARD_MAGIC, SHARD_VERSION, 0};
            write_header(w->af.f, header);
            w->open = 1;
            w->count = 0;
        }
        size_t k = n;
        if ((long long)k > w->limit - w->count) k = (size_t)(w->limit - w->count);
        if (k > sizeof(w->buf) / sizeof(w->buf[0])) k = sizeof(w->buf) / sizeof(w->buf[0]);
        for (size_t i = 0; i < k; i++) w->buf[i] = (uint16_t)ids[i];
        fwrite_check(w->buf, sizeof(uint16_t), k, w->af.f);
        w->count += (long long)k;
        w->total += (long long)k;
        ids += k;
        n -= k;
        if (w->count == w->limit) shard_finish(w, quiet);
    }
}

// removes NAME_SPLIT_%06d.bin from index w->index on: leftovers of an earlier, longer run
static void shard_remove_stale(const ShardWriter *w) {
    for (int i = w->index;; i++) {
        char path[4096];
        shard_path(w, i, path, sizeof(path));
        if (unlink(path) != 0) break;
    }
}

static void mkdir_p(const char *dir) {
    char buf[4096];
    if (strlen(dir) >= sizeof(buf)) fatal("output folder path too long");
    strcpy(buf, dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fatal("cannot create folder '%s': %s", buf, strerror(errno));
            }
            *p = c;
            if (c == 0) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) fatal("output '%s' is not a folder", dir);
}

// ----------------------------------------------------------------------------
// documents -> chunks

typedef struct {
    const uint8_t *p;
    size_t n;
    int doc_start;  // an EOT goes before it
    int val;
} Chunk;

typedef struct {
    const FileList *files;
    const Options *o;
    int fi;                   // current file, -1 before the first
    uint8_t *data;            // its bytes (mapped, or read)
    size_t size;
    int mapped;
    size_t pos;               // next byte to hand out
    int in_doc;
    size_t doc_end, after_doc;
    int doc_val;
    long long docs, val_docs;
    long long bytes_done;     // bytes of finished files
} DocIter;

typedef struct {
    uint8_t *data;
    size_t size;
    int mapped;
} Release;

// files finished during a batch, released once the batch is encoded
typedef struct {
    Release *r;
    int n, cap;
} ReleaseList;

static void release_later(ReleaseList *l, Release r) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->r = (Release *)realloc(l->r, (size_t)l->cap * sizeof(Release));
        if (l->r == NULL) fatal("out of memory");
    }
    l->r[l->n++] = r;
}

static void open_file(DocIter *it, const char *path, long long size) {
    it->data = NULL;
    it->size = 0;
    it->mapped = 0;
    if (size == 0) return;
    int fd = open(path, O_RDONLY);
    if (fd < 0) fatal("cannot open input '%s': %s", path, strerror(errno));
    if (size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) fatal("cannot map input '%s': %s", path, strerror(errno));
        madvise(m, (size_t)size, MADV_SEQUENTIAL);
        it->data = (uint8_t *)m;
        it->size = (size_t)size;
        it->mapped = 1;
    } else {
        it->data = read_all(fd, path, &it->size);
    }
    close(fd);
}

static int is_val_doc(const Options *o, long long i) {
    if (o->val_docs_set) return i < o->val_docs;
    // spread evenly: document i is val when floor(F * (i+1)) steps up
    double f = o->val_fraction;
    return floor(f * (double)(i + 1) + 1e-9) > floor(f * (double)i + 1e-9);
}

// finds the end of the document starting at it->pos: the start of the next
// --split-on line (or the end of the file), and where the next one begins
static void find_doc_end(DocIter *it, size_t *end, size_t *next) {
    const char *sep = it->o->split_on;
    *end = *next = it->size;
    if (sep == NULL) return;
    size_t m = strlen(sep);
    for (size_t ls = it->pos; ls < it->size;) {  // ls: start of a line
        if (ls + m <= it->size && memcmp(it->data + ls, sep, m) == 0 &&
            (ls + m == it->size || it->data[ls + m] == '\n')) {
            *end = ls;
            *next = ls + m < it->size ? ls + m + 1 : it->size;
            return;
        }
        const uint8_t *nl = (const uint8_t *)memchr(it->data + ls, '\n', it->size - ls);
        if (nl == NULL) return;
        ls = (size_t)(nl - it->data) + 1;
    }
}

static int printable_ascii(uint8_t c) { return c > 0x20 && c < 0x7f; }

// where to end a chunk that starts at `start` in a document ending at `end`
static size_t safe_cut(const uint8_t *d, size_t start, size_t end) {
    if (end - start <= CHUNK_BYTES) return end;
    for (size_t i = start + CHUNK_BYTES; i + 1 < end;) {
        const uint8_t *nl = (const uint8_t *)memchr(d + i, '\n', end - 1 - i);
        if (nl == NULL) break;
        size_t k = (size_t)(nl - d);
        if (k > start && printable_ascii(d[k - 1]) && printable_ascii(d[k + 1])) return k + 1;
        i = k + 1;
    }
    return end;
}

// next chunk, or 0 at the end; finished files are added to rel for release
static int next_chunk(DocIter *it, Chunk *c, ReleaseList *rel) {
    for (;;) {
        if (it->fi >= it->files->n) return 0;
        if (it->fi < 0 || (!it->in_doc && it->pos >= it->size)) {
            if (it->fi >= 0) {
                release_later(rel, (Release){it->data, it->size, it->mapped});
                it->bytes_done += (long long)it->size;
            }
            if (++it->fi >= it->files->n) return 0;
            open_file(it, it->files->paths[it->fi], it->files->sizes[it->fi]);
            it->pos = 0;
            it->in_doc = 0;
            continue;
        }
        if (!it->in_doc) {
            find_doc_end(it, &it->doc_end, &it->after_doc);
            if (it->doc_end == it->pos) {  // empty documents are skipped
                it->pos = it->after_doc;
                continue;
            }
            it->doc_val = is_val_doc(it->o, it->docs);
            it->val_docs += it->doc_val;
            it->docs++;
            it->in_doc = 1;
            c->doc_start = 1;
        } else {
            c->doc_start = 0;
        }
        size_t cut = safe_cut(it->data, it->pos, it->doc_end);
        c->p = it->data + it->pos;
        c->n = cut - it->pos;
        c->val = it->doc_val;
        it->pos = cut;
        if (cut == it->doc_end) {
            it->in_doc = 0;
            it->pos = it->after_doc;
        }
        return 1;
    }
}

static void release_files(ReleaseList *l) {
    for (int i = 0; i < l->n; i++) {
        if (l->r[i].mapped) munmap(l->r[i].data, l->r[i].size);
        else free(l->r[i].data);
    }
    l->n = 0;
}

// ----------------------------------------------------------------------------
// shards mode

static void progress(double t0, long long done, long long total, long long tokens, int final) {
    double dt = now_s() - t0;
    double rate = dt > 0 ? (double)done / dt : 0;
    if (final) {
        fprintf(stderr, "%stokenized %.1f MB in %.1f s (%.1f MB/s), %lld tokens\n", clear_line(),
                (double)done / 1e6, dt, rate / 1e6, tokens);
    } else {
        double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
        fprintf(stderr, "\r\033[K%.1f / %.1f MB  %5.1f%%  %.1f MB/s  ETA %.0f s  %lld tokens",
                (double)done / 1e6, (double)total / 1e6,
                total > 0 ? 100.0 * (double)done / (double)total : 100.0, rate / 1e6, eta,
                tokens);
    }
}

static int run_shards(Options *o, int ninputs, char **inputs) {
    if (o->out_dir == NULL) fatal("no output folder: pass -o DIR (or --ids / --decode; see --help)");
    if (ninputs == 0) fatal("no input files or folders given (see --help)");
    if (o->val_docs_set && o->val_fraction_set) fatal("pass --val-docs or --val-fraction, not both");
    FileList files = {0};
    for (int i = 0; i < ninputs; i++) add_input(&files, inputs[i], 1, NULL);
    if (files.n == 0) fatal("no files found in the inputs");
    drop_repeated_files(&files);
    long long total = 0;
    for (int i = 0; i < files.n; i++) total += files.sizes[i] > 0 ? files.sizes[i] : 0;

    char name_buf[4096];
    if (o->name == NULL) {
        snprintf(name_buf, sizeof(name_buf), "%s", o->out_dir);
        size_t n = strlen(name_buf);
        while (n > 1 && name_buf[n - 1] == '/') name_buf[--n] = 0;
        char *slash = strrchr(name_buf, '/');
        o->name = slash ? slash + 1 : name_buf;
        if (strcmp(o->name, ".") == 0 || strcmp(o->name, "..") == 0) o->name = "data";
    }
    if (strchr(o->name, '/') || strcmp(o->name, ".") == 0 || strcmp(o->name, "..") == 0) {
        fatal("--name '%s' must be a plain file name prefix", o->name);
    }

    Tokenizer t;
    load_tokenizer(&t, o, 1);
    if (t.vocab_size > 65536) fatal("vocab of %d tokens does not fit uint16 shards", t.vocab_size);
    mkdir_p(o->out_dir);

    int nt = 1;
#ifdef _OPENMP
    nt = o->threads > 0 ? (int)o->threads : omp_get_max_threads();
#endif
    TokenizerState *states = (TokenizerState *)malloc_check((size_t)nt * sizeof(TokenizerState));
    for (int i = 0; i < nt; i++) tokenizer_state_init(&states[i], &t);
    Chunk *chunks = (Chunk *)malloc_check(BATCH_CHUNKS * sizeof(Chunk));
    TokenBuf *bufs = (TokenBuf *)calloc_check(BATCH_CHUNKS, sizeof(TokenBuf));
    ReleaseList rel = {0};

    static ShardWriter train, val;  // static: each holds a conversion buffer
    train = (ShardWriter){.dir = o->out_dir, .name = o->name, .split = "train", .limit = o->shard_tokens};
    val = (ShardWriter){.dir = o->out_dir, .name = o->name, .split = "val", .limit = o->shard_tokens};
    g_tty = !o->quiet && isatty(2);
    DocIter it = {.files = &files, .o = o, .fi = -1};
    double t0 = now_s(), last = 0;
    int32_t eot = t.eot_id;
    for (;;) {
        int nc = 0;
        size_t bytes = 0;
        while (nc < BATCH_CHUNKS && bytes < BATCH_BYTES && next_chunk(&it, &chunks[nc], &rel)) {
            bytes += chunks[nc++].n;
        }
        if (nc == 0 && rel.n == 0) break;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
        for (int c = 0; c < nc; c++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            bufs[c].n = 0;
            tokenizer_encode_with(&t, &states[tid], chunks[c].p, chunks[c].n, o->allow_special,
                                  &bufs[c]);
        }
        for (int c = 0; c < nc; c++) {
            ShardWriter *w = chunks[c].val ? &val : &train;
            if (chunks[c].doc_start) shard_write(w, &eot, 1, o->quiet);
            shard_write(w, bufs[c].ids, bufs[c].n, o->quiet);
            if (bufs[c].cap > (1 << 16)) tokbuf_free(&bufs[c]);  // memory stays ~ one batch
        }
        release_files(&rel);
        if (g_tty && now_s() - last > 0.2) {
            long long done = it.bytes_done + (it.fi < files.n ? (long long)it.pos : 0);
            progress(t0, done, total, train.total + val.total, 0);
            last = now_s();
        }
    }
    if (it.docs == 0) fatal("the inputs hold no text (all %d files are empty)", files.n);
    shard_finish(&train, o->quiet);
    shard_finish(&val, o->quiet);
    shard_remove_stale(&train);
    shard_remove_stale(&val);
    if (!o->quiet) {
        progress(t0, it.bytes_done, total, train.total + val.total, 1);
        fprintf(stderr, "%lld document%s: %lld train (%lld tokens in %d shard%s), %lld val (%lld tokens in %d shard%s)\n",
                it.docs, it.docs == 1 ? "" : "s", it.docs - it.val_docs, train.total, train.index, train.index == 1 ? "" : "s",
                it.val_docs, val.total, val.index, val.index == 1 ? "" : "s");
    }
    if (it.val_docs == 0 && !(o->val_docs_set && o->val_docs == 0)) {
        fprintf(stderr, "warning: no validation documents (%lld document%s, --val-fraction %g)\n",
                it.docs, it.docs == 1 ? "" : "s", o->val_fraction);
    }
    if (it.val_docs == it.docs) fprintf(stderr, "warning: no training documents\n");

    for (int i = 0; i < BATCH_CHUNKS; i++) tokbuf_free(&bufs[i]);
    for (int i = 0; i < nt; i++) tokenizer_state_free(&states[i]);
    for (int i = 0; i < files.n; i++) free(files.paths[i]);
    free(files.paths);
    free(files.sizes);
    free(files.ids);
    free(states);
    free(chunks);
    free(bufs);
    free(rel.r);
    tokenizer_free(&t);
    return 0;
}

int main(int argc, char **argv) {
    check_omp_num_threads();
    Options o;
    default_options(&o);
    int npos = parse_args(argc, argv, &o);
    if (o.help) {
        usage(stdout);
        return 0;
    }
    if (o.ids + o.decode > 1) fatal("pass --ids or --decode, not both");
    if (o.ids || o.decode) {
        if (npos > 0) fatal("--ids and --decode read standard input; unexpected argument '%s'", argv[0]);
        if (o.out_dir) fatal("-o is for shards; --ids and --decode write to standard output");
        return o.ids ? run_ids(&o) : run_decode(&o);
    }
    return run_shards(&o, npos, argv);
}
