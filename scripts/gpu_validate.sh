#!/usr/bin/env bash
# scripts/gpu_validate.sh: everything that needs a real NVIDIA GPU, in one
# command, with a short report.
#
#   bash scripts/gpu_validate.sh [REPORT_DIR]      (default runs/gpu_validate)
#
# For every kernel family (dev/cuda/NAME.cu, built from llmc/NAME.cuh):
#   1. NAME bench: checks every kernel version against the CPU reference on
#      the device, then times each at GPT-2 124M shapes ("bench ..." lines:
#      GB/s or TFLOP/s and the fraction of the GPU's peak);
#   2. compute-sanitizer memcheck, racecheck and synccheck over NAME check.
# Then writes REPORT_DIR/report.md (GPU, versions, a pass/fail table per
# kernel, every bench line) beside one log per run, and exits 1 if anything
# failed.
#
# Settings (environment):
#   GPU_VALIDATE_KERNELS="gelu layernorm"  only these families (default: all)
#   GPU_VALIDATE_PREBUILT=1                use build/cuda/* as they are (built
#                                          elsewhere with `make cuda-bench`)
#   GPU_VALIDATE_TIMEOUT=S                 seconds per run (default 300)
#   GPU_VALIDATE_JOBS=N                    sanitizer runs at once (default 4)
#   GPU_VALIDATE_EMU=1                     no GPU: run the emulated builds
#                                          (build/emu/plain/cuda/NAME for the
#                                          checks, the ASan build in random
#                                          thread order in place of each
#                                          sanitizer); proves the script end
#                                          to end in CI (tests/t_gpu_validate.sh)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPORT_DIR=${1:-runs/gpu_validate}
EMU=${GPU_VALIDATE_EMU:-0}
TIMEOUT=${GPU_VALIDATE_TIMEOUT:-300}
KERNELS=${GPU_VALIDATE_KERNELS:-$(ls dev/cuda/*.cu | sed 's,.*/,,; s,\.cu$,,')}
SANITIZERS="memcheck racecheck synccheck"
mkdir -p "$REPORT_DIR" || exit 1
LOGS=$REPORT_DIR/logs
rm -rf "$LOGS" && mkdir -p "$LOGS" || exit 1

for k in $KERNELS; do
    [ -f "dev/cuda/$k.cu" ] || { echo "error: GPU_VALIDATE_KERNELS: no dev/cuda/$k.cu" >&2; exit 1; }
done

# ----------------------------------------------------------------------------
# the machine

if [ "$EMU" = 1 ]; then
    gpu="emulated (dev/emu, no GPU)"; driver="-"; cc="-"
else
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
        echo "error: no NVIDIA GPU found (nvidia-smi failed); GPU_VALIDATE_EMU=1 runs the emulated builds" >&2
        exit 1
    fi
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1)
fi
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
nvcc_version=$("$NVCC" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
SANITIZER=$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")
echo "gpu_validate: $gpu (compute capability $cc, driver $driver), nvcc ${nvcc_version:-?}"

# ----------------------------------------------------------------------------
# build

if [ "$EMU" = 1 ]; then
    targets=$(for k in $KERNELS; do echo build/emu/plain/cuda/$k build/emu/asan/cuda/$k; done)
elif [ "${GPU_VALIDATE_PREBUILT:-0}" = 1 ]; then
    targets=""
else
    targets=$(for k in $KERNELS; do echo build/cuda/$k; done)
fi
build_status=ok
if [ -n "$targets" ]; then
    echo "building: $(echo $targets | wc -w) programs"
    # shellcheck disable=SC2086
    if ! make -s -j"$(nproc)" $targets >"$LOGS/build.log" 2>&1; then
        build_status=FAIL
        tail -20 "$LOGS/build.log" >&2
    fi
fi

# ----------------------------------------------------------------------------
# runs: each one's output in $LOGS/<kernel>.<what>.log, its result in a row

bin_of() { if [ "$EMU" = 1 ]; then echo "build/emu/$1/cuda/$2"; else echo "build/cuda/$2"; fi; }

# run_one LOG CMD...: PASS, FAIL (exit N) or TIMEOUT; a failed run's LOG is
# listed in $LOGS/failed
run_one() {
    local log=$1; shift
    timeout "$TIMEOUT" "$@" >"$log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then echo PASS; return; fi
    echo "$log" >>"$LOGS/failed"
    if [ $rc -eq 124 ]; then echo "TIMEOUT (${TIMEOUT} s)"; else echo "FAIL (exit $rc)"; fi
}

# sanitize KERNEL: its three sanitizer results, " | "-separated, into $LOGS/KERNEL.sanitizers
sanitize() {
    local k=$1 tool r out=""
    for tool in $SANITIZERS; do
        if [ "$EMU" = 1 ]; then
            r=$(EMU_ORDER=random EMU_SEED=11 run_one "$LOGS/$k.$tool.log" "$(bin_of asan "$k")" check)
        else
            r=$(run_one "$LOGS/$k.$tool.log" "$SANITIZER" --tool "$tool" --error-exitcode 1 "$(bin_of plain "$k")" check)
            # some virtualised GPUs (gVisor) refuse the sanitizer outright: say
            # so instead of blaming the kernel
            grep -q 'Device not supported' "$LOGS/$k.$tool.log" && r="n/a (sanitizer: device not supported)"
        fi
        out="$out | $r"
    done
    echo "$out" >"$LOGS/$k.sanitizers"
}

# the checks and timings one family after another, so nothing else runs on
# the GPU while a kernel is timed; then the sanitizers (slow, CPU-bound),
# GPU_VALIDATE_JOBS families at a time (default 4)
for k in $KERNELS; do
    start=$(date +%s)
    run_one "$LOGS/$k.bench.log" "$(bin_of plain "$k")" bench >"$LOGS/$k.check"
    echo "$k: $(cat "$LOGS/$k.check") ($(( $(date +%s) - start )) s)"
done
echo "sanitizers: $SANITIZERS"
jobs_max=${GPU_VALIDATE_JOBS:-4}
for k in $KERNELS; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do sleep 1; done
    sanitize "$k" &
done
wait

failures=0
rows=()
for k in $KERNELS; do
    row="| $k | $(cat "$LOGS/$k.check")$(cat "$LOGS/$k.sanitizers") |"
    case "$row" in *FAIL*|*TIMEOUT*) failures=$((failures + 1));; esac
    echo "$row"
    rows+=("$row")
done

# ----------------------------------------------------------------------------
# report

report=$REPORT_DIR/report.md
{
    echo "# GPU validation: $gpu"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- GPU: $gpu, compute capability $cc, driver $driver; nvcc ${nvcc_version:-?}"
    echo "- build: $build_status"
    echo
    echo "## Kernels: checks against the CPU reference and compute-sanitizer"
    echo
    if [ "$EMU" = 1 ]; then
        echo "Emulated: the sanitizer columns are the ASan + UBSan build in random thread order."
        echo
    fi
    echo "| kernel | check + bench | memcheck | racecheck | synccheck |"
    echo "| --- | --- | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
    echo
    echo "## Bench at GPT-2 124M shapes"
    echo
    echo '```'
    for k in $KERNELS; do grep -h '^bench ' "$LOGS/$k.bench.log" 2>/dev/null; done
    echo '```'
    echo
    if [ $failures -gt 0 ] || [ "$build_status" != ok ]; then
        echo "## Failures"
        echo
        [ "$build_status" != ok ] && { echo "build (last lines of logs/build.log):"; echo '```'; tail -20 "$LOGS/build.log"; echo '```'; }
        for f in $(sort "$LOGS/failed" 2>/dev/null); do
            echo "$(basename "$f") (first error lines):"
            echo '```'
            grep -m 5 -i 'error' "$f" || tail -5 "$f"
            echo '```'
        done
    fi
} >"$report"
echo "report: $report"
if [ $failures -gt 0 ] || [ "$build_status" != ok ]; then
    echo "gpu_validate: $failures of $(echo $KERNELS | wc -w) kernel families failed (build: $build_status)"
    exit 1
fi
echo "gpu_validate: all $(echo $KERNELS | wc -w) kernel families passed"
