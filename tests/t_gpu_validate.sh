#!/usr/bin/env bash
# tests/t_gpu_validate.sh: scripts/gpu_validate.sh end to end without a GPU
# (GPU_VALIDATE_EMU=1: the emulated builds stand in for the device and the
# ASan build for compute-sanitizer), so the script works the first time real
# hardware runs it: it builds, runs the kernels and the trainer checks,
# writes the report, and a failing kernel run turns into a FAIL row, a
# Failures section and exit status 1.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

# contains NAME FILE STRING: FILE holds STRING
contains() {
    if grep -qF -- "$3" "$2"; then pass "$1"; else fail "$1" "no '$3' in $2"; sed 's/^/    /' "$2" | head -30; fi
}

export GPU_VALIDATE_EMU=1 GPU_VALIDATE_KERNELS=gelu
check gpu_validate_emulated_passes bash scripts/gpu_validate.sh "$TMP/ok"
contains gpu_validate_report_row "$TMP/ok/report.md" "| gelu | PASS | PASS | PASS | PASS |"
contains gpu_validate_ptx_layouts_row "$TMP/ok/report.md" "wgmma against the ISA's layouts | PASS |"
contains gpu_validate_report_names_machine "$TMP/ok/report.md" "# GPU validation: emulated"
contains gpu_validate_keeps_logs "$TMP/ok/logs/gelu.bench.log" "gelu N=8: forward and backward match the CPU reference"
contains gpu_validate_trainer_matches_cpu "$TMP/ok/report.md" "| tiny model, 10 steps: losses match the CPU trainer | PASS |"
contains gpu_validate_trainer_deterministic "$TMP/ok/report.md" "| tiny model, two runs: the same bits | PASS |"
contains gpu_validate_autotune_resume "$TMP/ok/report.md" "| tiny model, -at 1: a resume with the saved choices, the same bits | PASS |"
contains gpu_validate_vocabulary_chunks "$TMP/ok/report.md" "| ZeRO-3 on one GPU (wte in 3 vocabulary chunks): losses match ZeRO-0 | PASS |"
contains gpu_validate_test_gpt2cu "$TMP/ok/report.md" \
    "| test_gpt2cu vs PyTorch, d2 (V=512), B=4 T=32: logits, loss, gradients, 10 steps | PASS |"
contains gpu_validate_trainer_speed "$TMP/ok/report.md" "Speed, tiny model (emulated): median"
if grep -Eq "^[0-9.]+ tokens/s; the fused run is [0-9.]+x that" "$TMP/ok/report.md"; then pass gpu_validate_epilogues_apart_speed
else fail gpu_validate_epilogues_apart_speed "no speed ratio in: $(grep -A1 '(-ge 0)' "$TMP/ok/report.md")"; fi
contains gpu_validate_epilogues_apart_row "$TMP/ok/report.md" "-ge 0 (epilogues apart): trains | PASS"
if grep -Eq "^run is [0-9.]+x that" "$TMP/ok/report.md"; then pass gpu_validate_autotune_speed
else fail gpu_validate_autotune_speed "no speed ratio in: $(grep -A1 '(-at 1)' "$TMP/ok/report.md")"; fi
contains gpu_validate_autotune_row "$TMP/ok/report.md" "-at 1 (matmuls autotuned): trains | PASS"
# -aw 1 (the emulation reports compute capability 9.0): the tiny model's losses and the speed ratio
contains gpu_validate_wgmma_attention_matches_cpu "$TMP/ok/report.md" \
    "| tiny model, -aw 1 (attention on wgmma): losses match the CPU trainer | PASS |"
contains gpu_validate_wgmma_attention_row "$TMP/ok/report.md" "our attention on wgmma (-aw 1): trains | PASS"
if grep -Eq "^Our attention on wgmma \(-aw 1\): median [0-9.]+ tokens/s, [0-9.]+x the mma.sync run's" "$TMP/ok/report.md"
then pass gpu_validate_wgmma_attention_speed
else fail gpu_validate_wgmma_attention_speed "no speed ratio in: $(grep -A1 '(-aw 1)' "$TMP/ok/report.md")"; fi
# -as 0: our attention's dq recomputing dS, against the default (stored dS)
contains gpu_validate_recomputed_ds_row "$TMP/ok/report.md" "our attention's dq recomputing dS (-as 0): trains | PASS"
if grep -Eq "^Our attention's dq recomputing dS \(-as 0\): median [0-9.]+ tokens/s; the default \(dq from$" "$TMP/ok/report.md" &&
   grep -Eq "^the dS dkdv stores\) is [0-9.]+x that" "$TMP/ok/report.md"
then pass gpu_validate_recomputed_ds_speed
else fail gpu_validate_recomputed_ds_speed "no speed ratio in: $(grep -A1 '(-as 0)' "$TMP/ok/report.md")"; fi
contains gpu_validate_trainer_profile "$TMP/ok/report.md" "GPU time per step by kernel family"
# the memory comparison: both figures parsed and compared (the tiny model's llm.c figure is
# mostly its 32 MiB workspace and fch-sized scratch, so only that a percentage came out is checked)
contains gpu_validate_memory_vs_llmc "$TMP/ok/report.md" "GiB planned (-r 1 -w 1), llm.c 0."
if grep -Eq "cuDNN attention\): [0-9.]+% (lower|higher)" "$TMP/ok/report.md"; then pass gpu_validate_memory_ratio
else fail gpu_validate_memory_ratio "no percentage in: $(grep -A2 'Memory against llm.c' "$TMP/ok/report.md")"; fi
# llm.c's allocation for GPT-2 124M at B=64, T=1024, by hand: 155 (B,T,C) bf16 tensors
# + (B,T,Vp) output = 11,098,128,384 bf16; 12,779,520 fp32; 16 bytes x 124,475,904
# parameters; 32 MiB: 24,272,543,744 bytes = 22.61 GiB
got=$(bash scripts/llmc_memory.sh 12 12 768 50304 1024 64 1024)
if [ "$got" = 22.61 ]; then pass llmc_memory_124M; else fail llmc_memory_124M "got '$got', want 22.61"; fi
expect_error llmc_memory_rejects_bad_input "llmc_memory.sh: 'x' is not a positive integer" \
    bash scripts/llmc_memory.sh 12 12 768 x 1024 64 1024
# several GPUs: under the emulation 2 ranks (mpirun) on the one emulated device
for z in 0 1 2 3; do
    contains "gpu_validate_2_ranks_zero$z" "$TMP/ok/report.md" "| tiny model on 2 ranks, ZeRO-$z: losses match one GPU | PASS |"
done
contains gpu_validate_scaling "$TMP/ok/report.md" "On 2 GPUs (ZeRO-1, the same batch per GPU): median"
contains gpu_validate_log_gpu_row "$TMP/ok/report.md" "| -lg: the GPU's utilization, clocks, power from NVML | n/a (an emulated device) |"
contains gpu_validate_cudnn_row "$TMP/ok/report.md" "| cuDNN attention | n/a (emulation: cuDNN needs the GPU"

# a kernel run that fails (here: the emulator refuses a bad EMU_ORDER)
# (in a report folder with a space and a quote: the Failures section reads the logs' paths whole)
EMU_ORDER=bogus GPU_VALIDATE_TRAINER=0 bash scripts/gpu_validate.sh "$TMP/bad dir's" >"$TMP/bad.out" 2>&1
if [ $? -eq 1 ]; then pass gpu_validate_failure_exits_1; else fail gpu_validate_failure_exits_1 "exit status was not 1"; fi
contains gpu_validate_failure_row "$TMP/bad dir's/report.md" "| gelu | FAIL (exit 1) | PASS | PASS | PASS |"
contains gpu_validate_failure_section "$TMP/bad dir's/report.md" "EMU_ORDER=bogus: expected forward, reverse or random"

expect_error gpu_validate_unknown_kernel "GPU_VALIDATE_KERNELS: no dev/cuda/nosuch.cu" \
    env GPU_VALIDATE_KERNELS=nosuch bash scripts/gpu_validate.sh "$TMP/none"
# every setting is checked before anything runs (0 jobs hung it; a bad
# B or timeout failed late, after the builds, or blamed every kernel)
for bad in GPU_VALIDATE_JOBS=0 GPU_VALIDATE_TIMEOUT=abc GPU_VALIDATE_B=-1 GPU_VALIDATE_STEPS=1.5 GPU_VALIDATE_GPUS=x; do
    expect_error "gpu_validate_rejects_$bad" "$bad: want a whole number >= 1" env "$bad" bash scripts/gpu_validate.sh "$TMP/none"
done
expect_error gpu_validate_rejects_cudnn_no "GPU_VALIDATE_CUDNN=no: want 0 or 1" \
    env GPU_VALIDATE_CUDNN=no bash scripts/gpu_validate.sh "$TMP/none"
expect_error gpu_validate_rejects_missing_cpu_ref "GPU_VALIDATE_CPU_REF: no file" \
    env GPU_VALIDATE_CPU_REF="$TMP/nosuch.txt" bash scripts/gpu_validate.sh "$TMP/none"
# a logs/ folder the script did not make is not deleted (REPORT_DIR=. once took the user's)
mkdir -p "$TMP/mine/logs"; echo keep > "$TMP/mine/logs/notes.txt"
expect_error gpu_validate_keeps_foreign_logs "is not an earlier run's" bash scripts/gpu_validate.sh "$TMP/mine"
check "... and notes.txt is still there" test -f "$TMP/mine/logs/notes.txt"
check "an earlier run's logs are marked as its own" test -f "$TMP/ok/logs/.gpu_validate"

# racecheck's hazards inside cuBLASLt's own kernels (nvjet*, as an H200
# printed them) are told apart from hazards in ours
source <(sed -n '/^only_library_hazards()/,/^}/p' scripts/gpu_validate.sh)
cat > "$TMP/nvjet.log" <<'LOG'
========= COMPUTE-SANITIZER
matmul_forward BT=7 C=8 OC=24: matches the CPU reference========= Error: Race reported between Read access at nvjet_sm90_tst_64x64_64x13_4x2_h_bz_NNT+0xab0
=========     and Write access at nvjet_sm90_tst_64x64_64x13_4x2_h_bz_NNT+0x2cd0 [384 hazards]
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
LOG
sed 's/and Write access at nvjet_sm90_tst_64x64_64x13_4x2_h_bz_NNT/and Write access at matmul_dbias_partial_kernel(float *, const __nv_bfloat16 *, int, int)/' \
    "$TMP/nvjet.log" > "$TMP/ours.log"
if only_library_hazards "$TMP/nvjet.log"; then pass gpu_validate_racecheck_library_hazards_named
else fail gpu_validate_racecheck_library_hazards_named "hazards inside nvjet kernels were blamed on ours"; fi
if only_library_hazards "$TMP/ours.log"; then fail gpu_validate_racecheck_our_hazards_fail "a hazard in our kernel passed"
else pass gpu_validate_racecheck_our_hazards_fail; fi

# the PREBUILT recipe's CPU trainer (`make gpu-prebuilt`, the script's
# reference on a GPU machine that may lack PCRE2 and AVX): PCRE2 linked in,
# no AVX or AVX-512 register in its code (x86-64-v2), and it runs
portable=build/portable/train_gpt2
if ! out=$(make -s $portable 2>&1); then fail gpu_prebuilt_portable_cpu_trainer "make $portable failed: $out"
elif ldd $portable | grep -q pcre2; then fail gpu_prebuilt_portable_cpu_trainer "links PCRE2 dynamically"
elif objdump -d $portable | grep -qE '%[yz]mm[0-9]'; then fail gpu_prebuilt_portable_cpu_trainer "uses AVX registers"
elif ! $portable -h | grep -q '^usage:'; then fail gpu_prebuilt_portable_cpu_trainer "-h printed no usage"
else pass gpu_prebuilt_portable_cpu_trainer; fi

# scripts/run_gpt2_124M.sh, dry (mpirun a stub that prints its arguments):
# ~9.9B tokens at any batch, and a resume on another number of GPUs keeps
# the schedule the run started with
mkdir -p "$TMP/bin"; printf '#!/bin/sh\necho "$@"\n' > "$TMP/bin/mpirun"; chmod +x "$TMP/bin/mpirun"
run124() { PATH="$TMP/bin:$PATH" OUT="$TMP/r124" TRAINER=/bin/true bash scripts/run_gpt2_124M.sh 2>&1 | tail -1; }
if NGPU=16 run124 | grep -q -- '-d 1048576 -z 1 -l 6e-4 -u 350 -q 0.0 -c 0.1 -x 9433 '; then pass "run_gpt2_124M.sh: 16 GPUs take half the steps"
else fail "run_gpt2_124M.sh: 16 GPUs take half the steps" "$(NGPU=16 run124)"; fi
if RESUME=1 NGPU=3 run124 | grep -q -- '-d 589824 .*-u 350 .*-x 9433 '; then pass "run_gpt2_124M.sh: a resume on 3 GPUs keeps the schedule"
else fail "run_gpt2_124M.sh: a resume on 3 GPUs keeps the schedule" "$(RESUME=1 NGPU=3 run124)"; fi
expect_error "run_gpt2_124M.sh: NGPU=08 (octal to bash) is refused" "NGPU=08: want a number of GPUs" \
    env NGPU=08 TRAINER=/bin/true bash scripts/run_gpt2_124M.sh
# the Slurm script, dry the same way (srun a stub): the same plan
printf '#!/bin/sh\necho "$@"\n' > "$TMP/bin/srun"; chmod +x "$TMP/bin/srun"
slurm124() { PATH="$TMP/bin:$PATH" OUT="$TMP/s124" TRAINER=/bin/true bash scripts/run_gpt2_124M.slurm -x 5 2>&1 | tail -1; }
if SLURM_NTASKS=16 slurm124 | grep -q -- '^--mpi=pmix /bin/true -e d12 .* -d 1048576 -z 1 -l 6e-4 -u 350 -q 0.0 -c 0.1 -x 9433 .*-nk 2 -x 5$'
then pass "run_gpt2_124M.slurm: 16 ranks take half the steps, flags after the script last"
else fail "run_gpt2_124M.slurm: 16 ranks take half the steps, flags after the script last" "$(SLURM_NTASKS=16 slurm124)"; fi
expect_error "run_gpt2_124M.slurm: outside sbatch" "SLURM_NTASKS" env -u SLURM_NTASKS TRAINER=/bin/true bash scripts/run_gpt2_124M.slurm
