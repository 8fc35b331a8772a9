#!/usr/bin/env bash
# scripts/bench_cpu.sh (make bench): one GPT-2 training step (forward,
# backward, clip, AdamW) of train_gpt2 and of the PyTorch reference on the
# same shape, side by side in one run, and their ratio.
# Shape: 124M (d12), B=4, T=64, 2 threads (override: BENCH_MODEL, BENCH_B,
# BENCH_T, BENCH_THREADS). The quickstart's shape, where the 50257-way
# classifier is nearly all of the step: BENCH_MODEL=d1 BENCH_B=8 make bench.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${BENCH_MODEL:-d12}; B=${BENCH_B:-4}; T=${BENCH_T:-64}; THREADS=${BENCH_THREADS:-2}; STEPS=6
for v in B T THREADS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "error: BENCH_$v=${!v}: want a whole number >= 1" >&2; exit 1; }
done
PY=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$PY" tests/make_shard.py "$tmp/bench_train_000.bin" $((B * T * (STEPS + 2) + 1)) 1

echo "shape: GPT-2 $MODEL, B=$B, T=$T, $THREADS threads; median over $((STEPS - 1)) steps after a warm-up step"
OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$THREADS ./train_gpt2 -e "$MODEL" -i "$tmp/bench_train_*.bin" -j "" -b "$B" -t "$T" \
    -x $STEPS -g 0 -tz "" -sh 0 > "$tmp/ours.txt"
ours=$(grep '^step' "$tmp/ours.txt" | tail -n +2 | sed 's/.*| \([0-9.]*\) ms |.*/\1/' | sort -n |
       awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
torch_out=$(OMP_WAIT_POLICY=passive OMP_NUM_THREADS=$THREADS "$PY" train_gpt2.py bench --model "$MODEL" --B "$B" --T "$T" \
    --threads "$THREADS" --steps $((STEPS - 1)))
echo "$torch_out" | grep -iv '^pytorch_ms_per_step' | sed 's/^/pytorch: /'
theirs=$(echo "$torch_out" | awk '/^pytorch_ms_per_step/ {print $2}')
printf 'train_gpt2: %8.1f ms/step\n' "$ours"
printf 'pytorch:    %8.1f ms/step\n' "$theirs"
awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "speedup (pytorch / train_gpt2): %.2fx\n", b / a}'
