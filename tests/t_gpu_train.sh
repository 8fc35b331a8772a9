#!/usr/bin/env bash
# tests/t_gpu_train.sh: the GPU trainer (train_gpt2.cu), whole training steps
# under the CUDA emulation (dev/emu), against the CPU trainer: the same
# flags, data and model give the same losses within bf16 precision, runs are
# bitwise deterministic, resume is exact, checkpoints load in both trainers,
# and a GPU trainer with one broken kernel fails the comparison. nvcc builds
# the real thing (train_gpt2cu).
#
# The model is tiny (tests/make_model.py: L=2, NH=2, C=128, head size 64,
# V=512) so the emulated classifier stays cheap; B=2, T=16, 10 steps.
#
# Tolerance: 0.01 nats on every train and val loss, 1% on the grad norm.
# Measured differences are below 1.2e-3 (bf16 parameters and activations
# carry 8 significant bits, a relative rounding of at most 2^-9 per stored
# value, against the CPU's fp32), and a 10% larger learning rate moves the
# CPU's own losses by up to 0.045 by step 10: the bound sits 8x above the
# noise and 4x below a change of that size.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

if ! out=$(make -s -j"$(nproc)" build/emu/asan/train_gpt2cu build/emu/plain/train_gpt2cu build/emu/tsan/train_gpt2cu \
        train_gpt2 2>&1); then
    fail gpu_train_build "make failed"; printf '%s\n' "$out" | tail -20 | sed 's/^/    /'; exit 0
fi
PY=/usr/bin/python3
$PY tests/make_model.py "$TMP/tiny.bin" 2 2 128 512 64 5
$PY tests/make_shard.py "$TMP/tr_000.bin" 20000 1 512
$PY tests/make_shard.py "$TMP/va_000.bin" 4000 2 512
ARGS=(-e "$TMP/tiny.bin" -i "$TMP/tr_*.bin" -j "$TMP/va_*.bin" -b 2 -t 16 -x 10 -v 5 -m 2 -l 1e-3 -tz "")
GPU=build/emu/plain/train_gpt2cu

# step lines without the timings: "step N/M | loss X | lr Y | norm Z" and val lines
steps() { grep '^step' "$1" | sed 's/ | [0-9.]* ms .*//'; }
# compare_runs NAME A B: every loss within 0.01, every norm within 1% (scripts/compare_losses.sh)
compare_runs() {
    local why
    if why=$(bash scripts/compare_losses.sh "$2" "$3"); then pass "$1"; else fail "$1" "$why"; fi
}

OMP_NUM_THREADS=1 ./train_gpt2 "${ARGS[@]}" -o "$TMP/cpu" > "$TMP/cpu.txt" 2>&1
"$GPU" "${ARGS[@]}" -o "$TMP/gpu" -n 5 -s 5 -g 4 > "$TMP/gpu.txt" 2>&1 || { fail gpu_train_runs "exit $?"; tail -5 "$TMP/gpu.txt"; }
compare_runs gpu_train_matches_cpu_trainer "$TMP/cpu.txt" "$TMP/gpu.txt"
OMP_NUM_THREADS=1 ./train_gpt2 "${ARGS[@]}" -l 1.1e-3 > "$TMP/cpu_lr.txt" 2>&1
if compare_runs x "$TMP/cpu.txt" "$TMP/cpu_lr.txt" | grep -q '^FAIL'; then pass gpu_train_tolerance_sees_10pct_lr
else fail gpu_train_tolerance_sees_10pct_lr "a 10% larger learning rate passes the comparison: the tolerance is too loose"; fi
check gpu_train_prints_memory_plan grep -q '^memory: parameters .* GiB of .* GiB free' "$TMP/gpu.txt"
"$GPU" "${ARGS[@]}" -x 1 -pk 1 > "$TMP/pk1.txt" 2>&1
check gpu_train_profile_of_one_step_says_why_none grep -q '^profile: none: -pk 1 times the steps after the first' "$TMP/pk1.txt"

# -r 1: GELU's output recomputed in the backward instead of stored, still the
# CPU trainer's losses; with -pk 1, which must not change them, and prints
# the time per kernel family
"$GPU" "${ARGS[@]}" -r 1 -pk 1 > "$TMP/gpu_r1.txt" 2>&1
compare_runs gpu_train_recompute_matches_cpu_trainer "$TMP/cpu.txt" "$TMP/gpu_r1.txt"
check gpu_train_recompute_in_memory_plan grep -q '^memory: .*GELU recomputed' "$TMP/gpu_r1.txt"
families=$(grep -cE '^profile: (encoder|layernorm|matmul|attention|gelu|classifier|global norm|adamw) ' "$TMP/gpu_r1.txt")
if grep -q '^profile: GPU time per step by kernel family, mean of 9 steps' "$TMP/gpu_r1.txt" && [ "$families" = 8 ]
then pass gpu_train_profile_table
else fail gpu_train_profile_table "want a table of 8 kernel families over 9 steps: $(grep '^profile' "$TMP/gpu_r1.txt" | head -3)"; fi
# the same run with -lg 3 (llm.c's GPU log, from NVML): a line after steps 3,
# 6 and 9 (the emulated device has no NVML: "n/a" and why), the same losses
"$GPU" "${ARGS[@]}" -r 1 -lg 3 > "$TMP/gpu_lg.txt" 2>&1
after=$(grep -B1 '^gpu: n/a (an emulated device)$' "$TMP/gpu_lg.txt" | grep -o '^step [0-9]*/10 | loss' | tr '\n' ' ')
if [ "$after" = "step 3/10 | loss step 6/10 | loss step 9/10 | loss " ]; then pass gpu_train_log_gpu_every_3_steps
else fail gpu_train_log_gpu_every_3_steps "gpu lines after: '$after'"; fi
compare_runs gpu_train_log_gpu_keeps_losses "$TMP/gpu_r1.txt" "$TMP/gpu_lg.txt"
# llmc/gpu_info.h's own parts: the names of NVML's throttle bits, and (where
# the driver's NVML is absent, as on CI machines) a machine without it told as such
cat > "$TMP/gpu_info.c" <<'C'
#include <string.h>
#include "llmc/gpu_info.h"
int main(int argc, char **argv) {
    (void)argv;
    char names[160], line[320];
    gpu_info_throttle_names(0x4 | 0x40, names, sizeof(names));
    if (strcmp(names, "power cap, hardware thermal")) { printf("mask 0x44: '%s'\n", names); return 1; }
    gpu_info_throttle_names(0, names, sizeof(names));
    if (strcmp(names, "nothing")) { printf("mask 0: '%s'\n", names); return 1; }
    if (argc > 1) return 0;  // (NVML is here)
    if (gpu_info_open("00000000:01:00.0", NULL)) { printf("NVML opened on a machine without it\n"); return 1; }
    gpu_info_line(line, sizeof(line));
    if (strncmp(line, "gpu: n/a (no NVML: ", 19)) { printf("'%s'\n", line); return 1; }
    return 0;
}
C
if gcc -std=gnu11 -Wall -Wextra -Werror -I. "$TMP/gpu_info.c" -o "$TMP/gpu_info" -ldl 2> "$TMP/gpu_info.log" &&
    out=$("$TMP/gpu_info" $(ldconfig -p | grep -q 'libnvidia-ml.so.1 ' && echo nvml) 2>&1); then
    pass gpu_info_names_throttle_reasons_and_says_no_nvml
else fail gpu_info_names_throttle_reasons_and_says_no_nvml "$(cat "$TMP/gpu_info.log") ${out:-}"; fi
expect_error cpu_trainer_has_no_recompute "unknown flag '-r'" ./train_gpt2 "${ARGS[@]}" -r 1
# -r 2: ln1 and ln2 recomputed too, from the stored residuals by the same
# arithmetic as the forward: the same bits as -r 1 (losses, norms, and the
# model file written at the end)
"$GPU" "${ARGS[@]}" -r 2 -n 10 -o "$TMP/r2" > "$TMP/gpu_r2.txt" 2>&1
"$GPU" "${ARGS[@]}" -r 1 -n 10 -o "$TMP/r1" > "$TMP/gpu_r1b.txt" 2>&1
if [ -n "$(steps "$TMP/gpu_r2.txt")" ] && [ "$(steps "$TMP/gpu_r2.txt")" = "$(steps "$TMP/gpu_r1b.txt")" ] &&
   cmp -s "$(ls "$TMP"/r2/model_*.bin | tail -1)" "$(ls "$TMP"/r1/model_*.bin | tail -1)"
then pass gpu_train_recompute_layernorm_same_bits
else fail gpu_train_recompute_layernorm_same_bits "-r 2 differs from -r 1: $(diff <(steps "$TMP/gpu_r2.txt") <(steps "$TMP/gpu_r1b.txt") | head -4)"; fi
check gpu_train_recompute_layernorm_in_memory_plan grep -q '^memory: .*GELU and layernorms recomputed' "$TMP/gpu_r2.txt"

# -ge 0: GELU, gelu' and dbias by our kernels instead of the matmul epilogues, still the CPU trainer's losses
"$GPU" "${ARGS[@]}" -ge 0 > "$TMP/gpu_ge0.txt" 2>&1
compare_runs gpu_train_unfused_gelu_matches_cpu_trainer "$TMP/cpu.txt" "$TMP/gpu_ge0.txt"

# -aw 1: the attention on Hopper's wgmma (the emulation reports compute
# capability 9.0 and sums wgmma's products as mma.sync's): the same bits
"$GPU" "${ARGS[@]}" -aw 1 > "$TMP/gpu_aw1.txt" 2>&1
if grep -q '^attention: ours on wgmma' "$TMP/gpu_aw1.txt" && [ -n "$(steps "$TMP/gpu.txt")" ] &&
   [ "$(steps "$TMP/gpu.txt")" = "$(steps "$TMP/gpu_aw1.txt")" ]
then pass gpu_train_attention_wgmma_same_bits
else fail gpu_train_attention_wgmma_same_bits "$(diff <(steps "$TMP/gpu.txt") <(steps "$TMP/gpu_aw1.txt") | head -4)"; fi

# -as 0: our attention's dq recomputes dS instead of reading the dS its dkdv
# stored (under the emulation the same sums in the same order: the same
# bits), with mma.sync and with wgmma (whose dq kernels differ then)
check gpu_train_attention_reads_stored_ds grep -q '^attention: ours on mma.sync; its dq reads the dS its dkdv stores' \
    "$TMP/gpu.txt"
for aw in 0 1; do
    "$GPU" "${ARGS[@]}" -as 0 -aw $aw > "$TMP/gpu_as0_aw$aw.txt" 2>&1
    if grep -q '^attention: ours on .*; its dq recomputes dS (-as 0)$' "$TMP/gpu_as0_aw$aw.txt" &&
       [ -n "$(steps "$TMP/gpu.txt")" ] && [ "$(steps "$TMP/gpu.txt")" = "$(steps "$TMP/gpu_as0_aw$aw.txt")" ]
    then pass gpu_train_attention_ds_recomputed_aw${aw}_same_bits
    else fail gpu_train_attention_ds_recomputed_aw${aw}_same_bits \
        "$(grep '^attention' "$TMP/gpu_as0_aw$aw.txt"; diff <(steps "$TMP/gpu.txt") <(steps "$TMP/gpu_as0_aw$aw.txt") | head -4)"; fi
done

# -f 0 (llm.c's TF32 switch): every matmul takes bf16, so the same bits
"$GPU" "${ARGS[@]}" -f 0 > "$TMP/gpu_f0.txt" 2>&1
if [ -n "$(steps "$TMP/gpu.txt")" ] && [ "$(steps "$TMP/gpu.txt" | grep -v ' val ')" = "$(steps "$TMP/gpu_f0.txt" | grep -v ' val ')" ]
then pass gpu_train_tf32_off_same_bits
else fail gpu_train_tf32_off_same_bits "$(diff <(steps "$TMP/gpu.txt") <(steps "$TMP/gpu_f0.txt") | head -4)"; fi

# -w 1: fp32 master weights: the CPU trainer's losses, fp32 (v3) model files,
# and an exact resume (the bf16 weights are redone as the last step's
# stochastic rounding of the master weights, not their nearest rounding)
"$GPU" "${ARGS[@]}" -w 1 -o "$TMP/gw" -n 5 > "$TMP/gpu_w.txt" 2>&1
compare_runs gpu_train_master_weights_match_cpu_trainer "$TMP/cpu.txt" "$TMP/gpu_w.txt"
version=$(od -An -tu4 -j4 -N4 "$TMP/gw/model_00000010.bin" 2>/dev/null | tr -d ' ')
if [ "$version" = 3 ]; then pass gpu_train_master_weights_saved_fp32
else fail gpu_train_master_weights_saved_fp32 "model file version '$version', want 3 (fp32)"; fi
cp -r "$TMP/gw" "$TMP/gw_split" && mv "$TMP/gw_split/model_00000010.bin" "$TMP/gw_model_10.bin"
rm -f "$TMP/gw_split/state_00000010_00000.bin"
"$GPU" "${ARGS[@]}" -w 1 -o "$TMP/gw_split" -n 5 -y 1 > "$TMP/gw_resumed.txt" 2>&1
check gpu_train_samples grep -q '^sample: ' "$TMP/gpu.txt"

# the ASan + UBSan build: the same steps, bit for bit (every kernel is deterministic)
build/emu/asan/train_gpt2cu "${ARGS[@]}" > "$TMP/asan.txt" 2>&1
if [ -n "$(steps "$TMP/gpu.txt")" ] && [ "$(steps "$TMP/gpu.txt" | grep -v ' val ')" = "$(steps "$TMP/asan.txt" | grep -v ' val ')" ]
then pass gpu_train_deterministic_asan_and_plain
else fail gpu_train_deterministic_asan_and_plain "$(diff <(steps "$TMP/gpu.txt") <(steps "$TMP/asan.txt") | head -6)"; fi
# the race check (build/emu/tsan; dev/emu/emu_races.h): two
# steps, val losses, a sample and a checkpoint with no race between any two
# threads, blocks, launches or streams, and the plain build's bits
"$GPU" "${ARGS[@]}" -x 2 -o "$TMP/plain2" > "$TMP/plain2.txt" 2>&1
if build/emu/tsan/train_gpt2cu "${ARGS[@]}" -x 2 -o "$TMP/tsan2" > "$TMP/tsan2.txt" 2>&1 \
        && [ -n "$(steps "$TMP/plain2.txt")" ] && [ "$(steps "$TMP/plain2.txt")" = "$(steps "$TMP/tsan2.txt")" ] \
        && grep -q '^sample: ' "$TMP/tsan2.txt" && cmp -s "$TMP/plain2/model_00000002.bin" "$TMP/tsan2/model_00000002.bin"
then pass gpu_train_no_race_same_bits
else fail gpu_train_no_race_same_bits "$(grep -m4 -E 'WARNING|^error|^step' "$TMP/tsan2.txt")"; fi
# each warp running alone between barriers, last warp first, and cp.async
# copies landing at issue (dev/emu: a race between warps, or a buffer refilled
# under a reader, changes the bits): the same steps, bit for bit
EMU_ORDER=reverse EMU_WARPS=serial EMU_CP_ASYNC=early "$GPU" "${ARGS[@]}" > "$TMP/serial.txt" 2>&1
if [ -n "$(steps "$TMP/gpu.txt")" ] && [ "$(steps "$TMP/gpu.txt" | grep -v ' val ')" = "$(steps "$TMP/serial.txt" | grep -v ' val ')" ]
then pass gpu_train_same_bits_warps_serial
else fail gpu_train_same_bits_warps_serial "$(diff <(steps "$TMP/gpu.txt") <(steps "$TMP/serial.txt") | head -6)"; fi

# resume: drop the step-10 checkpoint, resume from step 5: the same steps 6..10, the same weights
cp -r "$TMP/gpu" "$TMP/split" && mv "$TMP/split/model_00000010.bin" "$TMP/gpu_model_10.bin"
rm -f "$TMP/split/state_00000010_00000.bin"
"$GPU" "${ARGS[@]}" -o "$TMP/split" -n 5 -s 5 -g 4 -y 1 > "$TMP/resumed.txt" 2>&1
late() { steps "$1" | grep -E '^step ([6-9]|10)/' | grep -v ' val '; }
if [ -n "$(late "$TMP/gpu.txt")" ] && [ "$(late "$TMP/gpu.txt")" = "$(late "$TMP/resumed.txt")" ]
then pass gpu_train_resume_exact_losses
else fail gpu_train_resume_exact_losses "$(diff <(late "$TMP/gpu.txt") <(late "$TMP/resumed.txt") | head -6)"; fi
check gpu_train_resume_same_weights cmp "$TMP/gpu_model_10.bin" "$TMP/split/model_00000010.bin"
if [ -n "$(late "$TMP/gpu_w.txt")" ] && [ "$(late "$TMP/gpu_w.txt")" = "$(late "$TMP/gw_resumed.txt")" ]
then pass gpu_train_master_weights_resume_exact_losses
else fail gpu_train_master_weights_resume_exact_losses "$(diff <(late "$TMP/gpu_w.txt") <(late "$TMP/gw_resumed.txt") | head -6)"; fi
check gpu_train_master_weights_resume_same_weights cmp "$TMP/gw_model_10.bin" "$TMP/gw_split/model_00000010.bin"
# a forged first moment (tests/huge_moment.py) and no val loss or sample to stop
# the run first: the update makes a weight inf, in the bf16 parameters, the
# master weights (-w 1) or ZeRO-3's shard, and the run stops before writing any
# file of step 6
for opt in "-w 0" "-w 1" "-z 3"; do
    d="$TMP/inf${opt// /}"; mkdir -p "$d"; cp "$TMP/gpu/model_00000005.bin" "$d/"
    $PY tests/huge_moment.py "$TMP/gpu/state_00000005_00000.bin" "$d/state_00000005_00000.bin" 100
    expect_error "gpu_train_inf_weight_not_saved ($opt)" "step 6: the weights hold NaN or inf" \
        "$GPU" "${ARGS[@]}" $opt -j "" -g 0 -l 2e-2 -x 6 -o "$d" -y 1
    left=$(ls "$d" | grep -v log.jsonl | tr '\n' ' ')
    [ "$left" = "model_00000005.bin state_00000005_00000.bin " ] && pass "... and no file of step 6 ($opt)" \
        || fail "... and no file of step 6 ($opt)" "left: $left"
done

# -p builds the model for the forward alone, without gradients, AdamW moments
# or master weights (6x the bf16 parameters, 10x with -w 1): on a GPU of 36
# MiB the tiny model samples, where the plan with them (0.037 GiB) did not fit
# (-p needs the tokenizer file, even for the empty prompt)
make -s vocab > /dev/null 2>&1 || fail gpu_train_vocab "make vocab failed"
if out=$(EMU_DEVICE_MIB=36 "$GPU" -e "$TMP/gpu/model_00000005.bin" -p "" -g 8 -w 1 2>&1) &&
        printf '%s' "$out" | grep -q '^memory: .* + gradients 0.000 + AdamW m,v 0.000 (fp32) + master weights 0.000 '
then pass gpu_train_sampling_allocates_no_training_state
else fail gpu_train_sampling_allocates_no_training_state "$(printf '%s' "$out" | grep -E '^(memory|error)')"; fi

# checkpoints cross over: the CPU trainer evaluates the GPU's bf16 file, the
# GPU trainer the CPU's fp32 file; each val loss matches the writer's
val() { grep 'val loss' "$1" | tail -1 | sed 's/.*val loss //'; }
near() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a - b <= 0.01 && b - a <= 0.01) }'; }
VAL_ARGS=(-i "$TMP/tr_*.bin" -j "$TMP/va_*.bin" -b 2 -t 16 -x 0 -m 2 -tz "")
OMP_NUM_THREADS=1 ./train_gpt2 -e "$TMP/gpu_model_10.bin" "${VAL_ARGS[@]}" > "$TMP/cpu_reads_gpu.txt" 2>&1
if near "$(val "$TMP/gpu.txt")" "$(val "$TMP/cpu_reads_gpu.txt")"; then pass gpu_checkpoint_loads_in_cpu_trainer
else fail gpu_checkpoint_loads_in_cpu_trainer "val loss $(val "$TMP/gpu.txt") vs $(val "$TMP/cpu_reads_gpu.txt")"; fi
"$GPU" -e "$TMP/cpu/model_00000010.bin" "${VAL_ARGS[@]}" > "$TMP/gpu_reads_cpu.txt" 2>&1
if near "$(val "$TMP/cpu.txt")" "$(val "$TMP/gpu_reads_cpu.txt")"; then pass cpu_checkpoint_loads_in_gpu_trainer
else fail cpu_checkpoint_loads_in_gpu_trainer "val loss $(val "$TMP/cpu.txt") vs $(val "$TMP/gpu_reads_cpu.txt")"; fi

# a broken kernel fails the comparison: the GPU trainer rebuilt with GELU's
# derivative off by its second term (a wrong gradient, right forward)
mkdir -p "$TMP/broken" && cp -r train_gpt2.cu llmc "$TMP/broken/"
sed -i 's/return 0.5f \* (1.0f + th) + 0.5f \* x \* sech2/return 0.5f * (1.0f + th) + 0.0f * x * sech2/' \
    "$TMP/broken/llmc/gelu.cuh"
if cmp -s llmc/gelu.cuh "$TMP/broken/llmc/gelu.cuh"; then fail gpu_train_broken_kernel_fails "the mutation did not apply"
else
    mkdir -p "$TMP/broken/src/llmc"
    for f in "$TMP/broken/train_gpt2.cu" "$TMP/broken"/llmc/*; do
        $PY dev/emu/rewrite.py "$f" "$TMP/broken/src/${f#"$TMP/broken/"}"
    done
    if g++ -std=c++17 -O1 -w -include dev/emu/cuda_emu.h -fno-strict-aliasing -x c++ "$TMP/broken/src/train_gpt2.cu" \
        -lpcre2-8 -o "$TMP/broken/train_gpt2cu" 2> "$TMP/broken/build.log"; then
        "$TMP/broken/train_gpt2cu" "${ARGS[@]}" > "$TMP/broken.txt" 2>&1
        if compare_runs x "$TMP/cpu.txt" "$TMP/broken.txt" | grep -q '^FAIL'; then pass gpu_train_broken_kernel_fails
        else fail gpu_train_broken_kernel_fails "a wrong GELU gradient still matches the CPU trainer"; fi
    else fail gpu_train_broken_kernel_fails "the broken build did not compile: $(head -3 "$TMP/broken/build.log")"; fi
fi

# -at 1: the choices are saved with the checkpoints (llmc/autotune_file.h)
# and read back by a run in the same -o, which keeps them in the file it
# writes. Emulated, cuBLASLt's stand-in has nothing to time, so the file
# holds its header and the choices put in by hand here.
AT=(-e "$TMP/tiny.bin" -i "$TMP/tr_*.bin" -j "" -b 2 -t 16 -x 2 -l 1e-3 -tz "" -g 0 -at 1)
"$GPU" "${AT[@]}" -n 2 -o "$TMP/at" > "$TMP/at.txt" 2>&1
ATF=$TMP/at/matmul_autotune_00000.txt
check gpu_train_autotune_file_written grep -qx 'llmc matmul autotune 1' "$ATF"
dev=$(sed -n 2p "$ATF")
CALL='call 8 4 2 0 1 0 0 0 0 0 16 16 16 16 1 3'
printf 'llmc matmul autotune 1\n%s\nlibrary 0\n%s\n' "$dev" "$CALL" > "$ATF"
"$GPU" "${AT[@]}" -y 1 -x 4 -n 2 -o "$TMP/at" > "$TMP/at2.txt" 2>&1
if grep -q 'matmul autotune: 1 choices read from' "$TMP/at2.txt" && grep -qx "$CALL" "$ATF"; then
    pass gpu_train_autotune_file_read_and_kept
else fail gpu_train_autotune_file_read_and_kept "$(grep -i autotune "$TMP/at2.txt") / $(tail -1 "$ATF")"; fi
printf 'llmc matmul autotune 1\ndevice another GPU\nlibrary 0\n%s\n' "$CALL" > "$ATF"
"$GPU" "${AT[@]}" -y 1 -x 5 -o "$TMP/at" > "$TMP/at3.txt" 2>&1
check gpu_train_autotune_file_of_another_gpu_set_aside grep -q 'was made on another GPU with cuBLASLt 0.*timing again' "$TMP/at3.txt"
bad_autotune() {   # NAME WANT LINE...: a file of these lines is refused with WANT
    local name=$1 want=$2; shift 2
    printf '%s\n' "$@" > "$ATF"
    expect_error "$name" "$want" "$GPU" "${AT[@]}" -y 1 -x 6 -o "$TMP/at"
}
bad_autotune gpu_train_autotune_rejects_other_file "matmul_autotune_00000.txt:1: not an autotune file" 'hello'
bad_autotune gpu_train_autotune_rejects_short_call "matmul_autotune_00000.txt:4: not a call line" \
    'llmc matmul autotune 1' "$dev" 'library 0' 'call 8 4 2 0 1 0 0 0 0 0 16 16 16 16 1'
bad_autotune gpu_train_autotune_rejects_candidate_past_found "matmul_autotune_00000.txt:4: not a call line" \
    'llmc matmul autotune 1' "$dev" 'library 0' 'call 8 4 2 0 1 0 0 0 0 0 16 16 16 16 3 3'
bad_autotune gpu_train_autotune_rejects_bad_alignment "matmul_autotune_00000.txt:4: not a call line" \
    'llmc matmul autotune 1' "$dev" 'library 0' 'call 8 4 2 0 1 0 0 0 0 0 16 24 16 16 0 3'
bad_autotune gpu_train_autotune_rejects_cut_header "ends after 2 line(s)" 'llmc matmul autotune 1' "$dev"
bad_autotune gpu_train_autotune_rejects_a_call_twice "matmul_autotune_00000.txt:5: the call of line 4 again" \
    'llmc matmul autotune 1' "$dev" 'library 0' "$CALL" 'call 8 4 2 0 1 0 0 0 0 0 16 16 16 16 0 3'
bad_autotune gpu_train_autotune_rejects_number_past_int "matmul_autotune_00000.txt:4: a number of more than 9 digits" \
    'llmc matmul autotune 1' "$dev" 'library 0' 'call 99999999999 4 2 0 1 0 0 0 0 0 16 16 16 16 1 3'
rm -f "$ATF"; mkfifo "$ATF"   # (opening it would block for ever)
expect_error gpu_train_autotune_rejects_fifo "not a regular file" "$GPU" "${AT[@]}" -y 1 -x 6 -o "$TMP/at"
rm -f "$ATF"

# the GPU trainer's own flags are range-checked like the others
expect_error gpu_train_rejects_r_3 "-r must be in [0, 2]" "$GPU" "${ARGS[@]}" -r 3
expect_error gpu_train_rejects_w_5 "-w must be in [0, 1]" "$GPU" "${ARGS[@]}" -w 5
expect_error gpu_train_rejects_ge_2 "-ge must be in [0, 1]" "$GPU" "${ARGS[@]}" -ge 2
expect_error gpu_train_rejects_f_2 "-f must be in [0, 1]" "$GPU" "${ARGS[@]}" -f 2
expect_error gpu_train_rejects_gr_2 "-gr must be in [0, 1]" "$GPU" "${ARGS[@]}" -gr 2
expect_error cpu_trainer_has_no_gr "unknown flag '-gr'" ./train_gpt2 "${ARGS[@]}" -gr 1
expect_error gpu_train_rejects_pk_2 "-pk must be in [0, 1]" "$GPU" "${ARGS[@]}" -pk 2
expect_error gpu_train_rejects_aw_2 "-aw must be in [0, 1]" "$GPU" "${ARGS[@]}" -aw 2
expect_error cpu_trainer_has_no_aw "unknown flag '-aw'" ./train_gpt2 "${ARGS[@]}" -aw 1
expect_error gpu_train_rejects_as_2 "-as must be in [0, 1]" "$GPU" "${ARGS[@]}" -as 2
$PY tests/make_model.py "$TMP/hs48.bin" 1 2 96 512 64 5   # head size 48
expect_error gpu_train_rejects_head_size_48 "head size 32 or 64" "$GPU" -e "$TMP/hs48.bin" "${VAL_ARGS[@]}"
# Vp = V = 500 (the CPU trainer takes it): refused before anything is
# allocated or written, not by a matmul's check mid-step
$PY -c "
import numpy as np; d=bytearray(open('$TMP/tiny.bin','rb').read()); h=np.frombuffer(d[:1024],np.int32).copy()
L, C, T = h[4], h[6], h[2]; h[3] = h[7] = 500; h[8] = 0   # (make_model.py pads to 128: cut wte to 500 rows)
open('$TMP/vp500.bin','wb').write(h.tobytes() + d[1024:1024 + 4 * 500 * C] + d[1024 + 4 * 512 * C:])"
expect_error gpu_train_rejects_vp_500 "Vp a multiple of 8; this model has Vp=500" "$GPU" -e "$TMP/vp500.bin" "${VAL_ARGS[@]}"
# a batch whose (B,T,4C) activations the kernels' int indices cannot reach:
# refused before any allocation (a shard holds the batch, so the loader passes)
$PY tests/make_shard.py "$TMP/big_000.bin" 4194305 1 512
expect_error gpu_train_rejects_int_overflowing_batch "B*T*4C = 65536*64*512 is over 2^31 - 2^16" \
    "$GPU" -e "$TMP/tiny.bin" -i "$TMP/big_*.bin" -j "" -b 65536 -t 64 -x 1 -tz ""

if out=$(make -s train_gpt2cu 2>&1); then pass gpu_train_nvcc_builds
else fail gpu_train_nvcc_builds "nvcc failed on train_gpt2.cu"; printf '%s\n' "$out" | tail -20 | sed 's/^/    /'; fi
