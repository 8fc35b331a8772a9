# scripts/gpt2_124M_plan.sh: what scripts/run_gpt2_124M.sh (mpirun) and
# scripts/run_gpt2_124M.slurm (srun) share, sourced by them from the
# repository's root with RANKS (one per GPU) set: the shards, output and
# resume settings (TRAIN, VAL, OUT, RESUME), the batch, the schedule, and the
# trainer's flags in TRAINER_FLAGS (flags given to the script go after them,
# and win).
TRAIN=${TRAIN:-data/fineweb10B/fineweb_train_*.bin}
VAL=${VAL:-data/fineweb10B/fineweb_val_*.bin}
OUT=${OUT:-runs/gpt2_124M}
case ${RESUME:-0} in 0|1) ;; *) echo "error: RESUME=$RESUME: want 0 or 1" >&2; exit 1 ;; esac

# GPT-2's batch, 524,288 tokens per step, where RANKS divides 8: each rank
# accumulates ceil(8 / RANKS) micro-batches of 64 x 1024 (so 3 ranks take
# 589,824; more than 8 ranks, 64 x 1024 x RANKS)
micro=$((64 * 1024))
accum=$(( (8 + RANKS - 1) / RANKS ))
total=$((micro * RANKS * accum))
# GPT-2 124M's 18865 steps of 524,288 tokens (~9.9B) and 700 warm-up steps,
# in tokens whatever the batch; kept in OUT, so a resume on another number of
# GPUs keeps the schedule it started with
if [ "${RESUME:-0}" = 1 ] && [ -f "$OUT/schedule.txt" ]; then
    read -r steps warmup < "$OUT/schedule.txt" && [[ $steps =~ ^[1-9][0-9]*$ && $warmup =~ ^[1-9][0-9]*$ ]] ||
        { echo "error: $OUT/schedule.txt: want two numbers, steps and warm-up steps" >&2; exit 1; }
else
    steps=$(( (18865 * 524288 + total - 1) / total )); warmup=$(( (700 * 524288 + total - 1) / total ))
    # (a run starting afresh; with checkpoints there the trainer refuses to start)
    compgen -G "$OUT/model_*.bin" >/dev/null || { mkdir -p "$OUT" && echo "$steps $warmup" > "$OUT/schedule.txt"; }
fi
resume=()
[ "${RESUME:-0}" = 1 ] && resume=(-y 1)
# ZeRO-1; lr 6e-4 after the warm-up, cosine to 0; val loss every 250 steps,
# samples every 5000, checkpoints every 2000 (the last 2 kept)
TRAINER_FLAGS=(-e d12 -i "$TRAIN" -j "$VAL" -o "$OUT" "${resume[@]}" -b 64 -t 1024 -d "$total" -z 1 -l 6e-4
               -u "$warmup" -q 0.0 -c 0.1 -x "$steps" -v 250 -m 20 -s 5000 -g 144 -n 2000 -nk 2)
