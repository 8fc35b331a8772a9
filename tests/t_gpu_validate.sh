#!/usr/bin/env bash
# tests/t_gpu_validate.sh: scripts/gpu_validate.sh end to end without a GPU
# (GPU_VALIDATE_EMU=1: the emulated builds stand in for the device and the
# ASan build for compute-sanitizer), so the script works the first time real
# hardware runs it: it builds, runs, writes the report, and a failing kernel
# run turns into a FAIL row, a Failures section and exit status 1.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

# contains NAME FILE STRING: FILE holds STRING
contains() {
    if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1" "no '$3' in $2"; sed 's/^/    /' "$2" | head -30; fi
}

export GPU_VALIDATE_EMU=1 GPU_VALIDATE_KERNELS=gelu
check gpu_validate_emulated_passes bash scripts/gpu_validate.sh "$TMP/ok"
contains gpu_validate_report_row "$TMP/ok/report.md" "| gelu | PASS | PASS | PASS | PASS |"
contains gpu_validate_report_names_machine "$TMP/ok/report.md" "# GPU validation: emulated"
contains gpu_validate_keeps_logs "$TMP/ok/logs/gelu.bench.log" "gelu N=8: forward and backward match the CPU reference"

# a kernel run that fails (here: the emulator refuses a bad EMU_ORDER)
EMU_ORDER=bogus bash scripts/gpu_validate.sh "$TMP/bad" >"$TMP/bad.out" 2>&1
if [ $? -eq 1 ]; then pass gpu_validate_failure_exits_1; else fail gpu_validate_failure_exits_1 "exit status was not 1"; fi
contains gpu_validate_failure_row "$TMP/bad/report.md" "| gelu | FAIL (exit 1) | PASS | PASS | PASS |"
contains gpu_validate_failure_section "$TMP/bad/report.md" "EMU_ORDER=bogus: expected forward, reverse or random"

expect_error gpu_validate_unknown_kernel "GPU_VALIDATE_KERNELS: no dev/cuda/nosuch.cu" \
    env GPU_VALIDATE_KERNELS=nosuch bash scripts/gpu_validate.sh "$TMP/none"
