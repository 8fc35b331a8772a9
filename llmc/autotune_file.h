/*
 * autotune_file.h: the GPU trainer's matmul autotune choices (-at 1) on disk.
 *
 * -at 1 times cuBLASLt's candidate algorithms at each distinct call's first
 * use and keeps the fastest (llmc/matmul.cuh). Timings vary from run to run,
 * so without this file a resume could pick another algorithm than the run
 * it continues, and get other bits. Each rank (timing on its own) writes its
 * choices beside the checkpoints, matmul_autotune_RANK.txt, and reads them
 * back at start: a resume, or any run given the same output dir, uses the
 * same algorithms.
 *
 * The file is text, one line each:
 *   llmc matmul autotune 1
 *   device <the GPU's name>
 *   library <cuBLASLt's version number>
 *   call m n k transa transb epilogue d_fp32 beta_nonzero has_bias has_aux align_a align_b align_c align_d candidate found
 *   ...
 * A call line is the call's key (everything its algorithm depends on), then
 * the chosen algorithm's index among the heuristic's first `found`
 * candidates. A choice only means something for the same GPU and cuBLASLt,
 * so a file made on another is set aside (with one line saying so); a file
 * that is not of this form is an error naming the line.
 */
#ifndef LLMC_AUTOTUNE_FILE_H
#define LLMC_AUTOTUNE_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utils.h"

#define AUTOTUNE_FILE_VERSION 1
#define AUTOTUNE_MAX_CANDIDATES 8   // the heuristic's first 8 algorithms are timed (MATMUL_TUNE_CANDIDATES)

// one distinct cuBLASLt call: everything its algorithm's choice and validity depend on
typedef struct {
    int m, n, k, transa, transb, epilogue, d_fp32, beta_nonzero, has_bias, has_aux;
    uint32_t align[4];   // bytes: a, b, c, d
} MatmulCall;

// a call and the candidate chosen for it, of the `found` the heuristic listed
typedef struct {
    MatmulCall call;
    int candidate, found;
} TunedChoice;

// Writes the n choices to path, atomically (a crash leaves the old file or the new one)
static inline void autotune_file_write(const char *path, const char *device, int library,
                                       const TunedChoice *choices, int n) {
    AtomicFile af;
    atomic_open(&af, path);
    fprintf(af.f, "llmc matmul autotune %d\ndevice %s\nlibrary %d\n", AUTOTUNE_FILE_VERSION, device, library);
    for (int i = 0; i < n; i++) {
        const MatmulCall *c = &choices[i].call;
        fprintf(af.f, "call %d %d %d %d %d %d %d %d %d %d %u %u %u %u %d %d\n", c->m, c->n, c->k, c->transa,
                c->transb, c->epilogue, c->d_fp32, c->beta_nonzero, c->has_bias, c->has_aux, c->align[0],
                c->align[1], c->align[2], c->align[3], choices[i].candidate, choices[i].found);
    }
    atomic_commit(&af);
}

static inline int autotune_is_flag(int v) { return v == 0 || v == 1; }

static inline int autotune_is_alignment(uint32_t a) { return a >= 1 && a <= 256 && (a & (a - 1)) == 0; }

// no number of more than 9 digits (sscanf's %d past INT_MAX is undefined):
// every line but the device's name
static inline int autotune_numbers_fit(const char *s) {
    for (int run = 0; *s; s++) {
        run = *s >= '0' && *s <= '9' ? run + 1 : 0;
        if (run > 9) return 0;
    }
    return 1;
}

// Reads path's choices into choices (room for cap): returns how many. 0
// when there is no such file, or it was made on another device or library
// (then one line says so). Exits with a message naming the line on anything
// else that is not a well-formed file of at most cap calls.
static inline int autotune_file_read(const char *path, const char *device, int library, TunedChoice *choices,
                                     int cap) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    FILE *f = fopen_check(path, "r");
    char line[1024], file_device[256] = "";
    int version = -1, file_library = -1, n = 0, lineno = 0, end = 0;
    for (; fgets(line, sizeof(line), f); lineno++) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') fatal("%s:%d: a line that is too long or not ended", path, lineno + 1);
        line[len - 1] = '\0';
        if (lineno != 1 && !autotune_numbers_fit(line)) {
            fatal("%s:%d: a number of more than 9 digits", path, lineno + 1);
        }
        if (lineno == 0) {
            if (sscanf(line, "llmc matmul autotune %d%n", &version, &end) != 1 || line[end] != '\0')
                fatal("%s:1: not an autotune file (want 'llmc matmul autotune %d')", path, AUTOTUNE_FILE_VERSION);
            if (version != AUTOTUNE_FILE_VERSION)
                fatal("%s:1: version %d, this trainer reads %d", path, version, AUTOTUNE_FILE_VERSION);
        } else if (lineno == 1) {
            if (strncmp(line, "device ", 7) != 0 || strlen(line + 7) >= sizeof(file_device))
                fatal("%s:2: want 'device NAME'", path);
            strcpy(file_device, line + 7);
        } else if (lineno == 2) {
            if (sscanf(line, "library %d%n", &file_library, &end) != 1 || line[end] != '\0')
                fatal("%s:3: want 'library VERSION'", path);
        } else {
            if (n == cap) fatal("%s:%d: more than %d calls", path, lineno + 1, cap);
            TunedChoice t;
            MatmulCall *c = &t.call;
            memset(&t, 0, sizeof(t));
            int fields = sscanf(line, "call %d %d %d %d %d %d %d %d %d %d %u %u %u %u %d %d%n", &c->m, &c->n, &c->k,
                                &c->transa, &c->transb, &c->epilogue, &c->d_fp32, &c->beta_nonzero, &c->has_bias,
                                &c->has_aux, &c->align[0], &c->align[1], &c->align[2], &c->align[3], &t.candidate,
                                &t.found, &end);
            int ok = fields == 16 && line[end] == '\0' && c->m > 0 && c->n > 0 && c->k > 0 && c->epilogue >= 0 &&
                     autotune_is_flag(c->transa) && autotune_is_flag(c->transb) && autotune_is_flag(c->d_fp32) &&
                     autotune_is_flag(c->beta_nonzero) && autotune_is_flag(c->has_bias) &&
                     autotune_is_flag(c->has_aux) && t.found >= 1 && t.found <= AUTOTUNE_MAX_CANDIDATES &&
                     t.candidate >= 0 && t.candidate < t.found;
            for (int i = 0; i < 4; i++) ok = ok && autotune_is_alignment(c->align[i]);
            if (!ok) fatal("%s:%d: not a call line (want 'call' and 16 numbers in range)", path, lineno + 1);
            for (int i = 0; i < n; i++) {  // (memset above: the padding compares equal too)
                if (memcmp(&choices[i].call, c, sizeof(*c)) == 0) {
                    fatal("%s:%d: the call of line %d again", path, lineno + 1, i + 4);
                }
            }
            choices[n++] = t;
        }
    }
    fclose(f);
    if (lineno < 3) fatal("%s: ends after %d line(s), before its header does", path, lineno);
    if (strcmp(file_device, device) != 0 || file_library != library) {
        printf("matmul autotune: %s was made on %s with cuBLASLt %d, this is %s with %d: timing again\n", path,
               file_device, file_library, device, library);
        return 0;
    }
    return n;
}

#endif  // LLMC_AUTOTUNE_FILE_H
