#!/usr/bin/env bash
# scripts/run_gpt2_124M.sh: GPT-2 124M on GPUs, one rank per GPU, data
# parallel with ZeRO-1, started by mpirun (OpenMPI). On one machine:
#
#   bash scripts/run_gpt2_124M.sh                 # every GPU nvidia-smi lists
#   NGPU=4 bash scripts/run_gpt2_124M.sh -x 2000  # 4 GPUs; flags after the script win
#
# On several machines: a hostfile of one line per machine ("node1 slots=8"),
# the repository and data at the same path on each, and
#
#   HOSTFILE=hosts NGPU=16 bash scripts/run_gpt2_124M.sh
#
# The batch is GPT-2's, 524,288 tokens per step, where NGPU divides 8: each
# GPU accumulates ceil(8 / NGPU) micro-batches of 64 x 1024 (so 3 GPUs take
# 589,824; more than 8 GPUs, 64 x 1024 x NGPU). The script prints the total.
# Shards: TRAIN and VAL (glob patterns; the defaults name FineWeb-10B's
# shards as llm.c's dev/data/fineweb.py writes them, there into
# dev/data/fineweb10B/: link or move that folder to data/fineweb10B;
# ./tokenize makes shards of any text, see the README's "Text to tokens"); the
# checkpoints and log go to OUT; RESUME=1 continues from OUT's latest
# checkpoint, on this or any other number of GPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
NGPU=${NGPU:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
TRAINER=${TRAINER:-./train_gpt2cu}
[ -n "$NGPU" ] && [ "$NGPU" != 0 ] || { echo "error: no GPUs found: set NGPU" >&2; exit 1; }
[[ $NGPU =~ ^[1-9][0-9]*$ ]] || { echo "error: NGPU=$NGPU: want a number of GPUs" >&2; exit 1; }
[ -x "$TRAINER" ] || { echo "error: $TRAINER not found: make train_gpt2cu" >&2; exit 1; }

RANKS=$NGPU
source scripts/gpt2_124M_plan.sh
mpi=(mpirun -np "$NGPU" --bind-to none)
[ -n "${HOSTFILE:-}" ] && mpi+=(--hostfile "$HOSTFILE" -x PATH -x LD_LIBRARY_PATH)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
# shellcheck disable=SC2206  # MPIRUN_ARGS: extra mpirun options, split on spaces
[ -n "${MPIRUN_ARGS:-}" ] && mpi+=($MPIRUN_ARGS)
echo "GPT-2 124M on $NGPU GPU(s): $total tokens per step ($accum micro-batch(es) of 64 x 1024 per GPU), $steps steps"
"${mpi[@]}" "$TRAINER" "${TRAINER_FLAGS[@]}" "$@"
