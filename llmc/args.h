/*
 * args.h: command-line flags from one table.
 *
 * A program lists its flags once, as an ArgSpec table (short flag, long alias,
 * type, destination, range, help). args_parse() reads argv against that table
 * and args_usage() prints the help from it, so the two never disagree.
 * Flags match exactly (no prefixes); every value is parsed strictly and
 * range-checked; anything wrong is a one-line error and exit(1).
 * Syntax: `-b 4`, `--batch-size 4` or `--batch-size=4`.
 */
#ifndef LLMC_ARGS_H
#define LLMC_ARGS_H

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

typedef enum { ARG_INT, ARG_FLOAT, ARG_STRING } ArgType;

typedef struct {
    const char *flag;       // short form, e.g. "-b"
    const char *long_name;  // long form, e.g. "--batch-size"
    ArgType type;
    void *value;        // int*, float* or const char**; holds the default
    double min, max;    // inclusive range for numbers
    const char *help;
} ArgSpec;

static inline void args_usage(FILE *out, const char *program, const char *summary,
                              const ArgSpec *specs, int n) {
    fprintf(out, "usage: %s [flags]\n%s\n\nflags (default in brackets):\n", program, summary);
    for (int i = 0; i < n; i++) {
        const ArgSpec *s = &specs[i];
        char names[64], def[64];
        snprintf(names, sizeof(names), "%s, %s", s->flag, s->long_name);
        switch (s->type) {
            case ARG_INT: snprintf(def, sizeof(def), "%d", *(int *)s->value); break;
            case ARG_FLOAT: snprintf(def, sizeof(def), "%g", *(float *)s->value); break;
            case ARG_STRING: {
                const char *v = *(const char **)s->value;
                snprintf(def, sizeof(def), "%s", v && v[0] ? v : "none");
                break;
            }
        }
        fprintf(out, "  %-28s %s [%s]\n", names, s->help, def);
    }
    fprintf(out, "  %-28s %s\n", "-h, --help", "print this help and exit");
}

static inline void args_set(const ArgSpec *s, const char *name, const char *text) {
    char *end = NULL;
    errno = 0;
    if (s->type == ARG_STRING) {
        *(const char **)s->value = text;
        return;
    }
    double v;
    // plain decimal only: strtol and strtod would also skip leading spaces and
    // take '+', and strtod hex ("0x1p3"), "inf" and "nan"
    int plain = ((text[0] >= '0' && text[0] <= '9') || text[0] == '-' || text[0] == '.') &&
                text[strspn(text, s->type == ARG_INT ? "-0123456789" : "-+.eE0123456789")] == '\0';
    if (s->type == ARG_INT) {
        long x = strtol(text, &end, 10);
        v = (double)x;
        if (!plain || errno || end == text || *end != '\0' || x < INT_MIN || x > INT_MAX) {
            fatal("flag %s expects an integer, got '%s'", name, text);
        }
    } else {
        v = strtod(text, &end);
        if (!plain || errno || end == text || *end != '\0' || v != v) {
            fatal("flag %s expects a number, got '%s'", name, text);
        }
    }
    if (v < s->min || v > s->max) {
        fatal("flag %s must be in [%g, %g], got %s", name, s->min, s->max, text);
    }
    if (s->type == ARG_INT) {
        *(int *)s->value = (int)v;
    } else {
        *(float *)s->value = (float)v;
    }
}

// Parses argv; prints usage and exits 0 on -h/--help.
static inline void args_parse(int argc, char **argv, const char *summary, const ArgSpec *specs,
                              int n) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            args_usage(stdout, argv[0], summary, specs, n);
            exit(0);
        }
        // split "--name=value"
        char name[64];
        const char *inline_value = NULL;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof(name)) len = sizeof(name) - 1;
        memcpy(name, arg, len);
        name[len] = '\0';
        if (eq) inline_value = eq + 1;
        const ArgSpec *s = NULL;
        for (int k = 0; k < n && !s; k++) {
            if (strcmp(name, specs[k].flag) == 0 || strcmp(name, specs[k].long_name) == 0) {
                s = &specs[k];
            }
        }
        if (!s) {
            fatal("unknown flag '%s' (see --help)", arg);
        }
        const char *text = inline_value;
        if (!text) {
            if (i + 1 >= argc) fatal("flag %s needs a value", name);
            text = argv[++i];
        }
        args_set(s, name, text);
    }
}

#endif  // LLMC_ARGS_H
