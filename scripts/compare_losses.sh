#!/usr/bin/env bash
# scripts/compare_losses.sh A B [LOSS_TOL] [NORM_REL_TOL]: compares two
# trainers' outputs step by step (the "step N/M | loss X | ... | norm Z"
# and "val loss" lines): exits 0 when both have the same steps and every
# loss is within LOSS_TOL (default 0.01 nats) and every grad norm within
# NORM_REL_TOL of A's (default 0.01); else prints the first difference and
# exits 1. Used by tests/t_gpu_train.sh and scripts/gpu_validate.sh to hold
# the GPU trainer (bf16) to the CPU trainer (fp32).
set -u
[ $# -ge 2 ] || { echo "error: usage: compare_losses.sh A B [LOSS_TOL] [NORM_REL_TOL]" >&2; exit 2; }
for f in "$1" "$2"; do [ -f "$f" ] || { echo "error: compare_losses.sh: no file '$f'" >&2; exit 2; }; done
# (awk compares a non-number as a string: "abc" would pass any difference)
for t in "${3:-0.01}" "${4:-0.01}"; do
    [[ $t =~ ^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]] ||
        { echo "error: compare_losses.sh: tolerance '$t' is not a decimal number >= 0" >&2; exit 2; }
done
steps() { grep '^step' "$1" | sed 's/ | [0-9.]* ms .*//'; }
paste -d'\n' <(steps "$1") <(steps "$2") | awk -v lt="${3:-0.01}" -v nt="${4:-0.01}" '
    { line[NR] = $0 }
    END {
        if (NR == 0 || NR % 2) { print "no step lines, or a different number of them"; exit 1 }
        for (i = 1; i <= NR; i += 2) {
            n = split(line[i], a, " "); split(line[i + 1], b, " ")
            if (a[1] != b[1] || a[2] != b[2]) { print "different steps: " line[i] " vs " line[i + 1]; exit 1 }
            for (k = 1; k < n; k++) {
                d = a[k + 1] - b[k + 1]; if (d < 0) d = -d
                if (a[k] == "loss" && !(d <= lt)) {
                    print "loss differs by more than " lt ": " line[i] " vs " line[i + 1]; exit 1 }
                if (a[k] == "norm" && !(d <= nt * a[k + 1])) {
                    print "grad norm differs by more than " 100 * nt "%: " line[i] " vs " line[i + 1]; exit 1 }
            }
        }
    }'
