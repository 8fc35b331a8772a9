#!/usr/bin/env bash
# scripts/gpu_validate.sh: everything that needs a real NVIDIA GPU, in one
# command, with a short report.
#
#   bash scripts/gpu_validate.sh [REPORT_DIR]      (default runs/gpu_validate)
#
# First llmc/ptx.cuh's wrappers against the PTX ISA's layouts
# (dev/emu/tests/ptx.cu, as build/cuda/ptx_layouts). Then for every kernel
# family (dev/cuda/NAME.cu, built from llmc/NAME.cuh):
#   1. NAME bench: checks every kernel version against the CPU reference on
#      the device, then times each at GPT-2 124M shapes ("bench ..." lines:
#      GB/s or TFLOP/s and the fraction of the GPU's peak);
#   2. compute-sanitizer memcheck, racecheck and synccheck over NAME check.
# Then the GPU trainer (train_gpt2.cu):
#   3. a tiny model (tests/make_model.py) trained 10 steps by it and by the CPU
#      trainer on the same data: losses within 0.01, grad norms within 1%
#      (scripts/compare_losses.sh), and a second GPU run with the same bits;
#      with -at 1, a resume from step 3 with the saved choices ends at step 6
#      with the model file of the run it continues, bit for bit;
#      ZeRO-3 on one GPU (wte in vocabulary chunks, the classifier in two
#      passes over them) against ZeRO-0, losses within 0.01;
#      test_gpt2cu against PyTorch reference files (train_gpt2.py) for a d2
#      model with a 512-token vocabulary and for the 124M shape;
#   4. GPT-2 124M (d12) at B=GPU_VALIDATE_B (default 64), T=1024 on random
#      tokens: the memory plan, ms per step, tokens/s and MFU (median of the
#      steps after the first), and the GPU time per kernel family (-pk 1);
#      the memory plan with llm.c's defaults (-r 1 -w 1) against llm.c's own
#      allocation at that batch (scripts/llmc_memory.sh);
#   5. with two or more GPUs and mpirun: the tiny model on all of them at each
#      ZeRO stage against one GPU, and the 124M run on all of them (ZeRO-1):
#      the scaling efficiency;
#   6. cuDNN's fused attention (make cudnn: build/cudnn/): checked against the
#      CPU reference and timed beside ours (build/cudnn/attention bench), the
#      tiny model against the CPU trainer, test_gpt2cu against PyTorch, and
#      the 124M run with it: tokens/s against ours (GPU_VALIDATE_CUDNN=0 skips it);
#   7. with the faster attention (cuDNN's where it ran), tokens/s with the
#      matmul epilogues' work in our kernels (-ge 0) and with cuBLASLt's
#      algorithms chosen by timing (-at 1), against the default run; on
#      compute capability 9.0, our attention on wgmma (-aw 1): the tiny
#      model against the CPU trainer (with check 3) and tokens/s against
#      the default (mma.sync); on any GPU, our attention's dq recomputing
#      dS (-as 0): tokens/s against the default (dq from the dS dkdv
#      stores).
# Then writes REPORT_DIR/report.md (GPU, versions, a pass/fail table per
# kernel and trainer check, every bench line, the training numbers) beside
# one log per run, and exits 1 if anything failed.
#
# Settings (environment):
#   GPU_VALIDATE_KERNELS="gelu layernorm"  only these families (default: all)
#   GPU_VALIDATE_PREBUILT=1                use build/cuda/*, build/cudnn/*,
#                                          train_gpt2cu, test_gpt2cu and
#                                          train_gpt2 as they are (built
#                                          elsewhere: make gpu-prebuilt)
#   GPU_VALIDATE_CPU_REF=FILE              the CPU trainer's output for check 3
#                                          (when train_gpt2 cannot run there)
#   GPU_VALIDATE_B=N, GPU_VALIDATE_STEPS=N 124M benchmark batch (64), steps (20)
#   GPU_VALIDATE_TRAINER=0                 the kernels only
#   GPU_VALIDATE_TIMEOUT=S                 seconds per run (default 300)
#   GPU_VALIDATE_GPUS=N                    ranks for check 5 (default: every GPU)
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

# every setting checked before anything is built or run: device time is short
die() { echo "error: $*" >&2; exit 1; }
count() {  # NAME VALUE: a whole number >= 1 (no leading 0: bash would read it as octal)
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1=$2: want a whole number >= 1"
}
count GPU_VALIDATE_TIMEOUT "$TIMEOUT"
count GPU_VALIDATE_JOBS "${GPU_VALIDATE_JOBS:-4}"
count GPU_VALIDATE_B "${GPU_VALIDATE_B:-64}"
count GPU_VALIDATE_STEPS "${GPU_VALIDATE_STEPS:-20}"
[ -z "${GPU_VALIDATE_GPUS:-}" ] || count GPU_VALIDATE_GPUS "$GPU_VALIDATE_GPUS"
for v in GPU_VALIDATE_EMU GPU_VALIDATE_PREBUILT GPU_VALIDATE_TRAINER GPU_VALIDATE_CUDNN; do
    case ${!v:-0} in 0|1) ;; *) die "$v=${!v}: want 0 or 1" ;; esac
done
[ -z "${GPU_VALIDATE_CPU_REF:-}" ] || [ -f "$GPU_VALIDATE_CPU_REF" ] ||
    die "GPU_VALIDATE_CPU_REF: no file '$GPU_VALIDATE_CPU_REF'"
# a python with numpy for the trainer checks' model and data (and, for the
# reference files, PyTorch): Debian's where the default one lacks them
PY=
for p in /usr/bin/python3 python3; do "$p" -c 'import numpy, torch' 2>/dev/null && { PY=$p; break; }; done
for p in /usr/bin/python3 python3; do [ -z "$PY" ] && "$p" -c 'import numpy' 2>/dev/null && PY=$p; done
[ -n "$PY" ] || [ "${GPU_VALIDATE_TRAINER:-1}" = 0 ] || die "no python3 with numpy here (the trainer checks need it; GPU_VALIDATE_TRAINER=0 skips them)"
for k in $KERNELS; do
    [ -f "dev/cuda/$k.cu" ] || die "GPU_VALIDATE_KERNELS: no dev/cuda/$k.cu"
done
LOGS=$REPORT_DIR/logs
# (an earlier run's logs are replaced, marked as ours; any other logs/ folder is not ours to delete)
[ ! -e "$LOGS" ] || [ -f "$LOGS/.gpu_validate" ] ||
    die "'$LOGS' exists and is not an earlier run's (no .gpu_validate in it): choose another REPORT_DIR"

# ----------------------------------------------------------------------------
# the machine

if [ "$EMU" = 1 ]; then
    gpu="emulated (dev/emu, no GPU)"; driver="-"; cc="-"
else
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
        die "no NVIDIA GPU found (nvidia-smi failed); GPU_VALIDATE_EMU=1 runs the emulated builds"
    fi
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1)
fi
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
nvcc_version=$("$NVCC" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
SANITIZER=$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")
echo "gpu_validate: $gpu (compute capability $cc, driver $driver), nvcc ${nvcc_version:-?}"
mkdir -p "$REPORT_DIR" && rm -rf "$LOGS" && mkdir -p "$LOGS" && touch "$LOGS/.gpu_validate" || exit 1

# ----------------------------------------------------------------------------
# build

if [ "$EMU" = 1 ]; then
    targets="$(for k in $KERNELS; do echo build/emu/plain/cuda/$k build/emu/asan/cuda/$k; done)"
    targets="$targets build/emu/plain/ptx build/emu/plain/train_gpt2cu build/emu/plain/test_gpt2cu"
    GPU_TRAINER=build/emu/plain/train_gpt2cu GPU_TEST=build/emu/plain/test_gpt2cu
elif [ "${GPU_VALIDATE_PREBUILT:-0}" = 1 ]; then
    targets=""
    GPU_TRAINER=./train_gpt2cu GPU_TEST=./test_gpt2cu
else
    targets="$(for k in $KERNELS; do echo build/cuda/$k; done) build/cuda/ptx_layouts train_gpt2cu test_gpt2cu"
    [ "${GPU_VALIDATE_CUDNN:-1}" = 1 ] && targets="$targets build/cudnn/train_gpt2cu build/cudnn/test_gpt2cu build/cudnn/attention"
    GPU_TRAINER=./train_gpt2cu GPU_TEST=./test_gpt2cu
fi
[ -z "${GPU_VALIDATE_CPU_REF:-}" ] && [ "${GPU_VALIDATE_PREBUILT:-0}" != 1 ] && targets="$targets train_gpt2"
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

# only_library_hazards LOG: racecheck's hazards in LOG are all between
# accesses inside nvjet* kernels, and the program itself passed
only_library_hazards() {
    grep -q 'Race reported' "$1" || return 1
    grep -q 'Target application returned an error' "$1" && return 1
    grep -E '========= +(Error|Warning|and )' "$1" | grep -q -v -E 'access at nvjet' && return 1
    return 0
}

# sanitize KERNEL: its three sanitizer results, " | "-separated, into $LOGS/KERNEL.sanitizers
sanitize() {
    local k=$1 tool r out=""
    for tool in $SANITIZERS; do
        if [ "$EMU" = 1 ]; then
            r=$(EMU_ORDER=random EMU_SEED=11 run_one "$LOGS/$k.$tool.log" "$(bin_of asan "$k")" check)
        else
            r=$(run_one "$LOGS/$k.$tool.log" "$SANITIZER" --tool "$tool" --error-exitcode 1 "$(bin_of plain "$k")" check)
            # racecheck reports hazards inside cuBLASLt's own Hopper GEMM
            # kernels (nvjet*: closed code whose TMA/mbarrier copies it does
            # not follow; seen on an H200, and leaving them out with
            # --kernel-name-exclude crashed the sanitizer there). When every
            # hazard is in such a kernel and the check itself passed, say so
            # instead of failing our kernels.
            if [ "$tool" = racecheck ] && [ "$r" != PASS ] && only_library_hazards "$LOGS/$k.$tool.log"; then
                r="PASS ($(grep -c 'Race reported' "$LOGS/$k.$tool.log") hazards, all inside cuBLASLt's nvjet kernels)"
            fi
            # some virtualised GPUs (gVisor) refuse the sanitizer outright: say
            # so instead of blaming the kernel
            grep -q 'Device not supported' "$LOGS/$k.$tool.log" && r="n/a (sanitizer: device not supported)"
        fi
        out="$out | $r"
    done
    echo "$out" >"$LOGS/$k.sanitizers"
}

# the PTX wrappers of llmc/ptx.cuh against the layouts the PTX ISA
# documents (dev/emu/tests/ptx.cu; wgmma's only on compute capability 9.0):
# if a tensor-core kernel fails its check below, this row says whether the
# instructions themselves behave as the kernels (and the emulator) assume
if [ "$EMU" = 1 ]; then PTX_TEST=build/emu/plain/ptx; else PTX_TEST=build/cuda/ptx_layouts; fi
ptx_result=$(run_one "$LOGS/ptx_layouts.log" "$PTX_TEST")
echo "ptx wrappers: $ptx_result"

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
case "$ptx_result" in PASS*) ;; *) failures=$((failures + 1));; esac
rows=("| PTX wrappers (dev/emu/tests/ptx.cu): mma.sync, ldmatrix, cp.async, wgmma against the ISA's layouts | $ptx_result | | | |")
for k in $KERNELS; do
    row="| $k | $(cat "$LOGS/$k.check")$(cat "$LOGS/$k.sanitizers") |"
    case "$row" in *FAIL*|*TIMEOUT*) failures=$((failures + 1));; esac
    echo "$row"
    rows+=("$row")
done

# ----------------------------------------------------------------------------
# the GPU trainer: against the CPU trainer on a tiny model, then 124M speed

trainer_rows=()
# trainer_row NAME RESULT: one row of the trainer table; failures counted
trainer_row() {
    trainer_rows+=("| $1 | $2 |")
    case "$2" in PASS*|n/a*) ;; *) failures=$((failures + 1));; esac
    echo "$1: $2"
}
if [ "${GPU_VALIDATE_TRAINER:-1}" = 0 ]; then
    echo "trainer: skipped (GPU_VALIDATE_TRAINER=0)"
elif [ ! -x "$GPU_TRAINER" ]; then
    trainer_row "GPU trainer builds" "FAIL ($GPU_TRAINER missing)"
else
    # inputs and the PyTorch references (1 GB at 124M) in a temporary folder
    W=$(mktemp -d) || exit 1
    trap 'rm -rf "$W"' EXIT
    "$PY" tests/make_model.py "$W/tiny.bin" 2 2 128 512 64 5
    "$PY" tests/make_shard.py "$W/tr_000.bin" 20000 1 512
    "$PY" tests/make_shard.py "$W/va_000.bin" 4000 2 512
    TINY=(-e "$W/tiny.bin" -i "$W/tr_*.bin" -j "$W/va_*.bin" -b 2 -t 16 -x 10 -v 5 -m 2 -l 1e-3 -g 0 -tz "")
    if [ -n "${GPU_VALIDATE_CPU_REF:-}" ]; then cp "$GPU_VALIDATE_CPU_REF" "$LOGS/cpu_tiny.log"
    else OMP_NUM_THREADS=1 run_one "$LOGS/cpu_tiny.log" ./train_gpt2 "${TINY[@]}" >/dev/null; fi
    r=$(run_one "$LOGS/gpu_tiny.log" "$GPU_TRAINER" "${TINY[@]}")
    if [ "$r" = PASS ]; then
        if why=$(bash scripts/compare_losses.sh "$LOGS/cpu_tiny.log" "$LOGS/gpu_tiny.log"); then r=PASS
        else r="FAIL ($why)"; echo "$LOGS/gpu_tiny.log" >>"$LOGS/failed"; fi
    fi
    trainer_row "tiny model, 10 steps: losses match the CPU trainer" "$r"
    r=$(run_one "$LOGS/gpu_tiny2.log" "$GPU_TRAINER" "${TINY[@]}")
    steps_of() { grep '^step' "$1" | sed 's/ | [0-9.]* ms .*//'; }
    if [ "$r" = PASS ] && [ "$(steps_of "$LOGS/gpu_tiny.log")" != "$(steps_of "$LOGS/gpu_tiny2.log")" ]; then
        r="FAIL (two runs differ)"
    fi
    trainer_row "tiny model, two runs: the same bits" "$r"
    # -aw 1: our attention on Hopper's wgmma (compute capability 9.0; the
    # emulation reports 9.0): the CPU trainer's losses too
    WGMMA=1; [ "$EMU" = 1 ] || [ "$cc" = 9.0 ] || WGMMA=0
    if [ "$WGMMA" = 1 ]; then
        r=$(run_one "$LOGS/gpu_tiny_aw1.log" "$GPU_TRAINER" "${TINY[@]}" -aw 1)
        if [ "$r" = PASS ]; then
            if why=$(bash scripts/compare_losses.sh "$LOGS/cpu_tiny.log" "$LOGS/gpu_tiny_aw1.log"); then r=PASS
            else r="FAIL ($why)"; echo "$LOGS/gpu_tiny_aw1.log" >>"$LOGS/failed"; fi
        fi
    else r="n/a (compute capability $cc: wgmma is Hopper's)"; fi
    trainer_row "tiny model, -aw 1 (attention on wgmma): losses match the CPU trainer" "$r"
    # -at 1: its choices, saved with the checkpoints, make a resume use the
    # same algorithms: the step 6 model file of the run it continues, bit for bit
    r=$(run_one "$LOGS/gpu_at.log" "$GPU_TRAINER" "${TINY[@]}" -at 1 -x 6 -n 3 -o "$W/at")
    if [ "$r" = PASS ]; then
        mkdir -p "$W/at_resume"
        cp "$W/at/model_00000003.bin" "$W/at/state_00000003_00000.bin" "$W/at/matmul_autotune_00000.txt" "$W/at_resume/"
        r=$(run_one "$LOGS/gpu_at_resume.log" "$GPU_TRAINER" "${TINY[@]}" -at 1 -x 6 -n 3 -y 1 -o "$W/at_resume")
        if [ "$r" = PASS ] && ! cmp -s "$W/at/model_00000006.bin" "$W/at_resume/model_00000006.bin"; then
            r="FAIL (the resumed run's step 6 model file differs)"
        fi
    fi
    trainer_row "tiny model, -at 1: a resume with the saved choices, the same bits" "$r"
    # ZeRO-3 on one GPU moves wte in vocabulary chunks (llmc/zero.h) and runs
    # the classifier in two passes over them: a model whose Vp = 640 makes
    # three chunks; its losses within bf16's tolerance of ZeRO-0's
    "$PY" tests/make_model.py "$W/chunked.bin" 2 2 64 600 64 5
    "$PY" tests/make_shard.py "$W/trv_000.bin" 20000 1 600
    CHUNKED=(-e "$W/chunked.bin" -i "$W/trv_*.bin" -j "" -b 2 -t 16 -x 10 -l 1e-3 -g 0 -tz "")
    r=$(run_one "$LOGS/gpu_chunks_z0.log" "$GPU_TRAINER" "${CHUNKED[@]}")
    [ "$r" = PASS ] && r=$(run_one "$LOGS/gpu_chunks_z3.log" "$GPU_TRAINER" "${CHUNKED[@]}" -z 3)
    if [ "$r" = PASS ]; then
        if ! grep -q '^wte in 3 vocabulary chunks' "$LOGS/gpu_chunks_z3.log"; then r="FAIL (no vocabulary chunks)"
        elif why=$(bash scripts/compare_losses.sh "$LOGS/gpu_chunks_z0.log" "$LOGS/gpu_chunks_z3.log"); then r=PASS
        else r="FAIL ($why)"; echo "$LOGS/gpu_chunks_z3.log" >>"$LOGS/failed"; fi
    fi
    trainer_row "ZeRO-3 on one GPU (wte in 3 vocabulary chunks): losses match ZeRO-0" "$r"

    # test_gpt2cu against PyTorch (train_gpt2.py writes the reference here):
    # a d2 model with a 512-token vocabulary, and on a GPU the 124M shape
    refs="d2:512"
    threads=$(nproc); [ "$threads" -gt 16 ] && threads=16   # PyTorch's CPU threads for the references
    [ "$EMU" = 1 ] || refs="$refs d12:50257"
    for ref in $refs; do
        m=${ref%%:*} v=${ref##*:}
        if ! "$PY" -c 'import torch' 2>/dev/null; then trainer_row "test_gpt2cu vs PyTorch, $m" "n/a (no PyTorch here)"; continue; fi
        T=$([ "$m" = d2 ] && echo 32 || echo 64)
        max_t=$([ "$m" = d2 ] && echo 64 || echo 1024)
        if ! "$PY" train_gpt2.py reference --model "$m" --vocab "$v" --max_seq_len "$max_t" --B 4 --T "$T" --threads "$threads" \
            --out "$W/ref_$m" > "$LOGS/reference_$m.log" 2>&1; then
            trainer_row "test_gpt2cu vs PyTorch, $m" "FAIL (train_gpt2.py reference failed)"
            echo "$LOGS/reference_$m.log" >>"$LOGS/failed"; continue
        fi
        trainer_row "test_gpt2cu vs PyTorch, $m (V=$v), B=4 T=$T: logits, loss, gradients, 10 steps" \
            "$(run_one "$LOGS/test_gpt2cu_$m.log" "$GPU_TEST" "$W/ref_$m")"
    done

    # speed: 124M, or the tiny model under the emulation (the plumbing only)
    if [ "$EMU" = 1 ]; then SPEED=(-e "$W/tiny.bin" -i "$W/tr_*.bin" -b 2 -t 16 -x 3); bench_what="tiny model (emulated)"
    else
        B=${GPU_VALIDATE_B:-64}; STEPS=${GPU_VALIDATE_STEPS:-20}
        "$PY" tests/make_shard.py "$W/bench_000.bin" $((B * 1024 * (STEPS + 1) + 1)) 3
        SPEED=(-e d12 -i "$W/bench_*.bin" -b "$B" -t 1024 -x "$STEPS"); bench_what="GPT-2 124M (d12), B=$B, T=1024"
    fi
    r=$(run_one "$LOGS/gpu_speed.log" "$GPU_TRAINER" "${SPEED[@]}" -j "" -g 0 -tz "" -pk 1 -lg 2)
    trainer_row "$bench_what: trains" "$r"
    # -lg: the GPU's state from NVML (n/a where NVML is not there to ask)
    gpu_state=$(grep '^gpu: ' "$LOGS/gpu_speed.log" | tail -1)
    lg_row="-lg: the GPU's utilization, clocks, power from NVML"
    case "$gpu_state" in
        "gpu: n/a"*) why=${gpu_state#gpu: n/a (}; trainer_row "$lg_row" "n/a (${why%)})";;
        "gpu: "*) trainer_row "$lg_row" "PASS (${gpu_state#gpu: })";;
        *) trainer_row "$lg_row" "FAIL (no gpu: line)";;
    esac
    # median over the steps after the first: the number before "ms" and
    # "tok/s", after "MFU"
    median_field() {   # KEY OFFSET, of $LOG (default: the speed run's)
        grep '^step [0-9]*/[0-9]* | loss' "${LOG:-$LOGS/gpu_speed.log}" | tail -n +2 |
            awk -v key="$1" -v off="$2" '{ for (i = 2; i < NF; i++) if ($i == key) print $(i + off) }' |
            tr -d '%' | sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "n/a"}'
    }
    # ratio A B: A / B as "R.RRx" (n/a where either is missing)
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "n/a" }'; }
    speed_ms=$(median_field ms -1); speed_toks=$(median_field tok/s -1); speed_mfu=$(median_field MFU 1)
    speed_mem=$(grep -m1 '^memory:' "$LOGS/gpu_speed.log" | sed 's/^memory: //')
    echo "speed: $bench_what: $speed_ms ms/step, $speed_toks tok/s, MFU $speed_mfu%"
    # memory against llm.c at the same batch, each with llm.c's defaults
    # (GELU recomputed, fp32 master weights): our plan from a one-step run
    # with -r 1 -w 1, llm.c's from its allocation list (scripts/llmc_memory.sh)
    r=$(run_one "$LOGS/gpu_memory.log" "$GPU_TRAINER" "${SPEED[@]}" -x 1 -r 1 -w 1 -j "" -g 0 -tz "")
    trainer_row "$bench_what, -r 1 -w 1: memory plan" "$r"
    mem_ours=$(grep -m1 '^memory:' "$LOGS/gpu_memory.log" | sed -n 's/.* = \([0-9.]*\) GiB of .*/\1/p')
    dims=$(grep -m1 '^model:' "$LOGS/gpu_speed.log" |
           sed -n 's/^model: L=\([0-9]*\) NH=\([0-9]*\) C=\([0-9]*\) maxT=\([0-9]*\) V=[0-9]* (Vp=\([0-9]*\)).*/\1 \2 \3 \5 \4/p')
    bt=$(grep -m1 '^batch:' "$LOGS/gpu_speed.log" | sed -n 's/^batch: B=\([0-9]*\) T=\([0-9]*\),.*/\1 \2/p')
    # shellcheck disable=SC2086 # dims and bt are lists of numbers
    mem_llmc=$(bash scripts/llmc_memory.sh $dims $bt 2>/dev/null || echo "?")
    mem_vs=$(awk -v a="$mem_ours" -v b="$mem_llmc" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) { d = 100 * (1 - a / b); printf "%.1f%% %s", d < 0 ? -d : d, d < 0 ? "higher" : "lower" } else print "n/a" }')
    echo "memory: ours ${mem_ours:-?} GiB, llm.c ${mem_llmc} GiB ($mem_vs)"

    # cuDNN's attention (build/cudnn/): its kernels against the CPU
    # reference and beside ours, then the trainer with it: the tiny model
    # against the CPU trainer, and the speed run (tokens/s against ours)
    CUDNN_TRAINER=build/cudnn/train_gpt2cu
    if [ "${GPU_VALIDATE_CUDNN:-1}" = 0 ]; then
        trainer_row "cuDNN attention" "n/a (GPU_VALIDATE_CUDNN=0)"
    elif [ "$EMU" = 1 ]; then
        trainer_row "cuDNN attention" "n/a (emulation: cuDNN needs the GPU; tests/t_cudnn.sh checks its graphs)"
    elif [ ! -x "$CUDNN_TRAINER" ] || [ ! -x build/cudnn/attention ]; then
        trainer_row "cuDNN attention" "FAIL (build/cudnn missing: make cudnn)"
    else
        trainer_row "cuDNN attention: kernels match the CPU reference (build/cudnn/attention bench)" \
            "$(run_one "$LOGS/cudnn_attention.bench.log" build/cudnn/attention bench)"
        r=$(run_one "$LOGS/cudnn_tiny.log" "$CUDNN_TRAINER" "${TINY[@]}")
        if [ "$r" = PASS ]; then
            if why=$(bash scripts/compare_losses.sh "$LOGS/cpu_tiny.log" "$LOGS/cudnn_tiny.log"); then r=PASS
            else r="FAIL ($why)"; echo "$LOGS/cudnn_tiny.log" >>"$LOGS/failed"; fi
        fi
        trainer_row "cuDNN attention: tiny model, 10 steps: losses match the CPU trainer" "$r"
        for ref in $refs; do   # the PyTorch references written above
            m=${ref%%:*}
            [ -d "$W/ref_$m" ] || continue
            trainer_row "cuDNN attention: test_gpt2cu vs PyTorch, $m" \
                "$(run_one "$LOGS/cudnn_test_gpt2cu_$m.log" build/cudnn/test_gpt2cu "$W/ref_$m")"
        done
        r=$(run_one "$LOGS/cudnn_speed.log" "$CUDNN_TRAINER" "${SPEED[@]}" -j "" -g 0 -tz "" -pk 1)
        trainer_row "cuDNN attention: $bench_what: trains" "$r"
        cudnn_toks=$(LOG=$LOGS/cudnn_speed.log median_field tok/s -1)
        cudnn_vs=$(ratio "$cudnn_toks" "$speed_toks"); [ "$cudnn_vs" = n/a ] || cudnn_vs="$cudnn_vs ours"
        echo "cuDNN attention: $cudnn_toks tok/s ($cudnn_vs)"
    fi

    # speed_variant NAME FLAG VALUE: the speed run again with one setting
    # changed, with the faster attention (cuDNN's where it ran); its median
    # tokens/s in variant_toks, the default run's as a multiple of it in variant_vs
    if [ -n "${cudnn_toks:-}" ]; then ab_trainer=$CUDNN_TRAINER ab_toks=$cudnn_toks ab_what="cuDNN attention"
    else ab_trainer=$GPU_TRAINER ab_toks=$speed_toks ab_what="our attention"; fi
    speed_variant() {
        local log="$LOGS/speed_${2#-}$3.log"
        trainer_row "$bench_what, $ab_what, $2 $3 ($1): trains" \
            "$(run_one "$log" "$ab_trainer" "${SPEED[@]}" "$2" "$3" -j "" -g 0 -tz "")"
        variant_toks=$(LOG=$log median_field tok/s -1)
        variant_vs=$(ratio "$ab_toks" "$variant_toks")
    }
    # our_variant NAME FLAG VALUE: the speed run of our build again with one
    # of our attention's settings changed, profiled (logs/speed_aw1.log for
    # -aw 1); its median tokens/s in variant_toks
    our_variant() {
        local log="$LOGS/speed_${2#-}$3.log"
        trainer_row "$bench_what, $1 ($2 $3): trains" \
            "$(run_one "$log" "$GPU_TRAINER" "${SPEED[@]}" "$2" "$3" -j "" -g 0 -tz "" -pk 1)"
        variant_toks=$(LOG=$log median_field tok/s -1)
    }
    # the matmul epilogues' work (GELU, gelu', dbias) in our own kernels (-ge
    # 0): whether the fusions pay on this GPU; cuBLASLt's algorithms chosen
    # by timing (-at 1): whether its heuristic's first is the fastest
    speed_variant "epilogues apart" -ge 0; ge0_toks=$variant_toks; ge0_vs=$variant_vs
    speed_variant "matmuls autotuned" -at 1; at1_toks=$variant_toks; at1_vs=$variant_vs
    # our attention on wgmma (-aw 1) against the default (mma.sync)
    if [ "$WGMMA" = 1 ]; then
        our_variant "our attention on wgmma" -aw 1; aw1_toks=$variant_toks; aw1_vs=$(ratio "$aw1_toks" "$speed_toks")
        echo "attention on wgmma: $aw1_toks tok/s ($aw1_vs the mma.sync run)"
    fi
    # our attention's dq recomputing dS (-as 0) against the default, which
    # reads the dS dkdv stores: what storing it buys (or costs) at this batch
    our_variant "our attention's dq recomputing dS" -as 0; as0_toks=$variant_toks
    as0_vs=$(ratio "$speed_toks" "$as0_toks")
    echo "dq recomputing dS: $as0_toks tok/s (the default, dS stored, $as0_vs that)"

    # several GPUs, one rank each (mpirun; NCCL): the tiny model at every
    # ZeRO stage against one GPU at the same total batch, then the speed run
    # on all of them at ZeRO-1: scaling efficiency = tokens/s on N GPUs / (N
    # x tokens/s on one). Under the emulation: 2 ranks on the one emulated device.
    NG=${GPU_VALIDATE_GPUS:-$([ "$EMU" = 1 ] && echo 2 || nvidia-smi -L 2>/dev/null | grep -c '^GPU')}
    MPI=(mpirun -np "$NG" --oversubscribe)
    [ "$(id -u)" -eq 0 ] && MPI+=(--allow-run-as-root)
    if [ "$NG" -lt 2 ]; then
        trainer_row "several GPUs: ZeRO-0..3 match one GPU; scaling" "n/a (one GPU)"
    elif ! command -v mpirun >/dev/null; then
        trainer_row "several GPUs: ZeRO-0..3 match one GPU; scaling" "n/a (no mpirun: apt-get install openmpi-bin)"
    else
        run_one "$LOGS/gpu_tiny_1x$NG.log" "$GPU_TRAINER" "${TINY[@]}" -d $((32 * NG)) >/dev/null
        for z in 0 1 2 3; do
            r=$(run_one "$LOGS/gpu_tiny_${NG}ranks_z$z.log" "${MPI[@]}" "$GPU_TRAINER" "${TINY[@]}" -d $((32 * NG)) -z $z)
            if [ "$r" = PASS ]; then
                if why=$(bash scripts/compare_losses.sh "$LOGS/gpu_tiny_1x$NG.log" "$LOGS/gpu_tiny_${NG}ranks_z$z.log"); then r=PASS
                else r="FAIL ($why)"; echo "$LOGS/gpu_tiny_${NG}ranks_z$z.log" >>"$LOGS/failed"; fi
            fi
            trainer_row "tiny model on $NG ranks, ZeRO-$z: losses match one GPU" "$r"
        done
        # the speed run's per-GPU batch on every GPU (ZeRO-1)
        per_rank=$(grep -m1 '^batch:' "$LOGS/gpu_speed.log" | sed 's/.*, \([0-9]*\) tokens per step.*/\1/')
        r=$(run_one "$LOGS/gpu_speed_$NG.log" "${MPI[@]}" "$GPU_TRAINER" "${SPEED[@]}" -d $((per_rank * NG)) -z 1 -j "" -g 0 -tz "")
        trainer_row "$bench_what on $NG GPUs, ZeRO-1: trains" "$r"
        toks_n=$(grep '^step [0-9]*/[0-9]* | loss' "$LOGS/gpu_speed_$NG.log" | tail -n +2 |
                 awk '{ for (i = 2; i < NF; i++) if ($i == "tok/s") print $(i - 1) }' | sort -n |
                 awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "n/a"}')
        scaling=$(awk -v n="$toks_n" -v one="$speed_toks" -v g="$NG" 'BEGIN{ if (n + 0 > 0 && one + 0 > 0) printf "%.1f", 100 * n / (g * one); else print "n/a" }')
        echo "scaling: $NG GPUs: $toks_n tok/s, $scaling% of $NG x $speed_toks"
    fi
fi

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
    echo "## The GPU trainer"
    echo
    echo "| check | result |"
    echo "| --- | --- |"
    printf '%s\n' "${trainer_rows[@]}"
    echo
    if [ -n "${bench_what:-}" ]; then
        echo "Speed, $bench_what: median ${speed_ms:-?} ms per step, ${speed_toks:-?} tokens/s, MFU ${speed_mfu:-n/a}%"
        echo "(steps after the first); memory plan: ${speed_mem:-?}"
        echo "With ${ab_what:-?} and one setting changed: GELU, gelu' and dbias in our own kernels, not the"
        echo "matmuls' epilogues (-ge 0): median"
        echo "${ge0_toks:-?} tokens/s; the fused run is ${ge0_vs:-n/a} that"
        echo "cuBLASLt's algorithms chosen by timing (-at 1): median ${at1_toks:-?} tokens/s; the heuristic's"
        echo "run is ${at1_vs:-n/a} that"
        if [ -n "${aw1_toks:-}" ]; then
            echo
            echo "Our attention on wgmma (-aw 1): median ${aw1_toks} tokens/s, ${aw1_vs} the mma.sync run's (the"
            echo "profile of that run is in logs/speed_aw1.log)"
        fi
        echo
        echo "Our attention's dq recomputing dS (-as 0): median ${as0_toks:-?} tokens/s; the default (dq from"
        echo "the dS dkdv stores) is ${as0_vs:-n/a} that (the profile of that run is in logs/speed_as0.log)"
        echo
        echo "Memory against llm.c at the same batch, both with llm.c's defaults (GELU recomputed, fp32 master"
        echo "weights): ours ${mem_ours:-?} GiB planned (-r 1 -w 1), llm.c ${mem_llmc:-?} GiB by its allocation list"
        echo "(scripts/llmc_memory.sh, cuDNN attention): ${mem_vs:-n/a} (aim: at least 15% lower)"
        if [ -n "${cudnn_toks:-}" ]; then
            echo
            echo "With cuDNN's attention (build/cudnn/train_gpt2cu): median ${cudnn_toks} tokens/s, ${cudnn_vs} (the"
            echo "profile of that run is in logs/cudnn_speed.log)"
        fi
        if [ -n "${scaling:-}" ]; then
            echo
            echo "On $NG GPUs (ZeRO-1, the same batch per GPU): median ${toks_n:-?} tokens/s, scaling efficiency"
            echo "$scaling% (tokens/s on $NG GPUs / ($NG x one GPU's))"
        fi
        echo
        echo "Where the step's GPU time goes (-pk 1: CUDA events between kernel families):"
        echo
        echo '```'
        grep '^profile:' "$LOGS/gpu_speed.log" | sed 's/^profile: //'
        echo '```'
        echo
    fi
    echo "## Bench at GPT-2 124M shapes"
    echo
    echo '```'
    for k in $KERNELS cudnn_attention; do grep -h '^bench ' "$LOGS/$k.bench.log" 2>/dev/null; done
    echo '```'
    echo
    if [ $failures -gt 0 ] || [ "$build_status" != ok ]; then
        echo "## Failures"
        echo
        [ "$build_status" != ok ] && { echo "build (last lines of logs/build.log):"; echo '```'; tail -20 "$LOGS/build.log"; echo '```'; }
        while IFS= read -r f; do
            echo "$(basename "$f") (first error lines):"
            echo '```'
            grep -m 6 -E '^error|========= (Error|Invalid|Barrier|Program hit)' "$f" || tail -5 "$f"
            echo '```'
        done < <(sort "$LOGS/failed" 2>/dev/null)
    fi
} >"$report"
echo "report: $report"
if [ $failures -gt 0 ] || [ "$build_status" != ok ]; then
    echo "gpu_validate: $failures failure(s) among $(echo $KERNELS | wc -w) kernel families and the trainer checks (build: $build_status)"
    exit 1
fi
echo "gpu_validate: all $(echo $KERNELS | wc -w) kernel families and the trainer checks passed"
